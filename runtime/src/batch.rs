//! Deliveries that arrive together, handled one after another by one task:
//! [`Batcher`], for a service on any web framework (the axum router,
//! `axum::router` with the feature `axum`, has one built in).
//!
//! Under load, a server reads many requests between two deliveries: the
//! HTTP code of every connection runs in between, and by the time the next
//! delivery is verified and parsed, the processor's caches hold that code
//! instead of the receiver's. So a delivery whose body has been read is
//! queued; the delivery that finds the queue empty leads: it lets every other
//! ready task run once (so that the deliveries whose bodies have arrived join
//! the queue), then takes the whole queue and polls each delivery in turn,
//! with the receiver's code and data warm from the one before. A delivery that
//! finishes at once (the in-memory store, a handler that does not wait on
//! I/O) is answered from there; one that waits (a shared store, a handler's
//! I/O) is handed to the runtime as a task of its own, so no delivery waits
//! for another's I/O. A delivery alone waits one turn of the scheduler.
//! The queue holds what each delivery needs (the [`Delivery`] and the channel
//! its answer goes back on); the leader boxes each delivery's run itself, so
//! that a run that finishes at once is freed by the thread that allocated it.
//!
//! Every delivery in the queue is handled, whatever happens to the request
//! that leads it: a leader whose client hangs up before it took the queue
//! hands every queued delivery to the runtime.
//!
//! Under the receiver benchmark's load (BENCHMARKS.md in the repository), the
//! axum router's batches served up to a sixth more deliveries per second than
//! calling [`Receiver::receive`] for each request when measured, and no fewer
//! on the machine of the latest runs. What they cost: an `async`
//! handler that blocks its thread (which no `async` handler should) holds up
//! the deliveries after it in its batch until it first waits, and handlers run
//! in whichever task leads the batch, so a value a middleware keeps in a tokio
//! task-local for the request does not reach the handler (each delivery's
//! `tracing` span is still a child of the span its request was in).
//!
//! A handler of any framework reads the body (under the receiver's
//! [limit](Receiver::limit)), then hands the delivery over and answers with
//! the [`Reply`]:
//!
//! ```
//! use kustomer_webhooks::batch::{Batcher, OwnedDelivery};
//! use kustomer_webhooks::receiver::Receiver;
//! use kustomer_webhooks::verify::{Verifier, sign};
//! use kustomer_webhooks::{Dispatcher, TeamCreate};
//!
//! async fn on_team(event: TeamCreate) {
//!     println!("team {:?} created", event.data.attributes.name);
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dispatcher = Dispatcher::builder().handler(on_team).build()?;
//! let batcher = Batcher::new(Receiver::new(dispatcher, Verifier::new("token")));
//!
//! // In the framework's handler, with the request's method, headers and body:
//! let body = br#"{"id": "1", "name": "kustomer.team.create", "data": {"type": "team", "attributes": {"name": "Der Prozess"}}}"#.to_vec();
//! let delivery = OwnedDelivery::new("POST", body.clone())
//!     .with_header("Content-Type", "application/json")
//!     .with_header("X-Kustomer-Webhook-Signature", sign(b"token", &body));
//! let reply = batcher.receive(delivery).await;
//! // Answer `reply.status`, with `reply.headers()` and `reply.body()`.
//! assert_eq!((reply.status, reply.outcome), (200, "handled"));
//! # Ok(())
//! # }
//! ```
//!
//! The whole of an adapter, as the axum router does it (`runtime/src/axum.rs`
//! in the repository):
//!
//! 1. Before reading the body, [`Receiver::screen`] with the method and the
//!    `Content-Type` (405 or 415), then a `Content-Length` over
//!    [`Receiver::limit`] turned away with [`Receiver::reject`]`(413, …)`.
//!    A body refused this way is best still read and dropped when it is
//!    small (the client then gets the answer rather than a reset
//!    connection), unless the request waits for `100 Continue`.
//! 2. The body read under [`Receiver::limit`] (413 past it, also for a
//!    chunked body) and within [`Receiver::read_timeout`]
//!    (`reject(408, …)` past it; `reject(400, …)` for a body that could not
//!    be read).
//! 3. [`Batcher::receive`], and the [`Reply`] answered: its `status`, its
//!    [`headers`](Reply::headers) (the content type, `Allow: POST` with a
//!    405, `Accept-Encoding: identity` with a 415) and its
//!    [`body`](Reply::body).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;

use tokio::sync::oneshot;
use tracing::Instrument;

use crate::Events;
use crate::receiver::{Receiver, Reply, Request};

/// A delivery whose body has been read, owned so that whichever task leads
/// its batch can run it: what a [`Batcher`] takes. [`OwnedDelivery`] is one;
/// a framework's own request head and body can be another.
pub trait Delivery: Send + Sync + 'static {
    /// The HTTP method.
    fn method(&self) -> &str;
    /// A header's value by its name, which the receiver always asks for in
    /// lowercase (the first value, if the header came more than once).
    fn header(&self, name: &str) -> Option<&[u8]>;
    /// The body, exactly as received.
    fn body(&self) -> &[u8];
}

/// A [`Delivery`] built from any framework's request: its method, the
/// headers the receiver reads (the content type, encoding and transfer
/// coding, the signature, the event name, the signature
/// `kustomer-webhooks send` adds, and any custom header the
/// [`Verifier`](crate::verify::Verifier) checks, as
/// [`Request::header`](crate::receiver::Request::header) lists them: passing
/// every header of the request is simplest) and its body (a `Vec<u8>`, or a
/// framework's own buffer such as `bytes::Bytes`, without a copy).
#[derive(Clone)]
pub struct OwnedDelivery<B = Vec<u8>> {
    method: String,
    headers: Vec<(String, Vec<u8>)>,
    body: B,
}

impl<B: AsRef<[u8]>> OwnedDelivery<B> {
    /// A delivery with no headers yet.
    pub fn new(method: impl Into<String>, body: B) -> Self {
        OwnedDelivery {
            method: method.into(),
            headers: Vec::new(),
            body,
        }
    }

    /// Adds a header (its name in any case: [`Delivery::header`] finds it
    /// by its name in any case).
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl AsRef<[u8]>) -> Self {
        let mut name = name.into();
        name.make_ascii_lowercase();
        self.headers.push((name, value.as_ref().to_vec()));
        self
    }
}

/// The method and header names only: header values may be secrets.
impl<B> std::fmt::Debug for OwnedDelivery<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("OwnedDelivery")
            .field("method", &self.method)
            .field("headers", &names)
            .finish_non_exhaustive()
    }
}

impl<B: AsRef<[u8]> + Send + Sync + 'static> Delivery for OwnedDelivery<B> {
    fn method(&self) -> &str {
        &self.method
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_slice())
    }

    fn body(&self) -> &[u8] {
        self.body.as_ref()
    }
}

/// A delivery whose body has been read, waiting for its turn.
struct Queued<D> {
    delivery: D,
    answer: oneshot::Sender<Reply>,
    /// The span its request was in (a tower layer's, say): the delivery's
    /// own span is its child, whichever task runs it.
    span: tracing::Span,
}

/// One delivery's whole run: the receiver's work, then its reply sent to the
/// request waiting for it.
type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A [`Receiver`] that handles the deliveries that arrive together in
/// batches (see the [module](self) docs). Share it between requests (in an
/// `Arc`, or your framework's shared state).
pub struct Batcher<S: Events = crate::AnyEvent, D: Delivery = OwnedDelivery> {
    receiver: Arc<Receiver<S>>,
    queue: Mutex<Vec<Queued<D>>>,
    /// Emptied queues' buffers, for the next leaders to leave in their
    /// place: a queue that started from nothing each time would grow (and
    /// copy its deliveries) again for every batch. More than one, as a
    /// leader can take the queue while another still runs its batch.
    spares: Mutex<Vec<Vec<Queued<D>>>>,
}

impl<S: Events, D: Delivery> std::fmt::Debug for Batcher<S, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("receiver", &self.receiver)
            .field("queued", &self.queue().len())
            .finish_non_exhaustive()
    }
}

/// The most buffers kept as spares.
const SPARES: usize = 4;
/// The largest buffer kept as a spare (a burst's is let go).
const SPARE_CAPACITY: usize = 64;

impl<S: Events, D: Delivery> Batcher<S, D> {
    /// Batches for `receiver`: a [`Receiver`], or an `Arc` of one that
    /// other code keeps too (sharing its idempotency store, ordering and
    /// counters).
    pub fn new(receiver: impl Into<Arc<Receiver<S>>>) -> Self {
        Batcher {
            receiver: receiver.into(),
            queue: Mutex::new(Vec::new()),
            spares: Mutex::new(Vec::new()),
        }
    }

    /// The receiver (for its [limit](Receiver::limit) and
    /// [counters](Receiver::counters), or to [screen](Receiver::screen) a
    /// request before its body is read).
    pub fn receiver(&self) -> &Receiver<S> {
        &self.receiver
    }

    fn queue(&self) -> MutexGuard<'_, Vec<Queued<D>>> {
        // Nothing panics while the lock is held (a push or a take).
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn spares(&self) -> MutexGuard<'_, Vec<Vec<Queued<D>>>> {
        self.spares.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps a leader's emptied queue for a next leader.
    fn give_back(&self, emptied: Vec<Queued<D>>) {
        debug_assert!(emptied.is_empty());
        if emptied.capacity() <= SPARE_CAPACITY {
            let mut spares = self.spares();
            if spares.len() < SPARES {
                spares.push(emptied);
            }
        }
    }

    /// Handles one delivery whose body has been read, in a batch with the
    /// others that arrive with it: the [`Reply`] to answer it with, counted
    /// like [`Receiver::receive`]'s. Call it within a tokio runtime.
    ///
    /// The delivery is queued at once, so that the future returned does not
    /// hold it (an `async fn` would keep it, as its argument, until it
    /// finished); a future dropped before it finished does not drop its
    /// delivery, or the others queued with it: they are still handled.
    ///
    /// Await the future at once. The delivery that finds the queue empty
    /// leads its batch, from its future's first poll: the deliveries queued
    /// after it wait for that poll (or for the future to be dropped), so
    /// a future kept while something else is awaited first (a permit, say:
    /// take it before calling `receive`) holds up the others.
    pub fn receive(&self, delivery: D) -> impl Future<Output = Reply> + Send + '_ {
        let (answer, reply) = oneshot::channel();
        let leads = {
            let mut queue = self.queue();
            queue.push(Queued {
                delivery,
                answer,
                span: tracing::Span::current(),
            });
            queue.len() == 1
        };
        // Made only by the leader: a `Lead` dropped hands the queue on.
        let mut lead = if leads { Some(Lead(Some(self))) } else { None };
        async move {
            if let Some(lead) = &mut lead {
                tokio::task::yield_now().await;
                let emptied = run(&self.receiver, lead.take()).await;
                self.give_back(emptied);
            }
            match reply.await {
                Ok(reply) => reply,
                // Only a panic outside the handler (whose panics the
                // dispatcher catches) drops a delivery unanswered.
                Err(_) => self
                    .receiver
                    .reject(500, "the delivery stopped before it was answered"),
            }
        }
    }
}

/// The leader of the queue until it takes it: dropped before that (its
/// client hung up while it waited for its turn), it hands every queued
/// delivery to the runtime, so that none is left without a leader.
struct Lead<'a, S: Events, D: Delivery>(Option<&'a Batcher<S, D>>);

impl<S: Events, D: Delivery> Lead<'_, S, D> {
    /// The queued deliveries, now this leader's to run.
    fn take(&mut self) -> Vec<Queued<D>> {
        self.0
            .take()
            .map(|batch| {
                let spare = batch.spares().pop().unwrap_or_default();
                std::mem::replace(&mut *batch.queue(), spare)
            })
            .unwrap_or_default()
    }
}

impl<S: Events, D: Delivery> Drop for Lead<'_, S, D> {
    fn drop(&mut self) {
        let Some(batch) = self.0 else { return };
        let jobs = self.take();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                for queued in jobs {
                    runtime.spawn(job(&batch.receiver, queued));
                }
            }
            Err(_) => {
                if !jobs.is_empty() {
                    tracing::warn!(
                        deliveries = jobs.len(),
                        "deliveries dropped unhandled: no runtime to run them on",
                    );
                }
            }
        }
    }
}

/// One delivery's whole run, boxed by the task that runs it first (so that,
/// once done, it is freed where it was allocated).
fn job<S: Events, D: Delivery>(receiver: &Arc<Receiver<S>>, queued: Queued<D>) -> Job {
    let receiver = Arc::clone(receiver);
    let Queued {
        delivery,
        answer,
        span,
    } = queued;
    Box::pin(
        async move {
            let reply = receiver
                .receive(Request {
                    method: delivery.method(),
                    header: |name| delivery.header(name),
                    body: delivery.body(),
                })
                .await;
            // The request may be gone (its client hung up): the delivery was
            // handled all the same.
            let _ = answer.send(reply);
        }
        .instrument(span),
    )
}

/// Polls every job once, in turn, with the caller's context; a job that is
/// not finished then goes on as a task of its own. A job that panics (not a
/// handler: the dispatcher catches those) is dropped, and its request
/// answered 500. Gives back the emptied queue.
fn run<S: Events, D: Delivery>(
    receiver: &Arc<Receiver<S>>,
    queued: Vec<Queued<D>>,
) -> impl Future<Output = Vec<Queued<D>>> {
    let mut queued = Some(queued);
    std::future::poll_fn(move |cx| {
        let mut jobs = queued.take().unwrap_or_default();
        for queued in jobs.drain(..) {
            let mut job = job(receiver, queued);
            match catch_unwind(AssertUnwindSafe(|| job.as_mut().poll(cx))) {
                Ok(Poll::Ready(())) => {}
                Ok(Poll::Pending) => {
                    tokio::spawn(job);
                }
                Err(_) => {
                    tracing::error!("a delivery panicked outside its handler");
                }
            }
        }
        Poll::Ready(jobs)
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use kustomer_schema::SEED_SAMPLES;

    use super::*;
    use crate::verify::{Verifier, sign};
    use crate::{Dispatcher, State, TeamCreate, TeamUpdate};

    const TOKEN: &str = "batch-token";

    async fn on_create(_: TeamCreate, runs: State<Arc<AtomicUsize>>) {
        runs.fetch_add(1, Ordering::SeqCst);
    }

    async fn on_update(_: TeamUpdate, runs: State<Arc<AtomicUsize>>) {
        runs.fetch_add(1, Ordering::SeqCst);
    }

    fn batch(runs: &Arc<AtomicUsize>) -> Batcher {
        let dispatcher = Dispatcher::with_state(Arc::clone(runs))
            .handler(on_create)
            .handler(on_update)
            .build()
            .expect("two handlers build");
        Batcher::new(Receiver::new(dispatcher, Verifier::new(TOKEN)))
    }

    /// A delivery of `body` signed with `token`.
    fn signed(body: &[u8], token: &[u8]) -> OwnedDelivery {
        OwnedDelivery::new("POST", body.to_vec())
            .with_header("Content-Type", "application/json")
            .with_header("X-Kustomer-Webhook-Signature", sign(token, body))
    }

    /// The seed sample of `event`, signed with the batch's token.
    fn delivery(event: &str) -> OwnedDelivery {
        let body = SEED_SAMPLES
            .iter()
            .find(|(name, _)| *name == event)
            .expect("a seed sample")
            .1;
        signed(body.as_bytes(), TOKEN.as_bytes())
    }

    /// A team's creation and update, the two deliveries most tests queue.
    fn create_and_update() -> (OwnedDelivery, OwnedDelivery) {
        (
            delivery("kustomer.team.create"),
            delivery("kustomer.team.update"),
        )
    }

    /// Waits until handlers have run `n` times (some in tasks of their own).
    async fn until_run(runs: &AtomicUsize, n: usize) {
        in_time(async {
            while runs.load(Ordering::SeqCst) < n {
                tokio::task::yield_now().await;
            }
        })
        .await;
    }

    async fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
        let mut future = future;
        std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await
    }

    /// `future`'s output; a test that would otherwise wait forever fails.
    async fn in_time<F: Future>(future: F) -> F::Output {
        tokio::time::timeout(std::time::Duration::from_secs(10), future)
            .await
            .expect("answered in time")
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime builds")
    }

    #[test]
    fn deliveries_queued_together_are_each_answered() {
        runtime().block_on(async {
            let runs = Arc::new(AtomicUsize::new(0));
            let batch = batch(&runs);
            let (a, b) = create_and_update();
            let mut leader = std::pin::pin!(batch.receive(a));
            let mut follower = std::pin::pin!(batch.receive(b));
            // The leader waits for its turn; the follower joins its queue.
            assert!(poll_once(leader.as_mut()).await.is_pending());
            assert!(poll_once(follower.as_mut()).await.is_pending());
            assert_eq!(batch.queue().len(), 2);
            // The leader runs both; each request gets its own answer.
            let (a, b) = tokio::join!(leader, follower);
            assert_eq!(
                (a.status, a.outcome, a.event.as_deref()),
                (200, "handled", Some("kustomer.team.create"))
            );
            assert_eq!(
                (b.status, b.outcome, b.event.as_deref()),
                (200, "handled", Some("kustomer.team.update"))
            );
            assert_eq!(runs.load(Ordering::SeqCst), 2);
            assert!(batch.queue().is_empty());
        });
    }

    #[test]
    fn a_delivery_turned_away_is_answered_for_itself_within_its_batch() {
        runtime().block_on(async {
            let runs = Arc::new(AtomicUsize::new(0));
            let batch = batch(&runs);
            let (good, update) = create_and_update();
            let forged = signed(update.body(), b"another token");
            let not_json = signed(b"{", TOKEN.as_bytes());
            let (forged, good, not_json) = tokio::join!(
                batch.receive(forged),
                batch.receive(good),
                batch.receive(not_json)
            );
            assert_eq!(forged.status, 401);
            assert_eq!((good.status, good.outcome), (200, "handled"));
            assert_eq!(not_json.status, 400);
            assert_eq!(runs.load(Ordering::SeqCst), 1);
            let counters = batch.receiver().counters();
            assert_eq!(counters.rejected.load(Ordering::SeqCst), 2);
            assert_eq!(counters.accepted.load(Ordering::SeqCst), 1);
        });
    }

    #[test]
    fn an_owned_delivery_finds_headers_in_any_case_and_hides_their_values() {
        let delivery = OwnedDelivery::new("POST", b"{}".as_slice())
            .with_header("X-App-Secret", "s3cret")
            .with_header("x-app-secret", "second");
        assert_eq!(delivery.header("x-app-secret"), Some(b"s3cret".as_slice()));
        assert_eq!(delivery.header("X-APP-SECRET"), Some(b"s3cret".as_slice()));
        assert_eq!(delivery.header("content-type"), None);
        assert_eq!(
            (delivery.method(), delivery.body()),
            ("POST", b"{}".as_slice())
        );
        let debug = format!("{delivery:?}");
        assert!(debug.contains("x-app-secret"), "{debug}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("second"),
            "{debug}"
        );
        let debug = format!("{:?}", batch(&Arc::default()));
        assert!(debug.starts_with("Batcher { receiver: Receiver"), "{debug}");
        assert!(!debug.contains(TOKEN), "{debug}");
    }

    #[test]
    fn a_leader_dropped_before_its_turn_hands_the_queue_to_the_runtime() {
        runtime().block_on(async {
            let runs = Arc::new(AtomicUsize::new(0));
            let batch = batch(&runs);
            let (a, b) = create_and_update();
            let mut leader = Box::pin(batch.receive(a));
            let mut follower = Box::pin(batch.receive(b));
            assert!(poll_once(leader.as_mut()).await.is_pending());
            assert!(poll_once(follower.as_mut()).await.is_pending());
            // The leader's client hangs up before its turn came.
            drop(leader);
            assert!(batch.queue().is_empty(), "the queue went to the runtime");
            let reply = in_time(follower).await;
            assert_eq!((reply.status, reply.outcome), (200, "handled"));
            // The leader's own delivery was handled too.
            until_run(&runs, 2).await;
            // A delivery after it leads a queue of its own; Kustomer's retry
            // of the leader's event finds it done.
            let retry = delivery("kustomer.team.create");
            let reply = batch.receive(retry).await;
            assert_eq!((reply.status, reply.outcome), (200, "duplicate"));
            assert_eq!(runs.load(Ordering::SeqCst), 2);
        });
    }

    #[test]
    fn a_leader_dropped_before_it_was_ever_polled_hands_the_queue_on() {
        runtime().block_on(async {
            let runs = Arc::new(AtomicUsize::new(0));
            let batch = batch(&runs);
            let (a, b) = create_and_update();
            // Both are queued when their futures are made.
            let leader = batch.receive(a);
            let follower = batch.receive(b);
            assert_eq!(batch.queue().len(), 2);
            drop(leader);
            assert!(batch.queue().is_empty(), "the queue went to the runtime");
            let reply = in_time(follower).await;
            assert_eq!((reply.status, reply.outcome), (200, "handled"));
            until_run(&runs, 2).await;
        });
    }

    #[test]
    fn a_leader_leaves_its_emptied_queue_for_the_next() {
        runtime().block_on(async {
            let runs = Arc::new(AtomicUsize::new(0));
            let batch = batch(&runs);
            let (a, b) = create_and_update();
            let (a, b) = tokio::join!(batch.receive(a), batch.receive(b));
            assert_eq!((a.status, b.status), (200, 200));
            {
                let spares = batch.spares();
                assert_eq!(spares.len(), 1);
                assert!(spares[0].is_empty() && spares[0].capacity() >= 2);
            }
            // The next leader leaves it in the queue's place, for the
            // deliveries after it to queue into without growing a buffer.
            let c = delivery("kustomer.team.create");
            assert_eq!(batch.receive(c).await.outcome, "duplicate");
            assert!(batch.queue().is_empty() && batch.queue().capacity() >= 2);
            assert_eq!(batch.spares().len(), 1);
        });
    }

    #[test]
    fn a_delivery_that_waits_goes_on_as_a_task_of_its_own() {
        runtime().block_on(async {
            let release = Arc::new(tokio::sync::Notify::new());
            async fn on_create(_: TeamCreate, release: State<Arc<tokio::sync::Notify>>) {
                release.notified().await;
            }
            let dispatcher = Dispatcher::with_state(Arc::clone(&release))
                .handler(on_create)
                .build()
                .expect("a handler builds");
            let waiting = Batcher::new(Receiver::new(dispatcher, Verifier::new(TOKEN)));
            let (a, b) = create_and_update();
            let mut leader = Box::pin(waiting.receive(a));
            let mut follower = Box::pin(waiting.receive(b));
            assert!(poll_once(leader.as_mut()).await.is_pending());
            assert!(poll_once(follower.as_mut()).await.is_pending());
            // The leader's turn: its handler waits, so its delivery goes on
            // as a task, and the follower's (no handler for its event) is
            // answered without waiting for it.
            assert!(poll_once(leader.as_mut()).await.is_pending());
            assert!(waiting.queue().is_empty());
            let reply = in_time(follower).await;
            assert_eq!((reply.status, reply.outcome), (200, "no handler"));
            release.notify_one();
            let reply = in_time(leader).await;
            assert_eq!((reply.status, reply.outcome), (200, "handled"));
        });
    }
}
