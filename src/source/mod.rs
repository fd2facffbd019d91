//! Source databases: the exporter reads each MySQL-family source's own binlog state, or a
//! PostgreSQL source's WAL position and replication slots (read-only, a fixed handful of
//! statements per round whatever the number of tasks and slots), and keeps what it needs to say
//! how far behind each task is: the last reading, a counter of bytes written, and a bounded
//! series of head samples for lag in seconds.
//!
//! [`run`] drives one source's rounds on the poll interval, on its own task, so a slow or dead
//! source never delays the UDTS poll or `/metrics`. The [`SourceBoard`] holds every source's
//! latest [`SourceSnapshot`]; the exposition computes each task's lag from it at render time
//! ([`lag::task_lag`]).

pub mod gtid;
pub mod lag;
pub mod mysql;
pub mod postgres;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::SourceSettings;
use crate::metrics::SourceMetrics;
use crate::time::unix_now;
use gtid::{Gtids, MalformedGtid};

/// What one round read from a source, as the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinlogReading {
    /// The head: the file being written.
    pub head_file: String,
    /// The head: the position in it.
    pub head_position: u64,
    /// `SHOW BINARY LOGS`: every file still on the source, oldest first, with its size.
    pub files: Vec<(String, u64)>,
    /// The executed GTIDs (`@@global.gtid_executed` or `@@global.gtid_binlog_pos`), if any.
    pub gtid_text: Option<String>,
}

/// A reading in the form lag is computed from.
#[derive(Debug, Clone)]
pub struct ParsedReading {
    /// The binlog files' base name (`mysql-bin`).
    pub base: String,
    /// The head file's index.
    pub head_index: u64,
    /// The head position.
    pub head_position: u64,
    /// Retained files: (index, size), oldest first.
    pub files: Vec<(u64, u64)>,
    /// The executed GTIDs, parsed; absent when the source has none.
    pub gtids: Option<Result<Gtids, MalformedGtid>>,
}

/// `mysql-bin.000012` -> (`mysql-bin`, 12).
pub fn split_binlog_name(name: &str) -> Option<(&str, u64)> {
    let (base, index) = name.rsplit_once('.')?;
    if base.is_empty() || index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((base, index.parse().ok()?))
}

impl BinlogReading {
    /// Checks and parses the answer: the head and every file name must be `<base>.<index>` with
    /// one base.
    pub fn parse(&self) -> Result<ParsedReading, SourceError> {
        let malformed = |what: String| SourceError {
            reason: "malformed",
            message: what,
            fix: "report it: the server's answer is not in a form the exporter knows",
        };
        let (base, head_index) = split_binlog_name(&self.head_file).ok_or_else(|| {
            malformed(format!(
                "head file `{}` has no numeric suffix",
                self.head_file
            ))
        })?;
        let mut files = Vec::with_capacity(self.files.len());
        for (name, size) in &self.files {
            match split_binlog_name(name) {
                Some((file_base, index)) if file_base == base => files.push((index, *size)),
                _ => {
                    return Err(malformed(format!(
                        "binlog file `{name}` is not a `{base}` file"
                    )))
                }
            }
        }
        files.sort_unstable();
        // One answer of the server, made consistent with its head: the head file is retained
        // up to the head at least (`SHOW BINARY LOGS` and the head are two statements, and a
        // rotation may fall between them), a file listed twice counts once, and files after
        // the head belong to a later moment than this reading's head.
        files.dedup_by_key(|(index, _)| *index);
        files.retain(|(index, _)| *index <= head_index);
        match files.last_mut() {
            Some((index, size)) if *index == head_index => {
                *size = (*size).max(self.head_position);
            }
            _ => files.push((head_index, self.head_position)),
        }
        let gtids = self
            .gtid_text
            .as_deref()
            .filter(|text| !text.trim().is_empty())
            .map(Gtids::parse);
        Ok(ParsedReading {
            base: base.to_string(),
            head_index,
            head_position: self.head_position,
            files,
            gtids,
        })
    }
}

/// A round that failed, by what it means for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    /// The `reason` label of `udts_source_errors_total`.
    pub reason: &'static str,
    /// What happened (never the password).
    pub message: String,
    /// What fixes it.
    pub fix: &'static str,
}

/// What one round of a source read: a MySQL binlog state or a PostgreSQL WAL state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    Binlog(BinlogReading),
    Wal(postgres::WalReading),
}

/// Reads a source's state; the MySQL and PostgreSQL clients and the demo's simulated source
/// all are.
pub trait BinlogReader: Send {
    /// One round: the head, the files and the executed GTIDs; or the WAL position and slots.
    fn read(&mut self) -> Pin<Box<dyn Future<Output = Result<Reading, SourceError>> + Send + '_>>;
}

/// One head sample: the bytes written so far, and when the head was first and last seen there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadSample {
    /// `written_total` at this head.
    pub written: u64,
    /// Unix time the head was first seen here.
    pub first_seen: f64,
    /// Unix time it was last seen here (an idle source extends one sample).
    pub last_seen: f64,
}

/// Head samples, oldest first, one per head move: an idle source costs nothing, a busy one at
/// most [`HeadSamples::CAPACITY`] samples (a day and more at a 30 s interval).
#[derive(Debug, Clone, Default)]
pub struct HeadSamples(VecDeque<HeadSample>);

impl HeadSamples {
    /// Samples kept per source, at most.
    pub const CAPACITY: usize = 4096;

    /// Records that the head was at `written` at `now`.
    fn observe(&mut self, written: u64, now: f64) {
        match self.0.back_mut() {
            Some(last) if last.written == written => last.last_seen = now,
            _ => {
                if self.0.len() == Self::CAPACITY {
                    self.0.pop_front();
                }
                self.0.push_back(HeadSample {
                    written,
                    first_seen: now,
                    last_seen: now,
                });
            }
        }
    }

    /// When the head moved past `offset` (bytes written): interpolated between the last sample
    /// at or before it and the first one past it; `None` when the head passed it before the
    /// first sample or has not passed it.
    pub fn passed_at(&self, offset: u64) -> Option<f64> {
        let after = self.0.iter().position(|s| s.written > offset)?;
        let before = self.0.get(after.checked_sub(1)?)?;
        let after = self.0[after];
        let fraction = (offset - before.written) as f64 / (after.written - before.written) as f64;
        Some(before.last_seen + (after.first_seen - before.last_seen) * fraction)
    }

    /// Bytes written a second over about the last `window` seconds at `now`, from the samples;
    /// `None` until two samples span some time.
    pub fn rate(&self, now: f64, window: f64) -> Option<f64> {
        let newest = self.0.back()?;
        let oldest = self
            .0
            .iter()
            .find(|s| s.last_seen >= now - window)
            .unwrap_or(newest);
        let seconds = newest.last_seen - oldest.first_seen;
        (seconds > 0.0).then(|| newest.written.saturating_sub(oldest.written) as f64 / seconds)
    }

    /// How many samples are kept.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What the exporter knows of one source.
#[derive(Debug, Clone, Default)]
pub struct SourceSnapshot {
    /// Whether the last round succeeded.
    pub up: bool,
    /// The last round's error, if it failed.
    pub error: Option<SourceError>,
    /// The last good reading (MySQL).
    pub reading: Option<Arc<ParsedReading>>,
    /// The last good reading (PostgreSQL).
    pub wal: Option<Arc<postgres::WalReading>>,
    /// Bytes the head advanced since the exporter started watching.
    pub written_total: u64,
    /// Head samples for lag in seconds.
    pub samples: HeadSamples,
}

impl SourceSnapshot {
    /// The snapshot of a single reading at `now` (`check`: no history, so no lag in seconds
    /// unless the task is at the head).
    pub fn of(reading: ParsedReading, now: f64) -> Self {
        Self::default().after(reading, now)
    }

    /// The snapshot after a good reading at `now`, as the source loop folds each round in.
    pub fn after(&self, reading: ParsedReading, now: f64) -> Self {
        let mut next = self.clone();
        let advanced = match &self.reading {
            Some(previous) if previous.base == reading.base => advance(previous, &reading),
            _ => Some(0),
        };
        match advanced {
            Some(bytes) => next.written_total = next.written_total.saturating_add(bytes),
            // The head went back (a reset or another server): earlier samples no longer
            // describe this binlog.
            None => next.samples = HeadSamples::default(),
        }
        next.samples.observe(next.written_total, now);
        next.up = true;
        next.error = None;
        next.reading = Some(Arc::new(reading));
        next
    }

    /// The snapshot after a good PostgreSQL reading at `now`: the written counter follows the
    /// WAL position.
    pub fn after_wal(&self, reading: postgres::WalReading, now: f64) -> Self {
        let mut next = self.clone();
        match self.wal.as_ref().map(|previous| previous.lsn) {
            Some(previous) if reading.lsn >= previous => {
                next.written_total = next.written_total.saturating_add(reading.lsn - previous);
            }
            Some(_) => next.samples = HeadSamples::default(),
            None => {}
        }
        next.samples.observe(next.written_total, now);
        next.up = true;
        next.error = None;
        next.wal = Some(Arc::new(reading));
        next
    }

    fn failed(&self, error: SourceError) -> Self {
        Self {
            up: false,
            error: Some(error),
            ..self.clone()
        }
    }
}

/// Bytes the head advanced from `previous` to `current`, `None` when it went back.
fn advance(previous: &ParsedReading, current: &ParsedReading) -> Option<u64> {
    let (from, to) = (
        (previous.head_index, previous.head_position),
        (current.head_index, current.head_position),
    );
    if to < from {
        return None;
    }
    if to.0 == from.0 {
        return Some(to.1 - from.1);
    }
    // The rest of the old head file, every file between, and the new head up to its position.
    // Sizes come from the files either reading lists (the current one's word first); a file
    // neither lists counts nothing, so a head that jumps a million indices (a reset, another
    // server) costs the files listed, not a walk over the indices.
    let sizes: BTreeMap<u64, u64> = previous
        .files
        .iter()
        .chain(current.files.iter())
        .copied()
        .collect();
    let rest = sizes
        .get(&from.0)
        .map_or(0, |size| size.saturating_sub(from.1));
    let between = sizes
        .range(from.0 + 1..to.0)
        .map(|(_, size)| *size)
        .fold(0, u64::saturating_add);
    Some(rest.saturating_add(between).saturating_add(to.1))
}

/// Every source's latest snapshot, by name, read by the exposition; `changed` wakes it.
#[derive(Default)]
pub struct SourceBoard {
    snapshots: ArcSwap<HashMap<String, Arc<SourceSnapshot>>>,
    /// Notified after every round.
    pub changed: Notify,
}

impl SourceBoard {
    /// The snapshots as they are now.
    pub fn snapshots(&self) -> Arc<HashMap<String, Arc<SourceSnapshot>>> {
        self.snapshots.load_full()
    }

    /// Replaces `name`'s snapshot with `change(previous)` (the default snapshot when it has
    /// none) and wakes the renderer.
    pub fn update(&self, name: &str, mut change: impl FnMut(&SourceSnapshot) -> SourceSnapshot) {
        self.snapshots.rcu(|current| {
            let mut next = HashMap::clone(current);
            let previous = current
                .get(name)
                .map(Arc::as_ref)
                .cloned()
                .unwrap_or_default();
            next.insert(name.to_string(), Arc::new(change(&previous)));
            next
        });
        self.changed.notify_one();
    }

    /// Keeps only the sources named in `names` (after a reload).
    pub fn retain(&self, names: &[String]) {
        self.snapshots.rcu(|current| {
            current
                .iter()
                .filter(|(name, _)| names.contains(name))
                .map(|(name, snapshot)| (name.clone(), Arc::clone(snapshot)))
                .collect::<HashMap<_, _>>()
        });
        self.changed.notify_one();
    }

    /// Forgets `name`'s samples and reading (its connection changed).
    pub fn forget(&self, name: &str) {
        self.update(name, |_| SourceSnapshot::default());
    }
}

/// Makes the reader of a source: the MySQL client in production, the simulated source in the
/// demo and in tests that need no database.
pub type ReaderFactory = Arc<dyn Fn(&SourceSettings) -> Box<dyn BinlogReader> + Send + Sync>;

/// The production factory: a [`mysql::MySqlReader`] or [`postgres::PostgresReader`] per
/// source.
pub fn mysql_readers() -> ReaderFactory {
    Arc::new(|source: &SourceSettings| {
        if source.connection.password.is_none() {
            // Allowed (a user may have no password), but rarely meant: say it where the
            // source starts, at start-up and when a reload changes it.
            tracing::warn!(
                source = %source.name,
                "source `{}` has neither password_file nor password_env: connecting without a \
                 password; set one of them if the monitoring user has a password",
                source.name
            );
        }
        match &source.kind {
            crate::config::SourceKind::Postgres { database, .. } => Box::new(
                postgres::PostgresReader::new(source.connection.clone(), database.clone()),
            )
                as Box<dyn BinlogReader>,
            crate::config::SourceKind::MySql => {
                Box::new(mysql::MySqlReader::new(source.connection.clone()))
                    as Box<dyn BinlogReader>
            }
        }
    })
}

/// Runs one reading loop per configured source and applies `[[sources]]` on reload: new
/// sources start, removed ones stop and lose their series, changed ones restart (and forget
/// their samples when they now read another server).
pub struct SourceSupervisor {
    board: Arc<SourceBoard>,
    metrics: SourceMetrics,
    readers: ReaderFactory,
    shutdown: CancellationToken,
    running: std::sync::Mutex<HashMap<String, (SourceSettings, Duration, CancellationToken)>>,
}

impl SourceSupervisor {
    /// A supervisor with nothing running yet; every loop stops on `shutdown`.
    pub fn new(
        board: Arc<SourceBoard>,
        metrics: SourceMetrics,
        readers: ReaderFactory,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            board,
            metrics,
            readers,
            shutdown,
            running: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Makes the running loops match `sources`, each reading every `interval`.
    pub fn apply(&self, sources: &[SourceSettings], interval: Duration) {
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let names: Vec<String> = sources.iter().map(|s| s.name.clone()).collect();
        running.retain(|name, (_, _, stop)| {
            let keep = names.contains(name);
            if !keep {
                stop.cancel();
                self.metrics.remove(name);
            }
            keep
        });
        self.board.retain(&names);
        for source in sources {
            if let Some((current, current_interval, stop)) = running.get(&source.name) {
                let unchanged = current.same_connection(source) && *current_interval == interval;
                if unchanged {
                    continue;
                }
                stop.cancel();
                if !current.same_connection(source) {
                    self.board.forget(&source.name);
                }
            }
            self.metrics.declare(
                &source.name,
                matches!(source.kind, crate::config::SourceKind::Postgres { .. }),
            );
            let stop = self.shutdown.child_token();
            tokio::spawn(run(
                source.name.clone(),
                (self.readers)(source),
                Arc::clone(&self.board),
                self.metrics.clone(),
                interval,
                source.timeout,
                stop.clone(),
            ));
            running.insert(source.name.clone(), (source.clone(), interval, stop));
        }
    }
}

/// One good round, parsed.
enum Round {
    Binlog(ParsedReading),
    Wal(postgres::WalReading),
}

/// Reads `name` through `reader` every `interval`, each round bounded by `timeout`, until
/// `shutdown`. Failures are logged once per change of reason and retried with backoff.
pub async fn run(
    name: String,
    mut reader: Box<dyn BinlogReader>,
    board: Arc<SourceBoard>,
    metrics: SourceMetrics,
    interval: Duration,
    timeout: Duration,
    shutdown: CancellationToken,
) {
    let mut failures: u32 = 0;
    let mut last_reason: Option<&'static str> = None;
    loop {
        let started = Instant::now();
        let round = tokio::time::timeout(timeout, reader.read());
        let result = match tokio::select! {
            round = round => round,
            () = shutdown.cancelled() => return,
        } {
            Ok(result) => result,
            Err(_) => Err(SourceError {
                reason: "timeout",
                message: format!("no answer within {}", humantime::format_duration(timeout)),
                fix: "check the source's load and the network path; the round is skipped",
            }),
        };
        // Stopped meanwhile (a reload removed or changed the source): record nothing, or the
        // removed series would come back.
        if shutdown.is_cancelled() {
            return;
        }
        metrics.round(&name, started.elapsed());
        let now = unix_now();
        // A MySQL answer is checked and parsed first; a PostgreSQL one was parsed as it was read.
        let result = match result {
            Ok(Reading::Binlog(reading)) => reading.parse().map(Round::Binlog),
            Ok(Reading::Wal(reading)) => Ok(Round::Wal(reading)),
            Err(error) => Err(error),
        };
        match result {
            Ok(round) => {
                if last_reason.take().is_some() {
                    info!(source = %name, "source readable again");
                }
                failures = 0;
                let mut advanced = 0;
                board.update(&name, |previous| {
                    let next = match &round {
                        Round::Binlog(reading) => previous.after(reading.clone(), now),
                        Round::Wal(reading) => previous.after_wal(reading.clone(), now),
                    };
                    advanced = next.written_total - previous.written_total;
                    next
                });
                match round {
                    Round::Wal(reading) => {
                        // One odd slot row costs that slot: counted, the rest of the round kept.
                        for _ in &reading.skipped {
                            metrics.problem(&name, "malformed_slot_row");
                        }
                        metrics.read_wal(&name, advanced);
                    }
                    Round::Binlog(reading) => {
                        if let Some(Err(error)) = &reading.gtids {
                            metrics.problem(&name, "malformed_gtid");
                            warn!(source = %name, %error, "the source's executed GTID set is malformed; no lag in transactions");
                        }
                        metrics.read(
                            &name,
                            (reading.head_index, reading.head_position),
                            reading.files.first().map(|(index, _)| *index),
                            reading.files.iter().map(|(_, size)| size).sum(),
                            advanced,
                        );
                    }
                }
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                metrics.failed(&name, error.reason);
                if last_reason != Some(error.reason) {
                    warn!(source = %name, reason = error.reason, error = %error.message, "cannot read the source's binlog state. Fix: {}", error.fix);
                    last_reason = Some(error.reason);
                }
                board.update(&name, |previous| previous.failed(error.clone()));
            }
        }
        // Backoff after failures: the interval doubled per failure, at most 8 intervals.
        let wait = interval * 2u32.saturating_pow(failures.saturating_sub(1).min(3));
        tokio::select! {
            () = tokio::time::sleep(wait.saturating_sub(started.elapsed())) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(head: (u64, u64), files: &[(u64, u64)]) -> ParsedReading {
        ParsedReading {
            base: "mysql-bin".into(),
            head_index: head.0,
            head_position: head.1,
            files: files.to_vec(),
            gtids: None,
        }
    }

    #[test]
    fn the_write_rate_is_taken_over_the_recent_samples_and_falls_to_zero_when_idle() {
        let mut samples = HeadSamples::default();
        assert_eq!(samples.rate(0.0, 900.0), None);
        for t in 0..10 {
            samples.observe(1_000 * t, 100.0 + 5.0 * t as f64);
        }
        assert_eq!(samples.rate(145.0, 900.0), Some(200.0));
        // Only the last 20 s: the same steady rate.
        assert_eq!(samples.rate(145.0, 20.0), Some(200.0));
        // Idle for a long while: the newest sample is extended, the rate falls to 0.
        samples.observe(9_000, 2_000.0);
        assert_eq!(samples.rate(2_000.0, 900.0), Some(0.0));
    }

    #[test]
    fn the_written_counter_follows_the_head_across_rotations() {
        let a = reading((1, 100), &[(1, 100)]);
        let b = reading((1, 400), &[(1, 400)]);
        assert_eq!(advance(&a, &b), Some(300));
        // File 1 ended at 500, file 2 holds 1000, file 3 is at 50.
        let c = reading((3, 50), &[(1, 500), (2, 1000), (3, 50)]);
        assert_eq!(advance(&b, &c), Some(100 + 1000 + 50));
        assert_eq!(advance(&c, &b), None);
    }

    /// Found by the `binlog_rounds` fuzz target: a head that jumped 2^40 indices walked every
    /// index in between.
    #[test]
    fn a_head_that_jumps_far_counts_the_files_listed_without_walking_the_gap() {
        let a = reading((1, 100), &[(1, 500)]);
        let far = 1 << 40;
        let b = reading((far, 70), &[(7, 1000), (far, 70)]);
        assert_eq!(advance(&a, &b), Some(400 + 1000 + 70));
        // Sizes near the top of u64 saturate instead of overflowing.
        let c = reading(
            (far + 2, u64::MAX),
            &[(far + 1, u64::MAX), (far + 2, u64::MAX)],
        );
        assert_eq!(advance(&b, &c), Some(u64::MAX));
    }

    #[test]
    fn head_samples_interpolate_and_refuse_to_guess_before_the_first() {
        let mut samples = HeadSamples::default();
        samples.observe(1000, 100.0);
        samples.observe(1000, 110.0); // idle: the same sample, seen later
        samples.observe(2000, 120.0);
        assert_eq!(samples.len(), 2);
        // Half way from 1000 to 2000: half way from 110 to 120.
        assert_eq!(samples.passed_at(1500), Some(115.0));
        assert_eq!(samples.passed_at(1000), Some(110.0));
        assert_eq!(
            samples.passed_at(999),
            None,
            "passed before the first sample"
        );
        assert_eq!(samples.passed_at(2000), None, "not passed yet");
        for i in 0..(HeadSamples::CAPACITY as u64 + 10) {
            samples.observe(3000 + i, 200.0 + i as f64);
        }
        assert_eq!(samples.len(), HeadSamples::CAPACITY);
    }

    #[test]
    fn binlog_names_split_into_base_and_index() {
        assert_eq!(
            split_binlog_name("mysql-bin.000012"),
            Some(("mysql-bin", 12))
        );
        assert_eq!(
            split_binlog_name("my.host-bin.000001"),
            Some(("my.host-bin", 1))
        );
        assert_eq!(split_binlog_name("mysql-bin"), None);
        assert_eq!(split_binlog_name(".000001"), None);
        assert_eq!(split_binlog_name("mysql-bin.12a"), None);
    }

    /// A reader that answers one recorded `pg_replication_slots` answer, as the PostgreSQL
    /// client parses it.
    struct Recorded(Vec<Vec<Option<&'static str>>>);

    impl BinlogReader for Recorded {
        fn read(
            &mut self,
        ) -> Pin<Box<dyn Future<Output = Result<Reading, SourceError>> + Send + '_>> {
            let (slots, skipped) = postgres::parse_slots(self.0.clone());
            Box::pin(async move {
                Ok(Reading::Wal(postgres::WalReading {
                    skipped,
                    lsn: 0x200_0000,
                    slots,
                }))
            })
        }
    }

    #[tokio::test]
    async fn a_malformed_slot_row_costs_that_slot_only_and_is_counted() {
        // PostgreSQL 15 rows: a good one, one with a wal_status the exporter does not know,
        // one with a garbage LSN.
        let good = vec![
            Some("udts_good"),
            Some("pgoutput"),
            Some("logical"),
            Some("orders"),
            Some("t"),
            Some("0/1000000"),
            Some("0/1800000"),
            Some("reserved"),
            Some("1048576"),
        ];
        let mut unknown_status = good.clone();
        unknown_status[0] = Some("udts_future");
        unknown_status[7] = Some("borrowed");
        let mut garbage_lsn = good.clone();
        garbage_lsn[0] = Some("udts_garbage");
        garbage_lsn[5] = Some("not/an/lsn");
        let metrics = crate::metrics::ExporterMetrics::new();
        let board = Arc::new(SourceBoard::default());
        let shutdown = CancellationToken::new();
        let round = tokio::spawn(run(
            "pg".into(),
            Box::new(Recorded(vec![good, unknown_status, garbage_lsn])),
            Arc::clone(&board),
            metrics.sources.clone(),
            Duration::from_secs(3600),
            Duration::from_secs(5),
            shutdown.clone(),
        ));
        while board.snapshots().get("pg").is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        shutdown.cancel();
        round.await.unwrap();

        let snapshots = board.snapshots();
        let wal = snapshots["pg"].wal.as_ref().unwrap();
        assert_eq!(wal.lsn, 0x200_0000, "the source's WAL position stays");
        let names: Vec<&str> = wal.slots.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["udts_good"]);
        assert_eq!(wal.skipped.len(), 2);
        assert!(
            wal.skipped[0].contains("wal_status `borrowed`"),
            "{:?}",
            wal.skipped
        );
        assert!(
            wal.skipped[1].contains("restart_lsn `not/an/lsn`"),
            "{:?}",
            wal.skipped
        );
        let mut text = Vec::new();
        metrics.encode(|_| true, &mut text);
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains(
                "udts_source_errors_total{reason=\"malformed_slot_row\",source=\"pg\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("udts_source_up{source=\"pg\"} 1"), "{text}");
    }
}
