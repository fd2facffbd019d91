//! UDTS's own monitoring numbers at 10,000 tasks, 2,000 of them active (Syncing) over four
//! projects and 8,000 finished: the release binary against the simulated gateway, once with
//! `[monitor]` off and once on (interval 1m). For each: the monitoring calls of one full interval
//! after the first complete picture (the gateway's own count), the status poll's
//! `udts_api_calls_per_cycle`, the idle RSS, the gzip exposition's size and 50 sequential gzip
//! scrapes. Run with `cargo bench --bench monitoring`; results go to BENCHMARKS.md by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;
use udts_exporter::simulator::{Behaviour, Gateway, SimTask};

const PUBLIC_KEY: &str = "bench-public";
const PRIVATE_KEY: &str = "bench-private";
const TASKS: usize = 10_000;
/// One task in five is active.
const ACTIVE_EVERY: usize = 5;
const PROJECTS: usize = 4;

fn task(i: usize) -> SimTask {
    let data = if i % ACTIVE_EVERY == 0 {
        json!({"Status": "Syncing", "Sync": {"BinlogName": "mysql-bin.000012", "BinlogPos": 4 + i}})
    } else {
        json!({"Status": "Done", "Progress": {"Percentage": 100, "CurCount": 10, "TotalCount": 10}})
    };
    SimTask::new(&format!("udts-bench-{i:06}"), Behaviour::Fixed(data))
}

async fn run(monitor: bool) {
    let shutdown = CancellationToken::new();
    let gateway = Gateway::new(PUBLIC_KEY, PRIVATE_KEY);
    for i in 0..TASKS {
        gateway.add_task(task(i));
    }
    let endpoint = gateway.start_on_loopback(shutdown.clone()).await.unwrap();
    let mut config = format!(
        "[api]\nendpoint = \"{endpoint}\"\npublic_key = \"{PUBLIC_KEY}\"\nprivate_key = \"{PRIVATE_KEY}\"\nconcurrency = 32\n[poll]\ninterval = \"30s\"\n[monitor]\nenabled = {monitor}\ninterval = \"1m\"\n"
    );
    for i in 0..TASKS {
        config.push_str(&format!(
            "[[tasks]]\nid = \"udts-bench-{i:06}\"\nproject_id = \"org-bench-{}\"\n",
            i % PROJECTS
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let exporter = common::spawn_exporter(
        [
            std::ffi::OsStr::new("--config"),
            path.as_os_str(),
            std::ffi::OsStr::new("--log-level"),
            std::ffi::OsStr::new("warn"),
        ],
        std::process::Stdio::inherit(),
    )
    .await;
    common::wait_ready_within(exporter.addr, Duration::from_secs(120)).await;
    // The catch-up for tasks just found active settles within seconds; then one full
    // interval holds exactly one full round.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = gateway.requests("QueryMetricDataSummary");
    tokio::time::sleep(Duration::from_secs(60)).await;
    let per_interval = gateway.requests("QueryMetricDataSummary") - before;
    let pid = exporter.child.id().unwrap();
    let rss = common::proc_status_kib(pid, "VmRSS:");
    let text = common::scrape(exporter.addr).await;
    let calls_per_cycle = common::value(&text, "udts_api_calls_per_cycle", "").unwrap();
    let delays = common::family(&text, "udts_task_sync_delay_seconds").len();
    let client = common::http_client();
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..50 {
        let began = Instant::now();
        let response = client
            .get(format!("http://{}/metrics", exporter.addr))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        size = response.bytes().await.unwrap().len();
        times.push(began.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let active = TASKS / ACTIVE_EVERY;
    println!(
        "| {} | {per_interval} | {:.0} | {calls_per_cycle} | {delays} | {} KiB | {:.2} / {:.2} ms | {:.1} MiB |",
        if monitor { "on" } else { "off" },
        if per_interval == 0 { 0.0 } else { active as f64 / per_interval as f64 },
        size / 1024,
        ms(times[times.len() / 2]),
        ms(times[times.len() * 99 / 100]),
        rss as f64 / 1024.0,
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
    println!(
        "| monitoring, {TASKS} tasks ({} active, {PROJECTS} projects) | monitoring calls in one interval | active tasks per call | udts_api_calls_per_cycle | tasks with udts_task_sync_delay_seconds | gzip exposition | scrape p50 / p99 gzip | idle RSS |",
        TASKS / ACTIVE_EVERY
    );
    println!("|---|---|---|---|---|---|---|---|");
    run(false).await;
    run(true).await;
}
