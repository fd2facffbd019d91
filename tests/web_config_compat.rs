//! Any exporter-toolkit web config drops in: files of our own, one per case where the two
//! used to disagree, each loaded or refused as exporter-toolkit's `tls_config_test.go` says it
//! does; the runtime cases checked with a real client (`openssl s_client`, and a rustls client
//! offering the post-quantum hybrid first, as Go 1.24+ does).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::rustls::crypto::aws_lc_rs::kx_group;
use tokio_rustls::rustls::crypto::SupportedKxGroup;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, NamedGroup, RootCertStore};

use common::ca::Ca;
use common::*;
use udts_exporter::web_config::WebSecurity;

/// A directory with a server certificate (`server.crt`, `server.key`), a client CA
/// (`client-ca.crt`) and `web.yml` holding `yaml`.
fn layout(yaml: &str) -> (tempfile::TempDir, Ca) {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (cert, key, _) = ca.leaf(&["localhost"]);
    std::fs::write(dir.path().join("server.crt"), &cert).unwrap();
    std::fs::write(dir.path().join("server.key"), &key).unwrap();
    std::fs::write(dir.path().join("client-ca.crt"), Ca::new().pem()).unwrap();
    std::fs::write(dir.path().join("web.yml"), yaml).unwrap();
    (dir, ca)
}

fn load(yaml: &str) -> Result<WebSecurity, String> {
    let (dir, _ca) = layout(yaml);
    WebSecurity::load(&dir.path().join("web.yml")).map_err(|e| e.to_string())
}

const SERVER: &str = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";

#[test]
fn what_exporter_toolkit_refuses_is_refused_here_too() {
    for (extra, said) in [
        // A client CA without a policy: the operator would believe clients are verified.
        (
            "  client_ca_file: client-ca.crt\n",
            "without a Client Auth Policy",
        ),
        ("  client_ca_file: missing.crt\n", "missing.crt"),
    ] {
        let error = load(&format!("{SERVER}{extra}")).unwrap_err();
        assert!(error.contains(said), "{extra}: {error}");
    }
    for (header, value, valid) in [
        ("X-Content-Type-Options", "sniff-away", "nosniff"),
        ("X-Frame-Options", "allow-from x", "deny or sameorigin"),
    ] {
        let error = load(&format!(
            "http_server_config:\n  headers:\n    {header}: {value}\n"
        ))
        .unwrap_err();
        assert!(error.contains(valid), "{header}: {error}");
    }
    // The values it takes still load.
    load("http_server_config:\n  headers:\n    X-Frame-Options: SAMEORIGIN\n    X-Content-Type-Options: nosniff\n")
        .unwrap();
}

#[test]
fn what_exporter_toolkit_loads_loads_here_too() {
    for extra in [
        // A given certificate is checked against the system's roots, as Go does.
        "  client_auth_type: VerifyClientCertIfGiven\n",
        // TLS 1.3 suites are not configurable; Go ignores them in the list.
        "  cipher_suites: [TLS_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n",
        // A CBC suite rustls lacks beside one it has: the usable one is used.
        "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]\n",
    ] {
        load(&format!("{SERVER}{extra}")).unwrap_or_else(|e| panic!("{extra}: {e}"));
    }
    // Only suites rustls lacks: refused, naming them.
    let error = load(&format!(
        "{SERVER}  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]\n"
    ))
    .unwrap_err();
    assert!(
        error.contains("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
        "{error}"
    );
    // A certificate file with its key inline.
    let (dir, _ca) = layout("");
    let key = std::fs::read_to_string(dir.path().join("server.key")).unwrap();
    let indented: String = key.lines().map(|l| format!("    {l}\n")).collect();
    std::fs::write(
        dir.path().join("web.yml"),
        format!("tls_server_config:\n  cert_file: server.crt\n  key: |\n{indented}"),
    )
    .unwrap();
    WebSecurity::load(&dir.path().join("web.yml")).unwrap();
}

/// An exporter serving TLS with `extra` under `tls_server_config`; its directory holds `ca.crt`,
/// the CA of its certificate.
async fn serve_tls(extra: &str) -> (tempfile::TempDir, Ca, Harness) {
    let (dir, ca) = layout(&format!("{SERVER}{extra}"));
    std::fs::write(dir.path().join("ca.crt"), ca.pem()).unwrap();
    let web_file = dir.path().join("web.yml");
    let harness = start_unready(
        vec![udts_exporter::simulator::SimTask::new(
            "udts-a",
            udts_exporter::simulator::Behaviour::Fixed(serde_json::json!({"Status": "Synced"})),
        )],
        PRIVATE_KEY,
        |config| config.web.config_file = Some(web_file),
    )
    .await;
    (dir, ca, harness)
}

/// What `openssl s_client <extra>` says of a handshake with `port` (stderr, `-brief`).
fn openssl_handshake(dir: &std::path::Path, port: u16, extra: &[&str]) -> String {
    let output = Command::new("openssl")
        .args(["s_client", "-connect", &format!("localhost:{port}")])
        .args(["-CAfile", "ca.crt", "-verify_return_error", "-brief"])
        .args(extra)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The group a rustls client offering only `groups` (in that order) negotiates with `port`.
async fn negotiated_group(
    port: u16,
    ca: &Ca,
    groups: &[&'static dyn SupportedKxGroup],
) -> Result<NamedGroup, String> {
    let mut provider = tokio_rustls::rustls::crypto::aws_lc_rs::default_provider();
    provider.kx_groups = groups.to_vec();
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.issuer.der().to_vec()))
        .unwrap();
    let config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), stream)
        .await
        .map_err(|e| e.to_string())?;
    let (_, connection) = tls.get_ref();
    Ok(connection.negotiated_key_exchange_group().unwrap().name())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_client_cert_if_given_serves_a_client_without_one() {
    if !tool_available("openssl") {
        return;
    }
    let (dir, _ca, harness) = serve_tls("  client_auth_type: VerifyClientCertIfGiven\n").await;
    let said = openssl_handshake(dir.path(), harness.exporter.port(), &[]);
    assert!(said.contains("CONNECTION ESTABLISHED"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curve_p521_is_negotiated_when_named_and_refused_by_default() {
    if !tool_available("openssl") {
        return;
    }
    // Named alone, as exporter-toolkit spells it: a P-521 client gets in, an X25519 one not.
    let (dir, _ca, harness) = serve_tls("  curve_preferences: [CurveP521]\n").await;
    let port = harness.exporter.port();
    let said = openssl_handshake(dir.path(), port, &["-groups", "P-521"]);
    assert!(said.contains("CONNECTION ESTABLISHED"), "{said}");
    assert!(said.contains("Server Temp Key: ECDH, secp521r1"), "{said}");
    let said = openssl_handshake(dir.path(), port, &["-groups", "X25519"]);
    assert!(!said.contains("CONNECTION ESTABLISHED"), "{said}");
    drop(harness);
    // Not named: Mozilla's profiles leave P-521 out, and so do the defaults; P-384 gets in.
    let (dir, _ca, harness) = serve_tls("").await;
    let port = harness.exporter.port();
    let said = openssl_handshake(dir.path(), port, &["-groups", "P-521"]);
    assert!(!said.contains("CONNECTION ESTABLISHED"), "{said}");
    let said = openssl_handshake(dir.path(), port, &["-groups", "P-384"]);
    assert!(said.contains("Server Temp Key: ECDH, secp384r1"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_offering_the_post_quantum_hybrid_first_gets_it() {
    let (_dir, ca, harness) = serve_tls("").await;
    let port = harness.exporter.port();
    // Go 1.24+'s order (Prometheus 3, node_exporter): the hybrid first, then X25519.
    let go = [
        kx_group::X25519MLKEM768,
        kx_group::X25519,
        kx_group::SECP256R1,
    ];
    assert_eq!(
        negotiated_group(port, &ca, &go).await.unwrap(),
        NamedGroup::X25519MLKEM768
    );
    // A client without it still gets a classic group.
    assert_eq!(
        negotiated_group(port, &ca, &[kx_group::SECP384R1])
            .await
            .unwrap(),
        NamedGroup::secp384r1
    );
    drop(harness);
    // curve_preferences narrows what is offered, the hybrid too, as in Go.
    let (_dir, ca, harness) = serve_tls("  curve_preferences: [X25519]\n").await;
    let port = harness.exporter.port();
    assert_eq!(
        negotiated_group(port, &ca, &go).await.unwrap(),
        NamedGroup::X25519
    );
    assert!(negotiated_group(port, &ca, &[kx_group::X25519MLKEM768])
        .await
        .is_err());
    drop(harness);
    let (_dir, ca, harness) = serve_tls("  curve_preferences: [X25519MLKEM768]\n").await;
    assert_eq!(
        negotiated_group(harness.exporter.port(), &ca, &go)
            .await
            .unwrap(),
        NamedGroup::X25519MLKEM768
    );
}

/// `VerifyClientCertIfGiven` without `client_ca_file` checks a given certificate against the
/// system's trust store, as Go does: here the store is `SSL_CERT_FILE` (which Go and OpenSSL
/// read too) holding the scrapers' CA, so its client certificate gets in, one from another CA
/// is refused, and a client without one is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_client_cert_if_given_uses_the_system_trust_store() {
    let (dir, server_ca) = layout(&format!(
        "{SERVER}  client_auth_type: VerifyClientCertIfGiven\n"
    ));
    let scrapers = Ca::new();
    std::fs::write(dir.path().join("system-roots.pem"), scrapers.pem()).unwrap();
    let store = format!(
        "SSL_CERT_FILE={}",
        dir.path().join("system-roots.pem").display()
    );
    let exporter = spawn_exporter_via(
        &["env", "-u", "SSL_CERT_DIR", &store],
        [
            "demo".as_ref(),
            "--web.config.file".as_ref(),
            dir.path().join("web.yml").as_os_str(),
        ],
        std::process::Stdio::null(),
    )
    .await;
    let url = format!("https://localhost:{}/healthz", exporter.addr.port());
    let server_root = reqwest::Certificate::from_pem(server_ca.pem().as_bytes()).unwrap();
    let attempt = |identity: Option<String>| {
        let mut builder = http_client_builder().add_root_certificate(server_root.clone());
        if let Some(pem) = identity {
            builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        let (client, url) = (builder.build().unwrap(), url.clone());
        async move { client.get(url).send().await.map(|r| r.status().as_u16()) }
    };
    let client_auth = |p: &mut rcgen::CertificateParams| {
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    };
    assert_eq!(
        attempt(Some(scrapers.identity(&["prometheus"], client_auth)))
            .await
            .unwrap(),
        200
    );
    assert!(
        attempt(Some(Ca::new().identity(&["prometheus"], client_auth)))
            .await
            .is_err()
    );
    assert_eq!(attempt(None).await.unwrap(), 200);
}

/// A probe that pipes its request into a TLS client: the client sends the request, then its
/// close_notify and a TCP FIN as its input ends (the wire sequence of `openssl s_client` at the
/// end of its input), and waits for the answer. A complete request whose client has shut its
/// write side is answered. (Debian 12's OpenSSL 3.0 `s_client` itself stops reading once it
/// sent close_notify, even from `openssl s_server`, so it cannot be the client here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_followed_by_close_notify_is_answered() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (_dir, ca, harness) = serve_tls("").await;
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.issuer.der().to_vec()))
        .unwrap();
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    for request in [
        "GET /metrics HTTP/1.0\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ] {
        let stream = TcpStream::connect(("127.0.0.1", harness.exporter.port()))
            .await
            .unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config.clone()))
            .connect(ServerName::try_from("localhost").unwrap(), stream)
            .await
            .unwrap();
        tls.write_all(request.as_bytes()).await.unwrap();
        // close_notify, then the TCP write side.
        tls.shutdown().await.unwrap();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            tls.read_to_end(&mut answer),
        )
        .await
        .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.") && answer.contains(" 200 OK\r\n"),
            "{request:?}: {read:?} {answer:.200}"
        );
    }
}

/// The same on plain HTTP: the client shuts its write side (TCP half-close) after the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_followed_by_a_tcp_half_close_is_answered() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let harness = start_unready(
        vec![udts_exporter::simulator::SimTask::new(
            "udts-a",
            udts_exporter::simulator::Behaviour::Fixed(serde_json::json!({"Status": "Synced"})),
        )],
        PRIVATE_KEY,
        |_| {},
    )
    .await;
    for request in [
        "GET /metrics HTTP/1.0\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ] {
        let mut stream = TcpStream::connect(("127.0.0.1", harness.exporter.port()))
            .await
            .unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        stream.shutdown().await.unwrap();
        let mut answer = String::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_string(&mut answer),
        )
        .await
        .unwrap()
        .unwrap();
        assert!(answer.contains(" 200 OK"), "{request:?}: {answer:?}");
    }
}
