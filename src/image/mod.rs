//! The OCI image store (issue 3): what `image:` in a Compose file resolves to, as root
//! filesystem layers the runtime can mount.
//!
//! [`reference`] parses and normalizes image names like Docker; [`store`] is the
//! content-addressed store under the state root (blobs verified while they stream in, each
//! layer unpacked once and shared as an overlayfs lower dir); [`unpack`] turns one layer tar
//! into such a directory, safely (no entry may escape it) and atomically; [`layout`] imports
//! OCI layouts and `docker save`/OCI archives; [`fixture`] builds the project's own test image
//! from Debian's busybox-static. [`registry`] pulls from OCI registries (credentials and plain-HTTP
//! settings from [`auth`]) and decides, by `pull_policy`, whether to pull at all.

pub mod auth;
pub mod fixture;
pub mod layout;
pub mod reference;
pub mod registry;
pub mod store;
pub mod unpack;
