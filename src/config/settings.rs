//! The validated form of the configuration: [`Config::resolve`] checks every value, reads the
//! private keys, compiles the patterns and loads the web config, so that nothing after
//! start-up (or a reload) can fail on configuration.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use regex::{Regex, RegexSet};
use sha1::{Digest, Sha1};

use super::accounts::Account;
use super::bounds::{Cutover, WebLimits};
use super::sources::{SourceMap, SourceSettings};
use super::{invalid, Config, ConfigError, PollStrategy, StatusSeries};
use crate::limits::LIST_PAGE_LIMIT;
use crate::task::{TaskKind, TaskSource, TaskSpec};
use crate::web_config::WebSecurity;

/// `poll.interval` when it is not set, unless `api.timeout` is set longer.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// `api.timeout` when it is not set and the interval is longer.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// A source round's timeout when not set, unless `api.timeout` is shorter.
const DEFAULT_SOURCE_TIMEOUT: Duration = Duration::from_secs(5);
/// `poll.full_refresh_interval` when not set, unless `poll.interval` is longer.
const DEFAULT_FULL_REFRESH: Duration = Duration::from_secs(600);

/// A validated configuration, with secrets read and patterns compiled: what the exporter runs
/// on.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to serve (several: IPv4 and IPv6, or two interfaces).
    pub listen_addresses: Vec<SocketAddr>,
    /// Timeouts and bounds for what clients control.
    pub web_limits: WebLimits,
    /// Path of the metrics endpoint.
    pub telemetry_path: String,
    /// Whether `POST /-/reload` is served.
    pub enable_lifecycle: bool,
    /// TLS and basic auth of the endpoints.
    pub web_security: WebSecurity,
    /// The accounts to poll, at least one.
    pub accounts: Vec<Account>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Larger response bodies are refused.
    pub max_response_bytes: usize,
    /// Time between the starts of two poll cycles.
    pub interval: Duration,
    /// Requests per second at most, if capped.
    pub requests_per_second: Option<f64>,
    /// Refresh from `ListUDTSTask` every cycle where it tells enough (discovery on and
    /// `poll.strategy = "auto"`).
    pub list_first: bool,
    /// With list-first, how old an unfinished task's last full read may get.
    pub full_refresh_interval: Duration,
    /// Extra CA certificate (PEM) for the gateways.
    pub ca_certificate: Option<Vec<u8>>,
    /// Tasks listed by hand.
    pub static_tasks: Vec<TaskSpec>,
    /// Discovery, when enabled.
    pub discovery: Option<DiscoverySettings>,
    /// This exporter's share of the tasks.
    pub shard: Shard,
    /// What to expose.
    pub exposition: ExpositionOptions,
    /// `[[sources]]`, validated.
    pub sources: Vec<SourceSettings>,
}

/// `[discovery]`, validated.
#[derive(Debug, Clone)]
pub struct DiscoverySettings {
    /// Kinds to list.
    pub kinds: Vec<TaskKind>,
    /// How often to list again.
    pub refresh_interval: Duration,
    /// `Limit` of each list call.
    pub page_size: usize,
    /// Which listed tasks to poll.
    pub filter: DiscoveryFilter,
    /// `[[discovery.labels]]`, in order.
    pub label_rules: Vec<LabelRule>,
}

/// One `[[discovery.labels]]` rule, compiled.
#[derive(Debug, Clone)]
pub struct LabelRule {
    /// Matched against the task's name.
    pub name_regex: Regex,
    /// The labels, sorted by name.
    pub labels: Vec<(String, String)>,
}

/// Labels the exporter writes itself on `udts_task_info`, and those Prometheus attaches to every
/// target: a task label must not take their names.
const RESERVED_LABELS: [&str; 9] = [
    "source",
    "task_id",
    "account",
    "task_type",
    "project_id",
    "name",
    "mode",
    "job",
    "instance",
];

/// Validates the extra labels at `key` (e.g. `tasks[0].labels`): Prometheus label names that
/// the exporter does not use itself.
fn task_labels(
    key: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::with_capacity(labels.len());
    for (name, value) in labels {
        let valid = name
            .chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
            && !name.is_empty();
        if !valid || name.starts_with("__") {
            return Err(invalid(
                format!("{key}.{name}"),
                format!("`{name}` is not a Prometheus label name"),
                "use letters, digits and underscores, not starting with a digit or two underscores, e.g. team",
            ));
        }
        if RESERVED_LABELS.contains(&name.as_str()) {
            return Err(invalid(
                format!("{key}.{name}"),
                format!("`{name}` is a label the exporter or Prometheus sets itself"),
                format!(
                    "choose another name (taken: {})",
                    RESERVED_LABELS.join(", ")
                ),
            ));
        }
        out.push((name.clone(), value.clone()));
    }
    Ok(out)
}

/// Which listed tasks discovery keeps.
#[derive(Debug, Clone, Default)]
pub struct DiscoveryFilter {
    /// Only these ids, when not empty.
    pub include_ids: HashSet<String>,
    /// Never these ids.
    pub exclude_ids: HashSet<String>,
    /// Only names matching this.
    pub name_regex: Option<Regex>,
    /// Only these statuses, when not empty.
    pub statuses: HashSet<String>,
    /// Never these statuses.
    pub exclude_statuses: HashSet<String>,
    /// Skip finished tasks created longer ago than this.
    pub finished_max_age: Option<Duration>,
}

/// This exporter's share of the tasks: those whose id hashes to `index` modulo `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based.
    pub index: u32,
    /// At least 1.
    pub total: u32,
}

impl Shard {
    /// Whether this shard polls `task_id`. The hash (SHA-1 of the id) is stable across
    /// versions, platforms and restarts, so replicas agree without talking to each other.
    pub fn owns(&self, task_id: &str) -> bool {
        if self.total <= 1 {
            return true;
        }
        let digest = Sha1::digest(task_id.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first) % u64::from(self.total) == u64::from(self.index)
    }
}

/// What `/metrics` shows.
#[derive(Debug, Clone, Default)]
pub struct ExpositionOptions {
    /// Values of a task not read successfully for this long are left out (`None`: never).
    pub stale_after: Option<Duration>,
    /// `udts_task_status` as a full state set or only the current status.
    pub status_series: StatusSeries,
    /// Names of metrics to expose.
    pub filter: MetricFilter,
    /// `poll.interval`, for the task page and its JSON.
    pub poll_interval: Duration,
    /// Which task reads from which `[[sources]]` entry.
    pub sources: Arc<SourceMap>,
    /// `[cutover]`, validated.
    pub cutover: Cutover,
}

/// The `[metrics]` allow and deny lists, compiled.
#[derive(Debug, Clone, Default)]
pub struct MetricFilter {
    allow: Option<RegexSet>,
    deny: Option<RegexSet>,
}

impl MetricFilter {
    /// Whether the metric family `name` is exposed.
    pub fn allows(&self, name: &str) -> bool {
        self.allow.as_ref().is_none_or(|allow| allow.is_match(name))
            && self.deny.as_ref().is_none_or(|deny| !deny.is_match(name))
    }
}

fn regex_set(key: &str, patterns: &[String]) -> Result<Option<RegexSet>, ConfigError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let anchored = patterns.iter().map(|p| format!("^(?:{p})$"));
    RegexSet::new(anchored).map(Some).map_err(|e| {
        invalid(
            key,
            format!("not a regular expression: {e}"),
            "use metric names or patterns such as \"udts_task_.*_seconds\"",
        )
    })
}

impl Settings {
    /// What in `[[sources]]` cannot work as written, one sentence each with the fix: a listed
    /// task id that is not polled, a `task_name_regex` that can match no task, a source that
    /// maps no task at all. Only judged with discovery off: with it on, any task may still be
    /// listed. Logged at start-up and on every reload.
    pub fn source_warnings(&self) -> Vec<String> {
        if self.discovery.is_some() {
            return Vec::new();
        }
        let mut warnings = Vec::new();
        for source in &self.sources {
            let name = &source.name;
            let mut mapped = 0;
            for id in &source.tasks {
                if self.static_tasks.iter().any(|task| &task.id == id) {
                    mapped += 1;
                } else {
                    warnings.push(format!(
                        "sources `{name}` lists task {id}, which is not polled: add it to \
                         [[tasks]] or turn on [discovery]"
                    ));
                }
            }
            if let Some(regex) = &source.task_name_regex {
                let matching = self
                    .static_tasks
                    .iter()
                    .filter(|task| task.name.as_deref().is_some_and(|n| regex.is_match(n)))
                    .count();
                if matching == 0 {
                    warnings.push(format!(
                        "sources `{name}`: task_name_regex matches no task: with discovery off, \
                         tasks have a name only when [[tasks]] name gives one; give them names, \
                         list their ids in the source's tasks, or turn on [discovery]"
                    ));
                }
                mapped += matching;
            }
            if mapped == 0 && source.task_name_regex.is_none() && source.tasks.is_empty() {
                warnings.push(format!(
                    "sources `{name}` maps no task, so no lag is computed against it: list task \
                     ids in its tasks or set task_name_regex"
                ));
            }
        }
        warnings
    }
}

impl Config {
    /// Validates everything, reads the private keys and compiles the patterns.
    pub fn resolve(&self) -> Result<Settings, ConfigError> {
        let listen_addresses = self
            .web
            .listen_address
            .0
            .iter()
            .map(|address| {
                address.parse::<SocketAddr>().map_err(|_| {
                    invalid(
                        "web.listen_address",
                        format!("`{address}` is not an ip:port"),
                        "use e.g. \"0.0.0.0:9741\", \"[::]:9741\" or a list of them",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if listen_addresses.is_empty() {
            return Err(invalid(
                "web.listen_address",
                "the list is empty",
                "give at least one ip:port, e.g. \"0.0.0.0:9741\"",
            ));
        }
        let web_limits = self.web_limits()?;
        let path = &self.web.telemetry_path;
        if !path.starts_with('/')
            || ["/", "/healthz", "/readyz", "/-/reload"].contains(&path.as_str())
        {
            return Err(invalid(
                "web.telemetry_path",
                format!("`{path}` is not a usable path"),
                "use a path starting with / other than /, /healthz, /readyz and /-/reload, e.g. \"/metrics\"",
            ));
        }

        let interval = self
            .poll
            .interval
            .unwrap_or_else(|| DEFAULT_INTERVAL.max(self.api.timeout.unwrap_or_default()));
        if interval < Duration::from_secs(1) {
            return Err(invalid(
                "poll.interval",
                "it is shorter than 1s",
                "use a duration of at least 1s, e.g. \"30s\" or \"2m\"",
            ));
        }
        let default_timeout = DEFAULT_TIMEOUT.min(interval);
        let timeout = self.api.timeout.unwrap_or(default_timeout);
        if timeout.is_zero() || timeout > interval {
            return Err(invalid(
                "api.timeout",
                format!(
                    "{} is {} poll.interval ({})",
                    humantime::format_duration(timeout),
                    if timeout.is_zero() {
                        "zero, not within"
                    } else {
                        "longer than"
                    },
                    humantime::format_duration(interval)
                ),
                format!(
                    "use a duration above 0 and at most poll.interval, e.g. \"{}\", or leave \
                     api.timeout out for min(10s, poll.interval)",
                    humantime::format_duration(default_timeout)
                ),
            ));
        }
        if !(1..=256).contains(&self.api.concurrency) {
            return Err(invalid(
                "api.concurrency",
                format!("{} is out of range", self.api.concurrency),
                "use a number from 1 to 256",
            ));
        }
        if self.api.max_response_bytes < 1024 {
            return Err(invalid(
                "api.max_response_bytes",
                "it is below 1024",
                "use at least 1024 (default 1048576)",
            ));
        }
        if let Some(rate) = self.poll.requests_per_second {
            if !(rate.is_finite() && rate >= 0.01) {
                return Err(invalid(
                    "poll.requests_per_second",
                    format!("{rate} is not a usable rate"),
                    "use a positive number such as 10, or leave it out for no cap",
                ));
            }
        }

        let web_security = match &self.web.config_file {
            None => WebSecurity::default(),
            Some(path) => WebSecurity::load(path).map_err(|e| {
                invalid(
                    "web.config_file",
                    e.to_string(),
                    "fix the file (exporter-toolkit format: tls_server_config, basic_auth_users)",
                )
            })?,
        };
        let full_refresh_interval = self
            .poll
            .full_refresh_interval
            .unwrap_or(DEFAULT_FULL_REFRESH.max(interval));
        if full_refresh_interval < interval {
            return Err(invalid(
                "poll.full_refresh_interval",
                format!(
                    "{} is shorter than poll.interval ({})",
                    humantime::format_duration(full_refresh_interval),
                    humantime::format_duration(interval)
                ),
                format!(
                    "use a duration of at least poll.interval, e.g. \"{}\", or leave it out \
                     for max(10m, poll.interval)",
                    humantime::format_duration(DEFAULT_FULL_REFRESH.max(interval))
                ),
            ));
        }
        let stale_after = self.poll.stale_after.unwrap_or(interval * 3);
        if stale_after < interval {
            return Err(invalid(
                "poll.stale_after",
                "it is shorter than poll.interval, so every task would look stale between polls",
                format!(
                    "use at least poll.interval, e.g. \"{}\", or leave it out for 3 x poll.interval",
                    humantime::format_duration(interval * 3)
                ),
            ));
        }
        let ca_certificate = match &self.api.ca_file {
            None => None,
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    invalid(
                        "api.ca_file",
                        format!("cannot read {}: {e}", path.display()),
                        "point it at a readable PEM file",
                    )
                })?;
                if reqwest::Certificate::from_pem(&pem).is_err() || !pem.starts_with(b"-----BEGIN")
                {
                    return Err(invalid(
                        "api.ca_file",
                        format!("{} is not a PEM certificate", path.display()),
                        "use a PEM file starting with -----BEGIN CERTIFICATE-----",
                    ));
                }
                Some(pem)
            }
        };
        let accounts = self.accounts()?;
        let static_tasks = self.static_tasks(&accounts)?;
        let discovery = self.discovery_settings()?;
        if static_tasks.is_empty() && discovery.is_none() {
            return Err(invalid(
                "tasks",
                "no task is configured and discovery is off",
                "add a [[tasks]] table with id = \"udts-...\" for each task, or set [discovery] enabled = true",
            ));
        }

        let sharding = &self.sharding;
        if sharding.total_shards == 0 || sharding.shard >= sharding.total_shards {
            return Err(invalid(
                "sharding.shard",
                format!(
                    "shard {} of {} does not exist",
                    sharding.shard, sharding.total_shards
                ),
                "use total_shards >= 1 and shard from 0 to total_shards - 1 (--shard, --total-shards)",
            ));
        }

        let sources =
            super::sources::resolve_sources(&self.sources, DEFAULT_SOURCE_TIMEOUT.min(timeout))?;
        Ok(Settings {
            listen_addresses,
            web_limits,
            telemetry_path: path.clone(),
            enable_lifecycle: self.web.enable_lifecycle,
            web_security,
            accounts,
            timeout,
            concurrency: self.api.concurrency,
            max_response_bytes: self.api.max_response_bytes,
            interval,
            requests_per_second: self.poll.requests_per_second,
            list_first: discovery.is_some() && self.poll.strategy == PollStrategy::Auto,
            full_refresh_interval,
            ca_certificate,
            static_tasks,
            discovery,
            shard: Shard {
                index: sharding.shard,
                total: sharding.total_shards,
            },
            exposition: ExpositionOptions {
                poll_interval: interval,
                stale_after: Some(stale_after),
                status_series: self.metrics.status_series,
                filter: MetricFilter {
                    allow: regex_set("metrics.allow", &self.metrics.allow)?,
                    deny: regex_set("metrics.deny", &self.metrics.deny)?,
                },
                sources: Arc::new(SourceMap::new(&sources)),
                cutover: self.cutover_settings(interval)?,
            },
            sources,
        })
    }

    /// `[[tasks]]` as specs, checked against the accounts.
    fn static_tasks(&self, accounts: &[Account]) -> Result<Vec<TaskSpec>, ConfigError> {
        let mut seen = HashSet::new();
        let mut specs = Vec::new();
        for (i, task) in self.tasks.iter().enumerate() {
            let id = task.id.trim();
            if id.is_empty() || id.chars().any(char::is_whitespace) {
                return Err(invalid(
                    format!("tasks[{i}].id"),
                    format!("`{}` is not a task id", task.id),
                    "use the id shown in the console, e.g. \"udts-ixdp441\"",
                ));
            }
            super::accounts::refuse_placeholder(&format!("tasks[{i}].id"), id)?;
            let account = match (&task.account, accounts) {
                (None, [only]) => only,
                (None, _) => {
                    return Err(invalid(
                        format!("tasks[{i}].account"),
                        format!("task `{id}` does not say which account it belongs to"),
                        "set account = \"<name of an [[accounts]] entry>\"",
                    ))
                }
                (Some(name), _) => {
                    let found = self
                        .accounts
                        .iter()
                        .position(|a| a.name.trim() == name.trim())
                        .and_then(|index| accounts.get(index));
                    found.ok_or_else(|| {
                        invalid(
                            format!("tasks[{i}].account"),
                            format!("there is no [[accounts]] entry named `{name}`"),
                            "use the name of an [[accounts]] entry",
                        )
                    })?
                }
            };
            if !seen.insert((account.label.clone(), id.to_string())) {
                return Err(invalid(
                    format!("tasks[{i}].id"),
                    format!("task `{id}` is listed twice"),
                    "remove the duplicate [[tasks]] entry",
                ));
            }
            specs.push(TaskSpec {
                id: id.to_string(),
                kind: task.kind,
                account: account.label.clone(),
                project_id: task
                    .project_id
                    .clone()
                    .or_else(|| account.project_id.clone()),
                name: task.name.clone(),
                mode: None,
                created: None,
                expires: None,
                source: TaskSource::Static,
                labels: task_labels(&format!("tasks[{i}].labels"), &task.labels)?,
            });
        }
        Ok(specs)
    }

    fn discovery_settings(&self) -> Result<Option<DiscoverySettings>, ConfigError> {
        let discovery = &self.discovery;
        if !discovery.enabled {
            return Ok(None);
        }
        if discovery.kinds.is_empty() {
            return Err(invalid(
                "discovery.kinds",
                "it is empty",
                "list at least one of \"transfer\", \"integration\"",
            ));
        }
        if !(1..=LIST_PAGE_LIMIT).contains(&discovery.page_size) {
            return Err(invalid(
                "discovery.page_size",
                format!("{} is out of range", discovery.page_size),
                format!("use a number from 1 to {LIST_PAGE_LIMIT}"),
            ));
        }
        if discovery.refresh_interval < Duration::from_secs(1) {
            return Err(invalid(
                "discovery.refresh_interval",
                "it is shorter than 1s",
                "use a duration of at least 1s, e.g. \"5m\"",
            ));
        }
        let name_regex = match discovery.name_regex.as_deref() {
            None | Some("") => None,
            Some(pattern) => Some(Regex::new(pattern).map_err(|e| {
                invalid(
                    "discovery.name_regex",
                    format!("not a regular expression: {e}"),
                    "use a regular expression such as \"^prod-\"",
                )
            })?),
        };
        let mut label_rules = Vec::new();
        for (i, rule) in discovery.labels.iter().enumerate() {
            let name_regex = Regex::new(&rule.name_regex).map_err(|e| {
                invalid(
                    format!("discovery.labels[{i}].name_regex"),
                    format!("not a regular expression: {e}"),
                    "use a regular expression such as \"^pay-\"",
                )
            })?;
            label_rules.push(LabelRule {
                name_regex,
                labels: task_labels(&format!("discovery.labels[{i}].labels"), &rule.labels)?,
            });
        }
        let set = |values: &[String]| values.iter().map(|v| v.trim().to_string()).collect();
        Ok(Some(DiscoverySettings {
            label_rules,
            kinds: discovery.kinds.clone(),
            refresh_interval: discovery.refresh_interval,
            page_size: discovery.page_size,
            filter: DiscoveryFilter {
                include_ids: set(&discovery.include_ids),
                exclude_ids: set(&discovery.exclude_ids),
                name_regex,
                statuses: set(&discovery.statuses),
                exclude_statuses: set(&discovery.exclude_statuses),
                finished_max_age: discovery.finished_max_age,
            },
        }))
    }
}
