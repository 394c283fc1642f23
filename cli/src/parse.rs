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
    /// Only for one of several payloads in its file.
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    event: &'a str,
    known: bool,
    typed: bool,
    drift: &'a [Drift],
    lossless: bool,
}

/// The payload files `paths` name, in order: a file as given, a directory
/// as its `.json`, `.jsonl` and `.ndjson` files in name order. A directory that cannot
/// be read or holds no payload file is an error in its place; one with
/// subdirectories says on stderr that they were not read.
pub fn payload_files(paths: &[PathBuf]) -> Vec<Result<PathBuf, (PathBuf, String)>> {
    let mut out = Vec::new();
    for path in paths {
        if !path.is_dir() {
            out.push(Ok(path.clone()));
            continue;
        }
        let shown = path.display();
        let found = match payload_files_in(path) {
            Ok(found) => found,
            Err(e) => {
                out.push(Err((path.clone(), format!("{shown}: {e}"))));
                continue;
            }
        };
        found.say_subdirectories(path, "read");
        if found.files.is_empty() {
            out.push(Err((
                path.clone(),
                format!("{shown}: no .json, .jsonl or .ndjson payload files in this directory"),
            )));
        }
        out.extend(found.files.into_iter().map(Ok));
    }
    out
}

/// What a directory holds for `parse` and `send`.
pub struct Found {
    /// Its `.json`, `.jsonl` and `.ndjson` files, in name order.
    pub files: Vec<PathBuf>,
    /// How many subdirectories it has (not read: name one to read it).
    pub subdirectories: usize,
}

impl Found {
    /// Says on stderr that the subdirectories of `dir` were not `done`
    /// (read, sent), if it has any.
    pub fn say_subdirectories(&self, dir: &Path, done: &str) {
        let shown = printable(&dir.display().to_string()).into_owned();
        match self.subdirectories {
            0 => {}
            1 => crate::out::note!(
                "{shown}: 1 subdirectory not {done} (name it to have its files {done})"
            ),
            n => crate::out::note!(
                "{shown}: {n} subdirectories not {done} (name them to have their files {done})"
            ),
        }
    }
}

/// The `.json`, `.jsonl` and `.ndjson` files in the directory `dir`, in name order
/// (as `infer` reads a directory of samples), and how many subdirectories
/// it has. An entry with such a name that cannot be looked at (a link to
/// nothing) is among the files, so that reading it reports why; a pipe or
/// socket is not.
pub fn payload_files_in(dir: &Path) -> std::io::Result<Found> {
    let mut found = Found {
        files: Vec::new(),
        subdirectories: 0,
    };
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let path = entry.path();
        let meta = std::fs::metadata(&path);
        if meta.as_ref().is_ok_and(|m| m.is_dir()) {
            found.subdirectories += 1;
            continue;
        }
        if kustomer_schema::is_sample_name(&path) && meta.map_or(true, |m| m.is_file()) {
            found.files.push(path);
        }
    }
    found.files.sort();
    Ok(found)
}

/// Where one payload lies in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Its bytes in the file.
    pub range: std::ops::Range<usize>,
    /// The line (from 1) it starts on, when the file holds several
    /// payloads; `None` when the file is one payload.
    pub line: Option<usize>,
    /// The column (from 1, in bytes) it starts at.
    pub column: usize,
}

/// Whether a file's name says it holds JSON Lines (`.jsonl`, `.ndjson`).
pub fn is_lines_file(path: &Path) -> bool {
    kustomer_schema::is_lines_name(path)
}

/// The payloads in a file's bytes, as `infer` reads samples: a file of one
/// JSON value, or one that is not JSON at all, is one payload, all of it
/// (its bytes as they are, so a receiver's 400 can be tried too); a file of
/// several values one after another (JSON Lines) is a payload per value,
/// each its own bytes. Among several, a value that is not JSON is a payload
/// to the end of its line in a JSON Lines file (`lines_file`, or, as
/// `infer` reads it, one whose values so far each had a line of their own,
/// when the value breaks on its first line, or is cut short there and
/// reads on into a line that starts an object or is JSON of its own), and
/// the next line that starts an object is read; in another file it is the
/// rest of the file.
pub fn pieces(bytes: &[u8], lines_file: bool) -> Vec<Piece> {
    let whole = || {
        vec![Piece {
            range: 0..bytes.len(),
            line: None,
            column: 1,
        }]
    };
    let mut found: Vec<std::ops::Range<usize>> = Vec::new();
    // Whether every value so far was on one line.
    let mut one_per_line = true;
    let mut at = past_space(bytes, 0);
    while at < bytes.len() {
        // A byte order mark before a value (files joined with `cat`) stays
        // in its payload, which the runtime's parse reads past.
        let value = at
            + if bytes[at..].starts_with(BOM) {
                BOM.len()
            } else {
                0
            };
        let mut values = serde_json::Deserializer::from_slice(&bytes[value..])
            .into_iter::<serde::de::IgnoredAny>();
        let end = match values.next() {
            Some(Ok(_)) => {
                let end = value + values.byte_offset();
                one_per_line &= !bytes[at..end].contains(&b'\n');
                end
            }
            // To the next line that starts an object: the lines between
            // belong to this one (written on several lines).
            // Elsewhere, as `infer` reads it: when every value before was
            // on a line of its own, and this one breaks on its first line,
            // or is cut short there and read on into a line that is JSON of
            // its own or starts an object.
            Some(Err(e))
                if lines_file
                    || (one_per_line
                        && !found.is_empty()
                        && (e.line() == 1 || cut_short_at_its_line(bytes, value, e.line()))) =>
            {
                next_object_line(bytes, line_end(bytes, at))
            }
            Some(Err(_)) if found.is_empty() => return whole(),
            Some(Err(_)) => bytes.len(),
            None => break,
        };
        found.push(at..before_space(bytes, at, end));
        at = past_space(bytes, end);
    }
    if found.len() <= 1 {
        return whole();
    }
    // Lines and columns, counted once through the file.
    let (mut line, mut line_start, mut counted) = (1, 0, 0);
    found
        .into_iter()
        .map(|range| {
            for (i, &b) in bytes[counted..range.start].iter().enumerate() {
                if b == b'\n' {
                    line += 1;
                    line_start = counted + i + 1;
                }
            }
            counted = range.start;
            Piece {
                line: Some(line),
                column: range.start - line_start + 1,
                range,
            }
        })
        .collect()
}

/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Whether the value starting at `value`, which breaks on its line
/// `broke_on` (counted from its own, 1), is JSON cut short at the end of its
/// first line (that line alone ends before the value does) that read on
/// into a line that is JSON of its own, or whose next line starts an object:
/// one line of JSON Lines cut short, not a value written on several lines.
fn cut_short_at_its_line(bytes: &[u8], value: usize, broke_on: usize) -> bool {
    let end = line_end(bytes, value);
    let own = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes[value..end]);
    if !own.is_err_and(|e| e.is_eof()) {
        return false;
    }
    let lines = || {
        bytes
            .get(end + 1..)
            .unwrap_or_default()
            .split(|&b| b == b'\n')
            .map(|line| line.strip_prefix(BOM).unwrap_or(line))
    };
    let next_starts_an_object = lines().next().is_some_and(|line| line.starts_with(b"{"));
    let broken_is_json = broke_on >= 2
        && lines()
            .nth(broke_on - 2)
            .is_some_and(|line| serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok());
    next_starts_an_object || broken_is_json
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The first byte at or after `at` that is not JSON white space.
fn past_space(bytes: &[u8], at: usize) -> usize {
    at + bytes[at..].iter().take_while(|&&b| is_space(b)).count()
}

/// `end`, moved back over the JSON white space after `start`.
fn before_space(bytes: &[u8], start: usize, end: usize) -> usize {
    end - bytes[start..end]
        .iter()
        .rev()
        .take_while(|&&b| is_space(b))
        .count()
}

/// The start of the first line after `end` (a line's end) that starts an
/// object, `{` first (after a byte order mark); the end of `bytes` when
/// none does.
fn next_object_line(bytes: &[u8], end: usize) -> usize {
    let mut start = end;
    while start < bytes.len() {
        start += 1;
        let text = &bytes[start.min(bytes.len())..];
        if text.strip_prefix(BOM).unwrap_or(text).starts_with(b"{") {
            return start;
        }
        start = line_end(bytes, start.min(bytes.len()));
    }
    bytes.len()
}

/// The end of the line `at` is on (its line feed, or the end).
fn line_end(bytes: &[u8], at: usize) -> usize {
    bytes[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |n| at + n)
}

/// The largest payload file read: far past any Kustomer payload (a
/// receiver takes 1 MiB by default), and a bound on the memory a wrong
/// path (`/dev/zero`) can take.
pub const MAX_PAYLOAD: u64 = 64 * 1024 * 1024;

/// A payload file's bytes, without the UTF-8 byte order mark some editors
/// put at the start (JSON does not allow one, and Kustomer sends none). A
/// file larger than [`MAX_PAYLOAD`] is an error; a file of several payloads
/// by its name (`.jsonl`, `.ndjson`: a capture of many deliveries) may be
/// as large as a sample file `infer` reads
/// ([`kustomer_schema::MAX_SAMPLE_FILE`]).
pub fn read_payload(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let lines = is_lines_file(path);
    let max = if lines {
        kustomer_schema::MAX_SAMPLE_FILE
    } else {
        MAX_PAYLOAD
    };
    let mut body = Vec::new();
    kustomer_schema::open_file(path)?
        .take(max + 1)
        .read_to_end(&mut body)?;
    if body.len() as u64 > max {
        return Err(std::io::Error::other(if lines {
            format!("larger than {} GiB (split it)", max / 1024 / 1024 / 1024)
        } else {
            format!(
                "larger than {} MiB, which no Kustomer payload is (a file of several payloads \
                 named .jsonl may be larger)",
                max / 1024 / 1024
            )
        }));
    }
    if body.starts_with(b"\xEF\xBB\xBF") {
        body.drain(..3);
    }
    Ok(body)
}

/// A `--json` line for a payload that could not be parsed.
#[derive(serde::Serialize)]
struct Failed<'a> {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    error: &'a str,
}

/// Parses every payload of every file (directories: their `.json` and
/// `.jsonl` files; a file of several payloads, JSON Lines, each); exit 1
/// if any could not be parsed at all. With `--json`, such a payload is a
/// line of its own, `{"file", "error"}` (with `"line"` when its file holds
/// several), on stdout; otherwise an `error:` line on stderr.
pub fn run(paths: &[PathBuf], as_json: bool, emit: bool) -> ExitCode {
    let mut ok = true;
    let mut failed = |path: &Path, line: Option<usize>, message: String| {
        crate::out::failed();
        if as_json {
            let text = serde_json::to_string(&Failed {
                file: path.display().to_string(),
                line,
                error: &message,
            })
            .unwrap_or_default();
            out!("{text}");
        } else {
            crate::out::error_line(&printable(&message));
        }
        ok = false;
    };
    for file in payload_files(paths) {
        let file = match file {
            Ok(file) => file,
            // The directory that could not give any.
            Err((dir, message)) => {
                failed(&dir, None, message);
                continue;
            }
        };
        let body = match read_payload(&file) {
            Ok(body) => body,
            Err(e) => {
                failed(&file, None, format!("{}: {e}", file.display()));
                continue;
            }
        };
        for piece in pieces(&body, is_lines_file(&file)) {
            let at = Place {
                file: &file,
                piece: &piece,
            };
            if let Err(message) = one(&at, &body[piece.range.clone()], as_json, emit) {
                failed(&file, piece.line, message);
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A payload's place: its file, and where in it.
pub struct Place<'a> {
    pub file: &'a Path,
    pub piece: &'a Piece,
}

impl std::fmt::Display for Place<'_> {
    /// `file`, or `file:LINE` for one of several payloads in the file.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.piece.line {
            Some(line) => write!(f, "{}:{line}", self.file.display()),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

fn one(at: &Place<'_>, body: &[u8], as_json: bool, emit: bool) -> Result<(), String> {
    let shown = at.to_string();
    let parsed = parse(body).map_err(|e| describe(at, &e))?;
    let event = &parsed.event;
    if emit {
        let text = serde_json::to_string(event).map_err(|e| format!("{shown}: {e}"))?;
        out!("{text}");
        return Ok(());
    }
    let drift = parsed.drift();
    // What the payload says, as the runtime reads it: a lone surrogate
    // escape is U+FFFD there, and so here.
    let text = body.strip_prefix(BOM).unwrap_or(body);
    let original: Option<Value> =
        serde_json::from_slice(&kustomer_schema::lone_surrogates_replaced(text)).ok();
    let lossless = original.is_some() && serde_json::to_value(event).ok() == original;
    let name = event.name();
    if as_json {
        let line = Line {
            file: at.file.display().to_string(),
            line: at.piece.line,
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
    let (shown, name) = (printable(&shown).into_owned(), name.as_str());
    out!(
        "{shown}: {}, {what}, {drift_text}, {lossless_text}",
        printable(name)
    );
    for d in &drift {
        out!("  {}", printable(&d.to_string()));
    }
    Ok(())
}

/// A parse error, at its place: invalid JSON at its line and column in the
/// file (for one of several payloads, counted from the file's start).
fn describe(at: &Place<'_>, e: &ParseError) -> String {
    match e {
        ParseError::InvalidJson {
            line,
            column,
            pointer,
            message,
        } => {
            let within = if pointer.is_empty() {
                String::new()
            } else {
                format!(" (in {pointer})")
            };
            let (line, column) = match at.piece.line {
                Some(first) if *line <= 1 => (first, at.piece.column + column.saturating_sub(1)),
                Some(first) => (first + line - 1, *column),
                None => (*line, *column),
            };
            let file = at.file.display();
            format!("{file}:{line}:{column}: invalid JSON{within}: {message}")
        }
        // The message names the JSON path itself.
        other => format!("{at}: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of one payload is refused past 64 MiB; one of several by its
    /// name, as `infer` reads samples, is read.
    #[test]
    fn a_file_of_several_payloads_may_be_larger_than_one_payload() {
        let dir = tempfile::tempdir().unwrap();
        for (name, read) in [
            ("big.json", false),
            ("big.jsonl", true),
            ("big.NDJSON", true),
        ] {
            let path = dir.path().join(name);
            // Sparse: no disk is written.
            std::fs::File::create(&path)
                .unwrap()
                .set_len(MAX_PAYLOAD + 1)
                .unwrap();
            match read_payload(&path) {
                Ok(bytes) => assert!(read && bytes.len() as u64 == MAX_PAYLOAD + 1, "{name}"),
                Err(e) => assert!(
                    !read && e.to_string().starts_with("larger than 64 MiB"),
                    "{name}: {e}"
                ),
            }
        }
    }

    /// Each piece's text, line and column.
    fn split(text: &str, lines_file: bool) -> Vec<(&str, Option<usize>, usize)> {
        pieces(text.as_bytes(), lines_file)
            .into_iter()
            .map(|p| (&text[p.range], p.line, p.column))
            .collect()
    }

    #[test]
    fn a_file_of_one_value_or_of_no_json_is_one_payload_as_it_is() {
        for text in [
            "{\"a\": 1}",
            "\n  {\"a\": 1}\n\n",
            "",
            "  \n",
            "not json",
            // Not JSON from the start: sent whole (a receiver's 400).
            "{\"a\": \n{\"b\": 2}",
        ] {
            assert_eq!(split(text, false), [(text, None, 1)], "{text:?}");
        }
        // One line of a JSON Lines file is the file.
        assert_eq!(split("{}\n", true), [("{}\n", None, 1)]);
    }

    #[test]
    fn several_values_are_a_payload_each_with_its_line_and_column() {
        assert_eq!(
            split(
                "{\"a\":1}\n{\"b\":2}\r\n\n  {\"c\":\n3}  {\"d\":4}\n",
                false
            ),
            [
                ("{\"a\":1}", Some(1), 1),
                ("{\"b\":2}", Some(2), 1),
                ("{\"c\":\n3}", Some(4), 3),
                ("{\"d\":4}", Some(5), 5),
            ]
        );
    }

    #[test]
    fn a_bad_value_among_several_ends_at_its_line_in_json_lines() {
        let text = "{\"a\":1}\n{\"b\": \n{\"c\":3}\n";
        assert_eq!(
            split(text, true),
            [
                ("{\"a\":1}", Some(1), 1),
                ("{\"b\":", Some(2), 1),
                ("{\"c\":3}", Some(3), 1),
            ]
        );
        // Lines that go on a sample written on several lines belong to it,
        // up to the next that starts an object.
        assert_eq!(
            split(
                "{\"a\":1}\n{\"b\": x,\n  \"c\": {\"d\": 1}\n}\n{\"e\":2}\n",
                true
            ),
            [
                ("{\"a\":1}", Some(1), 1),
                ("{\"b\": x,\n  \"c\": {\"d\": 1}\n}", Some(2), 1),
                ("{\"e\":2}", Some(5), 1),
            ]
        );
        // A byte order mark starting a line stays in its payload.
        assert_eq!(
            split("{\"a\":1}\n\u{feff}{\"b\":2}\n", false),
            [("{\"a\":1}", Some(1), 1), ("\u{feff}{\"b\":2}", Some(2), 1)]
        );
        // Elsewhere too, after values each on a line of its own, when the
        // bad one breaks on its own line, as `infer` reads such a file.
        let one_line = "{\"a\":1}\n{bad}\n{\"c\":3}\n";
        assert_eq!(
            split(one_line, false),
            [
                ("{\"a\":1}", Some(1), 1),
                ("{bad}", Some(2), 1),
                ("{\"c\":3}", Some(3), 1),
            ]
        );
        // One cut short on its line that reads on into the next (`{"b": `
        // and then `{"c":3}`), a line that starts an object: its line alone,
        // as `infer` reads it.
        assert_eq!(
            split(text, false),
            [
                ("{\"a\":1}", Some(1), 1),
                ("{\"b\":", Some(2), 1),
                ("{\"c\":3}", Some(3), 1),
            ]
        );
        let cut = "{\"a\":1}\n{\"b\": [1,\n{\"c\":3}\n{\"d\":4}\n";
        assert_eq!(
            split(cut, false),
            [
                ("{\"a\":1}", Some(1), 1),
                ("{\"b\": [1,", Some(2), 1),
                ("{\"c\":3}", Some(3), 1),
                ("{\"d\":4}", Some(4), 1),
            ]
        );
        // A value that breaks past its first line (written on several):
        // the rest is one, as `infer` stops there.
        let text = "{\"a\":1}\n{\"b\":\n  {\"c\": x},\n{\"d\":2}\n";
        assert_eq!(
            split(text, false),
            [
                ("{\"a\":1}", Some(1), 1),
                ("{\"b\":\n  {\"c\": x},\n{\"d\":2}", Some(2), 1)
            ]
        );
        // After one written on several lines, what follows cannot be told
        // apart: the rest is one.
        let text = "{\"a\":\n1}\n{\"b\": \n{\"c\":3}\n";
        assert_eq!(
            split(text, false),
            [
                ("{\"a\":\n1}", Some(1), 1),
                ("{\"b\": \n{\"c\":3}", Some(3), 1)
            ]
        );
        // A first line that is not JSON is its own payload in JSON Lines.
        assert_eq!(
            split("oops\n{\"c\":3}\n", true),
            [("oops", Some(1), 1), ("{\"c\":3}", Some(2), 1)]
        );
    }
}
