//! Discovery: lists every task of each account, kind and project with `ListUDTSTask`, keeps
//! the ones the filters allow, and merges them with the `[[tasks]]` of the configuration into
//! the set the poller reads ([`Inventory`]).
//!
//! A list call that fails keeps what that account, kind and project listed before: a gateway
//! hiccup must not make every discovered task (and its series) vanish.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::api::{ApiError, ListItem, StatusData};
use crate::config::{DiscoveryFilter, DiscoverySettings, LabelRule, Shard, FINISHED_STATUSES};
use crate::metrics::ExporterMetrics;
use crate::runtime::Runtime;
use crate::state::Store;
use crate::task::{TaskKey, TaskKind, TaskSource, TaskSpec};
use crate::time::unix_now;

/// One list: an account, a kind and a project.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListSource {
    /// Account label.
    pub account: Option<String>,
    /// transfer or integration.
    pub kind: TaskKind,
    /// `ProjectId`, or the default project.
    pub project_id: Option<String>,
}

impl std::fmt::Display for ListSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(account) = &self.account {
            write!(f, "account {account}, ")?;
        }
        write!(
            f,
            "{} tasks of project {}",
            self.kind,
            self.project_id.as_deref().unwrap_or("(default)")
        )
    }
}

/// A task as discovery found it.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveredTask {
    /// What to poll.
    pub spec: TaskSpec,
    /// What the list said of its state (status, retries, progress).
    pub listed: StatusData,
}

/// What this round's lists said of each task, for the sources that answered: what list-first
/// polling refreshes from.
pub type ListedStates = HashMap<TaskKey, StatusData>;

/// What one list returned: the tasks the filters kept, or why it failed.
pub type ListOutcome = Result<Vec<DiscoveredTask>, ApiError>;

/// Lists every source of `runtime` once.
pub async fn list_all(
    runtime: &Runtime,
    discovery: &DiscoverySettings,
) -> BTreeMap<ListSource, ListOutcome> {
    let now = unix_now();
    let mut outcomes = BTreeMap::new();
    for account in &runtime.settings.accounts {
        let Some(client) = runtime.client(&account.label) else {
            continue;
        };
        for kind in &discovery.kinds {
            for project in &account.discovery_projects {
                let source = ListSource {
                    account: account.label.clone(),
                    kind: *kind,
                    project_id: project.clone(),
                };
                let outcome = client
                    .list_all_tasks(
                        *kind,
                        project.as_deref(),
                        discovery.page_size,
                        runtime.settings.concurrency,
                    )
                    .await
                    .map(|items| {
                        items
                            .into_iter()
                            .filter(|item| keep(&discovery.filter, item, now))
                            .filter_map(|item| to_task(&source, item, &discovery.label_rules))
                            .collect()
                    });
                outcomes.insert(source, outcome);
            }
        }
    }
    outcomes
}

/// Whether the filters keep a listed task.
pub fn keep(filter: &DiscoveryFilter, item: &ListItem, now: f64) -> bool {
    let Some(id) = item.task_id.as_deref() else {
        return false;
    };
    let status = item.state.status.as_deref().unwrap_or("");
    if !filter.include_ids.is_empty() && !filter.include_ids.contains(id) {
        return false;
    }
    if filter.exclude_ids.contains(id) {
        return false;
    }
    if let Some(regex) = &filter.name_regex {
        if !regex.is_match(item.name.as_deref().unwrap_or("")) {
            return false;
        }
    }
    if !filter.statuses.is_empty() && !filter.statuses.contains(status) {
        return false;
    }
    if filter.exclude_statuses.contains(status) {
        return false;
    }
    if let (Some(max_age), Some(created)) = (filter.finished_max_age, item.create_time) {
        if FINISHED_STATUSES.contains(&status) && now - created > max_age.as_secs_f64() {
            return false;
        }
    }
    true
}

/// The labels of the first rule whose pattern matches `name`.
pub fn labels_for(rules: &[LabelRule], name: &str) -> Vec<(String, String)> {
    rules
        .iter()
        .find(|rule| rule.name_regex.is_match(name))
        .map(|rule| rule.labels.clone())
        .unwrap_or_default()
}

fn to_task(source: &ListSource, item: ListItem, rules: &[LabelRule]) -> Option<DiscoveredTask> {
    let listed = item.listed_state();
    let id = item.task_id?.trim().to_string();
    if id.is_empty() {
        return None;
    }
    Some(DiscoveredTask {
        spec: TaskSpec {
            labels: labels_for(rules, item.name.as_deref().unwrap_or("")),
            id,
            kind: source.kind,
            account: source.account.clone(),
            project_id: source.project_id.clone(),
            name: item.name.filter(|n| !n.is_empty()),
            mode: item.mode.filter(|m| !m.is_empty()),
            created: item.create_time,
            expires: item.expire_time.filter(|t| *t > 0.0),
            source: TaskSource::Discovered,
        },
        listed,
    })
}

/// Static tasks plus the last good listing of every source, merged, sharded and handed to the
/// store.
pub struct Inventory {
    store: Arc<Store>,
    metrics: ExporterMetrics,
    state: Mutex<InventoryState>,
    /// Woken to list again now (after a reload).
    pub refresh_now: Notify,
}

#[derive(Default)]
struct InventoryState {
    static_tasks: Arc<[TaskSpec]>,
    /// What each source listed: the specs only; what the lists said of the tasks' states is
    /// handed to the poller once ([`Inventory::apply`]) and not kept.
    discovered: BTreeMap<ListSource, Vec<Arc<TaskSpec>>>,
    shard: Option<Shard>,
    /// Sources whose last list failed, so an outage is logged once, not every round.
    failing: HashSet<ListSource>,
}

impl Inventory {
    /// An empty inventory feeding `store`.
    pub fn new(store: Arc<Store>, metrics: ExporterMetrics) -> Self {
        Self {
            store,
            metrics,
            state: Mutex::new(InventoryState::default()),
            refresh_now: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, InventoryState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes the static tasks and shard of a (new) configuration; with discovery off, forgets
    /// what was discovered.
    pub fn configure(&self, static_tasks: Arc<[TaskSpec]>, shard: Shard, discovery_enabled: bool) {
        self.metrics
            .discovery_enabled
            .set(if discovery_enabled { 1.0 } else { 0.0 });
        let mut state = self.lock();
        state.static_tasks = static_tasks;
        state.shard = Some(shard);
        if !discovery_enabled {
            state.discovered.clear();
        }
        self.publish(&state);
    }

    /// Applies one round of listing: sources that answered replace what they listed before,
    /// sources that failed keep it, sources no longer configured are dropped. Returns the
    /// failures and what the answering sources said of each task.
    pub fn apply(
        &self,
        outcomes: BTreeMap<ListSource, ListOutcome>,
    ) -> (Vec<(ListSource, ApiError)>, ListedStates) {
        let mut failures = Vec::new();
        let mut listed = ListedStates::new();
        let mut state = self.lock();
        let mut next = BTreeMap::new();
        for (source, outcome) in outcomes {
            match outcome {
                Ok(tasks) => {
                    let mut specs = Vec::with_capacity(tasks.len());
                    for task in tasks {
                        listed.entry(task.spec.key()).or_insert(task.listed);
                        specs.push(Arc::new(task.spec));
                    }
                    next.insert(source, specs);
                }
                Err(error) => {
                    let previous = state.discovered.remove(&source).unwrap_or_default();
                    next.insert(source.clone(), previous);
                    failures.push((source, error));
                }
            }
        }
        state.discovered = next;
        self.publish(&state);
        (failures, listed)
    }

    /// Merges and hands the task set to the store: a static entry wins over a discovered one
    /// with the same account and id, but takes the attributes it lacks (name, mode, times)
    /// from it.
    fn publish(&self, state: &InventoryState) {
        let shard = state.shard.unwrap_or(Shard { index: 0, total: 1 });
        let mut discovered: HashMap<_, &Arc<TaskSpec>> = HashMap::new();
        for spec in state.discovered.values().flatten() {
            discovered.entry(spec.key()).or_insert(spec);
        }
        let mut merged = BTreeMap::new();
        for spec in state.static_tasks.iter() {
            let mut spec = spec.clone();
            if let Some(found) = discovered.remove(&spec.key()) {
                spec.name = spec.name.or_else(|| found.name.clone());
                // A static entry's own labels win over the rules'.
                if spec.labels.is_empty() {
                    spec.labels = found.labels.clone();
                }
                spec.mode = found.mode.clone();
                spec.created = found.created;
                spec.expires = found.expires;
            }
            merged.insert(spec.key(), Arc::new(spec));
        }
        // A discovered task's spec is shared with its states in the store, not copied.
        for (key, spec) in discovered {
            merged.entry(key).or_insert_with(|| Arc::clone(spec));
        }
        let tasks: Vec<Arc<TaskSpec>> = merged
            .into_values()
            .filter(|spec| shard.owns(&spec.id))
            .collect();
        for source in [TaskSource::Static, TaskSource::Discovered] {
            let count = tasks.iter().filter(|t| t.source == source).count();
            self.metrics
                .tasks
                .with_label_values(&[source.as_str()])
                .set(count as i64);
        }
        self.store.set_tasks(tasks);
    }

    /// Lists once (if `runtime` has discovery on) and applies the result. A source that starts
    /// failing is logged once, and again when it recovers. Returns what the lists said of each
    /// task (empty with discovery off).
    pub async fn refresh(&self, runtime: &Runtime) -> ListedStates {
        let Some(discovery) = &runtime.settings.discovery else {
            return ListedStates::new();
        };
        let outcomes = list_all(runtime, discovery).await;
        let found: usize = outcomes
            .values()
            .filter_map(|o| o.as_ref().ok())
            .map(Vec::len)
            .sum();
        let (failures, listed) = self.apply(outcomes);
        let mut state = self.lock();
        let failing: HashSet<ListSource> = failures.iter().map(|(s, _)| s.clone()).collect();
        for source in state.failing.difference(&failing) {
            info!(source = %source, "listing works again");
        }
        for (source, error) in &failures {
            if !state.failing.contains(source) {
                warn!(
                    source = %source,
                    reason = error.reason(),
                    error = %error,
                    "listing failed; keeping the tasks listed before and reading their status \
                     one by one until it works again"
                );
            }
        }
        let was_failing = !state.failing.is_empty();
        state.failing = failing;
        drop(state);
        if failures.is_empty() {
            self.metrics.discovery_last_success.set(unix_now());
            if !runtime.settings.list_first || was_failing {
                info!(tasks = found, "discovery refreshed");
            }
        }
        listed
    }

    /// Lists every `refresh_interval` of the current runtime, or at once when asked, until
    /// `shutdown`.
    pub async fn run(
        self: Arc<Self>,
        runtime: Arc<arc_swap::ArcSwap<Runtime>>,
        shutdown: CancellationToken,
    ) {
        loop {
            let current = runtime.load_full();
            // With list-first polling every poll cycle lists; this loop then only answers
            // `refresh_now` (a reload).
            let wait = match &current.settings.discovery {
                Some(discovery) if !current.settings.list_first => discovery.refresh_interval,
                _ => std::time::Duration::from_secs(24 * 3600),
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.refresh_now.notified() => {}
                () = shutdown.cancelled() => return,
            }
            let current = runtime.load_full();
            tokio::select! {
                _ = self.refresh(&current) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;
    use std::time::Duration;

    fn item(id: &str, name: &str, status: &str, created: f64) -> ListItem {
        ListItem {
            task_id: Some(id.into()),
            name: Some(name.into()),
            mode: Some("full".into()),
            state: StatusData {
                status: Some(status.into()),
                ..Default::default()
            },
            create_time: Some(created),
            ..Default::default()
        }
    }

    #[test]
    fn filters_apply_as_documented() {
        let now = 1_000_000.0;
        let mut filter = DiscoveryFilter::default();
        assert!(keep(&filter, &item("a", "prod-a", "Done", 0.0), now));

        filter.name_regex = Some(Regex::new("^prod-").unwrap());
        assert!(keep(&filter, &item("a", "prod-a", "Syncing", now), now));
        assert!(!keep(&filter, &item("b", "test-b", "Syncing", now), now));

        filter.exclude_ids.insert("a".into());
        assert!(!keep(&filter, &item("a", "prod-a", "Syncing", now), now));

        let mut filter = DiscoveryFilter {
            finished_max_age: Some(Duration::from_secs(3600)),
            ..Default::default()
        };
        assert!(!keep(&filter, &item("old", "x", "Done", now - 7200.0), now));
        assert!(keep(&filter, &item("new", "x", "Done", now - 60.0), now));
        assert!(keep(
            &filter,
            &item("old-running", "x", "Syncing", now - 7200.0),
            now
        ));

        filter.statuses.insert("Syncing".into());
        assert!(!keep(&filter, &item("new", "x", "Done", now - 60.0), now));
        filter.include_ids.insert("only".into());
        assert!(!keep(
            &filter,
            &item("old-running", "x", "Syncing", now),
            now
        ));
        assert!(keep(&filter, &item("only", "x", "Syncing", now), now));
        filter.exclude_statuses.insert("Syncing".into());
        assert!(!keep(&filter, &item("only", "x", "Syncing", now), now));
    }

    #[test]
    fn list_entries_without_an_id_are_skipped() {
        let mut entry = item("a", "x", "Done", 0.0);
        entry.task_id = None;
        assert!(!keep(&DiscoveryFilter::default(), &entry, 0.0));
    }

    fn source(kind: TaskKind) -> ListSource {
        ListSource {
            account: None,
            kind,
            project_id: None,
        }
    }

    fn discovered(id: &str, name: &str) -> DiscoveredTask {
        DiscoveredTask {
            spec: TaskSpec {
                name: Some(name.into()),
                mode: Some("incremental".into()),
                created: Some(5.0),
                source: TaskSource::Discovered,
                ..TaskSpec::new(id)
            },
            listed: StatusData {
                status: Some("Syncing".into()),
                ..Default::default()
            },
        }
    }

    fn ids(store: &Store) -> Vec<String> {
        store.specs().into_iter().map(|s| s.id.clone()).collect()
    }

    #[test]
    fn static_entries_win_and_failed_lists_keep_the_previous_set() {
        let store = Arc::new(Store::new());
        let inventory = Inventory::new(Arc::clone(&store), ExporterMetrics::new());
        let mut static_a = TaskSpec::new("a");
        static_a.project_id = Some("org-static".into());
        inventory.configure(vec![static_a].into(), Shard { index: 0, total: 1 }, true);

        let (failures, _) = inventory.apply(BTreeMap::from([
            (
                source(TaskKind::Transfer),
                Ok(vec![discovered("a", "from-list"), discovered("b", "b")]),
            ),
            (
                source(TaskKind::Integration),
                Ok(vec![discovered("c", "c")]),
            ),
        ]));
        assert!(failures.is_empty());
        assert_eq!(ids(&store), ["a", "b", "c"]);
        let a = &store.specs()[0];
        assert_eq!(a.source, TaskSource::Static);
        assert_eq!(a.project_id.as_deref(), Some("org-static"));
        assert_eq!(a.name.as_deref(), Some("from-list"));
        assert_eq!(a.mode.as_deref(), Some("incremental"));

        // The transfer list fails: its tasks stay. The integration list drops c.
        let (failures, _) = inventory.apply(BTreeMap::from([
            (
                source(TaskKind::Transfer),
                Err(ApiError::Timeout(String::new())),
            ),
            (source(TaskKind::Integration), Ok(vec![])),
        ]));
        assert_eq!(failures.len(), 1);
        assert_eq!(ids(&store), ["a", "b"]);
    }
}
