//! Typed parsing of event bodies against parsing them into a
//! `serde_json::Value`, and typed parsing of drifted bodies against clean
//! ones.
//!
//! Every body is compact JSON (no whitespace):
//!
//! - clean: the ten seed samples, with their whitespace removed (key order
//!   as published: `id` and `name` first);
//! - drifted: copies of the seed samples that differ from the models,
//!   [`Mutator`] payloads (one to four drifts each) and, for each sample,
//!   three heavier variants: values of other types (integers as strings,
//!   booleans as numbers, date-times and ids that are not), an unknown key
//!   in every object, and an object in every non-empty array.
//!
//! Prints, from timing loops run in this process and interleaved round by
//! round, `ratio typed_vs_value` (how many times faster typed parsing is)
//! and `ratio drifted_vs_clean` (time per drifted body over time per clean
//! body), and the heap allocation calls per parse of each, before
//! criterion's own report of the same three measurements.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use kustomer_schema::SEED_SAMPLES;
use kustomer_webhooks_tests::call_counter::{CountingCalls, allocations};
use kustomer_webhooks_tests::mutate::Mutator;
use kustomer_webhooks_tests::{compact_json, median};
use serde_json::{Map, Value};

#[global_allocator]
static ALLOCATOR: CountingCalls = CountingCalls;

const SEED: u64 = 0x6b75_7374;
const MUTATED: usize = 100;
/// Rounds of the interleaved timing loops; the median round counts.
const ROUNDS: usize = 21;
/// About how long one measurement of one round takes.
const TARGET: Duration = Duration::from_millis(25);

/// A body as Kustomer orders its envelope: `id` and `name` first.
fn compact_envelope(payload: &Value) -> Vec<u8> {
    let Value::Object(map) = payload else {
        return serde_json::to_vec(payload).unwrap_or_default();
    };
    let mut out = vec![b'{'];
    let first = ["id", "name"];
    let keys = first
        .iter()
        .copied()
        .filter(|k| map.contains_key(*k))
        .chain(
            map.keys()
                .map(String::as_str)
                .filter(|k| !first.contains(k)),
        );
    for (i, key) in keys.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend(serde_json::to_vec(key).unwrap_or_default());
        out.push(b':');
        out.extend(serde_json::to_vec(&map[key]).unwrap_or_default());
    }
    out.push(b'}');
    out
}

/// Whether `key` must keep its value for the body to remain the same event.
fn is_identity(pointer: &str, key: &str) -> bool {
    (pointer.is_empty() && key == "name") || key == "type"
}

/// Values of other JSON types than the models expect.
fn other_types(v: &mut Value, pointer: &str) {
    match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => *v = Value::String(n.to_string()),
        Value::Bool(b) => *v = Value::from(u8::from(*b)),
        Value::String(s) if kustomer_schema::is_date_time(s) => *v = Value::from("yesterday"),
        Value::String(s) if kustomer_schema::is_object_id(s) => s.make_ascii_uppercase(),
        Value::Array(items) => items
            .iter_mut()
            .enumerate()
            .for_each(|(i, item)| other_types(item, &format!("{pointer}/{i}"))),
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if !is_identity(pointer, k) {
                    other_types(child, &format!("{pointer}/{k}"));
                }
            }
        }
        _ => {}
    }
}

/// An unknown key in every object.
fn unknown_keys(v: &mut Value) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(unknown_keys),
        Value::Object(map) => {
            map.values_mut().for_each(unknown_keys);
            let mut added = Map::new();
            added.insert("source".into(), "import".into());
            added.insert("version".into(), 2.into());
            map.insert("xDriftExtension".into(), Value::Object(added));
        }
        _ => {}
    }
}

/// An object in every non-empty array (arrays of strings most of all).
fn objects_in_arrays(v: &mut Value) {
    match v {
        Value::Array(items) => {
            items.iter_mut().for_each(objects_in_arrays);
            if !items.is_empty() {
                let mut object = Map::new();
                object.insert("type".into(), "user".into());
                object.insert("id".into(), "5fe109880e432183796e9218".into());
                items.insert(items.len() / 2, Value::Object(object));
            }
        }
        Value::Object(map) => map.values_mut().for_each(objects_in_arrays),
        _ => {}
    }
}

struct Bodies {
    clean: Vec<Vec<u8>>,
    drifted: Vec<Vec<u8>>,
}

impl Bodies {
    fn new() -> Bodies {
        let clean = SEED_SAMPLES
            .iter()
            .map(|(_, text)| compact_json(text))
            .collect();
        let mut drifted: Vec<Vec<u8>> = Mutator::new(SEED)
            .take(MUTATED)
            .map(|p| compact_envelope(&p))
            .collect();
        for (_, text) in SEED_SAMPLES {
            let sample: Value = serde_json::from_str(text).expect("a seed sample is JSON");
            let variants: [fn(&mut Value); 3] =
                [|v| other_types(v, ""), unknown_keys, objects_in_arrays];
            for variant in variants {
                let mut payload = sample.clone();
                variant(&mut payload);
                drifted.push(compact_envelope(&payload));
            }
        }
        Bodies { clean, drifted }
    }
}

fn typed(body: &[u8]) {
    match kustomer_webhooks::parse(body) {
        Ok(parsed) => {
            black_box(&parsed);
        }
        Err(e) => panic!("a body did not parse: {e}"),
    }
}

fn value(body: &[u8]) {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            black_box(&v);
        }
        Err(e) => panic!("a body is not JSON: {e}"),
    }
}

/// Checks what the benchmark relies on: every clean body parses typed
/// without drift, every drifted body parses typed, and both give back
/// exactly the JSON they were parsed from. Returns how many drifted bodies
/// have drift (the rest only add or drop keys, or change values).
fn check(bodies: &Bodies) -> usize {
    let mut drifting = 0;
    for (i, body) in bodies.clean.iter().chain(&bodies.drifted).enumerate() {
        let parsed = kustomer_webhooks::parse(body).expect("a body parses");
        assert!(parsed.event.is_typed(), "body {i} is not typed");
        if i < bodies.clean.len() {
            assert!(parsed.drift().is_empty(), "body {i} drifts");
        } else if !parsed.drift().is_empty() {
            drifting += 1;
        }
        let back = serde_json::to_value(&parsed.event).expect("an event serializes");
        let original: Value = serde_json::from_slice(body).expect("a body is JSON");
        assert_eq!(back, original, "body {i} does not round-trip");
    }
    drifting
}

/// Nanoseconds per body of `f` over `bodies`, repeated `reps` times.
fn ns_per_body(f: fn(&[u8]), bodies: &[Vec<u8>], reps: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..reps {
        for body in bodies {
            f(black_box(body));
        }
    }
    start.elapsed().as_secs_f64() * 1e9 / (reps * bodies.len()) as f64
}

/// How many repetitions of `bodies` take about [`TARGET`].
fn reps_for(f: fn(&[u8]), bodies: &[Vec<u8>]) -> usize {
    let ns = ns_per_body(f, bodies, 20).max(1.0);
    ((TARGET.as_secs_f64() * 1e9 / (ns * bodies.len() as f64)) as usize).max(1)
}

/// Allocation calls per body of `f` over `bodies` (the process runs one
/// thread while it counts).
fn allocs_per_body(f: fn(&[u8]), bodies: &[Vec<u8>]) -> f64 {
    f(&bodies[0]);
    let calls = allocations(|| {
        for body in bodies {
            f(body);
        }
    });
    calls as f64 / bodies.len() as f64
}

/// A parse function and the bodies it is timed on.
type Run<'a> = (fn(&[u8]), &'a [Vec<u8>]);

fn report(bodies: &Bodies, drifting: usize) {
    let runs: [Run<'_>; 3] = [
        (typed, &bodies.clean),
        (value, &bodies.clean),
        (typed, &bodies.drifted),
    ];
    let reps: Vec<usize> = runs.iter().map(|&(f, b)| reps_for(f, b)).collect();
    let mut times: [Vec<f64>; 3] = Default::default();
    for _ in 0..ROUNDS {
        for (i, &(f, b)) in runs.iter().enumerate() {
            times[i].push(ns_per_body(f, b, reps[i]));
        }
    }
    let [typed_ns, value_ns, drifted_ns] = times.map(median);
    let bytes = |b: &[Vec<u8>]| b.iter().map(Vec::len).sum::<usize>() as f64 / b.len() as f64;
    println!(
        "bodies: {} clean ({:.0} bytes on average), {} drifted ({:.0} bytes on average, \
         {drifting} with drift)",
        bodies.clean.len(),
        bytes(&bodies.clean),
        bodies.drifted.len(),
        bytes(&bodies.drifted),
    );
    println!("ns_per_parse_typed: {typed_ns:.0}");
    println!("ns_per_parse_value: {value_ns:.0}");
    println!("ns_per_parse_typed_drifted: {drifted_ns:.0}");
    println!("ratio typed_vs_value: {:.2}", value_ns / typed_ns);
    println!("ratio drifted_vs_clean: {:.2}", drifted_ns / typed_ns);
    println!(
        "allocs_per_parse_typed: {:.1}",
        allocs_per_body(typed, &bodies.clean)
    );
    println!(
        "allocs_per_parse_value: {:.1}",
        allocs_per_body(value, &bodies.clean)
    );
    println!(
        "allocs_per_parse_typed_drifted: {:.1}",
        allocs_per_body(typed, &bodies.drifted)
    );
}

fn main() {
    let bodies = Bodies::new();
    let drifting = check(&bodies);
    report(&bodies, drifting);

    let mut criterion = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let total = |b: &[Vec<u8>]| b.iter().map(Vec::len).sum::<usize>() as u64;
    let mut group = criterion.benchmark_group("parse");
    group.throughput(Throughput::Bytes(total(&bodies.clean)));
    group.bench_function("typed_clean", |b| {
        b.iter(|| bodies.clean.iter().for_each(|body| typed(black_box(body))))
    });
    group.bench_function("value_clean", |b| {
        b.iter(|| bodies.clean.iter().for_each(|body| value(black_box(body))))
    });
    group.throughput(Throughput::Bytes(total(&bodies.drifted)));
    group.bench_function("typed_drifted", |b| {
        b.iter(|| {
            bodies
                .drifted
                .iter()
                .for_each(|body| typed(black_box(body)))
        })
    });
    group.finish();
    criterion.final_summary();
}
