//! A source's answers round after round (`SHOW BINARY LOGS` and the head, as `arbitrary`
//! structures: binlog names that look like the server's, rotations, purges, resets, a server
//! swapped behind the same address) folded into the source's snapshot the way the source loop
//! folds them, and a task's position read against each snapshot. What must hold:
//! never a panic or a hang; the bytes written only grow; a lag never exceeds what the source
//! retains; a lag in seconds is never negative nor older than the first sample.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use udts_exporter::api::model::SyncData;
use udts_exporter::source::lag::task_lag;
use udts_exporter::source::{BinlogReading, SourceSnapshot};

/// A binlog file name: mostly the server's `<base>.<six digits>`, sometimes anything.
#[derive(Debug, Arbitrary)]
enum Name {
    Numbered { base: Base, index: u64 },
    Raw(String),
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Base {
    MysqlBin,
    MariadbBin,
    Dotted,
}

impl Name {
    fn text(&self) -> String {
        match self {
            Self::Numbered { base, index } => {
                let base = match base {
                    Base::MysqlBin => "mysql-bin",
                    Base::MariadbBin => "mariadb-bin",
                    Base::Dotted => "host.example.bin",
                };
                format!("{base}.{index:06}")
            }
            Self::Raw(text) => text.clone(),
        }
    }
}

#[derive(Debug, Arbitrary)]
struct Round {
    head: Name,
    head_position: u64,
    files: Vec<(Name, u64)>,
    /// Seconds since the previous round (the loop's clock only moves forward).
    after: u16,
}

#[derive(Debug, Arbitrary)]
struct Input {
    rounds: Vec<Round>,
    task_file: Name,
    task_position: u32,
}

fuzz_target!(|input: Input| {
    let mut snapshot = SourceSnapshot::default();
    let mut now = 1.8e9;
    let first = now;
    let sync = SyncData {
        binlog_name: Some(input.task_file.text()),
        binlog_pos: Some(f64::from(input.task_position)),
        binlog_gtid: None,
    };
    for round in input.rounds.iter().take(64) {
        now += f64::from(round.after);
        let reading = BinlogReading {
            head_file: round.head.text(),
            head_position: round.head_position,
            files: round
                .files
                .iter()
                .take(64)
                .map(|(name, size)| (name.text(), *size))
                .collect(),
            gtid_text: None,
        };
        let Ok(parsed) = reading.parse() else {
            continue;
        };
        let retained = parsed
            .files
            .iter()
            .map(|(_, size)| *size)
            .fold(0, u64::saturating_add);
        let before = snapshot.written_total;
        snapshot = snapshot.after(parsed, now);
        assert!(snapshot.written_total >= before, "the bytes written went back");
        if let Ok(lag) = task_lag(&snapshot, &sync, now) {
            if let Some(bytes) = lag.bytes {
                assert!(bytes <= retained, "lag {bytes} over {retained} retained");
            }
            if let Some(seconds) = lag.seconds {
                assert!(
                    (0.0..=now - first).contains(&seconds),
                    "lag of {seconds} s, {} s after the first round",
                    now - first
                );
            }
        }
    }
});
