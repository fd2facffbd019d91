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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    /// The UDTS task id, e.g. `udts-ixdp441`; the `task_id` label.
    pub id: String,
    /// transfer or integration; sent as `Type`.
    pub kind: TaskKind,
    /// Sent as `ProjectId` when set (sub-accounts must set it).
    pub project_id: Option<String>,
    /// The task's name, when known (from the config or discovery).
    pub name: Option<String>,
    /// The mode (`full`, `incremental`, ...), when discovery told us.
    pub mode: Option<String>,
    /// Where it came from.
    pub source: TaskSource,
}
