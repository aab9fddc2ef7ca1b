//! Shared helpers: where the conformance corpus is, and a `wharf` command builder.

use std::path::PathBuf;

/// `../shared/conformance`, found by walking up from the package; a missing corpus fails the
/// test that asked for it (it must never pass silently).
pub fn conformance_dir() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        let candidate = dir.join("shared").join("conformance");
        if candidate.is_dir() {
            return candidate;
        }
        assert!(
            dir.pop(),
            "the conformance corpus (../shared/conformance) was not found"
        );
    }
}

/// The `wharf` binary with a clean environment (only PATH and HOME), so the host's variables
/// never leak into a test.
pub fn wharf() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("wharf").expect("wharf binary");
    cmd.env_clear();
    cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd.env("HOME", "/HOME_DIR");
    cmd
}
