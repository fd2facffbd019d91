//! How far behind its MySQL source a task is: bytes, files, transactions and seconds, from the
//! task's `Sync` position and the source's last reading; and the numbers a lag is made of,
//! whichever the source. Pure functions of their inputs: which task maps to which source is the
//! render's derivation (`derive`), not this module's.

use super::gtid::Gtids;
use super::{split_binlog_name, SourceSnapshot};
use crate::api::model::SyncData;

/// A task's lag behind its source.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskLag {
    /// Binlog bytes written after the task's position; absent once its file is purged (its
    /// size is no longer known).
    pub bytes: Option<u64>,
    /// Head file index minus the task's file index.
    pub files: u64,
    /// Executed transactions the task's `BinlogGTID` does not hold; absent without GTIDs on
    /// either side.
    pub transactions: Option<u64>,
    /// How long ago the source wrote the first event the task has not read; absent when the
    /// head passed the task's position before the exporter's first sample.
    pub seconds: Option<f64>,
    /// Whether the task's binlog file is still on the source.
    pub retained: bool,
    /// Whether the task's binlog file is the oldest the source keeps: the next purge takes it.
    pub at_oldest_file: bool,
}

/// A task's `[[sources]]` entry and its lag behind it, or why it has none.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedLag {
    /// The `[[sources]]` name (shared by every task of the source, not copied per task).
    pub source: std::sync::Arc<str>,
    /// The lag, or why there is none.
    pub lag: Result<TaskLag, LagProblem>,
}

/// Each task's [`MappedLag`], in task order (`None` for a task mapped to no source); empty
/// when no source is configured.
pub type SourceLags = Vec<Option<MappedLag>>;

/// Why a task mapped to a source has no lag numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LagProblem {
    /// The task reports no binlog file and position (yet).
    NoPosition,
    /// The source has not been read successfully yet.
    SourceUnread,
    /// The task's binlog file has another base name than the source's (after a failover, or
    /// the task is mapped to the wrong source).
    ForeignFile,
    /// No watched replication slot of its PostgreSQL source is known to be the task's.
    NoSlot,
}

impl LagProblem {
    /// The `reason` label of `udts_source_tasks_without_lag`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NoPosition => "no_position",
            Self::SourceUnread => "source_unread",
            Self::ForeignFile => "foreign_binlog_file",
            Self::NoSlot => "no_slot",
        }
    }

    /// What it means, for the page and `check`.
    pub fn explanation(self) -> &'static str {
        match self {
            Self::NoPosition => "the task reports no binlog position yet",
            Self::SourceUnread => "the source has not been read yet",
            Self::ForeignFile => {
                "the task's binlog file is not one of this source's (failover, or a wrong \
                 [[sources]] mapping)"
            }
            Self::NoSlot => {
                "no replication slot of the source is known to be this task's: name it under \
                 slots on the source"
            }
        }
    }
}

/// The lag of a task at `sync` behind `source`, as of `now` (unix seconds).
pub fn task_lag(source: &SourceSnapshot, sync: &SyncData, now: f64) -> Result<TaskLag, LagProblem> {
    let (name, position) = match (&sync.binlog_name, sync.binlog_pos) {
        (Some(name), Some(position)) if position >= 0.0 => (name, position as u64),
        _ => return Err(LagProblem::NoPosition),
    };
    let Some(reading) = &source.reading else {
        return Err(LagProblem::SourceUnread);
    };
    let Some((base, index)) = split_binlog_name(name) else {
        return Err(LagProblem::ForeignFile);
    };
    if base != reading.base {
        return Err(LagProblem::ForeignFile);
    }
    let head = (reading.head_index, reading.head_position);
    let retained = reading.files.iter().any(|(i, _)| *i == index);
    let at_oldest_file = reading
        .files
        .first()
        .is_some_and(|(oldest, _)| *oldest == index);
    let transactions = match (&reading.gtids, sync.binlog_gtid.as_deref()) {
        (Some(Ok(executed)), Some(text)) if !text.trim().is_empty() => Gtids::parse(text)
            .ok()
            .and_then(|held| executed.missing_from(&held)),
        _ => None,
    };
    // A task read after the source's last round may be past the head that round saw: it is at
    // the head, as far as the exporter can tell.
    if (index, position) >= head {
        return Ok(TaskLag {
            bytes: Some(0),
            files: 0,
            transactions,
            seconds: Some(0.0),
            retained,
            at_oldest_file,
        });
    }
    let bytes = retained.then(|| {
        let before_head: u64 = reading
            .files
            .iter()
            .filter(|(i, _)| (index..reading.head_index).contains(i))
            .map(|(_, size)| *size)
            .fold(0, u64::saturating_add);
        before_head
            .saturating_add(reading.head_position)
            .saturating_sub(position)
    });
    let seconds = bytes.and_then(|bytes| seconds_behind(source, bytes, now));
    Ok(TaskLag {
        bytes,
        files: reading.head_index - index,
        transactions,
        seconds,
        retained,
        at_oldest_file,
    })
}

/// How long ago `source` wrote the byte `bytes` before its head, from its head samples; 0 at
/// the head, `None` when the head passed it before the first sample.
pub fn seconds_behind(source: &SourceSnapshot, bytes: u64, now: f64) -> Option<f64> {
    if bytes == 0 {
        return Some(0.0);
    }
    let written_at = source
        .samples
        .passed_at(source.written_total.checked_sub(bytes)?)?;
    Some((now - written_at).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::BinlogReading;

    /// What MySQL 8.4 answers (`SHOW BINARY LOG STATUS`, `SHOW BINARY LOGS`,
    /// `@@global.gtid_executed` with its newline after the comma), recorded.
    fn mysql84() -> SourceSnapshot {
        let reading = BinlogReading {
            head_file: "binlog.000042".into(),
            head_position: 1_500,
            files: vec![
                ("binlog.000040".into(), 10_000),
                ("binlog.000041".into(), 20_000),
                ("binlog.000042".into(), 1_500),
            ],
            gtid_text: Some(
                "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-1000,\n8a94f357-aab4-11df-86ab-c80aa9429562:1-12"
                    .into(),
            ),
        };
        SourceSnapshot::of(reading.parse().unwrap(), 100.0)
    }

    fn sync(file: &str, position: f64, gtid: &str) -> SyncData {
        SyncData {
            binlog_name: Some(file.into()),
            binlog_pos: Some(position),
            binlog_gtid: Some(gtid.into()),
        }
    }

    #[test]
    fn a_task_two_files_back_lags_the_rest_of_its_file_and_everything_after() {
        let lag = task_lag(
            &mysql84(),
            &sync(
                "binlog.000040",
                4_000.0,
                "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-900,8a94f357-aab4-11df-86ab-c80aa9429562:1-12",
            ),
            100.0,
        )
        .unwrap();
        assert_eq!(lag.bytes, Some(6_000 + 20_000 + 1_500));
        assert_eq!(lag.files, 2);
        assert_eq!(lag.transactions, Some(100));
        assert!(lag.retained && lag.at_oldest_file);
        // One sample only: the head passed the task before the exporter watched.
        assert_eq!(lag.seconds, None);
    }

    #[test]
    fn at_the_head_is_zero_and_a_purged_file_has_no_bytes() {
        let at_head = task_lag(&mysql84(), &sync("binlog.000042", 1_500.0, ""), 500.0).unwrap();
        assert_eq!(
            (at_head.bytes, at_head.files, at_head.seconds),
            (Some(0), 0, Some(0.0))
        );
        assert_eq!(at_head.transactions, None, "no GTID on the task's side");
        let purged = task_lag(&mysql84(), &sync("binlog.000039", 100.0, ""), 100.0).unwrap();
        assert_eq!(
            (purged.bytes, purged.files, purged.retained),
            (None, 3, false)
        );
        assert_eq!(
            task_lag(&mysql84(), &sync("mysql-bin.000042", 4.0, ""), 100.0),
            Err(LagProblem::ForeignFile)
        );
        let no_position = SyncData::default();
        assert_eq!(
            task_lag(&mysql84(), &no_position, 100.0),
            Err(LagProblem::NoPosition)
        );
    }

    #[test]
    fn an_answer_missing_its_head_file_never_lags_more_than_is_retained() {
        // Found by the binlog_lag fuzz target: the head not among SHOW BINARY LOGS, and a file
        // listed past the head.
        let reading = BinlogReading {
            head_file: "binlog.000041".into(),
            head_position: 20_000,
            files: vec![
                ("binlog.0000042".into(), 500),
                ("binlog.0".into(), 40_001_500),
            ],
            gtid_text: None,
        };
        let parsed = reading.parse().unwrap();
        assert_eq!(parsed.files, [(0, 40_001_500), (41, 20_000)]);
        let retained: u64 = parsed.files.iter().map(|(_, size)| size).sum();
        let snapshot = SourceSnapshot::of(parsed, 100.0);
        let lag = task_lag(&snapshot, &sync("binlog.0", 4_000.0, ""), 100.0).unwrap();
        assert_eq!(lag.bytes, Some(40_001_500 - 4_000 + 20_000));
        assert!(lag.bytes.unwrap() <= retained);
    }
}
