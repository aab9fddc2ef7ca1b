//! `wharf events [SERVICE…] [--json]`: the project's container events as they happen, as
//! `docker compose events` streams them, until interrupted (Ctrl-C ends it as it ends
//! `logs -f`). wharf has no daemon to ask, so the events are derived: every [`POLL`] the
//! runtime's records of the project's containers are read into a [`Snapshot`], and
//! [`diff`] turns two snapshots into Docker's actions — `create`, `start`, `die` (with
//! `exitCode`), `stop` (a die on request), `restart` (the restart policy's count grew),
//! `health_status: healthy|unhealthy`, `pause`, `unpause`, `rename`, `destroy`. Reading is
//! one step; diffing and rendering ([`render_text`], [`render_json`]) are pure. It only
//! reads records; it never changes the host.
//!
//! Being derived from polls, an event that is undone within one poll (a pause and its
//! unpause, a start followed by a stop and removal while the poller was starved of CPU)
//! is not seen; a running container stopped and removed within one poll (`down`) shows
//! `die` (without `exitCode`, which went with its record), `stop` and `destroy`.
//! Events carry the times the records give (a start's `started_at`, a die's
//! `finished_at`) or, for the rest, the time of the poll.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use clap::Args;
use serde_json::json;

use super::records;
use super::tz::Zone;
use super::when::{Nanos, nanos_of, parse_rfc3339};
use super::{ExitCode, GlobalArgs, print};
use crate::runtime::Runtime;
use crate::runtime::container::{LaunchConfig, State};

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Output events as a stream of json objects
    #[arg(long)]
    pub json: bool,
    /// Only these services
    pub service: Vec<String>,
}

/// How often the records are read.
pub const POLL: Duration = Duration::from_millis(100);

/// What a poll sees of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub name: String,
    pub service: String,
    pub image: String,
    /// The service's `labels:` (Docker shows a container's labels as attributes).
    pub labels: BTreeMap<String, String>,
    pub created: Option<Nanos>,
    pub started_at: Option<String>,
    /// The end of its last run: (when, exit code), as attached `up` tells runs apart.
    pub ended: Option<(String, i32)>,
    pub stopped_by_user: bool,
    pub restart_count: u64,
    /// Its process may be alive (running, restarting, stopping).
    pub active: bool,
    /// `starting`, `healthy`, `unhealthy`; `None` without a health check.
    pub health: Option<&'static str>,
    pub paused: bool,
}

impl Seen {
    /// What a container looks like from its records (`paused` from its cgroup).
    pub fn of(config: &LaunchConfig, state: &State, paused: bool) -> Seen {
        let origin = config.origin.as_ref().map(|o| &o.service);
        let labels = origin
            .and_then(|s| s.get("labels"))
            .and_then(|l| l.as_object())
            .map(|l| {
                l.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Seen {
            name: config.spec.name.clone(),
            service: config.spec.service.clone(),
            image: origin
                .and_then(|s| s.get("image"))
                .and_then(|i| i.as_str())
                .unwrap_or_default()
                .to_string(),
            labels,
            created: config.created.as_deref().and_then(parse_rfc3339),
            started_at: state.started_at.clone(),
            ended: super::logs::ended(state, Nanos::MIN),
            stopped_by_user: state.stopped_by_user,
            active: state.is_active(),
            restart_count: state.restart_count,
            health: state.health.as_ref().map(|h| {
                use crate::runtime::health::Status as H;
                match h.status {
                    H::Starting => "starting",
                    H::Healthy => "healthy",
                    H::Unhealthy => "unhealthy",
                }
            }),
            paused,
        }
    }

    /// The same container before anything happened to it (how a new one is diffed).
    fn fresh(&self) -> Seen {
        Seen {
            started_at: None,
            ended: None,
            stopped_by_user: false,
            active: false,
            restart_count: 0,
            health: None,
            paused: false,
            ..self.clone()
        }
    }
}

/// The project's containers at one poll, by id.
pub type Snapshot = BTreeMap<String, Seen>;

/// One container event, as Docker Compose reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub time: Nanos,
    pub action: String,
    pub id: String,
    pub service: String,
    pub attributes: BTreeMap<String, String>,
}

/// The events that lead from `before` to `after`, oldest first (`now`: the time of the
/// poll, for the events whose records carry no time).
pub fn diff(before: &Snapshot, after: &Snapshot, now: Nanos) -> Vec<Event> {
    let mut out = Vec::new();
    for (id, new) in after {
        let event = |time: Nanos, action: &str, extra: &[(&str, String)]| {
            let mut attributes = new.labels.clone();
            attributes.insert("image".into(), new.image.clone());
            attributes.insert("name".into(), new.name.clone());
            for (k, v) in extra {
                attributes.insert(k.to_string(), v.clone());
            }
            Event {
                time,
                action: action.to_string(),
                id: id.clone(),
                service: new.service.clone(),
                attributes,
            }
        };
        let fresh;
        let old = match before.get(id) {
            Some(old) => old,
            None => {
                out.push(event(new.created.unwrap_or(now), "create", &[]));
                fresh = new.fresh();
                &fresh
            }
        };
        if old.name != new.name {
            out.push(event(now, "rename", &[("oldName", old.name.clone())]));
        }
        let at = |t: &str| parse_rfc3339(t).unwrap_or(now);
        let started = new
            .started_at
            .as_deref()
            .filter(|s| old.started_at.as_deref() != Some(*s))
            .map(at);
        let died = new
            .ended
            .as_ref()
            .filter(|e| old.ended.as_ref() != Some(*e));
        let mut starting = Vec::new();
        if let Some(t) = started {
            starting.push(event(t, "start", &[]));
        }
        if new.restart_count > old.restart_count {
            starting.push(event(started.unwrap_or(now), "restart", &[]));
        }
        let mut dying = Vec::new();
        if let Some((finished, code)) = died {
            let t = if finished.is_empty() {
                now
            } else {
                at(finished)
            };
            dying.push(event(t, "die", &[("exitCode", code.to_string())]));
            if new.stopped_by_user {
                dying.push(event(t, "stop", &[]));
            }
        }
        // One poll may see a run end and the next begin (a restart), or a run begin and
        // end (a quick job): whichever happened first comes first.
        let die_first = match (started, dying.first()) {
            (Some(s), Some(d)) => d.time <= s,
            _ => true,
        };
        if die_first {
            out.extend(dying);
            out.extend(starting);
        } else {
            out.extend(starting);
            out.extend(dying);
        }
        if new.health != old.health {
            if let Some(h @ ("healthy" | "unhealthy")) = new.health {
                out.push(event(now, &format!("health_status: {h}"), &[]));
            }
        }
        if new.paused != old.paused {
            out.push(event(
                now,
                if new.paused { "pause" } else { "unpause" },
                &[],
            ));
        }
    }
    for (id, old) in before.iter().filter(|(id, _)| !after.contains_key(*id)) {
        let mut attributes = old.labels.clone();
        attributes.insert("image".into(), old.image.clone());
        attributes.insert("name".into(), old.name.clone());
        let mut event = |action: &str| {
            out.push(Event {
                time: now,
                action: action.into(),
                id: id.clone(),
                service: old.service.clone(),
                attributes: attributes.clone(),
            })
        };
        // Stopped and removed within one poll (`down` of a running container): it was
        // stopped on request (only `down` removes a running container), with an exit code
        // no record keeps any more.
        if old.active {
            event("die");
            event("stop");
        }
        event("destroy");
    }
    // Stable: one container's events keep their order when their times tie.
    out.sort_by_key(|e| e.time);
    out
}

/// Docker Compose's line: `2026-11-24 03:20:00.123456 container start <id> (image=…, name=…)`,
/// in local time.
pub fn render_text(event: &Event, zone: &Zone) -> String {
    let civil = zone.civil(event.time);
    let attributes: Vec<String> = event
        .attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "{} {} container {} {} ({})\n",
        &civil[..10],
        &civil[11..26],
        event.action,
        event.id,
        attributes.join(", ")
    )
}

/// One JSON object on a line, with Docker Compose's keys.
pub fn render_json(event: &Event, zone: &Zone) -> String {
    let value = json!({
        "time": zone.rfc3339(event.time),
        "type": "container",
        "action": event.action,
        "id": event.id,
        "service": event.service,
        "attributes": event.attributes,
    });
    format!("{value}\n")
}

/// The project's containers of `services` (all when empty) as they are now. A container
/// whose records cannot be read at this moment keeps what `previous` saw of it, so a
/// record being rewritten is not taken for a removal.
fn snapshot(
    runtime: &Runtime,
    project: &str,
    services: &[String],
    previous: &Snapshot,
) -> Snapshot {
    let mut out = Snapshot::new();
    for id in runtime.list() {
        let dir = runtime.dir(&id);
        let read = dir.read_config().ok().and_then(|config| {
            let state = dir.read_state().ok()?.checked();
            Some((config, state))
        });
        let Some((config, state)) = read else {
            if let Some(seen) = previous.get(&id) {
                out.insert(id, seen.clone());
            }
            continue;
        };
        if config.spec.project != project
            || !(services.is_empty() || services.contains(&config.spec.service))
        {
            continue;
        }
        let paused = state.is_active() && runtime.is_paused(&id);
        out.insert(id, Seen::of(&config, &state, paused));
    }
    out
}

pub fn run(global: &GlobalArgs, args: EventsArgs) -> anyhow::Result<ExitCode> {
    let (project_name, project) = records::project(global)?;
    let runtime = records::runtime()?;
    let found = records::containers(&runtime, Some(&project_name));
    records::check_services(&args.service, project.as_ref(), &found)?;
    let zone = super::tz::local();
    let mut before = snapshot(&runtime, &project_name, &args.service, &Snapshot::new());
    loop {
        std::thread::sleep(POLL);
        let after = snapshot(&runtime, &project_name, &args.service, &before);
        let text: String = diff(&before, &after, nanos_of(SystemTime::now()))
            .iter()
            .map(|e| {
                if args.json {
                    render_json(e, &zone)
                } else {
                    render_text(e, &zone)
                }
            })
            .collect();
        if !text.is_empty() {
            print(&text)?;
        }
        before = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::when::SECOND;

    fn t(s: u32) -> String {
        format!("2026-11-24T03:20:{s:02}.123456789Z")
    }

    fn at(s: u32) -> Nanos {
        parse_rfc3339(&t(s)).unwrap()
    }

    fn web() -> Seen {
        Seen {
            name: "shop-web-1".into(),
            service: "web".into(),
            image: "busybox".into(),
            labels: BTreeMap::from([("tier".into(), "front".into())]),
            created: Some(at(1)),
            started_at: None,
            ended: None,
            stopped_by_user: false,
            active: false,
            restart_count: 0,
            health: None,
            paused: false,
        }
    }

    fn snap(seen: &[(&str, Seen)]) -> Snapshot {
        seen.iter()
            .map(|(id, s)| (id.to_string(), s.clone()))
            .collect()
    }

    fn actions(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| format!("{} {}", e.id, e.action))
            .collect()
    }

    #[test]
    fn a_containers_life_as_docker_reports_it() {
        let now = at(50);
        let none = Snapshot::new();
        let created = web();
        let running = Seen {
            started_at: Some(t(2)),
            active: true,
            ..created.clone()
        };
        let healthy = Seen {
            health: Some("healthy"),
            ..running.clone()
        };
        let paused = Seen {
            paused: true,
            ..healthy.clone()
        };
        let stopped = Seen {
            ended: Some((t(9), 143)),
            stopped_by_user: true,
            active: false,
            paused: false,
            ..healthy.clone()
        };
        let steps = [
            (none.clone(), snap(&[("a", created.clone())]), "a create"),
            (
                snap(&[("a", created.clone())]),
                snap(&[("a", running.clone())]),
                "a start",
            ),
            (
                snap(&[("a", running.clone())]),
                snap(&[("a", healthy.clone())]),
                "a health_status: healthy",
            ),
            (
                snap(&[("a", healthy.clone())]),
                snap(&[("a", paused.clone())]),
                "a pause",
            ),
            (
                snap(&[("a", paused.clone())]),
                snap(&[("a", healthy.clone())]),
                "a unpause",
            ),
            (
                snap(&[("a", healthy.clone())]),
                snap(&[("a", stopped.clone())]),
                "a die, a stop",
            ),
            (snap(&[("a", stopped.clone())]), none.clone(), "a destroy"),
            (
                snap(&[("a", healthy.clone())]),
                none.clone(),
                "a die, a stop, a destroy",
            ),
        ];
        for (before, after, want) in steps {
            assert_eq!(actions(&diff(&before, &after, now)).join(", "), want);
        }
        let gone = diff(&snap(&[("a", healthy.clone())]), &none, now);
        assert!(
            !gone[0].attributes.contains_key("exitCode"),
            "no record keeps it"
        );
        assert!(
            diff(
                &snap(&[("a", stopped.clone())]),
                &snap(&[("a", stopped)]),
                now
            )
            .is_empty(),
            "nothing changed, nothing reported"
        );
        let starting = Seen {
            health: Some("starting"),
            ..running.clone()
        };
        assert!(
            diff(&snap(&[("a", running)]), &snap(&[("a", starting)]), now).is_empty(),
            "starting is not an event"
        );
    }

    #[test]
    fn events_within_one_poll_come_in_the_order_they_happened() {
        let now = at(50);
        // A one-shot job created, started and exited between two polls.
        let job = Seen {
            started_at: Some(t(2)),
            ended: Some((t(3), 0)),
            ..web()
        };
        let events = diff(&Snapshot::new(), &snap(&[("j", job)]), now);
        assert_eq!(actions(&events), ["j create", "j start", "j die"]);
        assert_eq!(events[2].attributes["exitCode"], "0");
        assert_eq!(events[1].time, at(2), "the record's own times");

        // The restart policy: a run ended with 1, the next began.
        let first = Seen {
            started_at: Some(t(2)),
            ..web()
        };
        let second = Seen {
            started_at: Some(t(6)),
            ended: Some((t(5), 1)),
            restart_count: 1,
            ..web()
        };
        let events = diff(&snap(&[("a", first)]), &snap(&[("a", second)]), now);
        assert_eq!(actions(&events), ["a die", "a start", "a restart"]);

        // A rename (the reconciler's replacement taking the old name) and a removal, in
        // one poll: ordered by time, the removal's being the poll's.
        let old = Seen {
            ended: Some((t(4), 0)),
            ..web()
        };
        let replacement = Seen {
            name: "shop-web-1_tmp".into(),
            created: Some(at(3)),
            ..web()
        };
        let renamed = Seen {
            name: "shop-web-1".into(),
            ..replacement.clone()
        };
        let events = diff(
            &snap(&[("a", old), ("b", replacement)]),
            &snap(&[("b", renamed)]),
            now,
        );
        assert_eq!(actions(&events), ["b rename", "a destroy"]);
        assert_eq!(events[0].attributes["oldName"], "shop-web-1_tmp");
    }

    #[test]
    fn text_and_json_like_docker_compose() {
        let event = Event {
            time: at(0) + 7 * SECOND,
            action: "die".into(),
            id: "3f2a9c".into(),
            service: "web".into(),
            attributes: BTreeMap::from([
                ("exitCode".into(), "143".into()),
                ("image".into(), "busybox".into()),
                ("name".into(), "shop-web-1".into()),
            ]),
        };
        let utc = Zone::utc();
        let paris = Zone::parse_rule("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        let text = [
            render_text(&event, &utc),
            render_text(&event, &paris),
            render_json(&event, &utc),
            render_json(&event, &paris),
        ]
        .concat();
        insta::assert_snapshot!(text, @r#"
        2026-11-24 03:20:07.123456 container die 3f2a9c (exitCode=143, image=busybox, name=shop-web-1)
        2026-11-24 04:20:07.123456 container die 3f2a9c (exitCode=143, image=busybox, name=shop-web-1)
        {"time":"2026-11-24T03:20:07.123456789Z","type":"container","action":"die","id":"3f2a9c","service":"web","attributes":{"exitCode":"143","image":"busybox","name":"shop-web-1"}}
        {"time":"2026-11-24T04:20:07.123456789+01:00","type":"container","action":"die","id":"3f2a9c","service":"web","attributes":{"exitCode":"143","image":"busybox","name":"shop-web-1"}}
        "#);
    }
}
