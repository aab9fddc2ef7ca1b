//! Exercises the registry harness (tests/it/registry_harness.rs) against the real `docker-registry`, `skopeo` and
//! `openssl`: pushes and pulls, multi-arch indexes, token authentication, corrupted blobs,
//! a registry going away mid-pull, and that nothing is left behind.

use std::io;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::registry_harness::{
    CutProxy, FIXTURE_TAG, OCI_INDEX, OCI_MANIFEST, Registry, RegistryOptions, busybox_layout,
    layout_blob, multi_arch_layout, registry_tools_available, skopeo, skopeo_pull,
};
use wharf::image::layout::host_arch;
use wharf::image::store::sha256_digest;

const BUSYBOX: &str = "/bin/busybox";
const USER: &str = "wharf";
const PASSWORD: &str = "s3cret-pass";

fn busybox() -> &'static Path {
    Path::new(BUSYBOX)
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).expect("valid JSON")
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The manifest digest a pulled `oci:` layout names in its `index.json`.
fn pulled_manifest_digest(layout: &Path) -> String {
    let index = json(&std::fs::read(layout.join("index.json")).expect("pulled index.json"));
    let manifests = index["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 1, "one image pulled: {index}");
    manifests[0]["digest"].as_str().expect("digest").to_string()
}

/// (digest, size) of the layers of `manifest_digest` in `layout`.
fn layers(layout: &Path, manifest_digest: &str) -> Vec<(String, u64)> {
    let manifest = json(&layout_blob(layout, manifest_digest));
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| {
            (
                l["digest"].as_str().expect("layer digest").to_string(),
                l["size"].as_u64().expect("layer size"),
            )
        })
        .collect()
}

fn refused(host: &str) -> bool {
    let addr = host.parse().expect("socket address");
    matches!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused
    )
}

/// What must be gone once a registry is dropped.
struct Leftovers {
    pid: u32,
    dir: PathBuf,
    host: String,
    token_host: Option<String>,
}

impl Leftovers {
    fn of(registry: &Registry) -> Leftovers {
        Leftovers {
            pid: registry.pid(),
            dir: registry.dir().to_path_buf(),
            host: registry.host(),
            token_host: registry.token_host(),
        }
    }

    /// Drops `registry` and checks that its process, directory and ports are gone.
    fn drop_and_check(registry: Registry) {
        let leftovers = Leftovers::of(&registry);
        assert!(Path::new(&format!("/proc/{}", leftovers.pid)).exists());
        assert!(leftovers.dir.is_dir());
        drop(registry);
        assert!(
            !Path::new(&format!("/proc/{}", leftovers.pid)).exists(),
            "registry process {} still exists after the drop",
            leftovers.pid
        );
        assert!(
            !leftovers.dir.exists(),
            "{:?} still exists after the drop",
            leftovers.dir
        );
        assert!(refused(&leftovers.host), "the registry port still answers");
        if let Some(token_host) = &leftovers.token_host {
            assert!(refused(token_host), "the token server still answers");
        }
    }
}

#[test]
fn a_plain_registry_round_trips_the_fixture_and_answers_404_for_a_missing_tag() {
    if !registry_tools_available("a_plain_registry_round_trips_the_fixture") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let (layout, digest) = busybox_layout(tmp.path(), busybox());
    let registry = Registry::start(RegistryOptions::default());
    assert!(registry.host().starts_with("127.0.0.1:"));
    let base = registry.request("GET", "/v2/", &[]);
    assert_eq!(base.status, 200, "open registry: {base:?}");

    registry.push_layout(&layout, Some(FIXTURE_TAG), "busybox:1", false);
    assert_eq!(registry.manifest_digest("busybox:1"), digest);
    let manifest = registry.manifest("busybox:1");
    assert_eq!(manifest.status, 200);
    assert_eq!(manifest.header("content-type"), Some(OCI_MANIFEST));
    assert_eq!(sha256_digest(&manifest.body), digest);
    assert_eq!(manifest.body, layout_blob(&layout, &digest), "pushed as is");
    assert_eq!(
        registry.manifest_digest(&format!("busybox@{digest}")),
        digest
    );

    let out = tmp.path().join("pulled");
    let pulled = skopeo_pull(&registry.host(), "busybox:1", &out, None);
    assert!(pulled.status.success(), "pull: {}", stderr(&pulled));
    assert_eq!(pulled_manifest_digest(&out), digest);
    for (layer, size) in layers(&layout, &digest) {
        let bytes = layout_blob(&out, &layer);
        assert_eq!(bytes.len() as u64, size);
        assert_eq!(bytes, layout_blob(&layout, &layer), "layer {layer}");
    }

    let missing = registry.manifest("busybox:missing");
    assert_eq!(missing.status, 404, "{missing:?}");
    assert!(
        missing.text().contains("MANIFEST_UNKNOWN"),
        "{}",
        missing.text()
    );
    let unknown_repo = registry.manifest("nothing-here:1");
    assert_eq!(unknown_repo.status, 404, "{unknown_repo:?}");

    Leftovers::drop_and_check(registry);
}

#[test]
fn a_multi_arch_index_is_pushed_whole_and_a_pull_picks_the_host_manifest() {
    if !registry_tools_available("a_multi_arch_index_is_pushed_whole") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let multi = multi_arch_layout(tmp.path(), busybox());
    assert_ne!(multi.host_manifest_digest, multi.foreign_manifest_digest);
    let registry = Registry::start(RegistryOptions::default());
    registry.push_layout(&multi.dir, Some(FIXTURE_TAG), "busybox:1", true);

    assert_eq!(registry.manifest_digest("busybox:1"), multi.index_digest);
    let index = registry.manifest("busybox:1");
    assert_eq!(index.header("content-type"), Some(OCI_INDEX));
    assert_eq!(index.body, layout_blob(&multi.dir, &multi.index_digest));

    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/busybox:1", registry.host()),
    ]);
    assert!(raw.status.success(), "inspect: {}", stderr(&raw));
    let raw = json(&raw.stdout);
    let manifests = raw["manifests"].as_array().expect("an index");
    assert_eq!(manifests.len(), 2, "{raw}");
    let by_arch: Vec<(&str, &str)> = manifests
        .iter()
        .map(|m| {
            (
                m["platform"]["architecture"].as_str().expect("arch"),
                m["digest"].as_str().expect("digest"),
            )
        })
        .collect();
    assert_eq!(
        by_arch,
        vec![
            (host_arch(), multi.host_manifest_digest.as_str()),
            (multi.foreign_arch, multi.foreign_manifest_digest.as_str()),
        ]
    );
    for digest in [&multi.host_manifest_digest, &multi.foreign_manifest_digest] {
        assert_eq!(
            registry.manifest_digest(&format!("busybox@{digest}")),
            *digest,
            "every platform's manifest was pushed"
        );
    }

    let out = tmp.path().join("pulled");
    let pulled = skopeo_pull(&registry.host(), "busybox:1", &out, None);
    assert!(pulled.status.success(), "pull: {}", stderr(&pulled));
    assert_eq!(pulled_manifest_digest(&out), multi.host_manifest_digest);

    Leftovers::drop_and_check(registry);
}

#[test]
fn token_auth_grants_the_right_credentials_and_refuses_wrong_and_anonymous_ones() {
    if !registry_tools_available("token_auth_grants_the_right_credentials") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let (layout, digest) = busybox_layout(tmp.path(), busybox());
    let registry = Registry::start(RegistryOptions {
        token_auth: Some((USER.to_string(), PASSWORD.to_string())),
    });
    let token_host = registry.token_host().expect("a token server");

    // Without a token the registry challenges with our token server.
    let host = registry.host();
    let challenge =
        crate::registry_harness::http_request(&host, "GET", "/v2/", &[]).expect("GET /v2/");
    assert_eq!(challenge.status, 401);
    let www = challenge.header("www-authenticate").expect("a challenge");
    assert!(
        www.starts_with("Bearer ") && www.contains(&format!("realm=\"http://{token_host}/token\"")),
        "{www}"
    );

    registry.push_layout(&layout, Some(FIXTURE_TAG), "busybox:1", false);
    let after_push = registry.token_stats().expect("stats");
    assert!(after_push.granted > 0, "{after_push:?}");
    assert_eq!(after_push.refused, 0, "{after_push:?}");
    assert_eq!(registry.manifest_digest("busybox:1"), digest);
    let unauthenticated = crate::registry_harness::http_request(
        &host,
        "GET",
        "/v2/busybox/manifests/1",
        &[("Accept", OCI_MANIFEST)],
    )
    .expect("GET manifest");
    assert_eq!(unauthenticated.status, 401, "no token, no manifest");

    let good = tmp.path().join("good");
    let pulled = skopeo_pull(
        &host,
        "busybox:1",
        &good,
        Some(&format!("{USER}:{PASSWORD}")),
    );
    assert!(
        pulled.status.success(),
        "pull with creds: {}",
        stderr(&pulled)
    );
    assert_eq!(pulled_manifest_digest(&good), digest);

    let before = registry.token_stats().expect("stats");
    let wrong = skopeo_pull(
        &host,
        "busybox:1",
        &tmp.path().join("wrong"),
        Some(&format!("{USER}:not-the-password")),
    );
    assert!(!wrong.status.success(), "a pull with wrong creds must fail");
    let after_wrong = registry.token_stats().expect("stats");
    assert!(after_wrong.refused > before.refused, "{after_wrong:?}");
    assert_eq!(after_wrong.granted, before.granted, "{after_wrong:?}");
    let message = stderr(&wrong);
    assert!(
        message.contains("unable to retrieve auth token") && message.contains("unauthorized"),
        "{message}"
    );

    let anonymous = skopeo_pull(&host, "busybox:1", &tmp.path().join("anonymous"), None);
    assert!(!anonymous.status.success(), "an anonymous pull must fail");
    let after_anonymous = registry.token_stats().expect("stats");
    assert!(
        after_anonymous.anonymous > after_wrong.anonymous,
        "{after_anonymous:?}"
    );
    assert_eq!(after_anonymous.granted, before.granted);
    let message = stderr(&anonymous);
    assert!(
        message.contains("requested access to the resource is denied"),
        "{message}"
    );

    // The registry really checks the tokens: their scope and their signature.
    let manifest_path = "/v2/busybox/manifests/1";
    let get_with = |token: &str| {
        crate::registry_harness::http_request(
            &host,
            "GET",
            manifest_path,
            &[
                ("Accept", OCI_MANIFEST),
                ("Authorization", &format!("Bearer {token}")),
            ],
        )
        .expect("GET manifest")
        .status
    };
    let token = registry.token("repository:busybox:pull");
    assert_eq!(get_with(&token), 200);
    assert_eq!(get_with(&registry.token("repository:other:pull")), 401);
    let (signed, signature) = token.rsplit_once('.').expect("a JWT");
    let mut tampered: Vec<u8> = signature.bytes().collect();
    tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{signed}.{}", String::from_utf8(tampered).expect("ASCII"));
    assert_eq!(get_with(&tampered), 401, "a bad signature is refused");

    Leftovers::drop_and_check(registry);
}

#[test]
fn a_corrupted_blob_makes_the_pull_fail_its_digest_check() {
    if !registry_tools_available("a_corrupted_blob_makes_the_pull_fail") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let (layout, digest) = busybox_layout(tmp.path(), busybox());
    let registry = Registry::start(RegistryOptions::default());
    registry.push_layout(&layout, Some(FIXTURE_TAG), "busybox:1", false);
    let (layer, size) = layers(&layout, &digest).remove(0);

    registry.corrupt_blob(&layer);
    let served = registry.request("GET", &format!("/v2/busybox/blobs/{layer}"), &[]);
    assert_eq!(served.status, 200);
    assert_eq!(served.body.len() as u64, size, "same size");
    assert_ne!(sha256_digest(&served.body), layer, "wrong content");

    let out = tmp.path().join("pulled");
    let pulled = skopeo_pull(&registry.host(), "busybox:1", &out, None);
    assert!(
        !pulled.status.success(),
        "a corrupted layer must fail the pull"
    );
    let message = stderr(&pulled);
    assert!(
        message.to_lowercase().contains("digest did not match"),
        "{message}"
    );

    Leftovers::drop_and_check(registry);
}

#[test]
fn a_registry_going_away_mid_pull_fails_the_pull_and_refuses_new_connections() {
    if !registry_tools_available("a_registry_going_away_mid_pull") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let (layout, digest) = busybox_layout(tmp.path(), busybox());
    let registry = Registry::start(RegistryOptions::default());
    registry.push_layout(&layout, Some(FIXTURE_TAG), "busybox:1", false);
    let cut_after = 64 * 1024;
    let biggest = layers(&layout, &digest)
        .iter()
        .map(|(_, size)| *size)
        .max()
        .expect("layers");
    assert!(
        biggest > 4 * cut_after,
        "the busybox layer is {biggest} bytes"
    );

    // Control: a proxy with an unreachable budget forwards a whole pull.
    let open = CutProxy::start(registry.addr(), u64::MAX);
    let out = tmp.path().join("through-proxy");
    let pulled = skopeo_pull(&open.host(), "busybox:1", &out, None);
    assert!(
        pulled.status.success(),
        "pull via proxy: {}",
        stderr(&pulled)
    );
    assert_eq!(pulled_manifest_digest(&out), digest);
    assert!(!open.was_cut());
    assert!(open.forwarded() > biggest);
    drop(open);

    let proxy = CutProxy::start(registry.addr(), cut_after);
    let proxy_host = proxy.host();
    assert!(!proxy.was_cut());
    let started = Instant::now();
    let cut = skopeo_pull(&proxy_host, "busybox:1", &tmp.path().join("cut"), None);
    assert!(!cut.status.success(), "a pull cut mid-way must fail");
    assert!(proxy.was_cut(), "the budget ran out");
    assert!(proxy.forwarded() >= cut_after);
    assert!(
        refused(&proxy_host),
        "new connections are refused after the cut"
    );
    let failed = crate::registry_harness::http_request(&proxy_host, "GET", "/v2/", &[]);
    assert!(failed.is_err(), "{failed:?}");
    eprintln!(
        "cut pull failed after {:?}: {}",
        started.elapsed(),
        stderr(&cut).trim()
    );
    let dropped = Instant::now();
    drop(proxy);
    assert!(
        dropped.elapsed() < Duration::from_secs(5),
        "the proxy stops promptly"
    );

    // The registry itself is unharmed.
    assert_eq!(registry.manifest_digest("busybox:1"), digest);
    Leftovers::drop_and_check(registry);
}

#[test]
fn dropping_everything_leaves_no_process_port_or_directory_behind() {
    if !registry_tools_available("dropping_everything_leaves_nothing_behind") {
        return;
    }
    let registry = Registry::start(RegistryOptions {
        token_auth: Some((USER.to_string(), PASSWORD.to_string())),
    });
    let proxy = CutProxy::start(registry.addr(), 1024);
    // An idle connection through the proxy must not keep its threads alive.
    let idle = TcpStream::connect(proxy.host()).expect("connect through the proxy");
    let proxy_host = proxy.host();
    std::thread::sleep(Duration::from_millis(50));
    let dropped = Instant::now();
    drop(proxy);
    assert!(dropped.elapsed() < Duration::from_secs(5));
    assert!(refused(&proxy_host));
    drop(idle);

    let storage = registry.storage_dir();
    assert!(storage.is_dir());
    Leftovers::drop_and_check(registry);
    assert!(!storage.exists());
}
