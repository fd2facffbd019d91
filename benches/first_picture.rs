//! The first complete picture at 10,000 tasks: the release binary against a simulated gateway
//! that answers after `LATENCY`, `api.concurrency = 16`. Three starts: 10,000 static
//! `[[tasks]]` of every status; the same mixed account (60% finished, 25% incremental, 10%
//! loading, 5% failed) found by discovery (list-first). For each: the time from start to
//! `/readyz` 200 (every task's status published), the API calls made by then (the gateway's own
//! count), the idle RSS a few seconds later, and the RSS after one read of the task page and of
//! `/api/v1/tasks` (what issue 32 bounds at 40 MiB). Run with `cargo bench --bench first_picture`;
//! results go to BENCHMARKS.md by hand. `UDTS_BENCH_WRAPPER="valgrind --tool=massif
//! --massif-out-file=/tmp/massif.%p"` runs the exporter under a wrapper for a heap profile.
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
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let wrapper = std::env::var("UDTS_BENCH_WRAPPER").unwrap_or_default();
    let wrapper: Vec<&str> = wrapper.split_whitespace().collect();
    let started = Instant::now();
    let exporter = common::spawn_exporter_via(
        &wrapper,
        [
            std::ffi::OsStr::new("--config"),
            path.as_os_str(),
            std::ffi::OsStr::new("--log-level"),
            std::ffi::OsStr::new("warn"),
        ],
        std::process::Stdio::inherit(),
    )
    .await;
    common::wait_ready_within(exporter.addr, Duration::from_secs(600)).await;
    let took = started.elapsed();
    let calls = gateway.calls().len();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let pid = exporter.child.id().unwrap();
    let rss = common::proc_status_kib(pid, "VmRSS:") / 1024;
    let client = common::http_client();
    for path in ["/", "/api/v1/tasks"] {
        let response = client
            .get(format!("http://{}{path}", exporter.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after_page = common::proc_status_kib(pid, "VmRSS:") / 1024;
    println!(
        "| {label} | {:.1} s | {calls} | {:.2} | {rss} MiB | {after_page} MiB |",
        took.as_secs_f64(),
        calls as f64 / TASKS as f64
    );
    exporter.signal("TERM");
    let _ = tokio::time::timeout(Duration::from_secs(30), exporter.child.wait_with_output()).await;
    shutdown.cancel();
}

#[tokio::main]
async fn main() {
    // `cargo test --benches` runs benches with --bench absent; only measure when asked.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    println!("| {TASKS} tasks, {} ms a call, concurrency 16 | first complete picture | API calls by then | per task | idle RSS | after page and JSON |", LATENCY.as_millis());
    println!("|---|---|---|---|---|---|");
    run("static [[tasks]]", false).await;
    run("discovery, mixed account (list-first)", true).await;
}
