//! The runtime's entry points on a Linux host: create, start, stop, kill, remove, inspect,
//! exec and read logs of containers, each kept in its directory under the state root and
//! watched by its own supervisor process.
//!
//! Every process this starts is the wharf binary executed afresh (`std::process::Command`,
//! never a fork of the caller, which may be running a tokio runtime): the supervisor, and
//! through it the container's init and health probes, and `exec`. The calls block; async
//! callers run them on the blocking pool. Everything a container owns on the host — its
//! directory, its cgroup, its processes — is found again from the state root and the
//! container's names alone, so `remove` works even when the supervisor is gone.
//!
//! Anonymous volumes outlive their container unless the caller says otherwise
//! ([`AnonymousVolumes`]): the runtime never deletes one another container still mounts
//! (a recreated container's replacement mounts its predecessor's), and
//! [`Runtime::anonymous_volumes_left_by`] tells the caller which ones a removal leaves
//! unmounted, so that it can record them.

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal as NixSignal, kill};
use nix::unistd::Pid;

use super::cgroupdir::ContainerCgroup;
use super::cgroupfs::Hierarchies;
use super::container::{ContainerDir, ContainerError, LaunchConfig, State};
use super::log::Entry;
use super::nsexec::Request;
use super::spec::{ContainerSpec, EtcFile, MountKind, Signal};
use super::volume::Volumes;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("container {id}: {source}")]
    Record {
        id: String,
        #[source]
        source: ContainerError,
    },
    #[error("container {id} already exists")]
    Exists { id: String },
    #[error("no such container: {id}")]
    NotFound { id: String },
    #[error("container {name}: {step}: {message}")]
    Step {
        name: String,
        step: &'static str,
        message: String,
    },
}

type Result<T> = std::result::Result<T, RuntimeError>;

/// What `create` needs besides the spec.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The image's unpacked layers, topmost first ([`crate::image::store::Store::rootfs_layers`]).
    pub layers: Vec<PathBuf>,
    /// Containers whose namespaces or `/dev/shm` this one shares: the spec's target text
    /// (`service:db`) to the id of that container.
    pub joins: BTreeMap<String, String>,
    /// Initial content of `/etc/hosts` and `/etc/resolv.conf` (the network layer's);
    /// `None` writes a minimal default.
    pub hosts: Option<String>,
    pub resolv_conf: Option<String>,
    /// A pinned network namespace to join instead of creating one (`net: New` only): the
    /// network layer has put the container's interfaces in it before the process starts,
    /// and it outlives restarts of the process.
    pub netns: Option<PathBuf>,
    /// Recorded for the reconciler ([`super::container::Origin`]).
    pub origin: Option<super::container::Origin>,
}

/// What [`Runtime::remove`] does with the container's anonymous volumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnonymousVolumes {
    /// Leaves them on the host (`rm` and `down` without `-v`, a replaced container). What
    /// no other container mounts then is the caller's to record
    /// ([`Runtime::anonymous_volumes_left_by`]).
    Keep,
    /// Removes those no other container mounts (`rm -v`); one still mounted elsewhere
    /// stays.
    Remove,
}

/// The container runtime of one state root.
#[derive(Debug, Clone)]
pub struct Runtime {
    root: PathBuf,
    exe: PathBuf,
}

impl Runtime {
    /// A runtime keeping its containers under `state_root`, re-executing `exe` (the wharf
    /// binary; `std::env::current_exe()` in the CLI) for its helper processes.
    pub fn new(state_root: &Path, exe: &Path) -> Runtime {
        // Absolute: supervisors run from `/`, long after our working directory is gone.
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        Runtime {
            root: absolute(state_root),
            exe: absolute(exe),
        }
    }

    /// The state root this runtime keeps its containers under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self, id: &str) -> ContainerDir {
        ContainerDir::new(&self.root, id)
    }

    pub fn volumes(&self) -> Volumes {
        Volumes::new(&self.root)
    }

    fn step(spec_name: &str, step: &'static str) -> impl FnOnce(String) -> RuntimeError {
        let spec_name = spec_name.to_string();
        move |message| RuntimeError::Step {
            name: spec_name,
            step,
            message,
        }
    }

    /// Creates the container's directory: its writable layer, `/etc` files, inline
    /// secrets, volumes, and the launch record. Starts nothing. On failure nothing is left.
    pub fn create(&self, spec: &ContainerSpec, options: &CreateOptions) -> Result<ContainerDir> {
        let dir = self.dir(&spec.id);
        if let Some(parent) = dir.path().parent() {
            fs::create_dir_all(parent).map_err(|e| {
                Self::step(&spec.name, "creating the containers directory")(e.to_string())
            })?;
        }
        match fs::create_dir(dir.path()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(RuntimeError::Exists {
                    id: spec.id.clone(),
                });
            }
            Err(e) => {
                return Err(Self::step(&spec.name, "creating the container directory")(
                    e.to_string(),
                ));
            }
        }
        let result = self.fill(&dir, spec, options);
        if result.is_err() {
            let _ = fs::remove_dir_all(dir.path());
        }
        result.map(|()| dir)
    }

    fn fill(
        &self,
        dir: &ContainerDir,
        spec: &ContainerSpec,
        options: &CreateOptions,
    ) -> Result<()> {
        let io = |step: &'static str| Self::step(&spec.name, step);
        for d in [dir.upper(), dir.work(), dir.rootfs(), dir.empty_lower()] {
            fs::create_dir(&d)
                .map_err(|e| io("creating the writable layer")(format!("{}: {e}", d.display())))?;
        }
        let hostname = match &spec.domainname {
            Some(domain) => format!("{}.{domain}", spec.hostname),
            None => spec.hostname.clone(),
        };
        let hosts = options.hosts.clone().unwrap_or_else(|| {
            format!(
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{}\n",
                spec.hostname
            )
        });
        let resolv = options.resolv_conf.clone().unwrap_or_default();
        for (file, content) in [
            (EtcFile::Hostname, format!("{hostname}\n")),
            (EtcFile::Hosts, hosts),
            (EtcFile::ResolvConf, resolv),
        ] {
            let path = dir.etc_file(file);
            fs::write(&path, content)
                .map_err(|e| io("writing /etc files")(format!("{}: {e}", path.display())))?;
        }
        let mut volumes = BTreeMap::new();
        for (index, m) in spec.mounts.iter().enumerate() {
            match &m.kind {
                MountKind::Volume { name, .. } => {
                    let data = self
                        .volumes()
                        .ensure(name)
                        .map_err(|e| io("creating a volume")(e.to_string()))?;
                    volumes.insert(name.clone(), data);
                }
                MountKind::Content {
                    content,
                    mode,
                    uid,
                    gid,
                    ..
                } => {
                    let path = dir.content(index);
                    write_content(&path, content, *mode, *uid, *gid).map_err(|e| {
                        io("writing a secret or config")(format!("{}: {e}", path.display()))
                    })?;
                }
                _ => {}
            }
        }
        let joins = options
            .joins
            .iter()
            .map(|(k, id)| (k.clone(), self.dir(id).path().to_path_buf()))
            .collect();
        let config = LaunchConfig {
            spec: spec.clone(),
            layers: options.layers.clone(),
            volumes,
            joins,
            netns: options.netns.clone(),
            origin: options.origin.clone(),
            created: Some(super::log::rfc3339_nanos(std::time::SystemTime::now())),
        };
        dir.write_config(&config)
            .map_err(|e| io("recording the configuration")(e.to_string()))?;
        dir.write_state(&State::created())
            .map_err(|e| io("recording the state")(e.to_string()))?;
        Ok(())
    }

    fn existing(&self, id: &str) -> Result<ContainerDir> {
        let dir = self.dir(id);
        if !dir.config_path().exists() {
            return Err(RuntimeError::NotFound { id: id.to_string() });
        }
        Ok(dir)
    }

    fn record(id: &str) -> impl FnOnce(ContainerError) -> RuntimeError + '_ {
        move |source| RuntimeError::Record {
            id: id.to_string(),
            source,
        }
    }

    /// The container's state, checked against the live processes.
    pub fn state(&self, id: &str) -> Result<State> {
        let dir = self.existing(id)?;
        Ok(dir.read_state().map_err(Self::record(id))?.checked())
    }

    pub fn config(&self, id: &str) -> Result<LaunchConfig> {
        self.existing(id)?.read_config().map_err(Self::record(id))
    }

    /// The ids of every container of this state root. A container being removed (its
    /// directory renamed to a `.removing-<id>` tombstone, still whole for a moment) is
    /// none: a reader that took it for one would see a container twice.
    pub fn list(&self) -> Vec<String> {
        let mut ids: Vec<String> = fs::read_dir(self.root.join("containers"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("config.json").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| !name.starts_with('.'))
            .collect();
        ids.sort();
        ids
    }

    /// The container of replica `replica` of `service` in `project`, if there is one (a
    /// one-off container of the service is none of its replicas).
    pub fn find(&self, project: &str, service: &str, replica: u64) -> Option<String> {
        self.list().into_iter().find(|id| {
            self.dir(id).read_config().is_ok_and(|c| {
                c.spec.project == project
                    && c.spec.service == service
                    && c.spec.replica == replica
                    && c.one_off().is_none()
            })
        })
    }

    /// Starts the container under a new supervisor and returns once its program runs (or
    /// with the reason it could not start). Starting a running container does nothing.
    pub fn start(&self, id: &str) -> Result<State> {
        self.launch(id, false)
    }

    /// Starts the container in the foreground of our caller (`wharf run`): it reads our
    /// stdin, and its output comes to our stdout and stderr as well as to its log. With a
    /// terminal (`process.terminal`), our stdin should be in raw mode meanwhile
    /// ([`super::nsexec::RawMode`]), and a `SIGWINCH` sent to the supervisor when our window
    /// changes. The supervisor holds our streams until the container has exited.
    pub fn start_attached(&self, id: &str) -> Result<State> {
        self.launch(id, true)
    }

    fn launch(&self, id: &str, attached: bool) -> Result<State> {
        let dir = self.existing(id)?;
        let state = dir.read_state().map_err(Self::record(id))?.checked();
        if state.is_active() {
            return Ok(state);
        }
        let name = self.config(id)?.spec.name;
        super::supervisor::launch(&self.exe, dir.path(), attached)
            .map_err(|m| Self::step(&name, "starting")(m))?;
        self.state(id)
    }

    /// Stops the container: its supervisor sends the stop signal, waits the grace period
    /// (`timeout` overrides the spec's), kills what is left and exits. Without a live
    /// supervisor, the container's processes are killed directly.
    pub fn stop(&self, id: &str, timeout: Option<Duration>) -> Result<State> {
        let dir = self.existing(id)?;
        let config = dir.read_config().map_err(Self::record(id))?;
        let state = dir.read_state().map_err(Self::record(id))?;
        let grace = timeout.unwrap_or(config.spec.stop.grace_period);
        let supervisor = state.supervisor.filter(|s| s.is_alive());
        let init = state.init.filter(|p| p.is_alive());
        match supervisor {
            // The supervisor sends the stop signal and, knowing it was asked, does not
            // restart the container when it exits.
            Some(sup) => {
                let _ = kill(Pid::from_raw(sup.pid), NixSignal::SIGTERM);
            }
            None => {
                if let Some(init) = init {
                    let sig = NixSignal::try_from(config.spec.stop.signal.number())
                        .unwrap_or(NixSignal::SIGTERM);
                    let _ = kill(Pid::from_raw(init.pid), sig);
                }
            }
        }
        if let Some(init) = init {
            wait_gone(|| init.is_alive(), grace);
            if init.is_alive() {
                // Our grace period (`timeout`) may be shorter than the supervisor's.
                self.kill_leftovers(&config)?;
            }
        }
        if let Some(sup) = supervisor {
            wait_gone(|| sup.is_alive(), Duration::from_secs(5));
        }
        // Whatever is still there (a dead supervisor's container, or one that did not
        // finish in time) is killed through the cgroup, found by name.
        self.kill_leftovers(&config)?;
        let mut state = dir.read_state().map_err(Self::record(id))?.checked();
        if state.is_active() || state.status == super::container::Status::Dead {
            state.status = super::container::Status::Exited;
            state.stopped_by_user = true;
            state.init = None;
            state.supervisor = None;
            if state.exit_code.is_none() {
                state.exit_code = Some(137);
            }
            dir.write_state(&state).map_err(Self::record(id))?;
        }
        Ok(state)
    }

    fn kill_leftovers(&self, config: &LaunchConfig) -> Result<()> {
        let cgroups = Hierarchies::read(Path::new("/proc/self/mountinfo"))
            .map_err(|e| Self::step(&config.spec.name, "finding cgroups")(e.to_string()))?;
        let cg = ContainerCgroup::open(&cgroups, &config.spec.cgroup_path)
            .map_err(|e| Self::step(&config.spec.name, "finding its cgroup")(e.to_string()))?;
        match cg.kill_all().and_then(|()| cg.remove()) {
            Ok(()) => Ok(()),
            // The supervisor, finishing at the same moment, removed it first.
            Err(_) if cg.dirs().iter().all(|d| !d.exists()) => Ok(()),
            Err(e) => Err(Self::step(&config.spec.name, "killing its processes")(
                e.to_string(),
            )),
        }
    }

    /// Sends `signal` to the container's first process.
    pub fn kill(&self, id: &str, signal: Signal) -> Result<()> {
        let state = self.state(id)?;
        let init = state
            .init
            .filter(|p| p.is_alive())
            .ok_or_else(|| RuntimeError::Step {
                name: id.to_string(),
                step: "kill",
                message: "the container is not running".into(),
            })?;
        let sig = NixSignal::try_from(signal.number()).map_err(|e| RuntimeError::Step {
            name: id.to_string(),
            step: "kill",
            message: e.to_string(),
        })?;
        kill(Pid::from_raw(init.pid), sig).map_err(|e| RuntimeError::Step {
            name: id.to_string(),
            step: "kill",
            message: e.to_string(),
        })
    }

    /// Removes the container: stopped first if it runs, then its cgroup and directory.
    /// Named volumes stay; its anonymous volumes stay too unless `anonymous` is
    /// [`AnonymousVolumes::Remove`], and even then one another container mounts stays.
    pub fn remove(&self, id: &str, anonymous: AnonymousVolumes) -> Result<()> {
        let dir = self.dir(id);
        if !dir.path().exists() {
            return Ok(());
        }
        if let Ok(config) = dir.read_config() {
            match self.stop(id, Some(Duration::ZERO)) {
                Ok(_) => {}
                // No readable state (a crash while it was written): whatever runs is
                // found through the cgroup, by name.
                Err(RuntimeError::Record { .. }) => self.kill_leftovers(&config)?,
                Err(e) => return Err(e),
            }
            if anonymous == AnonymousVolumes::Remove {
                for name in self.anonymous_volumes_left_by(id) {
                    self.volumes().remove(&name).map_err(|e| {
                        Self::step(&config.spec.name, "removing an anonymous volume")(e.to_string())
                    })?;
                }
            }
        }
        // Out of sight first: a crash during the deletion leaves a tombstone that
        // [`Runtime::purge`] finishes, never a half-deleted directory that still looks like
        // a container (or no longer does, with its files left behind).
        let tomb = self.root.join("containers").join(format!(".removing-{id}"));
        let step = |e: std::io::Error| RuntimeError::Step {
            name: id.to_string(),
            step: "removing its directory",
            message: e.to_string(),
        };
        fs::rename(dir.path(), &tomb).map_err(step)?;
        fs::remove_dir_all(&tomb).map_err(step)
    }

    /// The anonymous volumes of container `id` that no other container of this state root
    /// mounts: what removing it leaves unmounted (and what [`AnonymousVolumes::Remove`]
    /// deletes). Empty when its record cannot be read.
    pub fn anonymous_volumes_left_by(&self, id: &str) -> Vec<String> {
        let Ok(config) = self.dir(id).read_config() else {
            return Vec::new();
        };
        let in_use = self.volumes_in_use(Some(id));
        let mut names: Vec<String> = super::spec::anonymous_volumes_of(&config.spec.mounts)
            .into_values()
            .filter(|name| !in_use.contains_key(name))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Every volume (named or anonymous) a container of this state root mounts, other than
    /// container `except`, with the name of one container that mounts it.
    pub fn volumes_in_use(&self, except: Option<&str>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for other in self.list() {
            if Some(other.as_str()) == except {
                continue;
            }
            let Ok(config) = self.dir(&other).read_config() else {
                continue;
            };
            for m in &config.spec.mounts {
                if let MountKind::Volume { name, .. } = &m.kind {
                    out.entry(name.clone())
                        .or_insert_with(|| config.spec.name.clone());
                }
            }
        }
        out
    }

    /// Finishes removals a crash interrupted (their `.removing-<id>` tombstones). Returns
    /// how many it deleted.
    pub fn purge(&self) -> usize {
        let mut n = 0;
        for entry in fs::read_dir(self.root.join("containers"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(".removing-")
                && fs::remove_dir_all(entry.path()).is_ok()
            {
                n += 1;
            }
        }
        n
    }

    /// Replaces the content of the container's `/etc/hosts` or `/etc/resolv.conf` (the
    /// network layer's, after its networks changed). Written in place: the file is
    /// bind-mounted into the running container, and a renamed-over file would leave the
    /// mount on the old inode. A reader may see it half-written for a moment, as with
    /// Docker's own rewrite of these files.
    pub fn rewrite_etc(&self, id: &str, file: EtcFile, content: &str) -> Result<()> {
        let dir = self.existing(id)?;
        let path = dir.etc_file(file);
        fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, content.as_bytes()))
            .map_err(|e| RuntimeError::Step {
                name: id.to_string(),
                step: "rewriting an /etc file",
                message: format!("{}: {e}", path.display()),
            })
    }

    /// Renames a container that is not running: its name and the cgroup path derived from
    /// it (the reconciler creates a replacement under a temporary name, removes the old
    /// container, then gives the new one the old name before starting it). A running
    /// container keeps its cgroup, so renaming one is refused.
    pub fn rename(&self, id: &str, name: &str) -> Result<()> {
        let dir = self.existing(id)?;
        let mut config = dir.read_config().map_err(Self::record(id))?;
        if dir
            .read_state()
            .map_err(Self::record(id))?
            .checked()
            .is_active()
        {
            return Err(Self::step(&config.spec.name, "renaming")(
                "the container is running".into(),
            ));
        }
        config.spec.cgroup_path = super::spec::cgroup_path(&config.spec.project, name)
            .map_err(|e| Self::step(&config.spec.name, "renaming")(e.to_string()))?;
        config.spec.name = name.to_string();
        dir.write_config(&config).map_err(Self::record(id))
    }

    /// Runs a command in the running container and returns its exit code. The command
    /// uses the caller's standard streams.
    pub fn exec(&self, id: &str, request: &Request) -> Result<i32> {
        let dir = self.existing(id)?;
        let json = serde_json::to_string(request).expect("a request serializes");
        // Through the read-only view, like every wharf process that enters a container.
        let exe = super::sys::readonly_view(&self.exe).map_err(|e| RuntimeError::Step {
            name: id.to_string(),
            step: "exec",
            message: format!("a read-only view of {}: {e}", self.exe.display()),
        })?;
        let status = Command::new(format!("/proc/self/fd/{}", exe.as_raw_fd()))
            .arg0("wharf-exec")
            .arg("__nsexec")
            .arg(dir.path())
            .arg(json)
            .stdin(if request.detach {
                Stdio::null()
            } else {
                Stdio::inherit()
            })
            .status()
            .map_err(|e| RuntimeError::Step {
                name: id.to_string(),
                step: "exec",
                message: e.to_string(),
            })?;
        Ok(exit_code(status))
    }

    /// The container's log entries, oldest first.
    pub fn logs(&self, id: &str) -> Result<Vec<Entry>> {
        let dir = self.existing(id)?;
        let config = dir.read_config().map_err(Self::record(id))?;
        super::log::read_all(&dir.log_path(), config.spec.logging.max_file.max(1)).map_err(|e| {
            RuntimeError::Step {
                name: config.spec.name.clone(),
                step: "reading its log",
                message: e.to_string(),
            }
        })
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(255)
}

fn wait_gone(alive: impl Fn() -> bool, limit: Duration) {
    let end = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    while alive() && Instant::now() < end {
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

fn write_content(
    path: &Path,
    content: &str,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, content)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode.unwrap_or(0o444)))?;
    if uid.is_some() || gid.is_some() {
        std::os::unix::fs::chown(path, uid, gid)?;
    }
    Ok(())
}

/// Pausing: the container's cgroup frozen ([`ContainerCgroup::freeze`]), Docker's
/// `pause`/`unpause`. The state record is not touched: the cgroup is the truth, so a paused
/// container is still `Running` in its record and [`Runtime::is_paused`] says the rest. Its
/// supervisor skips health probes while it is paused, thaws it before it delivers a stop
/// signal, and thaws the cgroup before a restart; killing its cgroup thaws it first.
impl Runtime {
    /// The container's cgroup, found by name (no supervisor needed).
    fn cgroup(&self, id: &str) -> Result<(ContainerCgroup, String)> {
        let config = self.config(id)?;
        let name = config.spec.name.clone();
        let cgroups = Hierarchies::read(Path::new("/proc/self/mountinfo"))
            .map_err(|e| Self::step(&name, "finding cgroups")(e.to_string()))?;
        let cg = ContainerCgroup::open(&cgroups, &config.spec.cgroup_path)
            .map_err(|e| Self::step(&name, "finding its cgroup")(e.to_string()))?;
        Ok((cg, name))
    }

    /// Freezes every process of the running container and returns once they all stopped.
    /// Pausing a paused container does nothing; a container that is not running is an error.
    pub fn pause(&self, id: &str) -> Result<()> {
        let state = self.state(id)?;
        let (cg, name) = self.cgroup(id)?;
        if !state.init.is_some_and(|p| p.is_alive()) {
            return Err(Self::step(&name, "pausing")(
                "the container is not running".into(),
            ));
        }
        cg.freeze()
            .map_err(|e| Self::step(&name, "pausing")(e.to_string()))
    }

    /// Thaws the container's processes. Unpausing a container that is not paused (or not
    /// running) does nothing.
    pub fn unpause(&self, id: &str) -> Result<()> {
        let (cg, name) = self.cgroup(id)?;
        cg.thaw()
            .map_err(|e| Self::step(&name, "unpausing")(e.to_string()))
    }

    /// Whether the container's cgroup is frozen (false for a container without one, or one
    /// that cannot be read).
    pub fn is_paused(&self, id: &str) -> bool {
        self.cgroup(id)
            .is_ok_and(|(cg, _)| cg.is_frozen().unwrap_or(false))
    }
}

/// Runs a hidden subcommand (`__supervise`, `__init`, `__nsexec`) when `args` name one.
/// Called first thing in `main`, before anything else runs: these processes must stay
/// single-threaded. Returns only when `args` are an ordinary command line.
pub fn hidden_command(args: &[std::ffi::OsString]) {
    let arg = |i: usize| args.get(i).map(PathBuf::from);
    match args.get(1).and_then(|a| a.to_str()) {
        Some("__supervise") => {
            if let Some(dir) = arg(2) {
                let attached = args.get(3).is_some_and(|a| a == "--attached");
                super::supervisor::main(&dir, attached)
            }
        }
        Some("__init") => {
            if let Some(dir) = arg(2) {
                super::init::main(&dir)
            }
        }
        Some("__nsexec") => {
            if let (Some(dir), Some(request)) = (arg(2), args.get(3).and_then(|a| a.to_str())) {
                super::nsexec::main(&dir, request)
            }
        }
        _ => {}
    }
}

/// A container ready to be created: its spec and its image's layers.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub spec: ContainerSpec,
    pub layers: Vec<PathBuf>,
}

/// What [`prepare`] needs to name the container.
#[derive(Debug, Clone, Copy)]
pub struct Naming<'a> {
    pub service: &'a str,
    pub replica: u64,
    /// `None`: `<project>-<service>-<replica>` (or the service's `container_name`).
    pub container_name: Option<&'a str>,
    /// `None`: a fresh random id.
    pub id: Option<&'a str>,
    /// Anonymous volumes to reuse, by destination (the container it replaces mounts them:
    /// [`super::spec::anonymous_volumes_of`]); `None` or a destination not listed: a fresh
    /// one.
    pub anonymous_volumes: Option<&'a BTreeMap<String, String>>,
    /// For each `volumes_from` entry of the service, the mounts of the container it names
    /// (that container's spec mounts), resolved by the caller.
    pub volumes_from: &'a [&'a [super::spec::Mount]],
}

/// Builds the spec of one replica of a service from its image in `store`, reading the
/// image's `/etc/passwd` and `/etc/group` for user names. The image must be in the store.
pub fn prepare(
    project: &crate::compose::model::Project,
    naming: Naming<'_>,
    store: &crate::image::store::Store,
    cgroup: super::spec::CgroupVersion,
) -> Result<Prepared> {
    let fail = |step: &'static str| {
        let name = naming.service.to_string();
        move |message: String| RuntimeError::Step {
            name,
            step,
            message,
        }
    };
    let service = project
        .services
        .get(naming.service)
        .ok_or_else(|| fail("preparing")(format!("no service {:?}", naming.service)))?;
    let image_name = service
        .image
        .as_deref()
        .ok_or_else(|| fail("preparing")("the service names no image".into()))?;
    let reference = crate::image::reference::Reference::parse(image_name)
        .map_err(|e| fail("finding its image")(e.to_string()))?;
    let manifest = store
        .resolve(&reference.to_string())
        .map_err(|e| fail("finding its image")(e.to_string()))?
        .ok_or_else(|| {
            fail("finding its image")(format!("image {image_name} is not in the store"))
        })?;
    let image = store
        .image(&manifest)
        .map_err(|e| fail("reading its image")(e.to_string()))?;
    let healthcheck = store
        .healthcheck(&image)
        .map_err(|e| fail("reading its image")(e.to_string()))?;
    let layers = store
        .rootfs_layers(&manifest)
        .map_err(|e| fail("unpacking its image")(e.to_string()))?;
    let passwd = read_from_layers(&layers, "etc/passwd");
    let group = read_from_layers(&layers, "etc/group");
    let default_name = format!("{}-{}-{}", project.name, naming.service, naming.replica);
    let name = naming
        .container_name
        .or(service.container_name.as_deref())
        .unwrap_or(&default_name)
        .to_string();
    let id = match naming.id {
        Some(id) => id.to_string(),
        None => new_id(&name),
    };
    let spec = super::spec::build(&super::spec::SpecInput {
        project,
        service_name: naming.service,
        service,
        replica: naming.replica,
        container_name: &name,
        container_id: &id,
        image: Some(&image.config),
        image_healthcheck: healthcheck.as_ref(),
        passwd: passwd.as_deref(),
        group: group.as_deref(),
        cgroup,
        volumes_from: naming.volumes_from,
        anonymous_volumes: naming.anonymous_volumes,
        inherited_hostname: None,
    })
    .map_err(|e| fail("building its spec")(e.to_string()))?;
    Ok(Prepared { spec, layers })
}

/// A file of the image as the container will see it: from the topmost layer that has it,
/// unless a layer above deleted it (an overlayfs whiteout, a 0/0 character device).
fn read_from_layers(layers: &[PathBuf], rel: &str) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileTypeExt;
    for layer in layers {
        let path = layer.join(rel);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_char_device() => return None,
            Ok(m) if m.is_file() => return fs::read(&path).ok(),
            _ => continue,
        }
    }
    None
}

/// 64 hex digits, unique enough: a hash of the name, the time and our pid.
fn new_id(name: &str) -> String {
    use sha2::{Digest, Sha256};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(nanos.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::spec::{anonymous_volume_spec, anonymous_volumes_of};

    /// Creates (never starts) a container of service `app` (an anonymous volume at
    /// `/data`), reusing `reuse`'s anonymous volumes, and returns its id.
    fn create(rt: &Runtime, id: &str, reuse: Option<&BTreeMap<String, String>>) -> String {
        let spec = anonymous_volume_spec("anon", id, reuse);
        rt.create(&spec, &CreateOptions::default()).unwrap();
        id.to_string()
    }

    fn anonymous(rt: &Runtime, id: &str) -> BTreeMap<String, String> {
        anonymous_volumes_of(&rt.config(id).unwrap().spec.mounts)
    }

    #[test]
    fn a_container_being_removed_is_not_listed() {
        let root = tempfile::tempdir().unwrap();
        let rt = Runtime::new(root.path(), Path::new("/nonexistent/wharf"));
        let (a, b) = (create(&rt, "a", None), create(&rt, "b", None));
        assert_eq!(rt.list(), [a.clone(), b.clone()]);
        // What `remove` does first, and a crash may leave.
        fs::rename(
            rt.dir(&b).path(),
            root.path().join("containers/.removing-b"),
        )
        .unwrap();
        assert_eq!(rt.list(), [a]);
        assert_eq!(rt.purge(), 1);
    }

    #[test]
    fn removing_a_container_never_deletes_an_anonymous_volume_another_one_mounts() {
        let root = tempfile::tempdir().unwrap();
        let rt = Runtime::new(root.path(), Path::new("/nonexistent/wharf"));
        let old = create(&rt, "old", None);
        let volume = anonymous(&rt, &old)["/data"].clone();
        assert!(rt.volumes().exists(&volume));
        // The replacement mounts the same volume: removing the old container, even with
        // its volumes, leaves it, and it is not left unmounted.
        let new = create(&rt, "new", Some(&anonymous(&rt, &old)));
        assert_eq!(anonymous(&rt, &new)["/data"], volume);
        assert_eq!(rt.anonymous_volumes_left_by(&old), Vec::<String>::new());
        assert_eq!(rt.volumes_in_use(Some(&old))[&volume], "anon-new");
        rt.remove(&old, AnonymousVolumes::Remove).unwrap();
        assert!(rt.volumes().exists(&volume), "deleted while mounted");
        // Now only the replacement mounts it: kept on request, removed on request.
        assert_eq!(rt.anonymous_volumes_left_by(&new), vec![volume.clone()]);
        let other = create(&rt, "other", None);
        let fresh = anonymous(&rt, &other)["/data"].clone();
        assert_ne!(fresh, volume);
        rt.remove(&other, AnonymousVolumes::Keep).unwrap();
        assert!(rt.volumes().exists(&fresh), "kept");
        rt.remove(&new, AnonymousVolumes::Remove).unwrap();
        assert!(!rt.volumes().exists(&volume), "left behind");
        assert!(rt.list().is_empty());
        assert!(rt.volumes_in_use(None).is_empty());
    }
}
