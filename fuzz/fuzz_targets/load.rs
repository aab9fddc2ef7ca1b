//! Fuzz the whole loader: any bytes as a Compose file (plus an override file and a `.env`),
//! loaded, normalized and validated. The property: it returns Ok or a ComposeError, never
//! panics, and a ComposeError always renders.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf::compose::{self, LoadOptions, NormalizeOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Split the input into compose file, override file and .env at NUL-free markers so the
    // fuzzer can reach merging and dotenv parsing too.
    let mut parts = text.splitn(3, "\n---8<---\n");
    let main = parts.next().unwrap_or("");
    let over = parts.next();
    let dotenv = parts.next();
    thread_local! {
        static DIR: tempfile_dir::Dir = tempfile_dir::Dir::new();
    }
    DIR.with(|dir| {
        let root = dir.path();
        let _ = std::fs::write(root.join("compose.yaml"), main);
        let mut files = vec![root.join("compose.yaml")];
        match over {
            Some(o) => {
                let _ = std::fs::write(root.join("override.yaml"), o);
                files.push(root.join("override.yaml"));
            }
            None => {
                let _ = std::fs::remove_file(root.join("override.yaml"));
            }
        }
        match dotenv {
            Some(d) => {
                let _ = std::fs::write(root.join(".env"), d);
            }
            None => {
                let _ = std::fs::remove_file(root.join(".env"));
            }
        }
        let opts = LoadOptions { files, cwd: root.to_path_buf(), ..LoadOptions::default() };
        if let Err(e) = compose::load(&opts, &Default::default(), NormalizeOptions::default()) {
            let _ = e.render();
        }
    });
});

mod tempfile_dir {
    /// A per-process scratch directory (no extra dependency).
    pub struct Dir(std::path::PathBuf);
    impl Dir {
        pub fn new() -> Self {
            let p = std::env::temp_dir().join(format!("wharf-fuzz-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&p);
            Dir(p)
        }
        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
