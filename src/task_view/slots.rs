//! The PostgreSQL sources' watched slots as the page and the JSON say them: per source, each
//! slot with what it keeps and how fast that grows, when the server will invalidate it at the
//! current WAL write rate (or that it cannot, being unbounded: the source's disk fills instead,
//! which the exporter cannot see), and for an orphan the statement that drops it; per task, its
//! slot's words as one of its deadlines.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::deadlines::{Deadline, DeadlineKind};
use crate::human::{duration, size};
use crate::source::slots::WatchedSlot;
use crate::source::SourceSnapshot;
use crate::task::TaskKey;

/// The window the WAL write rate is taken over.
const RATE_WINDOW_SECONDS: f64 = 900.0;

/// One watched slot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlotView {
    pub slot: String,
    /// The task it belongs to, when known.
    pub task_id: Option<String>,
    pub active: bool,
    pub retained_bytes: Option<u64>,
    pub lag_bytes: Option<u64>,
    pub safe_wal_bytes: Option<i64>,
    pub wal_status: Option<String>,
    pub orphaned: bool,
    /// How fast what it retains grows while nobody reads it (the source's WAL write rate).
    pub growth_bytes_per_hour: Option<f64>,
    /// When the server invalidates it at that rate; `null` when unbounded, lost or not growing.
    pub invalidated_at: Option<f64>,
    /// For an orphaned or lost slot, the statement that drops it.
    pub drop_statement: Option<String>,
    /// The slot in words.
    pub words: String,
}

/// A PostgreSQL source's watched slots.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceSlots {
    pub name: String,
    pub slots: Vec<SlotView>,
}

/// The slots by source, and each owned slot's words as its task's deadline.
pub fn slot_views(
    watched: &[WatchedSlot<'_>],
    snapshots: &HashMap<String, Arc<SourceSnapshot>>,
    now: f64,
) -> (Vec<SourceSlots>, HashMap<TaskKey, Deadline>) {
    let mut sources: Vec<SourceSlots> = Vec::new();
    let mut deadlines = HashMap::new();
    for watched in watched {
        let rate = snapshots
            .get(watched.source)
            .and_then(|s| s.samples.rate(now, RATE_WINDOW_SECONDS))
            .filter(|rate| *rate > 0.0);
        let view = view(watched, rate, now);
        if let Some(task) = watched.task {
            let retaining = !watched.slot.active && watched.retained_bytes.is_some_and(|b| b > 0);
            if retaining || watched.lost() {
                deadlines.insert(
                    task.spec.key(),
                    Deadline {
                        kind: DeadlineKind::SlotInvalidation,
                        at: view.invalidated_at,
                        words: Some(format!("its {}", view.words)),
                    },
                );
            }
        }
        match sources.last_mut() {
            Some(source) if source.name == watched.source => source.slots.push(view),
            _ => sources.push(SourceSlots {
                name: watched.source.to_string(),
                slots: vec![view],
            }),
        }
    }
    (sources, deadlines)
}

fn view(watched: &WatchedSlot<'_>, rate: Option<f64>, now: f64) -> SlotView {
    let slot = watched.slot;
    let lost = watched.lost();
    // Nobody reads it: its restart point stays, and it keeps all the source writes.
    let growth = rate.filter(|_| !slot.active && !lost);
    let invalidated_at = growth
        .zip(slot.safe_wal_size)
        .map(|(rate, safe)| now + safe.max(0) as f64 / rate);
    let mut words = format!("slot {} on {}", slot.name, watched.source);
    if lost {
        words.push_str(" was invalidated: its task can only be redone");
    } else if let Some(retained) = watched.retained_bytes {
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
    let drop_statement = (watched.orphaned || lost)
        .then(|| format!("SELECT pg_drop_replication_slot('{}');", slot.name));
    if watched.orphaned {
        words.push_str("; no task will read it again: drop it");
    }
    SlotView {
        slot: slot.name.clone(),
        task_id: watched.task_id.map(str::to_string),
        active: slot.active,
        retained_bytes: watched.retained_bytes,
        lag_bytes: watched.lag_bytes,
        safe_wal_bytes: slot.safe_wal_size,
        wal_status: slot.wal_status.clone(),
        orphaned: watched.orphaned,
        growth_bytes_per_hour: growth.map(|rate| rate * 3600.0),
        invalidated_at,
        drop_statement,
        words,
    }
}
