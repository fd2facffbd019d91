//! What the exporter knows about each task, and the store the poller writes and the renderer
//! reads.
//!
//! Every task's state is an immutable `Arc<TaskState>`, replaced whole when a poll ends, so a
//! reader sees either the old or the new state of a task, never a mix. The store's lock is held
//! only to swap or clone those pointers, never across I/O or encoding.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::api::model::Progress;
use crate::api::{ApiError, StatusData};
use crate::status;
use crate::task::{TaskKey, TaskSpec};

/// One task's latest known state.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskState {
    /// What the task is.
    /// What the task is; shared by every state of the task (a poll copies a pointer, not
    /// the strings).
    pub spec: Arc<TaskSpec>,
    /// The last successful answer; kept through failed polls, so a flaky gateway does not blank
    /// the dashboards (`up` says whether it is current).
    pub data: Option<StatusData>,
    /// Whether the last poll succeeded; `None` until the first poll ends.
    pub up: Option<bool>,
    /// Unix time of the last successful poll.
    pub last_success: Option<f64>,
    /// Unix time the task entered its current status: when the exporter saw it change, or what
    /// the task's history says; unknown (`None`) for a status seen on first sight until then.
    pub status_since: Option<f64>,
    /// Unix time rows, percentage, binlog position or Redis offset last moved: the stall signal.
    pub last_progress: Option<f64>,
    /// Why the last poll failed, while it is failing.
    pub last_error: Option<ApiError>,
    /// Unix time of the last successful `GetUDTSTaskStatus` (a list refresh is not one).
    pub last_full_read: Option<f64>,
    /// Recent samples for the task page's sparkline: at most [`TREND_SAMPLES`], at least
    /// [`TREND_SPACING_SECONDS`] apart. Shared between states until a sample is added.
    pub trend: Arc<VecDeque<Sample>>,
}

/// Samples kept per task: an hour at one a minute.
pub const TREND_SAMPLES: usize = 60;
/// Least time between two kept samples.
pub const TREND_SPACING_SECONDS: f64 = 60.0;

/// One point of a task's recent trend (16 bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Unix time, seconds.
    pub at: u32,
    /// What `value` measures.
    pub kind: SampleKind,
    /// The value.
    pub value: f64,
}

/// What a trend sample measures: whatever shows the task moving in its phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleKind {
    /// Full-load completion, 0 to 1.
    Progress,
    /// Redis or MongoDB replication delay, seconds.
    DelaySeconds,
    /// Binlog position as file index x 2^32 + offset, so rotation keeps it growing.
    Binlog,
}

impl Sample {
    /// The sample `data` gives at `now`, if it carries anything that moves.
    fn of(data: &StatusData, now: f64) -> Option<Self> {
        let progress = data.progress.as_ref();
        let status = data.status.as_deref().unwrap_or("");
        let ratio = progress.and_then(|p| p.percentage).map(|p| p / 100.0);
        let delay = progress.and_then(|p| p.redis_delay_time.or(p.mongo_delay_time));
        let binlog = data.sync.as_ref().and_then(|sync| {
            Some(sync.binlog_file_index().unwrap_or(0.0) * 4_294_967_296.0 + sync.binlog_pos?)
        });
        let (kind, value) = match (ratio, delay, binlog) {
            (Some(ratio), _, _) if !crate::status::INCREMENTAL.contains(&status) => {
                (SampleKind::Progress, ratio)
            }
            (_, Some(delay), _) => (SampleKind::DelaySeconds, delay),
            (_, _, Some(binlog)) => (SampleKind::Binlog, binlog),
            (Some(ratio), _, _) => (SampleKind::Progress, ratio),
            _ => return None,
        };
        Some(Self {
            at: now as u32,
            kind,
            value,
        })
    }
}

impl TaskState {
    /// A task that has not been polled yet.
    pub fn new(spec: impl Into<Arc<TaskSpec>>) -> Self {
        Self {
            spec: spec.into(),
            data: None,
            up: None,
            last_success: None,
            status_since: None,
            last_progress: None,
            last_error: None,
            last_full_read: None,
            trend: Arc::default(),
        }
    }

    /// The state after a `GetUDTSTaskStatus` that ended with `result` at unix time `now`.
    pub fn after_poll(&self, result: Result<StatusData, ApiError>, now: f64) -> Self {
        match result {
            Ok(data) => Self {
                last_full_read: Some(now),
                ..self.after_read(data, now)
            },
            Err(error) => Self {
                up: Some(false),
                last_error: Some(error),
                ..self.clone()
            },
        }
    }

    /// The state after this cycle's `ListUDTSTask` told `listed` (status, retries, progress)
    /// at `now`. What only the status call reports (`Sync`, delays, the failure message) is
    /// kept from the last full read, so the task's series are the same either way; the task is
    /// fresh (`up`, `last_success`), as it was read in this cycle.
    pub fn after_list(&self, listed: StatusData, now: f64) -> Self {
        let old = self.data.clone().unwrap_or_default();
        let progress = match (listed.progress, old.progress) {
            (Some(new), Some(old)) => Some(Progress {
                total_count: new.total_count.or(old.total_count),
                cur_count: new.cur_count.or(old.cur_count),
                total_duration: new.total_duration.or(old.total_duration),
                cur_duration: new.cur_duration.or(old.cur_duration),
                percentage: new.percentage.or(old.percentage),
                ..old
            }),
            (new, old) => new.or(old),
        };
        let data = StatusData {
            status: listed.status.or(old.status),
            cur_retry_count: listed.cur_retry_count.or(old.cur_retry_count),
            max_retry_count: listed.max_retry_count.or(old.max_retry_count),
            progress,
            failed_message: old.failed_message,
            sync: old.sync,
        };
        self.after_read(data, now)
    }

    /// The same state with the current status entered at `since` (from the task's history).
    pub fn with_status_since(&self, since: f64) -> Self {
        Self {
            status_since: Some(self.status_since.map_or(since, |seen| seen.min(since))),
            ..self.clone()
        }
    }

    fn after_read(&self, data: StatusData, now: f64) -> Self {
        let same_status = self
            .data
            .as_ref()
            .is_some_and(|old| old.status == data.status);
        let moved = self
            .data
            .as_ref()
            .is_none_or(|old| progress_marker(old) != progress_marker(&data));
        Self {
            spec: self.spec.clone(),
            // A change the exporter saw happened now; a status seen for the first time started
            // at an unknown time (the task's history tells, later) unless it is final and its
            // time does not matter.
            status_since: if same_status {
                self.status_since
            } else if self.data.is_some()
                || data
                    .status
                    .as_deref()
                    .is_some_and(|s| !status::since_matters(s))
            {
                Some(now)
            } else {
                None
            },
            last_progress: if moved { Some(now) } else { self.last_progress },
            up: Some(true),
            last_success: Some(now),
            last_error: None,
            last_full_read: self.last_full_read,
            trend: self.trend_with(&data, now),
            data: Some(data),
        }
    }

    /// The trend with `data`'s sample added, when the last one is old enough.
    fn trend_with(&self, data: &StatusData, now: f64) -> Arc<VecDeque<Sample>> {
        let Some(sample) = Sample::of(data, now) else {
            return Arc::clone(&self.trend);
        };
        if self
            .trend
            .back()
            .is_some_and(|last| now - f64::from(last.at) < TREND_SPACING_SECONDS)
        {
            return Arc::clone(&self.trend);
        }
        let mut trend = (*self.trend).clone();
        if trend.len() == TREND_SAMPLES {
            trend.pop_front();
        }
        trend.push_back(sample);
        Arc::new(trend)
    }

    /// The current status, if known.
    pub fn status(&self) -> Option<&str> {
        self.data.as_ref()?.status.as_deref()
    }
}

/// The values whose movement counts as progress.
fn progress_marker(data: &StatusData) -> [Option<u64>; 5] {
    let bits = |v: Option<f64>| v.map(f64::to_bits);
    let progress = data.progress.as_ref();
    let sync = data.sync.as_ref();
    [
        bits(progress.and_then(|p| p.cur_count)),
        bits(progress.and_then(|p| p.percentage)),
        bits(progress.and_then(|p| p.redis_offset_size)),
        bits(sync.and_then(|s| s.binlog_file_index())),
        bits(sync.and_then(|s| s.binlog_pos)),
    ]
}

/// The tasks being polled and their latest states, by task id.
#[derive(Default)]
pub struct Store {
    tasks: Mutex<BTreeMap<TaskKey, Arc<TaskState>>>,
    /// Woken on every change, so the renderer re-encodes only when there is something new.
    pub changed: Notify,
    /// Woken when tasks are added, so the poller reads them without waiting for the next cycle.
    pub added: Notify,
    /// Changes of the task set or of a task's status: a reader that only cares about those
    /// (monitoring's catch-up) skips a look at every task while it stays the same.
    status_changes: std::sync::atomic::AtomicU64,
}

impl Store {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<TaskKey, Arc<TaskState>>> {
        // A panic while holding this lock cannot leave a half-written map (we only insert or
        // remove whole entries), so a poisoned lock is still consistent.
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes `specs` the set of tasks. Tasks that stay keep their state; tasks that go lose it
    /// (and with it every series); new tasks start unpolled.
    pub fn set_tasks(&self, specs: Vec<Arc<TaskSpec>>) {
        let mut tasks = self.lock();
        let mut next = BTreeMap::new();
        let mut added = false;
        for spec in specs {
            added |= !tasks.contains_key(&spec.key());
            let state = match tasks.remove(&spec.key()) {
                Some(old) if old.spec == spec => old,
                Some(old) => Arc::new(TaskState {
                    spec,
                    ..(*old).clone()
                }),
                None => Arc::new(TaskState::new(spec)),
            };
            next.insert(state.spec.key(), state);
        }
        *tasks = next;
        self.status_changes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        drop(tasks);
        self.changed.notify_one();
        if added {
            self.added.notify_one();
        }
    }

    /// The tasks to poll, in account and task id order.
    pub fn specs(&self) -> Vec<Arc<TaskSpec>> {
        self.lock().values().map(|t| Arc::clone(&t.spec)).collect()
    }

    /// The current state of the task `key`.
    pub fn get(&self, key: &TaskKey) -> Option<Arc<TaskState>> {
        self.lock().get(key).cloned()
    }

    /// Tasks that have never been polled.
    pub fn unpolled_specs(&self) -> Vec<Arc<TaskSpec>> {
        self.lock()
            .values()
            .filter(|t| t.up.is_none())
            .map(|t| Arc::clone(&t.spec))
            .collect()
    }

    /// Replaces the state of the task `key` with `next(state)`; returns the states before and
    /// after, or `None` if the task is not (or no longer) in the store.
    pub fn update(
        &self,
        key: &TaskKey,
        next: impl FnOnce(&TaskState) -> TaskState,
    ) -> Option<(Arc<TaskState>, Arc<TaskState>)> {
        let mut tasks = self.lock();
        let entry = tasks.get_mut(key)?;
        let before = Arc::clone(entry);
        let after = Arc::new(next(&before));
        *entry = Arc::clone(&after);
        if before.status() != after.status() {
            self.status_changes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        drop(tasks);
        self.changed.notify_one();
        Some((before, after))
    }

    /// How many times the task set or a task's status changed: equal counts mean no task was
    /// added and no status moved in between.
    pub fn status_changes(&self) -> u64 {
        self.status_changes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every task's current state, in account and task id order: a consistent view to encode.
    pub fn snapshot(&self) -> Vec<Arc<TaskState>> {
        self.lock().values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model::{Progress, SyncData};

    fn spec(id: &str) -> TaskSpec {
        TaskSpec::new(id)
    }

    fn syncing_at(pos: f64) -> StatusData {
        StatusData {
            status: Some("Syncing".into()),
            sync: Some(SyncData {
                binlog_name: Some("mysql-bin.000001".into()),
                binlog_pos: Some(pos),
                binlog_gtid: None,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn status_since_moves_only_when_the_status_changes() {
        let state = TaskState::new(spec("a"))
            .after_poll(Ok(syncing_at(1.0)), 100.0)
            .after_poll(Ok(syncing_at(2.0)), 130.0);
        // Seen first at 100: when it entered Syncing is unknown until its history says.
        assert_eq!(state.status_since, None);
        let state = state.with_status_since(40.0);
        assert_eq!(state.status_since, Some(40.0));
        // A finished task seen for the first time counts from then (nothing more will tell).
        let mut done = syncing_at(2.0);
        done.status = Some("Done".into());
        let finished = TaskState::new(spec("b")).after_poll(Ok(done), 100.0);
        assert_eq!(finished.status_since, Some(100.0));
        let mut synced = syncing_at(2.0);
        synced.status = Some("Synced".into());
        let state = state.after_poll(Ok(synced), 160.0);
        assert_eq!(state.status_since, Some(160.0));
    }

    #[test]
    fn last_progress_stays_while_nothing_moves() {
        let state = TaskState::new(spec("a"))
            .after_poll(Ok(syncing_at(1.0)), 100.0)
            .after_poll(Ok(syncing_at(1.0)), 130.0);
        assert_eq!(state.last_progress, Some(100.0));
        let state = state.after_poll(Ok(syncing_at(5.0)), 160.0);
        assert_eq!(state.last_progress, Some(160.0));
        let rows = |n| StatusData {
            status: Some("Loading".into()),
            progress: Some(Progress {
                cur_count: Some(n),
                ..Default::default()
            }),
            ..Default::default()
        };
        let state = state
            .after_poll(Ok(rows(10.0)), 190.0)
            .after_poll(Ok(rows(10.0)), 220.0);
        assert_eq!(state.last_progress, Some(190.0));
    }

    #[test]
    fn a_failed_poll_keeps_the_last_known_values() {
        let ok = TaskState::new(spec("a")).after_poll(Ok(syncing_at(7.0)), 100.0);
        let failed = ok.after_poll(Err(ApiError::Timeout(String::new())), 130.0);
        assert_eq!(failed.up, Some(false));
        assert_eq!(failed.data, ok.data);
        assert_eq!(failed.last_success, Some(100.0));
        assert_eq!(failed.last_error, Some(ApiError::Timeout(String::new())));
        let recovered = failed.after_poll(Ok(syncing_at(7.0)), 160.0);
        assert_eq!(recovered.up, Some(true));
        assert_eq!(recovered.last_error, None);
    }

    #[test]
    fn set_tasks_keeps_state_of_tasks_that_stay_and_drops_the_rest() {
        let store = Store::new();
        store.set_tasks(vec![spec("a").into(), spec("b").into()]);
        store.update(&spec("a").key(), |s| {
            s.after_poll(Ok(syncing_at(1.0)), 100.0)
        });
        store.update(&spec("b").key(), |s| {
            s.after_poll(Ok(syncing_at(1.0)), 100.0)
        });
        store.set_tasks(vec![spec("a").into(), spec("c").into()]);
        let ids: Vec<_> = store.snapshot().iter().map(|t| t.spec.id.clone()).collect();
        assert_eq!(ids, ["a", "c"]);
        assert_eq!(store.snapshot()[0].up, Some(true));
        assert_eq!(store.snapshot()[1].up, None);
        assert!(store
            .update(&spec("b").key(), |s| s
                .after_poll(Ok(syncing_at(2.0)), 130.0))
            .is_none());
    }
}
