//! `wharf down`: stops and removes the project's containers and networks (and with `-v`
//! its named volumes and its anonymous ones), from what the state records: it works
//! without the Compose file (`-p NAME`; then `-v` removes only the anonymous volumes, the
//! named ones being unknown), after a crash, and on a host that changed behind wharf's
//! back. Without `-v` every volume stays, the anonymous ones recorded for a later `down
//! -v` (see [`crate::state`]). Failures are collected, everything else is still removed,
//! and every failure is reported.

use std::time::Duration;

use clap::Args;

use super::image::state_root;
use super::{ExitCode, GlobalArgs, load_project};
use crate::apply::linux::LinuxDriver;
use crate::compose::NormalizeOptions;
use crate::network::linux::Networks;
use crate::plan::{desired, teardown};
use crate::runtime::Runtime;

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Remove the named volumes declared in the Compose file, and anonymous volumes
    #[arg(short, long)]
    pub volumes: bool,
    /// Also remove containers of services no longer in the Compose file (always done:
    /// `down` removes every container of the project)
    #[arg(long)]
    pub remove_orphans: bool,
    /// Seconds to wait for each container to stop before killing it
    #[arg(short, long)]
    pub timeout: Option<u64>,
    /// Remove images used by services: "local" those without a custom tag (wharf builds
    /// none, so none), "all" every image the services use
    #[arg(long, value_enum)]
    pub rmi: Option<Rmi>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum Rmi {
    Local,
    All,
}

pub fn run(global: &GlobalArgs, args: DownArgs) -> anyhow::Result<ExitCode> {
    // The Compose file gives the stop order and the volumes; without one, `-p` names the
    // project and everything recorded for it goes.
    let opts = global.load_options(&[]);
    let loaded = opts
        .as_ref()
        .ok()
        .and_then(|o| load_project(o, NormalizeOptions::default()).ok())
        .map(|l| l.project);
    let name = match (&loaded, &global.project_name) {
        (Some(p), _) => p.name.clone(),
        (None, Some(name)) => name.clone(),
        (None, None) => {
            anyhow::bail!("no Compose file found here: name the project with -p to take it down")
        }
    };
    let want = loaded.as_ref().map(desired);
    let mut volumes: Vec<String> = match (&want, args.volumes) {
        (Some(d), true) => d
            .volumes
            .values()
            .filter(|v| !v.external)
            .map(|v| v.name.clone())
            .collect(),
        (None, true) => {
            eprintln!(
                "WARN[0000] -v: without the Compose file wharf does not know the project's named volumes; they are kept"
            );
            Vec::new()
        }
        _ => Vec::new(),
    };
    let root = state_root();
    let exe = std::env::current_exe()?;
    let lock = super::lock_project(&root, &name)?;
    let (runtime, networks) = (Runtime::new(&root, &exe), Networks::new(&root, &exe));
    crate::state::sweep(&name, &runtime, &networks)?;
    let live = crate::state::observe(&name, &runtime, &networks, Default::default())?;
    if args.volumes {
        volumes.extend(live.anonymous_volumes.iter().cloned());
    }
    let plan = teardown(want.as_ref(), &live, &volumes);
    if plan.is_empty() {
        eprintln!("nothing to remove for project {name}");
    } else {
        let driver = LinuxDriver::new(&root, &exe, args.timeout.map(Duration::from_secs));
        if !super::apply_progress::apply(global, &plan, driver)? {
            return Ok(1);
        }
    }
    lock.remove_if_empty();
    if args.rmi == Some(Rmi::All) {
        remove_images(loaded.as_ref(), &runtime)?;
    }
    Ok(0)
}

/// `--rmi all`: the images the project's services use, except one a container left on this
/// host still runs (Docker refuses those too).
fn remove_images(
    project: Option<&crate::compose::Project>,
    runtime: &Runtime,
) -> anyhow::Result<()> {
    let Some(project) = project else {
        eprintln!(
            "WARN[0000] --rmi: without the Compose file wharf does not know the project's images; they are kept"
        );
        return Ok(());
    };
    let in_use: Vec<String> = runtime
        .list()
        .into_iter()
        .filter_map(|id| runtime.config(&id).ok()?.origin)
        .filter_map(|o| o.service.get("image")?.as_str().map(String::from))
        .collect();
    let store = super::image::open_store()?;
    let mut images: Vec<&String> = project
        .services
        .values()
        .filter_map(|s| s.image.as_ref())
        .collect();
    images.sort();
    images.dedup();
    for image in images {
        if in_use.contains(image) {
            eprintln!(" Image {image}  Kept (a container still uses it)");
            continue;
        }
        let reference = crate::image::reference::Reference::parse(image)?.to_string();
        if store.remove(&reference)? {
            eprintln!(" Image {image}  Removed");
        }
    }
    Ok(())
}
