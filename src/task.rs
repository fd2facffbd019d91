//! What the exporter knows about a task before it polls it: its identity and where it came from.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The `Type` parameter of the UDTS actions: which product the task belongs to.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// Data migration (the gateway's default when `Type` is absent).
    #[default]
    Transfer,
    /// Data integration.
    Integration,
}

impl TaskKind {
    /// Every kind, in the order they are listed.
    pub const ALL: [TaskKind; 2] = [TaskKind::Transfer, TaskKind::Integration];

    /// The wire and label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transfer => "transfer",
            Self::Integration => "integration",
        }
    }
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the exporter learned of a task; the `source` label of `udts_tasks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskSource {
    /// Listed under `[[tasks]]` in the configuration.
    Static,
    /// Found by `ListUDTSTask`.
    Discovered,
}

impl TaskSource {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Static => "static",
            Self::Discovered => "discovered",
        }
    }
}

/// A task to poll.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// The UDTS task id, e.g. `udts-ixdp441`; the `task_id` label.
    pub id: String,
    /// transfer or integration; sent as `Type`.
    pub kind: TaskKind,
    /// The `[[accounts]]` name; `None` when only one account is configured (and then no
    /// `account` label is written).
    pub account: Option<String>,
    /// Sent as `ProjectId` when set (sub-accounts must set it).
    pub project_id: Option<String>,
    /// The task's name, when known (from the config or discovery).
    pub name: Option<String>,
    /// The mode (`full`, `incremental`, ...), when discovery told us.
    pub mode: Option<String>,
    /// Creation time (unix seconds), when discovery told us.
    pub created: Option<f64>,
    /// Billing expiry (unix seconds), when discovery told us.
    pub expires: Option<f64>,
    /// Where it came from.
    pub source: TaskSource,
    /// Extra labels for `udts_task_info` (team, env, ...), sorted by name: from the task's
    /// `[[tasks]]` entry or the first matching `[[discovery.labels]]` rule.
    pub labels: Vec<(String, String)>,
}

impl TaskSpec {
    /// A static transfer task with nothing but an id, for tests and builders.
    pub fn new(id: &str) -> Self {
        Self {
            id: id.into(),
            kind: TaskKind::Transfer,
            account: None,
            project_id: None,
            name: None,
            mode: None,
            created: None,
            expires: None,
            source: TaskSource::Static,
            labels: Vec::new(),
        }
    }

    /// The identity of the task in the store: account and id.
    pub fn key(&self) -> TaskKey {
        TaskKey {
            account: self.account.clone(),
            id: self.id.clone(),
        }
    }
}

/// Values by task, found by a task's borrowed identity: a lookup per task and render builds no
/// key (at 10,000 tasks a [`TaskKey`] per lookup was two allocations each).
#[derive(Debug, Clone)]
pub struct TaskMap<V> {
    by_account: std::collections::HashMap<Option<String>, std::collections::HashMap<String, V>>,
}

impl<V> Default for TaskMap<V> {
    fn default() -> Self {
        Self {
            by_account: std::collections::HashMap::new(),
        }
    }
}

impl<V> TaskMap<V> {
    /// The value of the task `id` of `account`.
    pub fn get(&self, account: &Option<String>, id: &str) -> Option<&V> {
        self.by_account.get(account)?.get(id)
    }

    /// The value of `spec`'s task.
    pub fn of(&self, spec: &TaskSpec) -> Option<&V> {
        self.get(&spec.account, &spec.id)
    }

    /// The value of `key`, made with `V::default()` when there is none.
    pub fn entry(&mut self, key: TaskKey) -> &mut V
    where
        V: Default,
    {
        self.by_account
            .entry(key.account)
            .or_default()
            .entry(key.id)
            .or_default()
    }

    /// Keeps the tasks for which `keep(account, id)` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&Option<String>, &str) -> bool) {
        self.by_account.retain(|account, tasks| {
            tasks.retain(|id, _| keep(account, id));
            !tasks.is_empty()
        });
    }

    /// Tasks held.
    pub fn len(&self) -> usize {
        self.by_account
            .values()
            .map(std::collections::HashMap::len)
            .sum()
    }

    /// Whether no task is held.
    pub fn is_empty(&self) -> bool {
        self.by_account.is_empty()
    }
}

impl<V> FromIterator<(TaskKey, V)> for TaskMap<V> {
    fn from_iter<I: IntoIterator<Item = (TaskKey, V)>>(items: I) -> Self {
        let mut map = Self::default();
        for (key, value) in items {
            map.by_account
                .entry(key.account)
                .or_default()
                .insert(key.id, value);
        }
        map
    }
}

/// A task's identity across accounts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskKey {
    /// The account label, if any.
    pub account: Option<String>,
    /// The task id.
    pub id: String,
}
