//! `udts-exporter check`: polls every configured task once and prints what it found, so an
//! operator can see that keys, endpoint and task ids work before deploying.

use std::fmt::Write as _;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::api::{ApiError, StatusData};
use crate::discovery::DiscoveredTask;
use crate::runtime::Runtime;
use crate::state::TaskState;
use crate::task::TaskSpec;
use crate::task_view::{TaskList, Views};
use crate::time::unix_now;

/// One row of the report.
pub struct CheckRow {
    /// The task polled.
    pub task: TaskSpec,
    /// What the poll returned.
    pub result: Result<StatusData, ApiError>,
}

/// Polls every task once, at most `api.concurrency` at a time; rows come back in task order.
pub async fn poll_once(runtime: Arc<Runtime>, tasks: Vec<TaskSpec>) -> Vec<CheckRow> {
    let semaphore = Arc::new(Semaphore::new(runtime.settings.concurrency));
    let handles: Vec<_> = tasks
        .into_iter()
        .map(|task| {
            let runtime = Arc::clone(&runtime);
            let semaphore = Arc::clone(&semaphore);
            tokio::spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                let result = match runtime.client(&task.account) {
                    Some(client) => client.task_status(&task).await,
                    None => Err(ApiError::Network("no client for the task's account".into())),
                };
                CheckRow { task, result }
            })
        })
        .collect();
    let mut rows = Vec::with_capacity(handles.len());
    for handle in handles {
        if let Ok(row) = handle.await {
            rows.push(row);
        }
    }
    rows
}

/// The report as the JSON of `GET /api/v1/tasks`: the same task objects, worst first.
pub fn json(rows: Vec<CheckRow>, poll_interval: std::time::Duration) -> String {
    let now = unix_now();
    let states: Vec<Arc<TaskState>> = rows
        .into_iter()
        .map(|row| Arc::new(TaskState::new(row.task).after_poll(row.result, now)))
        .collect();
    let views = Views::build(&states, &Vec::new(), now);
    let list = TaskList {
        generated_at: now,
        poll_interval_seconds: poll_interval.as_secs_f64(),
        tasks: views.tasks.iter().collect(),
    };
    serde_json::to_string_pretty(&list).unwrap_or_default()
}

/// The report as an aligned text table.
pub fn table(rows: &[CheckRow]) -> String {
    let with_account = rows.iter().any(|row| row.task.account.is_some());
    let mut header = vec!["TASK", "KIND", "STATUS", "PROGRESS", "ERROR"];
    if with_account {
        header.insert(0, "ACCOUNT");
    }
    let body = rows.iter().map(|row| {
        let (status, progress, error) = match &row.result {
            Ok(data) => (
                data.status.clone().unwrap_or_else(|| "-".into()),
                progress_summary(data),
                data.failed_message
                    .as_deref()
                    .and_then(|m| m.lines().next())
                    .unwrap_or("")
                    .to_string(),
            ),
            Err(error) => (
                "-".into(),
                "-".into(),
                match error.hint() {
                    Some(hint) => format!("{error} ({}: {hint})", error.reason()),
                    None => format!("{error} ({})", error.reason()),
                },
            ),
        };
        let mut cells = vec![
            row.task.id.clone(),
            row.task.kind.to_string(),
            status,
            progress,
            error,
        ];
        if with_account {
            cells.insert(0, row.task.account.clone().unwrap_or_default());
        }
        cells
    });
    aligned(&header, body)
}

/// What `discover` found, as an aligned text table.
pub fn discovered_table(tasks: &[&DiscoveredTask]) -> String {
    let with_account = tasks.iter().any(|t| t.spec.account.is_some());
    let mut header = vec!["TASK", "KIND", "NAME", "MODE", "STATUS"];
    if with_account {
        header.insert(0, "ACCOUNT");
    }
    let body = tasks.iter().map(|task| {
        let spec = &task.spec;
        let mut cells = vec![
            spec.id.clone(),
            spec.kind.to_string(),
            spec.name.clone().unwrap_or_else(|| "-".into()),
            spec.mode.clone().unwrap_or_else(|| "-".into()),
            task.listed.status.clone().unwrap_or_else(|| "-".into()),
        ];
        if with_account {
            cells.insert(0, spec.account.clone().unwrap_or_default());
        }
        cells
    });
    aligned(&header, body)
}

/// Left-aligned columns two spaces apart, header first.
fn aligned(header: &[&str], body: impl Iterator<Item = Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| h.to_string()).collect())
        .chain(body)
        .collect();
    let mut widths = vec![0; header.len()];
    for cells in &rows {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for cells in &rows {
        let mut line = String::new();
        for (cell, width) in cells.iter().zip(&widths) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// Percentage for full loads, binlog file and position or replication delay for incremental
/// tasks.
fn progress_summary(data: &StatusData) -> String {
    let progress = data.progress.as_ref();
    if let Some(percentage) = progress.and_then(|p| p.percentage) {
        return format!("{percentage}%");
    }
    if let Some(sync) = &data.sync {
        if let (Some(name), Some(pos)) = (&sync.binlog_name, sync.binlog_pos) {
            return format!("{name}:{pos}");
        }
    }
    if let Some(delay) = progress.and_then(|p| p.redis_delay_time.or(p.mongo_delay_time)) {
        return format!("delay {delay}s");
    }
    "-".into()
}
