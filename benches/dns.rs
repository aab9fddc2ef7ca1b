//! DNS answers for service names, as issue 5 asks (p99 under 1 ms), side by side with the
//! floor in the same run. Run with `cargo bench --bench dns`; no root needed.
//!
//! - **responder**: the real responder process (`wharf __dns`, started through
//!   `network::dns::process`) listening on 127.0.0.5 at a free port; one UDP client asks
//!   `A web` (a service with three replicas) and waits for each answer before the next.
//! - **floor**: the same query bytes, the same way, to a trivial UDP echo socket on
//!   127.0.0.6 served by a thread of this process: the cost of the loopback round trip and
//!   two wake-ups, which no responder can beat.
//!
//! The two alternate query by query, so both see the same machine. `WHARF_BENCH_QUERIES`
//! sets N (default 20000). Under `cargo test --all-targets` (no `--bench` argument) 200
//! queries run, as a check. Traffic goes to 127.0.0.x only.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use wharf::network::dns::Options;
use wharf::network::dns::process;
use wharf::network::dns::records::{Entry, NetworkRecords, Records};

fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    let us = |d: Duration| format!("{:7.1} µs", d.as_secs_f64() * 1e6);
    println!(
        "{name:<10} median {}  p99 {}  max {}",
        us(at(0.5)),
        us(at(0.99)),
        us(v[v.len() - 1])
    );
}

fn round_trip(client: &UdpSocket, to: SocketAddr, query: &[u8], buf: &mut [u8]) -> Duration {
    let start = Instant::now();
    client.send_to(query, to).unwrap();
    let n = client.recv(buf).expect("an answer");
    let took = start.elapsed();
    assert!(n >= 12 && buf[..2] == query[..2], "the answer to our query");
    took
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n: usize = if bench {
        std::env::var("WHARF_BENCH_QUERIES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000)
    } else {
        200
    };
    let dir = tempfile::Builder::new()
        .prefix("wharf-bench-dns-")
        .tempdir()
        .unwrap();
    let root = dir.path();
    let port = UdpSocket::bind("127.0.0.5:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = Options {
        port,
        resolv_conf: root.join("resolv.conf"),
        ..Options::default()
    };
    let replica = |i: u8| Entry {
        name: format!("bench-web-{i}"),
        aliases: vec!["web".into()],
        addresses: vec![format!("10.0.0.{i}").parse().unwrap()],
        upstreams: vec![],
    };
    let records = Records {
        networks: vec![NetworkRecords {
            id: "bench_default".into(),
            listen: vec!["127.0.0.5".parse().unwrap()],
            entries: (1..=3).map(replica).collect(),
        }],
        generation: 1,
    };
    process::write_records(root, &records).unwrap();
    let exe = Path::new(env!("CARGO_BIN_EXE_wharf"));
    let responder = process::ensure_running_with(root, exe, &options).unwrap();

    let echo = UdpSocket::bind("127.0.0.6:0").unwrap();
    let echo_addr = echo.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0; 1500];
        while let Ok((n, from)) = echo.recv_from(&mut buf) {
            let _ = echo.send_to(&buf[..n], from);
        }
    });

    let mut query = Message::query();
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(
        Name::from_ascii("web").unwrap(),
        RecordType::A,
    ));
    let query = query.to_vec().unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let dns_addr = SocketAddr::new("127.0.0.5".parse().unwrap(), port);
    let mut buf = [0; 1500];

    // Warm-up: caches, the responder's first allocations.
    for _ in 0..200 {
        round_trip(&client, dns_addr, &query, &mut buf);
        round_trip(&client, echo_addr, &query, &mut buf);
    }
    let (mut dns, mut floor) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        dns.push(round_trip(&client, dns_addr, &query, &mut buf));
        floor.push(round_trip(&client, echo_addr, &query, &mut buf));
    }
    println!("{n} sequential UDP queries for a service name (3 replicas):");
    stats("responder", dns);
    stats("floor", floor);

    process::stop(root).unwrap();
    assert!(!responder.is_alive(), "the responder is gone");
}
