//! The served certificate: inline (fixed), or from files re-read when they change, checked at
//! every handshake as exporter-toolkit does, so cert-manager and similar can rotate it in place.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tracing::{info, warn};

use super::tls::{parse_certs, TlsServerConfig};

/// The certificate to serve: from files (re-read when they change) or inline (fixed).
pub(super) fn certificate_resolver(
    tls: &TlsServerConfig,
    base: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ResolvesServerCert>, String> {
    match (&tls.cert, &tls.key, &tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key), None, None) => {
            let certs =
                parse_certs(cert.as_bytes()).map_err(|e| format!("tls_server_config.cert: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                .map_err(|_| "tls_server_config.key: not a PEM private key".to_string())?;
            let certified = certified_key(certs, key, provider, "tls_server_config.cert")?;
            Ok(Arc::new(FixedCert(certified)))
        }
        // One part in a file, the other inline (exporter-toolkit loads these too): read once,
        // as only a pair of files can be watched for rotation.
        (None, Some(key), Some(cert_file), None) => {
            let cert_file = base.join(cert_file);
            let pem = std::fs::read(&cert_file)
                .map_err(|e| format!("tls_server_config.cert_file {}: {e}", cert_file.display()))?;
            let certs = parse_certs(&pem)
                .map_err(|e| format!("tls_server_config.cert_file {}: {e}", cert_file.display()))?;
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                .map_err(|_| "tls_server_config.key: not a PEM private key".to_string())?;
            let certified = certified_key(certs, key, provider, "tls_server_config.cert_file")?;
            Ok(Arc::new(FixedCert(certified)))
        }
        (Some(cert), None, None, Some(key_file)) => {
            let key_file = base.join(key_file);
            let certs =
                parse_certs(cert.as_bytes()).map_err(|e| format!("tls_server_config.cert: {e}"))?;
            let pem = std::fs::read(&key_file)
                .map_err(|e| format!("tls_server_config.key_file {}: {e}", key_file.display()))?;
            let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
                format!(
                    "tls_server_config.key_file {}: not a PEM private key",
                    key_file.display()
                )
            })?;
            let certified = certified_key(certs, key, provider, "tls_server_config.cert")?;
            Ok(Arc::new(FixedCert(certified)))
        }
        (None, None, Some(cert_file), Some(key_file)) => {
            let cert_file = base.join(cert_file);
            let key_file = base.join(key_file);
            let certified = load_certified_key(&cert_file, &key_file, provider)?;
            Ok(Arc::new(RotatingCert {
                cert_file,
                key_file,
                provider: Arc::clone(provider),
                current: Mutex::new(certified),
            }))
        }
        _ => Err(
            "tls_server_config: set cert_file and key_file (or cert and key inline), \
                  one pair, not both"
                .into(),
        ),
    }
}

/// What identifies a version of a file: its modification time and length.
type Stamp = Option<(std::time::SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

fn certified_key(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
    field: &str,
) -> Result<Arc<CertifiedKey>, String> {
    CertifiedKey::from_der(certs, key, provider)
        .map(Arc::new)
        .map_err(|e| format!("{field}: {e}"))
}

fn load_certified_key(
    cert_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
) -> Result<(Stamp, Stamp, Arc<CertifiedKey>), String> {
    let stamps = (stamp(cert_file), stamp(key_file));
    let pem = std::fs::read(cert_file)
        .map_err(|e| format!("tls_server_config.cert_file {}: {e}", cert_file.display()))?;
    let certs = parse_certs(&pem)
        .map_err(|e| format!("tls_server_config.cert_file {}: {e}", cert_file.display()))?;
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| format!("tls_server_config.key_file {}: {e}", key_file.display()))?;
    let certified = certified_key(certs, key, provider, "tls_server_config")?;
    Ok((stamps.0, stamps.1, certified))
}

/// An inline certificate: nothing to re-read.
#[derive(Debug)]
struct FixedCert(Arc<CertifiedKey>);

impl ResolvesServerCert for FixedCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// The served certificate, re-read when its files change (checked at every handshake, as
/// exporter-toolkit does), so cert-manager and similar can rotate it in place. A new pair that
/// does not load keeps the old one in service, is logged once and counted.
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
                    super::refusal::certificate_reload_failed();
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
