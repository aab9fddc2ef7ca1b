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
//!   empty `cpuset.cpus`/`cpuset.mems`, and joining it fails (`ENOSPC`) until they are set.
//! * Writing to a control file that does not exist fails with `ENOENT` when the file is
//!   opened without `O_CREAT`, as here, but with a misleading `EACCES` with it.
//! * `rmdir` of a cgroup is refused (`EBUSY`) while it has processes or child cgroups, and
//!   briefly after its last process was killed: exiting is asynchronous.
//! * `cgroup.kill` (v2, kernel ≥ 5.14) kills the whole subtree at once, without the race of
//!   signalling PIDs one by one; a v1 `freezer` closes that race on older kernels.

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
                // Deepest first; a parent another container uses now is not empty and stays.
                for dir in created.iter().rev() {
                    if let Err(e) = fs::remove_dir(dir)
                        && e.kind() != io::ErrorKind::NotFound
                    {
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
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::ResourceBusy | io::ErrorKind::DirectoryNotEmpty
                        ) =>
                    {
                        break;
                    }
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

/// Every cgroup directory of a project: `<mount>/wharf/<project>` in each hierarchy where it
/// exists, and every directory below it, parents before children. Empty when there is none
/// (and for a name that cannot be a project's, such as `..`). For leak checks.
pub fn project_cgroups(h: &Hierarchies, project: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if check_rel(&format!("{CGROUP_PARENT}/{project}")).is_err() {
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
    let base = format!("{CGROUP_PARENT}/{project}");
    if check_rel(&base).is_err() {
        return Vec::new();
    }
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
