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

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use serde::Deserialize;
use sha1::{Digest, Sha1};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// The file, as read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebConfigFile {
    tls_server_config: Option<TlsServerConfig>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsServerConfig {
    cert_file: PathBuf,
    key_file: PathBuf,
}

/// A web config file that cannot be used; the message names the field and the file.
#[derive(Debug, thiserror::Error)]
#[error("web config file {file}: {problem}")]
pub struct WebConfigError {
    file: String,
    problem: String,
}

/// TLS and authentication for the endpoints, loaded and checked at start-up.
#[derive(Clone, Default)]
pub struct WebSecurity {
    /// Serve HTTPS with this configuration, when set.
    pub tls: Option<Arc<ServerConfig>>,
    /// Require one of these users, when set.
    pub basic_auth: Option<Arc<BasicAuth>>,
}

impl std::fmt::Debug for WebSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSecurity")
            .field("tls", &self.tls.is_some())
            .field("basic_auth", &self.basic_auth.is_some())
            .finish()
    }
}

impl WebSecurity {
    /// Reads and checks the file: certificate and key load, every password is a bcrypt hash.
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
            Some(tls) => {
                let cert_file = base.join(&tls.cert_file);
                let key_file = base.join(&tls.key_file);
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_file)
                    .and_then(|certs| certs.collect())
                    .map_err(|e| {
                        fail(format!(
                            "tls_server_config.cert_file {}: {e}",
                            cert_file.display()
                        ))
                    })?;
                if certs.is_empty() {
                    return Err(fail(format!(
                        "tls_server_config.cert_file {} holds no certificate",
                        cert_file.display()
                    )));
                }
                let key = PrivateKeyDer::from_pem_file(&key_file).map_err(|e| {
                    fail(format!(
                        "tls_server_config.key_file {}: {e}",
                        key_file.display()
                    ))
                })?;
                let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
                let config = ServerConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .and_then(|builder| builder.with_no_client_auth().with_single_cert(certs, key))
                    .map_err(|e| fail(format!("tls_server_config: {e}")))?;
                Some(Arc::new(config))
            }
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
        Ok(Self { tls, basic_auth })
    }

    /// Wraps `router` in the authentication layer, when users are configured.
    pub fn protect(&self, router: Router) -> Router {
        match &self.basic_auth {
            Some(auth) => router.layer(axum::middleware::from_fn_with_state(
                Arc::clone(auth),
                require_basic_auth,
            )),
            None => router,
        }
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

async fn require_basic_auth(
    State(auth): State<Arc<BasicAuth>>,
    request: Request,
    next: Next,
) -> Response {
    let credentials = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .ok()
        })
        .and_then(|v| String::from_utf8(v).ok());
    let allowed = match credentials.as_deref().and_then(|c| c.split_once(':')) {
        Some((user, password)) => {
            let (auth, user, password) =
                (Arc::clone(&auth), user.to_string(), password.to_string());
            // bcrypt takes tens of milliseconds: keep it off the async workers.
            tokio::task::spawn_blocking(move || auth.check(&user, &password))
                .await
                .unwrap_or(false)
        }
        None => false,
    };
    if allowed {
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
    }
}

/// Serves `app` over TLS on `listener` until `shutdown`, then lets open connections finish for
/// a moment.
pub async fn serve_tls(
    listener: TcpListener,
    app: Router,
    tls: Arc<ServerConfig>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
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
        let (acceptor, app, shutdown) = (acceptor.clone(), app.clone(), shutdown.clone());
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
