//! What a shared idempotency store costs: requests per second of the full
//! receiver with its event ids claimed in Redis (`RedisStore`, a
//! `redis-server` this benchmark starts on a loopback port), against the same
//! receiver with the in-memory store and the bare endpoint, with the load
//! generator, payloads and paired rounds of `benches/receiver.rs`.
//!
//! Prints `ratio receiver_redis_vs_receiver` (what the two Redis round trips
//! of a delivery, a claim and its completion, leave of the in-memory
//! receiver's throughput) and each endpoint's ratio to bare. The CPU per
//! request is this process's only: the Redis server's own is not in it.
//! Without `redis-server` (Debian's package) it says so and measures nothing.

use kustomer_webhooks::dedupe::RedisStore;
use kustomer_webhooks_tests::load::{
    bare_router, compare, receiver_router, receiver_router_with_store, serve,
};
use kustomer_webhooks_tests::redis_server::redis;

const REQUESTS: usize = 10_000;
/// Measured rounds, after one warm-up round.
const ROUNDS: usize = 6;

const NAMES: [&str; 3] = ["receiver_redis", "receiver", "bare"];

fn main() {
    let Some(redis) = redis() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = RedisStore::connect(&redis.url)
            .await
            .expect("the benchmark's redis-server answers")
            .with_prefix(format!("kustomer-webhooks-bench:{}:", std::process::id()));
        let mut urls = Vec::new();
        for app in [
            receiver_router_with_store(store),
            receiver_router(),
            bare_router(),
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
        for (name, m) in NAMES.iter().zip(&measured).take(2) {
            println!("ratio {name}_vs_bare: {:.2}", m.ratio);
        }
        println!(
            "ratio receiver_redis_vs_receiver: {:.2}",
            measured[0].ratio / measured[1].ratio
        );
    });
}
