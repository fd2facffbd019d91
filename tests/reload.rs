//! Reloads run off the async workers and one at a time: a scrape is served while a slow reload
//! works, and reloads fired together leave one configuration in force whole.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use udts_exporter::config::Config;
use udts_exporter::exporter::ConfigLoader;

use common::*;

/// Generation `n` of the configuration: one task `udts-gen-n`, and a web config whose
/// Strict-Transport-Security max-age is `n`, so both halves of what a reload applies (the
/// runtime and the live web security) say which generation they came from.
fn generation(base: &Config, dir: &std::path::Path, n: usize) -> Config {
    let web = dir.join(format!("web-{n}.yml"));
    std::fs::write(
        &web,
        format!("http_server_config:\n  headers:\n    Strict-Transport-Security: max-age={n}\n"),
    )
    .unwrap();
    let mut config = base.clone();
    config.tasks.truncate(1);
    config.tasks[0].id = format!("udts-gen-{n}");
    config.web.config_file = Some(web);
    config.web.enable_lifecycle = true;
    config
}

/// The generation the served answers come from: (web security's, the task list's).
async fn generation_in_force(addr: std::net::SocketAddr) -> (String, String) {
    let response = http_get(format!("http://{addr}/api/v1/tasks"))
        .await
        .unwrap();
    let web = response.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .trim_start_matches("max-age=")
        .to_string();
    let tasks: serde_json::Value =
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let ids: Vec<String> = tasks["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|task| task["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    (web, ids[0].trim_start_matches("udts-gen-").to_string())
}

async fn post_reload(addr: std::net::SocketAddr) -> u16 {
    http_client()
        .post(format!("http://{addr}/-/reload"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Starts the exporter on a loader that takes `work` per load (as a reload's bcrypt checks,
/// file reads and client builds take) and counts how many loads overlap.
async fn start(
    work: Duration,
) -> (
    std::net::SocketAddr,
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
    tempfile::TempDir,
    CancellationToken,
) {
    let shutdown = CancellationToken::new();
    let (gateway, endpoint) = gateway_with(vec![mixed_task(0)], &shutdown).await;
    let base = config_for(&gateway, &endpoint, PRIVATE_KEY);
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most_at_once = Arc::new(AtomicUsize::new(0));
    let loader: ConfigLoader = {
        let (calls, in_flight, most) = (calls.clone(), in_flight.clone(), most_at_once.clone());
        let dir = dir.path().to_path_buf();
        Arc::new(move || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            // The first load is start-up's; later ones are reloads and take their time.
            if n > 0 {
                std::thread::sleep(work);
            }
            in_flight.fetch_sub(1, Ordering::SeqCst);
            Ok(generation(&base, &dir, n))
        })
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = udts_exporter::exporter::start_with_loader(loader, listener, shutdown.clone())
        .await
        .unwrap();
    wait_ready(running.local_addr).await;
    (running.local_addr, calls, most_at_once, dir, shutdown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_fired_together_run_one_at_a_time_and_leave_one_config_whole() {
    let (addr, calls, most_at_once, _dir, shutdown) = start(Duration::from_millis(150)).await;
    assert_eq!(generation_in_force(addr).await, ("0".into(), "0".into()));
    let statuses = futures_util::future::join_all((0..4).map(|_| post_reload(addr))).await;
    assert_eq!(statuses, [200; 4]);
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    assert_eq!(
        most_at_once.load(Ordering::SeqCst),
        1,
        "two loads overlapped"
    );
    // The last load's configuration, both halves of it. The task list is published by the
    // renderer shortly after the store changes; a mix would never converge.
    let mut in_force = generation_in_force(addr).await;
    for _ in 0..100 {
        if in_force.1 == "4" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        in_force = generation_in_force(addr).await;
    }
    assert_eq!(in_force, ("4".into(), "4".into()));
    shutdown.cancel();
}

/// One async worker: a reload that held it would hold every scrape behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_scrape_is_answered_while_a_slow_reload_works() {
    let (addr, calls, _, _dir, shutdown) = start(Duration::from_secs(3)).await;
    let reload = tokio::spawn(async move { (post_reload(addr).await, std::time::Instant::now()) });
    // Until the reload is under way.
    while calls.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let scraped = scrape(addr).await;
    let scraped_at = std::time::Instant::now();
    assert!(scraped.contains("udts_task_up"), "{scraped}");
    let (status, reloaded_at) = reload.await.unwrap();
    assert_eq!(status, 200);
    assert!(
        scraped_at < reloaded_at,
        "the scrape waited for the reload to end"
    );
    shutdown.cancel();
}
