//! The DNS responder as a real process (`wharf __dns`), without root: two "networks" whose
//! gateways are the loopback addresses 127.0.0.2 and 127.0.0.3 (all of 127/8 is on `lo`),
//! on a free high port. Traffic goes to 127.0.0.x only; the fake upstream is a socket of
//! this test. The test stops the process it started, by its recorded PID, and checks it
//! is gone.

use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use wharf::network::dns::Options;
use wharf::network::dns::process::{self, pid_path};
use wharf::network::dns::records::{Entry, NetworkRecords, Records};

const NET_A: &str = "127.0.0.2";
const NET_B: &str = "127.0.0.3";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn entry(name: &str, aliases: &[&str], addrs: &[&str]) -> Entry {
    Entry {
        name: name.into(),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        addresses: addrs.iter().map(|a| ip(a)).collect(),
        upstreams: vec![],
    }
}

/// A port free on 127.0.0.1 right now (bound, then closed): for a listener nobody answers
/// on, and as the responder's port (on other addresses, so it is certainly free there).
fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn query(name: &str, rtype: RecordType) -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    m
}

/// The source of the queries of a client the records do not know (the host, say): it is
/// answered from the names of the network it asks on. 127.0.0.1 is a container of network
/// b in [`records`], answered from the names of its own networks wherever it asks.
const STRANGER: &str = "127.0.0.5";

/// Asks over UDP from [`STRANGER`]; returns the response and how long it took.
fn ask_udp(server: SocketAddr, name: &str, rtype: RecordType) -> (Message, Duration) {
    ask_udp_from(STRANGER, server, name, rtype)
}

fn ask_udp_from(
    source: &str,
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
) -> (Message, Duration) {
    let socket = UdpSocket::bind((source, 0)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let q = query(name, rtype);
    let start = Instant::now();
    socket.send_to(&q.to_vec().unwrap(), server).unwrap();
    let mut buf = [0; 4096];
    let n = socket.recv(&mut buf).expect("an answer within 5 s");
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.metadata.id, q.metadata.id, "the client's id comes back");
    (m, start.elapsed())
}

/// A TCP connection to `server` from `source`.
fn connect_from(source: &str, server: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from: SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&from.into()).unwrap();
    socket
        .connect_timeout(&server.into(), Duration::from_secs(5))
        .unwrap();
    socket.into()
}

/// One query on a DNS-over-TCP connection (two-byte length framing) and its answer.
fn exchange_tcp(stream: &mut TcpStream, name: &str, rtype: RecordType) -> Message {
    use std::io::{Read, Write};
    let q = query(name, rtype).to_vec().unwrap();
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    stream.write_all(&framed).unwrap();
    let mut len = [0; 2];
    stream.read_exact(&mut len).unwrap();
    let mut buf = vec![0; u16::from_be_bytes(len).into()];
    stream.read_exact(&mut buf).unwrap();
    Message::from_vec(&buf).unwrap()
}

/// Asks twice on one TCP connection from [`STRANGER`].
fn ask_tcp(server: SocketAddr, name: &str, rtype: RecordType) -> Message {
    let mut stream = connect_from(STRANGER, server);
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // Two queries on one connection: RFC 7766 pipelining in its simplest form.
    let mut last = None;
    for _ in 0..2 {
        last = Some(exchange_tcp(&mut stream, name, rtype));
    }
    last.unwrap()
}

fn addresses(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
    v.sort();
    v
}

/// A fake upstream on 127.0.0.1: answers one query with `192.0.2.53`.
fn fake_upstream() -> (SocketAddr, std::thread::JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    let thread = std::thread::spawn(move || {
        let mut buf = [0; 4096];
        let (n, from) = socket.recv_from(&mut buf).expect("a forwarded query");
        let q = Message::from_vec(&buf[..n]).unwrap();
        let mut r = Message::response(q.metadata.id, OpCode::Query);
        r.add_query(q.queries[0].clone());
        r.add_answer(Record::from_rdata(
            q.queries[0].name().clone(),
            60,
            RData::A(A("192.0.2.53".parse().unwrap())),
        ));
        socket.send_to(&r.to_vec().unwrap(), from).unwrap();
    });
    (addr, thread)
}

fn records(extra: Option<Entry>, upstream: SocketAddr) -> Records {
    let mut client = entry("client", &[], &["127.0.0.1"]);
    client.upstreams = vec![upstream];
    let mut a = vec![
        entry("p-web-1", &["web"], &["10.0.0.2", "fd00::2"]),
        entry("p-web-2", &["web"], &["10.0.0.3"]),
    ];
    a.extend(extra);
    Records {
        networks: vec![
            NetworkRecords {
                id: "p_a".into(),
                // 192.0.2.1 (TEST-NET-1) is on no interface: binding it needs IP_FREEBIND,
                // as a bridge address that is not up yet does. Nothing is sent to it.
                listen: vec![ip(NET_A), ip("192.0.2.1")],
                entries: a,
            },
            NetworkRecords {
                id: "p_b".into(),
                listen: vec![ip(NET_B)],
                entries: vec![entry("p-db-1", &["db"], &["10.0.1.2"]), client],
            },
        ],
        generation: 1,
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops the responder of a state root when dropped: a failing test must not leave it.
struct StopOnDrop<'a>(&'a Path);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = process::stop(self.0);
    }
}

#[test]
fn the_responder_answers_per_network_reloads_forwards_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let exe = Path::new(env!("CARGO_BIN_EXE_wharf"));
    let dead_port = free_port();
    let resolv = root.join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\n").unwrap();
    let options = Options {
        port: free_port(),
        resolv_conf: resolv,
        upstream_port: dead_port,
    };
    let (upstream, fake) = fake_upstream();
    process::write_records(root, &records(None, upstream)).unwrap();
    let proc = process::ensure_running_with(root, exe, &options).unwrap();
    let _stop = StopOnDrop(root);
    assert!(proc.is_alive());
    assert_eq!(
        process::ensure_running_with(root, exe, &options).unwrap(),
        proc,
        "a running responder is reused"
    );
    let a = SocketAddr::new(ip(NET_A), options.port);
    let b = SocketAddr::new(ip(NET_B), options.port);

    // Replicas: every address; names on their own network only.
    let (m, _) = ask_udp(a, "web", RecordType::A);
    assert_eq!(addresses(&m), ["10.0.0.2", "10.0.0.3"]);
    let (m, _) = ask_udp(a, "WEB.", RecordType::AAAA);
    assert_eq!(addresses(&m), ["fd00::2"]);
    let (m, _) = ask_udp(b, "db", RecordType::A);
    assert_eq!(addresses(&m), ["10.0.1.2"]);
    let (m, _) = ask_udp(a, "2.1.0.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::ServFail,
        "db is not on a"
    );
    let (m, _) = ask_udp(b, "2.1.0.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(addresses(&m), ["p-db-1."]);

    // `db` asked on network a is forwarded to the host's resolver, which does not answer
    // (the port is closed): SERVFAIL, quickly.
    let (m, took) = ask_udp(a, "db", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(took < Duration::from_secs(2), "SERVFAIL took {took:?}");

    // The client (127.0.0.1) is a container of network b with its own `dns:` server.
    let (m, _) = ask_udp_from("127.0.0.1", b, "example.com", RecordType::A);
    assert_eq!(
        addresses(&m),
        ["192.0.2.53"],
        "the fake upstream's answer is relayed"
    );
    fake.join().unwrap();
    // A known client gets the names of its own networks, whichever listener it asks.
    let (m, _) = ask_udp_from("127.0.0.1", a, "db", RecordType::A);
    assert_eq!(addresses(&m), ["10.0.1.2"]);

    // TCP.
    let m = ask_tcp(a, "web", RecordType::A);
    assert_eq!(addresses(&m), ["10.0.0.2", "10.0.0.3"]);

    // SIGHUP: a new name appears.
    let (m, _) = ask_udp(a, "api", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    let api = entry("p-api-1", &["api"], &["10.0.0.9"]);
    process::write_records(root, &records(Some(api), upstream)).unwrap();
    assert!(process::reload(root).unwrap());
    wait_for("api after the reload", || {
        addresses(&ask_udp(a, "api", RecordType::A).0) == ["10.0.0.9"]
    });

    // `sync` returns only once the responder serves what it wrote: no waiting needed.
    let cache = entry("p-cache-1", &["cache"], &["10.0.0.10"]);
    process::sync(root, exe, &records(Some(cache), upstream)).unwrap();
    assert_eq!(
        addresses(&ask_udp(a, "cache", RecordType::A).0),
        ["10.0.0.10"]
    );

    // Stop: by the recorded PID; gone, pid file removed.
    process::stop(root).unwrap();
    assert!(!proc.is_alive(), "the responder is gone");
    assert!(!pid_path(root).exists());
    assert_eq!(process::running(root).unwrap(), None);
}

#[test]
fn a_listener_that_cannot_bind_fails_the_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let exe = Path::new(env!("CARGO_BIN_EXE_wharf"));
    // Someone else holds the port on the address.
    let taken = std::net::TcpListener::bind("127.0.0.4:0").unwrap();
    let options = Options {
        port: taken.local_addr().unwrap().port(),
        ..Options::default()
    };
    let records = Records {
        networks: vec![NetworkRecords {
            id: "p_a".into(),
            listen: vec![ip("127.0.0.4")],
            entries: vec![],
        }],
        generation: 1,
    };
    process::write_records(root, &records).unwrap();
    let err = process::ensure_running_with(root, exe, &options).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("binding TCP 127.0.0.4"), "{text}");
    assert_eq!(process::running(root).unwrap(), None);
}

/// An upstream on 127.0.0.1 that answers UDP with TC set and no records, and TCP with the
/// whole answer (`192.0.2.1` … `192.0.2.3`), once each.
fn truncating_upstream() -> (SocketAddr, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let (tcp, udp) = loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        if let Ok(udp) = UdpSocket::bind(tcp.local_addr().unwrap()) {
            break (tcp, udp);
        }
    };
    let addr = tcp.local_addr().unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let respond = |q: &Message, whole: bool| {
        let mut r = Message::response(q.metadata.id, OpCode::Query);
        r.add_query(q.queries[0].clone());
        r.metadata.truncation = !whole;
        for i in 1..=3 {
            if whole {
                r.add_answer(Record::from_rdata(
                    q.queries[0].name().clone(),
                    60,
                    RData::A(A(format!("192.0.2.{i}").parse().unwrap())),
                ));
            }
        }
        r.to_vec().unwrap()
    };
    let thread = std::thread::spawn(move || {
        let mut buf = [0; 4096];
        let (n, from) = udp.recv_from(&mut buf).expect("the query over UDP");
        let q = Message::from_vec(&buf[..n]).unwrap();
        udp.send_to(&respond(&q, false), from).unwrap();
        let (mut stream, _) = tcp.accept().expect("the query again over TCP");
        let mut len = [0; 2];
        stream.read_exact(&mut len).unwrap();
        let mut q = vec![0; u16::from_be_bytes(len).into()];
        stream.read_exact(&mut q).unwrap();
        let r = respond(&Message::from_vec(&q).unwrap(), true);
        let mut framed = (r.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&r);
        stream.write_all(&framed).unwrap();
    });
    (addr, thread)
}

#[test]
fn a_truncated_upstream_answer_is_fetched_over_tcp_for_tcp_clients() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let exe = Path::new(env!("CARGO_BIN_EXE_wharf"));
    let (upstream, fake) = truncating_upstream();
    let options = Options {
        port: free_port(),
        resolv_conf: root.join("resolv.conf"),
        ..Options::default()
    };
    process::write_records(root, &records(None, upstream)).unwrap();
    let proc = process::ensure_running_with(root, exe, &options).unwrap();
    let _stop = StopOnDrop(root);
    // One query only: the fake answers once per transport.
    let m = {
        let server = SocketAddr::new(ip(NET_B), options.port);
        let mut stream = connect_from("127.0.0.1", server);
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        exchange_tcp(&mut stream, "big.example", RecordType::A)
    };
    fake.join().unwrap();
    assert!(!m.metadata.truncation);
    assert_eq!(addresses(&m), ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
    process::stop(root).unwrap();
    assert!(!proc.is_alive());
}
