//! Any exporter-toolkit web config drops in: files of our own, one per case where the two
//! used to disagree, each loaded or refused as exporter-toolkit's `tls_config_test.go` says it
//! does; the runtime cases checked with a real client (`openssl s_client`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_client_cert_if_given_serves_a_client_without_one() {
    if !tool_available("openssl") {
        return;
    }
    let (dir, ca) = layout(&format!(
        "{SERVER}  client_auth_type: VerifyClientCertIfGiven\n"
    ));
    let harness = start_unready(
        vec![udts_exporter::simulator::SimTask::new(
            "udts-a",
            udts_exporter::simulator::Behaviour::Fixed(serde_json::json!({"Status": "Synced"})),
        )],
        PRIVATE_KEY,
        |config| config.web.config_file = Some(dir.path().join("web.yml")),
    )
    .await;
    std::fs::write(dir.path().join("ca.crt"), ca.pem()).unwrap();
    let port = harness.exporter.port();
    let output = Command::new("openssl")
        .args(["s_client", "-connect", &format!("localhost:{port}")])
        .args(["-CAfile", "ca.crt", "-verify_return_error", "-brief"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("CONNECTION ESTABLISHED"), "{said}");
}
