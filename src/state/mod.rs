//! What exists of a project on this host, read from the state directory and checked against
//! the kernel: the planner's [`Live`] input.
//!
//! Containers come from the runtime's records, their liveness from `/proc` (the runtime's
//! `State::checked`); networks from the network layer's records. Nothing here changes the
//! host or the runtime's and network layer's records. It owns the reconciler's own small
//! records under `<state root>/projects/<project>/`: the per-project lock
//! ([`lock_project`]), the definitions of the volumes it created ([`record_volume`],
//! `volumes/`), the anonymous volumes its removed containers left ([`keep_anonymous_volumes`],
//! `anonymous/`) and the Compose files the project was last brought up from
//! ([`record_config_files`], for `ls`); and the one way wharf replaces a record file,
//! [`replace_file`].
//!
//! Anonymous volumes follow one rule: a volume is never deleted without `-v`. A container
//! removed without it (`rm`, `down`, a scale-down, a replaced container whose replacement
//! got fresh ones with `up -V`) leaves its anonymous volumes on the host; those no other
//! container mounts are recorded for the project, so that they are not lost: [`observe`]
//! reports them (and the ones its containers mount) in [`Live::anonymous_volumes`], which
//! `down -v` removes, even when no container is left. `up` never takes them for declared
//! volumes: they are kept apart from `volumes/`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::network::linux::{NetworkError, Networks};
use crate::plan::{Live, LiveContainer, LiveObject};
use crate::runtime::Runtime;

/// Reading the state failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StateError + use<> {
    let path = path.to_path_buf();
    move |source| StateError::Io { op, path, source }
}

/// Where the reconciler keeps what it knows of `project` beyond the runtime's and the
/// network layer's records: its lock and its volumes' definitions.
fn project_dir(state_root: &Path, project: &str) -> PathBuf {
    state_root.join("projects").join(project)
}

/// The per-project lock: one `up`, `down` or `watch` changes a project at a time. Held
/// until dropped; the kernel releases it when the holder dies, even by SIGKILL.
pub struct ProjectLock {
    _lock: Flock<File>,
    path: PathBuf,
}

/// Takes the lock of `project`; when another wharf holds it, calls `waiting` once and
/// blocks until it is free.
pub fn lock_project(
    state_root: &Path,
    project: &str,
    waiting: impl FnOnce(),
) -> Result<ProjectLock, StateError> {
    let dir = project_dir(state_root, project);
    fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
    let path = dir.join("lock");
    let open = || {
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("opening the lock", &path))
    };
    let errno_err = |errno: nix::errno::Errno| {
        io_err("locking", &path)(io::Error::from_raw_os_error(errno as i32))
    };
    let mut waiting = Some(waiting);
    loop {
        let lock = match Flock::lock(open()?, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                if let Some(say) = waiting.take() {
                    say();
                }
                Flock::lock(open()?, FlockArg::LockExclusive).map_err(|(_, e)| errno_err(e))?
            }
            Err((_, e)) => return Err(errno_err(e)),
        };
        // `down` unlinks the lock file of a project it removed while holding it: a lock
        // taken on that unlinked file locks nothing, so take the file that is there now.
        use std::os::unix::fs::MetadataExt;
        let held = lock.metadata().map_err(io_err("reading", &path))?;
        match fs::metadata(&path) {
            Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                return Ok(ProjectLock { _lock: lock, path });
            }
            _ => fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?,
        }
    }
}

impl ProjectLock {
    /// Removes the project's directory of records (its lock file and the record of its
    /// Compose files included) once nothing else of it is left, keeping the lock held
    /// until dropped.
    pub fn remove_if_empty(&self) {
        let Some(dir) = self.path.parent() else {
            return;
        };
        let _ = fs::remove_dir(dir.join("volumes"));
        let _ = fs::remove_dir(dir.join("anonymous"));
        let files = dir.join(CONFIG_FILES);
        let only_lock = fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .all(|e| e.path() == self.path || e.path() == files)
            })
            .unwrap_or(false);
        if only_lock {
            let _ = fs::remove_file(&files);
            let _ = fs::remove_file(&self.path);
            let _ = fs::remove_dir(dir);
        }
    }
}

/// The record of a project's Compose files, in its directory.
const CONFIG_FILES: &str = "config-files.json";

/// Records that `project` was brought up from `files` (absolute paths, in order).
pub fn record_config_files(
    state_root: &Path,
    project: &str,
    files: &[PathBuf],
) -> Result<(), StateError> {
    let dir = project_dir(state_root, project);
    fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
    let path = dir.join(CONFIG_FILES);
    let bytes = serde_json::to_vec(files).unwrap_or_default();
    replace_file(&path, &bytes).map_err(io_err("writing", &path))
}

/// The Compose files `project` was last brought up from (none recorded: empty).
pub fn config_files(state_root: &Path, project: &str) -> Vec<PathBuf> {
    fs::read(project_dir(state_root, project).join(CONFIG_FILES))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// What the reconciler records of a volume it created: the Compose key and the hash of
/// the definition, so a later `up` can tell a changed definition (the runtime's volumes
/// are bare directories).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VolumeRecord {
    pub key: String,
    pub name: String,
    pub hash: String,
}

fn volume_record_path(state_root: &Path, project: &str, name: &str) -> PathBuf {
    project_dir(state_root, project)
        .join("volumes")
        .join(format!("{name}.json"))
}

/// Records that `project` created volume `record.name` from a definition.
pub fn record_volume(
    state_root: &Path,
    project: &str,
    record: &VolumeRecord,
) -> Result<(), StateError> {
    let path = volume_record_path(state_root, project, &record.name);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
    }
    let bytes = serde_json::to_vec(record).unwrap_or_default();
    replace_file(&path, &bytes).map_err(io_err("writing", &path))
}

/// Forgets volume `name` of `project` (after `down -v` removed it).
pub fn forget_volume(state_root: &Path, project: &str, name: &str) -> Result<(), StateError> {
    let path = volume_record_path(state_root, project, name);
    match fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("removing", &path)(e)),
        _ => Ok(()),
    }
}

/// What the reconciler records of an anonymous volume a removed container of the project
/// left on the host (see the module's comment).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AnonymousVolumeRecord {
    pub name: String,
    /// The container it was last mounted by, for people reading the record.
    pub container: String,
}

fn anonymous_record_path(state_root: &Path, project: &str, name: &str) -> PathBuf {
    project_dir(state_root, project)
        .join("anonymous")
        .join(format!("{name}.json"))
}

/// Records that removing `container` of `project` leaves its anonymous volumes `names` on
/// the host. Written before the container is removed: a crash in between leaves a record
/// of a volume still mounted, which [`observe`] reports all the same.
pub fn keep_anonymous_volumes(
    state_root: &Path,
    project: &str,
    container: &str,
    names: &[String],
) -> Result<(), StateError> {
    for name in names {
        let path = anonymous_record_path(state_root, project, name);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
        }
        let record = AnonymousVolumeRecord {
            name: name.clone(),
            container: container.to_string(),
        };
        let bytes = serde_json::to_vec(&record).unwrap_or_default();
        replace_file(&path, &bytes).map_err(io_err("writing", &path))?;
    }
    Ok(())
}

/// The anonymous volumes recorded for `project` ([`keep_anonymous_volumes`]) that still
/// exist.
pub fn kept_anonymous_volumes(state_root: &Path, project: &str, runtime: &Runtime) -> Vec<String> {
    let dir = project_dir(state_root, project).join("anonymous");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice::<AnonymousVolumeRecord>(&b).ok())
        .map(|r| r.name)
        .filter(|name| runtime.volumes().exists(name))
        .collect();
    names.sort();
    names
}

/// The volumes `project` recorded that still exist, by Compose key.
fn recorded_volumes(
    state_root: &Path,
    project: &str,
    runtime: &Runtime,
) -> BTreeMap<String, LiveObject> {
    let dir = project_dir(state_root, project).join("volumes");
    fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice::<VolumeRecord>(&b).ok())
        .filter(|r| runtime.volumes().exists(&r.name))
        .map(|r| {
            (
                r.key,
                LiveObject {
                    name: r.name,
                    hash: r.hash,
                },
            )
        })
        .collect()
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
    let mut anonymous: BTreeSet<String> = BTreeSet::new();
    let mut elsewhere: BTreeSet<String> = BTreeSet::new();
    for id in runtime.list() {
        let Ok(config) = runtime.config(&id) else {
            continue;
        };
        if config.spec.project != project {
            // A volume another project's container mounts (`volumes_from: container:…`)
            // is not this project's to remove.
            elsewhere.extend(config.spec.mounts.iter().filter_map(|m| match &m.kind {
                crate::runtime::spec::MountKind::Volume { name, .. } => Some(name.clone()),
                _ => None,
            }));
            continue;
        }
        anonymous
            .extend(crate::runtime::spec::anonymous_volumes_of(&config.spec.mounts).into_values());
        let state = runtime.state(&id).ok();
        let running = state.as_ref().is_some_and(|s| s.is_active());
        let exit_code = state.and_then(|s| s.exit_code).filter(|_| !running);
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
            exit_code,
            networks: sandboxes.get(&id).cloned().unwrap_or_default(),
            one_off: origin.as_ref().is_some_and(|o| o.one_off.is_some()),
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
    anonymous.extend(kept_anonymous_volumes(runtime.root(), project, runtime));
    Ok(Live {
        containers,
        networks,
        volumes: recorded_volumes(runtime.root(), project, runtime),
        anonymous_volumes: anonymous.difference(&elsewhere).cloned().collect(),
        images,
    })
}

/// Crash recovery and the chores of a daemon: finishes container removals a crash
/// interrupted, removes the one-off containers of `project` made with `run -d --rm` that
/// have exited, and removes the network sandboxes of `project` whose container no longer
/// exists (a `down` or a recreate killed between removing the container and its sandbox
/// leaves them; they would hold their networks forever). Returns the sandboxes' ids.
pub fn sweep(
    project: &str,
    runtime: &Runtime,
    networks: &Networks,
) -> Result<Vec<String>, StateError> {
    runtime.purge();
    for id in runtime.list() {
        let done = runtime
            .config(&id)
            .is_ok_and(|c| c.spec.project == project && c.one_off().is_some_and(|o| o.auto_remove))
            && runtime.state(&id).is_ok_and(|s| !s.is_active());
        if done {
            // Its sandbox goes below, with the other sandboxes left without a container.
            // `--rm` takes its anonymous volumes along, as Docker's does.
            let _ = runtime.remove(&id, crate::runtime::AnonymousVolumes::Remove);
        }
    }
    let root = runtime.root();
    for dir in ["network", "network/networks", "network/sandboxes"] {
        remove_stale_temporaries(&root.join(dir));
    }
    remove_stale_temporaries(&project_dir(root, project).join("volumes"));
    remove_stale_temporaries(&project_dir(root, project).join("anonymous"));
    let containers: std::collections::BTreeSet<String> = runtime.list().into_iter().collect();
    let mut swept = Vec::new();
    for s in networks.sandboxes()? {
        if s.spec.project == project && !containers.contains(&s.id) {
            networks.remove_sandbox(&s.id)?;
            swept.push(s.id);
        }
    }
    Ok(swept)
}

/// Removes the temporary files [`replace_file`] left in `dir` when its writer was killed
/// between writing and renaming (`.<name>.<pid>.tmp` of a process that is gone).
fn remove_stale_temporaries(dir: &Path) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".tmp"))
            .and_then(|n| n.rsplit_once('.'))
            .and_then(|(_, pid)| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
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

/// Forgets volume `name` in every project that recorded it, as a declared or a kept
/// anonymous volume (`down -v` knows the volume's name, not necessarily which project made
/// it).
pub fn forget_volume_everywhere(state_root: &Path, name: &str) -> Result<(), StateError> {
    for entry in fs::read_dir(state_root.join("projects"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Some(project) = entry.file_name().to_str() {
            forget_volume(state_root, project, name)?;
            let path = anonymous_record_path(state_root, project, name);
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(io_err("removing", &path)(e));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::spec::{MountKind, anonymous_volume_spec, anonymous_volumes_of};

    /// Creates (never starts) container `id` of `project`, of a service with an anonymous
    /// volume at `/data`, also mounting `extra`'s volumes (`volumes_from`); returns its
    /// anonymous volume.
    fn create(
        runtime: &Runtime,
        project: &str,
        id: &str,
        extra: &[crate::runtime::spec::Mount],
    ) -> String {
        let mut spec = anonymous_volume_spec(project, id, None);
        let own = anonymous_volumes_of(&spec.mounts)["/data"].clone();
        spec.mounts.extend(extra.iter().cloned().map(|mut m| {
            m.destination = format!("/from{}", m.destination);
            m
        }));
        runtime
            .create(&spec, &crate::runtime::CreateOptions::default())
            .unwrap();
        own
    }

    #[test]
    fn observe_reports_the_projects_anonymous_volumes_mounted_or_kept() {
        let root = tempfile::tempdir().unwrap();
        let exe = Path::new("/nonexistent/wharf");
        let (runtime, networks) = (
            Runtime::new(root.path(), exe),
            Networks::new(root.path(), exe),
        );
        let mounted = create(&runtime, "shop", "web", &[]);
        let kept = "c".repeat(64);
        runtime.volumes().ensure(&kept).unwrap();
        keep_anonymous_volumes(root.path(), "shop", "shop-old", std::slice::from_ref(&kept))
            .unwrap();
        // A container of shop whose anonymous volume another project's container mounts
        // too (`volumes_from: container:…`): not shop's to remove.
        let shared = create(&runtime, "shop", "db", &[]);
        let db = runtime.config("db").unwrap().spec.mounts;
        let blog = create(&runtime, "blog", "blog", &db);
        assert!(
            runtime
                .config("blog")
                .unwrap()
                .spec
                .mounts
                .iter()
                .any(|m| matches!(&m.kind, MountKind::Volume { name, .. } if *name == shared))
        );
        let live = observe("shop", &runtime, &networks, BTreeMap::new()).unwrap();
        assert_eq!(live.anonymous_volumes, BTreeSet::from([mounted, kept]));
        assert!(live.volumes.is_empty());
        let live = observe("blog", &runtime, &networks, BTreeMap::new()).unwrap();
        assert_eq!(live.anonymous_volumes, BTreeSet::from([blog]));
    }

    #[test]
    fn kept_anonymous_volumes_are_remembered_until_removed_and_apart_from_declared_ones() {
        let root = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(root.path(), Path::new("/nonexistent/wharf"));
        let lock = lock_project(root.path(), "shop", || {}).unwrap();
        let (kept, gone) = ("a".repeat(64), "b".repeat(64));
        runtime.volumes().ensure(&kept).unwrap();
        keep_anonymous_volumes(
            root.path(),
            "shop",
            "shop-web-1",
            &[kept.clone(), gone.clone()],
        )
        .unwrap();
        // Only those still on the host count; they are not declared volumes.
        assert_eq!(
            kept_anonymous_volumes(root.path(), "shop", &runtime),
            vec![kept.clone()]
        );
        assert!(recorded_volumes(root.path(), "shop", &runtime).is_empty());
        assert!(kept_anonymous_volumes(root.path(), "blog", &runtime).is_empty());
        // The project's records stay while a kept volume is remembered.
        lock.remove_if_empty();
        assert!(project_dir(root.path(), "shop").join("lock").exists());
        // `down -v` removed them: forgotten, and the project's records go.
        runtime.volumes().remove(&kept).unwrap();
        forget_volume_everywhere(root.path(), &kept).unwrap();
        forget_volume_everywhere(root.path(), &gone).unwrap();
        lock.remove_if_empty();
        assert!(!project_dir(root.path(), "shop").exists());
    }

    #[test]
    fn config_files_are_recorded_and_go_with_the_project() {
        let root = tempfile::tempdir().unwrap();
        let files = [
            PathBuf::from("/srv/shop/compose.yaml"),
            PathBuf::from("/srv/shop/prod.yaml"),
        ];
        assert!(
            config_files(root.path(), "shop").is_empty(),
            "none recorded"
        );
        record_config_files(root.path(), "shop", &files).unwrap();
        assert_eq!(config_files(root.path(), "shop"), files);
        let dir = project_dir(root.path(), "shop");

        // A volume record left (down without -v) keeps the directory and the record.
        let volume = VolumeRecord {
            key: "data".into(),
            name: "shop_data".into(),
            hash: "h".into(),
        };
        record_volume(root.path(), "shop", &volume).unwrap();
        lock_project(root.path(), "shop", || {})
            .unwrap()
            .remove_if_empty();
        assert_eq!(config_files(root.path(), "shop"), files);

        // Nothing else left: the directory goes, the record with it.
        forget_volume(root.path(), "shop", "shop_data").unwrap();
        lock_project(root.path(), "shop", || {})
            .unwrap()
            .remove_if_empty();
        assert!(!dir.exists(), "{dir:?} is left");
        assert!(config_files(root.path(), "shop").is_empty());
    }
}
