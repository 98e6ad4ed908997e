//! Files stay the service user's: a command run as root on a store another
//! user owns (the `ticketd` user of the daemon and the MTA's pipe) switches to
//! that user before it touches anything, so nothing it creates (the database,
//! its log and lock, attachment directories) is left unwritable for them.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid, User, initgroups, setgid, setuid};
use ticketd::config::{Settings, sqlite_file};

/// Who the command runs as after [`become_store_owner`].
#[derive(Debug, PartialEq, Eq)]
pub enum RunAs {
    /// Not root, or the store is root's own: nothing changed.
    Unchanged,
    /// Switched from root to the owner of the store.
    Switched { user: String, owner_of: PathBuf },
}

/// When running as root, switches to the user that owns the store (the
/// SQLite file, or the nearest existing directory on its path; the data
/// directory for PostgreSQL). Call before any other thread exists. The error
/// says why it could not switch and the exact command to run instead.
pub fn become_store_owner(settings: &Settings, argv: &[String]) -> Result<RunAs, String> {
    if !Uid::effective().is_root() {
        return Ok(RunAs::Unchanged);
    }
    let anchor = sqlite_file(&settings.store.url).unwrap_or_else(|| settings.data.dir.clone());
    let Some((path, uid)) = nearest_owner(&anchor) else {
        return Ok(RunAs::Unchanged);
    };
    if uid == 0 {
        return Ok(RunAs::Unchanged);
    }
    let instead = |user: &str| {
        format!(
            "run it as the store's owner instead: sudo -u {user} {}",
            shell_words(argv)
        )
    };
    let user = match User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(user)) => user,
        Ok(None) | Err(_) => {
            return Err(format!(
                "{} belongs to uid {uid}, which has no user entry; {}",
                path.display(),
                instead(&format!("'#{uid}'"))
            ));
        }
    };
    switch_to(&user).map_err(|e| {
        format!(
            "{} belongs to {}, and switching to that user failed ({e}); {}",
            path.display(),
            user.name,
            instead(&user.name)
        )
    })?;
    Ok(RunAs::Switched {
        user: user.name,
        owner_of: path,
    })
}

/// For the pipe: the SQLite store's files (and its directory, where SQLite
/// creates its log) are writable by this process, or an error naming the
/// first that is not. Checked up front so that a store the pipe's user may
/// not write is deferred at once with that reason, not after the pool's
/// connect timeout with a vaguer one.
pub fn store_writable(settings: &Settings) -> Result<(), String> {
    use nix::unistd::{AccessFlags, access};
    let Some(file) = sqlite_file(&settings.store.url) else {
        return Ok(());
    };
    let log = |suffix: &str| {
        let mut name = file.clone().into_os_string();
        name.push(suffix);
        PathBuf::from(name)
    };
    let directory = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let user = User::from_uid(Uid::effective())
        .ok()
        .flatten()
        .map_or_else(|| format!("uid {}", Uid::effective()), |u| u.name);
    for path in [file.clone(), log("-wal"), log("-shm"), directory] {
        if path.exists() && access(&path, AccessFlags::W_OK).is_err() {
            return Err(format!(
                "the store's {} is not writable by {user} (give the store to that user, \
                 or run the pipe as its owner)",
                path.display()
            ));
        }
    }
    Ok(())
}

fn switch_to(user: &User) -> nix::Result<()> {
    let name = std::ffi::CString::new(user.name.as_bytes()).map_err(|_| nix::Error::EINVAL)?;
    initgroups(&name, user.gid)?;
    setgid(user.gid)?;
    setuid(user.uid)?;
    // Refuse to go on if root could be regained.
    if setuid(Uid::from_raw(0)).is_ok() || Gid::effective() != user.gid {
        return Err(nix::Error::EPERM);
    }
    Ok(())
}

/// The first path from `path` up to `/` that exists, and its owner.
fn nearest_owner(path: &Path) -> Option<(PathBuf, u32)> {
    path.ancestors().find_map(|p| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (p.to_path_buf(), m.uid()))
    })
}

/// The command line as a shell would need it typed.
fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|word| {
            if !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:@+,".contains(c))
            {
                word.clone()
            } else {
                format!("'{}'", word.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_existing_directory_names_the_owner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("data/ticketd.db");
        let (path, _) = nearest_owner(&missing).expect("an ancestor exists");
        assert_eq!(path, dir.path());
    }

    #[test]
    fn commands_are_quoted_for_the_shell() {
        let argv: Vec<String> = [
            "ticketd",
            "--config",
            "/etc/t d.toml",
            "held",
            "release",
            "3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            shell_words(&argv),
            "ticketd --config '/etc/t d.toml' held release 3"
        );
    }
}
