//! Tokens and custom headers read from files (`--token-file`,
//! `--header-file`), so that secrets need not be on the command line, where
//! every user of the machine can read them (`ps`, `/proc/<pid>/cmdline`), and
//! can come from where secret stores put them (a Kubernetes or Docker secret
//! mounted as a file).
//!
//! Both formats are one entry per line; blank lines are skipped and white
//! space around each entry (the newline `echo` adds, a `\r` from a Windows
//! editor) is dropped: no token or header value Kustomer sends starts or ends
//! with white space (an HTTP header value cannot). A byte order mark
//! (U+FEFF) at the start of a file, as some editors save one, is read past,
//! with a warning the first time it is seen there. Errors name the file and
//! the line, never what the line holds.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use kustomer_webhooks::verify::{HOP_BY_HOP_HEADERS, RESERVED_HEADERS};
use reqwest::header::{HeaderName, HeaderValue};

use crate::out::note;

/// Where `serve`'s secrets come from: tokens and custom headers given on
/// the command line or in the environment, and files holding more, read
/// again whenever `serve` reloads (no `Debug`: it holds secrets).
#[derive(Clone, Default)]
pub struct Sources {
    /// `--token` values.
    pub tokens: Vec<String>,
    /// `--token-file`s.
    pub token_files: Vec<PathBuf>,
    /// `--header NAME=VALUE` arguments, as given.
    pub headers: Vec<String>,
    /// `--header-file`s.
    pub header_files: Vec<PathBuf>,
}

/// The tokens and custom headers `serve` accepts at one time (its `Debug`
/// shows only how many tokens and the headers' names).
#[derive(Clone, PartialEq, Eq)]
pub struct Secrets {
    /// The accepted tokens, each once, in the order given: the arguments'
    /// first, then each file's.
    pub tokens: Vec<String>,
    /// The required custom headers.
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for Secrets {
    /// How many tokens, and the headers' names: never a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("tokens", &self.tokens.len())
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Sources {
    /// Whether anything is read from a file, so that reloading can change
    /// what is accepted.
    pub fn has_files(&self) -> bool {
        !self.token_files.is_empty() || !self.header_files.is_empty()
    }

    /// Reads the files now and puts everything together. A file that cannot
    /// be read, or that holds nothing, is an error: it is never taken to mean
    /// that its tokens or headers are no longer wanted.
    pub fn read(&self) -> Result<Secrets> {
        let mut tokens: Vec<String> = Vec::new();
        let files = self.token_files.iter().map(|file| read_tokens(file));
        for token in std::iter::once(Ok(self.tokens.clone()))
            .chain(files)
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
        {
            // The same token given twice is accepted once.
            if !tokens.contains(&token) {
                tokens.push(token);
            }
        }
        if tokens.is_empty() {
            bail!("no token given: --token or --token-file");
        }
        Ok(Secrets {
            tokens,
            headers: headers(&self.headers, &self.header_files)?,
        })
    }
}

impl Secrets {
    /// A verifier accepting these tokens and requiring these headers.
    /// [`Sources::read`] never gives secrets without a token (the `""` below
    /// is never used: an empty key would let anyone sign).
    pub fn verifier(&self) -> kustomer_webhooks::verify::Verifier {
        let (first, more) = self
            .tokens
            .split_first()
            .map_or(("", &[][..]), |(f, m)| (f.as_str(), m));
        let mut verifier = kustomer_webhooks::verify::Verifier::new(first);
        for token in more {
            verifier = verifier.with_token(token);
        }
        for (name, value) in &self.headers {
            verifier = verifier.with_header(name, value);
        }
        verifier
    }

    /// What changed from `before`, in words that name no secret: "2 tokens
    /// (1 added, 1 removed), 1 custom header (changed: x-app-secret)".
    pub fn changes_from(&self, before: &Secrets) -> String {
        let added = self
            .tokens
            .iter()
            .filter(|t| !before.tokens.contains(t))
            .count();
        let removed = before
            .tokens
            .iter()
            .filter(|t| !self.tokens.contains(t))
            .count();
        let mut tokens = count(self.tokens.len(), "token");
        let mut parts = Vec::new();
        if added > 0 {
            parts.push(format!("{added} added"));
        }
        if removed > 0 {
            parts.push(format!("{removed} removed"));
        }
        if !parts.is_empty() {
            tokens = format!("{tokens} ({})", parts.join(", "));
        }
        // A name given twice (two accepted values) is one header.
        let mut names: Vec<String> = self
            .headers
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
        names.sort_unstable();
        names.dedup();
        let mut headers = count(names.len(), "custom header");
        let changed: Vec<&str> = self
            .headers
            .iter()
            .filter(|h| !before.headers.contains(h))
            .map(|(name, _)| name.as_str())
            .chain(
                before
                    .headers
                    .iter()
                    .filter(|(name, _)| !self.headers.iter().any(|(n, _)| n == name))
                    .map(|(name, _)| name.as_str()),
            )
            .collect();
        if !changed.is_empty() {
            headers = format!("{headers} (changed: {})", changed.join(", "));
        }
        format!("{tokens}, {headers}")
    }
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The tokens in `path`, one per line, in order.
pub fn read_tokens(path: &Path) -> Result<Vec<String>> {
    let tokens: Vec<String> = entries(path, "--token-file")?
        .into_iter()
        .map(|(_, t)| t)
        .collect();
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
    for (line, text) in entries(path, "--header-file")? {
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

/// Why `name` is no HTTP header name. Nothing of it is quoted but a name
/// followed by `:` or white space (`Name: value=`, split at the value's own
/// `=`): anything else may be the secret itself (a line without its
/// `NAME=`, split inside a base64 value's padding).
fn not_a_name(name: &str) -> String {
    const ALLOWED: &str = "letters, digits and !#$%&'*+-.^_`|~ only";
    let is_token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    let first_bad = name.char_indices().find(|&(_, c)| !is_token(c));
    match first_bad {
        Some((at, bad)) if at > 0 && (bad == ':' || bad.is_whitespace()) => {
            let before = &name[..at];
            let what = if bad == ':' {
                "a `:` (write NAME=VALUE, not NAME: VALUE)"
            } else {
                "white space"
            };
            format!(
                "the header name {before:?}… goes on with {what}, which no HTTP header name has \
                 ({ALLOWED}); the rest is not shown, in case it is the secret"
            )
        }
        _ => format!(
            "the text before the first `=` is not an HTTP header name ({ALLOWED}); it is not \
             shown, in case it is the secret (each line is NAME=VALUE)"
        ),
    }
}

/// A custom header: a name HTTP allows (not one of [`RESERVED_HEADERS`], the
/// headers a delivery's own meaning is in: `serve` would refuse every
/// delivery, and `send` sets them itself), and a
/// value that can be sent in a header and is not empty, each without the
/// white space around it (which HTTP drops from a value as it arrives).
/// The error never quotes the value, a secret. The same name given twice
/// is two accepted values (while rotating a header's secret).
fn header(name: &str, value: &str) -> Result<(String, String), String> {
    let (name, value) = (name.trim(), value.trim());
    if name.is_empty() {
        return Err("expected NAME=VALUE, with a header name before the `=`".to_owned());
    }
    if HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(not_a_name(name));
    }
    // A secret alone, without its `NAME=` (base64 ends in `=` or `==`):
    // what comes before the `=` may be the secret, so it is not shown.
    if value.bytes().all(|b| b == b'=') {
        return Err(format!(
            "the value after the first `=` is {}: a custom header is NAME=VALUE, its value a \
             shared secret; the text before the `=` is not shown, in case the line is a \
             secret alone (base64 ends in `=`): write NAME=SECRET",
            if value.is_empty() {
                "empty"
            } else {
                "only `=`"
            }
        ));
    }
    if RESERVED_HEADERS
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name))
    {
        return Err(format!(
            "{name} cannot be a custom header: it is part of every delivery \
             (its signature, event name, content type, encoding or length, or the \
             resent signature `send` adds)"
        ));
    }
    if HOP_BY_HOP_HEADERS
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name))
    {
        return Err(format!(
            "{name} cannot be a custom header: a proxy in front of the receiver may drop \
             or rewrite it, and then every delivery would be refused"
        ));
    }
    if HeaderValue::from_str(value).is_err() {
        return Err(format!(
            "the value of {name} cannot be sent in an HTTP header (it holds a control character)"
        ));
    }
    Ok((name.to_owned(), value.to_owned()))
}

/// A warning when `file`, which holds secrets (`holds`: "tokens"), is open
/// to other users of this machine: anyone may read it (they learn the
/// secrets) or change it (a token they add is accepted at the next reload),
/// whoever owns it; or the user `serve` runs as owns it and lets its group
/// read or change it. A file someone else owns and shares with `serve`'s
/// group to read (a Kubernetes secret with `fsGroup`) is as it must be. `None` when nothing
/// is to be said (and on systems without Unix permissions).
pub fn open_to_others(file: &Path, holds: &str) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::metadata(file).ok()?;
        let mode = meta.permissions().mode() & 0o777;
        // SAFETY: `geteuid` has no preconditions and cannot fail.
        let own = meta.uid() == unsafe { libc::geteuid() };
        let what = if mode & 0o002 != 0 {
            "can be changed by any user of this machine"
        } else if mode & 0o004 != 0 {
            "can be read by any user of this machine"
        } else if own && mode & 0o020 != 0 {
            "can be changed by other users of this machine"
        } else if own && mode & 0o040 != 0 {
            "can be read by other users of this machine"
        } else {
            return None;
        };
        // One step to a file nobody else can use: its owner keeps it to
        // itself; a file someone else owns keeps what it shares with its
        // group, and nothing for the others.
        let fix = if own {
            "`chmod 600` it"
        } else if mode & 0o006 == 0o006 {
            "`chmod o-rw` it"
        } else if mode & 0o002 != 0 {
            "`chmod o-w` it"
        } else {
            "`chmod o-r` it"
        };
        Some(format!(
            "{} {what} (mode {mode:o}) and holds {holds}: {fix} (on Kubernetes, \
             `defaultMode: 0400` on the secret's volume)",
            file.display()
        ))
    }
    #[cfg(not(unix))]
    {
        let _ = (file, holds);
        None
    }
}

/// The largest token or header file read: far more than any list of
/// secrets, and a bound on what a wrong path (a log, a device) costs.
const MAX_FILE: u64 = 64 * 1024;

/// The files read with a byte order mark at their last reading, so that
/// reading one again (every few seconds, on SIGHUP) warns of it once, and
/// again only once it was saved without one and then with one again.
static WITH_BOM: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// Records whether `path` starts with a byte order mark: whether it did
/// not at its last reading (a warning is due).
fn with_bom(path: &Path, bom: bool) -> bool {
    let mut files = WITH_BOM
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let files = files.get_or_insert_with(HashSet::new);
    if bom {
        files.insert(path.to_owned())
    } else {
        files.remove(path);
        false
    }
}

/// The non-blank lines of `path`, trimmed, with their line numbers (past a
/// byte order mark); a file that cannot be read is said to be `flag`'s.
fn entries(path: &Path, flag: &str) -> Result<Vec<(usize, String)>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_FILE + 1).read_to_end(&mut bytes))
        .with_context(|| format!("reading {flag} {}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE {
        bail!(
            "{}: is larger than {} KiB, which no file of tokens or headers is",
            path.display(),
            MAX_FILE / 1024
        );
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| anyhow::anyhow!("{}: is not UTF-8 text", path.display()))?;
    // A byte order mark is no part of the first token or header name (and
    // white space to `trim`, it is not).
    let text = match text.strip_prefix('\u{feff}') {
        Some(text) => {
            if with_bom(path, true) {
                note!(
                    "warning: {} starts with a byte order mark (U+FEFF), read past: it is no \
                     part of a token or header (save the file without one)",
                    path.display()
                );
            }
            text
        }
        None => {
            with_bom(path, false);
            text
        }
    };
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
    fn a_byte_order_mark_is_no_part_of_a_token_or_header() {
        let tokens = file(b"\xef\xbb\xbft0ken\r\nprevious\n");
        assert_eq!(read_tokens(tokens.path()).unwrap(), ["t0ken", "previous"]);
        // Read again (as a reload does): the same.
        assert_eq!(read_tokens(tokens.path()).unwrap(), ["t0ken", "previous"]);
        assert_eq!(
            read_token(file(b"\xef\xbb\xbft0ken").path()).unwrap(),
            "t0ken"
        );
        let headers = file(b"\xef\xbb\xbfx-app-secret=s3cret\n");
        assert_eq!(
            read_headers(headers.path()).unwrap(),
            [("x-app-secret".to_owned(), "s3cret".to_owned())]
        );
        let read = sources(&[], &[tokens.path()]).read().unwrap();
        assert_eq!(read.tokens, ["t0ken", "previous"]);
        // Warned of once per file, and again once it comes back.
        let path = Path::new("/a/tokens");
        assert!(with_bom(path, true));
        assert!(!with_bom(path, true));
        assert!(!with_bom(path, false));
        assert!(with_bom(path, true));
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
        let big = file(&vec![b'a'; 64 * 1024 + 1]);
        let e = read_tokens(big.path()).unwrap_err().to_string();
        assert!(
            e.ends_with("is larger than 64 KiB, which no file of tokens or headers is"),
            "{e}"
        );
        let e = read_tokens(Path::new("/nonexistent/tokens")).unwrap_err();
        assert!(
            format!("{e:#}").starts_with("reading --token-file /nonexistent/tokens: "),
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

    fn sources(tokens: &[&str], token_files: &[&Path]) -> Sources {
        Sources {
            tokens: tokens.iter().map(|t| (*t).to_owned()).collect(),
            token_files: token_files.iter().map(|p| p.to_path_buf()).collect(),
            ..Sources::default()
        }
    }

    #[test]
    fn sources_put_arguments_first_and_each_token_once() {
        let f = file(b"b\na\nc\n");
        let read = sources(&["a"], &[f.path()]).read().unwrap();
        assert_eq!(read.tokens, ["a", "b", "c"]);
        assert!(read.headers.is_empty());
        assert_eq!(read.verifier().token_count(), 3);
        // Read again: a file that changed is read as it is now.
        std::fs::write(f.path(), "d\n").unwrap();
        let again = sources(&["a"], &[f.path()]).read().unwrap();
        assert_eq!(again.tokens, ["a", "d"]);
        assert_eq!(
            again.changes_from(&read),
            "2 tokens (1 added, 2 removed), 0 custom headers"
        );
        assert_eq!(read.changes_from(&read), "3 tokens, 0 custom headers");
    }

    #[test]
    fn a_token_or_header_name_given_twice_counts_once() {
        let f = file(b"a\n");
        let mut s = sources(&["a", "b", "a"], &[f.path()]);
        s.headers = vec!["x-app=one".to_owned(), "X-App=two".to_owned()];
        let read = s.read().unwrap();
        assert_eq!(read.tokens, ["a", "b"]);
        assert_eq!(read.headers.len(), 2);
        assert_eq!(read.changes_from(&read), "2 tokens, 1 custom header");
        // Either value of the header is accepted.
        let verifier = read.verifier();
        let body = b"{}";
        let signature = kustomer_webhooks::verify::sign(b"b", body);
        for value in ["one", "two", "three"] {
            let verified = verifier.verify(body, |name| match name {
                kustomer_webhooks::verify::SIGNATURE_HEADER => Some(signature.as_bytes()),
                "x-app" => Some(value.as_bytes()),
                _ => None,
            });
            assert_eq!(verified.is_ok(), value != "three", "{value}");
        }
    }

    #[test]
    fn sources_that_cannot_be_read_are_an_error_not_fewer_tokens() {
        let f = file(b"b\n");
        let s = sources(&["a"], &[f.path()]);
        std::fs::write(f.path(), "\n").unwrap();
        let e = s.read().unwrap_err().to_string();
        assert!(e.contains("holds no token"), "{e}");
        std::fs::remove_file(f.path()).unwrap();
        assert!(s.read().is_err());
        let e = Sources::default().read().unwrap_err().to_string();
        assert_eq!(e, "no token given: --token or --token-file");
    }

    #[test]
    fn header_changes_are_named_without_their_values() {
        let before = Secrets {
            tokens: vec!["t".to_owned()],
            headers: vec![
                ("x-app-secret".to_owned(), "s3cret".to_owned()),
                ("x-gone".to_owned(), "s3cret".to_owned()),
            ],
        };
        let after = Secrets {
            tokens: vec!["t".to_owned()],
            headers: vec![("x-app-secret".to_owned(), "s3cret-2".to_owned())],
        };
        let words = after.changes_from(&before);
        assert_eq!(
            words,
            "1 token, 1 custom header (changed: x-app-secret, x-gone)"
        );
        assert!(!words.contains("s3"));
        let debug = format!("{after:?}");
        assert_eq!(debug, r#"Secrets { tokens: 1, headers: ["x-app-secret"] }"#);
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

    /// A file of secrets other users can read or change is said to be so,
    /// naming the file and what it holds, never its contents.
    #[test]
    #[cfg(unix)]
    fn files_of_secrets_open_to_others_are_named() {
        use std::os::unix::fs::PermissionsExt;
        let f = file(b"s3cret\n");
        for (mode, want) in [
            (0o600, None),
            (0o400, None),
            (
                0o640,
                Some("can be read by other users of this machine (mode 640)"),
            ),
            (
                0o604,
                Some("can be read by any user of this machine (mode 604)"),
            ),
            (
                0o644,
                Some("can be read by any user of this machine (mode 644)"),
            ),
            (
                0o620,
                Some("can be changed by other users of this machine (mode 620)"),
            ),
            (
                0o666,
                Some("can be changed by any user of this machine (mode 666)"),
            ),
        ] {
            std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode)).unwrap();
            let said = open_to_others(f.path(), "tokens");
            match want {
                None => assert_eq!(said, None, "{mode:o}"),
                Some(want) => {
                    let said = said.unwrap();
                    assert!(
                        said.contains(want) && said.contains("holds tokens"),
                        "{said}"
                    );
                    assert!(!said.contains("s3cret"), "{said}");
                }
            }
        }
        assert_eq!(open_to_others(Path::new("/nonexistent/tf"), "tokens"), None);
        // Owned by someone else (root, for a process that is not), shared
        // with its group to read: as it must be.
        // SAFETY: `geteuid` has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            // Root gives it to another user.
            std::os::unix::fs::chown(f.path(), Some(65534), None).unwrap();
            std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o640)).unwrap();
            assert_eq!(open_to_others(f.path(), "tokens"), None);
            // Its group may even change it: the owner's choice, not `serve`'s.
            std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o660)).unwrap();
            assert_eq!(open_to_others(f.path(), "tokens"), None);
            // Anyone reading or changing it is said, whoever owns it.
            // (What it shares with its group is kept in the advice.)
            for (mode, what, fix) in [
                (0o644, "can be read by any user", "`chmod o-r` it"),
                (0o642, "can be changed by any user", "`chmod o-w` it"),
                (0o646, "can be changed by any user", "`chmod o-rw` it"),
            ] {
                std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode)).unwrap();
                let said = open_to_others(f.path(), "tokens").unwrap();
                assert!(
                    said.contains(what) && said.contains(fix),
                    "{mode:o}: {said}"
                );
            }
        } else {
            // Root's, readable by anyone (it holds no secret, but a token
            // file like it would be said).
            let said = open_to_others(Path::new("/etc/passwd"), "tokens").unwrap();
            assert!(
                said.contains("can be read by any user") && said.contains("`chmod o-r` it"),
                "{said}"
            );
        }
    }

    #[test]
    fn a_bad_header_line_is_named_without_its_value() {
        for (text, want) in [
            (&b"x-ok=1\njust-a-s3cret\n"[..], ":2: expected NAME=VALUE"),
            (b"=s3cret\n", ":1: expected NAME=VALUE, with a header name"),
            (
                b"x app=s3cret\n",
                ":1: the header name \"x\"\u{2026} goes on with white space, which no HTTP header name has",
            ),
            // Written as HTTP shows it, a padded secret split at its `=`:
            // only the name is quoted.
            // A line that is only the secret: nothing of it is shown.
            (
                b"c2Vj/s3cret==\n",
                ":1: the text before the first `=` is not an HTTP header name",
            ),
            (
                b"X-App-Secret: c2VjcmV0U2VjcmV0==\n",
                ":1: the header name \"X-App-Secret\"\u{2026} goes on with a `:` (write NAME=VALUE, not NAME: VALUE)",
            ),
            (
                b"x-app=s3\x07cret\n",
                ":1: the value of x-app cannot be sent in an HTTP header",
            ),
            (b"x-app=\n", ":1: the value after the first `=` is empty"),
            // A base64 secret alone, its padding read as the `=`: a name
            // HTTP allows, and an empty value or one of `=`; not shown.
            (
                b"c2VjcmV0c2VjcmV0=\n",
                ":1: the value after the first `=` is empty",
            ),
            (
                b"c2VjcmV0c2VjcmV0==\n",
                ":1: the value after the first `=` is only `=`: a custom header is NAME=VALUE",
            ),
            (
                b"X-Kustomer-Webhook-Signature=s3cret\n",
                ":1: X-Kustomer-Webhook-Signature cannot be a custom header",
            ),
            (
                b"content-type=application/s3cret\n",
                ":1: content-type cannot be a custom header",
            ),
            (
                b"X-Kustomer-Webhooks-Resent=s3cret\n",
                ":1: X-Kustomer-Webhooks-Resent cannot be a custom header",
            ),
            (
                b"Host=s3cret.example\n",
                ":1: Host cannot be a custom header: a proxy in front of the receiver",
            ),
            (
                b"keep-alive=s3cret\n",
                ":1: keep-alive cannot be a custom header: a proxy",
            ),
            (b"\n", "holds no header"),
        ] {
            let f = file(text);
            let e = read_headers(f.path()).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
            // (The file's random name may hold "s3" too.)
            let named = e.replace(&f.path().display().to_string(), "FILE");
            assert!(
                !named.contains("s3") && !named.contains("c2Vj"),
                "the value leaked: {e}"
            );
        }
    }
}
