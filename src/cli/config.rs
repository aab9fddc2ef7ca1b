//! `wharf config`: the normalized model in Docker Compose's canonical form, and the queries
//! around it (`--services`, `--hash`, `--variables`, ...).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{ExitCode, GlobalArgs, Reported, load_project, print};
use crate::compose::{self, NormalizeOptions, hash, variables};

#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum ConfigFormat {
    #[default]
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Format the output
    #[arg(long, value_enum, default_value_t = ConfigFormat::Yaml)]
    pub format: ConfigFormat,
    /// Save to file (default: stdout)
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Print the service names, one per line
    #[arg(long)]
    pub services: bool,
    /// Print the volume names, one per line
    #[arg(long)]
    pub volumes: bool,
    /// Print the network names, one per line
    #[arg(long)]
    pub networks: bool,
    /// Print the image names, one per line
    #[arg(long)]
    pub images: bool,
    /// Print the profile names, one per line
    #[arg(long)]
    pub profiles: bool,
    /// Print the environment used for interpolation
    #[arg(long)]
    pub environment: bool,
    /// Print the model variables and their default values
    #[arg(long)]
    pub variables: bool,
    /// Don't interpolate environment variables
    #[arg(long)]
    pub no_interpolate: bool,
    /// Don't normalize the Compose model
    #[arg(long)]
    pub no_normalize: bool,
    /// Don't resolve file paths
    #[arg(long)]
    pub no_path_resolution: bool,
    /// Don't check model consistency (references between resources)
    #[arg(long)]
    pub no_consistency: bool,
    /// Only validate the configuration, don't print anything
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Print the service config hash, one per line (`*` for all services)
    #[arg(long, value_name = "SERVICE|*")]
    pub hash: Option<String>,
    /// Services to render (and their dependencies); default: all
    #[arg(value_name = "SERVICE")]
    pub only: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let mut opts = global.load_options(&args.only)?;
    opts.skip_interpolation = args.no_interpolate;
    opts.skip_path_resolution = args.no_path_resolution;
    let norm = NormalizeOptions {
        defaults: !args.no_normalize,
        resolve_environment: !args.no_normalize && !args.no_interpolate,
        consistency: !args.no_consistency,
    };

    if args.variables {
        return variables_table(&opts, args.format);
    }

    let loaded = load_project(&opts, norm)?;
    let project = &loaded.project;
    if args.quiet {
        return Ok(0);
    }
    let lines = |items: Vec<String>| items.into_iter().map(|s| s + "\n").collect::<String>();
    let text = if args.services {
        lines(project.services.keys().cloned().collect())
    } else if args.volumes {
        lines(project.volumes.keys().cloned().collect())
    } else if args.networks {
        lines(project.networks.keys().cloned().collect())
    } else if args.images {
        lines(
            project
                .services
                .iter()
                .map(|(name, s)| {
                    s.image
                        .clone()
                        .unwrap_or_else(|| format!("{}-{name}", project.name))
                })
                .collect(),
        )
    } else if args.profiles {
        lines(loaded.loaded.all_profiles.iter().cloned().collect())
    } else if args.environment {
        lines(
            loaded
                .loaded
                .environment
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
        )
    } else if let Some(which) = &args.hash {
        let names: Vec<String> = if which == "*" {
            project.services.keys().cloned().collect()
        } else {
            which.split(',').map(|s| s.trim().to_string()).collect()
        };
        let mut out = String::new();
        for name in names {
            let Some(svc) = project.services.get(&name) else {
                return Err(Reported(format!("error: no such service: {name}\n")).into());
            };
            out.push_str(&format!("{name} {}\n", hash::service_hash(project, svc)));
        }
        out
    } else {
        render(project, args.format)?
    };
    match &args.output {
        Some(path) => std::fs::write(path, text)?,
        None => print(&text)?,
    }
    Ok(0)
}

/// The model as YAML or JSON. Literal `$` are written back as `$$`, so that the output is
/// itself a valid Compose file that interpolates to the same model (as Docker Compose does).
pub fn render(project: &compose::Project, format: ConfigFormat) -> anyhow::Result<String> {
    let mut value = serde_json::to_value(project)?;
    escape_dollars(&mut value);
    Ok(match format {
        ConfigFormat::Json => serde_json::to_string_pretty(&value)? + "\n",
        ConfigFormat::Yaml => compose::yaml::to_yaml(&value)?,
    })
}

fn escape_dollars(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) if s.contains('$') => *s = s.replace('$', "$$"),
        serde_json::Value::Array(a) => a.iter_mut().for_each(escape_dollars),
        serde_json::Value::Object(o) => o.values_mut().for_each(escape_dollars),
        _ => {}
    }
}

fn variables_table(opts: &compose::LoadOptions, format: ConfigFormat) -> anyhow::Result<ExitCode> {
    let mut raw = opts.clone();
    raw.skip_interpolation = true;
    let loaded = load_project(
        &raw,
        NormalizeOptions {
            defaults: false,
            resolve_environment: false,
            consistency: false,
        },
    )?;
    let mut vars = BTreeMap::new();
    for id in 0.. {
        let Some(file) = loaded.loaded.sources.get(id) else {
            break;
        };
        // Only Compose files: env files are sources too, but their `$` are not Compose's.
        if loaded.loaded.config_files.contains(&file.path)
            && let Ok(node) = compose::yaml::parse(&file.text, id)
        {
            variables::collect(&node, &mut vars);
        }
    }
    let text = if format == ConfigFormat::Json {
        serde_json::to_string_pretty(&vars)? + "\n"
    } else {
        let mut t = String::from("NAME\tREQUIRED\tDEFAULT VALUE\tALTERNATE VALUE\n");
        for v in vars.values() {
            t.push_str(&format!(
                "{}\t{}\t{}\t{}\n",
                v.name,
                v.required,
                v.default.as_deref().unwrap_or(""),
                v.alternate.as_deref().unwrap_or("")
            ));
        }
        t
    };
    print(&text)?;
    Ok(0)
}
