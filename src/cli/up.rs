//! `wharf up`: brings the host to what the Compose files say. Under the project's lock it
//! brings in missing images, observes what exists, plans the difference
//! ([`crate::plan::diff`]), prints the plan with `--dry-run`, and applies it through the
//! real driver; then, with `--wait`, waits until every service is running, healthy or (a
//! one-shot job) completed. Everything decided here is presentation and flag handling:
//! the planner decides what changes, the driver how.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::apply_progress::ApplyProgress;
use super::image::{open_store, state_root};
use super::progress::Mode;
use super::{ExitCode, GlobalArgs, load_project, print};
use crate::apply::linux::{LinuxDriver, UpContext, Wait, condition};
use crate::compose::NormalizeOptions;
use crate::compose::model::{DependencyCondition, Project};
use crate::network::linux::Networks;
use crate::plan::{Options, desired, diff};
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
    /// Scale SERVICE to NUM instances (SERVICE=NUM)
    #[arg(long, value_parser = super::plan::parse_scale)]
    pub scale: Vec<(String, u64)>,
    /// Pull images before running
    #[arg(long, value_enum)]
    pub pull: Option<PullFlag>,
    /// Pull without printing progress
    #[arg(long)]
    pub quiet_pull: bool,
    /// Recreate containers even if their configuration and image haven't changed
    #[arg(long, conflicts_with = "no_recreate")]
    pub force_recreate: bool,
    /// If containers already exist, don't recreate them
    #[arg(long)]
    pub no_recreate: bool,
    /// Don't start linked services
    #[arg(long)]
    pub no_deps: bool,
    /// Recreate dependent containers (incompatible with --no-recreate)
    #[arg(long, conflicts_with = "no_recreate")]
    pub always_recreate_deps: bool,
    /// Recreate anonymous volumes instead of retrieving data from the previous containers
    #[arg(short = 'V', long)]
    pub renew_anon_volumes: bool,
    /// Remove containers for services not defined in the Compose file
    #[arg(long, env = "COMPOSE_REMOVE_ORPHANS")]
    pub remove_orphans: bool,
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
}

/// How long a dependency wait or `--wait` lasts without `--wait-timeout`.
const DEFAULT_WAIT: Duration = Duration::from_secs(300);

pub fn run(global: &GlobalArgs, args: UpArgs) -> anyhow::Result<ExitCode> {
    let opts = global.load_options(&args.services)?;
    let project = load_project(&opts, NormalizeOptions::default())?.project;
    for (service, _) in &args.scale {
        if !project.services.contains_key(service) {
            anyhow::bail!("--scale: no such service: {service}");
        }
    }
    let root = state_root();
    let exe = std::env::current_exe()?;
    let _lock = crate::state::lock_project(&root, &project.name, || {
        eprintln!(
            "another wharf is changing project {}; waiting for it to finish",
            project.name
        )
    })?;

    if !global.dry_run {
        let flag = args.pull.map(|p| match p {
            PullFlag::Always => "always",
            PullFlag::Missing => "missing",
            PullFlag::Never => "never",
        });
        let failures = super::pull::ensure_project_images(global, &project, flag, args.quiet_pull)?;
        if !failures.is_empty() {
            for (services, message) in &failures {
                eprintln!("ERROR: {services}: {message}");
            }
            return Ok(1);
        }
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
    crate::state::sweep(&project.name, &runtime, &networks)?;
    let live = crate::state::observe(&project.name, &runtime, &networks, images)?;
    let options = Options {
        force_recreate: args.force_recreate,
        no_recreate: args.no_recreate,
        remove_orphans: args.remove_orphans,
        no_start: args.no_start,
        scale: args.scale.iter().cloned().collect(),
        services: args.services.clone(),
        no_deps: args.no_deps,
        always_recreate_deps: args.always_recreate_deps,
        renew_anon_volumes: args.renew_anon_volumes,
    };
    let plan = diff(&desired(&project), &live, &options);
    for w in &plan.warnings {
        eprintln!("WARN[0000] {w}");
    }
    if global.dry_run {
        print(&plan.to_string())?;
        return Ok(0);
    }
    let wait_timeout = args.wait_timeout.map_or(DEFAULT_WAIT, Duration::from_secs);
    let cgroup = Hierarchies::read(std::path::Path::new("/proc/self/mountinfo"))?.version();
    let driver = LinuxDriver::new(&root, &exe, args.timeout.map(Duration::from_secs)).with_project(
        UpContext {
            project: project.clone(),
            store,
            cgroup,
            dependency_timeout: wait_timeout,
            say: Box::new(|m| eprintln!(" {m}")),
        },
    );
    if !plan.is_empty() {
        let mode = Mode::resolve(global.progress, false);
        let parallel = usize::try_from(global.parallel)
            .unwrap_or(usize::MAX)
            .max(1);
        let report = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(crate::apply::run_observed(
                &plan,
                Arc::new(driver),
                parallel,
                Arc::new(ApplyProgress::new(mode, Box::new(std::io::stderr()))),
            ));
        if !report.succeeded() {
            if mode != Mode::Json {
                for f in report.failures(&plan) {
                    eprintln!("error: {f}");
                }
            }
            return Ok(1);
        }
    }
    if args.wait && !args.no_start {
        return wait(&project, &runtime, wait_timeout, args.format);
    }
    if args.detach || args.no_start {
        return Ok(0);
    }
    attach(global, &args, &project, &root, &exe)
}

/// Attached mode: the services' logs, prefixed, until every container has exited; Ctrl-C
/// stops the project's containers (as Docker Compose does: stopped, not removed) and the
/// logs end with them.
fn attach(
    global: &GlobalArgs,
    args: &UpArgs,
    project: &Project,
    root: &std::path::Path,
    exe: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let interrupted = interrupted.clone();
        let (root, exe, name) = (root.to_path_buf(), exe.to_path_buf(), project.name.clone());
        let timeout = args.timeout.map(Duration::from_secs);
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
            interrupted.store(true, std::sync::atomic::Ordering::SeqCst);
            eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
            let runtime = Runtime::new(&root, &exe);
            let ids: Vec<String> = runtime
                .list()
                .into_iter()
                .filter(|id| runtime.config(id).is_ok_and(|c| c.spec.project == name))
                .collect();
            std::thread::scope(|s| {
                for id in &ids {
                    let runtime = &runtime;
                    s.spawn(move || runtime.stop(id, timeout));
                }
            });
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
        service: args.services.clone(),
    };
    let code = super::logs::run(global, logs)?;
    Ok(if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
        130
    } else {
        code
    })
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
