//! Where an account's credentials come from, in the order UCloud's own tools look, read and
//! checked at start-up: the config's keys, a ucloud-cli profile, an instance role, and with
//! nothing configured UCloud's environment (`UCLOUD_PUBLIC_KEY` + `UCLOUD_PRIVATE_KEY`, then
//! `UCLOUD_PROFILE`, then ucloud-cli's active profile). `assume_role` wraps any of them.
//!
//! A profile's keys are read here, once; an instance role's and an assumed role's are fetched
//! by the API client, which refreshes them (`api::credentials`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::key_file::{check_key_file_access, check_secret_file};
use super::{invalid, ConfigError};

/// The metadata server of UCloud's hosts.
pub const DEFAULT_METADATA_ENDPOINT: &str = "http://100.80.80.80";

/// `[api.assume_role]` / `[accounts.assume_role]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssumeRoleConfig {
    /// `RoleUrn`, e.g. `ucs:iam::123456:role/udts-monitor`.
    pub role_urn: String,
    /// `RoleSessionName`; default `udts-exporter`.
    #[serde(default)]
    pub session_name: Option<String>,
    /// How long the keys last; default 1h, at least 15m (STS's floor).
    #[serde(default, with = "humantime_serde")]
    pub duration: Option<Duration>,
    /// A JSON policy narrowing the role (at most 2,048 characters).
    #[serde(default)]
    pub policy: Option<String>,
}

/// An account's credential keys as the file spells them, for `[api]` and `[[accounts]]` alike.
pub(super) struct CredentialKeys<'a> {
    pub public_key: &'a str,
    pub private_key: Option<&'a SecretString>,
    pub private_key_file: Option<&'a Path>,
    pub private_key_env: Option<&'a str>,
    pub profile: Option<&'a str>,
    pub shared_credentials_file: Option<&'a Path>,
    pub shared_config_file: Option<&'a Path>,
    pub instance_role: Option<&'a str>,
    pub metadata_endpoint: Option<&'a str>,
    pub assume_role: Option<&'a AssumeRoleConfig>,
}

/// Where one account's keys come from, resolved.
#[derive(Debug, Clone)]
pub enum CredentialConfig {
    /// Long-lived keys, read at start-up.
    Keys {
        /// The public key.
        public_key: String,
        /// The private key.
        private_key: SecretString,
        /// Where they were found: "config", "environment", "profile prod".
        origin: String,
    },
    /// An instance role's keys, fetched from the metadata server.
    InstanceRole {
        /// The role's name.
        role: String,
        /// The metadata server.
        metadata_endpoint: Url,
    },
}

/// `assume_role`, validated.
#[derive(Debug, Clone)]
pub struct AssumeRoleSettings {
    /// `RoleUrn`.
    pub role_urn: String,
    /// `RoleSessionName`.
    pub session_name: String,
    /// `DurationSeconds`.
    pub duration: Duration,
    /// `Policy`.
    pub policy: Option<String>,
}

/// An account's credentials and what their source says besides (a profile's or the
/// environment's endpoint, project and region), which apply where the config sets none.
pub(super) struct Resolved {
    pub credentials: CredentialConfig,
    pub assume_role: Option<AssumeRoleSettings>,
    pub endpoint: Option<String>,
    pub project_id: Option<String>,
    pub region: Option<String>,
}

/// Resolves `keys` of `section` (`api` or `accounts[N]`). `fallback`: with nothing
/// configured, look in UCloud's environment and ucloud-cli's active profile (`[api]` only).
pub(super) fn resolve(
    section: &str,
    keys: &CredentialKeys<'_>,
    fallback: bool,
) -> Result<Resolved, ConfigError> {
    let has_keys = !keys.public_key.trim().is_empty()
        || keys.private_key.is_some()
        || keys.private_key_file.is_some()
        || keys.private_key_env.is_some();
    let given: Vec<&str> = [
        (has_keys, "public_key"),
        (keys.profile.is_some(), "profile"),
        (keys.instance_role.is_some(), "instance_role"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect();
    if given.len() > 1 {
        return Err(invalid(
            format!("{section}.{}", given[1]),
            format!(
                "{} are both set: an account has one source of keys",
                given.join(" and ")
            ),
            "keep one of them (assume_role can sign with any one)",
        ));
    }
    let mut resolved = if has_keys {
        if keys.public_key.trim().is_empty() {
            return Err(invalid(
                format!("{section}.public_key"),
                "a private key is set but no public key",
                "set the public key that belongs to it",
            ));
        }
        refuse_placeholder(&format!("{section}.public_key"), keys.public_key)?;
        let private_key = read_private_key(
            section,
            keys.private_key,
            keys.private_key_file,
            keys.private_key_env,
        )?;
        plain(CredentialConfig::Keys {
            public_key: keys.public_key.trim().to_string(),
            private_key,
            origin: "config".into(),
        })
    } else if let Some(name) = keys.profile {
        profile(section, name, keys, &format!("{section}.profile"))?
    } else if let Some(role) = keys.instance_role {
        let role = role.trim();
        if role.is_empty() || role.contains('/') {
            return Err(invalid(
                format!("{section}.instance_role"),
                format!("`{role}` is not a role name"),
                "name the role bound to the host (UK8S nodes: Uk8sServiceCharacter)",
            ));
        }
        let endpoint = keys.metadata_endpoint.unwrap_or(DEFAULT_METADATA_ENDPOINT);
        let metadata_endpoint = Url::parse(endpoint)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                invalid(
                    format!("{section}.metadata_endpoint"),
                    format!("`{endpoint}` is not an http(s) URL"),
                    format!("leave it out for {DEFAULT_METADATA_ENDPOINT}"),
                )
            })?;
        plain(CredentialConfig::InstanceRole {
            role: role.to_string(),
            metadata_endpoint,
        })
    } else if fallback {
        environment(section, keys)?
    } else {
        return Err(invalid(
            format!("{section}.public_key"),
            "the account has no credentials",
            "set public_key with private_key_file (or private_key, private_key_env), or \
             profile, or instance_role",
        ));
    };
    if let Some(role) = keys.assume_role {
        resolved.assume_role = Some(assume_role(section, role)?);
    }
    Ok(resolved)
}

fn plain(credentials: CredentialConfig) -> Resolved {
    Resolved {
        credentials,
        assume_role: None,
        endpoint: None,
        project_id: None,
        region: None,
    }
}

/// `assume_role` checked.
fn assume_role(section: &str, role: &AssumeRoleConfig) -> Result<AssumeRoleSettings, ConfigError> {
    let key = |name: &str| format!("{section}.assume_role.{name}");
    let urn = role.role_urn.trim();
    if !urn.starts_with("ucs:iam::") || !urn.contains(":role/") {
        return Err(invalid(
            key("role_urn"),
            format!("`{urn}` is not a role URN"),
            "use the role's URN from the IAM console, e.g. \"ucs:iam::123456:role/udts-monitor\"",
        ));
    }
    let session_name = role
        .session_name
        .clone()
        .unwrap_or_else(|| "udts-exporter".into());
    if session_name.is_empty()
        || session_name.len() > 64
        || !session_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(invalid(
            key("session_name"),
            format!("`{session_name}` is not a session name"),
            "use 1 to 64 letters, digits, `_`, `-` or `.`",
        ));
    }
    let duration = role.duration.unwrap_or(Duration::from_secs(3600));
    if duration < Duration::from_secs(900) {
        return Err(invalid(
            key("duration"),
            format!(
                "{} is shorter than STS allows",
                humantime::format_duration(duration)
            ),
            "use at least \"15m\" (the default is \"1h\")",
        ));
    }
    if let Some(policy) = &role.policy {
        if policy.chars().count() > 2048
            || serde_json::from_str::<serde_json::Value>(policy).is_err()
        {
            return Err(invalid(
                key("policy"),
                "it is not a JSON policy of at most 2,048 characters",
                "give the policy document as JSON, or leave it out",
            ));
        }
    }
    Ok(AssumeRoleSettings {
        role_urn: urn.to_string(),
        session_name,
        duration,
        policy: role.policy.clone(),
    })
}

/// With nothing configured: `UCLOUD_PUBLIC_KEY` + `UCLOUD_PRIVATE_KEY`, then `UCLOUD_PROFILE`,
/// then ucloud-cli's active profile.
fn environment(section: &str, keys: &CredentialKeys<'_>) -> Result<Resolved, ConfigError> {
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    match (var("UCLOUD_PUBLIC_KEY"), var("UCLOUD_PRIVATE_KEY")) {
        (Some(public_key), Some(private_key)) => {
            return Ok(Resolved {
                credentials: CredentialConfig::Keys {
                    public_key,
                    private_key: SecretString::from(private_key),
                    origin: "environment".into(),
                },
                assume_role: None,
                endpoint: var("UCLOUD_API_BASE_URL"),
                project_id: var("UCLOUD_PROJECT_ID"),
                region: var("UCLOUD_REGION"),
            });
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(invalid(
                "UCLOUD_PUBLIC_KEY",
                "only one of UCLOUD_PUBLIC_KEY and UCLOUD_PRIVATE_KEY is set",
                "set both, or neither",
            ));
        }
        (None, None) => {}
    }
    if let Some(name) = var("UCLOUD_PROFILE") {
        return profile(section, &name, keys, "UCLOUD_PROFILE");
    }
    let files = SharedFiles::of(keys);
    let active = files
        .config_entries(section)?
        .and_then(|entries| entries.into_iter().find(|e| e.active).map(|e| e.profile));
    match active {
        Some(name) => profile(section, &name, keys, "the active ucloud-cli profile"),
        None => Err(invalid(
            format!("{section}.public_key"),
            "no credentials are configured, and none are in UCloud's environment or ucloud-cli's \
             files",
            format!(
                "set {section}.public_key with {section}.private_key_file (or \
                 UDTS_API__PUBLIC_KEY / UDTS_API__PRIVATE_KEY), {section}.profile, \
                 {section}.instance_role, or UCLOUD_PUBLIC_KEY + UCLOUD_PRIVATE_KEY; pass \
                 --config FILE"
            ),
        )),
    }
}

/// ucloud-cli's files: given, else `UCLOUD_SHARED_*`, else `~/.ucloud/`.
struct SharedFiles {
    credentials: Option<PathBuf>,
    config: Option<PathBuf>,
}

impl SharedFiles {
    fn of(keys: &CredentialKeys<'_>) -> Self {
        let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ucloud"));
        let pick = |given: Option<&Path>, var: &str, file: &str| {
            given
                .map(Path::to_path_buf)
                .or_else(|| std::env::var_os(var).map(PathBuf::from))
                .or_else(|| home.as_ref().map(|h| h.join(file)))
        };
        Self {
            credentials: pick(
                keys.shared_credentials_file,
                "UCLOUD_SHARED_CREDENTIAL_FILE",
                "credential.json",
            ),
            config: pick(
                keys.shared_config_file,
                "UCLOUD_SHARED_CONFIG_FILE",
                "config.json",
            ),
        }
    }

    /// config.json's entries; `None` when the file does not exist.
    fn config_entries(&self, section: &str) -> Result<Option<Vec<ProfileConfig>>, ConfigError> {
        let key = format!("{section}.shared_config_file");
        read_array(self.config.as_deref(), &key, false)
    }
}

/// One entry of ucloud-cli's config.json.
#[derive(Deserialize)]
struct ProfileConfig {
    profile: String,
    #[serde(default)]
    active: bool,
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    base_url: Option<String>,
}

/// One entry of ucloud-cli's credential.json.
#[derive(Deserialize)]
struct ProfileCredential {
    profile: String,
    #[serde(default)]
    public_key: Option<String>,
    #[serde(default)]
    private_key: Option<SecretString>,
    #[serde(default)]
    auth_mode: Option<String>,
}

/// A JSON array file of ucloud-cli's; `None` when it does not exist. `secret`: it holds keys,
/// so others must not be able to read it (the key file rule).
fn read_array<T: serde::de::DeserializeOwned>(
    path: Option<&Path>,
    key: &str,
    secret: bool,
) -> Result<Option<Vec<T>>, ConfigError> {
    let Some(path) = path else {
        return Ok(None);
    };
    if !path.exists() {
        return Ok(None);
    }
    if secret {
        check_secret_file(key, path)?;
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        invalid(
            key,
            format!("cannot read {}: {e}", path.display()),
            "make it readable by the exporter's user",
        )
    })?;
    serde_json::from_str(&text).map(Some).map_err(|e| {
        invalid(
            key,
            format!(
                "{} is not ucloud-cli's JSON array of profiles (line {})",
                path.display(),
                e.line()
            ),
            "point it at the file `ucloud init` wrote",
        )
    })
}

/// The keys, endpoint, project and region of ucloud-cli profile `name`; `asked` says where the
/// name came from, for the messages.
fn profile(
    section: &str,
    name: &str,
    keys: &CredentialKeys<'_>,
    asked: &str,
) -> Result<Resolved, ConfigError> {
    let files = SharedFiles::of(keys);
    let key = format!("{section}.profile");
    let credentials: Vec<ProfileCredential> = read_array(
        files.credentials.as_deref(),
        &format!("{section}.shared_credentials_file"),
        true,
    )?
    .ok_or_else(|| {
        invalid(
            &key,
            format!(
                "profile `{name}` ({asked}) needs ucloud-cli's credential file, and {} \
                         does not exist",
                files
                    .credentials
                    .as_ref()
                    .map_or("it".into(), |p| p.display().to_string())
            ),
            format!(
                "run `ucloud init`, or set {section}.shared_credentials_file (or \
                         UCLOUD_SHARED_CREDENTIAL_FILE)"
            ),
        )
    })?;
    let Some(found) = credentials.iter().find(|c| c.profile == name) else {
        let known: Vec<&str> = credentials.iter().map(|c| c.profile.as_str()).collect();
        return Err(invalid(
            &key,
            format!("profile `{name}` ({asked}) does not exist"),
            format!("use one of: {}", known.join(", ")),
        ));
    };
    if found.auth_mode.as_deref() == Some("oauth") {
        return Err(invalid(
            &key,
            format!(
                "profile `{name}` logs in with OAuth: ucloud-cli signs nothing with it and its \
                 stored keys may be stale"
            ),
            format!("give profile `{name}` API keys (`ucloud init`), or use another profile"),
        ));
    }
    let public_key = found
        .public_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let private_key = found
        .private_key
        .as_ref()
        .map(|k| k.expose_secret().trim().to_string())
        .filter(|k| !k.is_empty());
    let (Some(public_key), Some(private_key)) = (public_key, private_key) else {
        return Err(invalid(
            &key,
            format!("profile `{name}` has no public_key and private_key"),
            format!("give profile `{name}` API keys (`ucloud init`)"),
        ));
    };
    let config = files
        .config_entries(section)?
        .and_then(|entries| entries.into_iter().find(|e| e.profile == name));
    let nonempty = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let (endpoint, project_id, region) = match config {
        Some(c) => (
            nonempty(c.base_url),
            nonempty(c.project_id),
            nonempty(c.region),
        ),
        None => (None, None, None),
    };
    Ok(Resolved {
        credentials: CredentialConfig::Keys {
            public_key: public_key.to_string(),
            private_key: SecretString::from(private_key),
            origin: format!("profile {name}"),
        },
        assume_role: None,
        endpoint,
        project_id,
        region,
    })
}

/// Reads a private key from exactly one of: inline, a file, an environment variable.
pub(super) fn read_private_key(
    section: &str,
    inline: Option<&SecretString>,
    file: Option<&Path>,
    env: Option<&str>,
) -> Result<SecretString, ConfigError> {
    let key = format!("{section}.private_key");
    let given =
        usize::from(inline.is_some()) + usize::from(file.is_some()) + usize::from(env.is_some());
    if given > 1 {
        return Err(invalid(
            key,
            "more than one of private_key, private_key_file, private_key_env is set",
            "keep only one of them",
        ));
    }
    let text = if let Some(inline) = inline {
        inline.expose_secret().to_string()
    } else if let Some(path) = file {
        check_key_file_access(section, path)?;
        std::fs::read_to_string(path).map_err(|e| {
            invalid(
                format!("{section}.private_key_file"),
                format!("cannot read {}: {e}", path.display()),
                "point it at a readable file holding only the private key",
            )
        })?
    } else if let Some(variable) = env {
        std::env::var(variable).map_err(|_| {
            invalid(
                format!("{section}.private_key_env"),
                format!("environment variable {variable} is not set"),
                "set it, or name another variable",
            )
        })?
    } else {
        return Err(invalid(
            key,
            "no private key is configured",
            format!("set {section}.private_key_file (or {section}.private_key, or UDTS_API__PRIVATE_KEY)"),
        ));
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(invalid(
            key,
            "the private key is empty",
            "provide the account's private key",
        ));
    }
    if is_placeholder(trimmed) {
        return Err(invalid(
            key,
            "the private key is still the example's placeholder",
            "put the account's API private key there (the console's API keys page)",
        ));
    }
    Ok(SecretString::from(trimmed))
}

/// Whether `value` is one of the shipped examples' placeholders (`REPLACE_WITH_...`,
/// `udts-xxxxxx`, `org-xxxx`): left in place, it would first fail as a rejected key or an
/// unknown task, far from the line to edit.
pub(super) fn is_placeholder(value: &str) -> bool {
    let value = value.trim();
    let filler = |rest: &str| {
        !rest.is_empty() && (rest.chars().all(|c| c == 'x') || rest.chars().all(|c| c == 'y'))
    };
    value.to_ascii_uppercase().contains("REPLACE_WITH")
        || value.strip_prefix("udts-").is_some_and(filler)
        || value.strip_prefix("org-").is_some_and(filler)
}

/// Refuses a placeholder at `key`, naming it.
pub(super) fn refuse_placeholder(key: &str, value: &str) -> Result<(), ConfigError> {
    if is_placeholder(value) {
        return Err(invalid(
            key,
            format!("`{}` is the example's placeholder", value.trim()),
            "replace it with your own value (or comment the line out)",
        ));
    }
    Ok(())
}
