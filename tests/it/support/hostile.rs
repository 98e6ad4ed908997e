//! Hostile messages, generated when a test or benchmark runs (none is stored):
//! each costs a stranger nothing to send and once cost ticketd minutes,
//! gigabytes, or thousands of outgoing mails.

/// Where a message is written, piece by piece.
type Sink<'a> = dyn FnMut(&[u8]) + 'a;

/// One hostile message: a name, and its bytes written in pieces (the largest
/// is never held in memory whole).
pub struct Hostile {
    pub name: &'static str,
    /// The whole message's size in bytes.
    pub size: u64,
    write: fn(&mut Sink<'_>),
}

impl Hostile {
    /// Writes the message piece by piece into `sink`.
    pub fn write_to(&self, sink: &mut Sink<'_>) {
        (self.write)(sink)
    }

    /// The whole message, for the ones small enough to hold.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(usize::try_from(self.size).unwrap_or(0));
        self.write_to(&mut |piece| out.extend_from_slice(piece));
        out
    }
}

/// Just under the 25 MiB limit.
const NEAR_LIMIT: u64 = 26_214_400 - 4_096;

fn head(sink: &mut Sink<'_>, name: &str, from: &str, extra: &str, content_type: &str) {
    sink(
        format!(
            "From: {from}\r\nTo: support@example.com\r\nSubject: {name}\r\n\
             Message-ID: <{name}@evil.test>\r\n{extra}MIME-Version: 1.0\r\n\
             Content-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
}

fn repeat(sink: &mut Sink<'_>, piece: &[u8], times: usize) {
    let chunk = piece.repeat((64 * 1024 / piece.len()).max(1));
    let per_chunk = chunk.len() / piece.len();
    let mut left = times;
    while left >= per_chunk {
        sink(&chunk);
        left -= per_chunk;
    }
    sink(&piece.repeat(left));
}

const MALLORY: &str = "Mallory <mallory@evil.test>";
const TEXT: &str = "text/plain; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

/// Every hostile message, in the order of the table, then a few more
/// found while fixing them.
pub fn all() -> Vec<Hostile> {
    vec![
        Hostile {
            name: "lines_25mib",
            size: NEAR_LIMIT,
            write: |sink| {
                head(sink, "lines_25mib", MALLORY, "", TEXT);
                repeat(sink, b"a\r\n", ((NEAR_LIMIT - 300) / 3) as usize);
            },
        },
        Hostile {
            name: "lines_8mib",
            size: 8 << 20,
            write: |sink| {
                head(sink, "lines_8mib", MALLORY, "", TEXT);
                repeat(sink, b"a\r\n", ((8 << 20) - 300) / 3);
            },
        },
        Hostile {
            name: "nested_divs_100k",
            size: 1_100_300,
            write: |sink| {
                head(sink, "nested_divs_100k", MALLORY, "", HTML);
                repeat(sink, b"<div>", 100_000);
                sink(b"x");
                repeat(sink, b"</div>", 100_000);
            },
        },
        Hostile {
            name: "table_cells_1m",
            size: 10_000_300,
            write: |sink| {
                head(sink, "table_cells_1m", MALLORY, "", HTML);
                sink(b"<table><tr>");
                repeat(sink, b"<td>x</td>", 1_000_000);
                sink(b"</tr></table>");
            },
        },
        Hostile {
            name: "unclosed_bold_1m",
            size: 4_000_300,
            write: |sink| {
                head(sink, "unclosed_bold_1m", MALLORY, "", HTML);
                repeat(sink, b"<b>x", 1_000_000);
            },
        },
        Hostile {
            name: "to_291k_addresses",
            size: 5_500_000,
            write: |sink| {
                let to: String = (0..291_000)
                    .map(|n| format!("u{n}@victims.test"))
                    .collect::<Vec<_>>()
                    .join(", ");
                head(
                    sink,
                    "to_291k_addresses",
                    MALLORY,
                    &format!("Cc: {to}\r\n"),
                    TEXT,
                );
                sink(b"hello\r\n");
            },
        },
        Hostile {
            name: "cc_262k_colleagues",
            size: 5_300_000,
            write: |sink| {
                let cc: String = (0..262_144)
                    .map(|n| format!("u{n}@acme.test"))
                    .collect::<Vec<_>>()
                    .join(", ");
                head(
                    sink,
                    "cc_262k_colleagues",
                    "Stranger <stranger@acme.test>",
                    &format!("Cc: {cc}\r\n"),
                    TEXT,
                );
                sink(b"hello\r\n");
            },
        },
        Hostile {
            name: "oversized_684mb",
            size: 684 << 20,
            write: |sink| {
                head(sink, "oversized_684mb", MALLORY, "", TEXT);
                let mut line = [b'x'; 1024];
                line[1023] = b'\n';
                repeat(sink, &line, (684 << 10) - 1);
            },
        },
        Hostile {
            name: "forged_1mb_subject",
            size: 1_000_300,
            write: |sink| {
                let subject = "S".repeat(1_000_000);
                sink(
                    format!(
                        "From: victim@other.test\r\nTo: support@example.com\r\nSubject: {subject}\r\n\
                         Message-ID: <forged_1mb_subject@evil.test>\r\n\r\nhello\r\n"
                    )
                    .as_bytes(),
                );
            },
        },
        Hostile {
            name: "mime_parts_100k",
            size: 12_600_000,
            write: |sink| {
                head(
                    sink,
                    "mime_parts_100k",
                    MALLORY,
                    "",
                    "multipart/mixed; boundary=b",
                );
                for n in 0..100_000 {
                    sink(
                        format!(
                            "--b\r\nContent-Type: application/octet-stream\r\n\
                             Content-Disposition: attachment; filename=f{n}.bin\r\n\r\nx{n}\r\n"
                        )
                        .as_bytes(),
                    );
                }
                sink(b"--b--\r\n");
            },
        },
        Hostile {
            name: "answered_quotes_100k",
            size: 6_800_300,
            write: |sink| {
                head(sink, "answered_quotes_100k", MALLORY, "", TEXT);
                repeat(
                    sink,
                    b"On Mon, Jan 1, 2024 at 10:00 AM Bob <b@x.test> wrote:\r\n> q\r\nanswer\r\n",
                    100_000,
                );
            },
        },
    ]
}

/// An ordinary customer's question.
pub fn ordinary(n: usize) -> Vec<u8> {
    format!(
        "From: Jane <jane@acme.test>\r\nTo: support@example.com\r\nSubject: Printer {n}\r\n\
         Message-ID: <ordinary{n}@acme.test>\r\n\r\nThe printer on floor 3 is broken again.\r\n"
    )
    .into_bytes()
}
