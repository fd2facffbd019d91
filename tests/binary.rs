//! The real binary: `demo` serves metrics and stops cleanly on SIGTERM, `check` prints a table
//! and fails when a task is unreadable, a bad config fails at start-up naming the key, and the
//! exposition of a real run passes `promtool check metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;
use udts_exporter::simulator::{Behaviour, SimTask};

const BINARY: &str = env!("CARGO_BIN_EXE_udts-exporter");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_moving_tasks_and_exits_zero_on_sigterm() {
    let mut exporter = spawn_exporter(["demo"], Stdio::null()).await;
    let addr = exporter.addr;
    wait_ready(addr).await;
    let text = scrape(addr).await;
    assert_eq!(family(&text, "udts_task_info").len(), 25);
    let up = family(&text, "udts_task_up");
    assert_eq!(up.len(), 25);
    assert!(up.values().all(|v| *v == 1.0), "{up:?}");
    let kinds = family(&text, "udts_task_info");
    assert!(kinds
        .keys()
        .any(|k| k.contains("task_type=\"integration\"")));
    assert!(kinds.keys().any(|k| k.contains("task_type=\"transfer\"")));
    assert!(!family(&text, "udts_task_binlog_position").is_empty());
    assert!(!family(&text, "udts_task_redis_delay_seconds").is_empty());
    assert!(!family(&text, "udts_task_mongo_delay_seconds").is_empty());
    assert!(!family(&text, "udts_task_progress_ratio").is_empty());
    // The demo's simulated sources, read in-process: five MySQL tasks and one PostgreSQL task
    // on them, each with lag and, from its second reading on, its applied bytes.
    let text = scrape_until(addr, "the demo sources read", |text| {
        value(text, "udts_source_up", "{source=\"demo-orders-db\"}") == Some(1.0)
            && value(text, "udts_source_up", "{source=\"demo-pg\"}") == Some(1.0)
            && family(text, "udts_task_source_lag_bytes").len() == 6
            && family(text, "udts_task_source_applied_bytes_total").len() == 6
    })
    .await;
    assert_eq!(family(&text, "udts_task_source_binlog_retained").len(), 6);
    assert_eq!(
        family(&text, "udts_source_replication_slot_orphaned"),
        [
            (
                "{source=\"demo-pg\",slot=\"udts_demo_gone_7c1e\"}".to_string(),
                1.0
            ),
            (
                "{source=\"demo-pg\",slot=\"udts_demo_paused\"}".to_string(),
                0.0
            ),
        ]
        .into_iter()
        .collect()
    );

    let started = Instant::now();
    exporter.signal("TERM");
    let status = tokio::time::timeout(Duration::from_secs(5), exporter.child.wait())
        .await
        .expect("exits within 5 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_exposition_passes_promtool() {
    if !tool_available("promtool") {
        return;
    }
    let exporter = spawn_exporter(["demo"], Stdio::null()).await;
    wait_ready(exporter.addr).await;
    // Every family the demo has, UDTS's monitoring numbers among them.
    let text = scrape_until(exporter.addr, "the monitoring series", |text| {
        text.contains("\nudts_task_sync_delay_seconds{")
    })
    .await;
    drop(exporter);
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `udts-exporter <command> --config <config>` to completion.
async fn run_command(command: &str, config: &std::path::Path) -> std::process::Output {
    Command::new(BINARY)
        .args([command, "--config"])
        .arg(config)
        .output()
        .await
        .unwrap()
}

fn write_config(dir: &tempfile::TempDir, endpoint: &str, tasks: &[&str]) -> std::path::PathBuf {
    write_config_file(dir, endpoint, PUBLIC_KEY, tasks, "")
}

/// A gateway with one readable task, `udts-good` (Loading, 42.5%); returns its endpoint.
async fn one_loading_task(shutdown: &CancellationToken) -> String {
    let (_gateway, endpoint) = gateway_with(
        vec![SimTask::new(
            "udts-good",
            Behaviour::Fixed(json!({"Status": "Loading", "Progress": {"Percentage": 42.5}})),
        )],
        shutdown,
    )
    .await;
    endpoint
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_prints_a_table_and_fails_on_an_unreadable_task() {
    let shutdown = CancellationToken::new();
    let endpoint = one_loading_task(&shutdown).await;
    let dir = tempfile::tempdir().unwrap();

    let config = write_config(&dir, &endpoint, &["udts-good"]);
    let output = run_command("check", &config).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let row = stdout.lines().find(|l| l.starts_with("udts-good")).unwrap();
    let cells: Vec<_> = row.split_whitespace().collect();
    assert_eq!(cells, ["udts-good", "transfer", "Loading", "42.5%"]);
    // What the task would cost a Prometheus: a running full load, a handful of series.
    let series: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("series: ")?.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no series line: {stdout}"));
    assert!((4..=16).contains(&series), "{stdout}");

    let config = write_config(&dir, &endpoint, &["udts-good", "udts-missing"]);
    let output = run_command("check", &config).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.starts_with("TASK"), "{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("udts-missing"))
        .unwrap();
    assert!(row.contains("RetCode 8001"), "{row}");
    assert!(
        stdout.contains("1 of 2 tasks could not be read"),
        "{stdout}"
    );
    assert!(!stdout.contains(PRIVATE_KEY));
    shutdown.cancel();
}

#[tokio::test]
async fn bad_config_fails_at_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        "[api]\npublic_key = \"p\"\nprivate_key = \"super-secret-value\"\n[poll]\ninterval = \"fast\"\n[[tasks]]\nid = \"udts-a\"\n",
    )
    .unwrap();
    let output = Command::new(BINARY)
        .arg("--config")
        .arg(&path)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("poll.interval"), "{stderr}");
    assert!(!stderr.contains("super-secret-value"), "{stderr}");
    // Said once, as one plain line: no ERROR log line repeating it, no colour escapes.
    assert_eq!(stderr.matches("poll.interval").count(), 1, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr}");
}

/// Runs `demo` for a moment with stderr on a pseudo-terminal (`script`) or a pipe, and returns
/// what it logged.
async fn demo_logs(on_terminal: bool, no_color: Option<&str>) -> String {
    let listen = "--web.listen-address 127.0.0.1:0";
    let mut command = if on_terminal {
        let mut command = Command::new("script");
        command.args(["-qec", &format!("{BINARY} demo {listen}"), "/dev/null"]);
        command
    } else {
        let mut command = Command::new(BINARY);
        command.args(["demo", "--web.listen-address", "127.0.0.1:0"]);
        command
    };
    command.env_remove("NO_COLOR");
    if let Some(value) = no_color {
        command.env("NO_COLOR", value);
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    // Under `script` the terminal's output (stderr included) arrives on stdout.
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_coloured_only_on_a_terminal_without_no_color() {
    let piped = demo_logs(false, None).await;
    assert!(piped.contains("first poll cycle complete"), "{piped}");
    assert!(!piped.contains('\x1b'), "{piped}");
    if !tool_available("script") {
        return;
    }
    let terminal = demo_logs(true, None).await;
    assert!(terminal.contains("first poll cycle complete"), "{terminal}");
    assert!(terminal.contains('\x1b'), "{terminal}");
    let no_color = demo_logs(true, Some("1")).await;
    assert!(no_color.contains("first poll cycle complete"), "{no_color}");
    assert!(!no_color.contains('\x1b'), "{no_color}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_lists_what_would_be_polled_even_while_discovery_is_off() {
    let shutdown = CancellationToken::new();
    let (_gateway, endpoint) = gateway_with(
        vec![
            SimTask::new("udts-one", Behaviour::Fixed(json!({"Status": "Syncing"})))
                .mode("incremental"),
            SimTask::new("udts-two", Behaviour::Fixed(json!({"Status": "Done"})))
                .kind(udts_exporter::task::TaskKind::Integration),
        ],
        &shutdown,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&dir, &endpoint, &[]);
    let output = run_command("discover", &config).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|l| l.starts_with("udts-"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["udts-one", "transfer", "one", "incremental", "Syncing"],
            vec!["udts-two", "integration", "two", "full", "Done"],
        ]
    );
    assert!(stdout.contains("2 tasks would be polled"), "{stdout}");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_config_file() {
    let shutdown = CancellationToken::new();
    let (_gateway, endpoint) = gateway_with(
        vec![
            SimTask::new("udts-first", Behaviour::Fixed(json!({"Status": "Synced"}))),
            SimTask::new("udts-second", Behaviour::Fixed(json!({"Status": "Synced"}))),
        ],
        &shutdown,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&dir, &endpoint, &["udts-first"]);
    let mut exporter = spawn_exporter(
        [std::ffi::OsStr::new("--config"), config.as_os_str()],
        Stdio::null(),
    )
    .await;
    let addr = exporter.addr;
    wait_ready(addr).await;
    assert!(scrape(addr).await.contains("udts-first"));

    write_config(&dir, &endpoint, &["udts-second"]);
    exporter.signal("HUP");
    let text = scrape_until(addr, "the reloaded task set", |text| {
        value(text, "udts_task_up", &task("udts-second")) == Some(1.0)
    })
    .await;
    assert!(!text.contains("udts-first"));
    exporter.signal("TERM");
    let status = tokio::time::timeout(Duration::from_secs(5), exporter.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    shutdown.cancel();
}

/// A supervisor may signal as soon as the URL is printed: SIGHUP then reloads and never meets
/// the default action (which ends the process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sighup_right_after_start_reloads_instead_of_killing() {
    for _ in 0..5 {
        let mut exporter = spawn_exporter(["demo"], Stdio::null()).await;
        exporter.signal("HUP");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            exporter.child.try_wait().unwrap().is_none(),
            "the exporter died of a SIGHUP sent right after its URL"
        );
        wait_ready(exporter.addr).await;
        exporter.signal("TERM");
        let status = tokio::time::timeout(Duration::from_secs(5), exporter.child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "{status}");
    }
}

/// As in Prometheus, `POST /-/reload` answers only with `--web.enable-lifecycle`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_endpoint_needs_the_lifecycle_flag() {
    /// Starts `demo` with `flags`, posts a reload to it, and returns the answer.
    async fn reload_demo(flags: &[&str]) -> (reqwest::StatusCode, String) {
        let exporter = spawn_exporter([&["demo"], flags].concat(), Stdio::null()).await;
        wait_ready(exporter.addr).await;
        let response = http_client()
            .post(format!("http://{}/-/reload", exporter.addr))
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }
    let (status, reason) = reload_demo(&[]).await;
    assert_eq!(status, 403);
    assert!(reason.contains("--web.enable-lifecycle"), "{reason}");
    assert_eq!(reason.lines().count(), 1, "{reason}");

    let (status, answer) = reload_demo(&["--web.enable-lifecycle"]).await;
    assert_eq!(status, 200, "{answer}");
}

/// `check --output json` prints the task objects of `/api/v1/tasks`, and nothing else on stdout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_prints_json_for_scripts() {
    let shutdown = CancellationToken::new();
    let endpoint = one_loading_task(&shutdown).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&dir, &endpoint, &["udts-good", "udts-missing"]);
    let output = Command::new(BINARY)
        .args(["check", "--output", "json", "--config"])
        .arg(&config)
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let tasks = list["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2);
    // The unreadable task first, with the reason; absent values are null.
    assert_eq!(tasks[0]["id"], "udts-missing");
    assert_eq!(tasks[0]["up"], false);
    assert_eq!(tasks[0]["error"]["reason"], "api_error");
    assert!(tasks[0]["status"].is_null());
    assert_eq!(tasks[1]["id"], "udts-good");
    assert_eq!(tasks[1]["status"], "Loading");
    assert_eq!(tasks[1]["progress"]["ratio"], 0.425);
    assert!(tasks[1]["progress"]["rows"].is_null());
    assert!(tasks[1]["error"].is_null());
    assert_eq!(list["poll_interval_seconds"], 30.0);
    let series = list["series"].as_u64().unwrap();
    assert!((5..=20).contains(&series), "{list}");
}

/// What a new user meets first: a long interval alone starts, a typo names the nearest key
/// (from the file and from the environment), a duration without a unit gets one in its example.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_explains_typos_and_units_and_lets_a_long_interval_start() {
    let shutdown = CancellationToken::new();
    let endpoint = one_loading_task(&shutdown).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&dir, &endpoint, &["udts-good"]);
    let base = std::fs::read_to_string(&config).unwrap();

    std::fs::write(&config, format!("[poll]\ninterval = \"1h\"\n{base}")).unwrap();
    let output = run_command("check", &config).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let refused = |output: std::process::Output| {
        assert_eq!(output.status.code(), Some(2));
        String::from_utf8_lossy(&output.stderr).trim().to_string()
    };
    let typo = base.replace("endpoint =", "endpoit =");
    std::fs::write(&config, &typo).unwrap();
    assert_eq!(
        refused(run_command("check", &config).await),
        "udts-exporter: config key api.endpoit is unknown; did you mean api.endpoint?"
    );

    std::fs::write(&config, &base).unwrap();
    let output = Command::new(BINARY)
        .args(["check", "--config"])
        .arg(&config)
        .env("UDTS_API__ENDPOIT", &endpoint)
        .output()
        .await
        .unwrap();
    assert_eq!(
        refused(output),
        "udts-exporter: environment variable UDTS_API__ENDPOIT is unknown; did you mean UDTS_API__ENDPOINT?"
    );

    std::fs::write(&config, format!("[poll]\ninterval = \"30\"\n{base}")).unwrap();
    let message = refused(run_command("check", &config).await);
    assert!(message.contains("poll.interval"), "{message}");
    assert!(message.contains("e.g. \"30s\""), "{message}");
    shutdown.cancel();
}
