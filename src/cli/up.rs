//! `wharf up`: brings the host to what the Compose files say. Under the project's lock it
//! brings in missing images, observes what exists, plans the difference
//! ([`crate::plan::diff`]), prints the plan with `--dry-run`, and applies it through the
//! real driver; then, with `--wait`, waits until every service is running, healthy or (a
//! one-shot job) completed. Everything decided here is presentation and flag handling:
//! the planner decides what changes, the driver how.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::image::{open_store, state_root};
use super::when::nanos_of;
use super::{ExitCode, GlobalArgs, load_project, print};
use crate::apply::linux::{LinuxDriver, UpContext, Wait, condition};
use crate::compose::NormalizeOptions;
use crate::compose::model::{DependencyCondition, Project};
use crate::network::linux::Networks;
use crate::plan::{desired, diff};
use crate::runtime::Runtime;
use crate::runtime::cgroupfs::Hierarchies;
use crate::runtime::container::{State, Status};

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum PullFlag {
    Always,
    Missing,
    Never,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum WaitFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Services to bring up (default: all)
    pub services: Vec<String>,
    /// Detached mode: run containers in the background (without it, `up` shows the
    /// services' logs until they exit; Ctrl-C stops them)
    #[arg(short, long)]
    pub detach: bool,
    /// Wait for services to be running|healthy (or completed, for one-shot jobs); implies -d
    #[arg(long)]
    pub wait: bool,
    /// Maximum seconds to wait with --wait (and for each dependency condition)
    #[arg(long)]
    pub wait_timeout: Option<u64>,
    /// Output of --wait: one line per service, or one JSON object per service
    #[arg(long, value_enum, default_value = "text")]
    pub format: WaitFormat,
    /// Don't start the services after creating them
    #[arg(long)]
    pub no_start: bool,
    #[command(flatten)]
    pub recreate: super::plan::RecreateArgs,
    /// Pull images before running
    #[arg(long, value_enum)]
    pub pull: Option<PullFlag>,
    /// Pull without printing progress
    #[arg(long)]
    pub quiet_pull: bool,
    /// Attached mode: show timestamps
    #[arg(long)]
    pub timestamps: bool,
    /// Attached mode: don't prefix lines with the container's name
    #[arg(long)]
    pub no_log_prefix: bool,
    /// Attached mode: monochrome output
    #[arg(long)]
    pub no_color: bool,
    /// Seconds to wait for a replaced container to stop before killing it
    #[arg(short, long)]
    pub timeout: Option<u64>,
    /// Stop all containers if any container stops (exit code: the first one's). Incompatible
    /// with -d
    #[arg(long)]
    pub abort_on_container_exit: bool,
    /// Stop all containers if any container exits with a failure (exit code: its code).
    /// Incompatible with -d
    #[arg(long)]
    pub abort_on_container_failure: bool,
    /// Return the exit code of SERVICE's container. Implies --abort-on-container-exit
    #[arg(long, value_name = "SERVICE")]
    pub exit_code_from: Option<String>,
    /// Show only these services' logs (repeatable)
    #[arg(long, value_name = "SERVICE")]
    pub attach: Vec<String>,
    /// Don't show these services' logs (repeatable)
    #[arg(long, value_name = "SERVICE")]
    pub no_attach: Vec<String>,
    /// Also show the logs of the services the named ones depend on (transitively)
    #[arg(long)]
    pub attach_dependencies: bool,
    /// Attached mode on a terminal: keyboard shortcuts (d: detach, leaving the containers
    /// running); ignored with -d and --wait
    #[arg(long, env = "COMPOSE_MENU")]
    pub menu: bool,
}

/// What attached `up` does when a container stops (Docker Compose's `Cascade`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExit {
    /// Go on until every attached container has stopped.
    Ignore,
    /// `--abort-on-container-exit`: stop everything when any container stops.
    Stop,
    /// `--abort-on-container-failure`: stop everything when a container exits non-zero.
    Fail,
}

/// Checks the attached-mode flags against each other and the modes they cannot go with,
/// with Docker Compose's messages; says what a container's exit does.
pub fn on_exit(args: &UpArgs) -> Result<OnExit, String> {
    // `--exit-code-from` implies `--abort-on-container-exit`, unless it refines
    // `--abort-on-container-failure` (Docker Compose's `validateFlags`).
    let stop = args.abort_on_container_exit
        || (args.exit_code_from.is_some() && !args.abort_on_container_failure);
    let fail = args.abort_on_container_failure;
    if stop && fail {
        return Err(
            "--abort-on-container-failure cannot be combined with --abort-on-container-exit".into(),
        );
    }
    let attach = !args.attach.is_empty();
    if args.wait && (stop || attach || args.attach_dependencies) {
        return Err("--wait cannot be combined with --abort-on-container-exit, --attach or --attach-dependencies".into());
    }
    if (args.detach || args.wait) && (stop || fail || attach || args.attach_dependencies) {
        return Err("--detach cannot be combined with --abort-on-container-exit, --abort-on-container-failure, --attach or --attach-dependencies".into());
    }
    if attach && args.attach_dependencies {
        return Err("cannot combine --attach and --attach-dependencies".into());
    }
    if args.no_start && (stop || fail || args.exit_code_from.is_some()) {
        return Err("--no-start cannot be combined with --abort-on-container-exit, --abort-on-container-failure or --exit-code-from".into());
    }
    Ok(if stop {
        OnExit::Stop
    } else if fail {
        OnExit::Fail
    } else {
        OnExit::Ignore
    })
}

/// The services whose logs attached `up` shows: those `--attach` names (each must be one
/// of the project's), else the services brought up (`selected`, or all) — with
/// `dependencies` (`--attach-dependencies`), also those they depend on, transitively — that
/// do not say `attach: false`; less those `--no-attach` names.
pub fn attached_services(
    project: &Project,
    selected: &[String],
    attach: &[String],
    no_attach: &[String],
    dependencies: bool,
) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = if attach.is_empty() {
        let mut chosen: Vec<&String> = project
            .services
            .keys()
            .filter(|name| selected.is_empty() || selected.contains(name))
            .collect();
        let mut next = 0;
        while dependencies && next < chosen.len() {
            if let Some(s) = project.services.get(chosen[next]) {
                for dep in s.depends_on.keys() {
                    if project.services.contains_key(dep) && !chosen.contains(&dep) {
                        chosen.push(dep);
                    }
                }
            }
            next += 1;
        }
        chosen
            .into_iter()
            .filter(|name| project.services[*name].attach != Some(false))
            .cloned()
            .collect()
    } else {
        let unknown: Vec<&str> = attach
            .iter()
            .filter(|a| !project.services.contains_key(*a))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "cannot attach to services not included in up: {}",
                unknown.join(", ")
            ));
        }
        attach.to_vec()
    };
    out.retain(|s| !no_attach.contains(s));
    out.sort();
    out.dedup();
    Ok(out)
}

/// Whether the project's environment asks for `--remove-orphans`: `COMPOSE_REMOVE_ORPHANS`
/// from the shell or the project's `.env` (the shell winning), read as Go's
/// `strconv.ParseBool` reads it, as Docker Compose does. (The flag's clap `env` sees only
/// the shell.)
pub fn remove_orphans_of(env: &crate::compose::Environment) -> bool {
    env.get("COMPOSE_REMOVE_ORPHANS")
        .is_some_and(|v| matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"))
}

/// Attached `up`'s decisions as containers stop: whether to stop everything, and the exit
/// code (Docker Compose's log printer). With `Stop`, the first container to exit by itself
/// names the service whose code is returned (unless `--exit-code-from` named one); with
/// `Fail`, the first to exit non-zero by itself. The code is that service's last one seen, so
/// a container the abort stopped reports its signal (143 for SIGTERM).
#[derive(Debug, Clone)]
pub struct Cascade {
    on_exit: OnExit,
    from: Option<String>,
    aborting: bool,
    code: i32,
}

impl Cascade {
    pub fn new(on_exit: OnExit, exit_code_from: Option<String>) -> Cascade {
        Cascade {
            on_exit,
            from: exit_code_from,
            aborting: false,
            code: 0,
        }
    }

    /// A container of `service` stopped with `code`, by itself or (`requested`) because
    /// it was asked to. True once, when everything should now be stopped.
    pub fn exited(&mut self, service: &str, code: i32, requested: bool) -> bool {
        let mut abort = self.on_exit == OnExit::Stop;
        if !requested {
            if self.on_exit == OnExit::Fail && code != 0 {
                self.from = Some(service.to_string());
                abort = true;
            }
            if self.on_exit == OnExit::Stop && self.from.is_none() {
                self.from = Some(service.to_string());
            }
        }
        if self.from.as_deref() == Some(service) {
            self.code = code;
        }
        let first = abort && !self.aborting;
        self.aborting |= abort;
        first
    }

    /// Whether everything is being stopped.
    pub fn aborting(&self) -> bool {
        self.aborting
    }

    /// `up`'s exit code.
    pub fn code(&self) -> i32 {
        self.code
    }
}

/// Brings in the project's images by `--pull` and each service's `pull_policy`; false
/// (each failure said) when one cannot be had.
pub(super) fn ensure_images(
    global: &GlobalArgs,
    project: &Project,
    pull: Option<PullFlag>,
    quiet: bool,
) -> anyhow::Result<bool> {
    let flag = pull.map(|p| match p {
        PullFlag::Always => "always",
        PullFlag::Missing => "missing",
        PullFlag::Never => "never",
    });
    let failures = super::pull::ensure_project_images(global, project, flag, quiet)?;
    for (services, message) in &failures {
        eprintln!("ERROR: {services}: {message}");
    }
    Ok(failures.is_empty())
}

/// Says the plan's warnings; with `--dry-run` prints the plan, and then all is done (true).
pub(super) fn dry_run_done(global: &GlobalArgs, plan: &crate::plan::Plan) -> anyhow::Result<bool> {
    for w in &plan.warnings {
        eprintln!("WARN[0000] {w}");
    }
    if global.dry_run {
        print(&plan.to_string())?;
    }
    Ok(global.dry_run)
}

/// How long a dependency wait or `--wait` lasts without `--wait-timeout`.
pub(super) const DEFAULT_WAIT: Duration = Duration::from_secs(300);

pub fn run(global: &GlobalArgs, args: UpArgs) -> anyhow::Result<ExitCode> {
    let started = SystemTime::now();
    let on_exit = on_exit(&args).map_err(anyhow::Error::msg)?;
    let opts = global.load_options(&args.services)?;
    let loaded = load_project(&opts, NormalizeOptions::default())?;
    let env_orphans = remove_orphans_of(&loaded.loaded.environment);
    let config_files = loaded.loaded.config_files.clone();
    let project = loaded.project;
    for (service, _) in &args.recreate.scale {
        if !project.services.contains_key(service) {
            anyhow::bail!("--scale: no such service: {service}");
        }
    }
    if let Some(service) = &args.exit_code_from {
        if !project.services.contains_key(service) {
            anyhow::bail!("--exit-code-from: no such service: {service}");
        }
    }
    let attached = attached_services(
        &project,
        &args.services,
        &args.attach,
        &args.no_attach,
        args.attach_dependencies,
    )
    .map_err(anyhow::Error::msg)?;
    let root = state_root();
    let exe = std::env::current_exe()?;
    // `--dry-run` changes nothing at all: no lock file, no sweep, no pull.
    let _lock = if global.dry_run {
        None
    } else {
        Some(super::lock_project(&root, &project.name)?)
    };

    if !global.dry_run && !ensure_images(global, &project, args.pull, args.quiet_pull)? {
        return Ok(1);
    }
    let store = open_store()?;
    let images: BTreeMap<String, String> = project
        .services
        .values()
        .filter_map(|s| s.image.clone())
        .filter_map(|image| {
            let reference = crate::image::reference::Reference::parse(&image).ok()?;
            let digest = store.resolve(&reference.to_string()).ok().flatten()?;
            Some((image, digest))
        })
        .collect();
    let runtime = Runtime::new(&root, &exe);
    let networks = Networks::new(&root, &exe);
    if !global.dry_run {
        crate::state::sweep(&project.name, &runtime, &networks)?;
    }
    let live = crate::state::observe(&project.name, &runtime, &networks, images)?;
    let options = args
        .recreate
        .options(&args.services, env_orphans, args.no_start);
    let plan = diff(&desired(&project), &live, &options);
    if dry_run_done(global, &plan)? {
        return Ok(0);
    }
    check_ports(&project, &plan, &live, &networks)?;
    // For `ls`'s CONFIG FILES: what the project was last brought up from.
    crate::state::record_config_files(&root, &project.name, &config_files)?;
    let wait_timeout = args.wait_timeout.map_or(DEFAULT_WAIT, Duration::from_secs);
    let cgroup = Hierarchies::read(std::path::Path::new("/proc/self/mountinfo"))?.version();
    let driver = LinuxDriver::new(&root, &exe, args.timeout.map(Duration::from_secs))
        .with_project(UpContext {
            project: project.clone(),
            store,
            cgroup,
            dependency_timeout: wait_timeout,
            say: Box::new(|m| eprintln!(" {m}")),
        })
        .renew_anon_volumes(args.recreate.renew_anon_volumes);
    if !plan.is_empty() && !super::apply_progress::apply(global, &plan, driver)? {
        return Ok(1);
    }
    if args.wait && !args.no_start {
        return wait(&project, &runtime, wait_timeout, args.format);
    }
    if args.detach || args.no_start {
        return Ok(0);
    }
    let how = Attached {
        services: attached,
        cascade: Cascade::new(on_exit, args.exit_code_from.clone()),
        since: started,
    };
    attach(global, &args, &project, &root, &exe, how)
}

/// What attached mode shows and how it ends.
struct Attached {
    services: Vec<String>,
    cascade: Cascade,
    /// When `up` began: containers that stopped before are not its business.
    since: SystemTime,
}

/// Stops every container of project `name` at once (the CLI's Ctrl-C and the aborts of
/// attached mode), saying on stderr which running ones stopped, as Docker Compose's
/// progress does once its log printer has stopped.
fn stop_project(root: &Path, exe: &Path, name: &str, timeout: Option<Duration>) {
    let runtime = Runtime::new(root, exe);
    let ids: Vec<String> = runtime
        .list()
        .into_iter()
        .filter(|id| runtime.config(id).is_ok_and(|c| c.spec.project == name))
        .collect();
    std::thread::scope(|s| {
        for id in &ids {
            let runtime = &runtime;
            s.spawn(move || {
                let running = runtime.state(id).is_ok_and(|st| st.is_active());
                let stopped = runtime.stop(id, timeout);
                if let (true, Ok(_), Ok(c)) = (running, stopped, runtime.config(id)) {
                    eprintln!(" Container {}  Stopped", c.spec.name);
                }
            });
        }
    });
}

/// Attached mode: the attached services' logs, prefixed, until every one of their
/// containers has exited; a line when one exits; with `--abort-on-container-exit` /
/// `--abort-on-container-failure`, every container stopped at the first (failed) exit.
/// Ctrl-C stops the project's containers (as Docker Compose does: stopped, not removed) and
/// the logs end with them. First, Docker Compose's `Attaching to web-1, db-1`; once an
/// abort or Ctrl-C has begun stopping the containers, no more of their lines (Docker
/// Compose stops its log printer then).
fn attach(
    global: &GlobalArgs,
    args: &UpArgs,
    project: &Project,
    root: &Path,
    exe: &Path,
    how: Attached,
) -> anyhow::Result<ExitCode> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let interrupted = Arc::new(AtomicBool::new(false));
    // Set once the containers are being stopped (Ctrl-C or an abort).
    let stopping = Arc::new(AtomicBool::new(false));
    let timeout = args.timeout.map(Duration::from_secs);
    let runtime = Runtime::new(root, exe);
    let mut names: Vec<(String, String)> =
        super::records::containers(&runtime, Some(&project.name))
            .iter()
            .filter(|c| how.services.iter().any(|s| s == c.service()))
            .map(|c| {
                let short =
                    super::records::short_name(&project.name, c.service(), c.replica(), c.name());
                (c.name().to_string(), short)
            })
            .collect();
    names.sort();
    if !names.is_empty() {
        let names: Vec<&str> = names.iter().map(|(_, short)| short.as_str()).collect();
        print(&format!("Attaching to {}\n", names.join(", ")))?;
    }
    {
        let interrupted = interrupted.clone();
        let stopping = stopping.clone();
        let (root, exe, name) = (root.to_path_buf(), exe.to_path_buf(), project.name.clone());
        // A thread of its own waits for Ctrl-C (tokio's handler replaces the default
        // termination), then stops every container of the project.
        std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            if rt.block_on(tokio::signal::ctrl_c()).is_err() {
                return;
            }
            interrupted.store(true, Ordering::SeqCst);
            stopping.store(true, Ordering::SeqCst);
            eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
            stop_project(&root, &exe, &name, timeout);
        });
    }
    let logs = super::logs::LogsArgs {
        follow: true,
        tail: "all".into(),
        since: None,
        until: None,
        timestamps: args.timestamps,
        no_log_prefix: args.no_log_prefix,
        no_color: args.no_color,
        index: None,
        file: Vec::new(),
        service: Vec::new(),
    };
    let mut cascade = how.cascade;
    let mut on_exit = |exit: &super::logs::Exit| -> anyhow::Result<()> {
        let quiet = cascade.aborting() || stopping.load(Ordering::SeqCst);
        let abort = cascade.exited(&exit.service, exit.code, exit.requested);
        // Docker Compose's lines; none for the containers an abort or Ctrl-C stops.
        if exit.attached && !quiet {
            print(&format!("{} exited with code {}\n", exit.name, exit.code))?;
        }
        if abort {
            stopping.store(true, Ordering::SeqCst);
            eprintln!("Aborting on container exit...");
            stop_project(root, exe, &project.name, timeout);
        }
        Ok(())
    };
    let muted = || stopping.load(Ordering::SeqCst);
    let detach = Arc::new(AtomicBool::new(false));
    let menu = args
        .menu
        .then(|| super::menu::Menu::start(detach.clone()))
        .flatten();
    let detached = || detach.load(Ordering::SeqCst);
    let hooks = super::logs::Hooks {
        services: how.services,
        since: nanos_of(how.since),
        on_exit: &mut on_exit,
        muted: &muted,
        detached: &detached,
    };
    super::logs::attached(global, logs, hooks)?;
    drop(menu);
    if detached() {
        eprintln!("Detached: the containers keep running (`wharf down` stops them)");
        return Ok(0);
    }
    Ok(if interrupted.load(Ordering::SeqCst) {
        130
    } else {
        cascade.code()
    })
}

/// Refuses, before anything changes, a plan whose new containers would publish a port
/// that is taken (by another program, another project, or each other); the ports of the
/// containers the plan removes count as free.
pub(super) fn check_ports(
    project: &Project,
    plan: &crate::plan::Plan,
    live: &crate::plan::Live,
    networks: &Networks,
) -> anyhow::Result<()> {
    use crate::plan::Operation;
    let mut wanted = Vec::new();
    for step in plan
        .steps
        .iter()
        .filter(|s| s.operation == Operation::CreateContainer)
    {
        let name = step.resource.trim_start_matches("container:");
        let Ok((service, _)) = crate::apply::linux::service_of(project, name) else {
            continue;
        };
        let svc = &project.services[&service];
        if matches!(svc.network_mode.as_deref(), Some("host" | "none"))
            || svc.network_mode.as_deref().is_some_and(|m| m.contains(':'))
        {
            continue;
        }
        wanted.push((
            service.clone(),
            crate::network::ports::requests(&service, &svc.ports)?,
        ));
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let freed: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.operation == Operation::RemoveContainer)
        .filter_map(|s| {
            let name = s.resource.trim_start_matches("container:");
            live.containers
                .iter()
                .find(|c| c.name == name)
                .map(|c| c.id.clone())
        })
        .collect();
    networks.check_ports(&project.name, &wanted, &freed)?;
    Ok(())
}

/// One service's state at the end of `--wait`.
#[derive(Debug, Clone, Serialize)]
struct Ready {
    service: String,
    /// `healthy`, `running`, `completed`, `failed`, `timeout`.
    state: &'static str,
    containers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// Whether a service counts as up for `--wait`: running (and healthy, with a health
/// check), or, for a one-shot job, exited 0.
fn readiness(states: &[&State], health_checked: bool, one_shot: bool) -> Wait {
    if one_shot {
        return condition(
            DependencyCondition::ServiceCompletedSuccessfully,
            states,
            false,
        );
    }
    if health_checked {
        return condition(DependencyCondition::ServiceHealthy, states, true);
    }
    if let Some(s) = states
        .iter()
        .find(|s| matches!(s.status, Status::Exited | Status::Dead))
    {
        return Wait::Failed(format!(
            "exited ({})",
            s.exit_code.map_or("?".into(), |c| c.to_string())
        ));
    }
    if states.iter().all(|s| s.status == Status::Running) {
        Wait::Met
    } else {
        Wait::Pending("running")
    }
}

/// `--wait`: polls every service's containers until each is ready, one failed, or the
/// timeout passed. Exit 0 when all are ready, 1 otherwise.
fn wait(
    project: &Project,
    runtime: &Runtime,
    timeout: Duration,
    format: WaitFormat,
) -> anyhow::Result<ExitCode> {
    let want = desired(project);
    let deadline = Instant::now() + timeout;
    let mut ready: BTreeMap<String, Ready> = BTreeMap::new();
    loop {
        // Container records of the project, by service.
        let mut by_service: BTreeMap<String, Vec<(String, State, bool)>> = BTreeMap::new();
        for id in runtime.list() {
            let Ok(c) = runtime.config(&id) else { continue };
            if c.spec.project != project.name {
                continue;
            }
            if let Ok(state) = runtime.state(&id) {
                by_service.entry(c.spec.service.clone()).or_default().push((
                    c.spec.name.clone(),
                    state,
                    c.spec.healthcheck.is_some(),
                ));
            }
        }
        for name in project.services.keys() {
            if ready.get(name).is_some_and(|r| r.state != "timeout") {
                continue;
            }
            let containers = by_service.get(name).map(Vec::as_slice).unwrap_or_default();
            let states: Vec<&State> = containers.iter().map(|(_, s, _)| s).collect();
            let health = !containers.is_empty() && containers.iter().all(|(_, _, h)| *h);
            let is_one_shot = want.services.get(name).is_some_and(|s| s.one_shot);
            let names = containers.iter().map(|(n, ..)| n.clone()).collect();
            let entry = match readiness(&states, health, is_one_shot) {
                Wait::Met => Some(Ready {
                    service: name.clone(),
                    state: if is_one_shot {
                        "completed"
                    } else if health {
                        "healthy"
                    } else {
                        "running"
                    },
                    containers: names,
                    message: None,
                }),
                Wait::Failed(why) => Some(Ready {
                    service: name.clone(),
                    state: "failed",
                    containers: names,
                    message: Some(why),
                }),
                Wait::Pending(what) => Some(Ready {
                    service: name.clone(),
                    state: "timeout",
                    containers: names,
                    message: Some(format!("not {what} after {}s", timeout.as_secs())),
                }),
            };
            if let Some(e) = entry {
                ready.insert(name.clone(), e);
            }
        }
        let pending = ready.values().any(|r| r.state == "timeout");
        let failed = ready.values().any(|r| r.state == "failed");
        if failed || !pending || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut ok = true;
    for r in ready.values() {
        ok &= matches!(r.state, "healthy" | "running" | "completed");
        match format {
            WaitFormat::Json => print(&format!("{}\n", serde_json::to_string(r)?))?,
            WaitFormat::Text => {
                let message = r
                    .message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                eprintln!(" Service {}  {}{message}", r.service, r.state);
            }
        }
    }
    Ok(if ok { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up_args(flags: &[&str]) -> UpArgs {
        use clap::Parser;
        let argv = ["wharf", "up"].into_iter().chain(flags.iter().copied());
        match crate::cli::Cli::try_parse_from(argv)
            .expect("parses")
            .command
        {
            crate::cli::Command::Up(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn attached_mode_flags_and_what_they_cannot_go_with() {
        let ok = |f: &[&str]| on_exit(&up_args(f));
        assert_eq!(ok(&[]), Ok(OnExit::Ignore));
        assert_eq!(ok(&["--abort-on-container-exit"]), Ok(OnExit::Stop));
        assert_eq!(ok(&["--exit-code-from", "web"]), Ok(OnExit::Stop));
        assert_eq!(ok(&["--abort-on-container-failure"]), Ok(OnExit::Fail));
        assert_eq!(
            ok(&["--abort-on-container-failure", "--exit-code-from", "web"]),
            Ok(OnExit::Fail),
            "--exit-code-from refines --abort-on-container-failure"
        );
        assert_eq!(ok(&["-d", "--no-attach", "web"]), Ok(OnExit::Ignore));
        let refused = [
            (
                &["--abort-on-container-exit", "--abort-on-container-failure"][..],
                "--abort-on-container-failure cannot be combined with --abort-on-container-exit",
            ),
            (
                &["-d", "--abort-on-container-exit"],
                "--detach cannot be combined",
            ),
            (
                &["-d", "--abort-on-container-failure"],
                "--detach cannot be combined",
            ),
            (&["-d", "--attach", "web"], "--detach cannot be combined"),
            (
                &["-d", "--exit-code-from", "web"],
                "--detach cannot be combined",
            ),
            (
                &["--wait", "--abort-on-container-exit"],
                "--wait cannot be combined",
            ),
            (&["--wait", "--attach", "web"], "--wait cannot be combined"),
            (
                &["--wait", "--abort-on-container-failure"],
                "--detach cannot be combined",
            ),
            (
                &["--no-start", "--exit-code-from", "web"],
                "--no-start cannot be combined",
            ),
        ];
        for (flags, message) in refused {
            let got = ok(flags).expect_err(&format!("{flags:?} accepted"));
            assert!(got.starts_with(message), "{flags:?}: {got}");
        }
    }

    #[test]
    fn compose_remove_orphans_is_read_from_the_project_environment() {
        let env = |v: &str| {
            crate::compose::Environment::from([("COMPOSE_REMOVE_ORPHANS".into(), v.into())])
        };
        assert!(remove_orphans_of(&env("true")));
        assert!(remove_orphans_of(&env("1")));
        assert!(!remove_orphans_of(&env("false")));
        assert!(!remove_orphans_of(&env("yes")), "not a Go boolean");
        assert!(!remove_orphans_of(&crate::compose::Environment::new()));
    }

    #[test]
    fn attach_dependencies_adds_what_the_named_services_depend_on() {
        let project = crate::compose::testing::project(
            "services:\n  web:\n    image: x\n    depends_on: [api]\n  api:\n    image: x\n    depends_on: [db, noisy]\n  db:\n    image: x\n  noisy:\n    image: x\n    attach: false\n  other:\n    image: x\n",
            "shop",
        );
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            attached_services(&project, &s(&["web"]), &[], &[], false),
            Ok(s(&["web"])),
            "without the flag: the named service only"
        );
        assert_eq!(
            attached_services(&project, &s(&["web"]), &[], &[], true),
            Ok(s(&["api", "db", "web"])),
            "transitively, attach: false left out, unrelated services too"
        );
        assert_eq!(
            attached_services(&project, &s(&["api"]), &[], &s(&["db"]), true),
            Ok(s(&["api"])),
            "--no-attach still wins"
        );
        assert_eq!(
            attached_services(&project, &[], &[], &[], true),
            Ok(s(&["api", "db", "other", "web"]))
        );
        let refused = on_exit(&up_args(&["--attach", "web", "--attach-dependencies"]));
        assert_eq!(
            refused,
            Err("cannot combine --attach and --attach-dependencies".into())
        );
        assert!(
            on_exit(&up_args(&["-d", "--attach-dependencies"]))
                .is_err_and(|e| e.starts_with("--detach cannot be combined"))
        );
    }

    #[test]
    fn attached_services_follow_attach_no_attach_and_the_compose_file() {
        let project = crate::compose::testing::project(
            "services:\n  web:\n    image: x\n  db:\n    image: x\n  noisy:\n    image: x\n    attach: false\n",
            "shop",
        );
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            attached_services(&project, &[], &[], &[], false),
            Ok(s(&["db", "web"])),
            "attach: false is left out"
        );
        assert_eq!(
            attached_services(&project, &s(&["web", "noisy"]), &[], &[], false),
            Ok(s(&["web"]))
        );
        assert_eq!(
            attached_services(&project, &[], &s(&["noisy", "web"]), &[], false),
            Ok(s(&["noisy", "web"])),
            "--attach wins over attach: false"
        );
        assert_eq!(
            attached_services(&project, &[], &s(&["web", "db"]), &s(&["db"]), false),
            Ok(s(&["web"]))
        );
        assert_eq!(
            attached_services(&project, &[], &[], &s(&["web", "db"]), false),
            Ok(s(&[]))
        );
        assert_eq!(
            attached_services(&project, &[], &s(&["nope"]), &[], false),
            Err("cannot attach to services not included in up: nope".into())
        );
    }

    #[test]
    fn cascade_decides_when_to_abort_and_which_code_is_returned() {
        // Nothing set: exits change nothing, the code is 0.
        let mut c = Cascade::new(OnExit::Ignore, None);
        assert!(!c.exited("a", 3, false));
        assert_eq!(c.code(), 0);

        // --abort-on-container-exit: the first exit aborts, its code is returned; the
        // containers the abort stops change nothing.
        let mut c = Cascade::new(OnExit::Stop, None);
        assert!(c.exited("failure", 42, false));
        assert!(c.aborting());
        assert!(!c.exited("safe", 143, true), "aborts once");
        assert_eq!(c.code(), 42);
        let mut c = Cascade::new(OnExit::Stop, None);
        assert!(c.exited("job", 0, false));
        assert!(!c.exited("fail", 111, false));
        assert_eq!(c.code(), 0, "the first container to exit decides");

        // --exit-code-from: that service's code, even when the abort stopped it.
        let mut c = Cascade::new(OnExit::Stop, Some("failure".into()));
        assert!(c.exited("safe", 0, false));
        assert!(!c.exited("failure", 143, true));
        assert_eq!(c.code(), 143);
        let mut c = Cascade::new(OnExit::Stop, Some("failure".into()));
        assert!(c.exited("failure", 42, false));
        assert!(!c.exited("safe", 143, true));
        assert_eq!(c.code(), 42);
        // A stop on request (`wharf stop`) also aborts, as Docker Compose's does.
        let mut c = Cascade::new(OnExit::Stop, None);
        assert!(c.exited("safe", 143, true));
        assert_eq!(c.code(), 0, "no container exited by itself");

        // --abort-on-container-failure: exits 0 go by; the first failure aborts and gives
        // the code; the abort's victims (143) do not count as failures.
        let mut c = Cascade::new(OnExit::Fail, None);
        assert!(!c.exited("exit", 0, false));
        assert!(!c.aborting());
        assert!(c.exited("fail", 111, false));
        assert!(!c.exited("running", 143, true));
        assert_eq!(c.code(), 111);
        let mut c = Cascade::new(OnExit::Fail, Some("exit".into()));
        assert!(!c.exited("exit", 0, false));
        assert_eq!(c.code(), 0);
        assert!(c.exited("fail", 111, false));
        assert_eq!(c.code(), 111, "a failure takes over --exit-code-from");
    }

    #[test]
    fn readiness_for_wait() {
        let running = State {
            status: Status::Running,
            ..State::created()
        };
        let exited0 = State {
            status: Status::Exited,
            exit_code: Some(0),
            ..State::created()
        };
        assert_eq!(readiness(&[&running], false, false), Wait::Met);
        assert_eq!(
            readiness(&[&running, &exited0], false, false),
            Wait::Failed("exited (0)".into()),
            "a service that should run and exited is a failure, even with 0"
        );
        assert_eq!(readiness(&[&exited0], false, true), Wait::Met);
        assert_eq!(
            readiness(&[&State::created()], false, false),
            Wait::Pending("running")
        );
    }
}
