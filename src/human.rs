//! Durations and sizes as people read them, one way everywhere: the cut-over verdict, the
//! deadlines, the page (server-rendered and its script) and `check` all say "1 h 30 min" and
//! "12.4 MiB" the same way.
//!
//! The page's script has a twin of each function (`page/udts.js`, between `human: begin` and
//! `human: end`); `tests/human_twin.rs` runs both on the same values. Rounding is done on whole
//! numbers (half away from zero, as `Math.round` does for the non-negative values here), never
//! by a float formatter: Rust formats 1.25 to one decimal as "1.2" and JavaScript as "1.3".

/// A span in its two largest units, the smaller rounded and left out when zero: "45 s",
/// "2 min 5 s", "1 h 30 min", "6 days 2 h", "1 day". A negative or non-finite span is "0 s".
pub fn duration(seconds: f64) -> String {
    let seconds = if seconds.is_finite() {
        seconds.max(0.0).round() as u64
    } else {
        0
    };
    if seconds < 60 {
        return format!("{seconds} s");
    }
    if seconds < 3600 {
        return two(seconds / 60, "min", seconds % 60, "s");
    }
    let minutes = (seconds + 30) / 60;
    if minutes < 24 * 60 {
        return two(minutes / 60, "h", minutes % 60, "min");
    }
    let hours = (seconds + 1800) / 3600;
    let days = hours / 24;
    two(
        days,
        if days == 1 { "day" } else { "days" },
        hours % 24,
        "h",
    )
}

fn two(large: u64, large_unit: &str, small: u64, small_unit: &str) -> String {
    if small == 0 {
        format!("{large} {large_unit}")
    } else {
        format!("{large} {large_unit} {small} {small_unit}")
    }
}

/// A short time such as a network round trip: "250 ms" under a second, else "1.3 s".
pub fn latency(seconds: f64) -> String {
    let seconds = if seconds.is_finite() {
        seconds.max(0.0)
    } else {
        0.0
    };
    if seconds < 1.0 {
        return format!("{} ms", (seconds * 1000.0).round() as u64);
    }
    tenths((seconds * 10.0).round() as u64, "s")
}

/// A size in binary units with one decimal: "512 B", "39.1 KiB", "1.0 GiB".
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    let mut rounded = (value * 10.0).round() as u64;
    // 1023.96 KiB rounds to 1024.0 KiB: say 1.0 MiB.
    if rounded >= 10_240 && unit < UNITS.len() - 1 {
        unit += 1;
        rounded = (value / 1024.0 * 10.0).round() as u64;
    }
    tenths(rounded, UNITS[unit])
}

/// `tenths` tenths of `unit`: "39.1 KiB".
fn tenths(tenths: u64, unit: &str) -> String {
    format!("{}.{} {unit}", tenths / 10, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: f64 = 60.0;
    const HOUR: f64 = 3600.0;
    const DAY: f64 = 86_400.0;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(45.0), "45 s");
        assert_eq!(duration(125.0), "2 min 5 s");
        assert_eq!(duration(7.0 * MINUTE), "7 min");
        assert_eq!(duration(1.5 * HOUR), "1 h 30 min");
        assert_eq!(duration(3.0 * HOUR + 12.0 * MINUTE + 5.0), "3 h 12 min");
        assert_eq!(duration(21.0 * HOUR + 10.0), "21 h");
        assert_eq!(duration(DAY + HOUR), "1 day 1 h");
        assert_eq!(duration(6.0 * DAY + 2.0 * HOUR), "6 days 2 h");
    }

    #[test]
    fn durations_round_and_carry_into_the_larger_unit() {
        // Half a second rounds up, as the script's Math.round does.
        assert_eq!(duration(1.5), "2 s");
        assert_eq!(duration(2.5), "3 s");
        assert_eq!(duration(59.6), "1 min");
        // 22 h less a few seconds of elapsed time is still "22 h", not "21 h 59 min".
        assert_eq!(duration(22.0 * HOUR - 3.0), "22 h");
        assert_eq!(duration(DAY - 20.0), "1 day");
        assert_eq!(duration(-5.0), "0 s");
        assert_eq!(duration(f64::NAN), "0 s");
    }

    #[test]
    fn sizes_and_latencies_round_half_up_on_whole_tenths() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(40_000), "39.1 KiB");
        assert_eq!(size(5 * 1024 * 1024), "5.0 MiB");
        // 1.25 KiB: Rust's {:.1} says "1.2", the script's toFixed(1) "1.3"; both say 1.3 here.
        assert_eq!(size(1280), "1.3 KiB");
        assert_eq!(size(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(latency(0.25), "250 ms");
        assert_eq!(latency(1.25), "1.3 s");
    }
}
