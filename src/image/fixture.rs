//! The project's own test image builder: turns Debian's `busybox-static` (`/bin/busybox`)
//! into a two-layer OCI image layout directory, because neither the machines nor CI reach
//! any registry. Layer 1 holds busybox, a `/bin` symlink per applet, `/etc/passwd` and
//! `/etc/group` (root, nobody, `app` 1000:1000), files that layer 2 removes; layer 2 holds
//! a whiteout (`etc/.wh.removed.txt`), an opaque directory (`opt/opaque/.wh..wh..opq`) and
//! `/srv/index.html` and the entrypoint script. The config has `Env`, `Entrypoint`, `Cmd`,
//! `WorkingDir`, `User`, `ExposedPorts` and a `Healthcheck`. The output is deterministic (sorted entries, mtime 0, fixed owners,
//! fixed gzip header, fixed `created` times), so the same busybox gives the same digests.
//! The image config JSON is written here with serde rather than through oci-spec's
//! `ImageConfiguration`, because that type has no `Healthcheck` field and would drop
//! Docker's `config.Healthcheck` key. This module only writes into the output directory
//! it is given; it must not touch a store (load the layout with `layout::load_layout`).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use oci_spec::image::{
    ANNOTATION_REF_NAME, Arch, Descriptor, DescriptorBuilder, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, Os, PlatformBuilder,
};
use serde::Serialize;

use super::layout::host_arch;
use super::store::{self, Healthcheck};

/// The image's `Entrypoint`: a script that exports `WHARF_ENTRYPOINT=1` and execs its
/// arguments.
pub const FIXTURE_ENTRYPOINT: &str = "/usr/local/bin/entrypoint";
/// The image's `User`.
pub const FIXTURE_USER: &str = "root";

/// What to build from.
#[derive(Debug, Clone, Copy)]
pub struct FixtureSpec<'a> {
    /// The static busybox binary, normally `/bin/busybox`.
    pub busybox: &'a Path,
    /// The name written to `index.json`'s `org.opencontainers.image.ref.name`, e.g.
    /// `wharf.test/busybox:1`.
    pub tag: &'a str,
}

/// The `PATH` the fixture's config sets.
pub const FIXTURE_PATH_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// What `/srv/index.html` contains.
pub const FIXTURE_INDEX_HTML: &str = "hello from wharf\n";
/// Fixed creation time, for reproducible digests.
const EPOCH: &str = "1970-01-01T00:00:00Z";

/// Everything that can go wrong building the fixture.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error(
        "{path} not found: the test image is built from Debian's busybox-static; install it with `apt-get install -y busybox-static`"
    )]
    BusyboxMissing { path: PathBuf },
    #[error("running `{command}`: {reason}")]
    Command { command: String, reason: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("output directory {path} exists and is not empty")]
    OutNotEmpty { path: PathBuf },
    #[error("building the {what}: {reason}")]
    Build { what: &'static str, reason: String },
}

type Result<T, E = FixtureError> = std::result::Result<T, E>;

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> FixtureError + use<> {
    let path = path.to_path_buf();
    move |source| FixtureError::Io { op, path, source }
}

fn build_err(what: &'static str) -> impl FnOnce(String) -> FixtureError {
    move |reason| FixtureError::Build { what, reason }
}

enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
}

struct Entry {
    path: String,
    mode: u32,
    owner: u64,
    kind: Kind,
}

fn dir(path: &str, mode: u32) -> Entry {
    Entry {
        path: path.to_string(),
        mode,
        owner: 0,
        kind: Kind::Dir,
    }
}

fn file(path: &str, mode: u32, content: &[u8]) -> Entry {
    Entry {
        path: path.to_string(),
        mode,
        owner: 0,
        kind: Kind::File(content.to_vec()),
    }
}

/// An uncompressed tar of `entries`, sorted by path components, mtime 0.
fn layer_tar(mut entries: Vec<Entry>) -> Result<Vec<u8>> {
    entries.sort_by(|a, b| a.path.split('/').cmp(b.path.split('/')));
    let mut builder = tar::Builder::new(Vec::new());
    let tar_err = |source| FixtureError::Io {
        op: "writing a layer tar",
        path: PathBuf::from("(memory)"),
        source,
    };
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(entry.mode);
        header.set_uid(entry.owner);
        header.set_gid(entry.owner);
        header.set_mtime(0);
        match entry.kind {
            Kind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder
                    .append_data(&mut header, format!("{}/", entry.path), io::empty())
                    .map_err(tar_err)?;
            }
            Kind::File(content) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(content.len() as u64);
                builder
                    .append_data(&mut header, &entry.path, content.as_slice())
                    .map_err(tar_err)?;
            }
            Kind::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                builder
                    .append_link(&mut header, &entry.path, &target)
                    .map_err(tar_err)?;
            }
        }
    }
    builder.into_inner().map_err(tar_err)
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let gz_err = |source| FixtureError::Io {
        op: "compressing a layer",
        path: PathBuf::from("(memory)"),
        source,
    };
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).map_err(gz_err)?;
    encoder.finish().map_err(gz_err)
}

fn applets(busybox: &Path) -> Result<Vec<String>> {
    let command = format!("{} --list", busybox.display());
    let output =
        Command::new(busybox)
            .arg("--list")
            .output()
            .map_err(|e| FixtureError::Command {
                command: command.clone(),
                reason: e.to_string(),
            })?;
    if !output.status.success() {
        return Err(FixtureError::Command {
            command,
            reason: format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    let mut names: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|n| {
            !n.is_empty()
                && *n != "."
                && *n != ".."
                && *n != "busybox"
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
        })
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Err(FixtureError::Command {
            command,
            reason: "listed no applets".to_string(),
        });
    }
    Ok(names)
}

fn base_layer(busybox: &[u8], applets: &[String]) -> Vec<Entry> {
    let mut entries = vec![
        dir("bin", 0o755),
        file("bin/busybox", 0o755, busybox),
        dir("dev", 0o755),
        dir("etc", 0o755),
        file(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\n\
              nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
              app:x:1000:1000:app:/home/app:/bin/sh\n",
        ),
        file(
            "etc/group",
            0o644,
            b"root:x:0:\nnogroup:x:65534:\napp:x:1000:\n",
        ),
        file("etc/removed.txt", 0o644, b"layer 2 removes this file\n"),
        dir("home", 0o755),
        Entry {
            path: "home/app".to_string(),
            mode: 0o755,
            owner: 1000,
            kind: Kind::Dir,
        },
        dir("opt", 0o755),
        dir("opt/opaque", 0o755),
        file(
            "opt/opaque/old.txt",
            0o644,
            b"hidden by the opaque directory of layer 2\n",
        ),
        dir("proc", 0o555),
        dir("root", 0o700),
        dir("sys", 0o555),
        dir("tmp", 0o1777),
    ];
    entries.extend(applets.iter().map(|applet| Entry {
        path: format!("bin/{applet}"),
        mode: 0o777,
        owner: 0,
        kind: Kind::Symlink("busybox".to_string()),
    }));
    entries
}

fn top_layer() -> Vec<Entry> {
    vec![
        dir("etc", 0o755),
        file("etc/.wh.removed.txt", 0o644, b""),
        dir("opt", 0o755),
        dir("opt/opaque", 0o755),
        file("opt/opaque/.wh..wh..opq", 0o644, b""),
        file("opt/opaque/new.txt", 0o644, b"added by layer 2\n"),
        dir("srv", 0o755),
        file("srv/index.html", 0o644, FIXTURE_INDEX_HTML.as_bytes()),
        dir("usr", 0o755),
        dir("usr/local", 0o755),
        dir("usr/local/bin", 0o755),
        // The shape of most images' docker-entrypoint.sh: prepare, then exec the command.
        file(
            "usr/local/bin/entrypoint",
            0o755,
            b"#!/bin/sh\n# wharf test image: marks the environment, then runs the command\nexport WHARF_ENTRYPOINT=1\nexec \"$@\"\n",
        ),
    ]
}

#[derive(Serialize)]
struct ConfigFile {
    created: &'static str,
    architecture: &'static str,
    os: &'static str,
    config: RunConfig,
    rootfs: RootFs,
    history: Vec<HistoryEntry>,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RunConfig {
    user: String,
    exposed_ports: BTreeMap<String, Empty>,
    env: Vec<String>,
    /// Serialized as `null`, like Docker does for an image without an entrypoint.
    entrypoint: Option<Vec<String>>,
    cmd: Vec<String>,
    working_dir: String,
    healthcheck: Healthcheck,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

#[derive(Serialize)]
struct HistoryEntry {
    created: &'static str,
    created_by: &'static str,
}

fn write_blob(out: &Path, bytes: &[u8]) -> Result<(String, u64)> {
    let digest = store::sha256_digest(bytes);
    let hex = digest.trim_start_matches("sha256:");
    let path = out.join("blobs/sha256").join(hex);
    fs::write(&path, bytes).map_err(io_err("writing", &path))?;
    Ok((digest, bytes.len() as u64))
}

fn descriptor(media_type: MediaType, digest: &str, size: u64) -> Result<Descriptor> {
    let digest = store::oci_digest(digest).map_err(|e| FixtureError::Build {
        what: "descriptor",
        reason: e.to_string(),
    })?;
    DescriptorBuilder::default()
        .media_type(media_type)
        .digest(digest)
        .size(size)
        .build()
        .map_err(|e| build_err("descriptor")(e.to_string()))
}

/// Builds the busybox test image as an OCI image layout at `out` (created; must be absent
/// or empty) and returns its manifest digest. `index.json` names it `spec.tag`.
pub fn build_busybox_layout(spec: &FixtureSpec, out: &Path) -> Result<String> {
    if !spec.busybox.is_file() {
        return Err(FixtureError::BusyboxMissing {
            path: spec.busybox.to_path_buf(),
        });
    }
    if out.exists() {
        let mut entries = fs::read_dir(out).map_err(io_err("listing", out))?;
        if entries.next().is_some() {
            return Err(FixtureError::OutNotEmpty {
                path: out.to_path_buf(),
            });
        }
    }
    let blobs = out.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(io_err("creating", &blobs))?;

    let busybox = fs::read(spec.busybox).map_err(io_err("reading", spec.busybox))?;
    let applets = applets(spec.busybox)?;
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for entries in [base_layer(&busybox, &applets), top_layer()] {
        let tar = layer_tar(entries)?;
        diff_ids.push(store::sha256_digest(&tar));
        let (digest, size) = write_blob(out, &gzip(&tar)?)?;
        layers.push(descriptor(MediaType::ImageLayerGzip, &digest, size)?);
    }

    let config = ConfigFile {
        created: EPOCH,
        architecture: host_arch(),
        os: "linux",
        config: RunConfig {
            user: FIXTURE_USER.to_string(),
            exposed_ports: BTreeMap::from([("8080/tcp".to_string(), Empty {})]),
            env: vec![FIXTURE_PATH_ENV.to_string(), "WHARF_FIXTURE=1".to_string()],
            entrypoint: Some(vec![FIXTURE_ENTRYPOINT.to_string()]),
            cmd: vec!["sh".to_string()],
            working_dir: "/srv".to_string(),
            healthcheck: Healthcheck {
                test: Some(vec!["CMD".to_string(), "true".to_string()]),
                interval: Some(1_000_000_000),
                ..Healthcheck::default()
            },
        },
        rootfs: RootFs {
            kind: "layers",
            diff_ids,
        },
        history: vec![
            HistoryEntry {
                created: EPOCH,
                created_by: "wharf fixture: busybox-static, applet links, /etc/passwd, /etc/group",
            },
            HistoryEntry {
                created: EPOCH,
                created_by: "wharf fixture: whiteout, opaque directory, /srv/index.html",
            },
        ],
    };
    let config_json =
        serde_json::to_vec(&config).map_err(|e| build_err("image config")(e.to_string()))?;
    let (config_digest, config_size) = write_blob(out, &config_json)?;

    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(
            MediaType::ImageConfig,
            &config_digest,
            config_size,
        )?)
        .layers(layers)
        .build()
        .map_err(|e| build_err("manifest")(e.to_string()))?;
    let manifest_json =
        serde_json::to_vec(&manifest).map_err(|e| build_err("manifest")(e.to_string()))?;
    let (manifest_digest, manifest_size) = write_blob(out, &manifest_json)?;

    let platform = PlatformBuilder::default()
        .architecture(Arch::from(host_arch()))
        .os(Os::Linux)
        .build()
        .map_err(|e| build_err("platform")(e.to_string()))?;
    let mut entry = descriptor(MediaType::ImageManifest, &manifest_digest, manifest_size)?;
    entry.set_platform(Some(platform));
    entry.set_annotations(Some(
        [(ANNOTATION_REF_NAME.to_string(), spec.tag.to_string())].into(),
    ));
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![entry])
        .build()
        .map_err(|e| build_err("index")(e.to_string()))?;
    let index_json =
        serde_json::to_vec_pretty(&index).map_err(|e| build_err("index")(e.to_string()))?;
    let index_path = out.join("index.json");
    fs::write(&index_path, index_json).map_err(io_err("writing", &index_path))?;
    let marker = out.join("oci-layout");
    fs::write(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io_err("writing", &marker))?;
    Ok(manifest_digest)
}

/// Helpers for the image tests of this module and its siblings.
#[cfg(test)]
pub(crate) mod testing {
    use super::{FixtureSpec, build_busybox_layout};
    use crate::image::layout::load_layout;
    use crate::image::store::Store;
    use std::path::{Path, PathBuf};

    pub const TAG: &str = "wharf.test/busybox:1";

    /// `/bin/busybox`, or a failing test telling how to get it.
    pub fn busybox() -> &'static Path {
        let path = Path::new("/bin/busybox");
        assert!(
            path.is_file(),
            "/bin/busybox is missing: the image tests build their image from Debian's \
             busybox-static; run `apt-get install -y busybox-static`"
        );
        path
    }

    /// Builds the fixture layout in `dir/layout`; returns (layout dir, manifest digest).
    pub fn layout(dir: &Path) -> (PathBuf, String) {
        let out = dir.join("layout");
        let spec = FixtureSpec {
            busybox: busybox(),
            tag: TAG,
        };
        let digest = build_busybox_layout(&spec, &out).expect("build fixture");
        (out, digest)
    }

    /// A store in `dir/store` with the fixture loaded; returns (store, manifest digest).
    pub fn loaded_store(dir: &Path) -> (Store, String) {
        let (out, digest) = layout(dir);
        let store = Store::open(&dir.join("store")).expect("open store");
        let loaded = load_layout(&store, &out, None).expect("load fixture");
        assert_eq!(loaded, vec![(TAG.to_string(), digest.clone())]);
        (store, digest)
    }
}

#[cfg(test)]
mod tests {
    use super::testing;
    use super::*;
    use std::io::Read;

    fn blob(layout: &Path, digest: &str) -> Vec<u8> {
        let hex = store::digest_hex(digest).expect("digest");
        fs::read(layout.join("blobs/sha256").join(hex)).expect("blob")
    }

    /// (path, entry type, mode, uid, mtime, link target, content) of every entry.
    type Listed = (
        String,
        tar::EntryType,
        u32,
        u64,
        u64,
        Option<String>,
        Vec<u8>,
    );

    fn entries(gz: &[u8]) -> (Vec<Listed>, String) {
        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut tar_bytes)
            .expect("gunzip");
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let mut out = Vec::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let header = entry.header().clone();
            let link = entry
                .link_name()
                .expect("link")
                .map(|l| l.to_string_lossy().into_owned());
            let mut content = Vec::new();
            entry.read_to_end(&mut content).expect("content");
            out.push((
                entry.path().expect("path").to_string_lossy().into_owned(),
                header.entry_type(),
                header.mode().expect("mode"),
                header.uid().expect("uid"),
                header.mtime().expect("mtime"),
                link,
                content,
            ));
        }
        (out, store::sha256_digest(&tar_bytes))
    }

    #[test]
    fn same_inputs_give_the_same_digests() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (a, digest_a) = testing::layout(&tmp.path().join("a"));
        let (b, digest_b) = testing::layout(&tmp.path().join("b"));
        assert_eq!(digest_a, digest_b);
        assert_eq!(
            fs::read(a.join("index.json")).expect("index a"),
            fs::read(b.join("index.json")).expect("index b")
        );
        let mut names_a: Vec<_> = fs::read_dir(a.join("blobs/sha256"))
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        let mut names_b: Vec<_> = fs::read_dir(b.join("blobs/sha256"))
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        names_a.sort();
        names_b.sort();
        assert_eq!(names_a, names_b);
        assert_eq!(names_a.len(), 4, "2 layers, config, manifest");
    }

    #[test]
    fn layers_config_and_index_are_as_specified() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (out, digest) = testing::layout(tmp.path());
        let layout: serde_json::Value =
            serde_json::from_slice(&fs::read(out.join("oci-layout")).expect("oci-layout"))
                .expect("json");
        assert_eq!(layout["imageLayoutVersion"], "1.0.0");
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(out.join("index.json")).expect("index"))
                .expect("json");
        let entry = &index["manifests"][0];
        assert_eq!(entry["digest"], digest.as_str());
        assert_eq!(
            entry["annotations"]["org.opencontainers.image.ref.name"],
            testing::TAG
        );
        assert_eq!(entry["platform"]["architecture"], host_arch());

        let manifest: serde_json::Value =
            serde_json::from_slice(&blob(&out, &digest)).expect("manifest");
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .expect("config digest");
        let config: serde_json::Value =
            serde_json::from_slice(&blob(&out, config_digest)).expect("config");
        let c = &config["config"];
        assert_eq!(c["Env"][0], FIXTURE_PATH_ENV);
        assert_eq!(c["Env"][1], "WHARF_FIXTURE=1");
        assert_eq!(c["Entrypoint"], serde_json::json!([FIXTURE_ENTRYPOINT]));
        assert_eq!(c["Cmd"], serde_json::json!(["sh"]));
        assert_eq!(c["WorkingDir"], "/srv");
        assert_eq!(c["User"], FIXTURE_USER);
        assert_eq!(c["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
        assert_eq!(
            c["Healthcheck"],
            serde_json::json!({"Test": ["CMD", "true"], "Interval": 1_000_000_000i64})
        );
        assert_eq!(config["os"], "linux");
        assert_eq!(config["architecture"], host_arch());
        assert_eq!(config["history"].as_array().map(Vec::len), Some(2));

        let layers = manifest["layers"].as_array().expect("layers");
        assert_eq!(layers.len(), 2);
        let mut diff_ids = Vec::new();
        let mut listed = Vec::new();
        for layer in layers {
            assert_eq!(
                layer["mediaType"],
                "application/vnd.oci.image.layer.v1.tar+gzip"
            );
            let (list, diff_id) =
                entries(&blob(&out, layer["digest"].as_str().expect("layer digest")));
            diff_ids.push(diff_id);
            listed.push(list);
        }
        assert_eq!(config["rootfs"]["diff_ids"], serde_json::json!(diff_ids));
        for list in &listed {
            assert!(list.iter().all(|e| e.4 == 0), "mtime 0 everywhere");
            let paths: Vec<&str> = list.iter().map(|e| e.0.as_str()).collect();
            let mut sorted = paths.clone();
            sorted.sort_by(|a, b| {
                a.trim_end_matches('/')
                    .split('/')
                    .cmp(b.trim_end_matches('/').split('/'))
            });
            assert_eq!(paths, sorted, "entries are sorted");
        }
        let find = |layer: usize, path: &str| {
            listed[layer]
                .iter()
                .find(|e| e.0.trim_end_matches('/') == path)
                .unwrap_or_else(|| panic!("{path} missing from layer {}", layer + 1))
                .clone()
        };
        let busybox = find(0, "bin/busybox");
        assert_eq!(busybox.2, 0o755);
        assert_eq!(busybox.6, fs::read(testing::busybox()).expect("busybox"));
        let sh = find(0, "bin/sh");
        assert_eq!(sh.1, tar::EntryType::Symlink);
        assert_eq!(sh.5.as_deref(), Some("busybox"));
        assert!(
            listed[0]
                .iter()
                .filter(|e| e.1 == tar::EntryType::Symlink)
                .count()
                > 100
        );
        let passwd = String::from_utf8(find(0, "etc/passwd").6).expect("utf8");
        assert!(passwd.contains("root:x:0:0:"));
        assert!(passwd.contains("nobody:x:65534:65534:"));
        assert!(passwd.contains("app:x:1000:1000:"));
        assert!(
            String::from_utf8(find(0, "etc/group").6)
                .expect("utf8")
                .contains("app:x:1000:")
        );
        find(0, "etc/removed.txt");
        find(0, "opt/opaque/old.txt");
        let tmp_dir = find(0, "tmp");
        assert_eq!(tmp_dir.1, tar::EntryType::Directory);
        assert_eq!(tmp_dir.2, 0o1777);
        assert_eq!(find(0, "home/app").3, 1000);

        let whiteout = find(1, "etc/.wh.removed.txt");
        assert_eq!(whiteout.1, tar::EntryType::Regular);
        assert!(whiteout.6.is_empty());
        find(1, "opt/opaque/.wh..wh..opq");
        assert_eq!(find(1, "opt/opaque/new.txt").6, b"added by layer 2\n");
        assert_eq!(find(1, "srv/index.html").6, FIXTURE_INDEX_HTML.as_bytes());
        assert!(listed[1].iter().all(|e| !e.0.starts_with("bin")));
    }

    #[test]
    fn missing_busybox_says_how_to_install_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let spec = FixtureSpec {
            busybox: &tmp.path().join("no-busybox"),
            tag: testing::TAG,
        };
        let err = build_busybox_layout(&spec, &tmp.path().join("out")).expect_err("must fail");
        assert!(matches!(err, FixtureError::BusyboxMissing { .. }));
        assert!(
            err.to_string()
                .contains("apt-get install -y busybox-static")
        );
    }

    #[test]
    fn refuses_a_non_empty_output_directory() {
        let tmp = tempfile::tempdir().expect("tempdir");
        fs::write(tmp.path().join("junk"), b"x").expect("write");
        let spec = FixtureSpec {
            busybox: testing::busybox(),
            tag: testing::TAG,
        };
        let err = build_busybox_layout(&spec, tmp.path()).expect_err("must fail");
        assert!(matches!(err, FixtureError::OutNotEmpty { .. }), "{err}");
    }
}
