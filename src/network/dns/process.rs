//! The control side of the responder, used by the network layer (any wharf command):
//! write the records file, start the responder when the first network needs it, signal
//! it to reload (SIGHUP), stop it when the last network is gone.
//!
//! The files, all under `<root>/network/`: `dns.json` (the records), `dns.pid` (the
//! responder's [`ProcRef`], written by the responder once it listens), `dns.log` (its
//! standard error) and `dns.lock` (held while starting or stopping, so two wharf commands
//! at once never start two responders). A recorded process is only ever signalled after
//! [`ProcRef::is_alive`] confirmed it is the very process recorded, never a recycled PID.
//! This module starts processes only by re-executing wharf (`std::process::Command`,
//! fork+exec), never by forking the caller, which may run a tokio runtime.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::Options;
use super::records::Records;
use crate::runtime::container::ProcRef;

/// How long a stopping responder gets before SIGKILL; it exits on SIGTERM at once.
const STOP_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
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
    #[error("starting the DNS responder {exe}: {source}")]
    Spawn {
        exe: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the DNS responder did not start: {message} (see {log})")]
    Start { message: String, log: PathBuf },
    #[error("signalling the DNS responder (pid {pid}): {source}")]
    Signal {
        pid: i32,
        #[source]
        source: nix::Error,
    },
    #[error("the DNS responder (pid {pid}) did not exit")]
    Stuck { pid: i32 },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> DnsError {
    let path = path.to_path_buf();
    move |source| DnsError::Io { op, path, source }
}

/// `<root>/network`, where the responder's files live.
pub fn dir(root: &Path) -> PathBuf {
    root.join("network")
}

pub fn records_path(root: &Path) -> PathBuf {
    dir(root).join("dns.json")
}

pub fn pid_path(root: &Path) -> PathBuf {
    dir(root).join("dns.pid")
}

/// The generation of the records the responder serves now.
pub fn loaded_path(root: &Path) -> PathBuf {
    dir(root).join("dns.loaded")
}

pub fn log_path(root: &Path) -> PathBuf {
    dir(root).join("dns.log")
}

fn lock_path(root: &Path) -> PathBuf {
    dir(root).join("dns.lock")
}

/// Replaces the records file atomically (a sibling, renamed over it): the responder
/// rereads it on SIGHUP and must never see half of it.
pub fn write_records(root: &Path, records: &Records) -> Result<(), DnsError> {
    let dir = dir(root);
    fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
    let path = records_path(root);
    crate::state::replace_file(&path, &records.to_json()).map_err(io_err("replacing", &path))
}

/// The records file; no file means no records.
pub fn read_records(root: &Path) -> Result<Records, DnsError> {
    let path = records_path(root);
    match fs::read(&path) {
        Ok(bytes) => {
            Records::from_json(&bytes).map_err(|source| DnsError::Corrupt { path, source })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Records::default()),
        Err(e) => Err(io_err("reading", &path)(e)),
    }
}

/// The recorded responder, if it is alive (a stale pid file is ignored).
pub fn running(root: &Path) -> Result<Option<ProcRef>, DnsError> {
    let path = pid_path(root);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("reading", &path)(e)),
    };
    // A torn or foreign pid file names no process we may signal.
    let proc: Option<ProcRef> = serde_json::from_slice(&bytes).ok();
    Ok(proc.filter(ProcRef::is_alive))
}

/// Writes `records` and brings the responder in line with them: started (or reloaded)
/// while any network has records, stopped when none has. What the network layer calls
/// after every change; returns the running responder.
pub fn sync(root: &Path, exe: &Path, records: &Records) -> Result<Option<ProcRef>, DnsError> {
    sync_with(root, exe, records, true)
}

/// [`sync`]; with `confirmed: false` it does not wait for the responder to confirm the
/// reload (after a removal: a name answering a few milliseconds longer harms nobody, and
/// `down` removes many sandboxes in a row).
pub fn sync_with(
    root: &Path,
    exe: &Path,
    records: &Records,
    confirmed: bool,
) -> Result<Option<ProcRef>, DnsError> {
    // A generation no earlier write used: the time in nanoseconds.
    let generation = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let records = Records {
        generation,
        ..records.clone()
    };
    write_records(root, &records)?;
    if records.networks.is_empty() {
        stop(root)?;
        return Ok(None);
    }
    let _lock = lock(root)?;
    match running(root)? {
        Some(proc) => {
            signal(proc, Signal::SIGHUP)?;
            // SIGHUP is asynchronous; wait until the new names answer, so a container
            // started right after its sandbox finds its peers. A responder that does not
            // confirm within the limit is left to catch up (logged by it, not fatal here).
            if confirmed {
                wait_loaded(root, generation, RELOAD_WAIT);
            }
            Ok(Some(proc))
        }
        None => start(root, exe, &Options::default()).map(Some),
    }
}

/// How long [`sync`] waits for the responder to confirm a reload.
const RELOAD_WAIT: Duration = Duration::from_secs(2);

fn wait_loaded(root: &Path, generation: u64, limit: Duration) -> bool {
    let path = loaded_path(root);
    let deadline = Instant::now() + limit;
    loop {
        let loaded = fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok());
        if loaded == Some(generation) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Starts the responder with the real port and resolvers unless it runs.
pub fn ensure_running(root: &Path, exe: &Path) -> Result<ProcRef, DnsError> {
    ensure_running_with(root, exe, &Options::default())
}

/// [`ensure_running`] with explicit options (tests: a high port, their own resolv.conf).
/// Returns once the responder listens on every address of the records file.
pub fn ensure_running_with(
    root: &Path,
    exe: &Path,
    options: &Options,
) -> Result<ProcRef, DnsError> {
    let _lock = lock(root)?;
    match running(root)? {
        Some(proc) => Ok(proc),
        None => start(root, exe, options),
    }
}

/// Asks the responder to reread the records file. `false`: none runs (nothing to do;
/// the next start reads the file anyway).
pub fn reload(root: &Path) -> Result<bool, DnsError> {
    match running(root)? {
        Some(proc) => signal(proc, Signal::SIGHUP).map(|()| true),
        None => Ok(false),
    }
}

/// Stops the responder (SIGTERM, SIGKILL after a grace period) and waits until it is
/// gone; removes the pid file. Nothing running is success.
pub fn stop(root: &Path) -> Result<(), DnsError> {
    let _lock = lock(root)?;
    if let Some(proc) = running(root)? {
        signal(proc, Signal::SIGTERM)?;
        if !wait_gone(proc, STOP_GRACE) {
            signal(proc, Signal::SIGKILL)?;
            if !wait_gone(proc, STOP_GRACE) {
                return Err(DnsError::Stuck { pid: proc.pid });
            }
        }
    }
    let _ = fs::remove_file(loaded_path(root));
    let path = pid_path(root);
    match fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("removing", &path)(e)),
        _ => Ok(()),
    }
}

fn wait_gone(proc: ProcRef, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        // If we started it ourselves it is our child: reap it, or it stays a zombie
        // (which `is_alive` already counts as gone) until we exit.
        let _ = nix::sys::wait::waitpid(
            Pid::from_raw(proc.pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
        if !proc.is_alive() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Signals `proc` if it is still the process recorded.
fn signal(proc: ProcRef, signal: Signal) -> Result<(), DnsError> {
    if !proc.is_alive() {
        return Ok(());
    }
    match kill(Pid::from_raw(proc.pid), signal) {
        Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
        Err(source) => Err(DnsError::Signal {
            pid: proc.pid,
            source,
        }),
    }
}

/// The host-wide (per state root) lock on starting and stopping, released on drop.
fn lock(root: &Path) -> Result<Flock<File>, DnsError> {
    let dir = dir(root);
    fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
    let path = lock_path(root);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err("opening", &path))?;
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| DnsError::Io {
        op: "locking",
        path,
        source: errno.into(),
    })
}

/// Starts the responder and waits until it listens. Its standard output is a pipe to us:
/// it writes `ok` once every listener is bound and its pid file written (or `error: …`),
/// then points its standard output at its log, closing the pipe. Standard error is the
/// log from the start. It calls `setsid` itself: a session of its own keeps it out of the
/// terminal's signals (Ctrl-C of the `wharf up` that started it), and doing it in the
/// child needs no `pre_exec` hook.
fn start(root: &Path, exe: &Path, options: &Options) -> Result<ProcRef, DnsError> {
    let log = log_path(root);
    let log_file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(io_err("opening", &log))?;
    let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| io_err("creating a pipe for", &log)(e.into()))?;
    let mut child = Command::new(exe)
        .arg0("wharf-dns")
        .arg("__dns")
        .arg(root)
        .args(options.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::from(ready_w))
        .stderr(log_file)
        // It may outlive us by months: none of our environment, no directory of ours busy.
        .env_clear()
        .current_dir("/")
        .spawn()
        .map_err(|source| DnsError::Spawn {
            exe: exe.to_path_buf(),
            source,
        })?;
    let mut answer = String::new();
    let _ = File::from(ready_r).read_to_string(&mut answer);
    let failed = |message: String| DnsError::Start {
        message,
        log: log.clone(),
    };
    match answer.trim() {
        "ok" => {
            // Ready and still ours: if it had exited, there would be no ok.
            let pid = i32::try_from(child.id()).map_err(|_| failed("no pid".into()))?;
            ProcRef::of(pid).ok_or_else(|| failed("it exited after starting".into()))
        }
        other => {
            let _ = child.wait();
            Err(failed(match other.strip_prefix("error: ") {
                Some(message) => message.to_string(),
                None => "it exited without a word".into(),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::dns::records::NetworkRecords;

    #[test]
    fn records_are_replaced_whole_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_records(dir.path()).unwrap(), Records::default());
        let records = Records {
            networks: vec![NetworkRecords {
                id: "p_default".into(),
                listen: vec!["10.0.0.1".parse().unwrap()],
                entries: vec![],
            }],
            generation: 7,
        };
        write_records(dir.path(), &records).unwrap();
        assert_eq!(read_records(dir.path()).unwrap(), records);
        let names: Vec<_> = fs::read_dir(super::dir(dir.path()))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["dns.json"], "no temporary file left");
        fs::write(records_path(dir.path()), "{").unwrap();
        assert!(matches!(
            read_records(dir.path()),
            Err(DnsError::Corrupt { .. })
        ));
    }

    #[test]
    fn a_recycled_pid_is_never_signalled() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(super::dir(dir.path())).unwrap();
        // Our own pid, with another start time: the recorded responder is gone and this
        // process merely has its number. A SIGHUP would kill the test.
        let me = ProcRef::of(std::process::id() as i32).unwrap();
        let recycled = ProcRef {
            start_time: me.start_time + 1,
            ..me
        };
        fs::write(pid_path(dir.path()), serde_json::to_vec(&recycled).unwrap()).unwrap();
        assert_eq!(running(dir.path()).unwrap(), None);
        assert!(!reload(dir.path()).unwrap());
        stop(dir.path()).unwrap();
        assert!(
            !pid_path(dir.path()).exists(),
            "the stale pid file is removed"
        );
        fs::write(pid_path(dir.path()), "not json").unwrap();
        assert_eq!(running(dir.path()).unwrap(), None);
    }
}
