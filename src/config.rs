//! Configuration: defaults, then a TOML file, then `UDTS_` environment variables (`__` nests:
//! `UDTS_API__PRIVATE_KEY`), then command-line flags. [`Config::load`] validates everything
//! before anything starts, with errors that name the key and the fix.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::api::ClientSettings;
use crate::task::{TaskKind, TaskSource, TaskSpec};

/// The gateway used when `api.endpoint` is not set: the host of the API document this project
/// started from. UCloud's own is `https://api.ucloud.cn`.
pub const DEFAULT_ENDPOINT: &str = "https://api.an-link.com";

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The exporter's own HTTP server.
    #[serde(default)]
    pub web: WebConfig,
    /// The gateway and the credentials to sign with.
    #[serde(default)]
    pub api: ApiConfig,
    /// The background poller.
    #[serde(default)]
    pub poll: PollConfig,
    /// The tasks to poll.
    #[serde(default)]
    pub tasks: Vec<TaskConfig>,
}

/// `[web]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// `ip:port` to serve on; `--web.listen-address` overrides it.
    pub listen_address: String,
    /// Path of the metrics endpoint.
    pub telemetry_path: String,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            listen_address: "0.0.0.0:9741".into(),
            telemetry_path: "/metrics".into(),
        }
    }
}

/// `[api]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Base URL of the gateway.
    pub endpoint: String,
    /// The account's public key.
    pub public_key: String,
    /// The account's private key, inline (prefer `private_key_file` or the environment).
    pub private_key: Option<SecretString>,
    /// A file holding the private key (e.g. a mounted secret); surrounding whitespace is ignored.
    pub private_key_file: Option<PathBuf>,
    /// Default `ProjectId` for every task; sub-accounts must set one.
    pub project_id: Option<String>,
    /// Per-request timeout.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Larger response bodies are refused.
    pub max_response_bytes: usize,
    /// Allow a plain `http://` endpoint that is not on loopback.
    pub allow_insecure_endpoint: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.into(),
            public_key: String::new(),
            private_key: None,
            private_key_file: None,
            project_id: None,
            timeout: Duration::from_secs(10),
            concurrency: 4,
            max_response_bytes: 1024 * 1024,
            allow_insecure_endpoint: false,
        }
    }
}

/// `[poll]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollConfig {
    /// Time between the starts of two poll cycles.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
        }
    }
}

/// `[[tasks]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    /// The task id, e.g. `udts-ixdp441`.
    pub id: String,
    /// transfer (default) or integration.
    #[serde(rename = "type", default)]
    pub kind: TaskKind,
    /// Overrides `api.project_id` for this task.
    pub project_id: Option<String>,
    /// A name for the `udts_task_info` series.
    pub name: Option<String>,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or the environment could not be read or has the wrong shape.
    #[error("cannot load the configuration: {0}")]
    Load(String),
    /// A value is present but wrong.
    #[error("config key `{key}`: {problem}. Fix: {fix}")]
    Invalid {
        /// The dotted key, e.g. `api.timeout`.
        key: &'static str,
        /// What is wrong.
        problem: String,
        /// What to do about it.
        fix: String,
    },
}

fn invalid(key: &'static str, problem: impl Into<String>, fix: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// The top-level sections the environment may set; other `UDTS_` variables (such as
/// `UDTS_REQUIRE_TOOLS` for the test suite) are not configuration.
const ENV_SECTIONS: [&str; 3] = ["web__", "api__", "poll__"];

impl Config {
    /// Reads `file` (if any) and the environment, then validates.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError::Load(format!(
                    "config file {} does not exist or is not a file",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(
            Env::prefixed("UDTS_")
                .filter(|key| {
                    let key = key.as_str().to_ascii_lowercase();
                    ENV_SECTIONS.iter().any(|section| key.starts_with(section))
                })
                .split("__"),
        );
        let mut config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        config.resolve_private_key()?;
        config.validate()?;
        Ok(config)
    }

    /// Reads `api.private_key_file` into `api.private_key`, refusing to guess when both or
    /// neither are set.
    fn resolve_private_key(&mut self) -> Result<(), ConfigError> {
        let api = &mut self.api;
        match (&api.private_key, &api.private_key_file) {
            (Some(_), Some(_)) => Err(invalid(
                "api.private_key",
                "both api.private_key and api.private_key_file are set",
                "keep only one of them",
            )),
            (None, None) => Err(invalid(
                "api.private_key",
                "no private key is configured",
                "set api.private_key_file (or api.private_key, or UDTS_API__PRIVATE_KEY)",
            )),
            (Some(_), None) => Ok(()),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    invalid(
                        "api.private_key_file",
                        format!("cannot read {}: {e}", path.display()),
                        "point it at a readable file holding only the private key",
                    )
                })?;
                let key = text.trim();
                if key.is_empty() {
                    return Err(invalid(
                        "api.private_key_file",
                        format!("{} is empty", path.display()),
                        "write the private key into it",
                    ));
                }
                api.private_key = Some(SecretString::from(key));
                Ok(())
            }
        }
    }

    /// Checks every value; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.web.listen_address.parse::<SocketAddr>().map_err(|_| {
            invalid(
                "web.listen_address",
                format!("`{}` is not an ip:port", self.web.listen_address),
                "use e.g. \"0.0.0.0:9741\" or \"127.0.0.1:9741\"",
            )
        })?;
        let path = &self.web.telemetry_path;
        if !path.starts_with('/') || ["/", "/healthz", "/readyz"].contains(&path.as_str()) {
            return Err(invalid(
                "web.telemetry_path",
                format!("`{path}` is not a usable path"),
                "use a path starting with / other than /, /healthz and /readyz, e.g. \"/metrics\"",
            ));
        }

        self.endpoint()?;
        if self.api.public_key.trim().is_empty() {
            return Err(invalid(
                "api.public_key",
                "it is not set",
                "set it in the config file (pass --config FILE) or UDTS_API__PUBLIC_KEY",
            ));
        }
        if self
            .api
            .private_key
            .as_ref()
            .is_none_or(|k| k.expose_secret().trim().is_empty())
        {
            return Err(invalid(
                "api.private_key",
                "it is empty",
                "set api.private_key_file, api.private_key or UDTS_API__PRIVATE_KEY",
            ));
        }
        if self.poll.interval < Duration::from_secs(1) {
            return Err(invalid(
                "poll.interval",
                "it is shorter than 1s",
                "use a humane duration such as \"30s\" or \"2m\"",
            ));
        }
        if self.api.timeout.is_zero() || self.api.timeout > self.poll.interval {
            return Err(invalid(
                "api.timeout",
                format!(
                    "{} is zero or longer than poll.interval",
                    humantime::format_duration(self.api.timeout)
                ),
                "use a duration above 0 and at most poll.interval, e.g. \"10s\"",
            ));
        }
        if !(1..=256).contains(&self.api.concurrency) {
            return Err(invalid(
                "api.concurrency",
                format!("{} is out of range", self.api.concurrency),
                "use a number from 1 to 256",
            ));
        }
        if self.api.max_response_bytes < 1024 {
            return Err(invalid(
                "api.max_response_bytes",
                "it is below 1024",
                "use at least 1024 (default 1048576)",
            ));
        }

        if self.tasks.is_empty() {
            return Err(invalid(
                "tasks",
                "no task is configured",
                "add a [[tasks]] table with id = \"udts-...\" for each task to watch",
            ));
        }
        let mut seen = HashSet::new();
        for task in &self.tasks {
            let id = task.id.trim();
            if id.is_empty() || id.chars().any(char::is_whitespace) {
                return Err(invalid(
                    "tasks.id",
                    format!("`{}` is not a task id", task.id),
                    "use the id shown in the console, e.g. \"udts-ixdp441\"",
                ));
            }
            if !seen.insert((id, task.kind)) {
                return Err(invalid(
                    "tasks.id",
                    format!("task `{id}` ({}) is listed twice", task.kind),
                    "remove the duplicate [[tasks]] entry",
                ));
            }
        }
        Ok(())
    }

    /// The validated endpoint URL.
    pub fn endpoint(&self) -> Result<Url, ConfigError> {
        let key = "api.endpoint";
        let url = Url::parse(&self.api.endpoint).map_err(|e| {
            invalid(
                key,
                format!("`{}` is not a URL ({e})", self.api.endpoint),
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

    /// Settings for the API client. Call only on a validated config.
    pub fn client_settings(&self) -> Result<ClientSettings, ConfigError> {
        Ok(ClientSettings {
            endpoint: self.endpoint()?,
            public_key: self.api.public_key.trim().to_string(),
            private_key: self
                .api
                .private_key
                .clone()
                .ok_or_else(|| invalid("api.private_key", "it is not set", "set it"))?,
            timeout: self.api.timeout,
            max_response_bytes: self.api.max_response_bytes,
        })
    }

    /// The configured tasks, with the default project applied.
    pub fn task_specs(&self) -> Vec<TaskSpec> {
        self.tasks
            .iter()
            .map(|task| TaskSpec {
                id: task.id.trim().to_string(),
                kind: task.kind,
                project_id: task
                    .project_id
                    .clone()
                    .or_else(|| self.api.project_id.clone()),
                name: task.name.clone(),
                mode: None,
                source: TaskSource::Static,
            })
            .collect()
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
