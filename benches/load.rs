//! Loading, validating and normalizing a generated 200-service project (issue 2's budget:
//! under 20 ms on the project's 2-core machine). Run with `cargo bench --bench load`.
//!
//! Reported beside a floor measured in the same run: reading and YAML-parsing the same file
//! into the located tree (serde-saphyr), which is work no loader can skip.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use wharf::compose::{self, LoadOptions, NormalizeOptions};

fn generate(services: usize) -> String {
    let mut s = String::from(
        "name: bench\nx-common: &common\n  image: busybox:latest\n  init: true\n  restart: unless-stopped\n  labels:\n    tier: bench\n\nservices:\n",
    );
    for i in 0..services {
        let _ = writeln!(s, "  svc{i}:");
        let _ = writeln!(s, "    <<: *common");
        let _ = writeln!(s, "    command: [\"sleep\", \"${{SLEEP:-3600}}\"]");
        let _ = writeln!(
            s,
            "    environment:\n      INDEX: \"{i}\"\n      MODE: ${{MODE:-fast}}"
        );
        if i % 10 == 0 {
            let _ = writeln!(s, "    ports:\n      - \"127.0.0.1:{}:80\"", 20000 + i);
        }
        if i > 0 {
            let _ = writeln!(
                s,
                "    depends_on:\n      svc{}:\n        condition: service_started",
                i - 1
            );
        }
        let _ = writeln!(
            s,
            "    volumes:\n      - data{}:/data\n      - ./conf:/etc/conf:ro",
            i % 5
        );
        let _ = writeln!(
            s,
            "    healthcheck:\n      test: [\"CMD\", \"true\"]\n      interval: 5s"
        );
        let _ = writeln!(s, "    networks: [front, back]");
    }
    s.push_str("networks:\n  front:\n  back:\n    internal: true\nvolumes:\n");
    for v in 0..5 {
        let _ = writeln!(s, "  data{v}:");
    }
    s
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = std::env::temp_dir().join(format!("wharf-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let file = dir.join("compose.yaml");
    std::fs::write(&file, generate(200)).expect("write compose file");
    let opts = LoadOptions {
        files: vec![file.clone()],
        cwd: dir.clone(),
        ..LoadOptions::default()
    };
    let env = compose::Environment::new();

    let loaded = compose::load(&opts, &env, NormalizeOptions::default())
        .expect("the generated project loads");
    assert_eq!(loaded.project.services.len(), 200);

    // `cargo test --all-targets` runs this file too (without `--bench`): then it is only a
    // smoke test that the generated project loads; timings come from `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("load bench: smoke run only (use `cargo bench --bench load` for timings)");
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let runs: usize = std::env::var("WHARF_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let mut load_times = Vec::with_capacity(runs);
    let mut floor_times = Vec::with_capacity(runs);
    let mut plain_times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let p = compose::load(&opts, &env, NormalizeOptions::default()).expect("load");
        load_times.push(t.elapsed());
        std::hint::black_box(p);

        let t = Instant::now();
        let text = std::fs::read_to_string(&file).expect("read");
        let v = wharf::compose::yaml::parse(&text, 0).expect("parse");
        floor_times.push(t.elapsed());
        std::hint::black_box(v);

        let t = Instant::now();
        let mut budget = serde_saphyr::budget::Budget::default();
        budget.enforce_alias_anchor_ratio = false;
        let opts = serde_saphyr::options! { budget: Some(budget), };
        let v: serde_json::Value = serde_saphyr::from_str_with_options(&text, opts).expect("parse");
        plain_times.push(t.elapsed());
        std::hint::black_box(v);
    }
    let load = median(load_times);
    let floor = median(floor_times);
    println!(
        "load+validate+normalize, 200 services: median {:.2} ms (budget 20 ms)",
        load.as_secs_f64() * 1e3
    );
    println!(
        "floor (read + located YAML parse):       median {:.2} ms",
        floor.as_secs_f64() * 1e3
    );
    let plain = median(plain_times);
    println!(
        "serde-saphyr into serde_json::Value:     median {:.2} ms (no locations)",
        plain.as_secs_f64() * 1e3
    );
    println!(
        "ratio to floor: {:.1}x",
        load.as_secs_f64() / floor.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
