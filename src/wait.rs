//! `udts-exporter wait`: a gate for runbooks, like `kubectl wait`. It asks a running exporter
//! (`GET /api/v1/tasks/{id}`) until the task is ready for cut-over (or done), printing its
//! progress, and exits with a code a script can branch on:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | reached |
//! | 1 | `--timeout` passed first |
//! | 2 | bad flags, the task unknown, or the exporter unreachable (after retrying for a while) |
//! | 3 | the task failed or became unrecoverable |

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::status;

/// `wait --for`
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Goal {
    /// The exporter judges the task ready for cut-over (`cutover.ready` is true).
    Cutover,
    /// The task finished successfully (`Done` or `Success`).
    Done,
}

/// The flags of `wait`.
#[derive(Debug, Clone, clap::Args)]
pub struct WaitArgs {
    /// The exporter's base URL, e.g. http://exporter:9741.
    #[arg(long, value_name = "URL")]
    pub url: reqwest::Url,
    /// The task id.
    #[arg(long, value_name = "ID")]
    pub task: String,
    /// The task's `[[accounts]]` name, with several accounts.
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
    /// What to wait for.
    #[arg(long = "for", value_enum, value_name = "GOAL")]
    pub goal: Goal,
    /// Give up after this long (exit 1), e.g. 1h or 30m.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1h")]
    pub timeout: Duration,
    /// How often to ask.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub interval: Duration,
    /// Keep retrying an unreachable exporter this long before exit 2.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1m")]
    pub unreachable_for: Duration,
    /// Basic auth user of the exporter's web config.
    #[arg(long, value_name = "USER")]
    pub username: Option<String>,
    /// A file holding the basic auth password (or set UDTS_WAIT_PASSWORD).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// A CA certificate (PEM) to trust for an exporter served over TLS.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

/// Exit codes, as the module doc lists them.
const REACHED: u8 = 0;
const TIMED_OUT: u8 = 1;
const CANNOT_ASK: u8 = 2;
const TASK_FAILED: u8 = 3;

/// Statuses after which waiting is pointless: the task failed or gave up.
const FAILED: [&str; 1] = ["Failed"];

/// Runs `wait` to its end.
pub async fn run(args: WaitArgs) -> ExitCode {
    match Waiter::new(&args) {
        Ok(waiter) => ExitCode::from(waiter.wait(&args).await),
        Err(message) => {
            eprintln!("udts-exporter wait: {message}");
            ExitCode::from(CANNOT_ASK)
        }
    }
}

/// What one answer of the exporter says, for the goal.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    /// Reached.
    Reached(String),
    /// Not yet, with a progress line.
    Waiting(String),
    /// Failed for good.
    Failed(String),
}

/// Reads the task's answer for `goal`.
fn judge(task: &Value, goal: Goal) -> Answer {
    let status = task["status"].as_str().unwrap_or("unknown");
    let id = task["id"].as_str().unwrap_or("?");
    if FAILED.contains(&status) || status::UNRECOVERABLE.contains(&status) {
        let reason = task["failure_message"]
            .as_str()
            .unwrap_or("no reason given");
        return Answer::Failed(format!("{id}: {status}: {reason}"));
    }
    let mut line = format!("{id}: {status}");
    let outlook = task["outlook"].as_str();
    match goal {
        Goal::Cutover => {
            if task["cutover"]["ready"] == Value::Bool(true) {
                return Answer::Reached(format!(
                    "{line}, ready for cut-over{}",
                    outlook.map(|o| format!(" ({o})")).unwrap_or_default()
                ));
            }
            let blocking: Vec<&str> = task["cutover"]["blocking"]
                .as_array()
                .map(|reasons| reasons.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let verdict = match task["cutover"]["ready"] {
                Value::Bool(false) => "not ready",
                _ => "not judged yet",
            };
            line.push_str(&format!(", {verdict}"));
            if !blocking.is_empty() {
                line.push_str(&format!(": {}", blocking.join("; ")));
            }
        }
        Goal::Done => {
            if matches!(status, "Done" | "Success") {
                return Answer::Reached(format!("{line}, done"));
            }
            if let Some(ratio) = task["progress"]["ratio"].as_f64() {
                line.push_str(&format!(", {:.1}%", ratio * 100.0));
            }
        }
    }
    if let Some(outlook) = outlook {
        line.push_str(&format!(" | {outlook}"));
    }
    Answer::Waiting(line)
}

/// Asks one exporter about one task.
struct Waiter {
    client: reqwest::Client,
    url: reqwest::Url,
    credentials: Option<(String, String)>,
}

impl Waiter {
    fn new(args: &WaitArgs) -> Result<Self, String> {
        crate::tls_provider::install();
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("udts-exporter-wait/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &args.ca_file {
            let pem =
                std::fs::read(path).map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
            let certificate = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| format!("--ca-file {}: not a PEM certificate: {e}", path.display()))?;
            builder = builder.add_root_certificate(certificate);
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let credentials =
            match (&args.username, &args.password_file) {
                (Some(user), Some(path)) => {
                    let password = std::fs::read_to_string(path)
                        .map_err(|e| format!("--password-file {}: {e}", path.display()))?;
                    Some((
                        user.clone(),
                        password.trim_end_matches(['\r', '\n']).to_string(),
                    ))
                }
                (Some(user), None) => match std::env::var("UDTS_WAIT_PASSWORD") {
                    Ok(password) => Some((user.clone(), password)),
                    Err(_) => return Err(
                        "--username needs a password: --password-file FILE or UDTS_WAIT_PASSWORD"
                            .into(),
                    ),
                },
                (None, Some(_)) => return Err("--password-file is given without --username".into()),
                // UDTS_WAIT_PASSWORD alone is ambient: it applies only with --username.
                (None, None) => None,
            };
        let mut url = args.url.clone();
        url.path_segments_mut()
            .map_err(|()| format!("--url {}: not a base URL", args.url))?
            .pop_if_empty()
            .extend(["api", "v1", "tasks", &args.task]);
        if let Some(account) = &args.account {
            url.query_pairs_mut().append_pair("account", account);
        }
        Ok(Self {
            client,
            url,
            credentials,
        })
    }

    /// One answer, or why there is none: `Err((permanent, message))`.
    async fn ask(&self) -> Result<Value, (bool, String)> {
        let mut request = self.client.get(self.url.clone());
        if let Some((user, password)) = &self.credentials {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.map_err(|e| {
            (
                false,
                format!(
                    "cannot reach the exporter: {}",
                    crate::api::error::error_chain(&e)
                ),
            )
        })?;
        match response.status().as_u16() {
            200 => {}
            401 => {
                return Err((
                    true,
                    "the exporter wants credentials (401): pass --username and --password-file"
                        .into(),
                ))
            }
            404 => return Err((false, "the exporter does not know this task (404)".into())),
            status => return Err((false, format!("the exporter answered HTTP {status}"))),
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| (false, format!("the exporter's answer broke off: {e}")))?;
        serde_json::from_slice(&body)
            .map_err(|e| (false, format!("the exporter's answer is not JSON: {e}")))
    }

    async fn wait(&self, args: &WaitArgs) -> u8 {
        let started = Instant::now();
        let live = std::io::stderr().is_terminal();
        let mut printer = Printer::new(live);
        let mut failing_since: Option<Instant> = None;
        loop {
            match self.ask().await {
                Ok(task) => {
                    failing_since = None;
                    match judge(&task, args.goal) {
                        Answer::Reached(line) => {
                            printer.done(&line);
                            return REACHED;
                        }
                        Answer::Failed(line) => {
                            printer.done(&line);
                            return TASK_FAILED;
                        }
                        Answer::Waiting(line) => printer.progress(&line, started.elapsed()),
                    }
                }
                Err((permanent, message)) => {
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if permanent || since.elapsed() >= args.unreachable_for {
                        printer.done(&format!("{message} (at {})", self.url_without_query()));
                        return CANNOT_ASK;
                    }
                    printer.progress(&format!("{message}; retrying"), started.elapsed());
                }
            }
            let left = args.timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                printer.done(&format!(
                    "timed out after {}",
                    crate::human::duration(args.timeout.as_secs_f64())
                ));
                return TIMED_OUT;
            }
            tokio::time::sleep(args.interval.min(left)).await;
        }
    }

    fn url_without_query(&self) -> String {
        let mut url = self.url.clone();
        url.set_query(None);
        url.to_string()
    }
}

/// Progress on stderr: one line rewritten in place on a terminal; elsewhere a plain line each
/// time it changes (and once a minute), so a CI log stays readable.
struct Printer {
    live: bool,
    last: Option<(String, Instant)>,
}

impl Printer {
    fn new(live: bool) -> Self {
        Self { live, last: None }
    }

    fn progress(&mut self, line: &str, elapsed: Duration) {
        let stamped = format!("[{}] {line}", crate::human::duration(elapsed.as_secs_f64()));
        let mut err = std::io::stderr();
        if self.live {
            let _ = write!(err, "\r\x1b[2K{stamped}");
            let _ = err.flush();
            self.last = Some((line.to_string(), Instant::now()));
            return;
        }
        let repeat = self
            .last
            .as_ref()
            .is_some_and(|(last, at)| last == line && at.elapsed() < Duration::from_secs(60));
        if !repeat {
            let _ = writeln!(err, "{stamped}");
            self.last = Some((line.to_string(), Instant::now()));
        }
    }

    fn done(&mut self, line: &str) {
        let mut err = std::io::stderr();
        if self.live && self.last.is_some() {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(err, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_are_judged_for_the_goal() {
        let ready = json!({"id": "udts-a", "status": "Synced",
            "cutover": {"ready": true, "since": 1.0, "blocking": []}});
        assert!(matches!(judge(&ready, Goal::Cutover), Answer::Reached(_)));
        let blocked = json!({"id": "udts-a", "status": "Syncing",
            "cutover": {"ready": false, "blocking": ["lag 42 s over 10 s"]}});
        assert_eq!(
            judge(&blocked, Goal::Cutover),
            Answer::Waiting("udts-a: Syncing, not ready: lag 42 s over 10 s".into())
        );
        let failed = json!({"id": "udts-a", "status": "FailedUnrecoverable",
            "failure_message": "gave up"});
        assert!(matches!(judge(&failed, Goal::Done), Answer::Failed(_)));
        let done = json!({"id": "udts-a", "status": "Done"});
        assert!(matches!(judge(&done, Goal::Done), Answer::Reached(_)));
        assert!(matches!(judge(&done, Goal::Cutover), Answer::Waiting(_)));
    }
}
