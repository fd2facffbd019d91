//! The timeouts, bounds and windows of the configuration: what a client may hold of the
//! endpoints (`[web]`) and the windows the cut-over verdict and its rates are taken over
//! (`[cutover]`), with the defaults that follow other keys and the refusals that name the key.

use std::time::Duration;

use super::{invalid, Config, ConfigError};

/// The `[web]` timeouts and bounds, validated: what a client may hold of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebLimits {
    /// Deadline for a complete request head, from its first byte (or the connection's start).
    pub read_header_timeout: Duration,
    /// A keep-alive connection without a request closes after this long.
    pub idle_timeout: Duration,
    /// A response making no progress this long is cut off.
    pub write_timeout: Duration,
    /// The TLS handshake must complete within this long.
    pub tls_handshake_timeout: Duration,
    /// Connections open at most.
    pub max_connections: usize,
    /// Requests handled at once (`None`: no limit).
    pub max_requests: Option<usize>,
}

impl Default for WebLimits {
    fn default() -> Self {
        Self {
            read_header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            write_timeout: Duration::from_secs(30),
            tls_handshake_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_requests: Some(40),
        }
    }
}

/// `[cutover]` with its defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutover {
    /// A ready task is at most this far behind its source ...
    pub max_lag: Duration,
    /// ... continuously for at least this long (and its retries did not grow meanwhile).
    pub steady_for: Duration,
    /// Rates and ETAs are taken over this much recent time.
    pub rate_window: Duration,
    /// A task judged by UDTS's monitoring has at most this many bytes left to apply.
    pub max_remaining: u64,
}

/// UDTS's cut-over guide waits for "less than 5 MB remaining".
pub const DEFAULT_MAX_REMAINING: u64 = 5 * 1024 * 1024;

impl Default for Cutover {
    fn default() -> Self {
        Self {
            max_lag: Duration::from_secs(10),
            steady_for: Duration::from_secs(300),
            rate_window: Duration::from_secs(60),
            max_remaining: DEFAULT_MAX_REMAINING,
        }
    }
}

impl Config {
    /// `[web]`'s timeouts and bounds, each refused by name when it would cut off every
    /// client or let none in.
    pub(super) fn web_limits(&self) -> Result<WebLimits, ConfigError> {
        let web = &self.web;
        for (key, value) in [
            ("web.read_header_timeout", web.read_header_timeout),
            ("web.idle_timeout", web.idle_timeout),
            ("web.write_timeout", web.write_timeout),
        ] {
            if value < Duration::from_millis(100) {
                return Err(invalid(
                    key,
                    format!(
                        "{} would cut off every client",
                        humantime::format_duration(value)
                    ),
                    "leave it out for the default, or give at least \"1s\"",
                ));
            }
        }
        if web.max_connections < 2 {
            return Err(invalid(
                "web.max_connections",
                format!(
                    "{} leaves no room for a scrape beside another client",
                    web.max_connections
                ),
                "leave it out (1024), or give at least 2",
            ));
        }
        Ok(WebLimits {
            read_header_timeout: web.read_header_timeout,
            idle_timeout: web.idle_timeout,
            write_timeout: web.write_timeout,
            // As the head: a handshake is the first thing a TLS client sends.
            tls_handshake_timeout: web.read_header_timeout,
            max_connections: web.max_connections,
            max_requests: (web.max_requests > 0).then_some(web.max_requests),
        })
    }

    /// `[cutover]` with its defaults, checked against the poll interval: a window needs two
    /// polls to hold a rate, and one sample must not decide readiness.
    pub(super) fn cutover_settings(&self, interval: Duration) -> Result<Cutover, ConfigError> {
        let given = self.cutover;
        let human = |d: Duration| humantime::format_duration(d).to_string();
        let max_lag = given.max_lag.unwrap_or(Duration::from_secs(10));
        if max_lag.is_zero() {
            return Err(invalid(
                "cutover.max_lag",
                "it is 0: no task is ever exactly at the head",
                "set how far behind a ready task may be, e.g. \"10s\"",
            ));
        }
        let floor = interval * 2;
        let rate_window = given
            .rate_window
            .unwrap_or_else(|| Duration::from_secs(60).max(floor));
        if rate_window < floor {
            return Err(invalid(
                "cutover.rate_window",
                format!(
                    "{} holds fewer than two polls at poll.interval {}",
                    human(rate_window),
                    human(interval)
                ),
                format!("set it to at least {}, or leave it out", human(floor)),
            ));
        }
        let steady_for = given
            .steady_for
            .unwrap_or_else(|| Duration::from_secs(300).max(floor));
        if steady_for < floor {
            return Err(invalid(
                "cutover.steady_for",
                format!(
                    "{} is shorter than two polls at poll.interval {}: one sample would decide",
                    human(steady_for),
                    human(interval)
                ),
                format!("set it to at least {}, or leave it out", human(floor)),
            ));
        }
        let max_remaining = given
            .max_remaining
            .map_or(DEFAULT_MAX_REMAINING, |size| size.as_u64());
        if max_remaining == 0 {
            return Err(invalid(
                "cutover.max_remaining",
                "it is 0: UDTS never reports exactly nothing left while the source writes",
                "set how much data a ready task may have left to apply, e.g. \"5MiB\"",
            ));
        }
        Ok(Cutover {
            max_lag,
            steady_for,
            rate_window,
            max_remaining,
        })
    }
}
