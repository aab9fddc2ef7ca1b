//! Loading a project: which files, which environment, which name — then parse, interpolate,
//! validate, canonicalize, resolve `extends` and `include`, merge, apply profiles.
//!
//! The loader follows Docker Compose (compose-go's `cli` and `loader` packages): the same file
//! discovery, the same `.env` rules (shell environment wins), the same project-name rules and
//! the same order of steps. It reads only the files it is pointed at (Compose files, env files,
//! label files, extended and included files) and never looks at the process environment
//! itself: the caller passes the environment in, which keeps loading a pure function of its
//! inputs and testable without touching global state.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::canonical::{self, Context};
use super::diag::{ComposeError, Sources};
use super::dotenv;
use super::interpolate;
use super::merge;
use super::schema;
use super::yaml::{self, Loc, Node, Value};

/// The environment the loader resolves variables against.
pub type Environment = BTreeMap<String, String>;

/// File names Docker Compose looks for, in order of preference.
pub const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];
const OVERRIDE_FILES: [&str; 4] = [
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
];

/// What the command line said about loading (Docker Compose's global flags).
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-f` (repeatable); `-` is standard input.
    pub files: Vec<PathBuf>,
    pub project_directory: Option<PathBuf>,
    pub project_name: Option<String>,
    pub env_files: Vec<PathBuf>,
    pub profiles: Vec<String>,
    /// Services named on the command line: they are enabled whatever their profiles.
    pub services: Vec<String>,
    pub skip_interpolation: bool,
    pub skip_path_resolution: bool,
    /// The current directory (the loader never asks the process for it).
    pub cwd: PathBuf,
    /// The home directory, for `~` in paths.
    pub home: Option<PathBuf>,
    /// Contents of standard input, for `-f -`.
    pub stdin: Option<String>,
}

/// A loaded project and everything needed to explain it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The merged, canonical tree (locations of every attribute, for later diagnostics).
    pub tree: Node,
    pub sources: Sources,
    pub name: String,
    pub working_dir: PathBuf,
    pub config_files: Vec<PathBuf>,
    /// The environment used for interpolation (`.env` + the shell's, the shell winning).
    pub environment: Environment,
    /// Every profile mentioned by any service.
    pub all_profiles: BTreeSet<String>,
    /// Services left out because none of their profiles is active.
    pub disabled_services: BTreeSet<String>,
    pub warnings: Vec<String>,
}

/// Rules Docker Compose applies to project names.
pub fn validate_project_name(name: &str) -> Result<(), ComposeError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ComposeError::new(format!(
            "invalid project name {name:?}: must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number"
        )))
    }
}

/// What Docker Compose makes of a directory name: lowercase, only `[a-z0-9_-]`, no leading
/// `_`/`-`.
pub fn normalize_project_name(name: &str) -> String {
    let lowered: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    lowered.trim_start_matches(['_', '-']).to_string()
}

/// Load the project the options describe.
pub fn load(opts: &LoadOptions, os_env: &Environment) -> Result<Loaded, ComposeError> {
    let mut sources = Sources::default();
    let mut warnings = Vec::new();
    let cwd = &opts.cwd;
    let base_dir = opts
        .project_directory
        .as_ref()
        .map(|d| absolute(cwd, d))
        .unwrap_or_else(|| cwd.clone());

    // 1. The environment: `.env` (or --env-file), overridden by the shell.
    let mut env = environment(opts, &base_dir, os_env, &mut sources)?;

    // 2. Which files.
    let config_files = config_files(opts, &base_dir, &env)?;
    let working_dir = match &opts.project_directory {
        Some(_) => base_dir.clone(),
        None => config_files
            .iter()
            .find(|p| p.as_os_str() != "-")
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| cwd.clone()),
    };
    if working_dir != base_dir && opts.env_files.is_empty() {
        // compose-go reads the default `.env` from the project directory once it is known.
        let reloaded = LoadOptions {
            project_directory: Some(working_dir.clone()),
            ..opts.clone()
        };
        env = environment(&reloaded, &working_dir, os_env, &mut sources)?;
    }

    // 3. Parse every file.
    let mut parsed = Vec::new();
    for path in &config_files {
        let (text, shown) = if path.as_os_str() == "-" {
            let text = opts
                .stdin
                .clone()
                .ok_or_else(|| ComposeError::new("-f - given but no standard input"))?;
            (text, working_dir.join("-"))
        } else {
            (read(path)?, path.clone())
        };
        let id = sources.add(&shown, &text);
        let node = yaml::parse(&text, id).map_err(|e| sources.error_at(e.loc, e.message))?;
        if node.as_map().is_none() {
            return Err(sources.error_at(node.loc, "a Compose file must be a mapping"));
        }
        parsed.push((shown, node));
    }

    // 4. The project name, before interpolation: files may use ${COMPOSE_PROJECT_NAME}.
    let name = project_name(opts, &env, &parsed, &working_dir, &sources)?;
    env.entry("COMPOSE_PROJECT_NAME".to_string())
        .or_insert_with(|| name.clone());

    // 5. Each file on its own, then merged in order.
    let mut state = FileLoader {
        sources,
        env: env.clone(),
        opts,
        missing: BTreeSet::new(),
        cache: HashMap::new(),
    };
    let mut merged: Option<Node> = None;
    for (path, node) in parsed {
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| working_dir.clone());
        let dir = if path.ends_with("-") {
            working_dir.clone()
        } else {
            dir
        };
        let node = state.process(node, &dir, &env, &mut vec![path.clone()])?;
        merged = Some(match merged {
            None => node,
            Some(base) => merge::merge_files(base, node),
        });
    }
    let mut tree = merged.unwrap_or_else(|| Node::new(Value::Map(IndexMap::new()), Loc::default()));
    merge::strip_tags(&mut tree);
    for var in &state.missing {
        warnings.push(format!(
            "The \"{var}\" variable is not set. Defaulting to a blank string."
        ));
    }
    if tree.get("version").is_some() {
        warnings.push("the attribute `version` is obsolete, it will be ignored".to_string());
        if let Some(m) = tree.as_map_mut() {
            m.shift_remove("version");
        }
    }
    if let Some(m) = tree.as_map_mut() {
        m.insert(
            "name".to_string(),
            Node::string(name.clone(), Loc::default()),
        );
        m.shift_remove("include");
    }

    // 6. Profiles.
    let (all_profiles, disabled_services) = apply_profiles(&mut tree, opts, &env, &state.sources)?;

    Ok(Loaded {
        tree,
        sources: state.sources,
        name,
        working_dir,
        config_files,
        environment: env,
        all_profiles,
        disabled_services,
        warnings,
    })
}

fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        clean_path(&cwd.join(p))
    }
}

/// `a/./b/../c` -> `a/c`, without touching the filesystem (symlinks are not resolved, as in
/// Docker Compose).
pub fn clean_path(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn read(path: &Path) -> Result<String, ComposeError> {
    let bytes = std::fs::read(path)
        .map_err(|e| ComposeError::in_file(path, format!("cannot read file: {e}")))?;
    String::from_utf8(bytes).map_err(|_| ComposeError::in_file(path, "file is not valid UTF-8"))
}

/// `.env` (or `--env-file`s, later ones winning), then the shell's environment on top.
fn environment(
    opts: &LoadOptions,
    base_dir: &Path,
    os_env: &Environment,
    sources: &mut Sources,
) -> Result<Environment, ComposeError> {
    let mut env = Environment::new();
    let files: Vec<PathBuf> = if !opts.env_files.is_empty() {
        opts.env_files
            .iter()
            .map(|f| absolute(&opts.cwd, f))
            .collect()
    } else if let Some(list) = os_env.get("COMPOSE_ENV_FILES").filter(|s| !s.is_empty()) {
        list.split(',')
            .map(|f| absolute(&opts.cwd, Path::new(f)))
            .collect()
    } else if os_env
        .get("COMPOSE_DISABLE_ENV_FILE")
        .is_some_and(|v| truthy(v))
    {
        Vec::new()
    } else {
        let default = base_dir.join(".env");
        if default.is_file() {
            vec![default]
        } else {
            Vec::new()
        }
    };
    for file in files {
        let values = read_env_file(&file, &|k| os_env.get(k).or(env.get(k)).cloned(), sources)?;
        env.extend(values);
    }
    env.extend(os_env.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(env)
}

fn truthy(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "y" | "on"
    )
}

/// Read and parse one dotenv file; errors point at the file and line.
pub fn read_env_file(
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    sources: &mut Sources,
) -> Result<IndexMap<String, String>, ComposeError> {
    let text = read(path)?;
    let id = sources.add(path, &text);
    dotenv::parse(&text, lookup).map_err(|e| {
        let line = e.line as u32;
        let loc = Loc {
            file: id,
            line,
            col: 1,
            offset: yaml::offset_of(&text, line, 1),
        };
        sources.error_at(loc, e.message)
    })
}

fn config_files(
    opts: &LoadOptions,
    base_dir: &Path,
    env: &Environment,
) -> Result<Vec<PathBuf>, ComposeError> {
    if !opts.files.is_empty() {
        return Ok(opts
            .files
            .iter()
            .map(|f| {
                if f.as_os_str() == "-" {
                    f.clone()
                } else {
                    absolute(&opts.cwd, f)
                }
            })
            .collect());
    }
    if let Some(list) = env.get("COMPOSE_FILE").filter(|s| !s.is_empty()) {
        let sep = env
            .get("COMPOSE_PATH_SEPARATOR")
            .filter(|s| !s.is_empty())
            .map(String::as_str)
            .unwrap_or(":");
        return Ok(list
            .split(sep)
            .filter(|s| !s.is_empty())
            .map(|f| absolute(base_dir, Path::new(f)))
            .collect());
    }
    // Search the directory and its parents, like Docker Compose.
    let mut dir = Some(base_dir);
    while let Some(d) = dir {
        if let Some(main) = DEFAULT_FILES
            .iter()
            .map(|f| d.join(f))
            .find(|p| p.is_file())
        {
            let mut files = vec![main];
            if let Some(o) = OVERRIDE_FILES
                .iter()
                .map(|f| d.join(f))
                .find(|p| p.is_file())
            {
                files.push(o);
            }
            return Ok(files);
        }
        dir = d.parent();
    }
    Err(ComposeError::new(format!(
        "no configuration file provided: not found (looked for {} in {} and its parents)",
        DEFAULT_FILES.join(", "),
        base_dir.display()
    )))
}

fn project_name(
    opts: &LoadOptions,
    env: &Environment,
    parsed: &[(PathBuf, Node)],
    working_dir: &Path,
    sources: &Sources,
) -> Result<String, ComposeError> {
    if let Some(n) = &opts.project_name {
        validate_project_name(n)?;
        return Ok(n.clone());
    }
    if let Some(n) = env.get("COMPOSE_PROJECT_NAME").filter(|n| !n.is_empty()) {
        validate_project_name(n)?;
        return Ok(n.clone());
    }
    let mut from_file = None;
    for (_, node) in parsed {
        if let Some(n) = node.get("name") {
            let text = n.scalar_text().unwrap_or_default();
            let text = if opts.skip_interpolation {
                text
            } else {
                let lookup = |k: &str| env.get(k).cloned();
                interpolate::substitute(&text, &lookup)
                    .map_err(|e| sources.error_at(n.loc, e.to_string()))?
                    .value
            };
            from_file = Some((text, n.report_loc()));
        }
    }
    if let Some((n, loc)) = from_file.filter(|(n, _)| !n.is_empty()) {
        return match validate_project_name(&n) {
            Ok(()) => Ok(n),
            Err(e) => Err(sources.error_at(loc, e.message)),
        };
    }
    let dir_name = working_dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = normalize_project_name(&dir_name);
    validate_project_name(&n).map_err(|_| {
        ComposeError::new(format!(
            "project name {dir_name:?} derived from the directory is invalid; set one with -p or `name:`"
        ))
    })?;
    Ok(n)
}

/// Per-file processing, shared by top-level files, extended files and included files.
struct FileLoader<'a> {
    sources: Sources,
    env: Environment,
    opts: &'a LoadOptions,
    missing: BTreeSet<String>,
    /// Extended files, already processed (path -> tree), so that a base used twice is read once.
    cache: HashMap<PathBuf, Node>,
}

impl FileLoader<'_> {
    /// Interpolate, validate, canonicalize, then resolve `extends` and `include`.
    /// `stack` holds the include chain, for cycle reports.
    fn process(
        &mut self,
        mut node: Node,
        dir: &Path,
        env: &Environment,
        stack: &mut Vec<PathBuf>,
    ) -> Result<Node, ComposeError> {
        self.prepare(&mut node, dir, env)?;
        self.resolve_all_extends(&mut node, stack.last().cloned().unwrap_or_default(), dir)?;
        self.resolve_includes(node, dir, stack)
    }

    /// Interpolate, validate and canonicalize one file's tree.
    fn prepare(
        &mut self,
        node: &mut Node,
        dir: &Path,
        env: &Environment,
    ) -> Result<(), ComposeError> {
        if !self.opts.skip_interpolation {
            interpolate_tree(node, env, &self.sources, &mut self.missing)?;
        }
        schema::validate(node, &self.sources)?;
        let ctx = Context {
            sources: &self.sources,
            base_dir: dir,
            home: self.opts.home.as_deref(),
            resolve_paths: !self.opts.skip_path_resolution,
        };
        canonical::canonicalize_file(node, &ctx)
    }

    fn load_file(&mut self, path: &Path, env: &Environment) -> Result<Node, ComposeError> {
        if let Some(n) = self.cache.get(path) {
            return Ok(n.clone());
        }
        let text = read(path)?;
        let id = self.sources.add(path, &text);
        let mut node =
            yaml::parse(&text, id).map_err(|e| self.sources.error_at(e.loc, e.message))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        self.prepare(&mut node, &dir, env)?;
        self.cache.insert(path.to_path_buf(), node.clone());
        Ok(node)
    }

    fn resolve_all_extends(
        &mut self,
        root: &mut Node,
        file: PathBuf,
        dir: &Path,
    ) -> Result<(), ComposeError> {
        let names: Vec<String> = root
            .get("services")
            .and_then(Node::as_map)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let any = names.iter().any(|n| {
            root.get("services")
                .and_then(|s| s.get(n))
                .and_then(|s| s.get("extends"))
                .is_some()
        });
        if !any {
            return Ok(());
        }
        let snapshot = root.clone();
        for name in names {
            let has = snapshot
                .get("services")
                .and_then(|s| s.get(&name))
                .and_then(|s| s.get("extends"))
                .is_some();
            if !has {
                continue;
            }
            let mut chain = Vec::new();
            let resolved = self.resolve_service(&snapshot, &file, dir, &name, &mut chain)?;
            if let Some(slot) = root.get_mut("services").and_then(|s| s.get_mut(&name)) {
                *slot = resolved;
            }
        }
        Ok(())
    }

    /// The service `name` of the file `root`, with its `extends` chain merged in.
    fn resolve_service(
        &mut self,
        root: &Node,
        file: &Path,
        dir: &Path,
        name: &str,
        chain: &mut Vec<(PathBuf, String)>,
    ) -> Result<Node, ComposeError> {
        let svc = root
            .get("services")
            .and_then(|s| s.get(name))
            .cloned()
            .ok_or_else(|| {
                ComposeError::in_file(
                    file,
                    format!("cannot extend service {name:?}: no such service"),
                )
            })?;
        let key = (file.to_path_buf(), name.to_string());
        if chain.contains(&key) {
            let mut names: Vec<String> = chain.iter().map(|(_, s)| s.clone()).collect();
            names.push(name.to_string());
            return Err(self.sources.error_at(
                svc.report_loc(),
                format!("extends cycle detected: {}", names.join(" -> ")),
            ));
        }
        let Some(ext) = svc.get("extends").cloned() else {
            return Ok(svc);
        };
        chain.push(key);
        let base_name = ext
            .get("service")
            .and_then(Node::scalar_text)
            .ok_or_else(|| {
                self.sources
                    .error_at(ext.report_loc(), "extends requires a service")
            })?;
        let base = match ext.get("file").and_then(Node::scalar_text) {
            Some(f) => {
                let path = absolute(dir, Path::new(&f));
                let other = self.load_file(&path, &self.env.clone())?;
                if other
                    .get("services")
                    .and_then(|s| s.get(&base_name))
                    .is_none()
                {
                    return Err(self.sources.error_at(
                        ext.report_loc(),
                        format!(
                            "cannot extend service {name:?}: service {base_name:?} not found in {}",
                            path.display()
                        ),
                    ));
                }
                let other_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                self.resolve_service(&other, &path, &other_dir, &base_name, chain)?
            }
            None => {
                if root
                    .get("services")
                    .and_then(|s| s.get(&base_name))
                    .is_none()
                {
                    return Err(self.sources.error_at(
                        ext.report_loc(),
                        format!("cannot extend service {name:?}: service {base_name:?} not found"),
                    ));
                }
                self.resolve_service(root, file, dir, &base_name, chain)?
            }
        };
        chain.pop();
        let mut own = svc;
        if let Some(m) = own.as_map_mut() {
            m.shift_remove("extends");
        }
        let mut base = base;
        if let Some(m) = base.as_map_mut() {
            m.shift_remove("extends");
        }
        Ok(merge::merge_services(base, own))
    }

    /// Load each `include` entry as a project of its own and import its resources.
    fn resolve_includes(
        &mut self,
        mut root: Node,
        dir: &Path,
        stack: &mut Vec<PathBuf>,
    ) -> Result<Node, ComposeError> {
        let Some(includes) = root.as_map_mut().and_then(|m| m.shift_remove("include")) else {
            return Ok(root);
        };
        let mut imported: Option<Node> = None;
        for entry in includes.as_seq().unwrap_or_default() {
            let paths: Vec<PathBuf> = entry
                .get("path")
                .and_then(Node::as_seq)
                .unwrap_or_default()
                .iter()
                .filter_map(Node::scalar_text)
                .map(|p| absolute(dir, Path::new(&p)))
                .collect();
            let Some(first) = paths.first() else { continue };
            if let Some(pos) = stack.iter().position(|p| p == first) {
                let mut names: Vec<String> = stack[pos..]
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                names.push(first.display().to_string());
                return Err(self.sources.error_at(
                    entry.report_loc(),
                    format!("include cycle detected: {}", names.join(" -> ")),
                ));
            }
            let project_dir = entry
                .get("project_directory")
                .and_then(Node::scalar_text)
                .map(|p| absolute(dir, Path::new(&p)))
                .unwrap_or_else(|| first.parent().map(Path::to_path_buf).unwrap_or_default());
            // The included project's environment: its env files (or its own .env), with the
            // including project's environment winning.
            let env_files: Vec<PathBuf> = match entry.get("env_file").and_then(Node::as_seq) {
                Some(list) => list
                    .iter()
                    .filter_map(Node::scalar_text)
                    .map(|p| absolute(dir, Path::new(&p)))
                    .collect(),
                None => {
                    let d = project_dir.join(".env");
                    if d.is_file() { vec![d] } else { Vec::new() }
                }
            };
            let mut env = Environment::new();
            for f in env_files {
                let base = self.env.clone();
                let values = read_env_file(
                    &f,
                    &|k| base.get(k).or(env.get(k)).cloned(),
                    &mut self.sources,
                )?;
                env.extend(values);
            }
            env.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));

            let mut sub: Option<Node> = None;
            for path in &paths {
                let text = read(path)?;
                let id = self.sources.add(path, &text);
                let node =
                    yaml::parse(&text, id).map_err(|e| self.sources.error_at(e.loc, e.message))?;
                stack.push(path.clone());
                let node = self.process(node, &project_dir, &env, stack)?;
                stack.pop();
                sub = Some(match sub {
                    None => node,
                    Some(b) => merge::merge_files(b, node),
                });
            }
            let Some(mut sub) = sub else { continue };
            merge::strip_tags(&mut sub);
            if let Some(m) = sub.as_map_mut() {
                m.shift_remove("name");
            }
            imported = Some(match imported {
                None => sub,
                Some(acc) => self.import(acc, sub)?,
            });
        }
        Ok(match imported {
            // The including file's own definitions are merged over what it imported.
            Some(base) => merge::merge_files(base, root),
            None => root,
        })
    }

    /// Combine two included projects; the same resource defined differently is an error.
    fn import(&self, mut acc: Node, sub: Node) -> Result<Node, ComposeError> {
        let Value::Map(sub_map) = sub.value else {
            return Ok(acc);
        };
        for (section, defs) in sub_map {
            let Some(acc_map) = acc.as_map_mut() else {
                break;
            };
            let slot = acc_map
                .entry(section.clone())
                .or_insert_with(|| Node::new(Value::Map(IndexMap::new()), defs.loc));
            let (Some(target), Some(defs_map)) = (slot.as_map_mut(), defs.as_map()) else {
                continue;
            };
            for (name, def) in defs_map {
                match target.get(name) {
                    Some(existing) if existing.to_json() != def.to_json() => {
                        return Err(self.sources.error_at(
                            def.report_loc(),
                            format!("{section}.{name} conflicts with imported resource"),
                        ));
                    }
                    Some(_) => {}
                    None => {
                        target.insert(name.clone(), def.clone());
                    }
                }
            }
        }
        Ok(acc)
    }
}

/// Substitute variables in every string value of the tree (keys are left alone, as in
/// compose-go). Values wharf will later treat as a number or a boolean are strings here;
/// `canonical` converts them.
fn interpolate_tree(
    node: &mut Node,
    env: &Environment,
    sources: &Sources,
    missing: &mut BTreeSet<String>,
) -> Result<(), ComposeError> {
    match &mut node.value {
        Value::Str(s) if s.contains('$') => {
            let lookup = |k: &str| env.get(k).cloned();
            let out = interpolate::substitute(s, &lookup)
                .map_err(|e| sources.error_at(node.loc, e.to_string()))?;
            missing.extend(out.missing);
            *s = out.value;
        }
        Value::Seq(items) => {
            for n in items {
                interpolate_tree(n, env, sources, missing)?;
            }
        }
        Value::Map(m) => {
            for n in m.values_mut() {
                interpolate_tree(n, env, sources, missing)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Remove services whose profiles are all inactive. Returns every profile seen and the
/// services disabled.
fn apply_profiles(
    tree: &mut Node,
    opts: &LoadOptions,
    env: &Environment,
    sources: &Sources,
) -> Result<(BTreeSet<String>, BTreeSet<String>), ComposeError> {
    let mut active: BTreeSet<String> = opts.profiles.iter().cloned().collect();
    if let Some(p) = env.get("COMPOSE_PROFILES") {
        active.extend(
            p.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
    }
    let Some(services) = tree.get_mut("services").and_then(Node::as_map_mut) else {
        return Ok((BTreeSet::new(), BTreeSet::new()));
    };
    let profiles_of = |svc: &Node| -> Vec<String> {
        svc.get("profiles")
            .and_then(Node::as_seq)
            .unwrap_or_default()
            .iter()
            .filter_map(Node::scalar_text)
            .collect()
    };
    let mut all = BTreeSet::new();
    let mut enabled: BTreeSet<String> = BTreeSet::new();
    for (name, svc) in services.iter() {
        let p = profiles_of(svc);
        all.extend(p.iter().cloned());
        if p.is_empty() || active.contains("*") || p.iter().any(|x| active.contains(x)) {
            enabled.insert(name.clone());
        }
    }
    for requested in &opts.services {
        if !services.contains_key(requested) {
            return Err(ComposeError::new(format!("no such service: {requested}")));
        }
    }
    // A service named on the command line is enabled, and so are the services it needs.
    let mut queue: Vec<String> = opts.services.clone();
    while let Some(name) = queue.pop() {
        if !enabled.insert(name.clone()) && !opts.services.contains(&name) {
            continue;
        }
        if let Some(deps) = services
            .get(&name)
            .and_then(|s| s.get("depends_on"))
            .and_then(Node::as_map)
        {
            for (dep, d) in deps {
                let required = d
                    .get("required")
                    .map(|r| !matches!(r.value, Value::Bool(false)))
                    .unwrap_or(true);
                if required && !enabled.contains(dep) {
                    queue.push(dep.clone());
                }
            }
        }
    }
    let disabled: BTreeSet<String> = services
        .keys()
        .filter(|k| !enabled.contains(*k))
        .cloned()
        .collect();
    // A dependency on a disabled service: dropped if optional, an error if required.
    for (name, svc) in services.iter_mut() {
        if disabled.contains(name) {
            continue;
        }
        if let Some(deps) = svc.get_mut("depends_on").and_then(Node::as_map_mut) {
            let mut err = None;
            deps.retain(|dep, d| {
                if !disabled.contains(dep) {
                    return true;
                }
                let required = d.get("required").map(|r| !matches!(r.value, Value::Bool(false))).unwrap_or(true);
                if required && err.is_none() {
                    err = Some(sources.error_at(
                        d.report_loc(),
                        format!("service {name:?} depends on service {dep:?}, which is disabled by its profiles (enable it with --profile)"),
                    ));
                }
                false
            });
            if let Some(e) = err {
                return Err(e);
            }
        }
    }
    services.retain(|k, _| !disabled.contains(k));
    Ok((all, disabled))
}
