//! Throughput, the catch-up ETA and the cut-over verdict against a real MariaDB (Debian's
//! `mariadb-server`) written at a steady rate, with the task's position on the simulated
//! gateway advanced at a rate the test sets: the exporter's apply rate matches the truth, its
//! catch-up ETA the moment the task actually reaches the head, and the verdict turns ready after
//! `steady_for` within `max_lag` and back within the same scrape as a lag spike. A Redis task is
//! judged by its delay.
//!
//! Every margin comes from what the exporter samples, never a bare percentage: a position is a
//! poll interval old at most, the source's head another, a render follows a change within
//! `RENDER_SPACING`, and the driver moves the position in steps whose longest gap the test
//! measures (a busy machine stretches them). The ETA's margin adds what the rates it divides by
//! were off from the truth over the catch-up (the source's write rate drifts under load), as the
//! README's cut-over section states. Passed 10 runs in a row beside a parallel `cargo build`
//! (BENCHMARKS.md, "Timing tests under load").
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::mariadb::{self, MariaDb, MONITOR_PASSWORD};
use common::*;
use serde_json::{json, Value};
use udts_exporter::config::{Config, SourceConfig, TlsMode};
use udts_exporter::simulator::{Behaviour, SimTask};

/// `[cutover]` of the test: a short window and watch, so the test takes about a minute.
const MAX_LAG: f64 = 3.0;
const STEADY_FOR: Duration = Duration::from_secs(5);
const RATE_WINDOW: Duration = Duration::from_secs(8);
/// The harness's `poll.interval`, which the source loop reads at too.
const INTERVAL: f64 = 1.0;
/// At most how long after a change a render publishes it (renders are spaced by at least 0.5 s).
const RENDER_SPACING: f64 = 0.5;
/// The test's own loops: the driver's and the scrapes' step.
const STEP: Duration = Duration::from_millis(100);

/// Where a global offset (bytes from the start of the oldest file) falls in `files`.
fn place(files: &[(String, u64)], offset: u64) -> (String, u64) {
    let mut start = 0;
    for (name, size) in files {
        if offset < start + size {
            return (name.clone(), offset - start);
        }
        start += size;
    }
    let (name, size) = files.last().unwrap();
    (name.clone(), *size)
}

/// The head as a global offset.
fn head_offset(files: &[(String, u64)]) -> u64 {
    files.iter().map(|(_, size)| size).sum()
}

fn syncing(file: &str, position: u64) -> Behaviour {
    Behaviour::Fixed(json!({"Status": "Syncing", "CurRetryCount": 0,
        "Sync": {"BinlogName": file, "BinlogPos": position}}))
}

fn redis(delay: u64) -> Behaviour {
    Behaviour::Fixed(json!({"Status": "Synced", "CurRetryCount": 0,
        "Progress": {"RedisDelayTime": delay}}))
}

async fn task_json(addr: std::net::SocketAddr, id: &str) -> Value {
    let body = http_get(format!("http://{addr}/api/v1/tasks/{id}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_eta_and_readiness_match_a_real_mariadb() {
    if !mariadb::available() {
        return;
    }
    let db = Arc::new(MariaDb::start(true));
    db.write(5);

    // A steady writer: 20 inserts every 200 ms until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    // The head as the writer leaves it after each batch: the truth the exporter's write rate is
    // held to, over the same span (a busy machine slows the writer down as it goes).
    let heads: Arc<Mutex<Vec<(Instant, u64)>>> = Arc::default();
    // The longest gap between two batches, in ms: how far the head moves in one step.
    let longest_batch = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writer = {
        let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
        let (heads, longest_batch) = (Arc::clone(&heads), Arc::clone(&longest_batch));
        std::thread::spawn(move || {
            let mut last = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                db.write(20);
                heads
                    .lock()
                    .unwrap()
                    .push((Instant::now(), head_offset(&db.binary_logs())));
                longest_batch.fetch_max(last.elapsed().as_millis() as u64, Ordering::Relaxed);
                last = Instant::now();
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    // The source's own write rate, measured from its answers.
    let before = (Instant::now(), head_offset(&db.binary_logs()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let write_rate =
        (head_offset(&db.binary_logs()) - before.1) as f64 / before.0.elapsed().as_secs_f64();
    assert!(write_rate > 1_000.0, "{write_rate} B/s");

    // Binlog history enough to start 40 s of writes behind: one batch of large rows.
    db.sql(&format!(
        "CREATE TABLE t.fill (v LONGTEXT); INSERT INTO t.fill VALUES {}",
        vec![format!("(REPEAT('f', {}))", (write_rate * 5.0) as u64); 10].join(",")
    ));
    // The task starts 40 s of writes behind and applies three times as fast: it closes the gap
    // at twice the write rate, in about 20 s.
    let apply_rate = 3.0 * write_rate;
    let start_offset = head_offset(&db.binary_logs()) - (40.0 * write_rate) as u64;
    let (file, position) = place(&db.binary_logs(), start_offset);
    let tasks = vec![
        SimTask::new("udts-mysql", syncing(&file, position)).mode("incremental"),
        SimTask::new("udts-redis", redis(0)).mode("incremental"),
    ];
    let harness = start_with(tasks, PRIVATE_KEY, |config: &mut Config| {
        config.sources = vec![SourceConfig {
            name: "orders-primary".into(),
            url: db.url("udts_monitor"),
            password_file: Some(db.password_file(MONITOR_PASSWORD)),
            password_env: None,
            tls: TlsMode::Preferred,
            ca_file: None,
            tasks: vec!["udts-mysql".into()],
            task_name_regex: None,
            timeout: Some(Duration::from_secs(2)),
            slots: Default::default(),
            slot_name_regex: None,
        }];
        config.cutover.max_lag = Some(Duration::from_secs_f64(MAX_LAG));
        config.cutover.steady_for = Some(STEADY_FOR);
        config.cutover.rate_window = Some(RATE_WINDOW);
    })
    .await;
    let addr = harness.exporter;

    // The driver: every 100 ms the task's position is where it would be at the apply rate,
    // never past the head; from the head on it follows the head, unless held (the spike).
    let started = Instant::now();
    // When the task reached the head, and the head's offset then.
    let reached: Arc<Mutex<Option<(Instant, u64)>>> = Arc::default();
    // The longest gap between two of the driver's steps, in ms: the skew of a sampled position.
    let longest_step = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let hold = Arc::new(AtomicBool::new(false));
    let driver = {
        let (db, gateway) = (Arc::clone(&db), harness.gateway.clone());
        let (reached, hold, stop) = (Arc::clone(&reached), Arc::clone(&hold), Arc::clone(&stop));
        let longest_step = Arc::clone(&longest_step);
        std::thread::spawn(move || {
            let mut rotated = false;
            let mut last_step = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let step = last_step.elapsed().as_millis() as u64;
                longest_step.fetch_max(step, Ordering::Relaxed);
                last_step = Instant::now();
                if !rotated && started.elapsed() > Duration::from_secs(6) {
                    // A rotation mid-catch-up: throughput counts across it.
                    db.sql("FLUSH BINARY LOGS");
                    rotated = true;
                }
                if !hold.load(Ordering::Relaxed) {
                    let files = db.binary_logs();
                    let head = head_offset(&files);
                    let due = start_offset + (apply_rate * started.elapsed().as_secs_f64()) as u64;
                    if due >= head {
                        reached
                            .lock()
                            .unwrap()
                            .get_or_insert_with(|| (Instant::now(), head));
                    }
                    let (file, position) = place(&files, due.min(head));
                    gateway.set_behaviour("udts-mysql", syncing(&file, position));
                }
                std::thread::sleep(STEP);
            }
        })
    };

    // Once a full window of samples exists: the apply rate, and the ETA it predicts.
    tokio::time::sleep(RATE_WINDOW + Duration::from_secs(3)).await;
    let mysql = task_json(addr, "udts-mysql").await;
    let (asked, head_when_asked) = (Instant::now(), head_offset(&db.binary_logs()));
    let applied = mysql["throughput"]["applied_bytes_per_second"].as_f64();
    let applied = applied.unwrap_or_else(|| panic!("no apply rate yet: {mysql}"));
    // A rate over at least half the window, each end's position as old as the driver's longest
    // step plus a step's request: that much of the window is the rate's own uncertainty.
    let skew = Duration::from_millis(longest_step.load(Ordering::Relaxed)) + STEP;
    let rate_margin = 2.0 * skew.as_secs_f64() / (RATE_WINDOW.as_secs_f64() / 2.0);
    assert!(
        (applied - apply_rate).abs() <= rate_margin * apply_rate,
        "apply rate {applied:.0} B/s, truth {apply_rate:.0} B/s, margin {:.0}%",
        rate_margin * 100.0
    );
    let written = mysql["throughput"]["source_written_bytes_per_second"]
        .as_f64()
        .unwrap();
    // The exporter's rate spans at least half the window and at most all of it, ending up to an
    // interval and a render before it was asked: the truth is the head's growth over one of
    // those spans, each end off by at most one batch of the writer.
    let truth = |span: Duration, end_before: Duration| {
        let heads = heads.lock().unwrap();
        let at = |t: Instant| heads.iter().rev().find(|(when, _)| *when <= t).map(|h| h.1);
        let end = asked.checked_sub(end_before)?;
        let start = end.checked_sub(span)?;
        Some((at(end)?.saturating_sub(at(start)?)) as f64 / span.as_secs_f64())
    };
    let mut truths = Vec::new();
    for half_seconds in (RATE_WINDOW.as_secs() as u32)..=(2 * RATE_WINDOW.as_secs() as u32) {
        for end_tenths in 0..=((INTERVAL + RENDER_SPACING) * 10.0) as u32 {
            let span = Duration::from_millis(500 * u64::from(half_seconds));
            truths.extend(truth(
                span,
                Duration::from_millis(100 * u64::from(end_tenths)),
            ));
        }
    }
    let (low, high) = truths
        .iter()
        .fold((f64::MAX, 0.0_f64), |(lo, hi), t| (lo.min(*t), hi.max(*t)));
    let batch = Duration::from_millis(longest_batch.load(Ordering::Relaxed)) + STEP;
    let batch_margin = 2.0 * batch.as_secs_f64() / (RATE_WINDOW.as_secs_f64() / 2.0);
    assert!(
        written >= low * (1.0 - batch_margin) && written <= high * (1.0 + batch_margin),
        "write rate {written:.0} B/s, truth {low:.0} to {high:.0} B/s over the spans it may \
         cover, margin {:.0}%",
        batch_margin * 100.0
    );
    assert_eq!(mysql["eta"]["basis"], "catch_up", "{mysql}");
    let eta = mysql["eta"]["seconds"].as_f64().unwrap();
    assert!(
        mysql["outlook"]
            .as_str()
            .unwrap()
            .starts_with("catching up at"),
        "{mysql}"
    );
    // Behind since before the exporter watched: how many seconds is unknown, so no verdict
    // yet (never a guess), and certainly not ready.
    assert_ne!(mysql["cutover"]["ready"], true, "{mysql}");

    // The moment the task reaches the head, against the ETA; and the first scrape that shows
    // its lag within max_lag, which comes before it (steady_for counts from there).
    let lag_seconds = |text: &str| value(text, "udts_task_source_lag_seconds", &task("udts-mysql"));
    let mut within_since: Option<Instant> = None;
    let (reached_at, head_when_reached) = loop {
        if within_since.is_none() && lag_seconds(&scrape(addr).await).is_some_and(|s| s <= MAX_LAG)
        {
            within_since = Some(Instant::now());
        }
        if let Some(at) = *reached.lock().unwrap() {
            break at;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(90),
            "never reached the head"
        );
        tokio::time::sleep(STEP).await;
    };
    let actual = reached_at.duration_since(asked).as_secs_f64();
    // The ETA divides the lag by the closing rate it measured; the truth closed at the set apply
    // rate minus what the source really wrote meanwhile, so the time it took is the ETA times
    // measured over true closing rate: their relative difference is the ETA's rate error. Its
    // timing error is the position's and the head's age, a render and a step or two.
    let written_meanwhile = (head_when_reached - head_when_asked) as f64 / actual;
    let (closing, true_closing) = (applied - written, apply_rate - written_meanwhile);
    let rate_error = (closing - true_closing).abs() / true_closing.max(1.0);
    let timing = 2.0 * INTERVAL + RENDER_SPACING + 2.0 * skew.as_secs_f64();
    let margin = rate_error * eta + timing;
    assert!(
        (eta - actual).abs() <= margin,
        "ETA {eta:.0} s, reached the head after {actual:.1} s; margin {margin:.1} s (closing \
         {closing:.0} B/s measured, {true_closing:.0} B/s true)"
    );

    // Ready after steady_for within max_lag, not before, and soon after reaching the head.
    let ready = |text: &str, id: &str| value(text, "udts_task_cutover_ready", &task(id));
    let ready_at = loop {
        let text = scrape(addr).await;
        if within_since.is_none() && lag_seconds(&text).is_some_and(|s| s <= MAX_LAG) {
            within_since = Some(Instant::now());
        }
        if ready(&text, "udts-mysql") == Some(1.0) {
            break Instant::now();
        }
        assert!(
            reached_at.elapsed() < Duration::from_secs(30),
            "never ready: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // A scrape sees the lag within max_lag at most a render and a step after the exporter
    // does; its verdict counts steady_for from its own samples, a poll interval apart.
    let within =
        ready_at.duration_since(within_since.expect("ready before its lag was within max_lag"));
    let sampling = Duration::from_secs_f64(INTERVAL + RENDER_SPACING) + skew;
    assert!(
        within + sampling >= STEADY_FOR,
        "ready {within:?} after the lag was first seen within max_lag"
    );
    // After reaching the head: the lag is seen within max_lag as soon as the position and the
    // head are read (two intervals), then steady_for, then a render and the scrape's step.
    let took = ready_at.duration_since(reached_at);
    assert!(
        took <= STEADY_FOR + Duration::from_secs_f64(3.0 * INTERVAL + RENDER_SPACING) + skew,
        "ready {took:?} after reaching the head"
    );
    let text = scrape(addr).await;
    assert!(
        value(
            &text,
            "udts_task_source_applied_bytes_total",
            &task("udts-mysql")
        )
        .unwrap()
            > 40.0 * write_rate,
        "the counter spans the catch-up, across the rotation"
    );

    // A lag spike: the task stops while the source writes. No scrape shows it ready once its
    // lag is over max_lag, and it is not ready within one interval of the spike.
    hold.store(true, Ordering::Relaxed);
    loop {
        let text = scrape(addr).await;
        let lag = value(&text, "udts_task_source_lag_seconds", &task("udts-mysql"));
        if lag.is_some_and(|lag| lag > MAX_LAG) {
            assert_eq!(ready(&text, "udts-mysql"), Some(0.0), "{text}");
            break;
        }
        assert!(
            ready_at.elapsed() < Duration::from_secs(30),
            "no spike: {text}"
        );
        tokio::time::sleep(STEP).await;
    }
    hold.store(false, Ordering::Relaxed);

    // The Redis task by its delay: ready at 0 s, not ready at 30 s, within one interval.
    let text = scrape(addr).await;
    assert_eq!(ready(&text, "udts-redis"), Some(1.0), "{text}");
    harness.gateway.set_behaviour("udts-redis", redis(30));
    let turned = Instant::now();
    scrape_until(addr, "the Redis task no longer ready", |text| {
        ready(text, "udts-redis") == Some(0.0)
    })
    .await;
    // Within one interval: the next poll, a render, and the scrape's step.
    assert!(
        turned.elapsed() <= Duration::from_secs_f64(INTERVAL + RENDER_SPACING) + skew,
        "{:?}",
        turned.elapsed()
    );
    let redis_task = task_json(addr, "udts-redis").await;
    assert_eq!(
        redis_task["cutover"]["blocking"][0], "lag 30 s over 3 s",
        "{redis_task}"
    );

    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    driver.join().unwrap();
    drop(harness);
}
