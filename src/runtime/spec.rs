//! The container spec: everything wharf's runtime must set up for one container, decided
//! before any of it is done.
//!
//! [`build`] turns a normalized Compose [`Service`] plus its image's config into a
//! [`ContainerSpec`]: the process (arguments, environment, user and groups, working
//! directory, rlimits), the hostname, the namespaces to create or join, the capability set
//! and other security settings, every mount in the order it must be made (Docker's standard
//! `/proc`, `/dev`, `/sys` mounts included), the masked and read-only paths, the sysctls,
//! the cgroup path and resource writes (see [`super::cgroup`]), the health check, the
//! restart policy, the stop signal and grace period, and the log settings. Docker's
//! documented behaviour is the reference throughout; where wharf differs the comment says so.
//!
//! This module is pure: it makes no syscall and reads no file. What it needs from the
//! container's filesystem (`/etc/passwd`, `/etc/group`) and from other containers (their
//! mounts, for `volumes_from`) the caller hands over in [`SpecInput`]. It validates
//! everything it is given and never panics, whatever the input: every refusal is a
//! [`SpecError`] naming the service and the field.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use oci_spec::image::ImageConfiguration;
use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

pub use super::cgroup::{CgroupVersion, CgroupWrite, Resources, SwapLimit};
use crate::compose::model::{self, Project, Service, ServiceVolume, Ulimit};
use crate::image::store::Healthcheck as ImageHealthcheck;

/// Docker's `PATH` when neither the image nor the service sets one
/// (`system.DefaultPathEnv` for Linux containers).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Docker's default `/dev/shm` size (64 MiB).
pub const DEFAULT_SHM_SIZE: u64 = 64 * 1024 * 1024;
/// Docker's default `stop_grace_period`.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);
/// Where the cgroups of every wharf container live, under each hierarchy's root.
pub const CGROUP_PARENT: &str = "wharf";
/// The largest uid/gid runc accepts (`maxID`, 2^31 - 1).
const MAX_ID: u64 = (1 << 31) - 1;
/// Linux's `HOST_NAME_MAX` (also the domain name limit).
const HOST_NAME_MAX: usize = 64;

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Why a service cannot become a container spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A field's value is invalid, unsupported or conflicts with another.
    #[error("service {service}: {field}: {reason}")]
    Field {
        service: String,
        field: String,
        reason: String,
    },
    /// Neither the service nor the image says what to run.
    #[error(
        "service {service}: nothing to run: neither the service (entrypoint, command) nor the image (Entrypoint, Cmd) names a program"
    )]
    NothingToRun { service: String },
    /// A user name the container's `/etc/passwd` does not know.
    #[error("service {service}: {field} {spec:?}: no user {name:?} in the container's {file}")]
    UnknownUser {
        service: String,
        field: String,
        spec: String,
        name: String,
        file: String,
    },
    /// A group name the container's `/etc/group` does not know.
    #[error("service {service}: {field} {spec:?}: no group {name:?} in the container's {file}")]
    UnknownGroup {
        service: String,
        field: String,
        spec: String,
        name: String,
        file: String,
    },
    /// Two mounts with the same destination.
    #[error("service {service}: {first} and {second} both mount {destination}")]
    DuplicateMount {
        service: String,
        destination: String,
        first: String,
        second: String,
    },
    /// A name that cannot safely become a cgroup path component.
    #[error("{what} {name:?} cannot name a cgroup directory: {reason}")]
    UnsafeName {
        what: &'static str,
        name: String,
        reason: &'static str,
    },
}

struct Ctx<'a> {
    service: &'a str,
}

impl Ctx<'_> {
    fn err(&self, field: impl Into<String>, reason: impl Into<String>) -> SpecError {
        SpecError::Field {
            service: self.service.to_string(),
            field: field.into(),
            reason: reason.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------------------

/// Everything [`build`] needs, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub struct SpecInput<'a> {
    /// The project: its name, and the top-level volumes, secrets and configs the service's
    /// mounts refer to.
    pub project: &'a Project,
    pub service_name: &'a str,
    pub service: &'a Service,
    /// Replica number, 1-based.
    pub replica: u64,
    pub container_name: &'a str,
    /// The container's id (`[A-Za-z0-9_.-]`, usually 64 hex digits): the default hostname is
    /// its first 12 characters, as in Docker, and anonymous volume names derive from it.
    pub container_id: &'a str,
    /// The image's config; `None` for an image without one (nothing is inherited).
    pub image: Option<&'a ImageConfiguration>,
    /// The image's Docker `Healthcheck` ([`crate::image::store::Store::healthcheck`]).
    pub image_healthcheck: Option<&'a ImageHealthcheck>,
    /// The container's `/etc/passwd` and `/etc/group` as found in the image, if it has them.
    pub passwd: Option<&'a [u8]>,
    pub group: Option<&'a [u8]>,
    /// Which hierarchy holds the controllers: decides the default cgroup namespace (private on
    /// v2, the host's on v1, like Docker) and which options only warn.
    pub cgroup: CgroupVersion,
    /// For each `volumes_from` entry of the service, in order, the mounts of the container it
    /// names (that container's [`ContainerSpec::mounts`]), resolved by the caller.
    pub volumes_from: &'a [&'a [Mount]],
    /// Anonymous volumes to reuse, by destination: Docker Compose keeps a recreated
    /// container's anonymous volumes. Destinations not listed get a fresh name.
    pub anonymous_volumes: Option<&'a BTreeMap<String, String>>,
    /// The hostname the container takes when it shares it: the host's for `network_mode:
    /// host` or `uts: host`, the joined container's for `network_mode: service:/container:`.
    /// `None` falls back to the id prefix.
    pub inherited_hostname: Option<&'a str>,
}

// ---------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------

/// What the runtime must set up for one container. Plain data; serializes for snapshots and
/// for the state record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub project: String,
    pub service: String,
    pub replica: u64,
    pub name: String,
    pub id: String,
    /// The hostname the container sees (and `HOSTNAME` in its environment). Set with
    /// `sethostname` only when [`Namespaces::uts`] is [`Namespace::New`].
    pub hostname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    pub process: Process,
    pub read_only_rootfs: bool,
    pub security: Security,
    pub namespaces: Namespaces,
    /// `network_mode: none`: a new network namespace with only loopback; the network layer
    /// attaches nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub network_none: bool,
    /// Every mount, in the order to perform them: parents before children.
    pub mounts: Vec<Mount>,
    /// Device nodes to create in the container's `/dev` (runc's standard set). A privileged
    /// container also gets every device of the host, as in Docker; the runtime lists those,
    /// since they are the host's to know.
    pub devices: Vec<DeviceNode>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    /// The container's cgroup, relative to each hierarchy's root ([`cgroup_path`]).
    pub cgroup_path: String,
    pub resources: Resources,
    /// `None`: no health check (none defined, or disabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthSpec>,
    pub restart: RestartPolicy,
    pub stop: StopSpec,
    pub logging: LogSpec,
    /// Options accepted but not honoured, for the user to see.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The container's main process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// `argv`; `args[0]` is looked up in the container's `PATH` when it has no slash.
    pub args: Vec<String>,
    /// `KEY=value` entries, in order.
    pub env: Vec<String>,
    pub cwd: String,
    pub user: User,
    /// Allocate a pseudo-terminal (`tty: true`).
    pub terminal: bool,
    /// Keep stdin open (`stdin_open: true`).
    pub stdin_open: bool,
    /// Run wharf's minimal init as PID 1, with the process as its child.
    pub init: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rlimits: Vec<Rlimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i32>,
}

/// The identity the process runs as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups for `setgroups`: the primary gid first (as Docker does since the
    /// CVE-2022-36109 fix), then the groups listing the user, then `group_add`.
    pub additional_gids: Vec<u32>,
    /// The user's home directory from `/etc/passwd` (`/` when unknown), used for `HOME`.
    pub home: String,
}

/// One resource limit for `setrlimit`. `u64::MAX` is `RLIM_INFINITY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    /// `RLIMIT_NOFILE`, …
    pub resource: Cow<'static, str>,
    pub soft: u64,
    pub hard: u64,
}

/// Privilege settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Security {
    pub privileged: bool,
    /// The bounding, effective and permitted set (the inheritable and ambient sets stay
    /// empty, as in Docker since CVE-2022-24769). With `privileged` this lists every
    /// capability wharf knows; the runtime drops those above the kernel's `cap_last_cap`.
    pub capabilities: Vec<Capability>,
    pub no_new_privileges: bool,
    pub seccomp: Seccomp,
    /// Paths hidden from the container: a directory under an empty read-only tmpfs, a file
    /// under `/dev/null`. Missing paths are skipped.
    pub masked_paths: Vec<String>,
    /// Paths bind-mounted read-only over themselves.
    pub readonly_paths: Vec<String>,
}

/// Which seccomp filter to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seccomp {
    /// wharf's equivalent of Docker's default profile.
    Default,
    /// No filter (`seccomp=unconfined`, or `privileged`).
    Unconfined,
}

/// What to do about one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Namespace {
    /// A fresh namespace of the container's own.
    New,
    /// Stay in the host's (the supervisor's) namespace.
    Host,
    /// Enter another container's namespace.
    Join(JoinTarget),
}

/// Another container whose namespace (or `/dev/shm`) is shared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinTarget {
    /// The first running replica of a service of the same project (`service:NAME`).
    Service(String),
    /// A container by name (`container:NAME`).
    Container(String),
}

/// The namespaces of the container. A mount namespace is always new and the user namespace
/// always the host's (wharf does not remap users), so neither is listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespaces {
    pub pid: Namespace,
    pub net: Namespace,
    pub ipc: Namespace,
    pub uts: Namespace,
    pub cgroup: Namespace,
}

/// One mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Absolute, cleaned, never `/`.
    pub destination: String,
    #[serde(flatten)]
    pub kind: MountKind,
    #[serde(flatten)]
    pub flags: MountFlags,
}

/// Flags that apply to any mount kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MountFlags {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nosuid: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nodev: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub noexec: bool,
}

impl MountFlags {
    const NONE: MountFlags = MountFlags {
        read_only: false,
        nosuid: false,
        nodev: false,
        noexec: false,
    };
    /// Docker's flags for `proc`, `mqueue` and tmpfs mounts: nosuid, nodev, noexec.
    const SAFE: MountFlags = MountFlags {
        read_only: false,
        nosuid: true,
        nodev: true,
        noexec: true,
    };
}

/// What is mounted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MountKind {
    Proc,
    Sysfs,
    /// The cgroup filesystem at `/sys/fs/cgroup` (the container's own view when it has a
    /// cgroup namespace).
    Cgroup,
    /// A new devpts instance (`newinstance,ptmxmode=0666,mode=0620,gid=5`, like Docker).
    Devpts,
    Mqueue,
    Tmpfs(TmpfsOptions),
    /// A host path, bind-mounted.
    Bind {
        source: String,
        propagation: Propagation,
        recursive: BindRecursion,
        /// Create `source` as a directory when missing (short syntax), rather than fail.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        create_host_path: bool,
    },
    /// A volume under the state root, named or anonymous.
    Volume {
        /// The volume's name on the host (a named volume's `name:`, which the loader
        /// prefixes with the project).
        name: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        anonymous: bool,
        /// Do not seed an empty volume with the image's content at the destination.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        nocopy: bool,
        /// Mount this subdirectory of the volume only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subpath: Option<String>,
    },
    /// A per-container file whose content the network layer writes.
    EtcFile {
        file: EtcFile,
    },
    /// A secret or config given inline (`content:`): the runtime writes it into the
    /// container's directory and bind-mounts it read-only.
    Content {
        /// `secret NAME` / `config NAME`, for messages.
        origin: String,
        content: String,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "octal_opt")]
        mode: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gid: Option<u32>,
    },
    /// Another container's `/dev/shm` (`ipc: service:X`/`container:X`).
    ShmFrom {
        target: JoinTarget,
    },
}

/// tmpfs mount data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TmpfsOptions {
    /// Bytes; `None` is the kernel's default (half of RAM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "octal_opt")]
    pub mode: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nr_inodes: Option<u64>,
}

/// Mount propagation of a bind mount. Docker's default is `rprivate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Propagation {
    Private,
    Rprivate,
    Shared,
    Rshared,
    Slave,
    Rslave,
}

/// Whether a bind mount takes the submounts of its source (Docker's `bind.recursive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BindRecursion {
    /// `rbind`, submounts read-only when the mount is (the default).
    Enabled,
    /// Plain `bind`: submounts are not visible.
    Disabled,
    /// `rbind`, submounts keep their own writability even when the mount is read-only.
    Writable,
    /// `rbind` made read-only recursively (`MOUNT_ATTR_RDONLY` with `AT_RECURSIVE`).
    Readonly,
}

/// The per-container files under `/etc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EtcFile {
    Hostname,
    Hosts,
    ResolvConf,
}

/// A character device node in the container's `/dev`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceNode {
    pub path: Cow<'static, str>,
    pub major: u32,
    pub minor: u32,
    #[serde(with = "octal")]
    pub mode: u32,
}

/// The health check to run inside the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthSpec {
    /// The probe's argv (`CMD-SHELL` already turned into `/bin/sh -c`).
    pub args: Vec<String>,
    #[serde(with = "go_duration")]
    pub interval: Duration,
    #[serde(with = "go_duration")]
    pub timeout: Duration,
    #[serde(with = "go_duration")]
    pub start_period: Duration,
    #[serde(with = "go_duration")]
    pub start_interval: Duration,
    /// Consecutive failures that make the container unhealthy.
    pub retries: u64,
}

/// When the supervisor restarts the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "policy")]
pub enum RestartPolicy {
    No,
    Always,
    /// On a non-zero exit; at most `max_retries` times when set.
    OnFailure {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_retries: Option<u64>,
    },
    UnlessStopped,
}

/// How the container is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopSpec {
    pub signal: Signal,
    /// How long to wait after `signal` before SIGKILL.
    #[serde(with = "go_duration")]
    pub grace_period: Duration,
}

/// Where the container's output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSpec {
    pub driver: LogDriver,
    /// Rotate when the current file reaches this size; `None` never rotates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    /// How many files to keep, the current one included.
    pub max_file: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogDriver {
    /// wharf's log: JSON lines (time with nanoseconds, stream, text), like Docker's json-file.
    JsonFile,
    /// Output is discarded.
    None,
}

// ---------------------------------------------------------------------------------------
// Capabilities and signals
// ---------------------------------------------------------------------------------------

macro_rules! capabilities {
    ($($variant:ident = $number:literal => $name:literal,)*) => {
        /// A Linux capability, numbered as in `<linux/capability.h>`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Capability {
            $($variant = $number,)*
        }

        impl Capability {
            /// Every capability up to `CAP_CHECKPOINT_RESTORE` (Linux 5.9).
            pub const ALL: &'static [Capability] = &[$(Capability::$variant,)*];

            /// The kernel's name, `CAP_…`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Capability::$variant => $name,)*
                }
            }
        }
    };
}

capabilities! {
    Chown = 0 => "CAP_CHOWN",
    DacOverride = 1 => "CAP_DAC_OVERRIDE",
    DacReadSearch = 2 => "CAP_DAC_READ_SEARCH",
    Fowner = 3 => "CAP_FOWNER",
    Fsetid = 4 => "CAP_FSETID",
    Kill = 5 => "CAP_KILL",
    Setgid = 6 => "CAP_SETGID",
    Setuid = 7 => "CAP_SETUID",
    Setpcap = 8 => "CAP_SETPCAP",
    LinuxImmutable = 9 => "CAP_LINUX_IMMUTABLE",
    NetBindService = 10 => "CAP_NET_BIND_SERVICE",
    NetBroadcast = 11 => "CAP_NET_BROADCAST",
    NetAdmin = 12 => "CAP_NET_ADMIN",
    NetRaw = 13 => "CAP_NET_RAW",
    IpcLock = 14 => "CAP_IPC_LOCK",
    IpcOwner = 15 => "CAP_IPC_OWNER",
    SysModule = 16 => "CAP_SYS_MODULE",
    SysRawio = 17 => "CAP_SYS_RAWIO",
    SysChroot = 18 => "CAP_SYS_CHROOT",
    SysPtrace = 19 => "CAP_SYS_PTRACE",
    SysPacct = 20 => "CAP_SYS_PACCT",
    SysAdmin = 21 => "CAP_SYS_ADMIN",
    SysBoot = 22 => "CAP_SYS_BOOT",
    SysNice = 23 => "CAP_SYS_NICE",
    SysResource = 24 => "CAP_SYS_RESOURCE",
    SysTime = 25 => "CAP_SYS_TIME",
    SysTtyConfig = 26 => "CAP_SYS_TTY_CONFIG",
    Mknod = 27 => "CAP_MKNOD",
    Lease = 28 => "CAP_LEASE",
    AuditWrite = 29 => "CAP_AUDIT_WRITE",
    AuditControl = 30 => "CAP_AUDIT_CONTROL",
    Setfcap = 31 => "CAP_SETFCAP",
    MacOverride = 32 => "CAP_MAC_OVERRIDE",
    MacAdmin = 33 => "CAP_MAC_ADMIN",
    Syslog = 34 => "CAP_SYSLOG",
    WakeAlarm = 35 => "CAP_WAKE_ALARM",
    BlockSuspend = 36 => "CAP_BLOCK_SUSPEND",
    AuditRead = 37 => "CAP_AUDIT_READ",
    Perfmon = 38 => "CAP_PERFMON",
    Bpf = 39 => "CAP_BPF",
    CheckpointRestore = 40 => "CAP_CHECKPOINT_RESTORE",
}

impl Capability {
    /// The capability's number (bit position).
    pub fn number(self) -> u8 {
        self as u8
    }

    /// Docker's name rules: case-insensitive, `CAP_` optional (`NormalizeLegacyCapabilities`).
    pub fn parse(text: &str) -> Option<Capability> {
        let upper = text.trim().to_ascii_uppercase();
        let full = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        Capability::ALL.iter().copied().find(|c| c.name() == full)
    }
}

impl Serialize for Capability {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Capability {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Capability, D::Error> {
        let text = String::deserialize(d)?;
        Capability::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown capability {text:?}")))
    }
}

/// Docker's default capability set (moby `oci/caps/defaults.go`): exactly these 14.
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// A signal number (1..=64), printed by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Signal(u8);

/// Names of the classic signals by number (x86/arm/generic Linux numbering). `SIGIOT`,
/// `SIGCLD` and `SIGPOLL` are aliases accepted by [`Signal::parse`].
const SIGNAL_NAMES: [(&str, u8); 31] = [
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("PWR", 30),
    ("SYS", 31),
];
const SIGRTMIN: u8 = 34;
const SIGRTMAX: u8 = 64;

impl Signal {
    pub const TERM: Signal = Signal(15);
    pub const KILL: Signal = Signal(9);

    /// Docker's `signal.ParseSignal`: a number, or a name with or without `SIG`, any case,
    /// including `RTMIN+n` and `RTMAX-n`.
    pub fn parse(text: &str) -> Option<Signal> {
        let t = text.trim();
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            let n: u8 = t.parse().ok()?;
            return (1..=SIGRTMAX).contains(&n).then_some(Signal(n));
        }
        let upper = t.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        let alias = match name {
            "IOT" => "ABRT",
            "CLD" => "CHLD",
            "POLL" => "IO",
            other => other,
        };
        if let Some((_, n)) = SIGNAL_NAMES.iter().find(|(n, _)| *n == alias) {
            return Some(Signal(*n));
        }
        let offset = |s: &str| -> Option<u8> {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        match alias {
            "RTMIN" => Some(Signal(SIGRTMIN)),
            "RTMAX" => Some(Signal(SIGRTMAX)),
            _ => {
                if let Some(k) = alias.strip_prefix("RTMIN+").and_then(offset) {
                    (k <= SIGRTMAX - SIGRTMIN).then(|| Signal(SIGRTMIN + k))
                } else if let Some(k) = alias.strip_prefix("RTMAX-").and_then(offset) {
                    (k <= SIGRTMAX - SIGRTMIN).then(|| Signal(SIGRTMAX - k))
                } else {
                    None
                }
            }
        }
    }

    pub fn number(self) -> i32 {
        i32::from(self.0)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((name, _)) = SIGNAL_NAMES.iter().find(|(_, n)| *n == self.0) {
            return write!(f, "SIG{name}");
        }
        match self.0 {
            SIGRTMIN => f.write_str("SIGRTMIN"),
            SIGRTMAX => f.write_str("SIGRTMAX"),
            n if n > SIGRTMIN && n - SIGRTMIN <= 15 => write!(f, "SIGRTMIN+{}", n - SIGRTMIN),
            n if n > SIGRTMIN => write!(f, "SIGRTMAX-{}", SIGRTMAX - n),
            n => write!(f, "{n}"),
        }
    }
}

impl Serialize for Signal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Signal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Signal, D::Error> {
        let text = String::deserialize(d)?;
        Signal::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown signal {text:?}")))
    }
}

/// Durations as Go writes them (`1m30s`), both ways.
mod go_duration {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&model::Duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        model::Duration::parse(&text)
            .map(|d| d.0)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid duration {text:?}")))
    }
}

/// File modes as octal strings (`"0755"`), both ways.
mod octal {
    use super::*;

    pub fn serialize<S: Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{mode:04o}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let text = String::deserialize(d)?;
        u32::from_str_radix(&text, 8)
            .map_err(|_| serde::de::Error::custom(format!("invalid octal mode {text:?}")))
    }
}

mod octal_opt {
    use super::*;

    pub fn serialize<S: Serializer>(mode: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
        match mode {
            Some(m) => octal::serialize(m, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => u32::from_str_radix(&text, 8)
                .map(Some)
                .map_err(|_| serde::de::Error::custom(format!("invalid octal mode {text:?}"))),
        }
    }
}

// ---------------------------------------------------------------------------------------
// cgroup path
// ---------------------------------------------------------------------------------------

fn check_component(what: &'static str, name: &str) -> Result<(), SpecError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name == "." || name == ".." {
        Some("it is a relative path component")
    } else if name.contains('/') {
        Some("it contains '/'")
    } else if name.chars().any(char::is_control) {
        Some("it contains a control character")
    } else if name.len() > 255 {
        Some("it is longer than 255 bytes")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(SpecError::UnsafeName {
            what,
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The container's cgroup, relative to the root of each hierarchy:
/// `wharf/<project>/<container>`. Derived from names alone so that wharf can find (and
/// remove) a project's cgroups without its state files. The loader already restricts both
/// names; this refuses anything that could still leave the `wharf` parent.
pub fn cgroup_path(project: &str, container_name: &str) -> Result<String, SpecError> {
    check_component("project name", project)?;
    check_component("container name", container_name)?;
    Ok(format!("{CGROUP_PARENT}/{project}/{container_name}"))
}

// ---------------------------------------------------------------------------------------
// build
// ---------------------------------------------------------------------------------------

/// Builds the spec of one container. See the module documentation.
pub fn build(input: &SpecInput<'_>) -> Result<ContainerSpec, SpecError> {
    let svc = input.service;
    let ctx = Ctx {
        service: input.service_name,
    };
    let mut warnings = Vec::new();
    let image = input.image.and_then(|i| i.config().as_ref());

    check_container_id(&ctx, input.container_id)?;
    let cgroup_path = cgroup_path(&input.project.name, input.container_name)?;

    let privileged = svc.privileged == Some(true);
    let namespaces = namespaces(&ctx, svc, input.cgroup)?;
    let network_none = svc.network_mode.as_deref() == Some("none");
    if !svc.ports.is_empty() {
        match namespaces.net {
            Namespace::Host => warnings
                .push("ports are not published with network_mode: host; they are ignored".into()),
            Namespace::Join(_) => {
                return Err(ctx.err(
                    "ports",
                    "cannot publish ports of a container that shares another's network (network_mode)",
                ));
            }
            Namespace::New => {}
        }
    }
    let (hostname, domainname) = hostnames(&ctx, input, &namespaces)?;

    let args = process_args(&ctx, svc, image)?;
    let user_spec = match svc.user.as_deref().filter(|u| !u.is_empty()) {
        Some(u) => ("user", u),
        None => (
            "image User",
            image
                .and_then(|c| c.user().as_deref())
                .filter(|u| !u.is_empty())
                .unwrap_or("0"),
        ),
    };
    let user = resolve_user(
        &ctx,
        user_spec.0,
        user_spec.1,
        &svc.group_add,
        input.passwd,
        input.group,
    )?;
    let tty = svc.tty == Some(true);
    let env = environment(&ctx, svc, image, &hostname, tty, &user.home)?;
    let cwd = working_dir(&ctx, svc, image)?;

    let init_requested = svc.init == Some(true);
    let init = init_requested && namespaces.pid == Namespace::New;
    if init_requested && !init {
        // Docker adds its init only in a private PID namespace: elsewhere PID 1 exists.
        warnings.push("init is ignored: the container does not have its own PID namespace".into());
    }

    let oom_score_adj = match svc.oom_score_adj {
        None => None,
        Some(v @ -1000..=1000) => i32::try_from(v).ok(),
        Some(v) => {
            return Err(ctx.err("oom_score_adj", format!("{v} is outside -1000..=1000")));
        }
    };

    let (no_new_privileges, mut seccomp, system_paths) =
        security_opts(&ctx, &svc.security_opt, &mut warnings)?;
    let capabilities = capabilities(&ctx, svc, privileged)?;
    if privileged {
        // Docker runs privileged containers without a seccomp filter.
        seccomp = Seccomp::Unconfined;
    }
    let confined_paths = !privileged && system_paths;
    let security = Security {
        privileged,
        capabilities,
        no_new_privileges,
        seccomp,
        masked_paths: if confined_paths {
            MASKED_PATHS.iter().map(|p| p.to_string()).collect()
        } else {
            Vec::new()
        },
        readonly_paths: if confined_paths {
            READONLY_PATHS.iter().map(|p| p.to_string()).collect()
        } else {
            Vec::new()
        },
    };

    let sysctls = sysctls(&ctx, svc, &namespaces)?;
    let rlimits = rlimits(&ctx, &svc.ulimits)?;
    let resources = super::cgroup::resources(input.service_name, svc, input.cgroup, &mut warnings)?;
    let mounts = mounts(&ctx, input, &namespaces, privileged, &mut warnings)?;
    let healthcheck = healthcheck(&ctx, svc, input.image_healthcheck)?;
    let restart = restart_policy(&ctx, svc, &mut warnings)?;
    let stop = stop_spec(&ctx, svc, image)?;
    let logging = logging(&ctx, svc, &mut warnings)?;
    unsupported(svc, &mut warnings);

    Ok(ContainerSpec {
        project: input.project.name.clone(),
        service: input.service_name.to_string(),
        replica: input.replica,
        name: input.container_name.to_string(),
        id: input.container_id.to_string(),
        hostname,
        domainname,
        process: Process {
            args,
            env,
            cwd,
            user,
            terminal: tty,
            stdin_open: svc.stdin_open == Some(true),
            init,
            rlimits,
            oom_score_adj,
        },
        read_only_rootfs: svc.read_only == Some(true),
        security,
        namespaces,
        network_none,
        mounts,
        devices: default_devices(),
        sysctls,
        cgroup_path,
        resources,
        healthcheck,
        restart,
        stop,
        logging,
        warnings,
    })
}

fn check_container_id(ctx: &Ctx<'_>, id: &str) -> Result<(), SpecError> {
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(ctx.err(
            "container id",
            format!("{id:?} must be non-empty and use only letters, digits, '_', '.' and '-'"),
        ));
    }
    Ok(())
}

/// Options wharf accepts without honouring them; each gets a warning rather than silence.
fn unsupported(svc: &Service, warnings: &mut Vec<String>) {
    for (field, set) in [
        ("devices", !svc.devices.is_empty()),
        ("device_cgroup_rules", !svc.device_cgroup_rules.is_empty()),
        ("gpus", svc.gpus.is_some()),
        ("storage_opt", !svc.storage_opt.is_empty()),
        ("cgroup_parent", svc.cgroup_parent.is_some()),
        ("runtime", svc.runtime.is_some()),
        ("isolation", svc.isolation.is_some()),
        ("credential_spec", svc.credential_spec.is_some()),
        (
            "userns_mode",
            svc.userns_mode.as_deref().is_some_and(|m| m != "host"),
        ),
    ] {
        if set {
            warnings.push(format!("{field} is not supported by wharf and is ignored"));
        }
    }
}

// --- process arguments -----------------------------------------------------------------

/// Docker's rules (daemon `merge` in `daemon/commit.go`, then `getEntrypointAndArgs`):
/// - a non-empty service `entrypoint` replaces the image's and drops the image's `Cmd`
///   (only the service's `command` follows it);
/// - an empty `entrypoint` (`[]` or `""`, which the loader splits to `[]`) clears the
///   image's entrypoint but keeps its `Cmd` unless `command` is given;
/// - `command` replaces the image's `Cmd`; an empty `command` counts as not given (the
///   engine cannot tell `[]` from absent), so the image's `Cmd` stays.
///
/// Compose's shell-form strings are already split by the loader (go-shellwords rules), so
/// both fields arrive as lists.
fn process_args(
    ctx: &Ctx<'_>,
    svc: &Service,
    image: Option<&oci_spec::image::Config>,
) -> Result<Vec<String>, SpecError> {
    let image_entrypoint = image
        .and_then(|c| c.entrypoint().clone())
        .unwrap_or_default();
    let image_cmd = image.and_then(|c| c.cmd().clone()).unwrap_or_default();
    let command = svc.command.clone().unwrap_or_default();
    let (entrypoint, cmd) = match &svc.entrypoint {
        Some(ep) if !ep.is_empty() => (ep.clone(), command),
        user_ep => {
            let cmd = if command.is_empty() {
                image_cmd
            } else {
                command
            };
            let ep = if user_ep.is_some() {
                Vec::new()
            } else {
                image_entrypoint
            };
            (ep, cmd)
        }
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    match args.first() {
        None => Err(SpecError::NothingToRun {
            service: ctx.service.to_string(),
        }),
        Some(first) if first.is_empty() => Err(ctx.err(
            "entrypoint/command",
            "the program to run is an empty string",
        )),
        Some(_) => {
            if let Some(bad) = args.iter().find(|a| a.contains('\0')) {
                return Err(ctx.err(
                    "entrypoint/command",
                    format!("argument {bad:?} contains a NUL byte"),
                ));
            }
            Ok(args)
        }
    }
}

// --- environment -----------------------------------------------------------------------

/// Docker's environment (`CreateDaemonEnvironment` + `ReplaceOrAppendEnvValues`): start from
/// `PATH` (Docker's default), `HOSTNAME` and, with a tty, `TERM=xterm`; then apply the
/// container's variables — the service's (env_file already folded in by the loader, sorted
/// by name) followed by the image's `Env` entries the service does not set — each replacing
/// a variable of the same name in place or appending. A service variable without a value
/// (`FOO` in `environment` with nothing to resolve it from) *unsets* the variable, the
/// image's included, as Docker does with a bare `FOO`. Finally `HOME` from the user's
/// passwd entry when still unset, as runc does at exec.
fn environment(
    ctx: &Ctx<'_>,
    svc: &Service,
    image: Option<&oci_spec::image::Config>,
    hostname: &str,
    tty: bool,
    home: &str,
) -> Result<Vec<String>, SpecError> {
    let mut env: Vec<(String, Option<String>)> = vec![
        ("PATH".into(), Some(DEFAULT_PATH.into())),
        ("HOSTNAME".into(), Some(hostname.into())),
    ];
    if tty {
        env.push(("TERM".into(), Some("xterm".into())));
    }
    let mut config: Vec<(String, Option<String>)> = Vec::new();
    for (key, value) in &svc.environment {
        check_env(ctx, "environment", key, value.as_deref())?;
        config.push((key.clone(), value.clone()));
    }
    for entry in image.and_then(|c| c.env().as_ref()).into_iter().flatten() {
        let (key, value) = match entry.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (entry.as_str(), None),
        };
        if key.is_empty() || svc.environment.contains_key(key) {
            continue;
        }
        check_env(ctx, "image Env", key, value)?;
        config.push((key.to_string(), value.map(str::to_string)));
    }
    for (key, value) in config {
        match env.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None if value.is_some() => env.push((key, value)),
            None => {}
        }
    }
    let mut out: Vec<String> = env
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
        .collect();
    if !out.iter().any(|e| e.starts_with("HOME=")) {
        out.push(format!("HOME={home}"));
    }
    Ok(out)
}

fn check_env(ctx: &Ctx<'_>, field: &str, key: &str, value: Option<&str>) -> Result<(), SpecError> {
    if key.contains('=') || key.contains('\0') {
        return Err(ctx.err(
            field,
            format!("variable name {key:?} contains '=' or a NUL byte"),
        ));
    }
    if value.is_some_and(|v| v.contains('\0')) {
        return Err(ctx.err(field, format!("the value of {key} contains a NUL byte")));
    }
    Ok(())
}

// --- working directory, hostnames ------------------------------------------------------

/// Lexically cleans an absolute path like Go's `path.Clean` (`/a/./b/../c` → `/a/c`);
/// `None` if it is not absolute.
fn clean_absolute(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    Some(format!("/{}", crate::image::layout::clean_entry(path)))
}

/// Service `working_dir`, else the image's `WorkingDir`, else `/`; absolute, like Docker
/// ("the working directory … is invalid, it needs to be an absolute path").
fn working_dir(
    ctx: &Ctx<'_>,
    svc: &Service,
    image: Option<&oci_spec::image::Config>,
) -> Result<String, SpecError> {
    let (field, dir) = match svc.working_dir.as_deref().filter(|d| !d.is_empty()) {
        Some(d) => ("working_dir", d),
        None => match image
            .and_then(|c| c.working_dir().as_deref())
            .filter(|d| !d.is_empty())
        {
            Some(d) => ("image WorkingDir", d),
            None => return Ok("/".into()),
        },
    };
    if dir.contains('\0') {
        return Err(ctx.err(field, "contains a NUL byte"));
    }
    clean_absolute(dir).ok_or_else(|| ctx.err(field, format!("{dir:?} is not an absolute path")))
}

fn check_hostname(ctx: &Ctx<'_>, field: &str, name: &str) -> Result<(), SpecError> {
    if name.len() > HOST_NAME_MAX {
        return Err(ctx.err(
            field,
            format!("{name:?} is longer than {HOST_NAME_MAX} bytes"),
        ));
    }
    if name
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '/')
    {
        return Err(ctx.err(
            field,
            format!("{name:?} contains a blank, a control character or '/'"),
        ));
    }
    Ok(())
}

/// The hostname: the service's, else (when the container shares it) the inherited one, else
/// the first 12 characters of the container id, as Docker does.
fn hostnames(
    ctx: &Ctx<'_>,
    input: &SpecInput<'_>,
    ns: &Namespaces,
) -> Result<(String, Option<String>), SpecError> {
    let svc = input.service;
    let own = svc.hostname.as_deref().filter(|h| !h.is_empty());
    let domain = svc.domainname.as_deref().filter(|d| !d.is_empty());
    // Docker: "conflicting options: hostname and the network mode" / "… the UTS mode".
    if matches!(ns.net, Namespace::Join(_)) && (own.is_some() || domain.is_some()) {
        return Err(ctx.err(
            if own.is_some() {
                "hostname"
            } else {
                "domainname"
            },
            "cannot be set when the container shares another's network (network_mode)",
        ));
    }
    if ns.uts == Namespace::Host && (own.is_some() || domain.is_some()) {
        return Err(ctx.err(
            if own.is_some() {
                "hostname"
            } else {
                "domainname"
            },
            "cannot be set with uts: host",
        ));
    }
    let shares =
        matches!(ns.net, Namespace::Host | Namespace::Join(_)) || ns.uts == Namespace::Host;
    let hostname = match (own, input.inherited_hostname) {
        (Some(h), _) => h.to_string(),
        (None, Some(h)) if shares && !h.is_empty() => h.to_string(),
        _ => input.container_id.chars().take(12).collect(),
    };
    check_hostname(ctx, "hostname", &hostname)?;
    if let Some(d) = domain {
        check_hostname(ctx, "domainname", d)?;
    }
    Ok((hostname, domain.map(str::to_string)))
}

// --- users and groups ------------------------------------------------------------------

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

/// A decimal id in runc's range (0..=2^31-1), or `None`.
fn parse_id(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u64 = text.parse().ok()?;
    (v <= MAX_ID).then(|| u32::try_from(v).ok()).flatten()
}

/// Lines of an `/etc/passwd` or `/etc/group`: blank lines, comments and NIS `+`/`-` entries
/// skipped, surrounding blanks trimmed, lines that are not UTF-8 skipped.
fn db_lines(bytes: &[u8]) -> impl Iterator<Item = &str> {
    bytes.split(|b| *b == b'\n').filter_map(|line| {
        let line = std::str::from_utf8(line).ok()?.trim();
        (!line.is_empty() && !line.starts_with(['#', '+', '-'])).then_some(line)
    })
}

/// `name:password:uid:gid:gecos:home:shell`. Malformed lines (too few fields, ids that are
/// not numbers) are skipped: runc reads a garbage id as 0, which would turn a broken line
/// into root; skipping it is the safe reading.
fn passwd_entries(bytes: &[u8]) -> impl Iterator<Item = PasswdEntry<'_>> {
    db_lines(bytes).filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        let name = *f.first()?;
        if name.is_empty() {
            return None;
        }
        Some(PasswdEntry {
            name,
            uid: parse_id(f.get(2)?)?,
            gid: parse_id(f.get(3)?)?,
            home: f.get(5).copied().unwrap_or(""),
        })
    })
}

/// `name:password:gid:member,member`, malformed lines skipped as for passwd.
fn group_entries(bytes: &[u8]) -> impl Iterator<Item = GroupEntry<'_>> {
    db_lines(bytes).filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        let name = *f.first()?;
        if name.is_empty() {
            return None;
        }
        Some(GroupEntry {
            name,
            gid: parse_id(f.get(2)?)?,
            members: f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .map(str::trim)
                        .filter(|m| !m.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        })
    })
}

fn is_numeric(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn db_name(file: &'static str, bytes: Option<&[u8]>) -> String {
    match bytes {
        Some(_) => file.to_string(),
        None => format!("{file} (the image has none)"),
    }
}

/// Resolves `user` like runc's `user.GetExecUser` (which Docker uses): `name`, `uid`,
/// `name:group`, `uid:gid` and mixes. A numeric user is always a uid, and may be missing from
/// passwd (Docker allows it: gid 0, home `/`); a name must be in passwd. Without an explicit
/// group the gid is the passwd entry's and the supplementary groups are every group listing
/// the user by name; with one, the group is looked up the same way (a number may be missing
/// from `/etc/group`) and there are no implicit supplementary groups. `group_add` entries are
/// group names or gids, resolved against `/etc/group` like runc's `GetAdditionalGroups`.
/// Resolves `docker exec -u` style `user` (name or uid, optionally `:group`) through the
/// container's `/etc/passwd` and `/etc/group`, as for the service's `user`.
pub fn resolve_exec_user(
    service: &str,
    user: &str,
    passwd: Option<&[u8]>,
    group: Option<&[u8]>,
) -> Result<User, SpecError> {
    resolve_user(&Ctx { service }, "exec --user", user, &[], passwd, group)
}

fn resolve_user(
    ctx: &Ctx<'_>,
    field: &str,
    spec: &str,
    group_add: &[String],
    passwd: Option<&[u8]>,
    group: Option<&[u8]>,
) -> Result<User, SpecError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user_part.is_empty() || group_part.is_some_and(|g| g.is_empty() || g.contains(':')) {
        return Err(ctx.err(
            field,
            format!("{spec:?} is not of the form user, uid, user:group or uid:gid"),
        ));
    }
    let numeric_uid = is_numeric(user_part);
    let entry = passwd.and_then(|p| {
        passwd_entries(p).find(|e| {
            if numeric_uid {
                parse_id(user_part) == Some(e.uid)
            } else {
                e.name == user_part
            }
        })
    });
    let (uid, mut gid, home, matched_name) = match entry {
        Some(e) => (e.uid, e.gid, e.home.to_string(), Some(e.name)),
        None if numeric_uid => {
            let uid = parse_id(user_part).ok_or_else(|| {
                ctx.err(field, format!("uid {user_part} is outside 0..={MAX_ID}"))
            })?;
            (uid, 0, String::new(), None)
        }
        None => {
            return Err(SpecError::UnknownUser {
                service: ctx.service.to_string(),
                field: field.to_string(),
                spec: spec.to_string(),
                name: user_part.to_string(),
                file: db_name("/etc/passwd", passwd),
            });
        }
    };
    let mut additional: Vec<u32> = Vec::new();
    match group_part {
        Some(g) => {
            let numeric = is_numeric(g);
            let found = group.and_then(|bytes| {
                group_entries(bytes)
                    .find(|e| {
                        if numeric {
                            parse_id(g) == Some(e.gid)
                        } else {
                            e.name == g
                        }
                    })
                    .map(|e| e.gid)
            });
            gid = match found {
                Some(gid) => gid,
                None if numeric => parse_id(g)
                    .ok_or_else(|| ctx.err(field, format!("gid {g} is outside 0..={MAX_ID}")))?,
                None => {
                    return Err(SpecError::UnknownGroup {
                        service: ctx.service.to_string(),
                        field: field.to_string(),
                        spec: spec.to_string(),
                        name: g.to_string(),
                        file: db_name("/etc/group", group),
                    });
                }
            };
        }
        None => {
            if let (Some(name), Some(bytes)) = (matched_name, group) {
                additional.extend(
                    group_entries(bytes)
                        .filter(|e| e.members.contains(&name))
                        .map(|e| e.gid),
                );
            }
        }
    }
    let mut extra = Vec::new();
    for g in group_add {
        let found = group.and_then(|bytes| {
            group_entries(bytes)
                .find(|e| e.name == g || parse_id(g) == Some(e.gid))
                .map(|e| e.gid)
        });
        let gid = match found {
            Some(gid) => gid,
            None if is_numeric(g) => parse_id(g)
                .ok_or_else(|| ctx.err("group_add", format!("gid {g} is outside 0..={MAX_ID}")))?,
            None => {
                return Err(SpecError::UnknownGroup {
                    service: ctx.service.to_string(),
                    field: "group_add".into(),
                    spec: g.clone(),
                    name: g.clone(),
                    file: db_name("/etc/group", group),
                });
            }
        };
        extra.push(gid);
    }
    let mut additional_gids = vec![gid];
    for g in additional.into_iter().chain(extra) {
        if !additional_gids.contains(&g) {
            additional_gids.push(g);
        }
    }
    Ok(User {
        uid,
        gid,
        additional_gids,
        home: if home.is_empty() { "/".into() } else { home },
    })
}

// --- capabilities and security options -------------------------------------------------

/// Docker's `TweakCapabilities`: privileged gets everything; `cap_add: [ALL]` gives
/// everything but `cap_drop`; `cap_drop: [ALL]` leaves only `cap_add`; otherwise the default
/// set minus `cap_drop` plus `cap_add`. Unknown names are refused.
fn capabilities(
    ctx: &Ctx<'_>,
    svc: &Service,
    privileged: bool,
) -> Result<Vec<Capability>, SpecError> {
    if privileged {
        return Ok(Capability::ALL.to_vec());
    }
    let parse =
        |field: &str, names: &[String]| -> Result<(bool, BTreeSet<Capability>), SpecError> {
            let mut all = false;
            let mut set = BTreeSet::new();
            for name in names {
                if name.trim().eq_ignore_ascii_case("ALL") {
                    all = true;
                    continue;
                }
                let cap = Capability::parse(name)
                    .ok_or_else(|| ctx.err(field, format!("unknown capability {name:?}")))?;
                set.insert(cap);
            }
            Ok((all, set))
        };
    let (add_all, add) = parse("cap_add", &svc.cap_add)?;
    let (drop_all, drop) = parse("cap_drop", &svc.cap_drop)?;
    let caps: BTreeSet<Capability> = if add_all {
        Capability::ALL
            .iter()
            .copied()
            .filter(|c| !drop.contains(c))
            .collect()
    } else if drop_all {
        add
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .copied()
            .filter(|c| !drop.contains(c))
            .chain(add)
            .collect()
    };
    Ok(caps.into_iter().collect())
}

/// Go's `strconv.ParseBool`, which Docker uses for `no-new-privileges=…`.
fn go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Docker's `parseSecurityOpt`: `no-new-privileges` (bare or `=bool`), `seccomp=unconfined`,
/// `systempaths=unconfined`; `apparmor=` and `label=` are accepted and ignored (wharf has
/// neither AppArmor nor SELinux support). The deprecated `key:value` form is accepted too.
/// Returns (no_new_privileges, seccomp, system paths confined).
fn security_opts(
    ctx: &Ctx<'_>,
    opts: &[String],
    warnings: &mut Vec<String>,
) -> Result<(bool, Seccomp, bool), SpecError> {
    let mut nnp = false;
    let mut seccomp = Seccomp::Default;
    let mut confined = true;
    for opt in opts {
        if opt == "no-new-privileges" {
            nnp = true;
            continue;
        }
        if opt == "disable" {
            warnings.push("security_opt \"disable\" (SELinux labels) is ignored".into());
            continue;
        }
        let Some((key, value)) = opt.split_once('=').or_else(|| opt.split_once(':')) else {
            return Err(ctx.err("security_opt", format!("invalid option {opt:?}")));
        };
        match key {
            "no-new-privileges" => {
                nnp = go_bool(value).ok_or_else(|| {
                    ctx.err(
                        "security_opt",
                        format!("{opt:?}: {value:?} is not a boolean"),
                    )
                })?;
            }
            "seccomp" => match value {
                "unconfined" => seccomp = Seccomp::Unconfined,
                "builtin" | "default" => seccomp = Seccomp::Default,
                _ => {
                    return Err(ctx.err(
                        "security_opt",
                        format!("{opt:?}: custom seccomp profiles are not supported; use seccomp=unconfined or leave the default"),
                    ));
                }
            },
            "systempaths" => match value {
                "unconfined" => confined = false,
                _ => {
                    return Err(ctx.err(
                        "security_opt",
                        format!("{opt:?}: systempaths only accepts \"unconfined\""),
                    ));
                }
            },
            "apparmor" | "label" => {
                warnings.push(format!(
                    "security_opt {opt:?} is ignored: wharf has no AppArmor or SELinux support"
                ));
            }
            _ => return Err(ctx.err("security_opt", format!("unknown option {opt:?}"))),
        }
    }
    Ok((nnp, seccomp, confined))
}

/// Docker's masked paths (moby `oci/defaults.go`, Docker 28+ with `/proc/interrupts`).
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths (moby `oci/defaults.go`).
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The nodes runc creates in every container's `/dev` (`/dev/ptmx` is a link to
/// `pts/ptmx`, made by the runtime with the devpts mount).
fn default_devices() -> Vec<DeviceNode> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(path, major, minor)| DeviceNode {
        path: Cow::Borrowed(path),
        major,
        minor,
        mode: 0o666,
    })
    .collect()
}

// --- namespaces ------------------------------------------------------------------------

fn join_target(ctx: &Ctx<'_>, field: &str, value: &str) -> Result<Option<JoinTarget>, SpecError> {
    let target = if let Some(name) = value.strip_prefix("service:") {
        Some(JoinTarget::Service(name.to_string()))
    } else {
        value
            .strip_prefix("container:")
            .map(|name| JoinTarget::Container(name.to_string()))
    };
    match &target {
        Some(JoinTarget::Service(n) | JoinTarget::Container(n)) if n.is_empty() => {
            Err(ctx.err(field, format!("{value:?} names no service or container")))
        }
        _ => Ok(target),
    }
}

/// Namespaces from `network_mode`, `pid`, `ipc`, `uts` and `cgroup`. The cgroup namespace is
/// private by default on cgroup v2 and the host's on v1, like Docker's default
/// `cgroupns` mode on each.
fn namespaces(
    ctx: &Ctx<'_>,
    svc: &Service,
    cgroup: CgroupVersion,
) -> Result<Namespaces, SpecError> {
    let mode = |field: &'static str,
                value: Option<&str>,
                new: &[&str],
                join: bool|
     -> Result<Namespace, SpecError> {
        let Some(v) = value.filter(|v| !v.is_empty()) else {
            return Ok(Namespace::New);
        };
        if new.contains(&v) {
            return Ok(Namespace::New);
        }
        if v == "host" {
            return Ok(Namespace::Host);
        }
        if join && let Some(t) = join_target(ctx, field, v)? {
            return Ok(Namespace::Join(t));
        }
        Err(ctx.err(field, format!("unsupported mode {v:?}")))
    };
    let net = mode(
        "network_mode",
        svc.network_mode.as_deref(),
        &["bridge", "default", "none"],
        true,
    )?;
    let pid = mode("pid", svc.pid.as_deref(), &["private"], true)?;
    let ipc = mode(
        "ipc",
        svc.ipc.as_deref(),
        &["private", "shareable", "none"],
        true,
    )?;
    let uts = mode("uts", svc.uts.as_deref(), &["private"], false)?;
    let cgroup = match svc.cgroup.as_deref() {
        None | Some("") => match cgroup {
            CgroupVersion::V2 => Namespace::New,
            CgroupVersion::V1 => Namespace::Host,
        },
        Some(v) => mode("cgroup", Some(v), &["private"], false)?,
    };
    Ok(Namespaces {
        pid,
        net,
        ipc,
        uts,
        cgroup,
    })
}

// --- sysctls and rlimits ---------------------------------------------------------------

/// The IPC sysctls that are namespaced (runc's validator; Docker's `ValidateSysctl`).
const IPC_SYSCTLS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Only sysctls the kernel namespaces may be set, and only in a namespace of the
/// container's own: the IPC ones and `fs.mqueue.*` need a non-host IPC namespace, `net.*` a
/// non-host network namespace, `kernel.domainname` a private UTS namespace (runc's rules).
/// Anything else would change the host. Names are also checked to be plain dotted words, so
/// that the runtime can map them to `/proc/sys/…` without leaving it.
fn sysctls(
    ctx: &Ctx<'_>,
    svc: &Service,
    ns: &Namespaces,
) -> Result<BTreeMap<String, String>, SpecError> {
    let mut out = BTreeMap::new();
    for (key, value) in &svc.sysctls {
        let field = format!("sysctls.{key}");
        let well_formed = !key.is_empty()
            && key.split('.').all(|c| {
                !c.is_empty()
                    && c.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'@' | b':' | b'+')
                    })
            });
        if !well_formed {
            return Err(ctx.err(
                field,
                "not a sysctl name (dotted words like net.core.somaxconn)",
            ));
        }
        if value.contains('\0') || value.contains('\n') {
            return Err(ctx.err(field, "the value contains a NUL byte or a newline"));
        }
        let allowed = if IPC_SYSCTLS.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
            if ns.ipc == Namespace::Host {
                return Err(ctx.err(
                    field,
                    "is not allowed with ipc: host (it would change the host)",
                ));
            }
            true
        } else if key.starts_with("net.") {
            if ns.net == Namespace::Host {
                return Err(ctx.err(
                    field,
                    "is not allowed with network_mode: host (it would change the host)",
                ));
            }
            true
        } else if key == "kernel.domainname" {
            ns.uts == Namespace::New
        } else {
            false
        };
        if !allowed {
            return Err(ctx.err(
                field,
                "is not namespaced: only kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.* and net.* can be set per container",
            ));
        }
        out.insert(key.clone(), value.clone());
    }
    Ok(out)
}

/// Compose ulimit names → rlimit resources (the names of Docker's `go-units` table).
const RLIMITS: [(&str, &str); 16] = [
    ("as", "RLIMIT_AS"),
    ("core", "RLIMIT_CORE"),
    ("cpu", "RLIMIT_CPU"),
    ("data", "RLIMIT_DATA"),
    ("fsize", "RLIMIT_FSIZE"),
    ("locks", "RLIMIT_LOCKS"),
    ("memlock", "RLIMIT_MEMLOCK"),
    ("msgqueue", "RLIMIT_MSGQUEUE"),
    ("nice", "RLIMIT_NICE"),
    ("nofile", "RLIMIT_NOFILE"),
    ("nproc", "RLIMIT_NPROC"),
    ("rss", "RLIMIT_RSS"),
    ("rtprio", "RLIMIT_RTPRIO"),
    ("rttime", "RLIMIT_RTTIME"),
    ("sigpending", "RLIMIT_SIGPENDING"),
    ("stack", "RLIMIT_STACK"),
];

/// `ulimits`: a single value sets soft and hard; `-1` is unlimited; soft may not exceed hard
/// (go-units `ParseUlimit`).
fn rlimits(ctx: &Ctx<'_>, ulimits: &BTreeMap<String, Ulimit>) -> Result<Vec<Rlimit>, SpecError> {
    let mut out = Vec::new();
    for (name, limit) in ulimits {
        let field = format!("ulimits.{name}");
        let resource = RLIMITS
            .iter()
            .find(|(n, _)| *n == name.as_str())
            .map(|(_, r)| *r)
            .ok_or_else(|| ctx.err(&field, format!("unknown ulimit {name:?}")))?;
        let value = |v: i64| -> Result<u64, SpecError> {
            match v {
                -1 => Ok(u64::MAX),
                v if v < 0 => {
                    Err(ctx.err(&field, format!("{v} is negative (use -1 for unlimited)")))
                }
                v => Ok(v.unsigned_abs()),
            }
        };
        let (soft, hard) = match limit {
            Ulimit::Single(v) => (value(*v)?, value(*v)?),
            Ulimit::Range { soft, hard } => (value(*soft)?, value(*hard)?),
        };
        if soft > hard {
            return Err(ctx.err(
                &field,
                format!("the soft limit ({soft}) is above the hard limit ({hard})"),
            ));
        }
        out.push(Rlimit {
            resource: Cow::Borrowed(resource),
            soft,
            hard,
        });
    }
    Ok(out)
}

// --- mounts ----------------------------------------------------------------------------

/// A mount and where it came from, for messages.
struct Planned {
    mount: Mount,
    origin: String,
}

fn destination(ctx: &Ctx<'_>, field: &str, target: &str) -> Result<String, SpecError> {
    if target.contains('\0') {
        return Err(ctx.err(field, "the target contains a NUL byte"));
    }
    let dest = clean_absolute(target)
        .ok_or_else(|| ctx.err(field, format!("target {target:?} is not an absolute path")))?;
    if dest == "/" {
        return Err(ctx.err(field, "the target cannot be /"));
    }
    // runc refuses most mounts over /proc: they could hide the masked paths.
    if dest == "/proc" || dest.starts_with("/proc/") {
        return Err(ctx.err(field, format!("cannot mount over {dest}")));
    }
    Ok(dest)
}

fn relative_subpath(ctx: &Ctx<'_>, field: &str, sub: &str) -> Result<String, SpecError> {
    if sub.is_empty()
        || sub.starts_with('/')
        || sub.contains('\0')
        || sub.split('/').any(|c| c == "..")
    {
        return Err(ctx.err(
            field,
            format!("subpath {sub:?} must be a relative path inside the volume"),
        ));
    }
    Ok(sub.to_string())
}

fn propagation(ctx: &Ctx<'_>, field: &str, text: Option<&str>) -> Result<Propagation, SpecError> {
    Ok(match text {
        None | Some("") | Some("rprivate") => Propagation::Rprivate,
        Some("private") => Propagation::Private,
        Some("shared") => Propagation::Shared,
        Some("rshared") => Propagation::Rshared,
        Some("slave") => Propagation::Slave,
        Some("rslave") => Propagation::Rslave,
        Some(other) => {
            return Err(ctx.err(field, format!("unknown bind propagation {other:?}")));
        }
    })
}

/// The anonymous volumes among `mounts` (a container's [`ContainerSpec::mounts`]), by
/// destination: what its replacement reuses ([`SpecInput::anonymous_volumes`]).
pub fn anonymous_volumes_of(mounts: &[Mount]) -> BTreeMap<String, String> {
    mounts
        .iter()
        .filter_map(|m| match &m.kind {
            MountKind::Volume {
                name,
                anonymous: true,
                ..
            } => Some((m.destination.clone(), name.clone())),
            _ => None,
        })
        .collect()
}

/// For tests: the spec of container `id` of `project` (named `<project>-<id>`), of a
/// service with an anonymous volume at `/data` (`reuse`: the one it inherits).
#[cfg(test)]
pub(crate) fn anonymous_volume_spec(
    project: &str,
    id: &str,
    reuse: Option<&BTreeMap<String, String>>,
) -> ContainerSpec {
    let p = crate::compose::testing::project(
        "services:\n  app:\n    image: x\n    command: [\"true\"]\n    network_mode: none\n    volumes: [\"/data\"]\n",
        project,
    );
    build(&SpecInput {
        project: &p,
        service_name: "app",
        service: &p.services["app"],
        replica: 1,
        container_name: &format!("{project}-{id}"),
        container_id: id,
        image: None,
        image_healthcheck: None,
        passwd: None,
        group: None,
        cgroup: CgroupVersion::V2,
        volumes_from: &[],
        anonymous_volumes: reuse,
        inherited_hostname: None,
    })
    .expect("a valid spec")
}

/// Name of an anonymous volume: reused from the container being replaced, else derived from
/// the container id and the destination, so the same input gives the same name.
fn anonymous_name(input: &SpecInput<'_>, dest: &str) -> String {
    if let Some(name) = input.anonymous_volumes.and_then(|m| m.get(dest)) {
        return name.clone();
    }
    let mut h = Sha256::new();
    h.update(input.container_id.as_bytes());
    h.update([0]);
    h.update(dest.as_bytes());
    hex::encode(h.finalize())
}

/// Sizes as the kernel's tmpfs and Docker's go-units read them: a number with an optional
/// binary unit (`k`, `m`, `g`, `t`, `p`, optionally followed by `i`/`b`).
fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let digits_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    if num.is_empty() || num.starts_with('.') {
        return None;
    }
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return None,
    };
    if num.contains('.') {
        let v: f64 = num.parse().ok()?;
        let bytes = v * mult as f64;
        (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
    } else {
        num.parse::<u64>().ok()?.checked_mul(mult)
    }
}

fn parse_mode(text: &str) -> Option<u32> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
    {
        return None;
    }
    u32::from_str_radix(digits, 8).ok().filter(|m| *m <= 0o7777)
}

/// A `tmpfs:` entry: `/path[:options]`, Docker's `--tmpfs` syntax. Options: `ro`/`rw`,
/// `exec`/`noexec`, `suid`/`nosuid`, `dev`/`nodev`, `size=`, `mode=`, `uid=`, `gid=`,
/// `nr_inodes=`. Docker's defaults (noexec, nosuid, nodev) apply unless overridden.
fn tmpfs_entry(ctx: &Ctx<'_>, field: &str, entry: &str) -> Result<Mount, SpecError> {
    let (target, options) = match entry.split_once(':') {
        Some((t, o)) => (t, o),
        None => (entry, ""),
    };
    let destination = destination(ctx, field, target)?;
    let mut flags = MountFlags::SAFE;
    let mut opts = TmpfsOptions::default();
    for opt in options.split(',').filter(|o| !o.is_empty()) {
        let bad = || ctx.err(field, format!("invalid tmpfs option {opt:?}"));
        match opt.split_once('=') {
            None => match opt {
                "ro" => flags.read_only = true,
                "rw" => flags.read_only = false,
                "exec" => flags.noexec = false,
                "noexec" => flags.noexec = true,
                "suid" => flags.nosuid = false,
                "nosuid" => flags.nosuid = true,
                "dev" => flags.nodev = false,
                "nodev" => flags.nodev = true,
                _ => return Err(bad()),
            },
            Some((key, value)) => match key {
                "size" => opts.size = Some(parse_size(value).ok_or_else(bad)?),
                "mode" => opts.mode = Some(parse_mode(value).ok_or_else(bad)?),
                "uid" => opts.uid = Some(parse_id(value).ok_or_else(bad)?),
                "gid" => opts.gid = Some(parse_id(value).ok_or_else(bad)?),
                "nr_inodes" => opts.nr_inodes = Some(parse_size(value).ok_or_else(bad)?),
                _ => return Err(bad()),
            },
        }
    }
    Ok(Mount {
        destination,
        kind: MountKind::Tmpfs(opts),
        flags,
    })
}

/// One entry of the service's `volumes` (long form, as the loader normalizes them).
fn service_volume(
    ctx: &Ctx<'_>,
    input: &SpecInput<'_>,
    field: &str,
    v: &ServiceVolume,
    warnings: &mut Vec<String>,
) -> Result<Mount, SpecError> {
    let destination = destination(ctx, field, &v.target)?;
    let read_only = v.read_only;
    let flags = MountFlags {
        read_only,
        ..MountFlags::NONE
    };
    let source = v.source.as_deref().filter(|s| !s.is_empty());
    let kind = match v.kind.as_str() {
        "bind" => {
            let source = source.ok_or_else(|| ctx.err(field, "a bind mount needs a source"))?;
            if source.contains('\0') {
                return Err(ctx.err(field, "the source contains a NUL byte"));
            }
            let source = clean_absolute(source).ok_or_else(|| {
                ctx.err(
                    field,
                    format!("bind source {source:?} is not an absolute path"),
                )
            })?;
            let opts = v.bind.as_ref();
            if opts.and_then(|b| b.selinux.as_ref()).is_some() {
                warnings.push(format!("{field}: SELinux relabelling (z/Z) is ignored"));
            }
            let recursive = match opts.and_then(|b| b.recursive.as_deref()) {
                None | Some("enabled") => BindRecursion::Enabled,
                Some("disabled") => BindRecursion::Disabled,
                Some("writable") => BindRecursion::Writable,
                Some("readonly") => BindRecursion::Readonly,
                Some(other) => {
                    return Err(ctx.err(field, format!("unknown bind.recursive {other:?}")));
                }
            };
            if recursive == BindRecursion::Readonly && !read_only {
                return Err(ctx.err(field, "bind.recursive: readonly needs read_only: true"));
            }
            MountKind::Bind {
                source,
                propagation: propagation(ctx, field, opts.and_then(|b| b.propagation.as_deref()))?,
                recursive,
                // Long syntax refuses a missing source unless asked; the loader sets it for
                // the short syntax, where Docker Compose creates the directory.
                create_host_path: opts.and_then(|b| b.create_host_path).unwrap_or(false),
            }
        }
        "volume" => {
            let opts = v.volume.as_ref();
            let nocopy = opts.and_then(|o| o.nocopy).unwrap_or(false);
            let subpath = opts
                .and_then(|o| o.subpath.as_deref())
                .filter(|s| !s.is_empty())
                .map(|s| relative_subpath(ctx, field, s))
                .transpose()?;
            match source {
                Some(key) => {
                    let def = input.project.volumes.get(key).ok_or_else(|| {
                        ctx.err(
                            field,
                            format!("volume {key:?} is not declared under the top-level volumes"),
                        )
                    })?;
                    MountKind::Volume {
                        name: def.name.clone().unwrap_or_else(|| key.to_string()),
                        anonymous: false,
                        nocopy,
                        subpath,
                    }
                }
                None => {
                    if subpath.is_some() {
                        return Err(ctx.err(field, "an anonymous volume has no subpath"));
                    }
                    MountKind::Volume {
                        name: anonymous_name(input, &destination),
                        anonymous: true,
                        nocopy,
                        subpath: None,
                    }
                }
            }
        }
        "tmpfs" => {
            if source.is_some() {
                return Err(ctx.err(field, "a tmpfs mount takes no source"));
            }
            let t = v.tmpfs.as_ref();
            let size = match t.and_then(|t| t.size) {
                None | Some(model::Bytes(0)) => None,
                Some(model::Bytes(n)) if n < 0 => {
                    return Err(ctx.err(field, format!("tmpfs size {n} is negative")));
                }
                Some(model::Bytes(n)) => Some(n.unsigned_abs()),
            };
            let mode = match t.and_then(|t| t.mode) {
                None => None,
                Some(m) if m <= 0o7777 => Some(m),
                Some(m) => {
                    return Err(ctx.err(field, format!("tmpfs mode {m:o} is not a file mode")));
                }
            };
            return Ok(Mount {
                destination,
                kind: MountKind::Tmpfs(TmpfsOptions {
                    size,
                    mode,
                    ..TmpfsOptions::default()
                }),
                flags: MountFlags {
                    read_only,
                    ..MountFlags::SAFE
                },
            });
        }
        other => {
            return Err(ctx.err(
                field,
                format!("volume type {other:?} is not supported (bind, volume and tmpfs are)"),
            ));
        }
    };
    Ok(Mount {
        destination,
        kind,
        flags,
    })
}

/// Service `secrets` and `configs`, as Docker Compose mounts them: file-based ones are
/// read-only binds, inline `content` is written by the runtime; secrets land under
/// `/run/secrets/` unless the target is absolute, configs under `/`.
fn file_references(
    ctx: &Ctx<'_>,
    input: &SpecInput<'_>,
    planned: &mut Vec<Planned>,
    warnings: &mut Vec<String>,
) -> Result<(), SpecError> {
    let svc = input.service;
    for (kind, refs, defs, base) in [
        (
            "secret",
            &svc.secrets,
            &input.project.secrets,
            "/run/secrets/",
        ),
        ("config", &svc.configs, &input.project.configs, "/"),
    ] {
        for (i, r) in refs.iter().enumerate() {
            let field = format!("{kind}s[{i}]");
            let def = defs.get(&r.source).ok_or_else(|| {
                ctx.err(
                    &field,
                    format!("{kind} {:?} is not declared at the top level", r.source),
                )
            })?;
            let target = r
                .target
                .as_deref()
                .filter(|t| !t.is_empty())
                .unwrap_or(&r.source);
            let target = if target.starts_with('/') {
                target.to_string()
            } else {
                format!("{base}{target}")
            };
            let destination = destination(ctx, &field, &target)?;
            let id = |what: &str, v: &Option<String>| -> Result<Option<u32>, SpecError> {
                v.as_deref()
                    .map(|t| {
                        parse_id(t)
                            .ok_or_else(|| ctx.err(&field, format!("{what} {t:?} is not an id")))
                    })
                    .transpose()
            };
            let mode = r
                .mode
                .as_deref()
                .map(|m| {
                    parse_mode(m).ok_or_else(|| ctx.err(&field, format!("mode {m:?} is not octal")))
                })
                .transpose()?;
            let (uid, gid) = (id("uid", &r.uid)?, id("gid", &r.gid)?);
            let kind_ = if def.external {
                return Err(ctx.err(
                    &field,
                    format!("external {kind}s are not supported (Docker Compose refuses them too)"),
                ));
            } else if let Some(file) = def.file.as_deref() {
                if uid.is_some() || gid.is_some() || mode.is_some() {
                    // Docker Compose ignores them for bind-mounted files as well.
                    warnings.push(format!(
                        "{field}: uid, gid and mode are ignored for a file-based {kind}"
                    ));
                }
                let source = clean_absolute(file).ok_or_else(|| {
                    ctx.err(
                        &field,
                        format!("{kind} file {file:?} is not an absolute path"),
                    )
                })?;
                MountKind::Bind {
                    source,
                    propagation: Propagation::Rprivate,
                    recursive: BindRecursion::Enabled,
                    create_host_path: false,
                }
            } else if let Some(content) = def.content.as_deref() {
                MountKind::Content {
                    origin: format!("{kind} {}", r.source),
                    content: content.to_string(),
                    mode,
                    uid,
                    gid,
                }
            } else {
                return Err(ctx.err(
                    &field,
                    format!(
                        "{kind} {:?}: only file and content sources are supported",
                        r.source
                    ),
                ));
            };
            planned.push(Planned {
                mount: Mount {
                    destination,
                    kind: kind_,
                    flags: MountFlags {
                        read_only: true,
                        ..MountFlags::NONE
                    },
                },
                origin: field,
            });
        }
    }
    Ok(())
}

/// Every mount, in the order to perform them.
///
/// Precedence at one destination, highest first: the service's own mounts (`volumes`,
/// `tmpfs`, `secrets`, `configs`; two of them at one destination is an error), then
/// `volumes_from` (a later entry over an earlier one; `:ro` makes every inherited mount
/// read-only, `:rw` keeps each one's own mode), then the image's `VOLUME`s as anonymous
/// volumes, then Docker's standard mounts and the per-container `/etc` files, which a user
/// mount at the same place replaces (moby `WithMounts`). The list is then sorted by path
/// depth, stably, so a parent is always mounted before what is mounted inside it.
fn mounts(
    ctx: &Ctx<'_>,
    input: &SpecInput<'_>,
    ns: &Namespaces,
    privileged: bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<Mount>, SpecError> {
    let svc = input.service;
    let mut own: Vec<Planned> = Vec::new();
    for (i, v) in svc.volumes.iter().enumerate() {
        let field = format!("volumes[{i}]");
        own.push(Planned {
            mount: service_volume(ctx, input, &field, v, warnings)?,
            origin: field,
        });
    }
    for (i, t) in svc.tmpfs.iter().enumerate() {
        let field = format!("tmpfs[{i}]");
        own.push(Planned {
            mount: tmpfs_entry(ctx, &field, t)?,
            origin: field,
        });
    }
    file_references(ctx, input, &mut own, warnings)?;
    for (i, a) in own.iter().enumerate() {
        if let Some(b) = own[i + 1..]
            .iter()
            .find(|b| b.mount.destination == a.mount.destination)
        {
            return Err(SpecError::DuplicateMount {
                service: ctx.service.to_string(),
                destination: a.mount.destination.clone(),
                first: a.origin.clone(),
                second: b.origin.clone(),
            });
        }
    }
    let mut taken: BTreeSet<String> = own.iter().map(|p| p.mount.destination.clone()).collect();

    // volumes_from
    if input.volumes_from.len() != svc.volumes_from.len() {
        return Err(ctx.err(
            "volumes_from",
            format!(
                "{} entries but the mounts of {} containers were given",
                svc.volumes_from.len(),
                input.volumes_from.len()
            ),
        ));
    }
    let mut inherited: Vec<Mount> = Vec::new();
    for (entry, source) in svc.volumes_from.iter().zip(input.volumes_from) {
        // `[service:|container:]NAME[:ro|:rw]`: the prefix goes first, so a container named
        // `ro` is a name, not a mode.
        let name_and_mode = entry
            .strip_prefix("container:")
            .or_else(|| entry.strip_prefix("service:"))
            .unwrap_or(entry);
        let force_ro = matches!(name_and_mode.rsplit_once(':'), Some((_, "ro")));
        for m in source.iter() {
            // Only storage is shared: binds and volumes. A tmpfs or a standard mount of the
            // other container would be a new, empty instance here anyway.
            if !matches!(m.kind, MountKind::Bind { .. } | MountKind::Volume { .. })
                || taken.contains(&m.destination)
            {
                continue;
            }
            let mut m = m.clone();
            m.flags.read_only |= force_ro;
            inherited.retain(|x| x.destination != m.destination);
            inherited.push(m);
        }
    }
    taken.extend(inherited.iter().map(|m| m.destination.clone()));

    // The image's VOLUMEs become anonymous volumes where nothing else is mounted.
    let mut image_volumes: Vec<Mount> = Vec::new();
    let image_paths = input
        .image
        .and_then(|i| i.config().as_ref())
        .and_then(|c| c.volumes().as_ref());
    for path in image_paths.into_iter().flatten() {
        let dest = destination(ctx, "image Volumes", path)?;
        if taken.contains(&dest) {
            continue;
        }
        taken.insert(dest.clone());
        image_volumes.push(Mount {
            kind: MountKind::Volume {
                name: anonymous_name(input, &dest),
                anonymous: true,
                nocopy: false,
                subpath: None,
            },
            destination: dest,
            flags: MountFlags::NONE,
        });
    }

    let mut standard = standard_mounts(input, ns, privileged)?;
    standard.retain(|m| !taken.contains(&m.destination));

    let mut all: Vec<Mount> = standard;
    all.extend(inherited);
    all.extend(image_volumes);
    all.extend(own.into_iter().map(|p| p.mount));
    all.sort_by_key(|m| m.destination.matches('/').count());
    Ok(all)
}

/// Docker's default mounts (moby `oci/defaults.go`, `WithMounts`), `/dev/shm` by IPC mode
/// and sized by `shm_size`, and the per-container `/etc/hostname`, `/etc/hosts` and
/// `/etc/resolv.conf` (read-only with a read-only root filesystem, like Docker).
fn standard_mounts(
    input: &SpecInput<'_>,
    ns: &Namespaces,
    privileged: bool,
) -> Result<Vec<Mount>, SpecError> {
    let ctx = Ctx {
        service: input.service_name,
    };
    let svc = input.service;
    let shm_size = match svc.shm_size {
        None | Some(model::Bytes(0)) => DEFAULT_SHM_SIZE,
        Some(model::Bytes(n)) if n < 0 => {
            return Err(ctx.err("shm_size", format!("{n} is negative")));
        }
        Some(model::Bytes(n)) => n.unsigned_abs(),
    };
    let m = |destination: &str, kind: MountKind, flags: MountFlags| Mount {
        destination: destination.to_string(),
        kind,
        flags,
    };
    let ro = |read_only: bool, flags: MountFlags| MountFlags { read_only, ..flags };
    let mut out = vec![
        m("/proc", MountKind::Proc, MountFlags::SAFE),
        m(
            "/dev",
            MountKind::Tmpfs(TmpfsOptions {
                size: Some(65536 * 1024),
                mode: Some(0o755),
                ..TmpfsOptions::default()
            }),
            MountFlags {
                nosuid: true,
                ..MountFlags::NONE
            },
        ),
        m(
            "/dev/pts",
            MountKind::Devpts,
            MountFlags {
                nosuid: true,
                noexec: true,
                ..MountFlags::NONE
            },
        ),
    ];
    let shm_flags = MountFlags::SAFE;
    let ipc_none = svc.ipc.as_deref() == Some("none");
    match &ns.ipc {
        Namespace::New if ipc_none => {}
        Namespace::New => out.push(m(
            "/dev/shm",
            MountKind::Tmpfs(TmpfsOptions {
                size: Some(shm_size),
                mode: Some(0o1777),
                ..TmpfsOptions::default()
            }),
            shm_flags,
        )),
        Namespace::Host => out.push(m(
            "/dev/shm",
            MountKind::Bind {
                source: "/dev/shm".into(),
                propagation: Propagation::Rprivate,
                recursive: BindRecursion::Enabled,
                create_host_path: false,
            },
            MountFlags::NONE,
        )),
        Namespace::Join(t) => out.push(m(
            "/dev/shm",
            MountKind::ShmFrom { target: t.clone() },
            MountFlags::NONE,
        )),
    }
    out.push(m("/dev/mqueue", MountKind::Mqueue, MountFlags::SAFE));
    // sysfs and the cgroup tree are read-only unless privileged (Docker).
    out.push(m(
        "/sys",
        MountKind::Sysfs,
        ro(!privileged, MountFlags::SAFE),
    ));
    out.push(m(
        "/sys/fs/cgroup",
        MountKind::Cgroup,
        ro(!privileged, MountFlags::SAFE),
    ));
    let etc_ro = svc.read_only == Some(true);
    for (dest, file) in [
        ("/etc/hostname", EtcFile::Hostname),
        ("/etc/hosts", EtcFile::Hosts),
        ("/etc/resolv.conf", EtcFile::ResolvConf),
    ] {
        out.push(m(
            dest,
            MountKind::EtcFile { file },
            ro(etc_ro, MountFlags::NONE),
        ));
    }
    Ok(out)
}

// --- healthcheck -----------------------------------------------------------------------

const HEALTH_INTERVAL: Duration = Duration::from_secs(30);
const HEALTH_TIMEOUT: Duration = Duration::from_secs(30);
const HEALTH_START_INTERVAL: Duration = Duration::from_secs(5);
const HEALTH_RETRIES: u64 = 3;

/// The service's `healthcheck` over the image's, field by field (Docker's `merge`: an unset
/// or zero service field takes the image's), then Docker's defaults (interval and timeout
/// 30s, start period 0, start interval 5s, 3 retries). `disable: true` or a `NONE` test
/// turns it off; `CMD` runs its arguments, `CMD-SHELL` runs them through `/bin/sh -c`.
fn healthcheck(
    ctx: &Ctx<'_>,
    svc: &Service,
    image: Option<&ImageHealthcheck>,
) -> Result<Option<HealthSpec>, SpecError> {
    let own = svc.healthcheck.as_ref();
    if own.is_some_and(|h| h.disable) {
        return Ok(None);
    }
    let image_duration = |field: &str, ns: Option<i64>| -> Result<Option<Duration>, SpecError> {
        match ns {
            None | Some(0) => Ok(None),
            Some(n) if n < 0 => Err(ctx.err(
                format!("image Healthcheck.{field}"),
                format!("{n} is negative"),
            )),
            Some(n) => Ok(Some(Duration::from_nanos(n.unsigned_abs()))),
        }
    };
    let pick = |field: &str,
                own: Option<model::Duration>,
                image: Option<i64>|
     -> Result<Option<Duration>, SpecError> {
        match own.map(|d| d.0).filter(|d| !d.is_zero()) {
            Some(d) => Ok(Some(d)),
            None => image_duration(field, image),
        }
    };
    let test: Vec<String> = match own.map(|h| &h.test).filter(|t| !t.is_empty()) {
        Some(t) => t.clone(),
        None => image.and_then(|h| h.test.clone()).unwrap_or_default(),
    };
    let Some(kind) = test.first() else {
        return Ok(None);
    };
    let rest = &test[1..];
    let args: Vec<String> = match kind.as_str() {
        "NONE" => return Ok(None),
        "CMD" => rest.to_vec(),
        "CMD-SHELL" => ["/bin/sh", "-c"]
            .iter()
            .map(|s| s.to_string())
            .chain(rest.iter().cloned())
            .collect(),
        other => {
            return Err(ctx.err(
                "healthcheck.test",
                format!("must start with CMD, CMD-SHELL or NONE, not {other:?}"),
            ));
        }
    };
    if rest.is_empty() || rest[0].is_empty() {
        return Err(ctx.err("healthcheck.test", format!("{kind} needs a command")));
    }
    if args.iter().any(|a| a.contains('\0')) {
        return Err(ctx.err("healthcheck.test", "an argument contains a NUL byte"));
    }
    let interval = pick(
        "Interval",
        own.and_then(|h| h.interval),
        image.and_then(|h| h.interval),
    )?;
    let timeout = pick(
        "Timeout",
        own.and_then(|h| h.timeout),
        image.and_then(|h| h.timeout),
    )?;
    let start_period = pick(
        "StartPeriod",
        own.and_then(|h| h.start_period),
        image.and_then(|h| h.start_period),
    )?;
    let start_interval = pick(
        "StartInterval",
        own.and_then(|h| h.start_interval),
        image.and_then(|h| h.start_interval),
    )?;
    // Docker: each duration is 0 (default) or at least 1 ms.
    for (field, d) in [
        ("interval", interval),
        ("timeout", timeout),
        ("start_period", start_period),
        ("start_interval", start_interval),
    ] {
        if d.is_some_and(|d| d < Duration::from_millis(1)) {
            return Err(ctx.err(format!("healthcheck.{field}"), "must be at least 1ms"));
        }
    }
    let retries = match own.and_then(|h| h.retries).filter(|r| *r > 0) {
        Some(r) => r,
        None => match image.and_then(|h| h.retries) {
            None | Some(0) => HEALTH_RETRIES,
            Some(r) if r < 0 => {
                return Err(ctx.err("image Healthcheck.Retries", format!("{r} is negative")));
            }
            Some(r) => r.unsigned_abs(),
        },
    };
    Ok(Some(HealthSpec {
        args,
        interval: interval.unwrap_or(HEALTH_INTERVAL),
        timeout: timeout.unwrap_or(HEALTH_TIMEOUT),
        start_period: start_period.unwrap_or(Duration::ZERO),
        start_interval: start_interval.unwrap_or(HEALTH_START_INTERVAL),
        retries,
    }))
}

// --- restart, stop, logging ------------------------------------------------------------

/// `restart` (`no`, `always`, `on-failure[:N]`, `unless-stopped`), overridden by
/// `deploy.restart_policy` when present, as Docker Compose does (`getRestartPolicy`). The
/// deploy condition defaults to `any` as the Compose specification documents. A retry count
/// with anything but on-failure is refused, like the Docker engine does. `on-failure:0`
/// means no limit.
fn restart_policy(
    ctx: &Ctx<'_>,
    svc: &Service,
    warnings: &mut Vec<String>,
) -> Result<RestartPolicy, SpecError> {
    let policy =
        |field: &str, name: &str, retries: Option<u64>| -> Result<RestartPolicy, SpecError> {
            let p = match name {
                "no" | "none" | "" => RestartPolicy::No,
                "always" | "any" => RestartPolicy::Always,
                "unless-stopped" => RestartPolicy::UnlessStopped,
                "on-failure" => {
                    return Ok(RestartPolicy::OnFailure {
                        max_retries: retries.filter(|r| *r > 0),
                    });
                }
                other => return Err(ctx.err(field, format!("unknown restart policy {other:?}"))),
            };
            if retries.is_some_and(|r| r > 0) {
                return Err(ctx.err(
                    field,
                    "a maximum retry count can only be used with on-failure",
                ));
            }
            Ok(p)
        };
    if let Some(rp) = svc.deploy.as_ref().and_then(|d| d.restart_policy.as_ref()) {
        if rp.delay.is_some() || rp.window.is_some() {
            warnings.push(
                "deploy.restart_policy delay and window are ignored: wharf uses Docker's restart back-off"
                    .into(),
            );
        }
        return policy(
            "deploy.restart_policy.condition",
            rp.condition.as_deref().unwrap_or("any"),
            rp.max_attempts,
        );
    }
    let Some(text) = svc.restart.as_deref() else {
        return Ok(RestartPolicy::No);
    };
    let (name, retries) = match text.split_once(':') {
        Some((name, n)) => {
            let n: u64 = (is_numeric(n) && n.len() <= 18)
                .then(|| n.parse().ok())
                .flatten()
                .ok_or_else(|| {
                    ctx.err("restart", format!("{text:?}: {n:?} is not a retry count"))
                })?;
            (name, Some(n))
        }
        None => (text, None),
    };
    if retries.is_some() && name != "on-failure" {
        return Err(ctx.err(
            "restart",
            format!("{text:?}: a maximum retry count can only be used with on-failure"),
        ));
    }
    policy("restart", name, retries)
}

/// `stop_signal` (else the image's `StopSignal`, else SIGTERM) and `stop_grace_period`
/// (default 10s).
fn stop_spec(
    ctx: &Ctx<'_>,
    svc: &Service,
    image: Option<&oci_spec::image::Config>,
) -> Result<StopSpec, SpecError> {
    let signal = match svc.stop_signal.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Signal::parse(s)
            .ok_or_else(|| ctx.err("stop_signal", format!("unknown signal {s:?}")))?,
        None => match image
            .and_then(|c| c.stop_signal().as_deref())
            .filter(|s| !s.is_empty())
        {
            Some(s) => Signal::parse(s)
                .ok_or_else(|| ctx.err("image StopSignal", format!("unknown signal {s:?}")))?,
            None => Signal::TERM,
        },
    };
    Ok(StopSpec {
        signal,
        grace_period: svc.stop_grace_period.map_or(DEFAULT_STOP_GRACE, |d| d.0),
    })
}

/// `logging`: `json-file` (the default) and `local` both become wharf's JSON-lines log, the
/// latter with Docker's `local` rotation defaults (20 MiB × 5); `none` discards output. Any
/// other driver (syslog, journald, …) falls back to the JSON-lines log with a warning rather
/// than refusing the service: the container runs, and `wharf logs` works. `max-size` and
/// `max-file` are honoured; Docker's other json-file options are accepted and ignored;
/// unknown options are refused, as Docker refuses them.
fn logging(ctx: &Ctx<'_>, svc: &Service, warnings: &mut Vec<String>) -> Result<LogSpec, SpecError> {
    let logging = svc.logging.as_ref();
    let driver = logging
        .and_then(|l| l.driver.as_deref())
        .unwrap_or("json-file");
    let (mut spec, check_options) = match driver {
        "json-file" | "" => (
            LogSpec {
                driver: LogDriver::JsonFile,
                max_size: None,
                max_file: 1,
            },
            true,
        ),
        "local" => (
            LogSpec {
                driver: LogDriver::JsonFile,
                max_size: Some(20 << 20),
                max_file: 5,
            },
            true,
        ),
        "none" => (
            LogSpec {
                driver: LogDriver::None,
                max_size: None,
                max_file: 1,
            },
            false,
        ),
        other => {
            warnings.push(format!(
                "logging driver {other:?} is not supported: logs go to wharf's JSON-lines log, and its options are ignored"
            ));
            (
                LogSpec {
                    driver: LogDriver::JsonFile,
                    max_size: None,
                    max_file: 1,
                },
                false,
            )
        }
    };
    if !check_options {
        return Ok(spec);
    }
    for (key, value) in logging.map(|l| &l.options).into_iter().flatten() {
        let field = format!("logging.options.{key}");
        match key.as_str() {
            "max-size" => {
                spec.max_size = if value == "-1" {
                    None
                } else {
                    let n = parse_size(value).filter(|n| *n > 0).ok_or_else(|| {
                        ctx.err(&field, format!("{value:?} is not a size like 10m"))
                    })?;
                    Some(n)
                };
            }
            "max-file" => {
                spec.max_file = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| {
                        ctx.err(&field, format!("{value:?} is not a count of at least 1"))
                    })?;
            }
            "compress" | "labels" | "labels-regex" | "env" | "env-regex" | "tag" => {
                warnings.push(format!("{field} is ignored"));
            }
            _ => {
                return Err(ctx.err(
                    &field,
                    format!("unknown option for the {driver} log driver"),
                ));
            }
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::model::{
        BindOptions, Bytes, Deploy, FileObject, FileReference, Healthcheck as ComposeHealthcheck,
        Logging, Resource, Resources as ComposeResources, RestartPolicy as DeployRestart,
        TmpfsOptions as ComposeTmpfs, Volume, VolumeOptions,
    };
    use proptest::prelude::*;

    const ID: &str = "3f2a9c1b7d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";
    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\n\
        # a comment\n\
        \n\
        nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
        broken:x:notanumber:0:garbage line\n\
        short:x\n\
        app:x:1000:1000:app:/home/app:/bin/sh\n\
        app:x:1001:1001:second app entry loses:/nowhere:/bin/sh\n\
        nohome:x:1002:1002:::\n";
    const GROUP: &[u8] = b"root:x:0:\n\
        wheel:x:10:root,app\n\
        nogroup:x:65534:\n\
        app:x:1000:\n\
        docker:x:999: app , other\n\
        bad:x:zz:app\n\
        staff:x:50\n";

    /// A busybox-like image config.
    fn image(extra: serde_json::Value) -> ImageConfiguration {
        let mut config = serde_json::json!({
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "IMAGE_VAR=1"],
            "Cmd": ["sh"],
            "WorkingDir": "/srv",
        });
        if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                c.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": []},
        }))
        .unwrap()
    }

    fn project() -> Project {
        Project {
            name: "shop".into(),
            volumes: BTreeMap::from([
                (
                    "data".to_string(),
                    Volume {
                        name: Some("shop_data".into()),
                        ..Volume::default()
                    },
                ),
                ("bare".to_string(), Volume::default()),
            ]),
            secrets: BTreeMap::from([
                (
                    "db_password".to_string(),
                    FileObject {
                        file: Some("/home/me/shop/pw.txt".into()),
                        ..FileObject::default()
                    },
                ),
                (
                    "from_env".to_string(),
                    FileObject {
                        environment: Some("TOKEN".into()),
                        ..FileObject::default()
                    },
                ),
            ]),
            configs: BTreeMap::from([(
                "app_conf".to_string(),
                FileObject {
                    content: Some("debug = true\n".into()),
                    ..FileObject::default()
                },
            )]),
            ..Project::default()
        }
    }

    /// Everything `SpecInput` borrows, owned, with defaults a test overrides.
    struct Case {
        project: Project,
        service: Service,
        image: Option<ImageConfiguration>,
        healthcheck: Option<ImageHealthcheck>,
        passwd: Option<Vec<u8>>,
        group: Option<Vec<u8>>,
        cgroup: CgroupVersion,
        volumes_from: Vec<Vec<Mount>>,
        anonymous: BTreeMap<String, String>,
        inherited_hostname: Option<String>,
        id: &'static str,
    }

    impl Case {
        fn new(service: Service) -> Case {
            Case {
                project: project(),
                service,
                image: Some(image(serde_json::json!({}))),
                healthcheck: None,
                passwd: Some(PASSWD.to_vec()),
                group: Some(GROUP.to_vec()),
                cgroup: CgroupVersion::V2,
                volumes_from: Vec::new(),
                anonymous: BTreeMap::new(),
                inherited_hostname: None,
                id: ID,
            }
        }

        fn build(&self) -> Result<ContainerSpec, SpecError> {
            let vf: Vec<&[Mount]> = self.volumes_from.iter().map(Vec::as_slice).collect();
            build(&SpecInput {
                project: &self.project,
                service_name: "web",
                service: &self.service,
                replica: 1,
                container_name: "shop-web-1",
                container_id: self.id,
                image: self.image.as_ref(),
                image_healthcheck: self.healthcheck.as_ref(),
                passwd: self.passwd.as_deref(),
                group: self.group.as_deref(),
                cgroup: self.cgroup,
                volumes_from: &vf,
                anonymous_volumes: Some(&self.anonymous),
                inherited_hostname: self.inherited_hostname.as_deref(),
            })
        }
    }

    fn ok(service: Service) -> ContainerSpec {
        Case::new(service).build().unwrap()
    }

    fn err(service: Service) -> String {
        Case::new(service).build().unwrap_err().to_string()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn svc(f: impl FnOnce(&mut Service)) -> Service {
        let mut s = Service::default();
        f(&mut s);
        s
    }

    // --- process arguments -------------------------------------------------------------

    #[test]
    fn args_follow_dockers_rules() {
        type Row<'a> = (
            Option<&'a [&'a str]>, // image Entrypoint
            Option<&'a [&'a str]>, // image Cmd
            Option<&'a [&'a str]>, // service entrypoint
            Option<&'a [&'a str]>, // service command
            Option<&'a [&'a str]>, // expected args (None: nothing to run)
        );
        let rows: &[Row] = &[
            (None, Some(&["sh"]), None, None, Some(&["sh"])),
            (
                None,
                Some(&["sh"]),
                None,
                Some(&["echo", "hi"]),
                Some(&["echo", "hi"]),
            ),
            (
                Some(&["/init"]),
                Some(&["serve"]),
                None,
                None,
                Some(&["/init", "serve"]),
            ),
            (
                Some(&["/init"]),
                Some(&["serve"]),
                None,
                Some(&["debug"]),
                Some(&["/init", "debug"]),
            ),
            // a service entrypoint drops the image's Cmd
            (
                Some(&["/init"]),
                Some(&["serve"]),
                Some(&["/bin/app"]),
                None,
                Some(&["/bin/app"]),
            ),
            (
                None,
                Some(&["sh"]),
                Some(&["/bin/app", "-v"]),
                Some(&["x"]),
                Some(&["/bin/app", "-v", "x"]),
            ),
            // an empty entrypoint clears the image's but keeps its Cmd
            (
                Some(&["/init"]),
                Some(&["serve"]),
                Some(&[]),
                None,
                Some(&["serve"]),
            ),
            (
                Some(&["/init"]),
                Some(&["serve"]),
                Some(&[]),
                Some(&["ls"]),
                Some(&["ls"]),
            ),
            // an empty command counts as no command
            (
                Some(&["/init"]),
                Some(&["serve"]),
                None,
                Some(&[]),
                Some(&["/init", "serve"]),
            ),
            (
                Some(&["/init"]),
                None,
                Some(&["/bin/app"]),
                Some(&[]),
                Some(&["/bin/app"]),
            ),
            (None, None, None, None, None),
            (Some(&["/init"]), None, Some(&[]), None, None),
            (None, None, None, Some(&[]), None),
        ];
        for (i, (iep, icmd, ep, cmd, want)) in rows.iter().enumerate() {
            let mut extra = serde_json::json!({"Entrypoint": null, "Cmd": null});
            if let Some(v) = iep {
                extra["Entrypoint"] = serde_json::json!(v);
            }
            if let Some(v) = icmd {
                extra["Cmd"] = serde_json::json!(v);
            }
            let mut case = Case::new(svc(|s| {
                s.entrypoint = ep.map(strings);
                s.command = cmd.map(strings);
            }));
            case.image = Some(image(extra));
            match (case.build(), want) {
                (Ok(spec), Some(want)) => assert_eq!(spec.process.args, strings(want), "row {i}"),
                (Err(SpecError::NothingToRun { service }), None) => assert_eq!(service, "web"),
                (got, _) => panic!("row {i}: {got:?}"),
            }
        }
    }

    #[test]
    fn args_without_an_image_config_and_bad_programs() {
        let mut case = Case::new(svc(|s| s.command = Some(strings(&["/app"]))));
        case.image = None;
        assert_eq!(case.build().unwrap().process.args, ["/app"]);
        let e = err(svc(|s| s.entrypoint = Some(strings(&["", "x"]))));
        assert!(e.contains("empty string"), "{e}");
        let e = err(svc(|s| s.command = Some(strings(&["a\0b"]))));
        assert!(e.contains("NUL"), "{e}");
        assert!(
            Case {
                image: None,
                ..Case::new(Service::default())
            }
            .build()
            .unwrap_err()
            .to_string()
            .contains("nothing to run")
        );
    }

    // --- environment ------------------------------------------------------------------

    fn env_of(s: Service) -> Vec<String> {
        ok(s).process.env
    }

    #[test]
    fn environment_starts_from_dockers_defaults() {
        let mut case = Case::new(Service::default());
        case.image = Some(image(serde_json::json!({"Env": ["FOO=bar"]})));
        assert_eq!(
            case.build().unwrap().process.env,
            strings(&[
                &format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=3f2a9c1b7d4e",
                "FOO=bar",
                "HOME=/root",
            ])
        );
    }

    #[test]
    fn service_values_win_in_place_and_unset_variables_disappear() {
        let env = env_of(svc(|s| {
            s.environment = BTreeMap::from([
                ("IMAGE_VAR".to_string(), Some("2".to_string())),
                ("ZED".to_string(), Some(String::new())),
                ("ALPHA".to_string(), Some("a=b".to_string())),
                ("UNRESOLVED".to_string(), None),
            ]);
        }));
        assert_eq!(
            env,
            strings(&[
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOSTNAME=3f2a9c1b7d4e",
                "ALPHA=a=b",
                "IMAGE_VAR=2",
                "ZED=",
                "HOME=/root",
            ])
        );
        // A bare variable unsets the image's value too, and even PATH, like Docker.
        let env = env_of(svc(|s| {
            s.environment =
                BTreeMap::from([("IMAGE_VAR".to_string(), None), ("PATH".to_string(), None)]);
        }));
        assert_eq!(env, strings(&["HOSTNAME=3f2a9c1b7d4e", "HOME=/root"]));
    }

    #[test]
    fn term_home_and_hostname_variables() {
        let env = env_of(svc(|s| {
            s.tty = Some(true);
            s.user = Some("app".into());
            s.hostname = Some("front".into());
        }));
        assert!(env.contains(&"TERM=xterm".to_string()), "{env:?}");
        assert!(env.contains(&"HOME=/home/app".to_string()), "{env:?}");
        assert!(env.contains(&"HOSTNAME=front".to_string()), "{env:?}");
        let env = env_of(svc(|s| {
            s.environment = BTreeMap::from([("HOME".to_string(), Some("/data".to_string()))]);
            s.tty = Some(true);
            s.environment
                .insert("TERM".to_string(), Some("dumb".to_string()));
        }));
        assert_eq!(env.iter().filter(|e| e.starts_with("HOME=")).count(), 1);
        assert!(env.contains(&"HOME=/data".to_string()));
        assert!(env.contains(&"TERM=dumb".to_string()));
        // an image PATH replaces the default in place
        let mut case = Case::new(Service::default());
        case.image = Some(image(serde_json::json!({"Env": ["PATH=/opt/bin"]})));
        assert_eq!(case.build().unwrap().process.env[0], "PATH=/opt/bin");
    }

    #[test]
    fn bad_variable_names_are_refused() {
        let e = err(svc(|s| {
            s.environment = BTreeMap::from([("A=B".to_string(), Some("x".to_string()))]);
        }));
        assert!(e.contains("environment") && e.contains("A=B"), "{e}");
        let e = err(svc(|s| {
            s.environment = BTreeMap::from([("A".to_string(), Some("x\0".to_string()))]);
        }));
        assert!(e.contains("NUL"), "{e}");
    }

    // --- users ------------------------------------------------------------------------

    #[test]
    fn users_resolve_like_runc() {
        // (user, uid, gid, additional gids, home)
        let rows: &[(&str, u32, u32, &[u32], &str)] = &[
            ("root", 0, 0, &[0, 10], "/root"),
            ("0", 0, 0, &[0, 10], "/root"),
            ("app", 1000, 1000, &[1000, 10, 999], "/home/app"),
            ("1000", 1000, 1000, &[1000, 10, 999], "/home/app"),
            ("app:wheel", 1000, 10, &[10], "/home/app"),
            ("app:10", 1000, 10, &[10], "/home/app"),
            ("app:4242", 1000, 4242, &[4242], "/home/app"),
            ("nobody:nogroup", 65534, 65534, &[65534], "/nonexistent"),
            ("4242", 4242, 0, &[0], "/"),
            ("4242:4343", 4242, 4343, &[4343], "/"),
            ("nohome", 1002, 1002, &[1002], "/"),
        ];
        for (user, uid, gid, gids, home) in rows {
            let spec = ok(svc(|s| s.user = Some(user.to_string())));
            let u = &spec.process.user;
            assert_eq!(
                (u.uid, u.gid, u.additional_gids.as_slice(), u.home.as_str()),
                (*uid, *gid, *gids, *home),
                "{user}"
            );
        }
    }

    #[test]
    fn image_user_and_group_add() {
        let mut case = Case::new(svc(|s| s.group_add = strings(&["wheel", "777", "999"])));
        case.image = Some(image(serde_json::json!({"User": "app"})));
        let u = case.build().unwrap().process.user;
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.additional_gids, [1000, 10, 999, 777]);
        // the service's user wins over the image's
        case.service.user = Some("nobody".into());
        assert_eq!(case.build().unwrap().process.user.uid, 65534);
        let e = err(svc(|s| s.group_add = strings(&["nosuchgroup"])));
        assert!(
            e.contains("group_add") && e.contains("nosuchgroup") && e.contains("/etc/group"),
            "{e}"
        );
    }

    #[test]
    fn unknown_users_and_groups_name_the_file() {
        match Case::new(svc(|s| s.user = Some("ghost".into()))).build() {
            Err(SpecError::UnknownUser { name, file, .. }) => {
                assert_eq!((name.as_str(), file.as_str()), ("ghost", "/etc/passwd"));
            }
            other => panic!("{other:?}"),
        }
        match Case::new(svc(|s| s.user = Some("app:ghosts".into()))).build() {
            Err(SpecError::UnknownGroup { name, file, .. }) => {
                assert_eq!((name.as_str(), file.as_str()), ("ghosts", "/etc/group"));
            }
            other => panic!("{other:?}"),
        }
        // malformed lines never match
        for user in ["broken", "short", "staff:staff", "app:bad"] {
            assert!(
                Case::new(svc(|s| s.user = Some(user.into())))
                    .build()
                    .is_err(),
                "{user}"
            );
        }
        let mut case = Case::new(svc(|s| s.user = Some("app".into())));
        case.passwd = None;
        let e = case.build().unwrap_err().to_string();
        assert!(e.contains("the image has none"), "{e}");
        // numeric ids need no passwd at all
        case.service.user = Some("1000:1000".into());
        case.group = None;
        let u = case.build().unwrap().process.user;
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1000, "/"));
        for bad in [":1000", "app:", "a:b:c", "99999999999", "2147483648"] {
            let e = err(svc(|s| s.user = Some(bad.into())));
            assert!(e.contains("user"), "{bad}: {e}");
        }
    }

    // --- working dir, hostnames, flags -------------------------------------------------

    #[test]
    fn working_dir_precedence_and_cleaning() {
        assert_eq!(ok(Service::default()).process.cwd, "/srv");
        assert_eq!(
            ok(svc(|s| s.working_dir = Some("/app/./x/../y/".into())))
                .process
                .cwd,
            "/app/y"
        );
        let mut case = Case::new(Service::default());
        case.image = Some(image(serde_json::json!({"WorkingDir": ""})));
        assert_eq!(case.build().unwrap().process.cwd, "/");
        let e = err(svc(|s| s.working_dir = Some("app".into())));
        assert!(e.contains("working_dir") && e.contains("absolute"), "{e}");
        case.image = Some(image(serde_json::json!({"WorkingDir": "rel"})));
        let e = case.build().unwrap_err().to_string();
        assert!(e.contains("image WorkingDir"), "{e}");
    }

    #[test]
    fn hostnames() {
        let spec = ok(Service::default());
        assert_eq!(spec.hostname, "3f2a9c1b7d4e");
        assert_eq!(spec.domainname, None);
        let spec = ok(svc(|s| {
            s.hostname = Some("db".into());
            s.domainname = Some("example.org".into());
        }));
        assert_eq!(
            (spec.hostname.as_str(), spec.domainname.as_deref()),
            ("db", Some("example.org"))
        );
        let mut case = Case::new(svc(|s| s.network_mode = Some("host".into())));
        case.inherited_hostname = Some("buildhost".into());
        assert_eq!(case.build().unwrap().hostname, "buildhost");
        // a private UTS namespace with a new network ignores the inherited name
        case.service.network_mode = None;
        assert_eq!(case.build().unwrap().hostname, "3f2a9c1b7d4e");
        for (f, want) in [
            (
                svc(|s| {
                    s.network_mode = Some("service:db".into());
                    s.hostname = Some("x".into());
                }),
                "network_mode",
            ),
            (
                svc(|s| {
                    s.uts = Some("host".into());
                    s.domainname = Some("x".into());
                }),
                "uts: host",
            ),
            (svc(|s| s.hostname = Some("a".repeat(65))), "longer than 64"),
            (svc(|s| s.hostname = Some("a b".into())), "blank"),
        ] {
            let e = err(f);
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn process_flags_init_and_oom_score() {
        let spec = ok(svc(|s| {
            s.tty = Some(true);
            s.stdin_open = Some(true);
            s.init = Some(true);
            s.read_only = Some(true);
            s.oom_score_adj = Some(-500);
        }));
        assert!(spec.process.terminal && spec.process.stdin_open && spec.process.init);
        assert!(spec.read_only_rootfs);
        assert_eq!(spec.process.oom_score_adj, Some(-500));
        let spec = ok(svc(|s| {
            s.init = Some(true);
            s.pid = Some("host".into());
        }));
        assert!(!spec.process.init);
        assert!(
            spec.warnings.iter().any(|w| w.contains("init")),
            "{:?}",
            spec.warnings
        );
        for v in [-1001, 1001] {
            let e = err(svc(|s| s.oom_score_adj = Some(v)));
            assert!(e.contains("oom_score_adj"), "{e}");
        }
    }

    // --- stop --------------------------------------------------------------------------

    #[test]
    fn signals_parse_like_docker() {
        for (text, number, name) in [
            ("SIGTERM", 15, "SIGTERM"),
            ("term", 15, "SIGTERM"),
            ("SigKill", 9, "SIGKILL"),
            ("9", 9, "SIGKILL"),
            ("SIGQUIT", 3, "SIGQUIT"),
            ("SIGIOT", 6, "SIGABRT"),
            ("CLD", 17, "SIGCHLD"),
            ("SIGRTMIN", 34, "SIGRTMIN"),
            ("SIGRTMIN+3", 37, "SIGRTMIN+3"),
            ("RTMAX-1", 63, "SIGRTMAX-1"),
            ("SIGRTMAX", 64, "SIGRTMAX"),
            ("33", 33, "33"),
            ("32", 32, "32"),
        ] {
            let s = Signal::parse(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(
                (s.number(), s.to_string().as_str()),
                (number, name),
                "{text}"
            );
            // names print back to a parsable name
            assert_eq!(Signal::parse(&s.to_string()), Some(s));
        }
        for bad in [
            "",
            "0",
            "65",
            "SIGFOO",
            "RTMIN+31",
            "RTMAX-31",
            "RTMIN+",
            "-1",
            "999999999999",
        ] {
            assert_eq!(Signal::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn stop_signal_and_grace_period() {
        let spec = ok(Service::default());
        assert_eq!(spec.stop.signal, Signal::TERM);
        assert_eq!(spec.stop.grace_period, Duration::from_secs(10));
        let mut case = Case::new(Service::default());
        case.image = Some(image(serde_json::json!({"StopSignal": "SIGQUIT"})));
        assert_eq!(case.build().unwrap().stop.signal.number(), 3);
        case.service.stop_signal = Some("SIGINT".into());
        case.service.stop_grace_period = model::Duration::parse("1m30s");
        let stop = case.build().unwrap().stop;
        assert_eq!((stop.signal.number(), stop.grace_period.as_secs()), (2, 90));
        case.service.stop_signal = Some("SIGNOPE".into());
        assert!(
            case.build()
                .unwrap_err()
                .to_string()
                .contains("stop_signal")
        );
    }

    // --- capabilities and security --------------------------------------------------------

    fn caps(s: Service) -> Result<Vec<&'static str>, String> {
        Case::new(s)
            .build()
            .map(|spec| {
                spec.security
                    .capabilities
                    .iter()
                    .map(|c| c.name())
                    .collect()
            })
            .map_err(|e| e.to_string())
    }

    #[test]
    fn capability_names() {
        assert_eq!(Capability::ALL.len(), 41);
        for (i, c) in Capability::ALL.iter().enumerate() {
            assert_eq!(usize::from(c.number()), i);
            assert_eq!(Capability::parse(c.name()), Some(*c));
        }
        for (text, want) in [
            ("NET_ADMIN", Some(Capability::NetAdmin)),
            ("cap_net_admin", Some(Capability::NetAdmin)),
            ("Sys_Ptrace", Some(Capability::SysPtrace)),
            (
                "CAP_CHECKPOINT_RESTORE",
                Some(Capability::CheckpointRestore),
            ),
            ("NET_ADMINS", None),
            ("", None),
            ("CAP_", None),
        ] {
            assert_eq!(Capability::parse(text), want, "{text}");
        }
    }

    #[test]
    fn capabilities_follow_tweak_capabilities() {
        let default = caps(Service::default()).unwrap();
        assert_eq!(
            default,
            [
                "CAP_CHOWN",
                "CAP_DAC_OVERRIDE",
                "CAP_FOWNER",
                "CAP_FSETID",
                "CAP_KILL",
                "CAP_SETGID",
                "CAP_SETUID",
                "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE",
                "CAP_NET_RAW",
                "CAP_SYS_CHROOT",
                "CAP_MKNOD",
                "CAP_AUDIT_WRITE",
                "CAP_SETFCAP",
            ]
        );
        let c = caps(svc(|s| {
            s.cap_add = strings(&["net_admin", "CAP_SYS_TIME"]);
            s.cap_drop = strings(&["NET_RAW", "mknod"]);
        }))
        .unwrap();
        assert_eq!(c.len(), 14);
        assert!(c.contains(&"CAP_NET_ADMIN") && c.contains(&"CAP_SYS_TIME"));
        assert!(!c.contains(&"CAP_NET_RAW") && !c.contains(&"CAP_MKNOD"));
        let c = caps(svc(|s| {
            s.cap_drop = strings(&["ALL"]);
            s.cap_add = strings(&["chown"]);
        }))
        .unwrap();
        assert_eq!(c, ["CAP_CHOWN"]);
        let c = caps(svc(|s| {
            s.cap_add = strings(&["all"]);
            s.cap_drop = strings(&["SYS_ADMIN"]);
        }))
        .unwrap();
        assert_eq!(c.len(), 40);
        assert!(!c.contains(&"CAP_SYS_ADMIN"));
        // add ALL beats drop ALL, as in Docker
        let c = caps(svc(|s| {
            s.cap_add = strings(&["ALL"]);
            s.cap_drop = strings(&["ALL"]);
        }))
        .unwrap();
        assert_eq!(c.len(), 41);
        let c = caps(svc(|s| {
            s.privileged = Some(true);
            s.cap_drop = strings(&["ALL"]);
        }))
        .unwrap();
        assert_eq!(c.len(), 41);
        let e = caps(svc(|s| s.cap_add = strings(&["FLY"]))).unwrap_err();
        assert!(e.contains("cap_add") && e.contains("FLY"), "{e}");
        let e = caps(svc(|s| s.cap_drop = strings(&["CAP_NOPE"]))).unwrap_err();
        assert!(e.contains("cap_drop"), "{e}");
    }

    #[test]
    fn security_options() {
        type Row<'a> = (&'a [&'a str], Result<(bool, Seccomp, bool), &'a str>);
        let rows: &[Row] = &[
            (&[], Ok((false, Seccomp::Default, true))),
            (&["no-new-privileges"], Ok((true, Seccomp::Default, true))),
            (
                &["no-new-privileges:true"],
                Ok((true, Seccomp::Default, true)),
            ),
            (
                &["no-new-privileges=TRUE"],
                Ok((true, Seccomp::Default, true)),
            ),
            (
                &["no-new-privileges", "no-new-privileges=false"],
                Ok((false, Seccomp::Default, true)),
            ),
            (
                &["seccomp=unconfined"],
                Ok((false, Seccomp::Unconfined, true)),
            ),
            (
                &["seccomp:unconfined"],
                Ok((false, Seccomp::Unconfined, true)),
            ),
            (
                &["systempaths=unconfined"],
                Ok((false, Seccomp::Default, false)),
            ),
            (
                &["apparmor=unconfined", "label=disable", "label:type:svirt_t"],
                Ok((false, Seccomp::Default, true)),
            ),
            (&["no-new-privileges=maybe"], Err("not a boolean")),
            (&["seccomp=/etc/profile.json"], Err("custom seccomp")),
            (&["systempaths=strict"], Err("systempaths")),
            (&["bogus=1"], Err("unknown option")),
            (&["bogus"], Err("invalid option")),
        ];
        for (opts, want) in rows {
            let got = Case::new(svc(|s| s.security_opt = strings(opts))).build();
            match (got, want) {
                (Ok(spec), Ok((nnp, seccomp, paths))) => {
                    assert_eq!(spec.security.no_new_privileges, *nnp, "{opts:?}");
                    assert_eq!(spec.security.seccomp, *seccomp, "{opts:?}");
                    assert_eq!(!spec.security.masked_paths.is_empty(), *paths, "{opts:?}");
                    assert_eq!(!spec.security.readonly_paths.is_empty(), *paths, "{opts:?}");
                }
                (Err(e), Err(msg)) => {
                    let e = e.to_string();
                    assert!(
                        e.contains("security_opt") && e.contains(msg),
                        "{opts:?}: {e}"
                    );
                }
                (got, _) => panic!("{opts:?}: {got:?}"),
            }
        }
        let spec = ok(svc(|s| s.security_opt = strings(&["apparmor=x"])));
        assert_eq!(spec.warnings.len(), 1, "{:?}", spec.warnings);
    }

    #[test]
    fn privileged_drops_confinement() {
        let spec = ok(svc(|s| s.privileged = Some(true)));
        assert!(spec.security.privileged);
        assert_eq!(spec.security.seccomp, Seccomp::Unconfined);
        assert!(spec.security.masked_paths.is_empty() && spec.security.readonly_paths.is_empty());
        let sys = spec
            .mounts
            .iter()
            .find(|m| m.destination == "/sys")
            .unwrap();
        assert!(!sys.flags.read_only);
        let normal = ok(Service::default());
        assert_eq!(normal.security.masked_paths.len(), 12);
        assert!(
            normal
                .security
                .masked_paths
                .contains(&"/proc/kcore".to_string())
        );
        assert_eq!(
            normal.security.readonly_paths,
            READONLY_PATHS.map(String::from)
        );
    }

    // --- namespaces and sysctls ----------------------------------------------------------

    #[test]
    fn namespace_modes() {
        let svc_ns = |f: fn(&mut Service)| ok(svc(f)).namespaces;
        let d = svc_ns(|_| {});
        assert_eq!(
            (d.pid, d.net, d.ipc, d.uts, d.cgroup),
            (
                Namespace::New,
                Namespace::New,
                Namespace::New,
                Namespace::New,
                Namespace::New
            )
        );
        let n = svc_ns(|s| {
            s.network_mode = Some("host".into());
            s.pid = Some("host".into());
            s.ipc = Some("host".into());
            s.uts = Some("host".into());
            s.cgroup = Some("host".into());
        });
        assert_eq!(
            (n.pid, n.net, n.ipc, n.uts, n.cgroup),
            (
                Namespace::Host,
                Namespace::Host,
                Namespace::Host,
                Namespace::Host,
                Namespace::Host
            )
        );
        let n = svc_ns(|s| {
            s.network_mode = Some("service:db".into());
            s.pid = Some("container:other".into());
            s.ipc = Some("service:db".into());
        });
        assert_eq!(n.net, Namespace::Join(JoinTarget::Service("db".into())));
        assert_eq!(
            n.pid,
            Namespace::Join(JoinTarget::Container("other".into()))
        );
        assert_eq!(n.ipc, Namespace::Join(JoinTarget::Service("db".into())));
        for ipc in ["private", "shareable", "none"] {
            assert_eq!(
                ok(svc(|s| s.ipc = Some(ipc.into()))).namespaces.ipc,
                Namespace::New
            );
        }
        let spec = ok(svc(|s| s.network_mode = Some("none".into())));
        assert!(spec.network_none && spec.namespaces.net == Namespace::New);
        assert!(!ok(svc(|s| s.network_mode = Some("bridge".into()))).network_none);
        // cgroupns: private on v2, the host's on v1, unless asked
        let mut case = Case::new(Service::default());
        case.cgroup = CgroupVersion::V1;
        assert_eq!(case.build().unwrap().namespaces.cgroup, Namespace::Host);
        case.service.cgroup = Some("private".into());
        assert_eq!(case.build().unwrap().namespaces.cgroup, Namespace::New);
        for (f, field) in [
            (
                svc(|s| s.network_mode = Some("mynet".into())),
                "network_mode",
            ),
            (
                svc(|s| s.network_mode = Some("service:".into())),
                "network_mode",
            ),
            (svc(|s| s.pid = Some("private-ish".into())), "pid"),
            (svc(|s| s.ipc = Some("container:".into())), "ipc"),
            (svc(|s| s.uts = Some("service:db".into())), "uts"),
            (svc(|s| s.cgroup = Some("shared".into())), "cgroup"),
        ] {
            let e = err(f);
            assert!(e.contains(field), "{e}");
        }
    }

    #[test]
    fn ports_with_shared_networks() {
        let port = model::ServicePort {
            target: 80,
            protocol: "tcp".into(),
            ..model::ServicePort::default()
        };
        let spec = ok(svc(|s| {
            s.network_mode = Some("host".into());
            s.ports = vec![port.clone()];
        }));
        assert!(spec.warnings.iter().any(|w| w.contains("ports")));
        let e = err(svc(|s| {
            s.network_mode = Some("container:x".into());
            s.ports = vec![port];
        }));
        assert!(e.contains("ports"), "{e}");
    }

    #[test]
    fn only_namespaced_sysctls() {
        // (sysctl, network_mode, ipc, uts, allowed)
        type Row<'a> = (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
            bool,
        );
        let rows: &[Row] = &[
            ("net.core.somaxconn", None, None, None, true),
            (
                "net.ipv4.ip_unprivileged_port_start",
                Some("none"),
                None,
                None,
                true,
            ),
            (
                "net.ipv4.conf.all.rp_filter",
                Some("service:db"),
                None,
                None,
                true,
            ),
            ("net.core.somaxconn", Some("host"), None, None, false),
            ("kernel.shmmax", None, None, None, true),
            ("kernel.msgmnb", None, Some("shareable"), None, true),
            ("kernel.sem", None, Some("host"), None, false),
            ("fs.mqueue.msg_max", None, None, None, true),
            ("fs.mqueue.msg_max", None, Some("host"), None, false),
            ("kernel.domainname", None, None, None, true),
            ("kernel.domainname", None, None, Some("host"), false),
            ("kernel.hostname", None, None, None, false),
            ("kernel.pid_max", None, None, None, false),
            ("vm.swappiness", None, None, None, false),
            ("fs.file-max", None, None, None, false),
            ("net..x", None, None, None, false),
            ("net/ipv4/ip_forward", None, None, None, false),
            ("net.ipv4.../../x", None, None, None, false),
            ("", None, None, None, false),
        ];
        for (key, net, ipc, uts, allowed) in rows {
            let s = svc(|s| {
                s.sysctls = BTreeMap::from([(key.to_string(), "1".to_string())]);
                s.network_mode = net.map(String::from);
                s.ipc = ipc.map(String::from);
                s.uts = uts.map(String::from);
            });
            match Case::new(s).build() {
                Ok(spec) => {
                    assert!(allowed, "{key} {net:?} {ipc:?} was allowed");
                    assert_eq!(spec.sysctls.get(*key).map(String::as_str), Some("1"));
                }
                Err(e) => {
                    let e = e.to_string();
                    assert!(!allowed, "{key}: {e}");
                    assert!(e.contains(&format!("sysctls.{key}")), "{e}");
                }
            }
        }
        let e = err(svc(|s| {
            s.sysctls = BTreeMap::from([("net.core.somaxconn".to_string(), "1\n2".to_string())]);
        }));
        assert!(e.contains("newline"), "{e}");
    }

    #[test]
    fn ulimits_map_to_rlimits() {
        let spec = ok(svc(|s| {
            s.ulimits = BTreeMap::from([
                ("nofile".to_string(), Ulimit::Single(1024)),
                (
                    "nproc".to_string(),
                    Ulimit::Range {
                        soft: 100,
                        hard: 200,
                    },
                ),
                ("core".to_string(), Ulimit::Single(-1)),
            ]);
        }));
        assert_eq!(
            spec.process.rlimits,
            [
                Rlimit {
                    resource: "RLIMIT_CORE".into(),
                    soft: u64::MAX,
                    hard: u64::MAX
                },
                Rlimit {
                    resource: "RLIMIT_NOFILE".into(),
                    soft: 1024,
                    hard: 1024
                },
                Rlimit {
                    resource: "RLIMIT_NPROC".into(),
                    soft: 100,
                    hard: 200
                },
            ]
        );
        for (name, limit, want) in [
            ("nofile", Ulimit::Range { soft: 10, hard: 5 }, "soft limit"),
            ("nofile", Ulimit::Range { soft: -1, hard: 5 }, "soft limit"),
            ("nofile", Ulimit::Single(-2), "negative"),
            ("files", Ulimit::Single(1), "unknown ulimit"),
        ] {
            let e = err(svc(|s| {
                s.ulimits = BTreeMap::from([(name.to_string(), limit.clone())])
            }));
            assert!(
                e.contains(&format!("ulimits.{name}")) && e.contains(want),
                "{e}"
            );
        }
        let spec = ok(svc(|s| {
            s.ulimits =
                BTreeMap::from([("nofile".to_string(), Ulimit::Range { soft: 5, hard: -1 })]);
        }));
        assert_eq!(spec.process.rlimits[0].hard, u64::MAX);
    }

    // --- mounts --------------------------------------------------------------------------

    fn vol(kind: &str, source: Option<&str>, target: &str) -> ServiceVolume {
        ServiceVolume {
            kind: kind.into(),
            source: source.map(String::from),
            target: target.into(),
            ..ServiceVolume::default()
        }
    }

    fn dests(spec: &ContainerSpec) -> Vec<&str> {
        spec.mounts.iter().map(|m| m.destination.as_str()).collect()
    }

    fn mount<'a>(spec: &'a ContainerSpec, dest: &str) -> &'a Mount {
        spec.mounts
            .iter()
            .find(|m| m.destination == dest)
            .unwrap_or_else(|| panic!("no mount at {dest}: {:?}", dests(spec)))
    }

    #[test]
    fn standard_mounts_like_docker() {
        let spec = ok(Service::default());
        assert_eq!(
            dests(&spec),
            [
                "/proc",
                "/dev",
                "/sys",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/etc/hostname",
                "/etc/hosts",
                "/etc/resolv.conf",
                "/sys/fs/cgroup",
            ]
        );
        let shm = mount(&spec, "/dev/shm");
        assert_eq!(
            shm.kind,
            MountKind::Tmpfs(TmpfsOptions {
                size: Some(DEFAULT_SHM_SIZE),
                mode: Some(0o1777),
                ..TmpfsOptions::default()
            })
        );
        assert!(shm.flags.noexec && shm.flags.nosuid && shm.flags.nodev);
        assert!(mount(&spec, "/sys").flags.read_only);
        assert!(mount(&spec, "/sys/fs/cgroup").flags.read_only);
        assert!(!mount(&spec, "/etc/hosts").flags.read_only);
        let spec = ok(svc(|s| {
            s.shm_size = Some(Bytes(1 << 30));
            s.read_only = Some(true);
        }));
        assert_eq!(
            mount(&spec, "/dev/shm").kind,
            MountKind::Tmpfs(TmpfsOptions {
                size: Some(1 << 30),
                mode: Some(0o1777),
                ..TmpfsOptions::default()
            })
        );
        assert!(mount(&spec, "/etc/resolv.conf").flags.read_only);
        assert!(err(svc(|s| s.shm_size = Some(Bytes(-1)))).contains("shm_size"));
    }

    #[test]
    fn shm_follows_the_ipc_mode() {
        let none = ok(svc(|s| s.ipc = Some("none".into())));
        assert!(!dests(&none).contains(&"/dev/shm"));
        let host = ok(svc(|s| s.ipc = Some("host".into())));
        assert!(
            matches!(&mount(&host, "/dev/shm").kind, MountKind::Bind { source, .. } if source == "/dev/shm")
        );
        let join = ok(svc(|s| s.ipc = Some("service:db".into())));
        assert_eq!(
            mount(&join, "/dev/shm").kind,
            MountKind::ShmFrom {
                target: JoinTarget::Service("db".into())
            }
        );
    }

    #[test]
    fn service_volumes() {
        let spec = ok(svc(|s| {
            s.volumes = vec![
                ServiceVolume {
                    bind: Some(BindOptions {
                        create_host_path: Some(true),
                        propagation: Some("rshared".into()),
                        ..BindOptions::default()
                    }),
                    read_only: true,
                    ..vol("bind", Some("/home/me/shop/src"), "/app/src/")
                },
                ServiceVolume {
                    volume: Some(VolumeOptions {
                        nocopy: Some(true),
                        subpath: Some("pg/16".into()),
                        ..VolumeOptions::default()
                    }),
                    ..vol("volume", Some("data"), "/var/lib/postgresql/data")
                },
                vol("volume", Some("bare"), "/bare"),
                vol("volume", None, "/cache"),
                ServiceVolume {
                    tmpfs: Some(ComposeTmpfs {
                        size: Some(Bytes(10_000)),
                        mode: Some(0o1777),
                    }),
                    ..vol("tmpfs", None, "/scratch")
                },
            ];
        }));
        assert_eq!(
            mount(&spec, "/app/src").kind,
            MountKind::Bind {
                source: "/home/me/shop/src".into(),
                propagation: Propagation::Rshared,
                recursive: BindRecursion::Enabled,
                create_host_path: true,
            }
        );
        assert!(mount(&spec, "/app/src").flags.read_only);
        assert_eq!(
            mount(&spec, "/var/lib/postgresql/data").kind,
            MountKind::Volume {
                name: "shop_data".into(),
                anonymous: false,
                nocopy: true,
                subpath: Some("pg/16".into()),
            }
        );
        assert!(
            matches!(&mount(&spec, "/bare").kind, MountKind::Volume { name, .. } if name == "bare")
        );
        let MountKind::Volume {
            name, anonymous, ..
        } = &mount(&spec, "/cache").kind
        else {
            panic!()
        };
        assert!(*anonymous && name.len() == 64);
        let again = ok(svc(|s| s.volumes = vec![vol("volume", None, "/cache")]));
        assert!(
            matches!(&mount(&again, "/cache").kind, MountKind::Volume { name: n, .. } if n == name)
        );
        let scratch = mount(&spec, "/scratch");
        assert_eq!(
            scratch.kind,
            MountKind::Tmpfs(TmpfsOptions {
                size: Some(10_000),
                mode: Some(0o1777),
                ..TmpfsOptions::default()
            })
        );
        assert!(scratch.flags.noexec);
        // parents before children: depth never decreases
        let depths: Vec<usize> = spec
            .mounts
            .iter()
            .map(|m| m.destination.matches('/').count())
            .collect();
        assert!(
            depths.windows(2).all(|w| w[0] <= w[1]),
            "{:?}",
            dests(&spec)
        );
        // long-syntax binds do not create their source unless asked
        let spec = ok(svc(|s| s.volumes = vec![vol("bind", Some("/srv/x"), "/x")]));
        assert!(matches!(
            mount(&spec, "/x").kind,
            MountKind::Bind {
                create_host_path: false,
                propagation: Propagation::Rprivate,
                ..
            }
        ));
    }

    #[test]
    fn anonymous_volumes_are_reused_by_destination() {
        let mut case = Case::new(svc(|s| s.volumes = vec![vol("volume", None, "/cache")]));
        case.anonymous = BTreeMap::from([("/cache".to_string(), "old-anon".to_string())]);
        let spec = case.build().unwrap();
        assert!(
            matches!(&mount(&spec, "/cache").kind, MountKind::Volume { name, anonymous: true, .. } if name == "old-anon")
        );
    }

    #[test]
    fn a_replacement_reuses_its_predecessors_anonymous_volumes_and_only_those() {
        let mut case = Case::new(svc(|s| {
            s.volumes = vec![
                vol("volume", None, "/cache"),
                vol("volume", Some("data"), "/var/lib/db"),
            ]
        }));
        case.image = Some(image(serde_json::json!({"Volumes": {"/logs": {}}})));
        let old = case.build().unwrap();
        let kept = anonymous_volumes_of(&old.mounts);
        let name = |spec: &ContainerSpec, dest: &str| match &mount(spec, dest).kind {
            MountKind::Volume { name, .. } => name.clone(),
            other => panic!("{dest}: {other:?}"),
        };
        // The service's and the image's anonymous volumes, not the named one.
        assert_eq!(
            kept,
            BTreeMap::from([
                ("/cache".to_string(), name(&old, "/cache")),
                ("/logs".to_string(), name(&old, "/logs")),
            ])
        );
        // Another container id: fresh names, unless the map carries them over.
        case.id = "0000000000000000000000000000000000000000000000000000000000000002";
        case.service.volumes.push(vol("volume", None, "/new"));
        let fresh = case.build().unwrap();
        assert_ne!(name(&fresh, "/cache"), name(&old, "/cache"));
        case.anonymous = kept;
        let replacement = case.build().unwrap();
        for dest in ["/cache", "/logs", "/var/lib/db"] {
            assert_eq!(name(&replacement, dest), name(&old, dest), "{dest}");
        }
        assert_eq!(name(&replacement, "/new"), name(&fresh, "/new"));
        assert_eq!(anonymous_volumes_of(&replacement.mounts).len(), 3);
    }

    #[test]
    fn volume_errors() {
        let rows: Vec<(ServiceVolume, &str)> = vec![
            (vol("volume", Some("nope"), "/x"), "not declared"),
            (vol("volume", None, "relative"), "absolute"),
            (vol("volume", None, "/"), "cannot be /"),
            (vol("volume", None, "/a/.."), "cannot be /"),
            (
                vol("bind", Some("/x"), "/proc/sys"),
                "cannot mount over /proc/sys",
            ),
            (vol("bind", Some("relative/src"), "/x"), "absolute"),
            (vol("bind", None, "/x"), "needs a source"),
            (vol("image", Some("alpine"), "/x"), "not supported"),
            (vol("npipe", Some("x"), "/x"), "not supported"),
            (vol("tmpfs", Some("x"), "/x"), "no source"),
            (
                ServiceVolume {
                    bind: Some(BindOptions {
                        propagation: Some("sideways".into()),
                        ..BindOptions::default()
                    }),
                    ..vol("bind", Some("/x"), "/x")
                },
                "propagation",
            ),
            (
                ServiceVolume {
                    bind: Some(BindOptions {
                        recursive: Some("readonly".into()),
                        ..BindOptions::default()
                    }),
                    ..vol("bind", Some("/x"), "/x")
                },
                "read_only",
            ),
            (
                ServiceVolume {
                    volume: Some(VolumeOptions {
                        subpath: Some("../escape".into()),
                        ..VolumeOptions::default()
                    }),
                    ..vol("volume", Some("data"), "/x")
                },
                "subpath",
            ),
            (
                ServiceVolume {
                    tmpfs: Some(ComposeTmpfs {
                        size: Some(Bytes(-5)),
                        mode: None,
                    }),
                    ..vol("tmpfs", None, "/x")
                },
                "negative",
            ),
        ];
        for (v, want) in rows {
            let e = err(svc(|s| s.volumes = vec![v.clone()]));
            assert!(e.contains("volumes[0]") && e.contains(want), "{v:?}: {e}");
        }
    }

    #[test]
    fn duplicate_destinations_name_both_mounts() {
        let got = Case::new(svc(|s| {
            s.volumes = vec![
                vol("volume", Some("data"), "/data"),
                vol("bind", Some("/x"), "/y"),
            ];
            s.tmpfs = strings(&["/run", "/data/"]);
        }))
        .build();
        assert_eq!(
            got,
            Err(SpecError::DuplicateMount {
                service: "web".into(),
                destination: "/data".into(),
                first: "volumes[0]".into(),
                second: "tmpfs[1]".into(),
            })
        );
        let e = got.unwrap_err().to_string();
        assert_eq!(e, "service web: volumes[0] and tmpfs[1] both mount /data");
    }

    #[test]
    fn tmpfs_entries() {
        let spec = ok(svc(|s| {
            s.tmpfs = strings(&[
                "/run",
                "/tmp:rw,exec,size=64m,mode=1770,uid=1000,gid=1000,nr_inodes=10k",
                "/ro:ro,suid,dev",
            ]);
        }));
        let run = mount(&spec, "/run");
        assert_eq!(run.kind, MountKind::Tmpfs(TmpfsOptions::default()));
        assert_eq!(run.flags, MountFlags::SAFE);
        let tmp = mount(&spec, "/tmp");
        assert_eq!(
            tmp.kind,
            MountKind::Tmpfs(TmpfsOptions {
                size: Some(64 << 20),
                mode: Some(0o1770),
                uid: Some(1000),
                gid: Some(1000),
                nr_inodes: Some(10 << 10),
            })
        );
        assert!(!tmp.flags.noexec && tmp.flags.nosuid);
        let ro = mount(&spec, "/ro");
        assert!(ro.flags.read_only && !ro.flags.nosuid && !ro.flags.nodev && ro.flags.noexec);
        for bad in [
            "run",
            "/run:size=lots",
            "/run:mode=999",
            "/run:mode=17777",
            "/run:uid=-1",
            "/run:bogus",
            "/run:shared",
            "/",
        ] {
            let e = err(svc(|s| s.tmpfs = strings(&[bad])));
            assert!(e.contains("tmpfs[0]"), "{bad}: {e}");
        }
    }

    #[test]
    fn user_mounts_replace_standard_ones() {
        let spec = ok(svc(|s| {
            s.volumes = vec![
                vol("bind", Some("/etc/resolv.conf"), "/etc/resolv.conf"),
                vol("volume", Some("data"), "/dev/shm"),
            ];
        }));
        assert!(matches!(
            mount(&spec, "/etc/resolv.conf").kind,
            MountKind::Bind { .. }
        ));
        assert!(matches!(
            mount(&spec, "/dev/shm").kind,
            MountKind::Volume { .. }
        ));
        assert_eq!(dests(&spec).iter().filter(|d| **d == "/dev/shm").count(), 1);
    }

    #[test]
    fn image_volumes_become_anonymous_volumes() {
        let mut case = Case::new(svc(|s| {
            s.volumes = vec![vol("volume", Some("data"), "/var/lib/db")]
        }));
        case.image = Some(image(
            serde_json::json!({"Volumes": {"/var/lib/db": {}, "/cache/": {}}}),
        ));
        let spec = case.build().unwrap();
        assert!(
            matches!(&mount(&spec, "/var/lib/db").kind, MountKind::Volume { name, .. } if name == "shop_data")
        );
        assert!(matches!(
            mount(&spec, "/cache").kind,
            MountKind::Volume {
                anonymous: true,
                nocopy: false,
                ..
            }
        ));
        case.image = Some(image(serde_json::json!({"Volumes": {"relative": {}}})));
        assert!(
            case.build()
                .unwrap_err()
                .to_string()
                .contains("image Volumes")
        );
    }

    #[test]
    fn volumes_from_inherits_storage_only() {
        let donor = ok(svc(|s| {
            s.volumes = vec![
                vol("volume", Some("data"), "/data"),
                vol("bind", Some("/srv/logs"), "/logs"),
                ServiceVolume {
                    read_only: true,
                    ..vol("bind", Some("/srv/conf"), "/conf")
                },
                vol("volume", None, "/own"),
            ];
            s.tmpfs = strings(&["/scratch"]);
        }));
        let mut case = Case::new(svc(|s| {
            s.volumes_from = strings(&["db"]);
            s.volumes = vec![vol("bind", Some("/srv/mine"), "/own")];
        }));
        case.volumes_from = vec![donor.mounts.clone()];
        let spec = case.build().unwrap();
        assert!(
            matches!(&mount(&spec, "/data").kind, MountKind::Volume { name, .. } if name == "shop_data")
        );
        assert!(!mount(&spec, "/logs").flags.read_only);
        assert!(mount(&spec, "/conf").flags.read_only);
        // the service's own mount wins over the inherited one
        assert!(
            matches!(&mount(&spec, "/own").kind, MountKind::Bind { source, .. } if source == "/srv/mine")
        );
        assert!(!dests(&spec).contains(&"/scratch"));
        assert_eq!(dests(&spec).iter().filter(|d| **d == "/proc").count(), 1);
        // :ro makes every inherited mount read-only
        case.service.volumes_from = strings(&["container:db-1:ro"]);
        let spec = case.build().unwrap();
        assert!(mount(&spec, "/logs").flags.read_only && mount(&spec, "/data").flags.read_only);
        // a container named "ro" is not a mode
        case.service.volumes_from = strings(&["container:ro"]);
        assert!(!mount(&case.build().unwrap(), "/logs").flags.read_only);
        // the caller must resolve every entry
        case.volumes_from.clear();
        assert!(
            case.build()
                .unwrap_err()
                .to_string()
                .contains("volumes_from")
        );
    }

    #[test]
    fn secrets_and_configs() {
        let spec = ok(svc(|s| {
            s.secrets = vec![FileReference {
                source: "db_password".into(),
                ..FileReference::default()
            }];
            s.configs = vec![
                FileReference {
                    source: "app_conf".into(),
                    target: Some("/etc/app.conf".into()),
                    mode: Some("0440".into()),
                    uid: Some("1000".into()),
                    ..FileReference::default()
                },
                FileReference {
                    source: "app_conf".into(),
                    ..FileReference::default()
                },
            ];
        }));
        let pw = mount(&spec, "/run/secrets/db_password");
        assert!(pw.flags.read_only);
        assert!(
            matches!(&pw.kind, MountKind::Bind { source, .. } if source == "/home/me/shop/pw.txt")
        );
        assert_eq!(
            mount(&spec, "/etc/app.conf").kind,
            MountKind::Content {
                origin: "config app_conf".into(),
                content: "debug = true\n".into(),
                mode: Some(0o440),
                uid: Some(1000),
                gid: None,
            }
        );
        assert!(dests(&spec).contains(&"/app_conf"));
        for (r, want) in [
            ("from_env", "only file and content"),
            ("missing", "not declared"),
        ] {
            let e = err(svc(|s| {
                s.secrets = vec![FileReference {
                    source: r.into(),
                    ..FileReference::default()
                }];
            }));
            assert!(e.contains("secrets[0]") && e.contains(want), "{e}");
        }
    }

    // --- health, restart, logging --------------------------------------------------------

    #[test]
    fn healthcheck_merges_over_the_image() {
        let image_hc = ImageHealthcheck {
            test: Some(strings(&["CMD", "true"])),
            interval: Some(1_000_000_000),
            retries: Some(5),
            ..ImageHealthcheck::default()
        };
        let mut case = Case::new(Service::default());
        case.healthcheck = Some(image_hc.clone());
        let hc = case.build().unwrap().healthcheck.unwrap();
        assert_eq!(hc.args, ["true"]);
        assert_eq!(
            (
                hc.interval,
                hc.timeout,
                hc.start_period,
                hc.start_interval,
                hc.retries
            ),
            (
                Duration::from_secs(1),
                Duration::from_secs(30),
                Duration::ZERO,
                Duration::from_secs(5),
                5
            )
        );
        case.service.healthcheck = Some(ComposeHealthcheck {
            test: strings(&["CMD-SHELL", "curl -f http://localhost/ || exit 1"]),
            timeout: model::Duration::parse("3s"),
            ..ComposeHealthcheck::default()
        });
        let hc = case.build().unwrap().healthcheck.unwrap();
        assert_eq!(
            hc.args,
            ["/bin/sh", "-c", "curl -f http://localhost/ || exit 1"]
        );
        assert_eq!(
            (hc.interval, hc.timeout, hc.retries),
            (Duration::from_secs(1), Duration::from_secs(3), 5)
        );
        // disabling
        case.service.healthcheck = Some(ComposeHealthcheck {
            disable: true,
            ..ComposeHealthcheck::default()
        });
        assert_eq!(case.build().unwrap().healthcheck, None);
        case.service.healthcheck = Some(ComposeHealthcheck {
            test: strings(&["NONE"]),
            ..ComposeHealthcheck::default()
        });
        assert_eq!(case.build().unwrap().healthcheck, None);
        // defaults without the image's
        let hc = ok(svc(|s| {
            s.healthcheck = Some(ComposeHealthcheck {
                test: strings(&["CMD", "pg_isready"]),
                retries: Some(0),
                ..ComposeHealthcheck::default()
            })
        }))
        .healthcheck
        .unwrap();
        assert_eq!((hc.interval, hc.retries), (Duration::from_secs(30), 3));
        assert_eq!(ok(Service::default()).healthcheck, None);
        for (test, interval, want) in [
            (strings(&["CMD"]), None, "needs a command"),
            (strings(&["CMD-SHELL", ""]), None, "needs a command"),
            (strings(&["RUN", "x"]), None, "CMD, CMD-SHELL or NONE"),
            (
                strings(&["CMD", "x"]),
                model::Duration::parse("10us"),
                "at least 1ms",
            ),
        ] {
            let e = err(svc(|s| {
                s.healthcheck = Some(ComposeHealthcheck {
                    test,
                    interval,
                    ..ComposeHealthcheck::default()
                })
            }));
            assert!(e.contains("healthcheck") && e.contains(want), "{e}");
        }
        let mut case = Case::new(Service::default());
        case.healthcheck = Some(ImageHealthcheck {
            interval: Some(-1),
            ..image_hc
        });
        assert!(
            case.build()
                .unwrap_err()
                .to_string()
                .contains("image Healthcheck.Interval")
        );
    }

    #[test]
    fn restart_policies() {
        for (restart, want) in [
            (None, Ok(RestartPolicy::No)),
            (Some("no"), Ok(RestartPolicy::No)),
            (Some("always"), Ok(RestartPolicy::Always)),
            (Some("unless-stopped"), Ok(RestartPolicy::UnlessStopped)),
            (
                Some("on-failure"),
                Ok(RestartPolicy::OnFailure { max_retries: None }),
            ),
            (
                Some("on-failure:3"),
                Ok(RestartPolicy::OnFailure {
                    max_retries: Some(3),
                }),
            ),
            (
                Some("on-failure:0"),
                Ok(RestartPolicy::OnFailure { max_retries: None }),
            ),
            (Some("on-failure:-1"), Err("retry count")),
            (Some("on-failure:x"), Err("retry count")),
            (Some("always:3"), Err("only be used with on-failure")),
            (Some("sometimes"), Err("unknown restart policy")),
        ] {
            let got = Case::new(svc(|s| s.restart = restart.map(String::from))).build();
            match (got, want) {
                (Ok(spec), Ok(p)) => assert_eq!(spec.restart, p, "{restart:?}"),
                (Err(e), Err(msg)) => {
                    let e = e.to_string();
                    assert!(e.contains("restart") && e.contains(msg), "{e}");
                }
                (got, _) => panic!("{restart:?}: {got:?}"),
            }
        }
        let deploy = |condition: Option<&str>, max_attempts: Option<u64>| {
            svc(|s| {
                s.restart = Some("no".into());
                s.deploy = Some(Deploy {
                    restart_policy: Some(DeployRestart {
                        condition: condition.map(String::from),
                        max_attempts,
                        ..DeployRestart::default()
                    }),
                    ..Deploy::default()
                });
            })
        };
        assert_eq!(ok(deploy(None, None)).restart, RestartPolicy::Always);
        assert_eq!(ok(deploy(Some("none"), None)).restart, RestartPolicy::No);
        assert_eq!(
            ok(deploy(Some("on-failure"), Some(4))).restart,
            RestartPolicy::OnFailure {
                max_retries: Some(4)
            }
        );
        assert!(err(deploy(Some("any"), Some(2))).contains("deploy.restart_policy"));
    }

    #[test]
    fn logging_options() {
        let log = |driver: Option<&str>, opts: &[(&str, &str)]| {
            Case::new(svc(|s| {
                s.logging = Some(Logging {
                    driver: driver.map(String::from),
                    options: opts
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                })
            }))
            .build()
        };
        let l = ok(Service::default()).logging;
        assert_eq!(
            (l.driver, l.max_size, l.max_file),
            (LogDriver::JsonFile, None, 1)
        );
        let l = log(Some("json-file"), &[("max-size", "10m"), ("max-file", "3")])
            .unwrap()
            .logging;
        assert_eq!((l.max_size, l.max_file), (Some(10 << 20), 3));
        let l = log(None, &[("max-size", "1.5k")]).unwrap().logging;
        assert_eq!(l.max_size, Some(1536));
        let l = log(Some("local"), &[]).unwrap().logging;
        assert_eq!((l.max_size, l.max_file), (Some(20 << 20), 5));
        let l = log(Some("local"), &[("max-size", "-1")]).unwrap().logging;
        assert_eq!(l.max_size, None);
        assert_eq!(
            log(Some("none"), &[]).unwrap().logging.driver,
            LogDriver::None
        );
        let spec = log(Some("syslog"), &[("syslog-address", "udp://x")]).unwrap();
        assert_eq!(spec.logging.driver, LogDriver::JsonFile);
        assert!(spec.warnings.iter().any(|w| w.contains("syslog")));
        let spec = log(None, &[("tag", "x"), ("compress", "true")]).unwrap();
        assert_eq!(spec.warnings.len(), 2, "{:?}", spec.warnings);
        for (opts, want) in [
            (&[("max-size", "big")][..], "max-size"),
            (&[("max-size", "0")][..], "max-size"),
            (&[("max-file", "0")][..], "max-file"),
            (&[("max-file", "two")][..], "max-file"),
            (&[("rotate", "yes")][..], "unknown option"),
        ] {
            let e = log(None, opts).unwrap_err().to_string();
            assert!(e.contains("logging.options") && e.contains(want), "{e}");
        }
    }

    #[test]
    fn sizes() {
        for (text, want) in [
            ("10", Some(10)),
            ("10k", Some(10 << 10)),
            ("10K", Some(10 << 10)),
            ("10kb", Some(10 << 10)),
            ("10KiB", Some(10 << 10)),
            ("2m", Some(2 << 20)),
            ("1 g", Some(1 << 30)),
            ("0.5m", Some(512 << 10)),
            ("", None),
            ("m", None),
            (".5m", None),
            ("5x", None),
            ("99999999999999999999", None),
            ("99999999p", None),
        ] {
            assert_eq!(parse_size(text), want, "{text:?}");
        }
    }

    // --- identity and cgroup path -------------------------------------------------------

    #[test]
    fn cgroup_paths() {
        assert_eq!(
            cgroup_path("shop", "shop-web-1").unwrap(),
            "wharf/shop/shop-web-1"
        );
        for (project, name) in [
            ("", "a"),
            ("..", "a"),
            ("a/b", "c"),
            ("shop", "."),
            ("shop", "x\ny"),
            ("shop", &"a".repeat(256)),
        ] {
            assert!(
                matches!(
                    cgroup_path(project, name),
                    Err(SpecError::UnsafeName { .. })
                ),
                "{project:?} {name:?}"
            );
        }
        assert_eq!(ok(Service::default()).cgroup_path, "wharf/shop/shop-web-1");
        let mut case = Case::new(Service::default());
        case.project.name = "../etc".into();
        assert!(
            case.build()
                .unwrap_err()
                .to_string()
                .contains("project name")
        );
    }

    #[test]
    fn container_id_is_checked() {
        for id in ["", "a/b", "x y", "é"] {
            let p = project();
            let s = Service::default();
            let got = build(&SpecInput {
                project: &p,
                service_name: "web",
                service: &s,
                replica: 1,
                container_name: "c",
                container_id: id,
                image: None,
                image_healthcheck: None,
                passwd: None,
                group: None,
                cgroup: CgroupVersion::V2,
                volumes_from: &[],
                anonymous_volumes: None,
                inherited_hostname: None,
            });
            assert!(
                got.unwrap_err().to_string().contains("container id"),
                "{id:?}"
            );
        }
    }

    #[test]
    fn unsupported_options_warn() {
        let spec = ok(svc(|s| {
            s.devices = vec![model::Device {
                source: "/dev/fuse".into(),
                ..model::Device::default()
            }];
            s.userns_mode = Some("host".into());
            s.runtime = Some("runc".into());
        }));
        assert_eq!(spec.warnings.len(), 2, "{:?}", spec.warnings);
    }

    // --- snapshots -----------------------------------------------------------------------

    /// The busybox fixture image, loaded into a real store: its config, its health check and
    /// its `/etc/passwd` and `/etc/group` as unpacked.
    #[test]
    fn snapshot_busybox_fixture() {
        use crate::image::fixture::testing;
        let dir = tempfile::tempdir().unwrap();
        let (store, digest) = testing::loaded_store(dir.path());
        let img = store.image(&digest).unwrap();
        let hc = store.healthcheck(&img).unwrap();
        let layers = store.rootfs_layers(&digest).unwrap();
        let read = |rel: &str| {
            layers
                .iter()
                .map(|l| l.join(rel))
                .find(|p| p.is_file())
                .map(|p| std::fs::read(p).unwrap())
        };
        let (passwd, group) = (read("etc/passwd"), read("etc/group"));
        assert!(passwd.is_some() && group.is_some());
        let project = Project {
            name: "demo".into(),
            ..Project::default()
        };
        let service = Service {
            image: Some(testing::TAG.into()),
            user: Some("app".into()),
            command: Some(strings(&["httpd", "-f", "-p", "8080", "-h", "/srv"])),
            ..Service::default()
        };
        let spec = build(&SpecInput {
            project: &project,
            service_name: "web",
            service: &service,
            replica: 1,
            container_name: "demo-web-1",
            container_id: ID,
            image: Some(&img.config),
            image_healthcheck: hc.as_ref(),
            passwd: passwd.as_deref(),
            group: group.as_deref(),
            cgroup: CgroupVersion::V1,
            volumes_from: &[],
            anonymous_volumes: None,
            inherited_hostname: None,
        })
        .unwrap();
        insta::assert_yaml_snapshot!("busybox_fixture", spec);
    }

    /// A service using most options at once.
    #[test]
    fn snapshot_many_options() {
        let service = Service {
            entrypoint: Some(strings(&["/docker-entrypoint.sh"])),
            command: Some(strings(&["postgres", "-c", "shared_buffers=256MB"])),
            environment: BTreeMap::from([
                (
                    "POSTGRES_PASSWORD_FILE".to_string(),
                    Some("/run/secrets/db_password".to_string()),
                ),
                (
                    "PGDATA".to_string(),
                    Some("/var/lib/postgresql/data/pgdata".to_string()),
                ),
            ]),
            user: Some("app:wheel".into()),
            group_add: strings(&["docker"]),
            working_dir: Some("/var/lib/postgresql".into()),
            hostname: Some("db".into()),
            domainname: Some("shop.internal".into()),
            tty: Some(true),
            stdin_open: Some(true),
            init: Some(true),
            read_only: Some(true),
            cap_add: strings(&["SYS_NICE"]),
            cap_drop: strings(&["NET_RAW", "MKNOD"]),
            security_opt: strings(&["no-new-privileges:true"]),
            ipc: Some("shareable".into()),
            shm_size: Some(Bytes(256 << 20)),
            sysctls: BTreeMap::from([
                ("kernel.shmmax".to_string(), "268435456".to_string()),
                ("net.core.somaxconn".to_string(), "1024".to_string()),
            ]),
            ulimits: BTreeMap::from([
                (
                    "nofile".to_string(),
                    Ulimit::Range {
                        soft: 20000,
                        hard: 40000,
                    },
                ),
                ("memlock".to_string(), Ulimit::Single(-1)),
            ]),
            oom_score_adj: Some(-200),
            mem_limit: Some(Bytes(1 << 30)),
            memswap_limit: Some(Bytes(2 << 30)),
            cpu_shares: Some(512),
            cpuset: Some("0-1".into()),
            pids_limit: Some(200),
            deploy: Some(Deploy {
                resources: Some(ComposeResources {
                    limits: Some(Resource {
                        cpus: Some(1.5),
                        ..Resource::default()
                    }),
                    reservations: Some(Resource {
                        memory: Some(Bytes(256 << 20)),
                        ..Resource::default()
                    }),
                }),
                ..Deploy::default()
            }),
            volumes: vec![
                ServiceVolume {
                    volume: Some(VolumeOptions {
                        nocopy: Some(true),
                        ..VolumeOptions::default()
                    }),
                    ..vol("volume", Some("data"), "/var/lib/postgresql/data")
                },
                ServiceVolume {
                    read_only: true,
                    bind: Some(BindOptions {
                        create_host_path: Some(true),
                        ..BindOptions::default()
                    }),
                    ..vol(
                        "bind",
                        Some("/home/me/shop/initdb"),
                        "/docker-entrypoint-initdb.d",
                    )
                },
            ],
            tmpfs: strings(&[
                "/tmp:size=64m",
                "/run/postgresql:mode=2775,uid=1000,gid=1000",
            ]),
            secrets: vec![FileReference {
                source: "db_password".into(),
                ..FileReference::default()
            }],
            healthcheck: Some(ComposeHealthcheck {
                test: strings(&["CMD-SHELL", "pg_isready -U postgres"]),
                interval: model::Duration::parse("5s"),
                timeout: model::Duration::parse("3s"),
                retries: Some(10),
                start_period: model::Duration::parse("30s"),
                ..ComposeHealthcheck::default()
            }),
            restart: Some("on-failure:5".into()),
            stop_signal: Some("SIGINT".into()),
            stop_grace_period: model::Duration::parse("1m"),
            logging: Some(Logging {
                driver: Some("json-file".into()),
                options: BTreeMap::from([
                    ("max-size".to_string(), "10m".to_string()),
                    ("max-file".to_string(), "3".to_string()),
                ]),
            }),
            ..Service::default()
        };
        let mut case = Case::new(service);
        case.image = Some(image(serde_json::json!({
            "Entrypoint": ["docker-entrypoint.sh"],
            "Cmd": ["postgres"],
            "Env": ["PATH=/usr/lib/postgresql/16/bin:/usr/local/bin:/usr/bin:/bin", "PG_MAJOR=16", "PGDATA=/var/lib/postgresql/data"],
            "StopSignal": "SIGINT",
            "Volumes": {"/var/lib/postgresql/data": {}, "/backups": {}},
        })));
        case.cgroup = CgroupVersion::V2;
        let spec = case.build().unwrap();
        insta::assert_yaml_snapshot!("many_options", spec);
    }

    /// A privileged service sharing the host's network and PID namespaces.
    #[test]
    fn snapshot_privileged_host() {
        let mut case = Case::new(Service {
            privileged: Some(true),
            network_mode: Some("host".into()),
            pid: Some("host".into()),
            ipc: Some("host".into()),
            command: Some(strings(&["sleep", "infinity"])),
            restart: Some("unless-stopped".into()),
            logging: Some(Logging {
                driver: Some("none".into()),
                ..Logging::default()
            }),
            ..Service::default()
        });
        case.inherited_hostname = Some("buildhost".into());
        case.passwd = None;
        case.group = None;
        let spec = case.build().unwrap();
        insta::assert_yaml_snapshot!("privileged_host", spec);
    }

    // --- never panics ----------------------------------------------------------------------

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9:/._=,+-]{0,24}",
            any::<String>(),
            Just(String::new()),
            Just("0".to_string()),
            Just("app:wheel".to_string()),
            Just("service:db".to_string()),
        ]
    }

    fn opt_text() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(text())
    }

    prop_compose! {
        /// The string-valued fields of a service.
        fn arb_strings()(
            user in opt_text(),
            entry in proptest::option::of(proptest::collection::vec(text(), 0..3)),
            command in proptest::option::of(proptest::collection::vec(text(), 0..3)),
            env in proptest::collection::btree_map(text(), opt_text(), 0..4),
            tmpfs in proptest::collection::vec(text(), 0..3),
            sysctls in proptest::collection::btree_map(text(), text(), 0..3),
            security in proptest::collection::vec(text(), 0..3),
            caps in proptest::collection::vec(text(), 0..3),
        ) -> Service {
            Service {
                user,
                entrypoint: entry,
                command,
                environment: env,
                tmpfs,
                sysctls,
                security_opt: security,
                cap_add: caps.clone(),
                cap_drop: caps.into_iter().rev().collect(),
                ..Service::default()
            }
        }
    }

    prop_compose! {
        /// Modes, names and numbers on top of `arb_strings`.
        fn arb_service()(
            base in arb_strings(),
            modes in proptest::collection::vec(opt_text(), 6),
            misc in proptest::collection::vec(opt_text(), 6),
            numbers in proptest::collection::vec(proptest::option::of(any::<i64>()), 10),
            cpus in proptest::option::of(any::<f64>()),
            hc_test in proptest::collection::vec(text(), 0..3),
            log_opts in proptest::collection::btree_map(text(), text(), 0..3),
            ulimit in (text(), any::<i64>(), any::<i64>()),
        ) -> Service {
            let n = |i: usize| numbers[i];
            Service {
                network_mode: modes[0].clone(),
                pid: modes[1].clone(),
                ipc: modes[2].clone(),
                uts: modes[3].clone(),
                cgroup: modes[4].clone(),
                restart: modes[5].clone(),
                stop_signal: misc[0].clone(),
                working_dir: misc[1].clone(),
                hostname: misc[2].clone(),
                domainname: misc[3].clone(),
                cpuset: misc[4].clone(),
                group_add: misc[5].clone().into_iter().collect(),
                mem_limit: n(0).map(Bytes),
                memswap_limit: n(1).map(Bytes),
                mem_reservation: n(2).map(Bytes),
                cpu_shares: n(3),
                cpu_quota: n(4),
                cpu_period: n(5),
                pids_limit: n(6),
                oom_score_adj: n(7),
                shm_size: n(8).map(Bytes),
                mem_swappiness: n(9),
                cpus,
                healthcheck: Some(ComposeHealthcheck { test: hc_test, ..ComposeHealthcheck::default() }),
                logging: Some(Logging { driver: misc[3].clone(), options: log_opts }),
                ulimits: BTreeMap::from([(ulimit.0, Ulimit::Range { soft: ulimit.1, hard: ulimit.2 })]),
                ..base
            }
        }
    }

    prop_compose! {
        /// One mount of any kind, with arbitrary options.
        fn arb_volume()(
            kind in prop_oneof![Just("bind".to_string()), Just("volume".to_string()), Just("tmpfs".to_string()), text()],
            source in opt_text(),
            target in text(),
            subpath in opt_text(),
            size in proptest::option::of(any::<i64>()),
            mode in proptest::option::of(any::<u32>()),
            propagation in opt_text(),
        ) -> ServiceVolume {
            ServiceVolume {
                kind,
                source,
                target,
                volume: Some(VolumeOptions { subpath, ..VolumeOptions::default() }),
                tmpfs: Some(ComposeTmpfs { size: size.map(Bytes), mode }),
                bind: Some(BindOptions { propagation, ..BindOptions::default() }),
                ..ServiceVolume::default()
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn build_never_panics(
            service in arb_service(),
            volumes in proptest::collection::vec(arb_volume(), 0..3),
            passwd in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..256)),
            group in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..256)),
            image_env in proptest::collection::vec(text(), 0..3),
            image_user in text(),
            image_volume in text(),
            stop_signal in text(),
        ) {
            let mut case = Case::new(Service { volumes, ..service });
            case.image = Some(image(serde_json::json!({
                "Env": image_env,
                "User": image_user,
                "Volumes": {image_volume: {}},
                "StopSignal": stop_signal,
            })));
            case.passwd = passwd;
            case.group = group;
            let _ = case.build();
        }

        #[test]
        fn users_resolve_or_fail_on_any_passwd(
            user in text(),
            passwd in proptest::collection::vec(any::<u8>(), 0..512),
            group in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let ctx = Ctx { service: "web" };
            if let Ok(u) = resolve_user(&ctx, "user", &user, &[], Some(&passwd), Some(&group)) {
                // the primary gid always leads the supplementary list, ids stay in range
                prop_assert_eq!(u.additional_gids.first(), Some(&u.gid));
                prop_assert!(u64::from(u.uid) <= MAX_ID && u64::from(u.gid) <= MAX_ID);
            }
        }
    }
}
