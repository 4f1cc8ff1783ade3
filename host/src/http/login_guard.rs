//! Brute-force protection for login: failures are counted per username and
//! per client address over a sliding window; past the limit, further
//! attempts get 429 with `Retry-After` until the oldest failure ages out.
//! Successful logins are not counted, so honest users are never throttled.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

/// Entries kept before expired ones are swept, bounding memory.
const SWEEP_AT: usize = 10_000;

/// Failure counters for login attempts.
#[derive(Debug)]
pub struct LoginGuard {
    per_username: usize,
    per_client: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
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
}

impl LoginGuard {
    /// A guard allowing `per_username` and `per_client` failures per `window`.
    pub fn new(per_username: u32, per_client: u32, window: Duration) -> Self {
        Self {
            per_username: per_username as usize,
            per_client: per_client as usize,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after)` if the attempt must be refused now.
    pub fn check(&self, keys: &AttemptKeys, now: Instant) -> Result<(), Duration> {
        let mut failures = self.lock();
        let limits = [
            (keys.username.as_ref(), self.per_username),
            (Some(&keys.client), self.per_client),
        ];
        let mut wait = Duration::ZERO;
        for (key, limit) in limits {
            let Some(times) = key.and_then(|k| failures.get_mut(k)) else {
                continue;
            };
            prune(times, now, self.window);
            if times.len() >= limit {
                let oldest = times.front().copied().unwrap_or(now);
                wait = wait.max(self.window.saturating_sub(now - oldest));
            }
        }
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }

    /// Count a failed attempt.
    pub fn record_failure(&self, keys: &AttemptKeys, now: Instant) {
        let mut failures = self.lock();
        if failures.len() >= SWEEP_AT {
            failures.retain(|_, times| {
                prune(times, now, self.window);
                !times.is_empty()
            });
        }
        for key in keys.username.iter().chain([&keys.client]) {
            failures.entry(key.clone()).or_default().push_back(now);
        }
    }

    /// Forget the username's failures after a successful login.
    pub fn record_success(&self, keys: &AttemptKeys) {
        if let Some(username) = &keys.username {
            self.lock().remove(username);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        // A panic while holding the lock cannot leave the map inconsistent
        // (every update is a single push or removal), so keep using it.
        self.failures
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

    #[test]
    fn refuses_a_username_after_its_failure_budget() {
        let guard = LoginGuard::new(3, 100, WINDOW);
        let keys = AttemptKeys::new(Some("Alice"), "127.0.0.1");
        let start = Instant::now();
        for _ in 0..3 {
            assert!(guard.check(&keys, start).is_ok());
            guard.record_failure(&keys, start);
        }
        let wait = guard.check(&keys, start + Duration::from_secs(10));
        assert_eq!(wait, Err(Duration::from_secs(50)));
        // The same username in other case is the same account.
        assert!(
            guard
                .check(&AttemptKeys::new(Some("ALICE"), "10.0.0.1"), start)
                .is_err()
        );
        // Another username from the same client is still fine.
        assert!(
            guard
                .check(&AttemptKeys::new(Some("bob"), "127.0.0.1"), start)
                .is_ok()
        );
    }

    #[test]
    fn failures_age_out_of_the_window() {
        let guard = LoginGuard::new(1, 100, WINDOW);
        let keys = AttemptKeys::new(Some("alice"), "c");
        let start = Instant::now();
        guard.record_failure(&keys, start);
        assert!(guard.check(&keys, start).is_err());
        assert!(guard.check(&keys, start + WINDOW).is_ok());
    }

    #[test]
    fn refuses_a_client_spraying_many_usernames() {
        let guard = LoginGuard::new(100, 5, WINDOW);
        let start = Instant::now();
        for i in 0..5 {
            guard.record_failure(&AttemptKeys::new(Some(&format!("user{i}")), "c"), start);
        }
        assert!(
            guard
                .check(&AttemptKeys::new(Some("fresh"), "c"), start)
                .is_err()
        );
    }

    #[test]
    fn success_clears_the_username_count() {
        let guard = LoginGuard::new(2, 100, WINDOW);
        let keys = AttemptKeys::new(Some("alice"), "c");
        let start = Instant::now();
        guard.record_failure(&keys, start);
        guard.record_success(&keys);
        guard.record_failure(&keys, start);
        assert!(guard.check(&keys, start).is_ok());
    }
}
