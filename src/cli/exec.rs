//! `wharf exec SERVICE COMMAND…`: runs a command in a running container of the project,
//! with Docker Compose's flags, and exits with the command's exit code.

use std::io::IsTerminal;

use clap::Args;

use super::image::state_root;
use super::{ExitCode, GlobalArgs, load_project};
use crate::compose::NormalizeOptions;
use crate::runtime::Runtime;
use crate::runtime::nsexec::Request;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode: run the command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Set environment variables (KEY=VALUE, or KEY to pass ours on)
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Index of the container if the service has several replicas
    #[arg(long, default_value_t = 1)]
    pub index: u64,
    /// Disable pseudo-TTY allocation (by default a TTY is requested when stdin is one)
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Run the command as this user (name or uid, optionally :group)
    #[arg(short, long)]
    pub user: Option<String>,
    /// Path to the working directory for this command
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// The service whose container runs the command
    pub service: String,
    /// The command and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: ExecArgs) -> anyhow::Result<ExitCode> {
    let opts = global.load_options(std::slice::from_ref(&args.service))?;
    let project = load_project(&opts, NormalizeOptions::default())?.project;
    if !project.services.contains_key(&args.service) {
        anyhow::bail!("no such service: {}", args.service);
    }
    let runtime = Runtime::new(&state_root(), &std::env::current_exe()?);
    let id = runtime
        .find(&project.name, &args.service, args.index)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "service {:?} is not running (no container {} of project {})",
                args.service,
                args.index,
                project.name
            )
        })?;
    if !runtime.state(&id)?.is_active() {
        anyhow::bail!("service {:?} is not running", args.service);
    }
    let env = args
        .env
        .iter()
        .filter_map(|e| match e.split_once('=') {
            Some(_) => Some(e.clone()),
            // `-e KEY`: our value, if we have one (Docker's rule).
            None => std::env::var(e).ok().map(|v| format!("{e}={v}")),
        })
        .collect();
    let request = Request {
        args: args.command,
        env,
        user: args.user,
        workdir: args.workdir,
        tty: !args.no_tty && !args.detach && std::io::stdin().is_terminal(),
        detach: args.detach,
        probe: false,
    };
    Ok(runtime.exec(&id, &request)?)
}
