//! The exporter in a real monitoring stack: `udts-exporter demo`, a real Prometheus scraping it
//! with the shipped scrape config and alert rules, and a real Alertmanager. Passes when
//! Prometheus has `udts_task_status` samples and the alert for the demo's failed task fires in
//! Prometheus and reaches Alertmanager, as their HTTP APIs report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use serde_yaml_ng::Value as Yaml;
use tokio::process::{Child, Command};

fn spawn(program: &str, args: &[String], log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"))
}

/// GETs `url` until `done` says the JSON answer is what we wait for.
async fn wait_json(
    what: &str,
    url: &str,
    deadline: Instant,
    logs: &[&Path],
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let client = http_client();
    let mut last = serde_json::Value::Null;
    while Instant::now() < deadline {
        if let Ok(response) = client.get(url).send().await {
            let text = response.text().await.unwrap_or_default();
            if let Ok(body) = serde_json::from_str::<serde_json::Value>(&text) {
                if done(&body) {
                    return body;
                }
                last = body;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut logs_text = String::new();
    for log in logs {
        logs_text.push_str(&std::fs::read_to_string(log).unwrap_or_default());
    }
    panic!("timed out waiting for {what}; last answer: {last}\nlogs:\n{logs_text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_demo_and_alertmanager_receives_the_failure_alert() {
    if !tool_available("prometheus") || !tool_available("prometheus-alertmanager") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);

    // The exporter, in demo mode.
    let exporter = spawn_exporter(["demo"], Stdio::null()).await;
    let exporter_addr = exporter.addr.to_string();

    // Alertmanager with the shipped configuration.
    let am_port = free_port();
    let am_log = dir.path().join("alertmanager.log");
    let _alertmanager = spawn(
        "prometheus-alertmanager",
        &[
            format!(
                "--config.file={}",
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("deploy/prometheus/alertmanager.yml")
                    .display()
            ),
            format!("--storage.path={}", dir.path().join("am-data").display()),
            format!("--web.listen-address=127.0.0.1:{am_port}"),
            "--cluster.listen-address=".into(),
        ],
        &am_log,
    );

    // Prometheus with the shipped scrape config and rules, pointed at this test's processes
    // and evaluating every second.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus");
    let mut config: Yaml =
        serde_yaml_ng::from_str(&std::fs::read_to_string(shipped.join("prometheus.yml")).unwrap())
            .unwrap();
    config["global"]["scrape_interval"] = "1s".into();
    config["global"]["evaluation_interval"] = "1s".into();
    config["rule_files"][0] = shipped.join("alerts.yml").display().to_string().into();
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0] =
        format!("127.0.0.1:{am_port}").into();
    assert_eq!(config["scrape_configs"][0]["job_name"], "udts");
    config["scrape_configs"][0]["static_configs"][0]["targets"][0] = exporter_addr.clone().into();
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, serde_yaml_ng::to_string(&config).unwrap()).unwrap();
    let prom_port = free_port();
    let prom_log = dir.path().join("prometheus.log");
    let _prometheus = spawn(
        "prometheus",
        &[
            format!("--config.file={}", config_path.display()),
            format!(
                "--storage.tsdb.path={}",
                dir.path().join("prom-data").display()
            ),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        &prom_log,
    );
    let logs = [prom_log.as_path(), am_log.as_path()];
    let prometheus = format!("http://127.0.0.1:{prom_port}");

    let body = wait_json(
        "udts_task_status samples in Prometheus",
        &format!("{prometheus}/api/v1/query?query=udts_task_status"),
        deadline,
        &logs,
        |body| {
            body["data"]["result"]
                .as_array()
                .is_some_and(|r| r.len() >= 20)
        },
    )
    .await;
    assert_eq!(body["status"], "success");

    let is_legacy_alert = |alert: &serde_json::Value| {
        alert["labels"]["alertname"] == "UDTSTaskFailedUnrecoverable"
            && alert["labels"]["task_id"] == "udts-demo-legacy"
    };
    let body = wait_json(
        "the failure alert firing in Prometheus",
        &format!("{prometheus}/api/v1/alerts"),
        deadline,
        &logs,
        |body| {
            body["data"]["alerts"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| is_legacy_alert(x) && x["state"] == "firing")
            })
        },
    )
    .await;
    let alert = body["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| is_legacy_alert(a))
        .unwrap()
        .clone();
    assert_eq!(alert["labels"]["severity"], "critical");
    // The demo's archive task expires in three days: the billing alert fires too.
    assert!(
        body["data"]["alerts"].as_array().unwrap().iter().any(|a| {
            a["labels"]["alertname"] == "UDTSTaskExpiringSoon"
                && a["labels"]["task_id"] == "udts-demo-archive"
        }),
        "{body}"
    );
    assert_eq!(alert["labels"]["name"], "demo-legacy");
    // The demo labels its tasks by team ([[discovery.labels]]); the alert carries the team.
    assert_eq!(alert["labels"]["team"], "platform", "{alert}");
    assert_eq!(alert["labels"]["env"], "demo", "{alert}");
    assert!(alert["annotations"]["summary"]
        .as_str()
        .unwrap()
        .contains("FailedUnrecoverable"));

    let body = wait_json(
        "the failure alert in Alertmanager",
        &format!("http://127.0.0.1:{am_port}/api/v2/alerts"),
        deadline,
        &logs,
        |body| {
            body.as_array()
                .is_some_and(|a| a.iter().any(is_legacy_alert))
        },
    )
    .await;
    let received = body
        .as_array()
        .unwrap()
        .iter()
        .find(|a| is_legacy_alert(a))
        .unwrap();
    assert_eq!(received["status"]["state"], "active");

    // Every query of the shipped dashboards is valid PromQL against this Prometheus, with
    // the variables as Grafana fills them, and most find data in the demo (the drill-down's
    // for one of the demo's tasks: a paused one has no progress, a full load no lag).
    let client = http_client();
    let demo_tasks = [
        "udts-demo-paused",
        "udts-demo-orders-sync",
        "udts-demo-inventory",
        "udts-demo-archive",
        "udts-demo-cache",
        "udts-demo-orders-retry",
        "udts-demo-sessions",
    ];
    for (file, tasks) in [
        ("udts-overview.json", &[".*"][..]),
        ("udts-task.json", &demo_tasks[..]),
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy/grafana")
            .join(file);
        let dashboard: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let (mut queries, mut without_data) = (0, Vec::new());
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let mut found = false;
                for task in tasks {
                    let expr = target["expr"]
                        .as_str()
                        .unwrap()
                        .replace("$job", "udts")
                        .replace("$project", ".*")
                        .replace("$task", task);
                    let text = client
                        .get(format!("{prometheus}/api/v1/query"))
                        .query(&[("query", expr.as_str())])
                        .send()
                        .await
                        .unwrap()
                        .text()
                        .await
                        .unwrap();
                    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(answer["status"], "success", "{file}: {expr}: {answer}");
                    found |= answer["data"]["result"]
                        .as_array()
                        .is_some_and(|r| !r.is_empty());
                }
                queries += 1;
                if !found {
                    without_data.push(target["expr"].as_str().unwrap().to_string());
                }
            }
        }
        eprintln!(
            "{file}: {} of {queries} queries find no data: {without_data:?}",
            without_data.len()
        );
        assert!(
            without_data.len() * 5 <= queries,
            "{file}: no data for {without_data:#?}"
        );
    }
    drop(exporter);
}
