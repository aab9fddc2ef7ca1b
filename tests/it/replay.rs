//! Docker Compose's own end-to-end scenarios, replayed against wharf as root: each test
//! takes a Compose file of the conformance corpus (`docker-compose/e2e-testdata/*` and
//! `docker-compose/e2e-fixtures/{wait,cascade,network-test}`), drives the real CLI the way
//! the upstream test drives `docker compose`, and asserts the result the corpus README
//! gives. Everything runs inside a network namespace the test makes as "the host" (the
//! harness of `networking.rs`), and each test ends with `down -v` and [`Net::finish`],
//! which checks that nothing is left.
//!
//! The files are copied, not edited by hand, so that a change of the corpus shows here:
//! every `image:` becomes the fixture busybox image (there is no registry in these tests),
//! and a command that needs a program busybox lacks is rewritten, each rewrite said where
//! it is made. A rewrite asserts that the text it replaces is there.

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::networking::Net;
use crate::runtime::{IMAGE, is_root};
use crate::up::{Cleanup, Cli, Out, containers};
use crate::util::conformance_dir;

/// A file of the corpus's `docker-compose/` directory.
fn corpus(rel: &str) -> String {
    let path: PathBuf = conformance_dir().join("docker-compose").join(rel);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `image:` line of `yaml` with `image` instead (the indentation kept): the upstream
/// images (alpine, bash, nginx, mariadb, …) are not here, the busybox fixture is.
fn images(yaml: &str, image: &str) -> String {
    let mut out = String::new();
    let mut seen = 0;
    for line in yaml.lines() {
        let body = line.trim_start();
        if body.starts_with("image:") {
            let indent = &line[..line.len() - body.len()];
            out.push_str(&format!("{indent}image: {image}\n"));
            seen += 1;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(seen > 0, "no image: in\n{yaml}");
    out
}

/// `yaml` with `from` replaced by `to`; `from` must be there.
fn swap(yaml: &str, from: &str, to: &str) -> String {
    assert!(yaml.contains(from), "{from:?} is not in\n{yaml}");
    yaml.replace(from, to)
}

/// A scenario of `e2e-testdata`, with the fixture image (as `${IMAGE}`, which the CLI
/// helper sets).
fn testdata(name: &str) -> String {
    images(
        &corpus(&format!("e2e-testdata/{name}/compose.yaml")),
        "${IMAGE}",
    )
}

fn ok(out: &Out, what: &str) {
    assert_eq!(
        out.code, 0,
        "{what}\nstdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
}

fn down(cli: &Cli, net: &Net) {
    ok(&cli.run(net, &["down", "-v", "-t", "1"], &[]), "down -v");
}

/// `<project>-<service>-<n>`.
fn name(net: &Net, service: &str, n: u32) -> String {
    format!("{}-{service}-{n}", net.host.project_name())
}

/// The IPv4 addresses of container `id` on network key `key`, from its sandbox record.
fn ipv4(net: &Net, id: &str, key: &str) -> Vec<Ipv4Addr> {
    let s = net.nets.sandbox(id).unwrap().expect("a sandbox record");
    s.endpoints
        .iter()
        .filter(|e| e.key == key)
        .flat_map(|e| &e.addresses)
        .filter_map(|a| match a {
            IpAddr::V4(a) => Some(*a),
            IpAddr::V6(_) => None,
        })
        .collect()
}

/// The replica names of the project's containers, sorted. Unlike [`containers`] it does
/// not hand them to the leak check: a replica scaled away frees its namespaces mid-test,
/// and a parallel test may get the same namespace inode, which the check would then take
/// for a leak. Their cgroups and directories are still checked.
fn replicas(net: &Net) -> Vec<String> {
    let prefix = format!("{}-", net.host.project_name());
    let mut out: Vec<String> = net
        .host
        .rt
        .list()
        .into_iter()
        .filter_map(|id| net.host.rt.config(&id).ok())
        .map(|c| c.spec.name)
        .map(|n| n.strip_prefix(&prefix).unwrap_or(&n).to_string())
        .collect();
    out.sort();
    out
}

/// Container name → id, without the leak check's registration (see [`replicas`]).
fn replicas_by_name(net: &Net) -> std::collections::BTreeMap<String, String> {
    net.host
        .rt
        .list()
        .into_iter()
        .filter_map(|id| Some((net.host.rt.config(&id).ok()?.spec.name, id)))
        .collect()
}

#[test]
fn up_wait_with_a_completed_one_shot_dependency_returns_0() {
    if !is_root("up_wait_with_a_completed_one_shot_dependency_returns_0") {
        return;
    }
    let mut net = Net::new("rpwait");
    let cli = Cli::new(&net, &testdata("TestUpWait"));
    let _cleanup = Cleanup::new(&net, &cli);
    let up = cli.run(&net, &["up", "--wait", "--wait-timeout", "30"], &[]);
    ok(&up, "up --wait");
    assert_eq!(containers(&mut net).len(), 2);
    down(&cli, &net);
    net.finish();
}

#[test]
fn up_wait_timeout_fails_after_the_timeout_while_health_is_starting() {
    if !is_root("up_wait_timeout_fails_after_the_timeout_while_health_is_starting") {
        return;
    }
    let mut net = Net::new("rpwaitto");
    let cli = Cli::new(&net, &testdata("TestUpWaitTimeout"));
    let _cleanup = Cleanup::new(&net, &cli);
    let started = Instant::now();
    let up = cli.run(&net, &["up", "--wait", "--wait-timeout", "3"], &[]);
    let took = started.elapsed();
    assert_ne!(up.code, 0, "{}", up.stderr);
    assert!(took >= Duration::from_secs(3), "gave up after {took:?}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(up.stderr.contains("timeout"), "{}", up.stderr);
    containers(&mut net);
    down(&cli, &net);
    net.finish();
}

#[test]
fn up_fails_when_a_dependency_is_unhealthy() {
    if !is_root("up_fails_when_a_dependency_is_unhealthy") {
        return;
    }
    let mut net = Net::new("rpunh");
    let cli = Cli::new(&net, &testdata("TestUpServiceUnhealthy"));
    let _cleanup = Cleanup::new(&net, &cli);
    let started = Instant::now();
    let up = cli.run(&net, &["up", "-d", "--wait-timeout", "60"], &[]);
    assert_eq!(up.code, 1, "{}", up.stderr);
    assert!(up.stderr.contains("unhealthy"), "{}", up.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "waited for the timeout: {:?}",
        started.elapsed()
    );
    containers(&mut net);
    down(&cli, &net);
    net.finish();
}

#[test]
fn up_fails_without_hanging_when_a_dependency_exits_before_healthy() {
    if !is_root("up_fails_without_hanging_when_a_dependency_exits_before_healthy") {
        return;
    }
    let mut net = Net::new("rpdepex");
    let cli = Cli::new(&net, &testdata("TestUpWithDependencyExit"));
    let _cleanup = Cleanup::new(&net, &cli);
    let started = Instant::now();
    let up = cli.run(&net, &["up", "-d", "--wait-timeout", "60"], &[]);
    assert_eq!(up.code, 1, "{}", up.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "hung until {:?}",
        started.elapsed()
    );
    // `db` has no health check; whichever of its faults is named, it is `db`'s.
    assert!(up.stderr.contains("db"), "{}", up.stderr);
    containers(&mut net);
    down(&cli, &net);
    net.finish();
}

#[test]
fn a_dependency_that_is_not_required_and_not_enabled_does_not_stop_its_dependent() {
    if !is_root("a_dependency_that_is_not_required_and_not_enabled_does_not_stop_its_dependent") {
        return;
    }
    let mut net = Net::new("rpnotreq");
    let cli = Cli::new(&net, &testdata("TestUpWithDependencyNotRequired"));
    let _cleanup = Cleanup::new(&net, &cli);
    // `bar` is behind a profile that is not enabled: `foo` starts alone.
    let up = cli.run(&net, &["up", "-d", "--wait-timeout", "30"], &[]);
    ok(&up, "up -d");
    let all = containers(&mut net);
    assert_eq!(
        all.keys().cloned().collect::<Vec<_>>(),
        [name(&net, "foo", 1)]
    );
    let started = Instant::now();
    loop {
        let logs = cli.run(&net, &["logs", "--no-log-prefix", "foo"], &[]);
        if logs.stdout.lines().any(|l| l == "foo") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "foo never ran: {}{}",
            logs.stdout,
            logs.stderr
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    down(&cli, &net);
    net.finish();
}

#[test]
fn exit_code_from_returns_that_services_code_and_stops_the_rest() {
    if !is_root("exit_code_from_returns_that_services_code_and_stops_the_rest") {
        return;
    }
    let mut net = Net::new("rpexit");
    let cli = Cli::new(&net, &testdata("TestUpExitCodeFrom"));
    let _cleanup = Cleanup::new(&net, &cli);
    let started = Instant::now();
    let up = cli.run(
        &net,
        &["up", "--no-color", "--exit-code-from", "failure", "-t", "2"],
        &[],
    );
    assert_eq!(up.code, 42, "{}\n{}", up.stdout, up.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(
        up.stdout.contains("failure-1  | exiting with error"),
        "{}",
        up.stdout
    );
    assert!(
        up.stdout.contains("failure-1 exited with code 42"),
        "{}",
        up.stdout
    );
    assert!(
        up.stderr.contains("Aborting on container exit..."),
        "{}",
        up.stderr
    );
    // Everything was stopped by the abort.
    for (n, id) in containers(&mut net) {
        let state = net.host.rt.state(&id).unwrap();
        assert!(!state.is_active(), "{n} still {:?}", state.status);
    }
    // The code of a service the abort stopped is its signal's (upstream's
    // TestUpExitCodeFromContainerKilled): SIGTERM, 143.
    down(&cli, &net);
    let up = cli.run(
        &net,
        &["up", "--no-color", "--exit-code-from", "safe", "-t", "2"],
        &[],
    );
    assert_eq!(up.code, 143, "{}\n{}", up.stdout, up.stderr);
    containers(&mut net);
    down(&cli, &net);
    net.finish();
}

#[test]
fn cascade_abort_on_exit_returns_0_and_on_failure_propagates_111() {
    if !is_root("cascade_abort_on_exit_returns_0_and_on_failure_propagates_111") {
        return;
    }
    let mut net = Net::new("rpcasc");
    // `return 111` outside a function: busybox sh exits with it, as upstream's sh does.
    let cli = Cli::new(
        &net,
        &images(&corpus("e2e-fixtures/cascade/compose.yaml"), "${IMAGE}"),
    );
    let _cleanup = Cleanup::new(&net, &cli);
    // `exit` exits 0 first: that is the code (no --exit-code-from, not an error).
    let up = cli.run(
        &net,
        &["up", "--no-color", "--abort-on-container-exit", "-t", "2"],
        &[],
    );
    assert_eq!(up.code, 0, "{}\n{}", up.stdout, up.stderr);
    assert!(
        up.stdout.contains("exit-1 exited with code 0"),
        "{}",
        up.stdout
    );
    containers(&mut net);
    // Upstream runs the two cases as two projects: start afresh (a completed one-shot
    // job is not run again by wharf's `up`).
    down(&cli, &net);
    // Failure: `exit`'s 0 goes by, `fail`'s 111 aborts and is returned.
    let up = cli.run(
        &net,
        &[
            "up",
            "--no-color",
            "--abort-on-container-failure",
            "-t",
            "2",
        ],
        &[],
    );
    assert_eq!(up.code, 111, "{}\n{}", up.stdout, up.stderr);
    assert!(
        up.stdout.contains("exit-1 exited with code 0"),
        "{}",
        up.stdout
    );
    assert!(
        up.stdout.contains("fail-1 exited with code 111"),
        "{}",
        up.stdout
    );
    for (n, id) in containers(&mut net) {
        assert!(!net.host.rt.state(&id).unwrap().is_active(), "{n} runs");
    }
    // Refused combinations, before anything changes.
    let bad = cli.run(&net, &["up", "-d", "--abort-on-container-exit"], &[]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("--detach cannot be combined"),
        "{}",
        bad.stderr
    );
    down(&cli, &net);
    net.finish();
}

#[test]
fn scale_up_and_down_keeps_numbering() {
    if !is_root("scale_up_and_down_keeps_numbering") {
        return;
    }
    let mut net = Net::new("rpscale");
    let cli = Cli::new(&net, &testdata("TestScaleBasicCases"));
    let _cleanup = Cleanup::new(&net, &cli);
    ok(&cli.run(&net, &["up", "-d"], &[]), "up -d");
    assert_eq!(
        replicas(&net),
        ["back-1", "db-1", "front-1", "front-2"],
        "replicas: 2 and 0"
    );
    let first = replicas_by_name(&net);
    // Docker Compose's `scale SERVICE=N` is `up -d --scale` here; each step repeats the
    // earlier ones, as `--scale` holds for one `up`.
    let steps: [(&[&str], &[&str]); 5] = [
        (
            &["dbadmin=2"],
            &[
                "back-1",
                "db-1",
                "dbadmin-1",
                "dbadmin-2",
                "front-1",
                "front-2",
            ],
        ),
        (
            &["dbadmin=2", "front=3", "back=2"],
            &[
                "back-1",
                "back-2",
                "db-1",
                "dbadmin-1",
                "dbadmin-2",
                "front-1",
                "front-2",
                "front-3",
            ],
        ),
        (
            &["dbadmin=1", "front=3", "back=2"],
            &[
                "back-1",
                "back-2",
                "db-1",
                "dbadmin-1",
                "front-1",
                "front-2",
                "front-3",
            ],
        ),
        (
            &["dbadmin=0", "front=3", "back=2"],
            &["back-1", "back-2", "db-1", "front-1", "front-2", "front-3"],
        ),
        (
            &["dbadmin=0", "front=2", "back=1"],
            &["back-1", "db-1", "front-1", "front-2"],
        ),
    ];
    for (scales, want) in steps {
        let mut args = vec!["up", "-d", "-t", "1"];
        for s in scales {
            args.extend(["--scale", s]);
        }
        ok(&cli.run(&net, &args, &[]), &format!("{args:?}"));
        assert_eq!(replicas(&net), want, "after {scales:?}");
    }
    // Scaling never recreated the replicas that stayed.
    assert_eq!(replicas_by_name(&net), first);
    containers(&mut net);
    down(&cli, &net);
    net.finish();
}

#[test]
fn remove_orphans_from_dot_env_removes_the_orphan() {
    if !is_root("remove_orphans_from_dot_env_removes_the_orphan") {
        return;
    }
    let mut net = Net::new("rporph");
    // Upstream makes its orphan with `run orphan` (a one-off container), which wharf does
    // not have; here the orphan is a service dropped from the file.
    let yaml = testdata("TestRemoveOrphans");
    let with_gone = format!(
        "{yaml}  gone:\n    image: ${{IMAGE}}\n    init: true\n    command: sleep infinity\n"
    );
    let cli = Cli::new(&net, &with_gone);
    let _cleanup = Cleanup::new(&net, &cli);
    fs::write(
        cli.file.with_file_name(".env"),
        corpus("e2e-testdata/TestRemoveOrphans/.env"),
    )
    .unwrap();
    ok(&cli.run(&net, &["up", "-d"], &[]), "up -d");
    assert_eq!(replicas(&net), ["gone-1", "test-1"]);
    containers(&mut net);
    fs::write(&cli.file, &yaml).unwrap();
    // COMPOSE_REMOVE_ORPHANS=true comes from the project's .env, not the shell.
    let up = cli.run_without(
        &net,
        &["up", "-d", "-t", "1"],
        &[],
        &["COMPOSE_REMOVE_ORPHANS"],
    );
    ok(&up, "up -d");
    assert_eq!(replicas(&net), ["test-1"], "{}", up.stderr);
    down(&cli, &net);
    net.finish();
}

#[test]
/// Here wharf differs from Docker Compose on purpose (issue 6: orphans are "containers of
/// the project whose service is gone or profiled out"): Docker Compose's `isOrphaned`
/// leaves a service disabled by its profiles alone; wharf reports it as an orphan and
/// removes it when asked (`COMPOSE_REMOVE_ORPHANS` from the project's `.env` here).
fn a_service_disabled_by_its_profile_is_an_orphan_wharf_removes_when_asked() {
    if !is_root("a_service_disabled_by_its_profile_is_an_orphan_wharf_removes_when_asked") {
        return;
    }
    let mut net = Net::new("rpprof");
    let cli = Cli::new(&net, &testdata("TestRemoveOrphans"));
    let _cleanup = Cleanup::new(&net, &cli);
    fs::write(
        cli.file.with_file_name(".env"),
        corpus("e2e-testdata/TestRemoveOrphans/.env"),
    )
    .unwrap();
    ok(
        &cli.run(&net, &["--profile", "run", "up", "-d"], &[]),
        "up with the profile",
    );
    assert_eq!(replicas(&net), ["orphan-1", "test-1"]);
    containers(&mut net);
    let up = cli.run_without(
        &net,
        &["up", "-d", "-t", "1"],
        &[],
        &["COMPOSE_REMOVE_ORPHANS"],
    );
    ok(&up, "up -d");
    assert_eq!(replicas(&net), ["test-1"], "{}", up.stderr);
    down(&cli, &net);
    net.finish();
}

#[test]
fn a_changed_subnet_recreates_the_network_and_readdresses_the_container_in_place() {
    if !is_root("a_changed_subnet_recreates_the_network_and_readdresses_the_container_in_place") {
        return;
    }
    let mut net = Net::new("rpsubnet");
    let cli = Cli::new(&net, &testdata("TestNetworkConfigChanged"));
    let _cleanup = Cleanup::new(&net, &cli);
    ok(&cli.run(&net, &["up", "-d"], &[]), "up -d");
    let before = containers(&mut net);
    let id = before[&name(&net, "test", 1)].clone();
    let addr = ipv4(&net, &id, "test");
    assert!(
        addr.iter().any(|a| a.octets()[..2] == [172, 99]),
        "{addr:?}"
    );
    let inside = cli.run(&net, &["exec", "-T", "test", "hostname", "-i"], &[]);
    ok(&inside, "exec hostname -i");
    assert!(inside.stdout.contains("172.99."), "{}", inside.stdout);

    let subnet = [("SUBNET", "192.168.0.0/16")];
    ok(
        &cli.run(&net, &["up", "-d"], &subnet),
        "up -d, SUBNET changed",
    );
    assert_eq!(containers(&mut net), before, "the container was recreated");
    let addr = ipv4(&net, &id, "test");
    assert!(
        addr.iter().any(|a| a.octets()[..2] == [192, 168]),
        "{addr:?}"
    );
    let inside = cli.run(&net, &["exec", "-T", "test", "hostname", "-i"], &subnet);
    ok(&inside, "exec hostname -i");
    assert!(inside.stdout.contains("192.168."), "{}", inside.stdout);
    ok(
        &cli.run(&net, &["down", "-v", "-t", "1"], &subnet),
        "down -v",
    );
    net.finish();
}

#[test]
fn a_fixed_ipv4_address_is_given() {
    if !is_root("a_fixed_ipv4_address_is_given") {
        return;
    }
    let mut net = Net::new("rpipam");
    let cli = Cli::new(&net, &testdata("TestIPAMConfig"));
    let _cleanup = Cleanup::new(&net, &cli);
    ok(&cli.run(&net, &["up", "-d"], &[]), "up -d");
    let all = containers(&mut net);
    let id = &all[&name(&net, "foo", 1)];
    assert_eq!(ipv4(&net, id, "default"), [Ipv4Addr::new(10, 1, 0, 100)]);
    let inside = cli.run(&net, &["exec", "-T", "foo", "hostname", "-i"], &[]);
    ok(&inside, "exec hostname -i");
    assert!(inside.stdout.contains("10.1.0.100"), "{}", inside.stdout);
    down(&cli, &net);
    net.finish();
}

#[test]
fn an_alias_and_a_link_both_resolve_and_answer() {
    if !is_root("an_alias_and_a_link_both_resolve_and_answer") {
        return;
    }
    let mut net = Net::new("rpalias");
    // nginx is not here: both containers serve a page with busybox httpd instead, and the
    // upstream `curl` becomes `nslookup` and `wget`.
    let httpd = "    command: [sh, -c, \"mkdir -p /www && echo hello-from-$$(hostname) > /www/index.html && exec httpd -f -p 80 -h /www\"]\n";
    let yaml = swap(
        &testdata("TestNetworkAliases"),
        "    stop_signal: SIGTERM\n",
        &format!("    stop_signal: SIGTERM\n{httpd}"),
    );
    let cli = Cli::new(&net, &yaml);
    let _cleanup = Cleanup::new(&net, &cli);
    ok(&cli.run(&net, &["up", "-d"], &[]), "up -d");
    let all = containers(&mut net);
    let two = &all[&name(&net, "container2", 1)];
    let addr = ipv4(&net, two, "default")[0].to_string();
    for alias in ["alias-of-container2", "container"] {
        let look = cli.run(&net, &["exec", "-T", "container1", "nslookup", alias], &[]);
        ok(&look, &format!("nslookup {alias}"));
        assert!(look.stdout.contains(&addr), "{alias}: {}", look.stdout);
        let started = Instant::now();
        loop {
            let url = format!("http://{alias}/");
            let get = cli.run(
                &net,
                &["exec", "-T", "container1", "wget", "-q", "-O", "-", &url],
                &[],
            );
            if get.code == 0 {
                assert!(get.stdout.starts_with("hello-from-"), "{}", get.stdout);
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "wget {url}: {}",
                get.stderr
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    down(&cli, &net);
    net.finish();
}

#[test]
fn a_volume_whose_labels_changed_is_kept_with_a_warning() {
    if !is_root("a_volume_whose_labels_changed_is_kept_with_a_warning") {
        return;
    }
    let mut net = Net::new("rpvol");
    // Docker Compose asks, then recreates the volume (`-y` answers yes). wharf never
    // removes a volume in `up`: it keeps it and says how to recreate it (`plan`'s
    // warning), which is what is asserted here; `down -v` then `up` gives the new label.
    let cli = Cli::new(&net, &testdata("TestUpRecreateVolumes"));
    let _cleanup = Cleanup::new(&net, &cli);
    ok(&cli.run(&net, &["up", "-d"], &[]), "up -d");
    containers(&mut net);
    let record = net
        .host
        .root()
        .join("projects")
        .join(net.host.project_name())
        .join("volumes")
        .join(format!("{}_my_vol.json", net.host.project_name()));
    let first = fs::read_to_string(&record).unwrap();
    let zot = [("VOL_LABEL", "zot")];
    let up = cli.run(&net, &["up", "-d"], &zot);
    ok(&up, "up -d with another label");
    assert!(
        up.stderr
            .contains("exists with another configuration; it is kept"),
        "{}",
        up.stderr
    );
    assert_eq!(
        fs::read_to_string(&record).unwrap(),
        first,
        "the volume changed"
    );
    ok(&cli.run(&net, &["down", "-v", "-t", "1"], &zot), "down -v");
    ok(&cli.run(&net, &["up", "-d"], &zot), "up -d after down -v");
    containers(&mut net);
    assert_ne!(fs::read_to_string(&record).unwrap(), first, "not recreated");
    ok(&cli.run(&net, &["down", "-v", "-t", "1"], &zot), "down -v");
    net.finish();
}

#[test]
fn shell_environment_beats_dot_env_in_interpolation() {
    if !is_root("shell_environment_beats_dot_env_in_interpolation") {
        return;
    }
    let mut net = Net::new("rpenv");
    // The file's own `${IMAGE}` is its subject (set by .env), so the fixture image goes in
    // literally and the CLI runs without the helper's IMAGE.
    let cli = Cli::new(
        &net,
        &images(
            &corpus("e2e-testdata/TestEnvInterpolation/compose.yaml"),
            IMAGE,
        ),
    );
    let _cleanup = Cleanup::new(&net, &cli);
    fs::write(
        cli.file.with_file_name(".env"),
        corpus("e2e-testdata/TestEnvInterpolation/.env"),
    )
    .unwrap();
    let shell = [("WHEREAMI", "Shell")];
    let config = cli.run_without(&net, &["config"], &shell, &["IMAGE"]);
    ok(&config, "config");
    assert!(
        config.stdout.contains("IMAGE: default_env:Shell"),
        "{}",
        config.stdout
    );
    let up = cli.run_without(&net, &["up", "--no-color"], &shell, &["IMAGE"]);
    ok(&up, "up");
    assert!(
        up.stdout
            .contains("env-interpolation-1  | default_env:Shell"),
        "{}",
        up.stdout
    );
    containers(&mut net);
    // Without the shell's value, .env's own.
    let config = cli.run_without(&net, &["config"], &[], &["IMAGE", "WHEREAMI"]);
    assert!(
        config.stdout.contains("IMAGE: default_env:EnvFile"),
        "{}",
        config.stdout
    );
    ok(
        &cli.run_without(&net, &["down", "-v", "-t", "1"], &shell, &["IMAGE"]),
        "down -v",
    );
    net.finish();
}

#[test]
fn wait_returns_when_the_service_exits() {
    if !is_root("wait_returns_when_the_service_exits") {
        return;
    }
    let mut net = Net::new("rpwaitcmd");
    let cli = Cli::new(
        &net,
        &images(&corpus("e2e-fixtures/wait/compose.yaml"), "${IMAGE}"),
    );
    let _cleanup = Cleanup::new(&net, &cli);
    ok(&cli.run(&net, &["up", "-d"], &[]), "up -d");
    containers(&mut net);
    let started = Instant::now();
    ok(&cli.run(&net, &["wait", "faster"], &[]), "wait faster");
    let faster = started.elapsed();
    assert!(faster < Duration::from_millis(4500), "{faster:?}");
    ok(&cli.run(&net, &["wait", "slower"], &[]), "wait slower");
    let slower = started.elapsed();
    assert!(slower >= Duration::from_secs(3), "{slower:?}");
    // `infinity` never exits: only its own stop (down) ends it.
    down(&cli, &net);
    net.finish();
}

#[test]
fn services_reach_each_other_by_name_on_custom_named_networks() {
    if !is_root("services_reach_each_other_by_name_on_custom_named_networks") {
        return;
    }
    let mut net = Net::new("rpnettest");
    // The sentences-* and mariadb images are not here: each service serves its own name
    // with busybox httpd, and `mydb` (in `db`'s network namespace) sleeps.
    let serve = |svc: &str| {
        format!(
            "    command: [sh, -c, \"mkdir -p /www && echo {svc} > /www/index.html && exec httpd -f -p 80 -h /www\"]\n"
        )
    };
    let mut yaml = images(
        &corpus("e2e-fixtures/network-test/compose.yaml"),
        "${IMAGE}",
    );
    yaml = swap(
        &yaml,
        "    network_mode: \"service:db\"\n",
        "    network_mode: \"service:db\"\n    command: [sleep, \"600\"]\n",
    );
    for svc in ["db", "words", "web"] {
        yaml = swap(
            &yaml,
            &format!("  {svc}:\n    image: ${{IMAGE}}\n"),
            &format!("  {svc}:\n    image: ${{IMAGE}}\n{}", serve(svc)),
        );
    }
    let cli = Cli::new(&net, &yaml);
    let _cleanup = Cleanup::new(&net, &cli);
    ok(&cli.run(&net, &["up", "-d"], &[]), "up -d");
    containers(&mut net);
    let get = |from: &str, url: &str| -> Out {
        let started = Instant::now();
        loop {
            let out = cli.run(
                &net,
                &["exec", "-T", from, "wget", "-q", "-O", "-", url],
                &[],
            );
            if out.code == 0 || started.elapsed() > Duration::from_secs(5) {
                return out;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // web → words on `microservices`; words → db on dbnet; mydb shares db's namespace.
    for (from, url, want) in [
        ("web", "http://words/", "words\n"),
        ("words", "http://db/", "db\n"),
        ("mydb", "http://127.0.0.1/", "db\n"),
    ] {
        let out = get(from, url);
        assert_eq!(out.stdout, want, "{from} → {url}: {}", out.stderr);
    }
    // web and db share no network.
    let look = cli.run(&net, &["exec", "-T", "web", "nslookup", "db"], &[]);
    assert_ne!(look.code, 0, "web resolves db: {}", look.stdout);
    // The networks with a `name:` are named so on the host.
    let named: Vec<String> = ["microservices", "closenamenet", "closenamenet-2"]
        .into_iter()
        .filter(|n| net.nets.network(n).unwrap().is_none())
        .map(String::from)
        .collect();
    assert!(named.is_empty(), "no network record named {named:?}");
    down(&cli, &net);
    net.finish();
}
