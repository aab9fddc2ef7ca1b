//! Published ports: from a service's `ports` (already in long form) to concrete host
//! bindings, checked against the host *before* anything changes.
//!
//! A port is published with DNAT rules ([`super::rules`]), which hold no socket: nothing in
//! the kernel would stop a second project, or any other program, from taking the same host
//! port afterwards, and nothing would tell the user why their connections go elsewhere. So
//! every host port is checked twice here: against every binding wharf already made (the
//! caller passes them in), and against the host by binding a socket to it for a moment —
//! a listener of any other program shows up as `EADDRINUSE`. A port requested without a
//! host port gets one from the kernel's ephemeral range the same way (bind to port 0).
//!
//! This module binds sockets only to probe; it never changes rules or links.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};

use crate::compose::model::ServicePort;

use super::rules::{Protocol, PublishedPort};

/// A published port that cannot be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("service {service:?}: ports[{index}]: {reason}")]
    Invalid {
        service: String,
        index: usize,
        reason: String,
    },
    #[error(
        "service {service:?}: host port {port} is already in use{by} — choose another port or stop what holds it"
    )]
    InUse {
        service: String,
        /// `127.0.0.1:8080/tcp`
        port: String,
        /// ` by project "x"` when wharf knows the holder, else empty.
        by: String,
    },
    #[error("service {service:?}: host address {addr} is not an address of this host")]
    NotLocal { service: String, addr: IpAddr },
    #[error("service {service:?}: no free host port for {port} in {range}")]
    NoneFree {
        service: String,
        port: String,
        range: String,
    },
}

/// One `ports` entry, parsed: the host side may be a range or absent (any free port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortRequest {
    pub host_ip: Option<IpAddr>,
    /// The host ports to choose from, inclusive; `None` for "any free port".
    pub host_ports: Option<(u16, u16)>,
    pub container_port: u16,
    pub protocol: Protocol,
}

/// A binding wharf already made, with its owner (for the message when it clashes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Held {
    pub project: String,
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub protocol: Protocol,
}

/// Parses `service`'s `ports`. Short-syntax ranges arrive already expanded to one entry per
/// port; a long-syntax `published: "8000-8010"` stays a range to pick one free port from.
pub fn requests(service: &str, ports: &[ServicePort]) -> Result<Vec<PortRequest>, PortError> {
    let invalid = |index: usize, reason: String| PortError::Invalid {
        service: service.to_string(),
        index,
        reason,
    };
    let mut out = Vec::with_capacity(ports.len());
    for (index, p) in ports.iter().enumerate() {
        let protocol = match p.protocol.to_ascii_lowercase().as_str() {
            "" | "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            other => {
                return Err(invalid(
                    index,
                    format!("protocol {other:?} is not supported (tcp or udp)"),
                ));
            }
        };
        if p.mode
            .as_deref()
            .is_some_and(|m| m != "ingress" && m != "host")
        {
            return Err(invalid(index, format!("unknown mode {:?}", p.mode)));
        }
        let host_ip = match p.host_ip.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(text) => Some(
                text.trim_matches(|c| c == '[' || c == ']')
                    .parse::<IpAddr>()
                    .map_err(|_| {
                        invalid(index, format!("host_ip {text:?} is not an IP address"))
                    })?,
            ),
        };
        let host_ports = match p.published.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(parse_range(text).ok_or_else(|| {
                invalid(
                    index,
                    format!("published {text:?} is not a port or a range of ports"),
                )
            })?),
        };
        if p.target == 0 {
            return Err(invalid(index, "target port 0".into()));
        }
        out.push(PortRequest {
            host_ip,
            host_ports,
            container_port: p.target,
            protocol,
        });
    }
    Ok(out)
}

/// `8080` or `8000-8010`, ports 1–65535, low ≤ high.
fn parse_range(text: &str) -> Option<(u16, u16)> {
    let (lo, hi) = match text.split_once('-') {
        Some((lo, hi)) => (
            lo.trim().parse::<u16>().ok()?,
            hi.trim().parse::<u16>().ok()?,
        ),
        None => {
            let p = text.parse::<u16>().ok()?;
            (p, p)
        }
    };
    (lo != 0 && lo <= hi).then_some((lo, hi))
}

/// What a probe found out about one host port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Free,
    Busy,
    /// The host address is not one of this host's.
    NotLocal,
}

/// How the host is probed; the real one binds sockets, tests can script answers.
pub trait Probe {
    /// Whether `host_ip:port` can be bound for `protocol` now.
    fn free(&self, host_ip: IpAddr, port: u16, protocol: Protocol) -> Availability;
    /// A port the kernel would hand out for `host_ip` (bind to port 0).
    fn ephemeral(&self, host_ip: IpAddr, protocol: Protocol) -> Option<u16>;
}

/// Probes by binding sockets in the caller's network namespace.
#[derive(Debug, Clone, Copy, Default)]
pub struct SocketProbe;

impl SocketProbe {
    fn bind(addr: SocketAddr, protocol: Protocol) -> std::io::Result<u16> {
        let local = match protocol {
            Protocol::Tcp => TcpListener::bind(addr)?.local_addr()?,
            Protocol::Udp => UdpSocket::bind(addr)?.local_addr()?,
        };
        Ok(local.port())
    }
}

impl Probe for SocketProbe {
    fn free(&self, host_ip: IpAddr, port: u16, protocol: Protocol) -> Availability {
        match Self::bind(SocketAddr::new(host_ip, port), protocol) {
            Ok(_) => Availability::Free,
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Availability::NotLocal,
            // EADDRINUSE, and EACCES for a port below 1024 without the capability: either
            // way it cannot be ours.
            Err(_) => Availability::Busy,
        }
    }

    fn ephemeral(&self, host_ip: IpAddr, protocol: Protocol) -> Option<u16> {
        Self::bind(SocketAddr::new(host_ip, 0), protocol).ok()
    }
}

/// Chooses the host port of each request of `service` for a container at `container_ip`,
/// refusing a port that is held by another binding of wharf (`held`), requested twice, or
/// in use on the host. Nothing is changed: the result is what the rules will publish.
pub fn bind(
    service: &str,
    requests: &[PortRequest],
    container_ip: IpAddr,
    held: &[Held],
    probe: &dyn Probe,
) -> Result<Vec<PublishedPort>, PortError> {
    let mut taken: Vec<Held> = held.to_vec();
    let mut out = Vec::with_capacity(requests.len());
    for r in requests {
        // An address of the other family than the container's cannot reach it.
        if r.host_ip
            .is_some_and(|ip| ip.is_ipv4() != container_ip.is_ipv4())
        {
            continue;
        }
        let probe_ip = r.host_ip.unwrap_or(if container_ip.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        });
        let label = |port: u16| match r.host_ip {
            Some(IpAddr::V6(ip)) => format!("[{ip}]:{port}/{}", r.protocol),
            Some(ip) => format!("{ip}:{port}/{}", r.protocol),
            None => format!("{port}/{}", r.protocol),
        };
        let clash = |port: u16, taken: &[Held]| {
            taken
                .iter()
                .find(|h| {
                    h.host_port == port
                        && h.protocol == r.protocol
                        && overlap(h.host_ip, r.host_ip, container_ip)
                })
                .cloned()
        };
        let usable = |port: u16, taken: &[Held]| -> Result<bool, PortError> {
            if clash(port, taken).is_some() {
                return Ok(false);
            }
            match probe.free(probe_ip, port, r.protocol) {
                Availability::Free => Ok(true),
                Availability::Busy => Ok(false),
                Availability::NotLocal => Err(PortError::NotLocal {
                    service: service.to_string(),
                    addr: probe_ip,
                }),
            }
        };
        let port = match r.host_ports {
            Some((lo, hi)) if lo == hi => {
                if let Some(h) = clash(lo, &taken) {
                    return Err(PortError::InUse {
                        service: service.to_string(),
                        port: label(lo),
                        by: format!(" by project {:?}", h.project),
                    });
                }
                if !usable(lo, &taken)? {
                    return Err(PortError::InUse {
                        service: service.to_string(),
                        port: label(lo),
                        by: String::new(),
                    });
                }
                lo
            }
            Some((lo, hi)) => {
                let mut found = None;
                for port in lo..=hi {
                    if usable(port, &taken)? {
                        found = Some(port);
                        break;
                    }
                }
                found.ok_or_else(|| PortError::NoneFree {
                    service: service.to_string(),
                    port: format!("{}/{}", r.container_port, r.protocol),
                    range: format!("{lo}-{hi}"),
                })?
            }
            None => {
                // The kernel's choice may collide with a DNAT-only binding of wharf, which
                // holds no socket; try again a few times.
                let mut found = None;
                for _ in 0..64 {
                    match probe.ephemeral(probe_ip, r.protocol) {
                        Some(port) if clash(port, &taken).is_none() => {
                            found = Some(port);
                            break;
                        }
                        Some(_) => continue,
                        None => {
                            return Err(PortError::NotLocal {
                                service: service.to_string(),
                                addr: probe_ip,
                            });
                        }
                    }
                }
                found.ok_or_else(|| PortError::NoneFree {
                    service: service.to_string(),
                    port: format!("{}/{}", r.container_port, r.protocol),
                    range: "the ephemeral range".into(),
                })?
            }
        };
        taken.push(Held {
            project: String::new(),
            host_ip: r.host_ip,
            host_port: port,
            protocol: r.protocol,
        });
        out.push(PublishedPort {
            host_ip: r.host_ip,
            host_port: port,
            container_ip,
            container_port: r.container_port,
            protocol: r.protocol,
        });
    }
    Ok(out)
}

/// Whether two bindings of the same port answer on a common address (for the container's
/// family: an unspecified or absent address means all of them).
fn overlap(a: Option<IpAddr>, b: Option<IpAddr>, container_ip: IpAddr) -> bool {
    let specific = |ip: Option<IpAddr>| ip.filter(|ip| !ip.is_unspecified());
    let family = |ip: Option<IpAddr>| ip.map_or(container_ip.is_ipv4(), |ip| ip.is_ipv4());
    if family(a) != family(b) {
        return false;
    }
    match (specific(a), specific(b)) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeSet;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn port(published: Option<&str>, target: u16, protocol: &str) -> ServicePort {
        ServicePort {
            target,
            published: published.map(String::from),
            protocol: protocol.into(),
            ..ServicePort::default()
        }
    }

    /// A host where the listed ports are busy and port 0 hands out 40000, 40001, …
    struct FakeHost {
        busy: BTreeSet<(u16, Protocol)>,
        next: RefCell<u16>,
    }

    impl FakeHost {
        fn new(busy: &[(u16, Protocol)]) -> FakeHost {
            FakeHost {
                busy: busy.iter().copied().collect(),
                next: RefCell::new(40000),
            }
        }
    }

    impl Probe for FakeHost {
        fn free(&self, host_ip: IpAddr, port: u16, protocol: Protocol) -> Availability {
            if host_ip == ip("192.0.2.1") {
                Availability::NotLocal
            } else if self.busy.contains(&(port, protocol)) {
                Availability::Busy
            } else {
                Availability::Free
            }
        }
        fn ephemeral(&self, _: IpAddr, _: Protocol) -> Option<u16> {
            let mut next = self.next.borrow_mut();
            *next += 1;
            Some(*next - 1)
        }
    }

    #[test]
    fn parses_protocols_ranges_and_addresses() {
        let mut p = port(Some("8000-8010"), 80, "UDP");
        p.host_ip = Some("127.0.0.1".into());
        let r = requests("web", &[p, port(None, 3000, "tcp")]).unwrap();
        assert_eq!(r[0].host_ports, Some((8000, 8010)));
        assert_eq!(r[0].protocol, Protocol::Udp);
        assert_eq!(r[0].host_ip, Some(ip("127.0.0.1")));
        assert_eq!(r[1].host_ports, None);
        for bad in [
            port(Some("9-8"), 80, "tcp"),
            port(Some("0"), 80, "tcp"),
            port(Some("http"), 80, "tcp"),
            port(Some("80"), 80, "sctp"),
        ] {
            assert!(matches!(
                requests("web", &[bad]),
                Err(PortError::Invalid { .. })
            ));
        }
    }

    #[test]
    fn a_busy_or_held_port_is_refused_naming_it() {
        let host = FakeHost::new(&[(8080, Protocol::Tcp)]);
        let r = requests("web", &[port(Some("8080"), 80, "tcp")]).unwrap();
        let e = bind("web", &r, ip("172.18.0.2"), &[], &host).unwrap_err();
        assert_eq!(
            e.to_string(),
            "service \"web\": host port 8080/tcp is already in use — choose another port or stop what holds it"
        );
        // The same port over UDP is free.
        let r = requests("web", &[port(Some("8080"), 80, "udp")]).unwrap();
        assert!(bind("web", &r, ip("172.18.0.2"), &[], &host).is_ok());
        let held = [Held {
            project: "other".into(),
            host_ip: Some(ip("127.0.0.1")),
            host_port: 9000,
            protocol: Protocol::Tcp,
        }];
        let r = requests("web", &[port(Some("9000"), 80, "tcp")]).unwrap();
        let e = bind("web", &r, ip("172.18.0.2"), &held, &host).unwrap_err();
        assert!(e.to_string().contains("by project \"other\""), "{e}");
        // On another specific address it does not clash.
        let mut p = port(Some("9000"), 80, "tcp");
        p.host_ip = Some("127.0.0.2".into());
        let r = requests("web", &[p]).unwrap();
        assert!(bind("web", &r, ip("172.18.0.2"), &held, &host).is_ok());
    }

    #[test]
    fn a_port_requested_twice_is_refused() {
        let host = FakeHost::new(&[]);
        let r = requests(
            "web",
            &[port(Some("8080"), 80, "tcp"), port(Some("8080"), 81, "tcp")],
        )
        .unwrap();
        assert!(matches!(
            bind("web", &r, ip("172.18.0.2"), &[], &host),
            Err(PortError::InUse { .. })
        ));
    }

    #[test]
    fn ranges_take_the_first_free_port_and_random_ports_skip_held_ones() {
        let host = FakeHost::new(&[(8000, Protocol::Tcp), (8001, Protocol::Tcp)]);
        let held = [Held {
            project: "p".into(),
            host_ip: None,
            host_port: 40000,
            protocol: Protocol::Tcp,
        }];
        let r = requests(
            "web",
            &[port(Some("8000-8003"), 80, "tcp"), port(None, 81, "tcp")],
        )
        .unwrap();
        let bound = bind("web", &r, ip("172.18.0.2"), &held, &host).unwrap();
        assert_eq!(bound[0].host_port, 8002);
        assert_eq!(bound[1].host_port, 40001);
        let r = requests("web", &[port(Some("8000-8001"), 80, "tcp")]).unwrap();
        assert!(matches!(
            bind("web", &r, ip("172.18.0.2"), &[], &host),
            Err(PortError::NoneFree { .. })
        ));
    }

    #[test]
    fn a_host_address_that_is_not_local_is_refused() {
        let mut p = port(Some("80"), 80, "tcp");
        p.host_ip = Some("192.0.2.1".into());
        let r = requests("web", &[p]).unwrap();
        assert_eq!(
            bind("web", &r, ip("172.18.0.2"), &[], &FakeHost::new(&[])),
            Err(PortError::NotLocal {
                service: "web".into(),
                addr: ip("192.0.2.1")
            })
        );
    }

    #[test]
    fn the_socket_probe_sees_a_real_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = listener.local_addr().unwrap().port();
        let probe = SocketProbe;
        let busy = Availability::Busy;
        assert_eq!(probe.free(ip("127.0.0.1"), taken, Protocol::Tcp), busy);
        assert_eq!(probe.free(ip("0.0.0.0"), taken, Protocol::Tcp), busy);
        drop(listener);
        let free = probe.free(ip("127.0.0.1"), taken, Protocol::Tcp);
        assert_eq!(free, Availability::Free);
        assert!(probe.ephemeral(ip("127.0.0.1"), Protocol::Udp).is_some());
    }
}
