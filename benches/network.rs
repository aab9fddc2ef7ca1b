//! The network layer's costs, as issue 5 asks, side by side with their floors in the same
//! run. Run with `cargo bench --bench network`, as root, on an idle machine. Everything
//! happens inside a network namespace the bench creates as its "host".
//!
//! - **attach**: `Networks::connect` of a running sandbox to one more network — veth pair,
//!   the peer moved into the container's namespace, address, route, the DNS record written
//!   and the responder reloaded, the project's rules checked — then `disconnect` (not
//!   timed). Floor: the same veth pair created and deleted alone through netlink.
//! - **throughput**: bulk TCP (a sink in the container's namespace) to the container's own
//!   address, and to its published port on the host's `127.0.0.1` and on the host's own
//!   address (DNAT), alternating, each transfer `WHARF_BENCH_MB` MiB (default 1024).
//!
//! `WHARF_BENCH_ROUNDS` sets the attach rounds (default 200). Under `cargo test
//! --all-targets` (no `--bench` argument) a few small rounds run, as a check.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use wharf::compose::{self, Environment, LoadOptions, NormalizeOptions};
use wharf::network::linux::Networks;
use wharf::network::model::{Mode, network_spec, sandbox_spec};
use wharf::network::netlink;
use wharf::network::netns;

const HOST_LAN: Ipv4Addr = Ipv4Addr::new(10, 251, 0, 1);

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn pct(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn project(dir: &Path) -> compose::Project {
    let yaml = r#"
services:
  app:
    image: busybox
    ports: ["8080:5001", "5001"]
    networks: [front]
  extra:
    image: busybox
    networks: [back]
networks:
  front: {}
  back: {}
"#;
    std::fs::write(dir.join("compose.yaml"), yaml).unwrap();
    let opts = LoadOptions {
        files: vec![dir.join("compose.yaml")],
        project_name: Some(format!("whbench{}", std::process::id())),
        cwd: dir.to_path_buf(),
        ..LoadOptions::default()
    };
    compose::load(&opts, &Environment::default(), NormalizeOptions::default())
        .unwrap()
        .project
}

/// Sends `mb` MiB to `addr` and returns the rate in Gbit/s (the sink counts and answers
/// with one byte once it has everything).
fn transfer(addr: SocketAddr, mb: usize) -> f64 {
    let chunk = vec![0x5au8; 256 * 1024];
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).unwrap();
    let begun = Instant::now();
    for _ in 0..mb * 4 {
        s.write_all(&chunk).unwrap();
    }
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut ack = [0u8; 1];
    s.read_exact(&mut ack).unwrap();
    let secs = begun.elapsed().as_secs_f64();
    (mb as f64 * 8.0 * 1024.0 * 1024.0) / secs / 1e9
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED network bench: needs root");
        return;
    }
    let env_num = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (rounds, mb) = if bench {
        (
            env_num("WHARF_BENCH_ROUNDS", 200),
            env_num("WHARF_BENCH_MB", 1024),
        )
    } else {
        (3, 8)
    };
    let dir = tempfile::Builder::new()
        .prefix("wharf-bench-net-")
        .tempdir()
        .unwrap();
    let hostns = dir.path().join("hostns");
    netns::create(&hostns).unwrap();
    let p = project(dir.path());
    let nets = Networks::new(
        &dir.path().join("state"),
        Path::new(env!("CARGO_BIN_EXE_wharf")),
    )
    .with_lock(&dir.path().join("lock"));
    let result = netns::run_in(&hostns, || run(&nets, &p, rounds, mb));
    // Clean up whatever happened.
    let _ = netns::run_in(&hostns, || {
        for s in nets.sandboxes().unwrap_or_default() {
            let _ = nets.remove_sandbox(&s.id);
        }
        for n in nets.networks().unwrap_or_default() {
            let _ = nets.remove_network(&n.spec.name);
        }
    });
    netns::remove(&hostns).unwrap();
    result.unwrap();
}

fn run(nets: &Networks, p: &compose::Project, rounds: usize, mb: usize) {
    // The host's LAN address, for the DNAT path through a non-loopback address.
    netlink::ensure_bridge(&netlink::BridgeSpec {
        name: "whlan0".into(),
        mtu: None,
        addresses: vec![(IpAddr::V4(HOST_LAN), 24)],
    })
    .unwrap();
    for key in ["front", "back"] {
        nets.create_network(&network_spec(p, key).unwrap()).unwrap();
    }
    let app = sandbox_spec(p, "app", "bench-app-1", "app").unwrap();
    let sandbox = nets.create_sandbox("benchapp", &app).unwrap();
    let extra = sandbox_spec(p, "extra", "bench-extra-1", "extra").unwrap();
    let Mode::Bridge(endpoints) = &extra.mode else {
        unreachable!("a bridge service")
    };
    let back = endpoints[0].clone();

    // --- attach ------------------------------------------------------------------------
    // The floor: a veth pair plugged into the same bridge and namespace, without
    // addresses, routes, records or rules.
    let back_net = nets
        .networks()
        .unwrap()
        .into_iter()
        .find(|n| n.spec.key == "back")
        .unwrap();
    let bare = netlink::Attachment {
        host_name: "whvbenchfloor".into(),
        bridge: back_net.spec.bridge.clone(),
        netns: sandbox.netns.clone().unwrap(),
        ifname: "floor0".into(),
        mac: None,
        mtu: None,
        addresses: Vec::new(),
        gateway4: None,
        gateway6: None,
        isolated: false,
    };
    let mut attach = Vec::with_capacity(rounds);
    let mut floor = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let begun = Instant::now();
        nets.connect("benchapp", &back).unwrap();
        attach.push(begun.elapsed());
        nets.disconnect("benchapp", &back.network).unwrap();
        let begun = Instant::now();
        netlink::attach(&bare).unwrap();
        floor.push(begun.elapsed());
        netlink::detach(&bare.host_name).unwrap();
    }
    println!(
        "attach (veth, address, routes, DNS record): median {} p90 {} | floor (bare veth attach): median {} p90 {} | {rounds} rounds",
        ms(median(attach.clone())),
        ms(pct(attach, 0.9)),
        ms(median(floor.clone())),
        ms(pct(floor, 0.9)),
    );

    // --- throughput ----------------------------------------------------------------------
    let record = nets.sandbox("benchapp").unwrap().unwrap();
    let container_ip = record.endpoints[0].addresses[0];
    let ns = sandbox.netns.clone().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let sink = std::thread::spawn(move || {
        netns::run_in(&ns, move || {
            let l = TcpListener::bind("0.0.0.0:5001").unwrap();
            ready_tx.send(()).unwrap();
            loop {
                let (mut s, _) = l.accept().unwrap();
                let mut buf = vec![0u8; 256 * 1024];
                let mut n = 0usize;
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => n += k,
                    }
                }
                if n == 0 {
                    return; // the stop signal: an empty connection
                }
                let _ = s.write_all(b"!");
            }
        })
        .unwrap()
    });
    ready_rx.recv().unwrap();
    let direct = SocketAddr::new(container_ip, 5001);
    let lo = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
    let lan = SocketAddr::new(IpAddr::V4(HOST_LAN), 8080);
    let (mut d, mut l, mut h) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        d.push(transfer(direct, mb));
        l.push(transfer(lo, mb));
        h.push(transfer(lan, mb));
    }
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (d, l, h) = (med(d), med(l), med(h));
    println!(
        "throughput ({mb} MiB x3, median): container address {d:.2} Gbit/s | published on 127.0.0.1 {l:.2} Gbit/s ({:.0}%) | published on the host address {h:.2} Gbit/s ({:.0}%)",
        l / d * 100.0,
        h / d * 100.0
    );
    drop(TcpStream::connect(direct));
    sink.join().unwrap();
    netlink::delete_link("whlan0").unwrap();
}
