//! `wharf logs [SERVICE…]`: the output of the project's containers, as `docker compose
//! logs` prints it — each line prefixed `web-1  | ` (padded to the longest name, coloured
//! per service on a terminal), the containers' lines merged by time, with `--tail`,
//! `--since`, `--until`, `-t`, `--no-log-prefix`, `--no-color`, `--index`. Without SERVICE
//! arguments, every service but those with `attach: false`.
//!
//! `-f` follows the services rather than the containers: every poll (150 ms) it lists the
//! project's containers again, so a replaced container (a new id under the same name), a new
//! replica and a restarted container (its log keeps growing) are all followed; it ends when
//! no followed container has been running for a short grace period, or — when a container
//! appeared while following and has not started yet (a replacement being set up) — a longer
//! one, or once the `--until` time has passed ([`until_passed`], as Docker's follow does).
//! Attached `up` runs the same loop through [`attached`], with its own services and a
//! callback told of every container's end ([`Hooks`]). The logic (selecting, merging,
//! prefixing, when to stop, which runs ended) is pure and unit-tested;
//! reading goes through the runtime's [`Follower`]. Nothing here changes the host.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant, SystemTime};

use clap::Args;

use super::records::{self, Container};
use super::when::{Nanos, nanos_of, parse_point, parse_rfc3339};
use super::{Ansi, ExitCode, GlobalArgs, print};
use crate::runtime::container::Status;
use crate::runtime::log::{Entry, Follower};

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs for each container, or `all`
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show logs since timestamp (2026-11-23T17:32:05Z) or relative (42m for 42 minutes)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp (2026-11-23T17:32:05Z) or relative (42m for 42 minutes)
    #[arg(long)]
    pub until: Option<String>,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Don't print prefix in logs
    #[arg(long)]
    pub no_log_prefix: bool,
    /// Produce monochrome output
    #[arg(long)]
    pub no_color: bool,
    /// Index of the container if the service has several replicas
    #[arg(long)]
    pub index: Option<u64>,
    /// Compose configuration files, as `--file` only: after `logs`, `-f` is `--follow`
    /// (as in Docker Compose, where `-f FILE` goes before the command). Declaring the id
    /// here keeps clap from giving this command the global `-f`.
    #[arg(long = "file", hide = true)]
    pub file: Vec<std::path::PathBuf>,
    /// Only these services
    pub service: Vec<String>,
}

/// How often `-f` looks for new lines and containers.
pub const POLL: Duration = Duration::from_millis(150);
/// How long `-f` waits, once nothing runs, for a container to come back.
pub const GRACE: Duration = Duration::from_secs(1);
/// How long it waits for a container that appeared while following to start.
pub const REPLACE_GRACE: Duration = Duration::from_secs(10);

/// Which entries of one container's log are shown: the last `tail` (all when `None`), then
/// those from `since` to `until` (both inclusive), as Docker selects them.
pub fn select(
    entries: Vec<Entry>,
    tail: Option<usize>,
    since: Option<Nanos>,
    until: Option<Nanos>,
) -> Vec<Entry> {
    let skip = tail.map_or(0, |t| entries.len().saturating_sub(t));
    entries
        .into_iter()
        .skip(skip)
        .filter(|e| {
            let t = parse_rfc3339(&e.time);
            since.is_none_or(|s| t.is_none_or(|t| t >= s))
                && until.is_none_or(|u| t.is_none_or(|t| t <= u))
        })
        .collect()
}

/// A line to print: which container it came from (an index into the caller's list) and
/// the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub source: usize,
    pub entry: Entry,
}

/// The lines of several containers in time order; a container's own lines keep their
/// order (a line without a readable time goes with the one before it).
pub fn merge(per_source: Vec<Vec<Entry>>) -> Vec<Line> {
    let mut keyed: Vec<(Nanos, Line)> = Vec::new();
    for (source, entries) in per_source.into_iter().enumerate() {
        let mut last = Nanos::MIN;
        for entry in entries {
            if let Some(t) = parse_rfc3339(&entry.time) {
                last = last.max(t);
            }
            keyed.push((last, Line { source, entry }));
        }
    }
    // Stable: equal times keep the sources' order.
    keyed.sort_by_key(|(t, _)| *t);
    keyed.into_iter().map(|(_, l)| l).collect()
}

/// How lines are decorated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Style {
    pub prefix: bool,
    pub color: bool,
    pub timestamps: bool,
}

/// Docker Compose's prefix colours, in the order services get them.
const COLORS: [&str; 10] = ["36", "33", "32", "35", "34", "96", "93", "92", "95", "94"];

/// Prefixes lines: `web-1  | ` padded to the longest name seen plus one, in the colour of
/// the service.
#[derive(Debug, Clone, Default)]
pub struct Prefixer {
    width: usize,
    colors: BTreeMap<String, usize>,
}

impl Prefixer {
    /// Notes a container's name and service (the width and colours grow as they come).
    pub fn register(&mut self, name: &str, service: &str) {
        self.width = self.width.max(name.chars().count() + 1);
        let next = self.colors.len();
        self.colors.entry(service.to_string()).or_insert(next);
    }

    /// The text printed for `entry` of container `name` of `service`.
    pub fn line(&self, style: &Style, name: &str, service: &str, entry: &Entry) -> String {
        let mut out = String::new();
        if style.prefix {
            let prefix = format!("{name:<width$} | ", width = self.width);
            match self.colors.get(service).filter(|_| style.color) {
                Some(i) => out.push_str(&format!(
                    "\x1b[{}m{prefix}\x1b[0m",
                    COLORS[i % COLORS.len()]
                )),
                None => out.push_str(&prefix),
            }
        }
        if style.timestamps {
            out.push_str(&entry.time);
            out.push(' ');
        }
        out.push_str(&entry.log);
        if !entry.log.ends_with('\n') {
            out.push('\n');
        }
        out
    }
}

/// Whether `-f` goes on: while a followed container runs; for [`GRACE`] after the last one
/// stopped; for [`REPLACE_GRACE`] while a container that appeared during the follow waits
/// to be started.
pub fn keep_following(any_active: bool, pending_new: bool, idle_for: Duration) -> bool {
    any_active || idle_for < GRACE || (pending_new && idle_for < REPLACE_GRACE)
}

/// Whether `-f` ends because `--until` has passed: Docker's follow stops at that time
/// (the lines up to it were printed), exiting 0.
pub fn until_passed(until: Option<Nanos>, now: Nanos) -> bool {
    until.is_some_and(|u| now > u)
}

/// `all` or a number.
fn parse_tail(text: &str) -> anyhow::Result<Option<usize>> {
    if text == "all" {
        return Ok(None);
    }
    // Docker reads a negative number as "all".
    match text.parse::<i64>() {
        Ok(n) if n < 0 => Ok(None),
        Ok(n) => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
        Err(_) => anyhow::bail!("--tail {text:?}: a number or \"all\""),
    }
}

/// A container that ended a run (exited, died, or exited before its restart policy starts
/// it again), as attached `up` is told of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// The name in log prefixes (`web-1`).
    pub name: String,
    pub service: String,
    pub code: i32,
    /// Stopped on request (`stop`, `down`, an abort), not by itself.
    pub requested: bool,
    /// Its logs are shown.
    pub attached: bool,
}

/// What attached `up` adds to the follow loop of `logs -f`.
pub struct Hooks<'a> {
    /// The services whose logs are shown, replacing the SERVICE arguments (an empty list
    /// shows none).
    pub services: Vec<String>,
    /// Runs that ended before this time are not reported (they are not this `up`'s).
    pub since: Nanos,
    /// Told of every ended run of every container of the project, attached or not, in the
    /// order they ended.
    pub on_exit: &'a mut dyn FnMut(&Exit) -> anyhow::Result<()>,
    /// Once true, lines are read but no longer printed (the containers are being stopped).
    pub muted: &'a dyn Fn() -> bool,
    /// Once true, following ends at once (`up --menu`'s Detach).
    pub detached: &'a dyn Fn() -> bool,
}

/// The run of a container that ended at or after `since`, as (when it ended, exit code):
/// the key that tells one run's end from the next. A record without a readable end time
/// counts as new; one without an exit code (the supervisor died) as 255.
pub fn ended(state: &crate::runtime::container::State, since: Nanos) -> Option<(String, i32)> {
    if !matches!(
        state.status,
        Status::Exited | Status::Dead | Status::Restarting
    ) {
        return None;
    }
    let at = state.finished_at.clone().unwrap_or_default();
    if parse_rfc3339(&at).is_some_and(|t| t < since) {
        return None;
    }
    Some((at, state.exit_code.unwrap_or(255)))
}

/// Reports the runs of `listed` that ended since the last call, oldest end first
/// (`reported`: container id → the end already reported).
fn report_exits(
    hooks: &mut Hooks<'_>,
    project: &str,
    listed: &[Container],
    attached: &dyn Fn(&Container) -> bool,
    reported: &mut BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let mut exits: Vec<(Nanos, Exit)> = Vec::new();
    for c in listed {
        let Some((at, code)) = ended(&c.state, hooks.since) else {
            continue;
        };
        if reported.get(&c.id) == Some(&at) {
            continue;
        }
        exits.push((
            parse_rfc3339(&at).unwrap_or(Nanos::MAX),
            Exit {
                name: records::short_name(project, c.service(), c.replica(), c.name()),
                service: c.service().to_string(),
                code,
                requested: c.state.stopped_by_user,
                attached: attached(c),
            },
        ));
        reported.insert(c.id.clone(), at);
    }
    exits.sort_by_key(|(t, _)| *t);
    for (_, exit) in &exits {
        (hooks.on_exit)(exit)?;
    }
    Ok(())
}

/// A container being followed.
struct Followed {
    name: String,
    service: String,
    follower: Follower,
}

pub fn run(global: &GlobalArgs, args: LogsArgs) -> anyhow::Result<ExitCode> {
    follow(global, args, None)
}

/// `logs -f` for attached `up`: the services `hooks` names, and every container's end
/// reported to it.
pub fn attached(global: &GlobalArgs, args: LogsArgs, hooks: Hooks<'_>) -> anyhow::Result<ExitCode> {
    follow(global, args, Some(hooks))
}

fn follow(
    global: &GlobalArgs,
    args: LogsArgs,
    mut hooks: Option<Hooks<'_>>,
) -> anyhow::Result<ExitCode> {
    let mut global = global.clone();
    global.file.extend(args.file.iter().cloned());
    let (project_name, project) = records::project(&global)?;
    let runtime = records::runtime()?;
    let now = nanos_of(SystemTime::now());
    let tail = parse_tail(&args.tail)?;
    let since = args
        .since
        .as_deref()
        .map(|s| parse_point(s, now))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    let until = args
        .until
        .as_deref()
        .map(|s| parse_point(s, now))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--until: {e}"))?;
    let style = Style {
        prefix: !args.no_log_prefix,
        color: !args.no_color
            && match global.ansi {
                Ansi::Never => false,
                Ansi::Always => true,
                Ansi::Auto => std::io::stdout().is_terminal(),
            },
        timestamps: args.timestamps,
    };
    // Without SERVICE arguments, services with `attach: false` are left out (Docker
    // Compose's rule).
    let unattached: Vec<&String> = project
        .iter()
        .flat_map(|p| &p.services)
        .filter(|(_, s)| s.attach == Some(false))
        .map(|(name, _)| name)
        .collect();
    let only = hooks.as_ref().map(|h| h.services.clone());
    let wanted = |c: &Container| {
        let service = c.service().to_string();
        let chosen = match &only {
            Some(services) => services.contains(&service),
            None if args.service.is_empty() => !unattached.contains(&&service),
            None => args.service.contains(&service),
        };
        chosen && args.index.is_none_or(|i| i == c.replica())
    };
    let all = records::containers(&runtime, Some(&project_name));
    records::check_services(&args.service, project.as_ref(), &all)?;
    let mut reported: BTreeMap<String, String> = BTreeMap::new();
    let listed: Vec<&Container> = all.iter().filter(|c| wanted(c)).collect();
    let mut prefixer = Prefixer::default();
    let mut followed: BTreeMap<String, Followed> = BTreeMap::new();
    let mut batches = Vec::new();
    let mut order = Vec::new();
    for c in listed {
        let (entries, follower) = open(&runtime, c)?;
        let f = new_followed(&mut prefixer, &project_name, c, follower);
        batches.push(select(entries, tail, since, until));
        order.push(c.id.clone());
        followed.insert(c.id.clone(), f);
    }
    let muted = |hooks: &Option<Hooks<'_>>| hooks.as_ref().is_some_and(|h| (h.muted)());
    if !muted(&hooks) {
        emit(&prefixer, &style, &followed, &order, batches)?;
    }
    if let Some(h) = hooks.as_mut() {
        report_exits(h, &project_name, &all, &wanted, &mut reported)?;
    }
    if !args.follow || until_passed(until, nanos_of(SystemTime::now())) {
        return Ok(0);
    }
    let mut appeared: Vec<String> = Vec::new();
    let mut idle_since: Option<Instant> = None;
    loop {
        std::thread::sleep(POLL);
        if hooks.as_ref().is_some_and(|h| (h.detached)()) {
            return Ok(0);
        }
        let all = records::containers(&runtime, Some(&project_name));
        let listed: Vec<&Container> = all.iter().filter(|c| wanted(c)).collect();
        let mut order = Vec::new();
        let mut batches = Vec::new();
        for (id, f) in followed.iter_mut() {
            let entries = f.follower.read_new().unwrap_or_default();
            order.push(id.clone());
            batches.push(select(entries, None, since, until));
        }
        let new: Vec<&Container> = listed
            .iter()
            .copied()
            .filter(|c| !followed.contains_key(&c.id))
            .collect();
        for c in new {
            let Ok((entries, follower)) = open(&runtime, c) else {
                continue;
            };
            let f = new_followed(&mut prefixer, &project_name, c, follower);
            batches.push(select(entries, None, since, until));
            order.push(c.id.clone());
            appeared.push(c.id.clone());
            followed.insert(c.id.clone(), f);
        }
        if !muted(&hooks) {
            emit(&prefixer, &style, &followed, &order, batches)?;
        }
        // After the lines: a container's last words come before its exit.
        if let Some(h) = hooks.as_mut() {
            report_exits(h, &project_name, &all, &wanted, &mut reported)?;
        }
        // The lines read above were written before now, so every line up to `--until`
        // has been printed.
        if until_passed(until, nanos_of(SystemTime::now())) {
            return Ok(0);
        }
        // A removed container's log was read to its end above.
        followed.retain(|id, _| listed.iter().any(|c| &c.id == id));
        // Attached `up` with no service attached still lasts while the project runs (until
        // Ctrl-C or an abort), as Docker Compose's does.
        let any_active = if only.as_ref().is_some_and(Vec::is_empty) {
            all.iter().any(|c| c.state.is_active())
        } else {
            listed.iter().any(|c| c.state.is_active())
        };
        let pending_new = listed
            .iter()
            .any(|c| c.state.status == Status::Created && appeared.contains(&c.id));
        let idle_for = match (any_active, idle_since) {
            (true, _) => {
                idle_since = None;
                Duration::ZERO
            }
            (false, Some(t)) => t.elapsed(),
            (false, None) => {
                idle_since = Some(Instant::now());
                Duration::ZERO
            }
        };
        if !keep_following(any_active, pending_new, idle_for) {
            return Ok(0);
        }
    }
}

fn open(
    runtime: &crate::runtime::Runtime,
    c: &Container,
) -> anyhow::Result<(Vec<Entry>, Follower)> {
    let path = runtime.dir(&c.id).log_path();
    Ok(Follower::open(
        &path,
        c.config.spec.logging.max_file.max(1),
    )?)
}

fn new_followed(
    prefixer: &mut Prefixer,
    project: &str,
    c: &Container,
    follower: Follower,
) -> Followed {
    let name = records::short_name(project, c.service(), c.replica(), c.name());
    prefixer.register(&name, c.service());
    Followed {
        name,
        service: c.service().to_string(),
        follower,
    }
}

/// Prints the batches (one per id of `order`) merged by time.
fn emit(
    prefixer: &Prefixer,
    style: &Style,
    followed: &BTreeMap<String, Followed>,
    order: &[String],
    batches: Vec<Vec<Entry>>,
) -> anyhow::Result<()> {
    let mut text = String::new();
    for line in merge(batches) {
        if let Some(f) = order.get(line.source).and_then(|id| followed.get(id)) {
            text.push_str(&prefixer.line(style, &f.name, &f.service, &line.entry));
        }
    }
    if !text.is_empty() {
        print(&text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::log::Stream;

    fn e(time: &str, log: &str) -> Entry {
        Entry {
            log: log.into(),
            stream: Stream::Stdout,
            time: time.into(),
        }
    }

    fn t(s: u32) -> String {
        format!("2026-11-23T17:32:{s:02}.000000000Z")
    }

    fn logs(v: &[Entry]) -> Vec<&str> {
        v.iter().map(|e| e.log.as_str()).collect()
    }

    #[test]
    fn tail_then_since_and_until() {
        let all: Vec<Entry> = (0..6).map(|s| e(&t(s), &format!("l{s}\n"))).collect();
        let at = |s: u32| parse_rfc3339(&t(s));
        assert_eq!(logs(&select(all.clone(), None, None, None)).len(), 6);
        assert_eq!(
            logs(&select(all.clone(), Some(2), None, None)),
            ["l4\n", "l5\n"]
        );
        assert_eq!(logs(&select(all.clone(), Some(0), None, None)).len(), 0);
        assert_eq!(
            logs(&select(all.clone(), None, at(2), at(3))),
            ["l2\n", "l3\n"],
            "both ends inclusive"
        );
        assert_eq!(
            logs(&select(all.clone(), Some(3), at(1), None)),
            ["l3\n", "l4\n", "l5\n"]
        );
        assert_eq!(parse_tail("all").unwrap(), None);
        assert_eq!(parse_tail("5").unwrap(), Some(5));
        assert_eq!(parse_tail("-1").unwrap(), None);
        assert!(parse_tail("many").is_err());
    }

    #[test]
    fn lines_merge_by_time_and_keep_each_containers_order() {
        let a = vec![
            e(&t(1), "a1\n"),
            e(&t(3), "a3\n"),
            e("torn", "a?\n"),
            e(&t(5), "a5\n"),
        ];
        let b = vec![e(&t(2), "b2\n"), e(&t(3), "b3\n"), e(&t(4), "b4\n")];
        let merged: Vec<(usize, String)> = merge(vec![a, b])
            .into_iter()
            .map(|l| (l.source, l.entry.log.trim().to_string()))
            .collect();
        let want = [
            (0, "a1"),
            (1, "b2"),
            (0, "a3"),
            (0, "a?"),
            (1, "b3"),
            (1, "b4"),
            (0, "a5"),
        ];
        assert_eq!(
            merged,
            want.map(|(s, l)| (s, l.to_string())),
            "a torn time goes with the line before"
        );
    }

    #[test]
    fn prefixes_are_padded_coloured_per_service_and_optional() {
        let mut p = Prefixer::default();
        p.register("web-1", "web");
        p.register("web-2", "web");
        p.register("db-1", "db");
        let entry = e(&t(1), "hello\n");
        let plain = Style {
            prefix: true,
            color: false,
            timestamps: false,
        };
        let mut text = String::new();
        for (name, service) in [("web-1", "web"), ("db-1", "db")] {
            text.push_str(&p.line(&plain, name, service, &entry));
        }
        text.push_str(&p.line(
            &Style {
                timestamps: true,
                ..plain.clone()
            },
            "db-1",
            "db",
            &e(&t(2), "no newline"),
        ));
        text.push_str(&p.line(
            &Style {
                prefix: false,
                ..plain.clone()
            },
            "db-1",
            "db",
            &entry,
        ));
        let color = Style {
            color: true,
            ..plain.clone()
        };
        text.push_str(&p.line(&color, "web-2", "web", &entry));
        text.push_str(&p.line(&color, "db-1", "db", &entry));
        insta::assert_snapshot!(text.replace('\x1b', "<ESC>"), @r"
        web-1  | hello
        db-1   | hello
        db-1   | 2026-11-23T17:32:02.000000000Z no newline
        hello
        <ESC>[36mweb-2  | <ESC>[0mhello
        <ESC>[33mdb-1   | <ESC>[0mhello
        ");
    }

    #[test]
    fn dash_f_after_logs_is_follow_and_before_it_the_file() {
        use clap::{CommandFactory, Parser};
        crate::cli::Cli::command().debug_assert();
        let cli = crate::cli::Cli::try_parse_from(["wharf", "-f", "x.yaml", "logs", "-f", "web"])
            .expect("parses");
        assert_eq!(cli.global.file, [std::path::PathBuf::from("x.yaml")]);
        match cli.command {
            crate::cli::Command::Logs(a) => {
                assert!(a.follow);
                assert_eq!(a.service, ["web"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_ended_run_is_reported_once_per_end_and_only_since_up_began() {
        use crate::runtime::container::State;
        let since = parse_rfc3339(&t(10)).unwrap();
        let at = |status, finished: Option<u32>, code| State {
            status,
            finished_at: finished.map(t),
            exit_code: code,
            ..State::created()
        };
        assert_eq!(ended(&at(Status::Running, Some(12), Some(0)), since), None);
        assert_eq!(
            ended(&at(Status::Exited, Some(9), Some(0)), since),
            None,
            "before up"
        );
        assert_eq!(
            ended(&at(Status::Exited, Some(12), Some(42)), since),
            Some((t(12), 42))
        );
        assert_eq!(
            ended(&at(Status::Restarting, Some(13), Some(1)), since),
            Some((t(13), 1)),
            "a run that ended before a restart"
        );
        assert_eq!(
            ended(&at(Status::Dead, None, None), since),
            Some((String::new(), 255))
        );
    }

    #[test]
    fn following_stops_once_until_has_passed() {
        let at = |s: u32| parse_rfc3339(&t(s)).unwrap();
        assert!(!until_passed(None, at(59)), "no --until: follow on");
        assert!(!until_passed(Some(at(10)), at(9)));
        assert!(!until_passed(Some(at(10)), at(10)), "the end is inclusive");
        assert!(until_passed(Some(at(10)), at(10) + 1));
        assert!(until_passed(Some(at(10)), at(30)));
    }

    #[test]
    fn following_stops_after_the_grace_unless_a_replacement_is_pending() {
        let ms = Duration::from_millis;
        assert!(keep_following(true, false, ms(60_000)));
        assert!(keep_following(false, false, ms(0)));
        assert!(keep_following(false, false, ms(900)));
        assert!(!keep_following(false, false, ms(1000)));
        assert!(
            keep_following(false, true, ms(5000)),
            "a new container may start"
        );
        assert!(!keep_following(false, true, ms(10_000)));
    }
}
