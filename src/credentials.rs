//! Secrets named by the configuration: passwords (inline or in a file) and OAuth access tokens (in a file or printed by a command).

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("cannot read {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{what} in {path} is empty")]
    Empty { what: &'static str, path: String },
    #[error("token command `{command}` failed: {message}")]
    Command { command: String, message: String },
    #[error("no {0} configured")]
    Missing(&'static str),
}

/// A password given inline or in a file (its first line; trailing newline ignored).
pub fn password(inline: Option<&str>, file: Option<&Path>) -> Result<String, CredentialError> {
    match (inline, file) {
        (Some(p), _) => Ok(p.to_string()),
        (None, Some(path)) => first_line(path, "password"),
        (None, None) => Err(CredentialError::Missing("password")),
    }
}

/// The current OAuth access token, read anew each time (tokens expire).
pub async fn oauth_token(
    file: Option<&Path>,
    command: Option<&str>,
) -> Result<String, CredentialError> {
    if let Some(path) = file {
        return first_line(path, "OAuth token");
    }
    let Some(command) = command else {
        return Err(CredentialError::Missing("OAuth token source"));
    };
    let output = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| CredentialError::Command {
            command: command.to_string(),
            message: e.to_string(),
        })?;
    if !output.status.success() {
        return Err(CredentialError::Command {
            command: command.to_string(),
            message: format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    let token = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if token.is_empty() {
        return Err(CredentialError::Command {
            command: command.to_string(),
            message: "it printed nothing".to_string(),
        });
    }
    Ok(token)
}

fn first_line(path: &Path, what: &'static str) -> Result<String, CredentialError> {
    let text = std::fs::read_to_string(path).map_err(|source| CredentialError::File {
        path: path.display().to_string(),
        source,
    })?;
    let line = text
        .lines()
        .next()
        .unwrap_or("")
        .trim_end_matches('\r')
        .to_string();
    if line.is_empty() {
        return Err(CredentialError::Empty {
            what,
            path: path.display().to_string(),
        });
    }
    Ok(line)
}

/// The file in the data directory that holds a made reply-token key.
pub const REPLY_KEY_FILE: &str = "reply_token.key";

/// The key of keyed reply addresses: `inline`, else the first line of
/// `file`, else the one in `data_dir`, made there (32 random bytes, hex,
/// readable by its owner only) the first time. Two processes starting at
/// once agree on one key: the file appears whole or not at all, and only
/// once.
pub fn reply_token_secret(
    inline: Option<&str>,
    file: Option<&Path>,
    data_dir: &Path,
) -> Result<Vec<u8>, CredentialError> {
    if let Some(secret) = inline.filter(|s| !s.trim().is_empty()) {
        return Ok(secret.trim().as_bytes().to_vec());
    }
    if let Some(path) = file {
        return Ok(first_line(path, "reply token secret")?.into_bytes());
    }
    let path = data_dir.join(REPLY_KEY_FILE);
    let io_error = |source| CredentialError::Write {
        path: path.display().to_string(),
        source,
    };
    if !path.exists() {
        make_key_file(&path).map_err(io_error)?;
    }
    Ok(first_line(&path, "reply token secret")?.into_bytes())
}

/// Writes a new random key to a temporary file and links it into place;
/// when another process linked its key first, that one stays.
fn make_key_file(path: &Path) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let temporary = dir.join(format!(".{REPLY_KEY_FILE}.{}", std::process::id()));
    let written = write_private(&temporary);
    let linked = written.and_then(|()| std::fs::hard_link(&temporary, path));
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => std::fs::File::open(dir)?.sync_all(),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// A new random key in a file only its owner may read, on disk before it is used.
fn write_private(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    out.write_all(format!("{}\n", hex::encode(rand::random::<[u8; 32]>())).as_bytes())?;
    out.sync_all()
}

/// The SASL XOAUTH2 initial response (before base64).
pub fn xoauth2_response(user: &str, token: &str) -> String {
    format!("user={user}\x01auth=Bearer {token}\x01\x01")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_comes_inline_or_from_the_first_line_of_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\n").expect("write");
        assert_eq!(password(None, Some(&path)).expect("file"), "s3cret");
        assert_eq!(password(Some("inline"), None).expect("inline"), "inline");
        std::fs::write(&path, "\n").expect("write");
        assert!(password(None, Some(&path)).is_err());
        assert!(password(None, Some(&dir.path().join("missing"))).is_err());
    }

    #[tokio::test]
    async fn token_comes_from_a_command() {
        assert_eq!(
            oauth_token(None, Some("echo tok123")).await.expect("token"),
            "tok123"
        );
        assert!(oauth_token(None, Some("exit 3")).await.is_err());
    }

    #[test]
    fn a_reply_key_is_made_once_and_kept_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let made = reply_token_secret(None, None, dir.path()).expect("made");
        assert_eq!(made.len(), 64, "32 bytes in hex");
        let again = reply_token_secret(None, None, dir.path()).expect("read");
        assert_eq!(made, again);
        let mode = std::fs::metadata(dir.path().join(REPLY_KEY_FILE))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        assert_eq!(
            reply_token_secret(Some("inline"), None, dir.path()).expect("inline"),
            b"inline"
        );
        let file = dir.path().join("given");
        std::fs::write(&file, "from-file\n").expect("write");
        assert_eq!(
            reply_token_secret(None, Some(&file), dir.path()).expect("file"),
            b"from-file"
        );
    }

    #[test]
    fn xoauth2_response_has_the_sasl_layout() {
        assert_eq!(
            xoauth2_response("u@x", "t"),
            "user=u@x\x01auth=Bearer t\x01\x01"
        );
    }
}
