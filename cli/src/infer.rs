//! `infer`: samples → schemas.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use kustomer_schema::{Inferrer, Settings};

use crate::out::out;

/// The default samples directory.
pub const SAMPLES: &str = "schema/samples";
/// The default schemas directory.
pub const SCHEMAS: &str = "schema/schemas";

/// Infers from `paths` (default: the repository's samples).
pub fn run(paths: &[PathBuf], settings: Settings) -> Result<Inferrer> {
    let default = [PathBuf::from(SAMPLES)];
    let paths = if paths.is_empty() {
        if !default[0].is_dir() {
            bail!(
                "no sample paths given and {SAMPLES} does not exist here; \
                 pass sample files or directories (run from the repository root for the defaults)"
            );
        }
        &default[..]
    } else {
        paths
    };
    let mut inferrer = Inferrer::new(settings);
    for path in paths {
        inferrer.add_path(path)?;
    }
    Ok(inferrer)
}

/// Compares the schemas in `out` with what inference produced.
pub fn check(inferrer: &Inferrer, out: &Path) -> ExitCode {
    let schemas = inferrer.schemas();
    let stale = kustomer_schema::stale(out, &schemas);
    if stale.is_empty() {
        out!(
            "{} schema(s) in {} match {} sample(s)",
            schemas.len(),
            out.display(),
            inferrer.sample_count()
        );
        return ExitCode::SUCCESS;
    }
    eprintln!("stale schemas (run `kustomer-webhooks infer` to update):");
    for s in stale {
        eprintln!("  {s}");
    }
    ExitCode::FAILURE
}

/// Writes the schemas and says what was written.
pub fn write(inferrer: &Inferrer, out: &Path) -> Result<()> {
    let schemas = inferrer.schemas();
    let written = inferrer
        .write(out)
        .with_context(|| format!("writing schemas to {}", out.display()))?;
    for path in kustomer_schema::prune(out, &schemas)
        .with_context(|| format!("removing old schemas from {}", out.display()))?
    {
        out!("removed {} (no samples of its resource)", path.display());
    }
    for (path, (name, schema)) in written.iter().zip(&schemas) {
        let events = schema["x-kustomer-events"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let defs = schema["definitions"].as_object().map_or(0, |d| d.len());
        out!(
            "{:<14} {:<40} {defs:>2} definitions  ({events})",
            name,
            path.display()
        );
    }
    out!(
        "inferred {} schema(s) from {} sample(s)",
        schemas.len(),
        inferrer.sample_count()
    );
    Ok(())
}
