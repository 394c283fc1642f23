//! The runtime against its peers, in one process, as ratios:
//!
//! - typed parsing (`kustomer_webhooks::parse`) of the ten seed samples
//!   against `serde_json::Value`, simd-json (its owned and borrowed values)
//!   and sonic-rs (its `Value`), each parsing the same compact bodies;
//! - typed parsing of one event (`kustomer.customer.update`) against
//!   hand-written `#[derive(Deserialize)]` structs for the same event;
//! - signature verification (HMAC-SHA256 of the body, compared in constant
//!   time) against the bare SHA-256 of the body;
//! - heap allocations per delivery through the whole receiver (verify,
//!   parse, idempotency store, dispatch to an `async` handler), counted by
//!   this benchmark's global allocator.
//!
//! Timing loops are interleaved round by round (every measurement of a
//! round runs for about the same time, so all share the machine's load) and
//! the median round counts; each prints `ratio NAME: X`. Criterion then
//! reports the same measurements.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use kustomer_schema::SEED_SAMPLES;
use kustomer_webhooks::receiver::{Receiver, Request};
use kustomer_webhooks::verify::{EVENT_HEADER, SIGNATURE_HEADER, Verifier, sign};
use kustomer_webhooks::{
    ConversationEvent, CustomerEvent, Dispatcher, MessageEvent, TeamEvent, UserEvent, parse,
};
use kustomer_webhooks_tests::call_counter::{CountingCalls, allocations};
use kustomer_webhooks_tests::compact_json;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

#[global_allocator]
static ALLOCATOR: CountingCalls = CountingCalls;

const ROUNDS: usize = 15;
const TARGET: Duration = Duration::from_millis(25);
const TOKEN: &[u8] = b"token-2026";

// Hand-written structs for `kustomer.customer.update`, as a service that
// models only this event might write them: every key of the sample, owned
// strings, `Option` where the sample has null, and `Value` where it shows no
// type. No drift tolerance, no catch-all maps.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct HandCustomerUpdate {
    id: String,
    name: String,
    org: String,
    partition: String,
    data: HandCustomer,
    created_at: String,
    changes: Option<HandChanges>,
    persist: bool,
    client: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct HandCustomer {
    #[serde(rename = "type")]
    type_: String,
    id: String,
    attributes: HandAttributes,
    relationships: BTreeMap<String, HandRelationship>,
    links: HandLinks,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct HandAttributes {
    name: Option<String>,
    display_name: Option<String>,
    display_color: Option<String>,
    display_icon: Option<String>,
    external_ids: Vec<Value>,
    shared_external_ids: Vec<Value>,
    emails: Vec<Value>,
    shared_emails: Vec<Value>,
    phones: Vec<Value>,
    shared_phones: Vec<Value>,
    whatsapps: Vec<Value>,
    facebook_ids: Vec<Value>,
    instagram_ids: Vec<Value>,
    socials: Vec<Value>,
    shared_socials: Vec<Value>,
    urls: Vec<Value>,
    locations: Vec<Value>,
    active_users: Vec<String>,
    watchers: Vec<String>,
    recent_location: Option<HandRecentLocation>,
    locale: Option<String>,
    gender: Option<String>,
    created_at: String,
    updated_at: String,
    modified_at: String,
    last_activity_at: Option<String>,
    deleted: bool,
    last_conversation: Option<HandLastConversation>,
    conversation_counts: BTreeMap<String, i64>,
    preview: Value,
    tags: Vec<String>,
    custom: BTreeMap<String, Value>,
    progressive_status: Option<String>,
    verified: bool,
    rev: i64,
    recent_items: Vec<Value>,
    default_lang: Option<String>,
    satisfaction_level: Option<HandSatisfactionLevel>,
    role_group_versions: Vec<Value>,
    access_override: Vec<Value>,
    company_name: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct HandRecentLocation {
    updated_at: String,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct HandLastConversation {
    channels: Vec<String>,
    tags: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct HandSatisfactionLevel {
    first_satisfaction: HandSatisfaction,
    last_satisfaction: HandSatisfaction,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct HandSatisfaction {
    sent_by_teams: Vec<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct HandRelationship {
    links: Option<HandLinks>,
    data: Option<HandIdentifier>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct HandLinks {
    #[serde(rename = "self")]
    self_: String,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct HandIdentifier {
    #[serde(rename = "type")]
    type_: String,
    id: String,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct HandChanges {
    attributes: BTreeMap<String, HandChange>,
    relationships: BTreeMap<String, HandChange>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct HandChange {
    op: String,
    before: Option<Value>,
    after: Option<Value>,
}

/// Runs `f` repeatedly for about [`TARGET`]; nanoseconds per call.
fn time(mut f: impl FnMut()) -> f64 {
    let mut iterations = 1u64;
    loop {
        let start = Instant::now();
        for _ in 0..iterations {
            f();
        }
        let elapsed = start.elapsed();
        if elapsed >= TARGET {
            return elapsed.as_nanos() as f64 / iterations as f64;
        }
        iterations *= 2;
    }
}

/// Median over rounds of each measurement; the measurements of one round
/// run one after the other.
fn interleaved(measurements: &mut [(&str, &mut dyn FnMut())]) -> Vec<f64> {
    let mut samples = vec![Vec::with_capacity(ROUNDS); measurements.len()];
    for _ in 0..ROUNDS {
        for (i, (_, f)) in measurements.iter_mut().enumerate() {
            samples[i].push(time(&mut **f));
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect()
}

fn parse_all_typed(bodies: &[Vec<u8>]) {
    for body in bodies {
        drop(black_box(parse(black_box(body))));
    }
}

fn parse_all_value(bodies: &[Vec<u8>]) {
    for body in bodies {
        drop(black_box(serde_json::from_slice::<Value>(black_box(body))));
    }
}

fn parse_all_sonic(bodies: &[Vec<u8>]) {
    for body in bodies {
        drop(black_box(sonic_rs::from_slice::<sonic_rs::Value>(
            black_box(body),
        )));
    }
}

/// simd-json parses in place: each body is copied into a reused buffer
/// first (about 1 % of its time), as a service receiving `&[u8]` must.
fn parse_all_simd_owned(bodies: &[Vec<u8>], buffer: &mut Vec<u8>) {
    for body in bodies {
        buffer.clear();
        buffer.extend_from_slice(black_box(body));
        drop(black_box(simd_json::to_owned_value(buffer)));
    }
}

fn parse_all_simd_borrowed(bodies: &[Vec<u8>], buffer: &mut Vec<u8>) {
    for body in bodies {
        buffer.clear();
        buffer.extend_from_slice(black_box(body));
        drop(black_box(simd_json::to_borrowed_value(buffer)));
    }
}

fn sha256_all(bodies: &[Vec<u8>]) {
    for body in bodies {
        black_box(Sha256::digest(black_box(body)));
    }
}

fn verify_all(verifier: &Verifier, bodies: &[Vec<u8>], signatures: &[String]) {
    for (body, signature) in bodies.iter().zip(signatures) {
        let ok = verifier.verify_signature(black_box(body), signature.as_bytes());
        black_box(ok).ok();
    }
}

/// Deliveries through the whole receiver, each with a fresh event id, and
/// their signatures.
fn deliveries(from: usize, n: usize) -> Vec<(String, Vec<u8>, String)> {
    (from..from + n)
        .map(|i| {
            let (name, text) = SEED_SAMPLES[i % SEED_SAMPLES.len()];
            let mut v: Value = serde_json::from_str(text).unwrap();
            v["id"] = format!("{:024x}", i + 1).into();
            let body = compact_json(&v.to_string());
            let signature = sign(TOKEN, &body);
            (name.to_owned(), body, signature)
        })
        .collect()
}

async fn on_customer(event: CustomerEvent) {
    black_box(&event);
}
async fn on_conversation(event: ConversationEvent) {
    black_box(&event);
}
async fn on_message(event: MessageEvent) {
    black_box(&event);
}
async fn on_user(event: UserEvent) {
    black_box(&event);
}
async fn on_team(event: TeamEvent) {
    black_box(&event);
}

fn main() {
    let bodies: Vec<Vec<u8>> = SEED_SAMPLES.iter().map(|(_, t)| compact_json(t)).collect();
    let total_bytes: usize = bodies.iter().map(Vec::len).sum();
    let customer = compact_json(
        SEED_SAMPLES
            .iter()
            .find(|(e, _)| *e == "kustomer.customer.update")
            .unwrap()
            .1,
    );

    // Every parser reads every body, and the typed parse loses nothing.
    let mut buffer = Vec::with_capacity(8192);
    for body in &bodies {
        let parsed = parse(body).unwrap();
        assert!(parsed.event.is_typed() && parsed.drift().is_empty());
        let value: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(serde_json::to_value(&parsed.event).unwrap(), value);
        sonic_rs::from_slice::<sonic_rs::Value>(body).unwrap();
        buffer.clear();
        buffer.extend_from_slice(body);
        simd_json::to_owned_value(&mut buffer).unwrap();
    }
    serde_json::from_slice::<HandCustomerUpdate>(&customer).unwrap();

    // Typed parsing against the untyped parsers.
    let mut simd_buffer = Vec::with_capacity(8192);
    let mut simd_buffer2 = Vec::with_capacity(8192);
    let medians = interleaved(&mut [
        ("typed", &mut || parse_all_typed(&bodies)),
        ("value", &mut || parse_all_value(&bodies)),
        ("sonic", &mut || parse_all_sonic(&bodies)),
        ("simd_owned", &mut || {
            parse_all_simd_owned(&bodies, &mut simd_buffer)
        }),
        ("simd_borrowed", &mut || {
            parse_all_simd_borrowed(&bodies, &mut simd_buffer2)
        }),
    ]);
    let per_body = |ns: f64| ns / bodies.len() as f64;
    let [typed, value, sonic, simd_owned, simd_borrowed] = medians[..] else {
        unreachable!()
    };
    println!("ns_per_parse_typed: {:.0}", per_body(typed));
    println!("ns_per_parse_value: {:.0}", per_body(value));
    println!("ns_per_parse_sonic_rs: {:.0}", per_body(sonic));
    println!("ns_per_parse_simd_json_owned: {:.0}", per_body(simd_owned));
    println!(
        "ns_per_parse_simd_json_borrowed: {:.0}",
        per_body(simd_borrowed)
    );
    println!("ratio typed_vs_value: {:.2}", value / typed);
    println!("ratio typed_vs_sonic_rs: {:.2}", sonic / typed);
    println!("ratio typed_vs_simd_json_owned: {:.2}", simd_owned / typed);
    println!(
        "ratio typed_vs_simd_json_borrowed: {:.2}",
        simd_borrowed / typed
    );
    println!("ratio sonic_rs_vs_value: {:.2}", value / sonic);

    // One event: the generated models against hand-written structs.
    let medians = interleaved(&mut [
        ("typed", &mut || {
            drop(black_box(parse(black_box(&customer))))
        }),
        ("hand", &mut || {
            drop(black_box(serde_json::from_slice::<HandCustomerUpdate>(
                black_box(&customer),
            )))
        }),
    ]);
    println!("ns_per_parse_customer_update_typed: {:.0}", medians[0]);
    println!(
        "ns_per_parse_customer_update_hand_written: {:.0}",
        medians[1]
    );
    println!(
        "ratio typed_vs_hand_written: {:.2}",
        medians[1] / medians[0]
    );

    // Verification against the bare hash.
    let verifier = Verifier::new(TOKEN);
    let signatures: Vec<String> = bodies.iter().map(|b| sign(TOKEN, b)).collect();
    let medians = interleaved(&mut [
        ("verify", &mut || {
            verify_all(&verifier, &bodies, &signatures)
        }),
        ("sha256", &mut || sha256_all(&bodies)),
    ]);
    println!("ns_per_verify: {:.0}", per_body(medians[0]));
    println!("ns_per_sha256: {:.0}", per_body(medians[1]));
    println!("ratio verify_vs_sha256: {:.2}", medians[0] / medians[1]);

    // Allocations per parse, and per delivery through the receiver.
    let n = 2_000;
    let typed_allocs = allocations(|| parse_all_typed(&bodies));
    let value_allocs = allocations(|| parse_all_value(&bodies));
    let sonic_allocs = allocations(|| parse_all_sonic(&bodies));
    println!(
        "allocs_per_parse_typed: {:.1}",
        typed_allocs as f64 / bodies.len() as f64
    );
    println!(
        "allocs_per_parse_value: {:.1}",
        value_allocs as f64 / bodies.len() as f64
    );
    println!(
        "allocs_per_parse_sonic_rs: {:.1}",
        sonic_allocs as f64 / bodies.len() as f64
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let dispatcher = Dispatcher::builder()
        .handler(on_customer)
        .handler(on_conversation)
        .handler(on_message)
        .handler(on_user)
        .handler(on_team)
        .build()
        .unwrap();
    let receiver = Receiver::new(dispatcher, Verifier::new(TOKEN));
    // Warm up (the store's first entries, the runtime's first task) with
    // other event ids than the counted deliveries.
    let warm = deliveries(0, 20);
    let deliveries = deliveries(20, n);
    let deliver = |(name, body, signature): &(String, Vec<u8>, String)| {
        runtime.block_on(receiver.receive(Request {
            method: "POST",
            header: |h| match h {
                "content-type" => Some(&b"application/json"[..]),
                SIGNATURE_HEADER => Some(signature.as_bytes()),
                EVENT_HEADER => Some(name.as_bytes()),
                _ => None,
            },
            body,
        }))
    };
    for d in &warm {
        deliver(d);
    }
    let mut statuses = Vec::with_capacity(n);
    let delivery_allocs = allocations(|| {
        for d in &deliveries {
            statuses.push(deliver(d).status);
        }
    });
    assert!(statuses.iter().all(|&s| s == 200), "every delivery handled");
    assert_eq!(
        receiver.counters().accepted.load(Ordering::SeqCst),
        (n + 20) as u64
    );
    let parse_per = typed_allocs as f64 / bodies.len() as f64;
    let delivery_per = delivery_allocs as f64 / n as f64;
    println!("allocs_per_delivery: {delivery_per:.1}");
    println!(
        "allocs_per_delivery_beyond_parse: {:.1}",
        delivery_per - parse_per
    );

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("peers");
    group.throughput(Throughput::Bytes(total_bytes as u64));
    group.bench_function("typed (ten bodies)", |b| {
        b.iter(|| parse_all_typed(&bodies))
    });
    group.bench_function("serde_json::Value (ten bodies)", |b| {
        b.iter(|| parse_all_value(&bodies))
    });
    group.bench_function("sonic_rs::Value (ten bodies)", |b| {
        b.iter(|| parse_all_sonic(&bodies))
    });
    group.bench_function("simd_json owned (ten bodies)", |b| {
        b.iter(|| parse_all_simd_owned(&bodies, &mut simd_buffer))
    });
    group.bench_function("verify (ten bodies)", |b| {
        b.iter(|| verify_all(&verifier, &bodies, &signatures))
    });
    group.bench_function("sha256 (ten bodies)", |b| b.iter(|| sha256_all(&bodies)));
    group.finish();
    c.final_summary();
}
