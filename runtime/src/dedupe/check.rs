//! [`check_store`]: the contract of [`IdempotencyStore`], run against a store.

use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Begin, IdempotencyStore, StoreError, StoreFuture};

/// How many claims of one id [`check_store`] has in flight at once.
pub const CONCURRENT_CLAIMS: usize = 16;

/// Where a store broke the contract of [`IdempotencyStore`], as found by
/// [`check_store`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreCheckError {
    /// A call answered something the contract does not allow.
    #[error("{step}: `begin` answered {found:?} where the contract needs {expected:?} (id {id})")]
    Answer {
        /// What the check was doing, in words.
        step: &'static str,
        /// The id it used.
        id: String,
        /// The answer the contract needs.
        expected: Begin,
        /// The store's answer.
        found: Begin,
    },
    /// Of the concurrent first claims of one id, not exactly one was
    /// [`Begin::New`]: a store whose `begin` reads and then writes, instead
    /// of claiming in one atomic step, lets two deliveries run the handler.
    #[error(
        "{claims} claims of one id in flight at once: {new} answered New, where exactly one must (id {id})"
    )]
    NotAtomic {
        /// The id claimed.
        id: String,
        /// How many claims were in flight.
        claims: usize,
        /// How many of them answered [`Begin::New`].
        new: usize,
    },
    /// The store returned an error.
    #[error("{step}: the store failed (id {id}): {error}")]
    Store {
        /// What the check was doing, in words.
        step: &'static str,
        /// The id it used.
        id: String,
        /// The store's error.
        error: StoreError,
    },
}

/// Runs the contract of [`IdempotencyStore`] against `store`, with fresh ids
/// of its own, and says where the store breaks it.
///
/// Meant for the tests of a store of your own (a shared one, in Redis or a
/// database table, that every replica of a service reaches): run it against
/// a test instance. It checks that
///
/// - a new id is [`Begin::New`], and a second claim while the first is held
///   is [`Begin::InProgress`];
/// - after [`complete`](IdempotencyStore::complete), the id is
///   [`Begin::Done`], and stays done after a late
///   [`abandon`](IdempotencyStore::abandon);
/// - after `abandon` (the handler failed), the id is [`Begin::New`] again,
///   so that Kustomer's retry runs the handler;
/// - of [`CONCURRENT_CLAIMS`] claims of one new id in flight at once, exactly
///   one is [`Begin::New`] and the others [`Begin::InProgress`].
///
/// The concurrent claims are polled together from the calling task: a store
/// that answers over the network (Redis `SET … NX`, `INSERT … ON CONFLICT`)
/// has them in flight at its server at once, as far as its client allows (a
/// connection pool, or a multiplexed connection). A store that locks in the
/// process is better also tested from several threads.
///
/// The ids start with `store-check-` and contain letters that no Kustomer
/// event id (24 hex digits) has, so they never meet a real event. When the
/// check passes, each id it claimed is completed and stays in the store for
/// the store's retention time, as any event would; when it fails, a claim
/// may be left to end with the store's in-progress timeout. What it cannot
/// check without waiting: that a claim expires after the store's in-progress
/// timeout, and that a done id is remembered for the whole retention time.
///
/// ```
/// use kustomer_webhooks::dedupe::{MemoryStore, check_store};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// check_store(&MemoryStore::new()).await?;
/// # Ok::<(), kustomer_webhooks::dedupe::StoreCheckError>(())
/// # }).unwrap();
/// ```
pub async fn check_store<S: IdempotencyStore + ?Sized>(store: &S) -> Result<(), StoreCheckError> {
    let prefix = run_prefix();
    let id = |what: &str| format!("{prefix}-{what}");

    let handled = id("handled");
    expect(store, "a new id", &handled, Begin::New).await?;
    let step = "a second claim while the first is held";
    expect(store, step, &handled, Begin::InProgress).await?;
    let step = "completing a claim";
    store
        .complete(&handled)
        .await
        .map_err(failed(step, &handled))?;
    expect(store, "a claim after completion", &handled, Begin::Done).await?;
    let step = "abandoning an id already done";
    store
        .abandon(&handled)
        .await
        .map_err(failed(step, &handled))?;
    let step = "a claim after a late abandon of a done id";
    expect(store, step, &handled, Begin::Done).await?;

    let retried = id("retried");
    expect(store, "a new id", &retried, Begin::New).await?;
    let step = "abandoning a claim";
    store
        .abandon(&retried)
        .await
        .map_err(failed(step, &retried))?;
    expect(store, "a claim after abandon", &retried, Begin::New).await?;
    let step = "completing a claim";
    store
        .complete(&retried)
        .await
        .map_err(failed(step, &retried))?;

    let raced = id("raced");
    let step = "concurrent claims of a new id";
    let answers = all((0..CONCURRENT_CLAIMS)
        .map(|_| store.begin(&raced))
        .collect())
    .await;
    let mut new = 0;
    for answer in answers {
        match answer.map_err(failed(step, &raced))? {
            Begin::New => new += 1,
            Begin::InProgress => {}
            // Nobody completed it: whatever else it is, it is not done.
            found @ Begin::Done => {
                return Err(StoreCheckError::Answer {
                    step,
                    id: raced,
                    expected: Begin::InProgress,
                    found,
                });
            }
        }
    }
    if new != 1 {
        return Err(StoreCheckError::NotAtomic {
            id: raced,
            claims: CONCURRENT_CLAIMS,
            new,
        });
    }
    let step = "completing a claim";
    store.complete(&raced).await.map_err(failed(step, &raced))?;
    expect(store, "a claim after completion", &raced, Begin::Done).await
}

/// Claims `id` and compares the answer with `expected`.
async fn expect<S: IdempotencyStore + ?Sized>(
    store: &S,
    step: &'static str,
    id: &str,
    expected: Begin,
) -> Result<(), StoreCheckError> {
    let found = store.begin(id).await.map_err(failed(step, id))?;
    if found == expected {
        Ok(())
    } else {
        Err(StoreCheckError::Answer {
            step,
            id: id.to_owned(),
            expected,
            found,
        })
    }
}

/// The error for a store that failed at `step`.
fn failed(step: &'static str, id: &str) -> impl FnOnce(StoreError) -> StoreCheckError {
    let id = id.to_owned();
    move |source| StoreCheckError::Store {
        step,
        id,
        error: source,
    }
}

/// Polls every future until all are ready; their outputs in order.
pub(super) async fn all<T>(mut futures: Vec<StoreFuture<'_, T>>) -> Vec<Result<T, StoreError>> {
    let mut outputs: Vec<Option<Result<T, StoreError>>> = futures.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(o) => *output = Some(o),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// The start of the ids of one run of the check, which no other run (in
/// this process or another) and no Kustomer event uses.
pub(super) fn run_prefix() -> String {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    format!("store-check-{nanos:x}-{:x}-{run:x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;
    use crate::dedupe::MemoryStore;
    use crate::dedupe::tests::block_on;

    /// A table of claims with switches that break one rule each.
    #[derive(Default)]
    struct Table {
        claims: Mutex<HashMap<String, Begin>>,
        /// `begin` reads, yields, then writes: two claims can both win.
        read_then_write: bool,
        /// `abandon` forgets an id even when it is done.
        abandon_forgets_done: bool,
        /// `abandon` does nothing.
        abandon_keeps_claim: bool,
        /// `complete` does nothing.
        complete_forgets: bool,
        /// Every call fails.
        down: bool,
    }

    impl Table {
        fn claim(&self, id: &str) -> Begin {
            let mut claims = self.claims.lock().unwrap();
            match claims.get(id) {
                Some(Begin::Done) => Begin::Done,
                Some(_) => Begin::InProgress,
                None => {
                    claims.insert(id.to_owned(), Begin::InProgress);
                    Begin::New
                }
            }
        }
    }

    impl IdempotencyStore for Table {
        fn begin<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Begin> {
            Box::pin(async move {
                if self.down {
                    return Err(StoreError::unavailable("connection refused"));
                }
                if self.read_then_write {
                    // Reads, lets the other claims read too, then writes.
                    let seen = self.claims.lock().unwrap().contains_key(id);
                    tokio::task::yield_now().await;
                    if !seen {
                        let mut claims = self.claims.lock().unwrap();
                        claims.insert(id.to_owned(), Begin::InProgress);
                        return Ok(Begin::New);
                    }
                }
                Ok(self.claim(id))
            })
        }

        fn complete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
            Box::pin(async move {
                if !self.complete_forgets {
                    self.claims
                        .lock()
                        .unwrap()
                        .insert(id.to_owned(), Begin::Done);
                }
                Ok(())
            })
        }

        fn abandon<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
            Box::pin(async move {
                let mut claims = self.claims.lock().unwrap();
                let done = claims.get(id) == Some(&Begin::Done);
                if !self.abandon_keeps_claim && (!done || self.abandon_forgets_done) {
                    claims.remove(id);
                }
                Ok(())
            })
        }
    }

    #[test]
    fn the_memory_store_keeps_the_contract() {
        block_on(check_store(&MemoryStore::new())).unwrap();
        // Again on the same store: the second run's ids are its own.
        let store = MemoryStore::new();
        block_on(check_store(&store)).unwrap();
        block_on(check_store(&store)).unwrap();
        // Through a trait object, as a service holds a store chosen at run time.
        let boxed: Box<dyn IdempotencyStore> = Box::new(MemoryStore::new());
        block_on(check_store(boxed.as_ref())).unwrap();
    }

    #[test]
    fn a_table_keeping_every_rule_passes() {
        block_on(check_store(&Table::default())).unwrap();
    }

    #[test]
    fn a_claim_that_reads_then_writes_is_caught() {
        let store = Table {
            read_then_write: true,
            ..Table::default()
        };
        let err = block_on(check_store(&store)).unwrap_err();
        match &err {
            StoreCheckError::NotAtomic { claims, new, .. } => {
                assert_eq!(*claims, CONCURRENT_CLAIMS);
                assert_eq!(*new, CONCURRENT_CLAIMS, "every claim read before any wrote");
            }
            other => panic!("{other}"),
        }
        let text = err.to_string();
        assert!(
            text.contains("16 claims of one id in flight at once: 16 answered New"),
            "{text}"
        );
    }

    #[test]
    fn forgetting_a_done_id_on_abandon_is_caught() {
        let store = Table {
            abandon_forgets_done: true,
            ..Table::default()
        };
        assert_eq!(
            answer(&store),
            (
                "a claim after a late abandon of a done id",
                Begin::Done,
                Begin::New
            )
        );
    }

    #[test]
    fn an_abandon_that_keeps_the_claim_is_caught() {
        let store = Table {
            abandon_keeps_claim: true,
            ..Table::default()
        };
        assert_eq!(
            answer(&store),
            ("a claim after abandon", Begin::New, Begin::InProgress)
        );
    }

    #[test]
    fn a_complete_that_records_nothing_is_caught() {
        let store = Table {
            complete_forgets: true,
            ..Table::default()
        };
        assert_eq!(
            answer(&store),
            ("a claim after completion", Begin::Done, Begin::InProgress)
        );
    }

    #[test]
    fn a_store_that_fails_is_reported_with_its_error() {
        let store = Table {
            down: true,
            ..Table::default()
        };
        let err = block_on(check_store(&store)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("a new id: the store failed (id store-check-"),
            "{text}"
        );
        assert!(text.ends_with("connection refused"), "{text}");
        // The store's error is in the message once, and in the variant.
        assert!(std::error::Error::source(&err).is_none());
        assert!(matches!(
            err,
            StoreCheckError::Store {
                error: StoreError::Unavailable(_),
                ..
            }
        ));
    }

    #[test]
    fn an_answer_names_the_step_the_answers_and_the_id() {
        let store = Table {
            complete_forgets: true,
            ..Table::default()
        };
        let text = err_text(&store);
        assert!(
            text.starts_with(
                "a claim after completion: `begin` answered InProgress where the contract needs Done (id store-check-"
            ),
            "{text}"
        );
    }

    #[test]
    fn runs_use_ids_of_their_own_never_a_kustomer_event_id() {
        let (a, b) = (run_prefix(), run_prefix());
        assert_ne!(a, b, "two runs in one process");
        for prefix in [a, b] {
            assert!(prefix.starts_with("store-check-"));
            assert!(!prefix.chars().all(|c| c.is_ascii_hexdigit()));
        }
    }

    fn answer(store: &Table) -> (&'static str, Begin, Begin) {
        match block_on(check_store(store)).unwrap_err() {
            StoreCheckError::Answer {
                step,
                expected,
                found,
                ..
            } => (step, expected, found),
            other => panic!("{other}"),
        }
    }

    fn err_text(store: &Table) -> String {
        block_on(check_store(store)).unwrap_err().to_string()
    }
}
