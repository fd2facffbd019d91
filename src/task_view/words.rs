//! The task page's sentences: a task's lag behind its source and its outlook (throughput,
//! ETA, cut-over) in words, with sizes and durations as people read them.

use crate::config::Cutover;
use crate::human::{duration, size};
use crate::outlook::{EtaBasis, Outlook};
use crate::source::lag::TaskLag;

pub(super) fn summary(source: &str, lag: &TaskLag, purge_risk: bool) -> String {
    if !lag.retained {
        return format!("binlog purged on {source}: the task cannot resume from its position");
    }
    if lag.bytes == Some(0) {
        return format!("at the head of {source}");
    }
    let mut parts = Vec::new();
    if let Some(bytes) = lag.bytes {
        parts.push(size(bytes));
    }
    // Within the head file (and always for a PostgreSQL slot) a file count says nothing.
    if lag.files > 0 {
        parts.push(format!(
            "{} file{}",
            lag.files,
            if lag.files == 1 { "" } else { "s" }
        ));
    }
    if let Some(transactions) = lag.transactions {
        parts.push(format!("{transactions} transactions"));
    }
    let mut text = parts.join(", ");
    match lag.seconds {
        Some(seconds) => text.push_str(&format!(", about {} behind {source}", duration(seconds))),
        None => text.push_str(&format!(" behind {source}")),
    }
    if purge_risk {
        text.push_str("; its binlog file is the oldest on the source (purge risk)");
    }
    text
}

/// A task's outlook in one sentence, where one applies: ready for cut-over, catching up or
/// falling behind its source, or a full load's rate and time left.
pub(super) fn outlook_sentence(outlook: &Outlook, rule: &Cutover) -> Option<String> {
    if outlook.cutover.ready == Some(true) {
        return Some(format!(
            "ready for cut-over: within {} of the head for {}",
            duration(rule.max_lag.as_secs_f64()),
            duration(outlook.steady.as_secs_f64())
        ));
    }
    let rates = outlook.throughput?;
    if let (Some(apply), Some(write)) = (
        rates.applied_bytes_per_second,
        rates.source_written_bytes_per_second,
    ) {
        let behind = outlook.lag_bytes.is_some_and(|b| b > 0);
        if let Some(eta) = outlook.eta.filter(|e| e.basis == EtaBasis::CatchUp) {
            return Some(format!(
                "catching up at {}/s while the source writes {}/s: at the head in about {}",
                size(apply as u64),
                size(write as u64),
                duration(eta.seconds as f64)
            ));
        }
        if behind && outlook.beyond_max_lag && apply < write {
            return Some(format!(
                "falling behind: applies {}/s, the source writes {}/s",
                size(apply as u64),
                size(write as u64)
            ));
        }
        return None;
    }
    let rows = rates.rows_per_second?;
    let eta = outlook.eta.filter(|e| e.basis == EtaBasis::FullLoad)?;
    let mut text = format!(
        "full load at {} rows/s: about {} left",
        grouped(rows.round() as u64),
        duration(eta.seconds as f64)
    );
    if let Some(udts) = eta.udts_estimate_seconds {
        text.push_str(&format!(" (UDTS estimates {})", duration(udts as f64)));
    }
    Some(text)
}

/// Said after UDTS's numbers when the sync delay sample is shown but too old for the cut-over
/// verdict to judge by (the page's script says the same).
pub(super) const TOO_OLD_FOR_VERDICT: &str = "(too old for the cut-over verdict)";

/// UDTS's own view of an incremental task in words, from its monitoring: the sync delay and
/// the data left to apply ("UDTS: sync delay 3 s, 1.2 MiB left to apply, about 40 s").
pub(super) fn monitor_sentence(
    delay: Option<f64>,
    remaining: Option<f64>,
    estimate: Option<f64>,
) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(delay) = delay {
        parts.push(format!("sync delay {}", duration(delay)));
    }
    if let Some(remaining) = remaining {
        let mut text = format!("{} left to apply", size(remaining as u64));
        if let Some(estimate) = estimate.filter(|e| *e >= 1.0 && remaining > 0.0) {
            text.push_str(&format!(", about {}", duration(estimate)));
        }
        parts.push(text);
    }
    (!parts.is_empty()).then(|| format!("UDTS: {}", parts.join(", ")))
}

/// UDTS's read and write speeds and its network latency to each end, in words: a slow
/// network is the usual reason a sync cannot keep up.
pub(super) fn monitor_detail(
    read: (Option<f64>, Option<f64>),
    write: (Option<f64>, Option<f64>),
    source_latency: Option<f64>,
    target_latency: Option<f64>,
) -> Option<String> {
    let speed = |verb: &str, (bytes, rows): (Option<f64>, Option<f64>)| {
        let bytes = bytes.map(|b| format!("{}/s", size(b as u64)));
        let rows = rows.map(|r| format!("{} rows/s", grouped(r.round() as u64)));
        match (bytes, rows) {
            (Some(bytes), Some(rows)) => Some(format!("{verb} {bytes} ({rows})")),
            (Some(one), None) | (None, Some(one)) => Some(format!("{verb} {one}")),
            (None, None) => None,
        }
    };
    let latency = |end: &str, seconds: Option<f64>| {
        seconds.map(|s| format!("{end} {}", crate::human::latency(s)))
    };
    let speeds: Vec<String> = [speed("reads", read), speed("writes", write)]
        .into_iter()
        .flatten()
        .collect();
    let latencies: Vec<String> = [
        latency("source", source_latency),
        latency("target", target_latency),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut text = speeds.join(", ");
    if !latencies.is_empty() {
        if !text.is_empty() {
            text.push_str("; ");
        }
        text.push_str(&format!("network latency to {}", latencies.join(", ")));
    }
    (!text.is_empty()).then_some(text)
}

/// A count with thousands separators, `1240` as "1,240": for reading (never for positions,
/// which are pasted into `mysqlbinlog`).
pub fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
