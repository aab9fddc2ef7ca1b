//! `wharf stop`, `kill`, `rm`, `pause`, `unpause` and `wait` against real containers (root
//! only): the runtime harness creates and starts `network_mode: none` containers (no
//! network layer needed), the `wharf` binary acts on them through the state root, and the
//! harness's `finish` checks that no process, cgroup, mount or namespace is left.

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use wharf::runtime::container::Status;

use crate::runtime::{Host, IMAGE, is_root};

/// A project of `sh -c` services: `(name, script, extra YAML lines under the service)`.
fn project(host: &Host, services: &[(&str, &str, &str)]) -> wharf::compose::Project {
    let mut yaml = String::from("services:\n");
    for (name, script, extra) in services {
        let script = serde_json::to_string(&[script.replace('$', "$$")]).unwrap();
        yaml.push_str(&format!(
            "  {name}:\n    image: {IMAGE}\n    network_mode: none\n    entrypoint: [\"/bin/sh\", \"-c\"]\n    command: {script}\n"
        ));
        for line in extra.lines().filter(|l| !l.trim().is_empty()) {
            yaml.push_str(&format!("    {line}\n"));
        }
    }
    host.project(&yaml)
}

/// A container that ends on SIGTERM with exit code 3 (a shell as PID 1 ignores signals it
/// has no trap for).
const STOPPABLE: &str = "trap 'exit 3' TERM; while true; do sleep 0.05; done";

/// Runs `wharf -f <compose> -p <project> ARGS…` with empty standard input.
fn wharf(host: &Host, args: &[&str]) -> Output {
    let compose = host.root().join("project/compose.yaml");
    crate::util::wharf()
        .env("WHARF_ROOT", host.root())
        .current_dir(host.root())
        .arg("-f")
        .arg(&compose)
        .args(["-p", host.project_name()])
        .args(args)
        .write_stdin("")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn name(host: &Host, service: &str) -> String {
    format!("{}-{service}-1", host.project_name())
}

/// The container's cgroup directory in the unified hierarchy, when there is one.
fn unified_dir(host: &Host, id: &str) -> Option<std::path::PathBuf> {
    let rel = host.rt.config(id).unwrap().spec.cgroup_path;
    host.cgroups.v2.as_ref().map(|m| m.join(rel))
}

fn log_len(host: &Host, id: &str) -> usize {
    host.rt.logs(id).map(|l| l.len()).unwrap_or(0)
}

#[test]
fn stop_goes_dependents_first_and_rm_asks_then_removes() {
    if !is_root("stop_goes_dependents_first_and_rm_asks_then_removes") {
        return;
    }
    let mut host = Host::new("lcstop");
    let p = project(
        &host,
        &[
            ("db", STOPPABLE, ""),
            ("web", STOPPABLE, "depends_on: [db]"),
        ],
    );
    let db = host.create(&p, "db");
    host.start(&db);
    let web = host.create(&p, "web");
    host.start(&web);

    // rm leaves running containers alone.
    let out = wharf(&host, &["rm", "-f"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("No stopped containers"),
        "{out:?}"
    );

    let out = wharf(&host, &["stop"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let web_stopped = err
        .find(&format!(" Container {}  Stopped", name(&host, "web")))
        .expect(&err);
    let db_stopping = err
        .find(&format!(" Container {}  Stopping", name(&host, "db")))
        .expect(&err);
    assert!(web_stopped < db_stopping, "web must stop before db:\n{err}");
    for id in [&db, &web] {
        let s = host.state(id);
        assert_eq!(s.status, Status::Exited);
        assert_eq!(s.exit_code, Some(3), "stopped by its stop signal");
    }
    // Nothing left to stop: still success.
    assert_eq!(wharf(&host, &["stop", "db"]).status.code(), Some(0));
    assert_eq!(wharf(&host, &["stop", "nosuch"]).status.code(), Some(1));

    // Without -f and without a terminal: the question, one line of input (none), no.
    let out = wharf(&host, &["rm"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        format!(
            "Going to remove {}, {}. Are you sure? [y/N] ",
            name(&host, "db"),
            name(&host, "web")
        )
    );
    assert!(host.rt.config(&db).is_ok(), "declined: nothing removed");

    // `y` on standard input confirms; only the service named goes.
    let compose = host.root().join("project/compose.yaml");
    let out = crate::util::wharf()
        .env("WHARF_ROOT", host.root())
        .arg("-f")
        .arg(&compose)
        .args(["-p", host.project_name(), "rm", "web"])
        .write_stdin("y\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        text(&out.stderr).contains(&format!(" Container {}  Removed", name(&host, "web"))),
        "{out:?}"
    );
    assert!(host.rt.config(&web).is_err());
    assert!(host.rt.config(&db).is_ok());

    let out = wharf(&host, &["rm", "-f", "-v"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        text(&out.stdout),
        format!("Going to remove {}\n", name(&host, "db"))
    );
    assert!(host.rt.list().is_empty());
    host.forget_containers();
    host.finish();
}

#[test]
fn kill_sends_the_signal_and_rm_s_stops_first() {
    if !is_root("kill_sends_the_signal_and_rm_s_stops_first") {
        return;
    }
    let mut host = Host::new("lckill");
    let p = project(
        &host,
        &[
            (
                "a",
                "trap 'exit 7' USR1; while true; do sleep 0.05; done",
                "",
            ),
            ("b", STOPPABLE, ""),
        ],
    );
    let a = host.create(&p, "a");
    host.start(&a);
    let b = host.create(&p, "b");
    host.start(&b);

    let out = wharf(&host, &["kill", "-s", "NOPE", "a"]);
    assert_eq!(out.status.code(), Some(2), "a usage error: {out:?}");
    assert!(text(&out.stderr).contains("invalid signal"), "{out:?}");

    let out = wharf(&host, &["kill", "-s", "usr1", "a", "--remove-orphans"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        text(&out.stderr).contains(&format!(" Container {}  Killed", name(&host, "a"))),
        "{out:?}"
    );
    let s = host.wait_exited(&a, Duration::from_secs(5));
    assert_eq!(s.exit_code, Some(7));
    assert_eq!(host.state(&b).status, Status::Running, "b was not named");

    // -s: b is stopped, then both go.
    let out = wharf(&host, &["rm", "-s", "-f"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(" Container {}  Stopped", name(&host, "b"))),
        "{err}"
    );
    assert!(host.rt.list().is_empty(), "{err}");

    // Nothing left to kill.
    let out = wharf(&host, &["kill"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("no container to kill"));
    host.forget_containers();
    host.finish();
}

#[test]
fn pause_freezes_unpause_thaws_and_a_paused_container_still_stops() {
    if !is_root("pause_freezes_unpause_thaws_and_a_paused_container_still_stops") {
        return;
    }
    let mut host = Host::new("lcpause");
    let p = project(
        &host,
        &[(
            "app",
            "trap 'exit 3' TERM; while true; do echo tick; sleep 0.05; done",
            "",
        )],
    );
    let id = host.create(&p, "app");
    host.start(&id);
    let init = host.state(&id).init.unwrap().pid;
    std::thread::sleep(Duration::from_millis(200));
    assert!(log_len(&host, &id) > 0);

    let out = wharf(&host, &["pause"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        text(&out.stderr).contains(&format!(" Container {}  Paused", name(&host, "app"))),
        "{out:?}"
    );
    assert!(host.rt.is_paused(&id));
    if let Some(dir) = unified_dir(&host, &id) {
        // Hybrid and v2 hosts: the unified freezer, and the kernel says it took.
        assert_eq!(
            fs::read_to_string(dir.join("cgroup.freeze"))
                .unwrap()
                .trim(),
            "1"
        );
        let events = fs::read_to_string(dir.join("cgroup.events")).unwrap();
        assert!(events.contains("frozen 1"), "{events}");
    }
    let status = fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    eprintln!(
        "a frozen process: {}",
        status
            .lines()
            .find(|l| l.starts_with("State:"))
            .unwrap_or("")
    );
    // Frozen: no output at all for a while.
    let before = log_len(&host, &id);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(log_len(&host, &id), before, "a paused container ran");
    // Again: nothing to do.
    assert_eq!(wharf(&host, &["pause", "app"]).status.code(), Some(0));

    let out = wharf(&host, &["unpause"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        text(&out.stderr).contains(&format!(" Container {}  Unpaused", name(&host, "app"))),
        "{out:?}"
    );
    assert!(!host.rt.is_paused(&id));
    let end = Instant::now() + Duration::from_secs(5);
    while log_len(&host, &id) == before {
        assert!(Instant::now() < end, "an unpaused container does not run");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Paused, then stopped: thawed first, so it handles SIGTERM itself (exit 3, not 137)
    // well within the grace period.
    assert_eq!(wharf(&host, &["pause"]).status.code(), Some(0));
    assert!(host.rt.is_paused(&id));
    let started = Instant::now();
    let out = wharf(&host, &["stop"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let s = host.state(&id);
    assert_eq!((s.status, s.exit_code), (Status::Exited, Some(3)));
    host.finish();
}

#[test]
fn a_paused_container_is_removed_by_the_runtime_too() {
    if !is_root("a_paused_container_is_removed_by_the_runtime_too") {
        return;
    }
    let mut host = Host::new("lcpauserm");
    let p = project(&host, &[("app", "while true; do sleep 0.05; done", "")]);
    let id = host.create(&p, "app");
    host.start(&id);
    host.rt.pause(&id).unwrap();
    assert!(host.rt.is_paused(&id));
    // `down` and `rm -s` end here: stop with no grace, kill the cgroup, remove it.
    host.rt
        .remove(&id, wharf::runtime::AnonymousVolumes::Remove)
        .unwrap();
    assert!(host.rt.config(&id).is_err());
    host.forget_containers();
    host.finish();
}

#[test]
fn wait_prints_each_exit_and_returns_the_first_code_then_downs_the_project() {
    if !is_root("wait_prints_each_exit_and_returns_the_first_code_then_downs_the_project") {
        return;
    }
    let mut host = Host::new("lcwait");
    // Long enough to be still running when `wait` looks, whatever the machine's load.
    let p = project(
        &host,
        &[
            ("a", "sleep 1.5; exit 3", ""),
            ("b", "sleep 2.5; exit 5", ""),
            ("c", "sleep 1.5; exit 4", ""),
            ("d", STOPPABLE, ""),
        ],
    );
    let mut ids = Vec::new();
    for s in ["a", "b", "d"] {
        let id = host.create(&p, s);
        host.start(&id);
        ids.push(id);
    }

    let out = wharf(&host, &["wait", "b", "a"]);
    assert_eq!(out.status.code(), Some(3), "a exits first: {out:?}");
    assert_eq!(
        text(&out.stdout),
        format!(
            "container \"{}\" exited with status code 3\ncontainer \"{}\" exited with status code 5\n",
            ids[0], ids[1]
        )
    );
    // Nothing of theirs runs any more.
    let out = wharf(&host, &["wait", "a"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no containers for project"),
        "{out:?}"
    );
    assert_eq!(
        wharf(&host, &["wait"]).status.code(),
        Some(2),
        "SERVICE is required"
    );

    // c exits; then the whole project goes, d (still running) included.
    let c = host.create(&p, "c");
    host.start(&c);
    let out = wharf(&host, &["wait", "--down-project", "c"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(host.rt.list().is_empty(), "{out:?}");
    assert!(!Path::new(&host.root().join("containers").join(&ids[2])).exists());
    host.forget_containers();
    host.finish();
}

#[test]
fn a_paused_container_is_not_probed_and_stays_healthy() {
    if !is_root("a_paused_container_is_not_probed_and_stays_healthy") {
        return;
    }
    use wharf::runtime::health::Status as Health;
    let mut host = Host::new("lchealth");
    let p = project(
        &host,
        &[(
            "app",
            STOPPABLE,
            "healthcheck:\n  test: [\"CMD\", \"true\"]\n  interval: 100ms\n  timeout: 300ms\n  retries: 1",
        )],
    );
    let id = host.create(&p, "app");
    host.start(&id);
    let health = |s: &wharf::runtime::container::State| s.health.clone();
    host.wait_for(&id, Duration::from_secs(10), |s| {
        health(s).is_some_and(|h| h.status == Health::Healthy)
    });
    host.rt.pause(&id).unwrap();
    // A probe in flight when the pause came may still land; after that, none.
    std::thread::sleep(Duration::from_millis(500));
    let before = health(&host.state(&id)).unwrap();
    // Many intervals and probe timeouts: a frozen probe would have counted as a failure.
    std::thread::sleep(Duration::from_millis(1500));
    let after = health(&host.state(&id)).unwrap();
    assert_eq!(after.status, Health::Healthy, "{after:#?}");
    assert_eq!(after.failing_streak, 0);
    // The log keeps the last few probes; the newest one's time says whether any ran.
    let last = |h: &wharf::runtime::health::Health| h.log.back().map(|p| p.at);
    assert_eq!(last(&after), last(&before), "probed while paused");
    host.rt.unpause(&id).unwrap();
    host.finish();
}
