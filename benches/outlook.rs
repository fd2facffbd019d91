//! Outlook benchmark: what the cut-over tracker costs at 10,000 tasks. Feeds the real
//! `Tracker` the renders a running exporter would (every task polled each time, all mapped to
//! one source, its windows filled past their bound) and reports the resident memory it adds and
//! the time of one `observe` (which runs inside every render). Run with
//! `cargo bench --bench outlook`; results go to BENCHMARKS.md by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use udts_exporter::api::model::{StatusData, SyncData};
use udts_exporter::config::ExpositionOptions;
use udts_exporter::monitor::MonitorSnapshot;
use udts_exporter::outlook::Tracker;
use udts_exporter::source::lag::{MappedLag, SourceLags, TaskLag};
use udts_exporter::source::{BinlogReading, SourceSnapshot};
use udts_exporter::state::TaskState;
use udts_exporter::task::TaskSpec;

const TASKS: usize = 10_000;
const RENDERS: u64 = 60;

fn main() {
    let pid = std::process::id();
    let rss = || common::proc_status_kib(pid, "VmRSS:");
    let options = ExpositionOptions {
        poll_interval: Duration::from_secs(5),
        ..ExpositionOptions::default()
    };
    let specs: Vec<TaskSpec> = (0..TASKS)
        .map(|i| TaskSpec::new(&format!("udts-bench-{i:06}")))
        .collect();
    let start = Instant::now();
    // The inputs built once first, so their own allocations (task states, lags) are in the
    // baseline and what the tracker keeps (and the outlooks a render holds) is measured.
    drop(inputs(&specs, 0));
    let mut tracker = Tracker::default();
    let before = rss();
    let mut times = Vec::new();
    for render in 0..RENDERS {
        let unix = 1_800_000_000.0 + render as f64 * 5.0;
        let (tasks, lags, sources) = inputs(&specs, render);
        let now = start + Duration::from_secs(render * 5);
        let began = Instant::now();
        let outlooks = tracker.observe(
            &tasks,
            &lags,
            &sources,
            &MonitorSnapshot::default(),
            &options,
            now,
            unix,
        );
        times.push(began.elapsed());
        assert_eq!(outlooks.len(), TASKS);
    }
    let after = rss();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "tasks {TASKS}, renders {RENDERS}: tracker adds {} KiB RSS ({} bytes per task); \
         observe p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        after.saturating_sub(before),
        after.saturating_sub(before) * 1024 / TASKS as u64,
        ms(times[times.len() / 2]),
        ms(times[times.len() * 99 / 100]),
        ms(times[times.len() - 1]),
    );
    assert_eq!(tracker.len(), TASKS);
}

type Inputs = (
    Vec<Arc<TaskState>>,
    SourceLags,
    HashMap<String, Arc<SourceSnapshot>>,
);

/// One render's snapshot: every task polled again, its position 1,000 + i bytes behind a head
/// that advanced 100,000 bytes.
fn inputs(specs: &[TaskSpec], render: u64) -> Inputs {
    let unix = 1_800_000_000.0 + render as f64 * 5.0;
    let written = 1_000_000 + render * 100_000;
    let reading = BinlogReading {
        head_file: "mysql-bin.000012".into(),
        head_position: written,
        files: vec![("mysql-bin.000012".into(), written)],
        gtid_text: None,
    };
    let source = Arc::new(SourceSnapshot {
        written_total: written,
        reading: Some(Arc::new(reading.parse().unwrap())),
        ..SourceSnapshot::default()
    });
    let sources = HashMap::from([("orders".to_string(), source)]);
    let tasks: Vec<Arc<TaskState>> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let data = StatusData {
                status: Some("Syncing".into()),
                cur_retry_count: Some(0.0),
                sync: Some(SyncData {
                    binlog_name: Some("mysql-bin.000012".into()),
                    binlog_pos: Some((written - 1_000 - i as u64) as f64),
                    binlog_gtid: None,
                }),
                ..StatusData::default()
            };
            Arc::new(TaskState::new(spec.clone()).after_poll(Ok(data), unix))
        })
        .collect();
    let name: Arc<str> = Arc::from("orders");
    let lags = (0..TASKS)
        .map(|i| {
            Some(MappedLag {
                source: Arc::clone(&name),
                lag: Ok(TaskLag {
                    bytes: Some(1_000 + i as u64),
                    files: 0,
                    transactions: None,
                    seconds: Some(1.0),
                    retained: true,
                    at_oldest_file: false,
                }),
            })
        })
        .collect();
    (tasks, lags, sources)
}
