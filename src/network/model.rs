//! What a project asks of the network layer, normalized from the Compose model, pure: each
//! network's bridge, address pools and options ([`NetworkSpec`]), and each container's
//! attachments in interface order with the names it answers to ([`SandboxSpec`]).
//!
//! Everything a user can get wrong (a bad subnet, a bad MAC, a network that does not exist,
//! an unsupported driver) is refused here, before anything on the host changes. The layer
//! that acts on the host ([`super::linux`]) takes these as they are.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::compose::model::{Project, Service};

use super::ipam::{self, IpamError, PoolConfig, Subnet};
use super::names::{self, NameError};
use super::ports::{self, PortError, PortRequest};

/// `driver_opts` keys of Docker's bridge driver that wharf honours.
pub const MTU_OPTION: &str = "com.docker.network.driver.mtu";
pub const ICC_OPTION: &str = "com.docker.network.bridge.enable_icc";

/// A network or attachment that cannot be set up as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("network {network:?}: driver {driver:?} is not supported (wharf has bridge networks)")]
    Driver { network: String, driver: String },
    #[error("network {network:?}: driver_opts.\"{key}\" {value:?}: {reason}")]
    Option {
        network: String,
        key: String,
        value: String,
        reason: &'static str,
    },
    #[error("service {service:?} uses network {network:?}, which is not declared under networks")]
    Undeclared { service: String, network: String },
    #[error("service {service:?}: networks.{network}.{field} {value:?} is not valid: {reason}")]
    Endpoint {
        service: String,
        network: String,
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("service {service:?}: network_mode {mode:?} is not supported")]
    Mode { service: String, mode: String },
}

/// One network as the host will carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkSpec {
    pub project: String,
    /// The key in the Compose file (`default`, `back`).
    pub key: String,
    /// The network's name on the host (`<project>_<key>` or its `name:`).
    pub name: String,
    pub bridge: String,
    pub external: bool,
    pub internal: bool,
    pub attachable: bool,
    /// `enable_icc`, default true.
    pub icc: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    pub ipv6: bool,
    /// Explicit `ipam.config` subnets, as written; empty means automatic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipam: Vec<crate::compose::model::IpamPool>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// [`crate::compose::hash::object_hash`] of the network as the Compose files define it:
    /// what the planner compares to decide that the network changed.
    #[serde(default)]
    pub config_hash: String,
}

impl NetworkSpec {
    /// The checked `ipam.config` entries (validated once already by [`network_spec`]).
    pub fn pools(&self) -> Result<Vec<PoolConfig>, IpamError> {
        ipam::parse_ipam(
            &self.name,
            &crate::compose::model::Ipam {
                config: self.ipam.clone(),
                ..Default::default()
            },
        )
    }

    /// The IPv6 subnet of an `enable_ipv6` network that names none: a /64 of the
    /// unique-local range fd00::/8 derived from the network's name, so it is stable across
    /// `up`s and different for every network (Docker picks one from its default IPv6 pool).
    pub fn automatic_ipv6(&self) -> Subnet {
        let digest = Sha256::digest(format!("wharf ipv6 {}", self.name));
        let mut octets = [0u8; 16];
        octets[0] = 0xfd;
        octets[1..8].copy_from_slice(&digest[..7]);
        // Seven bytes of the hash fill the global ID and subnet ID (56 bits); the host half
        // stays zero.
        Subnet::new(IpAddr::V6(Ipv6Addr::from(octets)), 64).unwrap_or_else(|_| {
            Subnet::new(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0)), 64)
                .expect("fd00::/64 is a valid subnet")
        })
    }
}

/// `network`'s spec in `project`.
pub fn network_spec(project: &Project, key: &str) -> Result<NetworkSpec, ModelError> {
    let default = crate::compose::model::Network::default();
    let net = project.networks.get(key).unwrap_or(&default);
    let name = net
        .name
        .clone()
        .unwrap_or_else(|| format!("{}_{key}", project.name));
    if let Some(driver) = net.driver.as_ref().filter(|d| *d != "bridge") {
        return Err(ModelError::Driver {
            network: key.to_string(),
            driver: driver.clone(),
        });
    }
    let option = |k: &str, value: &str, reason| ModelError::Option {
        network: key.to_string(),
        key: k.to_string(),
        value: value.to_string(),
        reason,
    };
    let mtu = match net.driver_opts.get(MTU_OPTION) {
        None => None,
        Some(v) => Some(
            v.parse::<u32>()
                .ok()
                .filter(|m| (68..=65535).contains(m))
                .ok_or_else(|| option(MTU_OPTION, v, "an MTU from 68 to 65535"))?,
        ),
    };
    let icc = match net.driver_opts.get(ICC_OPTION).map(String::as_str) {
        None | Some("true") => true,
        Some("false") => false,
        Some(v) => return Err(option(ICC_OPTION, v, "\"true\" or \"false\"")),
    };
    let ipam = net.ipam.clone().unwrap_or_default();
    let pools = ipam::parse_ipam(key, &ipam)?;
    let ipv6 = net.enable_ipv6.unwrap_or(false) || pools.iter().any(|p| !p.subnet().is_ipv4());
    Ok(NetworkSpec {
        project: project.name.clone(),
        key: key.to_string(),
        bridge: names::resolve_bridge_name(&project.name, key, &net.driver_opts)?,
        name,
        external: net.external,
        internal: net.internal,
        attachable: net.attachable,
        icc,
        mtu,
        ipv6,
        ipam: ipam.config,
        labels: net.labels.clone(),
        config_hash: crate::compose::hash::object_hash(net),
    })
}

/// How a container is connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Its own network namespace with these attachments, in interface order.
    Bridge(Vec<EndpointSpec>),
    /// The host's network namespace (`network_mode: host`).
    Host,
    /// Its own namespace with only loopback (`network_mode: none`).
    None,
    /// Another container's namespace (`service:NAME`, `container:NAME`); the runtime joins it.
    Join(String),
}

/// One attachment of a container to a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSpec {
    /// The network's key in the Compose file.
    pub network: String,
    /// The network's name on the host (another project's, for an `external` network).
    pub name: String,
    /// `eth0`, `eth1`, … in priority order, or the service's `interface_name`.
    pub ifname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<Ipv6Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<[u8; 6]>,
    /// Whether this network's gateway carries the default route (`gw_priority`).
    pub default_route: bool,
    /// What DNS answers with this attachment's addresses on this network: the service,
    /// the container name, the hostname and the aliases.
    pub names: Vec<String>,
}

/// A container's networking, as its service asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxSpec {
    pub project: String,
    pub service: String,
    pub container_name: String,
    pub hostname: String,
    pub mode: Mode,
    /// `links` as (service or container, alias).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<IpAddr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_opt: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortRequest>,
}

/// The networking of container `container_name` (with `hostname`) of `service`.
pub fn sandbox_spec(
    project: &Project,
    service: &str,
    container_name: &str,
    hostname: &str,
) -> Result<SandboxSpec, ModelError> {
    let default = Service::default();
    let svc = project.services.get(service).unwrap_or(&default);
    let endpoint_err = |network: &str, field, value: &str, reason: String| ModelError::Endpoint {
        service: service.to_string(),
        network: network.to_string(),
        field,
        value: value.to_string(),
        reason,
    };
    let mode = match svc.network_mode.as_deref() {
        Some("host") => Mode::Host,
        Some("none") => Mode::None,
        Some(m) if m.starts_with("service:") || m.starts_with("container:") => {
            Mode::Join(m.to_string())
        }
        Some(m) if m != "bridge" && m != "default" => {
            return Err(ModelError::Mode {
                service: service.to_string(),
                mode: m.to_string(),
            });
        }
        _ => {
            let mut listed: Vec<(&String, crate::compose::model::ServiceNetwork)> = svc
                .networks
                .iter()
                .map(|(k, v)| (k, v.clone().unwrap_or_default()))
                .collect();
            if listed.is_empty() && project.networks.contains_key("default") {
                // Normalization gives every service `default` unless it lists networks.
                return Err(ModelError::Undeclared {
                    service: service.to_string(),
                    network: "default".into(),
                });
            }
            for (key, _) in &listed {
                if !project.networks.contains_key(key.as_str()) {
                    return Err(ModelError::Undeclared {
                        service: service.to_string(),
                        network: key.to_string(),
                    });
                }
            }
            // Interface order: `priority`, highest first, then the key (Docker sorts the
            // same way). The default route goes through the highest `gw_priority`, ties
            // broken by that same order; an internal network never carries it.
            listed.sort_by(|(ka, a), (kb, b)| {
                b.priority
                    .unwrap_or(0)
                    .cmp(&a.priority.unwrap_or(0))
                    .then(ka.cmp(kb))
            });
            let route = listed
                .iter()
                .enumerate()
                .filter(|(_, (k, _))| !project.networks[k.as_str()].internal)
                .max_by(|(ia, (_, a)), (ib, (_, b))| {
                    a.gw_priority
                        .unwrap_or(0)
                        .cmp(&b.gw_priority.unwrap_or(0))
                        .then(ib.cmp(ia))
                })
                .map(|(i, _)| i);
            let mut endpoints = Vec::with_capacity(listed.len());
            for (index, (key, sn)) in listed.iter().enumerate() {
                let ipv4_address = sn
                    .ipv4_address
                    .as_deref()
                    .map(|t| {
                        t.parse::<Ipv4Addr>().map_err(|_| {
                            endpoint_err(key, "ipv4_address", t, "not an IPv4 address".into())
                        })
                    })
                    .transpose()?;
                let ipv6_address = sn
                    .ipv6_address
                    .as_deref()
                    .map(|t| {
                        t.parse::<Ipv6Addr>().map_err(|_| {
                            endpoint_err(key, "ipv6_address", t, "not an IPv6 address".into())
                        })
                    })
                    .transpose()?;
                let mac_text = sn.mac_address.as_deref().or(if index == 0 {
                    svc.mac_address.as_deref()
                } else {
                    None
                });
                let mac = mac_text
                    .map(|t| parse_mac(t).map_err(|r| endpoint_err(key, "mac_address", t, r)))
                    .transpose()?;
                let ifname = match &sn.interface_name {
                    Some(name) => {
                        names::validate_ifname(name).map_err(|r| {
                            endpoint_err(key, "interface_name", name, r.to_string())
                        })?;
                        name.clone()
                    }
                    None => format!("eth{index}"),
                };
                let mut names = vec![service.to_string(), container_name.to_string()];
                if svc.hostname.is_some() {
                    names.push(hostname.to_string());
                }
                names.extend(sn.aliases.iter().cloned());
                let mut seen = std::collections::BTreeSet::new();
                names.retain(|n| !n.is_empty() && seen.insert(n.to_ascii_lowercase()));
                let net = &project.networks[key.as_str()];
                endpoints.push(EndpointSpec {
                    network: key.to_string(),
                    name: net
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("{}_{key}", project.name)),
                    ifname,
                    ipv4_address,
                    ipv6_address,
                    mac,
                    default_route: route == Some(index),
                    names,
                });
            }
            Mode::Bridge(endpoints)
        }
    };
    let dns = svc
        .dns
        .iter()
        .map(|t| {
            t.parse::<IpAddr>().map_err(|_| ModelError::Endpoint {
                service: service.to_string(),
                network: String::new(),
                field: "dns",
                value: t.clone(),
                reason: "not an IP address".into(),
            })
        })
        .collect::<Result<_, _>>()?;
    let links = svc
        .links
        .iter()
        .map(|l| match l.split_once(':') {
            Some((target, alias)) => (target.to_string(), alias.to_string()),
            None => (l.clone(), l.clone()),
        })
        .collect();
    Ok(SandboxSpec {
        project: project.name.clone(),
        service: service.to_string(),
        container_name: container_name.to_string(),
        hostname: hostname.to_string(),
        mode,
        links,
        dns,
        dns_search: svc.dns_search.clone(),
        dns_opt: svc.dns_opt.clone(),
        extra_hosts: svc.extra_hosts.clone(),
        ports: ports::requests(service, &svc.ports)?,
    })
}

/// `02:42:ac:11:00:02`: six hex octets, unicast.
fn parse_mac(text: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = text.split([':', '-']).collect();
    let mut mac = [0u8; 6];
    if parts.len() != 6 {
        return Err("expected six hex octets like 02:42:ac:11:00:02".into());
    }
    for (slot, part) in mac.iter_mut().zip(&parts) {
        *slot = u8::from_str_radix(part, 16)
            .ok()
            .filter(|_| part.len() == 2)
            .ok_or_else(|| format!("{part:?} is not a hex octet"))?;
    }
    if mac[0] & 1 == 1 {
        return Err("a multicast address cannot be an interface's".into());
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(yaml: &str) -> Project {
        crate::compose::testing::project(yaml, "shop")
    }

    #[test]
    fn networks_and_attachments_as_the_host_will_carry_them() {
        let p = project(
            r#"
services:
  web:
    image: busybox
    hostname: front
    mac_address: "02:42:ac:11:00:09"
    links: ["db:database"]
    dns: [192.0.2.53]
    ports: ["8080:80"]
    networks:
      back:
        aliases: [www]
        ipv4_address: 10.9.0.5
        priority: 10
      default:
        gw_priority: 1
  db:
    image: busybox
  side:
    image: busybox
    network_mode: "service:web"
networks:
  back:
    internal: true
    driver_opts:
      com.docker.network.driver.mtu: "1400"
      com.docker.network.bridge.enable_icc: "false"
    ipam:
      config:
        - subnet: 10.9.0.0/24
          gateway: 10.9.0.254
  v6:
    enable_ipv6: true
"#,
        );
        let nets: Vec<NetworkSpec> = ["back", "default", "v6"]
            .iter()
            .map(|k| network_spec(&p, k).unwrap())
            .collect();
        insta::assert_yaml_snapshot!("network_specs", nets);
        insta::assert_yaml_snapshot!(
            "sandbox_web",
            sandbox_spec(&p, "web", "shop-web-1", "front").unwrap()
        );
        assert_eq!(
            sandbox_spec(&p, "side", "shop-side-1", "abc").unwrap().mode,
            Mode::Join("service:web".into())
        );
        let v6 = &nets[2];
        assert!(v6.ipv6 && v6.automatic_ipv6().to_string().starts_with("fd"));
        assert_eq!(v6.automatic_ipv6(), nets[2].clone().automatic_ipv6());
        assert_ne!(v6.automatic_ipv6(), nets[1].automatic_ipv6());
    }

    #[test]
    fn mistakes_are_refused_naming_the_field() {
        let bad = [
            (
                "networks: {n: {driver: overlay}}",
                "network \"n\": driver \"overlay\" is not supported (wharf has bridge networks)",
            ),
            (
                "networks: {n: {driver_opts: {com.docker.network.driver.mtu: \"9\"}}}",
                "network \"n\": driver_opts.\"com.docker.network.driver.mtu\" \"9\": an MTU from 68 to 65535",
            ),
        ];
        for (yaml, message) in bad {
            let p = project(&format!(
                "services: {{a: {{image: x, networks: [n]}}}}\n{yaml}\n"
            ));
            assert_eq!(network_spec(&p, "n").unwrap_err().to_string(), message);
        }
        let p = project(
            "services: {a: {image: x, mac_address: '01:00:00:00:00:01'}, b: {image: x, networks: {default: {ipv4_address: 10.0.0.300}}}}\n",
        );
        assert!(
            sandbox_spec(&p, "a", "a1", "h")
                .unwrap_err()
                .to_string()
                .contains("multicast")
        );
        assert_eq!(
            sandbox_spec(&p, "b", "b1", "h").unwrap_err().to_string(),
            "service \"b\": networks.default.ipv4_address \"10.0.0.300\" is not valid: not an IPv4 address"
        );
    }
}
