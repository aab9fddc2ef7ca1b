//! `wharf pause [SERVICE…]` and `wharf unpause [SERVICE…]`: freeze and thaw the processes of
//! the project's running containers through their cgroups ([`crate::runtime::Runtime::pause`]).
//! Pausing a paused container and unpausing one that is not paused do nothing (Docker
//! answers those with an error; a reconciler's commands are better idempotent).

use clap::Args;

use super::lifecycle::{Scope, Target};
use super::{ExitCode, GlobalArgs};

#[derive(Debug, Args)]
pub struct PauseArgs {
    /// The services to act on (default: all)
    pub services: Vec<String>,
}

pub fn run_pause(global: &GlobalArgs, args: PauseArgs) -> anyhow::Result<ExitCode> {
    let scope = Scope::open(global, &args.services)?;
    let targets: Vec<Target> = scope
        .containers(&args.services)
        .into_iter()
        .filter(|t| scope.state(t).is_some_and(|s| s.is_active()))
        .filter(|t| !scope.runtime.is_paused(&t.id))
        .collect();
    scope.each(vec![targets], "Pausing", "Paused", |t| {
        scope.runtime.pause(&t.id).map_err(|e| e.to_string())
    })?;
    Ok(0)
}

pub fn run_unpause(global: &GlobalArgs, args: PauseArgs) -> anyhow::Result<ExitCode> {
    let scope = Scope::open(global, &args.services)?;
    let targets: Vec<Target> = scope
        .containers(&args.services)
        .into_iter()
        .filter(|t| scope.runtime.is_paused(&t.id))
        .collect();
    scope.each(vec![targets], "Unpausing", "Unpaused", |t| {
        scope.runtime.unpause(&t.id).map_err(|e| e.to_string())
    })?;
    Ok(0)
}
