//! The accounts: `[api]` alone or `[[accounts]]`, each with its endpoint and keys, read and
//! checked at start-up. Split from `settings.rs` because credentials have rules of their own
//! (one source of the private key, the key file's permissions, no example placeholder left).

use std::collections::HashSet;

use secrecy::SecretString;
use url::Url;

use super::credentials::{
    self, refuse_placeholder, AssumeRoleSettings, CredentialConfig, CredentialKeys,
};
use super::{invalid, Config, ConfigError, DEFAULT_ENDPOINT};

/// One account: its gateway, where its keys come from, and its projects.
#[derive(Debug, Clone)]
pub struct Account {
    /// The `account` label: `None` when only one account is configured (no label then).
    pub label: Option<String>,
    /// Base URL of its gateway.
    pub endpoint: Url,
    /// Where its keys come from.
    pub credentials: CredentialConfig,
    /// A role to assume with those keys.
    pub assume_role: Option<AssumeRoleSettings>,
    /// Default project of its tasks.
    pub project_id: Option<String>,
    /// Projects discovery lists (`None`: the default project).
    pub discovery_projects: Vec<Option<String>>,
    /// The region its credential source names (a profile, `UCLOUD_REGION`), for monitoring
    /// reads where `monitor.region` is not set.
    pub region: Option<String>,
}

impl Account {
    /// The long-lived private key, where the account has one (not for an instance role).
    pub fn private_key(&self) -> Option<&SecretString> {
        match &self.credentials {
            CredentialConfig::Keys { private_key, .. } => Some(private_key),
            CredentialConfig::InstanceRole { .. } => None,
        }
    }
}

impl Config {
    /// The `[api]` account, or the `[[accounts]]`, with their keys read.
    pub(super) fn accounts(&self) -> Result<Vec<Account>, ConfigError> {
        let api = &self.api;
        let api_keys = CredentialKeys {
            public_key: &api.public_key,
            private_key: api.private_key.as_ref(),
            private_key_file: api.private_key_file.as_deref(),
            private_key_env: api.private_key_env.as_deref(),
            profile: api.profile.as_deref(),
            shared_credentials_file: api.shared_credentials_file.as_deref(),
            shared_config_file: api.shared_config_file.as_deref(),
            instance_role: api.instance_role.as_deref(),
            metadata_endpoint: api.metadata_endpoint.as_deref(),
            assume_role: api.assume_role.as_ref(),
        };
        if self.accounts.is_empty() {
            if let Some(project) = &api.project_id {
                refuse_placeholder("api.project_id", project)?;
            }
            let resolved = credentials::resolve("api", &api_keys, true)?;
            // The source's endpoint and project apply where the config sets none.
            let endpoint = match resolved.endpoint.as_deref() {
                Some(theirs) if api.endpoint == DEFAULT_ENDPOINT => theirs,
                _ => api.endpoint.as_str(),
            };
            let project_id = api.project_id.clone().or(resolved.project_id);
            let mut projects: Vec<Option<String>> = self
                .discovery
                .project_ids
                .iter()
                .cloned()
                .map(Some)
                .collect();
            if projects.is_empty() {
                projects.push(project_id.clone());
            }
            return Ok(vec![Account {
                label: None,
                endpoint: self.endpoint_url("api.endpoint", endpoint)?,
                credentials: resolved.credentials,
                assume_role: resolved.assume_role,
                project_id,
                discovery_projects: projects,
                region: resolved.region,
            }]);
        }

        let api_has_source = !api.public_key.trim().is_empty()
            || api.private_key.is_some()
            || api.private_key_file.is_some()
            || api.private_key_env.is_some()
            || api.profile.is_some()
            || api.instance_role.is_some()
            || api.assume_role.is_some();
        if api_has_source {
            return Err(invalid(
                "api.public_key",
                "[api] has credentials and [[accounts]] is set too",
                "move the credentials into an [[accounts]] entry; [api] then holds only shared \
                 settings",
            ));
        }
        let mut names = HashSet::new();
        let mut accounts = Vec::new();
        for (i, account) in self.accounts.iter().enumerate() {
            let name = account.name.trim();
            if name.is_empty() || !names.insert(name.to_string()) {
                return Err(invalid(
                    format!("accounts[{i}].name"),
                    format!("`{name}` is empty or used twice"),
                    "give every [[accounts]] entry its own name",
                ));
            }
            let keys = CredentialKeys {
                public_key: &account.public_key,
                private_key: account.private_key.as_ref(),
                private_key_file: account.private_key_file.as_deref(),
                private_key_env: account.private_key_env.as_deref(),
                profile: account.profile.as_deref(),
                shared_credentials_file: account.shared_credentials_file.as_deref(),
                shared_config_file: account.shared_config_file.as_deref(),
                instance_role: account.instance_role.as_deref(),
                metadata_endpoint: account.metadata_endpoint.as_deref(),
                assume_role: account.assume_role.as_ref(),
            };
            let resolved = credentials::resolve(&format!("accounts[{i}]"), &keys, false)?;
            let endpoint = account
                .endpoint
                .as_deref()
                .or(resolved.endpoint.as_deref())
                .unwrap_or(&api.endpoint);
            let project_id = account
                .project_id
                .clone()
                .or(resolved.project_id)
                .or_else(|| api.project_id.clone());
            let mut projects: Vec<Option<String>> =
                account.project_ids.iter().cloned().map(Some).collect();
            if projects.is_empty() {
                projects.push(project_id.clone());
            }
            accounts.push(Account {
                label: (self.accounts.len() > 1).then(|| name.to_string()),
                endpoint: self.endpoint_url(&format!("accounts[{i}].endpoint"), endpoint)?,
                credentials: resolved.credentials,
                assume_role: resolved.assume_role,
                project_id,
                discovery_projects: projects,
                region: resolved.region,
            });
        }
        Ok(accounts)
    }

    /// A validated endpoint URL.
    fn endpoint_url(&self, key: &str, endpoint: &str) -> Result<Url, ConfigError> {
        let url = Url::parse(endpoint).map_err(|e| {
            invalid(
                key,
                format!("`{endpoint}` is not a URL ({e})"),
                format!("use e.g. \"{DEFAULT_ENDPOINT}\" or \"https://api.ucloud.cn\""),
            )
        })?;
        match url.scheme() {
            "https" => Ok(url),
            "http" if self.api.allow_insecure_endpoint || is_loopback(&url) => Ok(url),
            "http" => Err(invalid(
                key,
                "plain http would send the signed requests unencrypted",
                "use https, or set api.allow_insecure_endpoint = true if you really mean it",
            )),
            other => Err(invalid(
                key,
                format!("scheme `{other}` is not supported"),
                "use an https:// URL",
            )),
        }
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
