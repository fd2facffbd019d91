//! The signed HTTP client: one pooled `reqwest` client, form-encoded POSTs, a capped body read,
//! lenient parsing and a classified, counted error for every failure.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;
use url::Url;

use super::credentials::{self, CredentialCell, CredentialSource, Credentials, Fetcher};
use super::decode;
use super::error::ApiError;
use super::model::{HistoryItem, ListItem, StatusData};
use super::signer::Params;
use crate::limits::LIST_PAGE_LIMIT;
use crate::task::{TaskKind, TaskSpec};

/// What the client needs to talk to one gateway.
pub struct ClientSettings {
    /// Base URL of the gateway, e.g. `https://api.an-link.com`.
    pub endpoint: Url,
    /// Where the account's keys come from; temporary ones are refreshed in the background.
    pub credentials: CredentialSource,
    /// The region the credential source names (a profile, `UCLOUD_REGION`), for monitoring
    /// reads where `monitor.region` is not set; an instance role's metadata server tells its own.
    pub region: Option<String>,
    /// Per-request timeout, connect included.
    pub timeout: Duration,
    /// Bodies larger than this are refused, so a broken gateway cannot exhaust memory.
    pub max_response_bytes: usize,
    /// The account's label, if several accounts are configured.
    pub account: Option<String>,
    /// A CA certificate (PEM) to trust besides the built-in roots, for private gateways.
    pub extra_root_certificate: Option<Vec<u8>>,
}

/// What a client reports about its calls, so that the exporter can count them without the
/// client knowing its metrics (the exporter's metrics implement it). `account` is
/// the account's label, empty when only one account is configured.
pub trait CallObserver: Send + Sync {
    /// A client for the account was built: its counters may start at zero, and its
    /// credentials count as valid until the gateway says otherwise.
    fn client_built(&self, account: &str);
    /// A call of `action` finished after `elapsed`, failing with `error` if it failed.
    fn call_finished(
        &self,
        account: &str,
        action: &'static str,
        elapsed: Duration,
        error: Option<&ApiError>,
    );
    /// The delay added before each of the account's calls is now `delay`.
    fn throttle_delay(&self, account: &str, delay: Duration);
    /// The gateway accepted (`true`) or rejected (`false`) the account's credentials.
    fn credentials_valid(&self, account: &str, valid: bool);
    /// Temporary credentials of `source` (a [`CredentialSource::label`]) were fetched (`ok`,
    /// valid until `expires`, unix seconds) or could not be.
    fn credentials_refreshed(&self, account: &str, source: &str, ok: bool, expires: Option<f64>) {
        let _ = (account, source, ok, expires);
    }
}

/// Caps the request rate over every client that shares it.
pub type RateLimiter = governor::DefaultDirectRateLimiter;

/// Slows one account's calls down after the gateway throttled them, and speeds up again
/// gradually: the delay before each call doubles (from 250 ms, at most 10 s) on every throttled
/// answer and shrinks by a quarter on every other answer.
#[derive(Default)]
pub struct Throttle {
    delay_micros: AtomicU64,
}

impl Throttle {
    const FIRST: Duration = Duration::from_millis(250);
    const MAX: Duration = Duration::from_secs(10);

    /// The current delay before each call.
    pub fn delay(&self) -> Duration {
        Duration::from_micros(self.delay_micros.load(Ordering::Relaxed))
    }

    fn record(&self, throttled: bool) -> Duration {
        let current = self.delay();
        let next = if throttled {
            (current * 2).max(Self::FIRST).min(Self::MAX)
        } else if current < Duration::from_millis(10) {
            Duration::ZERO
        } else {
            current - current / 4
        };
        self.delay_micros
            .store(next.as_micros() as u64, Ordering::Relaxed);
        next
    }
}

/// A client for the UDTS actions of one gateway and account.
pub struct Client {
    http: reqwest::Client,
    limiter: Option<Arc<RateLimiter>>,
    /// Slows calls down after throttling.
    pub throttle: Throttle,
    /// False after the gateway rejected the credentials, until a call succeeds again.
    credentials_valid: AtomicBool,
    /// Whether the gateway has judged the credentials yet (accepted or rejected a call).
    credentials_judged: AtomicBool,
    /// The rejection, to report for tasks that are not polled meanwhile.
    credentials_error: std::sync::Mutex<Option<ApiError>>,
    /// The account label, for the exporter's own per-account metrics.
    account: String,
    endpoint: Url,
    /// The keys calls are signed with, swapped whole by the refresher.
    credentials: Arc<CredentialCell>,
    /// Whether they are temporary (fetched, refreshed, rejected ones fetched again).
    temporary: bool,
    /// The region the metadata server reports, for monitoring reads without a configured one.
    region: Arc<ArcSwapOption<String>>,
    /// The refresher of temporary credentials; ends with the client.
    refresher: Option<tokio::task::JoinHandle<()>>,
    /// How long a first call waits for the first temporary credentials.
    timeout: Duration,
    max_response_bytes: usize,
    observer: Arc<dyn CallObserver>,
    /// Pages each (kind, project) listing took last time: how many to ask for at once next.
    list_pages: std::sync::Mutex<std::collections::HashMap<(TaskKind, Option<String>), usize>>,
}

impl Client {
    /// Builds the pooled HTTP client.
    pub fn new(
        settings: ClientSettings,
        observer: Arc<dyn CallObserver>,
        limiter: Option<Arc<RateLimiter>>,
    ) -> Result<Self, ApiError> {
        let account = settings.account.clone().unwrap_or_default();
        observer.client_built(&account);
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        crate::tls_provider::install();
        let mut builder = reqwest::Client::builder();
        if let Some(pem) = &settings.extra_root_certificate {
            let certificate = reqwest::Certificate::from_pem(pem)
                .map_err(|e| ApiError::from_reqwest(e, &settings.endpoint))?;
            builder = builder.add_root_certificate(certificate);
        }
        let http = builder
            .user_agent(concat!("udts-exporter/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| ApiError::from_reqwest(e, &settings.endpoint))?;
        let credentials;
        let mut refresher = None;
        let region = Arc::new(ArcSwapOption::from(settings.region.map(Arc::new)));
        let temporary = settings.credentials.is_temporary();
        match settings.credentials {
            CredentialSource::Keys { keys, .. } => {
                credentials = Arc::new(CredentialCell::with(keys));
            }
            source => {
                credentials = Arc::new(CredentialCell::default());
                let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
                    ApiError::NoCredentials("temporary credentials need a running runtime".into())
                })?;
                let fetcher = Fetcher {
                    http: http.clone(),
                    endpoint: settings.endpoint.clone(),
                    max_response_bytes: settings.max_response_bytes,
                };
                refresher = Some(runtime.spawn(credentials::refresh(
                    source,
                    fetcher,
                    Arc::clone(&credentials),
                    Arc::clone(&region),
                    account.clone(),
                    Arc::clone(&observer),
                )));
            }
        }
        Ok(Self {
            http,
            limiter,
            throttle: Throttle::default(),
            credentials_valid: AtomicBool::new(true),
            credentials_judged: AtomicBool::new(false),
            credentials_error: std::sync::Mutex::new(None),
            account,
            endpoint: settings.endpoint,
            credentials,
            temporary,
            region,
            refresher,
            timeout: settings.timeout,
            max_response_bytes: settings.max_response_bytes,
            observer,
            list_pages: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// `GetUDTSTaskStatus` for one task.
    pub async fn task_status(&self, task: &TaskSpec) -> Result<StatusData, ApiError> {
        let mut params = Params::new();
        params.insert("TaskId".into(), task.id.clone());
        params.insert("Type".into(), task.kind.as_str().into());
        if let Some(project) = task.project_id.as_deref().filter(|p| !p.is_empty()) {
            params.insert("ProjectId".into(), project.into());
        }
        decode::status_data(self.call("GetUDTSTaskStatus", params).await?)
    }

    /// `GetUDTSTaskHistory` for one task: its status transitions. The documented example
    /// answers `{}`, so anything but an array is an empty history, not an error.
    pub async fn task_history(&self, task: &TaskSpec) -> Result<Vec<HistoryItem>, ApiError> {
        let mut params = Params::new();
        params.insert("TaskId".into(), task.id.clone());
        params.insert("Type".into(), task.kind.as_str().into());
        if let Some(project) = task.project_id.as_deref().filter(|p| !p.is_empty()) {
            params.insert("ProjectId".into(), project.into());
        }
        Ok(decode::history(
            self.call("GetUDTSTaskHistory", params).await?,
        ))
    }

    /// One page of `ListUDTSTask`. A page shorter than `limit` is the last one (the API has no
    /// total count).
    pub async fn list_tasks_page(
        &self,
        kind: TaskKind,
        project_id: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<ListItem>, ApiError> {
        let mut params = Params::new();
        params.insert("Type".into(), kind.as_str().into());
        params.insert("Offset".into(), offset.to_string());
        params.insert("Limit".into(), limit.to_string());
        if let Some(project) = project_id.filter(|p| !p.is_empty()) {
            params.insert("ProjectId".into(), project.into());
        }
        decode::list_page(self.call("ListUDTSTask", params).await?)
    }

    /// Every task of one kind and project, paging with `page_size` until a short page, up to
    /// `parallel` pages at once. The API gives no total, so pages are asked for in waves: as
    /// many as this listing took last time, or on the first listing one, then twice as many
    /// per wave up to `parallel`. Paging ends with the wave that holds the first short page
    /// (what later pages of that wave return is dropped); a listing the size of the last one
    /// costs exactly its pages.
    pub async fn list_all_tasks(
        &self,
        kind: TaskKind,
        project_id: Option<&str>,
        page_size: usize,
        parallel: usize,
    ) -> Result<Vec<ListItem>, ApiError> {
        let page_size = page_size.clamp(1, LIST_PAGE_LIMIT);
        let parallel = parallel.max(1);
        let key = (kind, project_id.map(str::to_string));
        let remembered = self
            .list_pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .copied();
        let mut wave = remembered.unwrap_or(1).clamp(1, parallel);
        let mut all = Vec::new();
        let mut offset = 0;
        loop {
            let pages = futures_util::future::join_all((0..wave).map(|i| {
                self.list_tasks_page(kind, project_id, offset + i * page_size, page_size)
            }))
            .await;
            for page in pages {
                let page = page?;
                let short = page.len() < page_size;
                all.extend(page);
                if short {
                    self.list_pages
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(key, all.len() / page_size + 1);
                    return Ok(all);
                }
            }
            offset += wave * page_size;
            wave = (wave * 2).min(parallel);
        }
    }

    /// `QueryMetricDataSummary`: the latest value of every UDTS metric for `resources` (task
    /// ids of one project and product), one page. `region` is sent only when set.
    pub async fn metric_summary(
        &self,
        product: &str,
        region: Option<&str>,
        project_id: Option<&str>,
        resources: &[&str],
    ) -> Result<super::monitor::SummaryPage, ApiError> {
        let mut params = Params::new();
        params.insert("ProductKey".into(), product.into());
        let region = region
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .or_else(|| self.region());
        if let Some(region) = region {
            params.insert("Region".into(), region);
        }
        if let Some(project) = project_id.filter(|p| !p.is_empty()) {
            params.insert("ProjectId".into(), project.into());
        }
        params.insert("Offset".into(), "0".into());
        params.insert("Limit".into(), resources.len().to_string());
        for (i, metric) in super::monitor::MonitorMetric::ALL.iter().enumerate() {
            params.insert(format!("Metrics.{i}"), metric.key(product));
        }
        for (i, id) in resources.iter().enumerate() {
            params.insert(format!("ResourceIds.{i}"), (*id).to_string());
        }
        let data = self.call(super::monitor::ACTION, params).await?;
        Ok(super::monitor::summary_page(&data))
    }

    /// Signs and sends one action; returns its `Data` on RetCode 0. Counts the call and, on
    /// failure, its reason.
    pub async fn call(&self, action: &'static str, params: Params) -> Result<Value, ApiError> {
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        let delay = self.throttle.delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let started = std::time::Instant::now();
        let (keys, generation) = match self.keys().await {
            Ok(keys) => keys,
            Err(error) => {
                // Nothing was sent: counted as a failed call of this action, not as the
                // gateway's verdict on the keys.
                self.observer
                    .call_finished(&self.account, action, started.elapsed(), Some(&error));
                return Err(error);
            }
        };
        // Only temporary keys may need the call sent again: long-lived keys copy nothing.
        let again = self.temporary.then(|| params.clone());
        let mut result = self.send(action, params, &keys).await;
        // Temporary keys the gateway no longer knows (a revoked or expired session, 172/174):
        // new ones are fetched at once and the call is sent again with them, once, so a
        // refresh the gateway forced costs no failed call (nor UDTSApiCredentialsRejected).
        if let Some(params) = again.filter(|_| {
            result
                .as_ref()
                .err()
                .is_some_and(|e| matches!(e.ret_code(), Some(172 | 174)))
        }) {
            self.credentials.rejected(generation);
            if let Some(fresh) = self.credentials.newer_than(generation, self.timeout).await {
                result = self.send(action, params, &fresh).await;
            }
        }
        self.observer.call_finished(
            &self.account,
            action,
            started.elapsed(),
            result.as_ref().err(),
        );
        let throttled = result.as_ref().err().is_some_and(ApiError::is_throttling);
        let delay = self.throttle.record(throttled);
        self.observer.throttle_delay(&self.account, delay);
        self.note_credentials(&result);
        result
    }

    /// The keys to sign with now: the current ones, or (before the first temporary keys
    /// arrive) those that arrive within the timeout. Expired keys are not used.
    async fn keys(&self) -> Result<(Arc<Credentials>, u64), ApiError> {
        let current = match self.credentials.current().0 {
            Some(current) => current,
            None => self.credentials.first(self.timeout).await.ok_or_else(|| {
                ApiError::NoCredentials(self.credentials.error().map_or_else(
                    || "the temporary credentials have not been fetched yet".into(),
                    |e| e.to_string(),
                ))
            })?,
        };
        if current.expired_at(crate::time::unix_now()) {
            let why = self
                .credentials
                .error()
                .map_or_else(String::new, |e| format!(": {e}"));
            return Err(ApiError::NoCredentials(format!(
                "the temporary credentials expired and no new ones could be fetched{why}"
            )));
        }
        Ok((current, self.credentials.current().1))
    }

    /// The region for monitoring reads without `monitor.region`: the one the metadata server
    /// reports for this host, else the credential source's.
    pub fn region(&self) -> Option<String> {
        self.region.load_full().map(|r| r.as_ref().clone())
    }

    /// Why temporary credentials cannot be had, while a fetch fails.
    pub fn credentials_problem(&self) -> Option<String> {
        self.credentials.error().map(|e| e.to_string())
    }

    /// When the current temporary credentials expire (unix seconds).
    pub fn credentials_expiry(&self) -> Option<f64> {
        self.credentials.current().0.and_then(|c| c.expires)
    }

    /// Whether any answer has yet said whether the credentials work.
    pub fn credentials_judged(&self) -> bool {
        self.credentials_judged.load(Ordering::Relaxed)
    }

    /// The gateway's rejection of the credentials, while they are rejected.
    pub fn credentials_error(&self) -> Option<ApiError> {
        if self.credentials_valid.load(Ordering::Relaxed) {
            return None;
        }
        self.credentials_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn note_credentials(&self, result: &Result<Value, ApiError>) {
        let valid = match result {
            Ok(_) => true,
            Err(error) if error.is_credentials() => false,
            // Other failures say nothing about the keys.
            Err(_) => return,
        };
        *self
            .credentials_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = result.as_ref().err().cloned();
        self.credentials_judged.store(true, Ordering::Relaxed);
        let was = self.credentials_valid.swap(valid, Ordering::Relaxed);
        self.observer.credentials_valid(&self.account, valid);
        if was && !valid {
            if let Err(error) = result {
                tracing::error!(
                    account = %self.account,
                    endpoint = %self.endpoint,
                    error = %error,
                    hint = error.hint(),
                    "the gateway rejects the API credentials"
                );
            }
        } else if !was && valid {
            tracing::info!(account = %self.account, "the gateway accepts the API credentials again");
        }
    }

    async fn send(
        &self,
        action: &str,
        mut params: Params,
        keys: &Credentials,
    ) -> Result<Value, ApiError> {
        params.insert("Action".into(), action.into());
        keys.sign_into(&mut params);

        let timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let mut response = self
            .http
            .post(self.endpoint.clone())
            .header("U-Timestamp-Ms", timestamp_ms.to_string())
            .form(&params)
            .send()
            .await
            .map_err(|e| ApiError::from_reqwest(e, &self.endpoint))?;

        let request_uuid = response
            .headers()
            .get("X-UCLOUD-REQUEST-UUID")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let status = response.status();
        if !status.is_success() {
            return Err(ApiError::HttpStatus {
                status: status.as_u16(),
                request_uuid,
            });
        }

        let limit = self.max_response_bytes;
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(ApiError::BodyTooLarge { limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| ApiError::from_reqwest(e, &self.endpoint))?
        {
            if body.len() + chunk.len() > limit {
                return Err(ApiError::BodyTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }

        decode::envelope(&body, request_uuid)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(refresher) = &self.refresher {
            refresher.abort();
        }
    }
}
