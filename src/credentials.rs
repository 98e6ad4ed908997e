//! Secrets named by the configuration: passwords (inline or in a file) and OAuth access tokens (in a file or printed by a command).

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("cannot read {path}: {source}")]
    File {
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
    fn xoauth2_response_has_the_sasl_layout() {
        assert_eq!(
            xoauth2_response("u@x", "t"),
            "user=u@x\x01auth=Bearer t\x01\x01"
        );
    }
}
