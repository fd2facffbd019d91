//! The deadlines UDTS enforces on a task, which end it for good if nobody acts: a task paused
//! (`Stopped`) for more than 7 days cannot be resumed, and a task whose billing expired is
//! stopped the day after and reclaimed the day after that (`../shared/udts-operations.md`).
//!
//! Each is a unix time computed from what the exporter already knows: the time the task entered
//! `Stopped` (from its history, so an exporter restart does not move it) and the billing expiry
//! `ListUDTSTask` reports. Never a guess: no since, no resume deadline.

use serde::Serialize;

use crate::human::duration;
use crate::state::TaskState;
use crate::status;
use crate::task::TaskSpec;

const DAY: f64 = 86_400.0;

/// How long UDTS can resume a paused task.
pub const RESUME_LIMIT_SECONDS: f64 = 7.0 * DAY;

/// From billing expiry to the task being reclaimed: stopped the day after, reclaimed the day
/// after that.
pub const RECLAIM_AFTER_EXPIRY_SECONDS: f64 = 2.0 * DAY;

/// A resume limit closer than this is said on the page (the shipped alert fires at 24 h): a
/// task paused minutes ago, as UDTS's cut-over guide pauses it, is no news.
pub const RESUME_NOTICE_SECONDS: f64 = 3.0 * DAY;

/// A billing expiry closer than this is said on the page (and alerted on by the shipped rules).
pub const EXPIRY_NOTICE_SECONDS: f64 = 7.0 * DAY;

/// When a `Stopped` task stops being resumable: 7 days after it entered `Stopped`.
pub fn resume_deadline(state: &TaskState) -> Option<f64> {
    (state.status() == Some(status::STOPPED))
        .then_some(state.status_since?)
        .map(|since| since + RESUME_LIMIT_SECONDS)
}

/// When UDTS reclaims the task: 2 days after its billing expires.
pub fn reclaim_at(spec: &TaskSpec) -> Option<f64> {
    spec.expires
        .map(|expires| expires + RECLAIM_AFTER_EXPIRY_SECONDS)
}

/// What a deadline is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    /// The last moment a paused task can be resumed.
    Resume,
    /// The billing expiry.
    Expire,
    /// When UDTS reclaims the task, 2 days after its expiry.
    Reclaim,
    /// When the server invalidates the task's PostgreSQL slot at the current WAL write rate
    /// (`at` null when unbounded: the source's disk fills instead; past when already lost).
    SlotInvalidation,
}

/// One deadline as the page and the JSON say it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deadline {
    pub kind: DeadlineKind,
    /// Unix seconds; `null` where it cannot be known.
    pub at: Option<f64>,
    /// What it means and what to do, in words; `None` where there is nothing to do about it.
    pub words: Option<String>,
}

/// The task's deadlines at `now` that need someone, soonest first: a paused task's resume
/// limit, and a billing expiry within 7 days (or past, until the reclaim) of a task that is
/// not finished. A far-off expiry is left out: `udts_task_expire_timestamp_seconds` has it, and
/// at 10,000 tasks two entries each would be a megabyte of views and JSON saying nothing.
pub fn deadlines(state: &TaskState, now: f64) -> Vec<Deadline> {
    let mut found = Vec::new();
    if let Some(at) = resume_deadline(state) {
        let paused = state.status_since.map_or(0.0, |since| now - since);
        let words = if at - now > RESUME_NOTICE_SECONDS {
            None
        } else if at > now {
            Some(format!(
                "paused {}: UDTS can resume it for {} more; resume or reset it before then",
                duration(paused),
                duration(at - now)
            ))
        } else {
            Some(format!(
                "paused {}: past UDTS's 7-day limit, it can no longer be resumed; reset it and \
                 run it again",
                duration(paused)
            ))
        };
        found.push(Deadline {
            kind: DeadlineKind::Resume,
            at: Some(at),
            words,
        });
    }
    if let (Some(expires), Some(reclaim)) = (state.spec.expires, reclaim_at(&state.spec)) {
        // A finished task has nothing left to lose to its expiry but the task itself.
        let finished = state
            .status()
            .is_some_and(|s| status::is_finished(s) && s != status::STOPPED);
        if expires - now < EXPIRY_NOTICE_SECONDS && reclaim > now && !finished {
            let words = if expires > now {
                format!(
                    "billing expires in {}: renew before then; UDTS stops it the day after and \
                     reclaims it the day after that",
                    duration(expires - now)
                )
            } else {
                format!(
                    "billing expired {} ago: renew now; UDTS reclaims it in {}",
                    duration(now - expires),
                    duration(reclaim - now)
                )
            };
            found.push(Deadline {
                kind: DeadlineKind::Expire,
                at: Some(expires),
                words: Some(words),
            });
            found.push(Deadline {
                kind: DeadlineKind::Reclaim,
                at: Some(reclaim),
                words: None,
            });
        }
    }
    sort(&mut found);
    found
}

/// Soonest first; one that cannot be dated last.
pub fn sort(deadlines: &mut [Deadline]) {
    deadlines.sort_by(|a, b| {
        a.at.unwrap_or(f64::INFINITY)
            .total_cmp(&b.at.unwrap_or(f64::INFINITY))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::StatusData;

    fn state(status: &str, since: Option<f64>, expires: Option<f64>) -> TaskState {
        let spec = TaskSpec {
            expires,
            ..TaskSpec::new("udts-a")
        };
        let state = TaskState::new(spec).after_poll(
            Ok(StatusData {
                status: Some(status.into()),
                ..StatusData::default()
            }),
            1_000.0,
        );
        match since {
            Some(since) => state.with_status_since(since),
            None => state,
        }
    }

    #[test]
    fn a_stopped_task_is_resumable_for_seven_days_from_its_pause() {
        let now = 1_800_000_000.0;
        let paused = now - (6.0 * DAY + 2.0 * 3600.0);
        let task = state("Stopped", Some(paused), None);
        assert_eq!(resume_deadline(&task), Some(paused + 7.0 * DAY));
        assert_eq!(deadlines(&task, now)[0].at, Some(paused + 7.0 * DAY));
        let said = deadlines(&task, now);
        assert_eq!(said.len(), 1);
        assert_eq!(
            said[0].words.as_deref(),
            Some(
                "paused 6 days 2 h: UDTS can resume it for 22 h more; resume or reset it before \
                 then"
            )
        );
        // Paused an hour ago: the deadline is known, nothing to say yet.
        let fresh = state("Stopped", Some(now - 3600.0), None);
        assert_eq!(deadlines(&fresh, now)[0].words, None);
        let late = deadlines(&task, paused + 8.0 * DAY);
        assert!(late[0]
            .words
            .as_ref()
            .unwrap()
            .contains("can no longer be resumed"));
        // Not stopped, or stopped since an unknown time: no deadline.
        assert_eq!(resume_deadline(&state("Syncing", Some(paused), None)), None);
        assert_eq!(
            resume_deadline(&TaskState::new(TaskSpec::new("udts-b"))),
            None
        );
    }

    #[test]
    fn billing_expiry_is_said_within_a_week_and_reclaim_follows_two_days_later() {
        let now = 1_800_000_000.0;
        let soon = state("Syncing", None, Some(now + 3.0 * DAY));
        assert_eq!(reclaim_at(&soon.spec), Some(now + 5.0 * DAY));
        let said = deadlines(&soon, now);
        let kinds: Vec<DeadlineKind> = said.iter().map(|d| d.kind).collect();
        assert_eq!(kinds, [DeadlineKind::Expire, DeadlineKind::Reclaim]);
        assert_eq!(
            said[0].words.as_deref(),
            Some(
                "billing expires in 3 days: renew before then; UDTS stops it the day after and \
                 reclaims it the day after that"
            )
        );
        let expired = deadlines(&soon, now + 4.0 * DAY);
        assert_eq!(
            expired[0].words.as_deref(),
            Some("billing expired 1 day ago: renew now; UDTS reclaims it in 1 day")
        );
        // Far off, or a finished task's: nothing to do, nothing said.
        let far = state("Syncing", None, Some(now + 90.0 * DAY));
        assert!(deadlines(&far, now).is_empty());
        let done = state("Done", None, Some(now + DAY));
        assert!(deadlines(&done, now).is_empty());
    }
}
