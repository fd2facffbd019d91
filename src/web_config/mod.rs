//! TLS and basic authentication for the exporter's own endpoints, configured with the same YAML
//! file as Prometheus' exporter-toolkit (`--web.config.file`), so operators can reuse what they
//! have for node_exporter:
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: /etc/udts-exporter/tls.crt
//!   key_file: /etc/udts-exporter/tls.key
//! basic_auth_users:
//!   prometheus: $2y$10$...   # bcrypt hash, e.g. from `htpasswd -nBC 10 ""`
//! ```

mod auth;
mod client_auth;
mod refusal;
mod rotation;
mod tls;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use governor::DefaultDirectRateLimiter;
use serde::Deserialize;
use tokio_rustls::rustls::ServerConfig;

pub use auth::BasicAuth;
pub use refusal::{collectors, record_refusal, refuse_plain_http, sniff, FirstByte, Refusal};

/// The file, as read: every key of exporter-toolkit's format is here, and any other is refused
/// by name (a typo must not silently turn security off).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebConfigFile {
    tls_server_config: Option<tls::TlsServerConfig>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
    http_server_config: Option<HttpServerConfig>,
    rate_limit: Option<auth::RateLimitConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpServerConfig {
    /// Accepted for compatibility; the endpoints speak HTTP/1.1.
    #[allow(dead_code)]
    http2: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// The response headers `http_server_config.headers` may set, as in exporter-toolkit.
const SETTABLE_HEADERS: [HeaderName; 5] = [
    header::STRICT_TRANSPORT_SECURITY,
    header::X_CONTENT_TYPE_OPTIONS,
    header::X_FRAME_OPTIONS,
    header::X_XSS_PROTECTION,
    header::CONTENT_SECURITY_POLICY,
];

/// A web config file that cannot be used; the message names the field and the file.
#[derive(Debug, thiserror::Error)]
#[error("web config file {file}: {problem}")]
pub struct WebConfigError {
    file: String,
    problem: String,
}

/// TLS, authentication and extra headers for the endpoints, loaded and checked at start-up and
/// on every reload.
#[derive(Clone, Default)]
pub struct WebSecurity {
    /// Serve HTTPS with this configuration, when set. Its certificate is re-read when the files
    /// change.
    pub tls: Option<Arc<ServerConfig>>,
    /// Require one of these users, when set.
    pub basic_auth: Option<Arc<BasicAuth>>,
    /// Headers added to every answer (`http_server_config.headers`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Requests beyond this token bucket are answered 429 (`rate_limit`), when set.
    pub rate_limit: Option<Arc<DefaultDirectRateLimiter>>,
}

impl std::fmt::Debug for WebSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSecurity")
            .field("tls", &self.tls.is_some())
            .field("basic_auth", &self.basic_auth.is_some())
            .field("headers", &self.headers.len())
            .field("rate_limit", &self.rate_limit.is_some())
            .finish()
    }
}

/// The web security in force, swapped whole on reload: connections and requests read it as they
/// arrive.
pub type LiveWebSecurity = Arc<ArcSwap<WebSecurity>>;

impl WebSecurity {
    /// Reads and checks the file: certificate and key load, every password is a bcrypt hash,
    /// every field is understood.
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let fail = |problem: String| WebConfigError {
            file: path.display().to_string(),
            problem,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
        let file: WebConfigFile = if text.trim().is_empty() {
            WebConfigFile::default()
        } else {
            serde_yaml_ng::from_str(&text).map_err(|e| fail(e.to_string()))?
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let tls = match file.tls_server_config {
            None => None,
            Some(tls) => Some(Arc::new(server_config(&tls, base).map_err(fail)?)),
        };
        let basic_auth = if file.basic_auth_users.is_empty() {
            None
        } else {
            Some(Arc::new(
                BasicAuth::new(file.basic_auth_users).map_err(fail)?,
            ))
        };
        let rate_limit = match &file.rate_limit {
            None => None,
            Some(config) => config.limiter().map_err(fail)?,
        };
        let mut headers = Vec::new();
        for (name, value) in file
            .http_server_config
            .map(|h| h.headers)
            .unwrap_or_default()
        {
            let Some(allowed) = SETTABLE_HEADERS
                .iter()
                .find(|allowed| allowed.as_str().eq_ignore_ascii_case(&name))
            else {
                let names: Vec<&str> = SETTABLE_HEADERS.iter().map(HeaderName::as_str).collect();
                return Err(fail(format!(
                    "http_server_config.headers.{name} cannot be set (allowed: {})",
                    names.join(", ")
                )));
            };
            // The only values exporter-toolkit takes for these two: any other would weaken
            // what the header is for.
            let lower = value.to_ascii_lowercase();
            let refused = match allowed.as_str() {
                "x-content-type-options" => (lower != "nosniff").then_some("nosniff"),
                "x-frame-options" => {
                    (lower != "deny" && lower != "sameorigin").then_some("deny or sameorigin")
                }
                _ => None,
            };
            if let Some(valid) = refused {
                return Err(fail(format!(
                    "http_server_config.headers.{name}: `{value}` is not allowed (use {valid})"
                )));
            }
            let value = HeaderValue::from_str(&value).map_err(|_| {
                fail(format!(
                    "http_server_config.headers.{name} is not a valid header value"
                ))
            })?;
            headers.push((allowed.clone(), value));
        }
        Ok(Self {
            tls,
            basic_auth,
            headers,
            rate_limit,
        })
    }

    /// Wraps `router` in the layer that applies the live security: basic auth when users are
    /// configured, and the configured headers.
    pub fn protect(live: LiveWebSecurity, router: Router) -> Router {
        router.layer(axum::middleware::from_fn_with_state(live, apply_security))
    }
}

/// Applies the live security to a request: the rate limit first (as exporter-toolkit does, so
/// a flood is turned away before it costs a bcrypt verification), then basic auth when users
/// are configured, and the configured headers on every answer.
async fn apply_security(
    State(live): State<LiveWebSecurity>,
    request: Request,
    next: Next,
) -> Response {
    let security = live.load_full();
    let mut response = if security
        .rate_limit
        .as_ref()
        .is_some_and(|limit| limit.check().is_err())
    {
        (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n").into_response()
    } else if authorized(security.basic_auth.as_ref(), credentials(&request)).await {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"udts-exporter\""),
            )],
            "authentication required\n",
        )
            .into_response()
    };
    for (name, value) in &security.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

/// Whether a request with `credentials` may pass: always without users, else with a user's
/// right password.
async fn authorized(auth: Option<&Arc<BasicAuth>>, credentials: Option<String>) -> bool {
    let Some(auth) = auth else {
        return true;
    };
    match credentials.as_deref().and_then(|c| c.split_once(':')) {
        Some((user, password)) => auth.check(user, password).await,
        None => false,
    }
}

/// Builds the rustls configuration of `tls_server_config`; paths are relative to `base`.
fn server_config(tls: &tls::TlsServerConfig, base: &Path) -> Result<ServerConfig, String> {
    let provider = Arc::new(tls::crypto_provider(tls)?);
    let resolver = rotation::certificate_resolver(tls, base, &provider)?;
    let versions = tls::protocol_versions(tls)?;
    let verifier = client_auth::client_verifier(tls, base, &provider)?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?;
    let builder = match verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    Ok(builder.with_cert_resolver(resolver))
}

/// `user:password` of the request's basic authorization, if any. The scheme's case does not
/// matter (RFC 9110 11.1), as in Go's `Request.BasicAuth`, which exporter-toolkit uses.
fn credentials(request: &Request) -> Option<String> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_at_checked("Basic ".len())?;
            scheme.eq_ignore_ascii_case("Basic ").then_some(rest)
        })
        .and_then(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .ok()
        })
        .and_then(|v| String::from_utf8(v).ok())
}
