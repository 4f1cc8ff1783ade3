//! Canonical table, index and constraint names. The statement walker and the
//! migration checker both compare names through these functions, so a table
//! one of them records is the table the other one finds.

use sqlparser::ast::{Ident, ObjectName, ObjectNamePart};

use super::{Checked, Refusal};

/// Name prefixes reserved for the backends' catalogs (on PostgreSQL
/// `pg_catalog` is searched before `public`), SQLite's `pragma_*`
/// table-valued functions (readable like tables) and the host's own tables
/// (`souk_*`). No component may own, create or name such a table.
const RESERVED_PREFIXES: &[&str] = &["pg_", "pragma_", "souk_", "sqlite_"];

/// The canonical form of an identifier: quotes stripped, unquoted names
/// folded to ASCII lower case (as both backends do).
pub(super) fn canonical(ident: &Ident) -> Checked<String> {
    if ident.quote_style.is_some() {
        if ident.value.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(Refusal::new(format!(
                "quoted name {ident} has upper-case letters; use lower-case names"
            )));
        }
        Ok(ident.value.clone())
    } else {
        Ok(ident.value.to_ascii_lowercase())
    }
}

/// The canonical form of an unqualified name; qualified names are refused.
pub(super) fn unqualified(name: &ObjectName, what: &str) -> Checked<String> {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(ident)] => canonical(ident),
        _ => Err(Refusal::new(format!(
            "{what} `{name}` is qualified; schema-qualified names are not allowed, use the bare name"
        ))),
    }
}

/// Whether `name` starts with a prefix reserved for the databases or the host.
pub(super) fn is_reserved(name: &str) -> bool {
    RESERVED_PREFIXES
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::super::StatementKind;
    use super::super::test_support::{BOTH, SQLITE, assert_accepted, assert_refused};

    #[test]
    fn compares_table_names_case_insensitively_and_strips_quotes() {
        use StatementKind::{Read, Write};
        assert_accepted(
            BOTH,
            &[
                ("SELECT id FROM SALES", Read),
                ("SeLeCt * FrOm Sales_Items", Read),
                ("SELECT id FROM \"sales\"", Read),
                ("UPDATE \"sales_items\" SET qty = 1", Write),
            ],
        );
        assert_accepted(
            SQLITE,
            &[("SELECT id FROM [sales] JOIN `sales_items` ON 1 = 1", Read)],
        );
    }

    #[test]
    fn refuses_a_quoted_table_name_with_upper_case_letters() {
        assert_refused(
            BOTH,
            &[
                ("SELECT * FROM \"Sales\"", "upper-case"),
                (
                    "WITH \"Customers\" AS (SELECT 1) SELECT * FROM customers",
                    "upper-case",
                ),
            ],
        );
    }

    #[test]
    fn refuses_schema_qualified_names() {
        assert_refused(
            BOTH,
            &[
                ("SELECT * FROM main.sales", "schema-qualified"),
                ("SELECT * FROM temp.sales", "schema-qualified"),
                ("SELECT * FROM public.sales", "schema-qualified"),
                ("SELECT * FROM pg_catalog.pg_tables", "schema-qualified"),
                (
                    "SELECT * FROM information_schema.tables",
                    "schema-qualified",
                ),
                ("INSERT INTO main.sales (id) VALUES (1)", "schema-qualified"),
                ("UPDATE public.sales SET total = 0", "schema-qualified"),
                ("DELETE FROM main.sales", "schema-qualified"),
            ],
        );
    }

    #[test]
    fn refuses_the_database_catalogs() {
        assert_refused(
            BOTH,
            &[
                (
                    "SELECT * FROM sqlite_master",
                    "belongs to the database or the host",
                ),
                (
                    "SELECT * FROM sqlite_schema",
                    "belongs to the database or the host",
                ),
                (
                    "SELECT * FROM sqlite_temp_master",
                    "belongs to the database or the host",
                ),
                (
                    "SELECT * FROM pg_class",
                    "belongs to the database or the host",
                ),
                (
                    "SELECT * FROM pg_stat_activity",
                    "belongs to the database or the host",
                ),
                (
                    "SELECT * FROM pragma_table_list",
                    "belongs to the database or the host",
                ),
                (
                    "SELECT * FROM souk_tables",
                    "belongs to the database or the host",
                ),
                (
                    "DELETE FROM souk_tables",
                    "belongs to the database or the host",
                ),
            ],
        );
    }
}
