//! The host's SQL statement checker: decides whether a component may run a
//! statement, and whether a component's migration may run at all.
//!
//! Components never get a connection; every statement they send passes
//! [`check_statement`] (through a per-component [`StatementCache`]) first.
//! A statement is accepted only if it is exactly one SELECT, INSERT, UPDATE or
//! DELETE (CTEs allowed) and every table it can reach belongs to the calling
//! component. Migrations pass [`check_migration`], which allows a small set of
//! DDL on the component's own, name-prefixed tables and reports which tables
//! they create and drop, so the host can keep its ownership records.
//!
//! The checker is an allowlist walk over the `sqlparser` AST: every node kind
//! it does not know to be harmless is refused, so a construct this module has
//! never heard of (or a new one after a parser upgrade) fails closed. Structs
//! are destructured without `..`, so a parser upgrade that adds a field stops
//! the build here instead of silently skipping what the field holds.
//!
//! Names are compared in canonical form: unquoted identifiers folded to ASCII
//! lower case, quotes stripped. A quoted identifier with an ASCII upper-case
//! letter is refused, because PostgreSQL would treat `"Customers"` as a table
//! distinct from `customers` while SQLite would not; refusing it keeps one
//! canonical name per table on both backends.
//!
//! The parts: `parse` (what text may reach the parser, and the parse),
//! `names` (canonical names), `dml_walker` (the statement walker),
//! `migration` (the migration checker) and `cache` (verdicts remembered per
//! statement text). This file holds the entry points and every limit, so
//! the bounds the checker enforces can be read in one place.

mod cache;
mod dml_walker;
mod migration;
mod names;
mod parse;
#[cfg(test)]
mod test_support;

use std::collections::HashSet;
use std::fmt::Display;

pub use cache::StatementCache;

/// Longest component statement the checker looks at, in bytes. Component
/// statements are short; the bound keeps parsing and the verdict cache cheap.
/// The check and the cache both read it through `parse::Input`, so they
/// cannot disagree on what is too long.
pub const MAX_STATEMENT_BYTES: usize = 64 * 1024;

/// Longest migration file the checker looks at, in bytes. A bound of its own,
/// not a second copy of [`MAX_STATEMENT_BYTES`]: a migration is a file of many
/// statements, checked once per deployment rather than on every request, and
/// each statement in it is still held to `MAX_TOKENS_PER_STATEMENT`.
pub const MAX_MIGRATION_BYTES: usize = 1024 * 1024;

/// Most non-whitespace tokens one statement may have. `sqlparser` builds long
/// operator chains (`1+1+1...`) iteratively but drops and walks them
/// recursively, so without this bound a hostile statement could overflow the
/// stack and abort the host. Every level of nesting needs at least one token.
/// This bounds depth, which the byte limits do not: 64 KiB of `+1` is
/// 65,536 tokens.
const MAX_TOKENS_PER_STATEMENT: usize = 4096;

/// Stack of the thread a check runs on. The parser may recurse to its
/// default depth limit (50) and the walker to [`MAX_NESTING`]; unoptimised
/// builds need a few MiB for that. Untouched stack pages cost no memory.
const CHECKER_STACK_BYTES: usize = 16 * 1024 * 1024;

/// Deepest AST nesting the walker follows before it refuses.
const MAX_NESTING: usize = 256;

/// Most verdicts one [`StatementCache`] keeps before it starts over.
pub const MAX_CACHED_STATEMENTS: usize = 4096;

/// Most statement bytes one [`StatementCache`] keeps before it starts over.
const MAX_CACHED_BYTES: usize = 4 * 1024 * 1024;

/// The database backend whose SQL dialect a statement is parsed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// SQLite, the embedded default backend.
    Sqlite,
    /// PostgreSQL, the production backend.
    Postgres,
}

/// The verdict on an accepted component statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatementKind {
    /// The statement only reads (a SELECT, possibly with CTEs).
    Read,
    /// The statement writes: an INSERT, UPDATE or DELETE, at the top level or
    /// inside a CTE.
    Write,
}

/// Why the checker refused a statement or a migration. The reason names the
/// problem in words meant for the component's author; it never contains data
/// read from the database.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refusal {
    /// Human-readable reason, e.g. "table `customers` is not one of this
    /// component's tables".
    reason: String,
}

impl Refusal {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }

    /// The reason, suitable for the component's author.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

type Checked<T = ()> = Result<T, Refusal>;

/// What an accepted migration does to the component's set of tables.
/// Names are canonical (lower case, unquoted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrationEffects {
    /// Tables the migration creates (including the new name of a renamed
    /// table), in the order it creates them.
    pub created_tables: Vec<String>,
    /// Tables the migration drops (including the old name of a renamed
    /// table) that existed before it ran.
    pub dropped_tables: Vec<String>,
    /// Indexes the migration creates (every index must be named): the host
    /// records them as the component's, like its tables.
    pub created_indexes: Vec<String>,
    /// Indexes the migration drops, all the component's own.
    pub dropped_indexes: Vec<String>,
}

/// Checks one statement a component wants to run.
///
/// `owned` holds the canonical (lower-case) names of the tables the calling
/// component's migrations created. The statement is accepted only if it is
/// exactly one SELECT/INSERT/UPDATE/DELETE, optionally with CTEs, that reaches
/// no table outside `owned`, calls only allowlisted functions, and uses no
/// schema-qualified names. See the module documentation for the details.
///
/// The check runs on a short-lived thread of its own with a large stack (see
/// [`StatementCache`] for why that is cheap in practice), so a hostile
/// statement cannot overflow the caller's stack, which may be a small one
/// such as a WebAssembly fiber's.
pub fn check_statement(
    dialect: Dialect,
    sql: &str,
    owned: &HashSet<String>,
) -> Result<StatementKind, Refusal> {
    on_checker_stack(|| dml_walker::check_statement_here(dialect, sql, owned))
        .and_then(|verdict| verdict)
}

/// Checks a component's migration file before the host applies it, and
/// reports which tables it creates and drops.
///
/// `component` is the component's name: every table the migration creates
/// must be named `<component>` or `<component>_...`. `owned_before` holds the
/// component's tables and `indexes_before` its indexes before this migration;
/// `owned_by_others` says whether a canonical name is a table or an index of
/// another component.
///
/// Each statement must be one of: CREATE TABLE (columns and constraints only;
/// no `AS SELECT`, `LIKE`, `INHERITS`, temporary tables or foreign keys to
/// tables the component does not own), CREATE (UNIQUE) INDEX on an own table,
/// ALTER TABLE of an own table (add/drop/rename column, rename to another
/// allowed name, add/drop constraint, change a column's default, nullability
/// or type), DROP TABLE of own tables and DROP INDEX of own indexes (no
/// CASCADE), or INSERT/UPDATE/DELETE (seed data)
/// passing the same checks as [`check_statement`].
///
/// Like [`check_statement`], the check runs on a thread of its own.
pub fn check_migration(
    dialect: Dialect,
    sql: &str,
    component: &str,
    owned_before: &HashSet<String>,
    indexes_before: &HashSet<String>,
    owned_by_others: &(dyn Fn(&str) -> bool + Sync),
) -> Result<MigrationEffects, Refusal> {
    on_checker_stack(|| {
        migration::check_migration_here(
            dialect,
            sql,
            component,
            owned_before,
            indexes_before,
            owned_by_others,
        )
    })
    .and_then(|effects| effects)
}

/// Runs `check` on a fresh thread with [`CHECKER_STACK_BYTES`] of stack, so
/// that parsing, walking and dropping a statement's tree cannot overflow the
/// caller's stack. The parsed tree never leaves that thread. The outer error
/// means the check could not run at all (no thread, or a panic in the
/// parser); such a result must not be cached.
fn on_checker_stack<T: Send>(
    check: impl FnOnce() -> Result<T, Refusal> + Send,
) -> Result<Result<T, Refusal>, Refusal> {
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("souk-sql-check".to_owned())
            .stack_size(CHECKER_STACK_BYTES)
            .spawn_scoped(scope, check)
            .map_err(|error| {
                Refusal::new(format!("the host could not check the statement: {error}"))
            })?;
        handle
            .join()
            .map_err(|_| Refusal::new("the host failed to check the statement"))
    })
}

/// A short excerpt of an AST node for a refusal message.
fn excerpt(node: &impl Display) -> String {
    const MAX_CHARS: usize = 80;
    let text = node.to_string();
    if text.chars().count() <= MAX_CHARS {
        text
    } else {
        let mut short: String = text.chars().take(MAX_CHARS).collect();
        short.push_str("...");
        short
    }
}

fn unsupported(what: &str, node: &impl Display) -> Refusal {
    Refusal::new(format!("{what} is not allowed: `{}`", excerpt(node)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::test_support::{BOTH, assert_accepted, assert_refused};
    use super::{MAX_STATEMENT_BYTES, StatementKind};

    #[test]
    fn refuses_oversized_and_deeply_nested_statements_without_overflowing() {
        let long = format!("SELECT 1{}", " ".repeat(MAX_STATEMENT_BYTES));
        let many_tokens = format!("SELECT 1{}", "+1".repeat(30_000));
        let long_chain = format!("SELECT 1{}", "+1".repeat(2_000));
        let deep_parens = format!("SELECT {}1{}", "(".repeat(1_000), ")".repeat(1_000));
        let deep_not = format!("SELECT {}1", "NOT ".repeat(2_000));
        let deep_subqueries = format!(
            "SELECT 1 FROM sales WHERE id IN {}(SELECT 1{}",
            "(SELECT id FROM sales WHERE id IN ".repeat(200),
            ")".repeat(201)
        );
        // The caller's stack may be small (a WebAssembly fiber's): the check
        // must not depend on it.
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                assert_refused(
                    BOTH,
                    &[
                        (&long, "longer than"),
                        (&many_tokens, "more than 4096 tokens"),
                        (&long_chain, "nested too deeply"),
                        (&deep_parens, "recursion limit"),
                        (&deep_not, "does not parse"),
                        (&deep_subqueries, "recursion limit"),
                    ],
                );
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn accepts_a_long_but_reasonable_statement() {
        let columns: Vec<String> = (0..200).map(|i| format!("c{i}")).collect();
        let params: Vec<String> = (1..=200).map(|i| format!("${i}")).collect();
        let sql = format!(
            "INSERT INTO sales ({}) VALUES ({})",
            columns.join(", "),
            params.join(", ")
        );
        assert_accepted(BOTH, &[(&sql, StatementKind::Write)]);
    }
}
