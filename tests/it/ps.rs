//! The read-side commands against real containers (root only): `wharf ps`, `ls`, `top` and
//! `logs` (`-f` across a replaced container, a new replica and a restart) run as the real
//! binary on a `Host`'s state root. The containers have no network (`network_mode: none`);
//! the harness checks that nothing is left behind.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::Value;
use wharf::runtime::container::Status;

use crate::runtime::{Host, IMAGE, is_root};

/// A Compose file of services that each run `sh -c SCRIPT` with no network.
fn compose(services: &[(&str, &str)]) -> String {
    let mut yaml = String::from("services:\n");
    for (name, script) in services {
        let script = serde_json::to_string(&[script.replace('$', "$$")]).unwrap();
        yaml.push_str(&format!(
            "  {name}:\n    image: {IMAGE}\n    network_mode: none\n    entrypoint: [\"/bin/sh\", \"-c\"]\n    command: {script}\n"
        ));
    }
    yaml
}

/// `wharf -p <project> ARGS` in the project's directory, on the host's state root.
fn wharf(host: &Host, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", "/HOME_DIR")
        .env("WHARF_ROOT", host.root())
        .current_dir(host.root().join("project"))
        .args(["-p", host.project_name()])
        .args(args);
    cmd
}

/// Runs `wharf ARGS`, expects success, returns stdout.
fn out(host: &Host, args: &[&str]) -> String {
    let o = wharf(host, args).output().unwrap();
    assert!(o.status.success(), "wharf {args:?}: {o:?}");
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn ps_ls_and_top_show_the_projects_containers() {
    if !is_root("ps_ls_and_top_show_the_projects_containers") {
        return;
    }
    let mut host = Host::new("ps");
    let project = host.project(&compose(&[
        ("web", "sleep 60"),
        ("job", "echo done; exit 3"),
        ("idle", "sleep 60"),
    ]));
    let web1 = host.create(&project, "web");
    let web2 = host.create_with(&project, "web", 2, |_| Default::default());
    let job = host.create(&project, "job");
    let idle = host.create(&project, "idle");
    for id in [&web1, &web2, &job] {
        host.start(id);
    }
    host.wait_exited(&job, Duration::from_secs(10));
    let p = host.project_name().to_string();

    // The table: running containers only, sorted by service and replica.
    let table = out(&host, &["ps"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    for col in [
        "NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS",
    ] {
        assert!(lines[0].contains(col), "{table}");
    }
    assert!(lines[1].starts_with(&format!("{p}-web-1 ")), "{table}");
    assert!(lines[2].starts_with(&format!("{p}-web-2 ")), "{table}");
    assert!(lines[1].contains(IMAGE) && lines[1].contains("\"/bin/sh -c sleep 60\""));
    assert!(
        lines[1].contains(" ago ") && lines[1].contains("Up "),
        "{table}"
    );

    // JSON Lines with every container under -a.
    let json = out(&host, &["ps", "-a", "--format", "json"]);
    let objects: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<(String, String, i64)> = objects
        .iter()
        .map(|o| {
            (
                o["Service"].as_str().unwrap().to_string(),
                o["State"].as_str().unwrap().to_string(),
                o["ExitCode"].as_i64().unwrap(),
            )
        })
        .collect();
    let s = |a: &str, b: &str, c| (a.to_string(), b.to_string(), c);
    assert_eq!(
        summary,
        [
            s("idle", "created", 0),
            s("job", "exited", 3),
            s("web", "running", 0),
            s("web", "running", 0)
        ]
    );
    let job_obj = &objects[1];
    assert_eq!(job_obj["ID"], Value::from(job.clone()));
    assert_eq!(job_obj["Project"], Value::from(p.clone()));
    assert_eq!(job_obj["Image"], Value::from(IMAGE));
    assert!(
        job_obj["Status"]
            .as_str()
            .unwrap()
            .starts_with("Exited (3) "),
        "{job_obj}"
    );
    assert_eq!(objects[0]["Status"], Value::from("Created"));
    let created = job_obj["Created"].as_i64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - 120..=now).contains(&created), "{created} vs {now}");
    assert_eq!(objects[2]["Publishers"], Value::Array(vec![]));
    let array: Vec<Value> =
        serde_json::from_str(&out(&host, &["ps", "-a", "--format", "json-array"])).unwrap();
    assert_eq!(array.len(), 4);

    // Ids, services, status filters, service arguments.
    assert_eq!(out(&host, &["ps", "-q"]), format!("{web1}\n{web2}\n"));
    assert_eq!(out(&host, &["ps", "-a", "--services"]), "idle\njob\nweb\n");
    assert_eq!(
        out(&host, &["ps", "--status", "exited", "-q"]),
        format!("{job}\n")
    );
    assert_eq!(
        out(&host, &["ps", "--filter", "status=created", "-q"]),
        format!("{idle}\n")
    );
    assert_eq!(
        out(&host, &["ps", "-a", "-q", "job", "idle"]),
        format!("{idle}\n{job}\n")
    );
    let bad = wharf(&host, &["ps", "nosuch"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    // Without the Compose file, -p is enough.
    let elsewhere = wharf(&host, &["ps", "-q"])
        .current_dir(host.root())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&elsewhere.stdout),
        format!("{web1}\n{web2}\n")
    );

    // ls: this project among the host's.
    let ls = out(&host, &["ls"]);
    assert!(ls.starts_with("NAME "), "{ls}");
    let mine: Vec<&str> = ls.lines().filter(|l| l.starts_with(&p)).collect();
    assert_eq!(mine.len(), 1, "{ls}");
    assert!(mine[0].contains("running(2)"), "{ls}");
    let all: Vec<Value> =
        serde_json::from_str(&out(&host, &["ls", "-a", "--format", "json"])).unwrap();
    let me = all.iter().find(|o| o["Name"] == p).unwrap();
    assert_eq!(
        me["Status"],
        Value::from("created(1), exited(1), running(2)")
    );
    assert_eq!(
        out(&host, &["ls", "-q", "--filter", &format!("name={p}")]),
        format!("{p}\n")
    );

    // top: each running container's processes.
    let top = out(&host, &["top"]);
    assert!(top.contains(&format!("{p}-web-1\nUID ")), "{top}");
    assert!(top.contains(&format!("{p}-web-2\nUID ")), "{top}");
    assert!(!top.contains(&format!("{p}-job-1")), "{top}");
    let state = host.state(&web1);
    let pid = state.init.unwrap().pid.to_string();
    let row = top
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(pid.as_str()))
        .unwrap_or_else(|| panic!("pid {pid} not in {top}"));
    assert!(row.starts_with("root "), "{row}");
    assert!(row.ends_with("sleep 60"), "{row}");
    let only = out(&host, &["top", "web"]);
    assert_eq!(only.matches("UID ").count(), 2, "{only}");
    host.finish();
}

#[test]
fn ps_of_fifty_containers_is_fast() {
    if !is_root("ps_of_fifty_containers_is_fast") {
        return;
    }
    let mut host = Host::new("psfast");
    let project = host.project(&compose(&[("app", "sleep 60")]));
    for replica in 1..=50 {
        host.create_with(&project, "app", replica, |_| Default::default());
    }
    // The best of a few runs of the whole binary (start-up and Compose file included). A
    // release build takes about 8 ms here (5 ms without a Compose file to load); this
    // debug build about 45 ms, hence the loose bound.
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let o = wharf(&host, &["ps", "-a", "--format", "json"])
            .output()
            .unwrap();
        best = best.min(start.elapsed());
        assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 50);
    }
    eprintln!("wharf ps -a of 50 containers: {best:?}");
    assert!(best < Duration::from_millis(200), "{best:?}");
    host.finish();
}

/// Lines a child prints, as they come.
fn lines_of(child: &mut Child) -> Receiver<String> {
    let (tx, rx) = channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line equal to `want`, keeping every line seen in `seen`.
fn expect_line(rx: &Receiver<String>, seen: &mut Vec<String>, want: &str) {
    let end = Instant::now() + Duration::from_secs(15);
    while !seen.iter().any(|l| l == want) {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("no line {want:?}; got {seen:#?}"),
        }
    }
}

/// Waits for the child to exit, killing it (by its pid) if it does not.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn logs_merges_filters_and_follows_the_service() {
    if !is_root("logs_merges_filters_and_follows_the_service") {
        return;
    }
    let mut host = Host::new("logs");
    let v1 = host.project(&compose(&[("app", "echo one; echo err-one >&2; sleep 60")]));
    let old = host.create(&v1, "app");
    host.start(&old);
    let mut follow = wharf(&host, &["logs", "-f", "--no-color"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut follow);
    let mut seen = Vec::new();
    expect_line(&rx, &mut seen, "app-1  | one");
    expect_line(&rx, &mut seen, "app-1  | err-one");

    // Replaced as `up` does it: the new container is created, the old one stopped and
    // removed, then the new one started under the same name.
    let v2 = host.project(&compose(&[("app", "echo two; sleep 60")]));
    let new = host.create(&v2, "app");
    host.rt
        .stop(&old, Some(Duration::from_millis(200)))
        .unwrap();
    host.rt
        .remove(&old, wharf::runtime::AnonymousVolumes::Remove)
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    host.start(&new);
    expect_line(&rx, &mut seen, "app-1  | two");

    // A new replica, then a restart of it: its log grows.
    let three = host.create_with(&v2, "app", 2, |_| Default::default());
    host.start(&three);
    expect_line(&rx, &mut seen, "app-2  | two");
    host.rt
        .stop(&three, Some(Duration::from_millis(200)))
        .unwrap();
    host.start(&three);
    let end = Instant::now() + Duration::from_secs(15);
    while seen.iter().filter(|l| *l == "app-2  | two").count() < 2 {
        match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok(line) => seen.push(line),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                panic!("the restart's line never came: {seen:#?}")
            }
        }
    }
    assert!(
        follow.try_wait().unwrap().is_none(),
        "still following while containers run"
    );

    // Everything stops: `logs -f` ends.
    for id in [&new, &three] {
        host.rt.stop(id, Some(Duration::from_millis(200))).unwrap();
    }
    let status = wait_exit(&mut follow, Duration::from_secs(10));
    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "logs -f did not end"
    );
    assert_eq!(
        seen.iter().filter(|l| l.starts_with("app-1")).count(),
        3,
        "{seen:#?}"
    );

    // Without -f: every line, merged by time; tail, index, prefixes and timestamps.
    let all = out(&host, &["logs", "--no-color"]);
    assert_eq!(
        all.lines().filter(|l| l.starts_with("app-")).count(),
        3,
        "the removed container's lines are gone with it: {all}"
    );
    let last = out(
        &host,
        &["logs", "--no-color", "--tail", "1", "--index", "2"],
    );
    assert_eq!(last, "app-2  | two\n");
    let bare = out(&host, &["logs", "--no-log-prefix", "--index", "1"]);
    assert_eq!(bare, "two\n");
    let stamped = out(&host, &["logs", "--no-color", "-t", "--index", "1"]);
    let (prefix, rest) = stamped.split_at("app-1  | ".len());
    assert_eq!(prefix, "app-1  | ");
    assert!(
        rest.ends_with("Z two\n") && rest.len() == 31 + 4,
        "{stamped:?}"
    );
    assert_eq!(
        out(&host, &["logs", "--since", "1m", "--index", "1"])
            .lines()
            .count(),
        1
    );
    assert_eq!(out(&host, &["logs", "--until", "1h", "--index", "1"]), "");
    assert_eq!(host.state(&new).status, Status::Exited);
    host.finish();
}
