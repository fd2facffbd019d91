//! The background scheduler: polls every task once per interval with bounded concurrency,
//! spreading the requests over the interval instead of bursting, and records each answer in the
//! [`Store`]. Scrapes never wait on it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::api::{ApiError, Client};
use crate::exposition::Publisher;
use crate::metrics::ExporterMetrics;
use crate::state::{Store, TaskState};
use crate::task::{TaskSource, TaskSpec};

/// How long in-flight requests may finish after shutdown is asked for, before they are dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// What the poller needs.
pub struct Poller {
    /// The signed API client.
    pub client: Arc<Client>,
    /// Where results go.
    pub store: Arc<Store>,
    /// Re-rendered once the first cycle is done, before `ready` flips.
    pub publisher: Arc<Publisher>,
    /// The exporter's own metrics.
    pub metrics: ExporterMetrics,
    /// Time between the starts of two cycles.
    pub interval: Duration,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Per-request timeout; the spread of a cycle leaves room for the last request.
    pub timeout: Duration,
    /// Set once the first cycle has completed and been rendered (`/readyz`).
    pub ready: Arc<AtomicBool>,
}

impl Poller {
    /// Polls until `shutdown`. The first cycle runs at once and unspread, so the exporter has
    /// data within a request or two; later cycles spread their requests over the interval.
    pub async fn run(self, shutdown: CancellationToken) {
        self.metrics.poll_interval.set(self.interval.as_secs_f64());
        let semaphore = Arc::new(Semaphore::new(self.concurrency));
        let mut first = true;
        while !shutdown.is_cancelled() {
            let started = Instant::now();
            let tasks = self.store.specs();
            for source in [TaskSource::Static, TaskSource::Discovered] {
                self.metrics
                    .tasks
                    .with_label_values(&[source.as_str()])
                    .set(self.store.count_by_source(source) as i64);
            }
            let spread = if first {
                Duration::ZERO
            } else {
                self.interval
                    .saturating_sub(self.timeout)
                    .min(self.interval * 9 / 10)
            };
            let completed = self.cycle(tasks, spread, &semaphore, &shutdown).await;
            if !completed {
                break;
            }
            let took = started.elapsed();
            self.metrics.poll_cycle_duration.set(took.as_secs_f64());
            if first {
                self.publisher.render_in_background().await;
                self.ready.store(true, Ordering::Release);
                info!(
                    took_ms = took.as_millis() as u64,
                    "first poll cycle complete"
                );
                first = false;
            }
            let next = started + self.interval;
            if took > self.interval {
                warn!(
                    took_s = took.as_secs_f64(),
                    interval_s = self.interval.as_secs_f64(),
                    "poll cycle took longer than the interval; the next one starts now"
                );
            }
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                () = shutdown.cancelled() => break,
            }
        }
    }

    /// One pass over `tasks`; returns false if it was cut short by shutdown.
    async fn cycle(
        &self,
        tasks: Vec<TaskSpec>,
        spread: Duration,
        semaphore: &Arc<Semaphore>,
        shutdown: &CancellationToken,
    ) -> bool {
        let started = Instant::now();
        let count = tasks.len().max(1) as u32;
        let mut in_flight = JoinSet::new();
        for (i, task) in tasks.into_iter().enumerate() {
            let slot = started + spread * i as u32 / count;
            let permit = tokio::select! {
                permit = async {
                    tokio::time::sleep_until(slot).await;
                    Arc::clone(semaphore).acquire_owned().await
                } => permit,
                () = shutdown.cancelled() => return self.drain(in_flight).await,
            };
            let Ok(permit) = permit else {
                return false;
            };
            let client = Arc::clone(&self.client);
            let store = Arc::clone(&self.store);
            in_flight.spawn(async move {
                let result = client.task_status(&task).await;
                record(&store, &task, result);
                drop(permit);
            });
            // Reap finished polls as we go so the set stays small at any task count.
            while in_flight.try_join_next().is_some() {}
        }
        tokio::select! {
            () = async { while in_flight.join_next().await.is_some() {} } => true,
            () = shutdown.cancelled() => self.drain(in_flight).await,
        }
    }

    /// Lets in-flight polls finish for a moment after shutdown, then drops them.
    async fn drain(&self, mut in_flight: JoinSet<()>) -> bool {
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while in_flight.join_next().await.is_some() {}
        })
        .await;
        in_flight.abort_all();
        false
    }
}

/// Records one poll and logs what changed: a new error (once, not every poll), a recovery, or
/// a new status.
pub fn record(store: &Store, task: &TaskSpec, result: Result<crate::api::StatusData, ApiError>) {
    let Some((before, after)) = store.record(&task.id, result, unix_now()) else {
        return;
    };
    log_change(&before, &after);
}

fn log_change(before: &TaskState, after: &TaskState) {
    let task_id = after.spec.id.as_str();
    match (&before.last_error, &after.last_error) {
        (old, Some(error)) if old.as_ref().map(ApiError::dedup_key) != Some(error.dedup_key()) => {
            let (request_uuid, message) = match error {
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
                task_type = %after.spec.kind,
                reason = error.reason(),
                ret_code = error.ret_code(),
                message,
                request_uuid,
                error = %error,
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

/// Seconds since the Unix epoch, as Prometheus timestamps are written.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}
