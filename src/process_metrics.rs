//! The standard `process_*` metrics, each one either true or absent.
//!
//! The `prometheus` crate's process collector takes the start time from the boot time in
//! `/proc/stat`, which the shipped systemd unit hides (`ProcSubset=pid`); it then serves
//! `process_start_time_seconds 0`, and a gauge it failed to read keeps its last (or zero) value.
//! This collector records the start time in the process itself and emits a family only when
//! its value was read in this collection.

use std::sync::LazyLock;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Counter, Gauge, Opts};

use crate::time::unix_now;

/// The wall-clock time the process started, taken the first time anything asks; the binary asks
/// first thing in `main` through [`record_start_time`].
static START_TIME: LazyLock<f64> = LazyLock::new(unix_now);

/// Records now as the process's start time (idempotent).
pub fn record_start_time() {
    LazyLock::force(&START_TIME);
}

/// The process's start time in unix seconds.
pub fn start_time() -> f64 {
    *START_TIME
}

const CPU: (&str, &str) = (
    "process_cpu_seconds_total",
    "Total user and system CPU time spent in seconds.",
);
const OPEN_FDS: (&str, &str) = ("process_open_fds", "Number of open file descriptors.");
const MAX_FDS: (&str, &str) = (
    "process_max_fds",
    "Maximum number of open file descriptors.",
);
const VIRTUAL_MEMORY: (&str, &str) = (
    "process_virtual_memory_bytes",
    "Virtual memory size in bytes.",
);
const RESIDENT_MEMORY: (&str, &str) = (
    "process_resident_memory_bytes",
    "Resident memory size in bytes.",
);
const START: (&str, &str) = (
    "process_start_time_seconds",
    "Start time of the process since unix epoch in seconds.",
);
const THREADS: (&str, &str) = ("process_threads", "Number of OS threads in the process.");

/// Collects the `process_*` families from `/proc/self` at every gather.
pub struct ProcessCollector {
    descs: Vec<Desc>,
}

impl Default for ProcessCollector {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessCollector {
    /// A collector for this process; forces the start time to be recorded if it was not yet.
    pub fn new() -> Self {
        record_start_time();
        let descs = [
            CPU,
            OPEN_FDS,
            MAX_FDS,
            VIRTUAL_MEMORY,
            RESIDENT_MEMORY,
            START,
            THREADS,
        ]
        .iter()
        .filter_map(|(name, help)| {
            Desc::new(
                (*name).into(),
                (*help).into(),
                Vec::new(),
                Default::default(),
            )
            .ok()
        })
        .collect();
        Self { descs }
    }
}

fn gauge((name, help): (&str, &str), value: f64) -> Vec<MetricFamily> {
    Gauge::with_opts(Opts::new(name, help)).map_or_else(
        |_| Vec::new(),
        |gauge| {
            gauge.set(value);
            gauge.collect()
        },
    )
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut families = gauge(START, start_time());
        #[cfg(target_os = "linux")]
        collect_from_procfs(&mut families);
        families
    }
}

/// Appends what `/proc/self` yields; a file that cannot be read leaves its families out.
#[cfg(target_os = "linux")]
fn collect_from_procfs(families: &mut Vec<MetricFamily>) {
    let Ok(process) = procfs::process::Process::myself() else {
        return;
    };
    if let Ok(stat) = process.stat() {
        let ticks = procfs::ticks_per_second() as f64;
        if let Ok(cpu) = Counter::with_opts(Opts::new(CPU.0, CPU.1)) {
            cpu.inc_by((stat.utime + stat.stime) as f64 / ticks);
            families.extend(cpu.collect());
        }
        families.extend(gauge(VIRTUAL_MEMORY, stat.vsize as f64));
        families.extend(gauge(
            RESIDENT_MEMORY,
            stat.rss as f64 * procfs::page_size() as f64,
        ));
        families.extend(gauge(THREADS, stat.num_threads as f64));
    }
    if let Ok(open) = process.fd_count() {
        families.extend(gauge(OPEN_FDS, open as f64));
    }
    if let Ok(limits) = process.limits() {
        if let procfs::process::LimitValue::Value(max) = limits.max_open_files.soft_limit {
            families.extend(gauge(MAX_FDS, max as f64));
        }
    }
}
