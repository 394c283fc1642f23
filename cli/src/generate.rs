//! `generate`: schemas → Rust models.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use kustomer_codegen::Settings;
use serde_json::Value;

use crate::out::{note, out, shell_word};

/// The default models directory.
pub const MODELS: &str = "runtime/src/models";

/// Where `generate` reads schemas from and writes models to.
pub struct Dirs<'a> {
    /// `--schemas`.
    pub schemas: &'a Path,
    /// `--out`.
    pub out: &'a Path,
}

impl Dirs<'_> {
    /// The settings whose header names the command as given: the default
    /// one for this repository's own directories.
    fn settings(&self) -> Settings {
        if self.schemas == Path::new(crate::infer::SCHEMAS) && self.out == Path::new(MODELS) {
            return Settings::default();
        }
        Settings::default()
            .with_command(format!(
                "kustomer-webhooks generate --schemas {} --out {}",
                shell_word(self.schemas),
                shell_word(self.out)
            ))
            .with_source(format!("the schemas in {}", self.schemas.display()))
    }
}

fn generate(schemas: &BTreeMap<String, Value>, dirs: &Dirs) -> Result<BTreeMap<String, String>> {
    kustomer_codegen::generate(schemas, &with_previous_models(dirs.settings(), dirs.out)?).map_err(
        |e| match e {
            // Named by the file it is in, which the error cannot know.
            kustomer_codegen::Error::Schema {
                resource,
                pointer,
                problem,
            } => {
                let file = dirs.schemas.join(format!("{resource}.json"));
                let at = if pointer.is_empty() {
                    String::new()
                } else {
                    format!(", at {pointer}")
                };
                anyhow::anyhow!("{}{at}: {problem}", file.display())
            }
            e => e.into(),
        },
    )
}

/// `settings` keeping the field names of the models in `out`, if any
/// ([`Settings::with_previous_models`]).
pub fn with_previous_models(settings: Settings, out: &Path) -> Result<Settings> {
    let models = kustomer_codegen::read_models(out)
        .with_context(|| format!("reading the current models in {}", out.display()))?;
    // By path, so that a file that no longer parses is named where it is.
    let models: BTreeMap<String, String> = models
        .into_iter()
        .map(|(name, text)| (out.join(name).display().to_string(), text))
        .collect();
    Ok(settings.with_previous_models(&models))
}

/// Compares the models in `out` with what generation produces (`generate
/// --check`).
pub fn check(schemas: &BTreeMap<String, Value>, dirs: &Dirs) -> Result<ExitCode> {
    check_files(
        &generate(schemas, dirs)?,
        dirs.out,
        "run the same `kustomer-webhooks generate` without `--check`",
    )
}

/// Compares the models in `out` with `files`; `fix` says what updates
/// them.
/// A file of one's own with a generated file's name is an error, as it is
/// for writing: the command `fix` names would refuse it too.
pub fn check_files(files: &BTreeMap<String, String>, out: &Path, fix: &str) -> Result<ExitCode> {
    kustomer_codegen::check_writable(out, files)
        .with_context(|| format!("checking the models in {}", out.display()))?;
    let stale = kustomer_codegen::stale(out, files);
    if stale.is_empty() {
        out!(
            "{} model file(s) in {} match the schemas",
            files.len(),
            out.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    crate::out::failed();
    note!("stale models ({fix} to update them):");
    for s in stale {
        note!("  {s}");
    }
    // What changed in the types and fields, as `regenerate` would say it.
    if let Ok(old) = kustomer_codegen::read_models(out)
        && !old.is_empty()
    {
        let changes = kustomer_codegen::summarize(&old, files);
        if !changes.is_empty() {
            note!("what that changes in the models:");
            for change in &changes {
                note!("  {change}");
            }
        }
    }
    Ok(ExitCode::FAILURE)
}

/// Writes the models and says what was written.
pub fn write(schemas: &BTreeMap<String, Value>, dirs: &Dirs) -> Result<()> {
    let started = Instant::now();
    let files = generate(schemas, dirs)?;
    let elapsed = started.elapsed();
    write_files(&files, schemas.len(), dirs.out)?;
    out!("(generated in {} ms)", elapsed.as_millis());
    Ok(())
}

/// Writes generated `files` and says what was written.
pub fn write_files(files: &BTreeMap<String, String>, schemas: usize, out: &Path) -> Result<()> {
    let written = kustomer_codegen::write(out, files)
        .with_context(|| format!("writing models to {}", out.display()))?;
    for (path, text) in written.iter().zip(files.values()) {
        out!("{:<40} {:>5} lines", path.display(), text.lines().count());
    }
    let removed = kustomer_codegen::prune(out, files)
        .with_context(|| format!("removing stale models from {}", out.display()))?;
    for path in removed {
        out!(
            "{:<40} removed (no samples of its resource)",
            path.display()
        );
    }
    out!(
        "generated {} file(s) from {} schema(s)",
        files.len(),
        schemas
    );
    Ok(())
}
