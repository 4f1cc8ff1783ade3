//! The verdict cache in front of the checker: [`StatementCache`] says why
//! it exists and how it stays bounded.

use std::collections::{HashMap, HashSet};
use std::sync::{PoisonError, RwLock};

use super::dml_walker::check_statement_here;
use super::parse::Input;
use super::{
    Dialect, MAX_CACHED_BYTES, MAX_CACHED_STATEMENTS, Refusal, StatementKind, on_checker_stack,
};

/// A per-component cache of verdicts, keyed by statement text.
///
/// The same statement text reaches the host on every request, and a check
/// (a parse on a thread of its own) is far more expensive than a hash lookup.
/// Verdicts depend on the dialect and the component's tables, so the cache
/// remembers which ones its verdicts are based on and starts over if a call
/// passes others; give each loaded component version a cache of its own.
/// It is bounded: when full it starts over, so a component that generates
/// endless distinct statements costs a bounded amount of memory.
#[derive(Debug, Default)]
pub struct StatementCache {
    state: RwLock<CacheState>,
}

#[derive(Debug, Default)]
struct CacheState {
    /// Dialect and tables the cached verdicts were based on.
    basis: Option<(Dialect, HashSet<String>)>,
    /// Verdicts by statement text, refusals included (a refused statement
    /// tends to be retried just as often as an accepted one).
    by_text: HashMap<String, Result<StatementKind, Refusal>>,
    /// Sum of the cached statement lengths, to bound memory by bytes too.
    bytes: usize,
}

impl CacheState {
    fn is_based_on(&self, dialect: Dialect, owned: &HashSet<String>) -> bool {
        self.basis
            .as_ref()
            .is_some_and(|(basis_dialect, basis_owned)| {
                *basis_dialect == dialect && basis_owned == owned
            })
    }
}

impl StatementCache {
    /// The verdict of [`check_statement`](super::check_statement) on `sql`,
    /// from the cache when the same text was checked before with the same
    /// dialect and tables.
    pub fn check(
        &self,
        dialect: Dialect,
        sql: &str,
        owned: &HashSet<String>,
    ) -> Result<StatementKind, Refusal> {
        {
            // Every entry is a complete verdict, so a panic elsewhere while
            // the lock was held cannot have left anything half-written.
            let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
            if state.is_based_on(dialect, owned)
                && let Some(verdict) = state.by_text.get(sql)
            {
                return verdict.clone();
            }
        }
        // A check that could not run at all is reported but not cached.
        let verdict = on_checker_stack(|| check_statement_here(dialect, sql, owned))?;
        if Input::Statement.fits(sql) {
            let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
            if !state.is_based_on(dialect, owned) {
                *state = CacheState {
                    basis: Some((dialect, owned.clone())),
                    ..CacheState::default()
                };
            }
            if state.by_text.len() >= MAX_CACHED_STATEMENTS
                || state.bytes + sql.len() > MAX_CACHED_BYTES
            {
                state.by_text.clear();
                state.bytes = 0;
            }
            if state
                .by_text
                .insert(sql.to_owned(), verdict.clone())
                .is_none()
            {
                state.bytes += sql.len();
            }
        }
        verdict
    }

    /// How many verdicts the cache holds.
    pub fn len(&self) -> usize {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .by_text
            .len()
    }

    /// Whether the cache holds no verdict.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashSet;

    use super::super::test_support::{BOTH, owned};
    use super::super::{MAX_STATEMENT_BYTES, check_statement};
    use super::*;

    #[test]
    fn the_cache_returns_the_same_verdicts_as_the_checker() {
        let cache = StatementCache::default();
        assert!(cache.is_empty());
        for &dialect in BOTH {
            for sql in [
                "SELECT * FROM sales",
                "DELETE FROM sales",
                "SELECT * FROM customers",
                "PRAGMA x = 1",
            ] {
                let expected = check_statement(dialect, sql, &owned());
                assert_eq!(
                    cache.check(dialect, sql, &owned()),
                    expected,
                    "first: {sql}"
                );
                assert_eq!(
                    cache.check(dialect, sql, &owned()),
                    expected,
                    "cached: {sql}"
                );
            }
            assert_eq!(cache.len(), 4);
        }
    }

    #[test]
    fn the_cache_starts_over_when_the_tables_or_the_dialect_change() {
        let cache = StatementCache::default();
        let sql = "SELECT * FROM customers";
        assert!(cache.check(Dialect::Postgres, sql, &owned()).is_err());
        assert_eq!(cache.len(), 1);
        let customers: HashSet<String> = ["customers".to_owned()].into();
        assert_eq!(
            cache.check(Dialect::Postgres, sql, &customers),
            Ok(StatementKind::Read)
        );
        assert_eq!(cache.len(), 1);
        assert!(cache.check(Dialect::Postgres, sql, &owned()).is_err());
        let current_role = "SELECT current_role FROM sales";
        assert!(
            cache
                .check(Dialect::Postgres, current_role, &owned())
                .is_err()
        );
        assert_eq!(
            cache.check(Dialect::Sqlite, current_role, &owned()),
            Ok(StatementKind::Read)
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = StatementCache::default();
        for i in 0..MAX_CACHED_STATEMENTS + 10 {
            let sql = format!("SELECT {i} FROM sales");
            assert_eq!(
                cache.check(Dialect::Sqlite, &sql, &owned()),
                Ok(StatementKind::Read)
            );
            assert!(cache.len() <= MAX_CACHED_STATEMENTS);
        }
        assert!(!cache.is_empty());
        // Statements too long to check are not cached at all.
        let long = format!("SELECT 1{}", " ".repeat(MAX_STATEMENT_BYTES));
        let before = cache.len();
        assert!(cache.check(Dialect::Sqlite, &long, &owned()).is_err());
        assert_eq!(cache.len(), before);
    }

    #[test]
    fn the_cache_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<StatementCache>();
        let cache = std::sync::Arc::new(StatementCache::default());
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let cache = std::sync::Arc::clone(&cache);
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let sql = format!("SELECT {} FROM sales", i % 10 + t);
                        assert_eq!(
                            cache.check(Dialect::Sqlite, &sql, &owned()),
                            Ok(StatementKind::Read)
                        );
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(cache.len(), 13);
    }
}
