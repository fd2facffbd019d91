//! PostgreSQL sources against a real server (Debian's `postgresql`, run as `postgres` on a
//! temporary data directory with `wal_level = logical` and a small `max_slot_wal_keep_size`):
//! the exporter reads it as a plain login role without any grant; a `udts_` slot created with
//! `test_decoding` and moved with `pg_replication_slot_advance` plays UDTS's consumer. Its
//! numbers equal the server's own `pg_wal_lsn_diff`, the WAL counter follows what was written,
//! a slot of no polled task is orphaned, an inactive slot past its bound turns `lost`, and a
//! wrong password takes only that source down with reason `auth`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::postgres::{self, Postgres, MONITOR_PASSWORD};
use common::*;
use serde_json::json;
use udts_exporter::config::{SourceConfig, TlsMode};
use udts_exporter::simulator::{Behaviour, SimTask};

fn source(db: &Postgres, name: &str, password: &str, tasks: &[&str]) -> SourceConfig {
    SourceConfig {
        name: name.into(),
        url: db.url("udts_monitor"),
        password_file: Some(db.password_file(password)),
        password_env: None,
        tls: TlsMode::Disabled,
        ca_file: None,
        tasks: tasks.iter().map(|t| t.to_string()).collect(),
        task_name_regex: None,
        timeout: Some(Duration::from_secs(2)),
        slots: Default::default(),
        slot_name_regex: None,
    }
}

fn slot(name: &str) -> String {
    format!("{{source=\"orders-pg\",slot=\"{name}\"}}")
}

/// The server's own numbers for `slot`: (lag behind confirmed, retained behind restart).
fn server_diffs(db: &Postgres, slot: &str) -> (f64, f64) {
    let row = db.sql(&format!(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), \
         pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) \
         FROM pg_replication_slots WHERE slot_name = '{slot}'"
    ));
    let (lag, retained) = row.split_once('|').unwrap();
    (lag.parse().unwrap(), retained.parse().unwrap())
}

/// Waits until the exporter's numbers for the slot equal the server's (the server read anew
/// each time: the exporter reads on its own interval).
async fn wait_equal(harness: &Harness, db: &Postgres, name: &str) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        let (lag, retained) = server_diffs(db, name);
        let text = scrape(harness.exporter).await;
        let exported = (
            value(&text, "udts_source_replication_slot_lag_bytes", &slot(name)),
            value(
                &text,
                "udts_source_replication_slot_retained_bytes",
                &slot(name),
            ),
        );
        if exported == (Some(lag), Some(retained)) {
            return text;
        }
        last = format!("server {lag}/{retained}, exported {exported:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{name}: {last}");
}

/// The counter once it has stopped moving (no write under way): the server's position then.
async fn settled(harness: &Harness, db: &Postgres) -> (f64, u64) {
    let lsn = |db: &Postgres| {
        db.sql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")
            .parse::<u64>()
            .unwrap()
    };
    let counter = |text: &str| {
        value(
            text,
            "udts_source_wal_written_bytes_total",
            "{source=\"orders-pg\"}",
        )
    };
    let mut previous = None;
    for _ in 0..50 {
        let before = lsn(db);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let now = counter(&scrape(harness.exporter).await);
        if let Some(counted) = now.filter(|_| now == previous && lsn(db) == before) {
            return (counted, before);
        }
        previous = now;
    }
    panic!("the WAL counter never settled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_match_the_server_and_orphans_lost_slots_and_a_wrong_password_are_said() {
    if !postgres::available() {
        return;
    }
    let db = Postgres::start();
    // UDTS's slot for task udts-abc123, a slot of a task nobody polls, and one left inactive.
    for name in ["udts_abc123", "udts_gone_task", "udts_idle"] {
        db.sql(&format!(
            "SELECT pg_create_logical_replication_slot('{name}', 'test_decoding')"
        ));
    }
    db.write(1024 * 1024);
    db.sql("SELECT pg_replication_slot_advance('udts_abc123', pg_current_wal_lsn())");
    db.write(300 * 1024);
    let main = source(&db, "orders-pg", MONITOR_PASSWORD, &["udts-abc123"]);
    let wrong = source(&db, "orders-pg-wrong", "not-the-password", &[]);
    let harness = start_with(
        vec![SimTask::new(
            "udts-abc123",
            Behaviour::Fixed(json!({"Status": "Syncing"})),
        )],
        PRIVATE_KEY,
        |config| config.sources = vec![main, wrong],
    )
    .await;

    // Lag and retention are the server's own pg_wal_lsn_diff, and the task's lag is its slot's.
    let text = wait_equal(&harness, &db, "udts_abc123").await;
    let (lag, _) = server_diffs(&db, "udts_abc123");
    assert!(lag > 200_000.0, "{lag}");
    assert_eq!(
        value(&text, "udts_task_source_lag_bytes", &task("udts-abc123")),
        Some(lag)
    );
    assert_eq!(
        value(
            &text,
            "udts_source_replication_slot_active",
            &slot("udts_abc123")
        ),
        Some(0.0)
    );
    assert!(text.contains(
        "udts_source_replication_slot_info{source=\"orders-pg\",slot=\"udts_abc123\",task_id=\"udts-abc123\",plugin=\"test_decoding\",database=\"postgres\"} 1"
    ));
    // Bounded by max_slot_wal_keep_size: what is left before invalidation is said (the server
    // counts in whole 16 MiB segments, so up to one more than the setting).
    let safe = value(
        &text,
        "udts_source_replication_slot_safe_wal_bytes",
        &slot("udts_abc123"),
    );
    assert!(
        safe.is_some_and(
            |s| s > 0.0 && s <= (postgres::MAX_SLOT_WAL_KEEP + 16 * 1024 * 1024) as f64
        ),
        "{safe:?}"
    );
    assert_eq!(
        value(
            &text,
            "udts_source_replication_slot_status",
            "{source=\"orders-pg\",slot=\"udts_abc123\",status=\"reserved\"}"
        ),
        Some(1.0)
    );
    // The slot of a task nobody polls is orphaned; the polled task's is not.
    assert_eq!(
        value(
            &text,
            "udts_source_replication_slot_orphaned",
            &slot("udts_gone_task")
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "udts_source_replication_slot_orphaned",
            &slot("udts_abc123")
        ),
        Some(0.0)
    );
    // A wrong password: that source down with reason auth, the other untouched.
    let auth = "{reason=\"auth\",source=\"orders-pg-wrong\"}";
    let text = scrape_until(harness.exporter, "the wrong password refused", |text| {
        value(text, "udts_source_errors_total", auth).is_some_and(|n| n >= 1.0)
    })
    .await;
    assert_eq!(
        value(&text, "udts_source_up", "{source=\"orders-pg\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "udts_source_up", "{source=\"orders-pg-wrong\"}"),
        Some(0.0)
    );

    // The WAL counter advances by what the server's position did.
    let (counter0, lsn0) = settled(&harness, &db).await;
    db.write(2 * 1024 * 1024);
    let (counter1, lsn1) = settled(&harness, &db).await;
    let written = (lsn1 - lsn0) as f64;
    assert!(written > 2_000_000.0, "{written}");
    let counted = counter1 - counter0;
    assert!(
        (counted - written).abs() <= written * 0.1,
        "counted {counted}, the server wrote {written}"
    );

    // `check` lists the slots it found, their owners and the orphan with its drop statement.
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[[sources]]\nname = \"orders-pg\"\nurl = \"{}\"\npassword_file = \"{}\"\ntls = \"disabled\"\ntasks = [\"udts-abc123\"]\n",
        db.url("udts_monitor"),
        db.password_file(MONITOR_PASSWORD).display()
    );
    let config = write_config_file(
        &dir,
        &harness.endpoint,
        PUBLIC_KEY,
        &["udts-abc123"],
        &extra,
    );
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_udts-exporter"))
        .arg("check")
        .arg("--config")
        .arg(&config)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let line = |slot: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with("orders-pg") && l.contains(slot))
            .unwrap_or_else(|| panic!("{slot} not in {stdout}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(line("udts_abc123").starts_with("orders-pg udts_abc123 udts-abc123 no"));
    assert!(line("udts_abc123").ends_with("reserved no"));
    assert!(
        line("udts_gone_task").ends_with("yes: SELECT pg_drop_replication_slot('udts_gone_task');")
    );

    // Past max_slot_wal_keep_size, the inactive slots are invalidated at a checkpoint: lost,
    // the alert's expression (status "lost" == 1) true, and the task of one can only be redone.
    for _ in 0..(postgres::MAX_SLOT_WAL_KEEP / (16 * 1024 * 1024) + 2) {
        db.write(16 * 1024);
        db.sql("SELECT pg_switch_wal()");
    }
    db.sql("CHECKPOINT");
    assert_eq!(
        db.sql("SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'udts_idle'"),
        "lost"
    );
    let lost = "{source=\"orders-pg\",slot=\"udts_idle\",status=\"lost\"}";
    let text = scrape_until(harness.exporter, "the idle slot lost", |text| {
        value(text, "udts_source_replication_slot_status", lost) == Some(1.0)
    })
    .await;
    assert_eq!(
        value(
            &text,
            "udts_source_replication_slot_retained_bytes",
            &slot("udts_idle")
        ),
        None,
        "a lost slot retains nothing"
    );
    assert_eq!(
        value(
            &text,
            "udts_source_replication_slot_safe_wal_bytes",
            &slot("udts_idle")
        ),
        None
    );
    let text = scrape_until(harness.exporter, "the task's slot lost", |text| {
        value(
            text,
            "udts_task_source_binlog_retained",
            &task("udts-abc123"),
        ) == Some(0.0)
    })
    .await;
    assert_eq!(
        value(&text, "udts_task_source_lag_bytes", &task("udts-abc123")),
        None
    );

    // A dropped slot loses its series.
    db.sql("SELECT pg_drop_replication_slot('udts_gone_task')");
    scrape_until(harness.exporter, "the dropped slot gone", |text| {
        !text.contains("slot=\"udts_gone_task\"")
    })
    .await;
}

/// TLS against the real server (its certificate from a private CA, for `localhost` only), on a
/// server with `wal_level = replica`: a source whose TLS holds gets as far as the `wal_level`
/// refusal, one whose TLS does not is refused with reason `tls` (`verify_identity` by another
/// host name or another CA), while `verify_ca` takes any host name and `required` any
/// certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_modes_hold_against_the_real_server_and_wal_level_is_refused_with_its_fix() {
    if !postgres::available() {
        return;
    }
    let ca = common::ca::Ca::new();
    let (cert, key, _) = ca.leaf(&["localhost"]);
    let files = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (
        files.path().join("server.crt"),
        files.path().join("server.key"),
    );
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key).unwrap();
    for path in [files.path(), &cert_file, &key_file] {
        let status = std::process::Command::new("chown")
            .arg("postgres:postgres")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }
    private_to_owner(&key_file);
    let db = Postgres::start_with(&format!(
        "-c wal_level=replica -c max_wal_senders=10 -c max_slot_wal_keep_size=-1 -c ssl=on \
         -c ssl_cert_file={} -c ssl_key_file={}",
        cert_file.display(),
        key_file.display()
    ));
    let ca_file = files.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let other_ca = files.path().join("other-ca.pem");
    std::fs::write(&other_ca, common::ca::Ca::new().pem()).unwrap();
    let entry = |name: &str, host: &str, tls: TlsMode, ca: Option<&std::path::Path>| SourceConfig {
        url: format!("postgresql://udts_monitor@{host}:{}/postgres", db.port),
        tls,
        ca_file: ca.map(std::path::Path::to_path_buf),
        ..source(&db, name, MONITOR_PASSWORD, &[])
    };
    let sources = vec![
        entry(
            "pg-verified",
            "localhost",
            TlsMode::VerifyIdentity,
            Some(&ca_file),
        ),
        entry(
            "pg-wrong-name",
            "127.0.0.1",
            TlsMode::VerifyIdentity,
            Some(&ca_file),
        ),
        entry(
            "pg-any-name",
            "127.0.0.1",
            TlsMode::VerifyCa,
            Some(&ca_file),
        ),
        entry(
            "pg-wrong-ca",
            "localhost",
            TlsMode::VerifyIdentity,
            Some(&other_ca),
        ),
        entry("pg-required", "127.0.0.1", TlsMode::Required, None),
    ];
    let harness = start_with(
        vec![SimTask::new(
            "udts-a",
            Behaviour::Fixed(json!({"Status": "Syncing"})),
        )],
        PRIVATE_KEY,
        |config| config.sources = sources,
    )
    .await;
    let errors = |text: &str, source: &str, reason: &str| {
        value(
            text,
            "udts_source_errors_total",
            &format!("{{reason=\"{reason}\",source=\"{source}\"}}"),
        )
        .unwrap_or(0.0)
    };
    let expected = [
        ("pg-verified", "wal_level"),
        ("pg-wrong-name", "tls"),
        ("pg-any-name", "wal_level"),
        ("pg-wrong-ca", "tls"),
        ("pg-required", "wal_level"),
    ];
    let text = scrape_until(harness.exporter, "every source's first refusal", |text| {
        expected
            .iter()
            .all(|(source, reason)| errors(text, source, reason) >= 1.0)
    })
    .await;
    for (source, reason) in expected {
        assert_eq!(
            value(&text, "udts_source_up", &format!("{{source=\"{source}\"}}")),
            Some(0.0)
        );
        for other in ["auth", "unreachable", "tls", "wal_level"] {
            if other != reason {
                assert_eq!(errors(&text, source, other), 0.0, "{source}: {other}");
            }
        }
    }
}
