//! Who gets in at `web.max_connections`. A new connection takes the place of the one that has
//! waited longest for a request head, once that one has had its grace; when every waiting
//! connection is within its grace (a flood that reconnects as fast as it is closed), the
//! newcomer waits a moment in a bounded waiting room and gets in only if a whole request
//! arrives. A scraper sends its request the moment it connects; a connection that sends nothing,
//! or a head a line at a time, never has one, and the waiting room pushes out its oldest
//! occupant for each newcomer, so the flood cannot keep a scrape out by filling it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// How long a new connection may wait for its request head before a newcomer can evict it.
pub const EVICTION_GRACE: Duration = Duration::from_secs(1);

/// How long a connection refused a place waits for its whole request to arrive.
const PATIENCE: Duration = Duration::from_millis(250);

/// How many connections wait at once; a newcomer pushes the oldest out.
const ROOM: usize = 256;

/// Connections refused a place, waiting for a whole request.
#[derive(Debug, Default)]
pub struct WaitingRoom {
    next: AtomicU64,
    waiting: Mutex<VecDeque<(u64, CancellationToken)>>,
}

impl WaitingRoom {
    fn enter(&self) -> (u64, CancellationToken) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let pushed_out = CancellationToken::new();
        let mut waiting = self
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while waiting.len() >= ROOM {
            if let Some((_, oldest)) = waiting.pop_front() {
                oldest.cancel();
            }
        }
        waiting.push_back((id, pushed_out.clone()));
        (id, pushed_out)
    }

    fn leave(&self, id: u64) {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|(waiting, _)| *waiting != id);
    }

    /// Waits (at most `PATIENCE`, and only until pushed out) for a whole request on `stream`.
    pub async fn whole_request_arrives(&self, stream: &TcpStream) -> bool {
        let (id, pushed_out) = self.enter();
        let arrived = tokio::select! {
            arrived = tokio::time::timeout(PATIENCE, async {
                if stream.readable().await.is_err() {
                    return false;
                }
                // Peeking leaves the bytes (and tokio's readiness) in place: poll for the rest.
                while !request_waiting(stream) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                true
            }) => arrived.unwrap_or(false),
            () = pushed_out.cancelled() => false,
        };
        self.leave(id);
        arrived
    }
}

/// Whether a whole request is already waiting on `stream`, unread: a request head (plain
/// HTTP) or a whole first TLS record (the ClientHello).
pub fn request_waiting(stream: &TcpStream) -> bool {
    #[cfg(unix)]
    {
        use rustix::net::{recv, RecvFlags};
        let mut buffer = [0u8; 4096];
        let Ok((peeked, _)) = recv(stream, &mut buffer, RecvFlags::PEEK | RecvFlags::DONTWAIT)
        else {
            return false;
        };
        whole_request(&buffer[..peeked])
    }
    #[cfg(not(unix))]
    {
        let _ = stream;
        false
    }
}

/// Whether `bytes`, the start of a connection, hold a whole request head or TLS record.
pub fn whole_request(bytes: &[u8]) -> bool {
    match bytes {
        // A TLS handshake record: type 22, version, length.
        [0x16, _, _, high, low, ..] => {
            5 + usize::from(u16::from_be_bytes([*high, *low])) <= bytes.len()
        }
        [0x16, ..] => false,
        _ => bytes.windows(4).any(|window| window == b"\r\n\r\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_head_or_record_is_told_from_a_part() {
        assert!(whole_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(!whole_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"));
        assert!(!whole_request(b""));
        assert!(whole_request(&[0x16, 3, 1, 0, 2, 1, 2]));
        assert!(!whole_request(&[0x16, 3, 1, 0, 3, 1, 2]));
        assert!(!whole_request(&[0x16, 3]));
    }

    #[tokio::test]
    async fn a_newcomer_pushes_the_longest_waiting_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let room = std::sync::Arc::new(WaitingRoom::default());
        // ROOM silent connections wait; one more pushes the first out before its patience ends.
        let mut clients = Vec::new();
        let mut waits = Vec::new();
        for _ in 0..=ROOM {
            clients.push(TcpStream::connect(addr).await.unwrap());
            let (stream, _) = listener.accept().await.unwrap();
            let room = std::sync::Arc::clone(&room);
            waits.push(tokio::spawn(async move {
                let started = tokio::time::Instant::now();
                (room.whole_request_arrives(&stream).await, started.elapsed())
            }));
            tokio::task::yield_now().await;
        }
        let (arrived, waited) = waits.remove(0).await.unwrap();
        assert!(!arrived);
        assert!(waited < PATIENCE, "{waited:?}");
        // A client that sends its request gets in.
        use tokio::io::AsyncWriteExt;
        let mut scraper = TcpStream::connect(addr).await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        scraper.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        assert!(room.whole_request_arrives(&stream).await);
    }
}
