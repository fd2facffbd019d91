//! List-first polling: whether this cycle's `ListUDTSTask` entry tells enough about a task, or
//! the task needs a `GetUDTSTaskStatus` call. The list carries status, retries and full-load
//! progress for up to 100 tasks per call; only the status call has the incremental phase
//! (`Sync`, Redis/Mongo delays) and the failure message.

use std::time::Duration;

use crate::api::StatusData;
use crate::state::TaskState;
use crate::status;

/// Why a listed task still gets a status call this cycle; `None` when the list suffices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCallReason {
    /// Never read in full: first sight, or no status call has succeeded yet (including a
    /// failed task whose message the first picture left for the next cycle).
    FirstSight,
    /// The list shows another status than the last read.
    StatusChanged,
    /// Syncing or Synced, or the last answer carried `Sync` or a Redis/Mongo delay: what moves
    /// is only in the status call.
    Incremental,
    /// Failed or RetryPending with another retry count: the failure message may be new.
    RetriesChanged,
    /// Not finished, and the last full read is older than `poll.full_refresh_interval`.
    Due,
}

/// Which cycle asks. The first picture is what operators wait for after a restart, so it takes
/// what the list says wherever that is enough to alert on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cycle {
    /// The cycle whose end publishes the first complete picture and turns `/readyz` 200.
    FirstPicture,
    /// Every cycle after it.
    Later,
}

/// Whether a list entry says all a status call would: a task finished well (its final status
/// and progress), or a full load whose progress the list carries. Those need no status call on
/// first sight, which keeps the first complete picture at well under one call per task. A task
/// that ended in failure still gets one: its message is only in the status call.
pub fn list_tells_everything(listed: &StatusData) -> bool {
    let status = listed.status.as_deref().unwrap_or("");
    (status::is_finished(status) && !status::UNRECOVERABLE.contains(&status))
        || (matches!(status, "Dumping" | "Loading")
            && listed
                .progress
                .as_ref()
                .is_some_and(|p| p.percentage.is_some()))
}

/// Whether the list shows a task that failed (retrying or given up): its status and retries,
/// all an alert needs, are in the entry; only the failure message is not.
fn list_shows_a_failure(listed: &StatusData) -> bool {
    let status = listed.status.as_deref().unwrap_or("");
    status::RETRYING.contains(&status) || status::UNRECOVERABLE.contains(&status)
}

/// Decides for one task whose list entry this cycle is `listed`. Finished tasks (Done,
/// Stopped, ...) were read in full on entering the state and then ride on the list until it
/// shows them moving.
pub fn status_call_reason(
    state: &TaskState,
    listed: &StatusData,
    now: f64,
    full_refresh_interval: Duration,
    cycle: Cycle,
) -> Option<StatusCallReason> {
    let Some(last) = state.data.as_ref() else {
        // First sight: a status call only where the list does not say it all. In the first
        // picture a failed task is published from the list at once (its status alert fires)
        // and its message comes with the next cycle's call.
        let deferred = cycle == Cycle::FirstPicture && list_shows_a_failure(listed);
        return (!list_tells_everything(listed) && !deferred)
            .then_some(StatusCallReason::FirstSight);
    };
    let Some(last_full_read) = state.last_full_read else {
        // Known from lists alone: it stays so while the list says it all and nothing changes.
        let unchanged = listed.status == last.status;
        return (!(unchanged && list_tells_everything(listed)))
            .then_some(StatusCallReason::FirstSight);
    };
    let status = listed.status.as_deref().unwrap_or("");
    if listed.status != last.status {
        return Some(StatusCallReason::StatusChanged);
    }
    if status::is_finished(status) {
        return None;
    }
    let delays = last.progress.as_ref().is_some_and(|p| {
        p.redis_delay_time.is_some()
            || p.mongo_delay_time.is_some()
            || p.redis_offset_size.is_some()
    });
    if status::INCREMENTAL.contains(&status) || last.sync.is_some() || delays {
        return Some(StatusCallReason::Incremental);
    }
    if status::RETRYING.contains(&status) && listed.cur_retry_count != last.cur_retry_count {
        return Some(StatusCallReason::RetriesChanged);
    }
    if now - last_full_read >= full_refresh_interval.as_secs_f64() {
        return Some(StatusCallReason::Due);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model::{Progress, SyncData};
    use crate::task::TaskSpec;

    const TEN_MINUTES: Duration = Duration::from_secs(600);

    fn data(status: &str) -> StatusData {
        StatusData {
            status: Some(status.into()),
            cur_retry_count: Some(0.0),
            max_retry_count: Some(3.0),
            ..Default::default()
        }
    }

    /// The decision in any cycle after the first picture, at the default full refresh.
    fn later(state: &TaskState, listed: &StatusData, now: f64) -> Option<StatusCallReason> {
        status_call_reason(state, listed, now, TEN_MINUTES, Cycle::Later)
    }

    /// A task last read in full at t=1000 with `last`.
    fn read(last: StatusData) -> TaskState {
        TaskState::new(TaskSpec::new("udts-a")).after_poll(Ok(last), 1000.0)
    }

    #[test]
    fn first_sight_and_a_changed_status_need_a_status_call() {
        let new = TaskState::new(TaskSpec::new("udts-a"));
        assert_eq!(
            later(&new, &data("Syncing"), 1000.0),
            Some(StatusCallReason::FirstSight)
        );
        // The list says all of a finished task and of a full load with its progress.
        assert_eq!(later(&new, &data("Done"), 1000.0), None);
        let mut loading = data("Loading");
        loading.progress = Some(Progress {
            percentage: Some(40.0),
            ..Default::default()
        });
        assert_eq!(later(&new, &loading, 1000.0), None);
        let listed_only = new.after_list(loading.clone(), 1000.0);
        assert_eq!(later(&listed_only, &loading, 1001.0), None);
        // Known from lists only: a change, or a list that no longer says it all, needs a read.
        assert_eq!(
            later(&listed_only, &data("Loading"), 1001.0),
            Some(StatusCallReason::FirstSight)
        );
        assert_eq!(
            later(&listed_only, &data("Syncing"), 1001.0),
            Some(StatusCallReason::FirstSight)
        );
        assert_eq!(
            later(&read(data("Done")), &data("Starting"), 1030.0),
            Some(StatusCallReason::StatusChanged)
        );
    }

    #[test]
    fn the_first_picture_takes_a_failure_from_the_list_and_the_next_cycle_reads_its_message() {
        let new = TaskState::new(TaskSpec::new("udts-a"));
        for failure in [
            "Failed",
            "RetryPending",
            "FailedUnrecoverable",
            "StoppedUnrecoverable",
        ] {
            let listed = data(failure);
            assert_eq!(
                status_call_reason(&new, &listed, 1000.0, TEN_MINUTES, Cycle::FirstPicture),
                None,
                "{failure}"
            );
            // Seen first after the picture: read at once.
            assert_eq!(
                later(&new, &listed, 1000.0),
                Some(StatusCallReason::FirstSight),
                "{failure}"
            );
            // The cycle after the picture reads the message.
            let from_list = new.after_list(listed.clone(), 1000.0);
            assert_eq!(
                later(&from_list, &listed, 1030.0),
                Some(StatusCallReason::FirstSight),
                "{failure}"
            );
        }
        // Not deferred: what only the status call can tell beyond a message.
        assert_eq!(
            status_call_reason(
                &new,
                &data("Syncing"),
                1000.0,
                TEN_MINUTES,
                Cycle::FirstPicture
            ),
            Some(StatusCallReason::FirstSight)
        );
    }

    #[test]
    fn finished_tasks_ride_on_the_list_forever() {
        for finished in status::FINISHED {
            let mut last = data(finished);
            last.sync = Some(SyncData::default());
            assert_eq!(
                later(&read(last), &data(finished), 1_000_000.0),
                None,
                "{finished}"
            );
        }
    }

    #[test]
    fn incremental_phases_always_need_the_status_call() {
        for phase in status::INCREMENTAL {
            assert_eq!(
                later(&read(data(phase)), &data(phase), 1030.0),
                Some(StatusCallReason::Incremental)
            );
        }
        let mut redis = data("Loading");
        redis.progress = Some(Progress {
            redis_delay_time: Some(3.0),
            ..Default::default()
        });
        assert_eq!(
            later(&read(redis), &data("Loading"), 1030.0),
            Some(StatusCallReason::Incremental)
        );
    }

    #[test]
    fn retries_matter_only_while_failing() {
        let mut retried = data("Failed");
        retried.cur_retry_count = Some(1.0);
        assert_eq!(
            later(&read(data("Failed")), &retried, 1030.0),
            Some(StatusCallReason::RetriesChanged)
        );
        assert_eq!(later(&read(data("Failed")), &data("Failed"), 1030.0), None);
    }

    #[test]
    fn a_loading_task_is_read_in_full_every_full_refresh_interval() {
        let loading = read(data("Loading"));
        assert_eq!(later(&loading, &data("Loading"), 1599.0), None);
        assert_eq!(
            later(&loading, &data("Loading"), 1600.0),
            Some(StatusCallReason::Due)
        );
    }
}
