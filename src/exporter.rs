//! Wires the pieces together: runtime (settings and clients), inventory (which tasks),
//! store, poller, publisher and HTTP server, all stopped by one cancellation token; and
//! [`Reloader`], which applies a new configuration without a restart. The binary and the
//! end-to-end tests both start the exporter here.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{Config, ConfigError, Settings};
use crate::discovery::Inventory;
use crate::exposition::Publisher;
use crate::metrics::ExporterMetrics;
use crate::monitor::MonitorBoard;
use crate::poller::Poller;
use crate::runtime::Runtime;
use crate::server::{self, AppState, Reload};
use crate::source::{mysql_readers, ReaderFactory, SourceBoard, SourceSupervisor};
use crate::state::Store;
use crate::time::unix_now;
use crate::web_config::{LiveWebSecurity, WebSecurity};

/// Produces the configuration to run with: at start-up and on every reload.
pub type ConfigLoader = Arc<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>;

/// A started exporter.
pub struct RunningExporter {
    /// Where `/metrics` is served (the first listener's address).
    pub local_addr: SocketAddr,
    /// Every listener's address.
    pub local_addrs: Vec<SocketAddr>,
    /// Applies a new configuration (SIGHUP, `POST /-/reload`).
    pub reloader: Arc<Reloader>,
    tasks: Vec<JoinHandle<()>>,
    server: JoinHandle<std::io::Result<()>>,
}

impl RunningExporter {
    /// Waits until everything has stopped (after the shutdown token is cancelled, or the
    /// server failed).
    pub async fn wait(self) -> anyhow::Result<()> {
        let served = self.server.await;
        for task in self.tasks {
            let _ = task.await;
        }
        served??;
        Ok(())
    }
}

/// Re-reads the configuration and applies it: tasks and accounts come and go, unchanged tasks
/// keep their state. A configuration that does not validate is rejected and the running one
/// stays in force.
///
/// A reload reads files, parses certificates and builds HTTP clients: blocking work, which
/// [`Reloader::reload_in_background`] moves to tokio's blocking pool so scrapes never wait for
/// it. Reloads run one at a time (`one_at_a_time`), so two at once leave the later one's
/// configuration in force whole, never the web security of one beside the tasks of the other.
pub struct Reloader {
    loader: ConfigLoader,
    one_at_a_time: std::sync::Mutex<()>,
    web: LiveWebSecurity,
    runtime: Arc<ArcSwap<Runtime>>,
    inventory: Arc<Inventory>,
    publisher: Arc<Publisher>,
    sources: Arc<SourceSupervisor>,
    metrics: ExporterMetrics,
}

impl Reloader {
    /// [`Reloader::reload`] on the blocking pool: what the async callers (`POST /-/reload`,
    /// SIGHUP) use.
    pub async fn reload_in_background(self: Arc<Self>) -> anyhow::Result<()> {
        tokio::task::spawn_blocking(move || Reloader::reload(&self))
            .await
            .context("the reload did not finish")?
    }

    /// Loads, validates and applies the configuration; on error nothing changes. Blocks the
    /// calling thread, also while another reload finishes.
    pub fn reload(&self) -> anyhow::Result<()> {
        let _turn = self
            .one_at_a_time
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let result = self.try_reload();
        match &result {
            Ok(()) => {
                self.metrics.reload_successful.set(1.0);
                self.metrics.reload_success_timestamp.set(unix_now());
                info!("configuration reloaded");
            }
            Err(error) => {
                self.metrics.reload_successful.set(0.0);
                warn!("configuration rejected, the previous one stays in force: {error:#}");
            }
        }
        result
    }

    fn try_reload(&self) -> anyhow::Result<()> {
        let config = (self.loader)()?;
        let settings = config.resolve()?;
        log_source_warnings(&settings);
        let old = self.runtime.load_full();
        if settings.listen_addresses != old.settings.listen_addresses {
            warn!("web.listen_address changed; it takes effect at the next restart");
        }
        if settings.web_limits != old.settings.web_limits {
            warn!("web timeouts or bounds changed; they take effect at the next restart");
        }
        // Users, headers, certificates and TLS settings apply to new requests and connections
        // at once; switching between HTTP and HTTPS needs a new listener, so a restart.
        if settings.web_security.tls.is_some() == old.settings.web_security.tls.is_some() {
            self.web.store(Arc::new(settings.web_security.clone()));
        } else {
            warn!("web.config_file switches between HTTP and HTTPS; that takes effect at the next restart");
        }
        let runtime = Runtime::new(settings, Arc::new(self.metrics.clone()))
            .context("cannot build the API clients")?;
        let discovery_enabled = runtime.settings.discovery.is_some();
        let static_tasks = runtime.settings.static_tasks.clone();
        let shard = runtime.settings.shard;
        self.publisher
            .set_options(runtime.settings.exposition.clone());
        self.sources
            .apply(&runtime.settings.sources, runtime.settings.interval);
        self.runtime.store(Arc::new(runtime));
        self.inventory
            .configure(static_tasks, shard, discovery_enabled);
        if discovery_enabled {
            self.inventory.refresh_now.notify_one();
        }
        Ok(())
    }
}

impl Reload for Reloader {
    fn reload(self: Arc<Self>) -> futures_util::future::BoxFuture<'static, anyhow::Result<()>> {
        Box::pin(self.reload_in_background())
    }
}

/// Starts polling and serving `config` on `listener`; a reload re-applies the same config.
pub async fn start(
    config: &Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningExporter> {
    let config = config.clone();
    start_with_loader(Arc::new(move || Ok(config.clone())), listener, shutdown).await
}

/// Starts polling and serving on `listener`, with the configuration `loader` returns (now and
/// on every reload). Returns once everything runs; stops when `shutdown` is cancelled.
pub async fn start_with_loader(
    loader: ConfigLoader,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningExporter> {
    let settings = loader()?.resolve()?;
    start_with_settings(settings, loader, mysql_readers(), vec![listener], shutdown).await
}

/// Like [`start_with_loader`], with the loader's configuration already resolved (so key files
/// and the web config are read once at start-up), and sources read by `readers`
/// ([`crate::source::mysql_readers`] but in the demo).
pub async fn start_with_settings(
    settings: Settings,
    loader: ConfigLoader,
    readers: ReaderFactory,
    listeners: Vec<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningExporter> {
    let local_addrs = listeners
        .iter()
        .map(TcpListener::local_addr)
        .collect::<std::io::Result<Vec<_>>>()?;
    let local_addr = *local_addrs
        .first()
        .ok_or_else(|| anyhow::anyhow!("no listener to serve on"))?;
    let web_limits = settings.web_limits;
    log_source_warnings(&settings);
    let metrics = ExporterMetrics::new();
    let store = Arc::new(Store::new());
    let board = Arc::new(SourceBoard::default());
    let monitor = Arc::new(MonitorBoard::default());
    let publisher = Arc::new(Publisher::new(
        Arc::clone(&store),
        Arc::clone(&board),
        Arc::clone(&monitor),
        metrics.clone(),
        settings.exposition.clone(),
    ));
    let sources = Arc::new(SourceSupervisor::new(
        board,
        metrics.sources.clone(),
        readers,
        shutdown.clone(),
    ));
    sources.apply(&settings.sources, settings.interval);
    let inventory = Arc::new(Inventory::new(Arc::clone(&store), metrics.clone()));
    inventory.configure(
        settings.static_tasks.clone(),
        settings.shard,
        settings.discovery.is_some(),
    );
    let telemetry_path = settings.telemetry_path.clone();
    let lifecycle = settings.enable_lifecycle;
    let web: LiveWebSecurity = Arc::new(ArcSwap::from_pointee(settings.web_security.clone()));
    let serve_https = settings.web_security.tls.is_some();
    let runtime = Arc::new(ArcSwap::from_pointee(Runtime::new(
        settings,
        Arc::new(metrics.clone()),
    )?));
    metrics.reload_successful.set(1.0);
    metrics.reload_success_timestamp.set(unix_now());
    publisher.render_now();
    let monitoring = crate::monitor::run(
        monitor,
        Arc::clone(&store),
        Arc::clone(&runtime),
        shutdown.clone(),
    );

    let ready = Arc::new(AtomicBool::new(false));
    let reloader = Arc::new(Reloader {
        loader,
        one_at_a_time: std::sync::Mutex::new(()),
        web: Arc::clone(&web),
        runtime: Arc::clone(&runtime),
        inventory: Arc::clone(&inventory),
        publisher: Arc::clone(&publisher),
        sources,
        metrics: metrics.clone(),
    });
    let (first_cycle_done, first_cycle) = oneshot::channel();
    let poller = Poller {
        runtime: Arc::clone(&runtime),
        store,
        inventory: Arc::clone(&inventory),
        metrics,
        first_cycle_done: Some(first_cycle_done),
        history_attempts: Default::default(),
    };
    let app = WebSecurity::protect(
        Arc::clone(&web),
        server::app(AppState {
            publisher: Arc::clone(&publisher),
            ready: Arc::clone(&ready),
            telemetry_path,
            reloader: Arc::clone(&reloader) as Arc<dyn Reload>,
            lifecycle,
        }),
    );
    // Ready once the first cycle's results are what /metrics serves.
    let readiness = {
        let publisher = Arc::clone(&publisher);
        async move {
            if first_cycle.await.is_ok() {
                publisher.render_in_background().await;
                ready.store(true, Ordering::Release);
            }
        }
    };

    // Discovery lists once before the first poll cycle, so that cycle covers every task.
    let scheduler = {
        let shutdown = shutdown.clone();
        async move {
            let first = runtime.load_full();
            // With list-first polling the first cycle lists anyway.
            if !first.settings.list_first {
                tokio::select! {
                    _ = inventory.refresh(&first) => {}
                    () = shutdown.cancelled() => return,
                }
            }
            tokio::spawn(Arc::clone(&inventory).run(runtime, shutdown.clone()));
            poller.run(shutdown).await;
        }
    };
    let tasks = vec![
        tokio::spawn(scheduler),
        tokio::spawn(monitoring),
        tokio::spawn(readiness),
        tokio::spawn(publisher.run(shutdown.clone())),
    ];
    let server_shutdown = shutdown.clone();
    let server = tokio::spawn(async move {
        let result = crate::listen::serve(
            listeners,
            app,
            web,
            serve_https,
            web_limits,
            server_shutdown,
        )
        .await;
        // If the server dies, nothing is served: stop polling too rather than run blind.
        shutdown.cancel();
        result
    });
    Ok(RunningExporter {
        local_addr,
        local_addrs,
        reloader,
        tasks,
        server,
    })
}

/// Says once per start-up or reload what in `[[sources]]` cannot work as written.
fn log_source_warnings(settings: &Settings) {
    for warning in settings.source_warnings() {
        warn!("{warning}");
    }
}
