//! The validated form of the configuration, what the exporter runs on. [`Config::resolve`]
//! (in `resolve.rs`) builds it, so that nothing after start-up (or a reload) can fail on
//! configuration.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use regex::{Regex, RegexSet};
use sha1::{Digest, Sha1};

use super::accounts::Account;
use super::bounds::{Cutover, WebLimits};
use super::sources::{SourceMap, SourceSettings};
use super::{invalid, ConfigError, FinishedTasks, StatusSeries};
use crate::task::{TaskKind, TaskSpec};
use crate::web_config::WebSecurity;

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
    pub static_tasks: Arc<[TaskSpec]>,
    /// Discovery, when enabled.
    pub discovery: Option<DiscoverySettings>,
    /// This exporter's share of the tasks.
    pub shard: Shard,
    /// What to expose.
    pub exposition: ExpositionOptions,
    /// `[[sources]]`, validated.
    pub sources: Vec<SourceSettings>,
    /// `[monitor]`, when enabled.
    pub monitor: Option<MonitorSettings>,
}

/// `[monitor]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorSettings {
    /// Sent as `Region` when set.
    pub region: Option<String>,
    /// Between two rounds of reads; at least a minute.
    pub interval: Duration,
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
pub(super) fn task_labels(
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
    /// What a finished task is exposed with.
    pub finished_tasks: FinishedTasks,
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
    pub(super) allow: Option<RegexSet>,
    pub(super) deny: Option<RegexSet>,
}

impl MetricFilter {
    /// Whether the metric family `name` is exposed.
    pub fn allows(&self, name: &str) -> bool {
        self.allow.as_ref().is_none_or(|allow| allow.is_match(name))
            && self.deny.as_ref().is_none_or(|deny| !deny.is_match(name))
    }
}

pub(super) fn regex_set(key: &str, patterns: &[String]) -> Result<Option<RegexSet>, ConfigError> {
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
