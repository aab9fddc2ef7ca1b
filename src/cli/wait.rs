//! `wharf wait SERVICE… [--down-project]`: blocks until every running container of the
//! services has exited, printing `container "<id>" exited with status code N` on stdout as
//! each one does (Docker Compose's line), and exits with the code of the first to exit.
//! With `--down-project` the project is then taken down, as `down --remove-orphans` would.
//!
//! A container counts as exited once its record no longer says running or stopping, or once
//! it was started again (a restart policy brought it back): Docker's `not-running`
//! condition. It only reads the records; it never signals anything.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Args;

use super::lifecycle::{Scope, Target};
use super::{ExitCode, GlobalArgs};
use crate::runtime::container::{State, Status};

/// How often the records are read again.
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Drop the project (stop and remove its containers and networks) once they exited
    #[arg(long)]
    pub down_project: bool,
    /// The services whose containers to wait for
    #[arg(required = true)]
    pub services: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: WaitArgs) -> anyhow::Result<ExitCode> {
    let scope = Scope::open(global, &args.services)?;
    // Each running container, with when it was started: a restart changes that.
    let mut waiting: BTreeMap<String, (Target, Option<String>)> = scope
        .containers(&args.services)
        .into_iter()
        .filter_map(|t| {
            let state = scope.state(&t).filter(State::is_active)?;
            Some((t.id.clone(), (t, state.started_at)))
        })
        .collect();
    if waiting.is_empty() {
        anyhow::bail!("no containers for project {:?}", scope.project);
    }
    let mut first: Option<i32> = None;
    while !waiting.is_empty() {
        let mut done = Vec::new();
        for (id, (target, started)) in &waiting {
            let state = scope
                .runtime
                .state(id)
                .map_err(|e| anyhow::anyhow!("{} went away while waiting: {e}", target.name))?;
            if let Some(code) = exit_of(&state, started.as_deref()) {
                super::print(&format!(
                    "container {id:?} exited with status code {code}\n"
                ))?;
                first.get_or_insert(code);
                done.push(id.clone());
            }
        }
        for id in done {
            waiting.remove(&id);
        }
        if !waiting.is_empty() {
            std::thread::sleep(POLL);
        }
    }
    let code = first.unwrap_or(0);
    if args.down_project {
        let down = super::down::run(
            global,
            super::down::DownArgs {
                volumes: false,
                remove_orphans: true,
                timeout: None,
                rmi: None,
            },
        )?;
        if down != 0 {
            return Ok(down);
        }
    }
    Ok(code)
}

/// The exit code, once the container has exited (or exited and was started again since
/// `started_at`); `None` while it still runs. An unknown code (its supervisor died with
/// it) is 255.
fn exit_of(state: &State, started_at: Option<&str>) -> Option<i32> {
    let restarted = state.started_at.as_deref() != started_at;
    let running = matches!(state.status, Status::Running | Status::Stopping);
    (!running || restarted).then(|| state.exit_code.unwrap_or(255))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: Status, started: &str, code: Option<i32>) -> State {
        State {
            status,
            started_at: Some(started.to_string()),
            exit_code: code,
            ..State::created()
        }
    }

    #[test]
    fn a_container_has_exited_when_it_stopped_or_was_started_again() {
        let t0 = Some("t0");
        assert_eq!(exit_of(&state(Status::Running, "t0", None), t0), None);
        assert_eq!(exit_of(&state(Status::Stopping, "t0", None), t0), None);
        assert_eq!(exit_of(&state(Status::Exited, "t0", Some(3)), t0), Some(3));
        assert_eq!(
            exit_of(&state(Status::Restarting, "t0", Some(1)), t0),
            Some(1)
        );
        // Restarted between two looks: its last exit code is already gone from the record.
        assert_eq!(exit_of(&state(Status::Running, "t1", None), t0), Some(255));
        assert_eq!(exit_of(&state(Status::Dead, "t0", None), t0), Some(255));
    }
}
