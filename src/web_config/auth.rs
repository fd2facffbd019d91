//! `basic_auth_users` and `rate_limit`, hardened as exporter-toolkit hardens them: an unknown
//! user costs the same bcrypt verification as a wrong password (no user enumeration by timing),
//! verifications run one at a time on the blocking pool (a flood of wrong passwords cannot take
//! the async workers that serve scrapes and drive the poller), and outcomes are cached so a
//! scraper's repeated credentials cost one verification, not one per scrape, also across
//! reloads of the web config.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::Deserialize;
use sha1::{Digest, Sha1};

/// The users and their bcrypt hashes, and the outcomes of verifications already made.
pub struct BasicAuth {
    users: BTreeMap<String, String>,
    /// A hash at the users' usual cost that an unknown user's password is verified against.
    dummy_hash: String,
    /// Held for the length of one verification: exporter-toolkit's mutex, so at most one core
    /// does bcrypt at a time however many requests arrive.
    verifying: Arc<tokio::sync::Mutex<()>>,
}

/// Verifications already made, by a digest of user, password and hash: whether
/// `bcrypt::verify` said yes. It depends on nothing else, so the memo is the process's and
/// survives a reload (a reload every few seconds would otherwise cost every scraper a
/// verification each time); whether the user is configured is decided per request, never
/// cached. The user is part of the key so that an unknown user's verification against the
/// dummy hash (a configured user's) can never make that user's next answer faster, which would
/// tell them apart. Refusals are kept apart so a flood of wrong passwords can never push out
/// the scraper's accepted entry.
#[derive(Default)]
struct Outcomes {
    accepted: HashSet<[u8; 20]>,
    refused: HashSet<[u8; 20]>,
}

static OUTCOMES: LazyLock<Mutex<Outcomes>> = LazyLock::new(Mutex::default);

fn outcomes() -> std::sync::MutexGuard<'static, Outcomes> {
    OUTCOMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the memo says of `key`, if it has seen it.
fn cached(key: &[u8; 20]) -> Option<bool> {
    let outcomes = outcomes();
    if outcomes.accepted.contains(key) {
        Some(true)
    } else if outcomes.refused.contains(key) {
        Some(false)
    } else {
        None
    }
}

/// Entries per outcome at most; a full set is emptied (refusals then cost a verification
/// again, which is what they cost anyway).
const CACHE_LIMIT: usize = 4096;

impl BasicAuth {
    /// Checks that every password is a bcrypt hash and picks the dummy hash. Both without
    /// hashing: the crate's parser reads each hash and its cost, so a file of a hundred users
    /// at cost 12 loads in milliseconds, not the minutes a verification per user would take.
    pub(super) fn new(users: BTreeMap<String, String>) -> Result<Self, String> {
        // Each cost with the hash of its first user.
        let mut costs: BTreeMap<u32, (usize, &String)> = BTreeMap::new();
        for (user, hash) in &users {
            let Some(cost) = bcrypt_cost(hash) else {
                return Err(format!(
                    "basic_auth_users.{user} is not a bcrypt hash (generate one with `htpasswd -nBC 10 \"\"`)"
                ));
            };
            costs.entry(cost).or_insert((0, hash)).0 += 1;
        }
        // A user's hash at the most common cost: with one cost for all users (the usual case),
        // an unknown user takes exactly as long as a known one. Which password it was made of
        // does not matter, since a match for an unknown user is still a refusal.
        let dummy_hash = match costs.values().max_by_key(|(count, _)| *count) {
            Some((_, hash)) => (*hash).clone(),
            None => bcrypt::hash("udts-exporter: no such user", bcrypt::DEFAULT_COST)
                .map_err(|e| format!("basic_auth_users: cannot prepare the dummy hash: {e}"))?,
        };
        Ok(Self {
            users,
            dummy_hash,
            verifying: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Whether `user:password` is a configured user with that password. Known and unknown users
    /// take the same path and the same time; verification never runs on the caller's thread.
    pub async fn check(self: &Arc<Self>, user: &str, password: &str) -> bool {
        let known = self.users.get(user);
        let hash = known.unwrap_or(&self.dummy_hash);
        let matches = self.verify(user, password, hash).await;
        matches && known.is_some()
    }

    /// `bcrypt::verify(password, hash)` for `user`, from the memo or on the blocking pool in
    /// turn.
    async fn verify(&self, user: &str, password: &str, hash: &str) -> bool {
        let key = cache_key(user, password, hash);
        if let Some(matches) = cached(&key) {
            return matches;
        }
        let turn = Arc::clone(&self.verifying).lock_owned().await;
        // Another request may have verified the same credentials while this one waited.
        if let Some(matches) = cached(&key) {
            return matches;
        }
        let (password, hash) = (password.to_string(), hash.to_string());
        // The turn moves into the blocking task: a client that hangs up does not end it early.
        let matches = tokio::task::spawn_blocking(move || {
            let matches = bcrypt::verify(password, &hash).unwrap_or(false);
            drop(turn);
            matches
        })
        .await
        .unwrap_or(false);
        let mut outcomes = outcomes();
        let set = if matches {
            &mut outcomes.accepted
        } else {
            &mut outcomes.refused
        };
        if set.len() >= CACHE_LIMIT {
            set.clear();
        }
        set.insert(key);
        matches
    }
}

/// The cost of a well-formed `$2a$`/`$2b$`/`$2x$`/`$2y$` hash, as the bcrypt crate parses it,
/// if verification can use it (4 to 31).
fn bcrypt_cost(hash: &str) -> Option<u32> {
    let cost = hash.parse::<bcrypt::HashParts>().ok()?.get_cost();
    (4..=31).contains(&cost).then_some(cost)
}

/// Digest of the credentials and the hash they were checked against: a changed password
/// (another hash) never meets a stale entry.
fn cache_key(user: &str, password: &str, hash: &str) -> [u8; 20] {
    let mut digest = Sha1::new();
    for part in [user, password, hash] {
        digest.update((part.len() as u64).to_le_bytes());
        digest.update(part.as_bytes());
    }
    digest.finalize().into()
}

/// `rate_limit` as in exporter-toolkit: `interval` between requests on average, `burst` at once;
/// `interval: 0` turns it off.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RateLimitConfig {
    #[serde(with = "humantime_serde")]
    interval: Duration,
    #[serde(default)]
    burst: u32,
}

impl RateLimitConfig {
    /// The token bucket over all requests, or `None` when off.
    pub(super) fn limiter(&self) -> Result<Option<Arc<DefaultDirectRateLimiter>>, String> {
        if self.interval.is_zero() {
            return Ok(None);
        }
        let Some(burst) = std::num::NonZeroU32::new(self.burst) else {
            return Err(
                "rate_limit.burst must be at least 1 when rate_limit.interval is set (0 lets no \
                 request through); e.g. burst: 10"
                    .into(),
            );
        };
        let quota = Quota::with_period(self.interval)
            .ok_or_else(|| "rate_limit.interval must be above 0".to_string())?
            .allow_burst(burst);
        Ok(Some(Arc::new(RateLimiter::direct(quota))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cost_is_read_from_each_hash_variant_and_a_malformed_hash_is_none() {
        // A real hash's salt and digest under other prefixes and costs.
        let real = bcrypt::hash("secret", 4).unwrap();
        let tail = &real[6..];
        assert_eq!(bcrypt_cost(&format!("$2y$10{tail}")), Some(10));
        assert_eq!(bcrypt_cost(&format!("$2b$04{tail}")), Some(4));
        assert_eq!(bcrypt_cost(&format!("$2a$12{tail}")), Some(12));
        // Cut short, a bad salt character, a cost bcrypt cannot run, not bcrypt at all.
        assert_eq!(bcrypt_cost(&format!("$2y$10{}", &tail[..40])), None);
        let mut bad_salt = tail.to_string();
        bad_salt.replace_range(5..6, "!");
        assert_eq!(bcrypt_cost(&format!("$2y$10{bad_salt}")), None);
        assert_eq!(bcrypt_cost(&format!("$2y$03{tail}")), None);
        assert_eq!(bcrypt_cost(&format!("$2y$32{tail}")), None);
        assert_eq!(bcrypt_cost("plaintext"), None);
        assert_eq!(bcrypt_cost("$1$10$md5"), None);
    }

    #[tokio::test]
    async fn outcomes_are_cached_for_the_hash_they_were_checked_against_across_reloads() {
        let hash = bcrypt::hash("right", 4).unwrap();
        let users = |names: &[&str]| -> BTreeMap<String, String> {
            names
                .iter()
                .map(|n| (n.to_string(), hash.clone()))
                .collect()
        };
        let auth = Arc::new(BasicAuth::new(users(&["u", "m"])).unwrap());
        assert!(auth.check("u", "right").await);
        assert!(auth.check("m", "right").await);
        assert!(!auth.check("u", "wrong").await);
        assert!(!auth.check("nobody", "right").await);
        assert_eq!(cached(&cache_key("u", "right", &hash)), Some(true));
        assert_eq!(cached(&cache_key("u", "wrong", &hash)), Some(false));
        // An unknown user's verification against the dummy (u's hash) is not u's.
        assert_eq!(cached(&cache_key("nobody", "right", &hash)), Some(true));
        // The same password against another hash (a changed password) is not cached.
        let other = bcrypt::hash("right", 4).unwrap();
        assert_eq!(cached(&cache_key("u", "right", &other)), None);
        // A reload keeps the memo; a user it removed is refused although the memo knows
        // their password matches the hash (which is now the dummy's).
        let reloaded = Arc::new(BasicAuth::new(users(&["u"])).unwrap());
        assert_eq!(reloaded.dummy_hash, hash);
        assert!(reloaded.check("u", "right").await);
        assert!(!reloaded.check("m", "right").await);
        // An unknown user never matches, not even with the dummy's own password.
        assert!(!reloaded.check("nobody", "right").await);
    }

    #[test]
    fn a_zero_interval_turns_the_limit_off_and_a_zero_burst_is_refused() {
        let config = |yaml: &str| serde_yaml_ng::from_str::<RateLimitConfig>(yaml).unwrap();
        assert!(config("interval: 0\nburst: 0").limiter().unwrap().is_none());
        assert!(config("interval: 1s\nburst: 0").limiter().is_err());
        let limiter = config("interval: 1h\nburst: 2").limiter().unwrap().unwrap();
        assert!(limiter.check().is_ok());
        assert!(limiter.check().is_ok());
        assert!(limiter.check().is_err());
    }
}
