//! `udts-exporter check`: polls every configured task once and prints what it found, so an
//! operator can see that keys, endpoint and task ids work before deploying.

use std::fmt::Write as _;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::api::{ApiError, Client, StatusData};
use crate::task::TaskSpec;

/// One row of the report.
pub struct CheckRow {
    /// The task polled.
    pub task: TaskSpec,
    /// What the poll returned.
    pub result: Result<StatusData, ApiError>,
}

/// Polls every task once, at most `concurrency` at a time; rows come back in task order.
pub async fn poll_once(
    client: Arc<Client>,
    tasks: Vec<TaskSpec>,
    concurrency: usize,
) -> Vec<CheckRow> {
    let semaphore = Arc::new(Semaphore::new(concurrency.max(1)));
    let handles: Vec<_> = tasks
        .into_iter()
        .map(|task| {
            let client = Arc::clone(&client);
            let semaphore = Arc::clone(&semaphore);
            tokio::spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                let result = client.task_status(&task).await;
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

/// The report as an aligned text table.
pub fn table(rows: &[CheckRow]) -> String {
    let header = ["TASK", "KIND", "STATUS", "PROGRESS", "ERROR"].map(String::from);
    let body: Vec<[String; 5]> = rows
        .iter()
        .map(|row| {
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
                    format!("{} ({})", error, error.reason()),
                ),
            };
            [
                row.task.id.clone(),
                row.task.kind.to_string(),
                status,
                progress,
                error,
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for cells in &body {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for cells in std::iter::once(&header).chain(body.iter()) {
        let mut line = String::new();
        for (cell, width) in cells.iter().zip(widths) {
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
