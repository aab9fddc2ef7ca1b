//! `wharf image …`: the local image store (list, inspect, load, remove, prune), and the hidden
//! fixture builder the tests and the example use to make an image without any registry.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{ExitCode, GlobalArgs, print};
use crate::image::{fixture, layout, reference::Reference, store::Store};

/// Where wharf keeps its state: `WHARF_ROOT`, default `/var/lib/wharf`.
pub fn state_root() -> PathBuf {
    std::env::var_os("WHARF_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/wharf"))
}

pub fn open_store() -> anyhow::Result<Store> {
    Ok(Store::open(&state_root().join("images"))?)
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images in the store
    Ls {
        /// Only print manifest digests
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show an image's manifest digest and configuration as JSON
    Inspect { image: String },
    /// Load images from a `docker save`/OCI archive (-i) or an OCI layout directory (--dir)
    Load {
        #[arg(short = 'i', long = "input", conflicts_with = "dir")]
        input: Option<PathBuf>,
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Name for images the layout does not name itself
        #[arg(long)]
        name: Option<String>,
    },
    /// Pull images from their registries
    Pull(super::pull::ImagePullArgs),
    /// Remove image references (blobs go with `prune`)
    Rm {
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove blobs and unpacked layers no image references
    Prune,
}

#[derive(Debug, Args)]
pub struct FixtureArgs {
    /// Output OCI layout directory
    #[arg(long)]
    pub out: PathBuf,
    /// The name recorded in the layout
    #[arg(long, default_value = "wharf.test/busybox:1")]
    pub tag: String,
    /// The static busybox binary (Debian's busybox-static)
    #[arg(long, default_value = "/bin/busybox")]
    pub busybox: PathBuf,
}

fn normalized(name: &str) -> anyhow::Result<String> {
    Ok(Reference::parse(name)?.to_string())
}

pub fn run(global: &GlobalArgs, cmd: ImageCommand) -> anyhow::Result<ExitCode> {
    let store = open_store()?;
    match cmd {
        ImageCommand::Pull(args) => return super::pull::run_image_pull(global, args),
        ImageCommand::Ls { quiet } => {
            let mut out = if quiet {
                String::new()
            } else {
                "REFERENCE\tDIGEST\n".to_string()
            };
            for (reference, digest) in store.list()? {
                let familiar = Reference::parse(&reference)
                    .map(|r| r.familiar())
                    .unwrap_or(reference);
                if quiet {
                    out.push_str(&format!("{digest}\n"));
                } else {
                    out.push_str(&format!("{familiar}\t{digest}\n"));
                }
            }
            print(&out)?;
        }
        ImageCommand::Inspect { image } => {
            let reference = normalized(&image)?;
            let Some(manifest) = store.resolve(&reference)? else {
                anyhow::bail!("no such image: {image}");
            };
            let img = store.image(&manifest)?;
            let value = serde_json::json!({
                "Reference": reference,
                "ManifestDigest": img.manifest_digest,
                "ConfigDigest": img.config_digest,
                "Layers": img.layers().iter().map(|l| l.digest().to_string()).collect::<Vec<_>>(),
                "Config": img.config,
                "Healthcheck": store.healthcheck(&img)?,
            });
            print(&(serde_json::to_string_pretty(&value)? + "\n"))?;
        }
        ImageCommand::Load { input, dir, name } => {
            let loaded = match (input, dir) {
                (Some(file), None) => layout::load_archive(&store, &file)?,
                (None, Some(dir)) => layout::load_layout(&store, &dir, name.as_deref())?,
                _ => anyhow::bail!("give an archive with -i FILE or a layout with --dir DIR"),
            };
            let mut out = String::new();
            for (reference, digest) in loaded {
                out.push_str(&format!("Loaded image: {reference} ({digest})\n"));
            }
            print(&out)?;
        }
        ImageCommand::Rm { images } => {
            let mut missing = Vec::new();
            for image in images {
                if store.remove(&normalized(&image)?)? {
                    print(&format!("Untagged: {image}\n"))?;
                } else {
                    missing.push(image);
                }
            }
            if !missing.is_empty() {
                anyhow::bail!("no such image: {}", missing.join(", "));
            }
        }
        ImageCommand::Prune => {
            let removed = store.prune()?;
            print(&format!(
                "Removed {} unreferenced blobs and layers\n",
                removed.len()
            ))?;
        }
    }
    Ok(0)
}

pub fn build_fixture(args: FixtureArgs) -> anyhow::Result<ExitCode> {
    let spec = fixture::FixtureSpec {
        busybox: &args.busybox,
        tag: &args.tag,
    };
    let digest = fixture::build_busybox_layout(&spec, &args.out)?;
    print(&format!("{} {digest}\n", args.out.display()))?;
    Ok(0)
}
