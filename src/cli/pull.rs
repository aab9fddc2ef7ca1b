//! `wharf pull` (the project's images), `wharf images` (the images the project uses) and
//! `wharf image pull` (any image by name): argument handling and output around
//! [`crate::image::registry`].

use std::sync::Arc;

use clap::{Args, ValueEnum};
use futures_util::{StreamExt, stream};

use super::image::{open_store, state_root};
use super::progress::{Mode, PullProgress, human_size};
use super::{ExitCode, GlobalArgs, load_project, print};
use crate::compose::NormalizeOptions;
use crate::image::auth::{Credentials, Insecure, docker_config_path};
use crate::image::reference::Reference;
use crate::image::registry::{self, PullOptions, PullPolicy};
use crate::image::store::Store;

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum PolicyFlag {
    Missing,
    Always,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Pull without printing progress information
    #[arg(short, long)]
    pub quiet: bool,
    /// Pull what it can and ignore images with pull failures
    #[arg(long)]
    pub ignore_pull_failures: bool,
    /// Apply pull policy ("missing"|"always")
    #[arg(long, value_enum)]
    pub policy: Option<PolicyFlag>,
    /// Also pull services declared as dependencies
    #[arg(long)]
    pub include_deps: bool,
    /// Services to pull images for (default: all)
    pub services: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum ImagesFormat {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Format the output
    #[arg(long, value_enum, default_value_t = ImagesFormat::Table)]
    pub format: ImagesFormat,
    /// Only display image ids (manifest digests)
    #[arg(short, long)]
    pub quiet: bool,
    /// Services to list images of (default: all)
    pub services: Vec<String>,
}

/// Credentials from the Docker config and the plain-HTTP list, from the environment.
pub fn pull_options(unpack: bool) -> anyhow::Result<PullOptions> {
    let docker_config = std::env::var_os("DOCKER_CONFIG").map(std::path::PathBuf::from);
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let path = docker_config_path(docker_config.as_deref(), home.as_deref());
    Ok(PullOptions {
        credentials: Credentials::load(path.as_deref())?,
        insecure: Insecure::load(
            &state_root().join("config.json"),
            std::env::var("WHARF_INSECURE_REGISTRIES").ok().as_deref(),
        )?,
        concurrency: 0,
        unpack,
    })
}

/// The runtime pulls run on. Pulls never fork, so a multi-threaded runtime is safe here.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// One image to bring in, and the services that use it (for messages).
struct Wanted {
    image: String,
    services: Vec<String>,
    policy: PullPolicy,
}

/// Pulls `wanted` concurrently (at most `parallel` at once; -1 is unlimited), reporting
/// through `progress`. Returns the failures as (image, message).
fn pull_all(
    store: &Arc<Store>,
    wanted: &[Wanted],
    opts: &PullOptions,
    progress: &PullProgress,
    parallel: i64,
    say_present: bool,
) -> anyhow::Result<Vec<(String, String)>> {
    let limit = usize::try_from(parallel)
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or(wanted.len().max(1));
    let rt = runtime()?;
    let results: Vec<_> = rt.block_on(
        stream::iter(wanted)
            .map(|w| async move {
                let result =
                    registry::ensure_image(store, &w.image, w.policy, opts, progress).await;
                (w, result)
            })
            .buffer_unordered(limit)
            .collect(),
    );
    let mut failures = Vec::new();
    for (w, result) in results {
        match result {
            Ok((manifest, None)) if say_present => {
                progress.message(&w.image, &format!("present ({manifest}), not pulled"));
            }
            Ok(_) => {}
            Err(e) => failures.push((w.services.join(", "), e.to_string())),
        }
    }
    Ok(failures)
}

/// `up`'s image step: every service's image brought into the store by its
/// `pull_policy` (default `missing`), or by `--pull` when given. Returns the failures as
/// (services, message); a service without an image is reported as one.
pub fn ensure_project_images(
    global: &GlobalArgs,
    project: &crate::compose::Project,
    flag: Option<&str>,
    quiet: bool,
) -> anyhow::Result<Vec<(String, String)>> {
    let progress = PullProgress::new(Mode::resolve(global.progress, quiet), true);
    let mut wanted: Vec<Wanted> = Vec::new();
    let mut failures = Vec::new();
    for (name, service) in &project.services {
        let Some(image) = &service.image else {
            failures.push((
                name.clone(),
                "no image (wharf does not build images)".to_string(),
            ));
            continue;
        };
        let text = flag.or(service.pull_policy.as_deref()).unwrap_or("missing");
        let policy = match PullPolicy::parse(text) {
            Ok(p) => p,
            Err(e) => {
                failures.push((name.clone(), e.to_string()));
                continue;
            }
        };
        match wanted.iter_mut().find(|w| &w.image == image) {
            Some(w) => w.services.push(name.clone()),
            None => wanted.push(Wanted {
                image: image.clone(),
                services: vec![name.clone()],
                policy,
            }),
        }
    }
    let store = Arc::new(open_store()?);
    let opts = pull_options(true)?;
    failures.extend(pull_all(
        &store,
        &wanted,
        &opts,
        &progress,
        global.parallel,
        false,
    )?);
    Ok(failures)
}

pub fn run_pull(global: &GlobalArgs, args: PullArgs) -> anyhow::Result<ExitCode> {
    let opts = global.load_options(&args.services)?;
    let loaded = load_project(&opts, NormalizeOptions::default())?;
    let mode = Mode::resolve(global.progress, args.quiet);
    let progress = PullProgress::new(mode, true);
    let mut wanted: Vec<Wanted> = Vec::new();
    for (name, service) in &loaded.project.services {
        if !args.include_deps && !args.services.is_empty() && !args.services.contains(name) {
            continue;
        }
        let Some(image) = &service.image else {
            progress.message(name, "skipped: no image (wharf does not build)");
            continue;
        };
        let policy = match (args.policy, service.pull_policy.as_deref()) {
            (Some(PolicyFlag::Always), _) => PullPolicy::Always,
            (Some(PolicyFlag::Missing), _) => PullPolicy::Missing,
            // Like Docker Compose: `pull` pulls, except what the file says never to pull.
            (None, Some("never")) => {
                progress.message(name, "skipped: pull_policy is never");
                continue;
            }
            (None, Some("build")) => {
                progress.message(name, "skipped: pull_policy is build");
                continue;
            }
            (None, _) => PullPolicy::Always,
        };
        match wanted.iter_mut().find(|w| &w.image == image) {
            Some(w) => w.services.push(name.clone()),
            None => wanted.push(Wanted {
                image: image.clone(),
                services: vec![name.clone()],
                policy,
            }),
        }
    }
    let store = Arc::new(open_store()?);
    let pull_opts = pull_options(true)?;
    let failures = pull_all(
        &store,
        &wanted,
        &pull_opts,
        &progress,
        global.parallel,
        true,
    )?;
    for (services, message) in &failures {
        let level = if args.ignore_pull_failures {
            "WARN"
        } else {
            "ERROR"
        };
        eprintln!("{level}: {services}: {message}");
    }
    Ok(if failures.is_empty() || args.ignore_pull_failures {
        0
    } else {
        1
    })
}

#[derive(Debug, Args)]
pub struct ImagePullArgs {
    /// Store the blobs only; unpack layers when a container first needs them
    #[arg(long)]
    pub no_unpack: bool,
    /// Pull without printing progress information
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn run_image_pull(global: &GlobalArgs, args: ImagePullArgs) -> anyhow::Result<ExitCode> {
    let mode = Mode::resolve(global.progress, args.quiet);
    let progress = PullProgress::new(mode, !args.no_unpack);
    let wanted: Vec<Wanted> = args
        .images
        .iter()
        .map(|image| Wanted {
            image: image.clone(),
            services: vec![image.clone()],
            policy: PullPolicy::Always,
        })
        .collect();
    let store = Arc::new(open_store()?);
    let failures = pull_all(
        &store,
        &wanted,
        &pull_options(!args.no_unpack)?,
        &progress,
        global.parallel,
        true,
    )?;
    // Each message already names its image.
    for (_, message) in &failures {
        eprintln!("ERROR: {message}");
    }
    Ok(if failures.is_empty() { 0 } else { 1 })
}

pub fn run_images(global: &GlobalArgs, args: ImagesArgs) -> anyhow::Result<ExitCode> {
    let opts = global.load_options(&args.services)?;
    let loaded = load_project(&opts, NormalizeOptions::default())?;
    let store = open_store()?;
    let mut rows = Vec::new();
    for (name, service) in &loaded.project.services {
        if !args.services.is_empty() && !args.services.contains(name) {
            continue;
        }
        let Some(image) = &service.image else {
            continue;
        };
        let parsed = Reference::parse(image)?;
        let manifest = store.resolve(&parsed.to_string())?;
        let size = match &manifest {
            Some(m) => Some(
                store
                    .image(m)?
                    .layers()
                    .iter()
                    .map(|l| l.size())
                    .sum::<u64>(),
            ),
            None => None,
        };
        rows.push((name.clone(), parsed, manifest, size));
    }
    let mut out = String::new();
    match (args.quiet, args.format) {
        (true, _) => {
            for (_, _, manifest, _) in &rows {
                if let Some(m) = manifest {
                    out.push_str(m);
                    out.push('\n');
                }
            }
        }
        (false, ImagesFormat::Json) => {
            let list: Vec<_> = rows
                .iter()
                .map(|(service, parsed, manifest, size)| {
                    serde_json::json!({
                        "Service": service,
                        "Repository": repository(parsed),
                        "Tag": parsed.tag().unwrap_or(""),
                        "ID": manifest,
                        "Size": size,
                    })
                })
                .collect();
            out = serde_json::to_string_pretty(&list)? + "\n";
        }
        (false, ImagesFormat::Table) => {
            let mut table = vec![[
                "SERVICE".to_string(),
                "REPOSITORY".to_string(),
                "TAG".to_string(),
                "IMAGE ID".to_string(),
                "SIZE".to_string(),
            ]];
            for (service, parsed, manifest, size) in &rows {
                table.push([
                    service.clone(),
                    repository(parsed),
                    parsed.tag().unwrap_or("<none>").to_string(),
                    manifest.as_deref().map_or("<missing>".to_string(), |m| {
                        m.trim_start_matches("sha256:").chars().take(12).collect()
                    }),
                    size.map_or("-".to_string(), human_size),
                ]);
            }
            out = render_table(&table);
        }
    }
    print(&out)?;
    Ok(0)
}

/// The familiar name without tag or digest: `busybox`, `127.0.0.1:5000/app`.
fn repository(parsed: &Reference) -> String {
    let familiar = parsed.familiar();
    let name = familiar.split('@').next().unwrap_or(&familiar);
    match (parsed.tag(), name.rsplit_once(':')) {
        (Some(tag), Some((repo, t))) if t == tag => repo.to_string(),
        _ => name.to_string(),
    }
}

/// Columns padded to their widest cell, three spaces apart, as Docker prints tables.
fn render_table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_drops_tag_and_digest_only() {
        let r = |s: &str| repository(&Reference::parse(s).expect("ref"));
        assert_eq!(r("busybox"), "busybox");
        assert_eq!(r("127.0.0.1:5000/app:1"), "127.0.0.1:5000/app");
        assert_eq!(r("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(r(&format!("app@sha256:{}", "a".repeat(64))), "app");
    }

    #[test]
    fn tables_pad_every_column_but_the_last() {
        let t = render_table(&[
            ["A".to_string(), "BB".to_string()],
            ["ccc".to_string(), "d".to_string()],
        ]);
        assert_eq!(t, "A     BB\nccc   d\n");
    }
}
