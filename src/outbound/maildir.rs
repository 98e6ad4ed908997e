//! The Maildir transport: with no SMTP server configured, notifications are written to a Maildir to read or forward.

use std::path::PathBuf;

use super::Delivery;

pub struct MaildirTransport {
    path: PathBuf,
}

impl MaildirTransport {
    pub fn new(path: PathBuf) -> MaildirTransport {
        MaildirTransport { path }
    }

    /// Writes the message to `tmp/`, then renames it into `new/` (the Maildir way: never half a file in new/).
    pub async fn deliver(&self, bytes: &[u8]) -> Delivery {
        match self.write(bytes).await {
            Ok(name) => Delivery::Sent(format!(
                "written to {}",
                self.path.join("new").join(name).display()
            )),
            Err(e) => Delivery::Temporary(format!(
                "cannot write to the Maildir {}: {e}",
                self.path.display()
            )),
        }
    }

    async fn write(&self, bytes: &[u8]) -> std::io::Result<String> {
        for sub in ["tmp", "new", "cur"] {
            tokio::fs::create_dir_all(self.path.join(sub)).await?;
        }
        let name = format!(
            "{}.{}_{:016x}.ticketd",
            chrono::Utc::now().timestamp(),
            std::process::id(),
            rand::random::<u64>()
        );
        let tmp = self.path.join("tmp").join(&name);
        tokio::fs::write(&tmp, bytes).await?;
        tokio::fs::rename(&tmp, self.path.join("new").join(&name)).await?;
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_land_in_new() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = MaildirTransport::new(dir.path().join("sent"));
        assert!(matches!(
            t.deliver(b"Subject: x\r\n\r\nhi").await,
            Delivery::Sent(_)
        ));
        let files: Vec<_> = std::fs::read_dir(dir.path().join("sent/new"))
            .expect("new/")
            .collect();
        assert_eq!(files.len(), 1);
    }
}
