//! What a reload costs: loading a web config of 100 users at bcrypt cost 12 (in this process,
//! `WebSecurity::load`), and the scrape latency of the real binary while it reloads that file
//! on SIGHUP every 250 ms, against the same scrapes with no reload. Self-contained (no test
//! helpers), so the same file measures an older checkout too; `UDTS_BENCH_BINARY` names the
//! binary to run instead of this build's. Run with `cargo bench --bench reload`; results go to
//! BENCHMARKS.md by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use tokio::io::AsyncBufReadExt;
use tokio_util::sync::CancellationToken;
use udts_exporter::simulator::{Behaviour, Gateway, SimTask};
use udts_exporter::web_config::WebSecurity;

const USERS: usize = 100;
const COST: u32 = 12;
const SCRAPES: usize = 200;

fn percentile(sorted: &[Duration], p: usize) -> f64 {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// `SCRAPES` authenticated gzip scrapes 10 ms apart: p50 and p99 in ms.
async fn scrapes(client: &reqwest::Client, url: &str) -> (f64, f64) {
    let mut took = Vec::new();
    for _ in 0..SCRAPES {
        let started = Instant::now();
        let response = client
            .get(url)
            .basic_auth("user-000", Some("secret"))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
        took.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    took.sort();
    (percentile(&took, 50), percentile(&took, 99))
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    udts_exporter::tls_provider::install();
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("secret", COST).unwrap();
    let mut web = String::from("basic_auth_users:\n");
    for i in 0..USERS {
        web.push_str(&format!("  user-{i:03}: {hash}\n"));
    }
    let web_file = dir.path().join("web.yml");
    std::fs::write(&web_file, web).unwrap();

    let mut loads = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        WebSecurity::load(&web_file).unwrap();
        loads.push(started.elapsed());
    }
    loads.sort();
    println!(
        "| {USERS} users at bcrypt cost {COST} | load p50 {:.1} ms (of 3) |",
        percentile(&loads, 50)
    );

    let shutdown = CancellationToken::new();
    let gateway = Gateway::new("bench-public", "bench-private");
    let mut config = String::new();
    for i in 0..100 {
        let id = format!("udts-reload-{i:03}");
        gateway.add_task(SimTask::new(
            &id,
            Behaviour::Fixed(serde_json::json!({"Status": "Synced"})),
        ));
        config.push_str(&format!("[[tasks]]\nid = \"{id}\"\n"));
    }
    let endpoint = gateway.start_on_loopback(shutdown.clone()).await.unwrap();
    let config = format!(
        "[api]\nendpoint = \"{endpoint}\"\npublic_key = \"bench-public\"\nprivate_key = \"bench-private\"\n\
         [poll]\ninterval = \"5s\"\n[web]\nconfig_file = \"{}\"\n{config}",
        web_file.display()
    );
    let config_file = dir.path().join("config.toml");
    std::fs::write(&config_file, config).unwrap();
    let binary = std::env::var("UDTS_BENCH_BINARY")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_udts-exporter").to_string());
    let mut child = tokio::process::Command::new(binary)
        .arg("--config")
        .arg(&config_file)
        .args([
            "--log-level",
            "error",
            "--web.listen-address",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next_line().await.unwrap().unwrap();
        if let Some(url) = line.strip_prefix("udts-exporter: metrics at ") {
            break url.to_string();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let client = reqwest::Client::new();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (quiet_p50, quiet_p99) = scrapes(&client, &url).await;

    let pid = child.id().unwrap().to_string();
    let stop = CancellationToken::new();
    let hup = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut sent = 0;
            while !stop.is_cancelled() {
                std::process::Command::new("kill")
                    .args(["-HUP", &pid])
                    .status()
                    .unwrap();
                sent += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            sent
        })
    };
    let (busy_p50, busy_p99) = scrapes(&client, &url).await;
    stop.cancel();
    let sent = hup.await.unwrap();
    println!(
        "| scrape p50 / p99, no reload | {quiet_p50:.1} / {quiet_p99:.1} ms | during {sent} SIGHUP reloads | {busy_p50:.1} / {busy_p99:.1} ms |"
    );
    let _ = child.kill().await;
    shutdown.cancel();
}
