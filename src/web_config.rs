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

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use serde::Deserialize;
use sha1::{Digest, Sha1};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::danger::ClientCertVerifier;
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::version::{TLS12, TLS13};
use tokio_rustls::rustls::{NamedGroup, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// The file, as read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebConfigFile {
    tls_server_config: Option<TlsServerConfig>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
    http_server_config: Option<HttpServerConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsServerConfig {
    cert_file: PathBuf,
    key_file: PathBuf,
    /// `NoClientCert` (default), `RequestClientCert`, `VerifyClientCertIfGiven`,
    /// `RequireAndVerifyClientCert`; `RequireAnyClientCert` is refused (nothing verifies it).
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    /// `TLS10` .. `TLS13`; rustls speaks TLS 1.2 and 1.3.
    min_version: Option<String>,
    max_version: Option<String>,
    /// Go's names of TLS 1.2 suites (TLS 1.3 suites are not configurable, as in Go).
    #[serde(default)]
    cipher_suites: Vec<String>,
    /// Accepted for compatibility; rustls always uses the server's order.
    #[allow(dead_code)]
    prefer_server_cipher_suites: Option<bool>,
    /// `X25519`, `CurveP256`, `CurveP384`.
    #[serde(default)]
    curve_preferences: Vec<String>,
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
}

impl std::fmt::Debug for WebSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSecurity")
            .field("tls", &self.tls.is_some())
            .field("basic_auth", &self.basic_auth.is_some())
            .field("headers", &self.headers.len())
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
            for (user, hash) in &file.basic_auth_users {
                if bcrypt::verify("", hash).is_err() {
                    return Err(fail(format!(
                        "basic_auth_users.{user} is not a bcrypt hash (generate one with `htpasswd -nBC 10 \"\"`)"
                    )));
                }
            }
            Some(Arc::new(BasicAuth {
                users: file.basic_auth_users,
                accepted: Mutex::new(HashSet::new()),
            }))
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
        })
    }

    /// Wraps `router` in the layer that applies the live security: basic auth when users are
    /// configured, and the configured headers.
    pub fn protect(live: LiveWebSecurity, router: Router) -> Router {
        router.layer(axum::middleware::from_fn_with_state(live, apply_security))
    }
}

/// Builds the rustls configuration of `tls_server_config`; paths are relative to `base`.
fn server_config(tls: &TlsServerConfig, base: &Path) -> Result<ServerConfig, String> {
    let cert_file = base.join(&tls.cert_file);
    let key_file = base.join(&tls.key_file);
    let provider = Arc::new(crypto_provider(tls)?);
    let certified = load_certified_key(&cert_file, &key_file, &provider)?;
    let versions = protocol_versions(tls)?;
    let verifier = client_verifier(tls, base, &provider)?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?;
    let builder = match verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    Ok(builder.with_cert_resolver(Arc::new(RotatingCert {
        cert_file,
        key_file,
        provider,
        current: Mutex::new(certified),
    })))
}

/// The ring provider, with `cipher_suites` and `curve_preferences` applied.
fn crypto_provider(tls: &TlsServerConfig) -> Result<CryptoProvider, String> {
    let mut provider = tokio_rustls::rustls::crypto::ring::default_provider();
    if !tls.cipher_suites.is_empty() {
        let mut chosen = Vec::new();
        for name in &tls.cipher_suites {
            // Go spells the ChaCha20 suites with and without the `_SHA256` suffix.
            let suite = provider.cipher_suites.iter().find(|suite| {
                let rustls_name = format!("{:?}", suite.suite());
                rustls_name == *name || rustls_name == format!("{name}_SHA256")
            });
            match suite {
                Some(suite) if suite.version() == &TLS12 => chosen.push(*suite),
                _ => {
                    return Err(format!(
                        "tls_server_config.cipher_suites: {name} is not a TLS 1.2 suite this \
                         exporter supports (ECDHE with AES-GCM or ChaCha20-Poly1305)"
                    ))
                }
            }
        }
        provider
            .cipher_suites
            .retain(|suite| suite.version() == &TLS13 || chosen.contains(suite));
    }
    if !tls.curve_preferences.is_empty() {
        let mut groups = Vec::new();
        for name in &tls.curve_preferences {
            let wanted = match name.as_str() {
                "X25519" => NamedGroup::X25519,
                "CurveP256" => NamedGroup::secp256r1,
                "CurveP384" => NamedGroup::secp384r1,
                other => {
                    return Err(format!(
                        "tls_server_config.curve_preferences: {other} is not supported (X25519, CurveP256, CurveP384)"
                    ))
                }
            };
            if let Some(group) = provider.kx_groups.iter().find(|g| g.name() == wanted) {
                groups.push(*group);
            }
        }
        provider.kx_groups = groups;
    }
    Ok(provider)
}

fn version_rank(field: &str, name: &str) -> Result<u8, String> {
    match name {
        "TLS10" => Ok(10),
        "TLS11" => Ok(11),
        "TLS12" => Ok(12),
        "TLS13" => Ok(13),
        other => Err(format!(
            "tls_server_config.{field}: {other} is not one of TLS10, TLS11, TLS12, TLS13"
        )),
    }
}

/// TLS 1.2 and 1.3, narrowed by `min_version` and `max_version`.
fn protocol_versions(
    tls: &TlsServerConfig,
) -> Result<Vec<&'static tokio_rustls::rustls::SupportedProtocolVersion>, String> {
    let min = tls
        .min_version
        .as_deref()
        .map_or(Ok(12), |v| version_rank("min_version", v))?;
    let max = tls
        .max_version
        .as_deref()
        .map_or(Ok(13), |v| version_rank("max_version", v))?;
    let versions: Vec<_> = [(12, &TLS12), (13, &TLS13)]
        .into_iter()
        .filter(|(rank, _)| (min..=max).contains(rank))
        .map(|(_, version)| version)
        .collect();
    if versions.is_empty() {
        return Err(format!(
            "tls_server_config: no TLS version between min_version and max_version that this \
             exporter speaks (TLS12, TLS13): {min} to {max}"
        ));
    }
    Ok(versions)
}

/// The client certificate check of `client_auth_type`, if any.
fn client_verifier(
    tls: &TlsServerConfig,
    base: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<Arc<dyn ClientCertVerifier>>, String> {
    let kind = tls.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let optional = match kind {
        "NoClientCert" | "RequestClientCert" => return Ok(None),
        "VerifyClientCertIfGiven" => true,
        "RequireAndVerifyClientCert" => false,
        "RequireAnyClientCert" => {
            return Err(
                "tls_server_config.client_auth_type: RequireAnyClientCert (a certificate \
                 nobody verifies) is not supported; use RequireAndVerifyClientCert with \
                 client_ca_file"
                    .into(),
            )
        }
        other => {
            return Err(format!(
                "tls_server_config.client_auth_type: {other} is not one of NoClientCert, \
                 RequestClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
            ))
        }
    };
    let Some(ca_file) = &tls.client_ca_file else {
        return Err(format!(
            "tls_server_config.client_ca_file is required with client_auth_type {kind}"
        ));
    };
    let ca_file = base.join(ca_file);
    let mut roots = RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&ca_file)
        .and_then(|certs| certs.collect())
        .map_err(|e| {
            format!(
                "tls_server_config.client_ca_file {}: {e}",
                ca_file.display()
            )
        })?;
    for cert in certs {
        roots.add(cert).map_err(|e| {
            format!(
                "tls_server_config.client_ca_file {}: {e}",
                ca_file.display()
            )
        })?;
    }
    if roots.is_empty() {
        return Err(format!(
            "tls_server_config.client_ca_file {} holds no certificate",
            ca_file.display()
        ));
    }
    let builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider));
    let builder = if optional {
        builder.allow_unauthenticated()
    } else {
        builder
    };
    builder
        .build()
        .map(Some)
        .map_err(|e| format!("tls_server_config.client_ca_file: {e}"))
}

/// What identifies a version of a file: its modification time and length.
type Stamp = Option<(std::time::SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

fn load_certified_key(
    cert_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
) -> Result<(Stamp, Stamp, Arc<CertifiedKey>), String> {
    let stamps = (stamp(cert_file), stamp(key_file));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect())
        .map_err(|e| format!("tls_server_config.cert_file {}: {e}", cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "tls_server_config.cert_file {} holds no certificate",
            cert_file.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| format!("tls_server_config.key_file {}: {e}", key_file.display()))?;
    let certified = CertifiedKey::from_der(certs, key, provider)
        .map_err(|e| format!("tls_server_config: {e}"))?;
    Ok((stamps.0, stamps.1, Arc::new(certified)))
}

/// The served certificate, re-read when its files change (checked at every handshake, as
/// exporter-toolkit does), so cert-manager and similar can rotate it in place. A new pair that
/// does not load keeps the old one in service and is logged once.
struct RotatingCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Mutex<(Stamp, Stamp, Arc<CertifiedKey>)>,
}

impl std::fmt::Debug for RotatingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatingCert")
            .field("cert_file", &self.cert_file)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for RotatingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let stamps = (stamp(&self.cert_file), stamp(&self.key_file));
        if stamps != (current.0, current.1) {
            match load_certified_key(&self.cert_file, &self.key_file, &self.provider) {
                Ok(loaded) => {
                    info!(cert_file = %self.cert_file.display(), "TLS certificate re-read");
                    *current = loaded;
                }
                Err(error) => {
                    warn!(%error, "the new TLS certificate or key does not load; serving the previous one");
                    // Remember the broken version so it is not retried (and logged) per handshake.
                    current.0 = stamps.0;
                    current.1 = stamps.1;
                }
            }
        }
        Some(Arc::clone(&current.2))
    }
}

/// The users and their bcrypt hashes, and a cache of credentials already verified: bcrypt is
/// slow by design, and Prometheus sends the same credentials on every scrape.
pub struct BasicAuth {
    users: BTreeMap<String, String>,
    accepted: Mutex<HashSet<[u8; 20]>>,
}

impl BasicAuth {
    const CACHE_LIMIT: usize = 1024;

    fn check(&self, user: &str, password: &str) -> bool {
        let Some(hash) = self.users.get(user) else {
            return false;
        };
        let mut digest = Sha1::new();
        digest.update(user.as_bytes());
        digest.update([0]);
        digest.update(password.as_bytes());
        digest.update([0]);
        digest.update(hash.as_bytes());
        let key: [u8; 20] = digest.finalize().into();
        let mut accepted = self
            .accepted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if accepted.contains(&key) {
            return true;
        }
        drop(accepted);
        if !bcrypt::verify(password, hash).unwrap_or(false) {
            return false;
        }
        accepted = self
            .accepted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if accepted.len() >= Self::CACHE_LIMIT {
            accepted.clear();
        }
        accepted.insert(key);
        true
    }
}

/// Checks basic auth against the live users (when any) and adds the configured headers.
async fn apply_security(
    State(live): State<LiveWebSecurity>,
    request: Request,
    next: Next,
) -> Response {
    let security = live.load_full();
    let allowed = match &security.basic_auth {
        Some(auth) => authorized(auth, credentials(&request)).await,
        None => true,
    };
    let mut response = match allowed {
        false => (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"udts-exporter\""),
            )],
            "authentication required\n",
        )
            .into_response(),
        true => next.run(request).await,
    };
    for (name, value) in &security.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

/// `user:password` of the request's basic authorization, if any.
fn credentials(request: &Request) -> Option<String> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .ok()
        })
        .and_then(|v| String::from_utf8(v).ok())
}

async fn authorized(auth: &Arc<BasicAuth>, credentials: Option<String>) -> bool {
    match credentials.as_deref().and_then(|c| c.split_once(':')) {
        Some((user, password)) => {
            let (auth, user, password) = (Arc::clone(auth), user.to_string(), password.to_string());
            // bcrypt takes tens of milliseconds: keep it off the async workers.
            tokio::task::spawn_blocking(move || auth.check(&user, &password))
                .await
                .unwrap_or(false)
        }
        None => false,
    }
}

/// Serves `app` over TLS on `listener` until `shutdown`, then lets open connections finish for
/// a moment. The certificate and the whole TLS configuration can change while it serves.
pub async fn serve_tls(
    listener: TcpListener,
    app: Router,
    live: LiveWebSecurity,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                debug!(%error, "accept failed");
                continue;
            }
        };
        // Each connection takes the TLS configuration in force when it arrives (a reload may
        // have swapped it).
        let Some(tls) = live.load().tls.clone() else {
            continue;
        };
        let acceptor = TlsAcceptor::from(tls);
        let (app, shutdown) = (app.clone(), shutdown.clone());
        connections.spawn(async move {
            let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
            let stream = match handshake.await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    debug!(%error, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(yaml: &str) -> TlsServerConfig {
        serde_yaml_ng::from_str(&format!("cert_file: a\nkey_file: b\n{yaml}")).unwrap()
    }

    #[test]
    fn go_cipher_suite_names_select_tls12_suites_and_keep_tls13() {
        let provider = crypto_provider(&tls(
            "cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305]",
        ))
        .unwrap();
        let tls12: Vec<String> = provider
            .cipher_suites
            .iter()
            .filter(|s| s.version() == &TLS12)
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        assert_eq!(
            tls12,
            [
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
            ]
        );
        assert!(provider.cipher_suites.iter().any(|s| s.version() == &TLS13));
        let error = crypto_provider(&tls("cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]")).unwrap_err();
        assert!(error.contains("TLS_RSA_WITH_RC4_128_SHA"), "{error}");
    }

    #[test]
    fn versions_and_client_auth_are_checked() {
        assert_eq!(protocol_versions(&tls("")).unwrap().len(), 2);
        assert_eq!(
            protocol_versions(&tls("min_version: TLS13")).unwrap(),
            [&TLS13]
        );
        assert_eq!(
            protocol_versions(&tls("max_version: TLS12")).unwrap(),
            [&TLS12]
        );
        assert!(protocol_versions(&tls("max_version: TLS11")).is_err());
        assert!(protocol_versions(&tls("min_version: SSL3")).is_err());
        let provider = Arc::new(crypto_provider(&tls("")).unwrap());
        let base = Path::new(".");
        let error = client_verifier(
            &tls("client_auth_type: RequireAndVerifyClientCert"),
            base,
            &provider,
        )
        .err()
        .unwrap();
        assert!(error.contains("client_ca_file"), "{error}");
        assert!(client_verifier(
            &tls("client_auth_type: RequireAnyClientCert"),
            base,
            &provider
        )
        .is_err());
        assert!(client_verifier(&tls("client_auth_type: Sometimes"), base, &provider).is_err());
        assert!(client_verifier(&tls(""), base, &provider)
            .unwrap()
            .is_none());
    }
}
