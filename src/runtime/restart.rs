//! The supervisor's restart decisions: whether a container that exited is started again,
//! and after how long, by Docker's rules. Docker's restart manager waits 100 ms before the
//! first restart and doubles the delay each time up to one minute; a container that ran
//! for at least ten seconds counts as having started well, and the delay starts over.
//! `on-failure:N` allows N restarts after failures; a container stopped by the user is
//! never restarted, and `unless-stopped` also stays down when it was stopped before the
//! supervisor came back. This module decides only; the supervisor acts.

use std::time::Duration;

use super::spec::RestartPolicy;

/// The first delay (Docker's `defaultTimeout`), doubled after each quick exit
/// (`backoffMultiplier`) up to [`MAX_DELAY`] (`maxRestartTimeout`).
pub const FIRST_DELAY: Duration = Duration::from_millis(100);
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long resets the delay (Docker's restart manager: 10 s).
pub const GOOD_RUN: Duration = Duration::from_secs(10);

/// How the last run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// The exit code (128 + signal for a signal death, 137 for an OOM kill).
    pub code: i32,
    /// How long the process ran.
    pub ran_for: Duration,
    /// Stopped by `wharf stop`/`down` (or a supervisor's stop request), not by itself.
    pub stopped_by_user: bool,
}

/// The restart state a supervisor keeps for its container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restarts {
    policy: RestartPolicy,
    /// Restarts so far (`RestartCount` in `docker inspect`).
    count: u64,
    delay: Duration,
}

impl Restarts {
    pub fn new(policy: RestartPolicy) -> Restarts {
        Restarts {
            policy,
            count: 0,
            delay: Duration::ZERO,
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// After `exit`: `Some(delay)` to restart after that long, `None` to stay exited.
    pub fn after_exit(&mut self, exit: Exit) -> Option<Duration> {
        if exit.stopped_by_user {
            return None;
        }
        let restart = match self.policy {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure { max_retries } => {
                exit.code != 0 && max_retries.is_none_or(|max| self.count < max)
            }
        };
        if !restart {
            return None;
        }
        self.delay = if exit.ran_for >= GOOD_RUN || self.delay.is_zero() {
            FIRST_DELAY
        } else {
            (self.delay * 2).min(MAX_DELAY)
        };
        self.count += 1;
        Some(self.delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(code: i32, ran_ms: u64) -> Exit {
        Exit {
            code,
            ran_for: Duration::from_millis(ran_ms),
            stopped_by_user: false,
        }
    }

    #[test]
    fn on_failure_3_restarts_exactly_three_times() {
        let mut r = Restarts::new(RestartPolicy::OnFailure {
            max_retries: Some(3),
        });
        let delays: Vec<Option<Duration>> = (0..5).map(|_| r.after_exit(exit(1, 5))).collect();
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(delays, [ms(100), ms(200), ms(400), None, None]);
        assert_eq!(r.count(), 3);
        // A clean exit is not a failure.
        let mut r = Restarts::new(RestartPolicy::OnFailure { max_retries: None });
        assert_eq!(r.after_exit(exit(0, 5)), None);
        assert!(
            r.after_exit(exit(137, 5)).is_some(),
            "an OOM kill is a failure"
        );
    }

    #[test]
    fn the_delay_doubles_to_a_minute_and_a_good_run_resets_it() {
        let mut r = Restarts::new(RestartPolicy::Always);
        let mut last = Duration::ZERO;
        for _ in 0..20 {
            last = r.after_exit(exit(0, 1)).expect("always restarts");
        }
        assert_eq!(last, MAX_DELAY);
        assert_eq!(r.after_exit(exit(0, 10_000)), Some(FIRST_DELAY));
        assert_eq!(r.count(), 21);
    }

    #[test]
    fn no_policy_and_user_stops_keep_it_down() {
        let mut r = Restarts::new(RestartPolicy::No);
        assert_eq!(r.after_exit(exit(1, 1)), None);
        for policy in [
            RestartPolicy::Always,
            RestartPolicy::UnlessStopped,
            RestartPolicy::OnFailure { max_retries: None },
        ] {
            let mut r = Restarts::new(policy);
            let stopped = Exit {
                stopped_by_user: true,
                ..exit(143, 1)
            };
            assert_eq!(r.after_exit(stopped), None, "{policy:?}");
        }
    }
}
