//! The web server's own counters (open connections, closes by reason, accept errors, refusals
//! at a bound), one set per process, adopted by the exporter's registry.

use std::sync::LazyLock;

use prometheus::core::Collector;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};

use super::connections::CLOSE_REASONS;

/// The web counters: one server per process, adopted by the exporter's registry.
pub(super) struct WebEvents {
    pub(super) open: IntGauge,
    pub(super) closed: IntCounterVec,
    pub(super) accept_errors: IntCounter,
    pub(super) rejected: IntCounterVec,
}

fn must<T>(metric: prometheus::Result<T>) -> T {
    metric.unwrap_or_else(|error| panic!("invalid metric definition: {error}"))
}

pub(super) static EVENTS: LazyLock<WebEvents> = LazyLock::new(|| {
    let closed = must(IntCounterVec::new(
        Opts::new(
            "udts_web_connections_closed_total",
            "Connections the exporter closed because the client held them too long, or to make room, by reason.",
        ),
        &["reason"],
    ));
    for reason in CLOSE_REASONS {
        closed.with_label_values(&[reason]);
    }
    let rejected = must(IntCounterVec::new(
        Opts::new(
            "udts_web_requests_rejected_total",
            "Requests or connections refused at a bound, by reason (max_requests: 503; max_connections: every place was held and no whole request arrived while the connection waited).",
        ),
        &["reason"],
    ));
    for reason in ["max_requests", "max_connections"] {
        rejected.with_label_values(&[reason]);
    }
    WebEvents {
        open: must(IntGauge::new(
            "udts_web_open_connections",
            "Connections open to the exporter's endpoints.",
        )),
        closed,
        accept_errors: must(IntCounter::new(
            "udts_web_accept_errors_total",
            "Failed accepts (EMFILE, ENFILE, ENOBUFS, ...): each makes the listener back off.",
        )),
        rejected,
    }
});

/// The web counters, for the exporter's registry.
pub fn collectors() -> Vec<Box<dyn Collector>> {
    vec![
        Box::new(EVENTS.open.clone()),
        Box::new(EVENTS.closed.clone()),
        Box::new(EVENTS.accept_errors.clone()),
        Box::new(EVENTS.rejected.clone()),
    ]
}
