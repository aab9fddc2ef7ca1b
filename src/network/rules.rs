//! The nftables rules of a project, pure: published ports (DNAT), masquerade and forwarding
//! isolation, as the text of an `nft -f` script.
//!
//! Everything lives in wharf's own table, `inet wharf`, so one ruleset covers IPv4 and IPv6
//! and nothing outside the table is touched. Each project owns four chains named
//! `<kind>_<12 hex digits of SHA-256 over the project name>`: `pre_` (DNAT of published
//! ports arriving from outside), `out_` (DNAT of published ports the host itself connects
//! to), `post_` (masquerade) and `fwd_` (isolation).
//!
//! The project chains are *base chains* hooked directly into netfilter, not regular chains
//! reached by `jump` rules from shared base chains. A `jump` rule can only be deleted by its
//! handle, which a script written without reading the host cannot know, and appending it
//! again on every `up` would stack duplicates. Base chains of their own make both scripts
//! idempotent and handle-free: [`project_ruleset`] is `add chain` (a no-op when the chain
//! exists) + `flush chain` + the rules, [`delete_project`] is `add` + `flush` + `delete`
//! of the project's chains, each applied atomically by `nft -f`. The price is that an
//! `accept` in one project's chain does not skip another's; the forward rules are written
//! so that does not matter (each project only ever drops traffic touching its own bridges,
//! and accepting is the default).
//!
//! Forwarding model, per bridge `B` of the project, in this order:
//! - replies (`ct state established,related`) are accepted;
//! - `B` to `B` is accepted, or dropped with `icc: false`;
//! - anything else entering `B` is accepted only when it was DNATed to a published port
//!   (`ct status dnat`) and `B` is not internal, else dropped: this drops traffic from every
//!   other bridge, wharf's or not, and from outside, whatever the bridge is called;
//! - anything leaving an internal `B` for another interface is dropped; leaving a
//!   non-internal `B` is accepted.
//!
//! Ports of an internal network are not published (as in Docker): it has no way in or out.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::net::IpAddr;

use sha2::{Digest, Sha256};

use super::ipam::Subnet;

/// wharf's nftables table, in family `inet`.
pub const TABLE: &str = "wharf";

/// Transport protocol of a published port.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// One published port, ranges already expanded by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PublishedPort {
    /// The host address that answers; `None` or an unspecified address (`0.0.0.0`, `::`)
    /// means every local address of the container address's family.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_ip: IpAddr,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl PublishedPort {
    /// The specific host address, if any (an unspecified address counts as none).
    fn specific_host_ip(&self) -> Option<IpAddr> {
        self.host_ip.filter(|ip| !ip.is_unspecified())
    }
}

impl fmt::Display for PublishedPort {
    /// As in a Compose file: `127.0.0.1:8080->80/tcp`, `[::1]:53->53/udp`, `8080->80/tcp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V4(ip)) => write!(f, "{ip}:")?,
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
            None => {}
        }
        write!(
            f,
            "{}->{}/{}",
            self.host_port, self.container_port, self.protocol
        )
    }
}

/// What the rules need to know about one network of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    pub project: String,
    /// The network's key in the Compose file (for comments).
    pub network: String,
    /// The bridge interface ([`super::names::resolve_bridge_name`]).
    pub bridge: String,
    pub subnet: Subnet,
    pub internal: bool,
    /// Inter-container communication on the bridge (`enable_icc`, default true).
    pub icc: bool,
    pub ports: Vec<PublishedPort>,
}

/// Published ports that cannot all be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("host port {port} is published twice: as {first} and as {second}")]
    PortClash {
        port: String,
        first: PublishedPort,
        second: PublishedPort,
    },
    #[error(
        "published port {0}: the host address and the container address are of different IP families"
    )]
    FamilyMismatch(PublishedPort),
}

/// Refuses a host port that is published twice for the same protocol on overlapping host
/// addresses (the same address, or any address against a specific one of its family), and a
/// host address whose family is not the container address's.
pub fn check_ports(ports: &[PublishedPort]) -> Result<(), RulesError> {
    let mut seen: BTreeMap<(u16, Protocol), Vec<&PublishedPort>> = BTreeMap::new();
    for port in ports {
        if let Some(host) = port.host_ip
            && host.is_ipv4() != port.container_ip.is_ipv4()
        {
            return Err(RulesError::FamilyMismatch(*port));
        }
        let earlier = seen.entry((port.host_port, port.protocol)).or_default();
        if let Some(first) = earlier.iter().find(|first| host_overlap(first, port)) {
            return Err(RulesError::PortClash {
                port: format!("{}/{}", port.host_port, port.protocol),
                first: **first,
                second: *port,
            });
        }
        earlier.push(port);
    }
    Ok(())
}

/// Whether two ports of the same number and protocol answer on a common host address.
fn host_overlap(a: &PublishedPort, b: &PublishedPort) -> bool {
    if a.container_ip.is_ipv4() != b.container_ip.is_ipv4() {
        return false;
    }
    match (a.specific_host_ip(), b.specific_host_ip()) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

/// The chain of `kind` (`pre`, `out`, `post`, `fwd`) for `project`.
pub fn chain_name(kind: &str, project: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update((project.len() as u64).to_be_bytes());
    hasher.update(project.as_bytes());
    let digest = hex::encode(hasher.finalize());
    format!("{kind}_{}", &digest[..12])
}

/// The project's chains and their base-chain specifications.
fn chains(project: &str) -> [(String, &'static str); 4] {
    [
        (
            chain_name("pre", project),
            "type nat hook prerouting priority dstnat; policy accept;",
        ),
        (
            chain_name("out", project),
            "type nat hook output priority -100; policy accept;",
        ),
        (
            chain_name("post", project),
            "type nat hook postrouting priority srcnat; policy accept;",
        ),
        (
            chain_name("fwd", project),
            "type filter hook forward priority filter; policy accept;",
        ),
    ]
}

/// The `nft -f` script that (re)creates `project`'s chains from `networks`, leaving every
/// other project's chains and every other table alone. The caller runs [`check_ports`]
/// first; this only writes text.
pub fn project_ruleset(project: &str, networks: &[NetworkRules]) -> String {
    let [(pre, _), (out, _), (post, _), (fwd, _)] = chains(project);
    let mut s = String::new();
    let _ = writeln!(s, "# wharf project {project:?}");
    let _ = writeln!(s, "table inet {TABLE} {{}}");
    for (chain, spec) in chains(project) {
        let _ = writeln!(s, "add chain inet {TABLE} {chain} {{ {spec} }}");
        let _ = writeln!(s, "flush chain inet {TABLE} {chain}");
    }

    // Published ports. `prerouting` catches connections from outside and from containers
    // (hairpin through a host address); `output` catches the host's own, including to
    // 127.0.0.1. A loopback destination DNATed to a container leaves through the bridge
    // with a 127.x source, which the kernel drops as martian unless
    // `net.ipv4.conf.<bridge>.route_localnet=1` is set on the bridge (the link layer sets
    // it); the `post_` chain then masquerades that source to the bridge address so the
    // container can answer. IPv6 has no `route_localnet`: `::1` is left out, and reaching a
    // port on `[::1]` would need a proxy.
    for net in networks.iter().filter(|net| !net.internal) {
        for port in &net.ports {
            let Some(rule) = dnat_rule(port) else {
                continue;
            };
            let comment = format!("{} {port}", net.network);
            let _ = writeln!(s, "add rule inet {TABLE} {pre} {rule} comment {comment:?}");
            let _ = writeln!(s, "add rule inet {TABLE} {out} {rule} comment {comment:?}");
        }
    }

    // Masquerade.
    for net in networks.iter().filter(|net| !net.internal) {
        let (fam, bridge, subnet) = (family(net.subnet.addr()), &net.bridge, net.subnet);
        if net.subnet.is_ipv4() && net.ports.iter().any(|p| p.container_ip.is_ipv4()) {
            let _ = writeln!(
                s,
                "add rule inet {TABLE} {post} oifname {bridge:?} ip saddr 127.0.0.0/8 masquerade comment \"{} loopback to published port\"",
                net.network
            );
        }
        if !net.ports.is_empty() {
            // Hairpin: a container reaching a published port of its own bridge through a
            // host address; without it the reply would be bridged straight back, un-NATed.
            let _ = writeln!(
                s,
                "add rule inet {TABLE} {post} oifname {bridge:?} {fam} saddr {subnet} ct status dnat masquerade comment \"{} hairpin\"",
                net.network
            );
        }
        let _ = writeln!(
            s,
            "add rule inet {TABLE} {post} {fam} saddr {subnet} oifname != {bridge:?} masquerade comment \"{} egress\"",
            net.network
        );
    }

    // Forwarding.
    let _ = writeln!(
        s,
        "add rule inet {TABLE} {fwd} ct state established,related accept"
    );
    for net in networks {
        let (bridge, name) = (&net.bridge, &net.network);
        let icc = if net.icc { "accept" } else { "drop" };
        let _ = writeln!(
            s,
            "add rule inet {TABLE} {fwd} iifname {bridge:?} oifname {bridge:?} {icc} comment \"{name} icc\""
        );
        if !net.internal {
            let _ = writeln!(
                s,
                "add rule inet {TABLE} {fwd} oifname {bridge:?} ct status dnat accept comment \"{name} published ports\""
            );
        }
        let _ = writeln!(
            s,
            "add rule inet {TABLE} {fwd} oifname {bridge:?} drop comment \"{name} no other way in\""
        );
        let out = if net.internal { "drop" } else { "accept" };
        let _ = writeln!(
            s,
            "add rule inet {TABLE} {fwd} iifname {bridge:?} {out} comment \"{name} way out\""
        );
    }
    s
}

/// The DNAT rule body for `port`, or `None` when no host address can reach it (an IPv6
/// port bound to `::1` only).
fn dnat_rule(port: &PublishedPort) -> Option<String> {
    let fam = family(port.container_ip);
    let daddr = match port.specific_host_ip() {
        Some(ip) if ip.is_loopback() && ip.is_ipv6() => return None,
        Some(ip) => format!("{fam} daddr {ip}"),
        None if port.container_ip.is_ipv6() => {
            "meta nfproto ipv6 ip6 daddr != ::1 fib daddr type local".to_string()
        }
        None => "meta nfproto ipv4 fib daddr type local".to_string(),
    };
    let to = match port.container_ip {
        IpAddr::V4(ip) => format!("{ip}:{}", port.container_port),
        IpAddr::V6(ip) => format!("[{ip}]:{}", port.container_port),
    };
    Some(format!(
        "{daddr} {proto} dport {hp} dnat {fam} to {to}",
        proto = port.protocol,
        hp = port.host_port
    ))
}

/// The nftables address match keyword of `ip`'s family.
fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "ip" } else { "ip6" }
}

/// The `nft -f` script that removes `project`'s chains and their rules, and nothing else.
/// It succeeds whether or not the chains exist (each is added first, as a no-op if it does).
pub fn delete_project(project: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# wharf project {project:?}: remove");
    let _ = writeln!(s, "table inet {TABLE} {{}}");
    for (chain, spec) in chains(project) {
        let _ = writeln!(s, "add chain inet {TABLE} {chain} {{ {spec} }}");
        let _ = writeln!(s, "flush chain inet {TABLE} {chain}");
        let _ = writeln!(s, "delete chain inet {TABLE} {chain}");
    }
    s
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn port(host_ip: Option<&str>, host_port: u16, protocol: Protocol) -> PublishedPort {
        PublishedPort {
            host_ip: host_ip.map(ip),
            host_port,
            container_ip: ip("172.18.0.2"),
            container_port: 80,
            protocol,
        }
    }

    fn networks() -> Vec<NetworkRules> {
        vec![
            NetworkRules {
                project: "shop".into(),
                network: "front".into(),
                bridge: "whb0123456789ab".into(),
                subnet: "172.18.0.0/16".parse().unwrap(),
                internal: false,
                icc: true,
                ports: vec![
                    PublishedPort {
                        host_ip: None,
                        host_port: 8080,
                        container_ip: ip("172.18.0.2"),
                        container_port: 80,
                        protocol: Protocol::Tcp,
                    },
                    PublishedPort {
                        host_ip: Some(ip("127.0.0.1")),
                        host_port: 5353,
                        container_ip: ip("172.18.0.3"),
                        container_port: 53,
                        protocol: Protocol::Udp,
                    },
                ],
            },
            NetworkRules {
                project: "shop".into(),
                network: "v6".into(),
                bridge: "whbaaaaaaaaaaaa".into(),
                subnet: "fd00:1::/64".parse().unwrap(),
                internal: false,
                icc: false,
                ports: vec![PublishedPort {
                    host_ip: None,
                    host_port: 8443,
                    container_ip: ip("fd00:1::2"),
                    container_port: 443,
                    protocol: Protocol::Tcp,
                }],
            },
            NetworkRules {
                project: "shop".into(),
                network: "back".into(),
                bridge: "whbfedcba987654".into(),
                subnet: "172.19.0.0/16".parse().unwrap(),
                internal: true,
                icc: true,
                ports: vec![PublishedPort {
                    host_ip: None,
                    host_port: 5432,
                    container_ip: ip("172.19.0.2"),
                    container_port: 5432,
                    protocol: Protocol::Tcp,
                }],
            },
        ]
    }

    #[test]
    fn ruleset_snapshot() {
        insta::assert_snapshot!("ruleset", project_ruleset("shop", &networks()));
    }

    #[test]
    fn delete_snapshot() {
        insta::assert_snapshot!("delete", delete_project("shop"));
    }

    #[test]
    fn chains_differ_per_project_and_fit() {
        assert_ne!(chain_name("pre", "a"), chain_name("pre", "b"));
        assert_eq!(chain_name("fwd", "x").len(), 16);
        let other = project_ruleset("other", &[]);
        for (chain, _) in chains("shop") {
            assert!(!other.contains(&chain));
        }
    }

    #[test]
    fn internal_ports_are_not_published() {
        let script = project_ruleset("shop", &networks());
        assert!(!script.contains("5432"));
        assert!(script.contains("\"whbfedcba987654\" drop comment \"back way out\""));
    }

    #[test]
    fn ipv6_loopback_only_port_has_no_dnat() {
        let p = PublishedPort {
            host_ip: Some(ip("::1")),
            container_ip: ip("fd00::2"),
            ..port(None, 80, Protocol::Tcp)
        };
        assert_eq!(dnat_rule(&p), None);
    }

    #[test]
    fn distinct_ports_pass() {
        let ports = [
            port(None, 80, Protocol::Tcp),
            port(None, 80, Protocol::Udp),
            port(Some("127.0.0.1"), 81, Protocol::Tcp),
            port(Some("127.0.0.2"), 81, Protocol::Tcp),
            PublishedPort {
                container_ip: ip("fd00::2"),
                ..port(None, 80, Protocol::Tcp)
            },
        ];
        assert_eq!(check_ports(&ports), Ok(()));
    }

    #[test]
    fn same_port_twice_clashes() {
        let err = check_ports(&[port(None, 80, Protocol::Tcp), port(None, 80, Protocol::Tcp)])
            .unwrap_err();
        assert!(matches!(err, RulesError::PortClash { ref port, .. } if port == "80/tcp"));
        assert_eq!(
            err.to_string(),
            "host port 80/tcp is published twice: as 80->80/tcp and as 80->80/tcp"
        );
    }

    #[test]
    fn any_address_clashes_with_specific() {
        for (a, b) in [
            (Some("0.0.0.0"), Some("127.0.0.1")),
            (Some("127.0.0.1"), None),
            (Some("10.0.0.1"), Some("10.0.0.1")),
        ] {
            let err =
                check_ports(&[port(a, 53, Protocol::Udp), port(b, 53, Protocol::Udp)]).unwrap_err();
            assert!(err.to_string().contains("53/udp"), "{err}");
        }
    }

    #[test]
    fn family_mismatch_is_refused() {
        let p = port(Some("::1"), 80, Protocol::Tcp);
        assert_eq!(check_ports(&[p]), Err(RulesError::FamilyMismatch(p)));
    }

    /// `nft -c` parses and validates the scripts against the kernel without changing
    /// anything. Needs root and `nft`; skipped (loudly) otherwise.
    #[test]
    fn nft_accepts_scripts() {
        let root = std::fs::read_to_string("/proc/self/status")
            .map(|s| s.lines().any(|l| l.starts_with("Uid:\t0\t")))
            .unwrap_or(false);
        let nft = Command::new("nft").arg("--version").output().is_ok();
        if !root || !nft {
            eprintln!("SKIPPED nft_accepts_scripts: needs root and `nft` (root={root}, nft={nft})");
            return;
        }
        for script in [project_ruleset("shop", &networks()), delete_project("shop")] {
            let mut child = Command::new("nft")
                .args(["-c", "-f", "-"])
                .stdin(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(script.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "nft -c rejected:\n{script}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
