//! Address management, pure: subnets, a network's `ipam.config`, free subnets from Docker's
//! default pools, and the allocator that hands out a network's addresses.
//!
//! Nothing here reads the host. The caller brings what the host knows (its routes and
//! addresses, the other wharf networks' subnets, read under the host-wide lock) and persists
//! an [`AddressPool`] in the network's state record between commands.
//!
//! [`Subnet`] is wharf's own type rather than the `ipnet` crate's: allocation is arithmetic on
//! offsets, which one `u128` code path does for IPv4 and IPv6 alike, where `ipnet` would need
//! a match on the family at every step; and it serializes as `"172.17.0.0/16"` in the state
//! record without a feature flag. It is a hundred lines.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::compose::model::{Ipam, IpamPool};

/// An IPv4 or IPv6 subnet: a network address with no host bits set, and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet {
    addr: IpAddr,
    prefix: u8,
}

/// Why a string is not a subnet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubnetError {
    #[error("expected ADDRESS/PREFIX")]
    NotCidr,
    #[error("{0:?} is not an IP address")]
    Address(String),
    #[error("{0:?} is not a prefix length")]
    Prefix(String),
    #[error("prefix length {prefix} is longer than {max}")]
    PrefixTooLong { prefix: u8, max: u8 },
    #[error("host bits are set: the subnet is {0}")]
    HostBits(Subnet),
}

impl Subnet {
    /// The subnet of `prefix` bits at `addr`, which must have no host bits set.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, SubnetError> {
        let max = max_prefix(addr);
        if prefix > max {
            return Err(SubnetError::PrefixTooLong { prefix, max });
        }
        let masked = Subnet {
            addr: from_bits(addr, bits(addr) & !host_mask(addr, prefix)),
            prefix,
        };
        if masked.addr != addr {
            return Err(SubnetError::HostBits(masked));
        }
        Ok(masked)
    }

    /// An IPv4 subnet known to be valid (the default pools).
    const fn v4(octets: [u8; 4], prefix: u8) -> Self {
        let [a, b, c, d] = octets;
        Subnet {
            addr: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix,
        }
    }

    /// The network address (all host bits zero).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// The last address: the broadcast address of an IPv4 subnet.
    pub fn last(&self) -> IpAddr {
        from_bits(self.addr, self.first_bits() | self.host_mask())
    }

    /// Whether `ip` lies inside this subnet (never across address families).
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.is_ipv4() && bits(ip) & !self.host_mask() == self.first_bits()
    }

    /// Whether all of `other` lies inside this subnet.
    pub fn contains_subnet(&self, other: &Subnet) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }

    /// Whether the two share any address. Aligned subnets overlap only when one contains
    /// the other; an IPv4 and an IPv6 subnet never do.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains_subnet(other) || other.contains_subnet(self)
    }

    fn first_bits(&self) -> u128 {
        bits(self.addr)
    }

    fn host_mask(&self) -> u128 {
        host_mask(self.addr, self.prefix)
    }

    /// The address at `bits` in this subnet's family.
    fn at(&self, bits: u128) -> IpAddr {
        from_bits(self.addr, bits)
    }

    /// The first and last address a host may have: IPv4 excludes the network and broadcast
    /// addresses, IPv6 the subnet-router anycast address (RFC 4291 2.6.1). `None` when the
    /// subnet has no room for a gateway and one container.
    fn host_bounds(&self) -> Option<(u128, u128)> {
        let first = self.first_bits().checked_add(1)?;
        let last = self.first_bits() | self.host_mask();
        let last = if self.is_ipv4() { last - 1 } else { last };
        (last > first).then_some((first, last))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = SubnetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = s.split_once('/').ok_or(SubnetError::NotCidr)?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| SubnetError::Address(addr.to_string()))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| SubnetError::Prefix(prefix.to_string()))?;
        Subnet::new(addr, prefix)
    }
}

impl Serialize for Subnet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

fn host_mask(addr: IpAddr, prefix: u8) -> u128 {
    let host_bits = u32::from(max_prefix(addr) - prefix);
    1u128.checked_shl(host_bits).map_or(u128::MAX, |n| n - 1)
}

fn bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address with `bits` in the family of `family`; IPv4 keeps the low 32 bits.
fn from_bits(family: IpAddr, bits: u128) -> IpAddr {
    match family {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(bits as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(bits)),
    }
}

/// An error in a network's `ipam` section or in handing out its addresses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error("network {network:?}: {field} {value:?}: {reason}")]
    Config {
        network: String,
        /// The Compose path of the field, `ipam.config[0].gateway`.
        field: String,
        value: String,
        reason: String,
    },
    #[error("network {network:?}: ipam.driver {driver:?} is not supported, only \"default\"")]
    Driver { network: String, driver: String },
    #[error("network {network:?}: address {addr} is not inside its subnet {subnet}")]
    OutsideSubnet {
        network: String,
        addr: IpAddr,
        subnet: Subnet,
    },
    #[error("network {network:?}: address {addr} is reserved as the {what}")]
    Reserved {
        network: String,
        addr: IpAddr,
        what: String,
    },
    #[error("network {network:?}: address {addr} is already in use")]
    InUse { network: String, addr: IpAddr },
    #[error("network {network:?}: no free address left in {range}")]
    Exhausted { network: String, range: Subnet },
}

/// One validated `ipam.config` entry: addresses parsed, every address inside the subnet and
/// none of them its network or broadcast address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    subnet: Subnet,
    ip_range: Option<Subnet>,
    gateway: Option<IpAddr>,
    aux_addresses: BTreeMap<String, IpAddr>,
}

impl PoolConfig {
    /// Parses and checks entry `index` of `network`'s `ipam.config`.
    pub fn parse(network: &str, index: usize, pool: &IpamPool) -> Result<Self, IpamError> {
        let err = |field: &str, value: &str, reason: String| IpamError::Config {
            network: network.to_string(),
            field: format!("ipam.config[{index}].{field}"),
            value: value.to_string(),
            reason,
        };
        let Some(subnet_text) = &pool.subnet else {
            return Err(err(
                "subnet",
                "",
                "a subnet is required in an ipam.config entry".into(),
            ));
        };
        let subnet: Subnet = subnet_text
            .parse()
            .map_err(|e: SubnetError| err("subnet", subnet_text, e.to_string()))?;
        let reserved = host_reservation(&subnet);
        if subnet.host_bounds().is_none() {
            return Err(err(
                "subnet",
                subnet_text,
                "too small: it needs room for a gateway and a container".into(),
            ));
        }
        let check_addr = |field: &str, text: &str| -> Result<IpAddr, IpamError> {
            let addr: IpAddr = text
                .parse()
                .map_err(|_| err(field, text, "not an IP address".into()))?;
            if !subnet.contains(addr) {
                return Err(err(field, text, format!("not inside subnet {subnet}")));
            }
            if let Some(what) = reserved(addr) {
                return Err(err(field, text, format!("it is the subnet's {what}")));
            }
            Ok(addr)
        };

        let ip_range = match &pool.ip_range {
            None => None,
            Some(text) => {
                let range: Subnet = text
                    .parse()
                    .map_err(|e: SubnetError| err("ip_range", text, e.to_string()))?;
                if !subnet.contains_subnet(&range) {
                    return Err(err("ip_range", text, format!("not inside subnet {subnet}")));
                }
                Some(range)
            }
        };
        let gateway = pool
            .gateway
            .as_deref()
            .map(|text| check_addr("gateway", text))
            .transpose()?;
        let mut aux_addresses = BTreeMap::new();
        for (name, text) in &pool.aux_addresses {
            let addr = check_addr(&format!("aux_addresses.{name}"), text)?;
            aux_addresses.insert(name.clone(), addr);
        }
        Ok(PoolConfig {
            subnet,
            ip_range,
            gateway,
            aux_addresses,
        })
    }

    /// An automatically allocated subnet ([`allocate_subnet`]), with nothing else set.
    pub fn automatic(network: &str, subnet: Subnet) -> Result<Self, IpamError> {
        if subnet.host_bounds().is_none() {
            return Err(IpamError::Config {
                network: network.to_string(),
                field: "ipam.config.subnet".into(),
                value: subnet.to_string(),
                reason: "too small: it needs room for a gateway and a container".into(),
            });
        }
        Ok(PoolConfig {
            subnet,
            ip_range: None,
            gateway: None,
            aux_addresses: BTreeMap::new(),
        })
    }

    pub fn subnet(&self) -> Subnet {
        self.subnet
    }

    pub fn ip_range(&self) -> Option<Subnet> {
        self.ip_range
    }

    pub fn gateway(&self) -> Option<IpAddr> {
        self.gateway
    }

    pub fn aux_addresses(&self) -> &BTreeMap<String, IpAddr> {
        &self.aux_addresses
    }
}

/// A closure naming what a host-unusable address of `subnet` is, if it is one.
fn host_reservation(subnet: &Subnet) -> impl Fn(IpAddr) -> Option<&'static str> + '_ {
    move |addr| {
        if addr == subnet.addr() {
            Some(if subnet.is_ipv4() {
                "network address"
            } else {
                "subnet-router anycast address"
            })
        } else if subnet.is_ipv4() && addr == subnet.last() {
            Some("broadcast address")
        } else {
            None
        }
    }
}

/// Parses and checks `network`'s whole `ipam` section: the default driver only, and at most
/// one IPv4 and one IPv6 entry, since a bridge carries one subnet of each family.
/// An empty list means "allocate a subnet automatically".
pub fn parse_ipam(network: &str, ipam: &Ipam) -> Result<Vec<PoolConfig>, IpamError> {
    if let Some(driver) = ipam.driver.as_ref().filter(|d| *d != "default") {
        return Err(IpamError::Driver {
            network: network.to_string(),
            driver: driver.clone(),
        });
    }
    let mut pools: Vec<PoolConfig> = Vec::new();
    for (index, entry) in ipam.config.iter().enumerate() {
        let pool = PoolConfig::parse(network, index, entry)?;
        if let Some(other) = pools
            .iter()
            .find(|p| p.subnet.is_ipv4() == pool.subnet.is_ipv4())
        {
            let family = if pool.subnet.is_ipv4() {
                "IPv4"
            } else {
                "IPv6"
            };
            return Err(IpamError::Config {
                network: network.to_string(),
                field: format!("ipam.config[{index}].subnet"),
                value: pool.subnet.to_string(),
                reason: format!(
                    "a second {family} subnet besides {}: a bridge network has one of each family",
                    other.subnet
                ),
            });
        }
        pools.push(pool);
    }
    Ok(pools)
}

/// Docker's default address pools in Docker's order: 172.17.0.0/16 … 172.31.0.0/16, then
/// 192.168.0.0/16 in /20 steps.
pub fn default_pools() -> impl Iterator<Item = Subnet> {
    let large = (17..=31).map(|b| Subnet::v4([172, b, 0, 0], 16));
    let small = (0..16).map(|i| Subnet::v4([192, 168, i * 16, 0], 20));
    large.chain(small)
}

/// The first default pool ([`default_pools`]) that overlaps none of `taken` (the subnets of
/// other wharf networks and explicitly requested ones) and none of `host_routes` (the
/// destinations of the host's routes and the subnets of its addresses). A route with prefix
/// length 0 (a default route) overlaps everything and is ignored, as Docker does. `None`
/// when every pool is taken.
pub fn allocate_subnet(taken: &[Subnet], host_routes: &[Subnet]) -> Option<Subnet> {
    let in_the_way = taken
        .iter()
        .chain(host_routes.iter().filter(|r| r.prefix() > 0));
    default_pools().find(|pool| !in_the_way.clone().any(|t| t.overlaps(pool)))
}

/// The addresses of one subnet of one network: the gateway, the auxiliary addresses the
/// Compose file reserves, and those handed to containers.
///
/// Dynamic addresses come from `ip_range` when set (else the whole subnet), in order, going on
/// after the last one handed out and wrapping around at the end, as Docker does: an address
/// just released (a container being recreated) is not given straight to the next container,
/// whose neighbours may still have the old one's MAC address cached. The state serializes
/// (serde) so that the caller can keep it in the network's state record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPool {
    network: String,
    subnet: Subnet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ip_range: Option<Subnet>,
    gateway: IpAddr,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    aux_addresses: BTreeMap<String, IpAddr>,
    #[serde(default)]
    in_use: BTreeSet<IpAddr>,
    /// The last address handed out dynamically, where the next search starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last: Option<IpAddr>,
}

impl AddressPool {
    /// The pool of `network` for a checked `ipam.config` entry. The gateway is the first host
    /// address of the subnet unless the entry names one.
    pub fn new(network: &str, config: &PoolConfig) -> Self {
        let gateway = config.gateway.unwrap_or_else(|| {
            let first = config.subnet.first_bits() + 1;
            config.subnet.at(first)
        });
        AddressPool {
            network: network.to_string(),
            subnet: config.subnet,
            ip_range: config.ip_range,
            gateway,
            aux_addresses: config.aux_addresses.clone(),
            in_use: BTreeSet::new(),
            last: None,
        }
    }

    pub fn network(&self) -> &str {
        &self.network
    }

    pub fn subnet(&self) -> Subnet {
        self.subnet
    }

    pub fn ip_range(&self) -> Option<Subnet> {
        self.ip_range
    }

    /// The bridge's own address, the containers' default route.
    pub fn gateway(&self) -> IpAddr {
        self.gateway
    }

    /// The addresses handed to containers, in order.
    pub fn in_use(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.in_use.iter().copied()
    }

    /// Hands out `requested` (a static `ipv4_address`/`ipv6_address`), or else the next free
    /// address of the range.
    ///
    /// A static address must lie inside the subnet (not necessarily inside `ip_range`) and be
    /// neither reserved nor in use.
    pub fn allocate(&mut self, requested: Option<IpAddr>) -> Result<IpAddr, IpamError> {
        match requested {
            Some(addr) => self.take(addr),
            None => self.next_free(),
        }
    }

    /// Gives `addr` back. Returns whether it was in use.
    pub fn release(&mut self, addr: IpAddr) -> bool {
        self.in_use.remove(&addr)
    }

    fn take(&mut self, addr: IpAddr) -> Result<IpAddr, IpamError> {
        if !self.subnet.contains(addr) {
            return Err(IpamError::OutsideSubnet {
                network: self.network.clone(),
                addr,
                subnet: self.subnet,
            });
        }
        if let Some(what) = self.reserved(addr) {
            return Err(IpamError::Reserved {
                network: self.network.clone(),
                addr,
                what,
            });
        }
        if !self.in_use.insert(addr) {
            return Err(IpamError::InUse {
                network: self.network.clone(),
                addr,
            });
        }
        Ok(addr)
    }

    fn reserved(&self, addr: IpAddr) -> Option<String> {
        if let Some(what) = host_reservation(&self.subnet)(addr) {
            return Some(what.to_string());
        }
        if addr == self.gateway {
            return Some("gateway".to_string());
        }
        self.aux_addresses
            .iter()
            .find(|(_, a)| **a == addr)
            .map(|(name, _)| format!("auxiliary address {name:?}"))
    }

    fn next_free(&mut self) -> Result<IpAddr, IpamError> {
        let range = self.ip_range.unwrap_or(self.subnet);
        let exhausted = || IpamError::Exhausted {
            network: self.network.clone(),
            range,
        };
        // The subnet's host bounds exist: PoolConfig checked the size.
        let (host_first, host_last) = self.subnet.host_bounds().ok_or_else(exhausted)?;
        let lo = range.first_bits().max(host_first);
        let hi = (range.first_bits() | range.host_mask()).min(host_last);
        if lo > hi {
            return Err(exhausted());
        }
        let start = self
            .last
            .map(|last| bits(last).wrapping_add(1))
            .filter(|b| (lo..=hi).contains(b))
            .unwrap_or(lo);
        // Only the addresses in use, the gateway and the auxiliary addresses block a
        // candidate, so among that many + 1 consecutive candidates one is free if any is:
        // the search stays short in an IPv6 /64.
        let blocked = self.in_use.len() + self.aux_addresses.len() + 1;
        let candidates = (hi - lo).saturating_add(1).min(blocked as u128 + 1);
        let mut candidate = start;
        for _ in 0..candidates {
            let addr = self.subnet.at(candidate);
            if self.reserved(addr).is_none() && !self.in_use.contains(&addr) {
                self.in_use.insert(addr);
                self.last = Some(addr);
                return Ok(addr);
            }
            candidate = if candidate == hi { lo } else { candidate + 1 };
        }
        Err(exhausted())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn net(s: &str) -> Subnet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn pool_entry(
        subnet: &str,
        ip_range: Option<&str>,
        gateway: Option<&str>,
        aux: &[(&str, &str)],
    ) -> IpamPool {
        IpamPool {
            subnet: Some(subnet.to_string()),
            ip_range: ip_range.map(str::to_string),
            gateway: gateway.map(str::to_string),
            aux_addresses: aux
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn pool(subnet: &str) -> AddressPool {
        AddressPool::new(
            "front",
            &PoolConfig::automatic("front", net(subnet)).unwrap(),
        )
    }

    fn config_error(entry: &IpamPool) -> String {
        PoolConfig::parse("front", 0, entry)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn subnets_parse_and_print() {
        assert_eq!(net("172.17.0.0/16").to_string(), "172.17.0.0/16");
        assert_eq!(net("fd00:1::/64").to_string(), "fd00:1::/64");
        assert_eq!(net("0.0.0.0/0").last(), ip("255.255.255.255"));
        assert_eq!(
            net("::/0").last(),
            ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
        );
        assert_eq!(net("10.0.0.7/32").last(), ip("10.0.0.7"));
        assert_eq!(net("10.1.0.0/16").last(), ip("10.1.255.255"));
        assert_eq!(
            "172.28.5.0/16".parse::<Subnet>(),
            Err(SubnetError::HostBits(net("172.28.0.0/16")))
        );
        assert_eq!(
            "10.0.0.0/33".parse::<Subnet>(),
            Err(SubnetError::PrefixTooLong {
                prefix: 33,
                max: 32
            })
        );
        assert_eq!("10.0.0.0".parse::<Subnet>(), Err(SubnetError::NotCidr));
        assert!(matches!(
            "10.0.0/8".parse::<Subnet>(),
            Err(SubnetError::Address(_))
        ));
        assert!(matches!(
            "10.0.0.0/x".parse::<Subnet>(),
            Err(SubnetError::Prefix(_))
        ));
    }

    #[test]
    fn overlap_rules() {
        let a = net("172.17.0.0/16");
        assert!(a.overlaps(&a));
        assert!(a.overlaps(&net("172.17.3.0/24")));
        assert!(net("172.17.3.0/24").overlaps(&a));
        assert!(a.overlaps(&net("172.16.0.0/12")));
        assert!(!a.overlaps(&net("172.18.0.0/16")));
        assert!(
            !a.overlaps(&net("172.16.0.0/16")),
            "adjacent subnets do not overlap"
        );
        assert!(!a.overlaps(&net("::/0")), "families never overlap");
        assert!(net("fd00::/8").overlaps(&net("fd00:1:2::/64")));
        assert!(a.contains_subnet(&net("172.17.3.0/24")));
        assert!(!net("172.17.3.0/24").contains_subnet(&a));
        assert!(a.contains(ip("172.17.255.255")));
        assert!(!a.contains(ip("172.18.0.0")));
        assert!(!a.contains(ip("::ffff:172.17.0.1")));
    }

    #[test]
    fn default_pools_in_dockers_order() {
        let pools: Vec<String> = default_pools().map(|p| p.to_string()).collect();
        assert_eq!(pools.len(), 15 + 16);
        assert_eq!(pools[0], "172.17.0.0/16");
        assert_eq!(pools[14], "172.31.0.0/16");
        assert_eq!(pools[15], "192.168.0.0/20");
        assert_eq!(pools[16], "192.168.16.0/20");
        assert_eq!(pools[30], "192.168.240.0/20");
    }

    #[test]
    fn allocate_subnet_skips_taken_and_routed() {
        assert_eq!(allocate_subnet(&[], &[]), Some(net("172.17.0.0/16")));
        // docker0 on the host, another wharf network, a requested subnet inside 172.19.
        let taken = [net("172.18.0.0/16"), net("172.19.4.0/24")];
        let routes = [net("172.17.0.0/16"), net("0.0.0.0/0")];
        assert_eq!(allocate_subnet(&taken, &routes), Some(net("172.20.0.0/16")));
        // A route covering all of 172.16/12 pushes allocation into 192.168.
        let routes = [net("172.16.0.0/12"), net("192.168.1.0/24")];
        assert_eq!(allocate_subnet(&[], &routes), Some(net("192.168.16.0/20")));
        // A host address's /32 counts too.
        assert_eq!(
            allocate_subnet(&[], &[net("172.17.0.5/32")]),
            Some(net("172.18.0.0/16"))
        );
        // IPv6 routes never block IPv4 pools.
        assert_eq!(
            allocate_subnet(&[net("::/1")], &[]),
            Some(net("172.17.0.0/16"))
        );
    }

    #[test]
    fn allocate_subnet_runs_out() {
        let all: Vec<Subnet> = default_pools().collect();
        assert_eq!(allocate_subnet(&all, &[]), None);
        let (last, rest) = all.split_last().unwrap();
        assert_eq!(allocate_subnet(rest, &[]), Some(*last));
        assert_eq!(
            allocate_subnet(&[], &[net("172.16.0.0/12"), net("192.168.0.0/16")]),
            None
        );
    }

    #[test]
    fn a_full_config_parses() {
        let entry = pool_entry(
            "172.28.0.0/16",
            Some("172.28.5.0/24"),
            Some("172.28.5.254"),
            &[("router", "172.28.1.5")],
        );
        let config = PoolConfig::parse("front", 0, &entry).unwrap();
        assert_eq!(config.subnet(), net("172.28.0.0/16"));
        assert_eq!(config.ip_range(), Some(net("172.28.5.0/24")));
        assert_eq!(config.gateway(), Some(ip("172.28.5.254")));
        assert_eq!(config.aux_addresses()["router"], ip("172.28.1.5"));

        let v6 = pool_entry("2001:db8:1::/64", None, Some("2001:db8:1::1"), &[]);
        assert_eq!(
            PoolConfig::parse("front", 0, &v6).unwrap().gateway(),
            Some(ip("2001:db8:1::1"))
        );
    }

    #[test]
    fn config_errors_name_the_network_and_field() {
        let cases = [
            (
                pool_entry("172.28.0.0/16", None, Some("172.29.0.1"), &[]),
                r#"network "front": ipam.config[0].gateway "172.29.0.1": not inside subnet 172.28.0.0/16"#,
            ),
            (
                pool_entry("172.28.0.0/16", Some("172.0.0.0/8"), None, &[]),
                r#"network "front": ipam.config[0].ip_range "172.0.0.0/8": not inside subnet 172.28.0.0/16"#,
            ),
            (
                pool_entry("172.28.0.0/16", Some("10.0.0.0/24"), None, &[]),
                r#"network "front": ipam.config[0].ip_range "10.0.0.0/24": not inside subnet 172.28.0.0/16"#,
            ),
            (
                pool_entry("172.28.0.0/16", None, None, &[("host1", "10.0.0.1")]),
                r#"network "front": ipam.config[0].aux_addresses.host1 "10.0.0.1": not inside subnet 172.28.0.0/16"#,
            ),
            (
                pool_entry("172.28.0.0/16", None, Some("172.28.0.0"), &[]),
                r#"network "front": ipam.config[0].gateway "172.28.0.0": it is the subnet's network address"#,
            ),
            (
                pool_entry("172.28.0.0/16", None, Some("172.28.255.255"), &[]),
                r#"network "front": ipam.config[0].gateway "172.28.255.255": it is the subnet's broadcast address"#,
            ),
            (
                pool_entry("172.28.0.0/16", None, None, &[("b", "172.28.255.255")]),
                r#"network "front": ipam.config[0].aux_addresses.b "172.28.255.255": it is the subnet's broadcast address"#,
            ),
            (
                pool_entry("fd00::/64", None, Some("fd00::"), &[]),
                r#"network "front": ipam.config[0].gateway "fd00::": it is the subnet's subnet-router anycast address"#,
            ),
            (
                pool_entry("172.28.0.0/16", None, Some("fd00::1"), &[]),
                r#"network "front": ipam.config[0].gateway "fd00::1": not inside subnet 172.28.0.0/16"#,
            ),
            (
                pool_entry("172.28.0.0/16", None, Some("gw"), &[]),
                r#"network "front": ipam.config[0].gateway "gw": not an IP address"#,
            ),
            (
                pool_entry("172.28.5.0/16", None, None, &[]),
                r#"network "front": ipam.config[0].subnet "172.28.5.0/16": host bits are set: the subnet is 172.28.0.0/16"#,
            ),
            (
                pool_entry("172.28.0.0/31", None, None, &[]),
                r#"network "front": ipam.config[0].subnet "172.28.0.0/31": too small: it needs room for a gateway and a container"#,
            ),
            (
                IpamPool {
                    gateway: Some("172.28.0.1".into()),
                    ..IpamPool::default()
                },
                r#"network "front": ipam.config[0].subnet "": a subnet is required in an ipam.config entry"#,
            ),
        ];
        for (entry, expected) in cases {
            assert_eq!(config_error(&entry), expected);
        }
        // The smallest usable subnets.
        assert!(PoolConfig::parse("front", 0, &pool_entry("10.0.0.0/30", None, None, &[])).is_ok());
        assert!(PoolConfig::parse("front", 0, &pool_entry("fd00::/126", None, None, &[])).is_ok());
    }

    #[test]
    fn a_whole_ipam_section() {
        let ipam = Ipam {
            config: vec![
                pool_entry("172.28.0.0/16", None, None, &[]),
                pool_entry("fd00:28::/64", None, None, &[]),
            ],
            ..Ipam::default()
        };
        assert_eq!(parse_ipam("front", &ipam).unwrap().len(), 2);
        assert!(parse_ipam("front", &Ipam::default()).unwrap().is_empty());

        let two_v4 = Ipam {
            config: vec![
                pool_entry("172.28.0.0/16", None, None, &[]),
                pool_entry("172.29.0.0/16", None, None, &[]),
            ],
            ..Ipam::default()
        };
        assert_eq!(
            parse_ipam("front", &two_v4).unwrap_err().to_string(),
            r#"network "front": ipam.config[1].subnet "172.29.0.0/16": a second IPv4 subnet besides 172.28.0.0/16: a bridge network has one of each family"#
        );
        let other_driver = Ipam {
            driver: Some("dhcp".into()),
            ..Ipam::default()
        };
        assert_eq!(
            parse_ipam("front", &other_driver).unwrap_err().to_string(),
            r#"network "front": ipam.driver "dhcp" is not supported, only "default""#
        );
        let default_driver = Ipam {
            driver: Some("default".into()),
            ..Ipam::default()
        };
        assert!(parse_ipam("front", &default_driver).is_ok());
    }

    #[test]
    fn the_gateway_is_the_first_host_unless_given() {
        assert_eq!(pool("172.28.0.0/16").gateway(), ip("172.28.0.1"));
        assert_eq!(pool("fd00:1::/64").gateway(), ip("fd00:1::1"));
        let entry = pool_entry("172.28.0.0/16", None, Some("172.28.0.254"), &[]);
        let given = AddressPool::new("front", &PoolConfig::parse("front", 0, &entry).unwrap());
        assert_eq!(given.gateway(), ip("172.28.0.254"));
    }

    #[test]
    fn dynamic_addresses_skip_gateway_and_aux() {
        let entry = pool_entry(
            "172.28.0.0/16",
            None,
            Some("172.28.0.3"),
            &[("router", "172.28.0.4")],
        );
        let mut p = AddressPool::new("front", &PoolConfig::parse("front", 0, &entry).unwrap());
        let got: Vec<IpAddr> = (0..3).map(|_| p.allocate(None).unwrap()).collect();
        assert_eq!(got, [ip("172.28.0.1"), ip("172.28.0.2"), ip("172.28.0.5")]);
    }

    #[test]
    fn dynamic_addresses_come_from_ip_range() {
        let entry = pool_entry("172.28.0.0/16", Some("172.28.5.0/30"), None, &[]);
        let mut p = AddressPool::new("front", &PoolConfig::parse("front", 0, &entry).unwrap());
        assert_eq!(p.gateway(), ip("172.28.0.1"));
        let got: Vec<IpAddr> = (0..4).map(|_| p.allocate(None).unwrap()).collect();
        // .0 and .3 of the range are ordinary hosts of the /16.
        assert_eq!(
            got,
            [
                ip("172.28.5.0"),
                ip("172.28.5.1"),
                ip("172.28.5.2"),
                ip("172.28.5.3")
            ]
        );
        assert_eq!(
            p.allocate(None).unwrap_err().to_string(),
            r#"network "front": no free address left in 172.28.5.0/30"#
        );
        // A static address outside the range but inside the subnet is fine.
        assert_eq!(
            p.allocate(Some(ip("172.28.9.9"))).unwrap(),
            ip("172.28.9.9")
        );
    }

    #[test]
    fn a_range_at_the_subnet_edge_excludes_network_and_broadcast() {
        let entry = pool_entry("10.0.0.0/24", Some("10.0.0.252/30"), None, &[]);
        let mut p = AddressPool::new("front", &PoolConfig::parse("front", 0, &entry).unwrap());
        assert_eq!(p.allocate(None).unwrap(), ip("10.0.0.252"));
        assert_eq!(p.allocate(None).unwrap(), ip("10.0.0.253"));
        assert_eq!(p.allocate(None).unwrap(), ip("10.0.0.254"));
        assert!(matches!(p.allocate(None), Err(IpamError::Exhausted { .. })));
        let entry = pool_entry("10.0.0.0/24", Some("10.0.0.0/30"), None, &[]);
        let mut p = AddressPool::new("front", &PoolConfig::parse("front", 0, &entry).unwrap());
        // .0 is the network address, .1 the gateway.
        assert_eq!(p.allocate(None).unwrap(), ip("10.0.0.2"));
        assert_eq!(p.allocate(None).unwrap(), ip("10.0.0.3"));
        assert!(p.allocate(None).is_err());
    }

    #[test]
    fn static_addresses() {
        let entry = pool_entry("172.28.0.0/16", None, None, &[("router", "172.28.0.9")]);
        let mut p = AddressPool::new("front", &PoolConfig::parse("front", 0, &entry).unwrap());
        assert_eq!(
            p.allocate(Some(ip("172.28.0.2"))).unwrap(),
            ip("172.28.0.2")
        );
        let err = |p: &mut AddressPool, a: &str| p.allocate(Some(ip(a))).unwrap_err().to_string();
        assert_eq!(
            err(&mut p, "172.28.0.2"),
            r#"network "front": address 172.28.0.2 is already in use"#
        );
        assert_eq!(
            err(&mut p, "10.0.0.2"),
            r#"network "front": address 10.0.0.2 is not inside its subnet 172.28.0.0/16"#
        );
        assert_eq!(
            err(&mut p, "fd00::2"),
            r#"network "front": address fd00::2 is not inside its subnet 172.28.0.0/16"#
        );
        assert_eq!(
            err(&mut p, "172.28.0.1"),
            r#"network "front": address 172.28.0.1 is reserved as the gateway"#
        );
        assert_eq!(
            err(&mut p, "172.28.0.0"),
            r#"network "front": address 172.28.0.0 is reserved as the network address"#
        );
        assert_eq!(
            err(&mut p, "172.28.255.255"),
            r#"network "front": address 172.28.255.255 is reserved as the broadcast address"#
        );
        assert_eq!(
            err(&mut p, "172.28.0.9"),
            r#"network "front": address 172.28.0.9 is reserved as the auxiliary address "router""#
        );
        // A dynamic allocation steps over the static one.
        assert_eq!(p.allocate(None).unwrap(), ip("172.28.0.3"));
    }

    #[test]
    fn exhaustion_release_and_reuse() {
        // A /29: hosts .1 to .6, .1 the gateway.
        let mut p = pool("10.9.0.0/29");
        let got: Vec<IpAddr> = (0..5).map(|_| p.allocate(None).unwrap()).collect();
        assert_eq!(got.first(), Some(&ip("10.9.0.2")));
        assert_eq!(got.last(), Some(&ip("10.9.0.6")));
        assert_eq!(
            p.allocate(None),
            Err(IpamError::Exhausted {
                network: "front".into(),
                range: net("10.9.0.0/29")
            })
        );
        assert!(p.release(ip("10.9.0.4")));
        assert!(!p.release(ip("10.9.0.4")), "released twice");
        assert!(!p.release(ip("10.9.0.1")), "the gateway is never in use");
        assert_eq!(p.allocate(None).unwrap(), ip("10.9.0.4"));
        assert!(p.allocate(None).is_err());
        // A released address can be requested statically again.
        p.release(ip("10.9.0.3"));
        assert_eq!(p.allocate(Some(ip("10.9.0.3"))).unwrap(), ip("10.9.0.3"));
    }

    #[test]
    fn a_released_address_is_not_handed_out_straight_away() {
        let mut p = pool("10.9.0.0/24");
        let a = p.allocate(None).unwrap();
        let b = p.allocate(None).unwrap();
        p.release(a);
        let c = p.allocate(None).unwrap();
        assert_eq!((a, b, c), (ip("10.9.0.2"), ip("10.9.0.3"), ip("10.9.0.4")));
        // After the end of the range the search wraps around to the start.
        let mut p = pool("10.9.0.0/29");
        for _ in 0..5 {
            p.allocate(None).unwrap();
        }
        p.release(ip("10.9.0.2"));
        p.release(ip("10.9.0.5"));
        assert_eq!(p.allocate(None).unwrap(), ip("10.9.0.2"));
        assert_eq!(p.allocate(None).unwrap(), ip("10.9.0.5"));
    }

    #[test]
    fn ipv6_slash_64() {
        let mut p = pool("fd00:abcd:1::/64");
        assert_eq!(p.gateway(), ip("fd00:abcd:1::1"));
        assert_eq!(p.allocate(None).unwrap(), ip("fd00:abcd:1::2"));
        assert_eq!(
            p.allocate(Some(ip("fd00:abcd:1::3"))).unwrap(),
            ip("fd00:abcd:1::3")
        );
        assert_eq!(p.allocate(None).unwrap(), ip("fd00:abcd:1::4"));
        // The last address is a host in IPv6: no broadcast.
        let last = ip("fd00:abcd:1:0:ffff:ffff:ffff:ffff");
        assert_eq!(p.allocate(Some(last)).unwrap(), last);
        assert_eq!(
            p.allocate(Some(ip("fd00:abcd:1::")))
                .unwrap_err()
                .to_string(),
            r#"network "front": address fd00:abcd:1:: is reserved as the subnet-router anycast address"#
        );
        assert!(matches!(
            p.allocate(Some(ip("10.0.0.2"))),
            Err(IpamError::OutsideSubnet { .. })
        ));
        let in_use: Vec<IpAddr> = p.in_use().collect();
        assert_eq!(in_use.len(), 4);
    }

    #[test]
    fn state_round_trips_through_json() {
        let entry = pool_entry(
            "172.28.0.0/16",
            Some("172.28.5.0/24"),
            None,
            &[("router", "172.28.1.5")],
        );
        let mut p = AddressPool::new("front", &PoolConfig::parse("front", 0, &entry).unwrap());
        p.allocate(None).unwrap();
        p.allocate(Some(ip("172.28.0.7"))).unwrap();
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "network": "front",
                "subnet": "172.28.0.0/16",
                "ip_range": "172.28.5.0/24",
                "gateway": "172.28.0.1",
                "aux_addresses": {"router": "172.28.1.5"},
                "in_use": ["172.28.0.7", "172.28.5.0"],
                "last": "172.28.5.0",
            })
        );
        let mut back: AddressPool = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.allocate(None), p.allocate(None));

        let bad =
            serde_json::json!({"network": "n", "subnet": "172.28.0.1/16", "gateway": "172.28.0.1"});
        let err = serde_json::from_value::<AddressPool>(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("host bits are set"), "{err}");
    }

    proptest! {
        /// Whatever the order of allocations and releases, an address is never handed out
        /// twice, never reserved, always inside the range.
        #[test]
        fn allocations_never_collide(ops in proptest::collection::vec(any::<Option<u8>>(), 1..200)) {
            let entry = pool_entry("10.0.0.0/27", Some("10.0.0.0/28"), Some("10.0.0.5"), &[("x", "10.0.0.9")]);
            let mut p = AddressPool::new("front", &PoolConfig::parse("front", 0, &entry).unwrap());
            let range = net("10.0.0.0/28");
            let mut held: Vec<IpAddr> = Vec::new();
            for op in ops {
                match op {
                    Some(n) if !held.is_empty() => {
                        let addr = held.swap_remove(usize::from(n) % held.len());
                        prop_assert!(p.release(addr));
                    }
                    _ => match p.allocate(None) {
                        Ok(addr) => {
                            prop_assert!(range.contains(addr));
                            prop_assert!(!held.contains(&addr));
                            let reserved = ["10.0.0.0", "10.0.0.5", "10.0.0.9"].map(ip);
                            prop_assert!(!reserved.contains(&addr));
                            held.push(addr);
                        }
                        // 16 in the range less the network address, gateway and aux.
                        Err(_) => prop_assert_eq!(held.len(), 13),
                    },
                }
            }
        }
    }
}
