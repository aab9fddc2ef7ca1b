//! The apply engine: runs a [`Plan`]'s steps through a [`Driver`], each as soon as the steps
//! it depends on are done, at most `parallel` at a time.
//!
//! Steps are blocking calls into the runtime and the network layer (netlink on dedicated
//! threads, `nft`, the supervisor's start handshake), so each runs on tokio's blocking pool;
//! the engine itself only waits for completions. A failed step does not stop its siblings:
//! everything that does not depend on it still runs, and every step that does is skipped
//! with the failure named, so one broken service never leaves the rest of the project half
//! made. The engine never touches the host itself; only the driver does.

pub mod linux;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::plan::{Plan, Step};

/// What carries out one step. The real driver is the runtime and the network layer; tests
/// use an in-memory fake.
pub trait Driver: Send + Sync + 'static {
    /// Carries out `step`; the error is a message naming what failed.
    fn execute(&self, step: &Step) -> Result<(), String>;
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed(String),
    /// Not run: a step it depends on failed (or was skipped).
    Skipped {
        because: usize,
    },
}

/// Every step's outcome, by step id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub outcomes: BTreeMap<usize, Outcome>,
}

impl Report {
    pub fn succeeded(&self) -> bool {
        self.outcomes.values().all(|o| *o == Outcome::Done)
    }

    /// The failures, in step order: `#id resource: message`.
    pub fn failures<'a>(&'a self, plan: &'a Plan) -> impl Iterator<Item = String> + 'a {
        plan.steps
            .iter()
            .filter_map(|s| match self.outcomes.get(&s.id) {
                Some(Outcome::Failed(m)) => Some(format!("#{} {}: {m}", s.id, s.resource)),
                _ => None,
            })
    }
}

/// Hears about each step as it starts and ends (the CLI's progress output). Called from
/// the engine's tasks, so it must be cheap and must not block.
pub trait Observer: Send + Sync + 'static {
    fn started(&self, _step: &Step) {}
    fn finished(&self, _step: &Step, _outcome: &Outcome) {}
}

/// An observer that ignores everything.
pub struct Silent;

impl Observer for Silent {}

/// Runs `plan` through `driver`, at most `parallel` steps at once (at least one).
pub async fn run<D: Driver>(plan: &Plan, driver: Arc<D>, parallel: usize) -> Report {
    run_observed(plan, driver, parallel, Arc::new(Silent)).await
}

/// [`run`], telling `observer` when each step starts and how it ends (a skipped step is
/// reported as finished without having started).
pub async fn run_observed<D: Driver>(
    plan: &Plan,
    driver: Arc<D>,
    parallel: usize,
    observer: Arc<dyn Observer>,
) -> Report {
    // `--parallel -1` (unlimited) arrives as usize::MAX; tokio caps its permits.
    let permits = Arc::new(Semaphore::new(parallel.clamp(1, Semaphore::MAX_PERMITS)));
    let mut report = Report::default();
    let mut waiting: BTreeMap<usize, BTreeSet<usize>> = plan
        .steps
        .iter()
        .map(|s| (s.id, s.deps.iter().copied().collect()))
        .collect();
    let steps: BTreeMap<usize, Step> = plan.steps.iter().map(|s| (s.id, s.clone())).collect();
    let mut running: JoinSet<(usize, Result<(), String>)> = JoinSet::new();

    loop {
        // Skip what can never run, then start what is ready.
        let mut changed = true;
        while changed {
            changed = false;
            let blocked: Vec<(usize, usize)> = waiting
                .iter()
                .filter_map(|(id, deps)| {
                    deps.iter()
                        .find(|d| {
                            matches!(
                                report.outcomes.get(d),
                                Some(Outcome::Failed(_) | Outcome::Skipped { .. })
                            )
                        })
                        .map(|d| (*id, *d))
                })
                .collect();
            for (id, because) in blocked {
                waiting.remove(&id);
                let outcome = Outcome::Skipped { because };
                observer.finished(&steps[&id], &outcome);
                report.outcomes.insert(id, outcome);
                changed = true;
            }
        }
        let ready: Vec<usize> = waiting
            .iter()
            .filter(|(_, deps)| {
                deps.iter()
                    .all(|d| report.outcomes.get(d) == Some(&Outcome::Done))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in ready {
            waiting.remove(&id);
            let (driver, permits, step) = (driver.clone(), permits.clone(), steps[&id].clone());
            let observer = observer.clone();
            running.spawn(async move {
                let _permit = permits.acquire_owned().await;
                observer.started(&step);
                let result = tokio::task::spawn_blocking(move || driver.execute(&step))
                    .await
                    .unwrap_or_else(|e| Err(format!("the step panicked: {e}")));
                (id, result)
            });
        }
        match running.join_next().await {
            Some(Ok((id, result))) => {
                let outcome = match result {
                    Ok(()) => Outcome::Done,
                    Err(m) => Outcome::Failed(m),
                };
                observer.finished(&steps[&id], &outcome);
                report.outcomes.insert(id, outcome);
            }
            Some(Err(e)) => {
                // A join error has lost its step id; it cannot happen short of a panic in
                // the engine's own task, which has nothing that panics.
                tracing::error!("apply task: {e}");
            }
            None => {
                // Nothing runs: whatever still waits depends on a step that does not
                // exist (a malformed plan) and never will run.
                for (id, deps) in std::mem::take(&mut waiting) {
                    let because = deps.iter().next().copied().unwrap_or(0);
                    let outcome = Outcome::Skipped { because };
                    observer.finished(&steps[&id], &outcome);
                    report.outcomes.insert(id, outcome);
                }
                break;
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::plan::Operation;

    /// Records when each step started and ended; fails the resources it is told to.
    struct Fake {
        log: Mutex<Vec<(usize, Instant, Instant)>>,
        fail: BTreeSet<String>,
        delay: Duration,
    }

    impl Fake {
        fn new(fail: &[&str], delay_ms: u64) -> Arc<Fake> {
            Arc::new(Fake {
                log: Mutex::new(Vec::new()),
                fail: fail.iter().map(|s| s.to_string()).collect(),
                delay: Duration::from_millis(delay_ms),
            })
        }
    }

    impl Driver for Fake {
        fn execute(&self, step: &Step) -> Result<(), String> {
            let begun = Instant::now();
            std::thread::sleep(self.delay);
            self.log
                .lock()
                .unwrap()
                .push((step.id, begun, Instant::now()));
            if self.fail.contains(&step.resource) {
                return Err(format!("{} refused", step.resource));
            }
            Ok(())
        }
    }

    fn step(id: usize, resource: &str, deps: &[usize]) -> Step {
        Step {
            id,
            resource: resource.into(),
            operation: Operation::CreateContainer,
            cause: "not found".into(),
            deps: deps.to_vec(),
            target: None,
        }
    }

    /// net(1) ← db(2) ← api(3) ← web(4); net ← cache(5), independent of the chain.
    fn plan() -> Plan {
        Plan {
            steps: vec![
                step(1, "network:n", &[]),
                step(2, "container:db", &[1]),
                step(3, "container:api", &[2]),
                step(4, "container:web", &[3]),
                step(5, "container:cache", &[1]),
            ],
            warnings: vec![],
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn every_edge_is_respected_and_independent_steps_overlap() {
        let fake = Fake::new(&[], 30);
        let report = rt().block_on(run(&plan(), fake.clone(), 8));
        assert!(report.succeeded(), "{report:?}");
        let log = fake.log.lock().unwrap();
        let at = |id: usize| *log.iter().find(|(i, ..)| *i == id).unwrap();
        for s in plan().steps {
            for d in s.deps {
                assert!(at(d).2 <= at(s.id).1, "#{} started before #{d} ended", s.id);
            }
        }
        // cache (5) runs while db (2) does: both only need the network.
        let (c, d) = (at(5), at(2));
        assert!(c.1 < d.2 && d.1 < c.2, "cache and db did not overlap");
    }

    #[test]
    fn the_parallel_limit_holds() {
        let wide = Plan {
            steps: (1..=6)
                .map(|i| step(i, &format!("container:c{i}"), &[]))
                .collect(),
            warnings: vec![],
        };
        let fake = Fake::new(&[], 40);
        assert!(rt().block_on(run(&wide, fake.clone(), 2)).succeeded());
        let log = fake.log.lock().unwrap();
        for (id, start, _) in log.iter() {
            let overlapping = log
                .iter()
                .filter(|(_, s, e)| s <= start && start < e)
                .count();
            assert!(
                overlapping <= 2,
                "#{id} ran with {overlapping} steps at once"
            );
        }
        // And the limit was used: some two ran at once.
        assert!(
            log.iter().any(|(_, start, _)| log
                .iter()
                .filter(|(_, s, e)| s <= start && start < e)
                .count()
                == 2),
            "never two at once"
        );
    }

    #[test]
    fn a_failure_stops_its_dependents_not_its_siblings() {
        let fake = Fake::new(&["container:db"], 5);
        let p = plan();
        let report = rt().block_on(run(&p, fake, 4));
        assert_eq!(report.outcomes[&1], Outcome::Done);
        assert_eq!(
            report.outcomes[&2],
            Outcome::Failed("container:db refused".into())
        );
        assert_eq!(report.outcomes[&3], Outcome::Skipped { because: 2 });
        assert_eq!(report.outcomes[&4], Outcome::Skipped { because: 3 });
        assert_eq!(report.outcomes[&5], Outcome::Done, "the sibling ran");
        assert_eq!(
            report.failures(&p).collect::<Vec<_>>(),
            ["#2 container:db: container:db refused"]
        );
    }

    #[test]
    fn teardown_keeps_going_past_a_failure_and_reports_it() {
        use crate::plan::{Live, LiveContainer, LiveObject, teardown};
        let container = |name: &str| LiveContainer {
            id: format!("{name:0>64}"),
            name: name.into(),
            service: name.into(),
            replica: 1,
            hash: String::new(),
            image_digest: None,
            running: true,
            exit_code: None,
            networks: vec!["default".into()],
            config: None,
            one_off: false,
        };
        let live = Live {
            containers: vec![container("a"), container("b"), container("c")],
            networks: [(
                "default".to_string(),
                LiveObject {
                    name: "p_default".into(),
                    hash: String::new(),
                },
            )]
            .into(),
            ..Live::default()
        };
        let p = teardown(None, &live, &["p_data".to_string()]);
        let fake = Fake::new(&["container:b"], 2);
        let report = rt().block_on(run(&p, fake.clone(), 4));
        let done: Vec<&str> = p
            .steps
            .iter()
            .filter(|s| report.outcomes[&s.id] == Outcome::Done)
            .map(|s| s.resource.as_str())
            .collect();
        // a and c are stopped and removed although b failed.
        assert_eq!(
            done,
            ["container:a", "container:a", "container:c", "container:c"]
        );
        // The network and the volume wait for every container: they are kept, and say why.
        let failures: Vec<String> = report.failures(&p).collect();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].contains("container:b refused"), "{failures:?}");
        assert!(
            p.steps
                .iter()
                .filter(|s| s.resource.starts_with("network:") || s.resource.starts_with("volume:"))
                .all(|s| matches!(report.outcomes[&s.id], Outcome::Skipped { .. }))
        );
    }

    #[test]
    fn a_step_waiting_on_a_missing_step_is_skipped_not_hung() {
        let p = Plan {
            steps: vec![step(1, "container:a", &[]), step(2, "container:b", &[9])],
            warnings: vec![],
        };
        let report = rt().block_on(run(&p, Fake::new(&[], 1), 2));
        assert_eq!(report.outcomes[&1], Outcome::Done);
        assert_eq!(report.outcomes[&2], Outcome::Skipped { because: 9 });
    }
}
