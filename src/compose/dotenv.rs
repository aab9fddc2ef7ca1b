//! `.env` parsing in the dialect of compose-go's `dotenv` package (a fork of
//! joho/godotenv): what `docker compose` accepts in `.env`, `--env-file` and
//! `env_file:` files.
//!
//! This module owns turning the text of one such file into an ordered map of
//! variables. It must not read files or the process environment (the caller
//! passes the text and a lookup function), must not merge several files (the
//! caller chains lookups, as compose-go does), and must not panic on any input.
//! `${VAR}` expansion inside values is the sibling interpolation module's job.
//!
//! The dialect, compose-go's quirks included:
//!
//! * A leading UTF-8 BOM is dropped. Blank space and lines starting with `#`
//!   are skipped. `export` followed by white space is dropped.
//! * A key ends at `=`, at `:` (YAML-like `KEY: value`) or at a line break (a
//!   bare `KEY`, *inherited*: it takes the lookup's value, or is left out when
//!   the lookup has none). Keys may hold letters, digits, `_ . - [ ]`, may
//!   start with a digit and may even be empty (`="v"`); a space in a key is an
//!   error, any other character too.
//! * Unquoted values run to the end of the line, lose a ` #` comment (the space
//!   is required: `a#b` is a value) and trailing white space, and are
//!   interpolated.
//! * `'single'` quoted values are literal, except that `\'` is a quote.
//!   `"double"` quoted values turn `\"` into a quote, then the escapes `\a \b
//!   \f \n \r \t \v \\ \$` and `\0ddd` (octal), and are then interpolated.
//!   Quoted values may span lines. Whatever follows the closing quote on the
//!   same line is parsed as if it started a new line (so `A="x" B=y` defines
//!   two keys, and `A="x" junk` inherits `junk`).
//! * Interpolation looks a name up in the caller's lookup first and only then
//!   among the keys defined earlier in the file: the environment wins, as in
//!   compose-go (`OPTION_A=1` then `OPTION_B=$OPTION_A` gives `OPTION_B` the
//!   environment's `OPTION_A` if there is one).

use indexmap::IndexMap;

use super::interpolate;

/// A `.env` file that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct DotenvError {
    /// 1-based line of the statement at fault.
    pub line: usize,
    /// What is wrong, worded like compose-go.
    pub message: String,
}

/// Parse `src`. `lookup` resolves variables that are not defined earlier in the
/// same file (the shell environment), used both for `${VAR}` expansion inside
/// values and for bare `KEY` lines (inherited: the key gets the lookup's value,
/// or is omitted when the lookup has none).
///
/// Keys keep the order in which they were first defined; a key defined again
/// keeps its place and takes the new value.
pub fn parse(
    src: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<IndexMap<String, String>, DotenvError> {
    // Editors on Windows like to start files with a BOM; compose-go drops it.
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut parser = Parser {
        line: 1,
        lookup,
        out: IndexMap::new(),
    };
    let mut rest = src;
    while let Some(statement) = parser.statement_start(rest) {
        rest = parser.statement(statement)?;
    }
    Ok(parser.out)
}

struct Parser<'a> {
    /// 1-based line of the cursor, advanced on every line break consumed.
    line: usize,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    out: IndexMap<String, String>,
}

impl Parser<'_> {
    /// Skip white space and comment lines, counting line breaks. `None` at the
    /// end of the input.
    fn statement_start<'s>(&mut self, mut src: &'s str) -> Option<&'s str> {
        loop {
            let mut start = None;
            for (i, c) in src.char_indices() {
                if c == '\n' {
                    self.line += 1;
                }
                if !c.is_whitespace() {
                    start = Some(i);
                    break;
                }
            }
            src = src.get(start?..)?;
            if !src.starts_with('#') {
                return Some(src);
            }
            // Stop *at* the line break so that the next round counts it.
            src = src.get(src.find('\n')?..)?;
        }
    }

    /// Parse one statement at the start of `src`; return what follows it.
    fn statement<'s>(&mut self, src: &'s str) -> Result<&'s str, DotenvError> {
        let line = self.line;
        let (key, rest, inherited) = self.locate_key(src)?;
        // Only a plain space is refused, like compose-go: a key's inner tab
        // survives.
        if key.contains(' ') {
            return Err(error(line, "key cannot contain a space"));
        }
        if inherited {
            // The lookup only: a bare `KEY` does not re-read an earlier `KEY=`.
            if let Some(value) = (self.lookup)(key) {
                self.out.insert(key.to_owned(), value);
            }
            return Ok(rest);
        }
        let (value, rest) = self.value(rest, line)?;
        self.out.insert(key.to_owned(), value);
        Ok(rest)
    }

    /// Split `src` into key, the text after the key's terminator (inline space
    /// trimmed), and whether the key is inherited (ended by a line break).
    fn locate_key<'s>(&mut self, src: &'s str) -> Result<(&'s str, &'s str, bool), DotenvError> {
        let src = strip_export(src);
        let mut terminator = None;
        for (i, c) in src.char_indices() {
            // Spaces are allowed while scanning so that `KEY = v` works; a
            // space *inside* the key is refused by the caller.
            if is_inline_space(c) {
                continue;
            }
            match c {
                '=' | ':' | '\n' => {
                    terminator = Some((i, c));
                    break;
                }
                _ if is_key_char(c) => {}
                _ => {
                    return Err(error(
                        self.line,
                        format!(
                            "unexpected character {:?} in variable name {:?}",
                            c.to_string(),
                            src.split('\n').next().unwrap_or_default()
                        ),
                    ));
                }
            }
        }
        let Some((i, c)) = terminator else {
            if src.is_empty() {
                return Err(error(self.line, "zero length string"));
            }
            // A bare key on the last line, without a final line break.
            // compose-go would store the text as the value of the empty key
            // here; treating it like any other bare key is what users mean.
            return Ok((src.trim_end(), "", true));
        };
        let key = src.get(..i).unwrap_or_default();
        let inherited = c == '\n';
        if inherited {
            self.line += 1;
        }
        let rest = src
            .get(i + c.len_utf8()..)
            .unwrap_or_default()
            .trim_start_matches(is_inline_space);
        Ok((key.trim_end(), rest, inherited))
    }

    /// Parse the value at the start of `src` for the statement on `line`;
    /// return it and what follows it.
    fn value<'s>(&mut self, src: &'s str, line: usize) -> Result<(String, &'s str), DotenvError> {
        match src.chars().next() {
            Some(quote @ ('"' | '\'')) => self.quoted(src, quote, line),
            _ => {
                let (raw, rest) = src.split_once('\n').unwrap_or((src, ""));
                self.line += 1;
                // An inline comment needs a space before `#`: `a#b` is a value.
                let raw = raw.split_once(" #").map_or(raw, |(value, _)| value);
                Ok((self.expand(raw.trim_end(), line)?, rest))
            }
        }
    }

    /// Parse the value quoted with `quote` at the start of `src`.
    fn quoted<'s>(
        &mut self,
        src: &'s str,
        quote: char,
        line: usize,
    ) -> Result<(String, &'s str), DotenvError> {
        let mut raw = String::new();
        let mut escaped = false;
        for (i, c) in src.char_indices().skip(1) {
            if c == '\n' {
                self.line += 1;
            }
            if escaped {
                escaped = false;
                // An escaped quote loses its backslash; any other escaped
                // character keeps it, for the escape pass of double quotes
                // (single quotes keep it for good).
                if c != quote {
                    raw.push('\\');
                }
                raw.push(c);
            } else if c == '\\' {
                escaped = true;
            } else if c == quote {
                let rest = src.get(i + c.len_utf8()..).unwrap_or_default();
                let value = if quote == '"' {
                    self.expand(&expand_escapes(&raw), line)?
                } else {
                    raw
                };
                return Ok((value, rest));
            } else {
                raw.push(c);
            }
        }
        Err(error(
            line,
            format!(
                "unterminated quoted value {}",
                src.split('\n').next().unwrap_or_default()
            ),
        ))
    }

    /// Interpolate `value`: the caller's lookup first, then the keys defined
    /// so far in this file.
    fn expand(&self, value: &str, line: usize) -> Result<String, DotenvError> {
        let lookup = self.lookup;
        let out = &self.out;
        let resolve = |name: &str| lookup(name).or_else(|| out.get(name).cloned());
        interpolate::substitute(value, &resolve)
            .map(|substituted| substituted.value)
            .map_err(|e| error(line, e.to_string()))
    }
}

fn error(line: usize, message: impl Into<String>) -> DotenvError {
    DotenvError {
        line,
        message: message.into(),
    }
}

/// Drop a leading `export` when white space follows it (Go's `^export\s+`,
/// where `\s` is `[\t\n\f\r ]`), and the inline space after it.
fn strip_export(src: &str) -> &str {
    match src.strip_prefix("export") {
        Some(rest) if rest.starts_with(['\t', '\n', '\u{c}', '\r', ' ']) => {
            rest.trim_start_matches(is_inline_space)
        }
        _ => src,
    }
}

/// White space that does not end a line (compose-go's `isSpace`).
fn is_inline_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    )
}

fn is_key_char(c: char) -> bool {
    c.is_alphabetic() || c.is_numeric() || matches!(c, '_' | '.' | '-' | '[' | ']')
}

/// The escapes of double-quoted values. Only these are recognised (Go's
/// `\x`, `\u`, `\U` are not); an unrecognised one is kept as written.
fn expand_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let plain = match chars.peek() {
            Some('a') => '\u{7}',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('v') => '\u{b}',
            Some('"') => '"',
            Some('\\') => '\\',
            Some('$') => {
                // The interpolation that follows only knows `$$` as an
                // escaped dollar.
                chars.next();
                out.push_str("$$");
                continue;
            }
            Some('0') => {
                chars.next();
                let mut digits = String::new();
                while digits.len() < 3 {
                    match chars.peek() {
                        Some(&d) if d.is_ascii_digit() => {
                            digits.push(d);
                            chars.next();
                        }
                        _ => break,
                    }
                }
                match octal(&digits) {
                    Some(decoded) => out.push(decoded),
                    None => {
                        out.push_str("\\0");
                        out.push_str(&digits);
                    }
                }
                continue;
            }
            // Not an escape (`\c` included, which compose-go matches but Go
            // cannot decode): keep the backslash, the next character is
            // handled on its own.
            _ => {
                out.push('\\');
                continue;
            }
        };
        chars.next();
        out.push(plain);
    }
    out
}

/// `\0ddd`: compose-go rewrites it to Go's `\ddd`, which decodes only with
/// exactly three octal digits worth at most 255, to that code point.
fn octal(digits: &str) -> Option<char> {
    if digits.len() != 3 {
        return None;
    }
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|&v| v <= 255)
        .and_then(char::from_u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap};
    use std::path::{Path, PathBuf};

    type Pairs = Vec<(String, String)>;

    fn pairs(expected: &[(&str, &str)]) -> Pairs {
        expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn parse_with(src: &str, env: &[(&str, &str)]) -> Result<Pairs, DotenvError> {
        let env: HashMap<String, String> = pairs(env).into_iter().collect();
        parse(src, &|k| env.get(k).cloned()).map(|m| m.into_iter().collect())
    }

    fn parse_ok(src: &str) -> Pairs {
        parse_with(src, &[]).unwrap_or_else(|e| panic!("{src:?} failed: {e}"))
    }

    /// `shared/conformance` sits next to the repository: /work/shared for
    /// /work/main. Walk up instead of hard-coding so that any checkout works,
    /// and fail loudly when it is not there: a skipped conformance test is a
    /// passing one.
    fn fixtures_dir() -> PathBuf {
        let start = Path::new(env!("CARGO_MANIFEST_DIR"));
        for dir in start.ancestors() {
            if dir.join("shared/conformance").is_dir() {
                return dir.join("shared/conformance/compose-go/dotenv-fixtures");
            }
        }
        panic!("no shared/conformance in any parent of {}", start.display());
    }

    fn fixture(name: &str) -> String {
        let path = fixtures_dir().join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Fixture file name, the lookup's variables, the expected result.
    type FixtureCase = (
        &'static str,
        &'static [(&'static str, &'static str)],
        Result<Pairs, DotenvError>,
    );

    const OS_KEY: &str = "VAR_TO_BE_LOADED_FROM_OS_ENV";
    const OS_VAL: &str = "SOME_RANDOM_VALUE";

    /// Every fixture and its full expected result, from compose-go's
    /// godotenv_test.go. compose-go's tests only check the keys they list; the
    /// complete maps here follow from its parser (`OPTION_K`, `456`).
    fn fixture_cases() -> Vec<FixtureCase> {
        let plain = pairs(&[
            ("OPTION_A", "1"),
            ("OPTION_B", "2"),
            ("OPTION_C", "3"),
            ("OPTION_D", "4"),
            ("OPTION_E", "5"),
            // compose-go's Read()/ReadWithLookup() drop keys starting with a
            // digit, but Parse/ParseWithLookup (what Compose uses for `.env`
            // and env_file) keep them; `parse` is the latter.
            ("456", "ABC"),
            ("OPTION_F", ""),
            ("OPTION_G", ""),
            ("OPTION_H", "my string"),
        ]);
        let subst = |a: &str, b: &str| {
            let d = format!("{b}_{b}");
            pairs(&[
                ("OPTION_A", a),
                ("OPTION_B", b),
                ("OPTION_C", b),
                ("OPTION_D", d.as_str()),
                ("OPTION_E", ""),
            ])
        };
        vec![
            // Not used by compose-go's tests; the YAML-like `KEY:VALUE` form.
            (
                "custom.format",
                &[],
                Ok(pairs(&[("FOO", "BAR"), ("ZOT", "QIX")])),
            ),
            (
                "equals.env",
                &[],
                Ok(pairs(&[(
                    "OPTION_A",
                    "postgres://localhost:5432/database?sslmode=disable",
                )])),
            ),
            (
                "exported.env",
                &[],
                Ok(pairs(&[("OPTION_A", "2"), ("OPTION_B", "\\n")])),
            ),
            (
                "inherited-multi-var.env",
                &[(OS_KEY, OS_VAL)],
                Ok(pairs(&[("foo", "bar"), (OS_KEY, OS_VAL), ("bar", "baz")])),
            ),
            ("inherited-not-found.env", &[], Ok(vec![])),
            (
                "inherited-single-var.env",
                &[(OS_KEY, OS_VAL)],
                Ok(pairs(&[(OS_KEY, OS_VAL)])),
            ),
            (
                "invalid1.env",
                &[],
                Err(DotenvError {
                    line: 7,
                    message: "key cannot contain a space".into(),
                }),
            ),
            ("plain.env", &[], Ok(plain.clone())),
            (
                "quoted.env",
                &[],
                Ok(pairs(&[
                    ("OPTION_A", "1"),
                    ("OPTION_B", "2"),
                    ("OPTION_C", ""),
                    ("OPTION_D", "\\n"),
                    ("OPTION_E", "1"),
                    ("OPTION_F", "2"),
                    ("OPTION_G", ""),
                    ("OPTION_H", "\n"),
                    ("OPTION_I", "echo 'asd'"),
                    ("OPTION_J", "first line\nsecond line\nthird line\nand so on"),
                    ("OPTION_K", "Let's go!"),
                    ("OPTION_Z", "last value"),
                ])),
            ),
            (
                "special.env",
                &[],
                Ok(pairs(&[
                    ("VAR.WITH.DOTS", "dots"),
                    ("VAR_WITH_UNDERSCORES", "underscores"),
                    ("VAR-WITH-DASHES", "dashes"),
                ])),
            ),
            ("substitutions-default.env", &[], Ok(subst("1", "1"))),
            ("substitutions.env", &[], Ok(subst("1", "1"))),
            (
                "unquoted.env",
                &[],
                Ok(pairs(&[
                    ("OPTION_A", "some quoted phrase"),
                    ("OPTION_B", "first one with an unquoted phrase"),
                    ("OPTION_C", "then another one with an unquoted phrase"),
                    (
                        "OPTION_D",
                        "then another one with an unquoted phrase special è char",
                    ),
                    ("OPTION_E", "then another one quoted phrase"),
                ])),
            ),
            ("utf8-bom.env", &[], Ok(plain)),
        ]
    }

    #[test]
    fn fixtures_parse_to_their_expected_maps() {
        for (name, env, expected) in fixture_cases() {
            assert_eq!(parse_with(&fixture(name), env), expected, "fixture {name}");
        }
    }

    #[test]
    fn every_fixture_is_covered() {
        let on_disk: BTreeSet<String> = std::fs::read_dir(fixtures_dir())
            .unwrap_or_else(|e| panic!("{}: {e}", fixtures_dir().display()))
            .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("reading fixtures: {e}"));
        let mut covered: BTreeSet<String> = fixture_cases()
            .into_iter()
            .map(|(n, _, _)| n.to_owned())
            .collect();
        covered.insert("LICENSE.godotenv".to_owned());
        assert_eq!(on_disk, covered);
    }

    #[test]
    fn utf8_bom_fixture_really_has_a_bom() {
        assert!(fixture("utf8-bom.env").starts_with('\u{feff}'));
    }

    #[test]
    fn environment_takes_precedence_in_substitutions() {
        // TestSubstitutionsWithEnvFilePrecedence: the file's own OPTION_A stays
        // 1, but references to it see the environment's 5.
        let got = parse_with(&fixture("substitutions.env"), &[("OPTION_A", "5")]);
        let expected = pairs(&[
            ("OPTION_A", "1"),
            ("OPTION_B", "5"),
            ("OPTION_C", "5"),
            ("OPTION_D", "5_5"),
            ("OPTION_E", ""),
        ]);
        assert_eq!(got, Ok(expected));
        // TestSubstitutionsWithEnvFileDefaultValuePrecedence.
        let got = parse_with(&fixture("substitutions-default.env"), &[("OPTION_A", "5")]);
        let expected = pairs(&[
            ("OPTION_A", "5"),
            ("OPTION_B", "5"),
            ("OPTION_C", "5"),
            ("OPTION_D", "5_5"),
            ("OPTION_E", ""),
        ]);
        assert_eq!(got, Ok(expected));
    }

    #[test]
    fn inherited_not_found_asks_the_lookup() {
        // TestInheritedEnvVariableNotFoundWithLookup.
        let asked = std::cell::RefCell::new(Vec::new());
        let got = parse(&fixture("inherited-not-found.env"), &|k| {
            asked.borrow_mut().push(k.to_owned());
            None
        });
        assert_eq!(got.map(|m| m.len()), Ok(0));
        assert_eq!(asked.into_inner(), vec!["VARIABLE_NOT_FOUND".to_owned()]);
    }

    // ---- ported from compose-go dotenv/godotenv_test.go ----

    #[test]
    fn parse_simple() {
        assert_eq!(
            parse_ok("ONE=1\nTWO='2'\nTHREE = \"3\""),
            pairs(&[("ONE", "1"), ("TWO", "2"), ("THREE", "3")])
        );
    }

    #[test]
    fn parsing() {
        let cases: &[(&str, &str, &str)] = &[
            ("FOO=bar", "FOO", "bar"),
            ("FOO =bar", "FOO", "bar"),
            ("FOO= bar", "FOO", "bar"),
            (r#"FOO="bar""#, "FOO", "bar"),
            ("FOO='bar'", "FOO", "bar"),
            (r#"FOO="escaped\"bar""#, "FOO", r#"escaped"bar"#),
            (r#"FOO="\"quoted\"""#, "FOO", r#""quoted""#),
            (r#"FOO="'d'""#, "FOO", "'d'"),
            ("OPTION_A: 1", "OPTION_A", "1"),
            ("OPTION_A: Foo=bar", "OPTION_A", "Foo=bar"),
            ("OPTION_A=1:B", "OPTION_A", "1:B"),
            ("export OPTION_A=2", "OPTION_A", "2"),
            (r"export OPTION_B='\n'", "OPTION_B", r"\n"),
            ("export exportFoo=2", "exportFoo", "2"),
            ("exportFOO=2", "exportFOO", "2"),
            ("export_FOO =2", "export_FOO", "2"),
            ("export.FOO= 2", "export.FOO", "2"),
            ("export\tOPTION_A=2", "OPTION_A", "2"),
            ("  export OPTION_A=2", "OPTION_A", "2"),
            ("\texport OPTION_A=2", "OPTION_A", "2"),
            (r#"export OPTION_A="export A""#, "OPTION_A", "export A"),
            (r#"FOO="bar\nbaz""#, "FOO", "bar\nbaz"),
            (r"FOO=a\tb", "FOO", r"a\tb"),
            (r#"FOO="a\tb""#, "FOO", "a\tb"),
            (
                r#"KEY="Z\aZ\bZ\fZ\nZ\rZ\tZ\vZ\\Z\0123Z""#,
                "KEY",
                "Z\u{7}Z\u{8}Z\u{c}Z\nZ\rZ\tZ\u{b}Z\\ZSZ",
            ),
            ("FOO.BAR=foobar", "FOO.BAR", "foobar"),
            ("FOO=foobar=", "FOO", "foobar="),
            ("FOO=bar ", "FOO", "bar"),
            ("FOO=bar # this is foo", "FOO", "bar"),
            ("FOO=bar #this is foo", "FOO", "bar"),
            ("FOO=bar #", "FOO", "bar"),
            (
                "FOO=123#not-an-inline-comment",
                "FOO",
                "123#not-an-inline-comment",
            ),
            (r#"FOO="bar#baz""#, "FOO", "bar#baz"),
            (r##"FOO="bar#baz"#"##, "FOO", "bar#baz"),
            (r#"FOO="bar#baz" # comment"#, "FOO", "bar#baz"),
            ("FOO='bar#baz' # comment", "FOO", "bar#baz"),
            (r#"FOO="bar#baz#bang" # comment"#, "FOO", "bar#baz#bang"),
            (r#"FOO="ba#r""#, "FOO", "ba#r"),
            ("FOO='ba#r'", "FOO", "ba#r"),
            (r#"FOO="bar\n\ b\az""#, "FOO", "bar\n\\ b\u{7}z"),
            (r#"FOO="bar\\\n\ b\az""#, "FOO", "bar\\\n\\ b\u{7}z"),
            (r#"FOO="bar\\r\ b\az""#, "FOO", "bar\\r\\ b\u{7}z"),
            (r#"FOO="bar\nbaz\\""#, "FOO", "bar\nbaz\\"),
            (r#"="value""#, "", "value"),
            (" KEY =value", "KEY", "value"),
            ("   KEY=value", "KEY", "value"),
            ("\tKEY=value", "KEY", "value"),
            (r#"KEY="\0123""#, "KEY", "S"),
            (r#"KEY="\x07""#, "KEY", r"\x07"),
            (r#"KEY="\u12e4""#, "KEY", r"\u12e4"),
            (r#"KEY="\U00101234""#, "KEY", r"\U00101234"),
        ];
        for (line, key, value) in cases {
            assert_eq!(parse_ok(line), pairs(&[(key, value)]), "line {line:?}");
        }
        assert!(parse_with("lol$wut", &[]).is_err());
    }

    #[test]
    fn unterminated_quotes() {
        for src in [
            r#"KEY=""#,
            r#"KEY="value"#,
            r#"KEY="value\""#,
            r#"KEY="value'"#,
            "KEY='",
            "KEY='value",
            r"KEY='value\'",
            r#"KEY='value""#,
        ] {
            match parse_with(src, &[]) {
                Err(e) => assert!(
                    e.message.contains("unterminated quoted value"),
                    "{src:?}: {e}"
                ),
                Ok(m) => panic!("{src:?} parsed to {m:?}"),
            }
        }
    }

    #[test]
    fn lines_to_ignore() {
        let statement = |src: &str| {
            let mut parser = Parser {
                line: 1,
                lookup: &|_| None,
                out: IndexMap::new(),
            };
            parser.statement_start(src).map(str::to_owned)
        };
        for src in ["\n", "\r\n", "\t\t ", "# Comment", "\t # comment"] {
            assert_eq!(statement(src), None, "{src:?}");
        }
        assert_eq!(
            statement(r"export OPTION_B='\n'"),
            Some(r"export OPTION_B='\n'".to_owned())
        );
    }

    #[test]
    fn expanding() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("FOO=test\nBAR=$FOO", &[("FOO", "test"), ("BAR", "test")]),
            (
                "FOO=test\nBAR=${FOO}bar",
                &[("FOO", "test"), ("BAR", "testbar")],
            ),
            ("BAR=$FOO", &[("BAR", "")]),
            (
                "FOO=test\nBAR=\"quote $FOO\"",
                &[("FOO", "test"), ("BAR", "quote test")],
            ),
            ("BAR='quote $FOO'", &[("BAR", "quote $FOO")]),
            (r#"FOO="foo\$BAR""#, &[("FOO", "foo$BAR")]),
            (r#"FOO="foo\${BAR}""#, &[("FOO", "foo${BAR}")]),
            (
                "FOO=test\nBAR=\"foo\\${FOO} ${FOO}\"",
                &[("FOO", "test"), ("BAR", "foo${FOO} test")],
            ),
        ];
        for (src, expected) in cases {
            assert_eq!(parse_ok(src), pairs(expected), "{src:?}");
        }
    }

    #[test]
    fn variable_string_value_separator() {
        let src = "TEST_URLS=\"stratum+tcp://stratum.antpool.com:3333\nstratum+tcp://stratum.antpool.com:443\"";
        assert_eq!(
            parse_ok(src),
            pairs(&[(
                "TEST_URLS",
                "stratum+tcp://stratum.antpool.com:3333\nstratum+tcp://stratum.antpool.com:443"
            )])
        );
    }

    #[test]
    fn expanding_environment_with_lookup() {
        assert_eq!(
            parse_with("TEST=$ME", &[("ME", "YES")]),
            Ok(pairs(&[("TEST", "YES")]))
        );
    }

    // ---- ported from compose-go dotenv/godotenv_var_expansion_test.go ----

    #[test]
    fn var_expansion_modifiers() {
        let prelude = "EMPTY_VAR=\nTEST_VAR=Test Value\n";
        let result = |template: &str| {
            parse_with(&format!("{prelude}RESULT={template}"), &[])
                .map(|m| m.into_iter().last().map(|(_, v)| v))
        };
        for (template, expected) in [
            ("${UNSET_VAR:-Default Value}", "Default Value"),
            ("${EMPTY_VAR:-Default Value}", "Default Value"),
            ("${TEST_VAR:-Default Value}", "Test Value"),
            ("${UNSET_VAR-Default Value}", "Default Value"),
            ("${EMPTY_VAR-Default Value}", ""),
            ("${TEST_VAR-Default Value}", "Test Value"),
            ("${TEST_VAR:?Default Value}", "Test Value"),
            ("${EMPTY_VAR?Test error}", ""),
            ("${TEST_VAR?Default Value}", "Test Value"),
        ] {
            assert_eq!(
                result(template),
                Ok(Some(expected.to_owned())),
                "{template}"
            );
        }
        for (template, var) in [
            ("${UNSET_VAR:?Test error}", "UNSET_VAR"),
            ("${EMPTY_VAR:?Test error}", "EMPTY_VAR"),
            ("${UNSET_VAR?Test error}", "UNSET_VAR"),
        ] {
            let message = format!("required variable {var} is missing a value: Test error");
            assert_eq!(
                result(template),
                Err(DotenvError { line: 3, message }),
                "{template}"
            );
        }
    }

    // ---- ported from compose-go dotenv/parser_test.go ----

    #[test]
    fn parse_bytes_with_unusual_keys() {
        let src = "\na=b\na[1]=c\na.propertyKey=d\nárvíztűrő-TÜKÖRFÚRÓGÉP=ÁRVÍZTŰRŐ-tükörfúrógép\n";
        assert_eq!(
            parse_ok(src),
            pairs(&[
                ("a", "b"),
                ("a[1]", "c"),
                ("a.propertyKey", "d"),
                ("árvíztűrő-TÜKÖRFÚRÓGÉP", "ÁRVÍZTŰRŐ-tükörfúrógép"),
            ])
        );
    }

    #[test]
    fn parse_variable_error_message() {
        let err = parse_with("%!(EXTRA string)=foo", &[]).expect_err("invalid key");
        assert_eq!(
            err.to_string(),
            r#"line 1: unexpected character "%" in variable name "%!(EXTRA string)=foo""#
        );
    }

    #[test]
    fn many_keys() {
        let src: Vec<String> = (0..1000).map(|i| format!("KEY{i}=VALUE{i}")).collect();
        assert_eq!(parse_ok(&src.join("\n")).len(), 1000);
    }

    // ---- behaviour of compose-go's parser that its tests do not pin ----

    #[test]
    fn inherited_keys_use_the_lookup_only() {
        assert_eq!(parse_with("A=1\nA\n", &[]), Ok(pairs(&[("A", "1")])));
        assert_eq!(
            parse_with("A=1\nB=2\nA\n", &[("A", "env")]),
            Ok(pairs(&[("A", "env"), ("B", "2")]))
        );
    }

    #[test]
    fn redefined_key_keeps_its_place() {
        assert_eq!(
            parse_ok("A=1\nB=2\nA=3\n"),
            pairs(&[("A", "3"), ("B", "2")])
        );
    }

    #[test]
    fn text_after_a_closing_quote_starts_a_statement() {
        assert_eq!(parse_ok("A=\"x\" B=y\n"), pairs(&[("A", "x"), ("B", "y")]));
        assert_eq!(
            parse_with("A='x' junk\n", &[("junk", "J")]),
            Ok(pairs(&[("A", "x"), ("junk", "J")]))
        );
    }

    #[test]
    fn comment_needs_a_preceding_space() {
        assert_eq!(
            parse_ok("A= #x\nB=y\t#z\n"),
            pairs(&[("A", "#x"), ("B", "y\t#z")])
        );
    }

    #[test]
    fn crlf_line_endings() {
        assert_eq!(
            parse_with(
                "A=1\r\nB='2'\r\nC\r\n# c\r\nD=\"x\r\ny\"\r\n",
                &[("C", "c")]
            ),
            Ok(pairs(&[
                ("A", "1"),
                ("B", "2"),
                ("C", "c"),
                ("D", "x\r\ny")
            ]))
        );
    }

    #[test]
    fn dollars_in_values() {
        assert_eq!(
            parse_ok("A=$$x\nB='$$x'\nC=\"$$x\"\nD=\\$x\nE=a$\n"),
            pairs(&[
                ("A", "$x"),
                ("B", "$$x"),
                ("C", "$x"),
                ("D", "\\"),
                ("E", "a$")
            ])
        );
    }

    #[test]
    fn bare_key_on_the_last_line_is_inherited() {
        assert_eq!(
            parse_with("A=1\nB", &[("B", "b")]),
            Ok(pairs(&[("A", "1"), ("B", "b")]))
        );
        assert_eq!(parse_with("A=1\nB", &[]), Ok(pairs(&[("A", "1")])));
        assert_eq!(
            parse_with("A=1\nB C", &[]),
            Err(DotenvError {
                line: 2,
                message: "key cannot contain a space".into()
            })
        );
        assert_eq!(
            parse_with("A=1\nexport ", &[]),
            Err(DotenvError {
                line: 2,
                message: "zero length string".into()
            })
        );
    }

    #[test]
    fn error_lines_count_comments_blanks_and_multiline_values() {
        let src = "# c\n\nA='1\n2\n3'\nB\n  \nC=\"x\n\"\nbad key=1\n";
        assert_eq!(
            parse_with(src, &[]),
            Err(DotenvError {
                line: 10,
                message: "key cannot contain a space".into()
            })
        );
        let src = "A=1\n\nB=${UNSET:?set it}\n";
        assert_eq!(
            parse_with(src, &[]),
            Err(DotenvError {
                line: 3,
                message: "required variable UNSET is missing a value: set it".into()
            })
        );
        let src = "A=1\nB=\"open\n\nC=3\n";
        assert_eq!(
            parse_with(src, &[]),
            Err(DotenvError {
                line: 2,
                message: "unterminated quoted value \"open".into()
            })
        );
        let src = "A=1\nB=${\n";
        assert_eq!(parse_with(src, &[]).map_err(|e| e.line), Err(2));
    }

    #[test]
    fn octal_and_unknown_escapes() {
        assert_eq!(
            parse_ok(r#"A="\0101\01\0\0128\0400\0377\01234\c\q""#),
            pairs(&[("A", "A\\01\\0\\0128\\0400\u{ff}S4\\c\\q")])
        );
    }

    #[test]
    fn empty_and_blank_inputs() {
        for src in [
            "",
            "\n\n",
            "   \t",
            "# only a comment",
            "\u{feff}",
            "\u{feff}# c\n",
        ] {
            assert_eq!(parse_ok(src), vec![], "{src:?}");
        }
    }

    #[test]
    fn export_edge_cases() {
        assert_eq!(parse_ok("export=1\n"), pairs(&[("export", "1")]));
        assert_eq!(parse_ok("export  A: b\n"), pairs(&[("A", "b")]));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(src in any::<String>()) {
                let _ = parse(&src, &|k| (k.len() % 2 == 0).then(|| k.to_owned()));
            }

            #[test]
            fn never_panics_on_dotenv_soup(src in "[A-Z=:#'\"\\\\$ {}\n\t\r\u{feff}-]{0,60}") {
                let lines = src.matches('\n').count() + 1;
                if let Err(e) = parse(&src, &|_| None) {
                    prop_assert!(e.line >= 1 && e.line <= lines, "line {} of {}", e.line, lines);
                }
            }

            #[test]
            fn plain_values_round_trip(key in "[A-Za-z_][A-Za-z0-9_.]{0,10}", value in "[A-Za-z0-9_./:,+=-]{1,20}") {
                let expected = pairs(&[(key.as_str(), value.as_str())]);
                prop_assert_eq!(parse_ok(&format!("{key}={value}\n")), expected.clone());
                prop_assert_eq!(parse_ok(&format!("export {key} = {value} # c")), expected);
            }

            #[test]
            fn single_quotes_are_literal(key in "[A-Za-z_][A-Za-z0-9_]{0,10}", value in "[^'\\\\]{0,30}") {
                prop_assert_eq!(parse_ok(&format!("{key}='{value}'")), pairs(&[(key.as_str(), value.as_str())]));
            }
        }
    }
}
