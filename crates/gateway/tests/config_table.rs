//! The README's configuration table cannot drift from the configuration the loader accepts.
//!
//! The keys the loader accepts are read from the raw config types themselves: a recording serde
//! `Deserializer` drives `RawConfig::deserialize` and notes the `fields` every struct hands to
//! `deserialize_struct` (what serde-reflection does), so nothing here lists keys by hand. The
//! README's keys are read from the tables of its "## Configuration" section:
//!
//! - the key column names full paths (`upstream.url`); several per row are allowed;
//! - a row whose key is a table (`oauth`), an array of tables (`oauth.providers`) or written
//!   `section.*` (`auth.jwt.*`) lists that table's fields in its meaning column: every backticked
//!   name outside parentheses, and `name = [{ a, b = { c } }]` for nested tables;
//! - a map with free-form keys (`upstream.env`) is documented by its own path.
//!
//! Every settable key must be in the README, and every key the README names must be accepted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mcpgate_gateway::auth::introspect::RawIntrospection;
use mcpgate_gateway::config::raw::RawConfig;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

// ---- the recording deserializer -----------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// A value: a string, number, bool, enum, or a list of them.
    Value,
    /// `[a.b]`: a struct.
    Table,
    /// `[[a.b]]`: a list of structs.
    Tables,
    /// A map whose keys the user chooses (`upstream.env`).
    Map,
}

#[derive(Default)]
struct State {
    keys: BTreeMap<String, Kind>,
    /// Keys whose value is being read, innermost last.
    stack: Vec<String>,
    /// Keys left out of this run because an earlier run failed there.
    skip: BTreeSet<String>,
    /// Where this run failed first.
    failed: Option<String>,
}

#[derive(Debug)]
struct Error(String);
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Error {}
impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

struct Rec<'a> {
    st: &'a RefCell<State>,
    path: String,
    /// An element of a list: a struct here makes the path an array of tables.
    in_seq: bool,
}

impl<'a> Rec<'a> {
    fn mark(&self, kind: Kind) {
        if !self.path.is_empty() {
            self.st.borrow_mut().keys.insert(self.path.clone(), kind);
        }
    }
    fn child(&self, name: &str) -> Rec<'a> {
        let path = if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        };
        Rec {
            st: self.st,
            path,
            in_seq: false,
        }
    }
    fn note_failure(&self) {
        let mut st = self.st.borrow_mut();
        if st.failed.is_none() {
            st.failed = st.stack.last().cloned();
        }
    }
}

macro_rules! leaf {
    ($($method:ident => $visit:ident($($value:expr)?)),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            self.mark(Kind::Value);
            v.$visit($($value)?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Rec<'_> {
    type Error = Error;

    leaf! {
        deserialize_any => visit_unit(),
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i64(0), deserialize_i16 => visit_i64(0),
        deserialize_i32 => visit_i64(0), deserialize_i64 => visit_i64(0),
        deserialize_u8 => visit_u64(0), deserialize_u16 => visit_u64(0),
        deserialize_u32 => visit_u64(0), deserialize_u64 => visit_u64(0),
        deserialize_f32 => visit_f64(0.0), deserialize_f64 => visit_f64(0.0),
        deserialize_char => visit_char('x'),
        deserialize_str => visit_str("x"), deserialize_string => visit_str("x"),
        deserialize_bytes => visit_bytes(b"x"), deserialize_byte_buf => visit_bytes(b"x"),
        deserialize_unit => visit_unit(),
        deserialize_identifier => visit_str("x"),
        deserialize_ignored_any => visit_unit(),
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_some(self)
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &'static str, v: V) -> Result<V::Value, Error> {
        self.deserialize_unit(v)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, v: V) -> Result<V::Value, Error> {
        v.visit_newtype_struct(self)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.mark(Kind::Value);
        v.visit_seq(One {
            rec: Some(Rec {
                st: self.st,
                path: self.path.clone(),
                in_seq: true,
            }),
        })
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, Error> {
        self.deserialize_seq(v)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(self, _: &'static str, _: usize, v: V) -> Result<V::Value, Error> {
        self.deserialize_seq(v)
    }
    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.mark(Kind::Map);
        let entry = self.child("*");
        v.visit_map(Entries {
            st: self.st,
            names: vec![("*", entry.path.clone())].into_iter(),
            pending: None,
        })
        .inspect_err(|_| self.note_failure())
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        self.mark(if self.in_seq { Kind::Tables } else { Kind::Table });
        let mut names = Vec::new();
        for f in fields {
            let path = self.child(f).path;
            if self.st.borrow().skip.contains(&path) {
                // Left out after a failure, but still a key the struct accepts.
                self.st.borrow_mut().keys.entry(path).or_insert(Kind::Value);
            } else {
                names.push((*f, path));
            }
        }
        v.visit_map(Entries {
            st: self.st,
            names: names.into_iter(),
            pending: None,
        })
        .inspect_err(|_| self.note_failure())
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        self.mark(Kind::Value);
        let first: de::value::StrDeserializer<'_, Error> = variants.first().copied().unwrap_or("x").into_deserializer();
        v.visit_enum(first)
    }
}

/// A list with one element.
struct One<'a> {
    rec: Option<Rec<'a>>,
}
impl<'de> SeqAccess<'de> for One<'_> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        self.rec.take().map(|r| seed.deserialize(r)).transpose()
    }
}

/// A struct's fields (or a map's one placeholder key), each with a value of its own path.
struct Entries<'a, I> {
    st: &'a RefCell<State>,
    names: I,
    pending: Option<String>,
}
impl<'de, I: Iterator<Item = (&'static str, String)>> MapAccess<'de> for Entries<'_, I> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let Some((name, path)) = self.names.next() else {
            return Ok(None);
        };
        {
            let mut st = self.st.borrow_mut();
            st.keys.entry(path.clone()).or_insert(Kind::Value);
            st.stack.push(path.clone());
        }
        self.pending = Some(path);
        let key: de::value::StrDeserializer<'_, Error> = name.into_deserializer();
        seed.deserialize(key).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let path = self.pending.take().unwrap_or_default();
        let value = seed.deserialize(Rec {
            st: self.st,
            path,
            in_seq: false,
        });
        let mut st = self.st.borrow_mut();
        match value {
            Ok(v) => {
                st.stack.pop();
                Ok(v)
            }
            Err(e) => {
                if st.failed.is_none() {
                    st.failed = st.stack.last().cloned();
                }
                Err(e)
            }
        }
    }
}

/// Every key path `T` accepts, with its kind. A section whose `Deserialize` is written by hand
/// and fails on the recorder's placeholder values is left out and returned apart, with the
/// error: the test then says which one it cannot see into.
fn reflect<'de, T: Deserialize<'de>>() -> (BTreeMap<String, Kind>, Vec<(String, String)>) {
    let st = RefCell::new(State::default());
    let mut opaque = Vec::new();
    for _ in 0..50 {
        {
            let mut s = st.borrow_mut();
            s.keys.clear();
            s.stack.clear();
            s.failed = None;
        }
        match T::deserialize(Rec {
            st: &st,
            path: String::new(),
            in_seq: false,
        }) {
            Ok(_) => return (st.into_inner().keys, opaque),
            Err(e) => {
                let mut s = st.borrow_mut();
                let Some(at) = s.failed.take() else {
                    panic!("the recorder failed outside any key: {e}");
                };
                assert!(s.skip.insert(at.clone()), "the recorder failed twice at {at}: {e}");
                opaque.push((at, e.0));
            }
        }
    }
    panic!("the recorder gave up after 50 runs");
}

/// The accepted key paths: reflected, with the hand-written sections filled in.
fn accepted() -> BTreeMap<String, Kind> {
    let (mut keys, opaque) = reflect::<RawConfig>();
    for (at, error) in opaque {
        if error.starts_with("duplicate field") {
            // An alias (`policy.rules.targets` for `tools`): accepted, already recorded.
            continue;
        }
        match at.as_str() {
            // `IntrospectionSection::deserialize`: a `RawIntrospection` plus the two ceilings on
            // calls it takes out first (crates/gateway/src/auth/introspect.rs).
            "auth.introspection" => {
                keys.insert(at.clone(), Kind::Table);
                let (fields, inner_opaque) = reflect::<RawIntrospection>();
                assert!(inner_opaque.is_empty(), "{inner_opaque:?}");
                for (k, kind) in fields {
                    keys.insert(format!("{at}.{k}"), kind);
                }
                for k in ["max_concurrent", "max_per_second"] {
                    keys.insert(format!("{at}.{k}"), Kind::Value);
                }
            }
            _ => panic!(
                "{at}: its Deserialize is written by hand and the recorder cannot see its keys ({error}); \
                 teach accepted() in this test which keys it takes"
            ),
        }
    }
    keys
}

// ---- the README -----------------------------------------------------------------------------

const README: &str = include_str!("../../../README.md");

/// The "## Configuration" section, up to the next `## ` heading.
fn config_section() -> &'static str {
    let start = README
        .find("\n## Configuration\n")
        .expect("README has a ## Configuration section");
    let body = &README[start + 1..];
    let end = body[3..].find("\n## ").map_or(body.len(), |i| i + 3);
    &body[..end]
}

/// A row's cells, split on `|` that are not escaped (`\|`).
fn cells(line: &str) -> Vec<String> {
    let row = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut chars = row.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '|' {
            out.push(String::new());
            continue;
        }
        let c = if c == '\\' && chars.peek() == Some(&'|') {
            chars.next().unwrap_or(c)
        } else {
            c
        };
        if let Some(cell) = out.last_mut() {
            cell.push(c);
        }
    }
    out.iter().map(|s| s.trim().to_string()).collect()
}

/// Backticked spans outside parentheses.
fn top_level_code(text: &str) -> Vec<String> {
    let (mut depth, mut out, mut chars) = (0i32, Vec::new(), text.chars());
    while let Some(c) = chars.next() {
        match c {
            '`' => {
                let code: String = chars.by_ref().take_while(|c| *c != '`').collect();
                if depth == 0 {
                    out.push(code);
                }
            }
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
    }
    out
}

fn is_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Field names in `name`, `name = true`, `name = [{ a, b = { c, d } }]`, prefixed by `prefix`.
/// Anything else (`[oauth]`, `X-API-Key`, `provider:<id>`) names no field.
fn fields_in(code: &str, prefix: &str, out: &mut Vec<String>) {
    let (name, value) = match code.split_once('=') {
        Some((n, v)) => (n.trim(), Some(v.trim())),
        None => (code.trim(), None),
    };
    if !is_name(name) {
        return;
    }
    let path = format!("{prefix}.{name}");
    out.push(path.clone());
    let Some(inner) = value
        .and_then(|v| v.strip_prefix('[').and_then(|v| v.strip_suffix(']')).or(Some(v)))
        .map(str::trim)
        .and_then(|v| v.strip_prefix('{').and_then(|v| v.strip_suffix('}')))
    else {
        return;
    };
    // Split on commas outside braces.
    let (mut depth, mut part) = (0, String::new());
    for c in inner.chars().chain([',']) {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                fields_in(&part, &path, out);
                part.clear();
                continue;
            }
            _ => {}
        }
        part.push(c);
    }
}

/// Every key path the README's configuration tables name.
fn documented(accepted: &BTreeMap<String, Kind>) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for line in config_section().lines().filter(|l| l.starts_with('|')) {
        let cells = cells(line);
        if cells.len() < 3 || cells[0] == "key" || cells[0].starts_with("---") {
            continue;
        }
        let meaning = cells[2..].join(" | ");
        for code in top_level_code(&cells[0]) {
            let (path, star) = match code.strip_suffix(".*") {
                Some(p) => (p.to_string(), true),
                None => (code.clone(), false),
            };
            keys.insert(path.clone());
            let table = matches!(accepted.get(&path), Some(Kind::Table | Kind::Tables));
            if star || table {
                let mut fields = Vec::new();
                for code in top_level_code(&meaning) {
                    fields_in(&code, &path, &mut fields);
                }
                keys.extend(fields);
            }
        }
    }
    keys
}

// ---- the checks -----------------------------------------------------------------------------

#[test]
fn readme_configuration_table_matches_the_config_types() {
    let accepted = accepted();
    let documented = documented(&accepted);

    // What must be documented: every value and every free-form map (not its keys); tables are
    // documented through their fields.
    let settable: BTreeSet<&String> = accepted
        .iter()
        .filter(|(path, kind)| matches!(kind, Kind::Value | Kind::Map) && !path.contains(".*"))
        .map(|(path, _)| path)
        .collect();
    let missing: Vec<&String> = settable.iter().copied().filter(|k| !documented.contains(*k)).collect();
    let extra: Vec<&String> = documented.iter().filter(|k| !accepted.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "README.md's ## Configuration tables and the config types (crates/gateway/src/config/raw.rs) disagree.\n\
         accepted but not in the README ({}): {missing:?}\n\
         in the README but refused by the loader ({}): {extra:?}",
        missing.len(),
        extra.len()
    );
}

/// The recorder sees what the loader sees: keys it reports are accepted by the TOML loader, and
/// a key it does not report is refused.
#[test]
fn recorder_agrees_with_the_loader() {
    let accepted = accepted();
    for (path, kind) in [
        ("upstream.url", Kind::Value),
        ("upstream.env", Kind::Map),
        ("auth.jwt", Kind::Table),
        ("auth.jwt.issuer", Kind::Value),
        ("oauth.providers", Kind::Tables),
        ("oauth.providers.client_id", Kind::Value),
        ("auth.hmac.clients.limits.per_day", Kind::Value),
        ("auth.introspection.max_per_second", Kind::Value),
    ] {
        assert_eq!(accepted.get(path), Some(&kind), "{path}");
    }
    assert!(
        !accepted.contains_key("upstream.embedded"),
        "#[serde(skip)] fields are not settable"
    );
    for (toml, ok) in [
        ("[upstream]\nurl = \"http://x\"", true),
        ("[upstream]\nurll = \"http://x\"", false),
        (
            "[[oauth.providers]]\nkind = \"github\"\nclient_id = \"c\"\nnot_a_field = 1",
            false,
        ),
        (
            "[auth.introspection]\nurl = \"https://x\"\nclient_id = \"c\"\nclient_secret_env = \"S\"\nmax_concurrent = 2",
            true,
        ),
        (
            "[auth.introspection]\nurl = \"https://x\"\nclient_id = \"c\"\nclient_secret_env = \"S\"\nnope = 2",
            false,
        ),
    ] {
        assert_eq!(RawConfig::from_toml(toml).is_ok(), ok, "{toml}");
    }
}

/// The README parser reads the row shapes the table uses.
#[test]
fn readme_parser_reads_the_row_shapes() {
    let mut out = Vec::new();
    fields_in(
        "clients = [{ id, secret_env, limits = { per_minute, per_day } }]",
        "auth.hmac",
        &mut out,
    );
    assert_eq!(
        out,
        [
            "auth.hmac.clients",
            "auth.hmac.clients.id",
            "auth.hmac.clients.secret_env",
            "auth.hmac.clients.limits",
            "auth.hmac.clients.limits.per_minute",
            "auth.hmac.clients.limits.per_day"
        ]
    );
    assert_eq!(
        top_level_code("`a` (`b`, `c`), `d` (x (`e`)) and `f = true`"),
        ["a", "d", "f = true"]
    );
    assert_eq!(cells(r"| `a` | 1 | x \| y |"), ["`a`", "1", r"x | y"]);
}
