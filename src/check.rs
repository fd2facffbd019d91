//! `udts-exporter check`: polls every configured task once and prints what it found, so an
//! operator can see that keys, endpoint and task ids work before deploying.

use std::fmt::Write as _;
use std::sync::Arc;

use tokio::sync::Semaphore;

use serde::Serialize;

use crate::api::{ApiError, StatusData};
use crate::config::{ExpositionOptions, SourceSettings};
use crate::derive::Derived;
use crate::discovery::{list_all, DiscoveredTask, Inventory, ListSource};
use crate::metrics::ExporterMetrics;
use crate::monitor::{AccountCheck, MonitorSnapshot};
use crate::runtime::Runtime;
use crate::source::{ReaderFactory, Reading, SourceError, SourceSnapshot};
use crate::state::{Store, TaskState};
use crate::task::TaskSpec;
use crate::task_view::slots::SlotView;
use crate::task_view::{TaskView, Views};
use crate::time::unix_now;

/// One row of the report.
pub struct CheckRow {
    /// The task polled.
    pub task: Arc<TaskSpec>,
    /// What the poll returned.
    pub result: Result<StatusData, ApiError>,
    /// When it returned, unix seconds.
    pub read_at: f64,
}

/// What a one-shot command would poll, as the running exporter would: the `[[tasks]]` and,
/// with discovery on, every listed task, merged and sharded; and each listing that failed.
pub struct PollSet {
    /// Every task to poll, merged and sharded.
    pub tasks: Vec<Arc<TaskSpec>>,
    /// The listed tasks of this shard, in listing order (for `discover`'s table).
    pub listed: Vec<DiscoveredTask>,
    /// The listings that failed, and why.
    pub failures: Vec<(ListSource, ApiError)>,
}

impl PollSet {
    /// Lists every source of `runtime` once (when its discovery is on) and merges the result
    /// with its static tasks through the same [`Inventory`] the exporter runs.
    pub async fn of(runtime: &Runtime) -> Self {
        let settings = &runtime.settings;
        let store = Arc::new(Store::new());
        let inventory = Inventory::new(Arc::clone(&store), ExporterMetrics::new());
        inventory.configure(
            settings.static_tasks.clone(),
            settings.shard,
            settings.discovery.is_some(),
        );
        let mut listed = Vec::new();
        let mut failures = Vec::new();
        if let Some(discovery) = &settings.discovery {
            let outcomes = list_all(runtime, discovery).await;
            listed = outcomes
                .values()
                .filter_map(|outcome| outcome.as_ref().ok())
                .flatten()
                .filter(|task| settings.shard.owns(&task.spec.id))
                .cloned()
                .collect();
            failures = inventory.apply(outcomes).0;
        }
        Self {
            tasks: store.specs(),
            listed,
            failures,
        }
    }

    /// Prints each failed listing to stderr as the exporter logs it: where, why, and the fix.
    /// Returns whether any failed.
    pub fn report_failures(&self) -> bool {
        for (source, error) in &self.failures {
            eprintln!("udts-exporter: cannot list {source}: {}", explained(error));
        }
        !self.failures.is_empty()
    }
}

/// An error with its reason and, when there is one, the fix.
pub fn explained(error: &ApiError) -> String {
    match error.hint() {
        Some(hint) => format!("{error} ({}: {hint})", error.reason()),
        None => format!("{error} ({})", error.reason()),
    }
}

/// What a one-shot command says when there is nothing to poll.
pub const NOTHING_TO_POLL: &str = "nothing to poll: no [[tasks]] are configured and discovery \
     found none; add [[tasks]], or turn on [discovery] and check its kinds, projects and filters";

/// Polls every task once, at most `api.concurrency` at a time; rows come back in task order.
pub async fn poll_once(runtime: Arc<Runtime>, tasks: Vec<Arc<TaskSpec>>) -> Vec<CheckRow> {
    let semaphore = Arc::new(Semaphore::new(runtime.settings.concurrency));
    let handles: Vec<_> = tasks
        .into_iter()
        .map(|task| {
            let runtime = Arc::clone(&runtime);
            let semaphore = Arc::clone(&semaphore);
            tokio::spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                let result = match runtime.client(&task.account) {
                    Some(client) => client.task_status(&task).await,
                    None => Err(ApiError::Network {
                        endpoint: String::new(),
                        cause: "no client for the task's account".into(),
                    }),
                };
                CheckRow {
                    task,
                    result,
                    read_at: unix_now(),
                }
            })
        })
        .collect();
    let mut rows = Vec::with_capacity(handles.len());
    for handle in handles {
        if let Ok(row) = handle.await {
            rows.push(row);
        }
    }
    rows
}

/// Reads one round of UDTS's monitoring for the polled tasks whose status is not final; empty
/// when `[monitor]` is off.
pub async fn read_monitoring(
    runtime: &Runtime,
    rows: &[CheckRow],
) -> (Vec<AccountCheck>, MonitorSnapshot) {
    let store = Store::new();
    store.set_tasks(rows.iter().map(|row| Arc::clone(&row.task)).collect());
    for row in rows {
        store.update(&row.task.key(), |state| {
            state.after_poll(row.result.clone(), row.read_at)
        });
    }
    crate::monitor::check_once(&store, runtime).await
}

/// Where an account's keys come from and, for temporary ones, when they expire or why they
/// cannot be had. Never a secret.
#[derive(Debug, Clone, Serialize)]
pub struct CredentialState {
    /// The account's label, `None` with one account.
    pub account: Option<String>,
    /// The source in words: "profile prod", "instance role udts", "role ... via config".
    pub source: String,
    /// Whether the keys are temporary (fetched and refreshed).
    pub temporary: bool,
    /// When the temporary keys in use expire, unix seconds.
    pub expires_at: Option<f64>,
    /// Why temporary keys cannot be had, while a fetch fails.
    pub error: Option<String>,
}

/// Each account's [`CredentialState`] now.
pub fn credential_states(runtime: &Runtime) -> Vec<CredentialState> {
    runtime
        .settings
        .accounts
        .iter()
        .map(|account| {
            let source = crate::runtime::credential_source(account);
            let client = runtime
                .client(&account.label)
                .filter(|_| source.is_temporary());
            CredentialState {
                account: account.label.clone(),
                source: source.describe(),
                temporary: source.is_temporary(),
                expires_at: client.as_ref().and_then(|c| c.credentials_expiry()),
                error: client.as_ref().and_then(|c| c.credentials_problem()),
            }
        })
        .collect()
}

/// A line an account: "credentials: instance role udts, expire in 52 min".
pub fn credentials_lines(states: &[CredentialState]) -> String {
    let mut out = String::new();
    for state in states {
        let label = state
            .account
            .as_deref()
            .map_or_else(String::new, |l| format!(" ({l})"));
        let how = match (state.temporary, state.expires_at, &state.error) {
            (false, _, _) => String::new(),
            (true, _, Some(problem)) => format!(", unavailable: {problem}"),
            (true, Some(at), None) => {
                format!(", expire in {}", crate::human::duration(at - unix_now()))
            }
            (true, None, None) => ", not fetched yet".into(),
        };
        let _ = writeln!(out, "credentials{label}: {}{how}", state.source);
    }
    out
}

/// What monitoring found per account, a line each: "monitoring: samples for 12 of 14 active
/// tasks", or why none, with the fix.
pub fn monitoring_lines(checks: &[AccountCheck]) -> String {
    let mut out = String::new();
    for check in checks {
        let account = check
            .account
            .as_deref()
            .map_or(String::new(), |a| format!(" ({a})"));
        let _ = match &check.problem {
            Some(problem) => writeln!(out, "monitoring{account}: unavailable: {problem}"),
            None => writeln!(
                out,
                "monitoring{account}: samples for {} of {} active tasks",
                check.sampled, check.active
            ),
        };
    }
    out
}

/// What these tasks would cost the Prometheus that scrapes the exporter, in a line:
/// "series: 96 for 20 tasks, the exporter's own metrics aside (README: Cardinality)".
pub fn series_line(derived: &Derived) -> String {
    format!(
        "series: {} for {} tasks, the exporter's own metrics aside (README: Cardinality)\n",
        crate::task_view::grouped(crate::exposition::series_of(derived)),
        crate::task_view::grouped(derived.tasks.len() as u64)
    )
}

/// One source, read once.
pub struct SourceCheck {
    /// The `[[sources]]` name.
    pub name: String,
    /// What the round read, or why it failed.
    pub result: Result<Arc<SourceSnapshot>, SourceError>,
}

/// Reads every source once (each within its timeout), side by side.
pub async fn read_sources(sources: &[SourceSettings], readers: &ReaderFactory) -> Vec<SourceCheck> {
    let rounds = sources.iter().map(|source| {
        let mut reader = readers(source);
        let (name, timeout) = (source.name.clone(), source.timeout);
        async move {
            let result = match tokio::time::timeout(timeout, reader.read()).await {
                Ok(Ok(Reading::Binlog(reading))) => reading
                    .parse()
                    .map(|parsed| Arc::new(SourceSnapshot::of(parsed, unix_now()))),
                Ok(Ok(Reading::Wal(reading))) => Ok(Arc::new(
                    SourceSnapshot::default().after_wal(reading, unix_now()),
                )),
                Ok(Err(error)) => Err(error),
                Err(_) => Err(SourceError {
                    reason: "timeout",
                    message: format!("no answer within {}", humantime::format_duration(timeout)),
                    fix: "check the source's load and the network path",
                }),
            };
            SourceCheck { name, result }
        }
    });
    futures_util::future::join_all(rounds).await
}

/// What the exporter would derive from the rows, the sources read and monitoring's round, at
/// `at`: the same derivation a render makes, without the outlooks (a one-shot read has no
/// samples to judge rates or readiness from).
pub fn derive(
    rows: &[CheckRow],
    sources: &[SourceCheck],
    monitor: MonitorSnapshot,
    options: &ExpositionOptions,
    at: f64,
) -> Derived {
    let states = rows
        .iter()
        .map(|row| {
            let state = TaskState::new(Arc::clone(&row.task));
            Arc::new(state.after_poll(row.result.clone(), row.read_at))
        })
        .collect();
    let snapshots = sources
        .iter()
        .filter_map(|source| {
            Some((
                source.name.clone(),
                Arc::clone(source.result.as_ref().ok()?),
            ))
        })
        .collect();
    Derived::new(
        states,
        Arc::new(snapshots),
        Arc::new(monitor),
        Arc::new(options.clone()),
        at,
        None,
    )
}

/// The PostgreSQL sources' watched slots as an aligned text table: each slot's task (or none),
/// whether it is read, what it retains, its status, and for a slot nobody can use again the
/// statement that drops it. Empty without a PostgreSQL source.
pub fn slots_table(derived: &Derived) -> String {
    if !derived.options.sources.has_postgres() {
        return String::new();
    }
    let header = [
        "SOURCE", "SLOT", "TASK", "ACTIVE", "RETAINED", "STATUS", "ORPHANED",
    ];
    let body = derived.slots.iter().map(|slot| {
        let orphaned = if slot.orphaned { "yes" } else { "no" };
        vec![
            slot.source.to_string(),
            slot.row.name.clone(),
            slot.task_id.clone().unwrap_or_else(|| "-".into()),
            if slot.row.active { "yes" } else { "no" }.to_string(),
            slot.retained_bytes
                .map_or("-".into(), |b| format!("{b} bytes")),
            slot.row.wal_status.clone().unwrap_or_else(|| "-".into()),
            match &slot.drop_statement {
                Some(statement) => format!("{orphaned}: {statement}"),
                None => orphaned.to_string(),
            },
        ]
    });
    let mut text = aligned(&header, body);
    if derived.slots.is_empty() {
        text.push_str("(no watched replication slot)\n");
    }
    text
}

/// A source in the JSON report: what the round read, and for a PostgreSQL source its watched
/// slots as `/api/v1/tasks` shows them under `sources`.
#[derive(Serialize)]
struct SourceJson<'a> {
    name: &'a str,
    up: bool,
    head_file_index: Option<u64>,
    head_position: Option<u64>,
    oldest_file_index: Option<u64>,
    retained_bytes: Option<u64>,
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    slots: Option<&'a [SlotView]>,
}

/// An account's round of monitoring in the JSON report.
#[derive(Serialize)]
struct MonitoringJson<'a> {
    account: Option<&'a str>,
    active_tasks: usize,
    sampled_tasks: usize,
    error: Option<&'a str>,
}

/// The JSON report: `GET /api/v1/tasks`'s fields (the task objects worst first, with
/// `source_lag`; `sources` with each source's reading besides the slots the API shows), and
/// each account's round of monitoring and credentials.
#[derive(Serialize)]
struct Report<'a> {
    generated_at: f64,
    poll_interval_seconds: f64,
    /// The series `/metrics` would carry for these tasks, the exporter's own metrics aside.
    series: u64,
    tasks: Vec<&'a TaskView>,
    sources: Vec<SourceJson<'a>>,
    monitoring: Vec<MonitoringJson<'a>>,
    credentials: &'a [CredentialState],
}

/// The report as the JSON of `GET /api/v1/tasks` plus `sources`, `monitoring` and each
/// account's `credentials`.
pub fn json(
    derived: &Derived,
    sources: &[SourceCheck],
    monitoring: &[AccountCheck],
    credentials: &[CredentialState],
) -> String {
    let views = Views::build(derived);
    let report = Report {
        generated_at: derived.at,
        poll_interval_seconds: derived.options.poll_interval.as_secs_f64(),
        series: crate::exposition::series_of(derived),
        tasks: views.tasks.iter().collect(),
        sources: sources
            .iter()
            .map(|source| {
                let reading = source.result.as_ref().ok().and_then(|s| s.reading.clone());
                SourceJson {
                    name: &source.name,
                    up: source.result.is_ok(),
                    head_file_index: reading.as_ref().map(|r| r.head_index),
                    head_position: reading.as_ref().map(|r| r.head_position),
                    oldest_file_index: reading.as_ref().and_then(|r| r.files.first().map(|f| f.0)),
                    retained_bytes: reading.as_ref().map(|r| r.files.iter().map(|f| f.1).sum()),
                    error: source
                        .result
                        .as_ref()
                        .err()
                        .map(|e| format!("{} ({}): {}", e.message, e.reason, e.fix)),
                    slots: views
                        .sources
                        .iter()
                        .find(|slots| slots.name == source.name)
                        .map(|slots| slots.slots.as_slice()),
                }
            })
            .collect(),
        monitoring: monitoring
            .iter()
            .map(|check| MonitoringJson {
                account: check.account.as_deref(),
                active_tasks: check.active,
                sampled_tasks: check.sampled,
                error: check.problem.as_deref(),
            })
            .collect(),
        credentials,
    };
    serde_json::to_string_pretty(&report).unwrap_or_default()
}

/// The sources as an aligned text table.
pub fn sources_table(sources: &[SourceCheck]) -> String {
    let header = [
        "SOURCE",
        "STATUS",
        "HEAD",
        "OLDEST FILE",
        "RETAINED",
        "ERROR",
    ];
    let body = sources.iter().map(|source| match &source.result {
        Ok(snapshot) => {
            let reading = snapshot.reading.as_deref();
            let head = match (reading, snapshot.wal.as_deref()) {
                (Some(r), _) => format!("{}.{:06}:{}", r.base, r.head_index, r.head_position),
                (None, Some(wal)) => format!("{:X}/{:X}", wal.lsn >> 32, wal.lsn & 0xFFFF_FFFF),
                (None, None) => "-".into(),
            };
            vec![
                source.name.clone(),
                "up".into(),
                head,
                reading
                    .and_then(|r| r.files.first())
                    .map_or("-".into(), |(index, _)| index.to_string()),
                reading.map_or("-".into(), |r| {
                    format!("{} bytes", r.files.iter().map(|f| f.1).sum::<u64>())
                }),
                String::new(),
            ]
        }
        Err(error) => vec![
            source.name.clone(),
            "down".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            format!("{} ({}). Fix: {}", error.message, error.reason, error.fix),
        ],
    });
    aligned(&header, body)
}

/// Each task's lag behind its source, in words, by task id (tasks without a source left out).
pub fn lag_summaries(derived: &Derived) -> std::collections::HashMap<String, String> {
    Views::build(derived)
        .tasks
        .into_iter()
        .filter_map(|task| Some((task.id, task.source_lag?.summary)))
        .collect()
}

/// The report as an aligned text table; `lags` (from [`lag_summaries`]) adds a LAG column.
pub fn table(rows: &[CheckRow], lags: &std::collections::HashMap<String, String>) -> String {
    let with_account = rows.iter().any(|row| row.task.account.is_some());
    let mut header = vec!["TASK", "KIND", "STATUS", "PROGRESS", "ERROR"];
    if !lags.is_empty() {
        header.insert(4, "LAG");
    }
    if with_account {
        header.insert(0, "ACCOUNT");
    }
    let body = rows.iter().map(|row| {
        let (status, progress, error) = match &row.result {
            Ok(data) => (
                data.status.clone().unwrap_or_else(|| "-".into()),
                progress_summary(data),
                data.failed_message
                    .as_deref()
                    .and_then(|m| m.lines().next())
                    .unwrap_or("")
                    .to_string(),
            ),
            Err(error) => ("-".into(), "-".into(), explained(error)),
        };
        let mut cells = vec![
            row.task.id.clone(),
            row.task.kind.to_string(),
            status,
            progress,
            error,
        ];
        if !lags.is_empty() {
            cells.insert(
                4,
                lags.get(&row.task.id)
                    .cloned()
                    .unwrap_or_else(|| "-".into()),
            );
        }
        if with_account {
            cells.insert(0, row.task.account.clone().unwrap_or_default());
        }
        cells
    });
    aligned(&header, body)
}

/// What `discover` found, as an aligned text table.
pub fn discovered_table(tasks: &[&DiscoveredTask]) -> String {
    let with_account = tasks.iter().any(|t| t.spec.account.is_some());
    let mut header = vec!["TASK", "KIND", "NAME", "MODE", "STATUS"];
    if with_account {
        header.insert(0, "ACCOUNT");
    }
    let body = tasks.iter().map(|task| {
        let spec = &task.spec;
        let mut cells = vec![
            spec.id.clone(),
            spec.kind.to_string(),
            spec.name.clone().unwrap_or_else(|| "-".into()),
            spec.mode.clone().unwrap_or_else(|| "-".into()),
            task.listed.status.clone().unwrap_or_else(|| "-".into()),
        ];
        if with_account {
            cells.insert(0, spec.account.clone().unwrap_or_default());
        }
        cells
    });
    aligned(&header, body)
}

/// Left-aligned columns two spaces apart, header first.
fn aligned(header: &[&str], body: impl Iterator<Item = Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| h.to_string()).collect())
        .chain(body)
        .collect();
    let mut widths = vec![0; header.len()];
    for cells in &rows {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for cells in &rows {
        let mut line = String::new();
        for (cell, width) in cells.iter().zip(&widths) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// Percentage for full loads, binlog file and position or replication delay for incremental
/// tasks.
fn progress_summary(data: &StatusData) -> String {
    let progress = data.progress.as_ref();
    if let Some(percentage) = progress.and_then(|p| p.percentage) {
        return format!("{percentage}%");
    }
    if let Some(sync) = &data.sync {
        if let (Some(name), Some(pos)) = (&sync.binlog_name, sync.binlog_pos) {
            return format!("{name}:{pos}");
        }
    }
    if let Some(delay) = progress.and_then(|p| p.redis_delay_time.or(p.mongo_delay_time)) {
        return format!("delay {delay}s");
    }
    "-".into()
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use serde_json::Value;

    use super::*;
    use crate::api::model::SyncData;
    use crate::api::monitor::MonitorMetric;
    use crate::monitor::MonitorBoard;
    use crate::outlook::Tracker;
    use crate::source::postgres::{SlotRow, WalReading};
    use crate::source::SourceBoard;

    fn slot(name: &str, active: bool) -> SlotRow {
        SlotRow {
            name: name.into(),
            plugin: Some("pgoutput".into()),
            slot_type: "logical".into(),
            database: Some("orders".into()),
            active,
            restart_lsn: Some(0x100_0000),
            confirmed_flush_lsn: Some(0x180_0000),
            wal_status: Some("reserved".into()),
            safe_wal_size: Some(1 << 30),
        }
    }

    fn syncing() -> StatusData {
        StatusData {
            status: Some("Syncing".into()),
            sync: Some(SyncData {
                binlog_name: Some("mysql-bin.000003".into()),
                binlog_pos: Some(154.0),
                binlog_gtid: None,
            }),
            ..StatusData::default()
        }
    }

    /// The running exporter's `/api/v1/tasks` and `check --output json` of the same state:
    /// a PostgreSQL slot retaining WAL for a paused task (its deadline), an orphaned slot, a
    /// task whose billing expires in 3 days, and two monitored tasks, one with a sample too
    /// old for the verdict. They agree on every field they share; the outlook's fields are the
    /// running exporter's alone (a one-shot read has no rates).
    #[test]
    fn check_json_and_the_json_api_agree() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            "[api]\npublic_key = \"p\"\nprivate_key = \"k\"\n[monitor]\nenabled = true\n\
             [[tasks]]\nid = \"udts-paused\"\n\
             [[sources]]\nname = \"pg\"\nurl = \"postgresql://m@127.0.0.1/orders\"\n\
             tasks = [\"udts-paused\"]\n",
        )
        .unwrap();
        let settings = crate::config::Config::load(Some(&config))
            .unwrap()
            .resolve()
            .unwrap();
        let options = Arc::new(settings.exposition.clone());
        let now = unix_now();
        let expiring = TaskSpec {
            expires: Some(now + 3.0 * 86_400.0),
            ..TaskSpec::new("udts-expiring")
        };
        let stopped = StatusData {
            status: Some("Stopped".into()),
            ..StatusData::default()
        };
        let rows: Vec<CheckRow> = [
            (TaskSpec::new("udts-paused"), stopped),
            (expiring, syncing()),
            (TaskSpec::new("udts-sync"), syncing()),
            (TaskSpec::new("udts-old"), syncing()),
        ]
        .into_iter()
        .map(|(spec, data)| CheckRow {
            task: Arc::new(spec),
            result: Ok(data),
            read_at: now - 5.0,
        })
        .collect();

        let store = Store::new();
        store.set_tasks(rows.iter().map(|row| Arc::clone(&row.task)).collect());
        for row in &rows {
            store.update(&row.task.key(), |s| {
                s.after_poll(row.result.clone(), row.read_at)
            });
        }
        let sources = SourceBoard::default();
        for (at, lsn) in [(now - 120.0, 0x180_0000), (now - 2.0, 0x200_0000)] {
            let wal = WalReading {
                skipped: Vec::new(),
                lsn,
                slots: vec![slot("udts_gone", false), slot("udts_paused", false)],
            };
            sources.update("pg", |previous| previous.after_wal(wal.clone(), at));
        }
        let monitor = MonitorBoard::default();
        monitor.set_interval(Some(std::time::Duration::from_secs(60)));
        for (id, age) in [("udts-sync", 30.0), ("udts-old", 200.0)] {
            let key = TaskSpec::new(id).key();
            monitor.keep(key.clone(), MonitorMetric::SyncDelay, now - age, 4.0);
            monitor.keep(key, MonitorMetric::RemainingBytes, now - age, 2048.0);
        }

        let exposition = crate::exposition::render(
            &store,
            &sources,
            &monitor,
            &ExporterMetrics::new(),
            &options,
            &mut Tracker::default(),
        );
        let mut api = String::new();
        flate2::read::GzDecoder::new(&exposition.prepared().tasks_json_gzip[..])
            .read_to_string(&mut api)
            .unwrap();
        let api: Value = serde_json::from_str(&api).unwrap();

        let checked = vec![SourceCheck {
            name: "pg".into(),
            result: Ok(Arc::clone(&sources.snapshots()["pg"])),
        }];
        let derived = derive(
            &rows,
            &checked,
            monitor.snapshot(),
            &options,
            exposition.rendered_at,
        );
        let check: Value = serde_json::from_str(&json(&derived, &checked, &[], &[])).unwrap();

        // What the state holds is there, so agreeing means something.
        let task = |id: &str| {
            api["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["id"] == id)
                .unwrap()
                .clone()
        };
        let kinds = |id: &str| -> Vec<Value> {
            task(id)["deadlines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["kind"].clone())
                .collect()
        };
        assert_eq!(kinds("udts-paused"), ["slot_invalidation"]);
        assert_eq!(kinds("udts-expiring"), ["expire", "reclaim"]);
        assert_eq!(task("udts-sync")["monitor"]["current_for_verdict"], true);
        assert_eq!(task("udts-old")["monitor"]["current_for_verdict"], false);
        let slots = &api["sources"][0]["slots"];
        assert_eq!(slots[0]["slot"], "udts_gone");
        assert_eq!(
            slots[0]["drop_statement"],
            "SELECT pg_drop_replication_slot('udts_gone');"
        );
        assert!(slots[1]["invalidated_at"].is_number(), "{slots}");

        let ids = |report: &Value| -> Vec<Value> {
            report["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].clone())
                .collect()
        };
        assert_eq!(ids(&api), ids(&check));
        for (a, c) in api["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .zip(check["tasks"].as_array().unwrap())
        {
            let (mut a, mut c) = (a.clone(), c.clone());
            for outlook_field in ["throughput", "eta", "cutover", "outlook"] {
                a.as_object_mut().unwrap().remove(outlook_field);
                c.as_object_mut().unwrap().remove(outlook_field);
            }
            assert_eq!(a, c);
        }
        for field in ["generated_at", "poll_interval_seconds"] {
            assert_eq!(api[field], check[field], "{field}");
        }
        assert_eq!(api["sources"][0]["name"], check["sources"][0]["name"]);
        assert_eq!(api["sources"][0]["slots"], check["sources"][0]["slots"]);
    }
}
