//! Outlook's `winmail.dat` (TNEF, `application/ms-tnef`): the files inside it
//! become the message's attachments and its plain-text body (`PR_BODY` among
//! the message's MAPI properties) the text when the mail has none, so
//! customers on Exchange are readable. Pure, no I/O.

/// A file found inside a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub name: String,
    /// Guessed from the name's extension (a container carries no type).
    pub content_type: &'static str,
    pub content: Vec<u8>,
}

/// Whether a part with this type and file name is a TNEF container.
pub fn is_container(content_type: &str, filename: Option<&str>) -> bool {
    matches!(
        content_type,
        "application/ms-tnef" | "application/vnd.ms-tnef"
    ) || filename.is_some_and(|n| n.eq_ignore_ascii_case("winmail.dat"))
}

/// The files inside a TNEF container, at most `room` of them; `None` when
/// it cannot be read or holds no file (then it stays as it came).
pub fn unpack(container: &[u8], room: usize) -> Option<Vec<File>> {
    let files = tnef::read_attachments(container).ok()?;
    let unpacked: Vec<File> = files
        .into_iter()
        .take(room)
        .map(|file| {
            let name = file
                .transport_filename
                .filter(|n| !n.trim().is_empty())
                .unwrap_or(file.title);
            File {
                content_type: content_type_of(&name),
                name,
                content: file.data.to_vec(),
            }
        })
        .collect();
    (!unpacked.is_empty()).then_some(unpacked)
}

/// The `PR_BODY` among the message's MAPI properties (`attMsgProps`).
pub fn body(container: &[u8]) -> Option<String> {
    let reader = tnef::TnefReader::new(container).ok()?;
    let code_page = reader.get_code_page();
    for attribute in reader {
        let (id, data) = attribute.ok()?;
        if id == tnef::AttributeId::Message(tnef::MessageAttrId::MsgProps) {
            return mapi::text_property(data, mapi::PR_BODY, code_page);
        }
    }
    None
}

/// MAPI property streams (MS-OXTNEF 2.1.3.4), as far as reading one text
/// property needs: every property is stepped over by its type's layout.
mod mapi {
    /// `PidTagBody`.
    pub const PR_BODY: u16 = 0x1000;
    const MULTI: u16 = 0x1000;

    struct Cursor<'a>(&'a [u8]);

    impl<'a> Cursor<'a> {
        fn take(&mut self, n: usize) -> Option<&'a [u8]> {
            (self.0.len() >= n).then(|| {
                let (taken, rest) = self.0.split_at(n);
                self.0 = rest;
                taken
            })
        }

        fn u16(&mut self) -> Option<u16> {
            self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
        }

        fn u32(&mut self) -> Option<u32> {
            self.take(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        }

        /// A length-prefixed value padded to four bytes.
        fn counted(&mut self) -> Option<&'a [u8]> {
            let len = usize::try_from(self.u32()?).ok()?;
            let value = self.take(len)?;
            self.take((4 - len % 4) % 4)?;
            Some(value)
        }
    }

    /// The text of property `wanted` in `props`; `None` when it is absent or
    /// the stream holds a type this reader does not know.
    pub fn text_property(props: &[u8], wanted: u16, code_page: u32) -> Option<String> {
        let mut at = Cursor(props);
        let count = at.u32()?;
        for _ in 0..count {
            let kind = at.u16()?;
            let id = at.u16()?;
            if id >= 0x8000 {
                at.take(16)?;
                match at.u32()? {
                    0 => drop(at.u32()?),
                    _ => drop(at.counted()?),
                }
            }
            let values = if kind & MULTI != 0 || is_variable(kind) {
                at.u32()?
            } else {
                1
            };
            for _ in 0..values {
                let value = match fixed_size(kind & !MULTI) {
                    Some(size) => at.take(size)?,
                    None if is_variable(kind & !MULTI) => at.counted()?,
                    None => return None,
                };
                if id == wanted {
                    return decode(kind & !MULTI, value, code_page);
                }
            }
        }
        None
    }

    fn is_variable(kind: u16) -> bool {
        matches!(kind, 0x000D | 0x001E | 0x001F | 0x0102)
    }

    /// Bytes a fixed-size value takes in the stream (padded to four).
    fn fixed_size(kind: u16) -> Option<usize> {
        match kind {
            0x0002 | 0x0003 | 0x0004 | 0x000A | 0x000B => Some(4),
            0x0005..=0x0007 | 0x0014 | 0x0040 => Some(8),
            0x0048 => Some(16),
            _ => None,
        }
    }

    fn decode(kind: u16, value: &[u8], code_page: u32) -> Option<String> {
        let text = match kind {
            0x001F => {
                let units: Vec<u16> = value
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect();
                String::from_utf16_lossy(&units)
            }
            0x001E => {
                let label = format!("windows-{code_page}");
                let encoding = encoding_rs::Encoding::for_label(label.as_bytes())
                    .unwrap_or(encoding_rs::WINDOWS_1252);
                encoding.decode(value).0.into_owned()
            }
            _ => return None,
        };
        let text = text.trim_end_matches('\0').trim().to_string();
        (!text.is_empty()).then_some(text)
    }
}

/// A MIME type for a file name inside a container, which carries none.
fn content_type_of(name: &str) -> &'static str {
    let extension = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "pdf" => "application/pdf",
        "txt" | "log" => "text/plain",
        "csv" => "text/csv",
        "htm" | "html" => "text/html",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "zip" => "application/zip",
        "doc" => "application/msword",
        "xls" => "application/vnd.ms-excel",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "eml" => "message/rfc822",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One TNEF attribute: level, id, length, data, checksum.
    fn attribute(level: u8, id: u32, data: &[u8]) -> Vec<u8> {
        let mut out = vec![level];
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&u32::try_from(data.len()).expect("small").to_le_bytes());
        out.extend_from_slice(data);
        let sum = data.iter().fold(0u16, |s, b| s.wrapping_add(u16::from(*b)));
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    fn date() -> Vec<u8> {
        [2026u16, 11, 30, 9, 15, 0, 1]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect()
    }

    /// A winmail.dat as Outlook writes it, holding `files` (name, bytes).
    fn winmail(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = 0x223e_9f78u32.to_le_bytes().to_vec();
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend(attribute(1, 0x0008_9006, &[0, 0, 1, 0]));
        let mut code_page = 1252u32.to_le_bytes().to_vec();
        code_page.extend_from_slice(&0u32.to_le_bytes());
        out.extend(attribute(1, 0x0006_9007, &code_page));
        out.extend(attribute(1, 0x0007_8008, b"IPM.Microsoft Mail.Note\0"));
        for (name, bytes) in files {
            let rend = [1u8, 0, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0];
            out.extend(attribute(2, 0x0006_9002, &rend));
            let mut title = name.as_bytes().to_vec();
            title.push(0);
            out.extend(attribute(2, 0x0001_8010, &title));
            out.extend(attribute(2, 0x0003_8012, &date()));
            out.extend(attribute(2, 0x0003_8013, &date()));
            out.extend(attribute(2, 0x0006_800f, bytes));
            out.extend(attribute(2, 0x0006_9005, &[0, 0, 0, 0]));
        }
        out
    }

    /// `attMsgProps` holding a flag and `PR_BODY` as UTF-16.
    fn props_with_body(text: &str) -> Vec<u8> {
        let mut props = 2u32.to_le_bytes().to_vec();
        props.extend_from_slice(&[0x0b, 0x00, 0x57, 0x00, 1, 0, 0, 0]);
        props.extend_from_slice(&0x001fu16.to_le_bytes());
        props.extend_from_slice(&0x1000u16.to_le_bytes());
        props.extend_from_slice(&1u32.to_le_bytes());
        let mut value: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        value.extend_from_slice(&[0, 0]);
        props.extend_from_slice(&u32::try_from(value.len()).expect("small").to_le_bytes());
        let padding = (4 - value.len() % 4) % 4;
        props.extend(value);
        props.extend(std::iter::repeat_n(0, padding));
        props
    }

    #[test]
    fn the_body_among_the_mapi_properties_is_the_text() {
        let mut data = winmail(&[]);
        data.extend(attribute(
            1,
            0x0006_9003,
            &props_with_body("Grüße, the printer is fixed."),
        ));
        assert_eq!(body(&data).as_deref(), Some("Grüße, the printer is fixed."));
        let mut broken = props_with_body("x");
        broken.truncate(broken.len() - 3);
        let mut data = winmail(&[]);
        data.extend(attribute(1, 0x0006_9003, &broken));
        assert_eq!(body(&data), None);
    }

    #[test]
    fn the_files_inside_a_winmail_dat_are_found() {
        let data = winmail(&[("report.pdf", b"%PDF-1.4 x"), ("notes.txt", b"hello")]);
        let files = unpack(&data, 10).expect("files");
        let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["report.pdf", "notes.txt"]);
        assert_eq!(files[0].content_type, "application/pdf");
        assert_eq!(files[0].content, b"%PDF-1.4 x");
        assert_eq!(unpack(&data, 1).map(|f| f.len()), Some(1));
        assert!(is_container("application/ms-tnef", None));
        assert!(is_container(
            "application/octet-stream",
            Some("WINMAIL.DAT")
        ));
        assert!(!is_container("application/pdf", Some("a.pdf")));
    }

    #[test]
    fn an_unreadable_or_empty_container_has_no_files() {
        assert_eq!(unpack(b"not tnef at all", 10), None);
        assert_eq!(unpack(&winmail(&[]), 10), None);
        let mut truncated = winmail(&[("a.txt", b"abc")]);
        truncated.truncate(truncated.len() - 7);
        assert_eq!(unpack(&truncated, 10), None);
    }
}
