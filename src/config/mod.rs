//! Configuration: defaults, then a TOML file, then `UDTS_` environment variables (`__` nests:
//! `UDTS_API__PRIVATE_KEY`), then command-line flags. This module holds the file's shape;
//! `resolve.rs` validates it, one step per section, into what the exporter runs on
//! (`settings.rs`), with errors that name the key and the fix, before anything starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use secrecy::SecretString;
use serde::Deserialize;

use crate::limits::LIST_PAGE_LIMIT;
use crate::task::TaskKind;

mod accounts;
mod bounds;
pub mod credentials;
mod explain;
pub mod key_file;
mod resolve;
pub(crate) mod settings;
mod sources;

pub use accounts::Account;
pub use bounds::{Cutover, WebLimits};
pub use credentials::{AssumeRoleSettings, CredentialConfig};
pub use settings::{
    DiscoveryFilter, DiscoverySettings, ExpositionOptions, LabelRule, MetricFilter,
    MonitorSettings, Settings, Shard,
};
pub use sources::{
    slot_char, slot_name_of, Connection, SourceConfig, SourceKind, SourceMap, SourceSettings,
    TlsMode,
};

/// The gateway used when `api.endpoint` is not set: the host of the API document this project
/// started from. UCloud's own is `https://api.ucloud.cn`.
pub const DEFAULT_ENDPOINT: &str = "https://api.an-link.com";

/// The whole configuration, as read. [`Config::resolve`] turns it into [`Settings`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The exporter's own HTTP server.
    #[serde(default)]
    pub web: WebConfig,
    /// The gateway and the credentials to sign with, and settings shared by all accounts.
    #[serde(default)]
    pub api: ApiConfig,
    /// Further accounts, each with its own keys, endpoint and projects.
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
    /// The background poller.
    #[serde(default)]
    pub poll: PollConfig,
    /// Finding tasks with `ListUDTSTask`.
    #[serde(default)]
    pub discovery: DiscoveryConfig,
    /// Splitting the tasks of an account over several exporters.
    #[serde(default)]
    pub sharding: ShardingConfig,
    /// Which series to expose.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Tasks to poll, listed by hand.
    #[serde(default)]
    pub tasks: Vec<TaskConfig>,
    /// Source databases to read binlog state from, for lag.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// When a task counts as ready for cut-over, and the window of its rates and ETAs.
    #[serde(default)]
    pub cutover: CutoverConfig,
    /// UDTS's own monitoring numbers (UCloud CloudWatch), read with the same keys.
    #[serde(default)]
    pub monitor: MonitorConfig,
}

/// `[monitor]`: reading what UDTS publishes of each task to UCloud's monitoring service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// Read them (default true); off, no monitoring call is made.
    pub enabled: bool,
    /// Sent as `Region` when set (the docs mark it required except for global products, and do
    /// not say which `udts` is).
    pub region: Option<String>,
    /// How often to read (default and least 1m: the service samples once a minute).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            region: None,
            interval: Duration::from_secs(60),
        }
    }
}

/// `[cutover]`: the exporter's own readiness verdict and the window its rates are taken over.
/// Unset values follow the poll interval (see [`Cutover`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CutoverConfig {
    /// A ready task is at most this far behind its source (default 10s) ...
    #[serde(with = "humantime_serde")]
    pub max_lag: Option<Duration>,
    /// ... continuously for at least this long (default 5m, or two intervals if longer).
    #[serde(with = "humantime_serde")]
    pub steady_for: Option<Duration>,
    /// Throughput and ETAs on the page, the JSON and `wait` are over this much recent time
    /// (default 1m, or two intervals if longer).
    #[serde(with = "humantime_serde")]
    pub rate_window: Option<Duration>,
    /// A task judged by UDTS's own numbers has at most this much data left to apply
    /// (default 5MiB, as UDTS's cut-over guide waits for "less than 5 MB remaining").
    pub max_remaining: Option<bytesize::ByteSize>,
}

/// `[web]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// `ip:port` to serve on, or a list of them (IPv4 and IPv6, two interfaces);
    /// `--web.listen-address` (repeatable) overrides it.
    pub listen_address: ListenAddresses,
    /// Path of the metrics endpoint.
    pub telemetry_path: String,
    /// An exporter-toolkit web config file (TLS, basic auth); `--web.config.file` overrides it.
    pub config_file: Option<PathBuf>,
    /// Serve `POST /-/reload` (off by default, as in Prometheus); `--web.enable-lifecycle`
    /// turns it on.
    pub enable_lifecycle: bool,
    /// A client must send a complete request head within this long of its first byte (or of
    /// connecting): an absolute deadline, not per byte, so slowloris cannot stretch it.
    #[serde(with = "humantime_serde")]
    pub read_header_timeout: Duration,
    /// A keep-alive connection with no request is closed after this long; longer than a
    /// one-minute scrape interval, so Prometheus keeps its connection.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A response that makes no progress for this long (the client does not read) is cut off.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// Connections open at most; at the bound, the one that has sent no complete request for
    /// longest is closed to let a new one in.
    pub max_connections: usize,
    /// Requests handled at once at most, 503 beyond (0: no limit); `--web.max-requests`.
    pub max_requests: usize,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            listen_address: "0.0.0.0:9741".into(),
            telemetry_path: "/metrics".into(),
            config_file: None,
            enable_lifecycle: false,
            read_header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            write_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_requests: 40,
        }
    }
}

/// One listen address or several, as `web.listen_address` takes them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "OneOrMany")]
pub struct ListenAddresses(pub Vec<String>);

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl From<OneOrMany> for ListenAddresses {
    fn from(value: OneOrMany) -> Self {
        match value {
            OneOrMany::One(one) => Self(vec![one]),
            OneOrMany::Many(many) => Self(many),
        }
    }
}

impl From<&str> for ListenAddresses {
    fn from(address: &str) -> Self {
        Self(vec![address.to_string()])
    }
}

impl From<String> for ListenAddresses {
    fn from(address: String) -> Self {
        Self(vec![address])
    }
}

impl std::fmt::Display for ListenAddresses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(", "))
    }
}

/// `[api]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Base URL of the gateway; also the default of every `[[accounts]]` entry.
    pub endpoint: String,
    /// The account's public key. Leave empty when `[[accounts]]` lists the accounts.
    pub public_key: String,
    /// The account's private key, inline (prefer `private_key_file` or the environment).
    pub private_key: Option<SecretString>,
    /// A file holding the private key (e.g. a mounted secret); surrounding whitespace is ignored.
    pub private_key_file: Option<PathBuf>,
    /// The name of an environment variable holding the private key.
    pub private_key_env: Option<String>,
    /// A ucloud-cli profile whose keys (and base_url, project_id, region) to use.
    #[serde(default)]
    pub profile: Option<String>,
    /// ucloud-cli's credential.json; default `UCLOUD_SHARED_CREDENTIAL_FILE`, else
    /// `~/.ucloud/credential.json`.
    #[serde(default)]
    pub shared_credentials_file: Option<PathBuf>,
    /// ucloud-cli's config.json; default `UCLOUD_SHARED_CONFIG_FILE`, else
    /// `~/.ucloud/config.json`.
    #[serde(default)]
    pub shared_config_file: Option<PathBuf>,
    /// The role bound to this host, whose temporary keys the metadata server gives.
    #[serde(default)]
    pub instance_role: Option<String>,
    /// The metadata server; default `http://100.80.80.80`.
    #[serde(default)]
    pub metadata_endpoint: Option<String>,
    /// A role to assume through STS, signed with the keys above.
    #[serde(default)]
    pub assume_role: Option<credentials::AssumeRoleConfig>,
    /// Default `ProjectId` for every task; sub-accounts must set one.
    pub project_id: Option<String>,
    /// Per-request timeout; when not set, `min(10s, poll.interval)` (as Prometheus defaults
    /// `scrape_timeout`).
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Requests in flight at most, over all accounts.
    pub concurrency: usize,
    /// Larger response bodies are refused.
    pub max_response_bytes: usize,
    /// Allow a plain `http://` endpoint that is not on loopback.
    pub allow_insecure_endpoint: bool,
    /// A PEM file with a CA certificate to trust besides the built-in roots (private gateways).
    pub ca_file: Option<PathBuf>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.into(),
            public_key: String::new(),
            private_key: None,
            private_key_file: None,
            private_key_env: None,
            profile: None,
            shared_credentials_file: None,
            shared_config_file: None,
            instance_role: None,
            metadata_endpoint: None,
            assume_role: None,
            project_id: None,
            timeout: None,
            concurrency: 4,
            max_response_bytes: 1024 * 1024,
            allow_insecure_endpoint: false,
            ca_file: None,
        }
    }
}

/// `[[accounts]]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// The `account` label of this account's series.
    pub name: String,
    /// Base URL of its gateway; default `api.endpoint`.
    pub endpoint: Option<String>,
    /// Its public key.
    #[serde(default)]
    pub public_key: String,
    /// Its private key, inline.
    pub private_key: Option<SecretString>,
    /// A file holding its private key.
    pub private_key_file: Option<PathBuf>,
    /// The name of an environment variable holding its private key.
    pub private_key_env: Option<String>,
    /// A ucloud-cli profile whose keys (and base_url, project_id, region) to use.
    #[serde(default)]
    pub profile: Option<String>,
    /// ucloud-cli's credential.json; default `UCLOUD_SHARED_CREDENTIAL_FILE`, else
    /// `~/.ucloud/credential.json`.
    #[serde(default)]
    pub shared_credentials_file: Option<PathBuf>,
    /// ucloud-cli's config.json; default `UCLOUD_SHARED_CONFIG_FILE`, else
    /// `~/.ucloud/config.json`.
    #[serde(default)]
    pub shared_config_file: Option<PathBuf>,
    /// The role bound to this host, whose temporary keys the metadata server gives.
    #[serde(default)]
    pub instance_role: Option<String>,
    /// The metadata server; default `http://100.80.80.80`.
    #[serde(default)]
    pub metadata_endpoint: Option<String>,
    /// A role to assume through STS, signed with the keys above.
    #[serde(default)]
    pub assume_role: Option<credentials::AssumeRoleConfig>,
    /// Default `ProjectId` for its tasks.
    pub project_id: Option<String>,
    /// Projects to discover tasks in; default `[project_id]`.
    #[serde(default)]
    pub project_ids: Vec<String>,
}

/// `[poll]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollConfig {
    /// Time between the starts of two poll cycles; default 30s, or `api.timeout` when that is
    /// set longer (a timeout must fit in an interval).
    #[serde(with = "humantime_serde")]
    pub interval: Option<Duration>,
    /// Requests per second at most, over all accounts and actions; none when unset.
    pub requests_per_second: Option<f64>,
    /// A task not read successfully for this long shows only `up`, `info` and timestamps;
    /// default 3 x interval.
    #[serde(with = "humantime_serde")]
    pub stale_after: Option<Duration>,
    /// How tasks are refreshed: `auto` (from the list where it tells enough, with discovery on)
    /// or `status` (one `GetUDTSTaskStatus` per task per cycle).
    pub strategy: PollStrategy,
    /// With `auto`, an unfinished task refreshed from the list still gets a full read this
    /// often; default `max(10m, poll.interval)`.
    #[serde(with = "humantime_serde")]
    pub full_refresh_interval: Option<Duration>,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            interval: None,
            requests_per_second: None,
            stale_after: None,
            strategy: PollStrategy::Auto,
            full_refresh_interval: None,
        }
    }
}

/// `poll.strategy`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PollStrategy {
    /// With discovery on, list every cycle and call `GetUDTSTaskStatus` only for what the list
    /// cannot tell; without discovery, as `status`.
    #[default]
    Auto,
    /// One `GetUDTSTaskStatus` per task per cycle.
    Status,
}

/// `[discovery]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoveryConfig {
    /// List the account's tasks instead of (or besides) `[[tasks]]`.
    pub enabled: bool,
    /// Kinds to list.
    pub kinds: Vec<TaskKind>,
    /// Projects to list (single-account form); default `[api.project_id]`.
    pub project_ids: Vec<String>,
    /// How often to list again.
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
    /// Only these task ids, when not empty.
    pub include_ids: Vec<String>,
    /// Never these task ids.
    pub exclude_ids: Vec<String>,
    /// Only tasks whose name matches this regular expression.
    pub name_regex: Option<String>,
    /// Only tasks in these statuses (as the list reports them), when not empty.
    pub statuses: Vec<String>,
    /// Never tasks in these statuses.
    pub exclude_statuses: Vec<String>,
    /// Skip finished tasks (Done, Success, Stopped) created longer ago than this.
    #[serde(with = "humantime_serde")]
    pub finished_max_age: Option<Duration>,
    /// `Limit` of each list call, 1 to 100.
    pub page_size: usize,
    /// Labels for discovered tasks by name; the first matching rule wins.
    pub labels: Vec<LabelRuleConfig>,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            kinds: TaskKind::ALL.to_vec(),
            project_ids: Vec::new(),
            refresh_interval: Duration::from_secs(300),
            include_ids: Vec::new(),
            exclude_ids: Vec::new(),
            name_regex: None,
            statuses: Vec::new(),
            exclude_statuses: Vec::new(),
            finished_max_age: None,
            page_size: LIST_PAGE_LIMIT,
            labels: Vec::new(),
        }
    }
}

/// `[sharding]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShardingConfig {
    /// This exporter's shard, 0-based; `--shard` overrides it.
    pub shard: u32,
    /// How many exporters share the tasks; `--total-shards` overrides it.
    pub total_shards: u32,
}

impl Default for ShardingConfig {
    fn default() -> Self {
        Self {
            shard: 0,
            total_shards: 1,
        }
    }
}

/// `[metrics]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Expose only metrics whose name matches one of these regular expressions, when not empty.
    pub allow: Vec<String>,
    /// Never expose metrics whose name matches one of these.
    pub deny: Vec<String>,
    /// `current` (the default): only the current status; `all`: a series per documented
    /// status per task.
    pub status_series: StatusSeries,
    /// `lean` (the default): a finished task keeps only what is still asked of it; `full`:
    /// every series, as while it ran.
    pub finished_tasks: FinishedTasks,
}

/// How `udts_task_status` is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusSeries {
    /// The full state set: 16 series per task (plus one for an unknown status).
    All,
    /// Only the current status, at 1: `{status="Done"} == 1` still finds every Done task.
    #[default]
    Current,
}

/// What a finished task (Done, Success, Stopped, unrecoverable) is exposed with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishedTasks {
    /// What a person still asks of it: `udts_task_info`, its status and since when, whether it
    /// can be read, a paused task's resume deadline (and its billing expiry while near), an
    /// unrecoverable one's failure reason. At most 5 series; everything else comes back the
    /// moment it runs again.
    #[default]
    Lean,
    /// Every series it had while it ran (values that no longer change).
    Full,
}

/// `[[tasks]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    /// The task id, e.g. `udts-ixdp441`.
    pub id: String,
    /// transfer (default) or integration.
    #[serde(rename = "type", default)]
    pub kind: TaskKind,
    /// Overrides the account's default project for this task.
    pub project_id: Option<String>,
    /// A name for the `udts_task_info` series.
    pub name: Option<String>,
    /// The `[[accounts]]` name this task belongs to; needed when there are several.
    pub account: Option<String>,
    /// Extra labels for `udts_task_info`, e.g. `{ team = "payments", env = "prod" }`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `[[discovery.labels]]`: labels for the discovered tasks whose name matches.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelRuleConfig {
    /// A regular expression on the task's name.
    pub name_regex: String,
    /// The labels it gives, e.g. `{ team = "payments" }`.
    pub labels: BTreeMap<String, String>,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or the environment could not be read or has the wrong shape.
    #[error("cannot load the configuration: {0}")]
    Load(String),
    /// A key (or `UDTS_` variable) that means nothing here, most often a typo.
    #[error("{what} is unknown; {fix}")]
    Unknown {
        /// `config key api.endpoit` or `environment variable UDTS_API__ENDPOIT`.
        what: String,
        /// The nearest valid key, or the keys that are valid there.
        fix: String,
    },
    /// A value is present but wrong.
    #[error("{noun} `{key}`: {problem}. Fix: {fix}", noun = key_noun(.key))]
    Invalid {
        /// The dotted key, e.g. `api.timeout`.
        key: String,
        /// What is wrong.
        problem: String,
        /// What to do about it.
        fix: String,
    },
}

/// How a key is named in a message: environment variables by their own name.
fn key_noun(key: &str) -> &'static str {
    if key.starts_with("UDTS_") {
        "environment variable"
    } else {
        "config key"
    }
}

pub(crate) fn invalid(
    key: impl Into<String>,
    problem: impl Into<String>,
    fix: impl Into<String>,
) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// The top-level sections the environment may set; other `UDTS_` variables (such as
/// `UDTS_REQUIRE_TOOLS` for the test suite) are not configuration.
const ENV_SECTIONS: [&str; 6] = [
    "web__",
    "api__",
    "poll__",
    "discovery__",
    "sharding__",
    "metrics__",
];

/// Statuses after which a task does no more work; `finished_max_age` applies to them.
pub const FINISHED_STATUSES: [&str; 3] = ["Done", "Success", "Stopped"];

impl Config {
    /// Reads `file` (if any) and the environment, then validates.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let config = Self::read(file)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads `file` (if any) and the environment without validating the values.
    pub fn read(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError::Load(format!(
                    "config file {} does not exist or is not a file. Fix: pass --config a TOML \
                     file (config.example.toml, installed as /etc/udts-exporter/config.toml, has \
                     every key), or leave --config out and configure with UDTS_ variables",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(
            Env::prefixed("UDTS_")
                .filter(|key| {
                    let key = key.as_str().to_ascii_lowercase();
                    ENV_SECTIONS.iter().any(|section| key.starts_with(section))
                })
                .split("__"),
        );
        figment.extract().map_err(explain::explain)
    }

    /// Checks every value; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.resolve().map(|_| ())
    }
}
