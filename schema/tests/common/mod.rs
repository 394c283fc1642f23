//! What the schema test suites share.

use serde_json::Value;

/// A validator for draft-07 with formats checked, including ours: a
/// `kustomer-id` is 24 lowercase hex digits.
pub fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::draft7::options()
        .should_validate_formats(true)
        .with_format("kustomer-id", |s: &str| {
            s.len() == 24
                && s.chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        })
        .build(schema)
        .expect("the inferred schema is a valid draft-07 schema")
}
