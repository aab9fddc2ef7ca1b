//! What exists of a project on this host, read from the state directory and checked against
//! the kernel: the planner's [`Live`] input.
//!
//! Containers come from the runtime's records, their liveness from `/proc` (the runtime's
//! `State::checked`); networks from the network layer's records. Nothing here changes the
//! host or the records. (The per-project lock and crash recovery of issue 6 come on top.)
//! It also owns the one way wharf replaces a record file, [`replace_file`].

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use crate::network::linux::{NetworkError, Networks};
use crate::plan::{Live, LiveContainer, LiveObject};
use crate::runtime::Runtime;

/// Reading the state failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Network(#[from] NetworkError),
}

/// The live state of `project`: its containers, its networks and, for each image
/// reference in `images`, the digest the store holds now.
pub fn observe(
    project: &str,
    runtime: &Runtime,
    networks: &Networks,
    images: BTreeMap<String, String>,
) -> Result<Live, StateError> {
    let sandboxes: BTreeMap<String, Vec<String>> = networks
        .sandboxes()?
        .into_iter()
        .filter(|s| s.spec.project == project)
        .map(|s| (s.id, s.endpoints.into_iter().map(|e| e.key).collect()))
        .collect();
    let mut containers = Vec::new();
    for id in runtime.list() {
        let Ok(config) = runtime.config(&id) else {
            continue;
        };
        if config.spec.project != project {
            continue;
        }
        let running = runtime.state(&id).is_ok_and(|s| s.is_active());
        let origin = config.origin.clone();
        containers.push(LiveContainer {
            name: config.spec.name.clone(),
            service: config.spec.service.clone(),
            replica: config.spec.replica,
            hash: origin
                .as_ref()
                .map(|o| o.config_hash.clone())
                .unwrap_or_default(),
            image_digest: origin.as_ref().and_then(|o| o.image_digest.clone()),
            running,
            networks: sandboxes.get(&id).cloned().unwrap_or_default(),
            config: origin.map(|o| o.service),
            id,
        });
    }
    let networks = networks
        .networks()?
        .into_iter()
        .filter(|n| n.spec.project == project && !n.spec.external)
        .map(|n| {
            (
                n.spec.key.clone(),
                LiveObject {
                    name: n.spec.name,
                    hash: n.spec.config_hash,
                },
            )
        })
        .collect();
    Ok(Live {
        containers,
        networks,
        // Volumes carry no definition record yet; the planner creates missing ones.
        volumes: BTreeMap::new(),
        images,
    })
}

/// Replaces `path` with `bytes` so that a reader sees the old or the new content, never a
/// mix (write a sibling, rename over). No fsync: wharf's records describe live processes and
/// links and are rewritten on every change, so after a power loss they are stale anyway;
/// their readers check them against the kernel. The error names the file it concerns.
pub fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let named = |what: &str, p: &Path| {
        let p = p.display().to_string();
        let what = what.to_string();
        move |e: io::Error| io::Error::new(e.kind(), format!("{what} {p}: {e}"))
    };
    fs::write(&tmp, bytes).map_err(named("writing", &tmp))?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        named("renaming into", path)(e)
    })
}
