//! Attaching a container to a network (issue 5 budget: median < 5 ms for the veth, its
//! addresses and routes), measured inside network namespaces this bench pins itself (one as
//! "the host", one as the container), so the real host is never touched. Side by side with
//! two floors: one netlink round trip through the same synchronous wrapper (thread, runtime,
//! socket), and a bare attachment (the veth pair alone, no addresses or routes).
//!
//! Root only; says so and exits otherwise. `cargo bench --bench netlink`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use wharf::network::netlink::{self, Attachment, BridgeSpec};
use wharf::network::netns;

const ROUNDS: usize = 200;

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED netlink bench: needs root");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("wharf-netlink-bench-")
        .tempdir()
        .expect("tempdir");
    let host = dir.path().join("host");
    let container = dir.path().join("container");
    netns::create(&host).expect("host netns");
    netns::create(&container).expect("container netns");
    let result = netns::run_in(&host, || bench(&container));
    for ns in [&container, &host] {
        netns::remove(ns).expect("remove netns");
    }
    result.expect("bench thread");
}

fn bench(container: &Path) {
    netlink::ensure_bridge(&BridgeSpec {
        name: "whbbench".into(),
        mtu: Some(1500),
        addresses: vec![
            (IpAddr::V4(Ipv4Addr::new(10, 88, 0, 1)), 24),
            ("fd88::1".parse().expect("v6"), 64),
        ],
    })
    .expect("bridge");
    let bare = Attachment {
        host_name: "whvbench".into(),
        bridge: "whbbench".into(),
        netns: container.to_path_buf(),
        ifname: "eth0".into(),
        mac: None,
        mtu: None,
        addresses: vec![],
        gateway4: None,
        gateway6: None,
        isolated: false,
    };
    let full = Attachment {
        addresses: vec![
            (IpAddr::V4(Ipv4Addr::new(10, 88, 0, 2)), 24),
            ("fd88::2".parse().expect("v6"), 64),
        ],
        gateway4: Some(Ipv4Addr::new(10, 88, 0, 1)),
        gateway6: Some("fd88::1".parse::<Ipv6Addr>().expect("v6")),
        ..bare.clone()
    };

    let mut round_trip = Vec::with_capacity(ROUNDS);
    let mut veth_only = Vec::with_capacity(ROUNDS);
    let mut attach = Vec::with_capacity(ROUNDS);
    let mut detach = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        round_trip.push(time(|| netlink::link_exists("whbbench").expect("lookup")));
        veth_only.push(time(|| netlink::attach(&bare).expect("bare attach")));
        netlink::detach("whvbench").expect("detach");
        attach.push(time(|| netlink::attach(&full).expect("attach")));
        detach.push(time(|| netlink::detach("whvbench").expect("detach")));
    }
    netlink::delete_link("whbbench").expect("delete bridge");

    println!("netlink, {ROUNDS} rounds              median      p90");
    report("one round trip (floor)", round_trip);
    report("attach, veth only (floor)", veth_only);
    report("attach, v4+v6 addrs + routes", attach);
    report("detach", detach);
}

fn time<T>(f: impl FnOnce() -> T) -> Duration {
    let start = Instant::now();
    std::hint::black_box(f());
    start.elapsed()
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what:<30} {:>8.3} ms {:>8.3} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.9).as_secs_f64() * 1e3
    );
}
