//! A simulated PostgreSQL source for `demo`, behind the same reader interface as the real
//! client: its WAL position advances at [`WAL_BYTES_PER_SECOND`]; it has the slot of the demo's
//! paused task (`udts_demo_paused`, unread since the pause, so it retains more WAL every
//! second) and one left behind by a deleted task (`udts_demo_gone_7c1e`, orphaned), both
//! bounded by a `max_slot_wal_keep_size` of [`KEEP_BYTES`].

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use crate::source::postgres::{SlotRow, WalReading};
use crate::source::{BinlogReader, Reading, SourceError};

/// WAL the simulated source writes a second: 80 KiB, about 0.27 GiB an hour.
pub const WAL_BYTES_PER_SECOND: f64 = 80.0 * 1024.0;

/// Its `max_slot_wal_keep_size`: 48 GiB.
pub const KEEP_BYTES: i64 = 48 << 30;

/// How long before the demo's start the paused task stopped reading its slot.
pub const PAUSED_FOR: f64 = 6.0 * 86_400.0 + 2.0 * 3_600.0;

/// A PostgreSQL source whose WAL is a function of the time since its epoch.
pub struct SimulatedPostgres {
    started: Instant,
}

impl SimulatedPostgres {
    /// A source whose paused slot stopped `PAUSED_FOR` before `started`.
    pub fn new(started: Instant) -> Self {
        Self { started }
    }

    /// The reading at `t` seconds after the epoch.
    pub fn reading_at(t: f64) -> WalReading {
        let position = |t: f64| ((PAUSED_FOR + 3_600.0 + t) * WAL_BYTES_PER_SECOND) as u64;
        let lsn = position(t);
        let slot = |name: &str, since: f64| {
            let held = position(since);
            let retained = lsn.saturating_sub(held) as i64;
            SlotRow {
                name: name.into(),
                plugin: Some("test_decoding".into()),
                slot_type: "logical".into(),
                database: Some("orders".into()),
                active: false,
                restart_lsn: Some(held),
                confirmed_flush_lsn: Some(held),
                wal_status: Some(
                    if retained > 1 << 30 {
                        "extended"
                    } else {
                        "reserved"
                    }
                    .into(),
                ),
                safe_wal_size: Some(KEEP_BYTES - retained),
            }
        };
        WalReading {
            skipped: Vec::new(),
            lsn,
            slots: vec![
                slot("udts_demo_gone_7c1e", -3.0 * 3_600.0),
                slot("udts_demo_paused", -PAUSED_FOR),
            ],
        }
    }
}

impl BinlogReader for SimulatedPostgres {
    fn read(&mut self) -> Pin<Box<dyn Future<Output = Result<Reading, SourceError>> + Send + '_>> {
        let reading = Self::reading_at(self.started.elapsed().as_secs_f64());
        Box::pin(async move { Ok(Reading::Wal(reading)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paused_slot_retains_what_was_written_since_the_pause() {
        let reading = SimulatedPostgres::reading_at(60.0);
        let paused = &reading.slots[1];
        let retained = reading.lsn - paused.restart_lsn.unwrap();
        let expected = (PAUSED_FOR + 60.0) * WAL_BYTES_PER_SECOND;
        assert!(
            (retained as f64 - expected).abs() <= 1.0,
            "{retained} vs {expected}"
        );
        assert!(paused.safe_wal_size.unwrap() > 0);
    }
}
