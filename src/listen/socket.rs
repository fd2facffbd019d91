//! Getting the listening sockets: binding with the kernel's largest backlog, or taking the ones
//! systemd passed; and the open-file limit that a flood of connections would otherwise exhaust.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tracing::{debug, warn};

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
/// The kernel caps a larger backlog at `somaxconn`, so asking for the most gives exactly that
/// without reading `/proc/sys/net/core/somaxconn`, which systemd's `ProcSubset=pid` (as the
/// shipped unit sets) hides.
pub fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    // tokio passes it on as a C int.
    let backlog = i32::MAX.unsigned_abs();
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
