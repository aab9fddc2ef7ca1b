//! The container's root filesystem, assembled by the container's init inside its own,
//! fresh mount namespace: the overlay of the image layers and the container's writable
//! layer, then every mount of the spec in order (`/proc`, a tmpfs `/dev` with the standard
//! nodes, `/sys`, volumes, binds, tmpfs, the per-container `/etc` files), then
//! `pivot_root`, then Docker's masked and read-only paths and a read-only root if asked.
//!
//! Because all of it happens in a mount namespace that was made private first, no mount is
//! ever visible on the host, and all of them vanish with the container's last process: no
//! unmounting on teardown, no leak if anything dies half-way. Paths inside the container
//! are resolved without leaving the root, even through the image's symlinks. This module
//! must only ever run in that private namespace (the container's init), never in a wharf
//! process on the host.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, makedev, mknod};
use nix::sys::statvfs::{FsFlags, statvfs};

use super::cgroupfs::Hierarchies;
use super::container::{ContainerDir, LaunchConfig};
use super::spec::{
    BindRecursion, CgroupVersion, ContainerSpec, DeviceNode, JoinTarget, Mount, MountFlags,
    MountKind, Namespace, Propagation, TmpfsOptions,
};
use super::sys;

/// A failed step, naming what it touched.
#[derive(Debug, thiserror::Error)]
#[error("{step} {target}: {source}")]
pub struct RootfsError {
    pub step: String,
    pub target: String,
    #[source]
    pub source: io::Error,
}

type Result<T> = std::result::Result<T, RootfsError>;

fn fail(
    step: impl Into<String>,
    target: impl AsRef<Path>,
) -> impl FnOnce(io::Error) -> RootfsError {
    let step = step.into();
    let target = target.as_ref().display().to_string();
    move |source| RootfsError {
        step,
        target,
        source,
    }
}

fn nix_fail(
    step: impl Into<String>,
    target: impl AsRef<Path>,
) -> impl FnOnce(nix::Error) -> RootfsError {
    let f = fail(step, target);
    move |e| f(io::Error::from(e))
}

/// Where the containers this one joins have their first process, for `/proc/<pid>/…`.
pub type JoinPids<'a> = &'a dyn Fn(&JoinTarget) -> Option<i32>;

/// Builds the root filesystem and moves the calling process into it. Runs in the init,
/// after the namespaces are in place and before the process's identity is dropped.
pub fn setup(
    dir: &ContainerDir,
    config: &LaunchConfig,
    cgroups: &Hierarchies,
    join_pid: JoinPids<'_>,
) -> Result<()> {
    let spec = &config.spec;
    // Nothing below may propagate back to the host's mounts.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(nix_fail("making private", "/"))?;

    let root = dir.rootfs();
    mount_overlay(dir, config, &root)?;
    for (index, m) in spec.mounts.iter().enumerate() {
        mount_one(dir, config, cgroups, join_pid, &root, index, m)?;
    }
    make_devices(&root, spec)?;

    let cwd = resolve_in_root(&root, Path::new(&spec.process.cwd));
    if !cwd.exists() {
        // Docker creates a missing working directory (owned by root, 0755).
        fs::create_dir_all(&cwd).map_err(fail("creating the working directory", &cwd))?;
    }

    pivot_into(&root)?;

    for (key, value) in &spec.sysctls {
        let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
        fs::write(&path, value).map_err(fail(format!("setting sysctl {key}={value}"), &path))?;
    }
    for path in &spec.security.masked_paths {
        mask(Path::new(path))?;
    }
    for path in &spec.security.readonly_paths {
        readonly_bind(Path::new(path))?;
    }
    if spec.read_only_rootfs {
        remount(Path::new("/"), MsFlags::MS_RDONLY).map_err(fail("making read-only", "/"))?;
    }
    Ok(())
}

fn mount_overlay(dir: &ContainerDir, config: &LaunchConfig, root: &Path) -> Result<()> {
    let empty = dir.empty_lower();
    let lowers: Vec<PathBuf> = if config.layers.is_empty() {
        vec![empty]
    } else {
        config.layers.clone()
    };
    // The mount data is limited to one page: with many layers, absolute paths would not
    // fit. Layers of one store share a parent, so name them relative to it.
    let parent = lowers[0].parent().map(Path::to_path_buf);
    let relative = parent
        .as_ref()
        .filter(|p| lowers.iter().all(|l| l.parent() == Some(p)));
    let lowerdir = lowers
        .iter()
        .map(|l| match relative {
            Some(_) => l
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| l.clone()),
            None => l.clone(),
        })
        .map(|p| escape_overlay(&p))
        .collect::<Vec<_>>()
        .join(":");
    let data = format!(
        "lowerdir={lowerdir},upperdir={},workdir={}",
        escape_overlay(&dir.upper()),
        escape_overlay(&dir.work())
    );
    if let Some(parent) = relative {
        nix::unistd::chdir(parent.as_path()).map_err(nix_fail("entering", parent))?;
    }
    mount(
        Some("overlay"),
        root,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(nix_fail("mounting the overlay root filesystem on", root))?;
    nix::unistd::chdir("/").map_err(nix_fail("entering", "/"))?;
    Ok(())
}

/// overlayfs splits its options on `,` and lower dirs on `:`; both may be escaped with `\`.
fn escape_overlay(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        if matches!(c, ',' | ':' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `path` (absolute, as seen in the container) resolved inside `root`, following symlinks
/// as the container would see them, so that no symlink in the image can send a mount
/// outside the root. Missing components are kept as they are.
pub fn resolve_in_root(root: &Path, path: &Path) -> PathBuf {
    let mut resolved: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: Vec<std::ffi::OsString> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate: PathBuf = std::iter::once(root.as_os_str().to_os_string())
            .chain(resolved.iter().cloned())
            .chain(std::iter::once(part.clone()))
            .collect();
        match fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() && links < 40 => {
                links += 1;
                let Ok(target) = fs::read_link(&candidate) else {
                    resolved.push(part);
                    continue;
                };
                if target.is_absolute() {
                    resolved.clear();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(n.to_os_string()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => resolved.push(part),
        }
    }
    std::iter::once(root.as_os_str().to_os_string())
        .chain(resolved)
        .collect()
}

/// Creates the mount point `target` as a directory, or as an empty file when `file`.
fn ensure_mountpoint(target: &Path, file: bool) -> Result<()> {
    if file {
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(fail("creating the mount point", parent))?;
        }
        if fs::symlink_metadata(target).is_err() {
            fs::write(target, b"").map_err(fail("creating the mount point", target))?;
        }
        Ok(())
    } else {
        fs::create_dir_all(target).map_err(fail("creating the mount point", target))
    }
}

fn flags_of(f: &MountFlags) -> MsFlags {
    let mut out = MsFlags::empty();
    if f.read_only {
        out |= MsFlags::MS_RDONLY;
    }
    if f.nosuid {
        out |= MsFlags::MS_NOSUID;
    }
    if f.nodev {
        out |= MsFlags::MS_NODEV;
    }
    if f.noexec {
        out |= MsFlags::MS_NOEXEC;
    }
    out
}

fn mount_fs(fstype: &str, target: &Path, flags: MsFlags, data: Option<&str>) -> io::Result<()> {
    mount(Some(fstype), target, Some(fstype), flags, data).map_err(io::Error::from)
}

/// Bind-mounts `source` on `target` (recursively unless told), then applies `flags` with a
/// remount: the kernel ignores them on the bind itself.
fn bind(source: &Path, target: &Path, recursive: bool, flags: MsFlags) -> io::Result<()> {
    let mut bind_flags = MsFlags::MS_BIND;
    if recursive {
        bind_flags |= MsFlags::MS_REC;
    }
    mount(Some(source), target, None::<&str>, bind_flags, None::<&str>)?;
    if !flags.is_empty() {
        remount(target, flags)?;
    }
    Ok(())
}

/// Remounts the bind mount at `target` adding `flags`, keeping the flags it has: dropping
/// one that is locked (`nosuid` on `/proc`, say) would be refused.
fn remount(target: &Path, flags: MsFlags) -> io::Result<()> {
    let current = statvfs(target)?.flags();
    let mut keep = MsFlags::empty();
    for (st, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
    ] {
        if current.contains(st) {
            keep |= ms;
        }
    }
    mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | keep | flags,
        None::<&str>,
    )?;
    Ok(())
}

fn propagation_flags(p: Propagation) -> MsFlags {
    match p {
        Propagation::Private => MsFlags::MS_PRIVATE,
        Propagation::Rprivate => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        Propagation::Shared => MsFlags::MS_SHARED,
        Propagation::Rshared => MsFlags::MS_SHARED | MsFlags::MS_REC,
        Propagation::Slave => MsFlags::MS_SLAVE,
        Propagation::Rslave => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    }
}

fn tmpfs_data(t: &TmpfsOptions) -> String {
    let mut parts = Vec::new();
    if let Some(size) = t.size {
        parts.push(format!("size={size}"));
    }
    if let Some(mode) = t.mode {
        parts.push(format!("mode={mode:o}"));
    }
    if let Some(uid) = t.uid {
        parts.push(format!("uid={uid}"));
    }
    if let Some(gid) = t.gid {
        parts.push(format!("gid={gid}"));
    }
    if let Some(n) = t.nr_inodes {
        parts.push(format!("nr_inodes={n}"));
    }
    parts.join(",")
}

fn mount_one(
    dir: &ContainerDir,
    config: &LaunchConfig,
    cgroups: &Hierarchies,
    join_pid: JoinPids<'_>,
    root: &Path,
    index: usize,
    m: &Mount,
) -> Result<()> {
    let target = resolve_in_root(root, Path::new(&m.destination));
    let flags = flags_of(&m.flags);
    let what = |kind: &str| format!("mounting {kind} on");
    match &m.kind {
        MountKind::Proc => {
            ensure_mountpoint(&target, false)?;
            mount_fs("proc", &target, flags, None).map_err(fail(what("proc"), &m.destination))
        }
        MountKind::Sysfs => {
            ensure_mountpoint(&target, false)?;
            // A sysfs instance needs a network namespace of one's own; sharing the host's
            // (or another container's), the host's /sys is bound read-only, as runc does.
            mount_fs("sysfs", &target, flags, None)
                .or_else(|e| match e.raw_os_error() {
                    Some(libc::EPERM) | Some(libc::EBUSY) => {
                        bind(Path::new("/sys"), &target, true, flags | MsFlags::MS_RDONLY)
                    }
                    _ => Err(e),
                })
                .map_err(fail(what("sysfs"), &m.destination))
        }
        MountKind::Cgroup => mount_cgroups(config, cgroups, &target, flags),
        MountKind::Devpts => {
            ensure_mountpoint(&target, false)?;
            mount_fs(
                "devpts",
                &target,
                flags,
                Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
            )
            .map_err(fail(what("devpts"), &m.destination))
        }
        MountKind::Mqueue => {
            ensure_mountpoint(&target, false)?;
            mount_fs("mqueue", &target, flags, None)
                .or_else(|e| match e.raw_os_error() {
                    // The host's IPC namespace: its mqueue instance.
                    Some(libc::EPERM) | Some(libc::EBUSY) => {
                        bind(Path::new("/dev/mqueue"), &target, false, flags)
                    }
                    _ => Err(e),
                })
                .map_err(fail(what("mqueue"), &m.destination))
        }
        MountKind::Tmpfs(t) => {
            ensure_mountpoint(&target, false)?;
            let data = tmpfs_data(t);
            mount_fs(
                "tmpfs",
                &target,
                flags,
                (!data.is_empty()).then_some(data.as_str()),
            )
            .map_err(fail(what("tmpfs"), &m.destination))
        }
        MountKind::Bind {
            source,
            propagation,
            recursive,
            create_host_path,
        } => {
            let source = Path::new(source);
            if !source.exists() {
                if *create_host_path {
                    fs::create_dir_all(source)
                        .map_err(fail("creating the bind mount source", source))?;
                } else {
                    return Err(RootfsError {
                        step: "bind mount source".into(),
                        target: source.display().to_string(),
                        source: io::Error::new(
                            io::ErrorKind::NotFound,
                            "does not exist (create_host_path: false)",
                        ),
                    });
                }
            }
            ensure_mountpoint(&target, !source.is_dir())?;
            bind_with(source, &target, *recursive, flags, *propagation).map_err(fail(
                format!("bind-mounting {} on", source.display()),
                &m.destination,
            ))
        }
        MountKind::Volume {
            name,
            nocopy,
            subpath,
            ..
        } => {
            let data = config.volumes.get(name).ok_or_else(|| RootfsError {
                step: "finding the data of volume".into(),
                target: name.clone(),
                source: io::Error::new(io::ErrorKind::NotFound, "not prepared"),
            })?;
            let source = match subpath {
                Some(sub) => data.join(sub),
                None => data.clone(),
            };
            if !*nocopy && subpath.is_none() {
                // Docker's copy-up: an empty volume takes the image's content at its
                // destination (read here, below the overlay, before the volume hides it).
                super::volume::seed(&target, &source).map_err(|e| RootfsError {
                    step: format!("seeding volume {name} from"),
                    target: m.destination.clone(),
                    source: io::Error::other(e.to_string()),
                })?;
            }
            ensure_mountpoint(&target, false)?;
            bind_with(
                &source,
                &target,
                BindRecursion::Enabled,
                flags,
                Propagation::Rprivate,
            )
            .map_err(fail(format!("mounting volume {name} on"), &m.destination))
        }
        MountKind::EtcFile { file } => {
            let source = dir.etc_file(*file);
            ensure_mountpoint(&target, true)?;
            bind(&source, &target, false, flags).map_err(fail(
                format!("bind-mounting {} on", source.display()),
                &m.destination,
            ))
        }
        MountKind::Content { .. } => {
            let source = dir.content(index);
            ensure_mountpoint(&target, true)?;
            bind(&source, &target, false, flags | MsFlags::MS_RDONLY).map_err(fail(
                format!("bind-mounting {} on", source.display()),
                &m.destination,
            ))
        }
        MountKind::ShmFrom { target: other } => {
            let pid = join_pid(other).ok_or_else(|| RootfsError {
                step: "sharing /dev/shm of".into(),
                target: format!("{other:?}"),
                source: io::Error::new(io::ErrorKind::NotFound, "that container is not running"),
            })?;
            ensure_mountpoint(&target, false)?;
            let shm = sys::clone_foreign_mount(pid, "/dev/shm").map_err(fail(
                "sharing /dev/shm of the container with pid",
                pid.to_string(),
            ))?;
            sys::attach_mount(&shm, &target)
                .map_err(fail("mounting the shared /dev/shm on", &m.destination))
        }
    }
}

fn bind_with(
    source: &Path,
    target: &Path,
    recursive: BindRecursion,
    flags: MsFlags,
    propagation: Propagation,
) -> io::Result<()> {
    let rec = recursive != BindRecursion::Disabled;
    bind(source, target, rec, flags)?;
    if flags.contains(MsFlags::MS_RDONLY) && recursive == BindRecursion::Readonly {
        sys::make_recursively_readonly(target)?;
    }
    mount(
        None::<&str>,
        target,
        None::<&str>,
        propagation_flags(propagation),
        None::<&str>,
    )?;
    Ok(())
}

/// `/sys/fs/cgroup`. On cgroup v2 a `cgroup2` instance (the container's own subtree when it
/// has a cgroup namespace). On v1 and hybrid hosts, as runc does: a tmpfs holding, for
/// each hierarchy, a bind of the container's own cgroup directory.
fn mount_cgroups(
    config: &LaunchConfig,
    cgroups: &Hierarchies,
    target: &Path,
    flags: MsFlags,
) -> Result<()> {
    ensure_mountpoint(target, false)?;
    if cgroups.version() == CgroupVersion::V2 {
        if config.spec.namespaces.cgroup == Namespace::New {
            // Mounted as the container's own view only once it is in its cgroup and
            // cgroup namespace: see [`mount_private_cgroup2`].
            return Ok(());
        }
        return mount_fs("cgroup2", target, flags, None)
            .map_err(fail("mounting cgroup2 on", "/sys/fs/cgroup"));
    }
    mount_fs(
        "tmpfs",
        target,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )
    .map_err(fail("mounting tmpfs on", "/sys/fs/cgroup"))?;
    let mut mounts: Vec<&PathBuf> = cgroups.v1.values().chain(cgroups.v2.iter()).collect();
    mounts.sort();
    mounts.dedup();
    for hierarchy in mounts {
        let Some(name) = hierarchy.file_name() else {
            continue;
        };
        let source = hierarchy.join(&config.spec.cgroup_path);
        if !source.is_dir() {
            continue;
        }
        let dest = target.join(name);
        ensure_mountpoint(&dest, false)?;
        bind(&source, &dest, false, flags).map_err(fail(
            format!("bind-mounting {} on", source.display()),
            &dest,
        ))?;
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        remount(target, MsFlags::MS_RDONLY).map_err(fail("making read-only", "/sys/fs/cgroup"))?;
    }
    Ok(())
}

/// On cgroup v2 with a cgroup namespace of the container's own: mounts `cgroup2` at
/// `/sys/fs/cgroup` after `pivot_root`, once the init is in its cgroup and namespace (a
/// `cgroup2` instance shows the hierarchy from the mounter's cgroup namespace root).
pub fn mount_private_cgroup2(spec: &ContainerSpec, cgroups: &Hierarchies) -> Result<()> {
    if cgroups.version() != CgroupVersion::V2 || spec.namespaces.cgroup != Namespace::New {
        return Ok(());
    }
    let Some(m) = spec
        .mounts
        .iter()
        .find(|m| matches!(m.kind, MountKind::Cgroup))
    else {
        return Ok(());
    };
    mount_fs(
        "cgroup2",
        Path::new(&m.destination),
        flags_of(&m.flags),
        None,
    )
    .map_err(fail("mounting cgroup2 on", &m.destination))
}

/// The device nodes of the spec in the container's `/dev`, the standard links, and for a
/// privileged container every device node of the host's `/dev`.
fn make_devices(root: &Path, spec: &ContainerSpec) -> Result<()> {
    let dev = resolve_in_root(root, Path::new("/dev"));
    let old = nix::sys::stat::umask(Mode::empty());
    let result = (|| {
        for d in &spec.devices {
            make_node(&dev, d)?;
        }
        if spec.security.privileged {
            copy_host_devices(&dev)?;
        }
        for (link, to) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
            ("ptmx", "pts/ptmx"),
        ] {
            let path = dev.join(link);
            if fs::symlink_metadata(&path).is_err() {
                symlink(to, &path).map_err(fail("linking", &path))?;
            }
        }
        Ok(())
    })();
    nix::sys::stat::umask(old);
    result
}

fn make_node(dev: &Path, d: &DeviceNode) -> Result<()> {
    let rel = d.path.trim_start_matches("/dev/");
    let path = dev.join(rel);
    if fs::symlink_metadata(&path).is_ok() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(fail("creating", parent))?;
    }
    let made = mknod(
        &path,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(d.mode),
        makedev(u64::from(d.major), u64::from(d.minor)),
    );
    if made.is_err() {
        // Without CAP_MKNOD in our namespace (nested inside another runtime), bind the
        // host's node instead, as runc does.
        ensure_mountpoint(&path, true)?;
        bind(Path::new(d.path.as_ref()), &path, false, MsFlags::empty())
            .map_err(fail("binding the host's device", d.path.as_ref()))?;
    }
    Ok(())
}

fn copy_host_devices(dev: &Path) -> Result<()> {
    let entries = fs::read_dir("/dev").map_err(fail("listing", "/dev"))?;
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        let ft = meta.file_type();
        let kind = if ft.is_char_device() {
            SFlag::S_IFCHR
        } else if ft.is_block_device() {
            SFlag::S_IFBLK
        } else {
            continue;
        };
        let path = dev.join(entry.file_name());
        if fs::symlink_metadata(&path).is_ok() {
            continue;
        }
        mknod(
            &path,
            kind,
            Mode::from_bits_truncate(meta.permissions().mode()),
            meta.rdev(),
        )
        .map_err(nix_fail("creating the device node", &path))?;
        let _ = nix::unistd::chown(
            &path,
            Some(nix::unistd::Uid::from_raw(meta.uid())),
            Some(nix::unistd::Gid::from_raw(meta.gid())),
        );
    }
    Ok(())
}

/// `pivot_root` into `root` without a spare directory (runc's trick): pivot onto itself,
/// then detach the old root, which is now stacked on top of the new one at `/`.
fn pivot_into(root: &Path) -> Result<()> {
    nix::unistd::chdir(root).map_err(nix_fail("entering", root))?;
    nix::unistd::pivot_root(".", ".").map_err(nix_fail("pivot_root into", root))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(nix_fail("detaching the old root", "/"))?;
    nix::unistd::chdir("/").map_err(nix_fail("entering", "/"))?;
    Ok(())
}

/// Hides `path`: a directory under an empty read-only tmpfs, anything else under
/// `/dev/null`. A path the kernel does not have is skipped.
fn mask(path: &Path) -> Result<()> {
    let Ok(meta) = fs::metadata(path) else {
        return Ok(());
    };
    if meta.is_dir() {
        mount_fs("tmpfs", path, MsFlags::MS_RDONLY, Some("size=0")).map_err(fail("masking", path))
    } else {
        bind(Path::new("/dev/null"), path, false, MsFlags::empty()).map_err(fail("masking", path))
    }
}

fn readonly_bind(path: &Path) -> Result<()> {
    if fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    bind(path, path, true, MsFlags::MS_RDONLY).map_err(fail("making read-only", path))
}

/// Which namespaces the spec joins, with the file name under `/proc/<pid>/ns/`.
pub fn joined_namespaces(
    spec: &ContainerSpec,
) -> Vec<(&'static str, nix::sched::CloneFlags, &JoinTarget)> {
    use nix::sched::CloneFlags;
    let ns = &spec.namespaces;
    [
        ("net", CloneFlags::CLONE_NEWNET, &ns.net),
        ("ipc", CloneFlags::CLONE_NEWIPC, &ns.ipc),
        ("uts", CloneFlags::CLONE_NEWUTS, &ns.uts),
        ("cgroup", CloneFlags::CLONE_NEWCGROUP, &ns.cgroup),
    ]
    .into_iter()
    .filter_map(|(name, flag, n)| match n {
        Namespace::Join(t) => Some((name, flag, t)),
        _ => None,
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_inside_the_root_even_through_absolute_and_dotdot_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("real/data")).unwrap();
        symlink("/real", root.join("abs")).unwrap();
        symlink("../../../../etc", root.join("real/escape")).unwrap();
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        assert_eq!(
            resolve_in_root(root, Path::new("/abs/data")),
            root.join("real/data")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("/real/escape/passwd")),
            root.join("etc/passwd"),
            "`..` stops at the root"
        );
        assert_eq!(resolve_in_root(root, Path::new("/../../x")), root.join("x"));
        assert!(resolve_in_root(root, Path::new("/loop1/x")).starts_with(root));
        assert_eq!(
            resolve_in_root(root, Path::new("/new/dir")),
            root.join("new/dir")
        );
    }

    #[test]
    fn overlay_options_escape_separators() {
        assert_eq!(escape_overlay(Path::new("/a,b:c\\d")), "/a\\,b\\:c\\\\d");
    }

    #[test]
    fn tmpfs_data_lists_only_what_is_set() {
        let t = TmpfsOptions {
            size: Some(65536),
            mode: Some(0o1777),
            uid: None,
            gid: Some(5),
            nr_inodes: None,
        };
        assert_eq!(tmpfs_data(&t), "size=65536,mode=1777,gid=5");
        assert_eq!(tmpfs_data(&TmpfsOptions::default()), "");
    }
}
