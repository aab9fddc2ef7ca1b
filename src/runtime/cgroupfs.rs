//! Where the host's cgroup hierarchies are mounted, read from `/proc/self/mountinfo`: each
//! cgroup v1 controller's mount point and the cgroup v2 (unified) mount, if any. Hosts come
//! in three shapes — v1 only, v2 only, and hybrid (v1 controllers plus a unified hierarchy
//! that holds no controllers, as on the project's machine) — and which one decides where
//! the runtime writes the limits [`super::cgroup`] computes. This module only reads the
//! mount table; it never mounts, creates or writes a cgroup.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::cgroup::CgroupVersion;

#[derive(Debug, thiserror::Error)]
pub enum CgroupfsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no cgroup hierarchy is mounted (looked in {path})")]
    NoCgroups { path: PathBuf },
}

/// The cgroup mounts of this host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hierarchies {
    /// v1 controller (`memory`, `cpu`, `name=systemd`, …) → its mount point. A
    /// co-mounted hierarchy (`cpu,cpuacct`) appears once per controller.
    pub v1: BTreeMap<String, PathBuf>,
    /// The unified (v2) hierarchy's mount point.
    pub v2: Option<PathBuf>,
}

/// Controllers of the v1 super options; the rest are mount options.
const NOT_CONTROLLERS: &[&str] = &[
    "rw",
    "ro",
    "noprefix",
    "clone_children",
    "xattr",
    "cpuset_v2_mode",
    "favordynmods",
];

impl Hierarchies {
    /// Parses the text of a `mountinfo` file (see proc(5)). Malformed lines are skipped:
    /// the kernel writes this file, and one odd line must not hide the others.
    pub fn parse(mountinfo: &str) -> Hierarchies {
        let mut out = Hierarchies::default();
        for line in mountinfo.lines() {
            // Fields after the optional ones are introduced by a lone "-".
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let Some(mount_point) = pre.split(' ').nth(4).map(unescape) else {
                continue;
            };
            let mut post = post.split(' ');
            let (Some(fstype), Some(_source), Some(super_options)) =
                (post.next(), post.next(), post.next())
            else {
                continue;
            };
            match fstype {
                // The first unified mount wins; later ones are bind mounts of it.
                "cgroup2" if out.v2.is_none() => out.v2 = Some(PathBuf::from(mount_point)),
                "cgroup" => {
                    for option in super_options.split(',') {
                        if !NOT_CONTROLLERS.contains(&option)
                            && !option.starts_with("release_agent=")
                        {
                            out.v1
                                .entry(option.to_string())
                                .or_insert_with(|| PathBuf::from(&mount_point));
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Reads `/proc/self/mountinfo` (or another mountinfo file, for tests).
    pub fn read(path: &Path) -> Result<Hierarchies, CgroupfsError> {
        let text = std::fs::read_to_string(path).map_err(|source| CgroupfsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let found = Hierarchies::parse(&text);
        if found.v1.is_empty() && found.v2.is_none() {
            return Err(CgroupfsError::NoCgroups {
                path: path.to_path_buf(),
            });
        }
        Ok(found)
    }

    /// Which interface limits are written through: v1 as soon as any resource controller
    /// is mounted as v1 (a hybrid host's unified hierarchy has none), else v2. The
    /// `name=systemd` hierarchy tracks processes only and does not count.
    pub fn version(&self) -> CgroupVersion {
        if self.v1.keys().any(|c| !c.starts_with("name=")) {
            CgroupVersion::V1
        } else {
            CgroupVersion::V2
        }
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match octal {
            Some(b) => {
                out.push(b);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn a_hybrid_host_writes_limits_through_v1() {
        let h = Hierarchies::parse(HYBRID);
        assert_eq!(h.v2.as_deref(), Some(Path::new("/sys/fs/cgroup/unified")));
        assert_eq!(
            h.v1.get("cpu").map(PathBuf::as_path),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(h.v1.get("cpuacct"), h.v1.get("cpu"));
        assert!(h.v1.contains_key("memory") && h.v1.contains_key("name=systemd"));
        assert!(!h.v1.contains_key("xattr") && !h.v1.contains_key("rw"));
        assert!(!h.v1.keys().any(|k| k.starts_with("release_agent")));
        assert_eq!(h.version(), CgroupVersion::V1);
    }

    #[test]
    fn a_unified_host_is_v2_even_with_a_systemd_named_hierarchy() {
        let v2 = "29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let h = Hierarchies::parse(v2);
        assert_eq!(h.v2.as_deref(), Some(Path::new("/sys/fs/cgroup")));
        assert_eq!(h.version(), CgroupVersion::V2);
        let named = format!("{v2}40 23 0:37 / /run/sd rw - cgroup cgroup rw,name=systemd\n");
        assert_eq!(Hierarchies::parse(&named).version(), CgroupVersion::V2);
    }

    #[test]
    fn escapes_and_garbage_lines_are_handled() {
        let text = "garbage\n\n1 2 3:4 / /a\\040b rw - cgroup2 x rw\n5 6 7 - cgroup\n";
        let h = Hierarchies::parse(text);
        assert_eq!(h.v2.as_deref(), Some(Path::new("/a b")));
        assert!(h.v1.is_empty());
        assert_eq!(unescape("\\134x\\0"), "\\x\\0");
    }

    #[test]
    fn this_host_has_cgroups() {
        // Every Linux machine wharf runs on mounts at least one hierarchy; the project's
        // machine is hybrid (v1 controllers, unified at /sys/fs/cgroup/unified).
        let h = Hierarchies::read(Path::new("/proc/self/mountinfo")).expect("mountinfo");
        assert!(h.v2.is_some() || !h.v1.is_empty());
        let err = Hierarchies::read(Path::new("/nonexistent/mountinfo")).expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/mountinfo"), "{err}");
    }
}
