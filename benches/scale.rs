//! Scale benchmark: the release binary polling 1,000 and 10,000 tasks on a local simulated
//! gateway. Reports the first poll cycle, scrape latency (plain and gzip), scrapes per second
//! with 8 concurrent scrapers, and the exporter's memory. Run with
//! `cargo bench --bench scale`; results go to BENCHMARKS.md by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;
use udts_exporter::simulator::{Behaviour, Gateway, SimTask};

const PUBLIC_KEY: &str = "bench-public";
const PRIVATE_KEY: &str = "bench-private";

fn task(i: usize) -> SimTask {
    let data = match i % 3 {
        0 => json!({"Status": "Loading", "CurRetryCount": 0, "MaxRetryCount": 3,
                    "Progress": {"TotalCount": 1_000_000, "CurCount": i * 10, "TotalDuration": 600,
                                 "CurDuration": 100, "Percentage": 12.5}}),
        1 => json!({"Status": "Syncing", "CurRetryCount": 0, "MaxRetryCount": 3,
                    "Sync": {"BinlogName": "mysql-bin.000012", "BinlogPos": i * 100}}),
        _ => json!({"Status": "Synced", "CurRetryCount": 0, "MaxRetryCount": 3,
                    "Progress": {"RedisOffsetSize": i * 1000, "RedisDelayTime": 2}}),
    };
    SimTask::new(&format!("udts-bench-{i:06}"), Behaviour::Fixed(data))
}

/// 50 sequential scrapes, plain or gzip: their durations and the body size.
async fn time_scrapes(client: &reqwest::Client, url: &str, gzip: bool) -> (Vec<Duration>, usize) {
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..50 {
        let started = Instant::now();
        let mut request = client.get(url);
        if gzip {
            request = request.header("Accept-Encoding", "gzip");
        }
        size = request.send().await.unwrap().bytes().await.unwrap().len();
        times.push(started.elapsed());
    }
    (times, size)
}

/// One scrape asking for gzip; the compressed body (this client does not inflate).
async fn gzip_scrape(client: &reqwest::Client, url: &str) -> bytes::Bytes {
    client
        .get(url)
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Serves `gzip` (the exporter's own gzip exposition) with nginx, as a static file with the same
/// headers, and times 50 sequential scrapes of it like the exporter's: the bar a prepared
/// scrape is held to. `None` without nginx.
async fn nginx_gzip_scrapes(client: &reqwest::Client, gzip: &[u8]) -> Option<Vec<Duration>> {
    if std::process::Command::new("nginx")
        .arg("-v")
        .output()
        .is_err()
    {
        println!("(nginx not found: no comparison)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    std::fs::write(dir.path().join("metrics.gz"), gzip).unwrap();
    let prefix = dir.path().display();
    std::fs::write(
        dir.path().join("nginx.conf"),
        format!(
            "master_process off; daemon off; worker_processes 1; pid {prefix}/nginx.pid; \
             error_log {prefix}/error.log; events {{}} http {{ access_log off; \
             client_body_temp_path {prefix}; proxy_temp_path {prefix}; fastcgi_temp_path {prefix}; \
             uwsgi_temp_path {prefix}; scgi_temp_path {prefix}; \
             server {{ listen 127.0.0.1:{port}; location = /metrics {{ \
             default_type \"text/plain; version=0.0.4; charset=utf-8\"; \
             add_header Content-Encoding gzip; alias {prefix}/metrics.gz; }} }} }}"
        ),
    )
    .unwrap();
    let mut nginx = tokio::process::Command::new("nginx")
        .args(["-p", &prefix.to_string(), "-c"])
        .arg(dir.path().join("nginx.conf"))
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let url = format!("http://127.0.0.1:{port}/metrics");
    for _ in 0..100 {
        if client.get(&url).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (mut times, size) = time_scrapes(client, &url, true).await;
    assert_eq!(size, gzip.len(), "nginx serves the same bytes");
    times.sort();
    let _ = nginx.kill().await;
    Some(times)
}

async fn bench(tasks: usize) {
    let shutdown = CancellationToken::new();
    let gateway = Gateway::new(PUBLIC_KEY, PRIVATE_KEY);
    for i in 0..tasks {
        gateway.add_task(task(i));
    }
    let endpoint = gateway.start_on_loopback(shutdown.clone()).await.unwrap();
    let mut config = format!(
        "[api]\nendpoint = \"{endpoint}\"\npublic_key = \"{PUBLIC_KEY}\"\nprivate_key = \"{PRIVATE_KEY}\"\nconcurrency = 32\n[poll]\ninterval = \"30s\"\n"
    );
    for i in 0..tasks {
        config.push_str(&format!("[[tasks]]\nid = \"udts-bench-{i:06}\"\n"));
    }
    let started = Instant::now();
    let (mut exporter, _dir) = common::spawn_with_config(&config, "warn").await;
    let pid = exporter.child.id().unwrap();
    let url = exporter.url.clone();
    common::wait_ready_within(exporter.addr, Duration::from_secs(120)).await;
    let client = common::http_client();
    let first_cycle = started.elapsed();
    // Idle after the first cycle: what a scraper of gzip (Prometheus) leaves it at.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let gzip_body = gzip_scrape(&client, &url).await;
    let idle_rss = common::proc_status_kib(pid, "VmRSS:") / 1024;

    let (mut plain, size) = time_scrapes(&client, &url, false).await;
    let (mut gzip, gzip_size) = time_scrapes(&client, &url, true).await;
    plain.sort();
    gzip.sort();
    if let Some(nginx) = nginx_gzip_scrapes(&client, &gzip_body).await {
        NGINX_ROWS.lock().unwrap().push(format!(
            "| {tasks} | {} KiB | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:.2}x |",
            gzip_body.len() / 1024,
            percentile(&gzip, 0.5).as_secs_f64() * 1e3,
            percentile(&gzip, 0.99).as_secs_f64() * 1e3,
            percentile(&nginx, 0.5).as_secs_f64() * 1e3,
            percentile(&nginx, 0.99).as_secs_f64() * 1e3,
            percentile(&gzip, 0.5).as_secs_f64() / percentile(&nginx, 0.5).as_secs_f64(),
        ));
    }

    let count = Arc::new(AtomicU64::new(0));
    let window = Duration::from_secs(5);
    let deadline = Instant::now() + window;
    let scrapers: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            let url = url.clone();
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let response = client
                        .get(&url)
                        .header("Accept-Encoding", "gzip")
                        .send()
                        .await
                        .unwrap();
                    response.bytes().await.unwrap();
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for scraper in scrapers {
        scraper.await.unwrap();
    }
    let per_second = count.load(Ordering::Relaxed) as f64 / window.as_secs_f64();

    println!(
        "| {tasks} | {:.2} s | {} KiB / {} KiB | {:.1} / {:.1} ms | {:.1} / {:.1} ms | {per_second:.0} | {idle_rss} MiB | {} MiB | {} MiB |",
        first_cycle.as_secs_f64(),
        size / 1024,
        gzip_size / 1024,
        percentile(&plain, 0.5).as_secs_f64() * 1e3,
        percentile(&plain, 0.99).as_secs_f64() * 1e3,
        percentile(&gzip, 0.5).as_secs_f64() * 1e3,
        percentile(&gzip, 0.99).as_secs_f64() * 1e3,
        common::proc_status_kib(pid, "VmRSS:") / 1024,
        common::proc_status_kib(pid, "VmHWM:") / 1024,
    );
    page_bench(tasks, &client, exporter.addr, pid).await;
    exporter.child.kill().await.unwrap();
    shutdown.cancel();
}

/// The task page at `tasks` tasks: its weight (default and all rows), the JSON's size, how
/// long the server takes to answer `/`, the browser's first contentful paint (when chromedriver
/// is installed), and `/metrics` latency while five open pages poll the JSON every second.
async fn page_bench(tasks: usize, client: &reqwest::Client, addr: std::net::SocketAddr, pid: u32) {
    let base = format!("http://{addr}");
    let size = |path: &'static str, gzip: bool| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            let mut request = client.get(url);
            if gzip {
                request = request.header("Accept-Encoding", "gzip");
            }
            request.send().await.unwrap().bytes().await.unwrap().len() / 1024
        }
    };
    let page = size("/", false).await;
    let page_all = size("/?all=1", false).await;
    let json = size("/api/v1/tasks", false).await;
    let json_gzip = size("/api/v1/tasks", true).await;
    let mut page_times = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        client
            .get(format!("{base}/"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        page_times.push(started.elapsed());
    }
    page_times.sort();
    let paint = first_contentful_paint(&base).await;

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pollers: Vec<_> = (0..5)
        .map(|_| {
            let client = client.clone();
            let url = format!("{base}/api/v1/tasks");
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let response = client
                        .get(&url)
                        .header("Accept-Encoding", "gzip")
                        .send()
                        .await;
                    if let Ok(response) = response {
                        let _ = response.bytes().await;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            })
        })
        .collect();
    let (mut gzip, _) = time_scrapes(client, &format!("{base}/metrics"), true).await;
    gzip.sort();
    stop.store(true, Ordering::Relaxed);
    for poller in pollers {
        poller.await.unwrap();
    }
    PAGE_ROWS.lock().unwrap().push(format!(
        "| {tasks} | {page} KiB | {page_all} KiB | {json} KiB / {json_gzip} KiB | {:.1} ms | {paint} | {:.1} / {:.1} ms | {} MiB |",
        percentile(&page_times, 0.5).as_secs_f64() * 1e3,
        percentile(&gzip, 0.5).as_secs_f64() * 1e3,
        percentile(&gzip, 0.99).as_secs_f64() * 1e3,
        common::proc_status_kib(pid, "VmRSS:") / 1024,
    ));
}

static PAGE_ROWS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
static NGINX_ROWS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// The first contentful paint of `/` in headless Chromium, or "-" without chromedriver.
async fn first_contentful_paint(base: &str) -> String {
    let Some((_driver, browser)) = common::start_browser().await else {
        return "-".into();
    };
    browser.goto(&format!("{base}/")).await.unwrap();
    let paint = browser
        .execute(
            "return performance.getEntriesByName('first-contentful-paint')[0].startTime",
            vec![],
        )
        .await
        .ok()
        .and_then(|v| v.as_f64());
    let _ = browser.close().await;
    paint.map_or("-".into(), |paint| format!("{paint:.0} ms"))
}

/// Reads one unlabelled sample from an exposition.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The first (unspread) poll cycle against a gateway answering after a fixed latency, next to
/// the ideal: the list pages one after another, then the cycle's other calls (a status call per
/// task, a history call per unfinished task) ceil(calls / concurrency) at a time.
async fn cycle_bench(tasks: usize, latency: Duration, concurrency: usize) {
    let shutdown = CancellationToken::new();
    let gateway = Gateway::new(PUBLIC_KEY, PRIVATE_KEY);
    for i in 0..tasks {
        gateway.add_task(task(i));
    }
    gateway.set_latency(latency);
    let endpoint = gateway.start_on_loopback(shutdown.clone()).await.unwrap();
    let config = format!(
        "[api]\nendpoint = \"{endpoint}\"\npublic_key = \"{PUBLIC_KEY}\"\nprivate_key = \"{PRIVATE_KEY}\"\nconcurrency = {concurrency}\n[poll]\ninterval = \"5m\"\n[discovery]\nenabled = true\nkinds = [\"transfer\"]\n"
    );
    let (mut exporter, _dir) = common::spawn_with_config(&config, "warn").await;
    let pid = exporter.child.id().unwrap();
    let url = exporter.url.clone();
    common::wait_ready_within(exporter.addr, Duration::from_secs(120)).await;
    let client = common::http_client();
    let text = client.get(&url).send().await.unwrap().text().await.unwrap();
    let cycle = sample(&text, "udts_poll_cycle_duration_seconds").unwrap_or(f64::NAN);
    let calls = sample(&text, "udts_api_calls_per_cycle").unwrap_or(f64::NAN) as usize;
    let pages = tasks / 100 + 1;
    let rounds = pages + calls.saturating_sub(pages).div_ceil(concurrency);
    let ideal = rounds as f64 * latency.as_secs_f64();
    println!(
        "| {tasks} | {} ms | {concurrency} | {calls} | {cycle:.2} s | {ideal:.2} s | {:.0}% | {} MiB |",
        latency.as_millis(),
        100.0 * ideal / cycle,
        common::proc_status_kib(pid, "VmHWM:") / 1024,
    );
    exporter.child.kill().await.unwrap();
    shutdown.cancel();
}

#[tokio::main]
async fn main() {
    // `cargo test --benches` runs benches with --bench absent; only measure when asked.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    println!("| tasks | first cycle (start to ready) | exposition plain / gzip | scrape p50 / p99 plain | scrape p50 / p99 gzip | scrapes/s, 8 concurrent (gzip) | idle RSS after the first cycle | RSS after the scrapes | peak RSS |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for tasks in [1_000, 10_000] {
        bench(tasks).await;
    }
    println!();
    println!("| tasks | page (worst 500) | page, all rows | /api/v1/tasks plain / gzip | GET / p50 | first contentful paint | /metrics p50 / p99 gzip, 5 pages open | RSS |");
    println!("|---|---|---|---|---|---|---|---|");
    for row in PAGE_ROWS.lock().unwrap().iter() {
        println!("{row}");
    }
    println!();
    println!("| tasks | gzip exposition | exporter gzip scrape p50 / p99 | nginx, same bytes, p50 / p99 | exporter / nginx (p50) |");
    println!("|---|---|---|---|---|");
    for row in NGINX_ROWS.lock().unwrap().iter() {
        println!("{row}");
    }
    println!();
    println!("| tasks | gateway latency | concurrency | calls in the cycle | first poll cycle | ideal (pages + ceil(other calls/concurrency)) x latency | efficiency | peak RSS |");
    println!("|---|---|---|---|---|---|---|---|");
    for tasks in [1_000, 10_000] {
        cycle_bench(tasks, Duration::from_millis(20), 32).await;
    }
}
