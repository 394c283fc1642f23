//! `kustomer-webhooks infer`, run as a real process: what it writes, what
//! `--check` says, and how it reports bad input.

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

mod common;
use common::{ROOT, Run, run_in};

const RESOURCES: [&str; 5] = ["conversation", "customer", "message", "team", "user"];

/// A sample that is a valid event envelope of resource `customer`.
const GOOD: &str =
    r#"{"name": "kustomer.customer.create", "data": {"type": "customer", "id": "1"}}"#;

/// Runs `kustomer-webhooks infer ARGS...` in `dir`.
fn infer(dir: impl AsRef<Path>, args: &[&str]) -> Run {
    let args: Vec<&str> = std::iter::once("infer")
        .chain(args.iter().copied())
        .collect();
    run_in(dir, &args)
}

fn root() -> PathBuf {
    PathBuf::from(ROOT)
}

fn committed_schemas() -> PathBuf {
    root().join("schema/schemas")
}

fn committed_samples() -> PathBuf {
    root().join("schema/samples")
}

/// The sorted file names in `dir`.
fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn expected_names() -> Vec<String> {
    RESOURCES.iter().map(|r| format!("{r}.json")).collect()
}

/// A temporary directory holding a copy of the committed schemas.
fn copy_of_committed_schemas() -> TempDir {
    let tmp = TempDir::new().unwrap();
    for name in expected_names() {
        fs::copy(committed_schemas().join(&name), tmp.path().join(&name)).unwrap();
    }
    tmp
}

/// A temporary working directory with `files` (name, contents) in it.
fn workdir(files: &[(&str, &str)]) -> TempDir {
    let tmp = TempDir::new().unwrap();
    for (name, text) in files {
        let path = tmp.path().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    tmp
}

/// Asserts the run failed cleanly (exit 1, no panic, nothing on stdout),
/// that its one-line error mentions every `needle`, and that no output
/// directory `out` was created in `dir`. Returns stderr.
fn assert_fails(run: &Run, dir: &Path, needles: &[&str]) -> String {
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(!run.stderr.contains("panicked"), "{run:#?}");
    assert!(run.stdout.is_empty(), "{run:#?}");
    assert!(run.stderr.starts_with("error: "), "{run:#?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:#?}");
    for needle in needles {
        assert!(
            run.stderr.contains(needle),
            "stderr should mention {needle:?}: {run:#?}"
        );
    }
    assert!(
        !dir.join("out").exists(),
        "nothing is written on error: {run:#?}"
    );
    run.stderr.clone()
}

#[test]
fn default_run_from_repo_root_writes_exactly_the_committed_schemas() {
    let out = TempDir::new().unwrap();
    let run = infer(ROOT, &["--out", out.path().to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(run.stderr.is_empty(), "{run:#?}");
    assert!(
        run.stdout
            .contains("inferred 5 schema(s) from 10 sample(s)"),
        "{run:#?}"
    );

    assert_eq!(file_names(out.path()), expected_names());
    assert_eq!(file_names(&committed_schemas()), expected_names());
    for name in expected_names() {
        let written = fs::read(out.path().join(&name)).unwrap();
        let committed = fs::read(committed_schemas().join(&name)).unwrap();
        assert!(
            written == committed,
            "{name} differs from schema/schemas/{name}"
        );
    }
}

#[test]
fn default_run_creates_a_missing_output_directory() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("a/b");
    let run = infer(ROOT, &["--out", out.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert_eq!(file_names(&out), expected_names());
}

/// A sample that is a link to a file no longer there is said to be one, by
/// `infer` and by `parse`, rather than as "No such file or directory".
#[cfg(unix)]
#[test]
fn a_link_to_nothing_is_said_to_be_one() {
    let tmp = TempDir::new().unwrap();
    let gone = tmp.path().join("gone.json");
    let link = tmp.path().join("dangling.json");
    std::os::unix::fs::symlink(&gone, &link).unwrap();
    let said = format!(
        "{}: a link to {}, which does not exist",
        link.display(),
        gone.display()
    );
    let inferred = infer(
        ROOT,
        &[tmp.path().to_str().unwrap(), "--out", "/nonexistent"],
    );
    assert_eq!(inferred.code, Some(1), "{inferred:#?}");
    assert!(inferred.stderr.contains(&said), "{inferred:#?}");
    let parsed = run_in(ROOT, &["parse", tmp.path().to_str().unwrap()]);
    assert_eq!(parsed.code, Some(1), "{parsed:#?}");
    assert!(parsed.stderr.contains(&said), "{parsed:#?}");
}

#[test]
fn an_output_that_is_a_file_is_said_to_be_one() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("schemas.json");
    std::fs::write(&out, "{}").unwrap();
    let run = infer(ROOT, &["--out", out.to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(
        run.stderr.contains(&format!(
            "{}: is a file, not a directory: the schemas are written into a directory",
            out.display()
        )),
        "{run:#?}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "{}");
}

#[test]
fn check_against_committed_schemas_passes() {
    let run = infer(ROOT, &["--check", "--out", "schema/schemas"]);
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(run.stderr.is_empty(), "{run:#?}");
    assert!(
        run.stdout
            .contains("5 schema(s) in schema/schemas match 10 sample(s)"),
        "{run:#?}"
    );
}

#[test]
fn check_with_an_altered_file_exits_1_and_names_only_that_file() {
    let out = copy_of_committed_schemas();
    let altered = out.path().join("customer.json");
    let text = fs::read_to_string(&altered).unwrap();
    let text = text.replacen("\"CustomerEvent\"", "\"SomethingElse\"", 1);
    fs::write(&altered, &text).unwrap();

    let run = infer(ROOT, &["--check", "--out", out.path().to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stdout.is_empty(), "{run:#?}");
    assert!(
        run.stderr
            .contains(&format!("{}: differs", altered.display())),
        "{run:#?}"
    );
    for other in ["conversation", "message", "team", "user"] {
        assert!(!run.stderr.contains(&format!("{other}.json")), "{run:#?}");
    }
    assert_eq!(
        fs::read_to_string(&altered).unwrap(),
        text,
        "--check writes nothing"
    );
}

#[test]
fn check_catches_a_whitespace_only_difference() {
    let out = copy_of_committed_schemas();
    let altered = out.path().join("user.json");
    let mut text = fs::read_to_string(&altered).unwrap();
    text.push('\n');
    fs::write(&altered, text).unwrap();

    let run = infer(ROOT, &["--check", "--out", out.path().to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stderr.contains("user.json: differs"), "{run:#?}");
}

#[test]
fn check_reports_a_missing_file_as_missing() {
    let out = copy_of_committed_schemas();
    let gone = out.path().join("team.json");
    fs::remove_file(&gone).unwrap();

    let run = infer(ROOT, &["--check", "--out", out.path().to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(
        run.stderr.contains(&format!("{}: missing", gone.display())),
        "{run:#?}"
    );
    assert!(!run.stderr.contains("customer.json"), "{run:#?}");
    assert!(!gone.exists(), "--check writes nothing");
}

#[test]
fn check_against_a_nonexistent_directory_reports_every_file_missing() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("nowhere");
    let run = infer(ROOT, &["--check", "--out", out.to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{run:#?}");
    for name in expected_names() {
        assert!(run.stderr.contains(&format!("{name}: missing")), "{run:#?}");
    }
    assert!(!out.exists(), "--check writes nothing");
}

#[test]
fn check_reports_an_unreadable_schema_as_unreadable_not_missing() {
    let out = copy_of_committed_schemas();
    let path = out.path().join("message.json");
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();

    let run = infer(ROOT, &["--check", "--out", out.path().to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(
        run.stderr
            .contains(&format!("{}: cannot be read", path.display())),
        "{run:#?}"
    );
    assert!(!run.stderr.contains("missing"), "{run:#?}");
}

#[test]
fn invalid_json_names_file_line_and_column_without_panicking() {
    let bad = "{\n  \"name\": \"kustomer.customer.create\",\n    ]\n}\n";
    let dir = workdir(&[("bad.json", bad)]);
    let run = infer(dir.path(), &["bad.json", "--out", "out"]);
    let stderr = assert_fails(&run, dir.path(), &["bad.json:3:5: invalid JSON"]);
    assert!(stderr.contains("key must be a string"), "{stderr}");
    assert!(!stderr.contains(" at line "), "{stderr}");
}

#[test]
fn invalid_json_at_end_of_input_points_at_the_last_line_not_column_0() {
    // Truncated after a newline: the error is at the end of line 1, not at
    // a line 2 that has no characters.
    let dir = workdir(&[("cut.json", "{\"name\": \"x\",\n")]);
    let run = infer(dir.path(), &["cut.json", "--out", "out"]);
    assert_fails(
        &run,
        dir.path(),
        &["cut.json:1:14: invalid JSON: EOF while parsing"],
    );
}

#[test]
fn invalid_json_in_a_later_json_lines_sample_gives_the_line_in_the_file() {
    let text = format!("{GOOD}\n{GOOD}\n{{\"name\": x}}\n");
    let dir = workdir(&[("events.jsonl", &text)]);
    let run = infer(dir.path(), &["events.jsonl", "--out", "out"]);
    let stderr = assert_fails(
        &run,
        dir.path(),
        &["events.jsonl:3:10: invalid JSON (in /name): expected value"],
    );
    assert!(!stderr.contains("was not read"), "{stderr}");
    // The samples after the bad line are still read: with --skip-unusable,
    // the schemas come from both good ones.
    let text = format!(
        "{GOOD}
{{\"name\": x}}
{GOOD}
"
    );
    let dir = workdir(&[("events.jsonl", &text)]);
    let run = infer(dir.path(), &["events.jsonl", "--out", "out"]);
    let stderr = assert_fails(
        &run,
        dir.path(),
        &["events.jsonl:2:10: invalid JSON (in /name): expected value"],
    );
    assert!(!stderr.contains("was not read"), "{stderr}");
    let run = infer(
        dir.path(),
        &["events.jsonl", "--out", "out", "--skip-unusable"],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains("from 2 sample(s)"),
        "{}{}",
        run.stdout,
        run.stderr
    );
}

/// A line cut short reads on into the next line as far as JSON goes: the
/// error names the line that was cut, not the next one.
#[test]
fn a_json_lines_sample_cut_short_is_named_at_its_own_line() {
    let text =
        format!("{GOOD}\n{{\"name\": \"kustomer.customer.update\", \"data\":\n{GOOD}\n{GOOD}\n");
    let dir = workdir(&[("events.jsonl", &text)]);
    let run = infer(dir.path(), &["events.jsonl", "--out", "out"]);
    let stderr = assert_fails(
        &run,
        dir.path(),
        &[
            "events.jsonl:2:44: invalid JSON (in /data): EOF while parsing a value: the line ends before its \
             sample does (in JSON Lines, each sample is one line) (fix",
        ],
    );
    // The next lines are read, and are fine.
    assert!(!stderr.contains("events.jsonl:3:"), "{stderr}");
    assert!(!stderr.contains("was not read"), "{stderr}");
    // Indented, its column counts the indent.
    let text = format!("{GOOD}\n  {{\"name\": \"kustomer.customer.update\", \"data\":\n{GOOD}\n");
    let dir = workdir(&[("events.jsonl", &text)]);
    let run = infer(dir.path(), &["events.jsonl", "--out", "out"]);
    assert_fails(
        &run,
        dir.path(),
        &["events.jsonl:2:46: invalid JSON (in /data): EOF while parsing"],
    );
    // A sample written on several lines, with a mistake inside: named where
    // the mistake is.
    // In a `.jsonl` file the reading goes on at the next line that starts
    // an object, and its lines before are one problem.
    let text = format!(
        "{GOOD}\n{{\n  \"name\": \"kustomer.customer.update\",\n  \"data\": x\n}}\n{GOOD}\n"
    );
    let dir = workdir(&[("events.jsonl", &text)]);
    let run = infer(dir.path(), &["events.jsonl", "--out", "out"]);
    let stderr = assert_fails(
        &run,
        dir.path(),
        &["events.jsonl:4:11: invalid JSON (in /data): expected value"],
    );
    assert_eq!(stderr.matches("error: ").count(), 1, "{stderr}");
    let run = infer(
        dir.path(),
        &["events.jsonl", "--out", "out", "--skip-unusable"],
    );
    assert!(
        run.stdout.contains("from 2 sample(s)"),
        "{}{}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn a_file_named_twice_is_read_once() {
    let dir = workdir(&[("s/a.json", GOOD), ("s/b.json", GOOD)]);
    // The directory, a file in it, the directory again by another path.
    let r = infer(dir.path(), &["s", "s/a.json", "./s/", "--out", "out"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("inferred 1 schema(s) from 2 sample(s)"),
        "{}",
        r.stdout
    );
    let schema = fs::read_to_string(dir.path().join("out/customer.json")).unwrap();
    assert!(schema.contains("\"x-kustomer-samples\": 2"), "{schema}");
}

#[test]
fn sample_without_name_is_rejected() {
    let dir = workdir(&[("noname.json", r#"{"data": {"type": "customer"}}"#)]);
    let run = infer(dir.path(), &["noname.json", "--out", "out"]);
    assert_fails(&run, dir.path(), &["noname.json: the sample has no `name`"]);
}

#[test]
fn sample_with_a_non_string_name_is_rejected() {
    let dir = workdir(&[("num.json", r#"{"name": 7, "data": {"type": "customer"}}"#)]);
    let run = infer(dir.path(), &["num.json", "--out", "out"]);
    assert_fails(
        &run,
        dir.path(),
        &["num.json: `name` is a number, not a string"],
    );
}

#[test]
fn sample_without_data_type_is_rejected() {
    let dir = workdir(&[(
        "notype.json",
        r#"{"name": "kustomer.customer.create", "data": {"id": "1"}}"#,
    )]);
    let run = infer(dir.path(), &["notype.json", "--out", "out"]);
    assert_fails(
        &run,
        dir.path(),
        &["notype.json: the sample has no `data.type`"],
    );
}

#[test]
fn sample_with_an_unusable_resource_name_is_rejected() {
    let dir = workdir(&[(
        "escape.json",
        r#"{"name": "kustomer.x.create", "data": {"type": "../evil"}}"#,
    )]);
    let run = infer(dir.path(), &["escape.json", "--out", "out"]);
    assert_fails(
        &run,
        dir.path(),
        &[
            "escape.json: `data.type` \"../evil\"",
            "not a usable resource name",
        ],
    );
    assert!(!dir.path().join("evil.json").exists());
}

#[test]
fn sample_that_is_an_array_is_rejected() {
    let text = format!("[{GOOD}]");
    let dir = workdir(&[("array.json", &text)]);
    let run = infer(dir.path(), &["array.json", "--out", "out"]);
    assert_fails(
        &run,
        dir.path(),
        &["array.json: a sample must be a JSON object"],
    );
}

#[test]
fn empty_file_is_rejected() {
    let dir = workdir(&[("empty.json", "")]);
    let run = infer(dir.path(), &["empty.json", "--out", "out"]);
    assert_fails(
        &run,
        dir.path(),
        &["empty.json: no sample: the input is empty"],
    );
}

#[test]
fn whitespace_only_file_is_rejected_as_empty() {
    let dir = workdir(&[("blank.jsonl", "\n  \n\t\n")]);
    let run = infer(dir.path(), &["blank.jsonl", "--out", "out"]);
    assert_fails(
        &run,
        dir.path(),
        &["blank.jsonl: no sample: the input is empty"],
    );
}

#[test]
fn empty_directory_is_rejected() {
    let dir = workdir(&[("samples/notes.txt", "not a sample")]);
    let run = infer(dir.path(), &["samples", "--out", "out"]);
    assert_fails(
        &run,
        dir.path(),
        &["samples: no .json, .jsonl or .ndjson sample files in this directory"],
    );
}

/// Every path is read before the run fails, so one run names every path
/// that cannot be read and every sample that cannot be used.
#[test]
fn every_bad_path_and_sample_is_named_in_one_run() {
    let dir = workdir(&[
        (
            "x.json",
            r#"{"name": "kustomer.customer.create", "data": {"id": "1"}}"#,
        ),
        ("y.json", "{"),
        ("empty/notes.txt", "not a sample"),
    ]);
    let run = infer(
        dir.path(),
        &["x.json", "nowhere", "y.json", "empty", "--out", "out"],
    );
    assert_eq!(run.code, Some(1), "{run:#?}");
    for needle in [
        "error: x.json: the sample has no `data.type`",
        "error: y.json:1:1: invalid JSON",
        "error: nowhere: ",
        "error: empty: no .json, .jsonl or .ndjson sample files",
        "error: 2 sample path(s) cannot be read and 2 sample(s) cannot be used",
    ] {
        assert!(run.stderr.contains(needle), "{needle}: {run:#?}");
    }
    assert!(!dir.path().join("out").exists(), "{run:#?}");
}

/// A link to nothing, or a loop of links, with a sample's name is read, and
/// says why it cannot be, rather than being left out without a word; a
/// sample's extension counts in any case.
#[cfg(unix)]
#[test]
fn links_to_nothing_in_a_directory_are_named_and_extensions_count_in_any_case() {
    let dir = workdir(&[("samples/c.JSON", GOOD)]);
    let samples = dir.path().join("samples");
    std::os::unix::fs::symlink("nowhere.json", samples.join("broken.json")).unwrap();
    std::os::unix::fs::symlink("loop.json", samples.join("loop.json")).unwrap();
    let run = infer(dir.path(), &["samples", "--out", "out"]);
    assert_eq!(run.code, Some(1), "{run:#?}");
    for needle in [
        "samples/broken.json: ",
        "samples/loop.json: ",
        "error: 2 sample path(s) cannot be read",
    ] {
        assert!(run.stderr.contains(needle), "{needle}: {run:#?}");
    }
    fs::remove_file(samples.join("broken.json")).unwrap();
    fs::remove_file(samples.join("loop.json")).unwrap();
    let run = infer(dir.path(), &["samples", "--out", "out"]);
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(dir.path().join("out/customer.json").exists(), "{run:#?}");
}

/// A JSON file of one's own in the output directory, with the name of a
/// schema to write, is not overwritten: the run fails and writes nothing.
#[test]
fn a_json_file_of_ones_own_with_a_schemas_name_is_not_overwritten() {
    let own = r#"{"my": "notes about customers"}"#;
    let dir = workdir(&[
        ("samples/c.json", GOOD),
        (
            "samples/t.json",
            r#"{"name": "kustomer.team.create", "data": {"type": "team", "id": "1"}}"#,
        ),
        ("out/customer.json", own),
    ]);
    let customer = dir.path().join("out/customer.json");
    let run = infer(dir.path(), &["samples", "--out", "out"]);
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(
        run.stderr
            .contains("out/customer.json: a JSON file of your own"),
        "{run:#?}"
    );
    assert_eq!(fs::read_to_string(&customer).unwrap(), own);
    assert!(!dir.path().join("out/team.json").exists(), "{run:#?}");
    // `--check` says so too, rather than advise a run that would refuse.
    let run = infer(dir.path(), &["samples", "--out", "out", "--check"]);
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(
        run.stderr
            .contains("out/customer.json: a JSON file of your own")
            && !run.stderr.contains("stale"),
        "{run:#?}"
    );
    // A schema written before is rewritten, and so is one that is no longer
    // JSON (merge conflict markers, a file cut short).
    fs::remove_file(&customer).unwrap();
    for _ in 0..2 {
        let run = infer(dir.path(), &["samples", "--out", "out"]);
        assert_eq!(run.code, Some(0), "{run:#?}");
    }
    let written = fs::read_to_string(&customer).unwrap();
    let conflict = format!("<<<<<<< HEAD\n{written}=======\n{written}>>>>>>> other\n");
    fs::write(&customer, conflict).unwrap();
    let run = infer(dir.path(), &["samples", "--out", "out"]);
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert_eq!(fs::read_to_string(&customer).unwrap(), written);
}

/// A file name or a sample's text with a terminal escape in it is shown
/// escaped, so that a sample cannot write to the terminal.
#[test]
fn control_characters_in_names_are_shown_escaped() {
    let dir = workdir(&[
        ("e\u{1b}[31mred.json", "{"),
        (
            "n.json",
            r#"{"name": "kustomer.customer.\u001b[31mcreate", "data": {"id": "1"}}"#,
        ),
    ]);
    for (args, want) in [
        (
            &["e\u{1b}[31mred.json", "--out", "out"][..],
            "e\\u{1b}[31mred.json",
        ),
        (
            &["n.json", "e\u{1b}[31mred.json", "--out", "out"][..],
            "e\\u{1b}[31mred.json",
        ),
    ] {
        let run = infer(dir.path(), args);
        assert_eq!(run.code, Some(1), "{run:#?}");
        assert!(!run.stderr.contains('\u{1b}'), "{run:#?}");
        assert!(run.stderr.contains(want), "{run:#?}");
    }
}

#[test]
fn nonexistent_path_is_rejected_with_the_os_reason_said_once() {
    let dir = workdir(&[]);
    let run = infer(dir.path(), &["nowhere.json", "--out", "out"]);
    let expected = std::io::Error::from_raw_os_error(2).to_string();
    let stderr = assert_fails(&run, dir.path(), &["nowhere.json: ", &expected]);
    assert_eq!(stderr.matches(&expected).count(), 1, "{stderr}");
}

#[test]
fn json_lines_error_gives_sample_number_and_line() {
    let text = format!("{GOOD}\n{}\n{GOOD}\n", r#"{"data": {"type": "customer"}}"#);
    let dir = workdir(&[("events.jsonl", &text)]);
    let run = infer(dir.path(), &["events.jsonl", "--out", "out"]);
    assert_fails(
        &run,
        dir.path(),
        &["events.jsonl: sample 2 (line 2): the sample has no `name`"],
    );
}

#[test]
fn json_lines_line_numbers_count_blank_lines_and_multi_line_samples() {
    let pretty =
        "{\n  \"name\": \"kustomer.customer.update\",\n  \"data\": {\"type\": \"customer\"}\n}";
    let text = format!("\n{pretty}\n\n[]\n");
    let dir = workdir(&[("events.json", &text)]);
    let run = infer(dir.path(), &["events.json", "--out", "out"]);
    assert_fails(
        &run,
        dir.path(),
        &["events.json: sample 2 (line 7): a sample must be a JSON object"],
    );
}

#[test]
fn no_paths_outside_the_repo_root_is_a_clear_error() {
    let dir = workdir(&[]);
    let run = infer(dir.path(), &["--out", "out"]);
    assert_fails(
        &run,
        dir.path(),
        &["no sample paths given", "schema/samples does not exist"],
    );
}

#[test]
fn a_file_and_a_directory_merge_into_the_same_schemas() {
    // The committed samples, split: one file given by itself, the other nine
    // in a directory. Together they infer exactly the committed schemas.
    let single = committed_samples().join("kustomer.customer.update.json");
    let rest = TempDir::new().unwrap();
    for name in file_names(&committed_samples()) {
        let from = committed_samples().join(&name);
        if from != single {
            fs::copy(&from, rest.path().join(&name)).unwrap();
        }
    }
    assert_eq!(file_names(rest.path()).len(), 9);

    let out = TempDir::new().unwrap();
    let run = infer(
        ROOT,
        &[
            single.to_str().unwrap(),
            rest.path().to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(
        run.stdout
            .contains("inferred 5 schema(s) from 10 sample(s)"),
        "{run:#?}"
    );
    assert_eq!(file_names(out.path()), expected_names());
    for name in expected_names() {
        assert!(
            fs::read(out.path().join(&name)).unwrap()
                == fs::read(committed_schemas().join(&name)).unwrap(),
            "{name} differs from the committed schema"
        );
    }
}

#[test]
fn a_file_and_a_directory_of_different_resources_both_get_schemas() {
    let dir = workdir(&[
        ("one.json", GOOD),
        (
            "more/a.json",
            r#"{"name": "kustomer.team.create", "data": {"type": "team"}}"#,
        ),
        (
            "more/b.jsonl",
            "{\"name\": \"kustomer.customer.update\", \"data\": {\"type\": \"customer\"}}\n",
        ),
    ]);
    let run = infer(dir.path(), &["one.json", "more", "--out", "out"]);
    assert_eq!(run.code, Some(0), "{run:#?}");
    let out = dir.path().join("out");
    assert_eq!(file_names(&out), ["customer.json", "team.json"]);

    let customer: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("customer.json")).unwrap()).unwrap();
    assert_eq!(
        customer["x-kustomer-events"],
        serde_json::json!(["kustomer.customer.create", "kustomer.customer.update"])
    );
    assert_eq!(customer["x-kustomer-samples"], 2);
}

#[test]
fn check_reports_a_schema_no_sample_produces() {
    let out = copy_of_committed_schemas();
    // A schema inference wrote for a resource whose samples are gone, and
    // a JSON file of one's own, which is not reported.
    let leftover = out.path().join("widget.json");
    fs::write(&leftover, "{\"x-kustomer-resource\": \"widget\"}\n").unwrap();
    fs::write(out.path().join("notes.json"), "{}\n").unwrap();

    let run = infer(ROOT, &["--check", "--out", out.path().to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(
        run.stderr.contains(&format!(
            "{}: no sample has this resource",
            leftover.display()
        )),
        "{run:#?}"
    );
    assert!(!run.stderr.contains("customer.json"), "{run:#?}");
    assert!(!run.stderr.contains("notes.json"), "{run:#?}");

    // Inferring again removes it, and leaves the file of one's own.
    let run = infer(ROOT, &["--out", out.path().to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(
        run.stdout.contains("(no samples of its resource)"),
        "{run:#?}"
    );
    assert!(!leftover.exists());
    assert!(out.path().join("notes.json").exists());
}

#[test]
fn a_byte_order_mark_at_the_start_of_a_file_is_skipped() {
    // Every committed sample saved with a byte order mark, as some editors
    // do: the same schemas as without.
    let marked = TempDir::new().unwrap();
    for name in file_names(&committed_samples()) {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend(fs::read(committed_samples().join(&name)).unwrap());
        fs::write(marked.path().join(&name), bytes).unwrap();
    }
    let out = TempDir::new().unwrap();
    let run = infer(
        ROOT,
        &[
            marked.path().to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, Some(0), "{run:#?}");
    for name in expected_names() {
        assert!(
            fs::read(out.path().join(&name)).unwrap()
                == fs::read(committed_schemas().join(&name)).unwrap(),
            "{name} differs from the committed schema"
        );
    }
    // A mark anywhere else is still invalid JSON, with its place.
    let dir = workdir(&[("late.json", "{\"name\": \"x\",\n\u{FEFF}\"data\": {}}")]);
    let run = infer(dir.path(), &["late.json", "--out", "out"]);
    assert_fails(&run, dir.path(), &["late.json:2:1"]);
}

#[test]
fn every_unusable_sample_is_named_in_one_run() {
    let dir = workdir(&[
        ("samples/a.json", GOOD),
        (
            "samples/b.json",
            r#"{"name": "kustomer.x.create", "data": {"type": 123}}"#,
        ),
        ("samples/c.json", "{\"name\": "),
        (
            "samples/d.json",
            r#"{"name": "kustomer.x.create", "data": {"type": "üser"}}"#,
        ),
    ]);
    let run = infer(dir.path(), &["samples", "--out", "out"]);
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stdout.is_empty(), "{run:#?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{run:#?}");
    assert!(
        lines[0].starts_with("error: samples/b.json: `data.type` is a number, not a string"),
        "{run:#?}"
    );
    assert!(
        lines[1].starts_with("error: samples/c.json:1:9: invalid JSON"),
        "{run:#?}"
    );
    assert!(
        lines[2].starts_with("error: samples/d.json: `data.type` \"üser\""),
        "{run:#?}"
    );
    assert_eq!(
        lines[3],
        "error: 3 unusable samples: fix or remove them, or pass --skip-unusable to infer from the others"
    );
    assert!(!dir.path().join("out").exists(), "nothing is written");

    // With --skip-unusable: a warning each, and the good one inferred from.
    let run = infer(dir.path(), &["samples", "--out", "out", "--skip-unusable"]);
    assert_eq!(run.code, Some(0), "{run:#?}");
    let warnings: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(warnings.len(), 4, "{run:#?}");
    assert!(
        warnings[0].starts_with("warning: samples/b.json: "),
        "{run:#?}"
    );
    assert_eq!(
        warnings[3],
        "warning: left out 3 unusable sample(s); inferred from 1"
    );
    assert_eq!(file_names(&dir.path().join("out")), ["customer.json"]);
    assert!(
        run.stdout.contains("inferred 1 schema(s) from 1 sample(s)"),
        "{run:#?}"
    );
}

#[test]
fn one_unusable_sample_is_one_line_naming_the_way_past_it() {
    let dir = workdir(&[
        ("samples/a.json", GOOD),
        (
            "samples/b.json",
            r#"{"name": "kustomer.x.create", "data": {"type": "a/b"}}"#,
        ),
    ]);
    let run = infer(dir.path(), &["samples", "--out", "out"]);
    assert_fails(
        &run,
        dir.path(),
        &[
            "samples/b.json: `data.type` \"a/b\" is not a usable resource name",
            "(fix or remove it, or pass --skip-unusable to infer from the other samples)",
        ],
    );
}

#[test]
fn skipping_leaves_an_error_when_no_sample_is_usable() {
    let dir = workdir(&[("samples/b.json", "[]"), ("samples/c.json", "")]);
    let run = infer(dir.path(), &["samples", "--out", "out", "--skip-unusable"]);
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(
        run.stderr
            .ends_with("error: none of the samples can be used (2 unusable)\n"),
        "{run:#?}"
    );
    assert!(!dir.path().join("out").exists(), "{run:#?}");
}

/// A directory gives its `.ndjson` files too, as `parse` and `send` read
/// them, and stderr names the subdirectories that were not read.
#[test]
fn a_directory_gives_its_ndjson_files_and_names_its_subdirectories() {
    let dir = workdir(&[]);
    let samples = dir.path().join("samples");
    fs::create_dir_all(samples.join("older")).unwrap();
    fs::write(samples.join("a.ndjson"), format!("{GOOD}\n{GOOD}\n")).unwrap();
    let r = infer(dir.path(), &["samples", "--out", "out"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("from 2 sample(s)"), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("samples: 1 subdirectory not read (name it to have its files read)"),
        "{}",
        r.stderr
    );
}
