//! Where each task is heading, from the exporter's own samples: the binlog bytes it applied
//! (`udts_task_source_applied_bytes_total`), its throughput over `cutover.rate_window`, when it
//! will be done (catch-up or full-load ETA), and whether it is ready for cut-over
//! (`udts_task_cutover_ready`, the JSON's `cutover`, the `wait` command).
//!
//! A task mapped to a `[[sources]]` database is judged by its lag behind that source; a Redis or
//! MongoDB task by the delay its status reports; any other by UDTS's own monitoring numbers (sync
//! delay and data remaining), which also give the ETA and the rates where the exporter has none.
//!
//! The [`Tracker`] is fed every render with the store's snapshot and the sources' readings. It
//! keeps a bounded window per task ([`window::CAPACITY`] samples) on the monotonic clock, so a
//! wall-clock step never yields a fake rate. Nothing is persisted: a restart starts the clocks
//! again (the counter starts at 0, as counters do; `steady_for` is watched anew).

pub mod verdict;
pub mod window;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::api::monitor::MonitorMetric;
use crate::config::ExpositionOptions;
use crate::monitor::{MonitorSnapshot, TaskMonitor};
use crate::source::lag::{MappedLag, SourceLags, TaskLag};
use crate::source::SourceSnapshot;
use crate::state::TaskState;
use verdict::{judge, Facts};
use window::{Sample, Window};

/// Rates over the last `cutover.rate_window`, each absent until the window holds enough; or,
/// where the exporter has none of its own, UDTS's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Throughput {
    /// Binlog bytes the task's position advanced per second (basis `udts`: bytes UDTS writes
    /// to the target per second).
    pub applied_bytes_per_second: Option<f64>,
    /// Bytes the task's source wrote per second.
    pub source_written_bytes_per_second: Option<f64>,
    /// Full-load rows per second (basis `udts`: rows UDTS writes to the target per second).
    pub rows_per_second: Option<f64>,
    /// Whose measurement the rates are.
    pub basis: ThroughputBasis,
}

/// Whose measurement a [`Throughput`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThroughputBasis {
    /// The exporter's own samples (its source's binlog, the status's row counts).
    Exporter,
    /// UDTS's monitoring (`udts_target_data_size`, `udts_target_data_count`).
    Udts,
}

/// What an ETA is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EtaBasis {
    /// Reaching the source's head: lag bytes over (apply rate minus write rate).
    CatchUp,
    /// Finishing the full load: rows left over rows per second.
    FullLoad,
    /// Catching up, by UDTS's own estimate (`udts_sync_estimate_remaining_seconds`), where the
    /// exporter has no rates of its own.
    Udts,
}

/// When the task will be done, at the current rates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Eta {
    /// Whole seconds from now.
    pub seconds: u64,
    /// Unix seconds.
    pub at: f64,
    /// What is estimated.
    pub basis: EtaBasis,
    /// UDTS's own estimate of the time left: for a full load `TotalDuration - CurDuration`,
    /// for the incremental phase its monitoring's `udts_sync_estimate_remaining_seconds`.
    pub udts_estimate_seconds: Option<u64>,
}

/// What a cut-over verdict is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CutoverBasis {
    /// The task's `[[sources]]` database: its lag behind the binlog's head.
    Source,
    /// UDTS's own monitoring: sync delay and data remaining.
    Monitor,
    /// The Redis or MongoDB delay `GetUDTSTaskStatus` reports.
    Status,
}

/// The cut-over verdict as the JSON carries it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CutoverView {
    /// Ready, not ready, or `null` where it cannot be judged.
    pub ready: Option<bool>,
    /// What the lag was judged by; `null` when there is none to judge by.
    pub basis: Option<CutoverBasis>,
    /// Unix seconds the verdict has held since (this exporter's watch).
    pub since: Option<f64>,
    /// What stands in the way, in words (`"lag 42 s over 10 s"`).
    pub blocking: Vec<String>,
}

impl Default for CutoverView {
    fn default() -> Self {
        Self {
            ready: None,
            basis: None,
            since: None,
            blocking: vec!["not watched: judged by a running exporter from its own samples".into()],
        }
    }
}

/// One task's outlook at one render.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outlook {
    /// `udts_task_source_applied_bytes_total`, for a task mapped to a source whose position
    /// could be placed in the source's binlog.
    pub applied_bytes_total: Option<u64>,
    /// Its rates, while it is read.
    pub throughput: Option<Throughput>,
    /// When it will be done.
    pub eta: Option<Eta>,
    /// Whether it is ready for cut-over.
    pub cutover: CutoverView,
    /// How long its lag has been within `cutover.max_lag` without a break.
    pub steady: Duration,
    /// Its lag in bytes behind its source now, when known.
    pub lag_bytes: Option<u64>,
    /// Whether its lag is known to be over `cutover.max_lag`.
    pub beyond_max_lag: bool,
}

/// What the tracker remembers of one task between renders.
#[derive(Debug)]
struct Track {
    /// `last_success` of the state sampled last: a new one is a new poll.
    sampled: Option<f64>,
    /// The time of the monitoring delay sample judged last: a new one is a new observation.
    monitor_sampled: Option<f64>,
    /// The source (a hash of its name: a string per task would cost more than the rest) and
    /// the offset in its written bytes that the task's position was at when last counted.
    position: Option<(u64, i128)>,
    applied_total: Option<u64>,
    /// Whether a move back was logged (once per task).
    moved_back_logged: bool,
    window: Window,
    /// The first poll seen.
    watched_since: Instant,
    /// Since when the lag has been within `max_lag` without a break.
    steady_since: Option<Instant>,
    retries: Option<f64>,
    retried_at: Option<Instant>,
    /// The verdict's value and since when it holds.
    verdict: (Option<bool>, Instant),
    /// The render that last saw the task: tracks not seen by the latest are dropped.
    generation: u64,
}

impl Track {
    fn new(now: Instant) -> Self {
        Self {
            sampled: None,
            monitor_sampled: None,
            position: None,
            applied_total: None,
            moved_back_logged: false,
            window: Window::default(),
            watched_since: now,
            steady_since: None,
            retries: None,
            retried_at: None,
            verdict: (None, now),
            generation: 0,
        }
    }
}

/// Every task's track, updated once per render.
#[derive(Debug, Default)]
pub struct Tracker {
    /// By task id, then account (almost always one): looked up by `&str`, so a render does
    /// not allocate a key per task.
    tracks: HashMap<String, Vec<(Option<String>, Track)>>,
    generation: u64,
}

impl Tracker {
    /// Takes the snapshot at `now` (monotonic) and `unix_now` and returns each task's outlook,
    /// in task order. Tasks gone from the snapshot are forgotten.
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        tasks: &[Arc<TaskState>],
        lags: &SourceLags,
        sources: &HashMap<String, Arc<SourceSnapshot>>,
        monitor: &MonitorSnapshot,
        options: &ExpositionOptions,
        now: Instant,
        unix_now: f64,
    ) -> Vec<Outlook> {
        self.generation += 1;
        let generation = self.generation;
        // The monitoring snapshot says how old a sample the verdict may judge by.
        let board = monitor
            .judged_for()
            .filter(|_| !monitor.tasks.is_empty())
            .map(|allowed_age| (&monitor.tasks, allowed_age));
        let mut outlooks = Vec::with_capacity(tasks.len());
        for (i, task) in tasks.iter().enumerate() {
            let spec = &task.spec;
            if !self.tracks.contains_key(spec.id.as_str()) {
                self.tracks.insert(spec.id.clone(), Vec::with_capacity(1));
            }
            let Some(accounts) = self.tracks.get_mut(spec.id.as_str()) else {
                continue;
            };
            let at = match accounts.iter().position(|(a, _)| *a == spec.account) {
                Some(at) => at,
                None => {
                    accounts.push((spec.account.clone(), Track::new(now)));
                    accounts.len() - 1
                }
            };
            let track = &mut accounts[at].1;
            track.generation = generation;
            let lag = lags.get(i).and_then(Option::as_ref);
            let source =
                lag.and_then(|mapped| Some((&*mapped.source, sources.get(&*mapped.source)?)));
            let udts = board.and_then(|(tasks, allowed_age)| {
                Some(Udts {
                    samples: *tasks.of(spec)?,
                    allowed_age,
                    unix_now,
                })
            });
            outlooks.push(outlook(
                track, task, lag, source, udts, options, now, unix_now,
            ));
        }
        self.tracks.retain(|_, accounts| {
            accounts.retain(|(_, track)| track.generation == generation);
            !accounts.is_empty()
        });
        outlooks
    }

    /// Tasks tracked (for the memory bound's test and benchmark).
    pub fn len(&self) -> usize {
        self.tracks.values().map(Vec::len).sum()
    }

    /// Whether no task is tracked.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }
}

type Lag<'a> = Option<&'a MappedLag>;

/// What UDTS's monitoring last said of one task, and how old a sample may be to count.
#[derive(Debug, Clone, Copy)]
struct Udts {
    samples: TaskMonitor,
    /// Two monitoring intervals past the publication delay.
    allowed_age: Duration,
    unix_now: f64,
}

impl Udts {
    fn age(&self, metric: MonitorMetric) -> Option<Duration> {
        let (at, _) = self.samples.get(metric)?;
        Some(Duration::from_secs_f64((self.unix_now - at).max(0.0)))
    }

    /// `metric`'s value while its sample is current.
    fn current(&self, metric: MonitorMetric) -> Option<f64> {
        let (_, value) = self.samples.get(metric)?;
        (self.age(metric)? <= self.allowed_age).then_some(value)
    }
}

/// What the verdict judges a task's lag by, the lag, and for the monitoring basis the data
/// remaining and the sample's age against the most it may be.
struct Judged {
    basis: Option<CutoverBasis>,
    lag: Result<Duration, String>,
    remaining: Option<u64>,
    sample_age: Option<(Duration, Duration)>,
}

#[allow(clippy::too_many_arguments)]
fn outlook(
    track: &mut Track,
    task: &TaskState,
    lag: Lag<'_>,
    source: Option<(&str, &Arc<SourceSnapshot>)>,
    udts: Option<Udts>,
    options: &ExpositionOptions,
    now: Instant,
    unix_now: f64,
) -> Outlook {
    let rule = &options.cutover;
    let data = task.data.as_ref();
    let task_lag = lag.and_then(|mapped| mapped.lag.as_ref().ok());
    count_applied(track, task, task_lag, source);

    let since_read = task
        .last_success
        .map(|at| Duration::from_secs_f64((unix_now - at).max(0.0)));
    let fresh = since_read.is_some_and(|age| age <= options.poll_interval * 2);
    let judged = lag_duration(task, lag, udts.as_ref());
    let lag_now = &judged.lag;
    let within_bounds = matches!(lag_now, Ok(lag) if *lag <= rule.max_lag)
        && judged.remaining.is_none_or(|r| r <= rule.max_remaining)
        && judged
            .sample_age
            .is_none_or(|(age, allowed)| age <= allowed);
    let new_poll = task.last_success.is_some() && task.last_success != track.sampled;
    let monitor_sampled = (judged.basis == Some(CutoverBasis::Monitor))
        .then(|| udts.and_then(|u| u.samples.get(MonitorMetric::SyncDelay)))
        .flatten()
        .map(|(at, _)| at);
    let new_sample = monitor_sampled.is_some() && monitor_sampled != track.monitor_sampled;
    if new_sample {
        track.monitor_sampled = monitor_sampled;
    }
    if new_poll || new_sample {
        if within_bounds {
            track.steady_since.get_or_insert(now);
        } else {
            track.steady_since = None;
        }
    }
    if new_poll {
        track.sampled = task.last_success;
        let progress = data.and_then(|d| d.progress.as_ref());
        let sample = Sample {
            at: now,
            applied: track.applied_total,
            written: source.map(|(_, s)| s.written_total),
            rows: progress.and_then(|p| p.cur_count).filter(|r| *r >= 0.0),
        };
        // A Redis or MongoDB task has nothing to take a rate of, and a finished one (Done,
        // Success, an unrecoverable end) nothing that moves any more: no window at all, which
        // at 10,000 tasks of a long-lived account is most of the tracker's memory.
        let finished = data
            .and_then(|d| d.status.as_deref())
            .is_some_and(crate::status::is_finished);
        if finished {
            track.window = Window::default();
        } else if !sample.is_empty() {
            track.window.push(sample, rule.rate_window);
        }
        let retries = data.and_then(|d| d.cur_retry_count);
        if let (Some(before), Some(after)) = (track.retries, retries) {
            if after > before {
                track.retried_at = Some(now);
            }
        }
        track.retries = retries.or(track.retries);
    }

    // Within `max_lag` the task is at the head as far as a cut-over goes: a catch-up ETA of a
    // few seconds there would only flicker with the timing of the source's reads.
    let within_reach = matches!(lag_now, Ok(lag) if *lag <= rule.max_lag);
    let beyond_max_lag = matches!(lag_now, Ok(lag) if *lag > rule.max_lag);
    let facts = Facts {
        status: data.and_then(|d| d.status.clone()),
        full_only: task.spec.mode.as_deref() == Some("full"),
        since_read,
        lag: judged.lag.clone(),
        remaining: judged.remaining,
        sample_age: judged.sample_age,
        watched: now.saturating_duration_since(track.watched_since),
        steady: track
            .steady_since
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since)),
        since_retry: track.retried_at.map(|at| now.saturating_duration_since(at)),
    };
    let verdict = judge(&facts, rule, options.poll_interval);
    if verdict.ready != track.verdict.0 {
        track.verdict = (verdict.ready, now);
    }
    let held = now.saturating_duration_since(track.verdict.1).as_secs_f64();

    let window = &track.window;
    let span = rule.rate_window;
    let has_rates = |t: &Throughput| {
        t.applied_bytes_per_second.is_some()
            || t.source_written_bytes_per_second.is_some()
            || t.rows_per_second.is_some()
    };
    let throughput = fresh
        .then(|| Throughput {
            applied_bytes_per_second: window.rate(span, |s| s.applied.map(|a| a as f64)),
            source_written_bytes_per_second: window.rate(span, |s| s.written.map(|w| w as f64)),
            rows_per_second: window.rate(span, |s| s.rows),
            basis: ThroughputBasis::Exporter,
        })
        .filter(has_rates);
    let lag_bytes = task_lag.and_then(|l| l.bytes);
    let incremental = !facts.full_only
        && facts
            .status
            .as_deref()
            .is_some_and(|s| crate::status::INCREMENTAL.contains(&s));
    let udts_estimate = udts
        .filter(|_| incremental)
        .and_then(|u| u.current(MonitorMetric::EstimatedRemaining))
        .map(|s| s.round() as u64);
    let own_eta = throughput.and_then(|t| {
        let catching_up = lag_bytes.filter(|_| !within_reach);
        eta(task, catching_up, &t, unix_now)
    });
    let eta = match own_eta {
        Some(mut own) if own.basis == EtaBasis::CatchUp => {
            own.udts_estimate_seconds = udts_estimate;
            Some(own)
        }
        Some(own) => Some(own),
        // Within `max_lag` a countdown would only flicker, as for the exporter's own.
        None => udts_estimate
            .filter(|seconds| *seconds > 0 && !within_reach)
            .map(|seconds| Eta {
                seconds,
                at: unix_now + seconds as f64,
                basis: EtaBasis::Udts,
                udts_estimate_seconds: Some(seconds),
            }),
    };
    let finished = data
        .and_then(|d| d.status.as_deref())
        .is_some_and(crate::status::is_finished);
    let throughput = throughput.or_else(|| {
        let udts = udts.filter(|_| !finished)?;
        Some(Throughput {
            applied_bytes_per_second: udts.current(MonitorMetric::TargetWriteBytes),
            source_written_bytes_per_second: None,
            rows_per_second: udts.current(MonitorMetric::TargetWriteRows),
            basis: ThroughputBasis::Udts,
        })
        .filter(has_rates)
    });
    Outlook {
        applied_bytes_total: track.applied_total,
        eta,
        throughput,
        cutover: CutoverView {
            ready: verdict.ready,
            basis: judged.basis,
            since: Some(unix_now - held),
            blocking: verdict.blocking,
        },
        steady: facts.steady,
        lag_bytes,
        beyond_max_lag,
    }
}

/// Advances the applied-bytes counter to the task's position now. The position is placed in
/// the source's written bytes (written so far minus the lag in bytes), which spans file
/// rotations the way the lag does; a position that cannot be placed (no source reading, a
/// purged file, another base name) is not counted until it can be.
fn count_applied(
    track: &mut Track,
    task: &TaskState,
    lag: Option<&TaskLag>,
    source: Option<(&str, &Arc<SourceSnapshot>)>,
) {
    let (Some((name, snapshot)), Some(bytes)) = (source, lag.and_then(|l| l.bytes)) else {
        return;
    };
    if snapshot.reading.is_none() && snapshot.wal.is_none() {
        return;
    }
    let offset = i128::from(snapshot.written_total) - i128::from(bytes);
    let source = {
        use std::hash::{Hash as _, Hasher as _};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut hasher);
        hasher.finish()
    };
    let total = track.applied_total.get_or_insert(0);
    match &track.position {
        Some((counted_source, counted)) if *counted_source == source => {
            if offset > *counted {
                *total += u64::try_from(offset - counted).unwrap_or(u64::MAX);
            } else if offset < *counted && !track.moved_back_logged {
                track.moved_back_logged = true;
                tracing::info!(
                    task_id = %task.spec.id,
                    bytes_back = u64::try_from(counted - offset).unwrap_or(u64::MAX),
                    "the task's binlog position moved back (restarted from an earlier point); \
                     udts_task_source_applied_bytes_total keeps counting from the new position"
                );
            }
        }
        // First sight, or another source: start counting from here.
        _ => {}
    }
    track.position = Some((source, offset));
}

/// The lag the verdict is judged by, or why there is none: a task mapped to a source by its
/// source, a Redis or MongoDB task by the delay its status reports, any other by UDTS's
/// monitoring.
fn lag_duration(task: &TaskState, lag: Lag<'_>, udts: Option<&Udts>) -> Judged {
    let seconds = |s: f64| Duration::from_secs_f64(s.max(0.0));
    let judged = |basis, lag| Judged {
        basis,
        lag,
        remaining: None,
        sample_age: None,
    };
    if let Some(MappedLag { source, lag }) = lag {
        let lag = match lag {
            Err(problem) => Err(problem.explanation().to_string()),
            Ok(lag) if !lag.retained => Err(format!(
                "its position is gone from {source} (binlog file purged, or replication slot \
                 invalidated): the task can only be redone"
            )),
            Ok(lag) => lag.seconds.map(seconds).ok_or_else(|| {
                format!(
                    "lag in seconds unknown until {source} writes past the task's position while \
                     watched"
                )
            }),
        };
        return judged(Some(CutoverBasis::Source), lag);
    }
    let data = task.data.as_ref();
    let progress = data.and_then(|d| d.progress.as_ref());
    if let Some(delay) = progress.and_then(|p| p.redis_delay_time.or(p.mongo_delay_time)) {
        return judged(Some(CutoverBasis::Status), Ok(seconds(delay)));
    }
    if let Some(udts) = udts {
        if let (Some((_, delay)), Some(age)) = (
            udts.samples.get(MonitorMetric::SyncDelay),
            udts.age(MonitorMetric::SyncDelay),
        ) {
            // The data remaining counts where UDTS reports it (MySQL, Redis) and is current.
            let remaining = udts
                .current(MonitorMetric::RemainingBytes)
                .map(|bytes| bytes.round() as u64);
            return Judged {
                basis: Some(CutoverBasis::Monitor),
                lag: Ok(seconds(delay)),
                remaining,
                sample_age: Some((age, udts.allowed_age)),
            };
        }
    }
    if data.is_some_and(|d| d.sync.is_some()) {
        return judged(
            None,
            Err(
                "no [[sources]] entry maps this task and UDTS's monitoring has no sample of its \
                 delay, so its lag is unknown"
                    .into(),
            ),
        );
    }
    judged(None, Err("the task reports no lag".into()))
}

/// The catch-up ETA of a task `lag_bytes` behind its source that applies faster than the
/// source writes, else the full-load ETA of a loading task; absent otherwise (never infinite
/// or negative).
fn eta(task: &TaskState, lag_bytes: Option<u64>, rates: &Throughput, unix_now: f64) -> Option<Eta> {
    let at = |seconds: f64, basis, udts_estimate_seconds| {
        (seconds.is_finite() && seconds >= 0.0).then(|| Eta {
            seconds: seconds.round() as u64,
            at: unix_now + seconds.round(),
            basis,
            udts_estimate_seconds,
        })
    };
    if let (Some(bytes), Some(apply), Some(write)) = (
        lag_bytes.filter(|b| *b > 0),
        rates.applied_bytes_per_second,
        rates.source_written_bytes_per_second,
    ) {
        let closing = apply - write;
        return (closing > 0.0)
            .then(|| at(bytes as f64 / closing, EtaBasis::CatchUp, None))
            .flatten();
    }
    let progress = task.data.as_ref()?.progress.as_ref()?;
    let left = progress.total_count? - progress.cur_count?;
    let rate = rates.rows_per_second.filter(|r| *r > 0.0)?;
    if left <= 0.0 {
        return None;
    }
    let udts = match (progress.total_duration, progress.cur_duration) {
        (Some(total), Some(elapsed)) if total > elapsed && elapsed >= 0.0 => {
            Some((total - elapsed).round() as u64)
        }
        _ => None,
    };
    at(left / rate, EtaBasis::FullLoad, udts)
}

#[cfg(test)]
mod tests;
