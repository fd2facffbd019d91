//! `udts-exporter wait` against the real binary serving a simulated gateway's tasks over basic
//! auth: exit 0 once a task turns ready, 1 on timeout, 3 for a failed task, 2 for an exporter
//! it cannot ask.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use udts_exporter::simulator::{Behaviour, SimTask};

const BINARY: &str = env!("CARGO_BIN_EXE_udts-exporter");

fn redis(delay: u64) -> Behaviour {
    Behaviour::Fixed(
        json!({"Status": "Synced", "CurRetryCount": 0, "MaxRetryCount": 3,
        "Progress": {"RedisDelayTime": delay}}),
    )
}

/// `udts-exporter wait <args>` to completion: (exit code, stderr).
async fn wait(args: &[&str]) -> (Option<i32>, String) {
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(BINARY)
            .arg("wait")
            .args(args)
            .env("UDTS_WAIT_PASSWORD", "gate-secret")
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_exits_0_when_ready_1_on_timeout_3_when_failed_and_2_when_it_cannot_ask() {
    let shutdown = CancellationToken::new();
    let (_gateway, endpoint) = gateway_with(
        vec![
            SimTask::new("udts-close", redis(1)).mode("incremental"),
            SimTask::new("udts-far", redis(90)).mode("incremental"),
            SimTask::new(
                "udts-broken",
                Behaviour::Fixed(json!({"Status": "FailedUnrecoverable",
                    "FailedMessage": "target table missing"})),
            ),
        ],
        &shutdown,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, PRIVATE_KEY).unwrap();
    private_to_owner(&key);
    let web = dir.path().join("web.yml");
    let hash = bcrypt::hash("gate-secret", 4).unwrap();
    std::fs::write(&web, format!("basic_auth_users:\n  runbook: {hash}\n")).unwrap();
    let config = format!(
        "[api]\nendpoint = \"{endpoint}\"\npublic_key = \"{PUBLIC_KEY}\"\nprivate_key_file = \"{}\"\n\
         timeout = \"500ms\"\n[poll]\ninterval = \"1s\"\n[web]\nconfig_file = \"{}\"\n\
         [cutover]\nsteady_for = \"3s\"\n\
         [[tasks]]\nid = \"udts-close\"\n[[tasks]]\nid = \"udts-far\"\n[[tasks]]\nid = \"udts-broken\"\n",
        key.display(),
        web.display()
    );
    let (exporter, _config_dir) = spawn_with_config(&config, "warn").await;
    let url = format!("http://{}", exporter.addr);
    let auth = ["--username", "runbook"];
    let gate = |task: &'static str, timeout: &'static str| {
        let mut args = vec!["--url", url.as_str(), "--task", task, "--for", "cutover"];
        args.extend(["--timeout", timeout, "--interval", "200ms"]);
        args.extend(auth);
        args
    };

    // Ready after three seconds within 10 s of the head.
    let (code, stderr) = wait(&gate("udts-close", "30s")).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("udts-close: Synced, ready for cut-over"),
        "{stderr}"
    );
    // Progress came first, in plain lines (stderr is not a terminal here).
    assert!(
        stderr.contains("not judged yet") || stderr.contains("not ready"),
        "{stderr}"
    );

    // 90 s behind: never ready; the timeout says so.
    let (code, stderr) = wait(&gate("udts-far", "3s")).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("lag 1 min 30 s over 10 s"), "{stderr}");
    assert!(stderr.contains("timed out after 3 s"), "{stderr}");

    // Gave up: exit 3 at once, with the task's reason.
    let (code, stderr) = wait(&gate("udts-broken", "30s")).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("target table missing"), "{stderr}");

    // Without credentials the exporter refuses: exit 2 naming the flags.
    let no_auth = [
        "--url",
        &url,
        "--task",
        "udts-close",
        "--for",
        "cutover",
        "--timeout",
        "10s",
    ];
    let output = tokio::process::Command::new(BINARY)
        .arg("wait")
        .args(no_auth)
        .env_remove("UDTS_WAIT_PASSWORD")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--username"));

    // A task the exporter does not know, and an exporter that is not there: exit 2 after
    // retrying for --unreachable-for.
    let mut unknown = gate("udts-nope", "30s");
    unknown.extend(["--unreachable-for", "1s"]);
    let (code, stderr) = wait(&unknown).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("does not know this task"), "{stderr}");
    let closed = format!("http://127.0.0.1:{}", free_port());
    let (code, stderr) = wait(&[
        "--url",
        &closed,
        "--task",
        "udts-close",
        "--for",
        "done",
        "--unreachable-for",
        "1s",
        "--interval",
        "200ms",
    ])
    .await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("cannot reach the exporter"), "{stderr}");

    // Bad flags: clap's exit 2.
    let (code, _) = wait(&["--url", &url, "--task", "udts-close", "--for", "soon"]).await;
    assert_eq!(code, Some(2));
    exporter.signal("TERM");
    shutdown.cancel();
}
