//! Every netlink operation wharf performs: bridges, veth attachments, addresses, routes, and
//! the host's routes and addresses that IPAM must avoid. This is the only module that knows
//! `rtnetlink`, whose API breaks on every minor release (it is pinned to `~0.24.0`); keep it
//! that way, so the next upgrade touches one file.
//!
//! The API is synchronous. Each call spawns a dedicated thread that runs the async rtnetlink
//! operations on its own current-thread tokio runtime and then exits, so callers may be plain
//! sync code or sit inside another tokio runtime, and [`attach`] may move that thread into the
//! container's network namespace without ever switching a thread anyone else uses. A call acts
//! on the network namespace of the thread that makes it (threads inherit their creator's), so
//! inside [`netns::run_in`](super::netns::run_in) it acts on that namespace.
//!
//! It acts only on the links it is named: it never lists and deletes, never touches sysctls
//! or firewall rules (those live elsewhere), and never decides names or addresses ([`names`],
//! [`ipam`]). Calls are idempotent where the kernel lets us tell "already so" apart (`EEXIST`
//! when creating, `ENODEV` when deleting).
//!
//! [`names`]: super::names
//! [`ipam`]: super::ipam

use std::collections::BTreeSet;
use std::fs::File;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::thread;

use futures_util::TryStreamExt;
use nix::sched::CloneFlags;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoPortKind, InfoVeth, LinkAttribute, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};
use rtnetlink::{
    Handle, LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};

use super::ipam::{Subnet, SubnetError};

/// A failed netlink operation: which step, on which link, and why.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The kernel refused: `errno` is positive (`EEXIST` 17, `ENODEV` 19, ...).
    #[error("{link}: {step}: {}", io::Error::from_raw_os_error(*errno))]
    Kernel {
        link: String,
        step: String,
        errno: i32,
    },
    /// rtnetlink could not make sense of the exchange (no errno to report).
    #[error("{link}: {step}: {message}")]
    Protocol {
        link: String,
        step: String,
        message: String,
    },
    /// `ensure_bridge` found a link of that name that is not a bridge, and left it alone.
    #[error("{name}: exists but is {kind}, not a bridge")]
    NotABridge { name: String, kind: String },
    #[error("container network namespace {path}: {source}")]
    Netns {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{step}: {source}")]
    Io {
        step: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("the netlink worker thread panicked")]
    Thread,
}

impl NetlinkError {
    /// The kernel's errno (positive), when the kernel refused.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// A bridge for one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSpec {
    pub name: String,
    pub mtu: Option<u32>,
    /// The gateway addresses, each with its subnet's prefix length.
    pub addresses: Vec<(IpAddr, u8)>,
}

/// One container's connection to one network: a veth pair with the host end on the bridge
/// and the other end inside the container's network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The host end (`whv…`, from [`names::veth_name`](super::names::veth_name)).
    pub host_name: String,
    pub bridge: String,
    /// The pinned network namespace of the container.
    pub netns: PathBuf,
    /// The container end: `eth0`, `eth1`, ...
    pub ifname: String,
    /// `None`: the kernel's random, locally administered MAC (see [`docker_mac`]).
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    pub addresses: Vec<(IpAddr, u8)>,
    /// `Some` only on the network that carries the default route; `None` for the others and
    /// for `internal` networks, which get no default route.
    pub gateway4: Option<Ipv4Addr>,
    pub gateway6: Option<Ipv6Addr>,
    /// Bridge port isolation (`IFLA_BRPORT_ISOLATED`), for `enable_icc: "false"`: isolated
    /// ports cannot reach each other, only non-isolated ports (the bridge itself, the host).
    pub isolated: bool,
}

/// Docker's MAC for a container address, `02:42` + the four address bytes, for callers that
/// want Docker's behaviour. wharf otherwise leaves the MAC to the kernel: a random, locally
/// administered address works for IPv6-only networks too, and never repeats just because an
/// address was reused.
pub fn docker_mac(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x02, 0x42, a, b, c, d]
}

/// Creates the bridge if it does not exist (an existing bridge is adopted), sets its MTU,
/// adds the addresses that are missing and brings it up. Returns its interface index.
pub fn ensure_bridge(spec: &BridgeSpec) -> Result<u32, NetlinkError> {
    let name = spec.name.as_str();
    with_netlink(|h| async move {
        match h.link().add(LinkBridge::new(name).build()).execute().await {
            Err(e) if errno(&e) != Some(libc::EEXIST) => {
                return Err(fail("creating the bridge", name)(e));
            }
            _ => {}
        }
        let link = find_link(&h, name, "looking up the bridge").await?;
        let kind = link_kind(&link);
        if kind != Some(InfoKind::Bridge) {
            return Err(NetlinkError::NotABridge {
                name: name.to_string(),
                kind: kind.map_or_else(|| "a link of no kind".into(), |k| format!("a {k}")),
            });
        }
        let index = link.header.index;
        if let Some(mtu) = spec.mtu {
            // Always a separate RTM_SETLINK, never IFLA_MTU in the creating message: only a
            // change through `ndo_change_mtu` marks a bridge's MTU as set by the user. An MTU
            // given at creation is forgotten as soon as the first port joins, when the bridge
            // adopts the smallest MTU of its ports (`br_mtu_auto_adjust`).
            let msg = LinkUnspec::new_with_index(index).mtu(mtu).build();
            h.link()
                .set(msg)
                .execute()
                .await
                .map_err(fail(format!("setting MTU {mtu}"), name))?;
        }
        for &(ip, prefix) in &spec.addresses {
            add_address(&h, index, ip, prefix)
                .await
                .map_err(fail(format!("adding address {ip}/{prefix}"), name))?;
        }
        let msg = LinkUnspec::new_with_index(index).up().build();
        h.link()
            .set(msg)
            .execute()
            .await
            .map_err(fail("bringing it up", name))?;
        Ok(index)
    })
}

/// Deletes the link `name` (for a veth, the pair). `false` when there was none.
pub fn delete_link(name: &str) -> Result<bool, NetlinkError> {
    with_netlink(|h| async move {
        delete_by_name(&h, name)
            .await
            .map_err(fail("deleting the link", name))
    })
}

/// Whether a link called `name` exists.
pub fn link_exists(name: &str) -> Result<bool, NetlinkError> {
    with_netlink(|h| async move {
        link_by_name(&h, name)
            .await
            .map(|link| link.is_some())
            .map_err(fail("looking up the link", name))
    })
}

/// Brings the link `name` up (a new network namespace's `lo`, for example).
pub fn set_link_up(name: &str) -> Result<(), NetlinkError> {
    with_netlink(|h| async move {
        let msg = LinkUnspec::new_with_name(name).up().build();
        h.link()
            .set(msg)
            .execute()
            .await
            .map_err(fail("bringing it up", name))
    })
}

/// Connects a container to a bridge; see [`Attachment`].
///
/// The veth pair is created with one RTM_NEWLINK: the host end already on the bridge with its
/// MTU, the container end created directly *inside* the container's namespace under its final
/// name, with its MAC and MTU (`ip link add … type veth peer name eth0 netns …`). So no temporary name can collide in the host namespace
/// and no half-made link ever shows up there. An existing host end or container interface
/// fails this step with `EEXIST` and nothing is changed (detach first to re-attach).
///
/// Every later failure deletes the host end, which takes the pair with it, and returns the
/// error of the step that failed.
pub fn attach(a: &Attachment) -> Result<(), NetlinkError> {
    let ns = File::open(&a.netns).map_err(|source| NetlinkError::Netns {
        path: a.netns.clone(),
        source,
    })?;
    with_netlink(|host| async move {
        let bridge = find_link(&host, &a.bridge, "looking up the bridge").await?;

        let mut peer = LinkUnspec::new_with_name(&a.ifname).setns_by_fd(ns.as_raw_fd());
        if let Some(mac) = a.mac {
            peer = peer.address(mac.to_vec());
        }
        if let Some(mtu) = a.mtu {
            peer = peer.mtu(mtu);
        }
        // Not `peer.up()`: the kernel configures the peer before the two ends are linked,
        // so opening it then fails in `veth_open` with ENOTCONN. It comes up in `configure`.
        let mut veth = LinkVeth::new(&a.host_name, &a.ifname)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
            .controller(bridge.header.index);
        if let Some(mtu) = a.mtu {
            veth = veth.mtu(mtu);
        }
        // An isolated port comes up only once it is isolated (below): bridge port flags
        // cannot ride on the creating message, the kernel applies IFLA_INFO_SLAVE_DATA only
        // to a link that is already a port.
        if !a.isolated {
            veth = veth.up();
        }
        host.link()
            .add(veth.build())
            .execute()
            .await
            .map_err(fail("creating the veth pair", &a.host_name))?;

        let configured = configure(&host, a, &ns).await;
        if configured.is_err() {
            if let Err(e) = delete_by_name(&host, &a.host_name).await {
                tracing::warn!(link = %a.host_name, error = %e, "could not remove a half-made attachment");
            }
        }
        configured
    })
}

/// Disconnects a container: deletes the host end, which takes the container end with it.
/// `false` when it did not exist.
pub fn detach(host_name: &str) -> Result<bool, NetlinkError> {
    delete_link(host_name)
}

/// The subnets in use in the caller's network namespace, which IPAM must never overlap:
/// every route destination in every table (IPv4 and IPv6, default routes and multicast left
/// out) and the subnet of every interface address. Sorted, without duplicates.
pub fn host_subnets() -> Result<Vec<Subnet>, NetlinkError> {
    with_netlink(|h| async move {
        let mut subnets = BTreeSet::new();
        // A dump without NETLINK_GET_STRICT_CHK ignores the table in the request header and
        // returns every table (main, local, and any policy-routing table).
        let dumps = [
            RouteMessageBuilder::<Ipv4Addr>::new().build(),
            RouteMessageBuilder::<Ipv6Addr>::new().build(),
        ];
        for request in dumps {
            let mut routes = h.route().get(request).execute();
            while let Some(route) = routes
                .try_next()
                .await
                .map_err(fail("listing routes", "*"))?
            {
                subnets.extend(route_subnet(&route));
            }
        }
        let mut addresses = h.address().get().execute();
        while let Some(address) = addresses
            .try_next()
            .await
            .map_err(fail("listing addresses", "*"))?
        {
            subnets.extend(address_subnet(&address));
        }
        Ok(subnets.into_iter().collect())
    })
}

/// The container side of [`attach`], after the pair exists.
async fn configure(host: &Handle, a: &Attachment, ns: &File) -> Result<(), NetlinkError> {
    if a.isolated {
        let msg = LinkMessageBuilder::<LinkBridgePort>::default()
            .name(a.host_name.clone())
            .set_port_kind(InfoPortKind::Bridge)
            .isolated(true)
            .up()
            .build();
        host.link()
            .set_port(msg)
            .execute()
            .await
            .map_err(fail("isolating the bridge port", &a.host_name))?;
    }

    // This thread is ours alone and exits with the call, so it may join the container's
    // namespace. The host socket stays in the host namespace: a netlink socket belongs to
    // the namespace it was opened in, not to the thread's current one.
    nix::sched::setns(ns, CloneFlags::CLONE_NEWNET).map_err(|e| NetlinkError::Netns {
        path: a.netns.clone(),
        source: e.into(),
    })?;
    let inner = connect()?;
    let link = format!("{} in {}", a.ifname, a.netns.display());
    let index = find_link(&inner, &a.ifname, "looking up the container end")
        .await
        .map_err(|e| relabel(e, &link))?
        .header
        .index;
    // Up before the routes: the kernel refuses a gateway route through a link that is down.
    inner
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(fail("bringing it up", &link))?;
    for &(ip, prefix) in &a.addresses {
        add_address(&inner, index, ip, prefix)
            .await
            .map_err(fail(format!("adding address {ip}/{prefix}"), &link))?;
    }
    if let Some(gateway) = a.gateway4 {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .output_interface(index)
            .gateway(gateway)
            .build();
        inner.route().add(route).execute().await.map_err(fail(
            format!("adding the default route via {gateway}"),
            &link,
        ))?;
    }
    if let Some(gateway) = a.gateway6 {
        let route = RouteMessageBuilder::<Ipv6Addr>::new()
            .output_interface(index)
            .gateway(gateway)
            .build();
        inner.route().add(route).execute().await.map_err(fail(
            format!("adding the default route via {gateway}"),
            &link,
        ))?;
    }
    Ok(())
}

/// Runs `f` with a fresh netlink handle on a dedicated thread with its own current-thread
/// runtime (see the module doc for why), and waits for it.
fn with_netlink<T, F, Fut>(f: F) -> Result<T, NetlinkError>
where
    T: Send,
    F: FnOnce(Handle) -> Fut + Send,
    Fut: Future<Output = Result<T, NetlinkError>>,
{
    thread::scope(|s| {
        thread::Builder::new()
            .name("wharf-netlink".into())
            .spawn_scoped(s, move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                    .map_err(|source| NetlinkError::Io {
                        step: "starting a tokio runtime",
                        source,
                    })?;
                runtime.block_on(async move { f(connect()?).await })
            })
            .map_err(|source| NetlinkError::Io {
                step: "spawning the netlink thread",
                source,
            })?
            .join()
            .map_err(|_| NetlinkError::Thread)?
    })
}

/// A netlink handle in the current thread's network namespace; its connection task runs on
/// the current runtime.
fn connect() -> Result<Handle, NetlinkError> {
    let (connection, handle, _) =
        rtnetlink::new_connection().map_err(|source| NetlinkError::Io {
            step: "opening a netlink socket",
            source,
        })?;
    tokio::spawn(connection);
    Ok(handle)
}

async fn link_by_name(h: &Handle, name: &str) -> Result<Option<LinkMessage>, rtnetlink::Error> {
    match h.link().get().match_name(name).execute().try_next().await {
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        other => other,
    }
}

/// The link `name`, which must exist (`ENODEV` otherwise).
async fn find_link(h: &Handle, name: &str, step: &str) -> Result<LinkMessage, NetlinkError> {
    link_by_name(h, name)
        .await
        .map_err(fail(step, name))?
        .ok_or_else(|| NetlinkError::Kernel {
            link: name.to_string(),
            step: step.to_string(),
            errno: libc::ENODEV,
        })
}

async fn delete_by_name(h: &Handle, name: &str) -> Result<bool, rtnetlink::Error> {
    let msg = LinkUnspec::new_with_name(name).build();
    match h.link().del_with_message(msg).execute().await {
        Ok(()) => Ok(true),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Adds an address; one that is already there is fine.
async fn add_address(
    h: &Handle,
    index: u32,
    ip: IpAddr,
    prefix: u8,
) -> Result<(), rtnetlink::Error> {
    let mut request = h.address().add(index, ip, prefix);
    if ip.is_ipv6() {
        // Without IFA_F_NODAD an IPv6 address stays "tentative" for a second of duplicate
        // address detection (and on a bridge with no ports, which has no carrier, until a
        // port comes up): binding to it fails with EADDRNOTAVAIL. IPAM already guarantees
        // the address is unique on the bridge.
        let message = request.message_mut();
        message.header.flags |= AddressHeaderFlags::Nodad;
        message
            .attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    match request.execute().await {
        Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
        other => other,
    }
}

/// The kernel's errno (positive) behind an rtnetlink error; netlink carries it negated.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(message) => message.code.map(|code| -code.get()),
        _ => None,
    }
}

fn fail(step: impl Into<String>, link: &str) -> impl FnOnce(rtnetlink::Error) -> NetlinkError {
    let (step, link) = (step.into(), link.to_string());
    move |e| match errno(&e) {
        Some(errno) => NetlinkError::Kernel { link, step, errno },
        None => NetlinkError::Protocol {
            link,
            step,
            message: e.to_string(),
        },
    }
}

/// Names the link of a [`NetlinkError::Kernel`]/[`NetlinkError::Protocol`] more precisely.
fn relabel(e: NetlinkError, link: &str) -> NetlinkError {
    match e {
        NetlinkError::Kernel { step, errno, .. } => NetlinkError::Kernel {
            link: link.to_string(),
            step,
            errno,
        },
        NetlinkError::Protocol { step, message, .. } => NetlinkError::Protocol {
            link: link.to_string(),
            step,
            message,
        },
        other => other,
    }
}

fn link_kind(link: &LinkMessage) -> Option<InfoKind> {
    link.attributes
        .iter()
        .find_map(|attribute| match attribute {
            LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|info| match info {
                LinkInfo::Kind(kind) => Some(kind.clone()),
                _ => None,
            }),
            _ => None,
        })
}

/// The destination of a route, unless it is a default route or a multicast one.
fn route_subnet(route: &RouteMessage) -> Option<Subnet> {
    let prefix = route.header.destination_prefix_length;
    if prefix == 0 || route.header.kind == RouteType::Multicast {
        return None;
    }
    route
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(IpAddr::V4(*ip)),
            RouteAttribute::Destination(RouteAddress::Inet6(ip)) => Some(IpAddr::V6(*ip)),
            _ => None,
        })
        .and_then(|ip| covering(ip, prefix))
}

/// The subnet of an interface address. `IFA_ADDRESS` rather than `IFA_LOCAL`: on a
/// point-to-point link it is the peer, and the prefix belongs to the peer.
fn address_subnet(address: &AddressMessage) -> Option<Subnet> {
    let find = |local: bool| {
        address
            .attributes
            .iter()
            .find_map(|attribute| match attribute {
                AddressAttribute::Address(ip) if !local => Some(*ip),
                AddressAttribute::Local(ip) if local => Some(*ip),
                _ => None,
            })
    };
    find(false)
        .or_else(|| find(true))
        .and_then(|ip| covering(ip, address.header.prefix_len))
}

/// The subnet of `prefix` bits that holds `ip`.
fn covering(ip: IpAddr, prefix: u8) -> Option<Subnet> {
    match Subnet::new(ip, prefix) {
        Ok(subnet) | Err(SubnetError::HostBits(subnet)) => Some(subnet),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroI32;

    use rtnetlink::packet_core::ErrorMessage;
    use rtnetlink::packet_route::AddressFamily;

    use super::*;

    fn kernel_error(code: i32) -> rtnetlink::Error {
        let mut message = ErrorMessage::default();
        message.code = NonZeroI32::new(code);
        rtnetlink::Error::NetlinkError(message)
    }

    #[test]
    fn errno_is_positive_and_names_step_and_link() {
        assert_eq!(errno(&kernel_error(-17)), Some(libc::EEXIST));
        assert_eq!(errno(&rtnetlink::Error::RequestFailed), None);
        let e = fail("creating the veth pair", "whv0")(kernel_error(-19));
        assert_eq!(e.errno(), Some(libc::ENODEV));
        let text = e.to_string();
        assert!(text.starts_with("whv0: creating the veth pair: "), "{text}");
        let e = fail("x", "whv0")(rtnetlink::Error::RequestFailed);
        assert_eq!(e.errno(), None);
        let e = relabel(fail("x", "eth0")(kernel_error(-17)), "eth0 in /run/x");
        assert!(e.to_string().starts_with("eth0 in /run/x: x: "), "{e}");
    }

    #[test]
    fn docker_mac_is_02_42_and_the_address() {
        assert_eq!(
            docker_mac(Ipv4Addr::new(172, 18, 0, 2)),
            [0x02, 0x42, 172, 18, 0, 2]
        );
    }

    #[test]
    fn subnets_of_routes_and_addresses() {
        let subnet = |s: &str| s.parse::<Subnet>().ok();
        let mut route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(Ipv4Addr::new(10, 1, 2, 0), 24)
            .build();
        assert_eq!(route_subnet(&route), subnet("10.1.2.0/24"));
        route.header.kind = RouteType::Multicast;
        assert_eq!(route_subnet(&route), None);
        let default = RouteMessageBuilder::<Ipv6Addr>::new()
            .gateway("fd00::1".parse().unwrap())
            .build();
        assert_eq!(route_subnet(&default), None);

        let mut address = AddressMessage::default();
        address.header.family = AddressFamily::Inet6;
        address.header.prefix_len = 64;
        address
            .attributes
            .push(AddressAttribute::Local("fd00:1::5".parse().unwrap()));
        assert_eq!(address_subnet(&address), subnet("fd00:1::/64"));
        address
            .attributes
            .push(AddressAttribute::Address("fd00:2::9".parse().unwrap()));
        assert_eq!(address_subnet(&address), subnet("fd00:2::/64"));
        address.header.prefix_len = 200;
        assert_eq!(address_subnet(&address), None);
    }
}
