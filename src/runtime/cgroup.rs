//! Resource limits: from a Compose service's fields to the values the runtime writes into
//! the container's cgroup, for both cgroup v1 and cgroup v2.
//!
//! This module owns Docker's *semantics* of the resource options (what `memswap_limit: -1`
//! means, which option wins, which values are refused) and their translation into cgroup
//! files, as ordered `(file, value)` lists the runtime writes as they are. It is pure: it
//! reads no cgroup, knows no mount point and never checks what the host has (how many CPUs,
//! whether swap accounting is on). Checks that need the host, and skipping a file the kernel
//! lacks (each [`CgroupWrite`] says whether that is allowed), belong to the runtime.
//!
//! Where `deploy.resources` and the service-level fields both say something, the rule is
//! Docker Compose's (`getDeployResources` in docker/compose `pkg/compose/create.go`):
//! `deploy.resources.limits.{memory,cpus,pids}` and `deploy.resources.reservations.memory`
//! win when set; compose-go refuses distinct values for the same setting
//! (`can't set distinct values on 'mem_limit' and 'deploy.resources.limits.memory'`), and so
//! do we when both are set and differ.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::spec::SpecError;
use crate::compose::model::{Resource, Service};

/// Docker's smallest memory limit and reservation (`linuxMinMemory`, 6 MiB): below it a
/// container cannot even start its runtime.
pub const MIN_MEMORY: u64 = 6 * 1024 * 1024;
/// The CFS period Docker uses for `cpus` (100 ms, in µs).
pub const DEFAULT_CPU_PERIOD: u64 = 100_000;
/// The kernel's bounds for `cpu.shares` (v1); runc's v2 weight conversion assumes them.
const MIN_SHARES: u64 = 2;
const MAX_SHARES: u64 = 262_144;
/// The kernel's bounds for a CFS period, and its smallest quota (1 ms, in µs).
const MIN_PERIOD: u64 = 1_000;
const MAX_PERIOD: u64 = 1_000_000;
const MIN_QUOTA: i64 = 1_000;

/// Which cgroup hierarchy holds the controllers on this host. A v1/v2 hybrid host (v2 mounted
/// only for process tracking) counts as v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupVersion {
    V1,
    V2,
}

/// The swap side of the memory limit, in Docker's terms: `memswap_limit` is memory *plus*
/// swap, not swap alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwapLimit {
    /// No limit on swap (`memswap_limit: -1`).
    Unlimited,
    /// Memory + swap may use at most this many bytes.
    Total(u64),
}

/// One write into a cgroup directory: the runtime writes `value` into `<cgroup>/<file>`,
/// in list order. On cgroup v1 the controller hierarchy is the file's prefix before the
/// first dot (`memory.limit_in_bytes` lives in the `memory` hierarchy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupWrite {
    pub file: Cow<'static, str>,
    pub value: String,
    /// The kernel may lack this file (swap accounting off, no `CONFIG_MEMCG_SWAP`): skip it
    /// with a warning, as Docker does ("Memory limited without swap"), rather than fail.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub if_present: bool,
}

impl CgroupWrite {
    fn new(file: &'static str, value: impl ToString) -> CgroupWrite {
        CgroupWrite {
            file: Cow::Borrowed(file),
            value: value.to_string(),
            if_present: false,
        }
    }

    fn optional(file: &'static str, value: impl ToString) -> CgroupWrite {
        CgroupWrite {
            if_present: true,
            ..CgroupWrite::new(file, value)
        }
    }

    /// The v1 controller (hierarchy) this file belongs to.
    pub fn controller(&self) -> &str {
        self.file.split('.').next().unwrap_or(&self.file)
    }
}

/// The container's resource limits, resolved (Docker's defaults applied), plus the writes
/// that put them into effect on either cgroup version. `None` means "not limited": the
/// runtime leaves the kernel's default in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Resources {
    /// Memory limit, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// Memory + swap. With a memory limit and no `memswap_limit`, Docker allows as much swap
    /// as memory (`MemorySwap = 2 * Memory`, daemon `adaptContainerSettings`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<SwapLimit>,
    /// Soft limit the kernel reclaims towards under pressure, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swappiness: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oom_kill_disable: bool,
    /// Relative CPU weight in v1 shares (2..=262144; Docker's default, 1024, is not written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<u64>,
    /// CFS quota per period, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<i64>,
    /// CFS period, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_period: Option<u64>,
    /// CPUs the container may run on, in the kernel's list syntax (`0-1,3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<String>,
    /// Most tasks (processes and threads) the container may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<u64>,
    /// What to write on a cgroup v1 host, in order.
    pub v1: Vec<CgroupWrite>,
    /// What to write on a cgroup v2 host, in order.
    pub v2: Vec<CgroupWrite>,
}

/// runc's and crun's conversion from v1 `cpu.shares` (2..=262144) to v2 `cpu.weight`
/// (1..=10000): `1 + ((shares - 2) * 9999) / 262142`, so the default 1024 shares give 39.
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(MIN_SHARES, MAX_SHARES);
    1 + ((shares - 2) * 9999) / 262_142
}

/// Checks a cpuset list (`0-3,5,7-8`): comma-separated CPU numbers or ascending ranges, as
/// the kernel's `cpulist_parse` reads them. Returns the list with surrounding blanks removed.
pub fn parse_cpuset(text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("empty cpu list".to_string());
    }
    let number = |s: &str| -> Result<u32, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{s:?} is not a CPU number"));
        }
        s.parse::<u32>()
            .map_err(|_| format!("{s:?} is not a CPU number"))
    };
    for item in trimmed.split(',') {
        match item.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (number(lo)?, number(hi)?);
                if lo > hi {
                    return Err(format!("range {item:?} runs backwards"));
                }
            }
            None => {
                number(item)?;
            }
        }
    }
    Ok(trimmed.to_string())
}

struct Ctx<'a> {
    service: &'a str,
}

impl Ctx<'_> {
    fn err(&self, field: &str, reason: impl Into<String>) -> SpecError {
        SpecError::Field {
            service: self.service.to_string(),
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}

/// Picks between a service-level value and its `deploy.resources` twin: deploy wins, and two
/// distinct values are refused like compose-go does.
fn pick<T: PartialEq + Copy + std::fmt::Display>(
    ctx: &Ctx<'_>,
    service_field: &str,
    service_value: Option<T>,
    deploy_field: &str,
    deploy_value: Option<T>,
) -> Result<Option<T>, SpecError> {
    match (service_value, deploy_value) {
        (Some(a), Some(b)) if a != b => Err(ctx.err(
            deploy_field,
            format!(
                "can't set distinct values on '{service_field}' ({a}) and '{deploy_field}' ({b})"
            ),
        )),
        (_, Some(b)) => Ok(Some(b)),
        (a, None) => Ok(a),
    }
}

/// A memory size: 0 and -1 mean "no limit" (Docker: 0 is unset, runc: -1 is unlimited).
fn memory_bytes(ctx: &Ctx<'_>, field: &str, value: Option<i64>) -> Result<Option<u64>, SpecError> {
    match value {
        None | Some(0) | Some(-1) => Ok(None),
        Some(v) if v < 0 => Err(ctx.err(field, format!("{v} is negative"))),
        Some(v) => {
            let v = v.unsigned_abs();
            if v < MIN_MEMORY {
                return Err(ctx.err(
                    field,
                    format!("{v} bytes is below Docker's minimum of 6 MiB ({MIN_MEMORY} bytes)"),
                ));
            }
            Ok(Some(v))
        }
    }
}

fn nonzero<T: PartialEq + Default>(v: Option<T>) -> Option<T> {
    v.filter(|x| *x != T::default())
}

/// Translates the service's resource options. `cgroup` only decides which unsupported
/// options deserve a warning; both write lists are always computed.
pub fn resources(
    service_name: &str,
    service: &Service,
    cgroup: CgroupVersion,
    warnings: &mut Vec<String>,
) -> Result<Resources, SpecError> {
    let ctx = Ctx {
        service: service_name,
    };
    let deploy = service.deploy.as_ref().and_then(|d| d.resources.as_ref());
    let limits: Option<&Resource> = deploy.and_then(|r| r.limits.as_ref());
    let reservations: Option<&Resource> = deploy.and_then(|r| r.reservations.as_ref());

    // --- memory -------------------------------------------------------------------------
    let mem_raw = pick(
        &ctx,
        "mem_limit",
        nonzero(service.mem_limit.map(|b| b.0)),
        "deploy.resources.limits.memory",
        nonzero(limits.and_then(|l| l.memory).map(|b| b.0)),
    )?;
    let memory = memory_bytes(&ctx, "mem_limit", mem_raw)?;
    let res_raw = pick(
        &ctx,
        "mem_reservation",
        nonzero(service.mem_reservation.map(|b| b.0)),
        "deploy.resources.reservations.memory",
        nonzero(reservations.and_then(|r| r.memory).map(|b| b.0)),
    )?;
    let memory_reservation = memory_bytes(&ctx, "mem_reservation", res_raw)?;
    if let (Some(limit), Some(reservation)) = (memory, memory_reservation)
        && reservation > limit
    {
        return Err(ctx.err(
            "mem_reservation",
            format!("{reservation} bytes is more than the memory limit ({limit} bytes)"),
        ));
    }

    // Docker: MemorySwap 0 is unset, -1 unlimited, anything else the memory+swap total,
    // which needs a memory limit and may not be below it (daemon verifyContainerResources).
    let memory_swap = match (service.memswap_limit.map(|b| b.0), memory) {
        (None | Some(0), None) => None,
        (None | Some(0), Some(m)) => Some(SwapLimit::Total(m.saturating_mul(2))),
        (Some(-1), _) => memory.map(|_| SwapLimit::Unlimited),
        (Some(v), _) if v < 0 => {
            return Err(ctx.err(
                "memswap_limit",
                format!("{v} is negative (use -1 for unlimited swap)"),
            ));
        }
        (Some(_), None) => {
            return Err(ctx.err(
                "memswap_limit",
                "needs a memory limit (mem_limit or deploy.resources.limits.memory): it is memory plus swap",
            ));
        }
        (Some(v), Some(m)) => {
            let v = v.unsigned_abs();
            if v < m {
                return Err(ctx.err(
                    "memswap_limit",
                    format!(
                        "{v} bytes is below the memory limit ({m} bytes): memswap_limit is memory plus swap"
                    ),
                ));
            }
            Some(SwapLimit::Total(v))
        }
    };

    let memory_swappiness = match service.mem_swappiness {
        None | Some(-1) => None,
        Some(v @ 0..=100) => Some(v.unsigned_abs()),
        Some(v) => {
            return Err(ctx.err("mem_swappiness", format!("{v} is outside 0..=100")));
        }
    };
    let oom_kill_disable = service.oom_kill_disable == Some(true);
    if oom_kill_disable && memory.is_none() {
        // Docker's own warning: without a limit, nothing stops the container taking the host.
        warnings.push(
            "oom_kill_disable is set without a memory limit: the container may exhaust the host's memory"
                .to_string(),
        );
    }
    if cgroup == CgroupVersion::V2 {
        if memory_swappiness.is_some() {
            warnings
                .push("mem_swappiness is not supported on cgroup v2 and is ignored".to_string());
        }
        if oom_kill_disable {
            warnings
                .push("oom_kill_disable is not supported on cgroup v2 and is ignored".to_string());
        }
    }

    // --- cpu ----------------------------------------------------------------------------
    let cpus = pick(
        &ctx,
        "cpus",
        service.cpus.filter(|c| *c != 0.0),
        "deploy.resources.limits.cpus",
        limits.and_then(|l| l.cpus).filter(|c| *c != 0.0),
    )?;
    let quota_raw = match service.cpu_quota {
        None | Some(0) | Some(-1) => None,
        Some(q) if q < 0 => {
            return Err(ctx.err(
                "cpu_quota",
                format!("{q} is negative (use -1 for no quota)"),
            ));
        }
        Some(q) if q < MIN_QUOTA => {
            return Err(ctx.err(
                "cpu_quota",
                format!("{q} µs is below the kernel's minimum of 1 ms (1000)"),
            ));
        }
        Some(q) => Some(q),
    };
    let period_raw = match service.cpu_period {
        None | Some(0) => None,
        Some(p) if !(MIN_PERIOD as i64..=MAX_PERIOD as i64).contains(&p) => {
            return Err(ctx.err(
                "cpu_period",
                format!("{p} µs is outside the kernel's 1000..=1000000 (1 ms to 1 s)"),
            ));
        }
        Some(p) => Some(p.unsigned_abs()),
    };
    let (cpu_quota, cpu_period) = match cpus {
        Some(c) => {
            // Docker refuses NanoCPUs beside CPUQuota/CPUPeriod ("Conflicting options").
            if quota_raw.is_some() || period_raw.is_some() {
                return Err(ctx.err(
                    "cpus",
                    "conflicts with cpu_quota/cpu_period: set either cpus or the CFS quota and period",
                ));
            }
            if !c.is_finite() || c < 0.0 {
                return Err(ctx.err("cpus", format!("{c} is not a positive number of CPUs")));
            }
            // NanoCPUs = cpus * 1e9; quota = NanoCPUs * period / 1e9 (daemon getCPUResources).
            let quota = (c * DEFAULT_CPU_PERIOD as f64).round();
            if quota < MIN_QUOTA as f64 {
                return Err(ctx.err("cpus", format!("{c} is below Docker's minimum of 0.01")));
            }
            if quota > i64::MAX as f64 {
                return Err(ctx.err("cpus", format!("{c} is too large")));
            }
            (Some(quota as i64), Some(DEFAULT_CPU_PERIOD))
        }
        None => (quota_raw, period_raw),
    };
    let cpu_shares = match service.cpu_shares {
        None | Some(0) => None,
        Some(s) if s < 0 => {
            return Err(ctx.err("cpu_shares", format!("{s} is negative")));
        }
        Some(s) => {
            let s = s.unsigned_abs();
            let clamped = s.clamp(MIN_SHARES, MAX_SHARES);
            if clamped != s {
                // The kernel clamps the same way; Docker warns ("Changing requested CPUShares").
                warnings.push(format!(
                    "cpu_shares {s} is outside {MIN_SHARES}..={MAX_SHARES}; using {clamped}"
                ));
            }
            Some(clamped)
        }
    };
    let cpuset_cpus = match &service.cpuset {
        None => None,
        Some(text) => Some(parse_cpuset(text).map_err(|e| ctx.err("cpuset", e))?),
    };

    // --- pids ---------------------------------------------------------------------------
    // Docker: a limit <= 0 means unlimited (getPidsLimit). deploy.resources.limits.pids is
    // only taken when positive (docker compose setLimits).
    let pids = pick(
        &ctx,
        "pids_limit",
        nonzero(service.pids_limit),
        "deploy.resources.limits.pids",
        limits.and_then(|l| l.pids).filter(|p| *p > 0),
    )?;
    let pids_limit = pids.filter(|p| *p > 0).map(i64::unsigned_abs);

    for (field, set) in [
        ("cpu_rt_runtime", service.cpu_rt_runtime.is_some()),
        ("cpu_rt_period", service.cpu_rt_period.is_some()),
        ("cpu_count", service.cpu_count.is_some()),
        ("cpu_percent", service.cpu_percent.is_some()),
        ("blkio_config", service.blkio_config.is_some()),
        (
            "deploy.resources.reservations.cpus",
            reservations.and_then(|r| r.cpus).is_some(),
        ),
        (
            "deploy.resources.*.devices",
            limits.and_then(|l| l.devices.as_ref()).is_some()
                || reservations.and_then(|r| r.devices.as_ref()).is_some(),
        ),
        (
            "deploy.resources.*.generic_resources",
            limits.and_then(|l| l.generic_resources.as_ref()).is_some()
                || reservations
                    .and_then(|r| r.generic_resources.as_ref())
                    .is_some(),
        ),
    ] {
        if set {
            warnings.push(format!("{field} is not supported by wharf and is ignored"));
        }
    }

    let mut res = Resources {
        memory,
        memory_swap,
        memory_reservation,
        memory_swappiness,
        oom_kill_disable,
        cpu_shares,
        cpu_quota,
        cpu_period,
        cpuset_cpus,
        pids_limit,
        v1: Vec::new(),
        v2: Vec::new(),
    };
    res.v1 = v1_writes(&res);
    res.v2 = v2_writes(&res);
    Ok(res)
}

/// cgroup v1 files. The memory limit goes before memory+swap: the kernel refuses a memsw
/// limit below the memory limit, and a fresh cgroup starts with both unlimited. The period
/// goes before the quota, as runc writes them.
fn v1_writes(r: &Resources) -> Vec<CgroupWrite> {
    let mut w = Vec::new();
    if let Some(m) = r.memory {
        w.push(CgroupWrite::new("memory.limit_in_bytes", m));
    }
    match r.memory_swap {
        Some(SwapLimit::Total(t)) => {
            w.push(CgroupWrite::optional("memory.memsw.limit_in_bytes", t))
        }
        Some(SwapLimit::Unlimited) => {
            w.push(CgroupWrite::optional("memory.memsw.limit_in_bytes", -1))
        }
        None => {}
    }
    if let Some(res) = r.memory_reservation {
        w.push(CgroupWrite::new("memory.soft_limit_in_bytes", res));
    }
    if let Some(s) = r.memory_swappiness {
        w.push(CgroupWrite::new("memory.swappiness", s));
    }
    if r.oom_kill_disable {
        w.push(CgroupWrite::new("memory.oom_control", 1));
    }
    if let Some(s) = r.cpu_shares {
        w.push(CgroupWrite::new("cpu.shares", s));
    }
    if let Some(p) = r.cpu_period {
        w.push(CgroupWrite::new("cpu.cfs_period_us", p));
    }
    if let Some(q) = r.cpu_quota {
        w.push(CgroupWrite::new("cpu.cfs_quota_us", q));
    }
    if let Some(c) = &r.cpuset_cpus {
        w.push(CgroupWrite::new("cpuset.cpus", c));
    }
    if let Some(p) = r.pids_limit {
        w.push(CgroupWrite::new("pids.max", p));
    }
    w
}

/// cgroup v2 files. `memory.swap.max` is swap alone, so it is memory+swap minus memory
/// (runc `ConvertMemorySwapToCgroupV2Value`); the reservation becomes `memory.low` and the
/// shares a weight, as runc maps them.
fn v2_writes(r: &Resources) -> Vec<CgroupWrite> {
    let mut w = Vec::new();
    if let Some(m) = r.memory {
        w.push(CgroupWrite::new("memory.max", m));
        match r.memory_swap {
            Some(SwapLimit::Total(t)) => w.push(CgroupWrite::optional(
                "memory.swap.max",
                t.saturating_sub(m),
            )),
            Some(SwapLimit::Unlimited) => w.push(CgroupWrite::optional("memory.swap.max", "max")),
            None => {}
        }
    }
    if let Some(res) = r.memory_reservation {
        w.push(CgroupWrite::new("memory.low", res));
    }
    if let Some(s) = r.cpu_shares {
        w.push(CgroupWrite::new("cpu.weight", shares_to_weight(s)));
    }
    if r.cpu_quota.is_some() || r.cpu_period.is_some() {
        let period = r.cpu_period.unwrap_or(DEFAULT_CPU_PERIOD);
        let value = match r.cpu_quota {
            Some(q) => format!("{q} {period}"),
            None => format!("max {period}"),
        };
        w.push(CgroupWrite::new("cpu.max", value));
    }
    if let Some(c) = &r.cpuset_cpus {
        w.push(CgroupWrite::new("cpuset.cpus", c));
    }
    if let Some(p) = r.pids_limit {
        w.push(CgroupWrite::new("pids.max", p));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::model::{Bytes, Deploy, Resources as ComposeResources};

    fn build(service: &Service) -> Result<Resources, SpecError> {
        resources("web", service, CgroupVersion::V1, &mut Vec::new())
    }

    fn files(writes: &[CgroupWrite]) -> Vec<(&str, &str)> {
        writes
            .iter()
            .map(|w| (w.file.as_ref(), w.value.as_str()))
            .collect()
    }

    fn with_deploy(limits: Resource, reservations: Resource) -> Service {
        Service {
            deploy: Some(Deploy {
                resources: Some(ComposeResources {
                    limits: Some(limits),
                    reservations: Some(reservations),
                }),
                ..Deploy::default()
            }),
            ..Service::default()
        }
    }

    const MIB: i64 = 1024 * 1024;

    #[test]
    fn nothing_set_writes_nothing() {
        let r = build(&Service::default()).unwrap();
        assert_eq!(r, Resources::default());
    }

    #[test]
    fn weight_conversion_matches_runc() {
        for (shares, weight) in [
            (2, 1),
            (1024, 39),
            (512, 20),
            (262_144, 10_000),
            (1, 1),
            (1_000_000, 10_000),
        ] {
            assert_eq!(shares_to_weight(shares), weight, "{shares}");
        }
    }

    #[test]
    fn memory_defaults_swap_to_twice_memory_like_docker() {
        let s = Service {
            mem_limit: Some(Bytes(512 * MIB)),
            ..Service::default()
        };
        let r = build(&s).unwrap();
        assert_eq!(r.memory_swap, Some(SwapLimit::Total(1024 * MIB as u64)));
        assert_eq!(
            files(&r.v1),
            [
                ("memory.limit_in_bytes", "536870912"),
                ("memory.memsw.limit_in_bytes", "1073741824"),
            ]
        );
        assert_eq!(
            files(&r.v2),
            [
                ("memory.max", "536870912"),
                ("memory.swap.max", "536870912")
            ]
        );
        assert!(r.v1[1].if_present && r.v2[1].if_present && !r.v1[0].if_present);
    }

    #[test]
    fn memswap_semantics() {
        // (mem_limit, memswap_limit) -> v2 swap.max or error
        type Case<'a> = (Option<i64>, Option<i64>, Result<Option<&'a str>, &'a str>);
        let cases: &[Case] = &[
            (Some(100 * MIB), Some(-1), Ok(Some("max"))),
            (Some(100 * MIB), Some(100 * MIB), Ok(Some("0"))),
            (Some(100 * MIB), Some(300 * MIB), Ok(Some("209715200"))),
            (Some(100 * MIB), Some(0), Ok(Some("104857600"))),
            (None, Some(-1), Ok(None)),
            (None, Some(0), Ok(None)),
            (None, Some(300 * MIB), Err("needs a memory limit")),
            (
                Some(100 * MIB),
                Some(50 * MIB),
                Err("below the memory limit"),
            ),
            (Some(100 * MIB), Some(-2), Err("negative")),
        ];
        for (mem, swap, want) in cases {
            let s = Service {
                mem_limit: mem.map(Bytes),
                memswap_limit: swap.map(Bytes),
                ..Service::default()
            };
            let got = build(&s);
            match want {
                Ok(v) => {
                    let r = got.unwrap();
                    let swap_max =
                        r.v2.iter()
                            .find(|w| w.file == "memory.swap.max")
                            .map(|w| w.value.as_str());
                    assert_eq!(swap_max, *v, "{mem:?} {swap:?}");
                }
                Err(msg) => {
                    let e = got.unwrap_err().to_string();
                    assert!(e.contains(msg) && e.contains("memswap_limit"), "{e}");
                }
            }
        }
        let s = Service {
            mem_limit: Some(Bytes(100 * MIB)),
            memswap_limit: Some(Bytes(-1)),
            ..Service::default()
        };
        let r = build(&s).unwrap();
        assert_eq!(
            files(&r.v1),
            [
                ("memory.limit_in_bytes", "104857600"),
                ("memory.memsw.limit_in_bytes", "-1")
            ]
        );
    }

    #[test]
    fn memory_minimum_and_reservation() {
        let tiny = Service {
            mem_limit: Some(Bytes(4 * MIB)),
            ..Service::default()
        };
        let e = build(&tiny).unwrap_err().to_string();
        assert!(e.contains("mem_limit") && e.contains("6 MiB"), "{e}");
        let unlimited = Service {
            mem_limit: Some(Bytes(-1)),
            ..Service::default()
        };
        assert_eq!(build(&unlimited).unwrap().memory, None);
        let over = Service {
            mem_limit: Some(Bytes(64 * MIB)),
            mem_reservation: Some(Bytes(128 * MIB)),
            ..Service::default()
        };
        let e = build(&over).unwrap_err().to_string();
        assert!(
            e.contains("mem_reservation") && e.contains("more than"),
            "{e}"
        );
        let ok = Service {
            mem_reservation: Some(Bytes(32 * MIB)),
            ..Service::default()
        };
        let r = build(&ok).unwrap();
        assert_eq!(files(&r.v1), [("memory.soft_limit_in_bytes", "33554432")]);
        assert_eq!(files(&r.v2), [("memory.low", "33554432")]);
    }

    #[test]
    fn cpus_become_a_quota_over_100ms() {
        let s = Service {
            cpus: Some(1.5),
            ..Service::default()
        };
        let r = build(&s).unwrap();
        assert_eq!(
            files(&r.v1),
            [
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "150000")
            ]
        );
        assert_eq!(files(&r.v2), [("cpu.max", "150000 100000")]);
        let s = Service {
            cpus: Some(0.005),
            ..Service::default()
        };
        assert!(build(&s).unwrap_err().to_string().contains("0.01"));
        let s = Service {
            cpus: Some(-1.0),
            ..Service::default()
        };
        assert!(build(&s).is_err());
        let s = Service {
            cpus: Some(f64::NAN),
            ..Service::default()
        };
        assert!(build(&s).is_err());
    }

    #[test]
    fn quota_and_period() {
        let s = Service {
            cpu_quota: Some(50_000),
            cpu_period: Some(200_000),
            ..Service::default()
        };
        let r = build(&s).unwrap();
        assert_eq!(
            files(&r.v1),
            [
                ("cpu.cfs_period_us", "200000"),
                ("cpu.cfs_quota_us", "50000")
            ]
        );
        assert_eq!(files(&r.v2), [("cpu.max", "50000 200000")]);
        let period_only = Service {
            cpu_period: Some(50_000),
            ..Service::default()
        };
        assert_eq!(
            files(&build(&period_only).unwrap().v2),
            [("cpu.max", "max 50000")]
        );
        let quota_only = Service {
            cpu_quota: Some(20_000),
            ..Service::default()
        };
        assert_eq!(
            files(&build(&quota_only).unwrap().v2),
            [("cpu.max", "20000 100000")]
        );
        for (q, p) in [
            (Some(999), None),
            (None, Some(999)),
            (None, Some(1_000_001)),
            (Some(-5), None),
        ] {
            let s = Service {
                cpu_quota: q,
                cpu_period: p,
                ..Service::default()
            };
            assert!(build(&s).is_err(), "{q:?} {p:?}");
        }
        let unlimited = Service {
            cpu_quota: Some(-1),
            ..Service::default()
        };
        assert!(build(&unlimited).unwrap().v1.is_empty());
        let both = Service {
            cpus: Some(1.0),
            cpu_quota: Some(50_000),
            ..Service::default()
        };
        assert!(build(&both).unwrap_err().to_string().contains("conflicts"));
    }

    #[test]
    fn shares_clamp_with_a_warning() {
        let mut warnings = Vec::new();
        let s = Service {
            cpu_shares: Some(1),
            ..Service::default()
        };
        let r = resources("web", &s, CgroupVersion::V2, &mut warnings).unwrap();
        assert_eq!(files(&r.v1), [("cpu.shares", "2")]);
        assert_eq!(files(&r.v2), [("cpu.weight", "1")]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let s = Service {
            cpu_shares: Some(512),
            ..Service::default()
        };
        assert_eq!(files(&build(&s).unwrap().v2), [("cpu.weight", "20")]);
        let s = Service {
            cpu_shares: Some(-3),
            ..Service::default()
        };
        assert!(build(&s).is_err());
    }

    #[test]
    fn cpuset_syntax() {
        for ok in ["0", "0-1,3", " 0-3,5,7-8 ", "12"] {
            assert!(parse_cpuset(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "1-",
            "-1",
            "3-1",
            "0,,1",
            "0-1-2",
            "1 ,2",
            "0x1",
            "99999999999",
        ] {
            assert!(parse_cpuset(bad).is_err(), "{bad}");
        }
        let s = Service {
            cpuset: Some("0-1".into()),
            ..Service::default()
        };
        let r = build(&s).unwrap();
        assert_eq!(files(&r.v1), [("cpuset.cpus", "0-1")]);
        assert_eq!(files(&r.v2), [("cpuset.cpus", "0-1")]);
        let s = Service {
            cpuset: Some("1-0".into()),
            ..Service::default()
        };
        assert!(build(&s).unwrap_err().to_string().contains("cpuset"));
    }

    #[test]
    fn pids_limit_zero_and_negative_are_unlimited() {
        for (v, want) in [
            (Some(-1), None),
            (Some(0), None),
            (Some(100), Some(100)),
            (None, None),
        ] {
            let s = Service {
                pids_limit: v,
                ..Service::default()
            };
            assert_eq!(build(&s).unwrap().pids_limit, want, "{v:?}");
        }
        let s = Service {
            pids_limit: Some(64),
            ..Service::default()
        };
        let r = build(&s).unwrap();
        assert_eq!(files(&r.v1), [("pids.max", "64")]);
        assert_eq!(files(&r.v2), [("pids.max", "64")]);
    }

    #[test]
    fn deploy_resources_win_and_distinct_values_are_refused() {
        let mut s = with_deploy(
            Resource {
                cpus: Some(0.5),
                memory: Some(Bytes(256 * MIB)),
                pids: Some(50),
                ..Resource::default()
            },
            Resource {
                memory: Some(Bytes(128 * MIB)),
                ..Resource::default()
            },
        );
        let r = build(&s).unwrap();
        assert_eq!(r.memory, Some(256 * MIB as u64));
        assert_eq!(r.memory_reservation, Some(128 * MIB as u64));
        assert_eq!(r.cpu_quota, Some(50_000));
        assert_eq!(r.pids_limit, Some(50));
        // the same value twice is fine
        s.mem_limit = Some(Bytes(256 * MIB));
        s.cpus = Some(0.5);
        assert!(build(&s).is_ok());
        for (field, tweak) in [
            (
                "mem_limit",
                Box::new(|s: &mut Service| s.mem_limit = Some(Bytes(300 * MIB)))
                    as Box<dyn Fn(&mut Service)>,
            ),
            ("cpus", Box::new(|s: &mut Service| s.cpus = Some(2.0))),
            (
                "pids_limit",
                Box::new(|s: &mut Service| s.pids_limit = Some(7)),
            ),
            (
                "mem_reservation",
                Box::new(|s: &mut Service| s.mem_reservation = Some(Bytes(64 * MIB))),
            ),
        ] {
            let mut t = s.clone();
            tweak(&mut t);
            let e = build(&t).unwrap_err().to_string();
            assert!(e.contains("distinct") && e.contains(field), "{e}");
        }
    }

    #[test]
    fn v1_only_options_warn_on_v2() {
        let s = Service {
            mem_limit: Some(Bytes(64 * MIB)),
            mem_swappiness: Some(10),
            oom_kill_disable: Some(true),
            ..Service::default()
        };
        let mut warnings = Vec::new();
        let r = resources("web", &s, CgroupVersion::V2, &mut warnings).unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(files(&r.v1).contains(&("memory.swappiness", "10")));
        assert!(files(&r.v1).contains(&("memory.oom_control", "1")));
        assert!(!r.v2.iter().any(|w| w.file.contains("swappiness")));
        let s = Service {
            mem_swappiness: Some(101),
            ..Service::default()
        };
        assert!(build(&s).is_err());
    }

    #[test]
    fn unsupported_fields_warn() {
        let s = Service {
            cpu_rt_runtime: Some(1),
            blkio_config: Some(serde_json::json!({"weight": 10})),
            ..Service::default()
        };
        let mut warnings = Vec::new();
        resources("web", &s, CgroupVersion::V1, &mut warnings).unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }

    #[test]
    fn controller_is_the_file_prefix() {
        assert_eq!(CgroupWrite::new("memory.max", 1).controller(), "memory");
        assert_eq!(CgroupWrite::new("pids.max", 1).controller(), "pids");
    }
}
