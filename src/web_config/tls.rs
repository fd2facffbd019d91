//! `tls_server_config`: exporter-toolkit's schema, and Go's names for suites, groups and
//! versions turned into rustls' terms (`mod.rs` assembles the configuration). The client certificate checks
//! (`client_auth_type`, `client_allowed_sans`) are in `client_auth.rs`, the served certificate
//! and its re-reading in `rotation.rs`; why a handshake is refused, and its counting and
//! explaining, in `refusal.rs`.

use std::path::PathBuf;

use serde::Deserialize;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::version::{TLS12, TLS13};

/// `tls_server_config`, every key of exporter-toolkit's format.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsServerConfig {
    /// The server certificate (chain), inline PEM, instead of `cert_file`.
    pub(super) cert: Option<String>,
    /// Its private key, inline PEM, instead of `key_file`.
    pub(super) key: Option<String>,
    pub(super) cert_file: Option<PathBuf>,
    pub(super) key_file: Option<PathBuf>,
    /// `NoClientCert` (default), `RequestClientCert`, `VerifyClientCertIfGiven`,
    /// `RequireAndVerifyClientCert`; `RequireAnyClientCert` is refused (nothing verifies it).
    pub(super) client_auth_type: Option<String>,
    /// The CA of client certificates, inline PEM, instead of `client_ca_file`.
    pub(super) client_ca: Option<String>,
    pub(super) client_ca_file: Option<PathBuf>,
    /// With `RequireAndVerifyClientCert`: the client certificate must carry one of these as a
    /// DNS, IP, e-mail or URI Subject Alternative Name, exactly.
    #[serde(default)]
    pub(super) client_allowed_sans: Vec<String>,
    /// `TLS10` .. `TLS13`; rustls speaks TLS 1.2 and 1.3.
    pub(super) min_version: Option<String>,
    pub(super) max_version: Option<String>,
    /// Go's names of TLS 1.2 suites (TLS 1.3 suites are not configurable, as in Go).
    #[serde(default)]
    pub(super) cipher_suites: Vec<String>,
    /// Accepted for compatibility; rustls always uses the server's order.
    #[allow(dead_code)]
    pub(super) prefer_server_cipher_suites: Option<bool>,
    /// `X25519MLKEM768`, `X25519`, `CurveP256`, `CurveP384`, `CurveP521` (Go's names).
    #[serde(default)]
    pub(super) curve_preferences: Vec<String>,
}

/// The process's provider ([`crate::tls_provider`]), with `cipher_suites` and
/// `curve_preferences` applied.
pub(super) fn crypto_provider(tls: &TlsServerConfig) -> Result<CryptoProvider, String> {
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
pub(super) fn protocol_versions(
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

/// The certificates of a PEM text; at least one.
pub(super) fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(certs)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::web_config::refusal::ClientCertProblem;
    use crate::web_config::Refusal;
    use tokio_rustls::rustls::CertificateError;

    /// A `tls_server_config` of a certificate pair plus `yaml`, for the tests of this module
    /// and `client_auth`.
    pub(in crate::web_config) fn tls(yaml: &str) -> TlsServerConfig {
        serde_yaml_ng::from_str(&format!("cert_file: a\nkey_file: b\n{yaml}")).unwrap()
    }

    #[test]
    fn go_cipher_suite_names_select_tls12_suites_and_keep_tls13() {
        let provider = crypto_provider(&tls(
            "cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305]",
        ))
        .unwrap();
        let tls12: Vec<&str> = provider
            .cipher_suites
            .iter()
            .filter(|s| s.version() == &TLS12)
            .filter_map(|s| s.suite().as_str())
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
    fn versions_are_checked() {
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
    }

    #[test]
    fn each_refusal_has_its_own_reason_and_a_fix() {
        let reasons: std::collections::HashSet<_> =
            Refusal::ALL.iter().map(|r| r.reason()).collect();
        assert_eq!(reasons.len(), Refusal::ALL.len());
        // The handshake's deadline is web.read_header_timeout, whatever it is set to; the
        // explanation names the key, the log line's detail the duration in force.
        let timeout = Refusal::Timeout.explanation();
        assert!(timeout.contains("web.read_header_timeout"), "{timeout}");
        assert!(!timeout.contains("10s"), "{timeout}");
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
