//! The pure pipeline (`compose`, `graph`, `plan`) must never import the side-effect modules:
//! that is what keeps the planner testable without root (DESIGN.md, "The pipeline").

use std::path::Path;

const PURE: [&str; 3] = ["compose", "graph", "plan"];
const SIDE_EFFECTS: [&str; 7] = [
    "apply", "runtime", "network", "image", "state", "watch", "cli",
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::<module>` / `super::<module>` path that names a side-effect module.
fn offending_lines(text: &str) -> Vec<String> {
    let mut bad = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for m in SIDE_EFFECTS {
            if code.contains(&format!("crate::{m}")) || code.contains(&format!("wharf::{m}")) {
                bad.push(line.trim().to_string());
            }
        }
    }
    bad
}

#[test]
fn pure_modules_do_not_import_side_effect_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = 0;
    for m in PURE {
        let mut files = Vec::new();
        rust_files(&src.join(m), &mut files);
        assert!(!files.is_empty(), "module {m} has no files under src/{m}");
        for f in files {
            let text = std::fs::read_to_string(&f).expect("read source");
            let bad = offending_lines(&text);
            assert!(
                bad.is_empty(),
                "{} imports a side-effect module: {bad:?}",
                f.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 3);
}

#[test]
fn the_check_catches_an_import() {
    // The check itself must be able to fail.
    assert_eq!(offending_lines("use crate::runtime::Runtime;").len(), 1);
    assert_eq!(
        offending_lines("use crate::compose::model; // crate::network in a comment").len(),
        0
    );
}

#[test]
fn the_network_layers_that_decide_touch_no_other_side_effect_module() {
    // names.rs and ipam.rs are pure (src/network/mod.rs): they may read the Compose model
    // but none of the modules that act on the host.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/network");
    for file in ["names.rs", "ipam.rs"] {
        let text = std::fs::read_to_string(dir.join(file)).expect("read source");
        let bad: Vec<String> = offending_lines(&text)
            .into_iter()
            .filter(|line| !line.contains("crate::network") && !line.contains("wharf::network"))
            .collect();
        assert!(
            bad.is_empty(),
            "src/network/{file} imports a side-effect module: {bad:?}"
        );
    }
}
