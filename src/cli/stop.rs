//! `wharf stop [SERVICE…] [-t SECS]`: stops the project's running containers, dependents
//! before their dependencies when the Compose file is there, each wave in parallel. Stopped
//! containers stay (with their exit code) until `rm` or `down`. Like `docker compose stop`,
//! it exits 0 when there is nothing to stop.

use std::time::Duration;

use clap::Args;

use super::lifecycle::{Scope, Target};
use super::{ExitCode, GlobalArgs};

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Specify a shutdown timeout in seconds (default: each service's stop_grace_period)
    #[arg(short, long)]
    pub timeout: Option<u64>,
    /// The services to stop (default: all)
    pub services: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: StopArgs) -> anyhow::Result<ExitCode> {
    let scope = Scope::open(global, &args.services)?;
    stop(
        &scope,
        &args.services,
        args.timeout.map(Duration::from_secs),
    )?;
    Ok(0)
}

/// Stops the running containers of `services` (all when empty), in stop order; shared
/// with `rm -s`.
pub fn stop(scope: &Scope, services: &[String], timeout: Option<Duration>) -> anyhow::Result<()> {
    let running: Vec<Target> = scope
        .containers(services)
        .into_iter()
        .filter(|t| scope.state(t).is_some_and(|s| s.is_active()))
        .collect();
    let waves = scope.stop_order(running);
    scope.each(waves, "Stopping", "Stopped", |t| {
        // A paused container cannot act on its stop signal; its supervisor thaws it too,
        // but one without a supervisor gets the signal straight from `Runtime::stop`.
        if scope.runtime.is_paused(&t.id) {
            scope.runtime.unpause(&t.id).map_err(|e| e.to_string())?;
        }
        scope
            .runtime
            .stop(&t.id, timeout)
            .map(drop)
            .map_err(|e| e.to_string())
    })
}
