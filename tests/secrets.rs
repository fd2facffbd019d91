//! The private key and the request signatures never appear in the logs (at debug level), in
//! `/metrics`, or in the answers of the exporter's endpoints, through a full run with every
//! kind of fault and a rejected key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use udts_exporter::simulator::{Behaviour, SimTask};

fn tasks() -> Vec<SimTask> {
    let raw = |status: u16, body: &str| Behaviour::Raw {
        status,
        body: body.into(),
    };
    vec![
        SimTask::new("udts-ok", Behaviour::Fixed(json!({"Status": "Syncing"}))),
        SimTask::new("udts-500", raw(500, "oops")),
        SimTask::new("udts-429", raw(429, "slow down")),
        SimTask::new("udts-html", raw(200, "<html>error</html>")),
        SimTask::new("udts-json", raw(200, "{not json")),
        SimTask::new("udts-hang", Behaviour::Hang),
        SimTask::new("udts-cut", Behaviour::CutOff),
        SimTask::new("udts-big", Behaviour::Large(4 * 1024 * 1024)),
        SimTask::new("udts-150", Behaviour::RetCode(150, "busy".into())),
        SimTask::new(
            "udts-292",
            Behaviour::RetCode(292, "project not exist".into()),
        ),
        SimTask::new("udts-294", Behaviour::RetCode(294, "ip not allowed".into())),
        SimTask::new("udts-8001", Behaviour::RetCode(8001, "not found".into())),
    ]
}

/// Runs the binary with `key` against a gateway expecting `PRIVATE_KEY`; returns its logs,
/// a scrape, the answer to a rejected reload, and the signatures the gateway received.
async fn run(key: &str) -> (String, String, String, Vec<String>) {
    let shutdown = CancellationToken::new();
    let (gateway, endpoint) = gateway_with(tasks(), &shutdown).await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, key).unwrap();
    private_to_owner(&key_file);
    let mut config = format!(
        "[api]\nendpoint = \"{endpoint}\"\npublic_key = \"{PUBLIC_KEY}\"\nprivate_key_file = \"{}\"\ntimeout = \"500ms\"\n[poll]\ninterval = \"1s\"\n",
        key_file.display()
    );
    for task in tasks() {
        config.push_str(&format!("[[tasks]]\nid = \"{}\"\n", task.id));
    }
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, &config).unwrap();

    let log_path = dir.path().join("log");
    let mut exporter = spawn_exporter(
        [
            std::ffi::OsStr::new("--log-level"),
            std::ffi::OsStr::new("debug"),
            std::ffi::OsStr::new("--config"),
            config_path.as_os_str(),
            std::ffi::OsStr::new("--web.enable-lifecycle"),
        ],
        std::fs::File::create(&log_path).unwrap().into(),
    )
    .await;
    let addr = exporter.addr;
    wait_ready(addr).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let metrics = scrape(addr).await;

    // A reload with a broken file: its error is shown to whoever calls the endpoint.
    std::fs::write(
        &config_path,
        config.replace("timeout = \"500ms\"", "timeout = \"forever\""),
    )
    .unwrap();
    let reload = http_client()
        .post(format!("http://{addr}/-/reload"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    exporter.signal("TERM");
    tokio::time::timeout(Duration::from_secs(5), exporter.child.wait())
        .await
        .unwrap()
        .unwrap();
    let logs = std::fs::read_to_string(&log_path).unwrap();
    shutdown.cancel();
    (logs, metrics, reload, gateway.signatures())
}

fn assert_secret_free(what: &str, text: &str, key: &str, signatures: &[String]) {
    assert!(!text.contains(key), "{what} contains the private key");
    for signature in signatures {
        assert!(
            !text.contains(signature.as_str()),
            "{what} contains a signature"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_or_signature_leaks_through_faults_or_a_rejected_key() {
    for key in [PRIVATE_KEY, "wrong-key-that-gets-171-7f3a"] {
        let (logs, metrics, reload, signatures) = run(key).await;
        // A good key polls every task; a rejected one is only probed, once per cycle.
        let minimum = if key == PRIVATE_KEY { tasks().len() } else { 2 };
        assert!(
            signatures.len() >= minimum,
            "the run made {} calls",
            signatures.len()
        );
        assert!(
            logs.contains("cannot read task status"),
            "the faults were logged"
        );
        assert!(reload.contains("api.timeout"), "{reload}");
        assert_secret_free("the log", &logs, key, &signatures);
        assert_secret_free("/metrics", &metrics, key, &signatures);
        assert_secret_free("the reload answer", &reload, key, &signatures);
        if key != PRIVATE_KEY {
            assert!(logs.contains("rejects the API credentials"), "{logs}");
        }
    }
}
