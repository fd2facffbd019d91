//! The task page's sentences: a task's lag behind its source and its outlook (throughput,
//! ETA, cut-over) in words, with sizes and durations as people read them.

use crate::config::Cutover;
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
        parts.push(bytes_text(bytes));
    }
    parts.push(format!(
        "{} file{}",
        lag.files,
        if lag.files == 1 { "" } else { "s" }
    ));
    if let Some(transactions) = lag.transactions {
        parts.push(format!("{transactions} transactions"));
    }
    let mut text = parts.join(", ");
    match lag.seconds {
        Some(seconds) => text.push_str(&format!(
            ", about {} behind {source}",
            seconds_text(seconds)
        )),
        None => text.push_str(&format!(" behind {source}")),
    }
    if purge_risk {
        text.push_str("; its binlog file is the oldest on the source (purge risk)");
    }
    text
}

fn bytes_text(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn seconds_text(seconds: f64) -> String {
    match seconds {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.0} min", s / 60.0),
        s => format!("{:.1} h", s / 3600.0),
    }
}

/// A task's outlook in one sentence, where one applies: ready for cut-over, catching up or
/// falling behind its source, or a full load's rate and time left.
pub(super) fn outlook_sentence(outlook: &Outlook, rule: &Cutover) -> Option<String> {
    if outlook.cutover.ready == Some(true) {
        return Some(format!(
            "ready for cut-over: within {} of the head for {}",
            seconds_text(rule.max_lag.as_secs_f64()),
            seconds_text(outlook.steady.as_secs_f64())
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
                bytes_text(apply as u64),
                bytes_text(write as u64),
                seconds_text(eta.seconds as f64)
            ));
        }
        if behind && outlook.beyond_max_lag && apply < write {
            return Some(format!(
                "falling behind: applies {}/s, the source writes {}/s",
                bytes_text(apply as u64),
                bytes_text(write as u64)
            ));
        }
        return None;
    }
    let rows = rates.rows_per_second?;
    let eta = outlook.eta.filter(|e| e.basis == EtaBasis::FullLoad)?;
    let mut text = format!(
        "full load at {} rows/s: about {} left",
        grouped(rows.round() as u64),
        seconds_text(eta.seconds as f64)
    );
    if let Some(udts) = eta.udts_estimate_seconds {
        text.push_str(&format!(" (UDTS estimates {})", seconds_text(udts as f64)));
    }
    Some(text)
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
