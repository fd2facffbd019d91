//! Source lag at scale: 1,000 tasks over 20 `[[sources]]` (all on one real MariaDB, as root),
//! polled every second for `CYCLES` cycles while a writer keeps the binlog moving. Prints the
//! statements each source costs per cycle (the server's own `Questions` counter, the exporter's
//! connection set-up excluded), the render cost of the lag families, and the bound on the head
//! samples each source keeps. Run with `cargo bench --bench sources` (needs root and
//! mariadb-server); results go to BENCHMARKS.md by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::mariadb::{MariaDb, MONITOR_PASSWORD};
use serde_json::json;
use udts_exporter::config::{SourceConfig, TlsMode};
use udts_exporter::simulator::{Behaviour, SimTask};
use udts_exporter::source::{HeadSample, HeadSamples};

const TASKS: usize = 1000;
const SOURCES: usize = 20;
const CYCLES: u64 = 20;

fn questions(db: &MariaDb) -> u64 {
    db.sql("SHOW GLOBAL STATUS LIKE 'Questions'")[0][1]
        .parse()
        .unwrap()
}

#[tokio::main]
async fn main() {
    if !common::mariadb::available() {
        return;
    }
    let db = MariaDb::start(true);
    db.write(10);
    let (file, position) = db.head();
    let gtid = db.gtid();
    let tasks: Vec<SimTask> = (0..TASKS)
        .map(|i| {
            SimTask::new(
                &format!("udts-{i:05}"),
                Behaviour::Fixed(json!({"Status": "Syncing", "Sync": {
                    "BinlogName": file, "BinlogPos": position, "BinlogGTID": gtid}})),
            )
        })
        .collect();
    let password_file = db.password_file(MONITOR_PASSWORD);
    let harness = common::start_with(tasks, common::PRIVATE_KEY, |config| {
        config.api.concurrency = 32;
        config.sources = (0..SOURCES)
            .map(|s| SourceConfig {
                name: format!("source-{s:02}"),
                url: db.url("udts_monitor"),
                password_file: Some(password_file.clone()),
                password_env: None,
                tls: TlsMode::Disabled,
                ca_file: None,
                tasks: (0..TASKS)
                    .filter(|i| i % SOURCES == s)
                    .map(|i| format!("udts-{i:05}"))
                    .collect(),
                task_name_regex: None,
                timeout: None,
                slots: Default::default(),
                slot_name_regex: None,
            })
            .collect();
    })
    .await;
    // Every source connected and read at least once.
    common::scrape_until(harness.exporter, "every source up", |text| {
        common::family(text, "udts_source_up")
            .values()
            .filter(|v| **v == 1.0)
            .count()
            == SOURCES
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let rounds = |text: &str| -> f64 {
        common::family(text, "udts_source_query_duration_seconds_count")
            .values()
            .sum()
    };
    let rounds_before = rounds(&common::scrape(harness.exporter).await);
    let before = questions(&db);
    let started = Instant::now();
    let mut own = 1; // the Questions read itself
    while started.elapsed() < Duration::from_secs(CYCLES) {
        db.write(1);
        own += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let exporter = questions(&db) - before - own;
    // The exposition renders at most every 0.5 s: wait for it to show the last rounds.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let done = rounds(&common::scrape(harness.exporter).await) - rounds_before;
    println!(
        "{SOURCES} sources, {TASKS} tasks, {CYCLES} s of one-second cycles: {done} source rounds, {exporter} statements from the exporter, {:.2} per round",
        exporter as f64 / done
    );

    let scrapes = 20;
    let started = Instant::now();
    let mut text = String::new();
    for _ in 0..scrapes {
        text = common::scrape(harness.exporter).await;
    }
    println!(
        "lag series: {} bytes, {} transactions, {} seconds; /metrics p-mean {:.1} ms",
        common::family(&text, "udts_task_source_lag_bytes").len(),
        common::family(&text, "udts_task_source_lag_transactions").len(),
        common::family(&text, "udts_task_source_lag_seconds").len(),
        started.elapsed().as_secs_f64() * 1000.0 / scrapes as f64
    );
    println!(
        "head samples: at most {} per source x {} bytes = {} KiB per source, {} KiB for {SOURCES} sources",
        HeadSamples::CAPACITY,
        std::mem::size_of::<HeadSample>(),
        HeadSamples::CAPACITY * std::mem::size_of::<HeadSample>() / 1024,
        SOURCES * HeadSamples::CAPACITY * std::mem::size_of::<HeadSample>() / 1024,
    );
}
