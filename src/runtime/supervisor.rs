//! The per-container supervisor (`wharf __supervise <container dir>`): the wharf binary
//! re-executed, detached in a session of its own, that outlives the command that started
//! it. It creates the container's cgroup, starts the container's init in fresh namespaces
//! (through the read-only view of the binary, see [`super::sys::readonly_self_exe`]),
//! writes the container's output to its log, records every change of state in
//! `state.json`, restarts the container by its policy, runs its health check, and stops it
//! on request (SIGTERM to the supervisor): the stop signal, the grace period, then SIGKILL
//! to every process of the cgroup. A paused container (its cgroup frozen) is not probed,
//! and is thawed before the stop signal and before a restart.
//!
//! Started *attached* (`wharf run` in the foreground), it also gives the container the
//! caller's stdin, copies the container's output to the caller's stdout and stderr beside
//! the log, and with a terminal relays the caller's keys to the container's terminal and
//! follows its window size (the caller sends `SIGWINCH` when it changes).
//!
//! It is single-threaded and event-driven (`poll` over the output pipes and a signalfd),
//! so it may fork, and it keeps its memory small: one supervisor per container. It never
//! enters a container's namespaces itself; children do that. Its own diagnostics go to
//! `supervisor.log`; the starter learns the outcome of the first start through a pipe.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use nix::fcntl::{FcntlArg, OFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::{SigSet, Signal as NixSignal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::cgroupdir::ContainerCgroup;
use super::cgroupfs::Hierarchies;
use super::container::{ContainerDir, LaunchConfig, ProcRef, State, Status};
use super::health::{Health, Probe};
use super::init::{CONSOLE_FD, ERROR_FD, SYNC_FD};
use super::log::{LogWriter, Rotation, Stream, rfc3339_nanos};
use super::nsexec::Output;
use super::restart::{Exit, Restarts};
use super::spec::{LogDriver, Namespace};
use super::sys;

/// The descriptor the starter reads the first start's outcome from.
pub const READY_FD: RawFd = 3;
/// How much probe output is kept (Docker keeps 4 KiB).
const PROBE_OUTPUT: usize = 4096;

/// Runs the supervisor; `attached`: the standard streams are the caller's, to be given to
/// the container ([`Attached`]). Never returns.
pub fn main(dir: &Path, attached: bool) -> ! {
    let dir = ContainerDir::at(dir.to_path_buf());
    let attached = attached.then(Attached::take).flatten();
    let mut diag = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.supervisor_log_path())
        .ok();
    let mut ready = take_ready_fd();
    let code = match Supervisor::new(dir.clone()) {
        Ok(mut s) => {
            s.attached = attached;
            s.run(&mut ready, &mut diag)
        }
        Err(e) => {
            report(&mut ready, &format!("error: {e}"));
            note(&mut diag, &format!("cannot supervise: {e}"));
            1
        }
    };
    std::process::exit(code)
}

fn take_ready_fd() -> Option<File> {
    nix::fcntl::fcntl(sys::borrow_fd(READY_FD), FcntlArg::F_GETFD).ok()?;
    let fd = sys::take_fd(READY_FD);
    // Keep it out of every child: a child holding it would delay the starter's EOF.
    let _ = nix::fcntl::fcntl(
        fd.as_fd(),
        FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    Some(File::from(fd))
}

fn report(ready: &mut Option<File>, line: &str) {
    if let Some(mut f) = ready.take() {
        let _ = writeln!(f, "{line}");
    }
}

fn note(diag: &mut Option<File>, line: &str) {
    if let Some(f) = diag.as_mut() {
        let _ = writeln!(f, "{} {line}", rfc3339_nanos(SystemTime::now()));
    }
}

/// The caller's streams of an attached supervisor, taken from our standard streams (which
/// then point at `/dev/null`, so that nothing else we start writes to the caller).
struct Attached {
    stdin: OwnedFd,
    stdout: Output,
    stderr: Output,
    /// With a terminal: whether the caller's stdin is still relayed to it (until its EOF).
    relaying: bool,
}

impl Attached {
    /// `None` when `/dev/null` cannot be opened (then nothing is taken).
    fn take() -> Option<Attached> {
        let null = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .ok()?;
        // A closed stream of the caller stays closed for the container: `/dev/null`.
        let dup = |fd: RawFd| -> Option<OwnedFd> {
            let from = match nix::fcntl::fcntl(sys::borrow_fd(fd), FcntlArg::F_GETFD) {
                Ok(_) => sys::borrow_fd(fd),
                Err(_) => null.as_fd(),
            };
            nix::fcntl::fcntl(from, FcntlArg::F_DUPFD_CLOEXEC(3))
                .ok()
                .map(sys::take_fd)
        };
        let (stdin, stdout, stderr) = (dup(0)?, dup(1)?, dup(2)?);
        for fd in 0..=2 {
            let _ = sys::dup2_to(null.as_raw_fd(), fd);
        }
        Some(Attached {
            stdin,
            stdout: Output::new(stdout),
            stderr: Output::new(stderr),
            relaying: true,
        })
    }
}

/// A running container process and its output.
struct Running {
    init: Pid,
    started: Instant,
    output: Vec<(OwnedFd, Stream)>,
    /// Keeps the container's stdin open (`stdin_open` without a terminal).
    _stdin: Option<OwnedFd>,
    /// Attached with a terminal: its master, where the caller's keys go.
    terminal: Option<OwnedFd>,
    oom_before: u64,
}

struct ProbeRun {
    child: Child,
    started: Instant,
    output: Vec<u8>,
    pipe: Option<OwnedFd>,
}

struct Supervisor {
    dir: ContainerDir,
    config: LaunchConfig,
    cgroups: Hierarchies,
    cgroup: Option<ContainerCgroup>,
    exe: OwnedFd,
    own_pidns: File,
    state: State,
    restarts: Restarts,
    health: Option<Health>,
    log: Option<LogWriter>,
    signals: SignalFd,
    attached: Option<Attached>,
}

impl Supervisor {
    fn new(dir: ContainerDir) -> Result<Supervisor, String> {
        // A container sharing the host's PID namespace must not reach us through /proc.
        let _ = nix::sys::prctl::set_dumpable(false);
        let _ = nix::sys::prctl::set_child_subreaper(true);
        let config = dir.read_config().map_err(|e| e.to_string())?;
        let cgroups =
            Hierarchies::read(Path::new("/proc/self/mountinfo")).map_err(|e| e.to_string())?;
        let exe = sys::readonly_self_exe()
            .map_err(|e| format!("making a read-only view of the wharf binary: {e}"))?;
        // Above the numbers the init's descriptors are put at (SYNC_FD…CONSOLE_FD): the
        // init is exec'ed through `/proc/self/fd/<exe>` after they are, which must still
        // be the binary then.
        let exe = nix::fcntl::fcntl(&exe, FcntlArg::F_DUPFD_CLOEXEC(CONSOLE_FD + 1))
            .map(sys::take_fd)
            .map_err(|e| format!("moving the wharf binary's descriptor: {e}"))?;
        let own_pidns = File::open("/proc/self/ns/pid").map_err(|e| e.to_string())?;
        let mut mask = SigSet::empty();
        for s in [
            NixSignal::SIGCHLD,
            NixSignal::SIGTERM,
            NixSignal::SIGINT,
            NixSignal::SIGHUP,
            NixSignal::SIGWINCH,
        ] {
            mask.add(s);
        }
        mask.thread_block().map_err(|e| e.to_string())?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|e| e.to_string())?;
        let log = match config.spec.logging.driver {
            LogDriver::JsonFile => Some(
                LogWriter::open(
                    &dir.log_path(),
                    Rotation {
                        max_size: config.spec.logging.max_size,
                        max_file: config.spec.logging.max_file.max(1),
                    },
                )
                .map_err(|e| e.to_string())?,
            ),
            LogDriver::None => None,
        };
        let mut state = dir.read_state().unwrap_or_else(|_| State::created());
        state.supervisor = ProcRef::of(std::process::id() as i32);
        state.error = None;
        state.stopped_by_user = false;
        let restarts = Restarts::new(config.spec.restart);
        let health = config.spec.healthcheck.as_ref().map(|_| Health::default());
        Ok(Supervisor {
            dir,
            config,
            cgroups,
            cgroup: None,
            exe,
            own_pidns,
            state,
            restarts,
            health,
            log,
            signals,
            attached: None,
        })
    }

    fn save(&self, diag: &mut Option<File>) {
        if let Err(e) = self.dir.write_state(&self.state) {
            note(diag, &format!("recording state: {e}"));
        }
    }

    fn run(&mut self, ready: &mut Option<File>, diag: &mut Option<File>) -> i32 {
        let mut running = match self.start(diag) {
            Ok(r) => {
                report(ready, "ok");
                r
            }
            Err(e) => {
                // Record first: the starter reads the state as soon as it hears from us.
                self.state.status = Status::Exited;
                self.state.error = Some(e.clone());
                self.state.finished_at = Some(rfc3339_nanos(SystemTime::now()));
                self.teardown(diag);
                report(ready, &format!("error: {e}"));
                return 1;
            }
        };
        let mut stop_deadline: Option<Instant> = None;
        let mut stop_requested = false;
        let mut probe: Option<ProbeRun> = None;
        let mut next_probe = self.first_probe_at(&running);
        loop {
            // --- wait for something to happen ----------------------------------------
            let now = Instant::now();
            let mut deadline = stop_deadline;
            for d in [next_probe, probe.as_ref().map(|p| self.probe_deadline(p))]
                .into_iter()
                .flatten()
            {
                deadline = Some(deadline.map_or(d, |x| x.min(d)));
            }
            let timeout = match deadline {
                Some(d) => PollTimeout::try_from(d.saturating_duration_since(now))
                    .unwrap_or(PollTimeout::MAX),
                None => PollTimeout::NONE,
            };
            let mut fds = vec![PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
            for (fd, _) in &running.output {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
            if let Some(pipe) = probe.as_ref().and_then(|p| p.pipe.as_ref()) {
                fds.push(PollFd::new(pipe.as_fd(), PollFlags::POLLIN));
            }
            let relay = match (&self.attached, &running.terminal) {
                (Some(a), Some(_)) if a.relaying => {
                    fds.push(PollFd::new(a.stdin.as_fd(), PollFlags::POLLIN));
                    true
                }
                _ => false,
            };
            let _ = poll(&mut fds, timeout);
            let keys = relay
                && fds
                    .last()
                    .and_then(|f| f.revents())
                    .is_some_and(|r| !r.is_empty());
            drop(fds);
            if keys {
                self.relay_keys(&running);
            }

            // --- output -----------------------------------------------------------------
            self.pump_output(&mut running, diag);
            if let Some(p) = probe.as_mut() {
                read_probe_output(p);
            }

            // --- signals ----------------------------------------------------------------
            let mut init_status: Option<WaitStatus> = None;
            while let Ok(Some(info)) = self.signals.read_signal() {
                let s = info.ssi_signo as i32;
                if s == libc::SIGWINCH {
                    self.follow_window_size(&running);
                }
                if (s == libc::SIGTERM || s == libc::SIGINT) && !stop_requested {
                    stop_requested = true;
                    self.state.stopped_by_user = true;
                    self.state.status = Status::Stopping;
                    self.save(diag);
                    // A paused container cannot handle the stop signal: it would only
                    // be delivered on thawing, after the grace period (Docker thaws too).
                    self.thaw(diag);
                    let sig = NixSignal::try_from(self.config.spec.stop.signal.number())
                        .unwrap_or(NixSignal::SIGTERM);
                    let _ = kill(running.init, sig);
                    stop_deadline = Some(Instant::now() + self.config.spec.stop.grace_period);
                }
            }
            loop {
                match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(status) => {
                        if status.pid() == Some(running.init) {
                            init_status = Some(status);
                        } else if let Some(p) = probe.as_mut() {
                            if status.pid() == Some(Pid::from_raw(p.child.id() as i32)) {
                                let code = match status {
                                    WaitStatus::Exited(_, c) => Some(c),
                                    _ => None,
                                };
                                let mut done = probe.take().expect("checked");
                                read_probe_output(&mut done);
                                self.record_probe(&running, &done, code, diag);
                                next_probe = Some(self.after_probe_at(&running));
                            }
                        }
                        // Anything else is an orphan reparented to us (we are a
                        // subreaper): reaped, nothing to record.
                    }
                }
            }

            // --- timers -----------------------------------------------------------------
            let now = Instant::now();
            if stop_deadline.is_some_and(|d| now >= d) && init_status.is_none() {
                note(diag, "grace period over: killing the container");
                self.kill_all(&running);
                stop_deadline = None;
            }
            if let Some(p) = probe.as_mut() {
                if now >= self.probe_deadline(p) && self.paused() {
                    // The probe ran into a pause: it says nothing about the container's
                    // health. SIGKILL ends it even frozen (the v2 freezer lets fatal
                    // signals through; see `ContainerCgroup::freezer`); it is reaped with
                    // the orphans above, never waited for here.
                    let _ = p.child.kill();
                    probe = None;
                    next_probe = Some(self.after_probe_at(&running));
                }
            }
            if let Some(p) = probe.as_mut() {
                if now >= self.probe_deadline(p) {
                    let _ = p.child.kill();
                    let _ = p.child.wait();
                    let mut done = probe.take().expect("checked");
                    done.output = format!(
                        "Health check exceeded timeout ({})",
                        humantime(self.config.spec.healthcheck.as_ref().map(|h| h.timeout))
                    )
                    .into_bytes();
                    self.record_probe(&running, &done, None, diag);
                    next_probe = Some(self.after_probe_at(&running));
                }
            }
            if next_probe.is_some_and(|t| now >= t) && probe.is_none() && !stop_requested {
                next_probe = None;
                if self.paused() {
                    // Docker does not probe a paused container either: the probe would
                    // freeze on entering its cgroup and count as a failure. The health
                    // status stays as it was; probing resumes one interval later.
                    next_probe = Some(self.after_probe_at(&running));
                } else {
                    match self.spawn_probe() {
                        Ok(p) => probe = Some(p),
                        Err(e) => {
                            note(diag, &format!("health check: {e}"));
                            next_probe = Some(self.after_probe_at(&running));
                        }
                    }
                }
            }

            // --- the container exited ---------------------------------------------------
            let Some(status) = init_status else { continue };
            if let Some(mut p) = probe.take() {
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
            // Leftover processes (a shared PID namespace has no kernel cleanup) would
            // keep the output open.
            self.kill_all(&running);
            self.drain_output(&mut running, diag);
            let code = match status {
                WaitStatus::Exited(_, c) => c,
                WaitStatus::Signaled(_, s, _) => 128 + s as i32,
                _ => 255,
            };
            let oom = self
                .cgroup
                .as_ref()
                .and_then(|c| c.oom_kills().ok())
                .is_some_and(|n| n > running.oom_before);
            self.state.exit_code = Some(code);
            self.state.oom_killed = oom;
            self.state.finished_at = Some(rfc3339_nanos(SystemTime::now()));
            self.state.init = None;
            let delay = self.restarts.after_exit(Exit {
                code,
                ran_for: running.started.elapsed(),
                stopped_by_user: stop_requested,
            });
            let Some(delay) = delay else {
                self.state.status = Status::Exited;
                self.teardown(diag);
                return 0;
            };
            self.state.status = Status::Restarting;
            self.state.restart_count = self.restarts.count();
            self.save(diag);
            if self.wait_or_stop(delay) {
                self.state.status = Status::Exited;
                self.state.stopped_by_user = true;
                self.teardown(diag);
                return 0;
            }
            running = match self.start(diag) {
                Ok(r) => r,
                Err(e) => {
                    self.state.status = Status::Exited;
                    self.state.error = Some(e);
                    self.teardown(diag);
                    return 1;
                }
            };
            if let Some(h) = self.health.as_mut() {
                *h = Health::default();
            }
            next_probe = self.first_probe_at(&running);
        }
    }

    /// Sleeps `delay` before a restart; true when a stop request came meanwhile.
    fn wait_or_stop(&mut self, delay: Duration) -> bool {
        let end = Instant::now() + delay;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let mut fds = [PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
            let _ = poll(
                &mut fds,
                PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
            );
            while let Ok(Some(info)) = self.signals.read_signal() {
                let s = info.ssi_signo as i32;
                if s == libc::SIGTERM || s == libc::SIGINT {
                    return true;
                }
            }
            while let Ok(status) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                if status == WaitStatus::StillAlive {
                    break;
                }
            }
        }
    }

    /// Ends supervision: no process of the container is left, its cgroup is removed, the
    /// final state is recorded.
    fn teardown(&mut self, diag: &mut Option<File>) {
        if let Some(cg) = self.cgroup.take() {
            if let Err(e) = cg.kill_all().and_then(|()| cg.remove()) {
                note(diag, &format!("removing the cgroup: {e}"));
            }
        }
        if let Some(log) = self.log.as_mut() {
            let _ = log.flush_partial(SystemTime::now());
        }
        self.state.init = None;
        // The supervisor stays in the record: it is still alive for a moment after this
        // write, and `stop`/`remove` use the record to wait until it is gone (readers
        // check the process's liveness, so the stale entry means nothing afterwards).
        self.save(diag);
    }

    /// Whether the container is paused (its cgroup frozen by `wharf pause`).
    fn paused(&self) -> bool {
        self.cgroup
            .as_ref()
            .is_some_and(|c| c.is_frozen().unwrap_or(false))
    }

    fn thaw(&self, diag: &mut Option<File>) {
        if let Some(cg) = &self.cgroup {
            if let Err(e) = cg.thaw() {
                note(diag, &format!("thawing the cgroup: {e}"));
            }
        }
    }

    fn kill_all(&self, running: &Running) {
        match &self.cgroup {
            Some(cg) => {
                let _ = cg.kill_all();
            }
            None => {
                let _ = kill(running.init, NixSignal::SIGKILL);
            }
        }
    }

    /// Starts the container's init and waits until it has exec'ed the program (or failed).
    fn start(&mut self, diag: &mut Option<File>) -> Result<Running, String> {
        let spec = &self.config.spec;
        if self.cgroup.is_none() {
            let (cg, warnings) =
                ContainerCgroup::create(&self.cgroups, &spec.cgroup_path, &spec.resources)
                    .map_err(|e| e.to_string())?;
            for w in warnings {
                note(diag, &format!("warning: {w}"));
            }
            self.cgroup = Some(cg);
        } else {
            // A restart after the container died while paused (killed, OOM): the new
            // process must not start frozen.
            self.thaw(diag);
        }
        let cgroup = self.cgroup.as_ref().expect("just created");
        let oom_before = cgroup.oom_kills().unwrap_or(0);

        // --- stdio ---------------------------------------------------------------------
        let mut output = Vec::new();
        let mut keep_stdin = None;
        let mut terminal = None;
        // With a terminal, the init allocates it in the container and sends us its
        // master over this socket ([`super::init::CONSOLE_FD`]); the init's streams become
        // the terminal's.
        let mut console = None;
        let (stdin, stdout, stderr): (Stdio, Stdio, Stdio) = if spec.process.terminal {
            console = Some(
                std::os::unix::net::UnixStream::pair()
                    .map_err(|e| format!("the console socket: {e}"))?,
            );
            (Stdio::null(), Stdio::null(), Stdio::null())
        } else {
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            output.push((out_r, Stream::Stdout));
            output.push((err_r, Stream::Stderr));
            let stdin = if let Some(a) = &self.attached {
                Stdio::from(a.stdin.try_clone().map_err(|e| e.to_string())?)
            } else if spec.process.stdin_open {
                let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
                keep_stdin = Some(w);
                Stdio::from(r)
            } else {
                Stdio::null()
            };
            (stdin, Stdio::from(out_w), Stdio::from(err_w))
        };

        // --- namespaces ----------------------------------------------------------------
        // The PID namespace applies to our next child (`pid_for_children`); reset it to
        // our own first, since a restart needs a fresh one.
        setns(&self.own_pidns, CloneFlags::CLONE_NEWPID)
            .map_err(|e| format!("resetting the PID namespace: {e}"))?;
        match &spec.namespaces.pid {
            Namespace::New => unshare(CloneFlags::CLONE_NEWPID)
                .map_err(|e| format!("creating the PID namespace: {e}"))?,
            Namespace::Host => {}
            Namespace::Join(target) => {
                let pid = super::init::join_pid(&self.config, target)
                    .ok_or_else(|| format!("{target:?} is not running"))?;
                let ns = File::open(format!("/proc/{pid}/ns/pid")).map_err(|e| e.to_string())?;
                setns(&ns, CloneFlags::CLONE_NEWPID)
                    .map_err(|e| format!("joining the PID namespace of {target:?}: {e}"))?;
            }
        }
        let mut flags = CloneFlags::CLONE_NEWNS;
        for (ns, flag) in [
            (&spec.namespaces.uts, CloneFlags::CLONE_NEWUTS),
            (&spec.namespaces.ipc, CloneFlags::CLONE_NEWIPC),
            (&spec.namespaces.net, CloneFlags::CLONE_NEWNET),
        ] {
            if *ns == Namespace::New {
                flags |= flag;
            }
        }
        if self.config.netns.is_some() {
            // The init joins the pinned namespace itself (`init::run`).
            flags.remove(CloneFlags::CLONE_NEWNET);
        }

        // --- the init ------------------------------------------------------------------
        // Both block: the init waits on one, we wait on the other.
        let (sync_r, sync_w) = blocking_pipe()?;
        let (err_r, err_w) = blocking_pipe()?;
        let (sync_fd, err_fd) = (sync_r.as_raw_fd(), err_w.as_raw_fd());
        let console_fd = console.as_ref().map(|(_, theirs)| theirs.as_raw_fd());
        let mut cmd = Command::new(format!("/proc/self/fd/{}", self.exe.as_raw_fd()));
        cmd.arg0("wharf-init")
            .arg("__init")
            .arg(self.dir.path())
            .env_clear()
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr);
        sys::before_exec(&mut cmd, move || {
            sys::dup2_to(sync_fd, SYNC_FD)?;
            sys::dup2_to(err_fd, ERROR_FD)?;
            if let Some(fd) = console_fd {
                sys::dup2_to(fd, CONSOLE_FD)?;
            }
            unshare(flags).map_err(io::Error::from)?;
            Ok(())
        });
        let spawned = cmd.spawn();
        // Our next children (health probes) belong in our own PID namespace again.
        let _ = setns(&self.own_pidns, CloneFlags::CLONE_NEWPID);
        drop(cmd);
        drop(sync_r);
        drop(err_w);
        let child = spawned.map_err(|e| format!("starting the container's init: {e}"))?;
        let init = Pid::from_raw(child.id() as i32);
        // std's Child would reap in `wait`; we reap by pid ourselves.
        std::mem::forget(child);

        // The init builds its root filesystem meanwhile; it waits for our go only before
        // its last steps.
        if let Err(e) = cgroup.join(init.as_raw()) {
            let _ = kill(init, NixSignal::SIGKILL);
            let _ = waitpid(init, None);
            let mut message = String::new();
            let _ = File::from(err_r).read_to_string(&mut message);
            if message.is_empty() {
                message = format!("moving the container into its cgroup: {e}");
            }
            return Err(message);
        }
        let started_at = SystemTime::now();
        let started = Instant::now();
        let mut sync_w = File::from(sync_w);
        let _ = sync_w.write_all(b"g");
        drop(sync_w);
        if let Some((ours, theirs)) = console.take() {
            drop(theirs);
            // Nothing comes when the init failed before: its error follows.
            if let Some(master) = receive_terminal(&ours) {
                set_cloexec_nonblock(&master)?;
                if let Some(a) = &self.attached {
                    // Sized like the caller's terminal before the program first looks.
                    if let Ok(size) = sys::window_size(a.stdin.as_fd()) {
                        let _ = sys::set_window_size(master.as_fd(), &size);
                    }
                    terminal = Some(master.try_clone().map_err(|e| e.to_string())?);
                }
                output.push((master, Stream::Stdout));
                let _ = (&ours).write_all(b"s");
            }
        }
        let mut message = String::new();
        let _ = File::from(err_r).read_to_string(&mut message);
        if !message.is_empty() {
            let status = waitpid(init, None);
            let code = match status {
                Ok(WaitStatus::Exited(_, c)) => c,
                _ => 126,
            };
            self.state.exit_code = Some(code);
            return Err(message);
        }
        self.state.status = Status::Running;
        self.state.init = ProcRef::of(init.as_raw());
        self.state.started_at = Some(rfc3339_nanos(started_at));
        self.state.finished_at = None;
        self.state.exit_code = None;
        self.state.oom_killed = false;
        self.state.health = self.health.clone();
        self.save(diag);
        Ok(Running {
            init,
            started,
            output,
            _stdin: keep_stdin,
            terminal,
            oom_before,
        })
    }

    fn pump_output(&mut self, running: &mut Running, diag: &mut Option<File>) {
        let mut buf = [0u8; 16 * 1024];
        let mut closed = Vec::new();
        for (i, (fd, stream)) in running.output.iter().enumerate() {
            loop {
                match nix::unistd::read(fd, &mut buf) {
                    Ok(0) => {
                        closed.push(i);
                        break;
                    }
                    Ok(n) => {
                        if let Some(log) = self.log.as_mut() {
                            if let Err(e) = log.write(*stream, &buf[..n], SystemTime::now()) {
                                note(diag, &format!("writing the log: {e}"));
                            }
                        }
                        if let Some(a) = self.attached.as_mut() {
                            match stream {
                                Stream::Stdout => a.stdout.write(&buf[..n]),
                                Stream::Stderr => a.stderr.write(&buf[..n]),
                            }
                        }
                    }
                    // EIO: the pty's other side is closed.
                    Err(nix::Error::EIO) => {
                        closed.push(i);
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        for i in closed.into_iter().rev() {
            running.output.remove(i);
        }
    }

    /// Attached with a terminal: what the caller typed, to the container's terminal. A key
    /// the terminal cannot take right now is dropped, as on a real one.
    fn relay_keys(&mut self, running: &Running) {
        let (Some(a), Some(master)) = (self.attached.as_mut(), running.terminal.as_ref()) else {
            return;
        };
        let mut buf = [0u8; 4096];
        match nix::unistd::read(&a.stdin, &mut buf) {
            Ok(0) => a.relaying = false,
            Ok(n) => {
                let _ = nix::unistd::write(master, &buf[..n]);
            }
            Err(nix::Error::EAGAIN | nix::Error::EINTR) => {}
            Err(_) => a.relaying = false,
        }
    }

    /// Attached with a terminal: the caller's window size, given to the container's.
    fn follow_window_size(&self, running: &Running) {
        if let (Some(a), Some(master)) = (&self.attached, &running.terminal) {
            if let Ok(size) = sys::window_size(a.stdin.as_fd()) {
                let _ = sys::set_window_size(master.as_fd(), &size);
            }
        }
    }

    /// Reads what is left in the output pipes after the container's processes are gone.
    fn drain_output(&mut self, running: &mut Running, diag: &mut Option<File>) {
        let end = Instant::now() + Duration::from_secs(2);
        while !running.output.is_empty() && Instant::now() < end {
            self.pump_output(running, diag);
            if running.output.is_empty() {
                break;
            }
            let mut fds: Vec<PollFd> = running
                .output
                .iter()
                .map(|(fd, _)| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
                .collect();
            let _ = poll(&mut fds, PollTimeout::from(100u16));
        }
        if let Some(log) = self.log.as_mut() {
            let _ = log.flush_partial(SystemTime::now());
        }
        running.output.clear();
    }

    // --- health checks ----------------------------------------------------------------

    fn first_probe_at(&self, running: &Running) -> Option<Instant> {
        let spec = self.config.spec.healthcheck.as_ref()?;
        let health = self.health.as_ref()?;
        Some(running.started + health.next_probe_in(spec, Duration::ZERO))
    }

    fn after_probe_at(&self, running: &Running) -> Instant {
        match (self.config.spec.healthcheck.as_ref(), self.health.as_ref()) {
            (Some(spec), Some(h)) => {
                Instant::now() + h.next_probe_in(spec, running.started.elapsed())
            }
            _ => Instant::now() + Duration::from_secs(3600),
        }
    }

    fn probe_deadline(&self, p: &ProbeRun) -> Instant {
        let timeout = self
            .config
            .spec
            .healthcheck
            .as_ref()
            .map_or(Duration::from_secs(30), |h| h.timeout);
        p.started + timeout
    }

    fn spawn_probe(&self) -> Result<ProbeRun, String> {
        let spec = self
            .config
            .spec
            .healthcheck
            .as_ref()
            .ok_or("no health check")?;
        let request = super::nsexec::Request {
            args: spec.args.clone(),
            probe: true,
            ..Default::default()
        };
        let (r, w) = pipe()?;
        let w2 = w.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(format!("/proc/self/fd/{}", self.exe.as_raw_fd()));
        cmd.arg0("wharf-probe")
            .arg("__nsexec")
            .arg(self.dir.path())
            .arg(serde_json::to_string(&request).map_err(|e| e.to_string())?)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::from(w))
            .stderr(Stdio::from(w2));
        let child = cmd.spawn().map_err(|e| e.to_string())?;
        Ok(ProbeRun {
            child,
            started: Instant::now(),
            output: Vec::new(),
            pipe: Some(r),
        })
    }

    fn record_probe(
        &mut self,
        running: &Running,
        done: &ProbeRun,
        code: Option<i32>,
        diag: &mut Option<File>,
    ) {
        let (Some(spec), Some(health)) =
            (self.config.spec.healthcheck.as_ref(), self.health.as_mut())
        else {
            return;
        };
        let probe = Probe {
            at: done.started.duration_since(running.started),
            exit_code: code,
            output: String::from_utf8_lossy(&done.output).into_owned(),
        };
        health.record(spec, probe);
        self.state.health = Some(health.clone());
        self.save(diag);
    }
}

fn read_probe_output(p: &mut ProbeRun) {
    let Some(fd) = p.pipe.as_ref() else { return };
    let mut buf = [0u8; 4096];
    loop {
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) => {
                p.pipe = None;
                return;
            }
            Ok(n) => {
                let room = PROBE_OUTPUT.saturating_sub(p.output.len());
                p.output.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(_) => return,
        }
    }
}

fn humantime(d: Option<Duration>) -> String {
    d.map(|d| crate::compose::model::Duration(d).to_string())
        .unwrap_or_default()
}

/// A pipe; both ends close on exec.
fn blocking_pipe() -> Result<(OwnedFd, OwnedFd), String> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))
}

/// The terminal's master, as the init sends it over the console socket; `None` when the
/// init went away first.
fn receive_terminal(console: &std::os::unix::net::UnixStream) -> Option<OwnedFd> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut byte = [0u8; 1];
    let mut iov = [io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        console.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ok()?;
    let mut received = msg.cmsgs().ok()?.filter_map(|c| match c {
        ControlMessageOwned::ScmRights(fds) => Some(fds),
        _ => None,
    });
    let mut fds = received.next()?.into_iter().map(sys::take_fd);
    let master = fds.next();
    // Anything more than the one descriptor is closed as it drops.
    drop(fds);
    master
}

/// A pipe whose read end does not block; both ends close on exec.
fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    set_cloexec_nonblock(&r)?;
    Ok((r, w))
}

fn set_cloexec_nonblock(fd: &OwnedFd) -> Result<(), String> {
    let flags = nix::fcntl::fcntl(fd.as_fd(), FcntlArg::F_GETFL).map_err(|e| e.to_string())?;
    nix::fcntl::fcntl(
        fd.as_fd(),
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map_err(|e| e.to_string())?;
    nix::fcntl::fcntl(
        fd.as_fd(),
        FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// Starts a supervisor for the container in `dir` and waits for the outcome of its first
/// start. The supervisor is `exe` re-executed (never a fork of the caller, which may run a
/// tokio runtime), in a new session, with its standard streams on `/dev/null` — or, when
/// `attached`, on ours, for the container (see [`Attached`]).
pub fn launch(exe: &Path, dir: &Path, attached: bool) -> Result<(), String> {
    let (ready_r, ready_w) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let ready_fd = ready_w.as_raw_fd();
    let mut cmd = Command::new(exe);
    let stream = || {
        if attached {
            Stdio::inherit()
        } else {
            Stdio::null()
        }
    };
    cmd.arg0("wharf-supervisor")
        .arg("__supervise")
        .arg(dir)
        .args(attached.then_some("--attached"))
        .stdin(stream())
        .stdout(stream())
        .stderr(stream())
        // It may outlive us by months: it keeps none of our environment and no directory
        // of ours busy.
        .env_clear()
        .current_dir("/");
    sys::before_exec(&mut cmd, move || {
        nix::unistd::setsid().map_err(io::Error::from)?;
        sys::dup2_to(ready_fd, READY_FD)?;
        Ok(())
    });
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("starting the supervisor {}: {e}", exe.display()))?;
    drop(cmd);
    drop(ready_w);
    let mut answer = String::new();
    let _ = File::from(ready_r).read_to_string(&mut answer);
    // The supervisor stays; its parent (us) may exit any time. Reap it only if it is
    // already gone, so that no zombie stays while we run.
    let _ = child.try_wait();
    match answer.trim() {
        "ok" => Ok(()),
        "" => Err(format!(
            "the supervisor exited without starting the container (see {})",
            PathBuf::from(dir).join("supervisor.log").display()
        )),
        other => Err(other.strip_prefix("error: ").unwrap_or(other).to_string()),
    }
}
