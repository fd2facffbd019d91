//! The families of the PostgreSQL sources' watched replication slots: what each keeps on the
//! source's disk, how far behind its consumer is, whether one is connected, how much WAL is left
//! before the server invalidates it, its `wal_status`, whether it is orphaned, and which task it
//! belongs to. A slot that disappears loses its series; one recreated starts afresh.

use crate::slots::Slot;

use super::families::{header, Label};

/// `wal_status`'s values, each a series of the state set.
const WAL_STATUSES: [&str; 4] = ["reserved", "extended", "unreserved", "lost"];

struct Family {
    name: &'static str,
    help: &'static str,
    value: fn(&Slot) -> Option<f64>,
}

const FAMILIES: [Family; 5] = [
    Family {
        name: "udts_source_replication_slot_retained_bytes",
        help: "WAL the slot keeps on the source's disk: the current WAL position minus its restart_lsn (absent once lost).",
        value: |w| w.retained_bytes.map(|b| b as f64),
    },
    Family {
        name: "udts_source_replication_slot_lag_bytes",
        help: "The current WAL position minus what the slot's consumer confirmed (confirmed_flush_lsn).",
        value: |w| w.lag_bytes.map(|b| b as f64),
    },
    Family {
        name: "udts_source_replication_slot_active",
        help: "1 while a consumer (UDTS) reads the slot, else 0.",
        value: |w| Some(f64::from(u8::from(w.row.active))),
    },
    Family {
        name: "udts_source_replication_slot_safe_wal_bytes",
        help: "WAL that can still be written before the server invalidates the slot (safe_wal_size, PostgreSQL 13+ with max_slot_wal_keep_size; absent when unbounded or lost).",
        value: |w| w.row.safe_wal_size.map(|b| b as f64),
    },
    Family {
        name: "udts_source_replication_slot_orphaned",
        help: "1 for a watched slot no task will read again (its task is not polled, was deleted, finished, is unrecoverable, or was stopped past UDTS's 7-day resume limit): drop it with pg_drop_replication_slot.",
        value: |w| Some(f64::from(u8::from(w.orphaned))),
    },
];

/// Writes the slot families for `watched`; declared (with no sample yet) as soon as a
/// PostgreSQL source is configured, as every family of the exporter is.
pub fn write_slot_families(
    watched: &[Slot],
    postgres: bool,
    allowed: impl Fn(&str) -> bool,
    out: &mut impl std::fmt::Write,
) {
    if !postgres {
        return;
    }
    let labels = SlotLabels;
    for family in FAMILIES {
        if !allowed(family.name) {
            continue;
        }
        header(out, family.name, family.help);
        for slot in watched {
            if let Some(value) = (family.value)(slot) {
                let _ = writeln!(out, "{}{{{}}} {value}", family.name, labels(slot));
            }
        }
    }
    let name = "udts_source_replication_slot_status";
    if allowed(name) {
        header(
            out,
            name,
            "The slot's wal_status as a state set (PostgreSQL 13+): reserved, extended, unreserved, lost (invalidated: its task can only be redone).",
        );
        for slot in watched {
            let Some(current) = slot.row.wal_status.as_deref() else {
                continue;
            };
            for status in WAL_STATUSES {
                let _ = writeln!(
                    out,
                    "{name}{{{},status=\"{status}\"}} {}",
                    labels(slot),
                    u8::from(current == status)
                );
            }
        }
    }
    let name = "udts_source_replication_slot_info";
    if allowed(name) {
        header(
            out,
            name,
            "Always 1: the watched slot, the task it belongs to (empty when none is known), its output plugin and database.",
        );
        for slot in watched {
            let _ = writeln!(
                out,
                "{name}{{{},task_id=\"{}\",plugin=\"{}\",database=\"{}\"}} 1",
                labels(slot),
                Label(slot.task_id.as_deref().unwrap_or("")),
                Label(slot.row.plugin.as_deref().unwrap_or("")),
                Label(slot.row.database.as_deref().unwrap_or("")),
            );
        }
    }
}

/// A slot's `source` and `slot` labels, written as they are formatted.
struct SlotLabels<'a>(&'a Slot);

impl std::fmt::Display for SlotLabels<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "source=\"{}\",slot=\"{}\"",
            Label(&self.0.source[..]),
            Label(&self.0.row.name)
        )
    }
}
