//! The resource graph: networks, volumes and services of a project, and what needs what.
//!
//! Built from a normalized [`Project`], it is the DAG the planner and the apply engine walk:
//! an edge `a -> b` means "a needs b to exist (and, for services, to be started) first".
//! Edges come from `depends_on` (with its condition), `links`, `network_mode`/`ipc`/`pid:
//! service:X`, `volumes_from`, and the networks and named volumes each service uses. The
//! module is pure: it renders the graph as Graphviz DOT or Mermaid text for `wharf graph`,
//! and gives a dependency order; it never touches the host.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use petgraph::algo::toposort;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef, IntoEdgeReferences};

use crate::compose::model::{DependencyCondition, Project};

/// A resource of the project.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resource {
    Network(String),
    Volume(String),
    Service(String),
}

impl Resource {
    /// A stable identifier, e.g. `service:web`, used in DOT/Mermaid and in plans.
    pub fn id(&self) -> String {
        match self {
            Resource::Network(n) => format!("network:{n}"),
            Resource::Volume(n) => format!("volume:{n}"),
            Resource::Service(n) => format!("service:{n}"),
        }
    }

    fn label(&self) -> &str {
        match self {
            Resource::Network(n) | Resource::Volume(n) | Resource::Service(n) => n,
        }
    }
}

/// Why an edge exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Edge {
    DependsOn(DependencyCondition),
    Link,
    Namespace,
    VolumesFrom,
    UsesNetwork,
    UsesVolume,
}

impl Edge {
    fn label(self) -> &'static str {
        match self {
            Edge::DependsOn(DependencyCondition::ServiceStarted) => "started",
            Edge::DependsOn(DependencyCondition::ServiceHealthy) => "healthy",
            Edge::DependsOn(DependencyCondition::ServiceCompletedSuccessfully) => "completed",
            Edge::Link => "link",
            Edge::Namespace => "namespace",
            Edge::VolumesFrom => "volumes_from",
            Edge::UsesNetwork => "network",
            Edge::UsesVolume => "volume",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ResourceGraph {
    graph: StableDiGraph<Resource, Edge>,
    index: BTreeMap<Resource, NodeIndex>,
}

/// Build the graph of a project. External networks and volumes are nodes too: services need
/// them, even though wharf never creates them.
pub fn build(project: &Project) -> ResourceGraph {
    let mut g = ResourceGraph {
        graph: StableDiGraph::new(),
        index: BTreeMap::new(),
    };
    for name in project.networks.keys() {
        g.node(Resource::Network(name.clone()));
    }
    for name in project.volumes.keys() {
        g.node(Resource::Volume(name.clone()));
    }
    for name in project.services.keys() {
        g.node(Resource::Service(name.clone()));
    }
    for (name, svc) in &project.services {
        let from = Resource::Service(name.clone());
        let mut edges: Vec<(Resource, Edge)> = Vec::new();
        for (dep, d) in &svc.depends_on {
            edges.push((Resource::Service(dep.clone()), Edge::DependsOn(d.condition)));
        }
        for link in &svc.links {
            let target = link.split(':').next().unwrap_or_default();
            edges.push((Resource::Service(target.to_string()), Edge::Link));
        }
        for ns in [&svc.network_mode, &svc.ipc, &svc.pid]
            .into_iter()
            .flatten()
        {
            if let Some(target) = ns.strip_prefix("service:") {
                edges.push((Resource::Service(target.to_string()), Edge::Namespace));
            }
        }
        for vf in &svc.volumes_from {
            if !vf.starts_with("container:") {
                let target = vf.split(':').next().unwrap_or_default();
                edges.push((Resource::Service(target.to_string()), Edge::VolumesFrom));
            }
        }
        for net in svc.networks.keys() {
            edges.push((Resource::Network(net.clone()), Edge::UsesNetwork));
        }
        for v in &svc.volumes {
            if v.kind == "volume"
                && let Some(src) = &v.source
            {
                edges.push((Resource::Volume(src.clone()), Edge::UsesVolume));
            }
        }
        for (to, edge) in edges {
            g.edge(&from, to, edge);
        }
    }
    g
}

impl ResourceGraph {
    fn node(&mut self, r: Resource) -> NodeIndex {
        if let Some(i) = self.index.get(&r) {
            return *i;
        }
        let i = self.graph.add_node(r.clone());
        self.index.insert(r, i);
        i
    }

    /// Add an edge once: a `depends_on` that is also a link shows as the `depends_on`.
    fn edge(&mut self, from: &Resource, to: Resource, e: Edge) {
        let a = self.node(from.clone());
        let b = self.node(to);
        if self.graph.find_edge(a, b).is_none() {
            self.graph.add_edge(a, b, e);
        }
    }

    pub fn resources(&self) -> impl Iterator<Item = &Resource> {
        self.index.keys()
    }

    /// What `r` needs, with the reason.
    pub fn dependencies(&self, r: &Resource) -> Vec<(&Resource, Edge)> {
        let Some(i) = self.index.get(r) else {
            return Vec::new();
        };
        let mut out: Vec<(&Resource, Edge)> = self
            .graph
            .edges(*i)
            .filter_map(|e| self.graph.node_weight(e.target()).map(|t| (t, *e.weight())))
            .collect();
        out.sort();
        out
    }

    /// All edges as (from, to, why), sorted.
    pub fn edges(&self) -> Vec<(&Resource, &Resource, Edge)> {
        let mut out: Vec<_> = (&self.graph)
            .edge_references()
            .filter_map(|e| {
                let a = self.graph.node_weight(e.source())?;
                let b = self.graph.node_weight(e.target())?;
                Some((a, b, *e.weight()))
            })
            .collect();
        out.sort();
        out
    }

    /// Creation order: every resource after everything it needs. `Err` names a resource on
    /// a cycle (the loader rejects cycles, so this only happens for hand-built graphs).
    pub fn creation_order(&self) -> Result<Vec<&Resource>, String> {
        match toposort(&self.graph, None) {
            Ok(order) => Ok(order
                .into_iter()
                .rev()
                .filter_map(|i| self.graph.node_weight(i))
                .collect()),
            Err(cycle) => Err(self
                .graph
                .node_weight(cycle.node_id())
                .map_or_else(String::new, Resource::id)),
        }
    }

    /// Graphviz DOT, with networks as ellipses, volumes as cylinders and services as boxes.
    pub fn to_dot(&self, project: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "digraph \"{}\" {{", escape(project));
        let _ = writeln!(out, "  rankdir=LR;");
        for r in self.resources() {
            let shape = match r {
                Resource::Network(_) => "ellipse",
                Resource::Volume(_) => "cylinder",
                Resource::Service(_) => "box",
            };
            let _ = writeln!(
                out,
                "  \"{}\" [label=\"{}\", shape={shape}];",
                escape(&r.id()),
                escape(r.label())
            );
        }
        for (a, b, e) in self.edges() {
            let style = match e {
                Edge::UsesNetwork | Edge::UsesVolume => ", style=dashed",
                _ => "",
            };
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\" [label=\"{}\"{style}];",
                escape(&a.id()),
                escape(&b.id()),
                e.label()
            );
        }
        out.push_str("}\n");
        out
    }

    /// Mermaid flowchart text (renders on GitHub and in most Markdown viewers).
    pub fn to_mermaid(&self) -> String {
        let ids: BTreeMap<&Resource, String> = self
            .resources()
            .enumerate()
            .map(|(i, r)| (r, format!("n{i}")))
            .collect();
        let mut out = String::from("flowchart LR\n");
        for (r, id) in &ids {
            let label = mermaid_escape(r.label());
            let _ = match r {
                Resource::Network(_) => writeln!(out, "  {id}([\"network: {label}\"])"),
                Resource::Volume(_) => writeln!(out, "  {id}[(\"volume: {label}\")]"),
                Resource::Service(_) => writeln!(out, "  {id}[\"{label}\"]"),
            };
        }
        for (a, b, e) in self.edges() {
            let arrow = match e {
                Edge::UsesNetwork | Edge::UsesVolume => "-.->",
                _ => "-->",
            };
            let _ = writeln!(out, "  {} {arrow}|{}| {}", ids[a], e.label(), ids[b]);
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn mermaid_escape(s: &str) -> String {
    s.replace('"', "#quot;")
}
