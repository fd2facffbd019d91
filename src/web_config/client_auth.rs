//! Client certificates (`client_auth_type`, `client_ca_file`, `client_allowed_sans`): WebPKI
//! verification against the client CA (or the system's trust store, as Go), a plain-words
//! refusal of X.509 v1 certificates, and the Subject Alternative Names written as Go writes
//! them, so an exporter-toolkit web config means the same here.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::{CertificateDer, UnixTime};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};

use super::refusal::ClientCertProblem;
use super::tls::{parse_certs, TlsServerConfig};

/// The client certificate check of `client_auth_type` and `client_allowed_sans`, if any.
pub(super) fn client_verifier(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web_config::tls::crypto_provider;
    use crate::web_config::tls::tests::tls;

    #[test]
    fn client_auth_types_are_checked() {
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
}
