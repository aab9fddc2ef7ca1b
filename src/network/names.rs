//! Host-side interface names for bridges and veths.
//!
//! Linux interface names hold at most 15 bytes (`IFNAMSIZ` minus the NUL), far too short for
//! `project_network` or `project-service-1`. So wharf names its links `wh` + a kind letter +
//! twelve hex digits of a SHA-256 over the full names: `whb…` for a network's bridge, `whv…`
//! for the host end of a container's veth. The names are deterministic, so a later `up` or
//! `down` finds the links without a state file (the full names live in the state record for
//! people), and recognisable, so a `wh*` link that no project owns is a leak.
//!
//! The hash input is length-prefixed, so `("a_b", "c")` and `("a", "b_c")` never hash alike.
//! Forty-eight bits of hash make an accidental collision on one host vanishingly unlikely;
//! the network layer still compares an existing link with what it expects before adopting it.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// The most bytes a Linux interface name can hold (`IFNAMSIZ` - 1).
pub const IFNAME_MAX: usize = 15;

/// The `driver_opts` key that names a network's bridge explicitly, as in Docker.
pub const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";

const BRIDGE_PREFIX: &str = "whb";
const VETH_PREFIX: &str = "whv";

/// A name that cannot be used for a link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "network {network:?}: driver_opts.\"{BRIDGE_NAME_OPTION}\" {name:?} is not a valid interface name: {reason}"
    )]
    BridgeName {
        network: String,
        name: String,
        reason: &'static str,
    },
}

/// The bridge for `network` (its key in the Compose file) of `project`: `whb` + 12 hex digits.
pub fn bridge_name(project: &str, network: &str) -> String {
    hashed(BRIDGE_PREFIX, &[project.as_bytes(), network.as_bytes()])
}

/// The host end of the veth that attaches `container` (its full name) of `project` to the
/// network it lists at `network_index`: `whv` + 12 hex digits.
pub fn veth_name(project: &str, container: &str, network_index: usize) -> String {
    let index = (network_index as u64).to_be_bytes();
    hashed(
        VETH_PREFIX,
        &[project.as_bytes(), container.as_bytes(), &index],
    )
}

/// The bridge for a network, honouring `com.docker.network.bridge.name` in its `driver_opts`.
///
/// An explicit name is used as written once it is a valid interface name
/// ([`validate_ifname`]); otherwise the name is [`bridge_name`].
pub fn resolve_bridge_name(
    project: &str,
    network: &str,
    driver_opts: &BTreeMap<String, String>,
) -> Result<String, NameError> {
    match driver_opts.get(BRIDGE_NAME_OPTION) {
        Some(name) => match validate_ifname(name) {
            Ok(()) => Ok(name.clone()),
            Err(reason) => Err(NameError::BridgeName {
                network: network.to_string(),
                name: name.clone(),
                reason,
            }),
        },
        None => Ok(bridge_name(project, network)),
    }
}

/// Whether the kernel accepts `name` as an interface name (`dev_valid_name` in
/// `net/core/dev.c`): 1 to 15 bytes, not `.` or `..`, no `/`, `:`, whitespace or NUL.
/// The error is the reason, for a message.
pub fn validate_ifname(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > IFNAME_MAX {
        return Err("it is longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return Err("`.` and `..` are reserved");
    }
    // The kernel rejects `/`, `:` and isspace() bytes; a non-ASCII whitespace character is
    // rejected too, since no tool would show it sensibly.
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c == '\0' || c.is_whitespace())
    {
        return Err("it contains `/`, `:`, whitespace or NUL");
    }
    Ok(())
}

/// `prefix` + the first 12 hex digits of SHA-256 over the length-prefixed `parts`.
fn hashed(prefix: &str, parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let digest = hex::encode(hasher.finalize());
    let name = format!("{prefix}{}", &digest[..IFNAME_MAX - prefix.len()]);
    debug_assert!(validate_ifname(&name).is_ok());
    name
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn names_have_their_prefix_and_fill_the_limit() {
        let bridge = bridge_name("shop", "front");
        let veth = veth_name("shop", "shop-web-1", 0);
        assert!(bridge.starts_with("whb"), "{bridge}");
        assert!(veth.starts_with("whv"), "{veth}");
        assert_eq!(bridge.len(), IFNAME_MAX);
        assert_eq!(veth.len(), IFNAME_MAX);
    }

    #[test]
    fn names_are_deterministic() {
        assert_eq!(bridge_name("shop", "front"), bridge_name("shop", "front"));
        assert_eq!(veth_name("shop", "web", 1), veth_name("shop", "web", 1));
        // Pinned, so that a change of scheme (which would orphan existing links) is noticed.
        assert_eq!(bridge_name("shop", "default"), "whb16b1e777883d");
        assert_eq!(veth_name("shop", "shop-web-1", 0), "whv680e0852d474");
    }

    #[test]
    fn different_splits_do_not_collide() {
        assert_ne!(bridge_name("a_b", "c"), bridge_name("a", "b_c"));
        assert_ne!(bridge_name("ab", ""), bridge_name("a", "b"));
        assert_ne!(bridge_name("a\0b", "c"), bridge_name("a", "b\0c"));
        assert_ne!(veth_name("p", "web", 0), veth_name("p", "web", 1));
        assert_ne!(veth_name("p", "web", 0), veth_name("q", "web", 0));
    }

    #[test]
    fn an_explicit_bridge_name_is_used_as_written() {
        let opts = BTreeMap::from([(BRIDGE_NAME_OPTION.to_string(), "br-shop".to_string())]);
        assert_eq!(
            resolve_bridge_name("shop", "front", &opts).unwrap(),
            "br-shop"
        );
        assert_eq!(
            resolve_bridge_name("shop", "front", &BTreeMap::new()).unwrap(),
            bridge_name("shop", "front")
        );
    }

    #[test]
    fn an_invalid_bridge_name_is_an_error_naming_the_network() {
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "a\tb",
            "a\0b",
            "sixteen-bytes-xx",
        ] {
            let opts = BTreeMap::from([(BRIDGE_NAME_OPTION.to_string(), bad.to_string())]);
            let err = resolve_bridge_name("shop", "front", &opts).unwrap_err();
            let msg = err.to_string();
            assert!(msg.starts_with("network \"front\": "), "{msg}");
            assert!(msg.contains(BRIDGE_NAME_OPTION), "{msg}");
        }
        let err = validate_ifname("sixteen-bytes-xx").unwrap_err();
        assert_eq!(err, "it is longer than 15 bytes");
        assert!(validate_ifname("fifteen-bytes-x").is_ok());
        assert!(validate_ifname("...").is_ok());
    }

    proptest! {
        #[test]
        fn generated_names_are_always_valid(
            project in ".*",
            network in ".*",
            container in ".*",
            index in any::<usize>(),
        ) {
            let bridge = bridge_name(&project, &network);
            let veth = veth_name(&project, &container, index);
            prop_assert!(bridge.len() <= IFNAME_MAX && bridge.starts_with("whb"));
            prop_assert!(veth.len() <= IFNAME_MAX && veth.starts_with("whv"));
            prop_assert_eq!(validate_ifname(&bridge), Ok(()));
            prop_assert_eq!(validate_ifname(&veth), Ok(()));
            prop_assert!(bridge.bytes().all(|b| b.is_ascii_alphanumeric()));
            prop_assert!(veth.bytes().all(|b| b.is_ascii_alphanumeric()));
        }

        #[test]
        fn accepted_names_fit_the_kernel(name in ".{0,20}") {
            if validate_ifname(&name).is_ok() {
                prop_assert!(!name.is_empty() && name.len() <= IFNAME_MAX);
                prop_assert!(!name.contains(['/', ':', '\0']));
            }
        }
    }
}
