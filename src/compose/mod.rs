//! Compose files in, a validated and normalized [`model::Project`] out.
//!
//! The pipeline, each step in its own module:
//! `loader` (which files, which environment, which name) → `yaml` (parse, keeping locations)
//! → `interpolate` (`${VAR:-default}`) → `schema` (the official JSON schema) → `canonical`
//! (short syntax to long) → `extends`/`include` (in `loader`) → `merge` (several files) →
//! profiles → `normalize` (defaults, typed model) → `validate` (references, cycles).
//! `hash` fingerprints a service for the reconciler.
//!
//! This module is pure in the sense of DESIGN.md: it reads the files it is pointed at and
//! nothing else, takes the environment as an argument, and never imports the side-effect
//! modules (`runtime`, `network`, `image`, `state`, `apply`, `watch`, `cli`).

pub mod canonical;
pub mod diag;
pub mod dotenv;
pub mod hash;
pub mod interpolate;
pub mod loader;
pub mod merge;
pub mod model;
pub mod normalize;
pub mod schema;
#[cfg(test)]
pub(crate) mod testing;
pub mod validate;
pub mod variables;
pub mod yaml;

pub use diag::ComposeError;
pub use loader::{Environment, LoadOptions, Loaded};
pub use model::Project;
pub use normalize::NormalizeOptions;

/// A loaded project: the typed model plus what the loader learned on the way.
#[derive(Debug, Clone)]
pub struct LoadedProject {
    pub project: Project,
    pub loaded: Loaded,
}

/// Load, normalize and validate the project described by `opts`.
pub fn load(
    opts: &LoadOptions,
    env: &Environment,
    norm: NormalizeOptions,
) -> Result<LoadedProject, ComposeError> {
    let mut loaded = loader::load(opts, env)?;
    let project = normalize::normalize(
        &mut loaded.tree,
        &loaded.name.clone(),
        &loaded.environment.clone(),
        &mut loaded.sources,
        norm,
    )?;
    if norm.consistency {
        validate::validate(&project, &loaded.tree, &loaded.sources)?;
    } else {
        validate::check_cycles(&project, &loaded.tree, &loaded.sources)?;
    }
    Ok(LoadedProject { project, loaded })
}
