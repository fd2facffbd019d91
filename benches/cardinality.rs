//! Cardinality benchmark: what the exporter costs the Prometheus that scrapes it. The release
//! binary polls 10,000 tasks of a long-lived account (60% finished, `common::mixed_task`) on a
//! local simulated gateway, with a static config and default settings otherwise; Debian's
//! `prometheus` scrapes it every 5 s with the shipped scrape config and rules. After 45 s the
//! benchmark reads `udts_exposition_series` from the exporter, `prometheus_tsdb_head_series`
//! from Prometheus, and Prometheus's resident memory, once with the old shape
//! (`status_series = "all"`, `finished_tasks = "full"`) and once with the defaults. Run with
//! `cargo bench --bench cardinality`; results go to BENCHMARKS.md by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_yaml_ng::Value as Yaml;
use tokio_util::sync::CancellationToken;
use udts_exporter::simulator::Gateway;

const PUBLIC_KEY: &str = "bench-public";
const PRIVATE_KEY: &str = "bench-private";
const TASKS: usize = 10_000;

/// A gauge's value in a text exposition.
fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn shape(label: &str, metrics: &str) {
    let shutdown = CancellationToken::new();
    let gateway = Gateway::new(PUBLIC_KEY, PRIVATE_KEY);
    for i in 0..TASKS {
        gateway.add_task(common::mixed_task(i));
    }
    let endpoint = gateway.start_on_loopback(shutdown.clone()).await.unwrap();
    let mut config = format!(
        "[api]\nendpoint = \"{endpoint}\"\npublic_key = \"{PUBLIC_KEY}\"\nprivate_key = \"{PRIVATE_KEY}\"\nconcurrency = 32\n{metrics}"
    );
    for i in 0..TASKS {
        config.push_str(&format!("[[tasks]]\nid = \"udts-bench-{i:06}\"\n"));
    }
    let (mut exporter, _dir) = common::spawn_with_config(&config, "warn").await;
    common::wait_ready_within(exporter.addr, Duration::from_secs(180)).await;

    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus");
    let mut prometheus_config: Yaml =
        serde_yaml_ng::from_str(&std::fs::read_to_string(shipped.join("prometheus.yml")).unwrap())
            .unwrap();
    prometheus_config["global"]["scrape_interval"] = "5s".into();
    prometheus_config["global"]["evaluation_interval"] = "5s".into();
    prometheus_config["rule_files"][0] = shipped.join("alerts.yml").display().to_string().into();
    prometheus_config["scrape_configs"][0]["static_configs"][0]["targets"][0] =
        exporter.addr.to_string().into();
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(
        &config_path,
        serde_yaml_ng::to_string(&prometheus_config).unwrap(),
    )
    .unwrap();
    let port = common::free_port();
    let mut prometheus = tokio::process::Command::new("prometheus")
        .args([
            format!("--config.file={}", config_path.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = prometheus.id().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_before = common::proc_status_kib(pid, "VmRSS:") / 1024;
    tokio::time::sleep(Duration::from_secs(45)).await;
    let own = common::http_get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let head = gauge(&own, "prometheus_tsdb_head_series").unwrap_or_default();
    let rss_after = common::proc_status_kib(pid, "VmRSS:") / 1024;
    let exposition = common::scrape(exporter.addr).await;
    let series = gauge(&exposition, "udts_exposition_series").unwrap_or_default();
    println!(
        "| {label} | {series} | {head} | {rss_before} MiB | {rss_after} MiB | {} MiB |",
        common::proc_status_kib(exporter.child.id().unwrap(), "VmRSS:") / 1024
    );
    let _ = prometheus.kill().await;
    exporter.child.kill().await.unwrap();
    shutdown.cancel();
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if !common::tool_available("prometheus") {
        println!("(prometheus not found: install Debian's prometheus to run this benchmark)");
        return;
    }
    println!("| 10,000 tasks, 60% finished | `udts_exposition_series` | Prometheus head series after 45 s | Prometheus RSS at start | after 45 s | exporter RSS |");
    println!("|---|---|---|---|---|---|");
    shape(
        "the old shape: `status_series = \"all\"`, `finished_tasks = \"full\"`",
        "[metrics]\nstatus_series = \"all\"\nfinished_tasks = \"full\"\n",
    )
    .await;
    shape("the defaults", "").await;
}
