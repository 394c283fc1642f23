//! Faults, over real TCP on loopback: handlers that fail, panic or run past
//! their time limit, and an idempotency store that fails or does not answer.
//!
//! Each fault must get a status that makes Kustomer retry (5xx, or 409 while
//! a claim is held), the server must keep serving other deliveries meanwhile,
//! and the event that failed must be processed exactly once once the sender
//! retries it on Kustomer's schedule (1, 1, 2, 5, 10, 15 and 30 minutes after
//! the first attempt, compressed here so that a minute takes 20 ms).
//!
//! The last test runs two replicas sharing a Redis (`RedisStore`), the
//! retries of each event reaching them in turn; it starts its own
//! `redis-server` (see `kustomer_webhooks_tests::redis_server`).
//!
//! "Processed" means the handler ran to its end: each handler records the
//! event id only after its fault point, as a handler that commits its work
//! last would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kustomer_schema::SEED_SAMPLES;
use kustomer_webhooks::dedupe::{Begin, IdempotencyStore, MemoryStore, StoreError, StoreFuture};
use kustomer_webhooks::receiver::{Counters, Receiver};
use kustomer_webhooks::verify::{Verifier, sign};
use kustomer_webhooks::{
    CustomerUpdate, Dispatcher, Id, State, TeamCreate, TeamUpdate, UserCreate, UserUpdate,
};
use serde_json::Value;

const TOKEN: &str = "token-2026";

/// Kustomer's retry schedule: minutes to wait before each retry.
const RETRY_MINUTES: [u32; 7] = [1, 1, 2, 5, 10, 15, 30];
/// A minute of Kustomer's schedule, compressed.
const MINUTE: Duration = Duration::from_millis(20);
/// The handlers' time limit in these tests.
const TIME_LIMIT: Duration = Duration::from_millis(500);

/// Which attempts fail, and which events were processed, by event id.
#[derive(Default)]
struct Plan {
    /// How many more deliveries of an event id fail.
    failures: Mutex<HashMap<String, usize>>,
    /// How many times each event id was processed to the end.
    processed: Mutex<HashMap<String, usize>>,
    /// Handler runs, failed or not.
    runs: AtomicUsize,
}

type Shared = Arc<Plan>;

impl Plan {
    fn fail(&self, id: &str, times: usize) {
        self.failures.lock().unwrap().insert(id.to_owned(), times);
    }

    /// Whether this run of `id` is to fail.
    fn should_fail(&self, id: &Option<Id>) -> bool {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let id = id.as_ref().map(Id::to_string).unwrap_or_default();
        match self.failures.lock().unwrap().get_mut(&id) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }

    fn done(&self, id: &Option<Id>) {
        let id = id.as_ref().map(Id::to_string).unwrap_or_default();
        *self.processed.lock().unwrap().entry(id).or_default() += 1;
    }

    fn processed(&self, id: &str) -> usize {
        self.processed.lock().unwrap().get(id).copied().unwrap_or(0)
    }
}

/// Fails with an error.
async fn erroring(event: TeamCreate, plan: State<Shared>) -> Result<(), std::io::Error> {
    if plan.should_fail(&event.id) {
        return Err(std::io::Error::other("the database is down"));
    }
    plan.done(&event.id);
    Ok(())
}

/// Panics.
async fn panicking(event: UserCreate, plan: State<Shared>) {
    if plan.should_fail(&event.id) {
        panic!("a bug in the handler");
    }
    plan.done(&event.id);
}

/// Runs far past its time limit (the receiver drops it at the limit).
async fn slow(event: UserUpdate, plan: State<Shared>) {
    if plan.should_fail(&event.id) {
        tokio::time::sleep(Duration::from_secs(20)).await;
    }
    plan.done(&event.id);
}

/// A blocking handler that fails with an error.
fn blocking(event: CustomerUpdate, plan: State<Shared>) -> Result<(), std::io::Error> {
    if plan.should_fail(&event.id) {
        return Err(std::io::Error::other("the file is locked"));
    }
    plan.done(&event.id);
    Ok(())
}

/// Never fails by itself (the store's faults are tested with it).
async fn fine(event: TeamUpdate, plan: State<Shared>) {
    plan.runs.fetch_add(1, Ordering::SeqCst);
    plan.done(&event.id);
}

/// A store fault: what the next calls of one method do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Answer with an error.
    Fail,
    /// Never answer.
    Hang,
    /// Panic (a store with a bug).
    Panic,
}

/// An idempotency store that wraps another ([`MemoryStore`], or a shared
/// `RedisStore`) and fails on demand.
struct FailingStore {
    inner: Box<dyn IdempotencyStore>,
    begin: Mutex<Vec<Fault>>,
    complete: Mutex<Vec<Fault>>,
    abandon: Mutex<Vec<Fault>>,
    calls: AtomicUsize,
}

impl FailingStore {
    fn over(inner: impl IdempotencyStore + 'static) -> Self {
        FailingStore {
            inner: Box::new(inner),
            begin: Mutex::default(),
            complete: Mutex::default(),
            abandon: Mutex::default(),
            calls: AtomicUsize::new(0),
        }
    }

    /// Queues `faults` for the next calls of `method`.
    fn inject(&self, method: &str, faults: &[Fault]) {
        let queue = match method {
            "begin" => &self.begin,
            "complete" => &self.complete,
            _ => &self.abandon,
        };
        queue.lock().unwrap().extend_from_slice(faults);
    }

    /// The fault of this call, if one is queued.
    fn next(queue: &Mutex<Vec<Fault>>) -> Option<Fault> {
        let mut q = queue.lock().unwrap();
        (!q.is_empty()).then(|| q.remove(0))
    }

    fn with_fault<'a, T: Send + 'a>(
        &'a self,
        queue: &Mutex<Vec<Fault>>,
        call: StoreFuture<'a, T>,
    ) -> StoreFuture<'a, T> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match Self::next(queue) {
            None => call,
            Some(Fault::Fail) => Box::pin(async {
                Err(StoreError::unavailable(std::io::Error::other(
                    "connection refused",
                )))
            }),
            Some(Fault::Hang) => Box::pin(std::future::pending()),
            Some(Fault::Panic) => Box::pin(async { panic!("a store with a bug") }),
        }
    }
}

impl IdempotencyStore for FailingStore {
    fn begin<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Begin> {
        self.with_fault(&self.begin, self.inner.begin(id))
    }
    fn complete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        self.with_fault(&self.complete, self.inner.complete(id))
    }
    fn abandon<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        self.with_fault(&self.abandon, self.inner.abandon(id))
    }
}

struct Server {
    addr: SocketAddr,
    plan: Shared,
    store: Arc<FailingStore>,
    counters: Arc<Counters>,
    client: reqwest::Client,
}

async fn start() -> Server {
    start_with(MemoryStore::new()).await
}

async fn start_with(store: MemoryStore) -> Server {
    start_replica(store, Shared::default()).await
}

/// A receiver over `store`, recording into `plan`: one replica of a service
/// when several share `plan` and a store.
async fn start_replica(store: impl IdempotencyStore + 'static, plan: Shared) -> Server {
    start_configured(store, plan, |r| r).await
}

/// [`start_replica`], its receiver configured further by `configure`.
async fn start_configured(
    store: impl IdempotencyStore + 'static,
    plan: Shared,
    configure: impl FnOnce(Receiver) -> Receiver,
) -> Server {
    let store = Arc::new(FailingStore::over(store));
    let dispatcher = Dispatcher::with_state(plan.clone())
        .handler(erroring)
        .handler(panicking)
        .handler(slow)
        .handler(blocking)
        .handler(fine)
        .build()
        .unwrap();
    let receiver = configure(
        Receiver::new(dispatcher, Verifier::new(TOKEN))
            .with_store(store.clone())
            .with_timeout(TIME_LIMIT),
    );
    let counters = receiver.counters();
    let app = kustomer_webhooks::axum::router(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        addr,
        plan,
        store,
        counters,
        // Not a measurement: only so that a receiver that hangs fails the
        // test instead of stalling it.
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
    }
}

/// The sample of `event` with the event id `n` (24 hex digits).
fn event(event: &str, n: usize) -> (String, Vec<u8>) {
    let sample = SEED_SAMPLES.iter().find(|(e, _)| *e == event).unwrap().1;
    let mut v: Value = serde_json::from_str(sample).unwrap();
    let id = format!("{n:024x}");
    v["id"] = id.clone().into();
    (id, serde_json::to_vec(&v).unwrap())
}

impl Server {
    /// One delivery, signed and named as Kustomer sends it.
    async fn deliver(&self, body: &[u8]) -> (u16, Value) {
        let name = serde_json::from_slice::<Value>(body).unwrap()["name"]
            .as_str()
            .unwrap()
            .to_owned();
        let res = self
            .client
            .post(format!("http://{}/", self.addr))
            .header("content-type", "application/json")
            .header("x-kustomer-webhook-signature", sign(TOKEN.as_bytes(), body))
            .header("x-kustomer-webhook-event", name)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Delivers `body` as Kustomer does: again after each answer that is
    /// not 2xx, on the retry schedule, until 2xx or the schedule ends.
    /// Returns each attempt's status and reply.
    async fn deliver_with_retries(&self, body: &[u8]) -> Vec<(u16, Value)> {
        deliver_with_retries_to(&[self], body).await
    }

    /// A delivery that has no fault gets 200: the server keeps serving.
    async fn still_serving(&self, n: usize) {
        let (id, body) = event("kustomer.team.update", 1_000_000 + n);
        let (status, reply) = self.deliver(&body).await;
        assert_eq!((status, reply["outcome"].as_str()), (200, Some("handled")));
        assert_eq!(self.plan.processed(&id), 1);
    }
}

/// [`Server::deliver_with_retries`] to replicas of one service behind a load
/// balancer: each attempt reaches the next of `servers` in turn.
async fn deliver_with_retries_to(servers: &[&Server], body: &[u8]) -> Vec<(u16, Value)> {
    let mut attempts = vec![servers[0].deliver(body).await];
    for minutes in RETRY_MINUTES {
        if (200..300).contains(&attempts.last().unwrap().0) {
            break;
        }
        tokio::time::sleep(MINUTE * minutes).await;
        let next = servers[attempts.len() % servers.len()];
        attempts.push(next.deliver(body).await);
    }
    attempts
}

/// Each attempt's status and reply.
type Attempts = Vec<(u16, Value)>;

fn statuses(attempts: &[(u16, Value)]) -> Vec<u16> {
    attempts.iter().map(|(s, _)| *s).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_error_gets_500_and_the_retry_processes_the_event_once() {
    let s = start().await;
    let (id, body) = event("kustomer.team.create", 1);
    s.plan.fail(&id, 3);
    let attempts = s.deliver_with_retries(&body).await;
    assert_eq!(statuses(&attempts), [500, 500, 500, 200], "{attempts:?}");
    assert!(
        attempts[0].1["error"]
            .as_str()
            .unwrap()
            .contains("the database is down"),
        "{attempts:?}"
    );
    assert_eq!(s.plan.processed(&id), 1);
    // A late duplicate (delivery is at least once) is acknowledged, not run.
    let (status, reply) = s.deliver(&body).await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (200, Some("duplicate"))
    );
    assert_eq!(s.plan.processed(&id), 1);
    s.still_serving(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_handler_error_gets_500_and_the_retry_processes_the_event_once() {
    let s = start().await;
    let (id, body) = event("kustomer.customer.update", 2);
    s.plan.fail(&id, 2);
    let attempts = s.deliver_with_retries(&body).await;
    assert_eq!(statuses(&attempts), [500, 500, 200], "{attempts:?}");
    assert_eq!(s.plan.processed(&id), 1);
    s.still_serving(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_gets_500_and_the_server_keeps_serving() {
    let s = start().await;
    let (id, body) = event("kustomer.user.create", 3);
    s.plan.fail(&id, 4);
    let attempts = s.deliver_with_retries(&body).await;
    assert_eq!(
        statuses(&attempts),
        [500, 500, 500, 500, 200],
        "{attempts:?}"
    );
    assert!(
        attempts[0].1["error"]
            .as_str()
            .unwrap()
            .contains("a bug in the handler"),
        "{attempts:?}"
    );
    assert_eq!(s.plan.processed(&id), 1);
    s.still_serving(3).await;
    assert_eq!(s.counters.failed.load(Ordering::SeqCst), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_past_its_time_limit_gets_503_and_the_retry_processes_the_event_once() {
    let s = start().await;
    let (id, body) = event("kustomer.user.update", 4);
    s.plan.fail(&id, 2);
    // While the slow delivery is being handled, others are served.
    let (attempts, ()) = tokio::join!(s.deliver_with_retries(&body), s.still_serving(4));
    assert_eq!(statuses(&attempts), [503, 503, 200], "{attempts:?}");
    assert_eq!(s.plan.processed(&id), 1, "the slow runs were dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_fails_to_claim_gets_503_and_the_retry_processes_the_event_once() {
    let s = start().await;
    let (id, body) = event("kustomer.team.update", 5);
    s.store.inject("begin", &[Fault::Fail, Fault::Fail]);
    let attempts = s.deliver_with_retries(&body).await;
    assert_eq!(statuses(&attempts), [503, 503, 200], "{attempts:?}");
    assert!(
        attempts[0].1["error"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{attempts:?}"
    );
    assert_eq!(s.plan.processed(&id), 1);
    assert_eq!(s.plan.runs.load(Ordering::SeqCst), 1, "not run unclaimed");
    s.still_serving(5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_does_not_answer_gets_503_in_time() {
    let s = start().await;
    let (id, body) = event("kustomer.team.update", 6);
    s.store.inject("begin", &[Fault::Hang]);
    let attempts = s.deliver_with_retries(&body).await;
    assert_eq!(statuses(&attempts), [503, 200], "{attempts:?}");
    assert!(
        attempts[0].1["error"]
            .as_str()
            .unwrap()
            .contains("did not answer"),
        "{attempts:?}"
    );
    assert_eq!(s.plan.processed(&id), 1);
    // A store that hangs after the handler ran: the handler's success is
    // still acknowledged.
    let (id, body) = event("kustomer.team.update", 7);
    s.store.inject("complete", &[Fault::Hang]);
    let (status, reply) = s.deliver(&body).await;
    assert_eq!((status, reply["outcome"].as_str()), (200, Some("handled")));
    assert_eq!(s.plan.processed(&id), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_fails_to_record_success_still_acknowledges_once() {
    let s = start().await;
    let (id, body) = event("kustomer.team.update", 8);
    s.store.inject("complete", &[Fault::Fail]);
    let attempts = s.deliver_with_retries(&body).await;
    assert_eq!(statuses(&attempts), [200], "{attempts:?}");
    assert_eq!(s.plan.processed(&id), 1);
    // The claim was never completed, so a duplicate that arrives while it
    // lasts is told to come back later rather than run twice.
    let (status, reply) = s.deliver(&body).await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (409, Some("in progress"))
    );
    assert_eq!(
        reply["detail"],
        "another delivery of this event is being handled; retry later"
    );
    assert!(reply.get("error").is_none(), "{reply}");
    assert_eq!(s.plan.processed(&id), 1);
    // The completion is tried again in the background: once the store takes
    // it, a retry is a duplicate, long before the claim would have ended.
    let mut outcome = String::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (status, reply) = s.deliver(&body).await;
        outcome = format!("{status} {}", reply["outcome"].as_str().unwrap_or(""));
        if status != 409 {
            break;
        }
    }
    assert_eq!(outcome, "200 duplicate");
    assert_eq!(s.plan.processed(&id), 1);
}

/// A store that panics while recording a handler's success: the delivery is
/// answered 500, and its claim given up, so that the retry runs the handler
/// again at once rather than being told 409 until the claim's timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_panics_while_settling_gives_the_claim_up() {
    let s = start().await;
    let (id, body) = event("kustomer.team.update", 9);
    s.store.inject("complete", &[Fault::Panic]);
    let attempts = s.deliver_with_retries(&body).await;
    assert_eq!(statuses(&attempts), [500, 200], "{attempts:?}");
    assert_eq!(s.plan.processed(&id), 2, "handled, then handled again");
    let (status, reply) = s.deliver(&body).await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (200, Some("duplicate")),
        "{reply}"
    );
}

/// The failure hook is told of the events a store's failure left unhandled:
/// not run when it failed or did not answer before the handler; the
/// receiver's panic when it panicked after; once each, with the event's id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failure_hook_is_told_of_what_a_failing_store_left_unhandled() {
    use kustomer_webhooks::receiver::FailureCause;
    let told = Arc::new(Mutex::new(Vec::new()));
    let hook = {
        let told = told.clone();
        move |failure: &kustomer_webhooks::receiver::Failure<'_>| {
            let cause = match &failure.cause {
                FailureCause::NotRun(why) => format!("not run: {why}"),
                FailureCause::ReceiverPanicked(why) => format!("panicked: {why}"),
                other => format!("{other:?}"),
            };
            told.lock()
                .unwrap()
                .push((failure.id.unwrap().to_owned(), cause));
        }
    };
    let s = start_configured(MemoryStore::new(), Shared::default(), |r| {
        r.on_failure(hook)
    })
    .await;
    let (failed, body) = event("kustomer.team.update", 20);
    s.store.inject("begin", &[Fault::Fail]);
    assert_eq!(s.deliver(&body).await.0, 503);
    let (silent, body) = event("kustomer.team.update", 21);
    s.store.inject("begin", &[Fault::Hang]);
    assert_eq!(s.deliver(&body).await.0, 503);
    let (panicked, body) = event("kustomer.team.update", 22);
    s.store.inject("complete", &[Fault::Panic]);
    assert_eq!(s.deliver(&body).await.0, 500);
    // Handled: nothing to tell.
    s.still_serving(20).await;
    let told = told.lock().unwrap().clone();
    assert_eq!(told.len(), 3, "{told:?}");
    assert_eq!(told[0].0, failed);
    assert!(
        told[0].1.starts_with("not run: ") && told[0].1.contains("connection refused"),
        "{told:?}"
    );
    assert_eq!(told[1].0, silent);
    assert!(
        told[1].1.starts_with("not run: ") && told[1].1.contains("did not answer"),
        "{told:?}"
    );
    assert_eq!(told[2].0, panicked);
    assert_eq!(
        told[2].1,
        "panicked: the receiver panicked around the handler: a store with a bug"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_fails_to_release_a_failed_claim_delays_the_retry_until_the_claim_ends() {
    // A short claim, so that it ends within the compressed schedule.
    let store = MemoryStore::builder()
        .in_progress_timeout(MINUTE * 10)
        .build();
    let s = start_with(store).await;
    let (id, body) = event("kustomer.team.create", 9);
    s.plan.fail(&id, 1);
    s.store.inject("abandon", &[Fault::Fail]);
    let attempts = s.deliver_with_retries(&body).await;
    let got = statuses(&attempts);
    assert_eq!(got[0], 500, "{attempts:?}");
    assert_eq!(got.last(), Some(&200), "{attempts:?}");
    assert!(
        got[1..got.len() - 1].iter().all(|&s| s == 409),
        "retries while the stale claim lasts are told to come back: {attempts:?}"
    );
    assert_eq!(s.plan.processed(&id), 1);
    assert_eq!(s.plan.runs.load(Ordering::SeqCst), 2);
}

/// Forty events of five kinds, ids from `first`; most handlers are planned
/// to fail one to three times first.
fn forty_events(plan: &Plan, first: usize) -> Vec<(String, Vec<u8>)> {
    let kinds = [
        "kustomer.team.create",
        "kustomer.user.create",
        "kustomer.user.update",
        "kustomer.customer.update",
        "kustomer.team.update",
    ];
    (0..40)
        .map(|n| {
            let kind = kinds[n % kinds.len()];
            let (id, body) = event(kind, first + n);
            if kind != "kustomer.team.update" {
                plan.fail(&id, n % 4);
            }
            (id, body)
        })
        .collect()
}

/// Each delivery's attempts ended in 200, after only statuses that make
/// Kustomer retry.
async fn assert_each_ends_in_200(tasks: Vec<tokio::task::JoinHandle<(String, Attempts)>>) {
    for task in tasks {
        let (id, attempts) = task.await.unwrap();
        let got = statuses(&attempts);
        assert_eq!(got.last(), Some(&200), "{id}: {attempts:?}");
        assert!(
            got[..got.len() - 1]
                .iter()
                .all(|s| matches!(s, 409 | 500 | 503)),
            "{id}: {attempts:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_at_once_and_each_event_is_processed_exactly_once() {
    let s = Arc::new(start().await);
    // Handlers failing, and the store failing the first three claims.
    let events = forty_events(&s.plan, 100);
    s.store
        .inject("begin", &[Fault::Fail, Fault::Fail, Fault::Hang]);
    let mut tasks = Vec::new();
    for (id, body) in events.clone() {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            (id, s.deliver_with_retries(&body).await)
        }));
    }
    assert_each_ends_in_200(tasks).await;
    for (id, body) in &events {
        assert_eq!(s.plan.processed(id), 1, "{id}");
        // And every late duplicate is acknowledged without running again.
        assert_eq!(s.deliver(body).await.0, 200);
        assert_eq!(s.plan.processed(id), 1, "{id}");
    }
    assert!(s.store.calls.load(Ordering::SeqCst) >= 80);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_at_once_across_two_replicas_sharing_redis_and_each_event_is_processed_once() {
    use kustomer_webhooks::dedupe::RedisStore;
    let Some(redis) = kustomer_webhooks_tests::redis_server::redis() else {
        return;
    };
    let prefix = format!("faults:{}:", std::process::id());
    let connect = || async {
        RedisStore::connect(&redis.url)
            .await
            .unwrap()
            .with_prefix(prefix.clone())
    };
    // Two replicas, each with its own connection to the one Redis, sharing
    // the handlers' record of what was processed.
    let plan = Shared::default();
    let one = Arc::new(start_replica(connect().await, plan.clone()).await);
    let other = Arc::new(start_replica(connect().await, plan.clone()).await);
    let events = forty_events(&plan, 200);
    // (A release that fails holds the claim for its timeout, which the
    // compressed schedule cannot wait out: that fault has its own test.)
    one.store.inject("begin", &[Fault::Fail, Fault::Hang]);
    other.store.inject("begin", &[Fault::Fail]);
    let mut tasks = Vec::new();
    for (n, (id, body)) in events.clone().into_iter().enumerate() {
        let (one, other) = (one.clone(), other.clone());
        tasks.push(tokio::spawn(async move {
            // Every other event first reaches the other replica; each retry
            // then reaches the replica the last attempt did not.
            let servers = if n % 2 == 0 {
                [&*one, &*other]
            } else {
                [&*other, &*one]
            };
            (id, deliver_with_retries_to(&servers, &body).await)
        }));
    }
    assert_each_ends_in_200(tasks).await;
    for (id, body) in &events {
        assert_eq!(plan.processed(id), 1, "{id}");
        // A late duplicate is acknowledged by either replica without
        // running again.
        for server in [&one, &other] {
            let (status, reply) = server.deliver(body).await;
            assert_eq!(
                (status, reply["outcome"].as_str()),
                (200, Some("duplicate"))
            );
        }
        assert_eq!(plan.processed(id), 1, "{id}");
    }
}

/// The `.json` files in `dir`, by name, with their contents.
fn files_in(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p.file_name().unwrap().to_str().unwrap().to_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_failing_past_every_retry_are_kept_as_dead_letters_and_replayed_once() {
    use kustomer_webhooks::dead_letters::DeadLetters;
    let dir = tempfile::TempDir::new().unwrap();
    let letters = DeadLetters::open(dir.path()).unwrap();
    let s = start_configured(MemoryStore::new(), Shared::default(), {
        let letters = letters.clone();
        |r| r.with_dead_letters(letters)
    })
    .await;
    // Each fault, lasting past Kustomer's hour of retries.
    let failing = [
        event("kustomer.team.create", 300),     // the handler fails
        event("kustomer.user.create", 301),     // it panics
        event("kustomer.user.update", 302),     // it runs past its time limit
        event("kustomer.customer.update", 303), // a blocking handler fails
    ];
    for (id, _) in &failing {
        s.plan.fail(id, 8);
    }
    let mut tasks = Vec::new();
    let s = Arc::new(s);
    for (_, body) in &failing {
        let (s, body) = (s.clone(), body.clone());
        tasks.push(tokio::spawn(
            async move { s.deliver_with_retries(&body).await },
        ));
    }
    for task in tasks {
        let attempts = task.await.unwrap();
        assert_eq!(attempts.len(), 8, "{attempts:?}");
        assert!(attempts.iter().all(|(s, _)| *s >= 500), "{attempts:?}");
    }
    // The store fails (alone: its faults go to the next claims made).
    let (store_id, store_body) = event("kustomer.team.update", 304);
    s.store.inject("begin", &[Fault::Fail; 8]);
    let attempts = s.deliver_with_retries(&store_body).await;
    assert_eq!(statuses(&attempts), [503; 8], "{attempts:?}");
    // What is not kept: a forgery, a body that is not an event, and an
    // event that was handled.
    let (forged_id, forged) = event("kustomer.team.update", 305);
    let res = s
        .client
        .post(format!("http://{}/", s.addr))
        .header("content-type", "application/json")
        .header("x-kustomer-webhook-signature", sign(b"wrong", &forged))
        .body(forged)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let malformed = b"{\"name\": \"kustomer.team.update\", \"data\": ";
    let res = s
        .client
        .post(format!("http://{}/", s.addr))
        .header("content-type", "application/json")
        .header(
            "x-kustomer-webhook-signature",
            sign(TOKEN.as_bytes(), malformed),
        )
        .body(&malformed[..])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    s.still_serving(300).await;

    // The directory holds each failed delivery, byte for byte as received.
    let kept = files_in(dir.path());
    let mut want: Vec<(String, Vec<u8>)> = failing
        .iter()
        .chain([&(store_id.clone(), store_body.clone())])
        .map(|(id, body)| (format!("{id}.json"), body.clone()))
        .collect();
    want.sort();
    assert_eq!(kept, want);
    assert!(!kept.iter().any(|(name, _)| name.starts_with(&forged_id)));
    assert_eq!(letters.pending(), 5);
    let counts = letters.counts();
    assert_eq!(
        counts.saved.load(Ordering::SeqCst),
        5 * 8,
        "every failed attempt"
    );
    assert_eq!(counts.failed.load(Ordering::SeqCst), 0);

    // The cause is fixed: replaying the directory processes each event once
    // and empties it.
    s.plan.failures.lock().unwrap().clear();
    for (name, body) in kept {
        let (status, reply) = s.deliver(&body).await;
        assert_eq!(
            (status, reply["outcome"].as_str()),
            (200, Some("handled")),
            "{name}"
        );
    }
    assert_eq!(files_in(dir.path()), []);
    assert_eq!(letters.pending(), 0);
    assert_eq!(counts.cleared.load(Ordering::SeqCst), 5);
    for (id, _) in failing.iter().chain([&(store_id, store_body)]) {
        assert_eq!(s.plan.processed(id), 1, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_handled_meanwhile_by_another_replica_is_a_duplicate_and_cleared() {
    use kustomer_webhooks::dead_letters::DeadLetters;
    let store = Arc::new(MemoryStore::new());
    let plan = Shared::default();
    let (dir_one, dir_other) = (
        tempfile::TempDir::new().unwrap(),
        tempfile::TempDir::new().unwrap(),
    );
    let one_letters = DeadLetters::open(dir_one.path()).unwrap();
    let one = start_configured(store.clone(), plan.clone(), {
        let letters = one_letters.clone();
        |r| r.with_dead_letters(letters)
    })
    .await;
    let other = start_configured(store, plan.clone(), |r| {
        r.with_dead_letters(DeadLetters::open(dir_other.path()).unwrap())
    })
    .await;
    let (id, body) = event("kustomer.team.create", 310);
    plan.fail(&id, 1);
    // The first attempt fails on one replica, the retry succeeds on the other.
    let attempts = deliver_with_retries_to(&[&one, &other], &body).await;
    assert_eq!(statuses(&attempts), [500, 200], "{attempts:?}");
    assert_eq!(files_in(dir_one.path()).len(), 1);
    assert_eq!(files_in(dir_other.path()), []);
    // A restart of the first replica still knows its dead letter.
    assert_eq!(DeadLetters::open(dir_one.path()).unwrap().pending(), 1);
    // Replayed to it, the event is a duplicate: acknowledged, not run again,
    // and its dead letter removed.
    let (status, reply) = one.deliver(&body).await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (200, Some("duplicate"))
    );
    assert_eq!(files_in(dir_one.path()), []);
    assert_eq!(one_letters.pending(), 0);
    assert_eq!(plan.processed(&id), 1);
}
