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
    /// The normalized service, for field-level causes.
    pub config: serde_json::Value,
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
    /// The digest the store has now for each image reference the project uses.
    pub images: BTreeMap<String, String>,
}

/// The user's choices (`up` flags).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub force_recreate: bool,
    pub no_recreate: bool,
    pub remove_orphans: bool,
    pub no_start: bool,
    /// `--scale SERVICE=N`.
    pub scale: BTreeMap<String, u64>,
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

impl fmt::Display for Plan {
    /// `[1,2] -> #3 container:shop-web-1, CreateContainer, not found`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.steps {
            let deps: Vec<String> = s.deps.iter().map(usize::to_string).collect();
            writeln!(
                f,
                "[{}] -> #{} {}, {:?}, {}",
                deps.join(","),
                s.id,
                s.resource,
                s.operation,
                s.cause
            )?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
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
                    let null = serde_json::Value::Null;
                    walk(
                        &p,
                        x.get(k).unwrap_or(&null),
                        y.get(k).unwrap_or(&null),
                        out,
                    );
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

/// The plan that brings `live` to `desired`.
pub fn diff(desired: &Desired, live: &Live, options: &Options) -> Plan {
    let mut plan = Plan::default();
    let mut ready: BTreeMap<String, usize> = BTreeMap::new(); // resource → step it waits on

    // Volumes: created when missing; one that differs is kept, never removed by `up`.
    for (key, v) in &desired.volumes {
        if v.external {
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

    // Which containers will be recreated or removed anyway (they need no reconnect).
    let recreate = |c: &LiveContainer| -> Option<String> {
        let svc = desired.services.get(&c.service)?;
        let wanted = options
            .scale
            .get(&c.service)
            .copied()
            .unwrap_or(svc.replicas);
        if c.replica > wanted {
            return None;
        }
        if options.force_recreate {
            return Some("--force-recreate".into());
        }
        if options.no_recreate {
            return None;
        }
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
    };

    // Networks: created when missing; recreated when changed, their containers
    // disconnected first and reconnected after.
    let mut reconnect: Vec<(String, String, usize)> = Vec::new();
    for (key, n) in &desired.networks {
        if n.external {
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
    for name in &order {
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
        let mut started = Vec::new();
        for replica in 1..=wanted {
            let cname = container_name(&desired.project, name, replica);
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
                Some(c) => match recreate(c) {
                    Some(cause) => {
                        recreated.insert(name.clone());
                        let tmp = format!("{}_{cname}", &c.id[..c.id.len().min(12)]);
                        let created = plan.push(
                            format!("container:{tmp}"),
                            Operation::CreateContainer,
                            &cause,
                            &deps,
                        );
                        let stopped = plan.push(
                            format!("container:{cname}"),
                            Operation::StopContainer,
                            "replaced",
                            &[created],
                        );
                        let removed = plan.push(
                            format!("container:{cname}"),
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
    plan
}

/// The plan of `down`: every container of the project stopped and removed, then its
/// networks, then (with `volumes`) the named volumes `volumes` lists. Dependents stop
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
