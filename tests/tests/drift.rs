//! Drifted payloads: every mutated copy of a seed sample parses into its typed
//! event, reports exactly the drift that an independent reading of the JSON
//! Schemas predicts, and serialises back to the JSON it was parsed from.
//!
//! The mutations are those real traffic shows: new keys at any depth (most
//! unknown to the models, some known where the sample lacked them),
//! nulls and empty arrays filled with values of every JSON type, scalars
//! replaced by values of another type (an integer by a float counts), strings
//! replaced by other strings (date-times and ids, valid or not), optional keys
//! dropped (any but the envelope's `name` and `data`), and objects inserted
//! into arrays of scalars.
//!
//! The oracle walks the schema of the payload's resource, not the models: it
//! resolves `$ref`, `anyOf` and type lists, and applies the mapping the code
//! generator documents (one non-null type is typed, `{}` or a union is any
//! JSON, a `"null"` in the type list allows null, an array's items type its
//! elements unless they may be null). Two rules come from the models rather
//! than from JSON Schema, and the oracle states them where it applies them:
//! keys outside `properties` are never typed (the models keep them in
//! `extra`, whatever `patternProperties` or `additionalProperties` say), and
//! an update's `changes.attributes.X` / `changes.relationships.X` entries
//! carry `before`/`after` typed as the resource's attribute or relationship
//! `X`, each nullable, and `op` as a string.

use std::sync::OnceLock;

use kustomer_schema::SEED_SAMPLES;
use kustomer_webhooks::parse;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------
// The oracle.

const SCHEMAS: [&str; 5] = [
    include_str!("../../schema/schemas/conversation.json"),
    include_str!("../../schema/schemas/customer.json"),
    include_str!("../../schema/schemas/message.json"),
    include_str!("../../schema/schemas/team.json"),
    include_str!("../../schema/schemas/user.json"),
];

/// One expected or reported drift: pointer, expected, found.
type Found = (String, &'static str, &'static str);

/// What a schema node asks of a value.
enum Ty<'s> {
    /// Any JSON at all.
    Any,
    Str,
    DateTime,
    Id,
    Int,
    Num,
    Bool,
    Array(Box<Ty<'s>>),
    /// An object whose keys are not typed.
    Map,
    /// An object with typed `properties`.
    Struct(&'s Map<String, Value>),
    /// A change entry whose `before` and `after` have this type.
    Change(Box<Ty<'s>>),
}

impl Ty<'_> {
    fn expected(&self) -> &'static str {
        match self {
            Ty::Any => "any JSON",
            Ty::Str => "string",
            Ty::DateTime => "date-time",
            Ty::Id => "kustomer-id",
            Ty::Int => "integer",
            Ty::Num => "number",
            Ty::Bool => "boolean",
            Ty::Array(_) => "array",
            Ty::Map | Ty::Struct(_) | Ty::Change(_) => "object",
        }
    }
}

/// The marker the oracle puts on a change entry's schema (see [`Oracle::new`]).
const CHANGE_OF: &str = "x-oracle-change-of";

/// The schema of one resource, ready to judge payloads.
struct Oracle {
    events: Vec<String>,
    schema: Value,
}

impl Oracle {
    fn new(text: &str) -> Oracle {
        let mut schema: Value = serde_json::from_str(text).expect("a schema is JSON");
        let events = schema["x-kustomer-events"]
            .as_array()
            .expect("x-kustomer-events")
            .iter()
            .map(|e| e.as_str().expect("an event name").to_owned())
            .collect();
        // An update's change entries are typed by the attribute or
        // relationship they are about: every property of the resource's
        // attributes (relationships) definition gets an entry under
        // `changes.attributes` (`changes.relationships`), whatever the schema
        // lists there.
        let data = ref_name(schema.pointer("/properties/data"));
        let changes = ref_name(schema.pointer("/properties/changes"));
        if let (Some(data), Some(changes)) = (data, changes) {
            for section in ["attributes", "relationships"] {
                let target =
                    ref_name(schema.pointer(&format!("/definitions/{data}/properties/{section}")));
                let Some(target) = target else { continue };
                let entries: Map<String, Value> = schema["definitions"][&target]["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, prop)| (k.clone(), json!({ CHANGE_OF: prop })))
                    .collect();
                schema["definitions"][&changes]["properties"][section] =
                    json!({"type": "object", "properties": entries});
            }
        }
        Oracle { events, schema }
    }

    /// The oracle of the resource an event is about.
    fn of(event: &str) -> &'static Oracle {
        static ALL: OnceLock<Vec<Oracle>> = OnceLock::new();
        ALL.get_or_init(|| SCHEMAS.iter().map(|t| Oracle::new(t)).collect())
            .iter()
            .find(|o| o.events.iter().any(|e| e == event))
            .unwrap_or_else(|| panic!("no schema lists {event}"))
    }

    /// Where `payload` does not fit, sorted.
    fn drift(&self, payload: &Value) -> Vec<Found> {
        let mut out = Vec::new();
        let (ty, nullable) = self.resolve(&self.schema);
        self.field(&ty, nullable, payload, &mut String::new(), &mut out);
        out.sort();
        out
    }

    /// The type a schema node gives a value, and whether null is allowed.
    fn resolve<'s>(&'s self, s: &'s Value) -> (Ty<'s>, bool) {
        if let Some(of) = s.get(CHANGE_OF) {
            return (Ty::Change(Box::new(self.resolve(of).0)), false);
        }
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            let name = r.strip_prefix("#/definitions/").expect("a local $ref");
            let def = &self.schema["definitions"][name];
            assert!(def.is_object(), "$ref to a missing definition {name}");
            return self.resolve(def);
        }
        if let Some(any_of) = s.get("anyOf").and_then(Value::as_array) {
            let is_null = |a: &&Value| a.get("type").and_then(Value::as_str) == Some("null");
            let others: Vec<&Value> = any_of.iter().filter(|a| !is_null(a)).collect();
            let null = others.len() < any_of.len();
            return match others.as_slice() {
                [one] => {
                    let (ty, inner_null) = self.resolve(one);
                    (ty, null || inner_null)
                }
                _ => (Ty::Any, true),
            };
        }
        let types: Vec<&str> = match s.get("type") {
            Some(Value::String(t)) => vec![t],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => return (Ty::Any, true),
        };
        let null = types.contains(&"null");
        let others: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
        let [t] = others.as_slice() else {
            // A union of several types, or only null: any JSON.
            return (Ty::Any, true);
        };
        let ty = match *t {
            "string" => match s.get("format").and_then(Value::as_str) {
                Some("date-time") => Ty::DateTime,
                Some("kustomer-id") => Ty::Id,
                _ => Ty::Str,
            },
            "integer" => Ty::Int,
            "number" => Ty::Num,
            "boolean" => Ty::Bool,
            "array" => match s.get("items") {
                Some(items) => match self.resolve(items) {
                    // Items that may be null are any JSON.
                    (_, true) => Ty::Array(Box::new(Ty::Any)),
                    (item, false) => Ty::Array(Box::new(item)),
                },
                None => Ty::Array(Box::new(Ty::Any)),
            },
            "object" => match s.get("properties").and_then(Value::as_object) {
                Some(props) if !props.is_empty() => Ty::Struct(props),
                _ => Ty::Map,
            },
            other => panic!("unknown schema type {other:?}"),
        };
        (ty, null)
    }

    /// Checks a value that sits where a field of type `ty` is.
    fn field(&self, ty: &Ty, nullable: bool, v: &Value, at: &mut String, out: &mut Vec<Found>) {
        match (ty, v) {
            (Ty::Any, _) => {}
            (_, Value::Null) if nullable => {}
            _ => self.check(ty, v, at, out),
        }
    }

    fn check(&self, ty: &Ty, v: &Value, at: &mut String, out: &mut Vec<Found>) {
        let fits = match (ty, v) {
            (Ty::Any, _) => true,
            (Ty::Str, Value::String(_)) => true,
            (Ty::DateTime, Value::String(s)) => is_rfc3339_date_time(s),
            (Ty::Id, Value::String(s)) => is_kustomer_id(s),
            (Ty::Int, Value::Number(n)) => n.is_i64(),
            (Ty::Num, Value::Number(_)) => true,
            (Ty::Bool, Value::Bool(_)) => true,
            (Ty::Map, Value::Object(_)) => true,
            (Ty::Array(item), Value::Array(items)) => {
                // Reported element by element.
                for (i, x) in items.iter().enumerate() {
                    within(at, &i.to_string(), |at| self.field(item, false, x, at, out));
                }
                true
            }
            (Ty::Struct(props), Value::Object(m)) => {
                for (k, x) in m {
                    // Keys outside `properties` are kept untyped by the
                    // models, whatever `patternProperties` or
                    // `additionalProperties` say: never drift.
                    if let Some(prop) = props.get(k) {
                        let (t, null) = self.resolve(prop);
                        within(at, k, |at| self.field(&t, null, x, at, out));
                    }
                }
                true
            }
            (Ty::Change(of), Value::Object(m)) => {
                for (k, x) in m {
                    match k.as_str() {
                        "op" => within(at, k, |at| self.field(&Ty::Str, false, x, at, out)),
                        "before" | "after" => within(at, k, |at| self.field(of, true, x, at, out)),
                        _ => {}
                    }
                }
                true
            }
            _ => false,
        };
        if !fits {
            out.push((at.clone(), ty.expected(), json_type(v)));
        }
    }
}

fn ref_name(s: Option<&Value>) -> Option<String> {
    let s = s?;
    let r = match s.get("$ref") {
        Some(r) => r,
        None => s
            .get("anyOf")?
            .as_array()?
            .iter()
            .find_map(|a| a.get("$ref"))?,
    };
    Some(r.as_str()?.strip_prefix("#/definitions/")?.to_owned())
}

/// Runs `f` with `/key` (escaped per RFC 6901) appended to the pointer.
fn within(at: &mut String, key: &str, f: impl FnOnce(&mut String)) {
    let len = at.len();
    at.push('/');
    at.push_str(&key.replace('~', "~0").replace('/', "~1"));
    f(at);
    at.truncate(len);
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_kustomer_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// RFC 3339, section 5.6, `date-time`: `full-date "T" full-time`, where `T`
/// and `Z` may be lower case (the section's note), the day exists in its month
/// (Gregorian leap years), hours are 00-23, minutes 00-59, seconds 00-60 (a
/// leap second cannot be told from a table-less check, so 60 is accepted
/// anywhere), a fraction has at least one digit, and an offset is `Z` or
/// `±hh:mm` with `hh` 00-23.
fn is_rfc3339_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    let num = |from: usize, to: usize| -> Option<u32> {
        b.get(from..to)?.iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let (Some(year), Some(month), Some(day)) = (num(0, 4), num(5, 7), num(8, 10)) else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if !at(4, b'-') || !at(7, b'-') || day == 0 || day > days {
        return false;
    }
    if !matches!(b.get(10), Some(b'T' | b't')) {
        return false;
    }
    let (Some(hour), Some(minute), Some(second)) = (num(11, 13), num(14, 16), num(17, 19)) else {
        return false;
    };
    if !at(13, b':') || !at(16, b':') || hour > 23 || minute > 59 || second > 60 {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match &b[i..] {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', _, _, b':', _, _] => {
            matches!((num(i + 1, i + 3), num(i + 4, i + 6)), (Some(h), Some(m)) if h <= 23 && m <= 59)
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// The property every payload must have.

/// Parses `payload` as `event` and checks it against the oracle; returns the
/// drift reported.
fn check(event: &str, payload: &Value, pretty: bool) -> Result<Vec<Found>, String> {
    let body = if pretty {
        serde_json::to_vec_pretty(payload)
    } else {
        serde_json::to_vec(payload)
    }
    .expect("a Value serialises");
    let parsed = parse(&body).map_err(|e| format!("parse failed: {e}"))?;
    if !parsed.event.is_typed() {
        return Err(format!("{event} parsed untyped: {:?}", parsed.event.name()));
    }
    if parsed.event.name().as_str() != event {
        return Err(format!("{event} parsed as {:?}", parsed.event.name()));
    }
    let mut reported: Vec<Found> = parsed
        .drift()
        .into_iter()
        .map(|d| (d.pointer, d.expected, d.found))
        .collect();
    reported.sort();
    let expected = Oracle::of(event).drift(payload);
    for (pointer, _, found) in &expected {
        let there = payload.pointer(pointer).map(json_type);
        assert_eq!(there, Some(*found), "the oracle's own pointer {pointer}");
    }
    if reported != expected {
        let missing: Vec<_> = expected.iter().filter(|d| !reported.contains(d)).collect();
        let extra: Vec<_> = reported.iter().filter(|d| !expected.contains(d)).collect();
        return Err(format!(
            "drift differs from the oracle's ({} reported, {} expected)\n  \
             not reported: {missing:?}\n  not expected: {extra:?}",
            reported.len(),
            expected.len(),
        ));
    }
    let back = serde_json::to_value(&parsed.event).map_err(|e| format!("serialise: {e}"))?;
    if back != *payload {
        return Err(format!("not lossless: re-serialised as\n{back}"));
    }
    Ok(reported)
}

// ---------------------------------------------------------------------------
// Mutations.

#[derive(Clone, Debug, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn pointer(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        s.push('/');
        match seg {
            Seg::Key(k) => s.push_str(&k.replace('~', "~0").replace('/', "~1")),
            Seg::Index(i) => s.push_str(&i.to_string()),
        }
    }
    s
}

/// Every node of `v` with its path, parents first.
fn nodes<'v>(v: &'v Value, path: &mut Vec<Seg>, out: &mut Vec<(Vec<Seg>, &'v Value)>) {
    out.push((path.clone(), v));
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                path.push(Seg::Key(k.clone()));
                nodes(x, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                nodes(x, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn node_mut<'v>(mut v: &'v mut Value, path: &[Seg]) -> &'v mut Value {
    for seg in path {
        v = match (seg, v) {
            (Seg::Key(k), Value::Object(m)) => m.get_mut(k).expect("a path into the value"),
            (Seg::Index(i), Value::Array(a)) => &mut a[*i],
            _ => unreachable!("a path into the value"),
        };
    }
    v
}

/// JSON types, with integers and floats apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Integer,
    Float,
    String,
    Array,
    Object,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(n) if n.is_f64() => Kind::Float,
        Value::Number(_) => Kind::Integer,
        Value::String(_) => Kind::String,
        Value::Array(_) => Kind::Array,
        Value::Object(_) => Kind::Object,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    /// A key the object lacked, with a value of any type, into any object.
    AddKey,
    /// A null or an empty array replaced by a value of any type.
    Fill,
    /// A scalar replaced by a value of another type.
    Retype,
    /// A string replaced by another string.
    Restring,
    /// Any key but the envelope's `name` and `data` dropped.
    Drop,
    /// An object inserted into an array of scalars.
    InsertObject,
}

const ACTIONS: [Action; 6] = [
    Action::AddKey,
    Action::Fill,
    Action::Retype,
    Action::Restring,
    Action::Drop,
    Action::InsertObject,
];

#[derive(Clone, Debug)]
struct Mutation {
    action: Action,
    /// Which of the eligible places.
    place: Index,
    /// Which value of the palette, or where in an array.
    pick: Index,
    key: String,
    /// One value of each [`Kind`], in its order.
    palette: [Value; 7],
}

impl Mutation {
    /// Applies the mutation; what it did, or `None` where nothing was eligible.
    fn apply(&self, payload: &mut Value) -> Option<String> {
        let mut all = Vec::new();
        nodes(payload, &mut Vec::new(), &mut all);
        let is_name = |p: &[Seg]| p == [Seg::Key("name".into())];
        let scalar = |v: &Value| !v.is_object() && !v.is_array();
        let places: Vec<Vec<Seg>> = all
            .into_iter()
            .filter(|(p, v)| match self.action {
                Action::AddKey => v.is_object(),
                Action::Fill => {
                    !p.is_empty() && (v.is_null() || v.as_array().is_some_and(Vec::is_empty))
                }
                Action::Retype => !p.is_empty() && !is_name(p) && scalar(v),
                Action::Restring => !is_name(p) && v.is_string(),
                Action::Drop => match p.as_slice() {
                    [] => false,
                    [Seg::Key(k)] => k != "name" && k != "data",
                    [.., last] => matches!(last, Seg::Key(_)),
                },
                Action::InsertObject => v.as_array().is_some_and(|a| a.iter().all(scalar)),
            })
            .map(|(p, _)| p)
            .collect();
        if places.is_empty() {
            return None;
        }
        let path = &places[self.place.index(places.len())];
        let at = pointer(path);
        match self.action {
            Action::AddKey => {
                let Value::Object(m) = node_mut(payload, path) else {
                    unreachable!()
                };
                if m.contains_key(&self.key) {
                    return None;
                }
                let value = self.palette[self.pick.index(7)].clone();
                let what = format!("add {at}/{:?}: {value}", self.key);
                m.insert(self.key.clone(), value);
                Some(what)
            }
            Action::Fill | Action::Retype | Action::Restring => {
                let node = node_mut(payload, path);
                let value = match self.action {
                    Action::Fill => self.palette[self.pick.index(7)].clone(),
                    Action::Restring => self.palette[4].clone(),
                    _ => {
                        let others: Vec<&Value> = self
                            .palette
                            .iter()
                            .filter(|v| kind(v) != kind(node))
                            .collect();
                        others[self.pick.index(others.len())].clone()
                    }
                };
                let what = format!("{:?} {at}: {node} -> {value}", self.action);
                *node = value;
                Some(what)
            }
            Action::Drop => {
                let (last, parent) = path.split_last().expect("not the root");
                let (Seg::Key(k), Value::Object(m)) = (last, node_mut(payload, parent)) else {
                    unreachable!()
                };
                m.remove(k);
                Some(format!("drop {at}"))
            }
            Action::InsertObject => {
                let Value::Array(a) = node_mut(payload, path) else {
                    unreachable!()
                };
                let i = self.pick.index(a.len() + 1);
                let value = self.palette[6].clone();
                let what = format!("insert {at}/{i}: {value}");
                a.insert(i, value);
                Some(what)
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Values.

/// Every property name the schemas have, sorted.
fn property_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(read_property_names)
}

fn read_property_names() -> Vec<String> {
    fn collect(s: &Value, out: &mut std::collections::BTreeSet<String>) {
        match s {
            Value::Object(m) => {
                if let Some(Value::Object(props)) = m.get("properties") {
                    out.extend(props.keys().cloned());
                }
                m.values().for_each(|v| collect(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    let mut out = std::collections::BTreeSet::new();
    for text in SCHEMAS {
        collect(
            &serde_json::from_str(text).expect("a schema is JSON"),
            &mut out,
        );
    }
    out.into_iter().collect()
}

/// Keys to add: mostly unknown anywhere, some that the models know at other
/// places (or at this one, where the object lacked the key).
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "x[A-Z][a-z]{0,6}",
        1 => "[a-z][a-zA-Z]{0,8}",
        1 => select(vec![
            "", "a/b", "~0", "~1/~", "with space", "é", "quote\"", "back\\slash", "new\nline",
            "favoriteNum", "lastVisitAt", "isVipBool", "homepageUrl",
        ])
        .prop_map(str::to_owned),
        2 => select(property_names()),
    ]
}

fn integer() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (-5i64..2000).prop_map(Value::from),
        2 => any::<i64>().prop_map(Value::from),
        1 => select(vec![u64::MAX, i64::MAX as u64, i64::MAX as u64 + 1]).prop_map(Value::from),
    ]
}

fn float() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => select(vec![0.5, -2.25, 3.0, 0.0, -0.0, 1e300, 12.75]),
        1 => any::<f64>().prop_filter("JSON numbers are finite", |f| f.is_finite()),
    ]
    .prop_map(Value::from)
}

/// Date-times, most of them RFC 3339 (in all its forms), some not.
fn date_time() -> impl Strategy<Value = String> {
    let date = (
        prop_oneof![4 => Just(2021u32), 1 => 0u32..=9999],
        0u32..=13,
        prop_oneof![4 => 1u32..=28, 1 => 0u32..=32],
    );
    let time = (
        prop_oneof![4 => 0u32..=23, 1 => Just(24u32)],
        prop_oneof![6 => 0u32..=59, 1 => Just(60u32)],
        prop_oneof![8 => 0u32..=59, 1 => Just(60u32), 1 => Just(61u32)],
    );
    let separator = prop_oneof![8 => Just("T"), 1 => Just("t"), 1 => Just(" ")];
    let fraction = select(vec![
        "",
        "",
        ".763",
        ".763",
        ".5",
        ".123456",
        ".123456789",
        ".1234567891",
        ".",
    ]);
    let offset = prop_oneof![
        8 => Just("Z".to_owned()),
        1 => Just("z".to_owned()),
        2 => (prop_oneof![Just('+'), Just('-')], 0u32..=24, prop_oneof![0u32..=59, Just(60u32)])
            .prop_map(|(sign, h, m)| format!("{sign}{h:02}:{m:02}")),
        1 => select(vec!["", "+0100", "\u{2212}01:00", "+01", "Z ", "UTC"]).prop_map(str::to_owned),
    ];
    (date, separator, time, fraction, offset).prop_map(
        |((y, mo, d), sep, (h, mi, s), frac, off)| {
            format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{frac}{off}")
        },
    )
}

/// Ids, most of them 24 lowercase hexadecimal digits, some not.
fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[0-9a-f]{24}",
        1 => "[0-9a-fA-F]{24}",
        1 => "[0-9a-f]{23}",
        1 => "[0-9a-f]{25}",
        1 => "[0-9a-g]{24}",
        1 => Just("éééééééééééé".to_owned()),
    ]
}

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => date_time(),
        2 => id(),
        2 => "\\PC{0,12}",
        1 => select(vec!["", "null", "true", "42", "2021-04-26", "yesterday", "replace"])
            .prop_map(str::to_owned),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        integer(),
        float(),
        string().prop_map(Value::String),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    // The recursion is built anew for every value: build its parts once.
    let key = key().boxed();
    scalar().prop_recursive(2, 12, 4, move |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(key.clone(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn palette() -> impl Strategy<Value = [Value; 7]> {
    (
        any::<bool>(),
        integer(),
        float(),
        string(),
        vec(any_json(), 0..4),
        btree_map(key(), any_json(), 0..4),
    )
        .prop_map(|(b, i, f, s, a, o)| {
            [
                Value::Null,
                Value::Bool(b),
                i,
                f,
                Value::String(s),
                Value::Array(a),
                Value::Object(o.into_iter().collect()),
            ]
        })
}

fn mutation() -> impl Strategy<Value = Mutation> {
    (
        select(ACTIONS.to_vec()),
        any::<Index>(),
        any::<Index>(),
        key(),
        palette(),
    )
        .prop_map(|(action, place, pick, key, palette)| Mutation {
            action,
            place,
            pick,
            key,
            palette,
        })
}

/// A sample (by index), its mutations, and whether the body is pretty-printed.
fn case() -> impl Strategy<Value = (usize, Vec<Mutation>, bool)> {
    (0..SEED_SAMPLES.len(), vec(mutation(), 1..=8), any::<bool>())
}

/// Mutates the sample and checks the result; the drift reported, and the
/// actions that applied.
fn run(
    sample: usize,
    mutations: &[Mutation],
    pretty: bool,
) -> Result<(Vec<Found>, Vec<Action>), TestCaseError> {
    let (event, text) = SEED_SAMPLES[sample];
    let mut payload: Value = serde_json::from_str(text).expect("a seed sample is JSON");
    let mut log = Vec::new();
    let mut applied = Vec::new();
    for m in mutations {
        if let Some(what) = m.apply(&mut payload) {
            log.push(what);
            applied.push(m.action);
        }
    }
    let drift = check(event, &payload, pretty).map_err(|e| {
        TestCaseError::fail(format!(
            "{event}: {e}\nmutations:\n  {}\npayload: {payload}",
            log.join("\n  ")
        ))
    })?;
    Ok((drift, applied))
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(512)
}

proptest! {
    #![proptest_config(Config {
        cases: cases(),
        // The cases worth keeping are the fixed ones below.
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn mutated_samples_drift_exactly_where_the_schema_says_and_round_trip(
        (sample, mutations, pretty) in case()
    ) {
        run(sample, &mutations, pretty)?;
    }
}

/// The same property over a fixed sequence of cases, which must between them
/// exercise every mutation and every kind of drift.
#[test]
fn a_fixed_run_covers_every_mutation_and_every_drift() {
    let mut runner = TestRunner::deterministic();
    let strategy = case();
    let mut actions = Vec::new();
    let mut expected_seen = std::collections::BTreeSet::new();
    let mut found_seen = std::collections::BTreeSet::new();
    let mut samples = std::collections::BTreeSet::new();
    let mut without_drift = 0;
    for _ in 0..200 {
        let (sample, mutations, pretty) = strategy.new_tree(&mut runner).expect("a case").current();
        let (drift, applied) = run(sample, &mutations, pretty).unwrap_or_else(|e| panic!("{e}"));
        for action in applied {
            if !actions.contains(&action) {
                actions.push(action);
            }
        }
        samples.insert(sample);
        if drift.is_empty() {
            without_drift += 1;
        }
        for (_, expected, found) in drift {
            expected_seen.insert(expected);
            found_seen.insert(found);
        }
    }
    assert_eq!(samples.len(), SEED_SAMPLES.len());
    assert_eq!(actions.len(), ACTIONS.len(), "{actions:?}");
    let all_expected = [
        "array",
        "boolean",
        "date-time",
        "integer",
        "kustomer-id",
        "number",
        "object",
        "string",
    ];
    let all_found = ["array", "boolean", "null", "number", "object", "string"];
    assert_eq!(expected_seen, all_expected.into_iter().collect());
    assert_eq!(found_seen, all_found.into_iter().collect());
    assert!(
        (10..190).contains(&without_drift),
        "{without_drift} of 200 cases without drift"
    );
}

// ---------------------------------------------------------------------------
// Fixed cases, with their exact drift.

fn sample(event: &str) -> Value {
    let (_, text) = SEED_SAMPLES
        .iter()
        .find(|(e, _)| *e == event)
        .unwrap_or_else(|| panic!("no sample of {event}"));
    serde_json::from_str(text).unwrap()
}

fn set(payload: &mut Value, at: &str, value: Value) {
    let (parent, key) = at.rsplit_once('/').expect("a pointer");
    match payload.pointer_mut(parent) {
        Some(Value::Object(m)) => {
            m.insert(key.replace("~1", "/").replace("~0", "~"), value);
        }
        Some(Value::Array(a)) => {
            let i: usize = key.parse().expect("an index");
            if i == a.len() {
                a.push(value);
            } else {
                a[i] = value;
            }
        }
        _ => panic!("{at}: no object or array there"),
    }
}

fn remove(payload: &mut Value, at: &str) {
    let (parent, key) = at.rsplit_once('/').expect("a pointer");
    let m = payload
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("{at}: no object there"));
    assert!(m.remove(key).is_some(), "{at}: absent");
}

/// Edits a sample, checks the oracle property, and that the drift is exactly
/// `expected`.
fn assert_drift(event: &str, edit: impl FnOnce(&mut Value), expected: &[(&str, &str, &str)]) {
    let mut payload = sample(event);
    edit(&mut payload);
    let reported = check(event, &payload, false).unwrap_or_else(|e| panic!("{e}"));
    let reported: Vec<(&str, &str, &str)> = reported
        .iter()
        .map(|(p, e, f)| (p.as_str(), *e, *f))
        .collect();
    let mut expected = expected.to_vec();
    expected.sort();
    assert_eq!(reported, expected);
}

#[test]
fn rev_as_a_string() {
    assert_drift(
        "kustomer.customer.update",
        |p| set(p, "/data/attributes/rev", json!("3")),
        &[("/data/attributes/rev", "integer", "string")],
    );
}

#[test]
fn rev_as_a_float_or_too_large() {
    assert_drift(
        "kustomer.conversation.update",
        |p| {
            set(p, "/data/attributes/rev", json!(2.0));
            set(p, "/data/attributes/priority", json!(u64::MAX));
            set(p, "/data/attributes/noteCount", json!(-4));
        },
        &[
            ("/data/attributes/priority", "integer", "number"),
            ("/data/attributes/rev", "integer", "number"),
        ],
    );
}

#[test]
fn members_as_a_string() {
    assert_drift(
        "kustomer.team.update",
        |p| set(p, "/data/attributes/members", json!("everyone")),
        &[("/data/attributes/members", "array", "string")],
    );
}

#[test]
fn members_with_a_bad_id_and_an_object() {
    assert_drift(
        "kustomer.team.update",
        |p| {
            set(
                p,
                "/data/attributes/members/1",
                json!("608732DC0AC6B300195D5FB5"),
            );
            set(p, "/data/attributes/members/2", json!({"id": "x"}));
        },
        &[
            ("/data/attributes/members/1", "kustomer-id", "string"),
            ("/data/attributes/members/2", "kustomer-id", "object"),
        ],
    );
}

#[test]
fn an_object_inside_tags_is_any_json() {
    assert_drift(
        "kustomer.customer.update",
        |p| set(p, "/data/attributes/tags", json!(["vip", {"id": "x"}, 3])),
        &[],
    );
}

#[test]
fn an_object_inside_channels() {
    assert_drift(
        "kustomer.conversation.update",
        |p| {
            set(
                p,
                "/data/attributes/channels",
                json!(["sms", "email", "chat", {"x": 1}]),
            );
            set(p, "/changes/attributes/channels/after/1", json!(null));
        },
        &[
            ("/changes/attributes/channels/after/1", "string", "null"),
            ("/data/attributes/channels/3", "string", "object"),
        ],
    );
}

#[test]
fn orders_num_as_a_string() {
    assert_drift(
        "kustomer.customer.create",
        |p| {
            set(p, "/data/attributes/custom/ordersNum", json!("12"));
            set(p, "/data/attributes/custom/balanceNum", json!(12.5));
            set(
                p,
                "/data/attributes/custom/lastOrderAt",
                json!("2021-04-26"),
            );
            set(p, "/data/attributes/custom/loyaltyStr", json!(null));
        },
        &[
            ("/data/attributes/custom/lastOrderAt", "date-time", "string"),
            ("/data/attributes/custom/ordersNum", "number", "string"),
        ],
    );
}

#[test]
fn custom_attributes_no_sample_showed_are_untyped() {
    assert_drift(
        "kustomer.customer.update",
        |p| {
            set(p, "/data/attributes/custom/favoriteNum", json!("many"));
            set(p, "/data/attributes/custom/renewalAt", json!(17));
        },
        &[],
    );
}

#[test]
fn dropped_attributes() {
    assert_drift(
        "kustomer.customer.update",
        |p| remove(p, "/data/attributes"),
        &[],
    );
}

/// Attributes of another type are drift; a `data` that is not an object is
/// no resource at all, refused as a body without `data` is.
#[test]
fn attributes_as_a_string_and_data_as_null() {
    assert_drift(
        "kustomer.message.create",
        |p| set(p, "/data/attributes", json!("gone")),
        &[("/data/attributes", "object", "string")],
    );
    let mut payload = sample("kustomer.user.create");
    set(&mut payload, "/data", json!(null));
    let body = serde_json::to_vec(&payload).unwrap();
    assert_eq!(
        parse(&body).unwrap_err(),
        kustomer_webhooks::ParseError::DataNotAnObject { found: "null" }
    );
}

#[test]
fn a_new_relationship() {
    assert_drift(
        "kustomer.conversation.create",
        |p| {
            set(
                p,
                "/data/relationships/brand",
                json!({"data": {"type": "brand", "id": "not an id"}, "links": {"self": 1}}),
            );
            set(p, "/data/relationships/queue", json!("q-1"));
        },
        &[],
    );
}

#[test]
fn a_known_relationship_drifts_inside() {
    assert_drift(
        "kustomer.conversation.create",
        |p| {
            set(p, "/data/relationships/customer/data/id", json!(42));
            set(p, "/data/relationships/org/links", json!(["/v1/orgs"]));
            set(p, "/data/relationships/messages/meta", json!({"count": 1}));
        },
        &[
            (
                "/data/relationships/customer/data/id",
                "kustomer-id",
                "number",
            ),
            ("/data/relationships/org/links", "object", "array"),
        ],
    );
}

#[test]
fn nullable_relationships_and_changes() {
    assert_drift(
        "kustomer.team.update",
        |p| {
            set(p, "/data/relationships/deletedBy", json!(null));
            set(p, "/data/relationships/createdBy", json!(null));
        },
        &[("/data/relationships/createdBy", "object", "null")],
    );
    assert_drift(
        "kustomer.user.update",
        |p| set(p, "/changes", json!(null)),
        &[],
    );
    assert_drift(
        "kustomer.customer.update",
        |p| set(p, "/changes", json!(null)),
        &[],
    );
    assert_drift(
        "kustomer.customer.update",
        |p| set(p, "/changes", json!([])),
        &[("/changes", "object", "array")],
    );
}

#[test]
fn changes_are_typed_by_their_attribute() {
    assert_drift(
        "kustomer.customer.update",
        |p| {
            set(p, "/changes/attributes/rev/before", json!("2"));
            set(p, "/changes/attributes/rev/after", json!(null));
            set(p, "/changes/attributes/rev/op", json!(1));
            set(p, "/changes/attributes/updatedAt/after", json!("later"));
            set(p, "/changes/attributes/defaultLang/op", json!("move"));
            set(
                p,
                "/changes/attributes/verified",
                json!({"op": "add", "after": "yes"}),
            );
            set(
                p,
                "/changes/attributes/gender",
                json!({"op": null, "after": [1]}),
            );
            set(p, "/changes/attributes/notAnAttribute", json!(5));
            set(p, "/changes/attributes/tags", json!("none"));
        },
        &[
            ("/changes/attributes/gender/op", "string", "null"),
            ("/changes/attributes/rev/before", "integer", "string"),
            ("/changes/attributes/rev/op", "string", "number"),
            ("/changes/attributes/tags", "object", "string"),
            ("/changes/attributes/updatedAt/after", "date-time", "string"),
            ("/changes/attributes/verified/after", "boolean", "string"),
        ],
    );
}

#[test]
fn changes_of_structs_and_relationships() {
    assert_drift(
        "kustomer.conversation.update",
        |p| {
            set(
                p,
                "/changes/attributes/firstMessageOut/before",
                json!({"createdByTeams": ["nope"], "sentAt": 5}),
            );
            set(p, "/changes/attributes/lastMessageOut/after", json!([]));
            set(
                p,
                "/changes/relationships/customer",
                json!({"op": "replace", "before": {"data": {"id": "x"}}, "after": null}),
            );
            set(p, "/changes/relationships/brand", json!({"op": 3}));
        },
        &[
            (
                "/changes/attributes/firstMessageOut/before/createdByTeams/0",
                "kustomer-id",
                "string",
            ),
            (
                "/changes/attributes/firstMessageOut/before/sentAt",
                "date-time",
                "number",
            ),
            (
                "/changes/attributes/lastMessageOut/after",
                "object",
                "array",
            ),
            (
                "/changes/relationships/customer/before/data/id",
                "kustomer-id",
                "string",
            ),
        ],
    );
}

#[test]
fn date_times() {
    let valid = [
        "2021-04-26T22:06:33.103Z",
        "2021-04-26t22:06:33.103z",
        "2021-04-26T22:06:33+02:00",
        "2021-04-26T22:06:33.1234567891-23:59",
        "2016-12-31T23:59:60Z",
        "2021-04-26T21:33:60.500Z",
        "2020-02-29T00:00:00Z",
        "0000-01-01T00:00:00Z",
    ];
    let invalid = [
        "2021-04-26",
        "2021-04-26 22:06:33Z",
        "2021-04-26T22:06:33\u{2212}01:00",
        "2021-04-26T22:06:33",
        "2021-04-26T22:06:33+0200",
        "2021-02-29T22:06:33Z",
        "2021-04-26T24:00:00Z",
        "yesterday",
    ];
    for (at, expected) in [
        ("/createdAt", "/createdAt"),
        ("/data/attributes/sentAt", "/data/attributes/sentAt"),
        (
            "/changes/attributes/updatedAt/before",
            "/changes/attributes/updatedAt/before",
        ),
    ] {
        for s in valid {
            assert_drift("kustomer.message.update", |p| set(p, at, json!(s)), &[]);
        }
        for s in invalid {
            assert_drift(
                "kustomer.message.update",
                |p| set(p, at, json!(s)),
                &[(expected, "date-time", "string")],
            );
        }
    }
}

#[test]
fn ids() {
    for s in ["608733d0ca6e20001913be16", "000000000000000000000000"] {
        assert_drift("kustomer.message.update", |p| set(p, "/id", json!(s)), &[]);
    }
    for s in [
        "608733d0ca6e20001913be1",
        "608733d0ca6e20001913be160",
        "608733D0CA6E20001913BE16",
        "608733d0ca6e20001913be1g",
        "éééééééééééé",
        "",
    ] {
        assert_drift(
            "kustomer.message.update",
            |p| {
                set(p, "/id", json!(s));
                set(p, "/data/relationships/org/data/id", json!(s));
            },
            &[
                ("/data/relationships/org/data/id", "kustomer-id", "string"),
                ("/id", "kustomer-id", "string"),
            ],
        );
    }
}

#[test]
fn nulls_and_empty_arrays_filled() {
    assert_drift(
        "kustomer.team.update",
        |p| {
            set(p, "/data/attributes/deletedAt", json!({"by": "someone"}));
            set(p, "/data/attributes/roleGroups", json!([{"id": 1}, null]));
            set(p, "/data/attributes/icon", json!(7));
            set(
                p,
                "/changes/attributes/members/before",
                json!(["5fe109880e432183796e9218", 1]),
            );
        },
        &[
            (
                "/changes/attributes/members/before/1",
                "kustomer-id",
                "number",
            ),
            ("/data/attributes/icon", "string", "number"),
        ],
    );
}

#[test]
fn unknown_keys_everywhere() {
    assert_drift(
        "kustomer.user.update",
        |p| {
            set(p, "/xNew", json!({"a": [1, {"b": null}]}));
            set(p, "/data/xNew", json!(null));
            set(p, "/data/attributes/custom", json!({"a/b": 1, "~": "x"}));
            set(p, "/data/links/xNew", json!([]));
            set(p, "/changes/attributes/updatedAt/xNew", json!(true));
            set(p, "/data/relationships/org/data/xNew", json!(1.5));
        },
        &[],
    );
}

#[test]
fn dropped_keys() {
    assert_drift(
        "kustomer.conversation.update",
        |p| {
            remove(p, "/id");
            remove(p, "/changes/attributes");
            remove(p, "/data/relationships/org");
            remove(p, "/data/links/self");
            remove(p, "/data/attributes/firstDone");
        },
        &[],
    );
}

#[test]
fn the_oracle_reads_rfc_3339() {
    for ok in [
        "2021-04-26T21:33:54Z",
        "2021-04-26T21:33:54.763Z",
        "2021-04-26t21:33:54.7z",
        "2021-04-26T23:33:54.123456789123+02:00",
        "2020-02-29T00:00:00-23:59",
        "2016-12-31T23:59:60Z",
        "0000-01-01T00:00:00Z",
    ] {
        assert!(is_rfc3339_date_time(ok), "{ok}");
    }
    for bad in [
        "",
        "2021-04-26",
        "2021-04-26 21:33:54Z",
        "2021-04-26T21:33:54",
        "2021-04-26T21:33:54.Z",
        "2021-04-26T21:33:54+0200",
        "2021-04-26T21:33:54\u{2212}02:00",
        "2021-04-26T21:33:54+24:00",
        "2021-02-29T21:33:54Z",
        "1900-02-29T21:33:54Z",
        "2021-13-01T21:33:54Z",
        "2021-04-31T21:33:54Z",
        "2021-04-26T24:00:00Z",
        "2021-04-26T21:60:00Z",
        "2021-04-26T21:33:61Z",
        "2021-04-26T21:33:54ZZ",
        "2021-04-26T21:33:54UTC",
    ] {
        assert!(!is_rfc3339_date_time(bad), "{bad}");
    }
}

#[test]
fn debug_output_shows_fields_and_extra_only() {
    let mut payload = sample("kustomer.team.create");
    set(&mut payload, "/data/attributes/newThing", json!(1));
    let body = serde_json::to_vec(&payload).unwrap();
    let parsed = parse(&body).unwrap();
    let text = format!("{:?}", parsed.event);
    assert!(text.contains("TeamAttributes { "), "{text}");
    assert!(
        text.contains("display_name: Some(\"30-Day Trial\")"),
        "{text}"
    );
    assert!(text.contains("\"newThing\": Number(1)"), "{text}");
    assert!(!text.contains("marks"), "{text}");
}

/// An event edited after it was read writes what it holds: a field set
/// after its value drifted is written once, with its new value (the
/// drifted value kept in `extra` is not written beside it), and a
/// required struct the payload did not have is written once given a value.
#[test]
fn an_edited_event_writes_its_edits_once() {
    use kustomer_webhooks::AnyEvent;
    let sample = |event: &str| -> Value {
        let text = SEED_SAMPLES.iter().find(|(e, _)| *e == event).unwrap().1;
        serde_json::from_str(text).unwrap()
    };
    let mut payload = sample("kustomer.customer.update");
    payload["data"]["attributes"]["rev"] = "7".into();
    let body = serde_json::to_vec(&payload).unwrap();
    let mut parsed = parse(&body).unwrap();
    // Unedited: lossless, the drifted string as received.
    assert_eq!(serde_json::to_value(&parsed.event).unwrap(), payload);
    let AnyEvent::CustomerUpdate(event) = &mut parsed.event else {
        panic!("a customer update")
    };
    assert_eq!(event.data.attributes.rev, None);
    event.data.attributes.rev = Some(8);
    let written = serde_json::to_string(&event.data.attributes).unwrap();
    assert_eq!(written.matches("\"rev\":").count(), 1, "{written}");
    let back = serde_json::to_value(&parsed.event).unwrap();
    assert_eq!(back["data"]["attributes"]["rev"], 8);

    let mut payload = sample("kustomer.customer.create");
    payload["data"]
        .as_object_mut()
        .unwrap()
        .remove("attributes");
    let body = serde_json::to_vec(&payload).unwrap();
    let mut parsed = parse(&body).unwrap();
    assert_eq!(serde_json::to_value(&parsed.event).unwrap(), payload);
    let AnyEvent::CustomerCreate(event) = &mut parsed.event else {
        panic!("a customer creation")
    };
    event.data.attributes.name = Some("Ada".into());
    let back = serde_json::to_value(&parsed.event).unwrap();
    assert_eq!(back["data"]["attributes"]["name"], "Ada", "{back}");
}

/// With `Model` in scope (as `use kustomer_webhooks::*` brings it), `drift()`
/// on an event matched out of `AnyEvent`, which holds it in a box, is still
/// the event's own.
#[test]
fn drift_of_a_matched_event_with_model_in_scope() {
    use kustomer_webhooks::AnyEvent;
    // In scope as a glob import brings it, though nothing here calls it.
    #[allow(unused_imports)]
    use kustomer_webhooks::Model as _;
    let mut payload = sample("kustomer.customer.update");
    set(&mut payload, "/data/attributes/name", json!(5));
    let body = serde_json::to_vec(&payload).unwrap();
    let parsed = parse(&body).unwrap();
    let AnyEvent::CustomerUpdate(event) = &parsed.event else {
        panic!("{:?}", parsed.event.name())
    };
    let drift = event.drift();
    assert_eq!(drift.len(), 1, "{drift:?}");
    assert_eq!(drift[0].pointer, "/data/attributes/name");
}
