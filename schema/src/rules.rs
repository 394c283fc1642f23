//! Where a value sits in a Kustomer event decides which rules apply to it.
//!
//! Inference itself is generic; a [`Role`] carries what Kustomer's
//! documentation says: which locations share one definition (every relationship
//! value, every `links` object, every change entry), which keys are typed by a
//! suffix (`attributes.custom`), and which strings are dates or ids.

/// The part a location plays in an event envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Role {
    /// No Kustomer rule: plain inference.
    Plain,
    /// The envelope itself (the root of a sample).
    Envelope,
    /// `data`: the JSON:API resource object.
    Resource,
    /// `data.attributes`.
    Attributes,
    /// `data.attributes.custom`: org-defined keys typed by their suffix.
    CustomMap,
    /// A value of `data.attributes.custom`.
    Custom(Option<Suffix>),
    /// `data.relationships`: a map whose every value is a [`Role::Relationship`].
    RelationshipMap,
    /// One relationship: some mix of `data {type, id}`, `links`, `meta`.
    Relationship,
    /// `data {type, id}` inside a relationship.
    ResourceIdentifier,
    /// Any `links` object (`{self, related, …}`).
    Links,
    /// `changes`: `{attributes, relationships}`.
    Changes,
    /// `changes.attributes` or `changes.relationships`: maps of [`Role::Change`].
    ChangeMap,
    /// One change entry: `{op, before, after}`.
    Change,
    /// A change's `op`: `replace`, `add`, `remove`, and whatever comes next.
    Op,
    /// A change's `before`/`after`: any JSON. Their values are type evidence
    /// for the attribute they describe, so they are recorded there instead.
    Any,
}

/// Names of the definitions every resource shares.
pub(crate) const SHARED_DEFINITIONS: [&str; 4] =
    ["Change", "Links", "Relationship", "ResourceIdentifier"];

/// The values of a change's `op` that Kustomer documents; the set stays open.
pub(crate) const KNOWN_OPS: [&str; 3] = ["add", "remove", "replace"];

impl Role {
    /// The role of the value under `key` of an object playing `self`.
    pub(crate) fn child(self, key: &str) -> Role {
        match (self, key) {
            (Role::Envelope, "data") => Role::Resource,
            (Role::Envelope, "changes") => Role::Changes,
            (Role::Resource, "attributes") => Role::Attributes,
            (Role::Resource, "relationships") => Role::RelationshipMap,
            (Role::Resource | Role::Relationship, "links") => Role::Links,
            (Role::Attributes, "custom") => Role::CustomMap,
            // A custom attribute without a known suffix has no type Kustomer
            // names: any JSON, whatever the samples held.
            (Role::CustomMap, key) => match Suffix::of(key) {
                Some(suffix) => Role::Custom(Some(suffix)),
                None => Role::Any,
            },
            (Role::RelationshipMap, _) => Role::Relationship,
            (Role::Relationship, "data") => Role::ResourceIdentifier,
            (Role::Changes, "attributes" | "relationships") => Role::ChangeMap,
            (Role::ChangeMap, _) => Role::Change,
            (Role::Change, "op") => Role::Op,
            (Role::Change, "before" | "after") => Role::Any,
            _ => Role::Plain,
        }
    }

    /// The definition that objects in this role are gathered into, if any.
    ///
    /// `resource` is the resource's type name in PascalCase (`Customer`).
    pub(crate) fn definition(self, resource: &str) -> Option<String> {
        match self {
            Role::Resource => Some(resource.to_owned()),
            Role::Attributes => Some(format!("{resource}Attributes")),
            Role::RelationshipMap => Some(format!("{resource}Relationships")),
            Role::Changes => Some(format!("{resource}Changes")),
            Role::Relationship => Some("Relationship".to_owned()),
            Role::ResourceIdentifier => Some("ResourceIdentifier".to_owned()),
            Role::Links => Some("Links".to_owned()),
            Role::Change => Some("Change".to_owned()),
            _ => None,
        }
    }

    /// Whether the definition of this role is the same for every resource.
    pub(crate) fn is_shared(self) -> bool {
        matches!(
            self,
            Role::Relationship | Role::ResourceIdentifier | Role::Links | Role::Change
        )
    }

    /// What a Kustomer rule says objects in this role hold, whatever the
    /// samples showed: every relationship may carry `data`, `links` and
    /// `meta`, every resource identifier a `type` and a 24-hex `id`, and so on.
    pub(crate) fn baseline(self) -> Option<serde_json::Value> {
        use serde_json::json;
        match self {
            Role::Relationship => Some(json!({"data": {}, "links": {}, "meta": {}})),
            Role::ResourceIdentifier => Some(json!({"type": "", "id": "000000000000000000000000"})),
            Role::Links => Some(json!({"self": ""})),
            Role::Change => Some(json!({"op": ""})),
            Role::Changes => Some(json!({"attributes": {}, "relationships": {}})),
            _ => None,
        }
    }

    /// Whether objects here are rendered in place (and so may be hoisted into
    /// a definition when the same shape repeats).
    pub(crate) fn is_inline(self) -> bool {
        matches!(self, Role::Plain | Role::Custom(_))
    }
}

/// The type a custom attribute's camelCase suffix names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Suffix {
    /// `Str`: a short string (at most 1,024 characters).
    Str,
    /// `Txt`: multi-line text.
    Txt,
    /// `Num`: a number, integer or float, possibly beyond 32 bits.
    Num,
    /// `At`: an RFC 3339 date-time.
    At,
    /// `Bool`: a boolean.
    Bool,
    /// `Url`: a URL string.
    Url,
    /// `Id`: the id of another object.
    Id,
}

impl Suffix {
    /// Every suffix, in the order they are documented.
    pub const ALL: [Suffix; 7] = [
        Suffix::Str,
        Suffix::Txt,
        Suffix::Num,
        Suffix::At,
        Suffix::Bool,
        Suffix::Url,
        Suffix::Id,
    ];

    /// The suffix as it is written at the end of a key.
    pub fn as_str(self) -> &'static str {
        match self {
            Suffix::Str => "Str",
            Suffix::Txt => "Txt",
            Suffix::Num => "Num",
            Suffix::At => "At",
            Suffix::Bool => "Bool",
            Suffix::Url => "Url",
            Suffix::Id => "Id",
        }
    }

    /// The suffix a custom-attribute key ends with, if it is a known one.
    ///
    /// The suffix must follow at least one other character: `Num` alone is not
    /// a number-typed key.
    pub fn of(key: &str) -> Option<Suffix> {
        Suffix::ALL
            .into_iter()
            .find(|s| key.len() > s.as_str().len() && key.ends_with(s.as_str()))
    }

    /// The regular expression matching keys with this suffix, as used in
    /// `patternProperties`.
    pub(crate) fn pattern(self) -> String {
        format!("^.+{}$", self.as_str())
    }
}

/// Whether `s` is an ISO 8601 / RFC 3339 date-time as Kustomer writes them
/// (`2021-04-26T21:33:54.763Z`, with or without fractional seconds).
pub fn is_date_time(s: &str) -> bool {
    // The cheap shape test first: most strings are rejected without parsing.
    let b = s.as_bytes();
    b.len() >= 20
        && s.is_ascii()
        && b[4] == b'-'
        && b[10] == b'T'
        && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

/// Whether `s` is a Kustomer object id: 24 lowercase hexadecimal digits.
pub fn is_object_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Names for repeated shapes that Kustomer's own vocabulary names better than
/// their keys do: a shape found only under these keys gets this name.
pub(crate) const KNOWN_SHAPES: [(&[&str], &str); 1] = [(
    // A conversation's snapshots of who handled it at each milestone.
    &[
        "firstDone",
        "firstResponse",
        "firstResponseSinceLastDone",
        "lastDone",
        "lastResponse",
    ],
    "Milestone",
)];

/// `customer` → `Customer`, `kobject_order` → `KobjectOrder`, `firstDone` → `FirstDone`.
pub fn pascal_case(s: &str) -> String {
    pascal_of(&words(s))
}

/// [`pascal_case`] as it was before a run of capitals was split before its
/// last (`VIPInfo` → `Vipinfo`, not `VipInfo`): what models generated then
/// named a type, which keeps its name.
pub fn pascal_case_runs_joined(s: &str) -> String {
    pascal_of(&words_with(s, false, false))
}

fn pascal_of(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(first) => first.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}

/// The type names the generated Rust models use for something else: the
/// runtime's and `serde_json`'s types a model file imports, the types the
/// models module declares (`AnyEvent`, `OtherEvent`), and the standard
/// types a model's fields are written with, and the prelude's `Option`
/// and `Result` variants the generated code writes (an event type named
/// `None` would hide `Option::None`). No struct, definition or event type
/// is given one of them.
pub const RESERVED_TYPE_NAMES: [&str; 19] = [
    "AnyEvent",
    "Box",
    "Change",
    "DateTime",
    "Err",
    "Extra",
    "Id",
    "Map",
    "None",
    "Number",
    "Ok",
    "Option",
    "OtherEvent",
    "Result",
    "Some",
    "Str",
    "String",
    "Value",
    "Vec",
];

/// The Rust type of an event: its name without `kustomer.`, in PascalCase
/// (`kustomer.customer.update` → `CustomerUpdate`). A name that would
/// start with a digit, be empty, be `Self` or `Other` or be a
/// [reserved](RESERVED_TYPE_NAMES) or shared definition's name gets `Event`
/// before it
/// (`kustomer.3pl.create` → `Event3plCreate`).
pub fn event_type_name(name: &str) -> String {
    let rest = name.strip_prefix("kustomer.").unwrap_or(name);
    let v = pascal_case(&rest.replace('.', "_"));
    // `Other` is `AnyEvent`'s variant for the events without a model.
    let clashes = v == "Self"
        || v == "Other"
        || RESERVED_TYPE_NAMES.contains(&v.as_str())
        || SHARED_DEFINITIONS.contains(&v.as_str());
    if v.is_empty() || v.starts_with(|c: char| c.is_ascii_digit()) || clashes {
        format!("Event{v}")
    } else {
        v
    }
}

/// `AvgSatScoreNum` → `avg_sat_score_num`, `self` → `self`.
pub fn snake_case(s: &str) -> String {
    words(s).join("_")
}

/// Splits a key into its lowercase words at camelCase boundaries and
/// non-alphanumerics (`AvgSatScoreNum` → `avg`, `sat`, `score`, `num`).
/// Only ASCII letters and digits make words: this names types, which
/// must not change under code written against them.
pub fn words(s: &str) -> Vec<String> {
    words_with(s, false, true)
}

/// A key's words in snake case as a field's name: as [`snake_case`], but
/// letters outside ASCII are written in ASCII where there is a usual way
/// (`straßeName` → `strasse_name`, `ключ` → `klyuch`, a mark written as a
/// character of its own is left out), rather than separating words; other
/// characters (ideographs, emoji) separate words as punctuation does.
pub fn field_snake_case(s: &str) -> String {
    words_with(s, true, true).join("_")
}

/// [`field_snake_case`] as it was before a run of capitals was split before
/// its last (`customerIDStr` → `customer_idstr`, not `customer_id_str`):
/// what models generated then named a field, which keeps its name.
pub fn field_snake_case_runs_joined(s: &str) -> String {
    words_with(s, true, false).join("_")
}

fn words_with(s: &str, transliterate: bool, split_runs: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    // Whether the last letter taken was an ASCII capital.
    let mut prev_upper = false;
    let chars: Vec<char> = s.chars().collect();
    for (i, &ch) in chars.iter().enumerate() {
        if !ch.is_ascii_alphanumeric() {
            // A mark written as a character of its own (`e` and U+0301 for
            // `é`) belongs to the letter before it.
            if transliterate && ('\u{300}'..='\u{36f}').contains(&ch) {
                continue;
            }
            let before = cur.len();
            if transliterate && ascii_letters(ch, &mut cur) {
                let upper = ch.is_uppercase();
                // As for an ASCII capital below: after a lowercase letter,
                // or as the last capital of a run (`paysTVAÉtranger` →
                // `pays`, `tva`, `etranger`).
                if before > 0
                    && ((upper && prev_lower)
                        || (split_runs && upper && prev_upper && ends_run(&chars, i, true)))
                {
                    let word = cur.split_off(before);
                    out.push(std::mem::replace(&mut cur, word));
                }
                // `ß`, which capitals keep (`STRAßE`), takes the case of
                // the letters around it.
                if !(split_runs && ch == 'ß') {
                    prev_lower = !upper;
                    prev_upper = upper;
                }
                continue;
            }
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            prev_upper = false;
            continue;
        }
        let upper = ch.is_ascii_uppercase();
        if upper && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        // The last capital of a run of them, followed by lowercase letters,
        // starts the next word: `customerIDStr` → `customer`, `id`, `str`,
        // `VIPInfo` → `vip`, `info`; but a plural `s` stays with the run
        // (`accountIDs` → `account`, `ids`).
        if split_runs
            && upper
            && prev_upper
            && !cur.is_empty()
            && ends_run(&chars, i, transliterate)
        {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = ch.is_ascii_lowercase() || ch.is_ascii_digit();
        prev_upper = upper;
        cur.push(ch.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Whether the capital at `chars[i]`, after another, is the last of their
/// run: lowercase letters follow it, and not only a plural `s`. Letters
/// outside ASCII count where they are written in ASCII (`transliterate`).
fn ends_run(chars: &[char], i: usize, transliterate: bool) -> bool {
    let lower = |c: &char| {
        if transliterate {
            // `ß` is as much a capital's letter as a small one's.
            c.is_lowercase() && *c != 'ß'
        } else {
            c.is_ascii_lowercase()
        }
    };
    let next = chars.get(i + 1);
    let plural = next == Some(&'s') && !chars.get(i + 2).is_some_and(lower);
    next.is_some_and(lower) && !plural
}

/// Writes a letter outside ASCII as lowercase ASCII letters onto `out`:
/// a Latin letter without its marks (`é` → `e`, `ß` → `ss`, `ø` → `o`),
/// Greek and Cyrillic letters by their usual transliteration (`λ` → `l`,
/// `ж` → `zh`). False, writing nothing, for any other character.
fn ascii_letters(ch: char, out: &mut String) -> bool {
    let Some(lower) = ch.to_lowercase().next() else {
        return false;
    };
    if lower.is_ascii_lowercase() {
        // `İ` lowercases to `i` and a combining dot.
        out.push(lower);
        return true;
    }
    let ascii = match lower {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'ĥ' | 'ħ' => "h",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'ĳ' => "ij",
        'ĵ' => "j",
        'ķ' | 'ĸ' => "k",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'ñ' | 'ń' | 'ņ' | 'ň' | 'ŉ' | 'ŋ' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' | 'ơ' => "o",
        'œ' => "oe",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'ś' | 'ŝ' | 'ş' | 'š' | 'ſ' | 'ș' => "s",
        'ß' => "ss",
        'ţ' | 'ť' | 'ŧ' | 'ț' => "t",
        'þ' => "th",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' | 'ư' => "u",
        // Vietnamese: the vowels with their tone marks, in Unicode's order.
        '\u{1ea1}'..='\u{1eb7}' => "a",
        '\u{1eb9}'..='\u{1ec7}' => "e",
        '\u{1ec9}'..='\u{1ecb}' => "i",
        '\u{1ecd}'..='\u{1ee3}' => "o",
        '\u{1ee5}'..='\u{1ef1}' => "u",
        '\u{1ef3}'..='\u{1ef9}' => "y",
        'ŵ' => "w",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        // Ligatures and digraphs, as their letters.
        'ﬀ' => "ff",
        'ﬁ' => "fi",
        'ﬂ' => "fl",
        'ﬃ' => "ffi",
        'ﬄ' => "ffl",
        'ﬅ' | 'ﬆ' => "st",
        'ǆ' | 'ǳ' => "dz",
        'ǉ' => "lj",
        'ǌ' => "nj",
        // Greek.
        'α' | 'ά' => "a",
        'β' => "b",
        'γ' => "g",
        'δ' => "d",
        'ε' | 'έ' => "e",
        'ζ' => "z",
        'η' | 'ή' => "i",
        'θ' => "th",
        'ι' | 'ί' | 'ϊ' | 'ΐ' => "i",
        'κ' => "k",
        'λ' => "l",
        'μ' => "m",
        'ν' => "n",
        'ξ' => "x",
        'ο' | 'ό' => "o",
        'π' => "p",
        'ρ' => "r",
        'σ' | 'ς' => "s",
        'τ' => "t",
        'υ' | 'ύ' | 'ϋ' | 'ΰ' => "y",
        'φ' => "f",
        'χ' => "ch",
        'ψ' => "ps",
        'ω' | 'ώ' => "o",
        // Cyrillic (Russian, Ukrainian).
        'а' => "a",
        'б' => "b",
        'в' => "v",
        'г' | 'ґ' => "g",
        'д' => "d",
        'е' | 'ё' | 'э' => "e",
        'є' => "ye",
        'ж' => "zh",
        'з' => "z",
        'и' | 'і' => "i",
        'ї' => "yi",
        'й' | 'ы' => "y",
        'к' => "k",
        'л' => "l",
        'м' => "m",
        'н' => "n",
        'о' => "o",
        'п' => "p",
        'р' => "r",
        'с' => "s",
        'т' => "t",
        'у' => "u",
        'ф' => "f",
        'х' => "kh",
        'ц' => "ts",
        'ч' => "ch",
        'ш' => "sh",
        'щ' => "shch",
        'ъ' | 'ь' => "",
        'ю' => "yu",
        'я' => "ya",
        _ => return false,
    };
    out.push_str(ascii);
    true
}

/// The Rust module the models of a resource type go in: its snake_case
/// name (`kobject-order` → `kobject_order`), with `resource_` before one
/// starting with a digit and `_resource` after one that is empty, a
/// keyword, or a name the models' own modules or the runtime's crate have.
pub fn module_name(resource: &str) -> String {
    let m = snake_case(resource);
    if m.starts_with(|c: char| c.is_ascii_digit()) {
        format!("resource_{m}")
    } else if m.is_empty()
        || m == "shared"
        || m == "mod"
        // A module named like the runtime's crate would shadow it.
        || m == "kustomer_webhooks"
        || is_keyword(&m)
    {
        format!("{m}_resource")
    } else {
        m
    }
}

/// Whether `s` is a Rust keyword (strict, reserved or weak), which a
/// name cannot be as it is.
pub fn is_keyword(s: &str) -> bool {
    matches!(
        s,
        "as" | "async"
            | "await"
            | "break"
            | "const"
            | "continue"
            | "crate"
            | "dyn"
            | "else"
            | "enum"
            | "extern"
            | "false"
            | "fn"
            | "for"
            | "if"
            | "impl"
            | "in"
            | "let"
            | "loop"
            | "match"
            | "mod"
            | "move"
            | "mut"
            | "pub"
            | "ref"
            | "return"
            | "self"
            | "Self"
            | "static"
            | "struct"
            | "super"
            | "trait"
            | "true"
            | "type"
            | "unsafe"
            | "use"
            | "where"
            | "while"
            | "abstract"
            | "become"
            | "box"
            | "do"
            | "final"
            | "macro"
            | "override"
            | "priv"
            | "try"
            | "typeof"
            | "unsized"
            | "virtual"
            | "yield"
            | "gen"
            | "union"
            | "raw"
            | "safe"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_are_read_from_the_end_of_the_key() {
        assert_eq!(Suffix::of("AvgSatScoreNum"), Some(Suffix::Num));
        assert_eq!(Suffix::of("customerIdStr"), Some(Suffix::Str));
        assert_eq!(Suffix::of("lastOrderAt"), Some(Suffix::At));
        assert_eq!(Suffix::of("vipBool"), Some(Suffix::Bool));
        assert_eq!(Suffix::of("notesTxt"), Some(Suffix::Txt));
        assert_eq!(Suffix::of("homepageUrl"), Some(Suffix::Url));
        assert_eq!(Suffix::of("ownerId"), Some(Suffix::Id));
        assert_eq!(Suffix::of("Num"), None);
        assert_eq!(Suffix::of("flat"), None);
        assert_eq!(Suffix::of("paid"), None);
        assert_eq!(Suffix::of("misc"), None);
    }

    #[test]
    fn dates_with_and_without_milliseconds() {
        assert!(is_date_time("2021-04-26T21:33:54.763Z"));
        assert!(is_date_time("2021-04-26T21:33:54Z"));
        assert!(is_date_time("2021-04-26T21:33:54+02:00"));
        assert!(!is_date_time("2021-04-26"));
        assert!(!is_date_time("2021-04-26 21:33:54Z"));
        assert!(!is_date_time("2021-13-26T21:33:54.763Z"));
        assert!(!is_date_time("not a date at all, no"));
        assert!(!is_date_time("ééééééééééééééééééééé"));
        assert!(!is_date_time("2021-04-26T21:33:54\u{2212}01:00"));
    }

    #[test]
    fn object_ids_are_24_lowercase_hex() {
        assert!(is_object_id("608731c238e15ad7655f702a"));
        assert!(!is_object_id("608731C238E15AD7655F702A"));
        assert!(!is_object_id("608731c238e15ad7655f702"));
        assert!(!is_object_id("SMfc21923fb52567c497514587616f7a1d"));
    }

    #[test]
    fn names() {
        assert_eq!(pascal_case("customer"), "Customer");
        assert_eq!(pascal_case("kobject_order"), "KobjectOrder");
        assert_eq!(
            pascal_case("firstResponseSinceLastDone"),
            "FirstResponseSinceLastDone"
        );
        assert_eq!(words("AvgSatScoreNum"), ["avg", "sat", "score", "num"]);
        assert_eq!(words("x-special-info"), ["x", "special", "info"]);
        // A run of capitals is one word; its last capital starts the next.
        for (key, snake) in [
            ("customerIDStr", "customer_id_str"),
            ("isVIPBool", "is_vip_bool"),
            ("HTTPSUrl", "https_url"),
            ("lastNPSAt", "last_nps_at"),
            ("ABTestStr", "ab_test_str"),
            ("lowerTAt", "lower_t_at"),
            ("customerID", "customer_id"),
            ("accountIDs", "account_ids"),
            ("accountIDsStr", "account_ids_str"),
            ("URLs", "urls"),
            ("HTML", "html"),
            ("ID2Str", "id2_str"),
            ("externalId", "external_id"),
        ] {
            assert_eq!(snake_case(key), snake, "{key}");
            assert_eq!(field_snake_case(key), snake, "{key}");
        }
        assert_eq!(pascal_case("VIPInfo"), "VipInfo");
        // Field names write letters outside ASCII in ASCII; others
        // separate words. Type names keep to ASCII.
        for (key, field) in [
            ("émoji😀", "emoji"),
            ("ünïStr", "uni_str"),
            ("ÜberWeisung", "uber_weisung"),
            ("straßeName", "strasse_name"),
            ("ключ", "klyuch"),
            ("Объём", "obem"),
            ("λόγος", "logos"),
            ("İstanbul", "istanbul"),
            ("București", "bucuresti"),
            ("Bucures\u{0327}ti", "bucuresti"),
            ("cafe\u{0301}Name", "cafe_name"),
            ("Nguyễn", "nguyen"),
            ("ﬁleName", "file_name"),
            ("ǅemalj", "dzemalj"),
            ("ǈubljana", "ljubljana"),
            ("名前Str", "str"),
            // A run of capitals ends as it does in ASCII.
            ("paysTVAÉtrangerStr", "pays_tva_etranger_str"),
            ("paysTVAEtrangerStr", "pays_tva_etranger_str"),
            ("ÉTATCivil", "etat_civil"),
            ("customerIDétail", "customer_i_detail"),
            ("ÜBERs", "ubers"),
            ("ÄÖÜs", "aous"),
            ("STRAßE", "strasse"),
            ("GRÖßE", "grosse"),
            ("STRAßENName", "strassen_name"),
            ("straßeName", "strasse_name"),
            ("a名b", "a_b"),
        ] {
            assert_eq!(field_snake_case(key), field, "{key}");
        }
        assert_eq!(snake_case("ünïStr"), "n_str");
        assert_eq!(snake_case("émoji😀"), "moji");
        assert_eq!(pascal_case("préférences"), "PrFRences");
        assert_eq!(
            event_type_name("kustomer.customer.update"),
            "CustomerUpdate"
        );
        assert_eq!(
            event_type_name("kustomer.3pl-shipment.create"),
            "Event3plShipmentCreate"
        );
        assert_eq!(event_type_name("kustomer.value"), "EventValue");
        assert_eq!(event_type_name("kustomer.links"), "EventLinks");
        assert_eq!(event_type_name("kustomer.self"), "EventSelf");
        assert_eq!(event_type_name("kustomer.none"), "EventNone");
        assert_eq!(event_type_name("kustomer.some"), "EventSome");
        // `AnyEvent::Other` holds the events without a model.
        assert_eq!(event_type_name("kustomer.other"), "EventOther");
        assert_eq!(event_type_name("kustomer."), "Event");
    }
}
