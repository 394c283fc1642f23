//! [`FailOpen`]: a shared store that, while it cannot be reached, lets the
//! process claim event ids in memory rather than turn deliveries away.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use compact_str::CompactString;

use super::{
    Begin, IdempotencyStore, MemoryStore, OrderingGuard, RevisionStore, SharedTurn, StoreError,
    StoreFuture,
};

/// How long after a call found the shared store unavailable the next calls
/// go straight to memory, rather than each waiting for the store to fail
/// again (a store that does not answer fails only after its timeout).
pub const FAIL_OPEN_RETRY_AFTER: Duration = Duration::from_secs(1);

/// How long a [`FailOpen`] waits for its store by default before taking it
/// as unavailable: well within the few seconds Kustomer waits for an
/// answer, and the receiver's own time limit.
pub const DEFAULT_FAIL_OPEN_TIMEOUT: Duration = Duration::from_secs(2);

/// A shared [`IdempotencyStore`] that fails open: while it is unavailable
/// ([`StoreError::Unavailable`]: down, out of reach, silent), event ids are
/// claimed in a [`MemoryStore`] of the process instead, so deliveries are
/// handled rather than answered with 503.
///
/// Which to choose is a trade-off. By default, a receiver whose shared
/// store is out of reach answers 503, and Kustomer retries. Nothing is
/// handled twice, but nothing is handled at all until the store is back.
/// Kustomer retries for about an hour and then disables a webhook that
/// keeps failing, so a longer outage loses events and turns the webhook
/// off. `FailOpen` keeps handling instead:
///
/// - **While the store is down**, ids are claimed and remembered in this
///   process. A retry that reaches the same process is recognised. A retry
///   that reaches another replica runs its handler again, which is why
///   handlers should be idempotent (Kustomer's delivery is at least once
///   anyway).
/// - **After one call finds the store unavailable**, the calls of the next
///   [`FAIL_OPEN_RETRY_AFTER`] go straight to memory, so a store that has
///   stopped answering costs one timeout a second, not one per delivery.
/// - **While the store answers**, an id it claims is claimed in memory
///   too until the handler is done, so that if the store goes away
///   meanwhile, a retry that reaches this process is `in progress` rather
///   than run a second time alongside the first; and once it is done, the
///   memory remembers it too (for the memory store's retention), so that a
///   retry that reaches this process during a later outage is a duplicate.
/// - **An event handled in memory** is also marked done in the shared store
///   when it completes, if the store answers by then, or else once it
///   answers again (a few such ids with each call that reaches it), so that
///   a retry reaching another replica is a duplicate there too.
/// - **What an outage leaves to tell is bounded**: at most as many ids,
///   and as many resources' revisions, as the memory store keeps
///   ([`MemoryStore::max_entries`]); past that, the oldest ids (and the
///   newest resources) are not told, with a warning. An id handled longer
///   ago than the memory store's retention is not told either: Kustomer's
///   retries of it are over.
/// - **For the memory store's retention after an outage**, an id the shared
///   store claims anew is checked against memory too. A retry of an event
///   handled during the outage is thus still a duplicate, and the shared
///   store learns that it is done.
/// - **A claim the store made and then cannot settle**: once handled, the
///   id is remembered in memory; given up, the claim ends after the
///   store's in-progress timeout.
/// - **A store that does not answer** within
///   [`DEFAULT_FAIL_OPEN_TIMEOUT`] ([`with_timeout`](FailOpen::with_timeout))
///   counts as unavailable too.
/// - **Other errors are not masked.** A [`StoreError::Failed`] (a refused
///   command, a store that is misconfigured) is passed through.
///
/// Any shared store can be wrapped; with the `redis` feature,
/// `FailOpen::new(RedisStore::connect(url).await?)`, or
/// `RedisStore::connect_lazy(url)?` (or `connect_cluster_lazy`,
/// `connect_sentinel_lazy`) for a service that must start while Redis is
/// down:
///
/// ```
/// use kustomer_webhooks::dedupe::{FailOpen, IdempotencyStore};
/// use kustomer_webhooks::{Dispatcher, receiver::Receiver, verify::Verifier};
///
/// fn receiver(shared: impl IdempotencyStore + 'static) -> Receiver {
///     let dispatcher = Dispatcher::builder().registered().build().unwrap();
///     Receiver::new(dispatcher, Verifier::new("token")).with_store(FailOpen::new(shared))
/// }
/// # let _ = receiver(kustomer_webhooks::dedupe::MemoryStore::new());
/// ```
///
/// Around a store that is also a [`RevisionStore`] (`RedisStore`), it is
/// one too, for [`Receiver::with_ordering`](crate::receiver::Receiver::with_ordering):
/// every revision recorded is also remembered in the process (an
/// [`OrderingGuard`]), which answers while the store is unavailable; once
/// it answers again, the later of the two counts, and the store learns the
/// revisions recorded only here during the outage (a few with each call
/// that reaches it). A stale
/// update that reaches another replica during an outage is handled.
///
/// Each change of state is logged once: a warning when the store is found
/// unavailable, and an info line when it answers again.
/// [`is_down`](FailOpen::is_down) and
/// [`claimed_in_memory`](FailOpen::claimed_in_memory) tell the same to a
/// health check or a metric.
pub struct FailOpen<S> {
    store: S,
    memory: MemoryStore,
    /// The revisions recorded through it, for when `store` is unavailable.
    revisions: OrderingGuard,
    /// The ids whose claim is in `memory` (taken while `store` was
    /// unavailable): their `complete` and `abandon` go there.
    in_memory: Mutex<HashSet<CompactString>>,
    /// Ids handled while `store` was unavailable (oldest first, each with
    /// when it was handled), and revisions recorded then, which it has not
    /// been told yet: told once it answers, a few with each call, so that a
    /// retry reaching another replica finds them. At most `memory`'s
    /// `max_entries` of each.
    untold_ids: Mutex<VecDeque<(Instant, CompactString)>>,
    untold_revisions: Mutex<HashMap<CompactString, i64>>,
    /// How many ids or revisions were not kept to tell, the lists full,
    /// since the store last answered again.
    untold_let_go: AtomicU64,
    /// When a call last found `store` unavailable.
    last_failure: Mutex<Option<Instant>>,
    /// Whether the last call that reached `store` found it unavailable.
    down: AtomicBool,
    /// How many ids were claimed in memory.
    claimed_in_memory: AtomicU64,
    /// How long a call to `store` may take.
    timeout: Duration,
}

impl<S> fmt::Debug for FailOpen<S>
where
    S: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailOpen")
            .field("store", &self.store)
            .field("memory", &self.memory)
            .field("down", &self.is_down())
            .field("claimed_in_memory", &self.claimed_in_memory())
            .finish()
    }
}

impl<S> FailOpen<S> {
    /// `store`, failing open to a [`MemoryStore`] with the default
    /// retention, in-progress timeout and size.
    pub fn new(store: S) -> Self {
        FailOpen::with_memory(store, MemoryStore::new())
    }

    /// `store`, failing open to `memory` (built with
    /// [`MemoryStore::builder`] for other times or another size: with a
    /// handler time limit above four minutes, or two with the ordering
    /// guard, give it the in-progress timeout
    /// [`in_progress_timeout_for`](crate::dedupe::in_progress_timeout_for)
    /// says, as `store` has, or a retry during an outage could run a
    /// handler still running).
    pub fn with_memory(store: S, memory: MemoryStore) -> Self {
        FailOpen {
            store,
            memory,
            revisions: OrderingGuard::new(),
            in_memory: Mutex::new(HashSet::new()),
            untold_ids: Mutex::new(VecDeque::new()),
            untold_revisions: Mutex::new(HashMap::new()),
            untold_let_go: AtomicU64::new(0),
            last_failure: Mutex::new(None),
            down: AtomicBool::new(false),
            claimed_in_memory: AtomicU64::new(0),
            timeout: DEFAULT_FAIL_OPEN_TIMEOUT,
        }
    }

    /// How long a call to the shared store may take before the store
    /// counts as unavailable (default [`DEFAULT_FAIL_OPEN_TIMEOUT`]). Keep
    /// it below the receiver's time limit
    /// ([`Receiver::with_timeout`](crate::receiver::Receiver::with_timeout)),
    /// which otherwise answers 503 first.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The shared store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store was found not to answer by a probe outside any call (such
    /// as [`RedisStore::ping`](crate::dedupe::RedisStore::ping) at start):
    /// it is taken to be down ([`is_down`](FailOpen::is_down) turns true,
    /// and ids are claimed in memory without asking it for a while) until a
    /// call or [`catch_up`](FailOpen::catch_up) reaches it. Only
    /// [`StoreError::Unavailable`] counts. Nothing is logged: the caller
    /// says it in its own words.
    pub fn found_down(&self, e: &StoreError) {
        if matches!(e, StoreError::Unavailable(_)) {
            self.mark_down();
        }
    }

    /// Whether the last call that reached the shared store found it
    /// unavailable.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// How many ids handled, and resources' revisions recorded, while the
    /// shared store was unavailable are still to be told to it
    /// ([`catch_up`](FailOpen::catch_up)).
    pub fn untold(&self) -> usize {
        self.untold_ids().len()
            + self
                .untold_revisions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len()
    }

    /// How many ids were claimed in memory because the shared store was
    /// unavailable, since this store was made.
    pub fn claimed_in_memory(&self) -> u64 {
        self.claimed_in_memory.load(Ordering::Relaxed)
    }

    fn last_failure(&self) -> Option<Instant> {
        *self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a call found the store unavailable less than
    /// [`FAIL_OPEN_RETRY_AFTER`] ago: it is not asked again yet.
    fn skipping(&self) -> bool {
        self.last_failure()
            .is_some_and(|at| at.elapsed() < FAIL_OPEN_RETRY_AFTER)
    }

    /// A call found the store unavailable (`e`).
    fn failed(&self, e: &StoreError) {
        if self.mark_down() {
            tracing::warn!(
                "{e}: claiming event ids in this process until it answers (a retry that \
                 reaches another replica meanwhile is handled again)"
            );
        }
    }

    /// Takes the store to be down from now; whether it was up.
    fn mark_down(&self) -> bool {
        *self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        !self.down.swap(true, Ordering::Relaxed)
    }

    /// A call reached the store.
    fn answered(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!("the idempotency store answers again: claiming event ids in it");
            let let_go = self.untold_let_go.swap(0, Ordering::Relaxed);
            if let_go > 0 {
                tracing::warn!(
                    "{let_go} ids or revisions handled during the outage were past the {} \
                     kept to tell the store, and are not told (a retry that reaches another \
                     replica may be handled again)",
                    self.memory.max_entries()
                );
            }
        }
    }

    /// An id or revision handled during an outage is not kept to tell the
    /// store: there are too many already. Warns at the first.
    fn let_go(&self) {
        if self.untold_let_go.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!(
                "more ids or revisions handled during the outage than the {} the memory \
                 store keeps: the oldest ids, and the newest resources' revisions, will \
                 not be told to the store",
                self.memory.max_entries()
            );
        }
    }

    /// How many ids, and resources' revisions, are kept to tell the store.
    fn untold_limit(&self) -> usize {
        usize::try_from(self.memory.max_entries()).unwrap_or(usize::MAX)
    }

    /// Whether `id`'s claim was taken in memory; forgets it, since the
    /// claim is being settled.
    fn take_in_memory(&self, id: &str) -> bool {
        self.in_memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)
    }

    /// `id` was handled and the store could not be told: it is, once it
    /// answers. The oldest is let go when there are too many.
    fn untold_id(&self, id: &str) {
        let mut untold = self.untold_ids();
        if untold.len() >= self.untold_limit() {
            untold.pop_front();
            self.let_go();
        }
        untold.push_back((Instant::now(), CompactString::from(id)));
    }

    fn untold_ids(&self) -> MutexGuard<'_, VecDeque<(Instant, CompactString)>> {
        self.untold_ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// `rev` was recorded for `resource_id` and the store could not be
    /// told: it is, once it answers. A new resource is let go when there
    /// are too many.
    fn untold_revision(&self, resource_id: &str, rev: i64) {
        let mut untold = self
            .untold_revisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(last) = untold.get_mut(resource_id) {
            *last = (*last).max(rev);
        } else if untold.len() >= self.untold_limit() {
            self.let_go();
        } else {
            untold.insert(CompactString::from(resource_id), rev);
        }
    }

    async fn begin_in_memory(&self, id: &str) -> Result<Begin, StoreError> {
        let begin = self.memory.begin(id).await?;
        if begin == Begin::New {
            self.claimed_in_memory.fetch_add(1, Ordering::Relaxed);
            self.in_memory
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(CompactString::from(id));
        }
        Ok(begin)
    }
}

impl<S> FailOpen<S> {
    /// `call` on the store, within the time limit.
    async fn reach<T>(&self, call: StoreFuture<'_, T>) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(answer) => answer,
            Err(_) => Err(StoreError::unavailable(format!(
                "no answer within {:?}",
                self.timeout
            ))),
        }
    }
}

impl<S: RevisionStore> FailOpen<S> {
    /// Tells the store, now answering, some of the revisions recorded
    /// while it was not (those left, with the next calls).
    async fn tell_revisions(&self) -> Result<(), StoreError> {
        let batch: Vec<(CompactString, i64)> = {
            let mut untold = self
                .untold_revisions
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let keys: Vec<CompactString> = untold.keys().take(TELL_AT_ONCE).cloned().collect();
            keys.into_iter()
                .filter_map(|k| untold.remove_entry(&k))
                .collect()
        };
        // What is not told goes back: at a failure, or if this future is
        // dropped on the way (a caller's time limit).
        let mut telling = Telling {
            batch,
            done: 0,
            put_back: |rest: &[(CompactString, i64)]| {
                for (resource, rev) in rest {
                    self.untold_revision(resource, *rev);
                }
            },
        };
        while let Some((resource, rev)) = telling.batch.get(telling.done).cloned() {
            if let Err(e) = self.reach(self.store.record_revision(&resource, rev)).await {
                if matches!(e, StoreError::Unavailable(_)) {
                    self.failed(&e);
                }
                return Err(e);
            }
            telling.done += 1;
        }
        Ok(())
    }

    /// Tells the store, found to answer again (by a probe such as
    /// [`RedisStore::ping`](crate::dedupe::RedisStore::ping)), every revision
    /// recorded in memory while it did not: what
    /// [`catch_up`](FailOpen::catch_up) does for ids. Stops at the first
    /// failure, keeping the rest.
    pub async fn catch_up_revisions(&self) -> Result<(), StoreError> {
        while !self
            .untold_revisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
        {
            self.tell_revisions().await?;
            self.answered();
        }
        Ok(())
    }
}

impl<S: RevisionStore> RevisionStore for FailOpen<S> {
    fn last_revision<'a>(&'a self, resource_id: &'a str) -> StoreFuture<'a, Option<i64>> {
        Box::pin(async move {
            let here = self.revisions.last_revision(resource_id).await?;
            if self.skipping() {
                return Ok(here);
            }
            match self.reach(self.store.last_revision(resource_id)).await {
                Ok(shared) => {
                    self.answered();
                    let _ = self.tell_revisions().await;
                    if let Some(rev) = here
                        && shared < here
                    {
                        // Recorded here during an outage: the store learns it.
                        let _ = self
                            .reach(self.store.record_revision(resource_id, rev))
                            .await;
                    }
                    Ok(shared.max(here))
                }
                Err(e @ StoreError::Unavailable(_)) => {
                    self.failed(&e);
                    Ok(here)
                }
                Err(e) => Err(e),
            }
        })
    }

    fn record_revision<'a>(&'a self, resource_id: &'a str, rev: i64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.revisions.record(resource_id, rev);
            if self.skipping() {
                self.untold_revision(resource_id, rev);
                return Ok(());
            }
            match self
                .reach(self.store.record_revision(resource_id, rev))
                .await
            {
                Ok(()) => {
                    self.answered();
                    Ok(())
                }
                Err(e @ StoreError::Unavailable(_)) => {
                    self.failed(&e);
                    self.untold_revision(resource_id, rev);
                    Ok(())
                }
                Err(e) => Err(e),
            }
        })
    }

    /// The store's turn; while the store is out of reach, the process's
    /// own turn only ([`SharedTurn::InProcess`]), as revisions are then kept
    /// in the process.
    fn take_turn<'a>(
        &'a self,
        resource_id: &'a str,
        hold: Duration,
    ) -> StoreFuture<'a, SharedTurn> {
        Box::pin(async move {
            if self.skipping() {
                return Ok(SharedTurn::InProcess);
            }
            match self.reach(self.store.take_turn(resource_id, hold)).await {
                Ok(turn) => {
                    self.answered();
                    Ok(turn)
                }
                Err(e @ StoreError::Unavailable(_)) => {
                    self.failed(&e);
                    Ok(SharedTurn::InProcess)
                }
                Err(e) => Err(e),
            }
        })
    }

    fn shares_turns(&self) -> bool {
        self.store.shares_turns()
    }

    /// Gives the store's turn back; one the store cannot be told of ends by
    /// itself when its hold does.
    fn give_turn<'a>(&'a self, resource_id: &'a str, token: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            match self.reach(self.store.give_turn(resource_id, token)).await {
                Err(e @ StoreError::Unavailable(_)) => {
                    self.failed(&e);
                    Ok(())
                }
                answer => answer,
            }
        })
    }
}

/// A batch of what an outage left, being told to the store: what is left
/// of it when it is dropped goes back (`put_back`), whether the telling
/// failed or its future was dropped half way.
struct Telling<T, F: FnMut(&[T])> {
    batch: Vec<T>,
    done: usize,
    put_back: F,
}

impl<T, F: FnMut(&[T])> Drop for Telling<T, F> {
    fn drop(&mut self) {
        if let Some(rest) = self.batch.get(self.done..)
            && !rest.is_empty()
        {
            (self.put_back)(rest);
        }
    }
}

/// How many ids or revisions handled during an outage one call tells the
/// store, once it answers again.
const TELL_AT_ONCE: usize = 16;

impl<S: IdempotencyStore> FailOpen<S> {
    /// Tells the store, now answering, some of the ids handled while it was
    /// not (those left, with the next calls); stops at a failure. Ids
    /// handled longer ago than the memory store's retention are let go:
    /// Kustomer's retries of them are over.
    async fn tell_ids(&self) -> Result<(), StoreError> {
        let batch: Vec<(Instant, CompactString)> = {
            let mut untold = self.untold_ids();
            let retention = self.memory.retention();
            while untold
                .front()
                .is_some_and(|(at, _)| at.elapsed() >= retention)
            {
                untold.pop_front();
            }
            let n = untold.len().min(TELL_AT_ONCE);
            untold.drain(..n).collect()
        };
        // What is not told goes back in front, oldest first, for the next
        // call (within the bound: ids handled meanwhile took their place):
        // at a failure, or if this future is dropped on the way (a
        // caller's time limit).
        let mut telling = Telling {
            batch,
            done: 0,
            put_back: |rest: &[(Instant, CompactString)]| {
                let mut untold = self.untold_ids();
                for entry in rest.iter().rev() {
                    untold.push_front(entry.clone());
                }
                while untold.len() > self.untold_limit() {
                    untold.pop_front();
                    self.let_go();
                }
            },
        };
        while let Some((_, id)) = telling.batch.get(telling.done).cloned() {
            if let Err(e) = self.reach(self.store.complete(&id)).await {
                if matches!(e, StoreError::Unavailable(_)) {
                    self.failed(&e);
                }
                return Err(e);
            }
            telling.done += 1;
        }
        Ok(())
    }

    /// The store was found to answer again (by a probe such as
    /// [`RedisStore::ping`](crate::dedupe::RedisStore::ping)): it is taken
    /// to be up ([`is_down`](FailOpen::is_down) turns false), and is told
    /// every id handled in memory while it was not, rather than a few with
    /// each delivery. Without a probe, both wait for the next delivery's
    /// call to reach the store, so a process that gets no traffic after an
    /// outage would keep them to itself; call this every few seconds (as
    /// `kustomer-webhooks serve --redis-fail-open` does) and before the
    /// process stops. Stops at the first failure, keeping the rest for
    /// later; [`untold`](FailOpen::untold) says how many are left.
    pub async fn catch_up(&self) -> Result<(), StoreError> {
        while !self.untold_ids().is_empty() {
            self.tell_ids().await?;
        }
        self.answered();
        Ok(())
    }

    /// The store claimed `id` for the caller; memory may know it from an
    /// outage. What memory says wins, and the store is told. When memory
    /// does not know it, the claim is taken there too, until it is settled:
    /// should the store go away meanwhile, a retry that reaches this process
    /// (claimed in memory then) is not run alongside it.
    async fn reconcile(&self, id: &str) -> Result<Begin, StoreError> {
        match self.memory.begin(id).await? {
            Begin::New => Ok(Begin::New),
            Begin::Done => {
                // Handled during the outage: the store learns it now.
                let _ = self.reach(self.store.complete(id)).await;
                Ok(Begin::Done)
            }
            Begin::InProgress => {
                // Still being handled in memory: the claim is not the
                // caller's.
                let _ = self.reach(self.store.abandon(id)).await;
                Ok(Begin::InProgress)
            }
        }
    }
}

impl<S: IdempotencyStore> IdempotencyStore for FailOpen<S> {
    fn begin<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Begin> {
        Box::pin(async move {
            if self.skipping() {
                return self.begin_in_memory(id).await;
            }
            match self.reach(self.store.begin(id)).await {
                Ok(Begin::New) => {
                    self.answered();
                    // The claim is the caller's from here. Telling the ids
                    // handled during an outage (a round trip each) waits
                    // for its settling: were it done now, a caller that
                    // stops waiting (its time limit) would leave a claim
                    // that no one settles, and retries refused until the
                    // in-progress timeout.
                    self.reconcile(id).await
                }
                Ok(begin) => {
                    self.answered();
                    let _ = self.tell_ids().await;
                    Ok(begin)
                }
                Err(e @ StoreError::Unavailable(_)) => {
                    self.failed(&e);
                    self.begin_in_memory(id).await
                }
                Err(e) => Err(e),
            }
        })
    }

    fn complete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if self.take_in_memory(id) {
                self.memory.complete(id).await?;
                // Other replicas learn it too, if the store answers by now,
                // or once it does.
                if self.skipping() {
                    self.untold_id(id);
                } else {
                    match self.reach(self.store.complete(id)).await {
                        Ok(()) => self.answered(),
                        Err(e @ StoreError::Unavailable(_)) => {
                            self.failed(&e);
                            self.untold_id(id);
                        }
                        Err(_) => {}
                    }
                }
                return Ok(());
            }
            match self.reach(self.store.complete(id)).await {
                Err(e @ StoreError::Unavailable(_)) => {
                    // Claimed in the store, which went away since: this
                    // process remembers that it was handled, and tells the
                    // store once it answers.
                    self.failed(&e);
                    self.untold_id(id);
                    self.memory.complete(id).await
                }
                Ok(()) => {
                    // The store has it, and memory remembers it too: a retry
                    // that reaches this process while the store is down is
                    // still a duplicate.
                    self.memory.complete(id).await?;
                    self.answered();
                    // Settled: a few ids handled during an outage now.
                    let _ = self.tell_ids().await;
                    Ok(())
                }
                Err(e) => {
                    // Memory's claim beside the store's ends.
                    self.memory.abandon(id).await?;
                    Err(e)
                }
            }
        })
    }

    fn abandon<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if self.take_in_memory(id) {
                return self.memory.abandon(id).await;
            }
            // Memory's claim beside the store's ends too.
            self.memory.abandon(id).await?;
            match self.reach(self.store.abandon(id)).await {
                // The claim ends by itself after the store's in-progress
                // timeout.
                Err(e @ StoreError::Unavailable(_)) => {
                    self.failed(&e);
                    Ok(())
                }
                Ok(()) => {
                    self.answered();
                    // Given up: a few ids handled during an outage now.
                    let _ = self.tell_ids().await;
                    Ok(())
                }
                other => other,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::dedupe::check_store;

    /// A store that can be made unavailable (or failing), counting the
    /// calls that reach it.
    #[derive(Default)]
    struct Switch {
        inner: MemoryStore,
        revisions: OrderingGuard,
        down: AtomicBool,
        broken: AtomicBool,
        /// Its `complete` and `record_revision` never answer.
        silent: AtomicBool,
        calls: AtomicUsize,
    }

    impl Switch {
        fn refuse(&self) -> Option<StoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.broken.load(Ordering::SeqCst) {
                Some(StoreError::failed("refused"))
            } else if self.down.load(Ordering::SeqCst) {
                Some(StoreError::unavailable("connection refused"))
            } else {
                None
            }
        }
    }

    impl IdempotencyStore for Switch {
        fn begin<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Begin> {
            match self.refuse() {
                Some(e) => Box::pin(async move { Err(e) }),
                None => self.inner.begin(id),
            }
        }
        fn complete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
            if self.silent.load(Ordering::SeqCst) {
                return Box::pin(std::future::pending());
            }
            match self.refuse() {
                Some(e) => Box::pin(async move { Err(e) }),
                None => self.inner.complete(id),
            }
        }
        fn abandon<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
            match self.refuse() {
                Some(e) => Box::pin(async move { Err(e) }),
                None => self.inner.abandon(id),
            }
        }
    }

    impl RevisionStore for Switch {
        fn last_revision<'a>(&'a self, resource_id: &'a str) -> StoreFuture<'a, Option<i64>> {
            match self.refuse() {
                Some(e) => Box::pin(async move { Err(e) }),
                None => self.revisions.last_revision(resource_id),
            }
        }
        fn record_revision<'a>(&'a self, resource_id: &'a str, rev: i64) -> StoreFuture<'a, ()> {
            if self.silent.load(Ordering::SeqCst) {
                return Box::pin(std::future::pending());
            }
            match self.refuse() {
                Some(e) => Box::pin(async move { Err(e) }),
                None => self.revisions.record_revision(resource_id, rev),
            }
        }
        fn take_turn<'a>(&'a self, _: &'a str, _: Duration) -> StoreFuture<'a, SharedTurn> {
            match self.refuse() {
                Some(e) => Box::pin(async move { Err(e) }),
                None => Box::pin(async { Ok(SharedTurn::Taken("turn:1".to_owned())) }),
            }
        }
        fn give_turn<'a>(&'a self, _: &'a str, _: &'a str) -> StoreFuture<'a, ()> {
            match self.refuse() {
                Some(e) => Box::pin(async move { Err(e) }),
                None => Box::pin(async { Ok(()) }),
            }
        }
    }

    #[tokio::test]
    async fn a_turn_is_the_stores_while_it_answers_and_the_processs_own_while_it_is_down() {
        let store = FailOpen::new(Switch::default());
        let hold = Duration::from_secs(30);
        assert_eq!(
            store.take_turn("r", hold).await.unwrap(),
            SharedTurn::Taken("turn:1".to_owned())
        );
        store.give_turn("r", "turn:1").await.unwrap();
        down(&store, true);
        // Out of reach: the turn in the process only, and giving one back
        // is no error (it ends with its hold).
        assert_eq!(
            store.take_turn("r", hold).await.unwrap(),
            SharedTurn::InProcess
        );
        store.give_turn("r", "turn:1").await.unwrap();
        // While it is skipped, not even asked.
        let calls = store.store().calls.load(Ordering::SeqCst);
        assert_eq!(
            store.take_turn("r", hold).await.unwrap(),
            SharedTurn::InProcess
        );
        assert_eq!(store.store().calls.load(Ordering::SeqCst), calls);
        // Back: the store's turn again.
        down(&store, false);
        forget_the_failure(&store);
        assert!(matches!(
            store.take_turn("r", hold).await.unwrap(),
            SharedTurn::Taken(_)
        ));
        // A store that fails (not out of reach) is an error.
        store.store().broken.store(true, Ordering::SeqCst);
        assert!(store.take_turn("r", hold).await.is_err());
    }

    fn down(store: &FailOpen<Switch>, down: bool) {
        store.store().down.store(down, Ordering::SeqCst);
    }

    /// Lets [`FAIL_OPEN_RETRY_AFTER`] pass, so the store is asked again.
    fn forget_the_failure(store: &FailOpen<Switch>) {
        if let Some(at) = store.last_failure.lock().unwrap().as_mut() {
            *at -= FAIL_OPEN_RETRY_AFTER;
        }
    }

    #[tokio::test]
    async fn keeps_the_store_contract_up_and_down() {
        let store = FailOpen::new(Switch::default());
        check_store(&store).await.unwrap();
        assert_eq!(store.claimed_in_memory(), 0);
        down(&store, true);
        check_store(&store).await.unwrap();
        assert!(store.is_down());
        assert!(store.claimed_in_memory() > 0);
    }

    #[tokio::test]
    async fn while_the_store_is_down_ids_are_claimed_and_remembered_in_memory() {
        let store = FailOpen::new(Switch::default());
        down(&store, true);
        assert_eq!(store.begin("a").await.unwrap(), Begin::New);
        assert_eq!(store.begin("a").await.unwrap(), Begin::InProgress);
        store.complete("a").await.unwrap();
        assert_eq!(store.begin("a").await.unwrap(), Begin::Done);
        // A failed handler's claim is given up in memory.
        assert_eq!(store.begin("b").await.unwrap(), Begin::New);
        store.abandon("b").await.unwrap();
        assert_eq!(store.begin("b").await.unwrap(), Begin::New);
        assert_eq!(store.claimed_in_memory(), 3);
        // The shared store was asked once, then left alone for a while.
        assert_eq!(store.store().calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_id_claimed_in_the_store_is_not_claimed_again_in_memory_when_it_goes_away() {
        let store = FailOpen::new(Switch::default());
        assert_eq!(store.begin("a").await.unwrap(), Begin::New);
        // The store goes away while `a` is handled: a retry reaching this
        // process is in progress, not run alongside it.
        down(&store, true);
        assert_eq!(store.begin("a").await.unwrap(), Begin::InProgress);
        // Handled: memory remembers it, so a retry is a duplicate.
        store.complete("a").await.unwrap();
        assert_eq!(store.begin("a").await.unwrap(), Begin::Done);
        // Given up while the store is away: a retry runs it again.
        down(&store, false);
        forget_the_failure(&store);
        assert_eq!(store.begin("b").await.unwrap(), Begin::New);
        down(&store, true);
        assert_eq!(store.begin("b").await.unwrap(), Begin::InProgress);
        store.abandon("b").await.unwrap();
        assert_eq!(store.begin("b").await.unwrap(), Begin::New);
        // Handled while the store answers: memory remembers it too, so a
        // retry during a later outage is a duplicate, not run again.
        down(&store, false);
        forget_the_failure(&store);
        assert_eq!(store.begin("c").await.unwrap(), Begin::New);
        store.complete("c").await.unwrap();
        assert_eq!(store.begin("c").await.unwrap(), Begin::Done);
        assert_eq!(store.memory.begin("c").await.unwrap(), Begin::Done);
        down(&store, true);
        assert_eq!(store.begin("c").await.unwrap(), Begin::Done);
    }

    #[tokio::test]
    async fn ids_handled_during_an_outage_are_told_to_the_store_once_it_answers() {
        let store = FailOpen::new(Switch::default());
        // Claimed in the store, handled once it went away.
        assert_eq!(store.begin("claimed").await.unwrap(), Begin::New);
        down(&store, true);
        store.complete("claimed").await.unwrap();
        // Claimed and handled in memory.
        for id in ["x", "y"] {
            assert_eq!(store.begin(id).await.unwrap(), Begin::New);
            store.complete(id).await.unwrap();
        }
        // Given up: nothing to tell.
        assert_eq!(store.begin("failed").await.unwrap(), Begin::New);
        store.abandon("failed").await.unwrap();
        down(&store, false);
        forget_the_failure(&store);
        // The first settling that reaches the store tells it, so that a
        // retry reaching another replica (the store itself here) is a
        // duplicate.
        assert_eq!(store.begin("other").await.unwrap(), Begin::New);
        store.complete("other").await.unwrap();
        for id in ["claimed", "x", "y"] {
            assert_eq!(
                store.store().inner.begin(id).await.unwrap(),
                Begin::Done,
                "{id}"
            );
        }
        assert_eq!(
            store.store().inner.begin("failed").await.unwrap(),
            Begin::New
        );
    }

    #[tokio::test]
    async fn catch_up_tells_everything_at_once_and_takes_the_store_as_up() {
        let store = FailOpen::new(Switch::default());
        down(&store, true);
        let ids: Vec<String> = (0..40).map(|i| format!("id-{i}")).collect();
        for id in &ids {
            assert_eq!(store.begin(id).await.unwrap(), Begin::New);
            store.complete(id).await.unwrap();
        }
        store.record_revision("r", 7).await.unwrap();
        assert_eq!(store.untold(), 41);
        // Still down: nothing told, nothing lost.
        forget_the_failure(&store);
        assert!(store.catch_up().await.is_err());
        forget_the_failure(&store);
        assert!(store.catch_up_revisions().await.is_err());
        assert_eq!(store.untold(), 41);
        assert!(store.is_down());
        // Back, with no delivery to reach it: a probe's catch-up tells all
        // (more than one call's batch), and the store is up again.
        down(&store, false);
        forget_the_failure(&store);
        store.catch_up().await.unwrap();
        store.catch_up_revisions().await.unwrap();
        assert_eq!(store.untold(), 0);
        assert!(!store.is_down());
        for id in &ids {
            assert!(told(&store, id).await, "{id}");
        }
        assert_eq!(
            store.store().revisions.last_revision("r").await.unwrap(),
            Some(7)
        );
    }

    /// A telling stopped half way (its caller's time limit) keeps what it
    /// had not told yet.
    #[tokio::test]
    async fn a_catch_up_dropped_half_way_keeps_what_it_had_not_told() {
        let store = FailOpen::new(Switch::default());
        down(&store, true);
        for i in 0..20 {
            let id = format!("id-{i}");
            assert_eq!(store.begin(&id).await.unwrap(), Begin::New);
            store.complete(&id).await.unwrap();
        }
        store.record_revision("r", 3).await.unwrap();
        down(&store, false);
        forget_the_failure(&store);
        store.store().silent.store(true, Ordering::SeqCst);
        let ids = tokio::time::timeout(Duration::from_millis(50), store.catch_up()).await;
        let revisions =
            tokio::time::timeout(Duration::from_millis(50), store.catch_up_revisions()).await;
        assert!(ids.is_err() && revisions.is_err());
        assert_eq!(store.untold(), 21);
        store.store().silent.store(false, Ordering::SeqCst);
        store.catch_up().await.unwrap();
        store.catch_up_revisions().await.unwrap();
        assert_eq!(store.untold(), 0);
        for i in 0..20 {
            assert!(told(&store, &format!("id-{i}")).await);
        }
    }

    /// A claim the store granted is the caller's at once: the ids left to
    /// tell wait for its settling, so that a caller that stops waiting for
    /// `begin` (its time limit) never leaves a claim no one settles.
    /// A probe that found the store down says so before any call: down,
    /// and the store not asked; a failure of another kind is not taken
    /// for an outage.
    #[tokio::test]
    async fn a_store_found_down_by_a_probe_is_down_before_any_call() {
        let store = FailOpen::new(Switch::default());
        store.found_down(&StoreError::failed("wrong password"));
        assert!(!store.is_down());
        store.found_down(&StoreError::unavailable("connection refused"));
        assert!(store.is_down());
        assert_eq!(store.begin("a").await.unwrap(), Begin::New);
        assert_eq!(store.store().calls.load(Ordering::SeqCst), 0);
        assert_eq!(store.claimed_in_memory(), 1);
        // Once a probe finds it answering, it is up again.
        forget_the_failure(&store);
        store.catch_up().await.unwrap();
        assert!(!store.is_down());
    }

    #[tokio::test]
    async fn a_granted_claim_is_returned_before_anything_is_told() {
        let store = FailOpen::new(Switch::default());
        down(&store, true);
        for id in ["a", "b", "c"] {
            assert_eq!(store.begin(id).await.unwrap(), Begin::New);
            store.complete(id).await.unwrap();
        }
        down(&store, false);
        forget_the_failure(&store);
        // Telling would wait for ever on this store's `complete`.
        store.store().silent.store(true, Ordering::SeqCst);
        let begin = tokio::time::timeout(Duration::from_secs(5), store.begin("new")).await;
        assert_eq!(
            begin.expect("begin waited on the telling").unwrap(),
            Begin::New
        );
        assert_eq!(store.untold(), 3);
        // Given up, it tells them.
        store.store().silent.store(false, Ordering::SeqCst);
        store.abandon("new").await.unwrap();
        assert_eq!(store.untold(), 0);
        for id in ["a", "b", "c"] {
            assert!(told(&store, id).await, "{id}");
        }
        assert_eq!(store.store().inner.begin("new").await.unwrap(), Begin::New);
    }

    /// A store failing open to a memory store that keeps `max_entries` ids.
    fn keeping(max_entries: u64) -> FailOpen<Switch> {
        let memory = MemoryStore::builder().max_entries(max_entries).build();
        FailOpen::with_memory(Switch::default(), memory)
    }

    /// Whether the shared store (not memory) knows `id` as done.
    async fn told(store: &FailOpen<Switch>, id: &str) -> bool {
        store.store().inner.begin(id).await.unwrap() == Begin::Done
    }

    #[tokio::test]
    async fn what_an_outage_leaves_to_tell_is_bounded_by_the_memory_store_s_size() {
        let store = keeping(4);
        down(&store, true);
        let ids: Vec<String> = (0..10).map(|i| format!("id-{i}")).collect();
        for id in &ids {
            assert_eq!(store.begin(id).await.unwrap(), Begin::New);
            store.complete(id).await.unwrap();
        }
        assert_eq!(store.untold_ids().len(), 4);
        assert_eq!(store.untold_let_go.load(Ordering::SeqCst), 6);
        down(&store, false);
        forget_the_failure(&store);
        assert_eq!(store.begin("after").await.unwrap(), Begin::New);
        assert_eq!(store.untold_let_go.load(Ordering::SeqCst), 0, "reported");
        store.abandon("after").await.unwrap();
        // The newest four are told; the oldest six were let go.
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(told(&store, id).await, i >= 6, "{id}");
        }
    }

    #[tokio::test]
    async fn ids_handled_longer_ago_than_the_retention_are_not_told() {
        let store = FailOpen::new(Switch::default());
        down(&store, true);
        for id in ["old", "recent"] {
            assert_eq!(store.begin(id).await.unwrap(), Begin::New);
            store.complete(id).await.unwrap();
        }
        // "old" was handled a retention ago: Kustomer's retries are over.
        let retention = store.memory.retention();
        store.untold_ids()[0].0 -= retention;
        down(&store, false);
        forget_the_failure(&store);
        assert_eq!(store.begin("after").await.unwrap(), Begin::New);
        store.complete("after").await.unwrap();
        assert!(store.untold_ids().is_empty());
        assert!(told(&store, "recent").await);
        assert!(!told(&store, "old").await);
    }

    #[tokio::test]
    async fn ids_not_told_for_a_failure_are_kept_for_the_next_call() {
        let store = FailOpen::new(Switch::default());
        down(&store, true);
        for id in ["a", "b", "c"] {
            assert_eq!(store.begin(id).await.unwrap(), Begin::New);
            store.complete(id).await.unwrap();
        }
        // The store answers the claim, then is gone again for the telling.
        store.store().broken.store(true, Ordering::SeqCst);
        down(&store, false);
        forget_the_failure(&store);
        assert!(store.tell_ids().await.is_err());
        let left: Vec<String> = store
            .untold_ids()
            .iter()
            .map(|(_, id)| id.to_string())
            .collect();
        assert_eq!(left, ["a", "b", "c"]);
    }

    #[tokio::test]
    async fn revisions_left_to_tell_are_bounded_too() {
        let store = keeping(2);
        down(&store, true);
        for resource in ["r1", "r2", "r3", "r4"] {
            store.record_revision(resource, 7).await.unwrap();
        }
        // A resource already kept is updated, whatever the bound.
        store.record_revision("r1", 9).await.unwrap();
        assert_eq!(store.untold_let_go.load(Ordering::SeqCst), 2);
        down(&store, false);
        forget_the_failure(&store);
        assert_eq!(store.last_revision("other").await.unwrap(), None);
        let shared = &store.store().revisions;
        assert_eq!(shared.last_revision("r1").await.unwrap(), Some(9));
        assert_eq!(shared.last_revision("r2").await.unwrap(), Some(7));
        assert_eq!(shared.last_revision("r3").await.unwrap(), None);
        // This process still knows it, and says so.
        assert_eq!(store.last_revision("r3").await.unwrap(), Some(7));
    }

    #[tokio::test]
    async fn once_back_the_store_learns_what_was_handled_in_memory() {
        let store = FailOpen::new(Switch::default());
        down(&store, true);
        assert_eq!(store.begin("during").await.unwrap(), Begin::New);
        // Back before the handler ends: its completion reaches the store.
        down(&store, false);
        forget_the_failure(&store);
        store.complete("during").await.unwrap();
        assert!(!store.is_down());
        assert_eq!(
            store.store().inner.begin("during").await.unwrap(),
            Begin::Done
        );

        // Handled while down, and the store still down at its completion.
        down(&store, true);
        forget_the_failure(&store);
        assert_eq!(store.begin("missed").await.unwrap(), Begin::New);
        store.complete("missed").await.unwrap();
        // Back: a retry is a duplicate, and the store learns it.
        down(&store, false);
        forget_the_failure(&store);
        assert_eq!(store.begin("missed").await.unwrap(), Begin::Done);
        assert_eq!(
            store.store().inner.begin("missed").await.unwrap(),
            Begin::Done
        );
        // An id memory does not know is the store's to claim, and only once.
        assert_eq!(store.begin("after").await.unwrap(), Begin::New);
        assert_eq!(store.begin("after").await.unwrap(), Begin::InProgress);
        store.complete("after").await.unwrap();
        assert_eq!(
            store.store().inner.begin("after").await.unwrap(),
            Begin::Done
        );
    }

    #[tokio::test]
    async fn a_claim_still_held_in_memory_is_not_taken_again_once_the_store_is_back() {
        let store = FailOpen::new(Switch::default());
        down(&store, true);
        assert_eq!(store.begin("slow").await.unwrap(), Begin::New);
        down(&store, false);
        forget_the_failure(&store);
        // A retry while the first delivery's handler still runs.
        assert_eq!(store.begin("slow").await.unwrap(), Begin::InProgress);
        // The store's claim was given back: once the handler fails, a retry
        // runs it again.
        store.abandon("slow").await.unwrap();
        assert_eq!(store.begin("slow").await.unwrap(), Begin::New);
    }

    #[tokio::test]
    async fn a_store_that_went_away_after_the_claim_is_remembered_in_memory() {
        let store = FailOpen::new(Switch::default());
        assert_eq!(store.begin("c").await.unwrap(), Begin::New);
        down(&store, true);
        store.complete("c").await.unwrap();
        assert!(store.is_down());
        assert_eq!(store.begin("c").await.unwrap(), Begin::Done);
    }

    /// A store that never answers.
    struct Silent;

    impl IdempotencyStore for Silent {
        fn begin<'a>(&'a self, _: &'a str) -> StoreFuture<'a, Begin> {
            Box::pin(std::future::pending())
        }
        fn complete<'a>(&'a self, _: &'a str) -> StoreFuture<'a, ()> {
            Box::pin(std::future::pending())
        }
        fn abandon<'a>(&'a self, _: &'a str) -> StoreFuture<'a, ()> {
            Box::pin(std::future::pending())
        }
    }

    #[tokio::test]
    async fn a_store_that_does_not_answer_in_time_is_unavailable() {
        let store = FailOpen::new(Silent).with_timeout(Duration::from_millis(20));
        assert_eq!(store.begin("e").await.unwrap(), Begin::New);
        assert!(store.is_down());
        store.complete("e").await.unwrap();
        assert_eq!(store.begin("e").await.unwrap(), Begin::Done);
        check_store(&store).await.unwrap();
    }

    #[tokio::test]
    async fn a_store_that_fails_is_not_masked() {
        let store = FailOpen::new(Switch::default());
        store.store().broken.store(true, Ordering::SeqCst);
        let err = store.begin("d").await.unwrap_err();
        assert!(matches!(err, StoreError::Failed(_)), "{err:?}");
        assert!(!store.is_down());
        assert_eq!(store.claimed_in_memory(), 0);
    }
}
