//! Samples in, schemas out.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::error::{Error, Result, SampleProblem};
use crate::render::{EVIDENCE_KEYWORD, Renderer, hoist, unique_name};
use crate::rules::{
    RESERVED_TYPE_NAMES, Role, SHARED_DEFINITIONS, event_type_name, module_name, pascal_case,
};
use crate::shape::{Cx, Object, Shape};

/// The JSON Schema dialect every inferred schema declares.
pub const DRAFT: &str = "http://json-schema.org/draft-07/schema#";

/// How inference behaves. Start from [`Settings::default`] and adjust with
/// the `with_*` methods.
#[derive(Clone, Debug)]
pub struct Settings {
    formats: bool,
    evidence: bool,
    shared_shapes: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            formats: true,
            evidence: true,
            shared_shapes: true,
        }
    }
}

impl Settings {
    /// Whether strings that are all RFC 3339 date-times get
    /// `"format": "date-time"`, and all 24-hex ids `"format": "kustomer-id"`
    /// (default: yes).
    pub fn with_formats(mut self, on: bool) -> Self {
        self.formats = on;
        self
    }

    /// Whether each property records in `x-kustomer-samples` how many samples
    /// carried it (default: yes).
    pub fn with_evidence(mut self, on: bool) -> Self {
        self.evidence = on;
        self
    }

    /// Whether an object shape that repeats at several places becomes one
    /// named definition (default: yes).
    pub fn with_shared_shapes(mut self, on: bool) -> Self {
        self.shared_shapes = on;
        self
    }
}

/// Evidence gathered for one resource (`customer`, `conversation`, …).
#[derive(Debug, Default)]
struct Resource {
    samples: u64,
    events: BTreeSet<String>,
    envelope: Shape,
}

/// Infers one JSON Schema per resource from Kustomer event samples.
///
/// Feed it samples one at a time; it keeps only counts, never the samples,
/// so memory grows with the schema and not with the number of samples.
///
/// ```
/// use kustomer_schema::Inferrer;
///
/// let mut inferrer = Inferrer::default();
/// for (_, text) in kustomer_schema::SEED_SAMPLES {
///     inferrer.add_json(text.as_bytes(), "seed")?;
/// }
/// let schemas = inferrer.schemas();
/// assert_eq!(
///     schemas.keys().map(String::as_str).collect::<Vec<_>>(),
///     ["conversation", "customer", "message", "team", "user"],
/// );
/// assert_eq!(schemas["customer"]["title"], "CustomerEvent");
/// # Ok::<(), kustomer_schema::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct Inferrer {
    settings: Settings,
    resources: BTreeMap<String, Resource>,
    samples: u64,
    /// For each event's Rust type name: the event, its resource, and the
    /// first sample of it.
    events_by_type: BTreeMap<String, (String, String, String)>,
    /// For each resource's module name: the resource, and its first sample.
    resources_by_module: BTreeMap<String, (String, String)>,
}

impl Inferrer {
    /// An inferrer with the given settings.
    pub fn new(settings: Settings) -> Self {
        Inferrer {
            settings,
            ..Default::default()
        }
    }

    /// How many samples were added.
    pub fn sample_count(&self) -> u64 {
        self.samples
    }

    /// Adds one event envelope.
    ///
    /// It must be an object with a string `name` and a string `data.type`;
    /// `origin` names it in errors.
    pub fn add(&mut self, sample: &Value, origin: &str) -> Result<()> {
        let problem = |problem| Error::Sample {
            origin: origin.to_owned(),
            problem,
        };
        let Value::Object(envelope) = sample else {
            return Err(problem(SampleProblem::NotAnObject));
        };
        let name = match envelope.get("name") {
            Some(Value::String(name)) => name,
            None | Some(Value::Null) => return Err(problem(SampleProblem::MissingName)),
            Some(other) => return Err(problem(SampleProblem::NameNotAString(json_kind(other)))),
        };
        if name.trim().is_empty() {
            return Err(problem(SampleProblem::EmptyName));
        }
        let resource = match envelope.get("data").and_then(|d| d.get("type")) {
            Some(Value::String(resource)) => resource,
            None | Some(Value::Null) => return Err(problem(SampleProblem::MissingDataType)),
            Some(other) => {
                return Err(problem(SampleProblem::DataTypeNotAString(json_kind(other))));
            }
        };
        if !is_resource_name(resource) {
            return Err(problem(SampleProblem::BadResourceName(resource.clone())));
        }
        if let Some(spine) = spine_problem(envelope) {
            return Err(problem(spine));
        }
        let module = module_name(resource);
        if let Some((other, first)) = self.resources_by_module.get(&module)
            && other != resource
        {
            return Err(problem(SampleProblem::ResourceNamedLikeAnother {
                resource: resource.as_str().into(),
                module: module.into(),
                other: other.as_str().into(),
                first: first.as_str().into(),
            }));
        }
        let type_name = event_type_name(name);
        match self.events_by_type.get(&type_name) {
            Some((other, other_resource, first)) if other == name && other_resource != resource => {
                return Err(problem(SampleProblem::EventOfAnotherResource {
                    event: name.as_str().into(),
                    resource: resource.as_str().into(),
                    other_resource: other_resource.as_str().into(),
                    first: first.as_str().into(),
                }));
            }
            Some((other, _, first)) if other != name => {
                return Err(problem(SampleProblem::EventNamedLikeAnother {
                    event: name.as_str().into(),
                    type_name: type_name.into(),
                    other: other.as_str().into(),
                    first: first.as_str().into(),
                }));
            }
            Some(_) => {}
            None => {
                self.events_by_type.insert(
                    type_name,
                    (name.clone(), resource.clone(), origin.to_owned()),
                );
            }
        }
        self.resources_by_module
            .entry(module)
            .or_insert_with(|| (resource.clone(), origin.to_owned()));

        let cx = Cx {
            sample: self.samples,
            formats: self.settings.formats,
        };
        self.samples += 1;
        let r = self.resources.entry(resource.clone()).or_default();
        r.samples += 1;
        if !r.events.contains(name) {
            r.events.insert(name.clone());
        }
        r.envelope.observe(sample, Role::Envelope, cx);
        feed_changes(&mut r.envelope.objects, envelope, cx);
        Ok(())
    }

    /// Adds every sample in `bytes`: one JSON value, or several one after
    /// the other (JSON Lines). `origin` (usually a file name) names them in
    /// errors, with line and column for invalid JSON.
    ///
    /// A UTF-8 byte order mark at the start (as some editors save files) is
    /// skipped.
    ///
    /// A lone UTF-16 surrogate escape (`"\ud83d"` with no trailing half,
    /// which JavaScript's `JSON.stringify` writes for a string cut inside a
    /// pair) is read as U+FFFD, as the runtime reads it
    /// ([`lone_surrogates_replaced`]).
    pub fn add_json(&mut self, bytes: &[u8], origin: &str) -> Result<usize> {
        let mut problems = Vec::new();
        let n = self.add_json_each(bytes, origin, &mut |e| problems.push(e), true);
        match problems.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    /// Adds a file of samples, or every `.json`/`.jsonl`/`.ndjson` file of a
    /// directory (in name order, not descending into subdirectories). A
    /// file larger than [`MAX_SAMPLE_FILE`] is an error.
    pub fn add_path(&mut self, path: &Path) -> Result<usize> {
        let mut n = 0;
        for file in sample_files(path)? {
            let bytes = read(&file)?;
            n += self.add_json(&bytes, &file.display().to_string())?;
        }
        Ok(n)
    }

    /// Like [`add_path`](Inferrer::add_path), but a sample that cannot be
    /// used (invalid JSON, not an event envelope, an unusable `data.type`,
    /// an empty file) does not stop the others: each is handed to
    /// `unusable` and the rest are added. Invalid JSON ends its own file
    /// (what follows it cannot be told apart reliably), except in JSON
    /// Lines (a `.jsonl` or `.ndjson` file, or one whose samples so far each
    /// had a line of their own), where the reading goes on at the next line
    /// that starts an object; a JSON Lines file also goes on past an
    /// unusable envelope. Returns how many samples were added.
    ///
    /// Only a path that cannot be read, or a directory without sample
    /// files, is an error.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("kustomer-schema-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # let (_, conversation) = kustomer_schema::SEED_SAMPLES[0];
    /// std::fs::write(dir.join("a.json"), conversation)?;
    /// std::fs::write(dir.join("b.json"), r#"{"name": "x", "data": {"type": 123}}"#)?;
    /// let mut inferrer = kustomer_schema::Inferrer::default();
    /// let mut unusable = Vec::new();
    /// let added = inferrer.add_path_skipping(&dir, &mut |e| unusable.push(e.to_string()))?;
    /// assert_eq!(added, 1);
    /// assert!(unusable[0].ends_with("b.json: `data.type` is a number, not a string (the resource type, such as \"customer\")"));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_path_skipping(
        &mut self,
        path: &Path,
        unusable: &mut dyn FnMut(Error),
    ) -> Result<usize> {
        let mut n = 0;
        for file in sample_files(path)? {
            let bytes = read(&file)?;
            n += self.add_json_each(&bytes, &file.display().to_string(), unusable, false);
        }
        Ok(n)
    }

    /// Adds the samples in `bytes`, handing each problem to `problem`;
    /// with `stop`, the first problem ends the reading.
    fn add_json_each(
        &mut self,
        bytes: &[u8],
        origin: &str,
        problem: &mut dyn FnMut(Error),
        stop: bool,
    ) -> usize {
        let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
        let bytes = &*lone_surrogates_replaced(bytes);
        let (mut seen, mut added, mut failed) = (0, 0, false);
        let mut lines = Lines::default();
        let named_lines = is_lines_name(Path::new(origin));
        // Whether every sample so far was on a line of its own: then a line
        // that is not JSON is only that line, and the reading goes on after
        // it (unless `stop`).
        let mut one_per_line = true;
        // Where the reading (re)started, and its line.
        let (mut base, mut base_line) = (0, 1);
        'file: loop {
            let part = &bytes[base..];
            let mut stream = serde_json::Deserializer::from_slice(part).into_iter::<Sample>();
            loop {
                let start = base + stream.byte_offset();
                let sample_line = lines.at(bytes, start);
                let sample_start = lines.counted;
                // Left by an error in an earlier sample that was not said.
                let _ = error_pointer();
                match stream.next() {
                    None => break 'file,
                    Some(Err(e)) => {
                        let mut pointer = error_pointer();
                        if e.to_string().starts_with("recursion limit exceeded") {
                            // 128 levels, which the message says.
                            pointer.clear();
                        }
                        // A JSON Lines file (one that had a sample before, or
                        // is named as one).
                        let lines_file = seen > 0 || named_lines;
                        let resumable = lines_file && (named_lines || one_per_line);
                        let may_go_on = !stop && resumable;
                        // Files joined with `cat` keep each one's byte order
                        // mark, before its first sample: skipped there too
                        // (one sample per line or not, as `parse` reads them).
                        if lines_file && bytes[sample_start..].starts_with(BOM) {
                            base = sample_start + BOM.len();
                            base_line = sample_line;
                            continue 'file;
                        }
                        let (mut line, mut column) = json_position(part, &e);
                        let mut message = json_message(&e);
                        if message == "number out of range" {
                            // Named at its end: at its start, as `parse`
                            // names it (found in the text read, whose
                            // columns `serde_json` counts).
                            column = number_start(part, line, column);
                        }
                        if line == 1 {
                            // The reading restarted inside a line (after a
                            // byte order mark that follows a sample on it):
                            // the column counts from the line's start, the
                            // mark itself taking no room.
                            let line_start = bytes[..base]
                                .iter()
                                .rposition(|&b| b == b'\n')
                                .map_or(0, |i| i + 1);
                            let marks = if bytes[..base].ends_with(BOM) {
                                BOM.len()
                            } else {
                                0
                            };
                            column += (base - line_start).saturating_sub(marks);
                        }
                        line += base_line - 1;
                        // In JSON Lines, a sample cut short reads on into the
                        // next line, where the JSON then breaks: it is named
                        // at its own line (when the line the JSON broke on is
                        // a sample of its own; a sample written on several
                        // lines with a mistake inside is named where the
                        // mistake is).
                        // So is one whose next line starts a sample of its
                        // own with a mistake inside, in a file of one sample
                        // a line so far (that sample is then read on its own,
                        // its mistake named where it is).
                        if lines_file
                            && line > sample_line
                            && (line_is_json(bytes, line)
                                || (one_per_line && starts_an_object(bytes, sample_line + 1)))
                            && let Some((at, cut, within)) = cut_short(bytes, sample_start)
                        {
                            (line, column) = (sample_line, at);
                            message = cut;
                            // Where its own line ends, not where the JSON
                            // broke on the next.
                            pointer = within;
                        }
                        // A sample that is one line goes no further than it,
                        // and the reading goes on at the next (in a file
                        // named as JSON Lines, whatever its lines);
                        // otherwise (a sample written on several lines, with
                        // a mistake inside) the reading stops here, and the
                        // samples on later lines are said not to be read.
                        let goes_on = may_go_on && (line == sample_line || named_lines);
                        if lines_file && !goes_on && text_after_line(bytes, line) {
                            message
                                .push_str("; the rest of the file, after this line, was not read");
                        }
                        problem(Error::Json {
                            origin: origin.to_owned(),
                            line,
                            column,
                            pointer,
                            message,
                        });
                        failed = true;
                        if !goes_on {
                            return added;
                        }
                        // At the next line that starts a sample (`{` at its
                        // start): the lines between belong to the bad one
                        // (a sample written on several lines).
                        let next = start_of_line_after(bytes, sample_start, sample_line, line)
                            .and_then(|next| next_object_line(bytes, next, line + 1));
                        match next {
                            Some((next, next_line)) => (base, base_line) = (next, next_line),
                            None => break 'file,
                        }
                        continue 'file;
                    }
                    Some(Ok(Sample { value: v, names })) => {
                        seen += 1;
                        let end = base + stream.byte_offset();
                        one_per_line &= !bytes[sample_start..end].contains(&b'\n');
                        let label = if seen == 1 && !failed && end == trimmed_len(bytes) {
                            origin.to_owned()
                        } else {
                            format!("{origin}: sample {seen} (line {sample_line})")
                        };
                        let added_or = match names {
                            Some((first, last)) => Err(Error::Sample {
                                origin: label.clone(),
                                problem: SampleProblem::NamedTwice { first, last },
                            }),
                            None => self.add(&v, &label),
                        };
                        match added_or {
                            Ok(()) => added += 1,
                            Err(e) => {
                                problem(e);
                                if stop {
                                    return added;
                                }
                            }
                        }
                    }
                }
            }
        }
        if seen == 0 && !failed {
            problem(Error::Sample {
                origin: origin.to_owned(),
                problem: SampleProblem::Empty,
            });
        }
        added
    }

    /// The schema of each resource seen, keyed by its `data.type`.
    pub fn schemas(&self) -> BTreeMap<String, Value> {
        // Shared definitions merge the evidence of every resource.
        let mut shared: BTreeMap<String, (Role, Object)> = BTreeMap::new();
        let mut own: BTreeMap<&str, BTreeMap<String, (Role, Object)>> = BTreeMap::new();
        for (type_name, r) in &self.resources {
            let prefix = resource_prefix(type_name);
            let mine = own.entry(type_name).or_default();
            collect_definitions(
                &r.envelope,
                Role::Envelope,
                &prefix,
                &mut |name, role, o| {
                    let slot = if role.is_shared() {
                        &mut shared
                    } else {
                        &mut *mine
                    };
                    slot.entry(name)
                        .or_insert_with(|| (role, Object::default()))
                        .1
                        .merge(o);
                },
            );
        }

        // What the Kustomer rules say, whether or not the samples showed it.
        for role in [
            Role::Change,
            Role::Links,
            Role::Relationship,
            Role::ResourceIdentifier,
        ] {
            let name = role.definition("").unwrap_or_default();
            let slot = shared
                .entry(name)
                .or_insert_with(|| (role, Object::default()));
            slot.1.merge(&Object::rule_evidence(role));
        }
        for (type_name, mine) in &mut own {
            let name = Role::Changes
                .definition(&resource_prefix(type_name))
                .unwrap_or_default();
            let slot = mine
                .entry(name)
                .or_insert_with(|| (Role::Changes, Object::default()));
            slot.1.merge(&Object::rule_evidence(Role::Changes));
        }

        let no_names = std::collections::HashMap::new();
        let mut out = BTreeMap::new();
        for (type_name, r) in &self.resources {
            let prefix = resource_prefix(type_name);
            let mine = &own[type_name.as_str()];
            let mut taken: BTreeSet<String> = SHARED_DEFINITIONS
                .iter()
                .map(|s| s.to_string())
                .chain(mine.keys().cloned())
                .collect();
            let title = unique_name(&format!("{prefix}Event"), &mut taken);
            // A shape is not named as a type the models use for something
            // else, or as one of the resource's events.
            taken.extend(RESERVED_TYPE_NAMES.iter().map(|s| s.to_string()));
            taken.extend(r.events.iter().map(|e| event_type_name(e)));
            let (names, hoisted) = if self.settings.shared_shapes {
                let mut roots = vec![(&r.envelope.objects, Role::Envelope)];
                roots.extend(mine.values().map(|(role, o)| (o, *role)));
                hoist(&roots, &prefix, &mut taken)
            } else {
                Default::default()
            };
            let renderer = Renderer {
                resource: &prefix,
                evidence: self.settings.evidence,
                hoisted: &names,
            };

            // The shared definitions are the same in every resource's schema,
            // so none refers to a shape hoisted in one resource alone.
            let in_every = Renderer {
                hoisted: &no_names,
                ..renderer
            };
            let mut definitions = Map::new();
            for (name, (role, o)) in shared.iter() {
                definitions.insert(name.clone(), Value::Object(in_every.object(o, *role)));
            }
            for (name, (role, o)) in mine.iter().chain(&hoisted) {
                definitions.insert(name.clone(), Value::Object(renderer.object(o, *role)));
            }
            let mut root = renderer.object(&r.envelope.objects, Role::Envelope);
            root.insert("$schema".into(), DRAFT.into());
            root.insert("title".into(), title.into());
            root.insert(
                "description".into(),
                format!(
                    "A Kustomer `{type_name}` event, inferred from {} sample(s).",
                    r.samples
                )
                .into(),
            );
            root.insert("x-kustomer-resource".into(), type_name.clone().into());
            root.insert("x-kustomer-events".into(), json!(r.events));
            if self.settings.evidence {
                root.insert(EVIDENCE_KEYWORD.into(), r.samples.into());
            }
            root.insert("definitions".into(), definitions.into());
            out.insert(type_name.clone(), Value::Object(root));
        }
        out
    }

    /// Writes `<resource>.json` for each schema into `dir` (created when
    /// missing) and returns the paths written. A JSON file of one's own
    /// there (one that is not a resource's schema, [`is_resource_schema`])
    /// with the name of one to write is an error, and nothing is written.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let schemas = self.schemas();
        check_writable(dir, &schemas)?;
        fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.into(),
            error: source,
        })?;
        let mut written = Vec::new();
        for (name, schema) in schemas {
            let path = dir.join(format!("{name}.json"));
            fs::write(&path, to_pretty(&schema)).map_err(|source| Error::Io {
                path: path.clone(),
                error: source,
            })?;
            written.push(path);
        }
        Ok(written)
    }
}

/// Whether `schemas` can be written into `dir` ([`Inferrer::write`]): not
/// when a JSON file of one's own there (JSON without
/// `x-kustomer-resource`, [`is_resource_schema`]) has the name of one, as
/// writing would replace it. A file that is not JSON at all (a schema left
/// with merge conflict markers, cut short) is a schema to write anew.
pub fn check_writable(dir: &Path, schemas: &BTreeMap<String, Value>) -> Result<()> {
    for name in schemas.keys() {
        let path = dir.join(format!("{name}.json"));
        let own = fs::read(&path).is_ok_and(|bytes| {
            serde_json::from_slice::<Value>(bytes.strip_prefix(BOM).unwrap_or(&bytes))
                .is_ok_and(|v| !is_resource_schema(&v))
        });
        if own {
            return Err(Error::Io {
                path,
                error: std::io::Error::other(
                    "a JSON file of your own (without `x-kustomer-resource`: not a schema this \
                     toolkit wrote) has the name of a schema to write: move it out of the \
                     schemas' directory, or delete it; nothing was written",
                ),
            });
        }
    }
    Ok(())
}

/// Infers one schema from any JSON values, with no Kustomer rules: the
/// merge rules alone (required/optional/nullable, unions, `[]`, null-only).
///
/// ```
/// use serde_json::json;
///
/// let schema = kustomer_schema::infer_values(
///     &[json!({"a": 1, "b": null}), json!({"a": 2.5})],
///     &kustomer_schema::Settings::default().with_evidence(false),
/// );
/// assert_eq!(schema["properties"]["a"], json!({"type": "number"}));
/// assert_eq!(schema["properties"]["b"], json!({}));
/// assert_eq!(schema["required"], json!(["a"]));
/// ```
pub fn infer_values<'a>(values: impl IntoIterator<Item = &'a Value>, settings: &Settings) -> Value {
    let mut shape = Shape::default();
    let mut n = 0u64;
    for v in values {
        shape.observe(
            v,
            Role::Plain,
            Cx {
                sample: n,
                formats: settings.formats,
            },
        );
        n += 1;
    }
    let mut taken = BTreeSet::new();
    let (names, hoisted) = if settings.shared_shapes {
        hoist(&[(&wrap(&shape), Role::Plain)], "", &mut taken)
    } else {
        Default::default()
    };
    let renderer = Renderer {
        resource: "",
        evidence: settings.evidence,
        hoisted: &names,
    };
    let mut root = match renderer.shape(&shape, Role::Plain) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    root.insert("$schema".into(), DRAFT.into());
    if settings.evidence {
        root.insert(EVIDENCE_KEYWORD.into(), n.into());
    }
    if !hoisted.is_empty() {
        let defs: Map<String, Value> = hoisted
            .iter()
            .map(|(name, (role, o))| (name.clone(), Value::Object(renderer.object(o, *role))))
            .collect();
        root.insert("definitions".into(), defs.into());
    }
    Value::Object(root)
}

/// The root shape as the single property of an object, so the hoisting walk
/// (which visits what is *under* an object) sees the root too.
fn wrap(shape: &Shape) -> Object {
    let mut o = Object::default();
    o.evidence_for("value").merge(shape);
    o
}

/// The schema files in `dir` that differ from `schemas`: changed, missing, or
/// a `.json` file for a resource no sample has. Empty when up to date.
pub fn stale(dir: &Path, schemas: &BTreeMap<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, schema) in schemas {
        let path = dir.join(format!("{name}.json"));
        match fs::read(&path) {
            Ok(have) if have == to_pretty(schema).as_bytes() => {}
            Ok(_) => out.push(format!(
                "{}: differs from the inferred schema",
                path.display()
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                out.push(format!("{}: missing", path.display()))
            }
            Err(e) => out.push(format!("{}: cannot be read: {e}", path.display())),
        }
    }
    out.extend(
        leftovers(dir, schemas)
            .iter()
            .map(|p| format!("{}: no sample has this resource", p.display())),
    );
    out
}

/// The schemas in `dir` that inference wrote for a resource `schemas` does
/// not have, in name order.
fn leftovers(dir: &Path, schemas: &BTreeMap<String, Value>) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut extra: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .is_none_or(|s| !schemas.contains_key(s))
        })
        .filter(|p| is_inferred(p))
        .collect();
    extra.sort();
    extra
}

/// Whether the file at `path` is a schema inference wrote (a JSON object
/// naming its resource in `x-kustomer-resource`), not a file of one's own.
fn is_inferred(path: &Path) -> bool {
    fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .is_some_and(|v| is_resource_schema(&v))
}

/// Whether `value` is a resource's schema, as inference writes them: a
/// JSON object naming its resource in `x-kustomer-resource`. Any other
/// JSON file in a schemas directory is a file of one's own, which
/// inference, its `stale` and `prune`, and code generation leave alone.
pub fn is_resource_schema(value: &Value) -> bool {
    value.get("x-kustomer-resource").is_some()
}

/// Removes the schemas in `dir` that inference wrote for a resource that
/// `schemas` no longer has (its samples are gone), so that they do not make
/// `stale` fail for ever; files of one's own are left alone. Returns the
/// paths removed.
pub fn prune(dir: &Path, schemas: &BTreeMap<String, Value>) -> Result<Vec<PathBuf>> {
    let removed = leftovers(dir, schemas);
    for path in &removed {
        fs::remove_file(path).map_err(|source| Error::Io {
            path: path.clone(),
            error: source,
        })?;
    }
    Ok(removed)
}

/// Pretty JSON with sorted keys and a final newline: the on-disk form.
pub fn to_pretty(schema: &Value) -> String {
    let mut s = serde_json::to_string_pretty(schema).unwrap_or_default();
    s.push('\n');
    s
}

/// Values inside `changes` are the attribute's values at other times: they
/// are evidence for its type (never for its presence).
fn feed_changes(envelope: &mut Object, raw: &Map<String, Value>, cx: Cx) {
    let Some(Value::Object(changes)) = raw.get("changes") else {
        return;
    };
    for (section, target_role) in [
        ("attributes", Role::Attributes),
        ("relationships", Role::RelationshipMap),
    ] {
        let Some(Value::Object(entries)) = changes.get(section) else {
            continue;
        };
        let target = &mut envelope
            .evidence_for("data")
            .objects
            .evidence_for(section)
            .objects;
        for (key, change) in entries {
            let Value::Object(change) = change else {
                continue;
            };
            for side in ["before", "after"] {
                if let Some(v) = change.get(side) {
                    target
                        .evidence_for(key)
                        .observe(v, target_role.child(key), cx);
                }
            }
        }
    }
}

/// Calls `f` for every location whose objects go to a named definition.
fn collect_definitions(
    s: &Shape,
    role: Role,
    prefix: &str,
    f: &mut dyn FnMut(String, Role, &Object),
) {
    if role == Role::Any {
        return;
    }
    if let Some(items) = &s.arrays.items {
        collect_definitions(items, role, prefix, f);
    }
    if s.objects.count == 0 && s.objects.props.is_empty() {
        return;
    }
    if let Some(name) = role.definition(prefix) {
        f(name, role, &s.objects);
    }
    for (key, p) in &s.objects.props {
        collect_definitions(&p.shape, role.child(key), prefix, f);
    }
}

/// The prefix of a resource's definition names; resources whose name is
/// already a shared definition's, or a type name the models use for
/// something else ([`RESERVED_TYPE_NAMES`]), get `Resource` appended, and
/// one whose name starts with a digit (`3pl-shipment`) gets it prepended
/// (`Resource3plShipment`), so that every name is a Rust type name.
/// What is wrong with the parts of `envelope` every model is built around,
/// if anything: `data.attributes`, `data.relationships`, `changes` and its
/// `attributes` and `relationships` are objects, `id` and `data.id`
/// strings (each may be absent; `changes`, `id` and `data.id` may be null,
/// as `changes` is on a create, but the others are fields no model makes
/// optional, so one null would turn every handler's `attributes` into an
/// `Option`). So are the parts the generated change sets and custom
/// attributes are built around: each entry of `changes.attributes` and
/// `changes.relationships` is an object (a change, typed by its field,
/// whatever the samples showed), its `op` a string; `data.attributes.custom`
/// and the `before` and `after` of its change are objects or null (one of
/// another type would turn every typed custom attribute into one untyped
/// value).
fn spine_problem(envelope: &Map<String, Value>) -> Option<SampleProblem> {
    /// What a part must be: an object or a string, and whether null is
    /// taken.
    #[derive(Clone, Copy)]
    struct Must {
        object: bool,
        nullable: bool,
    }
    const OBJECT: Must = Must {
        object: true,
        nullable: false,
    };
    const OBJECT_OR_NULL: Must = Must {
        object: true,
        nullable: true,
    };
    const STRING: Must = Must {
        object: false,
        nullable: false,
    };
    const STRING_OR_NULL: Must = Must {
        object: false,
        nullable: true,
    };
    let data = envelope.get("data").and_then(Value::as_object);
    let attributes = data
        .and_then(|d| d.get("attributes"))
        .and_then(Value::as_object);
    let changes = envelope.get("changes").and_then(Value::as_object);
    let mut parts: Vec<(String, Option<&Value>, Must)> = vec![
        (
            "/data/attributes".into(),
            data.and_then(|d| d.get("attributes")),
            OBJECT,
        ),
        (
            "/data/relationships".into(),
            data.and_then(|d| d.get("relationships")),
            OBJECT,
        ),
        ("/changes".into(), envelope.get("changes"), OBJECT_OR_NULL),
        (
            "/data/attributes/custom".into(),
            attributes.and_then(|a| a.get("custom")),
            OBJECT_OR_NULL,
        ),
        ("/id".into(), envelope.get("id"), STRING_OR_NULL),
        (
            "/data/id".into(),
            data.and_then(|d| d.get("id")),
            STRING_OR_NULL,
        ),
    ];
    for section in ["attributes", "relationships"] {
        let value = changes.and_then(|c| c.get(section));
        parts.push((format!("/changes/{section}"), value, OBJECT));
        for (key, change) in value.and_then(Value::as_object).into_iter().flatten() {
            let at = format!("/changes/{section}/{}", escape_pointer(key));
            parts.push((at.clone(), Some(change), OBJECT));
            let change = change.as_object();
            parts.push((format!("{at}/op"), change.and_then(|c| c.get("op")), STRING));
            if section == "attributes" && key == "custom" {
                for side in ["before", "after"] {
                    parts.push((
                        format!("{at}/{side}"),
                        change.and_then(|c| c.get(side)),
                        OBJECT_OR_NULL,
                    ));
                }
            }
        }
    }
    parts.into_iter().find_map(|(pointer, value, must)| {
        let fits = match value {
            None => true,
            Some(Value::Null) => must.nullable,
            Some(Value::Object(_)) => must.object,
            Some(Value::String(_)) => !must.object,
            Some(_) => false,
        };
        (!fits).then(|| SampleProblem::Spine {
            pointer,
            expected: if must.object { "an object" } else { "a string" },
            found: json_kind(value.unwrap_or(&Value::Null)),
        })
    })
}

/// A key as a step of a JSON Pointer (`~` as `~0`, `/` as `~1`).
fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn resource_prefix(type_name: &str) -> String {
    let p = pascal_case(type_name);
    if p.starts_with(|c: char| c.is_ascii_digit()) {
        format!("Resource{p}")
    } else if SHARED_DEFINITIONS.contains(&p.as_str()) || RESERVED_TYPE_NAMES.contains(&p.as_str())
    {
        format!("{p}Resource")
    } else {
        p
    }
}

/// A resource name becomes a file name: keep it to a safe alphabet.
/// Letters, digits, `_` and `-`, in segments joined by `.` (a custom
/// object's type, such as `kobject.order`), at most 64 bytes: a file name
/// on every system, and a module name once snake-cased.
fn is_resource_name(s: &str) -> bool {
    s.len() <= 64
        && s.bytes().any(|b| b.is_ascii_alphabetic())
        && s.split('.').all(|segment| {
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

/// Whether a file's name makes it a sample file in a directory: it ends in
/// `.json`, `.jsonl` or `.ndjson`, in any case (`.JSON` too).
pub fn is_sample_name(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        ["json", "jsonl", "ndjson"]
            .iter()
            .any(|x| e.eq_ignore_ascii_case(x))
    })
}

/// Whether a file's name says it holds JSON Lines: it ends in `.jsonl` or
/// `.ndjson`, in any case.
pub fn is_lines_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("ndjson"))
}

/// The sample files `path` names: itself, or a directory's `.json`,
/// `.jsonl` and `.ndjson` files ([`is_sample_name`]) in name order (not
/// descending into subdirectories), as [`Inferrer::add_path`] reads them. A
/// directory with none is an error. An entry with such a name that cannot
/// be looked at (a link to nothing, a loop of links) is among them, so that
/// reading it says why rather than it being left out without a word; a
/// pipe or socket is not.
pub fn sample_files(path: &Path) -> Result<Vec<PathBuf>> {
    let meta = fs::metadata(path).map_err(|source| Error::Io {
        path: path.into(),
        error: link_to_nothing(path, source),
    })?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let entries = fs::read_dir(path).map_err(|source| Error::Io {
        path: path.into(),
        error: source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Io {
            path: path.into(),
            error: source,
        })?;
        let p = entry.path();
        if is_sample_name(&p) && fs::metadata(&p).map_or(true, |m| m.is_file()) {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(Error::NoSamples { path: path.into() });
    }
    Ok(files)
}

/// The largest sample file read: 1 GiB, far past any capture of a few
/// hundred thousand events, and a bound on the memory a wrong path
/// (`/dev/zero`) can take.
pub const MAX_SAMPLE_FILE: u64 = 1024 * 1024 * 1024;

fn read(path: &Path) -> Result<Vec<u8>> {
    read_at_most(path, MAX_SAMPLE_FILE)
}

/// Opens the file at `path` to read it; a link to nothing is said to be
/// one (`a link to /gone.json, which does not exist`), where the system
/// says only "No such file or directory".
pub fn open_file(path: &Path) -> std::io::Result<fs::File> {
    fs::File::open(path).map_err(|e| link_to_nothing(path, e))
}

/// `e`, met at `path`; said to be a link to nothing when it is one.
fn link_to_nothing(path: &Path, e: std::io::Error) -> std::io::Error {
    let target = (e.kind() == std::io::ErrorKind::NotFound)
        .then(|| fs::read_link(path).ok())
        .flatten();
    match target {
        Some(target) => std::io::Error::new(
            e.kind(),
            format!("a link to {}, which does not exist", target.display()),
        ),
        None => e,
    }
}

/// The bytes of the file at `path`; an error when it has more than `limit`.
fn read_at_most(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let io = |source| Error::Io {
        path: path.into(),
        error: source,
    };
    let too_large = || {
        io(std::io::Error::other(format!(
            "larger than {}, the most a sample file may hold: split the samples into several files",
            size_text(limit)
        )))
    };
    let file = open_file(path).map_err(io)?;
    // A file that says it is larger is refused before it is read; one that
    // does not know its size (a pipe, `/dev/zero`) is read up to the limit.
    if file
        .metadata()
        .is_ok_and(|m| m.is_file() && m.len() > limit)
    {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// `1 GiB`, `64 KiB`, `100 bytes`.
fn size_text(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// The line numbers of the samples of one input, counted as the reading
/// goes on: each byte is looked at once, however many samples there are.
#[derive(Default)]
struct Lines {
    /// Bytes counted so far, and the newlines among them.
    counted: usize,
    newlines: usize,
}

impl Lines {
    /// The 1-based line of the sample that starts at the first non-blank
    /// byte at or after `offset` (which never goes back).
    fn at(&mut self, bytes: &[u8], offset: usize) -> usize {
        let offset = offset.max(self.counted);
        let start = bytes[offset..]
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .map_or(bytes.len(), |p| offset + p);
        self.newlines += bytes[self.counted..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.counted = start;
        1 + self.newlines
    }
}

/// The UTF-8 byte order mark some editors write at the start of a file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Where the line after line `line` starts, counting from `from`, which is
/// on line `from_line`; `None` when `line` is the last.
fn start_of_line_after(bytes: &[u8], from: usize, from_line: usize, line: usize) -> Option<usize> {
    let mut newlines = bytes[from..]
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'\n')
        .map(|(i, _)| from + i + 1);
    newlines.nth(line.checked_sub(from_line)?)
}

/// The first line at or after `from` (a line's start, on line `from_line`)
/// that starts an object, `{` first (after a byte order mark): where a
/// sample of JSON Lines can start. Its start and line.
fn next_object_line(bytes: &[u8], from: usize, from_line: usize) -> Option<(usize, usize)> {
    let mut start = from;
    let mut line = from_line;
    while start < bytes.len() {
        let text = &bytes[start..];
        if text.strip_prefix(BOM).unwrap_or(text).starts_with(b"{") {
            return Some((start, line));
        }
        start += text.iter().position(|&b| b == b'\n')? + 1;
        line += 1;
    }
    None
}

/// Whether line `line` (1-based) of `bytes`, alone, is JSON (after a byte
/// order mark, which a line of files joined with `cat` may start with).
fn line_is_json(bytes: &[u8], line: usize) -> bool {
    line_text(bytes, line)
        .map(|text| text.strip_prefix(BOM).unwrap_or(text))
        .is_some_and(|text| serde_json::from_slice::<Value>(text).is_ok())
}

/// Line `line` (1-based) of `bytes`, without its newline.
fn line_text(bytes: &[u8], line: usize) -> Option<&[u8]> {
    bytes.split(|&b| b == b'\n').nth(line.saturating_sub(1))
}

/// The column (1-based, in bytes) where the number ending at `column` of
/// line `line` starts; `column` itself when no number ends there.
fn number_start(bytes: &[u8], line: usize, column: usize) -> usize {
    let is_number = |b: &u8| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-');
    let Some(text) = line_text(bytes, line) else {
        return column;
    };
    match text.get(..column) {
        Some(before) if before.last().is_some_and(is_number) => {
            let digits = before.iter().rev().take_while(|b| is_number(b)).count();
            column + 1 - digits
        }
        _ => column,
    }
}

/// Whether line `line` (1-based) of `bytes` starts with `{` (after a byte
/// order mark): the start of a sample, in JSON Lines.
fn starts_an_object(bytes: &[u8], line: usize) -> bool {
    line_text(bytes, line)
        .map(|text| text.strip_prefix(BOM).unwrap_or(text))
        .is_some_and(|text| text.starts_with(b"{"))
}

/// When the line starting at `start` is JSON cut short (it ends before its
/// value does): the column of its end, what is wrong, and the JSON Pointer
/// of the value it ends in.
fn cut_short(bytes: &[u8], start: usize) -> Option<(usize, String, String)> {
    let end = bytes[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |p| start + p);
    let own = &bytes[start..end];
    let _ = error_pointer();
    let alone = serde_json::from_slice::<Sample>(own).err()?;
    let pointer = error_pointer();
    alone.is_eof().then(|| {
        // Columns count from the line's start, before the sample if it is
        // indented.
        let line_start = bytes[..start]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        let line = &bytes[line_start..end];
        let columns = String::from_utf8_lossy(line).trim_end().chars().count();
        (
            columns.max(1),
            format!(
                "{}: the line ends before its sample does (in JSON Lines, each sample is one line)",
                json_message(&alone)
            ),
            pointer,
        )
    })
}

fn trimmed_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |p| p + 1)
}

/// The 1-based line and column of a parse error. serde_json gives column 0
/// when the last byte it read was a newline (at the end of input, or a raw
/// newline inside a string); that newline ends the previous line, so point
/// there rather than at a column 0 of the next line, which may not exist.
fn json_position(bytes: &[u8], e: &serde_json::Error) -> (usize, usize) {
    let (line, column) = (e.line(), e.column());
    if column > 0 || line < 2 {
        return (line.max(1), column.max(1));
    }
    let mut newlines = bytes
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'\n')
        .map(|(i, _)| i);
    let start = if line == 2 {
        0
    } else {
        newlines.nth(line - 3).map_or(0, |i| i + 1)
    };
    let end = newlines.next().unwrap_or(bytes.len());
    (line - 1, end.saturating_sub(start) + 1)
}

/// serde_json's message without its own " at line L column C" tail, which
/// the error prints in `file:line:column` form instead.
/// Whether `json` has anything but white space after its (1-based) line
/// `line`.
fn text_after_line(json: &[u8], line: usize) -> bool {
    let Some(end) = json
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(line.saturating_sub(1))
        .map(|(i, _)| i + 1)
    else {
        return false;
    };
    json[end..].iter().any(|b| !b.is_ascii_whitespace())
}

fn json_message(e: &serde_json::Error) -> String {
    let s = e.to_string();
    let s = match s.rfind(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    };
    if s == "recursion limit exceeded" {
        // serde_json's, which its message does not give.
        return format!("{s} (arrays and objects nested more than 128 deep)");
    }
    s
}

/// `json` with each lone UTF-16 surrogate escape (a leading `\ud800`–`\udbff`
/// not followed by a trailing `\udc00`–`\udfff`, or a trailing one alone)
/// written `\ufffd`, the replacement character: JSON's grammar allows them,
/// and JavaScript's `JSON.stringify` writes one for a string cut inside a
/// pair, but `serde_json` refuses them and a Rust string cannot hold one.
/// The runtime's reader reads them as U+FFFD too. Borrowed when there is none.
pub fn lone_surrogates_replaced(json: &[u8]) -> Cow<'_, [u8]> {
    /// The code unit of a `\uXXXX` escape at `at`.
    fn unit(json: &[u8], at: usize) -> Option<u16> {
        let escape = json.get(at..at + 6)?;
        let hex = escape.strip_prefix(b"\\u")?;
        u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    }
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut i = 0;
    while let Some(offset) = json[i..].iter().position(|&b| b == b'\\') {
        i += offset;
        match unit(json, i) {
            Some(0xD800..=0xDBFF) if matches!(unit(json, i + 6), Some(0xDC00..=0xDFFF)) => {
                i += 12;
            }
            Some(0xD800..=0xDFFF) => {
                let out = out.get_or_insert_with(|| Vec::with_capacity(json.len()));
                out.extend_from_slice(&json[copied..i]);
                out.extend_from_slice(b"\\ufffd");
                i += 6;
                copied = i;
            }
            // Any other escape is two bytes, so the second `\\` of `\\\\`
            // does not start one.
            _ => i += 2,
        }
        if i >= json.len() {
            break;
        }
    }
    match out {
        Some(mut out) => {
            out.extend_from_slice(&json[copied.min(json.len())..]);
            Cow::Owned(out)
        }
        None => Cow::Borrowed(json),
    }
}

/// A JSON value's kind, with its article, for messages (`a number`,
/// `null`).
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One JSON value read from a sample file, and, when it is an object
/// whose first and last `name` differ, both: a JSON object keeps the last
/// of a key given twice, where the receiver routes a body by its first name
/// and refuses it when the last differs, so inference must see that too.
/// Read in one pass, as `Value` reads it.
struct Sample {
    value: Value,
    names: Option<(String, String)>,
}

impl<'de> serde::Deserialize<'de> for Sample {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SampleVisitor)
    }
}

struct SampleVisitor;

impl SampleVisitor {
    fn plain<E>(value: Value) -> Result<Sample, E> {
        Ok(Sample { value, names: None })
    }
}

impl<'de> serde::de::Visitor<'de> for SampleVisitor {
    type Value = Sample;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Sample, E> {
        Self::plain(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Sample, E> {
        Self::plain(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Sample, E> {
        Self::plain(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Sample, E> {
        Self::plain(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Sample, E> {
        Self::plain(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Sample, E> {
        Self::plain(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Sample, E> {
        Self::plain(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Sample, E> {
        Self::plain(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Sample, A::Error> {
        Self::plain(Value::Array(read_array(seq)?))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Sample, A::Error> {
        let mut object = Map::new();
        let (mut first, mut last): (Option<Value>, Option<Value>) = (None, None);
        let mut last_scalar = LastScalar::default();
        while let Some(key) = next_key(&mut map, &last_scalar)? {
            let value = map
                .next_value_seed(Tracked)
                .map_err(passed(|| key.clone()))?;
            last_scalar.note(&key, &value);
            if key == "name" {
                if first.is_none() {
                    first = Some(value.clone());
                } else {
                    last = Some(value.clone());
                }
            }
            object.insert(key, value);
        }
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let names = match (first, last) {
            (Some(f), Some(l)) if f != l => Some((text(&f), text(&l))),
            _ => None,
        };
        Ok(Sample {
            value: Value::Object(object),
            names,
        })
    }
}

thread_local! {
    /// The keys and indexes an error in the sample being read passed
    /// through, innermost first: each object and array the error leaves
    /// adds where in it the error was ([`Tracked`]).
    static ERROR_PATH: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Notes `at` (a key, or an index) on the way out of an error.
fn passed<E>(at: impl FnOnce() -> String) -> impl FnOnce(E) -> E {
    move |e| {
        ERROR_PATH.with(|path| path.borrow_mut().push(at()));
        e
    }
}

/// The JSON Pointer of the value the last error was in (the path noted on
/// its way out), and the path emptied for the next sample.
fn error_pointer() -> String {
    ERROR_PATH.with(|path| {
        let mut pointer = String::new();
        for at in path.borrow_mut().drain(..).rev() {
            pointer.push('/');
            pointer.push_str(&at.replace('~', "~0").replace('/', "~1"));
        }
        pointer
    })
}

/// Reads a value inside a sample as `serde_json` does, noting where an
/// error in it was.
struct Tracked;

impl<'de> serde::de::DeserializeSeed<'de> for Tracked {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Tracked {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        read_array(seq).map(Value::Array)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        let mut last_scalar = LastScalar::default();
        while let Some(key) = next_key(&mut map, &last_scalar)? {
            // A number, when `serde_json`'s `arbitrary_precision` is on
            // (another crate of the build may turn it on): handed over as a
            // map of one entry holding its text, which `Value` reads back.
            if object.is_empty() && key == NUMBER_TOKEN && *ARBITRARY_PRECISION {
                let text: String = map.next_value()?;
                return serde_json::from_str(&text).map_err(serde::de::Error::custom);
            }
            let value = map
                .next_value_seed(Tracked)
                .map_err(passed(|| key.clone()))?;
            last_scalar.note(&key, &value);
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// The key of an object's last value when that value is a number or
/// literal (which the text may have cut short there); its buffer reused
/// from one key to the next.
#[derive(Default)]
struct LastScalar {
    key: String,
    scalar: bool,
}

impl LastScalar {
    fn note(&mut self, key: &str, value: &Value) {
        self.scalar = is_scalar(value);
        if self.scalar {
            self.key.clear();
            self.key.push_str(key);
        }
    }
}

/// The next key of an object, or its end. The text ending right after a
/// number or literal (`last`, which may have been cut there) is an error in
/// that value, as `parse` names it.
fn next_key<'de, A: serde::de::MapAccess<'de>>(
    map: &mut A,
    last: &LastScalar,
) -> Result<Option<String>, A::Error> {
    map.next_key::<String>().map_err(|e| {
        if last.scalar && e.to_string().starts_with("EOF while parsing an object") {
            passed(|| last.key.clone())(e)
        } else {
            e
        }
    })
}

/// A number, a boolean or `null`: a value the text may cut short unseen.
fn is_scalar(value: &Value) -> bool {
    matches!(value, Value::Number(_) | Value::Bool(_) | Value::Null)
}

/// The key `serde_json` hands a number over with under its
/// `arbitrary_precision` feature.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Whether `serde_json`'s `arbitrary_precision` feature is on in this build
/// (it keeps a number's text as written).
static ARBITRARY_PRECISION: std::sync::LazyLock<bool> = std::sync::LazyLock::new(|| {
    let number = serde_json::from_str::<Value>("1.10").unwrap_or_default();
    // Its text (not the JSON string "1.10", which `Value` compares with).
    serde_json::to_string(&number).is_ok_and(|text| text == "1.10")
});

/// The elements of an array, noting the index of one an error was in: the
/// element being read, or expected after a comma, or a number or literal
/// the text ends after; an error between two elements (`[1,2}`: no `,` or
/// `]` after one) is the array's, as `parse` names each.
fn read_array<'de, A: serde::de::SeqAccess<'de>>(mut seq: A) -> Result<Vec<Value>, A::Error> {
    let mut items = Vec::new();
    loop {
        let index = items.len();
        let started = std::cell::Cell::new(false);
        match seq.next_element_seed(Started(&started)) {
            Ok(Some(item)) => items.push(item),
            Ok(None) => return Ok(items),
            Err(e) => {
                // Said before the element's own reading began: after a
                // comma (a value expected there), or at the first element's
                // place in an array cut short.
                let text = e.to_string();
                let at = if started.get()
                    || text.starts_with("trailing comma")
                    || text.starts_with("EOF while parsing a value")
                {
                    Some(index)
                } else if text.starts_with("EOF while parsing a list") {
                    // The text ends after an element: a number or literal
                    // may have been cut there, and is named; after a string,
                    // an array or an object, the array is.
                    match items.last() {
                        None => Some(0),
                        Some(last) if is_scalar(last) => Some(index - 1),
                        Some(_) => None,
                    }
                } else {
                    None
                };
                return Err(match at {
                    Some(at) => passed(|| at.to_string())(e),
                    None => e,
                });
            }
        }
    }
}

/// [`Tracked`], noting that an element's reading began.
struct Started<'c>(&'c std::cell::Cell<bool>);

impl<'de> serde::de::DeserializeSeed<'de> for Started<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.0.set(true);
        serde::de::DeserializeSeed::deserialize(Tracked, d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_are_counted_once_across_samples() {
        let bytes = b"\n{\"a\":1}\n\n  {\"b\":2}\n{\"c\":3}";
        let mut lines = Lines::default();
        assert_eq!(lines.at(bytes, 0), 2);
        assert_eq!(lines.at(bytes, 8), 4);
        assert_eq!(lines.at(bytes, 19), 5);
        assert_eq!(lines.at(bytes, bytes.len()), 5);
    }

    #[test]
    fn a_sample_file_past_the_limit_is_an_error_not_read_whole() {
        let dir = std::env::temp_dir().join(format!("kustomer-schema-cap-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("big.jsonl");
        fs::write(&file, vec![b' '; 2048]).unwrap();
        assert_eq!(read_at_most(&file, 2048).unwrap().len(), 2048);
        let err = read_at_most(&file, 1024).unwrap_err().to_string();
        assert!(
            err.ends_with("big.jsonl: larger than 1 KiB, the most a sample file may hold: split the samples into several files"),
            "{err}"
        );
        fs::remove_dir_all(&dir).unwrap();
        // A device that never ends stops at the limit.
        #[cfg(unix)]
        {
            let err = read_at_most(Path::new("/dev/zero"), 4096).unwrap_err();
            assert!(err.to_string().contains("larger than 4 KiB"), "{err}");
        }
        assert_eq!(size_text(MAX_SAMPLE_FILE), "1 GiB");
    }

    #[test]
    fn an_event_named_twice_is_unusable_as_the_receiver_refuses_it() {
        let twice = br#"{"name":"kustomer.widget.create","data":{"type":"widget","attributes":{"name":"x"}},"name":"kustomer.gadget.create"}"#;
        let mut inferrer = Inferrer::default();
        let err = inferrer.add_json(twice, "dup.json").unwrap_err();
        assert_eq!(
            err.to_string(),
            "dup.json: the sample names its event twice, \"kustomer.widget.create\" and then \"kustomer.gadget.create\", at /name"
        );
        assert!(inferrer.schemas().is_empty(), "nothing inferred from it");
        // In JSON Lines, the line is named, and the others are kept.
        let lines = [
            r#"{"name":"kustomer.widget.create","data":{"type":"widget","attributes":{"a":1}}}"#,
            r#"{"name":"kustomer.widget.create","name":7,"data":{"type":"widget"}}"#,
        ]
        .join("\n");
        let mut problems = Vec::new();
        let added = inferrer.add_json_each(
            lines.as_bytes(),
            "s.jsonl",
            &mut |e| problems.push(e.to_string()),
            false,
        );
        assert_eq!(added, 1);
        assert_eq!(
            problems,
            [
                "s.jsonl: sample 2 (line 2): the sample names its event twice, \"kustomer.widget.create\" and then \"7\", at /name"
            ]
        );
        // The same name twice (or first and last the same, as the receiver
        // compares them), `name` keys deeper down, or `"name"` in a string
        // value: usable.
        for fine in [
            r#"{"name":"kustomer.widget.create","name":"x","name":"kustomer.widget.create","data":{"type":"widget"}}"#,
            r#"{"name":"kustomer.widget.create","name":"kustomer.widget.create","data":{"type":"widget"}}"#,
            r#"{"name":"kustomer.widget.create","data":{"type":"widget","attributes":{"name":"a","x":{"name":"b"}}}}"#,
            r#"{"name":"kustomer.widget.create","data":{"type":"widget","attributes":{"note":"\"name\" \"name\""}}}"#,
        ] {
            Inferrer::default()
                .add_json(fine.as_bytes(), "fine.json")
                .unwrap();
        }
        let array: Sample = serde_json::from_slice(b"[\"name\",\"name\"]").unwrap();
        assert!(
            array.names.is_none() && array.value.is_array(),
            "not an object"
        );
    }
}
