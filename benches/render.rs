//! Render benchmark: one render of 10,000 tasks and the task views prepared from it, timed and
//! with their heap allocations counted. The tasks are mixed (full loads, MySQL tasks behind a
//! `[[sources]]` database, PostgreSQL tasks with their slots, UDTS's monitoring samples for
//! every active task, paused tasks with a resume deadline, finished ones), so every derivation
//! of a render runs. Run with `cargo bench --bench render`; results go to BENCHMARKS.md by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use udts_exporter::api::model::{Progress, StatusData, SyncData};
use udts_exporter::api::monitor::MonitorMetric;
use udts_exporter::config::Config;
use udts_exporter::exposition::render;
use udts_exporter::metrics::ExporterMetrics;
use udts_exporter::monitor::MonitorBoard;
use udts_exporter::outlook::Tracker;
use udts_exporter::source::postgres::{SlotRow, WalReading};
use udts_exporter::source::{BinlogReading, SourceBoard, SourceSnapshot};
use udts_exporter::state::Store;
use udts_exporter::task::TaskSpec;
use udts_exporter::time::unix_now;

/// DHAT's allocator: it counts every allocation while a profiler runs (the counted pass only;
/// the timed renders run before it starts).
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Allocations and bytes allocated by `work`.
fn counted<T>(work: impl FnOnce() -> T) -> (T, u64, u64) {
    let before = dhat::HeapStats::get();
    let value = work();
    let after = dhat::HeapStats::get();
    (
        value,
        after.total_blocks - before.total_blocks,
        after.total_bytes - before.total_bytes,
    )
}

fn timed<T>(work: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let value = work();
    (value, started.elapsed())
}

const TASKS: usize = 10_000;
const RENDERS: usize = 20;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::env::set_var("BENCH_SOURCE_PASSWORD", "unused");
    std::fs::write(
        &config,
        r#"
[api]
public_key = "bench-public"
private_key = "bench-private"
[monitor]
enabled = true
[[tasks]]
id = "udts-unused"
[[sources]]
name = "orders"
url = "mysql://monitor@127.0.0.1:3306"
password_env = "BENCH_SOURCE_PASSWORD"
task_name_regex = "^orders-"
[[sources]]
name = "ledger"
url = "postgresql://monitor@127.0.0.1:5432/postgres"
password_env = "BENCH_SOURCE_PASSWORD"
task_name_regex = "^ledger-"
"#,
    )
    .unwrap();
    let settings = Config::load(Some(&config)).unwrap().resolve().unwrap();
    let options = std::sync::Arc::new(settings.exposition.clone());

    let now = unix_now();
    let store = Store::new();
    let specs: Vec<TaskSpec> = (0..TASKS).map(spec).collect();
    store.set_tasks(specs.iter().cloned().map(std::sync::Arc::new).collect());
    let monitor = MonitorBoard::default();
    monitor.set_interval(Some(Duration::from_secs(60)));
    for (i, spec) in specs.iter().enumerate() {
        let data = data(i);
        let active = matches!(data.status.as_deref(), Some("Syncing" | "Loading"));
        store.update(&spec.key(), |s| {
            s.after_poll(Ok(data), now - 5.0)
                .with_status_since(now - 3.0 * 86_400.0)
        });
        if active {
            for metric in MonitorMetric::ALL {
                monitor.keep(spec.key(), metric, now - 30.0, 3.0);
            }
        }
    }
    let sources = SourceBoard::default();
    let reading = BinlogReading {
        head_file: "mysql-bin.000012".into(),
        head_position: 5_000_000,
        files: vec![("mysql-bin.000012".into(), 5_000_000)],
        gtid_text: None,
    }
    .parse()
    .unwrap();
    sources.update("orders", |_| SourceSnapshot::of(reading.clone(), now - 1.0));
    let slots = (0..TASKS)
        .filter(|i| i % 5 == 2)
        .map(|i| SlotRow {
            name: format!("udts_ledger_{i:06}"),
            plugin: Some("pgoutput".into()),
            slot_type: "logical".into(),
            database: Some("ledger".into()),
            active: i % 3 != 0,
            restart_lsn: Some(1_000_000),
            confirmed_flush_lsn: Some(1_500_000),
            wal_status: Some("reserved".into()),
            safe_wal_size: Some(1 << 30),
        })
        .collect::<Vec<_>>();
    for (at, lsn) in [(now - 60.0, 2_000_000), (now - 1.0, 2_600_000)] {
        let wal = WalReading {
            skipped: Vec::new(),
            lsn,
            slots: slots.clone(),
        };
        sources.update("ledger", |previous| previous.after_wal(wal.clone(), at));
    }

    let metrics = ExporterMetrics::new();
    let mut tracker = Tracker::default();
    let (mut renders, mut views) = (Vec::new(), Vec::new());
    for _ in 0..RENDERS {
        let (exposition, took) =
            timed(|| render(&store, &sources, &monitor, &metrics, &options, &mut tracker));
        renders.push(took);
        let (prepared, took) = timed(|| exposition.prepared());
        assert_eq!(prepared.views.tasks.len(), TASKS);
        views.push(took);
    }
    // Counted once the tracker's windows are warm; DHAT slows what it counts, so not timed.
    let _profiler = std::mem::ManuallyDrop::new(dhat::Profiler::builder().testing().build());
    let (exposition, render_allocations, render_bytes) =
        counted(|| render(&store, &sources, &monitor, &metrics, &options, &mut tracker));
    let (_, view_allocations, view_bytes) = counted(|| exposition.prepared());
    let ms = |d: &mut Vec<Duration>| {
        d.sort();
        format!(
            "p50 {:.1} ms, max {:.1} ms",
            d[d.len() / 2].as_secs_f64() * 1000.0,
            d[d.len() - 1].as_secs_f64() * 1000.0
        )
    };
    println!(
        "tasks {TASKS}, {RENDERS} renders: render {}, {render_allocations} allocations ({:.1} \
         per task), {:.1} MiB allocated; views and JSON {}, {view_allocations} allocations \
         ({:.1} per task), {:.1} MiB allocated",
        ms(&mut renders),
        render_allocations as f64 / TASKS as f64,
        render_bytes as f64 / 1_048_576.0,
        ms(&mut views),
        view_allocations as f64 / TASKS as f64,
        view_bytes as f64 / 1_048_576.0,
    );
}

/// Task `i`: a fifth each of MySQL tasks syncing behind `orders`, full loads, PostgreSQL tasks
/// with a slot on `ledger`, paused tasks, and finished ones.
fn spec(i: usize) -> TaskSpec {
    let name = match i % 5 {
        0 => "orders-sync",
        2 => "ledger-sync",
        _ => "other",
    };
    let mut spec = TaskSpec::new(&if i % 5 == 2 {
        format!("udts-ledger-{i:06}")
    } else {
        format!("udts-bench-{i:06}")
    });
    spec.name = Some(name.into());
    spec
}

fn data(i: usize) -> StatusData {
    let status = ["Syncing", "Loading", "Syncing", "Stopped", "Done"][i % 5];
    StatusData {
        status: Some(status.into()),
        cur_retry_count: Some(0.0),
        max_retry_count: Some(3.0),
        progress: (i % 5 == 1).then(|| Progress {
            percentage: Some(40.0),
            cur_count: Some(4_000.0),
            total_count: Some(10_000.0),
            ..Progress::default()
        }),
        sync: (i % 5 == 0).then(|| SyncData {
            binlog_name: Some("mysql-bin.000012".into()),
            binlog_pos: Some(4_000_000.0 + i as f64),
            binlog_gtid: None,
        }),
        ..StatusData::default()
    }
}
