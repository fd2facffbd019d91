//! A bounded window of a task's recent samples, on the monotonic clock, from which rates are
//! taken: a wall-clock step (NTP, a VM resumed) never makes a rate negative or infinite.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Samples kept per task at most, whatever the window and interval: the memory bound
/// (`BENCHMARKS.md` has the figure at 10,000 tasks).
pub const CAPACITY: usize = 16;

/// What a task had done at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// When, on the monotonic clock.
    pub at: Instant,
    /// `udts_task_source_applied_bytes_total` then, when the task is mapped to a source.
    pub applied: Option<u64>,
    /// The source's written bytes then (`udts_source_binlog_written_bytes_total`).
    pub written: Option<u64>,
    /// Full-load rows then.
    pub rows: Option<f64>,
}

impl Sample {
    /// Whether it holds anything a rate can be taken of.
    pub fn is_empty(&self) -> bool {
        self.applied.is_none() && self.written.is_none() && self.rows.is_none()
    }
}

/// A sample as kept: 32 bytes instead of 64, `u64::MAX` and NaN standing for "absent".
#[derive(Debug, Clone, Copy)]
struct Kept {
    /// Milliseconds after the window's epoch.
    at_ms: u32,
    applied: u64,
    written: u64,
    rows: f64,
}

/// The samples of the last `span`, plus the one just before it as the rate's starting point.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// When the first sample was taken: kept samples count milliseconds from here (49 days
    /// fit in a `u32`; the window restarts after that).
    epoch: Option<Instant>,
    samples: VecDeque<Kept>,
}

impl Window {
    /// Adds `sample`, dropping what fell out of `span`. Samples closer together than
    /// `span / (CAPACITY - 2)` replace the newest one, so a short interval cannot grow the
    /// window past [`CAPACITY`].
    pub fn push(&mut self, sample: Sample, span: Duration) {
        let epoch = *self.epoch.get_or_insert(sample.at);
        let Ok(at_ms) = u32::try_from(sample.at.saturating_duration_since(epoch).as_millis())
        else {
            *self = Self::default();
            return self.push(sample, span);
        };
        let kept = Kept {
            at_ms,
            applied: sample.applied.unwrap_or(u64::MAX),
            written: sample.written.unwrap_or(u64::MAX),
            rows: sample.rows.unwrap_or(f64::NAN),
        };
        let span_ms = u32::try_from(span.as_millis()).unwrap_or(u32::MAX);
        let spacing = span_ms / (CAPACITY as u32 - 2);
        let len = self.samples.len();
        if len >= 2 && at_ms.saturating_sub(self.samples[len - 2].at_ms) < spacing {
            self.samples.pop_back();
        }
        if self.samples.len() == CAPACITY {
            self.samples.pop_front();
        }
        if self.samples.capacity() == 0 {
            // Exactly the bound: growing by doubling would hold twice that.
            self.samples.reserve_exact(CAPACITY);
        }
        self.samples.push_back(kept);
        // Keep exactly one sample older than the span: the rate's starting point.
        while self.samples.len() > 2 && self.samples[1].at_ms.saturating_add(span_ms) <= at_ms {
            self.samples.pop_front();
        }
    }

    /// Per second, the growth of `value` from the oldest to the newest sample that both have
    /// it, when they are at least half of `span` apart (fewer samples make no rate). Never
    /// negative: a value that went down (a restart from an earlier point) has no rate.
    pub fn rate(&self, span: Duration, value: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
        let epoch = self.epoch?;
        let sample = |kept: &Kept| Sample {
            at: epoch + Duration::from_millis(u64::from(kept.at_ms)),
            applied: (kept.applied != u64::MAX).then_some(kept.applied),
            written: (kept.written != u64::MAX).then_some(kept.written),
            rows: (!kept.rows.is_nan()).then_some(kept.rows),
        };
        let last = self
            .samples
            .iter()
            .rev()
            .map(sample)
            .find(|s| value(s).is_some())?;
        let first = self
            .samples
            .iter()
            .map(sample)
            .find(|s| value(s).is_some())?;
        let elapsed = last.at.checked_duration_since(first.at)?;
        if elapsed < span / 2 || elapsed.is_zero() {
            return None;
        }
        let grown = value(&last)? - value(&first)?;
        (grown >= 0.0).then(|| grown / elapsed.as_secs_f64())
    }

    /// How many samples are held (for the memory bound's test).
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no sample is held.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, seconds: u64, applied: u64) -> Sample {
        Sample {
            at: start + Duration::from_secs(seconds),
            applied: Some(applied),
            written: None,
            rows: None,
        }
    }

    #[test]
    fn the_rate_is_taken_over_the_window_and_needs_half_of_it() {
        let start = Instant::now();
        let span = Duration::from_secs(60);
        let mut window = Window::default();
        let applied = |s: &Sample| s.applied.map(|a| a as f64);
        window.push(at(start, 0, 0), span);
        window.push(at(start, 20, 2_000), span);
        assert_eq!(window.rate(span, applied), None, "20 s of a 60 s window");
        window.push(at(start, 30, 3_000), span);
        assert_eq!(window.rate(span, applied), Some(100.0));
        // Faster now: the old samples leave the window and the rate follows.
        for t in (40..=200).step_by(10) {
            window.push(at(start, t, 3_000 + (t - 30) * 500), span);
        }
        assert_eq!(window.rate(span, applied), Some(500.0));
        assert!(window.len() <= 8, "{}", window.len());
    }

    #[test]
    fn a_value_that_went_down_has_no_rate_and_dense_samples_stay_bounded() {
        let start = Instant::now();
        let span = Duration::from_secs(60);
        let mut window = Window::default();
        let applied = |s: &Sample| s.applied.map(|a| a as f64);
        window.push(at(start, 0, 5_000), span);
        window.push(at(start, 40, 1_000), span);
        assert_eq!(window.rate(span, applied), None);
        for ms in 0..10_000u64 {
            window.push(
                Sample {
                    at: start + Duration::from_millis(40_000 + ms * 10),
                    ..at(start, 0, ms)
                },
                span,
            );
        }
        assert!(window.len() <= CAPACITY, "{}", window.len());
    }
}
