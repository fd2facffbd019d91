//! The README and the binary agree: every family the demo exposes is in one of the README's
//! metric tables with its type, and every family a table names is exposed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;

/// `name -> type` from the README's tables that have a `type` column: a row's first cell may
/// name several families (`a` / `b`), each with its label set.
fn readme_families() -> BTreeMap<String, String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut families = BTreeMap::new();
    let mut typed = false;
    for line in readme.lines() {
        if !line.starts_with('|') {
            typed = false;
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if cells.first() == Some(&"metric") {
            typed = cells.get(1) == Some(&"type");
            continue;
        }
        if !typed || cells.len() < 3 {
            continue;
        }
        for name in cells[0].split('`').skip(1).step_by(2) {
            let name = name.split('{').next().unwrap();
            if name.starts_with("udts_") || name.starts_with("process_") {
                families.insert(name.to_string(), cells[1].to_string());
            }
        }
    }
    families
}

/// `name -> type` from an exposition's `# TYPE` lines.
fn exposed_families(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| {
            let (name, kind) = rest.split_once(' ')?;
            Some((name.to_string(), kind.to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_metric_tables_match_what_the_demo_exposes() {
    let exporter = spawn_exporter(["demo"], std::process::Stdio::null()).await;
    wait_ready_within(exporter.addr, Duration::from_secs(30)).await;
    // The source families appear after the demo source's first round.
    let text = scrape_until(exporter.addr, "source lag exposed", |text| {
        text.contains("udts_task_source_lag_bytes{")
    })
    .await;
    let exposed = exposed_families(&text);
    let documented = readme_families();
    assert!(documented.len() > 40, "tables not found: {documented:?}");
    for (name, kind) in &exposed {
        assert_eq!(
            documented.get(name),
            Some(kind),
            "{name} ({kind}) is exposed but not in a README metrics table with its type"
        );
    }
    for name in documented.keys() {
        assert!(
            exposed.contains_key(name),
            "the README documents {name}, the demo does not expose it"
        );
    }
}
