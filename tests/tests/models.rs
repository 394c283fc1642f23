//! The generated models: reviewed as snapshots, and the committed ones are
//! exactly what the committed schemas give.

use std::path::Path;

use kustomer_codegen::{Settings, generate, read_schemas, stale};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn generated() -> std::collections::BTreeMap<String, String> {
    let schemas = read_schemas(&Path::new(ROOT).join("schema/schemas")).unwrap();
    generate(&schemas, &Settings::default()).unwrap()
}

#[test]
fn generated_models() {
    let files = generated();
    assert_eq!(
        files.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "conversation.rs",
            "customer.rs",
            "message.rs",
            "mod.rs",
            "shared.rs",
            "team.rs",
            "user.rs"
        ]
    );
    for (name, text) in files {
        insta::assert_snapshot!(format!("models_{}", name.trim_end_matches(".rs")), text);
    }
}

#[test]
fn the_committed_models_are_exactly_what_generate_produces() {
    let stale = stale(&Path::new(ROOT).join("runtime/src/models"), &generated());
    assert!(
        stale.is_empty(),
        "run `kustomer-webhooks generate`: {stale:#?}"
    );
}

#[test]
fn generation_is_deterministic() {
    assert_eq!(generated(), generated());
}
