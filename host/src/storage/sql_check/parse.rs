//! The checker's front: what SQL text may reach `sqlparser` at all, and the
//! parse itself. Everything here runs before an AST exists, so this is where
//! the bounds live that protect the parser, the walker's stack and the
//! databases from the raw text: no NUL, not too many tokens in one
//! statement.

use sqlparser::ast::Statement;
use sqlparser::dialect::{PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

use super::{Checked, Dialect, MAX_TOKENS_PER_STATEMENT, Refusal};

impl Dialect {
    fn parser_dialect(self) -> &'static dyn sqlparser::dialect::Dialect {
        match self {
            Dialect::Sqlite => &SQLiteDialect {},
            Dialect::Postgres => &PostgreSqlDialect {},
        }
    }
}

/// Refuses SQL text holding a NUL character, wherever it is (code, string
/// literal, quoted identifier or comment). The checker and the databases do
/// not agree on what follows a NUL: `sqlparser` reads past it, SQLite's C API
/// stops at it (and sqlx-sqlite then loops for ever on the remaining "\0",
/// holding the connection and, in a write transaction, SQLite's write lock),
/// PostgreSQL rejects it. No honest statement needs one, so both entry
/// points refuse it before anything else looks at the text.
pub(super) fn refuse_nul(sql: &str, what: &str) -> Checked {
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
