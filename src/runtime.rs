//! What the running exporter works with: the resolved settings and one API client per account,
//! swapped whole on reload so that every cycle sees one consistent configuration. This is where
//! the configuration becomes API clients: `config` knows nothing of `api`.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::Quota;

use crate::api::client::RateLimiter;
use crate::api::{
    ApiError, AssumeRole, CallObserver, Client, ClientSettings, CredentialSource, Credentials,
};
use crate::config::{Account, CredentialConfig, Settings};

/// Settings plus the clients built from them.
pub struct Runtime {
    /// The validated configuration.
    pub settings: Settings,
    /// One pooled client per account, by account label.
    clients: HashMap<Option<String>, Arc<Client>>,
}

impl Runtime {
    /// Builds a client per account, all sharing one rate limiter when a rate is set and
    /// reporting their calls to `observer`.
    pub fn new(settings: Settings, observer: Arc<dyn CallObserver>) -> Result<Self, ApiError> {
        let limiter = settings.requests_per_second.and_then(rate_limiter);
        let mut clients = HashMap::new();
        for account in &settings.accounts {
            let client_settings = client_settings(&settings, account);
            tracing::info!(
                account = account.label.as_deref().unwrap_or(""),
                credentials = %client_settings.credentials.describe(),
                temporary = client_settings.credentials.is_temporary(),
                "API credentials"
            );
            let client = Client::new(client_settings, Arc::clone(&observer), limiter.clone())?;
            clients.insert(account.label.clone(), Arc::new(client));
        }
        Ok(Self { settings, clients })
    }

    /// The client of the account labelled `account`.
    pub fn client(&self, account: &Option<String>) -> Option<Arc<Client>> {
        self.clients.get(account).cloned()
    }
}

/// What the client of `account` needs from the settings.
pub fn client_settings(settings: &Settings, account: &Account) -> ClientSettings {
    ClientSettings {
        endpoint: account.endpoint.clone(),
        credentials: credential_source(account),
        region: account.region.clone(),
        timeout: settings.timeout,
        max_response_bytes: settings.max_response_bytes,
        account: account.label.clone(),
        extra_root_certificate: settings.ca_certificate.clone(),
    }
}

/// Where the client of `account` gets its keys, in the client's terms.
pub fn credential_source(account: &Account) -> CredentialSource {
    let base = match &account.credentials {
        CredentialConfig::Keys {
            public_key,
            private_key,
            origin,
        } => CredentialSource::Keys {
            keys: Credentials::keys(public_key.clone(), private_key.clone()),
            origin: origin.clone(),
        },
        CredentialConfig::InstanceRole {
            role,
            metadata_endpoint,
        } => CredentialSource::InstanceRole {
            role: role.clone(),
            metadata: metadata_endpoint.clone(),
        },
    };
    match &account.assume_role {
        Some(role) => CredentialSource::AssumeRole {
            base: Box::new(base),
            role: AssumeRole {
                role_urn: role.role_urn.clone(),
                session_name: role.session_name.clone(),
                duration: role.duration,
                policy: role.policy.clone(),
            },
        },
        None => base,
    }
}

/// A limiter that lets one request through every `1 / rate` seconds, with no burst: the cap
/// holds over any window, not just on average.
fn rate_limiter(rate: f64) -> Option<Arc<RateLimiter>> {
    let period = Duration::from_secs_f64(1.0 / rate);
    let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::MIN);
    Some(Arc::new(RateLimiter::direct(quota)))
}
