//! `wharf start` and `wharf restart`: the project's existing containers started (after
//! their dependencies, whose `depends_on` conditions are waited for) or stopped and started
//! again. Nothing is created or recreated: that is `up`'s job. A container that has never
//! run gets its network sandbox here, as at `up`, so the Compose file is needed.

use std::time::Duration;

use clap::Args;

use super::image::{open_store, state_root};
use super::{ExitCode, GlobalArgs, load_project};
use crate::apply::linux::{LinuxDriver, UpContext};
use crate::compose::NormalizeOptions;
use crate::network::linux::Networks;
use crate::plan::{desired, start};
use crate::runtime::Runtime;
use crate::runtime::cgroupfs::Hierarchies;

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Services to start (default: all)
    pub services: Vec<String>,
    /// With --wait-timeout: how long a start waits for its dependencies (seconds)
    #[arg(long, default_value_t = 300)]
    pub wait_timeout: u64,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// Services to restart (default: all)
    pub services: Vec<String>,
    /// Seconds to wait for each container to stop before killing it
    #[arg(short, long)]
    pub timeout: Option<u64>,
    /// Don't restart dependent services (accepted; dependents are never restarted)
    #[arg(long)]
    pub no_deps: bool,
}

pub fn run_start(global: &GlobalArgs, args: StartArgs) -> anyhow::Result<ExitCode> {
    run(global, &args.services, false, None, args.wait_timeout)
}

pub fn run_restart(global: &GlobalArgs, args: RestartArgs) -> anyhow::Result<ExitCode> {
    run(global, &args.services, true, args.timeout, 300)
}

fn run(
    global: &GlobalArgs,
    services: &[String],
    restart: bool,
    timeout: Option<u64>,
    wait_timeout: u64,
) -> anyhow::Result<ExitCode> {
    let project = load_project(&global.load_options(&[])?, NormalizeOptions::default())?.project;
    for s in services {
        if !project.services.contains_key(s) {
            anyhow::bail!("no such service: {s}");
        }
    }
    let root = state_root();
    let exe = std::env::current_exe()?;
    let _lock = super::lock_project(&root, &project.name)?;
    let runtime = Runtime::new(&root, &exe);
    let live = crate::state::observe(
        &project.name,
        &runtime,
        &Networks::new(&root, &exe),
        Default::default(),
    )?;
    let plan = start(&desired(&project), &live, services, restart);
    if global.dry_run {
        super::print(&plan.to_string())?;
        return Ok(0);
    }
    if plan.is_empty() {
        return Ok(0);
    }
    let cgroup = Hierarchies::read(std::path::Path::new("/proc/self/mountinfo"))?.version();
    let driver =
        LinuxDriver::new(&root, &exe, timeout.map(Duration::from_secs)).with_project(UpContext {
            project,
            store: open_store()?,
            cgroup,
            dependency_timeout: Duration::from_secs(wait_timeout),
            say: Box::new(|m| eprintln!(" {m}")),
        });
    Ok(if super::apply_progress::apply(global, &plan, driver)? {
        0
    } else {
        1
    })
}
