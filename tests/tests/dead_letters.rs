//! Dead letters against a model: random sequences of deliveries to two
//! replicas sharing an idempotency store, handlers succeeding or failing,
//! replicas restarting and the store losing what it held, must leave in
//! each replica's directory a dead letter for exactly the events whose last
//! delivery to it failed and that it has not acknowledged since.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use kustomer_schema::SEED_SAMPLES;
use kustomer_webhooks::dead_letters::DeadLetters;
use kustomer_webhooks::dedupe::{Begin, IdempotencyStore, MemoryStore, StoreError, StoreFuture};
use kustomer_webhooks::receiver::{Receiver, Request};
use kustomer_webhooks::verify::{SIGNATURE_HEADER, Verifier, sign};
use kustomer_webhooks::{Dispatcher, State, TeamCreate};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::Value;

const TOKEN: &str = "token-2026";

/// Whether the handler fails on its next run, and how often it ran to its
/// end per event id.
#[derive(Default)]
struct Handler {
    fail: AtomicBool,
    handled: Mutex<BTreeMap<String, usize>>,
}

async fn on_team(event: TeamCreate, handler: State<Arc<Handler>>) -> Result<(), std::io::Error> {
    if handler.fail.load(Ordering::SeqCst) {
        return Err(std::io::Error::other("the database is down"));
    }
    let id = event.id.map(|id| id.to_string()).unwrap_or_default();
    *handler.handled.lock().unwrap().entry(id).or_default() += 1;
    Ok(())
}

/// Two replicas of a service, each with its own dead-letter directory,
/// sharing an idempotency store (as they would a Redis).
#[derive(Clone, Debug)]
enum Op {
    /// A delivery of event `n` to `replica`, its handler failing or not.
    Deliver {
        replica: usize,
        n: usize,
        fail: bool,
    },
    /// A replica restarts: its directory stays, and so does the store.
    Restart { replica: usize },
    /// The shared store loses what it held (a Redis without persistence
    /// restarted).
    StoreLost,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..2usize, 0..3usize, any::<bool>())
            .prop_map(|(replica, n, fail)| Op::Deliver { replica, n, fail }),
        1 => (0..2usize).prop_map(|replica| Op::Restart { replica }),
        1 => Just(Op::StoreLost),
    ]
}

fn event_id(n: usize) -> String {
    format!("{:024x}", 0xdead_0000 + n)
}

fn body(n: usize) -> Vec<u8> {
    let sample = SEED_SAMPLES
        .iter()
        .find(|(e, _)| *e == "kustomer.team.create")
        .unwrap()
        .1;
    let mut v: Value = serde_json::from_str(sample).unwrap();
    v["id"] = event_id(n).into();
    serde_json::to_vec(&v).unwrap()
}

/// `body` delivered to `receiver` as Kustomer sends it, signed.
async fn deliver(receiver: &Receiver, body: &[u8]) -> kustomer_webhooks::receiver::Reply {
    let signature = sign(TOKEN.as_bytes(), body);
    receiver
        .receive(Request {
            method: "POST",
            header: |name| match name {
                SIGNATURE_HEADER => Some(signature.as_bytes()),
                "content-type" => Some(b"application/json"),
                _ => None,
            },
            body,
        })
        .await
}

/// A replica: its receiver, and its dead letters.
struct Replica {
    dir: tempfile::TempDir,
    receiver: Receiver,
    letters: DeadLetters,
}

impl Replica {
    fn start(dir: tempfile::TempDir, store: &Arc<MemoryStore>, handler: &Arc<Handler>) -> Self {
        let letters = DeadLetters::open(dir.path()).unwrap();
        let dispatcher = Dispatcher::with_state(handler.clone())
            .handler(on_team)
            .build()
            .unwrap();
        let receiver = Receiver::new(dispatcher, Verifier::new(TOKEN))
            .with_store(store.clone())
            .with_dead_letters(letters.clone());
        Replica {
            dir,
            receiver,
            letters,
        }
    }

    fn restart(self, store: &Arc<MemoryStore>, handler: &Arc<Handler>) -> Self {
        Replica::start(self.dir, store, handler)
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let handler = Arc::new(Handler::default());
    let mut store = Arc::new(MemoryStore::new());
    let mut replicas: Vec<Replica> = (0..2)
        .map(|_| Replica::start(tempfile::TempDir::new().unwrap(), &store, &handler))
        .collect();
    // The model: per event, whether the store remembers it handled, whether
    // each replica's dead letter of it should be there, and how often it was
    // handled.
    let mut remembered = [false; 3];
    let mut kept = [[false; 3]; 2];
    let mut handled = [0usize; 3];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for op in ops {
        match op {
            Op::Restart { replica } => {
                let old = replicas.remove(replica);
                replicas.insert(replica, old.restart(&store, &handler));
            }
            Op::StoreLost => {
                store = Arc::new(MemoryStore::new());
                replicas = replicas
                    .into_iter()
                    .map(|r| r.restart(&store, &handler))
                    .collect();
                remembered = [false; 3];
            }
            Op::Deliver { replica, n, fail } => {
                handler.fail.store(fail, Ordering::SeqCst);
                let reply = rt.block_on(deliver(&replicas[replica].receiver, &body(n)));
                let want = if remembered[n] {
                    kept[replica][n] = false;
                    (200, "duplicate")
                } else if fail {
                    kept[replica][n] = true;
                    (500, "error")
                } else {
                    remembered[n] = true;
                    kept[replica][n] = false;
                    handled[n] += 1;
                    (200, "handled")
                };
                prop_assert_eq!((reply.status, reply.outcome), want);
            }
        }
        for (r, (replica, kept)) in replicas.iter().zip(&kept).enumerate() {
            for (n, &kept) in kept.iter().enumerate() {
                let file = replica.dir.path().join(format!("{}.json", event_id(n)));
                prop_assert_eq!(file.exists(), kept, "replica {}, event {}", r, n);
                if kept {
                    prop_assert_eq!(std::fs::read(&file).unwrap(), body(n));
                }
            }
            let want = kept.iter().filter(|k| **k).count();
            prop_assert_eq!(replica.letters.pending(), want, "replica {}", r);
        }
    }
    // Each event was handled once, and again only after the store lost it.
    let recorded = handler.handled.lock().unwrap().clone();
    for (n, handled) in handled.iter().enumerate() {
        prop_assert_eq!(recorded.get(&event_id(n)).copied().unwrap_or(0), *handled);
    }
    Ok(())
}

proptest! {
    #![proptest_config(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn a_dead_letter_is_kept_exactly_while_its_events_last_delivery_failed(
        ops in proptest::collection::vec(op(), 1..24)
    ) {
        run(ops)?;
    }
}

#[test]
fn failures_restarts_and_the_other_replica_leave_nothing_kept() {
    let deliver = |replica, n, fail| Op::Deliver { replica, n, fail };
    run(vec![
        deliver(0, 0, true),
        deliver(0, 1, true),
        Op::Restart { replica: 0 },
        // Handled by the other replica: a duplicate at the first.
        deliver(1, 0, false),
        deliver(0, 0, true),
        deliver(0, 1, false),
        Op::StoreLost,
        deliver(1, 0, true),
        deliver(1, 0, false),
    ])
    .unwrap();
}

/// A store that notes, each time a claim is given up, whether the event's
/// dead letter was written by then.
struct Watching {
    inner: MemoryStore,
    dir: std::path::PathBuf,
    written_when_given_up: Mutex<Vec<bool>>,
}

impl IdempotencyStore for Watching {
    fn begin<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Begin> {
        self.inner.begin(id)
    }
    fn complete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        self.inner.complete(id)
    }
    fn abandon<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        let written = self.dir.join(format!("{id}.json")).exists();
        self.written_when_given_up.lock().unwrap().push(written);
        self.inner.abandon(id)
    }
}

/// A failed run's dead letter is written before its claim is given up:
/// the other way round, a retry could take the claim, be handled and clear
/// the dead letters in between, and the failed run's letter would then stay
/// for an event already handled.
#[tokio::test]
async fn a_failed_runs_dead_letter_is_written_before_its_claim_is_given_up() {
    let dir = tempfile::TempDir::new().unwrap();
    let store = Arc::new(Watching {
        inner: MemoryStore::new(),
        dir: dir.path().to_owned(),
        written_when_given_up: Mutex::default(),
    });
    let handler = Arc::new(Handler::default());
    handler.fail.store(true, Ordering::SeqCst);
    let dispatcher = Dispatcher::with_state(handler.clone())
        .handler(on_team)
        .build()
        .unwrap();
    let receiver = Receiver::new(dispatcher, Verifier::new(TOKEN))
        .with_store(store.clone())
        .with_dead_letters(DeadLetters::open(dir.path()).unwrap());
    let reply = deliver(&receiver, &body(0)).await;
    assert_eq!((reply.status, reply.outcome), (500, "error"));
    assert_eq!(*store.written_when_given_up.lock().unwrap(), [true]);
}

/// A store that cannot be reached, that never answers, or whose every id
/// another delivery is handling.
enum Down {
    Failing,
    Silent,
    Busy,
}

impl IdempotencyStore for Down {
    fn begin<'a>(&'a self, _: &'a str) -> StoreFuture<'a, Begin> {
        Box::pin(async move {
            match self {
                Down::Failing => Err(StoreError::unavailable("down")),
                Down::Silent => std::future::pending().await,
                Down::Busy => Ok(Begin::InProgress),
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

/// An event older than the max event age may be a replay: kept as a dead
/// letter, it would be dispatched once sent again with the token. So it
/// never is, not even when the store fails or does not answer (which keeps
/// any other event).
#[tokio::test]
async fn an_event_too_old_is_never_kept_as_a_dead_letter() {
    let timeout = std::time::Duration::from_millis(100);
    for down in [
        None,
        Some(Down::Failing),
        Some(Down::Silent),
        Some(Down::Busy),
    ] {
        let busy = matches!(down, Some(Down::Busy));
        let dir = tempfile::TempDir::new().unwrap();
        let handler = Arc::new(Handler::default());
        let dispatcher = Dispatcher::with_state(handler.clone())
            .handler(on_team)
            .build()
            .unwrap();
        let receiver = Receiver::new(dispatcher, Verifier::new(TOKEN))
            .with_dead_letters(DeadLetters::open(dir.path()).unwrap())
            .with_timeout(timeout)
            .with_max_event_age(std::time::Duration::from_secs(4500));
        let receiver = match down {
            Some(down) => receiver.with_store(down),
            None => receiver,
        };
        // The seed's sample was created in 2021.
        let reply = deliver(&receiver, &body(0)).await;
        let want = if busy {
            // Another delivery of it holds it: retried, as any other.
            (409, "in progress")
        } else {
            (200, "too old")
        };
        assert_eq!((reply.status, reply.outcome), want, "{reply:?}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(handler.handled.lock().unwrap().is_empty());
    }
    // Without the age, a store down keeps the event.
    let dir = tempfile::TempDir::new().unwrap();
    let receiver = Receiver::new(
        Dispatcher::with_state(Arc::new(Handler::default()))
            .handler(on_team)
            .build()
            .unwrap(),
        Verifier::new(TOKEN),
    )
    .with_dead_letters(DeadLetters::open(dir.path()).unwrap())
    .with_timeout(timeout)
    .with_store(Down::Failing);
    let reply = deliver(&receiver, &body(0)).await;
    assert_eq!(reply.status, 503);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
