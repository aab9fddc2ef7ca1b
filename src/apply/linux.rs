//! The real [`Driver`]: a plan's steps carried out by the runtime and the network layer of
//! one state root.
//!
//! Steps name their resource as the plan renders it (`container:shop-web-1`,
//! `network:shop_default`, `volume:shop_data`); the driver finds the container by its
//! name among the runtime's records. So far it carries out what `down` plans (stop and
//! remove containers with their network sandboxes, remove networks and volumes); creating
//! comes with `up`.

use std::path::Path;
use std::time::Duration;

use crate::network::linux::Networks;
use crate::plan::{Operation, Step};
use crate::runtime::Runtime;

use super::Driver;

pub struct LinuxDriver {
    runtime: Runtime,
    networks: Networks,
    /// `-t`: the stop grace period instead of each service's own.
    timeout: Option<Duration>,
}

impl LinuxDriver {
    pub fn new(state_root: &Path, exe: &Path, timeout: Option<Duration>) -> LinuxDriver {
        LinuxDriver {
            runtime: Runtime::new(state_root, exe),
            networks: Networks::new(state_root, exe),
            timeout,
        }
    }

    /// The id of the container named `name`.
    fn container(&self, name: &str) -> Result<String, String> {
        self.runtime
            .list()
            .into_iter()
            .find(|id| self.runtime.config(id).is_ok_and(|c| c.spec.name == name))
            .ok_or_else(|| format!("no container named {name}"))
    }
}

impl Driver for LinuxDriver {
    fn execute(&self, step: &Step) -> Result<(), String> {
        let (kind, name) = step
            .resource
            .split_once(':')
            .ok_or_else(|| format!("malformed resource {:?}", step.resource))?;
        match (step.operation, kind) {
            (Operation::StopContainer, "container") => {
                let id = self.container(name)?;
                self.runtime
                    .stop(&id, self.timeout)
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
            (Operation::RemoveContainer, "container") => {
                let id = self.container(name)?;
                // The process first (remove stops what still runs), then its sandbox.
                self.runtime.remove(&id).map_err(|e| e.to_string())?;
                self.networks
                    .remove_sandbox(&id)
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
            (Operation::RemoveNetwork, "network") => self
                .networks
                .remove_network(name)
                .map(drop)
                .map_err(|e| e.to_string()),
            (Operation::RemoveVolume, "volume") => self
                .runtime
                .volumes()
                .remove(name)
                .map_err(|e| e.to_string()),
            (op, _) => Err(format!(
                "{op:?} of {} is not supported yet (it comes with `up`)",
                step.resource
            )),
        }
    }
}
