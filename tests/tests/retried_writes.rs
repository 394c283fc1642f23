//! Writes a store failed after their delivery was answered (a handled
//! event's `complete`) are tried again in the background; a service about
//! to stop tries them at once (`receiver::finish_retried_writes`), and is
//! told how many are left.
//!
//! One test in a binary of its own: the count of writes being tried again
//! is the process's, which other tests' receivers would change.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use kustomer_webhooks::dedupe::{Begin, IdempotencyStore, MemoryStore, StoreError, StoreFuture};
use kustomer_webhooks::receiver::{self, Receiver, outcome};
use kustomer_webhooks::testing::Delivery;
use kustomer_webhooks::verify::Verifier;
use kustomer_webhooks::{Dispatcher, TeamCreate};

/// A store whose `complete` fails while `down` is set.
struct CompleteDown {
    inner: MemoryStore,
    down: AtomicBool,
    completes: AtomicUsize,
}

impl IdempotencyStore for CompleteDown {
    fn begin<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Begin> {
        self.inner.begin(id)
    }
    fn complete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        self.completes.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Box::pin(async {
                Err(StoreError::unavailable(std::io::Error::other(
                    "connection refused",
                )))
            });
        }
        self.inner.complete(id)
    }
    fn abandon<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        self.inner.abandon(id)
    }
}

async fn on_team(_: TeamCreate) {}

#[tokio::test]
async fn a_stopping_service_tries_the_failed_writes_at_once_and_is_told_what_is_left() {
    let store = Arc::new(CompleteDown {
        inner: MemoryStore::new(),
        down: AtomicBool::new(true),
        completes: AtomicUsize::new(0),
    });
    let dispatcher = Dispatcher::builder().handler(on_team).build().unwrap();
    let receiver = Receiver::new(dispatcher, Verifier::new("t0ken")).with_store(Arc::clone(&store));
    assert_eq!(receiver::retried_writes(), 0);
    let delivery = Delivery::sample("kustomer.team.create")
        .unwrap()
        .signed_with("t0ken");
    // Handled and answered, but its id not written: tried again later.
    assert_eq!(
        delivery.deliver_to(&receiver).await.outcome,
        outcome::HANDLED
    );
    assert_eq!(receiver::retried_writes(), 1);

    // The store still down: what is left after the grace is said.
    assert_eq!(
        receiver::finish_retried_writes(Duration::from_millis(300)).await,
        1
    );

    // Each hurried try fails and doubles the wait before the next: past
    // the five seconds given below (16 s and more, up to its 30 s).
    for _ in 0..8 {
        let before = store.completes.load(Ordering::SeqCst);
        receiver::finish_retried_writes(Duration::from_millis(1)).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(store.completes.load(Ordering::SeqCst), before + 1);
    }
    // Back half a second into the grace: the write is tried again within
    // it, not after that wait, and nothing is left.
    let back = Arc::clone(&store);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(600)).await;
        back.down.store(false, Ordering::SeqCst);
    });
    assert_eq!(
        receiver::finish_retried_writes(Duration::from_secs(5)).await,
        0
    );
    // The event is remembered as handled: a retry is a duplicate.
    assert_eq!(
        delivery.deliver_to(&receiver).await.outcome,
        outcome::DUPLICATE
    );
}
