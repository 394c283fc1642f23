//! `app-definition validate`, run as a real process.

use std::process::Command;

mod common;
use common::BIN;

fn validate(text: &str) -> (Option<i32>, String) {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("app.json");
    std::fs::write(&path, text).unwrap();
    let out = validate_file(&path);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `app-definition validate PATH`, run.
fn validate_file(path: &std::path::Path) -> std::process::Output {
    Command::new(BIN)
        .args(["app-definition", "validate"])
        .arg(path)
        .output()
        .unwrap()
}

#[test]
fn the_seed_example_is_valid() {
    let (code, out) = validate(
        r#"{"app": "ecommstore", "version": "0.0.1", "title": "E-comm Store",
            "outboundWebhooks": [{"name": "Send conversation events to Ecomm Store",
              "url": "https://example-ecommstore.com/conversations",
              "headers": [{"name": "x-special-info-source", "value": "kustomer"}],
              "events": ["kustomer.conversation.create", "kustomer.conversation.update"]}]}"#,
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("valid (0 warning(s))"), "{out}");
}

#[test]
fn every_problem_is_listed_with_its_path_and_the_exit_code_is_1() {
    let (code, out) = validate(
        r#"{"app": "my app", "version": "one", "outboundWebhooks": [{"url": "http://x.com", "events": ["kustomer.nope"]}]}"#,
    );
    assert_eq!(code, Some(1), "{out}");
    for want in [
        "error: /app:",
        "error: /version:",
        "error: /title: `title` is required",
        "error: /outboundWebhooks/0/name: `name` is required",
        "error: /outboundWebhooks/0/url: `url` must use https",
        "error: /outboundWebhooks/0/events/0:",
        "6 error(s)",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    let (code, out) = validate("{oops");
    assert_eq!(code, Some(1));
    assert!(out.contains("invalid JSON at line 1"), "{out}");
}

#[test]
fn headers_the_receiver_would_refuse_and_repeated_keys_are_errors() {
    let (code, out) = validate(
        r#"{"app": "ecommstore", "app": "ecommstore", "version": "0.0.1", "title": "E-comm Store",
            "outboundWebhooks": [{"name": "n", "url": " https://x.com/ ", "hook": 1,
              "headers": [{"name": "Content-Type", "value": "s3cret"},
                          {"name": "x-a", "value": "s3\ncret"},
                          {"name": "X-A", "value": " "}],
              "events": ["kustomer.conversation.create"]}]}"#,
    );
    assert_eq!(code, Some(1), "{out}");
    for want in [
        "error: /app: `app` is given more than once",
        "error: /outboundWebhooks/0/url: `url` \" https://x.com/ \" has white space around it",
        "warning: /outboundWebhooks/0/hook: `hook` is not a key of an outbound webhook",
        "error: /outboundWebhooks/0/headers/0/name: Content-Type cannot be a custom header",
        "error: /outboundWebhooks/0/headers/1/value: `value` cannot be sent in an HTTP header",
        "error: /outboundWebhooks/0/headers/2/name: X-A is already header 1",
        "error: /outboundWebhooks/0/headers/2/value: `value` must not be empty",
        "6 error(s)",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    assert!(!out.contains("s3"), "a header value leaked:\n{out}");
}

/// Read by nothing (`validate app.json | head -1`), a definition with an
/// error still exits 1: the status does not depend on the reader.
#[test]
fn an_error_exits_1_even_when_the_output_is_not_read() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("app.json");
    let events: Vec<String> = (0..13)
        .map(|i| format!("\"kustomer.customer.{}\"", ["create", "update"][i % 2]))
        .collect();
    std::fs::write(
        &path,
        format!(
            r#"{{"app": "a", "version": "0.0.1", "outboundWebhooks": [{{"name": "n", "url": "https://x.com", "events": [{}]}}]}}"#,
            events.join(",")
        ),
    )
    .unwrap();
    let args = ["app-definition", "validate", path.to_str().unwrap()];
    let read = common::run(&args);
    assert_eq!(read.code, Some(1), "{}", read.stdout);
    let unread = common::run_unread(&args);
    assert_eq!(unread.code, Some(1), "{}", unread.stderr);
}

#[test]
fn a_definition_is_read_from_stdin_and_one_not_in_utf_8_says_so() {
    use std::io::Write;
    let text = r#"{"app": "a", "version": "1.0.0", "title": "A"}"#;
    let mut child = Command::new(BIN)
        .args(["app-definition", "validate", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        said.lines().last(),
        Some("-: valid (1 warning(s))"),
        "{said}"
    );

    let dir = tempfile::TempDir::new().unwrap();
    for (bytes, want) in [
        (&b"\xff\xfe{\x00}\x00"[..], "the file is UTF-16"),
        (
            b"{\"app\": \"caf\xe9\"}",
            "not UTF-8: the byte at offset 12",
        ),
    ] {
        let path = dir.path().join("app.json");
        std::fs::write(&path, bytes).unwrap();
        let out = Command::new(BIN)
            .args(["app-definition", "validate"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(want), "{stderr}");
    }
}

/// A key holding a line break and an escape sequence is shown escaped, so
/// that it cannot forge a line of the output.
#[test]
fn a_key_cannot_forge_a_line() {
    let (code, out) = validate(
        "{\"app\": \"a\", \"version\": \"1.0.0\", \"title\": \"t\", \"outboundWebhooks\": [], \
         \"\\u001b[2J\\r\\napp.json: valid (0 warning(s))\": 1}",
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.contains("\\u{1b}[2J\\u{d}\\u{a}app.json"), "{out}");
    assert!(!out.contains('\u{1b}') && !out.contains('\r'), "{out}");
}

/// A file far larger than any app definition is refused before it is read
/// whole.
#[test]
fn a_file_over_the_size_limit_is_refused() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("huge.json");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(17 << 20).unwrap();
    let out = validate_file(&path);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("larger than 16 MiB, which no app definition is"),
        "{stderr}"
    );
}

/// UTF-16 without a byte order mark is said to be UTF-16, not invalid JSON.
#[test]
fn utf16_without_a_byte_order_mark_is_named() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("app.json");
    let text: Vec<u8> = "{\"app\": \"a\"}"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    std::fs::write(&path, text).unwrap();
    let out = validate_file(&path);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("looks like UTF-16"), "{stderr}");
}
