//! [`Server`]: HTTP/1.1 connections with a time limit on request heads, a
//! limit on how many are served at once, and a graceful stop that no
//! client can hold up.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ::axum::body::Body;
use ::axum::http::{Request, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, TryAcquireError};

/// The most a connection's read buffer holds before a head without its end
/// gets 431: far past a Kustomer delivery's head (well under 8 KiB), and a
/// sixth of hyper's default (about 400 KB), which each of a thousand
/// connections sending a head slowly could hold. hyper checks it between
/// reads, so a head that arrives all at once can be read whole up to about
/// twice this.
pub const MAX_HEAD: usize = 64 * 1024;

/// Serves an axum app (a [`router`](super::router) mounted in it) the way a
/// receiver facing the internet needs, where `axum::serve` does not:
///
/// - **A time limit on request heads** ([`with_head_timeout`](Self::with_head_timeout),
///   default 30 s): a connection must send a whole request head (method,
///   path, headers) within it of opening, or of its previous answer (a
///   keep-alive connection idling between deliveries), or it is closed. With
///   `axum::serve`, a client that opens connections and sends nothing, or
///   its headers a byte at a time, holds each (and a file descriptor) for as
///   long as it likes. A body that stalls has the receiver's own limit
///   ([`Receiver::with_read_timeout`](crate::receiver::Receiver::with_read_timeout), 408).
/// - **At most so many connections at once** ([`with_max_connections`](Self::with_max_connections),
///   default 1,024), so that many clients at once, each holding a body of up
///   to the receiver's size limit, cannot exhaust the process's memory or
///   file descriptors. At the limit, with a connection waiting, the oldest
///   connection that has had no request in progress for
///   [`IDLE_BEFORE_MAKING_ROOM`] (idle between requests, silent since it
///   opened, or sending its head or TLS hello that slowly), or that has none
///   now and had only refusals (a 4xx but 409, or 501) answered on it, is
///   closed at once to make room (a head it is sending is cut short:
///   [`MAKING_ROOM_GRACE`]); failing that, one with only refusals answered
///   whose request's body has been arriving for a second (a Kustomer event
///   comes whole) is closed, its request cut short (nothing of it was
///   handled); with a warning at most once a minute. A new connection waits
///   in the system's backlog while every connection has a request in
///   progress or has just had one (said in a warning at most once a minute
///   too). So clients that open connections and send nothing, a byte of a
///   head or body now and then, or requests that are refused cannot keep
///   Kustomer's deliveries out for the time limit on heads (a flood of new
///   connections, faster than the limit a second, needs a proxy or a
///   firewall in front).
///   Out of file descriptors (the process's limit on open files below the
///   limit on connections), an accept that fails is taken the same way:
///   the oldest idle connection is closed to make room, and the failure is
///   logged at most once a minute.
/// - **A graceful stop** ([`serve`](Self::serve)'s `shutdown`, such as
///   [`stop_signal`]): no more
///   connections are taken; a request in progress (its body being read, its
///   handler running, its answer being written) is finished; every other
///   connection is closed, including one in the middle of sending a head,
///   which is dropped a second after the stop
///   ([`with_stop_grace`](Self::with_stop_grace)) rather than waited for
///   until its time limit. A delivery that was not answered was not
///   acknowledged: Kustomer sends it again.
///
/// HTTP/1.1 only, as Kustomer posts; over TLS with [`with_tls`](Self::with_tls)
/// (feature `axum-tls`), whose handshake must also be done within the time
/// limit on heads (a limit of its own: the first head's then starts). Clones share the count of open connections. Each request
/// carries the client's address as axum's `ConnectInfo<SocketAddr>`, as
/// `axum::serve` gives it with `into_make_service_with_connect_info`, for an
/// allow-list of Kustomer's addresses, a limit per client, or a log.
///
/// ```no_run
/// use kustomer_webhooks::axum::{Server, stop_signal};
/// # use kustomer_webhooks::{Dispatcher, receiver::Receiver, verify::Verifier};
/// # async fn run(receiver: Receiver) -> std::io::Result<()> {
/// use std::time::Duration;
///
/// let app = axum::Router::new().nest_service("/kustomer", kustomer_webhooks::axum::router(receiver));
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
/// let server = Server::new()
///     .with_head_timeout(Duration::from_secs(30))
///     .with_max_connections(1024);
/// // On Ctrl-C or SIGTERM, what is in progress finishes and is answered.
/// server.serve(listener, app, stop_signal()).await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Server {
    head_timeout: Duration,
    stop_grace: Duration,
    slots: Arc<Semaphore>,
    max: usize,
    /// Connections accepted and not yet closed (the accept loop holds a
    /// slot while it waits, so the slots do not say).
    open: Arc<AtomicUsize>,
    /// Connections closed to make room at the limit.
    closed_at_limit: Arc<AtomicU64>,
    /// Requests in progress over every connection.
    in_progress: Arc<AtomicUsize>,
    /// Requests whose head could not be read, answered by hyper itself.
    unreadable: Arc<Unreadable>,
    #[cfg(feature = "axum-tls")]
    tls: Option<super::Tls>,
    /// TLS handshakes that failed or were not done in time.
    #[cfg(feature = "axum-tls")]
    handshakes_failed: Arc<AtomicU64>,
}

impl Server {
    /// Heads within 30 seconds, at most 1,024 connections at once, one
    /// second of grace after a stop.
    pub fn new() -> Self {
        Self {
            head_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(1),
            slots: Arc::new(Semaphore::new(1024)),
            max: 1024,
            open: Arc::default(),
            closed_at_limit: Arc::default(),
            in_progress: Arc::default(),
            unreadable: Arc::default(),
            #[cfg(feature = "axum-tls")]
            tls: None,
            #[cfg(feature = "axum-tls")]
            handshakes_failed: Arc::default(),
        }
    }

    /// A connection must send each request head within `timeout` of
    /// opening, or of its previous answer, or it is closed. Zero is taken
    /// as one millisecond, and more than [`MAX_HEAD_TIMEOUT`] (a day) as
    /// that.
    pub fn with_head_timeout(mut self, timeout: Duration) -> Self {
        self.head_timeout = timeout.clamp(Duration::from_millis(1), MAX_HEAD_TIMEOUT);
        self
    }

    /// After a stop, a connection with no request in progress (one sending
    /// a head, or the last bytes of an answer still being written) is given
    /// `grace` before it is closed. A request whose head was begun before
    /// the stop and completes in that time is served; one in progress at
    /// the stop is finished whatever its length. A connection that has sent
    /// nothing, or nothing the server has read yet, is closed at once, as an
    /// idle one is.
    pub fn with_stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    /// At most `max` connections at once (at least one). At the limit, the
    /// oldest connection with no request in progress for
    /// [`IDLE_BEFORE_MAKING_ROOM`] (or none now, and only refusals answered
    /// on it) is closed to make room, or else one with only refusals whose
    /// request bodies arrive a byte at a time, its request cut short (see
    /// the type's docs); while there is none, the next wait in the system's
    /// backlog until one closes. A clone made before this call keeps its own
    /// count.
    pub fn with_max_connections(mut self, max: usize) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        self.slots = Arc::new(Semaphore::new(max));
        self.max = max;
        self.open = Arc::default();
        self
    }

    /// Serves HTTPS: each connection's TLS handshake first, which must be
    /// done within the time limit on heads (a client that does not trust the
    /// certificate, or sends no hello, is closed, logged at `debug`).
    #[cfg(feature = "axum-tls")]
    pub fn with_tls(mut self, tls: super::Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The TLS it serves with, if any: [`reload`](super::Tls::reload) on it,
    /// or on any clone of it, changes the certificate served.
    #[cfg(feature = "axum-tls")]
    pub fn tls(&self) -> Option<&super::Tls> {
        self.tls.as_ref()
    }

    /// TLS handshakes that failed (a client that does not trust the
    /// certificate, one that speaks no TLS) or were not done within the
    /// time limit on heads, since the server was made. Clones share the
    /// count. Kustomer's deliveries failing this way never reach the
    /// receiver, so this is where an expired or wrong certificate shows.
    #[cfg(feature = "axum-tls")]
    pub fn tls_handshakes_failed(&self) -> u64 {
        self.handshakes_failed.load(Ordering::Relaxed)
    }

    /// The time limit on request heads.
    pub fn head_timeout(&self) -> Duration {
        self.head_timeout
    }

    /// The grace after a stop for connections with nothing in progress.
    pub fn stop_grace(&self) -> Duration {
        self.stop_grace
    }

    /// Connections open now (for a gauge).
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Requests in progress now, over every connection: from the call of
    /// the app (once a request's head has arrived) until its answer is
    /// written. Clones share the count.
    pub fn requests_in_progress(&self) -> usize {
        self.in_progress.load(Ordering::Relaxed)
    }

    /// The most connections served at once.
    pub fn max_connections(&self) -> usize {
        self.max
    }

    /// Connections closed to make room for a new one at the limit, since the
    /// server was made (clones share it).
    pub fn connections_closed_at_limit(&self) -> u64 {
        self.closed_at_limit.load(Ordering::Relaxed)
    }

    /// Requests whose head could not be read as HTTP/1 (bytes that are not
    /// a request, such as a TLS handshake sent to a plain-HTTP port; a head
    /// too large; a malformed `Content-Length`), since the server was made
    /// (clones share it). HTTP's own layer answers them (400, 414 or 431)
    /// before any app sees them, so the receiver neither counts nor logs
    /// them: the server logs them at `info`, at most one line a minute.
    pub fn requests_unreadable(&self) -> u64 {
        self.unreadable.count.load(Ordering::Relaxed)
    }

    /// Its state in Prometheus's text exposition format, for a `/metrics`
    /// endpoint beside [`Counters::prometheus`](crate::receiver::Counters::prometheus):
    /// the gauges `kustomer_webhooks_connections_open` and
    /// `kustomer_webhooks_connections_max`, the counter
    /// `kustomer_webhooks_connections_closed_at_limit_total`, the counter
    /// `kustomer_webhooks_requests_unreadable_total`
    /// ([`requests_unreadable`](Self::requests_unreadable)) and, serving HTTPS, the counter
    /// `kustomer_webhooks_tls_handshakes_failed_total` and the certificate's
    /// dates as `kustomer_webhooks_tls_certificate_not_before_timestamp_seconds`
    /// and `…_not_after_timestamp_seconds` ([`Tls::validity`](super::Tls::validity)),
    /// to alert on before it expires.
    ///
    /// ```
    /// let text = kustomer_webhooks::axum::Server::new().with_max_connections(64).prometheus();
    /// assert!(text.contains("kustomer_webhooks_connections_open 0\n"));
    /// assert!(text.contains("kustomer_webhooks_connections_max 64\n"));
    /// ```
    pub fn prometheus(&self) -> String {
        let mut text = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            text += &format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
        };
        metric(
            "kustomer_webhooks_connections_open",
            "gauge",
            "Connections to the receiver open now.",
            self.open_connections() as u64,
        );
        metric(
            "kustomer_webhooks_connections_max",
            "gauge",
            "The most connections the receiver serves at once; at the limit, an idle one is \
             closed to make room, or new ones wait until one closes.",
            self.max_connections() as u64,
        );
        metric(
            "kustomer_webhooks_connections_closed_at_limit_total",
            "counter",
            "Connections closed to make room at the limit: idle, with only refusals answered, or with only refusals and a body arriving a byte at a time.",
            self.connections_closed_at_limit(),
        );
        metric(
            "kustomer_webhooks_requests_unreadable_total",
            "counter",
            "Requests whose head could not be read as HTTP/1, answered before the receiver \
             saw them (a TLS handshake sent to a plain-HTTP port shows here).",
            self.requests_unreadable(),
        );
        #[cfg(feature = "axum-tls")]
        if let Some(tls) = &self.tls {
            metric(
                "kustomer_webhooks_tls_handshakes_failed_total",
                "counter",
                "TLS handshakes that failed or were not done in time (a client that does not \
                 trust the certificate: an expired or wrong one shows here).",
                self.tls_handshakes_failed(),
            );
            if let Some(validity) = tls.validity() {
                let seconds = |time: std::time::SystemTime| {
                    time.duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |since| since.as_secs())
                };
                metric(
                    "kustomer_webhooks_tls_certificate_not_before_timestamp_seconds",
                    "gauge",
                    "When the TLS certificate served becomes valid (over its chain, the latest \
                     start), in seconds since 1970.",
                    seconds(validity.not_before),
                );
                metric(
                    "kustomer_webhooks_tls_certificate_not_after_timestamp_seconds",
                    "gauge",
                    "When the TLS certificate served expires (over its chain, the earliest end), \
                     in seconds since 1970: alert on this minus time() falling under a few days.",
                    seconds(validity.not_after),
                );
            }
        }
        text
    }

    /// Serves `app` on `listener` until `shutdown` completes (pass
    /// `std::future::pending()` to serve for ever); then takes no more
    /// connections, finishes the requests in progress, closes the other
    /// connections, and returns once every connection is closed.
    ///
    /// A failed accept never ends it: one that failed before it was
    /// accepted is skipped; out of file descriptors, the oldest idle
    /// connection is closed to make room, as at the connection limit, and
    /// the next accept waits until a connection closes (or 100 ms); any
    /// other failure is waited out for 100 ms. Failures are logged at most
    /// once a minute, with how many were not.
    ///
    /// `app` is an axum [`Router`](https://docs.rs/axum/0.8/axum/struct.Router.html), or any tower service that takes axum's
    /// requests and answers with axum's responses: a router wrapped in a
    /// layer that must run before routing, such as tower-http's
    /// `NormalizePath`, which `Router::layer` cannot place. A service whose
    /// responses have another body type serves through
    /// `.map_response(|r| r.map(axum::body::Body::new))` (tower's `ServiceExt`). A
    /// request counts as in progress from when it is read, so one waiting
    /// for a service that is not ready (`poll_ready` pending, such as a
    /// concurrency limit) holds its connection and a graceful stop waits for
    /// it, as for a slow handler.
    pub async fn serve<S>(&self, listener: TcpListener, app: S, shutdown: impl Future<Output = ()>)
    where
        S: tower_service::Service<Request<Body>, Response = Response<Body>, Error = Infallible>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
    {
        let (stopping, stopped) = tokio::sync::watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        let mut shutdown = pin!(shutdown);
        // Each connection's requests in progress, oldest connection first.
        let mut connections: VecDeque<Weak<Busy>> = VecDeque::new();
        // When each kind of room-making was last said (`Room`'s).
        let mut warned_at: [Option<Instant>; 3] = [None; 3];
        let mut failures = AcceptFailures::default();
        'serving: loop {
            // A slot first; past the limit, connections wait in the backlog,
            // except one, accepted, for which room is made.
            let slot = match self.slots.clone().try_acquire_owned() {
                Ok(slot) => Some(slot),
                Err(TryAcquireError::NoPermits) => None,
                Err(TryAcquireError::Closed) => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) if failed_before_accepted(&e) => continue,
                    Err(e) => {
                        let out_of_files = out_of_files(&e);
                        failures.failed(&e, out_of_files, self.max);
                        // Out of descriptors, a connection is waiting in the
                        // backlog as at the limit: room is made for it.
                        if out_of_files {
                            self.make_room(&mut connections);
                        }
                        // Until a connection closes (its descriptor freed),
                        // or a moment, rather than retried at once, in a loop.
                        tokio::select! {
                            Some(_) = tasks.join_next(), if out_of_files && !tasks.is_empty() => {}
                            () = tokio::time::sleep(ACCEPT_RETRY) => {}
                            () = &mut shutdown => break 'serving,
                        }
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let slot = match slot {
                Some(slot) => slot,
                // At the limit, with a connection waiting: the oldest one
                // with nothing in progress is closed (one at a time, until
                // a slot is free); while every one is busy, it waits.
                None => loop {
                    if let Ok(slot) = self.slots.clone().try_acquire_owned() {
                        break slot;
                    }
                    let room = self.make_room(&mut connections);
                    let said = match room {
                        Room::Made => Some(0),
                        Room::Cut => Some(1),
                        Room::None => Some(2),
                        Room::Leaving => None,
                    };
                    if let Some(said) = said
                        && warned_at[said].is_none_or(|at| at.elapsed() >= Duration::from_secs(60))
                    {
                        warned_at[said] = Some(Instant::now());
                        room.say(self.max);
                    }
                    tokio::select! {
                        slot = self.slots.clone().acquire_owned() => match slot {
                            Ok(slot) => break slot,
                            Err(_) => break 'serving,
                        },
                        () = &mut shutdown => break 'serving,
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                },
            };
            // Finished connections leave the set as new ones come.
            while tasks.try_join_next().is_some() {}
            let _ = stream.set_nodelay(true);
            let busy = Arc::new(Busy::new(self.in_progress.clone()));
            connections.retain(|c| c.strong_count() > 0);
            connections.push_back(Arc::downgrade(&busy));
            let service = Tracked {
                app: TowerToHyperService::new(Bodied(app.clone())),
                busy: busy.clone(),
                peer: ::axum::extract::ConnectInfo(peer),
            };
            let stopped = stopped.clone();
            let closed_at_limit = self.closed_at_limit.clone();
            let unreadable = self.unreadable.clone();
            let head_timeout = self.head_timeout;
            let grace = self.stop_grace;
            let slot = Open::new(slot, &self.open);
            #[cfg(feature = "axum-tls")]
            let tls = self.tls.as_ref().map(|tls| tls.acceptor().clone());
            #[cfg(feature = "axum-tls")]
            let handshakes_failed = self.handshakes_failed.clone();
            tasks.spawn(async move {
                let _slot = slot;
                let mut http = hyper::server::conn::http1::Builder::new();
                // A client that closes its side once its request is sent
                // still gets it handled (and, half-closed, answered).
                http.timer(TokioTimer::new())
                    .header_read_timeout(head_timeout)
                    .max_buf_size(MAX_HEAD)
                    .half_close(true);
                #[cfg(feature = "axum-tls")]
                if let Some(tls) = tls {
                    let mut stop = stopped.clone();
                    let handshake = tokio::select! {
                        done = tokio::time::timeout(head_timeout, tls.accept(stream)) => done,
                        _ = stop.wait_for(|stop| *stop) => return,
                        () = busy.told_to_leave() => {
                            closed_at_limit.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    };
                    let stream = match handshake {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            handshakes_failed.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!("TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            handshakes_failed.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!("TLS handshake not done within the head's time limit");
                            return;
                        }
                    };
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    run(
                        connection,
                        &busy,
                        stopped,
                        grace,
                        &closed_at_limit,
                        &unreadable,
                    )
                    .await;
                    return;
                }
                let connection = http.serve_connection(TokioIo::new(stream), service);
                run(
                    connection,
                    &busy,
                    stopped,
                    grace,
                    &closed_at_limit,
                    &unreadable,
                )
                .await;
            });
        }
        drop(listener);
        let _ = stopping.send(true);
        while tasks.join_next().await.is_some() {}
    }
}

impl Server {
    /// At the limit (or out of file descriptors), with a connection
    /// waiting: tells the oldest open connection idle for
    /// [`IDLE_BEFORE_MAKING_ROOM`] (or idle, with only refusals answered on
    /// it) to close, or else one whose request's body has been arriving that
    /// slowly ([`Busy::may_be_cut`]), unless one told before is still
    /// closing (it closes at once: [`MAKING_ROOM_GRACE`]).
    fn make_room(&self, connections: &mut VecDeque<Weak<Busy>>) -> Room {
        connections.retain(|c| c.strong_count() > 0);
        let open: Vec<Arc<Busy>> = connections.iter().filter_map(Weak::upgrade).collect();
        if open.iter().any(|busy| busy.leaving.load(Ordering::Acquire)) {
            return Room::Leaving;
        }
        if let Some(idle) = open.iter().find(|busy| busy.may_make_room()) {
            idle.leave();
            return Room::Made;
        }
        let Some(slow) = open.iter().find(|busy| busy.may_be_cut()) else {
            return Room::None;
        };
        slow.cut.store(true, Ordering::Release);
        slow.leave();
        Room::Cut
    }
}

/// What [`Server::make_room`] did.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Room {
    /// Told a connection with no request in progress to close.
    Made,
    /// Told a connection to close with its request cut short (a body
    /// arriving a byte at a time, only refusals answered on it).
    Cut,
    /// Nothing: one told before is still closing.
    Leaving,
    /// Nothing: no connection may be closed yet.
    None,
}

impl Room {
    /// Logs it (the caller says each kind at most once a minute).
    fn say(self, max_connections: usize) {
        match self {
            Room::Made => tracing::warn!(
                max_connections,
                "every connection slot is taken: closing the oldest connections with no \
                 request in progress (or only refusals answered) to make room (clients holding \
                 connections open without sending, or a limit too low for the load)"
            ),
            Room::Cut => tracing::warn!(
                max_connections,
                "every connection slot is taken: closing connections whose request bodies \
                 arrive a byte at a time, with only refusals answered on them, their request \
                 cut short, to make room"
            ),
            Room::None => tracing::warn!(
                max_connections,
                "every connection slot is taken and none may be closed yet (each has a request \
                 in progress, or had one answered in the last second): new connections wait in \
                 the system's backlog (a limit too low for the load, or clients holding \
                 requests open)"
            ),
            Room::Leaving => {}
        }
    }
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut debug = f.debug_struct("Server");
        debug
            .field("head_timeout", &self.head_timeout)
            .field("stop_grace", &self.stop_grace)
            .field("max_connections", &self.max)
            .field("open_connections", &self.open_connections());
        #[cfg(feature = "axum-tls")]
        debug.field("tls", &self.tls);
        debug.finish()
    }
}

/// How long a connection must have had no request in progress before it
/// is closed to make room at the connection limit: a client sends its
/// request at once, so one silent for longer is idle or slow, while a
/// connection just accepted, whose request may be in its socket unread, is
/// never the one closed. A connection whose every answer so far was a
/// refusal (a 4xx but 409, or 501) need not wait: it may be closed as soon as it has
/// no request in progress.
pub const IDLE_BEFORE_MAKING_ROOM: Duration = Duration::from_secs(1);

/// The longest time limit on request heads: a day (a longer one is taken
/// as this; one past what the clock can count would fail every connection).
pub const MAX_HEAD_TIMEOUT: Duration = Duration::from_secs(86_400);

/// The most a connection closed to make room at the limit is given to
/// finish a head it is sending: none (a stop gives
/// [`Server::with_stop_grace`]). It has had no request in progress for
/// [`IDLE_BEFORE_MAKING_ROOM`], or had only refusals answered (an answer
/// being written is in progress), so a head still arriving is one sent that
/// slowly or by a client turned away; a grace for it would let
/// connections sending a byte of a head now and then take turns holding
/// the limit, each for the grace, while deliveries wait.
pub const MAKING_ROOM_GRACE: Duration = Duration::ZERO;

/// How long the accept loop waits after a failed accept before the next.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// How often a failing accept is logged at most.
const LOG_ACCEPT_FAILURES_EVERY: Duration = Duration::from_secs(60);

/// Serves one connection; once `stopped` turns, or it is told to make room,
/// lets its request in progress finish and closes it (after `grace` with
/// nothing in progress).
async fn run<I, S>(
    connection: hyper::server::conn::http1::Connection<I, Tracked<S>>,
    busy: &Busy,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    grace: Duration,
    closed_at_limit: &AtomicU64,
    unreadable: &Unreadable,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    Tracked<S>: hyper::service::Service<Request<Incoming>, Response = Response<Body>>,
    <Tracked<S> as hyper::service::Service<Request<Incoming>>>::Error:
        Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut connection = pin!(connection);
    let grace = tokio::select! {
        ended = connection.as_mut() => {
            if let Err(e) = ended {
                unreadable.ended(&e);
            }
            return;
        }
        _ = stopped.wait_for(|stop| *stop) => grace,
        () = busy.told_to_leave() => {
            closed_at_limit.fetch_add(1, Ordering::Relaxed);
            // A body arriving that slowly: its request is dropped with the
            // connection. Nothing of it was handled: its body, read by this
            // task alone (which is here, not reading it), has not all
            // arrived.
            if busy.cut.load(Ordering::Acquire) && busy.body_since.load(Ordering::Acquire) > 0 {
                return;
            }
            // The new connection waits for this one to close: a moment
            // at most, whatever grace a stop gives.
            grace.min(MAKING_ROOM_GRACE)
        }
    };
    // No new request on it; an idle one closes at once.
    connection.as_mut().graceful_shutdown();
    loop {
        tokio::select! {
            _ = connection.as_mut() => return,
            () = busy.idle() => {}
        }
        // Nothing in progress, yet open: it is sending a head (which hyper
        // would wait for until its time limit), or writing an answer's last
        // bytes. A moment for the latter, then it is closed.
        tokio::select! {
            _ = connection.as_mut() => return,
            () = tokio::time::sleep(grace) => {}
        }
        if busy.count.load(Ordering::Acquire) == 0 {
            return;
        }
    }
}

/// Requests whose head could not be read, and when one was last logged.
#[derive(Default)]
struct Unreadable {
    count: AtomicU64,
    /// When a line was last logged, and how many since were not.
    logged: std::sync::Mutex<(Option<Instant>, u64)>,
}

impl Unreadable {
    /// A connection ended with `e`: counted and logged (at most a line a
    /// minute) when it is a head that could not be read.
    fn ended(&self, e: &hyper::Error) {
        if !e.is_parse() && !e.is_parse_too_large() {
            return;
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let unlogged = {
            let mut logged = self
                .logged
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if logged
                .0
                .is_some_and(|at| at.elapsed() < LOG_ACCEPT_FAILURES_EVERY)
            {
                logged.1 += 1;
                return;
            }
            logged.0 = Some(Instant::now());
            std::mem::take(&mut logged.1)
        };
        let error = e.to_string();
        // A TLS handshake's first bytes are not a method.
        let hint = if error.contains("method") {
            " (bytes that are not an HTTP/1 request: a TLS handshake sent to a plain-HTTP port \
             looks like this)"
        } else {
            ""
        };
        tracing::info!(
            error = error.as_str(),
            unlogged,
            "a request's head could not be read, answered by the HTTP layer{hint} (logged at \
             most once a minute)"
        );
    }
}

/// A connection's slot, and its place in the count of open ones.
struct Open {
    _slot: tokio::sync::OwnedSemaphorePermit,
    open: Arc<AtomicUsize>,
}

impl Open {
    fn new(slot: tokio::sync::OwnedSemaphorePermit, open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        Self {
            _slot: slot,
            open: open.clone(),
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How many requests of one connection are in progress: from the call of
/// the app until its answer's body is written (or dropped); since when it
/// has had none; and whether it was told to close, to make room at the
/// limit.
struct Busy {
    count: AtomicUsize,
    idle: Notify,
    /// When the connection opened.
    opened: Instant,
    /// Milliseconds after `opened` when its last request ended (0: none
    /// yet).
    last_ended: AtomicU64,
    leaving: AtomicBool,
    leave: Notify,
    /// Whether an answer on it was other than a refusal (a 4xx but 409, or
    /// 501).
    served: AtomicBool,
    /// Milliseconds after `opened` when the body of its request in progress
    /// began to be awaited, while it has not all arrived (0: none).
    body_since: AtomicU64,
    /// Milliseconds its requests' bodies were awaited, all told, but the
    /// one in progress.
    bodies_took: AtomicU64,
    /// Told to leave with its request in progress cut short (a body
    /// arriving that slowly), not finished.
    cut: AtomicBool,
    /// The server's count of requests in progress, over every connection.
    total: Arc<AtomicUsize>,
}

impl Busy {
    fn new(total: Arc<AtomicUsize>) -> Self {
        Busy {
            count: AtomicUsize::new(0),
            idle: Notify::new(),
            opened: Instant::now(),
            last_ended: AtomicU64::new(0),
            leaving: AtomicBool::new(false),
            leave: Notify::new(),
            served: AtomicBool::new(false),
            body_since: AtomicU64::new(0),
            bodies_took: AtomicU64::new(0),
            cut: AtomicBool::new(false),
            total,
        }
    }

    fn enter(self: &Arc<Self>) -> InProgress {
        self.total.fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::AcqRel);
        InProgress(self.clone())
    }

    /// Whether it may be closed to make room: it has had no request in
    /// progress for [`IDLE_BEFORE_MAKING_ROOM`], or it has none now and
    /// every request it sent was refused (4xx but 409, or 501: a wrong signature, a
    /// method or path not taken…), so that clients sending requests that
    /// are turned away, one after the other, cannot hold the connections.
    fn may_make_room(&self) -> bool {
        match self.idle_for() {
            Some(idle) if idle >= IDLE_BEFORE_MAKING_ROOM => true,
            Some(_) => {
                self.last_ended.load(Ordering::Acquire) > 0 && !self.served.load(Ordering::Relaxed)
            }
            None => false,
        }
    }

    /// Whether it may be closed to make room with its request in progress
    /// cut short: nothing but refusals was answered on it, its request's
    /// body is arriving, and its requests' bodies have been arriving for
    /// [`IDLE_BEFORE_MAKING_ROOM`] all told (a Kustomer event comes whole,
    /// in a moment), so that bodies sent a byte at a time, one or many,
    /// cannot hold the connections. Nothing of the request was handled: its
    /// body has not all arrived.
    fn may_be_cut(&self) -> bool {
        let since = self.body_since.load(Ordering::Acquire);
        if since == 0 || self.served.load(Ordering::Relaxed) {
            return false;
        }
        // Over its requests: bodies that each arrive in under a second, one
        // after the other, count together.
        let now = self.opened.elapsed();
        let this_one = now.saturating_sub(Duration::from_millis(since));
        let before = Duration::from_millis(self.bodies_took.load(Ordering::Relaxed));
        before.saturating_add(this_one) >= IDLE_BEFORE_MAKING_ROOM
    }

    /// Its request's body began to be awaited.
    fn body_awaited(&self) {
        let now = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        let _ =
            self.body_since
                .compare_exchange(0, now.max(1), Ordering::AcqRel, Ordering::Acquire);
    }

    /// Its request's body has all arrived, failed or was dropped: the time
    /// it was awaited is added to its connection's.
    fn body_done(&self) {
        let since = self.body_since.swap(0, Ordering::AcqRel);
        if since > 0 {
            let now = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.bodies_took
                .fetch_add(now.saturating_sub(since), Ordering::Relaxed);
        }
    }

    /// How long it has had no request in progress; `None` while it has one.
    fn idle_for(&self) -> Option<Duration> {
        if self.count.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = Duration::from_millis(self.last_ended.load(Ordering::Acquire));
        Some(self.opened.elapsed().saturating_sub(since))
    }

    /// Tells the connection to close as at a stop.
    fn leave(&self) {
        self.leaving.store(true, Ordering::Release);
        self.leave.notify_one();
    }

    /// Once the connection is told to close.
    async fn told_to_leave(&self) {
        if !self.leaving.load(Ordering::Acquire) {
            // `notify_one` keeps a permit for a wait that starts later.
            self.leave.notified().await;
        }
    }

    /// Once no request is in progress.
    async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            let mut notified = pin!(notified);
            notified.as_mut().enable();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// One request in progress; its drop ends it.
struct InProgress(Arc<Busy>);

impl Drop for InProgress {
    fn drop(&mut self) {
        let busy = &self.0;
        busy.total.fetch_sub(1, Ordering::Relaxed);
        if busy.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            let ended = u64::try_from(busy.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
            busy.last_ended.store(ended.max(1), Ordering::Release);
            busy.idle.notify_waiters();
        }
    }
}

/// The app as hyper calls it, each request counted in progress until its
/// answer has been written.
struct Tracked<S> {
    app: TowerToHyperService<Bodied<S>>,
    busy: Arc<Busy>,
    /// The client's address, for the app's `ConnectInfo<SocketAddr>`.
    peer: ::axum::extract::ConnectInfo<std::net::SocketAddr>,
}

/// The app, taking hyper's requests with their bodies as axum's (what an
/// axum [`Router`](https://docs.rs/axum/0.8/axum/struct.Router.html) does for itself).
#[derive(Clone)]
struct Bodied<S>(S);

impl<S: tower_service::Service<Request<Body>>> tower_service::Service<Request<Watched>>
    for Bodied<S>
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Watched>) -> Self::Future {
        self.0.call(request.map(Body::new))
    }
}

pin_project_lite::pin_project! {
    /// A request's body, telling its connection how long it has been
    /// arriving ([`Busy::may_be_cut`]).
    struct Watched {
        #[pin]
        body: Incoming,
        done: BodyDone,
    }
}

/// Tells the connection, once dropped, that its request's body is no longer
/// awaited.
struct BodyDone(Arc<Busy>);

impl Drop for BodyDone {
    fn drop(&mut self) {
        self.0.body_done();
    }
}

impl hyper::body::Body for Watched {
    type Data = ::axum::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.body.poll_frame(cx);
        match &polled {
            Poll::Pending => this.done.0.body_awaited(),
            Poll::Ready(None | Some(Err(_))) => this.done.0.body_done(),
            Poll::Ready(Some(Ok(_))) => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl<S> hyper::service::Service<Request<Incoming>> for Tracked<S>
where
    S: tower_service::Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Answer<
        <TowerToHyperService<Bodied<S>> as hyper::service::Service<Request<Watched>>>::Future,
    >;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(self.peer);
        let done = BodyDone(self.busy.clone());
        let request = request.map(|body| Watched { body, done });
        Answer {
            inner: self.app.call(request),
            progress: Some(self.busy.enter()),
        }
    }
}

pin_project_lite::pin_project! {
    /// The app's answer; its body carries the request's [`InProgress`].
    struct Answer<F> {
        #[pin]
        inner: F,
        progress: Option<InProgress>,
    }
}

impl<F: Future<Output = Result<Response<Body>, Infallible>>> Future for Answer<F> {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.inner.poll(cx))?;
        let progress = this.progress.take();
        // An answer other than a refusal (as the receiver counts them: a
        // 4xx, and 501 for a transfer coding; a 409, a retry that raced its
        // first delivery, is no refusal): the connection carries
        // deliveries, not only requests turned away.
        if !crate::receiver::is_refusal(response.status().as_u16())
            && let Some(progress) = &progress
        {
            progress.0.served.store(true, Ordering::Relaxed);
        }
        Poll::Ready(Ok(response.map(|body| {
            Body::new(Written {
                body,
                _progress: progress,
            })
        })))
    }
}

pin_project_lite::pin_project! {
    /// An answer's body, the request in progress until hyper has written
    /// it and dropped it.
    struct Written {
        #[pin]
        body: Body,
        _progress: Option<InProgress>,
    }
}

impl hyper::body::Body for Written {
    type Data = ::axum::body::Bytes;
    type Error = ::axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Resolves on Ctrl-C, or on SIGTERM where there are signals (what a
/// container's stop sends): the `shutdown` to give [`Server::serve`], so
/// that a stop lets the deliveries in progress finish and be answered.
/// Where a signal cannot be listened for, it never resolves for that one.
///
/// ```no_run
/// # async fn run(listener: tokio::net::TcpListener, app: axum::Router) {
/// use kustomer_webhooks::axum::{Server, stop_signal};
///
/// Server::new().serve(listener, app, stop_signal()).await;
/// # }
/// ```
pub async fn stop_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

/// Whether a failed accept is of a connection that failed before it was
/// accepted: skipped, and the next one accepted at once.
fn failed_before_accepted(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    )
}

/// Whether a failed accept is for want of a file descriptor: the process's
/// limit on open files (EMFILE) or the system's (ENFILE), whose numbers are
/// the same on Linux, macOS and the BSDs; WSAEMFILE on Windows.
fn out_of_files(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    const CODES: &[i32] = &[24, 23];
    #[cfg(windows)]
    const CODES: &[i32] = &[10024];
    #[cfg(not(any(unix, windows)))]
    const CODES: &[i32] = &[];
    e.raw_os_error().is_some_and(|code| CODES.contains(&code))
}

/// Accepts that failed, logged at most once every
/// [`LOG_ACCEPT_FAILURES_EVERY`]: a failure lasts (out of descriptors while
/// clients keep connecting) and would otherwise be logged ten times a
/// second.
#[derive(Default)]
struct AcceptFailures {
    /// When one was last logged.
    logged_at: Option<Instant>,
    /// Failures since then, not logged.
    unlogged: u64,
}

impl AcceptFailures {
    fn failed(&mut self, e: &std::io::Error, out_of_files: bool, max_connections: usize) {
        if self
            .logged_at
            .is_some_and(|at| at.elapsed() < LOG_ACCEPT_FAILURES_EVERY)
        {
            self.unlogged += 1;
            return;
        }
        self.logged_at = Some(Instant::now());
        let unlogged = std::mem::take(&mut self.unlogged);
        let error = e.to_string();
        if out_of_files {
            tracing::error!(
                error = error.as_str(),
                max_connections,
                unlogged,
                "accepting a connection failed, out of file descriptors: closing the oldest \
                 connections with no request in progress to make room, as at the connection \
                 limit (the limit on open files is too low for the limit on connections: \
                 raise it, or lower the limit on connections; logged at most once a minute)"
            );
        } else {
            tracing::error!(
                error = error.as_str(),
                unlogged,
                "accepting a connection failed (logged at most once a minute)"
            );
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    use super::{IDLE_BEFORE_MAKING_ROOM, Server};

    /// Set in the process the test runs itself in.
    const CHILD: &str = "KUSTOMER_WEBHOOKS_TEST_OUT_OF_FILES";

    /// Out of file descriptors, a connection waiting to be accepted gets the
    /// place of the oldest idle one, as at the connection limit, rather than
    /// waiting until an idle one's time limit on heads. Run in a process of
    /// its own (this test binary again), whose limit on open files is
    /// lowered to 128, then every descriptor but one taken.
    #[test]
    fn out_of_file_descriptors_an_idle_connection_makes_room() {
        if std::env::var_os(CHILD).is_none() {
            let name = format!(
                "{}::out_of_file_descriptors_an_idle_connection_makes_room",
                module_path!().split_once("::").unwrap().1
            );
            let out = std::process::Command::new("sh")
                .args(["-c", "ulimit -n 128 && exec \"$0\" \"$@\""])
                .arg(std::env::current_exe().unwrap())
                .args(["--exact", &name, "--nocapture", "--test-threads=1"])
                .env(CHILD, "1")
                .output()
                .unwrap();
            let said = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{said}");
            assert!(said.contains("1 passed"), "{said}");
            return;
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            // Heads may take a minute: no idle connection closes by itself
            // within the test.
            let server = Server::new().with_head_timeout(Duration::from_secs(60));
            let app = ::axum::Router::new().route("/", ::axum::routing::get(|| async { "ok" }));
            let serving = server.clone();
            tokio::spawn(async move { serving.serve(listener, app, std::future::pending()).await });
            tokio::task::spawn_blocking(move || {
                let idle: Vec<TcpStream> =
                    (0..8).map(|_| TcpStream::connect(addr).unwrap()).collect();
                while server.open_connections() < idle.len() {
                    std::thread::sleep(Duration::from_millis(10));
                }
                // Every descriptor taken but one, for the client's side.
                let mut taken = Vec::new();
                loop {
                    match std::fs::File::open("/dev/null") {
                        Ok(file) => taken.push(file),
                        Err(e) => {
                            assert_eq!(e.raw_os_error(), Some(24), "{e}");
                            break;
                        }
                    }
                }
                assert!(!taken.is_empty());
                taken.pop();
                std::thread::sleep(IDLE_BEFORE_MAKING_ROOM + Duration::from_millis(200));
                let mut delivery = TcpStream::connect(addr).unwrap();
                delivery
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                delivery
                    .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .unwrap();
                let mut answer = String::new();
                delivery
                    .read_to_string(&mut answer)
                    .unwrap_or_else(|e| panic!("no answer within 10 s ({e}): {answer:?}"));
                assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
                assert!(server.connections_closed_at_limit() >= 1);
                drop((idle, taken));
            })
            .await
            .unwrap();
        });
    }
}
