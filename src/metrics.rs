//! The exporter's own metrics (API calls, poll cycles, task counts, build and process info),
//! kept in a `prometheus` registry. Per-task series are not here: they are written straight from
//! the task snapshot by [`crate::exposition`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::api::{ApiError, CallObserver};
use crate::process_metrics::ProcessCollector;

/// The actions the exporter calls, so their counters exist at 0 before the first call.
pub const ACTIONS: [&str; 3] = ["GetUDTSTaskStatus", "GetUDTSTaskHistory", "ListUDTSTask"];

/// The exporter-wide metrics.
#[derive(Clone)]
pub struct ExporterMetrics {
    registry: Registry,
    /// `udts_api_requests_total{account,action}`: every call, whatever its outcome.
    pub api_requests: IntCounterVec,
    /// `udts_api_request_errors_total{account,action,reason}`: failed calls by reason.
    pub api_errors: IntCounterVec,
    /// `udts_api_request_duration_seconds{account,action}`: call latency, failures included.
    pub api_duration: HistogramVec,
    /// `udts_poll_cycle_duration_seconds`: how long the last complete poll cycle took.
    pub poll_cycle_duration: Gauge,
    /// `udts_poll_interval_seconds`: the configured interval, to compare cycles against.
    pub poll_interval: Gauge,
    /// `udts_tasks{source}`: tasks being polled, by where they came from.
    pub tasks: IntGaugeVec,
    /// `udts_api_credentials_valid{account}`: 0 after the gateway rejected the keys.
    pub credentials_valid: GaugeVec,
    /// `udts_api_throttle_delay_seconds{account}`: the delay added before each call after
    /// throttling.
    pub throttle_delay: GaugeVec,
    /// `udts_api_credentials_expiry_timestamp_seconds{account}`: when the temporary
    /// credentials in use expire.
    pub credentials_expiry: GaugeVec,
    /// `udts_api_credential_refreshes_total{account,source,result}`: fetches of temporary
    /// credentials.
    pub credential_refreshes: IntCounterVec,
    /// `udts_api_credential_refresh_failing{account}`: 1 while the last fetch failed.
    pub credential_refresh_failing: GaugeVec,
    /// `udts_poll_cycle_overrun_total`: cycles that took longer than the interval.
    pub poll_cycle_overruns: IntCounter,
    /// `udts_discovery_last_success_timestamp_seconds`: when every list call last succeeded.
    pub discovery_last_success: Gauge,
    /// `udts_discovery_enabled`: 1 while `[discovery]` is on, so a rule on the last success
    /// can be guarded (without discovery that timestamp stays 0 and would always look stale).
    pub discovery_enabled: Gauge,
    /// `udts_config_last_reload_successful`: whether the last reload was applied.
    pub reload_successful: Gauge,
    /// `udts_config_last_reload_success_timestamp_seconds`: when a config was last applied.
    pub reload_success_timestamp: Gauge,
    /// `udts_poll_refreshes_total{via}`: task refreshes, from the list or a status call.
    pub refreshes: IntCounterVec,
    /// `udts_api_calls_per_cycle`: API calls the last complete poll cycle made.
    pub api_calls_per_cycle: Gauge,
    /// Every API call so far, to measure a cycle's share.
    api_calls: Arc<AtomicU64>,
    /// The `udts_source_*` families.
    pub sources: SourceMetrics,
}

/// What the exporter read from each source database, labelled `source`.
#[derive(Clone)]
pub struct SourceMetrics {
    up: GaugeVec,
    file_index: GaugeVec,
    position: GaugeVec,
    oldest_file_index: GaugeVec,
    retained_bytes: GaugeVec,
    written_bytes: IntCounterVec,
    wal_written_bytes: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
}

/// The reasons a source round fails, so each series exists at 0 from the start.
pub const SOURCE_ERROR_REASONS: [&str; 11] = [
    "auth",
    "privilege",
    "unreachable",
    "timeout",
    "tls",
    "binlog_disabled",
    "standby",
    "wal_level",
    "malformed",
    "malformed_gtid",
    "server_error",
];

impl SourceMetrics {
    fn new(registry: &Registry) -> Self {
        let gauge = |name: &str, help: &str| {
            let gauge = must(GaugeVec::new(Opts::new(name, help), &["source"]));
            must(registry.register(Box::new(gauge.clone())));
            gauge
        };
        let up = gauge(
            "udts_source_up",
            "1 if the last read of the source database's binlog state succeeded, else 0.",
        );
        let file_index = gauge(
            "udts_source_binlog_file_index",
            "Numeric suffix of the binlog file the source is writing (its head).",
        );
        let position = gauge(
            "udts_source_binlog_position",
            "Position in the binlog file the source is writing (its head).",
        );
        let oldest_file_index = gauge(
            "udts_source_binlog_oldest_file_index",
            "Numeric suffix of the oldest binlog file still on the source.",
        );
        let retained_bytes = gauge(
            "udts_source_binlog_retained_bytes",
            "Sum of the sizes of the binlog files still on the source (SHOW BINARY LOGS).",
        );
        let written_bytes = must(IntCounterVec::new(
            Opts::new(
                "udts_source_binlog_written_bytes_total",
                "Binlog bytes the source's head advanced while the exporter watched; its rate is the source's write rate.",
            ),
            &["source"],
        ));
        let wal_written_bytes = must(IntCounterVec::new(
            Opts::new(
                "udts_source_wal_written_bytes_total",
                "WAL bytes a PostgreSQL source's position advanced while the exporter watched; its rate is the source's WAL write rate.",
            ),
            &["source"],
        ));
        let errors = must(IntCounterVec::new(
            Opts::new(
                "udts_source_errors_total",
                "Failed reads of the source database's binlog or WAL state, by reason; also the parts of a read left out (malformed_gtid, malformed_slot_row) while the rest is kept.",
            ),
            &["source", "reason"],
        ));
        let duration = must(HistogramVec::new(
            HistogramOpts::new(
                "udts_source_query_duration_seconds",
                "Duration of one read of a source's binlog state (every statement of the round).",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["source"],
        ));
        must(registry.register(Box::new(written_bytes.clone())));
        must(registry.register(Box::new(wal_written_bytes.clone())));
        must(registry.register(Box::new(errors.clone())));
        must(registry.register(Box::new(duration.clone())));
        Self {
            up,
            file_index,
            position,
            oldest_file_index,
            retained_bytes,
            written_bytes,
            wal_written_bytes,
            errors,
            duration,
        }
    }

    /// Makes every series of `source` exist (down, no errors yet) before its first round; a
    /// PostgreSQL source counts WAL, a MySQL one binlog.
    pub fn declare(&self, source: &str, postgres: bool) {
        self.up.with_label_values(&[source]).set(0.0);
        if postgres {
            self.wal_written_bytes.with_label_values(&[source]);
        } else {
            self.written_bytes.with_label_values(&[source]);
        }
        for reason in SOURCE_ERROR_REASONS {
            self.errors.with_label_values(&[source, reason]);
        }
    }

    /// Drops every series of a source no longer configured.
    pub fn remove(&self, source: &str) {
        for gauge in [
            &self.up,
            &self.file_index,
            &self.position,
            &self.oldest_file_index,
            &self.retained_bytes,
        ] {
            let _ = gauge.remove_label_values(&[source]);
        }
        let _ = self.written_bytes.remove_label_values(&[source]);
        let _ = self.wal_written_bytes.remove_label_values(&[source]);
        let _ = self.duration.remove_label_values(&[source]);
        for reason in SOURCE_ERROR_REASONS {
            let _ = self.errors.remove_label_values(&[source, reason]);
        }
    }

    /// A round took `elapsed`, whatever its outcome.
    pub fn round(&self, source: &str, elapsed: Duration) {
        self.duration
            .with_label_values(&[source])
            .observe(elapsed.as_secs_f64());
    }

    /// A round read the head at (`file_index`, `position`), the oldest file and the retained
    /// bytes; the head advanced `advanced` bytes since the last round.
    pub fn read(
        &self,
        source: &str,
        (file_index, position): (u64, u64),
        oldest_file_index: Option<u64>,
        retained_bytes: u64,
        advanced: u64,
    ) {
        self.up.with_label_values(&[source]).set(1.0);
        self.file_index
            .with_label_values(&[source])
            .set(file_index as f64);
        self.position
            .with_label_values(&[source])
            .set(position as f64);
        match oldest_file_index {
            Some(oldest) => self
                .oldest_file_index
                .with_label_values(&[source])
                .set(oldest as f64),
            None => {
                let _ = self.oldest_file_index.remove_label_values(&[source]);
            }
        }
        self.retained_bytes
            .with_label_values(&[source])
            .set(retained_bytes as f64);
        self.written_bytes
            .with_label_values(&[source])
            .inc_by(advanced);
    }

    /// A PostgreSQL round read the WAL position, `advanced` bytes past the last one.
    pub fn read_wal(&self, source: &str, advanced: u64) {
        self.up.with_label_values(&[source]).set(1.0);
        self.wal_written_bytes
            .with_label_values(&[source])
            .inc_by(advanced);
    }

    /// A round failed for `reason`.
    pub fn failed(&self, source: &str, reason: &str) {
        self.up.with_label_values(&[source]).set(0.0);
        self.errors.with_label_values(&[source, reason]).inc();
    }

    /// A good round carried something malformed (counted, the source stays up).
    pub fn problem(&self, source: &str, reason: &str) {
        self.errors.with_label_values(&[source, reason]).inc();
    }
}

/// Builds the metric or reports a programming error: names and labels here are constants, so a
/// failure is a bug caught by any test, never a runtime condition.
fn must<T>(result: prometheus::Result<T>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("invalid metric definition: {error}"),
    }
}

impl ExporterMetrics {
    /// Creates and registers every exporter-wide metric.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let registry = Registry::new();
        let api_requests = must(IntCounterVec::new(
            Opts::new(
                "udts_api_requests_total",
                "API calls made by the background poller, by account and action.",
            ),
            &["account", "action"],
        ));
        let api_errors = must(IntCounterVec::new(
            Opts::new(
                "udts_api_request_errors_total",
                "API calls made by the background poller that failed, by account, action and reason.",
            ),
            &["account", "action", "reason"],
        ));
        let api_duration = must(HistogramVec::new(
            HistogramOpts::new(
                "udts_api_request_duration_seconds",
                "Latency of API calls made by the background poller, by account and action.",
            )
            .buckets(vec![
                0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
            &["account", "action"],
        ));
        let poll_cycle_duration = must(Gauge::new(
            "udts_poll_cycle_duration_seconds",
            "Duration of the last complete background poll cycle over all tasks.",
        ));
        let poll_interval = must(Gauge::new(
            "udts_poll_interval_seconds",
            "Configured interval between background poll cycles.",
        ));
        let tasks = must(IntGaugeVec::new(
            Opts::new(
                "udts_tasks",
                "Tasks polled in the background, by where they were learned of.",
            ),
            &["source"],
        ));
        let credentials_valid = must(GaugeVec::new(
            Opts::new(
                "udts_api_credentials_valid",
                "0 while the gateway rejects the account's API keys (RetCode 170-174), else 1.",
            ),
            &["account"],
        ));
        let credentials_expiry = must(GaugeVec::new(
            Opts::new(
                "udts_api_credentials_expiry_timestamp_seconds",
                "When the account's temporary API credentials (instance role, AssumeRole) expire, \
                 unix seconds; absent for long-lived keys.",
            ),
            &["account"],
        ));
        let credential_refreshes = must(IntCounterVec::new(
            Opts::new(
                "udts_api_credential_refreshes_total",
                "Fetches of the account's temporary API credentials, by source and result (ok, error).",
            ),
            &["account", "source", "result"],
        ));
        let credential_refresh_failing = must(GaugeVec::new(
            Opts::new(
                "udts_api_credential_refresh_failing",
                "1 while the last fetch of the account's temporary API credentials failed, else 0.",
            ),
            &["account"],
        ));
        let throttle_delay = must(GaugeVec::new(
            Opts::new(
                "udts_api_throttle_delay_seconds",
                "Delay added before each API call after the gateway throttled (RetCode 153, HTTP 429).",
            ),
            &["account"],
        ));
        let poll_cycle_overruns = must(IntCounter::new(
            "udts_poll_cycle_overrun_total",
            "Background poll cycles that took longer than the poll interval.",
        ));
        let discovery_last_success = must(Gauge::new(
            "udts_discovery_last_success_timestamp_seconds",
            "Unix time every ListUDTSTask call of a discovery refresh last succeeded.",
        ));
        let discovery_enabled = must(Gauge::new(
            "udts_discovery_enabled",
            "1 while discovery (ListUDTSTask) is configured, 0 otherwise.",
        ));
        let reload_successful = must(Gauge::new(
            "udts_config_last_reload_successful",
            "1 if the last configuration (re)load was applied, 0 if it was rejected.",
        ));
        let reload_success_timestamp = must(Gauge::new(
            "udts_config_last_reload_success_timestamp_seconds",
            "Unix time a configuration was last applied.",
        ));
        let refreshes = must(IntCounterVec::new(
            Opts::new(
                "udts_poll_refreshes_total",
                "Task refreshes by the background poller, by how: from ListUDTSTask (list) or a GetUDTSTaskStatus call (status).",
            ),
            &["via"],
        ));
        for via in ["list", "status"] {
            refreshes.with_label_values(&[via]);
        }
        let api_calls_per_cycle = must(Gauge::new(
            "udts_api_calls_per_cycle",
            "API calls (every action) made during the last complete background poll cycle.",
        ));
        let build_info = must(GaugeVec::new(
            Opts::new(
                "udts_exporter_build_info",
                "Always 1; labelled with the exporter's version.",
            ),
            &["version"],
        ));
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1.0);
        for source in ["static", "discovered"] {
            tasks.with_label_values(&[source]);
        }

        must(registry.register(Box::new(api_requests.clone())));
        must(registry.register(Box::new(api_errors.clone())));
        must(registry.register(Box::new(api_duration.clone())));
        must(registry.register(Box::new(poll_cycle_duration.clone())));
        must(registry.register(Box::new(poll_interval.clone())));
        must(registry.register(Box::new(tasks.clone())));
        must(registry.register(Box::new(credentials_valid.clone())));
        must(registry.register(Box::new(throttle_delay.clone())));
        must(registry.register(Box::new(credentials_expiry.clone())));
        must(registry.register(Box::new(credential_refreshes.clone())));
        must(registry.register(Box::new(credential_refresh_failing.clone())));
        must(registry.register(Box::new(poll_cycle_overruns.clone())));
        must(registry.register(Box::new(discovery_last_success.clone())));
        must(registry.register(Box::new(discovery_enabled.clone())));
        must(registry.register(Box::new(reload_successful.clone())));
        must(registry.register(Box::new(reload_success_timestamp.clone())));
        must(registry.register(Box::new(refreshes.clone())));
        must(registry.register(Box::new(api_calls_per_cycle.clone())));
        must(registry.register(Box::new(build_info)));
        must(registry.register(Box::new(ProcessCollector::new())));
        for collector in crate::web_config::collectors()
            .into_iter()
            .chain(crate::listen::collectors())
        {
            must(registry.register(collector));
        }
        let sources = SourceMetrics::new(&registry);

        Self {
            registry,
            api_requests,
            api_errors,
            api_duration,
            poll_cycle_duration,
            poll_interval,
            tasks,
            credentials_valid,
            throttle_delay,
            credentials_expiry,
            credential_refreshes,
            credential_refresh_failing,
            poll_cycle_overruns,
            discovery_last_success,
            discovery_enabled,
            reload_successful,
            reload_success_timestamp,
            refreshes,
            api_calls_per_cycle,
            api_calls: Arc::new(AtomicU64::new(0)),
            sources,
        }
    }

    /// API calls made so far, by every action.
    pub fn api_calls(&self) -> u64 {
        self.api_calls.load(Ordering::Relaxed)
    }

    /// Appends the text exposition of every exporter-wide metric whose name `allows` to `out`.
    pub fn encode(&self, allows: impl Fn(&str) -> bool, out: &mut Vec<u8>) {
        let mut families = self.registry.gather();
        families.retain(|family| allows(family.name()));
        if let Err(error) = TextEncoder::new().encode(&families, out) {
            tracing::error!(%error, "cannot encode exporter metrics");
        }
    }
}

impl CallObserver for ExporterMetrics {
    fn client_built(&self, account: &str) {
        for action in ACTIONS {
            self.api_requests.with_label_values(&[account, action]);
            for reason in crate::api::ERROR_REASONS {
                self.api_errors
                    .with_label_values(&[account, action, reason]);
            }
        }
        self.credentials_valid(account, true);
    }

    fn call_finished(
        &self,
        account: &str,
        action: &'static str,
        elapsed: Duration,
        error: Option<&ApiError>,
    ) {
        self.api_requests
            .with_label_values(&[account, action])
            .inc();
        // A poll cycle's share of calls is the status poll's own; monitoring reads beside it.
        if action != crate::api::monitor::ACTION {
            self.api_calls.fetch_add(1, Ordering::Relaxed);
        }
        self.api_duration
            .with_label_values(&[account, action])
            .observe(elapsed.as_secs_f64());
        if let Some(error) = error {
            self.api_errors
                .with_label_values(&[account, action, error.reason()])
                .inc();
        }
    }

    fn throttle_delay(&self, account: &str, delay: Duration) {
        self.throttle_delay
            .with_label_values(&[account])
            .set(delay.as_secs_f64());
    }

    fn credentials_refreshed(&self, account: &str, source: &str, ok: bool, expires: Option<f64>) {
        let (ok_count, error_count) = (
            self.credential_refreshes
                .with_label_values(&[account, source, "ok"]),
            self.credential_refreshes
                .with_label_values(&[account, source, "error"]),
        );
        if ok {
            ok_count.inc();
        } else {
            error_count.inc();
        }
        self.credential_refresh_failing
            .with_label_values(&[account])
            .set(if ok { 0.0 } else { 1.0 });
        if let Some(at) = expires {
            self.credentials_expiry
                .with_label_values(&[account])
                .set(at);
        }
    }

    fn credentials_valid(&self, account: &str, valid: bool) {
        self.credentials_valid
            .with_label_values(&[account])
            .set(if valid { 1.0 } else { 0.0 });
    }
}
