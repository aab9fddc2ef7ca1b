//! `wharf run SERVICE [COMMAND…]`: a one-off container of a service, as Docker Compose's
//! `run` makes one. Under the project's lock it brings up what the container needs — the
//! networks and volumes its service uses and (unless `--no-deps`) its dependencies, planned
//! by [`crate::plan::diff`] with `Options::one_off` — then creates the one-off container
//! from the service with the command line's overrides, and starts it.
//!
//! In the foreground (without `-d`) the container reads our stdin and writes to our
//! stdout and stderr (with a terminal when stdin is one and `-T` is not given), our
//! signals are passed on to it, and `run` exits with its exit code; with `--rm` it is
//! removed then. With `-d` its name is printed and it runs on. The lock is released once
//! the container has started: a long interactive session does not block `up`.
//!
//! The one-off container is recorded as such ([`crate::runtime::container::OneOff`]): it
//! is none of its service's replicas, `up` leaves it alone, `down` removes it.

use std::io::IsTerminal;
use std::time::Duration;

use clap::Args;

use super::image::{open_store, state_root};
use super::up::PullFlag;
use super::{ExitCode, GlobalArgs, load_project, print};
use crate::apply::linux::{LinuxDriver, UpContext};
use crate::compose::NormalizeOptions;
use crate::compose::model::Project;
use crate::network::linux::Networks;
use crate::plan::{Options, desired, diff};
use crate::runtime::Runtime;
use crate::runtime::cgroupfs::Hierarchies;
use crate::runtime::container::OneOff;
use crate::runtime::spec::Signal;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run the container in the background and print its name
    #[arg(short, long)]
    pub detach: bool,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Don't start the service's dependencies
    #[arg(long)]
    pub no_deps: bool,
    /// Set an environment variable (KEY=VALUE, or KEY to pass ours on; repeatable)
    #[arg(short, long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Publish a container port to the host ([IP:][HOST:]CONTAINER[/PROTO]; repeatable;
    /// `-p` after `run` means this, as in Docker Compose)
    #[arg(long = "publish", value_name = "PORT")]
    pub publish: Vec<String>,
    /// Publish the service's own ports (by default a one-off container publishes none)
    #[arg(short = 'P', long)]
    pub service_ports: bool,
    /// Override the image's entrypoint (a command line, split like a shell does)
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Run as this user (name or uid, optionally :group)
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Disable pseudo-TTY allocation (by default a TTY is allocated when stdin is one)
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Name of the container (default: <project>-<service>-run-<12 hex digits>)
    #[arg(long)]
    pub name: Option<String>,
    /// Let the container answer to its service's name and aliases on its networks
    #[arg(long)]
    pub use_aliases: bool,
    /// Remove containers of services no longer in the Compose file
    #[arg(long, env = "COMPOSE_REMOVE_ORPHANS")]
    pub remove_orphans: bool,
    /// Pull the image before running
    #[arg(long, value_enum)]
    pub pull: Option<PullFlag>,
    /// Pull without printing progress
    #[arg(long)]
    pub quiet_pull: bool,
    /// The service to run a one-off container of
    pub service: String,
    /// The command and its arguments (default: the service's)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// The overrides `run` makes to the service it runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub name: String,
    pub command: Vec<String>,
    /// `Some(vec![])`: `--entrypoint ''`, no entrypoint at all.
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// `None`: the service's ports (`--service-ports`); else these.
    pub ports: Option<Vec<crate::compose::model::ServicePort>>,
    pub tty: bool,
    pub no_deps: bool,
}

/// The project with `service` turned into the one-off container `overrides` describe:
/// named `overrides.name` (as its `container_name`), never restarted, interactive, with
/// the command line's command, entrypoint, environment, user, working directory and
/// ports. With `--no-deps` it does not wait for its dependencies either (they may not
/// exist).
pub fn one_off_project(project: &Project, service: &str, overrides: &Overrides) -> Project {
    let mut project = project.clone();
    if let Some(svc) = project.services.get_mut(service) {
        svc.container_name = Some(overrides.name.clone());
        svc.restart = Some("no".into());
        svc.deploy = svc.deploy.take().map(|mut d| {
            d.restart_policy = None;
            d
        });
        svc.tty = Some(overrides.tty);
        svc.stdin_open = Some(true);
        if !overrides.command.is_empty() {
            svc.command = Some(overrides.command.clone());
        }
        if let Some(entrypoint) = &overrides.entrypoint {
            svc.entrypoint = Some(entrypoint.clone());
        }
        for (k, v) in &overrides.env {
            svc.environment.insert(k.clone(), Some(v.clone()));
        }
        if overrides.user.is_some() {
            svc.user = overrides.user.clone();
        }
        if overrides.workdir.is_some() {
            svc.working_dir = overrides.workdir.clone();
        }
        if let Some(ports) = &overrides.ports {
            svc.ports = ports.clone();
        }
        if overrides.no_deps {
            svc.depends_on.clear();
        }
    }
    project
}

/// `-e` entries: `KEY=VALUE` as given, `KEY` with our value (dropped when we have none,
/// as Docker does).
fn env_overrides(
    entries: &[String],
    ours: impl Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    entries
        .iter()
        .filter_map(|e| match e.split_once('=') {
            Some((k, v)) => Some((k.to_string(), v.to_string())),
            None => ours(e).map(|v| (e.clone(), v)),
        })
        .collect()
}

/// Docker Compose's name for a one-off container: `<project>-<service>-run-<12 hex>`.
fn one_off_name(project: &str, service: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(format!("{project}/{service}/{}", std::process::id()));
    h.update(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            .to_le_bytes(),
    );
    let hex = hex::encode(h.finalize());
    format!("{project}-{service}-run-{}", &hex[..12])
}

impl RunArgs {
    fn overrides(&self, project: &str, tty: bool) -> anyhow::Result<Overrides> {
        let entrypoint = match &self.entrypoint {
            None => None,
            Some(line) => Some(
                crate::compose::canonical::shell_split(line)
                    .map_err(|e| anyhow::anyhow!("--entrypoint {line:?}: {e}"))?,
            ),
        };
        let ports = if self.service_ports {
            None
        } else {
            let mut ports = Vec::new();
            for p in &self.publish {
                ports.extend(
                    crate::compose::canonical::short_ports(p)
                        .map_err(|e| anyhow::anyhow!("--publish: {e}"))?,
                );
            }
            Some(ports)
        };
        Ok(Overrides {
            name: self
                .name
                .clone()
                .unwrap_or_else(|| one_off_name(project, &self.service)),
            command: self.command.clone(),
            entrypoint,
            env: env_overrides(&self.env, |k| std::env::var(k).ok()),
            user: self.user.clone(),
            workdir: self.workdir.clone(),
            ports,
            tty,
            no_deps: self.no_deps,
        })
    }
}

pub fn run(global: &GlobalArgs, args: RunArgs) -> anyhow::Result<ExitCode> {
    if args.service_ports && !args.publish.is_empty() {
        anyhow::bail!("--service-ports and --publish are incompatible");
    }
    let opts = global.load_options(std::slice::from_ref(&args.service))?;
    let project = load_project(&opts, NormalizeOptions::default())?.project;
    if !project.services.contains_key(&args.service) {
        anyhow::bail!("no such service: {}", args.service);
    }
    let tty = !args.no_tty && std::io::stdin().is_terminal();
    let overrides = args.overrides(&project.name, tty)?;
    let root = state_root();
    let exe = std::env::current_exe()?;
    let runtime = Runtime::new(&root, &exe);
    let networks = Networks::new(&root, &exe);

    // `--dry-run` changes nothing at all: no lock file, no sweep, no pull.
    let lock = if global.dry_run {
        None
    } else {
        Some(super::lock_project(&root, &project.name)?)
    };
    if runtime.list().iter().any(|id| {
        runtime
            .config(id)
            .is_ok_and(|c| c.spec.name == overrides.name)
    }) {
        anyhow::bail!(
            "container name {:?} is already in use; choose another with --name",
            overrides.name
        );
    }
    if !global.dry_run {
        if !super::up::ensure_images(global, &project, args.pull, args.quiet_pull)? {
            return Ok(1);
        }
        crate::state::sweep(&project.name, &runtime, &networks)?;
    }
    let live = crate::state::observe(&project.name, &runtime, &networks, Default::default())?;
    let options = Options {
        one_off: Some(args.service.clone()),
        no_deps: args.no_deps,
        remove_orphans: args.remove_orphans,
        ..Options::default()
    };
    let plan = diff(&desired(&project), &live, &options);
    if super::up::dry_run_done(global, &plan)? {
        return Ok(0);
    }
    super::up::check_ports(&project, &plan, &live, &networks)?;
    let svc = &project.services[&args.service];
    let ports = match &overrides.ports {
        Some(p) => p,
        None => &svc.ports,
    };
    networks.check_ports(
        &project.name,
        &[(
            args.service.clone(),
            crate::network::ports::requests(&args.service, ports)?,
        )],
        &[],
    )?;
    let cgroup = Hierarchies::read(std::path::Path::new("/proc/self/mountinfo"))?.version();
    let context = |project: Project| -> anyhow::Result<UpContext> {
        Ok(UpContext {
            project,
            store: open_store()?,
            cgroup,
            dependency_timeout: super::up::DEFAULT_WAIT,
            say: Box::new(|m| eprintln!(" {m}")),
        })
    };
    if !plan.is_empty() {
        let driver = LinuxDriver::new(&root, &exe, None).with_project(context(project.clone())?);
        if !super::apply_progress::apply(global, &plan, driver)? {
            return Ok(1);
        }
    }

    let one_off = one_off_project(&project, &args.service, &overrides);
    let driver = LinuxDriver::new(&root, &exe, None)
        .with_project(context(one_off)?)
        .one_off(OneOff {
            auto_remove: args.rm,
            use_aliases: args.use_aliases,
        });
    let id = driver
        .create_one_off(&overrides.name)
        .map_err(anyhow::Error::msg)?;
    let remove = |runtime: &Runtime| {
        // `--rm` takes its anonymous volumes along, as Docker's does.
        let _ = runtime.remove(&id, crate::runtime::AnonymousVolumes::Remove);
        let _ = networks.remove_sandbox(&id);
    };
    if args.detach {
        if let Err(e) = driver.start_one_off(&overrides.name, false) {
            if args.rm {
                remove(&runtime);
            }
            anyhow::bail!(e);
        }
        drop(lock);
        print(&format!("{}\n", overrides.name))?;
        return Ok(0);
    }

    // In the foreground: our keys go to the container's terminal as typed.
    let raw = tty.then(crate::runtime::nsexec::RawMode::enter).flatten();
    let started = driver.start_one_off(&overrides.name, true);
    drop(lock);
    if let Err(e) = started {
        drop(raw);
        if args.rm {
            remove(&runtime);
        }
        anyhow::bail!(e);
    }
    forward_signals(runtime.clone(), id.clone());
    let state = wait_until_gone(&runtime, &id);
    drop(raw);
    let code = match state {
        Some(s) => {
            if let Some(e) = &s.error {
                eprintln!("Error: {e}");
            }
            s.exit_code.unwrap_or(125)
        }
        None => 125,
    };
    if args.rm {
        remove(&runtime);
    }
    Ok(code)
}

/// Waits until the container has exited and its supervisor is gone (so that all its
/// output has reached us); its last state.
fn wait_until_gone(runtime: &Runtime, id: &str) -> Option<crate::runtime::container::State> {
    loop {
        let state = runtime.state(id).ok()?;
        let supervised = state.supervisor.is_some_and(|s| s.is_alive());
        if !state.is_active() && !supervised {
            return Some(state);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Passes the signals that would end us on to the container (Docker's `--sig-proxy`), and
/// a change of our terminal's size to its supervisor, from a thread of its own for the
/// rest of our life. The signals are blocked in this (single-threaded) process first, so
/// that the thread receives them with `sigwait`.
fn forward_signals(runtime: Runtime, id: String) {
    use nix::sys::signal::{SigSet, Signal as NixSignal};
    let mut set = SigSet::empty();
    for s in [
        NixSignal::SIGINT,
        NixSignal::SIGTERM,
        NixSignal::SIGHUP,
        NixSignal::SIGQUIT,
        NixSignal::SIGWINCH,
    ] {
        set.add(s);
    }
    if set.thread_block().is_err() {
        return;
    }
    std::thread::spawn(move || {
        while let Ok(signal) = set.wait() {
            if signal == NixSignal::SIGWINCH {
                let supervisor = runtime.state(&id).ok().and_then(|s| s.supervisor);
                if let Some(s) = supervisor.filter(|s| s.is_alive()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(s.pid),
                        NixSignal::SIGWINCH,
                    );
                }
            } else if let Some(s) = Signal::parse(signal.as_str()) {
                let _ = runtime.kill(&id, s);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROJECT: &str = "services:\n  web:\n    image: busybox\n    command: [httpd, -f]\n    restart: always\n    ports: [\"8080:80\"]\n    environment: {A: \"1\"}\n    depends_on: [db]\n  db:\n    image: busybox\n";

    #[test]
    fn the_one_off_service_takes_the_command_lines_overrides() {
        let p = crate::compose::testing::project(PROJECT, "shop");
        let overrides = Overrides {
            name: "shop-web-run-0123456789ab".into(),
            command: vec!["sh".into(), "-c".into(), "echo hi".into()],
            entrypoint: Some(vec![]),
            env: env_overrides(&["B=2".into(), "HOME_X".into(), "NOPE".into()], |k| {
                (k == "HOME_X").then(|| "ours".to_string())
            }),
            user: Some("1000".into()),
            workdir: Some("/tmp".into()),
            ports: Some(crate::compose::canonical::short_ports("127.0.0.1:9000:80/udp").unwrap()),
            tty: true,
            no_deps: true,
        };
        let one_off = one_off_project(&p, "web", &overrides);
        let svc = &one_off.services["web"];
        insta::assert_json_snapshot!(svc, {".labels" => insta::sorted_redaction()});
        // The other services are as they were.
        assert_eq!(one_off.services["db"], p.services["db"]);
    }

    #[test]
    fn without_overrides_the_service_keeps_its_command_and_ports() {
        let p = crate::compose::testing::project(PROJECT, "shop");
        let overrides = Overrides {
            name: "x".into(),
            ..Overrides::default()
        };
        let svc = &one_off_project(&p, "web", &overrides).services["web"];
        assert_eq!(svc.command, p.services["web"].command);
        assert_eq!(svc.ports, p.services["web"].ports);
        assert_eq!(svc.depends_on, p.services["web"].depends_on);
        assert_eq!(svc.restart.as_deref(), Some("no"));
        assert_eq!(svc.container_name.as_deref(), Some("x"));
    }

    #[test]
    fn one_off_names_follow_docker_compose() {
        let name = one_off_name("shop", "web");
        let hex = name.strip_prefix("shop-web-run-").expect(&name);
        assert!(
            hex.len() == 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{name}"
        );
        assert_ne!(name, one_off_name("shop", "web"));
    }
}

#[cfg(test)]
mod args_tests {
    #[test]
    fn dash_p_after_run_publishes_and_before_it_names_the_project() {
        let fix = |line: &str| -> String {
            let args = line.split(' ').map(std::ffi::OsString::from).collect();
            super::super::docker_compatible_args(args)
                .iter()
                .map(|a| a.to_str().unwrap().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            fix("wharf -p shop run -p 8080:80 -e A=1 -p9090:90 web sh -p x"),
            "wharf -p shop run --publish 8080:80 -e A=1 --publish=9090:90 web sh -p x"
        );
        assert_eq!(
            fix("wharf -f c.yaml -p shop up -d"),
            "wharf -f c.yaml -p shop up -d"
        );
        // A value that looks like `-p` is a value; the command's own flags are its own.
        assert_eq!(
            fix("wharf run -e -p -dT --name n web -p 1"),
            "wharf run -e -p -dT --name n web -p 1"
        );
        assert_eq!(
            fix("wharf --dry-run run -p 1:1 web"),
            "wharf --dry-run run --publish 1:1 web"
        );
    }
}
