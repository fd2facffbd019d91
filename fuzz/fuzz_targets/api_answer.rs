//! The gateway's answers: the envelope and RetCode, then `GetUDTSTaskStatus`,
//! `ListUDTSTask`, `GetUDTSTaskHistory` and `QueryMetricDataSummary` data, decoded by the
//! client's own functions. A monitoring sample kept is always a measurement. Never a
//! panic; a failure is classified with a reason; a decoded task renders into an exposition and
//! a JSON view that hold.
#![no_main]

#[path = "exposition_check.rs"]
mod exposition_check;

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use udts_exporter::api::decode;
use udts_exporter::api::model::entered_current_status;
use udts_exporter::config::ExpositionOptions;
use udts_exporter::derive::Derived;
use udts_exporter::state::TaskState;
use udts_exporter::task::TaskSpec;

fuzz_target!(|body: &[u8]| {
    let data = match decode::envelope(body, Some("uuid".into())) {
        Ok(data) => data,
        Err(error) => {
            assert!(udts_exporter::api::ERROR_REASONS.contains(&error.reason()));
            assert!(!error.to_string().is_empty());
            let _ = error.hint();
            return;
        }
    };
    let history = decode::history(data.clone());
    let _ = entered_current_status(&history, "Syncing");
    let page = udts_exporter::api::monitor::summary_page(&data);
    for (_, samples) in &page.resources {
        for sample in samples {
            assert!(sample.value.is_finite() && sample.value >= 0.0, "{sample:?}");
            assert!(sample.at.is_finite() && sample.at > 0.0, "{sample:?}");
            assert!(sample.metric.to_base_unit(sample.value).is_finite());
        }
    }
    if let Ok(items) = decode::list_page(data.clone()) {
        for item in items {
            let _ = item.listed_state();
        }
    }
    let Ok(status) = decode::status_data(data) else {
        return;
    };
    let state = Arc::new(TaskState::new(TaskSpec::new("udts-fuzz")).after_poll(Ok(status), 1.8e9));
    let derived = Derived::of_tasks(vec![state], Arc::new(ExpositionOptions::default()), 1.8e9);
    let mut text = String::new();
    udts_exporter::exposition::write_task_families(&derived, &mut text);
    exposition_check::check(&text);
    let views = udts_exporter::task_view::Views::build(&derived);
    let json = serde_json::to_string(&views.tasks[0]).expect("a view serializes");
    let _: serde_json::Value = serde_json::from_str(&json).expect("and parses back");
});
