//! `tls_server_config`: the rustls configuration, client certificate checks (`client_auth_type`,
//! `client_allowed_sans`) and a certificate re-read when its files change. Why a handshake is
//! refused, and its counting and explaining, are in `refusal.rs`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::version::{TLS12, TLS13};
use tokio_rustls::rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use tracing::{info, warn};

use super::refusal::ClientCertProblem;

/// `tls_server_config`, every key of exporter-toolkit's format.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsServerConfig {
    /// The server certificate (chain), inline PEM, instead of `cert_file`.
    cert: Option<String>,
    /// Its private key, inline PEM, instead of `key_file`.
    key: Option<String>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    /// `NoClientCert` (default), `RequestClientCert`, `VerifyClientCertIfGiven`,
    /// `RequireAndVerifyClientCert`; `RequireAnyClientCert` is refused (nothing verifies it).
    client_auth_type: Option<String>,
    /// The CA of client certificates, inline PEM, instead of `client_ca_file`.
    client_ca: Option<String>,
    client_ca_file: Option<PathBuf>,
    /// With `RequireAndVerifyClientCert`: the client certificate must carry one of these as a
    /// DNS, IP, e-mail or URI Subject Alternative Name, exactly.
    #[serde(default)]
    client_allowed_sans: Vec<String>,
    /// `TLS10` .. `TLS13`; rustls speaks TLS 1.2 and 1.3.
    min_version: Option<String>,
    max_version: Option<String>,
    /// Go's names of TLS 1.2 suites (TLS 1.3 suites are not configurable, as in Go).
    #[serde(default)]
    cipher_suites: Vec<String>,
    /// Accepted for compatibility; rustls always uses the server's order.
    #[allow(dead_code)]
    prefer_server_cipher_suites: Option<bool>,
    /// `X25519MLKEM768`, `X25519`, `CurveP256`, `CurveP384`, `CurveP521` (Go's names).
    #[serde(default)]
    curve_preferences: Vec<String>,
}

/// Builds the rustls configuration of `tls_server_config`; paths are relative to `base`.
pub(super) fn server_config(tls: &TlsServerConfig, base: &Path) -> Result<ServerConfig, String> {
    let provider = Arc::new(crypto_provider(tls)?);
    let resolver = certificate_resolver(tls, base, &provider)?;
    let versions = protocol_versions(tls)?;
    let verifier = client_verifier(tls, base, &provider)?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?;
    let builder = match verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    Ok(builder.with_cert_resolver(resolver))
}

/// The certificate to serve: from files (re-read when they change) or inline (fixed).
fn certificate_resolver(
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

/// The process's provider ([`crate::tls_provider`]), with `cipher_suites` and
/// `curve_preferences` applied.
fn crypto_provider(tls: &TlsServerConfig) -> Result<CryptoProvider, String> {
    let mut provider = crate::tls_provider::provider();
    if !tls.cipher_suites.is_empty() {
        let mut chosen = Vec::new();
        let mut unusable = Vec::new();
        for name in &tls.cipher_suites {
            // TLS 1.3 suites are not configurable; Go ignores them in this list, and so do we.
            if name.starts_with("TLS_AES_") || name.starts_with("TLS_CHACHA20_") {
                continue;
            }
            // Go spells the ChaCha20 suites with and without the `_SHA256` suffix.
            let suite = provider.cipher_suites.iter().find(|suite| {
                suite.suite().as_str().is_some_and(|rustls_name| {
                    rustls_name == name || rustls_name == format!("{name}_SHA256")
                })
            });
            match suite {
                Some(suite) if suite.version() == &TLS12 => chosen.push(*suite),
                // A suite Go knows that rustls lacks (CBC, RSA key exchange): skipped, said once.
                _ if name.starts_with("TLS_") => unusable.push(name.as_str()),
                _ => {
                    return Err(format!(
                        "tls_server_config.cipher_suites: {name} is not a TLS cipher suite name \
                         (Go's names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)"
                    ))
                }
            }
        }
        let tls12_listed = chosen.len() + unusable.len() > 0;
        if tls12_listed && chosen.is_empty() {
            return Err(format!(
                "tls_server_config.cipher_suites: none of {} is a TLS 1.2 suite this exporter \
                 has (ECDHE with AES-GCM or ChaCha20-Poly1305)",
                unusable.join(", ")
            ));
        }
        if !unusable.is_empty() {
            tracing::warn!(
                suites = %unusable.join(", "),
                "tls_server_config.cipher_suites: these suites are not available (rustls has no \
                 CBC or RSA key exchange suites) and are left out; the others listed are used"
            );
        }
        if tls12_listed {
            provider
                .cipher_suites
                .retain(|suite| suite.version() == &TLS13 || chosen.contains(suite));
        }
    }
    if !tls.curve_preferences.is_empty() {
        provider.kx_groups = tls
            .curve_preferences
            .iter()
            .map(|name| {
                crate::tls_provider::named_group(name).ok_or_else(|| {
                    format!(
                        "tls_server_config.curve_preferences: {name} is not a curve this \
                         exporter knows ({})",
                        crate::tls_provider::group_names()
                    )
                })
            })
            .collect::<Result<_, _>>()?;
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

/// The client certificate check of `client_auth_type` and `client_allowed_sans`, if any.
fn client_verifier(
    tls: &TlsServerConfig,
    base: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<Arc<dyn ClientCertVerifier>>, String> {
    let kind = tls.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let optional = match kind {
        "NoClientCert" | "RequestClientCert" => None,
        "VerifyClientCertIfGiven" => Some(true),
        "RequireAndVerifyClientCert" => Some(false),
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
    if !tls.client_allowed_sans.is_empty() && optional != Some(false) {
        return Err(format!(
            "tls_server_config.client_allowed_sans needs client_auth_type \
             RequireAndVerifyClientCert (with {kind} a client may connect without a \
             certificate, leaving no SAN to check)"
        ));
    }
    let Some(optional) = optional else {
        if let Some(file) = &tls.client_ca_file {
            // Read first, as exporter-toolkit does: a missing file is the first thing to fix.
            let file = base.join(file);
            std::fs::read(&file)
                .map_err(|e| format!("tls_server_config.client_ca_file {}: {e}", file.display()))?;
        }
        if tls.client_ca.is_some() || tls.client_ca_file.is_some() {
            // As exporter-toolkit: otherwise the operator believes clients are verified while
            // anyone gets in.
            return Err(format!(
                "tls_server_config: client CA's have been configured without a Client Auth \
                 Policy (client_auth_type is {kind}); set client_auth_type: \
                 RequireAndVerifyClientCert (or VerifyClientCertIfGiven), or remove client_ca_file"
            ));
        }
        return Ok(None);
    };
    let certs = match (&tls.client_ca, &tls.client_ca_file) {
        (Some(pem), None) => {
            parse_certs(pem.as_bytes()).map_err(|e| format!("tls_server_config.client_ca: {e}"))?
        }
        (None, Some(file)) => {
            let file = base.join(file);
            let pem = std::fs::read(&file)
                .map_err(|e| format!("tls_server_config.client_ca_file {}: {e}", file.display()))?;
            parse_certs(&pem)
                .map_err(|e| format!("tls_server_config.client_ca_file {}: {e}", file.display()))?
        }
        (Some(_), Some(_)) => {
            return Err(
                "tls_server_config: set client_ca_file or client_ca inline, not both".into(),
            )
        }
        // A given certificate is verified against the system's roots, as Go does.
        (None, None) if optional => Vec::new(),
        (None, None) => {
            return Err(format!(
                "tls_server_config.client_ca_file is required with client_auth_type {kind}"
            ))
        }
    };
    let mut roots = RootCertStore::empty();
    if certs.is_empty() {
        // The system's trust store, as Go's `x509.SystemCertPool` (and so exporter-toolkit):
        // `SSL_CERT_FILE`/`SSL_CERT_DIR` when set, else the distribution's bundle.
        let system = rustls_native_certs::load_native_certs();
        if system.certs.is_empty() {
            return Err(format!(
                "tls_server_config: client_auth_type {kind} without client_ca_file verifies a \
                 given certificate against the system's trust store, and none was found{}; \
                 set client_ca_file, or install ca-certificates (or set SSL_CERT_FILE)",
                system
                    .errors
                    .first()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ));
        }
        roots.add_parsable_certificates(system.certs);
    }
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| format!("tls_server_config.client_ca_file: {e}"))?;
    }
    let builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider));
    let builder = if optional {
        builder.allow_unauthenticated()
    } else {
        builder
    };
    let inner = builder
        .build()
        .map_err(|e| format!("tls_server_config.client_ca_file: {e}"))?;
    Ok(Some(Arc::new(ClientCheck {
        inner,
        allowed_sans: tls.client_allowed_sans.clone(),
    })))
}

/// The certificates of a PEM text; at least one.
fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(certs)
}

/// WebPKI verification, plus a plain-words refusal of X.509 v1 certificates (which WebPKI
/// rejects as an opaque "unsupported version") and exporter-toolkit's `client_allowed_sans`.
#[derive(Debug)]
struct ClientCheck {
    inner: Arc<dyn ClientCertVerifier>,
    allowed_sans: Vec<String>,
}

impl ClientCertVerifier for ClientCheck {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, tokio_rustls::rustls::Error> {
        let parsed = x509_parser::parse_x509_certificate(end_entity)
            .ok()
            .map(|(_, cert)| cert);
        if parsed
            .as_ref()
            .is_some_and(|cert| cert.version() == x509_parser::x509::X509Version::V1)
        {
            return Err(ClientCertProblem::Version1.into());
        }
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if self.allowed_sans.is_empty() {
            return Ok(verified);
        }
        let sans = parsed.as_ref().map(subject_alt_names).unwrap_or_default();
        if sans.iter().any(|san| self.allowed_sans.contains(san)) {
            Ok(verified)
        } else {
            let found = if sans.is_empty() {
                "none".to_string()
            } else {
                sans.join(", ")
            };
            Err(ClientCertProblem::SanNotAllowed(found).into())
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The DNS, IP, e-mail and URI Subject Alternative Names of `cert`, written as Go writes them
/// (an IP address in its usual text form), so `client_allowed_sans` means what it means in
/// exporter-toolkit.
fn subject_alt_names(cert: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok(Some(extension)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    extension
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some((*dns).to_string()),
            GeneralName::RFC822Name(email) => Some((*email).to_string()),
            GeneralName::URI(uri) => Some((*uri).to_string()),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes)
                    .ok()
                    .map(|b| IpAddr::from(b).to_string()),
                16 => <[u8; 16]>::try_from(*bytes)
                    .ok()
                    .map(|b| IpAddr::from(b).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web_config::Refusal;
    use tokio_rustls::rustls::CertificateError;

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
        let error = client_verifier(
            &tls("client_auth_type: VerifyClientCertIfGiven\nclient_allowed_sans: [a]"),
            base,
            &provider,
        )
        .err()
        .unwrap();
        assert!(error.contains("client_allowed_sans"), "{error}");
    }

    #[test]
    fn each_refusal_has_its_own_reason_and_a_fix() {
        let reasons: std::collections::HashSet<_> =
            Refusal::ALL.iter().map(|r| r.reason()).collect();
        assert_eq!(reasons.len(), Refusal::ALL.len());
        let error = |e: tokio_rustls::rustls::Error| {
            Refusal::of(&std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        };
        assert_eq!(
            error(tokio_rustls::rustls::Error::NoCertificatesPresented),
            Refusal::NoClientCertificate
        );
        assert_eq!(
            error(ClientCertProblem::Version1.into()),
            Refusal::ClientCertificateV1
        );
        assert_eq!(
            error(CertificateError::UnknownIssuer.into()),
            Refusal::UnknownIssuer
        );
        assert_eq!(
            error(CertificateError::BadSignature.into()),
            Refusal::UnknownIssuer
        );
        assert_eq!(Refusal::of(&std::io::Error::other("reset")), Refusal::Other);
    }
}
