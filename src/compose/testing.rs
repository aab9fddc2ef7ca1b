//! For unit tests elsewhere in the crate: a Compose file loaded and normalized exactly as
//! the CLI loads a user's, from a temporary directory.

use super::model::Project;

/// `yaml` as project `name`.
pub fn project(yaml: &str, name: &str) -> Project {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("compose.yaml"), yaml).expect("writing compose.yaml");
    let options = super::LoadOptions {
        files: vec![dir.path().join("compose.yaml")],
        project_name: Some(name.into()),
        cwd: dir.path().to_path_buf(),
        ..Default::default()
    };
    super::load(
        &options,
        &super::Environment::default(),
        super::NormalizeOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e:?}"))
    .project
}
