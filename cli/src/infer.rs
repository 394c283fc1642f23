//! `infer`: samples → schemas.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use kustomer_schema::{Inferrer, Settings};

use crate::out::{note, out, printable};

/// The default samples directory.
pub const SAMPLES: &str = "schema/samples";
/// The default schemas directory.
pub const SCHEMAS: &str = "schema/schemas";

/// Infers from `paths` (default: the repository's samples); `skip`: leave
/// out, with a warning, the samples that cannot be used ([`add_paths`]);
/// `give` says how the command takes sample paths, for the error when none
/// were given and the default is not here.
pub fn run(paths: &[PathBuf], settings: Settings, skip: bool, give: &str) -> Result<Inferrer> {
    let default = [PathBuf::from(SAMPLES)];
    let paths = if paths.is_empty() {
        if !default[0].is_dir() {
            bail!(
                "no sample paths given and {SAMPLES} does not exist here; \
                 {give} (run from the repository root for the defaults)"
            );
        }
        &default[..]
    } else {
        paths
    };
    let mut inferrer = Inferrer::new(settings);
    add_paths(&mut inferrer, paths, skip)?;
    Ok(inferrer)
}

/// Adds the samples under `paths`. Every sample that cannot be used
/// (invalid JSON, not an event envelope, an unusable `data.type`) is
/// named, on its own `error:` line when there are several, and the command
/// fails once all are read, so that one run lists them all; with `skip`,
/// each is a `warning:` line instead and the others are inferred from,
/// unless none of them could be used.
///
/// A file named twice (given itself and within its directory, or twice by
/// other paths to it) is read once, so that it does not count twice.
pub fn add_paths(inferrer: &mut Inferrer, paths: &[PathBuf], skip: bool) -> Result<()> {
    let before = inferrer.sample_count();
    let mut unusable = Vec::new();
    // Paths and files that cannot be read (none there, a directory without
    // samples, a link to nothing): never skipped, but every one is read
    // first, so that one run names them all.
    let mut unread: Vec<String> = Vec::new();
    let mut read = std::collections::HashSet::new();
    for path in paths {
        // As `parse` says it: a directory's subdirectories are not read.
        if path.is_dir()
            && let Ok(found) = crate::parse::payload_files_in(path)
        {
            found.say_subdirectories(path, "read");
        }
        match kustomer_schema::sample_files(path) {
            Err(e) => unread.push(e.to_string()),
            Ok(files) => {
                for file in files {
                    let same = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
                    if read.insert(same)
                        && let Err(e) =
                            inferrer.add_path_skipping(&file, &mut |e| unusable.push(e.to_string()))
                    {
                        unread.push(e.to_string());
                    }
                }
            }
        }
    }
    if !unread.is_empty() {
        if unread.len() == 1 && unusable.is_empty() {
            bail!("{}", unread[0]);
        }
        let level = if skip { "warning" } else { "error" };
        for problem in &unusable {
            note!("{level}: {}", printable(problem));
        }
        for problem in &unread {
            note!("error: {}", printable(problem));
        }
        let mut said = format!("{} sample path(s) cannot be read", unread.len());
        if !unusable.is_empty() {
            said.push_str(&format!(" and {} sample(s) cannot be used", unusable.len()));
        }
        bail!("{said}");
    }
    if unusable.is_empty() {
        return Ok(());
    }
    let n = unusable.len();
    if !skip && n == 1 {
        bail!(
            "{} (fix or remove it, or pass --skip-unusable to infer from the other samples)",
            unusable[0]
        );
    }
    let level = if skip { "warning" } else { "error" };
    for problem in &unusable {
        note!("{level}: {}", printable(problem));
    }
    if !skip {
        bail!(
            "{n} unusable samples: fix or remove them, \
             or pass --skip-unusable to infer from the others"
        );
    }
    if inferrer.sample_count() == before {
        bail!("none of the samples can be used ({n} unusable)");
    }
    let used = inferrer.sample_count() - before;
    if before == 0 {
        note!("warning: left out {n} unusable sample(s); inferred from {used}");
    } else {
        // `regenerate` and `check` read the published samples first.
        note!(
            "warning: left out {n} unusable sample(s); inferred from {used} of yours and \
             Kustomer's {before} published samples"
        );
    }
    Ok(())
}

/// Compares the schemas in `out` with what inference produced (`infer
/// --check`).
pub fn check(inferrer: &Inferrer, out: &Path) -> ExitCode {
    check_with_fix(
        inferrer,
        out,
        "run the same `kustomer-webhooks infer` without `--check`",
    )
}

/// Compares the schemas in `out` with what inference produced; `fix` says
/// what updates them.
pub fn check_with_fix(inferrer: &Inferrer, out: &Path, fix: &str) -> ExitCode {
    let schemas = inferrer.schemas();
    // The command `fix` names would refuse to write over it: say why.
    if let Err(e) = kustomer_schema::check_writable(out, &schemas) {
        crate::out::failed();
        note!("error: {}", printable(&e.to_string()));
        return ExitCode::FAILURE;
    }
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
    crate::out::failed();
    note!("stale schemas ({fix} to update them):");
    for s in stale {
        note!("  {s}");
    }
    ExitCode::FAILURE
}

/// Writes the schemas and says what was written.
pub fn write(inferrer: &Inferrer, out: &Path) -> Result<()> {
    if out.exists() && !out.is_dir() {
        anyhow::bail!(
            "{}: is a file, not a directory: the schemas are written into a directory, one file \
             per resource",
            out.display()
        );
    }
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
