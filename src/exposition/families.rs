//! The per-task families in the text format, written straight from the task snapshot: the
//! simple gauges, the status state set, the lag behind the sources and the cut-over outlook.
//! Label values are escaped and capped here, once.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::config::StatusSeries;
use crate::derive::Derived;
use crate::outlook::Outlook;
use crate::source::lag::{LagProblem, MappedLag, SourceLags, TaskLag};
use crate::state::TaskState;
use crate::status;
use crate::task::TaskSpec;

use super::MAX_LABEL_CHARS;

/// A per-task gauge whose value comes from one field.
struct Gauge {
    name: &'static str,
    help: &'static str,
    value: fn(&TaskState) -> Option<f64>,
    /// Whether the value is about the task (left out once stale) rather than about polling it.
    task_value: bool,
    /// Whether a finished task keeps it with `metrics.finished_tasks = "lean"`.
    when_finished: WhenFinished,
}

/// What a gauge does for a finished task exposed lean.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WhenFinished {
    /// Still asked of a finished task: whether it can be read, since when it is in its status,
    /// a paused task's resume deadline.
    Kept,
    /// A value that no longer changes.
    Dropped,
    /// A deadline kept while it is near or past (a paused task's billing expiry, which the
    /// shipped `UDTSTaskExpiringSoon` watches): `deadlines::EXPIRY_NOTICE_SECONDS`.
    WhileNear,
    /// Its position, kept while it is paused at a `[[sources]]` database (the binlog purge
    /// alerts watch it).
    WhilePausedAtSource,
}

/// The simple per-task gauges, in exposition order.
const GAUGES: &[Gauge] = &[
    Gauge {
        name: "udts_task_progress_ratio",
        help: "Full-load completion, 0 to 1 (Progress.Percentage / 100). Read by the background poller.",
        value: |t| percentage(t).map(|p| p / 100.0),
        task_value: true,
        when_finished: WhenFinished::Dropped,
    },
    Gauge {
        name: "udts_task_progress_rows",
        help: "Rows migrated so far (Progress.CurCount). Read by the background poller.",
        value: |t| progress(t, |p| p.cur_count),
        task_value: true,
        when_finished: WhenFinished::Dropped,
    },
    Gauge {
        name: "udts_task_progress_target_rows",
        help: "Rows to migrate in all (Progress.TotalCount). Read by the background poller.",
        value: |t| progress(t, |p| p.total_count),
        task_value: true,
        when_finished: WhenFinished::Dropped,
    },
    Gauge {
        name: "udts_task_elapsed_seconds",
        help: "Time the full load has run (Progress.CurDuration). Read by the background poller.",
        value: |t| progress(t, |p| p.cur_duration),
        task_value: true,
        when_finished: WhenFinished::Dropped,
    },
    Gauge {
        name: "udts_task_estimated_duration_seconds",
        help: "Estimated total duration of the full load (Progress.TotalDuration). Read by the background poller.",
        value: |t| progress(t, |p| p.total_duration),
        task_value: true,
        when_finished: WhenFinished::Dropped,
    },
    Gauge {
        name: "udts_task_retries",
        help: "Retries used after failures (CurRetryCount). Read by the background poller.",
        value: |t| non_negative(t.data.as_ref()?.cur_retry_count),
        task_value: true,
        when_finished: WhenFinished::Dropped,
    },
    Gauge {
        name: "udts_task_max_retries",
        help: "Retries allowed by the task's settings (MaxRetryCount). Read by the background poller.",
        value: |t| non_negative(t.data.as_ref()?.max_retry_count),
        task_value: true,
        when_finished: WhenFinished::Dropped,
    },
    Gauge {
        name: "udts_task_binlog_position",
        help: "Position in the current binlog file of the incremental phase (Sync.BinlogPos). Read by the background poller.",
        value: |t| non_negative(t.data.as_ref()?.sync.as_ref()?.binlog_pos),
        task_value: true,
        when_finished: WhenFinished::WhilePausedAtSource,
    },
    Gauge {
        name: "udts_task_binlog_file_index",
        help: "Numeric suffix of the current binlog file name (Sync.BinlogName). Read by the background poller.",
        value: |t| t.data.as_ref()?.sync.as_ref()?.binlog_file_index(),
        task_value: true,
        when_finished: WhenFinished::WhilePausedAtSource,
    },
    Gauge {
        name: "udts_task_redis_offset",
        help: "Redis replication offset (Progress.RedisOffsetSize). Read by the background poller.",
        value: |t| progress(t, |p| p.redis_offset_size),
        task_value: true,
        when_finished: WhenFinished::Dropped,
    },
    Gauge {
        name: "udts_task_redis_delay_seconds",
        help: "Redis replication delay (Progress.RedisDelayTime). Read by the background poller.",
        value: |t| progress(t, |p| p.redis_delay_time),
        task_value: true,
        when_finished: WhenFinished::Dropped,
    },
    Gauge {
        name: "udts_task_mongo_delay_seconds",
        help: "MongoDB replication delay (Progress.MongoDelayTime). Read by the background poller.",
        value: |t| progress(t, |p| p.mongo_delay_time),
        task_value: true,
        when_finished: WhenFinished::Dropped,
    },
    Gauge {
        name: "udts_task_created_timestamp_seconds",
        help: "Unix time the task was created (ListUDTSTask CreateTime), for discovered tasks.",
        value: |t| t.spec.created,
        task_value: false,
        when_finished: WhenFinished::Dropped,
    },
    Gauge {
        name: "udts_task_expire_timestamp_seconds",
        help: "Unix time the task's billing expires (ListUDTSTask ExpireTime), for discovered tasks.",
        value: |t| t.spec.expires,
        task_value: false,
        when_finished: WhenFinished::WhileNear,
    },
    Gauge {
        name: "udts_task_reclaim_timestamp_seconds",
        help: "Unix time UDTS reclaims the task: 2 days after its billing expires (stopped the day after expiry, reclaimed the day after that), for discovered tasks.",
        value: |t| crate::deadlines::reclaim_at(&t.spec),
        task_value: false,
        when_finished: WhenFinished::Dropped,
    },
    Gauge {
        name: "udts_task_resume_deadline_timestamp_seconds",
        help: "For a Stopped task, the unix time it stops being resumable: 7 days after it entered Stopped (from the task's history).",
        value: crate::deadlines::resume_deadline,
        task_value: false,
        when_finished: WhenFinished::Kept,
    },
    Gauge {
        name: "udts_task_up",
        help: "1 if the last background poll of the task succeeded, 0 if it failed.",
        value: |t| t.up.map(|up| if up { 1.0 } else { 0.0 }),
        task_value: false,
        when_finished: WhenFinished::Kept,
    },
    Gauge {
        name: "udts_task_last_success_timestamp_seconds",
        help: "Unix time of the last successful background poll of the task.",
        value: |t| t.last_success,
        task_value: false,
        when_finished: WhenFinished::Dropped,
    },
    Gauge {
        name: "udts_task_status_since_timestamp_seconds",
        help: "Unix time the background poller first saw the task's current status.",
        value: |t| t.status_since,
        task_value: false,
        when_finished: WhenFinished::Kept,
    },
    Gauge {
        name: "udts_task_last_progress_timestamp_seconds",
        help: "Unix time the background poller last saw rows, percentage, binlog position or Redis offset move.",
        value: |t| t.last_progress,
        task_value: false,
        when_finished: WhenFinished::Dropped,
    },
];

fn non_negative(value: Option<f64>) -> Option<f64> {
    value.filter(|v| *v >= 0.0)
}

fn progress(
    task: &TaskState,
    field: fn(&crate::api::model::Progress) -> Option<f64>,
) -> Option<f64> {
    non_negative(field(task.data.as_ref()?.progress.as_ref()?))
}

/// A percentage outside 0..=100 is not progress; it is absent rather than charted.
fn percentage(task: &TaskState) -> Option<f64> {
    progress(task, |p| p.percentage).filter(|p| *p <= 100.0)
}

/// The per-task lag families and the count of mapped tasks without lag, by source and reason.
fn write_lag_families(
    tasks: &[Arc<TaskState>],
    lags: &SourceLags,
    allowed: impl Fn(&str) -> bool,
    fresh: impl Fn(&TaskState) -> bool,
    out: &mut impl std::fmt::Write,
) {
    if lags.is_empty() {
        return;
    }
    type Field = fn(&TaskLag) -> Option<f64>;
    let families: [(&str, &str, Field); 5] = [
        (
            "udts_task_source_lag_bytes",
            "Binlog (PostgreSQL: WAL) bytes the source wrote after the task's position (absent once its file is purged or its slot lost).",
            |l| l.bytes.map(|b| b as f64),
        ),
        (
            "udts_task_source_lag_files",
            "Source's head binlog file index minus the task's binlog file index.",
            |l| Some(l.files as f64),
        ),
        (
            "udts_task_source_lag_transactions",
            "Transactions in the source's executed GTIDs that the task's BinlogGTID lacks.",
            |l| l.transactions.map(|t| t as f64),
        ),
        (
            "udts_task_source_lag_seconds",
            "How long ago the source wrote the first binlog event the task has not read (resolution about one poll interval).",
            |l| l.seconds,
        ),
        (
            "udts_task_source_binlog_retained",
            "1 while the task's binlog file is still on the source (PostgreSQL: its slot is not lost), 0 once it is purged.",
            |l| Some(f64::from(u8::from(l.retained))),
        ),
    ];
    for (name, help, field) in families {
        if !allowed(name) {
            continue;
        }
        header(out, name, help);
        // The task's labels only, as on every udts_task_* series; its source is on
        // udts_task_info.
        for (task, lag) in tasks.iter().zip(lags) {
            let Some(MappedLag { lag: Ok(lag), .. }) = lag else {
                continue;
            };
            if !fresh(task) {
                continue;
            }
            if let Some(value) = field(lag) {
                let _ = writeln!(out, "{name}{{{}}} {value}", TaskLabels(&task.spec));
            }
        }
    }
    let name = "udts_source_tasks_without_lag";
    if allowed(name) {
        header(
            out,
            name,
            "Tasks mapped to the source that have no lag numbers, by reason (no_position, source_unread, foreign_binlog_file, no_slot).",
        );
        let mut counts: std::collections::BTreeMap<(&str, &str), u64> = Default::default();
        for MappedLag { source, lag } in lags.iter().flatten() {
            for problem in [
                LagProblem::NoPosition,
                LagProblem::SourceUnread,
                LagProblem::ForeignFile,
                LagProblem::NoSlot,
            ] {
                counts.entry((source, problem.reason())).or_default();
            }
            if let Err(problem) = lag {
                *counts.entry((source, problem.reason())).or_default() += 1;
            }
        }
        for ((source, reason), count) in counts {
            let _ = writeln!(
                out,
                "{name}{{source=\"{}\",reason=\"{reason}\"}} {count}",
                Label(source)
            );
        }
    }
}

/// Writes every per-task family of the render's tasks in the text format.
pub fn write_task_families(derived: &Derived, out: &mut impl std::fmt::Write) {
    let (tasks, options) = (&derived.tasks, &derived.options);
    let allowed = |name| options.filter.allows(name);
    // Values of a task not read for `stale_after` are no longer current: leave them out rather
    // than chart hours-old progress as if it were now. Up, info and timestamps stay.
    let fresh = |task: &TaskState| derived.fresh(task);
    if allowed("udts_task_info") {
        header(
            out,
            "udts_task_info",
            "Always 1; the task's attributes and its configured labels (team, env, ...), to join onto other series by task_id.",
        );
        for (i, task) in tasks.iter().enumerate() {
            let spec = &task.spec;
            let _ = write!(
                out,
                "udts_task_info{{{},task_type=\"{}\",project_id=\"{}\",name=\"{}\",mode=\"{}\"",
                TaskLabels(spec),
                spec.kind,
                Label(spec.project_id.as_deref().unwrap_or("")),
                Label(spec.name.as_deref().unwrap_or("")),
                Label(spec.mode.as_deref().unwrap_or("")),
            );
            if let Some(mapped) = derived.lag(i) {
                let _ = write!(out, ",source=\"{}\"", Label(&mapped.source));
            }
            // The operator's own labels (team, env, ...) live here only: one place to join.
            for (name, value) in &spec.labels {
                let _ = write!(out, ",{name}=\"{}\"", Label(value));
            }
            let _ = out.write_str("} 1\n");
        }
    }

    if allowed("udts_task_status") {
        header(
            out,
            "udts_task_status",
            "1 for the task's current status (Status); with metrics.status_series = \"all\", also 0 for each other documented status of a task not finished. Read by the background poller.",
        );
        for task in tasks.iter().filter(|t| fresh(t)) {
            let Some(current) = task.status() else {
                continue;
            };
            let labels = TaskLabels(&task.spec);
            // A finished task's state set would be 15 zeros that never change again.
            let state_set = options.status_series == StatusSeries::All && !derived.lean(task);
            if state_set {
                for documented in status::DOCUMENTED {
                    let value = u8::from(documented == current);
                    let _ = writeln!(
                        out,
                        "udts_task_status{{{labels},status=\"{documented}\"}} {value}"
                    );
                }
            }
            if !state_set || !status::is_documented(current) {
                let _ = writeln!(
                    out,
                    "udts_task_status{{{labels},status=\"{}\"}} 1",
                    Label(current)
                );
            }
        }
    }

    if allowed("udts_task_failure_info") {
        header(
            out,
            "udts_task_failure_info",
            "1 while the task reports a failure; the reason (FailedMessage, first line) as a label. Read by the background poller.",
        );
        for task in tasks.iter().filter(|t| fresh(t)) {
            let message = task
                .data
                .as_ref()
                .and_then(|d| d.failed_message.as_deref())
                .map(first_line)
                .filter(|m| !m.is_empty());
            if let Some(message) = message {
                let _ = writeln!(
                    out,
                    "udts_task_failure_info{{{},message=\"{}\"}} 1",
                    TaskLabels(&task.spec),
                    Label(message),
                );
            }
        }
    }

    for gauge in GAUGES.iter().filter(|g| allowed(g.name)) {
        header(out, gauge.name, gauge.help);
        for task in tasks.iter().filter(|t| !gauge.task_value || fresh(t)) {
            let Some(value) = (gauge.value)(task) else {
                continue;
            };
            let kept = !derived.lean(task)
                || match gauge.when_finished {
                    WhenFinished::Kept => true,
                    WhenFinished::Dropped => false,
                    WhenFinished::WhileNear => {
                        value - derived.at < crate::deadlines::EXPIRY_NOTICE_SECONDS
                    }
                    WhenFinished::WhilePausedAtSource => derived.paused_at_source(task),
                };
            if kept {
                let _ = writeln!(out, "{}{{{}}} {value}", gauge.name, TaskLabels(&task.spec));
            }
        }
    }
    // A finished task exposed lean no longer lags nor heads anywhere, unless it is paused at
    // its source, where its position still matters.
    let at_source = |task: &TaskState| !derived.lean(task) || derived.paused_at_source(task);
    let running = |task: &TaskState| fresh(task) && at_source(task);
    write_lag_families(
        tasks,
        &derived.lags,
        |name: &str| options.filter.allows(name),
        running,
        out,
    );
    write_outlook_families(
        tasks,
        &derived.outlooks,
        |name: &str| options.filter.allows(name),
        at_source,
        out,
    );
}

/// The applied-bytes counter and the cut-over verdict, from the tracker's outlooks (in task
/// order; empty outside a running exporter).
fn write_outlook_families(
    tasks: &[Arc<TaskState>],
    outlooks: &[Outlook],
    allowed: impl Fn(&str) -> bool,
    shown: impl Fn(&TaskState) -> bool,
    out: &mut impl std::fmt::Write,
) {
    if outlooks.is_empty() {
        return;
    }
    let name = "udts_task_source_applied_bytes_total";
    if allowed(name) {
        let _ = writeln!(
            out,
            "# HELP {name} Binlog bytes the task's position advanced (across file rotations), since the exporter started watching it; rate() is the apply throughput.\n# TYPE {name} counter"
        );
        for (task, outlook) in tasks.iter().zip(outlooks).filter(|(t, _)| shown(t)) {
            if let Some(total) = outlook.applied_bytes_total {
                let _ = writeln!(out, "{name}{{{}}} {total}", TaskLabels(&task.spec));
            }
        }
    }
    let name = "udts_task_cutover_ready";
    if allowed(name) {
        header(
            out,
            name,
            "1 when the task is ready for cut-over by [cutover] (lag within max_lag for steady_for, no retry, read recently), 0 when not; absent where it cannot be judged.",
        );
        for (task, outlook) in tasks.iter().zip(outlooks).filter(|(t, _)| shown(t)) {
            if let Some(ready) = outlook.cutover.ready {
                let _ = writeln!(
                    out,
                    "{name}{{{}}} {}",
                    TaskLabels(&task.spec),
                    u8::from(ready)
                );
            }
        }
    }
}

/// `account="...",task_id="..."`, or just `task_id="..."` with a single account.
pub(super) struct TaskLabels<'a>(pub(super) &'a TaskSpec);

impl std::fmt::Display for TaskLabels<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(account) = &self.0.account {
            write!(f, "account=\"{}\",", Label(account))?;
        }
        write!(f, "task_id=\"{}\"", Label(&self.0.id))
    }
}

pub(super) fn header(out: &mut impl std::fmt::Write, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

fn first_line(message: &str) -> &str {
    message
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// A label value as the text format wants it: escaped, without control characters, and at most
/// [`MAX_LABEL_CHARS`] characters, so a hostile or broken value cannot break the exposition or
/// blow up its size.
pub(super) struct Label<'a>(pub(super) &'a str);

impl std::fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (count, c) in self.0.chars().enumerate() {
            if count == MAX_LABEL_CHARS {
                return f.write_char('…');
            }
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c if c.is_control() => f.write_char(' ')?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model::{Progress, StatusData, SyncData};
    use crate::api::ApiError;
    use crate::config::{Config, ExpositionOptions, FinishedTasks, MetricsConfig};
    use crate::task::TaskSpec;
    use crate::time::unix_now;

    fn spec(id: &str) -> TaskSpec {
        TaskSpec {
            project_id: Some("org-1".into()),
            name: Some("orders \"eu\"".into()),
            ..TaskSpec::new(id)
        }
    }

    fn render_with(tasks: Vec<TaskState>, options: &ExpositionOptions) -> String {
        let derived = Derived::of_tasks(
            tasks.into_iter().map(Arc::new).collect(),
            Arc::new(options.clone()),
            unix_now(),
        );
        let mut out = String::new();
        write_task_families(&derived, &mut out);
        out
    }

    /// With the full state set, the shape these golden tests pin (the default writes the
    /// current status only: `finished_tasks_cost_at_most_five_series`).
    fn render_tasks(tasks: Vec<TaskState>) -> String {
        let options = ExpositionOptions {
            status_series: StatusSeries::All,
            ..ExpositionOptions::default()
        };
        render_with(tasks, &options)
    }

    /// A task in `status` read at `at`, in it since then, with every value a task may carry.
    fn finished(id: &str, status: &str, at: f64) -> TaskState {
        let data = StatusData {
            status: Some(status.into()),
            cur_retry_count: Some(0.0),
            max_retry_count: Some(3.0),
            progress: Some(Progress {
                percentage: Some(100.0),
                cur_count: Some(2000.0),
                total_count: Some(2000.0),
                ..Default::default()
            }),
            sync: Some(SyncData {
                binlog_name: Some("mysql-bin.000006".into()),
                binlog_pos: Some(154.0),
                binlog_gtid: None,
            }),
            failed_message: status
                .ends_with("Unrecoverable")
                .then(|| "disk full".into()),
        };
        let spec = TaskSpec {
            created: Some(at - 86_400.0),
            expires: Some(at + 30.0 * 86_400.0),
            ..spec(id)
        };
        TaskState::new(spec)
            .after_poll(Ok(data), at)
            .with_status_since(at)
    }

    #[test]
    fn finished_tasks_cost_at_most_five_series() {
        let at = unix_now();
        let count = |state: TaskState, options: &ExpositionOptions| {
            let text = render_with(vec![state], options);
            samples(&text).len()
        };
        let default = ExpositionOptions::default();
        // info, status, up, since; a paused task's resume deadline; an unrecoverable one's
        // failure reason.
        assert_eq!(count(finished("d", "Done", at), &default), 4);
        assert_eq!(count(finished("s", "Success", at), &default), 4);
        assert_eq!(count(finished("p", "Stopped", at), &default), 5);
        assert_eq!(count(finished("u", "FailedUnrecoverable", at), &default), 5);
        let text = render_with(vec![finished("u", "FailedUnrecoverable", at)], &default);
        assert!(text.contains("udts_task_failure_info{task_id=\"u\",message=\"disk full\"} 1"));
        assert!(text.contains("udts_task_status{task_id=\"u\",status=\"FailedUnrecoverable\"} 1"));
        // A paused task whose billing expires within 7 days keeps its expiry: the shipped
        // UDTSTaskExpiringSoon still watches it.
        let mut expiring = finished("e", "Stopped", at);
        Arc::make_mut(&mut expiring.spec).expires = Some(at + 3.0 * 86_400.0);
        let text = render_with(vec![expiring], &default);
        assert_eq!(samples(&text).len(), 6);
        assert!(text.contains("udts_task_expire_timestamp_seconds{task_id=\"e\"}"));
        // The same task running has every family back; so does a finished one with `full`.
        let running = count(finished("r", "Syncing", at), &default);
        assert!(running >= 12, "{running}");
        let full = ExpositionOptions {
            finished_tasks: FinishedTasks::Full,
            ..ExpositionOptions::default()
        };
        assert_eq!(count(finished("d", "Done", at), &full), running);
        // The full state set is for running tasks only unless finished tasks are full too.
        let all = ExpositionOptions {
            status_series: StatusSeries::All,
            ..ExpositionOptions::default()
        };
        assert_eq!(count(finished("d", "Done", at), &all), 4);
        assert_eq!(count(finished("r", "Syncing", at), &all), running + 15);
    }

    fn samples(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn loading_task_renders_exact_series() {
        let data = StatusData {
            status: Some("Loading".into()),
            cur_retry_count: Some(0.0),
            max_retry_count: Some(3.0),
            progress: Some(Progress {
                total_count: Some(2000.0),
                cur_count: Some(500.0),
                total_duration: Some(400.0),
                cur_duration: Some(100.0),
                percentage: Some(25.0),
                ..Default::default()
            }),
            sync: Some(SyncData {
                binlog_name: Some("mysql-bin.000006".into()),
                binlog_pos: Some(154.0),
                binlog_gtid: Some("uuid:1-10".into()),
            }),
            failed_message: None,
        };
        // Its history said it entered Loading at the first read.
        let state = TaskState::new(spec("udts-a"))
            .after_poll(Ok(data), 1700000000.5)
            .with_status_since(1700000000.5);
        let text = render_tasks(vec![state]);
        let mut expected = vec![
            "udts_task_info{task_id=\"udts-a\",task_type=\"transfer\",project_id=\"org-1\",name=\"orders \\\"eu\\\"\",mode=\"\"} 1".to_string(),
        ];
        for s in status::DOCUMENTED {
            let v = u8::from(s == "Loading");
            expected.push(format!(
                "udts_task_status{{task_id=\"udts-a\",status=\"{s}\"}} {v}"
            ));
        }
        for line in [
            "udts_task_progress_ratio{task_id=\"udts-a\"} 0.25",
            "udts_task_progress_rows{task_id=\"udts-a\"} 500",
            "udts_task_progress_target_rows{task_id=\"udts-a\"} 2000",
            "udts_task_elapsed_seconds{task_id=\"udts-a\"} 100",
            "udts_task_estimated_duration_seconds{task_id=\"udts-a\"} 400",
            "udts_task_retries{task_id=\"udts-a\"} 0",
            "udts_task_max_retries{task_id=\"udts-a\"} 3",
            "udts_task_binlog_position{task_id=\"udts-a\"} 154",
            "udts_task_binlog_file_index{task_id=\"udts-a\"} 6",
            "udts_task_up{task_id=\"udts-a\"} 1",
            "udts_task_last_success_timestamp_seconds{task_id=\"udts-a\"} 1700000000.5",
            "udts_task_status_since_timestamp_seconds{task_id=\"udts-a\"} 1700000000.5",
            "udts_task_last_progress_timestamp_seconds{task_id=\"udts-a\"} 1700000000.5",
        ] {
            expected.push(line.to_string());
        }
        assert_eq!(samples(&text), expected);
    }

    #[test]
    fn every_family_has_help_and_type_once() {
        let text = render_tasks(vec![]);
        let helps = text.lines().filter(|l| l.starts_with("# HELP")).count();
        let types = text.lines().filter(|l| l.starts_with("# TYPE")).count();
        assert_eq!(helps, GAUGES.len() + 3);
        assert_eq!(types, helps);
        assert!(samples(&text).is_empty());
    }

    #[test]
    fn unpolled_task_has_only_its_info_series() {
        let text = render_tasks(vec![TaskState::new(spec("udts-new"))]);
        assert_eq!(samples(&text).len(), 1);
        assert!(samples(&text)[0].starts_with("udts_task_info{task_id=\"udts-new\""));
    }

    #[test]
    fn unknown_status_gets_its_own_series_at_one() {
        let data = StatusData {
            status: Some("Teleporting".into()),
            ..Default::default()
        };
        let text = render_tasks(vec![TaskState::new(spec("t")).after_poll(Ok(data), 1.0)]);
        let status: Vec<_> = samples(&text)
            .into_iter()
            .filter(|l| l.starts_with("udts_task_status{"))
            .collect();
        assert_eq!(status.len(), 17);
        assert!(status
            .iter()
            .filter(|l| l.ends_with(" 1"))
            .eq(["udts_task_status{task_id=\"t\",status=\"Teleporting\"} 1"].iter()));
    }

    #[test]
    fn failure_message_is_one_escaped_capped_line() {
        let long = "x".repeat(500);
        let data = StatusData {
            status: Some("Failed".into()),
            failed_message: Some(format!(
                "\n  access denied for \"root\"\tnow\nstack...{long}"
            )),
            ..Default::default()
        };
        let text = render_tasks(vec![TaskState::new(spec("t")).after_poll(Ok(data), 1.0)]);
        let line = samples(&text)
            .into_iter()
            .find(|l| l.starts_with("udts_task_failure_info"))
            .unwrap();
        assert_eq!(
            line,
            "udts_task_failure_info{task_id=\"t\",message=\"access denied for \\\"root\\\" now\"} 1"
        );

        let data = StatusData {
            status: Some("Failed".into()),
            failed_message: Some(long),
            ..Default::default()
        };
        let text = render_tasks(vec![TaskState::new(spec("t")).after_poll(Ok(data), 1.0)]);
        let line = samples(&text)
            .into_iter()
            .find(|l| l.starts_with("udts_task_failure_info"))
            .unwrap();
        assert!(line.contains(&format!("{}…\"", "x".repeat(MAX_LABEL_CHARS))));
    }

    #[test]
    fn missing_or_absurd_values_yield_no_series() {
        let data = StatusData {
            status: Some("Loading".into()),
            progress: Some(Progress {
                percentage: Some(1e308),
                cur_count: Some(-5.0),
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = render_tasks(vec![TaskState::new(spec("t")).after_poll(Ok(data), 1.0)]);
        assert!(!text.contains("udts_task_progress_ratio{"));
        assert!(!text.contains("udts_task_progress_rows{"));
        assert!(!text.contains("udts_task_retries{"));
        assert!(!text.contains("udts_task_binlog_position{"));
    }

    #[test]
    fn failed_poll_reports_down_and_keeps_values() {
        let data = StatusData {
            status: Some("Syncing".into()),
            ..Default::default()
        };
        let state = TaskState::new(spec("t"))
            .after_poll(Ok(data), 1.0)
            .after_poll(Err(ApiError::Timeout(String::new())), 2.0);
        let text = render_tasks(vec![state]);
        assert!(text.contains("udts_task_up{task_id=\"t\"} 0\n"));
        assert!(text.contains("udts_task_status{task_id=\"t\",status=\"Syncing\"} 1\n"));
        assert!(text.contains("udts_task_last_success_timestamp_seconds{task_id=\"t\"} 1\n"));
    }

    fn options(metrics: MetricsConfig) -> ExpositionOptions {
        let config = Config {
            metrics,
            ..Config::default()
        };
        let mut config = config;
        config.api.public_key = "p".into();
        config.api.private_key = Some("k".into());
        config.tasks = vec![crate::config::TaskConfig {
            id: "t".into(),
            kind: Default::default(),
            project_id: None,
            name: None,
            account: None,
            labels: Default::default(),
        }];
        config.resolve().unwrap().exposition
    }

    fn syncing(id: &str) -> TaskState {
        let data = StatusData {
            status: Some("Syncing".into()),
            ..Default::default()
        };
        TaskState::new(spec(id)).after_poll(Ok(data), unix_now())
    }

    #[test]
    fn current_status_mode_writes_one_status_series_per_task() {
        let options = options(MetricsConfig {
            status_series: StatusSeries::Current,
            ..Default::default()
        });
        let text = render_with(vec![syncing("t")], &options);
        let status: Vec<_> = samples(&text)
            .into_iter()
            .filter(|l| l.starts_with("udts_task_status{"))
            .collect();
        assert_eq!(
            status,
            ["udts_task_status{task_id=\"t\",status=\"Syncing\"} 1"]
        );
    }

    #[test]
    fn allow_and_deny_lists_select_families() {
        let options = options(MetricsConfig {
            allow: vec!["udts_task_(up|status)".into()],
            deny: vec!["udts_task_status".into()],
            ..Default::default()
        });
        let text = render_with(vec![syncing("t")], &options);
        assert_eq!(samples(&text), ["udts_task_up{task_id=\"t\"} 1"]);
    }

    #[test]
    fn account_label_comes_first_when_set() {
        let mut state = syncing("t");
        Arc::make_mut(&mut state.spec).account = Some("prod".into());
        let text = render_tasks(vec![state]);
        assert!(
            text.contains("udts_task_up{account=\"prod\",task_id=\"t\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn stale_tasks_keep_only_up_info_and_timestamps() {
        let options = ExpositionOptions {
            stale_after: Some(std::time::Duration::from_secs(90)),
            ..Default::default()
        };
        let data = StatusData {
            status: Some("Loading".into()),
            failed_message: Some("slow disk".into()),
            progress: Some(Progress {
                percentage: Some(40.0),
                ..Default::default()
            }),
            ..Default::default()
        };
        let now = unix_now();
        let fresh = TaskState::new(spec("fresh")).after_poll(Ok(data.clone()), now - 10.0);
        let stale = TaskState::new(spec("stale"))
            .after_poll(Ok(data), now - 600.0)
            .with_status_since(now - 600.0)
            .after_poll(Err(ApiError::Timeout(String::new())), now - 5.0);
        let text = render_with(vec![fresh, stale], &options);
        let stale_lines: Vec<_> = samples(&text)
            .into_iter()
            .filter(|l| l.contains("task_id=\"stale\""))
            .map(|l| l.split('{').next().unwrap())
            .collect();
        assert_eq!(
            stale_lines,
            [
                "udts_task_info",
                "udts_task_up",
                "udts_task_last_success_timestamp_seconds",
                "udts_task_status_since_timestamp_seconds",
                "udts_task_last_progress_timestamp_seconds",
            ]
        );
        assert!(text.contains("udts_task_progress_ratio{task_id=\"fresh\"} 0.4\n"));
        assert!(
            text.contains("udts_task_failure_info{task_id=\"fresh\",message=\"slow disk\"} 1\n")
        );
    }
}
