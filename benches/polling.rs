//! What list-first polling saves: the release binary discovers 2,000 tasks in a realistic mix
//! (60% finished, 25% incremental, 10% loading, 5% failed or retrying) on a local simulated
//! gateway that answers after 10 ms, and polls them every 2 s for 20 cycles, once with
//! `poll.strategy = "status"` and once with `"auto"`; then an account whose tasks are all
//! finished. Per cycle it records `udts_api_calls_per_cycle` and the cycle's duration as the
//! exporter reports them, and checks the total against the gateway's own request count. Run
//! with `cargo bench --bench polling`; results go to BENCHMARKS.md by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;
use udts_exporter::simulator::{Behaviour, Gateway, SimTask};

const PUBLIC_KEY: &str = "bench-public";
const PRIVATE_KEY: &str = "bench-private";
const TASKS: usize = 2_000;
const CYCLES: usize = 20;

fn finished(i: usize) -> SimTask {
    SimTask::new(
        &format!("udts-bench-{i:06}"),
        Behaviour::Fixed(json!({"Status": "Done", "CurRetryCount": 0, "MaxRetryCount": 3})),
    )
}

fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Polls `task` x TASKS with `strategy` for CYCLES cycles; prints one table row and returns
/// the calls per cycle.
async fn run(label: &str, strategy: &str, task: fn(usize) -> SimTask) -> Vec<f64> {
    let shutdown = CancellationToken::new();
    let gateway = Gateway::new(PUBLIC_KEY, PRIVATE_KEY);
    for i in 0..TASKS {
        gateway.add_task(task(i));
    }
    gateway.set_latency(Duration::from_millis(10));
    let endpoint = gateway.start_on_loopback(shutdown.clone()).await.unwrap();
    let config = format!(
        "[api]\nendpoint = \"{endpoint}\"\npublic_key = \"{PUBLIC_KEY}\"\nprivate_key = \"{PRIVATE_KEY}\"\nconcurrency = 32\ntimeout = \"1s\"\n[poll]\ninterval = \"2s\"\nstrategy = \"{strategy}\"\n[discovery]\nenabled = true\nkinds = [\"transfer\"]\n"
    );
    let (mut exporter, _dir) = common::spawn_with_config(&config, "warn").await;
    let pid = exporter.child.id().unwrap();
    let client = common::http_client();
    let mut calls = Vec::new();
    let mut durations = Vec::new();
    let mut last_duration = None;
    while calls.len() < CYCLES {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let Ok(response) = client.get(&exporter.url).send().await else {
            continue;
        };
        let text = response.text().await.unwrap_or_default();
        let duration = sample(&text, "udts_poll_cycle_duration_seconds");
        // A new cycle has ended when its duration changes (it is measured to the nanosecond).
        if duration.is_some_and(|d| d > 0.0) && duration != last_duration {
            last_duration = duration;
            durations.push(duration.unwrap_or_default());
            calls.push(sample(&text, "udts_api_calls_per_cycle").unwrap_or(f64::NAN));
        }
    }
    let steady: Vec<f64> = calls[2..].to_vec();
    let steady_mean = steady.iter().sum::<f64>() / steady.len() as f64;
    let mean_cycle = durations[1..].iter().sum::<f64>() / (durations.len() - 1) as f64;
    println!(
        "| {label} | `{strategy}` | {:.0} | {steady_mean:.0} | {:.3} | {:.2} s | {mean_cycle:.2} s | {} MiB |",
        calls[0],
        steady_mean / TASKS as f64,
        durations[0],
        common::proc_status_kib(pid, "VmHWM:") / 1024,
    );
    let total: f64 = calls.iter().sum();
    let at_gateway = ["GetUDTSTaskStatus", "GetUDTSTaskHistory", "ListUDTSTask"]
        .iter()
        .map(|a| gateway.requests(a))
        .sum::<u64>();
    // The gateway may already have seen the start of the next cycle.
    assert!(at_gateway as f64 >= total, "{at_gateway} < {total}");
    exporter.child.kill().await.unwrap();
    shutdown.cancel();
    calls
}

#[tokio::main]
async fn main() {
    // `cargo test --benches` runs benches with --bench absent; only measure when asked.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    println!("| account ({TASKS} tasks) | poll.strategy | calls in cycle 1 | calls per cycle, steady | per task per cycle | cycle 1 | mean cycle after | peak RSS |");
    println!("|---|---|---|---|---|---|---|---|");
    let before = run("mixed", "status", common::mixed_task).await;
    let after = run("mixed", "auto", common::mixed_task).await;
    let finished_only = run("all finished", "auto", finished).await;
    println!();
    println!("Calls per cycle, cycles 1 to {CYCLES}:");
    println!();
    println!("| cycle | common::mixed_task, `status` | common::mixed_task, `auto` | all finished, `auto` |");
    println!("|---|---|---|---|");
    for cycle in 0..CYCLES {
        println!(
            "| {} | {:.0} | {:.0} | {:.0} |",
            cycle + 1,
            before[cycle],
            after[cycle],
            finished_only[cycle]
        );
    }
}
