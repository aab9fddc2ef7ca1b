//! The config hash: the fingerprint a container records so that `up` knows it must recreate it.
//!
//! Like Docker Compose's `ServiceHash`, it is the SHA-256 of the resolved service with the
//! fields that must *not* cause a recreate removed (`build`, `pull_policy`, `scale`,
//! `deploy.replicas`, `depends_on`, `profiles`, `x-*` extensions). Unlike Docker Compose it
//! also covers the *contents* of the service's env files, configs and secrets (users ask for
//! this: docker/compose#11900), as digests, so editing a mounted config recreates the container.

use sha2::{Digest, Sha256};

use super::model::{Project, Service};

/// The hash of `service` in `project` (a lowercase hex SHA-256).
pub fn service_hash(project: &Project, service: &Service) -> String {
    let mut s = service.clone();
    s.build = None;
    s.pull_policy = None;
    s.scale = None;
    s.depends_on.clear();
    s.profiles.clear();
    s.extensions.clear();
    if let Some(d) = &mut s.deploy {
        d.replicas = None;
    }
    // `deploy: {replicas: 2}` is only a scale: with the replicas gone, nothing is left
    // that a container runs with, and it must hash as no `deploy` at all.
    if s.deploy.as_ref().is_some_and(|d| *d == Default::default()) {
        s.deploy = None;
    }
    let mut hasher = Sha256::new();
    // serde_json with BTreeMaps is deterministic: the same service always gives the same bytes.
    hasher.update(serde_json::to_vec(&s).unwrap_or_default());
    for ef in &service.env_file {
        hasher.update(b"\0env_file\0");
        hasher.update(file_digest(&ef.path));
    }
    for (kind, refs, defs) in [
        ("config", &service.configs, &project.configs),
        ("secret", &service.secrets, &project.secrets),
    ] {
        for r in refs {
            hasher.update(format!("\0{kind}\0{}\0", r.source).as_bytes());
            if let Some(def) = defs.get(&r.source) {
                if let Some(content) = &def.content {
                    hasher.update(Sha256::digest(content.as_bytes()));
                }
                if let Some(file) = &def.file {
                    hasher.update(file_digest(file));
                }
                if let Some(var) = &def.environment {
                    hasher.update(format!("env:{var}").as_bytes());
                }
            }
        }
    }
    hex::encode(hasher.finalize())
}

/// Digest of a file's contents; a missing file hashes as "missing" (an optional env file may
/// legitimately be absent, and its later appearance must change the hash).
fn file_digest(path: &str) -> Vec<u8> {
    match std::fs::read(path) {
        Ok(bytes) => Sha256::digest(&bytes).to_vec(),
        Err(_) => b"missing".to_vec(),
    }
}

/// The hash of a network's or volume's normalized definition: what the planner compares
/// and what the network layer records, so that both agree on "changed".
pub fn object_hash<T: serde::Serialize>(object: &T) -> String {
    hex::encode(Sha256::digest(
        serde_json::to_vec(object).unwrap_or_default(),
    ))
}
