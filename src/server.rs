//! The HTTP side: `/metrics` (or the configured path) serves the latest prepared exposition,
//! `/healthz` says the process is alive, `/readyz` says the first poll cycle is done,
//! `POST /-/reload` re-reads the configuration, `/` is the task page and `/api/v1/tasks` its
//! JSON. No handler ever calls the API or waits on the poller: they all read the payloads the
//! publisher prepared on the last change of state.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::exposition::{Publisher, CONTENT_TYPE};
use crate::page;
use crate::task_view::{SampleView, TaskDetail};
use crate::time::unix_now;

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
    /// The work runs off the async workers, so the handler's future only waits for it.
    fn reload(self: Arc<Self>) -> futures_util::future::BoxFuture<'static, anyhow::Result<()>>;
}

/// The router, separate from serving so tests can drive it directly.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route(&state.telemetry_path, get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/-/reload", post(reload))
        .route("/api/v1/tasks", get(tasks))
        .route("/api/v1/tasks/{id}", get(task))
        .route("/api/v1/trends", get(trends))
        .route(
            page::SCRIPT_PATH,
            get(|| async { static_asset("text/javascript; charset=utf-8", page::SCRIPT) }),
        )
        .route(
            page::STYLE_PATH,
            get(|| async { static_asset("text/css; charset=utf-8", page::STYLE) }),
        )
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

/// Headers on every answer: no MIME sniffing, no referrer, and a policy that lets the page run
/// only the exporter's own script and style.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(page::CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn static_asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=300"),
            ),
        ],
        body,
    )
        .into_response()
}

/// The task page, rendered from the prepared views (the worst 500 rows unless `?all=1`).
async fn index(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let exposition = state.publisher.current();
    let query = page::PageQuery::parse(query.as_deref());
    let html = page::render(&exposition, &query, &state.telemetry_path, unix_now());
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Html(html),
    )
        .into_response()
}

/// Every task as JSON, prepared on the last change of state (gzip when accepted).
async fn tasks(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let prepared_views = state.publisher.current().prepared();
    let mut response = prepared(
        &headers,
        JSON,
        || {
            Body::from_stream(crate::exposition::inflated_chunks(
                prepared_views.tasks_json_gzip.clone(),
            ))
        },
        &prepared_views.tasks_json_gzip,
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A prepared body, gzip-compressed when the client accepts it; `plain` makes the body for one
/// that does not.
fn prepared(
    headers: &HeaderMap,
    content_type: &'static str,
    plain: impl FnOnce() -> Body,
    gzip: &Bytes,
) -> Response {
    let use_gzip = accepts_gzip(headers) && !gzip.is_empty();
    let body = if use_gzip {
        Body::from(gzip.clone())
    } else {
        plain()
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::VARY, HeaderValue::from_static("Accept-Encoding")),
        ],
        body,
    )
        .into_response();
    if use_gzip {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

const JSON: &str = "application/json";

fn json_answer(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(JSON)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// One task and its recent samples; `?account=` picks among several accounts. 404 with a JSON
/// error for an unknown id.
async fn task(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let account = url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
        .find(|(key, _)| key == "account")
        .map(|(_, value)| value.into_owned());
    let prepared_views = state.publisher.current().prepared();
    let Some((view, trend)) = prepared_views.views.find(&id, account.as_deref()) else {
        let error = serde_json::json!({"error": format!("no task with id {id}")});
        return json_answer(StatusCode::NOT_FOUND, error.to_string().into_bytes());
    };
    let detail = TaskDetail {
        task: view,
        history: trend.iter().map(SampleView::from).collect(),
    };
    json_answer(
        StatusCode::OK,
        serde_json::to_vec(&detail).unwrap_or_default(),
    )
}

/// The page's sparklines: `{"account/id": [[unix, value], ...]}` for the worst `?limit=` tasks
/// (all without it).
async fn trends(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let limit = url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
        .find(|(key, _)| key == "limit")
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .filter(|limit| *limit > 0)
        .unwrap_or(usize::MAX);
    let prepared_views = state.publisher.current().prepared();
    let mut out = serde_json::Map::new();
    for (task, trend) in prepared_views
        .views
        .tasks
        .iter()
        .zip(&prepared_views.views.trends)
        .take(limit)
    {
        if trend.len() < 2 {
            continue;
        }
        let key = format!("{}/{}", task.account.as_deref().unwrap_or(""), task.id);
        let points = trend
            .iter()
            .map(|s| serde_json::json!([s.at, s.value]))
            .collect();
        out.insert(key, serde_json::Value::Array(points));
    }
    json_answer(
        StatusCode::OK,
        serde_json::to_vec(&serde_json::Value::Object(out)).unwrap_or_default(),
    )
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let exposition = state.publisher.current();
    prepared(
        &headers,
        CONTENT_TYPE,
        || Body::from_stream(exposition.text_chunks()),
        &exposition.gzip,
    )
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
    match Arc::clone(&state.reloader).reload().await {
        Ok(()) => (StatusCode::OK, "configuration reloaded\n".into()),
        Err(error) => (StatusCode::BAD_REQUEST, format!("{error:#}\n")),
    }
}

/// Whether `Accept-Encoding` makes gzip acceptable (RFC 9110 12.5.3): gzip listed with a
/// non-zero quality, or, when gzip is not listed, `*` with a non-zero quality. `gzip;q=0, *`
/// therefore refuses it.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for item in headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("");
        let acceptable = !parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        if coding.eq_ignore_ascii_case("gzip") {
            gzip = Some(acceptable);
        } else if coding == "*" {
            any = Some(acceptable);
        }
    }
    gzip.or(any).unwrap_or(false)
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
        assert!(!accepts_gzip(&with_accept("gzip;q=0, *")));
        assert!(!accepts_gzip(&with_accept("*, GZIP; q=0")));
        assert!(accepts_gzip(&with_accept("br, *")));
        assert!(!accepts_gzip(&with_accept("br, *;q=0")));
        assert!(!accepts_gzip(&with_accept("identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
