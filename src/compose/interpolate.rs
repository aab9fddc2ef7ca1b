//! Compose variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}` and the
//! other forms of the Compose specification's "Interpolation" section, with the
//! behaviour of compose-go's `template` package (which is what `docker compose`
//! runs), including its edge cases.
//!
//! This module owns turning *one* template string into its substituted value,
//! given a function that looks variables up. It must not know where variables
//! come from (shell, `.env`, `--env-file`), must not walk YAML, must not do I/O
//! or log: unset variables are *returned* in [`Substituted::missing`] so that
//! the caller can warn once. It must not panic on any input.
//!
//! compose-go implements this with a regular expression; we scan by hand, and
//! reproduce the observable consequences of that regex on purpose:
//!
//! * Variable names are ASCII `[A-Za-z_][A-Za-z0-9_]*` (no dots). A `$` not
//!   followed by `$`, `{` or a name start stays a literal `$` (`"a$"`,
//!   `"$ 1"`, `"$1"`, `"$}"`), but `${` must start a valid expression.
//! * Inside `${NAME<op>...}` the argument runs to the brace that balances the
//!   opening one, counting *every* `{` and `}` (so JSON defaults such as
//!   `${X:-{"a":1}}` work), with compose-go's quirk that the character right
//!   after a `{` is not examined (so `${X:-{}}` ends at the last brace). If the
//!   braces never balance, the argument runs to the last `}` on the line. An
//!   expression never spans a line break (the regex's `.` does not match
//!   `\n`).
//! * The argument of every operator is substituted *before* the variable is
//!   looked at, even when it ends up unused: `${SET:-${UNSET:?boom}}` fails and
//!   `${SET:-$UNSET}` reports `UNSET` as missing, as compose-go does.
//! * `${name[key]}` (compose-go's "named mappings", not enabled by the Compose
//!   loader) is kept verbatim.

/// Deepest nesting of `${...}` inside defaults, alternatives and messages that
/// we follow. compose-go has no limit (Go stacks grow); we recurse on the
/// native stack, so an adversarial `${A:-${A:-${A:-...` must be refused before
/// it can overflow it. Real Compose files nest two or three levels.
pub const MAX_NESTING: usize = 64;

/// Result of substituting one string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Substituted {
    /// The template with every expression replaced.
    pub value: String,
    /// Variables referenced that were unset and had no default (for the
    /// caller's one-time warning), in order of appearance, deduplicated.
    pub missing: Vec<String>,
}

/// Why a template could not be substituted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `${VAR:?msg}` / `${VAR?msg}` with VAR unset (or empty for `:?`).
    #[error("required variable {var} is missing a value{}", reason_suffix(.message))]
    Required {
        /// The variable that is required.
        var: String,
        /// The (substituted) message written after `?`; may be empty.
        message: String,
    },
    /// Malformed template, e.g. `${` unterminated, `${}` or an invalid name.
    #[error("invalid interpolation format for {template}: {reason}")]
    Invalid {
        /// The whole template given to [`substitute`].
        template: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn reason_suffix(message: &str) -> String {
    // compose-go leaves out the colon when there is no message.
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// Substitute every expression in `template`, resolving variables with
/// `lookup` (`None` means unset, which differs from set-but-empty).
///
/// Substituted values are inserted as they are: a `$` inside a variable's
/// value is never interpolated again.
pub fn substitute(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Substituted, TemplateError> {
    let mut engine = Engine {
        lookup,
        template,
        missing: Vec::new(),
    };
    let value = engine.expand(template, 0)?;
    Ok(Substituted {
        value,
        missing: engine.missing,
    })
}

/// What follows the variable name inside `${...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `:-` default when unset or empty.
    DefaultIfEmpty,
    /// `-` default when unset.
    DefaultIfUnset,
    /// `:?` error when unset or empty.
    RequiredNonEmpty,
    /// `?` error when unset.
    RequiredSet,
    /// `:+` alternative when set and not empty.
    AltIfNonEmpty,
    /// `+` alternative when set.
    AltIfSet,
}

struct Engine<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// The caller's whole template, named in `Invalid` errors even when the
    /// fault is inside a nested default: that is the string the user wrote.
    template: &'a str,
    missing: Vec<String>,
}

/// Where the current line of the string being expanded ends and where its last
/// `}` is. Finding "the last `}` on the line" afresh for every expression would
/// make a long line with many expressions quadratic, so it is found once per
/// line.
#[derive(Default)]
struct LineCache {
    /// Exclusive end of the cached line (index of its `\n`, or the length).
    end: usize,
    /// Index of the last `}` between where the cache was filled and `end`.
    last_brace: Option<usize>,
    filled: bool,
}

impl LineCache {
    /// Index of the last `}` on the line containing `from`, at or after `from`.
    fn last_brace_from(&mut self, b: &[u8], from: usize) -> Option<usize> {
        if !self.filled || from >= self.end {
            let rest = b.get(from..).unwrap_or_default();
            let len = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
            self.end = from + len;
            self.last_brace = rest
                .get(..len)
                .unwrap_or_default()
                .iter()
                .rposition(|&c| c == b'}')
                .map(|p| from + p);
            self.filled = true;
        }
        self.last_brace.filter(|&p| p >= from)
    }
}

impl Engine<'_> {
    fn invalid(&self, reason: impl Into<String>) -> TemplateError {
        TemplateError::Invalid {
            template: self.template.to_owned(),
            reason: reason.into(),
        }
    }

    fn expand(&mut self, s: &str, depth: usize) -> Result<String, TemplateError> {
        let b = s.as_bytes();
        let mut out = String::with_capacity(s.len());
        let mut lines = LineCache::default();
        let mut pos = 0;
        while let Some(rel) = slice(s, pos, s.len()).find('$') {
            let dollar = pos + rel;
            out.push_str(slice(s, pos, dollar));
            pos = match b.get(dollar + 1).copied() {
                Some(b'$') => {
                    out.push('$');
                    dollar + 2
                }
                Some(c) if is_name_start(c) => {
                    let end = name_end(b, dollar + 1);
                    let value = self.plain(slice(s, dollar + 1, end));
                    out.push_str(&value);
                    end
                }
                Some(b'{') => self.braced(s, dollar, depth, &mut lines, &mut out)?,
                // compose-go's pattern does not match here at all, so the `$`
                // is kept as written.
                _ => {
                    out.push('$');
                    dollar + 1
                }
            };
        }
        out.push_str(slice(s, pos, s.len()));
        Ok(out)
    }

    /// Handle the `${...}` starting at `dollar`; append its value to `out` and
    /// return the index just past it.
    fn braced(
        &mut self,
        s: &str,
        dollar: usize,
        depth: usize,
        lines: &mut LineCache,
        out: &mut String,
    ) -> Result<usize, TemplateError> {
        let b = s.as_bytes();
        let name_start = dollar + 2;
        let name_stop = if b.get(name_start).copied().is_some_and(is_name_start) {
            name_end(b, name_start)
        } else {
            name_start
        };
        let name = slice(s, name_start, name_stop);
        if name.is_empty() {
            return Err(match b.get(name_start) {
                None => self.invalid("unterminated \"${\""),
                Some(b'}') => self.invalid("empty variable name in \"${}\""),
                Some(_) => self.invalid("\"${\" must be followed by a variable name"),
            });
        }
        let (op, arg_start) = match (b.get(name_stop).copied(), b.get(name_stop + 1).copied()) {
            (Some(b'}'), _) => {
                let value = self.plain(name);
                out.push_str(&value);
                return Ok(name_stop + 1);
            }
            (Some(b'['), _) => return self.named_mapping(s, dollar, name_stop, out),
            (Some(b':'), Some(b'-')) => (Op::DefaultIfEmpty, name_stop + 2),
            (Some(b':'), Some(b'?')) => (Op::RequiredNonEmpty, name_stop + 2),
            (Some(b':'), Some(b'+')) => (Op::AltIfNonEmpty, name_stop + 2),
            (Some(b'-'), _) => (Op::DefaultIfUnset, name_stop + 1),
            (Some(b'?'), _) => (Op::RequiredSet, name_stop + 1),
            (Some(b'+'), _) => (Op::AltIfSet, name_stop + 1),
            (None, _) => return Err(self.invalid(format!("unterminated \"${{{name}\""))),
            (Some(_), _) => {
                let found = slice(s, name_stop, s.len()).chars().next().unwrap_or('}');
                return Err(self.invalid(format!(
                    "unexpected character {found:?} after variable name {name:?}"
                )));
            }
        };
        let Some(last) = lines.last_brace_from(b, arg_start) else {
            return Err(self.invalid(format!(
                "missing \"}}\" to close \"${{{name}\" on the same line"
            )));
        };
        if depth >= MAX_NESTING {
            return Err(self.invalid(format!(
                "expressions nested more than {MAX_NESTING} levels deep"
            )));
        }
        let close = balanced_close(b, dollar, last);
        // Eager, like compose-go: the argument is substituted (and can fail,
        // or report missing variables) whether or not it is used.
        let arg = self.expand(slice(s, arg_start, close), depth + 1)?;
        let value = self.apply(op, name, arg)?;
        out.push_str(&value);
        Ok(close + 1)
    }

    /// compose-go matches `${name[key]...}` with a pattern of its own and,
    /// since the Compose loader enables no named mappings, keeps the text as
    /// written. Reproduce which text it keeps: the pattern's match, cut at the
    /// balancing brace, which must still match the pattern (compose-go matches
    /// the cut text again); anything else is an invalid template there too.
    fn named_mapping(
        &self,
        s: &str,
        dollar: usize,
        bracket: usize,
        out: &mut String,
    ) -> Result<usize, TemplateError> {
        let b = s.as_bytes();
        let malformed = || {
            self.invalid(format!(
                "malformed \"${{{}[\" expression",
                slice(s, dollar + 2, bracket)
            ))
        };
        let end = mapping_match_end(b, bracket, b.len()).ok_or_else(malformed)?;
        let close = balanced_close(b, dollar, end);
        if close != end && mapping_match_end(b, bracket, close + 1).is_none() {
            return Err(malformed());
        }
        out.push_str(slice(s, dollar, close + 1));
        Ok(close + 1)
    }

    fn apply(&mut self, op: Op, name: &str, arg: String) -> Result<String, TemplateError> {
        let value = (self.lookup)(name);
        let required = |message: String| TemplateError::Required {
            var: name.to_owned(),
            message,
        };
        Ok(match op {
            Op::DefaultIfEmpty => match value {
                Some(v) if !v.is_empty() => v,
                _ => arg,
            },
            Op::DefaultIfUnset => value.unwrap_or(arg),
            Op::AltIfNonEmpty => match value {
                Some(v) if !v.is_empty() => arg,
                other => other.unwrap_or_default(),
            },
            Op::AltIfSet => match value {
                Some(_) => arg,
                None => String::new(),
            },
            Op::RequiredNonEmpty => match value {
                Some(v) if !v.is_empty() => v,
                _ => return Err(required(arg)),
            },
            Op::RequiredSet => match value {
                Some(v) => v,
                None => return Err(required(arg)),
            },
        })
    }

    /// A reference without modifier: `$NAME` or `${NAME}`. Only these count as
    /// missing when unset; compose-go warns about exactly these.
    fn plain(&mut self, name: &str) -> String {
        match (self.lookup)(name) {
            Some(v) => v,
            None => {
                if !self.missing.iter().any(|m| m == name) {
                    self.missing.push(name.to_owned());
                }
                String::new()
            }
        }
    }
}

/// Where compose-go's named-mapping pattern `\[(.*)\](?::?[-+?}](.*))?}`
/// (greedy, within one line, looking no further than `limit`) ends when it
/// starts at the `[` at `bracket`; `None` when it does not match.
fn mapping_match_end(b: &[u8], bracket: usize, limit: usize) -> Option<usize> {
    let b = b.get(..limit).unwrap_or(b);
    let line = b.get(bracket..).unwrap_or_default();
    let line_len = line.iter().position(|&c| c == b'\n').unwrap_or(line.len());
    let line = line.get(..line_len).unwrap_or_default();
    let last_brace = line.iter().rposition(|&c| c == b'}').map(|p| bracket + p);
    // Greedy `(.*)`: the rightmost `]` that lets the rest match wins.
    (bracket + 1..bracket + line_len)
        .rev()
        .filter(|&j| b.get(j) == Some(&b']'))
        .find_map(|j| {
            let op_at = if b.get(j + 1) == Some(&b':') {
                j + 2
            } else {
                j + 1
            };
            let has_op = matches!(b.get(op_at), Some(b'-' | b'+' | b'?' | b'}'));
            // With an operator, greedy `(.*)}` runs to the line's last `}`;
            // without one, `]` must be followed by `}`.
            match last_brace.filter(|&p| has_op && p > op_at) {
                Some(p) => Some(p),
                None => (b.get(j + 1) == Some(&b'}')).then_some(j + 1),
            }
        })
}

/// Index of the `}` that closes the `${` at `dollar`, looking no further than
/// `last` (the last `}` on the line): compose-go counts every `{` and `}`,
/// skips the character after each `{`, and falls back to `last` when the
/// braces do not balance.
fn balanced_close(b: &[u8], dollar: usize, last: usize) -> usize {
    let mut open: i64 = 0;
    let mut i = dollar;
    while i <= last {
        match b.get(i) {
            Some(b'}') => {
                open -= 1;
                if open == 0 {
                    return i;
                }
            }
            Some(b'{') => {
                open += 1;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    last
}

/// `s[from..to]`, or `""` if that is not a valid range. Every index used here
/// comes from an ASCII byte, so it is always a char boundary; this only keeps a
/// mistake from turning into a panic.
fn slice(s: &str, from: usize, to: usize) -> &str {
    s.get(from..to).unwrap_or_default()
}

fn is_name_start(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

/// Index just past the name that starts at `start`.
fn name_end(b: &[u8], start: usize) -> usize {
    start
        + b.get(start..)
            .unwrap_or_default()
            .iter()
            .take_while(|&&c| is_name_char(c))
            .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// compose-go's template_test.go fixture mapping.
    fn defaults() -> HashMap<String, String> {
        [("FOO", "first"), ("BAR", ""), ("JSON", r#"{"json":2}"#)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn sub_with(
        template: &str,
        vars: &HashMap<String, String>,
    ) -> Result<Substituted, TemplateError> {
        substitute(template, &|k| vars.get(k).cloned())
    }

    fn sub(template: &str) -> Result<Substituted, TemplateError> {
        sub_with(template, &defaults())
    }

    fn value(template: &str) -> String {
        match sub(template) {
            Ok(s) => s.value,
            Err(e) => panic!("{template:?} failed: {e}"),
        }
    }

    fn assert_values(cases: &[(&str, &str)]) {
        for (template, expected) in cases {
            assert_eq!(value(template), *expected, "template {template:?}");
        }
    }

    fn assert_required(template: &str, var: &str, message: &str, display: &str) {
        let err = sub(template).expect_err(template);
        assert_eq!(
            err,
            TemplateError::Required {
                var: var.to_owned(),
                message: message.to_owned()
            },
            "template {template:?}"
        );
        assert_eq!(err.to_string(), display, "template {template:?}");
    }

    fn assert_invalid(template: &str) {
        match sub(template) {
            Err(TemplateError::Invalid { template: t, .. }) => assert_eq!(t, template),
            other => panic!("{template:?} should be invalid, got {other:?}"),
        }
    }

    // ---- ported from compose-go template/template_test.go ----

    #[test]
    fn escaped() {
        assert_values(&[("$${foo}", "${foo}")]);
    }

    #[test]
    fn no_match() {
        assert_values(&[("foo", "foo")]);
    }

    #[test]
    fn unescaped_dollar_is_kept() {
        for t in ["a $ string", "^REGEX$", "$}", "$"] {
            assert_eq!(value(t), t);
        }
    }

    #[test]
    fn invalid_templates() {
        for t in ["${", "${}", "${ }", "${ foo}", "${foo }", "${foo!}"] {
            assert_invalid(t);
        }
    }

    #[test]
    fn invalid_named_mapping_shapes() {
        // TestInvalidWithNamedMappings: invalid whether or not named mappings are enabled.
        for t in [
            "${[]",
            "${[]}",
            "${ [ ] }",
            "${ foo[bar]}",
            "${foo[bar] }",
            "${foo [bar] }",
            "${foo [bar }",
            "${foo bar]}",
            "${$FOO[bar]}",
            "${FOO_${foo[bar]}}",
            "${foo[bar]a:-def}",
            // Cut at the first `}`, "${a[}" no longer matches the pattern.
            "${a[}]}",
        ] {
            assert_invalid(t);
        }
    }

    #[test]
    fn non_braced_stops_at_dash() {
        assert_values(&[("$FOO-bar", "first-bar")]);
    }

    #[test]
    fn no_value_no_default() {
        assert_eq!(
            sub("This ${missing} var"),
            Ok(Substituted {
                value: "This  var".into(),
                missing: vec!["missing".into()]
            })
        );
        // BAR is set (to ""), so it is not missing.
        assert_eq!(
            sub("This ${BAR} var"),
            Ok(Substituted {
                value: "This  var".into(),
                missing: vec![]
            })
        );
    }

    #[test]
    fn value_no_default() {
        assert_values(&[
            ("This $FOO var", "This first var"),
            ("This ${FOO} var", "This first var"),
        ]);
    }

    #[test]
    fn defaults_and_presence() {
        assert_values(&[
            ("ok ${missing:-def}", "ok def"),
            ("ok ${missing-def}", "ok def"),
            ("ok ${BAR:-def}", "ok def"),
            ("ok ${FOO:-def}", "ok first"),
            ("ok ${BAR-def}", "ok "),
            ("ok ${UNSET_VAR:+presence_value}", "ok "),
            ("ok ${UNSET_VAR+presence_value}", "ok "),
            ("ok ${FOO:+presence_value}", "ok presence_value"),
            ("ok ${FOO+presence_value}", "ok presence_value"),
            ("ok ${BAR+presence_value}", "ok presence_value"),
            ("ok ${BAR:+presence_value}", "ok "),
            ("ok ${BAR:-/non:-alphanumeric}", "ok /non:-alphanumeric"),
        ]);
        // Only bare references count as missing.
        assert_eq!(
            sub("${UNSET:-x}${UNSET:+y}${UNSET-z}").map(|s| s.missing),
            Ok(vec![])
        );
    }

    #[test]
    fn interpolation_external_interference() {
        assert_values(&[
            ("-ok ${BAR:-defaultValue}", "-ok defaultValue"),
            ("+ok ${UNSET:-${BAR-defaultValue}}", "+ok "),
            ("-ok ${FOO:-defaultValue}", "-ok first"),
            (":-ok ${UNSET-defaultValue}", ":-ok defaultValue"),
            (":-ok ${BAR-defaultValue}", ":-ok "),
            (":?ok ${BAR-defaultValue}", ":?ok "),
            (":?ok ${BAR:-defaultValue}", ":?ok defaultValue"),
            (":+ok ${BAR:-defaultValue}", ":+ok defaultValue"),
            ("+ok ${BAR-defaultValue}", "+ok "),
            ("?ok ${BAR:-defaultValue}", "?ok defaultValue"),
        ]);
    }

    #[test]
    fn defaults_with_nested_expansion() {
        assert_values(&[
            ("ok ${UNSET_VAR-$FOO}", "ok first"),
            ("ok ${UNSET_VAR-${FOO}}", "ok first"),
            ("ok ${UNSET_VAR-${FOO} ${FOO}}", "ok first first"),
            ("ok ${BAR:-$FOO}", "ok first"),
            ("ok ${BAR:-${FOO}}", "ok first"),
            ("ok ${BAR:-${FOO} ${FOO}}", "ok first first"),
            ("ok ${BAR+$FOO}", "ok first"),
            ("ok ${BAR+$FOO ${FOO:+second}}", "ok first second"),
        ]);
    }

    #[test]
    fn mandatory_variable_errors() {
        let msg = "required variable UNSET_VAR is missing a value";
        assert_required(
            "not ok ${UNSET_VAR:?Mandatory Variable Unset}",
            "UNSET_VAR",
            "Mandatory Variable Unset",
            &format!("{msg}: Mandatory Variable Unset"),
        );
        assert_required(
            "not ok ${BAR:?Mandatory Variable Empty}",
            "BAR",
            "Mandatory Variable Empty",
            "required variable BAR is missing a value: Mandatory Variable Empty",
        );
        assert_required("not ok ${UNSET_VAR:?}", "UNSET_VAR", "", msg);
        assert_required(
            "not ok ${UNSET_VAR?Mandatory Variable Unset}",
            "UNSET_VAR",
            "Mandatory Variable Unset",
            &format!("{msg}: Mandatory Variable Unset"),
        );
        assert_required("not ok ${UNSET_VAR?}", "UNSET_VAR", "", msg);
    }

    #[test]
    fn mandatory_variable_errors_with_nested_expansion() {
        for t in [
            "not ok ${UNSET_VAR:?Mandatory Variable ${FOO}}",
            "not ok ${UNSET_VAR?Mandatory Variable ${FOO}}",
        ] {
            assert_required(
                t,
                "UNSET_VAR",
                "Mandatory Variable first",
                "required variable UNSET_VAR is missing a value: Mandatory Variable first",
            );
        }
    }

    #[test]
    fn defaults_for_mandatory_variables() {
        assert_values(&[
            ("ok ${FOO:?err}", "ok first"),
            ("ok ${FOO?err}", "ok first"),
            ("ok ${BAR?err}", "ok "),
        ]);
    }

    #[test]
    fn precedence_is_the_first_operator() {
        assert_required(
            "${UNSET_VAR?bar-baz}",
            "UNSET_VAR",
            "bar-baz",
            "required variable UNSET_VAR is missing a value: bar-baz",
        );
        assert_values(&[
            ("${UNSET_VAR-myerror?msg}", "myerror?msg"),
            ("${FOO?bar-baz}", "first"),
            (
                "${BAR:-default_value_for_empty_var}",
                "default_value_for_empty_var",
            ),
            (
                "${UNSET_VAR-default_value_for_unset_var}",
                "default_value_for_unset_var",
            ),
        ]);
    }

    #[test]
    fn substitution_function_choice() {
        // TestSubstitutionFunctionChoice checks which operator wins; here that
        // shows as which part becomes the argument.
        for (t, message) in [
            ("${VARNAME:?val?ue}", "val?ue"),
            ("${VARNAME?val:?ue}", "val:?ue"),
            ("${VARNAME?va-lu+e:?e}", "va-lu+e:?e"),
            ("${VARNAME?va+lu-e:?e}", "va+lu-e:?e"),
        ] {
            let err = sub(t).expect_err(t);
            assert_eq!(
                err,
                TemplateError::Required {
                    var: "VARNAME".into(),
                    message: message.into()
                }
            );
        }
        assert_values(&[
            ("${VARNAME:-value}", "value"),
            ("${VARNAME-va:-lu:?e}", "va:-lu:?e"),
            ("${VARNAME-va+lu?e}", "va+lu?e"),
            ("${VARNAME-va?lu+e}", "va?lu+e"),
            ("${FOO:+va:?lu:-e}", "va:?lu:-e"),
            ("${FOO+va:+lue}", "va:+lue"),
            ("${FOO+va?lu-e}", "va?lu-e"),
            ("${FOO+va-lu?e}", "va-lu?e"),
        ]);
    }

    #[test]
    fn curly_braces_in_defaults() {
        assert_values(&[
            (r#"ok ${missing:-{"json":1}}"#, r#"ok {"json":1}"#),
            (r#"ok ${missing-{"json":1}}"#, r#"ok {"json":1}"#),
            (r#"ok ${JSON:-{"json":1}}"#, r#"ok {"json":2}"#),
            (r#"ok ${JSON-{"json":1}}"#, r#"ok {"json":2}"#),
        ]);
    }

    #[test]
    fn expressions_side_by_side() {
        assert_values(&[("ok ${SUBDOMAIN:-redis}.${FOO:?}", "ok redis.first")]);
    }

    #[test]
    fn named_mappings_are_kept_verbatim() {
        for t in ["This ${missing[foo]} var", "This ${FOO[BAR]} var"] {
            assert_eq!(
                sub(t),
                Ok(Substituted {
                    value: t.into(),
                    missing: vec![]
                })
            );
        }
        assert_values(&[
            ("${a[b]:-x} $FOO", "${a[b]:-x} first"),
            ("${a[b]}x}", "${a[b]}x}"),
            ("$foo[bar]-bar", "[bar]-bar"),
            ("${a[b]:-}c]", "${a[b]:-}c]"),
            ("${a[b]:-x}}", "${a[b]:-x}}"),
            ("${a[{]}", "${a[{]}"),
        ]);
    }

    // ---- behaviour compose-go shows that its tests do not pin ----

    #[test]
    fn lone_dollars_and_digits_stay_literal() {
        assert_values(&[
            ("a$", "a$"),
            ("$ 1", "$ 1"),
            ("$1", "$1"),
            ("$-", "$-"),
            ("$$$", "$$"),
            ("$é", "$é"),
        ]);
    }

    #[test]
    fn names_are_ascii_words_without_dots() {
        assert_values(&[("$FOO.bar", "first.bar"), ("$FOO2", ""), ("${_x}", "")]);
        assert_invalid("${FOO.bar}");
        assert_invalid("${FOO:x}");
        assert_invalid("${FOO:}");
    }

    #[test]
    fn unterminated_or_multiline_expressions_are_invalid() {
        for t in [
            "${FOO",
            "${FOO:-x",
            "${FOO:-x\n}",
            "${A:-${B}",
            "x ${A:-${B:-y}\n}}",
        ] {
            assert_invalid(t);
        }
        // But several lines, each with complete expressions, are fine.
        assert_values(&[("${FOO:-x}\n${UNSET:-y}\n$FOO", "first\ny\nfirst")]);
    }

    #[test]
    fn unbalanced_braces_run_to_the_last_brace_on_the_line() {
        assert_values(&[
            ("${UNSET:-{x}", "{x"),
            ("${UNSET:-{}", "{"),
            ("${UNSET:-x}}", "x}"),
            // The character after `{` is not examined, so `{}` is balanced.
            ("${FOO:-{}}", "first"),
            ("${UNSET:-{}}", "{}"),
        ]);
    }

    #[test]
    fn arguments_are_evaluated_eagerly() {
        let err = sub("${FOO:-${UNSET:?boom}}").expect_err("eager");
        assert_eq!(
            err,
            TemplateError::Required {
                var: "UNSET".into(),
                message: "boom".into()
            }
        );
        assert_eq!(
            sub("${FOO:-$UNSET}").map(|s| (s.value, s.missing)),
            Ok(("first".into(), vec!["UNSET".into()]))
        );
        assert_invalid("${FOO:-${}}");
    }

    #[test]
    fn missing_is_ordered_and_deduplicated() {
        let got = sub("$B ${A} $B ${C:-$A} $FOO $D").map(|s| s.missing);
        assert_eq!(got, Ok(vec!["B".into(), "A".into(), "D".into()]));
    }

    #[test]
    fn substituted_values_are_not_reinterpolated() {
        let vars: HashMap<String, String> =
            [("V".to_owned(), "$FOO ${BAR:?x} $$".to_owned())].into();
        assert_eq!(
            sub_with("<${V}> $V", &vars).map(|s| s.value),
            Ok("<$FOO ${BAR:?x} $$> $FOO ${BAR:?x} $$".into())
        );
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let ok = format!(
            "{}x{}",
            "${U:-".repeat(MAX_NESTING),
            "}".repeat(MAX_NESTING)
        );
        assert_values(&[(ok.as_str(), "x")]);
        let deep = format!(
            "{}x{}",
            "${U:-".repeat(MAX_NESTING + 1),
            "}".repeat(MAX_NESTING + 1)
        );
        assert_invalid(&deep);
        let huge = format!("{}x{}", "${U:-".repeat(10_000), "}".repeat(10_000));
        assert_invalid(&huge);
    }

    #[test]
    fn error_display() {
        assert_eq!(
            sub("a ${ b").map_err(|e| e.to_string()),
            Err("invalid interpolation format for a ${ b: \"${\" must be followed by a variable name".into())
        );
        assert_eq!(
            TemplateError::Required {
                var: "X".into(),
                message: String::new()
            }
            .to_string(),
            "required variable X is missing a value"
        );
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn none(_: &str) -> Option<String> {
            None
        }

        proptest! {
            #[test]
            fn text_without_dollar_is_unchanged(s in "[^$]*") {
                let got = substitute(&s, &none).map(|r| r.value);
                prop_assert_eq!(got, Ok(s));
            }

            #[test]
            fn double_dollar_is_one_dollar(a in "[^$]*", b in "[^$]*") {
                let got = substitute(&format!("{a}$${b}"), &none).map(|r| r.value);
                prop_assert_eq!(got, Ok(format!("{a}${b}")));
            }

            #[test]
            fn escaping_every_dollar_round_trips(s in any::<String>()) {
                let got = substitute(&s.replace('$', "$$"), &none).map(|r| r.value);
                prop_assert_eq!(got, Ok(s));
            }

            #[test]
            fn set_variable_yields_its_value_verbatim(v in any::<String>(), name in "[A-Za-z_][A-Za-z0-9_]{0,8}") {
                let lookup = |k: &str| (k == name).then(|| v.clone());
                let got = substitute(&format!("${{{name}}}"), &lookup);
                prop_assert_eq!(got, Ok(Substituted { value: v.clone(), missing: vec![] }));
                let got = substitute(&format!("${name}"), &lookup).map(|r| r.value);
                prop_assert_eq!(got, Ok(v));
            }

            // `\n` is excluded because compose-go does not let an expression
            // span lines; `$` and `}` because they would be syntax.
            #[test]
            fn unset_variable_yields_default(d in "[^$}\n]*") {
                for op in [":-", "-"] {
                    let got = substitute(&format!("${{V{op}{d}}}"), &none);
                    prop_assert_eq!(got, Ok(Substituted { value: d.clone(), missing: vec![] }));
                }
            }

            #[test]
            fn never_panics(s in any::<String>()) {
                let _ = substitute(&s, &|k| (k.len() % 2 == 0).then(|| k.to_owned()));
            }

            #[test]
            fn never_panics_on_template_soup(s in "[${}:?+\\-\\[\\]a_\n ]{0,40}") {
                let r = substitute(&s, &|k| (k == "a").then(String::new));
                if let Ok(r) = r {
                    for m in &r.missing {
                        prop_assert_eq!(r.missing.iter().filter(|x| *x == m).count(), 1);
                    }
                }
            }
        }
    }
}
