//! The background scheduler: refreshes every task once per interval and records each answer in
//! the [`Store`]. Scrapes never wait on it.
//!
//! With list-first polling (discovery on, `poll.strategy = "auto"`) a cycle starts by listing
//! every source; tasks whose list entry tells enough ([`cadence`]) are refreshed from it, and
//! only the rest get a `GetUDTSTaskStatus` call. Those calls run with bounded concurrency,
//! spread over the interval instead of bursting. After the first picture is published, later
//! cycles ask `GetUDTSTaskHistory` when unfinished tasks entered their status, a bounded share
//! of each cycle's calls.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::api::model::entered_current_status;
use crate::api::{ApiError, Client, StatusData};
use crate::cadence::{status_call_reason, Cycle};
use crate::discovery::{Inventory, ListedStates};
use crate::metrics::ExporterMetrics;
use crate::runtime::Runtime;
use crate::state::{Store, TaskState};
use crate::status;
use crate::task::TaskSpec;
use crate::time::unix_now;

/// How long in-flight requests may finish after shutdown is asked for, before they are dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// What the poller needs.
pub struct Poller {
    /// Settings and clients; swapped whole on reload and read at the start of each cycle.
    pub runtime: Arc<ArcSwap<Runtime>>,
    /// Where results go, and which tasks to poll.
    pub store: Arc<Store>,
    /// Lists the tasks at the start of a list-first cycle.
    pub inventory: Arc<Inventory>,
    /// The exporter's own metrics.
    pub metrics: ExporterMetrics,
    /// Told once the first cycle has completed, so that whoever serves the results can publish
    /// them and declare readiness.
    pub first_cycle_done: Option<oneshot::Sender<()>>,
    /// History calls made per task, so one whose history never says is not asked forever.
    pub history_attempts: std::sync::Mutex<std::collections::HashMap<crate::task::TaskKey, u8>>,
}

impl Poller {
    /// Polls until `shutdown`. The first cycle runs at once and unspread, so the exporter has
    /// data within a request or two; later cycles spread their requests over the interval.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut first = true;
        let mut overrunning = false;
        while !shutdown.is_cancelled() {
            let started = Instant::now();
            let runtime = self.runtime.load_full();
            let settings = &runtime.settings;
            let interval = settings.interval;
            self.metrics.poll_interval.set(interval.as_secs_f64());
            let calls_before = self.metrics.api_calls();
            let listed = if settings.list_first {
                tokio::select! {
                    listed = self.inventory.refresh(&runtime) => Some(listed),
                    () = shutdown.cancelled() => break,
                }
            } else {
                None
            };
            let mut tasks = self.store.specs();
            let task_count = tasks.len();
            if let Some(listed) = &listed {
                let cycle = if first {
                    Cycle::FirstPicture
                } else {
                    Cycle::Later
                };
                tasks = self.refresh_from_list(&runtime, tasks, listed, cycle);
            }
            let spread = if first {
                Duration::ZERO
            } else {
                interval
                    .saturating_sub(settings.timeout)
                    .min(interval * 9 / 10)
            };
            let Some(latency) = self.cycle(&runtime, tasks, spread, &shutdown).await else {
                break;
            };
            // When unfinished tasks entered their status comes after the first picture is
            // published, a bounded share of each later cycle's calls.
            if !first && !self.ask_history(&runtime, task_count, &shutdown).await {
                break;
            }
            let took = started.elapsed();
            self.metrics.poll_cycle_duration.set(took.as_secs_f64());
            self.metrics
                .api_calls_per_cycle
                .set(self.metrics.api_calls().saturating_sub(calls_before) as f64);
            if first {
                if let Some(done) = self.first_cycle_done.take() {
                    let _ = done.send(());
                }
                info!(
                    tasks = task_count,
                    took_ms = took.as_millis() as u64,
                    "first poll cycle complete"
                );
                first = false;
            }
            if took > interval {
                self.metrics.poll_cycle_overruns.inc();
                if !overrunning {
                    let concurrency = settings.concurrency;
                    let rounds = task_count.div_ceil(concurrency.max(1)) as f64;
                    // What the concurrency allows, or the rate cap if that is tighter.
                    let by_rate = settings
                        .requests_per_second
                        .map_or(0.0, |rate| task_count as f64 / rate);
                    let fits = (rounds * latency.as_secs_f64()).max(by_rate);
                    warn!(
                        tasks = task_count,
                        took_s = took.as_secs_f64(),
                        interval_s = interval.as_secs_f64(),
                        mean_latency_ms = latency.as_millis() as u64,
                        concurrency,
                        requests_per_second = settings.requests_per_second,
                        interval_that_fits_s = fits.ceil(),
                        "poll cycle took longer than the interval; cycles run back to back (raise \
                         poll.interval or api.concurrency, or shard the tasks)"
                    );
                }
                overrunning = true;
            } else if overrunning {
                info!(
                    took_s = took.as_secs_f64(),
                    "poll cycles fit their interval again"
                );
                overrunning = false;
            }
            if !self
                .wait_for_next_cycle(started + interval, &shutdown)
                .await
            {
                break;
            }
        }
    }

    /// Refreshes from this cycle's list every task whose entry tells enough; returns the tasks
    /// that need a status call (the rest of `tasks`, including those no answering list has).
    fn refresh_from_list(
        &self,
        runtime: &Runtime,
        tasks: Vec<Arc<TaskSpec>>,
        listed: &ListedStates,
        cycle: Cycle,
    ) -> Vec<Arc<TaskSpec>> {
        let now = unix_now();
        let full_refresh = runtime.settings.full_refresh_interval;
        let mut need_status = Vec::new();
        for task in tasks {
            let key = task.key();
            let (Some(entry), Some(state)) = (listed.get(&key), self.store.get(&key)) else {
                need_status.push(task);
                continue;
            };
            if let Some(reason) = status_call_reason(&state, entry, now, full_refresh, cycle) {
                debug!(task_id = %task.id, ?reason, "status call");
                need_status.push(task);
                continue;
            }
            if let Some((before, after)) = self
                .store
                .update(&key, |state| state.after_list(entry.clone(), now))
            {
                self.metrics.refreshes.with_label_values(&["list"]).inc();
                log_change(&before, &after);
            }
        }
        need_status
    }

    /// Sleeps until `next`, meanwhile polling tasks that were added (by discovery or a
    /// reload) at once rather than leaving them blank until the next cycle. Returns false on
    /// shutdown.
    async fn wait_for_next_cycle(&self, next: Instant, shutdown: &CancellationToken) -> bool {
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(next) => return true,
                () = self.store.added.notified() => {
                    let runtime = self.runtime.load_full();
                    let added = self.store.unpolled_specs();
                    if self.cycle(&runtime, added, Duration::ZERO, shutdown).await.is_none() {
                        return false;
                    }
                }
                () = shutdown.cancelled() => return false,
            }
        }
    }

    /// One pass over `tasks`; returns the mean request latency, or `None` if shutdown cut it
    /// short.
    async fn cycle(
        &self,
        runtime: &Arc<Runtime>,
        tasks: Vec<Arc<TaskSpec>>,
        spread: Duration,
        shutdown: &CancellationToken,
    ) -> Option<Duration> {
        let started = Instant::now();
        let semaphore = Arc::new(Semaphore::new(runtime.settings.concurrency));
        let count = tasks.len().max(1) as u32;
        let latency_total = Arc::new(AtomicU64::new(0));
        // Polls may retry transient failures until shortly before the next cycle is due.
        let deadline = started + runtime.settings.interval.mul_f64(0.9);
        let mut probed = HashSet::new();
        let mut in_flight = JoinSet::new();
        for (i, task) in tasks.into_iter().enumerate() {
            let Some(client) = runtime.client(&task.account) else {
                continue;
            };
            // While an account's keys are rejected (or not yet judged), one task per cycle
            // probes them first; the others wait rather than hammer the gateway with calls
            // bound to fail.
            let unproven = !client.credentials_judged() || client.credentials_error().is_some();
            let probe = unproven && probed.insert(task.account.clone());
            if let Some(rejected) = client.credentials_error() {
                if !probe {
                    record(&self.store, &task, Err(rejected));
                    continue;
                }
            }
            let slot = started + spread * i as u32 / count;
            let permit = tokio::select! {
                permit = async {
                    tokio::time::sleep_until(slot).await;
                    Arc::clone(&semaphore).acquire_owned().await
                } => permit,
                () = shutdown.cancelled() => return drain(in_flight).await,
            };
            let Ok(permit) = permit else {
                return None;
            };
            let store = Arc::clone(&self.store);
            let metrics = self.metrics.clone();
            let latency_total = Arc::clone(&latency_total);
            let timeout = runtime.settings.timeout;
            let poll = async move {
                let request_started = Instant::now();
                let result = poll_with_retries(&client, &task, deadline, timeout).await;
                let micros = request_started.elapsed().as_micros() as u64;
                latency_total.fetch_add(micros, Ordering::Relaxed);
                if result.is_ok() {
                    metrics.refreshes.with_label_values(&["status"]).inc();
                }
                record(&store, &task, result);
                drop(permit);
            };
            if probe {
                // The probe's answer decides whether the account's other tasks are polled.
                tokio::select! {
                    () = poll => {}
                    () = shutdown.cancelled() => return drain(in_flight).await,
                }
            } else {
                in_flight.spawn(poll);
            }
            // Reap finished polls as we go so the set stays small at any task count.
            while in_flight.try_join_next().is_some() {}
        }
        tokio::select! {
            () = async { while in_flight.join_next().await.is_some() {} } => {}
            () = shutdown.cancelled() => return drain(in_flight).await,
        }
        let mean = latency_total.load(Ordering::Relaxed) / u64::from(count);
        Some(Duration::from_micros(mean))
    }
}

/// Reads one task, retrying transient failures with exponential backoff and jitter (200 ms,
/// doubling, at most 3 retries) as long as another attempt can end before `deadline`.
async fn poll_with_retries(
    client: &Client,
    task: &TaskSpec,
    deadline: Instant,
    timeout: Duration,
) -> Result<StatusData, ApiError> {
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .with_max_times(3)
        .build();
    loop {
        let result = client.task_status(task).await;
        let error = match &result {
            Err(error) if error.is_transient() => error,
            _ => return result,
        };
        let Some(delay) = delays.next() else {
            return result;
        };
        if Instant::now() + delay + timeout > deadline {
            return result;
        }
        tracing::debug!(task_id = %task.id, reason = error.reason(), ?delay, "retrying");
        tokio::time::sleep(delay).await;
    }
}

/// Share of a cycle's tasks that may get a `GetUDTSTaskHistory` call in that cycle.
const HISTORY_SHARE: f64 = 0.1;
/// History calls for one task at most, when they fail or do not say.
const HISTORY_ATTEMPTS: u8 = 3;

/// Which tasks' history is asked first: unfinished ones, then `Stopped`, then any other.
fn history_rank(status: Option<&str>) -> u8 {
    match status {
        Some(status) if !status::is_finished(status) => 0,
        Some(crate::status::STOPPED) => 1,
        _ => 2,
    }
}

impl Poller {
    /// Up to `budget` tasks whose status-since is still unknown, counted as asked.
    fn history_due(&self, budget: usize, task_count: usize) -> Vec<Arc<TaskState>> {
        let mut attempts = self
            .history_attempts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if attempts.len() > 4 * task_count.max(1024) {
            attempts.clear();
        }
        let mut due: Vec<Arc<TaskState>> = self
            .store
            .snapshot()
            .into_iter()
            .filter(|state| {
                state.status_since.is_none()
                    && state.up == Some(true)
                    && state.status().is_some_and(status::since_matters)
                    && attempts.get(&state.spec.key()).copied().unwrap_or(0) < HISTORY_ATTEMPTS
            })
            .collect();
        // A task stuck in an unfinished phase first (alerts on how long it has been there wait
        // on it), then the paused ones, then the rest; in id order within each (a stable sort).
        due.sort_by_key(|state| history_rank(state.status()));
        due.truncate(budget);
        for state in &due {
            *attempts.entry(state.spec.key()).or_insert(0) += 1;
        }
        due
    }

    /// Asks `GetUDTSTaskHistory` when unfinished tasks seen for the first time entered their
    /// status, for at most a tenth of the `task_count` tasks (at least one) per cycle, at most
    /// `api.concurrency` at a time. Until it answers, the task has no status-since value (never
    /// a guess). Returns false on shutdown.
    async fn ask_history(
        &self,
        runtime: &Arc<Runtime>,
        task_count: usize,
        shutdown: &CancellationToken,
    ) -> bool {
        let budget = ((task_count as f64 * HISTORY_SHARE).ceil() as usize).max(1);
        let due = self.history_due(budget, task_count);
        let semaphore = Arc::new(Semaphore::new(runtime.settings.concurrency));
        let mut asking = JoinSet::new();
        for state in due {
            let Some(client) = runtime.client(&state.spec.account) else {
                continue;
            };
            let (store, semaphore) = (Arc::clone(&self.store), Arc::clone(&semaphore));
            asking.spawn(async move {
                let Ok(_permit) = semaphore.acquire_owned().await else {
                    return;
                };
                let Some(status) = state.status() else {
                    return;
                };
                let Ok(history) = client.task_history(&state.spec).await else {
                    return;
                };
                if let Some(since) = entered_current_status(&history, status) {
                    let status = status.to_string();
                    // Only if the task is still in the status the history was asked about.
                    store.update(&state.spec.key(), |current| {
                        if current.status() == Some(status.as_str()) {
                            current.with_status_since(since)
                        } else {
                            current.clone()
                        }
                    });
                }
            });
        }
        tokio::select! {
            () = async { while asking.join_next().await.is_some() {} } => true,
            () = shutdown.cancelled() => drain::<()>(asking).await.is_some(),
        }
    }
}

/// Lets in-flight polls finish for a moment after shutdown, then drops them.
async fn drain<T: 'static>(mut in_flight: JoinSet<()>) -> Option<T> {
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    in_flight.abort_all();
    None
}

/// Records one poll and logs what changed: a new error (once, not every poll), a recovery, or
/// a new status.
pub fn record(store: &Store, task: &TaskSpec, result: Result<StatusData, ApiError>) {
    let now = unix_now();
    let update = store.update(&task.key(), |state| state.after_poll(result, now));
    if let Some((before, after)) = update {
        log_change(&before, &after);
    }
}

fn log_change(before: &TaskState, after: &TaskState) {
    let task_id = after.spec.id.as_str();
    let account = after.spec.account.as_deref();
    match (&before.last_error, &after.last_error) {
        (old, Some(error)) if old.as_ref().map(ApiError::dedup_key) != Some(error.dedup_key()) => {
            // `gateway_message`, not `message`: JSON log lines already have a `message` (the
            // event), and a second one makes the line invalid for strict parsers.
            let (request_uuid, gateway_message) = match error {
                ApiError::RetCode {
                    request_uuid,
                    message,
                    ..
                } => (request_uuid.as_deref(), message.as_str()),
                ApiError::HttpStatus { request_uuid, .. }
                | ApiError::Decode { request_uuid, .. } => (request_uuid.as_deref(), ""),
                _ => (None, ""),
            };
            warn!(
                task_id,
                account,
                task_type = %after.spec.kind,
                reason = error.reason(),
                ret_code = error.ret_code(),
                gateway_message = (!gateway_message.is_empty()).then_some(gateway_message),
                request_uuid,
                error = %error,
                hint = error.hint(),
                "cannot read task status"
            );
        }
        (Some(_), None) => info!(task_id, "task status readable again"),
        _ => {}
    }
    match (before.status(), after.status()) {
        (None, Some(status)) => debug!(task_id, status, "first status read"),
        (Some(previous), Some(status)) if previous != status => {
            info!(task_id, status, previous, "task status changed");
        }
        _ => {}
    }
}
