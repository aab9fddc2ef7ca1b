//! The network layer on a Linux host: creates and removes networks (bridges, address pools,
//! rules) and containers' sandboxes (a pinned network namespace with one veth per
//! network), keeps the DNS responder's records and the project's nftables chains in step,
//! and records all of it under `<state root>/network/`.
//!
//! Every change happens under one lock (by default host-wide: two projects brought up at
//! the same moment, from any state root, choose their subnets one after the other, and the
//! first one's bridge route is in place before the second one looks at the host's routes).
//! Every operation checks everything a user can get wrong — a taken port, a subnet that
//! overlaps another network, a static address outside its subnet, a missing external
//! network — *before* it changes anything, and undoes what it did when a later step fails:
//! no link, namespace, address or rule is left behind by an error.
//!
//! This module does not decide *what* should exist (that is the reconciler's job, from
//! [`super::model`]); it makes what it is asked for exist, idempotently.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::dns;
use super::dns::records::{Entry, NetworkRecords, Records};
use super::etc;
use super::firewall::{self, FirewallError};
use super::ipam::{self, AddressPool, IpamError, PoolConfig, Subnet};
use super::model::{EndpointSpec, Mode, NetworkSpec, SandboxSpec};
use super::names;
use super::netlink::{self, Attachment, BridgeSpec, NetlinkError};
use super::netns::{self, NetnsError};
use super::ports::{self, Held, PortError, PortRequest, SocketProbe};
use super::rules::{self, NetworkRules, PublishedPort};

/// The host-wide lock of every wharf network change (see the module documentation).
pub const HOST_LOCK: &str = "/run/lock/wharf-network.lock";

/// A network change that could not be made. Nothing was changed when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(
        "network {name:?} is declared as external, but it does not exist (create it with another project first)"
    )]
    ExternalMissing { name: String },
    #[error("network {name:?} (of project {project:?}) is not created yet")]
    Missing { project: String, name: String },
    #[error("network {name:?} exists with another configuration; remove it first")]
    Changed { name: String },
    #[error("network {name:?} is still in use by {containers}")]
    InUse { name: String, containers: String },
    #[error("network {name:?}: subnet {subnet} overlaps network {other:?} ({other_subnet})")]
    Overlap {
        name: String,
        subnet: Subnet,
        other: String,
        other_subnet: Subnet,
    },
    #[error("network {name:?}: every default address pool is in use on this host")]
    NoFreeSubnet { name: String },
    #[error("container {id:?} already has its network sandbox")]
    SandboxExists { id: String },
    #[error("container {id:?} has no network sandbox")]
    NoSandbox { id: String },
    #[error("container {id:?} is not attached to network {network:?}")]
    NotAttached { id: String, network: String },
    #[error("network_mode {target:?}: no such container")]
    JoinTarget { target: String },
    #[error(transparent)]
    Etc(#[from] etc::EtcError),
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    #[error(transparent)]
    Dns(#[from] dns::process::DnsError),
    #[error("{what} {path}: {source}", path = path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the network record {path} is damaged: {message}", path = path.display())]
    Record { path: PathBuf, message: String },
}

type Result<T> = std::result::Result<T, NetworkError>;

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> NetworkError {
    let path = path.to_path_buf();
    move |source| NetworkError::Io { what, path, source }
}

/// A network as it exists on the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub spec: NetworkSpec,
    /// One pool per subnet: IPv4 first, then IPv6 when enabled.
    pub pools: Vec<AddressPool>,
}

impl NetworkRecord {
    pub fn subnets(&self) -> impl Iterator<Item = Subnet> + '_ {
        self.pools.iter().map(AddressPool::subnet)
    }

    fn pool(&mut self, v4: bool) -> Option<&mut AddressPool> {
        self.pools.iter_mut().find(|p| p.subnet().is_ipv4() == v4)
    }

    fn gateways(&self) -> Vec<IpAddr> {
        self.pools.iter().map(AddressPool::gateway).collect()
    }
}

/// One attachment of a sandbox as it exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    /// The network's name on the host.
    pub network: String,
    pub key: String,
    pub ifname: String,
    /// The host end of the veth.
    pub veth: String,
    pub addresses: Vec<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<[u8; 6]>,
    pub names: Vec<String>,
    pub default_route: bool,
}

/// A container's networking as it exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub id: String,
    pub spec: SandboxSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<PathBuf>,
    #[serde(default)]
    pub endpoints: Vec<EndpointRecord>,
    #[serde(default)]
    pub ports: Vec<PublishedPort>,
}

/// What the runtime needs to create the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    /// The pinned namespace to join (`None`: the runtime's own choice from the spec).
    pub netns: Option<PathBuf>,
    pub hosts: String,
    pub resolv_conf: String,
    pub ports: Vec<PublishedPort>,
}

/// The networks and sandboxes of one state root.
#[derive(Debug, Clone)]
pub struct Networks {
    dir: PathBuf,
    exe: PathBuf,
    lock: PathBuf,
    /// The host's resolver configuration, copied for `network_mode: host`.
    host_resolv: PathBuf,
    state_root: PathBuf,
}

struct Locked {
    _lock: Flock<File>,
}

impl Networks {
    /// The network layer keeping its records under `state_root`, re-executing `exe` (the
    /// wharf binary) for the DNS responder, serialized by [`HOST_LOCK`].
    pub fn new(state_root: &Path, exe: &Path) -> Networks {
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        Networks {
            state_root: absolute(state_root),
            dir: absolute(state_root).join("network"),
            exe: absolute(exe),
            lock: PathBuf::from(HOST_LOCK),
            host_resolv: PathBuf::from("/etc/resolv.conf"),
        }
    }

    /// Serializes changes with `lock` instead of the host-wide lock (tests, whose host is a
    /// network namespace of their own).
    pub fn with_lock(mut self, lock: &Path) -> Networks {
        self.lock = lock.to_path_buf();
        self
    }

    pub fn root(&self) -> &Path {
        &self.dir
    }

    fn networks_dir(&self) -> PathBuf {
        self.dir.join("networks")
    }

    fn sandboxes_dir(&self) -> PathBuf {
        self.dir.join("sandboxes")
    }

    /// Where container `id`'s network namespace is pinned once its sandbox exists (the
    /// runtime is told this path when the container is created; the pin is made when it
    /// first starts).
    pub fn netns_path(&self, id: &str) -> PathBuf {
        self.dir.join("netns").join(id)
    }

    fn network_path(&self, name: &str) -> PathBuf {
        self.networks_dir().join(format!("{name}.json"))
    }

    fn sandbox_path(&self, id: &str) -> PathBuf {
        self.sandboxes_dir().join(format!("{id}.json"))
    }

    fn locked(&self) -> Result<Locked> {
        for d in [
            self.networks_dir(),
            self.sandboxes_dir(),
            self.dir.join("netns"),
        ] {
            fs::create_dir_all(&d).map_err(io("creating", &d))?;
        }
        if let Some(parent) = self.lock.parent() {
            fs::create_dir_all(parent).map_err(io("creating", parent))?;
        }
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .map_err(io("opening the lock", &self.lock))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| {
            io("locking", &self.lock)(std::io::Error::from_raw_os_error(errno as i32))
        })?;
        Ok(Locked { _lock: lock })
    }

    // --- records -------------------------------------------------------------------------

    fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
        match fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| NetworkError::Record {
                        path: path.to_path_buf(),
                        message: e.to_string(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("reading", path)(e)),
        }
    }

    fn write<T: Serialize>(path: &Path, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| NetworkError::Record {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        crate::state::replace_file(path, &bytes).map_err(io("replacing", path))
    }

    fn remove_file(path: &Path) -> Result<()> {
        match fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("removing", path)(e)),
            _ => Ok(()),
        }
    }

    fn all<T: for<'de> Deserialize<'de>>(dir: &Path) -> Result<Vec<T>> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("reading", dir)(e)),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        let mut out = Vec::with_capacity(paths.len());
        for p in paths {
            if let Some(v) = Self::read(&p)? {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Every network of this state root.
    pub fn networks(&self) -> Result<Vec<NetworkRecord>> {
        Self::all(&self.networks_dir())
    }

    /// Every sandbox of this state root.
    pub fn sandboxes(&self) -> Result<Vec<SandboxRecord>> {
        Self::all(&self.sandboxes_dir())
    }

    pub fn network(&self, name: &str) -> Result<Option<NetworkRecord>> {
        Self::read(&self.network_path(name))
    }

    pub fn sandbox(&self, id: &str) -> Result<Option<SandboxRecord>> {
        Self::read(&self.sandbox_path(id))
    }

    /// The network an attachment names (by its name on the host, so that an `external`
    /// network of another project is found too).
    fn network_of(&self, project: &str, ep: &EndpointSpec) -> Result<NetworkRecord> {
        self.network(&ep.name)?
            .ok_or_else(|| NetworkError::Missing {
                project: project.to_string(),
                name: ep.name.clone(),
            })
    }

    // --- networks ------------------------------------------------------------------------

    /// Creates the network `spec` describes, or returns it when it exists as described.
    /// An external network is only looked up.
    pub fn create_network(&self, spec: &NetworkSpec) -> Result<NetworkRecord> {
        let _lock = self.locked()?;
        let existing = self.network(&spec.name)?;
        if spec.external {
            return existing.ok_or_else(|| NetworkError::ExternalMissing {
                name: spec.name.clone(),
            });
        }
        if let Some(record) = existing {
            if record.spec != *spec {
                return Err(NetworkError::Changed {
                    name: spec.name.clone(),
                });
            }
            // Recorded as it is asked: make sure the host still has it (a reboot takes
            // bridges, sysctls and rules with it; the records stay). All of it is
            // idempotent and cheap when nothing is missing.
            netlink::ensure_bridge(&Self::bridge_of(&record))?;
            firewall::enable_forwarding(spec.ipv6)?;
            firewall::prepare_bridge(&spec.bridge, spec.ipv6)?;
            self.sync_project(&spec.project)?;
            self.sync_dns()?;
            return Ok(record);
        }
        let others = self.networks()?;
        let pools = self.choose_pools(spec, &others)?;
        let record = NetworkRecord {
            spec: spec.clone(),
            pools,
        };
        let bridge = Self::bridge_of(&record);
        let existed = netlink::link_exists(&spec.bridge)?;
        let made = (|| -> Result<()> {
            // The record first: a crash before the bridge exists leaves a record that the
            // next `up` completes and the next `down` removes; the other way round, a
            // bridge no record names, which nothing would ever remove.
            Self::write(&self.network_path(&spec.name), &record)?;
            netlink::ensure_bridge(&bridge)?;
            firewall::enable_forwarding(spec.ipv6)?;
            firewall::prepare_bridge(&spec.bridge, spec.ipv6)?;
            self.sync_project(&spec.project)?;
            self.sync_dns()
        })();
        if let Err(e) = made {
            let _ = Self::remove_file(&self.network_path(&spec.name));
            if !existed {
                let _ = netlink::delete_link(&spec.bridge);
            }
            let _ = self.sync_project(&spec.project);
            let _ = self.sync_dns();
            return Err(e);
        }
        Ok(record)
    }

    /// The bridge of a network: its gateways as the bridge's own addresses.
    fn bridge_of(record: &NetworkRecord) -> BridgeSpec {
        BridgeSpec {
            name: record.spec.bridge.clone(),
            mtu: record.spec.mtu,
            addresses: record
                .pools
                .iter()
                .map(|p| (p.gateway(), p.subnet().prefix()))
                .collect(),
        }
    }

    /// The address pools of a new network: the `ipam.config` subnets, checked against
    /// every other network of wharf's, or else free default pools.
    fn choose_pools(
        &self,
        spec: &NetworkSpec,
        others: &[NetworkRecord],
    ) -> Result<Vec<AddressPool>> {
        let mut configs: Vec<PoolConfig> = spec.pools()?;
        for c in &configs {
            let subnet = c.subnet();
            for other in others {
                if let Some(o) = other.subnets().find(|o| o.overlaps(&subnet)) {
                    return Err(NetworkError::Overlap {
                        name: spec.name.clone(),
                        subnet,
                        other: other.spec.name.clone(),
                        other_subnet: o,
                    });
                }
            }
        }
        if !configs.iter().any(|c| c.subnet().is_ipv4()) {
            let mut taken: Vec<Subnet> = others.iter().flat_map(|o| o.subnets()).collect();
            // Explicit subnets of networks not created yet are not in the way here: the
            // reconciler creates a project's explicit networks first.
            taken.extend(configs.iter().map(PoolConfig::subnet));
            let host = netlink::host_subnets()?;
            let subnet =
                ipam::allocate_subnet(&taken, &host).ok_or_else(|| NetworkError::NoFreeSubnet {
                    name: spec.name.clone(),
                })?;
            configs.insert(0, PoolConfig::automatic(&spec.name, subnet)?);
        }
        if spec.ipv6 && !configs.iter().any(|c| !c.subnet().is_ipv4()) {
            configs.push(PoolConfig::automatic(&spec.name, spec.automatic_ipv6())?);
        }
        configs.sort_by_key(|c| !c.subnet().is_ipv4());
        Ok(configs
            .iter()
            .map(|c| AddressPool::new(&spec.name, c))
            .collect())
    }

    /// Removes network `name`. The caller names only networks its project owns: a network
    /// another project declares `external` is left to its owner. Refused while a container
    /// is attached.
    pub fn remove_network(&self, name: &str) -> Result<bool> {
        let _lock = self.locked()?;
        let Some(record) = self.network(name)? else {
            return Ok(false);
        };
        let users: Vec<String> = self
            .sandboxes()?
            .into_iter()
            .filter(|s| s.endpoints.iter().any(|e| e.network == name))
            .map(|s| s.spec.container_name)
            .collect();
        if !users.is_empty() {
            return Err(NetworkError::InUse {
                name: name.to_string(),
                containers: users.join(", "),
            });
        }
        // The bridge before its record, for the same reason as in `create_network`.
        netlink::delete_link(&record.spec.bridge)?;
        Self::remove_file(&self.network_path(name))?;
        self.sync_project(&record.spec.project)?;
        self.sync_dns()?;
        Ok(true)
    }

    // --- sandboxes -----------------------------------------------------------------------

    /// Prepares the networking of container `id` as `spec` asks: for bridge networks a
    /// pinned namespace with its interfaces, addresses and routes, its published ports and
    /// its DNS names. Everything is checked first; nothing is left behind on error.
    pub fn create_sandbox(&self, id: &str, spec: &SandboxSpec) -> Result<Sandbox> {
        let _lock = self.locked()?;
        if self.sandbox(id)?.is_some() {
            return Err(NetworkError::SandboxExists { id: id.to_string() });
        }
        let mut record = SandboxRecord {
            id: id.to_string(),
            spec: spec.clone(),
            netns: None,
            endpoints: Vec::new(),
            ports: Vec::new(),
        };
        let endpoints = match &spec.mode {
            Mode::Bridge(endpoints) => endpoints.clone(),
            Mode::Join(target) => {
                // The other container's namespace, and its resolver and hosts.
                let name = target.split_once(':').map_or(target.as_str(), |(_, n)| n);
                let other = self
                    .sandboxes()?
                    .into_iter()
                    .find(|s| {
                        s.spec.project == spec.project
                            && (s.spec.service == name || s.spec.container_name == name)
                    })
                    .ok_or_else(|| NetworkError::JoinTarget {
                        target: target.clone(),
                    })?;
                let files = self.etc_files(&other)?;
                Self::write(&self.sandbox_path(id), &record)?;
                return Ok(Sandbox {
                    netns: None,
                    ..files
                });
            }
            Mode::Host | Mode::None => {
                let files = self.etc_files(&record)?;
                Self::write(&self.sandbox_path(id), &record)?;
                return Ok(files);
            }
        };

        // 1. Addresses, in memory: the pools are written only once everything worked.
        let mut networks: BTreeMap<String, NetworkRecord> = BTreeMap::new();
        for ep in &endpoints {
            let net = self.network_of(&spec.project, ep)?;
            networks.insert(ep.network.clone(), net);
        }
        for ep in &endpoints {
            let net = networks.get_mut(&ep.network).expect("loaded above");
            record
                .endpoints
                .push(Self::allocate(net, ep, spec, record.endpoints.len())?);
        }

        // 2. Ports, against every other binding and the host.
        // Ports go to the address on the network of the default route, else on the first
        // network that is not internal (as Docker maps them).
        let reachable = |e: &&EndpointRecord| !networks[&e.key].spec.internal;
        let container_ip = record
            .endpoints
            .iter()
            .filter(reachable)
            .find(|e| e.default_route)
            .or_else(|| record.endpoints.iter().find(reachable))
            .and_then(|e| e.addresses.iter().find(|a| a.is_ipv4()).copied());
        if let Some(ip) = container_ip {
            let held = self.held_ports(|_| false)?;
            record.ports = ports::bind(&spec.service, &spec.ports, ip, &held, &SocketProbe)?;
        }

        // 3. The host: namespace, veths, records, rules, DNS.
        let netns = self.netns_path(id);
        // A pin without a record is what a crash between the two leaves: ours, unused. Its
        // veths (same names as ours) go with it, once the kernel gets to it.
        if netns.exists() {
            netns::remove(&netns)?;
            let veths: Vec<&str> = record.endpoints.iter().map(|e| e.veth.as_str()).collect();
            Self::await_veths_gone(&veths)?;
        }
        netns::create(&netns)?;
        record.netns = Some(netns.clone());
        let result = (|| -> Result<()> {
            for ep in &record.endpoints {
                self.plug(&networks[&ep.key], ep, &netns)?;
            }
            for net in networks.values() {
                Self::write(&self.network_path(&net.spec.name), net)?;
            }
            Self::write(&self.sandbox_path(id), &record)?;
            self.sync_project(&spec.project)?;
            self.sync_dns()
        })();
        if let Err(e) = result {
            self.unplug_all(&record);
            let _ = Self::remove_file(&self.sandbox_path(id));
            // The pools as they were: give the addresses back.
            for (key, mut net) in networks {
                for ep in record.endpoints.iter().filter(|e| e.key == key) {
                    for a in &ep.addresses {
                        if let Some(p) = net.pool(a.is_ipv4()) {
                            p.release(*a);
                        }
                    }
                }
                let _ = Self::write(&self.network_path(&net.spec.name), &net);
            }
            let _ = self.sync_project(&spec.project);
            let _ = self.sync_dns();
            return Err(e);
        }
        let files = self.etc_files(&record)?;
        Ok(Sandbox {
            netns: Some(netns),
            ports: record.ports,
            ..files
        })
    }

    /// Takes the addresses of one attachment from `net`'s pools (static ones as asked).
    fn allocate(
        net: &mut NetworkRecord,
        ep: &EndpointSpec,
        spec: &SandboxSpec,
        index: usize,
    ) -> Result<EndpointRecord> {
        let mut addresses = Vec::new();
        let v4 = net
            .pool(true)
            .map(|p| p.allocate(ep.ipv4_address.map(IpAddr::V4)));
        addresses.push(v4.transpose()?);
        if net.spec.ipv6 {
            let v6 = net
                .pool(false)
                .map(|p| p.allocate(ep.ipv6_address.map(IpAddr::V6)));
            match v6.transpose() {
                Ok(a) => addresses.push(a),
                Err(e) => {
                    for a in addresses.iter().flatten() {
                        if let Some(p) = net.pool(a.is_ipv4()) {
                            p.release(*a);
                        }
                    }
                    return Err(e.into());
                }
            }
        }
        Ok(EndpointRecord {
            network: net.spec.name.clone(),
            key: ep.network.clone(),
            ifname: ep.ifname.clone(),
            veth: names::veth_name(&spec.project, &spec.container_name, index),
            addresses: addresses.into_iter().flatten().collect(),
            mac: ep.mac,
            names: ep.names.clone(),
            default_route: ep.default_route && !net.spec.internal,
        })
    }

    /// Creates the veth of one attachment in `netns`.
    fn plug(&self, net: &NetworkRecord, ep: &EndpointRecord, netns: &Path) -> Result<()> {
        let prefix = |a: &IpAddr| {
            net.pools
                .iter()
                .find(|p| p.subnet().contains(*a))
                .map_or(if a.is_ipv4() { 32 } else { 128 }, |p| p.subnet().prefix())
        };
        let gateway = |v4: bool| {
            net.pools
                .iter()
                .find(|p| p.subnet().is_ipv4() == v4)
                .map(AddressPool::gateway)
        };
        netlink::attach(&Attachment {
            host_name: ep.veth.clone(),
            bridge: net.spec.bridge.clone(),
            netns: netns.to_path_buf(),
            ifname: ep.ifname.clone(),
            mac: ep.mac,
            mtu: net.spec.mtu,
            addresses: ep.addresses.iter().map(|a| (*a, prefix(a))).collect(),
            gateway4: match gateway(true) {
                Some(IpAddr::V4(g)) if ep.default_route => Some(g),
                _ => None,
            },
            gateway6: match gateway(false) {
                Some(IpAddr::V6(g)) if ep.default_route => Some(g),
                _ => None,
            },
            isolated: !net.spec.icc,
        })?;
        Ok(())
    }

    /// Best effort: removes every veth and the namespace of `record` (on error paths, where
    /// the error being returned is the one that matters).
    fn unplug_all(&self, record: &SandboxRecord) {
        for ep in &record.endpoints {
            let _ = netlink::detach(&ep.veth);
        }
        if let Some(ns) = &record.netns {
            let _ = netns::remove(ns);
        }
    }

    /// Removes container `id`'s sandbox: its veths, namespace, addresses, ports and names.
    ///
    /// The veths go with the namespace: once the pin is unmounted and the container's
    /// processes are gone, the kernel destroys the namespace and, with it, each veth pair
    /// (deleting one end deletes both). It does so on a work queue that handles every dying
    /// namespace in one batch, whereas deleting links one by one waits for an RCU grace
    /// period each (about 20 ms, under the kernel's RTNL lock): `down` of 50 containers
    /// spent a second there. So the host lock is released before waiting for the veths to
    /// disappear, which lets many removals wait together; a veth still there after
    /// [`VETH_GONE_WAIT`] (a process still holds the namespace) is deleted explicitly.
    pub fn remove_sandbox(&self, id: &str) -> Result<bool> {
        let record = {
            let _lock = self.locked()?;
            let Some(record) = self.sandbox(id)? else {
                return Ok(false);
            };
            if let Some(ns) = &record.netns {
                netns::remove(ns)?;
            }
            self.release(&record.endpoints)?;
            Self::remove_file(&self.sandbox_path(id))?;
            self.sync_project(&record.spec.project)?;
            self.sync_dns_unconfirmed()?;
            record
        };
        let veths: Vec<&str> = record.endpoints.iter().map(|e| e.veth.as_str()).collect();
        Self::await_veths_gone(&veths)?;
        Ok(true)
    }

    /// Waits until the kernel has taken `veths` with their unpinned namespace, and deletes
    /// those still there after [`VETH_GONE_WAIT`].
    fn await_veths_gone(veths: &[&str]) -> Result<()> {
        let deadline = std::time::Instant::now() + VETH_GONE_WAIT;
        for veth in veths {
            while netlink::link_exists(veth)? && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            // The kernel may take it between the look-up and the delete.
            if let Err(e) = netlink::detach(veth) {
                if netlink::link_exists(veth)? {
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    fn release(&self, endpoints: &[EndpointRecord]) -> Result<()> {
        for ep in endpoints {
            if let Some(mut net) = self.network(&ep.network)? {
                for a in &ep.addresses {
                    if let Some(p) = net.pool(a.is_ipv4()) {
                        p.release(*a);
                    }
                }
                Self::write(&self.network_path(&ep.network), &net)?;
            }
        }
        Ok(())
    }

    /// Attaches running container `id` to one more network (`ep.network` is its key).
    pub fn connect(&self, id: &str, ep: &EndpointSpec) -> Result<EndpointRecord> {
        let _lock = self.locked()?;
        let mut record = self
            .sandbox(id)?
            .ok_or_else(|| NetworkError::NoSandbox { id: id.to_string() })?;
        let netns = record
            .netns
            .clone()
            .ok_or_else(|| NetworkError::NoSandbox { id: id.to_string() })?;
        if let Some(existing) = record.endpoints.iter().find(|e| e.key == ep.network) {
            return Ok(existing.clone());
        }
        let mut net = self.network_of(&record.spec.project, ep)?;
        // The next free interface name and veth index: earlier attachments may be gone.
        let mut ep = ep.clone();
        // One default route per namespace: a later network only carries it when no
        // attachment does any more (the one that did was disconnected).
        ep.default_route &= !record.endpoints.iter().any(|e| e.default_route);
        let taken = |name: &str| record.endpoints.iter().any(|e| e.ifname == name);
        if taken(&ep.ifname) {
            ep.ifname = (0..)
                .map(|i| format!("eth{i}"))
                .find(|n| !taken(n))
                .expect("an unbounded range has a free name");
        }
        let index = (0..)
            .find(|i| {
                let v = names::veth_name(&record.spec.project, &record.spec.container_name, *i);
                !record.endpoints.iter().any(|e| e.veth == v)
            })
            .expect("an unbounded range has a free index");
        let endpoint = Self::allocate(&mut net, &ep, &record.spec, index)?;
        let result = (|| -> Result<()> {
            self.plug(&net, &endpoint, &netns)?;
            record.endpoints.push(endpoint.clone());
            Self::write(&self.network_path(&net.spec.name), &net)?;
            Self::write(&self.sandbox_path(id), &record)?;
            self.sync_project(&record.spec.project)?;
            self.sync_dns()
        })();
        if let Err(e) = result {
            let _ = netlink::detach(&endpoint.veth);
            record.endpoints.retain(|e| e.veth != endpoint.veth);
            let _ = Self::write(&self.sandbox_path(id), &record);
            let _ = self.release(std::slice::from_ref(&endpoint));
            let _ = self.sync_project(&record.spec.project);
            let _ = self.sync_dns();
            return Err(e);
        }
        Ok(endpoint)
    }

    /// Detaches container `id` from network `key` (its Compose key).
    pub fn disconnect(&self, id: &str, key: &str) -> Result<()> {
        let _lock = self.locked()?;
        let mut record = self
            .sandbox(id)?
            .ok_or_else(|| NetworkError::NoSandbox { id: id.to_string() })?;
        let Some(pos) = record.endpoints.iter().position(|e| e.key == key) else {
            return Err(NetworkError::NotAttached {
                id: id.to_string(),
                network: key.to_string(),
            });
        };
        let ep = record.endpoints.remove(pos);
        netlink::detach(&ep.veth)?;
        self.release(std::slice::from_ref(&ep))?;
        // Ports published through this network's address go with it.
        record
            .ports
            .retain(|p| !ep.addresses.contains(&p.container_ip));
        Self::write(&self.sandbox_path(id), &record)?;
        self.sync_project(&record.spec.project)?;
        self.sync_dns()
    }

    /// Every binding wharf holds in this state root, but `except` container's.
    /// Checks, before anything is made, that the containers `wanted` (each a service and
    /// its port requests) can publish their ports: against the host's listeners, every
    /// binding wharf holds except those of the containers in `freed` (which the same plan
    /// removes first), and each other. Nothing changes.
    pub fn check_ports(
        &self,
        project: &str,
        wanted: &[(String, Vec<PortRequest>)],
        freed: &[String],
    ) -> Result<()> {
        let mut held = self.held_ports(|id| freed.iter().any(|f| f == id))?;
        for (service, requests) in wanted {
            let any = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
            for p in ports::bind(service, requests, any, &held, &SocketProbe)? {
                held.push(Held {
                    project: project.to_string(),
                    host_ip: p.host_ip,
                    host_port: p.host_port,
                    protocol: p.protocol,
                });
            }
        }
        Ok(())
    }

    /// The host ports every sandbox holds, but those of the sandboxes `skip` names.
    fn held_ports(&self, skip: impl Fn(&str) -> bool) -> Result<Vec<Held>> {
        Ok(self
            .sandboxes()?
            .into_iter()
            .filter(|s| !skip(&s.id))
            .flat_map(|s| {
                let project = s.spec.project.clone();
                s.ports.into_iter().map(move |p| Held {
                    project: project.clone(),
                    host_ip: p.host_ip,
                    host_port: p.host_port,
                    protocol: p.protocol,
                })
            })
            .collect())
    }

    // --- derived state: rules, DNS, /etc files ------------------------------------------

    /// Rewrites `project`'s chains from the records: its networks, and every network its
    /// containers are attached to, with their published ports.
    fn sync_project(&self, project: &str) -> Result<()> {
        let networks = self.networks()?;
        let sandboxes: Vec<SandboxRecord> = self
            .sandboxes()?
            .into_iter()
            .filter(|s| s.spec.project == project)
            .collect();
        let mut wanted: Vec<&NetworkRecord> = networks
            .iter()
            .filter(|n| n.spec.project == project)
            .collect();
        for s in &sandboxes {
            for ep in &s.endpoints {
                if let Some(n) = networks.iter().find(|n| n.spec.name == ep.network)
                    && !wanted.iter().any(|w| w.spec.name == n.spec.name)
                {
                    wanted.push(n);
                }
            }
        }
        let applied = self.applied_rules_path(project);
        if wanted.is_empty() {
            firewall::apply(project, &rules::delete_project(project))?;
            Self::remove_file(&applied)?;
            return Ok(firewall::remove_table_if_empty()?);
        }
        let mut rules_of = Vec::new();
        for net in wanted {
            let ports: Vec<PublishedPort> = sandboxes
                .iter()
                .flat_map(|s| s.ports.iter())
                .filter(|p| net.subnets().any(|sub| sub.contains(p.container_ip)))
                .copied()
                .collect();
            for subnet in net.subnets() {
                rules_of.push(NetworkRules {
                    project: project.to_string(),
                    network: net.spec.key.clone(),
                    bridge: net.spec.bridge.clone(),
                    subnet,
                    internal: net.spec.internal,
                    icc: net.spec.icc,
                    ports: ports
                        .iter()
                        .filter(|p| subnet.contains(p.container_ip))
                        .copied()
                        .collect(),
                });
            }
        }
        // Most changes (a container attached without ports) leave the ruleset as it was;
        // running `nft` costs more than everything else an attachment does, so the script
        // last applied is kept and compared. It is only valid in the same boot and network
        // namespace: rules do not survive a reboot, and tests use namespaces of their own.
        let script = rules::project_ruleset(project, &rules_of);
        let stamped = format!("# applied in {}\n{script}", rules_identity());
        if fs::read_to_string(&applied).is_ok_and(|last| last == stamped) {
            return Ok(());
        }
        firewall::apply(project, &script)?;
        if let Some(parent) = applied.parent() {
            fs::create_dir_all(parent).map_err(io("creating", parent))?;
        }
        fs::write(&applied, stamped).map_err(io("writing", &applied))
    }

    fn applied_rules_path(&self, project: &str) -> PathBuf {
        self.dir
            .join("rules")
            .join(format!("{}.nft", rules::chain_name("project", project)))
    }

    /// [`Self::sync_dns`] without waiting for the responder to confirm (after a removal).
    fn sync_dns_unconfirmed(&self) -> Result<()> {
        let records = dns_records(&self.networks()?, &self.sandboxes()?);
        dns::process::sync_with(&self.state_root, &self.exe, &records, false)?;
        Ok(())
    }

    /// Rewrites the DNS responder's records from every network and sandbox of this root,
    /// starting it for the first network and stopping it after the last.
    fn sync_dns(&self) -> Result<()> {
        let records = dns_records(&self.networks()?, &self.sandboxes()?);
        dns::process::sync(&self.state_root, &self.exe, &records)?;
        Ok(())
    }

    /// The container's `/etc/hosts` and `/etc/resolv.conf` as its networks are now (after
    /// a connect or disconnect the caller rewrites them: the resolver is the gateway of the
    /// first network, which may have changed).
    pub fn sandbox_files(&self, id: &str) -> Result<Sandbox> {
        let record = self
            .sandbox(id)?
            .ok_or_else(|| NetworkError::NoSandbox { id: id.to_string() })?;
        self.etc_files(&record)
    }

    /// `/etc/hosts` and `/etc/resolv.conf` of a sandbox.
    fn etc_files(&self, record: &SandboxRecord) -> Result<Sandbox> {
        let spec = &record.spec;
        let own: Vec<IpAddr> = record
            .endpoints
            .iter()
            .flat_map(|e| e.addresses.iter().copied())
            .collect();
        let gateway = record
            .endpoints
            .iter()
            .max_by_key(|e| e.default_route)
            .and_then(|e| self.network(&e.network).ok().flatten())
            .and_then(|n| n.gateways().first().copied());
        let host_resolv = fs::read_to_string(&self.host_resolv).unwrap_or_default();
        let servers: Vec<String> = spec.dns.iter().map(IpAddr::to_string).collect();
        let settings = etc::DnsSettings {
            servers: &servers,
            search: &spec.dns_search,
            options: &spec.dns_opt,
        };
        let resolv_conf = match (&spec.mode, gateway) {
            (Mode::Bridge(_), Some(gw)) => etc::resolv_conf(gw, settings, &host_resolv),
            _ => etc::resolv_conf_host(settings, &host_resolv),
        };
        let names: Vec<String> = std::iter::once(spec.container_name.clone())
            .filter(|n| *n != spec.hostname)
            .collect();
        let hosts = etc::hosts(etc::HostsInput {
            hostname: &spec.hostname,
            domainname: None,
            names: &names,
            addresses: &own,
            extra_hosts: &spec.extra_hosts,
            gateway,
            ipv6: own.iter().any(IpAddr::is_ipv6),
        })?;
        Ok(Sandbox {
            netns: record.netns.clone(),
            hosts,
            resolv_conf,
            ports: record.ports.clone(),
        })
    }

    /// The published ports of container `id` (for `wharf port` and `wharf ps`).
    pub fn ports(&self, id: &str) -> Result<Vec<PublishedPort>> {
        Ok(self.sandbox(id)?.map(|s| s.ports).unwrap_or_default())
    }
}

/// How long [`Networks::remove_sandbox`] lets the kernel take a sandbox's veths with its
/// namespace before deleting them itself.
const VETH_GONE_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Where rules applied now live: this boot, this network namespace.
fn rules_identity() -> String {
    let boot = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let netns = fs::read_link("/proc/thread-self/ns/net")
        .map(|l| l.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("boot {} {netns}", boot.trim())
}

/// The responder's records: per network, each attachment's container name, its other
/// names and addresses, and the `links` aliases of the containers on it.
pub fn dns_records(networks: &[NetworkRecord], sandboxes: &[SandboxRecord]) -> Records {
    let mut out = Records::default();
    for net in networks {
        let mut entries: Vec<(&SandboxRecord, Entry)> = Vec::new();
        for s in sandboxes {
            for ep in s.endpoints.iter().filter(|e| e.network == net.spec.name) {
                entries.push((
                    s,
                    Entry {
                        name: s.spec.container_name.clone(),
                        aliases: ep
                            .names
                            .iter()
                            .filter(|n| **n != s.spec.container_name)
                            .cloned()
                            .collect(),
                        addresses: ep.addresses.clone(),
                        upstreams: s
                            .spec
                            .dns
                            .iter()
                            .map(|ip| std::net::SocketAddr::new(*ip, 53))
                            .collect(),
                    },
                ));
            }
        }
        // Legacy links: the alias names the linked container on the networks both share.
        // (Docker scopes the alias to the linking container alone; here every container
        // of the network sees it.)
        let links: Vec<(String, String, String)> = entries
            .iter()
            .flat_map(|(s, _)| {
                s.spec
                    .links
                    .iter()
                    .map(|(t, a)| (s.spec.project.clone(), t.clone(), a.clone()))
            })
            .collect();
        for (project, target, alias) in links {
            for (t, entry) in entries.iter_mut() {
                let is_target = t.spec.project == project
                    && (t.spec.service == target || t.spec.container_name == target);
                if is_target && !entry.aliases.contains(&alias) {
                    entry.aliases.push(alias.clone());
                }
            }
        }
        out.networks.push(NetworkRecords {
            id: net.spec.name.clone(),
            listen: net.gateways(),
            entries: entries.into_iter().map(|(_, e)| e).collect(),
        });
    }
    out
}
