//! One round of a PostgreSQL source with 50 watched slots, against a real server (Debian's
//! `postgresql`, as root dropping to `postgres`): the time of a round (the WAL position and
//! `pg_replication_slots`, over the kept-open connection), the statements a round costs (the
//! server's own log of the exporter's session, `log_statement = all`), and the cost of mapping
//! the 50 slots to
//! 1,000 tasks at render time. Run with `cargo bench --bench postgres`; results go to
//! BENCHMARKS.md by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::postgres::{Postgres, MONITOR_PASSWORD};
use udts_exporter::config::{Connection, TlsMode};
use udts_exporter::source::postgres::PostgresReader;
use udts_exporter::source::{BinlogReader, Reading, SourceSnapshot};

const SLOTS: usize = 50;
const ROUNDS: usize = 200;
const TASKS: usize = 1000;

/// Statements the server logged for backend `pid`.
fn logged(db: &Postgres, pid: &str) -> usize {
    let tag = format!("[{pid}]");
    db.log()
        .lines()
        .filter(|l| l.contains(&tag) && (l.contains("statement: ") || l.contains("execute ")))
        .count()
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") || !common::postgres::available() {
        return;
    }
    let db = Postgres::start_with("-c log_statement=all");
    for i in 0..SLOTS {
        db.sql(&format!(
            "SELECT pg_create_logical_replication_slot('udts_bench_{i:06}', 'test_decoding')"
        ));
    }
    db.write(1024 * 1024);
    let connection = Connection {
        host: "127.0.0.1".into(),
        port: db.port,
        user: "udts_monitor".into(),
        password: Some(MONITOR_PASSWORD.to_string().into()),
        tls: TlsMode::Disabled,
        ca_pem: None,
    };
    let mut reader = PostgresReader::new(connection, "postgres".into());
    // The first round connects; the rest reuse the connection, as the source loop does.
    let Ok(Reading::Wal(first)) = reader.read().await else {
        panic!("the first round failed");
    };
    assert_eq!(first.slots.len(), SLOTS);
    let pid = db.sql("SELECT pid FROM pg_stat_activity WHERE application_name = 'udts-exporter'");
    let before = logged(&db, &pid);
    let mut times = Vec::with_capacity(ROUNDS);
    let mut last = first;
    for _ in 0..ROUNDS {
        let began = Instant::now();
        let Ok(Reading::Wal(reading)) = reader.read().await else {
            panic!("a round failed");
        };
        times.push(began.elapsed());
        last = reading;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let statements = (logged(&db, &pid) - before) as f64 / ROUNDS as f64;
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;

    // Mapping the slots to tasks at render time: 1,000 tasks, 50 of them with a slot.
    let specs: Vec<Arc<udts_exporter::state::TaskState>> = (0..TASKS)
        .map(|i| {
            Arc::new(udts_exporter::state::TaskState::new(
                udts_exporter::task::TaskSpec::new(&format!("udts-bench-{i:06}")),
            ))
        })
        .collect();
    let mut config = udts_exporter::config::Config::default();
    config.sources = vec![udts_exporter::config::SourceConfig {
        name: "bench-pg".into(),
        url: format!("postgresql://udts_monitor@127.0.0.1:{}/postgres", db.port),
        password_file: None,
        password_env: None,
        tls: TlsMode::Disabled,
        ca_file: None,
        tasks: Vec::new(),
        task_name_regex: None,
        timeout: None,
        slots: Default::default(),
        slot_name_regex: None,
    }];
    config.api.public_key = "bench".into();
    config.api.private_key = Some("bench".into());
    config.discovery.enabled = true;
    let settings = config.resolve().unwrap();
    let snapshot = Arc::new(SourceSnapshot::default().after_wal(last, 0.0));
    let snapshots = HashMap::from([("bench-pg".to_string(), snapshot)]);
    let began = Instant::now();
    let mut owned = 0;
    for _ in 0..100 {
        let watched =
            udts_exporter::slots::watch(&specs, &settings.exposition.sources, &snapshots, 0.0);
        owned = watched.iter().filter(|w| w.task.is_some()).count();
    }
    let mapping = began.elapsed() / 100;
    println!("| PostgreSQL source, {SLOTS} slots | round p50 / p99 / max | statements per round | slots to {TASKS} tasks, per render |");
    println!("|---|---|---|---|");
    println!(
        "| {} | {:.2} / {:.2} / {:.2} ms | {statements:.1} | {:.2} ms ({owned} owned) |",
        std::env::var("UDTS_BENCH_LABEL").unwrap_or_else(|_| "Debian PostgreSQL".into()),
        ms(times[ROUNDS / 2]),
        ms(times[ROUNDS * 99 / 100]),
        ms(times[ROUNDS - 1]),
        mapping.as_secs_f64() * 1000.0
    );
}
