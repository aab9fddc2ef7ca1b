//! Image references (`busybox`, `myreg:5000/ns/app:1`, `name@sha256:…`, `name:tag@sha256:…`):
//! this module owns their grammar, validation and normalization, done the way Docker does it
//! (the `distribution/reference` Go package: `ParseNormalizedNamed` followed by `TagNameOnly`,
//! and `FamiliarString` for display), plus two facts about the registry a reference names
//! (the host the distribution API is reached at, and whether it is a loopback registry that
//! is spoken to over plain HTTP by default). It is pure string handling with a hand-written
//! parser: it must not do I/O, resolve host names, read configuration or credentials, talk to
//! a registry, or decide any policy beyond those two facts; and it does not accept bare image
//! IDs or digests without a name (Docker's `ParseAnyReference`).
//!
//! Where this deliberately differs from Docker:
//! - A first path component that contains `.` but is not a valid host name
//!   (`foo_bar.com/app`) is rejected; Docker accepts it as a reference with an *empty*
//!   domain, which no registry can serve.
//! - [`Reference::familiar`] keeps the `docker.io/` prefix when dropping it would make the
//!   first path component read as a registry (`docker.io/foo.bar/app`,
//!   `docker.io/localhost/app`); Docker prints `foo.bar/app`, which then parses as a
//!   different reference. The familiar form therefore always parses back to the same value.
//! - The 255-character limit applies to the repository path (`library/busybox`), not to the
//!   registry domain: this is what `distribution/reference` does since v0.6.0 (older releases
//!   counted `docker.io/` as well).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The registry that names without a registry part refer to (Docker Hub).
const DEFAULT_DOMAIN: &str = "docker.io";
/// The legacy name of Docker Hub, normalized to [`DEFAULT_DOMAIN`].
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The host Docker Hub's distribution API is served from.
const DEFAULT_API_HOST: &str = "registry-1.docker.io";
/// The namespace of Docker Hub's official images, added to single-component names.
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag given to references that have neither a tag nor a digest.
const DEFAULT_TAG: &str = "latest";
/// The reserved first component that is always a registry.
const LOCALHOST: &str = "localhost";

/// The longest repository path (`library/busybox`, without the registry) Docker accepts.
pub const REPOSITORY_PATH_MAX_LEN: usize = 255;
/// The longest tag Docker accepts.
pub const TAG_MAX_LEN: usize = 128;

/// A parsed, normalized image reference: registry domain, repository path, and an optional
/// tag and digest, at least one of which is present (`latest` is filled in when neither was
/// given).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Why a string is not a valid image reference. Every variant but [`ReferenceError::Empty`]
/// carries the input it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The input was the empty string.
    #[error("invalid reference format: repository name must have at least one component")]
    Empty,
    /// The input was 64 lowercase hex digits: an image ID, not a name.
    #[error("invalid repository name ({input}), cannot specify 64-byte hexadecimal strings")]
    HexIdentifier {
        /// The reference as given.
        input: String,
    },
    /// The repository path contains uppercase letters.
    #[error(
        "invalid reference format: repository name ({repository}) must be lowercase (in {input:?})"
    )]
    Uppercase {
        /// The reference as given.
        input: String,
        /// The repository path after normalization (`library/Busybox`).
        repository: String,
    },
    /// The repository path is longer than [`REPOSITORY_PATH_MAX_LEN`].
    #[error(
        "invalid reference format: repository name must not be more than 255 characters \
         ({length} in {input:?})"
    )]
    NameTooLong {
        /// The reference as given.
        input: String,
        /// The length of the normalized repository path.
        length: usize,
    },
    /// The tag does not match `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[error(
        "invalid reference format: invalid tag {tag:?}: a tag is 1 to 128 letters, digits, \
         '_', '.' or '-', not starting with '.' or '-' (in {input:?})"
    )]
    InvalidTag {
        /// The reference as given.
        input: String,
        /// The offending tag.
        tag: String,
    },
    /// The digest is malformed, of an unsupported algorithm, or of the wrong length.
    #[error("invalid reference format: invalid digest {digest:?}: {reason} (in {input:?})")]
    InvalidDigest {
        /// The reference as given.
        input: String,
        /// The offending digest (everything after `@`).
        digest: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Anything else: a malformed registry domain or repository path.
    #[error("invalid reference format: {reason} (in {input:?})")]
    InvalidFormat {
        /// The reference as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ReferenceError {
    /// The reference string that failed to parse (empty for [`ReferenceError::Empty`]).
    pub fn input(&self) -> &str {
        match self {
            ReferenceError::Empty => "",
            ReferenceError::HexIdentifier { input }
            | ReferenceError::Uppercase { input, .. }
            | ReferenceError::NameTooLong { input, .. }
            | ReferenceError::InvalidTag { input, .. }
            | ReferenceError::InvalidDigest { input, .. }
            | ReferenceError::InvalidFormat { input, .. } => input,
        }
    }
}

impl Reference {
    /// Parses and normalizes an image reference the way `docker pull` does:
    /// `busybox` → `docker.io/library/busybox:latest`, `index.docker.io/x` → `docker.io/library/x`,
    /// `myreg:5000/app` → `myreg:5000/app:latest`. The tag `latest` is added only when there
    /// is neither a tag nor a digest; a tag and a digest given together are both kept.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if is_hex_identifier(s) {
            return Err(ReferenceError::HexIdentifier {
                input: s.to_owned(),
            });
        }
        let invalid = |reason: String| ReferenceError::InvalidFormat {
            input: s.to_owned(),
            reason,
        };

        let (registry, remainder) = split_docker_domain(s);

        // Neither the tag nor the digest may contain `@`, `/` or (the tag) `:`, so the digest
        // starts at the first `@` and the tag at a `:` after the last `/`.
        let (name_and_tag, digest) = match remainder.split_once('@') {
            Some((name_and_tag, digest)) => (name_and_tag, Some(digest)),
            None => (remainder.as_str(), None),
        };
        let (repository, tag) = match name_and_tag.rsplit_once(':') {
            Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag)),
            _ => (name_and_tag, None),
        };

        if repository.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase {
                input: s.to_owned(),
                repository: repository.to_owned(),
            });
        }
        if !is_domain_and_port(registry) {
            return Err(invalid(format!(
                "registry {registry:?} is not a valid host name, IPv4 address or [IPv6 address], \
                 with an optional :port"
            )));
        }
        for component in repository.split('/') {
            if component.is_empty() {
                return Err(invalid(format!(
                    "repository name {repository:?} has an empty path component"
                )));
            }
            if !is_path_component(component) {
                return Err(invalid(format!(
                    "repository path component {component:?} is invalid: it must be lowercase \
                     letters and digits, separated by '.', '_', '__' or dashes"
                )));
            }
        }
        if repository.len() > REPOSITORY_PATH_MAX_LEN {
            return Err(ReferenceError::NameTooLong {
                input: s.to_owned(),
                length: repository.len(),
            });
        }
        if let Some(tag) = tag {
            if !is_tag(tag) {
                return Err(ReferenceError::InvalidTag {
                    input: s.to_owned(),
                    tag: tag.to_owned(),
                });
            }
        }
        if let Some(digest) = digest {
            if let Err(reason) = check_digest(digest) {
                return Err(ReferenceError::InvalidDigest {
                    input: s.to_owned(),
                    digest: digest.to_owned(),
                    reason,
                });
            }
        }

        let tag = match (tag, digest) {
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (tag, _) => tag.map(str::to_owned),
        };
        Ok(Reference {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag,
            digest: digest.map(str::to_owned),
        })
    }

    /// The registry domain, with its port if any: `docker.io`, `localhost:5000`,
    /// `127.0.0.1:5000`, `[::1]:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path within the registry: `library/busybox`, `ns/app`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any (always present when there is no digest).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any: `sha256:<64 hex>` (or `sha384:`/`sha512:`).
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The reference as Docker prints it: without `docker.io/`, and without `library/` for
    /// official images: `busybox:latest`, `ns/app:1`, `myreg:5000/ns/app:1`,
    /// `busybox:1.36@sha256:…`. Always parses back to the same reference (see the module
    /// docs for the one case where that means keeping `docker.io/`).
    pub fn familiar(&self) -> String {
        let mut out = self.familiar_name();
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
        out
    }

    /// The host (with port, if any) the distribution API talks to: Docker Hub's
    /// `docker.io` → `registry-1.docker.io`; any other registry is its own host.
    pub fn api_host(&self) -> &str {
        if self.registry == DEFAULT_DOMAIN {
            DEFAULT_API_HOST
        } else {
            &self.registry
        }
    }

    /// True for `localhost` / `127.0.0.0/8` / `[::1]` registries (plain HTTP by default).
    pub fn is_loopback_registry(&self) -> bool {
        let host = registry_host(&self.registry);
        if host.eq_ignore_ascii_case(LOCALHOST) {
            return true;
        }
        if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            return v6.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
        }
        host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// The name part of [`Reference::familiar`]: registry and repository, shortened.
    fn familiar_name(&self) -> String {
        if self.registry != DEFAULT_DOMAIN {
            return format!("{}/{}", self.registry, self.repository);
        }
        if let Some(official) = self.repository.strip_prefix(OFFICIAL_REPO_PREFIX) {
            if !official.contains('/') {
                return official.to_owned();
            }
        }
        let first = self
            .repository
            .split_once('/')
            .map_or(self.repository.as_str(), |(first, _)| first);
        if self.repository.contains('/') && is_domain_candidate(first) {
            // Without the prefix, `first` would be read back as a registry.
            format!("{DEFAULT_DOMAIN}/{}", self.repository)
        } else {
            self.repository.clone()
        }
    }
}

impl fmt::Display for Reference {
    /// The fully qualified form: `docker.io/library/busybox:latest`,
    /// `myreg:5000/ns/app:1@sha256:…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// Splits a reference into its registry domain and the rest (repository path, tag and
/// digest), the way Docker decides whether the first component names a registry: it does if
/// it is `localhost`, contains `.` or `:`, or contains an uppercase letter (repository paths
/// are lowercase). `index.docker.io` becomes `docker.io`, and a single-component path on
/// `docker.io` gets `library/` in front.
fn split_docker_domain(s: &str) -> (&str, String) {
    let Some((first, rest)) = s.split_once('/') else {
        return (DEFAULT_DOMAIN, format!("{OFFICIAL_REPO_PREFIX}{s}"));
    };
    let (domain, remainder) = if first == LEGACY_DEFAULT_DOMAIN {
        (DEFAULT_DOMAIN, rest)
    } else if is_domain_candidate(first) {
        (first, rest)
    } else {
        (DEFAULT_DOMAIN, s)
    };
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        (domain, format!("{OFFICIAL_REPO_PREFIX}{remainder}"))
    } else {
        (domain, remainder.to_owned())
    }
}

/// Whether Docker reads this first component of a multi-component name as a registry.
fn is_domain_candidate(first: &str) -> bool {
    first == LOCALHOST
        || first.contains(['.', ':'])
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

/// `[a-f0-9]{64}`: an image ID, which Docker refuses to take as a repository name.
fn is_hex_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `host[:port]`, where host is a DNS-like name (`[A-Za-z0-9]` components with inner dashes,
/// joined by dots), a dotted IPv4 address, or an IPv6 address of hex digits and colons in
/// brackets (no zone, no embedded IPv4), and port is one or more digits.
fn is_domain_and_port(domain: &str) -> bool {
    if let Some(bracketed) = domain.strip_prefix('[') {
        let Some((address, after)) = bracketed.split_once(']') else {
            return false;
        };
        let address_ok =
            !address.is_empty() && address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        return address_ok && (after.is_empty() || after.strip_prefix(':').is_some_and(is_port));
    }
    let (host, port) = match domain.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    port.is_none_or(is_port) && host.split('.').all(is_domain_component)
}

/// `[0-9]+` (the range is not checked, as in Docker).
fn is_port(port: &str) -> bool {
    !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
}

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`.
fn is_domain_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    matches!((bytes.first(), bytes.last()), (Some(first), Some(last))
        if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
fn is_path_component(component: &str) -> bool {
    let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let starts = component.chars().next().is_some_and(alphanumeric);
    let ends = component.chars().next_back().is_some_and(alphanumeric);
    // The pieces between alphanumerics are the separators (and empty strings).
    starts
        && ends
        && component.split(alphanumeric).all(|separator| {
            matches!(separator, "" | "." | "_" | "__") || separator.bytes().all(|b| b == b'-')
        })
}

/// `[\w][\w.-]{0,127}` with `\w` = `[A-Za-z0-9_]`.
pub fn is_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    tag.len() <= TAG_MAX_LEN
        && tag.as_bytes().first().is_some_and(|&b| word(b))
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-')
}

/// `algorithm:hex` as Docker accepts it: the algorithm one of `sha256`, `sha384`, `sha512`
/// (those Docker registers), the hex lowercase and exactly as long as the algorithm's output.
fn check_digest(digest: &str) -> Result<(), String> {
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return Err("a digest is algorithm:hex, e.g. sha256:<64 hex digits>".to_owned());
    };
    // The shape `distribution/reference` accepts before looking at the algorithm.
    let shape_ok = is_digest_algorithm(algorithm)
        && encoded.len() >= 32
        && encoded.bytes().all(|b| b.is_ascii_hexdigit());
    if !shape_ok {
        return Err("a digest is algorithm:hex, e.g. sha256:<64 hex digits>".to_owned());
    }
    let expected_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => {
            return Err(format!(
                "unsupported digest algorithm {algorithm:?} (sha256, sha384 or sha512)"
            ));
        }
    };
    if encoded.len() != expected_len {
        return Err(format!(
            "invalid checksum digest length: {algorithm} has {expected_len} hex digits, not {}",
            encoded.len()
        ));
    }
    if encoded.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("invalid checksum digest format: hex digits must be lowercase".to_owned());
    }
    Ok(())
}

/// `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*`.
fn is_digest_algorithm(algorithm: &str) -> bool {
    algorithm.split(['-', '_', '+', '.']).all(|component| {
        component
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphabetic)
            && component.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// The host of a `host[:port]` registry domain (`[::1]` keeps its brackets).
fn registry_host(registry: &str) -> &str {
    if registry.starts_with('[') {
        match registry.find(']') {
            Some(end) => registry.get(..=end).unwrap_or(registry),
            None => registry,
        }
    } else {
        registry.split_once(':').map_or(registry, |(host, _)| host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SHA256_F: &str =
        "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Kind {
        Empty,
        Hex,
        Upper,
        TooLong,
        Tag,
        Digest,
        Format,
    }

    fn kind(err: &ReferenceError) -> Kind {
        match err {
            ReferenceError::Empty => Kind::Empty,
            ReferenceError::HexIdentifier { .. } => Kind::Hex,
            ReferenceError::Uppercase { .. } => Kind::Upper,
            ReferenceError::NameTooLong { .. } => Kind::TooLong,
            ReferenceError::InvalidTag { .. } => Kind::Tag,
            ReferenceError::InvalidDigest { .. } => Kind::Digest,
            ReferenceError::InvalidFormat { .. } => Kind::Format,
        }
    }

    /// Expected outcome: `Ok((registry, repository, tag, digest))` or the error's kind.
    type Expect = Result<(&'static str, String, Option<String>, Option<String>), Kind>;

    fn ok(
        registry: &'static str,
        repository: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> Expect {
        Ok((
            registry,
            repository.to_owned(),
            tag.map(str::to_owned),
            digest.map(str::to_owned),
        ))
    }

    fn check(input: &str, expect: &Expect) {
        let got = Reference::parse(input);
        match (&got, expect) {
            (Ok(r), Ok((registry, repository, tag, digest))) => {
                assert_eq!(r.registry(), *registry, "registry of {input:?}");
                assert_eq!(r.repository(), repository, "repository of {input:?}");
                assert_eq!(r.tag(), tag.as_deref(), "tag of {input:?}");
                assert_eq!(r.digest(), digest.as_deref(), "digest of {input:?}");
            }
            (Err(e), Err(k)) => assert_eq!(kind(e), *k, "error for {input:?}: {e}"),
            _ => panic!("{input:?}: got {got:?}, expected {expect:?}"),
        }
    }

    fn parses(s: &str) -> Reference {
        match Reference::parse(s) {
            Ok(r) => r,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    // distribution/reference reference_test.go TestReferenceParse (its data, with the
    // expectations moved from `Parse` to `ParseNormalizedNamed` + `TagNameOnly`).
    #[test]
    fn reference_parse_table() {
        let l = Some("latest");
        let sha512 = "sha512:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
        let cases: Vec<(String, Expect)> = vec![
            ("test_com".into(), ok("docker.io", "library/test_com", l, None)),
            ("test.com:tag".into(), ok("docker.io", "library/test.com", Some("tag"), None)),
            ("test.com:5000".into(), ok("docker.io", "library/test.com", Some("5000"), None)),
            ("test.com/repo:tag".into(), ok("test.com", "repo", Some("tag"), None)),
            ("test:5000/repo".into(), ok("test:5000", "repo", l, None)),
            ("test:5000/repo:tag".into(), ok("test:5000", "repo", Some("tag"), None)),
            (format!("test:5000/repo@{SHA256_F}"), ok("test:5000", "repo", None, Some(SHA256_F))),
            (
                format!("test:5000/repo:tag@{SHA256_F}"),
                ok("test:5000", "repo", Some("tag"), Some(SHA256_F)),
            ),
            ("".into(), Err(Kind::Empty)),
            (":justtag".into(), Err(Kind::Format)),
            (format!("@{SHA256_F}"), Err(Kind::Format)),
            ("repo@sha256:ffffffffffffffffffffffffffffffffff".into(), Err(Kind::Digest)),
            (
                "validname@invaliddigest:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
                    .into(),
                Err(Kind::Digest),
            ),
            ("Uppercase:tag".into(), Err(Kind::Upper)),
            // Docker's FIXME: an uppercase first component is taken as a registry.
            ("Uppercase/lowercase:tag".into(), ok("Uppercase", "lowercase", Some("tag"), None)),
            ("test:5000/Uppercase/lowercase:tag".into(), Err(Kind::Upper)),
            ("lowercase:Uppercase".into(), ok("docker.io", "library/lowercase", Some("Uppercase"), None)),
            (format!("{}a:tag", "a/".repeat(128)), Err(Kind::TooLong)),
            (
                format!("{}a:tag-puts-this-over-max", "a/".repeat(127)),
                Ok((
                    "docker.io",
                    format!("{}a", "a/".repeat(127)),
                    Some("tag-puts-this-over-max".into()),
                    None,
                )),
            ),
            (format!("domain/{}:tag", "a".repeat(256)), Err(Kind::TooLong)),
            (
                format!("example.com/{}:tag", "a".repeat(255)),
                Ok(("example.com", "a".repeat(255), Some("tag".into()), None)),
            ),
            ("aa/asdf$$^/aa".into(), Err(Kind::Format)),
            ("sub-dom1.foo.com/bar/baz/quux".into(), ok("sub-dom1.foo.com", "bar/baz/quux", l, None)),
            (
                "sub-dom1.foo.com/bar/baz/quux:some-long-tag".into(),
                ok("sub-dom1.foo.com", "bar/baz/quux", Some("some-long-tag"), None),
            ),
            (
                "b.gcr.io/test.example.com/my-app:test.example.com".into(),
                ok("b.gcr.io", "test.example.com/my-app", Some("test.example.com"), None),
            ),
            (
                "xn--n3h.com/myimage:xn--n3h.com".into(),
                ok("xn--n3h.com", "myimage", Some("xn--n3h.com"), None),
            ),
            (
                format!("xn--7o8h.com/myimage:xn--7o8h.com@{sha512}"),
                ok("xn--7o8h.com", "myimage", Some("xn--7o8h.com"), Some(sha512)),
            ),
            ("foo_bar.com:8080".into(), ok("docker.io", "library/foo_bar.com", Some("8080"), None)),
            ("foo/foo_bar.com:8080".into(), ok("docker.io", "foo/foo_bar.com", Some("8080"), None)),
            ("192.168.1.1".into(), ok("docker.io", "library/192.168.1.1", l, None)),
            ("192.168.1.1:tag".into(), ok("docker.io", "library/192.168.1.1", Some("tag"), None)),
            ("192.168.1.1:5000".into(), ok("docker.io", "library/192.168.1.1", Some("5000"), None)),
            ("192.168.1.1/repo".into(), ok("192.168.1.1", "repo", l, None)),
            ("192.168.1.1:5000/repo".into(), ok("192.168.1.1:5000", "repo", l, None)),
            ("192.168.1.1:5000/repo:5050".into(), ok("192.168.1.1:5000", "repo", Some("5050"), None)),
            ("[2001:db8::1]".into(), Err(Kind::Format)),
            ("[2001:db8::1]:5000".into(), Err(Kind::Format)),
            ("[2001:db8::1]:tag".into(), Err(Kind::Format)),
            ("[2001:db8::1]/repo".into(), ok("[2001:db8::1]", "repo", l, None)),
            (
                "[2001:db8:1:2:3:4:5:6]/repo:tag".into(),
                ok("[2001:db8:1:2:3:4:5:6]", "repo", Some("tag"), None),
            ),
            ("[2001:db8::1]:5000/repo".into(), ok("[2001:db8::1]:5000", "repo", l, None)),
            ("[2001:db8::1]:5000/repo:tag".into(), ok("[2001:db8::1]:5000", "repo", Some("tag"), None)),
            (
                format!("[2001:db8::1]:5000/repo@{SHA256_F}"),
                ok("[2001:db8::1]:5000", "repo", None, Some(SHA256_F)),
            ),
            (
                format!("[2001:db8::1]:5000/repo:tag@{SHA256_F}"),
                ok("[2001:db8::1]:5000", "repo", Some("tag"), Some(SHA256_F)),
            ),
            ("[2001:db8::]:5000/repo".into(), ok("[2001:db8::]:5000", "repo", l, None)),
            ("[::1]:5000/repo".into(), ok("[::1]:5000", "repo", l, None)),
            ("[fe80::1%eth0]:5000/repo".into(), Err(Kind::Format)),
            ("[fe80::1%@invalidzone]:5000/repo".into(), Err(Kind::Format)),
        ];
        for (input, expect) in &cases {
            check(input, expect);
        }
    }

    // normalize_test.go TestValidateReferenceName.
    #[test]
    fn validate_reference_name() {
        let valid = [
            "docker/docker",
            "library/debian",
            "debian",
            "docker.io/docker/docker",
            "docker.io/library/debian",
            "docker.io/debian",
            "index.docker.io/docker/docker",
            "index.docker.io/library/debian",
            "index.docker.io/debian",
            "127.0.0.1:5000/docker/docker",
            "127.0.0.1:5000/library/debian",
            "127.0.0.1:5000/debian",
            "192.168.0.1",
            "192.168.0.1:80",
            "192.168.0.1:8/debian",
            "192.168.0.2:25000/debian",
            "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
            "[fc00::1]:5000/docker",
            "[fc00::1]:5000/docker/docker",
            "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
            "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "Docker/docker",
            "DOCKER/docker",
        ];
        let invalid = [
            "https://github.com/docker/docker",
            "docker/Docker",
            "-docker",
            "-docker/docker",
            "-docker.io/docker/docker",
            "docker///docker",
            "docker.io/docker/Docker",
            "docker.io/docker///docker",
            "[fc00::1]",
            "[fc00::1]:5000",
            "fc00::1:5000/debian",
            "[fe80::1%eth0]:5000/debian",
            "[2001:db8:3:4::192.0.2.33]:5000/debian",
            "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
        ];
        for name in valid {
            parses(name);
        }
        for name in invalid {
            assert!(
                Reference::parse(name).is_err(),
                "{name:?} should be invalid"
            );
        }
    }

    // normalize_test.go TestValidateRemoteName.
    #[test]
    fn validate_remote_name() {
        let valid = [
            "docker/docker",
            "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
            "docker-rules/docker",
            "docker---rules/docker",
            "doc/docker",
            "d/docker",
            "jess/t",
            "dock__er/docker",
        ];
        let invalid = [
            "docker/Docker",
            "docker///docker",
            "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "-docker/docker",
            "docker-/docker",
            "-docker-/docker",
            "____/____",
            "_docker/_docker",
            "dock..er/docker",
            "dock_.er/docker",
            "dock-.er/docker",
            "docker/",
            "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255/docker",
        ];
        for name in valid {
            parses(name);
        }
        for name in invalid {
            assert!(
                Reference::parse(name).is_err(),
                "{name:?} should be invalid"
            );
        }
        assert_eq!(
            Reference::parse(invalid[invalid.len() - 1]).map_err(|e| kind(&e)),
            Err(Kind::TooLong)
        );
        assert_eq!(
            Reference::parse(invalid[2]).map_err(|e| kind(&e)),
            Err(Kind::Hex)
        );
    }

    // normalize_test.go TestParseRepositoryInfo: (remote, familiar, full, ambiguous, domain).
    #[test]
    fn parse_repository_info() {
        let cases = [
            (
                "fooo/bar",
                "fooo/bar",
                "docker.io/fooo/bar",
                "index.docker.io/fooo/bar",
                "docker.io",
            ),
            (
                "library/ubuntu",
                "ubuntu",
                "docker.io/library/ubuntu",
                "library/ubuntu",
                "docker.io",
            ),
            (
                "nonlibrary/ubuntu",
                "nonlibrary/ubuntu",
                "docker.io/nonlibrary/ubuntu",
                "",
                "docker.io",
            ),
            (
                "other/library",
                "other/library",
                "docker.io/other/library",
                "",
                "docker.io",
            ),
            (
                "private/moonbase",
                "127.0.0.1:8000/private/moonbase",
                "127.0.0.1:8000/private/moonbase",
                "",
                "127.0.0.1:8000",
            ),
            (
                "privatebase",
                "127.0.0.1:8000/privatebase",
                "127.0.0.1:8000/privatebase",
                "",
                "127.0.0.1:8000",
            ),
            (
                "private/moonbase",
                "example.com/private/moonbase",
                "example.com/private/moonbase",
                "",
                "example.com",
            ),
            (
                "privatebase",
                "example.com/privatebase",
                "example.com/privatebase",
                "",
                "example.com",
            ),
            (
                "private/moonbase",
                "example.com:8000/private/moonbase",
                "example.com:8000/private/moonbase",
                "",
                "example.com:8000",
            ),
            (
                "privatebasee",
                "example.com:8000/privatebasee",
                "example.com:8000/privatebasee",
                "",
                "example.com:8000",
            ),
            (
                "library/ubuntu-12.04-base",
                "ubuntu-12.04-base",
                "docker.io/library/ubuntu-12.04-base",
                "index.docker.io/library/ubuntu-12.04-base",
                "docker.io",
            ),
            (
                "library/foo",
                "foo",
                "docker.io/library/foo",
                "docker.io/foo",
                "docker.io",
            ),
            (
                "library/foo/bar",
                "library/foo/bar",
                "docker.io/library/foo/bar",
                "",
                "docker.io",
            ),
            (
                "store/foo/bar",
                "store/foo/bar",
                "docker.io/store/foo/bar",
                "",
                "docker.io",
            ),
            ("bar", "Foo/bar", "Foo/bar", "", "Foo"),
            ("bar", "FOO/bar", "FOO/bar", "", "FOO"),
        ];
        for (remote, familiar, full, ambiguous, domain) in cases {
            let mut inputs = vec![familiar, full];
            if !ambiguous.is_empty() {
                inputs.push(ambiguous);
            }
            for input in inputs {
                let r = parses(input);
                assert_eq!(
                    r.familiar(),
                    format!("{familiar}:latest"),
                    "familiar of {input:?}"
                );
                assert_eq!(
                    r.to_string(),
                    format!("{full}:latest"),
                    "full name of {input:?}"
                );
                assert_eq!(r.registry(), domain, "domain of {input:?}");
                assert_eq!(r.repository(), remote, "remote name of {input:?}");
            }
        }
    }

    // normalize_test.go TestParseReferenceWithTagAndDigest.
    #[test]
    fn tag_and_digest_together() {
        let short = "busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa";
        let r = parses(short);
        assert_eq!(r.to_string(), format!("docker.io/library/{short}"));
        assert_eq!(r.tag(), Some("latest"));
        assert_eq!(
            r.digest(),
            Some("sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa")
        );
        assert_eq!(r.familiar(), short);
        let r = parses(&format!("busybox:1.36@{SHA256_F}"));
        assert_eq!(r.tag(), Some("1.36"));
        assert_eq!(r.familiar(), format!("busybox:1.36@{SHA256_F}"));
    }

    // normalize_test.go TestInvalidReferenceComponents.
    #[test]
    fn invalid_reference_components() {
        check("-foo", &Err(Kind::Format));
        check("busybox:-foo", &Err(Kind::Tag));
        check("busybox@foo", &Err(Kind::Digest));
    }

    // normalize_test.go TestParseAnyReference (the cases with a name).
    #[test]
    fn parse_any_reference_named() {
        let d = "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c";
        let cases = [
            ("redis".to_owned(), "docker.io/library/redis:latest".to_owned()),
            ("redis:latest".into(), "docker.io/library/redis:latest".into()),
            ("docker.io/library/redis:latest".into(), "docker.io/library/redis:latest".into()),
            (format!("redis@{d}"), format!("docker.io/library/redis@{d}")),
            (format!("docker.io/library/redis@{d}"), format!("docker.io/library/redis@{d}")),
            ("dmcgowan/myapp".into(), "docker.io/dmcgowan/myapp:latest".into()),
            ("dmcgowan/myapp:latest".into(), "docker.io/dmcgowan/myapp:latest".into()),
            ("docker.io/mcgowan/myapp:latest".into(), "docker.io/mcgowan/myapp:latest".into()),
            (format!("dmcgowan/myapp@{d}"), format!("docker.io/dmcgowan/myapp@{d}")),
            (format!("docker.io/dmcgowan/myapp@{d}"), format!("docker.io/dmcgowan/myapp@{d}")),
            (
                "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9".into(),
                "docker.io/library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9:latest"
                    .into(),
            ),
            ("dbcc1".into(), "docker.io/library/dbcc1:latest".into()),
        ];
        for (input, equivalent) in &cases {
            let r = parses(input);
            assert_eq!(&r.to_string(), equivalent, "{input:?}");
            assert_eq!(parses(equivalent), r);
        }
        // A bare image ID or digest is not a reference here.
        check(&d[7..], &Err(Kind::Hex));
    }

    // normalize_test.go TestNormalizedSplitHostname.
    #[test]
    fn normalized_split_hostname() {
        let cases = [
            ("test.com/foo", "test.com", "foo"),
            ("test_com/foo", "docker.io", "test_com/foo"),
            ("docker/migrator", "docker.io", "docker/migrator"),
            ("test.com:8080/foo", "test.com:8080", "foo"),
            ("test-com:8080/foo", "test-com:8080", "foo"),
            ("foo", "docker.io", "library/foo"),
            ("xn--n3h.com/foo", "xn--n3h.com", "foo"),
            ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"),
            ("docker.io/foo", "docker.io", "library/foo"),
            ("docker.io/library/foo", "docker.io", "library/foo"),
            ("docker.io/library/foo/bar", "docker.io", "library/foo/bar"),
        ];
        for (input, domain, path) in cases {
            check(input, &ok(domain, path, Some("latest"), None));
        }
    }

    // normalize_test.go TestParseDockerRef, except that a tag and a digest given together are
    // both kept (`TagNameOnly`, not `ParseDockerRef`).
    #[test]
    fn parse_docker_ref() {
        let d = "sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582";
        let cases = [
            (
                "busybox".to_owned(),
                "docker.io/library/busybox:latest".to_owned(),
            ),
            (
                "busybox:latest".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                format!("busybox@{d}"),
                format!("docker.io/library/busybox@{d}"),
            ),
            (
                "library/busybox".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "docker.io/busybox".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "docker.io/library/busybox".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "docker.io/busybox:latest".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "library/busybox:latest".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "docker.io/library/busybox:latest".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "gcr.io/library/busybox".into(),
                "gcr.io/library/busybox:latest".into(),
            ),
            (
                format!("gcr.io/library/busybox:latest@{d}"),
                format!("gcr.io/library/busybox:latest@{d}"),
            ),
        ];
        for (input, expected) in &cases {
            let r = parses(input);
            assert_eq!(&r.to_string(), expected, "{input:?}");
            assert_eq!(parses(expected), r, "{expected:?} should parse to the same");
        }
    }

    // regexp_test.go TestDomainRegexp.
    #[test]
    fn domain_grammar() {
        let cases = [
            ("test.com", true),
            ("test.com:10304", true),
            ("test.com:http", false),
            ("localhost", true),
            ("localhost:8080", true),
            ("a", true),
            ("a.b", true),
            ("ab.cd.com", true),
            ("a-b.com", true),
            ("-ab.com", false),
            ("ab-.com", false),
            ("ab.c-om", true),
            ("ab.-com", false),
            ("ab.com-", false),
            ("0101.com", true),
            ("001a.com", true),
            ("b.gbc.io:443", true),
            ("b.gbc.io", true),
            ("xn--n3h.com", true),
            ("Asdf.com", true),
            ("192.168.1.1:75050", true),
            ("192.168.1.1:750050", true),
            ("[fd00:1:2::3]:75050", true),
            ("[fd00:1:2::3]75050", false),
            ("[fd00:1:2::3]::75050", false),
            ("[fd00:1:2::3%eth0]:75050", false),
            ("[fd00123123123]:75050", true),
            ("[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:75050", true),
            ("[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:750505", true),
            ("fd00:1:2::3:75050", false),
            ("", false),
            ("[]", false),
            ("a..b", false),
            ("a.", false),
            ("a:", false),
        ];
        for (domain, valid) in cases {
            assert_eq!(is_domain_and_port(domain), valid, "{domain:?}");
        }
    }

    // regexp_test.go TestFullNameRegexp, with the expectations moved to normalized parsing:
    // `Some((registry, repository))` or `None` for invalid.
    #[test]
    fn full_name_table() {
        let long_ok = format!("{}a", "a/".repeat(128));
        let cases: Vec<(&str, Option<(&str, &str)>)> = vec![
            ("", None),
            ("short", Some(("docker.io", "library/short"))),
            ("simple/name", Some(("docker.io", "simple/name"))),
            ("library/ubuntu", Some(("docker.io", "library/ubuntu"))),
            (
                "docker/stevvooe/app",
                Some(("docker.io", "docker/stevvooe/app")),
            ),
            (
                "aa/aa/aa/aa/aa/aa/aa/aa/aa/bb/bb/bb/bb/bb/bb",
                Some(("docker.io", "aa/aa/aa/aa/aa/aa/aa/aa/aa/bb/bb/bb/bb/bb/bb")),
            ),
            ("aa/aa/bb/bb/bb", Some(("docker.io", "aa/aa/bb/bb/bb"))),
            ("a/a/a/a", Some(("docker.io", "a/a/a/a"))),
            ("a/a/a/a/", None),
            ("a//a/a", None),
            ("a", Some(("docker.io", "library/a"))),
            ("a/aa", Some(("docker.io", "a/aa"))),
            ("a/aa/a", Some(("docker.io", "a/aa/a"))),
            ("foo.com", Some(("docker.io", "library/foo.com"))),
            ("foo.com/", None),
            ("foo.com:8080/bar", Some(("foo.com:8080", "bar"))),
            ("foo.com:http/bar", None),
            ("foo.com/bar", Some(("foo.com", "bar"))),
            ("foo.com/bar/baz", Some(("foo.com", "bar/baz"))),
            ("localhost:8080/bar", Some(("localhost:8080", "bar"))),
            (
                "sub-dom1.foo.com/bar/baz/quux",
                Some(("sub-dom1.foo.com", "bar/baz/quux")),
            ),
            ("blog.foo.com/bar/baz", Some(("blog.foo.com", "bar/baz"))),
            ("a^a", None),
            ("aa/asdf$$^/aa", None),
            ("asdf$$^/aa", None),
            ("aa-a/a", Some(("docker.io", "aa-a/a"))),
            // 257 characters once `docker.io` claims the first component.
            (&long_ok, None),
            ("a-/a/a/a", None),
            ("foo.com/a-/a/a", None),
            ("-foo/bar", None),
            ("foo/bar-", None),
            ("foo-/bar", None),
            ("foo/-bar", None),
            ("_foo/bar", None),
            ("foo_bar", Some(("docker.io", "library/foo_bar"))),
            ("foo_bar.com", Some(("docker.io", "library/foo_bar.com"))),
            // `8080` is the tag here.
            (
                "foo_bar.com:8080",
                Some(("docker.io", "library/foo_bar.com")),
            ),
            ("foo_bar.com:8080/app", None),
            ("foo.com/foo_bar", Some(("foo.com", "foo_bar"))),
            ("____/____", None),
            ("_docker/_docker", None),
            ("docker_/docker_", None),
            (
                "b.gcr.io/test.example.com/my-app",
                Some(("b.gcr.io", "test.example.com/my-app")),
            ),
            ("xn--n3h.com/myimage", Some(("xn--n3h.com", "myimage"))),
            ("xn--7o8h.com/myimage", Some(("xn--7o8h.com", "myimage"))),
            (
                "example.com/xn--7o8h.com/myimage",
                Some(("example.com", "xn--7o8h.com/myimage")),
            ),
            (
                "example.com/some_separator__underscore/myimage",
                Some(("example.com", "some_separator__underscore/myimage")),
            ),
            ("example.com/__underscore/myimage", None),
            ("example.com/..dots/myimage", None),
            ("example.com/.dots/myimage", None),
            ("example.com/nodouble..dots/myimage", None),
            ("docker./docker", None),
            (".docker/docker", None),
            ("docker-/docker", None),
            ("-docker/docker", None),
            ("do..cker/docker", None),
            ("do__cker:8080/docker", None),
            ("do__cker/docker", Some(("docker.io", "do__cker/docker"))),
            (
                "registry.io/foo/project--id.module--name.ver---sion--name",
                Some((
                    "registry.io",
                    "foo/project--id.module--name.ver---sion--name",
                )),
            ),
            ("Asdf.com/foo/bar", Some(("Asdf.com", "foo/bar"))),
            ("Foo/FarB", None),
        ];
        for (input, expect) in cases {
            let got = Reference::parse(input);
            match expect {
                Some((registry, repository)) => {
                    let r = parses(input);
                    assert_eq!(
                        (r.registry(), r.repository()),
                        (registry, repository),
                        "{input:?}"
                    );
                }
                None => assert!(got.is_err(), "{input:?} should be invalid, got {got:?}"),
            }
        }
    }

    // regexp_test.go TestReferenceRegexp and TestIdentifierRegexp, normalized.
    #[test]
    fn reference_and_identifier_table() {
        let d = "sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912";
        let cases: Vec<(String, Expect)> = vec![
            (
                "registry.com:8080/myapp:tag".into(),
                ok("registry.com:8080", "myapp", Some("tag"), None),
            ),
            (
                format!("registry.com:8080/myapp@{d}"),
                ok("registry.com:8080", "myapp", None, Some(d)),
            ),
            (
                format!("registry.com:8080/myapp:tag2@{d}"),
                ok("registry.com:8080", "myapp", Some("tag2"), Some(d)),
            ),
            (
                "registry.com:8080/myapp@sha256:badbadbadbad".into(),
                Err(Kind::Digest),
            ),
            ("registry.com:8080/myapp:invalid~tag".into(), Err(Kind::Tag)),
            ("bad_hostname.com:8080/myapp:tag".into(), Err(Kind::Format)),
            // `localhost` without a slash is a name on Docker Hub, `8080` its tag.
            (
                format!("localhost:8080@{d}"),
                ok("docker.io", "library/localhost", Some("8080"), Some(d)),
            ),
            (
                format!("localhost:8080/name@{d}"),
                ok("localhost:8080", "name", None, Some(d)),
            ),
            (format!("localhost:http/name@{d}"), Err(Kind::Format)),
            (
                format!("localhost@{d}"),
                ok("docker.io", "library/localhost", None, Some(d)),
            ),
            ("registry.com:8080/myapp@bad".into(), Err(Kind::Digest)),
            ("registry.com:8080/myapp@2bad".into(), Err(Kind::Digest)),
            (
                "da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf9821".into(),
                Err(Kind::Hex),
            ),
            (
                "7EC43B381E5AEFE6E04EFB0B3F0693FF2A4A50652D64AEC573905F2DB5889A1C".into(),
                Err(Kind::Upper),
            ),
            (
                "da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf".into(),
                ok(
                    "docker.io",
                    "library/da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf",
                    Some("latest"),
                    None,
                ),
            ),
            (
                "sha256:da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf9821".into(),
                ok(
                    "docker.io",
                    "library/sha256",
                    Some("da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf9821"),
                    None,
                ),
            ),
            (
                "da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf98218482".into(),
                ok(
                    "docker.io",
                    "library/da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf98218482",
                    Some("latest"),
                    None,
                ),
            ),
        ];
        for (input, expect) in &cases {
            check(input, expect);
        }
    }

    #[test]
    fn path_component_grammar() {
        let cases = [
            ("a", true),
            ("0", true),
            ("a.b", true),
            ("a_b", true),
            ("a__b", true),
            ("a-b", true),
            ("a---b", true),
            ("ab.c-d_e__f---g", true),
            ("a___b", false),
            ("a..b", false),
            ("a._b", false),
            ("a-.b", false),
            ("a_-b", false),
            (".a", false),
            ("a.", false),
            ("-a", false),
            ("a-", false),
            ("_a", false),
            ("A", false),
            ("aB", false),
            ("", false),
            ("a b", false),
            ("é", false),
        ];
        for (component, valid) in cases {
            assert_eq!(is_path_component(component), valid, "{component:?}");
        }
    }

    #[test]
    fn digests() {
        let hex64 = "0123456789abcdef".repeat(4);
        let cases: Vec<(String, bool)> = vec![
            (format!("sha256:{hex64}"), true),
            (format!("sha384:{}", "ab".repeat(48)), true),
            (format!("sha512:{}", "cd".repeat(64)), true),
            (format!("sha256:{}", hex64.to_uppercase()), false),
            (format!("sha256:{hex64}0"), false),
            (format!("sha256:{}", &hex64[1..]), false),
            (format!("sha512:{hex64}"), false),
            (format!("md5:{hex64}"), false),
            (format!("SHA256:{hex64}"), false),
            (format!("sha256:{}g", &hex64[1..]), false),
            (format!("sha256+b64:{hex64}"), false),
            (format!(":{hex64}"), false),
            ("sha256:".into(), false),
            ("sha256".into(), false),
        ];
        for (digest, valid) in cases {
            let input = format!("busybox@{digest}");
            let got = Reference::parse(&input);
            if valid {
                let r = parses(&input);
                assert_eq!(r.digest(), Some(digest.as_str()));
                assert_eq!(r.tag(), None, "no default tag next to a digest");
            } else {
                assert_eq!(got.map_err(|e| kind(&e)), Err(Kind::Digest), "{input:?}");
            }
        }
        check("busybox@sha256:abc@sha256:abc", &Err(Kind::Digest));
    }

    #[test]
    fn tags() {
        let max = "t".repeat(128);
        let over = "t".repeat(129);
        check(
            &format!("busybox:{max}"),
            &ok("docker.io", "library/busybox", Some(&max), None),
        );
        check(&format!("busybox:{over}"), &Err(Kind::Tag));
        check(
            "busybox:_x",
            &ok("docker.io", "library/busybox", Some("_x"), None),
        );
        check("busybox:.x", &Err(Kind::Tag));
        check("busybox:", &Err(Kind::Tag));
        check("busybox:a:b", &Err(Kind::Format));
        check("busybox:a/b", &Err(Kind::Format));
        check("busybox:ä", &Err(Kind::Tag));
    }

    #[test]
    fn registries() {
        let cases = [
            ("busybox", "docker.io", "registry-1.docker.io", false),
            (
                "index.docker.io/library/busybox",
                "docker.io",
                "registry-1.docker.io",
                false,
            ),
            ("localhost/app", "localhost", "localhost", true),
            (
                "localhost:5000/app",
                "localhost:5000",
                "localhost:5000",
                true,
            ),
            (
                "LOCALHOST:5000/app",
                "LOCALHOST:5000",
                "LOCALHOST:5000",
                true,
            ),
            (
                "127.0.0.1:5000/app",
                "127.0.0.1:5000",
                "127.0.0.1:5000",
                true,
            ),
            ("127.1.2.3/app", "127.1.2.3", "127.1.2.3", true),
            ("[::1]:5000/x", "[::1]:5000", "[::1]:5000", true),
            ("[::1]/x", "[::1]", "[::1]", true),
            ("[::2]:5000/x", "[::2]:5000", "[::2]:5000", false),
            (
                "128.0.0.1:5000/app",
                "128.0.0.1:5000",
                "128.0.0.1:5000",
                false,
            ),
            (
                "127.0.0.1.example.com/app",
                "127.0.0.1.example.com",
                "127.0.0.1.example.com",
                false,
            ),
            (
                "localhost.example.com/app",
                "localhost.example.com",
                "localhost.example.com",
                false,
            ),
            ("myreg:5000/ns/app:1", "myreg:5000", "myreg:5000", false),
            ("ghcr.io/o/app", "ghcr.io", "ghcr.io", false),
        ];
        for (input, registry, api_host, loopback) in cases {
            let r = parses(input);
            assert_eq!(r.registry(), registry, "{input:?}");
            assert_eq!(r.api_host(), api_host, "{input:?}");
            assert_eq!(r.is_loopback_registry(), loopback, "{input:?}");
        }
    }

    #[test]
    fn familiar_forms() {
        let cases = [
            ("busybox", "busybox:latest"),
            ("docker.io/library/busybox:1.36", "busybox:1.36"),
            ("myreg:5000/ns/app:1", "myreg:5000/ns/app:1"),
            ("index.docker.io/ns/app", "ns/app:latest"),
            ("library/a/b", "library/a/b:latest"),
            ("localhost/app", "localhost/app:latest"),
            // Deviations: Docker would print `foo.bar/app:latest` / `localhost/app:latest`,
            // which parse as other registries.
            ("docker.io/foo.bar/app", "docker.io/foo.bar/app:latest"),
            ("docker.io/localhost/app", "docker.io/localhost/app:latest"),
            ("docker.io/library/foo.bar", "foo.bar:latest"),
        ];
        for (input, familiar) in cases {
            let r = parses(input);
            assert_eq!(r.familiar(), familiar, "{input:?}");
            assert_eq!(parses(familiar), r, "{familiar:?}");
        }
    }

    #[test]
    fn deviation_domainless_names_are_rejected() {
        // Docker parses these with an empty domain; no registry serves that.
        check("foo_bar.com/app", &Err(Kind::Format));
        check("a_b.c/d:1", &Err(Kind::Format));
    }

    #[test]
    fn errors_carry_input_and_reason() {
        let e = Reference::parse("Busybox").err();
        assert_eq!(
            e.as_ref().map(ToString::to_string).as_deref(),
            Some(
                "invalid reference format: repository name (library/Busybox) must be lowercase \
                 (in \"Busybox\")"
            )
        );
        assert_eq!(e.as_ref().map(ReferenceError::input), Some("Busybox"));
        let e = Reference::parse(&format!("x/{}", "a".repeat(300))).err();
        assert!(e.is_some_and(|e| {
            e.to_string()
                .contains("must not be more than 255 characters")
        }));
        let e = Reference::parse("busybox@sha256:abcd").err();
        assert!(e.is_some_and(|e| e.to_string().contains("invalid digest \"sha256:abcd\"")));
        assert_eq!(
            Reference::parse("").err().map(|e| e.input().to_owned()),
            Some(String::new())
        );
        let id = "a".repeat(64);
        assert_eq!(
            Reference::parse(&id).err().map(|e| e.to_string()),
            Some(format!(
                "invalid repository name ({id}), cannot specify 64-byte hexadecimal strings"
            ))
        );
    }

    #[test]
    fn from_str_and_display() {
        let r: Reference = match "busybox:1.36".parse() {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(r.to_string(), "docker.io/library/busybox:1.36");
        assert_eq!(r, parses("docker.io/library/busybox:1.36"));
        assert!("Bad".parse::<Reference>().is_err());
    }

    fn component() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,6}((\\.|_|__|-{1,3})[a-z0-9]{1,6}){0,2}"
    }

    fn explicit_domain() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("docker.io".to_owned()),
            Just("index.docker.io".to_owned()),
            "localhost(:[0-9]{1,5})?",
            "[a-z0-9]{1,6}(-[a-z0-9]{1,4})?(\\.[a-z0-9]{1,6}){1,2}(:[0-9]{1,5})?",
            "127\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(:[0-9]{1,5})?",
            "\\[(::1|fe80::[0-9a-f]{1,4}|2001:db8::[0-9a-f]{1,4})\\](:[0-9]{1,5})?",
            "[A-Z][A-Za-z0-9]{0,5}",
            "[a-z]{1,6}:[0-9]{1,5}",
        ]
    }

    /// Strings from the reference alphabet, to hit the grammar's edges.
    fn reference_like() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9._:/@\\[\\]-]{0,48}"
    }

    fn check_round_trips(r: &Reference) -> Result<(), TestCaseError> {
        let shown = r.to_string();
        prop_assert_eq!(Reference::parse(&shown), Ok(r.clone()), "display {}", shown);
        let familiar = r.familiar();
        prop_assert_eq!(
            Reference::parse(&familiar),
            Ok(r.clone()),
            "familiar {}",
            familiar
        );
        prop_assert!(r.tag().is_some() || r.digest().is_some());
        prop_assert!(!r.registry().is_empty());
        prop_assert!(r.repository().len() <= REPOSITORY_PATH_MAX_LEN);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn never_panics_on_arbitrary_strings(s in any::<String>()) {
            let _ = Reference::parse(&s);
        }

        #[test]
        fn never_panics_on_reference_like_strings(s in reference_like()) {
            if let Ok(r) = Reference::parse(&s) {
                check_round_trips(&r)?;
            }
        }

        #[test]
        fn structured_references_round_trip(
            domain in proptest::option::of(explicit_domain()),
            path in proptest::collection::vec(component(), 1..4),
            tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
            digest in proptest::option::of("sha256:[a-f0-9]{64}"),
        ) {
            let path = path.join("/");
            let mut input = match &domain {
                Some(domain) => format!("{domain}/{path}"),
                None => path.clone(),
            };
            if let Some(tag) = &tag {
                input = format!("{input}:{tag}");
            }
            if let Some(digest) = &digest {
                input = format!("{input}@{digest}");
            }
            let parsed = Reference::parse(&input);
            if let Some(domain) = &domain {
                // An explicit, valid registry: the parse is fully predictable.
                let r = match &parsed {
                    Ok(r) => r,
                    Err(e) => return Err(TestCaseError::fail(format!("{input:?}: {e}"))),
                };
                let registry = if domain == "index.docker.io" { "docker.io" } else { domain };
                prop_assert_eq!(r.registry(), registry);
                let repository = if registry == "docker.io" && !path.contains('/') {
                    format!("library/{path}")
                } else {
                    path.clone()
                };
                prop_assert_eq!(r.repository(), repository);
                let expected_tag = match (&tag, &digest) {
                    (None, None) => Some("latest"),
                    (tag, _) => tag.as_deref(),
                };
                prop_assert_eq!(r.tag(), expected_tag);
                prop_assert_eq!(r.digest(), digest.as_deref());
            }
            if let Ok(r) = &parsed {
                check_round_trips(r)?;
            }
        }
    }
}
