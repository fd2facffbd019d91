//! Label values from the API and the operator (a task's name, its labels) through the
//! exposition writer: every line parses as the text format, and the value reads back as the
//! input capped at 200 characters (marked with …) with control characters but the newline
//! turned into spaces.
#![no_main]

#[path = "exposition_check.rs"]
mod exposition_check;

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use udts_exporter::config::ExpositionOptions;
use udts_exporter::derive::Derived;
use udts_exporter::state::TaskState;
use udts_exporter::task::TaskSpec;

fn expected(input: &str) -> String {
    let mut out: String = input
        .chars()
        .take(200)
        .map(|c| if c != '\n' && c.is_control() { ' ' } else { c })
        .collect();
    if input.chars().count() > 200 {
        out.push('…');
    }
    out
}

fuzz_target!(|input: &str| {
    let spec = TaskSpec {
        name: Some(input.to_string()),
        labels: vec![("team".into(), input.to_string())],
        ..TaskSpec::new(input)
    };
    let derived = Derived::of_tasks(vec![Arc::new(TaskState::new(spec))], Arc::new(ExpositionOptions::default()), 1.8e9);
    let mut text = String::new();
    udts_exporter::exposition::write_task_families(&derived, &mut text);
    exposition_check::check(&text);
    let info = text
        .lines()
        .find(|l| l.starts_with("udts_task_info{"))
        .expect("the info series");
    let (series, _) = info.rsplit_once(' ').expect("a value");
    let labels = exposition_check::labels(&series["udts_task_info".len()..], info);
    let want = expected(input);
    for key in ["task_id", "name", "team"] {
        let got = labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str());
        assert_eq!(got, Some(want.as_str()), "{key}");
    }
});
