//! Deliveries that arrive together, handled one after another by one task.
//!
//! Under load, the server reads many requests between two deliveries: the
//! HTTP code of every connection runs in between, and by the time the next
//! delivery is verified and parsed, the processor's caches hold that code
//! instead of the receiver's. So a delivery's body, once read, is queued;
//! the delivery that finds the queue empty leads: it lets every other ready
//! task run once (so that the deliveries whose bodies have arrived join the
//! queue), then takes the whole queue and polls each delivery in turn, with
//! the receiver's code and data warm from the one before. A delivery that
//! finishes at once (the in-memory store, a handler that does not wait on
//! I/O) is answered from there; one that waits (a shared store, a handler's
//! I/O) is handed to the runtime as a task of its own, so no delivery waits
//! for another's I/O. A delivery alone waits one turn of the scheduler.
//! The queue holds what each delivery needs (its head, body and the channel
//! its answer goes back on); the leader boxes each delivery's run itself, so
//! that a run that finishes at once is freed by the thread that allocated it.
//!
//! Every delivery in the queue is handled, whatever happens to the request
//! that leads it: a leader whose client hangs up before it took the queue
//! hands every queued delivery to the runtime.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;

use ::axum::body::Bytes;
use ::axum::http::HeaderValue;
use ::axum::http::request::Parts;
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::Events;
use crate::receiver::{Receiver, Reply, Request};

/// A delivery whose body has been read, waiting for its turn.
struct Queued {
    parts: Parts,
    body: Bytes,
    answer: oneshot::Sender<Reply>,
    /// The span its request was in (a tower layer's, say): the delivery's
    /// own span is its child, whichever task runs it.
    span: tracing::Span,
}

/// One delivery's whole run: the receiver's work, then its reply sent to the
/// request waiting for it.
type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The receiver behind a router, and the deliveries waiting for a leader.
pub(super) struct Batch<S: Events> {
    receiver: Arc<Receiver<S>>,
    queue: Mutex<Vec<Queued>>,
    /// Emptied queues' buffers, for the next leaders to leave in their
    /// place: a queue that started from nothing each time would grow (and
    /// copy its deliveries) again for every batch. More than one, as a
    /// leader can take the queue while another still runs its batch.
    spares: Mutex<Vec<Vec<Queued>>>,
}

/// The most buffers kept as spares.
const SPARES: usize = 4;
/// The largest buffer kept as a spare (a burst's is let go).
const SPARE_CAPACITY: usize = 64;

impl<S: Events> Batch<S> {
    pub(super) fn new(receiver: Receiver<S>) -> Self {
        Batch {
            receiver: Arc::new(receiver),
            queue: Mutex::new(Vec::new()),
            spares: Mutex::new(Vec::new()),
        }
    }

    pub(super) fn receiver(&self) -> &Receiver<S> {
        &self.receiver
    }

    fn queue(&self) -> MutexGuard<'_, Vec<Queued>> {
        // Nothing panics while the lock is held (a push or a take).
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn spares(&self) -> MutexGuard<'_, Vec<Vec<Queued>>> {
        self.spares.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps a leader's emptied queue for a next leader.
    fn give_back(&self, emptied: Vec<Queued>) {
        debug_assert!(emptied.is_empty());
        if emptied.capacity() <= SPARE_CAPACITY {
            let mut spares = self.spares();
            if spares.len() < SPARES {
                spares.push(emptied);
            }
        }
    }

    /// Handles one delivery whose body has been read, in a batch with the
    /// others that arrive with it.
    ///
    /// The delivery is queued at once, so that the future returned holds
    /// neither its head nor its body (an `async fn` would keep both, as its
    /// arguments, until it finished); a leader's future dropped before it
    /// was first polled still hands the queue on.
    pub(super) fn receive(&self, parts: Parts, body: Bytes) -> impl Future<Output = Reply> + '_ {
        let (answer, reply) = oneshot::channel();
        let leads = {
            let mut queue = self.queue();
            queue.push(Queued {
                parts,
                body,
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
struct Lead<'a, S: Events>(Option<&'a Batch<S>>);

impl<S: Events> Lead<'_, S> {
    /// The queued deliveries, now this leader's to run.
    fn take(&mut self) -> Vec<Queued> {
        self.0
            .take()
            .map(|batch| {
                let spare = batch.spares().pop().unwrap_or_default();
                std::mem::replace(&mut *batch.queue(), spare)
            })
            .unwrap_or_default()
    }
}

impl<S: Events> Drop for Lead<'_, S> {
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
fn job<S: Events>(receiver: &Arc<Receiver<S>>, queued: Queued) -> Job {
    let receiver = Arc::clone(receiver);
    let Queued {
        parts,
        body,
        answer,
        span,
    } = queued;
    Box::pin(
        async move {
            let reply = receiver
                .receive(Request {
                    method: parts.method.as_str(),
                    header: |name| parts.headers.get(name).map(HeaderValue::as_bytes),
                    body: &body,
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
fn run<S: Events>(
    receiver: &Arc<Receiver<S>>,
    queued: Vec<Queued>,
) -> impl Future<Output = Vec<Queued>> {
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

    use ::axum::http::Request as HttpRequest;
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

    fn batch(runs: &Arc<AtomicUsize>) -> Batch<crate::AnyEvent> {
        let dispatcher = Dispatcher::with_state(Arc::clone(runs))
            .handler(on_create)
            .handler(on_update)
            .build()
            .expect("two handlers build");
        Batch::new(Receiver::new(dispatcher, Verifier::new(TOKEN)))
    }

    /// A signed delivery of the seed sample of `event`.
    fn delivery(event: &str) -> (Parts, Bytes) {
        let body = SEED_SAMPLES
            .iter()
            .find(|(name, _)| *name == event)
            .expect("a seed sample")
            .1;
        let request = HttpRequest::post("/")
            .header("content-type", "application/json")
            .header(
                "x-kustomer-webhook-signature",
                sign(TOKEN.as_bytes(), body.as_bytes()),
            )
            .body(())
            .expect("a request builds");
        (request.into_parts().0, Bytes::from_static(body.as_bytes()))
    }

    /// A team's creation and update, the two deliveries most tests queue.
    fn create_and_update() -> ((Parts, Bytes), (Parts, Bytes)) {
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
            let mut leader = std::pin::pin!(batch.receive(a.0, a.1));
            let mut follower = std::pin::pin!(batch.receive(b.0, b.1));
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
    fn a_leader_dropped_before_its_turn_hands_the_queue_to_the_runtime() {
        runtime().block_on(async {
            let runs = Arc::new(AtomicUsize::new(0));
            let batch = batch(&runs);
            let (a, b) = create_and_update();
            let mut leader = Box::pin(batch.receive(a.0, a.1));
            let mut follower = Box::pin(batch.receive(b.0, b.1));
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
            let reply = batch.receive(retry.0, retry.1).await;
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
            let leader = batch.receive(a.0, a.1);
            let follower = batch.receive(b.0, b.1);
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
            let (a, b) = tokio::join!(batch.receive(a.0, a.1), batch.receive(b.0, b.1));
            assert_eq!((a.status, b.status), (200, 200));
            {
                let spares = batch.spares();
                assert_eq!(spares.len(), 1);
                assert!(spares[0].is_empty() && spares[0].capacity() >= 2);
            }
            // The next leader leaves it in the queue's place, for the
            // deliveries after it to queue into without growing a buffer.
            let c = delivery("kustomer.team.create");
            assert_eq!(batch.receive(c.0, c.1).await.outcome, "duplicate");
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
            let waiting = Batch::new(Receiver::new(dispatcher, Verifier::new(TOKEN)));
            let (a, b) = create_and_update();
            let mut leader = Box::pin(waiting.receive(a.0, a.1));
            let mut follower = Box::pin(waiting.receive(b.0, b.1));
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
