//! How far behind its source a task is: bytes, files, transactions and seconds, from the task's
//! `Sync` position and the source's last reading. Pure functions of their inputs.

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
}

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
}

impl LagProblem {
    /// The `reason` label of `udts_source_tasks_without_lag`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NoPosition => "no_position",
            Self::SourceUnread => "source_unread",
            Self::ForeignFile => "foreign_binlog_file",
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
        });
    }
    let bytes = retained.then(|| {
        let before_head: u64 = reading
            .files
            .iter()
            .filter(|(i, _)| (index..reading.head_index).contains(i))
            .map(|(_, size)| size)
            .sum();
        (before_head + reading.head_position).saturating_sub(position)
    });
    let seconds = bytes.and_then(|bytes| {
        if bytes == 0 {
            return Some(0.0);
        }
        let written_at = source
            .samples
            .passed_at(source.written_total.checked_sub(bytes)?)?;
        Some((now - written_at).max(0.0))
    });
    Ok(TaskLag {
        bytes,
        files: reading.head_index - index,
        transactions,
        seconds,
        retained,
    })
}
