//! `RedisStore` against a real Redis: the store contract, expiry, two
//! replicas sharing one Redis behind real HTTP, a Redis that goes away,
//! Redis over TLS (with and without a client certificate), and a Redis
//! Cluster of three nodes (over TCP and over TLS, one node stopped), and a
//! primary and its replica behind a Redis Sentinel (over TCP and over TLS,
//! the store following the Sentinel through a failover it was asked for and
//! through one it made when the primary stopped); and the ordering guard's
//! revisions kept in Redis, shared, failing closed and failing open.
//!
//! Each test starts its own `redis-server` on a free loopback port (Debian's
//! `redis-server` package; `.ci/run` installs it), or uses the one at
//! `KUSTOMER_WEBHOOKS_TEST_REDIS_URL` when that is set (the TLS, cluster
//! and Sentinel tests always start their own, the cluster's with
//! `redis-cli`, the Sentinel with `redis-server --sentinel`). Without
//! either, the tests fail under CI (`CI` set) and are skipped with a message
//! elsewhere (`kustomer_webhooks_tests::redis_server`).

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kustomer_schema::SEED_SAMPLES;
use kustomer_webhooks::dedupe::{
    Begin, DEFAULT_REDIS_PREFIX, FAIL_OPEN_RETRY_AFTER, FailOpen, IdempotencyStore, MemoryStore,
    RedisStore, RevisionStore, SharedTurn, StoreError, check_revision_store, check_store,
};
use kustomer_webhooks::receiver::{Counters, Receiver};
use kustomer_webhooks::redis::{ClientTlsConfig, TlsCertificates};
use kustomer_webhooks::verify::{EVENT_HEADER, SIGNATURE_HEADER, Verifier, sign};
use kustomer_webhooks::{CustomerCreate, CustomerUpdate, Dispatcher, State};
use kustomer_webhooks_tests::TLS_DIR;
use kustomer_webhooks_tests::load::serve;
use kustomer_webhooks_tests::redis_server::{
    Listen, Redis, RedisCluster, RedisSentinel, SENTINEL_SERVICE, redis, redis_cluster,
    redis_sentinel, redis_tls,
};

const TOKEN: &str = "redis-t0ken";

/// A prefix of the test's own, so that tests sharing one external Redis do
/// not meet.
fn prefix(test: &str) -> String {
    format!("kustomer-webhooks-test:{test}:{}:", std::process::id())
}

async fn store(redis: &Redis, test: &str) -> RedisStore {
    RedisStore::connect(&redis.url)
        .await
        .unwrap()
        .with_prefix(prefix(test))
}

#[tokio::test]
async fn redis_store_keeps_the_store_contract() {
    let Some(redis) = redis() else { return };
    let store = store(&redis, "contract").await;
    check_store(&store).await.unwrap();
    // The ordering guard's side of it: revisions and shared turns.
    assert!(store.shares_turns());
    check_revision_store(&store).await.unwrap();
    // Failing open, while Redis is up, it is the same store.
    let open = FailOpen::new(store.clone());
    check_store(&open).await.unwrap();
    check_revision_store(&open).await.unwrap();
    // And as the receiver holds it.
    let boxed: Box<dyn IdempotencyStore> = Box::new(store.clone());
    check_store(boxed.as_ref()).await.unwrap();
    let boxed: Box<dyn RevisionStore> = Box::new(store);
    check_revision_store(boxed.as_ref()).await.unwrap();
}

#[tokio::test]
async fn a_claim_and_a_handled_id_end_after_their_times() {
    let Some(redis) = redis() else { return };
    // Times long enough that a stall of the machine between two calls does
    // not end them early, short enough for a test.
    let store = store(&redis, "expiry")
        .await
        .with_in_progress_timeout(Duration::from_secs(1))
        .with_retention(Duration::from_secs(1));
    assert_eq!(store.in_progress_timeout(), Duration::from_secs(1));
    assert_eq!(store.retention(), Duration::from_secs(1));

    // A claim nobody completes (the replica died mid-handler) ends.
    assert_eq!(store.begin("a").await.unwrap(), Begin::New);
    assert_eq!(store.begin("a").await.unwrap(), Begin::InProgress);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(store.begin("a").await.unwrap(), Begin::New);

    // A handled id is remembered for the retention time, then forgotten.
    store.complete("a").await.unwrap();
    assert_eq!(store.begin("a").await.unwrap(), Begin::Done);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(store.begin("a").await.unwrap(), Begin::New);
}

/// `Duration::MAX` means no end, as it does for `MemoryStore`: Redis
/// refuses a `PX` that overflows its clock, so the store sends a thousand
/// years instead, and every call works.
#[tokio::test]
async fn times_with_no_end_are_kept_for_as_good_as_ever() {
    let Some(redis) = redis() else { return };
    let store = store(&redis, "no-end")
        .await
        .with_in_progress_timeout(Duration::MAX)
        .with_retention(Duration::MAX);
    assert_eq!(store.begin("a").await.unwrap(), Begin::New);
    assert_eq!(store.begin("a").await.unwrap(), Begin::InProgress);
    store.complete("a").await.unwrap();
    assert_eq!(store.begin("a").await.unwrap(), Begin::Done);
    store.record_revision("r", 3).await.unwrap();
    assert_eq!(store.last_revision("r").await.unwrap(), Some(3));
    let ttl: i64 = raw(&redis, &["PTTL", &format!("{}a", prefix("no-end"))]).await;
    assert!(ttl > 100 * 365 * 24 * 3600 * 1000, "{ttl}");
}

#[tokio::test]
async fn two_replicas_share_claims_and_prefixes_keep_services_apart() {
    let Some(redis) = redis() else { return };
    let one = store(&redis, "replicas").await;
    let other = store(&redis, "replicas").await;
    assert_eq!(one.begin("e1").await.unwrap(), Begin::New);
    assert_eq!(other.begin("e1").await.unwrap(), Begin::InProgress);
    one.complete("e1").await.unwrap();
    assert_eq!(other.begin("e1").await.unwrap(), Begin::Done);
    // A late abandon of a handled id leaves it done.
    other.abandon("e1").await.unwrap();
    assert_eq!(one.begin("e1").await.unwrap(), Begin::Done);

    // Another service, with its own prefix, handles the same event too.
    let service = store(&redis, "another-service").await;
    assert_eq!(service.begin("e1").await.unwrap(), Begin::New);
    assert_eq!(
        RedisStore::connect(&redis.url).await.unwrap().prefix(),
        DEFAULT_REDIS_PREFIX
    );
}

#[tokio::test]
async fn a_key_holding_something_else_is_an_error_naming_it() {
    let Some(redis) = redis() else { return };
    let store = store(&redis, "foreign").await;
    // Another program wrote under the prefix.
    let key = format!("{}e2", prefix("foreign"));
    raw_set(&redis, &key, "something else").await;
    let err = store.begin("e2").await.unwrap_err();
    assert!(matches!(err, StoreError::Failed(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&key) && text.contains("\"something else\""),
        "{text}"
    );
}

/// A claim given up deletes only itself: not a claim of the same id made
/// since by another (its own expired), nor one an earlier version wrote.
#[tokio::test]
async fn giving_a_claim_up_deletes_that_claim_only() {
    let Some(redis) = redis() else { return };
    let one = store(&redis, "own-claims").await;
    let other = store(&redis, "own-claims").await;
    assert_eq!(one.begin("e3").await.unwrap(), Begin::New);
    let key = format!("{}e3", prefix("own-claims"));
    let held: String = raw(&redis, &["GET", &key]).await;
    assert!(held.starts_with("in-progress:"), "{held}");
    // Its key expired, and another replica claimed the id since.
    raw::<()>(&redis, &["DEL", &key]).await;
    assert_eq!(other.begin("e3").await.unwrap(), Begin::New);
    one.abandon("e3").await.unwrap();
    assert_eq!(one.begin("e3").await.unwrap(), Begin::InProgress);
    other.abandon("e3").await.unwrap();
    assert_eq!(one.begin("e3").await.unwrap(), Begin::New);
    one.complete("e3").await.unwrap();
    // A claim as earlier versions write it is a claim, and given up by id.
    raw_set(
        &redis,
        &format!("{}e4", prefix("own-claims")),
        "in-progress",
    )
    .await;
    assert_eq!(one.begin("e4").await.unwrap(), Begin::InProgress);
    one.abandon("e4").await.unwrap();
    assert_eq!(one.begin("e4").await.unwrap(), Begin::New);
}

/// No id's key is another's, a revision's or the probe's, whatever the ids.
#[tokio::test]
async fn odd_ids_keep_to_keys_of_their_own() {
    let Some(redis) = redis() else { return };
    let store = store(&redis, "odd-ids").await;
    // An event id that ends as a revision's key does, for resource `r1`.
    assert_eq!(store.begin("r1:rev").await.unwrap(), Begin::New);
    store.complete("r1:rev").await.unwrap();
    store.record_revision("r1", 4).await.unwrap();
    assert_eq!(store.last_revision("r1").await.unwrap(), Some(4));
    assert_eq!(store.begin("r1:rev").await.unwrap(), Begin::Done);
    // The probe's key, and an id that looks like an escaped one.
    store.ping().await.unwrap();
    for id in [":probe", "~3a70726f6265", "~"] {
        assert_eq!(store.begin(id).await.unwrap(), Begin::New, "{id}");
    }
    // A plain id keeps its plain key, as earlier versions wrote it.
    assert_eq!(
        store.begin("6087326fa8b1c7b07da5e5c0").await.unwrap(),
        Begin::New
    );
    let plain: String = raw(
        &redis,
        &[
            "GET",
            &format!("{}6087326fa8b1c7b07da5e5c0", prefix("odd-ids")),
        ],
    )
    .await;
    assert!(plain.starts_with("in-progress"), "{plain}");
}

/// A Redis that answers but refuses writes fails `ping` (a readiness
/// probe) as it fails claims: a user without the right to run scripts, a
/// full memory.
#[tokio::test]
async fn ping_fails_on_a_redis_that_answers_but_refuses_writes() {
    let Some(redis) = redis() else { return };
    let Some((_, port)) = redis.server else {
        return; // An external Redis is not the test's to reconfigure.
    };
    raw::<()>(
        &redis,
        &[
            "ACL", "SETUSER", "pinger", "on", ">pw", "~*", "+ping", "+hello", "+auth", "+select",
            "+client", "+info", "+get",
        ],
    )
    .await;
    let limited = RedisStore::connect_lazy(&format!("redis://pinger:pw@127.0.0.1:{port}/"))
        .unwrap()
        .with_prefix(prefix("refused"));
    let err = limited.ping().await.unwrap_err();
    assert!(matches!(err, StoreError::Failed(_)), "{err:?}");
    assert!(err.to_string().contains("refuses a write"), "{err}");
    assert!(limited.begin("e5").await.is_err());

    let store = store(&redis, "refused").await;
    store.ping().await.unwrap();
    raw::<()>(&redis, &["CONFIG", "SET", "maxmemory", "1"]).await;
    let err = store.ping().await.unwrap_err();
    raw::<()>(&redis, &["CONFIG", "SET", "maxmemory", "0"]).await;
    assert!(err.to_string().contains("refuses a write"), "{err}");
    store.ping().await.unwrap();
}

/// A claim whose answer came too late (a Redis paused longer than the
/// store waits) is given up once Redis answers, rather than holding the
/// event for the in-progress timeout.
/// Has the server stand still for `seconds` (`DEBUG SLEEP`), from a
/// connection of its own, in a task: what it answers once it goes on.
fn stand_still(
    redis: &Redis,
    seconds: &'static str,
) -> tokio::task::JoinHandle<redis::RedisResult<()>> {
    let redis_url = redis.url.clone();
    tokio::spawn(async move {
        let client = redis::Client::open(redis_url.as_str()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("DEBUG")
            .arg(&["SLEEP", seconds])
            .query_async::<()>(&mut connection)
            .await
    })
}

#[tokio::test]
async fn a_claim_answered_too_late_is_given_up() {
    let Some(redis) = redis() else { return };
    if redis.server.is_none() {
        return; // An external Redis is not the test's to pause.
    }
    let store = store(&redis, "late").await;
    // A first claim loads the script, as a delivery before would have.
    assert_eq!(store.begin("e5").await.unwrap(), Begin::New);
    // The server stands still for 0.8 s, the claim already sent: it is made
    // once the server goes on, after the store stopped waiting (500 ms).
    let sleeping = stand_still(&redis, "0.8");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = store.begin("e6").await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    // (The sleep's own client may stop waiting for its answer too.)
    let _ = sleeping.await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let exists: i64 = raw(&redis, &["EXISTS", &format!("{}e6", prefix("late"))]).await;
        if exists == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the late claim still holds e6");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(store.begin("e6").await.unwrap(), Begin::New);
}

/// A Redis that stands still for longer (a slow command, a save): the
/// claim it makes once it goes on is still given up, rather than holding
/// the event, and Kustomer's retries answered 409, for five minutes.
#[tokio::test]
async fn a_claim_answered_after_a_long_stall_is_given_up() {
    let Some(redis) = redis() else { return };
    if redis.server.is_none() {
        return; // An external Redis is not the test's to pause.
    }
    let store = store(&redis, "stall").await;
    assert_eq!(store.begin("s1").await.unwrap(), Begin::New);
    // Past the ten seconds of tries a claim was once given up within.
    let sleeping = stand_still(&redis, "11");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = store.begin("s2").await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let _ = sleeping.await.unwrap();
    let key = format!("{}s2", prefix("stall"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Unanswered while the server still stands still.
        if try_raw::<i64>(&redis, &["EXISTS", &key]).await == Ok(0) {
            break;
        }
        assert!(Instant::now() < deadline, "the late claim still holds s2");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(store.begin("s2").await.unwrap(), Begin::New);
}

/// `SET key value` on a connection of its own, as another program would.
async fn raw_set(redis: &Redis, key: &str, value: &str) {
    raw::<()>(redis, &["SET", key, value]).await;
}

/// A command on a connection of its own, as another program (or an
/// operator) would send it.
async fn raw<T: redis::FromRedisValue>(redis: &Redis, command: &[&str]) -> T {
    try_raw(redis, command).await.unwrap()
}

/// [`raw`], its connection's failure returned rather than failing the test:
/// for a server in the middle of a failover, which closes its clients'
/// connections (the Sentinel has it kill them once it is reconfigured).
async fn try_raw<T: redis::FromRedisValue>(
    redis: &Redis,
    command: &[&str],
) -> redis::RedisResult<T> {
    let client = if redis.url.starts_with("rediss://") {
        redis::Client::build_with_tls(redis.url.as_str(), certificates("ca.pem", true)).unwrap()
    } else {
        redis::Client::open(redis.url.as_str()).unwrap()
    };
    let mut connection = client.get_multiplexed_async_connection().await?;
    redis::cmd(command[0])
        .arg(&command[1..])
        .query_async::<T>(&mut connection)
        .await
}

/// A TCP proxy on loopback that connects each connection it accepts to the
/// port `target` holds at that moment: a DNS name that moves to another
/// server, while the connections already open stay where they were.
/// `accepted` counts the connections.
async fn moving_address(target: Arc<AtomicU16>, accepted: Count) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            accepted.fetch_add(1, Ordering::SeqCst);
            let to = target.load(Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn after_a_failover_the_store_connects_anew_to_the_new_primary() {
    let (Some(old), Some(new)) = (redis(), redis()) else {
        return;
    };
    let (Some((_, old_port)), Some((_, new_port))) = (&old.server, &new.server) else {
        return; // an external Redis cannot be failed over here
    };
    let (old_port, new_port) = (old_port.to_string(), new_port.to_string());
    // The store's address leads to the primary; the other server replicates it.
    let target = Arc::new(AtomicU16::new(old_port.parse().unwrap()));
    let accepted = Count::default();
    let address = moving_address(target.clone(), accepted.clone()).await;
    let store = RedisStore::connect(&format!("redis://127.0.0.1:{address}/"))
        .await
        .unwrap()
        .with_prefix(prefix("failover"));
    raw::<()>(&new, &["REPLICAOF", "127.0.0.1", &old_port]).await;
    assert_eq!(store.begin("before").await.unwrap(), Begin::New);
    store.complete("before").await.unwrap();
    let key = format!("{}before", prefix("failover"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while raw::<Option<String>>(&new, &["GET", &key]).await.is_none() {
        assert!(Instant::now() < deadline, "the replica never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The failover: the replica is promoted, the old primary demoted (its
    // connections stay open: it answers writes with READONLY).
    raw::<()>(&new, &["REPLICAOF", "NO", "ONE"]).await;
    raw::<()>(&old, &["REPLICAOF", "127.0.0.1", &new_port]).await;

    // While the address still leads to the demoted server, claims fail (the
    // receiver's 503), and the store connects anew at most once a second,
    // not once per delivery.
    let before = accepted.load(Ordering::SeqCst);
    for i in 0..20 {
        let err = store.begin(&format!("during-{i}")).await.unwrap_err();
        assert!(matches!(err, StoreError::Failed(_)), "{err:?}");
        assert!(err.to_string().contains("read only replica"), "{err}");
    }
    // (One, unless the machine stalls for a second or more in the loop.)
    let connected = accepted.load(Ordering::SeqCst) - before;
    assert!((1..=5).contains(&connected), "{connected} new connections");

    // Then the address leads to the new primary.
    target.store(new_port.parse().unwrap(), Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // The first claim after it meets READONLY, connects anew and is made on
    // the new primary, which knows what was handled before.
    assert_eq!(store.begin("after").await.unwrap(), Begin::New);
    store.complete("after").await.unwrap();
    assert_eq!(store.begin("before").await.unwrap(), Begin::Done);
    assert_eq!(
        raw::<Option<String>>(&new, &["GET", &format!("{}after", prefix("failover"))]).await,
        Some("done".to_owned())
    );
    // Clones of the store share the new connection.
    assert_eq!(store.clone().begin("after").await.unwrap(), Begin::Done);
}

type Count = Arc<AtomicUsize>;

async fn on_customer(_: CustomerCreate, runs: State<Count>) {
    runs.fetch_add(1, Ordering::SeqCst);
}

/// One replica of a service: a receiver over HTTP whose store is `store`.
async fn replica(
    store: impl IdempotencyStore + 'static,
    runs: &Count,
) -> (SocketAddr, Arc<Counters>) {
    let dispatcher = Dispatcher::with_state(runs.clone())
        .handler(on_customer)
        .build()
        .unwrap();
    let receiver = Receiver::new(dispatcher, Verifier::new(TOKEN))
        .with_store(store)
        .with_timeout(Duration::from_secs(2));
    let counters = receiver.counters();
    (
        serve(kustomer_webhooks::axum::router(receiver)).await,
        counters,
    )
}

async fn deliver(client: &reqwest::Client, addr: SocketAddr, body: &str) -> (u16, String) {
    let named: serde_json::Value = serde_json::from_str(body).unwrap();
    let res = client
        .post(format!("http://{addr}/"))
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, sign(TOKEN.as_bytes(), body.as_bytes()))
        .header(EVENT_HEADER, named["name"].as_str().unwrap())
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The seed sample of `kustomer.customer.create`, which the handler takes.
fn customer_create() -> &'static str {
    SEED_SAMPLES
        .iter()
        .find(|(e, _)| *e == "kustomer.customer.create")
        .unwrap()
        .1
}

#[tokio::test]
async fn a_retry_reaching_another_replica_is_a_duplicate_and_a_lost_redis_is_503_until_it_is_back()
{
    let Some(mut redis) = redis() else { return };
    let runs = Count::default();
    let (a, _) = replica(store(&redis, "http").await, &runs).await;
    let (b, b_counters) = replica(store(&redis, "http").await, &runs).await;
    let client = reqwest::Client::new();
    let body = customer_create();

    let (status, reply) = deliver(&client, a, body).await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("\"outcome\":\"handled\""), "{reply}");
    let (status, reply) = deliver(&client, b, body).await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("\"outcome\":\"duplicate\""), "{reply}");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(b_counters.duplicate.load(Ordering::SeqCst), 1);

    if redis.server.is_none() {
        return; // An external Redis is not the test's to stop.
    }
    // Redis goes away: a delivery gets 503 (Kustomer retries it later) and
    // its handler does not run; the replica keeps serving.
    redis.stop();
    let other = body.replace("608731c238e15ad7655f702a", "608731c238e15ad7655f7099");
    assert_ne!(other, body);
    let (status, reply) = deliver(&client, b, &other).await;
    assert_eq!(status, 503, "{reply}");
    assert!(reply.contains("idempotency store"), "{reply}");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(b_counters.failed.load(Ordering::SeqCst), 1);

    // Redis is back: Kustomer's retry (here every 100 ms) soon reaches a
    // replica that has reconnected, and the event is handled, once.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    let reply = loop {
        let (status, reply) = deliver(&client, a, &other).await;
        if status == 200 {
            break reply;
        }
        assert_eq!(status, 503, "{reply}");
        assert!(Instant::now() < deadline, "still {status} {reply}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(reply.contains("\"outcome\":\"handled\""), "{reply}");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    let (status, reply) = deliver(&client, b, &other).await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("\"outcome\":\"duplicate\""), "{reply}");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn failing_open_a_lost_redis_is_handled_in_memory_and_redis_learns_it_once_back() {
    let Some(mut redis) = redis() else { return };
    if redis.server.is_none() {
        return; // An external Redis is not the test's to stop.
    }
    let runs = Count::default();
    let shared = Arc::new(FailOpen::new(store(&redis, "fail-open").await));
    check_store(shared.as_ref()).await.unwrap();
    let (a, counters) = replica(shared.clone(), &runs).await;
    let client = reqwest::Client::new();
    let body = customer_create();

    // Redis goes away: the delivery is handled anyway, its id claimed in
    // the process, and a retry reaching the same replica is a duplicate.
    redis.stop();
    let (status, reply) = deliver(&client, a, body).await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("\"outcome\":\"handled\""), "{reply}");
    assert!(shared.is_down());
    assert_eq!(shared.claimed_in_memory(), 1);
    let (status, reply) = deliver(&client, a, body).await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("\"outcome\":\"duplicate\""), "{reply}");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(counters.failed.load(Ordering::SeqCst), 0);

    // Redis is back, empty (it keeps nothing on disk). Retries stay
    // duplicates while the store reconnects and after, and Redis learns
    // that the event was handled.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    while shared.is_down() {
        assert!(Instant::now() < deadline, "the store never answered again");
        tokio::time::sleep(FAIL_OPEN_RETRY_AFTER).await;
        let (status, reply) = deliver(&client, a, body).await;
        assert_eq!(status, 200, "{reply}");
        assert!(reply.contains("\"outcome\":\"duplicate\""), "{reply}");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let key = format!("{}608731c238e15ad7655f702a", prefix("fail-open"));
    assert_eq!(
        raw::<Option<String>>(&redis, &["GET", &key]).await,
        Some("done".to_owned())
    );
    // So another replica, failing closed, knows it too.
    let (b, _) = replica(store(&redis, "fail-open").await, &runs).await;
    let (status, reply) = deliver(&client, b, body).await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("\"outcome\":\"duplicate\""), "{reply}");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_lazy_store_is_made_while_redis_is_down_and_used_once_it_is_up() {
    let Some(mut redis) = redis() else { return };
    if redis.server.is_none() {
        return; // An external Redis is not the test's to stop.
    }
    redis.stop();
    let store = RedisStore::connect_lazy(&redis.url)
        .unwrap()
        .with_prefix(prefix("lazy"));
    let err = store.begin("l0").await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    // Failing open, a service made now serves meanwhile.
    let open = FailOpen::new(store.clone());
    assert_eq!(open.begin("l1").await.unwrap(), Begin::New);
    open.complete("l1").await.unwrap();
    assert!(open.is_down());

    // Redis starts: a later call connects.
    redis.restart();
    for err in claim_until_new(&store, "l2").await {
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }
    check_store(&store).await.unwrap();
    // And the store learns what was handled while it was down.
    until_back(&open, "l1").await;
    assert_eq!(
        raw::<Option<String>>(&redis, &["GET", &format!("{}l1", prefix("lazy"))]).await,
        Some("done".to_owned())
    );
}

#[tokio::test]
async fn ping_tells_a_redis_down_for_now_from_one_that_refuses_the_settings() {
    let Some(mut redis) = redis() else { return };
    let store = store(&redis, "ping").await;
    store.ping().await.unwrap();
    let Some((_, port)) = redis.server else {
        return; // An external Redis is not the test's to stop.
    };
    // A password this Redis does not have: refused, not down.
    let wrong = RedisStore::connect_lazy(&format!("redis://:s3cret@127.0.0.1:{port}/")).unwrap();
    let err = wrong.ping().await.unwrap_err();
    assert!(matches!(err, StoreError::Failed(_)), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("s3cret"), "{err:?}");
    // Down: unavailable, for the store made lazily and for the one that
    // was connected.
    redis.stop();
    let lazy = RedisStore::connect_lazy(&redis.url).unwrap();
    for store in [&lazy, &store] {
        let err = store.ping().await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }
}

#[tokio::test]
async fn a_lazy_cluster_store_is_made_while_every_node_is_down_and_used_once_they_are_up() {
    let Some(mut cluster) = redis_cluster(Listen::Tcp) else {
        return;
    };
    for node in 0..3 {
        cluster.stop(node);
    }
    let store = RedisStore::connect_cluster_lazy(&cluster.urls)
        .unwrap()
        .with_prefix(prefix("lazy-cluster"));
    // Calls fail as unavailable, at the same time too, without hanging.
    let calls = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.begin(&format!("lc-{i}")).await })
    });
    for call in calls {
        let err = tokio::time::timeout(Duration::from_secs(20), call)
            .await
            .expect("a call to a lazy cluster store hung")
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }
    let err = store.ping().await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    // Failing open, a service made now serves meanwhile.
    let open = FailOpen::new(store.clone());
    assert_eq!(open.begin("lc-open").await.unwrap(), Begin::New);
    open.complete("lc-open").await.unwrap();

    // The nodes come back (the cluster down until every slot is served
    // again, which is unavailable too); a later call connects.
    for node in 0..3 {
        cluster.restart(node);
    }
    for err in claim_until_new(&store, "lc-up").await {
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }
    // A ping asks every primary, some of which may take a moment more.
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Err(err) = store.ping().await {
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(Instant::now() < deadline, "still {err:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check_store(&store).await.unwrap();
    until_back(&open, "lc-open").await;
    assert_eq!(store.begin("lc-open").await.unwrap(), Begin::Done);
}

/// Waits until `open` finds its store answering again (a panic after
/// 20 s), `id`, handled while the store was down, a duplicate all along.
async fn until_back(open: &FailOpen<RedisStore>, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while open.is_down() {
        assert!(Instant::now() < deadline, "the store never answered again");
        tokio::time::sleep(FAIL_OPEN_RETRY_AFTER).await;
        assert_eq!(open.begin(id).await.unwrap(), Begin::Done);
    }
}

#[tokio::test]
async fn revisions_are_shared_the_higher_kept_and_forgotten_after_the_retention() {
    let Some(redis) = redis() else { return };
    let one = store(&redis, "revisions").await;
    let other = store(&redis, "revisions").await;
    let customer = "608731c238e15a90895f7029";
    assert_eq!(one.last_revision(customer).await.unwrap(), None);
    one.record_revision(customer, 3).await.unwrap();
    assert_eq!(other.last_revision(customer).await.unwrap(), Some(3));
    // A lower revision recorded late leaves the higher one.
    other.record_revision(customer, 2).await.unwrap();
    assert_eq!(one.last_revision(customer).await.unwrap(), Some(3));
    // Concurrent records from two replicas, in any order: the highest stays.
    let mut records = tokio::task::JoinSet::new();
    for rev in 1..=40 {
        let store = if rev % 2 == 0 {
            one.clone()
        } else {
            other.clone()
        };
        // 1 to 40, shuffled (41 is prime).
        records.spawn(async move { store.record_revision("racing", (rev * 7) % 41).await });
    }
    while let Some(recorded) = records.join_next().await {
        recorded.unwrap().unwrap();
    }
    assert_eq!(one.last_revision("racing").await.unwrap(), Some(40));
    // Kept beside the event ids, under the prefix; another service's
    // prefix keeps its own.
    let key = format!("{}{customer}:rev", prefix("revisions"));
    assert_eq!(
        raw::<Option<String>>(&redis, &["GET", &key]).await,
        Some("3".to_owned())
    );
    let service = store(&redis, "another-service-revisions").await;
    assert_eq!(service.last_revision(customer).await.unwrap(), None);
    // What another program wrote there is an error naming the key.
    raw_set(&redis, &key, "three").await;
    let err = one.last_revision(customer).await.unwrap_err();
    assert!(matches!(err, StoreError::Failed(_)), "{err:?}");
    assert!(
        err.to_string().contains(&key) && err.to_string().contains("\"three\""),
        "{err}"
    );
    // Remembered for the retention time.
    let brief = store(&redis, "revisions-brief")
        .await
        .with_retention(Duration::from_secs(1));
    brief.record_revision(customer, 5).await.unwrap();
    assert_eq!(brief.last_revision(customer).await.unwrap(), Some(5));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(brief.last_revision(customer).await.unwrap(), None);
}

/// A customer update with its own event id and `data.attributes.rev`.
fn customer_update(id: &str, rev: i64) -> String {
    let (_, sample) = SEED_SAMPLES
        .iter()
        .find(|(e, _)| *e == "kustomer.customer.update")
        .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(sample).unwrap();
    v["id"] = id.into();
    v["data"]["attributes"]["rev"] = rev.into();
    v.to_string()
}

#[tokio::test]
async fn a_resources_turn_is_shared_taken_once_given_back_by_token_and_ends_with_its_hold() {
    let Some(redis) = redis() else { return };
    let one = store(&redis, "turns").await;
    let other = store(&redis, "turns").await;
    let resource = "608731c238e15a90895f7029";
    let token = taken(&one, resource, Duration::from_secs(30)).await;
    assert_eq!(
        other
            .take_turn(resource, Duration::from_secs(30))
            .await
            .unwrap(),
        SharedTurn::Busy
    );
    // Another resource's turn is its own.
    assert!(matches!(
        other
            .take_turn("another", Duration::from_secs(30))
            .await
            .unwrap(),
        SharedTurn::Taken(_)
    ));
    // Given back with another token, it stays taken; with its own, it is free.
    other
        .give_turn(resource, "turn:not-this-one")
        .await
        .unwrap();
    assert_eq!(
        other
            .take_turn(resource, Duration::from_secs(30))
            .await
            .unwrap(),
        SharedTurn::Busy
    );
    one.give_turn(resource, &token).await.unwrap();
    let token = taken(&other, resource, Duration::from_millis(300)).await;
    assert!(token.starts_with("turn:"), "{token}");
    // Not given back (a process that died holding it), it ends with its hold.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match one
            .take_turn(resource, Duration::from_secs(30))
            .await
            .unwrap()
        {
            SharedTurn::Taken(_) => break,
            SharedTurn::Busy => {}
            SharedTurn::InProcess => panic!("Redis shares its turns"),
        }
        assert!(Instant::now() < deadline, "the turn never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Under the prefix, beside the revisions.
    let key = format!("{}{resource}:turn", prefix("turns"));
    assert_eq!(raw::<i64>(&redis, &["EXISTS", &key]).await, 1);
}

/// A turn `store` takes of `resource`, free (the test's to know): its token.
async fn taken(store: &RedisStore, resource: &str, hold: Duration) -> String {
    match store.take_turn(resource, hold).await.unwrap() {
        SharedTurn::Taken(token) => token,
        other => panic!("{resource}'s turn is free, yet: {other:?}"),
    }
}

/// A gate an update's handler waits at, per revision.
#[derive(Default)]
struct Gate {
    /// The revisions whose handler started, in order.
    started: std::sync::Mutex<Vec<i64>>,
    open: tokio::sync::Notify,
    opened: std::sync::atomic::AtomicBool,
}

async fn on_gated_update(event: CustomerUpdate, gate: State<Arc<Gate>>) {
    let rev = event.data.attributes.rev.unwrap_or_default();
    gate.started.lock().unwrap().push(rev);
    while !gate.opened.load(Ordering::SeqCst) {
        let opened = gate.open.notified();
        if gate.opened.load(Ordering::SeqCst) {
            break;
        }
        opened.await;
    }
}

async fn gated_replica(
    redis: &Redis,
    test: &str,
    gate: &Arc<Gate>,
    timeout: Duration,
) -> SocketAddr {
    let dispatcher = Dispatcher::with_state(gate.clone())
        .handler(on_gated_update)
        .build()
        .unwrap();
    let receiver = Receiver::new(dispatcher, Verifier::new(TOKEN))
        .with_store(store(redis, &format!("{test}-ids")).await)
        .with_ordering(store(redis, test).await)
        .with_timeout(timeout);
    serve(kustomer_webhooks::axum::router(receiver)).await
}

#[tokio::test]
async fn an_older_update_on_another_replica_waits_for_the_newer_ones_turn_then_is_stale() {
    let Some(redis) = redis() else { return };
    let gate = Arc::new(Gate::default());
    let a = gated_replica(&redis, "turns-taken", &gate, Duration::from_secs(10)).await;
    let b = gated_replica(&redis, "turns-taken", &gate, Duration::from_secs(10)).await;
    let client = reqwest::Client::new();
    // Revision 6 reaches replica A, and its handler holds the resource.
    let newer = tokio::spawn({
        let client = client.clone();
        async move { deliver(&client, a, &customer_update("6a1f00000000000000000606", 6)).await }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while gate.started.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the handler never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Revision 5 reaches replica B meanwhile: it waits for the turn (its
    // check would otherwise pass, 6 not being recorded yet).
    let older = tokio::spawn({
        let client = client.clone();
        async move { deliver(&client, b, &customer_update("6a1f00000000000000000505", 5)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!older.is_finished(), "the older update did not wait");
    assert_eq!(*gate.started.lock().unwrap(), [6]);
    gate.opened.store(true, Ordering::SeqCst);
    gate.open.notify_waiters();
    let (status, reply) = newer.await.unwrap();
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("\"outcome\":\"handled\""), "{reply}");
    let (status, reply) = older.await.unwrap();
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("\"outcome\":\"stale\""), "{reply}");
    assert_eq!(*gate.started.lock().unwrap(), [6]);
}

#[tokio::test]
async fn a_turn_another_replica_holds_past_the_time_limit_is_503_then_the_retry_is_handled() {
    let Some(redis) = redis() else { return };
    let gate = Arc::new(Gate::default());
    gate.opened.store(true, Ordering::SeqCst);
    let a = gated_replica(&redis, "turns-held", &gate, Duration::from_millis(500)).await;
    // Another replica holds the customer's turn (as one stuck would).
    let holder = store(&redis, "turns-held").await;
    let customer = "608731c238e15a90895f7029";
    let token = taken(&holder, customer, Duration::from_secs(60)).await;
    let client = reqwest::Client::new();
    let body = customer_update("6a1f00000000000000000707", 7);
    let (status, reply) = deliver(&client, a, &body).await;
    assert_eq!(status, 503, "{reply}");
    assert!(reply.contains("was still being handled"), "{reply}");
    assert!(gate.started.lock().unwrap().is_empty());
    // Given back, the retry is handled (once its claim, given up by a task
    // of its own, is free: 409 until then).
    holder.give_turn(customer, &token).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let reply = loop {
        let (status, reply) = deliver(&client, a, &body).await;
        if status != 409 {
            assert_eq!(status, 200, "{reply}");
            break reply;
        }
        assert!(Instant::now() < deadline, "the claim was never given up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(reply.contains("\"outcome\":\"handled\""), "{reply}");
    assert_eq!(*gate.started.lock().unwrap(), [7]);
    // And given back once handled: the next event takes it at once.
    assert!(matches!(
        holder
            .take_turn(customer, Duration::from_secs(60))
            .await
            .unwrap(),
        SharedTurn::Taken(_)
    ));
}

#[tokio::test]
async fn a_turn_answered_too_late_is_given_back() {
    let Some(redis) = redis() else { return };
    if redis.server.is_none() {
        return; // An external Redis is not the test's to pause.
    }
    let store = store(&redis, "late-turn").await;
    let hold = Duration::from_secs(60);
    // The server stands still for 0.8 s, the turn already asked for: it is
    // set once the server goes on, after the store stopped waiting (500 ms).
    let sleeping = stand_still(&redis, "0.8");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = store.take_turn("r7", hold).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let _ = sleeping.await.unwrap();
    // Given back well before its hold of a minute ends.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let exists: i64 = raw(
            &redis,
            &["EXISTS", &format!("{}r7:turn", prefix("late-turn"))],
        )
        .await;
        if exists == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the late turn still holds r7");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(matches!(
        store.take_turn("r7", hold).await.unwrap(),
        SharedTurn::Taken(_)
    ));
}

#[tokio::test]
async fn a_turn_redis_was_out_of_reach_to_take_back_is_given_back_once_it_answers() {
    let Some(mut redis) = redis() else { return };
    if redis.server.is_none() {
        return; // An external Redis is not the test's to stop.
    }
    let store = store(&redis, "turn-back-later").await;
    let token = taken(&store, "r8", Duration::from_secs(120)).await;
    redis.stop();
    let err = store.give_turn("r8", &token).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    // Redis comes back still holding the turn (as one that keeps its data
    // on disk would; this one starts empty, so the key is written again),
    // after the first tries to give it back found nothing listening.
    tokio::time::sleep(Duration::from_secs(3)).await;
    redis.restart();
    let key = format!("{}r8:turn", prefix("turn-back-later"));
    let _: () = raw(&redis, &["SET", &key, &token, "PX", "120000"]).await;
    // Given back by a later try, long before its hold of two minutes ends.
    let deadline = Instant::now() + Duration::from_secs(40);
    while raw::<i64>(&redis, &["EXISTS", &key]).await == 1 {
        assert!(Instant::now() < deadline, "the turn was never given back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn revisions_past_two_to_the_53_and_below_zero_are_compared_exactly() {
    let Some(redis) = redis() else { return };
    let store = store(&redis, "big-revisions").await;
    for (first, then, kept) in [
        (1 << 53, (1 << 53) + 1, (1 << 53) + 1),
        ((1 << 53) + 1, 1 << 53, (1 << 53) + 1),
        (i64::MAX - 1, i64::MAX, i64::MAX),
        (i64::MAX, i64::MAX - 1, i64::MAX),
        (9, 10, 10),
        (10, 9, 10),
        (-5, -3, -3),
        (-3, -5, -3),
        (-1, 0, 0),
        (0, -1, 0),
        (i64::MIN, i64::MIN + 1, i64::MIN + 1),
    ] {
        let resource = format!("r{first}-{then}");
        store.record_revision(&resource, first).await.unwrap();
        store.record_revision(&resource, then).await.unwrap();
        assert_eq!(
            store.last_revision(&resource).await.unwrap(),
            Some(kept),
            "{first} then {then}"
        );
    }
}

#[tokio::test]
async fn a_revision_store_that_fails_before_the_handler_is_503_and_the_retry_is_handled() {
    let Some(mut redis) = redis() else { return };
    if redis.server.is_none() {
        return; // An external Redis is not the test's to stop.
    }
    // The guard asks the revision store about updates only.
    async fn on_update(_: CustomerUpdate, runs: State<Count>) {
        runs.fetch_add(1, Ordering::SeqCst);
    }
    let runs = Count::default();
    let dispatcher = Dispatcher::with_state(runs.clone())
        .handler(on_update)
        .build()
        .unwrap();
    let revisions = store(&redis, "revisions-503").await;
    let receiver = Receiver::new(dispatcher, Verifier::new(TOKEN))
        .with_store(MemoryStore::new())
        .with_ordering(revisions)
        .with_timeout(Duration::from_secs(2));
    let a = serve(kustomer_webhooks::axum::router(receiver)).await;
    let client = reqwest::Client::new();
    let update = |id: &str| {
        let (_, sample) = SEED_SAMPLES
            .iter()
            .find(|(e, _)| *e == "kustomer.customer.update")
            .unwrap();
        let mut v: serde_json::Value = serde_json::from_str(sample).unwrap();
        v["id"] = id.into();
        v.to_string()
    };
    let body = &update("608731c238e15ad7655f702a");

    redis.stop();
    let (status, reply) = deliver(&client, a, body).await;
    assert_eq!(status, 503, "{reply}");
    assert!(
        reply.contains("the ordering guard's revision store is unavailable"),
        "{reply}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0);

    // Back: the retry is handled (its claim was given up), and the same
    // revision in another event is stale.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, reply) = deliver(&client, a, body).await;
        if status == 200 {
            assert!(reply.contains("\"outcome\":\"handled\""), "{reply}");
            break;
        }
        assert_eq!(status, 503, "{reply}");
        assert!(Instant::now() < deadline, "never handled: {reply}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let again = update("608731c238e15ad7655f7000");
    let (status, reply) = deliver(&client, a, &again).await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("\"outcome\":\"stale\""), "{reply}");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn failing_open_revisions_are_kept_in_the_process_and_redis_learns_them_once_back() {
    let Some(mut redis) = redis() else { return };
    if redis.server.is_none() {
        return; // An external Redis is not the test's to stop.
    }
    let open = FailOpen::new(store(&redis, "revisions-open").await);
    let customer = "608731c238e15a90895f7029";
    open.record_revision(customer, 3).await.unwrap();

    redis.stop();
    assert_eq!(open.last_revision(customer).await.unwrap(), Some(3));
    assert!(open.is_down());
    open.record_revision(customer, 4).await.unwrap();
    assert_eq!(open.last_revision(customer).await.unwrap(), Some(4));
    // Another resource's, which this process is not asked about again.
    let team = "608732b0a8b1c7b07da5e5c8";
    open.record_revision(team, 7).await.unwrap();

    // Back, empty: the process's revision counts, and Redis learns it.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    while open.is_down() {
        assert!(Instant::now() < deadline, "the store never answered again");
        tokio::time::sleep(FAIL_OPEN_RETRY_AFTER).await;
        assert_eq!(open.last_revision(customer).await.unwrap(), Some(4));
    }
    let key = format!("{}{customer}:rev", prefix("revisions-open"));
    assert_eq!(
        raw::<Option<String>>(&redis, &["GET", &key]).await,
        Some("4".to_owned())
    );
    let other = store(&redis, "revisions-open").await;
    assert_eq!(other.last_revision(customer).await.unwrap(), Some(4));
    // Redis learnt the other resource's too, for the other replicas.
    assert_eq!(other.last_revision(team).await.unwrap(), Some(7));
}

#[tokio::test]
async fn the_first_call_after_redis_restarted_is_answered_not_refused() {
    let Some(mut redis) = redis() else { return };
    if redis.server.is_none() {
        return; // An external Redis is not the test's to stop.
    }
    let store = store(&redis, "restarted").await;
    assert_eq!(store.begin("before").await.unwrap(), Begin::New);
    // Restarted while the store was idle: its connection is dead, which it
    // learns on its next call.
    redis.stop();
    redis.restart();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(store.begin("after").await.unwrap(), Begin::New);
    store.complete("after").await.unwrap();
}

/// A Redis that refused the store's connection setup for a while (its
/// password changed, then changed back) is connected to anew once it takes
/// it again: the client alone would answer every later call with the old
/// refusal, for good.
#[tokio::test]
async fn a_refused_connection_setup_is_tried_anew_once_redis_takes_it() {
    let Some(redis) = redis() else { return };
    if redis.server.is_none() {
        return; // An external Redis's password is not the test's to change.
    }
    let with = |password: &str, args: &[&str]| {
        let mut all = vec!["-a", password, "--no-auth-warning"];
        all.extend_from_slice(args);
        redis.cli(&all)
    };
    redis.cli(&["CONFIG", "SET", "requirepass", "first-pw"]);
    let url = redis.url.replacen("redis://", "redis://:first-pw@", 1);
    let store = RedisStore::connect(&url)
        .await
        .unwrap()
        .with_prefix(prefix("refused-setup"));
    assert_eq!(store.begin("before").await.unwrap(), Begin::New);
    // The password changes and the store's connection is closed: its next
    // call connects anew and is refused.
    with("first-pw", &["CONFIG", "SET", "requirepass", "second-pw"]);
    with("second-pw", &["CLIENT", "KILL", "TYPE", "normal"]);
    let refused = store.begin("during").await.unwrap_err();
    assert!(!refused.to_string().contains("first-pw"), "{refused}");
    // Changed back: a later call is answered.
    with("second-pw", &["CONFIG", "SET", "requirepass", "first-pw"]);
    let began = Instant::now();
    let answer = loop {
        match store.begin("after").await {
            Ok(answer) => break answer,
            Err(_) if began.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("still refused: {e}"),
        }
    };
    assert_eq!(answer, Begin::New);
    with("first-pw", &["CONFIG", "SET", "requirepass", ""]);
}

/// A connection whose other end went silent (a Redis host gone without a
/// word, a flow a firewall dropped) never closes by itself: once it has
/// taken no answer in time for five seconds, the store connects anew, and
/// later calls are answered over the new connection. (A primary slow for a
/// moment keeps its connection: `a_primary_slow_for_a_moment_…`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_gone_silent_is_replaced() {
    use std::sync::atomic::AtomicU64;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(redis) = redis() else { return };
    let Some((_, port)) = redis.server.as_ref() else {
        return;
    };
    let port = *port;
    // A proxy in front of Redis whose connections opened before `cut` was
    // raised stop passing what the client sends.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap();
    let cut = Arc::new(AtomicU64::new(0));
    let opened = Arc::new(AtomicU64::new(0));
    {
        let (cut, opened) = (Arc::clone(&cut), Arc::clone(&opened));
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let number = opened.fetch_add(1, Ordering::SeqCst);
                let cut = Arc::clone(&cut);
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await
                    else {
                        return;
                    };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                    });
                    let mut buffer = vec![0; 16 * 1024];
                    loop {
                        let n = match client_read.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        // Gone silent: what the client sends is dropped.
                        if number < cut.load(Ordering::SeqCst) {
                            continue;
                        }
                        if server_write.write_all(&buffer[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
    }
    let store = RedisStore::connect(&format!("redis://{proxy}/"))
        .await
        .unwrap()
        .with_prefix(prefix("silent"));
    assert_eq!(store.begin("before").await.unwrap(), Begin::New);
    // Every connection open now goes silent; new ones pass.
    cut.store(opened.load(Ordering::SeqCst), Ordering::SeqCst);
    let silent = store.begin("during").await.unwrap_err();
    assert!(matches!(silent, StoreError::Unavailable(_)), "{silent:?}");
    let began = Instant::now();
    let answer = loop {
        match store.begin("after").await {
            Ok(answer) => break answer,
            Err(_) if began.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("still no answer: {e}"),
        }
    };
    assert_eq!(answer, Begin::New);
    assert!(opened.load(Ordering::SeqCst) > cut.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_rediss_url_to_a_redis_without_tls_says_what_to_check() {
    let Some(redis) = redis() else { return };
    let Some(rest) = redis.url.strip_prefix("redis://") else {
        return;
    };
    // The handshake is read as the start of a command: no answer comes.
    let err = RedisStore::connect(&format!("rediss://{rest}"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("a Redis that does not speak TLS never answers the handshake"),
        "{err}"
    );
}

#[test]
fn a_lazy_store_needs_a_tokio_runtime() {
    let err = RedisStore::connect_lazy("redis://127.0.0.1:9/").unwrap_err();
    assert!(matches!(err, StoreError::Failed(_)), "{err:?}");
    assert!(err.to_string().contains("Tokio runtime"), "{err}");
}

#[tokio::test]
async fn connecting_fails_with_a_typed_error_that_keeps_the_password_out() {
    // Nothing listens on the port a just-closed listener had.
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let err = RedisStore::connect(&format!("redis://:s3cret@127.0.0.1:{port}/"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("s3cret"), "{err:?}");

    // Not a Redis URL.
    let err = RedisStore::connect("http://:s3cret@example.com/")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Failed(_)), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("s3cret"), "{err:?}");

    // Over TLS, to the same closed port.
    let err = RedisStore::connect(&format!("rediss://:s3cret@127.0.0.1:{port}/"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("s3cret"), "{err:?}");
}

/// The test authority's certificate, and the client's when given.
fn certificates(authority: &str, client: bool) -> TlsCertificates {
    let read = |file: &str| std::fs::read(format!("{TLS_DIR}/{file}")).unwrap();
    TlsCertificates {
        root_cert: Some(read(authority)),
        client_tls: client.then(|| ClientTlsConfig {
            client_cert: read("client.pem"),
            client_key: read("client.key"),
        }),
    }
}

#[tokio::test]
async fn over_tls_the_store_keeps_its_contract() {
    let Some(redis) = redis_tls(false) else {
        return;
    };
    assert!(
        redis.url.starts_with("rediss://127.0.0.1:"),
        "{}",
        redis.url
    );
    let store = RedisStore::connect_tls(&redis.url, certificates("ca.pem", false))
        .await
        .unwrap()
        .with_prefix(prefix("tls"));
    check_store(&store).await.unwrap();

    // A second replica over its own TLS connection sees the first's claims.
    let other = RedisStore::connect_tls(&redis.url, certificates("ca.pem", false))
        .await
        .unwrap()
        .with_prefix(prefix("tls"));
    assert_eq!(store.begin("t1").await.unwrap(), Begin::New);
    assert_eq!(other.begin("t1").await.unwrap(), Begin::InProgress);
    store.complete("t1").await.unwrap();
    assert_eq!(other.begin("t1").await.unwrap(), Begin::Done);
}

#[tokio::test]
async fn a_server_asking_for_a_client_certificate_gets_the_one_given() {
    let Some(redis) = redis_tls(true) else { return };
    let store = RedisStore::connect_tls(&redis.url, certificates("ca.pem", true))
        .await
        .unwrap()
        .with_prefix(prefix("mtls"));
    check_store(&store).await.unwrap();

    // Without one, the server ends the connection: no store, no panic.
    let err = match RedisStore::connect_tls(&redis.url, certificates("ca.pem", false)).await {
        Ok(store) => store.begin("t2").await.unwrap_err(),
        Err(err) => err,
    };
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn a_server_certificate_no_trusted_authority_issued_is_refused() {
    let Some(redis) = redis_tls(false) else {
        return;
    };
    // Another authority than the one that issued the server's certificate.
    let err = RedisStore::connect_tls(&redis.url, certificates("other-ca.pem", false))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("certificate"), "{err}");
    // The system's roots, which do not hold the test authority.
    let err = RedisStore::connect(&redis.url).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn tls_settings_that_cannot_be_used_are_typed_errors() {
    // Checked before any connection is tried: no server needed.
    let unused = "rediss://:s3cret@127.0.0.1:9/";
    let err = RedisStore::connect_tls(
        "redis://:s3cret@127.0.0.1:9/",
        certificates("ca.pem", false),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::Failed(_)), "{err:?}");
    assert!(err.to_string().contains("rediss://"), "{err}");
    assert!(!format!("{err} {err:?}").contains("s3cret"), "{err:?}");

    let not_pem = TlsCertificates {
        root_cert: Some(b"not a certificate".to_vec()),
        client_tls: None,
    };
    let err = RedisStore::connect_tls(unused, not_pem).await.unwrap_err();
    assert!(matches!(err, StoreError::Failed(_)), "{err:?}");
    assert!(
        err.to_string().contains("root_cert holds no certificate"),
        "{err}"
    );
    // A key where the certificate should be.
    let key_as_roots = TlsCertificates {
        root_cert: Some(std::fs::read(format!("{TLS_DIR}/client.key")).unwrap()),
        client_tls: None,
    };
    let err = RedisStore::connect_tls(unused, key_as_roots)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("root_cert holds no certificate"),
        "{err}"
    );

    // A certificate where the key should be, a key block that is no key, and
    // the key of another certificate.
    for key in [
        std::fs::read(format!("{TLS_DIR}/client.pem")).unwrap(),
        std::fs::read(format!("{TLS_DIR}/server.key")).unwrap(),
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_vec(),
    ] {
        let mut bad_key = certificates("ca.pem", true);
        if let Some(client) = &mut bad_key.client_tls {
            client.client_key = key;
        }
        let err = RedisStore::connect_tls(unused, bad_key).await.unwrap_err();
        assert!(matches!(err, StoreError::Failed(_)), "{err:?}");
        assert!(err.to_string().contains("client_key"), "{err}");
        assert!(!format!("{err} {err:?}").contains("s3cret"), "{err:?}");
    }
}

#[tokio::test]
async fn debug_shows_the_settings_not_the_connection() {
    let Some(redis) = redis() else { return };
    let store = RedisStore::connect(&redis.url).await.unwrap();
    // Nothing of the connection (whose URL may hold a password) is printed.
    assert_eq!(
        format!("{store:?}"),
        "RedisStore { prefix: \"kustomer-webhooks:event:\", retention: 4500s, \
         in_progress_timeout: 300s, .. }"
    );
}

/// How many keys each of `cluster`'s nodes holds.
async fn keys_per_node(cluster: &RedisCluster) -> Vec<i64> {
    let mut counts = Vec::new();
    for url in &cluster.urls {
        let client = if url.starts_with("rediss://") {
            redis::Client::build_with_tls(url.as_str(), certificates("ca.pem", true)).unwrap()
        } else {
            redis::Client::open(url.as_str()).unwrap()
        };
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        counts.push(
            redis::cmd("DBSIZE")
                .query_async::<i64>(&mut connection)
                .await
                .unwrap(),
        );
    }
    counts
}

/// Two stores on `cluster` share the claims of 60 ids, whose keys land on
/// every node.
async fn assert_shared_across_the_nodes(
    cluster: &RedisCluster,
    one: RedisStore,
    other: RedisStore,
) {
    check_store(&one).await.unwrap();
    check_revision_store(&one).await.unwrap();
    for i in 0..60 {
        let id = format!("cluster-event-{i}");
        assert_eq!(one.begin(&id).await.unwrap(), Begin::New, "{id}");
        assert_eq!(other.begin(&id).await.unwrap(), Begin::InProgress, "{id}");
        one.complete(&id).await.unwrap();
        assert_eq!(other.begin(&id).await.unwrap(), Begin::Done, "{id}");
    }
    let counts = keys_per_node(cluster).await;
    assert!(counts.iter().all(|&n| n > 0), "keys per node: {counts:?}");
    assert!(
        counts.iter().sum::<i64>() >= 60,
        "keys per node: {counts:?}"
    );
}

#[tokio::test]
async fn in_a_cluster_claims_are_shared_whichever_node_holds_them() {
    let Some(cluster) = redis_cluster(Listen::Tcp) else {
        return;
    };
    // One node's URL is enough to find the others.
    let one = RedisStore::connect_cluster([&cluster.urls[0]])
        .await
        .unwrap()
        .with_prefix(prefix("cluster"));
    let other = RedisStore::connect_cluster(&cluster.urls)
        .await
        .unwrap()
        .with_prefix(prefix("cluster"));
    assert_shared_across_the_nodes(&cluster, one, other).await;
}

#[tokio::test]
async fn in_a_cluster_over_tls_claims_are_shared_too() {
    let Some(cluster) = redis_cluster(Listen::Tls {
        client_certificate: true,
    }) else {
        return;
    };
    let connect = || RedisStore::connect_cluster_tls(&cluster.urls, certificates("ca.pem", true));
    let one = connect().await.unwrap().with_prefix(prefix("cluster-tls"));
    let other = connect().await.unwrap().with_prefix(prefix("cluster-tls"));
    assert_shared_across_the_nodes(&cluster, one, other).await;
}

#[tokio::test]
async fn a_single_server_store_on_a_cluster_node_says_to_connect_to_the_cluster() {
    let Some(cluster) = redis_cluster(Listen::Tcp) else {
        return;
    };
    let store = RedisStore::connect(&cluster.urls[0]).await.unwrap();
    // About two thirds of these ids hash to slots the other nodes hold.
    let mut redirected = 0;
    for i in 0..30 {
        if let Err(err) = store.begin(&format!("e{i}")).await {
            assert!(matches!(err, StoreError::Failed(_)), "{err:?}");
            assert!(err.to_string().contains("connect_cluster"), "{err}");
            redirected += 1;
        }
    }
    assert!(redirected > 0);
}

#[tokio::test]
async fn cluster_settings_that_cannot_be_used_are_typed_errors() {
    let none: [&str; 0] = [];
    let err = RedisStore::connect_cluster(none).await.unwrap_err();
    assert!(matches!(err, StoreError::Failed(_)), "{err:?}");

    let err =
        RedisStore::connect_cluster(["redis://:one@127.0.0.1:9/", "redis://:s3cret@127.0.0.1:10/"])
            .await
            .unwrap_err();
    assert!(matches!(err, StoreError::Failed(_)), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("s3cret"), "{err:?}");

    // Nothing listens there.
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let err = RedisStore::connect_cluster([format!("redis://:s3cret@127.0.0.1:{port}/")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("s3cret"), "{err:?}");

    let err =
        RedisStore::connect_cluster_tls(["redis://127.0.0.1:9/"], certificates("ca.pem", false))
            .await
            .unwrap_err();
    assert!(err.to_string().contains("rediss://"), "{err}");
    let not_pem = TlsCertificates {
        root_cert: Some(b"not a certificate".to_vec()),
        client_tls: None,
    };
    let err = RedisStore::connect_cluster_tls(["rediss://127.0.0.1:9/"], not_pem)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("root_cert holds no certificate"),
        "{err}"
    );
}

#[tokio::test]
async fn a_cluster_node_that_stops_fails_only_its_ids_until_it_is_back() {
    let Some(mut cluster) = redis_cluster(Listen::Tcp) else {
        return;
    };
    let store = RedisStore::connect_cluster(&cluster.urls)
        .await
        .unwrap()
        .with_prefix(prefix("cluster-node-down"));
    let ids: Vec<String> = (0..30).map(|i| format!("down-{i}")).collect();
    cluster.stop(2);

    // The ids whose slots the stopped node holds fail, as unavailable (the
    // receiver answers 503, so Kustomer retries); the others are claimed.
    let mut failed = Vec::new();
    for id in &ids {
        match store.begin(id).await {
            Ok(begin) => assert_eq!(begin, Begin::New, "{id}"),
            Err(err) => {
                assert!(matches!(err, StoreError::Unavailable(_)), "{id}: {err:?}");
                failed.push(id);
            }
        }
    }
    assert!(!failed.is_empty() && failed.len() < ids.len(), "{failed:?}");

    // Back with its slots, it answers for them again.
    cluster.restart(2);
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in failed {
        loop {
            match store.begin(id).await {
                Ok(begin) => {
                    assert_eq!(begin, Begin::New, "{id}");
                    break;
                }
                Err(err) => assert!(Instant::now() < deadline, "{id}: still {err:?}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn sentinel_store(sentinel: &RedisSentinel, test: &str) -> RedisStore {
    RedisStore::connect_sentinel([&sentinel.url], SENTINEL_SERVICE)
        .await
        .unwrap()
        .with_prefix(prefix(test))
}

/// Claims `id` until it is claimed (the failover over), or panics after
/// 30 s; the errors met on the way.
async fn claim_until_new(store: &RedisStore, id: &str) -> Vec<StoreError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut errors = Vec::new();
    loop {
        match store.begin(id).await {
            Ok(begin) => {
                assert_eq!(begin, Begin::New, "{id}");
                return errors;
            }
            Err(err) => {
                assert!(Instant::now() < deadline, "{id}: still {err:?}");
                errors.push(err);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Handles `id` on `store`, and waits until the replica (`sentinel`'s
/// server `[1]`) has it.
async fn handled_and_replicated(sentinel: &RedisSentinel, store: &RedisStore, id: &str) {
    assert_eq!(store.begin(id).await.unwrap(), Begin::New);
    store.complete(id).await.unwrap();
    let key = format!("{}{id}", store.prefix());
    let deadline = Instant::now() + Duration::from_secs(20);
    while raw::<Option<String>>(&sentinel.servers[1], &["GET", &key])
        .await
        .is_none()
    {
        assert!(Instant::now() < deadline, "the replica never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn through_a_sentinel_the_store_keeps_its_contract_on_the_primary() {
    let Some(sentinel) = redis_sentinel(Listen::Tcp) else {
        return;
    };
    let store = sentinel_store(&sentinel, "sentinel").await;
    check_store(&store).await.unwrap();
    // The claims are on the primary the Sentinel names.
    handled_and_replicated(&sentinel, &store, "s1").await;
    let key = format!("{}s1", prefix("sentinel"));
    assert_eq!(
        raw::<Option<String>>(&sentinel.servers[0], &["GET", &key]).await,
        Some("done".to_owned())
    );
}

#[tokio::test]
async fn when_a_sentinel_fails_over_the_store_follows_it_to_the_new_primary() {
    let Some(sentinel) = redis_sentinel(Listen::Tcp) else {
        return;
    };
    let store = sentinel_store(&sentinel, "sentinel-failover").await;
    handled_and_replicated(&sentinel, &store, "before").await;
    let [old_port, new_port] =
        [&sentinel.servers[0], &sentinel.servers[1]].map(|redis| redis.server.as_ref().unwrap().1);
    assert_eq!(sentinel.primary_port(), old_port);

    // An operator's failover: the replica is promoted, the old primary
    // demoted (its connections stay open: it answers writes with READONLY).
    let answer = sentinel.sentinel_cli(&["SENTINEL", "FAILOVER", SENTINEL_SERVICE]);
    assert!(answer.contains("OK"), "{answer}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while sentinel.primary_port() != new_port {
        assert!(Instant::now() < deadline, "the Sentinel did not fail over");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // (Until the Sentinel has demoted the old primary, it still takes
    // writes, which its demotion then drops: Redis's failover window, not
    // the store's.)
    while !try_raw::<String>(&sentinel.servers[0], &["INFO", "replication"])
        .await
        .is_ok_and(|info| info.contains("role:slave"))
    {
        assert!(Instant::now() < deadline, "the old primary was not demoted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The store finds the new primary (a claim refused with READONLY is
    // made again there), which knows what was handled before.
    let errors = claim_until_new(&store, "after").await;
    for err in &errors {
        assert!(
            matches!(err, StoreError::Unavailable(_) | StoreError::Failed(_)),
            "{err:?}"
        );
    }
    store.complete("after").await.unwrap();
    assert_eq!(store.begin("before").await.unwrap(), Begin::Done);
    let key = format!("{}after", prefix("sentinel-failover"));
    assert_eq!(
        raw::<Option<String>>(&sentinel.servers[1], &["GET", &key]).await,
        Some("done".to_owned())
    );
    // Clones of the store share the new connection.
    assert_eq!(store.clone().begin("after").await.unwrap(), Begin::Done);
}

#[tokio::test]
async fn when_the_primary_stops_the_store_follows_the_sentinel_to_the_promoted_replica() {
    let Some(mut sentinel) = redis_sentinel(Listen::Tcp) else {
        return;
    };
    let store = sentinel_store(&sentinel, "sentinel-primary-down").await;
    handled_and_replicated(&sentinel, &store, "before").await;
    let new_port = sentinel.servers[1].server.as_ref().unwrap().1;

    sentinel.servers[0].stop();
    // Until the Sentinel has promoted the replica, claims fail as
    // unavailable (the receiver's 503, so Kustomer retries); then they are
    // made on the new primary, which knows what was handled before.
    let errors = claim_until_new(&store, "after").await;
    assert!(!errors.is_empty(), "a claim succeeded on a stopped primary");
    for err in &errors {
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }
    assert_eq!(sentinel.primary_port(), new_port);
    store.complete("after").await.unwrap();
    assert_eq!(store.begin("before").await.unwrap(), Begin::Done);
    let key = format!("{}after", prefix("sentinel-primary-down"));
    assert_eq!(
        raw::<Option<String>>(&sentinel.servers[1], &["GET", &key]).await,
        Some("done".to_owned())
    );
}

/// The ids of the connections to `redis` whose last command was one of the
/// store's (a claim's script, or marking an id done).
async fn store_connections(redis: &Redis) -> Vec<String> {
    let clients: String = raw(redis, &["CLIENT", "LIST"]).await;
    clients
        .lines()
        .filter(|client| {
            client
                .split(' ')
                .any(|field| ["cmd=evalsha", "cmd=eval", "cmd=set"].contains(&field))
        })
        .filter_map(|client| client.split(' ').find_map(|f| f.strip_prefix("id=")))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_primary_slow_for_a_moment_keeps_the_store_on_its_connection() {
    let Some(sentinel) = redis_sentinel(Listen::Tcp) else {
        return;
    };
    let store = sentinel_store(&sentinel, "sentinel-slow").await;
    assert_eq!(store.begin("slow-0").await.unwrap(), Begin::New);
    let before = store_connections(&sentinel.servers[0]).await;
    assert_eq!(before.len(), 1, "{before:?}");

    // The primary holds every write for 1.5 s (reads, the Sentinel's pings
    // and `ROLE`, go on): the claim times out, so the store asks the
    // Sentinel, which names the same primary.
    let _: () = raw(&sentinel.servers[0], &["CLIENT", "PAUSE", "1500", "WRITE"]).await;
    let err = store.begin("slow-1").await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    // Once the writes go on, the store claims on the connection it had (it
    // used to connect anew). A claim sent during the pause is made when it
    // ends, though the store reported it unavailable; the store gives it
    // up, so that the retry is handled rather than held for the
    // in-progress timeout.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(store.begin("slow-2").await.unwrap(), Begin::New);
    assert_eq!(store_connections(&sentinel.servers[0]).await, before);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match store.begin("slow-1").await.unwrap() {
            Begin::New => break,
            begin => assert!(Instant::now() < deadline, "slow-1 still {begin:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn through_a_sentinel_over_tls_the_store_keeps_its_contract() {
    let Some(sentinel) = redis_sentinel(Listen::Tls {
        client_certificate: false,
    }) else {
        return;
    };
    assert!(sentinel.url.starts_with("rediss://"), "{}", sentinel.url);
    let store = RedisStore::connect_sentinel_tls(
        [&sentinel.url],
        SENTINEL_SERVICE,
        certificates("ca.pem", false),
    )
    .await
    .unwrap()
    .with_prefix(prefix("sentinel-tls"));
    check_store(&store).await.unwrap();
    handled_and_replicated(&sentinel, &store, "t1").await;

    // Without the test authority (the system's roots), neither the Sentinel
    // nor the primary is trusted.
    let err = RedisStore::connect_sentinel([&sentinel.url], SENTINEL_SERVICE)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn sentinel_settings_that_cannot_be_used_are_typed_errors() {
    let none: [&str; 0] = [];
    let err = RedisStore::connect_sentinel(none, SENTINEL_SERVICE)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Failed(_)), "{err:?}");
    assert!(err.to_string().contains("no Sentinel URL"), "{err}");

    let err = RedisStore::connect_sentinel(["redis://127.0.0.1:9/"], "")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Failed(_)), "{err:?}");
    assert!(err.to_string().contains("service name is empty"), "{err}");

    for urls in [
        [
            "redis://:s3cret@127.0.0.1:9/",
            "redis://:other@127.0.0.1:10/",
        ],
        [
            "redis://:s3cret@127.0.0.1:9/0",
            "redis://:s3cret@127.0.0.1:10/1",
        ],
        [
            "redis://:s3cret@127.0.0.1:9/",
            "rediss://:s3cret@127.0.0.1:10/",
        ],
    ] {
        let err = RedisStore::connect_sentinel(urls, SENTINEL_SERVICE)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Failed(_)), "{err:?}");
        assert!(err.to_string().contains("differ"), "{err}");
        assert!(!format!("{err} {err:?}").contains("s3cret"), "{err:?}");
    }

    let err = RedisStore::connect_sentinel(["http://:s3cret@example.com/"], SENTINEL_SERVICE)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Failed(_)), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("s3cret"), "{err:?}");

    let err = RedisStore::connect_sentinel_tls(
        ["redis://127.0.0.1:9/"],
        SENTINEL_SERVICE,
        certificates("ca.pem", false),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("rediss://"), "{err}");

    // No Sentinel listens.
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let err = RedisStore::connect_sentinel(
        [format!("redis://:s3cret@127.0.0.1:{port}/")],
        SENTINEL_SERVICE,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("s3cret"), "{err:?}");
}

#[tokio::test]
async fn a_lazy_sentinel_store_is_made_while_the_sentinel_is_down_and_used_once_it_is_up() {
    let Some(mut sentinel) = redis_sentinel(Listen::Tcp) else {
        return;
    };
    sentinel.stop_sentinel();
    let store = RedisStore::connect_sentinel_lazy([&sentinel.url], SENTINEL_SERVICE)
        .unwrap()
        .with_prefix(prefix("lazy-sentinel"));
    // The same from a Sentinel client built elsewhere.
    let client = redis::sentinel::SentinelClientBuilder::new(
        [redis::ConnectionAddr::Tcp(
            "127.0.0.1".into(),
            sentinel.port(),
        )],
        SENTINEL_SERVICE,
        redis::sentinel::SentinelServerType::Master,
    )
    .unwrap()
    .build()
    .unwrap();
    let built = RedisStore::from_sentinel_client_lazy(client).with_prefix(prefix("lazy-sentinel"));
    for store in [&store, &built] {
        let err = store.begin("ls0").await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }
    // Within the second, a call fails at once, without asking again.
    let err = store.ping().await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("not connected"), "{err}");

    // The Sentinel is back: a later call connects to the primary it names.
    sentinel.restart_sentinel();
    for err in claim_until_new(&store, "ls1").await {
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }
    store.complete("ls1").await.unwrap();
    check_store(&store).await.unwrap();
    handled_and_replicated(&sentinel, &store, "ls2").await;
    // Both reach the same primary once the Sentinel answers.
    for err in claim_until_new(&built, "ls3").await {
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }
    assert_eq!(built.begin("ls2").await.unwrap(), Begin::Done);
    let key = format!("{}ls1", prefix("lazy-sentinel"));
    assert_eq!(
        raw::<Option<String>>(&sentinel.servers[0], &["GET", &key]).await,
        Some("done".to_owned())
    );
}

#[tokio::test]
async fn a_service_name_no_sentinel_monitors_is_named_in_the_error() {
    let Some(sentinel) = redis_sentinel(Listen::Tcp) else {
        return;
    };
    let err = RedisStore::connect_sentinel([&sentinel.url], "no-such-service")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("\"no-such-service\""), "{err}");
    // Made lazily, the store finds it at its first call: unavailable too
    // (a failover under way looks the same), with the likely causes.
    let store = RedisStore::connect_sentinel_lazy([&sentinel.url], "no-such-service").unwrap();
    let err = store.ping().await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("is the name right?"), "{err}");
    // Pointed at the primary itself rather than at a Sentinel.
    let err = RedisStore::connect_sentinel([&sentinel.servers[0].url], SENTINEL_SERVICE)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable(_) | StoreError::Failed(_)),
        "{err:?}"
    );
}
