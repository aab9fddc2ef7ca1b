//! One container's directory under the state root, `<root>/containers/<id>/`, and the two
//! records in it: the launch configuration (written once by whoever creates the container)
//! and the live state (written by the container's supervisor, read by everyone else).
//!
//! The directory also holds the container's writable layer (`upper/`, `work/`), the mount
//! point of its root filesystem (`rootfs/`, mounted only inside the container's own mount
//! namespace, so never visible on the host), its per-container `/etc` files, and its log.
//! This module only names paths and reads and writes the two records; it starts nothing.
//! Whether a recorded process is still alive is checked against its start time, so a
//! recycled PID is never mistaken for the container.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::health::Health;
use super::spec::{ContainerSpec, EtcFile};

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a valid record: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

pub type Result<T, E = ContainerError> = std::result::Result<T, E>;

pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ContainerError {
    let path = path.to_path_buf();
    move |source| ContainerError::Io { op, path, source }
}

/// Everything the supervisor and the container's init need, fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchConfig {
    pub spec: ContainerSpec,
    /// The image's unpacked layers, topmost first (overlayfs `lowerdir` order).
    pub layers: Vec<PathBuf>,
    /// Each volume the spec mounts, by name, to its data directory on the host.
    #[serde(default)]
    pub volumes: BTreeMap<String, PathBuf>,
    /// Containers whose namespaces or `/dev/shm` this one joins, by the spec's target text
    /// (`service:db`, `container:x`) to that container's directory.
    #[serde(default)]
    pub joins: BTreeMap<String, PathBuf>,
    /// The network namespace the network layer prepared and pinned for this container
    /// (veths and addresses already in it); `None` with `net: New` makes an empty one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<PathBuf>,
    /// What the reconciler compares on the next `up` (the runtime only keeps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// When the container was created: RFC 3339 in UTC with nanoseconds (`None` in
    /// records written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

/// Where a container came from: the config hash and normalized service it was created
/// from, and the digest of the image it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub config_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    #[serde(default)]
    pub service: serde_json::Value,
    /// `Some` for a one-off container (`wharf run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_off: Option<OneOff>,
}

/// A one-off container (`wharf run`): not one of its service's replicas, so the reconciler
/// neither scales, recreates nor waits for it, and `down` removes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneOff {
    /// `run -d --rm`: there is no daemon to remove it when it exits, so the next wharf
    /// command that sweeps the project and finds it exited does.
    #[serde(default)]
    pub auto_remove: bool,
    /// `--use-aliases`: it answers to its service's name and aliases on its networks, as
    /// the service's replicas do (without, only to its own name).
    #[serde(default)]
    pub use_aliases: bool,
}

impl LaunchConfig {
    /// The one-off record, for a container `wharf run` made.
    pub fn one_off(&self) -> Option<&OneOff> {
        self.origin.as_ref().and_then(|o| o.one_off.as_ref())
    }
}

/// A process, identified so that a recycled PID is not taken for it: its start time in
/// clock ticks since boot (`/proc/<pid>/stat` field 22).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcRef {
    pub pid: i32,
    pub start_time: u64,
}

impl ProcRef {
    /// The process `pid` as it is now; `None` when it does not exist.
    pub fn of(pid: i32) -> Option<ProcRef> {
        proc_start_time(pid).map(|start_time| ProcRef { pid, start_time })
    }

    /// Whether the very process recorded still exists (a zombie counts as gone).
    pub fn is_alive(&self) -> bool {
        proc_stat(self.pid).is_some_and(|(state, start)| start == self.start_time && state != 'Z')
    }
}

/// `(state, start time)` from `/proc/<pid>/stat`. The command name (field 2) may contain
/// spaces and parentheses, so fields are counted from its last `)`.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // `rest` starts at field 3 (state); the start time is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

fn proc_start_time(pid: i32) -> Option<u64> {
    proc_stat(pid).map(|(_, start)| start)
}

/// Where the container is in its life, as its supervisor last recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, never started (or the supervisor is still setting it up).
    Created,
    Running,
    /// Exited; the restart policy starts it again after a delay.
    Restarting,
    /// Being stopped: the stop signal was sent.
    Stopping,
    Exited,
    /// The supervisor died while the container ran (found by a reader, never written).
    Dead,
}

/// The live record, `state.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor: Option<ProcRef>,
    /// The container's first process (PID 1 inside, when it has its own PID namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<ProcRef>,
    /// RFC 3339 with nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// 128 + signal number for a death by signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default)]
    pub restart_count: u64,
    /// Stopped on request (`stop`/`down`), not by itself.
    #[serde(default)]
    pub stopped_by_user: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// Why the container could not be started, for the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl State {
    pub fn created() -> State {
        State {
            status: Status::Created,
            supervisor: None,
            init: None,
            started_at: None,
            finished_at: None,
            exit_code: None,
            oom_killed: false,
            restart_count: 0,
            stopped_by_user: false,
            health: None,
            error: None,
        }
    }

    /// The state as it truly is: a record saying "running" whose supervisor is gone is
    /// `Dead` when the container's process is gone too, and stays `Running` (unsupervised)
    /// when it is not — `ps` shows the truth, `down` still finds the process.
    pub fn checked(mut self) -> State {
        let live = matches!(
            self.status,
            Status::Running | Status::Restarting | Status::Stopping | Status::Created
        );
        let supervised = self.supervisor.is_some_and(|s| s.is_alive());
        if live && !supervised {
            let init_alive = self.init.is_some_and(|p| p.is_alive());
            if !(init_alive && self.status == Status::Running) {
                self.status = if self.status == Status::Created && self.supervisor.is_none() {
                    Status::Created
                } else {
                    Status::Dead
                };
            }
        }
        self
    }

    /// Whether the container's process may still be alive.
    pub fn is_active(&self) -> bool {
        matches!(
            self.status,
            Status::Running | Status::Restarting | Status::Stopping
        )
    }
}

/// The paths of one container's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerDir {
    path: PathBuf,
}

impl ContainerDir {
    /// `<state root>/containers/<id>`.
    pub fn new(state_root: &Path, id: &str) -> ContainerDir {
        ContainerDir {
            path: state_root.join("containers").join(id),
        }
    }

    pub fn at(path: PathBuf) -> ContainerDir {
        ContainerDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn config_path(&self) -> PathBuf {
        self.path.join("config.json")
    }

    pub fn state_path(&self) -> PathBuf {
        self.path.join("state.json")
    }

    /// The container's log (`json.log`, rotated as `json.log.1`, …).
    pub fn log_path(&self) -> PathBuf {
        self.path.join("json.log")
    }

    /// The supervisor's own diagnostics (what went wrong outside the container).
    pub fn supervisor_log_path(&self) -> PathBuf {
        self.path.join("supervisor.log")
    }

    pub fn upper(&self) -> PathBuf {
        self.path.join("upper")
    }

    pub fn work(&self) -> PathBuf {
        self.path.join("work")
    }

    /// Where the root filesystem is assembled, inside the container's mount namespace.
    pub fn rootfs(&self) -> PathBuf {
        self.path.join("rootfs")
    }

    /// The lower directory for an image without layers (overlayfs needs one).
    pub fn empty_lower(&self) -> PathBuf {
        self.path.join("empty")
    }

    pub fn etc_file(&self, file: EtcFile) -> PathBuf {
        self.path.join(match file {
            EtcFile::Hostname => "hostname",
            EtcFile::Hosts => "hosts",
            EtcFile::ResolvConf => "resolv.conf",
        })
    }

    /// Inline secret and config contents, by mount index.
    pub fn content(&self, index: usize) -> PathBuf {
        self.path.join("content").join(index.to_string())
    }

    pub fn write_config(&self, config: &LaunchConfig) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(config).expect("a launch config always serializes");
        write_replace(&self.config_path(), &bytes)
    }

    pub fn read_config(&self) -> Result<LaunchConfig> {
        read_json(&self.config_path())
    }

    pub fn write_state(&self, state: &State) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(state).expect("a state always serializes");
        write_replace(&self.state_path(), &bytes)
    }

    /// The recorded state, as recorded (see [`State::checked`] for the truth).
    pub fn read_state(&self) -> Result<State> {
        read_json(&self.state_path())
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = fs::read(path).map_err(io_err("reading", path))?;
    serde_json::from_slice(&bytes).map_err(|source| ContainerError::Corrupt {
        path: path.to_path_buf(),
        source,
    })
}

/// [`crate::state::replace_file`], with the runtime's error.
fn write_replace(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::state::replace_file(path, bytes).map_err(io_err("replacing", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = ProcRef::of(std::process::id() as i32).expect("we exist");
        assert!(me.is_alive());
        let other = ProcRef {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!other.is_alive(), "a recycled pid is not the process");
        assert!(ProcRef::of(i32::MAX).is_none());
    }

    #[test]
    fn a_running_record_without_its_supervisor_is_dead_unless_the_process_lives() {
        let gone = ProcRef {
            pid: i32::MAX,
            start_time: 1,
        };
        let me = ProcRef::of(std::process::id() as i32).unwrap();
        let mut state = State::created();
        state.status = Status::Running;
        state.supervisor = Some(gone);
        state.init = Some(gone);
        assert_eq!(state.clone().checked().status, Status::Dead);
        state.init = Some(me);
        assert_eq!(state.clone().checked().status, Status::Running);
        state.supervisor = Some(me);
        state.init = Some(gone);
        assert_eq!(
            state.checked().status,
            Status::Running,
            "supervised: trusted"
        );
    }

    #[test]
    fn records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let c = ContainerDir::at(dir.path().to_path_buf());
        let mut state = State::created();
        state.exit_code = Some(137);
        state.oom_killed = true;
        c.write_state(&state).unwrap();
        assert_eq!(c.read_state().unwrap(), state);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }
}
