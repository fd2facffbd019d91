//! Is a task ready for cut-over? The rule, as a pure function of what the tracker has seen, so
//! that each clause is tested alone.
//!
//! Ready when all hold: status `Syncing` or `Synced`; read successfully within the last two
//! intervals; its lag at most `max_lag` (and, judged by UDTS's monitoring, its data remaining at
//! most `max_remaining`, from a sample no older than two monitoring intervals past its
//! publication) for at least `steady_for`; its retries not increased in that time. No verdict
//! (never a guess) for a full-only task, a lag that cannot be known (a MySQL task with neither a
//! source nor a monitoring sample), or before `steady_for` of samples exist.

use std::time::Duration;

use crate::config::Cutover;
use crate::human::size;

/// What the verdict is judged from, at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// The task's status.
    pub status: Option<String>,
    /// Whether the task only does a full load (`mode = "full"`).
    pub full_only: bool,
    /// Time since the last successful read.
    pub since_read: Option<Duration>,
    /// The lag now, or why it cannot be known.
    pub lag: Result<Duration, String>,
    /// The data left to apply, where UDTS's monitoring reports it.
    pub remaining: Option<u64>,
    /// For a lag from UDTS's monitoring: its sample's age, and the most it may be.
    pub sample_age: Option<(Duration, Duration)>,
    /// How long the exporter has watched the task's lag.
    pub watched: Duration,
    /// How long the lag has been at most `max_lag` without a break (zero when it is not now).
    pub steady: Duration,
    /// Time since the retries last grew, if they did while watched.
    pub since_retry: Option<Duration>,
}

/// The verdict: ready, not ready, or not judged; and what stands in the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// `Some(true)` ready, `Some(false)` not ready, `None` cannot be judged.
    pub ready: Option<bool>,
    /// Why it is not ready or cannot be judged, in words, most important first.
    pub blocking: Vec<String>,
}

/// A duration in words for the `blocking` reasons.
fn words(duration: Duration) -> String {
    crate::human::duration(duration.as_secs_f64())
}

/// Judges `facts` under `rule`, with `interval` the poll interval.
pub fn judge(facts: &Facts, rule: &Cutover, interval: Duration) -> Verdict {
    let unjudged = |reason: String| Verdict {
        ready: None,
        blocking: vec![reason],
    };
    if facts.full_only {
        return unjudged("a full-only task has no cut-over".into());
    }
    let mut blocking = Vec::new();
    let status = facts.status.as_deref().unwrap_or("unknown");
    if !crate::status::INCREMENTAL.contains(&status) {
        blocking.push(format!("status {status}, not in the incremental phase"));
    }
    match facts.since_read {
        None => blocking.push("never read".into()),
        Some(age) if age > interval * 2 => {
            blocking.push(format!("last read {} ago", words(age)));
        }
        Some(_) => {}
    }
    if let Some((age, _)) = facts.sample_age.filter(|(age, allowed)| age > allowed) {
        blocking.push(format!("monitoring sample {} old", words(age)));
    }
    let lag = match &facts.lag {
        Ok(lag) => *lag,
        Err(reason) if blocking.is_empty() => return unjudged(reason.clone()),
        // Not ready whatever the lag: the status or the read says so, and is the news.
        Err(_) => {
            return Verdict {
                ready: Some(false),
                blocking,
            }
        }
    };
    if lag > rule.max_lag {
        blocking.push(format!("lag {} over {}", words(lag), words(rule.max_lag)));
    }
    if let Some(remaining) = facts.remaining.filter(|r| *r > rule.max_remaining) {
        blocking.push(format!(
            "{} left to apply, over {}",
            size(remaining),
            size(rule.max_remaining)
        ));
    }
    if let Some(since) = facts.since_retry.filter(|since| *since < rule.steady_for) {
        blocking.push(format!("retried {} ago", words(since)));
    }
    if !blocking.is_empty() {
        return Verdict {
            ready: Some(false),
            blocking,
        };
    }
    if facts.steady < rule.steady_for {
        let reason = format!(
            "within {} of the head for {} of {}",
            words(rule.max_lag),
            words(facts.steady),
            words(rule.steady_for)
        );
        // Watched for less than `steady_for`: the lag before is unknown, so no verdict.
        if facts.watched < rule.steady_for {
            return unjudged(format!("{reason}; watched {} so far", words(facts.watched)));
        }
        return Verdict {
            ready: Some(false),
            blocking: vec![reason],
        };
    }
    Verdict {
        ready: Some(true),
        blocking: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Cutover {
        Cutover {
            max_lag: Duration::from_secs(10),
            steady_for: Duration::from_secs(300),
            rate_window: Duration::from_secs(60),
            max_remaining: 5 * 1024 * 1024,
        }
    }

    fn steady() -> Facts {
        Facts {
            status: Some("Syncing".into()),
            full_only: false,
            since_read: Some(Duration::from_secs(3)),
            lag: Ok(Duration::from_secs(2)),
            remaining: None,
            sample_age: None,
            watched: Duration::from_secs(600),
            steady: Duration::from_secs(420),
            since_retry: None,
        }
    }

    fn judged(facts: Facts) -> Verdict {
        judge(&facts, &rule(), Duration::from_secs(30))
    }

    #[test]
    fn steady_within_max_lag_for_steady_for_is_ready() {
        assert_eq!(judged(steady()).ready, Some(true));
        let synced = Facts {
            status: Some("Synced".into()),
            ..steady()
        };
        assert_eq!(judged(synced).ready, Some(true));
        // Judged by UDTS's monitoring: a current sample and little data left.
        let monitored = Facts {
            remaining: Some(4 * 1024 * 1024),
            sample_age: Some((Duration::from_secs(170), Duration::from_secs(180))),
            ..steady()
        };
        assert_eq!(judged(monitored).ready, Some(true));
    }

    #[test]
    fn each_clause_blocks_with_its_reason() {
        let cases = [
            (
                Facts {
                    lag: Ok(Duration::from_secs(42)),
                    steady: Duration::ZERO,
                    ..steady()
                },
                "lag 42 s over 10 s",
            ),
            (
                Facts {
                    status: Some("Failed".into()),
                    ..steady()
                },
                "status Failed, not in the incremental phase",
            ),
            (
                Facts {
                    since_read: Some(Duration::from_secs(61)),
                    ..steady()
                },
                "last read 1 min 1 s ago",
            ),
            (
                Facts {
                    since_retry: Some(Duration::from_secs(130)),
                    ..steady()
                },
                "retried 2 min 10 s ago",
            ),
            (
                Facts {
                    remaining: Some(12 * 1024 * 1024),
                    ..steady()
                },
                "12.0 MiB left to apply, over 5.0 MiB",
            ),
            (
                Facts {
                    sample_age: Some((Duration::from_secs(420), Duration::from_secs(180))),
                    ..steady()
                },
                "monitoring sample 7 min old",
            ),
            (
                Facts {
                    steady: Duration::from_secs(120),
                    ..steady()
                },
                "within 10 s of the head for 2 min of 5 min",
            ),
        ];
        for (facts, reason) in cases {
            let verdict = judged(facts);
            assert_eq!(verdict.ready, Some(false), "{reason}");
            assert_eq!(verdict.blocking, [reason]);
        }
    }

    #[test]
    fn what_cannot_be_known_gets_no_verdict() {
        let full = Facts {
            full_only: true,
            ..steady()
        };
        assert_eq!(judged(full).ready, None);
        let unknown = Facts {
            lag: Err("no [[sources]] entry maps this task".into()),
            ..steady()
        };
        let verdict = judged(unknown);
        assert_eq!(verdict.ready, None);
        assert_eq!(verdict.blocking, ["no [[sources]] entry maps this task"]);
        let young = Facts {
            watched: Duration::from_secs(90),
            steady: Duration::from_secs(90),
            ..steady()
        };
        let verdict = judged(young);
        assert_eq!(verdict.ready, None);
        assert!(
            verdict.blocking[0].contains("watched 1 min 30 s so far"),
            "{verdict:?}"
        );
        // A lag over the bound is not ready however short the watch.
        let spike = Facts {
            watched: Duration::from_secs(5),
            lag: Ok(Duration::from_secs(30)),
            ..steady()
        };
        assert_eq!(judged(spike).ready, Some(false));
    }
}
