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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, lchown, symlink};
    use std::os::unix::net::UnixListener;

    use nix::fcntl::AT_FDCWD;
    use nix::mount::{MntFlags, MsFlags, mount, umount2};
    use nix::sched::{CloneFlags, unshare};
    use nix::sys::stat::makedev;
    use nix::unistd::mkfifo;
    use tempfile::TempDir;

    fn is_root(what: &str) -> bool {
        if nix::unistd::geteuid().is_root() {
            true
        } else {
            eprintln!("SKIPPED (needs root): {what}");
            false
        }
    }

    fn lmeta(p: &Path) -> fs::Metadata {
        fs::symlink_metadata(p).unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()))
    }

    fn perms(p: &Path) -> u32 {
        lmeta(p).mode() & 0o7777
    }

    fn chmod(p: &Path, mode: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    fn set_mtime(p: &Path, secs: i64, nsec: i64) {
        let t = TimeSpec::new(secs, nsec);
        utimensat(AT_FDCWD, p, &t, &t, UtimensatFlags::NoFollowSymlink).expect("utimensat");
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Whether the filesystem under `dir` takes `user.*` xattrs (tmpfs only since Linux 6.6).
    fn user_xattrs(dir: &Path) -> bool {
        let probe = dir.join("xattr-probe");
        fs::write(&probe, b"").expect("probe");
        let ok = match xattr::set(&probe, "user.probe", b"1") {
            Ok(()) => true,
            Err(e) => {
                eprintln!(
                    "SKIPPED the user.* xattr checks: {} refuses them: {e}",
                    dir.display()
                );
                false
            }
        };
        fs::remove_file(&probe).expect("remove probe");
        ok
    }

    /// A source tree, an empty volume and a file outside both, in one temporary directory.
    struct Tree {
        tmp: TempDir,
        src: PathBuf,
        dst: PathBuf,
        outside: PathBuf,
    }

    fn tree() -> Tree {
        let tmp = tempfile::tempdir().expect("tempdir");
        let src = tmp.path().join("src");
        let dst = tmp.path().join("dst");
        let outside = tmp.path().join("outside");
        fs::create_dir(&src).expect("src");
        fs::create_dir(&dst).expect("dst");
        fs::write(&outside, b"not yours").expect("outside");
        Tree {
            tmp,
            src,
            dst,
            outside,
        }
    }

    #[test]
    fn volume_names_follow_dockers_rule() {
        let long = "a".repeat(255);
        let hex = "f".repeat(64);
        for good in [
            "ab",
            "db",
            "shop_data",
            "a.b-c_d",
            "0x",
            "Data.2024",
            &hex,
            &long,
        ] {
            validate(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        let too_long = "a".repeat(256);
        let bad = [
            ("", "empty"),
            ("a", "two characters"),
            ("..", "start with"),
            (".", "start with"),
            (".hidden", "start with"),
            ("../etc", "start with"),
            ("-x", "start with"),
            ("_x", "start with"),
            ("é1", "start with"),
            ("a/b", "only letters"),
            ("a/..", "only letters"),
            ("a b", "only letters"),
            ("a:b", "only letters"),
            ("aé", "only letters"),
            ("a\0b", "only letters"),
            (&too_long, "255"),
        ];
        for (name, why) in bad {
            let err = validate(name).expect_err(name).to_string();
            assert!(err.contains(&format!("{name:?}")), "{err}");
            assert!(err.contains(why), "{name:?}: {err}");
        }
    }

    #[test]
    fn invalid_names_are_refused_before_anything_is_touched() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let vols = Volumes::new(tmp.path());
        for bad in ["..", "a/b", "", ".x", "../volumes"] {
            assert!(matches!(
                vols.ensure(bad),
                Err(VolumeError::InvalidName { .. })
            ));
            assert!(matches!(
                vols.data_dir(bad),
                Err(VolumeError::InvalidName { .. })
            ));
            assert!(matches!(
                vols.remove(bad),
                Err(VolumeError::InvalidName { .. })
            ));
            assert!(!vols.exists(bad));
        }
        assert!(names(tmp.path()).is_empty());
    }

    #[test]
    fn ensure_creates_the_volume_once() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let state = tmp.path().join("state");
        let vols = Volumes::new(&state);
        assert!(!vols.exists("shop_data"));
        let data = vols.ensure("shop_data").expect("ensure");
        assert_eq!(data, state.join("volumes/shop_data/_data"));
        assert_eq!(vols.data_dir("shop_data").expect("data_dir"), data);
        assert!(vols.exists("shop_data"));
        assert!(lmeta(&data).is_dir());
        assert_eq!(perms(&state.join("volumes")), 0o701);
        assert_eq!(perms(&state.join("volumes/shop_data")), 0o755);
        assert_eq!(perms(&data), 0o755);

        // Again: the data and a mode that seeding gave it stay.
        fs::write(data.join("keep"), b"x").expect("write");
        chmod(&data, 0o700);
        assert_eq!(vols.ensure("shop_data").expect("ensure again"), data);
        assert_eq!(names(&data), ["keep"]);
        assert_eq!(perms(&data), 0o700);
    }

    #[test]
    fn concurrent_ensures_all_succeed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let vols = Volumes::new(tmp.path());
        let barrier = std::sync::Barrier::new(8);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    barrier.wait();
                    vols.ensure("raced").expect("ensure")
                });
            }
        });
        assert_eq!(vols.list().expect("list"), ["raced"]);
    }

    #[test]
    fn ensure_completes_a_half_made_volume_and_refuses_a_symlinked_one() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let vols = Volumes::new(tmp.path());
        let root = tmp.path().join("volumes");
        fs::create_dir_all(root.join("half")).expect("half");
        assert!(vols.exists("half"));
        assert!(lmeta(&vols.ensure("half").expect("ensure half")).is_dir());

        let elsewhere = tmp.path().join("elsewhere");
        fs::create_dir(&elsewhere).expect("elsewhere");
        fs::create_dir(root.join("evil")).expect("evil");
        symlink(&elsewhere, root.join("evil/_data")).expect("symlink");
        let err = vols
            .ensure("evil")
            .expect_err("a symlinked _data")
            .to_string();
        assert!(
            err.contains("volume evil") && err.contains("_data"),
            "{err}"
        );
        assert!(names(&elsewhere).is_empty());
    }

    #[test]
    fn list_shows_volume_directories_only_sorted() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let vols = Volumes::new(tmp.path());
        assert!(vols.list().expect("list without a volumes dir").is_empty());
        vols.ensure("b1").expect("b1");
        vols.ensure("a1").expect("a1");
        let root = tmp.path().join("volumes");
        fs::write(root.join("metadata.db"), b"").expect("file");
        fs::create_dir(root.join(".tmp-x")).expect("hidden dir");
        symlink(root.join("a1"), root.join("linked")).expect("symlink");
        assert_eq!(vols.list().expect("list"), ["a1", "b1"]);
        assert!(!vols.exists("linked") && !vols.exists("metadata.db"));
    }

    #[test]
    fn remove_deletes_the_data_but_never_what_symlinks_in_it_point_to() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let vols = Volumes::new(tmp.path());
        let outside = tmp.path().join("etc");
        fs::create_dir(&outside).expect("outside");
        fs::write(outside.join("passwd"), b"root:x:0:0").expect("outside file");
        let data = vols.ensure("victim").expect("ensure");
        fs::create_dir_all(data.join("a/b")).expect("dirs");
        fs::write(data.join("a/b/f"), b"data").expect("file");
        symlink(&outside, data.join("etc")).expect("dir link");
        symlink(outside.join("passwd"), data.join("a/passwd")).expect("file link");
        symlink("../../../etc", data.join("a/b/up")).expect("relative link");
        vols.ensure("other").expect("other");

        vols.remove("victim").expect("remove");
        assert!(!vols.exists("victim"));
        assert_eq!(vols.list().expect("list"), ["other"]);
        assert_eq!(names(&outside), ["passwd"]);
        assert_eq!(
            fs::read(outside.join("passwd")).expect("read"),
            b"root:x:0:0"
        );
        vols.remove("victim").expect("removing again is fine");
        vols.remove("never-was")
            .expect("removing a missing volume is fine");
    }

    #[test]
    fn seed_copies_types_links_modes_times_and_xattrs() {
        let t = tree();
        let (src, dst) = (&t.src, &t.dst);
        let outside_dir = t.tmp.path().join("outside-dir");
        fs::create_dir(&outside_dir).expect("outside dir");
        fs::write(outside_dir.join("secret"), b"s").expect("secret");

        fs::create_dir_all(src.join("dir/sub")).expect("dirs");
        fs::create_dir(src.join("empty")).expect("empty");
        fs::create_dir(src.join("sticky")).expect("sticky");
        chmod(&src.join("sticky"), 0o1777);
        fs::write(src.join("dir/sub/deep.txt"), b"deep").expect("deep");
        fs::write(src.join("setuid"), b"#!/bin/true").expect("setuid");
        chmod(&src.join("setuid"), 0o4755);
        fs::write(src.join("setgid"), b"").expect("setgid");
        chmod(&src.join("setgid"), 0o2750);
        symlink(&t.outside, src.join("link")).expect("link");
        fs::hard_link(src.join("link"), src.join("link2")).expect("hard link to a symlink");
        symlink("/nonexistent/x", src.join("dangling")).expect("dangling");
        symlink(&outside_dir, src.join("dirlink")).expect("dirlink");
        fs::write(src.join("hard1"), b"shared").expect("hard1");
        fs::hard_link(src.join("hard1"), src.join("dir/hard2")).expect("hard2");
        mkfifo(&src.join("fifo"), Mode::from_bits_truncate(0o600)).expect("mkfifo");
        chmod(&src.join("fifo"), 0o640);
        drop(UnixListener::bind(src.join("sock")).expect("socket"));
        let xattrs = user_xattrs(src);
        if xattrs {
            xattr::set(src.join("dir/sub/deep.txt"), "user.wharf", b"file").expect("xattr");
            xattr::set(src.join("dir"), "user.wharf", b"dir").expect("xattr");
        }
        set_mtime(&src.join("dir/sub/deep.txt"), 1_000_000_000, 500);
        set_mtime(&src.join("link"), 1_100_000_000, 0);
        set_mtime(&src.join("dir/sub"), 1_200_000_000, 7);
        set_mtime(&src.join("dir"), 1_234_567_890, 42);
        chmod(src, 0o750);
        set_mtime(src, 1_300_000_000, 0);
        let outside_before = lmeta(&t.outside);

        assert!(seed(src, dst).expect("seed"));

        let mut want = vec![
            "dangling", "dir", "dirlink", "empty", "fifo", "hard1", "link", "link2", "setgid",
            "setuid", "sticky",
        ];
        want.sort();
        assert_eq!(names(dst), want, "everything but the socket");
        assert_eq!(
            fs::read(dst.join("dir/sub/deep.txt")).expect("read"),
            b"deep"
        );
        assert!(names(&dst.join("empty")).is_empty());
        assert_eq!(perms(&dst.join("setuid")), 0o4755);
        assert_eq!(perms(&dst.join("setgid")), 0o2750);
        assert!(lmeta(&dst.join("sticky")).is_dir());
        assert_eq!(perms(&dst.join("sticky")), 0o1777);

        for (link, target) in [
            ("link", t.outside.as_path()),
            ("link2", t.outside.as_path()),
            ("dangling", Path::new("/nonexistent/x")),
            ("dirlink", outside_dir.as_path()),
        ] {
            assert!(lmeta(&dst.join(link)).is_symlink(), "{link}");
            assert_eq!(fs::read_link(dst.join(link)).expect("readlink"), target);
        }
        assert_eq!(
            lmeta(&dst.join("link")).ino(),
            lmeta(&dst.join("link2")).ino()
        );
        assert_eq!(lmeta(&dst.join("link")).mtime(), 1_100_000_000);
        let after = lmeta(&t.outside);
        assert_eq!(fs::read(&t.outside).expect("read outside"), b"not yours");
        assert_eq!(
            (after.mode(), after.mtime(), after.mtime_nsec(), after.uid()),
            (
                outside_before.mode(),
                outside_before.mtime(),
                outside_before.mtime_nsec(),
                outside_before.uid()
            )
        );
        assert_eq!(names(&outside_dir), ["secret"]);

        let (h1, h2) = (lmeta(&dst.join("hard1")), lmeta(&dst.join("dir/hard2")));
        assert_eq!(h1.ino(), h2.ino());
        assert_eq!(h1.nlink(), 2);
        assert_eq!(fs::read(dst.join("dir/hard2")).expect("read"), b"shared");

        assert!(lmeta(&dst.join("fifo")).file_type().is_fifo());
        assert_eq!(perms(&dst.join("fifo")), 0o640);

        let deep = lmeta(&dst.join("dir/sub/deep.txt"));
        assert_eq!((deep.mtime(), deep.mtime_nsec()), (1_000_000_000, 500));
        let sub = lmeta(&dst.join("dir/sub"));
        assert_eq!((sub.mtime(), sub.mtime_nsec()), (1_200_000_000, 7));
        let dir = lmeta(&dst.join("dir"));
        assert_eq!((dir.mtime(), dir.mtime_nsec()), (1_234_567_890, 42));
        assert_eq!(perms(dst), 0o750, "the volume takes the source's mode");
        assert_eq!(lmeta(dst).mtime(), 1_300_000_000);

        if xattrs {
            let get = |p: &str| xattr::get(dst.join(p), "user.wharf").expect("getxattr");
            assert_eq!(get("dir/sub/deep.txt").as_deref(), Some(&b"file"[..]));
            assert_eq!(get("dir").as_deref(), Some(&b"dir"[..]));
        }
        // The source is as it was.
        assert!(lmeta(&src.join("link")).is_symlink());
        assert!(lmeta(&src.join("sock")).file_type().is_socket());
    }

    #[test]
    fn seed_copies_ownership_device_nodes_and_trusted_xattrs() {
        if !is_root("chown, mknod and trusted.* xattrs") {
            return;
        }
        let t = tree();
        let (src, dst) = (&t.src, &t.dst);
        let owned = |p: &Path| lchown(p, Some(1234), Some(5678)).expect("lchown");
        fs::write(src.join("file"), b"x").expect("file");
        owned(&src.join("file"));
        chmod(&src.join("file"), 0o4755);
        fs::create_dir(src.join("dir")).expect("dir");
        owned(&src.join("dir"));
        symlink(&t.outside, src.join("link")).expect("link");
        owned(&src.join("link"));
        mkfifo(&src.join("fifo"), Mode::from_bits_truncate(0o600)).expect("fifo");
        owned(&src.join("fifo"));
        mknodat(
            AT_FDCWD,
            &src.join("null"),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o600),
            makedev(1, 3),
        )
        .expect("mknod");
        owned(&src.join("null"));
        chmod(&src.join("null"), 0o666);
        xattr::set(src.join("file"), "trusted.wharf", b"t").expect("trusted xattr");
        owned(src);
        chmod(src, 0o750);

        assert!(seed(src, dst).expect("seed"));

        for p in ["file", "dir", "link", "fifo", "null", ""] {
            let m = lmeta(&dst.join(p));
            assert_eq!((m.uid(), m.gid()), (1234, 5678), "{p:?}");
        }
        assert_eq!(
            perms(&dst.join("file")),
            0o4755,
            "chown must not eat setuid"
        );
        assert_eq!(perms(dst), 0o750);
        let null = lmeta(&dst.join("null"));
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), makedev(1, 3));
        assert_eq!(perms(&dst.join("null")), 0o666);
        assert_eq!(
            xattr::get(dst.join("file"), "trusted.wharf").expect("getxattr"),
            Some(b"t".to_vec())
        );
        assert_eq!(
            lmeta(&t.outside).uid(),
            0,
            "the link's target keeps its owner"
        );
    }

    #[test]
    fn seed_leaves_a_non_empty_volume_alone() {
        let t = tree();
        fs::write(t.src.join("from-image"), b"x").expect("src file");
        fs::write(t.dst.join("mine"), b"y").expect("dst file");
        chmod(&t.src, 0o700);
        chmod(&t.dst, 0o755);
        assert!(!seed(&t.src, &t.dst).expect("seed"));
        assert_eq!(names(&t.dst), ["mine"]);
        assert_eq!(perms(&t.dst), 0o755);
    }

    #[test]
    fn seed_without_a_source_directory_does_nothing() {
        let t = tree();
        let dir = t.tmp.path().join("real-dir");
        fs::create_dir(&dir).expect("dir");
        fs::write(dir.join("f"), b"x").expect("f");
        symlink(&dir, t.tmp.path().join("dir-link")).expect("symlink");
        for missing in ["nope", "outside", "dir-link"] {
            assert!(!seed(&t.tmp.path().join(missing), &t.dst).expect(missing));
        }
        assert!(names(&t.dst).is_empty());
    }

    #[test]
    fn seed_gives_the_volume_an_empty_source_s_mode() {
        let t = tree();
        chmod(&t.src, 0o711);
        assert!(seed(&t.src, &t.dst).expect("seed"));
        assert!(names(&t.dst).is_empty());
        assert_eq!(perms(&t.dst), 0o711);
    }

    #[test]
    fn seed_refuses_a_symlinked_volume() {
        let t = tree();
        fs::write(t.src.join("f"), b"x").expect("f");
        let link = t.tmp.path().join("dst-link");
        symlink(&t.dst, &link).expect("symlink");
        let err = seed(&t.src, &link).expect_err("a symlinked volume");
        assert!(
            matches!(&err, VolumeError::Seed { path, .. } if path == &link),
            "{err}"
        );
        assert!(names(&t.dst).is_empty());
    }

    #[test]
    fn seed_copies_deep_trees() {
        let t = tree();
        let mut deep = t.src.clone();
        for _ in 0..300 {
            deep.push("d");
        }
        fs::create_dir_all(&deep).expect("deep dirs");
        fs::write(deep.join("bottom"), b"!").expect("bottom");
        assert!(seed(&t.src, &t.dst).expect("seed"));
        let copied = t.dst.join(deep.strip_prefix(&t.src).expect("relative"));
        assert_eq!(fs::read(copied.join("bottom")).expect("read"), b"!");
    }

    /// Gives this test's thread a mount namespace of its own, private from the host's; it goes
    /// away with the thread (libtest runs each test on a new thread).
    fn private_mounts() -> bool {
        if !is_root("a private mount namespace") {
            return false;
        }
        unshare(CloneFlags::CLONE_NEWNS).expect("unshare");
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .expect("make the mounts private");
        true
    }

    /// Unmounts on drop, before the temporary directory that holds the mount point goes.
    struct Mounted(PathBuf);

    impl Mounted {
        fn new(fstype: &str, data: &str, at: &Path) -> Mounted {
            mount(Some(fstype), at, Some(fstype), MsFlags::empty(), Some(data))
                .unwrap_or_else(|e| panic!("mount {fstype} on {}: {e}", at.display()));
            Mounted(at.to_path_buf())
        }
    }

    impl Drop for Mounted {
        fn drop(&mut self) {
            let _ = umount2(&self.0, MntFlags::MNT_DETACH);
        }
    }

    #[test]
    fn seed_does_not_descend_into_mounts_below_the_source() {
        if !private_mounts() {
            return;
        }
        let t = tree();
        fs::write(t.src.join("file"), b"x").expect("file");
        fs::create_dir(t.src.join("mnt")).expect("mount point");
        let _m = Mounted::new("tmpfs", "size=1m,mode=0750", &t.src.join("mnt"));
        fs::write(t.src.join("mnt/host-secret"), b"s").expect("file in the mount");
        assert!(seed(&t.src, &t.dst).expect("seed"));
        assert_eq!(names(&t.dst), ["file", "mnt"]);
        assert!(names(&t.dst.join("mnt")).is_empty());
        assert_eq!(perms(&t.dst.join("mnt")), 0o750);
    }

    #[test]
    fn seed_copies_everything_an_overlay_shows() {
        if !private_mounts() {
            return;
        }
        let t = tree();
        let base = t.tmp.path();
        for d in [
            "lower1/data/nested",
            "lower2/data/nested",
            "upper",
            "work",
            "merged",
        ] {
            fs::create_dir_all(base.join(d)).expect("overlay dirs");
        }
        fs::write(base.join("lower1/data/a"), b"a").expect("a");
        fs::write(base.join("lower1/data/nested/b"), b"b").expect("b");
        fs::write(base.join("lower1/data/h1"), b"h").expect("h1");
        fs::hard_link(
            base.join("lower1/data/h1"),
            base.join("lower1/data/nested/h2"),
        )
        .expect("h2");
        fs::write(base.join("lower2/data/nested/c"), b"c").expect("c");
        let opts = format!(
            "lowerdir={}:{},upperdir={},workdir={}",
            base.join("lower2").display(),
            base.join("lower1").display(),
            base.join("upper").display(),
            base.join("work").display()
        );
        let _m = Mounted::new("overlay", &opts, &base.join("merged"));

        assert!(seed(&base.join("merged/data"), &t.dst).expect("seed"));
        assert_eq!(names(&t.dst), ["a", "h1", "nested"]);
        assert_eq!(names(&t.dst.join("nested")), ["b", "c", "h2"]);
        assert_eq!(fs::read(t.dst.join("nested/c")).expect("c"), b"c");
        assert_eq!(
            lmeta(&t.dst.join("h1")).ino(),
            lmeta(&t.dst.join("nested/h2")).ino()
        );
    }

    #[test]
    fn a_failed_seed_leaves_the_volume_empty() {
        if !private_mounts() {
            return;
        }
        let t = tree();
        fs::create_dir_all(t.src.join("a/b")).expect("dirs");
        fs::write(t.src.join("a/b/small"), b"x").expect("small");
        fs::write(t.src.join("small"), b"x").expect("small");
        fs::write(t.src.join("big"), vec![7u8; 1 << 20]).expect("big");
        let _m = Mounted::new("tmpfs", "size=64k", &t.dst);
        let err = seed(&t.src, &t.dst)
            .expect_err("a volume too small")
            .to_string();
        assert!(err.contains("big") && err.contains("space"), "{err}");
        assert!(names(&t.dst).is_empty());
    }
}
