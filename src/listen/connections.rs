//! Every open connection's phase, and the watchdog that closes the ones a client holds too
//! long: a request head not complete within `read_header_timeout` of its first byte (or of
//! connecting), a keep-alive connection idle past `idle_timeout`, a response the client does not
//! read for `write_timeout`. At `max_connections`, the connection that has sent no complete
//! request for longest makes room for a new one; failing that, the address holding the most
//! places gives one up to a newcomer from an address holding fewer.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::config::WebLimits;

/// Why the server closed a connection: the `reason` of `udts_web_connections_closed_total`.
pub const CLOSE_REASONS: [&str; 5] = [
    "read_header_timeout",
    "idle_timeout",
    "write_timeout",
    "evicted",
    "tls_handshake",
];

/// A duration in whole milliseconds, the unit of the registry's clock.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// What a connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Waiting for (the rest of) a request head: since connecting, or since the first byte
    /// after an idle spell.
    Head = 0,
    /// A request is being answered.
    Busy = 1,
    /// Between requests, keep-alive.
    Idle = 2,
}

/// One connection as the watchdog sees it.
#[derive(Debug)]
pub struct Connection {
    /// The client's address (IPv4-mapped IPv6 as IPv4): whose place this is.
    peer: IpAddr,
    phase: AtomicU8,
    /// Milliseconds after the registry's epoch when the phase began.
    since: AtomicU64,
    /// Milliseconds after the epoch of the last byte written (or the phase's start).
    progress: AtomicU64,
    epoch: Instant,
    /// Cancelled to close the connection.
    pub close: CancellationToken,
    /// Why the server closed it, once it did.
    pub reason: OnceLock<&'static str>,
}

impl Connection {
    fn now(&self) -> u64 {
        millis(self.epoch.elapsed())
    }

    fn enter(&self, phase: Phase) {
        let now = self.now();
        self.since.store(now, Ordering::Relaxed);
        self.progress.store(now, Ordering::Relaxed);
        self.phase.store(phase as u8, Ordering::Release);
    }

    /// The phase now.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            1 => Phase::Busy,
            2 => Phase::Idle,
            _ => Phase::Head,
        }
    }

    /// Bytes arrived: after an idle spell, a new request head has begun.
    pub fn on_read(&self) {
        if self.phase() == Phase::Idle {
            self.enter(Phase::Head);
        }
    }

    /// Bytes of a response left: the client reads.
    pub fn on_write(&self) {
        self.progress.store(self.now(), Ordering::Relaxed);
    }

    /// A complete request head arrived.
    pub fn busy(&self) {
        self.enter(Phase::Busy);
    }

    /// The response is sent (or abandoned): keep-alive from here.
    pub fn idle(&self) {
        self.enter(Phase::Idle);
    }

    /// Closes it, counted under `reason` unless it was already closed.
    pub fn close_for(&self, reason: &'static str) {
        if self.reason.set(reason).is_ok() {
            self.close.cancel();
        }
    }

    /// The reason to close it at `now` (milliseconds after the epoch), if one applies.
    fn overdue(&self, now: u64, limits: &WebLimits) -> Option<&'static str> {
        let since = self.since.load(Ordering::Relaxed);
        match self.phase() {
            Phase::Head if now.saturating_sub(since) > millis(limits.read_header_timeout) => {
                Some("read_header_timeout")
            }
            Phase::Idle if now.saturating_sub(since) > millis(limits.idle_timeout) => {
                Some("idle_timeout")
            }
            Phase::Busy
                if now.saturating_sub(self.progress.load(Ordering::Relaxed))
                    > millis(limits.write_timeout) =>
            {
                Some("write_timeout")
            }
            _ => None,
        }
    }
}

/// The open connections of every listener.
#[derive(Debug)]
pub struct Registry {
    epoch: Instant,
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Connection>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            next: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        }
    }
}

/// A registered connection; leaving the registry when dropped.
pub struct Registered {
    registry: Arc<Registry>,
    id: u64,
    /// The connection's phase and closing token.
    pub connection: Arc<Connection>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Connection>>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers a new connection from `peer`, first making room at `max`:
    ///
    /// 1. The connection that has waited longest for a request head goes, if it has waited at
    ///    least `grace`. The grace is what lets a connection that was just admitted read its
    ///    head: without it, a flood that reconnects as fast as it is evicted (hundreds of
    ///    thousands a minute were seen) evicts every connection within milliseconds, the real
    ///    scrape's among them, and spends the CPU the scrape needs.
    /// 2. Otherwise, when the address holding the most places holds at least two more than
    ///    `peer` does, that address gives up its connection that has been idle (or waiting)
    ///    longest; one answering a request is never cut off. So one address that completes a
    ///    request on every connection and then idles cannot keep every other address out until
    ///    `idle_timeout`, while a newcomer from that same address (a flood reconnecting) never
    ///    takes anyone's place, and Prometheus' keep-alive connection, one place of its
    ///    address, is not what a flood from elsewhere can take.
    ///
    /// Returns `None` when neither makes room (the new one is then refused); idle ones still
    /// close at `idle_timeout`.
    pub fn admit(
        self: &Arc<Self>,
        max: usize,
        grace: Duration,
        peer: IpAddr,
    ) -> Option<Registered> {
        let peer = peer.to_canonical();
        let mut open = self.lock();
        if open.len() >= max {
            let now = millis(self.epoch.elapsed());
            let victim = longest_waiting_head(&open, now, millis(grace))
                .or_else(|| fair_share(&open, peer))?;
            if let Some(connection) = open.remove(&victim) {
                connection.close_for("evicted");
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection {
            peer,
            phase: AtomicU8::new(Phase::Head as u8),
            since: AtomicU64::new(0),
            progress: AtomicU64::new(0),
            epoch: self.epoch,
            close: CancellationToken::new(),
            reason: OnceLock::new(),
        });
        connection.enter(Phase::Head);
        open.insert(id, Arc::clone(&connection));
        Some(Registered {
            registry: Arc::clone(self),
            id,
            connection,
        })
    }

    /// Closes what is overdue under `limits`, every quarter second until `shutdown`.
    pub async fn watch(
        self: Arc<Self>,
        limits: impl Fn() -> WebLimits,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => return,
            }
            let limits = limits();
            let now = millis(self.epoch.elapsed());
            let overdue: Vec<(Arc<Connection>, &'static str)> = self
                .lock()
                .values()
                .filter_map(|c| Some((Arc::clone(c), c.overdue(now, &limits)?)))
                .collect();
            for (connection, reason) in overdue {
                connection.close_for(reason);
            }
        }
    }
}

/// Rule 1 of [`Registry::admit`]: the connection waiting longest for a head, once past `grace`.
fn longest_waiting_head(open: &HashMap<u64, Arc<Connection>>, now: u64, grace: u64) -> Option<u64> {
    open.iter()
        .filter(|(_, c)| c.phase() == Phase::Head && c.reason.get().is_none())
        .min_by_key(|(_, c)| c.since.load(Ordering::Relaxed))
        .filter(|(_, c)| now.saturating_sub(c.since.load(Ordering::Relaxed)) >= grace)
        .map(|(id, _)| *id)
}

/// Rule 2 of [`Registry::admit`]: the longest idle or waiting connection of the address holding
/// the most places, when that is at least two more than `newcomer` holds.
fn fair_share(open: &HashMap<u64, Arc<Connection>>, newcomer: IpAddr) -> Option<u64> {
    let mut places: HashMap<IpAddr, usize> = HashMap::new();
    for connection in open.values() {
        *places.entry(connection.peer).or_default() += 1;
    }
    let theirs = places.get(&newcomer).copied().unwrap_or(0);
    let (hog, most) = places.into_iter().max_by_key(|(_, count)| *count)?;
    if most < theirs + 2 {
        return None;
    }
    open.iter()
        .filter(|(_, c)| c.peer == hog && c.phase() != Phase::Busy && c.reason.get().is_none())
        .min_by_key(|(_, c)| c.since.load(Ordering::Relaxed))
        .map(|(id, _)| *id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const ELSEWHERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn an_address_holding_every_place_gives_one_up_to_another_but_not_to_itself() {
        let (none, long) = (Duration::ZERO, Duration::from_secs(60));
        let registry = Arc::new(Registry::default());
        // ELSEWHERE completes a request on each of four places and idles, keep-alive.
        let held: Vec<Registered> = (0..4)
            .map(|_| {
                let registered = registry.admit(4, none, ELSEWHERE).unwrap();
                registered.connection.busy();
                registered.connection.idle();
                std::thread::sleep(Duration::from_millis(2));
                registered
            })
            .collect();
        // Its own newcomer takes nobody's place.
        assert!(registry.admit(4, long, ELSEWHERE).is_none());
        // A scrape from here gets the place of ELSEWHERE's longest idle connection, also as
        // an IPv4-mapped IPv6 address.
        let mapped = IpAddr::V6(std::net::Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped());
        let scrape = registry.admit(4, long, mapped).unwrap();
        assert_eq!(held[0].connection.reason.get(), Some(&"evicted"));
        assert!(held[1..]
            .iter()
            .all(|h| h.connection.reason.get().is_none()));
        // Three against one: the next from here still gets in; one answering is never cut off.
        held[2].connection.busy();
        held[3].connection.busy();
        let second = registry.admit(4, long, HERE).unwrap();
        assert_eq!(held[1].connection.reason.get(), Some(&"evicted"));
        // Two each, both answering or here's own: nobody gives up a place for a third.
        scrape.connection.busy();
        second.connection.busy();
        assert!(registry.admit(4, long, HERE).is_none());
        assert!(registry.admit(4, long, ELSEWHERE).is_none());
    }

    #[test]
    fn at_the_bound_the_longest_waiting_head_makes_room_and_busy_ones_are_kept() {
        let none = Duration::ZERO;
        let registry = Arc::new(Registry::default());
        let first = registry.admit(2, none, HERE).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let second = registry.admit(2, none, HERE).unwrap();
        // The first sent nothing for longest: it goes.
        let third = registry.admit(2, none, HERE).unwrap();
        assert_eq!(first.connection.reason.get(), Some(&"evicted"));
        assert!(first.connection.close.is_cancelled());
        assert!(second.connection.reason.get().is_none());
        // Both remaining are answering: a new one is refused rather than cut one off; nor is a
        // connection that answered and waits, keep-alive, for its next request.
        second.connection.busy();
        third.connection.busy();
        assert!(registry.admit(2, none, HERE).is_none());
        third.connection.idle();
        assert!(registry.admit(2, none, HERE).is_none());
        assert!(third.connection.reason.get().is_none());
        // Once it sends again, its head is the newest: the older one goes first.
        second.connection.idle();
        std::thread::sleep(Duration::from_millis(5));
        third.connection.on_read();
        std::thread::sleep(Duration::from_millis(5));
        second.connection.on_read();
        assert!(registry.admit(2, none, HERE).is_some());
        assert_eq!(third.connection.reason.get(), Some(&"evicted"));
    }

    #[test]
    fn a_head_younger_than_the_grace_is_not_evicted() {
        let registry = Arc::new(Registry::default());
        let first = registry.admit(1, Duration::ZERO, HERE).unwrap();
        // Just admitted: it gets its grace to send a head, and the newcomer is refused.
        assert!(registry.admit(1, Duration::from_secs(60), HERE).is_none());
        assert!(first.connection.reason.get().is_none());
        std::thread::sleep(Duration::from_millis(20));
        // Past a shorter grace it makes room.
        let second = registry.admit(1, Duration::from_millis(10), HERE).unwrap();
        assert_eq!(first.connection.reason.get(), Some(&"evicted"));
        assert!(second.connection.reason.get().is_none());
    }

    #[test]
    fn each_phase_has_its_deadline() {
        let limits = WebLimits {
            read_header_timeout: Duration::from_millis(100),
            idle_timeout: Duration::from_millis(300),
            write_timeout: Duration::from_millis(200),
            ..WebLimits::default()
        };
        let registry = Arc::new(Registry::default());
        let head = registry
            .admit(10, Duration::ZERO, HERE)
            .unwrap()
            .connection
            .clone();
        let at = |ms| head.since.load(Ordering::Relaxed) + ms;
        assert_eq!(head.overdue(at(50), &limits), None);
        assert_eq!(head.overdue(at(150), &limits), Some("read_header_timeout"));
        head.busy();
        assert_eq!(head.overdue(at(150), &limits), None);
        assert_eq!(head.overdue(at(250), &limits), Some("write_timeout"));
        head.idle();
        assert_eq!(head.overdue(at(250), &limits), None);
        assert_eq!(head.overdue(at(350), &limits), Some("idle_timeout"));
        // A byte after the idle spell starts a head, with its own deadline.
        head.on_read();
        assert_eq!(head.phase(), Phase::Head);
    }
}
