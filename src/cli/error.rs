//! Why a command failed, and the exit code that says so: every command
//! returns a [`CliError`], and `cli::run` prints it and picks the code once.

use ticketd::ingest::IngestError;
use ticketd::ingest::service::ServiceError;
use ticketd::notify::OpenError;
use ticketd::store::StoreError;

use super::exit;

/// A failed command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The store failed while doing `context`.
    #[error("{context}: {source}")]
    Store {
        context: String,
        #[source]
        source: StoreError,
    },
    /// The request is malformed (a bad address or domain): exit 64.
    #[error("{0}")]
    Usage(String),
    /// The request cannot be done (an unknown ticket, a refused change): exit 1.
    #[error("{0}")]
    Refused(String),
    /// The input is no email message at all: exit 65.
    #[error("{0}")]
    NotAMessage(String),
    /// An input file cannot be read: exit 66.
    #[error("{0}")]
    NoInput(String),
    /// The configuration or the templates are wrong: exit 78.
    #[error("{0}")]
    Config(String),
    /// Trying again later may work (a file could not be stored): exit 75.
    #[error("{0}")]
    Temporary(String),
    /// ticketd itself failed: exit 70.
    #[error("{0}")]
    Internal(String),
    /// The command printed what happened itself; exit with this code.
    #[error("exit {0}")]
    Reported(u8),
}

impl CliError {
    /// A store failure while doing `context`.
    pub fn store(context: &str) -> impl FnOnce(StoreError) -> CliError + '_ {
        move |source| CliError::Store {
            context: context.to_string(),
            source,
        }
    }

    /// The sysexits code: 1 for what is not there or refused, 75 when
    /// retrying may help, 70 for ticketd's own failures.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Store { source, .. } => match source {
                StoreError::NotFound(_) | StoreError::Conflict(_) => 1,
                e if e.is_transient()
                    || matches!(e, StoreError::Setup(_) | StoreError::Migrate(_)) =>
                {
                    exit::TEMP_FAIL
                }
                _ => exit::SOFTWARE,
            },
            CliError::Usage(_) => exit::USAGE,
            CliError::Refused(_) => 1,
            CliError::NotAMessage(_) => exit::DATA_ERR,
            CliError::NoInput(_) => exit::NO_INPUT,
            CliError::Config(_) => exit::CONFIG,
            CliError::Temporary(_) => exit::TEMP_FAIL,
            CliError::Internal(_) => exit::SOFTWARE,
            CliError::Reported(code) => *code,
        }
    }

    /// Whether the message is still to be printed.
    pub fn unreported(&self) -> bool {
        !matches!(self, CliError::Reported(_))
    }
}

/// Names what was being done when a store call failed.
pub trait Context<T> {
    /// The error as a [`CliError::Store`] while doing `context`.
    fn context(self, context: &str) -> Result<T, CliError>;
}

impl<T> Context<T> for Result<T, StoreError> {
    fn context(self, context: &str) -> Result<T, CliError> {
        self.map_err(CliError::store(context))
    }
}

impl<T> Context<T> for Result<T, ServiceError> {
    fn context(self, context: &str) -> Result<T, CliError> {
        self.map_err(|e| match e {
            ServiceError::Refused(reason) => CliError::Refused(reason),
            ServiceError::Store(source) => CliError::store(context)(source),
            e @ ServiceError::Files(_) => CliError::Temporary(e.to_string()),
        })
    }
}

impl<T> Context<T> for Result<T, IngestError> {
    fn context(self, context: &str) -> Result<T, CliError> {
        self.map_err(|e| match e {
            IngestError::Store(source) => CliError::store(context)(source),
            IngestError::Invalid(reason) => CliError::Refused(reason),
            IngestError::Templates(e) => CliError::Config(e.to_string()),
            other => CliError::Internal(format!("{context}: {other}")),
        })
    }
}

impl From<OpenError> for CliError {
    fn from(e: OpenError) -> CliError {
        match e {
            OpenError::Store(source) => CliError::store("cannot load the queues")(source),
            OpenError::Templates(e) => CliError::Config(e.to_string()),
            e @ OpenError::Secret(_) => CliError::Config(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_exit_code() {
        let store = |e| CliError::store("x")(e).exit_code();
        assert_eq!(store(StoreError::NotFound("t".into())), 1);
        assert_eq!(store(StoreError::Conflict("t".into())), 1);
        assert_eq!(store(StoreError::Setup("t".into())), exit::TEMP_FAIL);
        assert_eq!(CliError::Usage("u".into()).exit_code(), exit::USAGE);
        assert_eq!(CliError::Config("c".into()).exit_code(), exit::CONFIG);
        assert_eq!(CliError::NoInput("n".into()).exit_code(), exit::NO_INPUT);
        assert_eq!(CliError::Reported(0).exit_code(), 0);
        assert!(!CliError::Reported(75).unreported());
        let message = CliError::store("cannot list")(StoreError::NotFound("no ticket #4".into()));
        assert_eq!(message.to_string(), "cannot list: no ticket #4");
    }
}
