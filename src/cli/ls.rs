//! `wharf ls`: the Compose projects on this host, from the runtime's container records —
//! each with its containers' states counted (`running(3), exited(1)`), as `docker compose
//! ls` prints them, with the Compose files each was last brought up from (recorded by `up`,
//! [`crate::state::config_files`]). Projects with a running container only, unless `-a`.
//! Reading the records is one step; grouping and rendering ([`projects`], [`render_table`],
//! [`render_json`]) are pure. Nothing here changes the host.

use std::collections::BTreeMap;

use clap::{Args, ValueEnum};
use serde_json::json;

use super::ps::state_word;
use super::records;
use super::{ExitCode, GlobalArgs, print, table};
use crate::runtime::container::Status;

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Show all stopped Compose projects
    #[arg(short, long)]
    pub all: bool,
    /// Only display project names
    #[arg(short, long)]
    pub quiet: bool,
    /// Format the output
    #[arg(long, value_enum, default_value_t = LsFormat::Table)]
    pub format: LsFormat,
    /// Filter output based on conditions provided (supported: name=TEXT)
    #[arg(long)]
    pub filter: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LsFormat {
    Table,
    Json,
}

/// One project's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRow {
    pub name: String,
    /// `running(2), exited(1)`: the states' counts, states in alphabetical order.
    pub status: String,
    /// The Compose files it was made from, comma separated, when recorded.
    pub config_files: String,
}

/// Projects from `(project, status)` pairs of every container: running containers only
/// unless `all`, and projects whose name contains one of `names` when given; each with the
/// Compose files `files` records for it, comma separated as Docker Compose joins them.
pub fn projects(
    containers: &[(String, Status)],
    all: bool,
    names: &[String],
    files: &dyn Fn(&str) -> Vec<std::path::PathBuf>,
) -> Vec<ProjectRow> {
    let mut by_project: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for (project, status) in containers {
        let word = state_word(*status);
        if !all && word != "running" {
            continue;
        }
        if !names.is_empty() && !names.iter().any(|n| project.contains(n.as_str())) {
            continue;
        }
        *by_project
            .entry(project)
            .or_default()
            .entry(word)
            .or_default() += 1;
    }
    by_project
        .into_iter()
        .map(|(name, counts)| ProjectRow {
            name: name.to_string(),
            status: counts
                .iter()
                .map(|(state, n)| format!("{state}({n})"))
                .collect::<Vec<_>>()
                .join(", "),
            config_files: files(name)
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(","),
        })
        .collect()
}

pub fn render_table(rows: &[ProjectRow]) -> String {
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| vec![r.name.clone(), r.status.clone(), r.config_files.clone()])
        .collect();
    table::render(&["NAME", "STATUS", "CONFIG FILES"], &body)
}

/// A JSON array, as `docker compose ls --format json` prints it.
pub fn render_json(rows: &[ProjectRow]) -> String {
    let all: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| json!({"Name": r.name, "Status": r.status, "ConfigFiles": r.config_files}))
        .collect();
    format!("{}\n", serde_json::Value::Array(all))
}

/// The `name=` values of `--filter` (the only filter Docker Compose's `ls` has).
fn name_filters(filters: &[String]) -> anyhow::Result<Vec<String>> {
    filters
        .iter()
        .map(|f| match f.split_once('=') {
            Some(("name", v)) => Ok(v.to_string()),
            Some((key, _)) => anyhow::bail!("unsupported filter {key:?} (supported: name)"),
            None => anyhow::bail!("bad filter {f:?}: name=TEXT"),
        })
        .collect()
}

pub fn run(_global: &GlobalArgs, args: LsArgs) -> anyhow::Result<ExitCode> {
    let names = name_filters(&args.filter)?;
    let runtime = records::runtime()?;
    let containers: Vec<(String, Status)> = records::containers(&runtime, None)
        .into_iter()
        .map(|c| (c.project().to_string(), c.state.status))
        .collect();
    let root = super::image::state_root();
    let files = |project: &str| crate::state::config_files(&root, project);
    let rows = projects(&containers, args.all, &names, &files);
    let text = if args.quiet {
        rows.iter().map(|r| format!("{}\n", r.name)).collect()
    } else {
        match args.format {
            LsFormat::Table => render_table(&rows),
            LsFormat::Json => render_json(&rows),
        }
    };
    print(&text)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Vec<(String, Status)> {
        [
            ("shop", Status::Running),
            ("shop", Status::Running),
            ("shop", Status::Exited),
            ("shop", Status::Restarting),
            ("blog", Status::Exited),
            ("blog", Status::Created),
            ("wiki", Status::Stopping),
        ]
        .into_iter()
        .map(|(p, s)| (p.to_string(), s))
        .collect()
    }

    /// shop was brought up from two files, blog from one; wiki's are not recorded.
    fn files(project: &str) -> Vec<std::path::PathBuf> {
        match project {
            "shop" => vec![
                "/srv/shop/compose.yaml".into(),
                "/srv/shop/prod.yaml".into(),
            ],
            "blog" => vec!["/srv/blog/compose.yaml".into()],
            _ => Vec::new(),
        }
    }

    #[test]
    fn table_of_running_projects() {
        insta::assert_snapshot!(render_table(&projects(&host(), false, &[], &files)), @r"
        NAME      STATUS       CONFIG FILES
        shop      running(2)   /srv/shop/compose.yaml,/srv/shop/prod.yaml
        wiki      running(1)   
        ");
    }

    #[test]
    fn all_projects_as_json() {
        insta::assert_snapshot!(render_json(&projects(&host(), true, &[], &files)), @r#"[{"Name":"blog","Status":"created(1), exited(1)","ConfigFiles":"/srv/blog/compose.yaml"},{"Name":"shop","Status":"exited(1), restarting(1), running(2)","ConfigFiles":"/srv/shop/compose.yaml,/srv/shop/prod.yaml"},{"Name":"wiki","Status":"running(1)","ConfigFiles":""}]"#);
    }

    #[test]
    fn filters_by_name() {
        let names = name_filters(&["name=sho".into()]).unwrap();
        let rows = projects(&host(), true, &names, &files);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].name, "shop");
        assert!(name_filters(&["status=running".into()]).is_err());
        assert!(projects(&host(), false, &["blog".into()], &files).is_empty());
    }
}
