//! Brute-force protection for passwords: failures are counted per username
//! and per client address over a sliding window; past the limit, further
//! attempts get 429 with `Retry-After` until the oldest failure ages out.
//! Successful logins are not counted, so honest users are never throttled.
//!
//! The guard sits where passwords are verified — the `credentials`
//! capability — not where a path string matches, so no spelling of a route
//! that reaches a password check escapes it.
//!
//! An attempt takes a place in its keys' budgets when it is admitted and
//! holds it until its outcome is known. Checking first and counting a
//! failure only once the password was verified would let a burst of
//! concurrent guesses all pass the check before the first failure is
//! counted, making the limit a formality. An attempt that finds every place
//! taken by attempts still in flight waits for one to settle rather than
//! being refused, so concurrent honest logins are only delayed.

use std::{
    collections::{HashMap, VecDeque},
    pin::pin,
    sync::Mutex,
    time::{Duration, Instant},
};

use tokio::sync::Notify;

/// Entries kept before expired ones are swept, bounding memory.
const SWEEP_AT: usize = 10_000;

/// Longest an attempt waits for attempts in flight to settle. They settle
/// within a request's time; past this the attempt is refused.
const MAX_WAIT: Duration = Duration::from_secs(10);

/// `Retry-After` for an attempt refused because it waited too long.
const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Failure counters for login attempts.
#[derive(Debug)]
pub struct LoginGuard {
    per_username: usize,
    per_client: usize,
    window: Duration,
    counts: Mutex<Counts>,
    /// Woken whenever an attempt settles, for attempts waiting for a place.
    settled: Notify,
}

/// What the guard remembers, behind one lock so admission is atomic.
#[derive(Debug, Default)]
struct Counts {
    /// Times of recent failures, oldest first, per key.
    failures: HashMap<String, VecDeque<Instant>>,
    /// Attempts admitted whose outcome is not known yet, per key; a key is
    /// removed when its count returns to zero.
    in_flight: HashMap<String, usize>,
}

/// The keys one login attempt is counted under.
#[derive(Debug, Clone)]
pub struct AttemptKeys {
    username: Option<String>,
    client: String,
}

impl AttemptKeys {
    /// Keys for an attempt on `username` (if the body named one) from `client`.
    pub fn new(username: Option<&str>, client: &str) -> Self {
        Self {
            username: username.map(|u| format!("user:{}", u.to_lowercase())),
            client: format!("client:{client}"),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &String> {
        self.username.iter().chain([&self.client])
    }
}

/// What [`LoginGuard::try_admit`] decided.
#[derive(Debug)]
pub enum Admission<'a> {
    /// Go ahead; settle the attempt when its outcome is known.
    Admitted(Attempt<'a>),
    /// Every place is taken by attempts still in flight; try again when
    /// one settles.
    Busy,
    /// Too many recent failures: refuse, retrying after this long.
    Refused(Duration),
}

/// An admitted login attempt, holding its place in the budgets until it is
/// settled with [`Attempt::failed`] or [`Attempt::succeeded`]. Dropped
/// unsettled (a malformed body, a server error, or a client that went away
/// mid-request), it gives its place back without counting as a failure.
#[derive(Debug)]
#[must_use = "settle the attempt, or drop it to give its place back"]
pub struct Attempt<'a> {
    guard: &'a LoginGuard,
    keys: AttemptKeys,
    settled: bool,
}

impl Attempt<'_> {
    /// The credentials were wrong: count a failure.
    pub fn failed(mut self, now: Instant) {
        let window = self.guard.window;
        let mut counts = self.guard.lock();
        if counts.failures.len() >= SWEEP_AT {
            counts.failures.retain(|_, times| {
                prune(times, now, window);
                !times.is_empty()
            });
        }
        for key in self.keys.iter() {
            counts
                .failures
                .entry(key.clone())
                .or_default()
                .push_back(now);
        }
        counts.release(&self.keys);
        drop(counts);
        self.settled = true;
        self.guard.settled.notify_waiters();
    }

    /// The login succeeded: forget the username's failures.
    pub fn succeeded(mut self) {
        let mut counts = self.guard.lock();
        if let Some(username) = &self.keys.username {
            counts.failures.remove(username);
        }
        counts.release(&self.keys);
        drop(counts);
        self.settled = true;
        self.guard.settled.notify_waiters();
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.guard.lock().release(&self.keys);
            self.guard.settled.notify_waiters();
        }
    }
}

impl Counts {
    /// Gives back the places an attempt on `keys` held.
    fn release(&mut self, keys: &AttemptKeys) {
        for key in keys.iter() {
            if let Some(count) = self.in_flight.get_mut(key) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.in_flight.remove(key);
                }
            }
        }
    }
}

impl LoginGuard {
    /// A guard allowing `per_username` and `per_client` failures per `window`.
    pub fn new(per_username: u32, per_client: u32, window: Duration) -> Self {
        Self {
            per_username: per_username as usize,
            per_client: per_client as usize,
            window,
            counts: Mutex::new(Counts::default()),
            settled: Notify::new(),
        }
    }

    /// Admits an attempt on `keys`, waiting while every place is taken by
    /// attempts in flight, or `Err(retry_after)` if it must be refused.
    pub async fn admit(&self, keys: AttemptKeys) -> Result<Attempt<'_>, Duration> {
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        loop {
            // Registered before the check, so a settlement between the
            // check and the wait is not missed.
            let mut settled = pin!(self.settled.notified());
            settled.as_mut().enable();
            match self.try_admit(&keys, Instant::now()) {
                Admission::Admitted(attempt) => return Ok(attempt),
                Admission::Refused(wait) => return Err(wait),
                Admission::Busy => {
                    if tokio::time::timeout_at(deadline, settled).await.is_err() {
                        return Err(BUSY_RETRY_AFTER);
                    }
                }
            }
        }
    }

    /// Decides on an attempt on `keys` at `now` without waiting. Recent
    /// failures and attempts in flight both use up a key's budget, so no
    /// more guesses than the budget are ever being checked.
    pub fn try_admit(&self, keys: &AttemptKeys, now: Instant) -> Admission<'_> {
        let mut counts = self.lock();
        let limits = [
            (keys.username.as_ref(), self.per_username),
            (Some(&keys.client), self.per_client),
        ];
        let mut wait = Duration::ZERO;
        let mut busy = false;
        for (key, limit) in limits {
            let Some(key) = key else {
                continue;
            };
            let failed = match counts.failures.get_mut(key) {
                Some(times) => {
                    prune(times, now, self.window);
                    if times.len() >= limit {
                        let oldest = times.front().copied().unwrap_or(now);
                        wait = wait.max(self.window.saturating_sub(now - oldest));
                    }
                    times.len()
                }
                None => 0,
            };
            let in_flight = counts.in_flight.get(key).copied().unwrap_or(0);
            busy |= failed + in_flight >= limit;
        }
        if !wait.is_zero() {
            return Admission::Refused(wait);
        }
        if busy {
            return Admission::Busy;
        }
        for key in keys.iter() {
            *counts.in_flight.entry(key.clone()).or_default() += 1;
        }
        Admission::Admitted(Attempt {
            guard: self,
            keys: keys.clone(),
            settled: false,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // A panic while holding the lock cannot leave the counts
        // inconsistent (every update is a single push, removal or counter
        // step), so keep using them.
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn prune(times: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while times
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(60);

    /// Admits an attempt on `keys` at `now` and settles it as a failure.
    fn fail(guard: &LoginGuard, keys: &AttemptKeys, now: Instant) {
        match guard.try_admit(keys, now) {
            Admission::Admitted(attempt) => attempt.failed(now),
            other => panic!("not admitted: {other:?}"),
        }
    }

    fn admitted(guard: &LoginGuard, keys: &AttemptKeys, now: Instant) -> bool {
        matches!(guard.try_admit(keys, now), Admission::Admitted(_))
    }

    #[test]
    fn refuses_a_username_after_its_failure_budget() {
        let guard = LoginGuard::new(3, 100, WINDOW);
        let keys = AttemptKeys::new(Some("Alice"), "127.0.0.1");
        let start = Instant::now();
        for _ in 0..3 {
            fail(&guard, &keys, start);
        }
        let later = start + Duration::from_secs(10);
        assert!(matches!(
            guard.try_admit(&keys, later),
            Admission::Refused(wait) if wait == Duration::from_secs(50)
        ));
        // The same username in other case is the same account.
        let other_case = AttemptKeys::new(Some("ALICE"), "10.0.0.1");
        assert!(matches!(
            guard.try_admit(&other_case, start),
            Admission::Refused(_)
        ));
        // Another username from the same client is still fine.
        assert!(admitted(
            &guard,
            &AttemptKeys::new(Some("bob"), "127.0.0.1"),
            start
        ));
    }

    #[test]
    fn failures_age_out_of_the_window() {
        let guard = LoginGuard::new(1, 100, WINDOW);
        let keys = AttemptKeys::new(Some("alice"), "c");
        let start = Instant::now();
        fail(&guard, &keys, start);
        assert!(!admitted(&guard, &keys, start));
        assert!(admitted(&guard, &keys, start + WINDOW));
    }

    #[test]
    fn refuses_a_client_spraying_many_usernames() {
        let guard = LoginGuard::new(100, 5, WINDOW);
        let start = Instant::now();
        for i in 0..5 {
            fail(
                &guard,
                &AttemptKeys::new(Some(&format!("user{i}")), "c"),
                start,
            );
        }
        assert!(!admitted(
            &guard,
            &AttemptKeys::new(Some("fresh"), "c"),
            start
        ));
    }

    #[test]
    fn success_clears_the_username_count() {
        let guard = LoginGuard::new(2, 100, WINDOW);
        let keys = AttemptKeys::new(Some("alice"), "c");
        let start = Instant::now();
        fail(&guard, &keys, start);
        match guard.try_admit(&keys, start) {
            Admission::Admitted(attempt) => attempt.succeeded(),
            other => panic!("not admitted: {other:?}"),
        }
        fail(&guard, &keys, start);
        assert!(admitted(&guard, &keys, start));
    }

    #[test]
    fn attempts_in_flight_use_up_the_budget_until_they_settle() {
        let guard = LoginGuard::new(2, 100, WINDOW);
        let keys = AttemptKeys::new(Some("alice"), "c");
        let now = Instant::now();
        let Admission::Admitted(first) = guard.try_admit(&keys, now) else {
            panic!("first attempt not admitted");
        };
        let Admission::Admitted(second) = guard.try_admit(&keys, now) else {
            panic!("second attempt not admitted");
        };
        assert!(matches!(guard.try_admit(&keys, now), Admission::Busy));

        first.failed(now);
        assert!(matches!(guard.try_admit(&keys, now), Admission::Busy));
        second.failed(now);
        assert!(matches!(guard.try_admit(&keys, now), Admission::Refused(_)));
    }

    #[test]
    fn an_attempt_dropped_unsettled_gives_its_place_back_without_a_failure() {
        let guard = LoginGuard::new(1, 100, WINDOW);
        let keys = AttemptKeys::new(Some("alice"), "c");
        let now = Instant::now();
        let attempt = guard.try_admit(&keys, now);
        assert!(matches!(guard.try_admit(&keys, now), Admission::Busy));
        drop(attempt);
        assert!(admitted(&guard, &keys, now));
        let counts = guard.lock();
        assert!(counts.in_flight.is_empty());
        assert!(counts.failures.is_empty());
    }

    #[tokio::test]
    async fn a_waiting_attempt_is_admitted_when_a_place_is_given_back() {
        let guard = LoginGuard::new(1, 100, WINDOW);
        let keys = AttemptKeys::new(Some("alice"), "c");
        let first = guard.admit(keys.clone()).await;
        assert!(first.is_ok());

        let (second, ()) = tokio::join!(guard.admit(keys.clone()), async {
            tokio::task::yield_now().await;
            if let Ok(attempt) = first {
                attempt.succeeded();
            }
        });

        assert!(second.is_ok());
    }

    #[tokio::test]
    async fn a_waiting_attempt_is_refused_when_the_one_in_flight_fails() {
        let guard = LoginGuard::new(1, 100, WINDOW);
        let keys = AttemptKeys::new(Some("alice"), "c");
        let first = guard.admit(keys.clone()).await;

        let (second, ()) = tokio::join!(guard.admit(keys.clone()), async {
            tokio::task::yield_now().await;
            if let Ok(attempt) = first {
                attempt.failed(Instant::now());
            }
        });

        assert!(second.is_err());
    }
}
