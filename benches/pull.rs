//! Pulling a 3-layer image from a local registry (Debian's docker-registry on 127.0.0.1)
//! with `wharf image pull`, side by side with `skopeo copy` of the same image into an OCI
//! layout directory — the peer — in one run, alternating, each into a fresh
//! destination. `wharf image pull --no-unpack` does the same work as skopeo (fetch, verify,
//! store the blobs); plain `wharf image pull` also unpacks every layer, which skopeo does not
//! do, and is reported beside them. Run with `cargo bench --bench pull`; under `cargo test`
//! it is a smoke run with a small third layer.
//!
//! The image: the busybox fixture (two layers, 1 MB) plus a generated third layer (about
//! 40 MB of gzip: text-like files and incompressible ones).

#[path = "../tests/it/registry_harness.rs"]
#[allow(dead_code, unused_imports)]
mod registry_harness;

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use registry_harness::{
    Registry, RegistryOptions, busybox_layout, layout_blob, registry_tools_available,
    write_layout_blob,
};
use sha2::Digest as _;

/// A deterministic PRNG (xorshift64*), so every run measures the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// A gzip layer tar of about `mb` MB uncompressed: half text-like, half random.
fn third_layer(mb: usize) -> (Vec<u8>, String) {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut builder = tar::Builder::new(Vec::new());
    let words = [
        "wharf ", "layer ", "compose ", "service ", "network ", "volume\n",
    ];
    let mut written = 0usize;
    let mut i = 0;
    while written < mb * 1_000_000 {
        let size = 4096 + (rng.next() % (1 << 20)) as usize;
        let mut data = vec![0u8; size];
        if i % 2 == 0 {
            let mut pos = 0;
            while pos < size {
                let w = words[(rng.next() % words.len() as u64) as usize].as_bytes();
                let n = w.len().min(size - pos);
                data[pos..pos + n].copy_from_slice(&w[..n]);
                pos += n;
            }
        } else {
            rng.fill(&mut data);
        }
        let mut header = tar::Header::new_ustar();
        header.set_size(size as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, format!("opt/data/f{i:05}"), &data[..])
            .expect("tar entry");
        written += size;
        i += 1;
    }
    let tar = builder.into_inner().expect("tar");
    let diff_id = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&tar)));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).expect("gzip");
    (gz.finish().expect("gzip"), diff_id)
}

/// The busybox fixture with a third layer; returns (layout dir, manifest digest).
fn three_layer_layout(dir: &Path, mb: usize) -> (std::path::PathBuf, String) {
    let (layout, manifest_digest) = busybox_layout(dir, Path::new("/bin/busybox"));
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&layout_blob(&layout, &manifest_digest)).expect("manifest");
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .expect("config")
        .to_string();
    let mut config: serde_json::Value =
        serde_json::from_slice(&layout_blob(&layout, &config_digest)).expect("config");
    let (layer, diff_id) = third_layer(mb);
    let layer_digest = write_layout_blob(&layout, &layer);
    manifest["layers"]
        .as_array_mut()
        .expect("layers")
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": layer_digest,
            "size": layer.len(),
        }));
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .expect("diff_ids")
        .push(diff_id.into());
    let config_bytes = serde_json::to_vec(&config).expect("json");
    manifest["config"]["digest"] = write_layout_blob(&layout, &config_bytes).into();
    manifest["config"]["size"] = config_bytes.len().into();
    let manifest_bytes = serde_json::to_vec(&manifest).expect("json");
    let new_manifest = write_layout_blob(&layout, &manifest_bytes);
    let index_path = layout.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).expect("index")).expect("json");
    index["manifests"][0]["digest"] = new_manifest.clone().into();
    index["manifests"][0]["size"] = manifest_bytes.len().into();
    std::fs::write(&index_path, serde_json::to_vec(&index).expect("json")).expect("index");
    (layout, new_manifest)
}

fn timed(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let out = cmd.output().expect("run");
    let elapsed = t.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

fn stats(v: &mut [Duration]) -> String {
    v.sort();
    format!(
        "median {:>7.1} ms (min {:.1}, max {:.1})",
        v[v.len() / 2].as_secs_f64() * 1e3,
        v[0].as_secs_f64() * 1e3,
        v[v.len() - 1].as_secs_f64() * 1e3
    )
}

fn main() {
    if !registry_tools_available("pull bench") {
        return;
    }
    let bench = std::env::args().any(|a| a == "--bench");
    let work = tempfile::Builder::new()
        .prefix("wharf-pull-bench-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("work dir");
    let (layout, manifest) = three_layer_layout(work.path(), if bench { 60 } else { 2 });
    let registry = Registry::start(RegistryOptions::default());
    registry.push_layout(&layout, None, "bench:3", false);
    let image = format!("{}/bench:3", registry.host());
    let sizes: u64 = serde_json::from_slice::<serde_json::Value>(&layout_blob(&layout, &manifest))
        .expect("manifest")["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .filter_map(|l| l["size"].as_u64())
        .sum();
    let wharf = env!("CARGO_BIN_EXE_wharf");
    let rounds: usize = if bench {
        std::env::var("WHARF_BENCH_ROUNDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(7)
    } else {
        1
    };
    let (mut skopeo, mut blobs, mut full) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let oci = work.path().join(format!("oci-{round}"));
        skopeo.push(timed(
            Command::new("skopeo")
                .args(["--insecure-policy", "copy", "-q", "--src-tls-verify=false"])
                .arg(format!("docker://{image}"))
                .arg(format!("oci:{}", oci.display()))
                .env("REGISTRY_AUTH_FILE", "/nonexistent-wharf-bench-auth.json"),
        ));
        let root = work.path().join(format!("root-blobs-{round}"));
        blobs.push(timed(
            Command::new(wharf)
                .args(["image", "pull", "-q", "--no-unpack", &image])
                .env("WHARF_ROOT", &root),
        ));
        let root_full = work.path().join(format!("root-full-{round}"));
        full.push(timed(
            Command::new(wharf)
                .args(["image", "pull", "-q", &image])
                .env("WHARF_ROOT", &root_full),
        ));
        // Both got the same image.
        let store = wharf::image::store::Store::open(&root.join("images")).expect("store");
        assert_eq!(
            store.resolve(&image).expect("resolve"),
            Some(manifest.clone())
        );
        for dir in [oci, root, root_full] {
            std::fs::remove_dir_all(&dir).expect("cleanup");
        }
    }
    if !bench {
        println!("pull bench: smoke run only (use `cargo bench --bench pull` for timings)");
        return;
    }
    let ratio = {
        let med = |v: &mut Vec<Duration>| {
            v.sort();
            v[v.len() / 2].as_secs_f64()
        };
        med(&mut blobs) / med(&mut skopeo)
    };
    println!(
        "3-layer image, {:.1} MB of compressed layers, {rounds} rounds, local registry:",
        sizes as f64 / 1e6
    );
    println!(
        "  skopeo copy to an OCI dir:         {}",
        stats(&mut skopeo)
    );
    println!("  wharf image pull --no-unpack:      {}", stats(&mut blobs));
    println!("  wharf image pull (with unpacking): {}", stats(&mut full));
    println!(
        "  wharf/skopeo time ratio {ratio:.2} — {} (no slower than skopeo)",
        if ratio <= 1.0 { "PASS" } else { "FAIL" }
    );
}
