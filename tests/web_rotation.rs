//! The web config as node_exporter users know it, live: a rotated certificate is served to new
//! connections without a restart (a broken one keeps the old), mutual TLS with
//! `client_auth_type`/`client_ca_file`, `min_version`, `http_server_config.headers`, and a new
//! basic auth user after SIGHUP on the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::ca::Ca;
use common::*;
use serde_json::json;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use udts_exporter::simulator::{Behaviour, SimTask};

/// Replaces `path` atomically, as cert-manager and the kubelet do.
fn replace(path: &Path, text: &str) {
    let temporary = path.with_extension("new");
    std::fs::write(&temporary, text).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

fn install_provider() {
    udts_exporter::tls_provider::install();
}

/// Handshakes with `port` trusting `ca` (only TLS 1.2 when `tls12_only`); returns the server's
/// certificate.
async fn served_certificate(port: u16, ca: &Ca, tls12_only: bool) -> Result<Vec<u8>, String> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.issuer.der().to_vec()))
        .unwrap();
    let builder = if tls12_only {
        ClientConfig::builder_with_protocol_versions(&[&tokio_rustls::rustls::version::TLS12])
    } else {
        ClientConfig::builder()
    };
    let config = builder.with_root_certificates(roots).with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), stream)
        .await
        .map_err(|e| e.to_string())?;
    let (_, connection) = tls.get_ref();
    Ok(connection.peer_certificates().unwrap()[0].to_vec())
}

fn task() -> Vec<SimTask> {
    vec![SimTask::new(
        "udts-a",
        Behaviour::Fixed(json!({"Status": "Synced"})),
    )]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_served_to_new_connections_and_a_broken_one_is_not() {
    install_provider();
    let ca = Ca::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert_a, key_a, der_a) = ca.leaf(&["localhost"]);
    std::fs::write(dir.path().join("tls.crt"), &cert_a).unwrap();
    std::fs::write(dir.path().join("tls.key"), &key_a).unwrap();
    std::fs::write(
        dir.path().join("web.yml"),
        "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n  min_version: TLS13\n\
         http_server_config:\n  headers:\n    Strict-Transport-Security: max-age=31536000\n",
    )
    .unwrap();
    let web_file = dir.path().join("web.yml");
    let harness = start_unready(task(), PRIVATE_KEY, |config| {
        config.web.config_file = Some(web_file.clone());
    })
    .await;
    let port = harness.exporter.port();
    assert_eq!(served_certificate(port, &ca, false).await.unwrap(), der_a);
    // min_version TLS13: a TLS 1.2 client is turned away.
    assert!(served_certificate(port, &ca, true).await.is_err());
    // The configured header is on every answer.
    let client = http_client_builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let response = client
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000"
    );

    // Rotated in place: the next connection gets the new certificate, no restart.
    let (cert_b, key_b, der_b) = ca.leaf(&["localhost"]);
    replace(&dir.path().join("tls.key"), &key_b);
    replace(&dir.path().join("tls.crt"), &cert_b);
    assert_eq!(served_certificate(port, &ca, false).await.unwrap(), der_b);

    // A broken new certificate keeps the last good one in service.
    replace(&dir.path().join("tls.crt"), "not a certificate\n");
    assert_eq!(served_certificate(port, &ca, false).await.unwrap(), der_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_serves_only_clients_with_a_certificate_from_client_ca_file() {
    install_provider();
    let server_ca = Ca::new();
    let client_ca = Ca::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = server_ca.leaf(&["localhost"]);
    std::fs::write(dir.path().join("tls.crt"), cert).unwrap();
    std::fs::write(dir.path().join("tls.key"), key).unwrap();
    std::fs::write(dir.path().join("clients.crt"), client_ca.pem()).unwrap();
    std::fs::write(
        dir.path().join("web.yml"),
        "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients.crt\n  \
         cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305]\n",
    )
    .unwrap();
    let web_file = dir.path().join("web.yml");
    let harness = start_unready(task(), PRIVATE_KEY, |config| {
        config.web.config_file = Some(web_file.clone());
    })
    .await;
    let url = format!("https://localhost:{}/healthz", harness.exporter.port());
    let trust = reqwest::Certificate::from_pem(server_ca.pem().as_bytes()).unwrap();

    let anonymous = http_client_builder()
        .add_root_certificate(trust.clone())
        .build()
        .unwrap();
    assert!(anonymous.get(&url).send().await.is_err());

    let (client_cert, client_key, _) = client_ca.leaf(&["prometheus"]);
    let identity =
        reqwest::Identity::from_pem(format!("{client_cert}{client_key}").as_bytes()).unwrap();
    let authenticated = http_client_builder()
        .add_root_certificate(trust.clone())
        .identity(identity)
        .build()
        .unwrap();
    assert_eq!(authenticated.get(&url).send().await.unwrap().status(), 200);

    // A certificate from another CA is refused.
    let (other_cert, other_key, _) = server_ca.leaf(&["mallory"]);
    let stranger = http_client_builder()
        .add_root_certificate(trust)
        .identity(
            reqwest::Identity::from_pem(format!("{other_cert}{other_key}").as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    assert!(stranger.get(&url).send().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_basic_auth_user_works_after_sighup() {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (_gateway, endpoint) = gateway_with(task(), &shutdown).await;
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    let hash = |password: &str| bcrypt::hash(password, 4).unwrap();
    std::fs::write(
        &web,
        format!("basic_auth_users:\n  alice: {}\n", hash("a-secret")),
    )
    .unwrap();
    let config = format!(
        "[api]\nendpoint = \"{endpoint}\"\npublic_key = \"{PUBLIC_KEY}\"\nprivate_key = \"{PRIVATE_KEY}\"\n\
         [web]\nconfig_file = \"{}\"\n[[tasks]]\nid = \"udts-a\"\n",
        web.display()
    );
    let (exporter, _config_dir) = spawn_with_config(&config, "warn").await;
    let client = http_client();
    let status = |user: &'static str, password: &'static str| {
        let client = client.clone();
        let url = format!("http://{}/metrics", exporter.addr);
        async move {
            client
                .get(url)
                .basic_auth(user, Some(password))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status("alice", "a-secret").await, 200);
    assert_eq!(status("bob", "b-secret").await, 401);

    std::fs::write(
        &web,
        format!(
            "basic_auth_users:\n  alice: {}\n  bob: {}\n",
            hash("a-secret"),
            hash("b-secret")
        ),
    )
    .unwrap();
    exporter.signal("HUP");
    for _ in 0..100 {
        if status("bob", "b-secret").await == 200 {
            assert_eq!(status("alice", "a-secret").await, 200);
            assert_eq!(status("bob", "wrong").await, 401);
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("bob was not accepted after SIGHUP");
}
