//! Fixtures shared by the tests of every part. The component under test is
//! `sales`; `customers` and `inventory` belong to other components.

use std::collections::HashSet;

use super::{Dialect, MigrationEffects, Refusal, StatementKind, check_migration, check_statement};

pub(super) const BOTH: &[Dialect] = &[Dialect::Sqlite, Dialect::Postgres];
pub(super) const SQLITE: &[Dialect] = &[Dialect::Sqlite];
pub(super) const POSTGRES: &[Dialect] = &[Dialect::Postgres];

/// The tables `sales` owns.
pub(super) fn owned() -> HashSet<String> {
    ["sales", "sales_items"].map(String::from).into()
}

pub(super) fn others(name: &str) -> bool {
    name == "customers" || name.starts_with("customers_") || name == "sales_reports"
}

#[track_caller]
pub(super) fn assert_accepted(dialects: &[Dialect], cases: &[(&str, StatementKind)]) {
    for &dialect in dialects {
        for &(sql, kind) in cases {
            assert_eq!(
                check_statement(dialect, sql, &owned()),
                Ok(kind),
                "{dialect:?}: {sql}"
            );
        }
    }
}

/// Each case is a statement and a fragment its refusal reason must contain.
#[track_caller]
pub(super) fn assert_refused(dialects: &[Dialect], cases: &[(&str, &str)]) {
    for &dialect in dialects {
        for &(sql, fragment) in cases {
            match check_statement(dialect, sql, &owned()) {
                Ok(kind) => panic!("{dialect:?} accepted ({kind:?}): {}", short(sql)),
                Err(refusal) => assert!(
                    refusal.reason().contains(fragment),
                    "{dialect:?}: {}\n  reason `{}` lacks `{fragment}`",
                    short(sql),
                    refusal.reason()
                ),
            }
        }
    }
}

fn short(sql: &str) -> String {
    sql.chars().take(120).collect()
}

pub(super) const NOT_OURS: &str = "`customers` is not one of this component's tables";

pub(super) fn migrate(dialect: Dialect, sql: &str) -> Result<MigrationEffects, Refusal> {
    check_migration(
        dialect,
        sql,
        "sales",
        &HashSet::new(),
        &HashSet::new(),
        &others,
    )
}
