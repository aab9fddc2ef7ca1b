//! wharf's own container runtime (issue 4): namespaces, overlayfs, cgroups, supervisors.
//!
//! Built in layers. The first is pure: [`spec`] turns a normalized Compose service and its
//! image's config into a [`spec::ContainerSpec`], the complete, validated description of
//! what must be set up (process, user, mounts, namespaces, capabilities, health check,
//! restart policy, logging), and [`cgroup`] translates the resource options into the values
//! to write on cgroup v1 or v2. The supervisor's decisions are pure too: [`restart`]
//! (whether and when to restart) and [`health`] (probe results to `starting`/`healthy`/
//! `unhealthy`). [`log`] owns the container log files (Docker's json-file lines, rotation)
//! and [`cgroupfs`] reads the mount table to find the host's cgroup hierarchies (v1, v2 or
//! hybrid). The layers that act on the host (rootfs, namespaces, cgroups, the per-container
//! supervisor) are still to come; with `network`, this is the only module that will be
//! allowed `unsafe`, and its pure layers stay free of it.

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

pub use linux::{CreateOptions, Runtime, RuntimeError};
