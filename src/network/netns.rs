//! Pinned network namespaces: the namespace a container will join, kept alive by a bind
//! mount of its nsfs file (the `ip netns add` shape), and a safe way to run code inside one.
//!
//! `unshare(CLONE_NEWNET)` and `setns` change the namespace of the *calling thread only*, and
//! a thread that has switched keeps the wrong namespace for whatever runs on it next. So this
//! module never switches the caller's thread: every call that enters or makes a namespace
//! spawns a dedicated OS thread, switches that thread, does its work and lets the thread
//! exit. Threads spawned from that thread inherit its namespace, which is what lets the
//! [`netlink`](super::netlink) calls made inside [`run_in`] act on the namespace entered.
//!
//! It owns only the files it is given: it must not touch `/run/netns` or any namespace it
//! did not pin, and it brings nothing up except the namespace's own `lo`.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::thread;

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::statfs;

use super::netlink::{self, NetlinkError};

/// Why a namespace could not be made, entered or removed.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// `create` refuses to adopt a namespace that is already pinned there: a stale one would
    /// silently hand a new container the old container's links and addresses.
    #[error("network namespace {0}: already pinned")]
    Exists(PathBuf),
    #[error("network namespace {path}: {step}: {source}")]
    Io {
        path: PathBuf,
        step: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("network namespace {path}: bringing up lo: {source}")]
    Loopback {
        path: PathBuf,
        #[source]
        source: Box<NetlinkError>,
    },
    #[error("network namespace {0}: the worker thread panicked")]
    Thread(PathBuf),
}

impl NetnsError {
    fn io(path: &Path, step: &'static str) -> impl FnOnce(io::Error) -> NetnsError + use<> {
        let path = path.to_path_buf();
        move |source| NetnsError::Io { path, step, source }
    }

    fn nix(path: &Path, step: &'static str) -> impl FnOnce(nix::Error) -> NetnsError + use<> {
        let io = NetnsError::io(path, step);
        move |errno| io(io::Error::from(errno))
    }
}

/// Makes a new network namespace with `lo` up and pins it at `path` (a file that is created;
/// its directory must exist).
///
/// Returns [`NetnsError::Exists`] when a namespace is already pinned at `path`. An empty
/// plain file there (left by a crash between creating and mounting) is reused. On error,
/// nothing is left behind.
pub fn create(path: &Path) -> Result<(), NetnsError> {
    let created = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(path)
    {
        Ok(_) => true,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if is_pinned(path) {
                return Err(NetnsError::Exists(path.to_path_buf()));
            }
            false
        }
        Err(e) => return Err(NetnsError::io(path, "creating the pin file")(e)),
    };
    let result = on_thread(path, || {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(NetnsError::nix(path, "unshare"))?;
        // A new namespace's `lo` is down; containers expect 127.0.0.1 to work. The netlink
        // call runs on a thread spawned from this one, so it acts on the new namespace.
        netlink::set_link_up("lo").map_err(|source| NetnsError::Loopback {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        // `/proc/thread-self`, not `/proc/self`: only this thread is in the new namespace.
        nix::mount::mount(
            Some("/proc/thread-self/ns/net"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(NetnsError::nix(path, "bind-mounting the namespace"))
    });
    if result.is_err() && created {
        // Best effort: the error that matters is the one being returned.
        let _ = fs::remove_file(path);
    }
    result
}

/// Unpins the namespace at `path` and removes the file. The namespace itself lives on until
/// its last process and link leave it. A missing `path` is `Ok`.
pub fn remove(path: &Path) -> Result<(), NetnsError> {
    // MNT_DETACH: an `open` fd elsewhere (a `run_in` in flight) must not make this fail.
    match nix::mount::umount2(path, MntFlags::MNT_DETACH) {
        // EINVAL: not a mount point (a leftover plain file); ENOENT: already gone.
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(NetnsError::nix(path, "unmounting")(e)),
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetnsError::io(path, "removing the pin file")(e)),
    }
}

/// Runs `f` on a dedicated thread that has joined the namespace pinned at `path`, and
/// returns its result. Sockets `f` opens stay in that namespace after it returns, so a
/// listener made here can be used from anywhere.
pub fn run_in<T: Send>(path: &Path, f: impl FnOnce() -> T + Send) -> Result<T, NetnsError> {
    let ns = File::open(path).map_err(NetnsError::io(path, "opening"))?;
    on_thread(path, move || {
        nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET).map_err(NetnsError::nix(path, "setns"))?;
        Ok(f())
    })
}

/// Whether `path` is an nsfs file, i.e. a namespace is pinned there.
pub fn is_pinned(path: &Path) -> bool {
    statfs::statfs(path).is_ok_and(|s| s.filesystem_type() == statfs::NSFS_MAGIC)
}

/// Runs `f` on a fresh thread that exits afterwards, taking any namespace switch with it.
fn on_thread<T: Send>(
    path: &Path,
    f: impl FnOnce() -> Result<T, NetnsError> + Send,
) -> Result<T, NetnsError> {
    thread::scope(|s| {
        thread::Builder::new()
            .name("wharf-netns".into())
            .spawn_scoped(s, f)
            .map_err(NetnsError::io(path, "spawning a thread"))?
            .join()
            .map_err(|_| NetnsError::Thread(path.to_path_buf()))?
    })
}
