//! One container's cgroup on the host: creating its directory in every hierarchy, writing
//! the limits [`super::cgroup`] computed, moving processes in, listing and killing them,
//! reading the OOM count, and removing the directories again. It handles the three host
//! shapes [`super::cgroupfs`] finds — v1 only, v2 only, and hybrid (v1 controllers plus a
//! unified hierarchy that only tracks processes) — by giving the container one directory per
//! distinct mount point. It never touches a cgroup outside `wharf/` (every path it is given
//! is checked to be `wharf/<…>`, and only the container's own directory and its empty
//! `wharf/…` parents are ever removed), and it never mounts anything.
//!
//! The container's cgroup path is derived from names alone (`wharf/<project>/<container>`,
//! [`super::spec::cgroup_path`]), so [`ContainerCgroup::open`] and [`project_containers`]
//! find a container's cgroups without any state file, which is what lets `down` work after
//! a crash. Every path is built from the [`Hierarchies`] given, so tests point them at a
//! temporary directory laid out like a cgroupfs.
//!
//! Kernel behaviour this relies on, each checked on this project's host (6.18, hybrid):
//! * `mkdir` in a cgroupfs creates the control files; a new v1 `cpuset` cgroup starts with
//!   empty `cpuset.cpus`/`cpuset.mems`, and joining it fails until they are set.
//! * Writing to a control file that does not exist fails with `ENOENT` when the file is
//!   opened without `O_CREAT`, as here, but with a misleading `EACCES` with it.
//! * `rmdir` of a cgroup is refused (`EBUSY`) while it has processes or child cgroups, and
//!   briefly after its last process was killed: exiting is asynchronous.
//! * `cgroup.kill` (v2, kernel ≥ 5.14) kills the whole subtree at once, without the race of
//!   signalling PIDs one by one; a v1 `freezer` closes that race on older kernels.
//! * Pausing: v2 `cgroup.freeze` (kernel ≥ 5.2; present in every non-root cgroup of the
//!   unified hierarchy, also on a hybrid host whose unified hierarchy has no controllers)
//!   freezes the subtree; `cgroup.events` says `frozen 1` once every task has stopped. A task
//!   frozen this way still dies of SIGKILL. The v1 `freezer` (`freezer.state`: `FREEZING`
//!   until it reads `FROZEN`) holds even SIGKILL until the cgroup is thawed, so a cgroup is
//!   thawed before it is killed.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::cgroup::{CgroupVersion, CgroupWrite, Resources};
use super::cgroupfs::Hierarchies;
use super::spec::CGROUP_PARENT;

/// How long [`ContainerCgroup::kill_all`] waits for the cgroup to empty.
pub const KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`ContainerCgroup::freeze`] waits for every task to stop.
pub const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`ContainerCgroup::remove`] retries a directory the kernel still calls busy.
const RMDIR_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the waits above look again.
const POLL: Duration = Duration::from_millis(10);
/// How many times [`ContainerCgroup::create`] starts a hierarchy's directories again when a
/// parent disappears under it (another container's `remove` took the empty `wharf/…`).
const MKDIR_ATTEMPTS: usize = 10;
/// The v2 controllers enabled for wharf's subtree on a v2 host, when the root offers them:
/// every limit wharf writes, and `memory.events`/`pids.current`, need one of them.
const V2_CONTROLLERS: [&str; 5] = ["cpu", "cpuset", "io", "memory", "pids"];

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("{rel:?} is not a cgroup wharf may touch: {reason}")]
    NotOurs { rel: String, reason: &'static str },
    #[error("creating {path}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: unexpected line {line:?}")]
    Parse { path: PathBuf, line: String },
    #[error("removing {path}: {source}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{file} needs the {controller} cgroup controller, which is not mounted")]
    NoController { controller: String, file: String },
    #[error("sending SIGKILL to process {pid} of {path}: {source}")]
    Kill {
        pid: i32,
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("{rel}: no freezer (neither cgroup.freeze in the unified hierarchy nor a v1 freezer)")]
    NoFreezer { rel: PathBuf },
    #[error("{path}: the cgroup did not freeze within {waited:?}; it was thawed again")]
    NotFrozen { path: PathBuf, waited: Duration },
    #[error("{path} still holds processes {pids:?} after {waited:?}")]
    StillRunning {
        path: PathBuf,
        pids: Vec<i32>,
        waited: Duration,
    },
}

type Result<T> = std::result::Result<T, CgroupError>;

/// One container's cgroup: the same relative path (`wharf/<project>/<container>`) under
/// every hierarchy's mount point. Holds paths only; nothing is read until a method is
/// called, and dropping it changes nothing on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCgroup {
    rel: PathBuf,
    /// Each distinct v1 mount point and the controllers mounted there (`cpu,cpuacct`
    /// co-mounted is one entry), ordered by mount point.
    v1: Vec<(PathBuf, Vec<String>)>,
    /// The unified hierarchy's mount point.
    unified: Option<PathBuf>,
    /// Which interface the limits are written through.
    version: CgroupVersion,
}

impl ContainerCgroup {
    /// The container's directories for `rel` (`wharf/<project>/<container>`), without
    /// touching the filesystem: used to find, kill and remove an existing container's cgroup.
    /// Fails only when `rel` is not a plain relative path under `wharf/`.
    pub fn open(h: &Hierarchies, rel: &str) -> Result<ContainerCgroup> {
        let rel = check_rel(rel)?;
        let (v1, unified) = mounts(h);
        Ok(ContainerCgroup {
            rel,
            v1,
            unified,
            version: h.version(),
        })
    }

    /// Creates `rel` in every hierarchy (each v1 mount once, named ones such as
    /// `name=systemd` included, and the unified one when mounted), parents as needed, and
    /// writes `res` into it: [`Resources::v1`] on a v1 or hybrid host, each write into the
    /// hierarchy of its controller, [`Resources::v2`] into the unified directory on a v2 host.
    ///
    /// Before anything can join, each v1 `cpuset` level whose `cpuset.cpus`/`cpuset.mems`
    /// are empty gets its parent's, and on a v2 host the controllers wharf needs are enabled
    /// in `cgroup.subtree_control` from the hierarchy root down to the container's parent.
    /// A directory that already exists is reused.
    ///
    /// Returns the warnings for optional writes whose file the kernel lacks (an
    /// [`CgroupWrite::if_present`] write, such as swap limits without swap accounting). Any
    /// other failure is an error naming the file, and every directory this call created is
    /// removed again before it returns.
    pub fn create(
        h: &Hierarchies,
        rel: &str,
        res: &Resources,
    ) -> Result<(ContainerCgroup, Vec<String>)> {
        let cg = ContainerCgroup::open(h, rel)?;
        let mut created = Vec::new();
        match cg.set_up(res, &mut created) {
            Ok(warnings) => Ok((cg, warnings)),
            Err(err) => {
                // Deepest first. A parent another container has started to use meanwhile is
                // busy and stays, as it should.
                for dir in created.iter().rev() {
                    let Err(e) = fs::remove_dir(dir) else {
                        continue;
                    };
                    let parent_in_use = !dir.ends_with(&cg.rel) && is_busy(&e);
                    if e.kind() != io::ErrorKind::NotFound && !parent_in_use {
                        tracing::warn!(
                            "cleaning up after a failed cgroup setup: removing {}: {e}",
                            dir.display()
                        );
                    }
                }
                Err(err)
            }
        }
    }

    fn set_up(&self, res: &Resources, created: &mut Vec<PathBuf>) -> Result<Vec<String>> {
        for (mount, controllers) in &self.v1 {
            self.make_dirs(mount, created)?;
            if controllers.iter().any(|c| c == "cpuset") {
                self.copy_cpuset_down(mount)?;
            }
        }
        if let Some(mount) = &self.unified {
            self.make_dirs(mount, created)?;
            if self.version == CgroupVersion::V2 {
                self.enable_controllers(mount)?;
            }
        }
        let mut warnings = Vec::new();
        match self.version {
            CgroupVersion::V1 => {
                for w in &res.v1 {
                    let controller = w.controller();
                    match self.v1_dir(controller) {
                        Some(dir) => self.apply(&dir, w, &mut warnings)?,
                        None if w.if_present => warnings.push(format!(
                            "{} not applied: the {controller} cgroup controller is not mounted",
                            w.file
                        )),
                        None => {
                            return Err(CgroupError::NoController {
                                controller: controller.to_string(),
                                file: w.file.to_string(),
                            });
                        }
                    }
                }
            }
            CgroupVersion::V2 => {
                for w in &res.v2 {
                    match self.unified_dir() {
                        Some(dir) => self.apply(&dir, w, &mut warnings)?,
                        None => {
                            return Err(CgroupError::NoController {
                                controller: w.controller().to_string(),
                                file: w.file.to_string(),
                            });
                        }
                    }
                }
            }
        }
        Ok(warnings)
    }

    /// Creates every level of `rel` under `mount`, recording the ones it made. A level that
    /// vanishes between two `mkdir`s (an empty `wharf/…` parent removed by another
    /// container's teardown) makes it start again from the top.
    fn make_dirs(&self, mount: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
        let mut attempt = 0;
        'again: loop {
            attempt += 1;
            let mut dir = mount.to_path_buf();
            for part in self.rel.iter() {
                dir.push(part);
                match fs::create_dir(&dir) {
                    Ok(()) => created.push(dir.clone()),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < MKDIR_ATTEMPTS => {
                        continue 'again;
                    }
                    Err(source) => return Err(CgroupError::Create { path: dir, source }),
                }
            }
            return Ok(());
        }
    }

    /// v1 cpuset: each level from `wharf` down with an empty `cpuset.cpus` or `cpuset.mems`
    /// takes its parent's, top down (a child's set must lie within its parent's).
    fn copy_cpuset_down(&self, mount: &Path) -> Result<()> {
        let mut parent = mount.to_path_buf();
        for part in self.rel.iter() {
            let dir = parent.join(part);
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if read(&dir.join(file))?.trim().is_empty() {
                    let value = read(&parent.join(file))?;
                    write(&dir.join(file), value.trim())?;
                }
            }
            parent = dir;
        }
        Ok(())
    }

    /// v2: enables [`V2_CONTROLLERS`] (those the root offers) in `cgroup.subtree_control` of
    /// the root and of each level above the container, writing only the ones not yet there.
    fn enable_controllers(&self, mount: &Path) -> Result<()> {
        let offered = read(&mount.join("cgroup.controllers"))?;
        let wanted: Vec<&str> = V2_CONTROLLERS
            .into_iter()
            .filter(|c| offered.split_whitespace().any(|o| o == *c))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        // The root, then every level above the container's own directory.
        let mut dir = mount.to_path_buf();
        let mut levels = vec![dir.clone()];
        let parts: Vec<_> = self.rel.iter().collect();
        for part in &parts[..parts.len() - 1] {
            dir.push(part);
            levels.push(dir.clone());
        }
        for dir in levels {
            let file = dir.join("cgroup.subtree_control");
            let enabled = read(&file)?;
            let missing: Vec<String> = wanted
                .iter()
                .filter(|c| !enabled.split_whitespace().any(|e| e == **c))
                .map(|c| format!("+{c}"))
                .collect();
            if !missing.is_empty() {
                write(&file, &missing.join(" "))?;
            }
        }
        Ok(())
    }

    fn apply(&self, dir: &Path, w: &CgroupWrite, warnings: &mut Vec<String>) -> Result<()> {
        let path = dir.join(w.file.as_ref());
        if w.if_present && !path.exists() {
            warnings.push(format!(
                "{} = {} not applied: this kernel has no {} (e.g. swap accounting is off)",
                w.file,
                w.value,
                path.display()
            ));
            return Ok(());
        }
        write(&path, &w.value)
    }

    /// Moves process `pid` into the container's cgroup in every hierarchy.
    pub fn join(&self, pid: i32) -> Result<()> {
        for dir in self.dirs() {
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// The processes in the cgroup and in any cgroup below it, read from the tracking
    /// hierarchy: the unified one if mounted, else `pids`, else `memory`, else the first.
    /// A cgroup that does not exist holds no processes.
    pub fn procs(&self) -> Result<Vec<i32>> {
        match self.tracking_dir() {
            Some(dir) => procs_below(&dir),
            None => Ok(Vec::new()),
        }
    }

    /// Kills every process in the cgroup and waits, up to [`KILL_TIMEOUT`], until it is
    /// empty. Uses `cgroup.kill` where the unified directory has it; else the v1 freezer
    /// (freeze, SIGKILL every process, thaw, until empty), so nothing forks or exits while
    /// its PID is signalled; else, as a last resort, SIGKILL to each listed PID in a loop
    /// (which could, in theory, hit a reused PID). An empty or missing cgroup is fine.
    pub fn kill_all(&self) -> Result<()> {
        let deadline = Instant::now() + KILL_TIMEOUT;
        if self.procs()?.is_empty() {
            return Ok(());
        }
        // A paused container: a v1-frozen task holds SIGKILL until it is thawed (a v2-frozen
        // one would die anyway, but nothing is gained by leaving it frozen).
        self.thaw()?;
        if let Some(file) = self
            .unified_dir()
            .map(|d| d.join("cgroup.kill"))
            .filter(|f| f.exists())
        {
            write(&file, "1")?;
            return self.wait_empty(deadline);
        }
        if let Some(freezer) = self
            .v1_dir("freezer")
            .filter(|d| d.join("freezer.state").exists())
        {
            return freeze_and_kill(&freezer, deadline);
        }
        let dir = self.tracking_dir().unwrap_or_default();
        loop {
            let pids = self.procs()?;
            if pids.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(still_running(dir, pids));
            }
            sigkill_all(&dir, &pids)?;
            sleep(POLL);
        }
    }

    fn wait_empty(&self, deadline: Instant) -> Result<()> {
        loop {
            let pids = self.procs()?;
            if pids.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(still_running(self.tracking_dir().unwrap_or_default(), pids));
            }
            sleep(POLL);
        }
    }

    /// Which freezer pauses this container: the unified hierarchy's `cgroup.freeze` where the
    /// container's unified directory has one (v2 hosts, and hybrid hosts on kernel ≥ 5.2),
    /// else the v1 `freezer` controller's `freezer.state`. `None` when neither exists (no
    /// freezer mounted, or the cgroup is gone). The v2 freezer is preferred on a hybrid host
    /// because its frozen tasks still die of SIGKILL, so a stop or a probe's timeout can
    /// never hang on a paused container.
    pub fn freezer(&self) -> Option<Freezer> {
        let unified = self.unified_dir().map(|d| d.join("cgroup.freeze"));
        let v1 = self.v1_dir("freezer").map(|d| d.join("freezer.state"));
        choose_freezer(unified.as_deref(), v1.as_deref(), Path::exists)
    }

    /// Pauses every process of the cgroup and waits, up to [`FREEZE_TIMEOUT`], until the
    /// kernel says they all stopped; on timeout the cgroup is thawed again and this fails.
    /// Freezing a frozen cgroup is fine.
    pub fn freeze(&self) -> Result<()> {
        let freezer = self.freezer().ok_or_else(|| CgroupError::NoFreezer {
            rel: self.rel.clone(),
        })?;
        let deadline = Instant::now() + FREEZE_TIMEOUT;
        let file = freezer.file().to_path_buf();
        let took = || -> Result<bool> {
            Ok(match &freezer {
                Freezer::Unified(f) => {
                    events_frozen(&read(&f.with_file_name("cgroup.events"))?) == Some(true)
                }
                Freezer::V1(f) => v1_state(&read(f)?) == Some(FreezerState::Frozen),
            })
        };
        let value = freezer.freeze_value();
        loop {
            // v1: writing FROZEN again is how a freeze stuck in FREEZING (a task forked
            // meanwhile) is pushed on, as runc does; v2 takes the same write as a no-op.
            write(&file, value)?;
            if took()? {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = write(&file, freezer.thaw_value());
                return Err(CgroupError::NotFrozen {
                    path: file,
                    waited: FREEZE_TIMEOUT,
                });
            }
            sleep(POLL);
        }
    }

    /// Thaws the cgroup in every freezer that has it frozen (both, on a hybrid host, so that
    /// a freeze made through either is undone). A cgroup that does not exist is fine.
    pub fn thaw(&self) -> Result<()> {
        if let Some(file) = self
            .unified_dir()
            .map(|d| d.join("cgroup.freeze"))
            .filter(|f| f.exists())
        {
            if read(&file)?.trim() != "0" {
                write(&file, "0")?;
            }
        }
        if let Some(file) = self
            .v1_dir("freezer")
            .map(|d| d.join("freezer.state"))
            .filter(|f| f.exists())
        {
            if v1_state(&read(&file)?) != Some(FreezerState::Thawed) {
                write(&file, "THAWED")?;
            }
        }
        Ok(())
    }

    /// Whether the cgroup is paused: frozen (or being frozen) in either freezer. Reads the
    /// requested state, as Docker reports "paused" from the moment the freeze is asked for.
    pub fn is_frozen(&self) -> Result<bool> {
        if let Some(file) = self
            .unified_dir()
            .map(|d| d.join("cgroup.freeze"))
            .filter(|f| f.exists())
        {
            if read(&file)?.trim() == "1" {
                return Ok(true);
            }
        }
        if let Some(file) = self
            .v1_dir("freezer")
            .map(|d| d.join("freezer.state"))
            .filter(|f| f.exists())
        {
            if matches!(
                v1_state(&read(&file)?),
                Some(FreezerState::Frozen | FreezerState::Freezing)
            ) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// How many times the OOM killer killed a process in this cgroup: the `oom_kill` count of
    /// v1 `memory.oom_control` (0 when the kernel does not report it), or of v2
    /// `memory.events`.
    pub fn oom_kills(&self) -> Result<u64> {
        let file = match (self.v1_dir("memory"), self.unified_dir()) {
            (Some(dir), _) => dir.join("memory.oom_control"),
            (None, Some(dir)) => dir.join("memory.events"),
            (None, None) => {
                return Err(CgroupError::NoController {
                    controller: "memory".to_string(),
                    file: "memory.events".into(),
                });
            }
        };
        let text = read(&file)?;
        for line in text.lines() {
            if let Some(count) = line.strip_prefix("oom_kill ") {
                return count.trim().parse().map_err(|_| CgroupError::Parse {
                    path: file.clone(),
                    line: line.to_string(),
                });
            }
        }
        Ok(0)
    }

    /// Removes the container's directory (and any cgroup the container made below it) in
    /// every hierarchy, retrying briefly while the kernel still calls it busy, then the
    /// `wharf/…` parents that are now empty; a parent another container still uses stays.
    /// Kill the processes first ([`ContainerCgroup::kill_all`]). Missing directories are
    /// fine, so this is idempotent. Every hierarchy is tried; the first failure is returned.
    pub fn remove(&self) -> Result<()> {
        let mut first_err = None;
        for mount in self.mounts() {
            let dir = mount.join(&self.rel);
            // Children before parents.
            let mut doomed = Vec::new();
            subdirs(&dir, &mut doomed);
            doomed.reverse();
            doomed.push(dir);
            let mut ok = true;
            for d in &doomed {
                if let Err(e) = rmdir_retrying(d) {
                    ok = false;
                    first_err.get_or_insert(e);
                    break;
                }
            }
            if !ok {
                continue;
            }
            let mut parent = self.rel.clone();
            while parent.pop() && !parent.as_os_str().is_empty() {
                let path = mount.join(&parent);
                match fs::remove_dir(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) if is_busy(&e) => break,
                    Err(source) => {
                        first_err.get_or_insert(CgroupError::Remove { path, source });
                        break;
                    }
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// The relative path, `wharf/<project>/<container>`.
    pub fn rel(&self) -> &Path {
        &self.rel
    }

    /// The container's directory in each hierarchy: the v1 ones by mount point, then the
    /// unified one.
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.mounts().map(|m| m.join(&self.rel)).collect()
    }

    /// The container's directory in the v1 hierarchy of `controller` (`memory`,
    /// `name=systemd`, …), if mounted.
    pub fn v1_dir(&self, controller: &str) -> Option<PathBuf> {
        self.v1
            .iter()
            .find(|(_, cs)| cs.iter().any(|c| c == controller))
            .map(|(m, _)| m.join(&self.rel))
    }

    /// The container's directory in the unified hierarchy, if mounted.
    pub fn unified_dir(&self) -> Option<PathBuf> {
        self.unified.as_ref().map(|m| m.join(&self.rel))
    }

    fn mounts(&self) -> impl Iterator<Item = &PathBuf> {
        self.v1.iter().map(|(m, _)| m).chain(self.unified.as_ref())
    }

    fn tracking_dir(&self) -> Option<PathBuf> {
        self.unified_dir()
            .or_else(|| self.v1_dir("pids"))
            .or_else(|| self.v1_dir("memory"))
            .or_else(|| self.dirs().into_iter().next())
    }
}

/// The control file that pauses a container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freezer {
    /// v2: `<unified>/…/cgroup.freeze` (`1`/`0`; `cgroup.events` says when it took).
    Unified(PathBuf),
    /// v1: `<freezer>/…/freezer.state` (`FROZEN`/`THAWED`).
    V1(PathBuf),
}

impl Freezer {
    pub fn file(&self) -> &Path {
        match self {
            Freezer::Unified(f) | Freezer::V1(f) => f,
        }
    }

    fn freeze_value(&self) -> &'static str {
        match self {
            Freezer::Unified(_) => "1",
            Freezer::V1(_) => "FROZEN",
        }
    }

    fn thaw_value(&self) -> &'static str {
        match self {
            Freezer::Unified(_) => "0",
            Freezer::V1(_) => "THAWED",
        }
    }
}

/// The freezer decision, given the candidate files and whether each exists: the unified
/// one first (see [`ContainerCgroup::freezer`]).
fn choose_freezer(
    unified: Option<&Path>,
    v1: Option<&Path>,
    exists: impl Fn(&Path) -> bool,
) -> Option<Freezer> {
    if let Some(f) = unified.filter(|f| exists(f)) {
        return Some(Freezer::Unified(f.to_path_buf()));
    }
    v1.filter(|f| exists(f))
        .map(|f| Freezer::V1(f.to_path_buf()))
}

/// The `frozen` field of a v2 `cgroup.events` (`populated 1\nfrozen 0\n`).
fn events_frozen(text: &str) -> Option<bool> {
    text.lines()
        .find_map(|l| l.strip_prefix("frozen "))
        .and_then(|v| match v.trim() {
            "1" => Some(true),
            "0" => Some(false),
            _ => None,
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FreezerState {
    Thawed,
    Freezing,
    Frozen,
}

/// A v1 `freezer.state`.
fn v1_state(text: &str) -> Option<FreezerState> {
    match text.trim() {
        "THAWED" => Some(FreezerState::Thawed),
        "FREEZING" => Some(FreezerState::Freezing),
        "FROZEN" => Some(FreezerState::Frozen),
        _ => None,
    }
}

/// Every cgroup directory of a project: `<mount>/wharf/<project>` in each hierarchy where it
/// exists, and every directory below it, parents before children. Empty when there is none
/// (and for a name that cannot be a project's, such as `..`). For leak checks.
pub fn project_cgroups(h: &Hierarchies, project: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if !is_project_name(project) {
        return out;
    }
    let (v1, unified) = mounts(h);
    for mount in v1.iter().map(|(m, _)| m).chain(unified.as_ref()) {
        let dir = mount.join(CGROUP_PARENT).join(project);
        if dir.is_dir() {
            out.push(dir.clone());
            subdirs(&dir, &mut out);
        }
    }
    out
}

/// The relative cgroup path of every container of a project found in any hierarchy
/// (`wharf/<project>/<container>`, sorted, each once), for [`ContainerCgroup::open`]: how
/// `down` finds containers without a state file.
pub fn project_containers(h: &Hierarchies, project: &str) -> Vec<String> {
    if !is_project_name(project) {
        return Vec::new();
    }
    let base = format!("{CGROUP_PARENT}/{project}");
    let (v1, unified) = mounts(h);
    let mut names = std::collections::BTreeSet::new();
    for mount in v1.iter().map(|(m, _)| m).chain(unified.as_ref()) {
        let Ok(entries) = fs::read_dir(mount.join(&base)) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                names.insert(format!("{base}/{}", entry.file_name().to_string_lossy()));
            }
        }
    }
    names.into_iter().collect()
}

/// The distinct v1 mount points with their controllers, and the unified mount.
fn mounts(h: &Hierarchies) -> (Vec<(PathBuf, Vec<String>)>, Option<PathBuf>) {
    let mut by_mount: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for (controller, mount) in &h.v1 {
        by_mount
            .entry(mount.clone())
            .or_default()
            .push(controller.clone());
    }
    (by_mount.into_iter().collect(), h.v2.clone())
}

/// Checks that `rel` is `wharf/<name>[/<name>…]` with plain names, the only cgroups this
/// module may create or remove.
fn check_rel(rel: &str) -> Result<PathBuf> {
    let not_ours = |reason| {
        Err(CgroupError::NotOurs {
            rel: rel.to_string(),
            reason,
        })
    };
    let parts: Vec<&str> = rel.split('/').collect();
    if parts.first() != Some(&CGROUP_PARENT) {
        return not_ours("it does not start with wharf/");
    }
    if parts.len() < 2 {
        return not_ours("it names no cgroup below wharf/");
    }
    for part in &parts {
        if part.is_empty() || *part == "." || *part == ".." {
            return not_ours("it has an empty, '.' or '..' component");
        }
        if part.chars().any(char::is_control) {
            return not_ours("it contains a control character");
        }
    }
    Ok(PathBuf::from(rel))
}

/// One plain path component, as [`super::spec::cgroup_path`] requires of a project name.
fn is_project_name(project: &str) -> bool {
    !project.contains('/') && check_rel(&format!("{CGROUP_PARENT}/{project}")).is_ok()
}

/// A cgroup that still has processes or child cgroups (`EBUSY`; a plain directory that
/// is not empty says `ENOTEMPTY`).
fn is_busy(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ResourceBusy | io::ErrorKind::DirectoryNotEmpty
    )
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a control file the kernel created: opened without `O_CREAT`, so a missing file
/// is `ENOENT` (with `O_CREAT`, a cgroupfs answers `EACCES`). One `write` call, as the
/// kernel parses each write on its own.
fn write(path: &Path, value: &str) -> Result<()> {
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| CgroupError::Write {
            path: path.to_path_buf(),
            value: value.to_string(),
            source,
        })
}

/// The PIDs in `dir`'s `cgroup.procs` and in those of every cgroup below it. A missing
/// `dir` holds none.
fn procs_below(dir: &Path) -> Result<Vec<i32>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut dirs = vec![dir.to_path_buf()];
    subdirs(dir, &mut dirs);
    let mut pids = Vec::new();
    for d in dirs {
        let file = d.join("cgroup.procs");
        let text = match fs::read_to_string(&file) {
            Ok(text) => text,
            // A sub-cgroup removed while we walked.
            Err(e) if e.kind() == io::ErrorKind::NotFound && d != dir => continue,
            Err(source) => return Err(CgroupError::Read { path: file, source }),
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let pid = line.trim().parse().map_err(|_| CgroupError::Parse {
                path: file.clone(),
                line: line.to_string(),
            })?;
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// Every directory below `dir`, parents before children (missing or unreadable: none).
fn subdirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut children: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    children.sort();
    for child in children {
        out.push(child.clone());
        subdirs(&child, out);
    }
}

/// `rmdir`, retried while the kernel answers `EBUSY` (a cgroup whose processes are still
/// exiting). A directory that is already gone is fine.
fn rmdir_retrying(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + RMDIR_TIMEOUT;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::ResourceBusy && Instant::now() < deadline => {
                sleep(POLL);
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        }
    }
}

/// The v1 freezer's kill loop: freeze, SIGKILL everything, thaw, until the cgroup is
/// empty. Frozen processes can neither fork nor exit, so no PID is reused while listed; the
/// kill takes effect on thawing. The cgroup is always left thawed.
fn freeze_and_kill(freezer: &Path, deadline: Instant) -> Result<()> {
    let state = freezer.join("freezer.state");
    loop {
        let pids = procs_below(freezer)?;
        if pids.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(still_running(freezer.to_path_buf(), pids));
        }
        write(&state, "FROZEN")?;
        let killed = wait_frozen(&state, deadline)
            .and_then(|()| procs_below(freezer))
            .and_then(|pids| sigkill_all(freezer, &pids));
        write(&state, "THAWED")?;
        killed?;
        sleep(POLL);
    }
}

/// Waits until `freezer.state` reads `FROZEN` (it reads `FREEZING` meanwhile), or the
/// deadline: the kill goes ahead either way.
fn wait_frozen(state: &Path, deadline: Instant) -> Result<()> {
    while read(state)?.trim() != "FROZEN" && Instant::now() < deadline {
        sleep(POLL);
    }
    Ok(())
}

/// SIGKILL to each PID; one that has already gone (`ESRCH`) is fine.
fn sigkill_all(dir: &Path, pids: &[i32]) -> Result<()> {
    for &pid in pids {
        match kill(Pid::from_raw(pid), Signal::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(source) => {
                return Err(CgroupError::Kill {
                    pid,
                    path: dir.to_path_buf(),
                    source,
                });
            }
        }
    }
    Ok(())
}

fn still_running(path: PathBuf, pids: Vec<i32>) -> CgroupError {
    CgroupError::StillRunning {
        path,
        pids,
        waited: KILL_TIMEOUT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempfile::TempDir;

    /// A fake host in a temporary directory: each `(controller, dir)` is a v1 hierarchy
    /// mounted at `<tmp>/<dir>` (the same dir twice is a co-mount), plus `<tmp>/unified`.
    fn fake(v1: &[(&str, &str)], unified: bool) -> (TempDir, Hierarchies) {
        let tmp = tempfile::tempdir().unwrap();
        let mut h = Hierarchies::default();
        for (controller, dir) in v1 {
            let mount = tmp.path().join(dir);
            fs::create_dir_all(&mount).unwrap();
            h.v1.insert(controller.to_string(), mount);
        }
        if unified {
            let mount = tmp.path().join("unified");
            fs::create_dir_all(&mount).unwrap();
            h.v2 = Some(mount);
        }
        (tmp, h)
    }

    /// Writes a control file, making its directory first: what the kernel's `mkdir` does
    /// on a real cgroupfs, done by hand for the fake one.
    fn put(path: impl AsRef<Path>, text: &str) {
        let path = path.as_ref();
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn get(path: impl AsRef<Path>) -> String {
        fs::read_to_string(path).unwrap()
    }

    fn w(file: &'static str, value: &str) -> CgroupWrite {
        CgroupWrite {
            file: file.into(),
            value: value.to_string(),
            if_present: false,
        }
    }

    fn opt(file: &'static str, value: &str) -> CgroupWrite {
        CgroupWrite {
            if_present: true,
            ..w(file, value)
        }
    }

    fn v1(writes: Vec<CgroupWrite>) -> Resources {
        Resources {
            v1: writes,
            ..Resources::default()
        }
    }

    #[test]
    fn one_directory_per_mount_point_and_only_under_wharf() {
        let (tmp, h) = fake(
            &[
                ("cpu", "cpu,cpuacct"),
                ("cpuacct", "cpu,cpuacct"),
                ("memory", "memory"),
                ("name=systemd", "systemd"),
            ],
            true,
        );
        let cg = ContainerCgroup::open(&h, "wharf/p/c").unwrap();
        let t = tmp.path();
        assert_eq!(
            cg.dirs(),
            [
                t.join("cpu,cpuacct/wharf/p/c"),
                t.join("memory/wharf/p/c"),
                t.join("systemd/wharf/p/c"),
                t.join("unified/wharf/p/c"),
            ]
        );
        assert_eq!(cg.v1_dir("cpuacct"), cg.v1_dir("cpu"));
        assert_eq!(cg.v1_dir("name=systemd"), Some(t.join("systemd/wharf/p/c")));
        assert_eq!(cg.v1_dir("pids"), None);
        assert_eq!(cg.rel(), Path::new("wharf/p/c"));
        for bad in [
            "",
            "wharf",
            "other/p/c",
            "/wharf/p/c",
            "wharf//c",
            "wharf/../etc",
            "wharf/p/.",
            "wharf/p/c/",
            "wharf/p\n",
        ] {
            let err = ContainerCgroup::open(&h, bad).expect_err(bad);
            assert!(matches!(err, CgroupError::NotOurs { .. }), "{bad:?}: {err}");
            assert!(
                ContainerCgroup::create(&h, bad, &Resources::default()).is_err(),
                "{bad:?}"
            );
        }
        // Nothing was created for the refused paths.
        assert!(!t.join("memory/wharf").exists() && !t.join("memory/etc").exists());
    }

    #[test]
    fn create_makes_every_level_and_writes_v1_limits_into_their_hierarchy() {
        let (tmp, h) = fake(
            &[
                ("memory", "memory"),
                ("pids", "pids"),
                ("name=systemd", "systemd"),
            ],
            true,
        );
        let t = tmp.path();
        // As the kernel's mkdir would leave them; systemd and unified start empty.
        put(
            t.join("memory/wharf/p/c/memory.limit_in_bytes"),
            "9223372036854771712\n",
        );
        put(t.join("pids/wharf/p/c/pids.max"), "max\n");
        let res = Resources {
            v2: vec![w("memory.max", "1")],
            ..v1(vec![
                w("memory.limit_in_bytes", "33554432"),
                opt("memory.memsw.limit_in_bytes", "67108864"),
                w("pids.max", "5"),
            ])
        };
        let (cg, warnings) = ContainerCgroup::create(&h, "wharf/p/c", &res).unwrap();
        assert_eq!(
            get(t.join("memory/wharf/p/c/memory.limit_in_bytes")),
            "33554432"
        );
        assert_eq!(get(t.join("pids/wharf/p/c/pids.max")), "5");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("memory.memsw.limit_in_bytes"),
            "{warnings:?}"
        );
        for dir in cg.dirs() {
            assert!(dir.is_dir(), "{}", dir.display());
        }
        // A hybrid host writes through v1 only.
        assert!(!t.join("unified/wharf/p/c/memory.max").exists());
        assert!(!t.join("unified/cgroup.subtree_control").exists());
    }

    #[test]
    fn cpuset_levels_get_their_parents_cpus_and_mems_before_the_limit() {
        let (tmp, h) = fake(&[("cpuset", "cpuset")], false);
        let t = tmp.path().join("cpuset");
        put(t.join("cpuset.cpus"), "0-3\n");
        put(t.join("cpuset.mems"), "0\n");
        // `wharf` is already narrower than the root: it keeps its CPUs.
        put(t.join("wharf/cpuset.cpus"), "0-1\n");
        put(t.join("wharf/cpuset.mems"), "\n");
        for level in ["wharf/p", "wharf/p/c"] {
            put(t.join(level).join("cpuset.cpus"), "\n");
            put(t.join(level).join("cpuset.mems"), "\n");
        }
        let (_, warnings) =
            ContainerCgroup::create(&h, "wharf/p/c", &v1(vec![w("cpuset.cpus", "1")])).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(get(t.join("wharf/cpuset.cpus")), "0-1\n");
        assert_eq!(get(t.join("wharf/cpuset.mems")), "0");
        assert_eq!(get(t.join("wharf/p/cpuset.cpus")), "0-1");
        assert_eq!(get(t.join("wharf/p/cpuset.mems")), "0");
        assert_eq!(get(t.join("wharf/p/c/cpuset.cpus")), "1");
        assert_eq!(get(t.join("wharf/p/c/cpuset.mems")), "0");
    }

    #[test]
    fn v2_enables_controllers_from_the_root_down_and_writes_v2_limits() {
        let (tmp, h) = fake(&[], true);
        let t = tmp.path().join("unified");
        put(
            t.join("cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids rdma misc\n",
        );
        put(t.join("cgroup.subtree_control"), "cpu memory\n");
        put(
            t.join("wharf/cgroup.subtree_control"),
            "cpuset cpu io memory pids\n",
        );
        put(t.join("wharf/p/cgroup.subtree_control"), "");
        for (file, default) in [
            ("memory.max", "max\n"),
            ("cpu.max", "max 100000\n"),
            ("pids.max", "max\n"),
        ] {
            put(t.join("wharf/p/c").join(file), default);
        }
        let res = Resources {
            v2: vec![
                w("memory.max", "33554432"),
                opt("memory.swap.max", "0"),
                w("cpu.max", "50000 100000"),
                w("pids.max", "5"),
            ],
            ..v1(vec![w("memory.limit_in_bytes", "1")])
        };
        let (_, warnings) = ContainerCgroup::create(&h, "wharf/p/c", &res).unwrap();
        assert_eq!(get(t.join("cgroup.subtree_control")), "+cpuset +io +pids");
        // Already complete: not written again.
        assert_eq!(
            get(t.join("wharf/cgroup.subtree_control")),
            "cpuset cpu io memory pids\n"
        );
        assert_eq!(
            get(t.join("wharf/p/cgroup.subtree_control")),
            "+cpu +cpuset +io +memory +pids"
        );
        // The container holds processes: its own subtree stays off.
        assert!(!t.join("wharf/p/c/cgroup.subtree_control").exists());
        assert_eq!(get(t.join("wharf/p/c/memory.max")), "33554432");
        assert_eq!(get(t.join("wharf/p/c/cpu.max")), "50000 100000");
        assert_eq!(get(t.join("wharf/p/c/pids.max")), "5");
        assert!(!t.join("wharf/p/c/memory.limit_in_bytes").exists());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("memory.swap.max"), "{warnings:?}");
    }

    #[test]
    fn a_failed_write_removes_what_create_made_and_nothing_else() {
        let (tmp, h) = fake(&[("memory", "memory"), ("pids", "pids")], true);
        let t = tmp.path();
        // A directory where the limit file should be makes the write fail.
        fs::create_dir_all(t.join("memory/wharf/p/c/memory.limit_in_bytes")).unwrap();
        // Another project's cgroup shares the `wharf` parent in the pids hierarchy.
        fs::create_dir_all(t.join("pids/wharf/other/c")).unwrap();
        let err = ContainerCgroup::create(
            &h,
            "wharf/p/c",
            &v1(vec![w("memory.limit_in_bytes", "33554432")]),
        )
        .expect_err("write into a directory");
        let text = err.to_string();
        assert!(
            text.contains("memory/wharf/p/c/memory.limit_in_bytes") && text.contains("33554432"),
            "{text}"
        );
        assert!(matches!(err, CgroupError::Write { .. }), "{err:?}");
        // What create made is gone; what was there before stays.
        assert!(!t.join("unified/wharf").exists());
        assert!(!t.join("pids/wharf/p").exists());
        assert!(t.join("pids/wharf/other/c").is_dir());
        assert!(t.join("memory/wharf/p/c/memory.limit_in_bytes").is_dir());
    }

    #[test]
    fn a_missing_file_or_controller_fails_unless_the_write_is_optional() {
        let (tmp, h) = fake(&[("memory", "memory")], true);
        // No control files: the kernel lacks both. The optional one is skipped, the other
        // fails, and the directories made on the way are removed again.
        let res = v1(vec![
            opt("memory.memsw.limit_in_bytes", "1"),
            w("memory.limit_in_bytes", "1"),
        ]);
        let err = ContainerCgroup::create(&h, "wharf/p/c", &res).expect_err("missing file");
        match &err {
            CgroupError::Write { path, source, .. } => {
                assert!(path.ends_with("memory.limit_in_bytes"));
                assert_eq!(source.kind(), io::ErrorKind::NotFound);
            }
            other => panic!("{other:?}"),
        }
        assert!(project_cgroups(&h, "p").is_empty());
        assert!(!tmp.path().join("memory/wharf").exists());

        let err = ContainerCgroup::create(&h, "wharf/p/c", &v1(vec![w("cpu.shares", "512")]))
            .expect_err("no cpu hierarchy");
        assert!(err.to_string().contains("cpu.shares"), "{err}");
        assert!(matches!(err, CgroupError::NoController { .. }), "{err:?}");
        assert!(!tmp.path().join("memory/wharf").exists());

        let (cg, warnings) =
            ContainerCgroup::create(&h, "wharf/p/c", &v1(vec![opt("cpu.shares", "512")])).unwrap();
        assert!(warnings[0].contains("cpu.shares"), "{warnings:?}");
        cg.remove().unwrap();
        assert!(!tmp.path().join("memory/wharf").exists());
        assert!(!tmp.path().join("unified/wharf").exists());
    }

    #[test]
    fn remove_keeps_parents_in_use_and_is_idempotent() {
        let (tmp, h) = fake(&[("memory", "memory"), ("name=systemd", "systemd")], true);
        let none = Resources::default();
        let (c1, _) = ContainerCgroup::create(&h, "wharf/p/c1", &none).unwrap();
        let (c2, _) = ContainerCgroup::create(&h, "wharf/p/c2", &none).unwrap();
        let (q, _) = ContainerCgroup::create(&h, "wharf/q/c", &none).unwrap();
        // A cgroup the container made inside its own.
        fs::create_dir(tmp.path().join("memory/wharf/p/c2/nested")).unwrap();
        assert_eq!(project_containers(&h, "p"), ["wharf/p/c1", "wharf/p/c2"]);
        // The project dir, c1, c2 in three hierarchies, and the nested one.
        assert_eq!(project_cgroups(&h, "p").len(), 10);
        assert_eq!(ContainerCgroup::open(&h, "wharf/p/c1").unwrap(), c1);

        c1.remove().unwrap();
        c1.remove().unwrap();
        assert_eq!(project_containers(&h, "p"), ["wharf/p/c2"]);
        c2.remove().unwrap();
        assert!(project_cgroups(&h, "p").is_empty());
        assert!(tmp.path().join("systemd/wharf/q/c").is_dir());
        q.remove().unwrap();
        for mount in ["memory", "systemd", "unified"] {
            let left: Vec<_> = fs::read_dir(tmp.path().join(mount)).unwrap().collect();
            assert!(left.is_empty(), "{mount}: {left:?}");
        }
        // A name that is not a project's lists nothing, even where the path exists.
        assert!(project_cgroups(&h, "..").is_empty());
        assert!(project_containers(&h, "").is_empty());
        fs::create_dir_all(tmp.path().join("memory/wharf/a/b")).unwrap();
        assert!(project_cgroups(&h, "a/b").is_empty());
        assert_eq!(project_cgroups(&h, "a").len(), 2);
        fs::remove_dir_all(tmp.path().join("memory/wharf")).unwrap();
    }

    #[test]
    fn procs_come_from_the_tracking_hierarchy_and_include_nested_cgroups() {
        let (tmp, h) = fake(&[("memory", "memory"), ("pids", "pids")], true);
        let t = tmp.path();
        put(t.join("unified/wharf/p/c/cgroup.procs"), "1\n2\n");
        put(t.join("unified/wharf/p/c/sub/cgroup.procs"), "3\n");
        put(t.join("pids/wharf/p/c/cgroup.procs"), "4\n");
        put(t.join("memory/wharf/p/c/cgroup.procs"), "5\n");
        let procs = |h: &Hierarchies| ContainerCgroup::open(h, "wharf/p/c").unwrap().procs();
        assert_eq!(procs(&h).unwrap(), [1, 2, 3]);
        let mut no_unified = h.clone();
        no_unified.v2 = None;
        assert_eq!(procs(&no_unified).unwrap(), [4]);
        no_unified.v1.remove("pids");
        assert_eq!(procs(&no_unified).unwrap(), [5]);
        let gone = ContainerCgroup::open(&h, "wharf/p/gone").unwrap();
        assert_eq!(gone.procs().unwrap(), Vec::<i32>::new());
        gone.kill_all().unwrap();

        put(t.join("unified/wharf/p/bad/cgroup.procs"), "12\nx\n");
        let bad = ContainerCgroup::open(&h, "wharf/p/bad").unwrap();
        assert!(matches!(bad.procs(), Err(CgroupError::Parse { .. })));

        // Nothing to kill: cgroup.kill is not even written.
        put(t.join("unified/wharf/p/empty/cgroup.procs"), "");
        put(t.join("unified/wharf/p/empty/cgroup.kill"), "");
        ContainerCgroup::open(&h, "wharf/p/empty")
            .unwrap()
            .kill_all()
            .unwrap();
        assert_eq!(get(t.join("unified/wharf/p/empty/cgroup.kill")), "");
    }

    #[test]
    fn oom_kills_are_read_from_v1_oom_control_or_v2_memory_events() {
        let (tmp, h) = fake(&[("memory", "memory")], true);
        let cg = ContainerCgroup::open(&h, "wharf/p/c").unwrap();
        let file = tmp.path().join("memory/wharf/p/c/memory.oom_control");
        put(&file, "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
        assert_eq!(cg.oom_kills().unwrap(), 3);
        // Kernels before 4.13 do not count.
        put(&file, "oom_kill_disable 0\nunder_oom 0\n");
        assert_eq!(cg.oom_kills().unwrap(), 0);

        let mut v2 = h.clone();
        v2.v1.clear();
        let cg = ContainerCgroup::open(&v2, "wharf/p/c").unwrap();
        assert!(matches!(cg.oom_kills(), Err(CgroupError::Read { .. })));
        put(
            tmp.path().join("unified/wharf/p/c/memory.events"),
            "low 0\nhigh 0\nmax 7\noom 2\noom_kill 1\noom_group_kill 0\n",
        );
        assert_eq!(cg.oom_kills().unwrap(), 1);
    }

    #[test]
    fn the_unified_freezer_is_chosen_first_then_the_v1_one() {
        let u = Path::new("/u/wharf/p/c/cgroup.freeze");
        let f = Path::new("/f/wharf/p/c/freezer.state");
        let all = |_: &Path| true;
        assert_eq!(
            choose_freezer(Some(u), Some(f), all),
            Some(Freezer::Unified(u.into()))
        );
        // An old kernel's unified hierarchy has no cgroup.freeze.
        let only_v1 = |p: &Path| p == f;
        assert_eq!(
            choose_freezer(Some(u), Some(f), only_v1),
            Some(Freezer::V1(f.into()))
        );
        assert_eq!(
            choose_freezer(None, Some(f), all),
            Some(Freezer::V1(f.into()))
        );
        assert_eq!(choose_freezer(Some(u), Some(f), |_| false), None);
        assert_eq!(choose_freezer(None, None, all), None);
    }

    #[test]
    fn freezer_files_are_parsed() {
        assert_eq!(events_frozen("populated 1\nfrozen 1\n"), Some(true));
        assert_eq!(events_frozen("populated 0\nfrozen 0\n"), Some(false));
        assert_eq!(events_frozen("populated 1\n"), None);
        assert_eq!(v1_state("FROZEN\n"), Some(FreezerState::Frozen));
        assert_eq!(v1_state("FREEZING\n"), Some(FreezerState::Freezing));
        assert_eq!(v1_state("THAWED\n"), Some(FreezerState::Thawed));
        assert_eq!(v1_state("x"), None);
    }

    #[test]
    fn freeze_writes_the_unified_file_and_thaw_undoes_either_freezer() {
        let (tmp, h) = fake(&[("freezer", "freezer")], true);
        let t = tmp.path();
        let cg = ContainerCgroup::open(&h, "wharf/p/c").unwrap();
        assert_eq!(cg.freezer(), None);
        assert!(matches!(cg.freeze(), Err(CgroupError::NoFreezer { .. })));
        assert!(!cg.is_frozen().unwrap());
        cg.thaw().unwrap();

        put(t.join("unified/wharf/p/c/cgroup.freeze"), "0\n");
        // The fake kernel has already frozen everything.
        put(
            t.join("unified/wharf/p/c/cgroup.events"),
            "populated 1\nfrozen 1\n",
        );
        put(t.join("freezer/wharf/p/c/freezer.state"), "THAWED\n");
        cg.freeze().unwrap();
        assert_eq!(get(t.join("unified/wharf/p/c/cgroup.freeze")), "1");
        assert_eq!(get(t.join("freezer/wharf/p/c/freezer.state")), "THAWED\n");
        assert!(cg.is_frozen().unwrap());
        cg.thaw().unwrap();
        assert_eq!(get(t.join("unified/wharf/p/c/cgroup.freeze")), "0");
        assert!(!cg.is_frozen().unwrap());

        // A freeze made through the v1 freezer is seen and undone too.
        put(t.join("freezer/wharf/p/c/freezer.state"), "FROZEN\n");
        assert!(cg.is_frozen().unwrap());
        cg.thaw().unwrap();
        assert_eq!(get(t.join("freezer/wharf/p/c/freezer.state")), "THAWED");
    }

    #[test]
    fn freeze_uses_v1_without_a_unified_freezer() {
        let (tmp, h) = fake(&[("freezer", "freezer")], false);
        let t = tmp.path();
        let cg = ContainerCgroup::open(&h, "wharf/p/c").unwrap();
        // A real freezer.state would read FROZEN after the write; the fake file does too.
        put(t.join("freezer/wharf/p/c/freezer.state"), "THAWED\n");
        cg.freeze().unwrap();
        assert_eq!(get(t.join("freezer/wharf/p/c/freezer.state")), "FROZEN");
        assert!(cg.is_frozen().unwrap());
    }
}
