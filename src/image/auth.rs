//! Registry credentials and transport settings: who wharf says it is to a registry, and
//! whether it may speak plain HTTP to it. Credentials come from Docker's client config
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, the `auths` section, as
//! `docker login` writes it), so a machine that can `docker pull` can `wharf pull`.
//! Credential helpers (`credsStore`, `credHelpers`) are not run: wharf never executes
//! programs named by a config file on behalf of root. Plain HTTP is used for loopback
//! registries and for those listed in `insecure-registries` of `<state root>/config.json`
//! or in `WHARF_INSECURE_REGISTRIES` (comma-separated); every other registry is HTTPS.
//! This module reads files; it never writes any and never talks to the network.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use super::reference::Reference;

/// Docker Hub's key in `auths`, as `docker login` writes it.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: the `auth` entry for {registry} is not base64 of `user:password`")]
    BadAuth { path: PathBuf, registry: String },
}

/// What wharf presents to a registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// A registry token (`registrytoken` in the config) sent as is.
    Bearer(String),
}

impl std::fmt::Debug for Credential {
    // Never print a secret, not even in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Anonymous => f.write_str("Anonymous"),
            Credential::Basic { username, .. } => write!(f, "Basic({username})"),
            Credential::Bearer(_) => f.write_str("Bearer(…)"),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

/// The credentials of a Docker client config, keyed by registry host.
#[derive(Debug, Default)]
pub struct Credentials {
    path: Option<PathBuf>,
    auths: BTreeMap<String, AuthEntry>,
}

/// The Docker client config file: `$DOCKER_CONFIG/config.json`, else
/// `$HOME/.docker/config.json`.
pub fn docker_config_path(docker_config: Option<&Path>, home: Option<&Path>) -> Option<PathBuf> {
    match docker_config {
        Some(dir) => Some(dir.join("config.json")),
        None => home.map(|h| h.join(".docker/config.json")),
    }
}

/// `https://host/v1/` or `host` → `host`, as Docker matches `auths` keys.
fn key_host(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

impl Credentials {
    /// Reads `path`; a missing file means no credentials (anonymous pulls).
    pub fn load(path: Option<&Path>) -> Result<Credentials, AuthError> {
        let Some(path) = path else {
            return Ok(Credentials::default());
        };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Credentials::default());
            }
            Err(source) => {
                return Err(AuthError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let config: DockerConfig =
            serde_json::from_slice(&bytes).map_err(|source| AuthError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Credentials {
            path: Some(path.to_path_buf()),
            auths: config.auths,
        })
    }

    /// The credential for `reference`'s registry; Docker Hub also answers to its legacy
    /// `https://index.docker.io/v1/` key.
    pub fn for_reference(&self, reference: &Reference) -> Result<Credential, AuthError> {
        let registry = reference.registry();
        let hub = registry == "docker.io";
        let entry = self.auths.iter().find_map(|(key, entry)| {
            let host = key_host(key);
            let matches =
                host == registry || (hub && (key == DOCKER_HUB_KEY || host == "index.docker.io"));
            matches.then_some(entry)
        });
        let Some(entry) = entry else {
            return Ok(Credential::Anonymous);
        };
        if let Some(token) = entry.registrytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Credential::Bearer(token.clone()));
        }
        if let Some(auth) = entry.auth.as_ref().filter(|a| !a.is_empty()) {
            let bad = || AuthError::BadAuth {
                path: self.path.clone().unwrap_or_default(),
                registry: registry.to_string(),
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
            let (username, password) = decoded.split_once(':').ok_or_else(bad)?;
            return Ok(Credential::Basic {
                username: username.to_string(),
                password: password.to_string(),
            });
        }
        match (&entry.username, &entry.password) {
            (Some(username), Some(password)) => Ok(Credential::Basic {
                username: username.clone(),
                password: password.clone(),
            }),
            _ => Ok(Credential::Anonymous),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct WharfConfig {
    #[serde(default, rename = "insecure-registries")]
    insecure_registries: Vec<String>,
}

/// Registries wharf talks to over plain HTTP besides loopback ones.
#[derive(Debug, Default, Clone)]
pub struct Insecure(Vec<String>);

impl Insecure {
    /// `insecure-registries` from `<state root>/config.json` (if present) plus the
    /// comma-separated `env` value (`WHARF_INSECURE_REGISTRIES`).
    pub fn load(config: &Path, env: Option<&str>) -> Result<Insecure, AuthError> {
        let mut list = match std::fs::read(config) {
            Ok(bytes) => {
                serde_json::from_slice::<WharfConfig>(&bytes)
                    .map_err(|source| AuthError::Parse {
                        path: config.to_path_buf(),
                        source,
                    })?
                    .insecure_registries
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(AuthError::Read {
                    path: config.to_path_buf(),
                    source,
                });
            }
        };
        list.extend(
            env.unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
        Ok(Insecure(list))
    }

    pub fn new(list: Vec<String>) -> Insecure {
        Insecure(list)
    }

    /// Whether `reference`'s registry is spoken to over plain HTTP.
    pub fn is_plain_http(&self, reference: &Reference) -> bool {
        reference.is_loopback_registry() || self.0.iter().any(|r| r == reference.registry())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(json: &str) -> Credentials {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        std::fs::write(&path, json).expect("write");
        Credentials::load(Some(&path)).expect("load")
    }

    fn r(s: &str) -> Reference {
        Reference::parse(s).expect("reference")
    }

    #[test]
    fn auths_match_by_host_with_or_without_scheme() {
        let c = creds(
            r#"{"auths": {
                "127.0.0.1:5000": {"auth": "dXNlcjpwYXNzOndvcmQ="},
                "https://reg.example/v2/": {"username": "u", "password": "p"},
                "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="},
                "tok.example": {"registrytoken": "abc"}
            }, "credsStore": "desktop"}"#,
        );
        let basic = |u: &str, p: &str| Credential::Basic {
            username: u.into(),
            password: p.into(),
        };
        // The password may itself contain a colon.
        assert_eq!(
            c.for_reference(&r("127.0.0.1:5000/app:1")).expect("ok"),
            basic("user", "pass:word")
        );
        assert_eq!(
            c.for_reference(&r("reg.example/ns/app")).expect("ok"),
            basic("u", "p")
        );
        assert_eq!(
            c.for_reference(&r("busybox")).expect("ok"),
            basic("hub", "secret")
        );
        assert_eq!(
            c.for_reference(&r("tok.example/x")).expect("ok"),
            Credential::Bearer("abc".into())
        );
        assert_eq!(
            c.for_reference(&r("127.0.0.1:5001/app")).expect("ok"),
            Credential::Anonymous
        );
    }

    #[test]
    fn a_missing_config_is_anonymous_and_a_broken_one_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = Credentials::load(Some(&dir.path().join("nope.json"))).expect("ok");
        assert_eq!(
            missing.for_reference(&r("busybox")).expect("ok"),
            Credential::Anonymous
        );
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{not json").expect("write");
        let err = Credentials::load(Some(&path)).expect_err("broken");
        assert!(err.to_string().contains("config.json"), "{err}");
        let c = creds(r#"{"auths": {"r.example": {"auth": "!!"}}}"#);
        let err = c.for_reference(&r("r.example/a")).expect_err("bad auth");
        assert!(err.to_string().contains("r.example"), "{err}");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let c = Credential::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{:?}", Credential::Bearer("tok".into())).contains("tok"));
    }

    #[test]
    fn plain_http_for_loopback_and_listed_registries_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config.json");
        std::fs::write(&config, r#"{"insecure-registries": ["reg.lan:5000"]}"#).expect("w");
        let insecure = Insecure::load(&config, Some("other.lan, ")).expect("load");
        assert!(insecure.is_plain_http(&r("localhost:5000/a")));
        assert!(insecure.is_plain_http(&r("127.0.0.1:41234/a")));
        assert!(insecure.is_plain_http(&r("[::1]:5000/a")));
        assert!(insecure.is_plain_http(&r("reg.lan:5000/a")));
        assert!(insecure.is_plain_http(&r("other.lan/a")));
        assert!(!insecure.is_plain_http(&r("reg.lan:5001/a")));
        assert!(!insecure.is_plain_http(&r("busybox")));
    }
}
