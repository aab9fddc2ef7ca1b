//! Which variables a Compose file uses, for `wharf config --variables`.
//!
//! A scan of the raw (uninterpolated) tree for `$NAME` and `${NAME…}` expressions, reporting
//! for each name whether it is required (`:?`/`?`), its default (`:-`/`-`) and its alternate
//! value (`:+`/`+`), like `docker compose config --variables`.

use std::collections::BTreeMap;

use super::yaml::{Node, Value};

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Variable {
    pub name: String,
    pub required: bool,
    #[serde(rename = "defaultValue")]
    pub default: Option<String>,
    #[serde(rename = "alternateValue")]
    pub alternate: Option<String>,
}

/// Every variable used anywhere in `node`, by name.
pub fn collect(node: &Node, out: &mut BTreeMap<String, Variable>) {
    match &node.value {
        Value::Str(s) => scan(s, out),
        Value::Seq(items) => items.iter().for_each(|n| collect(n, out)),
        Value::Map(m) => m.values().for_each(|n| collect(n, out)),
        _ => {}
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn scan(s: &str, out: &mut BTreeMap<String, Variable>) {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '$' {
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => i += 2,
            Some('{') => {
                // Find the matching brace, allowing nested ${...} in defaults.
                let mut depth = 0usize;
                let mut end = None;
                for (j, c) in chars.iter().enumerate().skip(i + 1) {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                end = Some(j);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let Some(end) = end else { return };
                let inner: String = chars[i + 2..end].iter().collect();
                let name_len = inner
                    .find(|c: char| !is_name_char(c))
                    .unwrap_or(inner.len());
                let (name, rest) = inner.split_at(name_len);
                if !name.is_empty() {
                    let mut v = Variable {
                        name: name.to_string(),
                        ..Variable::default()
                    };
                    for (op, kind) in [
                        (":-", 0),
                        (":?", 1),
                        (":+", 2),
                        ("-", 0),
                        ("?", 1),
                        ("+", 2),
                    ] {
                        if let Some(arg) = rest.strip_prefix(op) {
                            match kind {
                                0 => v.default = Some(arg.to_string()),
                                1 => v.required = true,
                                _ => v.alternate = Some(arg.to_string()),
                            }
                            scan(arg, out);
                            break;
                        }
                    }
                    let entry = out.entry(name.to_string()).or_insert_with(|| Variable {
                        name: name.to_string(),
                        ..Variable::default()
                    });
                    entry.required |= v.required;
                    if entry.default.is_none() {
                        entry.default = v.default;
                    }
                    if entry.alternate.is_none() {
                        entry.alternate = v.alternate;
                    }
                }
                i = end + 1;
            }
            Some(c) if is_name_char(*c) && !c.is_ascii_digit() => {
                let name: String = chars[i + 1..]
                    .iter()
                    .take_while(|c| is_name_char(**c))
                    .collect();
                i += 1 + name.chars().count();
                out.entry(name.clone()).or_insert_with(|| Variable {
                    name,
                    ..Variable::default()
                });
            }
            _ => i += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_defaults_requirements_and_alternates() {
        let mut out = BTreeMap::new();
        scan("${A:-x} $B ${C:?need} ${D+alt} $$E ${F:-${G}}", &mut out);
        let names: Vec<&str> = out.keys().map(String::as_str).collect();
        assert_eq!(names, ["A", "B", "C", "D", "F", "G"]);
        assert_eq!(out["A"].default.as_deref(), Some("x"));
        assert!(out["C"].required);
        assert_eq!(out["D"].alternate.as_deref(), Some("alt"));
    }
}
