//! `parse`: payloads → typed events, with their drift.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kustomer_webhooks::{Drift, ParseError, parse};
use serde_json::Value;

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

/// Parses every file; exit 1 if any could not be parsed at all.
pub fn run(files: &[PathBuf], as_json: bool, emit: bool) -> ExitCode {
    let mut ok = true;
    for file in files {
        if let Err(message) = one(file, as_json, emit) {
            eprintln!("error: {message}");
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
    let body = std::fs::read(file).map_err(|e| format!("{shown}: {e}"))?;
    let parsed = parse(&body).map_err(|e| describe(&shown.to_string(), &e))?;
    let event = &parsed.event;
    if emit {
        let text = serde_json::to_string(event).map_err(|e| format!("{shown}: {e}"))?;
        println!("{text}");
        return Ok(());
    }
    let drift = parsed.drift();
    let original: Option<Value> = serde_json::from_slice(&body).ok();
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
        println!("{text}");
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
    println!("{shown}: {name}, {what}, {drift_text}, {lossless_text}");
    for d in &drift {
        println!("  {d}");
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
