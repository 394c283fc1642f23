//! `regenerate` and `check`: samples → schemas → models, for this
//! repository's bundled models or for a models module in your own crate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use kustomer_codegen::{ModelChange, Settings};
use kustomer_schema::Inferrer;

use crate::out::{note, out, shell_word};
use crate::{generate, infer};

/// Where the samples come from and where the models go.
pub struct Pipeline {
    /// Sample files or directories; empty: the repository's own.
    pub samples: Vec<PathBuf>,
    /// Leave out Kustomer's published samples.
    pub no_seed: bool,
    /// Where the models module is, when not the repository's own.
    pub out: Option<PathBuf>,
    /// Where the schemas are, if anywhere.
    pub schemas: Option<PathBuf>,
    /// Leave out, with a warning, samples that cannot be used.
    pub skip_unusable: bool,
}

impl Pipeline {
    /// Whether the samples are the user's own, rather than the
    /// repository's.
    fn custom(&self) -> bool {
        !self.samples.is_empty()
    }

    /// The models directory.
    pub fn out(&self) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| PathBuf::from(generate::MODELS))
    }

    /// The schemas directory: given, or the repository's own in its own
    /// pipeline; none for a custom one unless asked for.
    pub fn schemas(&self) -> Option<PathBuf> {
        match &self.schemas {
            Some(dir) => Some(dir.clone()),
            None if !self.custom() => Some(PathBuf::from(infer::SCHEMAS)),
            None => None,
        }
    }

    /// Infers from the samples: the given ones, merged with Kustomer's
    /// published samples unless `no_seed`; or the repository's own.
    pub fn infer(&self) -> Result<Inferrer> {
        if self.samples.is_empty() {
            return infer::run(
                &[],
                kustomer_schema::Settings::default(),
                self.skip_unusable,
                "pass --samples DIR (a directory of captured payloads, or a file)",
            );
        }
        if !self.no_seed
            && let Some(file) = published_sample_among(&self.samples)
        {
            anyhow::bail!(
                "{}: is Kustomer's published sample of its event, which is read with your \
                 samples already (each sample would count twice): leave it out of --samples, \
                 or pass --no-seed to read the samples given alone",
                file.display()
            );
        }
        let mut inferrer = Inferrer::new(kustomer_schema::Settings::default());
        if !self.no_seed {
            for (event, text) in kustomer_schema::SEED_SAMPLES {
                inferrer.add_json(text.as_bytes(), &format!("the published {event} sample"))?;
            }
        }
        infer::add_paths(&mut inferrer, &self.samples, self.skip_unusable)?;
        Ok(inferrer)
    }

    /// The code generation settings: the header of a custom module (own
    /// samples, or another `--out`) says how to regenerate it.
    pub fn settings(&self) -> Settings {
        if !self.custom() && self.out() == Path::new(generate::MODELS) {
            return Settings::default();
        }
        let mut command = self.command_of_samples();
        if let Some(dir) = &self.schemas {
            command.push_str(&format!(" --schemas {}", shell_word(dir)));
        }
        command.push_str(&format!(" --out {}", shell_word(&self.out())));
        let dirs: Vec<String> = self
            .samples
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let mut source = if dirs.is_empty() {
            format!("the samples in {}", infer::SAMPLES)
        } else {
            format!("the samples in {}", dirs.join(", "))
        };
        if !self.no_seed && !self.samples.is_empty() {
            source.push_str(" and Kustomer's published samples");
        }
        Settings::default()
            .with_command(command)
            .with_source(source)
    }

    /// The `regenerate` command that writes what `check` compares with:
    /// the same samples and directories (`check`'s `--models` is its
    /// `--out`).
    fn regenerate_command(&self) -> String {
        let mut command = self.command_of_samples();
        if let Some(dir) = &self.schemas {
            command.push_str(&format!(" --schemas {}", shell_word(dir)));
        }
        if let Some(dir) = &self.out {
            command.push_str(&format!(" --out {}", shell_word(dir)));
        }
        command
    }

    /// `kustomer-webhooks regenerate` with the samples and how they are
    /// read (`--samples`, `--no-seed`, `--skip-unusable`), as given.
    fn command_of_samples(&self) -> String {
        let mut command = String::from("kustomer-webhooks regenerate");
        for path in &self.samples {
            command.push_str(&format!(" --samples {}", shell_word(path)));
        }
        if self.no_seed {
            command.push_str(" --no-seed");
        }
        if self.skip_unusable {
            command.push_str(" --skip-unusable");
        }
        command
    }

    /// The models, their fields named as in the models already in
    /// [`out`](Pipeline::out), so that names stay put across regenerations.
    fn generate(&self, inferrer: &Inferrer) -> Result<BTreeMap<String, String>> {
        let settings = generate::with_previous_models(self.settings(), &self.out())?;
        Ok(kustomer_codegen::generate(&inferrer.schemas(), &settings)?)
    }
}

/// Prints what changes from the models in `out` to `files`.
pub fn print_summary(out: &Path, files: &BTreeMap<String, String>) -> Result<Vec<ModelChange>> {
    let old = kustomer_codegen::read_models(out)
        .with_context(|| format!("reading the current models in {}", out.display()))?;
    if old.is_empty() {
        let names: Vec<&str> = files.keys().map(String::as_str).collect();
        out!(
            "{}: a new models module, {} file(s): {}",
            out.display(),
            names.len(),
            names.join(", ")
        );
        return Ok(Vec::new());
    }
    let changes = kustomer_codegen::summarize(&old, files);
    // What `check` compares: all but the header line.
    let body = |text: &str| {
        text.split_once('\n')
            .map_or("", |(_, rest)| rest)
            .to_owned()
    };
    let mut differ: Vec<String> = files
        .iter()
        .filter(|(name, text)| old.get(*name).map(|t| body(t)) != Some(body(text)))
        .map(|(name, _)| name.clone())
        .collect();
    // And those no schema produces now, which go.
    differ.extend(
        old.keys()
            .filter(|name| !files.contains_key(*name))
            .map(|name| format!("{name} (removed)")),
    );
    if changes.is_empty() {
        if differ.is_empty() {
            out!("{}: no type or field changes", out.display());
        } else {
            out!(
                "{}: no type or field changes; {} file(s) differ only in doc comments (such as \
                 sample counts) or in how fields are read (such as null being allowed): {}",
                out.display(),
                differ.len(),
                differ.join(", ")
            );
        }
        return Ok(changes);
    }
    out!("{}: changes against the current models:", out.display());
    for change in &changes {
        out!("  {change}");
    }
    let added = changes.iter().filter(|c| !c.is_breaking()).count();
    let breaking = changes.len() - added;
    out!(
        "  ({added} addition(s), {breaking} change(s) or removal(s) that code using the models may need to follow)"
    );
    // Changes of doc comments and of how fields are read (null allowed or
    // no longer) are not among those listed: the files they are in are.
    out!(
        "  {} file(s) change (with their doc comments, and how fields are read, such as null being allowed, which the list leaves out): {}",
        differ.len(),
        differ.join(", ")
    );
    Ok(changes)
}

/// `regenerate`: infer, print the change summary, then write (unless
/// `dry_run`).
pub fn regenerate(pipeline: &Pipeline, dry_run: bool) -> Result<ExitCode> {
    let inferrer = pipeline.infer()?;
    let files = pipeline.generate(&inferrer)?;
    let out = pipeline.out();
    // A file of one's own in the way of the models is found before the
    // schemas are written, so that a refusal leaves both as they were (and
    // a dry run says the real one would be refused).
    kustomer_codegen::check_writable(&out, &files)
        .with_context(|| format!("writing models to {}", out.display()))?;
    print_summary(&out, &files)?;
    if dry_run {
        out!("(dry run: nothing written)");
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(schemas) = pipeline.schemas() {
        infer::write(&inferrer, &schemas)?;
    }
    generate::write_files(&files, inferrer.schemas().len(), &out)?;
    Ok(ExitCode::SUCCESS)
}

/// `check`: exit 1 with a summary when the schemas (if any) or the models
/// are not what the samples give.
pub fn check(pipeline: &Pipeline) -> Result<ExitCode> {
    let inferrer = pipeline.infer()?;
    let fix = format!("run `{}`", pipeline.regenerate_command());
    let schemas_ok = match pipeline.schemas() {
        Some(dir) => infer::check_with_fix(&inferrer, &dir, &fix) == ExitCode::SUCCESS,
        None => true,
    };
    let files = pipeline.generate(&inferrer)?;
    let out = pipeline.out();
    let models_ok = generate::check_files(&files, &out, &fix)? == ExitCode::SUCCESS;
    // Models missing only resources of the published samples: perhaps
    // made from one's samples alone (`infer` and `generate` add no others).
    let exists = |name: &String| out.join(name).exists();
    let missing: Vec<&String> = files.keys().filter(|name| !exists(name)).collect();
    let seed_files: std::collections::BTreeSet<String> = kustomer_schema::SEED_SAMPLES
        .iter()
        .filter_map(|(_, text)| {
            let sample: serde_json::Value = serde_json::from_str(text).ok()?;
            let resource = sample.pointer("/data/type")?.as_str()?;
            Some(format!(
                "{}.rs",
                kustomer_schema::naming::module_name(resource)
            ))
        })
        .collect();
    if !models_ok
        && !pipeline.no_seed
        && files.keys().any(exists)
        && !missing.is_empty()
        && missing.iter().all(|name| seed_files.contains(*name))
    {
        note!(
            "(`check` reads Kustomer's published samples with yours, as `regenerate` does; for models made from your samples alone, such as by `infer` then `generate`, add `--no-seed`)"
        );
    }
    Ok(if schemas_ok && models_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The first sample file among `paths` that is one of Kustomer's published
/// samples, byte for byte (the repository's `schema/samples`, or a copy).
/// Only a file of a published sample's size is read.
fn published_sample_among(paths: &[PathBuf]) -> Option<PathBuf> {
    let sizes: Vec<u64> = kustomer_schema::SEED_SAMPLES
        .iter()
        .map(|(_, text)| text.len() as u64)
        .collect();
    paths
        .iter()
        .filter_map(|path| kustomer_schema::sample_files(path).ok())
        .flatten()
        .find(|file| {
            std::fs::metadata(file).is_ok_and(|m| m.is_file() && sizes.contains(&m.len()))
                && std::fs::read(file).is_ok_and(|bytes| {
                    kustomer_schema::SEED_SAMPLES
                        .iter()
                        .any(|(_, text)| text.as_bytes() == bytes)
                })
        })
}
