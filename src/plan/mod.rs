//! The planner: desired state (from the Compose model) against live state, as a plan of
//! operations, each with the resource it touches, why, and what it waits for.
//!
//! Pure, like `compose` and `graph`: data in, data out. [`desired`] reads the model;
//! [`Live`] is what the state directory and the kernel say exists (the reconciler builds it;
//! tests write it by hand); [`diff`] compares them under the user's [`Options`] and returns
//! a [`Plan`], which renders one line per operation (`[deps] -> #id resource, Operation,
//! cause`) for `wharf plan` and `up --dry-run`.
//!
//! The rules are Docker Compose's, with its users' complaints addressed: a container is
//! recreated only when its config hash or its image changed, create-before-destroy (the
//! new container under a temporary name, then stop, remove, rename); scaling never
//! recreates and keeps the lowest replica numbers; a network whose configuration changed is
//! recreated with its containers disconnected and reconnected, not recreated; a volume is
//! never removed by `up`; orphans are reported, and removed only when asked.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::compose::hash::{object_hash, service_hash};
use crate::compose::model::{DependencyCondition, Project};

/// One service as the Compose files want it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DesiredService {
    pub name: String,
    pub hash: String,
    pub image: String,
    pub replicas: u64,
    /// The services it needs first (`depends_on`, `links`, namespaces, `volumes_from`).
    pub deps: Vec<String>,
    /// The dependencies declared with `restart: true`: when one is recreated, this
    /// service is restarted.
    pub restart_with: Vec<String>,
    /// A job that runs once: another service waits for it with
    /// `service_completed_successfully`, or it is labelled `wharf.one-shot: "true"`; and it
    /// has no restart policy. Once it exited 0, `up` leaves it be (Docker Compose runs it
    /// again on every `up`, a common complaint about migrations).
    pub one_shot: bool,
    /// The network and volume keys it uses.
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    /// `container_name`, when set (then the service has one replica).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// Whether it mounts anonymous volumes (a `volumes` entry of type volume without a
    /// source): `-V` recreates it so that they start empty.
    pub anonymous_volumes: bool,
    /// The services whose namespaces or volumes it shares, with the field that says so
    /// (`network_mode`, `ipc`, `pid`: `service:X`; `volumes_from`). Its container holds
    /// on to theirs, so it is recreated when theirs is.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shares: Vec<(String, String)>,
    /// The normalized service, for field-level causes.
    pub config: serde_json::Value,
}

impl DesiredService {
    /// The name of its replica `replica` (`container_name`, or `<project>-<service>-<n>`).
    pub fn container_name(&self, project: &str, replica: u64) -> String {
        match &self.container_name {
            Some(name) => name.clone(),
            None => container_name(project, &self.name, replica),
        }
    }
}

/// A network or volume as the Compose files want it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredObject {
    pub key: String,
    /// Its name on the host.
    pub name: String,
    pub external: bool,
    /// SHA-256 of its normalized definition.
    pub hash: String,
}

/// The whole project as the Compose files want it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Desired {
    pub project: String,
    pub services: BTreeMap<String, DesiredService>,
    pub networks: BTreeMap<String, DesiredObject>,
    pub volumes: BTreeMap<String, DesiredObject>,
}

/// The desired state of `project`.
pub fn desired(project: &Project) -> Desired {
    let graph = crate::graph::build(project);
    let one_shots: BTreeSet<&String> = project
        .services
        .values()
        .flat_map(|s| {
            s.depends_on
                .iter()
                .filter(|(_, d)| d.condition == DependencyCondition::ServiceCompletedSuccessfully)
                .map(|(n, _)| n)
        })
        .chain(
            project
                .services
                .iter()
                .filter(|(_, s)| s.labels.get("wharf.one-shot").map(String::as_str) == Some("true"))
                .map(|(n, _)| n),
        )
        .collect();
    let services = project
        .services
        .iter()
        .map(|(name, svc)| {
            let me = crate::graph::Resource::Service(name.clone());
            let mut deps = Vec::new();
            let mut networks = Vec::new();
            let mut volumes = Vec::new();
            for (r, _) in graph.dependencies(&me) {
                match r {
                    crate::graph::Resource::Service(s) => deps.push(s.clone()),
                    crate::graph::Resource::Network(n) => networks.push(n.clone()),
                    crate::graph::Resource::Volume(v) => volumes.push(v.clone()),
                }
            }
            for v in [&mut deps, &mut networks, &mut volumes] {
                v.sort();
                v.dedup();
            }
            let service = DesiredService {
                name: name.clone(),
                hash: service_hash(project, svc),
                image: svc.image.clone().unwrap_or_default(),
                replicas: svc.replicas(),
                deps,
                restart_with: svc
                    .depends_on
                    .iter()
                    .filter(|(_, d)| d.restart)
                    .map(|(n, _)| n.clone())
                    .collect(),
                one_shot: one_shots.contains(name)
                    && matches!(svc.restart.as_deref(), None | Some("no")),
                networks,
                volumes,
                container_name: svc.container_name.clone(),
                anonymous_volumes: svc
                    .volumes
                    .iter()
                    .any(|v| v.kind == "volume" && v.source.is_none()),
                shares: shared_with(svc),
                config: serde_json::to_value(svc).unwrap_or_default(),
            };
            (name.clone(), service)
        })
        .collect();
    let object =
        |key: &String, name: &Option<String>, external: bool, hash: String| DesiredObject {
            key: key.clone(),
            name: name
                .clone()
                .unwrap_or_else(|| format!("{}_{key}", project.name)),
            external,
            hash,
        };
    Desired {
        project: project.name.clone(),
        services,
        networks: project
            .networks
            .iter()
            .map(|(k, n)| (k.clone(), object(k, &n.name, n.external, object_hash(n))))
            .collect(),
        volumes: project
            .volumes
            .iter()
            .map(|(k, v)| (k.clone(), object(k, &v.name, v.external, object_hash(v))))
            .collect(),
    }
}

/// The services whose namespaces (`network_mode`/`ipc`/`pid: service:X`) or volumes
/// (`volumes_from: X`) `svc` uses, each with the field that names it.
fn shared_with(svc: &crate::compose::model::Service) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (field, value) in [
        ("network_mode", &svc.network_mode),
        ("ipc", &svc.ipc),
        ("pid", &svc.pid),
    ] {
        if let Some(parent) = value.as_deref().and_then(|v| v.strip_prefix("service:")) {
            out.push((parent.to_string(), field.to_string()));
        }
    }
    for vf in svc
        .volumes_from
        .iter()
        .filter(|v| !v.starts_with("container:"))
    {
        let parent = vf.split(':').next().unwrap_or_default();
        out.push((parent.to_string(), "volumes_from".to_string()));
    }
    out
}

/// A container as it exists.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveContainer {
    pub id: String,
    pub name: String,
    pub service: String,
    pub replica: u64,
    /// The config hash it was created from.
    pub hash: String,
    /// The digest of the image it runs, and the one the store has for its reference now.
    pub image_digest: Option<String>,
    pub running: bool,
    /// How it last exited, when it is not running.
    pub exit_code: Option<i32>,
    /// Network keys it is attached to.
    pub networks: Vec<String>,
    /// The normalized service it was created from, for field-level causes.
    pub config: Option<serde_json::Value>,
    /// A one-off container (`wharf run`): none of its service's replicas, left alone by
    /// `up`, removed by `down`.
    pub one_off: bool,
}

/// A network or volume as it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveObject {
    pub name: String,
    pub hash: String,
}

/// What exists of the project.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Live {
    pub containers: Vec<LiveContainer>,
    pub networks: BTreeMap<String, LiveObject>,
    pub volumes: BTreeMap<String, LiveObject>,
    /// The project's anonymous volumes: those its containers mount, and those its removed
    /// containers left on the host (recorded by the reconciler). `down -v` removes them.
    pub anonymous_volumes: BTreeSet<String>,
    /// The digest the store has now for each image reference the project uses.
    pub images: BTreeMap<String, String>,
}

/// The user's choices (`up` flags), with Docker Compose's meanings.
///
/// The services named (`up SERVICE…`, all when none is) are *targeted*; their
/// dependencies are planned too unless `no_deps`, every other service is left alone.
/// `force_recreate` and `renew_anon_volumes` apply to the targeted services,
/// `always_recreate_deps` to the dependencies pulled in, `no_recreate` to all. So, as in
/// Docker Compose, `always_recreate_deps` changes nothing when no service is named: then
/// every service is targeted and none is only a dependency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `--force-recreate`: recreate the targeted services' containers even if unchanged.
    pub force_recreate: bool,
    /// `--no-recreate`: never recreate an existing container (wins over the others).
    pub no_recreate: bool,
    pub remove_orphans: bool,
    pub no_start: bool,
    /// `--scale SERVICE=N`.
    pub scale: BTreeMap<String, u64>,
    /// `up SERVICE…`: only these and (unless `no_deps`) their dependencies, transitively.
    pub services: Vec<String>,
    /// `--no-deps`: the named services only.
    pub no_deps: bool,
    /// `--always-recreate-deps`: recreate the dependencies of the named services too.
    pub always_recreate_deps: bool,
    /// `-V/--renew-anon-volumes`: recreated containers get new anonymous volumes, and a
    /// targeted container that has some is recreated for that alone.
    pub renew_anon_volumes: bool,
    /// `run SERVICE`: what a one-off container of SERVICE needs — the networks and volumes
    /// it uses and (unless `no_deps`) its dependencies — with SERVICE's own containers
    /// left alone.
    pub one_off: Option<String>,
}

/// When a service's existing containers are recreated.
enum Policy {
    /// Never (`--no-recreate`).
    Never,
    /// Always, for the reason given (the flag).
    Force(&'static str),
    /// When the config hash or the image changed (the default).
    Diverged,
}

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Operation {
    CreateNetwork,
    RemoveNetwork,
    CreateVolume,
    RemoveVolume,
    CreateContainer,
    StartContainer,
    StopContainer,
    RemoveContainer,
    RenameContainer,
    ConnectNetwork,
    DisconnectNetwork,
}

/// One operation of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub id: usize,
    /// `network:front`, `volume:data`, `container:shop-web-1`.
    pub resource: String,
    pub operation: Operation,
    pub cause: String,
    /// The steps that must be done first.
    pub deps: Vec<usize>,
    /// What the operation aims at besides its resource: the new name of a
    /// `RenameContainer`, the network key of a `ConnectNetwork`/`DisconnectNetwork`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// The plan: steps in an order that respects their dependencies, and what the user should
/// know that is not a step (orphans kept, a volume that differs and is kept).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub warnings: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    fn push(
        &mut self,
        resource: String,
        operation: Operation,
        cause: &str,
        deps: &[usize],
    ) -> usize {
        let id = self.steps.len() + 1;
        let mut deps = deps.to_vec();
        deps.sort_unstable();
        deps.dedup();
        self.steps.push(Step {
            id,
            resource,
            operation,
            cause: cause.to_string(),
            deps,
            target: None,
        });
        id
    }

    /// The container that a `CreateContainer` step's container replaces (the one the plan
    /// stops once the new one exists), `None` for any other step.
    pub fn replaced_by(&self, step: &Step) -> Option<&str> {
        if step.operation != Operation::CreateContainer {
            return None;
        }
        self.steps
            .iter()
            .find(|s| {
                s.operation == Operation::StopContainer
                    && s.cause == "replaced"
                    && s.deps == [step.id]
            })
            .and_then(|s| s.resource.strip_prefix("container:"))
    }

    /// Like `push`, for an operation aimed at `target` (see [`Step::target`]).
    fn push_to(
        &mut self,
        resource: String,
        operation: Operation,
        cause: &str,
        deps: &[usize],
        target: &str,
    ) -> usize {
        let id = self.push(resource, operation, cause, deps);
        self.steps[id - 1].target = Some(target.to_string());
        id
    }
}

impl fmt::Display for Step {
    /// `[1,2] -> #3 container:shop-web-1, CreateContainer, not found`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let deps: Vec<String> = self.deps.iter().map(usize::to_string).collect();
        write!(
            f,
            "[{}] -> #{} {}, {:?}, {}",
            deps.join(","),
            self.id,
            self.resource,
            self.operation,
            self.cause
        )
    }
}

impl fmt::Display for Plan {
    /// One line per step (see [`Step`]'s `Display`), then one per warning.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.steps {
            writeln!(f, "{s}")?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}

/// Whether `name` is a replacement's temporary name (`<12 hex digits>_<name>`).
pub fn is_temporary(name: &str) -> bool {
    name.split_once('_').is_some_and(|(prefix, _)| {
        prefix.len() == 12 && prefix.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// The container name of `replica` of `service` (Docker Compose's: `<project>-<service>-<n>`).
pub fn container_name(project: &str, service: &str, replica: u64) -> String {
    format!("{project}-{service}-{replica}")
}

/// The paths of the fields that differ between two JSON values (`environment.FOO`,
/// `image`), objects compared key by key, anything else as a whole.
pub fn changed_fields(old: &serde_json::Value, new: &serde_json::Value) -> Vec<String> {
    fn walk(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
        match (a, b) {
            (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    match (x.get(k), y.get(k)) {
                        (Some(a), Some(b)) => walk(&p, a, b, out),
                        // Added or removed: a key whose value is null (`networks: {back:}`)
                        // is still a change.
                        _ => out.push(p),
                    }
                }
            }
            _ if a != b => out.push(path.to_string()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", old, new, &mut out);
    out
}

/// A unified diff of two service configs (what a container was created from against what
/// the Compose files want now), as pretty JSON with object keys sorted so that only real
/// changes show; empty when they are equal. `wharf plan --diff` prints it under each
/// recreated container.
pub fn config_diff(old: &serde_json::Value, new: &serde_json::Value) -> String {
    fn sorted(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                serde_json::Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let render = |v: &serde_json::Value| {
        let mut text = serde_json::to_string_pretty(&sorted(v)).unwrap_or_default();
        text.push('\n');
        text
    };
    let (old, new) = (render(old), render(new));
    if old == new {
        return String::new();
    }
    similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(2)
        .header("live", "compose")
        .to_string()
}

/// The services `options` plans: the named ones and, unless `no_deps`, their
/// dependencies, transitively; every service when none is named. Names the Compose files
/// do not know are ignored (the CLI refuses them first).
fn scope<'a>(desired: &'a Desired, options: &Options) -> BTreeSet<&'a str> {
    if options.services.is_empty() && options.one_off.is_none() {
        return desired.services.keys().map(String::as_str).collect();
    }
    let mut out = BTreeSet::new();
    let mut todo: Vec<&str> = options
        .services
        .iter()
        .chain(&options.one_off)
        .map(String::as_str)
        .collect();
    while let Some(name) = todo.pop() {
        let Some((key, svc)) = desired.services.get_key_value(name) else {
            continue;
        };
        if out.insert(key.as_str()) && !options.no_deps {
            todo.extend(svc.deps.iter().map(String::as_str));
        }
    }
    out
}

/// The plan that brings `live` to `desired`.
pub fn diff(desired: &Desired, live: &Live, options: &Options) -> Plan {
    let mut plan = Plan::default();
    let mut ready: BTreeMap<String, usize> = BTreeMap::new(); // resource → step it waits on

    // One-off containers (`wharf run`) are nobody's replicas: `up` leaves them alone.
    let replicas;
    let live = if live.containers.iter().any(|c| c.one_off) {
        replicas = Live {
            containers: live
                .containers
                .iter()
                .filter(|c| !c.one_off)
                .cloned()
                .collect(),
            ..live.clone()
        };
        &replicas
    } else {
        live
    };

    // With services named, only what they use is planned; otherwise everything declared.
    // For a one-off container, its service is in scope for what it uses, but its own
    // containers are not planned.
    let used_scope = scope(desired, options);
    let whole = options.services.is_empty() && options.one_off.is_none();
    let used = |pick: fn(&DesiredService) -> &Vec<String>, key: &str| {
        whole
            || used_scope
                .iter()
                .filter_map(|s| desired.services.get(*s))
                .any(|s| pick(s).iter().any(|k| k == key))
    };
    let scope: BTreeSet<&str> = used_scope
        .iter()
        .copied()
        .filter(|s| options.one_off.as_deref() != Some(*s))
        .collect();
    let targeted = |service: &str| whole || options.services.iter().any(|s| s == service);
    let policy = |service: &str| {
        if options.no_recreate {
            Policy::Never
        } else if targeted(service) {
            if options.force_recreate {
                Policy::Force("--force-recreate")
            } else {
                Policy::Diverged
            }
        } else if options.always_recreate_deps {
            Policy::Force("--always-recreate-deps")
        } else {
            Policy::Diverged
        }
    };

    // Volumes: created when missing; one that differs is kept, never removed by `up`.
    for (key, v) in &desired.volumes {
        if v.external || !used(|s| &s.volumes, key) {
            continue;
        }
        match live.volumes.get(key) {
            None => {
                let id = plan.push(format!("volume:{}", v.name), Operation::CreateVolume, "not found", &[]);
                ready.insert(format!("volume:{key}"), id);
            }
            Some(l) if l.hash != v.hash => plan.warnings.push(format!(
                "volume {:?} exists with another configuration; it is kept (remove it with `down -v` to recreate it)",
                v.name
            )),
            Some(_) => {}
        }
    }

    // Which containers will be recreated, and why (known before any step is planned, so
    // that a changed network does not reconnect what will be replaced anyway). The one
    // reason known only later, a recreated namespace parent, never concerns a container
    // attached to networks of its own.
    let recreate = |c: &LiveContainer| -> Option<String> {
        let svc = desired.services.get(&c.service)?;
        if !scope.contains(c.service.as_str()) {
            return None;
        }
        let wanted = options
            .scale
            .get(&c.service)
            .copied()
            .unwrap_or(svc.replicas);
        if c.replica > wanted {
            return None;
        }
        let cause = match policy(&c.service) {
            Policy::Never => return None,
            Policy::Force(flag) => Some(flag.to_string()),
            Policy::Diverged => diverged(c, svc, live),
        };
        // `-V`: the anonymous volumes are not carried over to the new container.
        let renew = options.renew_anon_volumes && svc.anonymous_volumes;
        match cause {
            Some(cause) if renew => Some(format!("{cause} (--renew-anon-volumes)")),
            None if renew && targeted(&c.service) => Some("--renew-anon-volumes".into()),
            cause => cause,
        }
    };

    // Networks: created when missing; recreated when changed, their containers
    // disconnected first and reconnected after.
    let mut reconnect: Vec<(String, String, usize)> = Vec::new();
    for (key, n) in &desired.networks {
        if n.external || !used(|s| &s.networks, key) {
            continue;
        }
        match live.networks.get(key) {
            None => {
                let id = plan.push(
                    format!("network:{}", n.name),
                    Operation::CreateNetwork,
                    "not found",
                    &[],
                );
                ready.insert(format!("network:{key}"), id);
            }
            Some(l) if l.hash != n.hash => {
                let mut disconnects = Vec::new();
                for c in live.containers.iter().filter(|c| c.networks.contains(key)) {
                    let id = plan.push_to(
                        format!("container:{}", c.name),
                        Operation::DisconnectNetwork,
                        &format!("network {key} changed"),
                        &[],
                        key,
                    );
                    disconnects.push(id);
                    if recreate(c).is_none() && desired.services.contains_key(&c.service) {
                        reconnect.push((c.name.clone(), key.clone(), 0));
                    }
                }
                let removed = plan.push(
                    format!("network:{}", l.name),
                    Operation::RemoveNetwork,
                    "config changed",
                    &disconnects,
                );
                let id = plan.push(
                    format!("network:{}", n.name),
                    Operation::CreateNetwork,
                    "config changed",
                    &[removed],
                );
                ready.insert(format!("network:{key}"), id);
                for r in reconnect.iter_mut().filter(|r| r.1 == *key) {
                    r.2 = id;
                }
            }
            Some(_) => {}
        }
    }
    for (container, key, after) in reconnect {
        plan.push_to(
            format!("container:{container}"),
            Operation::ConnectNetwork,
            &format!("network {key} recreated"),
            &[after],
            &key,
        );
    }

    // Services, in dependency order so that a dependency's steps exist before its
    // dependents refer to them.
    let order = service_order(desired);
    let mut recreated: BTreeSet<String> = BTreeSet::new();
    for name in order.iter().filter(|n| scope.contains(n.as_str())) {
        let svc = &desired.services[name];
        let wanted = options.scale.get(name).copied().unwrap_or(svc.replicas);
        let mut deps: Vec<usize> = svc
            .deps
            .iter()
            .filter_map(|d| ready.get(&format!("service:{d}")).copied())
            .collect();
        deps.extend(
            svc.networks
                .iter()
                .filter_map(|n| ready.get(&format!("network:{n}")).copied()),
        );
        deps.extend(
            svc.volumes
                .iter()
                .filter_map(|v| ready.get(&format!("volume:{v}")).copied()),
        );
        let mut existing: Vec<&LiveContainer> = live
            .containers
            .iter()
            .filter(|c| c.service == *name)
            .collect();
        existing.sort_by_key(|c| c.replica);
        // A replacement left under its temporary name by an interrupted `up` (killed
        // between creating it and renaming it) goes first; its replica is then planned
        // from what remains, so the next `up` converges.
        let (leftovers, kept): (Vec<&LiveContainer>, Vec<&LiveContainer>) =
            existing.into_iter().partition(|c| is_temporary(&c.name));
        let existing = kept;
        for c in leftovers {
            let resource = format!("container:{}", c.name);
            let cause = "left by an interrupted recreate";
            let stopped: Vec<usize> = c
                .running
                .then(|| plan.push(resource.clone(), Operation::StopContainer, cause, &[]))
                .into_iter()
                .collect();
            deps.push(plan.push(resource, Operation::RemoveContainer, cause, &stopped));
        }
        // A container that shares a recreated container's namespaces or volumes holds on
        // to the old ones: it is recreated too (unless `--no-recreate`).
        // (Its parents come earlier in `order`, so `recreated` already knows them.)
        let parent_recreated = match policy(name) {
            Policy::Never => None,
            _ => svc
                .shares
                .iter()
                .find(|(p, _)| recreated.contains(p))
                .map(|(parent, field)| {
                    if field == "volumes_from" {
                        format!("volumes_from {parent} recreated")
                    } else {
                        format!("{field} service:{parent} recreated")
                    }
                }),
        };
        let mut started = Vec::new();
        for replica in 1..=wanted {
            let cname = svc.container_name(&desired.project, replica);
            match existing.iter().find(|c| c.replica == replica) {
                None => {
                    let created = plan.push(
                        format!("container:{cname}"),
                        Operation::CreateContainer,
                        "not found",
                        &deps,
                    );
                    if !options.no_start {
                        started.push(plan.push(
                            format!("container:{cname}"),
                            Operation::StartContainer,
                            "created",
                            &[created],
                        ));
                    } else {
                        started.push(created);
                    }
                }
                Some(c) => match recreate(c).or_else(|| parent_recreated.clone()) {
                    Some(cause) => {
                        recreated.insert(name.clone());
                        let tmp = format!("{}_{cname}", c.id.get(..12).unwrap_or(&c.id));
                        let created = plan.push(
                            format!("container:{tmp}"),
                            Operation::CreateContainer,
                            &cause,
                            &deps,
                        );
                        let stopped = plan.push(
                            format!("container:{}", c.name),
                            Operation::StopContainer,
                            "replaced",
                            &[created],
                        );
                        let removed = plan.push(
                            format!("container:{}", c.name),
                            Operation::RemoveContainer,
                            "replaced",
                            &[stopped],
                        );
                        let renamed = plan.push_to(
                            format!("container:{tmp}"),
                            Operation::RenameContainer,
                            &format!("to {cname}"),
                            &[removed],
                            &cname,
                        );
                        if !options.no_start {
                            started.push(plan.push(
                                format!("container:{cname}"),
                                Operation::StartContainer,
                                "recreated",
                                &[renamed],
                            ));
                        } else {
                            started.push(renamed);
                        }
                    }
                    None if !c.running && svc.one_shot && c.exit_code == Some(0) => {
                        // A job that completed: done, not to be run again.
                    }
                    None if !c.running && !options.no_start => {
                        started.push(plan.push(
                            format!("container:{cname}"),
                            Operation::StartContainer,
                            "not running",
                            &deps,
                        ));
                    }
                    None if c.running
                        && !options.no_start
                        && svc.restart_with.iter().any(|d| recreated.contains(d)) =>
                    {
                        // `depends_on: {X: {restart: true}}`: X was recreated.
                        let dep = svc.restart_with.iter().find(|d| recreated.contains(*d));
                        let cause =
                            format!("dependency {} recreated", dep.map_or("", String::as_str));
                        let stopped = plan.push(
                            format!("container:{cname}"),
                            Operation::StopContainer,
                            &cause,
                            &deps,
                        );
                        started.push(plan.push(
                            format!("container:{cname}"),
                            Operation::StartContainer,
                            &cause,
                            &[stopped],
                        ));
                    }
                    None => {}
                },
            }
        }
        // Scale down: the highest replica numbers go.
        for c in existing.iter().rev().filter(|c| c.replica > wanted) {
            let stopped = plan.push(
                format!("container:{}", c.name),
                Operation::StopContainer,
                "scale down",
                &[],
            );
            plan.push(
                format!("container:{}", c.name),
                Operation::RemoveContainer,
                "scale down",
                &[stopped],
            );
        }
        if !started.is_empty() {
            // Dependents wait for every replica that changed.
            let joined = *started.iter().max().unwrap_or(&0);
            ready.insert(format!("service:{name}"), joined);
        }
    }

    // Orphans: containers of the project whose service is gone (or profiled out).
    let orphans: Vec<&LiveContainer> = live
        .containers
        .iter()
        .filter(|c| !desired.services.contains_key(&c.service))
        .collect();
    if !orphans.is_empty() {
        if options.remove_orphans {
            for c in orphans {
                let stopped = plan.push(
                    format!("container:{}", c.name),
                    Operation::StopContainer,
                    "orphaned",
                    &[],
                );
                plan.push(
                    format!("container:{}", c.name),
                    Operation::RemoveContainer,
                    "orphaned",
                    &[stopped],
                );
            }
        } else {
            let names: Vec<&str> = orphans.iter().map(|c| c.name.as_str()).collect();
            plan.warnings.push(format!(
                "found orphan containers ({}) for this project; remove them with --remove-orphans",
                names.join(", ")
            ));
        }
    }
    // Networks the Compose files no longer declare (a renamed key): `up` never removes a
    // network, as Docker Compose does not; `down` does.
    for (key, n) in &live.networks {
        if !desired.networks.contains_key(key) {
            plan.warnings.push(format!(
                "network {:?} ({key}) is no longer in the Compose files; it is kept (`down` removes it)",
                n.name
            ));
        }
    }
    plan
}

/// Why `c`, whose config or image may have changed since it was created, is recreated by
/// default: its config hash or its image digest differs (`None`: it is up to date).
fn diverged(c: &LiveContainer, svc: &DesiredService, live: &Live) -> Option<String> {
    if c.hash != svc.hash {
        let fields = c
            .config
            .as_ref()
            .map(|old| changed_fields(old, &svc.config))
            .unwrap_or_default();
        return Some(if fields.is_empty() {
            "config hash diverged".to_string()
        } else {
            format!("config hash diverged: {}", fields.join(", "))
        });
    }
    match (&c.image_digest, live.images.get(&svc.image)) {
        (Some(running), Some(now)) if running != now => Some("image changed".into()),
        _ => None,
    }
}

/// The plan of `down`: every container of the project stopped and removed, then its
/// networks, then the volumes `volumes` lists (`down -v`: the declared ones and the
/// project's anonymous ones, [`Live::anonymous_volumes`]). Dependents stop
/// before what they depend on when `desired` knows the services; without a Compose file
/// (`desired` is `None`) every container stops at once.
pub fn teardown(desired: Option<&Desired>, live: &Live, volumes: &[String]) -> Plan {
    let mut plan = Plan::default();
    // Stop in reverse dependency order: a service stops after everything that needs it.
    let order: Vec<String> = desired.map(service_order).unwrap_or_default();
    let rank = |service: &str| order.iter().position(|s| s == service);
    let mut containers: Vec<&LiveContainer> = live.containers.iter().collect();
    containers.sort_by(|a, b| {
        rank(&b.service)
            .cmp(&rank(&a.service))
            .then(a.name.cmp(&b.name))
    });
    let mut stopped_by_service: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut removed = Vec::new();
    for c in &containers {
        // Wait for the dependents of this container's service to be stopped.
        let deps: Vec<usize> = desired
            .map(|d| {
                d.services
                    .values()
                    .filter(|s| s.deps.contains(&c.service))
                    .flat_map(|s| {
                        stopped_by_service
                            .get(s.name.as_str())
                            .cloned()
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let resource = format!("container:{}", c.name);
        let stopped = if c.running {
            let id = plan.push(resource.clone(), Operation::StopContainer, "down", &deps);
            stopped_by_service.entry(&c.service).or_default().push(id);
            vec![id]
        } else {
            deps
        };
        removed.push(plan.push(resource, Operation::RemoveContainer, "down", &stopped));
    }
    for n in live.networks.values() {
        plan.push(
            format!("network:{}", n.name),
            Operation::RemoveNetwork,
            "down",
            &removed,
        );
    }
    for v in volumes {
        plan.push(
            format!("volume:{v}"),
            Operation::RemoveVolume,
            "down -v",
            &removed,
        );
    }
    plan
}

/// Services with their dependencies first (ties by name); a cycle (refused by the loader)
/// falls back to name order.
fn service_order(desired: &Desired) -> Vec<String> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    fn visit(
        name: &str,
        desired: &Desired,
        done: &mut BTreeSet<String>,
        out: &mut Vec<String>,
        depth: usize,
    ) {
        if done.contains(name) || depth > desired.services.len() {
            return;
        }
        if let Some(svc) = desired.services.get(name) {
            for d in &svc.deps {
                visit(d, desired, done, out, depth + 1);
            }
            if done.insert(name.to_string()) {
                out.push(name.to_string());
            }
        }
    }
    for name in desired.services.keys() {
        visit(name, desired, &mut done, &mut out, 0);
    }
    out
}

#[cfg(test)]
mod tests;

/// The plan of `start` (`restart: false`) or `restart`: the existing containers of
/// `services` (every service when empty) started, dependencies first; with `restart`,
/// running ones stopped first. Nothing is created or recreated: a service without a
/// container is left to `up`.
pub fn start(desired: &Desired, live: &Live, services: &[String], restart: bool) -> Plan {
    let mut plan = Plan::default();
    let mut started: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let chosen = |s: &str| services.is_empty() || services.iter().any(|x| x == s);
    let order = service_order(desired);
    // One-off containers (`wharf run`) are not restarted with their service.
    let mut containers: Vec<&LiveContainer> =
        live.containers.iter().filter(|c| !c.one_off).collect();
    containers.sort_by_key(|c| {
        (
            order
                .iter()
                .position(|s| *s == c.service)
                .unwrap_or(usize::MAX),
            c.replica,
        )
    });
    for c in containers.into_iter().filter(|c| chosen(&c.service)) {
        let resource = format!("container:{}", c.name);
        let mut deps: Vec<usize> = desired
            .services
            .get(&c.service)
            .map(|s| {
                s.deps
                    .iter()
                    .flat_map(|d| started.get(d.as_str()).cloned().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        if c.running {
            if !restart {
                continue;
            }
            deps.push(plan.push(resource.clone(), Operation::StopContainer, "restart", &[]));
        }
        let cause = if restart { "restart" } else { "start" };
        let id = plan.push(resource, Operation::StartContainer, cause, &deps);
        started.entry(&c.service).or_default().push(id);
    }
    plan
}
