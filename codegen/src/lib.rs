//! JSON Schemas → Rust models for Kustomer webhook events.
//!
//! Reads the schemas `kustomer-schema` infers (one per resource) and writes
//! the Rust models the runtime parses events into: plain structs, each marked
//! `#[kustomer_webhooks::model]`, which makes them drift-tolerant (a value of
//! an unexpected type is kept and reported, never an error) and lossless (the
//! keys they do not model are kept in `extra`, and re-serialising gives back
//! the JSON received).
//!
//! What the schemas say becomes:
//!
//! | schema | Rust |
//! |---|---|
//! | `string` / `date-time` / `kustomer-id` | [`Str`], [`DateTime`], [`Id`] |
//! | `integer` / `number` / `boolean` | `i64` / `serde_json::Number` / `bool` |
//! | `array` of X (no items seen: of any JSON) | `Vec<X>` (`Vec<Value>`) |
//! | an object with properties | a struct, named after the definition or `<Resource><Key>` |
//! | an object with no properties | `Map<String, Value>` |
//! | `{}` (no evidence), or a union of types | `Option<Value>` |
//! | `$ref` to a shared definition | `Relationship`, `Links`, `ResourceIdentifier` |
//!
//! Every field is an `Option` (a payload may always lack it), except required
//! struct-typed fields (`data`, `data.attributes`…), which keep their default
//! when absent. Each resource also gets a typed change set (every attribute as
//! `Option<Box<Change<T>>>`, `T` that attribute's type: boxed, so that an
//! event with dozens of possible changes stays a few kilobytes to build, move
//! into a handler and drop), an event type per event
//! (`CustomerCreate`, `CustomerUpdate`), and all of them `AnyEvent`, the set
//! of models (`kustomer_webhooks::Events`), with `parse`, `parse_as`,
//! `dispatcher()` and `dispatcher_with_state()` for it. The same code works
//! as the runtime's bundled models and as a module in a service's own crate
//! (see [`Settings::with_command`] and [`Settings::with_source`] for its
//! header, [`Settings::with_previous_models`] to keep the field and type
//! names of the last generation, [`summarize`] for what changed since, and [`prune`] for
//! the files no longer produced).
//!
//! Every type name is a Rust identifier, and no two clash: a name made of a
//! key, a title or a definition name that is not one is written in
//! PascalCase (`Resource` before a leading digit: `3pl-shipment` gives
//! `Resource3plShipment`), and a struct whose name an event type, a type
//! the files import or write (`Value`, `DateTime`, `Option`…) or `AnyEvent`
//! and `OtherEvent` already have is numbered (`ConversationUpdate2`), as is
//! a nested object named like one of its resource's own types (a `custom`
//! object under `billing` is `CustomerCustom2`: `CustomerCustom` is the org's
//! custom attributes).
//!
//! [`Str`]: https://docs.rs/kustomer-webhooks/latest/kustomer_webhooks/struct.Str.html
//! [`DateTime`]: https://docs.rs/kustomer-webhooks/latest/kustomer_webhooks/struct.DateTime.html
//! [`Id`]: https://docs.rs/kustomer-webhooks/latest/kustomer_webhooks/struct.Id.html
//!
//! ```
//! use kustomer_codegen::{Settings, generate, read_schemas};
//!
//! let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/schemas");
//! let files = generate(&read_schemas(&dir)?, &Settings::default())?;
//! assert!(files["customer.rs"].contains("pub struct CustomerAttributes"));
//! # Ok::<(), kustomer_codegen::Error>(())
//! ```
#![deny(missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kustomer_schema::naming::{
    RESERVED_TYPE_NAMES, event_type_name, field_snake_case, field_snake_case_runs_joined,
    is_keyword, module_name, pascal_case, pascal_case_runs_joined, snake_case,
};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use serde_json::Value;

mod summary;
pub use summary::{ModelChange, ModelField, read_models, summarize};

/// What can go wrong while generating.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A schema file could not be read.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        error: std::io::Error,
    },
    /// A schema file is not JSON.
    #[error("{}: invalid JSON: {error}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        error: serde_json::Error,
    },
    /// A schema is not shaped as `kustomer-schema` writes them.
    #[error("{resource} schema{}: {problem}", at_pointer(.pointer))]
    Schema {
        /// The resource whose schema it is.
        resource: String,
        /// Where in the schema, as a JSON Pointer.
        pointer: String,
        /// What is wrong.
        problem: String,
    },
    /// A model file generated before no longer parses (a merge conflict,
    /// an edit gone wrong), so the names its fields had cannot be kept:
    /// generating without them could give a field's name to another key.
    #[error(
        "{file} was generated before but no longer parses as Rust, at line {line}, column {column}: {message}; the names of its fields cannot be kept without it: fix it (for a merge conflict, keep one side), or delete it to name its fields afresh"
    )]
    PreviousModel {
        /// The file, as [`Settings::with_previous_models`] was given it.
        file: String,
        /// The line of the first error (1-based).
        line: usize,
        /// Its column (1-based).
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// The generated source did not parse (a bug in the generator).
    #[error("generated code for {file} does not parse: {message}")]
    Generated {
        /// The file.
        file: String,
        /// What the parser said.
        message: String,
    },
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How code is generated. Start from [`Settings::default`].
#[derive(Clone, Debug)]
pub struct Settings {
    command: String,
    source: String,
    previous: Previous,
    /// The first model generated before that did not parse.
    unreadable: Option<Unreadable>,
}

/// A model generated before that does not parse: what
/// [`Error::PreviousModel`] says.
#[derive(Clone, Debug)]
struct Unreadable {
    file: String,
    line: usize,
    column: usize,
    message: String,
}

/// What the models generated before had, to keep its names.
#[derive(Clone, Debug, Default)]
struct Previous {
    /// Their field names: struct → JSON key → Rust field.
    fields: BTreeMap<String, BTreeMap<String, String>>,
    /// Their field types as written: struct → JSON key → `Option<CustomerLvl5>`.
    types: BTreeMap<String, BTreeMap<String, String>>,
    /// The name of the file each struct was in (`customer.rs`).
    files: BTreeMap<String, String>,
    /// Their event types (`CustomerUpdate`), which `fields` holds too, with
    /// no fields.
    events: BTreeSet<String>,
    /// The event type of each of their events, by the event's name.
    event_types: BTreeMap<String, String>,
}

impl Previous {
    fn read(files: &BTreeMap<String, String>) -> Self {
        let mut previous = Previous::default();
        for (file, text) in files {
            let one = BTreeMap::from([(file.clone(), text.clone())]);
            for (owner, fields) in summary::previous_fields(&one) {
                let (names, types) = fields
                    .into_iter()
                    .map(|(json, (name, ty))| ((json.clone(), name), (json, ty)))
                    .unzip();
                previous.fields.insert(owner.clone(), names);
                previous.types.insert(owner.clone(), types);
                // By its name alone: `generate`'s caller may key the files
                // by their paths.
                let name = Path::new(file)
                    .file_name()
                    .map_or_else(|| file.clone(), |n| n.to_string_lossy().into_owned());
                previous.files.insert(owner, name);
            }
        }
        previous.event_types = summary::previous_event_types(files);
        previous.events = previous.event_types.values().cloned().collect();
        previous
    }

    /// Whether the previous models had a struct (not an event type) named
    /// `name`.
    fn had_struct(&self, name: &str) -> bool {
        self.fields.contains_key(name) && !self.events.contains(name)
    }

    /// The struct the field `key` of `owner` was typed with before, when
    /// that is a name [`Gen::unique`] gives `base` (`base` itself, or it
    /// numbered).
    fn type_of(&self, owner: &str, key: &str, base: &str) -> Option<&str> {
        let ty = self.types.get(owner)?.get(key)?;
        ty.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .find(|word| {
                word.strip_prefix(base).is_some_and(|n| {
                    n.is_empty() || (n.parse::<u32>().is_ok_and(|n| n >= 2) && !n.starts_with('0'))
                })
            })
    }

    /// Whether the models before had a struct of this name.
    fn had(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            command: "kustomer-webhooks generate".into(),
            source: "the schemas in schema/schemas/".into(),
            previous: Previous::default(),
            unreadable: None,
        }
    }
}

impl Settings {
    /// The command named in the generated files' header.
    pub fn with_command(mut self, command: impl Into<String>) -> Self {
        self.command = command.into();
        self
    }

    /// What the header says the models were generated from (default: the
    /// schemas in schema/schemas/).
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }

    /// Keeps the field names of the models generated before (file name →
    /// source, as [`read_models`] reads a models directory): a field whose
    /// JSON key the same struct read before keeps its Rust name, whatever
    /// keys arrived since. Without it, names are given in key order, so a
    /// new key that maps to the same name (`FOO_BAR` beside `fooBar`, both
    /// `foo_bar`) could take the name, and the field would read another
    /// value. Files that were not generated are ignored; a generated one
    /// that no longer parses makes [`generate`] fail with
    /// [`Error::PreviousModel`], rather than name its fields afresh.
    ///
    /// The types of nested objects keep their names the same way: the
    /// struct a field was typed with keeps its name, and a new nested
    /// object whose name another struct had is numbered past it, rather
    /// than take it and renumber that struct.
    ///
    /// ```
    /// use kustomer_codegen::{Settings, generate, read_schemas};
    ///
    /// let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/schemas");
    /// let mut schemas = read_schemas(&dir)?;
    /// let before = generate(&schemas, &Settings::default())?;
    /// assert!(before["customer.rs"].contains("pub balance_num: Option<Number>"));
    ///
    /// // A new custom attribute `BALANCE_NUM`, which sorts before `balanceNum`.
    /// let custom = schemas
    ///     .get_mut("customer")
    ///     .and_then(|s| s.pointer_mut("/definitions/CustomerAttributes/properties/custom/properties"))
    ///     .unwrap();
    /// custom["BALANCE_NUM"] = custom["balanceNum"].clone();
    ///
    /// // Named in key order alone, it would take `balance_num`.
    /// let fresh = generate(&schemas, &Settings::default())?;
    /// assert!(fresh["customer.rs"].contains("#[json(\"BALANCE_NUM\", nullable)]\n    pub balance_num:"));
    ///
    /// // With the models before, `balanceNum` keeps it.
    /// let kept = generate(&schemas, &Settings::default().with_previous_models(&before))?;
    /// assert!(kept["customer.rs"].contains("#[json(\"balanceNum\", nullable)]\n    pub balance_num:"));
    /// assert!(kept["customer.rs"].contains("#[json(\"BALANCE_NUM\", nullable)]\n    pub balance_num_2:"));
    /// # Ok::<(), kustomer_codegen::Error>(())
    /// ```
    pub fn with_previous_models(mut self, files: &BTreeMap<String, String>) -> Self {
        let generated: BTreeMap<String, String> = files
            .iter()
            .filter(|(_, text)| generated_or_conflicted(text))
            .map(|(name, text)| (name.clone(), text.clone()))
            .collect();
        self.previous = Previous::read(&generated);
        self.unreadable = generated.iter().find_map(|(file, text)| {
            let e = syn::parse_file(text).err()?;
            let at = e.span().start();
            Some(Unreadable {
                file: file.clone(),
                line: at.line,
                column: at.column + 1,
                message: e.to_string(),
            })
        });
        self
    }
}

/// `, /pointer`, or nothing for the whole schema.
fn at_pointer(pointer: &str) -> String {
    if pointer.is_empty() {
        String::new()
    } else {
        format!(", {pointer}")
    }
}

/// Reads every `*.json` schema in `dir`, keyed by file stem (the resource).
/// A JSON file that is not a resource's schema (no `x-kustomer-resource`,
/// as [`kustomer_schema::is_resource_schema`] tells) is a file of one's
/// own, and left out, as inference leaves it alone; a file that is not
/// JSON at all is an error.
pub fn read_schemas(dir: &Path) -> Result<BTreeMap<String, Value>> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.into(),
        error: source,
    })?;
    let mut out = BTreeMap::new();
    for entry in entries {
        let path = entry
            .map_err(|source| Error::Io {
                path: dir.into(),
                error: source,
            })?
            .path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.clone(),
            error: source,
        })?;
        let value = parse_schema(&text).map_err(|source| Error::Json {
            path: path.clone(),
            error: source,
        })?;
        if !kustomer_schema::is_resource_schema(&value) {
            continue;
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        out.insert(stem, value);
    }
    Ok(out)
}

/// How deep a schema file may nest. A schema nests about twice as deep as
/// the payloads it describes (an object's fields are under `properties`,
/// an array's items under `items`), and payloads nested up to serde_json's
/// limit of 128 are read, by `infer` as by the receiver: their schemas need
/// up to about 270.
const MAX_SCHEMA_DEPTH: usize = 400;

/// Reads a schema file's JSON: without serde_json's nesting limit of 128,
/// which a schema inferred from a payload nested half as deep reaches, but
/// within [`MAX_SCHEMA_DEPTH`]; a file nested deeper is read with the
/// limit, so that its error says where.
fn parse_schema(text: &str) -> serde_json::Result<Value> {
    // A byte order mark an editor saved a hand-edited schema with.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if nesting(text.as_bytes()) > MAX_SCHEMA_DEPTH {
        return serde_json::from_str(text);
    }
    let mut reader = serde_json::Deserializer::from_str(text);
    reader.disable_recursion_limit();
    let value = serde::Deserialize::deserialize(&mut reader)?;
    reader.end()?;
    Ok(value)
}

/// The deepest nesting of arrays and objects in JSON text (brackets inside
/// strings not counted).
fn nesting(json: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in json {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Generates the models module: file name → Rust source (`mod.rs`,
/// `shared.rs`, and one file per resource).
pub fn generate(
    schemas: &BTreeMap<String, Value>,
    settings: &Settings,
) -> Result<BTreeMap<String, String>> {
    if let Some(u) = &settings.unreadable {
        return Err(Error::PreviousModel {
            file: u.file.clone(),
            line: u.line,
            column: u.column,
            message: u.message.clone(),
        });
    }
    let schemas: BTreeMap<String, Value> = schemas
        .iter()
        .map(|(resource, schema)| (resource.clone(), without_self_type(schema)))
        .collect();
    let mut shared_defs: BTreeMap<String, (String, Value)> = BTreeMap::new();
    let mut files = BTreeMap::new();
    let mut typed_events = Vec::new();
    // The names a struct must not take: the shared definitions', those the
    // files import or `mod.rs` declares, and every event type's.
    let mut taken: BTreeSet<String> = SHARED
        .iter()
        .chain(&RESERVED_TYPE_NAMES)
        .map(|s| s.to_string())
        .collect();
    // The names of every resource's own types (its envelope, data,
    // attributes, relationships and change sets), which no event type takes.
    let own_types: BTreeSet<String> = schemas
        .values()
        .filter_map(|schema| {
            let title = schema.get("title")?.as_str()?;
            let prefix = type_name(title.strip_suffix("Event").unwrap_or(title))?;
            Some(RESOURCE_TYPE_SUFFIXES.map(|suffix| format!("{prefix}{suffix}")))
        })
        .flatten()
        .collect();
    // The event type of each event name, and its name and resource.
    let mut event_of: BTreeMap<String, (String, String)> = BTreeMap::new();
    // The event type of each event name.
    let mut variant_of: BTreeMap<String, String> = BTreeMap::new();
    // Each event's type, decided before any is checked below: first those
    // the previous models had (they stay put), then the events named as
    // they are (numbered only around a type the previous models gave
    // another event; two such events of one name are an error below), then
    // those renamed by `event_variant_beside` (`Event` before them,
    // numbered around every other).
    let all_events: BTreeSet<&str> = schemas.values().flat_map(events_of).collect();
    let kept: BTreeMap<&str, String> = all_events
        .iter()
        .filter_map(|event| Some((*event, settings.previous.event_types.get(*event)?.clone())))
        .collect();
    let kept_names: BTreeSet<&String> = kept.values().collect();
    let numbered = |base: String, taken: &dyn Fn(&String) -> bool| {
        let mut variant = base.clone();
        let mut n = 2;
        while taken(&variant) {
            variant = format!("{base}{n}");
            n += 1;
        }
        variant
    };
    let mut planned: BTreeMap<&str, String> = kept.clone();
    let mut renamed = Vec::new();
    for event in &all_events {
        if planned.contains_key(event) {
            continue;
        }
        let variant = event_variant_beside(event, &own_types, &settings.previous);
        if variant == event_variant(event) {
            planned.insert(event, numbered(variant, &|v| kept_names.contains(v)));
        } else {
            renamed.push((*event, variant));
        }
    }
    for (event, variant) in renamed {
        let taken: BTreeSet<String> = planned.values().cloned().collect();
        planned.insert(event, numbered(variant, &|v| taken.contains(v)));
    }
    for (resource, schema) in &schemas {
        if let Some(events) = schema.get("x-kustomer-events")
            && !events
                .as_array()
                .is_some_and(|e| e.iter().all(Value::is_string))
        {
            return Err(Error::Schema {
                resource: resource.clone(),
                pointer: "/x-kustomer-events".into(),
                problem: "`x-kustomer-events` must be a list of event names".into(),
            });
        }
        for event in events_of(schema) {
            let variant = planned
                .get(event)
                .cloned()
                .unwrap_or_else(|| event_variant(event));
            variant_of.insert(event.to_owned(), variant.clone());
            let Some((other, other_resource)) =
                event_of.insert(variant.clone(), (event.to_owned(), resource.clone()))
            else {
                continue;
            };
            let problem = if other == event && other_resource == *resource {
                format!("`{event}` is listed twice in `x-kustomer-events`: list it once")
            } else if other == event {
                format!(
                    "`{event}` (the type `{variant}`) is also an event of the {other_resource} \
                     schema: an event has one resource; look for a sample whose `name` \
                     and `data.type` do not belong together"
                )
            } else {
                format!(
                    "the events `{event}` and `{other}` (of the {other_resource} schema) both \
                     give the Rust type name `{variant}`: event names that differ only in case \
                     or punctuation cannot both have models; look for a sample with a \
                     mistyped `name`"
                )
            };
            return Err(Error::Schema {
                resource: resource.clone(),
                pointer: "/x-kustomer-events".into(),
                problem,
            });
        }
    }
    taken.extend(event_of.into_keys());
    let mut modules = Vec::new();
    // Which resource each module came from.
    let mut module_of: BTreeMap<String, String> = BTreeMap::new();

    for (resource, schema) in &schemas {
        // The shared definitions must agree across resources.
        if let Some(defs) = schema.get("definitions").and_then(Value::as_object) {
            for name in SHARED {
                if let Some(def) = defs.get(name) {
                    match shared_defs.get(name) {
                        Some((first, d)) if d != def => {
                            return Err(Error::Schema {
                                resource: resource.clone(),
                                pointer: format!("/definitions/{name}"),
                                problem: format!(
                                    "differs from the {first} schema's; infer all schemas together"
                                ),
                            });
                        }
                        Some(_) => {}
                        None => {
                            shared_defs.insert(name.to_string(), (resource.clone(), def.clone()));
                        }
                    }
                }
            }
        }
        let mut g = Resource::new(
            resource,
            schema,
            &mut taken,
            &settings.previous,
            &variant_of,
        )?;
        let tokens = g.generate()?;
        typed_events.extend(g.events.iter().cloned());
        let module = module_name(resource);
        if let Some(other) = module_of.insert(module.clone(), resource.clone()) {
            return Err(Error::Schema {
                resource: resource.clone(),
                pointer: String::new(),
                problem: format!(
                    "its module would be `{module}`, as the {other} resource's is: resource \
                     types that differ only in case or punctuation cannot both have models"
                ),
            });
        }
        files.insert(
            format!("{module}.rs"),
            render(&format!("{module}.rs"), tokens, settings, &g.doc)?,
        );
        modules.push(module);
    }

    // Shared definitions, generated once.
    let mut shared = Gen::new("", &mut taken, &settings.previous);
    shared.defs = shared_defs
        .iter()
        .map(|(name, (_, def))| (name.clone(), def.clone()))
        .collect();
    for name in SHARED {
        if let Some((resource, def)) = shared_defs.get(name) {
            shared.resource = resource.clone();
            // Objects nested in it are named after it: `RelationshipMeta`.
            name.clone_into(&mut shared.prefix);
            shared.structure(name, def, &format!("/definitions/{name}"), Origin::Shared)?;
        }
    }
    if let Some((pointer, problem)) = endless(&shared.structs) {
        // Named in the first resource that has the definition.
        let def = pointer.split('/').nth(2).unwrap_or_default();
        let resource = shared_defs.get(def).map(|(r, _)| r.clone());
        return Err(Error::Schema {
            resource: resource.unwrap_or_default(),
            pointer,
            problem,
        });
    }
    let shared_tokens = shared.finish();
    files.insert(
        "shared.rs".into(),
        render(
            "shared.rs",
            shared_tokens,
            settings,
            "The definitions every resource shares.",
        )?,
    );

    // mod.rs: modules, re-exports, event names.
    let mods = modules.iter().map(|m| format_ident!("{}", m));
    let typed = typed_events.iter().map(|(variant, name)| {
        let v = format_ident!("{}", variant);
        quote!(#v = #name,)
    });
    let mods2 = mods.clone();
    let tokens = quote! {
        mod shared;
        #( mod #mods; )*
        // Used by resources with relationships or links; a models module
        // private to a binary whose resources have none would warn.
        #[allow(unused_imports)]
        pub use shared::*;
        #( pub use #mods2::*; )*
        kustomer_webhooks::__events! {
            typed { #(#typed)* }
        }
    };
    let doc = "The models of Kustomer's webhook events, one module per resource.";
    files.insert("mod.rs".into(), render("mod.rs", tokens, settings, doc)?);
    Ok(files)
}

/// The first line of every generated file starts with this.
const GENERATED: &str = "// @generated by `kustomer-webhooks";

/// Whether `text` was generated by this toolkit: its first line says so,
/// or a merge conflict that starts on the first line has a side that does.
fn generated_or_conflicted(text: &str) -> bool {
    text.starts_with(GENERATED)
        || (text.starts_with("<<<<<<<")
            && text
                .lines()
                .nth(1)
                .is_some_and(|l| l.starts_with(GENERATED)))
}

/// Whether the file at `path` was generated by this toolkit (its first line
/// says so).
fn is_generated(path: &Path) -> bool {
    use std::io::Read;
    let mut start = [0u8; GENERATED.len()];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut start))
        .is_ok_and(|()| start == GENERATED.as_bytes())
}

/// A generated text without its first line (which names the command and
/// the schemas' directory as they were spelled), for comparing two.
fn without_header(text: &[u8]) -> &[u8] {
    if text.starts_with(GENERATED.as_bytes()) {
        let end = text
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |i| i + 1);
        &text[end..]
    } else {
        text
    }
}

/// Writes `files` into `dir` (created when missing); returns the paths
/// written. A file of one's own there (not generated by this toolkit) with
/// the name of one to write is an error, and nothing is written.
pub fn write(dir: &Path, files: &BTreeMap<String, String>) -> Result<Vec<PathBuf>> {
    check_writable(dir, files)?;
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.into(),
        error: source,
    })?;
    let mut out = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| Error::Io {
            path: path.clone(),
            error: source,
        })?;
        out.push(path);
    }
    Ok(out)
}

/// What [`write()`] checks before writing anything: an error when a file of
/// one's own (not generated by this toolkit) in `dir` has the name of one
/// of `files`. Call it before writing what goes with the models (their
/// schemas), so that a refusal leaves both as they were.
pub fn check_writable(dir: &Path, files: &BTreeMap<String, String>) -> Result<()> {
    for name in files.keys() {
        let path = dir.join(name);
        if path.exists() && !is_generated(&path) {
            return Err(Error::Io {
                path,
                error: std::io::Error::other(
                    "a file of your own (not generated) has the name of a generated one: \
                     move it out of the models' directory, or delete it",
                ),
            });
        }
    }
    Ok(())
}

/// Removes the generated `.rs` files in `dir` that `files` no longer has (a
/// resource whose samples are gone); returns the paths removed. Only files
/// whose first line says they are generated by this toolkit are touched.
pub fn prune(dir: &Path, files: &BTreeMap<String, String>) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(removed);
    };
    for path in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.extension().is_none_or(|e| e != "rs") || files.contains_key(name) {
            continue;
        }
        if is_generated(&path) {
            std::fs::remove_file(&path).map_err(|source| Error::Io {
                path: path.clone(),
                error: source,
            })?;
            removed.push(path);
        }
    }
    removed.sort();
    Ok(removed)
}

/// The files in `dir` that differ from `files`: changed, missing, or
/// generated `.rs` files no schema produces (files of one's own are left
/// out). Empty when the directory is up to date. The first line of a
/// generated file, which names the command that wrote it as it was spelled,
/// is not compared.
pub fn stale(dir: &Path, files: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        match std::fs::read(&path) {
            Ok(have) if without_header(&have) == without_header(text.as_bytes()) => {}
            Ok(_) => out.push(format!(
                "{}: differs from the generated code",
                path.display()
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                out.push(format!("{}: missing", path.display()))
            }
            Err(e) => out.push(format!("{}: cannot be read: {e}", path.display())),
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut extra: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_none_or(|n| !files.contains_key(n))
            })
            .filter(|p| is_generated(p))
            .map(|p| format!("{}: not produced by any schema", p.display()))
            .collect();
        extra.sort();
        out.extend(extra);
    }
    out
}

const SHARED: [&str; 3] = ["Links", "ResourceIdentifier", "Relationship"];

/// Whether `tokens` name one of the [`SHARED`] definitions.
fn names_shared(tokens: &TokenStream) -> bool {
    tokens.clone().into_iter().any(|tree| match tree {
        proc_macro2::TokenTree::Ident(ident) => SHARED.iter().any(|s| ident == s),
        proc_macro2::TokenTree::Group(group) => names_shared(&group.stream()),
        _ => false,
    })
}

/// `schema` with a definition named `Self` (the resource `self`'s), the one
/// keyword a type name can be, renamed `SelfResource`, and the references
/// to it with it.
fn without_self_type(schema: &Value) -> Value {
    const SELF: &str = "#/definitions/Self";
    fn rename(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if key == "$ref" && v.as_str() == Some(SELF) {
                        *v = Value::from("#/definitions/SelfResource");
                    } else {
                        rename(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(rename),
            _ => {}
        }
    }
    let mut schema = schema.clone();
    let Some(defs) = schema.get_mut("definitions").and_then(Value::as_object_mut) else {
        return schema;
    };
    let Some(def) = defs.remove("Self") else {
        return schema;
    };
    defs.insert("SelfResource".into(), def);
    rename(&mut schema);
    schema
}

/// `kustomer.customer.update` → `CustomerUpdate` ([`event_type_name`]).
fn event_variant(name: &str) -> String {
    event_type_name(name)
}

/// What a resource's own types are named after its prefix (`Customer`):
/// its envelope, data, attributes, relationships and change sets.
const RESOURCE_TYPE_SUFFIXES: [&str; 7] = [
    "Event",
    "",
    "Attributes",
    "AttributeChanges",
    "Relationships",
    "RelationshipChanges",
    "Changes",
];

/// The event type of `name`, as [`event_variant`] names it, unless that
/// is the name of a resource's own type (`kustomer.customer.event` →
/// `CustomerEvent`, the customer envelope) or of a struct the previous
/// models had (`kustomer.customer.merge` → `CustomerMerge`, the type of
/// the customer's `merge` attribute): then `Event` before it
/// (`EventCustomerEvent`), so that a new event never takes a name that
/// code written against the models uses. An event Kustomer documents keeps
/// the name its documentation and the bundled models give it (the struct
/// goes around it), as does an event type the previous models had.
fn event_variant_beside(name: &str, own_types: &BTreeSet<String>, previous: &Previous) -> String {
    let variant = event_variant(name);
    if (own_types.contains(&variant) || previous.had_struct(&variant))
        && !previous.events.contains(&variant)
        && !kustomer_schema::KNOWN_EVENTS.contains(&name)
    {
        format!("Event{variant}")
    } else {
        variant
    }
}

/// The event names a schema lists.
fn events_of(schema: &Value) -> impl Iterator<Item = &str> {
    schema
        .get("x-kustomer-events")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// `base` as [`Gen::unique`] names a type: [`type_name`], `Self` as
/// `SelfResource`, and `Object` when it has nothing to make a name of.
fn base_type_name(base: &str) -> String {
    match type_name(base) {
        Some(name) if name == "Self" => "SelfResource".to_owned(),
        Some(name) => name,
        None => "Object".to_owned(),
    }
}

/// `name` as a Rust type name: itself when it is one (an ASCII capital,
/// then ASCII letters and digits), else its words in PascalCase
/// (`my-thing` → `MyThing`), with `Resource` before a leading digit
/// (`3plShipment` → `Resource3plShipment`, as inference names such a
/// resource's definitions); `None` when it has no ASCII letter or digit.
/// (`Self`, the one keyword of that form, is left to [`Gen::unique`]: as
/// the prefix of a resource's type names it is fine.)
fn type_name(name: &str) -> Option<String> {
    let valid = name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric());
    let name = if valid {
        name.to_owned()
    } else {
        pascal_case(name)
    };
    if name.is_empty() {
        None
    } else if name.starts_with(|c: char| c.is_ascii_digit()) {
        Some(format!("Resource{name}"))
    } else {
        Some(name)
    }
}

/// `text` with its runs of white space, line breaks among them, as one
/// space: a schema's description as one line of a doc comment.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` as a doc comment may hold it: control characters (a bare CR ends
/// the comment's line, others are refused) and the characters that change
/// the direction of text (which rustc refuses, since they can hide code)
/// written as `\u{…}`, as a key holding them would be in Rust source.
fn doc_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let hidden = c.is_control()
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}');
        if hidden {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

fn render(file: &str, tokens: TokenStream, settings: &Settings, doc: &str) -> Result<String> {
    let doc = doc_text(doc);
    // One line, whatever the paths in them hold.
    let (command, source) = (doc_text(&settings.command), doc_text(&settings.source));
    let parsed: syn::File = syn::parse2(tokens).map_err(|e| Error::Generated {
        file: file.to_owned(),
        message: e.to_string(),
    })?;
    let body = prettyplease::unparse(&parsed);
    Ok(format!(
        "// @generated by `{command}` from {source}: do not edit by hand.\n\n//! {doc}\n\n{body}"
    ))
}

/// Where a struct comes from, for its documentation.
#[derive(Clone, Copy)]
enum Origin {
    Shared,
    Resource,
}

/// The Rust form of one field.
#[derive(Clone, Debug, PartialEq)]
enum Ty {
    Str,
    Id,
    DateTime,
    Int,
    Number,
    Bool,
    Value,
    Object,
    Vec(Box<Ty>),
    Named(String),
    Change(Box<Ty>),
}

impl Ty {
    fn tokens(&self) -> TokenStream {
        match self {
            Ty::Str => quote!(Str),
            Ty::Id => quote!(Id),
            Ty::DateTime => quote!(DateTime),
            Ty::Int => quote!(i64),
            Ty::Number => quote!(Number),
            Ty::Bool => quote!(bool),
            Ty::Value => quote!(Value),
            Ty::Object => quote!(Map<String, Value>),
            Ty::Vec(t) => {
                let t = t.tokens();
                quote!(Vec<#t>)
            }
            Ty::Named(n) => {
                let n = format_ident!("{}", n);
                quote!(#n)
            }
            Ty::Change(t) => {
                let t = t.tokens();
                quote!(Box<Change<#t>>)
            }
        }
    }

    /// The runtime names this type uses, for the `use` lines.
    fn uses(&self, out: &mut BTreeSet<&'static str>) {
        match self {
            Ty::Str => {
                out.insert("Str");
            }
            Ty::Id => {
                out.insert("Id");
            }
            Ty::DateTime => {
                out.insert("DateTime");
            }
            Ty::Number => {
                out.insert("Number");
            }
            Ty::Value => {
                out.insert("Value");
            }
            Ty::Object => {
                out.insert("Map");
                out.insert("Value");
            }
            Ty::Vec(t) => t.uses(out),
            Ty::Change(t) => {
                out.insert("Change");
                t.uses(out);
            }
            Ty::Int | Ty::Bool | Ty::Named(_) => {}
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Opt,
    Null,
    Any,
    Req,
}

struct Field {
    json: String,
    rust: String,
    ty: Ty,
    kind: Kind,
    doc: String,
}

struct Struct {
    name: String,
    /// Where its schema is, as a JSON Pointer into the resource's schema.
    pointer: String,
    doc: String,
    fields: Vec<Field>,
}

/// Struct generation for one file.
struct Gen<'a> {
    resource: String,
    prefix: String,
    taken: &'a mut BTreeSet<String>,
    /// The field names of the models generated before.
    previous: &'a Previous,
    structs: Vec<Struct>,
    uses: BTreeSet<&'static str>,
    /// Definitions of the schema being generated, and the struct made of each.
    defs: BTreeMap<String, Value>,
    made: BTreeMap<String, String>,
    /// The JSON keys from the envelope to the field being generated.
    path: Vec<String>,
    /// The struct whose field is being generated.
    owner: String,
    /// The names of the resource's own types (its definitions, change sets
    /// and custom attributes), which a nested object does not take.
    reserved: BTreeSet<String>,
    /// Nested structs that could not keep the name the models before gave
    /// them: new name → old name, under which their fields were named.
    renamed: BTreeMap<String, String>,
    /// How many arrays and structs hold the field being generated.
    depth: usize,
    /// The deepest `depth` reached so far.
    deepest: usize,
    /// How many levels of arrays and structs each definition's struct
    /// (by its schema name) holds, itself counted, as generated.
    heights: BTreeMap<String, usize>,
    /// For each definition, the JSON keys of the properties typed with it.
    holders: BTreeMap<String, BTreeSet<String>>,
}

/// The most arrays and structs a field's type may be nested in, from the
/// envelope: a value nested deeper is kept as JSON (`Value`). Types nested
/// much deeper than any payload Kustomer sends (a few levels) make rustc
/// give up checking that they are `Send` and `Sync` (E0275), so a sample
/// that deep would give models that do not compile.
pub const MAX_TYPE_DEPTH: usize = 24;

impl<'a> Gen<'a> {
    fn new(prefix: &str, taken: &'a mut BTreeSet<String>, previous: &'a Previous) -> Self {
        Gen {
            resource: String::new(),
            prefix: prefix.to_owned(),
            taken,
            previous,
            structs: Vec::new(),
            // Every struct keeps its unknown keys in an `Extra`.
            uses: BTreeSet::from(["Extra"]),
            defs: BTreeMap::new(),
            made: BTreeMap::new(),
            path: Vec::new(),
            owner: String::new(),
            reserved: BTreeSet::new(),
            renamed: BTreeMap::new(),
            depth: 0,
            deepest: 0,
            heights: BTreeMap::new(),
            holders: BTreeMap::new(),
        }
    }

    /// What a struct is, in words a reader of the generated code needs.
    fn struct_doc(&self, name: &str, schema: &Value, origin: Origin) -> String {
        let res = &self.resource;
        let path = self.path.join(".");
        let p = &self.prefix;
        match origin {
            Origin::Shared => schema_doc(name, schema),
            Origin::Resource => {
                if let Some(d) = schema.get("description").and_then(Value::as_str) {
                    return one_line(d);
                }
                if name == *p {
                    format!(
                        "A `{res}` as its events carry it (`data`): its id, type, attributes, relationships and links."
                    )
                } else if name == format!("{p}Attributes") {
                    format!("The attributes of a `{res}` (`data.attributes`).")
                } else if name == format!("{p}Relationships") {
                    format!(
                        "The relationships of a `{res}` (`data.relationships`), each a [`Relationship`]."
                    )
                } else if name == format!("{p}Changes") {
                    format!(
                        "What an update of a `{res}` changed (`changes`), each field typed as the field itself."
                    )
                } else if self.path.iter().eq(["data", "attributes", "custom"]) {
                    format!(
                        "The custom attributes of a `{res}` (`{path}`), which each org defines: those the samples showed, typed by their suffix; any other stays in `extra`."
                    )
                } else if self.defs.contains_key(name) {
                    format!("A shape several fields of a `{res}` share (the first at `{path}`).")
                } else if SHARED.contains(&p.as_str()) {
                    format!(
                        "The `{}` object of a [`{p}`], which every resource shares (`{path}`).",
                        self.path.last().map_or("", String::as_str)
                    )
                } else {
                    format!(
                        "The `{}` object of a `{res}` (`{path}`).",
                        self.path.last().map_or("", String::as_str)
                    )
                }
            }
        }
    }

    fn error(&self, pointer: &str, problem: impl Into<String>) -> Error {
        Error::Schema {
            resource: self.resource.clone(),
            pointer: pointer.to_owned(),
            problem: problem.into(),
        }
    }

    /// `base` as a type name ([`type_name`]; `Self` is `SelfResource`),
    /// numbered when another type has the name; then taken.
    fn unique(&mut self, base: &str) -> String {
        self.numbered(&base_type_name(base), |_| false)
    }

    /// The type name of the object at the field `key` of the struct being
    /// made ([`unique`](Self::unique) of `base`), kept from the models
    /// before: the name they gave this field's type, when no type has taken
    /// it since. A new one passes over the names the models before gave
    /// other types, so that a new key elsewhere does not take a type's name
    /// and renumber it (`CustomerLvl5` becoming `CustomerLvl52`), which would
    /// break the code that names it.
    ///
    /// Nor does it take a name [`reserved`](Gen::reserved) for a type of the
    /// resource's own (`CustomerCustom` is the org's custom attributes,
    /// `data.attributes.custom`, not a `custom` object elsewhere).
    fn unique_kept(&mut self, base: &str, key: &str) -> String {
        let base = base_type_name(base);
        let custom = self.path.iter().eq(["data", "attributes", "custom"]);
        let reserved = std::mem::take(&mut self.reserved);
        let elsewhere = |name: &str| reserved.contains(name) && !(custom && name == base);
        // Or the name the rule before capital runs were split gave it.
        let joined = base_type_name(&format!("{}{}", self.prefix, pascal_case_runs_joined(key)));
        let before = self.previous.type_of(&self.owner, key, &base).or_else(|| {
            (joined != base)
                .then(|| self.previous.type_of(&self.owner, key, &joined))
                .flatten()
        });
        let name = match before {
            Some(before) if !elsewhere(before) && self.taken.insert(before.to_owned()) => {
                before.to_owned()
            }
            _ => {
                let previous = self.previous;
                let name = self.numbered(&base, |name| previous.had(name) || elsewhere(name));
                // Its fields keep the names they had under its old name.
                if let Some(before) = before {
                    self.renamed.insert(name.clone(), before.to_owned());
                }
                name
            }
        };
        self.reserved = reserved;
        name
    }

    /// The struct the models before had for a shape repeated in the schema
    /// (a definition, named by inference after the first key holding it,
    /// which a new key sorting first renames): the one struct of this
    /// resource's file whose JSON keys were exactly the definition's and
    /// that typed a field under one of the keys now holding the definition,
    /// when its name is free; then taken.
    fn kept_definition_name(&mut self, definition: &str, def: &Value) -> Option<String> {
        let keys = def.get("properties")?.as_object()?;
        let holders = self.holders.get(definition)?;
        let file = format!("{}.rs", module_name(&self.resource));
        let previous = self.previous;
        let in_file = |name: &str| previous.files.get(name) == Some(&file);
        // The structs fields under those keys were typed with.
        let typed_with: BTreeSet<&str> = previous
            .types
            .iter()
            .filter(|(owner, _)| in_file(owner))
            .flat_map(|(_, types)| {
                types
                    .iter()
                    .filter(|(key, _)| holders.contains(*key))
                    .flat_map(|(_, ty)| ty.split(|c: char| !c.is_ascii_alphanumeric() && c != '_'))
            })
            .collect();
        let mut same = typed_with.into_iter().filter(|name| {
            in_file(name)
                && previous
                    .fields
                    .get(*name)
                    .is_some_and(|fields| fields.keys().eq(keys.keys()))
        });
        let name = same.next()?.to_owned();
        if same.next().is_some()
            || self.reserved.contains(&name)
            || !self.taken.insert(name.clone())
        {
            return None;
        }
        Some(name)
    }

    /// `base`, or it numbered from 2, whichever is first neither taken nor
    /// `passed`; then taken.
    fn numbered(&mut self, base: &str, passed: impl Fn(&str) -> bool) -> String {
        let mut name = base.to_owned();
        let mut n = 2;
        while self.taken.contains(&name) || passed(&name) {
            name = format!("{base}{n}");
            n += 1;
        }
        self.taken.insert(name.clone());
        name
    }

    /// Generates a struct for an object schema.
    fn structure(
        &mut self,
        name: &str,
        schema: &Value,
        pointer: &str,
        origin: Origin,
    ) -> Result<()> {
        if let Some(problem) = keyword_problem(schema) {
            return Err(self.error(pointer, problem));
        }
        let doc = self.struct_doc(name, schema, origin);
        let props = schema.get("properties").and_then(Value::as_object);
        let required: BTreeSet<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut fields = Vec::new();
        // A struct that could not keep its name is read as it was before,
        // under its old name: its fields' names, and its nested types'.
        let named_before = self
            .renamed
            .get(name)
            .map_or_else(|| name.to_owned(), String::clone);
        let mut names = field_names(
            props.into_iter().flatten().map(|(k, _)| k.as_str()),
            self.previous.fields.get(&named_before),
        )
        .into_iter();
        let custom = self.path.iter().eq(["data", "attributes", "custom"]);
        for (key, prop) in props.into_iter().flatten() {
            let ptr = format!("{pointer}/properties/{}", escape(key));
            // Nested structs made for this field are kept under its name.
            named_before.clone_into(&mut self.owner);
            self.path.push(key.clone());
            let typed = self.field_type(key, prop, &ptr);
            self.path.pop();
            let (ty, nullable) = typed?;
            let kind = if ty == Ty::Value {
                Kind::Any
            } else if nullable {
                Kind::Null
            } else if required.contains(key.as_str()) && matches!(ty, Ty::Named(_)) {
                Kind::Req
            } else {
                Kind::Opt
            };
            // An `any` field is written `Option<Value>`: it uses `Value`
            // as any other field uses its type.
            ty.uses(&mut self.uses);
            fields.push(Field {
                json: key.clone(),
                rust: names.next().expect("a name for every key"),
                doc: field_doc(key, prop, kind, origin, custom),
                ty,
                kind,
            });
        }
        self.structs.push(Struct {
            name: name.to_owned(),
            pointer: pointer.to_owned(),
            doc,
            fields,
        });
        Ok(())
    }

    /// The type of a property, and whether it may be null.
    fn field_type(&mut self, key: &str, schema: &Value, pointer: &str) -> Result<(Ty, bool)> {
        if let Some(problem) = keyword_problem(schema) {
            return Err(self.error(pointer, problem));
        }
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            // `null` beside the `$ref`, or in the definition's own types.
            let mut nullable = may_be_null(schema);
            if let Some(name) = definition_name(r)
                && let Some(def) = self.defs.get(&name).cloned()
            {
                nullable |= may_be_null(&def);
                // A definition of a string, a number, an array: its type, in
                // place (a struct would read none of its values).
                if !SHARED.contains(&name.as_str()) && name != "Change" && !is_object_schema(&def) {
                    if def.get("$ref").is_some() {
                        return Err(self.error(
                            &format!("/definitions/{}", escape(&name)),
                            "a definition that is only a `$ref`: refer to its target instead",
                        ));
                    }
                    // Definitions that refer to each other without an
                    // object between them (through `anyOf`) end in JSON.
                    if self.depth >= MAX_TYPE_DEPTH {
                        return Ok((Ty::Value, nullable));
                    }
                    let at = format!("/definitions/{}", escape(&name));
                    self.depth += 1;
                    let typed = self.field_type(key, &def, &at);
                    self.depth -= 1;
                    let (ty, null) = typed?;
                    return Ok((ty, nullable || null));
                }
            }
            return Ok((self.reference(r, pointer)?, nullable));
        }
        // `oneOf` types a field as `anyOf` does; `allOf` of one schema (a
        // `$ref` given a description beside it) is that schema.
        for keyword in ["anyOf", "oneOf"] {
            let Some(any_of) = schema.get(keyword).and_then(Value::as_array) else {
                continue;
            };
            let non_null: Vec<(usize, &Value)> = any_of
                .iter()
                .enumerate()
                .filter(|(_, s)| s.get("type") != Some(&"null".into()))
                .collect();
            let nullable = non_null.len() < any_of.len();
            return Ok(match non_null.as_slice() {
                [(i, one)] => (
                    self.field_type(key, one, &format!("{pointer}/{keyword}/{i}"))?
                        .0,
                    nullable,
                ),
                _ => (Ty::Value, false),
            });
        }
        if let Some(all_of) = schema.get("allOf").and_then(Value::as_array) {
            return match all_of.as_slice() {
                [one] => self.field_type(key, one, &format!("{pointer}/allOf/0")),
                _ => Ok((Ty::Value, false)),
            };
        }
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => return Ok((Ty::Value, false)),
        };
        let nullable = types.contains(&"null");
        let non_null: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
        let [t] = non_null.as_slice() else {
            // No type, or a union: kept as JSON.
            return Ok((Ty::Value, false));
        };
        let ty = match *t {
            "string" => match schema.get("format").and_then(Value::as_str) {
                Some("date-time") => Ty::DateTime,
                Some("kustomer-id") => Ty::Id,
                _ => Ty::Str,
            },
            "integer" => Ty::Int,
            "number" => Ty::Number,
            "boolean" => Ty::Bool,
            // Nested past the budget: kept as JSON.
            "array" | "object" if self.depth >= MAX_TYPE_DEPTH => Ty::Value,
            "array" => match schema.get("items") {
                // `Vec<Option<T>>` is not a model: nullable items stay JSON,
                // and no struct is made for them (one typing no field would
                // be renamed on every run by the names kept from before).
                Some(items) if may_be_null(items) => Ty::Vec(Box::new(Ty::Value)),
                Some(items) => {
                    self.depth += 1;
                    self.deepest = self.deepest.max(self.depth);
                    let item = self.field_type(key, items, &format!("{pointer}/items"));
                    self.depth -= 1;
                    let (item, item_nullable) = item?;
                    if item_nullable {
                        Ty::Vec(Box::new(Ty::Value))
                    } else {
                        Ty::Vec(Box::new(item))
                    }
                }
                None => Ty::Vec(Box::new(Ty::Value)),
            },
            "object" => {
                let has_shape = schema
                    .get("properties")
                    .is_some_and(|p| p.as_object().is_some_and(|m| !m.is_empty()));
                if has_shape {
                    let name =
                        self.unique_kept(&format!("{}{}", self.prefix, pascal_case(key)), key);
                    self.depth += 1;
                    self.deepest = self.deepest.max(self.depth);
                    let made = self.structure(&name, schema, pointer, Origin::Resource);
                    self.depth -= 1;
                    made?;
                    Ty::Named(name)
                } else {
                    Ty::Object
                }
            }
            other => return Err(self.error(pointer, format!("unknown type {other:?}"))),
        };
        Ok((ty, nullable))
    }

    /// The type a `$ref` names, generating its struct on first use.
    fn reference(&mut self, r: &str, pointer: &str) -> Result<Ty> {
        let Some(name) = definition_name(r) else {
            let hint = if r.starts_with("#/$defs/") {
                ": definitions are read from `definitions`, not `$defs`"
            } else {
                ""
            };
            return Err(self.error(pointer, format!("unsupported $ref {r:?}{hint}")));
        };
        let name = name.as_str();
        if SHARED.contains(&name) {
            // The shared definitions are generated from the schemas that
            // have them: one referred to must be there.
            if !self.defs.contains_key(name) {
                return Err(self.error(
                    pointer,
                    format!("$ref to a missing definition {name:?} (one every resource shares)"),
                ));
            }
            return Ok(Ty::Named(name.to_owned()));
        }
        if name == "Change" {
            return Ok(Ty::Change(Box::new(Ty::Value)));
        }
        // Nested past the budget, here or through the definition's own
        // levels (made where it was first used, less deep): kept as JSON.
        let height = self.heights.get(name).copied().unwrap_or(1);
        if self.depth + height > MAX_TYPE_DEPTH {
            return Ok(Ty::Value);
        }
        if let Some(made) = self.made.get(name) {
            return Ok(Ty::Named(made.clone()));
        }
        let Some(def) = self.defs.get(name).cloned() else {
            return Err(self.error(pointer, format!("$ref to a missing definition {name:?}")));
        };
        if type_name(name).is_none() {
            let resource = &self.resource;
            return Err(self.error(
                &format!("/definitions/{}", escape(name)),
                format!(
                    "the definition name {name:?} has no ASCII letter or digit to make a Rust \
                     type name of: rename it, and the `$ref`s to it, in {resource}.json"
                ),
            ));
        }
        let rust = match self.kept_definition_name(name, &def) {
            Some(kept) => kept,
            None => self.unique(name),
        };
        self.made.insert(name.to_owned(), rust.clone());
        let (start, outer) = (self.depth, self.deepest);
        self.depth += 1;
        self.deepest = self.depth;
        let made = self.structure(
            &rust,
            &def,
            &format!("/definitions/{name}"),
            Origin::Resource,
        );
        self.depth -= 1;
        self.heights
            .insert(name.to_owned(), self.deepest.saturating_sub(start));
        self.deepest = self.deepest.max(outer);
        made?;
        Ok(Ty::Named(rust))
    }

    fn finish(self) -> TokenStream {
        let uses = use_lines(&self.uses);
        let structs = self.structs.iter().map(struct_tokens);
        quote! {
            #uses
            #(#structs)*
        }
    }
}

/// The definition a `$ref` names (`#/definitions/…`, its `~1` and `~0`
/// read as `/` and `~`).
fn definition_name(r: &str) -> Option<String> {
    let name = r.strip_prefix("#/definitions/")?;
    Some(name.replace("~1", "/").replace("~0", "~"))
}

/// Whether a definition describes an object (a struct), rather than a
/// string, a number or an array: `object` among its types, or no type and
/// properties.
fn is_object_schema(schema: &Value) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(ts)) => {
            ts.iter().any(|t| t == "object") && ts.iter().all(|t| t == "object" || t == "null")
        }
        _ => schema.get("properties").is_some(),
    }
}

/// What is wrong with a schema's keywords that generation reads, if
/// anything: a schema that is not an object (or `true`/`false`), a `type`
/// that is not a name or a list of names, a `$ref` that is not a string,
/// `properties` that are not an object, `required` that is not a list of
/// names, `anyOf`/`oneOf`/`allOf` that are not lists. Taken silently, each
/// would lose the field's type without a word.
fn keyword_problem(schema: &Value) -> Option<String> {
    let Some(object) = schema.as_object() else {
        return (!schema.is_boolean()).then(|| {
            format!(
                "a schema must be an object, not {}",
                kustomer_schema::json_kind(schema)
            )
        });
    };
    let names = |v: &Value| match v {
        Value::Array(items) => items.iter().all(Value::is_string),
        _ => false,
    };
    let wrong = |keyword: &str, what: &str| Some(format!("`{keyword}` must be {what}"));
    match object.get("type") {
        Some(Value::String(_)) | None => {}
        Some(t) if names(t) => {}
        Some(_) => return wrong("type", "a type name or a list of them"),
    }
    if object.get("$ref").is_some_and(|r| !r.is_string()) {
        return wrong("$ref", "a string");
    }
    if object.get("properties").is_some_and(|p| !p.is_object()) {
        return wrong("properties", "an object");
    }
    if object.get("required").is_some_and(|r| !names(r)) {
        return wrong("required", "a list of property names");
    }
    for keyword in ["anyOf", "oneOf", "allOf"] {
        if object.get(keyword).is_some_and(|l| !l.is_array()) {
            return wrong(keyword, "a list of schemas");
        }
    }
    None
}

/// Whether a property's schema lets it be `null`: `null` among its types,
/// or in its `anyOf`.
fn may_be_null(schema: &Value) -> bool {
    let null = |s: &Value| match s.get("type") {
        Some(Value::String(t)) => t == "null",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "null"),
        _ => false,
    };
    null(schema)
        || schema
            .get("anyOf")
            .and_then(Value::as_array)
            .is_some_and(|any_of| any_of.iter().any(null))
}

/// For each definition of `schema`, the JSON keys of the properties typed
/// with it (directly, in an `anyOf`, or as their items), anywhere.
fn holders_of_definitions(schema: &Value, holders: &mut BTreeMap<String, BTreeSet<String>>) {
    fn refs<'v>(schema: &'v Value, out: &mut Vec<&'v str>) {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            out.extend(r.strip_prefix("#/definitions/"));
        }
        for any in schema
            .get("anyOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            refs(any, out);
        }
        if let Some(items) = schema.get("items") {
            refs(items, out);
        }
    }
    match schema {
        Value::Object(map) => {
            if let Some(properties) = map.get("properties").and_then(Value::as_object) {
                for (key, property) in properties {
                    let mut found = Vec::new();
                    refs(property, &mut found);
                    for definition in found {
                        holders
                            .entry(definition.to_owned())
                            .or_default()
                            .insert(key.clone());
                    }
                }
            }
            for value in map.values() {
                holders_of_definitions(value, holders);
            }
        }
        Value::Array(values) => {
            for value in values {
                holders_of_definitions(value, holders);
            }
        }
        _ => {}
    }
}

/// A struct that holds itself through fields that are not arrays (an
/// `Option<T>` within `T`, directly or through others), which no Rust type
/// can be: the JSON Pointer of the property where the loop starts, and
/// what is wrong, naming the types around the loop (`A → B → A`).
fn endless(structs: &[Struct]) -> Option<(String, String)> {
    let by_name: BTreeMap<&str, &Struct> = structs.iter().map(|s| (s.name.as_str(), s)).collect();
    // The types a struct holds in place (an array, or a change's boxed
    // entry, holds its items elsewhere).
    let held = |s: &Struct| -> Vec<(String, String)> {
        s.fields
            .iter()
            .filter(|f| f.kind != Kind::Any)
            .filter_map(|f| match &f.ty {
                Ty::Named(n) if by_name.contains_key(n.as_str()) => {
                    Some((f.json.clone(), n.clone()))
                }
                _ => None,
            })
            .collect()
    };
    for start in structs {
        // Depth first, along the fields held in place, back to `start`.
        let mut stack = vec![(start.name.clone(), None::<String>, vec![start.name.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((name, first_key, path)) = stack.pop() {
            for (key, next) in held(by_name[name.as_str()]) {
                let first_key = first_key.clone().unwrap_or(key);
                let mut path = path.clone();
                path.push(next.clone());
                if next == start.name {
                    let pointer = format!("{}/properties/{}", start.pointer, escape(&first_key));
                    let problem = format!(
                        "refers back to the type it is in ({}) with no array between, a type \
                         without end; inference never writes such a reference, so it was \
                         edited in: remove it, or make the property an array",
                        path.join(" → ")
                    );
                    return Some((pointer, problem));
                }
                if seen.insert(next.clone()) {
                    stack.push((next, Some(first_key), path));
                }
            }
        }
    }
    None
}

fn use_lines(uses: &BTreeSet<&'static str>) -> TokenStream {
    let runtime: Vec<_> = ["Change", "DateTime", "Extra", "Id", "Str"]
        .iter()
        .filter(|n| uses.contains(*n))
        .map(|n| format_ident!("{}", n))
        .collect();
    let json: Vec<_> = ["Map", "Number", "Value"]
        .iter()
        .filter(|n| uses.contains(*n))
        .map(|n| format_ident!("{}", n))
        .collect();
    let mut out = TokenStream::new();
    if !runtime.is_empty() {
        out.extend(quote!(use kustomer_webhooks::{ #(#runtime),* };));
    }
    if !json.is_empty() {
        out.extend(quote!(use kustomer_webhooks::serde_json::{ #(#json),* };));
    }
    out
}

fn struct_tokens(s: &Struct) -> TokenStream {
    let name = format_ident!("{}", s.name);
    let doc = format!(" {}", doc_text(&s.doc));
    let fields = s.fields.iter().map(|f| {
        let ident = format_ident!("{}", f.rust);
        let json = &f.json;
        let ty = f.ty.tokens();
        let doc = format!(" {}", doc_text(&f.doc));
        match f.kind {
            Kind::Opt => quote!(#[doc = #doc] #[json(#json)] pub #ident: Option<#ty>,),
            Kind::Null => quote!(#[doc = #doc] #[json(#json, nullable)] pub #ident: Option<#ty>,),
            Kind::Any => quote!(#[doc = #doc] #[json(#json, any)] pub #ident: Option<Value>,),
            Kind::Req => quote!(#[doc = #doc] #[json(#json)] pub #ident: #ty,),
        }
    });
    quote! {
        #[doc = #doc]
        #[kustomer_webhooks::model]
        pub struct #name {
            #(#fields)*
            /// Keys this model does not know, and values of another type than
            /// the model's, exactly as received.
            pub extra: Extra,
        }
    }
}

/// One resource's file.
struct Resource<'a> {
    g: Gen<'a>,
    schema: &'a Value,
    type_name: String,
    events: Vec<(String, String)>,
    doc: String,
}

impl<'a> Resource<'a> {
    fn new(
        resource: &str,
        schema: &'a Value,
        taken: &'a mut BTreeSet<String>,
        previous: &'a Previous,
        variant_of: &BTreeMap<String, String>,
    ) -> Result<Self> {
        let title = schema
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let prefix = title.strip_suffix("Event").unwrap_or(title);
        // The title names the resource's types: made a Rust type name.
        let rust_prefix = type_name(prefix).unwrap_or_default();
        let mut g = Gen::new(&rust_prefix, taken, previous);
        g.resource = resource.to_owned();
        if prefix.is_empty() {
            return Err(g.error(
                "/title",
                "a resource schema needs a title such as \"CustomerEvent\"",
            ));
        }
        if rust_prefix.is_empty() {
            return Err(g.error(
                "/title",
                format!(
                    "the title {title:?} has no ASCII letter or digit to name the resource's \
                     Rust types after: give it one such as \"CustomerEvent\" in {resource}.json"
                ),
            ));
        }
        g.defs = schema
            .get("definitions")
            .and_then(Value::as_object)
            .map(|d| d.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        holders_of_definitions(schema, &mut g.holders);
        let type_name = schema
            .get("x-kustomer-resource")
            .and_then(Value::as_str)
            .unwrap_or(resource)
            .to_owned();
        let events: Vec<(String, String)> = events_of(schema)
            .map(|n| {
                let variant = variant_of.get(n).cloned();
                (variant.unwrap_or_else(|| event_variant(n)), n.to_owned())
            })
            .collect();
        // A schema written without evidence (`infer --no-evidence`) has no
        // count to say.
        let samples = schema
            .get("x-kustomer-samples")
            .and_then(Value::as_u64)
            .map(|n| format!(" (inferred from {n} sample(s))"))
            .unwrap_or_default();
        let doc = format!(
            "The `{type_name}` resource: {}{samples}.",
            events
                .iter()
                .map(|(_, n)| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(Resource {
            g,
            schema,
            type_name,
            events,
            doc,
        })
    }

    fn generate(&mut self) -> Result<TokenStream> {
        let p = &self.g.prefix;
        self.g.reserved = self
            .g
            .defs
            .keys()
            .filter(|d| !SHARED.contains(&d.as_str()) && *d != "Change")
            .filter_map(|d| type_name(d))
            .chain(
                ["AttributeChanges", "RelationshipChanges", "Custom"]
                    .iter()
                    .map(|suffix| format!("{p}{suffix}")),
            )
            .collect();
        let title = self.g.prefix.clone() + "Event";
        let envelope = self.g.unique(&title);
        // The change set is typed from the attributes and relationships: make
        // the data definitions first, so their types are known.
        let data_def = ref_name(self.schema.pointer("/properties/data"));
        let changes_def = ref_name(self.schema.pointer("/properties/changes"));
        if let Some(changes) = &changes_def {
            self.prepare_changes(changes, data_def.as_deref())?;
        }
        self.g
            .structure(&envelope, self.schema, "", Origin::Resource)?;

        let data_rust = data_def.as_ref().and_then(|d| self.g.made.get(d)).cloned();
        let env_ident = format_ident!("{}", envelope);
        let mut extra = TokenStream::new();
        if let Some(data) = &data_rust {
            let data_ident = format_ident!("{}", data);
            for (variant, name) in &self.events {
                let v = format_ident!("{}", variant);
                let doc = format!(" The `{name}` event.");
                extra.extend(quote! {
                    kustomer_webhooks::__event!(#[doc = #doc] #v(#env_ident) = #name for #data_ident, in AnyEvent);
                });
            }
            // The resource, and its envelope standing for all of its events.
            let type_name = &self.type_name;
            let variants = self.events.iter().map(|(v, _)| format_ident!("{}", v));
            extra.extend(quote! {
                kustomer_webhooks::__resource!(#data_ident = #type_name, #env_ident, [#(#variants),*], in AnyEvent);
            });
        } else {
            return Err(self
                .g
                .error("/properties/data", "the envelope has no `data` definition"));
        }
        extra.extend(self.envelope_impl(&envelope, data_rust.as_deref()));
        if let Some((pointer, problem)) = endless(&self.g.structs) {
            return Err(self.g.error(&pointer, problem));
        }
        let mut structs = std::mem::take(&mut self.g.structs);
        // The envelope first: it is where a reader starts.
        if let Some(i) = structs.iter().position(|s| s.name == envelope) {
            let env = structs.remove(i);
            structs.insert(0, env);
        }
        let uses = use_lines(&self.g.uses);
        let structs = structs.iter().map(struct_tokens);
        let body = quote!(#(#structs)* #extra);
        // The shared definitions, when it names one (a resource whose
        // samples have no relationships or links names none, and an unused
        // import is a warning).
        let shared = names_shared(&body).then(|| {
            quote!(
                use super::*;
            )
        });
        Ok(quote! {
            #uses
            #shared
            #body
        })
    }

    /// Makes the change set: `<R>AttributeChanges` and
    /// `<R>RelationshipChanges`, one boxed `Change<T>` per attribute and
    /// relationship, and points the changes definition at them.
    fn prepare_changes(&mut self, changes: &str, data: Option<&str>) -> Result<()> {
        let Some(data) = data else { return Ok(()) };
        let data_schema = self.g.defs.get(data).cloned().unwrap_or_default();
        let Some(mut changes_schema) = self.g.defs.get(changes).cloned() else {
            return Err(self.g.error(
                "/properties/changes",
                format!("$ref to a missing definition {changes:?}"),
            ));
        };
        for (section, suffix) in [
            ("attributes", "AttributeChanges"),
            ("relationships", "RelationshipChanges"),
        ] {
            let Some(target) = ref_name(data_schema.pointer(&format!("/properties/{section}")))
            else {
                continue;
            };
            // The attribute types come from their definition, made here as
            // deep as the envelope will hold it (`data`'s struct within the
            // envelope's): made less deep, its nested values would be kept
            // to a depth the envelope's `data.attributes` cannot hold, and
            // the whole field would be kept as JSON.
            self.g.path = vec!["data".to_owned(), section.to_owned()];
            let depth = std::mem::replace(&mut self.g.depth, 1);
            let ty = self.g.reference(
                &format!("#/definitions/{target}"),
                &format!("/definitions/{data}/properties/{section}"),
            );
            self.g.depth = depth;
            let ty = ty?;
            self.g.path.clear();
            let Ty::Named(_) = ty else { continue };
            let target_schema = self.g.defs.get(&target).cloned().unwrap_or_default();
            let name = self.g.unique(&format!("{}{suffix}", self.g.prefix));
            let mut fields = Vec::new();
            let keys = target_schema
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(k, _)| k.as_str());
            let mut names = field_names(keys, self.g.previous.fields.get(&name)).into_iter();
            let set = self
                .g
                .structs
                .iter()
                .find(|s| s.name == *self.g.made.get(&target).unwrap_or(&String::new()));
            let typed: BTreeMap<String, Ty> = set
                .map(|s| {
                    s.fields
                        .iter()
                        .map(|f| (f.json.clone(), f.ty.clone()))
                        .collect()
                })
                .unwrap_or_default();
            for key in target_schema
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                let ty = Ty::Change(Box::new(typed.get(key).cloned().unwrap_or(Ty::Value)));
                ty.uses(&mut self.g.uses);
                fields.push(Field {
                    json: key.clone(),
                    rust: names.next().expect("a name for every key"),
                    doc: format!("How `{key}` changed, typed as the {section} field is."),
                    ty,
                    kind: Kind::Opt,
                });
            }
            self.g.structs.push(Struct {
                name: name.clone(),
                pointer: format!("/definitions/{}/properties/{section}", escape(changes)),
                doc: format!(
                    "The changed {section} of a `{}` update: each a `Change` typed like the field.",
                    self.type_name
                ),
                fields,
            });
            // The changes definition refers to the change set from now on.
            if let Some(p) = changes_schema.pointer_mut(&format!("/properties/{section}")) {
                let evidence = p.get("x-kustomer-samples").cloned();
                let mut replacement =
                    serde_json::json!({ "$ref": format!("#/definitions/{name}") });
                if let Some(e) = evidence {
                    replacement["x-kustomer-samples"] = e;
                }
                *p = replacement;
            }
            self.g.made.insert(name.clone(), name);
        }
        self.g.defs.insert(changes.to_owned(), changes_schema);
        Ok(())
    }

    fn envelope_impl(&self, envelope: &str, data: Option<&str>) -> TokenStream {
        let env = self.g.structs.iter().find(|s| s.name == envelope);
        let data = data.and_then(|d| self.g.structs.iter().find(|s| s.name == d));
        fn field<'s>(s: Option<&'s Struct>, key: &str) -> Option<&'s Field> {
            s.and_then(|s| s.fields.iter().find(|f| f.json == key))
        }
        let text = |f: Option<&Field>| -> Option<syn::Ident> {
            let f = f?;
            (matches!(f.ty, Ty::Str | Ty::Id) && matches!(f.kind, Kind::Opt | Kind::Null))
                .then(|| format_ident!("{}", f.rust))
        };
        // A typed field, or else the same key's value kept in `extra`: a
        // drifted id (another format) still identifies the event.
        let extra_str = quote!(kustomer_webhooks::__private::extra_str);
        // An envelope key holding a string: its typed field, or its value
        // in `extra` (a drifted one).
        let envelope_str = |key: &str| match text(field(env, key)) {
            Some(i) => quote!(self.#i.as_deref().or_else(|| #extra_str(&self.extra, #key))),
            None => quote!(#extra_str(&self.extra, #key)),
        };
        let event_id = envelope_str("id");
        let event_name = envelope_str("name");
        let org = envelope_str("org");
        let org_name = envelope_str("orgName");
        let data_field = field(env, "data")
            .filter(|f| f.kind == Kind::Req)
            .map(|f| format_ident!("{}", f.rust));
        let resource_id = match (&data_field, text(field(data, "id"))) {
            (Some(d), Some(i)) => {
                quote!(self.#d.#i.as_deref().or_else(|| #extra_str(&self.#d.extra, "id")))
            }
            (Some(d), None) => quote!(#extra_str(&self.#d.extra, "id")),
            (None, _) => quote!(None),
        };
        let attrs = field(data, "attributes").filter(|f| f.kind == Kind::Req);
        let attrs_struct = attrs.and_then(|f| match &f.ty {
            Ty::Named(n) => self.g.structs.iter().find(|s| &s.name == n),
            _ => None,
        });
        let extra_int = quote!(kustomer_webhooks::__private::extra_int);
        // Whatever type the samples gave `rev` (an integer; in drifted
        // samples a string of digits, a float or several types, so any
        // JSON), an integer in it, or in its drifted value in `extra`, still
        // orders the resource's updates: a model generated from drifted
        // samples must not turn the ordering guard off.
        let rev = match (&data_field, attrs) {
            (Some(d), Some(a)) => {
                let a = format_ident!("{}", a.rust);
                let from_extra = quote!(#extra_int(&self.#d.#a.extra, "rev"));
                let typed = field(attrs_struct, "rev")
                    .filter(|r| r.kind != Kind::Req)
                    .and_then(|r| {
                        let i = format_ident!("{}", r.rust);
                        let value_int = quote!(kustomer_webhooks::__private::value_int);
                        match &r.ty {
                            Ty::Int => Some(quote!(self.#d.#a.#i)),
                            Ty::Str | Ty::Id => {
                                Some(quote!(self.#d.#a.#i.as_deref().and_then(|s| s.parse().ok())))
                            }
                            Ty::Number => Some(quote!(self.#d.#a.#i.as_ref().and_then(
                                kustomer_webhooks::__private::number_int
                            ))),
                            Ty::Value => Some(quote!(self.#d.#a.#i.as_ref().and_then(#value_int))),
                            _ => None,
                        }
                    });
                match typed {
                    Some(typed) => quote!(#typed.or_else(|| #from_extra)),
                    None => from_extra,
                }
            }
            _ => quote!(None),
        };
        // A date-time as milliseconds since the Unix epoch: the typed field
        // `key` of `owner` (a struct `s`), or its drifted value in `extra`.
        let millis = |owner: TokenStream, s: Option<&Struct>, key: &str| -> TokenStream {
            let extra_millis = quote!(kustomer_webhooks::__private::extra_millis);
            let from_extra = quote!(#extra_millis(&#owner.extra, #key));
            let typed = field(s, key).filter(|r| r.kind != Kind::Req).and_then(|r| {
                let i = format_ident!("{}", r.rust);
                match &r.ty {
                    // `DateTime` is imported wherever a field has the type,
                    // as this one: named as it is, so that
                    // `unused_qualifications` finds nothing to say.
                    Ty::DateTime => {
                        Some(quote!(#owner.#i.as_ref().map(DateTime::timestamp_millis)))
                    }
                    // Where no field may have the type: through the
                    // runtime's own path.
                    Ty::Str => Some(quote!(#owner.#i.as_deref().and_then(
                        kustomer_webhooks::__private::str_millis
                    ))),
                    Ty::Value => Some(quote!(#owner.#i.as_ref().and_then(
                        kustomer_webhooks::__private::value_millis
                    ))),
                    _ => None,
                }
            });
            match typed {
                Some(typed) => quote!(#typed.or_else(|| #from_extra)),
                None => from_extra,
            }
        };
        // `updatedAt`, which orders the updates of a resource without a
        // `rev`, read the same way: typed, or its drifted value in `extra`.
        let updated_at = match (&data_field, attrs) {
            (Some(d), Some(a)) => {
                let a = format_ident!("{}", a.rust);
                millis(quote!(self.#d.#a), attrs_struct, "updatedAt")
            }
            _ => quote!(None),
        };
        // The envelope's `createdAt`: how old the event is.
        let created_at = millis(quote!(self), env, "createdAt");
        let env_ident = format_ident!("{}", envelope);
        quote! {
            impl kustomer_webhooks::Envelope for #env_ident {
                fn event_id(&self) -> Option<&str> { #event_id }
                fn event_name(&self) -> Option<&str> { #event_name }
                fn resource_id(&self) -> Option<&str> { #resource_id }
                fn rev(&self) -> Option<i64> { #rev }
                fn updated_at(&self) -> Option<i64> { #updated_at }
                fn created_at(&self) -> Option<i64> { #created_at }
                fn org(&self) -> Option<&str> { #org }
                fn org_name(&self) -> Option<&str> { #org_name }
                fn has_data(&self) -> bool { self.has_key("data") }
                fn misfit(&self, key: &str) -> Option<&'static str> {
                    match key {
                        "name" | "data" => self.extra.get(key).map(kustomer_webhooks::json_type),
                        _ => None,
                    }
                }
            }
        }
    }
}

fn ref_name(schema: Option<&Value>) -> Option<String> {
    let schema = schema?;
    let r = schema.get("$ref").or_else(|| {
        schema
            .get("anyOf")?
            .as_array()?
            .iter()
            .find_map(|s| s.get("$ref"))
    })?;
    r.as_str()?
        .strip_prefix("#/definitions/")
        .map(str::to_owned)
}

fn schema_doc(name: &str, _schema: &Value) -> String {
    {
        match name {
            "Relationship" => "One relationship of a resource: some mix of `data` (the related resource), `links` and `meta`.".into(),
            "ResourceIdentifier" => "Which resource a relationship points at: its `type` and `id`. The `type` strings are not consistent (singular and plural both occur).".into(),
            "Links" => "Links to a resource in Kustomer's API (`self`, and sometimes `related`), as relative paths.".into(),
            _ => format!("The shared `{name}` definition."),
        }
    }
}

/// Whether a custom attribute's schema types it as its `suffix` names
/// (`Num` a number, `At` a date-time string…), rather than by other values
/// its samples held.
fn suffix_holds(suffix: &str, prop: &Value) -> bool {
    let format = prop.get("format").and_then(Value::as_str);
    match (suffix, seen_as(prop).as_deref()) {
        ("Num", Some("number" | "integer")) | ("Bool", Some("boolean")) => true,
        ("At", Some("string")) => format == Some("date-time"),
        ("Num" | "Bool" | "At", _) => false,
        (_, types) => types == Some("string"),
    }
}

/// The JSON types a property's schema lists (`"type"`, alone or in an
/// `anyOf`; a `$ref` is an object), null aside: `integer or string`; none
/// when it lists none.
fn seen_as(prop: &Value) -> Option<String> {
    fn add<'a>(types: &mut Vec<&'a str>, schema: &'a Value) {
        if schema.get("$ref").is_some() && !types.contains(&"object") {
            types.push("object");
        }
        let listed: Vec<&str> = match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for t in listed {
            if t != "null" && !types.contains(&t) {
                types.push(t);
            }
        }
    }
    let mut types = Vec::new();
    add(&mut types, prop);
    for alternative in prop
        .get("anyOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        add(&mut types, alternative);
    }
    let (last, rest) = types.split_last()?;
    Some(if rest.is_empty() {
        (*last).to_owned()
    } else {
        format!("{} or {last}", rest.join(", "))
    })
}

/// A field's doc comment. `custom`: the field is one of the org's custom
/// attributes (`data.attributes.custom`).
fn field_doc(key: &str, prop: &Value, kind: Kind, origin: Origin, custom: bool) -> String {
    let mut doc = format!("`{key}`");
    // A description written into the schema, on one line.
    if let Some(description) = prop.get("description").and_then(Value::as_str) {
        let line = one_line(description);
        let line = line.trim_end_matches('.');
        if !line.is_empty() {
            doc.push_str(&format!(": {line}"));
        }
    }
    if let Some(s) = prop.get("x-kustomer-suffix").and_then(Value::as_str) {
        if suffix_holds(s, prop) {
            doc.push_str(&format!(": a custom attribute typed by its `{s}` suffix"));
        } else {
            doc.push_str(&format!(
                ": a custom attribute whose samples held other values than its `{s}` suffix \
                 names, so it is typed by them"
            ));
        }
    }
    let suffixed = prop.get("x-kustomer-suffix").is_some();
    match kind {
        Kind::Any if custom && !suffixed => {
            doc.push_str(": a custom attribute with no known suffix, so any JSON");
        }
        Kind::Any => match seen_as(prop) {
            Some(types) => doc.push_str(&format!(". Seen as {types} in the samples: any JSON")),
            None => doc.push_str(". No type evidence in the samples: any JSON"),
        },
        Kind::Null => doc.push_str(". May be null"),
        _ => {}
    }
    if let Some(n) = prop.get("x-kustomer-samples").and_then(Value::as_u64) {
        match origin {
            Origin::Shared => doc.push_str(&format!(" (seen {n} times)")),
            Origin::Resource => doc.push_str(&format!(" (in {n} sample(s))")),
        }
    }
    doc.push('.');
    doc
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The Rust names of a struct's fields, for its JSON `keys` in order. A key
/// the struct read in its `previous` generation keeps the name it had
/// there (when that is a name this generator gives the key); the others get
/// [`field_name`], around them.
fn field_names<'k>(
    keys: impl Iterator<Item = &'k str>,
    previous: Option<&BTreeMap<String, String>>,
) -> Vec<String> {
    let keys: Vec<&str> = keys.collect();
    let mut taken = BTreeSet::from(["extra".to_owned()]);
    let mut names: Vec<Option<String>> = vec![None; keys.len()];
    if let Some(previous) = previous {
        for (key, slot) in keys.iter().zip(&mut names) {
            if let Some(name) = previous.get(*key)
                && is_name_for(key, name)
                && taken.insert(name.clone())
            {
                *slot = Some(name.clone());
            }
        }
    }
    keys.iter()
        .zip(names)
        .map(|(key, name)| name.unwrap_or_else(|| field_name(key, &mut taken)))
        .collect()
}

/// Whether [`field_name`] could give `key` the name `name`: its base name,
/// or the base with a number of 2 or more; or so before letters outside
/// ASCII were transliterated (when they separated words), or before a run
/// of capitals was split before its last (`customer_idstr`), so that a name
/// given then stays put.
fn is_name_for(key: &str, name: &str) -> bool {
    let base = field_base(key);
    if is_base_or_numbered(&base, name) {
        return true;
    }
    (!key.is_ascii() && is_base_or_numbered(&base_of(snake_case(key)), name))
        || is_base_or_numbered(&base_of(field_snake_case_runs_joined(key)), name)
}

/// Whether `name` is `base`, or `base` with a number of 2 or more.
fn is_base_or_numbered(base: &str, name: &str) -> bool {
    if name == base {
        return true;
    }
    let Some(rest) = name.strip_prefix(base) else {
        return false;
    };
    let number = if base.ends_with('_') {
        rest
    } else {
        match rest.strip_prefix('_') {
            Some(number) => number,
            None => return false,
        }
    };
    !number.starts_with('0') && number.parse::<u32>().is_ok_and(|n| n >= 2)
}

/// The name a key's field gets unless another field has it.
fn field_base(key: &str) -> String {
    base_of(field_snake_case(key))
}

/// A key's words in snake case as a field's name: `field` for none, `_`
/// before a digit, after a keyword.
fn base_of(snake: String) -> String {
    let mut base = snake;
    if base.is_empty() {
        base = "field".into();
    }
    if base.starts_with(|c: char| c.is_ascii_digit()) {
        base = format!("_{base}");
    }
    if is_keyword(&base) || base.starts_with("__") {
        base.push('_');
    }
    base
}

fn field_name(key: &str, taken: &mut BTreeSet<String>) -> String {
    let base = field_base(key);
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name) {
        // `self_` → `self_2`, `foo` → `foo_2`: one underscore either way.
        name = if base.ends_with('_') {
            format!("{base}{n}")
        } else {
            format!("{base}_{n}")
        };
        n += 1;
    }
    taken.insert(name.clone());
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_are_read_past_serde_json_s_limit_up_to_their_own() {
        let nested = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(nesting(nested(300).as_bytes()), 300);
        // Brackets in strings, escaped quotes among them, are not nesting.
        assert_eq!(nesting(br#"{"a": "[[{\"[", "b": ["]"]}"#), 2);
        assert!(parse_schema(&nested(MAX_SCHEMA_DEPTH)).is_ok());
        // Deeper: serde_json's own error, with where.
        let e = parse_schema(&nested(MAX_SCHEMA_DEPTH + 1)).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("recursion limit exceeded at line 1"),
            "{e}"
        );
        // Other errors as before: trailing text, cut-off text.
        assert!(
            parse_schema("{} {}")
                .unwrap_err()
                .to_string()
                .contains("trailing")
        );
        assert!(parse_schema("[[1]").is_err());
    }

    /// Types nested past [`MAX_TYPE_DEPTH`] would not compile (E0275): the
    /// value there is kept as JSON.
    #[test]
    fn a_value_nested_past_the_budget_is_kept_as_json() {
        let deep = |depth: usize, alternate: bool| {
            let mut v = Value::from(1);
            for level in 0..depth {
                v = if alternate && level % 2 == 1 {
                    serde_json::json!({ "k": v })
                } else {
                    serde_json::json!([v])
                };
            }
            serde_json::json!({
                "name": "kustomer.deep.update",
                "data": {"type": "deep", "attributes": {"d": v}},
            })
            .to_string()
        };
        for alternate in [false, true] {
            let files = models(&[&deep(120, alternate)]).unwrap();
            let text = files["deep.rs"].replace(char::is_whitespace, "");
            let vecs = text.matches("Vec<").count();
            let structs = text.matches("pubstructDeep").count();
            assert!(
                vecs + structs <= MAX_TYPE_DEPTH + 4,
                "{vecs} arrays and {structs} structs nested"
            );
            assert!(text.contains("Value>"), "{text}");
            // Shallower, it is typed all the way.
            let files = models(&[&deep(10, alternate)]).unwrap();
            assert!(
                files["deep.rs"].contains("Vec<i64>"),
                "{}",
                files["deep.rs"]
            );
        }
        // A repeated shape is one definition, made where it is first used:
        // used again deeper, its own levels count there too.
        let mut shape = serde_json::json!(1);
        for _ in 0..20 {
            shape = serde_json::json!({ "n": shape });
        }
        let mut deeper = shape.clone();
        for _ in 0..10 {
            deeper = serde_json::json!([deeper]);
        }
        let sample = serde_json::json!({
            "name": "kustomer.deep.update",
            "data": {"type": "deep", "attributes": {"a": shape, "b": deeper}},
        });
        let files = models(&[&sample.to_string()]).unwrap();
        let text = files["deep.rs"].replace(char::is_whitespace, "");
        let field = |name: &str| {
            let at = text.find(&format!("pub{name}:")).unwrap();
            text[at..at + text[at..].find(",///").unwrap()].to_owned()
        };
        assert!(field("a").starts_with("puba:Deep"), "{}", field("a"));
        assert!(field("b").contains("Vec<Value>"), "{}", field("b"));
    }

    #[test]
    fn names() {
        assert_eq!(event_variant("kustomer.customer.update"), "CustomerUpdate");
        assert_eq!(
            event_variant("kustomer.kobject.order.create"),
            "KobjectOrderCreate"
        );
        let mut taken = BTreeSet::from(["extra".to_owned()]);
        assert_eq!(
            field_name("AvgSatScoreNum", &mut taken),
            "avg_sat_score_num"
        );
        assert_eq!(
            field_name("avgSatScoreNum", &mut taken),
            "avg_sat_score_num_2"
        );
        assert_eq!(field_name("type", &mut taken), "type_");
        assert_eq!(field_name("self", &mut taken), "self_");
        // `Self` becomes `self_` too: the second one stays snake case.
        assert_eq!(field_name("Self", &mut taken), "self_2");
        assert_eq!(field_name("SELF", &mut taken), "self_3");
        assert_eq!(field_name("extra", &mut taken), "extra_2");
        assert_eq!(field_name("1st", &mut taken), "_1st");
        assert_eq!(field_name("é", &mut taken), "e");
        assert_eq!(field_name("ünïStr", &mut taken), "uni_str");
        assert_eq!(field_name("名前", &mut taken), "field");
        assert_eq!(module_name("customer"), "customer");
        assert_eq!(module_name("type"), "type_resource");
    }

    #[test]
    fn a_name_given_before_letters_outside_ascii_were_transliterated_stays_put() {
        let previous = BTreeMap::from([
            ("ünïStr".to_owned(), "n_str".to_owned()),
            ("émoji😀".to_owned(), "moji_2".to_owned()),
        ]);
        assert_eq!(
            field_names(["ünïStr", "émoji😀", "ключ"].into_iter(), Some(&previous)),
            ["n_str", "moji_2", "klyuch"]
        );
        // Without models before, the transliterated names.
        assert_eq!(
            field_names(["ünïStr", "émoji😀"].into_iter(), None),
            ["uni_str", "emoji"]
        );
        assert!(!is_name_for("nStr", "n_str_0"));
        // Type names keep to ASCII: code written against them still builds.
        let files = models(&[
            r#"{"name":"kustomer.widget.create","data":{"type":"widget","attributes":{"préférences":{"a":1}}}}"#,
        ])
        .unwrap();
        let text = &files["widget.rs"];
        assert!(text.contains("pub struct WidgetPrFRences "), "{text}");
        assert!(
            text.contains("pub preferences: WidgetPrFRences,")
                || text.contains("pub preferences: Option<WidgetPrFRences>,"),
            "{text}"
        );
    }

    /// A value nested deep in a change (its `after`, evidence of the
    /// attribute's type) keeps only its deepest part as JSON: the
    /// attributes stay typed, `rev` read, and generating again from the
    /// models changes nothing.
    #[test]
    fn a_deep_change_keeps_the_attributes_typed_and_generation_settles() {
        let mut deep = serde_json::json!("x");
        for _ in 0..23 {
            deep = serde_json::json!({ "d": deep });
        }
        let update = serde_json::json!({
            "id": "6a2f00000000000000000002",
            "name": "kustomer.widget.update",
            "data": {"type": "widget", "id": "6a2f000000000000000003ea", "attributes": {"rev": 2}},
            "changes": {"attributes": {"deep": {"op": "replace", "before": null, "after": deep}}}
        })
        .to_string();
        let other = r#"{"id":"6a2f00000000000000000003","name":"kustomer.widget.attribute-changes","data":{"type":"widget","id":"6a2f000000000000000003ea","attributes":{}}}"#;
        let samples = [update.as_str(), other];
        let files = models(&samples).unwrap();
        let text = &files["widget.rs"];
        assert!(text.contains("pub attributes: WidgetAttributes,"), "{text}");
        assert!(!text.contains(r#"json("attributes", any)"#), "{text}");
        let rev = &text[text.find("fn rev(&self)").expect("an envelope")..];
        assert!(
            rev[..rev.find('}').unwrap()].contains("self.data.attributes"),
            "{rev}"
        );
        let settings = Settings::default().with_previous_models(&files);
        let again = generate(&schemas(&samples), &settings).unwrap();
        assert_eq!(again, files);
    }

    /// A file whose only fields of any JSON are `Option<Value>` imports
    /// `Value` (a resource seen only created has no change set, which
    /// imported it anyway).
    #[test]
    fn a_file_with_fields_of_any_json_imports_value() {
        let sample = r#"{"id":"6a2f00000000000000000001","name":"kustomer.kobject.order.create","data":{"type":"kobject.order","id":"6a2f00000000000000000101","attributes":{"rev":1,"note":null,"custom":{"tier":"gold"}}}}"#;
        let files = models(&[sample]).unwrap();
        let text = &files["kobject_order.rs"];
        assert!(text.contains("pub note: Option<Value>"), "{text}");
        assert!(
            text.lines().any(
                |l| l.starts_with("use kustomer_webhooks::serde_json::") && l.contains("Value")
            ),
            "{text}"
        );
    }

    #[test]
    fn names_given_before_capital_runs_were_split_stay_put() {
        let previous = BTreeMap::from([
            ("orderIDStr".to_owned(), "order_idstr".to_owned()),
            // A capital outside ASCII ended no run before.
            ("paysTVAÉtranger".to_owned(), "pays_tvaetranger".to_owned()),
        ]);
        assert_eq!(
            field_names(
                [
                    "orderIDStr",
                    "customerIDStr",
                    "paysTVAÉtranger",
                    "villeTVAÉtranger"
                ]
                .into_iter(),
                Some(&previous)
            ),
            [
                "order_idstr",
                "customer_id_str",
                "pays_tvaetranger",
                "ville_tva_etranger"
            ]
        );
        let sample = r#"{"name":"kustomer.widget.create","data":{"type":"widget","attributes":{"VIPInfo":{"a":1},"orderIDStr":"x"}}}"#;
        let files = models(&[sample]).unwrap();
        let text = &files["widget.rs"];
        assert!(text.contains("pub struct WidgetVipInfo "), "{text}");
        assert!(text.contains("pub order_id_str: "), "{text}");
        // Models as the rule before named them keep those names.
        let before: BTreeMap<String, String> = files
            .iter()
            .map(|(name, text)| {
                let old = text
                    .replace("WidgetVipInfo", "WidgetVipinfo")
                    .replace("order_id_str", "order_idstr")
                    .replace("vip_info", "vipinfo");
                (name.clone(), old)
            })
            .collect();
        let settings = Settings::default().with_previous_models(&before);
        let again = generate(&schemas(&[sample]), &settings).unwrap();
        let text = &again["widget.rs"];
        assert!(text.contains("pub struct WidgetVipinfo "), "{text}");
        assert!(!text.contains("WidgetVipInfo"), "{text}");
        assert!(text.contains("pub order_idstr: "), "{text}");
        assert!(text.contains("pub vipinfo: "), "{text}");
    }

    #[test]
    fn a_field_keeps_its_previous_name_and_new_keys_go_around_it() {
        let previous = BTreeMap::from([
            ("fooBar".to_owned(), "foo_bar".to_owned()),
            ("type".to_owned(), "type_".to_owned()),
            ("x".to_owned(), "x_2".to_owned()),
            // Not a name this generator gives the key: not kept.
            ("renamed".to_owned(), "by_hand".to_owned()),
            ("gone".to_owned(), "gone".to_owned()),
        ]);
        let keys = ["FOO_BAR", "fooBar", "renamed", "type", "x"];
        assert_eq!(
            field_names(keys.into_iter(), Some(&previous)),
            ["foo_bar_2", "foo_bar", "renamed", "type_", "x_2"]
        );
        assert_eq!(
            field_names(keys.into_iter(), None),
            ["foo_bar", "foo_bar_2", "renamed", "type_", "x"]
        );
        // Two keys that had one name (a hand-edited file): the first keeps it.
        let twice = BTreeMap::from([
            ("a".to_owned(), "a".to_owned()),
            ("A".to_owned(), "a".to_owned()),
        ]);
        assert_eq!(
            field_names(["A", "a"].into_iter(), Some(&twice)),
            ["a", "a_2"]
        );
        assert!(is_name_for("fooBar", "foo_bar_12"));
        assert!(is_name_for("self", "self_3"));
        for (key, name) in [
            ("fooBar", "foo_bar_1"),
            ("fooBar", "foo_bar_02"),
            ("fooBar", "foo_bar2"),
            ("fooBar", "foo_barx"),
            ("self", "self__2"),
            ("fooBar", "extra"),
        ] {
            assert!(!is_name_for(key, name), "{key} {name}");
        }
    }

    /// The models of `samples` (JSON texts).
    /// The schemas inferred from `samples` (JSON texts).
    fn schemas(samples: &[&str]) -> BTreeMap<String, Value> {
        let mut inferrer = kustomer_schema::Inferrer::default();
        for (i, sample) in samples.iter().enumerate() {
            inferrer
                .add_json(sample.as_bytes(), &format!("s{i}"))
                .unwrap();
        }
        inferrer.schemas()
    }

    fn models(samples: &[&str]) -> Result<BTreeMap<String, String>> {
        generate(&schemas(samples), &Settings::default())
    }

    #[test]
    fn keys_with_control_or_direction_characters_make_doc_comments_rustc_takes() {
        let files = models(&[
            r#"{"name":"kustomer.thing.create","data":{"type":"thing","attributes":{"a\rb":"v","\u202egnp.exe":"v","c\u0001":"v"}}}"#,
        ])
        .unwrap();
        let text = &files["thing.rs"];
        for hidden in ['\r', '\u{202e}', '\u{1}'] {
            for line in text.lines().filter(|l| l.trim_start().starts_with("///")) {
                assert!(!line.contains(hidden), "{hidden:?} in {line:?}");
            }
        }
        assert!(text.contains("`a\\u{d}b`"), "{text}");
        assert!(text.contains("`\\u{202e}gnp.exe`"), "{text}");
        assert_eq!(doc_text("plain `key` é"), "plain `key` é");
    }

    #[test]
    fn a_resource_that_names_no_shared_definition_does_not_import_them() {
        let files = models(&[
            r#"{"name":"kustomer.kobject.order.create","data":{"type":"kobject.order","attributes":{"a":1}}}"#,
        ])
        .unwrap();
        assert!(!files["kobject_order.rs"].contains("use super::*;"));
        let files = models(&[
            r#"{"name":"kustomer.team.create","data":{"type":"team","links":{"self":"/v1/teams/1"}}}"#,
        ])
        .unwrap();
        assert!(files["team.rs"].contains("use super::*;"));
    }

    #[test]
    fn a_field_of_several_types_says_which_it_was_seen_as() {
        let files = models(&[
            r#"{"name":"kustomer.widget.create","data":{"type":"widget","attributes":{"a":1,"b":null,"c":null,"d":{"x":1}}}}"#,
            r#"{"name":"kustomer.widget.create","data":{"type":"widget","attributes":{"a":"1","b":null,"c":"s","d":"s"}}}"#,
            r#"{"name":"kustomer.widget.create","data":{"type":"widget","attributes":{"d":[1]}}}"#,
        ])
        .unwrap();
        let text = &files["widget.rs"];
        for line in [
            "/// `a`. Seen as integer or string in the samples: any JSON",
            "/// `b`. No type evidence in the samples: any JSON",
            "/// `d`. Seen as ",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
        let d = text.lines().find(|l| l.contains("/// `d`.")).unwrap();
        for t in ["array", "object", "string"] {
            assert!(d.contains(t), "{d}");
        }
        assert_eq!(seen_as(&serde_json::json!({"type": "null"})), None);
        assert_eq!(
            seen_as(
                &serde_json::json!({"anyOf": [{"type": ["null", "string"]}, {"$ref": "#/definitions/X"}]})
            ),
            Some("string or object".to_owned())
        );
        assert_eq!(
            seen_as(&serde_json::json!({"type": ["integer", "string", "object"]})),
            Some("integer, string or object".to_owned())
        );
    }

    #[test]
    fn a_schema_edited_into_a_type_without_end_is_an_error_naming_the_property() {
        let mut inferrer = kustomer_schema::Inferrer::default();
        inferrer
            .add_json(
                br#"{"name":"kustomer.widget.create","data":{"type":"widget","attributes":{"a":{"b":1}}}}"#,
                "s",
            )
            .unwrap();
        let schemas = inferrer.schemas();
        let with = |key: &str, property: Value| {
            let mut schemas = schemas.clone();
            schemas.get_mut("widget").unwrap()["definitions"]["WidgetAttributes"]["properties"]
                [key] = property;
            schemas
        };

        // Directly: the attributes hold themselves.
        let direct = with(
            "me",
            serde_json::json!({"$ref": "#/definitions/WidgetAttributes"}),
        );
        let err = generate(&direct, &Settings::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "widget schema, /definitions/WidgetAttributes/properties/me: refers back to the type \
             it is in (WidgetAttributes → WidgetAttributes) with no array between, a type without \
             end; inference never writes such a reference, so it was edited in: remove it, or \
             make the property an array"
        );
        // Through another type: the resource holds its attributes.
        let around = with("owner", serde_json::json!({"$ref": "#/definitions/Widget"}));
        let err = generate(&around, &Settings::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("(Widget → WidgetAttributes → Widget)")
                || err.contains("(WidgetAttributes → Widget → WidgetAttributes)"),
            "{err}"
        );
        // From an object inline in another: the pointer is where it is.
        let mut inline = schemas.clone();
        inline.get_mut("widget").unwrap()["definitions"]["WidgetAttributes"]["properties"]["a"]["properties"]
            ["back"] = serde_json::json!({"$ref": "#/definitions/WidgetAttributes"});
        let err = generate(&inline, &Settings::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "widget schema, /definitions/WidgetAttributes/properties/a/properties/back: "
            ) || err.starts_with("widget schema, /definitions/WidgetAttributes/properties/a: "),
            "{err}"
        );
        // In the definitions every resource shares.
        let mut shared = schemas.clone();
        shared.get_mut("widget").unwrap()["definitions"]["Links"]["properties"]["rel"] =
            serde_json::json!({"$ref": "#/definitions/Relationship"});
        match generate(&shared, &Settings::default()) {
            Err(e) => assert!(
                e.to_string().starts_with("widget schema, /definitions/"),
                "{e}"
            ),
            Ok(files) => panic!("{}", files["shared.rs"]),
        }
        // In an array, the items are held elsewhere: a tree, which compiles.
        let tree = with(
            "children",
            serde_json::json!({"type": "array", "items": {"$ref": "#/definitions/WidgetAttributes"}}),
        );
        let files = generate(&tree, &Settings::default()).unwrap();
        assert!(
            files["widget.rs"].contains("pub children: Option<Vec<WidgetAttributes>>"),
            "{}",
            files["widget.rs"]
        );
    }

    /// The body of the generated `Envelope::rev` in `text`, and of those
    /// after it up to `has_data`.
    fn rev_body(text: &str) -> &str {
        envelope_fn(text, "fn rev(&self)")
    }

    /// The generated `Envelope` function starting with `start` in `text`,
    /// and those after it up to `has_data`.
    fn envelope_fn<'t>(text: &'t str, start: &str) -> &'t str {
        let from = text.find(start).expect("an Envelope impl");
        let end = from + text[from..].find("fn has_data").expect("has_data last");
        &text[from..end]
    }

    /// `body` on one line, without the spaces rustfmt puts inside calls.
    fn flat(body: &str) -> String {
        body.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace("( ", "(")
            .replace(" )", ")")
            .replace(" .", ".")
    }

    /// Whatever type the samples gave a date-time (`sample` puts a value
    /// in a team update), the envelope's `method` reads milliseconds from
    /// it, and from its drifted value in `extra` (`from_extra`).
    fn reads_a_date_time_whatever_type(
        sample: impl Fn(&str) -> String,
        method: &str,
        typed: &str,
        from_extra: &str,
    ) {
        for (values, reads) in [
            (&["\"2021-04-26T21:33:54.763Z\""][..], typed),
            (
                &["\"yesterday\""][..],
                ".and_then(kustomer_webhooks::__private::str_millis)",
            ),
            (
                &["\"2021-04-26T21:33:54.763Z\"", "3"][..],
                ".and_then(kustomer_webhooks::__private::value_millis)",
            ),
            (&["{}"][..], "extra_millis("),
        ] {
            let samples: Vec<String> = values.iter().map(|at| sample(at)).collect();
            let samples: Vec<&str> = samples.iter().map(String::as_str).collect();
            let files = models(&samples).unwrap();
            let flat = flat(envelope_fn(&files["team.rs"], method));
            assert!(flat.contains(reads), "{values:?}: {flat}");
            assert!(flat.contains(from_extra), "{values:?}: {flat}");
        }
    }

    #[test]
    fn updated_at_reads_a_date_time_whatever_type_the_samples_gave_it() {
        reads_a_date_time_whatever_type(
            |at| {
                format!(
                    r#"{{"name":"kustomer.team.update","data":{{"type":"team","id":"1","attributes":{{"updatedAt":{at}}}}}}}"#
                )
            },
            "fn updated_at(&self)",
            "self.data.attributes.updated_at.as_ref().map(DateTime::timestamp_millis)",
            "extra_millis(&self.data.attributes.extra, \"updatedAt\"",
        );
    }

    #[test]
    fn created_at_reads_the_envelopes_date_time_whatever_type_the_samples_gave_it() {
        reads_a_date_time_whatever_type(
            |at| {
                format!(
                    r#"{{"name":"kustomer.team.update","createdAt":{at},"data":{{"type":"team","id":"1","attributes":{{}}}}}}"#
                )
            },
            "fn created_at(&self)",
            "self.created_at.as_ref().map(DateTime::timestamp_millis)",
            "extra_millis(&self.extra, \"createdAt\"",
        );
    }

    #[test]
    fn org_reads_the_typed_field_or_a_drifted_value_in_extra() {
        let typed = r#"{"name":"kustomer.team.update","org":"5f8481c6a22ab5b9d5f2dd8a","orgName":"acme","data":{"type":"team","id":"1","attributes":{}}}"#;
        let files = models(&[typed]).unwrap();
        let org = flat(envelope_fn(&files["team.rs"], "fn org(&self)"));
        assert!(org.contains("self.org.as_deref().or_else("), "{org}");
        assert!(org.contains("extra_str(&self.extra, \"org\")"), "{org}");
        let name = flat(envelope_fn(&files["team.rs"], "fn org_name(&self)"));
        assert!(name.contains("self.org_name.as_deref().or_else("), "{name}");
        assert!(
            name.contains("extra_str(&self.extra, \"orgName\")"),
            "{name}"
        );
        // Samples that never had a string there: only `extra` can hold one.
        let untyped = r#"{"name":"kustomer.team.update","org":7,"data":{"type":"team","id":"1","attributes":{}}}"#;
        let files = models(&[untyped]).unwrap();
        let org = flat(envelope_fn(&files["team.rs"], "fn org(&self)"));
        assert!(!org.contains("self.org.as_deref()"), "{org}");
        assert!(org.contains("extra_str(&self.extra, \"org\")"), "{org}");
        let name = flat(envelope_fn(&files["team.rs"], "fn org_name(&self)"));
        assert!(
            name.contains("extra_str(&self.extra, \"orgName\")"),
            "{name}"
        );
    }

    #[test]
    fn rev_reads_an_integer_whatever_type_the_samples_gave_it() {
        for (revs, reads) in [
            (&["3"][..], "self.data.attributes.rev.or_else("),
            (&["\"4\""][..], ".as_deref().and_then(|s| s.parse().ok())"),
            (
                &["4.5"][..],
                ".as_ref().and_then(kustomer_webhooks::__private::number_int)",
            ),
            (
                &["3", "\"4\""][..],
                ".as_ref().and_then(kustomer_webhooks::__private::value_int)",
            ),
            (
                &["3", "null", "{}"][..],
                ".as_ref().and_then(kustomer_webhooks::__private::value_int)",
            ),
        ] {
            let samples: Vec<String> = revs
                .iter()
                .map(|rev| {
                    format!(
                        r#"{{"name":"kustomer.customer.update","data":{{"type":"customer","id":"1","attributes":{{"rev":{rev}}}}}}}"#
                    )
                })
                .collect();
            let samples: Vec<&str> = samples.iter().map(String::as_str).collect();
            let files = models(&samples).unwrap();
            let flat = flat(rev_body(&files["customer.rs"]));
            assert!(flat.contains(reads), "{revs:?}: {flat}");
            assert!(
                flat.contains("extra_int(&self.data.attributes.extra, \"rev\""),
                "{revs:?}: {flat}"
            );
        }
        // Without a `rev` in any sample, one that comes later is still read.
        let files = models(&[
            r#"{"name":"kustomer.customer.update","data":{"type":"customer","id":"1","attributes":{"a":1}}}"#,
        ])
        .unwrap();
        assert!(rev_body(&files["customer.rs"]).contains("extra_int"));
    }

    #[test]
    fn a_resource_named_like_the_runtime_crate_does_not_shadow_it() {
        for resource in ["kustomer_webhooks", "kustomer-webhooks"] {
            let files = models(&[&format!(
                r#"{{"name":"kustomer.{resource}.create","data":{{"type":"{resource}","attributes":{{"a":1}}}}}}"#
            )])
            .unwrap();
            assert!(
                files.contains_key("kustomer_webhooks_resource.rs"),
                "{:?}",
                files.keys()
            );
            assert!(!files.contains_key("kustomer_webhooks.rs"));
            assert!(files["mod.rs"].contains("mod kustomer_webhooks_resource;"));
        }
    }

    #[test]
    fn a_custom_attribute_is_said_to_be_typed_by_its_suffix_only_when_it_is() {
        let files = models(&[
            r#"{"name":"kustomer.widget.create","data":{"type":"widget","attributes":{"custom":{"renewalAt":12345,"dueAt":"2024-01-02T03:04:05.000Z","tierStr":"gold","scoreNum":"high","okBool":true}}}}"#,
        ])
        .unwrap();
        let text = &files["widget.rs"];
        let doc_of = |key: &str| {
            let line = text
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("/// `{key}`")))
                .unwrap_or_else(|| panic!("{key} in {text}"));
            line.trim_start().to_owned()
        };
        for (key, suffix) in [("dueAt", "At"), ("tierStr", "Str"), ("okBool", "Bool")] {
            assert!(
                doc_of(key).contains(&format!("typed by its `{suffix}` suffix")),
                "{}",
                doc_of(key)
            );
        }
        for (key, suffix) in [("renewalAt", "At"), ("scoreNum", "Num")] {
            let doc = doc_of(key);
            assert!(!doc.contains("typed by its"), "{doc}");
            assert!(
                doc.contains(&format!(
                    "held other values than its `{suffix}` suffix names"
                )),
                "{doc}"
            );
        }
    }

    #[test]
    fn a_nested_object_does_not_take_the_name_of_a_type_of_the_resource() {
        let files = models(&[
            r#"{"name":"kustomer.widget.update","data":{"type":"widget","id":"w1","attributes":{"attributeChanges":{"x":1},"billing":{"custom":{"planStr":"pro"}},"changes":{"b":1},"custom":{"tierStr":"gold"},"relationshipChanges":{"y":1},"relationships":{"z":1}},"relationships":{"org":{"data":{"type":"org","id":"1"}}}},"changes":{"attributes":{"custom":{"op":"replace","before":null,"after":{}}},"relationships":{"org":{"op":"replace","before":null,"after":{}}}}}"#,
        ])
        .unwrap();
        let text = &files["widget.rs"];
        for (field, ty) in [
            // The envelope's and the data's own.
            ("changes", "WidgetChanges"),
            ("attributes", "WidgetAttributeChanges"),
            ("relationships", "WidgetRelationshipChanges"),
            ("custom", "WidgetCustom"),
        ] {
            assert!(
                text.contains(&format!("pub {field}: Option<{ty}>,"))
                    || text.contains(&format!("pub {field}: {ty},"))
                    || text.contains(&format!("pub {field}: Option<Box<Change<{ty}>>>,")),
                "{field}: {ty} in {text}"
            );
        }
        assert!(text.contains("pub struct WidgetRelationships "), "{text}");
        // The org's custom attributes are `WidgetCustom`; the `custom` of
        // `billing`, and the attributes named like the resource's own types,
        // are numbered.
        let custom = text.find("pub struct WidgetCustom ").unwrap();
        assert!(
            text[custom..].starts_with("pub struct WidgetCustom {\n    /// `tierStr`"),
            "{text}"
        );
        for numbered in [
            "WidgetCustom2",
            "WidgetChanges2",
            "WidgetAttributeChanges2",
            "WidgetRelationshipChanges2",
            "WidgetRelationships2",
        ] {
            assert!(
                text.contains(&format!("pub struct {numbered} ")),
                "{numbered} in {text}"
            );
        }
    }

    #[test]
    fn a_struct_that_cannot_keep_its_name_keeps_its_fields_names() {
        let sample = |billing: &str| {
            format!(
                r#"{{"name":"kustomer.widget.create","data":{{"type":"widget","attributes":{{"billing":{{"custom":{billing}}},"custom":{{"tierStr":"gold"}}}}}}}}"#
            )
        };
        let first = models(&[&sample(r#"{"a_b":1,"inner":{"x":1}}"#)]).unwrap();
        let text = &first["widget.rs"];
        assert!(text.contains("pub custom: WidgetCustom2,"), "{text}");
        // Models as a generator that let `billing.custom` take the name
        // would have written them: the two names swapped.
        let swapped = text
            .replace("WidgetCustom2", "\0")
            .replace("WidgetCustom", "WidgetCustom2")
            .replace('\0', "WidgetCustom");
        let before = BTreeMap::from([("widget.rs".to_owned(), swapped)]);
        // `aB` arrives, which sorts before `a_b` and is `a_b` too.
        let settings = Settings::default().with_previous_models(&before);
        let again = schemas(&[&sample(r#"{"a_b":1,"aB":2,"inner":{"x":1}}"#)]);
        let text = &generate(&again, &settings).unwrap()["widget.rs"];
        // `billing.custom` gives `WidgetCustom` up, and its field keeps its
        // name.
        assert!(text.contains("pub custom: WidgetCustom3,"), "{text}");
        let at = text.find("pub struct WidgetCustom3 ").unwrap();
        let fields = &text[at..];
        assert!(
            fields.contains("#[json(\"a_b\")]\n    pub a_b: "),
            "{fields}"
        );
        assert!(
            fields.contains("#[json(\"aB\")]\n    pub a_b_2: "),
            "{fields}"
        );
        // And its nested object keeps the name it had.
        let inner = |text: &str| {
            let at = text.find("pub inner: ").unwrap() + "pub inner: ".len();
            text[at..at + text[at..].find(',').unwrap()].to_owned()
        };
        assert_eq!(inner(text), inner(&before["widget.rs"]), "{text}");
    }

    /// An event whose type would be named as a resource's own type (its
    /// envelope, data, attributes…) or as a struct the models before had
    /// gets `Event` before its name: a capture of a new event never takes a
    /// name that handlers and other code use. An event type the models
    /// before had keeps its name.
    #[test]
    fn an_event_type_never_takes_a_resource_type_or_a_struct_of_the_models_before() {
        let sample = |name: &str, attributes: &str| {
            format!(r#"{{"name":"{name}","data":{{"type":"customer","attributes":{attributes}}}}}"#)
        };
        // The generated text with its white space made single spaces.
        let flat = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
        let update = sample("kustomer.customer.update", r#"{"merge":{"into":"x"}}"#);
        // The envelope and the data struct keep their names.
        for (name, variant) in [
            ("kustomer.customer.event", "EventCustomerEvent"),
            ("kustomer.customer", "EventCustomer"),
            ("kustomer.customer.attributes", "EventCustomerAttributes"),
        ] {
            let files = models(&[&update, &sample(name, "{}")]).unwrap();
            let text = &files["customer.rs"];
            assert!(
                text.contains("pub struct CustomerEvent {"),
                "{name}: {text}"
            );
            assert!(text.contains("pub struct Customer {"), "{name}: {text}");
            assert!(
                text.contains("pub struct CustomerAttributes {"),
                "{name}: {text}"
            );
            assert!(
                flat(text).contains(&format!("{variant}(CustomerEvent) = \"{name}\"")),
                "{name}: {text}"
            );
        }
        // A struct of the models before keeps its name.
        let before = models(&[&update]).unwrap();
        assert!(before["customer.rs"].contains("pub struct CustomerMerge {"));
        let merge = sample("kustomer.customer.merge", "{}");
        let settings = Settings::default().with_previous_models(&before);
        let kept = generate(&schemas(&[&update, &merge]), &settings).unwrap();
        let text = &kept["customer.rs"];
        assert!(text.contains("pub struct CustomerMerge {"), "{text}");
        assert!(text.contains("pub merge: Option<CustomerMerge>,"), "{text}");
        assert!(
            flat(text).contains("EventCustomerMerge(CustomerEvent) = \"kustomer.customer.merge\""),
            "{text}"
        );
        // Without models before, the event takes its own name, the struct
        // going around it; with the models made so, each keeps its name.
        let fresh = models(&[&update, &merge]).unwrap();
        let text = &fresh["customer.rs"];
        assert!(
            flat(text).contains(" CustomerMerge(CustomerEvent) = \"kustomer.customer.merge\""),
            "{text}"
        );
        assert!(
            text.contains("pub merge: Option<CustomerMerge2>,"),
            "{text}"
        );
        let settings = Settings::default().with_previous_models(&fresh);
        let again = generate(&schemas(&[&update, &merge]), &settings).unwrap();
        assert_eq!(again["customer.rs"], fresh["customer.rs"]);
        // Renamed to the type of another event: numbered.
        let widget = |name: &str| {
            format!(r#"{{"name":"{name}","data":{{"type":"widget","attributes":{{}}}}}}"#)
        };
        let files =
            models(&[&widget("kustomer.widget"), &widget("kustomer.event-widget")]).unwrap();
        let text = flat(&files["widget.rs"]);
        assert!(
            text.contains(" EventWidget(WidgetEvent) = \"kustomer.event-widget\""),
            "{text}"
        );
        assert!(
            text.contains(" EventWidget2(WidgetEvent) = \"kustomer.widget\""),
            "{text}"
        );
        assert!(text.contains("pub struct Widget {"), "{text}");
        // With models before that named `kustomer.widget`'s type
        // `EventWidget`, it keeps it, and the newcomer goes around it.
        let before = models(&[&widget("kustomer.widget")]).unwrap();
        assert!(
            flat(&before["widget.rs"]).contains(" EventWidget(WidgetEvent) = \"kustomer.widget\"")
        );
        let settings = Settings::default().with_previous_models(&before);
        let both = schemas(&[&widget("kustomer.widget"), &widget("kustomer.event-widget")]);
        let text = flat(&generate(&both, &settings).unwrap()["widget.rs"]);
        assert!(
            text.contains(" EventWidget(WidgetEvent) = \"kustomer.widget\""),
            "{text}"
        );
        assert!(
            text.contains(" EventWidget2(WidgetEvent) = \"kustomer.event-widget\""),
            "{text}"
        );
    }

    /// A shape repeated in the samples is one type, named after the first
    /// key holding it; a new key holding it that sorts first would rename
    /// it, and the models before keep its name.
    #[test]
    fn a_repeated_shape_keeps_its_type_name_when_a_new_key_sorting_first_holds_it() {
        let first = r#"{"name":"kustomer.thing.create","data":{"type":"thing","attributes":{"addrB":{"street":"x","city":"y"},"addrC":{"street":"x","city":"y"}}}}"#;
        let second = r#"{"name":"kustomer.thing.create","data":{"type":"thing","attributes":{"addrA":{"street":"x","city":"y"},"addrB":{"street":"x","city":"y"}}}}"#;
        let before = generate(&schemas(&[first]), &Settings::default()).unwrap();
        assert!(before["thing.rs"].contains("pub addr_c: ThingAddrB,"));
        let fresh = generate(&schemas(&[first, second]), &Settings::default()).unwrap();
        assert!(fresh["thing.rs"].contains("pub addr_c: Option<ThingAddrA>,"));
        let settings = Settings::default().with_previous_models(&before);
        let kept = generate(&schemas(&[first, second]), &settings).unwrap();
        let text = &kept["thing.rs"];
        for field in [
            "pub addr_a: Option<ThingAddrB>,",
            "pub addr_c: Option<ThingAddrB>,",
        ] {
            assert!(text.contains(field), "{field} in {text}");
        }
        assert!(!text.contains("ThingAddrA"), "{text}");
        // The same with the models keyed by their paths, as the command
        // line reads them.
        let by_path: BTreeMap<String, String> = before
            .iter()
            .map(|(name, text)| (format!("/srv/app/src/models/{name}"), text.clone()))
            .collect();
        let settings = Settings::default().with_previous_models(&by_path);
        assert_eq!(
            generate(&schemas(&[first, second]), &settings).unwrap(),
            kept
        );
        let settings = Settings::default().with_previous_models(&kept);
        assert_eq!(
            generate(&schemas(&[first, second]), &settings).unwrap(),
            kept
        );

        // A struct with the same keys that typed another key before keeps
        // its name; the new shape held by new keys is named afresh.
        let first = r#"{"name":"kustomer.thing.create","data":{"type":"thing","attributes":{"foo":{"x":1,"y":2}}}}"#;
        let second = r#"{"name":"kustomer.thing.create","data":{"type":"thing","attributes":{"aa":{"x":"s","y":"s"},"bb":{"x":"s","y":"s"},"foo":{"x":1,"y":2}}}}"#;
        let before = generate(&schemas(&[first]), &Settings::default()).unwrap();
        assert!(before["thing.rs"].contains("pub foo: ThingFoo,"));
        let settings = Settings::default().with_previous_models(&before);
        let kept = generate(&schemas(&[first, second]), &settings).unwrap();
        let text = &kept["thing.rs"];
        assert!(text.contains("pub foo: ThingFoo,"), "{text}");
        assert!(text.contains("pub aa: Option<ThingAa>,"), "{text}");
        let settings = Settings::default().with_previous_models(&kept);
        assert_eq!(
            generate(&schemas(&[first, second]), &settings).unwrap(),
            kept
        );
    }

    /// A schema edited by hand: what generation makes of each edit, or the
    /// error that names where it is.
    #[test]
    fn hand_edited_schemas_give_models_that_read_them_or_errors_that_say_where() {
        let sample = r#"{"name":"kustomer.widget.update","data":{"type":"widget","id":"w1","attributes":{"contact":"a@b.c","size":1}},"changes":{"attributes":{"size":{"op":"replace","before":0,"after":1}}}}"#;
        let base = schemas(&[sample]);
        let edited = |edit: &dyn Fn(&mut Value)| {
            let mut schemas = base.clone();
            edit(schemas.get_mut("widget").unwrap());
            generate(&schemas, &Settings::default())
        };
        let attributes = "/definitions/WidgetAttributes/properties";
        // A `$ref` to a definition of a string: a string field.
        let files = edited(&|s| {
            s["definitions"]["Email"] = serde_json::json!({"type": "string", "format": "email"});
            *s.pointer_mut(&format!("{attributes}/contact")).unwrap() =
                serde_json::json!({"$ref": "#/definitions/Email"});
        })
        .unwrap();
        assert!(
            files["widget.rs"].contains("pub contact: Option<Str>,"),
            "{}",
            files["widget.rs"]
        );
        // Null beside a `$ref`, or in the definition: a nullable field.
        let files = edited(&|s| {
            s["definitions"]["Size"] =
                serde_json::json!({"type": ["object", "null"], "properties": {"n": {"type": "integer"}}});
            *s.pointer_mut(&format!("{attributes}/size")).unwrap() =
                serde_json::json!({"$ref": "#/definitions/Size"});
        })
        .unwrap();
        assert!(
            files["widget.rs"].contains("#[json(\"size\", nullable)]"),
            "{}",
            files["widget.rs"]
        );
        // `oneOf` with null, and `allOf` of one, as `anyOf`.
        let files = edited(&|s| {
            *s.pointer_mut(&format!("{attributes}/contact")).unwrap() =
                serde_json::json!({"oneOf": [{"type": "null"}, {"type": "string"}]});
            *s.pointer_mut(&format!("{attributes}/size")).unwrap() =
                serde_json::json!({"allOf": [{"type": "integer"}], "description": "how\n  big."});
        })
        .unwrap();
        let text = &files["widget.rs"];
        assert!(
            text.contains("#[json(\"contact\", nullable)]\n    pub contact: Option<Str>,"),
            "{text}"
        );
        assert!(text.contains("pub size: Option<i64>,"), "{text}");
        // A description, on one line.
        assert!(text.contains("/// `size`: how big.\n"), "{text}");
        // Errors, each at its place.
        let error = |edit: &dyn Fn(&mut Value)| edited(edit).unwrap_err().to_string();
        let e = error(&|s| {
            *s.pointer_mut(&format!("{attributes}/size")).unwrap() = serde_json::json!({"type": 5});
        });
        assert!(
            e.ends_with("/properties/size: `type` must be a type name or a list of them"),
            "{e}"
        );
        let e = error(&|s| {
            *s.pointer_mut(&format!("{attributes}/size")).unwrap() =
                serde_json::json!({"anyOf": [{"type": "null"}, {"type": "strng"}]});
        });
        assert!(
            e.contains("/properties/size/anyOf/1: unknown type \"strng\""),
            "{e}"
        );
        let e = error(&|s| {
            s["definitions"].as_object_mut().unwrap().remove("Links");
        });
        assert!(e.contains("$ref to a missing definition \"Links\""), "{e}");
        let e = error(&|s| {
            s["properties"]["changes"] = serde_json::json!({"$ref": "#/definitions/Nope"})
        });
        assert!(
            e.contains("/properties/changes: $ref to a missing definition \"Nope\""),
            "{e}"
        );
        let e = error(&|s| s["x-kustomer-events"] = "kustomer.widget.update".into());
        assert!(
            e.contains("`x-kustomer-events` must be a list of event names"),
            "{e}"
        );
        let e = error(&|s| {
            s["x-kustomer-events"] =
                serde_json::json!(["kustomer.widget.update", "kustomer.widget.update"]);
        });
        assert!(e.contains("is listed twice in `x-kustomer-events`"), "{e}");
        let e = error(&|s| {
            *s.pointer_mut(&format!("{attributes}/size")).unwrap() =
                serde_json::json!({"$ref": "#/$defs/Size"});
        });
        assert!(e.contains("not `$defs`"), "{e}");
        // A definition named with `/`, its `$ref` escaped.
        let files = edited(&|s| {
            s["definitions"]["a/b"] =
                serde_json::json!({"type": "object", "properties": {"n": {"type": "integer"}}});
            *s.pointer_mut(&format!("{attributes}/size")).unwrap() =
                serde_json::json!({"$ref": "#/definitions/a~1b"});
        })
        .unwrap();
        assert!(
            files["widget.rs"].contains("pub struct AB "),
            "{}",
            files["widget.rs"]
        );
        // Definitions that refer to each other through `anyOf` alone: JSON,
        // not an endless loop.
        let files = edited(&|s| {
            s["definitions"]["A"] = serde_json::json!({"anyOf": [{"$ref": "#/definitions/B"}]});
            s["definitions"]["B"] = serde_json::json!({"anyOf": [{"$ref": "#/definitions/A"}]});
            *s.pointer_mut(&format!("{attributes}/size")).unwrap() =
                serde_json::json!({"$ref": "#/definitions/A"});
        })
        .unwrap();
        assert!(
            files["widget.rs"].contains("pub size: Option<Value>,"),
            "{}",
            files["widget.rs"]
        );
        // An event named `kustomer.other`: not `AnyEvent::Other`.
        let other = r#"{"name":"kustomer.other","data":{"type":"widget","id":"w1"}}"#;
        let files = models(&[other]).unwrap();
        assert!(
            files["mod.rs"].contains("EventOther = \"kustomer.other\""),
            "{}",
            files["mod.rs"]
        );
    }

    #[test]
    fn an_object_keyed_by_ids_is_a_map_and_a_new_id_changes_no_model() {
        let sample = |id: &str| {
            format!(
                r#"{{"name":"kustomer.thing.create","data":{{"type":"thing","attributes":{{"byId":{{"{id}":{{"n":1}}}},"mixed":{{"label":"x","{id}":2}}}}}}}}"#
            )
        };
        let one = models(&[&sample("5f8481c6a22ab5b9d5f2dd8a")]).unwrap();
        let text = &one["thing.rs"];
        assert!(
            text.contains("pub by_id: Option<Map<String, Value>>,"),
            "{text}"
        );
        assert!(text.contains("pub mixed: ThingMixed,"), "{text}");
        assert!(
            text.contains("/// The `mixed` object of a `thing` (`data.attributes.mixed`)."),
            "{text}"
        );
        assert!(!text.contains("5f8481c6a22ab5b9d5f2dd8a"), "{text}");
        let two = models(&[
            &sample("5f8481c6a22ab5b9d5f2dd8a"),
            &sample("608731c238e15a90895f7029"),
        ])
        .unwrap();
        assert_eq!(summarize(&one, &two), []);
    }

    #[test]
    fn nullable_object_items_make_no_struct_and_regenerating_changes_nothing() {
        let sample = r#"{"name":"kustomer.thing.create","data":{"type":"thing","attributes":{"x":[{"a":1},null]}}}"#;
        let first = models(&[sample]).unwrap();
        let text = &first["thing.rs"];
        assert!(text.contains("pub x: Option<Vec<Value>>,"), "{text}");
        assert!(!text.contains("struct ThingX"), "{text}");
        let settings = Settings::default().with_previous_models(&first);
        assert_eq!(generate(&schemas(&[sample]), &settings).unwrap(), first);
    }

    #[test]
    fn a_shape_repeated_in_one_resource_and_in_a_relationship_gives_one_shared_definition() {
        // `{"count": …}` twice in the conversation's attributes (hoisted as
        // one of its definitions), and in a relationship's `meta`.
        let conversation = r#"{"name":"kustomer.conversation.update","data":{"type":"conversation","id":"c1","attributes":{"messageStats":{"count":3},"noteStats":{"count":1}},"relationships":{"messages":{"meta":{"stats":{"count":3}}}}}}"#;
        let customer = r#"{"name":"kustomer.customer.update","data":{"type":"customer","id":"k1","attributes":{"name":"n"},"relationships":{"org":{"data":{"type":"org","id":"o1"}}}}}"#;
        let schemas = schemas(&[conversation, customer]);
        assert_eq!(
            schemas["conversation"]["definitions"]["Relationship"],
            schemas["customer"]["definitions"]["Relationship"]
        );
        let files = generate(&schemas, &Settings::default()).unwrap();
        let shared = &files["shared.rs"];
        assert!(
            shared.contains("pub meta: Option<RelationshipMeta>,"),
            "{shared}"
        );
        assert!(
            shared.contains("pub stats: Option<RelationshipStats>,"),
            "{shared}"
        );
        assert!(
            shared.contains("of a [`Relationship`], which every resource shares"),
            "{shared}"
        );
        let text = &files["conversation.rs"];
        assert!(
            text.contains("pub message_stats: ConversationStats,"),
            "{text}"
        );
    }

    #[test]
    fn a_nested_type_keeps_its_name_when_a_new_key_would_take_it() {
        let infer = schemas;
        let first = r#"{"name":"kustomer.thing.create","data":{"type":"thing","attributes":{"b":{"lvl5":{"x":1}},"c":{"lvl5":{"y":"s"}}}}}"#;
        // A new `lvl5`, under a key that sorts before the others.
        let second = r#"{"name":"kustomer.thing.create","data":{"type":"thing","attributes":{"a":{"lvl5":{"z":true}},"b":{"lvl5":{"x":1}},"c":{"lvl5":{"y":"s"}}}}}"#;
        let before = generate(&infer(&[first]), &Settings::default()).unwrap();
        let text = &before["thing.rs"];
        assert!(text.contains("pub lvl5: ThingLvl5,"), "{text}");
        assert!(text.contains("pub lvl5: ThingLvl52,"), "{text}");
        let struct_of = |text: &str, field: &str| {
            let at = text.find(&format!("#[json(\"{field}\")]")).unwrap();
            let ty = text[at..].split("pub lvl5: ").nth(1).unwrap();
            ty[..ty.find(',').unwrap()].to_owned()
        };
        let x = struct_of(text, "x");
        let y = struct_of(text, "y");
        assert_ne!(x, y);

        // Named afresh, the new type takes the first name and the others
        // are renumbered.
        let fresh = generate(&infer(&[first, second]), &Settings::default()).unwrap();
        assert!(fresh["thing.rs"].contains("pub struct ThingLvl53 "));
        // With the models before, each keeps its name; the new one is
        // numbered past them.
        let settings = Settings::default().with_previous_models(&before);
        let kept = generate(&infer(&[first, second]), &settings).unwrap();
        let text = &kept["thing.rs"];
        assert_eq!(struct_of(text, "x"), x, "{text}");
        assert_eq!(struct_of(text, "y"), y, "{text}");
        assert_eq!(struct_of(text, "z"), "ThingLvl53", "{text}");
        // And again from those: nothing moves.
        let settings = Settings::default().with_previous_models(&kept);
        assert_eq!(generate(&infer(&[first, second]), &settings).unwrap(), kept);
        // The change summary: named afresh, types lose their fields; kept,
        // the new type and the new field alone.
        let changes = summarize(&before, &fresh);
        assert!(changes.iter().any(ModelChange::is_breaking), "{changes:?}");
        let changes = summarize(&before, &kept);
        assert!(!changes.iter().any(ModelChange::is_breaking), "{changes:?}");
        assert!(
            changes.contains(&ModelChange::NewType {
                name: "ThingLvl53".into()
            }),
            "{changes:?}"
        );
    }

    #[test]
    fn a_model_generated_before_that_no_longer_parses_is_an_error_not_new_names() {
        let sample = r#"{"name":"kustomer.widget.create","data":{"type":"widget","attributes":{"fooBar":1}}}"#;
        let mut before = models(&[sample]).unwrap();
        let text = before.get_mut("widget.rs").unwrap();
        let at = text.find("pub struct WidgetAttributes").unwrap();
        text.insert_str(at, "<<<<<<< HEAD\n=======\n>>>>>>> theirs\n");
        let line = text[..at].lines().count() + 1;
        let settings = Settings::default().with_previous_models(&before);
        let err = generate(&BTreeMap::new(), &settings).unwrap_err();
        match &err {
            Error::PreviousModel {
                file,
                line: at_line,
                column,
                ..
            } => {
                assert_eq!(file, "widget.rs");
                assert_eq!((*at_line, *column), (line, 1));
            }
            other => panic!("{other}"),
        }
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "widget.rs was generated before but no longer parses as Rust, at line {line}, column 1: "
            )),
            "{text}"
        );
        assert!(
            text.ends_with("or delete it to name its fields afresh"),
            "{text}"
        );
        // A conflict over the first line, which names how the models were
        // generated (two branches generated them differently): a model too.
        let mut over_header = models(&[sample]).unwrap();
        let text = over_header.get_mut("widget.rs").unwrap();
        text.insert_str(0, "<<<<<<< ours\n");
        let settings = Settings::default().with_previous_models(&over_header);
        assert!(matches!(
            generate(&BTreeMap::new(), &settings),
            Err(Error::PreviousModel { line: 1, .. })
        ));
        // A file of one's own that does not parse is not a model: ignored.
        let own = BTreeMap::from([("notes.rs".to_owned(), "<<<<<<<".to_owned())]);
        let settings = Settings::default().with_previous_models(&own);
        generate(&BTreeMap::new(), &settings).unwrap();
    }

    #[test]
    fn a_resource_named_self_gets_models() {
        let files = models(&[
            r#"{"name":"kustomer.self.create","data":{"type":"self","attributes":{"a":1}}}"#,
        ])
        .unwrap();
        assert!(files["self_resource.rs"].contains("pub struct SelfResource "));
    }

    #[test]
    fn resources_or_events_that_would_share_a_name_are_an_error_not_broken_code() {
        // Inference refuses the later of such samples; schemas inferred
        // apart (or written by hand) still meet this check.
        let apart = |samples: &[&str]| {
            let mut all = BTreeMap::new();
            for sample in samples {
                all.extend(schemas(&[sample]));
            }
            generate(&all, &Settings::default())
        };
        let err = apart(&[
            r#"{"name":"kustomer.kobject-order.create","data":{"type":"kobject-order","attributes":{}}}"#,
            r#"{"name":"kustomer.kobject_order.update","data":{"type":"kobject_order","attributes":{}}}"#,
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("its module would be `kobject_order`"),
            "{err}"
        );
        // One event named in samples of two resources.
        let err = apart(&[
            r#"{"name":"kustomer.team.update","data":{"type":"team","attributes":{}}}"#,
            r#"{"name":"kustomer.team.update","data":{"type":"customer","attributes":{}}}"#,
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("`kustomer.team.update` (the type `TeamUpdate`) is also an event of the"),
            "{err}"
        );
    }

    #[test]
    fn files_of_ones_own_are_neither_overwritten_nor_stale() {
        let dir = std::env::temp_dir().join(format!("kustomer-codegen-own-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let files = models(&[
            r#"{"name":"kustomer.team.create","data":{"type":"team","attributes":{"a":1}}}"#,
        ])
        .unwrap();
        write(&dir, &files).unwrap();
        assert!(stale(&dir, &files).is_empty());
        // A helper of one's own beside the models: left alone.
        std::fs::write(dir.join("helpers.rs"), "pub fn helper() {}\n").unwrap();
        assert!(stale(&dir, &files).is_empty(), "{:?}", stale(&dir, &files));
        // The header names the command as it was spelled: not compared.
        let mut respelled = files.clone();
        for text in respelled.values_mut() {
            *text = text.replacen("kustomer-webhooks", "kustomer-webhooks --out ./models", 1);
        }
        assert!(stale(&dir, &respelled).is_empty());
        // A file of one's own with a generated file's name: refused, and
        // nothing is written.
        std::fs::write(dir.join("team.rs"), "// mine\n").unwrap();
        let err = write(&dir, &files).unwrap_err();
        assert!(err.to_string().contains("a file of your own"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.join("team.rs")).unwrap(),
            "// mine\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
