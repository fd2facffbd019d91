//! Wires the pieces together: client, store, poller, publisher and HTTP server, all stopped by
//! one cancellation token. The binary and the end-to-end tests both start the exporter here.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::Client;
use crate::config::Config;
use crate::exposition::Publisher;
use crate::metrics::ExporterMetrics;
use crate::poller::Poller;
use crate::server::{self, AppState};
use crate::state::Store;

/// A started exporter.
pub struct RunningExporter {
    /// Where `/metrics` is served.
    pub local_addr: SocketAddr,
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

/// Starts polling and serving on `listener`. Returns once everything runs; stops when
/// `shutdown` is cancelled.
pub async fn start(
    config: &Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningExporter> {
    let local_addr = listener.local_addr()?;
    let metrics = ExporterMetrics::new();
    let client = Arc::new(Client::new(config.client_settings()?, metrics.clone())?);
    let store = Arc::new(Store::new());
    store.set_tasks(config.task_specs());
    let publisher = Arc::new(Publisher::new(Arc::clone(&store), metrics.clone()));
    publisher.render_now();
    let ready = Arc::new(AtomicBool::new(false));

    let poller = Poller {
        client,
        store,
        publisher: Arc::clone(&publisher),
        metrics,
        interval: config.poll.interval,
        concurrency: config.api.concurrency,
        timeout: config.api.timeout,
        ready: Arc::clone(&ready),
    };
    let app = server::app(AppState {
        publisher: Arc::clone(&publisher),
        ready,
        telemetry_path: config.web.telemetry_path.clone(),
    });

    let tasks = vec![
        tokio::spawn(poller.run(shutdown.clone())),
        tokio::spawn(publisher.run(shutdown.clone())),
    ];
    let server_shutdown = shutdown.clone();
    let server = tokio::spawn(async move {
        let result = server::serve(listener, app, server_shutdown).await;
        // If the server dies, nothing is served: stop polling too rather than run blind.
        shutdown.cancel();
        result
    });
    Ok(RunningExporter {
        local_addr,
        tasks,
        server,
    })
}
