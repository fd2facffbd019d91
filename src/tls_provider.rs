//! The process's one TLS crypto provider: rustls' aws-lc-rs provider, with P-521 added.
//!
//! Why aws-lc-rs and not ring: Go 1.24+ (and so Prometheus 3 and node_exporter) offers the
//! post-quantum hybrid `X25519MLKEM768` first, and exporter-toolkit's web config may name
//! `CurveP521`; ring has neither. rustls' aws-lc-rs provider has the hybrid but leaves P-521
//! out of its groups, so [`SECP521R1`] adapts aws-lc-rs' own ECDH on P-521 (no cryptography
//! here, only the TLS key-share framing rustls asks for). P-521 is offered only where
//! `curve_preferences` names it: Mozilla's intermediate and modern profiles offer X25519, P-256
//! and P-384 (and the hybrid), and a scanner (sslyze) calls a server that takes P-521
//! non-compliant; no real client needs it.
//!
//! The server builds its configuration from [`provider`]; the gateway client (reqwest), the
//! MySQL reader (mysql_async) and `wait` use the process default, which [`install`] sets.

use std::sync::Once;

use aws_lc_rs::agreement;
use tokio_rustls::rustls::crypto::aws_lc_rs::{default_provider, kx_group};
use tokio_rustls::rustls::crypto::{
    ActiveKeyExchange, CryptoProvider, SharedSecret, SupportedKxGroup,
};
use tokio_rustls::rustls::{Error, NamedGroup, PeerMisbehaved};

/// Go 1.24's groups in Go's order, by the names `curve_preferences` takes (exporter-toolkit's;
/// `X25519MLKEM768` is not among them yet, but Go's constant has that name).
static GROUPS: [(&str, &dyn SupportedKxGroup); 5] = [
    ("X25519MLKEM768", kx_group::X25519MLKEM768),
    ("X25519", kx_group::X25519),
    ("CurveP256", kx_group::SECP256R1),
    ("CurveP384", kx_group::SECP384R1),
    ("CurveP521", SECP521R1),
];

/// How many of [`GROUPS`], from the first, are offered when `curve_preferences` is not set:
/// all but P-521, which meets Mozilla's intermediate and modern profiles.
const DEFAULT_GROUPS: usize = 4;

/// aws-lc-rs' provider offering the default groups, the hybrid first. Spelt out rather than
/// left to rustls' `prefer-post-quantum` feature, which another crate's feature choice could
/// turn off.
pub fn provider() -> CryptoProvider {
    CryptoProvider {
        kx_groups: GROUPS[..DEFAULT_GROUPS]
            .iter()
            .map(|(_, group)| *group)
            .collect(),
        ..default_provider()
    }
}

/// The group `curve_preferences` names `name`, if there is one.
pub fn named_group(name: &str) -> Option<&'static dyn SupportedKxGroup> {
    GROUPS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, group)| *group)
}

/// The names [`named_group`] knows, for an error message.
pub fn group_names() -> String {
    GROUPS
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Makes [`provider`] the process default, once. Every client (reqwest, mysql_async) built
/// after it uses it; calling it again is free.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Somebody (a test harness) may have installed one already; theirs stays.
        let _ = provider().install_default();
    });
}

/// Ephemeral ECDH on secp521r1 (NIST P-521), as Go's `tls.CurveP521`.
pub static SECP521R1: &dyn SupportedKxGroup = &P521;

#[derive(Debug)]
struct P521;

impl SupportedKxGroup for P521 {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let random = aws_lc_rs::rand::SystemRandom::new();
        let private = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P521, &random)
            .map_err(|_| Error::FailedToGetRandomBytes)?;
        let public = private
            .compute_public_key()
            .map_err(|_| Error::FailedToGetRandomBytes)?;
        Ok(Box::new(P521Exchange {
            public: public.as_ref().to_vec(),
            private,
        }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::secp521r1
    }
}

struct P521Exchange {
    private: agreement::EphemeralPrivateKey,
    public: Vec<u8>,
}

impl ActiveKeyExchange for P521Exchange {
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, Error> {
        // TLS allows only the uncompressed point form (RFC 8446 4.2.8.2); aws-lc-rs would
        // take others, so the form is checked here and the point on the curve there.
        if peer.first() != Some(&0x04) {
            return Err(PeerMisbehaved::InvalidKeyShare.into());
        }
        let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P521, peer);
        agreement::agree_ephemeral(self.private, peer, (), |secret| {
            Ok(SharedSecret::from(secret))
        })
        .map_err(|()| PeerMisbehaved::InvalidKeyShare.into())
    }

    fn pub_key(&self) -> &[u8] {
        &self.public
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::secp521r1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_p521_exchanges_agree_and_a_bad_share_is_refused() {
        let ours = SECP521R1.start().unwrap();
        let theirs = SECP521R1.start().unwrap();
        // An uncompressed P-521 point: 0x04, then two 66-byte coordinates.
        assert_eq!(ours.pub_key().len(), 133);
        let their_public = theirs.pub_key().to_vec();
        let our_public = ours.pub_key().to_vec();
        let a = ours.complete(&their_public).unwrap();
        let b = theirs.complete(&our_public).unwrap();
        assert_eq!(a.secret_bytes(), b.secret_bytes());
        assert_eq!(a.secret_bytes().len(), 66);

        let mut compressed = our_public.clone();
        compressed[0] = 0x02;
        assert!(SECP521R1.start().unwrap().complete(&compressed).is_err());
        let mut off_curve = our_public;
        off_curve[132] ^= 1;
        assert!(SECP521R1.start().unwrap().complete(&off_curve).is_err());
    }

    #[test]
    fn the_default_groups_offer_the_hybrid_first_and_p521_only_when_named() {
        let offered: Vec<NamedGroup> = provider().kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(
            offered,
            [
                NamedGroup::X25519MLKEM768,
                NamedGroup::X25519,
                NamedGroup::secp256r1,
                NamedGroup::secp384r1
            ]
        );
        assert_eq!(
            named_group("CurveP521").map(|g| g.name()),
            Some(NamedGroup::secp521r1)
        );
        assert!(group_names().ends_with("CurveP521"));
        assert!(named_group("CurveP224").is_none());
    }
}
