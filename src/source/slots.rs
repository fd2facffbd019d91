//! Which task reads through which PostgreSQL replication slot, and what each watched slot means
//! for it. A slot belongs to a task when `slots` on the source names it for the task, when its
//! name carries the task's id (`udts-abc123` as `udts_abc123...`: slot names allow only
//! `[a-z0-9_]`), or when it is the only watched slot of a source that exactly one task maps to.
//!
//! A watched slot is orphaned when no task will read it again: it has no owner among the polled
//! tasks (its task is not polled, or was deleted and is no longer listed), or its task finished,
//! is unrecoverable, or has been stopped past UDTS's 7-day resume limit. A task paused within
//! the limit keeps its slot: it is retaining WAL, not orphaned.

use std::collections::HashMap;
use std::sync::Arc;

use super::postgres::SlotRow;
use super::SourceSnapshot;
use crate::config::{slot_name_of, SourceMap};
use crate::state::TaskState;
use crate::status;
use crate::task::TaskKey;

/// One watched slot at one render.
#[derive(Debug, Clone)]
pub struct WatchedSlot<'a> {
    /// The `[[sources]]` name.
    pub source: &'a str,
    /// The slot as the server showed it.
    pub slot: &'a SlotRow,
    /// The id of the task it belongs to, if known.
    pub task_id: Option<&'a str>,
    /// That task's state, while the exporter polls it.
    pub task: Option<&'a TaskState>,
    /// Whether no task will read it again.
    pub orphaned: bool,
    /// WAL it keeps on the source's disk: current position minus `restart_lsn`.
    pub retained_bytes: Option<u64>,
    /// How far behind its consumer is: current position minus `confirmed_flush_lsn`.
    pub lag_bytes: Option<u64>,
}

impl WatchedSlot<'_> {
    /// Whether the slot was invalidated (`wal_status = 'lost'`): its task can only be redone.
    pub fn lost(&self) -> bool {
        self.slot.wal_status.as_deref() == Some("lost")
    }
}

/// Every PostgreSQL source's watched slots, with their owners, in source and slot order.
pub fn watched_slots<'a>(
    tasks: &'a [Arc<TaskState>],
    map: &'a SourceMap,
    snapshots: &'a HashMap<String, Arc<SourceSnapshot>>,
    now: f64,
) -> Vec<WatchedSlot<'a>> {
    if !map.has_postgres() {
        return Vec::new();
    }
    let by_slot_name: HashMap<String, &TaskState> = tasks
        .iter()
        .map(|t| (slot_name_of(&t.spec.id), &**t))
        .collect();
    let by_id: HashMap<&str, &TaskState> =
        tasks.iter().map(|t| (t.spec.id.as_str(), &**t)).collect();
    let mut sources: Vec<(&String, &Arc<SourceSnapshot>)> = snapshots.iter().collect();
    sources.sort_by_key(|(name, _)| *name);
    let mut watched = Vec::new();
    for (source, snapshot) in sources {
        let (Some((pattern, explicit)), Some(wal)) = (map.slot_rules(source), &snapshot.wal) else {
            continue;
        };
        let slots: Vec<&SlotRow> = wal
            .slots
            .iter()
            .filter(|s| pattern.is_match(&s.name))
            .collect();
        let mapped: Vec<&TaskState> = tasks
            .iter()
            .filter(|t| map.source_of(&t.spec) == Some(source.as_str()))
            .map(|t| &**t)
            .collect();
        for slot in &slots {
            let (task_id, task) = match explicit.iter().find(|(_, name)| **name == slot.name) {
                Some((id, _)) => (Some(id.as_str()), by_id.get(id.as_str()).copied()),
                None => match carried(&slot.name, &by_slot_name)
                    .or_else(|| (slots.len() == 1 && mapped.len() == 1).then(|| mapped[0]))
                {
                    Some(task) => (Some(task.spec.id.as_str()), Some(task)),
                    None => (None, None),
                },
            };
            let behind = |lsn: Option<u64>| lsn.map(|lsn| wal.lsn.saturating_sub(lsn));
            watched.push(WatchedSlot {
                source,
                slot,
                task_id,
                task,
                orphaned: task.is_none_or(|task| abandoned(task, now)),
                retained_bytes: behind(slot.restart_lsn),
                lag_bytes: behind(slot.confirmed_flush_lsn.or(slot.restart_lsn)),
            });
        }
    }
    watched
}

/// The task whose id the slot's name carries: the whole name, or the name up to an `_`.
fn carried<'a>(slot: &str, by_slot_name: &HashMap<String, &'a TaskState>) -> Option<&'a TaskState> {
    std::iter::once(slot)
        .chain(slot.match_indices('_').map(|(at, _)| &slot[..at]))
        .find_map(|prefix| by_slot_name.get(prefix).copied())
}

/// Whether `task` will never read its slot again.
fn abandoned(task: &TaskState, now: f64) -> bool {
    match task.status() {
        Some("Stopped") => crate::deadlines::resume_deadline(task).is_some_and(|at| at <= now),
        Some(status) => status::is_finished(status),
        None => false,
    }
}

/// Each task's slot, from [`watched_slots`].
pub fn slot_of_task<'a>(watched: &'a [WatchedSlot<'a>]) -> HashMap<TaskKey, &'a WatchedSlot<'a>> {
    watched
        .iter()
        .filter_map(|w| Some((w.task?.spec.key(), w)))
        .collect()
}
