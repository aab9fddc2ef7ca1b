//! The normalized Compose model: what every later stage of wharf reads.
//!
//! A [`Project`] is the result of loading: files merged, variables interpolated, `extends` and
//! `include` resolved, profiles applied, short syntaxes expanded to their long form
//! (`"8080:80"` becomes a [`ServicePort`]), relative paths made absolute and Docker Compose's
//! defaults filled in. Field names and the serialized shape follow Docker Compose's canonical
//! `config` output (compose-go's types), so `wharf config` prints what `docker compose config`
//! prints. Types here are plain data: no I/O, no knowledge of where they came from.
//! Maps are `BTreeMap`s so that output and config hashes are deterministic.

use std::collections::BTreeMap;
use std::fmt;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Extension fields (`x-*`), kept as written.
pub type Extensions = BTreeMap<String, serde_json::Value>;

/// Values of a mapping whose values may be null (`environment: {FOO: }`).
pub type MappingWithNulls = BTreeMap<String, Option<String>>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct Project {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub services: BTreeMap<String, Service>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, Network>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, Volume>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, FileObject>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, FileObject>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, serde_json::Value>,
    #[serde(flatten)]
    #[schemars(skip)]
    pub extensions: Extensions,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct Service {
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub profiles: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attach: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub build: Option<Build>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub blkio_config: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub cap_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub cap_drop: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cgroup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cgroup_parent: Option<String>,
    /// `None` = use the image's; `Some(vec![])` = explicitly empty.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub configs: Vec<FileReference>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub container_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpu_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpu_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpu_period: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpu_quota: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpu_rt_period: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpu_rt_runtime: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpus: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpuset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpu_shares: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub credential_spec: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "IndexMap::is_empty", default)]
    pub depends_on: IndexMap<String, Dependency>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub deploy: Option<Deploy>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub develop: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub device_cgroup_rules: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub devices: Vec<Device>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub dns: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub dns_opt: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub dns_search: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub domainname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub environment: MappingWithNulls,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub env_file: Vec<EnvFile>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub expose: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub external_links: Vec<String>,
    /// `host=address` entries, in order (a host may have several addresses).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub extra_hosts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gpus: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub group_add: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub healthcheck: Option<Healthcheck>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub init: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ipc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub isolation: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub label_file: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub links: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub logging: Option<Logging>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mac_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mem_limit: Option<Bytes>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mem_reservation: Option<Bytes>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mem_swappiness: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memswap_limit: Option<Bytes>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub models: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub network_mode: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub networks: BTreeMap<String, Option<ServiceNetwork>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub oom_kill_disable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub oom_score_adj: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pids_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub platform: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub ports: Vec<ServicePort>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub post_start: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub pre_stop: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub privileged: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub provider: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pull_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pull_refresh_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub read_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub restart: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub runtime: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub scale: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub secrets: Vec<FileReference>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub security_opt: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub shm_size: Option<Bytes>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stdin_open: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stop_grace_period: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub storage_opt: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub sysctls: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub tmpfs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tty: Option<bool>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub ulimits: BTreeMap<String, Ulimit>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub use_api_socket: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub userns_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub uts: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub volumes: Vec<ServiceVolume>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub volumes_from: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub working_dir: Option<String>,
    #[serde(flatten)]
    #[schemars(skip)]
    pub extensions: Extensions,
}

impl Service {
    /// The name of replica `n` (1-based): `container_name` when set, else Docker Compose's
    /// default `<project>-<service>-<n>`.
    pub fn container_name_for(&self, project: &str, service: &str, n: u64) -> String {
        match &self.container_name {
            Some(name) => name.clone(),
            None => format!("{project}-{service}-{n}"),
        }
    }

    /// How many containers this service wants: `deploy.replicas`, else `scale`, else 1.
    pub fn replicas(&self) -> u64 {
        self.deploy
            .as_ref()
            .and_then(|d| d.replicas)
            .or(self.scale)
            .unwrap_or(1)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct Build {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub context: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub dockerfile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub dockerfile_inline: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub entitlements: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub args: MappingWithNulls,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub ssh: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub cache_from: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub cache_to: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub no_cache: Option<bool>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub additional_contexts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub network: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pull: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub shm_size: Option<Bytes>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub extra_hosts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub isolation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub privileged: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub secrets: Vec<FileReference>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ulimits: Option<BTreeMap<String, Ulimit>>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub platforms: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub provenance: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sbom: Option<serde_json::Value>,
    #[serde(flatten)]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// A reference from a service to a top-level secret or config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct FileReference {
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gid: Option<String>,
    /// File mode, printed in octal like compose-go (`"0440"`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mode: Option<String>,
    #[serde(flatten)]
    #[schemars(skip)]
    pub extensions: Extensions,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Dependency {
    pub condition: DependencyCondition,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub restart: bool,
    pub required: bool,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DependencyCondition {
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct Deploy {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub replicas: Option<u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub update_config: Option<UpdateConfig>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rollback_config: Option<UpdateConfig>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resources: Option<Resources>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub restart_policy: Option<RestartPolicy>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub placement: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub endpoint_mode: Option<String>,
    #[serde(flatten)]
    #[schemars(skip)]
    pub extensions: Extensions,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct UpdateConfig {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub parallelism: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub delay: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub failure_action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub monitor: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_failure_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub order: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct Resources {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub limits: Option<Resource>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reservations: Option<Resource>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct Resource {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpus: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory: Option<Bytes>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pids: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub devices: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub generic_resources: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct RestartPolicy {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub condition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub delay: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_attempts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub window: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct Device {
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub permissions: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct EnvFile {
    pub path: String,
    /// Serialized only when false, like compose-go (true is the default).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub format: Option<String>,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct Healthcheck {
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub test: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timeout: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub interval: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub retries: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub start_period: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub start_interval: Option<Duration>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub disable: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct Logging {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct ServiceNetwork {
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gw_priority: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub interface_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ipv4_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ipv6_address: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub link_local_ips: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mac_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub priority: Option<i64>,
    #[serde(flatten)]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// One published or exposed port, in long form. A short-syntax range becomes one entry per port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
pub struct ServicePort {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub host_ip: Option<String>,
    pub target: u16,
    /// A port or a range (`"8000-8010"`); absent means "any free port".
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub published: Option<String>,
    pub protocol: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub app_protocol: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct ServiceVolume {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source: Option<String>,
    pub target: String,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub consistency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bind: Option<BindOptions>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub volume: Option<VolumeOptions>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tmpfs: Option<TmpfsOptions>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub image: Option<serde_json::Value>,
    #[serde(flatten)]
    #[schemars(skip)]
    pub extensions: Extensions,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct BindOptions {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub propagation: Option<String>,
    /// Short syntax creates a missing host path, like Docker; long syntax may refuse it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub create_host_path: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub recursive: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub selinux: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct VolumeOptions {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nocopy: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub subpath: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct TmpfsOptions {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub size: Option<Bytes>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mode: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Ulimit {
    Single(i64),
    Range { soft: i64, hard: i64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct Network {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ipam: Option<Ipam>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub external: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub internal: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub attachable: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub enable_ipv4: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub enable_ipv6: Option<bool>,
    #[serde(flatten)]
    #[schemars(skip)]
    pub extensions: Extensions,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct Ipam {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub config: Vec<IpamPool>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct IpamPool {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub subnet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gateway: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ip_range: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub aux_addresses: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct Volume {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub external: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub labels: BTreeMap<String, String>,
    #[serde(flatten)]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// A top-level secret or config: from a file, an environment variable or inline content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct FileObject {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub environment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub external: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub template_driver: Option<String>,
    #[serde(flatten)]
    #[schemars(skip)]
    pub extensions: Extensions,
}

/// A duration, printed the way Go prints one (`1m30s`, `500ms`), as Docker Compose does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, JsonSchema)]
#[schemars(with = "String")]
pub struct Duration(pub std::time::Duration);

impl Duration {
    /// Parse Go duration syntax (`1h2m3.5s`, `100ms`, `10us`, `0`); Compose also accepts
    /// a bare number of seconds.
    pub fn parse(text: &str) -> Option<Duration> {
        let s = text.trim();
        if s.is_empty() {
            return None;
        }
        if s == "0" {
            return Some(Duration(std::time::Duration::ZERO));
        }
        if let Ok(secs) = s.parse::<f64>() {
            return (secs >= 0.0 && secs.is_finite())
                .then(|| Duration(std::time::Duration::from_secs_f64(secs)));
        }
        let mut total_ns: f64 = 0.0;
        let mut rest = s;
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            if num_len == 0 {
                return None;
            }
            let value: f64 = rest[..num_len].parse().ok()?;
            rest = &rest[num_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let scale = match unit {
                "ns" => 1.0,
                "us" | "µs" | "μs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                _ => return None,
            };
            total_ns += value * scale;
        }
        if !total_ns.is_finite() || total_ns > u64::MAX as f64 {
            return None;
        }
        Some(Duration(std::time::Duration::from_nanos(total_ns as u64)))
    }
}

impl fmt::Display for Duration {
    /// Go's `time.Duration.String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0.as_nanos();
        if ns == 0 {
            return f.write_str("0s");
        }
        if ns < 1_000 {
            return write!(f, "{ns}ns");
        }
        if ns < 1_000_000 {
            return write!(f, "{}µs", trim_fraction(ns as f64 / 1e3));
        }
        if ns < 1_000_000_000 {
            return write!(f, "{}ms", trim_fraction(ns as f64 / 1e6));
        }
        let hours = ns / 3_600_000_000_000;
        let minutes = (ns / 60_000_000_000) % 60;
        let secs = (ns % 60_000_000_000) as f64 / 1e9;
        if hours > 0 {
            write!(f, "{hours}h{minutes}m{}s", trim_fraction(secs))
        } else if minutes > 0 {
            write!(f, "{minutes}m{}s", trim_fraction(secs))
        } else {
            write!(f, "{}s", trim_fraction(secs))
        }
    }
}

fn trim_fraction(v: f64) -> String {
    let s = format!("{v:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let text = match &v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        Duration::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid duration {v}")))
    }
}

/// A size in bytes; accepts `50M`, `1gb`, `1024`; printed as a plain number in a string,
/// as compose-go does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, JsonSchema)]
#[schemars(with = "String")]
pub struct Bytes(pub i64);

impl Bytes {
    pub fn parse(text: &str) -> Option<Bytes> {
        let s = text.trim().to_ascii_lowercase();
        if let Ok(n) = s.parse::<i64>() {
            return Some(Bytes(n));
        }
        let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (num, unit) = s.split_at(split);
        let value: f64 = num.parse().ok()?;
        let mult: f64 = match unit.trim() {
            "b" => 1.0,
            "k" | "kb" | "kib" => 1024.0,
            "m" | "mb" | "mib" => 1024.0 * 1024.0,
            "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
            "t" | "tb" | "tib" => 1024f64.powi(4),
            "p" | "pb" | "pib" => 1024f64.powi(5),
            _ => return None,
        };
        let bytes = value * mult;
        (bytes.is_finite() && bytes >= 0.0 && bytes < i64::MAX as f64)
            .then_some(Bytes(bytes as i64))
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let text = match &v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        Bytes::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("invalid size {v}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        for (input, out) in [
            ("10s", "10s"),
            ("60s", "1m0s"),
            ("1m30s", "1m30s"),
            ("120s", "2m0s"),
            ("1.5s", "1.5s"),
            ("100ms", "100ms"),
            ("1h", "1h0m0s"),
            ("0", "0s"),
            ("90", "1m30s"),
        ] {
            assert_eq!(Duration::parse(input).unwrap().to_string(), out, "{input}");
        }
        for bad in ["", "s", "10x", "-1s", "1..2s"] {
            assert!(Duration::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn container_names_follow_docker_compose() {
        let mut s = Service::default();
        assert_eq!(s.container_name_for("shop", "web", 2), "shop-web-2");
        s.container_name = Some("front".into());
        assert_eq!(s.container_name_for("shop", "web", 1), "front");
    }

    #[test]
    fn replicas_prefer_deploy_over_scale() {
        let mut s = Service {
            scale: Some(3),
            ..Service::default()
        };
        assert_eq!(s.replicas(), 3);
        s.deploy = Some(Deploy {
            replicas: Some(0),
            ..Deploy::default()
        });
        assert_eq!(s.replicas(), 0);
        assert_eq!(Service::default().replicas(), 1);
    }

    #[test]
    fn byte_units() {
        assert_eq!(Bytes::parse("50M"), Some(Bytes(52_428_800)));
        assert_eq!(Bytes::parse("20m"), Some(Bytes(20_971_520)));
        assert_eq!(Bytes::parse("1gb"), Some(Bytes(1 << 30)));
        assert_eq!(Bytes::parse("10000"), Some(Bytes(10_000)));
        assert_eq!(Bytes::parse("1.5k"), Some(Bytes(1536)));
        assert_eq!(Bytes::parse("lots"), None);
    }
}
