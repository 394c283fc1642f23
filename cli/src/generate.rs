//! `generate`: schemas → Rust models.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use kustomer_codegen::Settings;
use serde_json::Value;

/// The default models directory.
pub const MODELS: &str = "runtime/src/models";

fn generate(schemas: &BTreeMap<String, Value>) -> Result<BTreeMap<String, String>> {
    Ok(kustomer_codegen::generate(schemas, &Settings::default())?)
}

/// Compares the models in `out` with what generation produces.
pub fn check(schemas: &BTreeMap<String, Value>, out: &Path) -> Result<ExitCode> {
    let files = generate(schemas)?;
    let stale = kustomer_codegen::stale(out, &files);
    if stale.is_empty() {
        println!(
            "{} model file(s) in {} match the schemas",
            files.len(),
            out.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("stale models (run `kustomer-webhooks regenerate` to update):");
    for s in stale {
        eprintln!("  {s}");
    }
    Ok(ExitCode::FAILURE)
}

/// Writes the models and says what was written.
pub fn write(schemas: &BTreeMap<String, Value>, out: &Path) -> Result<()> {
    let started = Instant::now();
    let files = generate(schemas)?;
    let elapsed = started.elapsed();
    let written = kustomer_codegen::write(out, &files)
        .with_context(|| format!("writing models to {}", out.display()))?;
    for (path, text) in written.iter().zip(files.values()) {
        println!("{:<40} {:>5} lines", path.display(), text.lines().count());
    }
    println!(
        "generated {} file(s) from {} schema(s) in {} ms",
        files.len(),
        schemas.len(),
        elapsed.as_millis()
    );
    Ok(())
}
