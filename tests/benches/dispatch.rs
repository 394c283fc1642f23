//! What routing through the dispatcher adds to parsing and handling an
//! event, against calling the handler directly on the parsed event.
//!
//! Prints `ratio dispatch_vs_direct: X` (goal: X ≤ 1.05, dispatch adds under
//! 5%), measured in this process on the ten seed samples.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use kustomer_schema::SEED_SAMPLES;
use kustomer_webhooks::{AnyEvent, CustomerEvent, Dispatcher, OtherEvent, parse_as};

async fn handle_customer(event: CustomerEvent) {
    black_box(&event.data.attributes.rev);
}
async fn handle_other(event: OtherEvent) {
    black_box(&event.name);
}
macro_rules! handlers {
    ($($name:ident: $ty:ty),*) => { $( async fn $name(event: $ty) { black_box(&event.data.id); } )* };
}
handlers!(
    h_conversation: kustomer_webhooks::ConversationEvent,
    h_message: kustomer_webhooks::MessageEvent,
    h_team: kustomer_webhooks::TeamEvent,
    h_user: kustomer_webhooks::UserEvent
);

fn compact() -> Vec<(String, Vec<u8>)> {
    SEED_SAMPLES
        .iter()
        .map(|(e, t)| {
            let v: serde_json::Value = serde_json::from_str(t).unwrap();
            (e.to_string(), serde_json::to_vec(&v).unwrap())
        })
        .collect()
}

/// The baseline: parse as the dispatcher does (with the event header), then
/// call the handler the event needs, directly.
async fn direct(body: &[u8], name: &str) {
    match parse_as(body, name).unwrap().event {
        AnyEvent::CustomerCreate(e) => handle_customer(e.0).await,
        AnyEvent::CustomerUpdate(e) => handle_customer(e.0).await,
        AnyEvent::ConversationCreate(e) => h_conversation(e.0).await,
        AnyEvent::ConversationUpdate(e) => h_conversation(e.0).await,
        AnyEvent::MessageCreate(e) => h_message(e.0).await,
        AnyEvent::MessageUpdate(e) => h_message(e.0).await,
        AnyEvent::TeamCreate(e) => h_team(e.0).await,
        AnyEvent::TeamUpdate(e) => h_team(e.0).await,
        AnyEvent::UserCreate(e) => h_user(e.0).await,
        AnyEvent::UserUpdate(e) => h_user(e.0).await,
        AnyEvent::Other(e) => handle_other(e).await,
    }
}

fn dispatcher() -> Dispatcher {
    Dispatcher::builder()
        .handler(handle_customer)
        .handler(h_conversation)
        .handler(h_message)
        .handler(h_team)
        .handler(h_user)
        .handler(handle_other)
        .build()
        .unwrap()
}

fn ratio() {
    let bodies = compact();
    let d = dispatcher();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let round = |dispatching: bool| {
        let start = Instant::now();
        for _ in 0..200 {
            for (name, body) in &bodies {
                if dispatching {
                    rt.block_on(d.dispatch(black_box(body), Some(name)))
                        .unwrap();
                } else {
                    rt.block_on(direct(black_box(body), name));
                }
            }
        }
        start.elapsed()
    };
    // Interleaved rounds, the median of each: the two see the same noise.
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        a.push(round(false));
        b.push(round(true));
    }
    a.sort();
    b.sort();
    let (direct_t, dispatch_t): (Duration, Duration) = (a[a.len() / 2], b[b.len() / 2]);
    println!(
        "ratio dispatch_vs_direct: {:.3}",
        dispatch_t.as_secs_f64() / direct_t.as_secs_f64()
    );
}

fn bench(c: &mut Criterion) {
    let bodies = compact();
    let d = dispatcher();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("dispatch");
    g.bench_function("direct: parse + handle", |b| {
        b.iter(|| {
            for (name, body) in &bodies {
                rt.block_on(direct(black_box(body), name));
            }
        })
    });
    g.bench_function("dispatcher: parse + route + handle", |b| {
        b.iter(|| {
            for (name, body) in &bodies {
                rt.block_on(d.dispatch(black_box(body), Some(name)))
                    .unwrap();
            }
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}

fn main() {
    ratio();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
