//! Loading images into the [`Store`] from local files: an OCI image layout directory
//! (`oci-layout`, `index.json`, `blobs/sha256/…`), an OCI archive (that layout inside a
//! tar) and a `docker save` tarball (`manifest.json`, `<config>.json`, layer tars), either
//! tar optionally gzip- or zstd-compressed. It owns reading those formats, choosing the
//! host's manifest from a multi-arch index, naming the images (Docker-style reference
//! normalization) and converting Docker archives to OCI manifests. A load is all or
//! nothing: every blob is verified against its digest and size while it is copied into
//! the store's `tmp/`, and only when the whole source has been verified are the blobs
//! renamed into place and the references written, so a corrupt blob leaves no new blob
//! and no new reference behind. It must not write anywhere but through the store, and
//! never derives a path from a digest or tar entry name without checking it (tar entries
//! are never extracted by name: each is streamed into a temporary blob).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::{
    ANNOTATION_REF_NAME, Descriptor, DescriptorBuilder, ImageConfiguration, ImageIndex,
    ImageManifestBuilder, MediaType,
};
use serde::Deserialize;

use super::store::{
    self, MAX_JSON_BYTES, MEDIA_DOCKER_CONFIG, MEDIA_OCI_CONFIG, StagedBlob, Store, StoreError,
};
use super::unpack::Compression;

/// containerd's annotation with the full image name, next to a bare-tag `ref.name`.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// How deep indexes may nest (index -> index -> manifest …).
const MAX_DEPTH: u32 = 4;

/// Everything that can go wrong loading a layout or archive; each variant names the file,
/// blob or reference concerned.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not an OCI image layout: {reason}")]
    NotALayout { path: PathBuf, reason: String },
    #[error("{file}: {source}")]
    Parse {
        file: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("blob {digest} ({location}) of image {image}: {source}")]
    Blob {
        digest: String,
        location: String,
        image: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error("{context}: {source}")]
    Store {
        context: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error("blob {digest} of image {image} is missing from {location}")]
    MissingBlob {
        digest: String,
        location: String,
        image: String,
    },
    #[error("{what} {digest} in {location} has unsupported media type {media_type}")]
    UnsupportedMediaType {
        what: &'static str,
        digest: String,
        location: String,
        media_type: String,
    },
    #[error("index {digest} in {location} has no manifest for {wanted} (it has: {available})")]
    NoPlatform {
        digest: String,
        location: String,
        wanted: String,
        available: String,
    },
    #[error("indexes nest deeper than {MAX_DEPTH} levels at {digest} in {location}")]
    TooDeep { digest: String, location: String },
    #[error(
        "image {manifest} in {location} has no name (no ref.name annotation, RepoTags or name hint)"
    )]
    NoReference { manifest: String, location: String },
    #[error("invalid image reference {reference:?} in {location}: {reason}")]
    InvalidReference {
        reference: String,
        location: String,
        reason: String,
    },
    #[error("{path}: {reason}")]
    BadArchive { path: PathBuf, reason: String },
    #[error("reading archive {path}: {source}")]
    Archive {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

type Result<T, E = LayoutError> = std::result::Result<T, E>;

/// The OCI architecture name of this host (`x86_64` -> `amd64`, `aarch64` -> `arm64`, …).
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        "mips64" if cfg!(target_endian = "little") => "mips64le",
        other => other,
    }
}

// ---------------------------------------------------------------------------------------
// References

/// Normalizes a reference the way Docker does (`busybox` ->
/// `docker.io/library/busybox:latest`), through [`super::reference`]. `location` is only used
/// in errors.
pub fn normalize_reference(reference: &str, location: &str) -> Result<String> {
    let parsed = super::reference::Reference::parse(reference).map_err(|e| {
        LayoutError::InvalidReference {
            reference: reference.to_string(),
            location: location.to_string(),
            reason: e.to_string(),
        }
    })?;
    if let Some(digest) = parsed.digest()
        && store::digest_hex(digest).is_err()
    {
        return Err(LayoutError::InvalidReference {
            reference: reference.to_string(),
            location: location.to_string(),
            reason: "invalid digest (only sha256:<hex> is supported)".to_string(),
        });
    }
    Ok(parsed.to_string())
}

/// The reference for an entry of `index.json`: `ref.name` if it is a full name; a bare tag
/// combined with containerd's name annotation or `name_hint`; else the containerd name or
/// `name_hint`.
fn reference_for(
    desc: &Descriptor,
    name_hint: Option<&str>,
    location: &str,
) -> Result<Option<String>> {
    let annotation = |key: &str| {
        desc.annotations()
            .as_ref()
            .and_then(|a| a.get(key))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let base = annotation(ANNOTATION_CONTAINERD_NAME).or(name_hint);
    let reference = match annotation(ANNOTATION_REF_NAME) {
        Some(tag) if super::reference::is_tag(tag) => match base {
            Some(base) => {
                let parsed = super::reference::Reference::parse(base).map_err(|e| {
                    LayoutError::InvalidReference {
                        reference: base.to_string(),
                        location: location.to_string(),
                        reason: e.to_string(),
                    }
                })?;
                format!("{}/{}:{tag}", parsed.registry(), parsed.repository())
            }
            None => return Ok(None),
        },
        Some(full) => full.to_string(),
        None => match base {
            Some(base) => base.to_string(),
            None => return Ok(None),
        },
    };
    normalize_reference(&reference, location).map(Some)
}

// ---------------------------------------------------------------------------------------
// The import engine: sources stage verified blobs; nothing is committed until the end.

trait Source<'s> {
    /// Where `digest` is read from, for messages.
    fn location(&self, digest: &str) -> String;
    /// Stages a blob the store does not have yet, from this source (verified against its
    /// digest and `size`). `hex` is the digest's validated hex part.
    fn stage_new(
        &mut self,
        store: &'s Store,
        blob: &BlobId<'_>,
        hex: &str,
        size: u64,
    ) -> Result<StagedBlob<'s>>;

    /// Stages `digest` (verified against its digest and `size`); a blob the store already
    /// has is not read again.
    fn stage(
        &mut self,
        store: &'s Store,
        digest: &str,
        size: u64,
        image: &str,
    ) -> Result<StagedBlob<'s>> {
        let blob = BlobId {
            digest,
            image,
            location: self.location(digest),
        };
        let hex = store::digest_hex(digest).map_err(|e| blob.error(e))?;
        if store.has_blob(digest) {
            return store
                .stage_blob(io::empty(), Some(digest), Some(size))
                .map_err(|e| blob.error(e));
        }
        self.stage_new(store, &blob, hex, size)
    }
}

/// Which blob of which image is being staged, and where from: what every error names.
struct BlobId<'a> {
    digest: &'a str,
    image: &'a str,
    location: String,
}

impl BlobId<'_> {
    fn error(&self, source: StoreError) -> LayoutError {
        LayoutError::Blob {
            digest: self.digest.to_string(),
            location: self.location.clone(),
            image: self.image.to_string(),
            source: Box::new(source),
        }
    }
}

struct Import<'s> {
    store: &'s Store,
    staged: Vec<StagedBlob<'s>>,
    by_digest: HashMap<String, usize>,
    /// (reference, manifest, index)
    tags: Vec<(String, String, Option<String>)>,
}

impl<'s> Import<'s> {
    fn new(store: &'s Store) -> Self {
        Import {
            store,
            staged: Vec::new(),
            by_digest: HashMap::new(),
            tags: Vec::new(),
        }
    }

    fn add(&mut self, blob: StagedBlob<'s>) -> usize {
        if let Some(&i) = self.by_digest.get(blob.digest()) {
            return i; // the duplicate is dropped, removing its temporary file
        }
        let i = self.staged.len();
        self.by_digest.insert(blob.digest().to_string(), i);
        self.staged.push(blob);
        i
    }

    fn fetch(
        &mut self,
        src: &mut dyn Source<'s>,
        digest: &str,
        size: u64,
        image: &str,
    ) -> Result<usize> {
        if let Some(&i) = self.by_digest.get(digest) {
            return Ok(i);
        }
        let blob = src.stage(self.store, digest, size, image)?;
        Ok(self.add(blob))
    }

    fn read_json(&self, i: usize, location: &str) -> Result<Vec<u8>> {
        let blob = self.staged.get(i).ok_or_else(|| LayoutError::BadArchive {
            path: PathBuf::from(location),
            reason: "internal: staged blob index out of range".to_string(),
        })?;
        blob.read_limited(MAX_JSON_BYTES)
            .map_err(|source| LayoutError::Store {
                context: format!("reading {} from {location}", blob.digest()),
                source: Box::new(source),
            })
    }

    /// Imports what `desc` points at (manifest or index); returns (manifest, index).
    fn descriptor(
        &mut self,
        src: &mut dyn Source<'s>,
        desc: &Descriptor,
        image: &str,
        depth: u32,
    ) -> Result<(String, Option<String>)> {
        let digest = desc.digest().to_string();
        let location = src.location(&digest);
        if depth > MAX_DEPTH {
            return Err(LayoutError::TooDeep { digest, location });
        }
        let media_type = desc.media_type();
        if store::is_index(media_type) {
            let i = self.fetch(src, &digest, desc.size(), image)?;
            let bytes = self.read_json(i, &location)?;
            let index =
                store::parse_index(&digest, &bytes).map_err(|source| LayoutError::Store {
                    context: format!("image {image}: {location}"),
                    source: Box::new(source),
                })?;
            let child = select_platform(&index, &digest, &location)?;
            let (manifest, _) = self.descriptor(src, child, image, depth + 1)?;
            Ok((manifest, Some(digest)))
        } else if store::is_manifest(media_type) {
            self.manifest(src, &digest, desc.size(), image)?;
            Ok((digest, None))
        } else {
            Err(LayoutError::UnsupportedMediaType {
                what: "descriptor",
                digest,
                location,
                media_type: media_type.to_string(),
            })
        }
    }

    fn manifest(
        &mut self,
        src: &mut dyn Source<'s>,
        digest: &str,
        size: u64,
        image: &str,
    ) -> Result<()> {
        let location = src.location(digest);
        let i = self.fetch(src, digest, size, image)?;
        let bytes = self.read_json(i, &location)?;
        let manifest =
            store::parse_manifest(digest, &bytes).map_err(|source| LayoutError::Store {
                context: format!("image {image}: {location}"),
                source: Box::new(source),
            })?;
        let config = manifest.config();
        let config_digest = config.digest().to_string();
        let config_media = config.media_type().as_ref();
        if config_media != MEDIA_OCI_CONFIG && config_media != MEDIA_DOCKER_CONFIG {
            return Err(LayoutError::UnsupportedMediaType {
                what: "config",
                location: src.location(&config_digest),
                digest: config_digest,
                media_type: config_media.to_string(),
            });
        }
        let config_location = src.location(&config_digest);
        let c = self.fetch(src, &config_digest, config.size(), image)?;
        let config_bytes = self.read_json(c, &config_location)?;
        check_config(&config_bytes, &config_digest, &config_location)?;
        for layer in manifest.layers() {
            self.fetch(src, layer.digest().as_ref(), layer.size(), image)?;
        }
        Ok(())
    }

    /// Commits every staged blob (children before the manifests and indexes that name
    /// them), then writes the references.
    fn commit(self) -> Result<Vec<(String, String)>> {
        let store = self.store;
        for blob in self.staged.into_iter().rev() {
            let digest = blob.digest().to_string();
            blob.commit().map_err(|source| LayoutError::Store {
                context: format!("storing blob {digest}"),
                source: Box::new(source),
            })?;
        }
        let mut out = Vec::new();
        for (reference, manifest, index) in self.tags {
            let tagged = match &index {
                Some(index) => store.tag_with_index(&reference, &manifest, index),
                None => store.tag(&reference, &manifest),
            };
            tagged.map_err(|source| LayoutError::Store {
                context: format!("tagging {reference}"),
                source: Box::new(source),
            })?;
            out.push((reference, manifest));
        }
        Ok(out)
    }
}

pub(super) fn check_config(
    bytes: &[u8],
    digest: &str,
    location: &str,
) -> Result<ImageConfiguration> {
    serde_json::from_slice(bytes).map_err(|source| LayoutError::Parse {
        file: format!("image config {digest} ({location})"),
        source,
    })
}

/// The host's manifest in an index: linux + [`host_arch`]; an index of one entry without
/// platform is taken as is.
pub(super) fn select_platform<'i>(
    index: &'i ImageIndex,
    digest: &str,
    location: &str,
) -> Result<&'i Descriptor> {
    let arch = host_arch();
    let manifests = index.manifests();
    let matching = |prefer_variant: bool| {
        manifests.iter().find(|m| {
            m.platform().as_ref().is_some_and(|p| {
                p.os().to_string() == "linux"
                    && p.architecture().to_string() == arch
                    && (!prefer_variant
                        || arch != "arm64"
                        || p.variant().as_deref().is_none_or(|v| v == "v8"))
            })
        })
    };
    if let Some(found) = matching(true).or_else(|| matching(false)) {
        return Ok(found);
    }
    if let [only] = manifests.as_slice() {
        if only.platform().is_none() {
            return Ok(only);
        }
    }
    let available = manifests
        .iter()
        .map(|m| match m.platform() {
            Some(p) => match p.variant() {
                Some(v) => format!("{}/{}/{v}", p.os(), p.architecture()),
                None => format!("{}/{}", p.os(), p.architecture()),
            },
            None => format!("{} (no platform)", m.digest()),
        })
        .collect::<Vec<_>>()
        .join(", ");
    Err(LayoutError::NoPlatform {
        digest: digest.to_string(),
        location: location.to_string(),
        wanted: format!("linux/{arch}"),
        available,
    })
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(|source| LayoutError::Io {
        op: "opening",
        path: path.to_path_buf(),
        source,
    })?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| LayoutError::Io {
            op: "reading",
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(LayoutError::BadArchive {
            path: path.to_path_buf(),
            reason: format!("larger than {limit} bytes"),
        });
    }
    Ok(bytes)
}

#[derive(Deserialize)]
struct LayoutMarker {
    #[serde(rename = "imageLayoutVersion")]
    image_layout_version: String,
}

fn check_layout_marker(bytes: &[u8], file: &str) -> Result<()> {
    let marker: LayoutMarker =
        serde_json::from_slice(bytes).map_err(|source| LayoutError::Parse {
            file: file.to_string(),
            source,
        })?;
    if !marker.image_layout_version.starts_with("1.") {
        return Err(LayoutError::NotALayout {
            path: PathBuf::from(file),
            reason: format!(
                "unsupported imageLayoutVersion {}",
                marker.image_layout_version
            ),
        });
    }
    Ok(())
}

/// Imports every entry of a parsed `index.json` through `src`, then commits.
fn import_index<'s>(
    store: &'s Store,
    src: &mut dyn Source<'s>,
    index: &ImageIndex,
    index_file: &str,
    name_hint: Option<&str>,
) -> Result<Vec<(String, String)>> {
    if index.manifests().is_empty() {
        return Err(LayoutError::NotALayout {
            path: PathBuf::from(index_file),
            reason: "index.json lists no images".to_string(),
        });
    }
    // Name every image before copying anything, so a nameless image fails fast.
    let mut named = Vec::new();
    for desc in index.manifests() {
        match reference_for(desc, name_hint, index_file)? {
            Some(reference) => named.push((reference, desc)),
            None => {
                return Err(LayoutError::NoReference {
                    manifest: desc.digest().to_string(),
                    location: index_file.to_string(),
                });
            }
        }
    }
    let mut import = Import::new(store);
    for (reference, desc) in named {
        let (manifest, from_index) = import.descriptor(src, desc, &reference, 0)?;
        import.tags.push((reference, manifest, from_index));
    }
    import.commit()
}

// ---------------------------------------------------------------------------------------
// OCI layout directory

struct DirSource {
    dir: PathBuf,
}

impl<'s> Source<'s> for DirSource {
    fn location(&self, digest: &str) -> String {
        match store::digest_hex(digest) {
            Ok(hex) => self
                .dir
                .join("blobs/sha256")
                .join(hex)
                .display()
                .to_string(),
            Err(_) => format!("{} (blob {digest:?})", self.dir.display()),
        }
    }

    fn stage_new(
        &mut self,
        store: &'s Store,
        blob: &BlobId<'_>,
        hex: &str,
        size: u64,
    ) -> Result<StagedBlob<'s>> {
        let (digest, image, location) = (blob.digest, blob.image, blob.location.clone());
        let blob_err = |source| blob.error(source);
        let path = self.dir.join("blobs/sha256").join(hex);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(LayoutError::MissingBlob {
                    digest: digest.to_string(),
                    location,
                    image: image.to_string(),
                });
            }
            Err(source) => {
                return Err(LayoutError::Io {
                    op: "opening",
                    path,
                    source,
                });
            }
        };
        store
            .stage_blob(file, Some(digest), Some(size))
            .map_err(blob_err)
    }
}

/// Imports every image of the OCI image layout at `dir` into the store; returns the
/// (reference, manifest digest) pairs, in `index.json` order. See the module docs for
/// naming and for multi-arch indexes (the index is stored with the host's manifest).
pub fn load_layout(
    store: &Store,
    dir: &Path,
    name_hint: Option<&str>,
) -> Result<Vec<(String, String)>> {
    let _lock = store.lock_shared().map_err(|source| LayoutError::Store {
        context: format!("loading {}", dir.display()),
        source: Box::new(source),
    })?;
    let marker = dir.join("oci-layout");
    if !marker.is_file() {
        return Err(LayoutError::NotALayout {
            path: dir.to_path_buf(),
            reason: "no oci-layout file".to_string(),
        });
    }
    check_layout_marker(
        &read_limited(&marker, MAX_JSON_BYTES)?,
        &marker.display().to_string(),
    )?;
    let index_path = dir.join("index.json");
    let index_file = index_path.display().to_string();
    let index: ImageIndex = serde_json::from_slice(&read_limited(&index_path, MAX_JSON_BYTES)?)
        .map_err(|source| LayoutError::Parse {
            file: index_file.clone(),
            source,
        })?;
    let mut src = DirSource {
        dir: dir.to_path_buf(),
    };
    import_index(store, &mut src, &index, &index_file, name_hint)
}

// ---------------------------------------------------------------------------------------
// Archives

/// Entries of an archive, each streamed into a staged (unverified) blob.
struct ArchiveSource<'s> {
    archive: PathBuf,
    files: HashMap<String, StagedBlob<'s>>,
    /// Symlinks and hard links: entry -> target entry (archive-relative).
    links: HashMap<String, String>,
    /// Entries already handed out: name -> digest.
    taken: HashMap<String, String>,
}

/// `./a//b/` -> `a/b`; `..` components resolved against the archive root (never above).
/// Lexical only, like Go's `path.Clean` on a rooted path; the runtime uses it for
/// container paths too.
pub(crate) fn clean_entry(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

impl<'s> ArchiveSource<'s> {
    fn read(store: &'s Store, archive: &Path) -> Result<Self> {
        let archive_err = |source| LayoutError::Archive {
            path: archive.to_path_buf(),
            source,
        };
        let file = File::open(archive).map_err(|source| LayoutError::Io {
            op: "opening",
            path: archive.to_path_buf(),
            source,
        })?;
        let mut buffered = BufReader::with_capacity(256 * 1024, file);
        let compression = Compression::sniff(buffered.fill_buf().map_err(archive_err)?);
        let reader: Box<dyn Read> = match compression {
            Compression::None => Box::new(buffered),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            Compression::Zstd => {
                Box::new(zstd::stream::read::Decoder::with_buffer(buffered).map_err(archive_err)?)
            }
        };
        let mut tar = tar::Archive::new(reader);
        let mut src = ArchiveSource {
            archive: archive.to_path_buf(),
            files: HashMap::new(),
            links: HashMap::new(),
            taken: HashMap::new(),
        };
        for entry in tar.entries().map_err(archive_err)? {
            let mut entry = entry.map_err(archive_err)?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let name = clean_entry(&raw);
            let kind = entry.header().entry_type();
            if kind.is_file() || kind == tar::EntryType::Continuous {
                let staged = store.stage_blob(&mut entry, None, None).map_err(|source| {
                    LayoutError::Store {
                        context: format!("reading {raw} from {}", archive.display()),
                        source: Box::new(source),
                    }
                })?;
                src.files.insert(name, staged);
            } else if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                let target = if kind.is_symlink() && !target.starts_with('/') {
                    let parent = name.rsplit_once('/').map_or("", |(p, _)| p);
                    clean_entry(&format!("{parent}/{target}"))
                } else {
                    clean_entry(&target)
                };
                src.links.insert(name, target);
            }
        }
        Ok(src)
    }

    fn resolve(&self, name: &str) -> String {
        let mut name = clean_entry(name);
        for _ in 0..16 {
            match self.links.get(&name) {
                Some(target) => name = target.clone(),
                None => break,
            }
        }
        name
    }

    fn has(&self, name: &str) -> bool {
        let name = self.resolve(name);
        self.files.contains_key(&name) || self.taken.contains_key(&name)
    }

    fn describe(&self, name: &str) -> String {
        format!("{}:{name}", self.archive.display())
    }

    /// The staged entry `name` (following links); None when it was handed out already
    /// (its digest is then in `taken`).
    fn take(&mut self, name: &str) -> Result<(String, Option<StagedBlob<'s>>)> {
        let resolved = self.resolve(name);
        if let Some(digest) = self.taken.get(&resolved) {
            return Ok((digest.clone(), None));
        }
        match self.files.remove(&resolved) {
            Some(blob) => {
                self.taken.insert(resolved, blob.digest().to_string());
                Ok((blob.digest().to_string(), Some(blob)))
            }
            None => Err(LayoutError::BadArchive {
                path: self.archive.clone(),
                reason: format!("entry {name} is missing"),
            }),
        }
    }

    fn read_small(&mut self, name: &str) -> Result<Vec<u8>> {
        let resolved = self.resolve(name);
        match self.files.get(&resolved) {
            Some(blob) => blob
                .read_limited(MAX_JSON_BYTES)
                .map_err(|source| LayoutError::Store {
                    context: format!("reading {}", self.describe(name)),
                    source: Box::new(source),
                }),
            None => Err(LayoutError::BadArchive {
                path: self.archive.clone(),
                reason: format!("entry {name} is missing"),
            }),
        }
    }
}

impl<'s> Source<'s> for ArchiveSource<'s> {
    fn location(&self, digest: &str) -> String {
        match store::digest_hex(digest) {
            Ok(hex) => self.describe(&format!("blobs/sha256/{hex}")),
            Err(_) => format!("{} (blob {digest:?})", self.archive.display()),
        }
    }

    fn stage_new(
        &mut self,
        _store: &'s Store,
        blob: &BlobId<'_>,
        hex: &str,
        size: u64,
    ) -> Result<StagedBlob<'s>> {
        let (digest, image, location) = (blob.digest, blob.image, blob.location.clone());
        let blob_err = |source| blob.error(source);
        let name = format!("blobs/sha256/{hex}");
        if !self.has(&name) {
            return Err(LayoutError::MissingBlob {
                digest: digest.to_string(),
                location,
                image: image.to_string(),
            });
        }
        let (actual, blob) = self.take(&name)?;
        if actual != digest {
            return Err(blob_err(StoreError::DigestMismatch {
                expected: digest.to_string(),
                actual,
            }));
        }
        let Some(blob) = blob else {
            // Already handed out. The import asks for each digest once, so this needs
            // two names linking to one entry; refuse rather than guess.
            return Err(LayoutError::BadArchive {
                path: self.archive.clone(),
                reason: format!("entry {name} is used twice"),
            });
        };
        if blob.size() != size {
            return Err(blob_err(StoreError::SizeMismatch {
                digest: digest.to_string(),
                expected: size,
                actual: blob.size(),
            }));
        }
        Ok(blob)
    }
}

/// One image of a `docker save` `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerArchiveImage {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn layer_media_type(blob: &StagedBlob<'_>, location: &str) -> Result<MediaType> {
    let path = blob.path().map_err(|source| LayoutError::Store {
        context: format!("reading {location}"),
        source: Box::new(source),
    })?;
    let mut head = [0u8; 8];
    let mut file = File::open(&path).map_err(|source| LayoutError::Io {
        op: "opening",
        path: path.clone(),
        source,
    })?;
    let mut filled = 0;
    while filled < head.len() {
        let slot = head.get_mut(filled..).unwrap_or_default();
        match file.read(slot) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(LayoutError::Io {
                    op: "reading",
                    path,
                    source,
                });
            }
        }
    }
    Ok(
        match Compression::sniff(head.get(..filled).unwrap_or_default()) {
            Compression::None => MediaType::ImageLayer,
            Compression::Gzip => MediaType::ImageLayerGzip,
            Compression::Zstd => MediaType::ImageLayerZstd,
        },
    )
}

fn descriptor(
    media_type: MediaType,
    digest: &str,
    size: u64,
    location: &str,
) -> Result<Descriptor> {
    let digest = store::oci_digest(digest).map_err(|source| LayoutError::Store {
        context: format!("describing {location}"),
        source: Box::new(source),
    })?;
    DescriptorBuilder::default()
        .media_type(media_type)
        .digest(digest)
        .size(size)
        .build()
        .map_err(|e| LayoutError::BadArchive {
            path: PathBuf::from(location),
            reason: format!("building a descriptor: {e}"),
        })
}

/// Moves archive entry `name` into the import (or finds it there); returns (digest, index).
fn take_into<'s>(
    import: &mut Import<'s>,
    src: &mut ArchiveSource<'s>,
    name: &str,
) -> Result<(String, usize)> {
    let (digest, blob) = src.take(name)?;
    let i = match blob {
        Some(blob) => import.add(blob),
        None => import
            .by_digest
            .get(&digest)
            .copied()
            .ok_or_else(|| LayoutError::BadArchive {
                path: src.archive.clone(),
                reason: format!("internal: {name} was taken but not staged"),
            })?,
    };
    Ok((digest, i))
}

fn load_docker_archive<'s>(
    store: &'s Store,
    mut src: ArchiveSource<'s>,
) -> Result<Vec<(String, String)>> {
    let manifest_file = src.describe("manifest.json");
    let images: Vec<DockerArchiveImage> = serde_json::from_slice(&src.read_small("manifest.json")?)
        .map_err(|source| LayoutError::Parse {
            file: manifest_file.clone(),
            source,
        })?;
    if images.is_empty() {
        return Err(LayoutError::BadArchive {
            path: src.archive.clone(),
            reason: "manifest.json lists no images".to_string(),
        });
    }
    let mut import = Import::new(store);
    for image in &images {
        let config_location = src.describe(&image.config);
        let tags = image.repo_tags.clone().unwrap_or_default();
        let references = tags
            .iter()
            .map(|t| normalize_reference(t, &manifest_file))
            .collect::<Result<Vec<_>>>()?;
        let Some(first) = references.first().cloned() else {
            return Err(LayoutError::NoReference {
                manifest: format!("with config {}", image.config),
                location: manifest_file.clone(),
            });
        };
        let (config_digest, c) = take_into(&mut import, &mut src, &image.config)?;
        let config_bytes = import.read_json(c, &config_location)?;
        let config = check_config(&config_bytes, &config_digest, &config_location)?;
        let config_size = config_bytes.len() as u64;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != image.layers.len() {
            return Err(LayoutError::BadArchive {
                path: src.archive.clone(),
                reason: format!(
                    "image {first}: {} layers in manifest.json but {} diff_ids in {}",
                    image.layers.len(),
                    diff_ids.len(),
                    image.config
                ),
            });
        }
        let mut layers = Vec::new();
        for (name, diff_id) in image.layers.iter().zip(diff_ids) {
            let location = src.describe(name);
            let (digest, i) = take_into(&mut import, &mut src, name)?;
            let blob = import
                .staged
                .get(i)
                .ok_or_else(|| LayoutError::BadArchive {
                    path: src.archive.clone(),
                    reason: "internal: staged blob index out of range".to_string(),
                })?;
            let media_type = layer_media_type(blob, &location)?;
            if media_type == MediaType::ImageLayer && &digest != diff_id {
                return Err(LayoutError::Blob {
                    digest: diff_id.clone(),
                    location,
                    image: first.clone(),
                    source: Box::new(StoreError::DigestMismatch {
                        expected: diff_id.clone(),
                        actual: digest,
                    }),
                });
            }
            layers.push(descriptor(media_type, &digest, blob.size(), &location)?);
        }
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(descriptor(
                MediaType::ImageConfig,
                &config_digest,
                config_size,
                &config_location,
            )?)
            .layers(layers)
            .build()
            .map_err(|e| LayoutError::BadArchive {
                path: src.archive.clone(),
                reason: format!("image {first}: building its manifest: {e}"),
            })?;
        let bytes = serde_json::to_vec(&manifest).map_err(|source| LayoutError::Parse {
            file: format!("manifest synthesized for {first}"),
            source,
        })?;
        let staged = store
            .stage_blob(bytes.as_slice(), None, None)
            .map_err(|source| LayoutError::Store {
                context: format!("storing the manifest of {first}"),
                source: Box::new(source),
            })?;
        let manifest_digest = staged.digest().to_string();
        import.add(staged);
        for reference in references {
            import.tags.push((reference, manifest_digest.clone(), None));
        }
    }
    import.commit()
}

/// Loads a `docker save` tarball or an OCI archive (an OCI layout inside a tar), either
/// optionally gzip- or zstd-compressed (sniffed). Docker archives are converted to OCI in
/// the store: layer blobs are stored as they are under their sha256, and an OCI manifest
/// is synthesized with the config and layer descriptors; `RepoTags` name the images. An
/// archive that has both `index.json` and `manifest.json` (Docker 25+) is read as OCI,
/// which keeps the original manifest digests.
pub fn load_archive(store: &Store, file: &Path) -> Result<Vec<(String, String)>> {
    let _lock = store.lock_shared().map_err(|source| LayoutError::Store {
        context: format!("loading {}", file.display()),
        source: Box::new(source),
    })?;
    let mut src = ArchiveSource::read(store, file)?;
    if src.has("oci-layout") && src.has("index.json") {
        let marker_file = src.describe("oci-layout");
        check_layout_marker(&src.read_small("oci-layout")?, &marker_file)?;
        let index_file = src.describe("index.json");
        let index: ImageIndex =
            serde_json::from_slice(&src.read_small("index.json")?).map_err(|source| {
                LayoutError::Parse {
                    file: index_file.clone(),
                    source,
                }
            })?;
        return import_index(store, &mut src, &index, &index_file, None);
    }
    if src.has("manifest.json") {
        return load_docker_archive(store, src);
    }
    Err(LayoutError::BadArchive {
        path: file.to_path_buf(),
        reason: "neither an OCI archive (oci-layout, index.json) nor a docker save archive (manifest.json)"
            .to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::fixture::testing;
    use crate::image::store::{digest_hex, sha256_digest};
    use std::fs;
    use std::io::Write;
    use std::os::unix::fs::FileTypeExt;

    fn count(dir: &Path) -> usize {
        fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
    }

    fn assert_store_empty(store: &Store) {
        assert_eq!(count(&store.root().join("blobs/sha256")), 0, "no blobs");
        assert_eq!(count(&store.root().join("refs")), 0, "no refs");
        assert_eq!(count(&store.root().join("tmp")), 0, "no temporary files");
        assert!(store.list().expect("list").is_empty());
    }

    #[test]
    fn fixture_layout_loads_with_its_config() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (store, digest) = testing::loaded_store(tmp.path());
        assert_eq!(
            store.resolve(testing::TAG).expect("resolve"),
            Some(digest.clone())
        );
        assert_eq!(
            store.resolve("wharf.test/busybox:2").expect("resolve"),
            None
        );

        let image = store.image(&digest).expect("image");
        assert_eq!(image.manifest_digest, digest);
        assert_eq!(image.layers().len(), 2);
        let config = image.config.config().as_ref().expect("config");
        assert_eq!(
            config.env().as_deref(),
            Some(
                &[
                    crate::image::fixture::FIXTURE_PATH_ENV.to_string(),
                    "WHARF_FIXTURE=1".to_string()
                ][..]
            )
        );
        assert_eq!(config.cmd().as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(
            config.entrypoint().as_deref(),
            Some(&[crate::image::fixture::FIXTURE_ENTRYPOINT.to_string()][..])
        );
        assert_eq!(config.working_dir().as_deref(), Some("/srv"));
        assert_eq!(
            config.user().as_deref(),
            Some(crate::image::fixture::FIXTURE_USER)
        );
        assert_eq!(
            config.exposed_ports().as_deref(),
            Some(&["8080/tcp".to_string()][..])
        );
        assert_eq!(image.config.architecture().to_string(), host_arch());

        // The Healthcheck key survives in the stored config blob.
        let raw: serde_json::Value =
            serde_json::from_slice(&store.read_blob(&image.config_digest).expect("config"))
                .expect("json");
        assert_eq!(
            raw["config"]["Healthcheck"]["Test"],
            serde_json::json!(["CMD", "true"])
        );
        let health = store
            .healthcheck(&image)
            .expect("healthcheck")
            .expect("some");
        assert_eq!(
            health.test,
            Some(vec!["CMD".to_string(), "true".to_string()])
        );
        assert_eq!(health.interval, Some(1_000_000_000));
    }

    #[test]
    fn rootfs_layers_are_top_first_and_keep_the_whiteout() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (store, digest) = testing::loaded_store(tmp.path());
        let dirs = store.rootfs_layers(&digest).expect("rootfs");
        assert_eq!(dirs.len(), 2);
        let image = store.image(&digest).expect("image");
        let hex = |i: usize| {
            digest_hex(image.layers()[i].digest().as_ref())
                .expect("hex")
                .to_string()
        };
        assert_eq!(
            dirs[0],
            store.root().join("layers").join(hex(1)),
            "top first"
        );
        assert_eq!(dirs[1], store.root().join("layers").join(hex(0)));
        assert!(dirs[0].join("srv/index.html").is_file());
        assert!(dirs[1].join("bin/busybox").is_file());
        assert!(dirs[1].join("etc/removed.txt").is_file());
        // This part belongs to the integration with the real `unpack` (and needs root):
        // layer 2's `etc/.wh.removed.txt` must have become an overlayfs whiteout, a 0:0
        // character device named `removed.txt`.
        if running_as_root() {
            let whiteout = dirs[0]
                .join("etc/removed.txt")
                .symlink_metadata()
                .expect("whiteout in layer 2");
            assert!(whiteout.file_type().is_char_device());
            assert!(!dirs[0].join("etc/.wh.removed.txt").exists());
        } else {
            eprintln!("not root: whiteout device check skipped");
        }
        // A second call unpacks nothing and returns the same dirs.
        assert_eq!(store.rootfs_layers(&digest).expect("again"), dirs);
    }

    fn running_as_root() -> bool {
        use std::os::unix::fs::MetadataExt;
        fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    }

    #[test]
    fn a_corrupt_blob_fails_the_load_and_stores_nothing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (out, digest) = testing::layout(tmp.path());
        let store = Store::open(&tmp.path().join("store")).expect("store");
        let manifest: serde_json::Value = serde_json::from_slice(
            &fs::read(
                out.join("blobs/sha256")
                    .join(digest_hex(&digest).expect("hex")),
            )
            .expect("manifest"),
        )
        .expect("json");
        let layer = manifest["layers"][1]["digest"].as_str().expect("digest");
        let path = out
            .join("blobs/sha256")
            .join(digest_hex(layer).expect("hex"));
        let mut bytes = fs::read(&path).expect("layer");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        fs::write(&path, bytes).expect("write");

        let err = load_layout(&store, &out, None).expect_err("must fail");
        let message = err.to_string();
        assert!(message.contains(layer), "names the blob: {message}");
        assert!(message.contains(testing::TAG), "names the image: {message}");
        assert!(
            matches!(&err, LayoutError::Blob { source, .. } if matches!(**source, StoreError::DigestMismatch { .. })),
            "{err:?}"
        );
        assert_store_empty(&store);
    }

    #[test]
    fn corrupt_index_and_manifest_are_errors_naming_the_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (out, digest) = testing::layout(tmp.path());
        let store = Store::open(&tmp.path().join("store")).expect("store");

        let index = fs::read(out.join("index.json")).expect("index");
        fs::write(out.join("index.json"), &index[..index.len() / 2]).expect("truncate");
        let err = load_layout(&store, &out, None).expect_err("truncated index.json");
        assert!(err.to_string().contains("index.json"), "{err}");

        // A digest trying to walk out of blobs/ is refused by the descriptor parser.
        let evil = String::from_utf8(index.clone())
            .expect("utf8")
            .replace(&digest, "sha256:../../../../etc/passwd");
        fs::write(out.join("index.json"), evil).expect("write");
        let err = load_layout(&store, &out, None).expect_err("traversal digest");
        assert!(err.to_string().contains("index.json"), "{err}");

        // A manifest that is not JSON: the error names its digest and file.
        fs::write(out.join("index.json"), &index).expect("restore");
        let manifest_path = out
            .join("blobs/sha256")
            .join(digest_hex(&digest).expect("hex"));
        let garbage = b"{not json".to_vec();
        let garbage_digest = sha256_digest(&garbage);
        fs::write(
            out.join("blobs/sha256")
                .join(digest_hex(&garbage_digest).expect("hex")),
            &garbage,
        )
        .expect("write");
        let index_text = String::from_utf8(index.clone()).expect("utf8");
        let size = fs::metadata(&manifest_path).expect("meta").len();
        let patched = index_text.replace(&digest, &garbage_digest).replace(
            &format!("\"size\": {size}"),
            &format!("\"size\": {}", garbage.len()),
        );
        fs::write(out.join("index.json"), patched).expect("write");
        let err = load_layout(&store, &out, None).expect_err("garbage manifest");
        assert!(err.to_string().contains(&garbage_digest), "{err}");
        assert_store_empty(&store);

        // No oci-layout marker.
        fs::remove_file(out.join("oci-layout")).expect("rm");
        let err = load_layout(&store, &out, None).expect_err("no marker");
        assert!(matches!(err, LayoutError::NotALayout { .. }), "{err}");
    }

    fn rewrite_index(out: &Path, f: impl FnOnce(&mut serde_json::Value)) {
        let path = out.join("index.json");
        let mut index: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).expect("index")).expect("json");
        f(&mut index);
        fs::write(&path, serde_json::to_vec(&index).expect("json")).expect("write");
    }

    #[test]
    fn names_come_from_annotations_or_the_hint() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (out, digest) = testing::layout(tmp.path());
        let store = Store::open(&tmp.path().join("store")).expect("store");

        // A bare tag plus containerd's name.
        rewrite_index(&out, |index| {
            index["manifests"][0]["annotations"] = serde_json::json!({
                "org.opencontainers.image.ref.name": "1.0",
                "io.containerd.image.name": "docker.io/library/busybox:whatever"
            });
        });
        assert_eq!(
            load_layout(&store, &out, Some("ignored/hint")).expect("load"),
            vec![("docker.io/library/busybox:1.0".to_string(), digest.clone())]
        );
        // A bare tag plus the hint.
        rewrite_index(&out, |index| {
            index["manifests"][0]["annotations"] =
                serde_json::json!({"org.opencontainers.image.ref.name": "2.0"});
        });
        assert_eq!(
            load_layout(&store, &out, Some("localhost:5000/team/app:old")).expect("load"),
            vec![("localhost:5000/team/app:2.0".to_string(), digest.clone())]
        );
        // No annotation: the hint alone, normalized.
        rewrite_index(&out, |index| {
            index["manifests"][0]
                .as_object_mut()
                .expect("object")
                .remove("annotations");
        });
        assert_eq!(
            load_layout(&store, &out, Some("busybox")).expect("load"),
            vec![(
                "docker.io/library/busybox:latest".to_string(),
                digest.clone()
            )]
        );
        // No name at all.
        let err = load_layout(&store, &out, None).expect_err("nameless");
        assert!(matches!(err, LayoutError::NoReference { .. }), "{err}");
        assert_eq!(store.list().expect("list").len(), 3);
    }

    #[test]
    fn a_multi_arch_index_resolves_to_the_host_manifest_and_is_kept() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (out, digest) = testing::layout(tmp.path());
        let store = Store::open(&tmp.path().join("store")).expect("store");
        let index_path = out.join("index.json");
        let top: serde_json::Value =
            serde_json::from_slice(&fs::read(&index_path).expect("index")).expect("json");
        let mut host = top["manifests"][0].clone();
        host.as_object_mut().expect("object").remove("annotations");
        let other_arch = if host_arch() == "s390x" {
            "riscv64"
        } else {
            "s390x"
        };
        let foreign = serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha256_digest(b"not in the layout"),
            "size": 17,
            "platform": {"architecture": other_arch, "os": "linux"}
        });
        let attestation = serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha256_digest(b"attestation"),
            "size": 11,
            "platform": {"architecture": "unknown", "os": "unknown"}
        });
        let nested = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [foreign, host, attestation]
        });
        let nested_bytes = serde_json::to_vec(&nested).expect("json");
        let nested_digest = sha256_digest(&nested_bytes);
        fs::write(
            out.join("blobs/sha256")
                .join(digest_hex(&nested_digest).expect("hex")),
            &nested_bytes,
        )
        .expect("write");
        rewrite_index(&out, |index| {
            index["manifests"] = serde_json::json!([{
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": nested_digest,
                "size": nested_bytes.len(),
                "annotations": {"org.opencontainers.image.ref.name": "multi"}
            }]);
        });
        let loaded = load_layout(&store, &out, Some("example.org/multi")).expect("load");
        assert_eq!(
            loaded,
            vec![("example.org/multi:multi".to_string(), digest.clone())]
        );
        assert!(store.has_blob(&nested_digest), "the index is stored too");
        assert_eq!(store.rootfs_layers(&digest).expect("rootfs").len(), 2);
        let removed = store.prune().expect("prune");
        assert!(
            removed.is_empty(),
            "prune keeps index and image: {removed:?}"
        );
        assert!(store.has_blob(&nested_digest));

        // An index without the host's platform says what it has.
        let only_foreign = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [nested["manifests"][0].clone()]
        });
        let bytes = serde_json::to_vec(&only_foreign).expect("json");
        let d = sha256_digest(&bytes);
        fs::write(
            out.join("blobs/sha256").join(digest_hex(&d).expect("hex")),
            &bytes,
        )
        .expect("write");
        rewrite_index(&out, |index| {
            index["manifests"][0]["digest"] = serde_json::json!(d);
            index["manifests"][0]["size"] = serde_json::json!(bytes.len());
        });
        let err = load_layout(&store, &out, Some("example.org/multi")).expect_err("no platform");
        assert!(
            matches!(err, LayoutError::NoPlatform { .. }) && err.to_string().contains(other_arch),
            "{err}"
        );
    }

    fn tar_append(builder: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, data)
            .expect("append");
    }

    /// A `docker save`-style archive made by hand; returns (archive bytes, layer digest).
    fn docker_archive() -> (Vec<u8>, String) {
        let mut layer = tar::Builder::new(Vec::new());
        tar_append(&mut layer, "hello.txt", b"hello from a docker archive\n");
        let layer = layer.into_inner().expect("layer");
        let layer_digest = sha256_digest(&layer);
        let config = serde_json::json!({
            "architecture": host_arch(),
            "os": "linux",
            "config": {"Cmd": ["cat", "/hello.txt"], "Healthcheck": {"Test": ["NONE"]}},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]}
        });
        let config = serde_json::to_vec(&config).expect("json");
        let config_name = format!("{}.json", digest_hex(&sha256_digest(&config)).expect("hex"));
        let manifest = serde_json::json!([
            {"Config": config_name, "RepoTags": ["hand/made:v1", "example.com/hand/made:v2"], "Layers": ["abc/layer.tar"]},
            {"Config": config_name, "RepoTags": ["hand/linked:v1"], "Layers": ["def/layer.tar"]}
        ]);
        let mut archive = tar::Builder::new(Vec::new());
        tar_append(&mut archive, "abc/layer.tar", &layer);
        tar_append(&mut archive, "abc/VERSION", b"1.0");
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        archive
            .append_link(&mut link, "def/layer.tar", "../abc/layer.tar")
            .expect("link");
        tar_append(&mut archive, &config_name, &config);
        tar_append(&mut archive, "repositories", b"{}");
        tar_append(
            &mut archive,
            "manifest.json",
            &serde_json::to_vec(&manifest).expect("json"),
        );
        (archive.into_inner().expect("archive"), layer_digest)
    }

    #[test]
    fn a_docker_save_archive_loads_plain_and_gzipped() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (bytes, layer_digest) = docker_archive();
        let plain = tmp.path().join("image.tar");
        fs::write(&plain, &bytes).expect("write");
        let gz = tmp.path().join("image.tar.gz");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&bytes).expect("gzip");
        fs::write(&gz, encoder.finish().expect("gzip")).expect("write");

        for file in [&plain, &gz] {
            let store = Store::open(&tmp.path().join(format!(
                "store-{}",
                file.file_name().expect("name").to_string_lossy()
            )))
            .expect("store");
            let loaded = load_archive(&store, file).expect("load");
            let names: Vec<&str> = loaded.iter().map(|(r, _)| r.as_str()).collect();
            assert_eq!(
                names,
                [
                    "docker.io/hand/made:v1",
                    "example.com/hand/made:v2",
                    "docker.io/hand/linked:v1"
                ]
            );
            let digest = &loaded[0].1;
            assert!(loaded.iter().all(|(_, d)| d == digest), "same image");
            let image = store.image(digest).expect("image");
            assert_eq!(
                image
                    .manifest
                    .media_type()
                    .as_ref()
                    .map(|m| m.to_string())
                    .as_deref(),
                Some(store::MEDIA_OCI_MANIFEST)
            );
            assert_eq!(image.layers()[0].digest().to_string(), layer_digest);
            assert_eq!(image.layers()[0].media_type(), &MediaType::ImageLayer);
            let health = store.healthcheck(&image).expect("health").expect("some");
            assert_eq!(health.test, Some(vec!["NONE".to_string()]));
            let dirs = store.rootfs_layers(digest).expect("rootfs");
            assert_eq!(
                fs::read(dirs[0].join("hello.txt")).expect("file"),
                b"hello from a docker archive\n"
            );
            // Layer, config, manifest; the unused entries were not stored.
            assert_eq!(count(&store.root().join("blobs/sha256")), 3);
            assert_eq!(count(&store.root().join("tmp")), 0);
        }
    }

    #[test]
    fn a_docker_archive_with_a_wrong_layer_stores_nothing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (bytes, _) = docker_archive();
        // Flip a byte of the layer's file content ("hello" -> "iello").
        let at = bytes
            .windows(5)
            .position(|w| w == b"hello")
            .expect("content");
        let mut bytes = bytes;
        bytes[at] ^= 0x01;
        let file = tmp.path().join("bad.tar");
        fs::write(&file, &bytes).expect("write");
        let store = Store::open(&tmp.path().join("store")).expect("store");
        let err = load_archive(&store, &file).expect_err("must fail");
        assert!(err.to_string().contains("abc/layer.tar"), "{err}");
        assert_store_empty(&store);
    }

    #[test]
    fn an_oci_archive_loads_like_the_layout() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (out, digest) = testing::layout(tmp.path());
        let mut archive = tar::Builder::new(Vec::new());
        archive.append_dir_all(".", &out).expect("tar");
        let file = tmp.path().join("oci.tar");
        fs::write(&file, archive.into_inner().expect("tar")).expect("write");
        let store = Store::open(&tmp.path().join("store")).expect("store");
        assert_eq!(
            load_archive(&store, &file).expect("load"),
            vec![(testing::TAG.to_string(), digest.clone())]
        );
        assert_eq!(store.rootfs_layers(&digest).expect("rootfs").len(), 2);
        assert_eq!(count(&store.root().join("tmp")), 0);
    }

    #[test]
    fn not_an_archive_is_an_error() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&tmp.path().join("store")).expect("store");
        let file = tmp.path().join("junk.tar");
        fs::write(&file, b"this is not a tarball at all").expect("write");
        assert!(load_archive(&store, &file).is_err());
        let mut empty = tar::Builder::new(Vec::new());
        tar_append(&mut empty, "README", b"nothing here");
        fs::write(&file, empty.into_inner().expect("tar")).expect("write");
        let err = load_archive(&store, &file).expect_err("no manifest");
        assert!(matches!(err, LayoutError::BadArchive { .. }), "{err}");
        assert_store_empty(&store);
    }

    #[test]
    fn references_are_normalized_like_docker() {
        let n = |r: &str| normalize_reference(r, "test");
        assert_eq!(
            n("busybox").expect("ok"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            n("busybox:1.36").expect("ok"),
            "docker.io/library/busybox:1.36"
        );
        assert_eq!(n("user/app").expect("ok"), "docker.io/user/app:latest");
        assert_eq!(
            n("index.docker.io/library/busybox:1").expect("ok"),
            "docker.io/library/busybox:1"
        );
        assert_eq!(
            n("localhost:5000/ns/app:2").expect("ok"),
            "localhost:5000/ns/app:2"
        );
        assert_eq!(n("localhost/app").expect("ok"), "localhost/app:latest");
        let d = sha256_digest(b"x");
        assert_eq!(
            n(&format!("quay.io/a/b@{d}")).expect("ok"),
            format!("quay.io/a/b@{d}")
        );
        assert_eq!(
            n(&format!("quay.io/a/b:t@{d}")).expect("ok"),
            format!("quay.io/a/b:t@{d}")
        );
        for bad in [
            "",
            // (`UPPER/case` is valid for Docker: an uppercase first component is a registry.)
            "upper/Case",
            "a//b",
            "app:bad tag",
            "app@sha256:zz",
            ":tag",
            "a/-b",
        ] {
            assert!(n(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
