//! wharf's own container runtime (issue 4): namespaces, overlayfs, cgroups, supervisors.
//!
//! Pure layers decide: [`spec`] turns a normalized Compose service and its image's config
//! into a [`spec::ContainerSpec`] (process, user, mounts, namespaces, capabilities, health
//! check, restart policy, logging); [`cgroup`] translates the resource options into cgroup
//! v1 or v2 writes; [`restart`] and [`health`] make the supervisor's decisions by Docker's
//! rules; [`seccomp`] compiles Docker's default seccomp profile for a capability set.
//!
//! Host layers act: [`linux::Runtime`] is the entry point (create, start, stop, kill,
//! remove, exec, logs), keeping each container in a directory ([`container`]) watched by
//! its own supervisor process (`supervisor`, the binary re-executed). The supervisor
//! starts the container's init (`init`) in new namespaces; the init builds the root
//! filesystem (`rootfs`) in its private mount namespace and drops to the container's
//! identity (`process`) before exec; `nsexec` enters a running container for `exec` and
//! health probes. [`cgroupdir`] owns the container's cgroup directories, [`cgroupfs`]
//! finds the hierarchies, [`volume`] the volumes under the state root, [`log`] the log
//! files. Every helper process is a fresh exec of the wharf binary, never a fork of a
//! caller that may run tokio; namespaces are entered only in those single-threaded
//! processes. `unsafe` lives in `sys` alone, each block with its reason.

pub mod cgroup;
pub mod cgroupdir;
pub mod cgroupfs;
pub mod container;
pub mod health;
mod init;
pub mod linux;
pub mod log;
pub mod nsexec;
mod process;
pub mod restart;
mod rootfs;
pub mod seccomp;
pub mod spec;
mod supervisor;
mod sys;
pub mod volume;

pub use linux::{AnonymousVolumes, CreateOptions, Runtime, RuntimeError};
