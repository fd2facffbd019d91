//! A UCloud-style gateway on loopback: checks signatures with the real gateway's rules, answers
//! `GetUDTSTaskStatus`, `ListUDTSTask` and `GetUDTSTaskHistory`, and can be told to misbehave
//! per task. The demo runs
//! it in-process; the tests use it as the API they poll.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::lifecycle::Lifecycle;
use super::monitor::Monitored;
use crate::api::monitor::MonitorMetric;
use crate::api::signer::{sign, Params};
use crate::task::{TaskKind, TaskSpec};

/// The RetCode the simulator answers for a task id it does not know.
pub const TASK_NOT_FOUND: i64 = 8001;

/// What a simulated task answers to `GetUDTSTaskStatus`.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Moves through a lifecycle in (gateway) time.
    Lifecycle(Lifecycle),
    /// Always answers this `Data`.
    Fixed(Value),
    /// Always answers this RetCode and Message.
    RetCode(i64, String),
    /// Answers this raw HTTP status and body, envelope or not.
    Raw {
        /// HTTP status.
        status: u16,
        /// The body, sent as is.
        body: String,
    },
    /// Accepts the request and never answers.
    Hang,
    /// Answers this `Data`, after a delay.
    Slow(Duration, Value),
    /// Starts a body, then breaks the connection mid-way.
    CutOff,
    /// Streams this many bytes of JSON-looking filler, announcing the length.
    Large(u64),
    /// Streams filler without end.
    Endless,
}

/// A task the simulator knows.
#[derive(Debug, Clone)]
pub struct SimTask {
    /// TaskId.
    pub id: String,
    /// transfer or integration.
    pub kind: TaskKind,
    /// Name, as ListUDTSTask reports it.
    pub name: String,
    /// Mode (`full`, `incremental`, ...), as ListUDTSTask reports it in `Type`.
    pub mode: String,
    /// Seconds after the gateway's start at which the task's lifecycle begins (negative: it
    /// began before).
    pub start_offset: f64,
    /// Days from the gateway's start until the task's billing expires.
    pub expires_in_days: f64,
    /// What it answers.
    pub behaviour: Behaviour,
}

impl SimTask {
    /// A transfer task following `lifecycle` from the gateway's start.
    pub fn new(id: &str, behaviour: Behaviour) -> Self {
        Self {
            id: id.into(),
            kind: TaskKind::Transfer,
            name: id.trim_start_matches("udts-").into(),
            mode: "full".into(),
            start_offset: 0.0,
            expires_in_days: 180.0,
            behaviour,
        }
    }

    /// The same task of another kind.
    pub fn kind(mut self, kind: TaskKind) -> Self {
        self.kind = kind;
        self
    }

    /// The same task with another mode.
    pub fn mode(mut self, mode: &str) -> Self {
        self.mode = mode.into();
        self
    }

    /// The same task started `seconds` before the gateway.
    pub fn started_ago(mut self, seconds: f64) -> Self {
        self.start_offset = -seconds;
        self
    }

    /// The same task with its billing expiring `days` after the gateway's start.
    pub fn expiring_in_days(mut self, days: f64) -> Self {
        self.expires_in_days = days;
        self
    }
}

struct Inner {
    public_key: String,
    private_key: Mutex<SecretString>,
    started: Instant,
    tasks: Mutex<BTreeMap<String, SimTask>>,
    requests: Mutex<HashMap<String, u64>>,
    next_request: AtomicU64,
    /// When set, `ListUDTSTask` answers like this instead of listing.
    list_fault: Mutex<Option<Behaviour>>,
    /// When set, `QueryMetricDataSummary` answers like this.
    monitor_fault: Mutex<Option<Behaviour>>,
    /// Monitoring values a test fixed for a task, instead of its lifecycle's, with their age in
    /// seconds.
    monitor_values: Mutex<HashMap<String, FixedMonitor>>,
    /// Added to every answer, to model a gateway far away.
    latency: Mutex<Duration>,
    /// The last signatures received, so tests can look for them where they must not be.
    signatures: Mutex<std::collections::VecDeque<String>>,
    /// Every request in arrival order (the last 100,000), so tests can count calls per cycle
    /// and per task exactly.
    log: Mutex<std::collections::VecDeque<Call>>,
    /// Temporary keys issued by `AssumeRole` or a metadata server, checked like UCloud does.
    temporary: Arc<super::credentials::TemporaryKeys>,
}

/// Monitoring values fixed for a task, and their age in seconds.
type FixedMonitor = (Vec<(MonitorMetric, f64)>, i64);

/// One request the gateway received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `Action`.
    pub action: String,
    /// `TaskId`, when the action names one.
    pub task_id: Option<String>,
}

/// The simulated gateway. Clones share state, so a test can change behaviour while it serves.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Gateway {
    /// A gateway that accepts requests signed with this key pair.
    pub fn new(public_key: &str, private_key: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                public_key: public_key.into(),
                private_key: Mutex::new(SecretString::from(private_key)),
                started: Instant::now(),
                tasks: Mutex::new(BTreeMap::new()),
                requests: Mutex::new(HashMap::new()),
                next_request: AtomicU64::new(1),
                list_fault: Mutex::new(None),
                monitor_fault: Mutex::new(None),
                monitor_values: Mutex::new(HashMap::new()),
                latency: Mutex::new(Duration::ZERO),
                signatures: Mutex::new(std::collections::VecDeque::new()),
                log: Mutex::new(std::collections::VecDeque::new()),
                temporary: Arc::default(),
            }),
        }
    }

    /// Adds or replaces a task.
    pub fn add_task(&self, task: SimTask) -> &Self {
        lock(&self.inner.tasks).insert(task.id.clone(), task);
        self
    }

    /// Changes what a task answers.
    pub fn set_behaviour(&self, id: &str, behaviour: Behaviour) {
        if let Some(task) = lock(&self.inner.tasks).get_mut(id) {
            task.behaviour = behaviour;
        }
    }

    /// Forgets a task: it answers "not found" and leaves the list.
    pub fn remove_task(&self, id: &str) {
        lock(&self.inner.tasks).remove(id);
    }

    /// Makes `ListUDTSTask` answer like `fault` (a RetCode, raw body or hang) until cleared
    /// with `None`.
    pub fn set_list_fault(&self, fault: Option<Behaviour>) {
        *lock(&self.inner.list_fault) = fault;
    }

    /// Makes `QueryMetricDataSummary` answer like `fault` (a RetCode, a hang, ...), or
    /// normally again with `None`.
    pub fn set_monitor_fault(&self, fault: Option<Behaviour>) {
        *lock(&self.inner.monitor_fault) = fault;
    }

    /// Makes the monitoring service report `values` for task `id`, sampled `age` seconds ago
    /// (rounded down to the minute as the service's samples are), instead of its lifecycle's.
    pub fn set_monitor_values(&self, id: &str, values: Vec<(MonitorMetric, f64)>, age: i64) {
        lock(&self.inner.monitor_values).insert(id.to_string(), (values, age));
    }

    /// The temporary keys it issues (`AssumeRole`) and accepts, to share with a simulated
    /// metadata server and to set their lifetime.
    pub fn temporary_keys(&self) -> Arc<super::credentials::TemporaryKeys> {
        Arc::clone(&self.inner.temporary)
    }

    /// Accepts signatures made with `private_key` from now on (a key rotation).
    pub fn set_private_key(&self, private_key: &str) {
        *lock(&self.inner.private_key) = SecretString::from(private_key);
    }

    /// The last (up to 1,000) signatures received.
    pub fn signatures(&self) -> Vec<String> {
        lock(&self.inner.signatures).iter().cloned().collect()
    }

    /// Delays every answer by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        *lock(&self.inner.latency) = latency;
    }

    /// Requests received for `action`, whatever their outcome.
    pub fn requests(&self, action: &str) -> u64 {
        lock(&self.inner.requests).get(action).copied().unwrap_or(0)
    }

    /// Every request received (the last 100,000), in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.inner.log).iter().cloned().collect()
    }

    /// The tasks as the exporter would be configured to poll them.
    pub fn task_specs(&self) -> Vec<TaskSpec> {
        lock(&self.inner.tasks)
            .values()
            .map(|task| TaskSpec {
                kind: task.kind,
                name: Some(task.name.clone()),
                mode: Some(task.mode.clone()),
                ..TaskSpec::new(&task.id)
            })
            .collect()
    }

    /// The router, for serving or for driving directly.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", any(handle))
            .with_state(Arc::clone(&self.inner))
    }

    /// Serves on `listener` until `shutdown`; returns the address it serves on.
    pub fn spawn(&self, listener: TcpListener, shutdown: CancellationToken) -> SocketAddr {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let router = self.router();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await;
        });
        addr
    }

    /// Binds 127.0.0.1 on a free port and serves there; returns the base URL.
    pub async fn start_on_loopback(&self, shutdown: CancellationToken) -> std::io::Result<String> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = self.spawn(listener, shutdown);
        Ok(format!("http://{addr}"))
    }
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = parse_params(query.as_deref(), &headers, &body);
    let action = params.get("Action").cloned().unwrap_or_default();
    *lock(&inner.requests).entry(action.clone()).or_default() += 1;
    {
        let mut log = lock(&inner.log);
        if log.len() == 100_000 {
            log.pop_front();
        }
        log.push_back(Call {
            action: action.clone(),
            task_id: params.get("TaskId").cloned(),
        });
    }
    let uuid = format!(
        "sim-{:08x}",
        inner.next_request.fetch_add(1, Ordering::Relaxed)
    );
    let latency = *lock(&inner.latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let answer = answer(&inner, &action, params).await;
    let mut response = match answer {
        Answer::Data(data) => envelope(&action, 0, "", Some(data)),
        Answer::Error(code, message) => envelope(&action, code, &message, None),
        Answer::Raw(status, body) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
        )
            .into_response(),
        Answer::Stream(response) => response,
    };
    if let Ok(value) = uuid.parse() {
        response
            .headers_mut()
            .insert("X-UCLOUD-REQUEST-UUID", value);
    }
    response
}

enum Answer {
    Data(Value),
    Error(i64, String),
    Raw(u16, String),
    Stream(Response),
}

fn envelope(action: &str, code: i64, message: &str, data: Option<Value>) -> Response {
    let mut body = json!({
        "Action": format!("{action}Response"),
        "RetCode": code,
        "Message": message,
    });
    if let Some(data) = data {
        body["Data"] = data;
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Parameters from the query string and a form or JSON body, as the real gateway takes them.
fn parse_params(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Params {
    let mut params = Params::new();
    if let Some(query) = query {
        params.extend(url::form_urlencoded::parse(query.as_bytes()).into_owned());
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
            for (key, value) in map {
                let value = match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                params.insert(key, value);
            }
        }
    } else {
        params.extend(url::form_urlencoded::parse(body).into_owned());
    }
    params
}

async fn answer(inner: &Inner, action: &str, mut params: Params) -> Answer {
    if action.is_empty() {
        return Answer::Error(160, "Missing Action".into());
    }
    let Some(signature) = params.remove("Signature") else {
        return Answer::Error(170, "Missing signature".into());
    };
    {
        let mut seen = lock(&inner.signatures);
        if seen.len() == 1000 {
            seen.pop_front();
        }
        seen.push_back(signature.clone());
    }
    match inner.temporary.verify(&params, &signature) {
        Some(Err((code, message))) => return Answer::Error(code, message),
        Some(Ok(())) => {}
        None => {
            if params.get("PublicKey") != Some(&inner.public_key) {
                return Answer::Error(172, "User not exist".into());
            }
            let expected = sign(&params, &lock(&inner.private_key));
            if expected != signature {
                return Answer::Error(171, "Signature VerifyAC Error".into());
            }
        }
    }
    if action == "AssumeRole" {
        return Answer::Stream(inner.temporary.assume_role(&params));
    }
    if action == crate::api::monitor::ACTION || action == super::monitor::DATA_SET_ACTION {
        return monitoring(inner, action, &params).await;
    }
    let kind = match params.get("Type").map(String::as_str) {
        None | Some("transfer") => TaskKind::Transfer,
        Some("integration") => TaskKind::Integration,
        Some(_) => return Answer::Error(230, "Params [Type] not valid".into()),
    };
    let now = inner.started.elapsed().as_secs_f64();
    match action {
        "GetUDTSTaskStatus" => {
            let Some(id) = params.get("TaskId") else {
                return Answer::Error(230, "Missing params [TaskId]".into());
            };
            let task = lock(&inner.tasks)
                .get(id)
                .filter(|t| t.kind == kind)
                .cloned();
            let Some(task) = task else {
                return Answer::Error(TASK_NOT_FOUND, format!("task {id} not found"));
            };
            match task.behaviour {
                Behaviour::Lifecycle(lifecycle) => {
                    Answer::Data(lifecycle.status_at(now - task.start_offset))
                }
                Behaviour::Fixed(data) => Answer::Data(data),
                fault => fault_answer(fault).await,
            }
        }
        "GetUDTSTaskHistory" => {
            let Some(id) = params.get("TaskId") else {
                return Answer::Error(230, "Missing params [TaskId]".into());
            };
            let task = lock(&inner.tasks).get(id).cloned();
            match task {
                Some(task) => Answer::Data(history(&task, now)),
                None => Answer::Error(TASK_NOT_FOUND, format!("task {id} not found")),
            }
        }
        "ListUDTSTask" => {
            let fault = lock(&inner.list_fault).clone();
            if let Some(fault) = fault {
                return fault_answer(fault).await;
            }
            let number = |key: &str, default: usize| match params.get(key) {
                None => Some(default),
                Some(value) => value.parse::<usize>().ok(),
            };
            let (Some(offset), Some(limit)) = (number("Offset", 0), number("Limit", 20)) else {
                return Answer::Error(230, "Params [Offset] or [Limit] not valid".into());
            };
            let tasks = lock(&inner.tasks);
            let items: Vec<Value> = tasks
                .values()
                .filter(|t| t.kind == kind)
                .skip(offset)
                .take(limit)
                .map(|t| list_item(t, now))
                .collect();
            Answer::Data(Value::Array(items))
        }
        _ => Answer::Error(161, format!("Action [{action}] not exist")),
    }
}

/// `QueryMetricDataSummary` and `QueryMetricDataSet`, unless a fault is set: each task's
/// values at a minute are its fixed ones (a test's), or what its lifecycle says then.
async fn monitoring(inner: &Inner, action: &str, params: &Params) -> Answer {
    let fault = lock(&inner.monitor_fault).clone();
    if let Some(fault) = fault {
        return fault_answer(fault).await;
    }
    let started_unix = crate::time::unix_now() - inner.started.elapsed().as_secs_f64();
    let tasks = lock(&inner.tasks);
    let fixed = lock(&inner.monitor_values);
    let monitored: Vec<Monitored<'_>> = tasks
        .values()
        .map(|task| Monitored {
            id: &task.id,
            name: &task.name,
            kind: task.kind,
        })
        .collect();
    let sample = |id: &str, minute: i64| -> Vec<(MonitorMetric, f64, i64)> {
        if let Some((values, age)) = fixed.get(id) {
            let at = minute + 60 - age;
            return values.iter().map(|(m, v)| (*m, *v, at)).collect();
        }
        let Some(task) = tasks.get(id) else {
            return Vec::new();
        };
        let now = minute as f64 - started_unix;
        let state = state_at(task, now);
        let t = now - task.start_offset;
        let behind = match &task.behaviour {
            Behaviour::Lifecycle(lifecycle) => lifecycle.behind_at(t),
            _ => None,
        };
        super::monitor::values(&state, behind, t)
            .into_iter()
            .map(|(m, v)| (m, v, minute))
            .collect()
    };
    let answer = if action == crate::api::monitor::ACTION {
        super::monitor::summary(params, &monitored, sample)
    } else {
        super::monitor::data_set(params, &monitored, sample)
    };
    match answer {
        Ok(data) => Answer::Data(data),
        Err((code, message)) => Answer::Error(code, message),
    }
}

/// The answer of a misbehaving task or list.
async fn fault_answer(fault: Behaviour) -> Answer {
    match fault {
        Behaviour::RetCode(code, message) => Answer::Error(code, message),
        Behaviour::Raw { status, body } => Answer::Raw(status, body),
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Answer::Error(110, "API timeout".into())
        }
        Behaviour::Fixed(data) => Answer::Data(data),
        Behaviour::Lifecycle(lifecycle) => Answer::Data(lifecycle.status_at(0.0)),
        Behaviour::Slow(delay, data) => {
            tokio::time::sleep(delay).await;
            Answer::Data(data)
        }
        Behaviour::CutOff => {
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(Bytes::from_static(
                    br#"{"RetCode": 0, "Data": {"Status": "Syn"#,
                )),
                Err(std::io::Error::other("connection cut")),
            ];
            Answer::Stream(Body::from_stream(futures_util::stream::iter(chunks)).into_response())
        }
        Behaviour::Large(bytes) => {
            let mut response = Body::from_stream(filler(Some(bytes))).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, header::HeaderValue::from(bytes));
            Answer::Stream(response)
        }
        Behaviour::Endless => Answer::Stream(Body::from_stream(filler(None)).into_response()),
    }
}

/// 64 KiB chunks of spaces (valid JSON whitespace), `total` bytes or without end.
fn filler(
    total: Option<u64>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    const CHUNK: usize = 64 * 1024;
    let chunk = Bytes::from(vec![b' '; CHUNK]);
    futures_util::stream::unfold(total, move |left| {
        let chunk = chunk.clone();
        async move {
            match left {
                Some(0) => None,
                Some(left) => {
                    let size = left.min(CHUNK as u64);
                    Some((Ok(chunk.slice(..size as usize)), Some(left - size)))
                }
                None => Some((Ok(chunk), None)),
            }
        }
    })
}

/// What a task's status call would answer now, for the list and the history; a misbehaving
/// task lists as Syncing.
fn state_at(task: &SimTask, now: f64) -> Value {
    match &task.behaviour {
        Behaviour::Lifecycle(lifecycle) => lifecycle.status_at(now - task.start_offset),
        Behaviour::Fixed(data) => data.clone(),
        _ => json!({"Status": "Syncing"}),
    }
}

/// A `ListUDTSTask` entry: as UCloud's SDK models ListDataItem, with status, retries and the
/// five basic Progress fields taken from what the status call answers at the same moment (no
/// Sync, no Redis/Mongo delays, no FailedMessage).
fn list_item(task: &SimTask, now: f64) -> Value {
    // `now` counts from the gateway's start; CreateTime and ExpireTime are unix times.
    let started_unix = crate::time::unix_now() - now;
    let state = state_at(task, now);
    let mut item = json!({
        "TaskId": task.id,
        "Name": task.name,
        "Type": task.mode,
        "Status": state["Status"].as_str().unwrap_or("Created"),
        "CreateTime": (started_unix + task.start_offset) as i64,
        "ServiceType": "Small",
        "ChargeType": "Dynamic",
        "AutoRenew": "No",
        "IsExpire": "No",
        "ExpireTime": (started_unix + task.expires_in_days * 86_400.0) as i64,
    });
    for key in ["CurRetryCount", "MaxRetryCount"] {
        if let Some(value) = state.get(key) {
            item[key] = value.clone();
        }
    }
    if let Some(Value::Object(progress)) = state.get("Progress") {
        let basic: serde_json::Map<String, Value> = progress
            .iter()
            .filter(|(key, _)| {
                [
                    "TotalCount",
                    "CurCount",
                    "TotalDuration",
                    "CurDuration",
                    "Percentage",
                ]
                .contains(&key.as_str())
            })
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        if !basic.is_empty() {
            item["Progress"] = Value::Object(basic);
        }
    }
    item
}

/// `GetUDTSTaskHistory`'s `Data`: one entry per status the task entered, found by stepping
/// through its life a second at a time (at most the last 10,000 s; before that, its status
/// at the start of that window counts as entered then). Times are unix seconds.
fn history(task: &SimTask, now: f64) -> Value {
    let started_unix = crate::time::unix_now() - now;
    let status = |t: f64| {
        state_at(task, t)["Status"]
            .as_str()
            .unwrap_or("Created")
            .to_string()
    };
    // A fixed task has been in its one status since it started, however long ago.
    if !matches!(task.behaviour, Behaviour::Lifecycle(_)) {
        let at = (started_unix + task.start_offset) as i64;
        return json!([{"AntID": 1, "AntState": status(now), "CreateTime": at,
                       "CreateTimeH": at.to_string()}]);
    }
    let born = task.start_offset.max(now - 10_000.0);
    let mut entries = Vec::new();
    let mut previous = String::new();
    let mut t = born;
    while t <= now {
        let current = status(t);
        if current != previous {
            let at = (started_unix + t) as i64;
            entries.push(json!({
                "AntID": entries.len() + 1,
                "AntState": current,
                "CreateTime": at,
                "CreateTimeH": at.to_string(),
            }));
            previous = current;
        }
        t += 1.0;
    }
    Value::Array(entries)
}
