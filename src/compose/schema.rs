//! Validation against the official Compose JSON schema (the file Docker Compose validates with).
//!
//! The schema is vendored in `schema/compose-spec.json` and compiled once. Each Compose file is
//! validated on its own, after interpolation, so that every violation can be located in the
//! file that contains it: the JSON pointer of a violation is walked back through the located
//! YAML tree to a line and column. Values tagged `!reset`/`!override` are exempt (they are
//! merge instructions, not values). This module only checks shape; references between
//! resources are checked by `validate`.

use std::sync::OnceLock;

use super::diag::{ComposeError, Sources};
use super::yaml::Node;

const COMPOSE_SCHEMA: &str = include_str!("../../schema/compose-spec.json");

fn validator() -> Option<&'static jsonschema::Validator> {
    static VALIDATOR: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            let schema: serde_json::Value = serde_json::from_str(COMPOSE_SCHEMA).ok()?;
            jsonschema::validator_for(&schema).ok()
        })
        .as_ref()
}

/// Validate one file's tree; the first violation (in document order) is returned as an error.
pub fn validate(root: &Node, sources: &Sources) -> Result<(), ComposeError> {
    let Some(validator) = validator() else {
        return Err(ComposeError::new(
            "internal error: the bundled Compose schema does not compile",
        ));
    };
    let instance = root.to_json();
    // The common case is a valid file: the boolean check is much cheaper than collecting errors.
    if validator.is_valid(&instance) {
        return Ok(());
    }
    let mut violations: Vec<(Vec<String>, String)> = Vec::new();
    for err in validator.iter_errors(&instance) {
        let pointer = err.instance_path().as_str().to_string();
        let path: Vec<String> = pointer
            .split('/')
            .skip(1)
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect();
        if crosses_tag(root, &path) {
            continue;
        }
        violations.push((path, describe(&err)));
    }
    // Report the violation that comes first in the file, so the user fixes from the top.
    let located = violations.into_iter().map(|(path, msg)| {
        let (node, extra_key) = locate(root, &path, &msg);
        let loc = match extra_key.and_then(|k| node.get(&k)) {
            Some(child) => child.report_loc(),
            None => node.report_loc(),
        };
        (loc, path, msg)
    });
    match located.min_by_key(|(loc, _, _)| (loc.line, loc.col)) {
        None => Ok(()),
        Some((loc, path, msg)) => {
            let what = if path.is_empty() {
                "(root)".to_string()
            } else {
                path.join(".")
            };
            Err(sources.error_at(loc, format!("{what} {msg}")))
        }
    }
}

/// True when the path passes through a node tagged `!reset` or `!override`.
fn crosses_tag(root: &Node, path: &[String]) -> bool {
    let mut node = root;
    if node.tag.is_some() {
        return true;
    }
    for seg in path {
        match node.child(seg) {
            Some(n) if n.tag.is_some() => return true,
            Some(n) => node = n,
            None => return false,
        }
    }
    false
}

/// The deepest node on `path`, plus the unexpected key named by an additionalProperties error.
fn locate<'a>(root: &'a Node, path: &[String], msg: &str) -> (&'a Node, Option<String>) {
    let node = root.deepest(path);
    let extra = msg
        .split('\'')
        .nth(1)
        .filter(|_| msg.contains("not allowed"))
        .map(str::to_string);
    (node, extra)
}

/// A message in the spirit of compose-go's ("must be a string", "additional property x is not
/// allowed") rather than the validator's raw JSON dump of the value.
fn describe(err: &jsonschema::ValidationError<'_>) -> String {
    use jsonschema::error::{TypeKind, ValidationErrorKind as K};
    match err.kind() {
        K::Type { kind } => {
            let names: Vec<String> = match kind {
                TypeKind::Single(t) => vec![t.to_string()],
                TypeKind::Multiple(ts) => ts.iter().map(|t| t.to_string()).collect(),
            };
            format!("must be a {}", names.join(" or "))
        }
        K::AdditionalProperties { unexpected } => match unexpected.as_slice() {
            [one] => format!("additional property '{one}' is not allowed"),
            many => format!(
                "additional properties {} are not allowed",
                many.iter()
                    .map(|u| format!("'{u}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        _ => err.masked().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::yaml::parse;
    use std::path::Path;

    fn check(src: &str) -> Result<(), String> {
        let mut sources = Sources::default();
        let id = sources.add(Path::new("compose.yaml"), src);
        let node = parse(src, id).map_err(|e| e.message)?;
        validate(&node, &sources).map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_a_plain_file() {
        check("services:\n  web:\n    image: busybox\n    ports: ['80:80']\n").unwrap();
    }

    #[test]
    fn rejects_wrong_type_with_location() {
        let e = check("services:\n  web:\n    image: busybox\n    privileged: [x]\n").unwrap_err();
        assert!(e.starts_with("compose.yaml:4:"), "{e}");
        assert!(e.contains("services.web.privileged"), "{e}");
    }

    #[test]
    fn rejects_unknown_attribute_at_its_key() {
        let e = check("services:\n  web:\n    image: busybox\n    imagee: x\n").unwrap_err();
        assert!(e.starts_with("compose.yaml:4:5"), "{e}");
        assert!(e.contains("'imagee'"), "{e}");
    }

    #[test]
    fn reset_tags_are_exempt() {
        check("services:\n  web:\n    image: !reset null\n").unwrap();
    }
}
