//! `wharf top [SERVICE…]`: the processes of each running container of the project, as
//! `docker compose top` prints them (UID PID PPID C STIME TTY TIME CMD, host PIDs, per
//! container under its name). The processes are the container's cgroup's; each one's
//! details come from `/proc/<pid>/{stat,status,cmdline}` — no `ps` is run. Parsing and
//! rendering are pure ([`parse_stat`], [`parse_uid`], [`render`]); STIME is the host's
//! local time, as `ps` shows it (the zone of `TZ` or `/etc/localtime`, [`super::tz`]).
//! Nothing here changes the host.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use clap::Args;

use super::records;
use super::tz::Zone;
use super::when::{Nanos, SECOND, nanos_of};
use super::{ExitCode, GlobalArgs, print, table};
use crate::runtime::cgroupdir::ContainerCgroup;
use crate::runtime::cgroupfs::Hierarchies;

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Only these services
    pub service: Vec<String>,
}

/// One process, as `/proc` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub uid: u32,
    /// `tty_nr` of `/proc/<pid>/stat` (0: none).
    pub tty: u64,
    /// User and system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// Start time, in clock ticks since boot.
    pub start_ticks: u64,
    pub comm: String,
    pub cmdline: Vec<String>,
}

/// What turns ticks into times: the clock's ticks per second, the boot time, now, and the
/// time zone STIME is shown in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clock {
    pub ticks_per_second: u64,
    pub boot: Nanos,
    pub now: Nanos,
    pub zone: Zone,
}

/// `(comm, ppid, tty_nr, utime + stime, starttime)` from `/proc/<pid>/stat`. The command
/// name may hold spaces and parentheses, so fields are counted from its last `)`.
pub fn parse_stat(text: &str) -> Option<(String, i32, u64, u64, u64)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    // Field 3 (state) onwards.
    let f: Vec<&str> = text.get(close + 2..)?.split(' ').collect();
    let num = |i: usize| -> Option<u64> { f.get(i - 3)?.parse().ok() };
    let ppid = f.get(1)?.parse().ok()?;
    Some((comm, ppid, num(7)?, num(14)? + num(15)?, num(22)?))
}

/// The real uid from `/proc/<pid>/status`.
pub fn parse_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|u| u.parse().ok())
}

/// User names by uid from an `/etc/passwd` text.
pub fn parse_passwd(text: &str) -> BTreeMap<u32, String> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse().ok()?;
            Some((uid, name.to_string()))
        })
        .collect()
}

/// `pts/0`, `tty1`, or `?`, as `ps` names a controlling terminal.
fn tty_name(tty: u64) -> String {
    let major = (tty >> 8) & 0xfff;
    let minor = (tty & 0xff) | ((tty >> 12) & 0xfff00);
    match major {
        0 => "?".into(),
        136..=143 => format!("pts/{}", minor + (major - 136) * 256),
        4 if minor < 64 => format!("tty{minor}"),
        4 => format!("ttyS{}", minor - 64),
        _ => "?".into(),
    }
}

/// `HH:MM:SS` of CPU time, `D-HH:MM:SS` past a day (`ps`'s TIME).
fn cpu_time(ticks: u64, per_second: u64) -> String {
    let s = ticks / per_second.max(1);
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}-{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// `ps`'s STIME in `zone`'s local time: `HH:MM` today, `Nov23` this year, the year before
/// that.
fn start_time(start: Nanos, now: Nanos, zone: &Zone) -> String {
    let t = zone.civil(start);
    let n = zone.civil(now);
    if t[..10] == n[..10] {
        t[11..16].to_string()
    } else if t[..4] == n[..4] {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let month: usize = t[5..7].parse().unwrap_or(1);
        format!("{}{}", MONTHS[month.clamp(1, 12) - 1], &t[8..10])
    } else {
        t[..4].to_string()
    }
}

/// The rows of one container's processes, in PID order.
pub fn rows(procs: &[Proc], users: &BTreeMap<u32, String>, clock: &Clock) -> Vec<Vec<String>> {
    let mut procs: Vec<&Proc> = procs.iter().collect();
    procs.sort_by_key(|p| p.pid);
    let hz = clock.ticks_per_second.max(1);
    procs
        .into_iter()
        .map(|p| {
            let start = clock.boot + Nanos::from(p.start_ticks) * SECOND / Nanos::from(hz);
            let elapsed_ticks = (clock.now - start) * Nanos::from(hz) / SECOND;
            let c = if elapsed_ticks > 0 {
                (Nanos::from(p.cpu_ticks) * 100 / elapsed_ticks).min(99)
            } else {
                0
            };
            let cmd = if p.cmdline.is_empty() {
                format!("[{}]", p.comm)
            } else {
                p.cmdline.join(" ")
            };
            vec![
                users
                    .get(&p.uid)
                    .cloned()
                    .unwrap_or_else(|| p.uid.to_string()),
                p.pid.to_string(),
                p.ppid.to_string(),
                c.to_string(),
                start_time(start, clock.now, &clock.zone),
                tty_name(p.tty),
                cpu_time(p.cpu_ticks, hz),
                cmd,
            ]
        })
        .collect()
}

/// Each container's name, then its processes' table, then a blank line.
pub fn render(
    containers: &[(String, Vec<Proc>)],
    users: &BTreeMap<u32, String>,
    clock: &Clock,
) -> String {
    let mut out = String::new();
    for (name, procs) in containers {
        out.push_str(name);
        out.push('\n');
        out.push_str(&table::render_with(
            &["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
            &rows(procs, users, clock),
            5,
            3,
        ));
        out.push('\n');
    }
    out
}

/// The process `pid` as `/proc` shows it now; `None` when it is gone.
fn read_proc(pid: i32) -> Option<Proc> {
    let dir = Path::new("/proc").join(pid.to_string());
    let (comm, ppid, tty, cpu_ticks, start_ticks) =
        parse_stat(&fs::read_to_string(dir.join("stat")).ok()?)?;
    let uid = parse_uid(&fs::read_to_string(dir.join("status")).ok()?)?;
    let cmdline = fs::read(dir.join("cmdline")).ok()?;
    let cmdline = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(Proc {
        pid,
        ppid,
        uid,
        tty,
        cpu_ticks,
        start_ticks,
        comm,
        cmdline,
    })
}

/// Boot time from `/proc/stat`'s `btime`.
fn boot_time() -> anyhow::Result<Nanos> {
    let stat = fs::read_to_string("/proc/stat")?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|b| b.trim().parse::<i64>().ok())
        .map(|b| Nanos::from(b) * SECOND)
        .ok_or_else(|| anyhow::anyhow!("/proc/stat has no btime"))
}

pub fn run(global: &GlobalArgs, args: TopArgs) -> anyhow::Result<ExitCode> {
    let (name, project) = records::project(global)?;
    let runtime = records::runtime()?;
    let found = records::containers(&runtime, Some(&name));
    records::check_services(&args.service, project.as_ref(), &found)?;
    let hierarchies = Hierarchies::read(Path::new("/proc/self/mountinfo"))?;
    let mut containers = Vec::new();
    for c in &found {
        if !c.state.is_active()
            || !(args.service.is_empty() || args.service.iter().any(|s| s == c.service()))
        {
            continue;
        }
        let cgroup = ContainerCgroup::open(&hierarchies, &c.config.spec.cgroup_path)?;
        let procs: Vec<Proc> = cgroup
            .procs()
            .unwrap_or_default()
            .into_iter()
            .filter_map(read_proc)
            .collect();
        containers.push((c.name().to_string(), procs));
    }
    let users = parse_passwd(&fs::read_to_string("/etc/passwd").unwrap_or_default());
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .unwrap_or(100);
    let clock = Clock {
        ticks_per_second: ticks,
        boot: boot_time()?,
        now: nanos_of(std::time::SystemTime::now()),
        zone: super::tz::local(),
    };
    print(&render(&containers, &users, &clock))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_status_and_passwd_are_parsed() {
        let stat = "4242 (my (odd) cmd) S 4240 4242 4242 34816 4242 4194560 100 0 0 0 250 50 0 0 20 0 1 0 123456 1000 100 0";
        assert_eq!(
            parse_stat(stat),
            Some(("my (odd) cmd".into(), 4240, 34816, 300, 123_456))
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(
            parse_uid("Name:\tsh\nUid:\t1000\t1000\t1000\t1000\nGid:\t0\n"),
            Some(1000)
        );
        let users =
            parse_passwd("root:x:0:0:root:/root:/bin/sh\nbad line\napp:x:1000:1000::/:/bin/sh\n");
        assert_eq!(users.get(&1000).map(String::as_str), Some("app"));
        assert_eq!(users.len(), 2);
    }

    #[test]
    fn start_times_are_clock_times_today_then_dates_then_years() {
        let now = 1_795_455_125 * SECOND; // 2026-11-23T17:32:05Z
        let utc = Zone::utc();
        assert_eq!(start_time(now - 3600 * SECOND, now, &utc), "16:32");
        assert_eq!(start_time(now - 86_400 * SECOND, now, &utc), "Nov22");
        assert_eq!(start_time(now - 400 * 86_400 * SECOND, now, &utc), "2025");
        // Local time: 17:32Z is 18:32 in Paris; 23:30Z yesterday is already today there.
        let paris = Zone::parse_rule("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        assert_eq!(start_time(now - 3600 * SECOND, now, &paris), "17:32");
        assert_eq!(start_time(now - 18 * 3600 * SECOND, now, &paris), "00:32");
        assert_eq!(start_time(now - 18 * 3600 * SECOND, now, &utc), "Nov22");
        let tokyo = Zone::parse_rule("JST-9").unwrap();
        assert_eq!(
            start_time(now - 3600 * SECOND, now, &tokyo),
            "01:32",
            "already tomorrow in Tokyo, as now is"
        );
        assert_eq!(tty_name(0), "?");
        assert_eq!(tty_name(34816 + 3), "pts/3");
        assert_eq!(tty_name(4 << 8 | 1), "tty1");
        assert_eq!(cpu_time(6100, 100), "00:01:01");
    }

    #[test]
    fn processes_render_like_ps_ef() {
        let boot = 1_795_400_000 * SECOND;
        let clock = Clock {
            ticks_per_second: 100,
            boot,
            now: 1_795_455_125 * SECOND,
            zone: Zone::utc(),
        };
        let sh = Proc {
            pid: 4242,
            ppid: 4240,
            uid: 0,
            tty: 0,
            cpu_ticks: 150,
            start_ticks: 5_500_000,
            comm: "sh".into(),
            cmdline: vec!["/bin/sh".into(), "-c".into(), "sleep 60".into()],
        };
        let sleep = Proc {
            pid: 4250,
            ppid: 4242,
            uid: 1000,
            tty: 34816,
            cpu_ticks: 360_000 * 100,
            start_ticks: 100,
            comm: "sleep".into(),
            cmdline: vec![],
        };
        let users = parse_passwd("root:x:0:0:root:/root:/bin/sh\n");
        insta::assert_snapshot!(render(&[("shop-web-1".into(), vec![sleep, sh])], &users, &clock), @r"
        shop-web-1
        UID    PID    PPID   C    STIME   TTY     TIME         CMD
        root   4242   4240   1    17:30   ?       00:00:01     /bin/sh -c sleep 60
        1000   4250   4242   99   02:13   pts/0   4-04:00:00   [sleep]
        ");
    }
}
