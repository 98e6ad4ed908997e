//! Typed settings: the embedded defaults, an optional file on top, then `TICKETD__…` variables.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::mail::address;

/// The embedded defaults; every setting is here with a comment.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Environment variable naming the configuration file when `--config` is not given.
pub const CONFIG_ENV: &str = "TICKETD_CONFIG";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("configuration key `{key}`: {message}")]
    Key { key: String, message: String },
    #[error("configuration: {0}")]
    Other(String),
}

fn key_error(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Key {
        key: key.into(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub store: StoreSettings,
    pub data: DataSettings,
    pub tickets: TicketSettings,
    pub limits: LimitSettings,
    pub mail: MailSettings,
    pub queues: Vec<QueueSettings>,
    pub daemon: DaemonSettings,
    #[serde(default)]
    pub imap: Vec<ImapSettings>,
    #[serde(default)]
    pub maildir: Vec<MaildirSettings>,
    /// Outgoing mail server; without it notifications go to `outbox.maildir`.
    pub smtp: Option<SmtpSettings>,
    pub outbox: OutboxSettings,
    pub notify: NotifySettings,
    pub agents: AgentSettings,
}

/// How a mail from an agent's address proves it is the agent's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentTrust {
    /// The `Authentication-Results` of our own MTA (`agents.authserv_id`) show
    /// DMARC passed, or DKIM passed for the From domain.
    Dmarc,
    /// ticketd checks the DKIM signature itself (the `dkim` cargo feature).
    Dkim,
    /// The From address alone (a closed network only).
    Sender,
}

/// Whose ticket an agent's forward of a customer's mail opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardedMail {
    /// The customer whose mail was forwarded.
    OriginalSender,
    /// The agent who forwarded it.
    Agent,
}

/// One value or a list of them, in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values, in order.
    pub fn values(&self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one.clone()],
            OneOrMany::Many(many) => many.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    pub trust: AgentTrust,
    /// The authserv-id(s) our own MTA writes in `Authentication-Results`; `""`
    /// for a header without one (Microsoft 365); default this host's fully
    /// qualified name.
    pub authserv_id: Option<OneOrMany>,
    pub forwarded_mail: ForwardedMail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    /// Default 465 with `tls`, 587 with `starttls`, 25 with `plain`.
    pub port: Option<u16>,
    #[serde(default)]
    pub security: Security,
    pub user: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    #[serde(default)]
    pub auth: AuthMethod,
    pub oauth_token_file: Option<PathBuf>,
    pub oauth_token_command: Option<String>,
    /// PEM file of the CA that signs the server certificate; default: the public web roots.
    pub ca_file: Option<PathBuf>,
    /// Seconds to wait for the server at each step.
    #[serde(default = "default_smtp_timeout")]
    pub timeout_secs: u64,
    /// The name given in EHLO; default the host's fully qualified name.
    pub helo_name: Option<String>,
}

fn default_smtp_timeout() -> u64 {
    30
}

impl SmtpSettings {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            Security::Tls => 465,
            Security::Starttls => 587,
            Security::Plain => 25,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSettings {
    pub retry_base_secs: u64,
    pub max_age_hours: u64,
    pub maildir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    pub max_auto_per_sender_per_hour: u32,
    pub default_language: String,
    /// A directory with templates that replace or add to the shipped ones (`<lang>/<event>.txt.j2`).
    pub templates_dir: Option<PathBuf>,
    pub reminder_after_hours: u64,
    pub notify_agents: bool,
    /// Days an address stays flagged after a proven delivery failure.
    pub bounce_flag_days: u64,
    /// Characters of a customer's text quoted in a notification, at most.
    pub max_quoted_chars: usize,
    /// Addresses that automatic mail caused by one inbound message goes to, at most
    /// (agents not counted).
    pub max_auto_per_message: usize,
    /// A customer's attachments forwarded to agents, in bytes, at most per notification.
    pub max_attachment_bytes_to_agents: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonSettings {
    pub poll_interval_secs: u64,
    pub idle_timeout_secs: u64,
    pub fetch_batch: u32,
    pub connect_timeout_secs: u64,
    pub reconnect_max_secs: u64,
    pub auth_failure_backoff_secs: u64,
    pub maildir_poll_millis: u64,
}

/// How a connection to a mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    #[default]
    Tls,
    /// A plain connection upgraded with STARTTLS before authenticating.
    Starttls,
    /// No encryption at all; only when set explicitly (e.g. a server on loopback).
    Plain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    /// IMAP LOGIN (or SMTP AUTH LOGIN/PLAIN, whichever the server offers).
    #[default]
    Login,
    /// SASL PLAIN.
    Plain,
    /// SASL XOAUTH2 with a bearer token (Microsoft 365, Gmail).
    Xoauth2,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapSettings {
    /// A name for logs and for the cursor kept in the database; default `user@host`.
    pub name: Option<String>,
    pub host: String,
    /// Default 993 with `tls`, 143 otherwise.
    pub port: Option<u16>,
    #[serde(default)]
    pub security: Security,
    pub user: String,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    #[serde(default)]
    pub auth: AuthMethod,
    /// XOAUTH2: a file holding the current access token (re-read at every connection).
    pub oauth_token_file: Option<PathBuf>,
    /// XOAUTH2: a command (run with `sh -c`) that prints the current access token.
    pub oauth_token_command: Option<String>,
    #[serde(default = "default_mailbox")]
    pub mailbox: String,
    /// Queue for every message of this mailbox; default: the recipient address decides.
    pub queue: Option<String>,
    #[serde(default = "default_processed_folder")]
    pub processed_folder: String,
    /// PEM file of the CA that signs the server certificate; default: the public web roots.
    pub ca_file: Option<PathBuf>,
}

fn default_mailbox() -> String {
    "INBOX".to_string()
}

fn default_processed_folder() -> String {
    "Processed".to_string()
}

impl ImapSettings {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            Security::Tls => 993,
            _ => 143,
        })
    }

    /// The name used in logs and as the cursor's key.
    pub fn label(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("imap:{}@{}", self.user, self.host))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaildirSettings {
    pub path: PathBuf,
    /// Queue for every message of this Maildir; default: the recipient address decides.
    pub queue: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSettings {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownSenderPolicy {
    Create,
    Hold,
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CcPolicy {
    None,
    Organization,
    All,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketSettings {
    pub tag: String,
    pub unknown_sender: UnknownSenderPolicy,
    pub default_queue: String,
    pub cc_participants: CcPolicy,
    /// Copied addresses of one message that become participants, at most.
    pub max_participants_per_message: usize,
    /// The key of keyed reply addresses (see [`crate::mail::reply_token`]).
    #[serde(default)]
    pub reply_token_secret: Option<String>,
    /// A file holding that key; when neither is set, one is made in the data directory.
    #[serde(default)]
    pub reply_token_secret_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub max_message_bytes: u64,
    pub max_attachment_bytes: u64,
    /// Seconds one message may take to read; past them it is held as `too_costly`.
    pub message_budget_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    pub own_addresses: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    pub name: String,
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default = "default_allowed_roles")]
    pub allowed_roles: Vec<Role>,
    /// Display name on notifications from this queue; default the `[notify]` product name.
    pub from_name: Option<String>,
    /// Envelope sender (return path) of this queue's notifications; default its first
    /// address. Each notification goes out from `<local>+bounce-<id>-<key>@<domain>`.
    pub envelope_sender: Option<String>,
    /// The agents told of this queue's tickets; default every active agent.
    pub agents: Option<Vec<String>>,
    /// Addresses whose mail from an agent is an internal note on the ticket.
    #[serde(default)]
    pub comment_addresses: Vec<String>,
}

fn default_allowed_roles() -> Vec<Role> {
    vec![Role::Admin, Role::Support]
}

/// What a contact may do; queues list the roles allowed to open tickets in them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Support,
    Billing,
    License,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Support, Role::Billing, Role::License];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Support => "support",
            Role::Billing => "billing",
            Role::License => "license",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("unknown role `{s}` (expected admin, support, billing or license)")
            })
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl Settings {
    /// Loads the embedded defaults, then `file` (if any), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        Self::load_with_env(file, &vars)
    }

    /// As [`Settings::load`], with the environment given explicitly (for tests).
    pub fn load_with_env(
        file: Option<&Path>,
        vars: &[(String, String)],
    ) -> Result<Settings, ConfigError> {
        let mut merged: toml::Table = toml::from_str(DEFAULT_TOML)
            .map_err(|e| ConfigError::Other(format!("embedded defaults are broken: {e}")))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            let overlay: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Syntax {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
            merge_tables(&mut merged, overlay);
        }
        let merged_text = toml::to_string(&merged)
            .map_err(|e| ConfigError::Other(format!("cannot re-serialize settings: {e}")))?;
        let env: config::Map<String, String> = vars
            .iter()
            .filter(|(k, _)| k.starts_with("TICKETD__"))
            .cloned()
            .collect();
        let built = config::Config::builder()
            .add_source(config::File::from_str(
                &merged_text,
                config::FileFormat::Toml,
            ))
            .add_source(
                config::Environment::with_prefix("TICKETD")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("mail.own_addresses")
                    .source(Some(env)),
            )
            .build()
            .map_err(|e| ConfigError::Other(e.to_string()))?;
        let mut settings: Settings = serde_path_to_error::deserialize(built).map_err(|e| {
            let key = e.path().to_string();
            key_error(key, e.into_inner().to_string())
        })?;
        settings.validate()?;
        settings.normalize();
        let configured_url = settings.store.url.clone();
        let base = path_base(file)?;
        settings.resolve_paths(&base);
        if file.is_some() {
            refuse_store_left_behind(&configured_url, &settings.store.url)?;
        }
        Ok(settings)
    }

    /// Addresses and names as they are used: `Bounces <b@x.com>` → `b@x.com`,
    /// `Mail.Example.com.` → `mail.example.com` (validation accepted them).
    fn normalize(&mut self) {
        for queue in &mut self.queues {
            if let Some(sender) = &queue.envelope_sender {
                queue.envelope_sender = address::normalize(sender);
            }
            if let Some(agents) = &mut queue.agents {
                *agents = agents
                    .iter()
                    .filter_map(|a| address::normalize(a))
                    .collect();
            }
            queue.comment_addresses = queue
                .comment_addresses
                .iter()
                .filter_map(|a| address::normalize(a))
                .collect();
        }
        if let Some(smtp) = &mut self.smtp
            && let Some(name) = &smtp.helo_name
        {
            smtp.helo_name = address::normalize_domain(name);
        }
    }

    /// Makes every relative path absolute against `base`, so that the daemon,
    /// the MTA's pipe and the CLI open the same files from any working directory.
    pub fn resolve_paths(&mut self, base: &Path) {
        let absolute = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        };
        let optional = |path: &mut Option<PathBuf>| {
            if let Some(path) = path
                && path.is_relative()
            {
                *path = base.join(&*path);
            }
        };
        self.store.url = resolve_sqlite_url(&self.store.url, base);
        absolute(&mut self.data.dir);
        absolute(&mut self.outbox.maildir);
        optional(&mut self.notify.templates_dir);
        optional(&mut self.tickets.reply_token_secret_file);
        for source in &mut self.maildir {
            absolute(&mut source.path);
        }
        for source in &mut self.imap {
            optional(&mut source.password_file);
            optional(&mut source.oauth_token_file);
            optional(&mut source.ca_file);
        }
        if let Some(smtp) = &mut self.smtp {
            optional(&mut smtp.password_file);
            optional(&mut smtp.oauth_token_file);
            optional(&mut smtp.ca_file);
        }
    }

    /// Checks what serde cannot: URLs, addresses, names that must refer to each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_store()?;
        let names = self.validate_queues()?;
        for (i, source) in self.imap.iter().enumerate() {
            self.validate_imap(i, source)?;
        }
        self.validate_maildirs(&names)?;
        if let Some(smtp) = &self.smtp {
            validate_smtp(smtp)?;
        }
        self.validate_limits()
    }

    /// The store's URL and pool, and the tag the store's tickets are named by.
    fn validate_store(&self) -> Result<(), ConfigError> {
        let url = self.store.url.as_str();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(key_error(
                "store.url",
                format!("`{url}` is neither sqlite://PATH nor postgres://…"),
            ));
        }
        if self.store.max_connections == 0 {
            return Err(key_error("store.max_connections", "must be at least 1"));
        }
        let tag = self.tickets.tag.trim();
        if tag.is_empty() || tag.contains(['[', ']', '#']) {
            return Err(key_error(
                "tickets.tag",
                "must be a non-empty word without `[`, `]` or `#`",
            ));
        }
        Ok(())
    }

    /// Queues: unique names, addresses that route to one queue only, roles,
    /// the default queue. Returns the queue names.
    fn validate_queues(&self) -> Result<std::collections::HashSet<&str>, ConfigError> {
        if self.queues.is_empty() {
            return Err(key_error("queues", "at least one queue is needed"));
        }
        let mut names = std::collections::HashSet::new();
        let mut seen_addresses = std::collections::HashMap::new();
        for (i, queue) in self.queues.iter().enumerate() {
            if queue.name.trim().is_empty() {
                return Err(key_error(format!("queues[{i}].name"), "must not be empty"));
            }
            if !names.insert(queue.name.as_str()) {
                return Err(key_error(
                    format!("queues[{i}].name"),
                    format!("queue `{}` is defined twice", queue.name),
                ));
            }
            for (j, addr) in queue.addresses.iter().enumerate() {
                let Some(norm) = address::normalize(addr) else {
                    return Err(key_error(
                        format!("queues[{i}].addresses[{j}]"),
                        format!("`{addr}` is not an email address"),
                    ));
                };
                if let Some(other) = seen_addresses.insert(norm, queue.name.clone()) {
                    return Err(key_error(
                        format!("queues[{i}].addresses[{j}]"),
                        format!("`{addr}` already routes to queue `{other}`"),
                    ));
                }
            }
            if let Some(sender) = &queue.envelope_sender
                && address::normalize(sender).is_none()
            {
                return Err(key_error(
                    format!("queues[{i}].envelope_sender"),
                    format!("`{sender}` is not an email address"),
                ));
            }
            for (j, addr) in queue.comment_addresses.iter().enumerate() {
                let key = format!("queues[{i}].comment_addresses[{j}]");
                let Some(norm) = address::normalize(addr) else {
                    return Err(key_error(key, format!("`{addr}` is not an email address")));
                };
                if let Some(other) = seen_addresses.insert(norm, queue.name.clone()) {
                    return Err(key_error(
                        key,
                        format!("`{addr}` already belongs to queue `{other}`"),
                    ));
                }
            }
            for (j, addr) in queue.agents.iter().flatten().enumerate() {
                if address::normalize(addr).is_none() {
                    return Err(key_error(
                        format!("queues[{i}].agents[{j}]"),
                        format!("`{addr}` is not an email address"),
                    ));
                }
            }
            if queue.allowed_roles.is_empty() {
                return Err(key_error(
                    format!("queues[{i}].allowed_roles"),
                    "list at least one role, or nobody can open tickets here",
                ));
            }
        }
        if !names.contains(self.tickets.default_queue.as_str()) {
            return Err(key_error(
                "tickets.default_queue",
                format!("no queue is named `{}`", self.tickets.default_queue),
            ));
        }
        if self.queues.iter().all(|q| q.addresses.is_empty()) {
            return Err(key_error(
                "queues",
                "at least one queue needs an address to send notifications from",
            ));
        }
        Ok(names)
    }

    /// Maildir sources name existing queues.
    fn validate_maildirs(
        &self,
        names: &std::collections::HashSet<&str>,
    ) -> Result<(), ConfigError> {
        for (i, source) in self.maildir.iter().enumerate() {
            if let Some(queue) = &source.queue
                && !names.contains(queue.as_str())
            {
                return Err(key_error(
                    format!("maildir[{i}].queue"),
                    format!("no queue is named `{queue}`"),
                ));
            }
        }
        Ok(())
    }

    /// The daemon's, the outbox's and the pipeline's limits and own addresses.
    fn validate_limits(&self) -> Result<(), ConfigError> {
        if self.daemon.fetch_batch == 0 {
            return Err(key_error("daemon.fetch_batch", "must be at least 1"));
        }
        if self.daemon.idle_timeout_secs == 0 || self.daemon.poll_interval_secs == 0 {
            return Err(key_error(
                "daemon",
                "idle_timeout_secs and poll_interval_secs must be at least 1",
            ));
        }
        if self.limits.message_budget_secs == 0 {
            return Err(key_error(
                "limits.message_budget_secs",
                "must be at least 1",
            ));
        }
        if self.outbox.retry_base_secs == 0 {
            return Err(key_error("outbox.retry_base_secs", "must be at least 1"));
        }
        for (i, addr) in self.mail.own_addresses.iter().enumerate() {
            if address::normalize(addr).is_none() {
                return Err(key_error(
                    format!("mail.own_addresses[{i}]"),
                    format!("`{addr}` is not an email address"),
                ));
            }
        }
        Ok(())
    }

    fn validate_imap(&self, i: usize, source: &ImapSettings) -> Result<(), ConfigError> {
        let key = |field: &str| format!("imap[{i}].{field}");
        if source.host.trim().is_empty() {
            return Err(key_error(key("host"), "must not be empty"));
        }
        if source.user.trim().is_empty() {
            return Err(key_error(key("user"), "must not be empty"));
        }
        match source.auth {
            AuthMethod::Login | AuthMethod::Plain => {
                if source.password.is_some() == source.password_file.is_some() {
                    return Err(key_error(
                        key("password"),
                        "set exactly one of password and password_file",
                    ));
                }
            }
            AuthMethod::Xoauth2 => {
                if source.oauth_token_file.is_some() == source.oauth_token_command.is_some() {
                    return Err(key_error(
                        key("oauth_token_file"),
                        "auth = \"xoauth2\" needs exactly one of oauth_token_file and oauth_token_command",
                    ));
                }
            }
        }
        if let Some(queue) = &source.queue
            && !self.queues.iter().any(|q| &q.name == queue)
        {
            return Err(key_error(
                key("queue"),
                format!("no queue is named `{queue}`"),
            ));
        }
        if source.processed_folder.trim().is_empty() {
            return Err(key_error(key("processed_folder"), "must not be empty"));
        }
        if source.processed_folder == source.mailbox {
            return Err(key_error(
                key("processed_folder"),
                "must differ from the mailbox it empties",
            ));
        }
        Ok(())
    }

    /// Every address that is ours: queue and comment addresses and
    /// `mail.own_addresses`, normalized.
    pub fn own_addresses(&self) -> Vec<String> {
        self.queues
            .iter()
            .flat_map(|q| q.addresses.iter().chain(q.comment_addresses.iter()))
            .chain(self.mail.own_addresses.iter())
            .filter_map(|a| address::normalize(a))
            .collect()
    }

    /// Warnings `config check` prints for settings that work but are risky.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.agents.trust == AgentTrust::Sender {
            out.push(
                "agents.trust = \"sender\": anyone who writes an agent's address in From is \
                 trusted as that agent; use it on a closed network only"
                    .to_string(),
            );
        }
        if self.agents.trust == AgentTrust::Dkim && !cfg!(feature = "dkim") {
            out.push(
                "agents.trust = \"dkim\" needs ticketd built with the `dkim` feature; every \
                 agent's mail will be held as unverified"
                    .to_string(),
            );
        }
        out
    }

    /// The effective configuration as TOML, with passwords and URL credentials masked.
    pub fn to_masked_toml(&self) -> String {
        let mut value = match toml::Value::try_from(self) {
            Ok(v) => v,
            Err(e) => return format!("# cannot display settings: {e}\n"),
        };
        mask_secrets(&mut value);
        toml::to_string_pretty(&value)
            .unwrap_or_else(|e| format!("# cannot display settings: {e}\n"))
    }
}

/// The directory relative paths resolve against: the configuration file's
/// own (as docker compose does), else the working directory.
fn path_base(file: Option<&Path>) -> Result<PathBuf, ConfigError> {
    let cwd = std::env::current_dir()
        .map_err(|e| ConfigError::Other(format!("cannot read the working directory: {e}")))?;
    Ok(match file.and_then(Path::parent) {
        Some(dir) if !dir.as_os_str().is_empty() => cwd.join(dir),
        _ => cwd,
    })
}

/// `sqlite://data/x.db?mode=rwc` → `sqlite:///base/data/x.db?mode=rwc`; other URLs,
/// absolute paths and in-memory databases are returned as they are. The base
/// is percent-encoded where a URL needs it (`%`, `?`, `#`), as sqlx decodes it.
fn resolve_sqlite_url(url: &str, base: &Path) -> String {
    let trimmed = url.trim();
    let Some(rest) = trimmed.strip_prefix("sqlite:") else {
        return url.to_string();
    };
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let in_memory =
        path.is_empty() || path == ":memory:" || query.is_some_and(|q| q.contains("mode=memory"));
    if in_memory || Path::new(path).is_absolute() {
        return url.to_string();
    }
    let base =
        percent_encoding::utf8_percent_encode(&base.to_string_lossy(), URL_SPECIAL).to_string();
    let absolute = format!("{}/{path}", base.trim_end_matches('/'));
    match query {
        Some(query) => format!("sqlite://{absolute}?{query}"),
        None => format!("sqlite://{absolute}"),
    }
}

/// A relative `store.url` used to resolve against the working directory. When
/// it now names no database but the old place has one, that is an installation
/// from before: refuse, naming the absolute path to write, rather than start an
/// empty store beside the configuration.
fn refuse_store_left_behind(configured: &str, resolved: &str) -> Result<(), ConfigError> {
    let (Some(configured_path), Some(resolved_path)) =
        (sqlite_file(configured), sqlite_file(resolved))
    else {
        return Ok(());
    };
    if configured_path.is_absolute() || resolved_path.exists() {
        return Ok(());
    }
    let Ok(old) = std::env::current_dir().map(|cwd| cwd.join(&configured_path)) else {
        return Ok(());
    };
    if old == resolved_path || !old.exists() {
        return Ok(());
    }
    Err(key_error(
        "store.url",
        format!(
            "`{configured}` resolves against the configuration file's directory, to {}, where \
             there is no database; the database is at {}: write store.url = \"sqlite://{}\"",
            resolved_path.display(),
            old.display(),
            old.display()
        ),
    ))
}

/// What must be escaped in a file path inside a `sqlite://` URL.
const URL_SPECIAL: &percent_encoding::AsciiSet =
    &percent_encoding::CONTROLS.add(b'%').add(b'?').add(b'#');

/// The SQLite database file a `store.url` names (percent-decoded, as sqlx
/// opens it); `None` for PostgreSQL and in-memory databases.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.trim().strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = path.is_empty() || path == ":memory:" || query.contains("mode=memory");
    if in_memory {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    Some(PathBuf::from(decoded.as_ref()))
}

/// Overlays `top` on `base`: tables merge key by key, anything else (arrays too) is replaced.
fn merge_tables(base: &mut toml::Table, top: toml::Table) {
    for (key, value) in top {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(t)) => merge_tables(b, t),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// An SMTP relay: a host, a HELO name that is one, and credentials that fit its `auth`.
fn validate_smtp(smtp: &SmtpSettings) -> Result<(), ConfigError> {
    if smtp.host.trim().is_empty() {
        return Err(key_error("smtp.host", "must not be empty"));
    }
    if let Some(name) = &smtp.helo_name
        && address::normalize_domain(name).is_none()
    {
        return Err(key_error(
            "smtp.helo_name",
            format!("`{name}` is not a fully qualified host name"),
        ));
    }
    match smtp.auth {
        AuthMethod::Xoauth2 => {
            if smtp.user.is_none()
                || smtp.oauth_token_file.is_some() == smtp.oauth_token_command.is_some()
            {
                return Err(key_error(
                    "smtp.oauth_token_file",
                    "auth = \"xoauth2\" needs user and exactly one of oauth_token_file and oauth_token_command",
                ));
            }
        }
        _ => {
            if smtp.password.is_some() && smtp.password_file.is_some() {
                return Err(key_error(
                    "smtp.password",
                    "set password or password_file, not both",
                ));
            }
            if smtp.user.is_some() != (smtp.password.is_some() || smtp.password_file.is_some()) {
                return Err(key_error(
                    "smtp.user",
                    "user and password (or password_file) go together",
                ));
            }
        }
    }
    Ok(())
}

const MASK: &str = "********";

fn mask_secrets(value: &mut toml::Value) {
    match value {
        toml::Value::Table(table) => {
            for (key, v) in table.iter_mut() {
                let lower = key.to_ascii_lowercase();
                if lower.contains("password") || lower.contains("secret") || lower == "token" {
                    if let toml::Value::String(s) = v
                        && !s.is_empty()
                    {
                        *s = MASK.to_string();
                    }
                } else if lower == "url" {
                    if let toml::Value::String(s) = v {
                        *s = mask_url_password(s);
                    }
                } else {
                    mask_secrets(v);
                }
            }
        }
        toml::Value::Array(items) => items.iter_mut().for_each(mask_secrets),
        _ => {}
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:********@host/db`.
pub fn mask_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let userinfo = &authority[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:{}{}",
            &url[..scheme_end + 3],
            &userinfo[..colon],
            MASK,
            &rest[at..]
        ),
        None => url.to_string(),
    }
}

/// Resolves the configuration file: the flag, else `TICKETD_CONFIG`, else none.
pub fn config_path(flag: Option<PathBuf>) -> Option<PathBuf> {
    flag.or_else(|| {
        std::env::var_os(CONFIG_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(toml_text: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.toml");
        std::fs::write(&path, toml_text).expect("write");
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load_with_env(Some(&path), &env)
    }

    #[test]
    fn embedded_defaults_load_and_validate() {
        let s = Settings::load_with_env(None, &[]).expect("defaults");
        assert_eq!(s.tickets.tag, "Support");
        assert_eq!(s.tickets.unknown_sender, UnknownSenderPolicy::Create);
        assert!(s.store.url.starts_with("sqlite://"));
        assert_eq!(s.queues[0].allowed_roles, vec![Role::Admin, Role::Support]);
    }

    #[test]
    fn file_layers_on_defaults_and_replaces_queue_list() {
        let s = load_str(
            "[tickets]\ntag = \"Help\"\ndefault_queue = \"billing\"\n[[queues]]\nname = \"billing\"\naddresses = [\"billing@example.com\"]\nallowed_roles = [\"billing\"]\n",
            &[],
        )
        .expect("load");
        assert_eq!(s.tickets.tag, "Help");
        assert_eq!(s.tickets.unknown_sender, UnknownSenderPolicy::Create);
        assert_eq!(s.queues.len(), 1);
        assert_eq!(s.queues[0].allowed_roles, vec![Role::Billing]);
    }

    #[test]
    fn environment_overrides_file() {
        let s = load_str(
            "[store]\nurl = \"sqlite://a.db\"\n",
            &[
                ("TICKETD__STORE__URL", "sqlite://b.db"),
                ("TICKETD__TICKETS__UNKNOWN_SENDER", "hold"),
            ],
        )
        .expect("load");
        assert!(s.store.url.starts_with("sqlite:///"), "{}", s.store.url);
        assert!(s.store.url.ends_with("/b.db"), "{}", s.store.url);
        assert_eq!(s.tickets.unknown_sender, UnknownSenderPolicy::Hold);
    }

    #[test]
    fn unknown_key_is_an_error_naming_the_key() {
        let err = load_str("[tickets]\ntagg = \"x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("tagg"), "{err}");
        let err = load_str("[nonsense]\na = 1\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("nonsense"), "{err}");
    }

    #[test]
    fn bad_value_is_an_error_naming_the_key() {
        let err = load_str("[tickets]\nunknown_sender = \"maybe\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("tickets.unknown_sender"), "{err}");
        let err = load_str("[store]\nurl = \"mysql://x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("store.url"), "{err}");
        let err = load_str("[tickets]\ndefault_queue = \"nope\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("tickets.default_queue"), "{err}");
    }

    #[test]
    fn relative_paths_in_a_file_resolve_against_its_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ticketd.toml");
        std::fs::write(
            &path,
            "[store]\nurl = \"sqlite://db/t.db?mode=rwc\"\n[[maildir]]\npath = \"inbox\"\n",
        )
        .expect("write");
        let s = Settings::load_with_env(Some(&path), &[]).expect("load");
        let base = dir.path();
        assert_eq!(
            s.store.url,
            format!("sqlite://{}?mode=rwc", base.join("db/t.db").display())
        );
        assert_eq!(s.maildir[0].path, base.join("inbox"));
        // Defaults the file does not override resolve there too.
        assert_eq!(s.data.dir, base.join("data"));
        assert_eq!(s.outbox.maildir, base.join("data/sent"));
    }

    #[test]
    fn embedded_defaults_alone_resolve_against_the_working_directory() {
        let s = Settings::load_with_env(None, &[]).expect("defaults");
        let cwd = std::env::current_dir().expect("cwd");
        assert_eq!(s.data.dir, cwd.join("data"));
        assert_eq!(
            s.store.url,
            format!("sqlite://{}", cwd.join("data/ticketd.db").display())
        );
        assert_eq!(sqlite_file(&s.store.url), Some(cwd.join("data/ticketd.db")));
    }

    #[test]
    fn absolute_paths_and_other_databases_are_left_alone() {
        let base = Path::new("/etc/ticketd");
        for url in [
            "sqlite:///var/lib/ticketd/ticketd.db",
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://x.db?mode=memory",
            "postgres://u@h/db",
        ] {
            assert_eq!(resolve_sqlite_url(url, base), url);
        }
        assert_eq!(
            resolve_sqlite_url("sqlite:t.db", base),
            "sqlite:///etc/ticketd/t.db"
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        // Characters a URL reserves are escaped on the way in and decoded on the way out.
        let odd = Path::new("/srv/a?b#c%d");
        let url = resolve_sqlite_url("sqlite://t.db", odd);
        assert_eq!(url, "sqlite:///srv/a%3Fb%23c%25d/t.db");
        assert_eq!(sqlite_file(&url), Some(odd.join("t.db")));
        assert_eq!(sqlite_file("postgres://u@h/db"), None);
    }

    #[test]
    fn a_store_left_at_the_old_relative_place_is_named_not_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cwd = std::env::current_dir().expect("cwd");
        let relative = format!("ticketd-left-behind-{}.db", std::process::id());
        let old = cwd.join(&relative);
        std::fs::write(&old, b"").expect("old store");
        let result = refuse_store_left_behind(
            &format!("sqlite://{relative}"),
            &format!("sqlite://{}", dir.path().join(&relative).display()),
        );
        std::fs::remove_file(&old).expect("clean up");
        let err = result.expect_err("refused").to_string();
        assert!(err.contains(&old.display().to_string()), "{err}");
        assert!(
            refuse_store_left_behind("sqlite://nowhere.db", "sqlite:///tmp/x/nowhere.db").is_ok()
        );
    }

    #[test]
    fn envelope_sender_and_helo_name_are_used_normalized() {
        let s = load_str(
            "[[queues]]\nname = \"support\"\naddresses = [\"support@example.com\"]\n\
             envelope_sender = \"Bounces <Bounces@Example.com>\"\n\
             [smtp]\nhost = \"h\"\nhelo_name = \"Mail.Example.com.\"\n",
            &[],
        )
        .expect("load");
        assert_eq!(
            s.queues[0].envelope_sender.as_deref(),
            Some("bounces@example.com")
        );
        assert_eq!(
            s.smtp.and_then(|smtp| smtp.helo_name).as_deref(),
            Some("mail.example.com")
        );
    }

    #[test]
    fn envelope_sender_and_helo_name_are_checked() {
        let err = load_str(
            "[[queues]]\nname = \"support\"\naddresses = [\"support@example.com\"]\nenvelope_sender = \"nope\"\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("queues[0].envelope_sender"), "{err}");
        let err = load_str("[smtp]\nhost = \"h\"\nhelo_name = \"vm\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("smtp.helo_name"), "{err}");
    }

    #[test]
    fn masked_output_hides_url_password() {
        assert_eq!(
            mask_url_password("postgres://u:pw@h:5432/db"),
            "postgres://u:********@h:5432/db"
        );
        assert_eq!(
            mask_url_password("sqlite://data/x.db"),
            "sqlite://data/x.db"
        );
        let s = load_str("[store]\nurl = \"postgres://u:secretpw@h/db\"\n", &[]).expect("load");
        let shown = s.to_masked_toml();
        assert!(!shown.contains("secretpw"), "{shown}");
    }
}
