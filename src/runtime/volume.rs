//! Volumes on the host, as Docker's `local` driver keeps them: each named or anonymous volume
//! is a directory `<state root>/volumes/<name>/_data` that the runtime bind-mounts into
//! containers. [`Volumes`] creates (idempotently, safe against concurrent wharf processes),
//! lists and removes them; [`seed`] is Docker's copy-up, which fills an empty volume with what
//! the image has at the mount destination the first time it is mounted there. It must not
//! touch anything outside the volume's directory and the source tree it copies: it never
//! follows a symlink out of either tree (every entry is opened relative to its parent's file
//! descriptor with `O_NOFOLLOW`, symlinks are copied as links, removal never follows them), and
//! it never descends into another filesystem mounted inside the source. It holds no locks and
//! keeps no metadata besides the directories: which container uses which volume, and whether
//! a volume may be removed while in use, is the caller's business.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, DirBuilder, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, open, openat, readlinkat};
use nix::sys::stat::{
    FchmodatFlags, FileStat, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, fstat, fstatat,
    futimens, mkdirat, mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, symlinkat, unlinkat};
use xattr::FileExt;

use crate::image::unpack::{dir_flags, is_kind, join, open_existing};

/// What went wrong with a volume. `volume` is the volume's name; `path` a path on the host.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("invalid volume name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("volume {volume}: cannot {op} {path}: {source}")]
    Io {
        volume: String,
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot list the volumes in {path}: {source}")]
    List {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `path` is in the source tree or in the volume, whichever was being touched.
    #[error("cannot seed a volume: cannot {op} {path}: {source}")]
    Seed {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The volumes under one state root (`<state root>/volumes`).
#[derive(Debug, Clone)]
pub struct Volumes {
    root: PathBuf,
}

impl Volumes {
    pub fn new(state_root: &Path) -> Volumes {
        Volumes {
            root: state_root.join("volumes"),
        }
    }

    /// Creates the volume if it is missing and returns its data directory. The volumes
    /// directory is 0701 (as Docker's: traversable, not listable), the volume's directory and
    /// `_data` 0755, owned by the caller (root); an existing directory is left as it is (a
    /// seeded `_data` carries the image's owner and mode). Idempotent, and safe when several
    /// processes ensure the same volume at once (losing a `mkdir` race is fine); it also
    /// completes a volume whose creation was interrupted. Something other than a directory
    /// where one of these directories should be (a file, a symlink) is an error.
    pub fn ensure(&self, name: &str) -> Result<PathBuf, VolumeError> {
        let data = self.data_dir(name)?;
        let io = |op, path: &Path, source| VolumeError::Io {
            volume: name.to_string(),
            op,
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = self.root.parent() {
            fs::create_dir_all(parent).map_err(|e| io("create", parent, e))?;
        }
        let dir = self.root.join(name);
        for (path, mode) in [(&self.root, 0o701), (&dir, 0o755), (&data, 0o755)] {
            make_dir(path, mode).map_err(|e| io("create", path, e))?;
        }
        Ok(data)
    }

    /// Where the volume's data is (whether or not it exists). Validates the name, nothing else.
    pub fn data_dir(&self, name: &str) -> Result<PathBuf, VolumeError> {
        validate(name)?;
        Ok(self.root.join(name).join("_data"))
    }

    /// Whether the volume's directory exists (an invalid name never does).
    pub fn exists(&self, name: &str) -> bool {
        validate(name).is_ok()
            && fs::symlink_metadata(self.root.join(name)).is_ok_and(|m| m.is_dir())
    }

    /// The names of all volumes, sorted: the directories under the volumes directory whose
    /// names are valid volume names (anything else there is not a volume). None when the
    /// volumes directory does not exist yet.
    pub fn list(&self) -> Result<Vec<String>, VolumeError> {
        let err = |source| VolumeError::List {
            path: self.root.clone(),
            source,
        };
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(err(e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(err)?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            // DirEntry::file_type does not follow symlinks.
            if validate(&name).is_ok() && entry.file_type().map_err(err)?.is_dir() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Removes the volume and all its data; a volume that does not exist is already removed.
    /// A container may have left symlinks in the data (`_data/x -> /etc`): they are removed
    /// themselves, never followed. `std::fs::remove_dir_all` guarantees that on Linux: it walks
    /// the tree with `openat(O_NOFOLLOW)` and `unlinkat` relative to each directory's
    /// descriptor, so a symlink, even one swapped in while it runs, is unlinked and not entered
    /// (the fix for CVE-2022-21658, Rust 1.58.1). It does not check whether a container still
    /// uses the volume.
    pub fn remove(&self, name: &str) -> Result<(), VolumeError> {
        validate(name)?;
        let dir = self.root.join(name);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(VolumeError::Io {
                volume: name.to_string(),
                op: "remove",
                path: dir,
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

/// Docker's local driver's rule (`validateName`): `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, so at least two
/// characters, and nothing that could name another directory (`/`, `..`, a leading `.`).
/// Longer than 255 bytes is refused too: no filesystem takes such a name.
fn validate(name: &str) -> Result<(), VolumeError> {
    let mut bytes = name.bytes();
    let reason = match bytes.next() {
        None => Some("it is empty"),
        Some(b) if !b.is_ascii_alphanumeric() => Some("it must start with a letter or a digit"),
        Some(_) if name.len() == 1 => Some("it must be at least two characters long"),
        Some(_) if name.len() > 255 => Some("it is longer than 255 bytes"),
        Some(_) if !bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) => {
            Some("only letters, digits, `_`, `.` and `-` are allowed")
        }
        Some(_) => None,
    };
    match reason {
        Some(reason) => Err(VolumeError::InvalidName {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Creates `path` with exactly `mode` (not narrowed by the umask). Someone else creating it
/// first is fine when it is a directory; a symlink or anything else there is an error.
fn make_dir(path: &Path, mode: u32) -> io::Result<()> {
    match DirBuilder::new().mode(mode).create(path) {
        Ok(()) => fs::set_permissions(path, fs::Permissions::from_mode(mode)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if fs::symlink_metadata(path)?.is_dir() {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    "it exists and is not a directory",
                ))
            }
        }
        Err(e) => Err(e),
    }
}

/// Docker's copy-up: when the directory `dst` (a volume's data dir, or a subpath in it) is empty
/// and `src` (in the container's root filesystem, at the mount destination) is a directory,
/// copies `src`'s content into `dst` and gives `dst` `src`'s owner, mode, xattrs and times, as
/// Docker does (`copyExistingContents`, containerd's `fs.CopyDir`). Returns whether it copied;
/// it does nothing when `dst` is not empty, or when `src` is missing, not a directory, or a
/// symlink (the caller resolves the destination inside the root filesystem first).
///
/// What is copied: directories, regular files (with `copy_file_range` where the kernel can,
/// through `std::io::copy`'s specialisation for files), symlinks as links (their targets are
/// never looked at), FIFOs and device nodes, and hard links within `src` as hard links. Each
/// keeps its numeric owner, its mode with the setuid/setgid/sticky bits, its access and
/// modification times and its xattrs (so POSIX ACLs and file capabilities too). Sockets are
/// skipped, and so is what another filesystem mounted below `src` holds (the mount point
/// becomes an empty directory, like `cp -x`): to copy what the image has, call this before
/// mounting anything below the destination.
///
/// Xattrs are copied as far as the destination takes them: an `EOPNOTSUPP` (the filesystem has
/// no such namespace, or no xattrs) is skipped, as Docker does, and so is `EPERM`, `EACCES` or
/// `EINVAL` for `security.*` and `trusted.*` names (a label the host's LSM refuses, or no
/// `CAP_SYS_ADMIN`); anything else is an error. Overlayfs does not show its own
/// `trusted.overlay.*` bookkeeping in the merged view, so none of it is copied.
///
/// On error, what was copied so far is removed again (best effort), so that the next attempt
/// finds `dst` empty and seeds it, rather than a half-seeded volume that would never be
/// completed. `dst`'s own metadata is set last. Needs root (`CAP_CHOWN`, `CAP_FOWNER`,
/// `CAP_MKNOD`), and `/proc` for symlinks, FIFOs and devices (their modes and xattrs are set
/// through `/proc/self/fd`, which pins the parent directory). Each directory level holds two
/// file descriptors until it is done, so the depth of `src` is bounded by `RLIMIT_NOFILE`.
pub fn seed(src: &Path, dst: &Path) -> Result<bool, VolumeError> {
    let seed_err = |op, path: &Path, e: Errno| VolumeError::Seed {
        op,
        path: path.to_path_buf(),
        source: e.into(),
    };
    let src_root = match open(src, dir_flags(), Mode::empty()) {
        Ok(fd) => File::from(fd),
        // Missing, not a directory, or a symlink (O_NOFOLLOW says ELOOP): nothing to copy.
        Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => return Ok(false),
        Err(e) => return Err(seed_err("open", src, e)),
    };
    let dst_root = open(dst, dir_flags(), Mode::empty())
        .map(File::from)
        .map_err(|e| seed_err("open", dst, e))?;
    if !read_names(&dst_root, 1)
        .map_err(|e| seed_err("read", dst, e))?
        .is_empty()
    {
        return Ok(false);
    }
    let stat = fstat(&src_root).map_err(|e| seed_err("inspect", src, e))?;
    let mut copier = Copier {
        src,
        dst,
        dst_root,
        dev: stat.st_dev,
        links: HashMap::new(),
    };
    match copier.run(src_root, stat) {
        Ok(()) => Ok(true),
        Err(e) => {
            if let Err(undo) = clear(&copier.dst_root) {
                tracing::warn!(
                    "cannot empty {} again after a failed seed: {undo}",
                    dst.display()
                );
            }
            Err(e)
        }
    }
}

/// One directory being copied: both sides open, the names still to copy, and the source's
/// metadata, which is applied to the copy once its content is in place (creating entries
/// changes a directory's mtime).
struct Frame {
    src: File,
    dst: File,
    stat: FileStat,
    names: std::vec::IntoIter<Vec<u8>>,
}

struct Copier<'a> {
    src: &'a Path,
    dst: &'a Path,
    dst_root: File,
    /// The source root's device: a directory on another one is a mount point.
    dev: u64,
    /// Hard-linked source files already copied, by (device, inode): where their copy is.
    links: HashMap<(u64, u64), Vec<Vec<u8>>>,
}

impl Copier<'_> {
    fn src_err(&self, op: &'static str, comps: &[Vec<u8>], e: impl Into<io::Error>) -> VolumeError {
        VolumeError::Seed {
            op,
            path: join(self.src, comps),
            source: e.into(),
        }
    }

    fn dst_err(&self, op: &'static str, comps: &[Vec<u8>], e: impl Into<io::Error>) -> VolumeError {
        VolumeError::Seed {
            op,
            path: join(self.dst, comps),
            source: e.into(),
        }
    }

    /// Walks the tree depth first with an explicit stack (a deep tree cannot overflow ours);
    /// `comps` is the path of the entry at hand, relative to both roots.
    fn run(&mut self, src_root: File, stat: FileStat) -> Result<(), VolumeError> {
        let names = read_names(&src_root, usize::MAX).map_err(|e| self.src_err("read", &[], e))?;
        let dst = self
            .dst_root
            .try_clone()
            .map_err(|e| self.dst_err("open", &[], e))?;
        let mut stack = vec![Frame {
            src: src_root,
            dst,
            stat,
            names: names.into_iter(),
        }];
        let mut comps: Vec<Vec<u8>> = Vec::new();
        while let Some(top) = stack.last_mut() {
            let Some(name) = top.names.next() else {
                if let Some(done) = stack.pop() {
                    self.apply_fd(&done.src, &done.dst, &done.stat, &comps)?;
                }
                comps.pop();
                continue;
            };
            comps.push(name);
            match self.entry(&top.src, &top.dst, &comps)? {
                Some(frame) => stack.push(frame),
                None => {
                    comps.pop();
                }
            }
        }
        Ok(())
    }

    /// Copies one entry of `sdir` into `ddir`; a directory comes back as a frame to descend into.
    fn entry(
        &mut self,
        sdir: &File,
        ddir: &File,
        comps: &[Vec<u8>],
    ) -> Result<Option<Frame>, VolumeError> {
        let name = OsStr::from_bytes(comps.last().map(Vec::as_slice).unwrap_or_default());
        let st = fstatat(sdir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| self.src_err("inspect", comps, e))?;
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        let linked = kind != SFlag::S_IFDIR && st.st_nlink > 1;
        if linked && let Some(first) = self.links.get(&(st.st_dev, st.st_ino)) {
            self.hard_link(first, ddir, comps)?;
            return Ok(None);
        }
        if kind == SFlag::S_IFDIR {
            return self.directory(sdir, ddir, comps).map(Some);
        } else if kind == SFlag::S_IFREG {
            self.file(sdir, ddir, comps)?;
        } else if kind == SFlag::S_IFLNK {
            let target = readlinkat(sdir, name).map_err(|e| self.src_err("read link", comps, e))?;
            symlinkat(target.as_os_str(), ddir, name)
                .map_err(|e| self.dst_err("create symlink", comps, e))?;
            self.apply_at(sdir, ddir, comps, &st, true)?;
        } else if kind == SFlag::S_IFIFO || kind == SFlag::S_IFCHR || kind == SFlag::S_IFBLK {
            mknodat(
                ddir,
                name,
                kind,
                Mode::from_bits_truncate(0o600),
                st.st_rdev,
            )
            .map_err(|e| self.dst_err("create node", comps, e))?;
            self.apply_at(sdir, ddir, comps, &st, false)?;
        } else {
            // A socket only means something to the process listening on it.
            tracing::debug!("seed: skipping {}", join(self.src, comps).display());
            return Ok(None);
        }
        if linked {
            self.links.insert((st.st_dev, st.st_ino), comps.to_vec());
        }
        Ok(None)
    }

    fn directory(&self, sdir: &File, ddir: &File, comps: &[Vec<u8>]) -> Result<Frame, VolumeError> {
        let name = OsStr::from_bytes(comps.last().map(Vec::as_slice).unwrap_or_default());
        // Private until its metadata is applied, after its content.
        mkdirat(ddir, name, Mode::from_bits_truncate(0o700))
            .map_err(|e| self.dst_err("create directory", comps, e))?;
        let src = openat(sdir, name, dir_flags(), Mode::empty())
            .map(File::from)
            .map_err(|e| self.src_err("open", comps, e))?;
        let dst = openat(ddir, name, dir_flags(), Mode::empty())
            .map(File::from)
            .map_err(|e| self.dst_err("open", comps, e))?;
        let stat = fstat(&src).map_err(|e| self.src_err("inspect", comps, e))?;
        // overlayfs reports its own st_dev for every directory ("so 'find -xdev' will scan the
        // entire overlay mount", fs/overlayfs/inode.c, ovl_getattr), whatever filesystems its
        // layers are on: only a real mount point has another one.
        let names = if stat.st_dev == self.dev {
            read_names(&src, usize::MAX).map_err(|e| self.src_err("read", comps, e))?
        } else {
            tracing::debug!(
                "seed: not descending into the mount point {}",
                join(self.src, comps).display()
            );
            Vec::new()
        };
        Ok(Frame {
            src,
            dst,
            stat,
            names: names.into_iter(),
        })
    }

    fn file(&self, sdir: &File, ddir: &File, comps: &[Vec<u8>]) -> Result<(), VolumeError> {
        let name = OsStr::from_bytes(comps.last().map(Vec::as_slice).unwrap_or_default());
        // O_NONBLOCK: should the entry have become a FIFO since it was inspected, opening it
        // must not wait for a writer (fstat below then refuses it).
        let flags = OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC;
        let mut src = openat(sdir, name, flags, Mode::empty())
            .map(File::from)
            .map_err(|e| self.src_err("open", comps, e))?;
        let stat = fstat(&src).map_err(|e| self.src_err("inspect", comps, e))?;
        if !is_kind(&stat, SFlag::S_IFREG) {
            return Err(self.src_err(
                "copy",
                comps,
                io::Error::other("it stopped being a regular file while being copied"),
            ));
        }
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut dst = openat(ddir, name, flags, Mode::from_bits_truncate(0o600))
            .map(File::from)
            .map_err(|e| self.dst_err("create", comps, e))?;
        io::copy(&mut src, &mut dst).map_err(|e| self.dst_err("copy into", comps, e))?;
        self.apply_fd(&src, &dst, &stat, comps)
    }

    /// Links `comps` to the copy of an earlier name of the same inode. The link's parent is
    /// reopened component by component without following anything; `linkat` without
    /// `AT_SYMLINK_FOLLOW` links a symlink itself.
    fn hard_link(
        &self,
        first: &[Vec<u8>],
        ddir: &File,
        comps: &[Vec<u8>],
    ) -> Result<(), VolumeError> {
        let name = OsStr::from_bytes(comps.last().map(Vec::as_slice).unwrap_or_default());
        let Some((first_name, first_parent)) = first.split_last() else {
            return Err(self.dst_err("hard-link", comps, io::Error::other("no link target")));
        };
        let tdir = open_existing(&self.dst_root, first_parent)
            .map_err(|e| self.dst_err("open", first_parent, e))?;
        linkat(&tdir, first_name.as_slice(), ddir, name, AtFlags::empty())
            .map_err(|e| self.dst_err("hard-link", comps, e))
    }

    /// Metadata of something open on both sides (a regular file, a directory). Owner first:
    /// chown(2) clears setuid/setgid and file capabilities, so the mode and the xattrs come
    /// after it; times last, since the other calls change ctime only.
    fn apply_fd(
        &self,
        src: &File,
        dst: &File,
        st: &FileStat,
        comps: &[Vec<u8>],
    ) -> Result<(), VolumeError> {
        fchown(dst, Some(uid(st)), Some(gid(st))).map_err(|e| self.dst_err("chown", comps, e))?;
        fchmod(dst, mode(st)).map_err(|e| self.dst_err("chmod", comps, e))?;
        self.copy_xattrs(&Node::Fd(src), &Node::Fd(dst), comps)?;
        futimens(dst, &atime(st), &mtime(st)).map_err(|e| self.dst_err("set times of", comps, e))
    }

    /// The same for what cannot be opened harmlessly (symlinks, FIFOs, devices): by name in
    /// the parent, never following the name itself.
    fn apply_at(
        &self,
        sdir: &File,
        ddir: &File,
        comps: &[Vec<u8>],
        st: &FileStat,
        symlink: bool,
    ) -> Result<(), VolumeError> {
        let name = OsStr::from_bytes(comps.last().map(Vec::as_slice).unwrap_or_default());
        fchownat(
            ddir,
            name,
            Some(uid(st)),
            Some(gid(st)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.dst_err("chown", comps, e))?;
        if !symlink {
            // glibc does this through an O_PATH descriptor and /proc/self/fd, refusing a
            // symlink, so a node swapped for a link since it was made cannot redirect it.
            fchmodat(ddir, name, mode(st), FchmodatFlags::NoFollowSymlink)
                .map_err(|e| self.dst_err("chmod", comps, e))?;
        }
        self.copy_xattrs(&Node::at(sdir, name), &Node::at(ddir, name), comps)?;
        utimensat(
            ddir,
            name,
            &atime(st),
            &mtime(st),
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| self.dst_err("set times of", comps, e))
    }

    fn copy_xattrs(&self, src: &Node, dst: &Node, comps: &[Vec<u8>]) -> Result<(), VolumeError> {
        let names = match src.list() {
            Ok(names) => names,
            Err(e) if errno(&e) == Errno::EOPNOTSUPP => return Ok(()),
            Err(e) => return Err(self.src_err("list xattrs of", comps, e)),
        };
        for key in names {
            let value = match src.get(&key) {
                Ok(Some(value)) => value,
                Ok(None) => continue, // removed since it was listed
                Err(e) => return Err(self.src_err("read xattr of", comps, e)),
            };
            match dst.set(&key, &value) {
                Ok(()) => {}
                Err(e) if xattr_refusal_ok(&key, &e) => tracing::debug!(
                    "seed: {} refuses xattr {}: {e}",
                    join(self.dst, comps).display(),
                    key.to_string_lossy()
                ),
                Err(e) => return Err(self.dst_err("set xattr on", comps, e)),
            }
        }
        Ok(())
    }
}

/// Where xattrs are read or written: an open file, or a name in an open directory. The name is
/// reached as `/proc/self/fd/<dir>/<name>` with the `l*xattr` calls, so the directory is the
/// one held open (the magic link is not a path that can be redirected) and the name itself is
/// not followed.
enum Node<'a> {
    Fd(&'a File),
    At(PathBuf),
}

impl Node<'_> {
    fn at(dir: &File, name: &OsStr) -> Node<'static> {
        Node::At(fd_path(dir).join(name))
    }

    fn list(&self) -> io::Result<xattr::XAttrs> {
        match self {
            Node::Fd(f) => f.list_xattr(),
            Node::At(p) => xattr::list(p),
        }
    }

    fn get(&self, key: &OsStr) -> io::Result<Option<Vec<u8>>> {
        match self {
            Node::Fd(f) => f.get_xattr(key),
            Node::At(p) => xattr::get(p, key),
        }
    }

    fn set(&self, key: &OsStr, value: &[u8]) -> io::Result<()> {
        match self {
            Node::Fd(f) => f.set_xattr(key, value),
            Node::At(p) => xattr::set(p, key, value),
        }
    }
}

/// Which refusals to set an xattr are shrugged off (see [`seed`]).
fn xattr_refusal_ok(key: &OsStr, e: &io::Error) -> bool {
    let privileged =
        key.as_bytes().starts_with(b"security.") || key.as_bytes().starts_with(b"trusted.");
    match errno(e) {
        Errno::EOPNOTSUPP => true,
        Errno::EPERM | Errno::EACCES | Errno::EINVAL => privileged,
        _ => false,
    }
}

fn errno(e: &io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(0))
}

/// `/proc/self/fd/<fd>`: the open directory itself, for calls that only take paths.
fn fd_path(dir: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()))
}

/// Up to `max` names in the directory (without `.` and `..`), in the order readdir gives them.
/// Reads through a new open file description, so `dir`'s own offset does not matter.
fn read_names(dir: &File, max: usize) -> Result<Vec<Vec<u8>>, Errno> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut d = Dir::openat(dir, ".", flags, Mode::empty())?;
    let mut names = Vec::new();
    for entry in d.iter() {
        if names.len() >= max {
            break;
        }
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    Ok(names)
}

/// Removes everything in `dir`, following nothing: directories through their
/// `/proc/self/fd/<dir>/<name>` path with `remove_dir_all` (see [`Volumes::remove`]).
fn clear(dir: &File) -> io::Result<()> {
    for name in read_names(dir, usize::MAX)? {
        let name = OsStr::from_bytes(&name);
        let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
        if is_kind(&st, SFlag::S_IFDIR) {
            fs::remove_dir_all(fd_path(dir).join(name))?;
        } else {
            unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)?;
        }
    }
    Ok(())
}

fn uid(st: &FileStat) -> Uid {
    Uid::from_raw(st.st_uid)
}

fn gid(st: &FileStat) -> Gid {
    Gid::from_raw(st.st_gid)
}

fn mode(st: &FileStat) -> Mode {
    Mode::from_bits_truncate(st.st_mode & 0o7777)
}

fn atime(st: &FileStat) -> TimeSpec {
    TimeSpec::new(st.st_atime, st.st_atime_nsec)
}

fn mtime(st: &FileStat) -> TimeSpec {
    TimeSpec::new(st.st_mtime, st.st_mtime_nsec)
}
