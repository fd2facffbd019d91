//! The families of UDTS's own monitoring numbers, from the monitoring board: one gauge per
//! metric for each task with a sample newer than five monitoring intervals, the time of the
//! newest sample served, whether each account's last round of reads succeeded, and the samples
//! left out.

use crate::api::monitor::MonitorMetric;
use crate::derive::Derived;
use crate::monitor::TaskMonitor;
use crate::state::TaskState;

use super::families::{header, Label, TaskLabels};

/// Each metric's family name and help.
const FAMILIES: [(MonitorMetric, &str, &str); MonitorMetric::ALL.len()] = [
    (MonitorMetric::SyncDelay, "udts_task_sync_delay_seconds", "Sync delay as UDTS measures it (monitoring: udts_sync_syncing_delay_time; MySQL binlog event time, MongoDB oplog time, Redis last replication update)."),
    (MonitorMetric::RemainingBytes, "udts_task_sync_remaining_bytes", "Data not yet applied to the target (monitoring: udts_sync_remaining_binlogsize)."),
    (MonitorMetric::EstimatedRemaining, "udts_task_sync_estimated_remaining_seconds", "UDTS's estimate of the time to apply what remains, MySQL only (monitoring: udts_sync_estimate_remaining_seconds)."),
    (MonitorMetric::SourceReadBytes, "udts_task_source_read_bytes_per_second", "Bytes a second UDTS reads from the source (monitoring: udts_source_data_size)."),
    (MonitorMetric::SourceReadRows, "udts_task_source_read_rows_per_second", "Rows a second UDTS reads from the source, MySQL incremental only (monitoring: udts_source_data_count)."),
    (MonitorMetric::TargetWriteBytes, "udts_task_target_write_bytes_per_second", "Bytes a second UDTS writes to the target (monitoring: udts_target_data_size)."),
    (MonitorMetric::TargetWriteRows, "udts_task_target_write_rows_per_second", "Rows a second UDTS writes to the target, MySQL incremental only (monitoring: udts_target_data_count)."),
    (MonitorMetric::SourceLatency, "udts_task_source_network_latency_seconds", "Network latency between UDTS and the source (monitoring: udts_source_network_delay, served in seconds)."),
    (MonitorMetric::TargetLatency, "udts_task_target_network_latency_seconds", "Network latency between UDTS and the target (monitoring: udts_target_network_delay, served in seconds)."),
];

/// Writes the monitoring families of the render's tasks.
pub fn write_monitor_families(
    derived: &Derived,
    allowed: impl Fn(&str) -> bool,
    out: &mut impl std::fmt::Write,
) {
    let monitor = &derived.monitor;
    if monitor.interval.is_none() {
        return;
    }
    // Only the tasks with a sample that may be shown, in task order.
    let current: Vec<(&TaskState, TaskMonitor)> = derived
        .tasks
        .iter()
        .enumerate()
        .filter(|(_, task)| !derived.lean(task))
        .filter_map(|(i, task)| Some((&**task, derived.monitor(i)?)))
        .collect();
    for (metric, name, help) in FAMILIES {
        if !allowed(name) {
            continue;
        }
        header(out, name, help);
        for (task, samples) in &current {
            if let Some((_, value)) = samples.get(metric) {
                let _ = writeln!(out, "{name}{{{}}} {value}", TaskLabels(&task.spec));
            }
        }
    }
    let name = "udts_task_monitor_sample_timestamp_seconds";
    if allowed(name) {
        header(
            out,
            name,
            "Unix time of the newest monitoring sample served for the task (samples arrive about a minute late).",
        );
        for (task, samples) in &current {
            if let Some(at) = samples.newest() {
                let _ = writeln!(out, "{name}{{{}}} {at}", TaskLabels(&task.spec));
            }
        }
    }
    let name = "udts_monitor_up";
    if allowed(name) {
        header(
            out,
            name,
            "1 when the last round of the account's monitoring reads (QueryMetricDataSummary) succeeded, 0 when one failed.",
        );
        for (account, up) in &monitor.up {
            match account {
                Some(account) => {
                    let _ = writeln!(
                        out,
                        "{name}{{account=\"{}\"}} {}",
                        Label(account),
                        u8::from(*up)
                    );
                }
                None => {
                    let _ = writeln!(out, "{name} {}", u8::from(*up));
                }
            }
        }
    }
    let name = "udts_monitor_samples_dropped_total";
    if allowed(name) {
        let _ = writeln!(
            out,
            "# HELP {name} Monitoring samples left out: of a resource that is no polled task (unknown_resource), or not a measurement, an error, or older than one kept (invalid_or_old).\n# TYPE {name} counter"
        );
        for reason in ["invalid_or_old", "unknown_resource"] {
            let count = monitor.dropped.get(reason).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {count}");
        }
    }
}
