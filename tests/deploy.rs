//! The deployment files are checked, not just written: alert rules with promtool (syntax and
//! unit tests), the Prometheus config, the Kubernetes manifests, the Grafana dashboard's queries
//! against what the exporter really exposes, the systemd unit, and the Dockerfile (hadolint,
//! and its build commands run outside a container).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::json;
use serde_yaml_ng::Value as Yaml;
use udts_exporter::config::key_file::KeyFileAccess;
use udts_exporter::config::Config;
use udts_exporter::simulator::{Behaviour, SimTask};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn yaml(path: &str) -> Yaml {
    let text = std::fs::read_to_string(repo(path)).unwrap();
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn run_ok(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    if !tool_available("promtool") {
        return;
    }
    let dir = repo("deploy/prometheus");
    run_ok(
        Command::new("promtool")
            .args(["check", "rules", "alerts.yml"])
            .current_dir(&dir),
    );
    run_ok(
        Command::new("promtool")
            .args(["test", "rules", "alerts_test.yml"])
            .current_dir(&dir),
    );
    run_ok(
        Command::new("promtool")
            .args(["check", "config", "prometheus.yml"])
            .current_dir(&dir),
    );
}

/// Renders the mixin (`deploy/mixin/files.jsonnet`) into `out` with `selector`, if given.
fn render_mixin(out: &Path, selector: Option<&str>) {
    for dir in ["prometheus", "kubernetes", "grafana"] {
        std::fs::create_dir_all(out.join(dir)).unwrap();
    }
    // The YAML files as strings (-S), the dashboards as JSON.
    for (entry, string) in [("files.jsonnet", true), ("dashboards.jsonnet", false)] {
        let mut jsonnet = Command::new("jsonnet");
        jsonnet.arg("-J").arg(repo("deploy/mixin"));
        if string {
            jsonnet.arg("-S");
        }
        jsonnet.arg("-m").arg(out);
        if let Some(selector) = selector {
            jsonnet
                .arg("--tla-str")
                .arg(format!("udtsSelector={selector}"));
        }
        run_ok(jsonnet.arg(repo(&format!("deploy/mixin/{entry}"))));
    }
}

#[test]
fn the_mixin_renders_what_ships_and_its_selector_reaches_every_expression() {
    if !tool_available("jsonnet") || !tool_available("jsonnetfmt") || !tool_available("promtool") {
        return;
    }
    let sources: Vec<PathBuf> = ["deploy/mixin", "deploy/mixin/dashboards"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(repo(dir)).unwrap())
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|e| e == "libsonnet" || e == "jsonnet")
        })
        .collect();
    run_ok(Command::new("jsonnetfmt").arg("--test").args(&sources));

    // What ships is what the mixin renders, byte for byte.
    let shipped = tempfile::tempdir().unwrap();
    render_mixin(shipped.path(), None);
    for file in [
        "prometheus/alerts.yml",
        "kubernetes/prometheusrule.yaml",
        "grafana/udts-overview.json",
        "grafana/udts-task.json",
    ] {
        let rendered = std::fs::read_to_string(shipped.path().join(file)).unwrap();
        let committed = std::fs::read_to_string(repo(&format!("deploy/{file}"))).unwrap();
        assert!(
            rendered == committed,
            "deploy/{file} is not what the mixin renders: run deploy/mixin/generate and commit \
             the result (edit deploy/mixin, never the rendered file)"
        );
    }

    // Another selector reaches every metric of every expression, and the rules still pass
    // promtool and their unit tests on series that carry it.
    let other = tempfile::tempdir().unwrap();
    render_mixin(other.path(), Some(r#"job="udts-mixin""#));
    let rules_path = other.path().join("prometheus/alerts.yml");
    let rules: Yaml =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&rules_path).unwrap()).unwrap();
    let mut exprs = 0;
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let expr = rule["expr"].as_str().unwrap();
            exprs += 1;
            // Recorded series (level:metric:operation) are made of selected ones.
            for (name, end) in metric_uses(expr)
                .into_iter()
                .filter(|(n, _)| !n.contains(':'))
            {
                assert!(
                    expr[end..].starts_with(r#"{job="udts-mixin""#),
                    "{name} without the selector in {expr}"
                );
            }
        }
    }
    assert_eq!(exprs, 38);
    // The dashboards list only the jobs the selector selects; every query filters by them.
    for name in ["udts-overview.json", "udts-task.json"] {
        let text = std::fs::read_to_string(other.path().join("grafana").join(name)).unwrap();
        let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
        let job = dashboard["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "job")
            .unwrap();
        assert_eq!(
            job["query"]["query"],
            r#"label_values(udts_exporter_build_info{job="udts-mixin"}, job)"#,
            "{name}"
        );
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().unwrap();
                for (metric, end) in metric_uses(expr) {
                    assert!(
                        expr[end..].starts_with(r#"{job=~"$job""#),
                        "{name}: {metric} without $job in {expr}"
                    );
                }
            }
        }
    }
    let tests = std::fs::read_to_string(repo("deploy/prometheus/alerts_test.yml"))
        .unwrap()
        .replace(r#"job="udts""#, r#"job="udts-mixin""#)
        .replace("job: udts\n", "job: udts-mixin\n");
    std::fs::write(other.path().join("prometheus/alerts_test.yml"), tests).unwrap();
    run_ok(
        Command::new("promtool")
            .current_dir(other.path().join("prometheus"))
            .args(["check", "rules", "alerts.yml"]),
    );
    run_ok(
        Command::new("promtool")
            .current_dir(other.path().join("prometheus"))
            .args(["test", "rules", "alerts_test.yml"]),
    );
}

#[test]
fn every_alert_opens_its_own_runbook_section_and_every_section_has_its_alert() {
    let rules = yaml("deploy/prometheus/alerts.yml");
    let runbooks = std::fs::read_to_string(repo("docs/runbooks.md")).unwrap();
    let sections: Vec<(&str, &str)> = runbooks
        .split("\n## ")
        .skip(1)
        .map(|section| section.split_once('\n').unwrap_or((section, "")))
        .collect();
    let mut alerts = BTreeSet::new();
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let Some(alert) = rule["alert"].as_str() else {
                continue;
            };
            alerts.insert(alert.to_string());
            let url = rule["annotations"]["runbook_url"]
                .as_str()
                .unwrap_or_default();
            assert_eq!(
                url,
                format!(
                    "https://github.com/udts-exporter/udts-exporter/blob/main/docs/runbooks.md#{}",
                    alert.to_lowercase()
                ),
                "{alert}"
            );
            let (_, body) = sections
                .iter()
                .find(|(name, _)| *name == alert)
                .unwrap_or_else(|| panic!("{alert} has no section in docs/runbooks.md"));
            for part in [
                "**What it means.**",
                "**If nobody acts.**",
                "**How to look.**",
                "**What to do.**",
            ] {
                assert!(body.contains(part), "{alert}'s runbook lacks {part}");
            }
        }
    }
    for (name, _) in &sections {
        assert!(
            alerts.contains(*name),
            "docs/runbooks.md has a section for no alert: {name}"
        );
    }
}

#[test]
fn every_alert_has_a_unit_test_and_operator_facing_text() {
    let rules = yaml("deploy/prometheus/alerts.yml");
    let tests = std::fs::read_to_string(repo("deploy/prometheus/alerts_test.yml")).unwrap();
    let mut names = Vec::new();
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            if let Some(record) = rule["record"].as_str() {
                // Recording rules: Prometheus' level:metric:operations (operations left out
                // where none applies, as for an ETA), each unit-tested.
                assert!((2..=3).contains(&record.split(':').count()), "{record}");
                assert!(record.starts_with("udts:"), "{record}");
                assert!(
                    tests.contains(&format!("expr: round({record})\n"))
                        || tests.contains(&format!("expr: {record}\n")),
                    "{record} has no promtool unit test"
                );
                continue;
            }
            let name = rule["alert"].as_str().unwrap();
            names.push(name.to_string());
            assert!(rule["labels"]["severity"].is_string(), "{name}: severity");
            assert!(
                rule["annotations"]["summary"].is_string(),
                "{name}: summary"
            );
            assert!(
                rule["annotations"]["description"].is_string(),
                "{name}: description"
            );
            assert!(
                tests.contains(&format!("alertname: {name}\n")),
                "{name} has no promtool unit test"
            );
        }
    }
    assert!(names.len() >= 10, "{names:?}");
}

#[test]
fn prometheus_rule_carries_the_same_groups_as_alerts_yml() {
    let rules = yaml("deploy/prometheus/alerts.yml");
    let resource = yaml("deploy/kubernetes/prometheusrule.yaml");
    assert_eq!(resource["kind"], "PrometheusRule");
    assert_eq!(resource["spec"]["groups"], rules["groups"]);
}

#[test]
fn kubernetes_manifests_are_complete_and_hardened() {
    let kustomization = yaml("deploy/kubernetes/kustomization.yaml");
    let resources: BTreeSet<String> = kustomization["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    for entry in std::fs::read_dir(repo("deploy/kubernetes")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let doc = yaml(&format!("deploy/kubernetes/{name}"));
        assert!(doc["apiVersion"].is_string(), "{name}: apiVersion");
        assert!(doc["kind"].is_string(), "{name}: kind");
        if name == "kustomization.yaml" {
            continue;
        }
        assert!(doc["metadata"]["name"].is_string(), "{name}: metadata.name");
        if name != "sharded-statefulset.yaml" {
            assert!(
                resources.contains(&name),
                "{name} is not in kustomization.yaml"
            );
        }
    }

    for workload in ["deployment.yaml", "sharded-statefulset.yaml"] {
        let doc = yaml(&format!("deploy/kubernetes/{workload}"));
        let pod = &doc["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{workload}");
        let container = &pod["containers"][0];
        assert_eq!(
            container["readinessProbe"]["httpGet"]["path"], "/readyz",
            "{workload}"
        );
        assert_eq!(
            container["livenessProbe"]["httpGet"]["path"], "/healthz",
            "{workload}"
        );
        assert_eq!(container["ports"][0]["containerPort"], 9741, "{workload}");
        let security = &container["securityContext"];
        assert_eq!(security["readOnlyRootFilesystem"], true, "{workload}");
        assert_eq!(security["allowPrivilegeEscalation"], false, "{workload}");
        assert_eq!(security["capabilities"]["drop"][0], "ALL", "{workload}");
    }
    let deployment = yaml("deploy/kubernetes/deployment.yaml");
    let resources = &deployment["spec"]["template"]["spec"]["containers"][0]["resources"];
    assert!(resources["requests"]["memory"].is_string());
    assert!(resources["limits"]["memory"].is_string());
}

/// What the kubelet makes of each workload's key Secret must pass the exporter's key file rule:
/// files owned by root, group fsGroup (when set), mode defaultMode; the process runs as
/// runAsUser with runAsGroup and fsGroup among its groups.
#[test]
fn the_kubelets_key_file_is_admitted_by_the_exporters_rule() {
    for workload in ["deployment.yaml", "sharded-statefulset.yaml"] {
        let doc = yaml(&format!("deploy/kubernetes/{workload}"));
        let pod = &doc["spec"]["template"]["spec"];
        let context = &pod["securityContext"];
        let uid = context["runAsUser"].as_u64().unwrap() as u32;
        let gid = context["runAsGroup"].as_u64().unwrap() as u32;
        let fs_group = context["fsGroup"].as_u64().unwrap() as u32;
        assert_eq!(fs_group, gid, "{workload}: fsGroup must equal runAsGroup");
        assert_ne!(uid, 0, "{workload}");
        let volume = pod["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|v| v["secret"].is_mapping())
            .unwrap();
        // Read as Kubernetes reads it (YAML 1.1): a leading 0 is octal.
        let mode = yaml11_int(&volume["secret"]["defaultMode"]);
        assert_eq!(mode, 0o440, "{workload}: defaultMode");
        let access = KeyFileAccess {
            mode,
            owner: 0,
            group: fs_group,
            euid: uid,
            in_group: true,
        };
        assert_eq!(access.check("key"), Ok(()), "{workload}");
        // Without fsGroup the kubelet leaves root:root, and the refusal names the fix.
        let refusal = KeyFileAccess {
            group: 0,
            in_group: false,
            ..access
        }
        .check("key")
        .unwrap_err();
        assert!(refusal.fix.contains("fsGroup"), "{refusal:?}");
        // The key is mounted where the shipped config looks for it.
        let mount = pod["containers"][0]["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|m| m["name"] == volume["name"])
            .unwrap();
        assert_eq!(mount["mountPath"], "/run/secrets/udts", "{workload}");
    }
}

/// An integer as Kubernetes reads YAML (1.1): `0440` is octal. The YAML 1.2 parser used here
/// leaves such a value a string.
fn yaml11_int(value: &Yaml) -> u32 {
    match value {
        Yaml::String(text) if text.starts_with('0') => u32::from_str_radix(text, 8).unwrap(),
        other => other.as_u64().unwrap() as u32,
    }
}

/// The account override mounts the key as a Compose secret where its config looks, as the
/// image's user, and that file must be laid out the Kubernetes way (the header says how).
#[test]
fn the_compose_account_override_mounts_the_key_as_the_image_user() {
    let account = yaml("deploy/compose/account.yml");
    let service = &account["services"]["udts-exporter"];
    assert_eq!(service["user"], "65532:65532");
    assert_eq!(service["secrets"][0], "udts_private_key");
    assert!(account["secrets"]["udts_private_key"]["file"].is_string());
    let text = std::fs::read_to_string(repo("deploy/compose/account.yml")).unwrap();
    assert!(text.contains("install -o root -g 65532 -m 0440"));
    assert!(text.contains("/run/secrets/udts_private_key"));
    let dockerfile = std::fs::read_to_string(repo("Dockerfile")).unwrap();
    assert!(dockerfile.contains("USER 65532:65532"));
}

/// The UK8S variant stores no key: its config resolves to an instance role with nothing but
/// itself, its Deployment patch drops the key volume and its mount, and the Secret is deleted.
#[test]
fn the_uk8s_variant_uses_the_instance_role_and_mounts_no_secret() {
    let configmap = yaml("deploy/kubernetes-uk8s/configmap.yaml");
    let text = configmap["data"]["config.toml"].as_str().unwrap();
    assert!(!text.contains("private_key"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, format!("{text}\n[[tasks]]\nid = \"udts-a\"\n")).unwrap();
    let settings = Config::load(Some(&path)).unwrap().resolve().unwrap();
    match &settings.accounts[0].credentials {
        udts_exporter::config::CredentialConfig::InstanceRole {
            role,
            metadata_endpoint,
        } => {
            assert_eq!(role, "Uk8sServiceCharacter");
            assert_eq!(metadata_endpoint.as_str(), "http://100.80.80.80/");
        }
        other => panic!("{other:?}"),
    }
    let kustomization = yaml("deploy/kubernetes-uk8s/kustomization.yaml");
    assert_eq!(kustomization["resources"][0], "../kubernetes");
    let deleted = yaml("deploy/kubernetes-uk8s/no-secret.yaml");
    assert_eq!(deleted["$patch"], "delete");
    assert_eq!(deleted["kind"], "Secret");
    let deployment = yaml("deploy/kubernetes-uk8s/deployment.yaml");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["volumes"][0]["name"], "key");
    assert_eq!(pod["volumes"][0]["$patch"], "delete");
    assert_eq!(pod["containers"][0]["volumeMounts"][0]["$patch"], "delete");
}

#[test]
fn the_shipped_configmap_is_a_valid_exporter_config() {
    let configmap = yaml("deploy/kubernetes/configmap.yaml");
    let text = configmap["data"]["config.toml"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "k").unwrap();
    private_to_owner(&key);
    let text = text.replace("/run/secrets/udts/udts_private_key", key.to_str().unwrap());
    let path = dir.path().join("config.toml");
    std::fs::write(&path, &text).unwrap();
    let config = Config::read(Some(&path)).unwrap();
    assert!(config.discovery.enabled);
    // Refused by name until the public key is filled in; valid once it is.
    let refusal = config.resolve().unwrap_err().to_string();
    assert!(refusal.contains("api.public_key"), "{refusal}");
    std::fs::write(&path, text.replace("REPLACE_WITH_PUBLIC_KEY", "my-key")).unwrap();
    Config::load(Some(&path)).unwrap().resolve().unwrap();
    // The Deployment mounts the Secret where the config looks for the key.
    let deployment = std::fs::read_to_string(repo("deploy/kubernetes/deployment.yaml")).unwrap();
    assert!(deployment.contains("mountPath: /run/secrets/udts"));
}

/// Metric names a PromQL expression mentions (udts_* and up).
fn metric_names(expr: &str) -> Vec<String> {
    metric_uses(expr)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// Each metric a PromQL expression names, with where its name ends.
fn metric_uses(expr: &str) -> Vec<(String, usize)> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // Metric names may hold colons: recording rules' level:metric:operations.
        let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
        if is_ident(bytes[i]) && (i == 0 || !is_ident(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && is_ident(bytes[i]) {
                i += 1;
            }
            let word = &expr[start..i];
            let next = expr[i..].trim_start();
            let is_label =
                next.starts_with('=') || next.starts_with("!=") || next.starts_with("=~");
            if (word.starts_with("udts_") || word.starts_with("udts:") || word == "up") && !is_label
            {
                names.push((word.to_string(), i));
            }
        } else {
            i += 1;
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_queries_use_only_metrics_the_exporter_exposes() {
    let tasks = vec![
        SimTask::new("udts-ok", Behaviour::Fixed(json!({"Status": "Syncing"}))),
        SimTask::new("udts-bad", Behaviour::RetCode(150, "busy".into())),
    ];
    // Sources (unreachable here), MySQL and PostgreSQL, so the lag and slot families are
    // declared.
    let harness = start_with(tasks, PRIVATE_KEY, |config| {
        config.sources = vec![udts_exporter::config::SourceConfig {
            name: "orders-primary".into(),
            url: "mysql://udts_monitor@127.0.0.1:9".into(),
            password_file: None,
            password_env: None,
            tls: udts_exporter::config::TlsMode::Disabled,
            ca_file: None,
            tasks: vec!["udts-ok".into()],
            task_name_regex: None,
            timeout: None,
            slots: Default::default(),
            slot_name_regex: None,
        }];
        let postgres = udts_exporter::config::SourceConfig {
            name: "orders-pg".into(),
            url: "postgresql://udts_monitor@127.0.0.1:9/postgres".into(),
            tasks: vec!["udts-bad".into()],
            ..config.sources[0].clone()
        };
        config.sources.push(postgres);
    })
    .await;
    let text = scrape(harness.exporter).await;
    let mut exposed: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect();
    for family in exposed.clone() {
        for suffix in ["_bucket", "_sum", "_count"] {
            exposed.insert(format!("{family}{suffix}"));
        }
    }
    exposed.insert("up".into());
    // And what the shipped recording rules make of them.
    let rules = yaml("deploy/prometheus/alerts.yml");
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            if let Some(record) = rule["record"].as_str() {
                for name in metric_names(rule["expr"].as_str().unwrap()) {
                    assert!(exposed.contains(&name), "{record}: {name} is not exposed");
                }
                exposed.insert(record.to_string());
            }
        }
    }

    let mut queries = 0;
    for (file, wanted) in [
        (
            "udts-overview.json",
            &["datasource", "job", "project", "task"][..],
        ),
        ("udts-task.json", &["datasource", "job", "task"][..]),
    ] {
        let text = std::fs::read_to_string(repo(&format!("deploy/grafana/{file}"))).unwrap();
        let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
        let variables: Vec<&str> = dashboard["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        for variable in wanted {
            assert!(
                variables.contains(variable),
                "{file}: template variable {variable}"
            );
        }
        for panel in dashboard["panels"].as_array().unwrap() {
            if panel["type"] == "row" {
                continue;
            }
            let title = panel["title"].as_str().unwrap();
            assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                let names = metric_names(expr);
                assert!(!names.is_empty(), "{title}: {expr}");
                for name in names {
                    assert!(
                        exposed.contains(&name),
                        "{title}: {name} is not exposed ({expr})"
                    );
                }
                queries += 1;
            }
        }
    }
    assert!(queries >= 40, "{queries}");
}

#[test]
fn metric_names_are_read_from_promql() {
    assert_eq!(
        metric_names(
            r#"sum by (le) (rate(udts_api_request_duration_seconds_bucket{job=~"x", udts_x="y"}[5m])) / up"#
        ),
        ["udts_api_request_duration_seconds_bucket", "up"]
    );
    assert_eq!(
        metric_names(r#"udts:task_source_applied_bytes:rate5m{task_id=~"$task"}"#),
        ["udts:task_source_applied_bytes:rate5m"]
    );
}

#[test]
fn systemd_unit_is_hardened_and_passes_the_key_as_a_credential() {
    let unit = std::fs::read_to_string(repo("deploy/systemd/udts-exporter.service")).unwrap();
    let settings: BTreeSet<&str> = unit
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .collect();
    for required in [
        "User=udts-exporter",
        "Group=udts-exporter",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "LoadCredential=udts_private_key:/etc/udts-exporter/private_key",
        "Environment=UDTS_API__PRIVATE_KEY_FILE=%d/udts_private_key",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "LimitNOFILE=65536",
        "PrivateMounts=yes",
        "RemoveIPC=yes",
        "SystemCallErrorNumber=EPERM",
    ] {
        assert!(settings.contains(required), "missing {required}");
    }
    assert!(settings
        .iter()
        .any(|l| l.starts_with("ExecStart=/usr/bin/udts-exporter --config ")));
}

#[test]
fn systemd_units_verify_and_the_service_scores_ok_in_systemd_analyze_security() {
    if !tool_available("systemd-analyze") {
        return;
    }
    let socket = repo("deploy/systemd/udts-exporter.socket");
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&socket)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    // verify also looks for the service the socket starts; only the socket's own lines count.
    assert!(
        !said.lines().any(|l| l.contains("udts-exporter.socket:")),
        "{said}"
    );
    let output = Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(repo("deploy/systemd/udts-exporter.service"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("exposure level for udts-exporter.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no score in: {text}"));
    assert!(
        score <= 1.4,
        "exposure {score} (node_exporter's example unit: 9.2)\n{text}"
    );
}

/// The Alertmanager example is valid and routes by the team the alerts carry.
#[test]
fn alertmanager_routes_pages_by_team() {
    if !tool_available("amtool") {
        return;
    }
    let config = repo("deploy/prometheus/alertmanager.yml");
    run_ok(Command::new("amtool").arg("check-config").arg(&config));
    for (labels, receiver) in [
        (
            &["alertname=UDTSTaskFailed", "team=payments"][..],
            "payments",
        ),
        (
            &["alertname=UDTSTaskFailed", "team=platform"][..],
            "platform",
        ),
        (&["alertname=UDTSTaskFailed"][..], "default"),
    ] {
        let output = Command::new("amtool")
            .args(["config", "routes", "test"])
            .arg(format!("--config.file={}", config.display()))
            .args(labels)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            receiver,
            "{labels:?}"
        );
    }
}

#[test]
fn dockerfile_passes_hadolint() {
    if !tool_available("hadolint") {
        return;
    }
    run_ok(Command::new("hadolint").arg(repo("Dockerfile")));
}

/// Runs the Dockerfile's build stage outside a container: only what it COPYs, then its RUN
/// command. Catches a COPY that misses something the build needs.
#[test]
fn dockerfile_build_commands_work_on_exactly_what_it_copies() {
    let dockerfile = std::fs::read_to_string(repo("Dockerfile")).unwrap();
    let build_stage: Vec<&str> = dockerfile
        .lines()
        .skip_while(|l| !l.starts_with("FROM rust"))
        .take_while(|l| !l.starts_with("FROM ") || l.starts_with("FROM rust"))
        .collect();
    // A stable context directory whose unchanged files keep their mtimes, so repeated runs
    // rebuild only what changed; entries the Dockerfile does not COPY are removed.
    let context = repo("target/dockerfile-context");
    std::fs::create_dir_all(&context).unwrap();
    let mut copied = BTreeSet::new();
    let mut run = None;
    for line in &build_stage {
        if let Some(args) = line.strip_prefix("COPY ") {
            let parts: Vec<&str> = args.split_whitespace().collect();
            let (sources, _dest) = parts.split_at(parts.len() - 1);
            for source in sources {
                sync_tree(&repo(source), &context.join(source));
                copied.insert(source.to_string());
            }
        } else if let Some(command) = line.strip_prefix("RUN ") {
            run = Some(command.to_string());
        }
    }
    for entry in std::fs::read_dir(&context).unwrap() {
        let entry = entry.unwrap();
        if !copied.contains(entry.file_name().to_str().unwrap()) {
            let path = entry.path();
            if path.is_dir() {
                std::fs::remove_dir_all(path).unwrap();
            } else {
                std::fs::remove_file(path).unwrap();
            }
        }
    }
    let run = run.expect("the build stage has a RUN command");
    assert!(run.starts_with("cargo build --release --locked"), "{run}");
    let target = repo("target/dockerfile-check");
    run_ok(
        Command::new("sh")
            .arg("-c")
            .arg(&run)
            .current_dir(&context)
            .env("CARGO_TARGET_DIR", &target),
    );
    let binary = target.join("release/udts-exporter");
    let output = Command::new(&binary).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains(env!("CARGO_PKG_VERSION")));
}

/// Makes `to` a copy of `from`, rewriting only files whose content differs (and removing
/// files `from` no longer has).
fn sync_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        let mut names = BTreeSet::new();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            names.insert(entry.file_name());
            sync_tree(&entry.path(), &to.join(entry.file_name()));
        }
        for entry in std::fs::read_dir(to).unwrap() {
            let entry = entry.unwrap();
            if !names.contains(&entry.file_name()) {
                let path = entry.path();
                if path.is_dir() {
                    std::fs::remove_dir_all(path).unwrap();
                } else {
                    std::fs::remove_file(path).unwrap();
                }
            }
        }
    } else {
        let content = std::fs::read(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        if std::fs::read(to).ok().as_deref() != Some(&content[..]) {
            std::fs::write(to, content).unwrap();
        }
    }
}
