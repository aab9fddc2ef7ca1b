//! `wharf ps [SERVICE…]`: the project's containers as Docker Compose lists them — a table
//! (NAME IMAGE COMMAND SERVICE CREATED STATUS PORTS), JSON Lines with Docker Compose's
//! field names, a JSON array, ids (`-q`) or service names (`--services`). Running ones only
//! unless `-a` or a status filter is given.
//!
//! [`rows`] reads each container's records once (launch config, checked state, published
//! ports); everything after it — status texts, filters, rendering — is pure, given the
//! rows and "now", and snapshot-tested. Nothing here changes the host.

use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use super::records::{self, Container};
use super::when::{Nanos, SECOND, format_rfc3339, human_duration, nanos_of, parse_rfc3339};
use super::{ExitCode, GlobalArgs, print, table};
use crate::network::linux::Networks;
use crate::network::rules::PublishedPort;
use crate::runtime::container::Status;
use crate::runtime::health;

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Display services
    #[arg(long)]
    pub services: bool,
    /// Filter services by status (repeatable)
    #[arg(long, value_enum)]
    pub status: Vec<StatusFilter>,
    /// Filter services by a property (supported filters: status), e.g. `status=running`
    #[arg(long)]
    pub filter: Vec<String>,
    /// Format the output
    #[arg(long, value_enum, default_value_t = PsFormat::Table)]
    pub format: PsFormat,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only these services
    pub service: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PsFormat {
    Table,
    /// One JSON object per line
    Json,
    /// One JSON array
    JsonArray,
}

/// Docker's container states, as `--status` takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFilter {
    Created,
    Restarting,
    Running,
    Removing,
    Paused,
    Exited,
    Dead,
}

impl StatusFilter {
    fn name(self) -> &'static str {
        match self {
            StatusFilter::Created => "created",
            StatusFilter::Restarting => "restarting",
            StatusFilter::Running => "running",
            StatusFilter::Removing => "removing",
            StatusFilter::Paused => "paused",
            StatusFilter::Exited => "exited",
            StatusFilter::Dead => "dead",
        }
    }
}

/// One line of `ps`: what the records say of a container.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: String,
    pub name: String,
    pub image: String,
    /// The command line, arguments joined by spaces (as Docker shows it).
    pub command: String,
    pub project: String,
    pub service: String,
    pub replica: u64,
    pub created: Option<Nanos>,
    pub status: Status,
    pub started_at: Option<Nanos>,
    pub finished_at: Option<Nanos>,
    pub exit_code: Option<i32>,
    pub health: Option<health::Status>,
    pub ports: Vec<PublishedPort>,
    /// A one-off container (`wharf run`).
    pub one_off: bool,
}

impl Row {
    /// Docker's state word: `created`, `running`, `restarting`, `exited`, `dead`.
    pub fn state(&self) -> &'static str {
        state_word(self.status)
    }

    /// `starting`, `healthy`, `unhealthy`, or empty without a health check.
    pub fn health_name(&self) -> &'static str {
        match self.health {
            _ if !matches!(self.status, Status::Running | Status::Stopping) => "",
            Some(health::Status::Starting) => "starting",
            Some(health::Status::Healthy) => "healthy",
            Some(health::Status::Unhealthy) => "unhealthy",
            None => "",
        }
    }

    /// Docker's status text: `Up 5 seconds`, `Up 2 minutes (healthy)`,
    /// `Up 3 seconds (health: starting)`, `Exited (0) 3 seconds ago`, `Created`,
    /// `Restarting (1) 2 seconds ago`, `Dead`.
    pub fn status_text(&self, now: Nanos) -> String {
        let since = |t: Option<Nanos>| t.map(|t| human_duration(now - t));
        let code = self.exit_code.unwrap_or(0);
        match self.status {
            Status::Created => "Created".into(),
            Status::Running | Status::Stopping => {
                let mut s = match since(self.started_at) {
                    Some(d) => format!("Up {d}"),
                    None => "Up".into(),
                };
                match self.health_name() {
                    "" => {}
                    "starting" => s.push_str(" (health: starting)"),
                    h => s.push_str(&format!(" ({h})")),
                }
                s
            }
            Status::Restarting => match since(self.finished_at) {
                Some(d) => format!("Restarting ({code}) {d} ago"),
                None => format!("Restarting ({code})"),
            },
            Status::Exited => match since(self.finished_at) {
                Some(d) => format!("Exited ({code}) {d} ago"),
                None => format!("Exited ({code})"),
            },
            Status::Dead => "Dead".into(),
        }
    }

    /// `0.0.0.0:8080->80/tcp, [::]:8080->80/tcp`.
    pub fn ports_text(&self) -> String {
        self.ports
            .iter()
            .map(|p| {
                format!(
                    "{}->{}/{}",
                    super::port::host_side(p),
                    p.container_port,
                    p.protocol
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The object `docker compose ps --format json` prints for the container.
    pub fn json(&self, now: Nanos) -> Value {
        let publishers: Vec<Value> = self
            .ports
            .iter()
            .map(|p| {
                let url = match p.host_ip {
                    Some(ip) => ip.to_string(),
                    None if p.container_ip.is_ipv6() => "::".into(),
                    None => "0.0.0.0".into(),
                };
                json!({
                    "URL": url,
                    "TargetPort": p.container_port,
                    "PublishedPort": p.host_port,
                    "Protocol": p.protocol.to_string(),
                })
            })
            .collect();
        json!({
            "ID": self.id,
            "Name": self.name,
            "Names": self.name,
            "Image": self.image,
            "Command": self.command,
            "Project": self.project,
            "Service": self.service,
            "Created": self.created.map(|c| c.div_euclid(SECOND)).unwrap_or(0),
            "CreatedAt": self.created.map(format_rfc3339).unwrap_or_default(),
            "RunningFor": self.running_for(now),
            "State": self.state(),
            "Status": self.status_text(now),
            "Health": self.health_name(),
            "ExitCode": self.exit_code.unwrap_or(0),
            "Publishers": publishers,
            "Ports": self.ports_text(),
        })
    }

    /// `5 seconds ago`: since creation (the CREATED column).
    fn running_for(&self, now: Nanos) -> String {
        self.created
            .map(|c| format!("{} ago", human_duration(now - c)))
            .unwrap_or_default()
    }
}

/// Docker's state word for a runtime status.
pub fn state_word(status: Status) -> &'static str {
    match status {
        Status::Created => "created",
        // Still up while its stop signal works.
        Status::Running | Status::Stopping => "running",
        Status::Restarting => "restarting",
        Status::Exited => "exited",
        Status::Dead => "dead",
    }
}

/// Which rows `ps` shows: running ones unless `all`; with statuses, those in them (which
/// implies `all`); with services, those services'. One-off containers (`wharf run`) only
/// with `all`, as in Docker Compose.
pub fn select(rows: Vec<Row>, all: bool, statuses: &[&str], services: &[String]) -> Vec<Row> {
    let all = all || !statuses.is_empty();
    rows.into_iter()
        .filter(|r| services.is_empty() || services.contains(&r.service))
        .filter(|r| all || !r.one_off)
        .filter(|r| {
            if !statuses.is_empty() {
                statuses.contains(&r.state())
            } else {
                all || r.state() == "running" || r.state() == "restarting"
            }
        })
        .collect()
}

/// The table, as `docker compose ps` prints it (`trunc`: commands cut at 20 characters).
pub fn render_table(rows: &[Row], now: Nanos, trunc: bool) -> String {
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let command = if trunc {
                ellipsis(&r.command, 20)
            } else {
                r.command.clone()
            };
            vec![
                r.name.clone(),
                r.image.clone(),
                go_quote(&command),
                r.service.clone(),
                r.running_for(now),
                r.status_text(now),
                r.ports_text(),
            ]
        })
        .collect();
    table::render(
        &[
            "NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS",
        ],
        &body,
    )
}

/// JSON Lines: one object per container.
pub fn render_json_lines(rows: &[Row], now: Nanos) -> String {
    rows.iter().map(|r| format!("{}\n", r.json(now))).collect()
}

/// One JSON array of the objects.
pub fn render_json_array(rows: &[Row], now: Nanos) -> String {
    let all: Vec<Value> = rows.iter().map(|r| r.json(now)).collect();
    format!("{}\n", Value::Array(all))
}

/// Docker's `Ellipsis`: at most `max` characters, the last one `…` when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Go's `strconv.Quote`, which Docker applies to the COMMAND column.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `--filter` values as statuses (only `status=` is supported, as in Docker Compose).
pub fn filter_statuses(filters: &[String]) -> anyhow::Result<Vec<&'static str>> {
    let mut out = Vec::new();
    for f in filters {
        let Some((key, value)) = f.split_once('=') else {
            anyhow::bail!("bad filter {f:?}: KEY=VALUE");
        };
        if key != "status" {
            anyhow::bail!("unsupported filter {key:?} (supported: status)");
        }
        let status = <StatusFilter as ValueEnum>::from_str(value, false)
            .map_err(|_| anyhow::anyhow!("invalid filter 'status={value}'"))?;
        out.push(status.name());
    }
    Ok(out)
}

/// The row of a recorded container.
pub fn row(c: &Container, image: String, ports: Vec<PublishedPort>, created: Option<Nanos>) -> Row {
    let parse = |t: &Option<String>| t.as_deref().and_then(parse_rfc3339);
    Row {
        id: c.id.clone(),
        name: c.name().to_string(),
        image,
        command: c.config.spec.process.args.join(" "),
        project: c.project().to_string(),
        service: c.service().to_string(),
        replica: c.replica(),
        created: parse(&c.config.created).or(created),
        status: c.state.status,
        started_at: parse(&c.state.started_at),
        finished_at: parse(&c.state.finished_at),
        exit_code: c.state.exit_code,
        health: c.state.health.as_ref().map(|h| h.status),
        ports,
        one_off: c.config.one_off().is_some(),
    }
}

pub fn run(global: &GlobalArgs, args: PsArgs) -> anyhow::Result<ExitCode> {
    let (name, project) = records::project(global)?;
    let runtime = records::runtime()?;
    let networks = Networks::new(&super::image::state_root(), &std::env::current_exe()?);
    let found = records::containers(&runtime, Some(&name));
    records::check_services(&args.service, project.as_ref(), &found)?;
    let mut statuses: Vec<&str> = args.status.iter().map(|s| s.name()).collect();
    statuses.extend(filter_statuses(&args.filter)?);
    let rows = found
        .iter()
        .map(|c| {
            let created = c
                .config
                .created
                .is_none()
                .then(|| records::created_fallback(&runtime, &c.id).map(nanos_of))
                .flatten();
            // Without the network layer's record (network_mode: none), nothing is published.
            let ports = networks.ports(&c.id).unwrap_or_default();
            row(c, c.image(project.as_ref()), ports, created)
        })
        .collect();
    let rows = select(rows, args.all, &statuses, &args.service);
    let now = nanos_of(std::time::SystemTime::now());
    let text = if args.quiet {
        rows.iter().map(|r| format!("{}\n", r.id)).collect()
    } else if args.services {
        let mut seen: Vec<&str> = Vec::new();
        for r in &rows {
            if !seen.contains(&r.service.as_str()) {
                seen.push(&r.service);
            }
        }
        seen.iter().map(|s| format!("{s}\n")).collect()
    } else {
        match args.format {
            PsFormat::Table => render_table(&rows, now, !args.no_trunc),
            PsFormat::Json => render_json_lines(&rows, now),
            PsFormat::JsonArray => render_json_array(&rows, now),
        }
    };
    print(&text)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::network::rules::Protocol;

    const NOW: Nanos = 1_795_455_125 * SECOND;

    fn base(service: &str, replica: u64, status: Status) -> Row {
        Row {
            id: format!("{service}{replica:0>62}"),
            name: format!("shop-{service}-{replica}"),
            image: "wharf.test/busybox:1".into(),
            command: "/bin/sh -c sleep 3600".into(),
            project: "shop".into(),
            service: service.into(),
            replica,
            created: Some(NOW - 125 * SECOND),
            status,
            started_at: Some(NOW - 5 * SECOND),
            finished_at: None,
            exit_code: None,
            health: None,
            ports: Vec::new(),
            one_off: false,
        }
    }

    fn rows() -> Vec<Row> {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let mut web = base("web", 1, Status::Running);
        web.started_at = Some(NOW - 150 * SECOND);
        web.health = Some(health::Status::Healthy);
        web.command = "nginx -g daemon off;".into();
        web.ports = vec![
            PublishedPort {
                host_ip: None,
                host_port: 8080,
                container_ip: ip("10.0.0.2"),
                container_port: 80,
                protocol: Protocol::Tcp,
            },
            PublishedPort {
                host_ip: Some(ip("127.0.0.1")),
                host_port: 5353,
                container_ip: ip("10.0.0.2"),
                container_port: 53,
                protocol: Protocol::Udp,
            },
        ];
        let mut web2 = base("web", 2, Status::Running);
        web2.health = Some(health::Status::Starting);
        let mut job = base("job", 1, Status::Exited);
        job.exit_code = Some(0);
        job.finished_at = Some(NOW - 3 * SECOND);
        let mut flaky = base("flaky", 1, Status::Restarting);
        flaky.exit_code = Some(1);
        flaky.finished_at = Some(NOW - SECOND);
        let mut new = base("new", 1, Status::Created);
        new.started_at = None;
        new.created = None;
        let mut gone = base("gone", 1, Status::Dead);
        gone.command = "a-very-long-command --with \"quotes\" and more".into();
        vec![flaky, gone, job, new, web, web2]
    }

    #[test]
    fn status_texts_are_dockers() {
        let texts: Vec<String> = rows().iter().map(|r| r.status_text(NOW)).collect();
        assert_eq!(
            texts,
            [
                "Restarting (1) 1 second ago",
                "Dead",
                "Exited (0) 3 seconds ago",
                "Created",
                "Up 2 minutes (healthy)",
                "Up 5 seconds (health: starting)",
            ]
        );
    }

    #[test]
    fn running_only_by_default_and_statuses_imply_all() {
        let names = |rows: Vec<Row>| -> Vec<String> { rows.into_iter().map(|r| r.name).collect() };
        assert_eq!(
            names(select(rows(), false, &[], &[])),
            ["shop-flaky-1", "shop-web-1", "shop-web-2"]
        );
        assert_eq!(select(rows(), true, &[], &[]).len(), 6);
        assert_eq!(
            names(select(rows(), false, &["exited", "dead"], &[])),
            ["shop-gone-1", "shop-job-1"]
        );
        assert_eq!(
            names(select(rows(), true, &[], &["job".into()])),
            ["shop-job-1"]
        );
        assert_eq!(
            filter_statuses(&["status=exited".into()]).unwrap(),
            ["exited"]
        );
        assert!(filter_statuses(&["name=x".into()]).is_err());
        assert!(filter_statuses(&["status=sleeping".into()]).is_err());
    }

    #[test]
    fn one_off_containers_only_with_all() {
        let mut run = base("web", 1, Status::Running);
        run.name = "shop-web-run-0123456789ab".into();
        run.one_off = true;
        let rows = vec![base("web", 1, Status::Running), run];
        let names = |rows: Vec<Row>| -> Vec<String> { rows.into_iter().map(|r| r.name).collect() };
        assert_eq!(names(select(rows.clone(), false, &[], &[])), ["shop-web-1"]);
        assert_eq!(
            names(select(rows, true, &[], &[])),
            ["shop-web-1", "shop-web-run-0123456789ab"]
        );
    }

    #[test]
    fn table() {
        insta::assert_snapshot!(render_table(&rows(), NOW, true));
    }

    #[test]
    fn table_without_truncation() {
        insta::assert_snapshot!(render_table(&rows()[1..2], NOW, false));
    }

    #[test]
    fn json_lines() {
        insta::assert_snapshot!(render_json_lines(&rows(), NOW));
    }

    #[test]
    fn json_array_is_one_array_of_the_same_objects() {
        let array: Vec<Value> = serde_json::from_str(&render_json_array(&rows(), NOW)).unwrap();
        let lines: Vec<Value> = render_json_lines(&rows(), NOW)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(array, lines);
        assert_eq!(render_json_array(&[], NOW), "[]\n");
    }

    #[test]
    fn an_empty_listing_is_the_header_alone() {
        assert_eq!(
            render_table(&[], NOW, true),
            "NAME      IMAGE     COMMAND   SERVICE   CREATED   STATUS    PORTS\n"
        );
    }
}
