//! `wharf up` end to end, as root, through the real CLI: the three-tier example
//! (`examples/three-tier`) brought up with `--wait`, edited, brought up again, scaled and
//! taken down, inside a network namespace the test makes as "the host" (the network
//! harness of `networking.rs`). After `down -v` the harness checks that no link, route,
//! nftables rule, DNS responder, process, cgroup, mount or namespace pin is left; this file
//! checks the state records.

use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;

use crate::networking::{Net, http_get, wait_http};
use crate::runtime::{IMAGE, is_root};

/// The CLI, run in the test's "host" namespace on its state root and project.
pub(crate) struct Cli {
    pub(crate) file: PathBuf,
}

pub(crate) struct Out {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Cli {
    pub(crate) fn new(net: &Net, yaml: &str) -> Cli {
        let dir = net.host.root().join("project");
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("compose.yaml");
        fs::write(&file, yaml).unwrap();
        Cli { file }
    }

    pub(crate) fn run(&self, net: &Net, args: &[&str], env: &[(&str, &str)]) -> Out {
        self.run_without(net, args, env, &[])
    }

    /// [`Cli::run`] without the variables `unset` in its environment (not even `IMAGE`).
    pub(crate) fn run_without(
        &self,
        net: &Net,
        args: &[&str],
        env: &[(&str, &str)],
        unset: &[&str],
    ) -> Out {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", net.hostns.display()))
            .arg(env!("CARGO_BIN_EXE_wharf"))
            .env("WHARF_ROOT", net.host.root())
            .env("IMAGE", IMAGE)
            .envs(env.iter().copied());
        for name in unset {
            cmd.env_remove(name);
        }
        let out = cmd
            .arg("-f")
            .arg(&self.file)
            .args(["-p", net.host.project_name()])
            .args(args)
            .output()
            .unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// On a failed assertion, `down -v` of the test's project (in its "host" namespace) before
/// the harness drops the namespace: a failed test must not leave containers running.
pub(crate) struct Cleanup {
    hostns: PathBuf,
    root: PathBuf,
    file: PathBuf,
    project: String,
}

impl Cleanup {
    pub(crate) fn new(net: &Net, cli: &Cli) -> Cleanup {
        Cleanup {
            hostns: net.hostns.clone(),
            root: net.host.root().to_path_buf(),
            file: cli.file.clone(),
            project: net.host.project_name().to_string(),
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let _ = Command::new("nsenter")
            .arg(format!("--net={}", self.hostns.display()))
            .arg(env!("CARGO_BIN_EXE_wharf"))
            .env("WHARF_ROOT", &self.root)
            .env("IMAGE", IMAGE)
            .arg("-f")
            .arg(&self.file)
            .args(["-p", &self.project, "down", "-v", "-t", "0"])
            .output();
    }
}

/// Container name → id, of every container of the state root; each one's processes are
/// handed to the runtime harness, which checks at the end that they are gone.
pub(crate) fn containers(net: &mut Net) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for id in net.host.rt.list() {
        let name = net.host.rt.config(&id).unwrap().spec.name;
        net.host.state(&id);
        out.insert(name, id);
    }
    out
}

#[test]
fn three_tier_up_wait_edit_noop_scale_and_down() {
    if !is_root("three_tier_up_wait_edit_noop_scale_and_down") {
        return;
    }
    let mut net = Net::new("up");
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/three-tier/compose.yaml"
    );
    let cli = Cli::new(&net, &fs::read_to_string(example).unwrap());
    let _cleanup = Cleanup::new(&net, &cli);

    // Up, waiting for every service: the job completed, the rest running and healthy.
    let up = cli.run(
        &net,
        &[
            "up",
            "-d",
            "--wait",
            "--wait-timeout",
            "60",
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(up.code, 0, "{}", up.stderr);
    let states: BTreeMap<String, String> = up
        .stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["service"].as_str().unwrap().to_string(),
                v["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(states["migrate"], "completed", "{}", up.stdout);
    assert_eq!(states["db"], "healthy", "{}", up.stdout);
    assert_eq!(states["api"], "healthy", "{}", up.stdout);
    assert!(
        up.stderr.contains("Waiting for db to be healthy"),
        "{}",
        up.stderr
    );
    let web = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
    wait_http(&net.hostns, web);
    assert_eq!(http_get(&net.hostns, web).unwrap(), "hello from wharf");
    let first = containers(&mut net);
    assert_eq!(first.len(), 4, "{first:?}");

    // Nothing changed: nothing to do, and `up` changes nothing (the completed job is not
    // run again).
    let plan = cli.run(&net, &["plan"], &[]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert_eq!(plan.stdout, "");
    assert_eq!(cli.run(&net, &["up", "-d"], &[]).code, 0);
    assert_eq!(containers(&mut net), first);

    // One environment variable of the api: the plan says so, and only the api is
    // recreated.
    let debug = [("LOG_LEVEL", "debug")];
    let plan = cli.run(&net, &["plan"], &debug);
    assert_eq!(plan.code, 2, "{}", plan.stderr);
    assert!(
        plan.stdout
            .contains("config hash diverged: environment.LOG_LEVEL"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .lines()
            .all(|l| l.contains(&format!("{}-api-1", net.host.project_name()))),
        "{}",
        plan.stdout
    );
    let up = cli.run(&net, &["up", "-d"], &debug);
    assert_eq!(up.code, 0, "{}", up.stderr);
    let second = containers(&mut net);
    let api = format!("{}-api-1", net.host.project_name());
    assert_ne!(first[&api], second[&api], "the api was not recreated");
    for (name, id) in &first {
        if *name != api {
            assert_eq!(second.get(name), Some(id), "{name} was touched");
        }
    }
    let env = net.host.rt.config(&second[&api]).unwrap().spec.process.env;
    assert!(env.iter().any(|e| e == "LOG_LEVEL=debug"), "{env:?}");
    // And again: a no-op.
    assert_eq!(cli.run(&net, &["plan"], &debug).code, 0);
    assert_eq!(cli.run(&net, &["up", "-d"], &debug).code, 0);
    assert_eq!(containers(&mut net), second);

    // Scale the api up (the first replica is kept), then back down (the highest go).
    let up = cli.run(&net, &["up", "-d", "--scale", "api=3"], &debug);
    assert_eq!(up.code, 0, "{}", up.stderr);
    let scaled = containers(&mut net);
    assert_eq!(scaled.len(), 6, "{scaled:?}");
    assert_eq!(scaled[&api], second[&api]);
    let up = cli.run(&net, &["up", "-d"], &debug);
    assert_eq!(up.code, 0, "{}", up.stderr);
    assert_eq!(containers(&mut net), second);

    // Down with volumes: nothing of the project is left.
    let down = cli.run(&net, &["down", "-v", "-t", "1"], &debug);
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert!(containers(&mut net).is_empty());
    let root = net.host.root().to_path_buf();
    assert!(!root.join("volumes/three-tier_dbdata").exists());
    assert!(
        !root.join("projects").join(net.host.project_name()).exists(),
        "the project's records are left"
    );
    for dir in ["network/networks", "network/sandboxes", "network/netns"] {
        let left: Vec<_> = fs::read_dir(root.join(dir))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{dir}: {left:?}");
    }
    net.finish();
}

#[test]
fn a_failing_dependency_fails_up_fast_with_its_reason_and_last_lines() {
    if !is_root("a_failing_dependency_fails_up_fast_with_its_reason_and_last_lines") {
        return;
    }
    let mut net = Net::new("upfail");
    let cli = Cli::new(
        &net,
        "services:\n  job:\n    image: ${IMAGE}\n    command: [sh, -c, \"echo boom; exit 3\"]\n    network_mode: none\n  app:\n    image: ${IMAGE}\n    command: [sleep, \"60\"]\n    network_mode: none\n    depends_on:\n      job:\n        condition: service_completed_successfully\n",
    );
    let _cleanup = Cleanup::new(&net, &cli);
    let started = std::time::Instant::now();
    let up = cli.run(&net, &["up", "-d", "--wait-timeout", "60"], &[]);
    assert_eq!(up.code, 1, "{}", up.stderr);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "it waited for the timeout instead of failing fast"
    );
    assert!(
        up.stderr
            .contains("dependency job didn't complete successfully: exit 3"),
        "{}",
        up.stderr
    );
    assert!(up.stderr.contains("boom"), "{}", up.stderr);
    // The app was created but never started.
    let all = containers(&mut net);
    assert_eq!(all.len(), 2);
    let app = &all[&format!("{}-app-1", net.host.project_name())];
    assert!(net.host.rt.state(app).unwrap().started_at.is_none());
    let down = cli.run(&net, &["down"], &[]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    net.finish();
}

#[test]
fn attached_up_streams_every_service_and_ends_when_they_exit() {
    if !is_root("attached_up_streams_every_service_and_ends_when_they_exit") {
        return;
    }
    let mut net = Net::new("upatt");
    let cli = Cli::new(
        &net,
        "services:\n  a:\n    image: ${IMAGE}\n    command: [sh, -c, \"echo hi; sleep 1; echo bye\"]\n    network_mode: none\n  b:\n    image: ${IMAGE}\n    command: [sh, -c, \"echo from b\"]\n    network_mode: none\n",
    );
    let _cleanup = Cleanup::new(&net, &cli);
    let up = cli.run(&net, &["up", "--no-color"], &[]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    let lines: Vec<&str> = up.stdout.lines().collect();
    assert_eq!(lines[0], "Attaching to a-1, b-1", "{}", up.stdout);
    assert!(lines.contains(&"a-1  | hi"), "{}", up.stdout);
    assert!(lines.contains(&"a-1  | bye"), "{}", up.stdout);
    assert!(lines.contains(&"b-1  | from b"), "{}", up.stdout);
    let hi = lines.iter().position(|l| *l == "a-1  | hi").unwrap();
    let bye = lines.iter().position(|l| *l == "a-1  | bye").unwrap();
    assert!(hi < bye, "{}", up.stdout);
    assert_eq!(containers(&mut net).len(), 2);
    // `ls` names the Compose file the project was brought up from.
    let ls = cli.run(&net, &["ls", "-a", "--format", "json"], &[]);
    assert_eq!(ls.code, 0, "{}", ls.stderr);
    let projects: serde_json::Value = serde_json::from_str(&ls.stdout).unwrap();
    let ours = projects
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["Name"] == net.host.project_name())
        .unwrap_or_else(|| panic!("{}", ls.stdout));
    assert_eq!(ours["ConfigFiles"], cli.file.display().to_string());
    // `down --rmi all` takes the services' image too.
    let down = cli.run(&net, &["down", "--rmi", "all"], &[]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert!(down.stderr.contains("Removed"), "{}", down.stderr);
    let reference = wharf::image::reference::Reference::parse(IMAGE)
        .unwrap()
        .to_string();
    assert_eq!(net.host.store.resolve(&reference).unwrap(), None);
    let records = net
        .host
        .root()
        .join("projects")
        .join(net.host.project_name());
    assert!(!records.exists(), "{records:?} is left after down");
    net.finish();
}

/// How many steps `up` would take now.
fn plan_len(cli: &Cli, net: &Net, env: &[(&str, &str)]) -> usize {
    let out = cli.run(net, &["plan", "--format", "json"], env);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v["steps"].as_array().unwrap().len()
}

/// The exit code of a wharf that killed itself with SIGKILL (`Out` maps "no code" to -1).
const KILLED: i32 = -1;

#[test]
fn a_crash_at_any_step_of_up_or_down_is_recovered_by_the_next_one() {
    if !is_root("a_crash_at_any_step_of_up_or_down_is_recovered_by_the_next_one") {
        return;
    }
    let mut net = Net::new("crash");
    let cli = Cli::new(
        &net,
        "services:\n  web:\n    image: ${IMAGE}\n    command: [sleep, \"1000\"]\n    init: true\n    environment:\n      MODE: ${MODE:-a}\n    ports: [\"127.0.0.1:8090:80\"]\n    networks: [front, back]\n    depends_on: [db]\n  db:\n    image: ${IMAGE}\n    command: [sleep, \"1000\"]\n    init: true\n    volumes: [data:/data]\n    networks: [back]\nnetworks:\n  front: {}\n  back: {}\nvolumes:\n  data: {}\n",
    );
    let _cleanup = Cleanup::new(&net, &cli);
    let cold = plan_len(&cli, &net, &[]);
    assert!(cold >= 7, "{cold} steps");
    let root = net.host.root().to_path_buf();
    let left = |dir: &str| -> Vec<std::path::PathBuf> {
        fs::read_dir(root.join(dir))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    for n in 1..=cold {
        // A cold `up` killed before its nth step; the next converges.
        let crashed = cli.run(
            &net,
            &["up", "-d"],
            &[("WHARF_CRASH_BEFORE_STEP", &n.to_string())],
        );
        assert_eq!(crashed.code, KILLED, "step {n}: {}", crashed.stderr);
        let up = cli.run(&net, &["up", "-d"], &[]);
        assert_eq!(up.code, 0, "after a crash before step {n}: {}", up.stderr);
        let plan = cli.run(&net, &["plan"], &[]);
        assert_eq!(
            plan.code, 0,
            "not converged after a crash before step {n}: {}",
            plan.stdout
        );
        assert_eq!(containers(&mut net).len(), 2);

        // A recreate (create-before-destroy) killed midway; the next converges.
        let mode = [("MODE", "b")];
        let recreate = plan_len(&cli, &net, &mode);
        let at = (n - 1) % recreate + 1;
        let crashed = cli.run(
            &net,
            &["up", "-d"],
            &[("MODE", "b"), ("WHARF_CRASH_BEFORE_STEP", &at.to_string())],
        );
        assert_eq!(
            crashed.code, KILLED,
            "recreate step {at}: {}",
            crashed.stderr
        );
        containers(&mut net);
        let up = cli.run(&net, &["up", "-d"], &mode);
        assert_eq!(
            up.code, 0,
            "after a recreate crash before step {at}: {}",
            up.stderr
        );
        let plan = cli.run(&net, &["plan"], &mode);
        assert_eq!(
            plan.code, 0,
            "not converged (recreate step {at}): {}",
            plan.stdout
        );
        assert_eq!(containers(&mut net).len(), 2);

        // `down -v` killed before its nth step (when it has that many); the next removes
        // everything.
        let crashed = cli.run(
            &net,
            &["down", "-v", "-t", "1"],
            &[("MODE", "b"), ("WHARF_CRASH_BEFORE_STEP", &n.to_string())],
        );
        assert!(
            crashed.code == KILLED || crashed.code == 0,
            "{}",
            crashed.stderr
        );
        let down = cli.run(&net, &["down", "-v", "-t", "1"], &mode);
        assert_eq!(
            down.code, 0,
            "after a down crash before step {n}: {}",
            down.stderr
        );
        assert!(containers(&mut net).is_empty(), "step {n}");
        for dir in [
            "network/networks",
            "network/sandboxes",
            "network/netns",
            "volumes",
        ] {
            assert!(
                left(dir).is_empty(),
                "down after a crash before step {n}: {dir}: {:?}",
                left(dir)
            );
        }
    }
    net.finish();
}

#[test]
fn attached_up_shows_only_the_attached_and_aborts_on_the_first_exit() {
    if !is_root("attached_up_shows_only_the_attached_and_aborts_on_the_first_exit") {
        return;
    }
    let mut net = Net::new("upabort");
    let cli = Cli::new(
        &net,
        "services:\n  a:\n    image: ${IMAGE}\n    command: [sh, -c, \"echo from a; sleep 1; exit 3\"]\n    network_mode: none\n  b:\n    image: ${IMAGE}\n    init: true\n    command: [sh, -c, \"echo from b; sleep 60\"]\n    network_mode: none\n  c:\n    image: ${IMAGE}\n    command: [sh, -c, \"trap 'echo bye from c; exit 0' TERM; echo from c; while true; do sleep 0.05; done\"]\n    network_mode: none\n",
    );
    let _cleanup = Cleanup::new(&net, &cli);
    // Unknown services and refused combinations fail before anything is made.
    let bad = cli.run(&net, &["up", "--attach", "nope"], &[]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert!(
        bad.stderr
            .contains("cannot attach to services not included in up: nope"),
        "{}",
        bad.stderr
    );
    let bad = cli.run(&net, &["up", "--wait", "--exit-code-from", "a"], &[]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("--wait cannot be combined"),
        "{}",
        bad.stderr
    );
    assert!(containers(&mut net).is_empty());

    let started = std::time::Instant::now();
    let up = cli.run(
        &net,
        &[
            "up",
            "--no-color",
            "--no-attach",
            "b",
            "--abort-on-container-exit",
            "-t",
            "1",
        ],
        &[],
    );
    assert_eq!(
        up.code, 3,
        "the first exit's code\n{}\n{}",
        up.stdout, up.stderr
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "b's sleep was not cut short"
    );
    let lines: Vec<&str> = up.stdout.lines().collect();
    assert_eq!(lines[0], "Attaching to a-1, c-1", "{}", up.stdout);
    assert!(lines.contains(&"a-1  | from a"), "{}", up.stdout);
    assert!(lines.contains(&"c-1  | from c"), "{}", up.stdout);
    assert!(lines.contains(&"a-1 exited with code 3"), "{}", up.stdout);
    // What c says as the abort stops it is not shown: the log printer stopped first.
    assert!(
        !up.stdout.contains("bye from c"),
        "printed after the abort: {}",
        up.stdout
    );
    assert!(
        up.stderr.contains(&format!(
            " Container {}-c-1  Stopped",
            net.host.project_name()
        )),
        "{}",
        up.stderr
    );
    assert!(
        !up.stdout.contains("from b"),
        "b is not attached: {}",
        up.stdout
    );
    for (name, id) in containers(&mut net) {
        assert!(!net.host.rt.state(&id).unwrap().is_active(), "{name} runs");
    }
    assert_eq!(cli.run(&net, &["down"], &[]).code, 0);
    net.finish();
}

#[test]
fn a_taken_port_fails_up_before_anything_is_made() {
    if !is_root("a_taken_port_fails_up_before_anything_is_made") {
        return;
    }
    let mut net = Net::new("upport");
    let cli = Cli::new(
        &net,
        "services:\n  db:\n    image: ${IMAGE}\n    command: [sleep, \"60\"]\n    init: true\n  web:\n    image: ${IMAGE}\n    command: [sleep, \"60\"]\n    init: true\n    ports: [\"127.0.0.1:8095:80\"]\n    depends_on: [db]\n",
    );
    let _cleanup = Cleanup::new(&net, &cli);
    // Another program of the "host" listens on the port.
    let listener = wharf::network::netns::run_in(&net.hostns, || {
        std::net::TcpListener::bind("127.0.0.1:8095").unwrap()
    })
    .unwrap();
    let up = cli.run(&net, &["up", "-d"], &[]);
    assert_eq!(up.code, 1, "{}", up.stderr);
    assert!(up.stderr.contains("8095"), "{}", up.stderr);
    assert!(containers(&mut net).is_empty(), "something was made");
    assert!(
        net.nets.networks().unwrap().is_empty(),
        "a network was made"
    );
    // Free, it comes up.
    drop(listener);
    let up = cli.run(&net, &["up", "-d"], &[]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    assert_eq!(containers(&mut net).len(), 2);
    assert_eq!(cli.run(&net, &["down", "-t", "1"], &[]).code, 0);
    net.finish();
}

/// The data directory of the anonymous volume container `id` mounts at `dest`.
fn anonymous_data(net: &Net, id: &str, dest: &str) -> PathBuf {
    let mounts = net.host.rt.config(id).unwrap().spec.mounts;
    let name = wharf::runtime::spec::anonymous_volumes_of(&mounts)[dest].clone();
    net.host.rt.volumes().data_dir(&name).unwrap()
}

/// The content of `path` once it has `lines` lines (a container writes it as it starts).
fn wait_lines(path: &std::path::Path, lines: usize) -> String {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= lines || std::time::Instant::now() > end {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn anonymous_volumes_survive_a_recreate_and_go_only_with_v() {
    if !is_root("anonymous_volumes_survive_a_recreate_and_go_only_with_v") {
        return;
    }
    let mut net = Net::new("upanon");
    // Each start of the container appends its generation to /data/log.
    let cli = Cli::new(
        &net,
        "services:\n  app:\n    image: ${IMAGE}\n    init: true\n    network_mode: none\n    environment:\n      GEN: ${GEN:-1}\n    command: [sh, -c, \"echo $$GEN >> /data/log; exec sleep 60\"]\n    volumes: [\"/data\"]\n",
    );
    let _cleanup = Cleanup::new(&net, &cli);
    let app = format!("{}-app-1", net.host.project_name());
    let root = net.host.root().to_path_buf();
    let store = net.host.rt.volumes();
    let volumes = || -> Vec<String> { store.list().unwrap() };
    let up = cli.run(&net, &["up", "-d"], &[]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    let first = containers(&mut net)[&app].clone();
    let data = anonymous_data(&net, &first, "/data");
    assert_eq!(wait_lines(&data.join("log"), 1), "1\n");

    // An environment change recreates it; the replacement mounts the same volume.
    let up = cli.run(&net, &["up", "-d", "-t", "0"], &[("GEN", "2")]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    let second = containers(&mut net)[&app].clone();
    assert_ne!(first, second, "not recreated");
    assert_eq!(anonymous_data(&net, &second, "/data"), data);
    assert_eq!(wait_lines(&data.join("log"), 2), "1\n2\n");
    assert_eq!(volumes().len(), 1, "{:?}", volumes());

    // `-V`: the replacement starts with an empty volume; the old one stays on the host.
    let plan = cli.run(&net, &["plan", "-V", "--force-recreate"], &[("GEN", "3")]);
    assert!(
        plan.stdout.contains("(--renew-anon-volumes)"),
        "{}",
        plan.stdout
    );
    let up = cli.run(
        &net,
        &["up", "-d", "-V", "--force-recreate", "-t", "0"],
        &[("GEN", "3")],
    );
    assert_eq!(up.code, 0, "{}", up.stderr);
    let third = containers(&mut net)[&app].clone();
    let renewed = anonymous_data(&net, &third, "/data");
    assert_ne!(renewed, data);
    assert_eq!(wait_lines(&renewed.join("log"), 1), "3\n");
    assert_eq!(fs::read_to_string(data.join("log")).unwrap(), "1\n2\n");

    // `rm` without -v: the container goes, both volumes stay (remembered, and never taken
    // for declared volumes: the plan only makes the container again).
    let rm = cli.run(&net, &["rm", "-s", "-f"], &[("GEN", "3")]);
    assert_eq!(rm.code, 0, "{}", rm.stderr);
    assert!(containers(&mut net).is_empty());
    assert!(data.exists() && renewed.exists(), "{:?}", volumes());
    assert_eq!(volumes().len(), 2, "{:?}", volumes());
    let plan = cli.run(&net, &["plan"], &[("GEN", "3")]);
    assert!(
        plan.stdout.lines().all(|l| l.contains("container:")) && !plan.stderr.contains("WARN"),
        "{}{}",
        plan.stdout,
        plan.stderr
    );

    // `down -v` with no container left removes them, and nothing of the project is left.
    let down = cli.run(&net, &["down", "-v"], &[("GEN", "3")]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert!(volumes().is_empty(), "{:?}", volumes());
    assert!(
        !root.join("projects").join(net.host.project_name()).exists(),
        "the project's records are left"
    );
    net.finish();
}

#[test]
fn dry_run_changes_nothing_and_the_menus_detach_leaves_the_project_running() {
    if !is_root("dry_run_changes_nothing_and_the_menus_detach_leaves_the_project_running") {
        return;
    }
    let mut net = Net::new("upmenu");
    let cli = Cli::new(
        &net,
        "services:\n  app:\n    image: ${IMAGE}\n    command: [sh, -c, \"echo started; exec sleep 60\"]\n    init: true\n",
    );
    let _cleanup = Cleanup::new(&net, &cli);

    // `--dry-run`: the plan, and not even a lock file.
    let dry = cli.run(&net, &["up", "-d", "--dry-run"], &[]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(dry.stdout.contains("CreateContainer"), "{}", dry.stdout);
    assert!(containers(&mut net).is_empty());
    assert!(net.nets.networks().unwrap().is_empty());
    let projects = net.host.root().join("projects");
    assert!(!projects.exists(), "{projects:?} was made");

    // Attached with the menu on a terminal (`script` gives us one): `d` detaches.
    let inner = format!(
        "nsenter --net={} {} -f {} -p {} up --menu --no-color",
        net.hostns.display(),
        env!("CARGO_BIN_EXE_wharf"),
        cli.file.display(),
        net.host.project_name(),
    );
    let mut script = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .env("WHARF_ROOT", net.host.root())
        .env("IMAGE", IMAGE)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut keys = script.stdin.take().unwrap();
    let mut screen = script.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = std::io::Read::read(&mut screen, &mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    let mut shown = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !(shown.contains("d Detach") && shown.contains("app-1  | started")) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(bytes) => shown.push_str(&String::from_utf8_lossy(&bytes)),
            Err(_) => panic!("no menu: {shown}"),
        }
    }
    std::io::Write::write_all(&mut keys, b"d").unwrap();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(s) = script.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < end, "d did not detach: {shown}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    drop(keys);
    assert_eq!(status.code(), Some(0), "{shown}");
    // Still running, for `down` to stop.
    let ps = cli.run(&net, &["ps", "--format", "json"], &[]);
    assert!(ps.stdout.contains("\"running\""), "{}", ps.stdout);
    assert_eq!(cli.run(&net, &["down", "-t", "1"], &[]).code, 0);
    assert!(containers(&mut net).is_empty());
    net.finish();
}
