//! Why a connection to the TLS port did not become a TLS session, as an operator would fix it:
//! every refused handshake is counted by reason and explained in the log (once per peer and
//! reason, rate-limited), because a refused scrape otherwise shows only as a target that is
//! down. Also the first byte's sniffing and Go's answer to plain HTTP on the TLS port.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use prometheus::core::Collector;
use prometheus::{IntCounter, IntCounterVec, Opts};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::rustls::{AlertDescription, CertificateError, OtherError};
use tracing::{debug, warn};

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
            Self::Timeout => {
                "the TLS handshake did not finish within web.read_header_timeout (the detail \
                 says how long that is): a client that connects and sends nothing, or a scraper \
                 whose scrape_timeout ends first"
            }
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

/// Counts a changed certificate or key that did not load (the resolver runs inside rustls, where
/// no handle can be passed in).
pub(super) fn certificate_reload_failed() {
    EVENTS.certificate_reload_errors.inc();
}

/// Why the exporter itself refused a client certificate that rustls' checks alone would
/// describe poorly or not check at all.
#[derive(Debug, thiserror::Error)]
pub(super) enum ClientCertProblem {
    #[error("the client certificate is X.509 v1")]
    Version1,
    #[error("the client certificate has none of client_allowed_sans (it has: {0})")]
    SanNotAllowed(String),
}

impl From<ClientCertProblem> for tokio_rustls::rustls::Error {
    fn from(problem: ClientCertProblem) -> Self {
        CertificateError::Other(OtherError(std::sync::Arc::new(problem))).into()
    }
}
