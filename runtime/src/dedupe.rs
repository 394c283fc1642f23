//! De-duplication by event id, and an opt-in guard against stale updates.
//!
//! Kustomer delivers each event at least once: a delivery that fails, or
//! that is answered too slowly, is sent again (for about an hour, on a 1, 1,
//! 2, 5, 10, 15, 30 minute schedule), and a retry can even arrive while the
//! first delivery is still being handled. Each retry carries the same event
//! id (`id`), and the signature of a replayed body verifies forever, so the
//! event id is the key that makes handling idempotent.
//!
//! [`IdempotencyStore`] claims an event id before its handler runs:
//!
//! | [`begin`](IdempotencyStore::begin) returns | the receiver |
//! |---|---|
//! | [`Begin::New`] | runs the handler, then calls [`complete`](IdempotencyStore::complete) on success or [`abandon`](IdempotencyStore::abandon) on failure; an event too old ([`Receiver::with_max_event_age`](crate::receiver::Receiver::with_max_event_age)) is not run, and given up |
//! | [`Begin::InProgress`] | does not run the handler; answers with a non-2xx status (such as 409 or 503) so that Kustomer retries later |
//! | [`Begin::Done`] | does not run the handler; acknowledges with a 2xx |
//!
//! [`MemoryStore`] is the in-process store. A service that runs several
//! replicas needs a shared one behind the same trait, so that a retry
//! reaching another replica is recognised too: `RedisStore` (feature
//! `redis`) keeps the claims in Redis, and any other (a database table) is
//! a few lines (see [A shared store](#a-shared-store) below).
//!
//! ```
//! use kustomer_webhooks::dedupe::{Begin, IdempotencyStore, MemoryStore};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let id = "6087326fa8b1c7b07da5e5c9";
//!
//! assert_eq!(store.begin(id).await?, Begin::New);
//! // A retry that arrives while the handler runs:
//! assert_eq!(store.begin(id).await?, Begin::InProgress);
//! // The handler succeeded:
//! store.complete(id).await?;
//! // A retry that arrives after the first delivery was handled:
//! assert_eq!(store.begin(id).await?, Begin::Done);
//! # Ok::<(), kustomer_webhooks::dedupe::StoreError>(())
//! # }).unwrap();
//! ```
//!
//! Wired around a [`Dispatcher`](crate::Dispatcher), with the event parsed
//! first to learn its id:
//!
//! ```
//! use kustomer_webhooks::dedupe::{Begin, IdempotencyStore, MemoryStore};
//! use kustomer_webhooks::{Dispatcher, TeamCreate, parse};
//!
//! async fn on_team(_event: TeamCreate) {}
//!
//! /// The HTTP status to answer with.
//! async fn receive(dispatcher: &Dispatcher, store: &dyn IdempotencyStore, body: &[u8]) -> u16 {
//!     let Ok(parsed) = parse(body) else { return 400 };
//!     let Some(id) = parsed.event.envelope().event_id().map(str::to_owned) else {
//!         // Nothing to de-duplicate by.
//!         return if dispatcher.dispatch_event(parsed.event).await.is_ok() { 200 } else { 500 };
//!     };
//!     match store.begin(&id).await {
//!         Ok(Begin::New) => {}
//!         Ok(Begin::Done) => return 200,
//!         // Another delivery of the event is being handled, or the store failed: retry later.
//!         Ok(Begin::InProgress) | Err(_) => return 503,
//!     }
//!     match dispatcher.dispatch_event(parsed.event).await {
//!         Ok(_) => {
//!             // The event was handled: acknowledge even if the store cannot record it.
//!             let _ = store.complete(&id).await;
//!             200
//!         }
//!         Err(_) => {
//!             let _ = store.abandon(&id).await;
//!             500
//!         }
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let dispatcher = Dispatcher::builder().handler(on_team).build()?;
//! let store = MemoryStore::new();
//! let body = br#"{"id": "6087326fa8b1c7b07da5e5c9", "name": "kustomer.team.create",
//!   "data": {"type": "team", "attributes": {"name": "Der Prozess"}}}"#;
//! assert_eq!(receive(&dispatcher, &store, body).await, 200);
//! assert_eq!(receive(&dispatcher, &store, body).await, 200, "the retry is acknowledged");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # A shared store
//!
//! With the `redis` feature, `RedisStore::connect(url)` is one, ready to
//! pass to [`Receiver::with_store`](crate::receiver::Receiver::with_store):
//!
//! ```toml
//! kustomer-webhooks = { path = "../kustomer-webhooks/runtime", features = ["axum", "redis"] }
//! ```
//!
//! With `redis-tls` instead of `redis`, it also speaks TLS (`rediss://`),
//! as managed Redis services often require: `RedisStore::connect` checks
//! the server against the system's root certificates, and
//! `RedisStore::connect_tls` takes a private authority and a client
//! certificate. With `redis-cluster`, `RedisStore::connect_cluster(nodes)`
//! keeps the claims in a Redis Cluster; with `redis-sentinel`,
//! `RedisStore::connect_sentinel(sentinels, service)` keeps them on the
//! primary that Redis Sentinels name, and follows them through a failover.
//!
//! A shared store that cannot be reached makes the receiver answer 503, so
//! Kustomer retries later; wrapped in [`FailOpen`], it lets the process
//! claim ids in memory instead while the store is out of reach, and handle
//! the deliveries. `RedisStore::connect_lazy(url)` (and
//! `connect_cluster_lazy`, `connect_sentinel_lazy`) makes a store without
//! connecting, so that a service wrapped that way starts while its Redis is
//! down.
//!
//! A store of your own implements the three methods of [`IdempotencyStore`]
//! over something every replica reaches. Each method is one atomic request.
//! In Redis (7.0 or later), with the event id as the key, and a token of
//! each claim's own that the store keeps (in process memory, by id) from
//! `begin` to `complete` or `abandon` (`RedisStore` does the same with short
//! scripts, which any Redis from 2.6 runs):
//!
//! | method | Redis |
//! |---|---|
//! | `begin` | `SET <id> in-progress:<token> NX GET PX <in-progress timeout>`: nil is [`Begin::New`] (the key is now set, and the token kept), `in-progress:…` is [`Begin::InProgress`], `done` is [`Begin::Done`] |
//! | `complete` | `SET <id> done PX <retention>` |
//! | `abandon` | delete `<id>` only while it holds this claim's own `in-progress:<token>`: a short script, `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end` |
//!
//! Without the token, `abandon` could delete a claim another delivery made
//! after this one's expired (its handler ran past the in-progress timeout,
//! and a retry claimed the id): that retry's handler would then run beside
//! a third delivery's.
//!
//! In a database, a table keyed by the id does the same: `begin` inserts the
//! row as in progress (`INSERT … ON CONFLICT DO NOTHING`, or an update of a
//! row whose claim is older than the in-progress timeout) and reads the
//! state back; expired rows are deleted by a periodic job. Whatever it is
//! built on, [`check_store`] runs the contract against it, for its tests.
//! The shape of one (a map in the process stands for the table; a real
//! store's methods await its client in the `async` blocks, keep a token per
//! claim as above, and expire claims and done ids):
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//! use kustomer_webhooks::dedupe::{Begin, IdempotencyStore, StoreFuture, check_store};
//!
//! #[derive(Default)]
//! struct Table(Mutex<HashMap<String, bool>>); // id → done
//!
//! impl IdempotencyStore for Table {
//!     fn begin<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Begin> {
//!         Box::pin(async move {
//!             let mut rows = self.0.lock().unwrap();
//!             Ok(match rows.get(id) {
//!                 None => {
//!                     rows.insert(id.to_owned(), false);
//!                     Begin::New
//!                 }
//!                 Some(false) => Begin::InProgress,
//!                 Some(true) => Begin::Done,
//!             })
//!         })
//!     }
//!     fn complete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
//!         Box::pin(async move {
//!             self.0.lock().unwrap().insert(id.to_owned(), true);
//!             Ok(())
//!         })
//!     }
//!     fn abandon<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
//!         Box::pin(async move {
//!             let mut rows = self.0.lock().unwrap();
//!             if rows.get(id) == Some(&false) {
//!                 rows.remove(id);
//!             }
//!             Ok(())
//!         })
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // In the store's tests, against a test instance of it:
//! check_store(&Table::default()).await?;
//! # Ok::<(), kustomer_webhooks::dedupe::StoreCheckError>(())
//! # }).unwrap();
//! ```
//!
//! Given to [`Receiver::with_store`](crate::receiver::Receiver::with_store),
//! it claims every delivery's id.
//!
//! # Order
//!
//! Kustomer does not guarantee the order of deliveries either, and a retried
//! update can arrive after a later update of the same resource. Each update
//! carries the resource's revision (`data.attributes.rev`, 1 at creation and
//! one more per update); [`OrderingGuard`] remembers the last revision
//! handled per resource (`data.id`) and tells a stale update apart:
//!
//! ```
//! use kustomer_webhooks::dedupe::{Freshness, OrderingGuard};
//!
//! let guard = OrderingGuard::new();
//! let customer = "608731c238e15a90895f7029";
//! assert_eq!(guard.check(customer, 4), Freshness::Fresh);
//! guard.record(customer, 4);
//! // Rev 3 arrives late, after rev 4 was handled:
//! assert_eq!(guard.check(customer, 3), Freshness::Stale { last: 4 });
//! ```
//!
//! The guard is opt-in: a handler that applies the whole resource state can
//! skip stale updates, while one that reacts to every change (notifications,
//! audit logs) usually should not. The receiver asks it about updates only:
//! a creation that arrives after its resource's updates is still handled
//! (and its revision, recorded too, never lowers the last one).
//!
//! The guard lives in the process: with several replicas, each knows only
//! the revisions it handled itself. [`Receiver::with_ordering`](crate::receiver::Receiver::with_ordering)
//! takes any [`RevisionStore`]: the same `RedisStore` that claims the event
//! ids (feature `redis`) also keeps the revisions where every replica sees
//! them, and [`FailOpen`] around it falls back to the process's own while
//! Redis is out of reach:
//!
//! ```
//! use std::sync::Arc;
//! use kustomer_webhooks::dedupe::{IdempotencyStore, RevisionStore};
//! use kustomer_webhooks::{Dispatcher, receiver::Receiver, verify::Verifier};
//!
//! /// Event ids and revisions in one shared store: with the `redis` feature,
//! /// `Arc::new(RedisStore::connect(url).await?)`.
//! fn receiver<T>(dispatcher: Dispatcher, shared: Arc<T>) -> Receiver
//! where
//!     T: IdempotencyStore + RevisionStore + 'static,
//! {
//!     Receiver::new(dispatcher, Verifier::new("token"))
//!         .with_store(shared.clone())
//!         .with_ordering(shared)
//! }
//! ```
//!
//! The receiver gives the events of one resource turns (see
//! [`Receiver::with_ordering`](crate::receiver::Receiver::with_ordering)):
//! an older update that arrives while a newer one is being handled waits,
//! then is found stale. In one process the turn is the process's own; with a
//! store the replicas share, it is taken there too
//! ([`RevisionStore::take_turn`]), so that an older update reaching another
//! replica waits as well. A shared turn ends by itself after four of the
//! handler's time limits (plus the wait for a handler slot and 5 s), so a replica that died holding it blocks its
//! resource no longer; a handler that runs past that (a plain `fn` past its
//! limit goes on) no longer holds it, and while [`FailOpen`] finds the store
//! out of reach, each replica has only its own turns. Where
//! the handler writes the resource to a database the replicas share, the
//! write is the guard that holds in every case, one conditional statement that keeps the
//! newest revision whichever replica gets there first:
//! `UPDATE customers SET …, rev = $rev WHERE id = $id AND rev < $rev`
//! (no row updated: a stale update), with `$rev` from the event's
//! `data.attributes.rev`.
//!
//! A revision store of your own implements [`RevisionStore`]: in Redis,
//! `record_revision` is a short script that sets the key only when the
//! revision is higher (compared exactly: Lua's numbers are floating point,
//! which tells revisions past 2^53 apart no more), and a shared turn is
//! `SET <id>:turn <token> NX PX <hold>`, given back by a script that
//! deletes the key only while it still holds the token. In a database, a
//! row per resource, `INSERT … ON CONFLICT (id) DO UPDATE SET rev =
//! excluded.rev WHERE resources.rev < excluded.rev`, and a turn a row with
//! a token and an expiry, taken by an insert or by an update of an expired
//! row. [`check_revision_store`] runs the contract against it, for its
//! tests:
//!
//! ```
//! use kustomer_webhooks::dedupe::{OrderingGuard, RevisionStore, check_revision_store};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // In your store's tests, against a test instance of it:
//! let store: Box<dyn RevisionStore> = Box::new(OrderingGuard::new());
//! check_revision_store(store.as_ref()).await?;
//! # Ok::<(), kustomer_webhooks::dedupe::RevisionCheckError>(())
//! # }).unwrap();
//! ```

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

// `OrderingGuard` keeps its revisions in `moka` (its `sync` cache, no
// default features), the community-standard concurrent TTL cache, set to LRU
// eviction: the default TinyLFU admission can refuse to store a new key when
// the cache is full, which would mean not remembering the newest resources.
//
// `MemoryStore` does not: it sits on every delivery's path, where moka's
// bookkeeping (an owned key and an `Arc`'d entry per insert, SipHash, epoch
// reclamation, the write log and, for per-entry expiry, its timer wheel) was
// the largest single cost of the receiver after parsing. Configured with one
// time-to-live for the whole cache instead of per-entry expiry, it still
// cost about twelve thousand instructions per delivery. The store needs far
// less than a general cache: ids that are only inserted, read and removed,
// each valid for a fixed time after it was written. So it is a sharded map
// under plain mutexes, keyed by the inline id, each entry stamped with when
// it took its state, and swept in whole generations (see `Shard`).
use std::collections::HashMap;
use std::collections::hash_map::{self, RandomState};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::{Mutex, PoisonError};

use compact_str::CompactString;
use moka::ops::compute::Op;
use moka::policy::EvictionPolicy;
use moka::sync::Cache;

use crate::Envelope;

mod check;
pub use check::{CONCURRENT_CLAIMS, StoreCheckError, check_store};
mod check_revisions;
pub use check_revisions::{
    CONCURRENT_CALLS, HOLD_GRACE, RevisionCheckError, SHORT_HOLD, check_revision_store,
};
mod fail_open;
pub use fail_open::{DEFAULT_FAIL_OPEN_TIMEOUT, FAIL_OPEN_RETRY_AFTER, FailOpen};
#[cfg(feature = "redis")]
mod redis_store;
#[doc(hidden)]
#[cfg(feature = "redis")]
pub use redis_store::no_tls_hint;
#[cfg(feature = "redis")]
pub use redis_store::{DEFAULT_REDIS_PREFIX, RedisStore};

/// How long a completed event id is remembered by default: 75 minutes.
///
/// Kustomer's last retry comes about 64 minutes after the first attempt
/// (1 + 1 + 2 + 5 + 10 + 15 + 30 minutes); the rest is a margin for the
/// time each attempt itself takes.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(75 * 60);

/// The longest time a store keeps anything for: a thousand years, as good
/// as for ever. Longer times (`Duration::MAX` for no end) are read as this
/// where a store needs a bound: Redis refuses a `PX` past its clock's
/// range, and the ordering guard's cache takes no longer time to live.
pub(crate) const FOREVER: Duration = Duration::from_secs(1000 * 365 * 24 * 60 * 60);

/// How long a claim of an event id lasts by default when it is neither
/// completed nor abandoned (the process died mid-handler): 5 minutes.
pub const DEFAULT_IN_PROGRESS_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The in-progress timeout a store needs beside a receiver whose handlers
/// may run for `handler_limit` ([`Receiver::with_timeout`], plus any wait
/// for a handler slot): the limit, twice with the ordering guard (whose
/// wait for a resource's turn may take it too), a minute more, and at least
/// [`DEFAULT_IN_PROGRESS_TIMEOUT`]. A claim that runs out while its handler
/// still runs lets a retry run the handler a second time beside it. The
/// receiver's default [`MemoryStore`] is sized so; give a store of your own
/// this ([`MemoryStoreBuilder::in_progress_timeout`],
/// `RedisStore::with_in_progress_timeout`, and for the memory a
/// [`FailOpen`] claims in during an outage, [`FailOpen::with_memory`]) when
/// the limit is above four minutes (two with the ordering guard).
///
/// [`Receiver::with_timeout`]: crate::receiver::Receiver::with_timeout
pub fn in_progress_timeout_for(handler_limit: Duration, ordering: bool) -> Duration {
    let turns = if ordering { 2 } else { 1 };
    handler_limit
        .saturating_mul(turns)
        .saturating_add(Duration::from_secs(60))
        .max(DEFAULT_IN_PROGRESS_TIMEOUT)
}

/// How many ids (or resources) an in-memory store keeps at most by default.
///
/// Past that, the oldest are forgotten first: for [`MemoryStore`], those
/// written longest ago (a whole generation at a time, see its docs); for
/// [`OrderingGuard`], the least recently used.
pub const DEFAULT_MAX_ENTRIES: u64 = 1_000_000;

/// The outcome of [`IdempotencyStore::begin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Begin {
    /// The id was not seen (or its earlier claim was abandoned or timed out):
    /// the caller now owns it, runs the handler, and must then call
    /// [`complete`](IdempotencyStore::complete) or
    /// [`abandon`](IdempotencyStore::abandon).
    New,
    /// Another delivery of this id is being handled right now. The caller
    /// must not run the handler; it answers with a retryable (non-2xx)
    /// status, so that Kustomer delivers the event again later.
    InProgress,
    /// The id was already handled successfully: acknowledge (2xx) without
    /// running the handler.
    Done,
}

/// An error boxed as a store's failure.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// Why an [`IdempotencyStore`] could not answer.
///
/// When [`begin`](IdempotencyStore::begin) fails, whether the event was
/// already handled is unknown: answer with a retryable status rather than
/// run the handler. When [`complete`](IdempotencyStore::complete) fails, the
/// handler has succeeded: acknowledge (a later retry of the event may then
/// run it again). When [`abandon`](IdempotencyStore::abandon) fails, the
/// claim ends at its in-progress timeout instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached, did not answer in time, or cannot
    /// serve for now (a Redis loading its data, say): asked again later, it
    /// may answer.
    #[error("the idempotency store is unavailable: {0}")]
    Unavailable(BoxError),
    /// The store answered, but with an error or an answer it should not give.
    #[error("the idempotency store failed: {0}")]
    Failed(BoxError),
}

impl StoreError {
    /// A [`StoreError::Unavailable`] caused by `error`.
    pub fn unavailable(error: impl Into<BoxError>) -> Self {
        StoreError::Unavailable(error.into())
    }

    /// A [`StoreError::Failed`] caused by `error`.
    pub fn failed(error: impl Into<BoxError>) -> Self {
        StoreError::Failed(error.into())
    }

    /// What the store did, without naming which store: `is unavailable:
    /// <cause>` or `failed: <cause>` (the error's own text names the
    /// idempotency store; a [`RevisionStore`]'s errors are told with this).
    pub(crate) fn said(&self) -> String {
        match self {
            StoreError::Unavailable(why) => format!("is unavailable: {why}"),
            StoreError::Failed(why) => format!("failed: {why}"),
        }
    }
}

/// The future an [`IdempotencyStore`] method returns.
///
/// Boxed, so that the trait is dyn-compatible: a service can hold an
/// `Arc<dyn IdempotencyStore>` and choose the store at run time. One
/// allocation per call is small beside the HTTP request it serves.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where event ids are claimed and remembered: [`MemoryStore`] in process,
/// or a shared store that every replica of the service reaches.
///
/// An implementation must make [`begin`](IdempotencyStore::begin) atomic:
/// of any number of concurrent `begin` calls for one id that is neither
/// claimed nor done, exactly one gets [`Begin::New`]. A claim that is
/// neither completed nor abandoned must end by itself after a timeout, so
/// that a process that died mid-handler does not block the event forever.
///
/// A claim carries no token through this trait: once it has timed out,
/// another delivery can claim the id, and it is up to the store to keep the
/// first owner's late `abandon` from giving up the newer claim.
/// [`MemoryStore`] and `RedisStore` do, taking the give-ups of one id in
/// the order its claims were made; a late `complete` marks the id done,
/// which it is. Keep the in-progress timeout well above the time a handler
/// takes: past it, a retry runs the handler beside the one still running.
pub trait IdempotencyStore: Send + Sync {
    /// Claims `id`: [`Begin::New`] when the caller now owns it,
    /// [`Begin::InProgress`] while another delivery owns it, [`Begin::Done`]
    /// when it was handled.
    fn begin<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Begin>;

    /// Records `id` as handled, for the store's retention time.
    fn complete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()>;

    /// Gives up the claim of `id` (the handler failed), so that a retry runs
    /// the handler again. An id already done stays done.
    fn abandon<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()>;
}

/// Where the ordering guard keeps the last revision handled per resource:
/// in the process ([`OrderingGuard`]), or where every replica sees it
/// (`RedisStore`, feature `redis`; [`FailOpen`] around it).
///
/// The receiver asks [`last_revision`](RevisionStore::last_revision) before
/// a handler runs (an update not newer than it is stale) and calls
/// [`record_revision`](RevisionStore::record_revision) once the handler
/// succeeded. An error from either is answered 503 before the handler runs
/// (Kustomer retries); after it ran, it is logged and the record is tried
/// again in the background.
///
/// The resource ids it is given are `data.id`s, and for a resource without
/// a `rev` (users, teams) `<data.id>@updatedAt`, whose "revisions" are
/// `updatedAt` times in milliseconds since the Unix epoch, doubled (and,
/// when asked about, plus one, so that two updates of one millisecond are
/// both handled): a store keeps them as it keeps any other.
pub trait RevisionStore: Send + Sync {
    /// The last revision recorded for `resource_id`, if one is remembered.
    fn last_revision<'a>(&'a self, resource_id: &'a str) -> StoreFuture<'a, Option<i64>>;

    /// Records `rev` for `resource_id`, unless a higher revision is recorded
    /// (atomically: of two concurrent records, the higher stays).
    fn record_revision<'a>(&'a self, resource_id: &'a str, rev: i64) -> StoreFuture<'a, ()>;

    /// Takes `resource_id`'s turn among every process sharing the store, for
    /// at most `hold` (after which it ends by itself, so that a process that
    /// died holding it does not block the resource): [`SharedTurn::Taken`] with the
    /// token to [`give_turn`](RevisionStore::give_turn) it back with, or
    /// [`SharedTurn::Busy`] while another holds it. The receiver takes it after
    /// the process's own turn, and holds it for the check, the handler and
    /// the record of the revision, so that a resource's events take turns
    /// across replicas too.
    ///
    /// By default [`SharedTurn::InProcess`]: a store the process keeps to itself
    /// ([`OrderingGuard`]) needs no other turn than the receiver's own. A
    /// store of your own that the replicas share implements this,
    /// [`give_turn`](RevisionStore::give_turn) and
    /// [`shares_turns`](RevisionStore::shares_turns); without them each
    /// replica has only its own turns. [`check_revision_store`] checks
    /// them, with the revisions.
    fn take_turn<'a>(
        &'a self,
        resource_id: &'a str,
        hold: Duration,
    ) -> StoreFuture<'a, SharedTurn> {
        let _ = (resource_id, hold);
        Box::pin(std::future::ready(Ok(SharedTurn::InProcess)))
    }

    /// Gives back a turn [`take_turn`](RevisionStore::take_turn) gave
    /// `token`; a turn that has ended by itself meanwhile, or that another
    /// has taken since, is left alone.
    fn give_turn<'a>(&'a self, resource_id: &'a str, token: &'a str) -> StoreFuture<'a, ()> {
        let _ = (resource_id, token);
        Box::pin(std::future::ready(Ok(())))
    }

    /// Whether [`take_turn`](RevisionStore::take_turn) takes turns other
    /// processes see; when not (the default), the receiver does not ask for
    /// them.
    fn shares_turns(&self) -> bool {
        false
    }
}

/// What [`RevisionStore::take_turn`] got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SharedTurn {
    /// The turn is the caller's, until it gives it back with this token (or
    /// the hold ends).
    Taken(String),
    /// Another process holds the turn: ask again shortly.
    Busy,
    /// The store is not shared: the process's own turn is the only one.
    InProcess,
}

/// A revision store behind a pointer is the store it points at.
macro_rules! revision_store_behind {
    ($($pointer:ident),*) => {$(
        impl<S: RevisionStore + ?Sized> RevisionStore for $pointer<S> {
            fn last_revision<'a>(&'a self, resource_id: &'a str) -> StoreFuture<'a, Option<i64>> {
                (**self).last_revision(resource_id)
            }
            fn record_revision<'a>(&'a self, resource_id: &'a str, rev: i64) -> StoreFuture<'a, ()> {
                (**self).record_revision(resource_id, rev)
            }
            fn take_turn<'a>(
                &'a self,
                resource_id: &'a str,
                hold: Duration,
            ) -> StoreFuture<'a, SharedTurn> {
                (**self).take_turn(resource_id, hold)
            }
            fn give_turn<'a>(&'a self, resource_id: &'a str, token: &'a str) -> StoreFuture<'a, ()> {
                (**self).give_turn(resource_id, token)
            }
            fn shares_turns(&self) -> bool {
                (**self).shares_turns()
            }
        }
    )*};
}
revision_store_behind!(Arc, Box);

/// The suffix of the key under which the receiver's ordering keeps a
/// resource's last `updatedAt` (`<data.id>@updatedAt`), apart from its
/// revision.
pub(crate) const TIME_KEY_SUFFIX: &str = "@updatedAt";

impl RevisionStore for OrderingGuard {
    fn last_revision<'a>(&'a self, resource_id: &'a str) -> StoreFuture<'a, Option<i64>> {
        // A resource's time is kept in its resource's entry, beside its
        // revision: one entry per resource, as `max_entries` counts them.
        let last = match resource_id.strip_suffix(TIME_KEY_SUFFIX) {
            Some(resource) => self.last.get(resource).and_then(|l| l.time),
            None => self.last.get(resource_id).and_then(|l| l.rev),
        };
        Box::pin(std::future::ready(Ok(last)))
    }
    fn record_revision<'a>(&'a self, resource_id: &'a str, rev: i64) -> StoreFuture<'a, ()> {
        match resource_id.strip_suffix(TIME_KEY_SUFFIX) {
            Some(resource) => self.record_in(resource, rev, |l| &mut l.time),
            None => self.record(resource_id, rev),
        }
        Box::pin(std::future::ready(Ok(())))
    }
}

impl<S: IdempotencyStore + ?Sized> IdempotencyStore for Arc<S> {
    fn begin<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Begin> {
        (**self).begin(id)
    }
    fn complete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        (**self).complete(id)
    }
    fn abandon<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        (**self).abandon(id)
    }
}

impl<S: IdempotencyStore + ?Sized> IdempotencyStore for Box<S> {
    fn begin<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Begin> {
        (**self).begin(id)
    }
    fn complete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        (**self).complete(id)
    }
    fn abandon<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        (**self).abandon(id)
    }
}

/// What a [`MemoryStore`] knows of an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    InProgress,
    Done,
}

/// A time in a [`MemoryStore`]: nanoseconds since the store was built
/// (its `epoch`), which lasts 292 years before it would overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp(u64);

impl Stamp {
    fn at(instant: Instant, epoch: Instant) -> Stamp {
        let nanos = instant.saturating_duration_since(epoch).as_nanos();
        Stamp(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// How long after `earlier` this is; zero when it is not after it.
    fn since(self, earlier: Stamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

/// An id's state, and when it took it, in eight bytes: the time stamp
/// shifted left by one, the claim in the low bit. The tables hold millions
/// of entries under load, and each new id lands on a line that is in no
/// cache; an entry of 40 bytes with its key (56 with an `Instant` and an
/// enum) takes fewer of them, and about 28 % less memory per id.
#[derive(Debug, Clone, Copy)]
struct Entry(u64);

impl Entry {
    fn new(claim: Claim, since: Stamp) -> Entry {
        // Stamps past 2^63 ns (292 years) saturate instead of wrapping.
        let since = since.0.min(u64::MAX >> 1);
        Entry(since << 1 | u64::from(claim == Claim::Done))
    }

    fn claim(self) -> Claim {
        if self.0 & 1 == 1 {
            Claim::Done
        } else {
            Claim::InProgress
        }
    }

    fn since(self) -> Stamp {
        Stamp(self.0 >> 1)
    }
}

/// One shard of a [`MemoryStore`]: the entries written since the last
/// rotation, and those written in the generation before.
///
/// A generation lasts at least the longest lifetime an entry can have (the
/// retention or the in-progress timeout, whichever is longer). When a shard
/// is next touched after that, `previous` is dropped whole and `current`
/// becomes `previous`: every entry dropped then was written before the last
/// rotation, so at least a generation ago, and has expired. Expiry itself is
/// exact: each entry is checked against its own time stamp when it is read.
/// Memory is bounded by the shard's capacity: each generation holds at
/// most half of it, and when the current one is full the older one is
/// forgotten, but for its claims in progress, which move to the new
/// current generation (and count toward its half).
#[derive(Debug)]
struct Shard {
    current: Generation,
    previous: Generation,
    rotated_at: Stamp,
    /// Ids whose in-progress claim timed out (and was claimed again, or
    /// forgotten), with how many such older claims are still to be given
    /// up: the next that many `abandon`s of the id are theirs (oldest
    /// first, as `RedisStore` counts them), and leave a newer claim held.
    /// Empty but for handlers that ran past the in-progress timeout.
    superseded: HashMap<Key, Older, BuildHasherDefault<Prehashed>>,
}

/// The timed-out claims of one id still to be given up, and when the
/// latest of them was made.
#[derive(Debug, Clone, Copy)]
struct Older {
    count: u32,
    since: Stamp,
}

/// One generation of a shard's ids.
type Generation = HashMap<Key, Entry, BuildHasherDefault<Prehashed>>;

/// An event id with its hash, computed once per store operation (with the
/// store's keyed `RandomState`): the same hash picks the shard and places
/// the id in the shard's tables, rather than hashing the id for each.
/// Kustomer's ids (24 characters) fit a `CompactString` inline, so making
/// one allocates nothing; a longer id is copied once per operation, the
/// copy kept when the operation writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    hash: u64,
    id: CompactString,
}

impl Key {
    fn new(hasher: &RandomState, id: &str) -> Key {
        Key {
            hash: hasher.hash_one(id),
            id: CompactString::new(id),
        }
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// The hasher of a shard's tables: it takes a [`Key`]'s hash as it is.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `Key` is hashed here, with `write_u64`; anything else still
        // gets a hash of all its bytes.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The most ids a shard counts timed-out claims of ([`Shard::superseded`]):
/// past it, the id whose latest claim is oldest is let go for a new one,
/// and counts older than two generations go at a rotation, so that claims
/// never given up (a store used directly, its claims left to time out)
/// cannot grow it for ever.
const SUPERSEDED_KEPT: usize = 4096;

impl Shard {
    fn rotate_if_due(&mut self, now: Stamp, generation: Duration, live: impl Fn(Entry) -> bool) {
        let age = now.since(self.rotated_at);
        if age >= generation {
            if age >= generation.saturating_mul(2) {
                // Idle for two generations: everything is past its time,
                // and the memory goes back.
                self.rotate(&live);
                self.rotate(&live);
                self.previous = Generation::default();
                self.current = Generation::default();
            } else {
                self.rotate(&live);
            }
            self.rotated_at = now;
            let kept_for = generation.saturating_mul(2);
            self.superseded
                .retain(|_, older| now.since(older.since) < kept_for);
        }
    }

    /// The current generation becomes the previous one; the previous one's
    /// entries are forgotten, and its table, already grown to a
    /// generation's size, holds the new current one (rather than a table
    /// grown again from empty, rehashing under the shard's lock). Claims in
    /// progress among the forgotten are kept: those still live move to the
    /// new current generation (forgotten, a retry would run the handler
    /// beside the one still running), and those past their timeout, whose
    /// owners have not given them up yet, are counted in `superseded`.
    fn rotate(&mut self, live: &impl Fn(Entry) -> bool) {
        let claims: Vec<(Key, Entry)> = self
            .previous
            .extract_if(|_, e| e.claim() == Claim::InProgress)
            .collect();
        let mut kept = Vec::new();
        for (id, entry) in claims {
            if live(entry) {
                kept.push((id, entry));
            } else {
                self.supersede(id, entry.since());
            }
        }
        std::mem::swap(&mut self.previous, &mut self.current);
        self.current.clear();
        self.current.extend(kept);
    }

    fn get(&self, id: &Key) -> Option<Entry> {
        self.current
            .get(id)
            .or_else(|| self.previous.get(id))
            .copied()
    }

    fn remove(&mut self, id: &Key) {
        if self.current.remove(id).is_none() {
            self.previous.remove(id);
        }
    }

    /// Writes `entry` into the current generation. A generation holds at
    /// most half the shard's `capacity` (claims carried over included):
    /// when the current one is full, it becomes the previous one, and the
    /// entries of the previous one (the oldest) are forgotten, but for
    /// claims in progress ([`rotate`](Shard::rotate); `live` says which
    /// are live).
    fn put(&mut self, id: Key, entry: Entry, capacity: usize, live: impl Fn(Entry) -> bool) {
        if let Some(slot) = self.current.get_mut(&id) {
            *slot = entry;
            return;
        }
        self.previous.remove(&id);
        if self.current.len() >= (capacity / 2).max(1) {
            self.rotate(&live);
            self.rotated_at = entry.since();
            if capacity < 2 {
                self.rotate(&live);
            }
        }
        self.current.insert(id, entry);
    }

    /// Gives up the in-progress claim of `id`, unless an older claim of
    /// the id, which timed out and was claimed again, is still to be given
    /// up: that one is taken to be this one.
    fn abandon(&mut self, id: Key) {
        if !self.superseded.is_empty()
            && let Some(older) = self.superseded.get_mut(&id)
        {
            older.count -= 1;
            if older.count == 0 {
                self.superseded.remove(&id);
            }
            return;
        }
        if self
            .get(&id)
            .is_some_and(|e| e.claim() == Claim::InProgress)
        {
            self.remove(&id);
        }
    }

    /// Records `id` as done: no claim of it is left to give up.
    fn complete(&mut self, id: Key, entry: Entry, capacity: usize, live: impl Fn(Entry) -> bool) {
        if !self.superseded.is_empty() {
            self.superseded.remove(&id);
        }
        self.put(id, entry, capacity, live);
    }

    /// Claims `id` for `entry` (an in-progress claim) unless a live entry
    /// (`live` says which are) holds it already, whose claim is returned.
    ///
    /// [`get`](Shard::get) then [`put`](Shard::put) would do the same; this
    /// looks the id up once per generation instead of five times, and writes
    /// the new entry where the lookup found its place.
    fn claim(
        &mut self,
        id: Key,
        entry: Entry,
        capacity: usize,
        live: impl Fn(Entry) -> bool,
    ) -> Option<Claim> {
        let full = self.current.len() >= (capacity / 2).max(1);
        let (id, old) = match self.current.entry(id) {
            hash_map::Entry::Occupied(mut found) => {
                let old = *found.get();
                if live(old) {
                    return Some(old.claim());
                }
                found.insert(entry);
                if old.claim() == Claim::InProgress {
                    let id = found.key().clone();
                    self.supersede(id, old.since());
                }
                return None;
            }
            hash_map::Entry::Vacant(place) => match self.previous.get(place.key()).copied() {
                Some(old) if live(old) => return Some(old.claim()),
                None if !full => {
                    place.insert(entry);
                    return None;
                }
                // Rarer: an expired entry of the older generation for `put`
                // to drop, or a full generation to rotate first.
                old => (place.into_key(), old),
            },
        };
        if let Some(old) = old.filter(|e| e.claim() == Claim::InProgress) {
            self.supersede(id.clone(), old.since());
        }
        self.put(id, entry, capacity, live);
        None
    }

    /// Counts a timed-out claim of `id` that a new claim replaced: its
    /// owner may still give it up.
    #[cold]
    fn supersede(&mut self, id: Key, since: Stamp) {
        if self.superseded.len() >= SUPERSEDED_KEPT
            && !self.superseded.contains_key(&id)
            && let Some(oldest) = self
                .superseded
                .iter()
                .min_by_key(|(_, older)| older.since.0)
                .map(|(id, _)| id.clone())
        {
            self.superseded.remove(&oldest);
        }
        let older = self
            .superseded
            .entry(id)
            .or_insert(Older { count: 0, since });
        older.count += 1;
        older.since = Stamp(older.since.0.max(since.0));
    }

    fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

struct Inner {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    /// What the entries' time stamps count from.
    epoch: Instant,
    retention: Duration,
    in_progress_timeout: Duration,
    max_entries: u64,
    shard_capacity: usize,
    generation: Duration,
}

/// An in-process [`IdempotencyStore`], for a service that runs as one
/// process. Cloning it is cheap; the clones share their entries.
///
/// Completed ids are kept for [`DEFAULT_RETENTION`], claims time out after
/// [`DEFAULT_IN_PROGRESS_TIMEOUT`], and at most [`DEFAULT_MAX_ENTRIES`] ids
/// are kept (the oldest forgotten first, but never a claim still in
/// progress); each is configurable
/// through [`MemoryStore::builder`]. Entries are lost when the process
/// restarts, so a retry that reaches a restarted process runs its handler
/// again. Its methods never fail and never wait on I/O.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the entries themselves: there can be a million of them.
        f.debug_struct("MemoryStore")
            .field("retention", &self.inner.retention)
            .field("in_progress_timeout", &self.inner.in_progress_timeout)
            .field("max_entries", &self.inner.max_entries)
            .field("entry_count", &self.entry_count())
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// A store with the default retention, in-progress timeout and size.
    pub fn new() -> Self {
        MemoryStore::builder().build()
    }

    /// A builder, to set the retention, in-progress timeout or size.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            retention: DEFAULT_RETENTION,
            in_progress_timeout: DEFAULT_IN_PROGRESS_TIMEOUT,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }

    /// How long a completed id is remembered.
    pub fn retention(&self) -> Duration {
        self.inner.retention
    }

    /// How long a claim lasts when it is neither completed nor abandoned.
    pub fn in_progress_timeout(&self) -> Duration {
        self.inner.in_progress_timeout
    }

    /// How many ids are kept at most.
    pub fn max_entries(&self) -> u64 {
        self.inner.max_entries
    }

    /// How many ids the store holds, counting expired ones not yet swept.
    fn entry_count(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    /// Runs `f` on the shard of `id`, under its lock, once the shard has
    /// dropped the generation that expired.
    fn with_shard<T>(&self, id: &str, f: impl FnOnce(&mut Shard, Key, Stamp) -> T) -> T {
        let inner = &*self.inner;
        let key = Key::new(&inner.hasher, id);
        // The shard from bits the tables do not use: they place an id by
        // its hash's low bits and tag it with its top seven.
        let index = (key.hash >> 32) as usize % inner.shards.len();
        let now = Stamp::at(Instant::now(), inner.epoch);
        // Nothing panics while the lock is held, so a poisoned lock still
        // guards consistent entries.
        let mut shard = inner.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        shard.rotate_if_due(now, inner.generation, |e| self.is_live(e, now));
        f(&mut shard, key, now)
    }

    fn is_live(&self, entry: Entry, now: Stamp) -> bool {
        let lifetime = match entry.claim() {
            Claim::InProgress => self.inner.in_progress_timeout,
            Claim::Done => self.inner.retention,
        };
        now.since(entry.since()) < lifetime
    }

    fn begin_now(&self, id: &str) -> Begin {
        let capacity = self.inner.shard_capacity;
        // Under the shard's lock: concurrent claims of one id see each
        // other's writes. An expired entry reads as absent.
        self.with_shard(id, |shard, id, now| {
            let entry = Entry::new(Claim::InProgress, now);
            match shard.claim(id, entry, capacity, |e| self.is_live(e, now)) {
                Some(Claim::InProgress) => Begin::InProgress,
                Some(Claim::Done) => Begin::Done,
                None => Begin::New,
            }
        })
    }

    fn complete_now(&self, id: &str) {
        let capacity = self.inner.shard_capacity;
        self.with_shard(id, |shard, id, now| {
            let entry = Entry::new(Claim::Done, now);
            shard.complete(id, entry, capacity, |e| self.is_live(e, now));
        });
    }

    fn abandon_now(&self, id: &str) {
        self.with_shard(id, |shard, id, _| shard.abandon(id));
    }
}

impl IdempotencyStore for MemoryStore {
    fn begin<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Begin> {
        Box::pin(async move { Ok(self.begin_now(id)) })
    }

    fn complete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.complete_now(id);
            Ok(())
        })
    }

    fn abandon<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.abandon_now(id);
            Ok(())
        })
    }
}

/// Builds a [`MemoryStore`].
#[derive(Debug, Clone)]
pub struct MemoryStoreBuilder {
    retention: Duration,
    in_progress_timeout: Duration,
    max_entries: u64,
}

impl MemoryStoreBuilder {
    /// How long a completed id is remembered (default
    /// [`DEFAULT_RETENTION`]). Shorter than Kustomer's retry window, a late
    /// retry of a handled event runs its handler again.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// How long a claim lasts when it is neither completed nor abandoned
    /// (default [`DEFAULT_IN_PROGRESS_TIMEOUT`]); after that,
    /// [`begin`](IdempotencyStore::begin) answers [`Begin::New`] again.
    /// Keep it above the longest a claimed event may take: its handler's
    /// time limit, plus, with the ordering guard, the wait for its
    /// resource's turn (up to that limit again) and, with handler slots,
    /// their `max_wait`. The default is far above all three.
    pub fn in_progress_timeout(mut self, timeout: Duration) -> Self {
        self.in_progress_timeout = timeout;
        self
    }

    /// How many ids are kept at most (default [`DEFAULT_MAX_ENTRIES`]); past
    /// that, the oldest are forgotten first: the ids are kept in two
    /// generations of at most half as many each, and when the newer one is
    /// full the older one is dropped, but for its claims still in progress
    /// (their handlers still run), which move to the newer one and count
    /// toward its half: the bound holds unless more than half of it are
    /// claims in progress at once (far more than a receiver's concurrent
    /// deliveries at the default). Each id kept takes about 60 bytes,
    /// 90 when a million fill both generations' tables (measured:
    /// RELIABILITY.md), so the default bounds the store at about 90 MB.
    /// Zero is taken as one.
    pub fn max_entries(mut self, max_entries: u64) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// The store.
    pub fn build(self) -> MemoryStore {
        // Enough shards that concurrent deliveries rarely wait on one lock,
        // and never more than the entries allowed, so that each shard's
        // share of `max_entries` is at least one.
        let max_entries = self.max_entries.max(1);
        let shards = (max_entries / 4096).clamp(1, 64) as usize;
        let shard_capacity = usize::try_from(max_entries / shards as u64).unwrap_or(usize::MAX);
        let epoch = Instant::now();
        let shards = (0..shards)
            .map(|_| {
                Mutex::new(Shard {
                    current: Generation::default(),
                    previous: Generation::default(),
                    rotated_at: Stamp(0),
                    superseded: HashMap::default(),
                })
            })
            .collect();
        MemoryStore {
            inner: Arc::new(Inner {
                shards,
                hasher: RandomState::new(),
                epoch,
                retention: self.retention,
                in_progress_timeout: self.in_progress_timeout,
                max_entries,
                shard_capacity,
                generation: self.retention.max(self.in_progress_timeout),
            }),
        }
    }
}

/// Whether an update is newer than the last one handled for its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Freshness {
    /// Newer than any handled for the resource, or nothing to compare with.
    Fresh,
    /// Not newer than the last one handled: a late or repeated update.
    Stale {
        /// The revision last handled for the resource.
        last: i64,
    },
}

impl Freshness {
    /// Whether the update is [`Freshness::Fresh`].
    pub fn is_fresh(self) -> bool {
        self == Freshness::Fresh
    }
}

/// Remembers the last revision (`data.attributes.rev`) handled per resource
/// (`data.id`), to tell apart updates that arrive after a newer one.
///
/// Use: [`check`](OrderingGuard::check) before the handler runs, and
/// [`record`](OrderingGuard::record) after it succeeded. The two are not one
/// atomic step: two deliveries for one resource handled at the same time can
/// both be fresh, and `record` keeps the higher revision whatever the order
/// of the calls. A revision is remembered for [`DEFAULT_RETENTION`] after it
/// was recorded (longer than Kustomer retries a delivery, so longer than an
/// update can arrive late), for at most [`DEFAULT_MAX_ENTRIES`] resources
/// (the receiver's record of a resource's `updatedAt` is kept in the same
/// entry as its revision); both are configurable ([`OrderingGuard::with_limits`]). Cloning it is
/// cheap; the clones share their entries.
///
/// Resource ids are Kustomer object ids, unique across resource types, so
/// the guard is keyed by the id alone.
#[derive(Clone)]
pub struct OrderingGuard {
    last: Cache<String, Last>,
    retention: Duration,
    max_entries: u64,
}

/// What the guard keeps of a resource: its last revision, and (for the
/// receiver's ordering by time) its last `updatedAt`, in one entry.
#[derive(Clone, Copy, Debug, Default)]
struct Last {
    rev: Option<i64>,
    time: Option<i64>,
}

impl fmt::Debug for OrderingGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrderingGuard")
            .field("retention", &self.retention)
            .field("max_entries", &self.max_entries)
            .field("entry_count", &self.last.entry_count())
            .finish()
    }
}

impl Default for OrderingGuard {
    fn default() -> Self {
        OrderingGuard::new()
    }
}

impl OrderingGuard {
    /// A guard with the default retention and size.
    pub fn new() -> Self {
        OrderingGuard::with_limits(DEFAULT_RETENTION, DEFAULT_MAX_ENTRIES)
    }

    /// A guard that remembers a revision for `retention` after it was
    /// recorded (`Duration::MAX`: for as good as ever, a thousand years),
    /// for at most `max_entries` resources (least recently used forgotten
    /// first). Zero entries is taken as one. A revision forgotten lets an
    /// older update of its resource through, so a retention of zero, which
    /// remembers nothing, turns the guard off: keep it above Kustomer's hour
    /// of retries, as the default is.
    pub fn with_limits(retention: Duration, max_entries: u64) -> Self {
        let max_entries = max_entries.max(1);
        let last = Cache::builder()
            .max_capacity(max_entries)
            .eviction_policy(EvictionPolicy::lru())
            .time_to_live(retention.min(FOREVER))
            .build();
        OrderingGuard {
            last,
            retention,
            max_entries,
        }
    }

    /// How long a recorded revision is remembered.
    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// Whether revision `rev` of `resource_id` is newer than the last one
    /// recorded for it. An equal revision is stale.
    pub fn check(&self, resource_id: &str, rev: i64) -> Freshness {
        match self.last.get(resource_id).and_then(|l| l.rev) {
            Some(last) if rev <= last => Freshness::Stale { last },
            _ => Freshness::Fresh,
        }
    }

    /// Records that revision `rev` of `resource_id` was handled. A lower
    /// revision than the one recorded leaves it as it is.
    pub fn record(&self, resource_id: &str, rev: i64) {
        self.record_in(resource_id, rev, |l| &mut l.rev);
    }

    /// Records `value` in the slot `slot` picks of the resource's entry,
    /// unless a higher one is there.
    fn record_in(&self, resource_id: &str, value: i64, slot: fn(&mut Last) -> &mut Option<i64>) {
        self.last
            .entry_by_ref(resource_id)
            .and_compute_with(|entry| {
                let mut last = entry.map(|e| e.into_value()).unwrap_or_default();
                match slot(&mut last) {
                    Some(kept) if *kept >= value => Op::Nop,
                    kept => {
                        *kept = Some(value);
                        Op::Put(last)
                    }
                }
            });
    }

    /// [`check`](OrderingGuard::check) for an event: its `data.id` and
    /// `data.attributes.rev`. An event without either (or with a `data.id`
    /// empty or of white space alone, which names no resource) is always
    /// fresh: users and teams,
    /// which carry no `rev`, are ordered by `updatedAt` in the receiver
    /// ([`Receiver::with_ordering`](crate::receiver::Receiver::with_ordering)),
    /// not here.
    pub fn check_event(&self, event: &(impl Envelope + ?Sized)) -> Freshness {
        let resource = event
            .resource_id()
            .filter(|id| !crate::receiver::names_nothing(id));
        match (resource, event.rev()) {
            (Some(id), Some(rev)) => self.check(id, rev),
            _ => Freshness::Fresh,
        }
    }

    /// [`record`](OrderingGuard::record) for an event; nothing for an event
    /// without a `data.id` (or with one that names nothing) or a
    /// `data.attributes.rev`.
    pub fn record_event(&self, event: &(impl Envelope + ?Sized)) {
        let resource = event
            .resource_id()
            .filter(|id| !crate::receiver::names_nothing(id));
        if let (Some(id), Some(rev)) = (resource, event.rev()) {
            self.record(id, rev);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub(super) fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn begin(store: &impl IdempotencyStore, id: &str) -> Begin {
        block_on(store.begin(id)).unwrap()
    }

    fn complete(store: &impl IdempotencyStore, id: &str) {
        block_on(store.complete(id)).unwrap()
    }

    fn abandon(store: &impl IdempotencyStore, id: &str) {
        block_on(store.abandon(id)).unwrap()
    }

    #[test]
    fn new_in_progress_done() {
        let store = MemoryStore::new();
        assert_eq!(begin(&store, "a"), Begin::New);
        assert_eq!(begin(&store, "a"), Begin::InProgress);
        assert_eq!(begin(&store, "b"), Begin::New, "ids are independent");
        complete(&store, "a");
        assert_eq!(begin(&store, "a"), Begin::Done);
        assert_eq!(begin(&store, "a"), Begin::Done, "done stays done");
        assert_eq!(begin(&store, "b"), Begin::InProgress);
    }

    #[test]
    fn abandon_lets_a_retry_run() {
        let store = MemoryStore::new();
        assert_eq!(begin(&store, "a"), Begin::New);
        abandon(&store, "a");
        assert_eq!(begin(&store, "a"), Begin::New);
        complete(&store, "a");
        abandon(&store, "a");
        assert_eq!(
            begin(&store, "a"),
            Begin::Done,
            "abandon never forgets done"
        );
        abandon(&store, "never-seen");
        assert_eq!(begin(&store, "never-seen"), Begin::New);
    }

    #[test]
    fn complete_without_begin_is_remembered() {
        let store = MemoryStore::new();
        complete(&store, "a");
        assert_eq!(begin(&store, "a"), Begin::Done);
    }

    #[test]
    fn done_ids_expire_after_the_retention() {
        let store = MemoryStore::builder()
            .retention(Duration::from_millis(100))
            .build();
        assert_eq!(begin(&store, "a"), Begin::New);
        complete(&store, "a");
        assert_eq!(begin(&store, "a"), Begin::Done);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(begin(&store, "a"), Begin::New);
    }

    #[test]
    fn claims_time_out() {
        let store = MemoryStore::builder()
            .in_progress_timeout(Duration::from_millis(100))
            .build();
        assert_eq!(begin(&store, "a"), Begin::New);
        assert_eq!(begin(&store, "a"), Begin::InProgress);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(begin(&store, "a"), Begin::New, "the owner died mid-handler");
        assert_eq!(
            begin(&store, "a"),
            Begin::InProgress,
            "and it is claimed anew"
        );
    }

    #[test]
    fn a_timed_out_claims_late_give_up_leaves_the_newer_claim_held() {
        let store = MemoryStore::builder()
            .in_progress_timeout(Duration::from_millis(100))
            .build();
        assert_eq!(begin(&store, "a"), Begin::New, "claim A");
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(begin(&store, "a"), Begin::New, "A timed out: claim B");
        abandon(&store, "a"); // A's handler ends, failed, after its timeout
        assert_eq!(
            begin(&store, "a"),
            Begin::InProgress,
            "B's claim still runs: a third delivery must wait"
        );
        abandon(&store, "a"); // B's handler fails
        assert_eq!(begin(&store, "a"), Begin::New, "now a retry runs");
        // A late success still marks the event done, and leaves nothing to
        // give up behind it.
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(begin(&store, "a"), Begin::New, "claim D over C");
        complete(&store, "a");
        abandon(&store, "a");
        assert_eq!(begin(&store, "a"), Begin::Done);
        assert!(
            store
                .inner
                .shards
                .iter()
                .all(|s| s.lock().unwrap().superseded.is_empty())
        );
    }

    #[test]
    fn a_timed_out_claim_forgotten_by_a_rotation_still_gives_up_its_own_claim_only() {
        let store = MemoryStore::builder()
            .max_entries(4)
            .in_progress_timeout(Duration::from_millis(100))
            .build();
        assert_eq!(begin(&store, "x"), Begin::New, "claim A");
        std::thread::sleep(Duration::from_millis(250));
        // Enough other ids that A's entry, timed out, is rotated away.
        for i in 0..6 {
            let id = format!("done-{i}");
            assert_eq!(begin(&store, &id), Begin::New);
            complete(&store, &id);
        }
        assert_eq!(begin(&store, "x"), Begin::New, "claim B");
        abandon(&store, "x"); // A's handler ends, failed
        assert_eq!(begin(&store, "x"), Begin::InProgress, "B's claim holds");
        abandon(&store, "x"); // B's
        assert_eq!(begin(&store, "x"), Begin::New);
    }

    #[test]
    fn a_full_store_keeps_the_claims_in_progress() {
        let store = MemoryStore::builder().max_entries(4).build();
        assert_eq!(begin(&store, "x"), Begin::New);
        for i in 0..8 {
            let id = format!("done-{i}");
            assert_eq!(begin(&store, &id), Begin::New);
            complete(&store, &id);
        }
        assert_eq!(
            begin(&store, "x"),
            Begin::InProgress,
            "x's handler still runs: its retry must not run beside it"
        );
        assert!(
            store.entry_count() <= 4 + 1,
            "the size bound holds, plus the claim"
        );
        complete(&store, "x");
        assert_eq!(begin(&store, "x"), Begin::Done);
    }

    #[test]
    fn done_ids_outlive_the_in_progress_timeout() {
        let store = MemoryStore::builder()
            .in_progress_timeout(Duration::from_millis(50))
            .retention(Duration::from_secs(600))
            .build();
        assert_eq!(begin(&store, "a"), Begin::New);
        complete(&store, "a");
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(begin(&store, "a"), Begin::Done);
    }

    #[test]
    fn expired_generations_are_swept() {
        let store = MemoryStore::builder()
            .retention(Duration::from_millis(50))
            .in_progress_timeout(Duration::from_millis(50))
            .max_entries(10)
            .build();
        for i in 0..4 {
            let id = format!("id-{i}");
            assert_eq!(begin(&store, &id), Begin::New);
            complete(&store, &id);
        }
        assert_eq!(store.entry_count(), 4);
        std::thread::sleep(Duration::from_millis(150));
        // Two generations have passed: touching the shard drops them both.
        assert_eq!(begin(&store, "id-0"), Begin::New);
        assert_eq!(store.entry_count(), 1);
    }

    #[test]
    fn ids_spread_over_every_shard() {
        // 64 shards; the shard comes from other bits of the id's hash than
        // the tables use, so every shard gets its share.
        let store = MemoryStore::builder().max_entries(64 * 4096).build();
        assert_eq!(store.inner.shards.len(), 64);
        for i in 0..6400 {
            let id = format!("{i:024x}");
            assert_eq!(begin(&store, &id), Begin::New);
            complete(&store, &id);
            assert_eq!(begin(&store, &id), Begin::Done);
        }
        let per_shard: Vec<usize> = store
            .inner
            .shards
            .iter()
            .map(|s| s.lock().unwrap().len())
            .collect();
        assert_eq!(per_shard.iter().sum::<usize>(), 6400);
        assert!(per_shard.iter().all(|&n| n > 40), "{per_shard:?}");
    }

    #[test]
    fn an_entry_keeps_its_claim_and_time_in_eight_bytes() {
        for claim in [Claim::InProgress, Claim::Done] {
            for nanos in [0, 1, 4_500_000_000_000, u64::MAX >> 1] {
                let entry = Entry::new(claim, Stamp(nanos));
                assert_eq!((entry.claim(), entry.since()), (claim, Stamp(nanos)));
            }
            // Past 2^63 ns the time saturates; the claim is kept.
            let entry = Entry::new(claim, Stamp(u64::MAX));
            assert_eq!(
                (entry.claim(), entry.since()),
                (claim, Stamp(u64::MAX >> 1))
            );
        }
        assert_eq!(std::mem::size_of::<Entry>(), 8);
        assert_eq!(std::mem::size_of::<(Key, Entry)>(), 40);
    }

    #[test]
    fn stamps_count_from_the_epoch_and_never_go_back() {
        let epoch = Instant::now();
        let later = epoch + Duration::from_millis(1500);
        assert_eq!(Stamp::at(epoch, epoch), Stamp(0));
        assert_eq!(Stamp::at(later, epoch), Stamp(1_500_000_000));
        // An instant before the epoch is the epoch.
        assert_eq!(Stamp::at(epoch, later), Stamp(0));
        assert_eq!(Stamp(3).since(Stamp(1)), Duration::from_nanos(2));
        assert_eq!(Stamp(1).since(Stamp(3)), Duration::ZERO);
    }

    #[test]
    fn counts_of_timed_out_claims_are_bounded_and_expire() {
        let mut shard = Shard {
            current: Generation::default(),
            previous: Generation::default(),
            rotated_at: Stamp(0),
            superseded: HashMap::default(),
        };
        let hasher = RandomState::new();
        let key = |i: usize| Key::new(&hasher, &format!("id-{i}"));
        for i in 0..SUPERSEDED_KEPT {
            shard.supersede(key(i), Stamp(1000 + i as u64));
        }
        // Full: one more lets go of the id whose claim is oldest, only.
        shard.supersede(key(SUPERSEDED_KEPT), Stamp(1));
        assert_eq!(shard.superseded.len(), SUPERSEDED_KEPT);
        assert!(!shard.superseded.contains_key(&key(0)));
        assert!(shard.superseded.contains_key(&key(1)));
        // Counted twice, given up once: one still to come.
        shard.supersede(key(1), Stamp(5000));
        assert_eq!(shard.superseded[&key(1)].count, 2);
        shard.abandon(key(1));
        assert_eq!(shard.superseded[&key(1)].count, 1);
        // A rotation keeps the counts of claims made within two
        // generations, and forgets the older ones.
        let generation = Duration::from_nanos(10_000);
        shard.rotate_if_due(Stamp(20_000), generation, |_| false);
        assert_eq!(shard.superseded.len(), SUPERSEDED_KEPT);
        assert_eq!(shard.superseded[&key(1)].count, 1);
        shard.rotate_if_due(Stamp(35_095), generation, |_| false);
        assert!(shard.superseded.is_empty());
    }

    #[test]
    fn a_rotation_reuses_the_older_table() {
        let now = Stamp(0);
        let mut shard = Shard {
            current: Generation::default(),
            previous: Generation::default(),
            rotated_at: now,
            superseded: HashMap::default(),
        };
        let hasher = RandomState::new();
        let key = |id: &str| Key::new(&hasher, id);
        let entry = Entry::new(Claim::Done, now);
        // A generation holds half the capacity: 64 ids fill one.
        for i in 0..64 {
            shard.put(key(&format!("a-{i}")), entry, 128, |_| true);
        }
        let grown = shard.current.capacity();
        // The 65th id rotates: the 64 stay findable in the older generation.
        shard.put(key("b-0"), entry, 128, |_| true);
        assert_eq!((shard.current.len(), shard.previous.len()), (1, 64));
        assert!(shard.get(&key("a-0")).is_some() && shard.get(&key("b-0")).is_some());
        // The next rotation forgets the "a" ids and writes into their table,
        // already grown, instead of growing a new one from empty.
        for i in 1..64 {
            shard.put(key(&format!("b-{i}")), entry, 128, |_| true);
        }
        shard.put(key("c-0"), entry, 128, |_| true);
        assert!(shard.get(&key("a-0")).is_none() && shard.get(&key("b-0")).is_some());
        assert!(
            shard.current.capacity() >= grown,
            "{}",
            shard.current.capacity()
        );
        // A time-based rotation does the same; two idle generations give
        // the memory back.
        let generation = Duration::from_secs(60);
        let after = |d: Duration| Stamp(now.0 + d.as_secs() * 1_000_000_000);
        shard.rotate_if_due(after(generation), generation, |_| false);
        assert!(shard.get(&key("b-0")).is_none() && shard.get(&key("c-0")).is_some());
        assert!(shard.current.capacity() >= grown);
        shard.rotate_if_due(after(generation * 3), generation, |_| false);
        assert_eq!(shard.len(), 0);
        assert_eq!(shard.current.capacity() + shard.previous.capacity(), 0);
    }

    #[test]
    fn a_retention_without_end_is_accepted() {
        let store = MemoryStore::builder()
            .retention(Duration::MAX)
            .in_progress_timeout(Duration::MAX)
            .build();
        assert_eq!(begin(&store, "a"), Begin::New);
        complete(&store, "a");
        assert_eq!(begin(&store, "a"), Begin::Done);
    }

    #[test]
    fn the_size_is_bounded_and_the_newest_ids_are_kept() {
        for max in [1, 2, 3, 10, 100, 10_000] {
            let store = MemoryStore::builder().max_entries(max).build();
            for i in 0..3 * max {
                let id = format!("id-{i}");
                assert_eq!(begin(&store, &id), Begin::New);
                complete(&store, &id);
                assert!(store.entry_count() as u64 <= max, "{max}: {i}");
            }
            let newest = format!("id-{}", 3 * max - 1);
            assert_eq!(begin(&store, &newest), Begin::Done, "{max}");
        }
    }

    #[test]
    fn a_done_id_from_the_previous_generation_is_still_done() {
        let store = MemoryStore::builder().max_entries(4).build();
        assert_eq!(begin(&store, "a"), Begin::New);
        complete(&store, "a");
        // Fill the current generation (two entries), pushing "a" into the previous one.
        assert_eq!(begin(&store, "b"), Begin::New);
        assert_eq!(begin(&store, "c"), Begin::New);
        assert_eq!(begin(&store, "a"), Begin::Done);
        assert_eq!(begin(&store, "b"), Begin::InProgress);
        complete(&store, "b");
        assert_eq!(begin(&store, "b"), Begin::Done);
        abandon(&store, "c");
        assert_eq!(begin(&store, "c"), Begin::New);
    }

    #[test]
    fn a_claim_expired_in_the_previous_generation_is_claimed_anew() {
        let store = MemoryStore::builder()
            .max_entries(4)
            .in_progress_timeout(Duration::from_millis(100))
            .build();
        assert_eq!(begin(&store, "a"), Begin::New);
        assert_eq!(begin(&store, "b"), Begin::New);
        // The current generation is full: "a" and "b" move to the previous one.
        assert_eq!(begin(&store, "c"), Begin::New);
        assert_eq!(begin(&store, "a"), Begin::InProgress);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(begin(&store, "a"), Begin::New, "its owner died mid-handler");
        assert_eq!(begin(&store, "a"), Begin::InProgress, "claimed anew");
        // The expired entry left the previous generation: "a" is kept once.
        assert_eq!(store.entry_count(), 3);
    }

    #[test]
    fn defaults_outlast_the_retry_window() {
        let store = MemoryStore::new();
        // Retries go on for 1 + 1 + 2 + 5 + 10 + 15 + 30 = 64 minutes.
        assert!(store.retention() >= Duration::from_secs(65 * 60));
        assert_eq!(store.in_progress_timeout(), DEFAULT_IN_PROGRESS_TIMEOUT);
        assert!(OrderingGuard::new().retention() >= Duration::from_secs(65 * 60));
    }

    #[test]
    fn concurrent_begins_on_threads_give_one_new() {
        const THREADS: usize = 16;
        let store = MemoryStore::new();
        for round in 0..50 {
            let id = format!("event-{round}");
            let barrier = Barrier::new(THREADS);
            let news = AtomicUsize::new(0);
            let in_progress = AtomicUsize::new(0);
            std::thread::scope(|s| {
                for _ in 0..THREADS {
                    s.spawn(|| {
                        barrier.wait();
                        match begin(&store, &id) {
                            Begin::New => news.fetch_add(1, Ordering::SeqCst),
                            Begin::InProgress => in_progress.fetch_add(1, Ordering::SeqCst),
                            Begin::Done => panic!("nobody completed {id}"),
                        };
                    });
                }
            });
            assert_eq!(news.into_inner(), 1, "{id}");
            assert_eq!(in_progress.into_inner(), THREADS - 1, "{id}");
        }
    }

    #[test]
    fn concurrent_begins_on_tasks_give_one_new() {
        const TASKS: usize = 64;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .build()
            .unwrap();
        let store: Arc<dyn IdempotencyStore> = Arc::new(MemoryStore::new());
        runtime.block_on(async {
            for round in 0..20 {
                let id: Arc<str> = format!("event-{round}").into();
                let tasks: Vec<_> = (0..TASKS)
                    .map(|_| {
                        let (store, id) = (Arc::clone(&store), Arc::clone(&id));
                        tokio::spawn(async move { store.begin(&id).await.unwrap() })
                    })
                    .collect();
                let mut outcomes = Vec::new();
                for task in tasks {
                    outcomes.push(task.await.unwrap());
                }
                let news = outcomes.iter().filter(|b| **b == Begin::New).count();
                assert_eq!(news, 1, "{id}: {outcomes:?}");
                assert!(
                    outcomes
                        .iter()
                        .all(|b| matches!(b, Begin::New | Begin::InProgress))
                );
            }
        });
    }

    #[test]
    fn a_store_behind_a_pointer_is_a_store() {
        let boxed: Box<dyn IdempotencyStore> = Box::new(MemoryStore::new());
        assert_eq!(begin(&boxed, "a"), Begin::New);
        let shared = Arc::new(MemoryStore::new());
        let clone = Arc::clone(&shared);
        assert_eq!(begin(&shared, "a"), Begin::New);
        assert_eq!(begin(&clone, "a"), Begin::InProgress);
        let store = MemoryStore::new();
        let copy = store.clone();
        assert_eq!(begin(&store, "a"), Begin::New);
        assert_eq!(begin(&copy, "a"), Begin::InProgress, "clones share entries");
    }

    #[test]
    fn debug_shows_the_settings_not_the_ids() {
        let store = MemoryStore::builder()
            .retention(Duration::from_secs(4500))
            .max_entries(10)
            .build();
        assert_eq!(begin(&store, "6087326fa8b1c7b07da5e5c9"), Begin::New);
        let debug = format!("{store:?}");
        assert!(debug.starts_with("MemoryStore {"), "{debug}");
        assert!(debug.contains("retention: 4500s"), "{debug}");
        assert!(debug.contains("in_progress_timeout: 300s"), "{debug}");
        assert!(debug.contains("max_entries: 10"), "{debug}");
        assert!(!debug.contains("6087326fa8b1c7b07da5e5c9"), "{debug}");

        let guard = OrderingGuard::with_limits(Duration::from_secs(60), 5);
        guard.record("608731c238e15a90895f7029", 3);
        let debug = format!("{guard:?}");
        assert!(debug.starts_with("OrderingGuard {"), "{debug}");
        assert!(debug.contains("retention: 60s"), "{debug}");
        assert!(debug.contains("max_entries: 5"), "{debug}");
        assert!(!debug.contains("608731c238e15a90895f7029"), "{debug}");
    }

    /// No end (`Duration::MAX`), as `MemoryStore` takes it: not a panic
    /// from the cache underneath, whose time to live stops at a thousand
    /// years.
    #[test]
    fn an_ordering_guard_with_no_end_keeps_revisions() {
        let guard = OrderingGuard::with_limits(Duration::MAX, 5);
        assert_eq!(guard.retention(), Duration::MAX);
        guard.record("r", 3);
        assert_eq!(guard.check("r", 3), Freshness::Stale { last: 3 });
        assert_eq!(guard.check("r", 4), Freshness::Fresh);
    }

    /// Room for no resource would be no guard: taken as room for one.
    #[test]
    fn an_ordering_guard_of_zero_entries_keeps_one() {
        let guard = OrderingGuard::with_limits(DEFAULT_RETENTION, 0);
        guard.record("r", 5);
        guard.last.run_pending_tasks();
        assert_eq!(guard.check("r", 3), Freshness::Stale { last: 5 });
    }

    #[test]
    fn store_errors_say_their_cause_once() {
        let e = StoreError::unavailable(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "redis timed out",
        ));
        assert_eq!(
            e.to_string(),
            "the idempotency store is unavailable: redis timed out"
        );
        // In the message, and not again as a source: a report of the
        // chain (anyhow's `{:#}`) says it once.
        assert!(e.source().is_none());
        let e = StoreError::failed("unexpected reply");
        assert!(matches!(e, StoreError::Failed(_)));
        assert_eq!(
            e.to_string(),
            "the idempotency store failed: unexpected reply"
        );
    }

    #[test]
    fn ordering_fresh_stale_and_equal() {
        let guard = OrderingGuard::new();
        let c = "608731c238e15a90895f7029";
        assert_eq!(guard.check(c, 1), Freshness::Fresh, "nothing recorded");
        guard.record(c, 3);
        assert_eq!(guard.check(c, 4), Freshness::Fresh);
        assert_eq!(guard.check(c, 3), Freshness::Stale { last: 3 }, "equal");
        assert_eq!(guard.check(c, 2), Freshness::Stale { last: 3 });
        assert!(!guard.check(c, 2).is_fresh());
        assert!(guard.check("another", 1).is_fresh(), "per resource");
        guard.record(c, 2);
        assert_eq!(
            guard.check(c, 3),
            Freshness::Stale { last: 3 },
            "a late record never lowers the last revision"
        );
        guard.record(c, 5);
        assert_eq!(guard.check(c, 4), Freshness::Stale { last: 5 });
    }

    #[test]
    fn ordering_of_events() {
        let guard = OrderingGuard::new();
        let update = |rev: &str| {
            crate::parse(
                format!(
                    r#"{{"id": "6087326fa8b1c7b07da5e5c9", "name": "kustomer.customer.update",
                  "data": {{"type": "customer", "id": "608731c238e15a90895f7029",
                  "attributes": {{"name": "Franz Kafka"{rev}}}}}}}"#
                )
                .as_bytes(),
            )
            .unwrap()
            .event
        };
        let rev4 = update(r#", "rev": 4"#);
        let rev3 = update(r#", "rev": 3"#);
        let no_rev = update("");
        assert_eq!(guard.check_event(rev4.envelope()), Freshness::Fresh);
        guard.record_event(rev4.envelope());
        assert_eq!(
            guard.check_event(rev3.envelope()),
            Freshness::Stale { last: 4 }
        );
        assert_eq!(
            guard.check_event(rev4.envelope()),
            Freshness::Stale { last: 4 }
        );
        assert_eq!(guard.check_event(no_rev.envelope()), Freshness::Fresh);
        guard.record_event(no_rev.envelope());
        assert_eq!(
            guard.check("608731c238e15a90895f7029", 4),
            Freshness::Stale { last: 4 }
        );

        let no_resource = crate::parse(
            br#"{"name": "kustomer.tag.update", "data": {"type": "tag", "attributes": {"rev": 9}}}"#,
        )
        .unwrap()
        .event;
        assert_eq!(guard.check_event(no_resource.envelope()), Freshness::Fresh);
        guard.record_event(no_resource.envelope());
        assert_eq!(guard.check_event(no_resource.envelope()), Freshness::Fresh);
        // A `data.id` of white space alone names no resource either.
        let blank = crate::parse(
            br#"{"name": "kustomer.tag.update", "data": {"type": "tag", "id": " ", "attributes": {"rev": 9}}}"#,
        )
        .unwrap()
        .event;
        guard.record_event(blank.envelope());
        assert_eq!(guard.check_event(blank.envelope()), Freshness::Fresh);
    }

    /// The receiver's record of a resource's `updatedAt` shares its entry
    /// with the revision: a guard of N entries remembers N resources.
    #[test]
    fn a_resources_time_and_revision_are_one_entry() {
        let guard = OrderingGuard::with_limits(DEFAULT_RETENTION, 10);
        let time_key = format!("r1{TIME_KEY_SUFFIX}");
        futures_ready(guard.record_revision("r1", 5));
        futures_ready(guard.record_revision(&time_key, 1_000));
        // Lower values leave the higher in place.
        futures_ready(guard.record_revision("r1", 4));
        futures_ready(guard.record_revision(&time_key, 999));
        guard.last.run_pending_tasks();
        assert_eq!(guard.last.entry_count(), 1);
        assert_eq!(futures_ready(guard.last_revision("r1")), Some(5));
        assert_eq!(futures_ready(guard.last_revision(&time_key)), Some(1_000));
        assert_eq!(guard.check("r1", 5), Freshness::Stale { last: 5 });
        // A time alone is no revision.
        futures_ready(guard.record_revision(&format!("r2{TIME_KEY_SUFFIX}"), 7));
        assert_eq!(futures_ready(guard.last_revision("r2")), None);
        assert_eq!(guard.check("r2", 1), Freshness::Fresh);
    }

    /// The value of a future that is ready at once (the guard's are).
    fn futures_ready<T>(f: StoreFuture<'_, T>) -> T {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = f;
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(r) => r.expect("the guard never fails"),
            std::task::Poll::Pending => panic!("the guard's futures are ready at once"),
        }
    }

    #[test]
    fn ordering_expires() {
        let guard = OrderingGuard::with_limits(Duration::from_millis(100), 100);
        guard.record("r", 7);
        assert_eq!(guard.check("r", 7), Freshness::Stale { last: 7 });
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(guard.check("r", 7), Freshness::Fresh);
    }
}
