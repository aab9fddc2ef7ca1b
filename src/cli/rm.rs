//! `wharf rm [SERVICE…] [-f] [-s] [-v]`: removes the project's stopped containers, each with
//! its network sandbox. Running containers are left alone unless `-s` stops them first.
//! Their anonymous volumes go with `-v` (except one another container mounts); without it
//! they stay, recorded for the project so that `down -v` removes them later.
//! Without `-f` it asks `Going to remove X, Y. Are you sure? [y/N]` and reads one line of
//! standard input, on a terminal or not, as Docker Compose does since v2.15 (a pipe that
//! says `y` confirms; an empty line or end of input declines, and then nothing is removed
//! and the exit code is still 0).

use std::io::{BufRead, Write};
use std::time::Duration;

use clap::Args;

use super::lifecycle::{Scope, Target, is_yes};
use super::{ExitCode, GlobalArgs};
use crate::network::linux::Networks;
use crate::runtime::AnonymousVolumes;

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Don't ask to confirm removal
    #[arg(short, long)]
    pub force: bool,
    /// Stop the containers, if required, before removing
    #[arg(short, long)]
    pub stop: bool,
    /// Remove any anonymous volumes attached to containers
    #[arg(short, long)]
    pub volumes: bool,
    /// Compose configuration files, when given after `rm` (long form only: here, as in
    /// Docker Compose, `-f` is `--force`; the global `-f FILE` goes before `rm`)
    #[arg(long = "file", id = "file", hide = true)]
    pub file: Vec<std::path::PathBuf>,
    /// The services whose containers to remove (default: all)
    pub services: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: RmArgs) -> anyhow::Result<ExitCode> {
    let mut global = global.clone();
    if !args.file.is_empty() {
        global.file = args.file.clone();
    }
    let scope = Scope::open(&global, &args.services)?;
    if args.stop {
        super::stop::stop(&scope, &args.services, None::<Duration>)?;
    }
    let stopped: Vec<Target> = scope
        .containers(&args.services)
        .into_iter()
        .filter(|t| scope.state(t).is_some_and(|s| !s.is_active()))
        .collect();
    if stopped.is_empty() {
        eprintln!("No stopped containers");
        return Ok(0);
    }
    let names: Vec<&str> = stopped.iter().map(|t| t.name.as_str()).collect();
    let message = format!("Going to remove {}", names.join(", "));
    if args.force {
        super::print(&format!("{message}\n"))?;
    } else if !confirm(&format!("{message}. Are you sure? [y/N] "))? {
        return Ok(0);
    }
    let networks = Networks::new(&scope.root, &scope.exe);
    scope.each(vec![stopped], "Removing", "Removed", |t| {
        // Running again since we looked (a restart policy)? Then it is not ours to remove.
        if scope.state(t).is_some_and(|s| s.is_active()) {
            return Err("the container is running again; stop it first (or use -s)".into());
        }
        let anonymous = if args.volumes {
            AnonymousVolumes::Remove
        } else {
            let left = scope.runtime.anonymous_volumes_left_by(&t.id);
            crate::state::keep_anonymous_volumes(&scope.root, &scope.project, &t.name, &left)
                .map_err(|e| e.to_string())?;
            AnonymousVolumes::Keep
        };
        scope
            .runtime
            .remove(&t.id, anonymous)
            .map_err(|e| e.to_string())?;
        networks
            .remove_sandbox(&t.id)
            .map(drop)
            .map_err(|e| e.to_string())
    })?;
    Ok(0)
}

/// Asks on stdout, reads one line from stdin.
fn confirm(question: &str) -> anyhow::Result<bool> {
    super::print(question)?;
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(is_yes(&answer))
}
