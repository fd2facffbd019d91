use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::api::model::{Progress, StatusData, SyncData};
use crate::config::Cutover;
use crate::source::{BinlogReading, SourceSnapshot};
use crate::task::TaskSpec;

fn options() -> ExpositionOptions {
    ExpositionOptions {
        poll_interval: Duration::from_secs(5),
        cutover: Cutover {
            max_lag: Duration::from_secs(10),
            steady_for: Duration::from_secs(60),
            rate_window: Duration::from_secs(30),
        },
        ..Default::default()
    }
}

/// A source that has written `written` bytes, its head in file 7.
fn source(written: u64) -> Arc<SourceSnapshot> {
    let reading = BinlogReading {
        head_file: "mysql-bin.000007".into(),
        head_position: 4 + written,
        files: vec![("mysql-bin.000007".into(), 4 + written)],
        gtid_text: None,
    };
    Arc::new(SourceSnapshot {
        written_total: written,
        reading: Some(Arc::new(reading.parse().unwrap())),
        ..SourceSnapshot::default()
    })
}

fn syncing(position: u64, retries: f64) -> StatusData {
    StatusData {
        status: Some("Syncing".into()),
        cur_retry_count: Some(retries),
        sync: Some(SyncData {
            binlog_name: Some("mysql-bin.000007".into()),
            binlog_pos: Some(position as f64),
            binlog_gtid: None,
        }),
        ..StatusData::default()
    }
}

fn lag(bytes: u64, seconds: f64) -> TaskLag {
    TaskLag {
        bytes: Some(bytes),
        files: 0,
        transactions: None,
        seconds: Some(seconds),
        retained: true,
        at_oldest_file: false,
    }
}

/// One render of a single MySQL task at `t` seconds after `start`.
struct Run {
    tracker: Tracker,
    start: Instant,
    options: ExpositionOptions,
}

impl Run {
    fn new() -> Self {
        Self {
            tracker: Tracker::default(),
            start: Instant::now(),
            options: options(),
        }
    }

    fn at(&mut self, t: u64, data: StatusData, written: u64, task_lag: TaskLag) -> Outlook {
        let unix = 1_800_000_000.0 + t as f64;
        let state = Arc::new(TaskState::new(TaskSpec::new("udts-a")).after_poll(Ok(data), unix));
        let lags = vec![Some(("orders", Ok(task_lag)))];
        let sources = HashMap::from([("orders".to_string(), source(written))]);
        let now = self.start + Duration::from_secs(t);
        self.tracker
            .observe(&[state], &lags, &sources, &self.options, now, unix)
            .remove(0)
    }
}

#[test]
fn a_task_catching_up_has_its_rates_and_a_catch_up_eta() {
    let mut run = Run::new();
    // The source writes 200 B/s; the task applies 1,000 B/s from 60,000 bytes behind.
    let mut last = None;
    for t in (0..=40).step_by(5) {
        let written = 100_000 + 200 * t;
        let position = 4 + 40_000 + 1_000 * t;
        let behind = written + 4 - position;
        last = Some(run.at(t, syncing(position, 0.0), written, lag(behind, 30.0)));
    }
    let outlook = last.unwrap();
    assert_eq!(outlook.applied_bytes_total, Some(40_000));
    let throughput = outlook.throughput.unwrap();
    assert_eq!(throughput.applied_bytes_per_second, Some(1_000.0));
    assert_eq!(throughput.source_written_bytes_per_second, Some(200.0));
    let eta = outlook.eta.unwrap();
    assert_eq!(eta.basis, EtaBasis::CatchUp);
    // 28,000 bytes behind, closing at 800 B/s.
    assert_eq!(outlook.lag_bytes, Some(28_000));
    assert_eq!(eta.seconds, 35);
    assert_eq!(outlook.cutover.ready, Some(false));
    assert_eq!(outlook.cutover.blocking, ["lag 30 s over 10 s"]);
}

#[test]
fn falling_behind_has_no_eta_and_a_move_back_never_decreases_the_counter() {
    let mut run = Run::new();
    let mut last = None;
    for t in (0..=40).step_by(5) {
        let written = 100_000 + 2_000 * t;
        let position = 4 + 1_000 * t;
        last = Some(run.at(
            t,
            syncing(position, 0.0),
            written,
            lag(written - 1_000 * t, 60.0),
        ));
    }
    let outlook = last.unwrap();
    assert_eq!(
        outlook.eta, None,
        "not catching up: no ETA, never a negative one"
    );
    assert_eq!(outlook.applied_bytes_total, Some(40_000));
    // Restarted from an earlier point: the counter holds, then counts from there.
    let outlook = run.at(45, syncing(4, 0.0), 190_000, lag(190_000, 60.0));
    assert_eq!(outlook.applied_bytes_total, Some(40_000));
    let outlook = run.at(50, syncing(504, 0.0), 200_000, lag(199_500, 60.0));
    assert_eq!(outlook.applied_bytes_total, Some(40_500));
}

#[test]
fn readiness_turns_after_steady_for_and_back_within_one_poll_of_a_spike() {
    let mut run = Run::new();
    let at_head = |t: u64| syncing(4 + 1_000 + t, 0.0);
    let mut verdicts = Vec::new();
    for t in (0..=70).step_by(5) {
        let outlook = run.at(t, at_head(t), 1_000 + t, lag(0, 1.0));
        verdicts.push((t, outlook.cutover.ready));
    }
    // No verdict before a minute of samples, ready from a minute on.
    assert!(
        verdicts
            .iter()
            .filter(|(t, _)| *t < 60)
            .all(|(_, r)| r.is_none()),
        "{verdicts:?}"
    );
    assert!(
        verdicts
            .iter()
            .filter(|(t, _)| *t >= 60)
            .all(|(_, r)| *r == Some(true)),
        "{verdicts:?}"
    );
    // A spike: not ready at the very next poll.
    let spike = run.at(75, at_head(75), 1_075, lag(0, 25.0));
    assert_eq!(spike.cutover.ready, Some(false));
    assert_eq!(spike.cutover.blocking, ["lag 25 s over 10 s"]);
    // Back at the head, the clock starts again.
    let back = run.at(80, at_head(80), 1_080, lag(0, 1.0));
    assert_eq!(back.cutover.ready, Some(false));
    assert!(
        back.cutover.blocking[0].contains("for 0 s of 60 s"),
        "{:?}",
        back.cutover
    );
    // A retry resets readiness too.
    for t in (85..=150).step_by(5) {
        run.at(t, at_head(t), 1_000 + t, lag(0, 1.0));
    }
    assert_eq!(
        run.at(155, at_head(155), 1_155, lag(0, 1.0)).cutover.ready,
        Some(true)
    );
    let retried = run.at(160, syncing(1_164, 1.0), 1_160, lag(0, 1.0));
    assert_eq!(retried.cutover.blocking, ["retried 0 s ago"]);
}

#[test]
fn a_full_load_has_rows_per_second_and_an_eta_beside_udts_estimate() {
    let mut tracker = Tracker::default();
    let start = Instant::now();
    let options = options();
    let mut outlook = Outlook::default();
    for t in (0..=30).step_by(5) {
        let data = StatusData {
            status: Some("Loading".into()),
            progress: Some(Progress {
                cur_count: Some(1_240.0 * t as f64),
                total_count: Some(1_240.0 * 1_000.0),
                cur_duration: Some(t as f64),
                total_duration: Some(1_900.0),
                ..Progress::default()
            }),
            ..StatusData::default()
        };
        let spec = TaskSpec {
            mode: Some("full".into()),
            ..TaskSpec::new("udts-load")
        };
        let unix = 1_800_000_000.0 + t as f64;
        let state = Arc::new(TaskState::new(spec).after_poll(Ok(data), unix));
        outlook = tracker
            .observe(
                &[state],
                &Vec::new(),
                &HashMap::new(),
                &options,
                start + Duration::from_secs(t),
                unix,
            )
            .remove(0);
    }
    assert_eq!(outlook.throughput.unwrap().rows_per_second, Some(1_240.0));
    let eta = outlook.eta.unwrap();
    assert_eq!((eta.basis, eta.seconds), (EtaBasis::FullLoad, 970));
    assert_eq!(eta.udts_estimate_seconds, Some(1_870));
    assert_eq!(
        outlook.cutover.ready, None,
        "a full-only task has no cut-over"
    );
    assert_eq!(outlook.applied_bytes_total, None);
}

#[test]
fn tasks_that_leave_are_forgotten_and_the_window_stays_bounded() {
    let mut run = Run::new();
    for t in 0..2_000 {
        run.at(t, syncing(4 + t, 0.0), t, lag(0, 0.0));
    }
    let track = &run.tracker.tracks.values().next().unwrap()[0].1;
    assert!(track.window.len() <= window::CAPACITY);
    run.tracker.observe(
        &[],
        &Vec::new(),
        &HashMap::new(),
        &run.options,
        Instant::now(),
        0.0,
    );
    assert!(run.tracker.is_empty());
}
