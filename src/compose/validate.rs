//! Semantic checks on a loaded project: what the schema cannot see.
//!
//! References between resources (a `depends_on` naming a service that does not exist, a
//! network or volume that is not declared), `container_name` on a scaled service, a service
//! with neither image nor build, and dependency cycles, reported with the whole cycle path the
//! way Docker Compose words it. Every error points at the key that holds the bad reference,
//! found through the located tree the project was built from.

use std::collections::{BTreeMap, BTreeSet};

use super::diag::{ComposeError, Sources};
use super::model::Project;
use super::yaml::{Loc, Node};

/// Location of the node at `path` (or of the deepest ancestor that exists).
pub fn loc_at(tree: &Node, path: &[&str]) -> Loc {
    tree.deepest(path).report_loc()
}

pub fn validate(project: &Project, tree: &Node, sources: &Sources) -> Result<(), ComposeError> {
    let err = |path: &[&str], msg: String| sources.error_at(loc_at(tree, path), msg);
    for (name, svc) in &project.services {
        let base = ["services", name.as_str()];
        if svc.image.is_none() && svc.build.is_none() && svc.provider.is_none() {
            return Err(err(
                &base,
                format!("service {name:?} has neither an image nor a build context specified"),
            ));
        }
        for dep in svc.depends_on.keys() {
            if !project.services.contains_key(dep) {
                return Err(err(
                    &["services", name, "depends_on", dep],
                    format!("service {name:?} depends on undefined service {dep:?}"),
                ));
            }
        }
        for (i, link) in svc.links.iter().enumerate() {
            let target = link.split(':').next().unwrap_or_default();
            if !project.services.contains_key(target) {
                let idx = i.to_string();
                return Err(err(
                    &["services", name, "links", &idx],
                    format!("service {name:?} links to undefined service {target:?}"),
                ));
            }
        }
        for (i, vf) in svc.volumes_from.iter().enumerate() {
            if vf.starts_with("container:") {
                continue;
            }
            let target = vf.split(':').next().unwrap_or_default();
            if !project.services.contains_key(target) {
                let idx = i.to_string();
                return Err(err(
                    &["services", name, "volumes_from", &idx],
                    format!("service {name:?} uses volumes from undefined service {target:?}"),
                ));
            }
        }
        for (key, value) in [
            ("network_mode", &svc.network_mode),
            ("ipc", &svc.ipc),
            ("pid", &svc.pid),
        ] {
            if let Some(target) = value.as_deref().and_then(|v| v.strip_prefix("service:"))
                && !project.services.contains_key(target)
            {
                return Err(err(
                    &["services", name, key],
                    format!("service {name:?} refers to undefined service {target:?} in {key}"),
                ));
            }
        }
        if svc.network_mode.is_some() && !svc.networks.is_empty() {
            return Err(err(
                &["services", name, "network_mode"],
                format!(
                    "service {name:?} declares mutually exclusive `network_mode` and `networks`"
                ),
            ));
        }
        for net in svc.networks.keys() {
            if !project.networks.contains_key(net) {
                return Err(err(
                    &["services", name, "networks", net],
                    format!("service {name:?} refers to undefined network {net:?}"),
                ));
            }
        }
        for (i, v) in svc.volumes.iter().enumerate() {
            if v.kind == "volume"
                && let Some(src) = &v.source
                && !project.volumes.contains_key(src)
            {
                let idx = i.to_string();
                return Err(err(
                    &["services", name, "volumes", &idx],
                    format!("service {name:?} refers to undefined volume {src}"),
                ));
            }
        }
        for (kind, refs, defs) in [
            ("secret", &svc.secrets, &project.secrets),
            ("config", &svc.configs, &project.configs),
        ] {
            for (i, r) in refs.iter().enumerate() {
                if !defs.contains_key(&r.source) {
                    let idx = i.to_string();
                    let section = format!("{kind}s");
                    return Err(err(
                        &["services", name, &section, &idx],
                        format!("service {name:?} refers to undefined {kind} {}", r.source),
                    ));
                }
            }
        }
        if svc.container_name.is_some() && svc.replicas() > 1 {
            return Err(err(
                &["services", name, "container_name"],
                format!(
                    "services.{name}: can't set container_name and {name} as container name must be unique (scale is {})",
                    svc.replicas()
                ),
            ));
        }
    }
    check_cycles(project, tree, sources)
}

/// Depth-first search in name order, so the reported cycle is stable: `a -> b -> a`.
pub fn check_cycles(project: &Project, tree: &Node, sources: &Sources) -> Result<(), ComposeError> {
    let edges: BTreeMap<&str, Vec<&str>> = project
        .services
        .iter()
        .map(|(n, s)| {
            (
                n.as_str(),
                s.depends_on.keys().map(String::as_str).collect(),
            )
        })
        .collect();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    for start in edges.keys() {
        let mut path = Path::default();
        if let Some(cycle) = visit(start, &edges, &mut path, &mut done) {
            let first = cycle[0];
            let second = cycle.get(1).copied().unwrap_or(first);
            let loc = loc_at(tree, &["services", first, "depends_on", second]);
            return Err(sources.error_at(
                loc,
                format!("dependency cycle detected: {}", cycle.join(" -> ")),
            ));
        }
    }
    Ok(())
}

/// The current DFS path, with a set beside the list so that "is it on the path" is not a scan
/// (a 200-service dependency chain would otherwise make the check quadratic).
#[derive(Default)]
struct Path<'a> {
    order: Vec<&'a str>,
    members: BTreeSet<&'a str>,
}

fn visit<'a>(
    node: &'a str,
    edges: &BTreeMap<&'a str, Vec<&'a str>>,
    path: &mut Path<'a>,
    done: &mut BTreeSet<&'a str>,
) -> Option<Vec<&'a str>> {
    if path.members.contains(node) {
        let pos = path.order.iter().position(|n| *n == node).unwrap_or(0);
        let mut cycle = path.order[pos..].to_vec();
        cycle.push(node);
        return Some(cycle);
    }
    if done.contains(node) {
        return None;
    }
    path.order.push(node);
    path.members.insert(node);
    for next in edges.get(node).into_iter().flatten() {
        if let Some(c) = visit(next, edges, path, done) {
            return Some(c);
        }
    }
    path.order.pop();
    path.members.remove(node);
    done.insert(node);
    None
}
