//! `wharf events` end to end, as root: the real binary follows a project while the CLI
//! brings it up, stops it and takes it down (inside the network harness's "host"
//! namespace, as `up.rs` does), and the events of the service it was asked about come in
//! order. The harness checks that nothing is left; the test checks that the events
//! process, which it started and killed by its PID, is gone.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::networking::Net;
use crate::runtime::{IMAGE, is_root};
use crate::up::{Cleanup, Cli, containers};

/// The numbers of `clock_nanosleep` and `nanosleep`.
#[cfg(target_arch = "x86_64")]
const SLEEPS: [u32; 2] = [230, 35];
#[cfg(target_arch = "aarch64")]
const SLEEPS: [u32; 2] = [115, 101];

#[test]
fn events_follow_up_stop_and_down_of_the_services_named() {
    if !is_root("events_follow_up_stop_and_down_of_the_services_named") {
        return;
    }
    let mut net = Net::new("events");
    // web ends on SIGTERM with 3; db is not asked about.
    let cli = Cli::new(
        &net,
        "services:\n  web:\n    image: ${IMAGE}\n    network_mode: none\n    command: [sh, -c, \"trap 'exit 3' TERM; while true; do sleep 0.05; done\"]\n  db:\n    image: ${IMAGE}\n    network_mode: none\n    init: true\n    command: [sleep, \"60\"]\n",
    );
    let _cleanup = Cleanup::new(&net, &cli);
    let project = net.host.project_name().to_string();

    let mut child = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .env("WHARF_ROOT", net.host.root())
        .env("IMAGE", IMAGE)
        .arg("-f")
        .arg(&cli.file)
        .args(["-p", &project, "events", "--json", "web"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = channel();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Its first look at the project (nothing there yet) before anything changes: it has
    // taken it once it sleeps between polls (in nanosleep or clock_nanosleep).
    let ready = Instant::now() + Duration::from_secs(30);
    loop {
        let syscall = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
        if SLEEPS.iter().any(|n| syscall.starts_with(&format!("{n} "))) {
            break;
        }
        assert!(
            Instant::now() < ready,
            "events never began polling: {syscall}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut events: Vec<Value> = Vec::new();
    // Reads events until `count` of them have `action` (or a generous limit).
    let wait_for = |events: &mut Vec<Value>, action: &str, count: usize| {
        let end = Instant::now() + Duration::from_secs(15);
        while events.iter().filter(|e| e["action"] == action).count() < count {
            let left = end.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => events.push(serde_json::from_str(&line).expect(&line)),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => panic!("events exited: {events:?}"),
            }
        }
    };

    // up, stop, down, one at a time.
    let up = cli.run(&net, &["up", "-d"], &[]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    let first = containers(&mut net)[&format!("{project}-web-1")].clone();
    let stop = cli.run(&net, &["stop", "-t", "5"], &[]);
    assert_eq!(stop.code, 0, "{}", stop.stderr);
    wait_for(&mut events, "stop", 1);
    let down = cli.run(&net, &["down"], &[]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    wait_for(&mut events, "destroy", 1);
    // up, then down of the running container (stopped and removed at once).
    let up = cli.run(&net, &["up", "-d"], &[]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    let second = containers(&mut net)[&format!("{project}-web-1")].clone();
    // Seen running first: events are sampled, and a container created, started and
    // removed between two samples of a starved poller shows only `create` and `destroy`.
    wait_for(&mut events, "start", 2);
    let down = cli.run(&net, &["down", "-t", "5"], &[]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    wait_for(&mut events, "destroy", 2);

    // Stop it by the PID it was started with, then make sure it is gone.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "ended by the signal: {status:?}");
    reader.join().unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the events process is left"
    );

    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "create", "start", "die", "stop", "destroy", "create", "start", "die", "stop",
            "destroy"
        ],
        "{events:#?}"
    );
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["type"], "container");
        assert_eq!(e["service"], "web", "only the service named: {e}");
        let id = if i < 5 { &first } else { &second };
        assert_eq!(e["id"], id.as_str());
        assert_eq!(e["attributes"]["name"], format!("{project}-web-1"));
        assert_eq!(e["attributes"]["image"], IMAGE);
        let time = e["time"].as_str().unwrap();
        assert!(wharf_time(time).is_some(), "time is RFC 3339: {time}");
    }
    assert_eq!(events[2]["attributes"]["exitCode"], "3", "{events:#?}");
    assert_ne!(first, second);
    assert!(containers(&mut net).is_empty());
    net.finish();
}

/// Whether `text` reads as an RFC 3339 time (`2026-11-24T03:20:00.123456789Z` or with an
/// offset).
fn wharf_time(text: &str) -> Option<()> {
    let (date, rest) = text.split_once('T')?;
    (date.len() == 10 && rest.len() >= 9 && (rest.ends_with('Z') || rest.contains(['+', '-'])))
        .then_some(())
}
