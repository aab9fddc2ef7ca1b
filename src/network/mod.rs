//! wharf's own network layer (issue 5): a Linux bridge per Compose network, a veth pair per
//! container and network, addresses, nftables rules for NAT, published ports and isolation,
//! and the DNS responder for service discovery.
//!
//! The first layers are pure and do no I/O, so they are tested without root: [`names`]
//! derives the host-side interface names (`whb…` bridges, `whv…` veths) from project,
//! network and container, and [`ipam`] parses a network's `ipam` section, picks free subnets
//! from Docker's default pools and hands out the addresses of each subnet. The layers that
//! act on the host (netlink, nftables, the DNS process) come on top and take what these
//! decide. [`rules`] writes the `nft -f` scripts that create and remove a project's chains
//! (published ports, masquerade, isolation) in wharf's own `inet wharf` table.

pub mod firewall;
pub mod ipam;
pub mod model;
pub mod names;
pub mod ports;
pub mod rules;
