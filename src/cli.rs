//! Command line: `udts-exporter [--config FILE]` runs the exporter, `demo` runs it against the
//! embedded simulated gateway, `check` polls every task once and prints a table.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::config::{Config, ConfigError, LabelRuleConfig, SourceConfig, TlsMode};
use crate::exporter::{ConfigLoader, Reloader};
use crate::logging::{self, LogFormat};
use crate::metrics::ExporterMetrics;
use crate::runtime::Runtime;
use crate::simulator;
use crate::source::ReaderFactory;

/// How long shutdown may take before the process exits anyway.
const SHUTDOWN_DEADLINE: Duration = Duration::from_millis(4500);

/// Prometheus exporter for UCloud UDTS (Data Transmission Service) tasks.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Configuration file (TOML). Environment variables `UDTS_SECTION__KEY` override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to serve on, e.g. 0.0.0.0:9741; repeat it for several (IPv4 and IPv6, two
    /// interfaces); overrides web.listen_address.
    #[arg(long = "web.listen-address", global = true, value_name = "ADDR")]
    pub listen_address: Vec<String>,
    /// Serve on the sockets systemd passes (socket activation: udts-exporter.socket) instead
    /// of binding web.listen_address.
    #[arg(long = "web.systemd-socket", global = true)]
    pub systemd_socket: bool,
    /// Requests handled at once at most, 503 beyond (0: no limit); overrides web.max_requests.
    #[arg(long = "web.max-requests", global = true, value_name = "N")]
    pub max_requests: Option<usize>,
    /// Web config file (exporter-toolkit format: TLS, basic auth); overrides web.config_file.
    #[arg(long = "web.config.file", global = true, value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,
    /// Serve POST /-/reload (as Prometheus's flag); overrides web.enable_lifecycle.
    #[arg(long = "web.enable-lifecycle", global = true)]
    pub enable_lifecycle: bool,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log level or filter (e.g. debug, udts_exporter=debug); default: RUST_LOG, else info.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// This exporter's shard (0-based); overrides sharding.shard.
    #[arg(long, global = true, value_name = "N")]
    pub shard: Option<u32>,
    /// How many exporters share the tasks; overrides sharding.total_shards.
    #[arg(long, global = true, value_name = "M")]
    pub total_shards: Option<u32>,
    /// What to do; without a command the exporter runs.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `check --output`
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckOutput {
    /// An aligned table for people.
    Text,
    /// `{"generated_at", "poll_interval_seconds", "tasks": [...]}` as `/api/v1/tasks` serves it.
    Json,
}

/// Subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run against an embedded simulated gateway: no account and no config needed.
    Demo,
    /// Validate the config, poll every task once, print a table (or JSON); non-zero exit if
    /// any task could not be read.
    Check {
        /// `text`: an aligned table; `json`: the task objects of `/api/v1/tasks`.
        #[arg(long, value_enum, default_value_t = CheckOutput::Text)]
        output: CheckOutput,
    },
    /// List what discovery would poll (even while `[discovery]` is off), then exit.
    Discover,
    /// Block until a running exporter judges a task ready for cut-over (or done): exit 0 when
    /// reached, 1 on timeout, 2 on bad flags or an unreachable exporter, 3 when the task failed.
    Wait(Box<crate::wait::WaitArgs>),
}

/// Parses the command line and runs; the binary's whole `main`.
pub fn main() -> ExitCode {
    crate::process_metrics::record_start_time();
    crate::tls_provider::install();
    let cli = Cli::parse();
    if let Some(Command::Wait(args)) = cli.command.clone() {
        // A client of the exporter: no config, no logger, a small runtime.
        return match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(crate::wait::run(*args)),
            Err(error) => {
                eprintln!("udts-exporter: cannot start the runtime: {error}");
                ExitCode::from(2)
            }
        };
    }
    if let Err(error) = logging::init(cli.log_format, cli.log_level.as_deref()) {
        eprintln!("udts-exporter: {error:#}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("udts-exporter: cannot start the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            None => run(&cli).await,
            Some(Command::Demo) => demo(&cli).await,
            Some(Command::Check { output }) => check(&cli, output).await,
            Some(Command::Discover) => discover(&cli).await,
            // Handled before the logger and the runtime are set up.
            Some(Command::Wait(_)) => Ok(ExitCode::from(2)),
        }
    });
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(code) => code,
        Err(error) => {
            // Once: a JSON log line for log pipelines, a plain line for people.
            match cli.log_format {
                LogFormat::Json => error!("{error:#}"),
                LogFormat::Text => eprintln!("udts-exporter: {error:#}"),
            }
            ExitCode::from(2)
        }
    }
}

/// The file and environment, with the command-line overrides applied; validated by the
/// caller's single `resolve()`.
fn load_config(cli: &Cli) -> Result<Config, ConfigError> {
    let mut config = Config::read(cli.config.as_deref())?;
    apply_overrides(cli, &mut config);
    Ok(config)
}

fn apply_overrides(cli: &Cli, config: &mut Config) {
    if !cli.listen_address.is_empty() {
        config.web.listen_address = crate::config::ListenAddresses(cli.listen_address.clone());
    }
    if let Some(max) = cli.max_requests {
        config.web.max_requests = max;
    }
    if let Some(file) = &cli.web_config_file {
        config.web.config_file = Some(file.clone());
    }
    if cli.enable_lifecycle {
        config.web.enable_lifecycle = true;
    }
    if let Some(shard) = cli.shard {
        config.sharding.shard = shard;
    }
    if let Some(total) = cli.total_shards {
        config.sharding.total_shards = total;
    }
}

async fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let overrides = Cli {
        command: None,
        ..cli.clone()
    };
    let loader: ConfigLoader = Arc::new(move || load_config(&overrides));
    serve(loader, crate::source::mysql_readers(), cli.systemd_socket).await?;
    Ok(ExitCode::SUCCESS)
}

/// Serves until SIGTERM or SIGINT, then shuts down within the deadline; SIGHUP reloads.
async fn serve(
    loader: ConfigLoader,
    readers: ReaderFactory,
    systemd_socket: bool,
) -> anyhow::Result<()> {
    // Handlers go in before anything is announced: a SIGHUP that arrives between the printed
    // URL and a spawned task's first poll would otherwise meet the default action and kill us.
    let signals = Signals::install();
    crate::listen::raise_open_file_limit();
    let settings = loader()?.resolve()?;
    let listeners = if systemd_socket {
        crate::listen::systemd_listeners()?
    } else {
        let mut listeners = Vec::new();
        for address in &settings.listen_addresses {
            let listener =
                crate::listen::bind(*address).map_err(|error| listen_error(*address, &error))?;
            listeners.push(listener);
        }
        listeners
    };
    let shutdown = CancellationToken::new();
    let exporter = crate::exporter::start_with_settings(
        settings.clone(),
        loader,
        readers,
        listeners,
        shutdown.clone(),
    )
    .await?;
    let scheme = if settings.web_security.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let url = format!(
        "{scheme}://{}{}",
        exporter.local_addr, settings.telemetry_path
    );
    info!(%url, "serving metrics");
    for also in exporter.local_addrs.iter().skip(1) {
        info!(address = %also, "also serving");
    }
    tokio::spawn(signals.run(Arc::clone(&exporter.reloader), shutdown.clone()));
    println!("udts-exporter: metrics at {url}");
    shutdown.cancelled().await;
    info!("shutting down");
    match tokio::time::timeout(SHUTDOWN_DEADLINE, exporter.wait()).await {
        Ok(result) => result,
        Err(_) => {
            info!("in-flight work did not finish in time; exiting anyway");
            Ok(())
        }
    }
}

/// Why the listen address cannot be used, and what to do about it.
fn listen_error(address: std::net::SocketAddr, error: &std::io::Error) -> anyhow::Error {
    let fix = match error.kind() {
        std::io::ErrorKind::AddrInUse => {
            "another process listens there: stop it, or choose another address with \
             --web.listen-address (or web.listen_address)"
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "no interface of this host has that address: use one it has, or 0.0.0.0"
        }
        std::io::ErrorKind::PermissionDenied => {
            "ports below 1024 need privileges: use a higher port, or grant CAP_NET_BIND_SERVICE"
        }
        _ => "check web.listen_address",
    };
    anyhow::anyhow!("cannot listen on {address}: {error}. Fix: {fix}")
}

/// The process's signal handlers, registered as soon as they are created.
struct Signals {
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Self {
                terminate: signal(SignalKind::terminate()).ok(),
                interrupt: signal(SignalKind::interrupt()).ok(),
                hangup: signal(SignalKind::hangup()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// SIGTERM or SIGINT (Ctrl-C) cancels `shutdown`; SIGHUP reloads (the outcome is logged and exported
    /// by the reloader).
    async fn run(self, reloader: Arc<Reloader>, shutdown: CancellationToken) {
        #[cfg(unix)]
        {
            let Self {
                mut terminate,
                mut interrupt,
                mut hangup,
            } = self;
            loop {
                tokio::select! {
                    Some(()) = recv(&mut terminate) => break,
                    Some(()) = recv(&mut interrupt) => break,
                    Some(()) = recv(&mut hangup) => {
                        info!("SIGHUP: reloading the configuration");
                        let _ = Arc::clone(&reloader).reload_in_background().await;
                    }
                    () = shutdown.cancelled() => return,
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = (self, reloader);
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = shutdown.cancelled() => return,
            }
        }
        shutdown.cancel();
    }
}

/// The next delivery of a signal, or never when its handler could not be registered.
#[cfg(unix)]
async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

async fn demo(cli: &Cli) -> anyhow::Result<ExitCode> {
    let gateway = simulator::demo_gateway();
    let readers = simulator::demo_readers(std::time::Instant::now());
    let gateway_shutdown = CancellationToken::new();
    let endpoint = gateway
        .start_on_loopback(gateway_shutdown.clone())
        .await
        .context("cannot start the simulated gateway")?;
    println!("udts-exporter demo: simulated UDTS gateway at {endpoint}");

    let mut config = demo_config(&endpoint);
    config.web.listen_address = "127.0.0.1:9741".into();
    apply_overrides(cli, &mut config);
    let result = serve(
        Arc::new(move || Ok(config.clone())),
        readers,
        cli.systemd_socket,
    )
    .await;
    gateway_shutdown.cancel();
    result.map(|()| ExitCode::SUCCESS)
}

/// The configuration `demo` runs with: the simulator's keys, discovery of all its tasks, a
/// short interval.
pub fn demo_config(endpoint: &str) -> Config {
    let mut config = Config::default();
    config.api.endpoint = endpoint.into();
    config.api.public_key = simulator::DEMO_PUBLIC_KEY.into();
    config.api.private_key = Some(simulator::DEMO_PRIVATE_KEY.into());
    config.api.timeout = Some(Duration::from_secs(2));
    config.poll.interval = Some(Duration::from_secs(5));
    config.discovery.enabled = true;
    config.discovery.refresh_interval = Duration::from_secs(30);
    // Team labels, as an operator would route alerts by them.
    let rule = |pattern: &str, team: &str| LabelRuleConfig {
        name_regex: pattern.into(),
        labels: [
            ("team".to_string(), team.to_string()),
            ("env".to_string(), "demo".to_string()),
        ]
        .into(),
    };
    config.discovery.labels = vec![
        rule("^demo-(orders|payments|billing|ledger)(-.*)?$", "payments"),
        rule("^demo-", "platform"),
    ];
    // The simulated orders database (no server: `demo` reads it in-process).
    config.sources = vec![SourceConfig {
        name: "demo-orders-db".into(),
        url: "mysql://udts_monitor@orders-db.demo.invalid:3306".into(),
        password_file: None,
        password_env: None,
        tls: TlsMode::Disabled,
        ca_file: None,
        tasks: Vec::new(),
        task_name_regex: Some("^demo-(billing|orders-.+)$".into()),
        timeout: None,
        slots: Default::default(),
        slot_name_regex: None,
    }];
    // The simulated PostgreSQL database of the paused task: its slot, and one orphaned.
    config.sources.push(SourceConfig {
        name: "demo-pg".into(),
        url: "postgresql://udts_monitor@pg.demo.invalid:5432/orders".into(),
        tasks: vec!["udts-demo-paused".into()],
        task_name_regex: None,
        ..config.sources[0].clone()
    });
    // A minute of steady lag makes a task ready, so the demo shows one turn within minutes.
    config.cutover.steady_for = Some(Duration::from_secs(60));
    config
}

async fn check(cli: &Cli, output: CheckOutput) -> anyhow::Result<ExitCode> {
    let settings = load_config(cli)?.resolve()?;
    for warning in settings.source_warnings() {
        eprintln!("udts-exporter: warning: {warning}");
    }
    let options = settings.exposition.clone();
    let source_settings = settings.sources.clone();
    let runtime = Arc::new(Runtime::new(settings, Arc::new(ExporterMetrics::new()))?);
    let poll_set = crate::check::PollSet::of(&runtime).await;
    let listing_failed = poll_set.report_failures();
    let tasks = poll_set.tasks;
    if tasks.is_empty() {
        eprintln!("udts-exporter: {}", crate::check::NOTHING_TO_POLL);
        return Ok(ExitCode::from(1));
    }
    let readers = crate::source::mysql_readers();
    let (rows, sources) = tokio::join!(
        crate::check::poll_once(Arc::clone(&runtime), tasks),
        crate::check::read_sources(&source_settings, &readers),
    );
    // Monitoring is an extra: what it says never changes the exit code.
    let (monitoring, monitor) = crate::check::read_monitoring(&runtime, &rows).await;
    let failed = rows.iter().filter(|row| row.result.is_err()).count();
    let sources_down = sources.iter().filter(|s| s.result.is_err()).count();
    let code = if failed == 0 && sources_down == 0 && !listing_failed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    let credentials = crate::check::credential_states(&runtime);
    // What a render would derive, once, for every part of the report.
    let derived = crate::check::derive(&rows, &sources, monitor, &options, crate::time::unix_now());
    if output == CheckOutput::Json {
        println!(
            "{}",
            crate::check::json(&derived, &sources, &monitoring, &credentials)
        );
        return Ok(code);
    }
    let lags = crate::check::lag_summaries(&derived);
    print!("{}", crate::check::table(&rows, &lags));
    if !sources.is_empty() {
        print!("\n{}", crate::check::sources_table(&sources));
        let slots = crate::check::slots_table(&derived);
        if !slots.is_empty() {
            print!("\n{slots}");
        }
    }
    if listing_failed {
        println!(
            "\n{} of the listings failed: tasks they hold are missing above",
            poll_set.failures.len()
        );
    }
    if failed == 0 {
        println!("\nall {} tasks readable", rows.len());
    } else {
        println!("\n{failed} of {} tasks could not be read", rows.len());
    }
    if sources_down > 0 {
        println!(
            "{sources_down} of {} sources could not be read",
            sources.len()
        );
    }
    print!("{}", crate::check::series_line(&derived));
    print!("{}", crate::check::monitoring_lines(&monitoring));
    print!("{}", crate::check::credentials_lines(&credentials));
    Ok(code)
}

async fn discover(cli: &Cli) -> anyhow::Result<ExitCode> {
    // Discovery needs no [[tasks]] and runs here even while [discovery] is off.
    let mut config = Config::read(cli.config.as_deref())?;
    apply_overrides(cli, &mut config);
    config.discovery.enabled = true;
    let settings = config.resolve()?;
    let runtime = Runtime::new(settings, Arc::new(ExporterMetrics::new()))?;
    let poll_set = crate::check::PollSet::of(&runtime).await;
    let failed = poll_set.report_failures();
    let rows: Vec<_> = poll_set.listed.iter().collect();
    print!("{}", crate::check::discovered_table(&rows));
    let total = poll_set.tasks.len();
    let configured = poll_set
        .tasks
        .iter()
        .filter(|task| task.source == crate::task::TaskSource::Static)
        .count();
    println!(
        "\n{total} tasks would be polled: {} discovered, {configured} from [[tasks]]",
        total - configured
    );
    if total == 0 {
        eprintln!("udts-exporter: {}", crate::check::NOTHING_TO_POLL);
    }
    Ok(if failed || total == 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
