//! The command line: argument parsing (clap), output formatting, exit codes.
//!
//! Flags follow Docker Compose's so that scripts written for `docker compose` work with
//! `wharf`. Global flags are parsed once into [`GlobalArgs`] and turned into the loader's
//! options; each command lives in its own module with one `run` entry point. Data goes to
//! stdout, diagnostics to stderr. This module holds no logic of its own beyond presentation.

mod apply_progress;
mod config;
mod down;
mod events;
mod exec;
mod graph;
mod image;
mod kill;
mod lifecycle;
mod logs;
mod ls;
mod menu;
mod pause;
mod plan;
mod port;
mod progress;
mod ps;
mod pull;
mod records;
mod rm;
mod run;
mod start;
mod stop;
mod table;
mod top;
mod tz;
mod up;
mod wait;
mod when;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::compose::{self, Environment, LoadOptions, LoadedProject, NormalizeOptions};

#[derive(Debug, Parser)]
#[command(
    name = "wharf",
    version,
    about = "A daemonless, declarative reconciler for Compose files"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Docker Compose's global flags.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Compose configuration files (repeatable; `-` reads standard input)
    #[arg(short = 'f', long = "file", global = true)]
    pub file: Vec<PathBuf>,
    /// Project name
    #[arg(short = 'p', long = "project-name", global = true)]
    pub project_name: Option<String>,
    /// Specify an alternate working directory (default: the directory of the first file)
    #[arg(long, global = true)]
    pub project_directory: Option<PathBuf>,
    /// Specify an alternate environment file (repeatable)
    #[arg(long = "env-file", global = true)]
    pub env_file: Vec<PathBuf>,
    /// Specify a profile to enable (repeatable)
    #[arg(long = "profile", global = true)]
    pub profile: Vec<String>,
    /// Control max parallelism, -1 for unlimited
    #[arg(long, global = true, env = "COMPOSE_PARALLEL_LIMIT", default_value_t = -1, allow_negative_numbers = true)]
    pub parallel: i64,
    /// Set type of progress output
    #[arg(long, global = true, value_enum)]
    pub progress: Option<Progress>,
    /// Control when to print ANSI control characters
    #[arg(long, global = true, value_enum, default_value_t = Ansi::Auto)]
    pub ansi: Ansi,
    /// Execute command in dry run mode: plan, print, change nothing
    #[arg(long, global = true)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Progress {
    Auto,
    Tty,
    Plain,
    Json,
    Quiet,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum Ansi {
    Never,
    Always,
    #[default]
    Auto,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse, resolve and render the Compose file in canonical format
    Config(config::ConfigArgs),
    /// Print the dependency graph of networks, volumes and services (DOT or Mermaid)
    Graph(graph::GraphArgs),
    /// Pull the images of the project's services
    Pull(pull::PullArgs),
    /// List the images the project's services use
    Images(pull::ImagesArgs),
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// Run a one-off command in a new container of a service
    Run(run::RunArgs),
    /// Print the public port for a port binding
    Port(port::PortArgs),
    /// Create and start the project's containers: apply what `wharf plan` shows
    Up(up::UpArgs),
    /// Start the project's existing containers
    Start(start::StartArgs),
    /// Restart the project's containers
    Restart(start::RestartArgs),
    /// List the project's containers
    Ps(ps::PsArgs),
    /// List the Compose projects on this host
    Ls(ls::LsArgs),
    /// Display the running processes of the project's containers
    Top(top::TopArgs),
    /// View output from the project's containers
    Logs(logs::LogsArgs),
    /// Receive real time events from the project's containers
    Events(events::EventsArgs),
    /// Stop and remove the project's containers and networks (-v: and its volumes)
    Down(down::DownArgs),
    /// Stop the project's running containers (dependents first)
    Stop(stop::StopArgs),
    /// Force stop service containers: send them a signal (default SIGKILL)
    Kill(kill::KillArgs),
    /// Remove stopped service containers
    Rm(rm::RmArgs),
    /// Pause services: freeze their containers' processes
    Pause(pause::PauseArgs),
    /// Unpause services
    Unpause(pause::PauseArgs),
    /// Block until the services' containers exit; exit with the first one's code
    Wait(wait::WaitArgs),
    /// Show what `up` would change, without changing anything (exit 2 when changes are pending)
    Plan(plan::PlanArgs),
    /// Manage the local image store
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Build the busybox test image as an OCI layout (for tests and the example)
    #[command(hide = true, name = "__fixture")]
    Fixture(image::FixtureArgs),
    /// Show the wharf version
    Version,
}

/// What a command returns: its exit code.
pub type ExitCode = i32;

/// Global flags that take a value as the next argument.
const GLOBAL_VALUE_FLAGS: &[&str] = &[
    "-f",
    "--file",
    "-p",
    "--project-name",
    "--project-directory",
    "--env-file",
    "--profile",
    "--parallel",
    "--progress",
    "--ansi",
];

/// `run` flags that take a value as the next argument.
const RUN_VALUE_FLAGS: &[&str] = &[
    "-e",
    "--env",
    "--publish",
    "--entrypoint",
    "-u",
    "--user",
    "-w",
    "--workdir",
    "--name",
    "--pull",
];

/// The command line, with Docker Compose's one ambiguous flag resolved: `-p` names the
/// project before the command, but after `run` it publishes a port (`run -p 8080:80`).
/// clap's global `-p` would take both, so a `-p` between `run` and its service becomes
/// `--publish`.
pub fn docker_compatible_args(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let text = |a: &std::ffi::OsString| a.to_str().unwrap_or("").to_string();
    let mut i = 1;
    while i < args.len() && text(&args[i]).starts_with('-') {
        i += if GLOBAL_VALUE_FLAGS.contains(&text(&args[i]).as_str()) {
            2
        } else {
            1
        };
    }
    if args.get(i).map(text).as_deref() != Some("run") {
        return args;
    }
    i += 1;
    while i < args.len() {
        let a = text(&args[i]);
        if a == "--" || !a.starts_with('-') {
            break;
        }
        if a == "-p" {
            args[i] = "--publish".into();
            i += 2;
        } else if let Some(value) = a.strip_prefix("-p") {
            args[i] = format!("--publish={value}").into();
            i += 1;
        } else if GLOBAL_VALUE_FLAGS.contains(&a.as_str()) || RUN_VALUE_FLAGS.contains(&a.as_str())
        {
            i += 2;
        } else {
            i += 1;
        }
    }
    args
}

/// The process environment, captured once at start-up.
pub fn os_environment() -> Environment {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect::<BTreeMap<_, _>>()
}

impl GlobalArgs {
    /// The loader's options for these flags; `services` are the ones named on the command line.
    pub fn load_options(&self, services: &[String]) -> anyhow::Result<LoadOptions> {
        let cwd = std::env::current_dir()?;
        let stdin = if self.file.iter().any(|f| f.as_os_str() == "-") {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
            Some(s)
        } else {
            None
        };
        Ok(LoadOptions {
            files: self.file.clone(),
            project_directory: self.project_directory.clone(),
            project_name: self.project_name.clone(),
            env_files: self.env_file.clone(),
            profiles: self.profile.clone(),
            services: services.to_vec(),
            cwd,
            home: std::env::var_os("HOME").map(PathBuf::from),
            stdin,
            ..LoadOptions::default()
        })
    }
}

/// A Compose error, already rendered for the terminal; `main` prints it and exits 1.
#[derive(Debug)]
pub struct Reported(pub String);

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Reported {}

/// Load a project and print its warnings; errors come back rendered with their source line.
pub fn load_project(opts: &LoadOptions, norm: NormalizeOptions) -> anyhow::Result<LoadedProject> {
    let env = os_environment();
    match compose::load(opts, &env, norm) {
        Ok(p) => {
            for w in &p.loaded.warnings {
                eprintln!("WARN[0000] {w}");
            }
            Ok(p)
        }
        Err(e) => Err(Reported(e.render()).into()),
    }
}

/// Takes `project`'s lock in `root`, saying so when another wharf holds it.
pub fn lock_project(
    root: &std::path::Path,
    project: &str,
) -> anyhow::Result<crate::state::ProjectLock> {
    Ok(crate::state::lock_project(root, project, || {
        eprintln!("another wharf is changing project {project}; waiting for it to finish")
    })?)
}

/// Write command output to stdout. A closed pipe (`wharf config | head`) is not an error.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => Ok(other?),
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Config(args) => config::run(&cli.global, args),
        Command::Graph(args) => graph::run(&cli.global, args),
        Command::Pull(args) => pull::run_pull(&cli.global, args),
        Command::Images(args) => pull::run_images(&cli.global, args),
        Command::Exec(args) => exec::run(&cli.global, args),
        Command::Run(args) => run::run(&cli.global, args),
        Command::Port(args) => port::run(&cli.global, args),
        Command::Ps(args) => ps::run(&cli.global, args),
        Command::Ls(args) => ls::run(&cli.global, args),
        Command::Top(args) => top::run(&cli.global, args),
        Command::Logs(args) => logs::run(&cli.global, args),
        Command::Events(args) => events::run(&cli.global, args),
        Command::Plan(args) => plan::run(&cli.global, args),
        Command::Up(args) => up::run(&cli.global, args),
        Command::Start(args) => start::run_start(&cli.global, args),
        Command::Restart(args) => start::run_restart(&cli.global, args),
        Command::Down(args) => down::run(&cli.global, args),
        Command::Stop(args) => stop::run(&cli.global, args),
        Command::Kill(args) => kill::run(&cli.global, args),
        Command::Rm(args) => rm::run(&cli.global, args),
        Command::Pause(args) => pause::run_pause(&cli.global, args),
        Command::Unpause(args) => pause::run_unpause(&cli.global, args),
        Command::Wait(args) => wait::run(&cli.global, args),
        Command::Image(cmd) => image::run(&cli.global, cmd),
        Command::Fixture(args) => image::build_fixture(args),
        Command::Version => {
            print(&format!("wharf version {}\n", env!("CARGO_PKG_VERSION")))?;
            Ok(0)
        }
    }
}
