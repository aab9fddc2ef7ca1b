//! The runtime's raw system calls: the few that `nix` does not wrap (`open_tree`,
//! `mount_setattr`, `setdomainname`, the terminal ioctls) and the process-creation primitives whose
//! contracts Rust cannot check (`fork`, `pre_exec`). This is the only file of the runtime
//! with `unsafe`; every block says why it is sound. Nothing here decides anything: callers
//! (`supervisor`, `init`, `nsexec`) own the sequencing.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use nix::unistd::{ForkResult, Pid};

// From <linux/mount.h>; not every libc version exports them at its root.
const OPEN_TREE_CLONE: libc::c_uint = 0x1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn mount_setattr(dirfd: RawFd, path: &CString, flags: libc::c_uint, set: u64) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `path` is a valid NUL-terminated string and `attr` a live, correctly sized
    // `struct mount_attr`; the kernel only reads both during the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The CVE-2019-5736 defence. Returns a file descriptor for the running binary on a private,
/// *read-only*, detached bind mount (`open_tree(OPEN_TREE_CLONE)` + `mount_setattr`).
///
/// Every wharf process that ends up inside a container (the container's init, `exec`,
/// health probes) is executed through this descriptor (`/proc/self/fd/N`), so its
/// `/proc/<pid>/exe` names a file on a read-only mount: a container that reopens that link
/// for writing (the attack: a `#!/proc/self/exe` entrypoint makes the kernel run wharf
/// inside the container, whose root then opens its exe) gets `EROFS`, and remounting it
/// writable needs `CAP_SYS_ADMIN`, which a container lacks. The mount is in no mount table
/// (no mount namespace holds it), so nothing is added to the host and the kernel frees it
/// with the last reference. Copying the binary into a sealed memfd (runc's older answer)
/// would do too, but costs a 100+ MB copy per container with a debug build.
pub fn readonly_self_exe() -> io::Result<OwnedFd> {
    readonly_view(Path::new("/proc/self/exe"))
}

/// [`readonly_self_exe`] for the binary at `path` (a caller that is not wharf itself, such
/// as a test, starting wharf's helpers).
pub fn readonly_view(path: &Path) -> io::Result<OwnedFd> {
    let exe = cpath(path)?;
    // SAFETY: `exe` is a valid C string; open_tree returns a new descriptor or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            exe.as_ptr(),
            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let empty = CString::new("").expect("no NUL");
    mount_setattr(
        fd.as_raw_fd(),
        &empty,
        libc::AT_EMPTY_PATH as libc::c_uint,
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID,
    )?;
    Ok(fd)
}

/// Makes the mount at `path` and every mount below it read-only (`bind.recursive:
/// readonly`): `MS_REMOUNT|MS_RDONLY` would change only the top mount.
pub fn make_recursively_readonly(path: &Path) -> io::Result<()> {
    mount_setattr(
        libc::AT_FDCWD,
        &cpath(path)?,
        libc::AT_RECURSIVE as libc::c_uint,
        MOUNT_ATTR_RDONLY,
    )
}

/// `setdomainname(2)`, which nix does not wrap.
pub fn set_domainname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, valid for the call.
    let rc = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes the terminal on `fd` the calling session leader's controlling terminal.
pub fn set_controlling_terminal(fd: RawFd) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument (0: do not steal); no memory is passed.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The window size of the terminal on `fd` (`TIOCGWINSZ`).
pub fn window_size(fd: BorrowedFd<'_>) -> io::Result<nix::pty::Winsize> {
    let mut size = nix::pty::Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` into `size`, which is live and of
    // that type for the whole call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(size)
}

/// Sets the window size of the terminal on `fd` (`TIOCSWINSZ`); the kernel sends
/// `SIGWINCH` to the terminal's foreground process group when it changes.
pub fn set_window_size(fd: BorrowedFd<'_>, size: &nix::pty::Winsize) -> io::Result<()> {
    // SAFETY: TIOCSWINSZ only reads one `struct winsize` from `size`, live for the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, size) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Runs `hook` in the child between `fork` and `exec` of `command`.
///
/// The callers are wharf's own single-threaded helper processes (the supervisor), and the
/// hooks make only raw system calls (`unshare`, `setns`, `setsid`, `prctl`), which are
/// async-signal-safe: no allocation, no lock.
pub fn before_exec<F>(command: &mut Command, hook: F)
where
    F: FnMut() -> io::Result<()> + Send + Sync + 'static,
{
    // SAFETY: see above; the hook neither allocates nor takes locks, so it is safe in the
    // forked child even if the parent had other threads.
    unsafe {
        command.pre_exec(hook);
    }
}

/// Restores the default disposition of `signal` (what a fresh process has).
pub fn default_signal(signal: nix::sys::signal::Signal) -> nix::Result<()> {
    use nix::sys::signal::SigHandler;
    // SAFETY: SIG_DFL installs no handler, so no code of ours can ever run in signal
    // context because of this call.
    unsafe { nix::sys::signal::signal(signal, SigHandler::SigDfl) }.map(drop)
}

/// `fork(2)` for wharf's single-threaded helper processes (the container init with
/// `init: true`, `nsexec`). Returns `None` in the child.
///
/// Callers must be single-threaded: these processes are fresh executions of the binary
/// that never start a thread, so the child inherits no lock held by another thread.
pub fn fork_single_threaded() -> io::Result<Option<Pid>> {
    // 0: /proc is not ours to read (after entering a container's mount namespace).
    debug_assert!(thread_count() <= 1, "fork from a multi-threaded process");
    // SAFETY: the caller is single-threaded (documented contract above), so the child can
    // safely run arbitrary code, including allocation.
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        ForkResult::Parent { child } => Ok(Some(child)),
        ForkResult::Child => Ok(None),
    }
}

/// How many threads the calling process has (from `/proc/self/status`), for the
/// single-threaded assertions above.
pub fn thread_count() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Takes ownership of descriptor `fd`: one a parent handed down at a fixed number (the
/// init's sync and error pipes; callers check it is open with `fcntl` first), or one a
/// system call has just made for the caller (`F_DUPFD_CLOEXEC`, a descriptor received with
/// `SCM_RIGHTS`). The caller must know that `fd` is open and that nothing else in the
/// process owns it.
pub fn take_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: per the contract above, `fd` is open and owned by no other object.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Borrows descriptor `fd` for the life of the process: for descriptors that are never
/// closed while borrowed (the handed-down pipes before they are taken).
pub fn borrow_fd(fd: RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: callers only borrow descriptors they know to be open (see `take_fd`), and
    // use the borrow before the descriptor is closed.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

/// `dup2(old, new)` for `pre_exec` hooks: async-signal-safe, and when `old` already is
/// `new` it clears close-on-exec instead (`dup2` would leave the flag set).
pub fn dup2_to(old: RawFd, new: RawFd) -> io::Result<()> {
    // SAFETY: plain system calls on descriptor numbers; no memory is passed.
    let rc = unsafe {
        if old == new {
            libc::fcntl(new, libc::F_SETFD, 0)
        } else {
            libc::dup2(old, new)
        }
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Brings the loopback interface of the calling process's network namespace up. A new
/// network namespace has `lo` down, and every container (`network_mode: none` included)
/// expects `127.0.0.1` to work.
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: a plain socket(2); the result is checked and owned right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned `fd`; nothing else owns it.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `ifreq` is plain old data; all-zero is a valid value for it.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the `ifreq` we pass, which lives
    // across both calls; the union's flags member is the one these requests use.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Loads a classic BPF program as the calling thread's seccomp filter with
/// `seccomp(SECCOMP_SET_MODE_FILTER)`. Unlike `seccompiler::apply_filter`, it does not set
/// no-new-privs: Docker loads its filter while the init still holds `CAP_SYS_ADMIN` and
/// sets no-new-privs only when asked (`security_opt: no-new-privileges`).
pub fn seccomp_set_filter(program: &[seccompiler::sock_filter]) -> io::Result<()> {
    #[repr(C)]
    struct SockFprog {
        len: libc::c_ushort,
        filter: *const seccompiler::sock_filter,
    }
    let len = libc::c_ushort::try_from(program.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "BPF program too long"))?;
    let prog = SockFprog {
        len,
        filter: program.as_ptr(),
    };
    // SAFETY: `prog` points at `program`, which outlives the call; the kernel copies the
    // instructions and keeps no pointer into our memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const SockFprog,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A copy of the mount at `path` as process `pid` sees it, detached (in no mount table),
/// for [`attach_mount`]. `mount --bind /proc/<pid>/root/...` cannot do this: the kernel
/// refuses to bind a mount of another mount namespace. So the calling process enters
/// `pid`'s mount namespace, clones the mount there with `open_tree(OPEN_TREE_CLONE)`, and
/// comes back to its own. The caller must be single-threaded (the container's init).
pub fn clone_foreign_mount(pid: i32, path: &str) -> io::Result<OwnedFd> {
    use nix::sched::{CloneFlags, setns};
    let own = std::fs::File::open("/proc/self/ns/mnt")?;
    let theirs = std::fs::File::open(format!("/proc/{pid}/ns/mnt"))?;
    let cwd = std::env::current_dir()?;
    setns(&theirs, CloneFlags::CLONE_NEWNS)?;
    let cpath = CString::new(path)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"));
    let cloned = cpath.and_then(|p| {
        // SAFETY: `p` is a valid C string; open_tree returns a new descriptor or -1.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_open_tree,
                libc::AT_FDCWD,
                p.as_ptr(),
                OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC,
            )
        };
        if fd < 0 {
            Err(io::Error::last_os_error())
        } else {
            // SAFETY: the kernel just returned this descriptor; nothing else owns it.
            Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
        }
    });
    // Coming back must work, or we would go on building the container in another's
    // namespace.
    setns(&own, CloneFlags::CLONE_NEWNS).expect("returning to our own mount namespace");
    std::env::set_current_dir(cwd)?;
    cloned
}

/// Attaches a detached mount (from [`clone_foreign_mount`]) at `target`.
pub fn attach_mount(mount: &OwnedFd, target: &Path) -> io::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    let empty = CString::new("").expect("no NUL");
    let target = cpath(target)?;
    // SAFETY: both strings are valid C strings and `mount` an open descriptor; the kernel
    // reads them during the call only.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
