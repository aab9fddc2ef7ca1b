//! The netlink layer against the real kernel (root only). Each test pins its own network
//! namespace as "the host" and more as "containers", all under a tempdir, and runs its body
//! in the host namespace through `netns::run_in`, so the real host's links are never touched;
//! `Lab::finish` asserts that nothing is left (no pinned namespace, no mount under the
//! tempdir) and that the real host's links are the same as before. Traffic only ever goes to
//! addresses inside these namespaces.

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use wharf::network::ipam::Subnet;
use wharf::network::netlink::{self, Attachment, BridgeSpec, NetlinkError};
use wharf::network::netns::{self, NetnsError};

use crate::runtime::is_root;

struct Lab {
    dir: tempfile::TempDir,
    host: PathBuf,
    namespaces: Vec<PathBuf>,
    host_links: BTreeSet<String>,
}

impl Lab {
    fn new() -> Lab {
        let host_links = real_host_links();
        let dir = tempfile::Builder::new()
            .prefix("wharf-netlink-")
            .tempdir()
            .unwrap();
        let host = dir.path().join("host");
        netns::create(&host).unwrap();
        Lab {
            dir,
            namespaces: vec![host.clone()],
            host,
            host_links,
        }
    }

    fn netns(&mut self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        netns::create(&path).unwrap();
        self.namespaces.push(path.clone());
        path
    }

    /// Runs `f` in the lab's host namespace; a panic inside fails the test.
    fn in_host<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        netns::run_in(&self.host, f).expect("the test body failed in the host namespace")
    }

    fn finish(mut self) {
        for path in std::mem::take(&mut self.namespaces) {
            netns::remove(&path).unwrap();
            assert!(!path.exists(), "{} left behind", path.display());
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let dir = self.dir.path().to_string_lossy().to_string();
        assert!(
            !mounts.lines().any(|line| line.contains(&dir)),
            "mounts left under {dir}:\n{mounts}"
        );
        assert_eq!(
            real_host_links(),
            self.host_links,
            "the real host's links changed"
        );
    }
}

impl Drop for Lab {
    /// On a failed test: still unpin what was pinned.
    fn drop(&mut self) {
        for path in &self.namespaces {
            let _ = netns::remove(path);
        }
    }
}

/// The link names of the real host (the test process's own namespace).
fn real_host_links() -> BTreeSet<String> {
    ip_json(None, &["link", "show"])
        .as_array()
        .unwrap()
        .iter()
        .map(|link| link["ifname"].as_str().unwrap().to_string())
        .collect()
}

/// `ip -j ARGS`, inside the namespace pinned at `ns` when given.
fn ip_json(ns: Option<&Path>, args: &[&str]) -> Value {
    let mut command = match ns {
        Some(ns) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net={}", ns.display())).arg("ip");
            c
        }
        None => Command::new("ip"),
    };
    let out = command.arg("-j").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn link_names(ns: &Path) -> Vec<String> {
    ip_json(Some(ns), &["link", "show"])
        .as_array()
        .unwrap()
        .iter()
        .map(|link| link["ifname"].as_str().unwrap().to_string())
        .collect()
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn attachment(host_name: &str, bridge: &str, netns: &Path, ifname: &str) -> Attachment {
    Attachment {
        host_name: host_name.into(),
        bridge: bridge.into(),
        netns: netns.to_path_buf(),
        ifname: ifname.into(),
        mac: None,
        mtu: None,
        addresses: vec![],
        gateway4: None,
        gateway6: None,
        isolated: false,
    }
}

/// A listener inside `ns` (sockets stay in the namespace they were made in).
fn listen(ns: &Path, addr: IpAddr) -> TcpListener {
    netns::run_in(ns, || TcpListener::bind(SocketAddr::new(addr, 0)))
        .unwrap()
        .unwrap()
}

/// Connects from inside `ns` to `listener`, and checks a byte makes the round trip.
fn connect(ns: &Path, listener: &TcpListener) -> std::io::Result<()> {
    let target = listener.local_addr().unwrap();
    thread::scope(|s| {
        // A non-blocking accept with a deadline, so a failed connect cannot hang the test.
        let server = s.spawn(|| -> std::io::Result<()> {
            listener.set_nonblocking(true)?;
            let deadline = Instant::now() + Duration::from_secs(3);
            let mut conn = loop {
                match listener.accept() {
                    Ok((conn, _)) => break conn,
                    Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                        thread::sleep(Duration::from_millis(5))
                    }
                    Err(e) => return Err(e),
                }
            };
            conn.set_nonblocking(false)?;
            let mut byte = [0u8; 1];
            conn.read_exact(&mut byte)?;
            conn.write_all(&byte)
        });
        let client = netns::run_in(ns, || -> std::io::Result<()> {
            let mut conn = TcpStream::connect_timeout(&target, Duration::from_millis(1500))?;
            conn.set_read_timeout(Some(Duration::from_secs(2)))?;
            conn.write_all(b"w")?;
            let mut byte = [0u8; 1];
            conn.read_exact(&mut byte)?;
            assert_eq!(&byte, b"w");
            Ok(())
        })
        .unwrap();
        let served = server.join().unwrap();
        client.and(served)
    })
}

#[test]
fn bridge_attach_connect_detach() {
    if !is_root("bridge_attach_connect_detach") {
        return;
    }
    let mut lab = Lab::new();
    let (a, b) = (lab.netns("a"), lab.netns("b"));
    let host = lab.host.clone();
    lab.in_host(|| {
        let spec = BridgeSpec {
            name: "whbt0".into(),
            mtu: Some(1400),
            addresses: vec![(ip("10.89.0.1"), 24), (ip("fd89::1"), 64)],
        };
        let index = netlink::ensure_bridge(&spec).unwrap();
        assert_eq!(netlink::ensure_bridge(&spec).unwrap(), index, "adopted");
        let internal = BridgeSpec {
            name: "whbt1".into(),
            mtu: None,
            addresses: vec![(ip("10.90.0.1"), 24)],
        };
        netlink::ensure_bridge(&internal).unwrap();

        let mac = [0x02, 0x42, 10, 89, 0, 2];
        netlink::attach(&Attachment {
            mac: Some(mac),
            addresses: vec![(ip("10.89.0.2"), 24), (ip("fd89::2"), 64)],
            gateway4: Some(v4("10.89.0.1")),
            gateway6: Some(v6("fd89::1")),
            ..attachment("whvta0", "whbt0", &a, "eth0")
        })
        .unwrap();
        let b0 = Attachment {
            addresses: vec![(ip("10.89.0.3"), 24), (ip("fd89::3"), 64)],
            gateway4: Some(v4("10.89.0.1")),
            gateway6: Some(v6("fd89::1")),
            ..attachment("whvtb0", "whbt0", &b, "eth0")
        };
        netlink::attach(&b0).unwrap();
        netlink::attach(&Attachment {
            addresses: vec![(ip("10.90.0.3"), 24)],
            ..attachment("whvtb1", "whbt1", &b, "eth1")
        })
        .unwrap();

        // The bridge: MTU 1400 survives ports of 1500 joining, both addresses, up.
        let br = &ip_json(Some(&host), &["addr", "show", "dev", "whbt0"])[0];
        assert_eq!(br["mtu"], 1400, "{br}");
        assert_eq!(br["ifindex"], index);
        assert!(
            br["flags"].as_array().unwrap().contains(&"UP".into()),
            "{br}"
        );
        let addrs: Vec<String> = br["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
            .collect();
        assert!(addrs.contains(&"10.89.0.1/24".into()), "{addrs:?}");
        assert!(addrs.contains(&"fd89::1/64".into()), "{addrs:?}");
        // The host ends are ports of the right bridges.
        let port = &ip_json(Some(&host), &["link", "show", "dev", "whvtb1"])[0];
        assert_eq!(port["master"], "whbt1", "{port}");

        // Containers: interface names, MAC, routes.
        assert_eq!(link_names(&a), ["lo", "eth0"]);
        assert_eq!(link_names(&b), ["lo", "eth0", "eth1"]);
        let eth0 = &ip_json(Some(&a), &["link", "show", "dev", "eth0"])[0];
        assert_eq!(eth0["address"], "02:42:0a:59:00:02", "{eth0}");
        let default4 = ip_json(Some(&b), &["-4", "route", "show", "default"]);
        assert_eq!(default4.as_array().unwrap().len(), 1, "{default4}");
        assert_eq!(default4[0]["gateway"], "10.89.0.1");
        assert_eq!(default4[0]["dev"], "eth0");
        let default6 = ip_json(Some(&b), &["-6", "route", "show", "default"]);
        assert_eq!(default6[0]["gateway"], "fd89::1", "{default6}");
        assert_eq!(default6[0]["dev"], "eth0");

        // Traffic between the two containers, IPv4 and IPv6 (usable at once: no DAD), and
        // from a container to the gateway.
        connect(&b, &listen(&a, ip("10.89.0.2"))).unwrap();
        connect(&b, &listen(&a, ip("fd89::2"))).unwrap();
        connect(&a, &listen(&host, ip("10.89.0.1"))).unwrap();

        // What IPAM must avoid.
        let subnets = netlink::host_subnets().unwrap();
        for s in ["10.89.0.0/24", "fd89::/64", "10.90.0.0/24"] {
            assert!(
                subnets.contains(&s.parse::<Subnet>().unwrap()),
                "{s} not in {subnets:?}"
            );
        }
        assert!(!subnets.iter().any(|s| s.prefix() == 0), "{subnets:?}");

        // Attaching again is refused and leaves the working attachment alone.
        let again = netlink::attach(&b0).unwrap_err();
        assert_eq!(again.errno(), Some(libc::EEXIST), "{again}");
        assert!(netlink::link_exists("whvtb0").unwrap());
        connect(&b, &listen(&a, ip("10.89.0.2"))).unwrap();

        // Detach: the pair goes, on both sides; idempotent.
        assert!(netlink::detach("whvta0").unwrap());
        assert!(!netlink::detach("whvta0").unwrap());
        assert!(!netlink::link_exists("whvta0").unwrap());
        assert_eq!(link_names(&a), ["lo"]);
        assert!(netlink::detach("whvtb0").unwrap());
        assert!(netlink::detach("whvtb1").unwrap());
        assert_eq!(link_names(&b), ["lo"]);

        for bridge in ["whbt0", "whbt1"] {
            assert!(netlink::delete_link(bridge).unwrap());
            assert!(!netlink::delete_link(bridge).unwrap());
        }
        assert_eq!(link_names(&host), ["lo"]);
    });
    lab.finish();
}

#[test]
fn isolated_ports_reach_the_gateway_only() {
    if !is_root("isolated_ports_reach_the_gateway_only") {
        return;
    }
    let mut lab = Lab::new();
    let (a, b) = (lab.netns("a"), lab.netns("b"));
    let host = lab.host.clone();
    lab.in_host(|| {
        netlink::ensure_bridge(&BridgeSpec {
            name: "whbi0".into(),
            mtu: None,
            addresses: vec![(ip("10.91.0.1"), 24)],
        })
        .unwrap();
        for (name, ns, addr) in [("whvia", &a, "10.91.0.2"), ("whvib", &b, "10.91.0.3")] {
            netlink::attach(&Attachment {
                addresses: vec![(ip(addr), 24)],
                gateway4: Some(v4("10.91.0.1")),
                isolated: true,
                ..attachment(name, "whbi0", ns, "eth0")
            })
            .unwrap();
        }
        let port = &ip_json(Some(&host), &["-d", "link", "show", "dev", "whvia"])[0];
        assert_eq!(
            port["linkinfo"]["info_slave_data"]["isolated"], true,
            "{port}"
        );
        assert!(
            port["flags"].as_array().unwrap().contains(&"UP".into()),
            "{port}"
        );

        let gateway = listen(&host, ip("10.91.0.1"));
        connect(&a, &gateway).unwrap();
        connect(&b, &gateway).unwrap();
        let err = connect(&b, &listen(&a, ip("10.91.0.2"))).unwrap_err();
        eprintln!("isolated a -> b, as expected: {err}");

        assert!(netlink::delete_link("whbi0").unwrap());
        // Deleting the bridge frees its ports but does not delete them.
        assert!(netlink::detach("whvia").unwrap());
        assert!(netlink::detach("whvib").unwrap());
        assert_eq!(link_names(&host), ["lo"]);
    });
    lab.finish();
}

#[test]
fn failed_attachments_leave_nothing() {
    if !is_root("failed_attachments_leave_nothing") {
        return;
    }
    let mut lab = Lab::new();
    let c = lab.netns("c");
    let host = lab.host.clone();
    lab.in_host(|| {
        // No such bridge: nothing is created.
        let e = netlink::attach(&attachment("whvf0", "whbnone", &c, "eth0")).unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENODEV), "{e}");
        assert!(
            e.to_string().starts_with("whbnone: looking up the bridge"),
            "{e}"
        );

        netlink::ensure_bridge(&BridgeSpec {
            name: "whbf0".into(),
            mtu: None,
            addresses: vec![(ip("10.92.0.1"), 24)],
        })
        .unwrap();
        // A gateway outside every subnet of the container: the route fails after the pair
        // exists, and the pair is removed.
        let e = netlink::attach(&Attachment {
            addresses: vec![(ip("10.92.0.2"), 24)],
            gateway4: Some(v4("10.99.0.1")),
            ..attachment("whvf0", "whbf0", &c, "eth0")
        })
        .unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENETUNREACH), "{e}");
        assert!(e.to_string().contains("eth0 in "), "{e}");
        assert!(e.to_string().contains("default route via 10.99.0.1"), "{e}");
        assert!(!netlink::link_exists("whvf0").unwrap());
        assert_eq!(link_names(&c), ["lo"]);

        // A missing namespace file: nothing is created.
        let e = netlink::attach(&attachment(
            "whvf0",
            "whbf0",
            Path::new("/nonexistent/ns"),
            "eth0",
        ))
        .unwrap_err();
        assert!(matches!(e, NetlinkError::Netns { .. }), "{e}");
        assert!(!netlink::link_exists("whvf0").unwrap());

        // A link that is not a bridge is not adopted.
        netlink::attach(&attachment("whvf1", "whbf0", &c, "eth0")).unwrap();
        let e = netlink::ensure_bridge(&BridgeSpec {
            name: "whvf1".into(),
            mtu: None,
            addresses: vec![],
        })
        .unwrap_err();
        assert!(matches!(e, NetlinkError::NotABridge { .. }), "{e}");
        assert!(netlink::detach("whvf1").unwrap());

        assert!(netlink::delete_link("whbf0").unwrap());
        assert!(!netlink::delete_link("whbf0").unwrap());
        assert!(!netlink::link_exists("whbf0").unwrap());
        assert_eq!(link_names(&host), ["lo"]);
    });
    lab.finish();
}

#[test]
fn pinned_namespaces_are_created_entered_and_removed() {
    if !is_root("pinned_namespaces_are_created_entered_and_removed") {
        return;
    }
    let lab = Lab::new();
    let path = lab.dir.path().join("pinned");
    netns::create(&path).unwrap();
    assert!(netns::is_pinned(&path));
    assert!(matches!(netns::create(&path), Err(NetnsError::Exists(_))));
    // lo is up inside, and only lo is there.
    let lo = &ip_json(Some(&path), &["link", "show"]);
    assert_eq!(lo.as_array().unwrap().len(), 1, "{lo}");
    assert!(
        lo[0]["flags"].as_array().unwrap().contains(&"UP".into()),
        "{lo}"
    );
    // run_in really is inside: loopback works there, and the real host's links are not seen.
    connect(&path, &listen(&path, ip("127.0.0.1"))).unwrap();
    for link in lab.host_links.iter().filter(|l| *l != "lo") {
        assert!(
            !netns::run_in(&path, || netlink::link_exists(link))
                .unwrap()
                .unwrap()
        );
    }
    assert_eq!(netns::run_in(&path, || 7).unwrap(), 7);

    netns::remove(&path).unwrap();
    assert!(!path.exists());
    netns::remove(&path).unwrap();
    assert!(matches!(
        netns::run_in(&path, || ()),
        Err(NetnsError::Io { .. })
    ));
    lab.finish();
}
