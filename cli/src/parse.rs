//! `parse`: payloads → typed events, with their drift.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kustomer_webhooks::{Drift, ParseError, parse};
use serde_json::Value;

use crate::out::{out, printable};

/// One `--json` line, its keys in this order.
#[derive(serde::Serialize)]
struct Line<'a> {
    file: String,
    event: &'a str,
    known: bool,
    typed: bool,
    drift: &'a [Drift],
    lossless: bool,
}

/// The payload files `paths` name, in order: a file as given, a directory
/// as its `.json` files in name order. A directory that cannot be read or
/// holds no `.json` file is an error in its place.
pub fn payload_files(paths: &[PathBuf]) -> Vec<Result<PathBuf, (PathBuf, String)>> {
    let mut out = Vec::new();
    for path in paths {
        if !path.is_dir() {
            out.push(Ok(path.clone()));
            continue;
        }
        let shown = path.display();
        let files = match json_files_in(path) {
            Ok(files) => files,
            Err(e) => {
                out.push(Err((path.clone(), format!("{shown}: {e}"))));
                continue;
            }
        };
        if files.is_empty() {
            out.push(Err((
                path.clone(),
                format!("{shown}: no .json payload files in this directory"),
            )));
        }
        out.extend(files.into_iter().map(Ok));
    }
    out
}

/// The `.json` files in the directory `dir`, in name order. A `.json`
/// entry that cannot be looked at (a link to nothing) is among them, so
/// that reading it reports why; a directory, pipe or socket is not.
pub fn json_files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| std::fs::metadata(p).map_or(true, |m| m.is_file()))
        .collect();
    files.sort();
    Ok(files)
}

/// The largest payload file read: far past any Kustomer payload (a
/// receiver takes 1 MiB by default), and a bound on the memory a wrong
/// path (`/dev/zero`) can take.
pub const MAX_PAYLOAD: u64 = 64 * 1024 * 1024;

/// A payload file's bytes, without the UTF-8 byte order mark some editors
/// put at the start (JSON does not allow one, and Kustomer sends none). A
/// file larger than [`MAX_PAYLOAD`] is an error.
pub fn read_payload(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut body = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_PAYLOAD + 1)
        .read_to_end(&mut body)?;
    if body.len() as u64 > MAX_PAYLOAD {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB, which no Kustomer payload is",
            MAX_PAYLOAD / 1024 / 1024
        )));
    }
    if body.starts_with(b"\xEF\xBB\xBF") {
        body.drain(..3);
    }
    Ok(body)
}

/// A `--json` line for a file that could not be parsed.
#[derive(serde::Serialize)]
struct Failed<'a> {
    file: String,
    error: &'a str,
}

/// Parses every file (directories: their `.json` files); exit 1 if any
/// could not be parsed at all. With `--json`, such a file is a line of its
/// own, `{"file", "error"}`, on stdout; otherwise an `error:` line on
/// stderr.
pub fn run(paths: &[PathBuf], as_json: bool, emit: bool) -> ExitCode {
    let mut ok = true;
    for file in payload_files(paths) {
        // The file, or the directory that could not give any.
        let (path, outcome) = match file {
            Ok(file) => {
                let outcome = one(&file, as_json, emit);
                (file, outcome)
            }
            Err((dir, message)) => (dir, Err(message)),
        };
        if let Err(message) = outcome {
            crate::out::failed();
            if as_json {
                let line = serde_json::to_string(&Failed {
                    file: path.display().to_string(),
                    error: &message,
                })
                .unwrap_or_default();
                out!("{line}");
            } else {
                eprintln!("error: {}", printable(&message));
            }
            ok = false;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn one(file: &Path, as_json: bool, emit: bool) -> Result<(), String> {
    let shown = file.display();
    let body = read_payload(file).map_err(|e| format!("{shown}: {e}"))?;
    let parsed = parse(&body).map_err(|e| describe(&shown.to_string(), &e))?;
    let event = &parsed.event;
    if emit {
        let text = serde_json::to_string(event).map_err(|e| format!("{shown}: {e}"))?;
        out!("{text}");
        return Ok(());
    }
    let drift = parsed.drift();
    // What the payload says, as the runtime reads it: a lone surrogate
    // escape is U+FFFD there, and so here.
    let original: Option<Value> =
        serde_json::from_slice(&kustomer_schema::lone_surrogates_replaced(&body)).ok();
    let lossless = original.is_some() && serde_json::to_value(event).ok() == original;
    let name = event.name();
    if as_json {
        let line = Line {
            file: shown.to_string(),
            event: name.as_str(),
            known: name.is_known(),
            typed: event.is_typed(),
            drift: &drift,
            lossless,
        };
        let text = serde_json::to_string(&line).map_err(|e| format!("{shown}: {e}"))?;
        out!("{text}");
        return Ok(());
    }
    let what = match (event.resource_type(), name.is_known()) {
        (Some(resource), _) => format!("typed as a {resource} event"),
        (None, true) => "a known event without a model: kept whole".to_owned(),
        (None, false) => "an unknown event: accepted, kept whole".to_owned(),
    };
    let drift_text = match drift.len() {
        0 => "no drift".to_owned(),
        1 => "1 drifted value".to_owned(),
        n => format!("{n} drifted values"),
    };
    let lossless_text = if lossless { "lossless" } else { "NOT lossless" };
    let (shown, name) = (printable(&shown.to_string()).into_owned(), name.as_str());
    out!(
        "{shown}: {}, {what}, {drift_text}, {lossless_text}",
        printable(name)
    );
    for d in &drift {
        out!("  {}", printable(&d.to_string()));
    }
    Ok(())
}

fn describe(file: &str, e: &ParseError) -> String {
    match e {
        ParseError::InvalidJson {
            line,
            column,
            pointer,
            message,
        } => {
            let at = if pointer.is_empty() {
                String::new()
            } else {
                format!(" (in {pointer})")
            };
            format!("{file}:{line}:{column}: invalid JSON{at}: {message}")
        }
        // The message names the JSON path itself.
        other => format!("{file}: {other}"),
    }
}
