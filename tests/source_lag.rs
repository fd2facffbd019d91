//! Lag against a real MariaDB (Debian's `mariadb-server`, started on a temporary data
//! directory): the exporter reads the source as a user holding only `BINLOG MONITOR`, and its
//! numbers match what the server itself answers (`SHOW BINARY LOGS`, `gtid_binlog_pos`) while
//! the test writes, rotates and purges as root. Faults (wrong password, missing privilege,
//! binlog off, the server killed mid-run) take only the source down, with a reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::mariadb::{self, MariaDb, MONITOR_PASSWORD};
use common::*;
use serde_json::json;
use udts_exporter::config::{Config, SourceConfig, TlsMode};
use udts_exporter::simulator::{Behaviour, SimTask};
use udts_exporter::source::split_binlog_name;
use udts_exporter::time::unix_now;

fn syncing(file: &str, position: u64, gtid: &str) -> Behaviour {
    Behaviour::Fixed(json!({
        "Status": "Syncing",
        "Sync": {"BinlogName": file, "BinlogPos": position, "BinlogGTID": gtid},
    }))
}

fn source(db: &MariaDb, user: &str, password: &str, tasks: &[&str]) -> SourceConfig {
    SourceConfig {
        name: "orders-primary".into(),
        url: db.url(user),
        password_file: Some(db.password_file(password)),
        password_env: None,
        tls: TlsMode::Preferred,
        ca_file: None,
        tasks: tasks.iter().map(|t| t.to_string()).collect(),
        task_name_regex: None,
        timeout: Some(Duration::from_secs(2)),
        slots: Default::default(),
        slot_name_regex: None,
    }
}

fn index(file: &str) -> u64 {
    split_binlog_name(file).unwrap().1
}

/// The sequence number of a single-domain MariaDB GTID position.
fn seq(gtid: &str) -> u64 {
    gtid.rsplit('-').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_matches_what_the_server_answers_as_it_writes_rotates_and_purges() {
    if !mariadb::available() {
        return;
    }
    let db = MariaDb::start(true);
    db.write(3);
    let (file0, pos0) = db.head();
    let gtid0 = db.gtid();
    let tasks = vec![
        SimTask::new("udts-behind", syncing(&file0, pos0, &gtid0)),
        SimTask::new("udts-head", syncing(&file0, pos0, &gtid0)),
        SimTask::new("udts-failover", syncing("other-bin.000003", 4, "")),
    ];
    let harness = start_with(tasks, PRIVATE_KEY, |config: &mut Config| {
        config.sources = vec![source(
            &db,
            "udts_monitor",
            MONITOR_PASSWORD,
            &["udts-behind", "udts-head", "udts-failover"],
        )];
    })
    .await;
    let addr = harness.exporter;
    // Both tasks at the head: no lag, and the head sampled there for a few rounds.
    let text = scrape_until(addr, "the source read at the head", |text| {
        value(text, "udts_source_up", "{source=\"orders-primary\"}") == Some(1.0)
            && value(text, "udts_task_source_lag_seconds", &task("udts-behind")) == Some(0.0)
    })
    .await;
    assert_eq!(
        value(&text, "udts_task_source_lag_bytes", &task("udts-head")),
        Some(0.0)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Seven transactions, a rotation between them; one task stays, the other follows.
    let written_at = unix_now();
    db.write(5);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    db.sql("FLUSH BINARY LOGS");
    db.write(2);
    let (head_file, head_pos) = db.head();
    let head_gtid = db.gtid();
    harness
        .gateway
        .set_behaviour("udts-head", syncing(&head_file, head_pos, &head_gtid));

    // What the server says the task has not read: the rest of its file, every later file, and
    // the head file up to the head.
    let logs = db.binary_logs();
    let after: u64 = logs
        .iter()
        .filter(|(name, _)| index(name) >= index(&file0) && *name != head_file)
        .map(|(_, size)| size)
        .sum();
    let expected_bytes = (after + head_pos - pos0) as f64;
    let behind = task("udts-behind");
    let text = scrape_until(addr, "the lag of the new writes", |text| {
        value(text, "udts_task_source_lag_bytes", &behind) == Some(expected_bytes)
            && value(text, "udts_task_source_lag_bytes", &task("udts-head")) == Some(0.0)
    })
    .await;
    let read_at = unix_now();
    assert_eq!(
        value(&text, "udts_task_source_lag_files", &behind),
        Some((index(&head_file) - index(&file0)) as f64)
    );
    assert_eq!(
        value(&text, "udts_task_source_lag_transactions", &behind),
        Some((seq(&head_gtid) - seq(&gtid0)) as f64)
    );
    assert_eq!(seq(&head_gtid) - seq(&gtid0), 7, "one GTID per insert");
    // The first unread event was written at `written_at`. What the exporter samples: the
    // event's timestamp in whole seconds (up to 1 s early), a source read up to a poll interval
    // old, a render up to 0.5 s after it, and the scrape loop's 100 ms step.
    let seconds = value(&text, "udts_task_source_lag_seconds", &behind).unwrap();
    let truth = read_at - written_at;
    let margin = 1.0 + 1.0 + 0.5 + 0.1;
    assert!(
        (seconds - truth).abs() <= margin,
        "lag {seconds:.2} s, truth about {truth:.2} s, margin {margin} s"
    );
    assert_eq!(
        value(&text, "udts_task_source_lag_seconds", &task("udts-head")),
        Some(0.0)
    );
    assert_eq!(
        value(&text, "udts_task_source_binlog_retained", &behind),
        Some(1.0)
    );
    // Per source: the head, the oldest file, what is retained, and how much was written.
    let src = "{source=\"orders-primary\"}";
    assert_eq!(
        value(&text, "udts_source_binlog_file_index", src),
        Some(index(&head_file) as f64)
    );
    assert_eq!(
        value(&text, "udts_source_binlog_position", src),
        Some(head_pos as f64)
    );
    assert_eq!(
        value(&text, "udts_source_binlog_retained_bytes", src),
        Some(logs.iter().map(|(_, s)| s).sum::<u64>() as f64)
    );
    assert_eq!(
        value(&text, "udts_source_binlog_written_bytes_total", src),
        Some(expected_bytes),
        "the head advanced exactly what the task lags"
    );
    // The failed-over task has no numbers, and says why.
    assert_eq!(
        value(&text, "udts_task_source_lag_bytes", &task("udts-failover")),
        None
    );
    assert_eq!(
        value(
            &text,
            "udts_source_tasks_without_lag",
            "{source=\"orders-primary\",reason=\"foreign_binlog_file\"}"
        ),
        Some(1.0)
    );
    assert!(text.contains("source=\"orders-primary\""));

    // Purged: the task can no longer resume from its position.
    db.sql(&format!("PURGE BINARY LOGS TO '{head_file}'"));
    let text = scrape_until(addr, "the purge", |text| {
        value(text, "udts_task_source_binlog_retained", &behind) == Some(0.0)
    })
    .await;
    assert_eq!(value(&text, "udts_task_source_lag_bytes", &behind), None);
    assert_eq!(
        value(
            &text,
            "udts_task_source_binlog_retained",
            &task("udts-head")
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "udts_source_binlog_oldest_file_index", src),
        Some(index(&head_file) as f64)
    );

    // The server killed mid-run: the source is down for a reason, the tasks stay fresh.
    drop(db);
    let text = scrape_until(addr, "the source down", |text| {
        value(text, "udts_source_up", src) == Some(0.0)
    })
    .await;
    let unreachable = value(
        &text,
        "udts_source_errors_total",
        "{reason=\"unreachable\",source=\"orders-primary\"}",
    );
    assert!(
        unreachable.is_some_and(|n| n >= 1.0),
        "{:?}",
        family(&text, "udts_source_errors_total")
    );
    let last = value(&text, "udts_task_last_success_timestamp_seconds", &behind).unwrap();
    assert!(unix_now() - last < 3.0, "the UDTS poll goes on");
    assert_eq!(value(&text, "udts_task_up", &behind), Some(1.0));
}

/// The config of one task `udts-a` on the gateway at `endpoint`, polled every second.
fn one_task_config(endpoint: &str) -> String {
    format!(
        "[api]\nendpoint = \"{endpoint}\"\npublic_key = \"{PUBLIC_KEY}\"\nprivate_key = \"{PRIVATE_KEY}\"\ntimeout = \"1s\"\n\
         [poll]\ninterval = \"1s\"\n[[tasks]]\nid = \"udts-a\"\n"
    )
}

/// `[[sources]]` for `orders-primary` on `db` as `user`, with `udts-a` on it.
fn orders_source(db: &MariaDb, user: &str, password_file: &std::path::Path) -> String {
    format!(
        "[[sources]]\nname = \"orders-primary\"\nurl = \"{}\"\npassword_file = \"{}\"\ntasks = [\"udts-a\"]\n",
        db.url(user),
        password_file.display()
    )
}

/// Starts the real binary against `db` with `user`/`password`; returns its log once the source
/// is down with `reason`.
async fn refused(db: &MariaDb, user: &str, password: &str, reason: &str) -> (String, String) {
    refused_with(db, user, password, reason, "").await
}

/// [`refused`], with `extra` keys in the `[[sources]]` entry.
async fn refused_with(
    db: &MariaDb,
    user: &str,
    password: &str,
    reason: &str,
    extra: &str,
) -> (String, String) {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (_gateway, endpoint) = gateway_with(
        vec![SimTask::new("udts-a", syncing("mysql-bin.000001", 4, ""))],
        &shutdown,
    )
    .await;
    let password_file = db.password_file(password);
    let config = format!(
        "{}{}{extra}",
        one_task_config(&endpoint),
        orders_source(db, user, &password_file)
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let log = dir.path().join("stderr.log");
    let exporter = spawn_exporter(
        [std::ffi::OsStr::new("--config"), path.as_os_str()],
        std::fs::File::create(&log).unwrap().into(),
    )
    .await;
    let labels = format!("{{reason=\"{reason}\",source=\"orders-primary\"}}");
    let text = scrape_until(exporter.addr, reason, |text| {
        value(text, "udts_source_errors_total", &labels).is_some_and(|n| n >= 1.0)
            && value(text, "udts_task_up", &task("udts-a")) == Some(1.0)
    })
    .await;
    assert_eq!(
        value(&text, "udts_source_up", "{source=\"orders-primary\"}"),
        Some(0.0)
    );
    drop(exporter);
    shutdown.cancel();
    (std::fs::read_to_string(log).unwrap(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_or_a_missing_privilege_is_named_and_never_leaks() {
    if !mariadb::available() {
        return;
    }
    let db = MariaDb::start(true);
    let wrong = "not-the-password-71b";
    let (log, metrics) = refused(&db, "udts_monitor", wrong, "auth").await;
    assert!(
        log.contains("orders-primary") && log.contains("password_file"),
        "{log}"
    );
    assert_eq!(
        log.matches("cannot read the source").count(),
        1,
        "logged once: {log}"
    );
    for text in [&log, &metrics] {
        assert!(!text.contains(wrong) && !text.contains(MONITOR_PASSWORD));
    }

    let (log, _) = refused(&db, "udts_nobody", MONITOR_PASSWORD, "privilege").await;
    assert!(
        log.contains("BINLOG MONITOR"),
        "the privilege is named: {log}"
    );
    assert!(!log.contains(MONITOR_PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_required_against_a_server_without_tls_is_refused_by_name() {
    if !mariadb::available() {
        return;
    }
    // Debian's MariaDB 10.11 has no certificate until one is configured: "required" must not
    // fall back to plain text, "preferred" (the other tests) does.
    let db = MariaDb::start(true);
    let (log, _) = refused_with(
        &db,
        "udts_monitor",
        MONITOR_PASSWORD,
        "tls",
        "tls = \"required\"\n",
    )
    .await;
    assert!(log.contains("TLS"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_adds_and_removes_sources() {
    if !mariadb::available() {
        return;
    }
    let db = MariaDb::start(true);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (_gateway, endpoint) = gateway_with(
        vec![SimTask::new("udts-a", syncing("mysql-bin.000001", 4, ""))],
        &shutdown,
    )
    .await;
    let password_file = db.password_file(MONITOR_PASSWORD);
    let base = one_task_config(&endpoint);
    let with_source = format!(
        "{base}{}",
        orders_source(&db, "udts_monitor", &password_file)
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, &base).unwrap();
    let exporter = spawn_exporter(
        [std::ffi::OsStr::new("--config"), path.as_os_str()],
        std::process::Stdio::null(),
    )
    .await;
    let up = |text: &str| value(text, "udts_source_up", "{source=\"orders-primary\"}");
    let text = scrape(exporter.addr).await;
    assert_eq!(up(&text), None);

    std::fs::write(&path, &with_source).unwrap();
    exporter.signal("HUP");
    let text = scrape_until(exporter.addr, "the source added", |text| {
        up(text) == Some(1.0)
    })
    .await;
    assert!(text.contains("source=\"orders-primary\""));

    std::fs::write(&path, &base).unwrap();
    exporter.signal("HUP");
    scrape_until(exporter.addr, "the source removed", |text| {
        up(text).is_none() && family(text, "udts_task_source_lag_bytes").is_empty()
    })
    .await;
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_with_the_binlog_off_says_so() {
    if !mariadb::available() {
        return;
    }
    let db = MariaDb::start(false);
    let (log, _) = refused(&db, "udts_monitor", MONITOR_PASSWORD, "binlog_disabled").await;
    assert!(log.contains("log_bin"), "the fix is named: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_shows_each_source_and_each_tasks_lag() {
    if !mariadb::available() {
        return;
    }
    let db = MariaDb::start(true);
    let (file, position) = db.head();
    let gtid = db.gtid();
    db.write(4);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (_gateway, endpoint) = gateway_with(
        vec![SimTask::new("udts-a", syncing(&file, position, &gtid))],
        &shutdown,
    )
    .await;
    let password_file = db.password_file(MONITOR_PASSWORD);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[api]\nendpoint = \"{endpoint}\"\npublic_key = \"{PUBLIC_KEY}\"\nprivate_key = \"{PRIVATE_KEY}\"\n\
             [[tasks]]\nid = \"udts-a\"\n\
             [[sources]]\nname = \"orders-primary\"\nurl = \"{}\"\npassword_file = \"{}\"\ntasks = [\"udts-a\"]\n\
             [[sources]]\nname = \"gone\"\nurl = \"mysql://udts_monitor@127.0.0.1:9\"\n",
            db.url("udts_monitor"),
            password_file.display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_udts-exporter"))
            .args(args)
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap()
    };
    let output = run(&["check"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "a source is down: {stdout}");
    let row = stdout.lines().find(|l| l.starts_with("udts-a")).unwrap();
    assert!(
        row.contains("4 transactions") && row.contains("behind orders-primary"),
        "{stdout}"
    );
    let source = stdout
        .lines()
        .find(|l| l.starts_with("orders-primary"))
        .unwrap();
    assert!(source.contains(" up "), "{stdout}");
    let gone = stdout.lines().find(|l| l.starts_with("gone")).unwrap();
    assert!(
        gone.contains("down") && gone.contains("unreachable"),
        "{stdout}"
    );

    let output = run(&["check", "--output", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let lag = &report["tasks"][0]["source_lag"];
    assert_eq!(lag["source"], "orders-primary");
    assert_eq!(lag["transactions"], 4);
    assert_eq!(lag["binlog_retained"], true);
    let (head_file, head_pos) = db.head();
    let logs = db.binary_logs();
    assert_eq!(logs.len(), 1);
    assert_eq!(lag["bytes"], head_pos - position);
    assert_eq!(report["sources"][0]["head_file_index"], index(&head_file));
    assert_eq!(report["sources"][1]["up"], false);
    assert!(!String::from_utf8_lossy(&output.stdout).contains(MONITOR_PASSWORD));
    shutdown.cancel();
}
