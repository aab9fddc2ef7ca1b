//! The network layer end to end, as root: real containers on real bridges, inside a
//! network namespace each test creates as its "host", next to another one playing an
//! outside machine on the host's LAN. Nothing here touches the real host's links, routes
//! or rules, and traffic only ever goes to addresses inside these namespaces.
//!
//! Each test ends with [`Net::finish`], which removes what the test made through the
//! network layer itself and then checks that the "host" holds no link, address, route,
//! nftables rule, namespace pin or process of wharf's any more.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};

use wharf::compose;
use wharf::network::linux::{Networks, Sandbox};
use wharf::network::model::{Mode, network_spec, sandbox_spec};
use wharf::network::netlink::{self, Attachment, BridgeSpec};
use wharf::network::netns;
use wharf::runtime::CreateOptions;
use wharf::runtime::nsexec::Request;
use wharf::runtime::spec::EtcFile;

use crate::runtime::{Host, IMAGE, is_root};

/// The "host"'s address on its LAN, and the outside machine's.
const HOST_LAN: Ipv4Addr = Ipv4Addr::new(10, 250, 0, 1);
const OUTSIDE: Ipv4Addr = Ipv4Addr::new(10, 250, 0, 2);
const LAN_BRIDGE: &str = "whlan0";

pub(crate) struct Net {
    pub(crate) host: Host,
    dir: tempfile::TempDir,
    pub(crate) hostns: PathBuf,
    outside: PathBuf,
    pub(crate) nets: Networks,
    /// Container id → service, in creation order.
    containers: Vec<(String, String)>,
    networks: Vec<String>,
    finished: bool,
}

impl Net {
    pub(crate) fn new(tag: &str) -> Net {
        let host = Host::new(tag);
        let dir = tempfile::Builder::new()
            .prefix("wharf-it-net-")
            .tempdir()
            .expect("tempdir");
        let hostns = dir.path().join("hostns");
        let outside = dir.path().join("outside");
        netns::create(&hostns).expect("the host namespace");
        netns::create(&outside).expect("the outside namespace");
        // One state root for containers and networks, as the CLI has.
        let nets = Networks::new(host.root(), Path::new(env!("CARGO_BIN_EXE_wharf")))
            .with_lock(&dir.path().join("network.lock"));
        let net = Net {
            host,
            dir,
            hostns,
            outside,
            nets,
            containers: Vec::new(),
            networks: Vec::new(),
            finished: false,
        };
        // The LAN: a bridge in the host with the host's address, the outside machine
        // plugged into it with a route back to the host.
        let outside_path = net.outside.clone();
        net.in_host(move || {
            netlink::ensure_bridge(&BridgeSpec {
                name: LAN_BRIDGE.into(),
                mtu: None,
                addresses: vec![(IpAddr::V4(HOST_LAN), 24)],
            })
            .expect("LAN bridge");
            netlink::attach(&Attachment {
                host_name: "whlan0o".into(),
                bridge: LAN_BRIDGE.into(),
                netns: outside_path,
                ifname: "eth0".into(),
                mac: None,
                mtu: None,
                addresses: vec![(IpAddr::V4(OUTSIDE), 24)],
                gateway4: Some(HOST_LAN),
                gateway6: None,
                isolated: false,
            })
            .expect("outside machine");
        });
        net
    }

    /// Runs `f` in the "host" namespace (on a thread of its own).
    fn in_host<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        netns::run_in(&self.hostns, f).expect("entering the host namespace")
    }

    fn project(&self, yaml: &str) -> compose::Project {
        self.host.project(&yaml.replace("IMAGE", IMAGE))
    }

    /// Creates every network of `project`, then every service's replicas with their
    /// sandboxes, and starts them: what `wharf up` will do, in dependency-free order.
    fn up(&mut self, project: &compose::Project) -> Result<(), String> {
        for key in project.networks.keys() {
            let spec = network_spec(project, key).map_err(|e| e.to_string())?;
            let nets = self.nets.clone();
            let record = self.in_host(move || nets.create_network(&spec));
            let record = record.map_err(|e| e.to_string())?;
            if !self.networks.contains(&record.spec.name) && !record.spec.external {
                self.networks.push(record.spec.name.clone());
            }
        }
        for (name, svc) in &project.services {
            for replica in 1..=svc.replicas() {
                self.run(project, name, replica)?;
            }
        }
        Ok(())
    }

    fn run(
        &mut self,
        project: &compose::Project,
        service: &str,
        replica: u64,
    ) -> Result<String, String> {
        let mut made: Option<Result<Sandbox, String>> = None;
        // `network_mode: service:X` joins replica 1 of X.
        let joins: std::collections::BTreeMap<String, String> = project.services[service]
            .network_mode
            .iter()
            .filter_map(|m| {
                let target = m.strip_prefix("service:")?;
                let (id, _) = self.containers.iter().find(|(_, s)| s == target)?;
                Some((m.clone(), id.clone()))
            })
            .collect();
        let nets = self.nets.clone();
        let hostns = self.hostns.clone();
        let id = self.host.create_with(project, service, replica, |spec| {
            let sandbox = sandbox_spec(project, service, &spec.name, &spec.hostname)
                .map_err(|e| e.to_string())
                .and_then(|s| {
                    let id = spec.id.clone();
                    netns::run_in(&hostns, move || nets.create_sandbox(&id, &s))
                        .map_err(|e| e.to_string())?
                        .map_err(|e| e.to_string())
                });
            let options = match &sandbox {
                Ok(s) => CreateOptions {
                    joins: joins.clone(),
                    netns: s.netns.clone(),
                    hosts: Some(s.hosts.clone()),
                    resolv_conf: Some(s.resolv_conf.clone()),
                    ..CreateOptions::default()
                },
                Err(_) => CreateOptions::default(),
            };
            made = Some(sandbox);
            options
        });
        if let Some(Err(e)) = made {
            // The runtime made the container anyway (the harness cannot stop it midway);
            // it was never started, and `finish` removes it.
            return Err(e);
        }
        self.containers.push((id.clone(), service.to_string()));
        self.host.start(&id);
        Ok(id)
    }

    /// The id of replica `n` (1-based) of `service`.
    fn id(&self, service: &str, n: usize) -> String {
        self.containers
            .iter()
            .filter(|(_, s)| s == service)
            .nth(n - 1)
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| panic!("no replica {n} of {service}"))
    }

    /// The IPv4 address of container `id` on network `key`.
    fn addr(&self, id: &str, key: &str) -> Ipv4Addr {
        let s = self.nets.sandbox(id).unwrap().expect("sandbox");
        s.endpoints
            .iter()
            .find(|e| e.key == key)
            .and_then(|e| {
                e.addresses.iter().find_map(|a| match a {
                    IpAddr::V4(a) => Some(*a),
                    _ => None,
                })
            })
            .unwrap_or_else(|| panic!("{id} has no address on {key}"))
    }

    /// Runs `sh -c script` in container `id`, returning its exit code.
    fn sh(&self, id: &str, script: &str) -> i32 {
        self.host.exec(
            id,
            Request {
                args: vec!["sh".into(), "-c".into(), script.into()],
                ..Request::default()
            },
        )
    }

    /// Asks the DNS responder at `server` for `name` (type `rtype`) from inside `ns`.
    fn resolve(ns: &Path, server: IpAddr, name: &str, rtype: RecordType) -> (u16, Vec<String>) {
        let name = name.to_string();
        netns::run_in(ns, move || {
            let mut q = Message::new(0x4242, MessageType::Query, OpCode::Query);
            q.metadata.recursion_desired = true;
            q.add_query(Query::query(Name::from_ascii(&name).unwrap(), rtype));
            let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            sock.send_to(&q.to_vec().unwrap(), SocketAddr::new(server, 53))
                .unwrap();
            let mut buf = [0u8; 1500];
            let n = sock
                .recv(&mut buf)
                .expect("an answer from the DNS responder");
            let r = Message::from_vec(&buf[..n]).unwrap();
            let answers = r
                .answers
                .iter()
                .map(|rec| match &rec.data {
                    RData::A(a) => a.0.to_string(),
                    RData::AAAA(a) => a.0.to_string(),
                    RData::PTR(p) => p.0.to_string(),
                    other => format!("{other:?}"),
                })
                .collect();
            (u16::from(r.metadata.response_code), answers)
        })
        .unwrap()
    }

    fn netns_of(&self, id: &str) -> PathBuf {
        self.nets
            .sandbox(id)
            .unwrap()
            .unwrap()
            .netns
            .expect("a bridge sandbox")
    }

    fn gateway(&self, id: &str) -> IpAddr {
        let s = self.nets.sandbox(id).unwrap().unwrap();
        let ep = s
            .endpoints
            .iter()
            .find(|e| e.default_route)
            .unwrap_or(&s.endpoints[0]);
        let net = self.nets.network(&ep.network).unwrap().unwrap();
        net.pools[0].gateway()
    }

    /// Removes everything through the layer and checks the host is as it was.
    pub(crate) fn finish(mut self) {
        let ids: Vec<String> = self.containers.iter().map(|(id, _)| id.clone()).collect();
        let Net {
            hostns,
            nets,
            networks,
            ..
        } = &mut self;
        let (layer, hostns_path) = (nets.clone(), hostns.clone());
        let all_ids = ids.clone();
        let networks = networks.clone();
        netns::run_in(&hostns_path, move || {
            for id in &all_ids {
                layer.remove_sandbox(id).unwrap_or_else(|e| panic!("{e}"));
            }
            for n in &networks {
                layer.remove_network(n).unwrap_or_else(|e| panic!("{e}"));
            }
            netlink::detach("whlan0o").unwrap();
            netlink::delete_link(LAN_BRIDGE).unwrap();
            // What is left in the host: only the loopback interface and its addresses.
            let links = ip(&["-o", "link", "show"]);
            assert_eq!(links.lines().count(), 1, "links left in the host: {links}");
            let routes = ip(&["-o", "route", "show", "table", "all"]);
            assert!(
                routes
                    .lines()
                    .all(|l| l.contains(" lo ") || l.contains("dev lo")),
                "routes left: {routes}"
            );
            let rules = String::from_utf8_lossy(
                &Command::new("nft")
                    .args(["list", "ruleset"])
                    .output()
                    .unwrap()
                    .stdout,
            )
            .into_owned();
            assert!(!rules.contains("table"), "nftables rules left: {rules}");
        })
        .unwrap();
        // Then the containers (their processes, cgroups and mounts, which includes the
        // namespace pins under the state root: checked by the runtime harness).
        self.host.finish_here();
        let Net {
            dir,
            hostns,
            outside,
            nets,
            ..
        } = &mut self;
        let dns_pid = nets.root().join("dns.pid");
        assert!(!dns_pid.exists(), "the DNS responder's pid file is left");
        let pins: Vec<_> = fs::read_dir(nets.root().join("netns"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(pins.is_empty(), "namespace pins left: {pins:?}");
        netns::remove(outside).unwrap();
        netns::remove(hostns).unwrap();
        let root = dir.path().to_string_lossy().into_owned();
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let leaked: Vec<&str> = mounts.lines().filter(|l| l.contains(&root)).collect();
        assert!(leaked.is_empty(), "mounts left: {leaked:?}");
        self.finished = true;
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // A failed test: clean up what we can so the next tests start from nothing.
        let (nets, ids, networks) = (
            self.nets.clone(),
            self.containers
                .iter()
                .map(|(id, _)| id.clone())
                .collect::<Vec<_>>(),
            self.networks.clone(),
        );
        let _ = netns::run_in(&self.hostns, move || {
            for id in &ids {
                let _ = nets.remove_sandbox(id);
            }
            for n in &networks {
                let _ = nets.remove_network(n);
            }
        });
        // Whatever the records say, the responder this test may have started goes.
        let _ = wharf::network::dns::process::stop(self.host.root());
        let _ = netns::remove(&self.outside);
        let _ = netns::remove(&self.hostns);
    }
}

/// `ip args…` in the calling thread's network namespace.
fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A service running busybox httpd on port 80 that answers its own name.
fn httpd(name: &str) -> String {
    format!(
        "[\"sh\", \"-c\", \"mkdir -p /www && echo {name} > /www/index.html && exec httpd -f -p 80 -h /www\"]"
    )
}

/// `GET /` at `addr` from inside `ns`, or the error.
pub(crate) fn http_get(ns: &Path, addr: SocketAddr) -> Result<String, String> {
    netns::run_in(ns, move || {
        let mut s =
            TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.write_all(b"GET / HTTP/1.0\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut out = String::new();
        s.read_to_string(&mut out).map_err(|e| e.to_string())?;
        Ok(out
            .rsplit("\r\n\r\n")
            .next()
            .unwrap_or("")
            .trim()
            .to_string())
    })
    .unwrap()
}

/// Waits until `addr` answers HTTP from inside `ns` (a server just started).
pub(crate) fn wait_http(ns: &Path, addr: SocketAddr) {
    let end = std::time::Instant::now() + Duration::from_secs(5);
    while let Err(e) = http_get(ns, addr) {
        assert!(
            std::time::Instant::now() < end,
            "{addr} never answered: {e}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn services_reach_each_other_by_name_alias_and_container_name_on_their_network_only() {
    if !is_root("services_reach_each_other_by_name...") {
        return;
    }
    let mut net = Net::new("dns");
    let p = net.project(&format!(
        r#"
services:
  web:
    image: IMAGE
    command: {web}
    deploy: {{replicas: 2}}
    networks:
      front: {{aliases: [www]}}
  api:
    image: IMAGE
    command: ["sleep", "1000"]
    links: ["db:legacy"]
    networks: [front, back]
  db:
    image: IMAGE
    command: {db}
    networks:
      back: {{aliases: [database]}}
networks:
  front: {{}}
  back: {{}}
"#,
        web = httpd("web"),
        db = httpd("db")
    ));
    net.up(&p).unwrap();
    let (api, web1, db) = (net.id("api", 1), net.id("web", 1), net.id("db", 1));
    let project = net.host.project_name().to_string();
    for (id, key) in [(&web1, "front"), (&db, "back")] {
        wait_http(
            &net.netns_of(id),
            SocketAddr::new(IpAddr::V4(net.addr(id, key)), 80),
        );
    }
    // By service name, alias and container name, through the container's own resolver.
    for target in [
        "db",
        "database",
        &format!("{project}-db-1"),
        "legacy",
        "web",
        "www",
    ] {
        assert_eq!(
            net.sh(
                &api,
                &format!("timeout 3 wget -q -O - http://{target}/ | grep -q .")
            ),
            0,
            "api cannot reach {target}"
        );
    }
    // Replicas: every address, as several records.
    let api_ns = net.netns_of(&api);
    let front_gw = IpAddr::V4(net.addr(&web1, "front")).to_string();
    let gw = net.gateway(&web1);
    let (rcode, web_addrs) = Net::resolve(&api_ns, gw, "web.", RecordType::A);
    assert_eq!(rcode, 0);
    let mut want = vec![
        net.addr(&web1, "front").to_string(),
        net.addr(&net.id("web", 2), "front").to_string(),
    ];
    want.sort();
    let mut got = web_addrs.clone();
    got.sort();
    assert_eq!(got, want, "web's replicas ({front_gw})");
    // Scope: db is only on back; web's containers are only on front.
    assert_ne!(
        net.sh(&web1, "nslookup db >/dev/null 2>&1"),
        0,
        "db resolved from front"
    );
    let web_ns = net.netns_of(&web1);
    let (_, none) = Net::resolve(&web_ns, gw, "database.", RecordType::A);
    assert!(none.is_empty(), "database resolved on front: {none:?}");
    // PTR of a container address on this network.
    let ip = net.addr(&db, "back");
    let o = ip.octets();
    let back_gw = net
        .nets
        .network(&format!("{project}_back"))
        .unwrap()
        .unwrap()
        .pools[0]
        .gateway();
    let (_, ptr) = Net::resolve(
        &api_ns,
        back_gw,
        &format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0]),
        RecordType::PTR,
    );
    assert_eq!(ptr.len(), 1, "{ptr:?}");
    // Different networks: no way from web to db, even by address.
    assert_ne!(
        net.sh(&web1, &format!("timeout 2 wget -q -O - http://{ip}/")),
        0,
        "front reached back"
    );
    assert!(http_get(&web_ns, SocketAddr::new(IpAddr::V4(ip), 80)).is_err());
    net.finish();
}

#[test]
fn egress_is_masqueraded_and_an_internal_network_has_no_way_out() {
    if !is_root("egress_is_masqueraded_and_an_internal_network_has_no_way_out") {
        return;
    }
    let mut net = Net::new("egress");
    let p = net.project(
        r#"
services:
  out:
    image: IMAGE
    command: ["sleep", "1000"]
  shut:
    image: IMAGE
    command: ["sleep", "1000"]
    cap_add: [NET_ADMIN]
    networks: [inside]
networks:
  inside: {internal: true}
"#,
    );
    net.up(&p).unwrap();
    let (out, shut) = (net.id("out", 1), net.id("shut", 1));
    // The outside machine listens; the connection must arrive from the host's address.
    let outside = net.outside.clone();
    let listener = std::thread::spawn(move || {
        netns::run_in(&outside, || {
            let l = TcpListener::bind(SocketAddr::new(IpAddr::V4(OUTSIDE), 7000)).unwrap();
            let (mut s, peer) = l.accept().unwrap();
            let mut request = [0u8; 512];
            let _ = s.read(&mut request);
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\n\r\nhello\n");
            peer
        })
        .unwrap()
    });
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        net.sh(
            &out,
            &format!("timeout 3 wget -q -O - http://{OUTSIDE}:7000/ | grep -q hello")
        ),
        0,
        "no way out of a normal network"
    );
    let peer = listener.join().unwrap();
    assert_eq!(peer.ip(), IpAddr::V4(HOST_LAN), "not masqueraded");
    // The internal network: no default route, and forwarding refused even with one.
    assert_ne!(
        net.sh(&shut, "ip route | grep -q default"),
        0,
        "internal network has a default route"
    );
    let gw = net.gateway(&shut);
    assert_eq!(net.sh(&shut, &format!("ip route add default via {gw}")), 0);
    assert_ne!(
        net.sh(
            &shut,
            &format!("timeout 2 wget -q -O - http://{OUTSIDE}:7000/")
        ),
        0,
        "an internal network reached outside"
    );
    net.finish();
}

#[test]
fn published_ports_answer_where_asked_and_nowhere_else() {
    if !is_root("published_ports_answer_where_asked_and_nowhere_else") {
        return;
    }
    let mut net = Net::new("ports");
    let p = net.project(&format!(
        r#"
services:
  web:
    image: IMAGE
    command: {web}
    ports:
      - "8080:80"
      - "127.0.0.1:8081:80"
      - "80"
      - "5353:53/udp"
  client:
    image: IMAGE
    command: ["sleep", "1000"]
"#,
        web = httpd("web")
    ));
    net.up(&p).unwrap();
    let web = net.id("web", 1);
    let client = net.id("client", 1);
    let ports = net.nets.ports(&web).unwrap();
    let random = ports
        .iter()
        .find(|p| p.container_port == 80 && p.host_port != 8080 && p.host_port != 8081)
        .expect("a random host port")
        .host_port;
    let hostns = net.hostns.clone();
    let lo = |port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let lan = |port| SocketAddr::new(IpAddr::V4(HOST_LAN), port);
    // From the host: loopback and its own address (once httpd listens).
    let web_ns = net.netns_of(&web);
    wait_http(
        &web_ns,
        SocketAddr::new(IpAddr::V4(net.addr(&web, "default")), 80),
    );
    assert_eq!(http_get(&hostns, lo(8080)).as_deref(), Ok("web"));
    assert_eq!(http_get(&hostns, lan(8080)).as_deref(), Ok("web"));
    assert_eq!(http_get(&hostns, lo(8081)).as_deref(), Ok("web"));
    assert_eq!(http_get(&hostns, lan(random)).as_deref(), Ok("web"));
    // 8081 was published on 127.0.0.1 only.
    assert!(
        http_get(&hostns, lan(8081)).is_err(),
        "8081 answered on the LAN address"
    );
    // From the outside machine, and from another container through the host (hairpin).
    assert_eq!(http_get(&net.outside, lan(8080)).as_deref(), Ok("web"));
    assert!(http_get(&net.outside, lan(8081)).is_err());
    assert_eq!(
        net.sh(
            &client,
            &format!("timeout 3 wget -q -O - http://{HOST_LAN}:8080/ | grep -q web")
        ),
        0,
        "hairpin"
    );
    // UDP: a datagram to the host's port arrives in the container (the receiver is a
    // socket of this test inside the container's namespace).
    let receiver = std::thread::spawn(move || {
        netns::run_in(&web_ns, || {
            let s = UdpSocket::bind("0.0.0.0:53").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let mut buf = [0u8; 64];
            let got: Vec<Vec<u8>> = (0..2)
                .filter_map(|_| s.recv(&mut buf).ok().map(|n| buf[..n].to_vec()))
                .collect();
            got
        })
        .unwrap()
    });
    std::thread::sleep(Duration::from_millis(200));
    netns::run_in(&net.hostns, || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.send_to(b"via-lo", lo(5353)).unwrap();
        s.send_to(b"via-lan", lan(5353)).unwrap();
    })
    .unwrap();
    let got = receiver.join().unwrap();
    assert_eq!(got, vec![b"via-lo".to_vec(), b"via-lan".to_vec()]);
    // `wharf port` reports each binding, the random one included.
    let port = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_wharf"))
            .env("WHARF_ROOT", net.host.root())
            .arg("-f")
            .arg(net.host.root().join("project/compose.yaml"))
            .args(["-p", net.host.project_name(), "port"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = port(&["web", "80"]);
    assert_eq!(code, Some(0), "{err}");
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    let mut want = vec![
        "0.0.0.0:8080".to_string(),
        "127.0.0.1:8081".to_string(),
        format!("0.0.0.0:{random}"),
    ];
    want.sort();
    assert_eq!(lines, want);
    assert_eq!(port(&["web", "53/udp"]).1, "0.0.0.0:5353\n");
    let (code, _, err) = port(&["web", "81"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no port 81/tcp is published"), "{err}");
    net.finish();
}

#[test]
fn a_taken_port_fails_cleanly_before_anything_changes() {
    if !is_root("a_taken_port_fails_cleanly_before_anything_changes") {
        return;
    }
    let mut net = Net::new("taken");
    let p = net.project("services:\n  web:\n    image: IMAGE\n    command: [sleep, \"1000\"]\n    ports: [\"8090:80\"]\n");
    // Something else holds 8090 on the host.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let hostns = net.hostns.clone();
    let holder = std::thread::spawn(move || {
        netns::run_in(&hostns, move || {
            let _l = TcpListener::bind("0.0.0.0:8090").unwrap();
            ready_tx.send(()).unwrap();
            let _ = rx.recv();
        })
        .unwrap()
    });
    ready_rx.recv().unwrap();
    let err = net.up(&p).unwrap_err();
    assert!(
        err.contains("host port 8090/tcp is already in use"),
        "{err}"
    );
    // Nothing of the container's networking exists: no sandbox, pin, veth or rule.
    assert!(net.nets.sandboxes().unwrap().is_empty());
    let left = net.in_host(|| ip(&["-o", "link", "show"]));
    assert!(!left.contains("whv"), "a veth was left: {left}");
    tx.send(()).unwrap();
    holder.join().unwrap();
    // The same port twice in one project is refused too.
    let twice = net.project("services:\n  a:\n    image: IMAGE\n    command: [sleep, \"1000\"]\n    ports: [\"8091:80\", \"8091:81\"]\n");
    let err = net.run(&twice, "a", 1).unwrap_err();
    assert!(err.contains("8091/tcp is already in use"), "{err}");
    net.finish();
}

#[test]
fn static_addresses_custom_subnets_mtu_and_mac() {
    if !is_root("static_addresses_custom_subnets_mtu_and_mac") {
        return;
    }
    let mut net = Net::new("static");
    let p = net.project(
        r#"
services:
  a:
    image: IMAGE
    command: ["sleep", "1000"]
    mac_address: "02:42:0a:f0:00:09"
    networks:
      lan:
        ipv4_address: 10.240.0.9
networks:
  lan:
    driver_opts:
      com.docker.network.driver.mtu: "1400"
    ipam:
      config:
        - subnet: 10.240.0.0/24
          ip_range: 10.240.0.128/25
          gateway: 10.240.0.254
"#,
    );
    net.up(&p).unwrap();
    let a = net.id("a", 1);
    assert_eq!(net.addr(&a, "lan"), Ipv4Addr::new(10, 240, 0, 9));
    assert_eq!(
        net.sh(&a, "ip -4 addr show eth0 | grep -q 'inet 10.240.0.9/24'"),
        0
    );
    assert_eq!(net.sh(&a, "ip link show eth0 | grep -q 'mtu 1400'"), 0);
    assert_eq!(
        net.sh(&a, "ip link show eth0 | grep -q '02:42:0a:f0:00:09'"),
        0
    );
    assert_eq!(
        net.sh(&a, "ip route | grep -q 'default via 10.240.0.254'"),
        0
    );
    assert_eq!(net.sh(&a, "ping -c 1 -W 2 10.240.0.254 >/dev/null"), 0);
    // The same static address twice is refused, naming it.
    let b = net.run(&p, "a", 2).unwrap_err();
    assert!(b.contains("10.240.0.9") && b.contains("in use"), "{b}");
    // Another project: an explicit subnet overlapping this one is refused; declaring this
    // network `external` attaches to it, with a dynamic address from its ip_range.
    let lan = format!("{}_lan", net.host.project_name());
    let mut other = net.project(&format!(
        "services:\n  b:\n    image: IMAGE\n    command: [sleep, \"1000\"]\n    networks: [shared]\nnetworks:\n  shared:\n    external: true\n    name: {lan}\n  clash:\n    ipam:\n      config:\n        - subnet: 10.240.0.0/16\n"
    ));
    other.name = format!("{}-other", other.name);
    let clash = network_spec(&other, "clash").unwrap();
    let nets = net.nets.clone();
    let err = net
        .in_host(move || nets.create_network(&clash))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("overlaps network {lan:?}")),
        "{err}"
    );
    other.networks.remove("clash");
    net.up(&other).unwrap();
    let b = net.id("b", 1);
    let addr = net.addr(&b, "shared");
    assert!(
        addr.octets()[3] >= 128,
        "{addr} is outside ip_range 10.240.0.128/25"
    );
    assert_eq!(net.sh(&b, "ping -c 1 -W 2 10.240.0.9 >/dev/null"), 0);
    net.finish();
}

#[test]
fn projects_with_automatic_subnets_never_overlap_even_concurrently() {
    if !is_root("projects_with_automatic_subnets_never_overlap_even_concurrently") {
        return;
    }
    let mut net = Net::new("pools");
    // A host route in the way of the first default pool, as on a host with Docker.
    net.in_host(|| {
        let out = Command::new("ip")
            .args(["route", "add", "172.17.0.0/16", "dev", LAN_BRIDGE])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    // Six projects, each with its default network.
    let specs: Vec<_> = (0..6)
        .map(|i| {
            let mut p = net.project("services:\n  a:\n    image: IMAGE\n");
            p.name = format!("{}-{i}", p.name);
            // Normalization wrote the network's name from the project's; derive it anew.
            if let Some(n) = p.networks.get_mut("default") {
                n.name = None;
            }
            network_spec(&p, "default").unwrap()
        })
        .collect();
    let records: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = specs
            .iter()
            .map(|spec| {
                let (nets, hostns) = (net.nets.clone(), net.hostns.clone());
                s.spawn(move || netns::run_in(&hostns, || nets.create_network(spec)).unwrap())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });
    for r in &records {
        net.networks.push(r.spec.name.clone());
    }
    let subnets: Vec<_> = records.iter().map(|r| r.pools[0].subnet()).collect();
    for (i, a) in subnets.iter().enumerate() {
        assert!(
            !a.to_string().starts_with("172.17."),
            "{a} overlaps the host route"
        );
        for b in &subnets[i + 1..] {
            assert!(!a.overlaps(b), "{a} overlaps {b}");
        }
    }
    net.in_host(|| {
        ip(&["route", "del", "172.17.0.0/16", "dev", LAN_BRIDGE]);
    });
    // A bridge that went away (a reboot keeps the records, not the links) comes back when
    // the network is asked for again, with the same subnet.
    let (nets, first) = (net.nets.clone(), records[0].clone());
    net.in_host(move || {
        assert!(netlink::delete_link(&first.spec.bridge).unwrap());
        let again = nets.create_network(&first.spec).unwrap();
        assert_eq!(again, first);
        assert!(netlink::link_exists(&first.spec.bridge).unwrap());
        let addrs = ip(&["-o", "addr", "show", "dev", &first.spec.bridge]);
        let gw = first.pools[0].gateway().to_string();
        assert!(addrs.contains(&gw), "{addrs}");
    });
    let _ = Mode::Host;
    net.finish();
}

#[test]
fn a_running_container_moves_to_a_recreated_network_without_restarting() {
    if !is_root("a_running_container_moves_to_a_recreated_network_without_restarting") {
        return;
    }
    let mut net = Net::new("reconnect");
    let yaml = |subnet: &str| {
        format!(
            "services:\n  a:\n    image: IMAGE\n    command: [sleep, \"1000\"]\n  b:\n    image: IMAGE\n    command: {web}\nnetworks:\n  default:\n    ipam:\n      config:\n        - subnet: {subnet}\n",
            web = httpd("b")
        )
    };
    let p = net.project(&yaml("10.241.0.0/24"));
    net.up(&p).unwrap();
    let (a, b) = (net.id("a", 1), net.id("b", 1));
    let pid_before = net.host.state(&a).init.unwrap();
    assert_eq!(net.addr(&a, "default").octets()[..3], [10, 241, 0]);
    // The network's configuration changes: disconnect both, recreate it, reconnect.
    let changed = net.project(&yaml("10.242.0.0/24"));
    let spec = network_spec(&changed, "default").unwrap();
    let (nets, ids) = (net.nets.clone(), [a.clone(), b.clone()]);
    let endpoints: Vec<_> = ids
        .iter()
        .map(|id| {
            let s = nets.sandbox(id).unwrap().unwrap();
            let service = s.spec.service.clone();
            let spec =
                sandbox_spec(&changed, &service, &s.spec.container_name, &s.spec.hostname).unwrap();
            let Mode::Bridge(eps) = spec.mode else {
                panic!("bridge")
            };
            eps[0].clone()
        })
        .collect();
    net.in_host(move || {
        for id in &ids {
            nets.disconnect(id, "default").unwrap();
        }
        assert!(nets.remove_network(&spec.name).unwrap());
        nets.create_network(&spec).unwrap();
        for (id, ep) in ids.iter().zip(&endpoints) {
            nets.connect(id, ep).unwrap();
        }
    });
    // The resolver moved with the gateway: the reconciler rewrites the /etc files.
    for id in [&a, &b] {
        let files = net.nets.sandbox_files(id).unwrap();
        net.host
            .rewrite_etc(id, EtcFile::ResolvConf, &files.resolv_conf);
        net.host.rewrite_etc(id, EtcFile::Hosts, &files.hosts);
    }
    let new_b = net.addr(&b, "default");
    assert_eq!(new_b.octets()[..3], [10, 242, 0]);
    assert_eq!(
        net.sh(&a, "ip -4 addr show eth0 | grep -q 'inet 10.242.0.'"),
        0
    );
    assert_eq!(net.sh(&a, "ip route | grep -q 'default via 10.242.0.1'"), 0);
    assert_eq!(
        net.sh(&a, "timeout 3 wget -q -O - http://b/ | grep -q b"),
        0,
        "b by name after the move"
    );
    // The same process all along.
    assert_eq!(net.host.state(&a).init.unwrap(), pid_before);
    // Disconnecting from a network it is not on is an error that names both.
    let err = net.nets.disconnect(&a, "nope").unwrap_err().to_string();
    assert!(err.contains("not attached to network \"nope\""), "{err}");
    net.finish();
}

#[test]
fn ipv6_isolated_bridges_shared_namespaces_and_the_etc_files() {
    if !is_root("ipv6_isolated_bridges_shared_namespaces_and_the_etc_files") {
        return;
    }
    let mut net = Net::new("v6");
    let p = net.project(&format!(
        r#"
services:
  web:
    image: IMAGE
    command: {web}
    hostname: front
    extra_hosts: ["gw.internal:host-gateway", "db.example:192.0.2.7"]
    dns_search: [example.test]
    networks: [six, quiet]
  side:
    image: IMAGE
    command: ["sleep", "1000"]
    network_mode: "service:web"
  peer:
    image: IMAGE
    command: ["sleep", "1000"]
    networks: [six, quiet]
networks:
  six:
    enable_ipv6: true
    ipam:
      config:
        - subnet: fd42:4242::/64
  quiet:
    driver_opts:
      com.docker.network.bridge.enable_icc: "false"
"#,
        web = httpd("web")
    ));
    // `side` joins web's namespace: web must exist first (the reconciler orders by
    // dependency; the harness goes by name, so start web by hand).
    for key in p.networks.keys() {
        let spec = network_spec(&p, key).unwrap();
        let nets = net.nets.clone();
        let name = net
            .in_host(move || nets.create_network(&spec))
            .unwrap()
            .spec
            .name;
        net.networks.push(name);
    }
    let web = net.run(&p, "web", 1).unwrap();
    let peer = net.run(&p, "peer", 1).unwrap();
    let web_v4 = net.addr(&web, "six");
    wait_http(&net.netns_of(&web), SocketAddr::new(IpAddr::V4(web_v4), 80));
    // IPv6: an address from the subnet, reachable, and AAAA by name.
    let web6 = net
        .nets
        .sandbox(&web)
        .unwrap()
        .unwrap()
        .endpoints
        .iter()
        .find(|e| e.key == "six")
        .unwrap()
        .addresses
        .iter()
        .find(|a| a.is_ipv6())
        .copied()
        .expect("an IPv6 address");
    assert!(web6.to_string().starts_with("fd42:4242::"), "{web6}");
    assert_eq!(
        net.sh(&peer, &format!("ping -c 1 -W 2 {web6} >/dev/null")),
        0,
        "v6 ping"
    );
    let gw = net.gateway(&peer);
    let (_, aaaa) = Net::resolve(&net.netns_of(&peer), gw, "web.", RecordType::AAAA);
    assert_eq!(aaaa, vec![web6.to_string()]);
    // enable_icc false: the two cannot talk on `quiet`, but on `six` they can.
    let quiet_web = net.addr(&web, "quiet");
    assert_ne!(
        net.sh(&peer, &format!("ping -c 1 -W 1 {quiet_web} >/dev/null")),
        0,
        "icc off"
    );
    assert_eq!(
        net.sh(&peer, &format!("ping -c 1 -W 2 {web_v4} >/dev/null")),
        0
    );
    // network_mode service:web: the same namespace, web's server on localhost.
    let side = net.run(&p, "side", 1).unwrap();
    assert_eq!(
        net.sh(
            &side,
            "timeout 3 wget -q -O - http://127.0.0.1/ | grep -q web"
        ),
        0
    );
    // /etc files: own names, extra hosts with host-gateway, the resolver and search.
    let gateway = net.gateway(&web);
    assert_eq!(
        net.sh(&web, &format!("grep -q '{web_v4}.*front' /etc/hosts")),
        0
    );
    assert_eq!(
        net.sh(
            &web,
            &format!("grep -q '{gateway}.*gw.internal' /etc/hosts")
        ),
        0
    );
    assert_eq!(
        net.sh(&web, "grep -q '192.0.2.7.*db.example' /etc/hosts"),
        0
    );
    assert_eq!(
        net.sh(
            &web,
            &format!("grep -q '^nameserver {gateway}$' /etc/resolv.conf")
        ),
        0
    );
    assert_eq!(
        net.sh(&web, "grep -q '^search example.test' /etc/resolv.conf"),
        0
    );
    // An external network that does not exist: a clear error, nothing made.
    let ext = net.project("services:\n  x:\n    image: IMAGE\n    networks: [outer]\nnetworks:\n  outer:\n    external: true\n    name: nosuchnet\n");
    let err = net.up(&ext).unwrap_err();
    assert!(
        err.contains("\"nosuchnet\" is declared as external, but it does not exist"),
        "{err}"
    );
    net.finish();
}

#[test]
fn wharf_down_removes_everything_of_the_project_from_the_state_alone() {
    if !is_root("wharf_down_removes_everything_of_the_project_from_the_state_alone") {
        return;
    }
    let mut net = Net::new("down");
    let p = net.project(&format!(
        "services:\n  web:\n    image: IMAGE\n    command: {web}\n    ports: [\"8080:80\"]\n    volumes: [data:/data]\n  db:\n    image: IMAGE\n    command: [sleep, \"1000\"]\n    networks: [back]\nnetworks:\n  back: {{}}\nvolumes:\n  data: {{}}\n",
        web = httpd("web")
    ));
    net.up(&p).unwrap();
    let volume = net
        .host
        .root()
        .join("volumes")
        .join(format!("{}_data", net.host.project_name()));
    assert!(volume.exists());
    // `wharf down -v` in the "host": with the Compose file, so -v knows the volume.
    let down = |args: &[&str]| {
        Command::new("nsenter")
            .arg(format!("--net={}", net.hostns.display()))
            .arg(env!("CARGO_BIN_EXE_wharf"))
            .env("WHARF_ROOT", net.host.root())
            .arg("-f")
            .arg(net.host.root().join("project/compose.yaml"))
            .args(["-p", net.host.project_name(), "down"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = down(&["-v", "-t", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with(" Network ") && l.ends_with("  Removed")),
        "{err}"
    );
    assert!(!volume.exists(), "the volume is left");
    assert!(net.nets.sandboxes().unwrap().is_empty());
    assert!(net.nets.networks().unwrap().is_empty());
    // Again: nothing to do, still success.
    let again = down(&[]);
    assert_eq!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing to remove"));
    // Up again, then down with no Compose file at all: `-p` and the state suffice.
    net.containers.clear();
    net.up(&p).unwrap();
    let nowhere = tempfile::tempdir().unwrap();
    let out = Command::new("nsenter")
        .arg(format!("--net={}", net.hostns.display()))
        .arg(env!("CARGO_BIN_EXE_wharf"))
        .current_dir(nowhere.path())
        .env("WHARF_ROOT", net.host.root())
        .args(["-p", net.host.project_name(), "down", "-v"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("they are kept"), "{err}");
    assert!(
        volume.exists(),
        "-v without the file must not guess volumes"
    );
    assert!(net.nets.networks().unwrap().is_empty());
    // The harness checks that no process, cgroup, mount, link, rule or responder is left.
    net.host.forget_containers();
    net.containers.clear();
    net.networks.clear();
    net.finish();
}
