//! The whole delivery path, free of any web framework: method, content type,
//! size, signature, parsing, dispatch, each mapped to the HTTP status
//! Kustomer needs to see. Framework adapters (see `axum` behind the feature
//! of that name) only translate requests and responses.
//!
//! The status contract: 2xx only once the handler succeeded (or when there is
//! nothing to run: no handler, an event already processed, a stale update,
//! an event older than the max event age, when there is one);
//! 409 while another delivery of the same event is being handled; 401 for a bad or
//! missing signature or custom header; 400 for a body that is not an event
//! (with the JSON path); 413 over the size limit; 408 (from an adapter) for a
//! body that stops arriving; 415 for a content type
//! other than JSON, or a body sent compressed (a `Content-Encoding` other than
//! `identity`); 501 for a `Transfer-Encoding` other than `chunked` or
//! `identity`; 405 for a method other than POST; 500 when the handler
//! failed or panicked, 503 when it ran out of time, when the idempotency
//! store (or the ordering guard's) failed or did not answer within the same
//! time limit, or when no handler slot or resource's turn came in time, so
//! that Kustomer retries. The checks run in the order 405, 415 (the content
//! type), 413, 415 (the encoding), 501, 401, 400: a request that fails
//! several gets the status of the first.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use serde::Serialize;
use tracing::Instrument;

use crate::capture::Capture;
use crate::dead_letters::DeadLetters;
use crate::dedupe::{Begin, IdempotencyStore, MemoryStore, RevisionStore};
use crate::models::AnyEvent;
use crate::verify::{EVENT_HEADER, RESENT_HEADER, SharedVerifier, Verifier, VerifyError};
use crate::{Dispatched, Dispatcher, Events, ParseError, Parsed};

/// The outcomes a [`Reply`] names, to compare [`Reply::outcome`] with
/// (a misspelt string would compile, and never match):
/// `reply.outcome == outcome::IN_PROGRESS`. In the counters and their
/// `/metrics` labels, `handled` and `no handler` count as `accepted`,
/// `in progress` as `in_progress`, `too old` as `too_old`, and `error` as `rejected` (4xx, and 501
/// for a transfer coding the receiver does not undo) or `failed` (other
/// 5xx).
pub mod outcome {
    /// The handler ran and succeeded (200).
    pub const HANDLED: &str = "handled";
    /// No handler takes the event: acknowledged, nothing ran (200).
    pub const NO_HANDLER: &str = "no handler";
    /// The event was handled before: acknowledged, nothing ran (200).
    pub const DUPLICATE: &str = "duplicate";
    /// An update not newer than the last one handled for its resource:
    /// acknowledged, nothing ran (200).
    pub const STALE: &str = "stale";
    /// Another delivery of the event is being handled (409): Kustomer
    /// retries it.
    pub const IN_PROGRESS: &str = "in progress";
    /// An event created longer ago than the receiver's max event age
    /// ([`Receiver::with_max_event_age`](super::Receiver::with_max_event_age)),
    /// possibly a replay: acknowledged, nothing ran, never kept as a dead
    /// letter (200).
    pub const TOO_OLD: &str = "too old";
    /// Refused (4xx) or failed (5xx), with the reply's `error` saying why.
    pub const ERROR: &str = "error";
}

/// What the receiver answers: a status and a small JSON body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reply {
    /// The HTTP status.
    #[serde(skip)]
    pub status: u16,
    /// One of the [`outcome`]s: `handled`, `no handler`, `duplicate`,
    /// `stale`, `too old`, `in progress`, or `error`.
    pub outcome: &'static str,
    /// The event's name, once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The event's id, once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What went wrong: set exactly when the outcome is `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why an event was neither handled nor refused: for `stale`, the
    /// revision it is not newer than; for `too old`, when it was created;
    /// for `in progress`, that another delivery of it is being handled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Where in the body, as a JSON Pointer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
}

impl Reply {
    fn error(status: u16, error: impl Into<String>) -> Reply {
        Reply {
            status,
            outcome: outcome::ERROR,
            event: None,
            id: None,
            error: Some(error.into()),
            detail: None,
            pointer: None,
        }
    }

    /// The headers to answer with, besides what the HTTP server adds: the
    /// body's `Content-Type`, and what a status calls for: `Allow: POST`
    /// with a 405, `Accept-Encoding: identity` with a 415 (the body is
    /// taken only as sent, uncompressed). Names in lowercase. An adapter
    /// for another framework answers `status`, these and [`body`](Self::body).
    ///
    /// ```
    /// # use kustomer_webhooks::receiver::Receiver;
    /// # use kustomer_webhooks::{Dispatcher, verify::Verifier};
    /// # let receiver = Receiver::new(Dispatcher::builder().build().unwrap(), Verifier::new("t"));
    /// let reply = receiver.screen("GET", Some(b"application/json")).unwrap();
    /// assert_eq!(reply.status, 405);
    /// assert_eq!(
    ///     reply.headers().collect::<Vec<_>>(),
    ///     [("content-type", "application/json"), ("allow", "POST")]
    /// );
    /// ```
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &'static str)> + use<> {
        let status = match self.status {
            405 => Some(("allow", "POST")),
            415 => Some(("accept-encoding", "identity")),
            _ => None,
        };
        std::iter::once(("content-type", "application/json")).chain(status)
    }

    /// The body, as JSON text: the same text as `serde_json::to_string` of
    /// the reply, written without serde's escaping of each character of
    /// strings that need none (every reply has one, on every delivery).
    pub fn body(&self) -> String {
        // Sized for the usual reply's outcome, event name and id at once.
        let mut out = String::with_capacity(128);
        out.push_str("{\"outcome\":");
        push_json_str(&mut out, self.outcome);
        for (key, value) in [
            ("event", &self.event),
            ("id", &self.id),
            ("error", &self.error),
            ("detail", &self.detail),
            ("pointer", &self.pointer),
        ] {
            if let Some(value) = value {
                out.push_str(",\"");
                out.push_str(key);
                out.push_str("\":");
                push_json_str(&mut out, value);
            }
        }
        out.push('}');
        out
    }
}

/// `s` as a JSON string: as it is when nothing in it needs escaping (as
/// `serde_json` would write it too), else escaped by `serde_json`.
fn push_json_str(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        // A `&str` always serialises.
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    }
}

/// Counts of what the receiver did, for metrics. More may come: make one
/// with `Counters::default()`.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Counters {
    /// Deliveries handled (2xx with a handler run, or no handler).
    pub accepted: AtomicU64,
    /// Deliveries refused before dispatch (4xx, and 501 for a transfer
    /// coding the receiver does not undo).
    pub rejected: AtomicU64,
    /// Deliveries of an event already processed (2xx).
    pub duplicate: AtomicU64,
    /// Deliveries of an event another delivery was handling at the time
    /// (409 `in progress`): Kustomer counts them failed and retries them.
    pub in_progress: AtomicU64,
    /// Updates older than one already processed.
    pub stale: AtomicU64,
    /// Events older than the receiver's max event age (2xx, not dispatched).
    pub too_old: AtomicU64,
    /// Deliveries answered 5xx (but 501), so that Kustomer retries them:
    /// a handler that failed, panicked or ran past its time limit, and also
    /// an idempotency or revision store that failed or did not answer,
    /// handler slots that stayed busy, a resource's turn not given in time.
    /// The reply's `error` and the delivery's log line say which.
    pub failed: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Counters {
    /// The counts in Prometheus's text exposition format, for a `/metrics`
    /// endpoint: one counter, `kustomer_webhooks_deliveries_total`, with an
    /// `outcome` label for each count (`accepted`, `rejected`, `duplicate`,
    /// `in_progress`, `stale`, `too_old`, `failed`).
    ///
    /// ```
    /// use kustomer_webhooks::receiver::Counters;
    ///
    /// let text = Counters::default().prometheus();
    /// assert!(text.contains("kustomer_webhooks_deliveries_total{outcome=\"accepted\"} 0\n"));
    /// ```
    pub fn prometheus(&self) -> String {
        let mut text = String::from(
            "# HELP kustomer_webhooks_deliveries_total Deliveries received, by outcome.\n\
             # TYPE kustomer_webhooks_deliveries_total counter\n",
        );
        for (outcome, counter) in [
            ("accepted", &self.accepted),
            ("rejected", &self.rejected),
            ("duplicate", &self.duplicate),
            ("in_progress", &self.in_progress),
            ("stale", &self.stale),
            ("too_old", &self.too_old),
            ("failed", &self.failed),
        ] {
            let n = counter.load(Ordering::Relaxed);
            text += &format!("kustomer_webhooks_deliveries_total{{outcome=\"{outcome}\"}} {n}\n");
        }
        text
    }
}

/// `3 accepted, 1 rejected, 1 duplicate, 0 stale, 0 failed`, and `, 2
/// answered 409 (already being handled)` and `, 1 too old` when there were
/// any.
impl std::fmt::Display for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        write!(
            f,
            "{} accepted, {} rejected, {} duplicate, {} stale, {} failed",
            n(&self.accepted),
            n(&self.rejected),
            n(&self.duplicate),
            n(&self.stale),
            n(&self.failed)
        )?;
        match n(&self.in_progress) {
            0 => {}
            busy => write!(f, ", {busy} answered 409 (already being handled)")?,
        }
        match n(&self.too_old) {
            0 => Ok(()),
            old => write!(f, ", {old} too old"),
        }
    }
}

/// One request, as the receiver needs it.
pub struct Request<'a, H: Fn(&str) -> Option<&'a [u8]>> {
    /// The HTTP method.
    pub method: &'a str,
    /// A header's value by its lowercase name. The receiver asks for
    /// `content-type`, `content-encoding` and `transfer-encoding` (a coded
    /// body is refused, 415), the signature and the event name
    /// ([`SIGNATURE_HEADER`](crate::verify::SIGNATURE_HEADER),
    /// [`EVENT_HEADER`]), the signature `kustomer-webhooks send` adds
    /// ([`RESENT_HEADER`], read with a max event age), and the custom
    /// headers its [`Verifier`] checks: an adapter that looks up every
    /// header of the request misses none.
    pub header: H,
    /// The body, exactly as received (already cut at the size limit by the
    /// adapter, which answers 413 itself when it is over).
    pub body: &'a [u8],
}

type Inspect<S> = dyn Fn(&Parsed<'_, S>) + Send + Sync;

type OnFailure = dyn Fn(&Failure<'_>) + Send + Sync;

/// An event a receiver did not handle, as [`Receiver::on_failure`] is told
/// of it: which event, and why.
#[derive(Debug)]
#[non_exhaustive]
pub struct Failure<'a> {
    /// The event's name.
    pub event: &'a str,
    /// The event id (`id`), when the delivery had one.
    pub id: Option<&'a str>,
    /// The id of the resource the event is about (`data.id`).
    pub resource_id: Option<&'a str>,
    /// The org the event belongs to (`org`).
    pub org: Option<&'a str>,
    /// Why it was not handled.
    pub cause: FailureCause<'a>,
}

/// Why an event was not handled ([`Failure::cause`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum FailureCause<'a> {
    /// The handler returned an error ([`DispatchError::Handler`], whose
    /// `error` downcasts to the handler's own error type) or panicked
    /// ([`DispatchError::Panicked`]).
    ///
    /// [`DispatchError::Handler`]: crate::DispatchError::Handler
    /// [`DispatchError::Panicked`]: crate::DispatchError::Panicked
    Handler(&'a crate::DispatchError),
    /// An `async` handler did not finish within the receiver's time limit
    /// ([`Receiver::with_timeout`]) and was stopped.
    TimedOut(Duration),
    /// The handler did not run, as the text says: the idempotency store or
    /// the ordering guard failed or did not answer in time (503), or no
    /// handler slot came free in time
    /// ([`Receiver::with_max_concurrent_handlers`]).
    NotRun(&'a str),
    /// What settles a run panicked, as the text says (an idempotency
    /// store's completing of the event, say): the delivery is answered 500,
    /// and the handler may have run. A panic before the handler's run (in
    /// a store's claim) unwinds out of [`Receiver::receive`] without this
    /// (the axum router answers it 500 and logs it), as does one in a run
    /// that goes on after its client hung up.
    ReceiverPanicked(&'a str),
}

/// Receives deliveries: verifies, parses and dispatches them.
///
/// `S` is the set of models events are parsed with: the bundled
/// [`AnyEvent`] by default; see [`Events`] for models generated into your
/// crate.
pub struct Receiver<S = AnyEvent> {
    verifier: Option<Verification>,
    dispatcher: Arc<Dispatcher<S>>,
    limit: usize,
    timeout: Duration,
    read_timeout: Duration,
    inspect: Option<Box<Inspect<S>>>,
    on_failure: Option<Arc<OnFailure>>,
    counters: Arc<Counters>,
    store: Option<Arc<dyn IdempotencyStore>>,
    /// While `store` is still the default [`MemoryStore`]: its in-progress
    /// timeout, sized by [`refit_default_store`](Self::refit_default_store).
    default_store: Option<Duration>,
    ordering: Option<Arc<dyn RevisionStore>>,
    /// With the ordering guard: whose turn it is, per resource.
    turns: Option<Arc<Turns>>,
    capture: Option<Capture>,
    dead_letters: Option<DeadLetters>,
    /// At most this many handlers at once, when limited.
    slots: Option<Slots>,
    /// A failed or panicking handler's 500 says so without its error text.
    hide_handler_errors: bool,
    /// Events created longer ago than this are not dispatched, as replays.
    max_event_age: Option<Duration>,
    /// Whether an event without a `createdAt` was said (once).
    said_no_created_at: std::sync::atomic::AtomicBool,
    /// How many rejections were logged this second, and how many not.
    rejections_logged: RejectionLog,
    /// The same for events acknowledged as too old: a budget of their
    /// own, so that forged requests, which need no token, cannot silence
    /// them.
    too_old_logged: RejectionLog,
    /// The same for deliveries answered 409 (their event in progress): a
    /// retried body posted again and again must not push the lines that
    /// matter out of the log.
    in_progress_logged: RejectionLog,
    /// The same for deliveries whose idempotency store failed or did not
    /// answer: an outage must not bury every other line.
    store_failures_logged: RejectionLog,
    /// The last too-old events logged: their id, when (seconds since the
    /// Unix epoch), and how many times each came since, unlogged. One
    /// recorded delivery replayed again and again gets a line a minute,
    /// saying how many times it came, and leaves the budget to the others.
    too_old_ids: std::sync::Mutex<std::collections::VecDeque<(String, u64, u64)>>,
    /// The events acknowledged with no handler that were said (once each,
    /// up to [`UNHANDLED_SAID`]).
    unhandled_said: std::sync::Mutex<Vec<String>>,
}

/// The most event names a receiver says it has no handler for.
const UNHANDLED_SAID: usize = 64;

/// A receiver's [`LogBudget`] for one kind of line, with the function that
/// says how many deliveries had no line of their own. Dropped with the
/// receiver, it says that count since the last one logged, so that a
/// flood's count is not lost when the receiver stops before another
/// delivery comes.
#[derive(Debug)]
pub(crate) struct RejectionLog(std::sync::Mutex<LogBudget>, fn(u64));

impl RejectionLog {
    pub(crate) fn new(unlogged: fn(u64)) -> Self {
        RejectionLog(std::sync::Mutex::default(), unlogged)
    }

    /// Whether one more line fits this second's budget (saying first how
    /// many had no line, when that count ends).
    pub(crate) fn take(&self) -> bool {
        let second = since_start().as_secs();
        let (logged, unsaid) = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take(second);
        if unsaid > 0 {
            (self.1)(unsaid);
        }
        logged
    }
}

impl Drop for RejectionLog {
    fn drop(&mut self) {
        let budget = self
            .0
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let unsaid = std::mem::take(&mut budget.unlogged);
        if unsaid > 0 {
            (self.1)(unsaid);
        }
    }
}

/// The most rejected deliveries logged in a second, each with its line; the
/// others are counted, and said in one line with the next one logged. A
/// flood of forged requests (tens of thousands a second) then cannot fill a
/// log, or push the lines that matter out of a log pipe that is behind.
pub const REJECTIONS_LOGGED_PER_SECOND: u32 = 10;

/// The rejections of the current second: logged, and not.
#[derive(Debug, Default)]
struct LogBudget {
    second: u64,
    logged: u32,
    unlogged: u64,
}

impl LogBudget {
    /// Whether a rejection at `second` gets its line, and how many
    /// rejections since the last one logged had none (to be said first).
    fn take(&mut self, second: u64) -> (bool, u64) {
        let mut unsaid = 0;
        if second != self.second {
            unsaid = std::mem::take(&mut self.unlogged);
            self.second = second;
            self.logged = 0;
        }
        if self.logged < REJECTIONS_LOGGED_PER_SECOND {
            self.logged += 1;
            (true, unsaid)
        } else {
            self.unlogged += 1;
            (false, 0)
        }
    }
}

impl<S> std::fmt::Debug for Receiver<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("verifier", &self.verifier)
            .field("limit", &self.limit)
            .field("timeout", &self.timeout)
            .field("read_timeout", &self.read_timeout)
            .field("max_event_age", &self.max_event_age)
            .field(
                "max_concurrent_handlers",
                &self.slots.as_ref().map(|slots| slots.n),
            )
            .field("default_store_in_progress_timeout", &self.default_store)
            .finish_non_exhaustive()
    }
}

/// What a receiver verifies deliveries with: a verifier of its own (no lock
/// to take per delivery), or one shared with whoever may replace it.
#[derive(Debug)]
enum Verification {
    Own(Verifier),
    Shared(SharedVerifier),
}

impl Verification {
    fn verify<'h>(
        &self,
        body: &[u8],
        header: impl Fn(&str) -> Option<&'h [u8]>,
    ) -> Result<(), VerifyError> {
        match self {
            Verification::Own(verifier) => verifier.verify(body, header),
            Verification::Shared(shared) => shared.verify(body, header),
        }
    }

    fn verify_resent(&self, body: &[u8], value: &[u8], now: u64) -> bool {
        match self {
            Verification::Own(verifier) => verifier.verify_resent(body, value, now),
            Verification::Shared(shared) => shared.verify_resent(body, value, now),
        }
    }
}

/// The handler slots of [`Receiver::with_max_concurrent_handlers`].
#[derive(Clone)]
struct Slots {
    semaphore: Arc<tokio::sync::Semaphore>,
    /// How many there are.
    n: usize,
    /// How long a delivery may wait for one.
    max_wait: Duration,
}

/// Whether a delivery answered `status` was refused (counted as `rejected`):
/// a 4xx but 409 (another delivery of its event in progress, which Kustomer
/// retries), or 501 (a transfer coding the receiver does not undo, not a
/// handler's failure). `axum::Server` tells connections of refusals alone
/// by it, too.
pub(crate) fn is_refusal(status: u16) -> bool {
    matches!(status, 400..=499 | 501) && status != 409
}

/// Seconds since the Unix epoch (0 for a clock before it).
/// The time since the process first asked: a clock for counting seconds
/// and milliseconds in atomics (the rejection log's budget, the Redis
/// store's silence).
pub(crate) fn since_start() -> Duration {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The default body size limit: 1 MiB, far above any Kustomer event.
pub const DEFAULT_LIMIT: usize = 1 << 20;
/// Writes a store failed after their delivery was answered (a handled
/// event's `complete`, an update's revision), being tried again in the
/// background: all receivers of the process together. The runtime shutting
/// down ends them, and with them what they were to write (the event's
/// claim then runs out, and a later retry of it runs the handler again), so
/// a service that stops waits a moment for them: [`finish_retried_writes`].
pub fn retried_writes() -> usize {
    cold::RETRYING.load(std::sync::atomic::Ordering::Relaxed)
}

/// Tries every write being tried again in the background ([`retried_writes`])
/// at once, and again every quarter of a second, until none is left or
/// `within` has passed; how many are left. For a service about to stop,
/// once its server has answered every delivery: what is left is lost with
/// the process, and worth a warning.
pub async fn finish_retried_writes(within: Duration) -> usize {
    let start = tokio::time::Instant::now();
    let mut hurried = None;
    loop {
        let left = retried_writes();
        if left == 0 || start.elapsed() >= within {
            return left;
        }
        if hurried.is_none_or(|at: tokio::time::Instant| at.elapsed() >= RETRIED_WRITES_EVERY) {
            cold::HURRY.notify_waiters();
            hurried = Some(tokio::time::Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How often [`finish_retried_writes`] tries the writes left again.
const RETRIED_WRITES_EVERY: Duration = Duration::from_millis(250);

/// The shortest max event age ([`Receiver::with_max_event_age`]) that leaves
/// room for Kustomer's retries of a failed delivery (1 + 1 + 2 + 5 + 10 + 15
/// + 30 minutes, and one more); a shorter one is taken with a warning.
pub const MIN_EVENT_AGE: Duration = Duration::from_secs(65 * 60);
/// The default handler time limit: Kustomer wants an answer within seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default time a body may take to arrive: a Kustomer event is a few
/// kilobytes, sent at once.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);

impl<S: Events> Receiver<S> {
    /// A receiver dispatching to `dispatcher`, verifying with `verifier`.
    ///
    /// Its defaults: de-duplication by event id in this process's memory
    /// ([`MemoryStore`], 75 minutes; [`with_store`](Self::with_store) for a
    /// shared one); no ordering guard, capture or dead letters; bodies of at
    /// most 1 MiB; 10 s for a handler and for a body to arrive; no limit on
    /// handlers running at once; and a failed handler's error text in its
    /// 500 reply, which Kustomer keeps with the delivery
    /// ([`hide_handler_errors`](Self::hide_handler_errors) leaves it out).
    ///
    /// A dispatcher without any handler is allowed (every event is then
    /// acknowledged without running anything), but logged as a warning: it
    /// is usually a builder that was not given `.registered()`.
    pub fn new(dispatcher: Dispatcher<S>, verifier: Verifier) -> Self {
        if dispatcher.is_empty() {
            cold::no_handlers();
        }
        Receiver {
            verifier: Some(Verification::Own(verifier)),
            dispatcher: Arc::new(dispatcher),
            limit: DEFAULT_LIMIT,
            timeout: DEFAULT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            inspect: None,
            on_failure: None,
            counters: Arc::default(),
            store: Some(Arc::new(MemoryStore::new())),
            default_store: Some(crate::dedupe::DEFAULT_IN_PROGRESS_TIMEOUT),
            ordering: None,
            turns: None,
            capture: None,
            dead_letters: None,
            slots: None,
            hide_handler_errors: false,
            max_event_age: None,
            said_no_created_at: Default::default(),
            rejections_logged: RejectionLog::new(cold::rejections_unlogged),
            too_old_logged: RejectionLog::new(cold::too_old_unlogged),
            in_progress_logged: RejectionLog::new(cold::in_progress_unlogged),
            store_failures_logged: RejectionLog::new(cold::store_failures_unlogged),
            too_old_ids: Default::default(),
            unhandled_said: Default::default(),
        }
    }

    /// Remembers processed event ids in `store` instead of the default
    /// in-memory one (which keeps them 75 minutes, past Kustomer's retries),
    /// such as a `dedupe::RedisStore` that a service's replicas share.
    ///
    /// The key is the event's `id`; an `id` of another JSON type than a
    /// string (drift) is keyed by its JSON text after `json:` (`json:42`;
    /// a string id starting with `json:` or `str:` gets `str:` before it,
    /// so that no two ids share a key), and an event with no `id` (or a null or
    /// empty one) runs its handler on every delivery, with a warning logged.
    ///
    /// Keep its in-progress timeout above the longest a handler may run
    /// ([`in_progress_timeout_for`](crate::dedupe::in_progress_timeout_for)):
    /// the default store's is sized from this receiver's limits.
    pub fn with_store(mut self, store: impl IdempotencyStore + 'static) -> Self {
        self.store = Some(Arc::new(store));
        self.default_store = None;
        self
    }

    /// Runs every delivery, duplicates included (no idempotency store).
    pub fn without_dedupe(mut self) -> Self {
        self.store = None;
        self.default_store = None;
        self
    }

    /// The default store, made again with an in-progress timeout above the
    /// longest a handler may now run (it holds nothing before the receiver
    /// serves), so that a retry never runs a handler still running.
    fn refit_default_store(&mut self) {
        let Some(current) = self.default_store else {
            return;
        };
        let wait = self.slots.as_ref().map_or(Duration::ZERO, |s| s.max_wait);
        let needed = crate::dedupe::in_progress_timeout_for(
            self.timeout.saturating_add(wait),
            self.ordering.is_some(),
        );
        if needed != current {
            self.store = Some(Arc::new(
                MemoryStore::builder().in_progress_timeout(needed).build(),
            ));
            self.default_store = Some(needed);
        }
    }

    /// Drops updates whose `rev` is not newer than the last processed for
    /// the same resource: acknowledged with `"outcome": "stale"`, not
    /// dispatched. Off by default. An update without a `rev` (users and
    /// teams have none), or with one that cannot be read, is ordered by its
    /// `updatedAt` instead: stale when older than the last one handled,
    /// kept apart from revisions under `<data.id>@updatedAt` (see
    /// [`RevisionStore`]); an event with both records both (two records per
    /// handled event), so that such an update is ordered against every one
    /// before it; one with neither is handled unordered. Only an update (an event whose name ends
    /// in `.update`) can be stale: a creation that arrives after its
    /// resource's updates is still handled (its `rev`, recorded like an
    /// update's, never lowers the last one). The revisions are kept in `revisions`:
    /// an [`OrderingGuard`](crate::dedupe::OrderingGuard) in the process,
    /// or a store every replica sees (`RedisStore`, feature `redis`; see
    /// [`dedupe`](crate::dedupe#order)). A store that fails or does not
    /// answer within the handler's time limit before the handler runs gets
    /// the delivery answered 503 (Kustomer retries); after it ran, the
    /// failure to record is logged, the delivery acknowledged, and the
    /// record tried again in the background until the store takes it.
    ///
    /// The events of one resource then take turns: the check of an event's
    /// revision, its handler and the record of its revision run as one
    /// step, before the next event of that resource (in the order they
    /// asked) is checked. So an older update that arrives while a newer one
    /// is being handled waits, then is found stale, and the handlers of one
    /// resource never run at the same time. With a store the replicas share
    /// (`RedisStore`), the turn is taken there too, after the process's own
    /// ([`RevisionStore::take_turn`]): an older update reaching another
    /// replica waits as well (at least two more calls to the store per
    /// event; across replicas, one resource's handlers do not overlap while
    /// the shared turn lasts: four time limits, plus the slot wait and
    /// 5 s). An event that cannot get its turn within the handler's time
    /// limit is answered 503 (Kustomer retries). Events of different
    /// resources do not wait for each other.
    pub fn with_ordering(mut self, revisions: impl RevisionStore + 'static) -> Self {
        self.ordering = Some(Arc::new(revisions));
        self.refit_default_store();
        self.turns = Some(Arc::default());
        self
    }

    /// Saves deliveries into a directory before they are dispatched (see
    /// [`capture`](crate::capture): payloads hold personal data). Off by
    /// default. A delivery that cannot be saved is still handled; the
    /// failure is logged and counted in [`Capture::counts`].
    pub fn with_capture(mut self, capture: Capture) -> Self {
        self.capture = Some(capture);
        self
    }

    /// Keeps every delivery answered with a 5xx (a handler that failed,
    /// panicked or timed out; a store that failed) in a directory until a
    /// later delivery of its event is acknowledged, so that no event is lost
    /// when the failure outlasts Kustomer's hour of retries (see
    /// [`dead_letters`](crate::dead_letters): replay them with
    /// `kustomer-webhooks send`). Off by default.
    pub fn with_dead_letters(mut self, dead_letters: DeadLetters) -> Self {
        self.dead_letters = Some(dead_letters);
        self
    }

    /// A receiver verifying with `verifier`, which can be replaced while it
    /// runs: keep a clone and call [`SharedVerifier::replace`] to change the
    /// accepted tokens or custom headers without a restart.
    ///
    /// ```
    /// use kustomer_webhooks::receiver::Receiver;
    /// use kustomer_webhooks::verify::{SharedVerifier, Verifier};
    /// use kustomer_webhooks::Dispatcher;
    ///
    /// async fn on_team(_: kustomer_webhooks::models::TeamEvent) -> Result<(), std::io::Error> {
    ///     Ok(())
    /// }
    ///
    /// let dispatcher = Dispatcher::builder().handler(on_team).build()?;
    /// let shared = SharedVerifier::new(Verifier::new("token-2025"));
    /// let receiver = Receiver::with_shared_verifier(dispatcher, shared.clone());
    /// // Later, when the token is rotated:
    /// shared.replace(Verifier::new("token-2026").with_token("token-2025"));
    /// # drop(receiver);
    /// # Ok::<(), kustomer_webhooks::BuildError>(())
    /// ```
    pub fn with_shared_verifier(dispatcher: Dispatcher<S>, verifier: SharedVerifier) -> Self {
        Receiver {
            verifier: Some(Verification::Shared(verifier)),
            ..Receiver::without_verification(dispatcher)
        }
    }

    /// A receiver that accepts unsigned deliveries. Only for tests and local
    /// tools: anyone can then post events.
    pub fn without_verification(dispatcher: Dispatcher<S>) -> Self {
        Receiver {
            verifier: None,
            ..Receiver::new(dispatcher, Verifier::none())
        }
    }

    /// The largest body accepted (default 1 MiB); larger ones get 413.
    pub fn with_limit(mut self, bytes: usize) -> Self {
        self.limit = bytes;
        self
    }

    /// Answers a handler that failed or panicked with a 500 that says so
    /// (`"the handler failed on kustomer.customer.update; its error is in
    /// the receiver's log"`) without the error's text, which by default is
    /// in the reply: the sender (Kustomer, whose delivery logs the org's
    /// admins read) then never sees what an error or panic message holds,
    /// such as a database's message or a path. The log keeps the whole
    /// error either way (a dead letter keeps the body alone, its reason
    /// going to the log too).
    ///
    /// ```
    /// use kustomer_webhooks::{Dispatcher, receiver::Receiver, verify::Verifier};
    ///
    /// # async fn on_team(_: kustomer_webhooks::models::TeamEvent) {}
    /// let dispatcher = Dispatcher::builder().handler(on_team).build()?;
    /// let receiver = Receiver::new(dispatcher, Verifier::new("t0ken")).hide_handler_errors();
    /// # drop(receiver);
    /// # Ok::<(), kustomer_webhooks::BuildError>(())
    /// ```
    pub fn hide_handler_errors(mut self) -> Self {
        self.hide_handler_errors = true;
        self
    }

    /// Does not dispatch an event created (its envelope's `createdAt`) more
    /// than `age` ago, unless it was sent again just now by whoever holds
    /// the token (below): it is acknowledged with 200, `"outcome": "too
    /// old"`, and a `detail` saying when it was created; counted as
    /// `too_old` and logged as a warning in the delivery's span (at most
    /// ten lines a second, a budget of their own; one of the last sixteen
    /// events logged gets a line a minute at most, saying how many times it
    /// came since, so that one recorded delivery replayed again and again
    /// cannot use the budget up). When the event came with a resent
    /// signature (below) that did not hold, the `detail` says so. It is not kept as a dead letter,
    /// even when the store fails: sent again with the token, a dead letter
    /// is dispatched, and a replay must not become one. Off by default.
    ///
    /// Kustomer's signature covers the body alone, with no time in it, so a
    /// delivery someone recorded verifies forever, and the idempotency
    /// store turns its replay away only while it remembers the event's id.
    /// The age covers the rest: as long as the store remembers ids for at
    /// least the age (a shared store, or a [`MemoryStore`] that has not
    /// restarted and is not past its `max_entries`), a replay is a duplicate
    /// or too old. It is checked once the store has answered, so a retry of
    /// an event already handled is still a `duplicate`.
    ///
    /// A delivery that really is that late (a backlog on Kustomer's side, a
    /// clock off by more than the margin) is treated the same way, so set
    /// the age above the longest a real delivery may take: Kustomer retries
    /// a failed one for about an hour (1, 1, 2, 5, 10, 15 and 30 minutes
    /// apart, 64 minutes in all), and 75 minutes suits the default store.
    /// An age under 65 minutes is taken, with a warning logged here: the
    /// later retries of a failed delivery would be acknowledged as too old
    /// and never handled. An age of zero turns the check off (as when this
    /// is not called), so that a setting read as 0 cannot acknowledge
    /// every event unhandled.
    /// The answer is a 2xx because such a delivery never gets younger:
    /// Kustomer's retries would all be refused, and count against the
    /// webhook. Such an event, if it was real, is in the log by its id, to
    /// fetch from Kustomer's API.
    ///
    /// Sent again with `kustomer-webhooks send` (a dead letter of a failed
    /// delivery, a capture), an event is handled whatever its age: `send` adds
    /// [`RESENT_HEADER`], a signature of the
    /// body and the time it was sent, which proves the sender holds the
    /// token now (whoever does can sign any event anyway), and is accepted
    /// for [`RESENT_TOLERANCE`](crate::verify::RESENT_TOLERANCE) either
    /// way of this machine's clock.
    ///
    /// A receiver that does not verify signatures
    /// ([`without_verification`](Self::without_verification)) has no token
    /// to check that header with: every event older than the age is too
    /// old there, sent again or not.
    ///
    /// An event without a `createdAt` date-time (or read by models
    /// generated before [`Envelope::created_at`](crate::Envelope::created_at):
    /// regenerate them) is handled, with a warning said once; one created in
    /// the future (a clock ahead of this one) is handled.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kustomer_webhooks::{Dispatcher, receiver::Receiver, verify::Verifier};
    ///
    /// # async fn on_team(_: kustomer_webhooks::models::TeamEvent) {}
    /// let dispatcher = Dispatcher::builder().handler(on_team).build()?;
    /// let receiver = Receiver::new(dispatcher, Verifier::new("t0ken"))
    ///     .with_max_event_age(Duration::from_secs(75 * 60));
    /// # drop(receiver);
    /// # Ok::<(), kustomer_webhooks::BuildError>(())
    /// ```
    pub fn with_max_event_age(mut self, age: Duration) -> Self {
        if age.is_zero() {
            self.max_event_age = None;
            return self;
        }
        if age < MIN_EVENT_AGE {
            tracing::warn!(
                "a max event age of {} s is under the 64 minutes Kustomer retries a failed \
                 delivery for: its later retries will be acknowledged as too old and not \
                 handled ({} s or more leaves them room)",
                age.as_secs_f64(),
                MIN_EVENT_AGE.as_secs()
            );
        }
        self.max_event_age = Some(age);
        self
    }

    /// Runs at most `n` handlers at once (at least one, and no more than
    /// tokio's semaphore counts, `usize::MAX >> 3`); by default there is no
    /// limit. A delivery arriving while all `n` run waits up to
    /// `max_wait` for one to finish, and its handler then has its whole time
    /// limit ([`with_timeout`](Self::with_timeout)). A delivery still waiting
    /// after `max_wait` gets 503 (`"all n handler slots stayed busy …"`), is
    /// not marked done, and is kept as a dead letter when they are on, so
    /// that Kustomer's retry runs it. Kustomer wants an answer within
    /// seconds: keep `max_wait` plus the time limit under that.
    ///
    /// For bursts: a bulk update of thousands of customers sends as many
    /// deliveries at once, which would otherwise run as many handlers, and
    /// open as many database connections, at the same moment. Duplicates,
    /// stale updates and refusals are answered without a slot; only a
    /// handler's run takes one, and holds it until the handler is done
    /// (even if the client hung up meanwhile).
    ///
    /// ```
    /// use std::time::Duration;
    /// use kustomer_webhooks::{Dispatcher, receiver::Receiver, verify::Verifier};
    ///
    /// # async fn on_team(_: kustomer_webhooks::models::TeamEvent) {}
    /// let dispatcher = Dispatcher::builder().handler(on_team).build()?;
    /// let receiver = Receiver::new(dispatcher, Verifier::new("t0ken"))
    ///     .with_max_concurrent_handlers(32, Duration::from_secs(2))
    ///     .with_timeout(Duration::from_secs(5));
    /// # drop(receiver);
    /// # Ok::<(), kustomer_webhooks::BuildError>(())
    /// ```
    pub fn with_max_concurrent_handlers(mut self, n: usize, max_wait: Duration) -> Self {
        let n = n.clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        self.slots = Some(Slots {
            semaphore: Arc::new(tokio::sync::Semaphore::new(n)),
            n,
            max_wait,
        });
        self.refit_default_store();
        self
    }

    /// How long a handler may run (default 10 s, room for a slow handler);
    /// then 503, and Kustomer retries. Kustomer expects an answer within a
    /// few seconds, and one that comes later counts as a failure (its retry
    /// is then a duplicate): keep handlers short, handing long work to a
    /// queue of your own, and set the limit under Kustomer's wait once they
    /// are. With the ordering guard, the wait for
    /// the resource's turn may take up to this limit too, before the handler
    /// runs. An `async` handler is stopped there. A plain `fn` handler
    /// (run on tokio's blocking pool) cannot be: its event keeps its claim
    /// (a retry meanwhile is 409 `in progress`, so the handler does not run
    /// twice at once, until the store's in-progress timeout, 5 minutes by
    /// default: past it, a retry runs the handler beside the thread still
    /// running), its handler slot and, with the ordering guard, its
    /// resource's turn in the process (the resource's other events wait,
    /// then get 503) until the thread ends, and is then done if the handler
    /// succeeded, or given up for the next retry. A turn shared with other
    /// replicas ends by itself after four time limits (plus the slot wait
    /// and 5 s), handler or not. A limit of zero stops every `async`
    /// handler at its first wait (503).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.refit_default_store();
        self
    }

    /// Calls `f` with every event about to be dispatched (verified, parsed,
    /// neither a duplicate, nor stale, nor too old), for logging or counting.
    ///
    /// `f` runs on the delivery's task, before its handler, and is not
    /// awaited: keep it short and never block in it (no file or network
    /// I/O; to keep deliveries on disk, [`with_capture`](Self::with_capture)
    /// writes them off the runtime's threads). A panic in `f` is not caught
    /// as a handler's is: it unwinds out of [`receive`](Self::receive) (the
    /// axum router answers that delivery 500, and the event's claim is
    /// given up, so Kustomer's retry runs it).
    pub fn inspect(mut self, f: impl Fn(&Parsed<'_, S>) + Send + Sync + 'static) -> Self {
        self.inspect = Some(Box::new(f));
        self
    }

    /// Calls `f` with every event that was not handled and is answered 5xx,
    /// so that Kustomer retries it: its handler failed, panicked or timed
    /// out, or could not run (the idempotency store or the ordering guard
    /// failed or did not answer, no handler slot came free), or what
    /// settles its run panicked. To report it where a service
    /// reports its errors: an error tracker, with the event's id and org,
    /// and the handler's own error, downcast from
    /// [`DispatchError::Handler`]'s `error` (a concrete error type, or a
    /// `Box<dyn Error>` of one; an `anyhow::Error` is boxed in a type of
    /// anyhow's own and does not downcast: return a concrete type where the
    /// hook needs it). Each is also logged as a warning, whether `f` is set
    /// or not.
    ///
    /// `f` runs once per failed run, after it ended, also when the client
    /// hung up meanwhile, before a retry of the event can run; not for
    /// deliveries refused before a handler was chosen (a bad signature, a
    /// body that is not an event: their 4xx says why), nor for duplicates,
    /// events in progress elsewhere (409), stale or too old ones. A plain
    /// `fn` handler past its time limit runs on, and `f` is called if it
    /// then fails. Keep `f` short and never block in it; a panic in it is
    /// caught and logged.
    ///
    /// ```
    /// use kustomer_webhooks::receiver::{FailureCause, Receiver};
    /// use kustomer_webhooks::verify::Verifier;
    /// use kustomer_webhooks::{DispatchError, Dispatcher, TeamCreate};
    ///
    /// #[derive(Debug, thiserror::Error)]
    /// #[error("the CRM refused {0}")]
    /// struct CrmRefused(String);
    ///
    /// async fn on_team(_: TeamCreate) -> Result<(), CrmRefused> {
    ///     Err(CrmRefused("a team".into()))
    /// }
    ///
    /// let dispatcher = Dispatcher::builder().handler(on_team).build()?;
    /// let receiver = Receiver::new(dispatcher, Verifier::new("t0ken")).on_failure(|failure| {
    ///     if let FailureCause::Handler(DispatchError::Handler { error, .. }) = &failure.cause
    ///         && let Some(refused) = error.downcast_ref::<CrmRefused>()
    ///     {
    ///         eprintln!("event {:?} of org {:?}: {refused}", failure.id, failure.org);
    ///     }
    /// });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// [`DispatchError::Handler`]: crate::DispatchError::Handler
    pub fn on_failure(mut self, f: impl Fn(&Failure<'_>) + Send + Sync + 'static) -> Self {
        self.on_failure = Some(Arc::new(f));
        self
    }

    /// How long an adapter waits for a body to arrive (default 10 s); then
    /// 408, so that a client that stalls mid-body does not hold its
    /// connection and its task for ever.
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The body size limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// How long a body may take to arrive.
    pub fn read_timeout(&self) -> Duration {
        self.read_timeout
    }

    /// What the receiver has done so far; the handle stays valid after the
    /// receiver is moved into a router.
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Handles one delivery.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime with its time driver (`#[tokio::main]`, or a
    /// runtime built with `enable_time`): handlers, time limits and stores
    /// run on it.
    pub async fn receive<'a, H: Fn(&str) -> Option<&'a [u8]>>(
        &self,
        request: Request<'a, H>,
    ) -> Reply {
        let reply = self.receive_inner(request).await;
        self.count(&reply);
        reply
    }

    /// A delivery an adapter turns away before it can call
    /// [`receive`](Receiver::receive) (a body over the limit while it is
    /// still arriving, a body that could not be read): the reply, counted
    /// and logged like the receiver's own rejections.
    pub fn reject(&self, status: u16, error: impl Into<String>) -> Reply {
        let reply = Reply::error(status, error);
        self.count(&reply);
        reply
    }

    /// The checks that need no body, for an adapter to run before it reads
    /// one: the method (405), then the content type (415). The reply when
    /// the request is turned away, counted and logged like the receiver's
    /// own rejections; `None` when it may go on.
    /// [`receive`](Receiver::receive) runs the same checks first, so a
    /// request gets the same status whichever turns it away, and one whose
    /// body is also over the limit gets 405 or 415, not 413.
    pub fn screen(&self, method: &str, content_type: Option<&[u8]>) -> Option<Reply> {
        let reply = screen(method, content_type)?;
        self.count(&reply);
        Some(reply)
    }

    /// Logs a rejection, within [`REJECTIONS_LOGGED_PER_SECOND`].
    #[cold]
    #[inline(never)]
    fn log_rejected(&self, reply: &Reply) {
        if self.rejections_logged.take() {
            cold::rejected(reply);
        }
    }

    /// Why an event created at `created_at` is too old, when it is older
    /// than `max`; an event without a `createdAt` is said once.
    fn too_old(&self, created_at: Option<i64>, max: Duration) -> Option<String> {
        match created_at {
            Some(at) => cold::too_old(at, max, unix_now()),
            None => {
                if !self.said_no_created_at.swap(true, Ordering::Relaxed) {
                    cold::no_created_at();
                }
                None
            }
        }
    }

    /// Logs a too-old event, within its budget; one of the last few logged
    /// at most once a minute, with how many times it came since.
    fn log_too_old(&self, reply: &Reply) {
        /// How many of the last ids logged are remembered.
        const IDS: usize = 16;
        /// Seconds between two lines of one id.
        const EVERY: u64 = 60;
        // An event without a string id has nothing to tell its repeats by:
        // each is logged within the budget.
        let Some(id) = reply.id.as_deref() else {
            if self.too_old_logged.take() {
                cold::acknowledged_too_old(reply, 0);
            }
            return;
        };
        let now = unix_now();
        let mut ids = self
            .too_old_ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, logged, since)) = ids.iter_mut().find(|(seen, ..)| seen == id) {
            if now < logged.saturating_add(EVERY) {
                *since += 1;
                return;
            }
            // Its repeats are said with its next line: not lost when the
            // budget has none to give now (this delivery is then counted in
            // the budget's own line).
            if self.too_old_logged.take() {
                let again = std::mem::take(since);
                *logged = now;
                drop(ids);
                cold::acknowledged_too_old(reply, again);
            }
            return;
        }
        if self.too_old_logged.take() {
            if ids.len() == IDS {
                ids.pop_front();
            }
            ids.push_back((id.to_owned(), now, 0));
            drop(ids);
            cold::acknowledged_too_old(reply, 0);
        }
    }

    fn count(&self, reply: &Reply) {
        let counters = &self.counters;
        match (reply.status, reply.outcome) {
            (200..=299, outcome::DUPLICATE) => Counters::bump(&counters.duplicate),
            (409, outcome::IN_PROGRESS) => Counters::bump(&counters.in_progress),
            (200..=299, outcome::STALE) => Counters::bump(&counters.stale),
            // Logged in the delivery's span (`deliver`).
            (200..=299, outcome::TOO_OLD) => Counters::bump(&counters.too_old),
            (200..=299, _) => Counters::bump(&counters.accepted),
            (status, _) if is_refusal(status) => {
                Counters::bump(&counters.rejected);
                self.log_rejected(reply);
            }
            _ => Counters::bump(&counters.failed),
        }
    }

    async fn receive_inner<'a, H: Fn(&str) -> Option<&'a [u8]>>(
        &self,
        request: Request<'a, H>,
    ) -> Reply {
        if let Some(reply) = screen(request.method, (request.header)("content-type")) {
            return reply;
        }
        if request.body.len() > self.limit {
            return Reply::error(
                413,
                format!("the body is over the {} byte limit", self.limit),
            );
        }
        if let Some(encoding) = (request.header)("content-encoding")
            && let Some(reply) = cold::compressed(encoding)
        {
            return reply;
        }
        if let Some(codings) = (request.header)("transfer-encoding")
            && let Some(reply) = cold::transfer_coded(codings)
        {
            return reply;
        }
        if let Some(verifier) = &self.verifier
            && let Err(e) = verifier.verify(request.body, &request.header)
        {
            return Reply::error(401, e.to_string());
        }
        let header_name = (request.header)(EVENT_HEADER).and_then(|v| std::str::from_utf8(v).ok());
        let parsed = match header_name {
            Some(name) => Parsed::<S>::parse_as(request.body, name),
            None => Parsed::<S>::parse(request.body),
        };
        let parsed = match parsed {
            Ok(p) => p,
            Err(e) => return parse_error(&e),
        };
        // With a max event age: a delivery whose resent signature (made by
        // `send`, now, with the token) holds is no replay, whatever its
        // event's age.
        // `None` without the header; whether it holds, with it.
        let resent = self
            .max_event_age
            .and((request.header)(RESENT_HEADER))
            .map(|value| {
                self.verifier
                    .as_ref()
                    .is_some_and(|verifier| verifier.verify_resent(request.body, value, unix_now()))
            });
        let event = parsed.event.name().as_str().to_owned();
        let id = parsed.event.envelope().event_id().map(str::to_owned);
        // At `error`: enabled wherever anything of the receiver is logged,
        // so that a service logging warnings alone still has the event's id
        // on each (an `info` span is off under a `warn` filter). Made only
        // once a `tracing` subscriber is set: without one, `tracing`'s
        // fallback to the `log` crate would write each span as a record of
        // its level, an `error` line per delivery.
        let span = if tracing::dispatcher::has_been_set() {
            tracing::error_span!(
                "kustomer_webhook",
                event = event.as_str(),
                // An event without one has the field left out.
                id = id.as_deref(),
                resource_id = parsed.event.envelope().resource_id(),
                // Which tenant, for an app installed in several orgs.
                org = parsed.event.envelope().org(),
            )
        } else {
            tracing::Span::none()
        };
        if parsed.event.envelope().event_name().is_none() {
            span.in_scope(cold::named_by_header_only);
        }
        // The span covers the rest of the delivery, across its awaits. Boxed
        // on its own: the delivery's whole future (boxed again by the axum
        // router's batches) then stays small enough for the allocator's
        // fast path, and neither is copied whole when it starts.
        Box::pin(self.deliver(parsed, event, id, resent))
            .instrument(span)
            .await
    }

    /// De-duplicates, checks ordering, and dispatches a parsed event.
    async fn deliver(
        &self,
        parsed: Parsed<'_, S>,
        event: String,
        id: Option<String>,
        resent: Option<bool>,
    ) -> Reply {
        // Each path ends in one reply, which takes the name and id along.
        macro_rules! reply {
            ($status:expr, $outcome:expr, $error:expr $(,)?) => {
                reply!($status, $outcome, $error, None)
            };
            ($status:expr, $outcome:expr, $error:expr, $detail:expr) => {
                Reply {
                    status: $status,
                    outcome: $outcome,
                    event: Some(event),
                    id,
                    error: $error,
                    detail: $detail,
                    pointer: None,
                }
            };
        }
        // An event older than the max event age, not sent again just now
        // with the token: a possible replay of a recorded delivery, which
        // nothing here can tell from a delivery that late. Never
        // dispatched, nor kept as a dead letter (whose replay with the
        // token would dispatch it), whatever the store answers but
        // `duplicate` and `in progress`; acknowledged (Kustomer's retries
        // would be as old) and logged.
        let too_old = match self.max_event_age {
            Some(max) if resent != Some(true) => self
                .too_old(parsed.event.envelope().created_at(), max)
                .map(|why| match resent {
                    Some(_) => cold::resent_refused(why),
                    None => why,
                }),
            _ => None,
        };
        // The store's key: the event id; for an `id` that came as another
        // JSON type than a string (drift), its JSON text.
        let other_key;
        let key = match (&self.store, &id) {
            // An id with a U+FFFD in it may have been read from a lone
            // surrogate escape (`\ud800`), which any other lone one reads as
            // too: keyed by its JSON text as received, so that two such ids
            // are not taken for one.
            (Some(_), Some(id)) if id.contains('\u{FFFD}') => {
                other_key = cold::key_of_replaced_id(parsed.raw);
                other_key.as_deref().or(Some(id.as_str()))
            }
            // A string id that could be taken for another's key (below) gets
            // `str:` before it, so that no two ids share a key.
            (Some(_), Some(id)) if id.starts_with("json:") || id.starts_with("str:") => {
                other_key = Some(format!("str:{id}"));
                other_key.as_deref()
            }
            // An empty id, or one of white space alone, names no event:
            // keyed, every event sent with one would be taken for the first.
            (Some(_), Some(id)) if names_nothing(id) => {
                cold::no_id("the event's `id` is empty (or white space alone)");
                None
            }
            (Some(_), Some(id)) => Some(id.as_str()),
            (Some(_), None) => {
                other_key = cold::key_of_other_id(parsed.raw);
                other_key.as_deref()
            }
            (None, _) => None,
        };
        let claimed = match (&self.store, key) {
            // A store that does not answer gets the handler's time limit,
            // so the delivery still gets a retryable answer in time.
            (Some(store), Some(key)) => match within(None, self.timeout, store.begin(key)).await {
                Some(Ok(Begin::New)) => true,
                Some(Ok(Begin::Done)) => {
                    if self.dead_letters.is_some() {
                        self.forget(id.as_deref(), parsed.raw).await;
                    }
                    return reply!(200, outcome::DUPLICATE, None);
                }
                Some(Ok(Begin::InProgress)) => {
                    let why = cold::in_progress(self.in_progress_logged.take());
                    return reply!(409, outcome::IN_PROGRESS, None, Some(why));
                }
                // Whatever the store would say, a too-old event is not
                // dispatched nor kept: no need of it (said, though).
                Some(Err(e)) if too_old.is_some() => {
                    cold::store_failed(&e, self.store_failures_logged.take());
                    let reply = reply!(200, outcome::TOO_OLD, None, too_old);
                    self.log_too_old(&reply);
                    return reply;
                }
                None if too_old.is_some() => {
                    cold::store_silent(self.timeout, self.store_failures_logged.take());
                    let reply = reply!(200, outcome::TOO_OLD, None, too_old);
                    self.log_too_old(&reply);
                    return reply;
                }
                Some(Err(e)) => {
                    let error = cold::store_failed(&e, self.store_failures_logged.take());
                    self.tell_not_run(&event, id.as_deref(), &parsed.event, &error);
                    self.keep(id.as_deref(), parsed.raw, &error).await;
                    return reply!(503, outcome::ERROR, Some(error));
                }
                None => {
                    let error = cold::store_silent(self.timeout, self.store_failures_logged.take());
                    self.tell_not_run(&event, id.as_deref(), &parsed.event, &error);
                    self.keep(id.as_deref(), parsed.raw, &error).await;
                    return reply!(503, outcome::ERROR, Some(error));
                }
            },
            _ => false,
        };
        // Until the handler's run takes the claim over, dropping the delivery
        // (a client hanging up while it is captured) gives the claim up.
        let mut claim = ClaimGuard(if claimed {
            self.store.clone().zip(key.map(str::to_owned))
        } else {
            None
        });
        // An event too old (above) is not dispatched: acknowledged once the
        // store has answered (so that a retry of a handled event is still a
        // duplicate), its claim given up.
        if let Some(why) = too_old {
            // The guard keeps the claim until the store took its give-up:
            // dropped before (the client hung up) or after a failure, it
            // gives it up in the background.
            if let Some((store, key)) = &claim.0 {
                match within(None, self.timeout, store.abandon(key)).await {
                    Some(Ok(())) => claim.0 = None,
                    Some(Err(e)) => cold::give_up_failed(Some(&e)),
                    None => cold::give_up_failed(None),
                }
            }
            let reply = reply!(200, outcome::TOO_OLD, None, Some(why));
            self.log_too_old(&reply);
            return reply;
        }
        // With the ordering guard, the resource's turn first: the check, the
        // handler and the record of the revision are one step per resource.
        let mut turn = None;
        if let Some(turns) = &self.turns
            && let Some(resource) = guarded_resource(parsed.event.envelope())
        {
            let shared = self.ordering.as_ref().filter(|store| store.shares_turns());
            let hold = self.turn_hold();
            match within(
                None,
                self.timeout,
                Turns::take(turns, resource, shared, hold),
            )
            .await
            {
                Some(Ok(taken)) => turn = Some(Box::new(taken)),
                Some(Err(e)) => {
                    let error = cold::revisions_failed(&e);
                    self.tell_not_run(&event, id.as_deref(), &parsed.event, &error);
                    self.keep(id.as_deref(), parsed.raw, &error).await;
                    return reply!(503, outcome::ERROR, Some(error));
                }
                None => {
                    let error = cold::no_turn(resource, self.timeout);
                    self.tell_not_run(&event, id.as_deref(), &parsed.event, &error);
                    self.keep(id.as_deref(), parsed.raw, &error).await;
                    return reply!(503, outcome::ERROR, Some(error));
                }
            }
        }
        // With the ordering guard: the last revision handled of the resource.
        let envelope = parsed.event.envelope();
        let order = self.ordering.as_ref().and_then(|_| Order::of(envelope));
        let guarded = self.ordering.as_ref().filter(|_| is_update(&event));
        let stale = match (guarded, guarded_resource(envelope), &order) {
            (Some(revisions), Some(_), Some(order)) => {
                match within(None, self.timeout, revisions.last_revision(&order.resource)).await {
                    Some(Ok(last)) => last
                        .filter(|&last| order.check <= last)
                        .map(|last| order.shown(last)),
                    Some(Err(e)) => {
                        let error = cold::revisions_failed(&e);
                        self.tell_not_run(&event, id.as_deref(), &parsed.event, &error);
                        self.keep(id.as_deref(), parsed.raw, &error).await;
                        return reply!(503, outcome::ERROR, Some(error));
                    }
                    None => {
                        let error = cold::revisions_silent(self.timeout);
                        self.tell_not_run(&event, id.as_deref(), &parsed.event, &error);
                        self.keep(id.as_deref(), parsed.raw, &error).await;
                        return reply!(503, outcome::ERROR, Some(error));
                    }
                }
            }
            (Some(_), None, _) => {
                let _ = cold::unordered(parsed.raw);
                None
            }
            _ => None,
        };
        if let Some(last) = stale {
            if let Some((store, id)) = &claim.0 {
                // Acknowledged: a retry of this delivery is a duplicate.
                let _ = within(None, self.timeout, store.complete(id)).await;
            }
            claim.0 = None;
            // The next event of the resource may go on.
            if let Some(turn) = turn.take() {
                turn.give_back(self.timeout).await;
            }
            if self.dead_letters.is_some() {
                self.forget(id.as_deref(), parsed.raw).await;
            }
            return reply!(200, outcome::STALE, None, Some(last));
        }
        if let Some(inspect) = &self.inspect {
            inspect(&parsed);
        }
        if let Some(capture) = &self.capture {
            cold::capture(capture, &parsed).await;
        }
        // Only the ordering guard needs the resource after the handler ran:
        // what to record for it (a creation's too).
        let (resource, rev, time) = match order {
            Some(order) => (
                Some(order.resource.into_owned()),
                Some(order.record),
                order.time,
            ),
            None => (None, None, None),
        };
        let (dispatcher, timeout, slots) = (
            Arc::clone(&self.dispatcher),
            self.timeout,
            self.slots.clone(),
        );
        // A plain `fn` handler runs on a thread that its time limit cannot
        // stop: past the limit, its run goes on by itself (below).
        let on_a_thread = dispatcher.runs_on_a_thread(&parsed.event);
        // The handler runs here, in the task polling the delivery (its
        // request's, or a batch's in the axum router), without the cost of
        // spawning one; but if the delivery is dropped before the handler
        // finished (the client hung up), the rest of the run moves to a task
        // of its own: the handler is never cancelled halfway, and its claim
        // is always completed or abandoned.
        //
        // With dead letters on, the run keeps what it needs to save or clear
        // the delivery's file, even if the delivery is dropped meanwhile.
        let raw = parsed.raw;
        // With a failure hook: what it is told of the event, if its run
        // fails (in `Settle::run`, or below if the run panics).
        let failure = self
            .on_failure
            .as_ref()
            .map(|hook| cold::failure_report(hook, &event, id.as_deref(), &parsed.event));
        let settle = Settle {
            claim: ClaimGuard(claim.0.take()),
            ordering: self.ordering.clone(),
            turn,
            resource,
            rev,
            time,
            letters: self
                .dead_letters
                .clone()
                .map(|letters| (letters, id.clone(), raw.to_vec())),
            failure: failure.clone(),
            timeout,
        };
        let run = async move {
            // With a limit, a slot first, held until the handler is done; the
            // handler's time limit starts once it has one.
            let mut busy = None;
            let slot = match &slots {
                None => None,
                Some(slots) => match cold::slot(slots).await {
                    Ok(slot) => Some(slot),
                    Err(why) => {
                        busy = Some(why);
                        None
                    }
                },
            };
            if busy.is_some() {
                settle.run(&None, busy.as_deref()).await;
                return (None, busy, false);
            }
            let start = tokio::time::Instant::now();
            if on_a_thread {
                let (result, running) =
                    cold::on_a_thread(dispatcher, parsed.event, start, slot, settle).await;
                return (result, None, running);
            }
            let result = within(
                Some(start),
                timeout,
                dispatcher.dispatch_event(parsed.event),
            )
            .await;
            drop(slot);
            settle.run(&result, None).await;
            (result, None, false)
        };
        // Finished after its request was dropped (a client that hung up
        // while its handler ran), the run counts its own outcome.
        let run = Detached::new(run, &self.counters, |counters, (result, _, _)| {
            Counters::bump(match result {
                Some(Ok(_)) => &counters.accepted,
                _ => &counters.failed,
            })
        });
        let (dispatched, busy, running) = match run.await {
            Ok(ran) => ran,
            Err(panic) => {
                let error = cold::panicked(panic);
                if let Some(report) = &failure {
                    cold::report_failure(report, FailureCause::ReceiverPanicked(&error));
                }
                self.keep(id.as_deref(), raw, &error).await;
                let shown = if self.hide_handler_errors {
                    cold::hidden("the delivery's run panicked", &event)
                } else {
                    error
                };
                return reply!(500, outcome::ERROR, Some(shown));
            }
        };
        match dispatched {
            Some(Ok(Dispatched::Handled { .. })) => reply!(200, outcome::HANDLED, None),
            Some(Ok(Dispatched::NoHandler { .. })) => {
                cold::no_handler(&self.unhandled_said, &event);
                reply!(200, outcome::NO_HANDLER, None)
            }
            Some(Err(e)) => {
                let error = cold::handler_failed(&e);
                let shown = match &e {
                    _ if !self.hide_handler_errors => error,
                    crate::DispatchError::Panicked { .. } => {
                        cold::hidden("the handler panicked", &event)
                    }
                    _ => cold::hidden("the handler failed", &event),
                };
                reply!(500, outcome::ERROR, Some(shown))
            }
            None => match busy {
                Some(why) => reply!(503, outcome::ERROR, Some(why)),
                None if running => reply!(
                    503,
                    outcome::ERROR,
                    Some(cold::handler_runs_on(self.timeout))
                ),
                None => reply!(
                    503,
                    outcome::ERROR,
                    Some(cold::handler_timed_out(self.timeout))
                ),
            },
        }
    }
}

/// The resource whose revisions the ordering guard compares: `data.id`,
/// when it names one (an empty id, or one of white space alone, does not:
/// every event sent with one would be compared with the others).
fn guarded_resource(envelope: &(impl crate::Envelope + ?Sized)) -> Option<&str> {
    envelope.resource_id().filter(|id| !names_nothing(id))
}

/// Whether an id names nothing: empty, or white space alone (`" "`), which
/// no system hands out as an id.
pub(crate) fn names_nothing(id: &str) -> bool {
    id.trim().is_empty()
}

/// What orders an event among its resource's, and under which key the
/// ordering guard keeps the last one handled: its `rev`; or, for a resource
/// without one (users and teams), or an update whose `rev` is missing or
/// cannot be read, its `updatedAt`, kept under a key of its own
/// (`<data.id>@updatedAt`) so that a revision and a time are never compared.
/// An event with both records both, so that a later update without a `rev`
/// is still ordered among its resource's. An update is stale when it is not
/// after the last one handled: for `rev`, not newer (an equal one is the
/// same revision); for `updatedAt`, older (two updates in one millisecond
/// are both handled). So a time is checked as `2t + 1` and recorded as
/// `2t`.
struct Order<'a> {
    resource: std::borrow::Cow<'a, str>,
    /// Compared with the last value recorded: stale when not above it.
    check: i64,
    /// Recorded once the event is handled.
    record: i64,
    by_time: bool,
    /// With a `rev`: the `updatedAt` key and time recorded beside it.
    time: Option<(String, i64)>,
}

impl<'a> Order<'a> {
    fn of(envelope: &'a (impl crate::Envelope + ?Sized)) -> Option<Order<'a>> {
        let resource = guarded_resource(envelope)?;
        let time_key = || format!("{resource}{}", crate::dedupe::TIME_KEY_SUFFIX);
        let doubled = envelope.updated_at().and_then(|t| t.checked_mul(2));
        if let Some(rev) = envelope.rev() {
            return Some(Order {
                resource: resource.into(),
                check: rev,
                record: rev,
                by_time: false,
                time: doubled.map(|t| (time_key(), t)),
            });
        }
        let doubled = doubled?;
        Some(Order {
            resource: time_key().into(),
            check: doubled.checked_add(1)?,
            record: doubled,
            by_time: true,
            time: None,
        })
    }

    /// Why the event is stale, `last` being the last value recorded.
    #[cold]
    #[inline(never)]
    fn shown(&self, last: i64) -> String {
        if self.by_time {
            let at = chrono::DateTime::from_timestamp_millis(last / 2)
                .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_else(|| format!("{} ms", last / 2));
            format!(
                "updatedAt older than {at}, the last processed for this resource (this update \
                 has no rev to order it by)"
            )
        } else {
            cold::stale(last)
        }
    }
}

/// Whether the ordering guard may find the event named `name` stale: an
/// update (`kustomer.customer.update`, `kustomer.kobject.order.update`).
fn is_update(name: &str) -> bool {
    name.ends_with(".update")
}

impl<S: Events> Receiver<S> {
    /// How long a resource's turn shared with other processes is held at
    /// most (see [`TURN_HOLD_IN_TIME_LIMITS`]).
    fn turn_hold(&self) -> Duration {
        let slot_wait = self.slots.as_ref().map_or(Duration::ZERO, |s| s.max_wait);
        self.timeout
            .saturating_mul(TURN_HOLD_IN_TIME_LIMITS)
            .saturating_add(slot_wait)
            .saturating_add(TURN_HOLD_MARGIN)
            .min(MAX_TURN_HOLD)
    }

    /// Tells the failure hook, if there is one, of an event whose handler
    /// did not run: `why` (its idempotency store or the ordering guard
    /// failed or did not answer).
    #[inline(never)]
    fn tell_not_run(&self, event: &str, id: Option<&str>, parsed: &S, why: &str) {
        if let Some(hook) = &self.on_failure {
            let report = cold::failure_report(hook, event, id, parsed);
            cold::report_failure(&report, FailureCause::NotRun(why));
        }
    }

    /// Keeps a delivery answered with a 5xx as a dead letter, when they are
    /// on. Boxed and out of line, so that the delivery's own future does not
    /// grow by what it holds.
    #[inline(never)]
    fn keep<'a>(&'a self, id: Option<&'a str>, raw: &'a [u8], why: &'a str) -> Boxed<'a> {
        Box::pin(async move {
            if let Some(letters) = &self.dead_letters {
                letters.save(id, raw.to_vec(), why).await;
            }
        })
    }

    /// Removes the dead letter of a delivery that was acknowledged, if there
    /// is one; like [`keep`](Self::keep), boxed and out of line.
    #[inline(never)]
    fn forget<'a>(&'a self, id: Option<&'a str>, raw: &'a [u8]) -> Boxed<'a> {
        Box::pin(async move {
            if let Some(letters) = &self.dead_letters {
                letters.clear(id, raw).await;
            }
        })
    }
}

/// A boxed future of the receiver's rarely taken paths.
type Boxed<'a> = std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// What the delivery logs and answers when something went wrong, out of
/// line: every delivery runs through `deliver`, and kept apart, these paths
/// do not spread its code over more of the instruction cache.
pub(crate) use cold::unlogged as unlogged_line;

mod cold {
    use std::any::Any;
    use std::fmt::Display;
    use std::time::Duration;

    use crate::capture::Capture;
    use crate::{DispatchError, Events, Parsed};

    /// The target of the receiver's log lines (this module's own path
    /// would show `cold`).
    ///
    /// Text that a delivery can put in a line (an event name, a handler's
    /// error, which may quote the event) is logged as a string field, which
    /// `tracing`'s formatters quote and escape, never with `%` (written as
    /// it is): a line break in it cannot start a forged line of the log.
    const LOG: &str = "kustomer_webhooks::receiver";

    /// A body sent with a `Content-Encoding` other than `identity`: 415,
    /// as RFC 9110 has it for a content coding the server does not take.
    /// Its signature could only be checked against the bytes as sent, and
    /// Kustomer sends them uncompressed.
    #[cold]
    #[inline(never)]
    pub(super) fn compressed(encoding: &[u8]) -> Option<super::Reply> {
        let shown = other_codings(encoding, &["identity"])?;
        Some(super::Reply::error(
            415,
            format!(
                "the body is encoded ({shown:?}): deliveries are taken as sent, uncompressed \
                 (Content-Encoding identity)"
            ),
        ))
    }

    /// A coding header's value (`gzip, chunked`), cut for a reply, when it
    /// names a coding other than those `taken` (in any case); `None` when
    /// it names none.
    fn other_codings(value: &[u8], taken: &[&str]) -> Option<String> {
        let text = String::from_utf8_lossy(value);
        let plain = text.split(',').all(|coding| {
            let coding = coding.trim();
            coding.is_empty() || taken.iter().any(|t| coding.eq_ignore_ascii_case(t))
        });
        (!plain).then(|| text.trim().chars().take(64).collect())
    }

    /// A transfer coding other than `chunked` (`gzip, chunked`): the HTTP
    /// layer reads the chunks and leaves the rest to the receiver, which
    /// does not undo it, so it is refused as RFC 9112 says, 501, rather
    /// than read as if it were not there.
    #[cold]
    #[inline(never)]
    pub(super) fn transfer_coded(codings: &[u8]) -> Option<super::Reply> {
        let shown = other_codings(codings, &["chunked", "identity"])?;
        Some(super::Reply::error(
            501,
            format!(
                "the body has a transfer coding the receiver does not undo ({shown:?}): send it \
                 as it is, or chunked only"
            ),
        ))
    }

    #[cold]
    #[inline(never)]
    pub(super) fn no_turn(resource: &str, timeout: Duration) -> String {
        let error = format!(
            "another event of resource {resource:?} was still being handled after {timeout:?}"
        );
        tracing::warn!(target: LOG, error = error.as_str(), "no turn for the ordering guard");
        error
    }

    /// `resource`'s turn in a store other processes share, asked for again
    /// while another holds it (after 2 ms, doubling up to 20 ms, each pause
    /// a little shorter or longer by chance, so that replicas waiting
    /// together do not ask in step). Boxed, so that the delivery's future
    /// does not hold the pause's timer.
    #[inline(never)]
    pub(super) fn take_shared_turn<'a>(
        store: &'a std::sync::Arc<dyn crate::dedupe::RevisionStore>,
        resource: &'a str,
        hold: Duration,
    ) -> crate::dedupe::StoreFuture<
        'a,
        Option<(std::sync::Arc<dyn crate::dedupe::RevisionStore>, String)>,
    > {
        Box::pin(async move {
            let mut pause = Duration::from_millis(2);
            loop {
                match store.take_turn(resource, hold).await? {
                    crate::dedupe::SharedTurn::Taken(token) => {
                        return Ok(Some((std::sync::Arc::clone(store), token)));
                    }
                    crate::dedupe::SharedTurn::InProcess => return Ok(None),
                    crate::dedupe::SharedTurn::Busy => {
                        tokio::time::sleep(pause.mul_f64(0.5 + jitter())).await;
                        pause = (pause * 2).min(Duration::from_millis(20));
                    }
                }
            }
        })
    }

    /// A number in [0, 1), different on each call.
    fn jitter() -> f64 {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
    }

    #[cold]
    #[inline(never)]
    pub(super) fn turn_not_given_back(resource: &str, e: Option<&crate::dedupe::StoreError>) {
        tracing::warn!(
            target: LOG,
            resource_id = resource,
            error = e.map(|e| format!("the store {}", e.said())).as_deref(),
            "the revision store did not take a resource's turn back: the resource's next event \
             on another replica waits until the turn's hold ends",
        );
    }

    #[cold]
    #[inline(never)]
    pub(super) fn store_failed(e: &crate::dedupe::StoreError, log: bool) -> String {
        if log {
            tracing::warn!(
                target: LOG,
                error = e.to_string().as_str(),
                "idempotency store failed",
            );
        }
        // Its text says which store error it is ("the idempotency store is
        // unavailable: …", "… failed: …").
        e.to_string()
    }

    #[cold]
    #[inline(never)]
    pub(super) fn store_silent(timeout: Duration, log: bool) -> String {
        if log {
            tracing::warn!(
                target: LOG,
                ?timeout,
                "idempotency store did not answer",
            );
        }
        format!("the idempotency store did not answer within {timeout:?}")
    }

    #[cold]
    #[inline(never)]
    pub(super) fn revisions_failed(e: &crate::dedupe::StoreError) -> String {
        let error = format!("the ordering guard's revision store {}", e.said());
        tracing::warn!(target: LOG, error = error.as_str(), "revision store failed");
        error
    }

    #[cold]
    #[inline(never)]
    pub(super) fn revisions_silent(timeout: Duration) -> String {
        tracing::warn!(
            target: LOG,
            ?timeout,
            "revision store did not answer",
        );
        format!("the ordering guard's revision store did not answer within {timeout:?}")
    }

    /// Records a handled update's revision; a failure is only logged: the
    /// handler ran, and the delivery is acknowledged.
    #[cold]
    #[inline(never)]
    pub(super) async fn record_revision(
        revisions: std::sync::Arc<dyn crate::dedupe::RevisionStore>,
        resource: String,
        rev: i64,
        timeout: Duration,
    ) {
        match super::within(None, timeout, revisions.record_revision(&resource, rev)).await {
            Some(Ok(())) => return,
            Some(Err(e)) => tracing::warn!(
                target: LOG,
                error = format!("the store {}", e.said()).as_str(),
                resource_id = resource.as_str(),
                rev,
                "revision store failed to record a handled update's revision; trying again",
            ),
            None => tracing::warn!(
                target: LOG,
                ?timeout,
                resource_id = resource.as_str(),
                rev,
                "revision store did not record a handled update's revision in time; trying again",
            ),
        }
        // Tried again in the background, as a completion is: unrecorded, an
        // older update arriving later would be handled after this one.
        let what = format!("the revision {rev} of resource {resource:?}");
        later(what, move || {
            let (revisions, resource) = (std::sync::Arc::clone(&revisions), resource.clone());
            async move {
                let record = revisions.record_revision(&resource, rev);
                matches!(super::within(None, timeout, record).await, Some(Ok(())))
            }
        });
    }

    #[cold]
    #[inline(never)]
    pub(super) fn in_progress(log: bool) -> String {
        if log {
            tracing::info!(
                target: LOG,
                "delivery answered 409: another delivery of its event is being handled \
                 (Kustomer retries it)"
            );
        }
        "another delivery of this event is being handled; retry later".to_owned()
    }

    /// How many deliveries were `what` without a line of their own.
    pub(crate) fn unlogged(what: &str, count: u64) -> String {
        format!(
            "{count} more deliveries were {what} without a line of their own (at most {} are \
             logged a second; the counters count every one)",
            super::REJECTIONS_LOGGED_PER_SECOND
        )
    }

    #[cold]
    #[inline(never)]
    pub(super) fn rejections_unlogged(count: u64) {
        // Of other deliveries than the one whose span may be current: a
        // line of its own.
        tracing::info!(
            target: LOG,
            parent: None,
            unlogged = count,
            "{}",
            unlogged("rejected", count)
        );
    }

    #[cold]
    #[inline(never)]
    pub(super) fn in_progress_unlogged(count: u64) {
        let line = unlogged(
            "answered 409 (another delivery of their event being handled)",
            count,
        );
        tracing::info!(target: LOG, parent: None, unlogged = count, "{line}");
    }

    #[cold]
    #[inline(never)]
    pub(super) fn store_failures_unlogged(count: u64) {
        let line = unlogged(
            "answered without their idempotency store (it failed or did not answer)",
            count,
        );
        tracing::warn!(target: LOG, parent: None, unlogged = count, "{line}");
    }

    /// Said at `warn`, as each too-old event is: one may have been real.
    #[cold]
    #[inline(never)]
    pub(super) fn too_old_unlogged(count: u64) {
        let line = unlogged("acknowledged as too old", count);
        // Said while the next too-old delivery is logged, in its span: the
        // count is of others, so the line has no span.
        tracing::warn!(target: LOG, parent: None, unlogged = count, "{line}");
    }

    #[cold]
    #[inline(never)]
    pub(super) fn rejected(reply: &super::Reply) {
        tracing::info!(
            target: LOG,
            status = reply.status,
            outcome = reply.outcome,
            // Absent ones are left out of the line.
            error = reply.error.as_deref(),
            detail = reply.detail.as_deref(),
            pointer = reply.pointer.as_deref(),
            "delivery rejected"
        );
    }

    /// Says, once per event name (up to [`UNHANDLED_SAID`](super::UNHANDLED_SAID) names), that an
    /// event was acknowledged with no handler: a 2xx Kustomer does not
    /// retry, so a handler left out of the dispatcher would otherwise lose
    /// its events without a trace.
    #[cold]
    #[inline(never)]
    pub(super) fn no_handler(said: &std::sync::Mutex<Vec<String>>, event: &str) {
        // A name no event has (a receiver without verification takes any):
        // shown escaped and cut short, and kept so.
        const LONGEST: usize = 128;
        // Control characters, and those that turn the text's direction.
        let hidden = |c: char| {
            c.is_control()
                || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        };
        let long = event.chars().count() > LONGEST;
        let shown = if long || event.chars().any(hidden) {
            let cut: String = event.chars().take(LONGEST).collect();
            format!("{cut:?}{}", if long { "…" } else { "" })
        } else {
            event.to_owned()
        };
        let mut said = said
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if said.len() >= super::UNHANDLED_SAID || said.contains(&shown) {
            return;
        }
        said.push(shown.clone());
        drop(said);
        tracing::warn!(
            target: LOG,
            event = shown,
            "no handler takes {shown}: its deliveries are acknowledged (200, `no handler`) and \
             not sent again. Add a handler for it (a #[kustomer_webhook] function left out of \
             the dispatcher? `.registered()` adds them all), or take it out of the app \
             definition's webhook events (said once per event)",
        );
    }

    #[cold]
    #[inline(never)]
    pub(super) fn no_handlers() {
        tracing::warn!(
            target: LOG,
            "the dispatcher has no handlers: every delivery will be acknowledged without \
             running anything (was `.registered()` left out of the builder?)",
        );
    }

    #[cold]
    #[inline(never)]
    pub(super) fn named_by_header_only() {
        tracing::warn!(
            target: LOG,
            "the body has no `name` string: the event is the one its header names",
        );
    }

    /// The store's key for an event whose `id` is not a string: `json:`
    /// and the id's JSON text (`json:42`), which no Kustomer id (24 hex
    /// digits) can be. `None`, logged, when the body has no `id` to key by
    /// (absent or null): the event is then handled without de-duplication.
    #[cold]
    #[inline(never)]
    pub(super) fn key_of_other_id(raw: &[u8]) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Id {
            id: Option<serde_json::Value>,
        }
        let id = serde_json::from_slice::<Id>(crate::parse::without_bom(raw))
            .ok()
            .and_then(|v| v.id);
        match id {
            Some(id) => {
                tracing::warn!(
                    target: LOG,
                    id = %id,
                    "the event's `id` is not a string: de-duplicated by its JSON text",
                );
                Some(format!("json:{id}"))
            }
            None => {
                no_id("the event has no `id`");
                None
            }
        }
    }

    /// The store's key of a string id holding U+FFFD: `json:` and the id's
    /// JSON text exactly as received (`json:"a\ud800"`), escapes and all
    /// ([`raw_id`](crate::parse::raw_id)), which no other id's key can be
    /// (other `json:` keys are of ids that are not strings, and a string id
    /// starting with `json:` gets `str:`).
    #[cold]
    #[inline(never)]
    pub(super) fn key_of_replaced_id(raw: &[u8]) -> Option<String> {
        crate::parse::raw_id(raw).map(|id| format!("json:{id}"))
    }

    /// Logs that an update is handled without the ordering guard: its
    /// `data.id` is missing, null, not a string (drift) or empty, so it
    /// names no resource whose revisions could be compared.
    #[cold]
    #[inline(never)]
    pub(super) fn unordered(raw: &[u8]) -> &'static str {
        let body = serde_json::from_slice::<serde_json::Value>(crate::parse::without_bom(raw));
        let id = body.as_ref().ok().and_then(|b| b.get("data")?.get("id"));
        let found = match id {
            None => "missing",
            Some(serde_json::Value::Null) => "null",
            Some(serde_json::Value::String(_)) => "an empty string",
            Some(serde_json::Value::Number(_)) => "a number",
            Some(serde_json::Value::Bool(_)) => "a boolean",
            Some(serde_json::Value::Array(_)) => "an array",
            Some(serde_json::Value::Object(_)) => "an object",
        };
        tracing::warn!(
            target: LOG,
            found,
            "the update's `data.id` names no resource: handled without the ordering guard",
        );
        found
    }

    /// Why an event created at `created_at` (milliseconds since the Unix
    /// epoch) is not dispatched, when it is older than `max` at `now`
    /// (seconds since the epoch); `None` when it is not.
    #[cold]
    #[inline(never)]
    pub(super) fn too_old(created_at: i64, max: Duration, now: u64) -> Option<String> {
        let now = i64::try_from(now).unwrap_or(i64::MAX).saturating_mul(1000);
        let age_ms = u64::try_from(now.saturating_sub(created_at)).ok()?;
        let age = Duration::from_millis(age_ms);
        if age <= max {
            return None;
        }
        let at = chrono::DateTime::from_timestamp_millis(created_at)
            .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_else(|| created_at.to_string());
        Some(format!(
            "the event was created at {at}, {} ago, more than the receiver's max event age of {} s{}: not dispatched, as a possible replay",
            spoken(age),
            max.as_secs(),
            Some(max)
                .filter(|max| max.as_secs() >= 120)
                .map(|max| format!(" ({})", spoken(max)))
                .unwrap_or_default(),
        ))
    }

    /// Why an event is too old, and that the resent signature it came with
    /// did not hold.
    #[cold]
    #[inline(never)]
    pub(super) fn resent_refused(why: String) -> String {
        format!(
            "{why}; its {} header was not taken (made more than {} s from this clock, with \
             another token, or not of the form t=…,v1=…; a receiver that verifies no signature \
             takes none)",
            crate::verify::RESENT_HEADER,
            crate::verify::RESENT_TOLERANCE.as_secs()
        )
    }

    /// Says, once, that an event had no `createdAt` to check its age by.
    #[cold]
    #[inline(never)]
    pub(super) fn no_created_at() {
        tracing::warn!(
            target: LOG,
            "an event had no `createdAt` date-time (or its models do not read it: models \
             generated before `Envelope::created_at` need regenerating): such events are \
             handled without the check of their age; said once",
        );
    }

    /// Logs an event acknowledged without being dispatched, for its age.
    #[cold]
    #[inline(never)]
    pub(super) fn acknowledged_too_old(reply: &super::Reply, again: u64) {
        // The delivery's span names the event and its id.
        let detail = reply.detail.as_deref();
        if again == 0 {
            tracing::warn!(
                target: LOG,
                detail,
                "event acknowledged without being dispatched: too old",
            );
        } else {
            tracing::warn!(
                target: LOG,
                detail,
                again,
                "event acknowledged without being dispatched: too old (and {again} more times \
                 since its last line)",
            );
        }
    }

    /// A duration as a person says it: `2049 days`, `3 h 5 min`,
    /// `75 min`, `12 min 30 s`, `59 s`.
    pub(super) fn spoken(d: Duration) -> String {
        let s = d.as_secs();
        let (days, h, min, sec) = (s / 86_400, s / 3600, s / 60 % 60, s % 60);
        match s {
            172_800.. => format!("{days} days"),
            7200.. if min == 0 => format!("{h} h"),
            7200.. => format!("{h} h {min} min"),
            120.. if sec == 0 => format!("{} min", s / 60),
            120.. => format!("{} min {sec} s", s / 60),
            _ => format!("{s} s"),
        }
    }

    /// Logs that an event is handled without de-duplication, and why.
    #[cold]
    #[inline(never)]
    pub(super) fn no_id(why: &str) {
        tracing::warn!(target: LOG, "{why}: handled without de-duplication");
    }

    /// A too-old event's claim the store did not give up (it is given up
    /// in the background).
    #[cold]
    #[inline(never)]
    pub(super) fn give_up_failed(e: Option<&dyn Display>) {
        match e {
            Some(e) => tracing::warn!(
                target: LOG,
                error = e.to_string().as_str(),
                "idempotency store failed to give up a too old event's claim",
            ),
            None => tracing::warn!(
                target: LOG,
                "idempotency store did not answer giving up a too old event's claim",
            ),
        }
    }

    #[cold]
    #[inline(never)]
    pub(super) fn settle_failed(e: Option<&dyn Display>) {
        match e {
            Some(e) => {
                tracing::warn!(
                    target: LOG,
                    error = e.to_string().as_str(),
                    "idempotency store failed after the handler ran",
                )
            }
            None => {
                tracing::warn!(
                    target: LOG,
                    "idempotency store did not answer after the handler ran",
                )
            }
        }
    }

    /// A handled event's `complete` that the store did not take (out of
    /// reach, or no answer in time), tried again in the background
    /// ([`later`]): left undone, the claim would end at the store's
    /// in-progress timeout, and Kustomer's next retry would run the handler
    /// again.
    #[cold]
    #[inline(never)]
    pub(super) fn complete_later(
        store: std::sync::Arc<dyn crate::dedupe::IdempotencyStore>,
        id: String,
        timeout: Duration,
    ) {
        let what = format!("the completion of handled event {id:?}");
        later(what, move || {
            let (store, id) = (std::sync::Arc::clone(&store), id.clone());
            async move {
                matches!(
                    super::within(None, timeout, store.complete(&id)).await,
                    Some(Ok(()))
                )
            }
        });
    }

    /// Background retries under way, all receivers of the process together.
    pub(super) static RETRYING: std::sync::atomic::AtomicUsize =
        std::sync::atomic::AtomicUsize::new(0);

    /// Wakes every background retry to try at once (a service stopping).
    pub(super) static HURRY: tokio::sync::Notify = tokio::sync::Notify::const_new();

    /// The most background retries under way at once: past it (a store that
    /// takes reads but refuses writes, under load), a failed write is left
    /// as it is, with a warning.
    const MAX_RETRYING: usize = 10_000;

    /// How long a write is tried again: as long as a store keeps handled ids
    /// by default, past which it no longer matters.
    const RETRY_FOR: Duration = crate::dedupe::DEFAULT_RETENTION;

    /// Tries `attempt` again in the background until it succeeds: after
    /// 250 ms, then waits doubling up to 30 s (each stretched by up to a
    /// quarter, so that writes failed together are not retried together),
    /// for [`RETRY_FOR`]. At most [`MAX_RETRYING`] at once; the runtime
    /// shutting down ends them.
    fn later<F, Fut>(what: String, mut attempt: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = bool> + Send,
    {
        use std::sync::atomic::Ordering;
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if RETRYING.fetch_add(1, Ordering::Relaxed) >= MAX_RETRYING {
            RETRYING.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!(
                target: LOG,
                "{what} failed, and is not tried again: {MAX_RETRYING} other writes the store \
                 failed are being tried again already",
            );
            return;
        }
        struct Counted;
        impl Drop for Counted {
            fn drop(&mut self) {
                RETRYING.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let counted = Counted;
        // Spread by the subject's own hash: no random source needed.
        let spread = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write(what.as_bytes());
            (h.finish() % 256) as u32
        };
        // In the delivery's span, as the rest of its lines are.
        let span = tracing::Span::current();
        runtime.spawn(tracing::Instrument::instrument(
            async move {
                let _counted = counted;
                let until = tokio::time::Instant::now() + RETRY_FOR;
                let mut wait = Duration::from_millis(250);
                loop {
                    // The wait, or less when a stopping service hurries it.
                    let _ =
                        tokio::time::timeout(wait + wait * spread / 1024, HURRY.notified()).await;
                    if attempt().await {
                        tracing::info!(target: LOG, "{what} was written on a later try");
                        return;
                    }
                    if tokio::time::Instant::now() >= until {
                        tracing::warn!(
                            target: LOG,
                            "{what} was never written: the store failed it for {RETRY_FOR:?}",
                        );
                        return;
                    }
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
            },
            span,
        ));
    }

    #[cold]
    #[inline(never)]
    pub(super) fn stale(last: impl Display) -> String {
        format!("rev not newer than {last}, the last processed for this resource")
    }

    #[cold]
    #[inline(never)]
    pub(super) fn panicked(panic: Box<dyn Any + Send>) -> String {
        let why = crate::dispatch::panic_message(panic);
        let error = format!("the receiver panicked around the handler: {why}");
        tracing::warn!(target: LOG, error = error.as_str(), "delivery panicked");
        error
    }

    /// What a 500 says of a handler's failure with its error hidden.
    #[cold]
    #[inline(never)]
    pub(super) fn hidden(what: &str, event: &str) -> String {
        format!("{what} on {event}; its error is in the receiver's log")
    }

    #[cold]
    #[inline(never)]
    pub(super) fn handler_failed(e: &DispatchError) -> String {
        if matches!(
            e,
            DispatchError::Handler { .. } | DispatchError::Panicked { .. }
        ) {
            tracing::warn!(target: LOG, error = e.to_string().as_str(), "handler failed");
        }
        e.to_string()
    }

    /// A slot to run a handler in, waited for up to the slots' `max_wait`;
    /// else why not (logged). Boxed: off by default.
    #[inline(never)]
    pub(super) fn slot(
        slots: &super::Slots,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = Result<tokio::sync::OwnedSemaphorePermit, String>> + Send + '_>,
    > {
        Box::pin(async move {
            let acquire = std::sync::Arc::clone(&slots.semaphore).acquire_owned();
            // The semaphore is never closed, so acquiring fails only by time.
            match super::within(None, slots.max_wait, acquire).await {
                Some(Ok(slot)) => Ok(slot),
                Some(Err(_)) | None => {
                    let (n, wait) = (slots.n, slots.max_wait);
                    tracing::warn!(
                        target: LOG,
                        slots = n,
                        ?wait,
                        "every handler slot stayed busy: not run",
                    );
                    Err(format!(
                        "all {n} handler slots stayed busy for {wait:?}; retry later"
                    ))
                }
            }
        })
    }

    /// What the failure hook is to be told of the event, if it fails.
    #[cold]
    #[inline(never)]
    pub(super) fn failure_report<S: crate::Events>(
        hook: &std::sync::Arc<super::OnFailure>,
        event: &str,
        id: Option<&str>,
        parsed: &S,
    ) -> std::sync::Arc<super::FailureReport> {
        let envelope = parsed.envelope();
        std::sync::Arc::new(super::FailureReport {
            hook: std::sync::Arc::clone(hook),
            event: event.to_owned(),
            id: id.map(str::to_owned),
            resource_id: envelope.resource_id().map(str::to_owned),
            org: envelope.org().map(str::to_owned),
            told: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Why a run did not handle its event, for the failure hook; `None`
    /// when it did.
    pub(super) fn failure_cause<'a>(
        result: &'a Ran,
        busy: Option<&'a str>,
        timeout: Duration,
    ) -> Option<super::FailureCause<'a>> {
        match (result, busy) {
            (Some(Ok(_)), _) => None,
            (Some(Err(e)), _) => Some(super::FailureCause::Handler(e)),
            (None, Some(why)) => Some(super::FailureCause::NotRun(why)),
            (None, None) => Some(super::FailureCause::TimedOut(timeout)),
        }
    }

    /// Tells the failure hook why the event was not handled, once per
    /// run; a panic in it is caught and logged.
    #[cold]
    #[inline(never)]
    pub(super) fn report_failure(report: &super::FailureReport, cause: super::FailureCause<'_>) {
        if report.told.swap(true, std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let failure = super::Failure {
            event: &report.event,
            id: report.id.as_deref(),
            resource_id: report.resource_id.as_deref(),
            org: report.org.as_deref(),
            cause,
        };
        let hook = std::panic::AssertUnwindSafe(|| (report.hook)(&failure));
        if std::panic::catch_unwind(hook).is_err() {
            tracing::warn!(target: LOG, "the receiver's failure hook panicked");
        }
    }

    #[cold]
    #[inline(never)]
    pub(super) fn handler_timed_out(timeout: Duration) -> String {
        tracing::warn!(target: LOG, ?timeout, "handler timed out");
        format!("the handler took longer than {timeout:?}")
    }

    /// A handler's run: its result, or `None` when it did not end in time.
    type Ran = Option<Result<crate::Dispatched, DispatchError>>;

    pub(super) fn handler_runs_on(timeout: Duration) -> String {
        tracing::warn!(
            target: LOG,
            ?timeout,
            "plain fn handler timed out; it runs on, and its event is settled when it ends",
        );
        format!(
            "the handler took longer than {timeout:?}; it runs on, and a retry is \
             answered once it has ended"
        )
    }

    /// The run of a plain `fn` handler (on tokio's blocking pool), under
    /// its time limit from `start`. In time: its result, settled. Past the
    /// limit: `(None, true)`, and the thread, which nothing can stop, goes
    /// on in a task of its own that keeps the delivery's slot and claim until
    /// it ends, then settles (so a retry meanwhile is `in progress`, and
    /// never runs the handler a second time at once).
    #[inline(never)]
    pub(super) fn on_a_thread<S: crate::Events>(
        dispatcher: std::sync::Arc<crate::Dispatcher<S>>,
        event: S,
        start: tokio::time::Instant,
        slot: Option<tokio::sync::OwnedSemaphorePermit>,
        settle: super::Settle,
    ) -> std::pin::Pin<Box<dyn Future<Output = (Ran, bool)> + Send>> {
        Box::pin(async move {
            let timeout = settle.timeout;
            let mut run = Box::pin(async move { dispatcher.dispatch_event(event).await });
            let deadline = start.checked_add(timeout);
            let in_time = match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, run.as_mut()).await.ok(),
                None => Some(run.as_mut().await),
            };
            if let Some(result) = in_time {
                let result = Some(result);
                drop(slot);
                settle.run(&result, None).await;
                return (result, false);
            }
            tokio::spawn(async move {
                let result = Some(run.await);
                drop(slot);
                match &result {
                    Some(Ok(_)) => tracing::info!(
                        target: LOG,
                        "plain fn handler that timed out has ended; its event is handled",
                    ),
                    _ => tracing::warn!(
                        target: LOG,
                        "plain fn handler that timed out has ended without handling its event",
                    ),
                }
                settle.run(&result, None).await;
            });
            (None, true)
        })
    }

    /// After the handler ran: keeps the delivery as a dead letter when it
    /// failed, clears its dead letter when it succeeded. Off by default, so
    /// boxed, and its future polled out of line.
    #[inline(never)]
    pub(super) fn settle_dead_letter<'a>(
        letters: crate::dead_letters::DeadLetters,
        id: Option<String>,
        body: Vec<u8>,
        result: &'a Option<Result<crate::Dispatched, DispatchError>>,
        busy: Option<&'a str>,
        timeout: Duration,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            match result {
                Some(Ok(_)) => letters.clear(id.as_deref(), &body).await,
                Some(Err(e)) => letters.save(id.as_deref(), body, &e.to_string()).await,
                None if let Some(why) = busy => letters.save(id.as_deref(), body, why).await,
                None => {
                    let why = format!("the handler took longer than {timeout:?}");
                    letters.save(id.as_deref(), body, &why).await
                }
            }
        })
    }

    /// Saves the delivery; off by default, so boxed, and its future polled
    /// out of line.
    #[inline(never)]
    pub(super) fn capture<'a, S: Events>(
        capture: &'a Capture,
        parsed: &'a Parsed<'_, S>,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            if let Err(e) = capture.save_async(parsed).await {
                tracing::warn!(
                    target: LOG,
                    error = e.to_string().as_str(),
                    "could not capture the delivery",
                );
            }
        })
    }
}

/// What is left to do once a delivery's handler has run (or could not):
/// complete or abandon its claim, record its revision, keep or clear its
/// dead letter. Dropped unsettled (a panic on the way), it gives the claim
/// up.
struct Settle {
    claim: ClaimGuard,
    ordering: Option<Arc<dyn RevisionStore>>,
    /// The resource's turn, given to the next event of the resource once
    /// this one's revision is recorded (when `run` ends, or when the
    /// settling is dropped).
    turn: Option<Box<Turn>>,
    resource: Option<String>,
    rev: Option<i64>,
    /// The `updatedAt` key and time recorded beside `rev`.
    time: Option<(String, i64)>,
    letters: Option<(DeadLetters, Option<String>, Vec<u8>)>,
    /// With a failure hook: what it is told of the event, if it fails.
    failure: Option<Arc<FailureReport>>,
    timeout: Duration,
}

/// What a receiver's failure hook is told of an event, kept from before
/// its handler took it.
struct FailureReport {
    hook: Arc<OnFailure>,
    event: String,
    id: Option<String>,
    resource_id: Option<String>,
    org: Option<String>,
    /// Whether the hook was told: once per run, whatever fails after.
    told: std::sync::atomic::AtomicBool,
}

impl Settle {
    /// Settles after the handler's run: `result` is `None` when it did not
    /// run (`busy` says why) or was stopped at its time limit.
    async fn run(
        mut self,
        result: &Option<Result<Dispatched, crate::DispatchError>>,
        busy: Option<&str>,
    ) {
        let succeeded = matches!(result, Some(Ok(_)));
        let timeout = self.timeout;
        if let Some(report) = self.failure.take()
            && let Some(cause) = cold::failure_cause(result, busy, timeout)
        {
            cold::report_failure(&report, cause);
        }
        // A failure's dead letter is saved while the claim still holds the
        // event: given up first, a retry could take it, be handled and
        // clear the dead letters before this one is written, which would
        // then stay for an event already handled.
        if !succeeded && let Some((letters, id, body)) = self.letters.take() {
            cold::settle_dead_letter(letters, id, body, result, busy, timeout).await;
        }
        if let Some((store, id)) = &self.claim.0 {
            let settle = async {
                if succeeded {
                    store.complete(id).await
                } else {
                    store.abandon(id).await
                }
            };
            let settled = within(None, timeout, settle).await;
            let retry = match settled {
                Some(Ok(())) => None,
                Some(Err(e)) => {
                    cold::settle_failed(Some(&e));
                    succeeded.then(|| (Arc::clone(store), id.clone()))
                }
                None => {
                    cold::settle_failed(None);
                    succeeded.then(|| (Arc::clone(store), id.clone()))
                }
            };
            // Answered or not, the claim is the store's now; only a store
            // that panicked leaves it to the guard to give up.
            self.claim.0 = None;
            if let Some((store, id)) = retry {
                cold::complete_later(store, id, timeout);
            }
        }
        if succeeded
            && let (Some(revisions), Some(resource), Some(rev)) =
                (self.ordering.take(), self.resource.take(), self.rev)
        {
            if let Some((key, time)) = self.time.take() {
                cold::record_revision(Arc::clone(&revisions), key, time, timeout).await;
            }
            cold::record_revision(revisions, resource, rev, timeout).await;
        }
        if let Some(turn) = self.turn.take() {
            turn.give_back(timeout).await;
        }
        if let Some((letters, id, body)) = self.letters.take() {
            cold::settle_dead_letter(letters, id, body, result, busy, timeout).await;
        }
    }
}

/// How many of the handler's time limits a turn shared with other processes
/// is held for at most, beside the wait for a handler slot and
/// [`TURN_HOLD_MARGIN`]: the check of the revision, the handler, the
/// settling of the claim and the record of the revision each have one. Past
/// it the turn ends by itself (a process that died holding it blocks its
/// resource no longer than that).
const TURN_HOLD_IN_TIME_LIMITS: u32 = 4;

/// What a shared turn is held for beyond its time limits (a capture saved,
/// the store's own round trips).
const TURN_HOLD_MARGIN: Duration = Duration::from_secs(5);

/// The longest a shared turn is held, whatever the time limit.
const MAX_TURN_HOLD: Duration = Duration::from_secs(86_400);

/// Whose turn it is, per resource, with the ordering guard on: a resource's
/// events are checked, handled and recorded one at a time, in the order they
/// asked for their turn (tokio's mutex is fair). A resource is in the map
/// only while one of its events holds or waits for its turn.
#[derive(Default)]
struct Turns {
    resources: std::sync::Mutex<std::collections::HashMap<String, Resource>>,
}

/// A resource's turn, and how many events hold or wait for it.
struct Resource {
    turn: Arc<tokio::sync::Mutex<()>>,
    events: usize,
}

impl Turns {
    fn resources(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Resource>> {
        // Nothing panics while the lock is held.
        self.resources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `resource`'s turn, once every event that asked before has had its
    /// own; then, when `shared` is a store other processes share, its turn
    /// there too (held for at most `hold`), asked for again while another
    /// process holds it. Dropped while it waits, it asks no more.
    async fn take(
        turns: &Arc<Turns>,
        resource: &str,
        shared: Option<&Arc<dyn RevisionStore>>,
        hold: Duration,
    ) -> Result<Turn, crate::dedupe::StoreError> {
        let mut turn = Turns::take_here(turns, resource).await;
        if let Some(store) = shared {
            turn.shared = cold::take_shared_turn(store, resource, hold).await?;
        }
        Ok(turn)
    }

    /// `resource`'s turn in this process.
    async fn take_here(turns: &Arc<Turns>, resource: &str) -> Turn {
        let lock = {
            let mut resources = turns.resources();
            let entry = resources
                .entry(resource.to_owned())
                .or_insert_with(|| Resource {
                    turn: Arc::default(),
                    events: 0,
                });
            entry.events += 1;
            Arc::clone(&entry.turn)
        };
        let mut turn = Turn {
            turns: Arc::clone(turns),
            resource: resource.to_owned(),
            held: None,
            shared: None,
        };
        turn.held = Some(lock.lock_owned().await);
        turn
    }
}

/// An event's turn at its resource (or its place in the line for it), given
/// on when dropped.
struct Turn {
    turns: Arc<Turns>,
    resource: String,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// The turn in a store other processes share, and its token.
    shared: Option<(Arc<dyn RevisionStore>, String)>,
}

impl Turn {
    /// Gives the turn back: the shared store's first (waited for, within
    /// `timeout`; one not given back ends with its hold), then this
    /// process's.
    async fn give_back(mut self: Box<Self>, timeout: Duration) {
        if let Some((store, token)) = &self.shared {
            // Held until the store answered (or not in time): were this
            // future dropped while it waits, `drop` gives the turn back.
            match within(None, timeout, store.give_turn(&self.resource, token)).await {
                Some(Ok(())) => {}
                Some(Err(e)) => cold::turn_not_given_back(&self.resource, Some(&e)),
                None => cold::turn_not_given_back(&self.resource, None),
            }
            self.shared = None;
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        // Dropped unsettled (a stale update, a store that failed, a delivery
        // dropped): the shared turn is given back by a task of its own.
        if let Some((store, token)) = self.shared.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let resource = self.resource.clone();
            runtime.spawn(async move {
                if let Err(e) = store.give_turn(&resource, &token).await {
                    cold::turn_not_given_back(&resource, Some(&e));
                }
            });
        }
        self.held = None;
        let mut resources = self.turns.resources();
        if let Some(entry) = resources.get_mut(&self.resource) {
            entry.events -= 1;
            if entry.events == 0 {
                resources.remove(&self.resource);
            }
        }
    }
}

/// An event id claimed in the idempotency store, given up (in a task of its
/// own) if dropped while it still holds the claim.
struct ClaimGuard(Option<(Arc<dyn IdempotencyStore>, String)>);

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if let Some((store, id)) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(e) = store.abandon(&id).await {
                    tracing::warn!(
                        error = e.to_string().as_str(),
                        "idempotency store failed to give a claim up",
                    );
                }
            });
        }
    }
}

/// A future that finishes even when its caller stops waiting for it: polled
/// in place, and handed to the runtime as a task of its own if dropped
/// before it completed, where `tally` counts its output in `counters` (the
/// caller, gone, counts nothing). A panic while it is polled in place is
/// caught and returned, as a task's `JoinHandle` would.
struct Detached<'a, F: Future<Output: Send + 'static> + Send + 'static> {
    future: Option<Pin<Box<F>>>,
    counters: &'a Arc<Counters>,
    tally: fn(&Counters, &F::Output),
}

impl<'a, F: Future<Output: Send + 'static> + Send + 'static> Detached<'a, F> {
    fn new(future: F, counters: &'a Arc<Counters>, tally: fn(&Counters, &F::Output)) -> Self {
        Detached {
            future: Some(Box::pin(future)),
            counters,
            tally,
        }
    }
}

impl<F: Future<Output: Send + 'static> + Send + 'static> Future for Detached<'_, F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = self
            .future
            .as_mut()
            .expect("a Detached future is not polled after it completed");
        let output = match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(output)) => Ok(output),
            Err(panic) => Err(panic),
        };
        // Finished, or unusable after its panic: nothing left to hand over.
        self.future = None;
        Poll::Ready(output)
    }
}

impl<F: Future<Output: Send + 'static> + Send + 'static> Drop for Detached<'_, F> {
    fn drop(&mut self) {
        if let Some(future) = self.future.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    let (counters, tally) = (Arc::clone(self.counters), self.tally);
                    runtime.spawn(async move {
                        let output = future.await;
                        tally(&counters, &output);
                    });
                }
                Err(_) => {
                    // Dropped outside any runtime (the runtime itself is
                    // shutting down): nothing can run it any more, and an
                    // unsettled claim ends at the store's in-progress timeout.
                    tracing::warn!("a handler was dropped unfinished: no runtime to finish it on",);
                }
            }
        }
    }
}

/// `future`'s output, or `None` when it did not finish within `limit` of
/// `start` (or of its first wait, when `start` is `None`).
///
/// A future that finishes when first polled arms no timer, and with no
/// `start` reads no clock either: the in-memory store always answers at
/// once, and so does a handler that does not wait on I/O. A handler's limit
/// counts from a start read before it runs, so that the time it spends
/// before its first wait counts too; a store's limit counts from its first
/// wait (what it does before that is synchronous and short).
///
/// The timer is boxed, and only once armed: held in place, it would add its
/// size (over 100 bytes) to every future awaiting `within`, and so to the
/// allocations of every delivery's run, which then miss the allocator's
/// fast path for small blocks.
pub(crate) async fn within<F: Future>(
    start: Option<tokio::time::Instant>,
    limit: Duration,
    future: F,
) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let first = std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(output) => Some(output),
        Poll::Pending => {
            let start = start.unwrap_or_else(tokio::time::Instant::now);
            match start.checked_add(limit) {
                Some(deadline) => Box::pin(tokio::time::timeout_at(deadline, future))
                    .await
                    .ok(),
                // A limit past any instant the clock can tell: none.
                None => Some(future.await),
            }
        }
    }
}

/// The method and content type checks, before anything reads the body.
fn screen(method: &str, content_type: Option<&[u8]>) -> Option<Reply> {
    // Methods are case-sensitive (RFC 9110): `post` is another method.
    if method != "POST" {
        // A method can be as long as a request head, and the reply is both
        // answered and logged: a long one is cut short.
        const SHOWN: usize = 40;
        let method = match method.char_indices().nth(SHOWN) {
            Some((cut, _)) => format!("{}…", &method[..cut]),
            None => method.to_owned(),
        };
        return Some(Reply::error(
            405,
            format!("{method} is not accepted: Kustomer posts events"),
        ));
    }
    if !is_json(content_type) {
        return Some(Reply::error(
            415,
            "the content type must be JSON (application/json)",
        ));
    }
    None
}

fn is_json(content_type: Option<&[u8]>) -> bool {
    // What Kustomer sends, checked on every delivery (twice, by the axum
    // router): the general case's parse is not needed for it.
    if content_type == Some(b"application/json") {
        return true;
    }
    let Some(ct) = content_type.and_then(|v| std::str::from_utf8(v).ok()) else {
        return false;
    };
    // `application/json`, or a JSON-based type (`application/vnd.api+json`,
    // RFC 6839's `+json` suffix), whatever the case and parameters.
    let essence = ct.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    if !kind.eq_ignore_ascii_case("application") {
        return false;
    }
    let subtype = subtype.as_bytes();
    subtype.eq_ignore_ascii_case(b"json")
        || subtype.len() > b"+json".len()
            && subtype[subtype.len() - b"+json".len()..].eq_ignore_ascii_case(b"+json")
            && !subtype.contains(&b'/')
}

/// The most of a parse error's message that a reply and its log line show:
/// a key or a name can be as long as the body.
const SHOWN_PARSE_ERROR: usize = 1024;

/// The most of a parse error's pointer shown, in the reply's `pointer` and
/// in its message, which then still ends with what is wrong there.
const SHOWN_POINTER: usize = 256;

fn parse_error(e: &ParseError) -> Reply {
    let (pointer, error) = (e.pointer(), e.to_string());
    let (pointer, error) = if pointer.len() > SHOWN_POINTER {
        let short = shortened(pointer.to_owned(), SHOWN_POINTER);
        let error = error.replace(pointer, &short);
        (short, error)
    } else {
        (pointer.to_owned(), error)
    };
    Reply {
        pointer: Some(pointer),
        ..Reply::error(400, shortened(error, SHOWN_PARSE_ERROR))
    }
}

/// `text`'s first `max` bytes (to a character's end), then `…`; `text`
/// itself when it is no longer.
fn shortened(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn ages_are_said_in_the_units_a_person_uses() {
        let said = |secs| cold::spoken(Duration::from_secs(secs));
        assert_eq!(said(0), "0 s");
        assert_eq!(said(119), "119 s");
        assert_eq!(said(120), "2 min");
        assert_eq!(said(750), "12 min 30 s");
        assert_eq!(said(4500), "75 min");
        assert_eq!(said(7200), "2 h");
        assert_eq!(said(11_100), "3 h 5 min");
        assert_eq!(said(172_800), "2 days");
        assert_eq!(said(177_032_346), "2048 days");
    }

    #[test]
    fn rejections_past_the_seconds_budget_are_counted_and_said_with_the_next_logged() {
        let mut budget = LogBudget::default();
        let per_second = REJECTIONS_LOGGED_PER_SECOND as usize;
        let first: Vec<(bool, u64)> = (0..per_second + 5).map(|_| budget.take(7)).collect();
        assert!(first[..per_second].iter().all(|&t| t == (true, 0)));
        assert!(first[per_second..].iter().all(|&t| t == (false, 0)));
        // The next second's first is logged, after the five without lines.
        assert_eq!(budget.take(8), (true, 5));
        assert_eq!(budget.take(8), (true, 0));
        // Seconds later, nothing left unsaid.
        assert_eq!(budget.take(30), (true, 0));
    }

    #[test]
    fn a_revision_store_failure_says_its_cause() {
        let e = crate::dedupe::StoreError::unavailable("connection refused");
        assert_eq!(
            cold::revisions_failed(&e),
            "the ordering guard's revision store is unavailable: connection refused"
        );
        let e = crate::dedupe::StoreError::failed("WRONGTYPE");
        assert_eq!(
            cold::revisions_failed(&e),
            "the ordering guard's revision store failed: WRONGTYPE"
        );
    }

    #[test]
    fn a_body_after_a_byte_order_mark_parses() {
        let body = b"\xEF\xBB\xBF{\"name\":\"kustomer.team.create\",\"data\":{\"type\":\"team\"}}";
        let parsed = crate::parse(body).unwrap();
        assert_eq!(parsed.event.name(), "kustomer.team.create");
        assert_eq!(parsed.raw, body, "the raw body is as received");
        let parsed = crate::parse_as(body, "kustomer.team.create").unwrap();
        assert_eq!(parsed.event.name(), "kustomer.team.create");
        // The id of another JSON type is read from the body as well.
        let numbered = b"\xEF\xBB\xBF{\"id\":42,\"name\":\"kustomer.team.create\",\"data\":{}}";
        assert_eq!(cold::key_of_other_id(numbered).as_deref(), Some("json:42"));
        // Only at the start.
        let mut late = b" ".to_vec();
        late.extend_from_slice(body);
        assert!(crate::parse(&late[1..]).is_ok());
        assert!(crate::parse(&late).is_err());
    }

    #[test]
    fn a_parse_error_about_a_huge_key_is_shown_shortened() {
        let key = "ké".repeat(100_000);
        let body = format!(r#"{{"name":"kustomer.team.create","data":{{"{key}":1e400}}}}"#);
        let e = crate::parse(body.as_bytes()).unwrap_err();
        let reply = parse_error(&e);
        let (error, pointer) = (reply.error.unwrap(), reply.pointer.unwrap());
        assert!(
            pointer.len() <= SHOWN_POINTER + '…'.len_utf8(),
            "{}",
            pointer.len()
        );
        assert!(
            pointer.starts_with("/data/ké") && pointer.ends_with('…'),
            "{pointer}"
        );
        // The message still says what is wrong there, after the pointer.
        assert!(error.len() <= SHOWN_PARSE_ERROR, "{}", error.len());
        assert!(error.contains(&format!("in {pointer}: ")), "{error}");
        assert!(error.ends_with("number out of range"), "{error}");
        // A huge name: the message is cut, and its start says what is wrong.
        let name = "n".repeat(100_000);
        let body = format!(r#"{{"name":"kustomer.team.create","data":{{}},"name":"{name}"}}"#);
        let e = crate::parse(body.as_bytes()).unwrap_err();
        let error = parse_error(&e).error.unwrap();
        assert!(
            error.len() <= SHOWN_PARSE_ERROR + '…'.len_utf8(),
            "{}",
            error.len()
        );
        assert!(
            error.starts_with("the body names its event twice"),
            "{error}"
        );
        // A short one is as it was.
        let e = crate::parse(br#"{"name": 1, "data": {}}"#).unwrap_err();
        assert_eq!(parse_error(&e).pointer.as_deref(), Some("/name"));
        assert_eq!(shortened("abc".into(), 3), "abc");
        assert_eq!(shortened("abcd".into(), 3), "abc…");
        assert_eq!(shortened("aé".into(), 2), "a…");
    }

    #[tokio::test]
    async fn a_resource_is_forgotten_once_no_event_holds_or_waits_for_its_turn() {
        let turns = Arc::new(Turns::default());
        let first = Turns::take_here(&turns, "a").await;
        let other = Turns::take_here(&turns, "b").await;
        // A second event of `a` waits; one that stops waiting leaves the line.
        let waiting = Turns::take_here(&turns, "a");
        let gave_up = tokio::time::timeout(Duration::from_millis(20), waiting).await;
        assert!(gave_up.is_err(), "`a` is taken");
        let next = tokio::spawn({
            let turns = Arc::clone(&turns);
            async move { drop(Turns::take_here(&turns, "a").await) }
        });
        tokio::task::yield_now().await;
        assert_eq!(turns.resources().len(), 2);
        drop(first);
        next.await.unwrap();
        assert_eq!(turns.resources().len(), 1, "only `b` is held");
        drop(other);
        assert!(turns.resources().is_empty());
    }

    /// The default store's claims outlast the longest a handler may run, so
    /// that a retry never runs a handler still running beside it.
    #[test]
    fn the_default_store_claims_for_longer_than_a_handler_may_run() {
        let receiver = || {
            let dispatcher = crate::Dispatcher::builder()
                .handler(|_: crate::models::TeamEvent| async {})
                .build()
                .unwrap();
            Receiver::new(dispatcher, Verifier::new("t"))
        };
        let claim = |r: &Receiver| {
            let text = format!("{r:?}");
            let at = text.find("default_store_in_progress_timeout: ").unwrap();
            text[at..].split(',').next().unwrap().to_owned()
        };
        let minutes = |m: u64| Duration::from_secs(m * 60);
        assert!(claim(&receiver()).ends_with("Some(300s)"));
        assert!(claim(&receiver().with_timeout(minutes(2))).ends_with("Some(300s)"));
        assert!(claim(&receiver().with_timeout(minutes(15))).ends_with("Some(960s)"));
        // The turn's wait too, and a slot's; in any order.
        let r = receiver()
            .with_ordering(crate::dedupe::OrderingGuard::new())
            .with_timeout(minutes(10))
            .with_max_concurrent_handlers(4, minutes(1));
        assert!(claim(&r).ends_with("Some(1380s)"), "{}", claim(&r));
        // A store of one's own is one's own to size.
        let r = receiver()
            .with_store(MemoryStore::new())
            .with_timeout(minutes(15));
        assert!(claim(&r).ends_with("None"));
    }

    #[test]
    fn the_method_is_post_in_capitals() {
        let json = Some(&b"application/json"[..]);
        assert!(screen("POST", json).is_none());
        for other in ["post", "Post", "GET", "PUT"] {
            let reply = screen(other, json).expect(other);
            assert_eq!(reply.status, 405, "{other}");
        }
        // A long method is cut short in the reply (and so in the log).
        let long = "X".repeat(60_000);
        let reply = screen(&long, json).unwrap();
        assert_eq!(
            reply.error.as_deref(),
            Some(format!("{}… is not accepted: Kustomer posts events", "X".repeat(40)).as_str())
        );
    }

    #[test]
    fn only_an_identity_encoding_is_taken() {
        for taken in ["identity", " IDENTITY ", "", "identity, identity"] {
            assert!(cold::compressed(taken.as_bytes()).is_none(), "{taken:?}");
        }
        for (refused, shown) in [
            ("gzip", "\"gzip\""),
            ("identity, br", "\"identity, br\""),
            ("x\u{202e}y", "\"x\\u{202e}y\""),
        ] {
            let reply = cold::compressed(refused.as_bytes()).expect(refused);
            assert_eq!((reply.status, reply.outcome), (415, "error"));
            let error = reply.error.unwrap();
            assert!(error.contains(shown), "{error}");
        }
        let reply = cold::compressed(b"\xff\xfe").expect("bytes that are not text");
        assert_eq!(reply.status, 415);
        let long = "deflate".repeat(100);
        let reply = cold::compressed(long.as_bytes()).expect("a long value");
        assert!(reply.error.unwrap().len() < 200, "cut short");
    }

    #[test]
    fn counters_read_as_prometheus_text() {
        let counters = Counters::default();
        counters.accepted.store(3, Ordering::Relaxed);
        counters.rejected.store(1, Ordering::Relaxed);
        counters.failed.store(2, Ordering::Relaxed);
        counters.in_progress.store(1, Ordering::Relaxed);
        assert_eq!(
            counters.prometheus(),
            "# HELP kustomer_webhooks_deliveries_total Deliveries received, by outcome.\n\
             # TYPE kustomer_webhooks_deliveries_total counter\n\
             kustomer_webhooks_deliveries_total{outcome=\"accepted\"} 3\n\
             kustomer_webhooks_deliveries_total{outcome=\"rejected\"} 1\n\
             kustomer_webhooks_deliveries_total{outcome=\"duplicate\"} 0\n\
             kustomer_webhooks_deliveries_total{outcome=\"in_progress\"} 1\n\
             kustomer_webhooks_deliveries_total{outcome=\"stale\"} 0\n\
             kustomer_webhooks_deliveries_total{outcome=\"too_old\"} 0\n\
             kustomer_webhooks_deliveries_total{outcome=\"failed\"} 2\n"
        );
        assert_eq!(
            counters.to_string(),
            "3 accepted, 1 rejected, 0 duplicate, 0 stale, 2 failed, 1 answered 409 (already being handled)"
        );
    }

    #[test]
    fn the_body_is_the_json_serde_writes() {
        let full = Reply {
            status: 500,
            outcome: outcome::ERROR,
            event: Some("kustomer.customer.update".to_owned()),
            id: Some("5f2a9c0e8b1d4e0019a3b7c1".to_owned()),
            error: Some("it said \"no\"\n\tthen \\ and \u{1} and \u{7f} and é ✓ /".to_owned()),
            detail: Some(String::new()),
            pointer: Some("/data/attributes/a~1b".to_owned()),
        };
        for reply in [
            full.clone(),
            Reply::error(401, "bad signature"),
            Reply {
                event: None,
                error: None,
                ..full.clone()
            },
            Reply {
                outcome: "handled",
                id: None,
                error: None,
                detail: None,
                pointer: None,
                ..full
            },
        ] {
            assert_eq!(reply.body(), serde_json::to_string(&reply).unwrap());
        }
        // Each character that needs escaping, alone in a string.
        for text in [
            "say \"hi\"",
            "a \\ b",
            "line\nbreak",
            "nul \u{0}",
            "unit \u{1f}",
        ] {
            let reply = Reply::error(400, text);
            assert_eq!(
                reply.body(),
                serde_json::to_string(&reply).unwrap(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn json_content_types_are_recognised() {
        for ct in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            " application/json ;charset=UTF-8",
            "application/vnd.api+json",
            "APPLICATION/Problem+JSON",
        ] {
            assert!(is_json(Some(ct.as_bytes())), "{ct}");
        }
        for ct in [
            "",
            "text/plain",
            "text/json",
            "application/+json",
            "application/jsonx",
            "application/x-www-form-urlencoded",
            "application/json-seq",
            "multipart/form-data; boundary=x",
            "application",
            "application/",
            "application/vnd/x+json",
            "text/vnd.x+json",
        ] {
            assert!(!is_json(Some(ct.as_bytes())), "{ct}");
        }
        assert!(!is_json(None));
        assert!(!is_json(Some(b"application/json\xff")));
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime builds")
    }

    /// Of the messages [`logged`]: how many hold `line`, and how many
    /// deliveries the lines of those without a line of their own count.
    pub(crate) fn lines_and_unlogged(said: &[String], line: &str) -> (usize, usize) {
        let lines = said.iter().filter(|l| l.contains(line)).count();
        let unlogged = said
            .iter()
            .filter(|l| l.contains("without a line of their own"))
            .map(|l| l.split(' ').nth(1).unwrap().parse::<usize>().unwrap())
            .sum();
        (lines, unlogged)
    }

    /// The messages of the events logged while `f` runs.
    pub(crate) fn logged(f: impl FnOnce()) -> Vec<String> {
        use std::sync::Mutex;
        use tracing::field::{Field, Visit};

        #[derive(Default)]
        struct Messages(Mutex<Vec<String>>);
        struct Message(Option<String>);
        impl Visit for Message {
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = Some(format!("{value:?}"));
                }
            }
        }
        impl tracing::Subscriber for Messages {
            fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
                true
            }
            fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
                tracing::span::Id::from_u64(1)
            }
            fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
            fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
            fn event(&self, event: &tracing::Event<'_>) {
                let mut message = Message(None);
                event.record(&mut message);
                let level = event.metadata().level();
                let text = format!("{level} {}", message.0.unwrap_or_default());
                self.0.lock().expect("not poisoned").push(text);
            }
            fn enter(&self, _: &tracing::span::Id) {}
            fn exit(&self, _: &tracing::span::Id) {}
        }

        let messages = Arc::new(Messages::default());
        tracing::subscriber::with_default(Arc::clone(&messages), f);
        messages.0.lock().expect("not poisoned").clone()
    }

    /// A flood's rejections without lines are said when the receiver goes,
    /// if no later rejection said them.
    #[test]
    fn unlogged_rejections_are_said_when_the_receiver_goes() {
        async fn on_team(_: crate::TeamCreate) {}
        let said = logged(|| {
            let dispatcher = Dispatcher::builder()
                .handler(on_team)
                .build()
                .expect("builds");
            let receiver = Receiver::new(dispatcher, Verifier::new("t"));
            let forged = Reply::error(401, "the signature does not match");
            for _ in 0..REJECTIONS_LOGGED_PER_SECOND + 3 {
                receiver.log_rejected(&forged);
            }
            drop(receiver);
        });
        // Every rejection is a line or counted in one, whether or not the
        // clock turned a second meanwhile; when it did not, the last line,
        // logged as the receiver went, is the count.
        let rejected = said
            .iter()
            .filter(|l| l.contains("delivery rejected"))
            .count();
        let unlogged: usize = said
            .iter()
            .filter_map(|line| line.strip_prefix("INFO "))
            .filter(|line| line.contains("without a line of their own"))
            .map(|line| line.split(' ').next().unwrap().parse::<usize>().unwrap())
            .sum();
        assert_eq!(
            rejected + unlogged,
            REJECTIONS_LOGGED_PER_SECOND as usize + 3,
            "{said:?}"
        );
        if rejected == REJECTIONS_LOGGED_PER_SECOND as usize {
            assert!(
                said.last().unwrap().starts_with("INFO 3 more deliveries"),
                "{said:?}"
            );
        }
    }

    /// Deliveries whose store fails, and those answered 409, are logged
    /// within a budget of their own: a flood of them leaves room in the log.
    #[test]
    fn store_failures_and_409s_are_logged_within_a_budget() {
        use crate::dedupe::{Begin, IdempotencyStore, StoreError, StoreFuture};
        struct Store(bool);
        impl IdempotencyStore for Store {
            fn begin<'a>(&'a self, _: &'a str) -> StoreFuture<'a, Begin> {
                let failing = self.0;
                Box::pin(async move {
                    if failing {
                        Err(StoreError::unavailable("down"))
                    } else {
                        Ok(Begin::InProgress)
                    }
                })
            }
            fn complete<'a>(&'a self, _: &'a str) -> StoreFuture<'a, ()> {
                Box::pin(async { Ok(()) })
            }
            fn abandon<'a>(&'a self, _: &'a str) -> StoreFuture<'a, ()> {
                Box::pin(async { Ok(()) })
            }
        }
        async fn on_team(_: crate::TeamCreate) {}
        let body = include_bytes!("../../schema/samples/kustomer.team.create.json");
        let signature = crate::verify::sign(b"t", body);
        let deliveries = REJECTIONS_LOGGED_PER_SECOND as usize * 3;
        for (failing, line, status) in [
            (true, "idempotency store failed", 503),
            (false, "delivery answered 409", 409),
        ] {
            let said = logged(|| {
                let dispatcher = Dispatcher::builder()
                    .handler(on_team)
                    .build()
                    .expect("builds");
                let receiver =
                    Receiver::new(dispatcher, Verifier::new("t")).with_store(Store(failing));
                runtime().block_on(async {
                    for _ in 0..deliveries {
                        let header = |name: &str| match name {
                            "content-type" => Some(&b"application/json"[..]),
                            crate::verify::SIGNATURE_HEADER => Some(signature.as_bytes()),
                            _ => None,
                        };
                        let reply = receiver
                            .receive(Request {
                                method: "POST",
                                header,
                                body,
                            })
                            .await;
                        assert_eq!(reply.status, status);
                    }
                });
                drop(receiver);
            });
            let (lines, unlogged) = lines_and_unlogged(&said, line);
            assert_eq!(lines + unlogged, deliveries, "{said:?}");
            // Within a second's budget, or two if the clock's second turned.
            assert!(
                lines <= 2 * REJECTIONS_LOGGED_PER_SECOND as usize,
                "{lines}: {said:?}"
            );
        }
    }

    /// What a `fmt` subscriber logging warnings alone writes while
    /// `dispatcher`'s receiver takes the team sample, and the reply's
    /// status.
    fn logged_at_warn(dispatcher: Dispatcher) -> (String, u16) {
        use std::sync::Mutex;
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0
                    .lock()
                    .expect("not poisoned")
                    .extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let body = include_bytes!("../../schema/samples/kustomer.team.create.json");
        let signature = crate::verify::sign(b"t", body);
        let status = tracing::subscriber::with_default(subscriber, || {
            let receiver = Receiver::new(dispatcher, Verifier::new("t"));
            let header = |name: &str| match name {
                "content-type" => Some(&b"application/json"[..]),
                crate::verify::SIGNATURE_HEADER => Some(signature.as_bytes()),
                _ => None,
            };
            // Multi-threaded: a plain `fn` handler runs on the blocking
            // pool's thread.
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime builds")
                .block_on(receiver.receive(Request {
                    method: "POST",
                    header,
                    body,
                }))
                .status
        });
        let text = String::from_utf8(buffer.0.lock().expect("not poisoned").clone()).unwrap();
        (text, status)
    }

    /// Logging warnings alone, a delivery's lines still carry its span's
    /// event id and name: the receiver's own, and a handler's, `async` or
    /// a plain `fn` run on another thread.
    #[test]
    fn a_warning_logged_during_a_delivery_names_its_event_under_a_warn_filter() {
        #[derive(Debug, thiserror::Error)]
        #[error("saving team")]
        struct Saving(#[source] std::io::Error);
        async fn failing(_: crate::TeamCreate) -> Result<(), Saving> {
            Err(Saving(std::io::Error::other("connection refused")))
        }
        fn plain(_: crate::TeamCreate) {
            tracing::warn!("inside the plain fn handler");
        }
        async fn in_async(_: crate::TeamCreate) {
            tracing::warn!("inside the async handler");
        }
        let span = "kustomer_webhook{event=\"kustomer.team.create\" id=\"";
        let (text, status) = logged_at_warn(
            Dispatcher::builder()
                .handler(failing)
                .build()
                .expect("builds"),
        );
        assert_eq!(status, 500);
        let line = text
            .lines()
            .find(|l| l.contains("handler failed"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains(span), "{line}");
        // With the error's cause.
        assert!(line.contains("saving team: connection refused"), "{line}");
        let plain = Dispatcher::builder()
            .handler(plain)
            .build()
            .expect("builds");
        let in_async = Dispatcher::builder()
            .handler(in_async)
            .build()
            .expect("builds");
        for (dispatcher, said) in [
            (plain, "inside the plain fn handler"),
            (in_async, "inside the async handler"),
        ] {
            let (text, status) = logged_at_warn(dispatcher);
            assert_eq!(status, 200, "{text}");
            let line = text
                .lines()
                .find(|l| l.contains(said))
                .unwrap_or_else(|| panic!("{text}"));
            assert!(line.contains(span), "{line}");
        }
    }

    #[test]
    fn a_receiver_without_handlers_is_logged_as_a_warning() {
        let empty = logged(|| {
            let dispatcher = Dispatcher::builder().build().expect("builds");
            assert!(dispatcher.is_empty());
            drop(Receiver::new(dispatcher, Verifier::new("t")));
        });
        assert_eq!(empty.len(), 1, "{empty:?}");
        assert!(
            empty[0].starts_with("WARN the dispatcher has no handlers"),
            "{empty:?}"
        );

        async fn on_team(_: crate::TeamCreate) {}
        let some = logged(|| {
            let dispatcher = Dispatcher::builder()
                .handler(on_team)
                .build()
                .expect("builds");
            assert!(!dispatcher.is_empty());
            drop(Receiver::new(dispatcher, Verifier::new("t")));
        });
        assert!(some.is_empty(), "{some:?}");
    }

    /// An event no handler takes is acknowledged (a 2xx, which Kustomer
    /// does not send again) and said once per event name, so that a handler
    /// left out of the dispatcher does not lose its events without a trace.
    #[test]
    fn an_event_without_a_handler_is_said_once_per_name() {
        async fn on_team(_: crate::TeamCreate) {}
        let dispatcher = Dispatcher::builder()
            .handler(on_team)
            .build()
            .expect("builds");
        let receiver = Receiver::new(dispatcher, Verifier::new("t"));
        let deliver = |name: &str, id: &str| {
            let body = format!(r#"{{"id": "{id}", "name": "{name}", "data": {{"type": "team"}}}}"#);
            let signature = crate::verify::sign(b"t", body.as_bytes());
            let header = |header: &str| match header {
                "content-type" => Some(&b"application/json"[..]),
                crate::verify::SIGNATURE_HEADER => Some(signature.as_bytes()),
                _ => None,
            };
            let reply = runtime().block_on(receiver.receive(Request {
                method: "POST",
                header,
                body: body.as_bytes(),
            }));
            (reply.status, reply.outcome)
        };
        let said = logged(|| {
            for (name, id, outcome) in [
                ("kustomer.team.update", "1", outcome::NO_HANDLER),
                ("kustomer.team.update", "2", outcome::NO_HANDLER),
                ("kustomer.team.create", "3", outcome::HANDLED),
                ("kustomer.user.create", "4", outcome::NO_HANDLER),
                ("kustomer.team.update", "5", outcome::NO_HANDLER),
                ("kustomer.x\\nforged line", "6", outcome::NO_HANDLER),
            ] {
                assert_eq!(deliver(name, id), (200, outcome), "{name}");
            }
        });
        let warned: Vec<&String> = said.iter().filter(|l| l.starts_with("WARN ")).collect();
        assert_eq!(warned.len(), 3, "{said:?}");
        // A name with a control character, shown escaped.
        assert!(
            warned[2].starts_with("WARN no handler takes \"kustomer.x\\nforged line\":"),
            "{said:?}"
        );
        assert!(
            warned[0].starts_with("WARN no handler takes kustomer.team.update: its deliveries are acknowledged (200, `no handler`) and not sent again"),
            "{said:?}"
        );
        assert!(
            warned[1].starts_with("WARN no handler takes kustomer.user.create"),
            "{said:?}"
        );
        assert_eq!(receiver.counters().accepted.load(Ordering::Relaxed), 6);
    }

    /// An update whose `data.id` names no resource is said to be handled
    /// without the ordering guard, with what is wrong with it.
    #[test]
    fn an_update_the_ordering_guard_cannot_order_is_logged() {
        for (body, found) in [
            (r#"{"data": {"id": 12345}}"#, "a number"),
            (r#"{"data": {"id": {"oid": "x"}}}"#, "an object"),
            (r#"{"data": {"id": ""}}"#, "an empty string"),
            (r#"{"data": {"id": null}}"#, "null"),
            (r#"{"data": {}}"#, "missing"),
            (r#"{"data": 1}"#, "missing"),
        ] {
            let lines = logged(|| assert_eq!(cold::unordered(body.as_bytes()), found, "{body}"));
            assert_eq!(
                lines,
                [
                    "WARN the update's `data.id` names no resource: handled without the ordering guard"
                ],
                "{body}"
            );
        }
    }

    /// Any count is taken: zero as one, more than a semaphore holds as
    /// the most it holds (not a panic).
    #[test]
    fn handler_slots_of_any_count_are_taken() {
        let dispatcher = || Dispatcher::builder().build().expect("builds");
        for (n, slots) in [
            (0, 1),
            (7, 7),
            (usize::MAX, tokio::sync::Semaphore::MAX_PERMITS),
        ] {
            let receiver = Receiver::new(dispatcher(), Verifier::new("t"))
                .with_max_concurrent_handlers(n, Duration::from_secs(1));
            assert_eq!(receiver.slots.as_ref().map(|s| s.n), Some(slots), "{n}");
        }
    }

    #[test]
    fn a_future_ready_at_once_is_not_timed() {
        // Even a zero limit: a future that never waits is not cut short.
        let out = runtime().block_on(within(None, Duration::ZERO, async { 7 }));
        assert_eq!(out, Some(7));
    }

    #[test]
    fn a_future_that_waits_past_its_limit_is_cut() {
        let out = runtime().block_on(within(
            None,
            Duration::from_millis(20),
            std::future::pending::<()>(),
        ));
        assert_eq!(out, None);
    }

    #[test]
    fn a_future_that_waits_within_its_limit_finishes() {
        let out = runtime().block_on(within(None, Duration::from_secs(60), async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            8
        }));
        assert_eq!(out, Some(8));
    }

    #[test]
    fn a_limit_past_the_clock_is_no_limit() {
        let out = runtime().block_on(within(None, Duration::MAX, async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            8
        }));
        assert_eq!(out, Some(8));
    }

    #[test]
    fn with_a_start_the_time_before_the_first_wait_counts() {
        let rt = runtime();
        let out = rt.block_on(async {
            let start = tokio::time::Instant::now();
            within(Some(start), Duration::from_millis(150), async {
                // 100 ms of work before the first wait, then 100 ms of
                // waiting: done 200 ms after the start at the earliest,
                // past its limit (it would be within a limit counted from
                // the first wait).
                std::thread::sleep(Duration::from_millis(100));
                tokio::time::sleep(Duration::from_millis(100)).await;
                9
            })
            .await
        });
        assert_eq!(out, None);
    }
}
