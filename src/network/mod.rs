//! wharf's own network layer (issue 5): a Linux bridge per Compose network, a veth pair per
//! container and network, addresses, nftables rules for NAT, published ports and isolation,
//! and the DNS responder for service discovery.
//!
//! The pure layers do no I/O and are tested without root: [`names`] derives the host-side
//! interface names (`whb…` bridges, `whv…` veths) from project, network and container;
//! [`ipam`] parses a network's `ipam` section, picks free subnets from Docker's default
//! pools and hands out the addresses of each subnet; [`model`] normalizes what a project
//! asks (networks, each container's attachments in interface order, its names);
//! [`rules`] writes the `nft -f` scripts that create and remove a project's chains
//! (published ports, masquerade, isolation) in wharf's own `inet wharf` table; [`etc`]
//! writes the containers' `/etc/resolv.conf` and `/etc/hosts`.
//!
//! The layers that act on the host take what those decide: [`ports`] probes host ports
//! before anything is published; [`netns`] pins the network namespaces containers join and
//! runs code inside them on a dedicated thread; [`netlink`] is the only place that speaks
//! netlink (bridges, veth attachments, addresses, routes, and the host subnets IPAM must
//! avoid), behind a small synchronous API; [`firewall`] applies the rules with `nft`; [`dns`]
//! is the DNS responder (a long-lived helper process) and its control side. [`linux`] puts
//! them together: networks and sandboxes created, connected and removed under one lock,
//! with their records under `<state root>/network/`.

pub mod dns;
pub mod etc;
pub mod firewall;
pub mod ipam;
pub mod linux;
pub mod model;
pub mod names;
pub mod netlink;
pub mod netns;
pub mod ports;
pub mod rules;

/// Runs the network layer's helper process if `args` (the whole command line) asks for
/// it: `wharf __dns <state root> [options]`, the DNS responder. Like the runtime's
/// hidden commands it runs before the command-line parser, and never returns.
pub fn hidden_command(args: &[std::ffi::OsString]) {
    if args.get(1).and_then(|a| a.to_str()) != Some("__dns") {
        return;
    }
    let Some(root) = args.get(2).map(std::path::PathBuf::from) else {
        eprintln!(
            "usage: wharf __dns <state root> [--port N] [--resolv-conf PATH] [--upstream-port N]"
        );
        std::process::exit(2);
    };
    match dns::Options::from_args(args.get(3..).unwrap_or_default()) {
        Ok(options) => dns::server::main(&root, &options),
        Err(e) => {
            eprintln!("wharf __dns: {e}");
            std::process::exit(2);
        }
    }
}
