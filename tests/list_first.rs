//! List-first polling against the simulated gateway, counted exactly: the gateway logs every
//! request in order, and each poll cycle starts with its `ListUDTSTask` call, so the log cut at
//! those calls is the exporter's cycles.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use udts_exporter::config::{Config, PollStrategy};
use udts_exporter::simulator::{Behaviour, Call, Gateway, SimTask};
use udts_exporter::task::TaskKind;

const STATUS: &str = "GetUDTSTaskStatus";
const HISTORY: &str = "GetUDTSTaskHistory";
const LIST: &str = "ListUDTSTask";

fn fixed(id: &str, data: Value) -> SimTask {
    SimTask::new(id, Behaviour::Fixed(data))
}

fn done(id: &str) -> SimTask {
    fixed(
        id,
        json!({"Status": "Done", "CurRetryCount": 0, "MaxRetryCount": 3,
               "Progress": {"TotalCount": 5000, "CurCount": 5000, "Percentage": 100,
                            "CurDuration": 60, "TotalDuration": 60}}),
    )
}

fn loading_data(rows: u64) -> Value {
    json!({"Status": "Loading", "CurRetryCount": 0, "MaxRetryCount": 3,
           "Progress": {"TotalCount": 1000, "CurCount": rows, "Percentage": rows as f64 / 10.0,
                        "CurDuration": 30, "TotalDuration": 120}})
}

fn syncing_data(position: u64) -> Value {
    json!({"Status": "Syncing", "CurRetryCount": 0, "MaxRetryCount": 3,
           "Sync": {"BinlogName": "mysql-bin.000006", "BinlogPos": position,
                    "BinlogGTID": "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"}})
}

fn failed_data(retries: u64, message: &str) -> Value {
    json!({"Status": "Failed", "CurRetryCount": retries, "MaxRetryCount": 3,
           "FailedMessage": message})
}

/// Discovery on (transfer tasks only, so one list call per cycle), no static tasks.
fn discovered(config: &mut Config) {
    config.tasks.clear();
    config.discovery.enabled = true;
    config.discovery.kinds = vec![TaskKind::Transfer];
}

/// The gateway's log cut into cycles: with one source of fewer than 100 tasks, each cycle
/// starts with exactly one `ListUDTSTask` call. Only cycles followed by another are complete;
/// the last one is dropped.
fn cycles(calls: &[Call]) -> Vec<Vec<Call>> {
    let mut cycles: Vec<Vec<Call>> = Vec::new();
    for call in calls {
        if call.action == LIST {
            cycles.push(Vec::new());
        } else if let Some(cycle) = cycles.last_mut() {
            cycle.push(call.clone());
        }
    }
    cycles.pop();
    cycles
}

/// `action` calls per task id in `calls`.
fn per_task(calls: &[Call], action: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for call in calls.iter().filter(|c| c.action == action) {
        *counts
            .entry(call.task_id.clone().unwrap_or_default())
            .or_default() += 1;
    }
    counts
}

/// Waits until the gateway has seen `lists` more list calls than at `from` (the previous
/// cycles are then complete).
async fn wait_for_lists(gateway: &Gateway, from: u64, lists: u64) {
    for _ in 0..300 {
        if gateway.requests(LIST) >= from + lists {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the exporter did not list {lists} more times");
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(id, n)| (id.to_string(), *n)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_account_costs_one_list_call_per_cycle() {
    let tasks: Vec<SimTask> = (0..10).map(|i| done(&format!("udts-done-{i}"))).collect();
    let harness = start_with(tasks, PRIVATE_KEY, discovered).await;
    wait_for_lists(&harness.gateway, 0, 6).await;
    let cycles = cycles(&harness.gateway.calls());
    assert!(cycles.len() >= 5, "{cycles:?}");
    // The list says all there is of finished tasks, first sight included: the list call
    // alone, every cycle, no status and no history call.
    for cycle in &cycles {
        assert!(cycle.is_empty(), "{cycle:?}");
    }
    let text = scrape(harness.exporter).await;
    assert_eq!(value(&text, "udts_api_calls_per_cycle", ""), Some(1.0));
    assert!(value(&text, "udts_poll_refreshes_total", r#"{via="list"}"#).unwrap() >= 50.0);
    assert_eq!(
        value(&text, "udts_poll_refreshes_total", r#"{via="status"}"#),
        Some(0.0)
    );
    // Still fresh: read in this cycle, from the list.
    let up = family(&text, "udts_task_up");
    assert_eq!(up.len(), 10);
    assert!(up.values().all(|v| *v == 1.0));
    assert_eq!(
        family(&text, "udts_task_status")
            .iter()
            .filter(|(labels, v)| labels.contains("status=\"Done\"") && **v == 1.0)
            .count(),
        10
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_account_calls_status_only_where_the_list_cannot_tell() {
    let tasks = vec![
        done("udts-done-a"),
        done("udts-done-b"),
        fixed("udts-sync-a", syncing_data(100)),
        fixed("udts-sync-b", syncing_data(200)),
        fixed("udts-load", loading_data(100)),
        fixed("udts-fail", failed_data(1, "first failure")),
    ];
    let harness = start_with(tasks, PRIVATE_KEY, discovered).await;
    let gateway = &harness.gateway;
    // Ready: the first picture is published, and no history call was made for it. The failed
    // task is in it from the list (status and retries, what its alert needs); its message is
    // not yet.
    let at_ready = gateway.calls();
    assert!(per_task(&at_ready, HISTORY).is_empty(), "{at_ready:?}");
    let first_picture = scrape(harness.exporter).await;
    assert_eq!(
        value(
            &first_picture,
            "udts_task_status",
            r#"{task_id="udts-fail",status="Failed"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&first_picture, "udts_task_retries", &task("udts-fail")),
        Some(1.0)
    );
    wait_for_lists(gateway, 0, 6).await;
    let steady = cycles(&gateway.calls());
    // First sight: a status call only where the list cannot tell (the incremental tasks); the
    // finished tasks, the load and the failure come from the list.
    assert_eq!(
        per_task(&steady[0], STATUS),
        counts(&[("udts-sync-a", 1), ("udts-sync-b", 1)])
    );
    assert!(per_task(&steady[0], HISTORY).is_empty());
    // The next cycle reads the failed task's message.
    assert_eq!(
        per_task(&steady[1], STATUS),
        counts(&[("udts-fail", 1), ("udts-sync-a", 1), ("udts-sync-b", 1)])
    );
    let text = scrape(harness.exporter).await;
    assert!(
        family(&text, "udts_task_failure_info")
            .keys()
            .any(|labels| labels.contains("udts-fail") && labels.contains("first failure")),
        "{text}"
    );
    // History for the four unfinished tasks comes in the following cycles, at most a tenth
    // of the tasks (here one) per cycle.
    let history: Vec<Call> = steady[1..].iter().flatten().cloned().collect();
    assert_eq!(
        per_task(&history, HISTORY),
        counts(&[
            ("udts-fail", 1),
            ("udts-load", 1),
            ("udts-sync-a", 1),
            ("udts-sync-b", 1)
        ])
    );
    assert!(steady[1..]
        .iter()
        .all(|cycle| per_task(cycle, HISTORY).len() <= 1));
    // Then the incremental phase alone needs status calls.
    for cycle in &steady[2..] {
        assert_eq!(
            per_task(cycle, STATUS),
            counts(&[("udts-sync-a", 1), ("udts-sync-b", 1)]),
            "{cycle:?}"
        );
    }

    // Progress of the load, a new binlog position, new retries, a finished task restarted.
    let mark = gateway.calls().len();
    let lists = gateway.requests(LIST);
    gateway.set_behaviour("udts-load", Behaviour::Fixed(loading_data(700)));
    gateway.set_behaviour("udts-sync-a", Behaviour::Fixed(syncing_data(4242)));
    gateway.set_behaviour(
        "udts-fail",
        Behaviour::Fixed(failed_data(2, "second failure")),
    );
    gateway.set_behaviour(
        "udts-done-a",
        Behaviour::Fixed(json!({"Status": "Starting", "CurRetryCount": 0, "MaxRetryCount": 3})),
    );
    wait_for_lists(gateway, lists, 5).await;
    let after: Vec<Call> = gateway.calls()[mark..].to_vec();
    let status_calls = per_task(&after, STATUS);
    // Retries changed while failing, and a status changed: one status call each, then the
    // list again. The load moved, seen through the list alone.
    assert_eq!(status_calls.get("udts-fail"), Some(&1), "{status_calls:?}");
    assert_eq!(
        status_calls.get("udts-done-a"),
        Some(&1),
        "{status_calls:?}"
    );
    assert_eq!(status_calls.get("udts-load"), None, "{status_calls:?}");
    assert_eq!(status_calls.get("udts-done-b"), None, "{status_calls:?}");
    assert!(status_calls["udts-sync-a"] >= 4, "{status_calls:?}");
    assert!(per_task(&after, HISTORY).is_empty());

    let text = scrape(harness.exporter).await;
    assert_eq!(
        value(&text, "udts_task_progress_rows", &task("udts-load")),
        Some(700.0)
    );
    assert_eq!(
        value(&text, "udts_task_progress_ratio", &task("udts-load")),
        Some(0.7)
    );
    assert_eq!(
        value(&text, "udts_task_binlog_position", &task("udts-sync-a")),
        Some(4242.0)
    );
    assert_eq!(
        value(&text, "udts_task_retries", &task("udts-fail")),
        Some(2.0)
    );
    assert!(
        family(&text, "udts_task_failure_info")
            .keys()
            .any(|labels| labels.contains("udts-fail") && labels.contains("second failure")),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "udts_task_status",
            r#"{task_id="udts-done-a",status="Starting"}"#
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_list_falls_back_to_status_calls_until_it_works() {
    let tasks: Vec<SimTask> = (0..4).map(|i| done(&format!("udts-done-{i}"))).collect();
    let harness = start_with(tasks, PRIVATE_KEY, discovered).await;
    let gateway = &harness.gateway;
    wait_for_lists(gateway, 0, 3).await;

    let mark = gateway.calls().len();
    let lists = gateway.requests(LIST);
    gateway.set_list_fault(Some(Behaviour::RetCode(150, "Service unavailable".into())));
    wait_for_lists(gateway, lists, 4).await;
    let during = cycles(&gateway.calls()[mark..]);
    // The cycle the fault started in may still have listed; every one after reads each task.
    for cycle in &during[1..] {
        assert_eq!(per_task(cycle, STATUS).len(), 4, "{cycle:?}");
        assert!(per_task(cycle, STATUS).values().all(|n| *n == 1));
    }
    let text = scrape(harness.exporter).await;
    assert!(family(&text, "udts_task_up").values().all(|v| *v == 1.0));
    assert!(
        value(
            &text,
            "udts_api_request_errors_total",
            r#"{account="",action="ListUDTSTask",reason="transient"}"#
        )
        .unwrap()
            >= 3.0
    );

    gateway.set_list_fault(None);
    let lists = gateway.requests(LIST);
    wait_for_lists(gateway, lists, 2).await;
    let mark = gateway.calls().len();
    let lists = gateway.requests(LIST);
    wait_for_lists(gateway, lists, 3).await;
    for cycle in cycles(&gateway.calls()[mark..]) {
        assert!(cycle.is_empty(), "{cycle:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_tasks_and_the_status_strategy_read_every_task_every_cycle() {
    // Static only (discovery off): no list, one status call per task per cycle.
    let tasks = || vec![done("udts-a"), done("udts-b"), done("udts-c")];
    let harness = start(tasks()).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(harness.gateway.requests(LIST), 0);
    let calls = per_task(&harness.gateway.calls(), STATUS);
    assert_eq!(calls.len(), 3);
    let (low, high) = (calls.values().min().unwrap(), calls.values().max().unwrap());
    assert!(*low >= 3 && high - low <= 1, "{calls:?}");
    drop(harness);

    // Discovery on with strategy = "status": the list only at refresh_interval.
    let harness = start_with(tasks(), PRIVATE_KEY, |config| {
        discovered(config);
        config.poll.strategy = PollStrategy::Status;
    })
    .await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(harness.gateway.requests(LIST), 1);
    let calls = per_task(&harness.gateway.calls(), STATUS);
    assert_eq!(calls.len(), 3);
    assert!(calls.values().all(|n| *n >= 3), "{calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_since_comes_from_the_history_after_the_first_picture() {
    let harness = start_with(
        vec![
            fixed(
                "udts-stuck",
                json!({"Status": "Starting", "CurRetryCount": 0, "MaxRetryCount": 3}),
            )
            .started_ago(7200.0),
            done("udts-old-done").started_ago(7200.0),
        ],
        PRIVATE_KEY,
        discovered,
    )
    .await;
    // Unknown in the first picture (never a guess), then what the history says.
    let first = scrape(harness.exporter).await;
    assert_eq!(
        value(
            &first,
            "udts_task_status_since_timestamp_seconds",
            &task("udts-stuck")
        ),
        None
    );
    let text = scrape_until(harness.exporter, "the stuck task's history", |text| {
        value(
            text,
            "udts_task_status_since_timestamp_seconds",
            &task("udts-stuck"),
        )
        .is_some()
    })
    .await;
    let now = udts_exporter::time::unix_now();
    let stuck = value(
        &text,
        "udts_task_status_since_timestamp_seconds",
        &task("udts-stuck"),
    )
    .unwrap();
    assert!((now - 7200.0 - stuck).abs() < 10.0, "{stuck} vs {now}");
    // A finished task gets no history call: its status counts from first sight.
    let finished = value(
        &text,
        "udts_task_status_since_timestamp_seconds",
        &task("udts-old-done"),
    )
    .unwrap();
    assert!(now - finished < 10.0, "{finished} vs {now}");
    assert_eq!(
        per_task(&harness.gateway.calls(), HISTORY),
        counts(&[("udts-stuck", 1)])
    );
}

/// After a restart, the task stuck in an unfinished status gets its history first: alerts on how
/// long a task has been in a phase wait on it, not on the paused tasks listed before it. With
/// four tasks the budget is one history call a cycle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_task_gets_its_history_before_paused_ones() {
    let stopped = json!({"Status": "Stopped", "CurRetryCount": 0, "MaxRetryCount": 3});
    let harness = start_with(
        vec![
            fixed("udts-a-paused", stopped.clone()).started_ago(7200.0),
            fixed("udts-b-paused", stopped.clone()).started_ago(7200.0),
            fixed("udts-c-paused", stopped).started_ago(7200.0),
            fixed(
                "udts-z-stuck",
                json!({"Status": "Starting", "CurRetryCount": 0, "MaxRetryCount": 3}),
            )
            .started_ago(7200.0),
        ],
        PRIVATE_KEY,
        discovered,
    )
    .await;
    scrape_until(harness.exporter, "two history calls", |_| {
        harness
            .gateway
            .calls()
            .iter()
            .filter(|c| c.action == HISTORY)
            .count()
            >= 2
    })
    .await;
    let order: Vec<String> = harness
        .gateway
        .calls()
        .into_iter()
        .filter(|c| c.action == HISTORY)
        .filter_map(|c| c.task_id)
        .collect();
    assert_eq!(order[0], "udts-z-stuck", "{order:?}");
    assert!(order[1].ends_with("-paused"), "{order:?}");
}

/// The task series, timestamps aside (they say when, not what).
fn task_series(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("udts_task_") && !l.contains("_timestamp_seconds"))
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_series_is_the_same_whichever_way_a_task_was_refreshed() {
    let tasks = || {
        vec![
            done("udts-done"),
            fixed("udts-load", loading_data(420)),
            fixed("udts-sync", syncing_data(4096)),
            fixed("udts-fail", failed_data(1, "Access denied")),
            fixed(
                "udts-gone",
                json!({"Status": "FailedUnrecoverable", "CurRetryCount": 3,
                       "MaxRetryCount": 3, "FailedMessage": "gave up"}),
            ),
            fixed(
                "udts-redis",
                json!({"Status": "Synced", "CurRetryCount": 0, "MaxRetryCount": 3,
                       "Progress": {"RedisOffsetSize": 1048576, "RedisDelayTime": 2}}),
            ),
            fixed(
                "udts-stopped",
                json!({"Status": "Stopped", "CurRetryCount": 0, "MaxRetryCount": 3}),
            ),
        ]
    };
    // Monitoring's numbers come from each gateway's own clock, not from either refresh path.
    // Every series a task can have, finished ones included, is compared.
    let full = |config: &mut udts_exporter::config::Config| {
        discovered(config);
        config.monitor.enabled = false;
        config.metrics.status_series = udts_exporter::config::StatusSeries::All;
        config.metrics.finished_tasks = udts_exporter::config::FinishedTasks::Full;
    };
    let list_first = start_with(tasks(), PRIVATE_KEY, full).await;
    let by_status = start_with(tasks(), PRIVATE_KEY, |config| {
        full(config);
        config.poll.strategy = PollStrategy::Status;
    })
    .await;
    // A few cycles, so list-first has refreshed the quiet tasks from the list.
    wait_for_lists(&list_first.gateway, 0, 4).await;
    let refreshed_by_list = scrape(list_first.exporter).await;
    assert!(
        value(
            &refreshed_by_list,
            "udts_poll_refreshes_total",
            r#"{via="list"}"#
        )
        .unwrap()
            >= 10.0
    );
    let expected = task_series(&scrape(by_status.exporter).await);
    assert!(expected.len() > 50, "{expected:?}");
    assert_eq!(task_series(&refreshed_by_list), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_created_or_removed_at_the_gateway_show_within_an_interval_or_two() {
    let harness = start_with(vec![done("udts-old")], PRIVATE_KEY, |config| {
        discovered(config);
        // Only list-first polling's own listing can find the new task this fast.
        config.discovery.refresh_interval = Duration::from_secs(3600);
    })
    .await;
    harness
        .gateway
        .add_task(fixed("udts-new", loading_data(10)));
    let text = scrape_until(harness.exporter, "the new task", |text| {
        value(text, "udts_task_up", &task("udts-new")) == Some(1.0)
    })
    .await;
    assert_eq!(
        value(&text, "udts_task_progress_rows", &task("udts-new")),
        Some(10.0)
    );
    harness.gateway.remove_task("udts-old");
    scrape_until(harness.exporter, "the removed task to vanish", |text| {
        !text.contains("task_id=\"udts-old\"")
    })
    .await;
}
