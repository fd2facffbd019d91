//! UDTS's own monitoring numbers against the simulated gateway: each series is what the
//! gateway said (latency in seconds), absent where it said nothing or only something older than
//! five intervals; a finished task is not asked; a key without the permission leaves the status
//! poll and every other series as they were.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::json;
use udts_exporter::api::monitor::MonitorMetric;
use udts_exporter::simulator::{Behaviour, SimTask};

use common::*;

fn syncing(id: &str) -> SimTask {
    SimTask::new(
        id,
        Behaviour::Fixed(json!({"Status": "Syncing",
            "Sync": {"BinlogName": "mysql-bin.000012", "BinlogPos": 4711}})),
    )
}

fn done(id: &str) -> SimTask {
    SimTask::new(
        id,
        Behaviour::Fixed(json!({"Status": "Done",
            "Progress": {"Percentage": 100, "CurCount": 10, "TotalCount": 10}})),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_series_is_what_the_gateway_said_and_a_finished_task_is_not_asked() {
    let harness = start_unready(
        vec![syncing("udts-inc"), syncing("udts-old"), done("udts-done")],
        PRIVATE_KEY,
        |_| {},
    )
    .await;
    use MonitorMetric::*;
    harness.gateway.set_monitor_values(
        "udts-inc",
        vec![
            (SyncDelay, 42.0),
            (RemainingBytes, 1_048_576.0),
            (EstimatedRemaining, 63.0),
            (SourceReadBytes, 40_000.0),
            (SourceReadRows, 200.0),
            (TargetWriteBytes, 30_000.0),
            (TargetWriteRows, 150.0),
            (SourceLatency, 250.0),
            (TargetLatency, 4.0),
        ],
        60,
    );
    // Ten minutes old: more than five intervals (of a minute).
    harness
        .gateway
        .set_monitor_values("udts-old", vec![(SyncDelay, 7.0)], 600);
    // Were it asked, this would show.
    harness
        .gateway
        .set_monitor_values("udts-done", vec![(SyncDelay, 1.0)], 60);
    wait_ready(harness.exporter).await;
    let text = scrape_until(harness.exporter, "the monitoring series", |text| {
        value(text, "udts_task_sync_delay_seconds", &task("udts-inc")).is_some()
    })
    .await;
    let inc = task("udts-inc");
    for (family, expected) in [
        ("udts_task_sync_delay_seconds", 42.0),
        ("udts_task_sync_remaining_bytes", 1_048_576.0),
        ("udts_task_sync_estimated_remaining_seconds", 63.0),
        ("udts_task_source_read_bytes_per_second", 40_000.0),
        ("udts_task_source_read_rows_per_second", 200.0),
        ("udts_task_target_write_bytes_per_second", 30_000.0),
        ("udts_task_target_write_rows_per_second", 150.0),
        ("udts_task_source_network_latency_seconds", 0.25),
        ("udts_task_target_network_latency_seconds", 0.004),
    ] {
        assert_eq!(value(&text, family, &inc), Some(expected), "{family}");
        // Nothing for a finished task, nor a sample older than five intervals.
        assert_eq!(value(&text, family, &task("udts-done")), None, "{family}");
        assert_eq!(value(&text, family, &task("udts-old")), None, "{family}");
    }
    let sampled = value(&text, "udts_task_monitor_sample_timestamp_seconds", &inc).unwrap();
    let now = udts_exporter::time::unix_now();
    assert!((now - 120.0..=now).contains(&sampled), "{sampled} vs {now}");
    assert_eq!(value(&text, "udts_monitor_up", ""), Some(1.0));
    // The JSON task carries the same numbers; null where there are none.
    let json: serde_json::Value = tasks_json(harness.exporter).await;
    let tasks = json["tasks"].as_array().unwrap();
    let of = |id: &str| tasks.iter().find(|t| t["id"] == id).unwrap()["monitor"].clone();
    let inc = of("udts-inc");
    assert_eq!(inc["sync_delay_seconds"], 42.0);
    assert_eq!(inc["remaining_bytes"], 1_048_576.0);
    assert_eq!(inc["source_network_latency_seconds"], 0.25);
    assert_eq!(inc["target_write_rows_per_second"], 150.0);
    assert_eq!(inc["sample_at"], sampled);
    assert!(of("udts-done").is_null());
    assert!(of("udts-old").is_null());
    // One call a round for the two active tasks (a second round comes within a second when
    // a task was still unpolled at the first); the status poll's own count leaves them out.
    let calls = harness.gateway.requests("QueryMetricDataSummary");
    assert!((1..=2).contains(&calls), "{calls}");
    assert!(value(&text, "udts_api_calls_per_cycle", "").unwrap() <= 4.0);
    assert_eq!(
        value(
            &text,
            "udts_api_requests_total",
            "{account=\"\",action=\"QueryMetricDataSummary\"}"
        ),
        Some(calls as f64),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_without_monitoring_permission_leaves_the_status_poll_untouched() {
    let harness = start_unready(
        vec![syncing("udts-inc"), done("udts-done")],
        PRIVATE_KEY,
        |_| {},
    )
    .await;
    harness
        .gateway
        .set_monitor_fault(Some(Behaviour::RetCode(299, "No permission".into())));
    wait_ready(harness.exporter).await;
    let text = scrape_until(harness.exporter, "udts_monitor_up 0", |text| {
        value(text, "udts_monitor_up", "") == Some(0.0)
    })
    .await;
    for id in ["udts-inc", "udts-done"] {
        assert_eq!(value(&text, "udts_task_up", &task(id)), Some(1.0), "{id}");
    }
    assert_eq!(
        value(&text, "udts_task_sync_delay_seconds", &task("udts-inc")),
        None
    );
    assert_monitoring_errors_counted(&text, "299");
}

/// The monitoring action's failures are counted in `udts_api_request_errors_total`.
fn assert_monitoring_errors_counted(text: &str, case: &str) {
    let errors = family(text, "udts_api_request_errors_total");
    assert!(
        errors
            .iter()
            .any(|(labels, count)| labels.contains("QueryMetricDataSummary") && *count >= 1.0),
        "{case}: {errors:?}"
    );
}

/// Whether UCloud's Python SDK can be imported; a skip with a notice (or, under
/// `UDTS_REQUIRE_TOOLS=1`, a failure) when not.
fn ucloud_sdk_available() -> bool {
    let found = std::process::Command::new("python3")
        .args(["-c", "import ucloud.client"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !found {
        if std::env::var("UDTS_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("UCloud's Python SDK is required (UDTS_REQUIRE_TOOLS=1): pip install ucloud-sdk-python3");
        }
        eprintln!("SKIPPED: UCloud's Python SDK not found; .ci/run installs it (pip install ucloud-sdk-python3)");
    }
    found
}

/// Runs one of the `tests/sdk/` scripts (UCloud's Python SDK) with `args`; what it printed,
/// as JSON. A script that fails fails the test with its stderr.
async fn sdk(script: &str, args: &[&str]) -> serde_json::Value {
    let output = tokio::process::Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The simulated gateway answers `QueryMetricDataSummary` as the service does for UCloud's own
/// SDK: the SDK's signed request is accepted (the gateway verifies the signature) and its
/// response schema loads the answer, with the metric asked for and only that one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ucloud_s_python_sdk_reads_the_simulated_monitoring() {
    if !ucloud_sdk_available() {
        return;
    }
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (gateway, endpoint) =
        gateway_with(vec![syncing("udts-inc"), done("udts-done")], &shutdown).await;
    gateway.set_monitor_values(
        "udts-inc",
        vec![
            (MonitorMetric::SyncDelay, 42.0),
            (MonitorMetric::SourceLatency, 3.0),
        ],
        60,
    );
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/sdk/cloudwatch_summary.py"
    );
    let answer = sdk(
        script,
        &[&endpoint, PUBLIC_KEY, PRIVATE_KEY, "udts", "udts-inc"],
    )
    .await;
    let list = answer["Data"]["List"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{answer}");
    assert_eq!(list[0]["ResourceId"], "udts-inc");
    let attrs = list[0]["MonitorAttr"].as_array().unwrap();
    assert_eq!(attrs.len(), 1, "only the metric asked for: {answer}");
    assert_eq!(attrs[0]["Metric"], "udts_sync_syncing_delay_time");
    let sample = &attrs[0]["MetricValues"][0]["Value"];
    assert_eq!(sample["Value"].as_f64(), Some(42.0));
    assert!(sample["Timestamp"].as_i64().unwrap() > 1_700_000_000);
    // The SDK's requests pass the gateway's signature check, or it would have raised.
    assert_eq!(gateway.requests("QueryMetricDataSummary"), 1);
    shutdown.cancel();
}

/// The task's JSON from `/api/v1/tasks/{id}`.
async fn task_json(exporter: std::net::SocketAddr, id: &str) -> serde_json::Value {
    let response = http_get(format!("http://{exporter}/api/v1/tasks/{id}"))
        .await
        .unwrap();
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

/// A MySQL task with no `[[sources]]` entry: judged by UDTS's monitoring, it turns ready after
/// `steady_for`, `wait --for cutover` exits 0 for it, and a delay spike makes it not ready
/// within one monitoring interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql_task_without_a_source_turns_ready_by_udts_monitoring() {
    let harness = start_unready(vec![syncing("udts-mysql")], PRIVATE_KEY, |config| {
        config.cutover.steady_for = Some(std::time::Duration::from_secs(2));
    })
    .await;
    use MonitorMetric::*;
    let caught_up = vec![(SyncDelay, 1.0), (RemainingBytes, 40_000.0)];
    harness
        .gateway
        .set_monitor_values("udts-mysql", caught_up, 60);
    wait_ready(harness.exporter).await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_udts-exporter"))
        .args(["wait", "--url", &format!("http://{}", harness.exporter)])
        .args(["--task", "udts-mysql", "--for", "cutover"])
        .args(["--timeout", "30s", "--interval", "200ms"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("ready for cut-over"), "{stderr}");
    let json = task_json(harness.exporter, "udts-mysql").await;
    assert_eq!(json["cutover"]["ready"], true, "{json}");
    assert_eq!(json["cutover"]["basis"], "monitor", "{json}");
    // The page says UDTS's delay and data remaining under the status.
    let page = http_get(format!("http://{}/", harness.exporter))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("UDTS: sync delay 1 s, 39.1 KiB left to apply"),
        "{page}"
    );
    assert_eq!(
        value(
            &scrape(harness.exporter).await,
            "udts_task_cutover_ready",
            &task("udts-mysql")
        ),
        Some(1.0)
    );

    // The delay jumps: the next monitoring round (at most an interval away) says not ready.
    harness.gateway.set_monitor_values(
        "udts-mysql",
        vec![(SyncDelay, 40.0), (EstimatedRemaining, 95.0)],
        60,
    );
    let spiked = std::time::Instant::now();
    loop {
        let task = task_json(harness.exporter, "udts-mysql").await;
        if task["cutover"]["ready"] == false {
            assert_eq!(
                task["cutover"]["blocking"][0], "lag 40 s over 10 s",
                "{task}"
            );
            assert_eq!(task["eta"]["basis"], "udts", "{task}");
            assert_eq!(task["eta"]["udts_estimate_seconds"], 95, "{task}");
            break;
        }
        // The next monitoring round starts at most one `monitor.interval` (its floor, 1m) after
        // the last one ended; the last one and the next one's call may each take `api.timeout`
        // (1 s: the poll interval), then a render (0.5 s) and this loop's step.
        let bound = std::time::Duration::from_secs_f64(60.0 + 2.0 * 1.0 + 0.5 + 0.25);
        assert!(
            spiked.elapsed() <= bound,
            "still {task} more than an interval after the spike"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// `check` reads one round of monitoring and says what it found per account: samples for N of
/// M active tasks, or why none with the fix, and exits 0 when only monitoring is unavailable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_says_what_monitoring_found_and_stays_0_when_only_it_is_unavailable() {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (gateway, endpoint) = gateway_with(
        vec![
            syncing("udts-inc"),
            syncing("udts-quiet"),
            done("udts-done"),
        ],
        &shutdown,
    )
    .await;
    gateway.set_monitor_values("udts-inc", vec![(MonitorMetric::SyncDelay, 3.0)], 60);
    gateway.set_monitor_values("udts-quiet", Vec::new(), 60);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_file(
        &dir,
        &endpoint,
        PUBLIC_KEY,
        &["udts-inc", "udts-quiet", "udts-done"],
        "",
    );
    let check = |json: bool| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_udts-exporter"));
        command.arg("check");
        if json {
            command.args(["--output", "json"]);
        }
        command.arg("--config").arg(&config).output()
    };
    let output = check(false).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("monitoring: samples for 1 of 2 active tasks"),
        "{stdout}"
    );

    gateway.set_monitor_fault(Some(Behaviour::RetCode(299, "No permission".into())));
    let output = check(false).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("monitoring"))
        .unwrap();
    assert!(line.contains("RetCode 299"), "{line}");
    assert!(line.contains("monitor.enabled = false"), "{line}");

    let output = check(true).await.unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let monitoring = &report["monitoring"][0];
    assert_eq!(monitoring["active_tasks"], 2, "{report}");
    assert_eq!(monitoring["sampled_tasks"], 0, "{report}");
    assert!(monitoring["error"]
        .as_str()
        .unwrap()
        .contains("RetCode 299"));
    shutdown.cancel();
}

/// The exporter's own monitoring request, checked by UCloud's Python SDK: signed as the SDK
/// signs, and shaped as the SDK's request schema for `QueryMetricDataSummary` wants it (with
/// `Region` and `ProjectId` set, as its schema requires them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exporter_s_monitoring_request_verifies_with_ucloud_s_python_sdk() {
    use tokio::io::AsyncBufReadExt;
    if !ucloud_sdk_available() {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/verify_request.py");
    let mut verifier = tokio::process::Command::new("python3")
        .args([script, PUBLIC_KEY, PRIVATE_KEY])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(verifier.stdout.take().unwrap());
    let mut port = String::new();
    stdout.read_line(&mut port).await.unwrap();
    let settings = udts_exporter::api::ClientSettings {
        endpoint: format!("http://127.0.0.1:{}", port.trim()).parse().unwrap(),
        credentials: udts_exporter::api::CredentialSource::Keys {
            keys: udts_exporter::api::Credentials::keys(PUBLIC_KEY, PRIVATE_KEY.to_string().into()),
            origin: "config".into(),
        },
        region: None,
        timeout: std::time::Duration::from_secs(5),
        max_response_bytes: 1 << 20,
        account: None,
        extra_root_certificate: None,
    };
    let metrics = std::sync::Arc::new(udts_exporter::metrics::ExporterMetrics::new());
    let client = udts_exporter::api::Client::new(settings, metrics, None).unwrap();
    let page = client
        .metric_summary(
            "udts",
            Some("cn-bj2"),
            Some("org-test"),
            &["udts-a", "udts-b"],
        )
        .await
        .unwrap();
    assert!(page.resources.is_empty());
    let mut report = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut report)
        .await
        .unwrap();
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["action"], "QueryMetricDataSummary", "{report}");
    assert_eq!(report["public_key_ok"], true, "{report}");
    assert_eq!(report["signature_ok"], true, "{report}");
    assert_eq!(report["schema_ok"], true, "{report}");
}

/// Every fault class of the monitoring reads (a gateway without the action, throttling, a 5xx,
/// a timeout, a body that is not JSON) marks only `udts_monitor_up` 0 and counts the error
/// under the action: the status poll stays up and fresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_monitoring_fault_leaves_the_status_poll_fresh() {
    let faults = [
        ("161", Behaviour::RetCode(161, "Action not exist".into())),
        ("153", Behaviour::RetCode(153, "Request throttled".into())),
        (
            "5xx",
            Behaviour::Raw {
                status: 502,
                body: "bad gateway".into(),
            },
        ),
        ("timeout", Behaviour::Hang),
        (
            "malformed",
            Behaviour::Raw {
                status: 200,
                body: "{\"RetCode\": 0, \"Data\": ".into(),
            },
        ),
    ];
    let runs = faults.into_iter().map(|(name, fault)| async move {
        // The fault is in place before the exporter starts: its first monitoring round must
        // meet it (the next full round is a minute away).
        let harness = start_unready_with_gateway(vec![syncing("udts-inc")], |gateway, _| {
            gateway.set_monitor_fault(Some(fault));
        })
        .await;
        wait_ready(harness.exporter).await;
        let text = scrape_until(harness.exporter, name, |text| {
            value(text, "udts_monitor_up", "") == Some(0.0)
        })
        .await;
        assert_monitoring_errors_counted(&text, name);
        // Two more status polls (a second apart) go on as before.
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let text = scrape(harness.exporter).await;
        assert_eq!(
            value(&text, "udts_task_up", &task("udts-inc")),
            Some(1.0),
            "{name}"
        );
        let read = value(
            &text,
            "udts_task_last_success_timestamp_seconds",
            &task("udts-inc"),
        );
        let now = udts_exporter::time::unix_now();
        assert!(
            read.is_some_and(|at| now - at < 3.0),
            "{name}: last read {read:?} at {now}"
        );
        assert_eq!(
            value(&text, "udts_task_sync_delay_seconds", &task("udts-inc")),
            None,
            "{name}"
        );
    });
    futures_util::future::join_all(runs).await;
}

/// The simulated gateway answers `QueryMetricDataSet` too, as UCloud's SDK sends and loads it:
/// a sample a minute over the range for a task it knows, the task it does not know under
/// `InvalidResourceIds`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ucloud_s_python_sdk_reads_simulated_series() {
    if !ucloud_sdk_available() {
        return;
    }
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (gateway, endpoint) = gateway_with(vec![syncing("udts-inc")], &shutdown).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/sdk/cloudwatch_data_set.py"
    );
    let answer = sdk(
        script,
        &[
            &endpoint,
            PUBLIC_KEY,
            PRIVATE_KEY,
            "udts",
            "udts_sync_syncing_delay_time",
            "10",
            "udts-inc",
            "udts-gone",
        ],
    )
    .await;
    let data = &answer["Data"];
    assert_eq!(
        data["InvalidResourceIds"],
        serde_json::json!(["udts-gone"]),
        "{answer}"
    );
    let series = &data["List"][0];
    assert_eq!(series["Metric"], "udts_sync_syncing_delay_time");
    assert_eq!(series["ErrCode"], 0);
    let values = series["Results"][0]["Values"].as_array().unwrap();
    // Ten minutes at a 60 s period, each on the minute, in order.
    assert!((9..=11).contains(&values.len()), "{answer}");
    let times: Vec<i64> = values
        .iter()
        .map(|v| v["Timestamp"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[1] - w[0] == 60), "{times:?}");
    assert!(
        values.iter().all(|v| v["Value"].as_f64() == Some(1.0)),
        "{answer}"
    );
    assert_eq!(gateway.requests("QueryMetricDataSet"), 1);
    shutdown.cancel();
}
