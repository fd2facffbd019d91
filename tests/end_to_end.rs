//! The real exporter against a local gateway with tasks in several states and faults: what
//! `/metrics` says, series by series.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read as _;

use common::*;
use serde_json::json;
use udts_exporter::simulator::{Behaviour, SimTask};
use udts_exporter::status::DOCUMENTED;
use udts_exporter::task::TaskKind;

fn fixed(id: &str, data: serde_json::Value) -> SimTask {
    SimTask::new(id, Behaviour::Fixed(data))
}

fn tasks() -> Vec<SimTask> {
    vec![
        fixed(
            "udts-loading",
            json!({"Status": "Loading", "CurRetryCount": 0, "MaxRetryCount": 3,
                   "Progress": {"TotalCount": 2000, "CurCount": 500, "TotalDuration": 400,
                                "CurDuration": 100, "Percentage": 25}}),
        ),
        fixed(
            "udts-syncing",
            json!({"Status": "Syncing",
                   "Sync": {"BinlogName": "mysql-bin.000042", "BinlogPos": "98765",
                            "BinlogGTID": "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"}}),
        ),
        fixed(
            "udts-redis",
            json!({"Status": "Synced", "Progress": {"RedisOffsetSize": 1048576, "RedisDelayTime": 4}}),
        ),
        fixed(
            "udts-mongo",
            json!({"Status": "Syncing", "Progress": {"MongoDelayTime": 9.0}}),
        ),
        fixed(
            "udts-failed",
            json!({"Status": "Failed", "CurRetryCount": "3", "MaxRetryCount": 3.0,
                   "FailedMessage": "Access denied for user 'udts'\nat line 2"}),
        ),
        fixed("udts-unknown", json!({"Status": "Teleporting"})),
        fixed("udts-integration", json!({"Status": "Synced"})).kind(TaskKind::Integration),
        SimTask::new(
            "udts-noproject",
            Behaviour::RetCode(292, "Project [org-test] not exist".into()),
        ),
        SimTask::new(
            "udts-html",
            Behaviour::Raw {
                status: 200,
                body: "<html><body>Bad gateway</body></html>".into(),
            },
        ),
        SimTask::new(
            "udts-502",
            Behaviour::Raw {
                status: 502,
                body: "bad gateway".into(),
            },
        ),
        SimTask::new("udts-hang", Behaviour::Hang),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_state_and_fault_is_exported_exactly() {
    // With the state set, whose every series this test pins (the default writes the current
    // status only).
    let harness = start_with(tasks(), PRIVATE_KEY, |config| {
        config.metrics.status_series = udts_exporter::config::StatusSeries::All;
    })
    .await;
    let text = scrape(harness.exporter).await;

    // Info: one series per configured task, attributes as labels.
    let info = family(&text, "udts_task_info");
    assert_eq!(info.len(), 11);
    assert_eq!(
        info.get(r#"{task_id="udts-integration",task_type="integration",project_id="org-test",name="integration",mode=""}"#),
        Some(&1.0)
    );

    // Status: a state set of 16 for each readable task, plus an unknown status at 1.
    let status = family(&text, "udts_task_status");
    assert_eq!(status.len(), 7 * 16 + 1);
    for documented in DOCUMENTED {
        let expected = if documented == "Loading" { 1.0 } else { 0.0 };
        let labels = format!(r#"{{task_id="udts-loading",status="{documented}"}}"#);
        assert_eq!(status.get(&labels), Some(&expected), "{labels}");
    }
    assert_eq!(
        status.get(r#"{task_id="udts-unknown",status="Teleporting"}"#),
        Some(&1.0)
    );
    let ones: Vec<_> = status
        .iter()
        .filter(|(_, v)| **v == 1.0)
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        ones,
        [
            r#"{task_id="udts-failed",status="Failed"}"#,
            r#"{task_id="udts-integration",status="Synced"}"#,
            r#"{task_id="udts-loading",status="Loading"}"#,
            r#"{task_id="udts-mongo",status="Syncing"}"#,
            r#"{task_id="udts-redis",status="Synced"}"#,
            r#"{task_id="udts-syncing",status="Syncing"}"#,
            r#"{task_id="udts-unknown",status="Teleporting"}"#,
        ]
    );

    // Failure reason: first line only.
    assert_eq!(
        family(&text, "udts_task_failure_info"),
        [(
            r#"{task_id="udts-failed",message="Access denied for user 'udts'"}"#.to_string(),
            1.0
        )]
        .into()
    );

    // Progress of the full load, and nothing invented for the others.
    let loading = task("udts-loading");
    for (name, expected) in [
        ("udts_task_progress_ratio", 0.25),
        ("udts_task_progress_rows", 500.0),
        ("udts_task_progress_target_rows", 2000.0),
        ("udts_task_elapsed_seconds", 100.0),
        ("udts_task_estimated_duration_seconds", 400.0),
        ("udts_task_retries", 0.0),
        ("udts_task_max_retries", 3.0),
    ] {
        assert_eq!(value(&text, name, &loading), Some(expected), "{name}");
    }
    assert_eq!(family(&text, "udts_task_progress_ratio").len(), 1);
    assert_eq!(
        family(&text, "udts_task_retries"),
        [(loading.clone(), 0.0), (task("udts-failed"), 3.0)].into()
    );

    // Incremental: binlog position from a string, file index from the name; Redis and Mongo.
    assert_eq!(
        family(&text, "udts_task_binlog_position"),
        [(task("udts-syncing"), 98765.0)].into()
    );
    assert_eq!(
        family(&text, "udts_task_binlog_file_index"),
        [(task("udts-syncing"), 42.0)].into()
    );
    assert_eq!(
        family(&text, "udts_task_redis_offset"),
        [(task("udts-redis"), 1048576.0)].into()
    );
    assert_eq!(
        family(&text, "udts_task_redis_delay_seconds"),
        [(task("udts-redis"), 4.0)].into()
    );
    assert_eq!(
        family(&text, "udts_task_mongo_delay_seconds"),
        [(task("udts-mongo"), 9.0)].into()
    );
    assert!(!text.contains("3e11fa47"), "GTIDs stay out of labels");

    // Up: readable tasks 1, faulty ones 0; faulty ones have no other values.
    let up = family(&text, "udts_task_up");
    assert_eq!(up.len(), 11);
    for id in ["udts-noproject", "udts-html", "udts-502", "udts-hang"] {
        assert_eq!(up.get(&task(id)), Some(&0.0), "{id}");
        assert_eq!(
            value(&text, "udts_task_last_success_timestamp_seconds", &task(id)),
            None
        );
    }
    assert_eq!(up.values().filter(|v| **v == 1.0).count(), 7);

    // Every failure counted under its reason.
    let errors = family(&text, "udts_api_request_errors_total");
    for reason in ["configuration", "decode", "http_status", "timeout"] {
        let labels = format!(r#"{{account="",action="GetUDTSTaskStatus",reason="{reason}"}}"#);
        assert!(
            errors.get(&labels).is_some_and(|v| *v >= 1.0),
            "{reason}: {errors:?}"
        );
    }
    let requests = value(
        &text,
        "udts_api_requests_total",
        r#"{account="",action="GetUDTSTaskStatus"}"#,
    )
    .unwrap();
    assert!(requests >= 11.0, "{requests}");
    assert_eq!(
        value(&text, "udts_tasks", r#"{source="static"}"#),
        Some(11.0)
    );
    assert!(value(&text, "udts_poll_cycle_duration_seconds", "").is_some());
    assert_eq!(
        value(
            &text,
            "udts_exporter_build_info",
            &format!(r#"{{version="{}"}}"#, env!("CARGO_PKG_VERSION"))
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_task_keeps_its_last_values_and_recovers_by_itself() {
    let harness = start(tasks()).await;
    let syncing = task("udts-syncing");

    harness.gateway.set_behaviour(
        "udts-syncing",
        Behaviour::RetCode(150, "Service unavailable".into()),
    );
    harness
        .gateway
        .set_behaviour("udts-hang", Behaviour::Fixed(json!({"Status": "Synced"})));
    let text = scrape_until(
        harness.exporter,
        "udts-syncing down, udts-hang up",
        |text| {
            value(text, "udts_task_up", &syncing) == Some(0.0)
                && value(text, "udts_task_up", &task("udts-hang")) == Some(1.0)
        },
    )
    .await;
    // Last known values stay, marked stale by up = 0.
    assert_eq!(
        value(
            &text,
            "udts_task_status",
            r#"{task_id="udts-syncing",status="Syncing"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "udts_task_binlog_position", &syncing),
        Some(98765.0)
    );
    assert!(value(
        &text,
        "udts_api_request_errors_total",
        r#"{account="",action="GetUDTSTaskStatus",reason="transient"}"#
    )
    .is_some_and(|v| v >= 1.0));
    // Other tasks keep fresh values meanwhile.
    assert_eq!(
        value(&text, "udts_task_up", &task("udts-loading")),
        Some(1.0)
    );

    harness.gateway.set_behaviour(
        "udts-syncing",
        Behaviour::Fixed(
            json!({"Status": "Synced", "Sync": {"BinlogName": "mysql-bin.000043", "BinlogPos": 4}}),
        ),
    );
    let text = scrape_until(harness.exporter, "udts-syncing back up", |text| {
        value(text, "udts_task_up", &syncing) == Some(1.0)
    })
    .await;
    assert_eq!(
        value(&text, "udts_task_binlog_file_index", &syncing),
        Some(43.0)
    );
    assert_eq!(
        value(
            &text,
            "udts_task_status",
            r#"{task_id="udts-syncing",status="Synced"}"#
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_since_and_last_progress_follow_changes() {
    let harness = start(vec![fixed(
        "udts-a",
        json!({"Status": "Loading", "Progress": {"CurCount": 1, "Percentage": 1}}),
    )])
    .await;
    let a = task("udts-a");
    // Seen first in Loading: when it entered it is unknown until its history answers, which
    // comes after the first cycle (never a guess meanwhile).
    let first = scrape(harness.exporter).await;
    assert_eq!(
        value(&first, "udts_task_status_since_timestamp_seconds", &a),
        None
    );
    let first = scrape_until(harness.exporter, "the task's history", |text| {
        value(text, "udts_task_status_since_timestamp_seconds", &a).is_some()
    })
    .await;
    let since = value(&first, "udts_task_status_since_timestamp_seconds", &a).unwrap();
    let progressed = value(&first, "udts_task_last_progress_timestamp_seconds", &a).unwrap();

    // Polled again with nothing moving: both timestamps stay while last success advances.
    let text = scrape_until(harness.exporter, "a second successful poll", |text| {
        value(text, "udts_task_last_success_timestamp_seconds", &a).unwrap() > since
    })
    .await;
    assert_eq!(
        value(&text, "udts_task_status_since_timestamp_seconds", &a),
        Some(since)
    );
    assert_eq!(
        value(&text, "udts_task_last_progress_timestamp_seconds", &a),
        Some(progressed)
    );

    harness.gateway.set_behaviour(
        "udts-a",
        Behaviour::Fixed(
            json!({"Status": "Loading", "Progress": {"CurCount": 50, "Percentage": 5}}),
        ),
    );
    let text = scrape_until(harness.exporter, "progress to move", |text| {
        value(text, "udts_task_progress_rows", &a) == Some(50.0)
    })
    .await;
    assert!(value(&text, "udts_task_last_progress_timestamp_seconds", &a).unwrap() > progressed);
    assert_eq!(
        value(&text, "udts_task_status_since_timestamp_seconds", &a),
        Some(since)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_private_key_is_a_credentials_error_that_stops_the_hammering_and_never_leaks() {
    let wrong_key = "wrong-private-key-0000";
    let harness = start_with(tasks(), wrong_key, |_| {}).await;
    // The first cycle probes the keys with one call before polling the rest.
    assert_eq!(harness.gateway.requests("GetUDTSTaskStatus"), 1);
    let text = scrape(harness.exporter).await;
    let up = family(&text, "udts_task_up");
    assert_eq!(up.len(), 11);
    assert!(up.values().all(|v| *v == 0.0), "{up:?}");
    assert!(value(
        &text,
        "udts_api_request_errors_total",
        r#"{account="",action="GetUDTSTaskStatus",reason="credentials"}"#
    )
    .is_some_and(|v| v >= 1.0));
    assert_eq!(
        value(&text, "udts_api_credentials_valid", r#"{account=""}"#),
        Some(0.0)
    );
    assert!(!text.contains(wrong_key));
    assert!(!text.contains(PRIVATE_KEY));

    // With the keys rejected, each 1 s cycle sends one probe, not one call per task.
    let before = harness.gateway.requests("GetUDTSTaskStatus");
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let sent = harness.gateway.requests("GetUDTSTaskStatus") - before;
    assert!((1..=5).contains(&sent), "{sent} calls in 3.5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_is_served_to_scrapers_that_accept_it() {
    let harness = start(tasks()).await;
    let response = http_client()
        .get(format!("http://{}/metrics", harness.exporter))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let compressed = response.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(family(&text, "udts_task_info").len(), 11);
    assert!(compressed.len() < text.len());

    let plain = http_get(format!("http://{}/metrics", harness.exporter))
        .await
        .unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_index_are_served() {
    let harness = start(vec![fixed("udts-a", json!({"Status": "Done"}))]).await;
    let base = format!("http://{}", harness.exporter);
    let healthz = http_get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(healthz.status(), 200);
    let readyz = http_get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(readyz.status(), 200);
    let index = http_get(&base).await.unwrap().text().await.unwrap();
    assert!(index.contains("href=\"/metrics\""), "{index}");
    let missing = http_get(format!("{base}/nope")).await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_the_first_cycle() {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (gateway, endpoint) =
        gateway_with(vec![SimTask::new("udts-slow", Behaviour::Hang)], &shutdown).await;
    let mut config = config_for(&gateway, &endpoint, PRIVATE_KEY);
    config.api.timeout = Some(std::time::Duration::from_millis(900));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = udts_exporter::exporter::start(&config, listener, shutdown.clone())
        .await
        .unwrap();
    let readyz = http_get(format!("http://{}/readyz", running.local_addr))
        .await
        .unwrap();
    assert_eq!(readyz.status(), 503);
    // /metrics answers at once even while the only poll hangs.
    let text = scrape(running.local_addr).await;
    assert_eq!(family(&text, "udts_task_info").len(), 1);
    wait_ready(running.local_addr).await;
    shutdown.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(5), running.wait())
        .await
        .expect("shutdown within 5 s")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_never_sees_half_of_a_task_update() {
    let state = |n: u64| {
        Behaviour::Fixed(json!({"Status": "Loading",
            "Progress": {"CurCount": n * 100, "Percentage": n * 10, "TotalCount": 1000}}))
    };
    let ids: Vec<String> = (0..20).map(|i| format!("udts-{i:02}")).collect();
    let harness = start(ids.iter().map(|id| SimTask::new(id, state(1))).collect()).await;
    let gateway = harness.gateway.clone();
    let flipping_ids = ids.clone();
    let flipper = tokio::spawn(async move {
        for round in 0..400u64 {
            for id in &flipping_ids {
                gateway.set_behaviour(id, state(1 + round % 2));
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    });
    let mut scrapes = 0;
    let mut states_seen = std::collections::BTreeSet::new();
    while !flipper.is_finished() {
        let text = scrape(harness.exporter).await;
        for id in &ids {
            let rows = value(&text, "udts_task_progress_rows", &task(id)).unwrap();
            let ratio = value(&text, "udts_task_progress_ratio", &task(id)).unwrap();
            assert_eq!(rows / 1000.0, ratio, "{id}: rows {rows} with ratio {ratio}");
            states_seen.insert(rows as u64);
        }
        scrapes += 1;
    }
    assert!(scrapes > 20, "{scrapes} scrapes");
    assert_eq!(
        states_seen.len(),
        2,
        "both states were observed: {states_seen:?}"
    );
}
