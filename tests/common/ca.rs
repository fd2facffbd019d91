//! A private certificate authority for the TLS tests: a CA of its own name that signs leaf
//! certificates for servers and clients.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// A CA that signs leaf certificates.
pub struct Ca {
    pub issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    /// A new CA; each its own name, as real ones have (two CAs of one name would make a
    /// certificate from the other look like a bad signature rather than an unknown issuer).
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // As a real CA's: strict path validation (sslyze's) requires the key usage.
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name.push(
            DnType::CommonName,
            format!("test CA {}", NEXT.fetch_add(1, Ordering::Relaxed)),
        );
        Self {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf for `names` as `edit` shapes it: (certificate PEM, key PEM, DER).
    pub fn leaf_with(
        &self,
        names: &[&str],
        edit: impl FnOnce(&mut CertificateParams),
    ) -> (String, String, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        edit(&mut params);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }

    /// A plain leaf for `names`: (certificate PEM, key PEM, DER).
    pub fn leaf(&self, names: &[&str]) -> (String, String, Vec<u8>) {
        self.leaf_with(names, |_| {})
    }

    /// Certificate and key of a leaf, one PEM text: a client identity or a server's pair.
    pub fn identity(&self, names: &[&str], edit: impl FnOnce(&mut CertificateParams)) -> String {
        let (cert, key, _) = self.leaf_with(names, edit);
        format!("{cert}{key}")
    }
}
