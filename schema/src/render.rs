//! Evidence → JSON Schema (draft-07).
//!
//! Rendering is a pure function of the gathered [`Shape`]s, and every map is
//! ordered, so the same evidence always gives byte-identical schemas.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value, json};

use crate::rules::{KNOWN_OPS, KNOWN_SHAPES, Role, Suffix, pascal_case, words};
use crate::shape::{Object, Shape, Strings};

/// The annotation that records on how many samples a property rests.
pub const EVIDENCE_KEYWORD: &str = "x-kustomer-samples";
/// The annotation naming the suffix rule that typed a custom attribute.
pub const SUFFIX_KEYWORD: &str = "x-kustomer-suffix";
/// The `format` given to 24-hex Kustomer object ids.
pub const ID_FORMAT: &str = "kustomer-id";
/// The keys of an object keyed by ids, as a `patternProperties` pattern.
pub const ID_KEY: &str = "^[0-9a-f]{24}$";

/// How one schema document is rendered.
pub(crate) struct Renderer<'a> {
    /// The resource's name in PascalCase, prefixing its definitions.
    pub resource: &'a str,
    /// Whether to write the evidence counts.
    pub evidence: bool,
    /// Repeated inline shapes, by signature, and the definition each became.
    pub hoisted: &'a HashMap<String, String>,
}

impl Renderer<'_> {
    /// The schema of a location.
    pub fn shape(&self, s: &Shape, role: Role) -> Value {
        if role == Role::Any {
            return json!({});
        }
        if let Role::Custom(Some(suffix)) = role {
            // The suffix is evidence too, and every custom attribute may be null.
            let mut s = s.clone();
            add_suffix_baseline(&mut s, suffix);
            s.nulls = s.nulls.max(1);
            let mut out = self.kinds(&s, role);
            if let Value::Object(m) = &mut out {
                m.insert(SUFFIX_KEYWORD.into(), suffix.as_str().into());
            }
            return out;
        }
        let untyped = s.objects.count == 0 && role.baseline().is_some();
        // `changes` is null on create events (Kustomer says so), whether or
        // not the samples included such a create.
        let null_by_rule = role == Role::Changes && s.nulls == 0;
        if untyped || null_by_rule {
            // A Kustomer rule types this location even when the samples only
            // ever showed null here (a `deletedBy: null` relationship).
            let mut s = s.clone();
            s.objects.count = s.objects.count.max(1);
            s.nulls = s.nulls.max(u64::from(null_by_rule));
            return self.kinds(&s, role);
        }
        self.kinds(s, role)
    }

    fn kinds(&self, s: &Shape, role: Role) -> Value {
        let mut types = BTreeSet::new();
        let mut extra = Map::new();
        let mut reference = None;
        if s.bools > 0 {
            types.insert("boolean");
        }
        if s.floats > 0 {
            types.insert("number");
        } else if s.integers > 0 {
            types.insert("integer");
        }
        if s.strings.count > 0 {
            types.insert("string");
            if let Some(f) = string_format(&s.strings) {
                extra.insert("format".into(), f.into());
            }
            if role == Role::Op {
                extra.insert("examples".into(), json!(KNOWN_OPS));
            }
        }
        if s.arrays.count > 0 {
            types.insert("array");
            if let Some(items) = &s.arrays.items {
                let items = self.shape(items, role);
                if items.as_object().is_some_and(|m| !m.is_empty()) {
                    extra.insert("items".into(), items);
                }
            }
        }
        if s.objects.count > 0 {
            if let Some(name) = self.definition_of(&s.objects, role) {
                reference = Some(json!({ "$ref": format!("#/definitions/{name}") }));
            } else {
                types.insert("object");
                extra.extend(self.object(&s.objects, role));
                extra.remove("type");
            }
        }
        let nullable = s.nulls > 0;
        let rest = |mut types: Vec<&str>, extra: Map<String, Value>| {
            if nullable {
                types.push("null");
                types.sort_unstable();
            }
            let mut m = Map::new();
            match types.as_slice() {
                [] => {}
                [one] => {
                    m.insert("type".into(), (*one).into());
                }
                many => {
                    m.insert("type".into(), json!(many));
                }
            }
            m.extend(extra);
            m
        };
        let types: Vec<&str> = types.into_iter().collect();
        match reference {
            None if types.is_empty() => json!({}),
            None => Value::Object(rest(types, extra)),
            Some(r) if types.is_empty() && !nullable => r,
            Some(r) => json!({ "anyOf": [r, rest(types, extra)] }),
        }
    }

    /// The definition objects at this location are rendered as, if any.
    fn definition_of(&self, o: &Object, role: Role) -> Option<String> {
        if let Some(name) = role.definition(self.resource) {
            return Some(name);
        }
        if role.is_inline() && !o.props.is_empty() && !self.hoisted.is_empty() {
            return self.hoisted.get(&signature(o, role)).cloned();
        }
        None
    }

    /// The schema of the objects at a location, rendered in place.
    pub fn object(&self, o: &Object, role: Role) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("type".into(), "object".into());
        let mut props = Map::new();
        let mut required = Vec::new();
        for (key, p) in &o.props {
            let child = role.child(key);
            let mut schema = self.shape(&p.shape, child);
            if self.evidence
                && let Value::Object(s) = &mut schema
            {
                s.insert(EVIDENCE_KEYWORD.into(), p.samples.into());
            }
            props.insert(key.clone(), schema);
            // Custom attributes may always be null, `before`/`after` may
            // always be absent, and a relationship is "some mix" of its parts.
            let never_required =
                matches!(child, Role::Custom(Some(_)) | Role::Any) || role == Role::Relationship;
            if !never_required && p.is_required(o.count) {
                required.push(Value::String(key.clone()));
            }
        }
        match role {
            Role::CustomMap => {
                m.insert("patternProperties".into(), self.suffix_patterns(o).into());
            }
            Role::ChangeMap => {
                m.insert(
                    "additionalProperties".into(),
                    json!({"$ref": "#/definitions/Change"}),
                );
            }
            Role::RelationshipMap => {
                let r = json!({"$ref": "#/definitions/Relationship"});
                let nullable = o.props.values().any(|p| p.shape.nulls > 0);
                let values = if nullable {
                    json!({"anyOf": [r, {"type": "null"}]})
                } else {
                    r
                };
                m.insert("additionalProperties".into(), values);
            }
            _ => {}
        }
        if !props.is_empty() {
            m.insert("properties".into(), props.into());
        }
        if let Some(values) = &o.by_id {
            // Keyed by ids: one schema for every id's value.
            let values = self.shape(values, Role::Plain);
            m.insert("patternProperties".into(), json!({ ID_KEY: values }));
        }
        if !required.is_empty() {
            m.insert("required".into(), required.into());
        }
        m
    }

    /// Types for custom attributes not seen in the samples, by suffix: what
    /// the suffix names, widened by whatever the samples showed for keys with
    /// that suffix, so no sample is ever rejected by its own schema.
    fn suffix_patterns(&self, o: &Object) -> Map<String, Value> {
        let mut out = Map::new();
        for suffix in Suffix::ALL {
            let mut merged = Shape::default();
            for (key, p) in &o.props {
                if Suffix::of(key) == Some(suffix) {
                    merged.merge(&p.shape);
                }
            }
            out.insert(
                suffix.pattern(),
                self.shape(&merged, Role::Custom(Some(suffix))),
            );
        }
        out
    }
}

fn add_suffix_baseline(s: &mut Shape, suffix: Suffix) {
    match suffix {
        Suffix::Num => s.floats += 1,
        Suffix::Bool => s.bools += 1,
        Suffix::At => {
            s.strings.count += 1;
            s.strings.date_times += 1;
        }
        Suffix::Str | Suffix::Txt | Suffix::Url | Suffix::Id => {
            // A plain string: ids of other objects are not always 24-hex.
            s.strings.count += 1;
        }
    }
}

fn string_format(s: &Strings) -> Option<&'static str> {
    if s.count == 0 {
        None
    } else if s.date_times == s.count {
        Some("date-time")
    } else if s.ids == s.count {
        Some(ID_FORMAT)
    } else {
        None
    }
}

/// The structure of an inline object, without evidence counts: two
/// locations with the same signature can share one definition.
pub(crate) fn signature(o: &Object, role: Role) -> String {
    let empty = HashMap::new();
    let r = Renderer {
        resource: "",
        evidence: false,
        hoisted: &empty,
    };
    Value::Object(r.object(o, role)).to_string()
}

/// An inline object found while walking a schema's evidence.
pub(crate) struct Occurrence<'a> {
    pub key: &'a str,
    pub role: Role,
    pub object: &'a Object,
}

/// Visits the inline objects under `o` (not `o` itself). `visit` returns
/// whether to descend into the object it was given. Definitions are not
/// entered: they are walked on their own.
pub(crate) fn walk_inline<'a>(
    o: &'a Object,
    role: Role,
    resource: &str,
    visit: &mut dyn FnMut(&Occurrence<'a>) -> bool,
) {
    for (key, p) in &o.props {
        walk_shape(key, &p.shape, role.child(key), resource, visit);
    }
}

fn walk_shape<'a>(
    key: &'a str,
    s: &'a Shape,
    role: Role,
    resource: &str,
    visit: &mut dyn FnMut(&Occurrence<'a>) -> bool,
) {
    if role == Role::Any {
        return;
    }
    if let Some(items) = &s.arrays.items {
        walk_shape(key, items, role, resource, visit);
    }
    if s.objects.count == 0 || role.definition(resource).is_some() {
        return;
    }
    let descend = if role.is_inline() && !s.objects.props.is_empty() {
        visit(&Occurrence {
            key,
            role,
            object: &s.objects,
        })
    } else {
        true
    };
    if descend {
        walk_inline(&s.objects, role, resource, visit);
    }
}

/// Picks the inline shapes that repeat and names them.
///
/// A shape seen at two or more places becomes one definition, named after the
/// camelCase words its keys end with (`firstSatisfaction`, `lastSatisfaction`
/// → `Satisfaction`), or a name from Kustomer's vocabulary (`firstDone`,
/// `lastResponse`, … → `Milestone`), or else after its shortest key. Shapes nested inside a
/// shape that is hoisted are counted once, not once per copy.
pub(crate) fn hoist(
    roots: &[(&Object, Role)],
    resource: &str,
    taken: &mut BTreeSet<String>,
) -> (HashMap<String, String>, BTreeMap<String, (Role, Object)>) {
    // Every occurrence, with the keys it was found under.
    let mut all: BTreeMap<String, (Role, Vec<&str>, Vec<&Object>)> = BTreeMap::new();
    for (root, role) in roots {
        walk_inline(root, *role, resource, &mut |occ| {
            let e = all
                .entry(signature(occ.object, occ.role))
                .or_insert_with(|| (occ.role, Vec::new(), Vec::new()));
            e.1.push(occ.key);
            e.2.push(occ.object);
            true
        });
    }
    let merged: BTreeMap<&String, Object> = all
        .iter()
        .map(|(sig, (_, _, objs))| {
            let mut m = Object::default();
            for o in objs {
                m.merge(o);
            }
            (sig, m)
        })
        .collect();

    let mut hoisted: BTreeSet<String> = BTreeSet::new();
    loop {
        let walk_all = |visit: &mut dyn FnMut(&Occurrence<'_>) -> bool| {
            for (root, role) in roots {
                walk_inline(root, *role, resource, visit);
            }
            for sig in &hoisted {
                let (role, _, _) = &all[sig];
                walk_inline(&merged[sig], *role, resource, visit);
            }
        };
        let mut counts: HashMap<String, usize> = HashMap::new();
        walk_all(&mut |occ| {
            let sig = signature(occ.object, occ.role);
            let descend = !hoisted.contains(&sig);
            *counts.entry(sig).or_default() += 1;
            descend
        });
        let mut new = BTreeSet::new();
        walk_all(&mut |occ| {
            let sig = signature(occ.object, occ.role);
            if hoisted.contains(&sig) {
                false
            } else if counts[&sig] >= 2 {
                new.insert(sig);
                false
            } else {
                true
            }
        });
        if new.is_empty() {
            break;
        }
        hoisted.extend(new);
    }

    // Names, in a fixed order so they never depend on the order of samples.
    let mut named: Vec<(String, &String)> = hoisted
        .iter()
        .map(|sig| (format!("{resource}{}", shape_name(&all[sig].1)), sig))
        .collect();
    named.sort();
    let mut names = HashMap::new();
    let mut defs = BTreeMap::new();
    for (wanted, sig) in named {
        let name = unique_name(&wanted, taken);
        names.insert(sig.clone(), name.clone());
        defs.insert(name, (all[sig].0, merged[sig].clone()));
    }
    (names, defs)
}

/// `base`, or `base2`, `base3`… whichever is still free; then taken.
pub(crate) fn unique_name(base: &str, taken: &mut BTreeSet<String>) -> String {
    let base = if base.is_empty() { "Object" } else { base };
    let mut name = base.to_owned();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}{n}");
        n += 1;
    }
    taken.insert(name.clone());
    name
}

fn shape_name(keys: &[&str]) -> String {
    for (known, name) in KNOWN_SHAPES {
        if keys.iter().all(|k| known.contains(k)) {
            return name.to_owned();
        }
    }
    let split: Vec<Vec<String>> = keys.iter().map(|k| words(k)).collect();
    // The longest run of words every key ends with.
    let mut common: Vec<String> = Vec::new();
    if let Some(first) = split.first() {
        for i in 1..=first.len() {
            let w = &first[first.len() - i];
            if split
                .iter()
                .all(|ws| ws.len() >= i && &ws[ws.len() - i] == w)
            {
                common.insert(0, w.clone());
            } else {
                break;
            }
        }
    }
    if !common.is_empty() {
        return pascal_case(&common.join("_"));
    }
    let shortest = split
        .iter()
        .zip(keys)
        .min_by(|(a, ka), (b, kb)| a.len().cmp(&b.len()).then(ka.cmp(kb)))
        .map(|(_, k)| *k)
        .unwrap_or("object");
    pascal_case(shortest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_names_prefer_the_common_ending() {
        assert_eq!(
            shape_name(&["firstSatisfaction", "lastSatisfaction"]),
            "Satisfaction"
        );
        assert_eq!(shape_name(&["firstDone", "lastDone"]), "Milestone");
        assert_eq!(shape_name(&["isDone", "wasDone"]), "Done");
        assert_eq!(
            shape_name(&["lastResponse", "firstDone", "otherOne"]),
            "FirstDone"
        );
        assert_eq!(
            shape_name(&["lastResponse", "firstDone", "firstResponseSinceLastDone"]),
            "Milestone"
        );
        assert_eq!(shape_name(&["a"]), "A");
    }

    #[test]
    fn names_never_collide() {
        let mut taken = BTreeSet::from(["Links".to_owned()]);
        assert_eq!(unique_name("Links", &mut taken), "Links2");
        assert_eq!(unique_name("Links", &mut taken), "Links3");
        assert_eq!(unique_name("", &mut taken), "Object");
    }
}
