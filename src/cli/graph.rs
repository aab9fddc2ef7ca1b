//! `wharf graph`: the project's resource graph as Graphviz DOT or Mermaid.

use clap::{Args, ValueEnum};

use super::{ExitCode, GlobalArgs, load_project, print};
use crate::compose::NormalizeOptions;

#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum GraphFormat {
    #[default]
    Dot,
    Mermaid,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
    /// Services to include (and what they need); default: all
    pub services: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: GraphArgs) -> anyhow::Result<ExitCode> {
    let opts = global.load_options(&args.services)?;
    let loaded = load_project(&opts, NormalizeOptions::default())?;
    let graph = crate::graph::build(&loaded.project);
    let text = match args.format {
        GraphFormat::Dot => graph.to_dot(&loaded.project.name),
        GraphFormat::Mermaid => graph.to_mermaid(),
    };
    print(&text)?;
    Ok(0)
}
