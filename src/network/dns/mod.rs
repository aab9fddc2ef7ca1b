//! wharf's DNS responder for service discovery, shaped like Podman's aardvark-dns: one
//! long-lived process per state root (the wharf binary re-executed as `wharf __dns
//! <root>`), listening on UDP and TCP port 53 of every network's gateway address, and
//! answering each query from the names of the networks the asking container is on (or, for
//! a client it does not know, of the network whose gateway the query arrived on).
//! Everything else is relayed to the container's `dns:` servers or the host's resolvers.
//!
//! - [`records`]: the records file `<root>/network/dns.json`, the only interface between
//!   the network layer (writer) and the responder (reader). Pure.
//! - [`answer`]: one query in, response bytes or "forward" out. Pure, never panics.
//! - [`server`]: the responder process itself (tokio, `current_thread`).
//! - [`process`]: the control side used by the network layer: write the records, start
//!   the responder if needed, SIGHUP it to reload, stop it when the last network is gone.
//!
//! The responder runs in the host's network namespace; it never enters a container's.

pub mod answer;
pub mod process;
pub mod records;
pub mod server;

use std::path::PathBuf;

/// How the responder is run: its port and where the host's resolvers are listed. The
/// defaults are the real ones; tests use high ports on loopback addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The port listened on, UDP and TCP (53).
    pub port: u16,
    /// The host's resolver configuration (`/etc/resolv.conf`), reread when it changes.
    pub resolv_conf: PathBuf,
    /// The port of the `nameserver`s in `resolv_conf` (53: the file has no port syntax).
    pub upstream_port: u16,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            port: 53,
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            upstream_port: 53,
        }
    }
}

impl Options {
    /// The arguments after `__dns <root>` that reproduce these options.
    pub fn to_args(&self) -> Vec<String> {
        vec![
            "--port".into(),
            self.port.to_string(),
            "--resolv-conf".into(),
            self.resolv_conf.to_string_lossy().into_owned(),
            "--upstream-port".into(),
            self.upstream_port.to_string(),
        ]
    }

    /// Parses what [`Options::to_args`] wrote; unknown or malformed flags are an error
    /// (the responder is only ever started by wharf itself or by tests).
    pub fn from_args(args: &[std::ffi::OsString]) -> Result<Options, String> {
        let mut options = Options::default();
        let mut rest = args.iter();
        while let Some(flag) = rest.next() {
            let value = rest
                .next()
                .ok_or_else(|| format!("{} needs a value", flag.to_string_lossy()))?;
            let number = || {
                value
                    .to_str()
                    .and_then(|v| v.parse::<u16>().ok())
                    .ok_or_else(|| format!("{}: not a port", value.to_string_lossy()))
            };
            match flag.to_str() {
                Some("--port") => options.port = number()?,
                Some("--upstream-port") => options.upstream_port = number()?,
                Some("--resolv-conf") => options.resolv_conf = PathBuf::from(value),
                _ => return Err(format!("unknown flag {}", flag.to_string_lossy())),
            }
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip_through_arguments() {
        let options = Options {
            port: 5353,
            resolv_conf: "/tmp/resolv.conf".into(),
            upstream_port: 1053,
        };
        let args: Vec<std::ffi::OsString> = options.to_args().into_iter().map(Into::into).collect();
        assert_eq!(Options::from_args(&args), Ok(options));
        assert_eq!(Options::from_args(&[]), Ok(Options::default()));
        assert!(Options::from_args(&["--port".into()]).is_err());
        assert!(Options::from_args(&["--port".into(), "x".into()]).is_err());
    }
}
