//! A request path and an `Authorization` header from anyone who can reach the port, through
//! the exporter's own router behind basic auth: a status code, never a panic, and never 200
//! without the right credentials. Input: the path, a newline, the header's value.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, StatusCode};
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt as _;
use udts_exporter::web_config::WebSecurity;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
    _dir: tempfile::TempDir,
}

struct NoReload;
impl udts_exporter::server::Reload for NoReload {
    fn reload(self: Arc<Self>) -> futures_util::future::BoxFuture<'static, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("web.yml");
        // alice / s3cret, at bcrypt's lowest cost so an iteration stays fast.
        let hash = bcrypt::hash("s3cret", 4).expect("a hash");
        std::fs::write(&path, format!("basic_auth_users:\n  alice: {hash}\n")).expect("written");
        let security = WebSecurity::load(&path).expect("the fixture loads");
        let live = Arc::new(arc_swap::ArcSwap::from_pointee(security));
        let store = Arc::new(udts_exporter::state::Store::new());
        let board = Arc::new(udts_exporter::source::SourceBoard::default());
        let publisher = Arc::new(udts_exporter::exposition::Publisher::new(
            store,
            board,
            Arc::new(udts_exporter::monitor::MonitorBoard::default()),
            udts_exporter::metrics::ExporterMetrics::new(),
            Default::default(),
        ));
        let app = WebSecurity::protect(
            live,
            udts_exporter::server::app(udts_exporter::server::AppState {
                publisher,
                ready: Arc::new(true.into()),
                telemetry_path: "/metrics".into(),
                reloader: Arc::new(NoReload),
                lifecycle: true,
            }),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        Fixture {
            runtime,
            app,
            _dir: dir,
        }
    })
}

/// Whether `value` carries alice's password, however it is spelled.
fn right_credentials(value: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(value) else {
        return false;
    };
    let Some((scheme, encoded)) = text.trim().split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("basic")
        && base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .is_ok_and(|decoded| decoded == b"alice:s3cret")
}

fuzz_target!(|data: &[u8]| {
    let (path, auth) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(path) = std::str::from_utf8(path) else {
        return;
    };
    let mut request = Request::builder().uri(path);
    if let Ok(value) = HeaderValue::from_bytes(auth) {
        request = request.header(header::AUTHORIZATION, value);
    }
    let Ok(request) = request.body(Body::empty()) else {
        return;
    };
    let fixture = fixture();
    let response = fixture
        .runtime
        .block_on(fixture.app.clone().oneshot(request))
        .expect("the router is infallible");
    if response.status() == StatusCode::OK {
        let is_health = matches!(path.split('?').next(), Some("/healthz"));
        assert!(
            right_credentials(auth) || is_health,
            "200 for {path:?} without the right credentials"
        );
    }
});
