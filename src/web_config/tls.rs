//! `tls_server_config`: the rustls configuration, client certificate checks (`client_auth_type`,
//! `client_allowed_sans`), a certificate re-read when its files change, and the listener that
//! serves over it. Every refused handshake is counted by reason and explained in the log (once
//! per peer and reason, rate-limited), because a refused scrape otherwise shows only as a target
//! that is down.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use prometheus::core::Collector;
use prometheus::{IntCounter, IntCounterVec, Opts};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::version::{TLS12, TLS13};
use tokio_rustls::rustls::{
    AlertDescription, CertificateError, DigitallySignedStruct, DistinguishedName, NamedGroup,
    OtherError, RootCertStore, ServerConfig, SignatureScheme,
};
use tracing::{debug, info, warn};

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
    /// `X25519`, `CurveP256`, `CurveP384`.
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

/// The ring provider, with `cipher_suites` and `curve_preferences` applied.
fn crypto_provider(tls: &TlsServerConfig) -> Result<CryptoProvider, String> {
    let mut provider = tokio_rustls::rustls::crypto::ring::default_provider();
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
                let rustls_name = format!("{:?}", suite.suite());
                rustls_name == *name || rustls_name == format!("{name}_SHA256")
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
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
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

/// Why the exporter itself refused a client certificate that rustls' checks alone would
/// describe poorly or not check at all.
#[derive(Debug, thiserror::Error)]
enum ClientCertProblem {
    #[error("the client certificate is X.509 v1")]
    Version1,
    #[error("the client certificate has none of client_allowed_sans (it has: {0})")]
    SanNotAllowed(String),
}

impl From<ClientCertProblem> for tokio_rustls::rustls::Error {
    fn from(problem: ClientCertProblem) -> Self {
        CertificateError::Other(OtherError(Arc::new(problem))).into()
    }
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
                    EVENTS.certificate_reload_errors.inc();
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

/// Why a connection to the TLS port did not become a TLS session, as an operator would fix it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The client spoke plain HTTP.
    PlainHttp,
    /// A certificate was required and none came.
    NoClientCertificate,
    /// The client certificate is X.509 v1 (OpenSSL 3.0's `x509 -req` without extensions).
    ClientCertificateV1,
    /// The client certificate is not signed by `client_ca_file`.
    UnknownIssuer,
    /// The client certificate has expired.
    Expired,
    /// The client certificate is not valid yet.
    NotYetValid,
    /// The client certificate carries none of `client_allowed_sans`.
    SanNotAllowed,
    /// Something else is wrong with the client certificate.
    BadClientCertificate,
    /// The client does not trust this server's certificate.
    ServerCertificateRejected,
    /// No TLS version, cipher suite or curve in common.
    NoCommonParameters,
    /// The handshake did not finish in time.
    Timeout,
    /// Anything else (malformed records, connection reset mid-handshake).
    Other,
}

impl Refusal {
    /// Every refusal, so each `reason` series exists from the start.
    pub const ALL: [Refusal; 12] = [
        Self::PlainHttp,
        Self::NoClientCertificate,
        Self::ClientCertificateV1,
        Self::UnknownIssuer,
        Self::Expired,
        Self::NotYetValid,
        Self::SanNotAllowed,
        Self::BadClientCertificate,
        Self::ServerCertificateRejected,
        Self::NoCommonParameters,
        Self::Timeout,
        Self::Other,
    ];

    /// The `reason` label of `udts_web_tls_handshake_errors_total`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::PlainHttp => "plain_http",
            Self::NoClientCertificate => "no_client_certificate",
            Self::ClientCertificateV1 => "client_certificate_v1",
            Self::UnknownIssuer => "unknown_issuer",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::SanNotAllowed => "san_not_allowed",
            Self::BadClientCertificate => "bad_client_certificate",
            Self::ServerCertificateRejected => "server_certificate_rejected",
            Self::NoCommonParameters => "no_common_parameters",
            Self::Timeout => "timeout",
            Self::Other => "other",
        }
    }

    /// What happened and what fixes it, in the words of the person who runs the scraper.
    pub fn explanation(self) -> &'static str {
        match self {
            Self::PlainHttp => {
                "plain HTTP request to the TLS port: set scheme: https in the scrape config"
            }
            Self::NoClientCertificate => {
                "no client certificate: client_auth_type requires one; set tls_config.cert_file \
                 and key_file in the scrape config"
            }
            Self::ClientCertificateV1 => {
                "client certificate is X.509 v1; issue a v3 certificate (openssl x509 -req ... \
                 -extfile with extendedKeyUsage=clientAuth)"
            }
            Self::UnknownIssuer => {
                "certificate not signed by client_ca_file: issue the client certificate from \
                 that CA or add its CA to client_ca_file"
            }
            Self::Expired => "client certificate expired: issue a new one",
            Self::NotYetValid => {
                "client certificate not valid yet: check the clocks, or wait until its notBefore"
            }
            Self::SanNotAllowed => {
                "client certificate carries none of client_allowed_sans: issue it with an \
                 allowed DNS, IP, e-mail or URI SAN, or add its SAN to the list"
            }
            Self::BadClientCertificate => {
                "client certificate refused: it must be a v3 certificate with \
                 extendedKeyUsage=clientAuth signed by client_ca_file"
            }
            Self::ServerCertificateRejected => {
                "the client does not trust this server's certificate: give the scraper its CA \
                 (tls_config.ca_file) and a server_name the certificate names"
            }
            Self::NoCommonParameters => {
                "client and server share no TLS version, cipher suite or curve: compare \
                 min_version, max_version, cipher_suites and curve_preferences with the client"
            }
            Self::Timeout => "the TLS handshake did not finish within 10s",
            Self::Other => "the TLS handshake failed",
        }
    }

    /// The refusal a failed handshake's error stands for.
    pub fn of(error: &std::io::Error) -> Self {
        use tokio_rustls::rustls::Error;
        let Some(tls) = error.get_ref().and_then(|e| e.downcast_ref::<Error>()) else {
            return Self::Other;
        };
        match tls {
            Error::NoCertificatesPresented => Self::NoClientCertificate,
            Error::InvalidCertificate(certificate) => match certificate {
                // A CA of the same name but another key signed it: not client_ca_file's either.
                CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                    Self::UnknownIssuer
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    Self::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    Self::NotYetValid
                }
                CertificateError::Other(OtherError(other)) => {
                    match other.downcast_ref::<ClientCertProblem>() {
                        Some(ClientCertProblem::Version1) => Self::ClientCertificateV1,
                        Some(ClientCertProblem::SanNotAllowed(_)) => Self::SanNotAllowed,
                        None => Self::BadClientCertificate,
                    }
                }
                _ => Self::BadClientCertificate,
            },
            Error::AlertReceived(
                AlertDescription::UnknownCA
                | AlertDescription::BadCertificate
                | AlertDescription::CertificateUnknown
                | AlertDescription::CertificateExpired
                | AlertDescription::UnsupportedCertificate,
            ) => Self::ServerCertificateRejected,
            Error::PeerIncompatible(_)
            | Error::AlertReceived(AlertDescription::ProtocolVersion) => Self::NoCommonParameters,
            _ => Self::Other,
        }
    }
}

/// The process-wide record of refused handshakes and failed certificate re-reads: one TLS
/// listener serves a process, and the certificate resolver runs inside rustls where no handle
/// can be passed in, so these live here and the registry of [`crate`]'s metrics adopts them.
struct TlsEvents {
    handshake_errors: IntCounterVec,
    certificate_reload_errors: IntCounter,
    logged: Mutex<HashMap<(IpAddr, Refusal), Instant>>,
    log_lines: DefaultDirectRateLimiter,
}

/// How long a peer's refusal stays quiet in the log after it was explained once.
const QUIET_PER_PEER: Duration = Duration::from_secs(3600);
/// Peers remembered at most; a scanner from many addresses clears the memory, not the heap.
const REMEMBERED_PEERS: usize = 4096;

static EVENTS: LazyLock<TlsEvents> = LazyLock::new(|| {
    let handshake_errors = IntCounterVec::new(
        Opts::new(
            "udts_web_tls_handshake_errors_total",
            "Connections to the exporter's TLS port refused during the handshake, by reason.",
        ),
        &["reason"],
    )
    .unwrap_or_else(|error| panic!("invalid metric definition: {error}"));
    for refusal in Refusal::ALL {
        handshake_errors.with_label_values(&[refusal.reason()]);
    }
    let certificate_reload_errors = IntCounter::new(
        "udts_web_tls_certificate_reload_errors_total",
        "Changed TLS certificate or key files that did not load (the previous pair is served).",
    )
    .unwrap_or_else(|error| panic!("invalid metric definition: {error}"));
    TlsEvents {
        handshake_errors,
        certificate_reload_errors,
        logged: Mutex::new(HashMap::new()),
        // Ten explanations a minute at most, whatever the number of peers.
        log_lines: RateLimiter::direct(Quota::per_minute(
            std::num::NonZeroU32::MIN.saturating_add(9),
        )),
    }
});

/// The TLS counters, for the exporter's registry.
pub fn collectors() -> Vec<Box<dyn Collector>> {
    vec![
        Box::new(EVENTS.handshake_errors.clone()),
        Box::new(EVENTS.certificate_reload_errors.clone()),
    ]
}

/// Counts `refusal` and explains it in the log unless this peer had it explained within the
/// hour or the log already carries many explanations this minute.
pub fn record_refusal(peer: SocketAddr, refusal: Refusal, detail: &dyn std::fmt::Display) {
    EVENTS
        .handshake_errors
        .with_label_values(&[refusal.reason()])
        .inc();
    let now = Instant::now();
    let fresh = {
        let mut logged = EVENTS
            .logged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (peer.ip(), refusal);
        match logged.get(&key) {
            Some(at) if now.duration_since(*at) < QUIET_PER_PEER => false,
            _ => {
                if logged.len() >= REMEMBERED_PEERS {
                    logged.clear();
                }
                logged.insert(key, now);
                true
            }
        }
    };
    if fresh && EVENTS.log_lines.check().is_ok() {
        warn!(
            peer = %peer.ip(),
            reason = refusal.reason(),
            detail = %detail,
            "TLS handshake refused: {}",
            refusal.explanation()
        );
    } else {
        debug!(peer = %peer, reason = refusal.reason(), %detail, "TLS handshake refused");
    }
}

/// What a connection to the TLS port began with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstByte {
    /// A handshake record (0x16): TLS.
    Tls,
    /// A method name: a plain HTTP request.
    PlainHttp,
    /// Nothing before closing (a TCP health check).
    Nothing,
}

/// Looks at the first byte without consuming it; the caller bounds the wait.
pub async fn sniff(stream: &TcpStream) -> FirstByte {
    let mut buffer = [0u8; 1];
    match stream.peek(&mut buffer).await {
        Ok(1) if buffer[0].is_ascii_uppercase() => FirstByte::PlainHttp,
        Ok(1) => FirstByte::Tls,
        _ => FirstByte::Nothing,
    }
}

/// Answers a plain HTTP request on the TLS port as Go's server does, so `curl http://` shows
/// what is wrong instead of an empty reply; counted and explained like any refused handshake.
pub async fn refuse_plain_http(peer: SocketAddr, mut stream: TcpStream) {
    record_refusal(
        peer,
        Refusal::PlainHttp,
        &"the request began with an HTTP method",
    );
    let _ = stream
        .write_all(
            b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
              Connection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
        )
        .await;
    let _ = stream.shutdown().await;
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
