//! What changes between two generations of the models: the summary
//! `kustomer-webhooks regenerate` prints before it writes.
//!
//! It compares the generated Rust itself (the structs and their fields), so
//! it works against any models directory, whatever schemas produced it.

use std::collections::BTreeMap;
use std::fmt;

use quote::ToTokens;

/// One difference between the current models and the new ones.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelChange {
    /// A struct the current models lack.
    NewType {
        /// Its name.
        name: String,
    },
    /// A struct the new models no longer have.
    GoneType {
        /// Its name.
        name: String,
    },
    /// A field the struct did not have.
    NewField(ModelField),
    /// A field the struct no longer has: code that reads it stops compiling
    /// (its values are then kept in the struct's `extra`).
    GoneField(ModelField),
    /// A field that now reads another JSON key (a new key took its name,
    /// and the key it read moved to another field): code that uses it
    /// still compiles, and reads another value.
    KeyChanged {
        /// The field, with the key it reads now.
        field: ModelField,
        /// The key it read before.
        before: String,
    },
    /// A field whose Rust type changed.
    TypeChanged {
        /// The field, with its new type.
        field: ModelField,
        /// Its type before.
        before: String,
    },
}

/// A field of a generated struct.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelField {
    /// The struct (`CustomerCustom`).
    pub owner: String,
    /// The Rust field (`loyalty_tier_str`).
    pub name: String,
    /// The JSON key it reads (`loyaltyTierStr`).
    pub json: String,
    /// Its Rust type (`Option<Str>`).
    pub ty: String,
}

impl ModelChange {
    /// Whether code written against the current models may stop compiling.
    pub fn is_breaking(&self) -> bool {
        !matches!(self, ModelChange::NewType { .. } | ModelChange::NewField(_))
    }
}

/// Keys are written as Rust string literals (`"fooBar"`), so that a quote,
/// a line break or a character that turns text around, in a key, shows as an
/// escape rather than breaking or reordering the line.
impl fmt::Display for ModelChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelChange::NewType { name } => write!(f, "+ {name}: new type"),
            ModelChange::GoneType { name } => write!(f, "- {name}: type removed"),
            ModelChange::NewField(x) => {
                write!(
                    f,
                    "+ {}.{}: {} ({:?}): new field",
                    x.owner, x.name, x.ty, x.json
                )
            }
            ModelChange::GoneField(x) => write!(
                f,
                "- {}.{}: {} ({:?}): field removed",
                x.owner, x.name, x.ty, x.json
            ),
            ModelChange::KeyChanged { field, before } => write!(
                f,
                "! {}.{}: {} now reads {:?}, not {before:?}: code that uses it reads \
                 another value",
                field.owner, field.name, field.ty, field.json
            ),
            ModelChange::TypeChanged { field, before } => write!(
                f,
                "~ {}.{} ({:?}): type changed from {before} to {}",
                field.owner, field.name, field.json, field.ty
            ),
        }
    }
}

/// The structs of a models module: name → fields by Rust name. Files that
/// do not parse are skipped (the summary is advice, not a gate).
fn structs(files: &BTreeMap<String, String>) -> BTreeMap<String, BTreeMap<String, ModelField>> {
    let mut out = BTreeMap::new();
    for text in files.values() {
        let Ok(file) = syn::parse_file(text) else {
            continue;
        };
        for item in file.items {
            // An event type (`__event!(… CustomerUpdate(CustomerEvent) = …)`):
            // a type with no fields of its own, which handlers name.
            if let syn::Item::Macro(m) = &item
                && m.mac
                    .path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "__event")
                && let Some(name) = event_type(&m.mac.tokens)
            {
                out.insert(name, BTreeMap::new());
                continue;
            }
            let syn::Item::Struct(s) = item else { continue };
            let owner = s.ident.to_string();
            let mut fields = BTreeMap::new();
            if let syn::Fields::Named(named) = &s.fields {
                for field in &named.named {
                    let Some(ident) = &field.ident else { continue };
                    let name = ident.to_string();
                    if name == "extra" {
                        continue;
                    }
                    let json = json_key(&field.attrs).unwrap_or_else(|| name.clone());
                    let ty = type_text(&field.ty);
                    fields.insert(
                        name.clone(),
                        ModelField {
                            owner: owner.clone(),
                            name,
                            json,
                            ty,
                        },
                    );
                }
            }
            out.insert(owner, fields);
        }
    }
    out
}

/// The event type an `__event!` invocation declares: its first name past
/// the attributes (`#[doc = …] CustomerUpdate(CustomerEvent) = "…"`).
fn event_type(tokens: &proc_macro2::TokenStream) -> Option<String> {
    let mut tokens = tokens.clone().into_iter();
    while let Some(token) = tokens.next() {
        match token {
            // `#` and the bracketed attribute after it.
            proc_macro2::TokenTree::Punct(p) if p.as_char() == '#' => {
                tokens.next();
            }
            proc_macro2::TokenTree::Ident(ident) => return Some(ident.to_string()),
            _ => return None,
        }
    }
    None
}

/// The event types a models module declares, by the event each is of
/// (`kustomer.customer.update` → `CustomerUpdate`).
pub(crate) fn previous_event_types(files: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    files
        .values()
        .filter_map(|text| syn::parse_file(text).ok())
        .flat_map(|file| file.items)
        .filter_map(|item| match item {
            syn::Item::Macro(m)
                if m.mac
                    .path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "__event") =>
            {
                let name = event_type(&m.mac.tokens)?;
                // The event's name: the string after `=`.
                let event = m.mac.tokens.clone().into_iter().find_map(|token| {
                    let proc_macro2::TokenTree::Literal(literal) = token else {
                        return None;
                    };
                    let text: syn::LitStr = syn::parse2(literal.into_token_stream()).ok()?;
                    Some(text.value())
                })?;
                Some((event, name))
            }
            _ => None,
        })
        .collect()
}

/// What a models module's structs had: struct → JSON key → the field's
/// Rust name and its type as written (`Option<CustomerLvl5>`).
pub(crate) fn previous_fields(
    files: &BTreeMap<String, String>,
) -> BTreeMap<String, BTreeMap<String, (String, String)>> {
    structs(files)
        .into_iter()
        .map(|(owner, fields)| {
            let names = fields
                .into_values()
                .map(|field| (field.json, (field.name, field.ty)))
                .collect();
            (owner, names)
        })
        .collect()
}

/// The key of a `#[json("key", ...)]` attribute.
fn json_key(attrs: &[syn::Attribute]) -> Option<String> {
    let attr = attrs.iter().find(|a| a.path().is_ident("json"))?;
    let syn::Meta::List(list) = &attr.meta else {
        return None;
    };
    let first = list.tokens.clone().into_iter().next()?;
    let lit: syn::LitStr = syn::parse2(first.into_token_stream()).ok()?;
    Some(lit.value())
}

/// A type as a reader writes it: `Option<Change<Str>>`.
fn type_text(ty: &syn::Type) -> String {
    let text = ty.to_token_stream().to_string();
    let mut out = String::with_capacity(text.len());
    for part in text.split(' ') {
        let glue = matches!(part, "<" | ">" | "::" | ",")
            || out.ends_with('<')
            || out.ends_with("::")
            || out.ends_with(' ')
            || out.is_empty();
        if !glue {
            out.push(' ');
        }
        out.push_str(part);
        if part == "," {
            out.push(' ');
        }
    }
    out
}

/// What changes from the models `old` to the models `new` (file name →
/// source, as [`generate`](crate::generate) returns them and as they are on
/// disk): types added and removed, fields added and removed, fields whose
/// type changed; in name order.
pub fn summarize(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Vec<ModelChange> {
    let (old, new) = (structs(old), structs(new));
    let mut out = Vec::new();
    for (name, fields) in &new {
        let Some(before) = old.get(name) else {
            out.push(ModelChange::NewType { name: name.clone() });
            continue;
        };
        for (field_name, field) in fields {
            match before.get(field_name) {
                None => out.push(ModelChange::NewField(field.clone())),
                Some(was) if was.json != field.json => out.push(ModelChange::KeyChanged {
                    field: field.clone(),
                    before: was.json.clone(),
                }),
                Some(was) if was.ty != field.ty => out.push(ModelChange::TypeChanged {
                    field: field.clone(),
                    before: was.ty.clone(),
                }),
                Some(_) => {}
            }
        }
        for (field_name, field) in before {
            if !fields.contains_key(field_name) {
                out.push(ModelChange::GoneField(field.clone()));
            }
        }
    }
    for name in old.keys() {
        if !new.contains_key(name) {
            out.push(ModelChange::GoneType { name: name.clone() });
        }
    }
    out
}

/// The `.rs` files of a models directory, by file name; empty when the
/// directory does not exist yet.
pub fn read_models(dir: &std::path::Path) -> std::io::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rs")
            && let Some(name) = path.file_name().and_then(|n| n.to_str())
        {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            out.insert(name.to_owned(), text);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(text: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("customer.rs".to_owned(), text.to_owned())])
    }

    /// The summary's lines.
    fn said(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<String> {
        summarize(old, new)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn new_gone_and_changed_fields_and_types() {
        let old = files(
            r#"
            pub struct CustomerCustom {
                #[json("tierStr")] pub tier_str: Option<Str>,
                #[json("ordersNum")] pub orders_num: Option<i64>,
                #[json("oldFlagBool")] pub old_flag_bool: Option<bool>,
                pub extra: Map<String, Value>,
            }
            pub struct Gone { #[json("a")] pub a: Option<i64> }
            "#,
        );
        let new = files(
            r#"
            pub struct CustomerCustom {
                #[json("tierStr")] pub tier_str: Option<Str>,
                #[json("ordersNum")] pub orders_num: Option<Number>,
                #[json("loyaltyTierStr", nullable)] pub loyalty_tier_str: Option<Str>,
                pub extra: Map<String, Value>,
            }
            pub struct Fresh { #[json("b")] pub b: Option<Vec<Change<Str>>> }
            "#,
        );
        let text = said(&old, &new);
        assert_eq!(
            text,
            [
                "+ CustomerCustom.loyalty_tier_str: Option<Str> (\"loyaltyTierStr\"): new field",
                "~ CustomerCustom.orders_num (\"ordersNum\"): type changed from Option<i64> to Option<Number>",
                "- CustomerCustom.old_flag_bool: Option<bool> (\"oldFlagBool\"): field removed",
                "+ Fresh: new type",
                "- Gone: type removed",
            ]
        );
        let breaking: Vec<bool> = summarize(&old, &new)
            .iter()
            .map(ModelChange::is_breaking)
            .collect();
        assert_eq!(breaking, [false, true, true, false, true]);
    }

    #[test]
    fn keys_are_written_escaped() {
        let old = files("pub struct A {}");
        let new = files(
            r#"pub struct A {
                #[json("new\nline")] pub new_line: Option<Str>,
                #[json("quo\"te")] pub quo_te: Option<Str>,
                #[json("rtl\u{202e}Str")] pub rtl_str: Option<Str>,
                #[json("nul\u{0}key")] pub nul_key: Option<Str>,
            }"#,
        );
        assert_eq!(
            said(&old, &new),
            [
                r#"+ A.new_line: Option<Str> ("new\nline"): new field"#,
                r#"+ A.nul_key: Option<Str> ("nul\0key"): new field"#,
                r#"+ A.quo_te: Option<Str> ("quo\"te"): new field"#,
                r#"+ A.rtl_str: Option<Str> ("rtl\u{202e}Str"): new field"#,
            ]
        );
    }

    #[test]
    fn a_field_that_reads_another_key_is_a_breaking_change() {
        // A new key `FOO_BAR` sorts before `fooBar` and takes its name.
        let old = files(r#"pub struct A { #[json("fooBar")] pub foo_bar: Option<Str> }"#);
        let new = files(
            r#"pub struct A {
                #[json("FOO_BAR")] pub foo_bar: Option<Str>,
                #[json("fooBar")] pub foo_bar_2: Option<Str>,
            }"#,
        );
        let changes = summarize(&old, &new);
        let text: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "! A.foo_bar: Option<Str> now reads \"FOO_BAR\", not \"fooBar\": code that uses \
                 it reads another value",
                "+ A.foo_bar_2: Option<Str> (\"fooBar\"): new field",
            ]
        );
        assert!(changes[0].is_breaking());
    }

    /// Event types are types handlers name: one that appears or goes is
    /// said, as a struct is.
    #[test]
    fn event_types_that_appear_or_go_are_changes() {
        let event = |name: &str| {
            format!(
                "kustomer_webhooks::__event!(#[doc = \" The event.\"] {name}(CustomerEvent) = \
                 \"kustomer.x\");"
            )
        };
        let old = files(&format!(
            "{}\n{}",
            event("CustomerCreate"),
            event("CustomerUpdate")
        ));
        let new = files(&format!(
            "{}\n{}",
            event("CustomerCreate"),
            event("CustomerDelete")
        ));
        let text = said(&old, &new);
        assert_eq!(
            text,
            [
                "+ CustomerDelete: new type",
                "- CustomerUpdate: type removed"
            ]
        );
        // The generated models hold one event type per event.
        let generated = read_models(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../runtime/src/models"
        )))
        .unwrap();
        let types = structs(&generated);
        assert!(types.contains_key("CustomerUpdate") && types.contains_key("TeamCreate"));
    }

    #[test]
    fn the_same_models_have_no_changes() {
        let models = files("pub struct A { #[json(\"a\")] pub a: Option<i64> }");
        assert!(summarize(&models, &models).is_empty());
    }

    #[test]
    fn types_read_as_written() {
        let ty: syn::Type =
            syn::parse_str("Option < Vec < kustomer_webhooks :: Change < Str > > >").unwrap();
        assert_eq!(
            type_text(&ty),
            "Option<Vec<kustomer_webhooks::Change<Str>>>"
        );
        let ty: syn::Type = syn::parse_str("Map<String, Value>").unwrap();
        assert_eq!(type_text(&ty), "Map<String, Value>");
    }
}
