//! The PostgreSQL sources' watched slots as the page and the JSON show them, per source: each
//! slot as the slot policy ([`crate::slots`]) judged it, nothing decided here.

use serde::Serialize;

use crate::slots::Slot;

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

/// The slots (in source and slot order) grouped by source.
pub fn by_source(slots: &[Slot]) -> Vec<SourceSlots> {
    let mut sources: Vec<SourceSlots> = Vec::new();
    for slot in slots {
        let view = SlotView {
            slot: slot.row.name.clone(),
            task_id: slot.task_id.clone(),
            active: slot.row.active,
            retained_bytes: slot.retained_bytes,
            lag_bytes: slot.lag_bytes,
            safe_wal_bytes: slot.row.safe_wal_size,
            wal_status: slot.row.wal_status.clone(),
            orphaned: slot.orphaned,
            growth_bytes_per_hour: slot.growth_bytes_per_second.map(|rate| rate * 3600.0),
            invalidated_at: slot.invalidated_at,
            drop_statement: slot.drop_statement.clone(),
            words: slot.words.clone(),
        };
        match sources.last_mut() {
            Some(source) if *source.name == *slot.source => source.slots.push(view),
            _ => sources.push(SourceSlots {
                name: slot.source.to_string(),
                slots: vec![view],
            }),
        }
    }
    sources
}
