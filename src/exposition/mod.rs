//! The `/metrics` payload: per-task series written straight from the task snapshot, followed by
//! the exporter's own registry, encoded once per change of state and kept ready (plain and
//! gzip) so that a scrape costs a pointer copy.
//!
//! Per-task families are written here rather than through `prometheus` collectors because at
//! tens of thousands of tasks building a protobuf object per sample would dominate the cost of
//! an update; the text format for gauges is small and pinned by golden tests and `promtool`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use flate2::{write::GzEncoder, Compression};
use tokio_util::sync::CancellationToken;

use crate::config::ExpositionOptions;
use crate::derive::Derived;
use crate::metrics::ExporterMetrics;
use crate::monitor::MonitorBoard;
use crate::outlook::Tracker;
use crate::source::SourceBoard;
use crate::state::Store;
use crate::task_view::{TaskList, Views};
use crate::time::unix_now;

mod families;
mod monitor_families;
mod slot_families;

pub use families::write_task_families;

/// Longest label value taken from the API (names, failure messages). Longer values are cut at a
/// character boundary and marked with `…`.
pub const MAX_LABEL_CHARS: usize = 200;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One encoded exposition, and what the page and the JSON API are built from on first request.
///
/// Only the gzip form of the text is kept: Prometheus always accepts gzip, and the plain text of
/// 10,000 tasks is fifteen times larger. A client that does not accept gzip gets it inflated per
/// request ([`Exposition::text`]). The task views and their JSON are prepared when first asked
/// for after a change ([`Exposition::prepared`]), not on every change: most exporters' pages are
/// never opened.
#[derive(Debug, Default)]
pub struct Exposition {
    /// The text format, gzip-compressed.
    pub gzip: Bytes,
    /// When it was rendered, unix seconds.
    pub rendered_at: f64,
    /// `poll.interval`, seconds.
    pub poll_interval_seconds: f64,
    /// Series in the text (`udts_exposition_series`, itself included).
    pub series: u64,
    /// What the render derived (the store's own task states, shared, not copied; the
    /// sources and monitoring as they were; the options in force; and every fact derived from
    /// them): the views are built from it, and derive nothing of their own.
    derived: Derived,
    /// The views and their JSON, once asked for.
    prepared: std::sync::OnceLock<Arc<Prepared>>,
}

/// The task views of one exposition and `GET /api/v1/tasks` made of them.
#[derive(Debug, Default)]
pub struct Prepared {
    /// The tasks as the page shows them, worst first.
    pub views: Views,
    /// `GET /api/v1/tasks`, JSON, gzip-compressed: as for the exposition, only the compressed
    /// form is kept (3.7 MB plain at 10,000 tasks, twenty times its gzip), and a client that
    /// does not accept gzip gets it inflated as it is sent ([`inflated_chunks`]).
    pub tasks_json_gzip: Bytes,
}

impl Exposition {
    /// The text format, inflated from the kept gzip form in 64 KiB chunks as the body is
    /// sent (for the rare client that does not accept gzip): the plain text never exists whole.
    pub fn text_chunks(
        &self,
    ) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        inflated_chunks(self.gzip.clone())
    }

    /// The views and their JSON, built on the first call after a render and then kept with
    /// this exposition.
    pub fn prepared(&self) -> Arc<Prepared> {
        Arc::clone(self.prepared.get_or_init(|| {
            let views = Views::build(&self.derived);
            let list = TaskList {
                generated_at: self.rendered_at,
                poll_interval_seconds: self.poll_interval_seconds,
                exposition_series: self.series,
                tasks: views.tasks.iter().collect(),
                sources: &views.sources,
            };
            // Serialized straight into the compressor: the plain JSON never exists whole.
            let mut writer = std::io::BufWriter::with_capacity(
                64 * 1024,
                GzEncoder::new(Vec::new(), Compression::fast()),
            );
            if let Err(error) = serde_json::to_writer(&mut writer, &list) {
                tracing::error!(%error, "cannot write the task list");
            }
            drop(list);
            let mut json_gzip = writer
                .into_inner()
                .map_err(|e| e.into_error())
                .and_then(GzEncoder::finish)
                .unwrap_or_default();
            json_gzip.shrink_to_fit();
            Arc::new(Prepared {
                tasks_json_gzip: Bytes::from(json_gzip),
                views,
            })
        }))
    }
}

/// Counts the series (sample lines) of text in the exposition format as it is written.
#[derive(Debug, Clone, Copy)]
pub struct SeriesCount {
    series: u64,
    at_line_start: bool,
    comment: bool,
}

impl Default for SeriesCount {
    fn default() -> Self {
        Self {
            series: 0,
            at_line_start: true,
            comment: false,
        }
    }
}

impl SeriesCount {
    /// Takes the next bytes of the text.
    pub fn feed(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if self.at_line_start {
                self.comment = byte == b'#';
                self.at_line_start = false;
            }
            if byte == b'\n' {
                if !self.comment {
                    self.series += 1;
                }
                self.at_line_start = true;
            }
        }
    }

    /// The sample lines ended so far.
    pub fn series(&self) -> u64 {
        self.series
    }
}

impl std::fmt::Write for SeriesCount {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        self.feed(text.as_bytes());
        Ok(())
    }
}

/// A text sink that compresses as it goes, so the plain exposition never exists whole in
/// memory: at 10,000 tasks that is 17 MB per render, and glibc keeps freed blocks that size.
/// It counts the series it is given on the way.
struct GzipText {
    buffer: String,
    encoder: GzEncoder<Vec<u8>>,
    count: SeriesCount,
}

impl GzipText {
    /// Text is compressed in chunks of about this size.
    const CHUNK: usize = 64 * 1024;

    fn new() -> Self {
        Self {
            buffer: String::with_capacity(Self::CHUNK + 4096),
            encoder: GzEncoder::new(Vec::new(), Compression::fast()),
            count: SeriesCount::default(),
        }
    }

    fn write_bytes(&mut self, bytes: &[u8]) {
        self.count.feed(bytes);
        self.flush_buffer();
        if let Err(error) = self.encoder.write_all(bytes) {
            tracing::error!(%error, "cannot compress the exposition");
        }
    }

    fn flush_buffer(&mut self) {
        if let Err(error) = self.encoder.write_all(self.buffer.as_bytes()) {
            tracing::error!(%error, "cannot compress the exposition");
        }
        self.buffer.clear();
    }

    fn finish(mut self) -> Vec<u8> {
        self.flush_buffer();
        self.encoder.finish().unwrap_or_default()
    }
}

impl std::fmt::Write for GzipText {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        self.count.feed(text.as_bytes());
        self.buffer.push_str(text);
        if self.buffer.len() >= Self::CHUNK {
            self.flush_buffer();
        }
        Ok(())
    }
}

/// Renders the whole payload: task families, then the exporter's own metrics, compressed as
/// it is written.
pub fn render(
    store: &Store,
    sources: &SourceBoard,
    monitor: &MonitorBoard,
    metrics: &ExporterMetrics,
    options: &Arc<ExpositionOptions>,
    tracker: &mut Tracker,
) -> Exposition {
    let now = unix_now();
    let derived = Derived::new(
        store.snapshot(),
        sources.snapshots(),
        Arc::new(monitor.snapshot()),
        Arc::clone(options),
        now,
        Some((tracker, Instant::now())),
    );
    let allowed = |name: &str| options.filter.allows(name);
    let mut out = GzipText::new();
    write_derived_families(&derived, &mut out);
    let mut own = Vec::new();
    metrics.encode(allowed, &mut own);
    out.write_bytes(&own);
    drop(own);
    if allowed(SERIES_FAMILY) {
        // Itself included: the figure is what this very exposition costs.
        let series = out.count.series() + 1;
        let _ = write!(
            out,
            "# HELP {SERIES_FAMILY} {SERIES_HELP}\n# TYPE {SERIES_FAMILY} gauge\n{SERIES_FAMILY} {series}\n"
        );
    }
    let series = out.count.series();
    // The buffer grew by doubling; the rest of its capacity would live as long as the
    // exposition does.
    let mut gzip = out.finish();
    gzip.shrink_to_fit();
    Exposition {
        gzip: Bytes::from(gzip),
        rendered_at: now,
        poll_interval_seconds: options.poll_interval.as_secs_f64(),
        series,
        derived,
        prepared: std::sync::OnceLock::new(),
    }
}

/// The family that says how many series an exposition carries.
const SERIES_FAMILY: &str = "udts_exposition_series";
const SERIES_HELP: &str = "Series in this exposition, this one included: what the exporter adds to the Prometheus that scrapes it (README: Cardinality).";

/// Writes every family derived from the render's tasks, sources and monitoring (all but the
/// exporter's own registry).
fn write_derived_families(derived: &Derived, out: &mut impl std::fmt::Write) {
    let allowed = |name: &str| derived.options.filter.allows(name);
    write_task_families(derived, out);
    monitor_families::write_monitor_families(derived, allowed, out);
    slot_families::write_slot_families(
        &derived.slots,
        derived.options.sources.has_postgres(),
        allowed,
        out,
    );
}

/// The series the derived families of `derived` come to (the exporter's own metrics aside):
/// what `check` says the tasks it read would cost.
pub fn series_of(derived: &Derived) -> u64 {
    let mut count = SeriesCount::default();
    write_derived_families(derived, &mut count);
    count.series()
}

/// `gzip` inflated in 64 KiB chunks as a body is sent: the plain form never exists whole.
pub fn inflated_chunks(
    gzip: Bytes,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let mut decoder = flate2::read::GzDecoder::new(std::io::Cursor::new(gzip));
    let mut done = false;

    futures_util::stream::iter(std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut chunk = vec![0; 64 * 1024];
        match std::io::Read::read(&mut decoder, &mut chunk) {
            Ok(0) => None,
            Ok(n) => {
                chunk.truncate(n);
                Some(Ok(Bytes::from(chunk)))
            }
            Err(error) => {
                done = true;
                Some(Err(error))
            }
        }
    }))
}

/// Holds the latest exposition and re-renders it when the store changes.
pub struct Publisher {
    current: ArcSwap<Exposition>,
    options: ArcSwap<ExpositionOptions>,
    /// Serializes renders, so a render that took an older snapshot can never be stored after
    /// (and over) one that took a newer snapshot; holds the outlook tracker that every render
    /// feeds.
    rendering: std::sync::Mutex<Tracker>,
    store: Arc<Store>,
    sources: Arc<SourceBoard>,
    monitor: Arc<MonitorBoard>,
    metrics: ExporterMetrics,
}

impl Publisher {
    /// Least time between two renders, however often the state changes.
    const MIN_GAP: Duration = Duration::from_millis(500);
    /// Re-render this often even without task changes, so process metrics stay current.
    const REFRESH: Duration = Duration::from_secs(5);

    /// A publisher with an empty exposition; call [`Publisher::render_now`] or run it.
    pub fn new(
        store: Arc<Store>,
        sources: Arc<SourceBoard>,
        monitor: Arc<MonitorBoard>,
        metrics: ExporterMetrics,
        options: ExpositionOptions,
    ) -> Self {
        Self {
            current: ArcSwap::from_pointee(Exposition::default()),
            options: ArcSwap::from_pointee(options),
            rendering: std::sync::Mutex::new(Tracker::default()),
            store,
            sources,
            monitor,
            metrics,
        }
    }

    /// The latest complete exposition.
    pub fn current(&self) -> Arc<Exposition> {
        self.current.load_full()
    }

    /// Renders the current state and makes it the one served.
    pub fn render_now(&self) {
        let mut tracker = self
            .rendering
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let options = self.options.load_full();
        let next = render(
            &self.store,
            &self.sources,
            &self.monitor,
            &self.metrics,
            &options,
            &mut tracker,
        );
        // The old exposition goes as soon as the new one is in: two full copies never
        // outlive the swap.
        drop(self.current.swap(Arc::new(next)));
    }

    /// Takes the options of a new configuration; they apply from the next render.
    pub fn set_options(&self, options: ExpositionOptions) {
        self.options.store(Arc::new(options));
        self.store.changed.notify_one();
    }

    /// Renders on a blocking thread, so a large encode never stalls the async workers.
    pub async fn render_in_background(self: &Arc<Self>) {
        let publisher = Arc::clone(self);
        if let Err(error) = tokio::task::spawn_blocking(move || publisher.render_now()).await {
            tracing::error!(%error, "rendering the exposition failed");
        }
    }

    /// Re-renders after every change of state until `shutdown`. Changes that arrive during a
    /// render or the gap after it are coalesced into the next render; the gap grows with the
    /// render's cost so that encoding stays a small share of one core at any number of tasks.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = self.store.changed.notified() => {}
                () = self.sources.changed.notified() => {}
                () = self.monitor.changed.notified() => {}
                () = tokio::time::sleep(Self::REFRESH) => {}
                () = shutdown.cancelled() => return,
            }
            let started = Instant::now();
            self.render_in_background().await;
            let gap = Self::MIN_GAP.max(started.elapsed() * 4);
            tokio::select! {
                () = tokio::time::sleep(gap) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;
    use crate::api::model::{Progress, StatusData, SyncData};
    use crate::task::TaskSpec;

    /// 100 tasks as a long-lived account has them: 60 finished (Done, Success, Stopped,
    /// FailedUnrecoverable), 40 running (full loads and incremental ones).
    fn account() -> Store {
        let store = Store::new();
        let specs: Vec<Arc<TaskSpec>> = (0..100)
            .map(|i| Arc::new(TaskSpec::new(&format!("udts-{i:03}"))))
            .collect();
        store.set_tasks(specs.clone());
        let now = unix_now();
        for (i, spec) in specs.iter().enumerate() {
            let status = match i % 10 {
                0..=2 => "Done",
                3 => "Success",
                4 | 5 => "Stopped",
                6 => "FailedUnrecoverable",
                7 => "Loading",
                _ => "Syncing",
            };
            let data = StatusData {
                status: Some(status.into()),
                cur_retry_count: Some(0.0),
                max_retry_count: Some(3.0),
                progress: Some(Progress {
                    percentage: Some(100.0),
                    cur_count: Some(10.0),
                    total_count: Some(10.0),
                    ..Default::default()
                }),
                sync: Some(SyncData {
                    binlog_name: Some("mysql-bin.000002".into()),
                    binlog_pos: Some(4.0),
                    binlog_gtid: None,
                }),
                failed_message: (status == "FailedUnrecoverable").then(|| "gone".into()),
            };
            store.update(&spec.key(), |s| {
                s.after_poll(Ok(data), now).with_status_since(now - 60.0)
            });
        }
        store
    }

    #[test]
    fn the_exposition_counts_its_own_series_and_finished_tasks_stay_light() {
        let exposition = render(
            &account(),
            &SourceBoard::default(),
            &MonitorBoard::default(),
            &ExporterMetrics::new(),
            &Arc::new(ExpositionOptions::default()),
            &mut Tracker::default(),
        );
        let mut text = String::new();
        flate2::read::GzDecoder::new(&exposition.gzip[..])
            .read_to_string(&mut text)
            .unwrap();
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(exposition.series, samples.len() as u64);
        assert!(samples.contains(&format!("{SERIES_FAMILY} {}", samples.len()).as_str()));
        // Per task: at most 5 for each finished one, everything for a running one, and 10 on
        // average (the budget of 100,000 series for 10,000 tasks).
        let of = |i: usize| {
            let label = format!("task_id=\"udts-{i:03}\"");
            samples.iter().filter(|l| l.contains(&label)).count()
        };
        for i in 0..100 {
            let finished = i % 10 <= 6;
            assert!(!finished || of(i) <= 5, "udts-{i:03}: {}", of(i));
            assert!(finished || of(i) >= 12, "udts-{i:03}: {}", of(i));
        }
        let per_task: usize = (0..100).map(of).sum();
        assert!(per_task <= 10 * 100, "{per_task}");
    }
}
