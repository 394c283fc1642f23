//! `kustomer-webhooks`: the toolkit's command line.
//!
//! `infer` turns sample payloads into JSON Schemas; the other subcommands
//! (`generate`, `check`, `parse`, `serve`, `send`, `demo`, …) arrive with the
//! parts of the toolkit they drive.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use kustomer_schema::{Inferrer, Settings, to_pretty};

/// Typed Kustomer outbound webhooks: infer schemas from sample payloads.
#[derive(Parser)]
#[command(name = "kustomer-webhooks", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Infer one JSON Schema per resource from sample event payloads.
    ///
    /// Each PATH is a sample file (one JSON object, or several one after the
    /// other / JSON Lines) or a directory of `.json`/`.jsonl` files. Samples of
    /// the same resource (`data.type`) merge into one schema, written as
    /// `<resource>.json` into the output directory.
    Infer {
        /// Sample files or directories [default: schema/samples]
        paths: Vec<PathBuf>,
        /// Where to write the schemas
        #[arg(long, default_value = "schema/schemas")]
        out: PathBuf,
        /// Write nothing; exit 1 if the files in --out differ from what
        /// inference produces
        #[arg(long)]
        check: bool,
        /// Leave out the `x-kustomer-samples` evidence counts
        #[arg(long)]
        no_evidence: bool,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", report(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `: `-separated, each said once: an error whose
/// message already ends with its source's (as I/O errors here do) does not
/// repeat it.
fn report(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if out.is_empty() {
            out = s;
        } else if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
    }
    out
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Infer {
            paths,
            out,
            check,
            no_evidence,
        } => infer(
            paths,
            out,
            check,
            Settings::default().with_evidence(!no_evidence),
        ),
    }
}

fn infer(paths: Vec<PathBuf>, out: PathBuf, check: bool, settings: Settings) -> Result<ExitCode> {
    let paths = if paths.is_empty() {
        let default = PathBuf::from("schema/samples");
        if !default.is_dir() {
            bail!(
                "no sample paths given and {} does not exist here; \
                 pass sample files or directories (run from the repository root for the defaults)",
                default.display()
            );
        }
        vec![default]
    } else {
        paths
    };
    let mut inferrer = Inferrer::new(settings);
    for path in &paths {
        inferrer.add_path(path)?;
    }
    let schemas = inferrer.schemas();
    if check {
        let mut stale = Vec::new();
        for (name, schema) in &schemas {
            let path = out.join(format!("{name}.json"));
            let want = to_pretty(schema);
            match std::fs::read(&path) {
                Ok(have) if have == want.as_bytes() => {}
                Ok(_) => stale.push(format!(
                    "{}: differs from the inferred schema",
                    path.display()
                )),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    stale.push(format!("{}: missing", path.display()))
                }
                Err(e) => stale.push(format!("{}: cannot be read: {e}", path.display())),
            }
        }
        // A schema whose resource no longer has samples is stale too.
        if let Ok(entries) = std::fs::read_dir(&out) {
            let mut extra: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .filter(|p| {
                    p.file_stem()
                        .and_then(|s| s.to_str())
                        .is_none_or(|s| !schemas.contains_key(s))
                })
                .collect();
            extra.sort();
            for p in extra {
                stale.push(format!("{}: no sample has this resource", p.display()));
            }
        }
        if stale.is_empty() {
            println!(
                "{} schema(s) in {} match {} sample(s)",
                schemas.len(),
                out.display(),
                inferrer.sample_count()
            );
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!("stale schemas (run `kustomer-webhooks infer` to update):");
        for s in stale {
            eprintln!("  {s}");
        }
        return Ok(ExitCode::FAILURE);
    }
    let written = inferrer
        .write(&out)
        .with_context(|| format!("writing schemas to {}", out.display()))?;
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
        println!(
            "{:<14} {:<40} {defs:>2} definitions  ({events})",
            name,
            path.display()
        );
    }
    println!(
        "inferred {} schema(s) from {} sample(s)",
        schemas.len(),
        inferrer.sample_count()
    );
    Ok(ExitCode::SUCCESS)
}
