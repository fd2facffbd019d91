//! What the running exporter works with: the resolved settings and one API client per account,
//! swapped whole on reload so that every cycle sees one consistent configuration.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::Quota;

use crate::api::client::RateLimiter;
use crate::api::{ApiError, Client};
use crate::config::Settings;
use crate::metrics::ExporterMetrics;

/// Settings plus the clients built from them.
pub struct Runtime {
    /// The validated configuration.
    pub settings: Settings,
    /// One pooled client per account, by account label.
    clients: HashMap<Option<String>, Arc<Client>>,
}

impl Runtime {
    /// Builds a client per account, all sharing one rate limiter when a rate is set.
    pub fn new(settings: Settings, metrics: &ExporterMetrics) -> Result<Self, ApiError> {
        let limiter = settings.requests_per_second.and_then(rate_limiter);
        let mut clients = HashMap::new();
        for account in &settings.accounts {
            let client = Client::new(
                settings.client_settings(account),
                metrics.clone(),
                limiter.clone(),
            )?;
            clients.insert(account.label.clone(), Arc::new(client));
        }
        Ok(Self { settings, clients })
    }

    /// The client of the account labelled `account`.
    pub fn client(&self, account: &Option<String>) -> Option<Arc<Client>> {
        self.clients.get(account).cloned()
    }
}

/// A limiter that lets one request through every `1 / rate` seconds, with no burst: the cap
/// holds over any window, not just on average.
fn rate_limiter(rate: f64) -> Option<Arc<RateLimiter>> {
    let period = Duration::from_secs_f64(1.0 / rate);
    let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::MIN);
    Some(Arc::new(RateLimiter::direct(quota)))
}
