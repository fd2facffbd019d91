//! `[[sources]]`: the source databases whose binlog state (MySQL) or replication slots
//! (PostgreSQL) the exporter reads for lag and retention, and which tasks belong to each. Validated at start-up and on reload like the rest: a password in
//! the URL, a task under two sources or an unreadable password file is refused by name.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use regex::Regex;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tracing::warn;
use url::Url;

use super::{invalid, ConfigError};
use crate::task::TaskSpec;

/// `[[sources]]`, as read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The `source` label of its series.
    pub name: String,
    /// `mysql://user@host:port` or `postgresql://user@host:port/database` (`postgres://` too);
    /// a password here is refused (use `password_file`).
    pub url: String,
    /// A file holding the monitoring user's password (the key file rule applies).
    pub password_file: Option<PathBuf>,
    /// The name of an environment variable holding it (Kubernetes `secretKeyRef`).
    pub password_env: Option<String>,
    /// `disabled`, `preferred` (default), `required`, `verify_ca`, `verify_identity`.
    #[serde(default = "default_tls")]
    pub tls: TlsMode,
    /// A PEM CA certificate to verify the server with.
    pub ca_file: Option<PathBuf>,
    /// Task ids that read from this source.
    #[serde(default)]
    pub tasks: Vec<String>,
    /// Discovered tasks whose name matches read from this source.
    pub task_name_regex: Option<String>,
    /// How long one round may take; default `min(5s, api.timeout)`.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// PostgreSQL: which slot a task reads through, by task id, where its name does not say.
    #[serde(default)]
    pub slots: HashMap<String, String>,
    /// PostgreSQL: the slots to watch (default `^udts_`, UDTS's own prefix).
    pub slot_name_regex: Option<String>,
}

/// What a source is, from its URL's scheme.
#[derive(Debug, Clone)]
pub enum SourceKind {
    /// MySQL or MariaDB: its binlog.
    MySql,
    /// PostgreSQL: its WAL and the replication slots UDTS reads through.
    Postgres {
        /// The database to connect to (the URL's path; default `postgres`).
        database: String,
        /// The slots watched.
        slot_name_regex: Regex,
        /// Task id -> slot name, where set.
        slots: HashMap<String, String>,
    },
}

/// Slot names allow only `[a-z0-9_]`: a task id `udts-abc123` names slots `udts_abc123...`.
pub fn slot_name_of(task_id: &str) -> String {
    task_id.chars().map(slot_char).collect()
}

/// A character of a task id as a slot name spells it: lower case, and `_` for anything other
/// than a letter or digit.
pub fn slot_char(c: char) -> char {
    let c = c.to_ascii_lowercase();
    if c.is_ascii_lowercase() || c.is_ascii_digit() {
        c
    } else {
        '_'
    }
}

fn default_tls() -> TlsMode {
    TlsMode::Preferred
}

/// `tls` of a `[[sources]]` entry, as MySQL's `--ssl-mode` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// Plain TCP.
    Disabled,
    /// TLS when the server offers it, without verifying its certificate; plain otherwise.
    Preferred,
    /// TLS, without verifying the server's certificate.
    Required,
    /// TLS, the certificate verified against `ca_file` (or the system roots), any host name.
    VerifyCa,
    /// TLS, the certificate verified and issued for the host connected to.
    VerifyIdentity,
}

/// Where and as whom to connect. The password is a secret: never in `Debug`, a log or an
/// error.
#[derive(Clone)]
pub struct Connection {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The monitoring user.
    pub user: String,
    /// Its password.
    pub password: Option<SecretString>,
    /// How to use TLS.
    pub tls: TlsMode,
    /// A PEM CA certificate to verify the server with (`verify_ca`, `verify_identity`).
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("tls", &self.tls)
            .finish()
    }
}

/// One `[[sources]]` entry, validated.
#[derive(Clone)]
pub struct SourceSettings {
    /// The `source` label.
    pub name: String,
    /// Where and how to connect.
    pub connection: Connection,
    /// MySQL or PostgreSQL, and for PostgreSQL its slots.
    pub kind: SourceKind,
    /// Task ids mapped to it.
    pub tasks: Vec<String>,
    /// Tasks whose name matches are mapped to it.
    pub task_name_regex: Option<Regex>,
    /// How long one round may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for SourceSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceSettings")
            .field("name", &self.name)
            .field("connection", &self.connection)
            .field("tasks", &self.tasks.len())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SourceSettings {
    /// Whether `other` reads the same server the same way (a reload keeps its samples).
    pub fn same_connection(&self, other: &Self) -> bool {
        let a = &self.connection;
        let b = &other.connection;
        let database = |kind: &SourceKind| match kind {
            SourceKind::MySql => None,
            SourceKind::Postgres { database, .. } => Some(database.clone()),
        };
        (&a.host, a.port, &a.user, a.tls, &a.ca_pem) == (&b.host, b.port, &b.user, b.tls, &b.ca_pem)
            && database(&self.kind) == database(&other.kind)
            && a.password.as_ref().map(ExposeSecret::expose_secret)
                == b.password.as_ref().map(ExposeSecret::expose_secret)
            && self.timeout == other.timeout
    }
}

/// Validates `[[sources]]`; `default_timeout` is the round timeout when none is set.
pub(super) fn resolve_sources(
    sources: &[SourceConfig],
    default_timeout: Duration,
) -> Result<Vec<SourceSettings>, ConfigError> {
    let mut names = HashSet::new();
    let mut owner_of: HashMap<&str, &str> = HashMap::new();
    let mut resolved = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let key = |field: &str| format!("sources[{i}].{field}");
        let name = source.name.trim();
        if name.is_empty() || !names.insert(name.to_string()) {
            return Err(invalid(
                key("name"),
                format!("`{name}` is empty or used twice"),
                "give every [[sources]] entry its own name, e.g. \"orders-primary\"",
            ));
        }
        let url = Url::parse(&source.url).ok().filter(|u| {
            matches!(u.scheme(), "mysql" | "postgresql" | "postgres") && u.host_str().is_some()
        });
        let Some(url) = url else {
            return Err(invalid(
                key("url"),
                format!(
                    "`{}` is not a mysql:// or postgresql:// URL with a host",
                    source.url
                ),
                "use e.g. \"mysql://udts_monitor@10.0.0.5:3306\" or \"postgresql://udts_monitor@10.0.0.6:5432/postgres\"",
            ));
        };
        let kind = source_kind(source, &url, &key)?;
        if url.password().is_some() {
            // Say so without repeating the URL: it holds the password.
            return Err(invalid(
                key("url"),
                "it carries a password",
                "remove it from the URL and set password_file (or password_env), e.g. \"mysql://udts_monitor@10.0.0.5:3306\"",
            ));
        }
        if url.username().is_empty() {
            return Err(invalid(
                key("url"),
                "it names no user",
                "put the monitoring user in it, e.g. \"mysql://udts_monitor@10.0.0.5:3306\"",
            ));
        }
        let password = match (&source.password_file, &source.password_env) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    key("password_file"),
                    "both password_file and password_env are set",
                    "keep one of them",
                ))
            }
            (Some(path), None) => {
                super::key_file::check_secret_file(&key("password_file"), path)?;
                let text = std::fs::read_to_string(path).map_err(|e| {
                    invalid(
                        key("password_file"),
                        format!("cannot read {}: {e}", path.display()),
                        "point it at a readable file holding only the password",
                    )
                })?;
                Some(SecretString::from(text.trim_end_matches(['\r', '\n'])))
            }
            (None, Some(variable)) => Some(SecretString::from(std::env::var(variable).map_err(
                |_| {
                    invalid(
                        key("password_env"),
                        format!("environment variable {variable} is not set"),
                        "set it, or name another variable",
                    )
                },
            )?)),
            (None, None) => None,
        };
        let ca_pem = match &source.ca_file {
            None => None,
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    invalid(
                        key("ca_file"),
                        format!("cannot read {}: {e}", path.display()),
                        "point it at a readable PEM file",
                    )
                })?;
                if !pem.starts_with(b"-----BEGIN") {
                    return Err(invalid(
                        key("ca_file"),
                        format!("{} is not a PEM certificate", path.display()),
                        "use a PEM file starting with -----BEGIN CERTIFICATE-----",
                    ));
                }
                Some(pem)
            }
        };
        for id in &source.tasks {
            if let Some(other) = owner_of.insert(id.as_str(), name) {
                return Err(invalid(
                    key("tasks"),
                    format!(
                        "task `{id}` is listed under both source `{other}` and source `{name}`"
                    ),
                    "list each task under the one source it reads from",
                ));
            }
        }
        let task_name_regex = match source.task_name_regex.as_deref() {
            None | Some("") => None,
            Some(pattern) => Some(Regex::new(pattern).map_err(|e| {
                invalid(
                    key("task_name_regex"),
                    format!("not a regular expression: {e}"),
                    "use a regular expression such as \"^orders-\"",
                )
            })?),
        };
        let timeout = source.timeout.unwrap_or(default_timeout);
        if timeout.is_zero() {
            return Err(invalid(
                key("timeout"),
                "it is zero",
                "use a duration above 0, e.g. \"5s\"",
            ));
        }
        resolved.push(SourceSettings {
            name: name.to_string(),
            connection: Connection {
                host: url
                    .host_str()
                    .unwrap_or_default()
                    .trim_matches(['[', ']'])
                    .to_string(),
                port: url.port().unwrap_or(match kind {
                    SourceKind::MySql => 3306,
                    SourceKind::Postgres { .. } => 5432,
                }),
                user: percent_decode(url.username()),
                password,
                tls: source.tls,
                ca_pem,
            },
            kind,
            tasks: source.tasks.clone(),
            task_name_regex,
            timeout,
        });
    }
    Ok(resolved)
}

/// The kind of source `url` names, with a PostgreSQL source's slot rules checked.
fn source_kind(
    source: &SourceConfig,
    url: &Url,
    key: &dyn Fn(&str) -> String,
) -> Result<SourceKind, ConfigError> {
    if url.scheme() == "mysql" {
        if !source.slots.is_empty() || source.slot_name_regex.is_some() {
            let field = if source.slots.is_empty() {
                "slot_name_regex"
            } else {
                "slots"
            };
            return Err(invalid(
                key(field),
                "a MySQL source has no replication slots",
                "remove it, or point url at the PostgreSQL source (postgresql://...)",
            ));
        }
        return Ok(SourceKind::MySql);
    }
    let database = percent_decode(url.path().trim_start_matches('/'));
    let pattern = source.slot_name_regex.as_deref().unwrap_or("^udts_");
    let slot_name_regex = Regex::new(pattern).map_err(|e| {
        invalid(
            key("slot_name_regex"),
            format!("not a regular expression: {e}"),
            "use a regular expression such as \"^udts_\"",
        )
    })?;
    for (task, slot) in &source.slots {
        let valid = !slot.is_empty()
            && slot
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(invalid(
                key(&format!("slots.{task}")),
                format!("`{slot}` is not a slot name (only a-z, 0-9 and _)"),
                "give the slot's name as pg_replication_slots shows it, e.g. \"udts_abc123\"",
            ));
        }
    }
    Ok(SourceKind::Postgres {
        database: if database.is_empty() {
            "postgres".into()
        } else {
            database
        },
        slot_name_regex,
        slots: source.slots.clone(),
    })
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Which source each task belongs to: listed ids first, then the first source whose
/// `task_name_regex` matches the task's name.
#[derive(Debug, Default)]
pub struct SourceMap {
    names: Vec<String>,
    /// A PostgreSQL source's slot rules: the watched slots, and task id -> slot where set.
    slot_rules: HashMap<String, (Regex, HashMap<String, String>)>,
    by_id: HashMap<String, usize>,
    regexes: Vec<(usize, Regex)>,
    /// Tasks whose name matched more than one regex, already logged.
    overlaps_logged: Mutex<std::collections::HashSet<String>>,
}

impl SourceMap {
    /// The map of `sources`.
    pub fn new(sources: &[SourceSettings]) -> Self {
        let mut map = Self::default();
        for (index, source) in sources.iter().enumerate() {
            map.names.push(source.name.clone());
            if let SourceKind::Postgres {
                slot_name_regex,
                slots,
                ..
            } = &source.kind
            {
                map.slot_rules.insert(
                    source.name.clone(),
                    (slot_name_regex.clone(), slots.clone()),
                );
            }
            for id in &source.tasks {
                map.by_id.entry(id.clone()).or_insert(index);
            }
            if let Some(regex) = &source.task_name_regex {
                map.regexes.push((index, regex.clone()));
            }
        }
        map
    }

    /// Whether no source is configured.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// A PostgreSQL source's watched-slot pattern and its task id -> slot map; `None` for a
    /// MySQL source.
    pub fn slot_rules(&self, source: &str) -> Option<(&Regex, &HashMap<String, String>)> {
        self.slot_rules
            .get(source)
            .map(|(regex, slots)| (regex, slots))
    }

    /// Whether any PostgreSQL source is configured.
    pub fn has_postgres(&self) -> bool {
        !self.slot_rules.is_empty()
    }

    /// The source `task` belongs to, if any.
    pub fn source_of(&self, task: &TaskSpec) -> Option<&str> {
        if let Some(index) = self.by_id.get(&task.id) {
            return self.names.get(*index).map(String::as_str);
        }
        let name = task.name.as_deref()?;
        let mut matching = self
            .regexes
            .iter()
            .filter(|(_, regex)| regex.is_match(name));
        let (first, _) = matching.next()?;
        if let Some((second, _)) = matching.next() {
            let mut logged = self
                .overlaps_logged
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if logged.insert(task.id.clone()) {
                warn!(
                    task_id = %task.id,
                    task_name = %name,
                    "the task's name matches task_name_regex of sources `{}` and `{}`; it goes to the first",
                    self.names[*first],
                    self.names[*second]
                );
            }
        }
        self.names.get(*first).map(String::as_str)
    }
}
