//! The one error type of inference.

use std::path::PathBuf;

/// What can go wrong while reading samples.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        error: std::io::Error,
    },
    /// A directory held no `.json`, `.jsonl` or `.ndjson` file.
    #[error("{}: no .json, .jsonl or .ndjson sample files in this directory", path.display())]
    NoSamples {
        /// The directory.
        path: PathBuf,
    },
    /// A sample was not valid JSON.
    #[error(
        "{origin}:{line}:{column}: invalid JSON{}: {message}",
        if pointer.is_empty() { String::new() } else { format!(" (in {pointer})") }
    )]
    Json {
        /// Where the sample came from (usually its file).
        origin: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The JSON Pointer of the value the error is in (`/data/attributes/name`),
        /// empty when it is not inside one.
        pointer: String,
        /// What the parser expected.
        message: String,
    },
    /// A sample was JSON, but not a Kustomer event envelope.
    #[error("{origin}: {problem}")]
    Sample {
        /// Where the sample came from, with its position in a multi-sample file.
        origin: String,
        /// What is wrong with it.
        problem: SampleProblem,
    },
}

/// Why a JSON value is not usable as a sample.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SampleProblem {
    /// The file held no JSON value at all.
    #[error("no sample: the input is empty")]
    Empty,
    /// The value is an array, a string, a number…
    #[error("a sample must be a JSON object (an event envelope)")]
    NotAnObject,
    /// `name` is missing (or `null`).
    #[error(
        "the sample has no `name` (the event name string, such as \"kustomer.customer.create\")"
    )]
    MissingName,
    /// `name` is an empty string, or only white space.
    #[error(
        "the sample's `name` is empty (it should be the event name, such as \"kustomer.customer.create\")"
    )]
    EmptyName,
    /// `name` is there, but a number, an object… (named here).
    #[error("`name` is {0}, not a string (the event name, such as \"kustomer.customer.create\")")]
    NameNotAString(&'static str),
    /// `data.type` is missing or not a string.
    #[error("the sample has no `data.type` (the resource type string, such as \"customer\")")]
    MissingDataType,
    /// `data.type` is there, but a number, an object… (named here).
    #[error("`data.type` is {0}, not a string (the resource type, such as \"customer\")")]
    DataTypeNotAString(&'static str),
    /// `data.type` cannot name a schema file.
    #[error(
        "`data.type` {0:?} is not a usable resource name (letters, digits, `_` and `-`, in segments joined by `.`, with a letter somewhere, at most 64)"
    )]
    BadResourceName(String),
    /// A part of the envelope every model is built around has another
    /// JSON type: `data.attributes`, `data.relationships` or `changes` not
    /// an object, `id` or `data.id` not a string. Inferred from, it would
    /// turn the resource's typed attributes (or ids) into untyped values.
    #[error(
        "`{pointer}` is {found}, not {expected}: every model of the resource is built around it, so this sample cannot be used"
    )]
    Spine {
        /// Where, as a JSON Pointer (`/data/attributes`).
        pointer: String,
        /// What it should be (`an object`, `a string`).
        expected: &'static str,
        /// What it is (`a string`, `a number`…).
        found: &'static str,
    },
    /// The event came with another `data.type` in an earlier sample.
    #[error(
        "`{event}` came with `data.type` {other_resource:?} before ({first}), and here with {resource:?}: an event has one resource, so one of the two samples has a wrong `name` or `data.type`"
    )]
    EventOfAnotherResource {
        /// The event name.
        event: Box<str>,
        /// This sample's `data.type`.
        resource: Box<str>,
        /// The earlier sample's.
        other_resource: Box<str>,
        /// The earlier sample.
        first: Box<str>,
    },
    /// The event's name gives the same Rust type name as another event's
    /// (they differ only in case or punctuation).
    #[error(
        "the event `{event}` gives the Rust type `{type_name}`, as `{other}` did ({first}): event names that differ only in case or punctuation cannot both have models, so one is mistyped"
    )]
    EventNamedLikeAnother {
        /// This sample's event name.
        event: Box<str>,
        /// The Rust type name both give.
        type_name: Box<str>,
        /// The earlier event name.
        other: Box<str>,
        /// The earlier sample.
        first: Box<str>,
    },
    /// The resource type gives the same module name as another's (they
    /// differ only in case or punctuation).
    #[error(
        "`data.type` {resource:?} gives the module `{module}`, as {other:?} did ({first}): resource types that differ only in case or punctuation cannot both have models, so one is mistyped"
    )]
    ResourceNamedLikeAnother {
        /// This sample's `data.type`.
        resource: Box<str>,
        /// The module name both give.
        module: Box<str>,
        /// The earlier `data.type`.
        other: Box<str>,
        /// The earlier sample.
        first: Box<str>,
    },
    /// The envelope has `name` twice, with different values: which event
    /// it is cannot be told, and the receiver refuses such a body with 400.
    #[error("the sample names its event twice, {first:?} and then {last:?}, at /name")]
    NamedTwice {
        /// The first `name` (its JSON text when it is not a string).
        first: String,
        /// The last.
        last: String,
    },
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
