//! The PostgreSQL slot policy, in one place: which task reads through which watched slot,
//! whether a slot is orphaned, whether it still retains its task's WAL, how fast what it keeps
//! grows, when the server will invalidate it, and the one statement that drops it. `source/`
//! only reads the rows; the render derives [`Slot`]s from them once ([`watch`]) and every
//! reader (the slot families, the page, the JSON, `check`) takes them as they are.
//!
//! A slot belongs to a task when `slots` on the source names it for the task, when its name
//! carries the task's id (`udts-abc123` as `udts_abc123...`: slot names allow only `[a-z0-9_]`),
//! or when it is the only watched slot of a source that exactly one task maps to.
//!
//! A watched slot is orphaned when no task will read it again: it has no owner among the polled
//! tasks (its task is not polled, or was deleted and is no longer listed), or its task finished,
//! is unrecoverable, or has been stopped past UDTS's 7-day resume limit. A task paused within
//! the limit keeps its slot: it is retaining WAL, not orphaned.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{slot_char, SourceMap};
use crate::deadlines::{Deadline, DeadlineKind};
use crate::human::{duration, size};
use crate::source::lag::{seconds_behind, TaskLag};
use crate::source::postgres::SlotRow;
use crate::source::SourceSnapshot;
use crate::state::TaskState;
use crate::status;

/// The window the source's WAL write rate is taken over.
const RATE_WINDOW_SECONDS: f64 = 900.0;

/// One watched slot at one render, with everything the policy says of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    /// The `[[sources]]` name.
    pub source: Arc<str>,
    /// The slot as the server showed it.
    pub row: SlotRow,
    /// The id of the task it belongs to, if known.
    pub task_id: Option<String>,
    /// That task's position in the render's tasks, while the exporter polls it.
    pub task: Option<usize>,
    /// Whether no task will read it again.
    pub orphaned: bool,
    /// WAL it keeps on the source's disk: current position minus `restart_lsn`.
    pub retained_bytes: Option<u64>,
    /// How far behind its consumer is: current position minus `confirmed_flush_lsn`.
    pub lag_bytes: Option<u64>,
    /// How fast what it retains grows while nobody reads it (the source's WAL write rate);
    /// `None` while it is read, lost, or the source writes nothing.
    pub growth_bytes_per_second: Option<f64>,
    /// When the server invalidates it at that rate; `None` when unbounded, lost or not growing.
    pub invalidated_at: Option<f64>,
    /// The statement that drops it, for a slot nobody can use again (orphaned or lost).
    pub drop_statement: Option<String>,
    /// The slot in words.
    pub words: String,
}

impl Slot {
    /// Whether the server invalidated it (`wal_status = 'lost'`): its task can only be redone.
    pub fn lost(&self) -> bool {
        self.row.wal_status.as_deref() == Some("lost")
    }

    /// The lag of its task behind `source` through it: the WAL written after what its consumer
    /// confirmed, and since when; not retained once the slot is lost.
    pub fn task_lag(&self, source: &SourceSnapshot, now: f64) -> TaskLag {
        let retained = !self.lost();
        let bytes = self.lag_bytes.filter(|_| retained);
        TaskLag {
            bytes,
            files: 0,
            transactions: None,
            seconds: bytes.and_then(|bytes| seconds_behind(source, bytes, now)),
            retained,
            at_oldest_file: false,
        }
    }

    /// The slot as one of its task's deadlines: while nobody reads it and it retains WAL, or
    /// once it is lost.
    pub fn deadline(&self) -> Option<Deadline> {
        self.task?;
        let retaining = !self.row.active && self.retained_bytes.is_some_and(|b| b > 0);
        (retaining || self.lost()).then(|| Deadline {
            kind: DeadlineKind::SlotInvalidation,
            at: self.invalidated_at,
            words: Some(format!("its {}", self.words)),
        })
    }
}

/// Every PostgreSQL source's watched slots, with their owners and the policy's verdicts, in
/// source and slot order.
pub fn watch(
    tasks: &[Arc<TaskState>],
    map: &SourceMap,
    snapshots: &HashMap<String, Arc<SourceSnapshot>>,
    now: f64,
) -> Vec<Slot> {
    if !map.has_postgres() {
        return Vec::new();
    }
    let by_slot_name: HashMap<SlotSpelling<'_>, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (SlotSpelling(&t.spec.id), i))
        .collect();
    let by_id: HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.spec.id.as_str(), i))
        .collect();
    let mut sources: Vec<(&String, &Arc<SourceSnapshot>)> = snapshots.iter().collect();
    sources.sort_by_key(|(name, _)| *name);
    let mut watched = Vec::new();
    for (source, snapshot) in sources {
        let (Some((pattern, explicit)), Some(wal)) = (map.slot_rules(source), &snapshot.wal) else {
            continue;
        };
        let name: Arc<str> = Arc::from(source.as_str());
        let rate = snapshot
            .samples
            .rate(now, RATE_WINDOW_SECONDS)
            .filter(|rate| *rate > 0.0);
        let rows: Vec<&SlotRow> = wal
            .slots
            .iter()
            .filter(|s| pattern.is_match(&s.name))
            .collect();
        let mut mapped = tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| map.source_of(&t.spec) == Some(source.as_str()));
        let only_mapped = match (mapped.next(), mapped.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        };
        for row in &rows {
            let (task_id, task) = match explicit.iter().find(|(_, slot)| **slot == row.name) {
                Some((id, _)) => (Some(id.clone()), by_id.get(id.as_str()).copied()),
                None => match carried(&row.name, &by_slot_name)
                    .or_else(|| only_mapped.filter(|_| rows.len() == 1))
                {
                    Some(i) => (Some(tasks[i].spec.id.clone()), Some(i)),
                    None => (None, None),
                },
            };
            let behind = |lsn: Option<u64>| lsn.map(|lsn| wal.lsn.saturating_sub(lsn));
            let orphaned = task.is_none_or(|i| abandoned(&tasks[i], now));
            watched.push(judged(
                Slot {
                    source: Arc::clone(&name),
                    row: (*row).clone(),
                    task_id,
                    task,
                    orphaned,
                    retained_bytes: behind(row.restart_lsn),
                    lag_bytes: behind(row.confirmed_flush_lsn.or(row.restart_lsn)),
                    growth_bytes_per_second: None,
                    invalidated_at: None,
                    drop_statement: None,
                    words: String::new(),
                },
                rate,
                now,
            ));
        }
    }
    watched
}

/// The slot with its growth, invalidation time, drop statement and words, at the source's WAL
/// write rate `rate`.
fn judged(mut slot: Slot, rate: Option<f64>, now: f64) -> Slot {
    let lost = slot.lost();
    // Nobody reads it: its restart point stays, and it keeps all the source writes.
    let growth = rate.filter(|_| !slot.row.active && !lost);
    let invalidated_at = growth
        .zip(slot.row.safe_wal_size)
        .map(|(rate, safe)| now + safe.max(0) as f64 / rate);
    let mut words = format!("slot {} on {}", slot.row.name, slot.source);
    if lost {
        words.push_str(" was invalidated: its task can only be redone");
    } else if let Some(retained) = slot.retained_bytes {
        words.push_str(&format!(" retains {}", size(retained)));
        if let Some(rate) = growth {
            words.push_str(&format!(" and grows {}/h", size((rate * 3600.0) as u64)));
            match invalidated_at {
                Some(at) => {
                    words.push_str(&format!("; invalidated in about {}", duration(at - now)))
                }
                None => words.push_str(
                    ", without bound (max_slot_wal_keep_size -1): the source's disk fills \
                     instead, which the exporter cannot see",
                ),
            }
        }
    }
    if slot.orphaned {
        words.push_str("; no task will read it again: drop it");
    }
    // The one rule: a slot nobody can use again is dropped, whether orphaned or lost.
    slot.drop_statement = (slot.orphaned || lost)
        .then(|| format!("SELECT pg_drop_replication_slot('{}');", slot.row.name));
    slot.growth_bytes_per_second = growth;
    slot.invalidated_at = invalidated_at;
    slot.words = words;
    slot
}

/// A task id as its slots spell it ([`crate::config::slot_name_of`]), hashed and compared
/// without building the name: a render looks up every task's, and builds none.
#[derive(Debug, Clone, Copy)]
struct SlotSpelling<'a>(&'a str);

impl SlotSpelling<'_> {
    fn chars(&self) -> impl Iterator<Item = char> + '_ {
        self.0.chars().map(slot_char)
    }
}

impl PartialEq for SlotSpelling<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.chars().eq(other.chars())
    }
}

impl Eq for SlotSpelling<'_> {}

impl std::hash::Hash for SlotSpelling<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for c in self.chars() {
            c.hash(state);
        }
    }
}

/// The task whose id the slot's name carries: the whole name, or the name up to an `_`.
fn carried(slot: &str, by_slot_name: &HashMap<SlotSpelling<'_>, usize>) -> Option<usize> {
    std::iter::once(slot)
        .chain(slot.match_indices('_').map(|(at, _)| &slot[..at]))
        .find_map(|prefix| by_slot_name.get(&SlotSpelling(prefix)).copied())
}

/// Whether `task` will never read its slot again.
fn abandoned(task: &TaskState, now: f64) -> bool {
    match task.status() {
        Some(status::STOPPED) => {
            crate::deadlines::resume_deadline(task).is_some_and(|at| at <= now)
        }
        Some(status) => status::is_finished(status),
        None => false,
    }
}
