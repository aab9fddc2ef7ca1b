//! The container's first process (`wharf __init <container dir>`), started by the
//! supervisor through the read-only view of the wharf binary, already inside the
//! container's new PID, mount, UTS, IPC and network namespaces.
//!
//! It waits for the supervisor's go (sent once the supervisor has put it into the
//! container's cgroup), joins the namespaces of other containers it shares, takes a cgroup
//! namespace of its own if asked, sets the hostname, builds the root filesystem
//! ([`super::rootfs`]), applies rlimits and `oom_score_adj`, allocates the terminal (in
//! the container's devpts, its master sent to the supervisor) and takes it, drops to
//! the container's identity ([`super::process`]) and execs the program. Any failure before
//! the exec is written to the error pipe (which closes unseen when the exec succeeds) and
//! ends the process with Docker's exit code.
//!
//! With `init: true` it stays as PID 1 instead: it forks the program and then only reaps
//! zombies and forwards signals to it, exiting with its status (what `docker run --init`
//! does with tini). It never starts a thread, so forking is safe.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::RawFd;
use std::path::Path;

use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::{SigSet, SigmaskHow};

use super::cgroupfs::Hierarchies;
use super::container::{ContainerDir, LaunchConfig};
use super::process::{self, StartError};
use super::rootfs;
use super::spec::{JoinTarget, Namespace};
use super::sys;

/// The descriptor the supervisor's go arrives on.
pub const SYNC_FD: RawFd = 3;
/// The descriptor failures are reported on.
pub const ERROR_FD: RawFd = 4;
/// With a terminal: our end of the console socket, over which the terminal's master goes
/// to the supervisor ([`take_console`]).
pub const CONSOLE_FD: RawFd = 5;

/// Runs the init. Never returns.
pub fn main(dir: &Path) -> ! {
    // Our name in `ps` (the exec path was `/proc/self/fd/N`); the program's replaces it.
    let _ = nix::sys::prctl::set_name(c"wharf-init");
    reset_signals();
    // The supervisor dup2'ed the sync and error pipes to fixed numbers before exec.
    let mut errors = owned_fd(ERROR_FD);
    let e = match run(&ContainerDir::at(dir.to_path_buf()), &mut errors) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    fail(errors, &e)
}

/// Gives the container's program the signal state of a fresh process. A blocked mask and
/// ignored dispositions survive `execve`, and we inherit both: the supervisor blocks
/// SIGTERM, SIGINT, SIGHUP and SIGCHLD for its signalfd, and Rust's runtime ignores
/// SIGPIPE. Left so, a container's SIGTERM handler would never run (its stop would always
/// wait out the grace period and end in SIGKILL), and its pipes would not end writers.
fn reset_signals() {
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    let _ = sys::default_signal(nix::sys::signal::Signal::SIGPIPE);
}

/// Reports `e` on the error pipe and exits with its code.
fn fail(errors: Option<File>, e: &StartError) -> ! {
    if let Some(mut f) = errors {
        let _ = f.write_all(e.to_string().as_bytes());
    }
    std::process::exit(e.exit_code)
}

fn owned_fd(fd: RawFd) -> Option<File> {
    // The descriptor is ours by contract with the supervisor; check it is open first.
    nix::fcntl::fcntl(sys::borrow_fd(fd), nix::fcntl::FcntlArg::F_GETFD).ok()?;
    Some(File::from(sys::take_fd(fd)))
}

fn setup_err(step: &'static str) -> impl FnOnce(String) -> StartError {
    move |message| StartError {
        step,
        message,
        exit_code: 126,
    }
}

fn run(
    dir: &ContainerDir,
    errors: &mut Option<File>,
) -> Result<std::convert::Infallible, StartError> {
    let config = dir
        .read_config()
        .map_err(|e| setup_err("reading the container's configuration")(e.to_string()))?;
    let cgroups = Hierarchies::read(Path::new("/proc/self/mountinfo"))
        .map_err(|e| setup_err("finding the cgroup hierarchies")(e.to_string()))?;
    // Close-on-exec for the error pipe: a successful exec closes it unwritten.
    if let Some(f) = errors.as_ref() {
        nix::fcntl::fcntl(
            f,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .map_err(|e| setup_err("preparing the error pipe")(e.to_string()))?;
    }

    let spec = &config.spec;
    let join_pid = |t: &JoinTarget| join_pid(&config, t);
    for (name, flag, target) in rootfs::joined_namespaces(spec) {
        let pid = join_pid(target).ok_or_else(|| {
            setup_err("joining a namespace")(format!("{target:?} is not running"))
        })?;
        let path = format!("/proc/{pid}/ns/{name}");
        let file = File::open(&path)
            .map_err(|e| setup_err("joining a namespace")(format!("{path}: {e}")))?;
        setns(&file, flag).map_err(|e| setup_err("joining a namespace")(format!("{path}: {e}")))?;
    }
    if let Some(path) = config
        .netns
        .as_ref()
        .filter(|_| spec.namespaces.net == Namespace::New)
    {
        // Before anything is mounted: sysfs takes the network namespace of whoever
        // mounts it, and `/sys/class/net` must show the container's interfaces.
        let file = File::open(path).map_err(|e| {
            setup_err("joining the network namespace")(format!("{}: {e}", path.display()))
        })?;
        setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| {
            setup_err("joining the network namespace")(format!("{}: {e}", path.display()))
        })?;
    } else if spec.namespaces.net == Namespace::New {
        sys::loopback_up()
            .map_err(|e| setup_err("bringing up the loopback interface")(e.to_string()))?;
    }
    if spec.namespaces.uts == Namespace::New {
        nix::unistd::sethostname(&spec.hostname)
            .map_err(|e| setup_err("setting the hostname")(e.to_string()))?;
        if let Some(domain) = &spec.domainname {
            sys::set_domainname(domain)
                .map_err(|e| setup_err("setting the domain name")(e.to_string()))?;
        }
    }

    rootfs::setup(dir, &config, &cgroups, &join_pid)
        .map_err(|e| setup_err("preparing the root filesystem")(e.to_string()))?;

    // Wait for the go: the supervisor has put us into the container's cgroup. Everything
    // above runs meanwhile — on cgroup v1 moving a process waits for an RCU grace period
    // (the kernel's cgroup_threadgroup_rwsem), which costs more than all the mounts —
    // and nothing above depends on the cgroup; the cgroup namespace below does.
    let mut sync = owned_fd(SYNC_FD).ok_or_else(|| setup_err("waiting")("no sync pipe".into()))?;
    let mut byte = [0u8; 1];
    match sync.read(&mut byte) {
        Ok(1) => {}
        _ => {
            return Err(setup_err("waiting for the supervisor")(
                "it went away".into(),
            ));
        }
    }
    drop(sync);

    if spec.namespaces.cgroup == Namespace::New {
        unshare(CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| setup_err("creating the cgroup namespace")(e.to_string()))?;
    }
    rootfs::mount_private_cgroup2(spec, &cgroups)
        .map_err(|e| setup_err("preparing the root filesystem")(e.to_string()))?;

    if let Some(adj) = spec.process.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| setup_err("setting oom_score_adj")(e.to_string()))?;
    }
    process::apply_rlimits(&spec.process.rlimits)?;
    if spec.process.terminal {
        take_console().map_err(setup_err("allocating the terminal"))?;
    }
    process::drop_privileges(&spec.process, &spec.security)?;

    if spec.process.init {
        reap_and_forward(&spec.process, errors.take())
    } else {
        Err(process::exec(&spec.process))
    }
}

/// With a terminal: allocates it here, from the container's own devpts instance, so that
/// the program finds its terminal under its name (`/dev/pts/0`) as on a host of its own;
/// makes it our controlling terminal and standard streams; and hands its master to the
/// supervisor over [`CONSOLE_FD`] (runc's console socket, without a socket path). Then
/// waits for the supervisor's word that the terminal is sized, so that the program never
/// sees a 0×0 one.
fn take_console() -> Result<(), String> {
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;

    use nix::fcntl::OFlag;
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let console = owned_fd(CONSOLE_FD).ok_or("no console socket")?;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| format!("/dev/ptmx: {e}"))?;
    nix::pty::grantpt(&master).map_err(|e| format!("grantpt: {e}"))?;
    nix::pty::unlockpt(&master).map_err(|e| format!("unlockpt: {e}"))?;
    let name = nix::pty::ptsname_r(&master).map_err(|e| format!("ptsname: {e}"))?;
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&name)
        .map_err(|e| format!("{name}: {e}"))?;
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    for fd in 0..=2 {
        sys::dup2_to(slave.as_raw_fd(), fd).map_err(|e| format!("dup2: {e}"))?;
    }
    drop(slave);
    sys::set_controlling_terminal(0).map_err(|e| format!("TIOCSCTTY: {e}"))?;
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        console.as_raw_fd(),
        &[IoSlice::new(b"m")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| format!("handing the terminal to the supervisor: {e}"))?;
    drop(master);
    let mut console = console;
    let mut word = [0u8; 1];
    match console.read(&mut word) {
        Ok(1) => Ok(()),
        _ => Err("the supervisor did not take the terminal".into()),
    }
}

/// The init of `init: true`: the program runs as our child; we forward every signal we
/// can catch to it, reap every process that is reparented to us, and exit as it did.
fn reap_and_forward(process: &super::spec::Process, errors: Option<File>) -> ! {
    let all = SigSet::all();
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None);
    let child = match sys::fork_single_threaded() {
        Ok(Some(pid)) => pid,
        Ok(None) => {
            let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&all), None);
            let e = process::exec(process);
            fail(errors, &e)
        }
        Err(e) => {
            eprintln!("wharf init: fork: {e}");
            std::process::exit(126);
        }
    };
    // Our copy of the error pipe must not keep the supervisor waiting.
    drop(errors);
    std::process::exit(process::forward_signals_until_exit(child, &all, true))
}

/// The first process of the container `target` names, from its recorded state.
pub fn join_pid(config: &LaunchConfig, target: &JoinTarget) -> Option<i32> {
    let key = match target {
        JoinTarget::Service(s) => format!("service:{s}"),
        JoinTarget::Container(c) => format!("container:{c}"),
    };
    let dir = ContainerDir::at(config.joins.get(&key)?.clone());
    let state = dir.read_state().ok()?.checked();
    state.init.filter(|p| p.is_alive()).map(|p| p.pid)
}
