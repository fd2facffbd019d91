//! The first complete picture at 10,000 tasks: the release binary against a simulated gateway
//! that answers after `LATENCY`, `api.concurrency = 16`. Three starts: 10,000 static
//! `[[tasks]]` of every status; the same mixed account (60% finished, 25% incremental, 10%
//! loading, 5% failed) found by discovery (list-first). For each: the time from start to
//! `/readyz` 200 (every task's status published), the API calls made by then (the gateway's own
//! count), and the idle RSS a few seconds later. Run with `cargo bench --bench first_picture`;
//! results go to BENCHMARKS.md by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use udts_exporter::simulator::Gateway;

const PUBLIC_KEY: &str = "bench-public";
const PRIVATE_KEY: &str = "bench-private";
const TASKS: usize = 10_000;
const LATENCY: Duration = Duration::from_millis(50);

async fn run(label: &str, discovery: bool) {
    let shutdown = CancellationToken::new();
    let gateway = Gateway::new(PUBLIC_KEY, PRIVATE_KEY);
    for i in 0..TASKS {
        gateway.add_task(common::mixed_task(i));
    }
    gateway.set_latency(LATENCY);
    let endpoint = gateway.start_on_loopback(shutdown.clone()).await.unwrap();
    let mut config = format!(
        "[api]\nendpoint = \"{endpoint}\"\npublic_key = \"{PUBLIC_KEY}\"\nprivate_key = \"{PRIVATE_KEY}\"\nconcurrency = 16\ntimeout = \"5s\"\n[poll]\ninterval = \"5m\"\n"
    );
    if discovery {
        config.push_str("[discovery]\nenabled = true\nkinds = [\"transfer\"]\n");
    } else {
        for i in 0..TASKS {
            config.push_str(&format!("[[tasks]]\nid = \"udts-bench-{i:06}\"\n"));
        }
    }
    let started = Instant::now();
    let (exporter, _dir) = common::spawn_with_config(&config, "warn").await;
    common::wait_ready_within(exporter.addr, Duration::from_secs(300)).await;
    let took = started.elapsed();
    let calls = gateway.calls().len();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let rss = common::proc_status_kib(exporter.child.id().unwrap(), "VmRSS:") / 1024;
    println!(
        "| {label} | {:.1} s | {calls} | {:.2} | {rss} MiB |",
        took.as_secs_f64(),
        calls as f64 / TASKS as f64
    );
    shutdown.cancel();
}

#[tokio::main]
async fn main() {
    // `cargo test --benches` runs benches with --bench absent; only measure when asked.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    println!("| {TASKS} tasks, {} ms a call, concurrency 16 | first complete picture | API calls by then | per task | idle RSS |", LATENCY.as_millis());
    println!("|---|---|---|---|---|");
    run("static [[tasks]]", false).await;
    run("discovery, mixed account (list-first)", true).await;
}
