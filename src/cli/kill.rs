//! `wharf kill [SERVICE…] [-s SIGNAL]`: sends a signal (default SIGKILL) to the first
//! process of each running container of the project, all at once. Without
//! `--remove-orphans`, containers of services no longer in the Compose file are left alone,
//! as `docker compose kill` does; with it they get the signal too.

use clap::Args;

use super::lifecycle::{Scope, Target};
use super::{ExitCode, GlobalArgs};
use crate::runtime::spec::Signal;

#[derive(Debug, Args)]
pub struct KillArgs {
    /// SIGNAL to send to the container (a name, with or without SIG, or a number)
    #[arg(short, long, default_value = "SIGKILL", value_parser = parse_signal)]
    pub signal: Signal,
    /// Also signal containers of services not defined in the Compose file
    #[arg(long)]
    pub remove_orphans: bool,
    /// The services to signal (default: all)
    pub services: Vec<String>,
}

fn parse_signal(text: &str) -> Result<Signal, String> {
    Signal::parse(text).ok_or_else(|| format!("invalid signal: {text}"))
}

pub fn run(global: &GlobalArgs, args: KillArgs) -> anyhow::Result<ExitCode> {
    let scope = Scope::open(global, &args.services)?;
    let running: Vec<Target> = scope
        .containers(&args.services)
        .into_iter()
        .filter(|t| args.remove_orphans || scope.in_file(&t.service))
        .filter(|t| scope.state(t).is_some_and(|s| s.is_active()))
        .collect();
    if running.is_empty() {
        eprintln!("no container to kill");
        return Ok(0);
    }
    let kill = Signal::parse("KILL").map(|s| s.number());
    scope.each(vec![running], "Killing", "Killed", |t| {
        let paused = scope.runtime.is_paused(&t.id);
        scope
            .runtime
            .kill(&t.id, args.signal)
            .map_err(|e| e.to_string())?;
        // A SIGKILL is for now: a container frozen by the v1 freezer would hold it until
        // thawed (Docker resumes it too). Other signals wait for `unpause`, as in Docker.
        if paused && Some(args.signal.number()) == kill {
            scope.runtime.unpause(&t.id).map_err(|e| e.to_string())?;
        }
        Ok(())
    })?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_like_docker_and_bad_ones_are_refused() {
        assert_eq!(parse_signal("SIGTERM").unwrap().number(), 15);
        assert_eq!(parse_signal("hup").unwrap().number(), 1);
        assert_eq!(parse_signal("9").unwrap().number(), 9);
        assert_eq!(
            parse_signal("NOPE"),
            Err("invalid signal: NOPE".to_string())
        );
        assert!(parse_signal("0").is_err());
    }
}
