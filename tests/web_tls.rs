//! TLS and basic auth on the exporter's own endpoints, configured like node_exporter's
//! `--web.config.file`: a scrape over TLS succeeds with the right credentials and is refused
//! without them or with wrong ones.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use udts_exporter::simulator::{Behaviour, SimTask};

struct Tls {
    dir: tempfile::TempDir,
    ca: reqwest::Certificate,
}

/// A self-signed certificate for localhost and a web config file using it, with one user
/// `prometheus` / `scrape-secret`.
fn web_config(with_users: bool) -> Tls {
    let dir = tempfile::tempdir().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert_pem = certified.cert.pem();
    std::fs::write(dir.path().join("tls.crt"), &cert_pem).unwrap();
    std::fs::write(
        dir.path().join("tls.key"),
        certified.signing_key.serialize_pem(),
    )
    .unwrap();
    let mut yaml = "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n".to_string();
    if with_users {
        let hash = bcrypt::hash("scrape-secret", 4).unwrap();
        yaml.push_str(&format!("basic_auth_users:\n  prometheus: {hash}\n"));
    }
    std::fs::write(dir.path().join("web.yml"), yaml).unwrap();
    Tls {
        ca: reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap(),
        dir,
    }
}

/// The exporter with `tls`'s web config, one task, ready; and a client that trusts it.
async fn start_over_tls(tls: &Tls) -> (Harness, reqwest::Client) {
    let web_file = tls.dir.path().join("web.yml");
    let harness = start_unready(
        vec![SimTask::new(
            "udts-a",
            Behaviour::Fixed(json!({"Status": "Synced"})),
        )],
        PRIVATE_KEY,
        |config| config.web.config_file = Some(web_file.clone()),
    )
    .await
    .ready_over_tls(&tls.ca)
    .await;
    let client = http_client_builder()
        .add_root_certificate(tls.ca.clone())
        .build()
        .unwrap();
    (harness, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_over_tls_need_the_right_credentials() {
    let tls = web_config(true);
    let (harness, client) = start_over_tls(&tls).await;
    let url = format!("https://localhost:{}/metrics", harness.exporter.port());

    let response = client
        .get(&url)
        .basic_auth("prometheus", Some("scrape-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert_eq!(value(&text, "udts_task_up", &task("udts-a")), Some(1.0));

    let anonymous = client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    let wrong = client
        .get(&url)
        .basic_auth("prometheus", Some("guess"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let unknown = client
        .get(&url)
        .basic_auth("mallory", Some("scrape-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    // The scheme in any case, as Go's Request.BasicAuth takes it (RFC 9110 11.1).
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode("prometheus:scrape-secret");
    for scheme in ["basic", "BASIC", "bAsIc"] {
        let response = client
            .get(&url)
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{scheme}");
    }
    let not_basic = client
        .get(&url)
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(not_basic.status(), 401);

    // The task page and its JSON sit behind the same authentication.
    for path in ["/", "/api/v1/tasks", "/api/v1/tasks/udts-a"] {
        let url = format!("https://localhost:{}{path}", harness.exporter.port());
        assert_eq!(
            client.get(&url).send().await.unwrap().status(),
            401,
            "{path}"
        );
        let authorized = client
            .get(&url)
            .basic_auth("prometheus", Some("scrape-secret"))
            .send()
            .await
            .unwrap();
        assert_eq!(authorized.status(), 200, "{path}");
    }

    // Plain HTTP to the TLS port gets no metrics.
    let plain = http_get(format!(
        "http://127.0.0.1:{}/metrics",
        harness.exporter.port()
    ))
    .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
    // A client that does not trust the certificate is refused.
    assert!(http_get(&url).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_without_users_serves_anyone_over_https() {
    let tls = web_config(false);
    let (harness, client) = start_over_tls(&tls).await;
    let response = client
        .get(format!(
            "https://localhost:{}/healthz",
            harness.exporter.port()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[test]
fn a_broken_web_config_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.yml");
    for (yaml, expected) in [
        (
            "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
            "cert_file",
        ),
        (
            "basic_auth_users:\n  prometheus: plaintext-password\n",
            "basic_auth_users.prometheus",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  colour: blue\n",
            "colour",
        ),
        (
            "http_server_config:\n  headers:\n    Set-Cookie: a=b\n",
            "http_server_config.headers.Set-Cookie",
        ),
        ("http_server_config:\n  compression: true\n", "compression"),
    ] {
        std::fs::write(&path, yaml).unwrap();
        let error = udts_exporter::web_config::WebSecurity::load(&path).unwrap_err();
        assert!(error.to_string().contains(expected), "{error}");
        assert!(!error.to_string().contains("plaintext-password"), "{error}");
    }
}

/// Serves the simulated gateway over HTTPS with a self-signed certificate; returns its URL and
/// the certificate's PEM file.
async fn tls_gateway(
    tasks: Vec<SimTask>,
    shutdown: &tokio_util::sync::CancellationToken,
    dir: &std::path::Path,
) -> (
    udts_exporter::simulator::Gateway,
    String,
    std::path::PathBuf,
) {
    let gateway = udts_exporter::simulator::Gateway::new(PUBLIC_KEY, PRIVATE_KEY);
    for task in tasks {
        gateway.add_task(task);
    }
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let ca = dir.join("gateway-ca.pem");
    std::fs::write(&ca, certified.cert.pem()).unwrap();
    std::fs::write(dir.join("gw.crt"), certified.cert.pem()).unwrap();
    std::fs::write(dir.join("gw.key"), certified.signing_key.serialize_pem()).unwrap();
    std::fs::write(
        dir.join("gw.yml"),
        "tls_server_config:\n  cert_file: gw.crt\n  key_file: gw.key\n",
    )
    .unwrap();
    let security = udts_exporter::web_config::WebSecurity::load(&dir.join("gw.yml")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(udts_exporter::listen::serve(
        vec![listener],
        gateway.router(),
        std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(security)),
        true,
        udts_exporter::config::WebLimits::default(),
        shutdown.clone(),
    ));
    (gateway, format!("https://localhost:{port}"), ca)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_tls_is_verified_and_a_private_ca_can_be_trusted() {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let dir = tempfile::tempdir().unwrap();
    let task_list = || {
        vec![SimTask::new(
            "udts-a",
            Behaviour::Fixed(json!({"Status": "Synced"})),
        )]
    };
    let (gateway, endpoint, ca) = tls_gateway(task_list(), &shutdown, dir.path()).await;

    // Without the CA the gateway's certificate is not trusted: the task is unreadable.
    let untrusted = {
        let mut config = config_for(&gateway, &endpoint, PRIVATE_KEY);
        config.web.listen_address = "127.0.0.1:0".into();
        config
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = udts_exporter::exporter::start(&untrusted, listener, shutdown.clone())
        .await
        .unwrap();
    wait_ready(running.local_addr).await;
    let text = scrape(running.local_addr).await;
    assert_eq!(value(&text, "udts_task_up", &task("udts-a")), Some(0.0));
    assert_eq!(
        gateway.requests("GetUDTSTaskStatus"),
        0,
        "no request got through"
    );

    // With api.ca_file it is.
    let mut trusted = untrusted.clone();
    trusted.api.ca_file = Some(ca);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = udts_exporter::exporter::start(&trusted, listener, shutdown.clone())
        .await
        .unwrap();
    wait_ready(running.local_addr).await;
    let text = scrape(running.local_addr).await;
    assert_eq!(value(&text, "udts_task_up", &task("udts-a")), Some(1.0));
    shutdown.cancel();
}
