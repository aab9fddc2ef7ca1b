//! `wharf image …` end to end, on the busybox fixture image, in a temporary state root.

use crate::util::wharf;

#[test]
fn fixture_load_ls_inspect_rm_prune() {
    assert!(
        std::path::Path::new("/bin/busybox").exists(),
        "/bin/busybox is missing: apt-get install busybox-static (scripts/test.sh does)"
    );
    let root = tempfile::tempdir().expect("state root");
    let work = tempfile::tempdir().expect("work dir");
    let layout = work.path().join("layout");
    let run = |args: &[&str]| {
        let out = wharf()
            .env("WHARF_ROOT", root.path())
            .args(args)
            .output()
            .expect("run");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = run(&["__fixture", "--out", layout.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(&["image", "load", "--dir", layout.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("Loaded image: wharf.test/busybox:1 (sha256:"),
        "{out}"
    );
    let (_, out, _) = run(&["image", "ls"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("wharf.test/busybox:1\tsha256:")),
        "{out}"
    );
    let (code, out, _) = run(&["image", "inspect", "wharf.test/busybox:1"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("inspect is JSON");
    assert_eq!(v["Config"]["config"]["WorkingDir"], "/srv");
    assert_eq!(v["Layers"].as_array().map(Vec::len), Some(2));
    assert!(v["Healthcheck"].is_object(), "{out}");
    // A missing image is an error that names it.
    let (code, _, err) = run(&["image", "inspect", "nope:1"]);
    assert_eq!(code, 1);
    assert!(err.contains("no such image: nope:1"), "{err}");
    let (code, _, _) = run(&["image", "rm", "wharf.test/busybox:1"]);
    assert_eq!(code, 0);
    let (_, out, _) = run(&["image", "prune"]);
    assert!(out.starts_with("Removed "), "{out}");
    let (_, out, _) = run(&["image", "ls", "-q"]);
    assert_eq!(out, "");
    let blobs = std::fs::read_dir(root.path().join("images/blobs/sha256"))
        .expect("blobs dir")
        .count();
    assert_eq!(blobs, 0, "prune leaves no blob behind");
}
