//! The host's background work: one stop signal for every task it starts,
//! the tasks' handles (awaited with a bound at shutdown), what each loop is
//! failing at right now (for `/health/status`), and the two small tools
//! every loop uses on errors: [`Backoff`] (exponential, capped, jittered
//! retry delays) and [`FailureLog`] (log a persisting failure when it
//! starts, at most once a [`FAILURE_LOG_EVERY`] while it lasts, and when it
//! ends — never once per tick).
//!
//! Why one signal for everything: a loop that does not hear the shutdown
//! keeps a process alive after its server and pool are gone, and then
//! fails at once on every iteration (issue #10: 100 % CPU and gigabytes of
//! log). Every task is spawned through [`Background::spawn`], so it gets
//! the signal and is awaited.

use std::{
    collections::BTreeMap,
    fmt::Display,
    future::Future,
    sync::Mutex,
    time::{Duration, Instant},
};

use tokio::{sync::watch, task::JoinHandle};

/// How often a persisting failure is logged again while it lasts.
pub const FAILURE_LOG_EVERY: Duration = Duration::from_secs(60);

/// Owns the stop signal and the handles of every background task.
#[derive(Debug)]
pub struct Background {
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<(&'static str, JoinHandle<()>)>>,
    problems: Mutex<BTreeMap<&'static str, Problem>>,
}

/// A failure a background loop reports for health.
#[derive(Debug, Clone)]
pub struct Problem {
    /// What fails, e.g. `cannot reach the database: ...`.
    pub detail: String,
    /// When it started failing.
    pub since: Instant,
}

/// A task's view of the stop signal; cheap to clone.
#[derive(Debug, Clone)]
pub struct StopSignal(watch::Receiver<bool>);

impl StopSignal {
    /// Resolves once the host is stopping (or the [`Background`] is gone).
    pub async fn stopped(&self) {
        let mut receiver = self.0.clone();
        // An error means the sender is gone: nothing can stop us any more
        // and nobody needs us, so treat it as stopped too.
        let _ = receiver.wait_for(|stopping| *stopping).await;
    }

    /// Whether the host is stopping.
    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }
}

impl Default for Background {
    fn default() -> Self {
        Self::new()
    }
}

impl Background {
    /// No tasks yet, not stopping.
    pub fn new() -> Self {
        Self {
            stop: watch::Sender::new(false),
            tasks: Mutex::new(Vec::new()),
            problems: Mutex::new(BTreeMap::new()),
        }
    }

    /// The stop signal, for a task to select on.
    pub fn signal(&self) -> StopSignal {
        StopSignal(self.stop.subscribe())
    }

    /// Run `task` until it returns; it must return soon after
    /// [`StopSignal::stopped`] resolves. Nothing is started once stopping.
    pub fn spawn<F>(&self, name: &'static str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if *self.stop.borrow() {
            tracing::debug!(task = name, "not started: the host is stopping");
            return;
        }
        let handle = tokio::spawn(task);
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|(_, handle)| !handle.is_finished());
        tasks.push((name, handle));
    }

    /// Tell every task to stop (idempotent).
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Stop, and wait up to `bound` for every task to end; tasks still
    /// running then are aborted. Returns whether all ended on their own.
    pub async fn stop_and_join(&self, bound: Duration) -> bool {
        self.stop();
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        let deadline = tokio::time::Instant::now() + bound;
        let mut clean = true;
        for (name, mut handle) in tasks {
            match tokio::time::timeout_at(deadline, &mut handle).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(task = name, "background task failed: {error}");
                }
                Err(_) => {
                    tracing::warn!(
                        task = name,
                        ?bound,
                        "background task did not stop in time; aborted"
                    );
                    handle.abort();
                    clean = false;
                }
            }
        }
        clean
    }

    /// Record that loop `source` is failing with `detail` (keeps the first
    /// `since` while it lasts), or with `None` that it works again.
    pub fn report(&self, source: &'static str, detail: Option<String>) {
        let mut problems = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        match detail {
            Some(detail) => {
                let since = problems.get(source).map_or_else(Instant::now, |p| p.since);
                problems.insert(source, Problem { detail, since });
            }
            None => {
                problems.remove(source);
            }
        }
    }

    /// What is failing now, by loop name.
    pub fn problems(&self) -> Vec<(&'static str, Problem)> {
        let problems = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        problems.iter().map(|(k, v)| (*k, v.clone())).collect()
    }
}

/// Exponential retry delays: `base`, `2 * base`, ... up to `cap`, each
/// with "equal jitter" (a random point in the upper half of the step), so
/// replicas that failed together do not retry together, and the retry rate
/// never exceeds one per `base / 2`.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    /// Delays from `base` doubling up to `cap`.
    pub const fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            failures: 0,
        }
    }

    /// The delay before the next retry, and count this failure.
    pub fn next_delay(&mut self) -> Duration {
        self.next_delay_with(random_fraction())
    }

    /// [`Backoff::next_delay`] with the jitter given (`0.0..=1.0`).
    pub fn next_delay_with(&mut self, jitter: f64) -> Duration {
        let step = self
            .base
            .saturating_mul(2u32.saturating_pow(self.failures.min(31)))
            .min(self.cap);
        // Stop counting once at the cap, so the count cannot overflow in a
        // failure that lasts for months.
        if step < self.cap {
            self.failures = self.failures.saturating_add(1);
        }
        let half = step / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }

    /// Back to `base` after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A uniformly random number in `0.0..1.0` from the OS.
fn random_fraction() -> f64 {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    f64::from(OsRng.next_u32()) / (f64::from(u32::MAX) + 1.0)
}

/// Logs a persisting failure of one activity without flooding: the first
/// failure, then at most one reminder per interval (with how many failures
/// it covers), then one line when it works again.
#[derive(Debug, Clone)]
pub struct FailureLog {
    what: String,
    every: Duration,
    failing: Option<Failing>,
}

#[derive(Debug, Clone)]
struct Failing {
    since: Instant,
    last_logged: Instant,
    unlogged: u64,
    total: u64,
}

/// What [`FailureLog::on_failure`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A new failure: log it.
    Started,
    /// Still failing and a reminder is due: log it, with how many failures
    /// happened since the last line and for how long it has lasted.
    Reminder {
        /// Failures since the last line, this one included.
        failures: u64,
        /// Time since the failure started.
        lasting: Duration,
    },
    /// Still failing, already said recently: stay quiet.
    Quiet,
}

/// What [`FailureLog::on_success`] decided when a failure ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Failures in all.
    pub failures: u64,
    /// How long it lasted.
    pub lasted: Duration,
}

impl FailureLog {
    /// A log for `what` (e.g. `reconciling deployments`), reminding at most
    /// once per [`FAILURE_LOG_EVERY`].
    pub fn new(what: impl Into<String>) -> Self {
        Self::with_interval(what, FAILURE_LOG_EVERY)
    }

    /// A log reminding at most once per `every`.
    pub fn with_interval(what: impl Into<String>, every: Duration) -> Self {
        Self {
            what: what.into(),
            every,
            failing: None,
        }
    }

    /// Whether a failure is in progress.
    pub fn is_failing(&self) -> bool {
        self.failing.is_some()
    }

    /// Decide about a failure at `now`.
    pub fn on_failure(&mut self, now: Instant) -> Verdict {
        match &mut self.failing {
            None => {
                self.failing = Some(Failing {
                    since: now,
                    last_logged: now,
                    unlogged: 0,
                    total: 1,
                });
                Verdict::Started
            }
            Some(failing) => {
                failing.total += 1;
                failing.unlogged += 1;
                if now.saturating_duration_since(failing.last_logged) >= self.every {
                    let failures = std::mem::take(&mut failing.unlogged);
                    failing.last_logged = now;
                    Verdict::Reminder {
                        failures,
                        lasting: now.saturating_duration_since(failing.since),
                    }
                } else {
                    Verdict::Quiet
                }
            }
        }
    }

    /// Decide about a success at `now`: `Some` if a failure just ended.
    pub fn on_success(&mut self, now: Instant) -> Option<Recovered> {
        self.failing.take().map(|failing| Recovered {
            failures: failing.total,
            lasted: now.saturating_duration_since(failing.since),
        })
    }

    /// Log `error` as a warning if [`FailureLog::on_failure`] says so.
    pub fn failed(&mut self, error: &dyn Display) {
        match self.on_failure(Instant::now()) {
            Verdict::Started => tracing::warn!("{} is failing: {error}", self.what),
            Verdict::Reminder { failures, lasting } => tracing::warn!(
                failures,
                lasting_s = lasting.as_secs(),
                "{} is still failing: {error}",
                self.what
            ),
            Verdict::Quiet => {}
        }
    }

    /// Log the end of a failure, if one was in progress.
    pub fn succeeded(&mut self) {
        if let Some(Recovered { failures, lasted }) = self.on_success(Instant::now()) {
            tracing::info!(
                failures,
                lasted_s = lasted.as_secs(),
                "{} works again",
                self.what
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets() {
        let mut backoff = Backoff::new(S, 8 * S);
        let full: Vec<_> = (0..6).map(|_| backoff.next_delay_with(1.0)).collect();
        assert_eq!(full, [S, 2 * S, 4 * S, 8 * S, 8 * S, 8 * S]);
        backoff.reset();
        assert_eq!(backoff.next_delay_with(1.0), S);
    }

    #[test]
    fn backoff_jitter_stays_in_the_upper_half_of_each_step() {
        let mut backoff = Backoff::new(2 * S, 60 * S);
        assert_eq!(backoff.next_delay_with(0.0), S);
        assert_eq!(backoff.next_delay_with(0.5), 3 * S);
        for _ in 0..10 {
            backoff.next_delay_with(1.0);
        }
        for _ in 0..100 {
            let delay = backoff.next_delay();
            assert!((30 * S..=60 * S).contains(&delay), "{delay:?}");
        }
    }

    #[test]
    fn backoff_survives_a_failure_that_never_ends() {
        let mut backoff = Backoff::new(Duration::from_millis(1), Duration::MAX);
        for _ in 0..1000 {
            backoff.next_delay_with(1.0);
        }
        assert!(backoff.next_delay_with(1.0) > Duration::from_secs(1));
    }

    #[test]
    fn a_persisting_failure_is_logged_when_it_starts_then_once_per_interval() {
        let mut log = FailureLog::with_interval("x", 60 * S);
        let t0 = Instant::now();
        assert_eq!(log.on_failure(t0), Verdict::Started);
        // A failure every 10 ms for ten minutes: 60 000 failures.
        let mut lines = 1;
        for i in 1..60_000u32 {
            if log.on_failure(t0 + Duration::from_millis(10) * i) != Verdict::Quiet {
                lines += 1;
            }
        }
        assert_eq!(lines, 10, "one line at the start, one per minute after");
        assert!(log.is_failing());
    }

    #[test]
    fn a_reminder_counts_the_failures_it_covers() {
        let mut log = FailureLog::with_interval("x", 60 * S);
        let t0 = Instant::now();
        log.on_failure(t0);
        for i in 1..=5 {
            assert_eq!(log.on_failure(t0 + i * S), Verdict::Quiet);
        }
        assert_eq!(
            log.on_failure(t0 + 61 * S),
            Verdict::Reminder {
                failures: 6,
                lasting: 61 * S
            }
        );
    }

    #[test]
    fn the_end_of_a_failure_is_reported_once() {
        let mut log = FailureLog::with_interval("x", 60 * S);
        let t0 = Instant::now();
        assert_eq!(log.on_success(t0), None, "no failure, nothing to say");
        log.on_failure(t0);
        log.on_failure(t0 + S);
        assert_eq!(
            log.on_success(t0 + 3 * S),
            Some(Recovered {
                failures: 2,
                lasted: 3 * S
            })
        );
        assert_eq!(log.on_success(t0 + 4 * S), None);
        assert_eq!(
            log.on_failure(t0 + 5 * S),
            Verdict::Started,
            "a new failure"
        );
    }

    #[tokio::test]
    async fn stopping_ends_every_task_and_joins_them() {
        let background = Background::new();
        for _ in 0..3 {
            let stop = background.signal();
            background.spawn("waiter", async move { stop.stopped().await });
        }
        assert!(background.stop_and_join(Duration::from_secs(10)).await);
        assert!(background.signal().is_stopped());
    }

    #[tokio::test]
    async fn a_task_that_ignores_the_signal_is_aborted_after_the_bound() {
        let background = Background::new();
        background.spawn("stubborn", std::future::pending());
        assert!(!background.stop_and_join(Duration::from_millis(50)).await);
        // Nothing starts once stopping.
        background.spawn("late", std::future::pending());
        assert!(background.stop_and_join(Duration::from_secs(10)).await);
    }

    #[test]
    fn problems_keep_when_they_started_until_cleared() {
        let background = Background::new();
        background.report("reconciler", Some("down".into()));
        let since = background.problems()[0].1.since;
        background.report("reconciler", Some("still down".into()));
        let problems = background.problems();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].1.detail, "still down");
        assert_eq!(problems[0].1.since, since);
        background.report("reconciler", None);
        assert!(background.problems().is_empty());
    }
}
