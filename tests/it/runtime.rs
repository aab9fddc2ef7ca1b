//! The container runtime against the real kernel (root only): each test gets its own state
//! root, a unique project name and the busybox fixture image, and `Host::finish` asserts
//! that nothing it made is left: no container process or supervisor, no cgroup, no mount
//! under the state root.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use wharf::compose::{self, Environment, LoadOptions, NormalizeOptions};
use wharf::image::fixture::{FixtureSpec, build_busybox_layout};
use wharf::image::layout::load_layout;
use wharf::image::store::Store;
use wharf::runtime::cgroupdir::project_cgroups;
use wharf::runtime::cgroupfs::Hierarchies;
use wharf::runtime::container::{ProcRef, State, Status};
use wharf::runtime::linux::{Naming, prepare};
use wharf::runtime::nsexec::Request;
use wharf::runtime::{CreateOptions, Runtime};

pub const IMAGE: &str = "wharf.test/busybox:1";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Whether root tests can run here; says so loudly when not.
pub fn is_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIPPED {test}: needs root (CI runs it as root)");
    false
}

pub struct Host {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub rt: Runtime,
    pub project: String,
    pub cgroups: Hierarchies,
    ids: Vec<String>,
    supervisors: Vec<ProcRef>,
    inits: Vec<ProcRef>,
    /// Namespaces the containers' first processes had that the host does not share.
    namespaces: std::collections::BTreeSet<String>,
    finished: bool,
}

impl Host {
    pub fn new(tag: &str) -> Host {
        let dir = tempfile::Builder::new()
            .prefix("wharf-it-rt-")
            .tempdir()
            .expect("tempdir");
        let layout = dir.path().join("layout");
        build_busybox_layout(
            &FixtureSpec {
                busybox: Path::new("/bin/busybox"),
                tag: IMAGE,
            },
            &layout,
        )
        .expect("the fixture image (needs busybox-static)");
        let store = Store::open(&dir.path().join("images")).expect("store");
        load_layout(&store, &layout, None).expect("load fixture");
        let rt = Runtime::new(dir.path(), Path::new(env!("CARGO_BIN_EXE_wharf")));
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let project = format!("whit-{tag}-{}-{n}", std::process::id());
        let cgroups = Hierarchies::read(Path::new("/proc/self/mountinfo")).expect("cgroups");
        Host {
            dir,
            store,
            rt,
            project,
            cgroups,
            ids: Vec::new(),
            supervisors: Vec::new(),
            inits: Vec::new(),
            namespaces: Default::default(),
            finished: false,
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Loads a Compose file (the `services:` part is `yaml`) as this host's project.
    pub fn project(&self, yaml: &str) -> compose::Project {
        let pdir = self.dir.path().join("project");
        fs::create_dir_all(&pdir).unwrap();
        fs::write(pdir.join("compose.yaml"), yaml).unwrap();
        let opts = LoadOptions {
            files: vec![pdir.join("compose.yaml")],
            project_name: Some(self.project.clone()),
            cwd: pdir.clone(),
            ..LoadOptions::default()
        };
        let env = Environment::default();
        compose::load(&opts, &env, NormalizeOptions::default())
            .unwrap_or_else(|e| panic!("{e:?}"))
            .project
    }

    /// Creates replica 1 of `service` without starting it.
    pub fn create(&mut self, project: &compose::Project, service: &str) -> String {
        self.create_joining(project, service, &[])
    }

    /// Creates replica 1 of `service`, sharing namespaces with the containers named:
    /// (`service:db`, container id) pairs.
    pub fn create_joining(
        &mut self,
        project: &compose::Project,
        service: &str,
        joins: &[(&str, &str)],
    ) -> String {
        self.create_with(project, service, 1, |_| CreateOptions {
            joins: joins
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..CreateOptions::default()
        })
    }

    /// Creates `replica` of `service` with the options `options` gives for its spec (the
    /// image's layers are filled in).
    pub fn create_with(
        &mut self,
        project: &compose::Project,
        service: &str,
        replica: u64,
        options: impl FnOnce(&wharf::runtime::spec::ContainerSpec) -> CreateOptions,
    ) -> String {
        let prepared = prepare(
            project,
            Naming {
                service,
                replica,
                container_name: None,
                id: None,
                volumes_from: &[],
                anonymous_volumes: None,
            },
            &self.store,
            self.cgroups.version(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let id = prepared.spec.id.clone();
        let options = CreateOptions {
            layers: prepared.layers.clone(),
            ..options(&prepared.spec)
        };
        self.rt
            .create(&prepared.spec, &options)
            .unwrap_or_else(|e| panic!("{e}"));
        self.ids.push(id.clone());
        id
    }

    /// Starts container `id` and tracks its processes for the leak check.
    pub fn start(&mut self, id: &str) {
        let state = self.rt.start(id).unwrap_or_else(|e| panic!("{e}"));
        self.track(&state);
    }

    /// The project name (unique per test).
    pub fn project_name(&self) -> &str {
        &self.project
    }

    /// Creates and starts replica 1 of `service`.
    pub fn run(&mut self, project: &compose::Project, service: &str) -> String {
        let id = self.create(project, service);
        let state = self.rt.start(&id).unwrap_or_else(|e| panic!("{e}"));
        self.track(&state);
        id
    }

    pub fn track(&mut self, state: &State) {
        self.supervisors.extend(state.supervisor);
        self.inits.extend(state.init);
        if let Some(init) = state.init {
            for ns in NAMESPACES {
                let theirs = fs::read_link(format!("/proc/{}/ns/{ns}", init.pid));
                let ours = fs::read_link(format!("/proc/self/ns/{ns}"));
                if let (Ok(theirs), Ok(ours)) = (theirs, ours) {
                    if theirs != ours {
                        self.namespaces
                            .insert(theirs.to_string_lossy().into_owned());
                    }
                }
            }
        }
    }

    pub fn state(&mut self, id: &str) -> State {
        let s = self.rt.state(id).unwrap();
        self.track(&s);
        s
    }

    /// Waits until `pred` holds for the container's state (fails after `limit`).
    pub fn wait_for(&mut self, id: &str, limit: Duration, pred: impl Fn(&State) -> bool) -> State {
        let end = Instant::now() + limit;
        loop {
            let s = self.state(id);
            if pred(&s) {
                return s;
            }
            assert!(Instant::now() < end, "timed out; last state: {s:#?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_exited(&mut self, id: &str, limit: Duration) -> State {
        self.wait_for(id, limit, |s| s.status == Status::Exited)
    }

    /// The container's log as text, stdout and stderr interleaved in order.
    pub fn log_text(&self, id: &str) -> String {
        self.rt
            .logs(id)
            .unwrap()
            .into_iter()
            .map(|e| e.log)
            .collect()
    }

    /// Stops removing the containers at the end (something else removed them, like
    /// `wharf down`); the leak checks still run.
    pub fn forget_containers(&mut self) {
        self.ids.clear();
    }

    /// Rewrites one of the container's /etc files.
    pub fn rewrite_etc(&self, id: &str, file: wharf::runtime::spec::EtcFile, content: &str) {
        self.rt
            .rewrite_etc(id, file, content)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Runs `args` in the container, returning the exit code.
    pub fn exec(&self, id: &str, request: Request) -> i32 {
        self.rt.exec(id, &request).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Removes every container and asserts that nothing is left.
    pub fn finish(mut self) {
        self.finish_here();
    }

    /// [`Host::finish`] for a harness that owns the host.
    pub fn finish_here(&mut self) {
        self.finished = true;
        for id in self.ids.clone() {
            self.rt
                .remove(&id, wharf::runtime::AnonymousVolumes::Remove)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        assert_no_leaks(self);
    }
}

const NAMESPACES: [&str; 6] = ["pid", "mnt", "net", "ipc", "uts", "cgroup"];

/// Every namespace some process on the host is in.
fn namespaces_in_use() -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        for ns in NAMESPACES {
            if let Ok(link) = fs::read_link(entry.path().join("ns").join(ns)) {
                out.insert(link.to_string_lossy().into_owned());
            }
        }
    }
    out
}

fn assert_no_leaks(host: &Host) {
    // Namespaces are recorded while a container runs (a container that exits at once may
    // be gone before they are read; its processes and cgroup are checked below anyway).
    // A killed container whose supervisor was gone is reaped by the host's init, which
    // may take a moment; until then its zombie still holds the namespaces.
    let end = Instant::now() + secs(5);
    loop {
        let in_use = namespaces_in_use();
        let left: Vec<&String> = host.namespaces.intersection(&in_use).collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < end, "namespaces still in use: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let cg = project_cgroups(&host.cgroups, &host.project);
    assert!(cg.is_empty(), "cgroups left: {cg:?}");
    for p in host.supervisors.iter().chain(&host.inits) {
        assert!(!p.is_alive(), "process {} left running", p.pid);
    }
    let root = host.root().to_string_lossy().into_owned();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let leaked: Vec<&str> = mounts.lines().filter(|l| l.contains(&root)).collect();
    assert!(leaked.is_empty(), "mounts left: {leaked:?}");
    assert!(
        fs::read_dir(host.root().join("containers"))
            .map(|d| d.count() == 0)
            .unwrap_or(true),
        "container directories left"
    );
}

impl Drop for Host {
    fn drop(&mut self) {
        if !self.finished {
            for id in self.ids.clone() {
                let _ = self
                    .rt
                    .remove(&id, wharf::runtime::AnonymousVolumes::Remove);
            }
        }
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

// ---------------------------------------------------------------------------------------

#[test]
fn pid_1_is_the_command_and_the_host_is_invisible() {
    if !is_root("pid_1_is_the_command_and_the_host_is_invisible") {
        return;
    }
    let mut host = Host::new("pid1");
    let project = host.project(&format!(
        r#"
services:
  app:
    image: {IMAGE}
    hostname: box1
    entrypoint: ["/bin/sh", "-c"]
    command: ["echo pid=$$$$; ps -o pid,comm | tail -n +2 | wc -l; hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; echo err >&2"]
"#
    ));
    let id = host.run(&project, "app");
    let state = host.wait_exited(&id, secs(10));
    assert_eq!(state.exit_code, Some(0), "{state:#?}");
    let log = host.log_text(&id);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines[0], "pid=1", "{log}");
    // ps sees only the shell and ps itself (and wc/tail): no host process.
    let visible: u32 = lines[1].trim().parse().unwrap();
    assert!(visible <= 4, "saw {visible} processes: {log}");
    assert_eq!(lines[2], "box1");
    assert!(lines[3].starts_with("/bin/sh -c"), "{log}");
    assert_eq!(lines[4], "err");
    host.finish();
}

/// A project with one service `app` running the fixture image with `extra` YAML lines
/// (indented under the service) and `sh -c script` as its command.
fn app(host: &Host, script: &str, extra: &str) -> compose::Project {
    let script = script.replace('$', "$$");
    let extra: String = extra
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("    {l}\n"))
        .collect();
    host.project(&format!(
        "services:\n  app:\n    image: {IMAGE}\n    entrypoint: [\"/bin/sh\", \"-c\"]\n    command: {}\n{extra}",
        serde_json::to_string(&[script]).unwrap()
    ))
}

#[test]
fn capabilities_and_seccomp_confine_the_container() {
    if !is_root("capabilities_and_seccomp_confine_the_container") {
        return;
    }
    let mut host = Host::new("caps");
    // Default capabilities: raw sockets work (ping uses one; lo is up), mount does not
    // (no CAP_SYS_ADMIN), unshare is refused by seccomp with EPERM.
    let project = app(
        &host,
        "ping -c1 -W1 127.0.0.1 >/dev/null && echo ping-ok; \
         mount -t tmpfs none /mnt 2>&1 || echo mount-refused; \
         unshare -m true 2>&1 || echo unshare-refused; \
         grep CapEff /proc/self/status; \
         echo interrupts=$(wc -c < /proc/interrupts); ls /sys/firmware | wc -l; \
         echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null || echo proc-sys-ro",
        "",
    );
    let id = host.run(&project, "app");
    host.wait_exited(&id, secs(10));
    let log = host.log_text(&id);
    assert!(log.contains("ping-ok"), "{log}");
    assert!(log.contains("mount-refused"), "{log}");
    assert!(log.contains("unshare-refused"), "{log}");
    assert!(log.contains("Operation not permitted"), "EPERM: {log}");
    // Docker's 14 default capabilities: 0x00000000a80425fb.
    assert!(log.contains("CapEff:\t00000000a80425fb"), "{log}");
    // Masked paths read as empty; /proc/sys is read-only.
    assert!(log.contains("interrupts=0\n0\n"), "{log}");
    assert!(log.contains("proc-sys-ro"), "{log}");
    host.finish();

    let mut host = Host::new("capdrop");
    let project = app(
        &host,
        "ping -c1 -W1 127.0.0.1 2>&1 || echo ping-refused",
        "cap_drop: [NET_RAW]",
    );
    let id = host.run(&project, "app");
    host.wait_exited(&id, secs(10));
    let log = host.log_text(&id);
    assert!(log.contains("ping-refused"), "{log}");
    host.finish();
}

#[test]
fn user_by_name_read_only_root_and_tmpfs() {
    if !is_root("user_by_name_read_only_root_and_tmpfs") {
        return;
    }
    let mut host = Host::new("user");
    let project = app(
        &host,
        "id -u; id -g; id -G; echo $HOME; grep CapEff /proc/self/status; \
         touch /x 2>&1 || echo ro-refused; touch /scratch/y && echo tmpfs-ok",
        "user: app\nread_only: true\ntmpfs: [/scratch]",
    );
    let id = host.run(&project, "app");
    let state = host.wait_exited(&id, secs(10));
    let log = host.log_text(&id);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(&lines[..4], ["1000", "1000", "1000", "/home/app"], "{log}");
    assert_eq!(
        lines[4], "CapEff:\t0000000000000000",
        "non-root: no capabilities"
    );
    assert!(
        log.contains("Read-only file system") && log.contains("ro-refused"),
        "{log}"
    );
    assert!(log.contains("tmpfs-ok"), "{log}");
    assert_eq!(state.exit_code, Some(0));
    host.finish();
}

#[test]
fn both_log_streams_are_captured_in_order() {
    if !is_root("both_log_streams_are_captured_in_order") {
        return;
    }
    let mut host = Host::new("logs");
    let project = app(
        &host,
        "echo one; sleep 0.1; echo two >&2; sleep 0.1; echo three; printf partial",
        "",
    );
    let id = host.run(&project, "app");
    host.wait_exited(&id, secs(10));
    let entries = host.rt.logs(&id).unwrap();
    let got: Vec<(String, String)> = entries
        .iter()
        .map(|e| (format!("{:?}", e.stream), e.log.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("Stdout".into(), "one\n".into()),
            ("Stderr".into(), "two\n".into()),
            ("Stdout".into(), "three\n".into()),
            ("Stdout".into(), "partial".into()),
        ]
    );
    host.finish();
}

#[test]
fn the_memory_limit_oom_kills_with_137_and_the_pids_limit_refuses_forks() {
    if !is_root("the_memory_limit_oom_kills_with_137_and_the_pids_limit_refuses_forks") {
        return;
    }
    let mut host = Host::new("oom");
    let project = app(
        &host,
        "tail /dev/zero",
        "mem_limit: 16m\nmemswap_limit: 16m",
    );
    let id = host.run(&project, "app");
    let state = host.wait_exited(&id, secs(30));
    assert_eq!(state.exit_code, Some(137), "{state:#?}");
    assert!(state.oom_killed, "{state:#?}");
    host.finish();

    let mut host = Host::new("pids");
    let project = app(
        &host,
        "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 2 & done 2>&1; wait; echo done",
        "pids_limit: 6",
    );
    let id = host.run(&project, "app");
    host.wait_exited(&id, secs(20));
    let log = host.log_text(&id);
    assert!(log.contains("can't fork"), "{log}");
    host.finish();
}

#[test]
fn a_named_volume_is_seeded_from_the_image_and_outlives_its_container() {
    if !is_root("a_named_volume_is_seeded_from_the_image_and_outlives_its_container") {
        return;
    }
    let mut host = Host::new("vol");
    let yaml = |script: &str| {
        format!(
            "services:\n  app:\n    image: {IMAGE}\n    entrypoint: [\"/bin/sh\", \"-c\"]\n    command: {}\n    volumes: [\"site:/srv\"]\nvolumes:\n  site: {{}}\n",
            serde_json::to_string(&[script]).unwrap()
        )
    };
    let project = host.project(&yaml("cat /srv/index.html; echo kept > /srv/note"));
    let first = host.run(&project, "app");
    host.wait_exited(&first, secs(10));
    assert_eq!(host.log_text(&first), "hello from wharf\n");
    host.rt
        .remove(&first, wharf::runtime::AnonymousVolumes::Remove)
        .unwrap();

    let project = host.project(&yaml("cat /srv/note"));
    let second = host.run(&project, "app");
    host.wait_exited(&second, secs(10));
    assert_eq!(host.log_text(&second), "kept\n");
    let volume = format!("{}_site", host.project);
    assert!(host.rt.volumes().exists(&volume), "named volumes stay");
    host.finish();
}

#[test]
fn on_failure_3_restarts_exactly_three_times() {
    if !is_root("on_failure_3_restarts_exactly_three_times") {
        return;
    }
    let mut host = Host::new("restart");
    let project = app(&host, "echo run; exit 3", "restart: on-failure:3");
    let id = host.run(&project, "app");
    let state = host.wait_for(&id, secs(20), |s| {
        s.status == Status::Exited && s.restart_count == 3
    });
    assert_eq!(state.exit_code, Some(3));
    assert_eq!(host.log_text(&id), "run\n".repeat(4));
    // It stays down.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(host.state(&id).restart_count, 3);
    host.finish();
}

#[test]
fn health_goes_starting_healthy_unhealthy() {
    if !is_root("health_goes_starting_healthy_unhealthy") {
        return;
    }
    use wharf::runtime::health::Status as Health;
    let mut host = Host::new("health");
    let project = app(
        &host,
        "sleep 1; touch /tmp/ok; sleep 2; rm /tmp/ok; sleep 30",
        "healthcheck:\n  test: [\"CMD\", \"test\", \"-f\", \"/tmp/ok\"]\n  interval: 200ms\n  timeout: 1s\n  retries: 2",
    );
    let id = host.run(&project, "app");
    let health = |s: &State| s.health.as_ref().map(|h| h.status);
    let s = host.state(&id);
    assert_eq!(health(&s), Some(Health::Starting), "{s:#?}");
    host.wait_for(&id, secs(10), |s| health(s) == Some(Health::Healthy));
    let s = host.wait_for(&id, secs(10), |s| health(s) == Some(Health::Unhealthy));
    assert!(s.health.unwrap().failing_streak >= 2);
    host.finish();
}

#[test]
fn exec_runs_in_the_container_and_returns_the_exit_code() {
    if !is_root("exec_runs_in_the_container_and_returns_the_exit_code") {
        return;
    }
    let mut host = Host::new("exec");
    let project = app(&host, "echo $$ > /tmp/pid1; sleep 30", "hostname: inside");
    let id = host.run(&project, "app");
    let sh = |script: &str| Request {
        args: vec!["sh".into(), "-c".into(), script.into()],
        ..Request::default()
    };
    assert_eq!(host.exec(&id, sh("exit 7")), 7);
    assert_eq!(
        host.exec(
            &id,
            sh("test \"$(hostname)\" = inside && test \"$(cat /tmp/pid1)\" = 1")
        ),
        0
    );
    assert_eq!(
        host.exec(
            &id,
            Request {
                user: Some("app".into()),
                workdir: Some("/tmp".into()),
                env: vec!["FOO=bar".into()],
                ..sh("test \"$(id -u)\" = 1000 && test \"$PWD\" = /tmp && test \"$FOO\" = bar")
            }
        ),
        0
    );
    assert_eq!(
        host.exec(
            &id,
            Request {
                args: vec!["no-such-program".into()],
                ..Request::default()
            }
        ),
        127
    );
    // The process really is in the container's cgroup and PID namespace.
    assert_eq!(host.exec(&id, sh("test \"$(ps -o pid | wc -l)\" -le 6")), 0);
    host.finish();
}

#[test]
fn a_container_ignoring_sigterm_is_killed_after_the_grace_period() {
    if !is_root("a_container_ignoring_sigterm_is_killed_after_the_grace_period") {
        return;
    }
    let mut host = Host::new("grace");
    // PID 1 without a handler ignores SIGTERM (the kernel protects a namespace's init).
    let project = host.project(&format!(
        "services:\n  app:\n    image: {IMAGE}\n    entrypoint: [\"sleep\", \"300\"]\n    stop_grace_period: 1s\n"
    ));
    let id = host.run(&project, "app");
    let begun = Instant::now();
    let state = host.rt.stop(&id, None).unwrap();
    let took = begun.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "stopped too early: {took:?}"
    );
    assert!(took < secs(6), "stopped too late: {took:?}");
    assert_eq!(state.status, Status::Exited);
    assert_eq!(state.exit_code, Some(137));
    assert!(state.stopped_by_user);
    host.finish();
}

#[test]
fn init_true_reaps_zombies_and_forwards_signals() {
    if !is_root("init_true_reaps_zombies_and_forwards_signals") {
        return;
    }
    let mut host = Host::new("init");
    // The subshell's `sleep` is orphaned and reparented to PID 1, which then is `sleep`
    // (after `exec`) or wharf's init: only the init reaps it.
    let script = "(sleep 0.2 &); exec sleep 30";
    // Polls for up to 4 s: under load the orphan may take a while to exit.
    let zombies = "for i in $(seq 20); do sleep 0.2; test \"$(ps -o stat | grep -c Z)\" = 0 && exit 0; done; exit 1";
    let check = |host: &Host, id: &str| {
        host.exec(
            id,
            Request {
                args: vec!["sh".into(), "-c".into(), zombies.into()],
                ..Request::default()
            },
        )
    };
    let project = app(&host, script, "init: true");
    let id = host.run(&project, "app");
    assert_eq!(check(&host, &id), 0, "no zombie under init");
    let comm = Request {
        args: vec![
            "sh".into(),
            "-c".into(),
            "test \"$(cat /proc/1/comm)\" = wharf-init".into(),
        ],
        ..Request::default()
    };
    assert_eq!(host.exec(&id, comm), 0, "PID 1 is the init");
    let state = host.rt.stop(&id, None).unwrap();
    assert_eq!(
        state.exit_code,
        Some(143),
        "SIGTERM forwarded to the program: {state:#?}"
    );

    let project = app(&host, script, "");
    let id = host.run(&project, "app");
    assert_eq!(
        check(&host, &id),
        1,
        "the control, without init, keeps its zombie"
    );
    host.finish();
}

#[test]
fn a_program_that_cannot_start_is_an_error_and_leaves_nothing() {
    if !is_root("a_program_that_cannot_start_is_an_error_and_leaves_nothing") {
        return;
    }
    let mut host = Host::new("nostart");
    let project = host.project(&format!(
        "services:\n  app:\n    image: {IMAGE}\n    entrypoint: [\"no-such-program\"]\n"
    ));
    let id = host.create(&project, "app");
    let err = host.rt.start(&id).unwrap_err().to_string();
    assert!(
        err.contains("\"no-such-program\": executable file not found in $PATH"),
        "{err}"
    );
    let state = host.state(&id);
    assert_eq!(state.status, Status::Exited);
    assert_eq!(state.exit_code, Some(127));
    assert!(project_cgroups(&host.cgroups, &host.project).is_empty());
    host.finish();
}

#[test]
fn a_container_outlives_its_supervisor_and_is_still_removed() {
    if !is_root("a_container_outlives_its_supervisor_and_is_still_removed") {
        return;
    }
    let mut host = Host::new("orphan");
    let project = app(&host, "sleep 300", "");
    let id = host.run(&project, "app");
    let state = host.state(&id);
    let sup = state.supervisor.unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sup.pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let s = host.wait_for(&id, secs(5), |_| !sup.is_alive());
    assert_eq!(
        s.status,
        Status::Running,
        "unsupervised but running: {s:#?}"
    );
    assert!(s.init.unwrap().is_alive());
    host.finish();
}

#[test]
fn the_wharf_binary_cannot_be_written_through_a_containers_proc() {
    if !is_root("the_wharf_binary_cannot_be_written_through_a_containers_proc") {
        return;
    }
    let mut host = Host::new("cve");
    let project = app(&host, "sleep 300", "init: true");
    let id = host.run(&project, "app");
    let init = host.state(&id).init.unwrap();
    // PID 1 of the container is wharf's init: its exe is the wharf binary, but seen
    // through a private read-only mount, so writing through the link fails even for
    // root on the host, even after the process is gone.
    let exe = format!("/proc/{}/exe", init.pid);
    let flags = nix::sys::statvfs::statvfs(exe.as_str()).unwrap().flags();
    assert!(
        flags.contains(nix::sys::statvfs::FsFlags::ST_RDONLY),
        "{flags:?}"
    );
    let host_binary = nix::sys::statvfs::statvfs(env!("CARGO_BIN_EXE_wharf")).unwrap();
    assert!(
        !host_binary
            .flags()
            .contains(nix::sys::statvfs::FsFlags::ST_RDONLY),
        "the check can tell the difference"
    );
    let held = fs::File::open(&exe).unwrap();
    host.rt.stop(&id, None).unwrap();
    let reopened = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&held));
    let err = fs::OpenOptions::new()
        .write(true)
        .open(&reopened)
        .unwrap_err();
    // EROFS from the mount; ETXTBSY instead while any supervisor still runs the binary
    // (the kernel checks that first). The statvfs above shows the mount is read-only.
    assert!(
        matches!(err.raw_os_error(), Some(libc::EROFS) | Some(libc::ETXTBSY)),
        "{err}"
    );
    host.finish();
}

#[test]
fn wharf_exec_finds_the_services_container_and_exits_with_its_code() {
    if !is_root("wharf_exec_finds_the_services_container_and_exits_with_its_code") {
        return;
    }
    let mut host = Host::new("cliexec");
    let project = app(&host, "sleep 60", "");
    let id = host.run(&project, "app");
    let wharf = |args: &[&str]| {
        let mut cmd = crate::util::wharf();
        cmd.env("WHARF_ROOT", host.root())
            .current_dir(host.root().join("project"))
            .args(["-p", &host.project, "exec"])
            .args(args);
        cmd.output().unwrap()
    };
    let out = wharf(&[
        "-T",
        "app",
        "sh",
        "-c",
        "echo out-$FOO; echo err >&2; exit 5",
        "-e",
    ]);
    assert_eq!(out.status.code(), Some(5));
    let out = wharf(&[
        "-T",
        "-e",
        "FOO=bar",
        "-u",
        "app",
        "-w",
        "/tmp",
        "app",
        "sh",
        "-c",
        "echo $FOO $(id -un) $PWD",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bar app /tmp\n");
    assert_eq!(out.status.code(), Some(0));
    let out = wharf(&["-T", "--index", "2", "app", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not running"),
        "{out:?}"
    );
    let out = wharf(&["-T", "nosuch", "true"]);
    assert_eq!(out.status.code(), Some(1));
    let _ = id;
    host.finish();
}

/// `readlink /proc/<pid>/ns/<ns>` of a container's first process.
fn ns_of(host: &mut Host, id: &str, ns: &str) -> String {
    let pid = host.state(id).init.expect("running").pid;
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn ours(ns: &str) -> String {
    fs::read_link(format!("/proc/self/ns/{ns}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn namespaces_none_host_and_shared_with_another_service() {
    if !is_root("namespaces_none_host_and_shared_with_another_service") {
        return;
    }
    let mut host = Host::new("ns");
    let project = host.project(&format!(
        r#"
services:
  alone:
    image: {IMAGE}
    network_mode: none
    entrypoint: ["sh", "-c", "ip -o link | wc -l; ip -o link show lo | grep -c UP"]
  hosty:
    image: {IMAGE}
    network_mode: host
    pid: host
    entrypoint: ["sleep", "60"]
  db:
    image: {IMAGE}
    ipc: shareable
    entrypoint: ["sleep", "60"]
  app:
    image: {IMAGE}
    ipc: "service:db"
    network_mode: "service:db"
    entrypoint: ["sleep", "60"]
"#
    ));
    let alone = host.run(&project, "alone");
    host.wait_exited(&alone, secs(10));
    assert_eq!(host.log_text(&alone), "1\n1\n", "only lo, and it is up");

    let hosty = host.run(&project, "hosty");
    assert_eq!(ns_of(&mut host, &hosty, "net"), ours("net"));
    assert_eq!(ns_of(&mut host, &hosty, "pid"), ours("pid"));
    assert_ne!(ns_of(&mut host, &hosty, "mnt"), ours("mnt"));

    let db = host.run(&project, "db");
    let app = host.create_joining(&project, "app", &[("service:db", &db)]);
    let state = host.rt.start(&app).unwrap();
    host.track(&state);
    assert_eq!(ns_of(&mut host, &app, "ipc"), ns_of(&mut host, &db, "ipc"));
    assert_eq!(ns_of(&mut host, &app, "net"), ns_of(&mut host, &db, "net"));
    assert_ne!(ns_of(&mut host, &app, "net"), ours("net"));
    assert_ne!(ns_of(&mut host, &app, "pid"), ns_of(&mut host, &db, "pid"));
    // `ipc: service:db` also shares db's /dev/shm.
    let sh = |script: &str| Request {
        args: vec!["sh".into(), "-c".into(), script.into()],
        ..Request::default()
    };
    assert_eq!(host.exec(&db, sh("echo token > /dev/shm/t")), 0);
    assert_eq!(host.exec(&app, sh("test \"$(cat /dev/shm/t)\" = token")), 0);
    host.finish();
}

#[test]
fn limits_sysctls_and_process_settings_apply() {
    if !is_root("limits_sysctls_and_process_settings_apply") {
        return;
    }
    let mut host = Host::new("settings");
    let project = app(
        &host,
        "ulimit -n; cat /proc/sys/net/ipv4/ping_group_range; cat /proc/self/oom_score_adj; \
         hostname; cat /proc/sys/kernel/domainname; df -k /dev/shm | tail -1 | awk '{print $2}'; \
         pwd; grep NoNewPrivs /proc/self/status; echo $GREETING",
        "hostname: web\ndomainname: example.test\nworking_dir: /var/work\nshm_size: 2m\n\
         oom_score_adj: 500\nulimits:\n  nofile: {soft: 1024, hard: 2048}\n\
         sysctls:\n  net.ipv4.ping_group_range: \"0 1000\"\n\
         security_opt: [\"no-new-privileges:true\"]\nenvironment:\n  GREETING: hi",
    );
    let id = host.run(&project, "app");
    let state = host.wait_exited(&id, secs(10));
    assert_eq!(state.exit_code, Some(0), "{}", host.log_text(&id));
    assert_eq!(
        host.log_text(&id),
        "1024\n0\t1000\n500\nweb\nexample.test\n2048\n/var/work\nNoNewPrivs:\t1\nhi\n"
    );
    host.finish();
}

#[test]
fn stop_signal_restart_always_and_a_stop_that_stays() {
    if !is_root("stop_signal_restart_always_and_a_stop_that_stays") {
        return;
    }
    let mut host = Host::new("policies");
    // A custom stop signal the program handles: it exits 0 at once.
    let project = app(
        &host,
        "trap 'echo got-usr1; exit 0' USR1; echo up; while true; do sleep 0.1; done",
        "stop_signal: SIGUSR1\nstop_grace_period: 20s",
    );
    let id = host.run(&project, "app");
    host.wait_for(&id, secs(5), |_| true);
    std::thread::sleep(Duration::from_millis(300));
    let begun = Instant::now();
    let state = host.rt.stop(&id, None).unwrap();
    assert!(
        begun.elapsed() < secs(5),
        "the handler ended it, not the grace period"
    );
    assert_eq!(state.exit_code, Some(0));
    assert_eq!(host.log_text(&id), "up\ngot-usr1\n");
    host.rt
        .remove(&id, wharf::runtime::AnonymousVolumes::Remove)
        .unwrap();

    // restart: always brings back a program that exits 0; a stop keeps it down.
    let project = app(&host, "echo run; sleep 0.3", "restart: always");
    let id = host.run(&project, "app");
    host.wait_for(&id, secs(10), |s| s.restart_count >= 2);
    let state = host.rt.stop(&id, None).unwrap();
    assert_eq!(state.status, Status::Exited);
    assert!(state.stopped_by_user);
    let count = state.restart_count;
    std::thread::sleep(Duration::from_millis(800));
    let after = host.state(&id);
    assert_eq!(after.status, Status::Exited, "stays down");
    assert_eq!(after.restart_count, count);
    // And it starts again on request.
    let again = host.rt.start(&id).unwrap();
    host.track(&again);
    assert_eq!(again.status, Status::Running);
    host.finish();
}

#[test]
fn bind_mounts_tmpfs_and_anonymous_volumes() {
    if !is_root("bind_mounts_tmpfs_and_anonymous_volumes") {
        return;
    }
    let mut host = Host::new("binds");
    let shared = host.root().join("shared");
    fs::create_dir_all(&shared).unwrap();
    fs::write(shared.join("in.txt"), "from host\n").unwrap();
    let created = host.root().join("made-by-wharf");
    let missing = host.root().join("missing");
    let project = host.project(&format!(
        r#"
services:
  app:
    image: {IMAGE}
    entrypoint: ["sh", "-c"]
    command: ["cat /in/in.txt; touch /in/x 2>&1 || echo ro-refused; echo out > /rw/out.txt; touch /data/anon && echo anon-ok; grep -c ' /fast ' /proc/mounts"]
    volumes:
      - {shared}:/in:ro
      - {created}:/rw
      - /data
    tmpfs:
      - /fast:size=1m
  strict:
    image: {IMAGE}
    entrypoint: ["true"]
    volumes:
      - type: bind
        source: {missing}
        target: /x
        bind:
          create_host_path: false
"#,
        shared = shared.display(),
        created = created.display(),
        missing = missing.display(),
    ));
    let id = host.run(&project, "app");
    let state = host.wait_exited(&id, secs(10));
    let log = host.log_text(&id);
    assert_eq!(state.exit_code, Some(0), "{log}");
    assert!(log.starts_with("from host\n"), "{log}");
    assert!(
        log.contains("Read-only file system") && log.contains("ro-refused"),
        "{log}"
    );
    assert!(log.contains("anon-ok\n1\n"), "{log}");
    assert_eq!(
        fs::read_to_string(created.join("out.txt")).unwrap(),
        "out\n"
    );
    let anonymous: Vec<String> = host.rt.volumes().list().unwrap();
    assert_eq!(anonymous.len(), 1, "one anonymous volume: {anonymous:?}");
    host.rt
        .remove(&id, wharf::runtime::AnonymousVolumes::Remove)
        .unwrap();
    assert!(
        host.rt.volumes().list().unwrap().is_empty(),
        "removed with its container"
    );

    let strict = host.create(&project, "strict");
    let err = host.rt.start(&strict).unwrap_err().to_string();
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(!missing.exists(), "not created");
    host.finish();
}

#[test]
fn privileged_containers_get_every_capability_and_no_filter() {
    if !is_root("privileged_containers_get_every_capability_and_no_filter") {
        return;
    }
    let mut host = Host::new("priv");
    let project = app(
        &host,
        "grep CapEff /proc/self/status; unshare -m true && echo unshare-ok; \
         mkdir -p /mnt; mount -t tmpfs none /mnt && echo mount-ok; grep Seccomp: /proc/self/status",
        "privileged: true",
    );
    let id = host.run(&project, "app");
    host.wait_exited(&id, secs(10));
    let log = host.log_text(&id);
    let full = fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("CapBnd:"))
        .unwrap()
        .replace("CapBnd:", "CapEff:");
    assert!(log.contains(&full), "{log} vs {full}");
    assert!(
        log.contains("unshare-ok") && log.contains("mount-ok"),
        "{log}"
    );
    assert!(log.contains("Seccomp:\t0"), "{log}");
    host.finish();
}

#[test]
fn logs_rotate_by_the_logging_options() {
    if !is_root("logs_rotate_by_the_logging_options") {
        return;
    }
    let mut host = Host::new("rotate");
    let project = app(
        &host,
        "i=0; while [ $i -lt 300 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done",
        "logging:\n  driver: json-file\n  options:\n    max-size: 4k\n    max-file: \"2\"",
    );
    let id = host.run(&project, "app");
    host.wait_exited(&id, secs(10));
    let dir = host.rt.dir(&id);
    let current = fs::metadata(dir.log_path()).unwrap().len();
    let rotated = fs::metadata(dir.path().join("json.log.1")).unwrap().len();
    assert!(
        current <= 4096 && rotated <= 4096 + 200,
        "{current} {rotated}"
    );
    assert!(!dir.path().join("json.log.2").exists(), "max-file 2");
    let text = host.log_text(&id);
    assert!(
        text.ends_with("line-299-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"),
        "the newest lines are kept"
    );
    assert!(!text.contains("line-0-"), "the oldest are gone");
    host.finish();
}

#[test]
fn volumes_from_shares_another_containers_volumes() {
    if !is_root("volumes_from_shares_another_containers_volumes") {
        return;
    }
    let mut host = Host::new("volfrom");
    let project = host.project(&format!(
        r#"
services:
  db:
    image: {IMAGE}
    entrypoint: ["sh", "-c", "echo shared > /data/f; sleep 60"]
    volumes: ["store:/data"]
  app:
    image: {IMAGE}
    entrypoint: ["sh", "-c", "cat /data/f; touch /data/g 2>&1 || echo ro-refused"]
    volumes_from: ["db:ro"]
volumes:
  store: {{}}
"#
    ));
    let db = host.run(&project, "db");
    let db_mounts = host.rt.config(&db).unwrap().spec.mounts;
    let volume_mounts: Vec<_> = db_mounts
        .into_iter()
        .filter(|m| matches!(m.kind, wharf::runtime::spec::MountKind::Volume { .. }))
        .collect();
    let prepared = prepare(
        &project,
        Naming {
            service: "app",
            replica: 1,
            container_name: None,
            id: None,
            volumes_from: &[&volume_mounts],
            anonymous_volumes: None,
        },
        &host.store,
        host.cgroups.version(),
    )
    .unwrap();
    host.rt
        .create(
            &prepared.spec,
            &CreateOptions {
                layers: prepared.layers,
                ..CreateOptions::default()
            },
        )
        .unwrap();
    host.ids.push(prepared.spec.id.clone());
    let state = host.rt.start(&prepared.spec.id).unwrap();
    host.track(&state);
    host.wait_exited(&prepared.spec.id, secs(10));
    let log = host.log_text(&prepared.spec.id);
    assert!(log.starts_with("shared\n"), "{log}");
    assert!(log.contains("ro-refused"), "{log}");
    host.finish();
}

#[test]
fn a_tty_container_gets_a_terminal() {
    if !is_root("a_tty_container_gets_a_terminal") {
        return;
    }
    let mut host = Host::new("tty");
    let project = app(
        &host,
        "test -t 0 && test -t 1 && echo is-a-tty; echo $TERM; stty size 2>&1 | grep -c .; tty",
        "tty: true\nstdin_open: true",
    );
    let id = host.run(&project, "app");
    let state = host.wait_exited(&id, secs(10));
    let log = host.log_text(&id);
    assert_eq!(state.exit_code, Some(0), "{log}");
    // A terminal turns \n into \r\n.
    assert!(log.starts_with("is-a-tty\r\nxterm\r\n"), "{log:?}");
    // Allocated in the container's own devpts: the program finds it by name.
    assert!(log.ends_with("/dev/pts/0\r\n"), "{log:?}");
    host.finish();
}

#[test]
fn resource_options_land_in_the_containers_cgroup() {
    if !is_root("resource_options_land_in_the_containers_cgroup") {
        return;
    }
    let mut host = Host::new("res");
    let project = app(
        &host,
        "sleep 60",
        "mem_limit: 64m\nmem_reservation: 32m\ncpus: 0.5\ncpu_shares: 512\ncpuset: \"0\"\npids_limit: 50",
    );
    let id = host.run(&project, "app");
    let path = host.rt.config(&id).unwrap().spec.cgroup_path;
    let init = host.state(&id).init.unwrap();
    let cgroups = host.cgroups.clone();
    let read = |controller: &str, file: &str| -> String {
        let mount = match cgroups.v1.get(controller) {
            Some(m) => m.clone(),
            None => panic!("no {controller} hierarchy"),
        };
        fs::read_to_string(mount.join(&path).join(file))
            .unwrap_or_else(|e| panic!("{controller}/{file}: {e}"))
            .trim()
            .to_string()
    };
    if host.cgroups.version() == wharf::runtime::spec::CgroupVersion::V1 {
        assert_eq!(
            read("memory", "memory.limit_in_bytes"),
            (64 << 20).to_string()
        );
        assert_eq!(
            read("memory", "memory.soft_limit_in_bytes"),
            (32 << 20).to_string()
        );
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(read("cpu", "cpu.shares"), "512");
        assert_eq!(read("cpuset", "cpuset.cpus"), "0");
        assert_eq!(read("pids", "pids.max"), "50");
        // The container's processes are in it.
        let procs = read("pids", "cgroup.procs");
        assert!(procs.lines().any(|p| p == init.pid.to_string()), "{procs}");
    } else {
        eprintln!("cgroup v2 host: checking the unified files instead");
        let unified = host.cgroups.v2.clone().unwrap().join(&path);
        let v2 = |f: &str| {
            fs::read_to_string(unified.join(f))
                .unwrap()
                .trim()
                .to_string()
        };
        assert_eq!(v2("memory.max"), (64 << 20).to_string());
        assert_eq!(v2("cpu.max"), "50000 100000");
        assert_eq!(v2("pids.max"), "50");
    }
    host.finish();
}

#[test]
fn exec_detached_returns_at_once_and_the_command_runs_on() {
    if !is_root("exec_detached_returns_at_once_and_the_command_runs_on") {
        return;
    }
    let mut host = Host::new("detach");
    let project = app(&host, "sleep 60", "");
    let id = host.run(&project, "app");
    let begun = Instant::now();
    let code = host.exec(
        &id,
        Request {
            args: vec!["sh".into(), "-c".into(), "sleep 1; touch /tmp/done".into()],
            detach: true,
            ..Request::default()
        },
    );
    assert_eq!(code, 0);
    assert!(
        begun.elapsed() < Duration::from_millis(900),
        "{:?}",
        begun.elapsed()
    );
    let check = Request {
        args: vec![
            "sh".into(),
            "-c".into(),
            "for i in $(seq 50); do test -f /tmp/done && exit 0; sleep 0.1; done; exit 1".into(),
        ],
        ..Request::default()
    };
    assert_eq!(host.exec(&id, check), 0);
    host.finish();
}

#[test]
fn wharf_exec_runs_the_command_on_a_terminal_of_its_own() {
    if !is_root("wharf_exec_runs_the_command_on_a_terminal_of_its_own") {
        return;
    }
    let mut host = Host::new("ptyexec");
    let project = app(&host, "sleep 60", "");
    let id = host.run(&project, "app");
    // util-linux's `script` runs a shell line on a pseudo-terminal, as a user's shell is.
    // The line runs `wharf exec ARGS` (with `BESIDE` in the background), then says whether
    // wharf gave the terminal's settings back as it found them; `INPUT` is typed into it.
    let wharf = assert_cmd::cargo::cargo_bin("wharf");
    let under_terminal = |input: &str, beside: &str, args: &str| {
        let line = format!(
            "stty rows 33 cols 77; before=$(stty -g); ({beside}) & \
             {} -p {} exec {args}; code=$?; wait; \
             [ \"$before\" = \"$(stty -g)\" ] && echo settings-restored; exit $code",
            wharf.display(),
            host.project
        );
        let mut child = std::process::Command::new("script")
            .args(["-q", "-e", "-c", &line, "/dev/null"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", "/HOME_DIR")
            .env("WHARF_ROOT", host.root())
            .current_dir(host.root().join("project"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("script (util-linux)");
        let mut stdin = child.stdin.take().expect("piped");
        std::io::Write::write_all(&mut stdin, input.as_bytes()).unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (text, out.status.code())
    };

    // The container's devpts instance numbers from 0; the size is the caller's.
    let (text, code) = under_terminal(
        "",
        ":",
        "app sh -c 'tty; test -t 0 && echo is-a-tty; stty size; exit 3'",
    );
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("is-a-tty"), "{text}");
    assert!(text.contains("33 77"), "{text}");
    assert!(text.contains("settings-restored"), "{text}");

    // Keys reach the command through its terminal.
    let (text, code) = under_terminal("hello\n", ":", "app sh -c 'read line; echo got-$line'");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("got-hello"), "{text}");

    // A resize of the caller's terminal while the command runs reaches the command's (a
    // background list's stdin is /dev/null).
    let (text, code) = under_terminal(
        "",
        "sleep 2; stty rows 40 cols 100 </dev/tty",
        "app sh -c 'stty size; i=0; \
         while [ \"$(stty size)\" = \"33 77\" ] && [ $i -lt 100 ]; do \
         sleep 0.1; i=$((i+1)); done; echo now $(stty size)'",
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("33 77\r\nnow 40 100\r\n"), "{text}");

    // Output written just before the command exits is not lost.
    let (text, code) = under_terminal("", ":", "app seq 1 30000");
    assert_eq!(code, Some(0), "{text}");
    let tail = text.get(text.len().saturating_sub(200)..).unwrap_or(&text);
    assert!(tail.contains("\r\n29999\r\n30000\r\n"), "{tail}");

    // `-T`: the command gets no terminal of its own.
    let (text, code) = under_terminal("", ":", "-T app tty");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("not a tty"), "{text}");
    let _ = id;
    host.finish();
}
