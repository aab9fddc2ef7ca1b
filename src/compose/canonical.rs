//! Canonical form: one Compose file's tree rewritten from "as written" into the long form.
//!
//! This module owns the step compose-go calls `transform` (plus its `paths` resolution and
//! the scalar casts its loader does by schema type): short syntaxes become long ones
//! (`"8080:80"` becomes a port mapping, `"./src:/app:ro"` a bind mount, `KEY=VALUE` lists
//! become maps, a string `command` becomes a shell-split list), defaults that compose-go
//! fills at this stage are filled (`depends_on` conditions, port `mode`/`protocol`, a build
//! `context`), scalars are given the type the model expects (`"3"` becomes 3 where an integer
//! is expected, `true` becomes `"true"` in a label), and relative paths are made absolute
//! against the file's directory. It works on a tree that has already been parsed,
//! interpolated and validated against the Compose schema, and its output is what
//! [`super::model::Project`] deserializes from. Canonicalizing a canonical tree changes
//! nothing. It must not do I/O of any kind (paths are resolved lexically, `~` with the home
//! directory it is given), must not merge files, resolve `extends` or `include`, read
//! `env_file`/`label_file` contents or apply profiles: those belong to the loader. Every
//! error names the file, line and column of the offending value, and no input makes it panic.

use std::net::IpAddr;
use std::path::Path;

use indexmap::IndexMap;

use super::diag::{ComposeError, Sources};
use super::yaml::{Loc, Node, Tag, Value};

/// What canonicalization needs to know besides the tree itself.
pub struct Context<'a> {
    pub sources: &'a Sources,
    /// Directory relative paths are resolved against (the file's directory or the include's
    /// project_directory).
    pub base_dir: &'a Path,
    /// The user's home, for `~` expansion.
    pub home: Option<&'a Path>,
    /// False for `config --no-path-resolution`.
    pub resolve_paths: bool,
}

type Res = Result<(), ComposeError>;
type Map = IndexMap<String, Node>;

/// Canonicalize a whole file's top-level mapping in place.
pub fn canonicalize_file(root: &mut Node, ctx: &Context) -> Res {
    let loc = root.loc;
    let Value::Map(top) = &mut root.value else {
        return Err(fail(ctx, loc, "a Compose file must be a mapping"));
    };
    for (key, node) in top.iter_mut() {
        if is_reset(node) {
            continue;
        }
        match key.as_str() {
            "services" => {
                null_to_empty_map(node);
                if let Value::Map(services) = &mut node.value {
                    for svc in services.values_mut() {
                        if !is_reset(svc) {
                            canonicalize_service(svc, ctx)?;
                        }
                    }
                }
            }
            "networks" | "volumes" | "secrets" | "configs" => {
                null_to_empty_map(node);
                if let Value::Map(resources) = &mut node.value {
                    for (name, res) in resources.iter_mut() {
                        if !is_reset(res) {
                            top_level_resource(key, name, res, ctx)?;
                        }
                    }
                }
            }
            "include" => include(node, ctx)?,
            _ => {}
        }
    }
    Ok(())
}

/// Canonicalize a single service mapping (also used for `extends` bases).
pub fn canonicalize_service(svc: &mut Node, ctx: &Context) -> Res {
    null_to_empty_map(svc);
    let loc = svc.report_loc();
    let Value::Map(map) = &mut svc.value else {
        return Err(fail(ctx, loc, "a service must be a mapping"));
    };
    for (key, node) in map.iter_mut() {
        if is_reset(node) {
            continue;
        }
        let key = key.as_str();
        match key {
            "annotations" | "labels" | "sysctls" => list_or_dict(node, Bare::Empty, key, ctx)?,
            "environment" => list_or_dict(node, Bare::Null, key, ctx)?,
            "storage_opt" => string_map(node, key, ctx)?,
            "build" => build(node, ctx)?,
            "command" | "entrypoint" => command(node, key, ctx)?,
            "configs" | "secrets" => file_references(node, key, ctx)?,
            "depends_on" => depends_on(node, ctx)?,
            "devices" => devices(node, ctx)?,
            "dns"
            | "dns_search"
            | "dns_opt"
            | "tmpfs"
            | "cap_add"
            | "cap_drop"
            | "group_add"
            | "security_opt"
            | "volumes_from"
            | "links"
            | "external_links"
            | "expose"
            | "profiles"
            | "device_cgroup_rules" => string_list(node, key, ctx)?,
            "env_file" => env_file(node, ctx)?,
            "label_file" => {
                string_list(node, key, ctx)?;
                resolve_each(node, ctx);
            }
            "extends" => extends(node, ctx)?,
            "extra_hosts" => extra_hosts(node, ctx)?,
            "healthcheck" => healthcheck(node, ctx)?,
            "logging" => {
                if let Some(options) = node.get_mut("options") {
                    string_map(options, "logging.options", ctx)?;
                }
            }
            "networks" => service_networks(node, ctx)?,
            "ports" => ports(node, ctx)?,
            "pull_policy" if node.as_str() == Some("if_not_present") => {
                node.value = Value::Str("missing".into());
            }
            "ulimits" => ulimits(node, ctx)?,
            "volumes" => service_volumes(node, ctx)?,
            "deploy" => deploy(node, ctx)?,
            "develop" => develop(node, ctx)?,
            "gpus" => gpus(node, ctx)?,
            "post_start" | "pre_stop" => {
                if let Value::Seq(hooks) = &mut node.value {
                    for hook in hooks {
                        service_hook(hook, ctx)?;
                    }
                }
            }
            "models" => list_to_null_map(node, key, ctx)?,
            "attach" | "init" | "oom_kill_disable" | "privileged" | "read_only" | "stdin_open"
            | "tty" | "use_api_socket" => cast_bool(node, key, ctx)?,
            "cpu_count" | "cpu_period" | "cpu_quota" | "cpu_rt_period" | "cpu_rt_runtime"
            | "cpu_shares" | "mem_swappiness" | "oom_score_adj" | "pids_limit" | "scale" => {
                cast_int(node, key, ctx)?
            }
            "cpus" | "cpu_percent" => cast_float(node, key, ctx)?,
            _ => {}
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Top level: networks, volumes, secrets, configs, include

fn top_level_resource(kind: &str, name: &str, res: &mut Node, ctx: &Context) -> Res {
    null_to_empty_map(res);
    let loc = res.report_loc();
    let Value::Map(map) = &mut res.value else {
        return Err(fail(ctx, loc, format!("{kind}.{name} must be a mapping")));
    };
    for (key, node) in map.iter_mut() {
        if is_reset(node) {
            continue;
        }
        match key.as_str() {
            "labels" => list_or_dict(node, Bare::Empty, "labels", ctx)?,
            "driver_opts" => string_map(node, "driver_opts", ctx)?,
            "internal" | "attachable" | "enable_ipv4" | "enable_ipv6" if kind == "networks" => {
                cast_bool(node, key, ctx)?
            }
            "ipam" if kind == "networks" => ipam(node, ctx)?,
            "file" if kind == "secrets" || kind == "configs" => resolve_scalar(node, ctx),
            _ => {}
        }
    }
    // `external: {name: x}` (deprecated) becomes `name: x` + `external: true`.
    let mut adopted_name = None;
    if let Some(ext) = map.get_mut("external") {
        match &mut ext.value {
            Value::Map(ext_map) => {
                adopted_name = ext_map.shift_remove("name");
                ext.value = Value::Bool(true);
            }
            _ => cast_bool(ext, "external", ctx)?,
        }
    }
    if let Some(mut ext_name) = adopted_name {
        to_string_scalar(&mut ext_name);
        match map.get("name") {
            Some(existing) if scalar_string(existing) != scalar_string(&ext_name) => {
                return Err(fail(
                    ctx,
                    loc,
                    format!("{kind}.{name}: name and external.name conflict; only use name"),
                ));
            }
            Some(_) => {}
            None => {
                map.insert("name".into(), ext_name);
            }
        }
    }
    if kind == "volumes" {
        local_bind_device(map, ctx);
    }
    Ok(())
}

/// A `local` volume with `o: bind` is a bind mount of `device`, which is a host path.
fn local_bind_device(map: &mut Map, ctx: &Context) {
    if map.get("driver").and_then(Node::as_str) != Some("local") {
        return;
    }
    let Some(opts) = map.get_mut("driver_opts") else {
        return;
    };
    if opts.get("o").and_then(Node::as_str) != Some("bind") {
        return;
    }
    if let Some(device) = opts.get_mut("device") {
        resolve_scalar(device, ctx);
    }
}

fn ipam(node: &mut Node, ctx: &Context) -> Res {
    let Value::Map(map) = &mut node.value else {
        return Ok(());
    };
    if let Some(options) = map.get_mut("options") {
        string_map(options, "ipam.options", ctx)?;
    }
    if let Some(Value::Seq(pools)) = map.get_mut("config").map(|c| &mut c.value) {
        for pool in pools {
            if let Value::Map(pool) = &mut pool.value {
                for (key, value) in pool.iter_mut() {
                    if key == "aux_addresses" {
                        string_map(value, "aux_addresses", ctx)?;
                    } else {
                        to_string_scalar(value);
                    }
                }
            }
        }
    }
    Ok(())
}

fn include(node: &mut Node, ctx: &Context) -> Res {
    let Value::Seq(items) = &mut node.value else {
        return Ok(());
    };
    for item in items {
        let loc = item.loc;
        match &mut item.value {
            Value::Str(path) => {
                let path = Node::string(std::mem::take(path), loc);
                item.value = map_value([("path", Node::new(Value::Seq(vec![path]), loc))]);
            }
            Value::Map(_) => {}
            _ => {
                return Err(fail(
                    ctx,
                    loc,
                    "include entries must be a path or a mapping",
                ));
            }
        }
        let Value::Map(map) = &mut item.value else {
            continue;
        };
        for (key, value) in map.iter_mut() {
            match key.as_str() {
                "path" | "env_file" => string_list(value, key, ctx)?,
                "project_directory" => to_string_scalar(value),
                _ => continue,
            }
            resolve_each(value, ctx);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Service attributes

fn build(node: &mut Node, ctx: &Context) -> Res {
    let loc = node.loc;
    match &mut node.value {
        Value::Str(context) => {
            let context = Node::string(std::mem::take(context), loc);
            node.value = map_value([("context", context)]);
        }
        Value::Map(map) => {
            if !map.contains_key("context") {
                map.shift_insert(0, "context".into(), Node::string(".", loc));
            }
        }
        Value::Null => return Ok(()),
        _ => return Err(fail(ctx, loc, "build must be a path or a mapping")),
    }
    let Value::Map(map) = &mut node.value else {
        return Ok(());
    };
    for (key, value) in map.iter_mut() {
        if is_reset(value) {
            continue;
        }
        let key = key.as_str();
        match key {
            "context" => resolve_context(value, ctx),
            "additional_contexts" => {
                key_value_list(value, "build.additional_contexts", ctx)?;
                if let Value::Map(contexts) = &mut value.value {
                    for context in contexts.values_mut() {
                        to_string_scalar(context);
                        resolve_context(context, ctx);
                    }
                }
            }
            "args" => list_or_dict(value, Bare::Null, "build.args", ctx)?,
            "labels" => list_or_dict(value, Bare::Empty, "build.labels", ctx)?,
            "ssh" => ssh(value, ctx)?,
            "secrets" => file_references(value, "build.secrets", ctx)?,
            "extra_hosts" => extra_hosts(value, ctx)?,
            "ulimits" => ulimits(value, ctx)?,
            "cache_from" | "cache_to" | "tags" | "platforms" | "entitlements" => {
                string_list(value, key, ctx)?
            }
            "no_cache" | "pull" | "privileged" => cast_bool(value, key, ctx)?,
            _ => {}
        }
    }
    Ok(())
}

/// A build context is a local path unless it is a URL, a `service:` reference or a git
/// remote, which are kept as written.
fn resolve_context(node: &mut Node, ctx: &Context) {
    let Some(text) = node.as_str() else {
        return;
    };
    let remote = text.contains("://")
        || text.starts_with("service:")
        || [
            "https://",
            "http://",
            "git://",
            "ssh://",
            "github.com/",
            "git@",
        ]
        .iter()
        .any(|p| text.starts_with(p));
    if !remote {
        resolve_scalar(node, ctx);
    }
}

/// `ssh`: a list of `default` or `id=path`, or a mapping `{id: path}`; always a list of
/// strings in the model, with paths resolved.
fn ssh(node: &mut Node, ctx: &Context) -> Res {
    let loc = node.loc;
    let entries: Vec<(String, Option<String>, Loc)> = match &node.value {
        Value::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let Some(text) = scalar_string(item) else {
                    return Err(fail(ctx, item.loc, "build.ssh entries must be strings"));
                };
                match text.split_once('=') {
                    Some((id, path)) => {
                        out.push((id.to_string(), Some(path.to_string()), item.loc))
                    }
                    None if text == "default" => out.push((text, None, item.loc)),
                    None => {
                        return Err(fail(ctx, item.loc, format!("invalid ssh key {text:?}")));
                    }
                }
            }
            out
        }
        Value::Map(map) => map
            .iter()
            .map(|(id, path)| (id.clone(), scalar_string(path), path.loc))
            .collect(),
        Value::Null => return Ok(()),
        _ => return Err(fail(ctx, loc, "build.ssh must be a list or a mapping")),
    };
    let list = entries
        .into_iter()
        .map(|(id, path, loc)| match path {
            Some(path) => Node::string(format!("{id}={}", resolve_path(&path, ctx)), loc),
            None => Node::string(id, loc),
        })
        .collect();
    node.value = Value::Seq(list);
    Ok(())
}

fn command(node: &mut Node, key: &str, ctx: &Context) -> Res {
    let loc = node.loc;
    match &mut node.value {
        Value::Str(line) => match shell_split(line) {
            Ok(words) => {
                node.value = Value::Seq(words.into_iter().map(|w| Node::string(w, loc)).collect());
            }
            Err(e) => return Err(fail(ctx, loc, format!("{key}: {e}: {line}"))),
        },
        Value::Seq(_) => string_list(node, key, ctx)?,
        Value::Null => {}
        _ => return Err(fail(ctx, loc, format!("{key} must be a string or a list"))),
    }
    Ok(())
}

/// Service `secrets`/`configs` and `build.secrets`: a name becomes `{source: name}`;
/// `uid`/`gid` are strings and `mode` is printed in octal like compose-go (`"0440"`).
fn file_references(node: &mut Node, key: &str, ctx: &Context) -> Res {
    let Value::Seq(items) = &mut node.value else {
        return Ok(());
    };
    for item in items {
        let loc = item.loc;
        match &mut item.value {
            Value::Str(source) => {
                let source = Node::string(std::mem::take(source), loc);
                item.value = map_value([("source", source)]);
            }
            Value::Map(map) => {
                for (field, value) in map.iter_mut() {
                    match field.as_str() {
                        "source" | "target" | "uid" | "gid" => to_string_scalar(value),
                        "mode" => file_mode(value, ctx)?,
                        _ => {}
                    }
                }
            }
            _ => {
                return Err(fail(
                    ctx,
                    loc,
                    format!("{key} entries must be a name or a mapping"),
                ));
            }
        }
    }
    Ok(())
}

/// A file mode: an integer is the mode itself (YAML `0o440` or `288`); a string is read as
/// octal (`"0440"`, `"440"`, `"0o440"`). Printed as `0` followed by the octal digits.
fn file_mode(node: &mut Node, ctx: &Context) -> Res {
    let mode = match &node.value {
        Value::Int(i) => Some(*i).filter(|i| *i >= 0),
        Value::Float(f) => float_to_int(*f).filter(|i| *i >= 0),
        Value::Str(s) => {
            let digits = s
                .strip_prefix("0o")
                .or_else(|| s.strip_prefix("0O"))
                .unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                None
            } else {
                i64::from_str_radix(digits, 8).ok()
            }
        }
        Value::Null => return Ok(()),
        _ => None,
    };
    match mode {
        Some(mode) => {
            node.value = Value::Str(format!("0{mode:o}"));
            Ok(())
        }
        None => Err(fail(
            ctx,
            node.loc,
            format!(
                "invalid file mode {}: expected an octal number like 0440",
                describe(node)
            ),
        )),
    }
}

fn depends_on(node: &mut Node, ctx: &Context) -> Res {
    let loc = node.loc;
    match &mut node.value {
        Value::Seq(items) => {
            let mut map = Map::new();
            for item in items.iter() {
                let Some(name) = scalar_string(item) else {
                    return Err(fail(
                        ctx,
                        item.loc,
                        "depends_on entries must be service names",
                    ));
                };
                let mut dep = Node::new(Value::Map(Map::new()), item.loc);
                dep.key_loc = Some(item.loc);
                dependency_defaults(&mut dep, &name, ctx)?;
                map.insert(name, dep);
            }
            node.value = Value::Map(map);
        }
        Value::Map(map) => {
            for (name, dep) in map.iter_mut() {
                dependency_defaults(dep, name, ctx)?;
            }
        }
        Value::Null => {}
        _ => return Err(fail(ctx, loc, "depends_on must be a list or a mapping")),
    }
    Ok(())
}

fn dependency_defaults(dep: &mut Node, name: &str, ctx: &Context) -> Res {
    null_to_empty_map(dep);
    let loc = dep.loc;
    let Value::Map(map) = &mut dep.value else {
        return Err(fail(
            ctx,
            dep.report_loc(),
            format!("depends_on.{name} must be a mapping"),
        ));
    };
    if !map.contains_key("condition") {
        map.insert("condition".into(), Node::string("service_started", loc));
    }
    match map.get_mut("required") {
        Some(required) => cast_bool(required, "required", ctx)?,
        None => {
            map.insert("required".into(), Node::new(Value::Bool(true), loc));
        }
    }
    if let Some(restart) = map.get_mut("restart") {
        cast_bool(restart, "restart", ctx)?;
    }
    Ok(())
}

/// `devices`: `"src[:dst[:permissions]]"`, target defaulting to the source and permissions
/// to `rwm`, exactly like compose-go.
fn devices(node: &mut Node, ctx: &Context) -> Res {
    let Value::Seq(items) = &mut node.value else {
        return Ok(());
    };
    for item in items {
        let loc = item.loc;
        let Value::Str(spec) = &item.value else {
            continue;
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let (source, target, permissions) = match parts.as_slice() {
            [src] => (*src, *src, "rwm"),
            [src, dst] => (*src, *dst, "rwm"),
            [src, dst, perm] => (*src, *dst, *perm),
            _ => {
                return Err(fail(
                    ctx,
                    loc,
                    format!("confusing device mapping, please use long syntax: {spec}"),
                ));
            }
        };
        let target = if target.is_empty() { source } else { target };
        item.value = map_value([
            ("source", Node::string(source, loc)),
            ("target", Node::string(target, loc)),
            ("permissions", Node::string(permissions, loc)),
        ]);
    }
    Ok(())
}

fn env_file(node: &mut Node, ctx: &Context) -> Res {
    let loc = node.loc;
    if let Value::Str(path) = &mut node.value {
        let path = Node::string(std::mem::take(path), loc);
        node.value = Value::Seq(vec![path]);
    }
    let Value::Seq(items) = &mut node.value else {
        if node.is_null() {
            return Ok(());
        }
        return Err(fail(ctx, loc, "env_file must be a path or a list"));
    };
    for item in items {
        let loc = item.loc;
        match &mut item.value {
            Value::Str(path) => {
                let path = Node::string(std::mem::take(path), loc);
                item.value = map_value([
                    ("path", path),
                    ("required", Node::new(Value::Bool(true), loc)),
                ]);
            }
            Value::Map(map) => match map.get_mut("required") {
                Some(required) => cast_bool(required, "required", ctx)?,
                None => {
                    map.insert("required".into(), Node::new(Value::Bool(true), loc));
                }
            },
            _ => {
                return Err(fail(
                    ctx,
                    loc,
                    "env_file entries must be a path or a mapping",
                ));
            }
        }
        if let Some(path) = item.get_mut("path") {
            to_string_scalar(path);
            resolve_scalar(path, ctx);
        }
    }
    Ok(())
}

fn extends(node: &mut Node, ctx: &Context) -> Res {
    let loc = node.loc;
    match &mut node.value {
        Value::Str(service) => {
            let service = Node::string(std::mem::take(service), loc);
            node.value = map_value([("service", service)]);
        }
        Value::Map(map) => {
            if let Some(service) = map.get_mut("service") {
                to_string_scalar(service);
            }
            if let Some(file) = map.get_mut("file") {
                to_string_scalar(file);
                resolve_scalar(file, ctx);
            }
        }
        Value::Null => {}
        _ => {
            return Err(fail(
                ctx,
                loc,
                "extends must be a service name or a mapping",
            ));
        }
    }
    Ok(())
}

/// `extra_hosts` as a list of `host=address`: from a mapping (`{host: ip}` or
/// `{host: [ip, ip]}`) or a list of `host=ip` / `host:ip` (split at the first `=`, else at
/// the first `:`, so `myhost:::1` is `myhost=::1`); comma-separated addresses give one
/// entry each and brackets around IPv6 addresses are dropped.
fn extra_hosts(node: &mut Node, ctx: &Context) -> Res {
    let mut pairs: Vec<(String, String, Loc)> = Vec::new();
    match &node.value {
        Value::Seq(items) => {
            for item in items {
                let Some(text) = scalar_string(item) else {
                    return Err(fail(ctx, item.loc, "extra_hosts entries must be strings"));
                };
                let Some((host, ips)) = text.split_once('=').or_else(|| text.split_once(':'))
                else {
                    return Err(fail(
                        ctx,
                        item.loc,
                        format!("invalid additional host, missing IP: {text}"),
                    ));
                };
                for ip in ips.split(',') {
                    pairs.push((host.to_string(), ip.to_string(), item.loc));
                }
            }
        }
        Value::Map(map) => {
            for (host, value) in map {
                match &value.value {
                    Value::Seq(ips) => {
                        for ip in ips {
                            pairs.push((
                                host.clone(),
                                scalar_string(ip).unwrap_or_default(),
                                ip.loc,
                            ));
                        }
                    }
                    _ => pairs.push((
                        host.clone(),
                        scalar_string(value).unwrap_or_default(),
                        value.loc,
                    )),
                }
            }
        }
        Value::Null => return Ok(()),
        _ => {
            return Err(fail(
                ctx,
                node.loc,
                "extra_hosts must be a list or a mapping",
            ));
        }
    }
    let mut list = Vec::with_capacity(pairs.len());
    for (host, ip, loc) in pairs {
        if host.is_empty() || host.contains([':', '=']) {
            return Err(fail(ctx, loc, format!("bad host name '{host}'")));
        }
        let ip = match ip.strip_prefix('[').and_then(|i| i.strip_suffix(']')) {
            Some(inner) if !inner.is_empty() => inner.to_string(),
            _ => ip,
        };
        list.push(Node::string(format!("{host}={ip}"), loc));
    }
    node.value = Value::Seq(list);
    Ok(())
}

fn healthcheck(node: &mut Node, ctx: &Context) -> Res {
    let Value::Map(map) = &mut node.value else {
        return Ok(());
    };
    for (key, value) in map.iter_mut() {
        match key.as_str() {
            "test" => {
                let loc = value.loc;
                if let Value::Str(test) = &mut value.value {
                    let test = Node::string(std::mem::take(test), loc);
                    value.value = Value::Seq(vec![Node::string("CMD-SHELL", loc), test]);
                } else {
                    string_list(value, "healthcheck.test", ctx)?;
                }
            }
            "retries" => cast_int(value, "healthcheck.retries", ctx)?,
            "disable" => cast_bool(value, "healthcheck.disable", ctx)?,
            _ => {}
        }
    }
    Ok(())
}

fn service_networks(node: &mut Node, ctx: &Context) -> Res {
    list_to_null_map(node, "networks", ctx)?;
    let Value::Map(map) = &mut node.value else {
        return Ok(());
    };
    for attachment in map.values_mut() {
        let Value::Map(fields) = &mut attachment.value else {
            continue;
        };
        for (key, value) in fields.iter_mut() {
            match key.as_str() {
                "aliases" | "link_local_ips" => string_list(value, key, ctx)?,
                "driver_opts" => string_map(value, "driver_opts", ctx)?,
                "priority" | "gw_priority" => cast_int(value, key, ctx)?,
                "ipv4_address" | "ipv6_address" | "mac_address" | "interface_name" => {
                    to_string_scalar(value)
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn ulimits(node: &mut Node, ctx: &Context) -> Res {
    let Value::Map(map) = &mut node.value else {
        return Ok(());
    };
    for (name, limit) in map.iter_mut() {
        match &mut limit.value {
            Value::Map(range) => {
                for (key, value) in range.iter_mut() {
                    if key == "soft" || key == "hard" {
                        cast_int(value, &format!("ulimits.{name}.{key}"), ctx)?;
                    }
                }
            }
            _ => cast_int(limit, &format!("ulimits.{name}"), ctx)?,
        }
    }
    Ok(())
}

fn deploy(node: &mut Node, ctx: &Context) -> Res {
    let Value::Map(map) = &mut node.value else {
        return Ok(());
    };
    for (key, value) in map.iter_mut() {
        match key.as_str() {
            "labels" => list_or_dict(value, Bare::Empty, "deploy.labels", ctx)?,
            "replicas" => cast_int(value, "deploy.replicas", ctx)?,
            "update_config" | "rollback_config" => {
                if let Value::Map(cfg) = &mut value.value {
                    for (field, v) in cfg.iter_mut() {
                        match field.as_str() {
                            "parallelism" => cast_int(v, field, ctx)?,
                            "max_failure_ratio" => cast_float(v, field, ctx)?,
                            _ => {}
                        }
                    }
                }
            }
            "restart_policy" => {
                if let Some(v) = value.get_mut("max_attempts") {
                    cast_int(v, "max_attempts", ctx)?;
                }
            }
            "placement" => {
                if let Some(v) = value.get_mut("max_replicas_per_node") {
                    cast_int(v, "max_replicas_per_node", ctx)?;
                }
            }
            "resources" => {
                if let Value::Map(resources) = &mut value.value {
                    for resource in resources.values_mut() {
                        let Value::Map(fields) = &mut resource.value else {
                            continue;
                        };
                        for (field, v) in fields.iter_mut() {
                            match field.as_str() {
                                "cpus" => cast_float(v, "cpus", ctx)?,
                                "pids" => cast_int(v, "pids", ctx)?,
                                "devices" => device_requests(v, ctx)?,
                                _ => {}
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn device_requests(node: &mut Node, ctx: &Context) -> Res {
    if let Value::Seq(items) = &mut node.value {
        for item in items {
            if let Some(options) = item.get_mut("options") {
                list_or_dict(options, Bare::Empty, "options", ctx)?;
            }
            if let Some(ids) = item.get_mut("device_ids") {
                string_list(ids, "device_ids", ctx)?;
            }
        }
    }
    Ok(())
}

/// `gpus: all` is `[{count: all}]`.
fn gpus(node: &mut Node, ctx: &Context) -> Res {
    let loc = node.loc;
    if let Value::Str(_) = node.value {
        node.value = Value::Seq(vec![Node::new(
            map_value([("count", Node::string("all", loc))]),
            loc,
        )]);
    }
    device_requests(node, ctx)
}

fn develop(node: &mut Node, ctx: &Context) -> Res {
    let Some(watch) = node.get_mut("watch") else {
        return Ok(());
    };
    let Value::Seq(items) = &mut watch.value else {
        return Ok(());
    };
    // A watch rule with a list of paths is one rule per path.
    let mut expanded = Vec::with_capacity(items.len());
    for item in std::mem::take(items) {
        match item.get("path").map(|p| &p.value) {
            Some(Value::Seq(paths)) => {
                for path in paths {
                    let mut rule = item.clone();
                    if let Some(slot) = rule.get_mut("path") {
                        *slot = path.clone();
                    }
                    expanded.push(rule);
                }
            }
            _ => expanded.push(item),
        }
    }
    for rule in &mut expanded {
        let Value::Map(map) = &mut rule.value else {
            continue;
        };
        for (key, value) in map.iter_mut() {
            match key.as_str() {
                "path" => {
                    to_string_scalar(value);
                    resolve_scalar(value, ctx);
                }
                "ignore" | "include" => string_list(value, key, ctx)?,
                "initial_sync" => cast_bool(value, key, ctx)?,
                "exec" => service_hook(value, ctx)?,
                _ => {}
            }
        }
    }
    *items = expanded;
    Ok(())
}

fn service_hook(hook: &mut Node, ctx: &Context) -> Res {
    let Value::Map(map) = &mut hook.value else {
        return Ok(());
    };
    for (key, value) in map.iter_mut() {
        match key.as_str() {
            "command" => command(value, "command", ctx)?,
            "environment" => list_or_dict(value, Bare::Null, "environment", ctx)?,
            "privileged" => cast_bool(value, "privileged", ctx)?,
            _ => {}
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Ports

fn ports(node: &mut Node, ctx: &Context) -> Res {
    let loc = node.loc;
    let Value::Seq(items) = &mut node.value else {
        if node.is_null() {
            return Ok(());
        }
        return Err(fail(ctx, loc, "ports must be a list"));
    };
    let mut out = Vec::with_capacity(items.len());
    for mut item in std::mem::take(items) {
        let loc = item.loc;
        match &mut item.value {
            Value::Int(_) | Value::Float(_) => {
                let target = port_number(&item).ok_or_else(|| {
                    fail(
                        ctx,
                        loc,
                        format!("invalid port {}: expected 1-65535", describe(&item)),
                    )
                })?;
                out.push(Node::new(port_entry(loc, None, target, None, "tcp"), loc));
            }
            Value::Str(spec) => {
                let parsed = parse_port_spec(spec).map_err(|e| fail(ctx, loc, e))?;
                for p in parsed {
                    let value = port_entry(loc, p.host_ip, p.target, p.published, &p.protocol);
                    out.push(Node::new(value, loc));
                }
            }
            Value::Map(map) => {
                long_port(map, loc, ctx)?;
                out.push(item);
            }
            _ => {
                return Err(fail(
                    ctx,
                    loc,
                    "invalid port: expected a number, a string or a mapping",
                ));
            }
        }
    }
    *items = out;
    Ok(())
}

fn port_entry(
    loc: Loc,
    host_ip: Option<String>,
    target: u16,
    published: Option<String>,
    protocol: &str,
) -> Value {
    let mut map = Map::new();
    map.insert("mode".into(), Node::string("ingress", loc));
    if let Some(ip) = host_ip {
        map.insert("host_ip".into(), Node::string(ip, loc));
    }
    map.insert(
        "target".into(),
        Node::new(Value::Int(i64::from(target)), loc),
    );
    if let Some(published) = published {
        map.insert("published".into(), Node::string(published, loc));
    }
    map.insert("protocol".into(), Node::string(protocol, loc));
    Value::Map(map)
}

fn long_port(map: &mut Map, loc: Loc, ctx: &Context) -> Res {
    if let Some(target) = map.get_mut("target") {
        let port = port_number(target).ok_or_else(|| {
            fail(
                ctx,
                target.loc,
                format!("invalid target port {}: expected 1-65535", describe(target)),
            )
        })?;
        target.value = Value::Int(i64::from(port));
    }
    if let Some(published) = map.get_mut("published") {
        to_string_scalar(published);
    }
    for key in ["host_ip", "name", "mode", "protocol", "app_protocol"] {
        if let Some(v) = map.get_mut(key) {
            to_string_scalar(v);
        }
    }
    if !map.contains_key("mode") {
        map.insert("mode".into(), Node::string("ingress", loc));
    }
    if !map.contains_key("protocol") {
        map.insert("protocol".into(), Node::string("tcp", loc));
    }
    Ok(())
}

/// A container port number (1-65535) from an integer, an integral float or a decimal string.
fn port_number(node: &Node) -> Option<u16> {
    let n = match &node.value {
        Value::Int(i) => *i,
        Value::Float(f) => float_to_int(*f)?,
        Value::Str(s) => parse_decimal(s)?.try_into().ok()?,
        _ => return None,
    };
    u16::try_from(n).ok().filter(|p| *p != 0)
}

#[derive(Debug, PartialEq)]
struct ParsedPort {
    host_ip: Option<String>,
    target: u16,
    published: Option<String>,
    protocol: String,
}

/// Parse `[host_ip:][published[-range]:]target[-range][/protocol]` the way Docker's
/// `nat.ParsePortSpec` does (and compose-go after it): one entry per container port, a
/// published range paired with a target range of the same size, or kept whole when the
/// target is a single port. Entries come out ordered as compose-go orders them (by
/// `"port/proto"` text).
fn parse_port_spec(raw: &str) -> Result<Vec<ParsedPort>, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => ("".to_string(), "", *c),
        [h, c] => ("".to_string(), *h, *c),
        [i, h, c] => (i.to_string(), *h, *c),
        [rest @ .., h, c] => (rest.join(":"), *h, *c),
        [] => ("".to_string(), "", ""),
    };
    let (container, proto) = match container.split_once('/') {
        Some((port, proto)) => (port, proto),
        None => (container, ""),
    };
    if container.is_empty() {
        return Err(format!("invalid port {raw:?}: no container port specified"));
    }
    let protocol = if proto.is_empty() {
        "tcp".to_string()
    } else {
        proto.to_ascii_lowercase()
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!(
            "invalid port {raw:?}: invalid protocol {proto:?} (expected tcp, udp or sctp)"
        ));
    }
    let ip = if ip.starts_with('[') {
        match ip.strip_prefix('[').and_then(|i| i.strip_suffix(']')) {
            Some(inner) => inner.to_string(),
            None => return Err(format!("invalid port {raw:?}: invalid IP address {ip:?}")),
        }
    } else {
        ip
    };
    if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
        return Err(format!("invalid port {raw:?}: invalid IP address {ip:?}"));
    }
    let (start, end) = parse_port_range(raw, container)?;
    if start == 0 {
        return Err(format!(
            "invalid port {raw:?}: container port must be 1-65535"
        ));
    }
    let host_range = if host.is_empty() {
        None
    } else {
        Some(parse_port_range(raw, host)?)
    };
    if let Some((hstart, hend)) = host_range
        && end - start != hend - hstart
        && end != start
    {
        return Err(format!(
            "invalid port range {raw:?}: published range {host} and target range {container} \
             have different sizes"
        ));
    }
    let count = u32::from(end) - u32::from(start) + 1;
    let mut ports = Vec::with_capacity(count as usize);
    for i in 0..count {
        let target = u16::try_from(u32::from(start) + i)
            .map_err(|_| format!("invalid port {raw:?}: container port out of range"))?;
        let published = match host_range {
            None => None,
            Some((hstart, hend)) => {
                let first = u32::from(hstart) + i;
                if count == 1 && hstart != hend {
                    Some(format!("{first}-{hend}"))
                } else {
                    Some(first.to_string())
                }
            }
        };
        ports.push(ParsedPort {
            host_ip: (!ip.is_empty()).then(|| ip.clone()),
            target,
            published,
            protocol: protocol.clone(),
        });
    }
    // compose-go collects the ports in a map keyed by "port/proto" and sorts the keys as text.
    ports.sort_by_cached_key(|p| p.target.to_string());
    Ok(ports)
}

/// The ports one short-syntax entry (`[host_ip:][published:]target[/protocol]`, as in
/// `wharf run -p`) publishes, as the normalized model has them.
pub fn short_ports(raw: &str) -> Result<Vec<super::model::ServicePort>, String> {
    Ok(parse_port_spec(raw)?
        .into_iter()
        .map(|p| super::model::ServicePort {
            mode: Some("ingress".into()),
            host_ip: p.host_ip,
            target: p.target,
            published: p.published,
            protocol: p.protocol,
            ..Default::default()
        })
        .collect())
}

/// `N` or `N-M` with `N <= M`, each a decimal port number (0-65535).
fn parse_port_range(raw: &str, text: &str) -> Result<(u16, u16), String> {
    let number = |s: &str| -> Result<u16, String> {
        parse_decimal(s)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| format!("invalid port {raw:?}: {s:?} is not a port number (0-65535)"))
    };
    match text.split_once('-') {
        None => {
            let p = number(text)?;
            Ok((p, p))
        }
        Some((a, b)) => {
            let (start, end) = (number(a)?, number(b)?);
            if end < start {
                return Err(format!(
                    "invalid port range {raw:?}: {text} ends before it starts"
                ));
            }
            Ok((start, end))
        }
    }
}

/// Digits only (no sign, no spaces), like Go's `strconv.ParseUint(s, 10, ...)`.
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

// ---------------------------------------------------------------------------------------
// Volumes

fn service_volumes(node: &mut Node, ctx: &Context) -> Res {
    let Value::Seq(items) = &mut node.value else {
        return Ok(());
    };
    for item in items {
        let loc = item.loc;
        match &mut item.value {
            Value::Str(spec) => {
                let parsed = parse_volume(spec).map_err(|e| fail(ctx, loc, e))?;
                item.value = parsed.into_value(loc, ctx);
            }
            Value::Map(map) => long_volume(map, loc, ctx)?,
            _ => {
                return Err(fail(
                    ctx,
                    loc,
                    "invalid volume: expected a string or a mapping",
                ));
            }
        }
    }
    Ok(())
}

fn long_volume(map: &mut Map, loc: Loc, ctx: &Context) -> Res {
    for (key, value) in map.iter_mut() {
        match key.as_str() {
            "type" | "source" | "target" | "consistency" => to_string_scalar(value),
            "read_only" => cast_bool(value, "read_only", ctx)?,
            "bind" => {
                if let Some(v) = value.get_mut("create_host_path") {
                    cast_bool(v, "create_host_path", ctx)?;
                }
            }
            "volume" => {
                if let Some(v) = value.get_mut("nocopy") {
                    cast_bool(v, "nocopy", ctx)?;
                }
                if let Some(v) = value.get_mut("labels") {
                    list_or_dict(v, Bare::Empty, "labels", ctx)?;
                }
            }
            "tmpfs" => {
                if let Some(v) = value.get_mut("mode") {
                    tmpfs_mode(v, ctx)?;
                }
            }
            _ => {}
        }
    }
    if map.get("type").and_then(Node::as_str) == Some("bind") {
        match map.get_mut("source") {
            Some(source) if source.as_str().is_some_and(|s| !s.is_empty()) => {
                resolve_scalar(source, ctx)
            }
            _ => {
                return Err(fail(
                    ctx,
                    loc,
                    "invalid mount config for type \"bind\": field source must not be empty",
                ));
            }
        }
    }
    Ok(())
}

/// tmpfs `mode`: an integer as is, a string read as octal (`"1777"`).
fn tmpfs_mode(node: &mut Node, ctx: &Context) -> Res {
    if let Value::Str(s) = &node.value {
        let digits = s.strip_prefix("0o").unwrap_or(s);
        match u32::from_str_radix(digits, 8) {
            Ok(mode) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                node.value = Value::Int(i64::from(mode));
            }
            _ => {
                return Err(fail(
                    ctx,
                    node.loc,
                    format!("invalid tmpfs mode {s:?}: expected an octal number like 1777"),
                ));
            }
        }
    }
    Ok(())
}

#[derive(Debug, Default, PartialEq)]
struct ParsedVolume {
    source: String,
    target: String,
    read_only: bool,
    consistency: Option<String>,
    nocopy: bool,
    propagation: Option<String>,
    selinux: Option<String>,
    /// Whether bind options were given (compose-go then creates the `bind` block whatever
    /// the mount type).
    has_bind: bool,
    /// 1- or 2-character specs are anonymous volumes without a `volume` block.
    short: bool,
}

impl ParsedVolume {
    fn into_value(self, loc: Loc, ctx: &Context) -> Value {
        let bind = is_file_path(&self.source);
        let mut map = Map::new();
        map.insert(
            "type".into(),
            Node::string(if bind { "bind" } else { "volume" }, loc),
        );
        if !self.source.is_empty() {
            let source = if bind {
                resolve_path(&self.source, ctx)
            } else {
                self.source
            };
            map.insert("source".into(), Node::string(source, loc));
        }
        map.insert("target".into(), Node::string(self.target, loc));
        if self.read_only {
            map.insert("read_only".into(), Node::new(Value::Bool(true), loc));
        }
        if let Some(c) = self.consistency {
            map.insert("consistency".into(), Node::string(c, loc));
        }
        if self.short {
            return Value::Map(map);
        }
        if bind || self.has_bind {
            let mut opts = Map::new();
            if let Some(p) = self.propagation {
                opts.insert("propagation".into(), Node::string(p, loc));
            }
            if bind {
                opts.insert("create_host_path".into(), Node::new(Value::Bool(true), loc));
            }
            if let Some(s) = self.selinux {
                opts.insert("selinux".into(), Node::string(s, loc));
            }
            map.insert("bind".into(), Node::new(Value::Map(opts), loc));
        }
        if !bind || self.nocopy {
            let mut opts = Map::new();
            if self.nocopy {
                opts.insert("nocopy".into(), Node::new(Value::Bool(true), loc));
            }
            map.insert("volume".into(), Node::new(Value::Map(opts), loc));
        }
        Value::Map(map)
    }
}

/// compose-go's `format.ParseVolume`: `[source:]target[:options]`, where a one-letter
/// segment followed by `:` is a Windows drive, colons inside `${...}` do not split, a
/// source starting with `.`, `/`, `~` (or a Windows path) is a bind mount and anything
/// else names a volume.
fn parse_volume(spec: &str) -> Result<ParsedVolume, String> {
    let mut volume = ParsedVolume::default();
    match spec.len() {
        0 => return Err("invalid empty volume spec".into()),
        1 | 2 => {
            volume.target = clean_unix(spec);
            volume.short = true;
            return Ok(volume);
        }
        _ => {}
    }
    let bytes = spec.as_bytes();
    let mut buffer = String::new();
    let mut in_var = 0usize;
    let mut chars = spec
        .char_indices()
        .map(|(i, c)| (i, Some(c)))
        .collect::<Vec<_>>();
    chars.push((spec.len(), None));
    for (i, ch) in chars {
        if ch == Some('$') && bytes.get(i + 1) == Some(&b'{') {
            in_var += 1;
            buffer.push('$');
            continue;
        }
        if ch == Some('}') && in_var > 0 {
            in_var -= 1;
            buffer.push('}');
            continue;
        }
        let is_drive = ch == Some(':') && {
            let mut it = buffer.chars();
            matches!((it.next(), it.next()), (Some(c), None) if c.is_alphabetic())
        };
        match ch {
            Some(':') if is_drive => buffer.push(':'),
            Some(':') | None if in_var == 0 => {
                volume
                    .populate(ch.is_none(), &buffer)
                    .map_err(|e| format!("invalid spec: {spec}: {e}"))?;
                buffer.clear();
            }
            Some(c) => buffer.push(c),
            None => {
                // An unterminated `${` swallowed the rest: what is left is the last field.
                volume
                    .populate(true, &buffer)
                    .map_err(|e| format!("invalid spec: {spec}: {e}"))?;
            }
        }
    }
    volume.target = clean_unix(&volume.target);
    Ok(volume)
}

impl ParsedVolume {
    fn populate(&mut self, at_end: bool, buffer: &str) -> Result<(), &'static str> {
        if buffer.is_empty() {
            return Err("empty section between colons");
        }
        if self.source.is_empty() && at_end {
            self.target = buffer.to_string();
            return Ok(());
        }
        if self.source.is_empty() {
            self.source = buffer.to_string();
            return Ok(());
        }
        if self.target.is_empty() {
            self.target = buffer.to_string();
            return Ok(());
        }
        if !at_end {
            return Err("too many colons");
        }
        for option in buffer.split(',') {
            match option {
                "ro" => self.read_only = true,
                "rw" => self.read_only = false,
                "nocopy" => self.nocopy = true,
                "cached" | "delegated" | "consistent" => self.consistency = Some(option.into()),
                "shared" | "slave" | "private" | "rshared" | "rslave" | "rprivate" => {
                    self.has_bind = true;
                    self.propagation = Some(option.into());
                }
                "z" | "Z" => {
                    self.has_bind = true;
                    self.selinux = Some(option.into());
                }
                _ => {} // unknown options are ignored, like compose-go does
            }
        }
        Ok(())
    }
}

fn is_file_path(source: &str) -> bool {
    if source.starts_with(['.', '/', '~']) || source.starts_with("\\\\") {
        return true;
    }
    let mut chars = source.chars();
    matches!((chars.next(), chars.next()), (Some(c), Some(':')) if c.is_alphabetic())
}

// ---------------------------------------------------------------------------------------
// Generic shapes

#[derive(Clone, Copy)]
enum Bare {
    /// `KEY` alone (or `KEY:` with no value) means "unset": environment, build args.
    Null,
    /// `KEY` alone means the empty string: labels, annotations, sysctls.
    Empty,
}

/// `list_or_dict`: a list of `KEY=VALUE` becomes a mapping; mapping values become strings.
fn list_or_dict(node: &mut Node, bare: Bare, key: &str, ctx: &Context) -> Res {
    let loc = node.loc;
    match &mut node.value {
        Value::Seq(items) => {
            let mut map = Map::new();
            for item in items.iter() {
                let Some(text) = scalar_string(item) else {
                    return Err(fail(
                        ctx,
                        item.loc,
                        format!("{key}: entries must be KEY=VALUE strings"),
                    ));
                };
                let (k, v) = match text.split_once('=') {
                    Some((k, v)) => (k.to_string(), Value::Str(v.to_string())),
                    None => (text, bare_value(bare)),
                };
                let mut value = Node::new(v, item.loc);
                value.key_loc = Some(item.loc);
                map.insert(k, value);
            }
            node.value = Value::Map(map);
        }
        Value::Map(map) => {
            for (k, value) in map.iter_mut() {
                match &value.value {
                    Value::Null => value.value = bare_value(bare),
                    Value::Seq(_) | Value::Map(_) => {
                        return Err(fail(
                            ctx,
                            value.loc,
                            format!("{key}.{k} must be a string, a number, a boolean or null"),
                        ));
                    }
                    _ => to_string_scalar(value),
                }
            }
        }
        Value::Null => {}
        _ => return Err(fail(ctx, loc, format!("{key} must be a mapping or a list"))),
    }
    Ok(())
}

fn bare_value(bare: Bare) -> Value {
    match bare {
        Bare::Null => Value::Null,
        Bare::Empty => Value::Str(String::new()),
    }
}

/// A mapping of strings (driver options, `storage_opt`, logging options): scalar values
/// become text and null the empty string.
fn string_map(node: &mut Node, key: &str, ctx: &Context) -> Res {
    let Value::Map(map) = &mut node.value else {
        return Ok(());
    };
    for (k, value) in map.iter_mut() {
        match &value.value {
            Value::Null => value.value = Value::Str(String::new()),
            Value::Seq(_) | Value::Map(_) => {
                return Err(fail(
                    ctx,
                    value.loc,
                    format!("{key}.{k} must be a string or a number"),
                ));
            }
            _ => to_string_scalar(value),
        }
    }
    Ok(())
}

/// `key=value` list to mapping (compose-go's `transformKeyValue`).
fn key_value_list(node: &mut Node, key: &str, ctx: &Context) -> Res {
    let Value::Seq(items) = &node.value else {
        return Ok(());
    };
    let mut map = Map::new();
    for item in items {
        let text = scalar_string(item).unwrap_or_default();
        let Some((k, v)) = text.split_once('=') else {
            return Err(fail(
                ctx,
                item.loc,
                format!("{key}: invalid value {text:?}, expected key=value"),
            ));
        };
        let mut value = Node::string(v, item.loc);
        value.key_loc = Some(item.loc);
        map.insert(k.to_string(), value);
    }
    node.value = Value::Map(map);
    Ok(())
}

/// A string or a list of scalars becomes a list of strings.
fn string_list(node: &mut Node, key: &str, ctx: &Context) -> Res {
    let loc = node.loc;
    match &mut node.value {
        Value::Str(s) => {
            let item = Node::string(std::mem::take(s), loc);
            node.value = Value::Seq(vec![item]);
        }
        Value::Seq(items) => {
            for item in items {
                if matches!(item.value, Value::Seq(_) | Value::Map(_)) {
                    return Err(fail(
                        ctx,
                        item.loc,
                        format!("{key}: entries must be strings"),
                    ));
                }
                to_string_scalar(item);
            }
        }
        _ => {}
    }
    Ok(())
}

/// A list of names becomes a mapping of names to null (service `networks`, `models`).
fn list_to_null_map(node: &mut Node, key: &str, ctx: &Context) -> Res {
    let Value::Seq(items) = &node.value else {
        return Ok(());
    };
    let mut map = Map::new();
    for item in items {
        let Some(name) = scalar_string(item) else {
            return Err(fail(ctx, item.loc, format!("{key}: entries must be names")));
        };
        let mut value = Node::null(item.loc);
        value.key_loc = Some(item.loc);
        map.insert(name, value);
    }
    node.value = Value::Map(map);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Scalars

/// The scalar as text; floats are printed like Go's `%v` (`0.5`, `1e+06`).
fn scalar_string(node: &Node) -> Option<String> {
    match &node.value {
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(go_float(*f)),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Seq(_) | Value::Map(_) => None,
    }
}

fn to_string_scalar(node: &mut Node) {
    if !matches!(node.value, Value::Str(_))
        && let Some(s) = scalar_string(node)
    {
        node.value = Value::Str(s);
    }
}

/// A boolean field given as text (interpolation yields text): YAML 1.1 spellings, like
/// compose-go's `toBoolean`.
fn cast_bool(node: &mut Node, key: &str, ctx: &Context) -> Res {
    if let Value::Str(s) = &node.value {
        let b = match s.to_ascii_lowercase().as_str() {
            "y" | "yes" | "true" | "on" => true,
            "n" | "no" | "false" | "off" => false,
            _ => return Err(fail(ctx, node.loc, format!("{key}: invalid boolean {s:?}"))),
        };
        node.value = Value::Bool(b);
    }
    Ok(())
}

fn cast_int(node: &mut Node, key: &str, ctx: &Context) -> Res {
    let parsed = match &node.value {
        Value::Str(s) => s.parse::<i64>().ok(),
        Value::Float(f) => float_to_int(*f),
        _ => return Ok(()),
    };
    match parsed {
        Some(i) => {
            node.value = Value::Int(i);
            Ok(())
        }
        None => Err(fail(
            ctx,
            node.loc,
            format!("{key}: invalid integer {}", describe(node)),
        )),
    }
}

fn cast_float(node: &mut Node, key: &str, ctx: &Context) -> Res {
    if let Value::Str(s) = &node.value {
        match s.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => node.value = Value::Float(f),
            _ => return Err(fail(ctx, node.loc, format!("{key}: invalid number {s:?}"))),
        }
    }
    Ok(())
}

fn float_to_int(f: f64) -> Option<i64> {
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`, which is what `fmt.Sprint` prints.
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let dot = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}e{esign}{:02}", exp.unsigned_abs());
    }
    let point = exp + 1; // digits before the decimal point
    let n = digits.len() as i32;
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point >= n {
        format!("{digits}{}", "0".repeat((point - n) as usize))
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{body}")
}

/// How a scalar is shown in an error message.
fn describe(node: &Node) -> String {
    match &node.value {
        Value::Str(s) => format!("{s:?}"),
        _ => scalar_string(node).unwrap_or_else(|| "value".into()),
    }
}

// ---------------------------------------------------------------------------------------
// Shell words

/// Split a command line like `github.com/mattn/go-shellwords` (which compose-go uses):
/// whitespace separates words, single quotes are literal, double quotes group, a backslash
/// escapes the next character (outside single quotes), `$(...)` and backticks are kept
/// as text, and an unquoted `;`, `&`, `|`, `<` or `>` ends the command (the rest is
/// dropped, as Docker Compose does). Unbalanced quotes or parentheses are errors.
pub fn shell_split(line: &str) -> Result<Vec<String>, &'static str> {
    const INVALID: &str = "invalid command line string";
    let mut args = Vec::new();
    let mut buf = String::new();
    let (mut escaped, mut dq, mut sq, mut bq, mut dollar) = (false, false, false, false, false);
    let mut got = false;
    for r in line.chars() {
        if escaped {
            escaped = false;
            buf.push(r);
            got = true;
            continue;
        }
        if r == '\\' {
            if sq {
                buf.push(r);
            } else {
                escaped = true;
            }
            continue;
        }
        if matches!(r, ' ' | '\t' | '\r' | '\n') {
            if sq || dq || bq || dollar {
                buf.push(r);
            } else if got {
                args.push(std::mem::take(&mut buf));
                got = false;
            }
            continue;
        }
        match r {
            '`' if !sq && !dq && !dollar => bq = !bq,
            ')' if !sq && !dq && !bq => {
                if !dollar {
                    return Err(INVALID);
                }
                dollar = false;
            }
            '(' if !sq && !dq && !bq => {
                if !dollar && buf.ends_with('$') && !buf.ends_with("\\$") {
                    dollar = true;
                } else {
                    return Err(INVALID);
                }
            }
            '"' if !sq && !dollar && !bq => {
                if dq {
                    got = true;
                }
                dq = !dq;
                continue;
            }
            '\'' if !dq && !dollar && !bq => {
                if sq {
                    got = true;
                }
                sq = !sq;
                continue;
            }
            ';' | '&' | '|' | '<' | '>' if !(sq || dq || bq || dollar) => {
                if r == '>' && !buf.is_empty() && buf.bytes().all(|b| b.is_ascii_digit()) {
                    got = false; // `2>` redirects a file descriptor: drop the number too
                }
                break;
            }
            _ => {}
        }
        got = true;
        buf.push(r);
    }
    if escaped || sq || dq || bq || dollar {
        return Err(INVALID);
    }
    if got {
        args.push(buf);
    }
    Ok(args)
}

// ---------------------------------------------------------------------------------------
// Paths (lexical only)

fn resolve_scalar(node: &mut Node, ctx: &Context) {
    if let Value::Str(s) = &node.value
        && !s.is_empty()
    {
        node.value = Value::Str(resolve_path(s, ctx));
    }
}

/// Resolve every string in a list (or a lone string).
fn resolve_each(node: &mut Node, ctx: &Context) {
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(|i| resolve_scalar(i, ctx)),
        _ => resolve_scalar(node, ctx),
    }
}

/// `~` and `~/...` expand to the home directory; absolute paths (Unix or Windows) are kept
/// as written; anything else is joined to the base directory and cleaned lexically.
/// Nothing changes when path resolution is off, nor for `~` without a known home.
fn resolve_path(path: &str, ctx: &Context) -> String {
    if !ctx.resolve_paths {
        return path.to_string();
    }
    if path == "~" || path.starts_with("~/") {
        return match ctx.home {
            Some(home) => join_clean(&home.to_string_lossy(), &path[1..]),
            None => path.to_string(),
        };
    }
    if path.starts_with('/') || is_windows_abs(path) {
        return path.to_string();
    }
    join_clean(&ctx.base_dir.to_string_lossy(), path)
}

fn is_windows_abs(path: &str) -> bool {
    path.starts_with("\\\\")
        || matches!(path.as_bytes(), [d, b':', b'\\' | b'/', ..] if d.is_ascii_alphabetic())
}

/// Go's `filepath.Join(base, rel)` on Unix.
fn join_clean(base: &str, rel: &str) -> String {
    match (base.is_empty(), rel.is_empty()) {
        (true, true) => String::new(),
        (true, false) => clean_unix(rel),
        (false, true) => clean_unix(base),
        (false, false) => clean_unix(&format!("{base}/{rel}")),
    }
}

/// Go's `path.Clean`: the shortest equivalent path, processing `.` and `..` lexically.
/// The empty string stays empty (compose-go only cleans non-empty targets).
fn clean_unix(path: &str) -> String {
    if path.is_empty() {
        return String::new();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

// ---------------------------------------------------------------------------------------
// Helpers

fn fail(ctx: &Context, loc: Loc, message: impl Into<String>) -> ComposeError {
    ctx.sources.error_at(loc, message)
}

fn is_reset(node: &Node) -> bool {
    node.tag == Some(Tag::Reset)
}

fn null_to_empty_map(node: &mut Node) {
    if node.is_null() {
        node.value = Value::Map(Map::new());
    }
}

fn map_value<const N: usize>(entries: [(&str, Node); N]) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::super::model;
    use super::super::yaml;
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::path::PathBuf;

    /// `shared/conformance`, found by walking up from the package (it sits next to the
    /// repository); a missing corpus fails the test rather than skipping it.
    fn corpus() -> PathBuf {
        let start = Path::new(env!("CARGO_MANIFEST_DIR"));
        for dir in start.ancestors() {
            let candidate = dir.join("shared").join("conformance");
            if candidate.is_dir() {
                return candidate;
            }
        }
        panic!("no shared/conformance in any parent of {}", start.display());
    }

    fn ctx_with<'a>(sources: &'a Sources, base: &'a Path, resolve: bool) -> Context<'a> {
        Context {
            sources,
            base_dir: base,
            home: Some(Path::new("/home/me")),
            resolve_paths: resolve,
        }
    }

    fn parse(src: &str) -> (Sources, Node) {
        let mut sources = Sources::default();
        let id = sources.add(Path::new("/proj/compose.yaml"), src);
        let node = yaml::parse(src, id).unwrap();
        (sources, node)
    }

    fn canon_file_opts(src: &str, resolve: bool) -> Result<serde_json::Value, String> {
        let (sources, mut node) = parse(src);
        let ctx = ctx_with(&sources, Path::new("/proj"), resolve);
        canonicalize_file(&mut node, &ctx).map_err(|e| e.to_string())?;
        // Idempotence on every successful case.
        let once = node.clone();
        canonicalize_file(&mut node, &ctx).unwrap();
        assert_eq!(once, node, "canonicalizing twice changed the tree");
        Ok(node.to_json())
    }

    fn canon_file(src: &str) -> serde_json::Value {
        canon_file_opts(src, true).unwrap()
    }

    /// Canonicalize `services: {s: <body>}` and return the service.
    fn svc(body: &str) -> serde_json::Value {
        let src = format!("services:\n  s:\n{}", indent(body));
        let out = canon_file(&src);
        out["services"]["s"].clone()
    }

    fn svc_err(body: &str) -> String {
        let src = format!("services:\n  s:\n{}", indent(body));
        canon_file_opts(&src, true).unwrap_err()
    }

    fn indent(body: &str) -> String {
        body.lines().map(|l| format!("    {l}\n")).collect()
    }

    fn project(json: &serde_json::Value) -> model::Project {
        serde_json::from_value(json.clone()).unwrap()
    }

    // --- full example -------------------------------------------------------------

    fn full_example() -> (model::Project, model::Project) {
        let dir = corpus().join("compose-go/full-example");
        let text = std::fs::read_to_string(dir.join("full-example.yml"))
            .unwrap()
            .replace("${COMPOSE_PROJECT_NAME}", "full_example_project_name");
        let mut sources = Sources::default();
        let id = sources.add(&dir.join("full-example.yml"), &text);
        let mut root = yaml::parse(&text, id).unwrap();
        let ctx = Context {
            sources: &sources,
            base_dir: &dir,
            home: Some(Path::new("/HOME_DIR")),
            resolve_paths: true,
        };
        canonicalize_file(&mut root, &ctx).unwrap();
        let once = root.clone();
        canonicalize_file(&mut root, &ctx).unwrap();
        assert_eq!(once, root, "full example is not idempotent");
        let ours: model::Project = serde_json::from_value(root.to_json()).unwrap();

        let expected_text = std::fs::read_to_string(dir.join("expected.yaml"))
            .unwrap()
            .replace("/WORKING_DIR", &dir.to_string_lossy());
        let expected = yaml::parse(&expected_text, 0).unwrap();
        let expected: model::Project = serde_json::from_value(expected.to_json()).unwrap();
        (ours, expected)
    }

    #[test]
    fn full_example_matches_compose_go() {
        let (ours, expected) = full_example();
        let mut foo = ours.services["foo"].clone();
        let want = expected.services["foo"].clone();
        // Short-syntax binds keep `create_host_path: true` (compose-go prints it as `bind: {}`).
        for v in &mut foo.volumes {
            if let Some(b) = &mut v.bind {
                b.create_host_path = None;
            }
        }
        let ours_json = serde_json::to_value(&foo).unwrap();
        let want_json = serde_json::to_value(&want).unwrap();
        let skip = ["environment", "labels"]; // merged from env_file/label_file elsewhere
        let keys: std::collections::BTreeSet<_> = ours_json
            .as_object()
            .unwrap()
            .keys()
            .chain(want_json.as_object().unwrap().keys())
            .cloned()
            .collect();
        for key in keys {
            if skip.contains(&key.as_str()) {
                continue;
            }
            assert_eq!(
                ours_json.get(&key),
                want_json.get(&key),
                "service foo: field {key}"
            );
        }
        assert_eq!(ours.services["bar"], expected.services["bar"]);
        assert_eq!(ours.networks, expected.networks);
        assert_eq!(ours.volumes, expected.volumes);
        assert_eq!(ours.secrets, expected.secrets);
        assert_eq!(ours.configs, expected.configs);
        assert_eq!(ours.extensions, expected.extensions);
        assert_eq!(ours.name, expected.name);
    }

    #[test]
    fn full_example_short_binds_create_host_path() {
        let (ours, _) = full_example();
        let vols = &ours.services["foo"].volumes;
        let code = vols.iter().find(|v| v.target == "/code").unwrap();
        let dir = corpus().join("compose-go/full-example");
        assert_eq!(code.source.as_deref(), Some(&*dir.to_string_lossy()));
        assert_eq!(
            code.bind.as_ref().and_then(|b| b.create_host_path),
            Some(true)
        );
        let cached = vols.iter().find(|v| v.target == "/opt/cached").unwrap();
        assert_eq!(cached.bind, None, "long syntax gets no bind block");
    }

    // --- build --------------------------------------------------------------------

    #[test]
    fn build_short_and_defaults() {
        assert_eq!(
            svc("build: ./dir")["build"],
            json!({"context": "/proj/dir"})
        );
        assert_eq!(
            svc("build: {dockerfile: D}")["build"]["context"],
            json!("/proj")
        );
        let b = svc(
            "build:\n  context: ../x/./y\n  args: [A=1, B]\n  labels: [L]\n  additional_contexts: [foo=./bar, img=docker-image://alpine, s=service:base, g=https://x/y.git]\n  ssh: [default, key=./id_rsa]\n  secrets: [s1]\n  tags: [1]\n  no_cache: \"true\"\n  extra_hosts: {h: 1.2.3.4}",
        )["build"]
            .clone();
        assert_eq!(b["context"], json!("/x/y"));
        assert_eq!(b["args"], json!({"A": "1", "B": null}));
        assert_eq!(b["labels"], json!({"L": ""}));
        assert_eq!(
            b["additional_contexts"],
            json!({"foo": "/proj/bar", "img": "docker-image://alpine", "s": "service:base", "g": "https://x/y.git"})
        );
        assert_eq!(b["ssh"], json!(["default", "key=/proj/id_rsa"]));
        assert_eq!(b["secrets"], json!([{"source": "s1"}]));
        assert_eq!(b["tags"], json!(["1"]));
        assert_eq!(b["no_cache"], json!(true));
        assert_eq!(b["extra_hosts"], json!(["h=1.2.3.4"]));
        let remote = svc("build: git@github.com:a/b.git")["build"].clone();
        assert_eq!(remote, json!({"context": "git@github.com:a/b.git"}));
        let ssh_map =
            svc("build: {context: ., ssh: {default: null, k: ~/.ssh/id}}")["build"]["ssh"].clone();
        assert_eq!(ssh_map, json!(["default", "k=/home/me/.ssh/id"]));
    }

    #[test]
    fn build_errors() {
        let e = svc_err("build:\n  additional_contexts: [nope]");
        assert!(
            e.contains("expected key=value") && e.contains("compose.yaml:4:"),
            "{e}"
        );
        let e = svc_err("build:\n  ssh: [mykey]");
        assert!(e.contains("invalid ssh key"), "{e}");
    }

    // --- command ------------------------------------------------------------------

    #[test]
    fn shell_words() {
        let ok = |s: &str| shell_split(s).unwrap();
        assert_eq!(
            ok("bundle exec thin -p 3000"),
            ["bundle", "exec", "thin", "-p", "3000"]
        );
        assert_eq!(ok(r#"sh -c "echo 'a b'""#), ["sh", "-c", "echo 'a b'"]);
        assert_eq!(
            ok(r#"echo 'a\b' "c\"d" e\ f"#),
            ["echo", "a\\b", "c\"d", "e f"]
        );
        assert_eq!(ok(r#"a "" ''"#), ["a", "", ""]);
        assert_eq!(ok("  "), Vec::<String>::new());
        assert_eq!(ok("echo a && echo b"), ["echo", "a"]);
        assert_eq!(ok("run 2>/dev/null"), ["run"]);
        assert_eq!(
            ok("echo $(date +%s) `id -u`"),
            ["echo", "$(date +%s)", "`id -u`"]
        );
        assert_eq!(ok(r"a\tb `x\ y`"), ["atb", "`x y`"]);
        for bad in ["echo 'a", "echo \"a", "foo()", "a)", "trailing\\"] {
            assert!(shell_split(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn command_and_entrypoint() {
        let s = svc("command: echo \"hello world\"\nentrypoint: [/bin/sh, -c, 1]");
        assert_eq!(s["command"], json!(["echo", "hello world"]));
        assert_eq!(s["entrypoint"], json!(["/bin/sh", "-c", "1"]));
        assert_eq!(svc("command: null\nimage: x")["command"], json!(null));
        assert_eq!(svc("command: []\nimage: x")["command"], json!([]));
        let e = svc_err("image: x\ncommand: echo 'unclosed");
        assert!(
            e.contains("compose.yaml:4:14") && e.contains("invalid command line"),
            "{e}"
        );
    }

    // --- secrets / configs ------------------------------------------------------------

    #[test]
    fn file_references_and_modes() {
        let s = svc(
            "secrets:\n  - a\n  - {source: b, uid: 103, gid: '0', mode: 0440}\n  - {source: c, mode: 288}\n  - {source: d, mode: 0o400}\n  - {source: e, mode: \"755\"}\nconfigs: [c1]",
        );
        assert_eq!(
            s["secrets"],
            json!([
                {"source": "a"},
                {"source": "b", "uid": "103", "gid": "0", "mode": "0440"},
                {"source": "c", "mode": "0440"},
                {"source": "d", "mode": "0400"},
                {"source": "e", "mode": "0755"}
            ])
        );
        assert_eq!(s["configs"], json!([{"source": "c1"}]));
        let e = svc_err("secrets:\n  - {source: b, mode: \"rw\"}");
        assert!(
            e.contains("invalid file mode") && e.contains("compose.yaml:4:"),
            "{e}"
        );
    }

    // --- depends_on -------------------------------------------------------------------

    #[test]
    fn depends_on_long_form() {
        let s = svc("depends_on: [db, redis]");
        let dep = json!({"condition": "service_started", "required": true});
        assert_eq!(s["depends_on"], json!({"db": dep, "redis": dep}));
        let s = svc(
            "depends_on:\n  db: {condition: service_healthy, restart: \"true\"}\n  x: {condition: service_started, required: false}",
        );
        assert_eq!(
            s["depends_on"],
            json!({
                "db": {"condition": "service_healthy", "restart": true, "required": true},
                "x": {"condition": "service_started", "required": false}
            })
        );
    }

    // --- devices --------------------------------------------------------------------

    #[test]
    fn devices_short_and_long() {
        let s = svc("devices: [/dev/a, \"/dev/b:/dev/c\", \"/dev/d:/dev/e:r\", {source: /dev/f}]");
        assert_eq!(
            s["devices"],
            json!([
                {"source": "/dev/a", "target": "/dev/a", "permissions": "rwm"},
                {"source": "/dev/b", "target": "/dev/c", "permissions": "rwm"},
                {"source": "/dev/d", "target": "/dev/e", "permissions": "r"},
                {"source": "/dev/f"}
            ])
        );
        let e = svc_err("devices: [\"a:b:c:d\"]");
        assert!(e.contains("confusing device mapping"), "{e}");
    }

    // --- strings or lists -------------------------------------------------------------

    #[test]
    fn string_or_list_fields() {
        let s = svc(
            "dns: 8.8.8.8\ndns_search: example.com\ntmpfs: /run\ngroup_add: [100, wheel]\nexpose: [\"3000\", 8000]\ncap_add: [ALL]\nlabel_file: ./a.label",
        );
        assert_eq!(s["dns"], json!(["8.8.8.8"]));
        assert_eq!(s["dns_search"], json!(["example.com"]));
        assert_eq!(s["tmpfs"], json!(["/run"]));
        assert_eq!(s["group_add"], json!(["100", "wheel"]));
        assert_eq!(s["expose"], json!(["3000", "8000"]));
        assert_eq!(s["label_file"], json!(["/proj/a.label"]));
    }

    #[test]
    fn env_file_forms() {
        assert_eq!(
            svc("env_file: .env")["env_file"],
            json!([{"path": "/proj/.env", "required": true}])
        );
        let s = svc(
            "env_file:\n  - ./a.env\n  - {path: /abs/b.env, required: \"false\", format: raw}\n  - path: ~/c.env",
        );
        assert_eq!(
            s["env_file"],
            json!([
                {"path": "/proj/a.env", "required": true},
                {"path": "/abs/b.env", "required": false, "format": "raw"},
                {"path": "/home/me/c.env", "required": true}
            ])
        );
    }

    // --- mappings -------------------------------------------------------------------

    #[test]
    fn list_or_dict_fields() {
        let s = svc(
            "environment: [A=1, B, C=x=y, \"D=\"]\nlabels: [com.x=1, flag]\nannotations: {a: 1.5, b: true, c: null, d: 1000000.0}\nsysctls: {net.core.somaxconn: 1024}\nstorage_opt: {size: 20G}\nlogging: {driver: syslog, options: {a: 1, b: null}}",
        );
        assert_eq!(
            s["environment"],
            json!({"A": "1", "B": null, "C": "x=y", "D": ""})
        );
        assert_eq!(s["labels"], json!({"com.x": "1", "flag": ""}));
        assert_eq!(
            s["annotations"],
            json!({"a": "1.5", "b": "true", "c": "", "d": "1e+06"})
        );
        assert_eq!(s["sysctls"], json!({"net.core.somaxconn": "1024"}));
        assert_eq!(s["storage_opt"], json!({"size": "20G"}));
        assert_eq!(s["logging"]["options"], json!({"a": "1", "b": ""}));
        let s = svc("environment: {A: 1, B: null, C: false}");
        assert_eq!(s["environment"], json!({"A": "1", "B": null, "C": "false"}));
        let e = svc_err("labels: {a: [1]}");
        assert!(e.contains("labels.a must be"), "{e}");
    }

    #[test]
    fn go_float_text() {
        for (f, s) in [
            (0.5, "0.5"),
            (1.0, "1"),
            (42.0, "42"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (1e21, "1e+21"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (0.001, "0.001"),
        ] {
            assert_eq!(go_float(f), s, "{f}");
        }
    }

    // --- extra_hosts ------------------------------------------------------------------

    #[test]
    fn extra_hosts_forms() {
        let s = svc(
            "extra_hosts: [\"a:1.2.3.4\", \"b=5.6.7.8\", \"myhost:::1\", \"v6=[::2]\", \"multi=1.1.1.1,2.2.2.2\"]",
        );
        assert_eq!(
            s["extra_hosts"],
            json!([
                "a=1.2.3.4",
                "b=5.6.7.8",
                "myhost=::1",
                "v6=::2",
                "multi=1.1.1.1",
                "multi=2.2.2.2"
            ])
        );
        let s = svc("extra_hosts: {a: 1.2.3.4, b: [\"::1\", 10.0.0.1]}");
        assert_eq!(
            s["extra_hosts"],
            json!(["a=1.2.3.4", "b=::1", "b=10.0.0.1"])
        );
        let e = svc_err("extra_hosts: [nohost]");
        assert!(
            e.contains("missing IP") && e.contains("compose.yaml:3:19"),
            "{e}"
        );
    }

    // --- healthcheck, networks, pull_policy, ulimits -----------------------------------

    #[test]
    fn healthcheck_forms() {
        let s = svc(
            "healthcheck: {test: curl -f http://x, retries: \"3\", disable: \"false\", interval: 10s}",
        );
        assert_eq!(
            s["healthcheck"],
            json!({"test": ["CMD-SHELL", "curl -f http://x"], "retries": 3, "disable": false, "interval": "10s"})
        );
        let s = svc("healthcheck: {test: [CMD, true]}");
        assert_eq!(s["healthcheck"]["test"], json!(["CMD", "true"]));
    }

    #[test]
    fn service_networks_and_misc() {
        assert_eq!(
            svc("networks: [a, b]")["networks"],
            json!({"a": null, "b": null})
        );
        let s = svc("networks: {a: {aliases: [x], priority: \"5\", driver_opts: {k: 1}}, b: null}");
        assert_eq!(
            s["networks"],
            json!({"a": {"aliases": ["x"], "priority": 5, "driver_opts": {"k": "1"}}, "b": null})
        );
        assert_eq!(
            svc("pull_policy: if_not_present")["pull_policy"],
            json!("missing")
        );
        assert_eq!(svc("pull_policy: always")["pull_policy"], json!("always"));
        let s = svc("ulimits: {nproc: 65535, nofile: {soft: \"20000\", hard: 40000}, core: \"0\"}");
        assert_eq!(
            s["ulimits"],
            json!({"nproc": 65535, "nofile": {"soft": 20000, "hard": 40000}, "core": 0})
        );
        assert_eq!(svc("models: [m]")["models"], json!({"m": null}));
        assert_eq!(svc("gpus: all")["gpus"], json!([{"count": "all"}]));
        assert_eq!(svc("extends: base")["extends"], json!({"service": "base"}));
        assert_eq!(
            svc("extends: {service: b, file: ../common.yml}")["extends"],
            json!({"service": "b", "file": "/common.yml"})
        );
    }

    #[test]
    fn scalar_casts() {
        let s = svc(
            "privileged: \"true\"\ntty: \"no\"\ncpus: \"0.5\"\nscale: \"3\"\ncpu_shares: \"512\"\npids_limit: 100\nmem_limit: 1g\ndeploy: {replicas: \"2\", resources: {limits: {cpus: \"1.5\", pids: \"10\"}}, update_config: {parallelism: \"2\", max_failure_ratio: \"0.3\"}, restart_policy: {max_attempts: \"4\"}, labels: [a=b]}",
        );
        assert_eq!(s["privileged"], json!(true));
        assert_eq!(s["tty"], json!(false));
        assert_eq!(s["cpus"], json!(0.5));
        assert_eq!(s["scale"], json!(3));
        assert_eq!(s["cpu_shares"], json!(512));
        assert_eq!(s["pids_limit"], json!(100));
        assert_eq!(s["mem_limit"], json!("1g"));
        assert_eq!(s["deploy"]["replicas"], json!(2));
        assert_eq!(
            s["deploy"]["resources"]["limits"],
            json!({"cpus": 1.5, "pids": 10})
        );
        assert_eq!(
            s["deploy"]["update_config"],
            json!({"parallelism": 2, "max_failure_ratio": 0.3})
        );
        assert_eq!(s["deploy"]["restart_policy"]["max_attempts"], json!(4));
        assert_eq!(s["deploy"]["labels"], json!({"a": "b"}));
        let e = svc_err("privileged: \"maybe\"");
        assert!(
            e.contains("invalid boolean") && e.contains("compose.yaml:3:17"),
            "{e}"
        );
        let e = svc_err("scale: \"three\"");
        assert!(e.contains("scale: invalid integer"), "{e}");
        let e = svc_err("cpus: \"lots\"");
        assert!(e.contains("cpus: invalid number"), "{e}");
    }

    // --- ports ------------------------------------------------------------------------

    fn port(mode_ip_target_pub: (Option<&str>, u16, Option<&str>)) -> serde_json::Value {
        let (ip, target, published) = mode_ip_target_pub;
        let mut m = serde_json::Map::new();
        m.insert("mode".into(), json!("ingress"));
        if let Some(ip) = ip {
            m.insert("host_ip".into(), json!(ip));
        }
        m.insert("target".into(), json!(target));
        if let Some(p) = published {
            m.insert("published".into(), json!(p));
        }
        m.insert("protocol".into(), json!("tcp"));
        serde_json::Value::Object(m)
    }

    #[test]
    fn ports_short_syntax() {
        let s = svc(
            "ports:\n  - 3000\n  - \"3001-3003\"\n  - \"9090-9091:8080-8081\"\n  - \"127.0.0.1:5000-5001:5000-5001\"\n  - \"8000-8010:80\"\n  - \"[::1]:8080:80\"\n  - \"::1:8081:81\"\n  - \"53:53/UDP\"",
        );
        let mut udp = port((None, 53, Some("53")));
        udp["protocol"] = json!("udp");
        assert_eq!(
            s["ports"],
            json!([
                port((None, 3000, None)),
                port((None, 3001, None)),
                port((None, 3002, None)),
                port((None, 3003, None)),
                port((None, 8080, Some("9090"))),
                port((None, 8081, Some("9091"))),
                port((Some("127.0.0.1"), 5000, Some("5000"))),
                port((Some("127.0.0.1"), 5001, Some("5001"))),
                port((None, 80, Some("8000-8010"))),
                port((Some("::1"), 80, Some("8080"))),
                port((Some("::1"), 81, Some("8081"))),
                udp,
            ])
        );
        // compose-go orders a range by the ports' text.
        let s = svc("ports: [\"9999-10000\"]");
        assert_eq!(
            s["ports"],
            json!([port((None, 10000, None)), port((None, 9999, None))])
        );
    }

    #[test]
    fn ports_long_syntax() {
        let s = svc(
            "ports:\n  - {target: \"80\", published: 8080}\n  - {target: 81, published: \"8000-8001\", protocol: udp, mode: host, host_ip: 0.0.0.0}",
        );
        assert_eq!(
            s["ports"],
            json!([
                {"target": 80, "published": "8080", "mode": "ingress", "protocol": "tcp"},
                {"target": 81, "published": "8000-8001", "protocol": "udp", "mode": "host", "host_ip": "0.0.0.0"}
            ])
        );
        let p: model::ServicePort = serde_json::from_value(s["ports"][0].clone()).unwrap();
        assert_eq!(p.published.as_deref(), Some("8080"));
    }

    #[test]
    fn port_errors() {
        for (spec, needle) in [
            ("8000-8002:80-81", "invalid port range"),
            ("abc", "is not a port number"),
            ("0", "container port must be"),
            ("70000", "is not a port number"),
            ("81-80", "invalid port range"),
            ("80/foo", "invalid protocol"),
            ("1.2.3:80:80", "invalid IP address"),
            ("[::1:80:80", "invalid IP address"),
            ("80:", "no container port"),
            ("1-2-3", "is not a port number"),
        ] {
            let e = svc_err(&format!("ports: [\"{spec}\"]"));
            assert!(e.contains(needle), "{spec}: {e}");
            assert!(e.starts_with("/proj/compose.yaml:3:13: "), "{spec}: {e}");
        }
        let e = svc_err("ports: [0]");
        assert!(e.contains("invalid port 0"), "{e}");
        let e = svc_err("ports:\n  - target: 70000");
        assert!(
            e.contains("invalid target port") && e.contains("compose.yaml:4:17"),
            "{e}"
        );
    }

    // --- volumes ----------------------------------------------------------------------

    #[test]
    fn volumes_short_syntax() {
        let s = svc(
            "volumes:\n  - /var/lib/anon/\n  - data:/data:nocopy\n  - ./src:/app:ro,z\n  - ~/c:/c:rshared\n  - ../up:/up:cached\n  - /abs:/abs:rw\n  - .:/code\n  - c\n  - named:/n:Z",
        );
        assert_eq!(
            s["volumes"],
            json!([
                {"type": "volume", "target": "/var/lib/anon", "volume": {}},
                {"type": "volume", "source": "data", "target": "/data", "volume": {"nocopy": true}},
                {"type": "bind", "source": "/proj/src", "target": "/app", "read_only": true,
                 "bind": {"create_host_path": true, "selinux": "z"}},
                {"type": "bind", "source": "/home/me/c", "target": "/c",
                 "bind": {"propagation": "rshared", "create_host_path": true}},
                {"type": "bind", "source": "/up", "target": "/up", "consistency": "cached",
                 "bind": {"create_host_path": true}},
                {"type": "bind", "source": "/abs", "target": "/abs", "bind": {"create_host_path": true}},
                {"type": "bind", "source": "/proj", "target": "/code", "bind": {"create_host_path": true}},
                {"type": "volume", "target": "c"},
                {"type": "volume", "source": "named", "target": "/n", "bind": {"selinux": "Z"}, "volume": {}}
            ])
        );
        let vols: Vec<model::ServiceVolume> = serde_json::from_value(s["volumes"].clone()).unwrap();
        assert_eq!(vols.len(), 9);
    }

    #[test]
    fn volumes_windows_and_variables() {
        let v = parse_volume("C:\\data:/data").unwrap();
        assert_eq!(
            (v.source.as_str(), v.target.as_str()),
            ("C:\\data", "/data")
        );
        assert!(is_file_path(&v.source));
        let v = parse_volume("${HOME:-/x}:/data").unwrap();
        assert_eq!(
            (v.source.as_str(), v.target.as_str()),
            ("${HOME:-/x}", "/data")
        );
        let v = parse_volume("a/").unwrap();
        assert_eq!((v.target.as_str(), v.short), ("a", true));
        let v = parse_volume("C:\\path").unwrap();
        assert_eq!((v.source.as_str(), v.target.as_str()), ("", "C:\\path"));
    }

    #[test]
    fn volumes_long_syntax() {
        let s = svc(
            "volumes:\n  - {type: bind, source: ./opt, target: /opt, read_only: \"true\", bind: {create_host_path: \"false\"}}\n  - {type: volume, source: v, target: /v, volume: {nocopy: \"yes\", labels: [a=b]}}\n  - {type: tmpfs, target: /t, tmpfs: {size: 10000, mode: \"1777\"}}",
        );
        assert_eq!(
            s["volumes"],
            json!([
                {"type": "bind", "source": "/proj/opt", "target": "/opt", "read_only": true, "bind": {"create_host_path": false}},
                {"type": "volume", "source": "v", "target": "/v", "volume": {"nocopy": true, "labels": {"a": "b"}}},
                {"type": "tmpfs", "target": "/t", "tmpfs": {"size": 10000, "mode": 1023}}
            ])
        );
    }

    #[test]
    fn volume_errors() {
        for (spec, needle) in [
            ("/foo:/foo:ro:foo", "too many colons"),
            (":foo", "empty section between colons"),
            ("/foo::ro", "empty section between colons"),
            ("", "invalid empty volume spec"),
        ] {
            let e = svc_err(&format!("volumes: [\"{spec}\"]"));
            assert!(
                e.contains(needle) && e.contains("compose.yaml:3:15"),
                "{spec}: {e}"
            );
        }
        let e = svc_err("volumes:\n  - {type: bind, target: /x}");
        assert!(e.contains("field source must not be empty"), "{e}");
    }

    #[test]
    fn no_path_resolution() {
        let src = "services:\n  s:\n    build: ./b\n    volumes: [\"./src:/app\", \"~/x:/x\"]\n    env_file: .env\nsecrets:\n  k: {file: ./k}\n";
        let out = canon_file_opts(src, false).unwrap();
        let s = &out["services"]["s"];
        assert_eq!(s["build"]["context"], json!("./b"));
        assert_eq!(s["volumes"][0]["source"], json!("./src"));
        assert_eq!(s["volumes"][1]["source"], json!("~/x"));
        assert_eq!(s["env_file"][0]["path"], json!(".env"));
        assert_eq!(out["secrets"]["k"]["file"], json!("./k"));
    }

    #[test]
    fn paths_are_cleaned_lexically() {
        let (sources, _) = parse("");
        let ctx = ctx_with(&sources, Path::new("/proj/sub/"), true);
        assert_eq!(resolve_path("./a/../b", &ctx), "/proj/sub/b");
        assert_eq!(resolve_path("../../../..", &ctx), "/");
        assert_eq!(resolve_path(".", &ctx), "/proj/sub");
        assert_eq!(resolve_path("/abs/./kept/", &ctx), "/abs/./kept/");
        assert_eq!(resolve_path("~", &ctx), "/home/me");
        assert_eq!(resolve_path("~/a/../b", &ctx), "/home/me/b");
        assert_eq!(resolve_path("C:\\x", &ctx), "C:\\x");
        let no_home = Context {
            home: None,
            ..ctx_with(&sources, Path::new("/p"), true)
        };
        assert_eq!(resolve_path("~/x", &no_home), "~/x");
        assert_eq!(clean_unix("a/./b/../../.."), "..");
        assert_eq!(clean_unix("//x//y/"), "/x/y");
    }

    // --- top level ----------------------------------------------------------------------

    #[test]
    fn top_level_resources() {
        let out = canon_file(
            "networks:\n  n1:\n  n2: {external: {name: real}}\n  n3: {external: \"true\", internal: \"false\", driver_opts: {mtu: 1500}, labels: [a=b], ipam: {config: [{subnet: 10.0.0.0/24, aux_addresses: {h: 10.0.0.5}}]}}\nvolumes:\n  v1:\n  v2: {external: {name: ext}, name: ext}\n  v3: {driver: local, driver_opts: {o: bind, type: none, device: ./data}}\nsecrets:\n  s1: {file: ./s}\n  s2: {file: ~/s}\n  s3: {external: {name: x}}\nconfigs:\n  c1: {file: /abs/c}\n",
        );
        assert_eq!(out["networks"]["n1"], json!({}));
        assert_eq!(
            out["networks"]["n2"],
            json!({"external": true, "name": "real"})
        );
        assert_eq!(
            out["networks"]["n3"],
            json!({"external": true, "internal": false, "driver_opts": {"mtu": "1500"}, "labels": {"a": "b"},
                   "ipam": {"config": [{"subnet": "10.0.0.0/24", "aux_addresses": {"h": "10.0.0.5"}}]}})
        );
        assert_eq!(out["volumes"]["v1"], json!({}));
        assert_eq!(
            out["volumes"]["v2"],
            json!({"external": true, "name": "ext"})
        );
        assert_eq!(
            out["volumes"]["v3"]["driver_opts"]["device"],
            json!("/proj/data")
        );
        assert_eq!(out["secrets"]["s1"]["file"], json!("/proj/s"));
        assert_eq!(out["secrets"]["s2"]["file"], json!("/home/me/s"));
        assert_eq!(out["secrets"]["s3"], json!({"external": true, "name": "x"}));
        assert_eq!(out["configs"]["c1"]["file"], json!("/abs/c"));
        let p =
            project(&json!({"name": "p", "networks": out["networks"], "volumes": out["volumes"]}));
        assert!(p.networks["n2"].external);
    }

    #[test]
    fn external_name_conflict() {
        let e =
            canon_file_opts("volumes:\n  v: {name: a, external: {name: b}}\n", true).unwrap_err();
        assert!(
            e.contains("name and external.name conflict") && e.contains("compose.yaml:2:3"),
            "{e}"
        );
    }

    #[test]
    fn include_forms() {
        let out = canon_file(
            "include:\n  - ./a/compose.yaml\n  - path: [b.yaml, /c.yaml]\n    project_directory: ./b\n    env_file: ./b.env\n  - {path: ~/d.yaml, env_file: [x.env]}\n",
        );
        assert_eq!(
            out["include"],
            json!([
                {"path": ["/proj/a/compose.yaml"]},
                {"path": ["/proj/b.yaml", "/c.yaml"], "project_directory": "/proj/b", "env_file": ["/proj/b.env"]},
                {"path": ["/home/me/d.yaml"], "env_file": ["/proj/x.env"]}
            ])
        );
    }

    #[test]
    fn develop_and_hooks() {
        let s = svc(
            "develop:\n  watch:\n    - {path: [./a, ./b], action: sync, target: /app, ignore: node_modules}\n    - {path: ./c, action: rebuild}\npost_start:\n  - {command: echo hi, environment: [A=1]}",
        );
        assert_eq!(
            s["develop"]["watch"],
            json!([
                {"path": "/proj/a", "action": "sync", "target": "/app", "ignore": ["node_modules"]},
                {"path": "/proj/b", "action": "sync", "target": "/app", "ignore": ["node_modules"]},
                {"path": "/proj/c", "action": "rebuild"}
            ])
        );
        assert_eq!(
            s["post_start"],
            json!([{"command": ["echo", "hi"], "environment": {"A": "1"}}])
        );
    }

    #[test]
    fn reset_tags_and_nulls_are_left_alone() {
        let out =
            canon_file("services:\n  a:\n    ports: !reset []\n    command: !reset null\n  b:\n");
        assert_eq!(out["services"]["a"]["ports"], json!([]));
        assert_eq!(out["services"]["b"], json!({}));
        let (sources, mut node) = parse("services:\n  a:\n    ports: !override [\"80\"]\n");
        let ctx = ctx_with(&sources, Path::new("/proj"), true);
        canonicalize_file(&mut node, &ctx).unwrap();
        let ports = node
            .get("services")
            .and_then(|s| s.get("a"))
            .and_then(|a| a.get("ports"))
            .unwrap();
        assert_eq!(ports.tag, Some(Tag::Override));
        assert_eq!(ports.key_loc.map(|l| l.line), Some(3));
    }

    #[test]
    fn canonicalize_service_alone() {
        let (sources, mut node) = parse("image: x\nports: [\"80:80\"]\ndepends_on: [db]\n");
        let ctx = ctx_with(&sources, Path::new("/proj"), true);
        canonicalize_service(&mut node, &ctx).unwrap();
        let service: model::Service = serde_json::from_value(node.to_json()).unwrap();
        assert_eq!(service.ports[0].published.as_deref(), Some("80"));
        assert!(service.depends_on["db"].required);
        let (sources, mut bad) = parse("[1, 2]\n");
        let ctx = ctx_with(&sources, Path::new("/proj"), true);
        assert!(canonicalize_service(&mut bad, &ctx).is_err());
    }

    #[test]
    fn conformance_files_deserialize() {
        let mut files = Vec::new();
        let mut stack = vec![corpus()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml")
                    && !p.to_string_lossy().contains("/schema/")
                    && !p.to_string_lossy().contains("/commands/")
                    && !p.ends_with("expected.yaml")
                {
                    files.push(p);
                }
            }
        }
        assert!(files.len() > 20, "found {}", files.len());
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            if text.contains('$') {
                continue; // needs interpolation first
            }
            let mut sources = Sources::default();
            let id = sources.add(&file, &text);
            let Ok(mut root) = yaml::parse(&text, id) else {
                continue;
            };
            let dir = file.parent().unwrap().to_path_buf();
            let ctx = Context {
                sources: &sources,
                base_dir: &dir,
                home: Some(Path::new("/h")),
                resolve_paths: true,
            };
            canonicalize_file(&mut root, &ctx)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let mut json = root.to_json();
            json["name"] = json!("p");
            if let Some(services) = json.get_mut("services").and_then(|s| s.as_object_mut()) {
                for s in services.values_mut() {
                    // Uninterpolated `${...}` in typed fields is not this module's concern.
                    if s.to_string().contains("${") {
                        *s = json!({});
                    }
                }
            }
            if json.to_string().contains("${") {
                continue;
            }
            if let Err(e) = serde_json::from_value::<model::Project>(json) {
                panic!("{}: {e}", file.display());
            }
        }
    }

    // --- properties -----------------------------------------------------------------

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn port_strings_never_panic(spec in "[0-9a-fA-F:.\\[\\]/-]{0,24}|[0-9]{1,5}(-[0-9]{1,5})?(:[0-9]{1,5}(-[0-9]{1,5})?)?(/(tcp|udp|sctp|x))?") {
            let _ = parse_port_spec(&spec);
            let src = format!("services:\n  s:\n    ports: [{}]\n", serde_json::to_string(&spec).unwrap());
            let _ = canon_file_opts(&src, true);
        }

        #[test]
        fn arbitrary_port_text_never_panics(spec in any::<String>()) {
            let _ = parse_port_spec(&spec);
        }

        #[test]
        fn volume_strings_never_panic(spec in "[a-zA-Z0-9:./~,${}\\\\ _-]{0,32}") {
            let _ = parse_volume(&spec);
            let src = format!("services:\n  s:\n    volumes: [{}]\n", serde_json::to_string(&spec).unwrap());
            let _ = canon_file_opts(&src, true);
            let _ = canon_file_opts(&src, false);
        }

        #[test]
        fn arbitrary_volume_text_never_panics(spec in any::<String>()) {
            let _ = parse_volume(&spec);
            let _ = shell_split(&spec);
        }

        #[test]
        fn canonical_is_idempotent(
            port in "([0-9]{1,4}:)?[0-9]{1,4}(/udp)?",
            vol in "(\\./[a-z]{1,5}|~/[a-z]{1,5}|[a-z]{1,5}|/[a-z]{1,5}):/[a-z]{1,5}(:(ro|rw|z|nocopy|rshared))?",
            cmd in "[a-z '\"]{0,20}",
            env in "[A-Z]{1,3}(=[a-z0-9]{0,3})?",
            host in "[a-z]{1,5}[:=][0-9.]{1,9}",
        ) {
            let src = format!(
                "services:\n  s:\n    ports: [{p}]\n    volumes: [{v}]\n    command: {c}\n    environment: [{e}]\n    labels: [{e}]\n    extra_hosts: [{h}]\n    depends_on: [x]\n    build: .\n    env_file: a.env\n    secrets: [s]\n",
                p = serde_json::to_string(&port).unwrap(),
                v = serde_json::to_string(&vol).unwrap(),
                c = serde_json::to_string(&cmd).unwrap(),
                e = serde_json::to_string(&env).unwrap(),
                h = serde_json::to_string(&host).unwrap(),
            );
            // canon_file_opts asserts that a second pass changes nothing.
            let _ = canon_file_opts(&src, true);
            let _ = canon_file_opts(&src, false);
        }
    }
}
