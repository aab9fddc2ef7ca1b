//! Multi-file merging: the Compose specification's "Merge and override" rules, applied to the
//! located YAML tree of [`super::yaml`].
//!
//! This module owns the rules by which a later Compose file (or an `extends`-ing service) is laid
//! over an earlier one: mappings merge key by key, sequences append (dropping entries identical to
//! one already present), `command`/`entrypoint`/`healthcheck.test` are replaced, `ports`,
//! `volumes`, `secrets`, `configs`, `devices`, `env_file`, `expose`, `dns*`, `cap_*`, `tmpfs`,
//! `links`, `profiles`, aliases… are unique by a key (an override entry replaces the base entry
//! with the same key in place), key/value attributes (`environment`, `labels`, `build.args`…)
//! merge per key, `logging` merges only when the driver is the same, and the `!reset` /
//! `!override` tags remove or replace what an earlier file said. It mirrors compose-go's
//! `override/merge.go` and `override/uncity.go`, on trees that are already in canonical long form
//! (short syntaxes expanded by another module). It keeps the location of every winning node, so
//! later diagnostics point at the file that supplied a value. It must not read files, interpolate,
//! expand short syntax, validate or report errors: it never fails and never panics — input it does
//! not understand (a type mismatch, say) is resolved by letting the override win, and is left for
//! validation to reject with a location.

use std::collections::HashMap;

use indexmap::IndexMap;

use super::yaml::{Loc, Node, Tag, Value};

type Map = IndexMap<String, Node>;

/// Merge `over` onto `base` following the Compose spec's "Merge and override" rules, at the top
/// level of a Compose file (both are whole-file mappings, already in canonical long form).
/// Returns the merged tree; the locations of the winning nodes are kept. A `!reset` on the whole
/// override yields an empty mapping.
pub fn merge_files(base: Node, over: Node) -> Node {
    merge_root(base, over, &[])
}

/// Merge one service definition onto another (used by `extends`: the base service, then the
/// extending service's own definition), with the same per-attribute rules as [`merge_files`].
pub fn merge_services(base: Node, over: Node) -> Node {
    merge_root(base, over, &["services", "*"])
}

/// Remove every remaining `!reset`-tagged node and clear `!override` tags (call after the last
/// merge; a `!reset` in a single file just means "absent"). A `!reset` on `node` itself turns it
/// into null, as it has no parent to be removed from.
pub fn strip_tags(node: &mut Node) {
    if is_reset(node) {
        node.value = Value::Null;
    }
    node.tag = None;
    strip_children(node);
}

fn strip_children(node: &mut Node) {
    match &mut node.value {
        Value::Map(m) => {
            m.retain(|_, v| !is_reset(v));
            for v in m.values_mut() {
                v.tag = None;
                strip_children(v);
            }
        }
        Value::Seq(s) => {
            s.retain(|v| !is_reset(v));
            for v in s.iter_mut() {
                v.tag = None;
                strip_children(v);
            }
        }
        _ => {}
    }
}

fn merge_root(base: Node, over: Node, path: &[&str]) -> Node {
    let loc = over.loc;
    merge_at(Some(base), over, path).unwrap_or_else(|| Node::new(Value::Map(Map::new()), loc))
}

/// How the value found at a path merges. The table follows compose-go's `mergeSpecials`
/// (merge.go) and `unique` (uncity.go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Mappings merge recursively, sequences append without exact duplicates, scalars are replaced.
    Deep,
    /// The override replaces the base, even with null (`command`, `entrypoint`, `healthcheck.test`).
    Replace,
    /// `KEY=VALUE` attributes held as mappings: per key, the override wins, null included.
    KeyValue,
    /// A sequence whose entries are unique by a key; a later entry replaces an earlier one in place.
    Unique(KeyOf),
    /// `build`: a string is `{context: <string>}`, then mappings merge.
    Build,
    /// Service `networks` / `models` (`None`) and `depends_on` (`Some`: the default entry for a
    /// bare name): a list of names is a mapping of those names, then mappings merge.
    NameMap(Option<NameDefault>),
    /// `logging`: merged when both sides name the same driver (or either names none), else replaced.
    Logging,
    /// `ulimits.<name>`: merged when both are mappings, else replaced.
    Ulimit,
    /// `networks.<name>.ipam.config`: entries with the same `subnet` merge, others are appended.
    IpamConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameDefault {
    DependsOn,
}

/// The identity of a sequence entry, for de-duplication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyOf {
    /// No key: only entries identical to an earlier one are dropped.
    Exact,
    /// A string up to its first `=` (compose-go's `keyValueIndexer`).
    Text,
    /// The scalar as text (`expose`).
    Scalar,
    /// `host_ip:published:target/protocol`, defaults `0.0.0.0` and `tcp`.
    Port,
    /// `target` (service `volumes`).
    Target,
    /// `target`, else `source` (`devices`).
    Device,
    /// `target` (relative to `/run/secrets`), else `/run/secrets/<source>`.
    Secret,
    /// `target`, else `/<source>`.
    Config,
    /// `path` (`env_file`).
    EnvFile,
}

fn rule_for(path: &[&str]) -> Rule {
    use KeyOf::*;
    match path {
        ["services", _, attr] => match *attr {
            "command" | "entrypoint" => Rule::Replace,
            "annotations" | "environment" | "labels" | "sysctls" => Rule::KeyValue,
            "build" => Rule::Build,
            "depends_on" => Rule::NameMap(Some(NameDefault::DependsOn)),
            "networks" | "models" => Rule::NameMap(None),
            "logging" => Rule::Logging,
            "ports" => Rule::Unique(Port),
            "volumes" => Rule::Unique(Target),
            "secrets" => Rule::Unique(Secret),
            "configs" => Rule::Unique(Config),
            "devices" => Rule::Unique(Device),
            "env_file" => Rule::Unique(EnvFile),
            "expose" => Rule::Unique(Scalar),
            "cap_add" | "cap_drop" | "dns" | "dns_opt" | "dns_search" | "links" | "profiles"
            | "tmpfs" => Rule::Unique(Text),
            "extra_hosts" | "label_file" => Rule::Unique(Exact),
            _ => Rule::Deep,
        },
        [
            "services",
            _,
            "build",
            "args" | "labels" | "additional_contexts",
        ] => Rule::KeyValue,
        ["services", _, "build", "tags" | "platforms"] => Rule::Unique(Text),
        ["services", _, "build", "extra_hosts"] => Rule::Unique(Exact),
        ["services", _, "deploy", "labels"] => Rule::KeyValue,
        ["services", _, "healthcheck", "test"] => Rule::Replace,
        ["services", _, "ulimits", _] => Rule::Ulimit,
        ["services", _, "networks", _, "aliases" | "link_local_ips"] => Rule::Unique(Text),
        ["networks" | "volumes" | "secrets" | "configs", _, "labels"] => Rule::KeyValue,
        ["networks", _, "ipam", "config"] => Rule::IpamConfig,
        _ => Rule::Deep,
    }
}

fn is_reset(node: &Node) -> bool {
    node.tag == Some(Tag::Reset)
}

/// Merge an override node onto what the base has at the same place (`None`: nothing). Returns
/// `None` when the result is "absent" (a `!reset`).
fn merge_at(base: Option<Node>, over: Node, path: &[&str]) -> Option<Node> {
    match over.tag {
        Some(Tag::Reset) => return None,
        Some(Tag::Override) => {
            let mut over = over;
            over.tag = None;
            return Some(over);
        }
        None => {}
    }
    // A `!reset` left in the base (from a file merged earlier) means the base has nothing here.
    match base.filter(|b| !is_reset(b)) {
        Some(base) => Some(merge_present(base, over, path)),
        None => Some(over),
    }
}

fn merge_present(base: Node, over: Node, path: &[&str]) -> Node {
    let rule = rule_for(path);
    // compose-go: a null override keeps the base, except where the override always wins (and
    // name maps, which read null as an empty mapping).
    if over.is_null() && !matches!(rule, Rule::Replace | Rule::Ulimit | Rule::NameMap(_)) {
        return base;
    }
    match rule {
        Rule::Deep => merge_deep(base, over, path),
        Rule::Replace => over,
        Rule::KeyValue => merge_key_value(base, over),
        Rule::Unique(key) => merge_unique(base, over, key, path),
        Rule::Build => merge_build(base, over, path),
        Rule::NameMap(default) => merge_name_map(base, over, path, default),
        Rule::Logging => merge_logging(base, over, path),
        Rule::Ulimit => match (&base.value, &over.value) {
            (Value::Map(_), Value::Map(_)) => merge_deep(base, over, path),
            _ => over,
        },
        Rule::IpamConfig => merge_ipam(base, over, path),
    }
}

/// Where a node stands, without its value.
#[derive(Clone, Copy)]
struct Shell {
    loc: Loc,
    key_loc: Option<Loc>,
    tag: Option<Tag>,
}

fn split(node: Node) -> (Value, Shell) {
    let Node {
        value,
        loc,
        key_loc,
        tag,
    } = node;
    (value, Shell { loc, key_loc, tag })
}

fn join(value: Value, shell: Shell) -> Node {
    Node {
        value,
        loc: shell.loc,
        key_loc: shell.key_loc,
        tag: shell.tag,
    }
}

/// A merged container keeps the base's location (where it was first declared); its tag, if any,
/// was consumed.
fn merged(value: Value, base: Shell) -> Node {
    join(value, Shell { tag: None, ..base })
}

fn merge_deep(base: Node, over: Node, path: &[&str]) -> Node {
    let (bv, bs) = split(base);
    let (ov, os) = split(over);
    match (bv, ov) {
        (Value::Map(b), Value::Map(o)) => merged(Value::Map(merge_maps(b, o, path)), bs),
        (Value::Seq(b), Value::Seq(o)) => merged(Value::Seq(append_distinct(b, o)), bs),
        (_, ov) => join(ov, os),
    }
}

fn merge_maps(mut base: Map, over: Map, path: &[&str]) -> Map {
    for (key, o) in over {
        let mut child: Vec<&str> = Vec::with_capacity(path.len() + 1);
        child.extend_from_slice(path);
        child.push(key.as_str());
        let existing = base
            .get_mut(&key)
            .map(|slot| std::mem::replace(slot, Node::null(Loc::default())));
        let result = merge_at(existing, o, &child);
        match result {
            Some(n) => match base.get_mut(&key) {
                Some(slot) => *slot = n,
                None => {
                    base.insert(key, n);
                }
            },
            None => {
                base.shift_remove(&key);
            }
        }
    }
    base
}

/// Append the override's entries, skipping those identical to an entry already present
/// (compose-go's `appendWithoutDuplicates`); `!reset` entries are dropped.
fn append_distinct(base: Vec<Node>, over: Vec<Node>) -> Vec<Node> {
    let mut out: Vec<Node> = base.into_iter().filter(|n| !is_reset(n)).collect();
    for item in over {
        if is_reset(&item) || out.iter().any(|e| same_value(e, &item)) {
            continue;
        }
        out.push(item);
    }
    out
}

/// Structural equality of two values, ignoring locations and tags.
fn same_value(a: &Node, b: &Node) -> bool {
    match (&a.value, &b.value) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Seq(x), Value::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Sequences unique by a key

fn merge_unique(base: Node, over: Node, key: KeyOf, path: &[&str]) -> Node {
    let seq_like = |n: &Node| matches!(n.value, Value::Seq(_) | Value::Str(_));
    if !(seq_like(&base) && seq_like(&over)) {
        return merge_deep(base, over, path);
    }
    // compose-go's `mergeToSequence` reads a lone string as a one-entry sequence.
    let (bv, bs) = split(base);
    let b = into_items(bv, bs);
    let (ov, os) = split(over);
    let o = into_items(ov, os);
    merged(Value::Seq(unique_by(append_distinct(b, o), key)), bs)
}

fn into_items(value: Value, shell: Shell) -> Vec<Node> {
    match value {
        Value::Seq(items) => items,
        other => vec![join(
            other,
            Shell {
                key_loc: None,
                ..shell
            },
        )],
    }
}

/// compose-go's `EnforceUnicity`: a later entry with the same key replaces the earlier one, at
/// the earlier one's position. Entries without a key are all kept.
fn unique_by(items: Vec<Node>, key: KeyOf) -> Vec<Node> {
    let mut out: Vec<Node> = Vec::with_capacity(items.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for item in items {
        match key_of(&item, key) {
            Some(k) => match seen.get(&k).and_then(|&j| out.get_mut(j)) {
                Some(slot) => *slot = item,
                None => {
                    seen.insert(k, out.len());
                    out.push(item);
                }
            },
            None => out.push(item),
        }
    }
    out
}

fn text_of(node: Option<&Node>) -> Option<String> {
    node.filter(|n| !is_reset(n)).and_then(Node::scalar_text)
}

fn key_of(item: &Node, key: KeyOf) -> Option<String> {
    match key {
        KeyOf::Exact => None,
        KeyOf::Text => item.scalar_text().map(|s| match s.split_once('=') {
            Some((k, _)) => k.to_string(),
            None => s,
        }),
        KeyOf::Scalar => item.scalar_text(),
        KeyOf::Port => match &item.value {
            Value::Map(_) => {
                let target = text_of(item.get("target"))?;
                let published = text_of(item.get("published")).unwrap_or_default();
                let host = text_of(item.get("host_ip"))
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| "0.0.0.0".to_string());
                let protocol = text_of(item.get("protocol"))
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| "tcp".to_string());
                Some(format!("{host}:{published}:{target}/{protocol}"))
            }
            _ => item.scalar_text(),
        },
        KeyOf::Target => text_of(item.get("target")),
        KeyOf::Device => match &item.value {
            Value::Map(_) => text_of(item.get("target")).or_else(|| text_of(item.get("source"))),
            _ => item.scalar_text().map(|s| {
                let mut parts = s.split(':');
                let first = parts.next().unwrap_or_default();
                parts.next().unwrap_or(first).to_string()
            }),
        },
        KeyOf::Secret => mount_key(item, "/run/secrets", true),
        KeyOf::Config => mount_key(item, "", false),
        KeyOf::EnvFile => match &item.value {
            Value::Map(_) => text_of(item.get("path")),
            _ => item.scalar_text(),
        },
    }
}

/// Where a secret or config is mounted: its `target`, else `<dir>/<source>`. A relative secret
/// target is a file name under `/run/secrets` (the spec's reading; compose-go compares it raw).
fn mount_key(item: &Node, dir: &str, relative_target_in_dir: bool) -> Option<String> {
    match &item.value {
        Value::Map(_) => match text_of(item.get("target")) {
            Some(t) if relative_target_in_dir && !t.starts_with('/') => Some(format!("{dir}/{t}")),
            Some(t) => Some(t),
            None => text_of(item.get("source")).map(|s| format!("{dir}/{s}")),
        },
        _ => item.scalar_text().map(|s| format!("{dir}/{s}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Key/value attributes

/// `KEY=VALUE` attributes: per key, the override's value wins (null included: `FOO:` in an
/// override unsets the base's value, like compose-go's `KEY` entry replacing `KEY=value`).
fn merge_key_value(base: Node, over: Node) -> Node {
    if base.is_null() || !kv_convertible(&base) || !kv_convertible(&over) {
        return over;
    }
    let (bv, bs) = split(base);
    let (ov, _) = split(over);
    let mut out = kv_entries(bv);
    for (key, mut o) in kv_entries(ov) {
        if is_reset(&o) {
            out.shift_remove(&key);
            continue;
        }
        o.tag = None;
        out.insert(key, o);
    }
    merged(Value::Map(out), bs)
}

fn kv_convertible(node: &Node) -> bool {
    match &node.value {
        Value::Map(_) | Value::Str(_) => true,
        Value::Seq(items) => items
            .iter()
            .all(|i| is_reset(i) || i.scalar_text().is_some()),
        _ => false,
    }
}

/// A key/value attribute as a mapping: a mapping as is, a `KEY=VALUE` list (or lone string) split
/// at the first `=`, a bare `KEY` being null. Call only on [`kv_convertible`] values.
fn kv_entries(value: Value) -> Map {
    let entry = |item: Node, out: &mut Map| {
        if is_reset(&item) {
            return;
        }
        let Some(text) = item.scalar_text() else {
            return;
        };
        let (k, v) = match text.split_once('=') {
            Some((k, v)) => (k.to_string(), Value::Str(v.to_string())),
            None => (text, Value::Null),
        };
        let mut node = Node::new(v, item.loc);
        node.key_loc = Some(item.loc);
        out.insert(k, node);
    };
    let mut out = Map::new();
    match value {
        Value::Map(m) => return m,
        Value::Seq(items) => items.into_iter().for_each(|i| entry(i, &mut out)),
        Value::Str(s) => entry(Node::new(Value::Str(s), Loc::default()), &mut out),
        _ => {}
    }
    out
}

// ---------------------------------------------------------------------------------------------
// build, networks/models/depends_on, logging, ipam

fn merge_build(base: Node, over: Node, path: &[&str]) -> Node {
    match (as_build_map(base), as_build_map(over)) {
        (Ok(b), Ok(o)) => merge_deep(b, o, path),
        (_, Ok(o)) | (_, Err(o)) => o,
    }
}

/// `build: <dir>` is `build: {context: <dir>}`.
fn as_build_map(node: Node) -> Result<Node, Node> {
    match node.value {
        Value::Map(_) => Ok(node),
        Value::Str(_) => {
            let (value, shell) = split(node);
            let mut context = Node::new(value, shell.loc);
            context.key_loc = Some(shell.loc);
            let mut map = Map::new();
            map.insert("context".to_string(), context);
            Ok(join(Value::Map(map), shell))
        }
        _ => Err(node),
    }
}

fn merge_name_map(base: Node, over: Node, path: &[&str], default: Option<NameDefault>) -> Node {
    if !names_convertible(&base) || !names_convertible(&over) {
        return over;
    }
    let (bv, bs) = split(base);
    let (ov, _) = split(over);
    let b = name_entries(bv, default);
    let o = name_entries(ov, default);
    merged(Value::Map(merge_maps(b, o, path)), bs)
}

fn names_convertible(node: &Node) -> bool {
    match &node.value {
        Value::Null | Value::Map(_) | Value::Str(_) => true,
        Value::Seq(items) => items.iter().all(|i| is_reset(i) || i.as_str().is_some()),
        _ => false,
    }
}

/// A list of names as a mapping name -> null (or the `depends_on` default entry); null is empty.
/// Call only on [`names_convertible`] values.
fn name_entries(value: Value, default: Option<NameDefault>) -> Map {
    let entry = |item: Node, out: &mut Map| {
        if is_reset(&item) {
            return;
        }
        let Value::Str(name) = item.value else {
            return;
        };
        let mut node = match default {
            None => Node::null(item.loc),
            Some(NameDefault::DependsOn) => {
                let mut m = Map::new();
                m.insert(
                    "condition".to_string(),
                    Node::string("service_started", item.loc),
                );
                m.insert(
                    "required".to_string(),
                    Node::new(Value::Bool(true), item.loc),
                );
                Node::new(Value::Map(m), item.loc)
            }
        };
        node.key_loc = Some(item.loc);
        out.insert(name, node);
    };
    let mut out = Map::new();
    match value {
        Value::Map(m) => return m,
        Value::Seq(items) => items.into_iter().for_each(|i| entry(i, &mut out)),
        Value::Str(s) => entry(Node::new(Value::Str(s), Loc::default()), &mut out),
        _ => {}
    }
    out
}

fn merge_logging(base: Node, over: Node, path: &[&str]) -> Node {
    let driver = |n: &Node| n.get("driver").filter(|d| !is_reset(d)).cloned();
    // (No let-chains: the main crate declares rust-version 1.85.)
    let distinct = match (driver(&base), driver(&over)) {
        (Some(b), Some(o)) => !same_value(&b, &o),
        _ => false,
    };
    if distinct {
        return over;
    }
    merge_deep(base, over, path)
}

/// IPAM pools: an override pool with the same `subnet` as a base pool is merged into it, other
/// pools are appended (identical ones dropped).
fn merge_ipam(base: Node, over: Node, path: &[&str]) -> Node {
    let (Value::Seq(_), Value::Seq(_)) = (&base.value, &over.value) else {
        return merge_deep(base, over, path);
    };
    let (bv, bs) = split(base);
    let (ov, _) = split(over);
    let mut out: Vec<Node> = into_items(bv, bs)
        .into_iter()
        .filter(|n| !is_reset(n))
        .collect();
    let mut child: Vec<&str> = path.to_vec();
    child.push("*");
    for item in into_items(ov, bs) {
        if is_reset(&item) || out.iter().any(|e| same_value(e, &item)) {
            continue;
        }
        let slot = match item.value {
            Value::Map(_) => out.iter_mut().find(|e| same_subnet(e, &item)),
            _ => None,
        };
        match slot {
            Some(slot) => {
                let existing = std::mem::replace(slot, Node::null(Loc::default()));
                *slot = merge_deep(existing, item, &child);
            }
            None => out.push(item),
        }
    }
    merged(Value::Seq(out), bs)
}

fn same_subnet(a: &Node, b: &Node) -> bool {
    if !matches!(a.value, Value::Map(_)) {
        return false;
    }
    let subnet = |n: &Node| n.get("subnet").filter(|s| !is_reset(s)).cloned();
    match (subnet(a), subnet(b)) {
        (None, None) => true,
        (Some(x), Some(y)) => same_value(&x, &y),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::yaml::parse;
    use super::*;

    fn yaml(src: &str, file: u32) -> Node {
        parse(src, file).unwrap()
    }

    /// Canonical text of a tree, locations and tags dropped, key order kept.
    fn text(n: &Node) -> String {
        serde_json::to_string(&n.to_json()).unwrap()
    }

    fn merge_all(files: &[&str]) -> Node {
        let mut it = files.iter().enumerate();
        let (_, first) = it.next().unwrap();
        let mut acc = yaml(first, 0);
        for (i, f) in it {
            acc = merge_files(acc, yaml(f, i as u32));
        }
        strip_tags(&mut acc);
        acc
    }

    #[track_caller]
    fn assert_merge(base: &str, over: &str, want: &str) {
        let got = merge_all(&[base, over]);
        assert_eq!(text(&got), text(&yaml(want, 9)));
    }

    // --- generic rules ----------------------------------------------------------------------

    #[test]
    fn mappings_merge_and_scalars_override() {
        let got = merge_all(&[
            "services:\n  test:\n    image: foo\n    scale: 1\n",
            "services:\n  test:\n    image: bar\n",
            "services:\n  test:\n    scale: 2\n",
        ]);
        assert_eq!(
            text(&got),
            text(&yaml(
                "services:\n  test:\n    image: bar\n    scale: 2\n",
                0
            ))
        );
    }

    #[test]
    fn spec_mapping_example() {
        assert_merge(
            "services:\n  foo:\n    key1: value1\n    key2: value2\n",
            "services:\n  foo:\n    key2: VALUE\n    key3: value3\n",
            "services:\n  foo:\n    key1: value1\n    key2: VALUE\n    key3: value3\n",
        );
    }

    #[test]
    fn null_override_keeps_base() {
        assert_merge(
            "services:\n  test:\n    image: foo\n    user: root\n",
            "services:\n  test:\n    image: null\n    user:\n",
            "services:\n  test:\n    image: foo\n    user: root\n",
        );
    }

    #[test]
    fn null_override_of_mapping_like_attributes_keeps_base() {
        for (attr, want) in [
            ("networks", "runtime: null"),
            ("models", "runtime: null"),
            (
                "depends_on",
                "runtime: {condition: service_started, required: true}",
            ),
        ] {
            assert_merge(
                &format!("services:\n  test:\n    image: foo\n    {attr}: [runtime]\n"),
                &format!("services:\n  test:\n    {attr}: null\n"),
                &format!("services:\n  test:\n    image: foo\n    {attr}:\n      {want}\n"),
            );
            assert_merge(
                &format!("services:\n  test:\n    image: foo\n    {attr}: null\n"),
                &format!("services:\n  test:\n    {attr}: [runtime]\n"),
                &format!("services:\n  test:\n    image: foo\n    {attr}:\n      {want}\n"),
            );
        }
    }

    #[test]
    fn type_mismatch_lets_the_override_win() {
        assert_merge(
            "services:\n  test:\n    mem_limit: 1\n",
            "services:\n  test:\n    mem_limit: '256m'\n",
            "services:\n  test:\n    mem_limit: 256m\n",
        );
        assert_merge(
            "services:\n  test:\n    mem_limit: '256m'\n",
            "services:\n  test:\n    mem_limit: 1\n",
            "services:\n  test:\n    mem_limit: 1\n",
        );
        assert_merge(
            "x-a: {b: 1}\nservices: {w: {image: a, dns: [x]}}\n",
            "x-a: [1]\nservices: {w: {image: {n: 1}, dns: {y: 1}}}\n",
            "x-a: [1]\nservices: {w: {image: {n: 1}, dns: {y: 1}}}\n",
        );
    }

    #[test]
    fn name_overrides_and_extensions_merge_as_maps() {
        assert_merge(
            "name: one\nx-common: {a: 1, nested: {b: 2}, list: [1]}\n",
            "name: two\nx-common: {nested: {c: 3}, list: [2]}\nx-new: 1\n",
            "name: two\nx-common: {a: 1, nested: {b: 2, c: 3}, list: [1, 2]}\nx-new: 1\n",
        );
    }

    #[test]
    fn top_level_include_appends() {
        assert_merge(
            "include: [{path: [a.yaml]}]\n",
            "include: [{path: [b.yaml]}, {path: [a.yaml]}]\n",
            "include: [{path: [a.yaml]}, {path: [b.yaml]}]\n",
        );
    }

    #[test]
    fn sequences_append() {
        assert_merge(
            "services:\n  foo:\n    security_opt: [a]\n    group_add: [1]\n",
            "services:\n  foo:\n    security_opt: [b, a]\n    group_add: [2]\n",
            "services:\n  foo:\n    security_opt: [a, b]\n    group_add: [1, 2]\n",
        );
    }

    #[test]
    fn sequences_drop_identical_duplicates() {
        assert_merge(
            "services:\n  test:\n    image: foo\n    dns: [8.8.8.8]\n    cap_add: [NET_ADMIN]\n    volumes:\n      - {type: volume, source: data, target: /data}\n",
            "services:\n  test:\n    dns: [8.8.8.8, 9.9.9.9]\n    cap_add: [NET_ADMIN, SYS_PTRACE]\n    volumes:\n      - {type: volume, source: data, target: /data}\n",
            "services:\n  test:\n    image: foo\n    dns: [8.8.8.8, 9.9.9.9]\n    cap_add: [NET_ADMIN, SYS_PTRACE]\n    volumes:\n      - {type: volume, source: data, target: /data}\n",
        );
    }

    #[test]
    fn merging_the_same_override_twice_is_idempotent() {
        let base = "services:\n  test:\n    dns: [8.8.8.8]\n    env_file: [{path: common.env}]\n    extra_hosts: [host1=127.0.0.1]\n    environment: {A: '1'}\n";
        let over = "services:\n  test:\n    dns: [9.9.9.9]\n    env_file: [{path: common.env}, {path: test.env}]\n    extra_hosts: [host1=127.0.0.1, host2=127.0.0.2]\n    environment: {A: '2', B: x}\n";
        let once = merge_files(yaml(base, 0), yaml(over, 1));
        let twice = merge_files(once.clone(), yaml(over, 1));
        assert_eq!(text(&once), text(&twice));
    }

    // --- replaced attributes ----------------------------------------------------------------

    #[test]
    fn command_entrypoint_and_healthcheck_test_are_replaced() {
        assert_merge(
            "services:\n  foo:\n    command: [echo, foo]\n    entrypoint: [sh, -c]\n    healthcheck: {test: [CMD, a], interval: 5s}\n",
            "services:\n  foo:\n    command: [echo, bar]\n    entrypoint: [bash]\n    healthcheck: {test: [CMD-SHELL, b]}\n",
            "services:\n  foo:\n    command: [echo, bar]\n    entrypoint: [bash]\n    healthcheck: {test: [CMD-SHELL, b], interval: 5s}\n",
        );
    }

    // --- key/value attributes ---------------------------------------------------------------

    #[test]
    fn environment_merges_per_key() {
        assert_merge(
            "services:\n  test:\n    image: foo\n    environment:\n      FOO: BAR\n      KEEP: k\n      UNSET: v\n",
            "services:\n  test:\n    environment:\n      EMPTY: \"\"\n      NIL: null\n      QIX: ZOT\n      FOO: NEW\n      UNSET:\n",
            "services:\n  test:\n    image: foo\n    environment:\n      FOO: NEW\n      KEEP: k\n      UNSET: null\n      EMPTY: \"\"\n      NIL: null\n      QIX: ZOT\n",
        );
    }

    #[test]
    fn environment_null_override_keeps_base() {
        assert_merge(
            "services:\n  test:\n    environment: {A: b}\n",
            "services:\n  test:\n    environment:\n",
            "services:\n  test:\n    environment: {A: b}\n",
        );
    }

    #[test]
    fn key_value_lists_are_read_as_mappings() {
        // Not canonical, but compose-go accepts mixing both syntaxes.
        assert_merge(
            "services:\n  test:\n    labels: {FOO: BAR, MODE: release}\n",
            "services:\n  test:\n    labels: [QIX=ZOT, EMPTY=, NIL, MODE=debug, MODE=release]\n",
            "services:\n  test:\n    labels: {FOO: BAR, MODE: release, QIX: ZOT, EMPTY: '', NIL: null}\n",
        );
    }

    #[test]
    fn labels_annotations_sysctls_and_numbers() {
        assert_merge(
            "services:\n  test:\n    labels: {FOO: 1}\n    annotations: {a: x}\n    sysctls: {net.core.somaxconn: 1024}\n    deploy: {labels: {d: 1}}\n",
            "services:\n  test:\n    labels: {FOO: 3}\n    annotations: {b: y}\n    sysctls: {net.core.somaxconn: 2048}\n    deploy: {labels: {d: 2}}\n",
            "services:\n  test:\n    labels: {FOO: 3}\n    annotations: {a: x, b: y}\n    sysctls: {net.core.somaxconn: 2048}\n    deploy: {labels: {d: 2}}\n",
        );
    }

    #[test]
    fn top_level_resource_labels_merge_per_key() {
        assert_merge(
            "volumes: {v: {labels: {a: '1', b: '2'}}}\nsecrets: {s: {file: ./s, labels: {a: x}}}\n",
            "volumes: {v: {labels: {b: null, c: '3'}}}\nsecrets: {s: {labels: {a: y}}}\n",
            "volumes: {v: {labels: {a: '1', b: null, c: '3'}}}\nsecrets: {s: {file: ./s, labels: {a: y}}}\n",
        );
    }

    // --- build --------------------------------------------------------------------------------

    #[test]
    fn build_merges_args_contexts_tags_and_extra_hosts() {
        assert_merge(
            "services:\n  test:\n    build:\n      context: .\n      args: {FOO: BAR}\n      additional_contexts: {resources: /path/to/resources, app: 'docker-image://my-app:latest'}\n      platforms: [linux/amd64]\n      tags: ['myimage:mytag']\n      extra_hosts: [somehost=162.242.195.82, otherhost=50.31.209.229]\n",
            "services:\n  test:\n    build:\n      args: {GIT_COMMIT: cdc3b19, EMPTY: '', NIL: null}\n      additional_contexts: {app: 'docker-image://new-app:latest', source: 'https://github.com/myuser/project.git'}\n      platforms: [linux/arm64, linux/amd64]\n      tags: ['myimage:mytag', 'registry/username/myrepos:my-other-tag']\n      extra_hosts: [otherhost=50.31.209.230, 'myhostv6=::1']\n",
            "services:\n  test:\n    build:\n      context: .\n      args: {FOO: BAR, GIT_COMMIT: cdc3b19, EMPTY: '', NIL: null}\n      additional_contexts: {resources: /path/to/resources, app: 'docker-image://new-app:latest', source: 'https://github.com/myuser/project.git'}\n      platforms: [linux/amd64, linux/arm64]\n      tags: ['myimage:mytag', 'registry/username/myrepos:my-other-tag']\n      extra_hosts: [somehost=162.242.195.82, otherhost=50.31.209.229, otherhost=50.31.209.230, 'myhostv6=::1']\n",
        );
    }

    #[test]
    fn build_string_is_a_context() {
        assert_merge(
            "services:\n  web:\n    build: .\n",
            "services:\n  web:\n    build:\n      dockerfile: Dockerfile.dev\n",
            "services:\n  web:\n    build: {context: ., dockerfile: Dockerfile.dev}\n",
        );
        assert_merge(
            "services:\n  web:\n    build: {context: ., dockerfile: Dockerfile.dev}\n",
            "services:\n  web:\n    build: ./other\n",
            "services:\n  web:\n    build: {context: ./other, dockerfile: Dockerfile.dev}\n",
        );
    }

    // --- unique sequences ---------------------------------------------------------------------

    #[test]
    fn ports_are_unique_by_ip_target_published_protocol() {
        assert_merge(
            "services:\n  test:\n    image: foo\n    ports:\n      - {target: 8080, published: '80', protocol: tcp}\n      - {target: 53, published: '53', protocol: udp}\n",
            "services:\n  test:\n    ports:\n      - {target: 8080, published: '80', protocol: tcp, mode: host}\n      - {target: 8443, published: '443', protocol: tcp}\n      - {target: 53, published: '53', protocol: tcp}\n      - {target: 8080, published: '80', protocol: tcp, host_ip: 127.0.0.1}\n",
            "services:\n  test:\n    image: foo\n    ports:\n      - {target: 8080, published: '80', protocol: tcp, mode: host}\n      - {target: 53, published: '53', protocol: udp}\n      - {target: 8443, published: '443', protocol: tcp}\n      - {target: 53, published: '53', protocol: tcp}\n      - {target: 8080, published: '80', protocol: tcp, host_ip: 127.0.0.1}\n",
        );
    }

    #[test]
    fn ports_defaults_count_for_the_key() {
        assert_merge(
            "services:\n  t:\n    ports: [{target: 80}]\n",
            "services:\n  t:\n    ports: [{target: 80, protocol: tcp, host_ip: 0.0.0.0, name: web}]\n",
            "services:\n  t:\n    ports: [{target: 80, protocol: tcp, host_ip: 0.0.0.0, name: web}]\n",
        );
    }

    #[test]
    fn volumes_are_unique_by_target() {
        assert_merge(
            "services:\n  foo:\n    volumes:\n      - {type: volume, source: foo, target: /work}\n      - {type: bind, source: ./b, target: /b}\n",
            "services:\n  foo:\n    volumes:\n      - {type: volume, source: bar, target: /work}\n      - {type: volume, source: c, target: /c}\n",
            "services:\n  foo:\n    volumes:\n      - {type: volume, source: bar, target: /work}\n      - {type: bind, source: ./b, target: /b}\n      - {type: volume, source: c, target: /c}\n",
        );
    }

    #[test]
    fn secrets_and_configs_are_unique_by_target() {
        assert_merge(
            "services:\n  test:\n    secrets: [{source: foo}, {source: bar}, {source: zot}]\n    configs: [{source: a}, {source: b, target: /etc/b}]\n",
            "services:\n  test:\n    secrets: [{source: zot, target: /run/secrets/foo}, {source: new, target: bar}]\n    configs: [{source: c, target: /a}, {source: b2, target: /etc/b}]\n",
            "services:\n  test:\n    secrets: [{source: zot, target: /run/secrets/foo}, {source: new, target: bar}, {source: zot}]\n    configs: [{source: c, target: /a}, {source: b2, target: /etc/b}]\n",
        );
    }

    #[test]
    fn devices_are_unique_by_target() {
        assert_merge(
            "services:\n  test:\n    devices:\n      - {source: /dev/sda, target: /dev/sda, permissions: rwm}\n      - {source: /dev/sdb, target: /dev/sdb, permissions: rwm}\n      - {source: /dev/sdd, target: /dev/sdd, permissions: rwm}\n",
            "services:\n  test:\n    devices:\n      - {source: /dev/nvme0n1p1, target: /dev/sda, permissions: rwm}\n      - {source: /dev/nvme1n1p1, target: /dev/sdb, permissions: r}\n      - {source: /dev/sde, target: /dev/sde, permissions: rwm}\n",
            "services:\n  test:\n    devices:\n      - {source: /dev/nvme0n1p1, target: /dev/sda, permissions: rwm}\n      - {source: /dev/nvme1n1p1, target: /dev/sdb, permissions: r}\n      - {source: /dev/sdd, target: /dev/sdd, permissions: rwm}\n      - {source: /dev/sde, target: /dev/sde, permissions: rwm}\n",
        );
    }

    #[test]
    fn env_files_are_unique_by_path_and_label_files_by_value() {
        assert_merge(
            "services:\n  test:\n    env_file: [{path: foo.env, required: true}, {path: common.env}]\n    label_file: [a.labels]\n",
            "services:\n  test:\n    env_file: [{path: bar.env}, {path: foo.env, required: false}]\n    label_file: [b.labels, a.labels]\n",
            "services:\n  test:\n    env_file: [{path: foo.env, required: false}, {path: common.env}, {path: bar.env}]\n    label_file: [a.labels, b.labels]\n",
        );
    }

    #[test]
    fn value_lists_are_unique() {
        assert_merge(
            "services:\n  test:\n    cap_add: [CAP_BPF, CAP_CHOWN]\n    cap_drop: [NET_ADMIN, SYS_ADMIN]\n    tmpfs: [/foo]\n    expose: ['80', '443']\n    dns_search: [a.example]\n    dns_opt: [ndots:2]\n    profiles: [debug]\n",
            "services:\n  test:\n    cap_add: [CAP_KILL, CAP_CHOWN]\n    cap_drop: [NET_ADMIN, CAP_FOWNER]\n    tmpfs: [/bar, /baz, /foo]\n    expose: ['443', '8080']\n    dns_search: [b.example]\n    dns_opt: [ndots:2, use-vc]\n    profiles: [debug, test]\n",
            "services:\n  test:\n    cap_add: [CAP_BPF, CAP_CHOWN, CAP_KILL]\n    cap_drop: [NET_ADMIN, SYS_ADMIN, CAP_FOWNER]\n    tmpfs: [/foo, /bar, /baz]\n    expose: ['80', '443', '8080']\n    dns_search: [a.example, b.example]\n    dns_opt: ['ndots:2', use-vc]\n    profiles: [debug, test]\n",
        );
    }

    #[test]
    fn lone_strings_read_as_one_entry_lists() {
        assert_merge(
            "services:\n  test:\n    image: foo\n    tmpfs: /foo\n",
            "services:\n  test:\n    tmpfs: /bar\n",
            "services:\n  test:\n    image: foo\n    tmpfs: [/foo, /bar]\n",
        );
    }

    #[test]
    fn links_are_unique_by_name() {
        assert_merge(
            "services:\n  test:\n    links: [service1, service2]\n",
            "services:\n  test:\n    links: [service2=alias1]\n",
            "services:\n  test:\n    links: [service1, service2=alias1]\n",
        );
    }

    #[test]
    fn extra_hosts_drop_identical_entries_only() {
        assert_merge(
            "services:\n  test:\n    extra_hosts: [example.com=1.2.3.4]\n",
            "services:\n  test:\n    extra_hosts: [localhost=127.0.0.1, example.com=1.2.3.4, example.com=4.3.2.1]\n",
            "services:\n  test:\n    extra_hosts: [example.com=1.2.3.4, localhost=127.0.0.1, example.com=4.3.2.1]\n",
        );
    }

    // --- networks, models, depends_on, logging, ulimits ---------------------------------------

    #[test]
    fn service_networks_merge_per_network() {
        assert_merge(
            "services:\n  test:\n    networks:\n      network1:\n        aliases: [alias1, alias2]\n        link_local_ips: [57.123.22.11, 57.123.22.13]\n      network2:\n        aliases: [alias1, alias3]\n      front:\n",
            "services:\n  test:\n    networks:\n      network1:\n        aliases: [alias3, alias1]\n        link_local_ips: [57.123.22.12, 57.123.22.13]\n        ipv4_address: 10.0.0.2\n      front: {priority: 10}\n      back:\n",
            "services:\n  test:\n    networks:\n      network1:\n        aliases: [alias1, alias2, alias3]\n        link_local_ips: [57.123.22.11, 57.123.22.13, 57.123.22.12]\n        ipv4_address: 10.0.0.2\n      network2:\n        aliases: [alias1, alias3]\n      front: {priority: 10}\n      back:\n",
        );
    }

    #[test]
    fn service_network_lists_read_as_mappings() {
        assert_merge(
            "services:\n  test:\n    networks: [front-network, back-network, network1]\n",
            "services:\n  test:\n    networks:\n      network1: {aliases: [alias1]}\n      network2:\n",
            "services:\n  test:\n    networks:\n      front-network:\n      back-network:\n      network1: {aliases: [alias1]}\n      network2:\n",
        );
    }

    #[test]
    fn models_merge() {
        assert_merge(
            "services:\n  app:\n    image: myapp\n    models: {llm: null}\n  worker:\n    image: worker\n    models:\n      embedding-model: {endpoint_var: EMBEDDING_URL}\nmodels:\n  llm: {model: ai/smollm2, context_size: 2048}\n  embedding-model: {model: ai/all-minilm, context_size: 512}\n",
            "services:\n  app:\n    models: [vision-model]\n  worker:\n    models:\n      llm: {endpoint_var: LLM_URL, model_var: LLM_NAME}\nmodels:\n  vision-model: {model: ai/clip, context_size: 1024}\n  llm: {model: ai/gpt-4, context_size: 8192}\n",
            "services:\n  app:\n    image: myapp\n    models: {llm: null, vision-model: null}\n  worker:\n    image: worker\n    models:\n      embedding-model: {endpoint_var: EMBEDDING_URL}\n      llm: {endpoint_var: LLM_URL, model_var: LLM_NAME}\nmodels:\n  llm: {model: ai/gpt-4, context_size: 8192}\n  embedding-model: {model: ai/all-minilm, context_size: 512}\n  vision-model: {model: ai/clip, context_size: 1024}\n",
        );
    }

    #[test]
    fn depends_on_merges_per_dependency() {
        assert_merge(
            "services:\n  web:\n    depends_on:\n      db: {condition: service_started, required: true}\n      cache: {condition: service_started, required: true}\n",
            "services:\n  web:\n    depends_on:\n      db: {condition: service_healthy, restart: true}\n      queue: {condition: service_started, required: false}\n",
            "services:\n  web:\n    depends_on:\n      db: {condition: service_healthy, required: true, restart: true}\n      cache: {condition: service_started, required: true}\n      queue: {condition: service_started, required: false}\n",
        );
        assert_merge(
            "services:\n  web:\n    depends_on: [db]\n",
            "services:\n  web:\n    depends_on: [cache]\n",
            "services:\n  web:\n    depends_on:\n      db: {condition: service_started, required: true}\n      cache: {condition: service_started, required: true}\n",
        );
    }

    #[test]
    fn logging_with_the_same_driver_merges_options() {
        assert_merge(
            "services:\n  test:\n    image: foo\n    logging:\n      driver: syslog\n      options: {syslog-address: 'tcp://192.168.0.42:123', tag: web}\n",
            "services:\n  test:\n    logging:\n      driver: syslog\n      options: {syslog-address: 'tcp://127.0.0.1:123'}\n",
            "services:\n  test:\n    image: foo\n    logging:\n      driver: syslog\n      options: {syslog-address: 'tcp://127.0.0.1:123', tag: web}\n",
        );
    }

    #[test]
    fn logging_with_a_distinct_driver_is_replaced() {
        assert_merge(
            "services:\n  test:\n    image: foo\n    logging:\n      driver: local\n      options: {max-size: 10m}\n",
            "services:\n  test:\n    logging:\n      driver: syslog\n      options: {syslog-address: 'tcp://127.0.0.1:123'}\n",
            "services:\n  test:\n    image: foo\n    logging:\n      driver: syslog\n      options: {syslog-address: 'tcp://127.0.0.1:123'}\n",
        );
    }

    #[test]
    fn logging_without_a_driver_on_one_side_merges() {
        assert_merge(
            "services:\n  test:\n    logging:\n      options: {max-size: 10m}\n",
            "services:\n  test:\n    logging:\n      options: {max-file: 3}\n",
            "services:\n  test:\n    logging:\n      options: {max-size: 10m, max-file: 3}\n",
        );
        assert_merge(
            "services:\n  test:\n    logging: {driver: json-file, options: {max-size: 10m}}\n",
            "services:\n  test:\n    logging: {options: {max-file: 3}}\n",
            "services:\n  test:\n    logging: {driver: json-file, options: {max-size: 10m, max-file: 3}}\n",
        );
    }

    #[test]
    fn ulimits_merge_per_limit() {
        assert_merge(
            "services:\n  test:\n    ulimits:\n      nofile: {soft: 20000, hard: 40000}\n      nproc: 65535\n      locks: {soft: 20000, hard: 40000}\n",
            "services:\n  test:\n    ulimits:\n      nofile: {soft: 10000}\n      nproc: {soft: 65535}\n      locks: 30000\n      memlock: -1\n",
            "services:\n  test:\n    ulimits:\n      nofile: {soft: 10000, hard: 40000}\n      nproc: {soft: 65535}\n      locks: 30000\n      memlock: -1\n",
        );
    }

    #[test]
    fn top_level_networks_merge_ipam_by_subnet() {
        assert_merge(
            "networks:\n  network1:\n    ipam:\n      config:\n        - subnet: 172.28.0.0/16\n          ip_range: 172.28.5.0/24\n          gateway: 172.28.5.254\n          aux_addresses: {host1: 172.28.1.5, host2: 172.28.1.6, host3: 172.28.1.7}\n      options: {foo: bar, baz: '0'}\n    labels:\n      com.example.description: Financial transaction network\n      com.example.department: Finance\n      com.example.label-with-empty-value: ''\n",
            "networks:\n  network1:\n    ipam:\n      config:\n        - subnet: 172.28.0.0/16\n          ip_range: 172.28.5.1/24\n          gateway: 172.28.5.254\n          aux_addresses: {host1: 172.28.1.5, host2: 172.28.1.4, host4: 172.28.1.10}\n        - subnet: 172.29.0.0/16\n          gateway: 172.29.0.254\n      options: {bar: foo, baz: '0'}\n    labels:\n      com.example.department-new: New\n      com.example.description: Financial transaction network\n  network2:\n",
            "networks:\n  network1:\n    ipam:\n      config:\n        - subnet: 172.28.0.0/16\n          ip_range: 172.28.5.1/24\n          gateway: 172.28.5.254\n          aux_addresses: {host1: 172.28.1.5, host2: 172.28.1.4, host3: 172.28.1.7, host4: 172.28.1.10}\n        - subnet: 172.29.0.0/16\n          gateway: 172.29.0.254\n      options: {foo: bar, baz: '0', bar: foo}\n    labels:\n      com.example.description: Financial transaction network\n      com.example.department: Finance\n      com.example.label-with-empty-value: ''\n      com.example.department-new: New\n  network2:\n",
        );
    }

    // --- tags -----------------------------------------------------------------------------------

    #[test]
    fn reset_removes_inherited_values() {
        assert_merge(
            "services:\n  app:\n    image: myapp\n    ports:\n      - {target: 80, published: '8080', protocol: tcp}\n    environment:\n      FOO: BAR\n",
            "services:\n  app:\n    image: myapp\n    ports: !reset []\n    environment:\n      FOO: !reset null\n",
            "services:\n  app:\n    image: myapp\n    environment: {}\n",
        );
    }

    #[test]
    fn reset_removes_a_whole_service_or_resource() {
        assert_merge(
            "services:\n  a: {image: a}\n  b: {image: b}\nvolumes:\n  data: {}\n",
            "services:\n  a: !reset {}\nvolumes: !reset\n",
            "services:\n  b: {image: b}\n",
        );
    }

    #[test]
    fn reset_in_a_single_file_means_absent() {
        let mut n = yaml(
            "services:\n  app:\n    image: a\n    command: !reset []\n    dns: [a, !reset b]\n    environment: {A: !reset x, B: y}\n",
            0,
        );
        strip_tags(&mut n);
        assert_eq!(
            text(&n),
            text(&yaml(
                "services:\n  app:\n    image: a\n    dns: [a]\n    environment: {B: y}\n",
                0
            ))
        );
        // And a reset the base never had is still absent after merging.
        assert_merge(
            "services:\n  app: {image: a}\n",
            "services:\n  app: {command: !reset [x], new: !reset {a: 1}}\n",
            "services:\n  app: {image: a}\n",
        );
    }

    #[test]
    fn reset_left_in_a_base_is_absent_for_later_files() {
        let got = merge_all(&[
            "services:\n  app: {image: a}\n",
            "services:\n  app: {environment: {A: !reset x, B: y}}\n",
            "services:\n  app: {environment: {A: z}}\n",
        ]);
        assert_eq!(
            text(&got),
            text(&yaml(
                "services:\n  app: {image: a, environment: {A: z, B: y}}\n",
                0
            ))
        );
    }

    #[test]
    fn override_replaces_instead_of_merging() {
        assert_merge(
            "services:\n  app:\n    image: myapp\n    ports:\n      - {target: 80, published: '8080', protocol: tcp}\n    environment: {A: '1', B: '2'}\n",
            "services:\n  app:\n    ports: !override\n      - {target: 443, published: '8443', protocol: tcp}\n    environment: !override {C: '3'}\n",
            "services:\n  app:\n    image: myapp\n    ports:\n      - {target: 443, published: '8443', protocol: tcp}\n    environment: {C: '3'}\n",
        );
    }

    #[test]
    fn override_replaces_a_whole_service() {
        assert_merge(
            "services:\n  app: {image: a, command: [x], ports: [{target: 80}]}\n",
            "services:\n  app: !override {image: b}\n",
            "services:\n  app: {image: b}\n",
        );
    }

    #[test]
    fn override_is_consumed_by_its_merge() {
        let got = merge_all(&[
            "services:\n  app: {dns: [a]}\n",
            "services:\n  app: {dns: !override [b]}\n",
            "services:\n  app: {dns: [c]}\n",
        ]);
        assert_eq!(
            text(&got),
            text(&yaml("services:\n  app: {dns: [b, c]}\n", 0))
        );
    }

    #[test]
    fn tags_on_the_whole_override() {
        let base = yaml("services: {a: {image: a}}\n", 0);
        let got = merge_files(base.clone(), yaml("!reset {}\n", 1));
        assert_eq!(text(&got), "{}");
        let got = merge_files(base, yaml("!override {name: x}\n", 1));
        assert_eq!(text(&got), r#"{"name":"x"}"#);
        assert_eq!(got.tag, None);
    }

    #[test]
    fn strip_tags_clears_everything() {
        let mut n = yaml("a: !override {b: !override [!override 1, !reset 2]}\n", 0);
        strip_tags(&mut n);
        fn no_tags(n: &Node) -> bool {
            n.tag.is_none()
                && match &n.value {
                    Value::Map(m) => m.values().all(no_tags),
                    Value::Seq(s) => s.iter().all(no_tags),
                    _ => true,
                }
        }
        assert!(no_tags(&n));
        assert_eq!(text(&n), r#"{"a":{"b":[1]}}"#);
        let mut root = yaml("!reset {a: 1}\n", 0);
        strip_tags(&mut root);
        assert!(root.is_null());
    }

    // --- extends --------------------------------------------------------------------------------

    #[test]
    fn merge_services_applies_service_rules() {
        let base = yaml(
            "image: base\ncommand: [a, b]\nenvironment: {A: '1', B: '2'}\nports: [{target: 80, published: '8080', protocol: tcp}]\nvolumes: [{type: bind, source: ./a, target: /a}]\nlogging: {driver: local, options: {max-size: 1m}}\n",
            0,
        );
        let over = yaml(
            "command: [c]\nenvironment: {B: '3'}\nports: [{target: 80, published: '9090', protocol: tcp}, {target: 80, published: '8080', protocol: tcp, mode: host}]\nvolumes: [{type: bind, source: ./b, target: /a}]\nlogging: {driver: syslog}\nports_extra: !reset x\n",
            1,
        );
        let mut got = merge_services(base, over);
        strip_tags(&mut got);
        assert_eq!(
            text(&got),
            text(&yaml(
                "image: base\ncommand: [c]\nenvironment: {A: '1', B: '3'}\nports: [{target: 80, published: '8080', protocol: tcp, mode: host}, {target: 80, published: '9090', protocol: tcp}]\nvolumes: [{type: bind, source: ./b, target: /a}]\nlogging: {driver: syslog}\n",
                0
            ))
        );
    }

    // --- locations --------------------------------------------------------------------------------

    #[test]
    fn winning_nodes_keep_their_locations() {
        let base = yaml(
            "services:\n  web:\n    image: a\n    user: root\n    environment:\n      A: '1'\n      B: '2'\n",
            0,
        );
        let over = yaml(
            "services:\n  web:\n    image: b\n    environment:\n      B: '3'\n",
            1,
        );
        let got = merge_files(base, over);
        let web = got.get("services").and_then(|s| s.get("web")).unwrap();
        let image = web.get("image").unwrap();
        assert_eq!((image.loc.file, image.loc.line), (1, 3));
        assert_eq!(
            image.key_loc.map(|k| (k.file, k.line, k.col)),
            Some((1, 3, 5))
        );
        let user = web.get("user").unwrap();
        assert_eq!((user.loc.file, user.loc.line), (0, 4));
        let env = web.get("environment").unwrap();
        assert_eq!(env.key_loc.map(|k| (k.file, k.line)), Some((0, 5)));
        let a = env.get("A").unwrap();
        assert_eq!((a.loc.file, a.loc.line), (0, 6));
        let b = env.get("B").unwrap();
        assert_eq!((b.loc.file, b.loc.line), (1, 5));
        // The service itself was first declared in the base.
        assert_eq!(web.key_loc.map(|k| (k.file, k.line)), Some((0, 2)));
    }

    // --- properties -------------------------------------------------------------------------------

    mod props {
        use super::*;
        use proptest::prelude::*;

        const KEYS: &[&str] = &[
            "services",
            "web",
            "db",
            "image",
            "environment",
            "labels",
            "ports",
            "volumes",
            "secrets",
            "configs",
            "devices",
            "env_file",
            "networks",
            "depends_on",
            "models",
            "logging",
            "driver",
            "options",
            "build",
            "args",
            "command",
            "healthcheck",
            "test",
            "ulimits",
            "ipam",
            "config",
            "subnet",
            "target",
            "source",
            "published",
            "path",
            "dns",
            "tmpfs",
            "x-a",
            "name",
            "a",
            "b",
        ];

        fn node(value: Value) -> Node {
            Node::new(value, Loc::default())
        }

        fn arb_scalar() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                (-3i64..3).prop_map(Value::Int),
                Just(Value::Float(0.5)),
                "[ab=/]{0,3}".prop_map(Value::Str),
            ]
        }

        fn arb_key() -> impl Strategy<Value = String> {
            proptest::sample::select(KEYS).prop_map(str::to_string)
        }

        fn arb_tag(tagged: bool) -> impl Strategy<Value = Option<Tag>> {
            let weight = if tagged { 1 } else { 0 };
            prop_oneof![
                8 => Just(None),
                weight => Just(Some(Tag::Reset)),
                weight => Just(Some(Tag::Override)),
            ]
        }

        fn arb_node(tagged: bool) -> impl Strategy<Value = Node> {
            let leaf =
                (arb_scalar(), arb_tag(tagged)).prop_map(|(v, t)| Node { tag: t, ..node(v) });
            leaf.prop_recursive(5, 64, 5, move |inner| {
                prop_oneof![
                    (
                        proptest::collection::vec(inner.clone(), 0..4),
                        arb_tag(tagged)
                    )
                        .prop_map(|(s, t)| Node {
                            tag: t,
                            ..node(Value::Seq(s))
                        }),
                    (
                        proptest::collection::vec((arb_key(), inner), 0..5),
                        arb_tag(tagged)
                    )
                        .prop_map(|(kv, t)| Node {
                            tag: t,
                            ..node(Value::Map(kv.into_iter().collect()))
                        }),
                ]
            })
        }

        fn arb_root(tagged: bool) -> impl Strategy<Value = Node> {
            proptest::collection::vec((arb_key(), arb_node(tagged)), 0..5)
                .prop_map(|kv| node(Value::Map(kv.into_iter().collect())))
        }

        fn empty() -> Node {
            node(Value::Map(Map::new()))
        }

        /// A value whose shape depends only on its key: `m*` keys hold mappings, others scalars.
        fn arb_shaped(depth: u32) -> BoxedStrategy<Node> {
            let scalar_keys = proptest::sample::select(&["s1", "s2", "s3", "image", "x"][..]);
            let entry = if depth == 0 {
                (scalar_keys, arb_scalar().prop_map(node))
                    .prop_map(|(k, v)| (k.to_string(), v))
                    .boxed()
            } else {
                prop_oneof![
                    (scalar_keys, arb_scalar().prop_map(node))
                        .prop_map(|(k, v)| (k.to_string(), v)),
                    (
                        proptest::sample::select(&["m1", "m2", "environment", "labels"][..]),
                        arb_shaped(depth - 1)
                    )
                        .prop_map(|(k, v)| (k.to_string(), v)),
                ]
                .boxed()
            };
            proptest::collection::vec(entry, 0..5)
                .prop_map(|kv| node(Value::Map(kv.into_iter().collect())))
                .boxed()
        }

        /// A file shaped like `{name, x-ext: {...}, services: {web|db: {...}}}`.
        fn arb_shaped_file() -> impl Strategy<Value = Node> {
            let service = arb_shaped(2);
            let services = proptest::collection::vec(
                (proptest::sample::select(&["web", "db"][..]), service),
                0..3,
            )
            .prop_map(|kv| {
                node(Value::Map(
                    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                ))
            });
            (
                proptest::option::of(arb_scalar().prop_map(node)),
                proptest::option::of(arb_shaped(2)),
                proptest::option::of(services),
            )
                .prop_map(|(name, ext, services)| {
                    let mut m = Map::new();
                    if let Some(n) = name {
                        m.insert("name".to_string(), n);
                    }
                    if let Some(e) = ext {
                        m.insert("x-ext".to_string(), e);
                    }
                    if let Some(s) = services {
                        m.insert("services".to_string(), s);
                    }
                    node(Value::Map(m))
                })
        }

        fn nested(path: &[String], leaf: Node) -> Node {
            path.iter().rev().fold(leaf, |acc, k| {
                let mut m = Map::new();
                m.insert(k.clone(), acc);
                node(Value::Map(m))
            })
        }

        proptest! {
            #[test]
            fn empty_is_identity(a in arb_root(false)) {
                prop_assert_eq!(text(&merge_files(empty(), a.clone())), text(&a));
                prop_assert_eq!(text(&merge_files(a.clone(), empty())), text(&a));
                prop_assert_eq!(text(&merge_services(empty(), a.clone())), text(&a));
                prop_assert_eq!(text(&merge_services(a.clone(), empty())), text(&a));
            }

            #[test]
            fn override_wins_for_scalars(
                a in arb_root(false),
                path in proptest::collection::vec(arb_key(), 0..5),
                last in proptest::sample::select(&["a", "b", "image", "driver", "subnet", "target"][..]),
                s in arb_scalar().prop_filter("not null", |v| *v != Value::Null),
            ) {
                let mut full = path.clone();
                full.push(last.to_string());
                let over = nested(&full, node(s.clone()));
                let got = merge_files(a, over);
                let mut at = Some(&got);
                for k in &full {
                    at = at.and_then(|n| n.get(k));
                }
                let at = at.map(Node::to_json);
                prop_assert_eq!(at, Some(node(s).to_json()));
            }

            #[test]
            fn merging_shaped_maps_is_associative(
                a in arb_shaped_file(),
                b in arb_shaped_file(),
                c in arb_shaped_file(),
            ) {
                let left = merge_files(merge_files(a.clone(), b.clone()), c.clone());
                let right = merge_files(a, merge_files(b, c));
                prop_assert_eq!(text(&left), text(&right));
            }

            #[test]
            fn never_panics_and_strip_leaves_no_tags(
                a in arb_root(true),
                b in arb_root(true),
                sa in arb_node(true),
                sb in arb_node(true),
            ) {
                let mut m = merge_files(a.clone(), b.clone());
                let _ = merge_files(b, a);
                let mut s = merge_services(sa.clone(), sb.clone());
                let _ = merge_services(sb, sa);
                strip_tags(&mut m);
                strip_tags(&mut s);
                fn no_tags(n: &Node) -> bool {
                    n.tag.is_none()
                        && match &n.value {
                            Value::Map(m) => m.values().all(no_tags),
                            Value::Seq(s) => s.iter().all(no_tags),
                            _ => true,
                        }
                }
                prop_assert!(no_tags(&m));
                prop_assert!(no_tags(&s));
            }

            #[test]
            fn service_rules_never_panic(
                base in proptest::collection::vec((arb_key(), arb_node(true)), 0..6),
                over in proptest::collection::vec((arb_key(), arb_node(true)), 0..6),
            ) {
                let wrap = |kv: Vec<(String, Node)>| {
                    nested(&["services".to_string(), "web".to_string()], node(Value::Map(kv.into_iter().collect())))
                };
                let mut m = merge_files(wrap(base), wrap(over));
                strip_tags(&mut m);
            }
        }
    }
}
