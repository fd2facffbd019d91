//! The task page and its JSON API: the schema and its nulls, 404s, escaping and security
//! headers over HTTP; then the page in a real headless Chromium (through chromedriver): a row
//! per task, the summary, the worst task first, the filter, a live change without a reload,
//! and a task named with markup shown as text.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use fantoccini::Locator;
use serde_json::{json, Value};
use udts_exporter::simulator::{Behaviour, SimTask};

const MARKUP_NAME: &str = "<img src=x onerror=alert(1)>";

fn tasks() -> Vec<SimTask> {
    let mut named = SimTask::new(
        "udts-markup",
        Behaviour::Fixed(json!({"Status": "Synced", "CurRetryCount": 0, "MaxRetryCount": 3})),
    );
    named.name = MARKUP_NAME.into();
    vec![
        SimTask::new(
            "udts-done",
            Behaviour::Fixed(
                json!({"Status": "Done", "CurRetryCount": 0, "MaxRetryCount": 3,
                "Progress": {"TotalCount": 10, "CurCount": 10, "Percentage": 100}}),
            ),
        ),
        SimTask::new(
            "udts-loading",
            Behaviour::Fixed(
                json!({"Status": "Loading", "CurRetryCount": 0, "MaxRetryCount": 3,
                "Progress": {"TotalCount": 2000, "CurCount": 500, "Percentage": 25,
                             "CurDuration": 100, "TotalDuration": 400}}),
            ),
        ),
        SimTask::new(
            "udts-sync-a",
            Behaviour::Fixed(
                json!({"Status": "Syncing", "CurRetryCount": 0, "MaxRetryCount": 3,
                "Sync": {"BinlogName": "mysql-bin.000042", "BinlogPos": 154,
                         "BinlogGTID": "uuid:1-5"}}),
            ),
        ),
        SimTask::new(
            "udts-sync-b",
            Behaviour::Fixed(
                json!({"Status": "Syncing", "CurRetryCount": 0, "MaxRetryCount": 3,
                "Progress": {"RedisDelayTime": 4}}),
            ),
        ),
        SimTask::new(
            "udts-broken",
            Behaviour::Fixed(
                json!({"Status": "Failed", "CurRetryCount": 1, "MaxRetryCount": 3,
                "FailedMessage": "Access denied for user 'udts'\nsecond line"}),
            ),
        ),
        named,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_api_follows_its_schema() {
    let harness = start(tasks()).await;
    let base = format!("http://{}", harness.exporter);
    let response = http_get(format!("{base}/api/v1/tasks")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let list: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert!(list["generated_at"].as_f64().unwrap() > 1.7e9);
    assert_eq!(list["poll_interval_seconds"], 1.0);
    let tasks = list["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 6);
    // Worst first.
    assert_eq!(tasks[0]["id"], "udts-broken");
    let keys: Vec<&str> = tasks[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "id",
        "kind",
        "name",
        "mode",
        "project_id",
        "account",
        "up",
        "status",
        "status_since",
        "last_success",
        "progress",
        "sync",
        "delay_seconds",
        "retries",
        "max_retries",
        "error",
        "failure_message",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    let by_id = |id: &str| tasks.iter().find(|t| t["id"] == id).unwrap();
    let broken = by_id("udts-broken");
    assert_eq!(broken["up"], true);
    assert_eq!(broken["retries"].as_u64(), Some(1), "{broken}");
    assert_eq!(
        broken["failure_message"],
        "Access denied for user 'udts'\nsecond line"
    );
    assert!(broken["progress"].is_null() && broken["sync"].is_null());
    assert!(broken["delay_seconds"].is_null() && broken["error"].is_null());
    assert!(broken["account"].is_null());
    let loading = by_id("udts-loading");
    assert_eq!(loading["progress"]["ratio"], 0.25);
    // Counts and whole seconds are JSON integers: typed clients (Go `int`, serde `u64`) refuse
    // `500.0`.
    assert_eq!(loading["progress"]["rows"].as_u64(), Some(500));
    assert_eq!(loading["progress"]["target_rows"].as_u64(), Some(2000));
    assert_eq!(
        loading["progress"]["estimated_duration_seconds"].as_u64(),
        Some(400)
    );
    assert!(loading["sync"].is_null());
    let sync = by_id("udts-sync-a");
    assert_eq!(sync["sync"]["binlog_file"], "mysql-bin.000042");
    assert_eq!(sync["sync"]["gtid"], "uuid:1-5");
    assert!(sync["sync"]["binlog_position"].is_u64(), "{sync}");
    assert_eq!(by_id("udts-sync-b")["delay_seconds"], 4.0);
    assert_eq!(by_id("udts-markup")["name"], MARKUP_NAME);
    for task in tasks {
        // A number once the task's history has said, null until then (never a guess).
        assert!(task
            .get("status_since")
            .is_some_and(|v| v.is_null() || v.is_f64()));
        assert!(task["last_success"].as_f64().is_some());
        assert_eq!(task["kind"], "transfer");
    }

    // Gzip when asked, the same document.
    let gzipped = http_client()
        .get(format!("{base}/api/v1/tasks"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");

    // One task with its history; an unknown one is a JSON 404.
    let one: Value = serde_json::from_str(
        &http_get(format!("{base}/api/v1/tasks/udts-loading"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(one["id"], "udts-loading");
    assert_eq!(one["progress"]["ratio"], 0.25);
    let history = one["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{one}");
    assert_eq!(history[0]["kind"], "progress");
    assert_eq!(history[0]["value"], 0.25);
    let missing = http_get(format!("{base}/api/v1/tasks/udts-nope"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["content-type"], "application/json");
    let error: Value = serde_json::from_str(&missing.text().await.unwrap()).unwrap();
    assert!(error["error"].as_str().unwrap().contains("udts-nope"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_rendered_page_is_complete_and_escaped() {
    let harness = start(tasks()).await;
    let base = format!("http://{}", harness.exporter);
    let response = http_get(format!("{base}/")).await.unwrap();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let html = response.text().await.unwrap();
    assert_eq!(html.matches("<tr class=\"h-").count(), 6, "{html}");
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{html}"
    );
    assert!(!html.contains("<img"), "{html}");
    // No inline script or style anywhere: the policy would block them.
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "{html}"
    );
    for link in ["href=\"/metrics\"", "href=\"/healthz\"", "href=\"/readyz\""] {
        assert!(html.contains(link), "{link}");
    }
    let first_row = html.split("<tbody>").nth(1).unwrap();
    assert!(first_row.starts_with("<tr class=\"h-failed\" data-key=\"/udts-broken\""));
    assert!(html.contains("500 / 2,000 rows"), "{html}");
    assert!(html.contains("<code>mysql-bin.000042:154</code>"), "{html}");
    // The filter works without JavaScript too.
    let filtered = http_get(format!("{base}/?q=sync-"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(filtered.matches("<tr class=\"h-").count(), 2, "{filtered}");
    // The script and style are served by the exporter itself.
    for (path, kind) in [
        ("/static/udts.js", "text/javascript"),
        ("/static/udts.css", "text/css"),
    ] {
        let asset = http_get(format!("{base}{path}")).await.unwrap();
        assert_eq!(asset.status(), 200);
        assert!(asset.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(kind));
    }
}

/// A browser on the task page of an exporter polling [`tasks`], or `None` (skipped) without
/// chromium and chromedriver.
async fn open_page() -> Option<(Driver, fantoccini::Client, Harness)> {
    let (driver, browser) = start_browser().await?;
    let harness = start(tasks()).await;
    browser
        .goto(&format!("http://{}/", harness.exporter))
        .await
        .unwrap();
    Some((driver, browser, harness))
}

/// Evaluates `script` in the page until it returns `expected`, or fails after 20 s.
async fn eventually(browser: &fantoccini::Client, script: &str, expected: Value) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        last = browser.execute(script, vec![]).await.unwrap();
        if last == expected {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{script}: expected {expected}, last {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_real_browser_the_page_filters_and_follows_the_gateway_live() {
    let Some((_driver, browser, harness)) = open_page().await else {
        return;
    };
    // The script has taken over (it marks the document) and rendered a row per task.
    eventually(
        &browser,
        "return document.documentElement.classList.contains('js') && \
         document.querySelectorAll('#tasks tbody tr').length",
        json!(6),
    )
    .await;
    let first = browser
        .execute(
            "return document.querySelector('#tasks tbody tr').getAttribute('data-key')",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(first, json!("/udts-broken"));
    let summary = browser
        .execute(
            "return Array.from(document.querySelectorAll('#summary li')).map(li => li.textContent)",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        summary,
        json!(["Failed 1", "Loading 1", "Synced 1", "Syncing 2", "Done 1"])
    );
    // The markup in a name is text: no element was added, and it reads as written.
    let images = browser
        .execute("return document.querySelectorAll('img').length", vec![])
        .await
        .unwrap();
    assert_eq!(images, json!(0));
    let name = browser
        .execute(
            "return document.querySelector('tr[data-key=\"/udts-markup\"] .name').textContent",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(name, json!(MARKUP_NAME));

    // Typing in the filter narrows the rows.
    let filter = browser.find(Locator::Id("filter")).await.unwrap();
    filter.send_keys("sync-").await.unwrap();
    eventually(
        &browser,
        "return Array.from(document.querySelectorAll('#tasks tbody tr')).map(r => r.getAttribute('data-key'))",
        json!(["/udts-sync-a", "/udts-sync-b"]),
    )
    .await;
    filter.clear().await.unwrap();
    filter.send_keys("udts").await.unwrap();

    // A change at the gateway shows on the open page without a reload.
    browser
        .execute("window.notReloaded = true; return true", vec![])
        .await
        .unwrap();
    harness.gateway.set_behaviour(
        "udts-done",
        Behaviour::Fixed(json!({"Status": "FailedUnrecoverable", "CurRetryCount": 3,
                                "MaxRetryCount": 3, "FailedMessage": "gave up"})),
    );
    eventually(
        &browser,
        "return window.notReloaded === true && \
         document.querySelector('#tasks tbody tr').getAttribute('data-key') + ' ' + \
         document.querySelector('#tasks tbody tr .badge').textContent",
        json!("/udts-done FailedUnrecoverable"),
    )
    .await;

    // Sorting by a column reorders the rows.
    browser
        .find(Locator::Css("th[data-sort=\"id\"]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(
        &browser,
        "return document.querySelector('#tasks tbody tr').getAttribute('data-key')",
        json!("/udts-broken"),
    )
    .await;
    browser.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_real_browser_the_page_says_when_the_exporter_is_unreachable() {
    let Some((_driver, browser, harness)) = open_page().await else {
        return;
    };
    eventually(
        &browser,
        "return document.getElementById('freshness').textContent.startsWith('Data from')",
        json!(true),
    )
    .await;
    drop(harness);
    eventually(
        &browser,
        "return document.getElementById('freshness').textContent.startsWith('Cannot reach the exporter')",
        json!(true),
    )
    .await;
    browser.close().await.unwrap();
}
