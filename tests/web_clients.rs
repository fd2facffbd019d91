//! Hostile and careless clients against the real binary: a connection that sends nothing, a
//! slowloris head, an idle keep-alive, more connections than `web.max_connections`, more than
//! the open-file limit allows; and the Prometheus conventions of listening on several
//! addresses and on sockets systemd passes. Each is closed on time and counted, and a scrape
//! always gets through.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use udts_exporter::simulator::{Behaviour, SimTask};

const BINARY: &str = env!("CARGO_BIN_EXE_udts-exporter");

/// A config for one task of a fresh gateway, with `web` appended to `[web]`.
async fn config(shutdown: &CancellationToken, web: &str) -> (String, tempfile::TempDir) {
    let task = SimTask::new("udts-a", Behaviour::Fixed(json!({"Status": "Syncing"})));
    let (_gateway, endpoint) = gateway_with(vec![task], shutdown).await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, PRIVATE_KEY).unwrap();
    private_to_owner(&key);
    let text = format!(
        "[api]\nendpoint = \"{endpoint}\"\npublic_key = \"{PUBLIC_KEY}\"\nprivate_key_file = \"{}\"\n\
         timeout = \"500ms\"\n[poll]\ninterval = \"1s\"\n[web]\n{web}\n[[tasks]]\nid = \"udts-a\"\n",
        key.display()
    );
    (text, dir)
}

/// Reads until the server closes the connection; how long that took.
async fn closed_after(mut stream: TcpStream) -> Duration {
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the server never closed the connection"),
        }
    }
}

fn counted(text: &str, reason: &str) -> f64 {
    value(
        text,
        "udts_web_connections_closed_total",
        &format!("{{reason=\"{reason}\"}}"),
    )
    .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_slow_and_idle_clients_are_closed_on_their_deadlines_and_counted() {
    let shutdown = CancellationToken::new();
    let (text, _dir) = config(
        &shutdown,
        "read_header_timeout = \"2s\"\nidle_timeout = \"4s\"\nmax_connections = 20",
    )
    .await;
    let (exporter, _config_dir) = spawn_with_config(&text, "warn").await;
    let addr = exporter.addr;
    wait_ready(addr).await;

    // Sends nothing: closed after the head deadline.
    let silent = TcpStream::connect(addr).await.unwrap();
    // Slowloris: a header line every 300 ms; the deadline is absolute, not per byte.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let dribble = tokio::spawn(async move {
        let started = Instant::now();
        for i in 0..100 {
            if slow
                .write_all(format!("X-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        panic!("the slowloris connection stayed open for 30 s");
    });
    let silent_for = closed_after(silent).await;
    assert!(silent_for >= Duration::from_millis(1900), "{silent_for:?}");
    assert!(silent_for < Duration::from_secs(4), "{silent_for:?}");
    let slow_for = dribble.await.unwrap();
    assert!(slow_for < Duration::from_secs(5), "{slow_for:?}");

    // Keep-alive: a second request on the same connection within idle_timeout, then closed
    // once idle for longer.
    let mut keep = TcpStream::connect(addr).await.unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    for _ in 0..2 {
        keep.write_all(request).await.unwrap();
        let mut buffer = [0u8; 1024];
        let n = keep.read(&mut buffer).await.unwrap();
        assert!(
            buffer[..n].starts_with(b"HTTP/1.1 200"),
            "{:?}",
            &buffer[..n]
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let idle_for = closed_after(keep).await;
    assert!(idle_for < Duration::from_secs(6), "{idle_for:?}");

    // Twice max_connections of silent clients at once: the first 20 take every place, each
    // within its second of grace, so the other 20 wait in vain and are refused; a scrape,
    // whose whole request arrives at once, still gets in.
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    assert_eq!(family(&scrape(addr).await, "udts_task_up").len(), 1);
    // Past the grace, each newcomer evicts the one that has waited longest.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for _ in 0..10 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    // The exposition is rendered on change (the poller changes it every second): counters
    // show up within a render or two.
    let text = scrape_until(addr, "the closes counted", |text| {
        counted(text, "evicted") >= 10.0
            && counted(text, "read_header_timeout") >= 2.0
            && counted(text, "idle_timeout") >= 1.0
            && value(
                text,
                "udts_web_requests_rejected_total",
                "{reason=\"max_connections\"}",
            )
            .is_some_and(|refused| refused >= 19.0)
    })
    .await;
    assert!(
        value(&text, "udts_web_open_connections", "").unwrap() <= 20.0,
        "{text}"
    );
    drop(held);
    exporter.signal("TERM");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_file_descriptors_backs_off_and_recovers() {
    if !tool_available("prlimit") {
        return;
    }
    let shutdown = CancellationToken::new();
    let (text, dir) = config(&shutdown, "read_header_timeout = \"30s\"").await;
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    // A hard limit of 64 descriptors: raising the soft one cannot help.
    let exporter = spawn_exporter_via(
        &["prlimit", "--nofile=64:64", "--"],
        [std::ffi::OsStr::new("--config"), path.as_os_str()],
        std::process::Stdio::null(),
    )
    .await;
    let addr = exporter.addr;
    wait_ready(addr).await;
    let mut held = Vec::new();
    for _ in 0..100 {
        if let Ok(stream) = TcpStream::connect(addr).await {
            held.push(stream);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(held);
    // Once the flood is gone, everything is as before, and the errors were counted.
    let text = scrape_until(addr, "accept errors counted", |text| {
        value(text, "udts_web_accept_errors_total", "").is_some_and(|v| v > 0.0)
    })
    .await;
    assert_eq!(value(&text, "udts_task_up", &task("udts-a")), Some(1.0));
    exporter.signal("TERM");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
    if !tool_available("prlimit") {
        return;
    }
    let shutdown = CancellationToken::new();
    let (text, dir) = config(&shutdown, "").await;
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    let exporter = spawn_exporter_via(
        &["prlimit", "--nofile=1024:8192", "--"],
        [std::ffi::OsStr::new("--config"), path.as_os_str()],
        std::process::Stdio::null(),
    )
    .await;
    let pid = exporter.child.id().unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, ["8192", "8192"], "{line}");
    exporter.signal("TERM");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_listen_addresses_all_answer() {
    let shutdown = CancellationToken::new();
    let (text, dir) = config(&shutdown, "").await;
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    let second: SocketAddr = format!("127.0.0.2:{}", free_port()).parse().unwrap();
    // spawn_exporter adds --web.listen-address 127.0.0.1:0 after these: both hold.
    let exporter = spawn_exporter(
        [
            "--config",
            path.to_str().unwrap(),
            "--web.listen-address",
            &second.to_string(),
        ],
        std::process::Stdio::null(),
    )
    .await;
    for addr in [exporter.addr, second] {
        wait_ready(addr).await;
        assert!(scrape(addr).await.contains("udts_task_up"), "{addr}");
    }
    exporter.signal("TERM");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_passed_by_systemd_are_served() {
    if !tool_available("systemd-socket-activate") {
        return;
    }
    let shutdown = CancellationToken::new();
    let (text, dir) = config(&shutdown, "").await;
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    let port = free_port();
    let mut child = tokio::process::Command::new("systemd-socket-activate")
        .args(["-l", &format!("127.0.0.1:{port}"), BINARY, "--config"])
        .arg(&path)
        .arg("--web.systemd-socket")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // The first connection starts the exporter on the passed socket.
    wait_ready_within(addr, Duration::from_secs(20)).await;
    assert!(scrape(addr).await.contains("udts_task_up"));
    let _ = child.start_kill();
    let _ = child.wait().await;

    // Without a passed socket the flag is refused, saying why.
    let output = tokio::process::Command::new(BINARY)
        .arg("--config")
        .arg(&path)
        .arg("--web.systemd-socket")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("LISTEN_FDS"));
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_huge_heads_and_clients_that_leave_mid_answer_affect_only_themselves() {
    let shutdown = CancellationToken::new();
    let (text, _dir) = config(&shutdown, "").await;
    let (exporter, _config_dir) = spawn_with_config(&text, "warn").await;
    let addr = exporter.addr;
    wait_ready(addr).await;

    // Garbage instead of HTTP: an error answer or a close, nothing else.
    let mut garbage = TcpStream::connect(addr).await.unwrap();
    garbage
        .write_all(b"\x16\x03\x01\x00\xff not http at all\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), garbage.read_to_end(&mut answer)).await;
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 400"),
        "{answer:?}"
    );

    // A head larger than any real one: refused (431) or closed, never buffered without end.
    let mut huge = TcpStream::connect(addr).await.unwrap();
    huge.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let line = format!("X-Big: {}\r\n", "y".repeat(8 * 1024));
    let mut sent = 0;
    while sent < 2 * 1024 * 1024 {
        if huge.write_all(line.as_bytes()).await.is_err() {
            break;
        }
        sent += line.len();
    }
    let _ = huge.write_all(b"\r\n").await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), huge.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the connection of a {sent}-byte head stayed open"
    );
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&answer[..answer.len().min(200)])
    );

    // The documented bound on a request head (16 KiB): a head just under it is served, one
    // just over it is answered 431 and closed.
    for (filler, status) in [(15 * 1024, "HTTP/1.1 200"), (17 * 1024, "HTTP/1.1 431")] {
        let mut client = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\nConnection: close\r\n\r\n",
            "y".repeat(filler)
        );
        client.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut answer))
            .await
            .expect("the connection is closed after the answer")
            .unwrap();
        assert!(
            answer.starts_with(status.as_bytes()),
            "{filler}: {}",
            String::from_utf8_lossy(&answer[..answer.len().min(200)])
        );
    }

    // A client that asks for the plain exposition and leaves after its first bytes.
    for _ in 0..20 {
        let mut leaver = TcpStream::connect(addr).await.unwrap();
        leaver
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut first = [0u8; 64];
        let _ = leaver.read(&mut first).await;
    }

    // None of it touched anyone else.
    let text = scrape(addr).await;
    assert_eq!(
        value(&text, "udts_task_up", &task("udts-a")),
        Some(1.0),
        "{text}"
    );
    exporter.signal("TERM");
    shutdown.cancel();
}

/// One address that completes a request on every connection and then idles, keep-alive,
/// holding every place: a scrape from another address gets in within a second, round after
/// round, while the hog refills what it lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holding_every_place_cannot_keep_a_scrape_out() {
    const PLACES: usize = 16;
    let shutdown = CancellationToken::new();
    let (text, _dir) = config(
        &shutdown,
        &format!("max_connections = {PLACES}\nidle_timeout = \"2m\""),
    )
    .await;
    let (exporter, _config_dir) = spawn_with_config(&text, "warn").await;
    let addr = exporter.addr;
    wait_ready(addr).await;
    let scraper = http_client_builder()
        .timeout(Duration::from_secs(1))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut hog: Vec<TcpStream> = Vec::new();
    for round in 0..5 {
        // Refill: from 127.0.0.3 (127.0.0.2 is another test's listen address), a request
        // answered on each connection, then nothing. A connection refused at the bound means
        // every place is the hog's already; a slow answer (a loaded machine) is tried again.
        let mut refused = Vec::new();
        while hog.len() < PLACES && refused.len() < 3 {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.3:0".parse().unwrap()).unwrap();
            let mut stream = socket.connect(addr).await.unwrap();
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut buffer = [0u8; 256];
            let read =
                tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await;
            match read {
                Ok(Ok(n)) if buffer[..n].starts_with(b"HTTP/1.1 200") => hog.push(stream),
                other => refused.push(format!("{other:?}")),
            }
        }
        assert!(
            hog.len() >= PLACES - 1,
            "round {round}: only {} held ({refused:?})",
            hog.len()
        );
        let response = scraper
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: the scrape did not get in: {e:?}"));
        assert_eq!(response.status(), 200, "round {round}");
        assert!(response.text().await.unwrap().contains("udts_task_up"));
        // Drop what the server closed to make room.
        let mut open = Vec::new();
        for mut stream in hog.drain(..) {
            let mut byte = [0u8; 1];
            match tokio::time::timeout(Duration::from_millis(20), stream.read(&mut byte)).await {
                Ok(_) => {} // closed (or, never here, more bytes)
                Err(_) => open.push(stream),
            }
        }
        hog = open;
    }
    // Each round's scrape took one of the hog's places.
    scrape_until(addr, "five evictions counted", |text| {
        counted(text, "evicted") >= 5.0
    })
    .await;
    exporter.signal("TERM");
    shutdown.cancel();
}
