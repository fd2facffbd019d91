//! The source's answers (`SHOW BINARY LOGS`, the head) and a task's binlog file and position,
//! into the task's lag: never a panic; lag bytes never exceed what the source retains.
//! Input: the head file and position, then `name size` per retained file, then the task's file
//! and position, one per line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use udts_exporter::api::model::SyncData;
use udts_exporter::source::lag::task_lag;
use udts_exporter::source::{split_binlog_name, BinlogReading, SourceSnapshot};

fn pair(line: &str) -> Option<(String, u64)> {
    let (name, number) = line.rsplit_once(' ')?;
    Some((name.to_string(), number.parse().ok()?))
}

fuzz_target!(|text: &str| {
    let mut lines: Vec<&str> = text.lines().collect();
    let _ = lines.first().map(|l| split_binlog_name(l));
    if lines.len() < 2 {
        return;
    }
    let Some((task_file, task_position)) = lines.pop().and_then(pair) else {
        return;
    };
    let Some((head_file, head_position)) = pair(lines[0]) else {
        return;
    };
    let files: Vec<(String, u64)> = lines[1..].iter().filter_map(|l| pair(l)).collect();
    let reading = BinlogReading {
        head_file,
        head_position,
        files,
        gtid_text: None,
    };
    let Ok(parsed) = reading.parse() else {
        return;
    };
    // What the exporter says the source retains (udts_source_binlog_retained_bytes).
    let retained: u64 = parsed
        .files
        .iter()
        .map(|(_, size)| *size)
        .fold(0, u64::saturating_add);
    let snapshot = SourceSnapshot::of(parsed, 1.8e9);
    let sync = SyncData {
        binlog_name: Some(task_file),
        binlog_pos: Some(task_position as f64),
        binlog_gtid: None,
    };
    if let Ok(lag) = task_lag(&snapshot, &sync, 1.8e9) {
        if let Some(bytes) = lag.bytes {
            assert!(
                bytes <= retained,
                "lag {bytes} over the {retained} bytes retained"
            );
        }
    }
});
