//! Drifted copies of the seed samples, deterministic from a seed.
//!
//! Real webhook traffic drifts from the documented samples: ids and values
//! change, nulls and empty arrays get filled, new keys appear, optional keys
//! go missing, a number arrives as a string. [`Mutator`] produces such
//! payloads from [`SEED_SAMPLES`], with every choice drawn from a small
//! built-in generator, so the same seed always gives the same payloads.
//!
//! The drift vocabulary is fixed and finite, so the schema inferred from any
//! number of payloads stays bounded:
//!
//! - new keys come from [`KEY_POOL`], and only into objects that the seed
//!   sample already has, at any depth; but as an API adds a field at a few
//!   places and not everywhere, only some object locations grow a key (the
//!   envelope, `data`, `data.attributes`, `attributes.custom`,
//!   `changes.attributes`, and one in three of the others), each always the
//!   same key, a fixed function of the location; and each pool key always
//!   carries the same kind of value;
//! - a filled null or empty array gets the kind of value its key implies
//!   (`…At` a date-time, `…Num` a number, …), the same kind every time;
//! - new objects hold a couple of scalar keys from [`KEY_POOL`], never
//!   deeper objects.
//!
//! Every payload keeps the seed's string `name` and `data.type`, so
//! [`kustomer_schema::Inferrer::add`] accepts it.
//!
//! ```
//! use kustomer_webhooks_tests::mutate::Mutator;
//!
//! let mut inferrer = kustomer_schema::Inferrer::default();
//! for payload in Mutator::new(42).take(50) {
//!     inferrer.add(&payload, "mutated")?;
//! }
//! assert_eq!(inferrer.sample_count(), 50);
//! # Ok::<(), kustomer_schema::Error>(())
//! ```

use kustomer_schema::{SEED_SAMPLES, is_date_time, is_object_id};
use serde_json::{Map, Value, json};

/// The key names that drift adds: unknown keys, and the keys of new objects.
pub const KEY_POOL: [&str; 20] = [
    "priority",
    "source",
    "channel",
    "locale",
    "timezone",
    "score",
    "externalId",
    "lastSeenAt",
    "importedAt",
    "verified",
    "archived",
    "count",
    "label",
    "avatarUrl",
    "region",
    "version",
    "meta",
    "settings",
    "owner",
    "aliases",
];

/// The kind of value each key of [`KEY_POOL`] carries, in the same order.
const POOL_KINDS: [Kind; 20] = [
    Kind::Integer,
    Kind::Word,
    Kind::Word,
    Kind::Word,
    Kind::Word,
    Kind::Float,
    Kind::Id,
    Kind::DateTime,
    Kind::DateTime,
    Kind::Bool,
    Kind::Bool,
    Kind::Integer,
    Kind::Word,
    Kind::Url,
    Kind::Word,
    Kind::Integer,
    Kind::Object(0),
    Kind::Object(1),
    Kind::Object(2),
    Kind::Words,
];

/// The keys of the objects drift creates; all have scalar kinds.
const OBJECT_SHAPES: [[&str; 2]; 4] = [
    ["source", "version"],
    ["locale", "timezone"],
    ["externalId", "label"],
    ["priority", "importedAt"],
];

/// Strings that replace free-text values.
const WORDS: [&str; 12] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett",
    "kilo", "lima",
];

/// The object locations that always grow a key; others do one in
/// `GROWING_ONE_IN`.
const GROWING_LOCATIONS: [&str; 5] = [
    "",
    "/data",
    "/data/attributes",
    "/data/attributes/custom",
    "/changes/attributes",
];

/// One in how many other object locations grows a key.
const GROWING_ONE_IN: u64 = 3;

/// What kind of value drift puts somewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Word,
    Integer,
    Float,
    Bool,
    DateTime,
    Id,
    Url,
    /// An object with the keys of `OBJECT_SHAPES[i]`.
    Object(usize),
    /// An array of one or two words.
    Words,
    /// An array of one or two ids.
    Ids,
    /// An array of one or two `{type, id}` resource identifiers.
    Identifiers,
    /// An array of one or two objects with the keys of `OBJECT_SHAPES[i]`.
    Objects(usize),
}

/// A small deterministic pseudo-random generator (splitmix64).
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`; `0` when `n` is `0`.
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }
}

/// One drift applied to a payload.
#[derive(Clone, Copy, Debug)]
enum Drift {
    ChangeValue,
    FillNull,
    FillEmptyArray,
    AddKey,
    DropKey,
    NumberToString,
}

/// The drifts and their weights.
const DRIFTS: [(Drift, usize); 6] = [
    (Drift::ChangeValue, 3),
    (Drift::FillNull, 2),
    (Drift::FillEmptyArray, 2),
    (Drift::AddKey, 2),
    (Drift::DropKey, 2),
    (Drift::NumberToString, 1),
];

/// Generates drifted copies of the ten seed samples, deterministically.
///
/// Each payload is the next seed sample in turn (round robin over
/// [`SEED_SAMPLES`]) with new envelope and resource ids and one to four
/// drifts: a string or number changed, a null or empty array filled, a key
/// from [`KEY_POOL`] added, an optional-looking key dropped, or a number
/// turned into a string. It is also an endless [`Iterator`] of payloads.
#[derive(Clone, Debug)]
pub struct Mutator {
    rng: SplitMix64,
    /// Each seed sample, with where drift can apply in it.
    seeds: Vec<(Value, Sites)>,
    next: usize,
}

impl Mutator {
    /// A generator whose payloads are a function of `seed` alone.
    ///
    /// A seed sample that did not parse would stand in as the smallest
    /// envelope of its event; the embedded samples all parse.
    pub fn new(seed: u64) -> Self {
        let seeds = SEED_SAMPLES
            .iter()
            .map(|(event, text)| {
                let sample = serde_json::from_str(text).unwrap_or_else(|_| minimal(event));
                let sites = Sites::of(&sample);
                (sample, sites)
            })
            .collect();
        Mutator {
            rng: SplitMix64(seed),
            seeds,
            next: 0,
        }
    }

    /// The next drifted payload.
    pub fn next_payload(&mut self) -> Value {
        let index = self.next % self.seeds.len().max(1);
        self.next = index + 1;
        let Some((seed, sites)) = self.seeds.get(index) else {
            return minimal("kustomer.customer.create");
        };
        // The sites are those of the seed sample, so drift never nests
        // inside what an earlier drift added.
        let mut payload = seed.clone();
        let rng = &mut self.rng;

        for pointer in ["/id", "/data/id"] {
            if let Some(v @ Value::String(_)) = payload.pointer_mut(pointer) {
                *v = Value::String(object_id(rng));
            }
        }
        let drifts = 1 + rng.below(4);
        let total: usize = DRIFTS.iter().map(|(_, w)| w).sum();
        for _ in 0..drifts {
            let mut roll = rng.below(total);
            let mut drift = Drift::ChangeValue;
            for (d, w) in DRIFTS {
                if roll < w {
                    drift = d;
                    break;
                }
                roll -= w;
            }
            apply(drift, &mut payload, sites, rng);
        }
        payload
    }
}

impl Iterator for Mutator {
    type Item = Value;

    /// Always `Some`: the payloads never run out.
    fn next(&mut self) -> Option<Value> {
        Some(self.next_payload())
    }
}

/// The smallest envelope the inferrer accepts, for an event name such as
/// `kustomer.customer.create`.
fn minimal(event: &str) -> Value {
    let resource = event.split('.').nth(1).unwrap_or("customer");
    json!({"name": event, "data": {"type": resource}})
}

/// Where in a seed sample each drift can apply, as JSON pointers.
#[derive(Clone, Debug, Default)]
struct Sites {
    /// Objects that can grow a key, with their location (keys from the
    /// root, `[]` for items) and the index of that key in [`KEY_POOL`].
    objects: Vec<(String, String, usize)>,
    /// Nulls, with the key they sit under.
    nulls: Vec<(String, String)>,
    /// Empty arrays, with their key.
    empty_arrays: Vec<(String, String)>,
    /// Strings that may change, with their key.
    strings: Vec<(String, String)>,
    /// Numbers.
    numbers: Vec<String>,
    /// Keys that may go missing: (the object's pointer, the key).
    droppable: Vec<(String, String)>,
}

impl Sites {
    fn of(sample: &Value) -> Sites {
        let mut sites = Sites::default();
        sites.walk(sample, "", "", "");
        sites
    }

    fn walk(&mut self, v: &Value, pointer: &str, location: &str, key: &str) {
        match v {
            Value::Null => self.nulls.push((pointer.into(), key.into())),
            Value::Bool(_) => {}
            Value::Number(_) => self.numbers.push(pointer.into()),
            Value::String(_) => {
                // The event name and every `type` stay as they are.
                if pointer != "/name" && key != "type" {
                    self.strings.push((pointer.into(), key.into()));
                }
            }
            Value::Array(items) => {
                if items.is_empty() {
                    self.empty_arrays.push((pointer.into(), key.into()));
                }
                let location = format!("{location}[]");
                for (i, item) in items.iter().enumerate() {
                    self.walk(item, &format!("{pointer}/{i}"), &location, key);
                }
            }
            Value::Object(map) => {
                if let Some(i) = growing_key(location) {
                    self.objects.push((pointer.into(), location.into(), i));
                }
                for (k, child) in map {
                    if is_optional_looking(pointer, k, child) {
                        self.droppable.push((pointer.into(), k.clone()));
                    }
                    let token = k.replace('~', "~0").replace('/', "~1");
                    self.walk(
                        child,
                        &format!("{pointer}/{token}"),
                        &format!("{location}/{k}"),
                        k,
                    );
                }
            }
        }
    }
}

/// Any key but the envelope's `name` and `data`, identity keys (`id`,
/// `type`) and whole non-empty sections.
fn is_optional_looking(pointer: &str, key: &str, value: &Value) -> bool {
    let envelope_key = pointer.is_empty() && matches!(key, "name" | "data");
    let identity = matches!(key, "id" | "type");
    let section = matches!(value, Value::Object(m) if !m.is_empty());
    !(envelope_key || identity || section)
}

/// The parts of an envelope every model is built around, which keep their
/// shape (`kustomer_schema`'s inference refuses a sample without it).
const SPINE: [&str; 6] = [
    "/changes",
    "/data/attributes",
    "/data/relationships",
    "/data/attributes/custom",
    "/id",
    "/data/id",
];

/// Whether `pointer` is one of the parts every model is built around: the
/// [`SPINE`], and an update's changes (each entry of `changes.attributes`
/// and `changes.relationships`, its `op`, and the `before` and `after` of
/// `custom`'s).
fn is_spine(pointer: &str) -> bool {
    if SPINE.contains(&pointer) {
        return true;
    }
    let Some(rest) = pointer
        .strip_prefix("/changes/attributes/")
        .or_else(|| pointer.strip_prefix("/changes/relationships/"))
    else {
        return false;
    };
    match rest.split_once('/') {
        None => true,
        Some((_, "op")) => true,
        Some(("custom", "before" | "after")) => pointer.starts_with("/changes/attributes/"),
        Some(_) => false,
    }
}

fn apply(drift: Drift, payload: &mut Value, sites: &Sites, rng: &mut SplitMix64) {
    match drift {
        Drift::ChangeValue => {
            if rng.chance(50) {
                if let Some((pointer, key)) = rng.pick(&sites.strings)
                    && let Some(v @ Value::String(_)) = payload.pointer_mut(pointer)
                {
                    let s = v.as_str().unwrap_or_default();
                    *v = Value::String(similar_string(s, key, rng));
                }
            } else if let Some(pointer) = rng.pick(&sites.numbers)
                && let Some(v @ Value::Number(_)) = payload.pointer_mut(pointer)
            {
                *v = if v.is_f64() {
                    value_of(Kind::Float, rng)
                } else {
                    value_of(Kind::Integer, rng)
                };
            }
        }
        Drift::FillNull => {
            // Not the parts every model is built around (a create event's
            // `changes: null`): inference refuses a sample with another
            // shape there, as Kustomer never sends one.
            if let Some((pointer, key)) = rng.pick(&sites.nulls)
                && !is_spine(pointer)
                && let Some(v @ Value::Null) = payload.pointer_mut(pointer)
            {
                *v = value_of(kind_for(key), rng);
            }
        }
        Drift::FillEmptyArray => {
            if let Some((pointer, key)) = rng.pick(&sites.empty_arrays)
                && let Some(Value::Array(items)) = payload.pointer_mut(pointer)
                && items.is_empty()
                && let Value::Array(filled) = value_of(array_kind_for(key), rng)
            {
                *items = filled;
            }
        }
        Drift::AddKey => {
            if let Some((pointer, location, i)) = rng.pick(&sites.objects)
                && let Some(Value::Object(map)) = payload.pointer_mut(pointer)
            {
                let (key, kind) = (KEY_POOL[*i], POOL_KINDS[*i]);
                if !map.contains_key(key) {
                    let value = if is_change_map(location) {
                        // A new entry of `changes.attributes`: a change.
                        json!({"op": "replace", "before": value_of(kind, rng), "after": value_of(kind, rng)})
                    } else {
                        value_of(kind, rng)
                    };
                    map.insert(key.into(), value);
                }
            }
        }
        Drift::DropKey => {
            if let Some((pointer, key)) = rng.pick(&sites.droppable)
                && let Some(Value::Object(map)) = payload.pointer_mut(pointer)
            {
                map.remove(key);
            }
        }
        Drift::NumberToString => {
            if let Some(pointer) = rng.pick(&sites.numbers)
                && let Some(v @ Value::Number(_)) = payload.pointer_mut(pointer)
            {
                *v = Value::String(v.to_string());
            }
        }
    }
}

/// The index in [`KEY_POOL`] of the key an object location grows, if any.
fn growing_key(location: &str) -> Option<usize> {
    let h = fnv1a(location);
    let grows = GROWING_LOCATIONS.contains(&location) || h.is_multiple_of(GROWING_ONE_IN);
    grows.then_some((h / GROWING_ONE_IN % KEY_POOL.len() as u64) as usize)
}

fn is_change_map(location: &str) -> bool {
    location == "/changes/attributes" || location == "/changes/relationships"
}

/// The kind of value a key implies, from Kustomer's naming habits, else a
/// fixed function of the key.
fn kind_for(key: &str) -> Kind {
    if let Some(i) = KEY_POOL.iter().position(|k| *k == key) {
        return POOL_KINDS[i];
    }
    if key.ends_with("At") {
        Kind::DateTime
    } else if key.ends_with("Num") || key.ends_with("Count") {
        Kind::Float
    } else if key.ends_with("Str") || key.ends_with("Txt") {
        Kind::Word
    } else if key.ends_with("Bool") || key.starts_with("is") {
        Kind::Bool
    } else if key.ends_with("Id") {
        Kind::Id
    } else if key.ends_with("Url") {
        Kind::Url
    } else {
        match fnv1a(key) % 4 {
            0 => Kind::Integer,
            1 => Kind::Object((fnv1a(key) / 4) as usize % OBJECT_SHAPES.len()),
            _ => Kind::Word,
        }
    }
}

/// The kind of array a key implies.
fn array_kind_for(key: &str) -> Kind {
    if key == "data" {
        return Kind::Identifiers;
    }
    match fnv1a(key) % 3 {
        0 => Kind::Ids,
        1 => Kind::Objects((fnv1a(key) / 3) as usize % OBJECT_SHAPES.len()),
        _ => Kind::Words,
    }
}

fn value_of(kind: Kind, rng: &mut SplitMix64) -> Value {
    match kind {
        Kind::Word => Value::String(word(rng).into()),
        Kind::Integer => json!(rng.below(10_000)),
        Kind::Float => json!(rng.below(1_000_000) as f64 / 100.0 + 0.5),
        Kind::Bool => json!(rng.chance(50)),
        Kind::DateTime => Value::String(date_time(rng)),
        Kind::Id => Value::String(object_id(rng)),
        Kind::Url => Value::String(format!("https://example.com/{}", word(rng))),
        Kind::Object(shape) => {
            let mut map = Map::new();
            for key in OBJECT_SHAPES[shape % OBJECT_SHAPES.len()] {
                let kind = match kind_for(key) {
                    // Objects hold scalars only.
                    Kind::Object(_)
                    | Kind::Objects(_)
                    | Kind::Words
                    | Kind::Ids
                    | Kind::Identifiers => Kind::Word,
                    scalar => scalar,
                };
                map.insert(key.into(), value_of(kind, rng));
            }
            Value::Object(map)
        }
        Kind::Words | Kind::Ids | Kind::Identifiers | Kind::Objects(_) => {
            let n = 1 + rng.below(2);
            let items = (0..n)
                .map(|_| match kind {
                    Kind::Words => value_of(Kind::Word, rng),
                    Kind::Ids => value_of(Kind::Id, rng),
                    Kind::Objects(shape) => value_of(Kind::Object(shape), rng),
                    _ => json!({"type": word(rng), "id": object_id(rng)}),
                })
                .collect();
            Value::Array(items)
        }
    }
}

/// A new string of the same sort as `s`: a date-time for a date-time, an id
/// for an id, a path for a path, a change `op` for an `op`, else a word.
fn similar_string(s: &str, key: &str, rng: &mut SplitMix64) -> String {
    if is_object_id(s) {
        object_id(rng)
    } else if is_date_time(s) {
        date_time(rng)
    } else if key == "op" {
        ["add", "remove", "replace"][rng.below(3)].into()
    } else if s.starts_with('/') {
        format!("/v1/{}s/{}", word(rng), object_id(rng))
    } else {
        format!("{} {}", word(rng), rng.below(100))
    }
}

fn word(rng: &mut SplitMix64) -> &'static str {
    WORDS[rng.below(WORDS.len())]
}

fn object_id(rng: &mut SplitMix64) -> String {
    format!("{:08x}{:016x}", rng.next_u64() as u32, rng.next_u64())
}

fn date_time(rng: &mut SplitMix64) -> String {
    format!(
        "20{:02}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        19 + rng.below(7),
        1 + rng.below(12),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.below(1000),
    )
}

/// FNV-1a: a hash that is the same in every run and on every platform.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use kustomer_schema::Inferrer;

    use super::*;

    #[test]
    fn every_seed_sample_parses() {
        for (event, text) in SEED_SAMPLES {
            let v: Value = serde_json::from_str(text).unwrap();
            assert_eq!(v["name"], event);
        }
    }

    #[test]
    fn a_thousand_payloads_are_all_accepted() {
        let mut inferrer = Inferrer::default();
        for (i, payload) in Mutator::new(7).take(1_000).enumerate() {
            inferrer.add(&payload, &format!("payload {i}")).unwrap();
        }
        assert_eq!(inferrer.sample_count(), 1_000);
    }

    #[test]
    fn the_same_seed_gives_the_same_payloads() {
        let a: Vec<Value> = Mutator::new(99).take(200).collect();
        let b: Vec<Value> = Mutator::new(99).take(200).collect();
        assert_eq!(a, b);
        let c: Vec<Value> = Mutator::new(100).take(200).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn payloads_keep_name_and_type_and_go_round_robin() {
        let seeds: Vec<Value> = SEED_SAMPLES
            .iter()
            .map(|(_, t)| serde_json::from_str(t).unwrap())
            .collect();
        for (i, payload) in Mutator::new(3).take(100).enumerate() {
            let seed = &seeds[i % seeds.len()];
            assert_eq!(payload["name"], seed["name"]);
            assert_eq!(payload["data"]["type"], seed["data"]["type"]);
            assert!(payload["name"].is_string() && payload["data"]["type"].is_string());
            assert_ne!(&payload, seed, "payload {i} did not drift");
        }
    }

    #[test]
    fn new_keys_come_from_the_pool() {
        fn keys(v: &Value, out: &mut BTreeSet<String>) {
            match v {
                Value::Object(m) => {
                    for (k, x) in m {
                        out.insert(k.clone());
                        keys(x, out);
                    }
                }
                Value::Array(items) => items.iter().for_each(|x| keys(x, out)),
                _ => {}
            }
        }
        let mut known = BTreeSet::new();
        for (_, t) in SEED_SAMPLES {
            keys(&serde_json::from_str(t).unwrap(), &mut known);
        }
        known.extend(KEY_POOL.iter().map(|k| k.to_string()));
        known.extend(["op", "before", "after", "type", "id"].map(String::from));
        let mut seen = BTreeSet::new();
        for payload in Mutator::new(11).take(1_000) {
            keys(&payload, &mut seen);
        }
        let unknown: Vec<_> = seen.difference(&known).collect();
        assert!(
            unknown.is_empty(),
            "keys outside the vocabulary: {unknown:?}"
        );
    }

    #[test]
    fn every_drift_happens() {
        let seeds: Vec<Value> = SEED_SAMPLES
            .iter()
            .map(|(_, t)| serde_json::from_str(t).unwrap())
            .collect();
        let (mut added, mut dropped, mut stringified, mut filled) = (false, false, false, false);
        for (i, payload) in Mutator::new(5).take(500).enumerate() {
            let seed = &seeds[i % seeds.len()];
            let (a, b) = (count(seed), count(&payload));
            added |= b.keys > a.keys;
            dropped |= b.keys < a.keys;
            stringified |= b.numeric_strings > a.numeric_strings;
            filled |= b.nulls < a.nulls || b.empty_arrays < a.empty_arrays;
        }
        assert!(added && dropped && stringified && filled);
    }

    #[derive(Default)]
    struct Counts {
        keys: usize,
        numeric_strings: usize,
        nulls: usize,
        empty_arrays: usize,
    }

    fn count(v: &Value) -> Counts {
        fn walk(v: &Value, c: &mut Counts) {
            match v {
                Value::Null => c.nulls += 1,
                Value::String(s) if s.parse::<f64>().is_ok() => c.numeric_strings += 1,
                Value::Array(items) if items.is_empty() => c.empty_arrays += 1,
                Value::Array(items) => items.iter().for_each(|x| walk(x, c)),
                Value::Object(m) => {
                    c.keys += m.len();
                    m.values().for_each(|x| walk(x, c));
                }
                _ => {}
            }
        }
        let mut c = Counts::default();
        walk(v, &mut c);
        c
    }

    #[test]
    fn ids_are_24_hex() {
        let mut rng = SplitMix64(1);
        for _ in 0..100 {
            assert!(is_object_id(&object_id(&mut rng)));
            assert!(is_date_time(&date_time(&mut rng)));
        }
    }
}
