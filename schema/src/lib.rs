//! Sample payloads → JSON Schemas, for Kustomer outbound-webhook events.
//!
//! The first link of the toolkit's pipeline: samples of Kustomer events go in,
//! one JSON Schema (draft-07) per resource comes out, describing the whole
//! event envelope (`id`, `name`, `org`, `data`, `changes`, …). The schemas are
//! the contract the generated Rust models are built from, so inference is
//! careful about what the samples do and do not prove:
//!
//! - **required, optional and nullable are separate facts**: a key missing
//!   from some sample is optional, a null makes it nullable, and a field is
//!   required only when every sample has it with a non-null value;
//! - **no type without evidence**: a field only ever seen as `null` gets an
//!   unconstrained schema (`{}`), and `[]` says nothing about item types;
//!   integers and floats merge to `number`, other conflicts become unions;
//! - **open**: objects never get `additionalProperties: false`, and no `enum`
//!   is closed from what a few samples happened to contain;
//! - **maps**: the values under keys that are 24-hex ids are merged into one
//!   `patternProperties` schema, not a property per id;
//! - **Kustomer rules**: `attributes.custom` keys are typed by their suffix
//!   (`Str`, `Txt`, `Num`, `At`, `Bool`, `Url`, `Id`) and always nullable, with
//!   `patternProperties` for custom attributes no sample showed, and any JSON
//!   for a key with no known suffix; strings that
//!   are all RFC 3339 date-times get `"format": "date-time"`, all 24-hex ids
//!   `"format": "kustomer-id"`; every relationship value is one shared
//!   `Relationship` definition, every `links` object one `Links`, every change
//!   entry one `Change` (`op` an open string, `before`/`after` any JSON); and a
//!   change's `before`/`after` count as evidence for the attribute's type;
//! - **named definitions**: the resource (`Customer`), its `…Attributes`,
//!   `…Relationships` and `…Changes`, the shared definitions above, and any
//!   inline object shape that repeats (`firstSatisfaction`/`lastSatisfaction`
//!   → `CustomerSatisfaction`, `firstDone`/`lastResponse`/… →
//!   `ConversationMilestone`); counts in a shared definition add up over every
//!   place it is used;
//! - **evidence**: every property says in `x-kustomer-samples` how many
//!   samples carried it;
//! - **deterministic and streaming**: the same samples, in any order, give
//!   byte-identical schemas; only counts are kept, never the samples.
//!
//! # Quick start
//!
//! ```
//! use kustomer_schema::{Inferrer, Settings, to_pretty};
//!
//! let mut inferrer = Inferrer::new(Settings::default());
//! for (_event, text) in kustomer_schema::SEED_SAMPLES {
//!     inferrer.add_json(text.as_bytes(), "seed")?;
//! }
//! let schemas = inferrer.schemas();
//! let customer = &schemas["customer"];
//! let custom = &customer["definitions"]["CustomerAttributes"]["properties"]["custom"];
//! // Null in every sample, typed by its suffix:
//! assert_eq!(custom["properties"]["ordersNum"]["type"], serde_json::json!(["null", "number"]));
//! assert_eq!(custom["properties"]["lastOrderAt"]["format"], "date-time");
//! println!("{}", to_pretty(customer));
//! # Ok::<(), kustomer_schema::Error>(())
//! ```
//!
//! From the command line, `kustomer-webhooks infer` does the same for files
//! and directories of samples.
#![deny(missing_docs)]

mod error;
mod infer;
mod render;
mod rules;
mod samples;
mod shape;

pub use error::{Error, Result, SampleProblem};
pub use infer::{
    DRAFT, Inferrer, MAX_SAMPLE_FILE, Settings, check_writable, infer_values, is_lines_name,
    is_resource_schema, is_sample_name, json_kind, lone_surrogates_replaced, open_file, prune,
    sample_files, stale, to_pretty,
};
pub use render::{EVIDENCE_KEYWORD, ID_FORMAT, SUFFIX_KEYWORD};
pub use rules::{Suffix, is_date_time, is_object_id};

/// How keys become type and field names; shared with the code generator so
/// schema definitions and Rust types are named alike.
pub mod naming {
    pub use crate::rules::{
        RESERVED_TYPE_NAMES, event_type_name, field_snake_case, field_snake_case_runs_joined,
        is_keyword, module_name, pascal_case, pascal_case_runs_joined, snake_case, words,
    };
}
pub use samples::{KNOWN_EVENTS, SEED_SAMPLES};
