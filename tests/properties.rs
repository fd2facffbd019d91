//! Property tests: the signer agrees with a plain reference implementation of the documented
//! algorithm for any parameters, and neither the response parser nor the config loader panics
//! on any input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use proptest::prelude::*;
use secrecy::SecretString;
use sha1::{Digest, Sha1};
use udts_exporter::api::model::{Envelope, ListItem, StatusData};
use udts_exporter::api::signer::{sign, Params};

/// The algorithm as `shared/ucloud-api.md` states it, written independently: sort the keys by
/// byte order, concatenate key and value, append the private key, SHA-1, lowercase hex.
fn reference_signature(params: &HashMap<String, String>, private_key: &str) -> String {
    let mut keys: Vec<&String> = params.keys().collect();
    keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let mut text = String::new();
    for key in keys {
        text.push_str(key);
        text.push_str(&params[key]);
    }
    text.push_str(private_key);
    Sha1::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn value_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9+/=&%. -]{0,40}",
        Just(String::new()),
        "[\\u{4e00}-\\u{9fff}]{1,8}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn signer_matches_the_reference(
        params in prop::collection::hash_map("[A-Za-z][A-Za-z0-9.]{0,15}", value_strategy(), 0..12),
        private_key in "[A-Za-z0-9+/=]{1,64}",
    ) {
        let sorted: Params = params.clone().into_iter().collect();
        prop_assert_eq!(
            sign(&sorted, &SecretString::from(private_key.as_str())),
            reference_signature(&params, &private_key)
        );
    }

    #[test]
    fn parser_never_panics_on_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(envelope) = serde_json::from_slice::<Envelope>(&body) {
            if let Some(data) = envelope.data {
                let _ = serde_json::from_value::<StatusData>(data.clone());
                let _ = serde_json::from_value::<Vec<ListItem>>(data);
            }
        }
    }

    #[test]
    fn parser_never_panics_on_any_json_shape(data in json_value(4)) {
        let body = serde_json::json!({"RetCode": 0, "Data": data.clone()}).to_string();
        let envelope: Envelope = serde_json::from_str(&body).unwrap();
        prop_assert_eq!(envelope.ret_code, Some(0));
        if let Some(data) = envelope.data {
            let _ = serde_json::from_value::<StatusData>(data);
        }
        let status = serde_json::json!({"Status": data.clone(), "Progress": data.clone(), "Sync": data.clone(),
                                        "CurRetryCount": data.clone(), "FailedMessage": data});
        // Every field is lenient: a wrong shape is absent, never an error.
        prop_assert!(serde_json::from_value::<StatusData>(status).is_ok());
    }

    #[test]
    fn config_loader_never_panics(text in "[\\[\\]a-z_.=\" 0-9\\n#]{0,200}") {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, &text).unwrap();
        let _ = udts_exporter::config::Config::load(Some(&path));
    }
}

fn json_value(depth: u32) -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        any::<String>().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(depth, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::hash_map(
                prop_oneof![
                    Just("Percentage".to_string()),
                    Just("CurCount".to_string()),
                    Just("BinlogPos".to_string()),
                    Just("Status".to_string()),
                    "[A-Za-z]{1,8}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Loads `extra` merged into a minimal config (one account, one task).
fn load_with(extra: &str) -> Result<udts_exporter::config::Settings, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let api = "[api]\npublic_key = \"p\"\nprivate_key = \"k\"\n";
    let text = match extra.strip_prefix("[api]\n") {
        Some(keys) => format!("{api}{keys}\n"),
        None => format!("{extra}\n{api}"),
    };
    std::fs::write(&path, format!("{text}[[tasks]]\nid = \"udts-a\"\n")).unwrap();
    udts_exporter::config::Config::load(Some(&path))
        .and_then(|config| config.resolve())
        .map_err(|e| e.to_string())
}

/// A duration written as a user would, in seconds, minutes or hours.
fn written_duration(seconds: u64) -> String {
    match seconds {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// One key, set alone to a value its documentation allows (the durations that must cover
/// `poll.interval` are checked against its 30s default; `poll.interval` follows a longer
/// `api.timeout`).
fn single_key() -> impl Strategy<Value = String> {
    let poll = |key: &'static str, range: std::ops::RangeInclusive<u64>| {
        range.prop_map(move |s| format!("[poll]\n{key} = \"{}\"", written_duration(s)))
    };
    prop_oneof![
        poll("interval", 1..=86_400),
        poll("stale_after", 30..=604_800),
        poll("full_refresh_interval", 30..=86_400),
        (1u64..=3600).prop_map(|s| format!("[api]\ntimeout = \"{}\"", written_duration(s))),
        (1usize..=256).prop_map(|n| format!("[api]\nconcurrency = {n}")),
        (1024usize..=1 << 30).prop_map(|n| format!("[api]\nmax_response_bytes = {n}")),
        (0.01f64..10_000.0).prop_map(|r| format!("[poll]\nrequests_per_second = {r}")),
        (1u32..=64).prop_map(|n| format!("[sharding]\ntotal_shards = {n}")),
        (1u64..=86_400).prop_map(|s| format!(
            "[discovery]\nrefresh_interval = \"{}\"",
            written_duration(s)
        )),
        prop_oneof![Just("all"), Just("current")]
            .prop_map(|v| format!("[metrics]\nstatus_series = \"{v}\"")),
        prop_oneof![Just("auto"), Just("status")]
            .prop_map(|v| format!("[poll]\nstrategy = \"{v}\"")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_poll_interval_alone_starts(seconds in 1u64..=86_400) {
        let written = written_duration(seconds);
        let settings = load_with(&format!("[poll]\ninterval = \"{written}\""));
        prop_assert!(settings.is_ok(), "interval = {}: {:?}", written, settings.err());
    }

    #[test]
    fn any_single_key_alone_with_a_valid_value_starts(extra in single_key()) {
        let settings = load_with(&extra);
        prop_assert!(settings.is_ok(), "{}: {:?}", extra, settings.err());
    }
}

/// A GTID set text for `numbers` of server `uuid`, written as runs (`1-3:5`), in any order.
fn gtid_text(uuid: &str, numbers: &std::collections::BTreeSet<u64>, reversed: bool) -> String {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for &n in numbers {
        match runs.last_mut() {
            Some(run) if run.1 + 1 == n => run.1 = n,
            _ => runs.push((n, n)),
        }
    }
    if reversed {
        runs.reverse();
    }
    if runs.is_empty() {
        return String::new();
    }
    let intervals: Vec<String> = runs
        .iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    format!("{uuid}:{}", intervals.join(":"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mysql_gtid_difference_counts_exactly_what_the_task_lacks(
        source_a in prop::collection::btree_set(1u64..60, 0..40),
        source_b in prop::collection::btree_set(1u64..60, 0..40),
        task_a in prop::collection::btree_set(1u64..60, 0..40),
        reversed in any::<bool>(),
    ) {
        use udts_exporter::source::gtid::Gtids;
        const A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        const B: &str = "8A94F357-AAB4-11DF-86AB-C80AA9429562";
        let join = |parts: Vec<String>| parts.into_iter().filter(|p| !p.is_empty()).collect::<Vec<_>>().join(",\n");
        let source = join(vec![gtid_text(A, &source_a, reversed), gtid_text(B, &source_b, false)]);
        let task = join(vec![gtid_text(&A.to_uppercase(), &task_a, !reversed)]);
        let expected = source_a.difference(&task_a).count() as u64 + source_b.len() as u64;
        let missing = Gtids::parse(&source).unwrap().missing_from(&Gtids::parse(&task).unwrap());
        prop_assert_eq!(missing, Some(expected));
    }

    #[test]
    fn gtid_parser_never_panics(text in "[0-9a-fA-F:,\\- \\n]{0,80}") {
        let _ = udts_exporter::source::gtid::Gtids::parse(&text);
    }
}
