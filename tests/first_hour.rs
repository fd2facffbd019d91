//! What a new user meets in the first hour, run on the real binary: `check` and `discover` fail
//! when they cannot see, log levels are refused unless understood, JSON log lines parse
//! strictly, and the shipped example is refused until its placeholders are replaced.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::io::AsyncBufReadExt as _;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;
use udts_exporter::simulator::{Behaviour, SimTask};

const BINARY: &str = env!("CARGO_BIN_EXE_udts-exporter");

const DISCOVERY_ON: &str = "[discovery]\nenabled = true\n";

/// `udts-exporter <args...>` to completion: (exit code, stdout, stderr).
async fn run(args: &[&str], config: Option<&std::path::Path>) -> (Option<i32>, String, String) {
    let mut command = Command::new(BINARY);
    command.args(args);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .unwrap()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn one_syncing_task(shutdown: &CancellationToken) -> String {
    let task = SimTask::new("udts-one", Behaviour::Fixed(json!({"Status": "Syncing"})));
    gateway_with(vec![task], shutdown).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_with_discovery_fails_when_the_gateway_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = write_config_file(
        &dir,
        &format!("http://127.0.0.1:{port}"),
        PUBLIC_KEY,
        &[],
        DISCOVERY_ON,
    );
    for command in ["check", "discover"] {
        let (code, stdout, stderr) = run(&[command], Some(&path)).await;
        assert_eq!(code, Some(1), "{command}: {stdout}{stderr}");
        assert!(
            stderr.contains("cannot list transfer tasks of project (default)"),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("http://127.0.0.1:{port}")),
            "{stderr}"
        );
        assert!(stderr.contains("firewall"), "{stderr}");
        assert!(!stdout.contains("all 0 tasks readable"), "{stdout}");
        assert!(!format!("{stdout}{stderr}").contains("once per interval"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_fails_when_the_keys_are_rejected_or_there_is_nothing_to_poll() {
    let shutdown = CancellationToken::new();
    let endpoint = one_syncing_task(&shutdown).await;
    let dir = tempfile::tempdir().unwrap();

    // Discovery with a public key the gateway does not know: RetCode 172, named with its fix.
    let path = write_config_file(&dir, &endpoint, "unknown-public-key", &[], DISCOVERY_ON);
    let (code, stdout, stderr) = run(&["check"], Some(&path)).await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("RetCode 172"), "{stderr}");
    assert!(stderr.contains("api.public_key"), "{stderr}");

    // The right keys, discovery on: the listed task is checked.
    let path = write_config_file(&dir, &endpoint, PUBLIC_KEY, &[], DISCOVERY_ON);
    let (code, stdout, stderr) = run(&["check"], Some(&path)).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.lines().any(|l| l.starts_with("udts-one")),
        "{stdout}"
    );
    assert!(stdout.contains("all 1 tasks readable"), "{stdout}");

    // Discovery on, and the account has no task: nothing to poll is a failure, with the fix.
    let (_empty, empty_endpoint) = gateway_with(Vec::new(), &shutdown).await;
    let path = write_config_file(&dir, &empty_endpoint, PUBLIC_KEY, &[], DISCOVERY_ON);
    let (code, stdout, stderr) = run(&["check"], Some(&path)).await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("nothing to poll"), "{stderr}");
    assert!(stderr.contains("[[tasks]]"), "{stderr}");

    // `discover` counts the static tasks beside the listed ones.
    let path = write_config_file(&dir, &endpoint, PUBLIC_KEY, &["udts-static"], "");
    let (code, stdout, stderr) = run(&["discover"], Some(&path)).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("2 tasks would be polled: 1 discovered, 1 from [[tasks]]"),
        "{stdout}"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn log_levels_tracing_does_not_know_are_refused_naming_the_valid_ones() {
    for level in ["verbose", "udts_exporter=loud"] {
        let (code, _, stderr) = run(&["--log-level", level, "demo"], None).await;
        assert_eq!(code, Some(2), "{level}: {stderr}");
        assert!(stderr.contains("--log-level"), "{stderr}");
        assert!(
            stderr.contains("trace, debug, info, warn, error, off"),
            "{stderr}"
        );
    }
}

/// A JSON object whose keys must be unique: serde_json keeps the last of two equal keys, so a
/// strict parser is written out.
struct UniqueKeys(BTreeSet<String>);

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<UniqueKeys, A::Error> {
                let mut keys = BTreeSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    if !keys.insert(key.clone()) {
                        return Err(serde::de::Error::custom(format!("duplicate key {key}")));
                    }
                }
                Ok(UniqueKeys(keys))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warning_level_json_logs_carry_the_gateway_text_under_its_own_key() {
    let shutdown = CancellationToken::new();
    let endpoint = one_syncing_task(&shutdown).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config_file(
        &dir,
        &endpoint,
        PUBLIC_KEY,
        &["udts-one", "udts-missing"],
        "",
    );
    let mut exporter = spawn_exporter(
        [
            std::ffi::OsStr::new("--config"),
            path.as_os_str(),
            std::ffi::OsStr::new("--log-level"),
            std::ffi::OsStr::new("warning"),
            std::ffi::OsStr::new("--log-format"),
            std::ffi::OsStr::new("json"),
        ],
        Stdio::piped(),
    )
    .await;
    let mut lines = tokio::io::BufReader::new(exporter.child.stderr.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let line = lines.next_line().await.unwrap().expect("a log line");
            // Every line parses with unique keys.
            let keys = serde_json::from_str::<UniqueKeys>(&line)
                .unwrap_or_else(|e| panic!("{e}: {line}"))
                .0;
            // `warning` is `warn`: nothing below it.
            assert!(!line.contains("\"level\":\"INFO\""), "{line}");
            if line.contains("cannot read task status") {
                assert!(keys.contains("gateway_message"), "{line}");
                return line;
            }
        }
    })
    .await
    .expect("the unreadable task is logged at warn");
    let record: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(record["task_id"], "udts-missing");
    assert_eq!(record["message"], "cannot read task status");
    assert!(
        record["gateway_message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{line}"
    );
    exporter.signal("TERM");
    shutdown.cancel();
}

#[tokio::test]
async fn a_port_in_use_or_a_missing_config_file_exit_2_saying_what_to_do() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let (code, _, stderr) = run(&["demo", "--web.listen-address", &address], None).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
    assert!(stderr.contains("--web.listen-address"), "{stderr}");

    let missing = std::path::Path::new("/nonexistent/udts/config.toml");
    let (code, _, stderr) = run(&["check"], Some(missing)).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("/nonexistent/udts/config.toml does not exist"),
        "{stderr}"
    );
    assert!(stderr.contains("config.example.toml"), "{stderr}");
}
