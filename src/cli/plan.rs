//! `wharf plan`: what `up` would change, one line per operation, without changing
//! anything. Exits 0 when there is nothing to do and 2 when changes are pending, so CI
//! can ask "is the host in step with the Compose files?". `--diff` shows, under each
//! container to be recreated, what changed in its configuration.

use clap::{Args, ValueEnum};

use super::image::state_root;
use super::{ExitCode, GlobalArgs, load_project};
use crate::compose::NormalizeOptions;
use crate::network::linux::Networks;
use crate::plan::{Live, Options, Plan, config_diff, desired, diff};
use crate::runtime::Runtime;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: PlanFormat,
    #[command(flatten)]
    pub recreate: RecreateArgs,
    /// Show what changed in the configuration of each container to be recreated
    #[arg(long)]
    pub diff: bool,
    /// Plan only these services (and their dependencies, unless --no-deps)
    pub services: Vec<String>,
}

/// The flags that shape a plan, the same for `plan` and `up` (so that `plan` shows exactly
/// what `up` with the same flags would do).
#[derive(Debug, Args)]
pub struct RecreateArgs {
    /// Recreate containers even if their configuration and image have not changed
    #[arg(long, conflicts_with = "no_recreate")]
    pub force_recreate: bool,
    /// Never recreate existing containers
    #[arg(long)]
    pub no_recreate: bool,
    /// Remove containers for services not defined in the Compose file
    #[arg(long, env = "COMPOSE_REMOVE_ORPHANS")]
    pub remove_orphans: bool,
    /// Scale SERVICE to NUM instances (SERVICE=NUM)
    #[arg(long, value_parser = parse_scale)]
    pub scale: Vec<(String, u64)>,
    /// Don't plan linked services
    #[arg(long)]
    pub no_deps: bool,
    /// Recreate dependent containers (incompatible with --no-recreate)
    #[arg(long, conflicts_with = "no_recreate")]
    pub always_recreate_deps: bool,
    /// Recreate anonymous volumes instead of retrieving data from the previous containers
    #[arg(short = 'V', long)]
    pub renew_anon_volumes: bool,
}

impl RecreateArgs {
    /// The planner's options for these flags, the services named and `up --no-start`;
    /// `env_orphans` is `COMPOSE_REMOVE_ORPHANS` from the project's `.env`.
    pub fn options(&self, services: &[String], env_orphans: bool, no_start: bool) -> Options {
        Options {
            force_recreate: self.force_recreate,
            no_recreate: self.no_recreate,
            remove_orphans: self.remove_orphans || env_orphans,
            no_start,
            scale: self.scale.iter().cloned().collect(),
            services: services.to_vec(),
            no_deps: self.no_deps,
            always_recreate_deps: self.always_recreate_deps,
            renew_anon_volumes: self.renew_anon_volumes,
            one_off: None,
        }
    }
}

pub(super) fn parse_scale(text: &str) -> Result<(String, u64), String> {
    let (service, n) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected SERVICE=NUM"))?;
    let n = n
        .parse()
        .map_err(|_| format!("{text:?}: {n:?} is not a number"))?;
    Ok((service.to_string(), n))
}

pub fn run(global: &GlobalArgs, args: PlanArgs) -> anyhow::Result<ExitCode> {
    // Services named on the command line are enabled whatever their profiles.
    let opts = global.load_options(&args.services)?;
    let loaded = load_project(&opts, NormalizeOptions::default())?;
    let env_orphans = super::up::remove_orphans_of(&loaded.loaded.environment);
    let project = loaded.project;
    for service in args
        .recreate
        .scale
        .iter()
        .map(|(s, _)| s)
        .chain(&args.services)
    {
        if !project.services.contains_key(service) {
            anyhow::bail!("no such service: {service}");
        }
    }
    let root = state_root();
    let exe = std::env::current_exe()?;
    let live = crate::state::observe(
        &project.name,
        &Runtime::new(&root, &exe),
        &Networks::new(&root, &exe),
        Default::default(),
    )?;
    let options = args.recreate.options(&args.services, env_orphans, false);
    let want = desired(&project);
    let plan = diff(&want, &live, &options);
    let diffs = if args.diff {
        diffs(&plan, &want, &live)
    } else {
        Vec::new()
    };
    match args.format {
        PlanFormat::Text => {
            let mut out = String::new();
            for step in &plan.steps {
                out.push_str(&format!("{step}\n"));
                if let Some((_, text)) = diffs.iter().find(|(id, _)| *id == step.id) {
                    for line in text.lines() {
                        out.push_str(&format!("    {line}\n"));
                    }
                }
            }
            for w in &plan.warnings {
                out.push_str(&format!("warning: {w}\n"));
            }
            print!("{out}");
        }
        PlanFormat::Json => {
            let mut value = serde_json::to_value(&plan)?;
            if args.diff
                && let Some(object) = value.as_object_mut()
            {
                // Keyed by the id of the step that creates the replacement.
                let map: serde_json::Map<String, serde_json::Value> = diffs
                    .into_iter()
                    .map(|(id, text)| (id.to_string(), text.into()))
                    .collect();
                object.insert("diffs".into(), map.into());
            }
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
    }
    Ok(if plan.is_empty() { 0 } else { 2 })
}

/// For each step that creates a replacement container: its id and the diff of the
/// replaced container's recorded config against the wanted one (skipped when the
/// container recorded none, or nothing in it changed, e.g. a new image digest).
fn diffs(plan: &Plan, want: &crate::plan::Desired, live: &Live) -> Vec<(usize, String)> {
    plan.steps
        .iter()
        .filter_map(|step| {
            let name = plan.replaced_by(step)?;
            let old = live.containers.iter().find(|c| c.name == name)?;
            let new = want.services.get(&old.service)?;
            let text = config_diff(old.config.as_ref()?, &new.config);
            (!text.is_empty()).then_some((step.id, text))
        })
        .collect()
}
