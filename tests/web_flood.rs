//! The flood of issue 24 against the release-like binary serving a 10,000-task exposition, its
//! soft open-file limit at 1,024 as systemd gives a service: 10,000 idle connections and 1,000
//! slowloris connections held from another loopback address (reopened as soon as they are
//! closed), slow readers of the plain `/metrics`, 1,024 connections each sending a 400 KB
//! request head, keep-alive connections from a third address that complete a request and then
//! idle, and Debian's `slowhttptest` when it is here.
//! Meanwhile a scrape from Prometheus' address succeeds every time; the idle and slowloris
//! connections are closed on their deadline and counted; the process neither panics nor exits,
//! and afterwards everything is as before. The latencies and memory are printed for
//! BENCHMARKS.md (no timing asserts).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio_util::sync::CancellationToken;
use udts_exporter::simulator::SimTask;

const TASKS: usize = 10_000;
const IDLE: usize = 10_000;
const SLOWLORIS: usize = 1_000;
const SLOW_READERS: usize = 20;
const HUGE_HEADS: usize = 1_024;
const KEEP_ALIVE: usize = 300;
const FLOOD: Duration = Duration::from_secs(20);

/// Raises this process's own soft open-file limit: the attacker needs 11,000 descriptors.
fn raise_own_limit() -> bool {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    let _ = setrlimit(Resource::Nofile, limit);
    getrlimit(Resource::Nofile).current.is_none_or(|soft| {
        soft >= (IDLE + SLOWLORIS + SLOW_READERS + HUGE_HEADS + KEEP_ALIVE + 1_000) as u64
    })
}

/// A connection to `target` from 127.0.0.2, another host as far as the server can tell.
async fn connect_from_elsewhere(target: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    connect_from("127.0.0.2", target).await
}

/// A connection to `target` from the loopback address `from`.
async fn connect_from(from: &str, target: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("{from}:0").parse().unwrap())?;
    socket.connect(target).await
}

// The exporter under test is the binary of this build: a debug build spends the flood in its
// own unoptimized accept loop, which measures nothing a user runs. `.ci/run` runs this test
// with `cargo test --release --test web_flood`.
#[cfg_attr(
    debug_assertions,
    ignore = "measures the release binary: cargo test --release --test web_flood"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_slowloris_and_slow_clients_never_stops_a_scrape() {
    if !tool_available("prlimit") || !raise_own_limit() {
        eprintln!("skipped: needs prlimit and 12,000 descriptors for the attacker");
        return;
    }
    let shutdown = CancellationToken::new();
    let tasks = (0..TASKS).map(mixed_task).collect::<Vec<SimTask>>();
    let (_gateway, endpoint) = gateway_with(tasks, &shutdown).await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, PRIVATE_KEY).unwrap();
    private_to_owner(&key);
    let mut text = format!(
        "[api]\nendpoint = \"{endpoint}\"\npublic_key = \"{PUBLIC_KEY}\"\nprivate_key_file = \"{}\"\n\
         timeout = \"2s\"\nconcurrency = 32\n[poll]\ninterval = \"10s\"\n\
         [web]\nread_header_timeout = \"3s\"\n",
        key.display()
    );
    for i in 0..TASKS {
        text.push_str(&format!("[[tasks]]\nid = \"udts-bench-{i:06}\"\n"));
    }
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    let exporter = spawn_exporter_via(
        &["prlimit", "--nofile=1024:", "--"],
        [std::ffi::OsStr::new("--config"), path.as_os_str()],
        std::process::Stdio::from(std::fs::File::create(dir.path().join("stderr")).unwrap()),
    )
    .await;
    let port = exporter.addr.port();
    let target: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_ready_within(target, Duration::from_secs(60)).await;
    let pid = exporter.child.id().unwrap();
    let baseline = scrape(target).await;
    let baseline_tasks = family(&baseline, "udts_task_up").len();
    assert_eq!(baseline_tasks, TASKS);

    let stop = Arc::new(AtomicBool::new(false));
    let reopened = Arc::new(AtomicU64::new(0));
    let mut attackers = Vec::new();
    // Idle: connect, send nothing, reconnect when closed.
    for _ in 0..IDLE {
        let (stop, reopened) = (Arc::clone(&stop), Arc::clone(&reopened));
        attackers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match connect_from_elsewhere(target).await {
                    Ok(mut stream) => {
                        let mut byte = [0u8; 1];
                        tokio::select! {
                            _ = stream.read(&mut byte) => { reopened.fetch_add(1, Ordering::Relaxed); }
                            () = async { while !stop.load(Ordering::Relaxed) {
                                tokio::time::sleep(Duration::from_millis(200)).await;
                            } } => {}
                        }
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }));
    }
    // Slowloris: a header line a second, forever.
    for _ in 0..SLOWLORIS {
        let (stop, reopened) = (Arc::clone(&stop), Arc::clone(&reopened));
        attackers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut stream) = connect_from_elsewhere(target).await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let _ = stream
                    .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                    .await;
                let mut i = 0;
                while !stop.load(Ordering::Relaxed)
                    && stream
                        .write_all(format!("X-{i}: y\r\n").as_bytes())
                        .await
                        .is_ok()
                {
                    i += 1;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                reopened.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Slow readers of the plain exposition (17 MB): a kilobyte a second.
    for _ in 0..SLOW_READERS {
        let stop = Arc::clone(&stop);
        attackers.push(tokio::spawn(async move {
            let Ok(mut stream) = connect_from_elsewhere(target).await else {
                return;
            };
            let _ = stream
                .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                .await;
            let mut buffer = [0u8; 1024];
            while !stop.load(Ordering::Relaxed) {
                if matches!(stream.read(&mut buffer).await, Ok(0) | Err(_)) {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }));
    }
    // Heads of 400 KB (hyper's own read buffer): each answered 431 at 16 KiB and closed,
    // whereupon the attacker sends the next.
    let huge_line = Arc::new(format!("X-Big: {}\r\n", "y".repeat(8 * 1024)));
    for _ in 0..HUGE_HEADS {
        let (stop, line) = (Arc::clone(&stop), Arc::clone(&huge_line));
        attackers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut stream) = connect_from("127.0.0.4", target).await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let _ = stream
                    .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                    .await;
                for _ in 0..50 {
                    if stream.write_all(line.as_bytes()).await.is_err() {
                        break;
                    }
                }
                let mut rest = Vec::new();
                let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest))
                    .await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    // Keep-alive from 127.0.0.3: a request answered on each connection, then idle until the
    // server closes it (to make room, or at idle_timeout), then again.
    for _ in 0..KEEP_ALIVE {
        let stop = Arc::clone(&stop);
        attackers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut stream) = connect_from("127.0.0.3", target).await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let _ = stream
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    .await;
                let mut buffer = [0u8; 1024];
                while !stop.load(Ordering::Relaxed) {
                    let read =
                        tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buffer));
                    if let Ok(Ok(0) | Err(_)) = read.await {
                        break;
                    }
                }
            }
        }));
    }
    // Debian's slowhttptest, slowloris mode, beside ours.
    let slowhttptest = tool_available("slowhttptest").then(|| {
        std::process::Command::new("slowhttptest")
            .args(["-H", "-c", "1500", "-i", "3", "-r", "300", "-l"])
            .arg(FLOOD.as_secs().to_string())
            .args(["-u", &format!("http://127.0.0.1:{port}/metrics")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    });

    // Prometheus scrapes from 127.0.0.1, gzip, a 10 s timeout as a scrape_timeout would be. It
    // is another process, not a task among the attackers': its own thread and runtime.
    let (mut latencies, failures, peak_rss) = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(scrape_through_the_flood(port, pid))
    })
    .join()
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    for attacker in attackers {
        let _ = attacker.await;
    }
    if let Some(mut tool) = slowhttptest {
        let _ = tool.kill();
        let _ = tool.wait();
    }

    // Afterwards: alive, the same tasks, every connection closed and counted.
    let text = scrape_until(target, "the flood's connections gone", |text| {
        value(text, "udts_web_open_connections", "").is_some_and(|open| open <= 1.0)
    })
    .await;
    assert!(
        failures.is_empty(),
        "{} of {} scrapes failed: {failures:#?}\nthe server's counts afterwards: {}\nits log: {}",
        failures.len(),
        failures.len() + latencies.len(),
        [
            "udts_web_connections_closed_total",
            "udts_web_requests_rejected_total",
            "udts_web_accept_errors_total"
        ]
        .iter()
        .flat_map(|name| family(&text, name)
            .into_iter()
            .map(move |(k, v)| format!("{name}{k} {v}")))
        .collect::<Vec<_>>()
        .join(", "),
        std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default()
    );
    assert_eq!(family(&text, "udts_task_up").len(), TASKS);
    let closed: f64 = family(&text, "udts_web_connections_closed_total")
        .values()
        .sum();
    latencies.sort();
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    eprintln!(
        "flood of {IDLE} idle + {SLOWLORIS} slowloris + {SLOW_READERS} slow readers + \
         {HUGE_HEADS} 400 KB heads + {KEEP_ALIVE} keep-alive for {:?}: \
         {} scrapes, all ok, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; peak RSS {} MiB; \
         {closed} connections closed by the server ({} reopened by the attackers); {}",
        FLOOD,
        latencies.len(),
        ms(&latencies[latencies.len() / 2]),
        ms(&latencies[latencies.len() * 99 / 100]),
        ms(latencies.last().unwrap()),
        peak_rss / 1024,
        reopened.load(Ordering::Relaxed),
        family(&text, "udts_web_connections_closed_total")
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(closed >= (IDLE / 2) as f64, "{closed}");
    exporter.signal("TERM");
    shutdown.cancel();
}

/// Scrapes every 250 ms for the flood's length: each scrape's latency or failure, and the
/// exporter's peak RSS.
async fn scrape_through_the_flood(port: u16, pid: u32) -> (Vec<Duration>, Vec<String>, u64) {
    let client = http_client_builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    let mut peak_rss = 0;
    let started = Instant::now();
    while started.elapsed() < FLOOD {
        let began = Instant::now();
        let response = client
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .header("accept-encoding", "gzip")
            .send()
            .await;
        let outcome = match response {
            Ok(response) if response.status() == 200 => {
                response.bytes().await.map(drop).map_err(|e| e.to_string())
            }
            Ok(response) => Err(format!("HTTP {}", response.status())),
            Err(error) => Err(format!("{error:?}")),
        };
        match outcome {
            Ok(()) => latencies.push(began.elapsed()),
            Err(error) => failures.push(format!(
                "{:?} into the flood, after {:?}: {error}",
                started.elapsed(),
                began.elapsed()
            )),
        }
        peak_rss = peak_rss.max(proc_status_kib(pid, "VmRSS:"));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    (latencies, failures, peak_rss)
}
