//! Credentials the way UCloud users hold them, end to end against the simulated gateway (which
//! issues temporary keys through `AssumeRole` and checks their `SecurityToken` and expiry, 174
//! otherwise) and a simulated metadata server (v2 and v1):
//! - only UCloud's environment, or only a ucloud-cli profile, starts the real binary with no key
//!   in its config, the source's base URL and project applied;
//! - an assumed role and an instance role keep every task up across several short lifetimes,
//!   through an outage of the metadata server shorter than the keys' remaining life, and come
//!   back after one past expiry; a revoked session (174) is refreshed at once;
//! - no secret (private key, temporary secret, token) appears in `/metrics`, `/api/v1/tasks`
//!   or the log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use udts_exporter::config::credentials::AssumeRoleConfig;
use udts_exporter::config::Config;
use udts_exporter::simulator::{Behaviour, MetadataServer, SimTask};

fn synced(id: &str) -> SimTask {
    SimTask::new(
        id,
        Behaviour::Fixed(json!({"Status": "Synced", "CurRetryCount": 0, "MaxRetryCount": 3})),
    )
}

const LIFETIME: Duration = Duration::from_secs(6);

/// The task's `udts_task_up`, and the account's credential series, from one scrape.
async fn up(addr: std::net::SocketAddr) -> (Option<f64>, String) {
    let text = scrape(addr).await;
    (value(&text, "udts_task_up", &task("udts-a")), text)
}

/// Scrapes every 200 ms for `span`, failing on the first one where the task is not up.
async fn up_throughout(addr: std::net::SocketAddr, span: Duration, what: &str) {
    let until = Instant::now() + span;
    while Instant::now() < until {
        let (up, text) = up(addr).await;
        assert_eq!(up, Some(1.0), "{what}: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn no_secret_in(text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "a secret leaked: {secret}");
    }
    // The simulator's temporary secrets and tokens all start so.
    assert!(!text.contains("tmp-secret-") && !text.contains("tmp-token-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assumed_role_keeps_tasks_up_across_lifetimes_and_a_revoked_session() {
    let harness =
        start_unready_with_gateway(vec![synced("udts-a")], |gateway, config: &mut Config| {
            gateway.temporary_keys().set_lifetime(LIFETIME);
            config.api.assume_role = Some(AssumeRoleConfig {
                role_urn: "ucs:iam::200000001:role/udts-monitor".into(),
                session_name: None,
                duration: None,
                policy: None,
            });
        })
        .await;
    let keys = harness.gateway.temporary_keys();
    wait_ready(harness.exporter).await;
    // Several lifetimes: refreshed by two thirds of each, never a scrape with the task down.
    up_throughout(harness.exporter, LIFETIME * 3, "across lifetimes").await;
    let fetched = keys.fetches();
    assert!(fetched >= 4, "{fetched} fetches in three lifetimes");
    let text = scrape(harness.exporter).await;
    let expiry = value(
        &text,
        "udts_api_credentials_expiry_timestamp_seconds",
        "{account=\"\"}",
    )
    .unwrap();
    assert!(expiry > udts_exporter::time::unix_now(), "{expiry}");
    let ok = value(
        &text,
        "udts_api_credential_refreshes_total",
        "{account=\"\",result=\"ok\",source=\"assume_role\"}",
    )
    .unwrap();
    assert!(ok >= 4.0, "{ok}");
    assert_eq!(
        value(
            &text,
            "udts_api_credential_refresh_failing",
            "{account=\"\"}"
        ),
        Some(0.0)
    );
    // Revoked mid-life: the first 174 fetches new keys at once, before the next refresh is due.
    let before = keys.fetches();
    keys.revoke_all();
    let revoked = Instant::now();
    while keys.fetches() == before {
        assert!(
            revoked.elapsed() < LIFETIME / 2,
            "no refresh after RetCode 174"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The rejected call was sent again with the new keys: no scrape sees the task down, and
    // no call counts as rejected (UDTSApiCredentialsRejected stays quiet).
    up_throughout(
        harness.exporter,
        Duration::from_secs(3),
        "after the revocation",
    )
    .await;
    let text = scrape(harness.exporter).await;
    let rejected: f64 = text
        .lines()
        .filter(|l| l.starts_with("udts_api_request_errors_total{"))
        .filter(|l| l.contains("reason=\"credentials\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(rejected, 0.0, "{text}");
    let tasks = http_get(format!("http://{}/api/v1/tasks", harness.exporter))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    no_secret_in(&format!("{text}{tasks}"), &[PRIVATE_KEY]);
}

/// An instance role from the metadata server, `lifetime` long, `v2` served or not.
async fn instance_role(v2: bool, lifetime: Duration) -> (Harness, MetadataServer) {
    let shutdown = CancellationToken::new();
    let keys_holder: Arc<std::sync::Mutex<Option<MetadataServer>>> = Arc::default();
    let holder = Arc::clone(&keys_holder);
    let harness = start_unready_with_gateway(vec![synced("udts-a")], move |gateway, config| {
        let keys = gateway.temporary_keys();
        keys.set_lifetime(lifetime);
        let server = MetadataServer::new(keys, "udts-monitor", "cn-sim1");
        server.set_v2(v2);
        let url = futures_block(server.clone().start_on_loopback(shutdown.clone())).unwrap();
        *holder.lock().unwrap() = Some(server);
        config.api.public_key = String::new();
        config.api.private_key = None;
        config.api.instance_role = Some("udts-monitor".into());
        config.api.metadata_endpoint = Some(url);
    })
    .await;
    wait_ready(harness.exporter).await;
    let server = keys_holder.lock().unwrap().take().unwrap();
    (harness, server)
}

/// Runs a future to completion from a synchronous closure on the multi-threaded runtime.
fn futures_block<F: std::future::Future>(future: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_role_rides_out_a_metadata_outage_and_recovers_after_expiry() {
    let lifetime = Duration::from_secs(9);
    let (harness, metadata) = instance_role(true, lifetime).await;
    let addr = harness.exporter;
    // Just after a fetch (refreshed at 6 s of 9), the server goes away for 4 s: the keys last
    // until 9 s, the refresh retries meanwhile, and no scrape notices.
    let fetches = harness.gateway.temporary_keys();
    let seen = fetches.fetches();
    while fetches.fetches() == seen {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    metadata.set_down(true);
    up_throughout(
        addr,
        Duration::from_secs(4),
        "an outage shorter than the keys' life",
    )
    .await;
    metadata.set_down(false);
    up_throughout(addr, lifetime, "after the outage").await;

    // An outage past expiry: the task goes down with the reason, /metrics stays served.
    metadata.set_down(true);
    let down = scrape_until(addr, "the task down after its keys expired", |text| {
        value(text, "udts_task_up", &task("udts-a")) == Some(0.0)
    })
    .await;
    assert_eq!(
        value(
            &down,
            "udts_api_credential_refresh_failing",
            "{account=\"\"}"
        ),
        Some(1.0)
    );
    let tasks = http_get(format!("http://{addr}/api/v1/tasks/udts-a"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(tasks.contains("no usable API credentials"), "{tasks}");
    // Back: up again within the retry's bound after expiry (5 s) and a poll interval.
    metadata.set_down(false);
    let back = Instant::now();
    scrape_until(addr, "the task up again after the outage", |text| {
        value(text, "udts_task_up", &task("udts-a")) == Some(1.0)
    })
    .await;
    assert!(
        back.elapsed() <= Duration::from_secs(5 + 1 + 2),
        "{:?}",
        back.elapsed()
    );
    no_secret_in(&format!("{down}{tasks}"), &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_host_without_v2_serves_its_role_through_v1() {
    let (harness, _metadata) = instance_role(false, Duration::from_secs(3600)).await;
    let (up, text) = up(harness.exporter).await;
    assert_eq!(up, Some(1.0), "{text}");
    assert!(
        value(
            &text,
            "udts_api_credentials_expiry_timestamp_seconds",
            "{account=\"\"}"
        )
        .is_some(),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_or_expired_metadata_answer_is_never_used() {
    let (harness, metadata) = instance_role(true, Duration::from_secs(6)).await;
    for body in [
        r#"{"RetCode": 0, "Data": {"AccessKeyId": "AK"}}"#.to_string(),
        r#"{"RetCode": 0, "Data": {"AccessKeyId": "AK", "AccessKeySecret": "S", "SecurityToken": "T", "Expiration": "2001-01-01T00:00:00Z"}}"#.to_string(),
        "x".repeat(2 * 1024 * 1024),
    ] {
        metadata.set_v2_body(Some(body));
        let failures = |text: &str| {
            value(
                text,
                "udts_api_credential_refreshes_total",
                "{account=\"\",result=\"error\",source=\"instance_role\"}",
            )
            .unwrap_or(0.0)
        };
        let before = failures(&scrape(harness.exporter).await);
        scrape_until(harness.exporter, "a refused answer counted", |text| {
            failures(text) > before
        })
        .await;
    }
}

/// The real binary with `env` set, a config of `[[tasks]]` only (no key, no endpoint), and its
/// log in a file: the task's info and up series once ready, and the log.
async fn binary_with(env: &[String], dir: &std::path::Path) -> (String, String) {
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        "[poll]\ninterval = \"1s\"\n[[tasks]]\nid = \"udts-a\"\n",
    )
    .unwrap();
    let log = dir.join("exporter.log");
    // Nothing of the machine's own UCloud environment leaks in; the test's variables follow.
    let mut wrapper: Vec<&str> = vec!["env"];
    for variable in [
        "UCLOUD_PUBLIC_KEY",
        "UCLOUD_PRIVATE_KEY",
        "UCLOUD_PROFILE",
        "UCLOUD_API_BASE_URL",
        "UCLOUD_PROJECT_ID",
        "UCLOUD_REGION",
        "UCLOUD_SHARED_CREDENTIAL_FILE",
        "UCLOUD_SHARED_CONFIG_FILE",
    ] {
        wrapper.extend(["-u", variable]);
    }
    wrapper.extend(env.iter().map(String::as_str));
    let exporter = spawn_exporter_via(
        &wrapper,
        ["--config".as_ref(), config.as_os_str()],
        std::process::Stdio::from(std::fs::File::create(&log).unwrap()),
    )
    .await;
    wait_ready(exporter.addr).await;
    let text = scrape_until(exporter.addr, "the task up", |text| {
        value(text, "udts_task_up", &task("udts-a")) == Some(1.0)
    })
    .await;
    drop(exporter);
    (text, std::fs::read_to_string(&log).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_uclouds_environment_is_enough() {
    let shutdown = CancellationToken::new();
    let (_gateway, endpoint) = gateway_with(vec![synced("udts-a")], &shutdown).await;
    let home = tempfile::tempdir().unwrap();
    let (text, log) = binary_with(
        &[
            format!("HOME={}", home.path().display()),
            format!("UCLOUD_PUBLIC_KEY={PUBLIC_KEY}"),
            format!("UCLOUD_PRIVATE_KEY={PRIVATE_KEY}"),
            format!("UCLOUD_API_BASE_URL={endpoint}"),
            "UCLOUD_PROJECT_ID=org-from-env".into(),
        ],
        home.path(),
    )
    .await;
    assert!(text.contains("project_id=\"org-from-env\""), "{text}");
    assert!(log.contains("credentials=environment"), "{log}");
    no_secret_in(&format!("{text}{log}"), &[PRIVATE_KEY]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_active_ucloud_cli_profile_is_enough() {
    let shutdown = CancellationToken::new();
    let (_gateway, endpoint) = gateway_with(vec![synced("udts-a")], &shutdown).await;
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".ucloud");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        json!([
            {"profile": "default", "active": false, "base_url": "https://api.ucloud.cn"},
            {"profile": "prod", "active": true, "base_url": endpoint, "project_id": "org-prod",
             "region": "cn-bj2"}
        ])
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("credential.json"),
        json!([
            {"profile": "default", "public_key": "someone-else", "private_key": "not-this-one"},
            {"profile": "prod", "public_key": PUBLIC_KEY, "private_key": PRIVATE_KEY}
        ])
        .to_string(),
    )
    .unwrap();
    private_to_owner(&dir.join("credential.json"));
    let (text, log) = binary_with(&[format!("HOME={}", home.path().display())], home.path()).await;
    assert!(text.contains("project_id=\"org-prod\""), "{text}");
    assert!(log.contains("credentials=profile prod"), "{log}");
    no_secret_in(&format!("{text}{log}"), &[PRIVATE_KEY]);
}

/// ucloud-cli's files in a directory, credential.json private to its owner.
fn cli_files(credentials: serde_json::Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("credential.json"), credentials.to_string()).unwrap();
    private_to_owner(&dir.path().join("credential.json"));
    std::fs::write(dir.path().join("config.json"), "[]").unwrap();
    dir
}

fn refused(adjust: impl FnOnce(&mut Config)) -> String {
    let mut config = Config::default();
    config.tasks = vec![udts_exporter::config::TaskConfig {
        id: "udts-a".into(),
        kind: udts_exporter::task::TaskKind::Transfer,
        project_id: None,
        name: None,
        account: None,
        labels: Default::default(),
    }];
    adjust(&mut config);
    config.resolve().unwrap_err().to_string()
}

#[test]
fn bad_credential_settings_are_refused_with_the_fix() {
    let files = cli_files(json!([
        {"profile": "prod", "public_key": "pk", "private_key": "sk"},
        {"profile": "sso", "auth_mode": "oauth", "access_token": "at", "public_key": "old"}
    ]));
    let with_profile = |name: &str| {
        let (name, dir) = (name.to_string(), files.path().to_path_buf());
        move |config: &mut Config| {
            config.api.profile = Some(name);
            config.api.shared_credentials_file = Some(dir.join("credential.json"));
            config.api.shared_config_file = Some(dir.join("config.json"));
        }
    };
    let error = refused(with_profile("sso"));
    assert!(
        error.contains("`sso`") && error.contains("OAuth") && error.contains("API keys"),
        "{error}"
    );
    let error = refused(with_profile("staging"));
    assert!(
        error.contains("`staging` (api.profile) does not exist"),
        "{error}"
    );
    assert!(error.contains("prod, sso"), "{error}");
    // Readable by others: refused as a key file would be.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        files.path().join("credential.json"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let error = refused(with_profile("prod"));
    assert!(error.contains("api.shared_credentials_file"), "{error}");
    private_to_owner(&files.path().join("credential.json"));

    // Two sources on one account.
    let error = refused(|config| {
        config.api.public_key = "pk".into();
        config.api.private_key = Some("sk".into());
        config.api.instance_role = Some("udts".into());
    });
    assert!(
        error.contains("public_key and instance_role are both set"),
        "{error}"
    );
    // assume_role without keys to sign it, on an [[accounts]] entry.
    let role = AssumeRoleConfig {
        role_urn: "ucs:iam::1:role/udts".into(),
        session_name: None,
        duration: None,
        policy: None,
    };
    let error = refused(|config| {
        config.accounts = vec![udts_exporter::config::AccountConfig {
            name: "prod".into(),
            assume_role: Some(role.clone()),
            ..Default::default()
        }];
    });
    assert!(
        error.contains("accounts[0]") && error.contains("no credentials"),
        "{error}"
    );
    // STS's floor on the duration.
    let error = refused(|config| {
        config.api.public_key = "pk".into();
        config.api.private_key = Some("sk".into());
        config.api.assume_role = Some(AssumeRoleConfig {
            duration: Some(Duration::from_secs(600)),
            ..role
        });
    });
    assert!(
        error.contains("api.assume_role.duration") && error.contains("15m"),
        "{error}"
    );
}

/// `check` with an instance role: it names the source and when the keys expire, and with a
/// malformed answer from the metadata server it fails naming it; never a secret either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_the_instance_role_and_a_malformed_answer() {
    let shutdown = CancellationToken::new();
    let (gateway, endpoint) = gateway_with(vec![synced("udts-a")], &shutdown).await;
    let metadata = MetadataServer::new(gateway.temporary_keys(), "udts-monitor", "cn-sim1");
    let url = metadata
        .clone()
        .start_on_loopback(shutdown.clone())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[api]\nendpoint = \"{endpoint}\"\ninstance_role = \"udts-monitor\"\n\
             metadata_endpoint = \"{url}\"\n[[tasks]]\nid = \"udts-a\"\n"
        ),
    )
    .unwrap();
    let check = || {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_udts-exporter"))
                .args(["check", "--config"])
                .arg(&config)
                .output()
                .unwrap()
        })
    };
    let output = check().await.unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0), "{said}");
    // An hour's keys, a moment old: "1 h" or "59 min 59 s".
    assert!(
        said.contains("credentials: instance role udts-monitor, expire in 1 h")
            || said.contains("credentials: instance role udts-monitor, expire in 59 min"),
        "{said}"
    );
    no_secret_in(&said, &[]);
    // The JSON report says the same.
    let config_path = config.clone();
    let json = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_udts-exporter"))
            .args(["check", "--output", "json", "--config"])
            .arg(&config_path)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&json.stdout).into_owned();
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    let credentials = &report["credentials"][0];
    assert_eq!(
        credentials["source"], "instance role udts-monitor",
        "{text}"
    );
    assert_eq!(credentials["temporary"], true, "{text}");
    assert!(
        credentials["expires_at"].as_f64().unwrap() > udts_exporter::time::unix_now(),
        "{text}"
    );
    no_secret_in(&text, &[]);

    metadata.set_v2_body(Some("<html>maintenance</html>".into()));
    let output = check().await.unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        said.contains("unavailable: metadata v2: the answer is not JSON"),
        "{said}"
    );
}
