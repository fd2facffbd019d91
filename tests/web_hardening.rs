//! The endpoints' security as an attacker and an operator meet it, on the real binary and a
//! real TLS client: every refused handshake is explained once in the log and counted by reason,
//! `client_allowed_sans` and `rate_limit` work, an unknown user costs what a wrong password
//! costs, and every key of the web config is either understood or refused by name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::ca::Ca;
use common::*;
use rcgen::SanType;
use serde_json::json;
use udts_exporter::simulator::{Behaviour, SimTask};

fn run(program: &str, args: &[&str], dir: &Path) {
    let output = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The most common recipe for a client certificate on Debian 12: a CA and a CSR signed with
/// `openssl x509 -req` and no extension file, which OpenSSL 3.0 writes as X.509 v1.
fn openssl_v1_client(dir: &Path) -> String {
    run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ossl-ca.key",
            "-out",
            "ossl-ca.crt",
            "-subj",
            "/CN=ossl-ca",
            "-days",
            "2",
        ],
        dir,
    );
    run(
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "cl.key",
            "-subj",
            "/CN=prometheus",
            "-out",
            "cl.csr",
        ],
        dir,
    );
    run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            "cl.csr",
            "-CA",
            "ossl-ca.crt",
            "-CAkey",
            "ossl-ca.key",
            "-out",
            "cl.crt",
            "-days",
            "2",
        ],
        dir,
    );
    let text = run_output(
        "openssl",
        &["x509", "-in", "cl.crt", "-noout", "-text"],
        dir,
    );
    assert!(
        text.contains("Version: 1 (0x0)"),
        "not a v1 certificate:\n{text}"
    );
    format!(
        "{}{}",
        std::fs::read_to_string(dir.join("cl.crt")).unwrap(),
        std::fs::read_to_string(dir.join("cl.key")).unwrap()
    )
}

fn run_output(program: &str, args: &[&str], dir: &Path) -> String {
    let output = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn client(server_ca: &Ca, identity: Option<&str>) -> reqwest::Client {
    let mut builder = http_client_builder().add_root_certificate(
        reqwest::Certificate::from_pem(server_ca.issuer.pem().as_bytes()).unwrap(),
    );
    if let Some(pem) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_handshakes_are_explained_once_per_peer_and_counted() {
    if !tool_available("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server_ca, client_ca) = (Ca::new(), Ca::new());
    std::fs::write(
        dir.path().join("tls.pem"),
        server_ca.identity(&["localhost"], |_| {}),
    )
    .unwrap();
    let v1 = openssl_v1_client(dir.path());
    // The openssl CA signs clients too, so the v1 certificate fails for its version alone.
    let clients = format!(
        "{}{}",
        client_ca.issuer.pem(),
        std::fs::read_to_string(dir.path().join("ossl-ca.crt")).unwrap()
    );
    std::fs::write(dir.path().join("clients.crt"), clients).unwrap();
    std::fs::write(
        dir.path().join("web.yml"),
        "tls_server_config:\n  cert_file: tls.pem\n  key_file: tls.pem\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients.crt\n  \
         client_allowed_sans: [prometheus.monitoring.svc, 10.0.0.7]\n",
    )
    .unwrap();
    let log = dir.path().join("stderr.log");
    let exporter = spawn_exporter(
        [
            "demo".as_ref(),
            "--web.config.file".as_ref(),
            dir.path().join("web.yml").as_os_str(),
        ],
        std::fs::File::create(&log).unwrap().into(),
    )
    .await;
    let port = exporter.addr.port();
    let url = format!("https://localhost:{port}/healthz");
    let attempt = |identity: Option<String>| {
        let client = client(&server_ca, identity.as_deref());
        let url = url.clone();
        async move { client.get(url).send().await.map(|r| r.status()) }
    };

    // Allowed: a certificate from client_ca_file with an allowed SAN (DNS, or IP).
    let allowed = client_ca.identity(&["prometheus.monitoring.svc"], |_| {});
    assert_eq!(attempt(Some(allowed.clone())).await.unwrap(), 200);
    let by_ip = client_ca.identity(&[], |p| {
        p.subject_alt_names = vec![SanType::IpAddress("10.0.0.7".parse().unwrap())]
    });
    assert_eq!(attempt(Some(by_ip)).await.unwrap(), 200);

    // Refused, each for its own reason; the v1 certificate three times, sent by OpenSSL's
    // own client (rustls will not even load a v1 certificate; Go's and OpenSSL's clients send
    // it, which is how a scraper meets the refusal).
    let _ = &v1;
    std::fs::write(dir.path().join("server-ca.pem"), server_ca.issuer.pem()).unwrap();
    for _ in 0..3 {
        let output = std::process::Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args([
                "-servername",
                "localhost",
                "-cert",
                "cl.crt",
                "-key",
                "cl.key",
            ])
            .args(["-CAfile", "server-ca.pem"])
            .current_dir(dir.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        // TLS 1.3 reports the server's alert on the first read; either way no HTTP answer.
        assert!(!text.contains("HTTP/1.1 200"), "{text}");
    }
    assert!(attempt(None).await.is_err());
    let stranger = server_ca.identity(&["prometheus.monitoring.svc"], |_| {});
    assert!(attempt(Some(stranger)).await.is_err());
    let expired = client_ca.identity(&["prometheus.monitoring.svc"], |p| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    assert!(attempt(Some(expired)).await.is_err());
    let other_san = client_ca.identity(&["grafana.example.com"], |_| {});
    assert!(attempt(Some(other_san)).await.is_err());
    // A scrape job left on scheme: http gets Go's answer instead of an empty reply.
    let plain = http_get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap();
    assert_eq!(plain.status(), 400);
    assert!(plain
        .text()
        .await
        .unwrap()
        .contains("HTTP request to an HTTPS server"));

    // The exposition re-renders the exporter's own counters every few seconds.
    let scraper = client(&server_ca, Some(&allowed));
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = scraper
            .get(format!("https://localhost:{port}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let plain_http = "udts_web_tls_handshake_errors_total{reason=\"plain_http\"} 1";
        if metrics.contains(plain_http) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let count = |reason: &str| {
        value(
            &metrics,
            "udts_web_tls_handshake_errors_total",
            &format!("{{reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(count("client_certificate_v1"), Some(3.0), "{metrics}");
    assert_eq!(count("no_client_certificate"), Some(1.0));
    assert_eq!(count("unknown_issuer"), Some(1.0));
    assert_eq!(count("expired"), Some(1.0));
    assert_eq!(count("san_not_allowed"), Some(1.0));
    assert_eq!(count("plain_http"), Some(1.0));
    assert_eq!(count("not_yet_valid"), Some(0.0));
    assert_eq!(
        value(&metrics, "udts_web_tls_certificate_reload_errors_total", ""),
        Some(0.0)
    );

    let logged = std::fs::read_to_string(&log).unwrap();
    for explanation in [
        "client certificate is X.509 v1; issue a v3 certificate (openssl x509 -req ... -extfile with extendedKeyUsage=clientAuth)",
        "plain HTTP request to the TLS port: set scheme: https in the scrape config",
        "no client certificate",
        "certificate not signed by client_ca_file",
        "client certificate expired",
        "client_allowed_sans",
    ] {
        assert!(logged.contains(explanation), "not logged: {explanation}\n{logged}");
    }
    assert!(logged.contains("127.0.0.1"), "the peer is named:\n{logged}");
    assert_eq!(
        logged.matches("X.509 v1").count(),
        1,
        "explained once per peer and reason:\n{logged}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_rotated_certificate_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    std::fs::write(
        dir.path().join("tls.pem"),
        ca.identity(&["localhost"], |_| {}),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("web.yml"),
        "tls_server_config:\n  cert_file: tls.pem\n  key_file: tls.pem\n",
    )
    .unwrap();
    let web_file = dir.path().join("web.yml");
    let harness = start_with_web(&web_file).await;
    let url = format!("https://localhost:{}/metrics", harness.exporter.port());
    // After a handshake, the process-wide counter as the registry reads it (the exposition
    // itself is re-rendered on its own schedule).
    let reload_errors = || async {
        client(&ca, None).get(&url).send().await.unwrap();
        udts_exporter::web_config::collectors()
            .iter()
            .flat_map(|c| c.collect())
            .filter(|family| family.name() == "udts_web_tls_certificate_reload_errors_total")
            .map(|family| family.get_metric()[0].get_counter().get_value())
            .sum::<f64>()
    };
    let before = reload_errors().await;
    std::fs::write(
        dir.path().join("tls.pem"),
        "-----BEGIN CERTIFICATE-----\nbroken\n",
    )
    .unwrap();
    // The next handshake notices the change, keeps the old pair and counts the failure.
    assert_eq!(reload_errors().await, before + 1.0);
    assert_eq!(
        reload_errors().await,
        before + 1.0,
        "counted once per version"
    );
}

/// The exporter with one synced task and the web config at `web`, not waiting for readiness
/// (auth may hide it).
async fn start_with_web(web: &Path) -> Harness {
    let web = web.to_path_buf();
    start_unready(
        vec![SimTask::new(
            "udts-a",
            Behaviour::Fixed(json!({"Status": "Synced"})),
        )],
        PRIVATE_KEY,
        move |config| config.web.config_file = Some(web),
    )
    .await
}

/// Median of `samples`.
fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_user_costs_and_looks_the_same_as_a_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    let hash = bcrypt::hash("right-password", 8).unwrap();
    std::fs::write(&web, format!("basic_auth_users:\n  alice: {hash}\n")).unwrap();
    let harness = start_with_web(&web).await;
    let url = format!("http://{}/metrics", harness.exporter);
    let client = http_client();
    let ask = |user: &'static str, password: String| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let started = Instant::now();
            let response = client
                .get(url)
                .basic_auth(user, Some(password))
                .send()
                .await
                .unwrap();
            let elapsed = started.elapsed();
            let mut headers: Vec<(String, String)> = response
                .headers()
                .iter()
                .filter(|(name, _)| *name != "date")
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
                .collect();
            headers.sort();
            (
                elapsed,
                response.status(),
                headers,
                response.text().await.unwrap(),
            )
        }
    };
    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    for i in 0..25 {
        // A new password each time: nothing is answered from the cache.
        let a = ask("mallory", format!("guess-{i}")).await;
        let b = ask("alice", format!("guess-{i}")).await;
        assert_eq!(a.1, 401);
        assert_eq!((a.1, &a.2, &a.3), (b.1, &b.2, &b.3), "identical answers");
        unknown.push(a.0);
        wrong.push(b.0);
    }
    let (unknown, wrong) = (median(unknown), median(wrong));
    let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
    assert!(
        (0.67..1.5).contains(&ratio),
        "unknown user {unknown:?} vs wrong password {wrong:?}: the difference tells users apart"
    );
    assert_eq!(ask("alice", "right-password".into()).await.1, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_beyond_the_burst_and_zero_turns_it_off() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, "rate_limit:\n  interval: 1h\n  burst: 3\n").unwrap();
    let harness = start_with_web(&web).await;
    let url = format!("http://{}/healthz", harness.exporter);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(http_get(&url).await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);

    std::fs::write(&web, "rate_limit:\n  interval: 0\n  burst: 0\n").unwrap();
    let harness = start_with_web(&web).await;
    let url = format!("http://{}/healthz", harness.exporter);
    for _ in 0..10 {
        assert_eq!(http_get(&url).await.unwrap().status(), 200);
    }
}

#[test]
fn every_exporter_toolkit_key_is_understood_and_others_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let leaf = ca.identity(&["localhost"], |_| {});
    let (cert, key) = leaf.split_at(leaf.find("-----BEGIN PRIVATE KEY").unwrap());
    let indent = |pem: &str| {
        pem.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    // Every documented key at once, the certificates inline.
    let full = format!(
        "tls_server_config:\n  cert: |\n{}  key: |\n{}  client_ca: |\n{}  \
         client_auth_type: RequireAndVerifyClientCert\n  client_allowed_sans: [a.example]\n  \
         min_version: TLS12\n  max_version: TLS13\n  \
         cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n  \
         prefer_server_cipher_suites: true\n  curve_preferences: [X25519, CurveP256]\n\
         http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n\
         basic_auth_users:\n  alice: {}\n\
         rate_limit:\n  interval: 100ms\n  burst: 10\n",
        indent(cert),
        indent(key),
        indent(&ca.issuer.pem()),
        bcrypt::hash("x", 4).unwrap()
    );
    let path = dir.path().join("web.yml");
    std::fs::write(&path, &full).unwrap();
    let security = udts_exporter::web_config::WebSecurity::load(&path).unwrap();
    assert!(security.tls.is_some() && security.basic_auth.is_some());
    assert!(security.rate_limit.is_some());

    for (yaml, named) in [
        ("rate_limit:\n  intervall: 1s\n  burst: 1\n", "intervall"),
        (
            "rate_limit:\n  interval: 1s\n  burst: 0\n",
            "rate_limit.burst",
        ),
        ("basic_auth_user:\n  alice: x\n", "basic_auth_user"),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_allowed_san: [x]\n",
            "client_allowed_san",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  cert: c\n  key: d\n",
            "not both",
        ),
    ] {
        std::fs::write(&path, yaml).unwrap();
        let error = udts_exporter::web_config::WebSecurity::load(&path)
            .unwrap_err()
            .to_string();
        assert!(error.contains(named), "{yaml}: {error}");
    }
}
