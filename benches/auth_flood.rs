//! Basic auth under a flood of wrong passwords: the release binary (`demo`, basic auth at bcrypt
//! cost 10) is scraped by a legitimate client with cached credentials, first alone, then while
//! `FLOOD_CONNECTIONS` (default 16) connections send wrong passwords as fast as they are
//! answered. Prints the scrape latency (median, p90, max) in both phases, and how many poll
//! cycles overran and how many API calls the poller made per second, to show the poller kept
//! its interval. Run with `cargo bench --bench auth_flood`; results go to BENCHMARKS.md by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PHASE: Duration = Duration::from_secs(20);

struct Phase {
    latencies: Vec<Duration>,
    overruns: f64,
    api_calls_per_second: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn sum(text: &str, name: &str) -> f64 {
    common::family(text, name).values().sum()
}

/// Scrapes every 100 ms for [`PHASE`]; returns the latencies and what the poller did meanwhile.
async fn measure(client: &reqwest::Client, url: &str) -> Phase {
    let scrape = || async {
        let started = Instant::now();
        let text = client
            .get(url)
            .basic_auth("prometheus", Some("scrape-secret"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        (started.elapsed(), text)
    };
    let (_, first) = scrape().await;
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut last = first.clone();
    while started.elapsed() < PHASE {
        let (latency, text) = scrape().await;
        latencies.push(latency);
        last = text;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    latencies.sort();
    Phase {
        latencies,
        overruns: sum(&last, "udts_poll_cycle_overrun_total")
            - sum(&first, "udts_poll_cycle_overrun_total"),
        api_calls_per_second: (sum(&last, "udts_api_requests_total")
            - sum(&first, "udts_api_requests_total"))
            / started.elapsed().as_secs_f64(),
    }
}

fn report(name: &str, phase: &Phase) {
    println!(
        "{name:<22} scrapes {:>4}  median {:>8.2?}  p90 {:>8.2?}  max {:>8.2?}  cycle overruns {}  API calls/s {:.1}",
        phase.latencies.len(),
        percentile(&phase.latencies, 0.5),
        percentile(&phase.latencies, 0.9),
        phase.latencies[phase.latencies.len() - 1],
        phase.overruns,
        phase.api_calls_per_second
    );
}

#[tokio::main]
async fn main() {
    let connections: usize = std::env::var("FLOOD_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    let hash = bcrypt::hash("scrape-secret", 10).unwrap();
    std::fs::write(&web, format!("basic_auth_users:\n  prometheus: {hash}\n")).unwrap();
    let exporter = common::spawn_exporter(
        [
            "demo".as_ref(),
            "--web.config.file".as_ref(),
            web.as_os_str(),
        ],
        std::process::Stdio::null(),
    )
    .await;
    let url = format!("http://{}/metrics", exporter.addr);
    let client = common::http_client();
    // Let the first cycles pass and the credentials be cached.
    tokio::time::sleep(Duration::from_secs(6)).await;

    let alone = measure(&client, &url).await;
    report("alone", &alone);

    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let mut flood = Vec::new();
    for connection in 0..connections {
        let (stop, refused, url) = (Arc::clone(&stop), Arc::clone(&refused), url.clone());
        flood.push(tokio::spawn(async move {
            let client = common::http_client();
            let mut attempt = 0u64;
            while !stop.load(Ordering::Relaxed) {
                attempt += 1;
                let password = format!("wrong-{connection}-{attempt}");
                if let Ok(response) = client
                    .get(&url)
                    .basic_auth("prometheus", Some(password))
                    .send()
                    .await
                {
                    if response.status() == 401 {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let flooded = measure(&client, &url).await;
    stop.store(true, Ordering::Relaxed);
    for task in flood {
        let _ = task.await;
    }
    report(&format!("{connections}-connection flood"), &flooded);
    println!(
        "wrong passwords refused during the flood: {} ({:.1}/s)",
        refused.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed) as f64 / PHASE.as_secs_f64()
    );
    println!(
        "median under flood / median alone: {:.2}x",
        percentile(&flooded.latencies, 0.5).as_secs_f64()
            / percentile(&alone.latencies, 0.5).as_secs_f64()
    );
}
