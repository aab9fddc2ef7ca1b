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
//!
//! With a terminal (`Request::tty`, `docker exec -t`), the command gets a pseudo-terminal
//! of the container's own devpts instance, opened before the fork: the child makes it its
//! controlling terminal and standard streams, and the parent relays bytes between its own
//! streams and the master, with its stdin terminal (if it has one) in raw mode and the
//! window size kept in step. Without one, the caller's streams are passed through as they
//! are.

use std::fs::File;
use std::io::{IsTerminal, Stdin, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::pty::OpenptyResult;
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

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
    /// Run the command on a pseudo-terminal of its own (and set `TERM`). Ignored with
    /// `detach`: nobody would hold the terminal's other side.
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

    // We are in the container's mount namespace: its /dev/ptmx is its own devpts
    // instance's, so the command sees its terminal as /dev/pts/N there.
    let pty = if request.tty && !request.detach {
        Some(open_pty().map_err(|e| format!("allocating a terminal: {e}"))?)
    } else {
        None
    };

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
            if let Some(pty) = &pty {
                if let Err(e) = take_terminal(&pty.slave) {
                    let _ = writeln!(std::io::stderr(), "wharf exec: taking the terminal: {e}");
                    std::process::exit(126);
                }
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
    match pty {
        Some(OpenptyResult { master, slave }) => {
            // The master reads EIO once every copy of the slave is closed.
            drop(slave);
            relay(child, &master, &all)
        }
        None => Ok(process::forward_signals_until_exit(child, &all, false)),
    }
}

/// `child`'s exit code (128 + signal for a signal death) once it has exited.
fn reap(child: Pid) -> Option<i32> {
    match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => Some(code),
        Ok(WaitStatus::Signaled(_, sig, _)) => Some(128 + sig as i32),
        _ => None,
    }
}

// --- the command's terminal -------------------------------------------------------------

/// A pseudo-terminal for the command, sized like our stdin terminal (if stdin is one).
/// Both ends are close-on-exec: the child takes the slave as its standard streams.
fn open_pty() -> nix::Result<OpenptyResult> {
    let pty = nix::pty::openpty(None, None)?;
    for fd in [&pty.master, &pty.slave] {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    }
    let flags = OFlag::from_bits_truncate(fcntl(&pty.master, FcntlArg::F_GETFL)?);
    fcntl(&pty.master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    // Before the fork, so the command never sees a 0x0 terminal.
    if std::io::stdin().is_terminal() {
        copy_window_size(pty.master.as_fd());
    }
    Ok(pty)
}

/// In the child: a new session whose controlling terminal is `slave`, which becomes the
/// standard streams (the caller's terminal is no longer reachable from the command).
fn take_terminal(slave: &OwnedFd) -> std::io::Result<()> {
    nix::unistd::setsid()?;
    sys::set_controlling_terminal(slave.as_raw_fd())?;
    for fd in 0..=2 {
        sys::dup2_to(slave.as_raw_fd(), fd)?;
    }
    Ok(())
}

/// Gives the terminal on `master` our stdin terminal's window size; the kernel tells the
/// command with `SIGWINCH`.
fn copy_window_size(master: BorrowedFd<'_>) {
    if let Ok(size) = sys::window_size(std::io::stdin().as_fd()) {
        let _ = sys::set_window_size(master, &size);
    }
}

/// Our stdin terminal in raw mode (as `cfmakeraw`, like Docker's CLI) until dropped: keys
/// reach the command as typed (Ctrl-C included) and its terminal does the echoing.
pub struct RawMode {
    stdin: Stdin,
    saved: Termios,
}

impl RawMode {
    /// `None` when stdin is not a terminal.
    pub fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let saved = tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { stdin, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(&self.stdin, SetArg::TCSANOW, &self.saved);
    }
}

/// A stream of the caller (our stdout; a `wharf run` caller's stdout or stderr in the
/// supervisor), written with plain blocking writes: its file description is shared with
/// the caller, so we never make it non-blocking. After a failed write (the reader went
/// away) the rest is discarded, so the command is never stuck on a full terminal.
pub(super) struct Output {
    fd: OwnedFd,
    broken: bool,
}

impl Output {
    pub(super) fn new(fd: OwnedFd) -> Output {
        Output { fd, broken: false }
    }

    /// Our own stdout (a duplicate of it); `None` when it is closed.
    fn stdout() -> Option<Output> {
        std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .map(Output::new)
    }

    pub(super) fn write(&mut self, mut data: &[u8]) {
        while !self.broken && !data.is_empty() {
            match nix::unistd::write(&self.fd, data) {
                Ok(n) => data = &data[n..],
                Err(Errno::EINTR) => {}
                // Someone else made it non-blocking: wait until it takes more.
                Err(Errno::EAGAIN) => {
                    let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLOUT)];
                    let _ = poll(&mut fds, PollTimeout::NONE);
                }
                Err(_) => self.broken = true,
            }
        }
    }
}

/// Relays between our standard streams and the command's terminal until the command has
/// exited and its output is drained, forwarding signals as [`wait_forwarding`] does
/// (except `SIGWINCH`, which resizes the terminal instead); returns its exit code.
fn relay(child: Pid, master: &OwnedFd, all: &SigSet) -> Result<i32, String> {
    let signals = SignalFd::with_flags(all, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| format!("signalfd: {e}"))?;
    let stdin = std::io::stdin();
    // Restored on every way out of this function.
    let raw = RawMode::enter();
    let Some(mut out) = Output::stdout() else {
        return Err("our standard output is closed".into());
    };
    let mut buf = vec![0u8; 16 * 1024];
    // Read from stdin, not yet taken by the terminal: stdin is read only when it is empty,
    // so a command that does not read cannot make us buffer without bound.
    let mut input = Vec::new();
    let mut stdin_open = true;
    // Until the master reads EIO: every copy of the slave is closed.
    let mut master_open = true;
    loop {
        let mut events = PollFlags::POLLIN;
        if !input.is_empty() {
            events |= PollFlags::POLLOUT;
        }
        let watch_stdin = stdin_open && master_open && input.is_empty();
        // The signalfd first, then what is watched of the master and stdin.
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        let master_at = master_open.then_some(fds.len());
        if master_open {
            fds.push(PollFd::new(master.as_fd(), events));
        }
        let stdin_at = watch_stdin.then_some(fds.len());
        if watch_stdin {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        let revents = |at: Option<usize>| {
            at.and_then(|i| fds[i].revents())
                .unwrap_or(PollFlags::empty())
        };
        let (signalled, master_ready, stdin_ready) =
            (revents(Some(0)), revents(master_at), revents(stdin_at));

        if master_ready.intersects(PollFlags::POLLOUT | PollFlags::POLLERR) && !input.is_empty() {
            match nix::unistd::write(master, &input) {
                Ok(n) => {
                    input.drain(..n);
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(_) => input.clear(),
            }
        }
        if master_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            match nix::unistd::read(master, &mut buf) {
                Ok(0) => master_open = false,
                Ok(n) => out.write(&buf[..n]),
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                // EIO: the slave is closed and everything written to it has been read.
                Err(_) => {
                    master_open = false;
                    input.clear();
                }
            }
        }
        if !stdin_ready.is_empty() {
            match nix::unistd::read(&stdin, &mut buf) {
                Ok(0) => stdin_open = false,
                Ok(n) => input.extend_from_slice(&buf[..n]),
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(_) => stdin_open = false,
            }
        }
        if !signalled.is_empty() {
            while let Ok(Some(info)) = signals.read_signal() {
                let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else {
                    continue;
                };
                match signal {
                    Signal::SIGCHLD => {
                        if let Some(code) = reap(child) {
                            if master_open {
                                drain(master, &mut out, &mut buf);
                            }
                            drop(raw);
                            return Ok(code);
                        }
                    }
                    Signal::SIGWINCH => {
                        if raw.is_some() {
                            copy_window_size(master.as_fd());
                        }
                    }
                    other => {
                        let _ = kill(child, other);
                    }
                }
            }
        }
    }
}

/// Copies what the command wrote before it exited. Its writes are all in the terminal by
/// now, so this ends at EIO (the slave is closed), or when the terminal has been quiet for
/// a moment (a background process of the command still holds it), or after two seconds
/// (that process keeps writing).
fn drain(master: &OwnedFd, out: &mut Output, buf: &mut [u8]) {
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end {
        match nix::unistd::read(master, buf) {
            Ok(0) => return,
            Ok(n) => out.write(&buf[..n]),
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
                if !matches!(poll(&mut fds, PollTimeout::from(100u16)), Ok(n) if n > 0) {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}
