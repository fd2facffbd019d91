//! [`Config::resolve`]: every section checked, the private keys and the web config read, the
//! patterns compiled, one step per section, each error naming its key and the fix.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

use super::accounts::Account;
use super::bounds::WebLimits;
use super::settings::{
    regex_set, task_labels, DiscoveryFilter, DiscoverySettings, ExpositionOptions, LabelRule,
    MetricFilter, MonitorSettings, Settings, Shard,
};
use super::sources::SourceMap;
use super::{invalid, Config, ConfigError, PollStrategy};
use crate::limits::LIST_PAGE_LIMIT;
use crate::task::{TaskSource, TaskSpec};
use crate::web_config::WebSecurity;

/// `poll.interval` when it is not set, unless `api.timeout` is set longer.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// `api.timeout` when it is not set and the interval is longer.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// A source round's timeout when not set, unless `api.timeout` is shorter.
const DEFAULT_SOURCE_TIMEOUT: Duration = Duration::from_secs(5);
/// `poll.full_refresh_interval` when not set, unless `poll.interval` is longer.
const DEFAULT_FULL_REFRESH: Duration = Duration::from_secs(600);

/// The least `monitor.interval`: the monitoring service samples once a minute.
const MIN_MONITOR_INTERVAL: Duration = Duration::from_secs(60);

/// `[web]`, resolved.
struct Web {
    listen_addresses: Vec<SocketAddr>,
    limits: WebLimits,
    security: WebSecurity,
}

/// `[poll]` with `api.timeout`, resolved.
struct Poll {
    interval: Duration,
    timeout: Duration,
    full_refresh_interval: Duration,
    stale_after: Duration,
}

impl Config {
    /// Validates everything, reads the private keys and compiles the patterns: one step per
    /// section, each naming the key it refuses.
    pub fn resolve(&self) -> Result<Settings, ConfigError> {
        let web = self.resolve_web()?;
        let poll = self.resolve_poll()?;
        let ca_certificate = self.resolve_api()?;
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

        let sources = super::sources::resolve_sources(
            &self.sources,
            DEFAULT_SOURCE_TIMEOUT.min(poll.timeout),
        )?;
        let Poll {
            interval,
            timeout,
            full_refresh_interval,
            stale_after,
        } = poll;
        Ok(Settings {
            listen_addresses: web.listen_addresses,
            web_limits: web.limits,
            telemetry_path: self.web.telemetry_path.clone(),
            enable_lifecycle: self.web.enable_lifecycle,
            web_security: web.security,
            accounts,
            timeout,
            concurrency: self.api.concurrency,
            max_response_bytes: self.api.max_response_bytes,
            interval,
            requests_per_second: self.poll.requests_per_second,
            list_first: discovery.is_some() && self.poll.strategy == PollStrategy::Auto,
            full_refresh_interval,
            ca_certificate,
            monitor: self.resolve_monitor()?,
            // Shared, not copied, with the inventory and every reload's runtime.
            static_tasks: static_tasks.into(),
            discovery,
            shard: Shard {
                index: sharding.shard,
                total: sharding.total_shards,
            },
            exposition: ExpositionOptions {
                poll_interval: interval,
                stale_after: Some(stale_after),
                status_series: self.metrics.status_series,
                finished_tasks: self.metrics.finished_tasks,
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

    /// `[web]`: where to listen, the connection bounds, the metrics path and the web config.
    fn resolve_web(&self) -> Result<Web, ConfigError> {
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
        Ok(Web {
            listen_addresses,
            limits: web_limits,
            security: web_security,
        })
    }

    /// `[poll]` and the API timeout, which the interval bounds.
    fn resolve_poll(&self) -> Result<Poll, ConfigError> {
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
        if let Some(rate) = self.poll.requests_per_second {
            if !(rate.is_finite() && rate >= 0.01) {
                return Err(invalid(
                    "poll.requests_per_second",
                    format!("{rate} is not a usable rate"),
                    "use a positive number such as 10, or leave it out for no cap",
                ));
            }
        }

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
        Ok(Poll {
            interval,
            timeout,
            full_refresh_interval,
            stale_after,
        })
    }

    /// The rest of `[api]`: concurrency, the response bound and the extra CA, read here.
    fn resolve_api(&self) -> Result<Option<Vec<u8>>, ConfigError> {
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
        Ok(match &self.api.ca_file {
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
        })
    }

    /// `[monitor]`: off, or a region and an interval of at least a minute.
    fn resolve_monitor(&self) -> Result<Option<MonitorSettings>, ConfigError> {
        let monitor = &self.monitor;
        if !monitor.enabled {
            return Ok(None);
        }
        if monitor.interval < MIN_MONITOR_INTERVAL {
            return Err(invalid(
                "monitor.interval",
                format!(
                    "{} is shorter than a minute, and the monitoring service samples once a minute",
                    humantime::format_duration(monitor.interval)
                ),
                "use at least \"1m\" (the default), e.g. \"2m\"",
            ));
        }
        Ok(Some(MonitorSettings {
            region: monitor.region.clone().filter(|r| !r.trim().is_empty()),
            interval: monitor.interval,
        }))
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
            super::credentials::refuse_placeholder(&format!("tasks[{i}].id"), id)?;
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
