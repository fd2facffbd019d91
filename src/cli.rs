//! Command line: `udts-exporter [--config FILE]` runs the exporter, `demo` runs it against the
//! embedded simulated gateway, `check` polls every task once and prints a table.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::api::Client;
use crate::config::{Config, PollConfig, TaskConfig};
use crate::logging::{self, LogFormat};
use crate::metrics::ExporterMetrics;
use crate::simulator;

/// How long shutdown may take before the process exits anyway.
const SHUTDOWN_DEADLINE: Duration = Duration::from_millis(4500);

/// Prometheus exporter for UCloud UDTS (Data Transmission Service) tasks.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Configuration file (TOML). Environment variables `UDTS_SECTION__KEY` override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to serve on, e.g. 0.0.0.0:9741; overrides web.listen_address.
    #[arg(long = "web.listen-address", global = true, value_name = "ADDR")]
    pub listen_address: Option<String>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log level or filter (e.g. debug, udts_exporter=debug); default: RUST_LOG, else info.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// What to do; without a command the exporter runs.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run against an embedded simulated gateway: no account and no config needed.
    Demo,
    /// Validate the config, poll every task once, print a table; non-zero exit if any task
    /// could not be read.
    Check,
}

/// Parses the command line and runs; the binary's whole `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
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
            Some(Command::Check) => check(&cli).await,
        }
    });
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(code) => code,
        Err(error) => {
            error!("{error:#}");
            eprintln!("udts-exporter: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(address) = &cli.listen_address {
        config.web.listen_address = address.clone();
        config.validate()?;
    }
    Ok(config)
}

async fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    serve(&config).await?;
    Ok(ExitCode::SUCCESS)
}

/// Serves until SIGTERM or SIGINT, then shuts down within the deadline.
async fn serve(config: &Config) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&config.web.listen_address)
        .await
        .with_context(|| format!("cannot listen on {}", config.web.listen_address))?;
    let shutdown = CancellationToken::new();
    let exporter = crate::exporter::start(config, listener, shutdown.clone()).await?;
    let url = format!(
        "http://{}{}",
        exporter.local_addr, config.web.telemetry_path
    );
    info!(%url, tasks = config.tasks.len(), "serving metrics");
    println!("udts-exporter: metrics at {url}");

    tokio::spawn(signal_shutdown(shutdown.clone()));
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

async fn signal_shutdown(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                    () = shutdown.cancelled() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    shutdown.cancel();
}

async fn demo(cli: &Cli) -> anyhow::Result<ExitCode> {
    let gateway = simulator::demo_gateway();
    let gateway_shutdown = CancellationToken::new();
    let endpoint = gateway
        .start_on_loopback(gateway_shutdown.clone())
        .await
        .context("cannot start the simulated gateway")?;
    println!("udts-exporter demo: simulated UDTS gateway at {endpoint}");

    let mut config = demo_config(&endpoint, &gateway);
    config.web.listen_address = cli
        .listen_address
        .clone()
        .unwrap_or_else(|| "127.0.0.1:9741".into());
    config.validate()?;
    let result = serve(&config).await;
    gateway_shutdown.cancel();
    result.map(|()| ExitCode::SUCCESS)
}

/// The configuration `demo` runs with: the simulator's keys and tasks, a short interval.
pub fn demo_config(endpoint: &str, gateway: &simulator::Gateway) -> Config {
    let mut config = Config {
        web: Default::default(),
        api: Default::default(),
        poll: PollConfig {
            interval: Duration::from_secs(5),
        },
        tasks: gateway
            .task_specs()
            .into_iter()
            .map(|spec| TaskConfig {
                id: spec.id,
                kind: spec.kind,
                project_id: None,
                name: spec.name,
            })
            .collect(),
    };
    config.api.endpoint = endpoint.into();
    config.api.public_key = simulator::DEMO_PUBLIC_KEY.into();
    config.api.private_key = Some(simulator::DEMO_PRIVATE_KEY.into());
    config.api.timeout = Duration::from_secs(2);
    config
}

async fn check(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    let client = Arc::new(Client::new(
        config.client_settings()?,
        ExporterMetrics::new(),
    )?);
    let rows = crate::check::poll_once(client, config.task_specs(), config.api.concurrency).await;
    print!("{}", crate::check::table(&rows));
    let failed = rows.iter().filter(|row| row.result.is_err()).count();
    if failed == 0 {
        println!("\nall {} tasks readable", rows.len());
        Ok(ExitCode::SUCCESS)
    } else {
        println!("\n{failed} of {} tasks could not be read", rows.len());
        Ok(ExitCode::from(1))
    }
}
