//! `wharf plan`: what `up` would change, one line per operation, without changing
//! anything. Exits 0 when there is nothing to do and 2 when changes are pending, so CI
//! can ask "is the host in step with the Compose files?".

use clap::{Args, ValueEnum};

use super::image::state_root;
use super::{ExitCode, GlobalArgs, load_project};
use crate::compose::NormalizeOptions;
use crate::network::linux::Networks;
use crate::plan::{Options, desired, diff};
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
    let opts = global.load_options(&[])?;
    let project = load_project(&opts, NormalizeOptions::default())?.project;
    for (service, _) in &args.scale {
        if !project.services.contains_key(service) {
            anyhow::bail!("--scale: no such service: {service}");
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
    let options = Options {
        force_recreate: args.force_recreate,
        no_recreate: args.no_recreate,
        remove_orphans: args.remove_orphans,
        no_start: false,
        scale: args.scale.into_iter().collect(),
    };
    let plan = diff(&desired(&project), &live, &options);
    match args.format {
        PlanFormat::Text => print!("{plan}"),
        PlanFormat::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
    }
    Ok(if plan.is_empty() { 0 } else { 2 })
}
