//! Pulling images from OCI registries over the distribution API (with `oci-client`) into the
//! [`Store`], and the `pull_policy` decision of whether to pull at all.
//!
//! A pull resolves the reference to a manifest (a multi-arch index is resolved to the host's
//! platform, and kept), fetches the config, then the layers — several at once, each streamed
//! into the store's `tmp/` and hashed as it arrives, so a blob whose bytes do not match its
//! digest is never stored — and unpacks each layer as soon as it is in, while the others are
//! still downloading. Each verified layer blob is committed as soon as it is complete (so an
//! interrupted pull resumes where it stopped); the manifest, index and the reference are
//! written only when everything is there, so an interrupted pull leaves no image behind.
//! Concurrent pulls of one image (two projects, two CI jobs) serialize on a per-reference
//! lock: the second finds the blobs the first fetched.
//!
//! This module talks to registries and writes through the store only. It never decides
//! which images a project needs (that is the caller's) and never prints: progress goes to
//! an [`Observer`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::{StreamExt, TryStreamExt, stream};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};
use oci_spec::image::Descriptor;
use serde::Serialize;

use super::auth::{AuthError, Credential, Credentials, Insecure};
use super::layout::{self, LayoutError};
use super::reference::{Reference, ReferenceError};
use super::store::{
    self, MAX_JSON_BYTES, MEDIA_DOCKER_CONFIG, MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST,
    MEDIA_OCI_CONFIG, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST, StagedBlob, Store, StoreError,
};

/// What a registry is asked for when resolving a tag.
const ACCEPT: &[&str] = &[
    MEDIA_OCI_MANIFEST,
    MEDIA_OCI_INDEX,
    MEDIA_DOCKER_MANIFEST,
    MEDIA_DOCKER_LIST,
];

/// Layers fetched at once per image: Docker's `max-concurrent-downloads` default.
pub const DEFAULT_CONCURRENCY: usize = 3;

/// Everything that can go wrong pulling; each variant names the image and, where there is
/// one, the registry and the blob.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("invalid image reference {reference:?}: {source}")]
    InvalidReference {
        reference: String,
        #[source]
        source: ReferenceError,
    },
    #[error("{image}: only sha256 digests are supported")]
    UnsupportedDigest { image: String },
    #[error("{image}: {source}")]
    Credentials {
        image: String,
        #[source]
        source: AuthError,
    },
    #[error("{image}: cannot reach the registry {registry}: {reason}")]
    Unreachable {
        image: String,
        registry: String,
        reason: String,
    },
    #[error(
        "{image}: the registry {registry} refused access ({reason}); credentials come from the `auths` of the Docker config ({credential})"
    )]
    Unauthorized {
        image: String,
        registry: String,
        reason: String,
        credential: &'static str,
    },
    #[error("{image}: not found in the registry {registry}")]
    NotFound { image: String, registry: String },
    #[error("{image}: the registry {registry}: {reason}")]
    Registry {
        image: String,
        registry: String,
        reason: String,
    },
    #[error("{image}: blob {digest}: {source}")]
    Blob {
        image: String,
        digest: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error(
        "{image}: blob {digest}: the transfer from {registry} broke off after {received} of {size} bytes ({reason}); nothing of it was kept"
    )]
    Interrupted {
        image: String,
        digest: String,
        registry: String,
        received: u64,
        size: u64,
        reason: String,
    },
    #[error("{image}: {source}")]
    Image {
        image: String,
        #[source]
        source: Box<LayoutError>,
    },
    #[error("{image}: {source}")]
    Store {
        image: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error("{image}: {context}: {reason}")]
    Internal {
        image: String,
        context: &'static str,
        reason: String,
    },
    #[error("{image}: not in the image store, and pull_policy is {policy}")]
    NotPresent { image: String, policy: String },
    #[error(
        "{image}: pull_policy build: wharf does not build images; load it with `wharf image load` first"
    )]
    BuildUnsupported { image: String },
    #[error("invalid pull_policy {policy:?}: {reason}")]
    InvalidPolicy { policy: String, reason: String },
}

type Result<T, E = PullError> = std::result::Result<T, E>;

/// What a layer is doing, as an [`Observer`] is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerStatus {
    /// The blob was already in the store.
    AlreadyExists,
    Downloading,
    Downloaded,
    Unpacking,
    /// Unpacked (now, or by an earlier pull).
    Unpacked,
}

/// A progress event of a pull.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    /// The manifest is known; these layers (digest, size) will be brought in.
    Resolved {
        image: &'a str,
        manifest: &'a str,
        layers: Vec<(&'a str, u64)>,
    },
    Layer {
        image: &'a str,
        layer: &'a str,
        status: LayerStatus,
        current: u64,
        total: u64,
    },
    Pulled {
        image: &'a str,
        manifest: &'a str,
        /// Bytes downloaded by this pull (blobs already in the store not counted).
        downloaded: u64,
    },
}

/// Receives a pull's progress; rendering it is the caller's business.
pub trait Observer: Send + Sync {
    fn event(&self, event: &Event<'_>);
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _: &Event<'_>) {}
}

/// How to reach registries.
#[derive(Debug, Default)]
pub struct PullOptions {
    pub credentials: Credentials,
    pub insecure: Insecure,
    /// Layers downloaded at once per image; 0 means [`DEFAULT_CONCURRENCY`].
    pub concurrency: usize,
    /// Unpack the layers as they arrive (what `wharf pull` does); off, the pull only
    /// stores blobs, like `skopeo copy` to a directory.
    pub unpack: bool,
}

/// What a pull brought in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The normalized reference written in the store.
    pub reference: String,
    pub manifest: String,
    pub index: Option<String>,
    pub downloaded: u64,
    pub layers: usize,
    /// Layers whose blob was already in the store.
    pub cached_layers: usize,
}

/// Compose's `pull_policy`, normalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    /// `missing` and `if_not_present`; also the default.
    Missing,
    Never,
    /// `build`: wharf does not build, so a present image is used and a missing one is an
    /// error that says so.
    Build,
    /// `daily`, `weekly`, `every_<duration>`: pull when missing or when the local
    /// reference is older than this.
    Every(Duration),
}

impl PullPolicy {
    /// Parses Compose's values (`every_12h`, `every_1w2d` … use Go-style units plus `d`
    /// and `w`).
    pub fn parse(s: &str) -> Result<PullPolicy> {
        let invalid = |reason: &str| PullError::InvalidPolicy {
            policy: s.to_string(),
            reason: reason.to_string(),
        };
        Ok(match s {
            "always" => PullPolicy::Always,
            "missing" | "if_not_present" => PullPolicy::Missing,
            "never" => PullPolicy::Never,
            "build" => PullPolicy::Build,
            "daily" => PullPolicy::Every(Duration::from_secs(24 * 3600)),
            "weekly" => PullPolicy::Every(Duration::from_secs(7 * 24 * 3600)),
            other => match other.strip_prefix("every_") {
                Some(d) => PullPolicy::Every(parse_interval(d).ok_or_else(|| {
                    invalid("expected every_<duration> such as every_12h or every_2d")
                })?),
                None => {
                    return Err(invalid(
                        "expected always, missing, if_not_present, never, build, daily, weekly or every_<duration>",
                    ));
                }
            },
        })
    }
}

/// `1w2d3h4m5s`-style intervals.
fn parse_interval(s: &str) -> Option<Duration> {
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        let unit = match c {
            'w' => 7 * 24 * 3600,
            'd' => 24 * 3600,
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    (digits.is_empty() && total > 0).then(|| Duration::from_secs(total))
}

/// Makes `image` available in the store as `policy` says: pulls it when the policy asks
/// for it, uses the local copy otherwise. Returns the manifest digest, and what was pulled
/// (None when the local image was used).
pub async fn ensure_image(
    store: &Arc<Store>,
    image: &str,
    policy: PullPolicy,
    opts: &PullOptions,
    observer: &dyn Observer,
) -> Result<(String, Option<Pulled>)> {
    let reference = parse(image)?.to_string();
    let store_err = |source| PullError::Store {
        image: image.to_string(),
        source: Box::new(source),
    };
    let local = store.resolve(&reference).map_err(store_err)?;
    let pull_now = match (policy, &local) {
        (PullPolicy::Always, _) => true,
        (PullPolicy::Missing, local) => local.is_none(),
        (PullPolicy::Never, Some(_)) | (PullPolicy::Build, Some(_)) => false,
        (PullPolicy::Never, None) => {
            return Err(PullError::NotPresent {
                image: image.to_string(),
                policy: "never".to_string(),
            });
        }
        (PullPolicy::Build, None) => {
            return Err(PullError::BuildUnsupported {
                image: image.to_string(),
            });
        }
        (PullPolicy::Every(interval), Some(_)) => {
            let tagged = store.tagged_at(&reference).map_err(store_err)?;
            tagged
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_none_or(|age| age >= interval)
        }
        (PullPolicy::Every(_), None) => true,
    };
    match (pull_now, local) {
        (false, Some(manifest)) => Ok((manifest, None)),
        _ => {
            let pulled = pull(store, image, opts, observer).await?;
            Ok((pulled.manifest.clone(), Some(pulled)))
        }
    }
}

fn parse(image: &str) -> Result<Reference> {
    let parsed = Reference::parse(image).map_err(|source| PullError::InvalidReference {
        reference: image.to_string(),
        source,
    })?;
    if parsed
        .digest()
        .is_some_and(|d| store::digest_hex(d).is_err())
    {
        return Err(PullError::UnsupportedDigest {
            image: image.to_string(),
        });
    }
    Ok(parsed)
}

/// Pulls `image` from its registry into the store; see the module docs.
pub async fn pull(
    store: &Arc<Store>,
    image: &str,
    opts: &PullOptions,
    observer: &dyn Observer,
) -> Result<Pulled> {
    let parsed = parse(image)?;
    let session = Session::new(store, image, &parsed, opts, observer)?;
    // Serialize pulls of one image across processes; waiting for a flock blocks, so it
    // happens on the blocking pool.
    let _lock = {
        let store = Arc::clone(store);
        let reference = session.reference.clone();
        tokio::task::spawn_blocking(move || store.lock_reference(&reference))
            .await
            .map_err(|e| session.internal("waiting for the image lock", e))?
            .map_err(|e| session.store_error(e))?
    };
    session.run().await
}

/// One image's pull: the client, the credentials, and where errors point.
struct Session<'a> {
    store: &'a Arc<Store>,
    /// As the user wrote it, for messages.
    image: &'a str,
    /// Normalized, as written in the store.
    reference: String,
    registry: String,
    target: oci_client::Reference,
    client: Client,
    auth: RegistryAuth,
    credential: &'static str,
    opts: &'a PullOptions,
    observer: &'a dyn Observer,
}

impl<'a> Session<'a> {
    fn new(
        store: &'a Arc<Store>,
        image: &'a str,
        parsed: &Reference,
        opts: &'a PullOptions,
        observer: &'a dyn Observer,
    ) -> Result<Session<'a>> {
        let registry = parsed.registry().to_string();
        let target = match (parsed.tag(), parsed.digest()) {
            (Some(tag), Some(digest)) => oci_client::Reference::with_tag_and_digest(
                registry.clone(),
                parsed.repository().to_string(),
                tag.to_string(),
                digest.to_string(),
            ),
            (_, Some(digest)) => oci_client::Reference::with_digest(
                registry.clone(),
                parsed.repository().to_string(),
                digest.to_string(),
            ),
            (tag, None) => oci_client::Reference::with_tag(
                registry.clone(),
                parsed.repository().to_string(),
                tag.unwrap_or("latest").to_string(),
            ),
        };
        let protocol = if opts.insecure.is_plain_http(parsed) {
            ClientProtocol::HttpsExcept(vec![target.resolve_registry().to_string()])
        } else {
            ClientProtocol::Https
        };
        let client = Client::new(ClientConfig {
            protocol,
            connect_timeout: Some(Duration::from_secs(10)),
            // A registry that stops sending mid-blob fails the pull instead of hanging it.
            read_timeout: Some(Duration::from_secs(60)),
            user_agent: concat!("wharf/", env!("CARGO_PKG_VERSION")),
            platform_resolver: None,
            ..ClientConfig::default()
        });
        let credential =
            opts.credentials
                .for_reference(parsed)
                .map_err(|source| PullError::Credentials {
                    image: image.to_string(),
                    source,
                })?;
        let (auth, credential) = match credential {
            Credential::Anonymous => (RegistryAuth::Anonymous, "none found: anonymous"),
            Credential::Basic { username, password } => {
                (RegistryAuth::Basic(username, password), "user and password")
            }
            Credential::Bearer(token) => (RegistryAuth::Bearer(token), "registry token"),
        };
        Ok(Session {
            store,
            image,
            reference: parsed.to_string(),
            registry,
            target,
            client,
            auth,
            credential,
            opts,
            observer,
        })
    }

    async fn run(&self) -> Result<Pulled> {
        // Authenticate first, so that refused credentials are reported as such and not as
        // the anonymous 401 that would follow.
        self.client
            .auth(&self.target, &self.auth, RegistryOperation::Pull)
            .await
            .map_err(|e| self.registry_error(e))?;
        let (top, top_digest) = self.fetch_manifest(&self.target).await?;
        // The index, if any, staged now and committed last.
        let mut index_blob: Option<StagedBlob<'_>> = None;
        let is_index =
            store::is_index_document(&top_digest, &top).map_err(|e| self.store_error(e))?;
        let (manifest_bytes, manifest_digest, index) = if is_index {
            let parsed_index =
                store::parse_index(&top_digest, &top).map_err(|e| self.store_error(e))?;
            let location = format!("{}/{}", self.registry, self.target.repository());
            let child = layout::select_platform(&parsed_index, &top_digest, &location)
                .map_err(|e| self.image_error(e))?;
            let child_ref = self.target.clone_with_digest(child.digest().to_string());
            let (bytes, digest) = self.fetch_manifest(&child_ref).await?;
            index_blob = Some(self.stage_bytes(&top, &top_digest)?);
            (bytes, digest, Some(top_digest))
        } else {
            (top, top_digest, None)
        };
        let manifest = store::parse_manifest(&manifest_digest, &manifest_bytes)
            .map_err(|e| self.store_error(e))?;
        // The config: small, fetched whole, checked to be an image config.
        let config = manifest.config();
        let config_digest = config.digest().to_string();
        let config_media = config.media_type().as_ref();
        if config_media != MEDIA_OCI_CONFIG && config_media != MEDIA_DOCKER_CONFIG {
            return Err(self.store_error(StoreError::NotAnImageConfig {
                manifest: manifest_digest.clone(),
                digest: config_digest,
                media_type: config_media.to_string(),
            }));
        }
        if config.size() > MAX_JSON_BYTES {
            return Err(self.blob_error(
                &config_digest,
                StoreError::TooLarge {
                    digest: config_digest.clone(),
                    limit: MAX_JSON_BYTES,
                },
            ));
        }
        let (config_blob, config_downloaded) = self.fetch_blob(config, false).await?;
        let config_bytes = config_blob
            .read_limited(MAX_JSON_BYTES)
            .map_err(|e| self.blob_error(&config_digest, e))?;
        let location = format!("{}/{}", self.registry, self.target.repository());
        let parsed_config = layout::check_config(&config_bytes, &config_digest, &location)
            .map_err(|e| self.image_error(e))?;
        let diff_ids = parsed_config.rootfs().diff_ids();
        let layers = manifest.layers();
        if diff_ids.len() != layers.len() {
            return Err(self.store_error(StoreError::CorruptImage {
                manifest: manifest_digest.clone(),
                reason: format!(
                    "{} layers but {} diff_ids in config {config_digest}",
                    layers.len(),
                    diff_ids.len()
                ),
            }));
        }
        self.observer.event(&Event::Resolved {
            image: self.image,
            manifest: &manifest_digest,
            layers: layers
                .iter()
                .map(|l| (l.digest().as_ref(), l.size()))
                .collect(),
        });
        let concurrency = match self.opts.concurrency {
            0 => DEFAULT_CONCURRENCY,
            n => n,
        };
        let outcomes: Vec<(u64, bool)> = stream::iter(layers.iter().zip(diff_ids))
            .map(|(layer, diff_id)| self.layer(layer, diff_id, &manifest_digest))
            .buffer_unordered(concurrency)
            .try_collect()
            .await?;
        // Everything is in: the config, the manifest and the index become visible (each
        // before the document that names it), then the name.
        let manifest_blob = self.stage_bytes(&manifest_bytes, &manifest_digest)?;
        for blob in [config_blob, manifest_blob].into_iter().chain(index_blob) {
            let digest = blob.digest().to_string();
            blob.commit().map_err(|e| self.blob_error(&digest, e))?;
        }
        match &index {
            Some(index) => self
                .store
                .tag_with_index(&self.reference, &manifest_digest, index),
            None => self.store.tag(&self.reference, &manifest_digest),
        }
        .map_err(|e| self.store_error(e))?;
        let downloaded = outcomes.iter().map(|(bytes, _)| bytes).sum::<u64>() + config_downloaded;
        self.observer.event(&Event::Pulled {
            image: self.image,
            manifest: &manifest_digest,
            downloaded,
        });
        Ok(Pulled {
            reference: self.reference.clone(),
            manifest: manifest_digest,
            index,
            downloaded,
            layers: outcomes.len(),
            cached_layers: outcomes.iter().filter(|(_, cached)| *cached).count(),
        })
    }

    /// A manifest or index, by tag or digest, verified against the digest it was asked by.
    async fn fetch_manifest(&self, reference: &oci_client::Reference) -> Result<(Vec<u8>, String)> {
        let (body, _) = self
            .client
            .pull_manifest_raw(reference, &self.auth, ACCEPT)
            .await
            .map_err(|e| self.registry_error(e))?;
        let digest = store::sha256_digest(&body);
        if body.len() as u64 > MAX_JSON_BYTES {
            return Err(self.blob_error(
                &digest,
                StoreError::TooLarge {
                    digest: digest.clone(),
                    limit: MAX_JSON_BYTES,
                },
            ));
        }
        if let Some(expected) = reference.digest()
            && expected != digest
        {
            return Err(self.blob_error(
                expected,
                StoreError::DigestMismatch {
                    expected: expected.to_string(),
                    actual: digest,
                },
            ));
        }
        Ok((body.to_vec(), digest))
    }

    fn stage_bytes(&self, bytes: &[u8], digest: &str) -> Result<StagedBlob<'a>> {
        self.store
            .stage_blob(bytes, Some(digest), Some(bytes.len() as u64))
            .map_err(|e| self.blob_error(digest, e))
    }

    /// One layer: fetched and committed unless the store has it, then unpacked (when asked).
    /// Returns (bytes downloaded, whether the blob was already there).
    async fn layer(
        &self,
        layer: &Descriptor,
        diff_id: &str,
        manifest: &str,
    ) -> Result<(u64, bool)> {
        let digest = layer.digest().to_string();
        let (blob, downloaded) = self.fetch_blob(layer, true).await?;
        let cached = !blob.is_new();
        blob.commit().map_err(|e| self.blob_error(&digest, e))?;
        if self.opts.unpack {
            if !self.store.is_unpacked(&digest) {
                self.status(&digest, LayerStatus::Unpacking, 0, layer.size());
            }
            let store = Arc::clone(self.store);
            let (manifest, layer_desc, diff_id) =
                (manifest.to_string(), layer.clone(), diff_id.to_string());
            tokio::task::spawn_blocking(move || {
                store.ensure_layer(&manifest, &layer_desc, &diff_id)
            })
            .await
            .map_err(|e| self.internal("unpacking a layer", e))?
            .map_err(|e| self.blob_error(&digest, e))?;
            self.status(&digest, LayerStatus::Unpacked, layer.size(), layer.size());
        }
        Ok((downloaded, cached))
    }

    fn status(&self, layer: &str, status: LayerStatus, current: u64, total: u64) {
        self.observer.event(&Event::Layer {
            image: self.image,
            layer,
            status,
            current,
            total,
        });
    }

    /// Streams a blob into the store's `tmp/`, verified; a blob the store has is not
    /// fetched. Returns the staged blob and the bytes downloaded.
    async fn fetch_blob(&self, desc: &Descriptor, report: bool) -> Result<(StagedBlob<'a>, u64)> {
        let digest = desc.digest().to_string();
        let size = desc.size();
        let existing = self
            .store
            .existing_blob(Some(&digest), Some(size))
            .map_err(|e| self.blob_error(&digest, e))?;
        if let Some(blob) = existing {
            if report {
                self.status(&digest, LayerStatus::AlreadyExists, size, size);
            }
            return Ok((blob, 0));
        }
        let request = OciDescriptor {
            media_type: desc.media_type().to_string(),
            digest: digest.clone(),
            size: i64::try_from(size).unwrap_or(i64::MAX),
            ..OciDescriptor::default()
        };
        let mut body = self
            .client
            .pull_blob_stream(&self.target, &request)
            .await
            .map_err(|e| self.registry_error(e))?;
        let mut writer = self
            .store
            .blob_writer(Some(&digest), Some(size))
            .map_err(|e| self.blob_error(&digest, e))?;
        if report {
            self.status(&digest, LayerStatus::Downloading, 0, size);
        }
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => {
                    writer
                        .write(&chunk)
                        .map_err(|e| self.blob_error(&digest, e))?;
                    if report {
                        self.status(&digest, LayerStatus::Downloading, writer.written(), size);
                    }
                }
                // oci-client checks the digest too and fails the stream's end on a
                // mismatch; with every byte in, our own check says exactly what differs.
                Err(_) if writer.written() == size => break,
                Err(e) => {
                    return Err(PullError::Interrupted {
                        image: self.image.to_string(),
                        digest,
                        registry: self.registry.clone(),
                        received: writer.written(),
                        size,
                        reason: error_chain(&e),
                    });
                }
            }
        }
        let blob = writer.finish().map_err(|e| self.blob_error(&digest, e))?;
        if report {
            self.status(&digest, LayerStatus::Downloaded, size, size);
        }
        Ok((blob, size))
    }

    fn registry_error(&self, e: OciDistributionError) -> PullError {
        let image = self.image.to_string();
        let registry = self.registry.clone();
        let unauthorized = |reason: String| PullError::Unauthorized {
            image: image.clone(),
            registry: registry.clone(),
            reason,
            credential: self.credential,
        };
        match e {
            OciDistributionError::UnauthorizedError { .. } => {
                unauthorized("401 Unauthorized".to_string())
            }
            OciDistributionError::AuthenticationFailure(reason) => {
                unauthorized(format!("authentication failed: {}", reason.trim()))
            }
            OciDistributionError::RegistryError { envelope, .. } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                let reason = envelope
                    .errors
                    .iter()
                    .map(|e| e.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                if codes.iter().any(|c| {
                    matches!(
                        c,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                    )
                }) {
                    PullError::NotFound { image, registry }
                } else if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
                {
                    unauthorized(reason)
                } else {
                    PullError::Registry {
                        image,
                        registry,
                        reason,
                    }
                }
            }
            OciDistributionError::ServerError { code: 404, .. } => {
                PullError::NotFound { image, registry }
            }
            OciDistributionError::ServerError {
                code: code @ (401 | 403),
                ..
            } => unauthorized(format!("HTTP {code}")),
            OciDistributionError::RequestError(e) => PullError::Unreachable {
                image,
                registry,
                reason: error_chain(&e),
            },
            other => PullError::Registry {
                image,
                registry,
                reason: error_chain(&other),
            },
        }
    }

    fn blob_error(&self, digest: &str, source: StoreError) -> PullError {
        PullError::Blob {
            image: self.image.to_string(),
            digest: digest.to_string(),
            source: Box::new(source),
        }
    }

    fn store_error(&self, source: StoreError) -> PullError {
        PullError::Store {
            image: self.image.to_string(),
            source: Box::new(source),
        }
    }

    fn image_error(&self, source: LayoutError) -> PullError {
        PullError::Image {
            image: self.image.to_string(),
            source: Box::new(source),
        }
    }

    fn internal(&self, context: &'static str, e: impl std::fmt::Display) -> PullError {
        PullError::Internal {
            image: self.image.to_string(),
            context,
            reason: e.to_string(),
        }
    }
}

/// An error and its sources on one line: reqwest's own message ("error sending request")
/// says nothing without the cause underneath.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policies_parse_like_compose() {
        assert_eq!(PullPolicy::parse("always").ok(), Some(PullPolicy::Always));
        assert_eq!(PullPolicy::parse("missing").ok(), Some(PullPolicy::Missing));
        assert_eq!(
            PullPolicy::parse("if_not_present").ok(),
            Some(PullPolicy::Missing)
        );
        assert_eq!(PullPolicy::parse("never").ok(), Some(PullPolicy::Never));
        assert_eq!(PullPolicy::parse("build").ok(), Some(PullPolicy::Build));
        assert_eq!(
            PullPolicy::parse("daily").ok(),
            Some(PullPolicy::Every(Duration::from_secs(86400)))
        );
        assert_eq!(
            PullPolicy::parse("every_1w2d3h4m5s").ok(),
            Some(PullPolicy::Every(Duration::from_secs(
                7 * 86400 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5
            )))
        );
        for bad in ["sometimes", "every_", "every_5", "every_3x", "every_0s", ""] {
            let err = PullPolicy::parse(bad).expect_err(bad);
            assert!(err.to_string().contains("invalid pull_policy"), "{err}");
        }
    }

    #[tokio::test]
    async fn local_policies_never_touch_the_network() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(dir.path()).expect("store"));
        let opts = PullOptions::default();
        // An unroutable registry: any attempt to pull would fail with Unreachable.
        let image = "127.0.0.1:1/nope:1";
        let err = ensure_image(&store, image, PullPolicy::Never, &opts, &Silent)
            .await
            .expect_err("never");
        assert!(
            matches!(err, PullError::NotPresent { .. }),
            "{err}: never must not pull"
        );
        let err = ensure_image(&store, image, PullPolicy::Build, &opts, &Silent)
            .await
            .expect_err("build");
        assert!(matches!(err, PullError::BuildUnsupported { .. }), "{err}");
        let err = ensure_image(&store, image, PullPolicy::Missing, &opts, &Silent)
            .await
            .expect_err("missing pulls");
        assert!(matches!(err, PullError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    }

    #[test]
    fn invalid_references_and_digests_are_refused_before_any_request() {
        let err = parse("ns/Busybox").expect_err("invalid");
        assert!(matches!(err, PullError::InvalidReference { .. }), "{err}");
        let err = parse(&format!("busybox@sha512:{}", "a".repeat(128))).expect_err("sha512");
        assert!(matches!(err, PullError::UnsupportedDigest { .. }), "{err}");
    }
}
