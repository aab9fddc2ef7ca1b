//! The content-addressed image store under one root directory (the caller passes
//! `<WHARF_ROOT>/images`). It owns that directory: `blobs/sha256/<hex>` (every blob,
//! verified against its digest while it streams in), `refs/` (one small JSON record per
//! reference: reference -> manifest digest), `layers/<hex>/` (each layer blob unpacked
//! once, shared read-only by every container as an overlayfs lower dir), and `tmp/`
//! (in-flight writes). Every write goes to `tmp/` first and is renamed into place, so a
//! crash leaves nothing half-made where readers look. It must not know where blobs come
//! from (registry, layout, archive: see `layout` and the pull code), must not hard-code a
//! state root, and must never let a digest or reference string choose a path: digests
//! are checked to be `sha256:<64 lowercase hex>` before they touch the file system, and
//! reference records are named by the sha256 of the reference.
//!
//! Concurrency: `store.lock` is held shared by every operation (and by [`StagedBlob`]s
//! until they are committed or dropped) and exclusively by [`Store::prune`], so a prune
//! never removes a blob that an import has written but not yet tagged. A caller that
//! writes blobs and tags them in separate calls (a registry pull) holds
//! [`Store::lock_shared`] across the whole sequence. Each layer is unpacked under an
//! exclusive `flock` on `layers/<hex>.lock`. Unpacked layers of images that no reference
//! reaches any more are removed by `prune`: whoever runs containers must keep a
//! reference to the images in use.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use nix::fcntl::{Flock, FlockArg};
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::unpack::{self, Compression, UnpackError};

/// OCI image manifest media type.
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest v2 schema 2 media type (same JSON shape as the OCI manifest).
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type (same JSON shape as the OCI index).
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image config media type.
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker image config media type.
pub const MEDIA_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Largest JSON document (manifest, index, config, ref record) the store will parse.
pub const MAX_JSON_BYTES: u64 = 8 * 1024 * 1024;

/// Everything that can go wrong in the store; each variant names what it touched.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading blob content for {expected}: {source}")]
    ReadSource {
        expected: String,
        #[source]
        source: io::Error,
    },
    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest {
        digest: String,
        reason: &'static str,
    },
    #[error("digest mismatch: expected {expected}, got {actual}; nothing was stored")]
    DigestMismatch { expected: String, actual: String },
    #[error(
        "size mismatch for {digest}: expected {expected} bytes, got {actual}; nothing was stored"
    )]
    SizeMismatch {
        digest: String,
        expected: u64,
        actual: u64,
    },
    #[error("blob {digest} is not in the store")]
    BlobNotFound { digest: String },
    #[error("blob {digest} is larger than {limit} bytes; refusing to parse it")]
    TooLarge { digest: String, limit: u64 },
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        reference: String,
        reason: &'static str,
    },
    #[error("corrupt reference record {path}: {source}")]
    CorruptRef {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("reference record {path} names {found:?}, not {reference:?}")]
    RefCollision {
        path: PathBuf,
        reference: String,
        found: String,
    },
    #[error("manifest {digest}: {source}")]
    ParseManifest {
        digest: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("index {digest}: {source}")]
    ParseIndex {
        digest: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("image config {digest} (of manifest {manifest}): {source}")]
    ParseConfig {
        digest: String,
        manifest: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{digest} is not an image manifest (media type {media_type})")]
    NotAManifest { digest: String, media_type: String },
    #[error(
        "manifest {manifest}: config {digest} has media type {media_type}, not an image config"
    )]
    NotAnImageConfig {
        manifest: String,
        digest: String,
        media_type: String,
    },
    #[error("manifest {manifest}: {reason}")]
    CorruptImage { manifest: String, reason: String },
    #[error("unpacking layer {layer} of manifest {manifest}: {source}")]
    Unpack {
        layer: String,
        manifest: String,
        #[source]
        source: Box<UnpackError>,
    },
    #[error(
        "layer {layer} of manifest {manifest}: uncompressed digest {actual} does not match the config's diff_id {expected}; the unpacked layer was removed"
    )]
    DiffIdMismatch {
        layer: String,
        manifest: String,
        expected: String,
        actual: String,
    },
    #[error("locking {path}: {errno}")]
    Lock { path: PathBuf, errno: nix::Error },
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError + use<> {
    let path = path.to_path_buf();
    move |source| StoreError::Io { op, path, source }
}

/// Checks that `digest` is `sha256:<64 lowercase hex>` and returns the hex part. This is
/// the only way a digest string becomes part of a path.
pub fn digest_hex(digest: &str) -> Result<&str> {
    let invalid = |reason| StoreError::InvalidDigest {
        digest: digest.to_string(),
        reason,
    };
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(invalid("expected <algorithm>:<hex>"));
    };
    if algorithm != "sha256" {
        return Err(invalid("only sha256 digests are supported"));
    }
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(invalid("expected 64 lowercase hexadecimal characters"));
    }
    Ok(hex)
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Docker's health check, as found under `config.Healthcheck` in an image config
/// (durations in nanoseconds). The OCI config type has no such field, so
/// [`Store::healthcheck`] reads it from the raw config blob.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

/// An image in the store: its manifest and config, parsed.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest_digest: String,
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
    pub config_digest: String,
}

impl Image {
    /// The layer descriptors, bottom layer first (manifest order).
    pub fn layers(&self) -> &[Descriptor] {
        self.manifest.layers()
    }
}

/// One layer directory prepared by [`Store::ensure_layers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDir {
    /// Digest of the (compressed) layer blob.
    pub digest: String,
    /// `layers/<hex>/`, the overlayfs lower dir.
    pub path: PathBuf,
    /// True if this call unpacked it; false if it was already there.
    pub unpacked: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct RefRecord {
    reference: String,
    manifest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    index: Option<String>,
}

/// A held `flock` on a file of the store; released on drop.
#[derive(Debug)]
pub struct StoreLock {
    _lock: Flock<File>,
}

fn lock_file(path: &Path, arg: FlockArg) -> Result<StoreLock> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err("opening lock file", path))?;
    let lock = Flock::lock(file, arg).map_err(|(_, errno)| StoreError::Lock {
        path: path.to_path_buf(),
        errno,
    })?;
    Ok(StoreLock { _lock: lock })
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The content-addressed store. Cheap to open; several `Store`s (in one or several
/// processes) may share a root.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    shared: Mutex<Weak<StoreLock>>,
}

/// A blob written to `tmp/` and verified, not yet visible in `blobs/`. [`commit`] renames
/// it into place; dropping it removes the temporary file. Holds the store's shared lock.
///
/// [`commit`]: StagedBlob::commit
#[derive(Debug)]
pub struct StagedBlob<'s> {
    store: &'s Store,
    digest: String,
    size: u64,
    /// None when the blob was already in the store.
    tmp: Option<PathBuf>,
    _lock: Arc<StoreLock>,
}

impl StagedBlob<'_> {
    pub fn digest(&self) -> &str {
        &self.digest
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    /// Where the content can be read now (the temporary file, or the stored blob).
    pub fn path(&self) -> Result<PathBuf> {
        match &self.tmp {
            Some(tmp) => Ok(tmp.clone()),
            None => self.store.blob_path(&self.digest),
        }
    }
    /// Reads the content, refusing more than `limit` bytes.
    pub fn read_limited(&self, limit: u64) -> Result<Vec<u8>> {
        read_file_limited(&self.path()?, &self.digest, limit)
    }
    /// Whether committing will add a blob that was not in the store.
    pub fn is_new(&self) -> bool {
        self.tmp.is_some()
    }
    /// Makes the blob visible under `blobs/sha256/<hex>`; returns its size.
    pub fn commit(mut self) -> Result<u64> {
        if let Some(tmp) = self.tmp.take() {
            let dest = self.store.blob_path(&self.digest)?;
            if let Err(source) = fs::rename(&tmp, &dest) {
                let _ = fs::remove_file(&tmp);
                return Err(StoreError::Io {
                    op: "renaming blob into",
                    path: dest,
                    source,
                });
            }
            sync_dir(&self.store.root.join("blobs/sha256"))?;
        }
        Ok(self.size)
    }
}

impl Drop for StagedBlob<'_> {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// A blob being written into `tmp/`; see [`Store::blob_writer`]. Dropping it unfinished
/// removes the temporary file.
#[derive(Debug)]
pub struct BlobWriter<'s> {
    staged: StagedBlob<'s>,
    file: File,
    hasher: Sha256,
    expected: Option<String>,
    size: Option<u64>,
    written: u64,
}

impl<'s> BlobWriter<'s> {
    /// What the blob is called in errors: its expected digest, or "a new blob".
    fn what(&self) -> &str {
        self.expected.as_deref().unwrap_or("a new blob")
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Appends a chunk. More bytes than the announced size is an error at once, so a lying
    /// source cannot fill the disk.
    pub fn write(&mut self, chunk: &[u8]) -> Result<()> {
        let written = self.written + chunk.len() as u64;
        if let Some(size) = self.size.filter(|&s| written > s) {
            return Err(StoreError::SizeMismatch {
                digest: self.what().to_string(),
                expected: size,
                actual: written,
            });
        }
        self.hasher.update(chunk);
        if let Some(tmp) = &self.staged.tmp {
            self.file.write_all(chunk).map_err(io_err("writing", tmp))?;
        }
        self.written = written;
        Ok(())
    }

    /// Checks size and digest and fsyncs the file; the blob is then staged, not yet
    /// visible (see [`StagedBlob::commit`]).
    pub fn finish(self) -> Result<StagedBlob<'s>> {
        let BlobWriter {
            mut staged,
            file,
            hasher,
            expected,
            size,
            written,
        } = self;
        let what = expected.as_deref().unwrap_or("a new blob");
        if let Some(size) = size.filter(|&s| s != written) {
            return Err(StoreError::SizeMismatch {
                digest: what.to_string(),
                expected: size,
                actual: written,
            });
        }
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if let Some(expected) = expected
            && actual != expected
        {
            return Err(StoreError::DigestMismatch { expected, actual });
        }
        if let Some(tmp) = &staged.tmp {
            file.sync_all().map_err(io_err("syncing", tmp))?;
        }
        staged.digest = actual;
        staged.size = written;
        Ok(staged)
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("syncing directory", dir))
}

fn read_file_limited(path: &Path, digest: &str, limit: u64) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(io_err("opening", path))?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_err("reading", path))?;
    if bytes.len() as u64 > limit {
        return Err(StoreError::TooLarge {
            digest: digest.to_string(),
            limit,
        });
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` atomically (temporary file in `tmp_dir`, fsync, rename, fsync
/// of the parent directory).
fn write_atomic(tmp_dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    let (tmp, mut file) = create_tmp(tmp_dir, "ref")?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_err("writing", &tmp));
    drop(file);
    let renamed =
        written.and_then(|()| fs::rename(&tmp, path).map_err(io_err("renaming into", path)));
    if renamed.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    renamed?;
    match path.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

fn create_tmp(tmp_dir: &Path, what: &str) -> Result<(PathBuf, File)> {
    loop {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = tmp_dir.join(format!("{what}-{}-{n}-{nanos}", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(StoreError::Io {
                    op: "creating temporary file",
                    path,
                    source,
                });
            }
        }
    }
}

fn check_reference(reference: &str) -> Result<()> {
    let invalid = |reason| StoreError::InvalidReference {
        reference: reference.to_string(),
        reason,
    };
    if reference.is_empty() {
        return Err(invalid("empty"));
    }
    if reference.len() > 4096 {
        return Err(invalid("longer than 4096 bytes"));
    }
    if reference
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid("contains whitespace or control characters"));
    }
    Ok(())
}

/// Whether a descriptor's media type is an image manifest (OCI or Docker schema 2).
pub fn is_manifest(media_type: &MediaType) -> bool {
    matches!(media_type, MediaType::ImageManifest) || media_type.as_ref() == MEDIA_DOCKER_MANIFEST
}

/// Whether a descriptor's media type is an index (OCI index or Docker manifest list).
pub fn is_index(media_type: &MediaType) -> bool {
    matches!(media_type, MediaType::ImageIndex) || media_type.as_ref() == MEDIA_DOCKER_LIST
}

/// The two fields that tell a manifest from an index, read before parsing either.
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    manifests: Option<serde_json::Value>,
}

impl Probe {
    fn read(digest: &str, bytes: &[u8]) -> Result<Probe> {
        serde_json::from_slice(bytes).map_err(|source| StoreError::ParseManifest {
            digest: digest.to_string(),
            source,
        })
    }
}

/// Whether a manifest-or-index document (as a registry returns it for a tag) is an index:
/// its `mediaType` says so, or it has none and lists `manifests`.
pub fn is_index_document(digest: &str, bytes: &[u8]) -> Result<bool> {
    let probe = Probe::read(digest, bytes)?;
    Ok(match probe.media_type.as_deref() {
        Some(MEDIA_OCI_INDEX) | Some(MEDIA_DOCKER_LIST) => true,
        None => probe.manifests.is_some(),
        Some(_) => false,
    })
}

/// Parses a manifest blob, accepting OCI and Docker schema 2 manifests, refusing indexes.
pub fn parse_manifest(digest: &str, bytes: &[u8]) -> Result<ImageManifest> {
    let probe = Probe::read(digest, bytes)?;
    match probe.media_type.as_deref() {
        None if probe.manifests.is_some() => {
            return Err(StoreError::NotAManifest {
                digest: digest.to_string(),
                media_type: "(an index without mediaType)".to_string(),
            });
        }
        None | Some(MEDIA_OCI_MANIFEST) | Some(MEDIA_DOCKER_MANIFEST) => {}
        Some(other) => {
            return Err(StoreError::NotAManifest {
                digest: digest.to_string(),
                media_type: other.to_string(),
            });
        }
    }
    serde_json::from_slice(bytes).map_err(|source| StoreError::ParseManifest {
        digest: digest.to_string(),
        source,
    })
}

/// Parses an index blob (OCI index or Docker manifest list).
pub fn parse_index(digest: &str, bytes: &[u8]) -> Result<ImageIndex> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::ParseIndex {
        digest: digest.to_string(),
        source,
    })
}

/// Normalizes a diff_id to `sha256:<hex>` form for comparison.
fn normalize_diff_id(id: &str) -> String {
    if id.contains(':') {
        id.to_string()
    } else {
        format!("sha256:{id}")
    }
}

impl Store {
    /// Opens (creating if needed) the store at `root`: `blobs/sha256`, `layers`, `refs`,
    /// `tmp`.
    pub fn open(root: &Path) -> Result<Store> {
        for sub in ["blobs/sha256", "layers", "refs", "tmp", "locks"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(io_err("creating directory", &dir))?;
        }
        Ok(Store {
            root: root.to_path_buf(),
            shared: Mutex::new(Weak::new()),
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes (or shares, within this `Store`) the store-wide shared lock. Hold it across a
    /// sequence of writes and tags that must not be interrupted by [`Store::prune`]. Do not
    /// call `prune` from a thread holding it: that would wait forever.
    pub fn lock_shared(&self) -> Result<Arc<StoreLock>> {
        let mut slot = match self.shared.lock() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(lock) = slot.upgrade() {
            return Ok(lock);
        }
        let lock = Arc::new(lock_file(
            &self.root.join("store.lock"),
            FlockArg::LockShared,
        )?);
        *slot = Arc::downgrade(&lock);
        Ok(lock)
    }

    /// `blobs/sha256/<hex>` for a syntactically valid digest (whether or not present).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        let hex = digest_hex(digest)?;
        Ok(self.root.join("blobs/sha256").join(hex))
    }

    /// Whether the blob is present (false for an invalid digest).
    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_ok_and(|p| p.is_file())
    }

    /// The whole blob.
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let path = self.blob_path(digest)?;
        fs::read(&path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                StoreError::BlobNotFound {
                    digest: digest.to_string(),
                }
            } else {
                StoreError::Io {
                    op: "reading",
                    path,
                    source,
                }
            }
        })
    }

    /// The blob, refusing more than `limit` bytes (for JSON documents).
    pub fn read_blob_limited(&self, digest: &str, limit: u64) -> Result<Vec<u8>> {
        if !self.has_blob(digest) {
            self.blob_path(digest)?;
            return Err(StoreError::BlobNotFound {
                digest: digest.to_string(),
            });
        }
        read_file_limited(&self.blob_path(digest)?, digest, limit)
    }

    /// Streams a blob into the store, verifying it against `expected`; see
    /// [`Store::stage_blob`]. Returns its size.
    pub fn put_blob(&self, reader: impl Read, expected: &str) -> Result<u64> {
        self.stage_blob(reader, Some(expected), None)?.commit()
    }

    /// Stores a blob we produced ourselves, returning its digest.
    pub fn put_blob_unverified(&self, reader: impl Read) -> Result<String> {
        let staged = self.stage_blob(reader, None, None)?;
        let digest = staged.digest().to_string();
        staged.commit()?;
        Ok(digest)
    }

    /// Streams a blob into `tmp/`, hashing it as it is written, checks it against
    /// `expected` (and `size`, if given), and fsyncs it. Nothing becomes visible until
    /// [`StagedBlob::commit`]. On a mismatch the temporary file is removed and the error
    /// names the expected and actual digest. If `expected` is already in the store, the
    /// reader is not read at all.
    pub fn stage_blob(
        &self,
        reader: impl Read,
        expected: Option<&str>,
        size: Option<u64>,
    ) -> Result<StagedBlob<'_>> {
        if let Some(existing) = self.existing_blob(expected, size)? {
            return Ok(existing);
        }
        let mut writer = self.blob_writer(expected, size)?;
        // Read at most one byte past the expected size so a lying stream cannot fill the disk.
        let limit = size.map_or(u64::MAX, |s| s.saturating_add(1));
        let mut reader = reader.take(limit);
        let mut buf = vec![0u8; 128 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(StoreError::ReadSource {
                        expected: writer.what().to_string(),
                        source,
                    });
                }
            };
            writer.write(buf.get(..n).unwrap_or_default())?;
        }
        writer.finish()
    }

    /// The stored blob `expected` as an already-committed [`StagedBlob`], if the store has
    /// it (checking `size`, if given); `None` when it must be fetched.
    pub fn existing_blob(
        &self,
        expected: Option<&str>,
        size: Option<u64>,
    ) -> Result<Option<StagedBlob<'_>>> {
        let Some(expected) = expected else {
            return Ok(None);
        };
        digest_hex(expected)?;
        if !self.has_blob(expected) {
            return Ok(None);
        }
        let lock = self.lock_shared()?;
        let path = self.blob_path(expected)?;
        let actual = fs::metadata(&path)
            .map_err(io_err("inspecting", &path))?
            .len();
        if let Some(size) = size.filter(|&s| s != actual) {
            return Err(StoreError::SizeMismatch {
                digest: expected.to_string(),
                expected: size,
                actual,
            });
        }
        Ok(Some(StagedBlob {
            store: self,
            digest: expected.to_string(),
            size: actual,
            tmp: None,
            _lock: lock,
        }))
    }

    /// A writer for a new blob in `tmp/`, fed chunk by chunk (a registry download) and
    /// hashed as it goes; [`BlobWriter::finish`] verifies it against `expected` and `size`.
    pub fn blob_writer(&self, expected: Option<&str>, size: Option<u64>) -> Result<BlobWriter<'_>> {
        if let Some(expected) = expected {
            digest_hex(expected)?;
        }
        let lock = self.lock_shared()?;
        let (tmp, file) = create_tmp(&self.root.join("tmp"), "blob")?;
        Ok(BlobWriter {
            // From here on, the staged value owns the temporary file and removes it on error.
            staged: StagedBlob {
                store: self,
                digest: String::new(),
                size: 0,
                tmp: Some(tmp),
                _lock: lock,
            },
            file,
            hasher: Sha256::new(),
            expected: expected.map(str::to_string),
            size,
            written: 0,
        })
    }

    fn ref_path(&self, reference: &str) -> PathBuf {
        self.root.join("refs").join(format!(
            "{}.json",
            hex::encode(Sha256::digest(reference.as_bytes()))
        ))
    }

    fn read_ref(&self, path: &Path) -> Result<Option<RefRecord>> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StoreError::Io {
                    op: "reading",
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let record: RefRecord =
            serde_json::from_slice(&bytes).map_err(|source| StoreError::CorruptRef {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Some(record))
    }

    fn read_ref_for(&self, reference: &str) -> Result<Option<RefRecord>> {
        check_reference(reference)?;
        let path = self.ref_path(reference);
        match self.read_ref(&path)? {
            Some(record) if record.reference != reference => Err(StoreError::RefCollision {
                path,
                reference: reference.to_string(),
                found: record.reference,
            }),
            other => Ok(other),
        }
    }

    /// Records that `reference` (a normalized reference such as
    /// `docker.io/library/busybox:latest`) names the image whose manifest is `manifest`.
    /// The manifest blob must be in the store.
    pub fn tag(&self, reference: &str, manifest: &str) -> Result<()> {
        self.write_ref(reference, manifest, None)
    }

    /// Like [`Store::tag`], also recording the index the manifest was chosen from, which
    /// `prune` then keeps too.
    pub fn tag_with_index(&self, reference: &str, manifest: &str, index: &str) -> Result<()> {
        self.write_ref(reference, manifest, Some(index))
    }

    fn write_ref(&self, reference: &str, manifest: &str, index: Option<&str>) -> Result<()> {
        check_reference(reference)?;
        let _lock = self.lock_shared()?;
        for digest in std::iter::once(manifest).chain(index) {
            digest_hex(digest)?;
            if !self.has_blob(digest) {
                return Err(StoreError::BlobNotFound {
                    digest: digest.to_string(),
                });
            }
        }
        let record = RefRecord {
            reference: reference.to_string(),
            manifest: manifest.to_string(),
            index: index.map(str::to_string),
        };
        let path = self.ref_path(reference);
        let bytes =
            serde_json::to_vec_pretty(&record).map_err(|source| StoreError::CorruptRef {
                path: path.clone(),
                source,
            })?;
        write_atomic(&self.root.join("tmp"), &path, &bytes)
    }

    /// Holds an exclusive lock for bringing in `reference` (a normalized reference), so
    /// that concurrent pulls of one image (parallel projects, parallel CI jobs) fetch it
    /// once: the second waits, then finds the blobs there. Blocks until it is free.
    pub fn lock_reference(&self, reference: &str) -> Result<StoreLock> {
        check_reference(reference)?;
        let name = hex::encode(Sha256::digest(reference.as_bytes()));
        lock_file(
            &self.root.join("locks").join(format!("{name}.lock")),
            FlockArg::LockExclusive,
        )
    }

    /// When `reference` was last written (pulled, loaded or tagged), for `pull_policy`
    /// `daily` and the like; None if there is no such reference.
    pub fn tagged_at(&self, reference: &str) -> Result<Option<std::time::SystemTime>> {
        if self.read_ref_for(reference)?.is_none() {
            return Ok(None);
        }
        let path = self.ref_path(reference);
        let meta = fs::metadata(&path).map_err(io_err("inspecting", &path))?;
        Ok(meta.modified().ok())
    }

    /// The manifest digest `reference` names, if any.
    pub fn resolve(&self, reference: &str) -> Result<Option<String>> {
        Ok(self.read_ref_for(reference)?.map(|r| r.manifest))
    }

    /// Removes `reference`; returns whether it existed. Blobs stay until [`Store::prune`].
    pub fn untag(&self, reference: &str) -> Result<bool> {
        if self.read_ref_for(reference)?.is_none() {
            return Ok(false);
        }
        let path = self.ref_path(reference);
        match fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(&self.root.join("refs"))?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(StoreError::Io {
                op: "removing",
                path,
                source,
            }),
        }
    }

    /// Removes an image reference (`wharf image rm`): the same as [`Store::untag`]; run
    /// [`Store::prune`] to reclaim the space.
    pub fn remove(&self, reference: &str) -> Result<bool> {
        self.untag(reference)
    }

    fn records(&self) -> Result<Vec<RefRecord>> {
        let dir = self.root.join("refs");
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err("listing", &dir))? {
            let entry = entry.map_err(io_err("listing", &dir))?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                if let Some(record) = self.read_ref(&path)? {
                    out.push(record);
                }
            }
        }
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(out)
    }

    /// Every (reference, manifest digest), sorted by reference.
    pub fn list(&self) -> Result<Vec<(String, String)>> {
        Ok(self
            .records()?
            .into_iter()
            .map(|r| (r.reference, r.manifest))
            .collect())
    }

    /// The image behind a manifest digest: parsed manifest (OCI or Docker schema 2) and
    /// config.
    pub fn image(&self, manifest: &str) -> Result<Image> {
        let bytes = self.read_blob_limited(manifest, MAX_JSON_BYTES)?;
        let parsed = parse_manifest(manifest, &bytes)?;
        let config_desc = parsed.config();
        let config_media = config_desc.media_type().as_ref();
        if config_media != MEDIA_OCI_CONFIG && config_media != MEDIA_DOCKER_CONFIG {
            return Err(StoreError::NotAnImageConfig {
                manifest: manifest.to_string(),
                digest: config_desc.digest().to_string(),
                media_type: config_media.to_string(),
            });
        }
        let config_digest = config_desc.digest().to_string();
        let config_bytes = self.read_blob_limited(&config_digest, MAX_JSON_BYTES)?;
        let config: ImageConfiguration =
            serde_json::from_slice(&config_bytes).map_err(|source| StoreError::ParseConfig {
                digest: config_digest.clone(),
                manifest: manifest.to_string(),
                source,
            })?;
        Ok(Image {
            manifest_digest: manifest.to_string(),
            manifest: parsed,
            config,
            config_digest,
        })
    }

    /// The Docker `Healthcheck` of the image's config, which the OCI config type drops.
    pub fn healthcheck(&self, image: &Image) -> Result<Option<Healthcheck>> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default)]
            config: Option<RawConfig>,
        }
        #[derive(Deserialize)]
        struct RawConfig {
            #[serde(default, rename = "Healthcheck")]
            healthcheck: Option<Healthcheck>,
        }
        let bytes = self.read_blob_limited(&image.config_digest, MAX_JSON_BYTES)?;
        let raw: Raw =
            serde_json::from_slice(&bytes).map_err(|source| StoreError::ParseConfig {
                digest: image.config_digest.clone(),
                manifest: image.manifest_digest.clone(),
                source,
            })?;
        Ok(raw.config.and_then(|c| c.healthcheck))
    }

    /// Makes sure every layer of the image is unpacked into `layers/<hex>/`, bottom layer
    /// first (manifest order). Each layer is checked-and-unpacked under an exclusive flock
    /// on `layers/<hex>.lock`, so concurrent callers unpack it once; the unpacked tree's
    /// diff_id is checked against the config.
    pub fn ensure_layers(&self, manifest: &str) -> Result<Vec<LayerDir>> {
        let _lock = self.lock_shared()?;
        let image = self.image(manifest)?;
        let diff_ids = image.config.rootfs().diff_ids();
        if diff_ids.len() != image.layers().len() {
            return Err(StoreError::CorruptImage {
                manifest: manifest.to_string(),
                reason: format!(
                    "{} layers but {} diff_ids in config {}",
                    image.layers().len(),
                    diff_ids.len(),
                    image.config_digest
                ),
            });
        }
        let mut out = Vec::with_capacity(diff_ids.len());
        for (layer, diff_id) in image.layers().iter().zip(diff_ids) {
            out.push(self.ensure_layer(manifest, layer, diff_id)?);
        }
        Ok(out)
    }

    /// Whether the layer `digest` has been unpacked (a cheap check, for progress output; the
    /// authoritative check happens under the layer's lock in [`Store::ensure_layer`]).
    pub fn is_unpacked(&self, digest: &str) -> bool {
        digest_hex(digest).is_ok_and(|hex| {
            self.root
                .join("layers")
                .join(hex)
                .symlink_metadata()
                .is_ok_and(|m| m.is_dir())
        })
    }

    /// Makes sure one layer (whose blob is in the store) is unpacked into `layers/<hex>/`
    /// and matches `diff_id`; see [`Store::ensure_layers`]. `manifest` is named in errors.
    pub fn ensure_layer(
        &self,
        manifest: &str,
        layer: &Descriptor,
        diff_id: &str,
    ) -> Result<LayerDir> {
        let digest = layer.digest().to_string();
        let hex = digest_hex(&digest)?;
        let layers = self.root.join("layers");
        let dest = layers.join(hex);
        let _layer_lock = lock_file(&layers.join(format!("{hex}.lock")), FlockArg::LockExclusive)?;
        if dest.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            return Ok(LayerDir {
                digest,
                path: dest,
                unpacked: false,
            });
        }
        let blob = self.blob_path(&digest)?;
        let file = File::open(&blob).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                StoreError::BlobNotFound {
                    digest: digest.clone(),
                }
            } else {
                StoreError::Io {
                    op: "opening",
                    path: blob.clone(),
                    source,
                }
            }
        })?;
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        let compression = match Compression::from_media_type(layer.media_type().as_ref()) {
            Some(c) => c,
            None => Compression::sniff(reader.fill_buf().map_err(io_err("reading", &blob))?),
        };
        let stats = unpack::unpack_layer(reader, compression, None, &dest).map_err(|source| {
            StoreError::Unpack {
                layer: digest.clone(),
                manifest: manifest.to_string(),
                source: Box::new(source),
            }
        })?;
        let (expected, actual) = (
            normalize_diff_id(diff_id),
            normalize_diff_id(&stats.diff_id),
        );
        if expected != actual {
            let _ = fs::remove_dir_all(&dest);
            return Err(StoreError::DiffIdMismatch {
                layer: digest,
                manifest: manifest.to_string(),
                expected,
                actual,
            });
        }
        sync_dir(&layers)?;
        Ok(LayerDir {
            digest,
            path: dest,
            unpacked: true,
        })
    }

    /// The image's unpacked layer dirs in overlayfs `lowerdir` order (top layer first),
    /// unpacking what is missing; see [`Store::ensure_layers`].
    pub fn rootfs_layers(&self, manifest: &str) -> Result<Vec<PathBuf>> {
        Ok(self
            .ensure_layers(manifest)?
            .into_iter()
            .rev()
            .map(|l| l.path)
            .collect())
    }

    /// Adds to `keep` the blobs reachable from `digest` (a manifest or an index); an index's
    /// children are followed only when present (a multi-arch index is stored with the host's
    /// manifest only).
    fn mark(
        &self,
        digest: &str,
        keep: &mut BTreeSet<String>,
        layers: &mut BTreeSet<String>,
        depth: u32,
    ) -> Result<()> {
        digest_hex(digest)?;
        if depth > 8 || !keep.insert(digest.to_string()) {
            return Ok(());
        }
        let bytes = self.read_blob_limited(digest, MAX_JSON_BYTES)?;
        let probe = Probe::read(digest, &bytes)?;
        let is_index = match probe.media_type.as_deref() {
            Some(mt) => is_index(&MediaType::from(mt)),
            None => probe.manifests.is_some(),
        };
        if is_index {
            let index = parse_index(digest, &bytes)?;
            for child in index.manifests() {
                let child = child.digest().to_string();
                if self.has_blob(&child) {
                    self.mark(&child, keep, layers, depth + 1)?;
                }
            }
        } else {
            let manifest = parse_manifest(digest, &bytes)?;
            keep.insert(manifest.config().digest().to_string());
            for layer in manifest.layers() {
                keep.insert(layer.digest().to_string());
                layers.insert(layer.digest().to_string());
            }
        }
        Ok(())
    }

    /// Removes every blob and unpacked layer that no reference reaches, and whatever is
    /// left in `tmp/`; returns what was removed (`blob sha256:…`, `layer sha256:…`,
    /// `tmp NAME`), sorted. Takes the store lock exclusively, so it waits for running
    /// imports and unpacks; a reference whose manifest is missing or corrupt is an error
    /// (nothing is removed) rather than a reason to delete.
    pub fn prune(&self) -> Result<Vec<String>> {
        let _lock = lock_file(&self.root.join("store.lock"), FlockArg::LockExclusive)?;
        let mut keep = BTreeSet::new();
        let mut keep_layers = BTreeSet::new();
        for record in self.records()? {
            for digest in std::iter::once(&record.manifest).chain(record.index.as_ref()) {
                self.mark(digest, &mut keep, &mut keep_layers, 0)
                    .map_err(|e| StoreError::CorruptImage {
                        manifest: digest.clone(),
                        reason: format!("reference {}: {e}", record.reference),
                    })?;
            }
        }
        let mut removed = Vec::new();
        let blobs = self.root.join("blobs/sha256");
        for entry in fs::read_dir(&blobs).map_err(io_err("listing", &blobs))? {
            let entry = entry.map_err(io_err("listing", &blobs))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let digest = format!("sha256:{name}");
            if !keep.contains(&digest) {
                let path = entry.path();
                remove_any(&path)?;
                removed.push(format!("blob {digest}"));
            }
        }
        let layers = self.root.join("layers");
        for entry in fs::read_dir(&layers).map_err(io_err("listing", &layers))? {
            let entry = entry.map_err(io_err("listing", &layers))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let base = name.strip_suffix(".lock").unwrap_or(&name);
            let digest = format!("sha256:{base}");
            if keep_layers.contains(&digest) {
                continue;
            }
            remove_any(&entry.path())?;
            if name.ends_with(".lock") {
                continue;
            }
            if digest_hex(&digest).is_ok() {
                removed.push(format!("layer {digest}"));
            } else {
                removed.push(format!("layer leftover {name}"));
            }
        }
        let tmp = self.root.join("tmp");
        for entry in fs::read_dir(&tmp).map_err(io_err("listing", &tmp))? {
            let entry = entry.map_err(io_err("listing", &tmp))?;
            remove_any(&entry.path())?;
            removed.push(format!("tmp {}", entry.file_name().to_string_lossy()));
        }
        sync_dir(&blobs)?;
        sync_dir(&layers)?;
        removed.sort();
        Ok(removed)
    }
}

fn remove_any(path: &Path) -> Result<()> {
    let meta = path
        .symlink_metadata()
        .map_err(io_err("inspecting", path))?;
    if meta.is_dir() {
        fs::remove_dir_all(path).map_err(io_err("removing", path))
    } else {
        fs::remove_file(path).map_err(io_err("removing", path))
    }
}

/// Parses a digest with oci-spec after checking it with [`digest_hex`].
pub fn oci_digest(digest: &str) -> Result<oci_spec::image::Digest> {
    digest_hex(digest)?;
    oci_spec::image::Digest::from_str(digest).map_err(|_| StoreError::InvalidDigest {
        digest: digest.to_string(),
        reason: "rejected by oci-spec",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::fixture::testing;
    use std::sync::Barrier;

    fn count(dir: &Path) -> usize {
        fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
    }

    #[test]
    fn open_creates_the_layout() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&tmp.path().join("images")).expect("open");
        for sub in ["blobs/sha256", "layers", "refs", "tmp", "locks"] {
            assert!(store.root().join(sub).is_dir(), "{sub}");
        }
    }

    #[test]
    fn digests_never_reach_a_path_unchecked() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::open(tmp.path()).expect("open");
        let good = sha256_digest(b"x");
        let bad = [
            "sha256:../../x".to_string(),
            "sha256:../../../../../../etc/passwd".to_string(),
            "../sha256:abc".to_string(),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}/", &good[7..70]),
            format!("sha512:{}", "0".repeat(128)),
            "sha256".to_string(),
            String::new(),
            format!("{good}\n"),
        ];
        for digest in &bad {
            assert!(
                matches!(
                    store.blob_path(digest),
                    Err(StoreError::InvalidDigest { .. })
                ),
                "{digest:?}"
            );
            assert!(!store.has_blob(digest));
            assert!(store.read_blob(digest).is_err());
            assert!(store.put_blob(&b"x"[..], digest).is_err());
            assert!(store.tag("example.com/a:b", digest).is_err());
            assert!(store.image(digest).is_err());
            assert!(store.rootfs_layers(digest).is_err());
        }
        assert_eq!(count(&tmp.path().join("blobs/sha256")), 0);
        assert_eq!(count(&tmp.path().join("tmp")), 0);
        assert_eq!(
            store.blob_path(&good).expect("valid"),
            tmp.path().join("blobs/sha256").join(&good[7..])
        );
    }

    #[test]
    fn put_blob_verifies_and_is_idempotent() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::open(tmp.path()).expect("open");
        let data = b"some blob content".to_vec();
        let digest = sha256_digest(&data);

        let wrong = sha256_digest(b"other");
        let err = store
            .put_blob(data.as_slice(), &wrong)
            .expect_err("mismatch");
        let message = err.to_string();
        assert!(
            message.contains(&wrong) && message.contains(&digest),
            "names both digests: {message}"
        );
        assert_eq!(count(&tmp.path().join("blobs/sha256")), 0);
        assert_eq!(count(&tmp.path().join("tmp")), 0);

        assert_eq!(store.put_blob(data.as_slice(), &digest).expect("put"), 17);
        assert!(store.has_blob(&digest));
        assert_eq!(store.read_blob(&digest).expect("read"), data);
        // Already present: the reader is not consulted.
        assert_eq!(store.put_blob(&b"ignored"[..], &digest).expect("again"), 17);
        assert_eq!(
            store.put_blob_unverified(&b"ours"[..]).expect("unverified"),
            sha256_digest(b"ours")
        );
        // A size that does not match is refused too.
        let fresh = b"sized".to_vec();
        let err = store
            .stage_blob(fresh.as_slice(), Some(&sha256_digest(&fresh)), Some(3))
            .expect_err("size");
        assert!(matches!(err, StoreError::SizeMismatch { .. }), "{err}");
        assert!(!store.has_blob(&sha256_digest(&fresh)));
        // A staged blob that is dropped leaves nothing behind.
        let staged = store
            .stage_blob(fresh.as_slice(), None, None)
            .expect("stage");
        assert!(staged.is_new());
        drop(staged);
        assert!(!store.has_blob(&sha256_digest(&fresh)));
        assert_eq!(count(&tmp.path().join("tmp")), 0);
        assert!(matches!(
            store.read_blob(&sha256_digest(&fresh)),
            Err(StoreError::BlobNotFound { .. })
        ));
    }

    #[test]
    fn tags_resolve_untag_and_list() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::open(tmp.path()).expect("open");
        let m1 = store.put_blob_unverified(&b"{}"[..]).expect("put");
        let m2 = store.put_blob_unverified(&b"{ }"[..]).expect("put");
        let missing = sha256_digest(b"missing");
        assert!(matches!(
            store.tag("docker.io/library/a:1", &missing),
            Err(StoreError::BlobNotFound { .. })
        ));
        assert!(store.tag("", &m1).is_err());
        assert!(store.tag("has space:1", &m1).is_err());
        store.tag("docker.io/library/b:1", &m1).expect("tag");
        store.tag("docker.io/library/a:1", &m2).expect("tag");
        store.tag("docker.io/library/a:1", &m1).expect("retag");
        assert_eq!(
            store.resolve("docker.io/library/a:1").expect("resolve"),
            Some(m1.clone())
        );
        assert_eq!(
            store.resolve("docker.io/library/c:1").expect("resolve"),
            None
        );
        assert_eq!(
            store.list().expect("list"),
            vec![
                ("docker.io/library/a:1".to_string(), m1.clone()),
                ("docker.io/library/b:1".to_string(), m1.clone()),
            ]
        );
        assert!(store.untag("docker.io/library/a:1").expect("untag"));
        assert!(!store.untag("docker.io/library/a:1").expect("untag twice"));
        assert!(store.remove("docker.io/library/b:1").expect("remove"));
        assert!(store.list().expect("list").is_empty());
        assert_eq!(count(&tmp.path().join("tmp")), 0);

        // A corrupt record is an error naming the file, not a panic.
        store.tag("docker.io/library/a:1", &m1).expect("tag");
        let record = store.ref_path("docker.io/library/a:1");
        fs::write(&record, b"{\"reference\":").expect("corrupt");
        let err = store.resolve("docker.io/library/a:1").expect_err("corrupt");
        assert!(
            err.to_string().contains(&record.display().to_string()),
            "{err}"
        );
        assert!(store.list().is_err());
    }

    #[test]
    fn image_refuses_what_is_not_an_image() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::open(tmp.path()).expect("open");
        let garbage = store
            .put_blob_unverified(&b"\x00\xffnot json"[..])
            .expect("put");
        assert!(matches!(
            store.image(&garbage),
            Err(StoreError::ParseManifest { .. })
        ));
        let index = store
            .put_blob_unverified(
                &br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#[..],
            )
            .expect("put");
        assert!(matches!(
            store.image(&index),
            Err(StoreError::NotAManifest { .. })
        ));
        let config = sha256_digest(b"absent config");
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MEDIA_DOCKER_MANIFEST}","config":{{"mediaType":"{MEDIA_DOCKER_CONFIG}","digest":"{config}","size":13}},"layers":[]}}"#
        );
        let manifest = store.put_blob_unverified(manifest.as_bytes()).expect("put");
        assert!(matches!(
            store.image(&manifest),
            Err(StoreError::BlobNotFound { digest }) if digest == config
        ));
    }

    /// A one-layer image put together by hand (no busybox needed); `diff_id` overrides the
    /// config's diff_id.
    fn tiny_image(store: &Store, diff_id: Option<&str>) -> String {
        let mut layer = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(3);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        layer
            .append_data(&mut header, "file", &b"abc"[..])
            .expect("append");
        let layer = layer.into_inner().expect("tar");
        let layer_digest = store.put_blob_unverified(layer.as_slice()).expect("layer");
        let diff_id = diff_id.map_or(layer_digest.clone(), str::to_string);
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
        );
        let config_digest = store
            .put_blob_unverified(config.as_bytes())
            .expect("config");
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MEDIA_OCI_MANIFEST}","config":{{"mediaType":"{MEDIA_OCI_CONFIG}","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{}}}]}}"#,
            config.len(),
            layer.len()
        );
        store
            .put_blob_unverified(manifest.as_bytes())
            .expect("manifest")
    }

    #[test]
    fn a_layer_whose_diff_id_does_not_match_is_not_kept() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::open(tmp.path()).expect("open");
        let good = tiny_image(&store, None);
        assert_eq!(store.rootfs_layers(&good).expect("rootfs").len(), 1);

        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::open(tmp.path()).expect("open");
        let bad = tiny_image(&store, Some(&sha256_digest(b"something else")));
        let err = store.rootfs_layers(&bad).expect_err("diff_id");
        assert!(matches!(err, StoreError::DiffIdMismatch { .. }), "{err}");
        let layers = store.root().join("layers");
        let dirs = fs::read_dir(&layers)
            .expect("ls")
            .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir()))
            .count();
        assert_eq!(dirs, 0, "the mismatching layer dir was removed");
    }

    #[test]
    fn concurrent_callers_unpack_each_layer_once() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (_store, digest) = testing::loaded_store(tmp.path());
        let root = tmp.path().join("store");
        let barrier = Barrier::new(4);
        let results: Vec<Vec<LayerDir>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        // Each thread has its own Store, as separate processes would.
                        let store = Store::open(&root).expect("open");
                        barrier.wait();
                        store.ensure_layers(&digest).expect("ensure")
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        for layer in 0..2 {
            let unpacked = results.iter().filter(|r| r[layer].unpacked).count();
            assert_eq!(unpacked, 1, "layer {layer} unpacked exactly once");
            assert!(
                results
                    .iter()
                    .all(|r| r[layer].path == results[0][layer].path)
            );
        }
        assert!(results[0].iter().all(|l| l.path.is_dir()));
    }

    #[test]
    fn prune_removes_only_what_no_reference_reaches() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (store, digest) = testing::loaded_store(tmp.path());
        let image = store.image(&digest).expect("image");
        let dirs = store.rootfs_layers(&digest).expect("rootfs");
        let stray = store
            .put_blob_unverified(&b"unreferenced"[..])
            .expect("put");
        let other = tiny_image(&store, None);
        store.rootfs_layers(&other).expect("unpack the other image");
        fs::write(store.root().join("tmp/leftover"), b"x").expect("leftover");

        let removed = store.prune().expect("prune");
        assert!(removed.contains(&format!("blob {stray}")), "{removed:?}");
        assert!(removed.contains(&format!("blob {other}")), "{removed:?}");
        assert!(removed.contains(&"tmp leftover".to_string()), "{removed:?}");
        assert!(
            removed.iter().any(|r| r.starts_with("layer sha256:")),
            "{removed:?}"
        );
        assert!(!store.has_blob(&stray));
        assert!(store.has_blob(&digest));
        assert!(store.has_blob(&image.config_digest));
        for layer in image.layers() {
            assert!(store.has_blob(layer.digest().as_ref()));
        }
        assert!(
            dirs.iter().all(|d| d.is_dir()),
            "referenced layers stay unpacked"
        );
        assert!(store.prune().expect("prune again").is_empty());

        assert!(store.untag(testing::TAG).expect("untag"));
        let removed = store.prune().expect("prune all");
        assert_eq!(
            removed.iter().filter(|r| r.starts_with("blob ")).count(),
            4,
            "{removed:?}"
        );
        assert_eq!(
            removed.iter().filter(|r| r.starts_with("layer ")).count(),
            2,
            "{removed:?}"
        );
        assert_eq!(count(&store.root().join("blobs/sha256")), 0);
        assert_eq!(count(&store.root().join("layers")), 0);
    }
}
