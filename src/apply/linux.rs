//! The real [`Driver`]: a plan's steps carried out by the runtime and the network layer of
//! one state root.
//!
//! Steps name their resource as the plan renders it (`container:shop-web-1`,
//! `network:shop_default`, `volume:shop_data`); the driver finds the container by its
//! name among the runtime's records. Removing needs nothing else, so `down` works from
//! the records alone. Creating needs the project ([`UpContext`]): a container is created
//! from its service and image, recording where it came from (config hash, image digest,
//! normalized service) for the next plan. Its network sandbox is made when it first
//! starts, not when it is created: a replacement is created under a temporary name while
//! the old container still holds the name, the published ports and the DNS entries, and
//! takes them over only once the old one is gone and it has been renamed. Starting also
//! waits for the `depends_on` conditions of its service, each wait bounded.
//!
//! Anonymous volumes, as Docker Compose treats them: a replacement (a temporary name,
//! `<12 hex>_<name>`) mounts the anonymous volumes of the container it replaces, matched by
//! destination, unless the driver was told `up -V` ([`LinuxDriver::renew_anon_volumes`]).
//! Removing a container never deletes a volume: what it leaves that no other container
//! mounts is recorded for the project ([`crate::state::keep_anonymous_volumes`]), and only
//! a `RemoveVolume` step (`down -v`) deletes a volume, refusing one a container still mounts.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::compose::hash::{object_hash, service_hash};
use crate::compose::model::{DependencyCondition, Project};
use crate::image::store::Store;
use crate::network::linux::Networks;
use crate::network::model::{Mode, network_spec, sandbox_spec};
use crate::plan::{Operation, Step};
use crate::runtime::container::{OneOff, Origin, State, Status};
use crate::runtime::linux::{Naming, prepare};
use crate::runtime::spec::{
    CgroupVersion, EtcFile, JoinTarget, Mount, Namespace, anonymous_volumes_of,
};
use crate::runtime::{AnonymousVolumes, CreateOptions, Runtime};
use crate::state::VolumeRecord;

use super::Driver;

/// What creating and starting a project's containers needs besides the records.
pub struct UpContext {
    pub project: Project,
    pub store: Store,
    pub cgroup: CgroupVersion,
    /// How long a start waits for the conditions of its service's dependencies.
    pub dependency_timeout: Duration,
    /// Told when a start begins to wait for a dependency (the CLI prints it).
    pub say: Box<dyn Fn(String) + Send + Sync>,
}

pub struct LinuxDriver {
    runtime: Runtime,
    networks: Networks,
    /// `-t`: the stop grace period instead of each service's own.
    timeout: Option<Duration>,
    up: Option<UpContext>,
    /// Test-only: `WHARF_CRASH_BEFORE_STEP=N` kills this process with SIGKILL as its Nth step
    /// (counting from 1) is about to start, while earlier steps may still be running: the
    /// crash-safety tests check that the next `up` converges and the next `down` removes
    /// everything, whatever step a crash interrupts.
    crash_before: Option<usize>,
    started: std::sync::atomic::AtomicUsize,
    /// Container name → id, read once and kept up to date by this driver's own changes
    /// (a plan touches each container several times; rescanning every record each time
    /// would make a large project's `up` quadratic).
    names: Mutex<Option<HashMap<String, String>>>,
    /// Set by [`LinuxDriver::one_off`]: every container this driver creates is a one-off.
    one_off: Option<OneOff>,
    /// `up -V`: replacements get fresh anonymous volumes.
    renew_anon_volumes: bool,
}

impl LinuxDriver {
    pub fn new(state_root: &Path, exe: &Path, timeout: Option<Duration>) -> LinuxDriver {
        LinuxDriver {
            runtime: Runtime::new(state_root, exe),
            networks: Networks::new(state_root, exe),
            timeout,
            up: None,
            crash_before: std::env::var("WHARF_CRASH_BEFORE_STEP")
                .ok()
                .and_then(|n| n.parse().ok()),
            started: std::sync::atomic::AtomicUsize::new(0),
            names: Mutex::new(None),
            one_off: None,
            renew_anon_volumes: false,
        }
    }

    /// A driver whose containers are one-offs (`wharf run`): recorded as such, so that the
    /// reconciler leaves them alone, and, unless `use_aliases`, answering on their networks
    /// to their own name only.
    pub fn one_off(mut self, one_off: OneOff) -> LinuxDriver {
        self.one_off = Some(one_off);
        self
    }

    /// `up -V/--renew-anon-volumes`: a replacement gets fresh anonymous volumes instead of
    /// those of the container it replaces (which stay on the host, recorded).
    pub fn renew_anon_volumes(mut self, renew: bool) -> LinuxDriver {
        self.renew_anon_volumes = renew;
        self
    }

    /// A driver that can also create and start the containers of `context.project`.
    pub fn with_project(mut self, context: UpContext) -> LinuxDriver {
        self.up = Some(context);
        self
    }

    /// The id of the container named `name` (of the project being brought up, when
    /// there is one).
    fn container(&self, name: &str) -> Result<String, String> {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = names.as_ref().and_then(|n| n.get(name)) {
            if self.runtime.dir(id).config_path().exists() {
                return Ok(id.clone());
            }
        }
        let project = self.up.as_ref().map(|u| u.project.name.as_str());
        let scanned: HashMap<String, String> = self
            .runtime
            .list()
            .into_iter()
            .filter_map(|id| {
                let c = self.runtime.config(&id).ok()?;
                project
                    .is_none_or(|p| c.spec.project == p)
                    .then_some((c.spec.name, id))
            })
            .collect();
        let found = scanned.get(name).cloned();
        *names = Some(scanned);
        found.ok_or_else(|| format!("no container named {name}"))
    }

    fn remember(&self, name: &str, id: Option<&str>) {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(names) = names.as_mut() {
            match id {
                Some(id) => names.insert(name.to_string(), id.to_string()),
                None => names.remove(name),
            };
        }
    }

    fn context(&self, step: &Step) -> Result<&UpContext, String> {
        self.up.as_ref().ok_or_else(|| {
            format!(
                "{:?} of {} needs the Compose file",
                step.operation, step.resource
            )
        })
    }

    fn create_container(&self, ctx: &UpContext, name: &str) -> Result<(), String> {
        let (service, replica) = service_of(&ctx.project, name)?;
        let svc = &ctx.project.services[&service];
        let from: Vec<Vec<Mount>> = svc
            .volumes_from
            .iter()
            .map(|v| self.mounts_of(ctx, v))
            .collect::<Result<_, _>>()?;
        let from: Vec<&[Mount]> = from.iter().map(Vec::as_slice).collect();
        let inherited = self.inherited_anonymous_volumes(name);
        let prepared = prepare(
            &ctx.project,
            Naming {
                service: &service,
                replica,
                container_name: Some(name),
                id: None,
                volumes_from: &from,
                anonymous_volumes: inherited.as_ref(),
            },
            &ctx.store,
            ctx.cgroup,
        )
        .map_err(|e| e.to_string())?;
        let spec = &prepared.spec;
        // Checked now, made at the first start (see the module's comment).
        let sandbox = sandbox_spec(&ctx.project, &service, name, &spec.hostname)
            .map_err(|e| e.to_string())?;
        let netns =
            matches!(sandbox.mode, Mode::Bridge(_)).then(|| self.networks.netns_path(&spec.id));
        let mut joins = std::collections::BTreeMap::new();
        for ns in [
            &spec.namespaces.pid,
            &spec.namespaces.net,
            &spec.namespaces.ipc,
            &spec.namespaces.uts,
            &spec.namespaces.cgroup,
        ] {
            if let Namespace::Join(target) = ns {
                let (key, id) = self.join_target(ctx, target)?;
                joins.insert(key, id);
            }
        }
        let image_digest = svc
            .image
            .as_deref()
            .and_then(|i| crate::image::reference::Reference::parse(i).ok())
            .and_then(|r| ctx.store.resolve(&r.to_string()).ok().flatten());
        let origin = Origin {
            config_hash: service_hash(&ctx.project, svc),
            image_digest,
            service: serde_json::to_value(svc).unwrap_or_default(),
            one_off: self.one_off.clone(),
        };
        self.runtime
            .create(
                spec,
                &CreateOptions {
                    layers: prepared.layers.clone(),
                    joins,
                    netns,
                    origin: Some(origin),
                    ..CreateOptions::default()
                },
            )
            .map_err(|e| e.to_string())?;
        self.remember(name, Some(&spec.id));
        Ok(())
    }

    /// For a replacement (`name` is temporary), the anonymous volumes of the container it
    /// replaces, by destination; `None` for a new container, with `-V`, or when that
    /// container is gone (then it gets fresh ones).
    fn inherited_anonymous_volumes(
        &self,
        name: &str,
    ) -> Option<std::collections::BTreeMap<String, String>> {
        if self.renew_anon_volumes || !crate::plan::is_temporary(name) {
            return None;
        }
        let old = self.container(strip_temporary(name)).ok()?;
        let config = self.runtime.config(&old).ok()?;
        Some(anonymous_volumes_of(&config.spec.mounts))
    }

    /// Removes a container (stopped first if it runs) and then its sandbox. Its anonymous
    /// volumes stay: those no other container mounts are recorded for its project first.
    fn remove_container(&self, name: &str) -> Result<(), String> {
        let id = self.container(name)?;
        if let Ok(config) = self.runtime.config(&id) {
            let left = self.runtime.anonymous_volumes_left_by(&id);
            crate::state::keep_anonymous_volumes(
                self.runtime.root(),
                &config.spec.project,
                name,
                &left,
            )
            .map_err(|e| e.to_string())?;
        }
        // The process first (remove stops what still runs), then its sandbox.
        self.runtime
            .remove(&id, AnonymousVolumes::Keep)
            .map_err(|e| e.to_string())?;
        self.remember(name, None);
        self.networks
            .remove_sandbox(&id)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// The container a `service:X` / `container:X` namespace target means: for a
    /// service, its running replica with the lowest number.
    fn join_target(
        &self,
        ctx: &UpContext,
        target: &JoinTarget,
    ) -> Result<(String, String), String> {
        match target {
            JoinTarget::Service(s) => {
                let mut ids = self.service_containers(&ctx.project.name, s);
                ids.sort_by_key(|(_, replica, state)| (!state.is_active(), *replica));
                ids.into_iter()
                    .next()
                    .map(|(id, ..)| (format!("service:{s}"), id))
                    .ok_or_else(|| {
                        format!("service {s}, whose namespace it shares, has no container")
                    })
            }
            JoinTarget::Container(c) => Ok((format!("container:{c}"), self.container(c)?)),
        }
    }

    /// The mounts of the container a `volumes_from` entry names.
    fn mounts_of(&self, ctx: &UpContext, entry: &str) -> Result<Vec<Mount>, String> {
        let (target, _mode) = match entry.rsplit_once(':') {
            Some((t, m)) if m == "ro" || m == "rw" => (t, m),
            _ => (entry, "rw"),
        };
        let id = match target.strip_prefix("container:") {
            Some(name) => self.container(name)?,
            None => {
                self.join_target(ctx, &JoinTarget::Service(target.to_string()))?
                    .1
            }
        };
        Ok(self
            .runtime
            .config(&id)
            .map_err(|e| e.to_string())?
            .spec
            .mounts)
    }

    /// `(id, replica, state)` of every replica of `service` in `project` (one-off containers
    /// are not its replicas).
    fn service_containers(&self, project: &str, service: &str) -> Vec<(String, u64, State)> {
        self.runtime
            .list()
            .into_iter()
            .filter_map(|id| {
                let c = self.runtime.config(&id).ok()?;
                if c.spec.project != project || c.spec.service != service || c.one_off().is_some() {
                    return None;
                }
                let state = self.runtime.state(&id).ok()?;
                Some((id, c.spec.replica, state))
            })
            .collect()
    }

    /// Creates the one-off container `name` (its service names it as its `container_name`
    /// in the context's project); returns its id. See [`LinuxDriver::one_off`].
    pub fn create_one_off(&self, name: &str) -> Result<String, String> {
        let ctx = self
            .up
            .as_ref()
            .ok_or("a one-off container needs the Compose file")?;
        self.create_container(ctx, name)?;
        self.container(name)
    }

    /// Starts the one-off container `name` once its service's dependencies are ready,
    /// `attached` to our standard streams ([`Runtime::start_attached`]) or not.
    pub fn start_one_off(&self, name: &str, attached: bool) -> Result<(), String> {
        self.start_container(self.up.as_ref(), name, attached)
    }

    fn start_container(
        &self,
        ctx: Option<&UpContext>,
        name: &str,
        attached: bool,
    ) -> Result<(), String> {
        let id = self.container(name)?;
        let config = self.runtime.config(&id).map_err(|e| e.to_string())?;
        if let Some(ctx) = ctx {
            self.wait_for_dependencies(ctx, &config.spec.service, name)?;
        }
        if !self.has_sandbox(&id)? {
            let ctx =
                ctx.ok_or_else(|| format!("{name} has no network yet: `wharf up` gives it one"))?;
            let spec = sandbox_of(ctx, &config)?;
            let sandbox = self
                .networks
                .create_sandbox(&id, &spec)
                .map_err(|e| e.to_string())?;
            self.runtime
                .rewrite_etc(&id, EtcFile::Hosts, &sandbox.hosts)
                .and_then(|()| {
                    self.runtime
                        .rewrite_etc(&id, EtcFile::ResolvConf, &sandbox.resolv_conf)
                })
                .map_err(|e| e.to_string())?;
        }
        let started = if attached {
            self.runtime.start_attached(&id)
        } else {
            self.runtime.start(&id)
        };
        started.map(drop).map_err(|e| e.to_string())
    }

    /// Blocks until every `depends_on` condition of `service` holds, failing at once when
    /// one can no longer hold (the dependency exited or turned unhealthy) and after the
    /// context's timeout.
    fn wait_for_dependencies(
        &self,
        ctx: &UpContext,
        service: &str,
        name: &str,
    ) -> Result<(), String> {
        let Some(svc) = ctx.project.services.get(service) else {
            return Ok(());
        };
        let deadline = Instant::now() + ctx.dependency_timeout;
        for (dep, d) in &svc.depends_on {
            if !ctx.project.services.contains_key(dep) {
                // `required: false` on a service that is not there (profiled out) is
                // skipped; a required one the loader has already refused.
                continue;
            }
            let mut said = false;
            loop {
                let containers = self.service_containers(&ctx.project.name, dep);
                let health_checked = containers.iter().all(|(id, ..)| {
                    self.runtime
                        .config(id)
                        .is_ok_and(|c| c.spec.healthcheck.is_some())
                });
                let states: Vec<&State> = containers.iter().map(|(_, _, s)| s).collect();
                match condition(d.condition, &states, health_checked) {
                    Wait::Met => break,
                    Wait::Failed(why) => {
                        if !d.required {
                            (ctx.say)(format!(
                                "Container {name}  dependency {dep} {why}; it is not required, going on"
                            ));
                            break;
                        }
                        let tail = containers
                            .first()
                            .map(|(id, ..)| self.last_lines(id, 5))
                            .unwrap_or_default();
                        return Err(format!("dependency {dep} {why}{tail}"));
                    }
                    Wait::Pending(what) => {
                        if Instant::now() >= deadline {
                            return Err(format!(
                                "dependency {dep} is not {what} after {}s",
                                ctx.dependency_timeout.as_secs()
                            ));
                        }
                        if !said {
                            (ctx.say)(format!("Container {name}  Waiting for {dep} to be {what}"));
                            said = true;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        }
        Ok(())
    }

    /// The last `n` lines of a container's log, for an error message.
    fn last_lines(&self, id: &str, n: usize) -> String {
        let Ok(entries) = self.runtime.logs(id) else {
            return String::new();
        };
        let lines: Vec<&str> = entries
            .iter()
            .rev()
            .take(n)
            .map(|e| e.log.trim_end())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if lines.is_empty() {
            String::new()
        } else {
            format!("; its last lines:\n    {}", lines.join("\n    "))
        }
    }

    fn rewrite_etc_files(&self, id: &str) -> Result<(), String> {
        let files = self.networks.sandbox_files(id).map_err(|e| e.to_string())?;
        self.runtime
            .rewrite_etc(id, EtcFile::Hosts, &files.hosts)
            .and_then(|()| {
                self.runtime
                    .rewrite_etc(id, EtcFile::ResolvConf, &files.resolv_conf)
            })
            .map_err(|e| e.to_string())
    }

    fn has_sandbox(&self, id: &str) -> Result<bool, String> {
        Ok(self
            .networks
            .sandbox(id)
            .map_err(|e| e.to_string())?
            .is_some())
    }

    fn connect(&self, ctx: &UpContext, name: &str, key: &str) -> Result<(), String> {
        let id = self.container(name)?;
        if !self.has_sandbox(&id)? {
            // Never started: it gets all its networks when it first starts.
            return Ok(());
        }
        let config = self.runtime.config(&id).map_err(|e| e.to_string())?;
        let Mode::Bridge(endpoints) = sandbox_of(ctx, &config)?.mode else {
            return Err(format!("{name} has no bridge networks"));
        };
        let ep = endpoints
            .iter()
            .find(|e| e.network == key)
            .ok_or_else(|| format!("{name} is not on network {key}"))?;
        self.networks.connect(&id, ep).map_err(|e| e.to_string())?;
        self.rewrite_etc_files(&id)
    }

    fn disconnect(&self, name: &str, key: &str) -> Result<(), String> {
        let id = self.container(name)?;
        if !self.has_sandbox(&id)? {
            // Never started: it gets all its networks when it first starts.
            return Ok(());
        }
        self.networks
            .disconnect(&id, key)
            .map_err(|e| e.to_string())?;
        self.rewrite_etc_files(&id)
    }
}

/// The networking a container of the project should have, from its recorded service,
/// name and hostname. A one-off container answers only to its own name (and hostname),
/// not to its service's name and aliases, unless it was made with `--use-aliases` (as in
/// Docker Compose): lookups of the service reach its replicas only.
fn sandbox_of(
    ctx: &UpContext,
    config: &crate::runtime::container::LaunchConfig,
) -> Result<crate::network::model::SandboxSpec, String> {
    let mut spec = sandbox_spec(
        &ctx.project,
        &config.spec.service,
        &config.spec.name,
        &config.spec.hostname,
    )
    .map_err(|e| e.to_string())?;
    if config.one_off().is_some_and(|o| !o.use_aliases) {
        if let Mode::Bridge(endpoints) = &mut spec.mode {
            let own = [config.spec.name.as_str(), config.spec.hostname.as_str()];
            for e in endpoints {
                e.names.retain(|n| own.contains(&n.as_str()));
            }
        }
    }
    Ok(spec)
}

/// The service and replica of container `name` of `project`: a temporary name
/// (`<12 hex>_<name>`) means the container it replaces; `<project>-<service>-<n>` is
/// replica n; otherwise a service's `container_name`.
pub fn service_of(project: &Project, name: &str) -> Result<(String, u64), String> {
    let name = strip_temporary(name);
    if let Some((service, n)) = name
        .strip_prefix(&format!("{}-", project.name))
        .and_then(|rest| rest.rsplit_once('-'))
    {
        if let (true, Ok(n)) = (project.services.contains_key(service), n.parse()) {
            return Ok((service.to_string(), n));
        }
    }
    project
        .services
        .iter()
        .find(|(_, s)| s.container_name.as_deref() == Some(name))
        .map(|(k, _)| (k.clone(), 1))
        .ok_or_else(|| {
            format!(
                "no service of project {} makes container {name}",
                project.name
            )
        })
}

/// `name` without the `<12 hex>_` prefix the plan gives a replacement.
fn strip_temporary(name: &str) -> &str {
    match name.split_once('_') {
        Some((_, rest)) if crate::plan::is_temporary(name) => rest,
        _ => name,
    }
}

/// Where a dependency condition stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    Met,
    /// Not yet: what it waits for (`healthy`, `started`, `completed successfully`).
    Pending(&'static str),
    /// Can no longer hold: why.
    Failed(String),
}

/// Whether `condition` holds for a dependency whose containers are in `states`.
/// `health_checked`: every container has a health check.
pub fn condition(condition: DependencyCondition, states: &[&State], health_checked: bool) -> Wait {
    use crate::runtime::health::Status as Health;
    if states.is_empty() {
        return match condition {
            // Scaled to zero: nothing to wait for, as Docker Compose does.
            DependencyCondition::ServiceStarted => Wait::Met,
            _ => Wait::Failed("has no container".into()),
        };
    }
    let exited = |s: &State| matches!(s.status, Status::Exited | Status::Dead);
    let code = |s: &State| s.exit_code.map_or("?".to_string(), |c| c.to_string());
    match condition {
        DependencyCondition::ServiceStarted => {
            if states
                .iter()
                .all(|s| s.started_at.is_some() || s.is_active())
            {
                Wait::Met
            } else {
                Wait::Pending("started")
            }
        }
        DependencyCondition::ServiceHealthy => {
            if !health_checked {
                return Wait::Failed("has no healthcheck configured".into());
            }
            if let Some(s) = states.iter().find(|s| {
                s.health
                    .as_ref()
                    .is_some_and(|h| h.status == Health::Unhealthy)
            }) {
                let _ = s;
                return Wait::Failed("is unhealthy".into());
            }
            if let Some(s) = states.iter().find(|s| exited(s)) {
                return Wait::Failed(format!("exited ({})", code(s)));
            }
            if states.iter().all(|s| {
                s.health
                    .as_ref()
                    .is_some_and(|h| h.status == Health::Healthy)
            }) {
                Wait::Met
            } else {
                Wait::Pending("healthy")
            }
        }
        DependencyCondition::ServiceCompletedSuccessfully => {
            if let Some(s) = states.iter().find(|s| exited(s) && s.exit_code != Some(0)) {
                return Wait::Failed(format!("didn't complete successfully: exit {}", code(s)));
            }
            if states.iter().all(|s| exited(s)) {
                Wait::Met
            } else {
                Wait::Pending("completed successfully")
            }
        }
    }
}

impl Driver for LinuxDriver {
    fn execute(&self, step: &Step) -> Result<(), String> {
        if let Some(n) = self.crash_before {
            let this = self
                .started
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                + 1;
            if this == n {
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            }
        }
        let (kind, name) = step
            .resource
            .split_once(':')
            .ok_or_else(|| format!("malformed resource {:?}", step.resource))?;
        let target = || {
            step.target
                .clone()
                .ok_or_else(|| format!("{:?} of {} names no target", step.operation, step.resource))
        };
        match (step.operation, kind) {
            (Operation::CreateContainer, "container") => {
                self.create_container(self.context(step)?, name)
            }
            (Operation::StartContainer, "container") => {
                self.start_container(self.up.as_ref(), name, false)
            }
            (Operation::RenameContainer, "container") => {
                let id = self.container(name)?;
                let to = target()?;
                self.runtime.rename(&id, &to).map_err(|e| e.to_string())?;
                self.remember(name, None);
                self.remember(&to, Some(&id));
                Ok(())
            }
            (Operation::StopContainer, "container") => {
                let id = self.container(name)?;
                self.runtime
                    .stop(&id, self.timeout)
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
            (Operation::RemoveContainer, "container") => self.remove_container(name),
            (Operation::ConnectNetwork, "container") => {
                self.connect(self.context(step)?, name, &target()?)
            }
            (Operation::DisconnectNetwork, "container") => self.disconnect(name, &target()?),
            (Operation::CreateNetwork, "network") => {
                let ctx = self.context(step)?;
                let key = ctx
                    .project
                    .networks
                    .iter()
                    .find(|(k, n)| object_name(&ctx.project, k, &n.name) == name)
                    .map(|(k, _)| k.clone())
                    .ok_or_else(|| format!("no network of the project is named {name}"))?;
                let spec = network_spec(&ctx.project, &key).map_err(|e| e.to_string())?;
                self.networks
                    .create_network(&spec)
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
            (Operation::RemoveNetwork, "network") => self
                .networks
                .remove_network(name)
                .map(drop)
                .map_err(|e| e.to_string()),
            (Operation::CreateVolume, "volume") => {
                let ctx = self.context(step)?;
                let (key, volume) = ctx
                    .project
                    .volumes
                    .iter()
                    .find(|(k, v)| object_name(&ctx.project, k, &v.name) == name)
                    .ok_or_else(|| format!("no volume of the project is named {name}"))?;
                self.runtime
                    .volumes()
                    .ensure(name)
                    .map_err(|e| e.to_string())?;
                crate::state::record_volume(
                    self.runtime.root(),
                    &ctx.project.name,
                    &VolumeRecord {
                        key: key.clone(),
                        name: name.to_string(),
                        hash: object_hash(volume),
                    },
                )
                .map_err(|e| e.to_string())
            }
            (Operation::RemoveVolume, "volume") => {
                if let Some(user) = self.runtime.volumes_in_use(None).get(name) {
                    return Err(format!("volume {name} is in use by container {user}"));
                }
                self.runtime
                    .volumes()
                    .remove(name)
                    .map_err(|e| e.to_string())?;
                crate::state::forget_volume_everywhere(self.runtime.root(), name)
                    .map_err(|e| e.to_string())
            }
            (op, _) => Err(format!(
                "{op:?} of {} is not something wharf does",
                step.resource
            )),
        }
    }
}

/// The host name of network or volume `key` (as `plan::desired` names it).
fn object_name(project: &Project, key: &str, name: &Option<String>) -> String {
    name.clone()
        .unwrap_or_else(|| format!("{}_{key}", project.name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::health::{Health, Status as HealthStatus};

    fn state(status: Status, exit: Option<i32>, health: Option<HealthStatus>) -> State {
        State {
            status,
            exit_code: exit,
            started_at: Some("2026-11-24T00:00:00Z".into()),
            health: health.map(|status| Health {
                status,
                ..Health::default()
            }),
            ..State::created()
        }
    }

    #[test]
    fn dependency_conditions_by_docker_compose_rules() {
        use DependencyCondition::*;
        let running = state(Status::Running, None, None);
        let starting = state(Status::Running, None, Some(HealthStatus::Starting));
        let healthy = state(Status::Running, None, Some(HealthStatus::Healthy));
        let unhealthy = state(Status::Running, None, Some(HealthStatus::Unhealthy));
        let ok = state(Status::Exited, Some(0), None);
        let failed = state(Status::Exited, Some(3), None);
        let restarting = state(Status::Restarting, Some(1), None);
        assert_eq!(condition(ServiceStarted, &[&running], false), Wait::Met);
        assert_eq!(condition(ServiceStarted, &[], false), Wait::Met);
        assert_eq!(
            condition(ServiceStarted, &[&State::created()], false),
            Wait::Pending("started")
        );
        assert_eq!(
            condition(ServiceHealthy, &[&healthy, &healthy], true),
            Wait::Met
        );
        assert_eq!(
            condition(ServiceHealthy, &[&healthy, &starting], true),
            Wait::Pending("healthy")
        );
        assert_eq!(
            condition(ServiceHealthy, &[&unhealthy], true),
            Wait::Failed("is unhealthy".into())
        );
        assert_eq!(
            condition(ServiceHealthy, &[&failed], true),
            Wait::Failed("exited (3)".into())
        );
        assert_eq!(
            condition(ServiceHealthy, &[&running], false),
            Wait::Failed("has no healthcheck configured".into())
        );
        assert_eq!(
            condition(ServiceCompletedSuccessfully, &[&ok], false),
            Wait::Met
        );
        assert_eq!(
            condition(ServiceCompletedSuccessfully, &[&running], false),
            Wait::Pending("completed successfully")
        );
        assert_eq!(
            condition(ServiceCompletedSuccessfully, &[&restarting], false),
            Wait::Pending("completed successfully"),
            "a restarting job may still succeed"
        );
        assert_eq!(
            condition(ServiceCompletedSuccessfully, &[&failed], false),
            Wait::Failed("didn't complete successfully: exit 3".into())
        );
        assert_eq!(
            condition(ServiceCompletedSuccessfully, &[], false),
            Wait::Failed("has no container".into())
        );
    }

    #[test]
    fn container_names_map_back_to_service_and_replica() {
        let p = crate::compose::testing::project(
            "services:\n  web-app:\n    image: x\n  db:\n    image: x\n    container_name: the-db\n",
            "shop-1",
        );
        assert_eq!(
            service_of(&p, "shop-1-web-app-3"),
            Ok(("web-app".into(), 3))
        );
        assert_eq!(
            service_of(&p, "0123456789ab_shop-1-web-app-1"),
            Ok(("web-app".into(), 1))
        );
        assert_eq!(service_of(&p, "the-db"), Ok(("db".into(), 1)));
        assert!(service_of(&p, "shop-1-cache-1").is_err());
        assert_eq!(strip_temporary("not_hex_prefix"), "not_hex_prefix");
    }
}
