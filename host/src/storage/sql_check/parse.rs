//! The checker's front: what SQL text may reach `sqlparser` at all, and the
//! parse itself. Everything here runs before an AST exists, so this is where
//! the bounds live that protect the parser, the walker's stack and the
//! databases from the raw text: no NUL, not too many bytes, not too many
//! tokens in one statement.

use sqlparser::ast::Statement;
use sqlparser::dialect::{PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

use super::{
    Checked, Dialect, MAX_MIGRATION_BYTES, MAX_STATEMENT_BYTES, MAX_TOKENS_PER_STATEMENT, Refusal,
};

impl Dialect {
    fn parser_dialect(self) -> &'static dyn sqlparser::dialect::Dialect {
        match self {
            Dialect::Sqlite => &SQLiteDialect {},
            Dialect::Postgres => &PostgreSqlDialect {},
        }
    }
}

/// The two kinds of SQL text the host is handed. Each has a byte limit of
/// its own (see [`MAX_MIGRATION_BYTES`] for why they differ); the checks and
/// the statement cache both ask this type, so each limit is applied in one
/// place.
#[derive(Clone, Copy)]
pub(super) enum Input {
    /// One statement a component sends at run time.
    Statement,
    /// A whole migration file.
    Migration,
}

impl Input {
    /// How refusals name the text.
    fn noun(self) -> &'static str {
        match self {
            Input::Statement => "statement",
            Input::Migration => "migration",
        }
    }

    fn max_bytes(self) -> usize {
        match self {
            Input::Statement => MAX_STATEMENT_BYTES,
            Input::Migration => MAX_MIGRATION_BYTES,
        }
    }

    /// Whether `sql` is within this kind's byte limit.
    pub(super) fn fits(self, sql: &str) -> bool {
        sql.len() <= self.max_bytes()
    }
}

/// Refuses text that must not reach the parser: a NUL anywhere (see
/// [`refuse_nul`]), then more bytes than its kind allows. Both entry points
/// call this before anything else looks at the text.
pub(super) fn admit(input: Input, sql: &str) -> Checked {
    refuse_nul(sql, input.noun())?;
    if !input.fits(sql) {
        return Err(Refusal::new(format!(
            "the {} is longer than {} bytes",
            input.noun(),
            input.max_bytes()
        )));
    }
    Ok(())
}

/// Refuses SQL text holding a NUL character, wherever it is (code, string
/// literal, quoted identifier or comment). The checker and the databases do
/// not agree on what follows a NUL: `sqlparser` reads past it, SQLite's C API
/// stops at it (and sqlx-sqlite then loops for ever on the remaining "\0",
/// holding the connection and, in a write transaction, SQLite's write lock),
/// PostgreSQL rejects it. No honest statement needs one, so both entry
/// points refuse it before anything else looks at the text.
fn refuse_nul(sql: &str, what: &str) -> Checked {
    match sql.find('\0') {
        Some(at) => Err(Refusal::new(format!(
            "the {what} contains a NUL character (at byte {at})"
        ))),
        None => Ok(()),
    }
}

/// Tokenizes and parses `sql`, refusing statements with too many tokens
/// before the parser builds (and later drops) a dangerously deep tree.
pub(super) fn parse(dialect: Dialect, sql: &str) -> Checked<Vec<Statement>> {
    let parser_dialect = dialect.parser_dialect();
    let tokens = Tokenizer::new(parser_dialect, sql)
        .tokenize_with_location()
        .map_err(|error| Refusal::new(format!("the SQL does not parse: {error}")))?;
    let mut in_statement = 0usize;
    for token in &tokens {
        match token.token {
            Token::Whitespace(_) => {}
            Token::SemiColon => in_statement = 0,
            _ => {
                in_statement += 1;
                if in_statement > MAX_TOKENS_PER_STATEMENT {
                    return Err(Refusal::new(format!(
                        "a statement has more than {MAX_TOKENS_PER_STATEMENT} tokens"
                    )));
                }
            }
        }
    }
    Parser::new(parser_dialect)
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .map_err(|error| Refusal::new(format!("the SQL does not parse: {error}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::test_support::{BOTH, assert_refused, migrate, owned};
    use super::super::{Dialect, StatementCache};
    use super::{Input, admit};

    #[test]
    fn each_kind_of_text_is_held_to_its_own_byte_limit() {
        // Written out rather than read from the constants: the limits and
        // their words are what component authors see, so changing either
        // should be a decision this test makes visible.
        for (input, max, too_long) in [
            (
                Input::Statement,
                64 * 1024,
                "the statement is longer than 65536 bytes",
            ),
            (
                Input::Migration,
                1024 * 1024,
                "the migration is longer than 1048576 bytes",
            ),
        ] {
            assert_eq!(admit(input, &" ".repeat(max)), Ok(()));
            let over = " ".repeat(max + 1);
            assert_eq!(admit(input, &over).unwrap_err().reason(), too_long);
            // A NUL is named first, whatever else is wrong with the text.
            let refusal = admit(input, &format!("\0{over}")).unwrap_err();
            assert!(refusal.reason().contains("NUL character"), "{refusal}");
        }
    }

    #[test]
    fn refuses_statements_that_do_not_parse() {
        assert_refused(
            BOTH,
            &[
                ("SELECT 1 +", "does not parse"),
                ("SELEC 1", "does not parse"),
                ("SELECT 'unterminated", "does not parse"),
            ],
        );
    }

    #[test]
    fn a_nul_anywhere_in_a_statement_is_refused() {
        let cases: &[&str] = &[
            "SELECT 1 -- \0",
            "SELECT 1 /* \0 */",
            "SELECT '\0' AS s",
            "SELECT 1 AS \"a\0b\"",
            "SELECT id FROM sales\0",
            "\0SELECT 1",
        ];
        for &sql in cases {
            assert_refused(BOTH, &[(sql, "NUL character")]);
            // Twice through a cache: the refusal is cached like any other.
            let cache = StatementCache::default();
            for _ in 0..2 {
                let refusal = cache.check(Dialect::Sqlite, sql, &owned()).unwrap_err();
                assert!(refusal.reason().contains("NUL character"), "{refusal}");
            }
        }
    }

    #[test]
    fn a_nul_anywhere_in_a_migration_is_refused() {
        for &dialect in BOTH {
            for sql in [
                "CREATE TABLE sales (id TEXT) -- \0",
                "CREATE TABLE sales (id TEXT DEFAULT '\0')",
                "CREATE TABLE sales (id TEXT);\0",
            ] {
                let refusal = migrate(dialect, sql).unwrap_err();
                assert!(refusal.reason().contains("NUL character"), "{refusal}");
            }
        }
    }
}
