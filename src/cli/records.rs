//! What the read-side commands (`ps`, `ls`, `top`, `logs`) know of the host: the runtime's
//! container records, each container's launch configuration and checked state read once,
//! and which project a command is about (the Compose file's, or `-p NAME` without one).
//! It only reads; it never changes a record or signals a process.

use std::path::Path;

use super::{GlobalArgs, load_project};
use crate::compose::NormalizeOptions;
use crate::compose::model::Project;
use crate::runtime::Runtime;
use crate::runtime::container::{LaunchConfig, State};

/// One container as recorded: its configuration and its state checked against the kernel.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub config: LaunchConfig,
    pub state: State,
}

impl Container {
    pub fn project(&self) -> &str {
        &self.config.spec.project
    }

    pub fn service(&self) -> &str {
        &self.config.spec.service
    }

    pub fn replica(&self) -> u64 {
        self.config.spec.replica
    }

    pub fn name(&self) -> &str {
        &self.config.spec.name
    }

    /// The image reference the container was created from, when recorded (the service's
    /// `image:` in its origin) or given by the loaded project.
    pub fn image(&self, project: Option<&Project>) -> String {
        let recorded = self
            .config
            .origin
            .as_ref()
            .and_then(|o| o.service.get("image"))
            .and_then(|i| i.as_str())
            .map(str::to_string);
        recorded
            .or_else(|| {
                project
                    .and_then(|p| p.services.get(self.service()))
                    .and_then(|s| s.image.clone())
            })
            .unwrap_or_default()
    }
}

/// Every container of the state root (of `project` when given), sorted by project,
/// service and replica. A record that cannot be read (being removed right now) is skipped.
pub fn containers(runtime: &Runtime, project: Option<&str>) -> Vec<Container> {
    let mut out: Vec<Container> = runtime
        .list()
        .into_iter()
        .filter_map(|id| {
            let dir = runtime.dir(&id);
            let config = dir.read_config().ok()?;
            if project.is_some_and(|p| p != config.spec.project) {
                return None;
            }
            let state = dir.read_state().ok()?.checked();
            Some(Container { id, config, state })
        })
        .collect();
    out.sort_by(|a, b| {
        (a.project(), a.service(), a.replica(), a.name()).cmp(&(
            b.project(),
            b.service(),
            b.replica(),
            b.name(),
        ))
    });
    out
}

/// The project a command is about: the Compose file's when there is one (and its model),
/// else the one `-p` names.
pub fn project(global: &GlobalArgs) -> anyhow::Result<(String, Option<Project>)> {
    let loaded = global
        .load_options(&[])
        .ok()
        .and_then(|o| load_project(&o, NormalizeOptions::default()).ok())
        .map(|l| l.project);
    match (loaded, &global.project_name) {
        (Some(p), _) => Ok((p.name.clone(), Some(p))),
        (None, Some(name)) => Ok((name.clone(), None)),
        (None, None) => {
            anyhow::bail!("no Compose file found here: name the project with -p")
        }
    }
}

/// Checks the SERVICE arguments of a command against the project's services (the Compose
/// file's, else the recorded ones).
pub fn check_services(
    services: &[String],
    project: Option<&Project>,
    found: &[Container],
) -> anyhow::Result<()> {
    for s in services {
        let known = match project {
            Some(p) => p.services.contains_key(s),
            None => found.iter().any(|c| c.service() == s),
        };
        if !known {
            anyhow::bail!("no such service: {s}");
        }
    }
    Ok(())
}

/// The runtime of the state root (`WHARF_ROOT`).
pub fn runtime() -> anyhow::Result<Runtime> {
    Ok(Runtime::new(
        &super::image::state_root(),
        &std::env::current_exe()?,
    ))
}

/// The name a container goes by in `logs` prefixes: `web-1` for `<project>-web-1`, its
/// own name when the service sets `container_name` (Docker Compose's rule).
pub fn short_name(project: &str, service: &str, replica: u64, name: &str) -> String {
    if name == format!("{project}-{service}-{replica}") {
        format!("{service}-{replica}")
    } else {
        name.to_string()
    }
}

/// `config.json`'s modification time: when the container was created, for records that
/// predate [`LaunchConfig::created`] (the file is written once, at creation).
pub fn created_fallback(runtime: &Runtime, id: &str) -> Option<std::time::SystemTime> {
    std::fs::metadata(Path::new(&runtime.dir(id).config_path()))
        .and_then(|m| m.modified())
        .ok()
}
