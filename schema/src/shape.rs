//! The evidence gathered at one location of the samples.
//!
//! A [`Shape`] counts what it has seen (nulls, booleans, integers, floats,
//! strings and which of them were dates or ids, arrays and their items,
//! objects and their keys). It never stores a sample's values, so memory
//! grows with the schema, not with the number of samples.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::rules::{Role, is_date_time, is_object_id};

/// Evidence for one location.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Shape {
    pub nulls: u64,
    pub bools: u64,
    pub integers: u64,
    pub floats: u64,
    pub strings: Strings,
    pub arrays: Arrays,
    pub objects: Object,
}

/// Evidence about the strings seen at a location.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Strings {
    pub count: u64,
    /// How many were RFC 3339 date-times.
    pub date_times: u64,
    /// How many were 24-hex object ids.
    pub ids: u64,
}

/// Evidence about the arrays seen at a location.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Arrays {
    pub count: u64,
    /// Every item of every array, merged; `None` while all arrays were empty.
    pub items: Option<Box<Shape>>,
}

/// Evidence about the objects seen at a location.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Object {
    pub count: u64,
    pub props: BTreeMap<String, Prop>,
    /// The values under keys that are 24-hex ids (an object keyed by ids,
    /// `{"5f…": {…}, "60…": {…}}`), merged: a map, not a field per id,
    /// so that each new id is neither a new key nor more memory.
    pub by_id: Option<Box<Shape>>,
}

/// One key of an object location.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Prop {
    /// How many of the location's objects had this key.
    pub present: u64,
    /// How many samples had this key somewhere at this location.
    pub samples: u64,
    /// The last sample counted in `samples`, so one sample counts once even
    /// when the key occurs in many items of an array.
    last_sample: Option<u64>,
    pub shape: Shape,
}

/// What an observation is part of: which sample, and whether it counts as a
/// presence of its key (values fed from `changes` are type evidence only).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cx {
    pub sample: u64,
    pub formats: bool,
}

impl Shape {
    /// Records one value seen at this location.
    pub fn observe(&mut self, value: &Value, role: Role, cx: Cx) {
        if role == Role::Any {
            // Any JSON by definition; nothing below it is worth keeping.
            return;
        }
        match value {
            Value::Null => self.nulls += 1,
            Value::Bool(_) => self.bools += 1,
            Value::Number(n) => {
                // An integer past the 64-bit signed range (a `u64` above
                // `i64::MAX`) fits no `i64` field: it counts as a number.
                if n.is_i64() {
                    self.integers += 1;
                } else {
                    self.floats += 1;
                }
            }
            Value::String(s) => {
                self.strings.count += 1;
                if cx.formats {
                    if is_object_id(s) {
                        self.strings.ids += 1;
                    } else if is_date_time(s) {
                        self.strings.date_times += 1;
                    }
                }
            }
            Value::Array(items) => {
                self.arrays.count += 1;
                if !items.is_empty() {
                    let shape = self.arrays.items.get_or_insert_with(Default::default);
                    for item in items {
                        // Items keep the role of their array: a to-many
                        // relationship's `data` holds resource identifiers.
                        shape.observe(item, role, cx);
                    }
                }
            }
            Value::Object(map) => {
                self.objects.count += 1;
                for (key, v) in map {
                    let child = role.child(key);
                    if role.is_inline() && is_object_id(key) {
                        self.objects
                            .by_id
                            .get_or_insert_with(Default::default)
                            .observe(v, child, cx);
                        continue;
                    }
                    let prop = self.objects.props.entry(key.clone()).or_default();
                    prop.present += 1;
                    prop.count_sample(cx.sample);
                    prop.shape.observe(v, child, cx);
                }
            }
        }
    }

    /// Adds the evidence of `other` (gathered elsewhere) to this shape.
    ///
    /// Observing values into two shapes and merging them gives the same shape
    /// as observing all of them into one, apart from per-sample counts of keys
    /// that both saw in the same sample.
    pub fn merge(&mut self, other: &Shape) {
        self.nulls += other.nulls;
        self.bools += other.bools;
        self.integers += other.integers;
        self.floats += other.floats;
        self.strings.count += other.strings.count;
        self.strings.date_times += other.strings.date_times;
        self.strings.ids += other.strings.ids;
        self.arrays.count += other.arrays.count;
        if let Some(items) = &other.arrays.items {
            self.arrays
                .items
                .get_or_insert_with(Default::default)
                .merge(items);
        }
        self.objects.merge(&other.objects);
    }
}

impl Object {
    pub fn merge(&mut self, other: &Object) {
        self.count += other.count;
        if let Some(theirs) = &other.by_id {
            self.by_id
                .get_or_insert_with(Default::default)
                .merge(theirs);
        }
        for (key, theirs) in &other.props {
            let mine = self.props.entry(key.clone()).or_default();
            mine.present += theirs.present;
            mine.samples += theirs.samples;
            mine.shape.merge(&theirs.shape);
        }
    }

    /// What a Kustomer rule says objects in `role` hold, as evidence of type
    /// only: it never makes a key required or counts as a sample.
    pub fn rule_evidence(role: Role) -> Object {
        let mut s = Shape::default();
        if let Some(v) = role.baseline() {
            s.observe(
                &v,
                role,
                Cx {
                    sample: 0,
                    formats: true,
                },
            );
        }
        let mut o = s.objects;
        o.count = 0;
        for p in o.props.values_mut() {
            p.present = 0;
            p.samples = 0;
        }
        o
    }

    /// The entry for `key`, created when missing, for evidence that does not
    /// count as the key being present (a value from a change's before/after).
    pub fn evidence_for(&mut self, key: &str) -> &mut Shape {
        &mut self.props.entry(key.to_owned()).or_default().shape
    }
}

impl Prop {
    fn count_sample(&mut self, sample: u64) {
        if self.last_sample != Some(sample) {
            self.last_sample = Some(sample);
            self.samples += 1;
        }
    }

    /// Required: every object at the location had it, and never as null.
    pub fn is_required(&self, parent_count: u64) -> bool {
        parent_count > 0 && self.present == parent_count && self.shape.nulls == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cx(sample: u64) -> Cx {
        Cx {
            sample,
            formats: true,
        }
    }

    #[test]
    fn merging_equals_observing_together() {
        let a = json!({"a": 1, "b": [1, 2.5], "c": {"d": null}});
        let b = json!({"a": "x", "b": [], "c": {"d": "2021-04-26T21:33:54Z"}, "e": true});
        let mut together = Shape::default();
        together.observe(&a, Role::Plain, cx(0));
        together.observe(&b, Role::Plain, cx(1));
        let mut left = Shape::default();
        left.observe(&a, Role::Plain, cx(0));
        let mut right = Shape::default();
        right.observe(&b, Role::Plain, cx(1));
        left.merge(&right);
        // `last_sample` is bookkeeping only; compare the counts.
        assert_eq!(
            format!("{:?}", strip(&left)),
            format!("{:?}", strip(&together))
        );
    }

    fn strip(s: &Shape) -> Shape {
        let mut s = s.clone();
        fn walk(s: &mut Shape) {
            for p in s.objects.props.values_mut() {
                p.last_sample = None;
                walk(&mut p.shape);
            }
            if let Some(items) = &mut s.arrays.items {
                walk(items);
            }
        }
        walk(&mut s);
        s
    }

    #[test]
    fn a_key_in_many_items_counts_once_per_sample() {
        let mut s = Shape::default();
        s.observe(&json!([{"k": 1}, {"k": 2}, {"j": 3}]), Role::Plain, cx(0));
        s.observe(&json!([{"k": 1}]), Role::Plain, cx(1));
        let items = s.arrays.items.as_ref().unwrap();
        assert_eq!(items.objects.count, 4);
        assert_eq!(items.objects.props["k"].present, 3);
        assert_eq!(items.objects.props["k"].samples, 2);
        assert!(!items.objects.props["k"].is_required(items.objects.count));
    }
}
