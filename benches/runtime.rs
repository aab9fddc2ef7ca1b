//! Container start-up and supervisor memory, as issue 4 asks, side by side with the floor
//! in the same run. Run with `cargo bench --bench runtime`, as root, on an idle machine.
//!
//! - **create → running**: from `Runtime::create` (the container's directory and records)
//!   to `Runtime::start` returning, which happens once the container's own program has been
//!   exec'd (the init's error pipe closed on exec) — supervisor started, cgroup created and
//!   limited, namespaces made, overlay root mounted with the standard mounts, `pivot_root`,
//!   capabilities dropped, seccomp loaded. The busybox fixture image runs `true`. Beside
//!   it, the floor: `unshare --fork --pid --mount --uts --ipc --net --mount-proc true`
//!   (fork, five namespaces, a /proc mount, exec), timed the same way in alternation.
//!   Stopping and removing each container is not timed.
//! - **supervisor PSS**: ten containers running `sleep`, the proportional set size of
//!   each supervisor from `/proc/<pid>/smaps_rollup` (pages shared by the ten count a
//!   tenth each), mean and max.
//!
//! `WHARF_BENCH_ROUNDS` sets the start-up rounds (default 30). Under `cargo test
//! --all-targets` (no `--bench` argument) two rounds and two containers run, as a check.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use wharf::compose::{self, Environment, LoadOptions, NormalizeOptions};
use wharf::image::fixture::{FixtureSpec, build_busybox_layout};
use wharf::image::layout::load_layout;
use wharf::image::store::Store;
use wharf::runtime::cgroupfs::Hierarchies;
use wharf::runtime::linux::{Naming, prepare};
use wharf::runtime::{CreateOptions, Runtime};

const IMAGE: &str = "wharf.test/busybox:1";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED runtime bench: needs root");
        return;
    }
    let rounds: usize = if bench {
        std::env::var("WHARF_BENCH_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(30)
    } else {
        2
    };
    let dir = tempfile::Builder::new()
        .prefix("wharf-bench-rt-")
        .tempdir()
        .unwrap();
    let layout = dir.path().join("layout");
    build_busybox_layout(
        &FixtureSpec {
            busybox: Path::new("/bin/busybox"),
            tag: IMAGE,
        },
        &layout,
    )
    .expect("fixture image (needs busybox-static)");
    let store = Store::open(&dir.path().join("images")).unwrap();
    load_layout(&store, &layout, None).unwrap();
    let rt = Runtime::new(dir.path(), Path::new(env!("CARGO_BIN_EXE_wharf")));
    let cgroups = Hierarchies::read(Path::new("/proc/self/mountinfo")).unwrap();
    let pdir = dir.path().join("project");
    std::fs::create_dir_all(&pdir).unwrap();
    std::fs::write(
        pdir.join("compose.yaml"),
        format!(
            "services:\n  quick:\n    image: {IMAGE}\n    entrypoint: [\"true\"]\n  idle:\n    image: {IMAGE}\n    entrypoint: [\"sleep\", \"600\"]\n"
        ),
    )
    .unwrap();
    let project = compose::load(
        &LoadOptions {
            files: vec![pdir.join("compose.yaml")],
            project_name: Some(format!("whbench-{}", std::process::id())),
            cwd: pdir.clone(),
            ..LoadOptions::default()
        },
        &Environment::default(),
        NormalizeOptions::default(),
    )
    .unwrap()
    .project;
    let spec_for = |service: &str, replica: u64| {
        prepare(
            &project,
            Naming {
                service,
                replica,
                container_name: None,
                id: None,
                volumes_from: &[],
                anonymous_volumes: None,
            },
            &store,
            cgroups.version(),
        )
        .unwrap()
    };

    // --- create → running, beside the floor --------------------------------------------
    let mut ours = Vec::new();
    let mut floor = Vec::new();
    for round in 0..=rounds {
        let prepared = spec_for("quick", round as u64 + 1);
        let options = CreateOptions {
            layers: prepared.layers.clone(),
            ..CreateOptions::default()
        };
        let begun = Instant::now();
        rt.create(&prepared.spec, &options).unwrap();
        rt.start(&prepared.spec.id).unwrap();
        let took = begun.elapsed();
        rt.remove(&prepared.spec.id, wharf::runtime::AnonymousVolumes::Remove)
            .unwrap();

        let begun = Instant::now();
        let status = Command::new("unshare")
            .args([
                "--fork",
                "--pid",
                "--mount",
                "--uts",
                "--ipc",
                "--net",
                "--mount-proc",
                "true",
            ])
            .status()
            .unwrap();
        let floor_took = begun.elapsed();
        assert!(status.success());
        if round > 0 {
            // Round 0 warms the page cache for both.
            ours.push(took);
            floor.push(floor_took);
        }
    }
    let (o, f) = (median(ours.clone()), median(floor.clone()));
    println!(
        "create → running ({rounds} rounds, median): wharf {} (min {}, max {}) | floor `unshare … true` {} (min {}) | wharf/floor {:.1}×",
        ms(o),
        ms(*ours.iter().min().unwrap()),
        ms(*ours.iter().max().unwrap()),
        ms(f),
        ms(*floor.iter().min().unwrap()),
        o.as_secs_f64() / f.as_secs_f64()
    );

    // --- supervisor memory ---------------------------------------------------------------
    let count = if bench { 10 } else { 2 };
    let mut ids = Vec::new();
    for replica in 1..=count {
        let prepared = spec_for("idle", replica);
        rt.create(
            &prepared.spec,
            &CreateOptions {
                layers: prepared.layers.clone(),
                ..CreateOptions::default()
            },
        )
        .unwrap();
        rt.start(&prepared.spec.id).unwrap();
        ids.push(prepared.spec.id);
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut pss = Vec::new();
    for id in &ids {
        let sup = rt.state(id).unwrap().supervisor.expect("supervised");
        let rollup = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", sup.pid)).unwrap();
        let kb: u64 = rollup
            .lines()
            .find_map(|l| l.strip_prefix("Pss:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        pss.push(kb);
    }
    for id in &ids {
        rt.remove(id, wharf::runtime::AnonymousVolumes::Remove)
            .unwrap();
    }
    let mean = pss.iter().sum::<u64>() as f64 / pss.len() as f64;
    println!(
        "supervisor PSS ({count} containers): mean {:.0} KiB, max {} KiB (budget 2048 KiB)",
        mean,
        pss.iter().max().unwrap()
    );
}
