//! From the merged canonical tree to the typed [`Project`], with Docker Compose's defaults.
//!
//! Defaults applied here are the ones compose-go's `normalize` step applies: the implicit
//! `default` network, resource names prefixed with the project name, implicit dependencies
//! from `links`, `volumes_from` and `service:` namespaces, and the contents of `env_file` and
//! `label_file` folded into `environment` and `labels` (with the service's own entries
//! winning). Reading those env and label files is the only I/O here: they are part of the
//! input the user pointed at.

use std::collections::BTreeMap;
use std::path::Path;

use indexmap::IndexMap;

use super::diag::{ComposeError, Sources};
use super::loader::{Environment, read_env_file};
use super::model::Project;
use super::yaml::{Loc, Node, Value};

/// Options for `config --no-normalize` and friends.
#[derive(Debug, Clone, Copy)]
pub struct NormalizeOptions {
    /// Apply Compose's defaults (implicit network, names, dependencies).
    pub defaults: bool,
    /// Fold env_file/label_file contents into environment/labels and resolve `FOO:` entries
    /// from the environment.
    pub resolve_environment: bool,
    /// Check references between resources (`config --no-consistency` turns this off).
    pub consistency: bool,
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        NormalizeOptions {
            defaults: true,
            resolve_environment: true,
            consistency: true,
        }
    }
}

pub fn normalize(
    tree: &mut Node,
    name: &str,
    env: &Environment,
    sources: &mut Sources,
    opts: NormalizeOptions,
) -> Result<Project, ComposeError> {
    if opts.defaults {
        apply_defaults(tree, name);
    }
    if opts.resolve_environment {
        resolve_environment(tree, env, sources)?;
    }
    to_project(tree, sources)
}

fn map_node(loc: Loc) -> Node {
    Node::new(Value::Map(IndexMap::new()), loc)
}

fn apply_defaults(tree: &mut Node, project: &str) {
    let Some(root) = tree.as_map_mut() else {
        return;
    };
    let mut uses_default = false;
    if let Some(services) = root.get_mut("services").and_then(Node::as_map_mut) {
        for svc in services.values_mut() {
            let Some(m) = svc.as_map_mut() else { continue };
            let mode = m.get("network_mode").and_then(Node::scalar_text);
            let has_networks = m
                .get("networks")
                .and_then(Node::as_map)
                .is_some_and(|n| !n.is_empty());
            if mode.is_none() && !has_networks {
                let mut nets = IndexMap::new();
                nets.insert("default".to_string(), Node::null(Loc::default()));
                m.insert(
                    "networks".to_string(),
                    Node::new(Value::Map(nets), Loc::default()),
                );
            }
            if m.get("networks").and_then(|n| n.get("default")).is_some() {
                uses_default = true;
            }
            add_implicit_dependencies(m);
        }
    }
    if uses_default {
        let nets = root
            .entry("networks".to_string())
            .or_insert_with(|| map_node(Loc::default()));
        if nets.is_null() {
            *nets = map_node(nets.loc);
        }
        if let Some(n) = nets.as_map_mut() {
            n.entry("default".to_string())
                .or_insert_with(|| map_node(Loc::default()));
        }
    }
    for section in ["networks", "volumes"] {
        let Some(defs) = root.get_mut(section).and_then(Node::as_map_mut) else {
            continue;
        };
        for (key, def) in defs.iter_mut() {
            if def.is_null() {
                *def = map_node(def.loc);
            }
            let Some(d) = def.as_map_mut() else { continue };
            let external = matches!(d.get("external").map(|n| &n.value), Some(Value::Bool(true)));
            if !d.contains_key("name") {
                let n = if external {
                    key.clone()
                } else {
                    format!("{project}_{key}")
                };
                d.insert("name".to_string(), Node::string(n, Loc::default()));
            }
        }
    }
}

/// compose-go adds `depends_on` entries for services a service needs to exist first.
fn add_implicit_dependencies(svc: &mut IndexMap<String, Node>) {
    let mut implicit: Vec<(String, bool)> = Vec::new();
    for link in svc.get("links").and_then(Node::as_seq).unwrap_or_default() {
        if let Some(t) = link.scalar_text() {
            let name = t.split(':').next().unwrap_or("").to_string();
            implicit.push((name, true));
        }
    }
    for key in ["network_mode", "ipc", "pid", "uts", "cgroup"] {
        if let Some(t) = svc.get(key).and_then(Node::scalar_text)
            && let Some(s) = t.strip_prefix("service:")
        {
            implicit.push((s.to_string(), true));
        }
    }
    for vf in svc
        .get("volumes_from")
        .and_then(Node::as_seq)
        .unwrap_or_default()
    {
        if let Some(t) = vf.scalar_text() {
            if t.starts_with("container:") {
                continue;
            }
            let name = t.split(':').next().unwrap_or("").to_string();
            implicit.push((name, false));
        }
    }
    if implicit.is_empty() {
        return;
    }
    let deps = svc
        .entry("depends_on".to_string())
        .or_insert_with(|| map_node(Loc::default()));
    let Some(deps) = deps.as_map_mut() else {
        return;
    };
    for (name, restart) in implicit {
        if name.is_empty() || deps.contains_key(&name) {
            continue;
        }
        let mut d = IndexMap::new();
        d.insert(
            "condition".to_string(),
            Node::string("service_started", Loc::default()),
        );
        d.insert(
            "required".to_string(),
            Node::new(Value::Bool(true), Loc::default()),
        );
        if restart {
            d.insert(
                "restart".to_string(),
                Node::new(Value::Bool(true), Loc::default()),
            );
        }
        deps.insert(name, Node::new(Value::Map(d), Loc::default()));
    }
}

/// Fold `env_file` into `environment` and `label_file` into `labels`; resolve `FOO:` (no
/// value) from the project environment, as `docker compose config` shows it.
fn resolve_environment(
    tree: &mut Node,
    env: &Environment,
    sources: &mut Sources,
) -> Result<(), ComposeError> {
    let Some(services) = tree.get_mut("services").and_then(Node::as_map_mut) else {
        return Ok(());
    };
    for svc in services.values_mut() {
        let Some(m) = svc.as_map_mut() else { continue };
        let mut environment: BTreeMap<String, Option<String>> = BTreeMap::new();
        for ef in m.get("env_file").and_then(Node::as_seq).unwrap_or_default() {
            let Some(path) = ef.get("path").and_then(Node::scalar_text) else {
                continue;
            };
            let required = !matches!(
                ef.get("required").map(|n| &n.value),
                Some(Value::Bool(false))
            );
            let path = Path::new(&path);
            if !path.is_file() {
                if required {
                    return Err(sources.error_at(
                        ef.report_loc(),
                        format!("env file {} not found", path.display()),
                    ));
                }
                continue;
            }
            let raw = ef.get("format").and_then(Node::scalar_text).as_deref() == Some("raw");
            let values = if raw {
                read_raw_env_file(path)?
            } else {
                let so_far = environment.clone();
                read_env_file(
                    path,
                    &|k| {
                        env.get(k)
                            .cloned()
                            .or_else(|| so_far.get(k).cloned().flatten())
                    },
                    sources,
                )?
            };
            environment.extend(values.into_iter().map(|(k, v)| (k, Some(v))));
        }
        if let Some(own) = m.get("environment").and_then(Node::as_map) {
            for (k, v) in own {
                environment.insert(k.clone(), v.scalar_text());
            }
        }
        for (k, v) in environment.iter_mut() {
            if v.is_none() {
                *v = env.get(k).cloned();
            }
        }
        if !environment.is_empty() {
            let loc = m.get("environment").map(|n| n.loc).unwrap_or_default();
            let map = environment
                .into_iter()
                .map(|(k, v)| (k, v.map_or(Node::null(loc), |s| Node::string(s, loc))))
                .collect();
            m.insert("environment".to_string(), Node::new(Value::Map(map), loc));
        }

        let mut labels: BTreeMap<String, String> = BTreeMap::new();
        for lf in m
            .get("label_file")
            .and_then(Node::as_seq)
            .unwrap_or_default()
        {
            let Some(path) = lf.scalar_text() else {
                continue;
            };
            let values = read_env_file(Path::new(&path), &|_| None, sources).map_err(|e| {
                if e.location.is_some() {
                    e
                } else {
                    sources.error_at(lf.loc, e.message.clone())
                }
            })?;
            labels.extend(values);
        }
        if !labels.is_empty() {
            if let Some(own) = m.get("labels").and_then(Node::as_map) {
                for (k, v) in own {
                    labels.insert(k.clone(), v.scalar_text().unwrap_or_default());
                }
            }
            let loc = m.get("labels").map(|n| n.loc).unwrap_or_default();
            let map = labels
                .into_iter()
                .map(|(k, v)| (k, Node::string(v, loc)))
                .collect();
            m.insert("labels".to_string(), Node::new(Value::Map(map), loc));
        }
    }
    Ok(())
}

/// `format: raw`: every line is KEY=VALUE taken literally (no quotes, no expansion).
fn read_raw_env_file(path: &Path) -> Result<IndexMap<String, String>, ComposeError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ComposeError::in_file(path, format!("cannot read env file: {e}")))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        })
        .collect())
}

/// Deserialize the typed model; a failure points at the attribute that did not fit.
fn to_project(tree: &Node, sources: &Sources) -> Result<Project, ComposeError> {
    let json = tree.to_json();
    // Fast path: plain deserialization; only on failure pay for path tracking to locate it.
    if let Ok(p) = <Project as serde::Deserialize>::deserialize(&json) {
        return Ok(p);
    }
    serde_path_to_error::deserialize::<_, Project>(json).map_err(|e| {
        let path: Vec<String> = e
            .path()
            .iter()
            .map(|seg| match seg {
                serde_path_to_error::Segment::Seq { index } => index.to_string(),
                serde_path_to_error::Segment::Map { key } => key.clone(),
                serde_path_to_error::Segment::Enum { variant } => variant.clone(),
                serde_path_to_error::Segment::Unknown => "?".to_string(),
            })
            .collect();
        let node = tree.deepest(&path);
        sources.error_at(
            node.report_loc(),
            format!("{}: {}", path.join("."), e.inner()),
        )
    })
}
