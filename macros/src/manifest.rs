//! The name the runtime goes by in the crate being compiled: a dependency
//! renamed in its `Cargo.toml` (`hooks = { package = "kustomer-webhooks", … }`)
//! is reached as `::hooks`, without `crate = "hooks"` on every attribute.
//!
//! Read from the manifest's text line by line (no TOML parser in the
//! macro's build; comments and what strings hold, multi-line ones included,
//! are text): an inline table, a `[dependencies.NAME]`
//! table, or a dotted `NAME.package = …` key, in any dependency table; and a
//! name the crate inherits from its workspace (`NAME.workspace = true`) whose
//! entry in the workspace's manifest is such a rename. Where the runtime is
//! also a dependency under its own name, or nothing is found, the runtime
//! is `::kustomer_webhooks`, as before.

use std::path::{Path, PathBuf};

/// The runtime's package name.
const PACKAGE: &str = "kustomer-webhooks";

/// The name the crate being compiled gives the runtime, when it renames it;
/// `None` for `kustomer_webhooks`. Read once per crate being compiled.
pub fn renamed_runtime() -> Option<String> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static SEEN: OnceLock<Mutex<HashMap<PathBuf, Option<String>>>> = OnceLock::new();
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let seen = SEEN.get_or_init(Default::default);
    if let Some(name) = seen.lock().ok()?.get(&dir) {
        return name.clone();
    }
    let name = renamed_in(&dir);
    if let Ok(mut seen) = seen.lock() {
        seen.insert(dir, name.clone());
    }
    name
}

/// [`renamed_runtime`] for the crate whose manifest is in `dir`.
fn renamed_in(dir: &Path) -> Option<String> {
    let own = std::fs::read_to_string(dir.join("Cargo.toml")).ok()?;
    let entries = dependencies(&own);
    if entries.iter().any(|e| is_own_name(&e.key)) {
        return None;
    }
    if let Some(e) = entries
        .iter()
        .find(|e| e.package.as_deref() == Some(PACKAGE))
    {
        return Some(e.key.replace('-', "_"));
    }
    // A name inherited from the workspace, renamed there.
    let inherited: Vec<&Entry> = entries.iter().filter(|e| e.workspace).collect();
    if inherited.is_empty() {
        return None;
    }
    let root = dir.ancestors().skip(1).find_map(|d| {
        let text = std::fs::read_to_string(d.join("Cargo.toml")).ok()?;
        logical_lines(&text)
            .iter()
            .any(|l| l.trim() == "[workspace]")
            .then_some(text)
    })?;
    let workspace = dependencies(&root);
    inherited.iter().find_map(|e| {
        workspace
            .iter()
            .any(|w| w.key == e.key && w.package.as_deref() == Some(PACKAGE))
            .then(|| e.key.replace('-', "_"))
    })
}

/// Whether a dependency's key is the runtime's own name.
fn is_own_name(key: &str) -> bool {
    key == PACKAGE || key == "kustomer_webhooks"
}

/// One dependency as the manifest lists it.
#[derive(Debug, Default, PartialEq)]
struct Entry {
    /// Its key: the name the crate uses it by.
    key: String,
    /// Its `package`, when given.
    package: Option<String>,
    /// Whether it is inherited from the workspace (`workspace = true`).
    workspace: bool,
}

/// The dependencies of every dependency table of a manifest's text
/// (`[dependencies]`, `[dev-dependencies]`, `[build-dependencies]`, their
/// `[target.….…]` forms and `[workspace.dependencies]`).
fn dependencies(text: &str) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    // In a dependency table (`Some(None)`), or in one dependency's own
    // table (`Some(Some(index))`, `[dependencies.NAME]`).
    let mut table: Option<Option<usize>> = None;
    for line in logical_lines(text) {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let header = header.trim_end_matches(']').trim();
            table = dependency_table(header).map(|own| {
                own.map(|key| {
                    entries.push(Entry {
                        key,
                        ..Entry::default()
                    });
                    entries.len() - 1
                })
            });
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (unquoted(key.trim()), value.trim());
        match table {
            Some(Some(index)) => match key {
                "package" => entries[index].package = string_value(value),
                "workspace" => entries[index].workspace = value == "true",
                _ => {}
            },
            Some(None) => {
                // `NAME.package = "…"`, `NAME.workspace = true`, or
                // `NAME = …` (a version, or an inline table).
                let (name, field) = match key.split_once('.') {
                    Some((name, field)) => (unquoted(name.trim()), Some(field.trim())),
                    None => (key, None),
                };
                let at = match entries.iter().position(|e| e.key == name) {
                    Some(at) => at,
                    None => {
                        entries.push(Entry {
                            key: name.to_owned(),
                            ..Entry::default()
                        });
                        entries.len() - 1
                    }
                };
                let entry = &mut entries[at];
                match field {
                    Some("package") => entry.package = string_value(value),
                    Some("workspace") => entry.workspace = value == "true",
                    Some(_) => {}
                    None => {
                        if let Some(inline) = value.strip_prefix('{') {
                            for part in inline.trim_end_matches('}').split(',') {
                                if let Some((k, v)) = part.split_once('=') {
                                    match unquoted(k.trim()) {
                                        "package" => entry.package = string_value(v.trim()),
                                        "workspace" => entry.workspace = v.trim() == "true",
                                        _ => {}
                                    }
                                }
                            }
                        }
                    }
                }
            }
            None => {}
        }
    }
    entries
}

/// The manifest's lines without their comments, a value that goes on over
/// several lines (an array in an inline table, `features = [` then one
/// feature a line) joined into one, and each multi-line string (`"""…"""`
/// or `'''…'''`, such as a long `description`) read as an empty one, `""`:
/// what it holds (a `[dependencies]` line, a brace, a `#`) is text, not TOML.
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let (mut current, mut depth) = (String::new(), 0i32);
    // The delimiter that ends the multi-line string being read, if any.
    let mut multi: Option<&str> = None;
    for line in text.lines() {
        let mut kept = String::new();
        let mut rest = line;
        'line: loop {
            if let Some(close) = multi {
                let Some(at) = closing(rest, close) else {
                    break 'line;
                };
                // A closing delimiter may be followed by up to two quotes of
                // the string's own.
                let quote = if close == "'''" { '\'' } else { '"' };
                rest = rest[at + close.len()..].trim_start_matches(quote);
                multi = None;
            }
            let mut quote: Option<char> = None;
            let mut chars = rest.char_indices();
            while let Some((i, c)) = chars.next() {
                match (quote, c) {
                    (None, '"' | '\'') => {
                        let triple = if c == '"' { "\"\"\"" } else { "'''" };
                        if rest[i..].starts_with(triple) {
                            kept.push_str("\"\"");
                            multi = Some(triple);
                            rest = &rest[i + triple.len()..];
                            continue 'line;
                        }
                        quote = Some(c);
                    }
                    // An escape in a basic string: the next character is the
                    // string's.
                    (Some('"'), '\\') => {
                        kept.push(c);
                        if let Some((_, next)) = chars.next() {
                            kept.push(next);
                        }
                        continue;
                    }
                    (Some(q), c) if c == q => quote = None,
                    (None, '#') => break 'line,
                    (None, '{' | '[') => depth += 1,
                    (None, '}' | ']') => depth -= 1,
                    _ => {}
                }
                kept.push(c);
            }
            break;
        }
        if !current.is_empty() && !kept.trim().is_empty() {
            current.push(' ');
        }
        current.push_str(kept.trim());
        if depth <= 0 && multi.is_none() {
            lines.push(std::mem::take(&mut current));
            depth = 0;
        }
    }
    lines.push(current);
    lines
}

/// Where `close` (`"""` or `'''`) ends a multi-line string in `rest`: in a
/// basic one (`"""`), a character after a backslash is the string's own
/// (`"""a \""" b"""` is `a """ b`).
fn closing(rest: &str, close: &str) -> Option<usize> {
    if close == "'''" {
        return rest.find(close);
    }
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
        } else if bytes[i..].starts_with(close.as_bytes()) {
            return Some(i);
        } else {
            i += 1;
        }
    }
    None
}

/// What a table header is: `Some(None)` for a dependency table,
/// `Some(Some(name))` for one dependency's own table, `None` for another.
fn dependency_table(header: &str) -> Option<Option<String>> {
    const TABLES: [&str; 3] = ["dependencies", "dev-dependencies", "build-dependencies"];
    // `target.'cfg(unix)'.dependencies` (the `cfg` may hold dots) and
    // `workspace.dependencies`: what follows the table's own name.
    let rest = TABLES.iter().find_map(|table| {
        header.match_indices(table).find_map(|(at, _)| {
            let before = &header[..at];
            let plain = before.is_empty()
                || before == "workspace."
                || (before.starts_with("target.") && before.ends_with('.'));
            plain.then(|| &header[at + table.len()..])
        })
    })?;
    match rest.strip_prefix('.') {
        None if rest.is_empty() => Some(None),
        None => None,
        Some(name) => Some(Some(unquoted(name.trim()).to_owned())),
    }
}

/// A key without its quotes.
fn unquoted(key: &str) -> &str {
    key.trim_matches(|c| c == '"' || c == '\'')
}

/// A string value's text (`"kustomer-webhooks"`); `None` for another value.
fn string_value(value: &str) -> Option<String> {
    let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &value[1..];
    rest.find(quote).map(|end| rest[..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renamed(text: &str) -> Option<String> {
        let entries = dependencies(text);
        if entries.iter().any(|e| is_own_name(&e.key)) {
            return None;
        }
        entries
            .iter()
            .find(|e| e.package.as_deref() == Some(PACKAGE))
            .map(|e| e.key.replace('-', "_"))
    }

    #[test]
    fn a_renamed_runtime_is_found_in_each_form() {
        for (text, name) in [
            (
                "[dependencies]\nhooks = { package = \"kustomer-webhooks\", version = \"0.1\" }\n",
                Some("hooks"),
            ),
            (
                "[dependencies]\nmy-hooks = {version=\"0.1\",package='kustomer-webhooks'} # ok\n",
                Some("my_hooks"),
            ),
            (
                "[dependencies.hooks]\nversion = \"0.1\"\npackage = \"kustomer-webhooks\"\n",
                Some("hooks"),
            ),
            (
                "[dependencies]\nhooks.version = \"0.1\"\nhooks.package = \"kustomer-webhooks\"\n",
                Some("hooks"),
            ),
            (
                "[target.'cfg(unix)'.dependencies]\nkw = { package = \"kustomer-webhooks\" }\n",
                Some("kw"),
            ),
            (
                "[dev-dependencies]\nkw = { package = \"kustomer-webhooks\", path = \"x\" }\n",
                Some("kw"),
            ),
            // Under its own name (beside a rename, or alone): no rename.
            (
                "[dependencies]\nkustomer-webhooks = \"0.1\"\n[dev-dependencies]\nkw = { package = \"kustomer-webhooks\" }\n",
                None,
            ),
            (
                "[dependencies]\nkustomer-webhooks = { version = \"0.1\" }\n",
                None,
            ),
            ("[dependencies]\nkustomer_webhooks = \"0.1\"\n", None),
            // Another package renamed, or the name in a comment or another
            // table: nothing.
            (
                "[dependencies]\nhooks = { version = \"0.1\", features = [\n    \"axum\", # the router\n], package = \"kustomer-webhooks\" }\n",
                Some("hooks"),
            ),
            (
                "[workspace]\nmembers = [\n  \"a\",\n]\n[dependencies]\nkw = { package = \"kustomer-webhooks\" }\n",
                Some("kw"),
            ),
            ("[dependencies]\nj = { package = \"serde_json\" }\n", None),
            (
                "[dependencies]\n# kw = { package = \"kustomer-webhooks\" }\n",
                None,
            ),
            (
                "[package]\nname = \"kw\"\n[features]\nkw = { package = \"kustomer-webhooks\" }\n",
                None,
            ),
            ("", None),
        ] {
            assert_eq!(renamed(text).as_deref(), name, "{text}");
        }
    }

    /// What a multi-line string holds is text: a brace, a `#`, a table
    /// header or a dependency inside one neither hides nor makes one.
    #[test]
    fn multi_line_strings_are_text() {
        let rename = "[dependencies]\nhooks = { package = \"kustomer-webhooks\" }\n";
        for (before, name) in [
            (
                "[package]\ndescription = \"\"\"\nReceives { webhooks [\n# not a comment\n\"\"\"\n",
                Some("hooks"),
            ),
            (
                "[package]\ndescription = '''\n[dependencies]\nkustomer-webhooks = \"0.1\"\n'''\n",
                Some("hooks"),
            ),
            (
                "[package]\ndescription = \"\"\"one line { \"\"\"\nreadme = \"a\\\"{#b\"\n",
                Some("hooks"),
            ),
            // An escaped quote is the string's own.
            (
                "[package]\ndescription = \"\"\"a \\\"\"\" b\"\"\"\n",
                Some("hooks"),
            ),
            (
                "[package]\ndescription = \"\"\"\nends with a backslash \\\\\"\"\"\n",
                Some("hooks"),
            ),
            // Not TOML, and no panic: a backslash before a character of
            // several bytes.
            (
                "[package]\ndescription = \"\"\"\\\u{e9}\"\"\"\n",
                Some("hooks"),
            ),
            // Closed with quotes of its own before the delimiter.
            (
                "[package]\ndescription = \"\"\"\nsaid \"so\"\"\"\"\nkeywords = [\"{\"]\n",
                Some("hooks"),
            ),
        ] {
            let text = format!("{before}{rename}");
            assert_eq!(renamed(&text).as_deref(), name, "{text}");
        }
        // A dependency table inside a string is no table.
        let text = "[package]\ndescription = \"\"\"\n[dependencies]\nhooks = { package = \"kustomer-webhooks\" }\n\"\"\"\n";
        assert_eq!(renamed(text), None, "{text}");
    }

    #[test]
    fn an_inherited_dependency_is_marked_as_such() {
        let entries = dependencies(
            "[dependencies]\nhooks = { workspace = true, features = [\"axum\"] }\nserde.workspace = true\n",
        );
        assert!(entries.iter().all(|e| e.workspace), "{entries:?}");
        let root = dependencies(
            "[workspace]\nmembers = []\n[workspace.dependencies]\nhooks = { package = \"kustomer-webhooks\", path = \"runtime\" }\n",
        );
        assert_eq!(
            root,
            [Entry {
                key: "hooks".into(),
                package: Some(PACKAGE.into()),
                workspace: false
            }]
        );
    }

    #[test]
    fn a_name_inherited_from_a_workspace_that_renames_the_runtime_is_found() {
        let root = std::env::temp_dir().join(format!("kw-manifest-{}", std::process::id()));
        let member = root.join("crates").join("svc");
        std::fs::create_dir_all(&member).unwrap();
        std::fs::write(
            root.join("Cargo.toml"),
            "[workspace]\nmembers = [\"crates/svc\"]\n\n[workspace.dependencies]\nhooks = { package = \"kustomer-webhooks\", version = \"0.1\" }\n",
        )
        .unwrap();
        std::fs::write(
            member.join("Cargo.toml"),
            "[package]\nname = \"svc\"\n\n[dependencies]\nhooks.workspace = true\n",
        )
        .unwrap();
        assert_eq!(renamed_in(&member).as_deref(), Some("hooks"));
        // Inherited under its own name: no rename.
        std::fs::write(
            member.join("Cargo.toml"),
            "[dependencies]\nkustomer-webhooks = { workspace = true }\nhooks.workspace = true\n",
        )
        .unwrap();
        assert_eq!(renamed_in(&member), None);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn table_headers_are_told_apart() {
        assert_eq!(dependency_table("dependencies"), Some(None));
        assert_eq!(dependency_table("workspace.dependencies"), Some(None));
        assert_eq!(
            dependency_table("target.'cfg(target_os = \"linux\")'.dev-dependencies"),
            Some(None)
        );
        assert_eq!(
            dependency_table("dependencies.hooks"),
            Some(Some("hooks".into()))
        );
        assert_eq!(
            dependency_table("target.x86_64-unknown-linux-gnu.build-dependencies.\"kw\""),
            Some(Some("kw".into()))
        );
        assert_eq!(
            dependency_table("dependencies.my-dependencies"),
            Some(Some("my-dependencies".into()))
        );
        assert_eq!(dependency_table("package"), None);
        assert_eq!(dependency_table("features"), None);
        assert_eq!(dependency_table("package.metadata.dependencies"), None);
    }
}
