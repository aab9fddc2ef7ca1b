//! The responder's records file, `<root>/network/dns.json`: which addresses the responder
//! listens on, and which names each network carries. Pure: types, (de)serialization and
//! the normalization of names. Writing the file (atomically) is [`super::process`]'s job,
//! answering from it is [`super::answer`]'s.
//!
//! The network layer is the only writer; it rewrites the whole file whenever a container
//! joins or leaves a network, then signals the responder, which rereads it. One file for
//! every network of the state root (rather than aardvark-dns's file per network) keeps
//! the update a single atomic rename, so the responder never sees half a change.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

/// Everything the responder serves. An empty list of networks means no responder is
/// needed ([`super::process::sync`] stops it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Records {
    #[serde(default)]
    pub networks: Vec<NetworkRecords>,
    /// Which write this is: the responder writes it to `dns.loaded` once it serves these
    /// records, so the writer can wait until a new container's name answers.
    #[serde(default)]
    pub generation: u64,
}

/// One network: where its containers send queries, and the names visible on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecords {
    /// The network's identity, for logs (`<project>_<network>`).
    pub id: String,
    /// The network's gateway addresses (the bridge's own addresses), which the containers'
    /// `/etc/resolv.conf` names. A query's scope is the network of the address it
    /// arrived on.
    pub listen: Vec<IpAddr>,
    #[serde(default)]
    pub entries: Vec<Entry>,
}

/// One container on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The container's name: it resolves, and it is the answer to reverse (PTR) lookups of
    /// the container's addresses.
    pub name: String,
    /// Further names on this network: the service name (shared by the replicas, so it
    /// answers with all of their addresses), the `hostname`, network `aliases`, `links`
    /// aliases.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The container's addresses on this network.
    pub addresses: Vec<IpAddr>,
    /// The container's `dns:` servers, where its queries for other names go; empty: the
    /// host's resolvers.
    #[serde(default)]
    pub upstreams: Vec<SocketAddr>,
}

impl Entry {
    /// The container name, then the aliases.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

impl Records {
    /// The records in `bytes` (the file's content).
    pub fn from_json(bytes: &[u8]) -> Result<Records, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Plain data (strings, addresses, vectors): serializing cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Every address the responder must listen on, sorted, without duplicates.
    pub fn listen_addresses(&self) -> Vec<IpAddr> {
        let mut all: Vec<IpAddr> = self
            .networks
            .iter()
            .flat_map(|n| n.listen.iter().copied())
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// The form names are compared in: DNS names are case-insensitive (RFC 4343), and `web`
/// and `web.` are the same name to a resolver with no search domain.
pub fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_round_trips_and_optional_fields_may_be_left_out() {
        let json = br#"{"networks":[{"id":"p_default","listen":["10.0.0.1"],
            "entries":[{"name":"p-web-1","addresses":["10.0.0.2"]}]}]}"#;
        let records = Records::from_json(json).unwrap();
        let entry = &records.networks[0].entries[0];
        assert!(entry.aliases.is_empty() && entry.upstreams.is_empty());
        assert_eq!(Records::from_json(&records.to_json()).unwrap(), records);
        assert_eq!(Records::from_json(b"{}").unwrap(), Records::default());
    }

    #[test]
    fn listen_addresses_are_deduplicated() {
        let net = |listen: &[&str]| NetworkRecords {
            id: "n".into(),
            listen: listen.iter().map(|a| a.parse().unwrap()).collect(),
            entries: vec![],
        };
        let records = Records {
            networks: vec![
                net(&["10.0.1.1", "fd00::1"]),
                net(&["10.0.0.1", "10.0.1.1"]),
            ],
            generation: 0,
        };
        let got: Vec<String> = records
            .listen_addresses()
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(got, ["10.0.0.1", "10.0.1.1", "fd00::1"]);
    }

    #[test]
    fn names_compare_without_case_or_trailing_dot() {
        assert_eq!(normalize("Web."), "web");
        assert_eq!(normalize("db"), "db");
    }
}
