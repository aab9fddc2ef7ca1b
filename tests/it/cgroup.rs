//! `runtime::cgroupdir` against the host's real cgroups (root only; anyone else gets a loud
//! `SKIPPED (needs root)`). Each test uses its own project (`wharf-it-cg-<pid>-<n>`), reaps
//! every child it starts, and checks that it leaves no cgroup behind; a [`Scene`] cleans up
//! even when an assertion fails half-way.

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use wharf::runtime::cgroup::{CgroupVersion, CgroupWrite, Resources};
use wharf::runtime::cgroupdir::{
    CgroupError, ContainerCgroup, project_cgroups, project_containers,
};
use wharf::runtime::cgroupfs::Hierarchies;

const MIB: u64 = 1024 * 1024;

fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        eprintln!("SKIPPED (needs root): the cgroup tests create real cgroups");
        false
    }
}

macro_rules! needs_root {
    () => {
        if !is_root() {
            return;
        }
    };
}

fn host() -> Hierarchies {
    Hierarchies::read(Path::new("/proc/self/mountinfo")).expect("mountinfo")
}

fn write(file: &'static str, value: impl ToString, if_present: bool) -> CgroupWrite {
    CgroupWrite {
        file: file.into(),
        value: value.to_string(),
        if_present,
    }
}

/// A memory limit (memory+swap equal when the kernel accounts swap) and a pids limit, for
/// either cgroup version.
fn limits(memory: u64, pids: u64) -> Resources {
    Resources {
        v1: vec![
            write("memory.limit_in_bytes", memory, false),
            write("memory.memsw.limit_in_bytes", memory, true),
            write("pids.max", pids, false),
        ],
        v2: vec![
            write("memory.max", memory, false),
            write("memory.swap.max", 0, true),
            write("pids.max", pids, false),
        ],
        ..Resources::default()
    }
}

/// One test's project: its children and cgroups, cleaned up on drop whatever happened.
struct Scene {
    h: Hierarchies,
    project: String,
    children: Vec<Child>,
}

impl Scene {
    fn new(h: Hierarchies) -> Scene {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        Scene {
            h,
            project: format!("wharf-it-cg-{}-{n}", std::process::id()),
            children: Vec::new(),
        }
    }

    fn rel(&self, container: &str) -> String {
        format!("wharf/{}/{container}", self.project)
    }

    fn create(&self, container: &str, res: &Resources) -> ContainerCgroup {
        let (cg, warnings) =
            ContainerCgroup::create(&self.h, &self.rel(container), res).expect("create");
        eprintln!("{}: warnings {warnings:?}", self.rel(container));
        cg
    }

    /// Starts `sh -c script` with a pipe on stdin, so a script that begins with `read x`
    /// waits until [`Scene::go`] (after it has joined its cgroup).
    fn spawn(&mut self, script: &str) -> usize {
        let child = Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sh");
        self.children.push(child);
        self.children.len() - 1
    }

    fn pid(&self, i: usize) -> i32 {
        i32::try_from(self.children[i].id()).expect("pid")
    }

    fn go(&mut self, i: usize) {
        let mut stdin = self.children[i].stdin.take().expect("stdin");
        stdin.write_all(b"go\n").expect("write to child");
    }

    /// Waits for child `i` (bounded), returning its status and output.
    fn wait(&mut self, i: usize, limit: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + limit;
        let child = &mut self.children[i];
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                let mut out = String::new();
                if let Some(mut stdout) = child.stdout.take() {
                    let _ = stdout.read_to_string(&mut out);
                }
                if let Some(mut stderr) = child.stderr.take() {
                    let _ = stderr.read_to_string(&mut out);
                }
                return (status, out);
            }
            assert!(
                Instant::now() < deadline,
                "child {} still running after {limit:?}",
                child.id()
            );
            sleep(Duration::from_millis(20));
        }
    }

    /// The checks every test ends with: every child reaped, the given PIDs (grandchildren)
    /// gone, and no cgroup of the project left in any hierarchy.
    fn finish(mut self, others: &[i32]) {
        for i in 0..self.children.len() {
            self.wait(i, Duration::from_secs(10));
        }
        for pid in others {
            assert!(!alive(*pid), "process {pid} is still alive");
        }
        let left = project_cgroups(&host(), &self.project);
        assert!(left.is_empty(), "cgroups left behind: {left:?}");
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        // Kill by our own handles (a reaped child is not signalled again).
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for rel in project_containers(&host(), &self.project) {
            if let Ok(cg) = ContainerCgroup::open(&host(), &rel) {
                let _ = cg.kill_all();
                let _ = cg.remove();
            }
        }
    }
}

/// Whether `pid` is a live process (a zombie, waiting to be reaped by init, is not).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
    }
}

/// Polls `cg.procs()` until it has at least `n` processes.
fn wait_for_procs(cg: &ContainerCgroup, n: usize) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let procs = cg.procs().expect("procs");
        if procs.len() >= n {
            return procs;
        }
        assert!(
            Instant::now() < deadline,
            "only {procs:?} joined, wanted {n}"
        );
        sleep(Duration::from_millis(10));
    }
}

fn killed(status: ExitStatus) -> bool {
    status.signal() == Some(nix::libc::SIGKILL)
}

#[test]
fn create_limits_join_kill_and_remove() {
    needs_root!();
    let mut s = Scene::new(host());
    let cg = s.create("web-1", &limits(32 * MIB, 16));
    let rel = s.rel("web-1");
    match s.h.version() {
        CgroupVersion::V1 => {
            let mem = cg.v1_dir("memory").expect("memory hierarchy");
            let limit = std::fs::read_to_string(mem.join("memory.limit_in_bytes")).unwrap();
            assert_eq!(limit.trim(), (32 * MIB).to_string());
            let pids = cg.v1_dir("pids").expect("pids hierarchy");
            assert_eq!(
                std::fs::read_to_string(pids.join("pids.max"))
                    .unwrap()
                    .trim(),
                "16"
            );
        }
        CgroupVersion::V2 => {
            let dir = cg.unified_dir().expect("unified");
            let limit = std::fs::read_to_string(dir.join("memory.max")).unwrap();
            assert_eq!(limit.trim(), (32 * MIB).to_string());
        }
    }

    let i = s.spawn("exec sleep 60");
    let pid = s.pid(i);
    cg.join(pid).expect("join");
    assert_eq!(cg.procs().unwrap(), [pid]);
    let lines = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let member = |prefix: &str| {
        lines
            .lines()
            .filter_map(|l| l.split_once(':').map(|(_, rest)| rest))
            .any(|rest| rest == format!("{prefix}:/{rel}"))
    };
    if s.h.version() == CgroupVersion::V1 {
        assert!(member("memory"), "{lines}");
        assert!(member("pids"), "{lines}");
        assert!(member("name=systemd") || !s.h.v1.contains_key("name=systemd"));
    }
    if s.h.v2.is_some() {
        assert!(member(""), "{lines}");
    }

    cg.kill_all().expect("kill_all");
    assert!(cg.procs().unwrap().is_empty());
    let (status, _) = s.wait(i, Duration::from_secs(5));
    assert!(killed(status), "{status:?}");
    assert_eq!(cg.oom_kills().unwrap(), 0);
    cg.remove().expect("remove");
    cg.remove().expect("remove is idempotent");
    s.finish(&[pid]);
}

#[test]
fn the_pids_limit_refuses_forks() {
    needs_root!();
    let mut s = Scene::new(host());
    let cg = s.create("forker", &limits(64 * MIB, 5));
    let i = s.spawn(
        "read x; i=0; while [ $i -lt 10 ]; do sleep 60 >/dev/null 2>&1 & i=$((i+1)); done; echo forked all",
    );
    cg.join(s.pid(i)).expect("join");
    s.go(i);
    let (status, output) = s.wait(i, Duration::from_secs(10));
    assert!(!status.success(), "{status:?}: {output}");
    assert!(!output.contains("forked all"), "{output}");
    assert!(output.to_lowercase().contains("fork"), "{output}");
    // The shell is gone; the sleeps it managed to start are all there is.
    let sleeps = cg.procs().unwrap();
    assert!(!sleeps.is_empty() && sleeps.len() < 5, "{sleeps:?}");
    cg.kill_all().expect("kill_all");
    cg.remove().expect("remove");
    s.finish(&sleeps);
}

#[test]
fn the_oom_killer_fires_and_is_counted() {
    needs_root!();
    let mut s = Scene::new(host());
    let cg = s.create("hog", &limits(16 * MIB, 64));
    let i = s.spawn("read x; exec tail /dev/zero");
    let pid = s.pid(i);
    cg.join(pid).expect("join");
    s.go(i);
    let (status, output) = s.wait(i, Duration::from_secs(60));
    assert!(killed(status), "{status:?}: {output}");
    assert!(cg.oom_kills().unwrap() >= 1);
    cg.kill_all().expect("kill_all");
    cg.remove().expect("remove");
    s.finish(&[pid]);
}

/// Several processes, some of them grandchildren, in every kill strategy: `cgroup.kill`
/// (kernel ≥ 5.14 with the unified hierarchy), the v1 freezer (unified hidden), and plain
/// signals (unified and freezer hidden).
#[test]
fn kill_all_empties_a_cgroup_with_every_strategy() {
    needs_root!();
    let full = host();
    let mut no_unified = full.clone();
    no_unified.v2 = None;
    let mut signals_only = no_unified.clone();
    signals_only.v1.remove("freezer");
    for (what, h) in [
        ("cgroup.kill", full),
        ("freezer", no_unified),
        ("signals", signals_only),
    ] {
        if h.v1.is_empty() && h.v2.is_none() {
            eprintln!("SKIPPED {what}: not available on this host");
            continue;
        }
        let mut s = Scene::new(h);
        let cg = s.create("many", &Resources::default());
        let mut pids = Vec::new();
        for script in [
            "read x; exec >/dev/null 2>&1; sleep 60 & sleep 60 & sleep 60 & wait",
            "exec sleep 60",
            "exec sleep 60",
        ] {
            let i = s.spawn(script);
            cg.join(s.pid(i)).expect("join");
            pids.push(i);
        }
        s.go(pids[0]);
        let all = wait_for_procs(&cg, 6);
        cg.kill_all().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(cg.procs().unwrap().is_empty(), "{what}");
        for i in pids {
            let (status, _) = s.wait(i, Duration::from_secs(5));
            assert!(killed(status), "{what}: {status:?}");
        }
        cg.remove().expect("remove");
        s.finish(&all);
    }
}

#[test]
fn a_value_the_kernel_refuses_fails_and_leaves_nothing() {
    needs_root!();
    let s = Scene::new(host());
    let res = Resources {
        v1: vec![
            write("memory.limit_in_bytes", 32 * MIB, false),
            write("pids.max", "lots", false),
        ],
        v2: vec![
            write("memory.max", 32 * MIB, false),
            write("pids.max", "lots", false),
        ],
        ..Resources::default()
    };
    let err = ContainerCgroup::create(&s.h, &s.rel("bad"), &res).expect_err("pids.max=lots");
    let text = err.to_string();
    assert!(text.contains("pids.max") && text.contains("lots"), "{text}");
    assert!(matches!(err, CgroupError::Write { .. }), "{err:?}");
    s.finish(&[]);
}

#[test]
fn containers_are_found_by_name_and_parents_outlive_their_siblings() {
    needs_root!();
    let s = Scene::new(host());
    let none = Resources::default();
    s.create("a", &none);
    s.create("b", &none);
    assert_eq!(
        project_containers(&s.h, &s.project),
        [s.rel("a"), s.rel("b")]
    );
    // Found again from names alone, as `down` does after a crash.
    let a = ContainerCgroup::open(&s.h, &s.rel("a")).unwrap();
    a.kill_all().unwrap();
    a.remove().unwrap();
    assert_eq!(project_containers(&s.h, &s.project), [s.rel("b")]);
    let b = ContainerCgroup::open(&s.h, &s.rel("b")).unwrap();
    for dir in b.dirs() {
        assert!(dir.is_dir(), "{}", dir.display());
        assert!(dir.parent().unwrap().is_dir());
    }
    b.remove().unwrap();
    b.remove().unwrap();
    s.finish(&[]);
}
