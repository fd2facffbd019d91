//! Every class of gateway fault affects only its task, is counted under the right reason, and
//! is survived: the exporter keeps serving, the healthy task stays fresh, and the faulty task
//! recovers by itself once the fault clears.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use udts_exporter::simulator::{Behaviour, SimTask};

fn healthy() -> Behaviour {
    Behaviour::Fixed(
        json!({"Status": "Syncing", "Sync": {"BinlogName": "mysql-bin.000001", "BinlogPos": 4}}),
    )
}

fn raw(status: u16, body: &str) -> Behaviour {
    Behaviour::Raw {
        status,
        body: body.into(),
    }
}

fn errors(text: &str, reason: &str) -> f64 {
    value(
        text,
        "udts_api_request_errors_total",
        &format!(r#"{{account="",action="GetUDTSTaskStatus",reason="{reason}"}}"#),
    )
    .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_class_is_counted_contained_and_recovered_from() {
    let harness = start_with(
        vec![
            SimTask::new("udts-fault", healthy()),
            SimTask::new("udts-healthy", healthy()),
        ],
        PRIVATE_KEY,
        |config| config.api.max_response_bytes = 1024 * 1024,
    )
    .await;
    let fault = task("udts-fault");
    let healthy_task = task("udts-healthy");

    let cases: Vec<(&str, Behaviour, &str)> = vec![
        ("HTTP 500", raw(500, "internal error"), "http_status"),
        ("HTTP 502", raw(502, "bad gateway"), "http_status"),
        ("HTTP 503", raw(503, "unavailable"), "http_status"),
        ("HTTP 504", raw(504, "gateway timeout"), "http_status"),
        ("HTTP 429", raw(429, "slow down"), "http_status"),
        ("no answer", Behaviour::Hang, "timeout"),
        (
            "too slow",
            Behaviour::Slow(Duration::from_secs(3), json!({"Status": "Synced"})),
            "timeout",
        ),
        ("cut off mid-way", Behaviour::CutOff, "network"),
        (
            "invalid JSON",
            raw(200, "{\"RetCode\": 0, \"Data\": {"),
            "decode",
        ),
        (
            "HTML with 200",
            raw(200, "<html><body>maintenance</body></html>"),
            "decode",
        ),
        ("empty body", raw(200, ""), "decode"),
        ("JSON without RetCode", raw(200, "{\"Data\": {}}"), "decode"),
        (
            "64 MiB body",
            Behaviour::Large(64 * 1024 * 1024),
            "body_too_large",
        ),
        ("endless body", Behaviour::Endless, "body_too_large"),
        (
            "RetCode as a string",
            raw(200, "{\"RetCode\": \"150\", \"Message\": \"busy\"}"),
            "transient",
        ),
        (
            "RetCode 110",
            Behaviour::RetCode(110, "API timeout".into()),
            "transient",
        ),
        (
            "RetCode 130",
            Behaviour::RetCode(130, "auth service fault".into()),
            "transient",
        ),
        (
            "RetCode 153",
            Behaviour::RetCode(153, "throttled".into()),
            "throttled",
        ),
        (
            "RetCode 161",
            Behaviour::RetCode(161, "Action not exist".into()),
            "configuration",
        ),
        (
            "RetCode 292",
            Behaviour::RetCode(292, "Project not exist".into()),
            "configuration",
        ),
        (
            "RetCode 294",
            Behaviour::RetCode(294, "IP not in allow list".into()),
            "permission",
        ),
        (
            "RetCode 299",
            Behaviour::RetCode(299, "IAM denied".into()),
            "permission",
        ),
        (
            "RetCode 8001",
            Behaviour::RetCode(8001, "task not found".into()),
            "api_error",
        ),
    ];

    for (name, behaviour, reason) in cases {
        let before = scrape(harness.exporter).await;
        let errors_before = errors(&before, reason);
        let healthy_before = value(
            &before,
            "udts_task_last_success_timestamp_seconds",
            &healthy_task,
        )
        .unwrap();

        harness.gateway.set_behaviour("udts-fault", behaviour);
        let text = scrape_until(harness.exporter, name, |text| {
            value(text, "udts_task_up", &fault) == Some(0.0) && errors(text, reason) > errors_before
        })
        .await;
        // The last known values stay; nothing else is disturbed.
        assert_eq!(
            value(&text, "udts_task_binlog_position", &fault),
            Some(4.0),
            "{name}"
        );
        scrape_until(harness.exporter, "the healthy task to stay fresh", |text| {
            value(text, "udts_task_up", &healthy_task) == Some(1.0)
                && value(
                    text,
                    "udts_task_last_success_timestamp_seconds",
                    &healthy_task,
                )
                .unwrap()
                    > healthy_before
        })
        .await;

        harness.gateway.set_behaviour("udts-fault", healthy());
        scrape_until(harness.exporter, "recovery", |text| {
            value(text, "udts_task_up", &fault) == Some(1.0)
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_answer_within_the_timeout_is_fine() {
    let harness = start(vec![SimTask::new(
        "udts-slow",
        Behaviour::Slow(Duration::from_millis(150), json!({"Status": "Synced"})),
    )])
    .await;
    let text = scrape(harness.exporter).await;
    assert_eq!(value(&text, "udts_task_up", &task("udts-slow")), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nulls_and_odd_values_leave_fields_absent_but_the_task_readable() {
    let harness = start(vec![SimTask::new(
        "udts-odd",
        Behaviour::Fixed(json!({
            "Status": "Loading", "CurRetryCount": null, "MaxRetryCount": "NaN",
            "Progress": {"Percentage": 1e308, "CurCount": -3, "TotalCount": "12", "CurDuration": null},
            "Sync": null,
        })),
    )])
    .await;
    let text = scrape(harness.exporter).await;
    let odd = task("udts-odd");
    assert_eq!(value(&text, "udts_task_up", &odd), Some(1.0));
    assert_eq!(
        value(&text, "udts_task_progress_target_rows", &odd),
        Some(12.0)
    );
    for absent in [
        "udts_task_retries",
        "udts_task_max_retries",
        "udts_task_progress_ratio",
        "udts_task_progress_rows",
        "udts_task_elapsed_seconds",
        "udts_task_binlog_position",
    ] {
        assert_eq!(value(&text, absent, &odd), None, "{absent}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_refuses_connections_is_survived_and_recovered_from() {
    // Reserve a port, then close it: connections are refused until the gateway starts there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let gateway = udts_exporter::simulator::Gateway::new(PUBLIC_KEY, PRIVATE_KEY);
    gateway.add_task(SimTask::new("udts-a", healthy()));
    let endpoint = format!("http://127.0.0.1:{port}");
    let config = config_for(&gateway, &endpoint, PRIVATE_KEY);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = udts_exporter::exporter::start(&config, listener, shutdown.clone())
        .await
        .unwrap();
    wait_ready(running.local_addr).await;
    let text = scrape(running.local_addr).await;
    assert_eq!(value(&text, "udts_task_up", &task("udts-a")), Some(0.0));
    assert!(errors(&text, "connect") >= 1.0, "{text}");

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    gateway.spawn(listener, shutdown.clone());
    scrape_until(
        running.local_addr,
        "recovery once the gateway listens",
        |text| value(text, "udts_task_up", &task("udts-a")) == Some(1.0),
    )
    .await;
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_within_the_interval_and_others_are_not() {
    for (behaviour, expected_calls) in [
        (Behaviour::RetCode(150, "busy".into()), 4),
        (Behaviour::RetCode(8001, "task not found".into()), 1),
        (raw(200, "<html></html>"), 1),
    ] {
        let harness = start_with(
            vec![SimTask::new("udts-a", behaviour)],
            PRIVATE_KEY,
            |config| {
                config.poll.interval = Some(Duration::from_secs(5));
            },
        )
        .await;
        // The first cycle is done once ready: one call plus up to 3 backed-off retries.
        assert_eq!(
            harness.gateway.requests("GetUDTSTaskStatus"),
            expected_calls,
            "{:?}",
            harness.endpoint
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_slows_the_account_down_and_it_recovers_gradually() {
    let ids = ["udts-a", "udts-b", "udts-c", "udts-d"];
    let throttled = || Behaviour::RetCode(153, "Request throttled".into());
    let harness = start(ids.iter().map(|id| SimTask::new(id, throttled())).collect()).await;
    let delay = |text: &str| value(text, "udts_api_throttle_delay_seconds", r#"{account=""}"#);
    let text = scrape_until(harness.exporter, "a throttle delay", |text| {
        delay(text).is_some_and(|v| v >= 0.25)
    })
    .await;
    assert!(value(
        &text,
        "udts_api_request_errors_total",
        r#"{account="",action="GetUDTSTaskStatus",reason="throttled"}"#
    )
    .is_some());
    for id in ids {
        harness.gateway.set_behaviour(id, healthy());
    }
    scrape_until(harness.exporter, "the delay to wear off", |text| {
        delay(text) == Some(0.0) && value(text, "udts_task_up", &task("udts-a")) == Some(1.0)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_keys_are_probed_until_they_work_again() {
    let harness = start(vec![
        SimTask::new("udts-a", healthy()),
        SimTask::new("udts-b", healthy()),
    ])
    .await;
    // Rotate the gateway's key away from ours: every task goes down on credentials.
    harness.gateway.set_private_key("rotated-key");
    scrape_until(harness.exporter, "credentials to be rejected", |text| {
        value(text, "udts_api_credentials_valid", r#"{account=""}"#) == Some(0.0)
            && value(text, "udts_task_up", &task("udts-a")) == Some(0.0)
            && value(text, "udts_task_up", &task("udts-b")) == Some(0.0)
    })
    .await;
    // Rotate back: the next probe succeeds and every task is read again.
    harness.gateway.set_private_key(PRIVATE_KEY);
    scrape_until(harness.exporter, "credentials to work again", |text| {
        value(text, "udts_api_credentials_valid", r#"{account=""}"#) == Some(1.0)
            && value(text, "udts_task_up", &task("udts-a")) == Some(1.0)
            && value(text, "udts_task_up", &task("udts-b")) == Some(1.0)
    })
    .await;
}

/// A client for `endpoint` that trusts `ca_pem` besides the built-in roots.
fn client_for(endpoint: &str, ca_pem: Option<&str>) -> udts_exporter::api::Client {
    let settings = udts_exporter::api::ClientSettings {
        endpoint: endpoint.parse().unwrap(),
        credentials: udts_exporter::api::CredentialSource::Keys {
            keys: udts_exporter::api::Credentials::keys(PUBLIC_KEY, PRIVATE_KEY.to_string().into()),
            origin: "config".into(),
        },
        region: None,
        timeout: Duration::from_secs(2),
        max_response_bytes: 1 << 20,
        account: None,
        extra_root_certificate: ca_pem.map(|pem| pem.as_bytes().to_vec()),
    };
    let metrics = std::sync::Arc::new(udts_exporter::metrics::ExporterMetrics::new());
    udts_exporter::api::Client::new(settings, metrics, None).unwrap()
}

/// A TLS server on loopback presenting `identity` (certificate and key PEM), completing
/// handshakes and nothing more: enough to make the client judge the certificate.
async fn tls_server(identity: &str) -> u16 {
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(identity.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(identity.as_bytes()).unwrap();
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        udts_exporter::tls_provider::provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move { drop(acceptor.accept(stream).await) });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_and_tls_failures_name_the_endpoint_and_the_fix() {
    let task = udts_exporter::task::TaskSpec::new("udts-a");
    let failure = |error: udts_exporter::api::ApiError| {
        format!("{error} / {}", error.hint().unwrap_or("(no hint)"))
    };

    // Refused: nothing listens on the port.
    let closed = free_port();
    let error = client_for(&format!("http://127.0.0.1:{closed}/"), None)
        .task_status(&task)
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "connect");
    let text = failure(error);
    assert!(
        text.contains(&format!("http://127.0.0.1:{closed}")),
        "{text}"
    );
    assert!(text.contains("firewall"), "{text}");

    // A certificate from a CA the exporter does not trust.
    let ca = common::ca::Ca::new();
    let port = tls_server(&ca.identity(&["localhost"], |_| {})).await;
    let error = client_for(&format!("https://localhost:{port}"), None)
        .task_status(&task)
        .await
        .unwrap_err();
    let text = failure(error);
    assert!(
        text.contains(&format!("https://localhost:{port}")),
        "{text}"
    );
    assert!(text.contains("api.ca_file"), "{text}");

    // Trusted, but issued for another name.
    let port = tls_server(&ca.identity(&["gateway.example"], |_| {})).await;
    let error = client_for(&format!("https://localhost:{port}"), Some(&ca.pem()))
        .task_status(&task)
        .await
        .unwrap_err();
    let text = failure(error);
    assert!(text.contains("does not name this host"), "{text}");

    // A name that does not resolve (`.invalid` never does, RFC 2606).
    let error = client_for("https://gateway.udts.invalid", None)
        .task_status(&task)
        .await
        .unwrap_err();
    let text = failure(error);
    assert!(text.contains("https://gateway.udts.invalid:443"), "{text}");
    assert!(text.contains("does not resolve"), "{text}");
}
