//! `wharf pull`, `wharf image pull` and `wharf images` against a real registry (Debian's
//! docker-registry on 127.0.0.1, see registry_harness.rs): by tag and by digest, a
//! multi-arch index, a token-protected registry with credentials from the Docker config,
//! a corrupt blob, a missing tag, the registry going away mid-pull, concurrent pulls of one
//! image, and pull policies. Each test uses its own state root and checks that a failed
//! pull leaves no image, no reference and no temporary file behind.

use std::fs;
use std::path::Path;
use std::process::Output;

use crate::registry_harness::{
    CutProxy, MultiArchLayout, Registry, RegistryOptions, busybox_layout, multi_arch_layout,
    registry_tools_available,
};
use crate::util::wharf;
use wharf::image::store::Store;

const BUSYBOX: &str = "/bin/busybox";

/// A temporary state root and the commands run against it.
struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new() -> Root {
        Root {
            dir: tempfile::tempdir().expect("state root"),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, args: &[&str], env: &[(&str, &Path)]) -> (i32, String, String) {
        let mut cmd = wharf();
        cmd.env("WHARF_ROOT", self.path()).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        split(cmd.output().expect("run wharf"))
    }

    fn store(&self) -> Store {
        Store::open(&self.path().join("images")).expect("store")
    }

    fn count(&self, sub: &str) -> usize {
        fs::read_dir(self.path().join("images").join(sub))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    fn assert_no_image_left_in_tmp(&self) {
        assert_eq!(self.count("tmp"), 0, "no temporary file may remain");
    }

    /// A failed pull leaves no reference and no temporary file.
    fn assert_no_image_left(&self, context: &str) {
        assert_eq!(
            self.count("refs"),
            0,
            "{context}: no reference may be written"
        );
        assert_eq!(
            self.count("tmp"),
            0,
            "{context}: no temporary file may remain"
        );
    }
}

fn split(out: Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn pushed_busybox(registry: &Registry, work: &Path) -> String {
    let (layout, manifest) = busybox_layout(work, Path::new(BUSYBOX));
    registry.push_layout(&layout, None, "busybox:1", false);
    manifest
}

/// A plain registry holding the busybox fixture as `busybox:1`, and an empty state root.
struct Setup {
    registry: Registry,
    work: tempfile::TempDir,
    manifest: String,
    root: Root,
    /// `<registry>/busybox:1`
    image: String,
}

/// None (after saying so loudly) when the registry tools are missing and we are not root.
fn setup(test: &str) -> Option<Setup> {
    if !registry_tools_available(test) {
        return None;
    }
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("work");
    let manifest = pushed_busybox(&registry, work.path());
    let image = format!("{}/busybox:1", registry.host());
    Some(Setup {
        registry,
        work,
        manifest,
        root: Root::new(),
        image,
    })
}

#[test]
fn pull_by_tag_then_by_digest_unpacks_each_layer_once() {
    let Some(Setup {
        registry,
        work: _work,
        manifest,
        root,
        image,
    }) = setup("pull_by_tag_then_by_digest")
    else {
        return;
    };

    let (code, out, err) = root.run(&["--progress", "plain", "image", "pull", &image], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "", "progress goes to stderr");
    assert!(
        err.contains(&format!("{image}: pulled {manifest}")),
        "{err}"
    );
    assert_eq!(
        err.matches("pull complete").count(),
        2,
        "one line per layer: {err}"
    );
    let store = root.store();
    assert_eq!(
        store.resolve(&image).expect("resolve"),
        Some(manifest.clone())
    );
    // Both layers are unpacked, and the top one still carries its whiteout.
    let layers = store.ensure_layers(&manifest).expect("layers");
    assert!(
        layers.iter().all(|l| !l.unpacked),
        "pull already unpacked them"
    );
    assert!(layers[0].path.join("bin/busybox").is_file());

    // Again: nothing is downloaded.
    let (code, _, err) = root.run(&["--progress", "plain", "image", "pull", &image], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.matches("already exists").count(), 2, "{err}");
    assert!(err.contains("(0B downloaded)"), "{err}");

    // By digest: the same manifest, under its digest reference.
    let by_digest = format!("{}/busybox@{manifest}", registry.host());
    let (code, _, err) = root.run(&["image", "pull", "-q", &by_digest], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "", "--quiet prints nothing");
    assert_eq!(store.resolve(&by_digest).expect("resolve"), Some(manifest));
    root.assert_no_image_left_in_tmp();
}

#[test]
fn a_multi_arch_index_resolves_to_the_host_manifest_and_is_kept() {
    if !registry_tools_available("multi_arch") {
        return;
    }
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("work");
    let MultiArchLayout {
        dir,
        index_digest,
        host_manifest_digest,
        foreign_manifest_digest,
        ..
    } = multi_arch_layout(work.path(), Path::new(BUSYBOX));
    registry.push_layout(&dir, None, "multi:1", true);
    let root = Root::new();
    let image = format!("{}/multi:1", registry.host());
    let (code, _, err) = root.run(&["image", "pull", &image], &[]);
    assert_eq!(code, 0, "{err}");
    let store = root.store();
    assert_eq!(
        store.resolve(&image).expect("resolve"),
        Some(host_manifest_digest)
    );
    assert!(store.has_blob(&index_digest), "the index is kept");
    assert!(
        !store.has_blob(&foreign_manifest_digest),
        "the foreign manifest is not fetched"
    );
}

#[test]
fn token_auth_uses_the_docker_config_and_names_refused_credentials() {
    if !registry_tools_available("token_auth") {
        return;
    }
    let (user, password) = ("ci", "pa:ss");
    let registry = Registry::start(RegistryOptions {
        token_auth: Some((user.to_string(), password.to_string())),
    });
    let work = tempfile::tempdir().expect("work");
    let manifest = pushed_busybox(&registry, work.path());
    let image = format!("{}/busybox:1", registry.host());
    let root = Root::new();

    // Anonymous: refused, and the message says no credentials were found.
    let (code, _, err) = root.run(&["image", "pull", &image], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("refused access"), "{err}");
    assert!(err.contains("anonymous"), "{err}");
    root.assert_no_image_left("anonymous");

    let config_dir = work.path().join("docker");
    fs::create_dir_all(&config_dir).expect("mkdir");
    let write_config = |user: &str, password: &str| {
        let auth = base64_std(format!("{user}:{password}").as_bytes());
        let config = serde_json::json!({"auths": {registry.host(): {"auth": auth}}});
        fs::write(config_dir.join("config.json"), config.to_string()).expect("config");
    };
    write_config(user, "wrong");
    let env = [("DOCKER_CONFIG", config_dir.as_path())];
    let (code, _, err) = root.run(&["image", "pull", &image], &env);
    assert_eq!(code, 1);
    assert!(err.contains("authentication failed"), "{err}");
    assert!(err.contains("user and password"), "{err}");
    root.assert_no_image_left("wrong password");

    write_config(user, password);
    let (code, _, err) = root.run(&["image", "pull", &image], &env);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        root.store().resolve(&image).expect("resolve"),
        Some(manifest)
    );
}

/// Standard base64 (the Docker config's `auth`), written here to keep the test free of
/// the code under test.
fn base64_std(bytes: &[u8]) -> String {
    crate::registry_harness::base64_std(bytes)
}

#[test]
fn a_corrupt_blob_and_a_missing_tag_store_nothing_and_say_which() {
    let Some(Setup {
        registry,
        work,
        manifest,
        root,
        image: _image,
    }) = setup("corrupt_blob")
    else {
        return;
    };

    let missing = format!("{}/busybox:2", registry.host());
    let (code, _, err) = root.run(&["image", "pull", &missing], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("{missing}: not found in the registry")),
        "{err}"
    );
    root.assert_no_image_left("missing tag");

    let manifest_json: serde_json::Value = serde_json::from_slice(
        &crate::registry_harness::layout_blob(&work.path().join("layout"), &manifest),
    )
    .expect("manifest");
    let big = manifest_json["layers"]
        .as_array()
        .and_then(|l| l.iter().max_by_key(|l| l["size"].as_u64()))
        .and_then(|l| l["digest"].as_str())
        .expect("a layer")
        .to_string();
    registry.corrupt_blob(&big);
    let image = format!("{}/busybox:1", registry.host());
    let (code, _, err) = root.run(&["image", "pull", &image], &[]);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("blob {big}")), "{err}");
    assert!(err.contains("digest mismatch"), "{err}");
    root.assert_no_image_left("corrupt blob");
    assert!(
        !root.store().has_blob(&big),
        "the corrupt blob is not stored"
    );
}

#[test]
fn a_registry_going_away_mid_pull_leaves_no_image_and_the_next_pull_finishes() {
    if !registry_tools_available("registry_going_away") {
        return;
    }
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("work");
    let manifest = pushed_busybox(&registry, work.path());
    let proxy = CutProxy::start(registry.addr(), 64 * 1024);
    let root = Root::new();
    let via_proxy = format!("{}/busybox:1", proxy.host());
    let (code, _, err) = root.run(&["image", "pull", &via_proxy], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(proxy.was_cut(), "the proxy cut the transfer");
    assert!(
        err.contains("broke off") || err.contains("cannot reach"),
        "{err}"
    );
    root.assert_no_image_left("registry gone");
    // A layer that arrived whole before the cut may be kept (and unpacked): the next pull
    // need not fetch it again. Nothing else may be there: no partial blob, no temporary
    // unpack directory.
    let store = root.store();
    for entry in fs::read_dir(root.path().join("images/layers")).expect("layers") {
        let name = entry.expect("entry").file_name();
        let name = name.to_str().expect("utf8");
        let hex = name.strip_suffix(".lock").unwrap_or(name);
        assert!(
            hex.len() == 64 && store.has_blob(&format!("sha256:{hex}")),
            "{name}: only complete layers may remain"
        );
    }
    // The registry is back (under its own address): the pull completes.
    let direct = format!("{}/busybox:1", registry.host());
    let (code, _, err) = root.run(&["image", "pull", &direct], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        root.store().resolve(&direct).expect("resolve"),
        Some(manifest)
    );
}

#[test]
fn concurrent_pulls_of_one_image_both_succeed_and_share_the_store() {
    let Some(Setup {
        registry: _registry,
        work: _work,
        manifest,
        root,
        image,
    }) = setup("concurrent_pulls")
    else {
        return;
    };
    let children: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new(assert_cmd::cargo::cargo_bin("wharf"))
                .env_clear()
                .env("WHARF_ROOT", root.path())
                .args(["image", "pull", "-q", &image])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn wharf")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        root.store().resolve(&image).expect("resolve"),
        Some(manifest)
    );
    root.assert_no_image_left_in_tmp();
    // Two layers, each unpacked exactly once (no leftover temporary unpack dirs).
    let dirs = fs::read_dir(root.path().join("images/layers"))
        .expect("layers")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .count();
    assert_eq!(dirs, 2);
}

#[test]
fn project_pull_honours_policies_and_failures_and_images_lists_them() {
    if !registry_tools_available("project_pull") {
        return;
    }
    let registry = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().expect("work");
    let manifest = pushed_busybox(&registry, work.path());
    let host = registry.host();
    let project = work.path().join("project");
    fs::create_dir_all(&project).expect("mkdir");
    let compose = format!(
        "name: pulltest\nservices:\n  web:\n    image: {host}/busybox:1\n  worker:\n    image: {host}/busybox:1\n  local:\n    image: wharf.test/only-local:1\n    pull_policy: never\n  ghost:\n    image: {host}/ghost:1\n"
    );
    fs::write(project.join("compose.yaml"), compose).expect("compose");
    let root = Root::new();
    let file = project.join("compose.yaml");
    let file = file.to_str().expect("utf8");

    let (code, _, err) = root.run(&["-f", file, "--progress", "plain", "pull"], &[]);
    assert_eq!(code, 1, "a failed pull fails the command: {err}");
    assert!(
        err.contains("local: skipped: pull_policy is never"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "ERROR: ghost: {host}/ghost:1: not found in the registry"
        )),
        "{err}"
    );
    assert_eq!(
        err.matches(": pulled sha256:").count(),
        1,
        "web and worker share one pull: {err}"
    );

    let (code, _, err) = root.run(&["-f", file, "pull", "--ignore-pull-failures"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("WARN: ghost:"), "{err}");

    let (code, _, err) = root.run(
        &[
            "-f",
            file,
            "--progress",
            "json",
            "pull",
            "--policy",
            "missing",
            "web",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let events: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(
        events
            .iter()
            .all(|e| e["event"] == "message" && e["message"].as_str().is_some()),
        "present, not pulled: {err}"
    );

    let (code, out, err) = root.run(&["-f", file, "images"], &[]);
    assert_eq!(code, 0, "{err}");
    let short = &manifest["sha256:".len().."sha256:".len() + 12];
    let out = out.replace(&host, "REGISTRY");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        ["SERVICE", "REPOSITORY", "TAG", "IMAGE", "ID", "SIZE"]
    );
    let web = lines
        .iter()
        .find(|l| l.first() == Some(&"web"))
        .expect("a web row");
    assert_eq!(web[..4], ["web", "REGISTRY/busybox", "1", short], "{out}");
    assert!(web[4].ends_with("MB"), "the size of the layers: {out}");
    assert!(lines.contains(&vec!["ghost", "REGISTRY/ghost", "1", "<missing>", "-"]));
    assert!(lines.contains(&vec![
        "local",
        "wharf.test/only-local",
        "1",
        "<missing>",
        "-"
    ]));
    let (_, out, _) = root.run(&["-f", file, "images", "--format", "json"], &[]);
    let list: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(list.as_array().map(Vec::len), Some(4), "{out}");
}

#[test]
fn a_terminal_gets_progress_bars() {
    let Some(Setup {
        registry: _registry,
        work: _work,
        manifest: _manifest,
        root,
        image,
    }) = setup("progress_bars")
    else {
        return;
    };
    // util-linux's `script` gives the command a pseudo-terminal, as an interactive user has.
    let wharf_bin = assert_cmd::cargo::cargo_bin("wharf");
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c"])
        .arg(format!("{} image pull {image}", wharf_bin.display()))
        .arg("/dev/null")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WHARF_ROOT", root.path())
        .env("TERM", "xterm")
        .output()
        .expect("script (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("pull complete"), "{text}");
    assert!(text.contains(&"=".repeat(30)), "a full bar: {text}");
    assert!(text.contains(&format!("{image}: pulled sha256:")), "{text}");
}
