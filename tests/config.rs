//! Configuration loading: the shipped example, environment overrides, and errors that name the
//! key and the fix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)] // figment::Jail returns a large error

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use figment::Jail;
use secrecy::ExposeSecret;
use udts_exporter::config::{Config, ConfigError};
use udts_exporter::task::TaskKind;

fn load_err(jail: &Jail) -> String {
    match Config::load(Some(&jail.directory().join("config.toml"))) {
        Ok(_) => panic!("config should have been refused"),
        Err(error) => error.to_string(),
    }
}

const MINIMAL: &str = r#"
[api]
public_key = "pub"
private_key = "secret-key-value"
[[tasks]]
id = "udts-a"
"#;

#[test]
fn shipped_example_loads_once_its_key_file_exists() {
    Jail::expect_with(|jail| {
        let example =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
                .unwrap();
        jail.create_file("key", "  from-file-key\n")?;
        let key_path = jail.directory().join("key");
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let text = example.replace("/run/secrets/udts_private_key", key_path.to_str().unwrap());
        jail.create_file("config.toml", &text)?;
        let config = Config::read(Some(&jail.directory().join("config.toml"))).unwrap();
        assert_eq!(config.api.endpoint, "https://api.an-link.com");
        assert_eq!(config.api.timeout, None);
        assert_eq!(config.api.concurrency, 4);
        assert_eq!(config.poll.interval, Some(Duration::from_secs(30)));
        assert_eq!(config.web.listen_address, "0.0.0.0:9741".into());
        // The example's task list is commented out, and its public key is refused by name.
        assert!(config.tasks.is_empty());
        let refusal = config.resolve().unwrap_err().to_string();
        assert!(refusal.contains("api.public_key"), "{refusal}");
        assert!(refusal.contains("placeholder"), "{refusal}");

        // With the placeholder replaced and a task of one's own, it runs.
        let text = format!(
            "{}\n[[tasks]]\nid = \"udts-ixdp441\"\n",
            text.replace("REPLACE_WITH_PUBLIC_KEY", "my-public-key")
        );
        jail.create_file("config.toml", &text)?;
        let config = Config::load(Some(&jail.directory().join("config.toml"))).unwrap();
        assert_eq!(config.tasks[0].kind, TaskKind::Transfer);
        let settings = config.resolve().unwrap();
        assert_eq!(
            settings.accounts[0].private_key().unwrap().expose_secret(),
            "from-file-key"
        );
        Ok(())
    });
}

#[test]
fn example_placeholders_are_refused_naming_the_key() {
    for (line, key) in [
        ("[[tasks]]\nid = \"udts-xxxxxx\"", "tasks[1].id"),
        ("[api]\nproject_id = \"org-xxxx\"", "api.project_id"),
    ] {
        Jail::expect_with(|jail| {
            let text = if line.starts_with("[api]") {
                MINIMAL.replace("[api]", line)
            } else {
                format!("{MINIMAL}{line}\n")
            };
            jail.create_file("config.toml", &text)?;
            let refusal = load_err(jail);
            assert!(refusal.contains(key), "{refusal}");
            assert!(refusal.contains("placeholder"), "{refusal}");
            Ok(())
        });
    }
    Jail::expect_with(|jail| {
        let text = MINIMAL.replace("secret-key-value", "REPLACE_WITH_PRIVATE_KEY");
        jail.create_file("config.toml", &text)?;
        let refusal = load_err(jail);
        assert!(refusal.contains("api.private_key"), "{refusal}");
        assert!(refusal.contains("placeholder"), "{refusal}");
        Ok(())
    });
}

#[test]
fn environment_overrides_the_file_and_other_udts_variables_are_ignored() {
    Jail::expect_with(|jail| {
        jail.create_file("config.toml", MINIMAL)?;
        jail.set_env("UDTS_POLL__INTERVAL", "2m");
        jail.set_env("UDTS_API__PRIVATE_KEY", "env-key");
        jail.set_env("UDTS_API__PROJECT_ID", "org-env");
        jail.set_env("UDTS_REQUIRE_TOOLS", "1");
        let config = Config::load(Some(&jail.directory().join("config.toml"))).unwrap();
        assert_eq!(config.poll.interval, Some(Duration::from_secs(120)));
        let key = config.api.private_key.as_ref().unwrap();
        assert_eq!(key.expose_secret(), "env-key");
        assert_eq!(
            config.resolve().unwrap().static_tasks[0]
                .project_id
                .as_deref(),
            Some("org-env")
        );
        Ok(())
    });
}

#[test]
fn per_task_project_overrides_the_default() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "config.toml",
            &format!("{MINIMAL}project_id = \"org-task\"\ntype = \"integration\"\n"),
        )?;
        jail.set_env("UDTS_API__PROJECT_ID", "org-default");
        let config = Config::load(Some(&jail.directory().join("config.toml"))).unwrap();
        let spec = &config.resolve().unwrap().static_tasks[0];
        assert_eq!(spec.project_id.as_deref(), Some("org-task"));
        assert_eq!(spec.kind, TaskKind::Integration);
        Ok(())
    });
}

#[test]
fn bad_values_are_refused_naming_the_key() {
    let cases: &[(&str, &str, &str)] = &[
        ("[poll]\ninterval = \"soon\"\n", "", "poll.interval"),
        ("[poll]\ninterval = \"100ms\"\n", "", "poll.interval"),
        ("[api]\ntimeout = \"0s\"\n", "", "api.timeout"),
        ("[api]\nconcurrency = 0\n", "", "api.concurrency"),
        (
            "[api]\nendpoint = \"http://gateway.example.com\"\n",
            "",
            "api.endpoint",
        ),
        ("[api]\nendpoint = \"not a url\"\n", "", "api.endpoint"),
        (
            "[web]\nlisten_address = \"everywhere\"\n",
            "",
            "web.listen_address",
        ),
        (
            "[web]\ntelemetry_path = \"metrics\"\n",
            "",
            "web.telemetry_path",
        ),
        ("[api]\ncolour = \"blue\"\n", "", "colour"),
        // The monitoring service samples once a minute.
        ("[monitor]\ninterval = \"30s\"\n", "", "monitor.interval"),
        ("", "[[tasks]]\nid = \"udts-a\"\n", "tasks[1].id"),
        (
            "",
            "[[tasks]]\nid = \"udts-b\"\ntype = \"teleport\"\n",
            "teleport",
        ),
    ];
    for (extra_sections, extra_tasks, key) in cases {
        Jail::expect_with(|jail| {
            // Sections in `extra_sections` replace the minimal ones by merging keys into them.
            let text = merge(MINIMAL, extra_sections);
            jail.create_file("config.toml", &format!("{text}{extra_tasks}"))?;
            let message = load_err(jail);
            assert!(
                message.contains(key),
                "error for {key} does not name it: {message}"
            );
            Ok(())
        });
    }
}

/// Inserts the keys of `extra` (one `[section]` with keys) into that section of `base`.
fn merge(base: &str, extra: &str) -> String {
    let Some((header, keys)) = extra.split_once('\n') else {
        return base.to_string();
    };
    if base.contains(header) {
        base.replacen(header, &format!("{header}\n{keys}"), 1)
    } else {
        format!("{header}\n{keys}{base}")
    }
}

#[test]
fn missing_credentials_are_named() {
    Jail::expect_with(|jail| {
        jail.create_file("config.toml", "[[tasks]]\nid = \"udts-a\"\n")?;
        let message = load_err(jail);
        assert!(message.contains("api.public_key"), "{message}");
        assert!(message.contains("UDTS_API__PUBLIC_KEY"), "{message}");
        jail.create_file(
            "config.toml",
            "[api]\npublic_key = \"p\"\n[[tasks]]\nid = \"udts-a\"\n",
        )?;
        let message = load_err(jail);
        assert!(message.contains("api.private_key"), "{message}");
        Ok(())
    });
}

#[test]
fn no_tasks_is_refused_with_the_fix() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "config.toml",
            "[api]\npublic_key = \"p\"\nprivate_key = \"k\"\n",
        )?;
        let message = load_err(jail);
        assert!(message.contains("`tasks`"), "{message}");
        assert!(message.contains("[[tasks]]"), "{message}");
        Ok(())
    });
}

#[test]
fn missing_file_is_a_clear_error() {
    let error = Config::load(Some(std::path::Path::new("/nonexistent/udts.toml"))).unwrap_err();
    assert!(matches!(error, ConfigError::Load(_)));
    assert!(error.to_string().contains("/nonexistent/udts.toml"));
}

#[test]
fn the_private_key_never_shows_in_debug_output() {
    Jail::expect_with(|jail| {
        jail.create_file("config.toml", MINIMAL)?;
        let config = Config::load(Some(&jail.directory().join("config.toml"))).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("secret-key-value"), "{debug}");
        assert!(debug.contains("REDACTED"), "{debug}");
        Ok(())
    });
}

#[test]
fn a_private_key_file_others_can_read_is_refused_like_ssh_does() {
    Jail::expect_with(|jail| {
        jail.create_file("key", "secret-in-file")?;
        let key = jail.directory().join("key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        jail.create_file(
            "config.toml",
            &format!(
                "[api]\npublic_key = \"p\"\nprivate_key_file = \"{}\"\n[[tasks]]\nid = \"udts-a\"\n",
                key.display()
            ),
        )?;
        let message = load_err(jail);
        assert!(message.contains("api.private_key_file"), "{message}");
        assert!(message.contains("chmod 600"), "{message}");
        assert!(!message.contains("secret-in-file"), "{message}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
        let config = Config::load(Some(&jail.directory().join("config.toml"))).unwrap();
        let settings = config.resolve().unwrap();
        assert_eq!(
            settings.accounts[0].private_key().unwrap().expose_secret(),
            "secret-in-file"
        );
        Ok(())
    });
}

#[test]
fn stale_after_defaults_to_three_intervals_and_must_cover_one() {
    Jail::expect_with(|jail| {
        jail.create_file("config.toml", MINIMAL)?;
        let settings = Config::load(Some(&jail.directory().join("config.toml")))
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(
            settings.exposition.stale_after,
            Some(Duration::from_secs(90))
        );
        jail.create_file(
            "config.toml",
            &format!("{MINIMAL}[poll]\nstale_after = \"10s\"\n"),
        )?;
        assert!(load_err(jail).contains("poll.stale_after"));
        Ok(())
    });
}

#[test]
fn a_ca_file_that_is_not_pem_is_refused() {
    Jail::expect_with(|jail| {
        jail.create_file("ca.pem", "not a certificate")?;
        let text = MINIMAL.replace(
            "[api]\n",
            &format!(
                "[api]\nca_file = \"{}\"\n",
                jail.directory().join("ca.pem").display()
            ),
        );
        jail.create_file("config.toml", &text)?;
        assert!(load_err(jail).contains("api.ca_file"));
        Ok(())
    });
}

/// As Prometheus does with `scrape_timeout`: an unset `api.timeout` is `min(10s, poll.interval)`,
/// so a short interval just works; only an explicit timeout longer than the interval is refused,
/// with a value that would pass.
#[test]
fn an_unset_timeout_follows_a_short_interval() {
    Jail::expect_with(|jail| {
        let path = jail.directory().join("config.toml");
        for (interval, expected) in [("5s", 5), ("10s", 10), ("30s", 10), ("2m", 10)] {
            jail.create_file(
                "config.toml",
                &format!("[poll]\ninterval = \"{interval}\"\n{MINIMAL}"),
            )?;
            let settings = Config::load(Some(&path)).unwrap().resolve().unwrap();
            assert_eq!(
                settings.timeout,
                Duration::from_secs(expected),
                "{interval}"
            );
        }

        jail.create_file(
            "config.toml",
            &merge(
                &format!("[poll]\ninterval = \"5s\"\n{MINIMAL}"),
                "[api]\ntimeout = \"20s\"\n",
            ),
        )?;
        let message = load_err(jail);
        assert!(message.contains("api.timeout"), "{message}");
        assert!(
            message.contains("longer than poll.interval (5s)"),
            "{message}"
        );
        assert!(message.contains("e.g. \"5s\""), "{message}");

        jail.create_file(
            "config.toml",
            &merge(
                &format!("[poll]\ninterval = \"5s\"\n{MINIMAL}"),
                "[api]\ntimeout = \"3s\"\n",
            ),
        )?;
        let settings = Config::load(Some(&path)).unwrap().resolve().unwrap();
        assert_eq!(settings.timeout, Duration::from_secs(3));
        Ok(())
    });
}

#[test]
fn task_labels_are_checked_like_prometheus_label_names() {
    for (labels, key) in [
        ("{ \"team-name\" = \"x\" }", "tasks[0].labels.team-name"),
        ("{ \"9team\" = \"x\" }", "tasks[0].labels.9team"),
        ("{ __team = \"x\" }", "tasks[0].labels.__team"),
        ("{ task_id = \"x\" }", "tasks[0].labels.task_id"),
        ("{ instance = \"x\" }", "tasks[0].labels.instance"),
    ] {
        Jail::expect_with(|jail| {
            jail.create_file(
                "config.toml",
                &format!(
                    "[api]\npublic_key = \"p\"\nprivate_key = \"k\"\n[[tasks]]\nid = \"udts-a\"\nlabels = {labels}\n"
                ),
            )?;
            let message = load_err(jail);
            assert!(message.contains(key), "{key}: {message}");
            Ok(())
        });
    }
    Jail::expect_with(|jail| {
        jail.create_file(
            "config.toml",
            "[api]\npublic_key = \"p\"\nprivate_key = \"k\"\n[discovery]\nenabled = true\n\
             [[discovery.labels]]\nname_regex = \"(\"\nlabels = { team = \"x\" }\n",
        )?;
        assert!(load_err(jail).contains("discovery.labels[0].name_regex"));
        jail.create_file(
            "config.toml",
            "[api]\npublic_key = \"p\"\nprivate_key = \"k\"\n[discovery]\nenabled = true\n\
             [[discovery.labels]]\nname_regex = \"^pay-\"\nlabels = { team = \"payments\", mode = \"x\" }\n",
        )?;
        assert!(load_err(jail).contains("discovery.labels[0].labels.mode"));
        jail.create_file(
            "config.toml",
            "[api]\npublic_key = \"p\"\nprivate_key = \"k\"\n[discovery]\nenabled = true\n\
             [[discovery.labels]]\nname_regex = \"^pay-\"\nlabels = { team = \"payments\", env = \"prod\" }\n",
        )?;
        let settings = Config::load(Some(&jail.directory().join("config.toml")))
            .unwrap()
            .resolve()
            .unwrap();
        let rules = settings.discovery.unwrap().label_rules;
        assert_eq!(
            rules[0].labels,
            [
                ("env".to_string(), "prod".to_string()),
                ("team".to_string(), "payments".to_string())
            ]
        );
        Ok(())
    });
}

/// The value an error suggests after "e.g.", if any.
fn suggestion(message: &str) -> Option<String> {
    let after = message.split("e.g. \"").nth(1)?;
    Some(after.split('"').next()?.to_string())
}

#[test]
fn every_suggested_value_passes() {
    // (section, key, bad value, other keys of the section)
    let cases: &[(&str, &str, &str, &str)] = &[
        ("poll", "interval", "\"100ms\"", ""),
        ("poll", "interval", "\"30\"", ""),
        ("poll", "interval", "45", ""),
        ("api", "timeout", "\"0s\"", ""),
        (
            "poll",
            "full_refresh_interval",
            "\"5m\"",
            "interval = \"1h\"\n",
        ),
        ("poll", "stale_after", "\"10s\"", "interval = \"1m\"\n"),
        ("poll", "stale_after", "\"90\"", "interval = \"1m\"\n"),
    ];
    for (section, key, bad, others) in cases {
        Jail::expect_with(|jail| {
            let path = jail.directory().join("config.toml");
            let with =
                |value: &str| merge(MINIMAL, &format!("[{section}]\n{others}{key} = {value}\n"));
            jail.create_file("config.toml", &with(bad))?;
            let message = load_err(jail);
            assert!(message.contains(&format!("{section}.{key}")), "{message}");
            let good =
                suggestion(&message).unwrap_or_else(|| panic!("no e.g. value in: {message}"));
            jail.create_file("config.toml", &with(&format!("\"{good}\"")))?;
            if let Err(error) = Config::load(Some(&path)) {
                panic!("{section}.{key} = {bad} suggested \"{good}\", which is refused: {error}");
            }
            Ok(())
        });
    }
}

#[test]
fn a_long_timeout_alone_carries_the_interval_default_with_it() {
    Jail::expect_with(|jail| {
        let path = jail.directory().join("config.toml");
        jail.create_file("config.toml", &merge(MINIMAL, "[api]\ntimeout = \"1m\"\n"))?;
        let settings = Config::load(Some(&path)).unwrap().resolve().unwrap();
        assert_eq!(settings.interval, Duration::from_secs(60));
        assert_eq!(settings.timeout, Duration::from_secs(60));
        // An interval written by the user does not yield: the timeout must fit in it.
        jail.create_file(
            "config.toml",
            &merge(
                &merge(MINIMAL, "[api]\ntimeout = \"1m\"\n"),
                "[poll]\ninterval = \"30s\"\n",
            ),
        )?;
        assert!(load_err(jail).contains("api.timeout"));
        Ok(())
    });
}

#[test]
fn a_long_interval_alone_carries_the_full_refresh_default_with_it() {
    Jail::expect_with(|jail| {
        let path = jail.directory().join("config.toml");
        for (interval, full) in [("1h", 3600), ("15m", 900), ("10m", 600), ("30s", 600)] {
            jail.create_file(
                "config.toml",
                &merge(MINIMAL, &format!("[poll]\ninterval = \"{interval}\"\n")),
            )?;
            let settings = Config::load(Some(&path)).unwrap().resolve().unwrap();
            assert_eq!(settings.full_refresh_interval, Duration::from_secs(full));
        }
        Ok(())
    });
}

#[test]
fn typos_name_the_key_and_the_nearest_valid_one() {
    let cases: &[(&str, &str)] = &[
        (
            "[api]\nendpoit = \"https://api.ucloud.cn\"\n",
            "config key api.endpoit is unknown; did you mean api.endpoint?",
        ),
        (
            "[pol]\ninterval = \"30s\"\n",
            "config key pol is unknown; did you mean poll?",
        ),
        (
            "[[tasks]]\nid = \"udts-b\"\nnmae = \"orders\"\n",
            "config key tasks[1].nmae is unknown; did you mean tasks[1].name?",
        ),
    ];
    for (extra, expected) in cases {
        Jail::expect_with(|jail| {
            let text = if extra.starts_with("[[") {
                format!("{MINIMAL}{extra}")
            } else {
                merge(MINIMAL, extra)
            };
            jail.create_file("config.toml", &text)?;
            let message = load_err(jail);
            assert_eq!(message, *expected);
            assert!(!message.contains("default"), "{message}");
            Ok(())
        });
    }
    Jail::expect_with(|jail| {
        jail.create_file("config.toml", MINIMAL)?;
        jail.set_env("UDTS_API__ENDPOIT", "https://api.ucloud.cn");
        assert_eq!(
            load_err(jail),
            "environment variable UDTS_API__ENDPOIT is unknown; did you mean UDTS_API__ENDPOINT?"
        );
        Ok(())
    });
    Jail::expect_with(|jail| {
        jail.create_file("config.toml", MINIMAL)?;
        jail.set_env("UDTS_POLL__INTERVAL", "30");
        let message = load_err(jail);
        assert!(message.contains("UDTS_POLL__INTERVAL"), "{message}");
        assert!(message.contains("e.g. \"30s\""), "{message}");
        Ok(())
    });
}

#[test]
fn sources_are_checked_naming_the_key_and_never_echo_a_password() {
    let cases: &[(&str, &str)] = &[
        (
            "[[sources]]\nname = \"orders\"\nurl = \"mysql://monitor:hunter2-pw@10.0.0.5:3306\"\n",
            "sources[0].url",
        ),
        (
            "[[sources]]\nname = \"orders\"\nurl = \"oracle://monitor@10.0.0.5\"\n",
            "is not a mysql:// or postgresql:// URL",
        ),
        (
            "[[sources]]\nname = \"orders\"\nurl = \"postgresql://monitor:hunter2-pw@10.0.0.6/postgres\"\n",
            "sources[0].url",
        ),
        (
            "[[sources]]\nname = \"orders\"\nurl = \"mysql://m@h\"\nslot_name_regex = \"^udts_\"\n",
            "sources[0].slot_name_regex",
        ),
        (
            "[[sources]]\nname = \"orders\"\nurl = \"postgres://m@h\"\nslots = { \"udts-a\" = \"Bad-Name\" }\n",
            "sources[0].slots.udts-a",
        ),
        (
            "[[sources]]\nname = \"a\"\nurl = \"mysql://m@h\"\ntasks = [\"udts-a\"]\n\
             [[sources]]\nname = \"b\"\nurl = \"mysql://m@h\"\ntasks = [\"udts-a\"]\n",
            "task `udts-a` is listed under both source `a` and source `b`",
        ),
        (
            "[[sources]]\nname = \"a\"\nurl = \"mysql://m@h\"\ntls = \"sometimes\"\n",
            "sources",
        ),
        (
            "[[sources]]\nname = \"a\"\nurl = \"mysql://m@h\"\npassword_env = \"UDTS_TEST_NO_SUCH_VARIABLE\"\n",
            "sources[0].password_env",
        ),
        (
            "[[sources]]\nname = \"a\"\nurl = \"mysql://m@h\"\ntask_name_regex = \"(\"\n",
            "sources[0].task_name_regex",
        ),
    ];
    for (extra, expected) in cases {
        Jail::expect_with(|jail| {
            jail.create_file("config.toml", &format!("{MINIMAL}{extra}"))?;
            let message = load_err(jail);
            assert!(message.contains(expected), "{extra}: {message}");
            assert!(!message.contains("hunter2"), "{message}");
            Ok(())
        });
    }
    // A password file others can read is refused like the key file.
    Jail::expect_with(|jail| {
        jail.create_file("pw", "secret")?;
        std::fs::set_permissions(
            jail.directory().join("pw"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        jail.create_file(
            "config.toml",
            &format!("{MINIMAL}[[sources]]\nname = \"a\"\nurl = \"mysql://m@h\"\npassword_file = \"pw\"\n"),
        )?;
        let message = load_err(jail);
        assert!(message.contains("sources[0].password_file"), "{message}");
        Ok(())
    });
}

#[test]
fn sources_that_cannot_map_a_task_are_named_with_the_fix() {
    let warnings = |extra: &str, discovery: bool| {
        let mut warnings = Vec::new();
        Jail::expect_with(|jail| {
            let discovery = if discovery {
                "[discovery]\nenabled = true\n"
            } else {
                ""
            };
            jail.create_file("config.toml", &format!("{MINIMAL}{discovery}{extra}"))?;
            let config = Config::load(Some(&jail.directory().join("config.toml"))).unwrap();
            warnings = config.resolve().unwrap().source_warnings();
            Ok(())
        });
        warnings
    };
    let source = "[[sources]]\nname = \"orders\"\nurl = \"mysql://m@h\"\n";
    // A listed id that is not polled; the polled one is fine.
    let listed = warnings(
        &format!("{source}tasks = [\"udts-a\", \"udts-gone\"]\n"),
        false,
    );
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].contains("sources `orders` lists task udts-gone, which is not polled"));
    // A name pattern while no static task has a name.
    let named = warnings(&format!("{source}task_name_regex = \"^orders\"\n"), false);
    assert_eq!(named.len(), 1, "{named:?}");
    assert!(
        named[0].contains("task_name_regex matches no task"),
        "{named:?}"
    );
    assert!(named[0].contains("[[tasks]] name"), "{named:?}");
    // With discovery on, any task may still be listed: nothing is judged.
    assert!(warnings(&format!("{source}tasks = [\"udts-gone\"]\n"), true).is_empty());
    // A name given to the static task makes the pattern match.
    let text = format!("{source}task_name_regex = \"^orders\"\n")
        .replace("[[sources]]", "name = \"orders to warehouse\"\n[[sources]]");
    assert!(warnings(&text, false).is_empty());
}

#[test]
fn cutover_settings_follow_the_interval_and_refuse_what_cannot_hold_a_rate() {
    let resolve = |extra: &str| {
        let mut result = None;
        Jail::expect_with(|jail| {
            jail.create_file("config.toml", &format!("{MINIMAL}{extra}"))?;
            result = Some(
                Config::load(Some(&jail.directory().join("config.toml")))
                    .map_err(|e| e.to_string())
                    .and_then(|c| c.resolve().map_err(|e| e.to_string())),
            );
            Ok(())
        });
        result.unwrap()
    };
    let defaults = resolve("").unwrap().exposition.cutover;
    assert_eq!(defaults.max_lag, Duration::from_secs(10));
    assert_eq!(defaults.steady_for, Duration::from_secs(300));
    assert_eq!(defaults.rate_window, Duration::from_secs(60));
    // A long interval stretches the unset window rather than refusing to start.
    let long = resolve("[poll]\ninterval = \"10m\"\n");
    let long = long.unwrap().exposition.cutover;
    assert_eq!(long.rate_window, Duration::from_secs(1200));
    assert_eq!(long.steady_for, Duration::from_secs(1200));
    // A window set too short for two polls is refused by name, with the fix.
    let error =
        resolve("[poll]\ninterval = \"1m\"\n[cutover]\nrate_window = \"30s\"\n").unwrap_err();
    assert!(error.contains("cutover.rate_window"), "{error}");
    assert!(error.contains("at least 2m"), "{error}");
    let error = resolve("[cutover]\nmax_lag = \"0s\"\n").unwrap_err();
    assert!(error.contains("cutover.max_lag"), "{error}");
    let error = resolve("[cutover]\nsteady_for = \"5\"\n").unwrap_err();
    assert!(error.contains("cutover"), "{error}");
    // The data a task judged by UDTS's monitoring may have left: 5MiB unless set, in the
    // units people write, and never 0 or nonsense.
    assert_eq!(defaults.max_remaining, 5 * 1024 * 1024);
    let set = resolve("[cutover]\nmax_remaining = \"2 MB\"\n").unwrap();
    assert_eq!(set.exposition.cutover.max_remaining, 2_000_000);
    let error = resolve("[cutover]\nmax_remaining = \"0B\"\n").unwrap_err();
    assert!(error.contains("cutover.max_remaining"), "{error}");
    let error = resolve("[cutover]\nmax_remaining = \"lots\"\n").unwrap_err();
    assert!(error.contains("max_remaining"), "{error}");
}
