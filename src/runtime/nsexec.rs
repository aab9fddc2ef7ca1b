//! Running a process inside a running container (`wharf __nsexec <container dir>
//! <request>`): what `wharf exec` and the supervisor's health probes do.
//!
//! A fresh, single-threaded process (started through the read-only view of the wharf
//! binary, so nothing in the container can write to it): it moves itself into the
//! container's cgroup, enters the namespaces of the container's first process (mount last:
//! it changes our root), forks — the PID namespace applies only to children — and the
//! child drops to the container's privileges (or the requested user) and execs the
//! command. The parent forwards termination signals, waits, and exits with the child's
//! status (128 + signal for a signal death), so the caller sees the command's exit code.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};

use super::cgroupdir::ContainerCgroup;
use super::cgroupfs::Hierarchies;
use super::container::ContainerDir;
use super::process;
use super::sys;

/// What to run, passed as one JSON argument.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Request {
    pub args: Vec<String>,
    /// `KEY=value` entries added to (or replacing in) the container's environment.
    #[serde(default)]
    pub env: Vec<String>,
    /// `-u`: a user name or uid, with an optional `:group`.
    #[serde(default)]
    pub user: Option<String>,
    /// `-w`: the working directory inside the container.
    #[serde(default)]
    pub workdir: Option<String>,
    /// A terminal was requested (sets `TERM`); the caller's streams are used as they are.
    #[serde(default)]
    pub tty: bool,
    /// Do not wait for the command (`-d`).
    #[serde(default)]
    pub detach: bool,
    /// A health probe (for the supervisor's messages only).
    #[serde(default)]
    pub probe: bool,
}

/// Runs the request. Never returns.
pub fn main(dir: &Path, request: &str) -> ! {
    let code = match run(&ContainerDir::at(dir.to_path_buf()), request) {
        Ok(code) => code,
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "wharf exec: {message}");
            // Docker's code for "the command could not be run".
            126
        }
    };
    std::process::exit(code)
}

fn run(dir: &ContainerDir, request: &str) -> Result<i32, String> {
    let request: Request =
        serde_json::from_str(request).map_err(|e| format!("invalid request: {e}"))?;
    if request.args.is_empty() {
        return Err("no command given".into());
    }
    let config = dir.read_config().map_err(|e| e.to_string())?;
    let state = dir.read_state().map_err(|e| e.to_string())?.checked();
    let init = state
        .init
        .filter(|p| p.is_alive())
        .ok_or_else(|| format!("container {} is not running", config.spec.name))?;
    let spec = &config.spec;

    // Open every namespace first: after entering the mount namespace, /proc is the
    // container's.
    let mut namespaces = Vec::new();
    for (name, flag) in [
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ] {
        let path = format!("/proc/{}/ns/{name}", init.pid);
        let file = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        namespaces.push((file, flag, name));
    }
    if !init.is_alive() {
        return Err(format!("container {} is not running", spec.name));
    }
    let cgroups =
        Hierarchies::read(Path::new("/proc/self/mountinfo")).map_err(|e| e.to_string())?;
    ContainerCgroup::open(&cgroups, &spec.cgroup_path)
        .map_err(|e| e.to_string())?
        .join(std::process::id() as i32)
        .map_err(|e| format!("joining the container's cgroup: {e}"))?;
    for (file, flag, name) in &namespaces {
        setns(file, *flag).map_err(|e| format!("entering the {name} namespace: {e}"))?;
    }
    drop(namespaces);

    let mut proc = spec.process.clone();
    proc.args = request.args.clone();
    proc.init = false;
    proc.terminal = request.tty;
    if let Some(user) = request.user.as_deref().filter(|u| !u.is_empty()) {
        let passwd = std::fs::read("/etc/passwd").ok();
        let group = std::fs::read("/etc/group").ok();
        proc.user = super::spec::resolve_exec_user(
            &spec.service,
            user,
            passwd.as_deref(),
            group.as_deref(),
        )
        .map_err(|e| e.to_string())?;
    }
    if let Some(w) = request.workdir.as_deref().filter(|w| !w.is_empty()) {
        proc.cwd = w.to_string();
    }
    let mut extra = request.env.clone();
    if request.tty {
        extra.push("TERM=xterm".into());
    }
    for entry in extra {
        let key = entry.split('=').next().unwrap_or_default().to_string();
        proc.env
            .retain(|e| e.split('=').next() != Some(key.as_str()));
        proc.env.push(entry);
    }

    let all = SigSet::all();
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None);
    let child = match sys::fork_single_threaded().map_err(|e| format!("fork: {e}"))? {
        Some(child) => child,
        None => {
            let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&all), None);
            // Our parent's death (a probe timing out) must not leave us running.
            if !request.detach {
                let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
            }
            let e = match process::apply_rlimits(&proc.rlimits)
                .and_then(|()| process::drop_privileges(&proc, &spec.security))
            {
                Ok(()) => process::exec(&proc),
                Err(e) => e,
            };
            let _ = writeln!(std::io::stderr(), "wharf exec: {e}");
            std::process::exit(e.exit_code);
        }
    };
    if request.detach {
        return Ok(0);
    }
    Ok(process::forward_signals_until_exit(child, &all, false))
}
