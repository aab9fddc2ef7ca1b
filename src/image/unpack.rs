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

use std::cell::Cell;
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
/// Whenever one of these is returned, no temporary directory is left and `dest` was not created.
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
    #[error("cannot start the unpacking thread: {source}")]
    Thread {
        #[source]
        source: io::Error,
    },
    #[error("cannot read the layer stream ({compression:?}): {source}")]
    Decompress {
        compression: Compression,
        #[source]
        source: io::Error,
    },
    /// `entry` says where: `usr/bin/x` (inside its data), `the entry after usr/bin/x`, ….
    #[error("layer tar stream is corrupt or truncated at {entry}: {source}")]
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
        last: None,
    };

    let (produced, consumed) =
        pipeline::run(reader, compression, |tar, budget| ex.run(tar, budget));
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

/// The most the tar reader may read between two entries: the next header plus its PAX and GNU
/// long-name/long-link records. The tar crate reads those records into memory whatever their
/// declared size, so without a bound a small, highly compressed hostile layer could make it
/// allocate as much as the layer decompresses to. Go's archive/tar (docker, containerd) allows
/// 1 MiB per record; this allows 16 MiB for all of one entry's records together.
const METADATA_BUDGET: u64 = 16 << 20;

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
    use std::cell::Cell;
    use std::rc::Rc;
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
        /// How many more bytes may be read before the consumer renews it; see
        /// [`super::METADATA_BUDGET`].
        budget: Rc<Cell<u64>>,
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
            let budget = self.budget.get();
            if budget == 0 {
                return Err(io::Error::other(format!(
                    "the tar metadata of one entry (PAX or GNU long-name records) exceeds {} MiB",
                    METADATA_BUDGET >> 20
                )));
            }
            let avail = self.cur.get(self.pos..).unwrap_or_default();
            let n = avail.len().min(buf.len());
            let n = usize::try_from(budget).map_or(n, |b| n.min(b));
            self.budget.set(budget - n as u64);
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
        F: FnOnce(&mut ChannelReader, &Cell<u64>) -> Result<(), UnpackError> + Send,
    {
        let (full_tx, full_rx) = sync_channel::<Vec<u8>>(QUEUE);
        let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(QUEUE + 2);
        std::thread::scope(|s| {
            let spawned = std::thread::Builder::new()
                .name(String::from("layer-unpack"))
                .spawn_scoped(s, move || {
                    let mut chan = ChannelReader {
                        full: full_rx,
                        empty: empty_tx,
                        cur: Vec::new(),
                        pos: 0,
                        budget: Rc::new(Cell::new(u64::MAX)),
                    };
                    let budget = Rc::clone(&chan.budget);
                    // Whatever the tar parser leaves (the end-of-archive blocks, padding, or,
                    // after an error, the rest) nobody reads; dropping `chan` tells the producer.
                    consume(&mut chan, &budget)
                });
            let worker = match spawned {
                Ok(w) => w,
                Err(source) => return (Err(UnpackError::Thread { source }), Ok(())),
            };
            let produced = produce(reader, compression, full_tx, empty_rx);
            let consumed = worker.join().unwrap_or_else(|_| {
                Err(UnpackError::Stream {
                    entry: String::from("an unknown entry"),
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

/// `root` with the components appended (for messages and by-path calls).
pub(crate) fn join(root: &Path, comps: &[Vec<u8>]) -> PathBuf {
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

/// Flags for opening a directory that must not be a symlink (shared with `runtime::volume`).
pub(crate) fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// Whether `st` describes a file of type `kind` (`S_IFDIR`, `S_IFLNK`, ...).
pub(crate) fn is_kind(st: &nix::sys::stat::FileStat, kind: SFlag) -> bool {
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
pub(crate) fn open_existing(root: &File, comps: &[Vec<u8>]) -> Result<File, Errno> {
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
    /// The previous entry's name, for errors between entries.
    last: Option<String>,
}

impl Extractor<'_> {
    /// Unpacks every entry. `budget` bounds what the tar reader may read on its own between two
    /// entries; while an entry is ours (its data being written or drained) it is unlimited.
    fn run<R: Read>(&mut self, stream: R, budget: &Cell<u64>) -> Result<(), UnpackError> {
        let mut archive = tar::Archive::new(stream);
        let where_ = |last: &Option<String>| match last {
            Some(l) => format!("the entry after {l}"),
            None => String::from("the first entry"),
        };
        let entries = archive.entries().map_err(|source| UnpackError::Stream {
            entry: where_(&self.last),
            source,
        })?;
        let mut entries = entries;
        loop {
            budget.set(METADATA_BUDGET);
            let Some(item) = entries.next() else {
                return Ok(());
            };
            let mut entry = item.map_err(|source| UnpackError::Stream {
                entry: where_(&self.last),
                source,
            })?;
            budget.set(u64::MAX);
            self.entry(&mut entry)?;
            // Whatever data the entry still has (a directory or link that declares a size, a
            // skipped PAX global header) is read here rather than by the tar reader's skip, so
            // that the budget counts only headers and extension records.
            io::copy(&mut entry, &mut io::sink()).map_err(|source| UnpackError::Stream {
                entry: where_(&self.last),
                source,
            })?;
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            // Archive-wide defaults (usually a comment); docker and containerd ignore them too.
            return Ok(());
        }
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        self.last = Some(name.clone());
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
        let uid = header_id(numeric(header.uid(), header, UID), cx)?;
        let gid = header_id(numeric(header.gid(), header, GID), cx)?;
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
                // Pre-POSIX headers have no device fields at all: 0, as Go's archive/tar says.
                let num = |r: io::Result<Option<u32>>, field| {
                    numeric(r, header, field)
                        .map(Option::unwrap_or_default)
                        .map_err(|e| cx.invalid(format!("bad device number: {e}")))
                };
                let major = num(header.device_major(), DEVMAJOR)?;
                let minor = num(header.device_minor(), DEVMINOR)?;
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

// Where the numeric fields sit in a ustar/GNU header block.
const MODE: std::ops::Range<usize> = 100..108;
const UID: std::ops::Range<usize> = 108..116;
const GID: std::ops::Range<usize> = 116..124;
const MTIME: std::ops::Range<usize> = 136..148;
const DEVMAJOR: std::ops::Range<usize> = 329..337;
const DEVMINOR: std::ops::Range<usize> = 337..345;

/// A numeric header field, where a field left empty (all NULs or spaces) reads as 0, as Go's
/// archive/tar (and so docker and containerd) reads it; the tar crate calls that an error.
fn numeric<T: Default>(
    parsed: io::Result<T>,
    header: &tar::Header,
    field: std::ops::Range<usize>,
) -> io::Result<T> {
    match parsed {
        Err(_)
            if header
                .as_bytes()
                .get(field)
                .is_some_and(|f| f.iter().all(|b| *b == 0 || *b == b' ')) =>
        {
            Ok(T::default())
        }
        r => r,
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
            let secs = numeric(header.mtime(), header, MTIME)
                .map_err(|e| cx.invalid(format!("bad mtime: {e}")))?;
            let secs = i64::try_from(secs).map_err(|_| cx.invalid("mtime out of range"))?;
            TimeSpec::new(secs, 0)
        }
    };
    let mode =
        numeric(header.mode(), header, MODE).map_err(|e| cx.invalid(format!("bad mode: {e}")))?;
    Ok(Meta {
        uid: Uid::from_raw(header_id(numeric(header.uid(), header, UID), cx)?),
        gid: Gid::from_raw(header_id(numeric(header.gid(), header, GID), cx)?),
        mode: Mode::from_bits_truncate(mode & 0o7777),
        mtime,
        xattrs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    /// Everything here creates device nodes, chowns, or sets `trusted.*` xattrs.
    fn is_root() -> bool {
        if nix::unistd::geteuid().is_root() {
            true
        } else {
            eprintln!("SKIPPED (needs root)");
            false
        }
    }

    macro_rules! needs_root {
        () => {
            if !is_root() {
                return;
            }
        };
    }

    fn sha256(b: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(b)))
    }

    fn octal(field: &mut [u8], v: u64) {
        let s = format!("{:0w$o}\0", v, w = field.len() - 1);
        field.copy_from_slice(s.as_bytes());
    }

    /// A ustar header written by hand, for names the tar crate's Builder refuses to write.
    fn raw_header(name: &[u8], typeflag: u8, size: u64, link: &[u8], mode: u32) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name);
        octal(&mut h[100..108], u64::from(mode));
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], size);
        octal(&mut h[136..148], 1_600_000_000);
        h[156] = typeflag;
        h[157..157 + link.len()].copy_from_slice(link);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        h
    }

    /// A layer being built: the tar crate's Builder for well-formed entries, raw bytes for the
    /// hostile ones.
    struct Layer {
        b: tar::Builder<Vec<u8>>,
    }

    impl Layer {
        fn new() -> Self {
            Layer {
                b: tar::Builder::new(Vec::new()),
            }
        }

        fn header(path: &str, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
            let mut h = tar::Header::new_ustar();
            h.set_path(path).unwrap();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(size);
            h.set_mtime(1_600_000_000);
            h.set_uid(0);
            h.set_gid(0);
            h
        }

        fn add(&mut self, mut h: tar::Header, data: &[u8]) -> &mut Self {
            h.set_cksum();
            self.b.append(&h, data).unwrap();
            self
        }

        fn file(&mut self, path: &str, data: &[u8], mode: u32) -> &mut Self {
            let h = Self::header(path, tar::EntryType::Regular, mode, data.len() as u64);
            self.add(h, data)
        }

        fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
            let h = Self::header(path, tar::EntryType::Directory, mode, 0);
            self.add(h, &[])
        }

        fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
            let mut h = Self::header(path, tar::EntryType::Symlink, 0o777, 0);
            h.set_link_name_literal(target).unwrap();
            self.add(h, &[])
        }

        fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
            let mut h = Self::header(path, tar::EntryType::Link, 0o644, 0);
            h.set_link_name_literal(target).unwrap();
            self.add(h, &[])
        }

        fn node(
            &mut self,
            path: &str,
            kind: tar::EntryType,
            mode: u32,
            dev: (u32, u32),
        ) -> &mut Self {
            let mut h = Self::header(path, kind, mode, 0);
            h.set_device_major(dev.0).unwrap();
            h.set_device_minor(dev.1).unwrap();
            self.add(h, &[])
        }

        fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
            self.b
                .append_pax_extensions(records.iter().copied())
                .unwrap();
            self
        }

        fn raw(&mut self, name: &[u8], typeflag: u8, link: &[u8], data: &[u8]) -> &mut Self {
            let out = self.b.get_mut();
            out.extend_from_slice(&raw_header(name, typeflag, data.len() as u64, link, 0o644));
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
            self
        }

        fn finish(self) -> Vec<u8> {
            self.b.into_inner().unwrap()
        }
    }

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    fn zstd(b: &[u8]) -> Vec<u8> {
        zstd::stream::encode_all(b, 3).unwrap()
    }

    struct Out {
        _tmp: tempfile::TempDir,
        parent: PathBuf,
        dest: PathBuf,
    }

    impl Out {
        fn new() -> Self {
            let tmp = tempfile::tempdir().unwrap();
            let parent = tmp.path().join("layers");
            std::fs::create_dir(&parent).unwrap();
            let dest = parent.join("sha256-abc");
            Out {
                _tmp: tmp,
                parent,
                dest,
            }
        }

        fn unpack(
            &self,
            bytes: &[u8],
            c: Compression,
            digest: Option<&str>,
        ) -> Result<UnpackStats, UnpackError> {
            unpack_layer(bytes, c, digest, &self.dest)
        }

        fn p(&self, rel: &str) -> PathBuf {
            self.dest.join(rel)
        }

        /// Neither `dest` nor any temporary sibling exists.
        fn assert_clean(&self) {
            let left: Vec<_> = std::fs::read_dir(&self.parent)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert!(left.is_empty(), "left behind: {left:?}");
        }
    }

    fn lmeta(p: &Path) -> std::fs::Metadata {
        std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn basic_layer() -> Vec<u8> {
        let mut l = Layer::new();
        l.dir("etc/", 0o755)
            .file("etc/hostname", b"wharf\n", 0o644)
            .symlink("bin", "usr/bin")
            .file("usr/bin/tool", b"#!/bin/sh\necho hi\n", 0o755);
        l.finish()
    }

    fn check_basic(o: &Out, stats: &UnpackStats, tar_bytes: &[u8]) {
        assert_eq!(std::fs::read(o.p("etc/hostname")).unwrap(), b"wharf\n");
        let m = lmeta(&o.p("etc/hostname"));
        assert_eq!(m.mode() & 0o7777, 0o644);
        assert_eq!(m.mtime(), 1_600_000_000);
        assert_eq!(
            std::fs::read_link(o.p("bin")).unwrap(),
            Path::new("usr/bin")
        );
        assert_eq!(lmeta(&o.p("usr/bin/tool")).mode() & 0o7777, 0o755);
        // Implicit directories: 0755 root:root.
        for d in ["usr", "usr/bin"] {
            let m = lmeta(&o.p(d));
            assert!(m.is_dir());
            assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o755, 0, 0), "{d}");
        }
        assert_eq!(lmeta(&o.p("etc")).mtime(), 1_600_000_000);
        assert_eq!(stats.entries, 4);
        assert_eq!(stats.bytes, 6 + 18);
        assert_eq!(stats.diff_id, sha256(tar_bytes));
        let siblings: Vec<_> = std::fs::read_dir(&o.parent)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(siblings, vec![OsString::from("sha256-abc")]);
    }

    #[test]
    fn plain_gzip_and_zstd_layers_unpack_the_same() {
        needs_root!();
        let tar = basic_layer();
        for (c, blob) in [
            (Compression::None, tar.clone()),
            (Compression::Gzip, gzip(&tar)),
            (Compression::Zstd, zstd(&tar)),
        ] {
            assert_eq!(Compression::sniff(&blob), c);
            let o = Out::new();
            let stats = o.unpack(&blob, c, Some(&sha256(&blob))).unwrap();
            check_basic(&o, &stats, &tar);
        }
    }

    #[test]
    fn concatenated_gzip_members_and_trailing_padding_are_read_and_hashed() {
        needs_root!();
        let mut tar = basic_layer();
        tar.extend_from_slice(&[0u8; 4096]); // record padding after the end marker
        let (a, b) = tar.split_at(700);
        let mut blob = gzip(a);
        blob.extend_from_slice(&gzip(b));
        let o = Out::new();
        let stats = o
            .unpack(&blob, Compression::Gzip, Some(&sha256(&blob)))
            .unwrap();
        check_basic(&o, &stats, &tar);
    }

    #[test]
    fn media_types_and_sniffing() {
        use Compression as C;
        for (mt, want) in [
            ("application/vnd.oci.image.layer.v1.tar", Some(C::None)),
            ("application/vnd.oci.image.layer.v1.tar+gzip", Some(C::Gzip)),
            ("application/vnd.oci.image.layer.v1.tar+zstd", Some(C::Zstd)),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                Some(C::Gzip),
            ),
            (
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                Some(C::Gzip),
            ),
            (
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                Some(C::Gzip),
            ),
            (
                "application/vnd.docker.image.rootfs.diff.tar",
                Some(C::None),
            ),
            (
                "Application/VND.OCI.Image.Layer.v1.Tar+Gzip; foo=bar",
                Some(C::Gzip),
            ),
            ("application/vnd.oci.image.config.v1+json", None),
            ("application/vnd.oci.image.layer.v1.tar+bzip2", None),
            ("", None),
        ] {
            assert_eq!(Compression::from_media_type(mt), want, "{mt}");
        }
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), C::Gzip);
        assert_eq!(Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]), C::Zstd);
        assert_eq!(Compression::sniff(b"etc/"), C::None);
        assert_eq!(Compression::sniff(&[]), C::None);
        assert_eq!(Compression::sniff(&[0x1f]), C::None);
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts() {
        needs_root!();
        let mut l = Layer::new();
        l.file(".wh.gone", b"", 0o600)
            .dir("dir/", 0o755)
            .file("dir/.wh.old", b"", 0o600)
            .file("dir/kept", b"k", 0o644);
        let o = Out::new();
        let stats = o.unpack(&l.finish(), Compression::None, None).unwrap();
        assert_eq!(stats.entries, 4);
        for w in ["gone", "dir/old"] {
            let m = lmeta(&o.p(w));
            assert!(m.file_type().is_char_device(), "{w}");
            assert_eq!((m.rdev(), m.mode() & 0o7777), (0, 0), "{w}");
        }
        assert!(!o.p(".wh.gone").exists() && !o.p("dir/.wh.old").exists());
        assert!(o.p("dir/kept").exists());
    }

    #[test]
    fn opaque_marker_sets_the_xattr_even_before_its_directory() {
        needs_root!();
        let mut l = Layer::new();
        l.file("d/.wh..wh..opq", b"", 0o600)
            .dir("d/", 0o750)
            .file("d/new", b"n", 0o644)
            .file(".wh..wh..opq", b"", 0o600)
            .file("e/.wh..wh.plnk", b"", 0o600); // AUFS bookkeeping: ignored
        let o = Out::new();
        o.unpack(&l.finish(), Compression::None, None).unwrap();
        assert_eq!(
            xattr::get(o.p("d"), "trusted.overlay.opaque")
                .unwrap()
                .as_deref(),
            Some(&b"y"[..])
        );
        assert_eq!(
            xattr::get(&o.dest, "trusted.overlay.opaque")
                .unwrap()
                .as_deref(),
            Some(&b"y"[..])
        );
        assert_eq!(lmeta(&o.p("d")).mode() & 0o7777, 0o750);
        assert!(o.p("d/new").exists());
        assert!(!o.p("d/.wh..wh..opq").exists());
        assert!(!o.p("e").exists(), "AUFS metadata is skipped entirely");
    }

    #[test]
    fn invalid_whiteout_names_are_refused() {
        needs_root!();
        for name in [&b".wh."[..], b"x/.wh."] {
            let mut l = Layer::new();
            l.raw(name, b'0', b"", b"");
            let o = Out::new();
            let err = o.unpack(&l.finish(), Compression::None, None).unwrap_err();
            assert!(matches!(err, UnpackError::InvalidEntry { .. }), "{err}");
            o.assert_clean();
        }
    }

    #[test]
    fn hardlink_to_an_earlier_entry() {
        needs_root!();
        let mut l = Layer::new();
        l.file("a/f", b"data", 0o640)
            .hardlink("b/g", "a/f")
            .raw(b"/c", b'1', b"./a/../a/f", b"");
        let o = Out::new();
        o.unpack(&l.finish(), Compression::None, None).unwrap();
        let (f, g, c) = (lmeta(&o.p("a/f")), lmeta(&o.p("b/g")), lmeta(&o.p("c")));
        assert_eq!((f.ino(), f.nlink()), (g.ino(), 3));
        assert_eq!(c.ino(), f.ino());
        assert_eq!(std::fs::read(o.p("b/g")).unwrap(), b"data");
    }

    #[test]
    fn hardlinks_that_escape_or_miss_are_refused() {
        needs_root!();
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret");
        std::fs::write(&secret, b"s").unwrap();
        type Case = (&'static str, Vec<u8>, fn(&UnpackError) -> bool);
        let cases: Vec<Case> = vec![
            ("../../x", b"../../x".to_vec(), |e| {
                matches!(e, UnpackError::LinkEscape { .. })
            }),
            ("a/../../x", b"a/../../x".to_vec(), |e| {
                matches!(e, UnpackError::LinkEscape { .. })
            }),
            ("missing", b"nope".to_vec(), |e| {
                matches!(e, UnpackError::LinkTarget { .. })
            }),
            // An absolute target is inside the layer too: the host's file is never linked.
            ("abs", secret.as_os_str().as_bytes().to_vec(), |e| {
                matches!(e, UnpackError::LinkTarget { .. })
            }),
            ("root", b"/".to_vec(), |e| {
                matches!(e, UnpackError::LinkTarget { .. })
            }),
            ("dir", b"d".to_vec(), |e| {
                matches!(e, UnpackError::LinkTarget { .. })
            }),
            // Through a symlink to the outside directory.
            ("via-symlink", b"s/secret".to_vec(), |e| {
                matches!(e, UnpackError::LinkTarget { .. })
            }),
        ];
        for (what, target, ok) in cases {
            let mut l = Layer::new();
            l.dir("d/", 0o755)
                .symlink("s", outside.path().to_str().unwrap());
            l.raw(b"link", b'1', &target, b"");
            let o = Out::new();
            let err = o.unpack(&l.finish(), Compression::None, None).unwrap_err();
            assert!(ok(&err), "{what}: {err}");
            assert!(
                err.to_string().contains("link"),
                "{what}: the error names the entry: {err}"
            );
            o.assert_clean();
        }
        assert_eq!(lmeta(&secret).nlink(), 1);
    }

    #[test]
    fn dotdot_escapes_are_refused_and_harmless_dotdots_resolved() {
        needs_root!();
        for name in ["../../etc/passwd", "a/../../x", "..", "./../x"] {
            let mut l = Layer::new();
            l.file("ok", b"1", 0o644)
                .raw(name.as_bytes(), b'0', b"", b"pwned");
            let o = Out::new();
            let err = o.unpack(&l.finish(), Compression::None, None).unwrap_err();
            match &err {
                UnpackError::Escape { entry } => assert_eq!(entry, name),
                other => panic!("{name}: {other}"),
            }
            assert_eq!(
                err.to_string(),
                format!("layer entry {name} escapes the layer directory")
            );
            o.assert_clean();
        }
        let mut l = Layer::new();
        l.raw(b"a/../x", b'0', b"", b"fine")
            .raw(b"./y/./z", b'0', b"", b"z");
        let o = Out::new();
        o.unpack(&l.finish(), Compression::None, None).unwrap();
        assert_eq!(std::fs::read(o.p("x")).unwrap(), b"fine");
        assert_eq!(std::fs::read(o.p("y/z")).unwrap(), b"z");
    }

    #[test]
    fn absolute_paths_are_rooted_in_the_layer() {
        needs_root!();
        let mut l = Layer::new();
        l.raw(b"/abs/file", b'0', b"", b"abs")
            .raw(b"//double//slash", b'0', b"", b"d");
        let o = Out::new();
        o.unpack(&l.finish(), Compression::None, None).unwrap();
        assert_eq!(std::fs::read(o.p("abs/file")).unwrap(), b"abs");
        assert_eq!(std::fs::read(o.p("double/slash")).unwrap(), b"d");
    }

    #[test]
    fn paths_through_symlinks_are_refused() {
        needs_root!();
        let outside = tempfile::tempdir().unwrap();
        let out = outside.path().to_str().unwrap().to_string();
        let cases: Vec<(Vec<u8>, &[u8], u8)> = vec![
            (out.clone().into_bytes(), b"a/passwd", b'0'),
            (b"../..".to_vec(), b"a/passwd", b'0'),
            (out.clone().into_bytes(), b"a/sub/", b'5'),
            (out.clone().into_bytes(), b"a/sub/deep/file", b'0'),
            (out.clone().into_bytes(), b"a/fifo", b'6'),
            (out.clone().into_bytes(), b"a/link", b'2'),
            (out.clone().into_bytes(), b"a/.wh.x", b'0'),
            (out.clone().into_bytes(), b"a/.wh..wh..opq", b'0'),
            // `a/..` is resolved lexically and never through the symlink, so this one is fine
            // and lands at the layer root; it is here to show that it does not escape either.
        ];
        for (target, entry, typeflag) in cases {
            let mut l = Layer::new();
            l.raw(b"a", b'2', &target, b"");
            l.raw(entry, typeflag, b"whatever", b"");
            let o = Out::new();
            let err = o.unpack(&l.finish(), Compression::None, None).unwrap_err();
            let name = String::from_utf8_lossy(entry);
            match &err {
                UnpackError::SymlinkInPath { entry, component } => {
                    assert_eq!((entry.as_str(), component.as_str()), (&*name, "a"));
                }
                other => panic!("{name}: {other}"),
            }
            o.assert_clean();
        }
        assert_eq!(
            std::fs::read_dir(outside.path()).unwrap().count(),
            0,
            "nothing written outside"
        );
        // Through a regular file: not a directory.
        let mut l = Layer::new();
        l.file("f", b"", 0o644).file("f/x", b"", 0o644);
        let o = Out::new();
        let err = o.unpack(&l.finish(), Compression::None, None).unwrap_err();
        assert!(matches!(err, UnpackError::NotADirectory { .. }), "{err}");
        o.assert_clean();
    }

    #[test]
    fn replacing_a_symlink_never_follows_it() {
        needs_root!();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("target");
        let dtarget = outside.path().join("dtarget");
        let mut l = Layer::new();
        l.symlink("s", target.to_str().unwrap())
            .file("s", b"mine", 0o600)
            .symlink("d", dtarget.to_str().unwrap())
            .dir("d/", 0o700)
            .symlink("n", "/dev/null")
            .node("n", tar::EntryType::Fifo, 0o600, (0, 0))
            .symlink("h", target.to_str().unwrap())
            .file("h-src", b"src", 0o600)
            .hardlink("h", "h-src");
        let o = Out::new();
        o.unpack(&l.finish(), Compression::None, None).unwrap();
        assert!(lmeta(&o.p("s")).is_file());
        assert_eq!(std::fs::read(o.p("s")).unwrap(), b"mine");
        assert!(lmeta(&o.p("d")).is_dir());
        assert!(lmeta(&o.p("n")).file_type().is_fifo());
        assert_eq!(lmeta(&o.p("h")).ino(), lmeta(&o.p("h-src")).ino());
        assert!(!target.exists() && !dtarget.exists());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        assert!(lmeta(Path::new("/dev/null")).file_type().is_char_device());
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        needs_root!();
        let mut l = Layer::new();
        l.file("p", b"one", 0o644)
            .file("p", b"two", 0o600)
            .dir("q/", 0o755)
            .file("q/inner", b"i", 0o644)
            .dir("q/sub/", 0o755)
            .file("q", b"now a file", 0o644)
            .file("r", b"file", 0o644)
            .dir("r/", 0o711)
            .dir("keep/", 0o755)
            .file("keep/a", b"a", 0o644)
            .dir("keep/", 0o700)
            .symlink("t", "x")
            .symlink("t", "y");
        let o = Out::new();
        o.unpack(&l.finish(), Compression::None, None).unwrap();
        assert_eq!(std::fs::read(o.p("p")).unwrap(), b"two");
        assert_eq!(lmeta(&o.p("p")).mode() & 0o7777, 0o600);
        assert_eq!(std::fs::read(o.p("q")).unwrap(), b"now a file");
        assert!(lmeta(&o.p("r")).is_dir());
        assert_eq!(lmeta(&o.p("r")).mode() & 0o7777, 0o711);
        // A directory listed twice keeps its contents and takes the later metadata.
        assert_eq!(std::fs::read(o.p("keep/a")).unwrap(), b"a");
        assert_eq!(lmeta(&o.p("keep")).mode() & 0o7777, 0o700);
        assert_eq!(std::fs::read_link(o.p("t")).unwrap(), Path::new("y"));
    }

    #[test]
    fn devices_and_fifos() {
        needs_root!();
        let mut l = Layer::new();
        l.node("dev/null", tar::EntryType::Char, 0o666, (1, 3))
            .node("dev/loop9", tar::EntryType::Block, 0o660, (7, 9))
            .node("run/fifo", tar::EntryType::Fifo, 0o620, (0, 0));
        let o = Out::new();
        o.unpack(&l.finish(), Compression::None, None).unwrap();
        let null = lmeta(&o.p("dev/null"));
        assert!(null.file_type().is_char_device());
        assert_eq!((null.rdev(), null.mode() & 0o7777), (makedev(1, 3), 0o666));
        let lp = lmeta(&o.p("dev/loop9"));
        assert!(lp.file_type().is_block_device());
        assert_eq!((lp.rdev(), lp.mode() & 0o7777), (makedev(7, 9), 0o660));
        let fifo = lmeta(&o.p("run/fifo"));
        assert!(fifo.file_type().is_fifo());
        assert_eq!(fifo.mode() & 0o7777, 0o620);
        assert_eq!(fifo.mtime(), 1_600_000_000);
    }

    #[test]
    fn special_bits_and_numeric_ownership() {
        needs_root!();
        let owned = |mut h: tar::Header| {
            h.set_uid(1000);
            h.set_gid(1000);
            h.set_username("no-such-user-here").unwrap();
            h.set_groupname("root").unwrap(); // the name is ignored: ids are numeric
            h
        };
        let mut l = Layer::new();
        l.add(
            owned(Layer::header("bin/su", tar::EntryType::Regular, 0o4755, 2)),
            b"su",
        )
        .add(
            owned(Layer::header(
                "bin/wall",
                tar::EntryType::Regular,
                0o2755,
                1,
            )),
            b"w",
        )
        .add(
            owned(Layer::header("tmp/", tar::EntryType::Directory, 0o1777, 0)),
            b"",
        )
        .add(
            owned(Layer::header(
                "home/u/",
                tar::EntryType::Directory,
                0o2750,
                0,
            )),
            b"",
        );
        let mut link = owned(Layer::header("home/u/l", tar::EntryType::Symlink, 0o777, 0));
        link.set_link_name("../../bin/su").unwrap();
        l.add(link, b"");
        let mut tty = owned(Layer::header("dev/tty9", tar::EntryType::Char, 0o620, 0));
        tty.set_device_major(4).unwrap();
        tty.set_device_minor(9).unwrap();
        l.add(tty, b"");
        let o = Out::new();
        o.unpack(&l.finish(), Compression::None, None).unwrap();
        for (p, mode) in [
            ("bin/su", 0o4755),
            ("bin/wall", 0o2755),
            ("tmp", 0o1777),
            ("home/u", 0o2750),
            ("dev/tty9", 0o620),
        ] {
            let m = lmeta(&o.p(p));
            assert_eq!(
                (m.mode() & 0o7777, m.uid(), m.gid()),
                (mode, 1000, 1000),
                "{p}"
            );
        }
        let m = lmeta(&o.p("home/u/l"));
        assert_eq!((m.uid(), m.gid()), (1000, 1000));
        assert_eq!(m.mtime(), 1_600_000_000);
        // The implicit parents stay root's.
        assert_eq!(
            (lmeta(&o.p("home")).uid(), lmeta(&o.p("bin")).gid()),
            (0, 0)
        );
    }

    #[test]
    fn pax_xattrs_mtime_and_large_ids() {
        needs_root!();
        let mut l = Layer::new();
        l.pax(&[
            ("SCHILY.xattr.user.foo", b"bar"),
            ("SCHILY.xattr.trusted.wharf", b"\x00\x01binary"),
            ("SCHILY.xattr.trusted.overlay.redirect", b"/elsewhere"),
            ("mtime", b"1700000000.25"),
            ("uid", b"100000"),
            ("gid", b"200000"),
        ])
        .file("f", b"x", 0o644);
        l.pax(&[
            ("SCHILY.xattr.user.dir", b"1"),
            ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
        ])
        .dir("d/", 0o755);
        l.pax(&[("SCHILY.xattr.trusted.sym", b"s"), ("mtime", b"-1.5")])
            .symlink("s", "f");
        l.pax(&[("path", b"a-very-long-name-".repeat(10).as_slice())])
            .file("placeholder", b"long", 0o644);
        let o = Out::new();
        o.unpack(&l.finish(), Compression::None, None).unwrap();
        let f = o.p("f");
        assert_eq!(
            xattr::get(&f, "user.foo").unwrap().as_deref(),
            Some(&b"bar"[..])
        );
        assert_eq!(
            xattr::get(&f, "trusted.wharf").unwrap().as_deref(),
            Some(&b"\x00\x01binary"[..])
        );
        assert_eq!(
            xattr::get(&f, "trusted.overlay.redirect").unwrap(),
            None,
            "overlay bookkeeping is dropped"
        );
        let m = lmeta(&f);
        assert_eq!((m.mtime(), m.mtime_nsec()), (1_700_000_000, 250_000_000));
        assert_eq!((m.uid(), m.gid()), (100_000, 200_000));
        assert_eq!(
            xattr::get(o.p("d"), "user.dir").unwrap().as_deref(),
            Some(&b"1"[..])
        );
        assert_eq!(
            xattr::get(o.p("d"), "trusted.overlay.opaque")
                .unwrap()
                .as_deref(),
            Some(&b"y"[..])
        );
        let s = lmeta(&o.p("s"));
        assert_eq!((s.mtime(), s.mtime_nsec()), (-2, 500_000_000));
        assert_eq!(
            xattr::get(o.p("s"), "trusted.sym").unwrap().as_deref(),
            Some(&b"s"[..])
        );
        assert_eq!(
            std::fs::read(o.p(&"a-very-long-name-".repeat(10))).unwrap(),
            b"long"
        );
    }

    #[test]
    fn gnu_long_names_and_long_link_targets() {
        needs_root!();
        let long_dir = "d".repeat(120);
        let long_file = format!("{long_dir}/{}", "f".repeat(150));
        let long_target = format!("../{}", "t".repeat(200));
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(4);
        b.append_data(&mut h, &long_file, &b"long"[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        b.append_link(&mut h, format!("{long_dir}/sym"), &long_target)
            .unwrap();
        let o = Out::new();
        o.unpack(&b.into_inner().unwrap(), Compression::None, None)
            .unwrap();
        assert_eq!(std::fs::read(o.p(&long_file)).unwrap(), b"long");
        assert_eq!(
            std::fs::read_link(o.p(&format!("{long_dir}/sym"))).unwrap(),
            Path::new(&long_target)
        );
    }

    #[test]
    fn directory_modes_and_times_apply_after_contents() {
        needs_root!();
        let mut ro = Layer::header("ro/", tar::EntryType::Directory, 0o555, 0);
        ro.set_mtime(1000);
        let mut l = Layer::new();
        l.add(ro, b"")
            .file("ro/f", b"f", 0o444)
            .dir("ro/sub/", 0o500)
            .file("ro/sub/g", b"g", 0o400);
        let mut root = Layer::header("./", tar::EntryType::Directory, 0o750, 0);
        root.set_mtime(2000);
        l.add(root, b"");
        let o = Out::new();
        o.unpack(&l.finish(), Compression::None, None).unwrap();
        let m = lmeta(&o.p("ro"));
        assert_eq!((m.mode() & 0o7777, m.mtime()), (0o555, 1000));
        assert_eq!(lmeta(&o.p("ro/sub")).mode() & 0o7777, 0o500);
        assert_eq!(std::fs::read(o.p("ro/sub/g")).unwrap(), b"g");
        let r = lmeta(&o.dest);
        assert_eq!((r.mode() & 0o7777, r.mtime()), (0o750, 2000));
    }

    #[test]
    fn digest_mismatch_leaves_nothing() {
        needs_root!();
        let blob = gzip(&basic_layer());
        let o = Out::new();
        let wrong = sha256(b"something else");
        let err = o
            .unpack(&blob, Compression::Gzip, Some(&wrong))
            .unwrap_err();
        match &err {
            UnpackError::DigestMismatch { expected, actual } => {
                assert_eq!((expected, actual), (&wrong, &sha256(&blob)));
            }
            other => panic!("{other}"),
        }
        o.assert_clean();
        for bad in ["sha512:abcd", "sha256:xyz", "abc"] {
            let err = o.unpack(&blob, Compression::Gzip, Some(bad)).unwrap_err();
            assert!(matches!(err, UnpackError::BadDigest { .. }), "{err}");
            o.assert_clean();
        }
        // A corrupt blob is reported as the wrong blob, not by what its tar parser tripped over.
        let mut tar = basic_layer();
        tar[0] ^= 0xff;
        let err = o
            .unpack(&tar, Compression::None, Some(&sha256(&basic_layer())))
            .unwrap_err();
        assert!(matches!(err, UnpackError::DigestMismatch { .. }), "{err}");
        o.assert_clean();
    }

    #[test]
    fn leftovers_of_an_interrupted_run_are_removed() {
        needs_root!();
        let o = Out::new();
        let stale = o.parent.join("sha256-abc.tmp-4242-0");
        std::fs::create_dir_all(stale.join("usr/lib")).unwrap();
        std::fs::write(stale.join("usr/lib/half"), b"half").unwrap();
        std::fs::set_permissions(
            stale.join("usr"),
            std::os::unix::fs::PermissionsExt::from_mode(0o500),
        )
        .unwrap();
        std::fs::write(o.parent.join("sha256-abc.tmp-junk"), b"").unwrap();
        std::os::unix::fs::symlink("/etc", o.parent.join("sha256-abc.tmp-link")).unwrap();
        std::fs::write(o.parent.join("sha256-abcd"), b"unrelated").unwrap();
        let stats = o.unpack(&basic_layer(), Compression::None, None).unwrap();
        assert_eq!(stats.entries, 4);
        let mut left: Vec<_> = std::fs::read_dir(&o.parent)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["sha256-abc", "sha256-abcd"]);
        assert!(Path::new("/etc/passwd").exists());
    }

    #[test]
    fn existing_dest_is_refused_and_untouched() {
        needs_root!();
        let o = Out::new();
        std::fs::create_dir(&o.dest).unwrap();
        std::fs::write(o.dest.join("mine"), b"m").unwrap();
        let err = o
            .unpack(&basic_layer(), Compression::None, None)
            .unwrap_err();
        assert!(matches!(err, UnpackError::DestExists { .. }), "{err}");
        assert_eq!(std::fs::read_dir(&o.dest).unwrap().count(), 1);
        assert_eq!(std::fs::read_dir(&o.parent).unwrap().count(), 1);
        let err =
            unpack_layer(&basic_layer()[..], Compression::None, None, Path::new("/")).unwrap_err();
        assert!(matches!(err, UnpackError::BadDest { .. }), "{err}");
    }

    #[test]
    fn truncated_or_corrupt_streams_are_errors_and_leave_nothing() {
        needs_root!();
        let mut l = Layer::new();
        l.file("a", &[7u8; 3000], 0o644)
            .file("b", &[9u8; 5000], 0o644);
        let tar = l.finish();
        let gz = gzip(&tar);
        let zs = zstd(&tar);
        let mut bad_gz = gz.clone();
        let mid = bad_gz.len() / 2;
        bad_gz[mid] ^= 0x55;
        let mut bad_crc = gz.clone();
        let n = bad_crc.len();
        bad_crc[n - 6] ^= 1; // in the CRC32 trailer
        let cases: Vec<(&str, Compression, Vec<u8>)> = vec![
            (
                "tar cut inside data",
                Compression::None,
                tar[..512 + 1000].to_vec(),
            ),
            (
                "tar cut inside the second file",
                Compression::None,
                tar[..512 * 8 + 512 + 100].to_vec(),
            ),
            (
                "tar cut inside a header",
                Compression::None,
                tar[..512 * 7 + 100].to_vec(),
            ),
            ("gzip cut", Compression::Gzip, gz[..gz.len() - 10].to_vec()),
            (
                "gzip cut early",
                Compression::Gzip,
                gz[..gz.len() / 3].to_vec(),
            ),
            ("gzip corrupt", Compression::Gzip, bad_gz),
            ("gzip bad crc", Compression::Gzip, bad_crc),
            (
                "gzip trailing garbage",
                Compression::Gzip,
                [gz.clone(), b"garbage!".to_vec()].concat(),
            ),
            ("zstd cut", Compression::Zstd, zs[..zs.len() - 5].to_vec()),
            ("not gzip", Compression::Gzip, tar.clone()),
            ("not zstd", Compression::Zstd, tar.clone()),
            ("garbage", Compression::None, vec![0x41; 2048]),
        ];
        for (what, c, blob) in cases {
            let o = Out::new();
            let res = o.unpack(&blob, c, None);
            assert!(res.is_err(), "{what}: {res:?}");

            o.assert_clean();
        }
    }

    #[test]
    fn oversized_extension_records_are_refused_without_buffering_them() {
        needs_root!();
        let huge = vec![b'x'; (METADATA_BUDGET + 1024) as usize];
        for (flag, records) in [
            (
                b'x',
                [b"20000000 comment=".as_slice(), &huge, b"\n"].concat(),
            ),
            (b'L', huge.clone()),
        ] {
            let mut l = Layer::new();
            l.file("before", b"b", 0o644)
                .raw(b"././@LongLink", flag, b"", &records)
                .file("after", b"a", 0o644);
            let blob = gzip(&l.finish());
            let o = Out::new();
            let err = o.unpack(&blob, Compression::Gzip, None).unwrap_err();
            assert!(err.to_string().contains("exceeds 16 MiB"), "{err}");
            o.assert_clean();
        }
        // Large data on entries that are not files is drained, not counted.
        let mut l = Layer::new();
        let mut d = Layer::header("d/", tar::EntryType::Directory, 0o755, huge.len() as u64);
        d.set_cksum();
        l.b.append(&d, &huge[..]).unwrap();
        l.pax(&[("comment", b"global")]);
        l.file("d/f", b"f", 0o644);
        let o = Out::new();
        o.unpack(&l.finish(), Compression::None, None).unwrap();
        assert_eq!(std::fs::read(o.p("d/f")).unwrap(), b"f");
    }

    #[test]
    fn unsupported_entry_types_are_named() {
        needs_root!();
        let mut l = Layer::new();
        l.raw(b"volume", b'V', b"", b"");
        let o = Out::new();
        let err = o.unpack(&l.finish(), Compression::None, None).unwrap_err();
        match &err {
            UnpackError::Unsupported { entry, kind } => {
                assert_eq!(entry, "volume");
                assert!(kind.contains('V'), "{kind}");
            }
            other => panic!("{other}"),
        }
        o.assert_clean();
        let mut l = Layer::new();
        l.pax(&[("GNU.sparse.major", b"1"), ("GNU.sparse.minor", b"0")])
            .file("sparse", b"", 0o644);
        let err = Out::new()
            .unpack(&l.finish(), Compression::None, None)
            .unwrap_err();
        assert!(matches!(err, UnpackError::Unsupported { .. }), "{err}");
    }

    #[test]
    fn pax_times_parse() {
        let t = |s: &str| parse_pax_time(s.as_bytes()).map(|t| (t.tv_sec(), t.tv_nsec()));
        assert_eq!(t("12"), Some((12, 0)));
        assert_eq!(t("12.5"), Some((12, 500_000_000)));
        assert_eq!(t("12.1234567899"), Some((12, 123_456_789)));
        assert_eq!(t("-1.25"), Some((-2, 750_000_000)));
        assert_eq!(t("-3"), Some((-3, 0)));
        assert_eq!(t(".5"), Some((0, 500_000_000)));
        for bad in ["", "-", ".", "1e5", "1.2.3", "99999999999999999999", "+1"] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn normalize_paths() {
        let n = |s: &str| normalize(s.as_bytes()).map(|c| display(&c));
        assert_eq!(n("a/b/../c"), Some("a/c".into()));
        assert_eq!(n("/a//./b/"), Some("a/b".into()));
        assert_eq!(n("./"), Some(String::new()));
        assert_eq!(n("a/../.."), None);
        assert_eq!(n("../a"), None);
        assert_eq!(n("a/b/../../../c"), None);
    }

    /// Unmounts on drop, so that a failed assertion leaves no mount behind.
    struct Mounted(PathBuf);

    impl Drop for Mounted {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }

    #[test]
    fn overlay_mount_of_two_layers_applies_whiteouts_and_opaque_dirs() {
        needs_root!();
        let tmp = tempfile::tempdir().unwrap();
        let (lower, upper, merged) = (
            tmp.path().join("l1"),
            tmp.path().join("l2"),
            tmp.path().join("merged"),
        );
        let mut l = Layer::new();
        l.file("etc/a", b"a", 0o644)
            .file("etc/b", b"b", 0o644)
            .file("opq/old", b"old", 0o644)
            .file("dir/x", b"x", 0o644);
        unpack_layer(&gzip(&l.finish())[..], Compression::Gzip, None, &lower).unwrap();
        let mut l = Layer::new();
        l.file("etc/.wh.a", b"", 0o644)
            .file("opq/.wh..wh..opq", b"", 0o644)
            .file("opq/new", b"new", 0o644)
            .file(".wh.dir", b"", 0o644);
        unpack_layer(&zstd(&l.finish())[..], Compression::Zstd, None, &upper).unwrap();
        std::fs::create_dir(&merged).unwrap();
        let opts = format!("lowerdir={}:{}", upper.display(), lower.display());
        nix::mount::mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            nix::mount::MsFlags::MS_RDONLY,
            Some(opts.as_str()),
        )
        .unwrap();
        let guard = Mounted(merged.clone());
        let names = |d: &str| {
            let mut v: Vec<_> = std::fs::read_dir(merged.join(d))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names("etc"), ["b"]);
        assert_eq!(names("opq"), ["new"]);
        assert_eq!(names(""), ["etc", "opq"]);
        assert_eq!(std::fs::read(merged.join("etc/b")).unwrap(), b"b");
        assert!(!merged.join("etc/a").exists());
        drop(guard);
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(merged.to_str().unwrap()),
            "no mount left behind"
        );
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn token() -> impl Strategy<Value = &'static str> {
            prop::sample::select(vec!["a", "b", "..", ".", "", ".wh.a", ".wh..wh..opq", "c"])
        }

        fn entry_path() -> impl Strategy<Value = String> {
            (any::<bool>(), prop::collection::vec(token(), 1..5)).prop_map(|(abs, parts)| {
                format!("{}{}", if abs { "/" } else { "" }, parts.join("/"))
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

            /// Whatever the entries, nothing lands outside the layer dir, and an error leaves
            /// nothing behind.
            #[test]
            fn hostile_entry_sequences_stay_inside(
                entries in prop::collection::vec((entry_path(), 0u8..5, entry_path(), any::<bool>()), 1..8)
            ) {
                if !is_root() { return Ok(()); }
                let outside = tempfile::tempdir().unwrap();
                let sentinel = outside.path().to_str().unwrap().to_string();
                let mut l = Layer::new();
                for (path, kind, target, abs_out) in &entries {
                    let target = if *abs_out { format!("{sentinel}/{target}") } else { target.clone() };
                    let (flag, link) = match kind {
                        0 => (b'0', ""),
                        1 => (b'5', ""),
                        2 => (b'2', target.as_str()),
                        3 => (b'1', target.as_str()),
                        _ => (b'6', ""),
                    };
                    l.raw(path.as_bytes(), flag, link.as_bytes(), if flag == b'0' { b"data" } else { b"" });
                }
                let o = Out::new();
                let res = o.unpack(&l.finish(), Compression::None, None);
                prop_assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
                match res {
                    Ok(_) => {
                        let left: Vec<_> = std::fs::read_dir(&o.parent).unwrap().map(|e| e.unwrap().file_name()).collect();
                        prop_assert_eq!(left, vec![OsString::from("sha256-abc")]);
                    }
                    Err(_) => o.assert_clean(),
                }
            }

            /// Arbitrary bytes, in any compression, never panic and never leave anything.
            #[test]
            fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..3000), c in 0u8..3) {
                if !is_root() { return Ok(()); }
                let c = [Compression::None, Compression::Gzip, Compression::Zstd][usize::from(c)];
                let o = Out::new();
                if o.unpack(&bytes, c, None).is_err() {
                    o.assert_clean();
                }
            }

            /// Valid headers with random fields (sizes, modes, ids, types) never panic.
            #[test]
            fn random_header_fields_never_panic(
                mut block in prop::collection::vec(any::<u8>(), 512..=512),
                name in "[a-z]{1,5}",
                typeflag in prop::sample::select(b"0125346789xgLKSVM\0".to_vec()),
            ) {
                if !is_root() { return Ok(()); }
                block[..100].fill(0);
                block[..name.len()].copy_from_slice(name.as_bytes());
                block[156] = typeflag;
                block[148..156].copy_from_slice(b"        ");
                let sum: u32 = block.iter().map(|b| u32::from(*b)).sum();
                block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
                block.extend_from_slice(&[0u8; 2048]);
                let o = Out::new();
                if o.unpack(&block, Compression::None, None).is_err() {
                    o.assert_clean();
                }
            }
        }
    }
}
