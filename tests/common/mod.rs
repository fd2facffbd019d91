//! Shared test fixtures: a simulated gateway on loopback, the real exporter pointed at it, and
//! helpers to scrape and read the exposition.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod ca;
pub mod mariadb;
pub mod postgres;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use udts_exporter::config::{Config, TaskConfig};
use udts_exporter::simulator::{Gateway, SimTask};

pub const PUBLIC_KEY: &str = "test-public-key";
pub const PRIVATE_KEY: &str = "test-private-key-5f1d0c";

/// A gateway and an exporter polling it, both stopped when this is dropped.
pub struct Harness {
    pub gateway: Gateway,
    pub exporter: SocketAddr,
    pub endpoint: String,
    shutdown: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A gateway holding `tasks`, served on loopback.
pub async fn gateway_with(tasks: Vec<SimTask>, shutdown: &CancellationToken) -> (Gateway, String) {
    let gateway = Gateway::new(PUBLIC_KEY, PRIVATE_KEY);
    for task in tasks {
        gateway.add_task(task);
    }
    let endpoint = gateway.start_on_loopback(shutdown.clone()).await.unwrap();
    (gateway, endpoint)
}

/// A config polling every task of `gateway` at `endpoint`, fast.
pub fn config_for(gateway: &Gateway, endpoint: &str, private_key: &str) -> Config {
    let mut config = Config::default();
    config.poll.interval = Some(Duration::from_secs(1));
    config.tasks = gateway
        .task_specs()
        .into_iter()
        .map(|spec| TaskConfig {
            id: spec.id,
            kind: spec.kind,
            project_id: Some("org-test".into()),
            name: spec.name,
            account: None,
            labels: Default::default(),
        })
        .collect();
    config.web.listen_address = "127.0.0.1:0".into();
    config.api.endpoint = endpoint.into();
    config.api.public_key = PUBLIC_KEY.into();
    config.api.private_key = Some(private_key.into());
    config.api.timeout = Some(Duration::from_millis(400));
    config.api.concurrency = 4;
    config.validate().unwrap();
    config
}

/// Starts the gateway and the real exporter; waits until `/readyz` says the first cycle is done.
pub async fn start(tasks: Vec<SimTask>) -> Harness {
    start_with(tasks, PRIVATE_KEY, |_| {}).await
}

pub async fn start_with(
    tasks: Vec<SimTask>,
    private_key: &str,
    adjust: impl FnOnce(&mut Config),
) -> Harness {
    let harness = start_unready(tasks, private_key, adjust).await;
    wait_ready(harness.exporter).await;
    harness
}

/// Starts like [`start_with`] without waiting for readiness (for HTTPS or auth, where the
/// plain readiness probe cannot get through).
pub async fn start_unready(
    tasks: Vec<SimTask>,
    private_key: &str,
    adjust: impl FnOnce(&mut Config),
) -> Harness {
    start_unready_keyed(tasks, private_key, |_, config| adjust(config)).await
}

/// [`start_unready`] with the test's keys, the config adjusted with the gateway at hand (to
/// share its temporary keys with a metadata server, say).
pub async fn start_unready_with_gateway(
    tasks: Vec<SimTask>,
    adjust: impl FnOnce(&Gateway, &mut Config),
) -> Harness {
    start_unready_keyed(tasks, PRIVATE_KEY, adjust).await
}

async fn start_unready_keyed(
    tasks: Vec<SimTask>,
    private_key: &str,
    adjust: impl FnOnce(&Gateway, &mut Config),
) -> Harness {
    let shutdown = CancellationToken::new();
    let (gateway, endpoint) = gateway_with(tasks, &shutdown).await;
    let mut config = config_for(&gateway, &endpoint, private_key);
    adjust(&gateway, &mut config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = udts_exporter::exporter::start(&config, listener, shutdown.clone())
        .await
        .unwrap();
    Harness {
        gateway,
        exporter: running.local_addr,
        endpoint,
        shutdown,
    }
}

impl Harness {
    /// Waits for readiness over HTTPS, trusting `ca` and ignoring authentication (401 means
    /// the server is up; readiness is then checked with the metrics scrape itself).
    pub async fn ready_over_tls(self, ca: &reqwest::Certificate) -> Self {
        let client = http_client_builder()
            .add_root_certificate(ca.clone())
            .build()
            .unwrap();
        let url = format!("https://localhost:{}/readyz", self.exporter.port());
        for _ in 0..200 {
            if let Ok(response) = client.get(&url).send().await {
                if response.status() == 200 || response.status() == 401 {
                    // Give the first cycle time to finish when auth hides /readyz.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    return self;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("exporter never answered over TLS");
    }
}

pub async fn wait_ready(addr: SocketAddr) {
    wait_ready_within(addr, Duration::from_secs(10)).await;
}

/// Polls `/readyz` every 10 ms until it answers 200, or fails after `limit`.
pub async fn wait_ready_within(addr: SocketAddr, limit: Duration) {
    let client = http_client();
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Ok(response) = client.get(format!("http://{addr}/readyz")).send().await {
            if response.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("exporter at {addr} never became ready");
}

/// A reqwest client builder. reqwest is built without a crypto provider of its own (one
/// crypto library in the binary), so the process's one is installed first, as the binary does.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    udts_exporter::tls_provider::install();
    reqwest::Client::builder()
}

/// A default reqwest client (see [`http_client_builder`]).
pub fn http_client() -> reqwest::Client {
    http_client_builder().build().unwrap()
}

/// `GET /api/v1/tasks` of the exporter at `addr`, as JSON.
pub async fn tasks_json(addr: SocketAddr) -> serde_json::Value {
    let response = http_get(format!("http://{addr}/api/v1/tasks"))
        .await
        .unwrap();
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

/// `reqwest::get` with the process's crypto provider installed.
pub async fn http_get(url: impl reqwest::IntoUrl) -> reqwest::Result<reqwest::Response> {
    http_client().get(url).send().await
}

pub async fn scrape(addr: SocketAddr) -> String {
    http_get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Scrapes until `condition` holds (the poller runs in real time), or fails after 10 s.
pub async fn scrape_until(
    addr: SocketAddr,
    what: &str,
    condition: impl Fn(&str) -> bool,
) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        last = scrape(addr).await;
        if condition(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}; last scrape:\n{last}");
}

/// The samples of one metric family: label set text (e.g. `{task_id="a"}`) -> value.
pub fn family(text: &str, name: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            if !(rest.starts_with('{') || rest.starts_with(' ')) {
                return None;
            }
            let (labels, value) = rest.rsplit_once(' ')?;
            Some((labels.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The value of one sample, e.g. `value(text, "udts_task_up", r#"{task_id="a"}"#)`.
pub fn value(text: &str, name: &str, labels: &str) -> Option<f64> {
    family(text, name).get(labels).copied()
}

/// `{task_id="id"}`.
pub fn task(id: &str) -> String {
    format!("{{task_id=\"{id}\"}}")
}

/// Whether an outside tool is present; when it is not, the test is skipped with a notice,
/// unless `UDTS_REQUIRE_TOOLS=1` makes its absence a failure.
pub fn tool_available(tool: &str) -> bool {
    // Present if it can be started at all: not every tool has a --version (rpm2cpio) or
    // answers it with success (openssl wants `openssl version`).
    let found = std::process::Command::new(tool)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .is_ok();
    if !found {
        if std::env::var("UDTS_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("{tool} is required (UDTS_REQUIRE_TOOLS=1) but was not found");
        }
        eprintln!("SKIPPED: {tool} not found; .ci/run installs it (see the README's test section)");
    }
    found
}

/// Whether this test runs as root (it changes users or mounts); when not, the test is skipped
/// with a notice, unless `UDTS_REQUIRE_TOOLS=1` makes it a failure (CI runs as root).
pub fn running_as_root(why: &str) -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        if std::env::var("UDTS_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("this test needs root to {why} (UDTS_REQUIRE_TOOLS=1)");
        }
        eprintln!("SKIPPED: needs root to {why}");
    }
    root
}

/// `chmod 600`: key files readable by others are refused.
pub fn private_to_owner(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A running `udts-exporter` process (killed when dropped).
pub struct ExporterProcess {
    pub child: tokio::process::Child,
    /// The metrics URL it printed.
    pub url: String,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl ExporterProcess {
    /// Sends a signal (`TERM`, `HUP`, ...) to the process.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args([format!("-{name}"), pid])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// Starts the real binary with `args` and `--web.listen-address 127.0.0.1:0`, and waits for
/// the metrics URL it prints. Its stdout keeps being drained; stderr goes to `stderr`.
pub async fn spawn_exporter<I, S>(args: I, stderr: std::process::Stdio) -> ExporterProcess
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    spawn_exporter_via(&[], args, stderr).await
}

/// Like [`spawn_exporter`], run through `wrapper` (e.g. `setpriv --reuid ...`): the binary's
/// path and arguments are appended to it.
pub async fn spawn_exporter_via<I, S>(
    wrapper: &[&str],
    args: I,
    stderr: std::process::Stdio,
) -> ExporterProcess
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    use tokio::io::AsyncBufReadExt;
    let binary = env!("CARGO_BIN_EXE_udts-exporter");
    let mut command = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut command = tokio::process::Command::new(program);
            command.args(rest).arg(binary);
            command
        }
        None => tokio::process::Command::new(binary),
    };
    let mut child = command
        .args(args)
        .args(["--web.listen-address", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("udts-exporter: metrics at ") {
                return url.to_string();
            }
        }
        panic!("the exporter exited without printing its metrics URL");
    })
    .await
    .expect("the exporter prints its metrics URL");
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let addr = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|host| host.parse().ok())
        .unwrap();
    ExporterProcess { child, url, addr }
}

/// Writes `config` (TOML) to a temporary directory and starts the real binary on it, logging at
/// `log_level` to this process's stderr. Keep the directory as long as the process runs.
pub async fn spawn_with_config(
    config: &str,
    log_level: &str,
) -> (ExporterProcess, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let exporter = spawn_exporter(
        [
            std::ffi::OsStr::new("--config"),
            path.as_os_str(),
            std::ffi::OsStr::new("--log-level"),
            std::ffi::OsStr::new(log_level),
        ],
        std::process::Stdio::inherit(),
    )
    .await;
    (exporter, dir)
}

/// chromedriver on a free port, killed when dropped.
pub struct Driver {
    child: std::process::Child,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium session through chromedriver, or `None` (skipped, or failed under
/// `UDTS_REQUIRE_TOOLS=1`) when either is missing.
pub async fn start_browser() -> Option<(Driver, fantoccini::Client)> {
    if !tool_available("chromedriver") || !tool_available("chromium") {
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver {
        child,
        _profile: tempfile::tempdir().unwrap(),
    };
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                     format!("--user-data-dir={}", driver._profile.path().display())],
        }),
    );
    // The exporter's provider is the process default every rustls client here uses.
    udts_exporter::tls_provider::install();
    for _ in 0..100 {
        let connected = fantoccini::ClientBuilder::rustls()
            .unwrap()
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        if let Ok(client) = connected {
            return Some((driver, client));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start a session");
}

/// Task `i` of a realistic account (the benchmarks' mix): 60% finished, 25% incremental, 10%
/// loading, 5% failed or retrying.
pub fn mixed_task(i: usize) -> SimTask {
    use serde_json::json;
    use udts_exporter::simulator::Behaviour;
    let data = match i % 20 {
        0..=11 => json!({"Status": (["Done", "Stopped", "Success"][i % 3]),
                         "CurRetryCount": 0, "MaxRetryCount": 3,
                         "Progress": {"TotalCount": 50_000, "CurCount": 50_000,
                                      "Percentage": 100, "CurDuration": 600, "TotalDuration": 600}}),
        12..=16 => json!({"Status": (["Syncing", "Synced"][i % 2]),
                          "CurRetryCount": 0, "MaxRetryCount": 3,
                          "Sync": {"BinlogName": "mysql-bin.000012", "BinlogPos": i * 100}}),
        17 | 18 => json!({"Status": "Loading", "CurRetryCount": 0, "MaxRetryCount": 3,
                          "Progress": {"TotalCount": 1_000_000, "CurCount": i * 10,
                                       "Percentage": 12.5, "CurDuration": 100, "TotalDuration": 600}}),
        _ => json!({"Status": (["Failed", "RetryPending"][i % 2]),
                    "CurRetryCount": 1, "MaxRetryCount": 3, "FailedMessage": "Access denied"}),
    };
    SimTask::new(&format!("udts-bench-{i:06}"), Behaviour::Fixed(data))
}

/// Writes `config.toml` in `dir` for `endpoint` and `public_key`, the test key in a private
/// file, `tasks` as `[[tasks]]` and `extra` after `[api]`; returns its path.
pub fn write_config_file(
    dir: &tempfile::TempDir,
    endpoint: &str,
    public_key: &str,
    tasks: &[&str],
    extra: &str,
) -> std::path::PathBuf {
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, format!("{PRIVATE_KEY}\n")).unwrap();
    private_to_owner(&key_file);
    let mut text = format!(
        "[api]\nendpoint = \"{endpoint}\"\npublic_key = \"{public_key}\"\nprivate_key_file = \"{}\"\ntimeout = \"1s\"\n{extra}\n",
        key_file.display()
    );
    for id in tasks {
        text.push_str(&format!("[[tasks]]\nid = \"{id}\"\n"));
    }
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A TCP port free on loopback right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS:`, `VmHWM:`), 0 when it cannot be read.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
