//! What the task page, `GET /api/v1/tasks` and `check --output json` show: one JSON object per
//! task, ordered worst first. Each view is built once from its task's state and the facts the
//! render derived ([`crate::derive::Derived`], read through [`TaskFacts`]); nothing is derived
//! here but the words and the [`health`] the view's own fields decide. The exposition builds
//! the views on the first request after a render, not on every render.
//!
//! Timestamps are unix seconds; a value the gateway did not send is `null`, never 0 or "".

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde::Serialize;

use crate::api::monitor::MonitorMetric;
use crate::config::Cutover;
use crate::deadlines::Deadline;
use crate::derive::Derived;
use crate::monitor::TaskMonitor;
use crate::outlook::{CutoverView, Eta, Outlook, Throughput};
use crate::source::lag::MappedLag;
use crate::state::{Sample, SampleKind, TaskState};
use crate::status;

pub mod slots;
mod words;

pub use words::grouped;
use words::summary;

/// Seconds without progress after which an active task counts as stalled (the shipped alerts
/// use 30 minutes for full loads).
pub const STALLED_AFTER_SECONDS: f64 = 1800.0;

/// `GET /api/v1/tasks`.
#[derive(Debug, Clone, Serialize)]
pub struct TaskList<'a> {
    /// When this view was prepared, unix seconds.
    pub generated_at: f64,
    /// `poll.interval`, seconds.
    pub poll_interval_seconds: f64,
    /// Series in `/metrics` at the same render (`udts_exposition_series`).
    pub exposition_series: u64,
    /// Every task, worst first.
    pub tasks: Vec<&'a TaskView>,
    /// The PostgreSQL sources' watched replication slots (empty without such a source).
    pub sources: &'a [slots::SourceSlots],
}

/// One task as the page and the JSON API show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskView {
    /// The task id.
    pub id: String,
    /// `transfer` or `integration`.
    pub kind: &'static str,
    /// The name given to the task.
    pub name: Option<String>,
    /// `full`, `incremental`, `full+incremental`, ...
    pub mode: Option<String>,
    /// `ProjectId`.
    pub project_id: Option<String>,
    /// The `[[accounts]]` name, with several accounts.
    pub account: Option<String>,
    /// Whether the last read succeeded (false before the first).
    pub up: bool,
    /// The task's status, as the gateway spells it.
    pub status: Option<String>,
    /// When the task entered its status.
    pub status_since: Option<f64>,
    /// When the task was last read successfully.
    pub last_success: Option<f64>,
    /// Full-load progress.
    pub progress: Option<ProgressView>,
    /// Where the incremental phase is in the source's binlog.
    pub sync: Option<SyncView>,
    /// Redis or MongoDB replication delay.
    pub delay_seconds: Option<f64>,
    /// Retries used.
    pub retries: Option<u64>,
    /// Retries allowed.
    pub max_retries: Option<u64>,
    /// Why the last read failed, while it fails.
    pub error: Option<ErrorView>,
    /// Why the task failed (`FailedMessage`).
    pub failure_message: Option<String>,
    /// How far behind its `[[sources]]` database the task is, when mapped to one.
    pub source_lag: Option<SourceLagView>,
    /// Rates over `cutover.rate_window`, while the task is read; `null` until there are
    /// enough samples.
    pub throughput: Option<Throughput>,
    /// When it will be done at those rates (catch-up or full load); `null` when not catching
    /// up, or not known.
    pub eta: Option<Eta>,
    /// Whether it is ready for cut-over, since when, and what stands in the way.
    pub cutover: CutoverView,
    /// The outlook in one sentence, as the page shows it.
    pub outlook: Option<String>,
    /// UDTS's own monitoring numbers, while a sample is newer than five monitoring intervals.
    pub monitor: Option<MonitorView>,
    /// The deadlines UDTS enforces on the task (`resume` for a paused one, its billing's
    /// `expire` and `reclaim`), soonest first; `words` where one is near.
    pub deadlines: Vec<Deadline>,
    /// How bad it looks (an addition to the documented schema, for the page's colours and
    /// order): `unrecoverable`, `failed`, `unreadable`, `stalled`, `behind`, `other`, `active`,
    /// `done`.
    pub health: Health,
}

/// `monitor` of a [`TaskView`]: the numbers of the monitoring series, each `null` when the
/// service has no sample of it recent enough to show (five monitoring intervals).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonitorView {
    /// Unix time of the newest sample.
    pub sample_at: f64,
    /// Whether the sync delay sample is recent enough for the cut-over verdict to judge by
    /// (two monitoring intervals past the minute UDTS publishes late): a sample can be shown
    /// and still be too old for the verdict.
    pub current_for_verdict: bool,
    pub sync_delay_seconds: Option<f64>,
    pub remaining_bytes: Option<f64>,
    pub estimated_remaining_seconds: Option<f64>,
    pub source_read_bytes_per_second: Option<f64>,
    pub source_read_rows_per_second: Option<f64>,
    pub target_write_bytes_per_second: Option<f64>,
    pub target_write_rows_per_second: Option<f64>,
    pub source_network_latency_seconds: Option<f64>,
    pub target_network_latency_seconds: Option<f64>,
}

impl MonitorView {
    /// The view of `monitor`'s samples; `judgeable` says whether a sample taken at a time may
    /// be judged by (the monitoring snapshot's rule).
    fn of(monitor: &TaskMonitor, judgeable: impl Fn(f64) -> bool) -> Option<Self> {
        use MonitorMetric::*;
        let value = |metric| monitor.get(metric).map(|(_, value)| value);
        Some(Self {
            sample_at: monitor.newest()?,
            current_for_verdict: monitor.get(SyncDelay).is_some_and(|(at, _)| judgeable(at)),
            sync_delay_seconds: value(SyncDelay),
            remaining_bytes: value(RemainingBytes),
            estimated_remaining_seconds: value(EstimatedRemaining),
            source_read_bytes_per_second: value(SourceReadBytes),
            source_read_rows_per_second: value(SourceReadRows),
            target_write_bytes_per_second: value(TargetWriteBytes),
            target_write_rows_per_second: value(TargetWriteRows),
            source_network_latency_seconds: value(SourceLatency),
            target_network_latency_seconds: value(TargetLatency),
        })
    }
}

/// `source_lag` of a [`TaskView`]: the numbers of the `udts_task_source_*` series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceLagView {
    /// The `[[sources]]` name.
    pub source: String,
    /// Binlog bytes written after the task's position.
    pub bytes: Option<u64>,
    /// Binlog files between the task and the head.
    pub files: Option<u64>,
    /// Executed transactions the task lacks.
    pub transactions: Option<u64>,
    /// How long ago the source wrote the first event the task has not read.
    pub seconds: Option<f64>,
    /// Whether the task's binlog file is still on the source.
    pub binlog_retained: Option<bool>,
    /// A task that is not running holds the oldest binlog file the source keeps.
    pub purge_risk: bool,
    /// More than five minutes behind, its binlog purged, or at purge risk: worth a look.
    pub behind: bool,
    /// Why there are no numbers, when there are none.
    pub problem: Option<&'static str>,
    /// The numbers in words: "12.4 MiB, 3 files, 120 transactions, about 40 s behind orders".
    pub summary: String,
}

/// Lag in seconds above which a task counts as behind on the page.
const BEHIND_AFTER_SECONDS: f64 = 300.0;

impl SourceLagView {
    fn new(mapped: &MappedLag, running: bool) -> Self {
        let (source, lag) = (&*mapped.source, &mapped.lag);
        match lag {
            Err(problem) => Self {
                source: source.to_string(),
                bytes: None,
                files: None,
                transactions: None,
                seconds: None,
                binlog_retained: None,
                purge_risk: false,
                behind: false,
                problem: Some(problem.explanation()),
                summary: format!("no lag behind {source}: {}", problem.explanation()),
            },
            Ok(lag) => {
                let purge_risk = !running && lag.retained && lag.at_oldest_file;
                let lags = lag.bytes.is_some_and(|b| b > 0)
                    || lag.files > 0
                    || lag.transactions.is_some_and(|t| t > 0);
                // A task that is not running does not catch up: any lag is worth a look. A
                // running one is behind past five minutes, or when its age is unknown (the head
                // passed it before the exporter's first sample) and it lags at all.
                let behind = purge_risk
                    || !lag.retained
                    || match lag.seconds {
                        Some(seconds) => seconds > BEHIND_AFTER_SECONDS || (!running && lags),
                        None => lags,
                    };
                Self {
                    source: source.to_string(),
                    bytes: lag.bytes,
                    files: Some(lag.files),
                    transactions: lag.transactions,
                    seconds: lag.seconds,
                    binlog_retained: Some(lag.retained),
                    purge_risk,
                    behind,
                    problem: None,
                    summary: summary(source, lag, purge_risk),
                }
            }
        }
    }
}

/// `progress` of a [`TaskView`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProgressView {
    /// 0 to 1.
    pub ratio: Option<f64>,
    /// Rows migrated.
    pub rows: Option<u64>,
    /// Rows to migrate.
    pub target_rows: Option<u64>,
    /// Time the full load has run, whole seconds.
    pub elapsed_seconds: Option<u64>,
    /// Its estimated total duration, whole seconds.
    pub estimated_duration_seconds: Option<u64>,
}

/// `sync` of a [`TaskView`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncView {
    /// `mysql-bin.000042`.
    pub binlog_file: Option<String>,
    /// Offset in that file.
    pub binlog_position: Option<u64>,
    /// The executed GTID set.
    pub gtid: Option<String>,
}

/// `error` of a [`TaskView`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorView {
    /// The stable reason, as in `udts_api_request_errors_total`.
    pub reason: &'static str,
    /// What went wrong, first line.
    pub message: String,
}

/// One point of `history` in `GET /api/v1/tasks/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleView {
    /// Unix seconds (whole: samples are taken a minute apart).
    pub at: u64,
    /// `progress` (0 to 1), `delay_seconds`, or `binlog` (file index x 2^32 + position).
    pub kind: SampleKind,
    /// The value: an integer for `binlog`, a number otherwise.
    pub value: SampleValue,
}

/// A sample's value: binlog positions are integers, ratios and delays are numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SampleValue {
    /// `binlog`: file index x 2^32 + position.
    Position(u64),
    /// `progress` and `delay_seconds`.
    Number(f64),
}

impl From<&Sample> for SampleView {
    fn from(sample: &Sample) -> Self {
        let value = match (sample.kind, whole(Some(sample.value))) {
            (SampleKind::Binlog, Some(position)) => SampleValue::Position(position),
            _ => SampleValue::Number(sample.value),
        };
        Self {
            at: u64::from(sample.at),
            kind: sample.kind,
            value,
        }
    }
}

/// `GET /api/v1/tasks/{id}`: the task and its recent samples.
#[derive(Debug, Clone, Serialize)]
pub struct TaskDetail<'a> {
    /// The task.
    #[serde(flatten)]
    pub task: &'a TaskView,
    /// Up to an hour of samples, oldest first.
    pub history: Vec<SampleView>,
}

/// How bad a task looks, for ordering and colour: lower is worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// FailedUnrecoverable or StoppedUnrecoverable.
    Unrecoverable,
    /// Failed or RetryPending.
    Failed,
    /// The exporter cannot read it.
    Unreadable,
    /// Dumping, Loading or Syncing with no progress for 30 minutes.
    Stalled,
    /// Behind its source by more than five minutes, its binlog purged, or at purge risk.
    Behind,
    /// Anything in between: created, checking, starting, stopping, an unknown status; or a
    /// stopped task with a deadline near (a pause about to outlast 7 days, a billing expiry).
    Other,
    /// Dumping, Loading, Syncing, Synced.
    Active,
    /// Done, Success, Stopped.
    Done,
}

impl Health {
    /// The CSS class and summary word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unrecoverable => "unrecoverable",
            Self::Failed => "failed",
            Self::Unreadable => "unreadable",
            Self::Stalled => "stalled",
            Self::Behind => "behind",
            Self::Other => "other",
            Self::Active => "active",
            Self::Done => "done",
        }
    }
}

/// What a task's [`Health`] is decided by, gathered once with its view.
#[derive(Debug, Clone, Copy, Default)]
pub struct HealthFacts<'a> {
    /// Its status; `""` while unknown.
    pub status: &'a str,
    /// Whether the last read succeeded.
    pub up: bool,
    /// Seconds since its progress last moved.
    pub quiet_for: f64,
    /// Whether it is behind its source ([`SourceLagView::behind`]).
    pub behind: bool,
    /// Whether one of its deadlines is near enough to be said.
    pub deadline_near: bool,
}

/// How bad a task looks, from its facts: the worst that applies. A task behind its source
/// sorts with the worse ones unless it is already worse; a finished or stopped one with a
/// deadline near sorts above the running ones (it needs someone before then), while a running
/// one keeps its place and says it in red.
pub fn health(facts: &HealthFacts<'_>) -> Health {
    let status = facts.status;
    let base = if status::UNRECOVERABLE.contains(&status) {
        Health::Unrecoverable
    } else if status::RETRYING.contains(&status) {
        Health::Failed
    } else if !facts.up {
        Health::Unreadable
    } else if status::MOVING.contains(&status) && facts.quiet_for > STALLED_AFTER_SECONDS {
        Health::Stalled
    } else if status::ACTIVE.contains(&status) {
        Health::Active
    } else if status::is_finished(status) {
        Health::Done
    } else {
        Health::Other
    };
    if base > Health::Behind && facts.behind {
        Health::Behind
    } else if base == Health::Done && facts.deadline_near {
        Health::Other
    } else {
        base
    }
}

/// Everything one task's view is made of, gathered from the render's derivation
/// ([`TaskFacts::of`]) or, in unit tests, by hand.
#[derive(Debug, Default)]
pub struct TaskFacts<'a> {
    /// Its source and lag behind it.
    pub lag: Option<&'a MappedLag>,
    /// Its outlook, in a running exporter.
    pub outlook: Option<&'a Outlook>,
    /// Its monitoring samples that may be shown, and whether each time may be judged by.
    pub monitor: Option<MonitorView>,
    /// Its deadlines, soonest first.
    pub deadlines: Vec<Deadline>,
}

impl<'a> TaskFacts<'a> {
    /// The `i`th task's facts in `derived`.
    pub fn of(derived: &'a Derived, i: usize) -> Self {
        Self {
            lag: derived.lag(i),
            outlook: derived.outlook(i),
            monitor: derived.monitor(i).and_then(|samples| {
                MonitorView::of(&samples, |at| derived.monitor.judgeable(at, derived.at))
            }),
            deadlines: derived.deadlines(i),
        }
    }
}

/// The view of one task in `state` with its `facts` at `now`, built once: its health is
/// decided last, from what the view says.
pub fn view(state: &TaskState, facts: TaskFacts<'_>, rule: &Cutover, now: f64) -> TaskView {
    let spec = &state.spec;
    let data = state.data.as_ref();
    let progress = data.and_then(|d| d.progress.as_ref());
    let full_load = progress.and_then(|p| {
        let view = ProgressView {
            ratio: p.percentage.map(|p| p / 100.0),
            rows: whole(p.cur_count),
            target_rows: whole(p.total_count),
            elapsed_seconds: whole(p.cur_duration),
            estimated_duration_seconds: whole(p.total_duration),
        };
        let any = view.ratio.is_some()
            || [
                view.rows,
                view.target_rows,
                view.elapsed_seconds,
                view.estimated_duration_seconds,
            ]
            .iter()
            .any(Option::is_some);
        any.then_some(view)
    });
    let mut view = TaskView {
        id: spec.id.clone(),
        kind: spec.kind.as_str(),
        name: spec.name.clone().filter(|n| !n.is_empty()),
        mode: spec.mode.clone().filter(|m| !m.is_empty()),
        project_id: spec.project_id.clone().filter(|p| !p.is_empty()),
        account: spec.account.clone(),
        up: state.up == Some(true),
        status: data.and_then(|d| d.status.clone()),
        status_since: state.status_since,
        last_success: state.last_success,
        progress: full_load,
        sync: data.and_then(|d| d.sync.as_ref()).map(|s| SyncView {
            binlog_file: s.binlog_name.clone().filter(|n| !n.is_empty()),
            binlog_position: whole(s.binlog_pos),
            gtid: s.binlog_gtid.clone().filter(|g| !g.is_empty()),
        }),
        delay_seconds: progress.and_then(|p| p.redis_delay_time.or(p.mongo_delay_time)),
        retries: whole(data.and_then(|d| d.cur_retry_count)),
        max_retries: whole(data.and_then(|d| d.max_retry_count)),
        error: state.last_error.as_ref().map(|e| ErrorView {
            reason: e.reason(),
            message: first_line(&e.to_string()),
        }),
        failure_message: data
            .and_then(|d| d.failed_message.clone())
            .filter(|m| !m.trim().is_empty()),
        source_lag: facts.lag.map(|mapped| {
            let running = state
                .status()
                .is_some_and(|s| status::INCREMENTAL.contains(&s));
            SourceLagView::new(mapped, running)
        }),
        throughput: facts.outlook.and_then(|o| o.throughput),
        eta: facts.outlook.and_then(|o| o.eta),
        cutover: facts
            .outlook
            .map_or_else(CutoverView::default, |o| o.cutover.clone()),
        outlook: facts.outlook.and_then(|o| words::outlook_sentence(o, rule)),
        monitor: facts.monitor,
        deadlines: facts.deadlines,
        health: Health::Done,
    };
    view.health = health(&HealthFacts {
        status: state.status().unwrap_or(""),
        up: state.up == Some(true),
        quiet_for: state.last_progress.map_or(0.0, |at| now - at),
        behind: view.source_lag.as_ref().is_some_and(|lag| lag.behind),
        deadline_near: view.deadlines.iter().any(|d| d.words.is_some()),
    });
    view
}

impl TaskView {
    /// An incremental task's sync delay and data remaining by UDTS's monitoring, in words, for
    /// the page ("UDTS: sync delay 3 s, 1.2 MiB left to apply, about 40 s"). Said when the page
    /// is written rather than kept with the views: at 10,000 tasks the kept strings cost
    /// megabytes (BENCHMARKS.md); the page's script says the same from the JSON's numbers.
    pub fn udts_sentence(&self) -> Option<String> {
        let incremental = self
            .status
            .as_deref()
            .is_some_and(|s| status::INCREMENTAL.contains(&s));
        let m = self.monitor.as_ref().filter(|_| incremental)?;
        let sentence = words::monitor_sentence(
            m.sync_delay_seconds,
            m.remaining_bytes,
            m.estimated_remaining_seconds,
        )?;
        Some(match (m.current_for_verdict, m.sync_delay_seconds) {
            (false, Some(_)) => format!("{sentence} {}", words::TOO_OLD_FOR_VERDICT),
            _ => sentence,
        })
    }

    /// UDTS's read and write speeds and its network latency to each end, in words, for the
    /// page; none for a finished task, whose last speeds are history.
    pub fn udts_detail(&self) -> Option<String> {
        if self.status.as_deref().is_some_and(status::is_finished) {
            return None;
        }
        let m = self.monitor.as_ref()?;
        words::monitor_detail(
            (
                m.source_read_bytes_per_second,
                m.source_read_rows_per_second,
            ),
            (
                m.target_write_bytes_per_second,
                m.target_write_rows_per_second,
            ),
            m.source_network_latency_seconds,
            m.target_network_latency_seconds,
        )
    }
}

/// A count, position or whole number of seconds as a JSON integer: the gateway sends them as
/// floats or strings, and typed clients (Go `int`, serde `u64`) refuse `1.0`. A value that is
/// not a measurement (negative, NaN, beyond 2^53) is absent, as it has no series either.
fn whole(value: Option<f64>) -> Option<u64> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53: every integer below it is a float
    value
        .filter(|v| v.is_finite() && *v >= 0.0 && *v <= EXACT)
        .map(|v| v.round() as u64)
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim().to_string()
}

/// The views of a snapshot, with each task's trend, worst first (then by id).
#[derive(Debug, Default)]
pub struct Views {
    /// The tasks, worst first.
    pub tasks: Vec<TaskView>,
    /// Each task's trend, by position in `tasks`: the state's own ring, shared, not copied.
    pub trends: Vec<Arc<VecDeque<Sample>>>,
    /// Tasks per status word, and per health class for unreadable and stalled.
    pub summary: BTreeMap<String, (Health, usize)>,
    /// Tasks the exporter judges ready for cut-over.
    pub ready_for_cutover: usize,
    /// The PostgreSQL sources' watched replication slots.
    pub sources: Vec<slots::SourceSlots>,
}

impl Views {
    /// The views of the render's tasks, each built once from its facts, worst first.
    pub fn build(derived: &Derived) -> Self {
        let rule = &derived.options.cutover;
        let mut rows: Vec<(TaskView, Arc<VecDeque<Sample>>)> = derived
            .tasks
            .iter()
            .enumerate()
            .map(|(i, state)| {
                let task = view(state, TaskFacts::of(derived, i), rule, derived.at);
                (task, Arc::clone(&state.trend))
            })
            .collect();
        rows.sort_by(|(a, _), (b, _)| {
            (a.health, &a.id, &a.account).cmp(&(b.health, &b.id, &b.account))
        });
        let mut summary: BTreeMap<String, (Health, usize)> = BTreeMap::new();
        for (task, _) in &rows {
            let word = match task.health {
                Health::Unreadable | Health::Stalled | Health::Behind => {
                    task.health.as_str().to_string()
                }
                _ => task.status.clone().unwrap_or_else(|| "unknown".into()),
            };
            let entry = summary.entry(word).or_insert((task.health, 0));
            entry.0 = entry.0.min(task.health);
            entry.1 += 1;
        }
        let ready_for_cutover = rows
            .iter()
            .filter(|(task, _)| task.cutover.ready == Some(true))
            .count();
        let (tasks, trends) = rows.into_iter().unzip();
        Self {
            tasks,
            trends,
            summary,
            ready_for_cutover,
            sources: slots::by_source(&derived.slots),
        }
    }

    /// The task `id` (of `account`, when given) and its trend.
    pub fn find(&self, id: &str, account: Option<&str>) -> Option<(&TaskView, &VecDeque<Sample>)> {
        self.tasks
            .iter()
            .zip(&self.trends)
            .find(|(task, _)| {
                task.id == id && account.is_none_or(|a| task.account.as_deref() == Some(a))
            })
            .map(|(task, trend)| (task, &**trend))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model::{Progress, SyncData};
    use crate::api::{ApiError, StatusData};
    use crate::source::lag::{LagProblem, TaskLag};
    use crate::task::TaskSpec;

    /// The view of `state` with only its lag behind a source (or none) as facts.
    fn view(
        state: &TaskState,
        lag: Option<&(&str, Result<TaskLag, LagProblem>)>,
        now: f64,
    ) -> TaskView {
        let mapped = lag.map(|(source, lag)| MappedLag {
            source: (*source).into(),
            lag: lag.clone(),
        });
        let facts = TaskFacts {
            lag: mapped.as_ref(),
            ..TaskFacts::default()
        };
        super::view(state, facts, &Cutover::default(), now)
    }

    fn state(id: &str, status: &str) -> TaskState {
        TaskState::new(TaskSpec::new(id)).after_poll(
            Ok(StatusData {
                status: Some(status.into()),
                ..Default::default()
            }),
            1000.0,
        )
    }

    fn lag(bytes: u64, files: u64, seconds: f64, retained: bool, at_oldest: bool) -> TaskLag {
        TaskLag {
            bytes: retained.then_some(bytes),
            files,
            transactions: Some(120),
            seconds: Some(seconds),
            retained,
            at_oldest_file: at_oldest,
        }
    }

    #[test]
    fn lag_is_said_in_words_and_tasks_behind_come_before_healthy_ones() {
        let running = state("udts-far", "Syncing");
        let far = lag(13_002_342, 3, 420.0, true, false);
        let view_far = view(&running, Some(&("orders-primary", Ok(far))), 1000.0);
        let summary = &view_far.source_lag.as_ref().unwrap().summary;
        assert_eq!(
            summary,
            "12.4 MiB, 3 files, 120 transactions, about 7 min behind orders-primary"
        );
        assert_eq!(view_far.health, Health::Behind);

        let near = lag(40_960, 0, 40.0, true, false);
        let view_near = view(&running, Some(&("orders-primary", Ok(near))), 1000.0);
        assert_eq!(
            view_near.source_lag.as_ref().unwrap().summary,
            "40.0 KiB, 120 transactions, about 40 s behind orders-primary"
        );
        assert_eq!(view_near.health, Health::Active);

        // Stopped in the oldest file: purge risk; a running task there is not at risk.
        let stopped = state("udts-stopped", "Stopped");
        let oldest = lag(100, 5, 30.0, true, true);
        let at_risk = view(
            &stopped,
            Some(&("orders-primary", Ok(oldest.clone()))),
            1000.0,
        );
        assert!(at_risk.source_lag.as_ref().unwrap().purge_risk);
        assert_eq!(at_risk.health, Health::Behind);
        assert!(
            !view(&running, Some(&("o", Ok(oldest))), 1000.0)
                .source_lag
                .unwrap()
                .purge_risk
        );

        let purged = view(
            &running,
            Some(&("orders-primary", Ok(lag(0, 9, 0.0, false, false)))),
            1000.0,
        );
        assert!(purged
            .source_lag
            .unwrap()
            .summary
            .starts_with("binlog purged on orders-primary"));
        assert!(Health::Behind < Health::Active && Health::Stalled < Health::Behind);
    }

    #[test]
    fn absent_values_are_null_not_zero() {
        let view = view(&TaskState::new(TaskSpec::new("udts-new")), None, 0.0);
        let json = serde_json::to_value(&view).unwrap();
        for key in [
            "name",
            "mode",
            "project_id",
            "account",
            "status",
            "status_since",
            "last_success",
            "progress",
            "sync",
            "delay_seconds",
            "retries",
            "max_retries",
            "error",
            "failure_message",
        ] {
            assert!(json[key].is_null(), "{key}: {json}");
        }
        assert_eq!(json["up"], false);
        assert_eq!(json["kind"], "transfer");
    }

    #[test]
    fn present_values_are_carried_over() {
        let data = StatusData {
            status: Some("Syncing".into()),
            cur_retry_count: Some(1.0),
            max_retry_count: Some(3.0),
            progress: Some(Progress {
                percentage: Some(42.0),
                mongo_delay_time: Some(7.0),
                ..Default::default()
            }),
            sync: Some(SyncData {
                binlog_name: Some("mysql-bin.000042".into()),
                binlog_pos: Some(154.0),
                binlog_gtid: Some("uuid:1-5".into()),
            }),
            failed_message: Some("disk full\nmore".into()),
        };
        let state = TaskState::new(TaskSpec::new("udts-a"))
            .after_poll(Ok(data), 1000.0)
            .after_poll(Err(ApiError::Timeout(String::new())), 1030.0);
        let json = serde_json::to_value(view(&state, None, 1030.0)).unwrap();
        assert_eq!(json["progress"]["ratio"], 0.42);
        assert!(json["progress"]["rows"].is_null());
        assert_eq!(json["sync"]["binlog_file"], "mysql-bin.000042");
        assert_eq!(json["sync"]["binlog_position"], 154.0);
        assert_eq!(json["sync"]["gtid"], "uuid:1-5");
        assert_eq!(json["delay_seconds"], 7.0);
        assert_eq!(json["retries"], 1.0);
        assert_eq!(json["up"], false);
        assert_eq!(json["error"]["reason"], "timeout");
        assert_eq!(json["failure_message"], "disk full\nmore");
        assert_eq!(json["last_success"], 1000.0);
    }

    #[test]
    fn the_worst_come_first_and_are_counted_by_status() {
        let mut stalled = state("udts-stalled", "Loading");
        stalled.last_progress = Some(0.0);
        let unreadable =
            state("udts-down", "Syncing").after_poll(Err(ApiError::Timeout(String::new())), 1001.0);
        let states: Vec<Arc<TaskState>> = [
            state("udts-done", "Done"),
            state("udts-sync", "Synced"),
            stalled,
            unreadable,
            state("udts-failed", "Failed"),
            state("udts-gone", "FailedUnrecoverable"),
        ]
        .into_iter()
        .map(Arc::new)
        .collect();
        let views = Views::build(&Derived::of_tasks(
            states,
            Default::default(),
            1000.0 + STALLED_AFTER_SECONDS + 1.0,
        ));
        let order: Vec<&str> = views.tasks.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(
            order,
            [
                "udts-gone",
                "udts-failed",
                "udts-down",
                "udts-stalled",
                "udts-sync",
                "udts-done"
            ]
        );
        assert_eq!(views.summary["stalled"], (Health::Stalled, 1));
        assert_eq!(views.summary["unreadable"], (Health::Unreadable, 1));
        assert_eq!(views.summary["Done"], (Health::Done, 1));
        assert!(views.find("udts-sync", None).is_some());
        assert!(views.find("udts-sync", Some("other")).is_none());
        assert!(views.find("udts-nope", None).is_none());
    }

    #[test]
    fn udts_monitoring_is_said_in_words_for_a_running_task_only() {
        let monitor = MonitorView {
            sample_at: 1000.0,
            current_for_verdict: true,
            sync_delay_seconds: Some(3.0),
            remaining_bytes: Some(1_258_291.0),
            estimated_remaining_seconds: Some(40.0),
            source_read_bytes_per_second: Some(41_000.0),
            source_read_rows_per_second: Some(3_400.0),
            target_write_bytes_per_second: Some(40_960.0),
            target_write_rows_per_second: None,
            source_network_latency_seconds: Some(0.003),
            target_network_latency_seconds: Some(1.25),
        };
        let mut task = view(&state("udts-a", "Syncing"), None, 1000.0);
        task.monitor = Some(monitor);
        assert_eq!(
            task.udts_sentence().as_deref(),
            Some("UDTS: sync delay 3 s, 1.2 MiB left to apply, about 40 s")
        );
        assert_eq!(
            task.udts_detail().as_deref(),
            Some(
                "reads 40.0 KiB/s (3,400 rows/s), writes 40.0 KiB/s; network latency to source \
                 3 ms, target 1.3 s"
            )
        );
        // Loading: speeds, no sync sentence; finished: neither, its speeds are history.
        task.status = Some("Loading".into());
        assert_eq!(task.udts_sentence(), None);
        assert!(task.udts_detail().is_some());
        task.status = Some("Done".into());
        assert_eq!(task.udts_detail(), None);
    }
}
