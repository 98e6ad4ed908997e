//! Outlook's `winmail.dat` (TNEF, `application/ms-tnef`): the files inside it
//! become the message's attachments, so customers on Exchange are readable.
//! Pure, no I/O.

use super::parse::{Attachment, MAX_ATTACHMENTS};

/// Whether `file` is a TNEF container.
pub fn is_tnef(file: &Attachment) -> bool {
    matches!(
        file.content_type.as_str(),
        "application/ms-tnef" | "application/vnd.ms-tnef"
    ) || file
        .filename
        .as_deref()
        .is_some_and(|n| n.eq_ignore_ascii_case("winmail.dat"))
}

/// The files inside a TNEF container, at most `room` of them; `None` when
/// it cannot be read or holds no file (then it stays as it came).
pub fn unpack(container: &[u8], room: usize) -> Option<Vec<Attachment>> {
    let files = tnef::read_attachments(container).ok()?;
    let unpacked: Vec<Attachment> = files
        .into_iter()
        .take(room.min(MAX_ATTACHMENTS))
        .map(|file| {
            let name = file
                .transport_filename
                .filter(|n| !n.trim().is_empty())
                .unwrap_or(file.title);
            Attachment {
                content_type: content_type_of(&name).to_string(),
                filename: Some(name),
                content: file.data.to_vec(),
                inline: false,
                content_id: None,
            }
        })
        .collect();
    (!unpacked.is_empty()).then_some(unpacked)
}

/// Replaces each TNEF container among `files` by the files inside it,
/// keeping at most [`MAX_ATTACHMENTS`] in all.
pub fn expand(files: Vec<Attachment>) -> Vec<Attachment> {
    let mut out: Vec<Attachment> = Vec::with_capacity(files.len());
    let others = files.iter().filter(|f| !is_tnef(f)).count();
    for file in files {
        let room = MAX_ATTACHMENTS.saturating_sub(others.max(out.len()));
        match is_tnef(&file)
            .then(|| unpack(&file.content, room))
            .flatten()
        {
            Some(inside) => out.extend(inside),
            None => out.push(file),
        }
    }
    out.truncate(MAX_ATTACHMENTS);
    out
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
pub(crate) mod tests {
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
    pub(crate) fn winmail(files: &[(&str, &[u8])]) -> Vec<u8> {
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

    fn container(content: Vec<u8>) -> Attachment {
        Attachment {
            filename: Some("winmail.dat".into()),
            content_type: "application/ms-tnef".into(),
            content,
            inline: false,
            content_id: None,
        }
    }

    #[test]
    fn the_files_inside_a_winmail_dat_become_attachments() {
        let data = winmail(&[("report.pdf", b"%PDF-1.4 x"), ("notes.txt", b"hello")]);
        let files = expand(vec![container(data)]);
        let names: Vec<_> = files.iter().filter_map(|f| f.filename.as_deref()).collect();
        assert_eq!(names, ["report.pdf", "notes.txt"]);
        assert_eq!(files[0].content_type, "application/pdf");
        assert_eq!(files[0].content, b"%PDF-1.4 x");
        assert_eq!(files[1].content, b"hello");
    }

    #[test]
    fn an_unreadable_or_empty_container_stays_as_it_came() {
        for content in [b"not tnef at all".to_vec(), winmail(&[])] {
            let files = expand(vec![container(content.clone())]);
            assert_eq!(files.len(), 1);
            assert_eq!(files[0].content, content);
        }
        let mut truncated = winmail(&[("a.txt", b"abc")]);
        truncated.truncate(truncated.len() - 7);
        assert_eq!(expand(vec![container(truncated)]).len(), 1);
    }

    #[test]
    fn a_container_cannot_exceed_the_attachment_limit() {
        let many: Vec<(String, Vec<u8>)> = (0..MAX_ATTACHMENTS + 20)
            .map(|i| (format!("f{i}.txt"), vec![b'x']))
            .collect();
        let borrowed: Vec<(&str, &[u8])> = many
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        let files = expand(vec![container(winmail(&borrowed))]);
        assert_eq!(files.len(), MAX_ATTACHMENTS);
    }
}
