//! The last steps before a container's program runs, shared by the container's init and
//! by `exec`: rlimits, the identity (groups, gid, uid), the capability sets, no-new-privs,
//! the seccomp filter, the working directory, and `execve` with the program looked up in
//! the container's own `PATH`.
//!
//! The order is the kernel's, as runc has it: the bounding set is cut while we still hold
//! `CAP_SETPCAP`; the uid changes with `keepcaps` only for root, so a non-root user ends
//! with empty effective and permitted sets, as in Docker; the seccomp filter is loaded
//! while we still have `CAP_SYS_ADMIN` unless no-new-privs makes that unnecessary, and in
//! that case as late as possible. Runs only inside the container's namespaces, in a
//! process that execs or exits right after; it returns only on failure.

use std::convert::Infallible;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use caps::CapSet;
use nix::sys::resource::{Resource, setrlimit};
use nix::unistd::{Gid, Uid};

use super::spec::{Process, Rlimit, Seccomp, Security};

/// Why the program could not be started. The exit code follows Docker: 127 when the
/// program does not exist, 126 when it cannot be run.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {message}")]
pub struct StartError {
    pub step: &'static str,
    pub message: String,
    pub exit_code: i32,
}

fn step_err(step: &'static str) -> impl FnOnce(io::Error) -> StartError {
    move |e| StartError {
        step,
        message: e.to_string(),
        exit_code: 126,
    }
}

fn nix_step(step: &'static str) -> impl FnOnce(nix::Error) -> StartError {
    move |e| step_err(step)(io::Error::from(e))
}

/// Sets the rlimits of `process`.
pub fn apply_rlimits(limits: &[Rlimit]) -> Result<(), StartError> {
    for l in limits {
        let resource = rlimit_resource(&l.resource).ok_or_else(|| StartError {
            step: "setting rlimits",
            message: format!("unknown resource {}", l.resource),
            exit_code: 126,
        })?;
        setrlimit(resource, l.soft, l.hard).map_err(nix_step("setting rlimits"))?;
    }
    Ok(())
}

fn rlimit_resource(name: &str) -> Option<Resource> {
    Some(match name {
        "RLIMIT_AS" => Resource::RLIMIT_AS,
        "RLIMIT_CORE" => Resource::RLIMIT_CORE,
        "RLIMIT_CPU" => Resource::RLIMIT_CPU,
        "RLIMIT_DATA" => Resource::RLIMIT_DATA,
        "RLIMIT_FSIZE" => Resource::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => Resource::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => Resource::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => Resource::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => Resource::RLIMIT_NICE,
        "RLIMIT_NOFILE" => Resource::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => Resource::RLIMIT_NPROC,
        "RLIMIT_RSS" => Resource::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => Resource::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => Resource::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => Resource::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => Resource::RLIMIT_STACK,
        _ => return None,
    })
}

/// Drops to the process's identity and privileges. After this only `exec` remains.
pub fn drop_privileges(process: &Process, security: &Security) -> Result<(), StartError> {
    let filter = match security.seccomp {
        Seccomp::Default => Some(
            super::seccomp::default_filter(&security.capabilities).map_err(|e| StartError {
                step: "building the seccomp filter",
                message: e.to_string(),
                exit_code: 126,
            })?,
        ),
        Seccomp::Unconfined => None,
    };
    let load = |filter: &Option<_>| -> Result<(), StartError> {
        match filter {
            Some(f) => super::seccomp::load(f).map_err(|e| StartError {
                step: "loading the seccomp filter",
                message: e.to_string(),
                exit_code: 126,
            }),
            None => Ok(()),
        }
    };

    let wanted: caps::CapsHashSet = security
        .capabilities
        .iter()
        .filter_map(|c| caps::Capability::from_str(c.name()).ok())
        .collect();
    // What we can give: a process never gains a capability outside its bounding set. A
    // privileged container gets all of those (Docker: "all capabilities the daemon has");
    // one that asks for a capability the host withholds is refused by name.
    let available = caps::read(None, CapSet::Bounding).map_err(|e| StartError {
        step: "reading capabilities",
        message: e.to_string(),
        exit_code: 126,
    })?;
    let wanted: caps::CapsHashSet = if security.privileged {
        wanted.intersection(&available).copied().collect()
    } else {
        let mut missing: Vec<String> = wanted
            .difference(&available)
            .map(|c| c.to_string())
            .collect();
        if !missing.is_empty() {
            missing.sort();
            return Err(StartError {
                step: "setting capabilities",
                message: format!("not available on this host: {}", missing.join(", ")),
                exit_code: 126,
            });
        }
        wanted
    };
    for cap in available.difference(&wanted) {
        caps::drop(None, CapSet::Bounding, *cap).map_err(|e| StartError {
            step: "dropping capabilities",
            message: format!("{cap}: {e}"),
            exit_code: 126,
        })?;
    }

    if security.no_new_privileges {
        nix::sys::prctl::set_no_new_privs().map_err(nix_step("setting no_new_privs"))?;
    } else {
        load(&filter)?;
    }

    let user = &process.user;
    let root = user.uid == 0;
    nix::sys::prctl::set_keepcaps(root).map_err(nix_step("keeping capabilities"))?;
    let groups: Vec<Gid> = user
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    nix::unistd::setgroups(&groups).map_err(nix_step("setting supplementary groups"))?;
    let gid = Gid::from_raw(user.gid);
    nix::unistd::setresgid(gid, gid, gid).map_err(nix_step("setting the group id"))?;
    let uid = Uid::from_raw(user.uid);
    nix::unistd::setresuid(uid, uid, uid).map_err(nix_step("setting the user id"))?;

    let set = |which: CapSet, value: &caps::CapsHashSet| {
        caps::set(None, which, value).map_err(|e| StartError {
            step: "setting capabilities",
            message: format!("{which:?}: {e}"),
            exit_code: 126,
        })
    };
    let granted = if root {
        wanted
    } else {
        caps::CapsHashSet::new()
    };
    caps::clear(None, CapSet::Ambient).map_err(|e| StartError {
        step: "setting capabilities",
        message: format!("ambient: {e}"),
        exit_code: 126,
    })?;
    set(CapSet::Inheritable, &caps::CapsHashSet::new())?;
    set(CapSet::Effective, &granted)?;
    set(CapSet::Permitted, &granted)?;

    if security.no_new_privileges {
        load(&filter)?;
    }
    Ok(())
}

/// Changes into the working directory and executes the program. Returns only on failure.
pub fn exec(process: &Process) -> StartError {
    if let Err(e) = nix::unistd::chdir(process.cwd.as_str()) {
        return StartError {
            step: "entering the working directory",
            message: format!("{}: {e}", process.cwd),
            exit_code: 126,
        };
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    match exec_inner(process) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn exec_inner(process: &Process) -> Result<Infallible, StartError> {
    let program = &process.args[0];
    let path = lookup(program, &process.env).ok_or_else(|| StartError {
        step: "exec",
        message: format!("{program:?}: executable file not found in $PATH"),
        exit_code: 127,
    })?;
    let cstr = |s: &str| {
        CString::new(s).map_err(|_| StartError {
            step: "exec",
            message: format!("{s:?} contains a NUL byte"),
            exit_code: 126,
        })
    };
    let args = process
        .args
        .iter()
        .map(|a| cstr(a))
        .collect::<Result<Vec<_>, _>>()?;
    let env = process
        .env
        .iter()
        .map(|e| cstr(e))
        .collect::<Result<Vec<_>, _>>()?;
    let cpath = CString::new(path.as_os_str().as_bytes()).map_err(|_| StartError {
        step: "exec",
        message: "program path contains a NUL byte".into(),
        exit_code: 126,
    })?;
    let e = nix::unistd::execve(&cpath, &args, &env).unwrap_err();
    Err(StartError {
        step: "exec",
        message: format!("{}: {}", path.display(), io::Error::from(e)),
        exit_code: if e == nix::Error::ENOENT { 127 } else { 126 },
    })
}

/// Waits for `child` while forwarding to it every signal that arrives (the caller has
/// blocked them all, so that they queue for `sigwait`); returns its exit code, 128 + the
/// signal for a death by signal. With `reap_all` every other child that exits is reaped
/// too: the duty of a PID namespace's init, to which orphans are reparented.
pub fn forward_signals_until_exit(
    child: nix::unistd::Pid,
    blocked: &nix::sys::signal::SigSet,
    reap_all: bool,
) -> i32 {
    use nix::sys::signal::{Signal, kill};
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let target = if reap_all {
        nix::unistd::Pid::from_raw(-1)
    } else {
        child
    };
    loop {
        let Ok(signal) = blocked.wait() else {
            continue;
        };
        if signal != Signal::SIGCHLD {
            let _ = kill(child, signal);
            continue;
        }
        loop {
            match waitpid(target, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => return code,
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => return 128 + sig as i32,
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}

/// `program` as `execvp` would find it, but in the container's `PATH` (from its
/// environment, not ours). A name with a slash is taken as it is.
pub fn lookup(program: &str, env: &[String]) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(super::spec::DEFAULT_PATH);
    path.split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(program))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_uses_the_containers_path_and_takes_slashes_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::write(bin.join("tool"), b"#!/bin/sh\n").unwrap();
        std::fs::write(bin.join("data"), b"").unwrap();
        std::fs::set_permissions(bin.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let env = vec![format!("PATH=/nonexistent:{}", bin.display())];
        assert_eq!(lookup("tool", &env), Some(bin.join("tool")));
        assert_eq!(lookup("data", &env), None, "not executable");
        assert_eq!(lookup("missing", &env), None);
        assert_eq!(lookup("./x/y", &env), Some(PathBuf::from("./x/y")));
    }

    #[test]
    fn every_rlimit_name_the_spec_produces_is_known() {
        for name in [
            "RLIMIT_NOFILE",
            "RLIMIT_NPROC",
            "RLIMIT_CORE",
            "RLIMIT_MEMLOCK",
            "RLIMIT_STACK",
        ] {
            assert!(rlimit_resource(name).is_some(), "{name}");
        }
        assert!(rlimit_resource("RLIMIT_BOGUS").is_none());
    }
}
