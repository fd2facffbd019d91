use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::api::model::{Progress, StatusData, SyncData};
use crate::api::monitor::MonitorMetric;
use crate::config::Cutover;
use crate::monitor::{MonitorSnapshot, TaskMonitor};
use crate::source::{BinlogReading, SourceSnapshot};
use crate::task::TaskSpec;

fn options() -> ExpositionOptions {
    ExpositionOptions {
        poll_interval: Duration::from_secs(5),
        cutover: Cutover {
            max_lag: Duration::from_secs(10),
            steady_for: Duration::from_secs(60),
            rate_window: Duration::from_secs(30),
            max_remaining: 5 * 1024 * 1024,
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
        let lags = vec![Some(MappedLag {
            source: "orders".into(),
            lag: Ok(task_lag),
        })];
        let sources = HashMap::from([("orders".to_string(), source(written))]);
        let now = self.start + Duration::from_secs(t);
        self.tracker
            .observe(
                &[state],
                &lags,
                &sources,
                &MonitorSnapshot::default(),
                &self.options,
                now,
                unix,
            )
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
        back.cutover.blocking[0].contains("for 0 s of 1 min"),
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
                &MonitorSnapshot::default(),
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
        &MonitorSnapshot::default(),
        &run.options,
        Instant::now(),
        0.0,
    );
    assert!(run.tracker.is_empty());
}

/// A MySQL task with no `[[sources]]` entry, judged by UDTS's monitoring.
struct Monitored {
    tracker: Tracker,
    start: Instant,
    options: ExpositionOptions,
    samples: TaskMonitor,
}

impl Monitored {
    fn new() -> Self {
        Self {
            tracker: Tracker::default(),
            start: Instant::now(),
            options: options(),
            samples: TaskMonitor::default(),
        }
    }

    fn unix(t: u64) -> f64 {
        1_800_000_000.0 + t as f64
    }

    /// UDTS publishes the minute `t - 60`: `values` in the units it sends them.
    fn publish(&mut self, t: u64, values: &[(MonitorMetric, f64)]) {
        for (metric, value) in values {
            self.samples.record(*metric, Self::unix(t) - 60.0, *value);
        }
    }

    fn at(&mut self, t: u64) -> Outlook {
        let unix = Self::unix(t);
        let spec = TaskSpec::new("udts-a");
        let key = spec.key();
        let state = Arc::new(TaskState::new(spec).after_poll(Ok(syncing(4, 0.0)), unix));
        let monitor = MonitorSnapshot {
            tasks: Arc::new([(key, self.samples)].into_iter().collect()),
            interval: Some(Duration::from_secs(60)),
            ..MonitorSnapshot::default()
        };
        self.tracker
            .observe(
                &[state],
                &vec![None],
                &HashMap::new(),
                &monitor,
                &self.options,
                self.start + Duration::from_secs(t),
                unix,
            )
            .remove(0)
    }
}

#[test]
fn a_task_without_a_source_is_judged_by_udts_monitoring() {
    use MonitorMetric::*;
    let mut run = Monitored::new();
    let none = run.at(0);
    assert_eq!(none.cutover.ready, None, "no sample, no verdict");
    assert_eq!(none.cutover.basis, None);
    assert!(none.cutover.blocking[0].contains("monitoring has no sample"));

    // Caught up: 2 s of delay, 1 MiB left, for longer than `steady_for` (60 s).
    let mut outlook = none;
    for t in (0..=90).step_by(5) {
        if t % 60 == 0 {
            run.publish(t, &[(SyncDelay, 2.0), (RemainingBytes, 1_048_576.0)]);
        }
        outlook = run.at(t);
    }
    assert_eq!(outlook.cutover.basis, Some(CutoverBasis::Monitor));
    assert_eq!(outlook.cutover.ready, Some(true), "{:?}", outlook.cutover);

    // A spike in the next sample: not ready at the render that sees it.
    run.publish(120, &[(SyncDelay, 40.0), (EstimatedRemaining, 300.0)]);
    let spiked = run.at(120);
    assert_eq!(spiked.cutover.ready, Some(false));
    assert_eq!(spiked.cutover.blocking, ["lag 40 s over 10 s"]);
    let eta = spiked.eta.expect("UDTS's estimate is the ETA");
    assert_eq!((eta.basis, eta.seconds), (EtaBasis::Udts, 300));
    assert_eq!(eta.udts_estimate_seconds, Some(300));

    // Back within bounds but with more data left than `max_remaining`.
    run.publish(
        180,
        &[(SyncDelay, 1.0), (RemainingBytes, 8.0 * 1_048_576.0)],
    );
    let heavy = run.at(180);
    assert_eq!(
        heavy.cutover.blocking,
        ["8.0 MiB left to apply, over 5.0 MiB"]
    );

    // No new sample for long: the last one is too old to judge by.
    let stale = run.at(420);
    assert_eq!(stale.cutover.ready, Some(false));
    assert_eq!(stale.cutover.blocking, ["monitoring sample 5 min old"]);
    assert_eq!(stale.eta, None, "a stale estimate is no ETA");
}

#[test]
fn udts_rates_stand_in_where_the_exporter_has_none_and_a_source_keeps_its_basis() {
    use MonitorMetric::*;
    let mut run = Monitored::new();
    run.publish(
        0,
        &[
            (SyncDelay, 1.0),
            (TargetWriteBytes, 2048.0),
            (TargetWriteRows, 30.0),
        ],
    );
    let outlook = run.at(0);
    let rates = outlook.throughput.expect("UDTS's write rates");
    assert_eq!(rates.basis, ThroughputBasis::Udts);
    assert_eq!(rates.applied_bytes_per_second, Some(2048.0));
    assert_eq!(rates.rows_per_second, Some(30.0));
    assert_eq!(rates.source_written_bytes_per_second, None);

    // A task mapped to a source is judged by the source, whatever monitoring says.
    let mut sourced = Run::new();
    let judged = sourced.at(0, syncing(4, 0.0), 0, lag(0, 0.0));
    assert_eq!(judged.cutover.basis, Some(CutoverBasis::Source));
}
