//! Tokens and custom headers read from files (`--token-file`,
//! `--header-file`), so that secrets need not be on the command line, where
//! every user of the machine can read them (`ps`, `/proc/<pid>/cmdline`), and
//! can come from where secret stores put them (a Kubernetes or Docker secret
//! mounted as a file).
//!
//! Both formats are one entry per line; blank lines are skipped and white
//! space around each entry (the newline `echo` adds, a `\r` from a Windows
//! editor) is dropped: no token or header value Kustomer sends starts or ends
//! with white space (an HTTP header value cannot). Errors name the file and
//! the line, never what the line holds.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use reqwest::header::{HeaderName, HeaderValue};

/// The tokens in `path`, one per line, in order.
pub fn read_tokens(path: &Path) -> Result<Vec<String>> {
    let tokens: Vec<String> = entries(path)?.into_iter().map(|(_, t)| t).collect();
    if tokens.is_empty() {
        bail!(
            "{}: holds no token (one per line is expected)",
            path.display()
        );
    }
    Ok(tokens)
}

/// The one token in `path`, for `send`, which signs with one.
pub fn read_token(path: &Path) -> Result<String> {
    let mut tokens = read_tokens(path)?;
    if tokens.len() > 1 {
        bail!(
            "{}: holds {} tokens; send signs with one, so give a file holding only it",
            path.display(),
            tokens.len()
        );
    }
    Ok(tokens.remove(0))
}

/// `send`'s token: `--token`'s, or the one in `--token-file`. Either may
/// come from its environment variable instead; `from_command_line` says which
/// of the two were on the command line, which wins over the environment.
pub fn send_token(
    token: Option<String>,
    file: Option<PathBuf>,
    from_command_line: (bool, bool),
) -> Result<String> {
    match (token, file, from_command_line) {
        (Some(token), None, _) | (Some(token), Some(_), (true, false)) => Ok(token),
        (None, Some(file), _) | (Some(_), Some(file), (false, true)) => read_token(&file),
        (Some(_), Some(_), _) => bail!(
            "both a token and a token file are given (--token or KUSTOMER_WEBHOOK_TOKEN, \
             --token-file or KUSTOMER_WEBHOOK_TOKEN_FILE); send signs with one: keep one"
        ),
        (None, None, _) => bail!("no token given: --token or --token-file"),
    }
}

/// The custom headers of `--header NAME=VALUE` arguments and of
/// `--header-file`s, checked here rather than by the argument parser, whose
/// errors would quote the value, a secret.
pub fn headers(args: &[String], files: &[PathBuf]) -> Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    for arg in args {
        headers.push(name_value(arg).map_err(|e| anyhow::anyhow!("--header: {e}"))?);
    }
    for file in files {
        headers.extend(read_headers(file)?);
    }
    Ok(headers)
}

/// The `NAME=VALUE` headers in `path`, one per line, in order.
pub fn read_headers(path: &Path) -> Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    for (line, text) in entries(path)? {
        match name_value(&text) {
            Ok(h) => headers.push(h),
            Err(e) => bail!("{}:{line}: {e}", path.display()),
        }
    }
    if headers.is_empty() {
        bail!(
            "{}: holds no header (one NAME=VALUE per line is expected)",
            path.display()
        );
    }
    Ok(headers)
}

/// A `NAME=VALUE` custom header; see [`header`].
fn name_value(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| "expected NAME=VALUE".to_owned())?;
    header(name, value)
}

/// A custom header: a name HTTP allows, and a value that can be sent in a
/// header, each without the white space around it (which HTTP drops from a
/// value as it arrives). The error never quotes the value, a secret.
fn header(name: &str, value: &str) -> Result<(String, String), String> {
    let (name, value) = (name.trim(), value.trim());
    if name.is_empty() {
        return Err("expected NAME=VALUE, with a header name before the `=`".to_owned());
    }
    if HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(format!(
            "{name:?} is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)"
        ));
    }
    if HeaderValue::from_str(value).is_err() {
        return Err(format!(
            "the value of {name} cannot be sent in an HTTP header (it holds a control character)"
        ));
    }
    Ok((name.to_owned(), value.to_owned()))
}

/// The non-blank lines of `path`, trimmed, with their line numbers.
fn entries(path: &Path) -> Result<Vec<(usize, String)>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| anyhow::anyhow!("{}: is not UTF-8 text", path.display()))?;
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| (i, l.to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &[u8]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn tokens_are_the_trimmed_non_blank_lines() {
        let f = file(b"current\r\n\n  previous  \n");
        assert_eq!(read_tokens(f.path()).unwrap(), ["current", "previous"]);
        // One token, with or without the newline `echo` adds.
        assert_eq!(read_token(file(b"t0ken\n").path()).unwrap(), "t0ken");
        assert_eq!(read_token(file(b"t0ken").path()).unwrap(), "t0ken");
    }

    #[test]
    fn a_token_file_that_cannot_serve_says_why() {
        let empty = file(b"\n \n");
        let e = read_tokens(empty.path()).unwrap_err().to_string();
        assert!(
            e.ends_with("holds no token (one per line is expected)"),
            "{e}"
        );
        let two = file(b"a\nb\n");
        let e = read_token(two.path()).unwrap_err().to_string();
        assert!(e.contains("holds 2 tokens; send signs with one"), "{e}");
        let binary = file(b"\xff\xfe");
        let e = read_tokens(binary.path()).unwrap_err().to_string();
        assert!(e.ends_with("is not UTF-8 text"), "{e}");
        let e = read_tokens(Path::new("/nonexistent/tokens")).unwrap_err();
        assert!(
            format!("{e:#}").starts_with("reading /nonexistent/tokens: "),
            "{e:#}"
        );
    }

    #[test]
    fn the_command_line_wins_over_the_environment_for_sends_token() {
        let f = file(b"from-file\n");
        let path = || Some(f.path().to_owned());
        let token = || Some("from-flag".to_owned());
        let get = |t, p, lines| send_token(t, p, lines).map_err(|e| e.to_string());
        assert_eq!(get(token(), None, (true, false)).unwrap(), "from-flag");
        assert_eq!(get(None, path(), (false, true)).unwrap(), "from-file");
        // One on the command line, the other from the environment.
        assert_eq!(get(token(), path(), (true, false)).unwrap(), "from-flag");
        assert_eq!(get(token(), path(), (false, true)).unwrap(), "from-file");
        // Both from the same place: which one is meant cannot be told.
        for lines in [(true, true), (false, false)] {
            let e = get(token(), path(), lines).unwrap_err();
            assert!(
                e.starts_with("both a token and a token file are given"),
                "{e}"
            );
        }
    }

    #[test]
    fn headers_are_name_value_lines() {
        let f = file(b"x-app-secret = s3cret=with=equals \r\n\nX-Other=1\n");
        assert_eq!(
            read_headers(f.path()).unwrap(),
            [
                ("x-app-secret".to_owned(), "s3cret=with=equals".to_owned()),
                ("X-Other".to_owned(), "1".to_owned()),
            ]
        );
    }

    #[test]
    fn a_bad_header_line_is_named_without_its_value() {
        for (text, want) in [
            (&b"x-ok=1\njust-a-s3cret\n"[..], ":2: expected NAME=VALUE"),
            (b"=s3cret\n", ":1: expected NAME=VALUE, with a header name"),
            (
                b"x app=s3cret\n",
                ":1: \"x app\" is not an HTTP header name",
            ),
            (
                b"x-app=s3\x07cret\n",
                ":1: the value of x-app cannot be sent in an HTTP header",
            ),
            (b"\n", "holds no header"),
        ] {
            let f = file(text);
            let e = read_headers(f.path()).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
            assert!(!e.contains("s3"), "the value leaked: {e}");
        }
    }
}
