//! An independent scanner's verdict on the TLS endpoint: sslyze (PyPI `sslyze`, which `.ci/run`
//! installs) scans the real binary with a certificate from the tests' private CA and must find
//! it compliant with Mozilla's "intermediate" profile under the defaults and "modern" with
//! `min_version: TLS13`, with no old protocol, no weak suite, no compression, secure
//! renegotiation and none of the attacks it checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use common::ca::Ca;
use common::*;

/// Starts `demo` behind a web config of a fresh server certificate plus `extra`, runs sslyze
/// against it for `profile`, and returns sslyze's exit status, its console output and its JSON
/// result for the one server.
async fn scan(profile: &str, extra: &str) -> (bool, String, Value) {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    // Mozilla's profiles cap a certificate's life (366 days for intermediate, 90 for modern);
    // rcgen's default spans centuries.
    let now = time::OffsetDateTime::now_utc();
    let (cert, key, _) = ca.leaf_with(&["localhost"], |params| {
        params.not_before = now - Duration::from_secs(3600);
        params.not_after = now + Duration::from_secs(60 * 86_400);
        // The path validation sslyze does (pyca's) wants the leaf to name its issuer's key.
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    });
    std::fs::write(dir.path().join("server.crt"), cert).unwrap();
    std::fs::write(dir.path().join("server.key"), key).unwrap();
    std::fs::write(dir.path().join("ca.crt"), ca.pem()).unwrap();
    std::fs::write(
        dir.path().join("web.yml"),
        format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n{extra}"),
    )
    .unwrap();
    let exporter = spawn_exporter(
        [
            "demo".as_ref(),
            "--web.config.file".as_ref(),
            dir.path().join("web.yml").as_os_str(),
        ],
        std::process::Stdio::null(),
    )
    .await;
    let (ok, said) = run_sslyze(dir.path(), profile, exporter.addr.port()).await;
    let json: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("scan.json")).unwrap()).unwrap();
    let server = json["server_scan_results"][0]["scan_result"].clone();
    (ok, said, server)
}

async fn run_sslyze(dir: &Path, profile: &str, port: u16) -> (bool, String) {
    let output = tokio::process::Command::new("sslyze")
        .current_dir(dir)
        .args([
            &format!("--mozilla_config={profile}"),
            "--certinfo_ca_file",
            "ca.crt",
            "--json_out",
            "scan.json",
            // The attack checks beyond what the profile needs.
            "--heartbleed",
            "--robot",
            "--openssl_ccs",
            "--fallback",
            "--reneg",
            "--compression",
            "--ems",
            &format!("localhost:{port}"),
        ])
        .output()
        .await
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

/// Whether a protocol's scan found any suite the server accepts.
fn accepts_any(server: &Value, protocol: &str) -> bool {
    let suites = &server[protocol]["result"]["accepted_cipher_suites"];
    assert!(suites.is_array(), "{protocol} was not scanned: {server}");
    !suites.as_array().unwrap().is_empty()
}

/// What every profile asks beyond its own lists: the attacks sslyze knows are all absent.
fn assert_no_attack(server: &Value) {
    for old in [
        "ssl_2_0_cipher_suites",
        "ssl_3_0_cipher_suites",
        "tls_1_0_cipher_suites",
    ] {
        assert!(!accepts_any(server, old), "{old} accepted");
    }
    assert!(!accepts_any(server, "tls_1_1_cipher_suites"));
    assert!(accepts_any(server, "tls_1_3_cipher_suites"));
    let result = |scan: &str, field: &str| server[scan]["result"][field].clone();
    assert_eq!(
        result("tls_compression", "supports_compression"),
        Value::Bool(false)
    );
    assert_eq!(
        result("session_renegotiation", "supports_secure_renegotiation"),
        Value::Bool(true)
    );
    assert_eq!(
        result(
            "session_renegotiation",
            "is_vulnerable_to_client_renegotiation_dos"
        ),
        Value::Bool(false)
    );
    assert_eq!(
        result("heartbleed", "is_vulnerable_to_heartbleed"),
        Value::Bool(false)
    );
    assert_eq!(
        result("openssl_ccs_injection", "is_vulnerable_to_ccs_injection"),
        Value::Bool(false)
    );
    assert_eq!(
        result("tls_fallback_scsv", "supports_fallback_scsv"),
        Value::Bool(true)
    );
    assert_eq!(
        result("tls_extended_master_secret", "supports_ems_extension"),
        Value::Bool(true)
    );
    let robot = result("robot", "robot_result");
    assert!(
        robot
            .as_str()
            .is_some_and(|r| r.starts_with("NOT_VULNERABLE")),
        "ROBOT: {robot}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_web_config_is_mozilla_intermediate_and_min_tls13_is_modern() {
    if !tool_available("sslyze") {
        return;
    }
    let (compliant, said, server) = scan("intermediate", "").await;
    assert!(compliant, "{said}");
    assert!(said.contains("OK - Compliant"), "{said}");
    assert_no_attack(&server);
    // TLS 1.2 stays for intermediate's clients, with forward-secret AEAD suites only.
    assert!(accepts_any(&server, "tls_1_2_cipher_suites"));
    for suite in server["tls_1_2_cipher_suites"]["result"]["accepted_cipher_suites"]
        .as_array()
        .unwrap()
    {
        let name = suite["cipher_suite"]["name"].as_str().unwrap();
        assert!(
            name.starts_with("TLS_ECDHE_") && !name.contains("CBC"),
            "weak TLS 1.2 suite {name}"
        );
    }
    let curves: Vec<&str> = server["elliptic_curves"]["result"]["supported_curves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|curve| curve["name"].as_str().unwrap())
        .collect();
    assert!(!curves.contains(&"secp521r1"), "{curves:?}");
    assert!(curves.contains(&"X25519"), "{curves:?}");

    let (compliant, said, server) = scan("modern", "  min_version: TLS13\n").await;
    assert!(compliant, "{said}");
    assert!(said.contains("OK - Compliant"), "{said}");
    assert!(!accepts_any(&server, "tls_1_2_cipher_suites"));
    assert_no_attack(&server);
}
