//! What the commands over existing containers share (`stop`, `kill`, `rm`, `pause`,
//! `unpause`, `wait`): which project they act on (the Compose file's, or `-p NAME` alone,
//! from the runtime's records), which of its containers the named services select, the
//! order dependents-before-dependencies in which containers stop, running one action on
//! many containers in parallel, and Docker Compose's progress lines
//! (` Container shop-web-1  Stopped` on stderr).
//!
//! It decides nothing about the containers themselves: every change goes through
//! [`Runtime`] (and the network layer for sandboxes). It never creates or starts anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::image::state_root;
use super::progress::Mode;
use super::{GlobalArgs, load_project};
use crate::compose::NormalizeOptions;
use crate::runtime::Runtime;
use crate::runtime::container::State;

/// One container of the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub id: String,
    pub name: String,
    pub service: String,
    pub replica: u64,
}

/// The project a command acts on and what is known about it.
pub struct Scope {
    pub project: String,
    /// Each service's dependencies, when the Compose file was there.
    pub deps: Option<BTreeMap<String, Vec<String>>>,
    pub runtime: Runtime,
    pub root: PathBuf,
    pub exe: PathBuf,
    /// Progress lines on stderr (off with `--progress quiet`).
    pub report: bool,
    /// `--parallel`: how many containers are acted on at once.
    pub parallel: usize,
    /// `--dry-run`: say what would be done, change nothing.
    pub dry_run: bool,
}

impl Scope {
    /// The project of the Compose file, or the one `-p` names when there is no file (then
    /// nothing is known of dependencies and containers are acted on all at once). Every
    /// service named must be in the file or have a container in the project.
    pub fn open(global: &GlobalArgs, services: &[String]) -> anyhow::Result<Scope> {
        let loaded = global
            .load_options(&[])
            .ok()
            .and_then(|o| load_project(&o, NormalizeOptions::default()).ok())
            .map(|l| l.project);
        let project = match (&loaded, &global.project_name) {
            (Some(p), _) => p.name.clone(),
            (None, Some(name)) => name.clone(),
            (None, None) => anyhow::bail!(
                "no Compose file found here: name the project with -p to act on its containers"
            ),
        };
        let root = state_root();
        let exe = std::env::current_exe()?;
        let deps = loaded.as_ref().map(|p| {
            crate::plan::desired(p)
                .services
                .into_iter()
                .map(|(name, s)| (name, s.deps))
                .collect()
        });
        let scope = Scope {
            project,
            deps,
            runtime: Runtime::new(&root, &exe),
            root,
            exe,
            report: Mode::resolve(global.progress, false) != Mode::Quiet,
            parallel: usize::try_from(global.parallel)
                .unwrap_or(usize::MAX)
                .max(1),
            dry_run: global.dry_run,
        };
        let known: BTreeSet<String> = scope
            .containers(&[])
            .into_iter()
            .map(|t| t.service)
            .chain(scope.deps.iter().flat_map(|d| d.keys().cloned()))
            .collect();
        if let Some(unknown) = services.iter().find(|s| !known.contains(*s)) {
            anyhow::bail!("no such service: {unknown}");
        }
        Ok(scope)
    }

    /// The project's containers of `services` (all of them when empty), by name.
    pub fn containers(&self, services: &[String]) -> Vec<Target> {
        let mut out: Vec<Target> = self
            .runtime
            .list()
            .into_iter()
            .filter_map(|id| {
                let spec = self.runtime.config(&id).ok()?.spec;
                (spec.project == self.project
                    && (services.is_empty() || services.contains(&spec.service)))
                .then_some(Target {
                    id,
                    name: spec.name,
                    service: spec.service,
                    replica: spec.replica,
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Whether the service is in the Compose file (always true without one).
    pub fn in_file(&self, service: &str) -> bool {
        self.deps.as_ref().is_none_or(|d| d.contains_key(service))
    }

    /// The container's state, `None` when it cannot be read (removed meanwhile).
    pub fn state(&self, t: &Target) -> Option<State> {
        self.runtime.state(&t.id).ok()
    }

    /// `targets` in the order they stop: waves of [`stop_waves`] by service.
    pub fn stop_order(&self, targets: Vec<Target>) -> Vec<Vec<Target>> {
        let wanted: BTreeSet<String> = targets.iter().map(|t| t.service.clone()).collect();
        let empty = BTreeMap::new();
        let waves = stop_waves(self.deps.as_ref().unwrap_or(&empty), &wanted);
        waves
            .into_iter()
            .map(|wave| {
                targets
                    .iter()
                    .filter(|t| wave.contains(&t.service))
                    .cloned()
                    .collect()
            })
            .collect()
    }

    /// A progress line, as Docker Compose prints it in plain mode (and with its prefix
    /// in a dry run).
    pub fn say(&self, t: &Target, event: &str) {
        if self.report {
            let dry = if self.dry_run { " DRY-RUN MODE - " } else { "" };
            eprintln!("{dry} Container {}  {event}", t.name);
        }
    }

    /// Runs `action` on every target of each wave, a wave at a time, up to `parallel` at
    /// once; announces `doing` and `done` around each (a dry run only announces). Every failure is collected (the
    /// other containers are still acted on) and returned as one error.
    pub fn each<F>(
        &self,
        waves: Vec<Vec<Target>>,
        doing: &str,
        done: &str,
        action: F,
    ) -> anyhow::Result<()>
    where
        F: Fn(&Target) -> Result<(), String> + Sync,
    {
        let mut failures = Vec::new();
        for wave in waves {
            for chunk in wave.chunks(self.parallel) {
                let results: Vec<(Target, Result<(), String>)> = std::thread::scope(|s| {
                    let handles: Vec<_> = chunk
                        .iter()
                        .map(|t| {
                            let action = &action;
                            s.spawn(move || {
                                self.say(t, doing);
                                let r = if self.dry_run { Ok(()) } else { action(t) };
                                self.say(t, if r.is_ok() { done } else { "Error" });
                                (t.clone(), r)
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .zip(chunk)
                        .map(|(h, t)| {
                            h.join().unwrap_or_else(|_| {
                                (t.clone(), Err("the worker thread panicked".into()))
                            })
                        })
                        .collect()
                });
                failures.extend(
                    results
                        .into_iter()
                        .filter_map(|(t, r)| r.err().map(|e| format!("{}: {e}", t.name))),
                );
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("{}", failures.join("\n"))
        }
    }
}

/// The services of `wanted` in waves that stop one after the other: a service comes after
/// every service that depends on it, directly or through services not being stopped (they
/// take a turn that stops nothing), so dependents always stop before their dependencies —
/// Docker Compose's `InReverseDependencyOrder`. Services of one wave stop in parallel. A
/// service `deps` does not know (no Compose file, an orphan) has no constraint. A cycle
/// (which the loader rejects) cannot hang this: what is left goes in one last wave.
pub fn stop_waves(
    deps: &BTreeMap<String, Vec<String>>,
    wanted: &BTreeSet<String>,
) -> Vec<Vec<String>> {
    let mut dependents: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut left: BTreeSet<&str> = wanted.iter().map(String::as_str).collect();
    for (service, needs) in deps {
        left.insert(service);
        for need in needs {
            left.insert(need);
            dependents.entry(need).or_default().insert(service);
        }
    }
    let mut waves = Vec::new();
    while !left.is_empty() {
        let mut ready: BTreeSet<&str> = left
            .iter()
            .copied()
            .filter(|s| {
                dependents
                    .get(s)
                    .is_none_or(|ds| ds.iter().all(|d| !left.contains(d)))
            })
            .collect();
        if ready.is_empty() {
            ready = std::mem::take(&mut left);
        }
        left.retain(|s| !ready.contains(s));
        let wave: Vec<String> = ready
            .into_iter()
            .filter(|s| wanted.contains(*s))
            .map(str::to_string)
            .collect();
        if !wave.is_empty() {
            waves.push(wave);
        }
    }
    waves
}

/// Docker Compose's answer to a confirmation read from a line of input: `y`, `yes`, and
/// what Go's `strconv.ParseBool` takes as true (`1`, `t`, `true`, any case). Anything else,
/// an empty line and end of input included, is no.
pub fn is_yes(answer: &str) -> bool {
    matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes" | "1" | "t" | "true"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deps(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(s, d)| (s.to_string(), d.iter().map(|x| x.to_string()).collect()))
            .collect()
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dependents_stop_before_their_dependencies_independent_ones_together() {
        // web → api → db; worker → db; cache alone.
        let d = deps(&[
            ("web", &["api"]),
            ("api", &["db"]),
            ("worker", &["db"]),
            ("db", &[]),
            ("cache", &[]),
        ]);
        let all = set(&["web", "api", "worker", "db", "cache"]);
        assert_eq!(
            stop_waves(&d, &all),
            [vec!["cache", "web", "worker"], vec!["api"], vec!["db"]]
        );
    }

    #[test]
    fn order_holds_through_services_not_being_stopped() {
        let d = deps(&[("web", &["api"]), ("api", &["db"]), ("db", &[])]);
        assert_eq!(stop_waves(&d, &set(&["web", "db"])), [["web"], ["db"]]);
        assert_eq!(stop_waves(&d, &set(&["db"])), [["db"]]);
    }

    #[test]
    fn without_a_file_or_with_a_cycle_everything_still_stops() {
        let none = BTreeMap::new();
        assert_eq!(
            stop_waves(&none, &set(&["b", "a", "orphan"])),
            [vec!["a", "b", "orphan"]]
        );
        let cycle = deps(&[("a", &["b"]), ("b", &["a"]), ("c", &["a"])]);
        assert_eq!(
            stop_waves(&cycle, &set(&["a", "b", "c"])),
            [vec!["c"], vec!["a", "b"]]
        );
        // An orphan of a known project: no constraint, first wave.
        let d = deps(&[("web", &["db"]), ("db", &[])]);
        assert_eq!(
            stop_waves(&d, &set(&["db", "old"])),
            [vec!["old"], vec!["db"]]
        );
    }

    #[test]
    fn confirmation_answers_follow_docker_compose() {
        for yes in ["y", "Y", "yes", "YES\n", "true", "1", "t"] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "0", "false", "yep", "sure"] {
            assert!(!is_yes(no), "{no:?}");
        }
    }
}
