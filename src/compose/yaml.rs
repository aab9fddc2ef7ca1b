//! The Compose file as written: a YAML tree whose every node remembers where it came from.
//!
//! This is the "raw" layer of the loader (ripgrep's low args). Files are parsed once with
//! `serde-saphyr` — which expands anchors, aliases and `<<` merge keys for us and reports
//! syntax errors with line and column — into [`Node`]s that keep their location, the location
//! of their key and their YAML tag (`!reset`, `!override`). Interpolation, `extends`,
//! `include` and multi-file merging all work on this tree so that every later error can point
//! at the exact key the user wrote. This module reads no files and knows nothing of Compose
//! semantics; turning the tree into the typed model is `normalize`'s job.

use std::fmt;

use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Spanned, Tagged};

/// Index of a source file in the loader's [`super::diag::Sources`].
pub type FileId = u32;

/// A position in a source file (1-based line and column, 0-based byte offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loc {
    pub file: FileId,
    pub line: u32,
    pub col: u32,
    pub offset: u32,
}

/// The YAML tags Compose gives a meaning to; any other tag is ignored like compose-go does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// `!reset`: remove the value inherited from an earlier file or `extends` base.
    Reset,
    /// `!override`: replace the inherited value instead of merging with it.
    Override,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(IndexMap<String, Node>),
}

/// One YAML node with its location. For a mapping value, `key_loc` is where its key stands,
/// which is where diagnostics about "this attribute" should point.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub loc: Loc,
    pub key_loc: Option<Loc>,
    pub tag: Option<Tag>,
}

impl Node {
    pub fn new(value: Value, loc: Loc) -> Self {
        Node {
            value,
            loc,
            key_loc: None,
            tag: None,
        }
    }

    pub fn null(loc: Loc) -> Self {
        Node::new(Value::Null, loc)
    }

    pub fn string(s: impl Into<String>, loc: Loc) -> Self {
        Node::new(Value::Str(s.into()), loc)
    }

    /// Where a diagnostic about this node should point: its key when it has one.
    pub fn report_loc(&self) -> Loc {
        self.key_loc.unwrap_or(self.loc)
    }

    pub fn as_map(&self) -> Option<&IndexMap<String, Node>> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut IndexMap<String, Node>> {
        match &mut self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map().and_then(|m| m.get(key))
    }

    /// The child named by one path segment: a mapping key, or a sequence index.
    pub fn child(&self, seg: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(m) => m.get(seg),
            Value::Seq(s) => seg.parse::<usize>().ok().and_then(|i| s.get(i)),
            _ => None,
        }
    }

    /// The deepest node along `path` (stops where the path leaves the tree), for locating
    /// diagnostics that come as paths (schema violations, typed-model errors).
    pub fn deepest<S: AsRef<str>>(&self, path: &[S]) -> &Node {
        let mut node = self;
        for seg in path {
            match node.child(seg.as_ref()) {
                Some(n) => node = n,
                None => break,
            }
        }
        node
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.as_map_mut().and_then(|m| m.get_mut(key))
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// The scalar as text, the way Compose reads a scalar where it expects a string
    /// (`8080` in `expose` is "8080"). `None` for null, sequences and mappings.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(format_float(*f)),
            _ => None,
        }
    }

    /// Set the file of every location in this tree (the parser does not know file ids).
    fn set_file(&mut self, file: FileId) {
        self.loc.file = file;
        if let Some(k) = &mut self.key_loc {
            k.file = file;
        }
        match &mut self.value {
            Value::Seq(s) => s.iter_mut().for_each(|n| n.set_file(file)),
            Value::Map(m) => m.values_mut().for_each(|n| n.set_file(file)),
            _ => {}
        }
    }

    /// Convert to JSON, dropping locations and tags (for schema validation and hashing).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(s) => J::Array(s.iter().map(Node::to_json).collect()),
            Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }

    /// Build a location-less tree from JSON (used for values wharf synthesizes itself).
    pub fn from_json(v: &serde_json::Value, loc: Loc) -> Node {
        use serde_json::Value as J;
        let value = match v {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(0.0)),
            },
            J::String(s) => Value::Str(s.clone()),
            J::Array(a) => Value::Seq(a.iter().map(|x| Node::from_json(x, loc)).collect()),
            J::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, x)| (k.clone(), Node::from_json(x, loc)))
                    .collect(),
            ),
        };
        Node::new(value, loc)
    }
}

/// Go-like float text: `0.5`, `1`, `1e+21` — what Compose prints for a float scalar read as text.
pub fn format_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// Serialize as YAML the way `wharf config` prints it: long single-line strings (paths) stay
/// on one line instead of being folded at 80 columns; multi-line strings use `|` blocks.
pub fn to_yaml<T: serde::Serialize>(value: &T) -> Result<String, serde_saphyr::ser::Error> {
    let opts = serde_saphyr::ser_options! { folded_wrap_chars: usize::MAX, };
    serde_saphyr::to_string_with_options(value, opts)
}

/// A YAML syntax error (or a document that is not a mapping), located.
#[derive(Debug, Clone)]
pub struct ParseError {
    pub message: String,
    pub loc: Loc,
}

/// Parse one Compose document. An empty document is an empty mapping, like compose-go.
pub fn parse(src: &str, file: FileId) -> Result<Node, ParseError> {
    // YAML 1.2 booleans only: `FOO: yes` stays the string "yes" (compose-go uses yaml.v3,
    // which does the same for untyped values), and `0440` stays "0440" so that file modes
    // can be read as octal later instead of being silently turned into 440.
    // Compose files reuse one `x-` anchor across every service (`<<: *common`), so the
    // alias/anchor *ratio* guard would reject ordinary 100-service files; the absolute caps on
    // aliases and replayed events still stop alias bombs.
    let mut budget = serde_saphyr::budget::Budget::default();
    budget.enforce_alias_anchor_ratio = false;
    let opts = serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        with_snippet: false,
        budget: Some(budget),
    };
    let empty = || {
        let start = Loc {
            file,
            line: 1,
            col: 1,
            offset: 0,
        };
        Node::new(Value::Map(IndexMap::new()), start)
    };
    if src.trim().is_empty() {
        return Ok(empty());
    }
    let raw: Option<RawNode> = serde_saphyr::from_str_with_options(src, opts).map_err(|e| {
        let (line, col) = e
            .location()
            .map(|l| (l.line() as u32, l.column() as u32))
            .unwrap_or((1, 1));
        ParseError {
            message: error_text(&e),
            loc: Loc {
                file,
                line,
                col,
                offset: offset_of(src, line, col),
            },
        }
    })?;
    let mut node = match raw {
        Some(r) => r.0,
        None => empty(),
    };
    node.set_file(file);
    if node.is_null() {
        node.value = Value::Map(IndexMap::new());
    }
    Ok(node)
}

/// serde-saphyr's message without its own "line N column M" prefix (we render locations).
fn error_text(e: &serde_saphyr::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("").trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // "line 4 column 11: invalid floating point" -> "invalid floating point"
    match first.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") => rest.to_string(),
        _ => first.to_string(),
    }
}

/// Byte offset of a 1-based line/column, clamped to the text.
pub fn offset_of(src: &str, line: u32, col: u32) -> u32 {
    let mut offset = 0usize;
    for (i, l) in src.split_inclusive('\n').enumerate() {
        if i + 1 == line as usize {
            let within: usize = l
                .chars()
                .take(col.saturating_sub(1) as usize)
                .map(char::len_utf8)
                .sum();
            return (offset + within).min(src.len()) as u32;
        }
        offset += l.len();
    }
    src.len() as u32
}

fn loc_of(l: &serde_saphyr::Location) -> Loc {
    Loc {
        file: 0,
        line: l.line() as u32,
        col: l.column() as u32,
        offset: l.span().offset() as u32,
    }
}

/// Wrapper used only while deserializing from serde-saphyr.
struct RawNode(Node);

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Tagged<RawValue>>::deserialize(d)?;
        let tag = match spanned.value.1.as_deref() {
            Some("!reset") => Some(Tag::Reset),
            Some("!override") => Some(Tag::Override),
            _ => None,
        };
        Ok(RawNode(Node {
            value: spanned.value.0.0,
            loc: loc_of(&spanned.referenced),
            key_loc: None,
            tag,
        }))
    }
}

struct RawValue(Value);

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<RawValue, E> {
        Ok(RawValue(Value::Null))
    }
    fn visit_none<E>(self) -> Result<RawValue, E> {
        Ok(RawValue(Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawValue, D::Error> {
        RawValue::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<RawValue, E> {
        Ok(RawValue(Value::Bool(b)))
    }
    fn visit_i64<E>(self, i: i64) -> Result<RawValue, E> {
        Ok(RawValue(Value::Int(i)))
    }
    fn visit_u64<E>(self, u: u64) -> Result<RawValue, E> {
        Ok(RawValue(match i64::try_from(u) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Float(u as f64),
        }))
    }
    fn visit_i128<E>(self, i: i128) -> Result<RawValue, E> {
        Ok(RawValue(Value::Float(i as f64)))
    }
    fn visit_u128<E>(self, u: u128) -> Result<RawValue, E> {
        Ok(RawValue(Value::Float(u as f64)))
    }
    fn visit_f64<E>(self, f: f64) -> Result<RawValue, E> {
        Ok(RawValue(Value::Float(f)))
    }
    fn visit_str<E>(self, s: &str) -> Result<RawValue, E> {
        Ok(RawValue(Value::Str(s.to_string())))
    }
    fn visit_string<E>(self, s: String) -> Result<RawValue, E> {
        Ok(RawValue(Value::Str(s)))
    }
    fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<RawValue, E> {
        Ok(RawValue(Value::Str(
            String::from_utf8_lossy(b).into_owned(),
        )))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<RawValue, A::Error> {
        let mut items = Vec::new();
        while let Some(RawNode(n)) = a.next_element()? {
            items.push(n);
        }
        Ok(RawValue(Value::Seq(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<RawValue, A::Error> {
        let mut map = IndexMap::new();
        while let Some((key, RawNode(mut n))) = a.next_entry::<Spanned<RawKey>, RawNode>()? {
            n.key_loc = Some(loc_of(&key.referenced));
            // Explicit keys win over keys merged in with `<<` (serde-saphyr yields merged
            // entries after the explicit ones), so keep the first occurrence.
            map.entry(key.value.0).or_insert(n);
        }
        Ok(RawValue(Value::Map(map)))
    }
}

/// Mapping keys as text: Compose keys are strings, but `8080:` or `true:` are valid YAML keys.
struct RawKey(String);

impl<'de> Deserialize<'de> for RawKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KeyVisitor)
    }
}

/// Keys straight to text (a key is nearly always a plain string; no `Value` in between).
struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = RawKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar mapping key")
    }
    fn visit_str<E>(self, s: &str) -> Result<RawKey, E> {
        Ok(RawKey(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<RawKey, E> {
        Ok(RawKey(s))
    }
    fn visit_bool<E>(self, b: bool) -> Result<RawKey, E> {
        Ok(RawKey(b.to_string()))
    }
    fn visit_i64<E>(self, i: i64) -> Result<RawKey, E> {
        Ok(RawKey(i.to_string()))
    }
    fn visit_u64<E>(self, u: u64) -> Result<RawKey, E> {
        Ok(RawKey(u.to_string()))
    }
    fn visit_f64<E>(self, f: f64) -> Result<RawKey, E> {
        Ok(RawKey(format_float(f)))
    }
    fn visit_unit<E>(self) -> Result<RawKey, E> {
        Ok(RawKey("null".to_string()))
    }
    fn visit_none<E>(self) -> Result<RawKey, E> {
        Ok(RawKey("null".to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_locations_tags_and_merge_keys() {
        let src = "x-base: &b\n  image: busybox\nservices:\n  web:\n    <<: *b\n    command: !reset []\n    mode: 0440\n    flag: yes\n";
        let n = parse(src, 3).unwrap();
        let web = n.get("services").unwrap().get("web").unwrap();
        assert_eq!(web.get("image").unwrap().as_str(), Some("busybox"));
        let cmd = web.get("command").unwrap();
        assert_eq!(cmd.tag, Some(Tag::Reset));
        assert_eq!(cmd.key_loc.unwrap().line, 6);
        assert_eq!(cmd.key_loc.unwrap().col, 5);
        assert_eq!(cmd.loc.file, 3);
        assert_eq!(web.get("mode").unwrap().as_str(), Some("0440"));
        assert_eq!(web.get("flag").unwrap().as_str(), Some("yes"));
    }

    #[test]
    fn syntax_error_is_located() {
        let err = parse("services:\n  web:\n    image: [unclosed\n", 0).unwrap_err();
        assert!(err.loc.line >= 3, "{err:?}");
    }

    #[test]
    fn one_anchor_merged_into_many_services() {
        let mut src = String::from("x-c: &c\n  image: busybox\nservices:\n");
        for i in 0..300 {
            src.push_str(&format!("  s{i}:\n    <<: *c\n"));
        }
        let n = parse(&src, 0).unwrap();
        assert_eq!(
            n.get("services").and_then(Node::as_map).map(|m| m.len()),
            Some(300)
        );
    }

    #[test]
    fn alias_bomb_is_refused_not_expanded() {
        let mut src = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut prev = 'a';
        for c in 'b'..='m' {
            src.push_str(&format!("{c}: &{c} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
            prev = c;
        }
        assert!(parse(&src, 0).is_err());
    }

    #[test]
    fn empty_document_is_empty_map() {
        assert_eq!(parse("", 0).unwrap().as_map().map(|m| m.len()), Some(0));
        assert_eq!(
            parse("# only a comment\n", 0)
                .unwrap()
                .as_map()
                .map(|m| m.len()),
            Some(0)
        );
    }
}
