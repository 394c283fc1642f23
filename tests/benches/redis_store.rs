//! What a shared idempotency store costs: requests per second of the full
//! receiver with its event ids claimed in Redis (`RedisStore`, a
//! `redis-server` this benchmark starts on a loopback port), against the same
//! receiver with the in-memory store and the bare endpoint, with the load
//! generator, payloads and paired rounds of `benches/receiver.rs`.
//!
//! Prints `ratio receiver_redis_vs_receiver` (what the two Redis round trips
//! of a delivery, a claim and its completion, leave of the in-memory
//! receiver's throughput) and each endpoint's ratio to bare. Two more
//! receivers run in the same rounds: one whose Redis speaks only TLS
//! (`connect_tls`, the test certificates) and one on a Redis Cluster of three
//! primaries (`connect_cluster`), and a third on the primary a Redis
//! Sentinel names (`connect_sentinel`; the primary has a replica), each
//! reported against the plain Redis
//! (`ratio receiver_redis_tls_vs_receiver_redis`,
//! `ratio receiver_redis_cluster_vs_receiver_redis`,
//! `ratio receiver_redis_sentinel_vs_receiver_redis`). The CPU per request is
//! this process's only: the Redis servers' own is not in it. Without
//! `redis-server` and `redis-cli` (Debian's packages) it says so and
//! measures nothing.

use kustomer_webhooks::dedupe::RedisStore;
use kustomer_webhooks::redis::TlsCertificates;
use kustomer_webhooks_tests::TLS_DIR;
use kustomer_webhooks_tests::load::{
    bare_router, compare, receiver_router, receiver_router_with_store, serve,
};
use kustomer_webhooks_tests::redis_server::{
    Listen, SENTINEL_SERVICE, redis, redis_cluster, redis_sentinel, redis_tls,
};

const REQUESTS: usize = 10_000;
/// Measured rounds, after one warm-up round.
const ROUNDS: usize = 6;

const NAMES: [&str; 6] = [
    "receiver_redis",
    "receiver",
    "bare",
    "receiver_redis_tls",
    "receiver_redis_cluster",
    "receiver_redis_sentinel",
];

fn main() {
    let Some(redis) = redis() else { return };
    let Some(redis_tls) = redis_tls(false) else {
        return;
    };
    let Some(cluster) = redis_cluster(Listen::Tcp) else {
        return;
    };
    let Some(sentinel) = redis_sentinel(Listen::Tcp) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let prefix = format!("kustomer-webhooks-bench:{}:", std::process::id());
        let store = RedisStore::connect(&redis.url)
            .await
            .expect("the benchmark's redis-server answers")
            .with_prefix(&prefix);
        let certificates = TlsCertificates {
            root_cert: Some(std::fs::read(format!("{TLS_DIR}/ca.pem")).unwrap()),
            client_tls: None,
        };
        let tls_store = RedisStore::connect_tls(&redis_tls.url, certificates)
            .await
            .expect("the benchmark's TLS redis-server answers")
            .with_prefix(&prefix);
        let cluster_store = RedisStore::connect_cluster(&cluster.urls)
            .await
            .expect("the benchmark's Redis Cluster answers")
            .with_prefix(&prefix);
        let sentinel_store = RedisStore::connect_sentinel([&sentinel.url], SENTINEL_SERVICE)
            .await
            .expect("the benchmark's Redis Sentinel names its primary")
            .with_prefix(&prefix);
        let mut urls = Vec::new();
        for app in [
            receiver_router_with_store(store),
            receiver_router(),
            bare_router(),
            receiver_router_with_store(tls_store),
            receiver_router_with_store(cluster_store),
            receiver_router_with_store(sentinel_store),
        ] {
            urls.push(format!("http://{}/", serve(app).await));
        }
        let measured = compare(&urls, 2, ROUNDS, REQUESTS).await;
        for (name, m) in NAMES.iter().zip(&measured) {
            println!("requests_per_second_{name}: {:.0}", m.rps);
        }
        for (name, m) in NAMES.iter().zip(&measured) {
            if let Some(cpu) = m.cpu_us {
                println!("cpu_us_per_request_{name}: {cpu:.1}");
            }
        }
        for (name, m) in NAMES.iter().zip(&measured) {
            if *name != "bare" {
                println!("ratio {name}_vs_bare: {:.2}", m.ratio);
            }
        }
        println!(
            "ratio receiver_redis_vs_receiver: {:.2}",
            measured[0].ratio / measured[1].ratio
        );
        for (name, m) in NAMES.iter().zip(&measured).skip(3) {
            println!(
                "ratio {name}_vs_receiver_redis: {:.2}",
                m.ratio / measured[0].ratio
            );
        }
    });
}
