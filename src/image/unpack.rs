//! Layer unpacking: turns one OCI/Docker image layer (a tar stream, plain, gzip or zstd) into a
//! directory that overlayfs can use as a lower dir, verifying the compressed digest and computing
//! the diff ID on the way. It owns the conversion of OCI whiteouts into overlayfs whiteouts, the
//! safety rules for hostile archives, and the "temporary sibling, then rename" discipline that
//! makes an unpacked layer appear whole or not at all. It must not touch anything outside its
//! temporary directory and `dest`: it never follows a symlink while creating, replacing or
//! linking entries (each parent component is opened by hand with `O_NOFOLLOW`), never applies a
//! whiteout against another layer (every layer is its own lower dir; overlayfs does the merging
//! at mount time), never looks up user or group names (ownership is numeric, as the container
//! sees it), and takes no locks: the caller (the image store) must hold the lock for `dest`,
//! because leftovers named `<dest>.tmp-*` are removed as debris of an interrupted earlier run.
//! It needs root (`CAP_MKNOD`, `CAP_CHOWN`, `CAP_FOWNER`, and `CAP_SYS_ADMIN` for `trusted.*`
//! xattrs). It does not fsync: a crash (not an interrupted process) right after the rename may
//! leave files whose data never reached the disk, so a store that must survive power loss has to
//! `syncfs` before trusting a layer it finds after a reboot.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, RenameFlags, open, openat, renameat2};
use nix::sys::stat::{
    FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, fstatat, futimens, makedev,
    mkdirat, mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, symlinkat, unlinkat};
use sha2::{Digest, Sha256};
use xattr::FileExt;

/// The compression of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// gzip (RFC 1952), possibly several concatenated members.
    Gzip,
    /// zstd (RFC 8878), possibly several concatenated frames.
    Zstd,
}

impl Compression {
    /// The compression a layer media type declares, or `None` when `mt` is not a layer type.
    ///
    /// Knows the OCI layer types (`application/vnd.oci.image.layer.v1.tar`, `+gzip`, `+zstd`, and
    /// their `nondistributable` forms) and Docker's (`application/vnd.docker.image.rootfs.diff.tar`,
    /// `.diff.tar.gzip`, `.foreign.diff.tar.gzip`). Parameters after `;` are ignored, and media
    /// types compare case-insensitively (RFC 6838).
    pub fn from_media_type(mt: &str) -> Option<Compression> {
        let mt = mt
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let rest = mt
            .strip_prefix("application/vnd.oci.image.layer.")
            .or_else(|| mt.strip_prefix("application/vnd.docker.image.rootfs."))?;
        if rest.ends_with(".tar") {
            Some(Compression::None)
        } else if rest.ends_with(".tar+gzip") || rest.ends_with(".tar.gzip") {
            Some(Compression::Gzip)
        } else if rest.ends_with(".tar+zstd") || rest.ends_with(".tar.zstd") {
            Some(Compression::Zstd)
        } else {
            None
        }
    }

    /// Guesses the compression from a blob's first bytes (gzip: `1f 8b`; zstd: `28 b5 2f fd`);
    /// anything else is taken to be a plain tar stream.
    pub fn sniff(first_bytes: &[u8]) -> Compression {
        if first_bytes.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if first_bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Why a layer could not be unpacked. `entry` is always the path as written in the layer's tar
/// stream; `path` is a path on the host (inside the temporary directory for per-entry errors).
/// Whenever one of these is returned, neither `dest` nor a temporary directory exists.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("expected layer digest {digest:?} is not usable: {reason}")]
    BadDigest {
        digest: String,
        reason: &'static str,
    },
    #[error("layer destination {path} is not usable: {reason}")]
    BadDest { path: PathBuf, reason: &'static str },
    #[error("layer destination {path} already exists")]
    DestExists { path: PathBuf },
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the layer stream ({compression:?}): {source}")]
    Decompress {
        compression: Compression,
        #[source]
        source: io::Error,
    },
    #[error("layer tar stream is corrupt or truncated ({entry}): {source}")]
    Stream {
        entry: String,
        #[source]
        source: io::Error,
    },
    #[error("layer entry {entry} is truncated: {expected} bytes declared, {got} present")]
    Truncated {
        entry: String,
        expected: u64,
        got: u64,
    },
    #[error("layer digest mismatch: expected {expected}, the stream hashes to {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("layer entry {entry} escapes the layer directory")]
    Escape { entry: String },
    #[error(
        "layer entry {entry} goes through {component}, which is a symlink; refusing to follow it"
    )]
    SymlinkInPath { entry: String, component: String },
    #[error("layer entry {entry} goes through {component}, which is not a directory")]
    NotADirectory { entry: String, component: String },
    #[error("hard link {entry} -> {target}: the target escapes the layer directory")]
    LinkEscape { entry: String, target: String },
    #[error(
        "hard link {entry} -> {target}: the target is not an earlier entry of this layer: {source}"
    )]
    LinkTarget {
        entry: String,
        target: String,
        #[source]
        source: io::Error,
    },
    #[error("layer entry {entry}: {kind} is not supported")]
    Unsupported { entry: String, kind: String },
    #[error("layer entry {entry} is invalid: {reason}")]
    InvalidEntry { entry: String, reason: String },
    #[error("layer entry {entry}: cannot {op} {path}: {source}")]
    Entry {
        entry: String,
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What one unpack did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackStats {
    /// Tar entries processed (PAX global headers not counted).
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
    /// `sha256:<hex>` of the uncompressed tar stream (the image config's `rootfs.diff_ids`).
    pub diff_id: String,
}

/// Unpack one layer into `dest` (which must not exist yet). The layer is read from `reader`,
/// decompressed, and if `expected_digest` is `Some("sha256:…")` the COMPRESSED stream's digest is
/// verified (the whole stream, to its end, including anything after the tar's end marker). Work
/// happens in a temporary sibling directory (`<dest>.tmp-<pid>-<n>`), which is renamed to `dest`
/// only when everything succeeded; on any error the temporary directory is removed and `dest` does
/// not exist. A leftover `<dest>.tmp-*` from an interrupted earlier run is removed first, so the
/// caller must hold the store's lock for `dest`.
pub fn unpack_layer(
    reader: impl Read,
    compression: Compression,
    expected_digest: Option<&str>,
    dest: &Path,
) -> Result<UnpackStats, UnpackError> {
    if let Some(d) = expected_digest {
        check_digest_syntax(d)?;
    }
    let (parent, name) = split_dest(dest)?;
    match std::fs::symlink_metadata(dest) {
        Ok(_) => {
            return Err(UnpackError::DestExists {
                path: dest.to_path_buf(),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("inspect", dest, e)),
    }
    remove_leftovers(&parent, &name)?;
    let tmp = TmpDir::create(&parent, &name)?;

    let root = open(
        tmp.path.as_path(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(File::from)
    .map_err(|e| io_err("open", &tmp.path, e.into()))?;
    // DirBuilder's mode went through the umask; the layer root is 0755 unless the layer says.
    fchmod(&root, Mode::from_bits_truncate(0o755))
        .map_err(|e| io_err("chmod", &tmp.path, e.into()))?;

    let mut ex = Extractor {
        root_path: &tmp.path,
        dirs: Dirs {
            root,
            stack: Vec::new(),
        },
        buf: vec![0; COPY_BUF],
        deferred: HashMap::new(),
        stats: UnpackStats {
            entries: 0,
            bytes: 0,
            diff_id: String::new(),
        },
        last: String::from("(start of layer)"),
    };

    let (produced, consumed) = pipeline::run(reader, compression, |tar| ex.run(tar));
    // The order of blame: a stream that cannot be read, then a blob that is not the one asked
    // for (whatever its tar parser tripped over is a symptom), then the entries themselves.
    let (digest, diff_id) = produced?;
    if let Some(expected) = expected_digest
        && !expected.eq_ignore_ascii_case(&digest)
    {
        return Err(UnpackError::DigestMismatch {
            expected: expected.to_string(),
            actual: digest,
        });
    }
    consumed?;
    ex.finish_dirs()?;
    let mut stats = ex.stats;
    stats.diff_id = diff_id;

    match renameat2(
        AT_FDCWD,
        tmp.path.as_path(),
        AT_FDCWD,
        dest,
        RenameFlags::RENAME_NOREPLACE,
    ) {
        Ok(()) => {
            tmp.disarm();
            Ok(stats)
        }
        Err(Errno::EEXIST) => Err(UnpackError::DestExists {
            path: dest.to_path_buf(),
        }),
        Err(e) => Err(io_err("rename into place", dest, e.into())),
    }
}

/// Size of the buffers between the layer source, the decompressor, the tar parser and the files.
/// Large enough that syscalls and decompressor calls are amortised over many bytes.
const COPY_BUF: usize = 256 * 1024;

fn io_err(op: &'static str, path: &Path, source: io::Error) -> UnpackError {
    UnpackError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn check_digest_syntax(d: &str) -> Result<(), UnpackError> {
    let bad = |reason| UnpackError::BadDigest {
        digest: d.to_string(),
        reason,
    };
    let hex = d
        .strip_prefix("sha256:")
        .ok_or_else(|| bad("only sha256 digests are supported"))?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("a sha256 digest has 64 hex digits"));
    }
    Ok(())
}

fn split_dest(dest: &Path) -> Result<(PathBuf, OsString), UnpackError> {
    let bad = |reason| UnpackError::BadDest {
        path: dest.to_path_buf(),
        reason,
    };
    let name = match dest.file_name() {
        Some(n)
            if dest
                .components()
                .next_back()
                .is_some_and(|c| c.as_os_str() == n) =>
        {
            n
        }
        _ => return Err(bad("it has no final name component")),
    };
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name.to_os_string()))
}

fn tmp_prefix(name: &OsStr) -> OsString {
    let mut p = name.to_os_string();
    p.push(".tmp-");
    p
}

/// Removes `<name>.tmp-*` in `parent`: what an interrupted earlier unpack of the same layer left.
fn remove_leftovers(parent: &Path, name: &OsStr) -> Result<(), UnpackError> {
    let prefix = tmp_prefix(name);
    let rd = std::fs::read_dir(parent).map_err(|e| io_err("list", parent, e))?;
    for item in rd {
        let item = item.map_err(|e| io_err("list", parent, e))?;
        if !item.file_name().as_bytes().starts_with(prefix.as_bytes()) {
            continue;
        }
        let path = item.path();
        // file_type() does not follow symlinks; remove_dir_all does not follow them either.
        let is_dir = item
            .file_type()
            .map_err(|e| io_err("inspect", &path, e))?
            .is_dir();
        let res = if is_dir {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match res {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove leftover", &path, e)),
        }
    }
    Ok(())
}

/// The temporary sibling directory; removed on drop unless disarmed after the final rename.
struct TmpDir {
    path: PathBuf,
    armed: bool,
}

impl TmpDir {
    fn create(parent: &Path, name: &OsStr) -> Result<TmpDir, UnpackError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut tmp_name = tmp_prefix(name);
        tmp_name.push(format!(
            "{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let path = parent.join(tmp_name);
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&path)
            .map_err(|e| io_err("create", &path, e))?;
        Ok(TmpDir { path, armed: true })
    }

    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: the error being returned matters more than a failed cleanup, and
            // the next unpack of the same layer removes the leftover anyway.
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The byte streams: source → (sha256 of compressed) → decompressor → (sha256 of uncompressed)
/// → tar parser. Decompression and hashing run on the calling thread (the reader need not be
/// `Send`) while the tar parser and all filesystem work run on a second, scoped thread, connected
/// by a bounded channel of buffers (recycled through a second channel), the way
/// `tar -xzf` runs `gzip -d` as a separate process: on a two-core machine that is the difference
/// between the sum of the two costs and the larger one.
mod pipeline {
    use super::*;
    use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

    /// Reads and hashes everything `inner` produces.
    struct Hashing<R> {
        inner: R,
        hasher: Sha256,
    }

    impl<R: Read> Read for Hashing<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.hasher.update(buf.get(..n).unwrap_or_default());
            Ok(n)
        }
    }

    enum Decoder<R: BufRead> {
        Plain(R),
        Gzip(Box<flate2::bufread::MultiGzDecoder<R>>),
        Zstd(Box<zstd::stream::read::Decoder<'static, R>>),
    }

    impl<R: BufRead> Read for Decoder<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self {
                Decoder::Plain(r) => r.read(buf),
                Decoder::Gzip(r) => r.read(buf),
                Decoder::Zstd(r) => r.read(buf),
            }
        }
    }

    impl<R: BufRead> Decoder<R> {
        fn into_inner(self) -> R {
            match self {
                Decoder::Plain(r) => r,
                Decoder::Gzip(r) => r.into_inner(),
                Decoder::Zstd(r) => r.finish(),
            }
        }
    }

    /// Reads whole `Vec`s from the decompressing thread and hands the emptied ones back. It is
    /// an in-memory buffer already, so the tar parser's small header reads cost no syscalls.
    pub(super) struct ChannelReader {
        full: Receiver<Vec<u8>>,
        empty: SyncSender<Vec<u8>>,
        cur: Vec<u8>,
        pos: usize,
    }

    impl Read for ChannelReader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            while self.pos >= self.cur.len() {
                let Ok(next) = self.full.recv() else {
                    return Ok(0); // the producer finished (or failed; it reports that itself)
                };
                let done = std::mem::replace(&mut self.cur, next);
                let _ = self.empty.try_send(done);
                self.pos = 0;
            }
            let avail = self.cur.get(self.pos..).unwrap_or_default();
            let n = avail.len().min(buf.len());
            if let (Some(dst), Some(src)) = (buf.get_mut(..n), avail.get(..n)) {
                dst.copy_from_slice(src);
            }
            self.pos += n;
            Ok(n)
        }
    }

    const QUEUE: usize = 8;

    /// Runs `consume` on the uncompressed tar stream (on a second thread) while this thread
    /// reads the whole stream, to its end, and returns both outcomes: the `sha256:` digests of the
    /// compressed and the uncompressed stream (or why they could not be read), and `consume`'s.
    pub(super) fn run<R, F>(
        reader: R,
        compression: Compression,
        consume: F,
    ) -> (
        Result<(String, String), UnpackError>,
        Result<(), UnpackError>,
    )
    where
        R: Read,
        F: FnOnce(&mut ChannelReader) -> Result<(), UnpackError> + Send,
    {
        let (full_tx, full_rx) = sync_channel::<Vec<u8>>(QUEUE);
        let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(QUEUE + 2);
        std::thread::scope(|s| {
            let worker = s.spawn(move || {
                let mut chan = ChannelReader {
                    full: full_rx,
                    empty: empty_tx,
                    cur: Vec::new(),
                    pos: 0,
                };
                // Whatever the tar parser leaves (the end-of-archive blocks, padding, or, after
                // an error, the rest) nobody reads; dropping `chan` tells the producer so.
                consume(&mut chan)
            });
            let produced = produce(reader, compression, full_tx, empty_rx);
            let consumed = worker.join().unwrap_or_else(|_| {
                Err(UnpackError::Stream {
                    entry: String::from("(unknown)"),
                    source: io::Error::other("the unpacking thread panicked"),
                })
            });
            (produced, consumed)
        })
    }

    /// Decompresses into buffers for the channel, reading the source to its very end even after
    /// the consumer hung up: the digests cover the whole blob, and a broken stream must be
    /// reported as such rather than by the symptom the tar parser saw.
    fn produce<R: Read>(
        reader: R,
        compression: Compression,
        full: SyncSender<Vec<u8>>,
        empty: Receiver<Vec<u8>>,
    ) -> Result<(String, String), UnpackError> {
        let stream_err = |source| UnpackError::Decompress {
            compression,
            source,
        };
        let src = BufReader::with_capacity(
            COPY_BUF,
            Hashing {
                inner: reader,
                hasher: Sha256::new(),
            },
        );
        let mut decoder = match compression {
            Compression::None => Decoder::Plain(src),
            Compression::Gzip => Decoder::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(src))),
            Compression::Zstd => Decoder::Zstd(Box::new(
                zstd::stream::read::Decoder::with_buffer(src).map_err(stream_err)?,
            )),
        };
        let mut diff = (compression != Compression::None).then(Sha256::new);
        let mut hung_up = false;
        loop {
            let mut buf = empty.try_recv().unwrap_or_default();
            buf.resize(COPY_BUF, 0);
            let n = fill(&mut decoder, &mut buf).map_err(stream_err)?;
            if n == 0 {
                break;
            }
            buf.truncate(n);
            if let Some(h) = diff.as_mut() {
                h.update(&buf);
            }
            if !hung_up && full.send(buf).is_err() {
                hung_up = true;
            }
        }
        drop(full);
        // The decompressor is at its end; hash whatever the source still holds after it.
        let mut src = decoder.into_inner();
        io::copy(&mut src, &mut io::sink()).map_err(stream_err)?;
        let compressed = src.into_inner().hasher;
        let compressed = format!("sha256:{}", hex::encode(compressed.finalize()));
        let diff_id = match diff {
            Some(h) => format!("sha256:{}", hex::encode(h.finalize())),
            None => compressed.clone(),
        };
        Ok((compressed, diff_id))
    }

    /// Reads until `buf` is full or the stream ends (fewer, larger messages on the channel).
    fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let Some(rest) = buf.get_mut(n..) else { break };
            match r.read(rest) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
}

/// Splits an entry path into components, resolving `.` and `..` lexically. A leading `/` is
/// dropped (layers are rooted at the layer dir); `None` when a `..` would climb above the root.
/// Lexical resolution is sound here because no component is ever followed as a symlink.
fn normalize(raw: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop()?;
            }
            _ => out.push(c.to_vec()),
        }
    }
    Some(out)
}

fn display(comps: &[Vec<u8>]) -> String {
    String::from_utf8_lossy(&comps.join(&b'/')).into_owned()
}

fn join(root: &Path, comps: &[Vec<u8>]) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in comps {
        p.push(OsStr::from_bytes(c));
    }
    p
}

/// One entry being unpacked: its name in the layer and its normalized components.
struct Ctx<'a> {
    entry: &'a str,
    root: &'a Path,
    comps: &'a [Vec<u8>],
}

impl Ctx<'_> {
    fn io(&self, op: &'static str, e: impl Into<io::Error>) -> UnpackError {
        UnpackError::Entry {
            entry: self.entry.to_string(),
            op,
            path: join(self.root, self.comps),
            source: e.into(),
        }
    }

    fn invalid(&self, reason: impl Into<String>) -> UnpackError {
        UnpackError::InvalidEntry {
            entry: self.entry.to_string(),
            reason: reason.into(),
        }
    }

    /// The parent's components and the final name. Entries naming the root have no name.
    fn split(&self) -> Option<(&[Vec<u8>], &[u8])> {
        let (name, parent) = self.comps.split_last()?;
        Some((parent, name.as_slice()))
    }
}

/// Ownership, permissions, times and xattrs of one entry.
struct Meta {
    uid: Uid,
    gid: Gid,
    mode: Mode,
    mtime: TimeSpec,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

/// The chain of directories from the layer root to the parent of the current entry, each opened
/// with `O_NOFOLLOW`. Tar streams list a directory's entries together, so most entries reuse the
/// open parent and need one syscall for their parent instead of one per path component. Entries
/// are only ever removed below the current top of the chain, so an open directory in it is never
/// one that was replaced.
struct Dirs {
    root: File,
    stack: Vec<(Vec<u8>, File)>,
}

impl Dirs {
    /// Opens the directory `comps` (creating missing ones, 0755 root:root), refusing to go
    /// through a symlink or a non-directory.
    fn open(&mut self, cx: &Ctx, comps: &[Vec<u8>]) -> Result<&File, UnpackError> {
        let common = self
            .stack
            .iter()
            .zip(comps)
            .take_while(|((have, _), want)| have == *want)
            .count();
        self.stack.truncate(common);
        for i in common..comps.len() {
            let parent = match self.stack.last() {
                Some((_, f)) => f,
                None => &self.root,
            };
            let dir = open_component(parent, cx, comps, i)?;
            let name = comps.get(i).cloned().unwrap_or_default();
            self.stack.push((name, dir));
        }
        Ok(match self.stack.last() {
            Some((_, f)) => f,
            None => &self.root,
        })
    }
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

fn is_kind(st: &nix::sys::stat::FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == kind
}

/// Opens `comps[i]` inside `parent`, creating it when missing.
fn open_component(
    parent: &File,
    cx: &Ctx,
    comps: &[Vec<u8>],
    i: usize,
) -> Result<File, UnpackError> {
    let name = comps.get(i).map(Vec::as_slice).unwrap_or_default();
    let upto = || display(comps.get(..=i).unwrap_or_default());
    match openat(parent, name, dir_flags(), Mode::empty()) {
        Ok(fd) => Ok(File::from(fd)),
        Err(Errno::ENOENT) => {
            let io = |op, e: Errno| UnpackError::Entry {
                entry: cx.entry.to_string(),
                op,
                path: join(cx.root, comps.get(..=i).unwrap_or_default()),
                source: e.into(),
            };
            mkdirat(parent, name, Mode::from_bits_truncate(0o755))
                .map_err(|e| io("create directory", e))?;
            let dir = openat(parent, name, dir_flags(), Mode::empty())
                .map(File::from)
                .map_err(|e| io("open directory", e))?;
            fchown(&dir, Some(Uid::from_raw(0)), Some(Gid::from_raw(0)))
                .map_err(|e| io("chown directory", e))?;
            fchmod(&dir, Mode::from_bits_truncate(0o755)).map_err(|e| io("chmod directory", e))?;
            Ok(dir)
        }
        // O_NOFOLLOW on a symlink fails with ELOOP, O_DIRECTORY on anything else with ENOTDIR.
        Err(e @ (Errno::ELOOP | Errno::ENOTDIR)) => {
            match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) if is_kind(&st, SFlag::S_IFLNK) => Err(UnpackError::SymlinkInPath {
                    entry: cx.entry.to_string(),
                    component: upto(),
                }),
                Ok(_) => Err(UnpackError::NotADirectory {
                    entry: cx.entry.to_string(),
                    component: upto(),
                }),
                Err(_) => Err(cx.io("open directory", e)),
            }
        }
        Err(e) => Err(cx.io("open directory", e)),
    }
}

/// Opens an existing directory below `root` without creating or following anything.
fn open_existing(root: &File, comps: &[Vec<u8>]) -> Result<File, Errno> {
    let mut cur = root
        .try_clone()
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))?;
    for c in comps {
        cur = File::from(openat(&cur, c.as_slice(), dir_flags(), Mode::empty())?);
    }
    Ok(cur)
}

/// Removes whatever is at `parent/name` (a directory with all it holds), following nothing.
fn remove_existing(parent: &File, name: &[u8], cx: &Ctx) -> Result<(), UnpackError> {
    let st =
        fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| cx.io("inspect", e))?;
    if is_kind(&st, SFlag::S_IFDIR) {
        // The path's parents were just opened one by one with O_NOFOLLOW and nothing else
        // writes in the temporary dir; remove_dir_all itself never follows symlinks.
        std::fs::remove_dir_all(join(cx.root, cx.comps)).map_err(|e| cx.io("remove", e))
    } else {
        unlinkat(parent, name, UnlinkatFlags::NoRemoveDir).map_err(|e| cx.io("remove", e))
    }
}

/// Runs `create`; when the name is taken (an earlier entry of the same layer: tar semantics say
/// the later one wins), removes what is there without following it and runs `create` again.
fn create_replacing<T>(
    parent: &File,
    name: &[u8],
    cx: &Ctx,
    op: &'static str,
    mut create: impl FnMut() -> Result<T, Errno>,
) -> Result<T, UnpackError> {
    match create() {
        Err(Errno::EEXIST) => {
            remove_existing(parent, name, cx)?;
            create().map_err(|e| cx.io(op, e))
        }
        r => r.map_err(|e| cx.io(op, e)),
    }
}

fn set_xattrs_fd(f: &File, meta: &Meta, cx: &Ctx) -> Result<(), UnpackError> {
    for (k, v) in &meta.xattrs {
        match f.set_xattr(k, v) {
            Ok(()) => {}
            // The filesystem has no such namespace: nothing can hold it, as with docker.
            Err(e) if e.raw_os_error() == Some(Errno::EOPNOTSUPP as i32) => {}
            Err(e) => return Err(cx.io("set xattr on", e)),
        }
    }
    Ok(())
}

/// Ownership before mode: chown(2) clears setuid/setgid (and file capabilities), so chmod and
/// the xattrs come after it; times last, since the other calls do not touch mtime.
fn apply_fd(f: &File, meta: &Meta, cx: &Ctx) -> Result<(), UnpackError> {
    fchown(f, Some(meta.uid), Some(meta.gid)).map_err(|e| cx.io("chown", e))?;
    fchmod(f, meta.mode).map_err(|e| cx.io("chmod", e))?;
    set_xattrs_fd(f, meta, cx)?;
    futimens(f, &meta.mtime, &meta.mtime).map_err(|e| cx.io("set times of", e))
}

/// The same for things that cannot be opened harmlessly (symlinks, devices, FIFOs): by name in
/// the parent, never following the final component.
fn apply_at(
    parent: &File,
    name: &[u8],
    meta: &Meta,
    cx: &Ctx,
    symlink: bool,
) -> Result<(), UnpackError> {
    fchownat(
        parent,
        name,
        Some(meta.uid),
        Some(meta.gid),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| cx.io("chown", e))?;
    if !symlink {
        // fchmodat cannot refuse to follow, but the final component is the device or FIFO
        // this entry just created, not a symlink. (Symlinks have no mode of their own.)
        fchmodat(parent, name, meta.mode, FchmodatFlags::FollowSymlink)
            .map_err(|e| cx.io("chmod", e))?;
    }
    if !meta.xattrs.is_empty() {
        let path = join(cx.root, cx.comps);
        for (k, v) in &meta.xattrs {
            // xattr::set is lsetxattr: it does not follow a final symlink.
            match xattr::set(&path, k, v) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(Errno::EOPNOTSUPP as i32) => {}
                Err(e) => return Err(cx.io("set xattr on", e)),
            }
        }
    }
    utimensat(
        parent,
        name,
        &meta.mtime,
        &meta.mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| cx.io("set times of", e))
}

/// overlayfs keeps its own bookkeeping in `trusted.overlay.*` xattrs (redirects, origins,
/// metacopy, whiteout markers): a layer that carried them could make the merged view show
/// files from elsewhere, so they are dropped, except `opaque=y`, which means exactly what
/// `.wh..wh..opq` means.
fn xattr_allowed(name: &[u8], value: &[u8]) -> bool {
    match name.strip_prefix(b"trusted.overlay.") {
        Some(b"opaque") => value == b"y",
        Some(_) => false,
        None => !name.starts_with(b"user.overlay."),
    }
}

/// `mtime` of a PAX record: decimal seconds with an optional fraction, possibly negative.
fn parse_pax_time(s: &[u8]) -> Option<TimeSpec> {
    let (neg, body) = match s.strip_prefix(b"-") {
        Some(b) => (true, b),
        None => (false, s),
    };
    let mut parts = body.splitn(2, |b| *b == b'.');
    let int = parts.next().unwrap_or_default();
    let frac = parts.next().unwrap_or_default();
    if (int.is_empty() && frac.is_empty())
        || !int.iter().chain(frac).all(u8::is_ascii_digit)
        || int.len() > 18
    {
        return None;
    }
    let secs = int.iter().fold(0i64, |a, d| a * 10 + i64::from(d - b'0'));
    let mut nsec = 0i64;
    for i in 0..9 {
        nsec = nsec * 10 + frac.get(i).map_or(0, |d| i64::from(d - b'0'));
    }
    Some(match (neg, nsec) {
        (false, _) => TimeSpec::new(secs, nsec),
        (true, 0) => TimeSpec::new(-secs, 0),
        (true, _) => TimeSpec::new(-secs - 1, 1_000_000_000 - nsec),
    })
}

struct Extractor<'p> {
    root_path: &'p Path,
    dirs: Dirs,
    buf: Vec<u8>,
    /// Directory modes and times, applied after everything else: creating entries inside a
    /// directory changes its mtime, and a read-only directory could not be filled otherwise.
    deferred: HashMap<Vec<Vec<u8>>, (Mode, TimeSpec)>,
    stats: UnpackStats,
    last: String,
}

impl Extractor<'_> {
    fn run<R: Read>(&mut self, stream: R) -> Result<(), UnpackError> {
        let mut archive = tar::Archive::new(stream);
        let entries = archive.entries().map_err(|source| UnpackError::Stream {
            entry: self.last.clone(),
            source,
        })?;
        for item in entries {
            let mut entry = item.map_err(|source| UnpackError::Stream {
                entry: format!("after {}", self.last),
                source,
            })?;
            self.entry(&mut entry)?;
        }
        Ok(())
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            // Archive-wide defaults (usually a comment); docker and containerd ignore them too.
            return Ok(());
        }
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        self.last.clone_from(&name);
        self.stats.entries += 1;
        let comps = normalize(&raw).ok_or_else(|| UnpackError::Escape {
            entry: name.clone(),
        })?;
        let cx = Ctx {
            entry: &name,
            root: self.root_path,
            comps: &comps,
        };

        if let Some(base) = comps.last()
            && let Some(rest) = base.strip_prefix(b".wh.")
        {
            return self.whiteout(&cx, rest, entry.header());
        }

        let meta = read_meta(entry, &cx)?;
        match kind {
            tar::EntryType::Directory => self.directory(&cx, &meta),
            // Pre-POSIX archives mark directories only by the trailing slash.
            tar::EntryType::Regular if raw.ends_with(b"/") => self.directory(&cx, &meta),
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.file(&cx, entry, &meta, kind.is_gnu_sparse())
            }
            tar::EntryType::Symlink => self.symlink(&cx, entry, &meta),
            tar::EntryType::Link => self.hardlink(&cx, entry),
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                self.special(&cx, entry.header(), kind, &meta)
            }
            other => Err(UnpackError::Unsupported {
                entry: name.clone(),
                kind: format!("tar entry type {:?}", char::from(other.as_byte())),
            }),
        }
    }

    /// `.wh.<name>` means "`<name>` is deleted in this layer". overlayfs spells that as a
    /// character device with device number 0:0 named `<name>` in an upper or lower dir: when it
    /// merges a directory, such a device hides the name in all layers below it (and is itself
    /// not shown). `.wh..wh..opq` means "nothing below this layer shows in this directory";
    /// overlayfs spells that as the `trusted.overlay.opaque=y` xattr on the directory (the
    /// `trusted.` namespace, which only CAP_SYS_ADMIN can write, so that unprivileged users
    /// cannot fake it). Other `.wh..wh.*` names are AUFS bookkeeping with no meaning here.
    fn whiteout(&mut self, cx: &Ctx, rest: &[u8], header: &tar::Header) -> Result<(), UnpackError> {
        let Some((parent_comps, _)) = cx.split() else {
            return Err(cx.invalid("whiteout without a name"));
        };
        if rest == b".wh..opq" {
            let dir = self.dirs.open(cx, parent_comps)?;
            return dir
                .set_xattr("trusted.overlay.opaque", b"y")
                .map_err(|e| cx.io("mark opaque", e));
        }
        if rest.starts_with(b".wh.") {
            return Ok(());
        }
        if rest.is_empty() || rest == b"." || rest == b".." {
            return Err(cx.invalid("whiteout of an empty, `.` or `..` name"));
        }
        let uid = header_id(header.uid(), cx)?;
        let gid = header_id(header.gid(), cx)?;
        let parent = self.dirs.open(cx, parent_comps)?;
        create_replacing(parent, rest, cx, "create whiteout", || {
            mknodat(parent, rest, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
        })?;
        fchownat(
            parent,
            rest,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| cx.io("chown whiteout", e))
    }

    fn directory(&mut self, cx: &Ctx, meta: &Meta) -> Result<(), UnpackError> {
        let dir = match cx.split() {
            None => self.dirs.root.try_clone().map_err(|e| cx.io("open", e))?,
            Some((parent_comps, name)) => {
                let parent = self.dirs.open(cx, parent_comps)?;
                match mkdirat(parent, name, Mode::from_bits_truncate(0o700)) {
                    Ok(()) => {}
                    Err(Errno::EEXIST) => {
                        let st = fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                            .map_err(|e| cx.io("inspect", e))?;
                        if !is_kind(&st, SFlag::S_IFDIR) {
                            remove_existing(parent, name, cx)?;
                            mkdirat(parent, name, Mode::from_bits_truncate(0o700))
                                .map_err(|e| cx.io("create directory", e))?;
                        }
                    }
                    Err(e) => return Err(cx.io("create directory", e)),
                }
                File::from(
                    openat(parent, name, dir_flags(), Mode::empty())
                        .map_err(|e| cx.io("open", e))?,
                )
            }
        };
        fchown(&dir, Some(meta.uid), Some(meta.gid)).map_err(|e| cx.io("chown", e))?;
        set_xattrs_fd(&dir, meta, cx)?;
        self.deferred
            .insert(cx.comps.to_vec(), (meta.mode, meta.mtime));
        Ok(())
    }

    fn file<R: Read>(
        &mut self,
        cx: &Ctx,
        entry: &mut tar::Entry<'_, R>,
        meta: &Meta,
        sparse: bool,
    ) -> Result<(), UnpackError> {
        let Some((parent_comps, name)) = cx.split() else {
            return Err(cx.invalid("a file cannot replace the layer root"));
        };
        let parent = self.dirs.open(cx, parent_comps)?;
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = create_replacing(parent, name, cx, "create", || {
            openat(parent, name, flags, Mode::from_bits_truncate(0o600))
        })?;
        let mut file = File::from(fd);
        let mut written = 0u64;
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(UnpackError::Stream {
                        entry: cx.entry.to_string(),
                        source,
                    });
                }
            };
            let chunk = self.buf.get(..n).unwrap_or_default();
            file.write_all(chunk).map_err(|e| cx.io("write", e))?;
            written += n as u64;
        }
        // The tar reader stops quietly at the end of the stream; a short file is a cut archive.
        if !sparse && written != entry.size() {
            return Err(UnpackError::Truncated {
                entry: cx.entry.to_string(),
                expected: entry.size(),
                got: written,
            });
        }
        self.stats.bytes += written;
        apply_fd(&file, meta, cx)
    }

    fn symlink<R: Read>(
        &mut self,
        cx: &Ctx,
        entry: &tar::Entry<'_, R>,
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        let Some((parent_comps, name)) = cx.split() else {
            return Err(cx.invalid("a symlink cannot replace the layer root"));
        };
        // The target is stored verbatim and only ever interpreted inside the container.
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| cx.invalid("symlink without a target"))?;
        let target = target.as_ref();
        if target.is_empty() {
            return Err(cx.invalid("symlink with an empty target"));
        }
        let parent = self.dirs.open(cx, parent_comps)?;
        create_replacing(parent, name, cx, "create symlink", || {
            symlinkat(target, parent, name)
        })?;
        apply_at(parent, name, meta, cx, true)
    }

    fn hardlink<R: Read>(
        &mut self,
        cx: &Ctx,
        entry: &tar::Entry<'_, R>,
    ) -> Result<(), UnpackError> {
        let Some((parent_comps, name)) = cx.split() else {
            return Err(cx.invalid("a hard link cannot replace the layer root"));
        };
        let raw_target = entry
            .link_name_bytes()
            .ok_or_else(|| cx.invalid("hard link without a target"))?;
        let target_str = String::from_utf8_lossy(&raw_target).into_owned();
        let link_err = |source: io::Error| UnpackError::LinkTarget {
            entry: cx.entry.to_string(),
            target: target_str.clone(),
            source,
        };
        let target = normalize(&raw_target).ok_or_else(|| UnpackError::LinkEscape {
            entry: cx.entry.to_string(),
            target: target_str.clone(),
        })?;
        let Some((target_name, target_parent)) = target.split_last() else {
            return Err(link_err(io::Error::other(
                "the layer root cannot be hard-linked",
            )));
        };
        if target.as_slice() == cx.comps {
            return Ok(()); // a link to itself: already there
        }
        let tdir = open_existing(&self.dirs.root, target_parent).map_err(|e| link_err(e.into()))?;
        let st = fstatat(&tdir, target_name.as_slice(), AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| link_err(e.into()))?;
        if is_kind(&st, SFlag::S_IFDIR) {
            return Err(link_err(io::Error::other("the target is a directory")));
        }
        let parent = self.dirs.open(cx, parent_comps)?;
        // linkat without AT_SYMLINK_FOLLOW links a symlink itself, never what it points to.
        create_replacing(parent, name, cx, "create hard link", || {
            linkat(
                &tdir,
                target_name.as_slice(),
                parent,
                name,
                AtFlags::empty(),
            )
        })
        .map_err(|e| match e {
            UnpackError::Entry { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                link_err(source)
            }
            other => other,
        })
    }

    fn special(
        &mut self,
        cx: &Ctx,
        header: &tar::Header,
        kind: tar::EntryType,
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        let Some((parent_comps, name)) = cx.split() else {
            return Err(cx.invalid("a device or FIFO cannot replace the layer root"));
        };
        let (sflag, dev) = match kind {
            tar::EntryType::Fifo => (SFlag::S_IFIFO, 0),
            _ => {
                let num = |r: io::Result<Option<u32>>| {
                    r.map_err(|e| cx.invalid(format!("bad device number: {e}")))?
                        .ok_or_else(|| cx.invalid("device without device numbers"))
                };
                let major = num(header.device_major())?;
                let minor = num(header.device_minor())?;
                let sflag = if kind == tar::EntryType::Char {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                (sflag, makedev(major.into(), minor.into()))
            }
        };
        let parent = self.dirs.open(cx, parent_comps)?;
        create_replacing(parent, name, cx, "create device node", || {
            mknodat(parent, name, sflag, Mode::from_bits_truncate(0o600), dev)
        })?;
        apply_at(parent, name, meta, cx, false)
    }

    /// Applies the deferred directory modes and times, deepest first. A directory that a later
    /// entry removed or replaced is skipped.
    fn finish_dirs(&mut self) -> Result<(), UnpackError> {
        let mut dirs: Vec<_> = self.deferred.drain().collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.0.len()));
        for (comps, (mode, mtime)) in dirs {
            let dir = match open_existing(&self.dirs.root, &comps) {
                Ok(d) => d,
                Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => continue,
                Err(e) => return Err(io_err("open", &join(self.root_path, &comps), e.into())),
            };
            let path = || join(self.root_path, &comps);
            fchmod(&dir, mode).map_err(|e| io_err("chmod", &path(), e.into()))?;
            futimens(&dir, &mtime, &mtime)
                .map_err(|e| io_err("set times of", &path(), e.into()))?;
        }
        Ok(())
    }
}

fn header_id(v: io::Result<u64>, cx: &Ctx) -> Result<u32, UnpackError> {
    let v = v.map_err(|e| cx.invalid(format!("bad uid/gid: {e}")))?;
    u32::try_from(v).map_err(|_| cx.invalid(format!("uid/gid {v} is out of range")))
}

/// Ownership, mode, mtime and xattrs of an entry: the ustar header, overridden by PAX records
/// (the tar reader already applied PAX `uid`, `gid`, `size`, `path` and `linkpath`).
fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>, cx: &Ctx) -> Result<Meta, UnpackError> {
    let mut mtime = None;
    let mut xattrs = Vec::new();
    let pax = entry
        .pax_extensions()
        .map_err(|e| cx.invalid(format!("bad PAX header: {e}")))?;
    if let Some(pax) = pax {
        for ext in pax {
            let ext = ext.map_err(|e| cx.invalid(format!("bad PAX record: {e}")))?;
            let key = ext.key_bytes();
            if key == b"mtime" {
                mtime = parse_pax_time(ext.value_bytes());
            } else if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                if xattr_allowed(name, ext.value_bytes()) {
                    xattrs.push((
                        OsString::from_vec(name.to_vec()),
                        ext.value_bytes().to_vec(),
                    ));
                }
            } else if key.starts_with(b"GNU.sparse.") {
                return Err(UnpackError::Unsupported {
                    entry: cx.entry.to_string(),
                    kind: String::from("a PAX-format sparse file"),
                });
            }
        }
    }
    let header = entry.header();
    let mtime = match mtime {
        Some(t) => t,
        None => {
            let secs = header
                .mtime()
                .map_err(|e| cx.invalid(format!("bad mtime: {e}")))?;
            let secs = i64::try_from(secs).map_err(|_| cx.invalid("mtime out of range"))?;
            TimeSpec::new(secs, 0)
        }
    };
    let mode = header
        .mode()
        .map_err(|e| cx.invalid(format!("bad mode: {e}")))?;
    Ok(Meta {
        uid: Uid::from_raw(header_id(header.uid(), cx)?),
        gid: Gid::from_raw(header_id(header.gid(), cx)?),
        mode: Mode::from_bits_truncate(mode & 0o7777),
        mtime,
        xattrs,
    })
}
