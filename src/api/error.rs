//! Everything that can go wrong with one API call, classified so that each failure is counted
//! under a stable `reason` label and handled by what it means (transient, credentials, ...).
//!
//! Messages never contain the request URL's query, the body, the signature or the private key:
//! reqwest errors are stripped of their URL before they are kept.

/// What a non-zero RetCode means for an exporter (see `shared/ucloud-api.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetCodeClass {
    /// 110, 130, 150: the gateway had a passing fault.
    Transient,
    /// 153: the gateway asks us to slow down.
    Throttled,
    /// 160, 161, 292: the endpoint does not know the action, or the project does not exist.
    Configuration,
    /// 170-174: signature, public key or token rejected.
    Credentials,
    /// 293-299: zone, IP allow-list, security lock or IAM refused the call.
    Permission,
    /// Anything else: action-specific, e.g. the task does not exist.
    Other,
}

impl RetCodeClass {
    /// Classifies a non-zero RetCode.
    pub fn of(code: i64) -> Self {
        match code {
            110 | 130 | 150 => Self::Transient,
            153 => Self::Throttled,
            160 | 161 | 292 => Self::Configuration,
            170..=174 => Self::Credentials,
            293..=299 => Self::Permission,
            _ => Self::Other,
        }
    }

    /// The `reason` label value.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::Throttled => "throttled",
            Self::Configuration => "configuration",
            Self::Credentials => "credentials",
            Self::Permission => "permission",
            Self::Other => "api_error",
        }
    }
}

/// A failed API call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// No answer within the configured timeout, from the endpoint given (scheme, host and
    /// port; empty where unknown).
    #[error("no answer{} within api.timeout", at_endpoint(.0))]
    Timeout(String),
    /// The connection could not be established: the endpoint, then the cause.
    #[error("cannot connect to the gateway at {endpoint}: {cause}")]
    Connect {
        /// `https://host:port` (never the path or query).
        endpoint: String,
        /// What the network or TLS stack said.
        cause: String,
    },
    /// The connection broke while sending or receiving.
    #[error("network error{}: {cause}", at_endpoint(.endpoint))]
    Network {
        /// `https://host:port`, or empty.
        endpoint: String,
        /// What the network stack said.
        cause: String,
    },
    /// The gateway answered with an HTTP status other than 2xx.
    #[error("HTTP status {status}{}", uuid_suffix(.request_uuid))]
    HttpStatus {
        /// The HTTP status code.
        status: u16,
        /// `X-UCLOUD-REQUEST-UUID`, for a support ticket.
        request_uuid: Option<String>,
    },
    /// The body was larger than the configured cap.
    #[error("response body exceeds {limit} bytes")]
    BodyTooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// The body was not the JSON envelope we expect.
    #[error("undecodable response: {detail}{}", uuid_suffix(.request_uuid))]
    Decode {
        /// What was wrong with it (never the body itself).
        detail: String,
        /// `X-UCLOUD-REQUEST-UUID`, for a support ticket.
        request_uuid: Option<String>,
    },
    /// No usable credentials: temporary ones expired, or were never had, and fetching new ones
    /// fails. No call was sent.
    #[error("no usable API credentials: {0}")]
    NoCredentials(String),
    /// The gateway answered with a non-zero RetCode.
    #[error("RetCode {code}: {message}{}", uuid_suffix(.request_uuid))]
    RetCode {
        /// The RetCode.
        code: i64,
        /// The gateway's `Message`.
        message: String,
        /// `X-UCLOUD-REQUEST-UUID`, for a support ticket.
        request_uuid: Option<String>,
    },
}

fn at_endpoint(endpoint: &str) -> String {
    if endpoint.is_empty() {
        String::new()
    } else {
        format!(" from {endpoint}")
    }
}

fn uuid_suffix(uuid: &Option<String>) -> String {
    match uuid {
        Some(uuid) => format!(" (request {uuid})"),
        None => String::new(),
    }
}

/// Every value [`ApiError::reason`] gives, so each error series can exist at 0 from the start:
/// `rate()` over a counter that appears with its first error misses that error.
pub const ERROR_REASONS: [&str; 12] = [
    "timeout",
    "connect",
    "network",
    "http_status",
    "body_too_large",
    "decode",
    "transient",
    "throttled",
    "configuration",
    "credentials",
    "permission",
    "api_error",
];

impl ApiError {
    /// The stable `reason` label value for this failure (one of [`ERROR_REASONS`]).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Connect { .. } => "connect",
            Self::Network { .. } => "network",
            Self::HttpStatus { .. } => "http_status",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::Decode { .. } => "decode",
            Self::NoCredentials(_) => "credentials",
            Self::RetCode { code, .. } => RetCodeClass::of(*code).reason(),
        }
    }

    /// Whether trying again soon may succeed: network trouble, timeouts, HTTP 5xx and the
    /// gateway's transient RetCodes. Bad bodies, credentials, configuration and task errors
    /// will not fix themselves within seconds, and throttling (153, 429) is answered by slowing
    /// down, not by asking again.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout(_) | Self::Connect { .. } | Self::Network { .. } => true,
            Self::HttpStatus { status, .. } => *status >= 500,
            Self::RetCode { code, .. } => RetCodeClass::of(*code) == RetCodeClass::Transient,
            Self::BodyTooLarge { .. } | Self::Decode { .. } | Self::NoCredentials(_) => false,
        }
    }

    /// Whether the gateway asked us to slow down (RetCode 153 or HTTP 429).
    pub fn is_throttling(&self) -> bool {
        match self {
            Self::HttpStatus { status, .. } => *status == 429,
            Self::RetCode { code, .. } => RetCodeClass::of(*code) == RetCodeClass::Throttled,
            _ => false,
        }
    }

    /// Whether the gateway rejected the credentials (RetCode 170-174).
    pub fn is_credentials(&self) -> bool {
        matches!(self, Self::RetCode { code, .. } if RetCodeClass::of(*code) == RetCodeClass::Credentials)
    }

    /// What an operator should do about this failure, when it is clear.
    pub fn hint(&self) -> Option<&'static str> {
        let code =
            match self {
                Self::Timeout(_) => return Some(
                    "check api.endpoint's address and port, a firewall or a proxy (HTTPS_PROXY) \
                     on the way; on a slow gateway raise api.timeout",
                ),
                Self::Connect { cause, .. } => return Some(connect_hint(cause)),
                Self::NoCredentials(_) => return Some(
                    "the account's credential source (metadata server or STS) does not answer: \
                     see the log and run `udts-exporter check`",
                ),
                Self::RetCode { code, .. } => code,
                _ => return None,
            };
        Some(match code {
            160 | 161 => "the endpoint does not know this action: check api.endpoint",
            170 | 171 => "the signature was rejected: check the private key and that it belongs to this endpoint",
            172 => "the public key is unknown to this gateway: check api.public_key and api.endpoint",
            173 | 174 => "the token or key is not accepted: check the account's API keys, or that temporary credentials are fetched (see the log)",
            292 => "the project does not exist: check the project id (api.project_id, project_ids)",
            293 => "the account has no permission in this zone",
            294 => "the exporter's IP address is not on the account's API allow-list: add it in the console",
            295 => "the account is security-locked: unlock it in the console",
            299 => "IAM denies this action: grant the key read access to UDTS",
            _ => return None,
        })
    }

    /// The RetCode, when the gateway sent one.
    pub fn ret_code(&self) -> Option<i64> {
        match self {
            Self::RetCode { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The same failure without the request UUID, which differs on every call. Two failures
    /// with the same key are "the same error" for log de-duplication.
    pub fn dedup_key(&self) -> String {
        match self {
            Self::HttpStatus { status, .. } => format!("http {status}"),
            Self::Decode { detail, .. } => format!("decode {detail}"),
            Self::RetCode { code, message, .. } => format!("retcode {code} {message}"),
            other => other.to_string(),
        }
    }

    /// Classifies a reqwest error of a call to `endpoint`. The URL is dropped: ours carries no
    /// secret (we POST the signed parameters in the body), but an error message is no place for
    /// one anyway; only the scheme, host and port are kept, to say where the call went.
    pub fn from_reqwest(error: reqwest::Error, endpoint: &url::Url) -> Self {
        let error = error.without_url();
        let endpoint = origin(endpoint);
        if error.is_timeout() {
            Self::Timeout(endpoint)
        } else if error.is_connect() {
            Self::Connect {
                endpoint,
                cause: error_chain(&error),
            }
        } else {
            Self::Network {
                endpoint,
                cause: error_chain(&error),
            }
        }
    }
}

/// `scheme://host:port` of a URL, the port spelled out even where it is the default: the
/// firewall rule an operator looks for names it.
pub fn origin(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port_or_known_default() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

/// The likely fix for a connection that could not be made, by what the network or TLS stack
/// said (rustls and hyper's words, as `error_chain` joins them).
fn connect_hint(cause: &str) -> &'static str {
    let cause = cause.to_ascii_lowercase();
    if cause.contains("dns error") || cause.contains("failed to lookup address") {
        "the host name does not resolve: check the host in api.endpoint and the DNS resolver"
    } else if cause.contains("notvalidforname") || cause.contains("not valid for name") {
        "the gateway's certificate does not name this host: check the host in api.endpoint \
         (use the name the certificate is issued for)"
    } else if cause.contains("certificate") || cause.contains("unknownissuer") {
        "the gateway's certificate is not trusted: set api.ca_file to the CA that signed it"
    } else if cause.contains("refused") {
        "nothing accepts connections there: check api.endpoint's address and port, and a \
         firewall or proxy (HTTPS_PROXY) on the way"
    } else {
        "check api.endpoint's address and port, and a firewall or proxy (HTTPS_PROXY) on the way"
    }
}

/// The error and its sources on one line: reqwest's own message alone ("error sending
/// request") does not say what went wrong.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ret_codes_are_classified_as_the_api_facts_say() {
        let reason = |code| {
            ApiError::RetCode {
                code,
                message: String::new(),
                request_uuid: None,
            }
            .reason()
        };
        assert_eq!(reason(110), "transient");
        assert_eq!(reason(150), "transient");
        assert_eq!(reason(153), "throttled");
        assert_eq!(reason(161), "configuration");
        assert_eq!(reason(292), "configuration");
        assert_eq!(reason(171), "credentials");
        assert_eq!(reason(174), "credentials");
        assert_eq!(reason(294), "permission");
        assert_eq!(reason(8001), "api_error");
    }

    #[test]
    fn every_reason_is_listed_for_the_zero_series() {
        let retcode = |code| ApiError::RetCode {
            code,
            message: String::new(),
            request_uuid: None,
        };
        let errors = [
            ApiError::Timeout(String::new()),
            ApiError::Connect {
                endpoint: String::new(),
                cause: String::new(),
            },
            ApiError::Network {
                endpoint: String::new(),
                cause: String::new(),
            },
            ApiError::HttpStatus {
                status: 502,
                request_uuid: None,
            },
            ApiError::BodyTooLarge { limit: 1 },
            ApiError::Decode {
                detail: String::new(),
                request_uuid: None,
            },
            retcode(110),
            retcode(153),
            retcode(160),
            retcode(170),
            retcode(293),
            retcode(8001),
        ];
        let reasons: Vec<&str> = errors.iter().map(ApiError::reason).collect();
        assert_eq!(reasons, ERROR_REASONS);
    }

    #[test]
    fn dedup_key_ignores_the_request_uuid() {
        let error = |uuid: &str| ApiError::RetCode {
            code: 150,
            message: "busy".into(),
            request_uuid: Some(uuid.into()),
        };
        assert_ne!(error("a").to_string(), error("b").to_string());
        assert_eq!(error("a").dedup_key(), error("b").dedup_key());
    }
}
