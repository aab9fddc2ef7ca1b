//! `wharf run` end to end, as root, through the real CLI in a network namespace the test
//! makes as "the host": one-off containers in the foreground (exit code, stdout and stderr
//! apart, stdin, a terminal) and detached (a published port, names on the network), their
//! dependencies brought up (or not, with `--no-deps`), `up` leaving them alone, `run -d
//! --rm` cleaned up by the next `up`, and `down` removing them. The harness checks at the
//! end that nothing is left.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::networking::{Net, http_get, wait_http};
use crate::runtime::{IMAGE, is_root};
use crate::up::{Cleanup, Cli, containers};

fn project() -> String {
    format!(
        r#"services:
  web:
    image: {IMAGE}
    command: [httpd, -f, -p, "80", -h, /srv]
    ports: ["127.0.0.1:8091:80"]
    environment: {{A: "1"}}
    depends_on: [db]
  db:
    image: {IMAGE}
    entrypoint: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
"#
    )
}

/// `wharf run ARGS…` with `input` on its stdin (a pipe, not a terminal).
fn run_with_stdin(net: &Net, cli: &Cli, args: &[&str], input: &str) -> (i32, String) {
    let mut child = Command::new("nsenter")
        .arg(format!("--net={}", net.hostns.display()))
        .arg(env!("CARGO_BIN_EXE_wharf"))
        .env("WHARF_ROOT", net.host.root())
        .arg("-f")
        .arg(&cli.file)
        .args(["-p", net.host.project_name(), "run"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn one_off_containers_in_the_foreground_and_detached() {
    if !is_root("one_off_containers_in_the_foreground_and_detached") {
        return;
    }
    let mut net = Net::new("run");
    let cli = Cli::new(&net, &project());
    let _cleanup = Cleanup::new(&net, &cli);
    let p = net.host.project_name().to_string();

    // `--no-deps`: the one-off alone (its network made for it), removed with `--rm`.
    let alone = cli.run(&net, &["run", "--rm", "--no-deps", "web", "true"], &[]);
    assert_eq!(alone.code, 0, "{}", alone.stderr);
    assert!(
        containers(&mut net).is_empty(),
        "{:?}",
        containers(&mut net)
    );

    // In the foreground: the dependency comes up first, the command's overrides apply,
    // stdout and stderr stay apart, and its exit code is ours.
    let fg = cli.run(
        &net,
        &[
            "run",
            "--rm",
            "-e",
            "B=2",
            "-w",
            "/tmp",
            "web",
            "sh",
            "-c",
            "echo out; echo err >&2; echo A=$A B=$B in $(pwd); exit 3",
        ],
        &[],
    );
    assert_eq!(fg.code, 3, "{}", fg.stderr);
    assert_eq!(fg.stdout, "out\nA=1 B=2 in /tmp\n");
    assert!(fg.stderr.contains("err\n"), "{}", fg.stderr);
    let names: Vec<String> = containers(&mut net).into_keys().collect();
    assert_eq!(names, [format!("{p}-db-1")], "only the dependency is left");

    // Our stdin is its stdin.
    let (code, echoed) =
        run_with_stdin(&net, &cli, &["--rm", "-T", "web", "cat"], "hello\nworld\n");
    assert_eq!((code, echoed.as_str()), (0, "hello\nworld\n"));

    // With a terminal (`script` gives us one): the container gets one too, and keys.
    let inner = format!(
        "nsenter --net={} {} -f {} -p {p} run --rm web sh -c 'test -t 0 && echo has-a-tty; tty; read line; echo got-$line; exit 4'",
        net.hostns.display(),
        env!("CARGO_BIN_EXE_wharf"),
        cli.file.display(),
    );
    let mut script = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .env("WHARF_ROOT", net.host.root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut keys = script.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    keys.write_all(b"typed\n").unwrap();
    let out = script.wait_with_output().unwrap();
    drop(keys);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{shown}");
    assert!(shown.contains("has-a-tty"), "{shown}");
    // Its own terminal, in its own devpts, found by name as on a host of its own.
    assert!(shown.contains("/dev/pts/0"), "{shown}");
    assert!(shown.contains("got-typed"), "{shown}");

    // Detached: its name printed, its port published, its name (not the service's)
    // known on the network.
    let bg = cli.run(
        &net,
        &[
            "run",
            "-d",
            "--name",
            "bg-one",
            "-p",
            "127.0.0.1:8092:80",
            "web",
        ],
        &[],
    );
    assert_eq!(
        (bg.code, bg.stdout.as_str()),
        (0, "bg-one\n"),
        "{}",
        bg.stderr
    );
    let port = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8092);
    wait_http(&net.hostns, port);
    assert_eq!(http_get(&net.hostns, port).unwrap(), "hello from wharf");
    let names = cli.run(
        &net,
        &[
            "run", "--rm", "-T", "web", "sh", "-c",
            "ping -c1 -W1 bg-one >/dev/null && ping -c1 -W1 db >/dev/null && ! ping -c1 -W1 web 2>/dev/null",
        ],
        &[],
    );
    assert_eq!(names.code, 0, "{}{}", names.stdout, names.stderr);
    let taken = cli.run(&net, &["run", "-d", "--name", "bg-one", "web"], &[]);
    assert_eq!(taken.code, 1);
    assert!(taken.stderr.contains("already in use"), "{}", taken.stderr);

    // `run -d --rm` of a command that ends: the next `up` removes it. `up` makes the
    // service's own replica and leaves the one-off alone (no orphan, not recreated).
    let done = cli.run(
        &net,
        &["run", "-d", "--rm", "--name", "done-one", "web", "true"],
        &[],
    );
    assert_eq!(done.code, 0, "{}", done.stderr);
    let deadline = Instant::now() + Duration::from_secs(10);
    while cli
        .run(&net, &["ps", "--status", "exited", "-q"], &[])
        .stdout
        .is_empty()
    {
        assert!(Instant::now() < deadline, "done-one never exited");
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = containers(&mut net);
    let up = cli.run(&net, &["up", "-d"], &[]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    assert!(!up.stderr.contains("orphan"), "{}", up.stderr);
    let after = containers(&mut net);
    assert_eq!(
        after.get("bg-one"),
        before.get("bg-one"),
        "the one-off was left alone"
    );
    assert!(!after.contains_key("done-one"), "{after:?}");
    assert!(after.contains_key(&format!("{p}-web-1")), "{after:?}");

    // `down` removes the one-offs with the rest.
    let down = cli.run(&net, &["down", "-t", "1"], &[]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert!(containers(&mut net).is_empty());
    net.finish();
}
