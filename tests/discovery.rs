//! Discovery and scale: paging, filters, vanishing tasks, list faults, sharding, the rate cap,
//! several accounts, and live reload, against the real exporter and a local gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use udts_exporter::api::Client;
use udts_exporter::config::{AccountConfig, Config, Shard, TaskConfig};
use udts_exporter::metrics::ExporterMetrics;
use udts_exporter::runtime::client_settings;
use udts_exporter::simulator::{Behaviour, SimTask};
use udts_exporter::task::TaskKind;

fn synced(id: &str) -> SimTask {
    SimTask::new(id, Behaviour::Fixed(json!({"Status": "Synced"}))).mode("incremental")
}

fn many(prefix: &str, count: usize, kind: TaskKind) -> Vec<SimTask> {
    (0..count)
        .map(|i| synced(&format!("udts-{prefix}-{i:04}")).kind(kind))
        .collect()
}

fn discovering(config: &mut Config) {
    config.tasks.clear();
    config.discovery.enabled = true;
    config.discovery.refresh_interval = Duration::from_secs(1);
}

fn task_ids(text: &str) -> BTreeSet<String> {
    family(text, "udts_task_info")
        .keys()
        .filter_map(|labels| {
            let start = labels.find("task_id=\"")? + 9;
            let end = labels[start..].find('"')? + start;
            Some(labels[start..end].to_string())
        })
        .collect()
}

fn calls_so_far(gateway: &udts_exporter::simulator::Gateway) -> usize {
    gateway.requests("ListUDTSTask") as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_until_a_short_page_at_every_boundary() {
    const PAGE: usize = 10;
    for count in [0, 1, PAGE - 1, PAGE, PAGE + 1, 3 * PAGE] {
        let shutdown = CancellationToken::new();
        let mut tasks = many("t", count, TaskKind::Transfer);
        tasks.extend(many("i", 3, TaskKind::Integration));
        let (gateway, endpoint) = gateway_with(tasks, &shutdown).await;
        let settings = config_for(&gateway, &endpoint, PRIVATE_KEY)
            .resolve()
            .unwrap();
        let client = Client::new(
            client_settings(&settings, &settings.accounts[0]),
            Arc::new(ExporterMetrics::new()),
            None,
        )
        .unwrap();
        let expected: BTreeSet<_> = (0..count).map(|i| format!("udts-t-{i:04}")).collect();
        let pages = count / PAGE + 1;
        let check = |listed: Vec<udts_exporter::api::model::ListItem>, calls: usize| {
            let ids: BTreeSet<_> = listed.iter().filter_map(|i| i.task_id.clone()).collect();
            assert_eq!(ids, expected, "{count} tasks");
            assert_eq!(listed.len(), count, "no duplicates at {count}");
            assert_eq!(calls_so_far(&gateway), calls, "pages for {count} tasks");
        };
        // One page at a time: exactly the pages, up to the first short one.
        let one_by_one = Client::new(
            client_settings(&settings, &settings.accounts[0]),
            Arc::new(ExporterMetrics::new()),
            None,
        )
        .unwrap();
        let listed = one_by_one
            .list_all_tasks(TaskKind::Transfer, None, PAGE, 1)
            .await
            .unwrap();
        check(listed, pages);
        // Four at once: waves of 1, 2, 4 pages until the wave with the short page; the next
        // listing asks for as many pages as this one took, in one wave.
        let waves = [1, 3, 7, 11, 15].into_iter().find(|w| *w >= pages).unwrap();
        let listed = client
            .list_all_tasks(TaskKind::Transfer, None, PAGE, 4)
            .await
            .unwrap();
        check(listed, pages + waves);
        let listed = client
            .list_all_tasks(TaskKind::Transfer, None, PAGE, 4)
            .await
            .unwrap();
        check(listed, pages + waves + pages);
        shutdown.cancel();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_polls_every_task_of_both_kinds_over_several_pages() {
    let mut tasks = many("t", 230, TaskKind::Transfer);
    tasks.extend(many("i", 120, TaskKind::Integration));
    let harness = start_with(tasks, PRIVATE_KEY, discovering).await;
    let text = scrape(harness.exporter).await;
    assert_eq!(task_ids(&text).len(), 350);
    assert_eq!(
        value(&text, "udts_tasks", r#"{source="discovered"}"#),
        Some(350.0)
    );
    assert_eq!(
        value(&text, "udts_tasks", r#"{source="static"}"#),
        Some(0.0)
    );
    assert_eq!(family(&text, "udts_task_up").len(), 350);
    assert_eq!(
        value(
            &text,
            "udts_task_info",
            r#"{task_id="udts-i-0007",task_type="integration",project_id="",name="i-0007",mode="incremental"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        family(&text, "udts_task_created_timestamp_seconds").len(),
        350
    );
    assert_eq!(
        family(&text, "udts_task_expire_timestamp_seconds").len(),
        350
    );
    assert!(value(&text, "udts_discovery_last_success_timestamp_seconds", "").unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_choose_what_discovery_polls_and_static_entries_win() {
    let mut tasks = vec![
        synced("udts-prod-a"),
        synced("udts-prod-b"),
        synced("udts-test-c"),
        SimTask::new(
            "udts-prod-done",
            Behaviour::Fixed(json!({"Status": "Done"})),
        ),
    ];
    tasks.push(synced("udts-prod-excluded"));
    let harness = start_with(tasks, PRIVATE_KEY, |config| {
        discovering(config);
        config.discovery.name_regex = Some("^prod-".into());
        config.discovery.exclude_ids = vec!["udts-prod-excluded".into()];
        config.discovery.exclude_statuses = vec!["Done".into()];
        config.tasks = vec![TaskConfig {
            id: "udts-prod-a".into(),
            kind: TaskKind::Transfer,
            project_id: Some("org-static".into()),
            name: None,
            account: None,
            labels: Default::default(),
        }];
    })
    .await;
    let text = scrape(harness.exporter).await;
    assert_eq!(
        task_ids(&text),
        ["udts-prod-a", "udts-prod-b"].map(String::from).into()
    );
    assert_eq!(
        value(&text, "udts_tasks", r#"{source="static"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "udts_tasks", r#"{source="discovered"}"#),
        Some(1.0)
    );
    // The static entry keeps its project and takes name and mode from the list.
    assert_eq!(
        value(
            &text,
            "udts_task_info",
            r#"{task_id="udts-prod-a",task_type="transfer",project_id="org-static",name="prod-a",mode="incremental"}"#
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_task_loses_every_series_and_a_list_fault_keeps_the_set() {
    let harness = start_with(
        vec![synced("udts-stays"), synced("udts-goes")],
        PRIVATE_KEY,
        discovering,
    )
    .await;
    let text = scrape(harness.exporter).await;
    assert!(text.contains("udts-goes"));

    harness.gateway.remove_task("udts-goes");
    let text = scrape_until(harness.exporter, "udts-goes to vanish", |text| {
        !text.contains("udts-goes")
    })
    .await;
    assert_eq!(task_ids(&text), ["udts-stays".to_string()].into());

    // The list fails: the known set stays, the failure is counted, success time stands still.
    let before = value(&text, "udts_discovery_last_success_timestamp_seconds", "").unwrap();
    harness
        .gateway
        .set_list_fault(Some(Behaviour::RetCode(150, "Service unavailable".into())));
    harness.gateway.add_task(synced("udts-new"));
    let text = scrape_until(harness.exporter, "a counted list failure", |text| {
        value(
            text,
            "udts_api_request_errors_total",
            r#"{account="",action="ListUDTSTask",reason="transient"}"#,
        )
        .is_some_and(|v| v >= 2.0)
    })
    .await;
    assert_eq!(task_ids(&text), ["udts-stays".to_string()].into());
    assert_eq!(value(&text, "udts_task_up", &task("udts-stays")), Some(1.0));
    assert_eq!(
        value(&text, "udts_discovery_last_success_timestamp_seconds", ""),
        Some(before)
    );

    harness.gateway.set_list_fault(None);
    scrape_until(harness.exporter, "udts-new after recovery", |text| {
        task_ids(text).contains("udts-new")
    })
    .await;
}

#[test]
fn shards_of_one_to_five_cover_every_task_exactly_once() {
    let ids: Vec<String> = (0..2000).map(|i| format!("udts-{i:x}q")).collect();
    for total in 1..=5 {
        let mut sizes = vec![0; total as usize];
        for id in &ids {
            let owners: Vec<u32> = (0..total)
                .filter(|index| {
                    Shard {
                        index: *index,
                        total,
                    }
                    .owns(id)
                })
                .collect();
            assert_eq!(owners.len(), 1, "{id} in {total} shards: {owners:?}");
            sizes[owners[0] as usize] += 1;
        }
        // Roughly even: no shard gets less than half its share.
        let share = ids.len() / total as usize;
        assert!(sizes.iter().all(|s| *s > share / 2), "{total}: {sizes:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sharded_exporters_split_an_account_without_overlap_or_gap() {
    let shutdown = CancellationToken::new();
    let (gateway, endpoint) = gateway_with(many("s", 60, TaskKind::Transfer), &shutdown).await;
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for shard in 0..3 {
        let mut config = config_for(&gateway, &endpoint, PRIVATE_KEY);
        discovering(&mut config);
        config.sharding.shard = shard;
        config.sharding.total_shards = 3;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = udts_exporter::exporter::start(&config, listener, shutdown.clone())
            .await
            .unwrap();
        wait_ready(running.local_addr).await;
        let ids = task_ids(&scrape(running.local_addr).await);
        assert!(!ids.is_empty(), "shard {shard} got nothing");
        total += ids.len();
        seen.extend(ids);
    }
    assert_eq!(total, 60, "no task polled twice");
    assert_eq!(seen.len(), 60, "no task left out");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_cap_holds_at_the_gateway_and_overruns_are_counted() {
    let harness = start_with(many("r", 40, TaskKind::Transfer), PRIVATE_KEY, |config| {
        config.poll.requests_per_second = Some(20.0);
        config.api.concurrency = 32;
    })
    .await;
    // 40 tasks a second at most 20 requests a second: the poller is always waiting on the cap.
    let window = Duration::from_secs(2);
    let before = harness.gateway.requests("GetUDTSTaskStatus");
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let sent = harness.gateway.requests("GetUDTSTaskStatus") - before;
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        sent as f64 <= 20.0 * elapsed + 1.0,
        "{sent} requests in {elapsed:.2}s"
    );
    assert!(
        sent as f64 >= 20.0 * elapsed * 0.6,
        "only {sent} requests in {elapsed:.2}s"
    );
    let text = scrape_until(harness.exporter, "an overrun", |text| {
        value(text, "udts_poll_cycle_overrun_total", "").is_some_and(|v| v >= 1.0)
    })
    .await;
    assert!(value(&text, "udts_poll_cycle_duration_seconds", "").unwrap() > 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_accounts_are_polled_with_their_own_keys_and_labelled() {
    let shutdown = CancellationToken::new();
    let (_prod, prod_endpoint) =
        gateway_with(vec![synced("udts-same"), synced("udts-p")], &shutdown).await;
    let staging = udts_exporter::simulator::Gateway::new("staging-public", "staging-private");
    staging.add_task(SimTask::new(
        "udts-same",
        Behaviour::Fixed(json!({"Status": "Failed", "FailedMessage": "boom"})),
    ));
    let staging_endpoint = staging.start_on_loopback(shutdown.clone()).await.unwrap();

    let mut config = Config::default();
    config.poll.interval = Some(Duration::from_secs(1));
    config.api.timeout = Some(Duration::from_millis(500));
    config.web.listen_address = "127.0.0.1:0".into();
    config.accounts = vec![
        AccountConfig {
            name: "prod".into(),
            endpoint: Some(prod_endpoint),
            public_key: PUBLIC_KEY.into(),
            private_key: Some(PRIVATE_KEY.into()),
            ..AccountConfig::default()
        },
        AccountConfig {
            name: "staging".into(),
            endpoint: Some(staging_endpoint),
            public_key: "staging-public".into(),
            private_key: Some("staging-private".into()),
            ..AccountConfig::default()
        },
    ];
    config.tasks = vec![TaskConfig {
        id: "udts-p".into(),
        kind: TaskKind::Transfer,
        project_id: None,
        name: None,
        account: Some("prod".into()),
        labels: Default::default(),
    }];
    config.discovery.enabled = true;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = udts_exporter::exporter::start(&config, listener, shutdown.clone())
        .await
        .unwrap();
    wait_ready(running.local_addr).await;
    let text = scrape(running.local_addr).await;
    let up = family(&text, "udts_task_up");
    assert_eq!(
        up,
        [
            (r#"{account="prod",task_id="udts-p"}"#.to_string(), 1.0),
            (r#"{account="prod",task_id="udts-same"}"#.to_string(), 1.0),
            (
                r#"{account="staging",task_id="udts-same"}"#.to_string(),
                1.0
            ),
        ]
        .into()
    );
    assert_eq!(
        value(
            &text,
            "udts_task_status",
            r#"{account="staging",task_id="udts-same",status="Failed"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "udts_task_status",
            r#"{account="prod",task_id="udts-same",status="Synced"}"#
        ),
        Some(1.0)
    );

    // API calls are counted per account: throttling at staging shows up under staging only.
    let requests = |text: &str, account: &str| {
        value(
            text,
            "udts_api_requests_total",
            &format!(r#"{{account="{account}",action="GetUDTSTaskStatus"}}"#),
        )
        .unwrap_or(0.0)
    };
    assert!(requests(&text, "prod") >= 2.0, "{text}");
    // The failed staging task came from the list; the next cycle reads its message.
    let text = scrape_until(running.local_addr, "staging's status call", |text| {
        requests(text, "staging") >= 1.0
    })
    .await;
    assert!(requests(&text, "staging") <= staging.requests("GetUDTSTaskStatus") as f64);
    staging.set_behaviour(
        "udts-same",
        Behaviour::RetCode(153, "Request frequency limit".into()),
    );
    let throttled = |account: &str| {
        format!(r#"{{account="{account}",action="GetUDTSTaskStatus",reason="throttled"}}"#)
    };
    let text = scrape_until(
        running.local_addr,
        "throttling counted at staging",
        |text| {
            value(text, "udts_api_request_errors_total", &throttled("staging"))
                .is_some_and(|v| v >= 1.0)
        },
    )
    .await;
    // Every account's error series exist from the start, at 0 where nothing failed.
    assert_eq!(
        value(&text, "udts_api_request_errors_total", &throttled("prod")),
        Some(0.0)
    );
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_and_removes_tasks_keeps_state_and_rejects_a_broken_file() {
    let shutdown = CancellationToken::new();
    let (_gateway, endpoint) = gateway_with(
        vec![synced("udts-a"), synced("udts-b"), synced("udts-c")],
        &shutdown,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let write = |ids: &[&str]| {
        let mut text = format!(
            "[api]\nendpoint = \"{endpoint}\"\npublic_key = \"{PUBLIC_KEY}\"\nprivate_key = \"{PRIVATE_KEY}\"\ntimeout = \"500ms\"\n[poll]\ninterval = \"1s\"\n[web]\nenable_lifecycle = true\n"
        );
        for id in ids {
            text.push_str(&format!("[[tasks]]\nid = \"{id}\"\n"));
        }
        std::fs::write(&path, text).unwrap();
    };
    write(&["udts-a", "udts-b"]);
    let loader_path = path.clone();
    let loader: udts_exporter::exporter::ConfigLoader =
        Arc::new(move || Config::load(Some(&loader_path)));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = udts_exporter::exporter::start_with_loader(loader, listener, shutdown.clone())
        .await
        .unwrap();
    let addr = running.local_addr;
    wait_ready(addr).await;
    // When udts-b entered its status comes from its history, after the first cycle.
    let text = scrape_until(addr, "udts-b's history", |text| {
        value(
            text,
            "udts_task_status_since_timestamp_seconds",
            &task("udts-b"),
        )
        .is_some()
    })
    .await;
    assert_eq!(
        task_ids(&text),
        ["udts-a", "udts-b"].map(String::from).into()
    );
    let b_since = value(
        &text,
        "udts_task_status_since_timestamp_seconds",
        &task("udts-b"),
    )
    .unwrap();

    write(&["udts-b", "udts-c"]);
    let client = http_client();
    let response = client
        .post(format!("http://{addr}/-/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = scrape_until(addr, "udts-c polled after reload", |text| {
        value(text, "udts_task_up", &task("udts-c")) == Some(1.0)
    })
    .await;
    assert_eq!(
        task_ids(&text),
        ["udts-b", "udts-c"].map(String::from).into()
    );
    assert_eq!(
        value(
            &text,
            "udts_task_status_since_timestamp_seconds",
            &task("udts-b")
        ),
        Some(b_since),
        "an unchanged task keeps its state"
    );
    assert_eq!(
        value(&text, "udts_config_last_reload_successful", ""),
        Some(1.0)
    );
    let applied = value(
        &text,
        "udts_config_last_reload_success_timestamp_seconds",
        "",
    )
    .unwrap();

    std::fs::write(&path, "[poll]\ninterval = \"never\"\n").unwrap();
    let response = client
        .post(format!("http://{addr}/-/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let reason = response.text().await.unwrap();
    assert!(reason.contains("poll.interval"), "{reason}");
    let text = scrape_until(addr, "the rejected reload to show", |text| {
        value(text, "udts_config_last_reload_successful", "") == Some(0.0)
    })
    .await;
    assert_eq!(
        task_ids(&text),
        ["udts-b", "udts-c"].map(String::from).into()
    );
    assert_eq!(
        value(
            &text,
            "udts_config_last_reload_success_timestamp_seconds",
            ""
        ),
        Some(applied)
    );
    shutdown.cancel();
}

/// Team labels: static entries carry their own, discovered tasks get the first matching rule's,
/// and a static entry's labels win over the rules. They appear on `udts_task_info` only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_labels_go_on_task_info_from_entries_and_rules() {
    let harness = start_with(
        vec![
            synced("udts-pay-1"),
            synced("udts-pay-2"),
            synced("udts-search"),
            synced("udts-other"),
        ],
        PRIVATE_KEY,
        |config| {
            config.tasks = vec![TaskConfig {
                id: "udts-pay-2".into(),
                kind: TaskKind::Transfer,
                project_id: None,
                name: None,
                account: None,
                labels: [("team".to_string(), "ledger".to_string())].into(),
            }];
            config.discovery.enabled = true;
            config.discovery.kinds = vec![TaskKind::Transfer];
            config.discovery.labels = vec![
                udts_exporter::config::LabelRuleConfig {
                    name_regex: "^pay-".into(),
                    labels: [
                        ("team".to_string(), "payments".to_string()),
                        ("env".to_string(), "prod".to_string()),
                    ]
                    .into(),
                },
                udts_exporter::config::LabelRuleConfig {
                    name_regex: "^(pay|search)".into(),
                    labels: [("team".to_string(), "search".to_string())].into(),
                },
            ];
        },
    )
    .await;
    let text = scrape(harness.exporter).await;
    let info = family(&text, "udts_task_info");
    let labels_of = |id: &str| {
        info.keys()
            .find(|labels| labels.contains(&format!("task_id=\"{id}\"")))
            .unwrap()
            .clone()
    };
    assert!(
        labels_of("udts-pay-1").ends_with(",env=\"prod\",team=\"payments\"}"),
        "{info:?}"
    );
    assert!(
        labels_of("udts-pay-2").ends_with(",mode=\"incremental\",team=\"ledger\"}"),
        "{info:?}"
    );
    assert!(
        labels_of("udts-search").ends_with(",team=\"search\"}"),
        "{info:?}"
    );
    assert!(
        labels_of("udts-other").ends_with(",mode=\"incremental\"}"),
        "{info:?}"
    );
    // Only on the info metric.
    assert!(!text
        .lines()
        .any(|l| l.contains("team=") && !l.starts_with("udts_task_info")));
}

/// The deadlines UDTS enforces, from what discovery and the history say: a task paused 6 days
/// 2 h ago (first seen stopped: its history tells when) is resumable for 22 h more, and a
/// task whose billing expires in 3 days is reclaimed 2 days after that; both say so in the
/// JSON, on the page, and in their series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resume_limit_and_billing_expiry_have_their_deadlines() {
    const DAY: f64 = 86_400.0;
    let paused_for = 6.0 * DAY + 2.0 * 3600.0;
    let harness = start_with(
        vec![
            SimTask::new(
                "udts-paused",
                Behaviour::Fixed(json!({"Status": "Stopped"})),
            )
            .mode("incremental")
            .started_ago(paused_for),
            synced("udts-expiring").expiring_in_days(3.0),
            synced("udts-far"),
        ],
        PRIVATE_KEY,
        discovering,
    )
    .await;
    let text = scrape_until(harness.exporter, "the resume deadline", |text| {
        value(
            text,
            "udts_task_resume_deadline_timestamp_seconds",
            &task("udts-paused"),
        )
        .is_some()
    })
    .await;
    let now = udts_exporter::time::unix_now();
    let deadline = value(
        &text,
        "udts_task_resume_deadline_timestamp_seconds",
        &task("udts-paused"),
    )
    .unwrap();
    // 7 days after the pause the history reports (whole seconds), whenever the exporter started.
    let expected = now - paused_for + 7.0 * DAY;
    assert!(
        (deadline - expected).abs() < 5.0,
        "{deadline} vs {expected}"
    );
    for id in ["udts-expiring", "udts-far"] {
        assert_eq!(
            value(
                &text,
                "udts_task_resume_deadline_timestamp_seconds",
                &task(id)
            ),
            None,
            "{id} is not paused"
        );
        let expires = value(&text, "udts_task_expire_timestamp_seconds", &task(id)).unwrap();
        let reclaim = value(&text, "udts_task_reclaim_timestamp_seconds", &task(id)).unwrap();
        assert_eq!(reclaim - expires, 2.0 * DAY, "{id}");
    }
    let json: serde_json::Value = tasks_json(harness.exporter).await;
    let tasks = json["tasks"].as_array().unwrap();
    let deadlines = |id: &str| {
        tasks.iter().find(|t| t["id"] == id).unwrap()["deadlines"]
            .as_array()
            .unwrap()
            .clone()
    };
    let paused = deadlines("udts-paused");
    assert_eq!(paused[0]["kind"], "resume");
    assert_eq!(
        paused[0]["words"],
        "paused 6 days 2 h: UDTS can resume it for 22 h more; resume or reset it before then"
    );
    let expiring = deadlines("udts-expiring");
    assert_eq!(expiring[0]["kind"], "expire");
    assert!(expiring[0]["words"]
        .as_str()
        .unwrap()
        .starts_with("billing expires in 3 days"));
    assert_eq!(expiring[1]["kind"], "reclaim");
    // Far off: nothing to do, so not among the deadlines (its series has it).
    assert!(deadlines("udts-far").is_empty());
    // The page puts the two above the running task, with their words.
    let page = http_get(format!("http://{}/", harness.exporter))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = |id: &str| page.find(&format!("data-key=\"/{id}\"")).unwrap();
    assert!(at("udts-paused") < at("udts-far") && at("udts-expiring") < at("udts-far"));
    assert!(page.contains("UDTS can resume it for 22 h more"));
}
