//! The documented task statuses. The set is open: a status the gateway invents later is still
//! reported (as its own series), never dropped or mapped to something it is not.

/// The 16 statuses of the API documentation, in its order. Each gets a `udts_task_status`
/// series (0 or 1) for every task, so `== 1` queries and state-set panels always find them.
pub const DOCUMENTED: [&str; 16] = [
    "Created",
    "Checking",
    "Dumping",
    "Loading",
    "Syncing",
    "Synced",
    "Done",
    "Failed",
    "Stopping",
    "Stopped",
    "RetryPending",
    "Starting",
    "FailedUnrecoverable",
    "StoppedUnrecoverable",
    "Success",
    "Started",
];

/// A paused task: UDTS resumes it only within 7 days.
pub const STOPPED: &str = "Stopped";

/// Statuses in which a task moves data, and stalls when it stops moving.
pub const MOVING: [&str; 3] = ["Dumping", "Loading", "Syncing"];

/// Statuses of a task at work: [`MOVING`], or caught up (`Synced`).
pub const ACTIVE: [&str; 4] = ["Dumping", "Loading", "Syncing", "Synced"];

/// Whether `status` is one of the documented ones.
pub fn is_documented(status: &str) -> bool {
    DOCUMENTED.contains(&status)
}

/// Statuses a task stays in until someone acts: a full read on entering them tells all there
/// is, and the list tells when they move again.
pub const FINISHED: [&str; 5] = [
    "Done",
    "Success",
    "Stopped",
    "FailedUnrecoverable",
    "StoppedUnrecoverable",
];

/// The incremental phase, whose binlog position and delays only `GetUDTSTaskStatus` reports.
pub const INCREMENTAL: [&str; 2] = ["Syncing", "Synced"];

/// Statuses in which the retry count is the news.
pub const RETRYING: [&str; 2] = ["Failed", "RetryPending"];

/// The finished statuses reached by giving up: their reason is only in the status call's
/// failure message.
pub const UNRECOVERABLE: [&str; 2] = ["FailedUnrecoverable", "StoppedUnrecoverable"];

/// Whether `status` is one of [`FINISHED`].
pub fn is_finished(status: &str) -> bool {
    FINISHED.contains(&status)
}

/// Whether the time a task entered `status` matters even when the exporter first sees it
/// there (and is worth a history call): every unfinished status, and `Stopped`, which UDTS
/// resumes only within 7 days of the pause.
pub fn since_matters(status: &str) -> bool {
    !is_finished(status) || status == STOPPED
}
