//! `generate`, `check` and `parse`, run as real processes.

use std::fs;
use std::path::Path;

use serde_json::Value;
use tempfile::TempDir;

mod common;
use common::{ROOT, run};

fn write(dir: &TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn generate_writes_what_is_committed() {
    let out = TempDir::new().unwrap();
    let r = run(&["generate", "--out", out.path().to_str().unwrap()]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    for entry in fs::read_dir(Path::new(ROOT).join("runtime/src/models")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            fs::read_to_string(out.path().join(name)).unwrap(),
            "{}",
            name.to_string_lossy()
        );
    }
    assert!(
        r.stdout.contains("generated 7 file(s) from 5 schema(s)"),
        "{}",
        r.stdout
    );
}

#[test]
fn check_passes_on_the_committed_tree_and_names_stale_files() {
    let r = run(&["check"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);

    let models = TempDir::new().unwrap();
    assert_eq!(
        run(&["generate", "--out", models.path().to_str().unwrap()]).code,
        Some(0)
    );
    let team = models.path().join("team.rs");
    fs::write(
        &team,
        fs::read_to_string(&team)
            .unwrap()
            .replace("pub struct TeamEvent", "pub struct X"),
    )
    .unwrap();
    fs::write(models.path().join("old.rs"), "").unwrap();
    let r = run(&["check", "--models", models.path().to_str().unwrap()]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr
            .contains("team.rs: differs from the generated code"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("old.rs: not produced by any schema"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("user.rs"), "{}", r.stderr);
}

#[test]
fn parse_prints_event_typing_drift_and_losslessness() {
    let r = run(&["parse", "schema/samples/kustomer.user.update.json"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "schema/samples/kustomer.user.update.json: kustomer.user.update, typed as a user event, no drift, lossless\n"
    );
    let dir = TempDir::new().unwrap();
    let drifted = write(
        &dir,
        "drifted.json",
        r#"{"name": "kustomer.team.update", "data": {"type": "team", "attributes": {"members": "all", "rev": 1}}}"#,
    );
    let r = run(&["parse", &drifted]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout
            .contains("typed as a team event, 1 drifted value, lossless"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("  /data/attributes/members: expected array, found string"),
        "{}",
        r.stdout
    );
}

#[test]
fn parse_json_prints_one_line_per_file() {
    let dir = TempDir::new().unwrap();
    let unknown = write(
        &dir,
        "u.json",
        r#"{"name": "kustomer.kobject.order.create", "data": {"type": "kobject"}}"#,
    );
    let r = run(&[
        "parse",
        "--json",
        "schema/samples/kustomer.customer.create.json",
        &unknown,
    ]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["event"], "kustomer.customer.create");
    assert_eq!(lines[0]["known"], true);
    assert_eq!(lines[0]["typed"], true);
    assert_eq!(lines[0]["drift"], serde_json::json!([]));
    assert_eq!(lines[0]["lossless"], true);
    assert_eq!(lines[1]["file"], unknown.as_str());
    assert_eq!(lines[1]["known"], false);
    assert_eq!(lines[1]["typed"], false);
    // The keys come in the documented order.
    let first = r.stdout.lines().next().unwrap();
    let at = |k: &str| first.find(&format!("\"{k}\":")).unwrap();
    let order = ["file", "event", "known", "typed", "drift", "lossless"].map(at);
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{first}");
}

#[test]
fn parse_emit_round_trips() {
    let r = run(&[
        "parse",
        "--emit",
        "schema/samples/kustomer.message.update.json",
    ]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let emitted: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let original: Value = serde_json::from_str(
        &fs::read_to_string(Path::new(ROOT).join("schema/samples/kustomer.message.update.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(emitted, original);
}

#[test]
fn parse_errors_name_the_file_and_the_path() {
    let dir = TempDir::new().unwrap();
    let cases = [
        (
            "array.json",
            "[1, 2]",
            "array.json: the body is a JSON array, not an object",
        ),
        (
            "noname.json",
            r#"{"data": {}}"#,
            "noname.json: the body has no `name`",
        ),
        (
            "nodata.json",
            r#"{"name": "kustomer.team.create"}"#,
            "nodata.json: the body has no `data`",
        ),
        (
            "bad.json",
            "{\n  \"name\": \"x\",\n  oops\n}",
            "bad.json:3:3: invalid JSON",
        ),
    ];
    for (file, text, want) in cases {
        let path = write(&dir, file, text);
        let r = run(&["parse", &path, "schema/samples/kustomer.team.create.json"]);
        assert_eq!(r.code, Some(1), "{file}");
        assert!(r.stderr.contains(want), "{file}: {}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{file}: {}", r.stderr);
        // The other file is still parsed.
        assert!(
            r.stdout.contains("kustomer.team.create, typed"),
            "{file}: {}",
            r.stdout
        );
    }
    let missing = run(&["parse", "nowhere.json"]);
    assert_eq!(missing.code, Some(1));
    assert!(
        missing.stderr.contains("nowhere.json: "),
        "{}",
        missing.stderr
    );
}

#[test]
fn parse_takes_directories_of_payloads() {
    let r = run(&["parse", "--json", "schema/samples"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let files: Vec<String> = r
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["file"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(files.len(), 10, "{}", r.stdout);
    assert!(files.is_sorted(), "{files:?}");
    assert!(files[0].ends_with("kustomer.conversation.create.json"));
    // A directory with no payload is an error in its place; the rest is
    // still parsed.
    let empty = TempDir::new().unwrap();
    write(&empty, "notes.txt", "not a payload");
    let dir = empty.path().to_str().unwrap();
    let r = run(&["parse", dir, "schema/samples/kustomer.team.create.json"]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr
            .contains(&format!("{dir}: no .json payload files in this directory")),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.contains("kustomer.team.create, typed"),
        "{}",
        r.stdout
    );
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::process::{Command, Stdio};
    // Far more output than a pipe holds, so the command is still writing
    // when the reader is gone.
    let dir = TempDir::new().unwrap();
    let sample =
        fs::read_to_string(Path::new(ROOT).join("schema/samples/kustomer.customer.update.json"))
            .unwrap();
    for i in 0..200 {
        write(&dir, &format!("{i:03}.json"), &sample);
    }
    let mut child = Command::new(common::BIN)
        .args(["parse", "--emit", dir.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn parse_skips_a_byte_order_mark_at_the_start_of_a_file() {
    let dir = TempDir::new().unwrap();
    let sample =
        fs::read_to_string(Path::new(ROOT).join("schema/samples/kustomer.team.create.json"))
            .unwrap();
    let path = write(&dir, "marked.json", &format!("\u{FEFF}{sample}"));
    let r = run(&["parse", &path]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout
            .contains("kustomer.team.create, typed as a team event, no drift, lossless"),
        "{}",
        r.stdout
    );
}
