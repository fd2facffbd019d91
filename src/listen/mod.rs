//! The endpoints' sockets, hardened against clients that hold them: one accept loop per listen
//! address (or per socket systemd passed), every connection registered with a phase and closed
//! by the watchdog when a client holds it too long (`connections`), a bound on open
//! connections that evicts the least useful one so a fresh scrape gets in, a bound on requests
//! handled at once (503 beyond), and accept errors (`EMFILE`, ...) that back off instead of
//! spinning. Plain HTTP and TLS share all of it; TLS adds the handshake under its own deadline.

pub mod admission;
pub mod connections;
mod events;
mod io;
mod socket;

pub use events::collectors;
pub use socket::{bind, raise_open_file_limit, systemd_listeners};

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;
use tracing::{debug, warn};

use crate::config::WebLimits;
use crate::web_config::{LiveWebSecurity, Refusal};
use admission::{WaitingRoom, EVICTION_GRACE};
use connections::{Connection, Registered, Registry};
use events::EVENTS;
use io::{Guarded, Tracked};

/// The largest request head (request line and headers) a client may send; beyond it the answer
/// is 431 and the connection is closed. A Prometheus scrape's head is under 1 KiB and a
/// browser's under 8 KiB; hyper's own bound would be its ~400 KB read buffer, which 1,024
/// connections could fill to ~400 MB.
pub const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// What every connection of a server shares.
struct Shared {
    app: Router,
    web: LiveWebSecurity,
    tls: bool,
    limits: WebLimits,
    registry: Arc<Registry>,
    /// Where newcomers wait for a place at `max_connections`, one for every listener.
    room: WaitingRoom,
    requests: Option<Arc<Semaphore>>,
}

/// Serves `app` on every listener until `shutdown`, then lets open requests finish for a
/// moment. With `tls`, each connection takes the TLS configuration in force when it arrives.
pub async fn serve(
    listeners: Vec<TcpListener>,
    app: Router,
    web: LiveWebSecurity,
    tls: bool,
    limits: WebLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let registry = Arc::new(Registry::default());
    let shared = Arc::new(Shared {
        app,
        web,
        tls,
        limits,
        requests: limits.max_requests.map(|n| Arc::new(Semaphore::new(n))),
        registry: Arc::clone(&registry),
        room: WaitingRoom::default(),
    });
    let watchdog = tokio::spawn(registry.watch(move || limits, shutdown.clone()));
    let mut loops = JoinSet::new();
    for listener in listeners {
        loops.spawn(accept_loop(listener, Arc::clone(&shared), shutdown.clone()));
    }
    while loops.join_next().await.is_some() {}
    watchdog.abort();
    Ok(())
}

/// Whether an accept error says the process or system is out of a resource: then waiting
/// helps and retrying at once only spins.
fn out_of_resources(error: &std::io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM.
    matches!(error.raw_os_error(), Some(24 | 23 | 105 | 12))
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut connections = JoinSet::new();
    let mut backoff: Option<Duration> = None;
    let burst_logged = AtomicBool::new(false);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = None;
                burst_logged.store(false, Ordering::Relaxed);
                let (shared, shutdown) = (Arc::clone(&shared), shutdown.clone());
                let max = shared.limits.max_connections;
                if let Some(registered) = shared.registry.admit(max, EVICTION_GRACE, peer.ip()) {
                    connections.spawn(serve_admitted(stream, peer, registered, shared, shutdown));
                } else {
                    // Every place is held by a connection within its grace: wait for a request.
                    connections.spawn(async move {
                        let admitted = match shared.room.whole_request_arrives(&stream).await {
                            true => shared.registry.admit(max, Duration::ZERO, peer.ip()),
                            false => None,
                        };
                        match admitted {
                            Some(registered) => {
                                serve_admitted(stream, peer, registered, shared, shutdown).await;
                            }
                            None => EVENTS
                                .rejected
                                .with_label_values(&["max_connections"])
                                .inc(),
                        }
                    });
                }
            }
            Err(error) => {
                EVENTS.accept_errors.inc();
                if out_of_resources(&error) {
                    if !burst_logged.swap(true, Ordering::Relaxed) {
                        warn!(
                            %error,
                            open = shared.registry.len(),
                            "cannot accept connections: out of file descriptors or buffers; \
                             backing off (raise LimitNOFILE=, lower web.max_connections)"
                        );
                    }
                    let delay = backoff.map_or(Duration::from_millis(5), |d| {
                        (d * 2).min(Duration::from_secs(1))
                    });
                    backoff = Some(delay);
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.cancelled() => break,
                    }
                } else {
                    debug!(%error, "accept failed");
                }
            }
        }
        while connections.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}

/// A connection with a place: served until it ends or the watchdog closes it.
async fn serve_admitted(
    stream: TcpStream,
    peer: SocketAddr,
    registered: Registered,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    EVENTS.open.inc();
    let connection = Arc::clone(&registered.connection);
    tokio::select! {
        () = handle(stream, peer, &shared, &connection, &shutdown) => {}
        () = connection.close.cancelled() => {
            if let Some(reason) = connection.reason.get() {
                EVENTS.closed.with_label_values(&[reason]).inc();
            }
        }
    }
    drop(registered);
    EVENTS.open.dec();
}

/// One connection: the TLS handshake when serving TLS, then HTTP/1.1.
async fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    connection: &Arc<Connection>,
    shutdown: &CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    if !shared.tls {
        return http(stream, shared, connection, shutdown).await;
    }
    let deadline = shared.limits.tls_handshake_timeout;
    let Some(tls) = shared.web.load().tls.clone() else {
        return;
    };
    match tokio::time::timeout(deadline, crate::web_config::sniff(&stream)).await {
        Ok(crate::web_config::FirstByte::Tls) => {}
        Ok(crate::web_config::FirstByte::PlainHttp) => {
            crate::web_config::refuse_plain_http(peer, stream).await;
            return;
        }
        Ok(crate::web_config::FirstByte::Nothing) => return,
        Err(_) => {
            let detail = format!(
                "sent nothing within {}",
                humantime::format_duration(deadline)
            );
            crate::web_config::record_refusal(peer, Refusal::Timeout, &detail);
            return connection.close_for("tls_handshake");
        }
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    match tokio::time::timeout(deadline, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => http(stream, shared, connection, shutdown).await,
        Ok(Err(error)) => {
            crate::web_config::record_refusal(peer, Refusal::of(&error), &error);
        }
        Err(_) => {
            let detail = format!(
                "no complete handshake within {}",
                humantime::format_duration(deadline)
            );
            crate::web_config::record_refusal(peer, Refusal::Timeout, &detail);
            connection.close_for("tls_handshake");
        }
    }
}

/// HTTP/1.1 on `io`: each request marks the connection busy, its response's end idle; the
/// bytes read and written tell the watchdog what the client does.
async fn http<S>(io: S, shared: &Shared, connection: &Arc<Connection>, shutdown: &CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let app = shared.app.clone();
    let requests = shared.requests.clone();
    let phase = Arc::clone(connection);
    let service =
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            phase.busy();
            let (app, phase, requests) = (app.clone(), Arc::clone(&phase), requests.clone());
            async move {
                let permit = match requests.map(Semaphore::try_acquire_owned) {
                    Some(Err(_)) => {
                        EVENTS.rejected.with_label_values(&["max_requests"]).inc();
                        let busy = axum::http::Response::builder()
                            .status(axum::http::StatusCode::SERVICE_UNAVAILABLE)
                            .header("content-type", "text/plain; charset=utf-8")
                            .header("retry-after", "1")
                            .body(Body::from("too many requests at once (web.max_requests)\n"))
                            .unwrap_or_default();
                        return Ok::<_, Infallible>(
                            busy.map(|body| Body::new(Guarded { body, phase })),
                        );
                    }
                    Some(Ok(permit)) => Some(permit),
                    None => None,
                };
                let response = match app.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                // Held while the handler runs, not while a slow client reads the body.
                drop(permit);
                Ok(response.map(|body| Body::new(Guarded { body, phase })))
            }
        });
    let tracked = Tracked {
        inner: io,
        connection: Arc::clone(connection),
    };
    // A complete request whose client then shuts its write side (TCP half-close, or TLS
    // close_notify as `openssl s_client` sends when its input ends) is still answered: without
    // `half_close`, hyper takes the EOF on a busy connection for an aborted request. The
    // watchdog, not the read side, bounds how long a client may hold the connection.
    let served = hyper::server::conn::http1::Builder::new()
        .half_close(true)
        .max_header_size(MAX_REQUEST_HEAD)
        .serve_connection(hyper_util::rt::TokioIo::new(tracked), service);
    tokio::pin!(served);
    tokio::select! {
        _ = served.as_mut() => {}
        () = shutdown.cancelled() => {
            served.as_mut().graceful_shutdown();
            let _ = served.await;
        }
    }
}
