//! The `wharf` binary end to end: output a user sees, exit codes, diagnostics — as snapshots.

use std::path::{Path, PathBuf};

use crate::util::wharf;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Run wharf in `dir`; return (exit code, stdout, stderr) with the fixture path made stable.
fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let (code, out, err) = run_raw(dir, args);
    let clean = |s: String| s.replace(&fixtures().to_string_lossy().to_string(), "[FIXTURES]");
    (code, clean(out), clean(err))
}

fn run_raw(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = wharf()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run wharf");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

#[test]
fn config_yaml_of_basic_fixture() {
    let (code, out, err) = run(&fixtures().join("basic"), &["config"]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("config_basic_yaml", out);
    // An unset variable with no default is not in this file; nothing to warn about.
    assert!(!err.contains("WARN"), "{err}");
}

#[test]
fn config_json_is_the_same_model() {
    let dir = fixtures().join("basic");
    let (_, yaml, _) = run_raw(&dir, &["config"]);
    let (code, json, _) = run_raw(&dir, &["config", "--format", "json"]);
    assert_eq!(code, 0);
    let from_yaml: serde_json::Value = serde_saphyr::from_str(&yaml).expect("yaml output parses");
    let from_json: serde_json::Value = serde_json::from_str(&json).expect("json output parses");
    assert_eq!(from_yaml, from_json);
}

#[test]
fn config_output_is_a_compose_file_that_loads_to_the_same_model() {
    let dir = fixtures().join("basic");
    let (_, first, _) = run_raw(&dir, &["config"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("compose.yaml"), &first).expect("write");
    let (code, second, err) = run_raw(tmp.path(), &["config"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(first, second);
}

#[test]
fn config_queries() {
    let dir = fixtures().join("basic");
    assert_eq!(run(&dir, &["config", "--services"]).1, "api\nweb\n");
    assert_eq!(run(&dir, &["config", "--volumes"]).1, "cache\n");
    assert_eq!(run(&dir, &["config", "--networks"]).1, "default\n");
    assert_eq!(
        run(&dir, &["config", "--images"]).1,
        "busybox:latest\nbusybox:latest\n"
    );
    let (code, out, _) = run(&dir, &["config", "--hash", "*"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("api ") && lines[1].starts_with("web "));
    assert!(
        lines
            .iter()
            .all(|l| l.split(' ').nth(1).is_some_and(|h| h.len() == 64))
    );
    let (_, vars, _) = run(&dir, &["config", "--variables"]);
    insta::assert_snapshot!("config_basic_variables", vars);
}

#[test]
fn config_quiet_exit_codes() {
    let (code, out, _) = run(&fixtures().join("basic"), &["config", "-q"]);
    assert_eq!((code, out.as_str()), (0, ""));
    let (code, _, err) = run(
        &fixtures().join("errors"),
        &["-f", "bad-type.yaml", "config", "-q"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("bad-type.yaml:4:"), "{err}");
}

/// Every user error: one message naming file:line:column, the source line and a caret.
#[test]
fn diagnostics() {
    let dir = fixtures().join("errors");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("errors dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 7);
    for name in names {
        let (code, out, err) = run(&dir, &["-f", &name, "config"]);
        assert_eq!(code, 1, "{name} should fail");
        assert!(out.is_empty(), "{name}: nothing on stdout");
        assert!(
            err.contains(&format!("{name}:")),
            "{name}: the error names the file: {err}"
        );
        insta::assert_snapshot!(
            format!("diagnostic_{}", name.trim_end_matches(".yaml")),
            err
        );
    }
}

#[test]
fn graph_dot_and_mermaid() {
    let dir = fixtures().join("basic");
    let (code, dot, _) = run(&dir, &["graph"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!("graph_basic_dot", dot);
    let (code, mermaid, _) = run(&dir, &["graph", "--format", "mermaid"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!("graph_basic_mermaid", mermaid);
}

#[test]
fn compose_file_from_stdin_and_missing_file() {
    let dir = fixtures().join("basic");
    let out = wharf()
        .current_dir(&dir)
        .args(["-f", "-", "config", "--services"])
        .write_stdin("services:\n  only:\n    image: busybox\n")
        .output()
        .expect("run");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "only\n");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (code, _, err) = run(tmp.path(), &["config"]);
    assert_eq!(code, 1);
    assert!(err.contains("no configuration file provided"), "{err}");
}

#[test]
fn unset_variable_warns_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        tmp.path().join("compose.yaml"),
        "services:\n  a:\n    image: busybox:${TAG}\n  b:\n    image: busybox:${TAG}\n",
    )
    .expect("write");
    let (code, out, err) = run(tmp.path(), &["config", "--images"]);
    assert_eq!(code, 0);
    assert_eq!(out, "busybox:\nbusybox:\n");
    assert_eq!(
        err.matches("The \"TAG\" variable is not set").count(),
        1,
        "{err}"
    );
}

#[test]
fn project_name_rules() {
    let dir = fixtures().join("basic");
    let (code, out, _) = run(&dir, &["-p", "other", "config"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("name: other\n"), "{out}");
    let (code, _, err) = run(&dir, &["-p", "Bad Name", "config"]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid project name"), "{err}");
}

#[test]
fn broken_pipe_exits_zero() {
    // `wharf config | head -c0`: the reader is gone before wharf writes; that is not an error.
    let bin = assert_cmd::cargo::cargo_bin("wharf");
    let mut child = std::process::Command::new(bin)
        .arg("config")
        .current_dir(fixtures().join("basic"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn discovery_searches_parents_and_merges_the_override_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("My_Project.v2");
    std::fs::create_dir_all(root.join("sub/deeper")).expect("mkdir");
    std::fs::write(
        root.join("compose.yaml"),
        "services:\n  web:\n    image: busybox\n",
    )
    .expect("write");
    std::fs::write(
        root.join("compose.override.yaml"),
        "services:\n  web:\n    image: nginx\n",
    )
    .expect("write");
    let (code, out, err) = run_raw(&root.join("sub/deeper"), &["config", "--images"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "nginx\n");
    // The project name comes from the directory, normalized like Docker Compose does.
    let (_, out, _) = run_raw(&root.join("sub/deeper"), &["config"]);
    assert!(out.starts_with("name: my_projectv2\n"), "{out}");
    // COMPOSE_FILE (with a custom separator) replaces discovery.
    std::fs::write(
        root.join("other.yaml"),
        "services:\n  api:\n    image: busybox\n",
    )
    .expect("write");
    let out = wharf()
        .current_dir(&root)
        .env("COMPOSE_FILE", "compose.yaml;other.yaml")
        .env("COMPOSE_PATH_SEPARATOR", ";")
        .args(["config", "--services"])
        .output()
        .expect("run");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "api\nweb\n");
}

#[test]
fn extends_cycle_is_reported() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        tmp.path().join("compose.yaml"),
        "services:\n  a:\n    image: busybox\n    extends: b\n  b:\n    extends: a\n",
    )
    .expect("write");
    let (code, _, err) = run_raw(tmp.path(), &["config"]);
    assert_eq!(code, 1);
    assert!(err.contains("extends cycle detected: a -> b -> a"), "{err}");
}

#[test]
fn profiles_and_environment_queries() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        tmp.path().join("compose.yaml"),
        "services:\n  a:\n    image: busybox\n  b:\n    image: busybox\n    profiles: [debug, tools]\n",
    )
    .expect("write");
    std::fs::write(tmp.path().join(".env"), "FROM_DOTENV=1\n").expect("write");
    let (_, out, _) = run_raw(tmp.path(), &["config", "--profiles"]);
    assert_eq!(out, "debug\ntools\n");
    let (_, out, _) = run_raw(tmp.path(), &["config", "--services"]);
    assert_eq!(out, "a\n");
    let (_, out, _) = run_raw(tmp.path(), &["--profile", "tools", "config", "--services"]);
    assert_eq!(out, "a\nb\n");
    let (_, out, _) = run_raw(tmp.path(), &["config", "--environment"]);
    assert!(out.lines().any(|l| l == "FROM_DOTENV=1"), "{out}");
}

#[test]
fn no_interpolate_no_normalize_no_path_resolution() {
    let dir = fixtures().join("basic");
    let (code, out, _) = run_raw(&dir, &["config", "--no-interpolate"]);
    assert_eq!(code, 0);
    assert!(out.contains("GREETING: $${GREETING:-hello}"), "{out}");
    let (_, out, _) = run_raw(&dir, &["config", "--no-normalize"]);
    assert!(
        !out.contains("basic_default"),
        "no implicit default network: {out}"
    );
    assert!(!out.contains("default: null"), "{out}");
    let (_, out, _) = run_raw(&dir, &["config", "--no-path-resolution"]);
    assert!(out.contains("source: ./html"), "{out}");
    let (_, out, _) = run_raw(&dir, &["config"]);
    assert!(
        out.contains(&format!("source: {}/html", dir.display())),
        "{out}"
    );
}

#[test]
fn plan_of_a_project_nothing_of_which_exists_yet() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/three-tier");
    let root = tempfile::tempdir().unwrap();
    let out = wharf()
        .current_dir(&example)
        .env("WHARF_ROOT", root.path())
        .args(["plan"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // Changes are pending: exit 2, as `terraform plan -detailed-exitcode` does.
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    insta::assert_snapshot!("plan_three_tier_fresh", text);
    let json = wharf()
        .current_dir(&example)
        .env("WHARF_ROOT", root.path())
        .args(["plan", "--format", "json", "--scale", "web=2"])
        .output()
        .unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let webs = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["operation"] == "CreateContainer" && s["resource"].as_str().unwrap().contains("-web-")
        })
        .count();
    assert_eq!(webs, 2);
    // `plan SERVICE --no-deps`: that service and the network it uses, nothing else.
    let one = wharf()
        .current_dir(&example)
        .env("WHARF_ROOT", root.path())
        .args(["plan", "api", "--no-deps"])
        .output()
        .unwrap();
    insta::assert_snapshot!(String::from_utf8_lossy(&one.stdout), @r"
    [] -> #1 network:three-tier_back, CreateNetwork, not found
    [1] -> #2 container:three-tier-api-1, CreateContainer, not found
    [2] -> #3 container:three-tier-api-1, StartContainer, created
    ");
    let unknown = wharf()
        .current_dir(&example)
        .env("WHARF_ROOT", root.path())
        .args(["plan", "nosuch"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no such service: nosuch"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
    // Nothing was created by planning.
    assert!(std::fs::read_dir(root.path()).unwrap().next().is_none());
}
