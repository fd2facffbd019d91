//! A simulated MySQL source for `demo`, behind the same [`BinlogReader`] interface as the real
//! client: its head advances at [`BINLOG_BYTES_PER_SECOND`], rotates a file every minute and
//! keeps the last `retained_files`, exactly the binlog the simulated MySQL tasks follow.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use super::lifecycle::{
    binlog_head_at, BINLOG_BYTES_PER_SECOND, BINLOG_FILE_SECONDS, FIRST_BINLOG_FILE, SOURCE_UUID,
};
use crate::source::{BinlogReader, BinlogReading, Reading, SourceError};

/// A source whose binlog is a function of the time since its epoch.
pub struct SimulatedSource {
    /// When `t = age` was.
    started: Instant,
    /// Seconds of binlog already written at `started`.
    age: f64,
    /// Files kept; older ones are purged.
    retained_files: u64,
}

impl SimulatedSource {
    /// A source that had written `age` seconds of binlog when `started`.
    pub fn new(started: Instant, age: f64, retained_files: u64) -> Self {
        Self {
            started,
            age,
            retained_files: retained_files.max(1),
        }
    }

    /// The reading at `t` seconds after the epoch.
    pub fn reading_at(&self, t: f64) -> BinlogReading {
        let (head, position, gtid) = binlog_head_at(t);
        let full_file = 4 + (BINLOG_FILE_SECONDS * BINLOG_BYTES_PER_SECOND) as u64;
        let oldest = head
            .saturating_sub(self.retained_files - 1)
            .max(FIRST_BINLOG_FILE);
        let files = (oldest..=head)
            .map(|index| {
                let size = if index == head { position } else { full_file };
                (format!("mysql-bin.{index:06}"), size)
            })
            .collect();
        BinlogReading {
            head_file: format!("mysql-bin.{head:06}"),
            head_position: position,
            files,
            gtid_text: Some(format!("{SOURCE_UUID}:1-{gtid}")),
        }
    }
}

impl BinlogReader for SimulatedSource {
    fn read(&mut self) -> Pin<Box<dyn Future<Output = Result<Reading, SourceError>> + Send + '_>> {
        let t = self.age + self.started.elapsed().as_secs_f64();
        let reading = self.reading_at(t);
        Box::pin(async move { Ok(Reading::Binlog(reading)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulated_binlog_rotates_and_purges() {
        let source = SimulatedSource::new(Instant::now(), 0.0, 3);
        let reading = source.reading_at(150.0);
        assert_eq!(reading.head_file, "mysql-bin.000014");
        assert_eq!(reading.head_position, 4 + 30 * 20_000);
        let names: Vec<&str> = reading.files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["mysql-bin.000012", "mysql-bin.000013", "mysql-bin.000014"]
        );
        let reading = source.reading_at(600.0);
        assert_eq!(reading.files.len(), 3);
        assert_eq!(reading.files[0].0, "mysql-bin.000020");
        assert_eq!(reading.files[2].1, reading.head_position);
    }
}
