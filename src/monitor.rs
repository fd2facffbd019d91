//! UDTS's own monitoring numbers, read beside the status poll: every `monitor.interval`, one
//! `QueryMetricDataSummary` per 100 active tasks of a project and product, their latest samples
//! kept per task in a [`MonitorBoard`] that the renderer reads. A task whose status is final
//! (Done, Success, Stopped, unrecoverable) is not asked again until its status changes.
//!
//! Monitoring never touches the status poll: its failures mark `udts_monitor_up` 0 for the
//! account and leave every other series alone. A key without the permission (RetCode 299) or a
//! gateway without the action (161) is asked again only every tenth interval, and said once in
//! the log with the fix.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::api::monitor::{product_key, MonitorMetric, SummaryPage};
use crate::api::ApiError;
use crate::runtime::Runtime;
use crate::state::{Store, TaskState};
use crate::status::is_finished;
use crate::task::{TaskKey, TaskMap};
use crate::time::unix_now;

/// Resources asked for in one call: 2,000 active tasks cost 20 calls an interval.
pub const RESOURCES_PER_CALL: usize = 100;

/// How long after its minute UDTS's monitoring publishes a sample ("about a minute late").
pub const PUBLICATION_DELAY: Duration = Duration::from_secs(60);

/// Monitoring intervals a sample is shown for (the page, the JSON, the `udts_monitor_*`
/// families): long enough to ride out a failed round or two.
const SHOWN_FOR_INTERVALS: u32 = 5;

/// Monitoring intervals past [`PUBLICATION_DELAY`] a sample is judged by in the cut-over
/// verdict: a readiness call needs a sample of the last round or the one before.
const JUDGED_FOR_INTERVALS: u32 = 2;

/// Rounds to skip after the gateway said monitoring is not available to this key.
const UNAVAILABLE_BACKOFF: u32 = 10;

/// One task's newest sample of each metric: (unix seconds, value in the base unit).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TaskMonitor {
    samples: [Option<(f64, f64)>; MonitorMetric::ALL.len()],
}

impl TaskMonitor {
    /// The newest sample of `metric`, if any.
    pub fn get(&self, metric: MonitorMetric) -> Option<(f64, f64)> {
        self.samples[index(metric)]
    }

    /// Keeps `sample` unless a newer one of the same metric is kept already.
    pub fn record(&mut self, metric: MonitorMetric, at: f64, value: f64) -> bool {
        let slot = &mut self.samples[index(metric)];
        if slot.is_some_and(|(kept, _)| kept >= at) {
            return false;
        }
        *slot = Some((at, metric.to_base_unit(value)));
        true
    }

    /// The time of the newest sample of any metric.
    pub fn newest(&self) -> Option<f64> {
        self.samples
            .iter()
            .flatten()
            .map(|(at, _)| *at)
            .reduce(f64::max)
    }
}

fn index(metric: MonitorMetric) -> usize {
    MonitorMetric::ALL
        .iter()
        .position(|m| *m == metric)
        .unwrap_or_default()
}

/// What monitoring knows: each task's samples and each account's last round.
#[derive(Debug, Default)]
pub struct MonitorBoard {
    state: Mutex<BoardState>,
    /// Notified after every round, so the renderer shows it at once.
    pub changed: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct BoardState {
    /// Shared with the renders' snapshots; a round copies it only while one holds it.
    tasks: Arc<TaskMap<TaskMonitor>>,
    /// Whether the account's last round of reads succeeded, by account label.
    up: BTreeMap<Option<String>, bool>,
    /// `monitor.interval` in force; `None` while monitoring is off.
    interval: Option<Duration>,
    /// Samples left out, by reason.
    dropped: BTreeMap<&'static str, u64>,
}

/// A copy of the board for one render, and the one place that decides whether a sample is
/// current: [`MonitorSnapshot::shown_for`] for showing it, [`MonitorSnapshot::judged_for`] for
/// the cut-over verdict to judge by it.
#[derive(Debug, Clone, Default)]
pub struct MonitorSnapshot {
    pub tasks: Arc<TaskMap<TaskMonitor>>,
    pub up: BTreeMap<Option<String>, bool>,
    pub interval: Option<Duration>,
    pub dropped: BTreeMap<&'static str, u64>,
}

impl MonitorSnapshot {
    /// How old a sample may be to be shown: five monitoring intervals; `None` while
    /// monitoring is off.
    pub fn shown_for(&self) -> Option<Duration> {
        Some(self.interval? * SHOWN_FOR_INTERVALS)
    }

    /// How old a sample may be for the cut-over verdict to judge by it: two intervals past
    /// the publication delay, stricter than [`Self::shown_for`]; `None` while monitoring is off.
    pub fn judged_for(&self) -> Option<Duration> {
        Some(self.interval? * JUDGED_FOR_INTERVALS + PUBLICATION_DELAY)
    }

    /// Whether a sample taken at `at` may be judged by at `now`.
    pub fn judgeable(&self, at: f64, now: f64) -> bool {
        self.judged_for()
            .is_some_and(|bound| now - at <= bound.as_secs_f64())
    }

    /// The task's samples that may be shown at `now` (each newer than [`Self::shown_for`]).
    pub fn current(&self, account: &Option<String>, id: &str, now: f64) -> Option<TaskMonitor> {
        let oldest = now - self.shown_for()?.as_secs_f64();
        let mut monitor = *self.tasks.get(account, id)?;
        for slot in &mut monitor.samples {
            if slot.is_some_and(|(at, _)| at < oldest) {
                *slot = None;
            }
        }
        monitor.newest().map(|_| monitor)
    }
}

impl MonitorBoard {
    fn lock(&self) -> MutexGuard<'_, BoardState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What the renderer writes from.
    pub fn snapshot(&self) -> MonitorSnapshot {
        let state = self.lock();
        MonitorSnapshot {
            tasks: Arc::clone(&state.tasks),
            up: state.up.clone(),
            interval: state.interval,
            dropped: state.dropped.clone(),
        }
    }

    /// Sets `monitor.interval` as a round does (`None`: monitoring off).
    pub fn set_interval(&self, interval: Option<Duration>) {
        self.lock().interval = interval;
    }

    /// Keeps one sample of `key` as a round would; false when a newer one is kept. For the
    /// benchmarks and tests that fill the board without a gateway.
    pub fn keep(&self, key: TaskKey, metric: MonitorMetric, at: f64, value: f64) -> bool {
        let mut state = self.lock();
        Arc::make_mut(&mut state.tasks)
            .entry(key)
            .record(metric, at, value)
    }

    fn drop_samples(&self, reason: &'static str, count: usize) {
        if count > 0 {
            *self.lock().dropped.entry(reason).or_default() += count as u64;
        }
    }
}

/// Whether monitoring has anything to say of a task in `state`: its status is known and not
/// final (a final task's numbers no longer move).
fn active(state: &TaskState) -> bool {
    state
        .data
        .as_ref()
        .and_then(|d| d.status.as_deref())
        .is_some_and(|status| !is_finished(status))
}

/// Reads monitoring every `monitor.interval` until `shutdown`; off while `[monitor]` is.
pub async fn run(
    board: Arc<MonitorBoard>,
    store: Arc<Store>,
    runtime: Arc<ArcSwap<Runtime>>,
    shutdown: CancellationToken,
) {
    let mut outcomes = Outcomes::default();
    // Tasks asked for since they became active, and when the next full round is due.
    let mut asked: TaskMap<()> = TaskMap::default();
    let mut next_full = Instant::now();
    // The store's count of status changes at the last round: a catch-up with nothing new
    // since neither copies the store nor looks at a task.
    let mut seen_changes = None;
    loop {
        let current = runtime.load_full();
        let Some(settings) = current.settings.monitor.clone() else {
            {
                let mut state = board.lock();
                state.interval = None;
                state.tasks = Arc::default();
                state.up.clear();
            }
            asked = TaskMap::default();
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(5)) => continue,
                () = shutdown.cancelled() => return,
            }
        };
        board.lock().interval = Some(settings.interval);
        // Every interval all active tasks together (a call per 100); in between, once a
        // second, only tasks that became active since and were never asked (at start, as the
        // first poll tells which are active), so a new task is read within a second and then
        // joins the full rounds.
        let full = Instant::now() >= next_full;
        let changes = store.status_changes();
        if full || seen_changes != Some(changes) {
            if full {
                next_full = Instant::now() + settings.interval;
            }
            let round = round(
                &board,
                &store,
                &current,
                settings.region.as_deref(),
                &mut outcomes,
                (!full).then_some(&asked),
            );
            let newly_asked = tokio::select! {
                (newly_asked, _) = round => newly_asked,
                () = shutdown.cancelled() => return,
            };
            if full {
                asked = newly_asked.into_iter().map(|key| (key, ())).collect();
            } else {
                for key in newly_asked {
                    *asked.entry(key) = ();
                }
            }
            seen_changes = Some(changes);
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// What one call can ask for together: (account, project, product).
type Group = (Option<String>, Option<String>, &'static str);

/// Each account's last answer in a round: `None` when every call succeeded.
type AccountOutcomes = BTreeMap<Option<String>, Option<ApiError>>;

/// One round: the active tasks of each account (those not in `skip`, when given), by project
/// and product, a call per 100. Returns the tasks asked for, and how each account fared.
async fn round(
    board: &MonitorBoard,
    store: &Store,
    runtime: &Runtime,
    region: Option<&str>,
    outcomes: &mut Outcomes,
    skip: Option<&TaskMap<()>>,
) -> (Vec<TaskKey>, AccountOutcomes) {
    let tasks = store.snapshot();
    let mut asked = Vec::new();
    let mut groups: BTreeMap<Group, Vec<&str>> = BTreeMap::new();
    for task in tasks.iter().filter(|t| active(t)) {
        let spec = &task.spec;
        if skip.is_some_and(|skip| skip.of(spec).is_some()) {
            continue;
        }
        asked.push(spec.key());
        groups
            .entry((
                spec.account.clone(),
                spec.project_id.clone(),
                product_key(spec.kind),
            ))
            .or_default()
            .push(spec.id.as_str());
    }
    if groups.is_empty() {
        return (asked, AccountOutcomes::new());
    }
    tracing::debug!(
        tasks = asked.len(),
        groups = groups.len(),
        "monitoring round"
    );
    let mut outcome = AccountOutcomes::new();
    let mut pages: Vec<(Option<String>, SummaryPage)> = Vec::new();
    for ((account, project, product), ids) in &groups {
        // A paused account sits out full rounds (counted) and every catch-up.
        let paused = match skip {
            None => outcomes.pausing(account),
            Some(_) => outcomes.paused(account),
        };
        if paused {
            continue;
        }
        let Some(client) = runtime.client(account) else {
            continue;
        };
        for chunk in ids.chunks(RESOURCES_PER_CALL) {
            match client
                .metric_summary(product, region, project.as_deref(), chunk)
                .await
            {
                Ok(page) => {
                    outcome.entry(account.clone()).or_insert(None);
                    pages.push((account.clone(), page));
                }
                Err(error) => {
                    outcome.insert(account.clone(), Some(error));
                    break;
                }
            }
        }
    }
    // The store's tasks, once: what the pages may speak of, and what the board keeps.
    let present: TaskMap<()> = tasks.iter().map(|t| (t.spec.key(), ())).collect();
    record(board, &present, pages);
    let mut state = board.lock();
    for (account, error) in &outcome {
        state.up.insert(account.clone(), error.is_none());
        outcomes.note(account, error.as_ref());
    }
    // Accounts no longer configured, and tasks gone from the store, leave the board.
    state
        .up
        .retain(|account, _| runtime.client(account).is_some());
    Arc::make_mut(&mut state.tasks).retain(|account, id| present.get(account, id).is_some());
    drop(state);
    board.changed.notify_one();
    (asked, outcome)
}

/// What one round of monitoring found for an account, for `check`.
#[derive(Debug)]
pub struct AccountCheck {
    /// The account label.
    pub account: Option<String>,
    /// Its tasks whose status is not final.
    pub active: usize,
    /// How many of them have a current sample.
    pub sampled: usize,
    /// Why the round failed, with the fix; `None` when it was read.
    pub problem: Option<String>,
}

/// Reads one round of monitoring for the tasks in `store` (as polled), for `check`: what it
/// found per account, and the board as a render would take it.
pub async fn check_once(store: &Store, runtime: &Runtime) -> (Vec<AccountCheck>, MonitorSnapshot) {
    let Some(settings) = runtime.settings.monitor.as_ref() else {
        return (Vec::new(), MonitorSnapshot::default());
    };
    let board = MonitorBoard::default();
    board.lock().interval = Some(settings.interval);
    let (asked, outcome) = round(
        &board,
        store,
        runtime,
        settings.region.as_deref(),
        &mut Outcomes::default(),
        None,
    )
    .await;
    let snapshot = board.snapshot();
    let now = unix_now();
    let mut checks: BTreeMap<Option<String>, AccountCheck> = BTreeMap::new();
    for key in &asked {
        let check = checks
            .entry(key.account.clone())
            .or_insert_with(|| AccountCheck {
                account: key.account.clone(),
                active: 0,
                sampled: 0,
                problem: None,
            });
        check.active += 1;
        if snapshot.current(&key.account, &key.id, now).is_some() {
            check.sampled += 1;
        }
    }
    for (account, error) in outcome {
        if let (Some(check), Some(error)) = (checks.get_mut(&account), error) {
            check.problem = Some(advice(&error));
        }
    }
    (checks.into_values().collect(), snapshot)
}

/// A monitoring failure in words, with what to do about it.
pub fn advice(error: &ApiError) -> String {
    match error {
        ApiError::RetCode { code: 299, .. } => format!(
            "{error}: the key may not read UCloud monitoring; grant it read access to \
             CloudWatch (QueryMetricDataSummary), or set monitor.enabled = false"
        ),
        ApiError::RetCode { code: 161, .. } => format!(
            "{error}: this gateway does not offer UCloud monitoring; point api.endpoint at \
             one that does, or set monitor.enabled = false"
        ),
        ApiError::RetCode { message, .. } if message.contains("Region") => {
            format!("{error}: the gateway wants a region; set monitor.region (e.g. \"cn-bj2\")")
        }
        _ => match error.hint() {
            Some(hint) => format!("{error} ({}: {hint})", error.reason()),
            None => format!("{error} ({})", error.reason()),
        },
    }
}

/// Keeps what the pages said of tasks the store holds; counts the rest.
fn record(board: &MonitorBoard, known: &TaskMap<()>, pages: Vec<(Option<String>, SummaryPage)>) {
    let now = unix_now();
    let (mut unknown, mut stale_or_invalid) = (0, 0);
    {
        let mut state = board.lock();
        for (account, page) in pages {
            stale_or_invalid += page.rejected;
            for (id, samples) in page.resources {
                let key = TaskKey {
                    account: account.clone(),
                    id,
                };
                if known.get(&key.account, &key.id).is_none() {
                    unknown += 1;
                    continue;
                }
                let monitor = Arc::make_mut(&mut state.tasks).entry(key);
                for sample in samples {
                    // A sample from the future is a clock problem, not a measurement.
                    if sample.at > now + 120.0
                        || !monitor.record(sample.metric, sample.at, sample.value)
                    {
                        stale_or_invalid += 1;
                    }
                }
            }
        }
    }
    board.drop_samples("unknown_resource", unknown);
    board.drop_samples("invalid_or_old", stale_or_invalid);
}

/// Each account's last monitoring failure, so a change is logged once, and the rounds it
/// still sits out after an answer that said monitoring is not available to its key.
#[derive(Debug, Default)]
struct Outcomes {
    failing: HashMap<Option<String>, String>,
    paused: HashMap<Option<String>, u32>,
}

impl Outcomes {
    /// Whether `account` is paused, without counting a round.
    fn paused(&self, account: &Option<String>) -> bool {
        self.paused.get(account).is_some_and(|left| *left > 0)
    }

    /// Whether `account` sits this round out (and counts it).
    fn pausing(&mut self, account: &Option<String>) -> bool {
        match self.paused.get_mut(account) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }

    /// Logs a change of `account`'s outcome once, with the fix; a permission (299) or missing
    /// action (161) answer pauses it for [`UNAVAILABLE_BACKOFF`] rounds.
    fn note(&mut self, account: &Option<String>, error: Option<&ApiError>) {
        let name = account.as_deref().unwrap_or("default");
        let Some(error) = error else {
            self.paused.remove(account);
            if self.failing.remove(account).is_some() {
                info!(account = name, "UDTS monitoring is readable again");
            }
            return;
        };
        let not_available = matches!(
            error,
            ApiError::RetCode {
                code: 161 | 299,
                ..
            }
        );
        if not_available {
            self.paused.insert(account.clone(), UNAVAILABLE_BACKOFF - 1);
        }
        let said = error.to_string();
        if self.failing.get(account) == Some(&said) {
            return;
        }
        if not_available {
            warn!(
                account = name,
                error = %said,
                "monitoring is not available with this key/gateway; grant the key read access \
                 to UCloud monitoring (QueryMetricDataSummary) or set monitor.enabled = false; \
                 asked again every {UNAVAILABLE_BACKOFF} intervals"
            );
        } else {
            warn!(
                account = name,
                error = %said,
                hint = error.hint(),
                "reading UDTS monitoring failed; status polling goes on"
            );
        }
        self.failing.insert(account.clone(), said);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_sample_never_replaces_a_newer_one_and_old_ones_expire() {
        let mut monitor = TaskMonitor::default();
        assert!(monitor.record(MonitorMetric::SyncDelay, 1000.0, 5.0));
        assert!(!monitor.record(MonitorMetric::SyncDelay, 940.0, 50.0));
        assert!(!monitor.record(MonitorMetric::SyncDelay, 1000.0, 50.0));
        assert_eq!(monitor.get(MonitorMetric::SyncDelay), Some((1000.0, 5.0)));
        assert!(monitor.record(MonitorMetric::SourceLatency, 1060.0, 250.0));
        assert_eq!(
            monitor.get(MonitorMetric::SourceLatency),
            Some((1060.0, 0.25))
        );
        let key = TaskKey {
            account: None,
            id: "udts-a".into(),
        };
        let snapshot = MonitorSnapshot {
            tasks: Arc::new([(key.clone(), monitor)].into_iter().collect()),
            interval: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        // Within five intervals of the newest: both; later, only what is younger than that.
        let both = snapshot.current(&key.account, &key.id, 1200.0).unwrap();
        assert_eq!(both.get(MonitorMetric::SyncDelay), Some((1000.0, 5.0)));
        let one = snapshot.current(&key.account, &key.id, 1330.0).unwrap();
        assert_eq!(one.get(MonitorMetric::SyncDelay), None);
        assert!(one.get(MonitorMetric::SourceLatency).is_some());
        assert!(snapshot.current(&key.account, &key.id, 1400.0).is_none());
        let off = MonitorSnapshot {
            interval: None,
            ..snapshot
        };
        assert!(off.current(&key.account, &key.id, 1200.0).is_none());
    }
}
