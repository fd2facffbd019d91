//! The HTTP side: `/metrics` (or the configured path) serves the latest prepared exposition,
//! `/healthz` says the process is alive, `/readyz` says the first poll cycle is done,
//! `POST /-/reload` re-reads the configuration, and `/` links to them. No handler ever calls the API or waits on the poller.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::exposition::{Publisher, CONTENT_TYPE};

/// What the handlers read.
#[derive(Clone)]
pub struct AppState {
    /// The latest exposition.
    pub publisher: Arc<Publisher>,
    /// True once the first poll cycle is done.
    pub ready: Arc<AtomicBool>,
    /// Where the metrics are served, for the links on `/`.
    pub telemetry_path: String,
    /// Applies a new configuration on `POST /-/reload`.
    pub reloader: Arc<dyn Reload>,
    /// Whether `POST /-/reload` may be used (`--web.enable-lifecycle`).
    pub lifecycle: bool,
}

/// Applies a new configuration (the exporter's reloader); the server only triggers it.
pub trait Reload: Send + Sync {
    /// Loads, validates and applies the configuration; on error the old one stays in force.
    fn reload(&self) -> anyhow::Result<()>;
}

/// The router, separate from serving so tests can drive it directly.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route(&state.telemetry_path, get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/-/reload", post(reload))
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown`, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn index(State(state): State<AppState>) -> Html<String> {
    let path = &state.telemetry_path;
    Html(format!(
        "<!doctype html><html><head><title>UDTS exporter</title></head><body>\
         <h1>UDTS exporter</h1><p>Prometheus exporter for UCloud UDTS tasks, version {}.</p>\
         <ul><li><a href=\"{path}\">Metrics</a></li><li><a href=\"/healthz\">Health</a></li>\
         <li><a href=\"/readyz\">Readiness</a></li></ul></body></html>",
        env!("CARGO_PKG_VERSION")
    ))
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let exposition = state.publisher.current();
    let gzip = accepts_gzip(&headers) && !exposition.gzip.is_empty();
    let body = if gzip {
        exposition.gzip.clone()
    } else {
        exposition.text.clone()
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)),
            (header::VARY, HeaderValue::from_static("Accept-Encoding")),
        ],
        body,
    )
        .into_response();
    if gzip {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "first poll cycle not done yet\n",
        )
    }
}

/// Re-reads the configuration, as SIGHUP does. 200 when applied; 400 with the reason when the
/// new configuration is rejected (the old one stays in force); 403 unless the lifecycle API is
/// enabled, as in Prometheus.
async fn reload(State(state): State<AppState>) -> (StatusCode, String) {
    if !state.lifecycle {
        return (
            StatusCode::FORBIDDEN,
            "lifecycle APIs are not enabled; start with --web.enable-lifecycle (or send SIGHUP)\n"
                .into(),
        );
    }
    match state.reloader.reload() {
        Ok(()) => (StatusCode::OK, "configuration reloaded\n".into()),
        Err(error) => (StatusCode::BAD_REQUEST, format!("{error:#}\n")),
    }
}

/// Whether `Accept-Encoding` lists gzip with a non-zero quality.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let zero_quality = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !zero_quality
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, value.parse().unwrap());
        headers
    }

    #[test]
    fn gzip_is_chosen_only_when_accepted() {
        assert!(accepts_gzip(&with_accept("gzip")));
        assert!(accepts_gzip(&with_accept("deflate, gzip;q=0.5")));
        assert!(!accepts_gzip(&with_accept("gzip;q=0")));
        assert!(!accepts_gzip(&with_accept("identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
