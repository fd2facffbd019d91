//! The endpoints' sockets, hardened against clients that hold them: one accept loop per listen
//! address (or per socket systemd passed), every connection registered with a phase and closed
//! by the watchdog when a client holds it too long (`connections`), a bound on open
//! connections that evicts the least useful one so a fresh scrape gets in, a bound on requests
//! handled at once (503 beyond), and accept errors (`EMFILE`, ...) that back off instead of
//! spinning. Plain HTTP and TLS share all of it; TLS adds the handshake under its own deadline.

pub mod admission;
pub mod connections;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use prometheus::core::Collector;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;
use tracing::{debug, warn};

use crate::config::WebLimits;
use crate::web_config::{LiveWebSecurity, Refusal};
use admission::{WaitingRoom, EVICTION_GRACE};
use connections::{Connection, Registered, Registry, CLOSE_REASONS};

/// The web counters: one server per process, adopted by the exporter's registry.
struct WebEvents {
    open: IntGauge,
    closed: IntCounterVec,
    accept_errors: IntCounter,
    rejected: IntCounterVec,
}

fn must<T>(metric: prometheus::Result<T>) -> T {
    metric.unwrap_or_else(|error| panic!("invalid metric definition: {error}"))
}

static EVENTS: LazyLock<WebEvents> = LazyLock::new(|| {
    let closed = must(IntCounterVec::new(
        Opts::new(
            "udts_web_connections_closed_total",
            "Connections the exporter closed because the client held them too long, or to make room, by reason.",
        ),
        &["reason"],
    ));
    for reason in CLOSE_REASONS {
        closed.with_label_values(&[reason]);
    }
    let rejected = must(IntCounterVec::new(
        Opts::new(
            "udts_web_requests_rejected_total",
            "Requests or connections refused at a bound, by reason (max_requests: 503; max_connections: every place was held and no whole request arrived while the connection waited).",
        ),
        &["reason"],
    ));
    for reason in ["max_requests", "max_connections"] {
        rejected.with_label_values(&[reason]);
    }
    WebEvents {
        open: must(IntGauge::new(
            "udts_web_open_connections",
            "Connections open to the exporter's endpoints.",
        )),
        closed,
        accept_errors: must(IntCounter::new(
            "udts_web_accept_errors_total",
            "Failed accepts (EMFILE, ENFILE, ENOBUFS, ...): each makes the listener back off.",
        )),
        rejected,
    }
});

/// The web counters, for the exporter's registry.
pub fn collectors() -> Vec<Box<dyn Collector>> {
    vec![
        Box::new(EVENTS.open.clone()),
        Box::new(EVENTS.closed.clone()),
        Box::new(EVENTS.accept_errors.clone()),
        Box::new(EVENTS.rejected.clone()),
    ]
}

/// Raises the soft open-file limit to the hard one, as the Go runtime does for every Go
/// exporter: at systemd's soft 1,024 a flood of idle connections would otherwise exhaust the
/// descriptors before any timeout could close them. Returns the soft limit in force.
pub fn raise_open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource};
        let mut limit = getrlimit(Resource::Nofile);
        if let Some(hard) = limit.maximum {
            if limit.current.is_some_and(|soft| soft < hard) {
                limit.current = Some(hard);
                if let Err(error) = setrlimit(Resource::Nofile, limit) {
                    debug!(%error, "cannot raise the open-file limit");
                }
            }
        }
        let soft = getrlimit(Resource::Nofile).current;
        match soft {
            Some(soft) if soft < 4096 => warn!(
                limit = soft,
                "the open-file limit is low: a flood of connections can exhaust it; raise \
                 LimitNOFILE= (systemd) or ulimit -n"
            ),
            Some(soft) => debug!(limit = soft, "open-file limit"),
            None => debug!("no open-file limit"),
        }
        soft.or(Some(u64::MAX))
    }
    #[cfg(not(unix))]
    None
}

/// Binds a listener with the kernel's largest accept backlog (`net.core.somaxconn`), as Go's
/// net package does, rather than tokio's 1,024: under a flood of connections a fuller backlog
/// drops the SYN of a real scrape, which then waits for its retransmission (1 s, 3 s, 7 s).
pub fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let backlog = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .unwrap_or(4096)
        .clamp(128, 65_535);
    let socket = match address {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(backlog)
}

/// The TCP sockets systemd passed (socket activation, `LISTEN_FDS`), in order.
pub fn systemd_listeners() -> std::io::Result<Vec<TcpListener>> {
    let mut passed = listenfd::ListenFd::from_env();
    let mut listeners = Vec::new();
    for index in 0..passed.len() {
        if let Some(listener) = passed.take_tcp_listener(index)? {
            listener.set_nonblocking(true)?;
            listeners.push(TcpListener::from_std(listener)?);
        }
    }
    if listeners.is_empty() {
        return Err(std::io::Error::other(
            "--web.systemd-socket: systemd passed no TCP socket (LISTEN_FDS is unset or not \
             for this process); start it from udts-exporter.socket, or leave the flag out",
        ));
    }
    Ok(listeners)
}

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
                if let Some(registered) = shared.registry.admit(max, EVICTION_GRACE) {
                    connections.spawn(serve_admitted(stream, peer, registered, shared, shutdown));
                } else {
                    // Every place is held by a connection within its grace: wait for a request.
                    connections.spawn(async move {
                        let admitted = match shared.room.whole_request_arrives(&stream).await {
                            true => shared.registry.admit(max, Duration::ZERO),
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
            crate::web_config::record_refusal(peer, Refusal::Timeout, &"sent nothing");
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
            crate::web_config::record_refusal(peer, Refusal::Timeout, &"no complete handshake");
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
    let served = hyper::server::conn::http1::Builder::new()
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

/// A response body that marks its connection idle once it is sent (or dropped).
struct Guarded {
    body: Body,
    phase: Arc<Connection>,
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.phase.idle();
    }
}

/// A stream that tells its connection when bytes come in and go out.
struct Tracked<S> {
    inner: S,
    connection: Arc<Connection>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.connection.on_read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.connection.on_write();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.connection.on_write();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
