//! `wharf port SERVICE PRIVATE_PORT`: the host address and port a container port is
//! published on, as Docker Compose prints it (`0.0.0.0:8080`), including the ones wharf
//! chose at random.

use clap::Args;

use super::image::state_root;
use super::{ExitCode, GlobalArgs, load_project};
use crate::compose::NormalizeOptions;
use crate::network::linux::Networks;
use crate::network::rules::{Protocol, PublishedPort};
use crate::runtime::Runtime;

#[derive(Debug, Args)]
pub struct PortArgs {
    /// Index of the container if the service has several replicas
    #[arg(long, default_value_t = 1)]
    pub index: u64,
    /// tcp or udp
    #[arg(long, default_value = "tcp")]
    pub protocol: String,
    /// The service
    pub service: String,
    /// The container port (`80`, or `53/udp`)
    pub private_port: String,
}

pub fn run(global: &GlobalArgs, args: PortArgs) -> anyhow::Result<ExitCode> {
    let opts = global.load_options(std::slice::from_ref(&args.service))?;
    let project = load_project(&opts, NormalizeOptions::default())?.project;
    if !project.services.contains_key(&args.service) {
        anyhow::bail!("no such service: {}", args.service);
    }
    let (port, protocol) = match args.private_port.split_once('/') {
        Some((p, proto)) => (p, proto.to_string()),
        None => (args.private_port.as_str(), args.protocol.clone()),
    };
    let port: u16 = port
        .parse()
        .map_err(|_| anyhow::anyhow!("{port:?} is not a port number"))?;
    let protocol = match protocol.to_ascii_lowercase().as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        other => anyhow::bail!("protocol {other:?}: tcp or udp"),
    };
    let root = state_root();
    let exe = std::env::current_exe()?;
    let id = Runtime::new(&root, &exe)
        .find(&project.name, &args.service, args.index)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "service {:?} has no container {} in project {}",
                args.service,
                args.index,
                project.name
            )
        })?;
    let published = Networks::new(&root, &exe).ports(&id)?;
    let found: Vec<&PublishedPort> = published
        .iter()
        .filter(|p| p.container_port == port && p.protocol == protocol)
        .collect();
    if found.is_empty() {
        anyhow::bail!(
            "no port {port}/{protocol} is published for service {:?}",
            args.service
        );
    }
    for p in found {
        println!("{}", host_side(p));
    }
    Ok(0)
}

/// `0.0.0.0:8080`, `127.0.0.1:8080`, `[::1]:8080`: Docker's notation of a binding.
pub fn host_side(p: &PublishedPort) -> String {
    match p.host_ip {
        Some(std::net::IpAddr::V6(ip)) => format!("[{ip}]:{}", p.host_port),
        Some(ip) => format!("{ip}:{}", p.host_port),
        None if p.container_ip.is_ipv6() => format!("[::]:{}", p.host_port),
        None => format!("0.0.0.0:{}", p.host_port),
    }
}
