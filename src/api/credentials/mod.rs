//! The keys a client signs with, and where they come from: long-lived keys (the config, UCloud's
//! environment, a ucloud-cli profile), an instance role from the metadata server, or a role
//! assumed through STS with either. Temporary keys are fetched again in the background before
//! they expire ([`refresh`]), so a call never waits on a refresh: it signs with whatever keys are
//! current.
//!
//! Nothing here prints a secret: [`Credentials`]' `Debug` shows the public key and the expiry
//! only, and errors name what was wrong with an answer, never its body.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Notify;
use url::Url;

use super::signer::{sign, Params};
use super::CallObserver;
use crate::time::unix_now;

mod fetch;

pub use fetch::{Fetched, Fetcher};

/// One set of keys: a public key, its private key and, for temporary credentials, the
/// security token and when they expire.
#[derive(Clone)]
pub struct Credentials {
    /// `PublicKey` (for temporary credentials, STS's `AccessKeyId`).
    pub public_key: String,
    /// The private key (`AccessKeySecret`); only ever fed to the signer.
    pub private_key: SecretString,
    /// `SecurityToken`, sent and signed with every call made with temporary credentials.
    pub security_token: Option<SecretString>,
    /// Unix seconds when they stop working; `None` for long-lived keys.
    pub expires: Option<f64>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("public_key", &self.public_key)
            .field("private_key", &"[redacted]")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expires", &self.expires)
            .finish()
    }
}

impl Credentials {
    /// Long-lived keys.
    pub fn keys(public_key: impl Into<String>, private_key: SecretString) -> Self {
        Self {
            public_key: public_key.into(),
            private_key,
            security_token: None,
            expires: None,
        }
    }

    /// Adds `PublicKey`, `SecurityToken` (when there is one) and `Signature` to `params`.
    pub fn sign_into(&self, params: &mut Params) {
        params.insert("PublicKey".into(), self.public_key.clone());
        if let Some(token) = &self.security_token {
            params.insert("SecurityToken".into(), token.expose_secret().to_string());
        }
        let signature = sign(params, &self.private_key);
        params.insert("Signature".into(), signature);
    }

    /// Whether they have expired at `now` (unix seconds).
    pub fn expired_at(&self, now: f64) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }
}

/// `[..assume_role]`, as the client needs it.
#[derive(Debug, Clone)]
pub struct AssumeRole {
    /// `RoleUrn`, e.g. `ucs:iam::123:role/udts-monitor`.
    pub role_urn: String,
    /// `RoleSessionName`.
    pub session_name: String,
    /// `DurationSeconds`.
    pub duration: Duration,
    /// `Policy`, a JSON policy narrowing the role.
    pub policy: Option<String>,
}

/// Where an account's credentials come from.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    /// Long-lived keys; `origin` says where they were found ("config", "environment",
    /// "profile prod").
    Keys {
        /// The keys.
        keys: Credentials,
        /// Where they were found, for the log and `check`.
        origin: String,
    },
    /// An instance role's keys from the metadata server of the host the exporter runs on.
    InstanceRole {
        /// The role's name (`CharacterName`).
        role: String,
        /// The metadata server, `http://100.80.80.80` on UCloud.
        metadata: Url,
    },
    /// A role assumed through STS `AssumeRole`, signed with the keys of `base`.
    AssumeRole {
        /// The keys that sign `AssumeRole`.
        base: Box<CredentialSource>,
        /// What to assume.
        role: AssumeRole,
    },
}

impl CredentialSource {
    /// The `source` label of `udts_api_credential_refreshes_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Keys { .. } => "keys",
            Self::InstanceRole { .. } => "instance_role",
            Self::AssumeRole { .. } => "assume_role",
        }
    }

    /// Whether its keys expire and must be fetched again.
    pub fn is_temporary(&self) -> bool {
        !matches!(self, Self::Keys { .. })
    }

    /// What it is, in words, for the start-up log and `check`: "profile prod", "instance role
    /// udts-monitor", "role ucs:iam::1:role/udts via environment". Never a secret.
    pub fn describe(&self) -> String {
        match self {
            Self::Keys { origin, .. } => origin.clone(),
            Self::InstanceRole { role, .. } => format!("instance role {role}"),
            Self::AssumeRole { base, role } => {
                format!("role {} via {}", role.role_urn, base.describe())
            }
        }
    }
}

/// Why credentials could not be had. Never holds a secret or an answer's body.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct CredentialError(pub String);

/// The keys a client signs with now, swapped whole by the refresher.
#[derive(Default)]
pub struct CredentialCell {
    current: ArcSwapOption<Credentials>,
    /// Woken when the first keys arrive.
    arrived: Notify,
    /// Asks the refresher for new keys at once (the gateway rejected the current ones).
    refresh_now: Notify,
    /// Bumped on every new set of keys.
    generation: AtomicU64,
    /// The generation a forced refresh was last asked for: once per set of keys.
    forced_for: AtomicU64,
    /// The last error, while no keys can be had.
    error: std::sync::Mutex<Option<CredentialError>>,
}

impl CredentialCell {
    /// A cell holding `credentials` from the start.
    pub fn with(credentials: Credentials) -> Self {
        let cell = Self::default();
        cell.store(credentials);
        cell
    }

    /// The keys in force, and their generation.
    pub fn current(&self) -> (Option<Arc<Credentials>>, u64) {
        (
            self.current.load_full(),
            self.generation.load(Ordering::Acquire),
        )
    }

    fn store(&self, credentials: Credentials) {
        self.current.store(Some(Arc::new(credentials)));
        self.generation.fetch_add(1, Ordering::AcqRel);
        *self
            .error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        self.arrived.notify_waiters();
    }

    fn fail(&self, error: CredentialError) {
        *self
            .error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error);
    }

    /// Why there are no usable keys, when a fetch failed.
    pub fn error(&self) -> Option<CredentialError> {
        self.error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Waits up to `timeout` for the first keys.
    pub async fn first(&self, timeout: Duration) -> Option<Arc<Credentials>> {
        let arrived = self.arrived.notified();
        if let (Some(current), _) = self.current() {
            return Some(current);
        }
        let _ = tokio::time::timeout(timeout, arrived).await;
        self.current().0
    }

    /// Keys newer than `generation`, waiting up to `timeout` for them.
    pub async fn newer_than(&self, generation: u64, timeout: Duration) -> Option<Arc<Credentials>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.arrived.notified();
            if let (Some(current), now) = self.current() {
                if now != generation {
                    return Some(current);
                }
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return None;
            }
        }
    }

    /// The gateway rejected the keys of `generation`: refresh at once, once per set of keys.
    pub fn rejected(&self, generation: u64) {
        if self.forced_for.swap(generation, Ordering::AcqRel) != generation {
            self.refresh_now.notify_one();
        }
    }
}

/// When to fetch again after keys valid from `issued` to `expires` (unix seconds): by two
/// thirds of their lifetime at the latest, and no later than 5 minutes before expiry when the
/// lifetime allows it (a lifetime under 7.5 minutes has no room for both).
pub fn refresh_at(issued: f64, expires: f64) -> f64 {
    let lifetime = (expires - issued).max(0.0);
    let by = if lifetime >= 450.0 {
        (lifetime * 2.0 / 3.0).min(lifetime - 300.0)
    } else {
        lifetime * 2.0 / 3.0
    };
    issued + by
}

/// The first wait after a failed fetch; it doubles with each failure in a row, up to
/// [`RETRY_MAX`], and never runs past the current keys' expiry.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);
/// The longest wait between fetches while there are no usable keys.
const RETRY_WITHOUT_KEYS: Duration = Duration::from_secs(5);

/// Keeps `cell` filled with `source`'s keys until dropped: fetches at once, then again by
/// [`refresh_at`], retries a failed fetch with backoff, and fetches at once when the gateway
/// rejects the keys. Reports every fetch to `observer` and logs what changed (never a secret).
pub async fn refresh(
    source: CredentialSource,
    fetcher: Fetcher,
    cell: Arc<CredentialCell>,
    region: Arc<ArcSwapOption<String>>,
    account: String,
    observer: Arc<dyn CallObserver>,
) {
    let label = source.label();
    let mut failures: u32 = 0;
    loop {
        let issued = unix_now();
        let next = match fetcher.fetch(&source).await {
            Ok(fetched) => {
                let expires = fetched.credentials.expires;
                observer.credentials_refreshed(&account, label, true, expires);
                if let Some(found) = fetched.region.clone() {
                    region.store(Some(Arc::new(found)));
                }
                let first = cell.current().0.is_none();
                let recovered = failures > 0 || cell.error().is_some();
                let log = |message: &str| {
                    tracing::info!(
                        account = %account,
                        source = %source.describe(),
                        via = fetched.via,
                        expires_in_s = expires.map(|at| (at - issued).round() as i64),
                        "{message}"
                    );
                };
                if first {
                    log("API credentials fetched");
                } else if recovered {
                    log("API credentials fetched again after failures");
                } else {
                    tracing::debug!(account = %account, via = fetched.via, "API credentials refreshed");
                }
                cell.store(fetched.credentials);
                failures = 0;
                expires.map_or(issued + 3600.0, |at| refresh_at(issued, at))
            }
            Err(error) => {
                observer.credentials_refreshed(&account, label, false, None);
                failures = failures.saturating_add(1);
                let current = cell.current().0;
                let valid_for = current
                    .as_ref()
                    .and_then(|c| c.expires)
                    .map(|at| at - issued);
                if failures == 1 || valid_for.is_some_and(|left| left <= 300.0) {
                    tracing::warn!(
                        account = %account,
                        source = %source.describe(),
                        error = %error,
                        current_valid_for_s = valid_for.map(|s| s.max(0.0).round() as i64),
                        "cannot fetch API credentials; retrying"
                    );
                }
                let usable = current.as_ref().is_some_and(|c| !c.expired_at(issued));
                if !usable {
                    cell.fail(error);
                }
                // Without usable keys every call fails: try often enough that calls resume
                // within seconds of the source answering again.
                let ceiling = if !usable {
                    RETRY_WITHOUT_KEYS
                } else {
                    RETRY_MAX
                };
                let backoff = RETRY_FIRST
                    .saturating_mul(1 << failures.min(7).saturating_sub(1))
                    .min(ceiling);
                let mut at = issued + backoff.as_secs_f64();
                // Still valid keys: one more try shortly before they expire.
                if let Some(left) = valid_for.filter(|left| *left > 1.0) {
                    at = at.min(issued + left - 1.0);
                }
                at
            }
        };
        let wait = Duration::from_secs_f64((next - unix_now()).max(0.0));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = cell.refresh_now.notified() => {
                tracing::info!(account = %account, "the gateway rejected the temporary credentials: fetching new ones");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_by_two_thirds_and_five_minutes_before_expiry() {
        // An hour: 5 minutes before would be 55 min; two thirds is sooner.
        assert_eq!(refresh_at(0.0, 3600.0), 2400.0);
        // 15 minutes: both rules agree at 10.
        assert_eq!(refresh_at(0.0, 900.0), 600.0);
        // 10 minutes: 5 before expiry is sooner than two thirds.
        assert_eq!(refresh_at(0.0, 600.0), 300.0);
        // 6 seconds (tests): two thirds.
        assert_eq!(refresh_at(100.0, 106.0), 104.0);
    }

    fn signed(credentials: &Credentials, pairs: &[(&str, &str)]) -> String {
        let mut params: Params = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        credentials.sign_into(&mut params);
        params["Signature"].clone()
    }

    /// The official vectors with a token: UCloud's docs (CreateUHostInstance with
    /// `some_stoken`) and the Go SDK's `request_test.go` (keys `foo`/`bar`, token `42`).
    #[test]
    fn the_security_token_is_sent_and_signed_as_the_official_vectors_say() {
        let docs = Credentials {
            security_token: Some(SecretString::from("some_stoken")),
            ..Credentials::keys(
                "ucloudsomeone@example.com1296235120854146120",
                SecretString::from("46f09bb9fab4f12dfc160dae12273d5332b5debe"),
            )
        };
        let create = [
            ("Action", "CreateUHostInstance"),
            ("Region", "cn-bj2"),
            ("Zone", "cn-bj2-04"),
            ("ImageId", "f43736e1-65a5-4bea-ad2e-8a46e18883c2"),
            ("CPU", "2"),
            ("Memory", "2048"),
            ("DiskSpace", "10"),
            ("LoginMode", "Password"),
            ("Password", "VUNsb3VkLmNu"),
            ("Name", "Host01"),
            ("ChargeType", "Month"),
            ("Quantity", "1"),
        ];
        assert_eq!(
            signed(&docs, &create),
            "170c480ad176a247b324eb92a2cfe536aacfbd04"
        );
        let go = Credentials {
            security_token: Some(SecretString::from("42")),
            ..Credentials::keys("foo", SecretString::from("bar"))
        };
        assert_eq!(
            signed(&go, &[("Name", "foo")]),
            "012679c87951918e8e04de783a4a8ff981a61d5f"
        );
        assert_eq!(
            signed(
                &go,
                &[
                    ("Action", "foo"),
                    ("Name", "foo"),
                    ("ProjectId", "bar"),
                    ("Region", "cn-bj2"),
                    ("Zone", "cn-bj2-02")
                ]
            ),
            "170de002e3ca3acdc3a790badc4d14b09d183e4b"
        );
        assert_eq!(signed(&go, &[]), "9d6d7cb14e8aeda887369ff22371788ae06c5ea4");
        // The token travels as a parameter.
        let mut params = Params::new();
        go.sign_into(&mut params);
        assert_eq!(params["SecurityToken"], "42");
    }

    #[test]
    fn debug_shows_no_secret() {
        let credentials = Credentials {
            public_key: "AKID".into(),
            private_key: SecretString::from("the-secret"),
            security_token: Some(SecretString::from("the-token")),
            expires: Some(1.0),
        };
        let shown = format!("{credentials:?}");
        assert!(shown.contains("AKID"), "{shown}");
        assert!(
            !shown.contains("the-secret") && !shown.contains("the-token"),
            "{shown}"
        );
    }
}
