//! The health state of a container, by Docker's rules, fed with probe results by the
//! supervisor (which runs the probes inside the container's namespaces). A container with a
//! health check starts `starting`; a passing probe makes it `healthy`; `retries`
//! consecutive failing probes make it `unhealthy`, except that failures during
//! `start_period` do not count (a pass in that time still counts). Probes run every
//! `start_interval` while the container is still `starting` within its start period, and
//! every `interval` after. A probe that outlives `timeout` is a failure. Docker keeps the
//! last five probe results for `inspect`; so does this. Pure: no clock of its own, no I/O.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::spec::HealthSpec;

/// Probe results kept for display (Docker's `maxLogEntries`).
pub const KEPT_RESULTS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Starting,
    Healthy,
    Unhealthy,
}

/// One probe's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// Since the container started.
    pub at: Duration,
    /// The probe's exit code; `None` when it timed out or could not run.
    pub exit_code: Option<i32>,
    /// The start of its output, for `inspect`.
    pub output: String,
}

impl Probe {
    fn passed(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// A container's health, as the supervisor records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: Status,
    /// Consecutive failures that counted.
    pub failing_streak: u64,
    pub log: VecDeque<Probe>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            status: Status::Starting,
            failing_streak: 0,
            log: VecDeque::new(),
        }
    }
}

impl Health {
    /// Records a probe's result under `spec`; returns the status after it.
    pub fn record(&mut self, spec: &HealthSpec, probe: Probe) -> Status {
        let in_start_period = probe.at < spec.start_period;
        if probe.passed() {
            self.status = Status::Healthy;
            self.failing_streak = 0;
        } else if !(in_start_period && self.status == Status::Starting) {
            self.failing_streak += 1;
            if self.failing_streak >= spec.retries.max(1) {
                self.status = Status::Unhealthy;
            }
        }
        self.log.push_back(probe);
        while self.log.len() > KEPT_RESULTS {
            self.log.pop_front();
        }
        self.status
    }

    /// How long to wait before the next probe, `since_start` after the container started.
    pub fn next_probe_in(&self, spec: &HealthSpec, since_start: Duration) -> Duration {
        if self.status == Status::Starting && since_start < spec.start_period {
            spec.start_interval
        } else {
            spec.interval
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(retries: u64, start_period_s: u64) -> HealthSpec {
        HealthSpec {
            args: vec!["true".into()],
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            start_period: Duration::from_secs(start_period_s),
            start_interval: Duration::from_secs(5),
            retries,
        }
    }

    fn probe(at_s: u64, code: Option<i32>) -> Probe {
        Probe {
            at: Duration::from_secs(at_s),
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn starting_then_healthy_then_unhealthy_after_retries_failures() {
        let s = spec(3, 0);
        let mut h = Health::default();
        assert_eq!(h.status, Status::Starting);
        assert_eq!(h.record(&s, probe(1, Some(0))), Status::Healthy);
        assert_eq!(h.record(&s, probe(2, Some(1))), Status::Healthy);
        assert_eq!(
            h.record(&s, probe(3, None)),
            Status::Healthy,
            "a timeout fails"
        );
        assert_eq!(h.record(&s, probe(4, Some(1))), Status::Unhealthy);
        assert_eq!(h.failing_streak, 3);
        assert_eq!(h.record(&s, probe(5, Some(0))), Status::Healthy);
        assert_eq!(h.failing_streak, 0);
        assert_eq!(h.log.len(), KEPT_RESULTS);
        assert_eq!(h.log.front().map(|p| p.at), Some(Duration::from_secs(1)));
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_but_a_pass_does() {
        let s = spec(1, 60);
        let mut h = Health::default();
        for t in [5, 10, 15] {
            assert_eq!(h.record(&s, probe(t, Some(1))), Status::Starting);
        }
        assert_eq!(h.failing_streak, 0);
        assert_eq!(h.record(&s, probe(20, Some(0))), Status::Healthy);
        // Once healthy, a failure counts even inside the start period.
        assert_eq!(h.record(&s, probe(25, Some(1))), Status::Unhealthy);
        // Never passing: unhealthy after the start period.
        let mut h = Health::default();
        h.record(&s, probe(30, Some(1)));
        assert_eq!(h.record(&s, probe(61, Some(1))), Status::Unhealthy);
    }

    #[test]
    fn probes_come_every_start_interval_only_while_starting_in_the_start_period() {
        let s = spec(3, 60);
        let mut h = Health::default();
        assert_eq!(
            h.next_probe_in(&s, Duration::from_secs(1)),
            Duration::from_secs(5)
        );
        assert_eq!(
            h.next_probe_in(&s, Duration::from_secs(61)),
            Duration::from_secs(30)
        );
        h.record(&s, probe(2, Some(0)));
        assert_eq!(
            h.next_probe_in(&s, Duration::from_secs(3)),
            Duration::from_secs(30)
        );
    }
}
