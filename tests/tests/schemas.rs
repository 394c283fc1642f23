//! The five inferred schemas are the contract of the generated models:
//! every change to them shows up here for review.

use kustomer_schema::{Inferrer, SEED_SAMPLES, to_pretty};

#[test]
fn inferred_schemas() {
    let mut inferrer = Inferrer::default();
    for (event, text) in SEED_SAMPLES {
        inferrer.add_json(text.as_bytes(), event).unwrap();
    }
    let schemas = inferrer.schemas();
    assert_eq!(schemas.len(), 5);
    for (resource, schema) in schemas {
        insta::assert_snapshot!(format!("schema_{resource}"), to_pretty(&schema));
    }
}
