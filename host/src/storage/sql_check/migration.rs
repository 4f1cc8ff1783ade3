//! The migration checker: the small set of DDL a component's migration may
//! run on its own, name-prefixed tables, and the account of what it created
//! and dropped, which the host keeps as the component's ownership records.

use std::collections::HashSet;

use sqlparser::ast::{
    AlterColumnOperation, AlterTableOperation, ColumnDef, ColumnOption, ColumnOptionDef,
    CreateIndex, CreateTable, CreateTableOptions, Expr, GeneratedAs, HiveDistributionStyle,
    HiveFormat, Ident, IndexColumn, ObjectName, ObjectType, OrderByExpr, RenameTableNameKind,
    Statement, TableConstraint,
};
use sqlparser::tokenizer::Token;

use super::dml_walker::{Walker, data_type_allowed};
use super::names::{canonical, is_reserved, unqualified};
use super::parse::{Input, admit, parse};
use super::{Checked, Dialect, MigrationEffects, Refusal, unsupported};

/// [`check_migration`](super::check_migration) on the calling thread, which
/// must have a stack as large as the checker's.
pub(super) fn check_migration_here(
    dialect: Dialect,
    sql: &str,
    component: &str,
    owned_before: &HashSet<String>,
    indexes_before: &HashSet<String>,
    owned_by_others: &dyn Fn(&str) -> bool,
) -> Result<MigrationEffects, Refusal> {
    admit(Input::Migration, sql)?;
    let component = component.to_ascii_lowercase();
    if component.is_empty() {
        return Err(Refusal::new("the component name is empty"));
    }
    let statements = parse(dialect, sql)?;
    let mut migration = Migration {
        dialect,
        component,
        owned: owned_before.clone(),
        indexes: indexes_before.clone(),
        owned_by_others,
        created_tables: Vec::new(),
        created_indexes: Vec::new(),
        dropped_indexes: Vec::new(),
    };
    for (index, statement) in statements.iter().enumerate() {
        migration.statement(statement).map_err(|refusal| {
            Refusal::new(format!("statement {}: {}", index + 1, refusal.reason))
        })?;
    }
    let Migration {
        owned,
        created_tables,
        created_indexes,
        dropped_indexes,
        ..
    } = migration;
    let mut created: Vec<String> = Vec::new();
    for name in created_tables {
        if owned.contains(&name) && !owned_before.contains(&name) && !created.contains(&name) {
            created.push(name);
        }
    }
    let mut dropped: Vec<String> = owned_before.difference(&owned).cloned().collect();
    dropped.sort();
    Ok(MigrationEffects {
        created_tables: created,
        dropped_tables: dropped,
        created_indexes,
        dropped_indexes,
    })
}

/// State of a migration check: the component's tables as the statements so
/// far left them.
struct Migration<'a> {
    dialect: Dialect,
    /// Canonical component name, the required table name prefix.
    component: String,
    /// Tables owned after the statements checked so far.
    owned: HashSet<String>,
    /// Indexes owned after the statements checked so far.
    indexes: HashSet<String>,
    owned_by_others: &'a dyn Fn(&str) -> bool,
    created_tables: Vec<String>,
    created_indexes: Vec<String>,
    dropped_indexes: Vec<String>,
}

impl Migration<'_> {
    fn statement(&mut self, statement: &Statement) -> Checked {
        match statement {
            Statement::CreateTable(create) => self.create_table(create),
            Statement::CreateIndex(create) => self.create_index(create),
            Statement::AlterTable {
                name,
                if_exists: _,
                only: _,
                operations,
                location,
                on_cluster,
                iceberg,
                end_token: _,
            } => {
                if location.is_some() || on_cluster.is_some() || *iceberg {
                    return Err(unsupported("this ALTER TABLE form", statement));
                }
                self.alter_table(name, operations)
            }
            Statement::Drop {
                object_type,
                if_exists: _,
                names,
                cascade,
                restrict: _,
                purge,
                temporary,
                table,
            } => {
                if *cascade {
                    return Err(Refusal::new("DROP ... CASCADE is not allowed"));
                }
                if *purge || *temporary || table.is_some() {
                    return Err(unsupported("this DROP form", statement));
                }
                match object_type {
                    ObjectType::Table => names.iter().try_for_each(|name| self.drop_table(name)),
                    ObjectType::Index => names.iter().try_for_each(|name| self.drop_index(name)),
                    _ => Err(Refusal::new(format!(
                        "migrations may drop only tables and indexes, not `{object_type}`"
                    ))),
                }
            }
            Statement::Query(_)
            | Statement::Insert(_)
            | Statement::Update { .. }
            | Statement::Delete(_) => {
                let owned = &self.owned;
                let is_owned = |name: &str| owned.contains(name);
                Walker::new(self.dialect, &is_owned).dml_statement(statement)
            }
            other => {
                let text = other.to_string();
                let lead: Vec<&str> = text.split_whitespace().take(2).collect();
                Err(Refusal::new(format!(
                    "migrations may only create, alter and drop the component's tables and \
                     indexes and insert, update or delete rows; `{} ...` is not allowed",
                    lead.join(" ")
                )))
            }
        }
    }

    fn walker<'w>(&self, is_owned: &'w dyn Fn(&str) -> bool) -> Walker<'w> {
        Walker::new(self.dialect, is_owned)
    }

    /// Checks the name of a table or index the migration creates.
    fn new_name(&self, name: &str, what: &str) -> Checked {
        if is_reserved(name) {
            return Err(Refusal::new(format!(
                "{what} name `{name}` is reserved for the database or the host"
            )));
        }
        let prefix = format!("{}_", self.component);
        if name != self.component && !name.starts_with(&prefix) {
            return Err(Refusal::new(format!(
                "{what} `{name}` must be named `{}` or start with `{prefix}`",
                self.component
            )));
        }
        if (self.owned_by_others)(name) && !self.owned.contains(name) {
            return Err(Refusal::new(format!(
                "`{name}` already belongs to another component"
            )));
        }
        Ok(())
    }

    fn require_owned(&self, name: &str) -> Checked {
        if self.owned.contains(name) {
            Ok(())
        } else {
            Err(Refusal::new(format!(
                "table `{name}` is not one of this component's tables"
            )))
        }
    }

    fn create_table(&mut self, create: &CreateTable) -> Checked {
        let CreateTable {
            or_replace,
            temporary,
            external,
            dynamic,
            global,
            if_not_exists,
            transient,
            volatile,
            iceberg,
            name,
            columns,
            constraints,
            hive_distribution,
            hive_formats,
            table_options,
            file_format,
            location,
            query,
            without_rowid: _,
            like,
            clone,
            version,
            comment,
            on_commit,
            on_cluster,
            primary_key,
            order_by,
            partition_by,
            cluster_by,
            clustered_by,
            inherits,
            strict: _,
            copy_grants,
            enable_schema_evolution,
            change_tracking,
            data_retention_time_in_days,
            max_data_extension_time_in_days,
            default_ddl_collation,
            with_aggregation_policy,
            with_row_access_policy,
            with_tags,
            external_volume,
            base_location,
            catalog,
            catalog_sync,
            storage_serialization_policy,
            target_lag,
            warehouse,
            refresh_mode,
            initialize,
            require_user,
        } = create;
        let table = unqualified(name, "table")?;
        // IF NOT EXISTS on a table that exists but is nobody's (the host's,
        // another application's in a shared database) would make it this
        // component's without creating anything.
        if *if_not_exists && !self.owned.contains(&table) {
            return Err(Refusal::new(format!(
                "CREATE TABLE IF NOT EXISTS may only name a table this component already \
                 owns; `{table}` is new, so create it with CREATE TABLE"
            )));
        }
        if query.is_some() {
            return Err(Refusal::new(
                "CREATE TABLE ... AS SELECT is not allowed; create the table, then INSERT",
            ));
        }
        if *temporary {
            return Err(Refusal::new("temporary tables are not allowed"));
        }
        if inherits.is_some() || like.is_some() || clone.is_some() {
            return Err(Refusal::new(
                "CREATE TABLE may not copy or inherit from another table",
            ));
        }
        let empty_hive_format = HiveFormat {
            row_format: None,
            serde_properties: None,
            storage: None,
            location: None,
        };
        if *or_replace
            || *external
            || *dynamic
            || global.is_some()
            || *transient
            || *volatile
            || *iceberg
            || *hive_distribution != HiveDistributionStyle::NONE
            || hive_formats
                .as_ref()
                .is_some_and(|f| *f != empty_hive_format)
            || *table_options != CreateTableOptions::None
            || file_format.is_some()
            || location.is_some()
            || version.is_some()
            || comment.is_some()
            || on_commit.is_some()
            || on_cluster.is_some()
            || primary_key.is_some()
            || order_by.is_some()
            || partition_by.is_some()
            || cluster_by.is_some()
            || clustered_by.is_some()
            || *copy_grants
            || enable_schema_evolution.is_some()
            || change_tracking.is_some()
            || data_retention_time_in_days.is_some()
            || max_data_extension_time_in_days.is_some()
            || default_ddl_collation.is_some()
            || with_aggregation_policy.is_some()
            || with_row_access_policy.is_some()
            || with_tags.is_some()
            || external_volume.is_some()
            || base_location.is_some()
            || catalog.is_some()
            || catalog_sync.is_some()
            || storage_serialization_policy.is_some()
            || target_lag.is_some()
            || warehouse.is_some()
            || refresh_mode.is_some()
            || initialize.is_some()
            || *require_user
        {
            return Err(unsupported("this CREATE TABLE option", create));
        }
        self.new_name(&table, "table")?;
        // The table may refer to itself (a self-referencing foreign key).
        let inserted = self.owned.insert(table.clone());
        let checked = columns
            .iter()
            .try_for_each(|column| self.column_def(column))
            .and_then(|()| {
                constraints
                    .iter()
                    .try_for_each(|constraint| self.table_constraint(constraint))
            });
        if checked.is_err() && inserted {
            self.owned.remove(&table);
        }
        checked?;
        self.created_tables.push(table);
        Ok(())
    }

    fn column_def(&self, column: &ColumnDef) -> Checked {
        let ColumnDef {
            name: _,
            data_type,
            options,
        } = column;
        data_type_allowed(data_type)?;
        for ColumnOptionDef { name, option } in options {
            self.constraint_name(name.as_ref())?;
            self.column_option(option)?;
        }
        Ok(())
    }

    /// A named constraint must be named like the component's tables: on
    /// PostgreSQL a UNIQUE or PRIMARY KEY constraint is an index relation in
    /// the same namespace as tables and indexes, so `CONSTRAINT souk_x` or
    /// `CONSTRAINT customers_x` would squat a name the host or another
    /// component needs.
    fn constraint_name(&self, name: Option<&Ident>) -> Checked {
        match name {
            Some(name) => self.new_name(&canonical(name)?, "constraint"),
            None => Ok(()),
        }
    }

    fn column_option(&self, option: &ColumnOption) -> Checked {
        match option {
            ColumnOption::Null
            | ColumnOption::NotNull
            | ColumnOption::Unique { .. }
            | ColumnOption::Collation(_)
            // SQLite's `ON CONFLICT <action>` on a column constraint.
            | ColumnOption::OnConflict(_) => Ok(()),
            ColumnOption::Default(expr) | ColumnOption::Check(expr) => self.expr(expr),
            ColumnOption::ForeignKey { foreign_table, .. } => self.reference(foreign_table),
            ColumnOption::Generated {
                generated_as: GeneratedAs::Always | GeneratedAs::ExpStored,
                sequence_options: None,
                generation_expr: Some(expr),
                generation_expr_mode: _,
                generated_keyword: _,
            } => {
                self.expr(expr)
            }
            // SQLite's AUTOINCREMENT is the one dialect-specific option
            // worth having.
            ColumnOption::DialectSpecific(tokens)
                if matches!(tokens.as_slice(), [Token::Word(word)]
                    if word.value.eq_ignore_ascii_case("autoincrement")) =>
            {
                Ok(())
            }
            other => Err(unsupported("this column option", other)),
        }
    }

    fn table_constraint(&self, constraint: &TableConstraint) -> Checked {
        match constraint {
            TableConstraint::Unique {
                name,
                index_name,
                columns,
                ..
            }
            | TableConstraint::PrimaryKey {
                name,
                index_name,
                columns,
                ..
            } => {
                self.constraint_name(name.as_ref())?;
                self.constraint_name(index_name.as_ref())?;
                self.index_columns(columns)
            }
            TableConstraint::ForeignKey {
                name,
                index_name,
                foreign_table,
                ..
            } => {
                self.reference(foreign_table)?;
                self.constraint_name(name.as_ref())?;
                self.constraint_name(index_name.as_ref())
            }
            TableConstraint::Check { name, expr, .. } => {
                self.constraint_name(name.as_ref())?;
                self.expr(expr)
            }
            TableConstraint::Index { .. } | TableConstraint::FulltextOrSpatial { .. } => {
                Err(unsupported("this table constraint", constraint))
            }
        }
    }

    /// A foreign key may point only at the component's own tables.
    fn reference(&self, table: &ObjectName) -> Checked {
        let table = unqualified(table, "table")?;
        self.require_owned(&table).map_err(|_| {
            Refusal::new(format!(
                "foreign key to `{table}`, which is not one of this component's tables"
            ))
        })
    }

    fn index_columns(&self, columns: &[IndexColumn]) -> Checked {
        for IndexColumn {
            column,
            operator_class: _,
        } in columns
        {
            let OrderByExpr {
                expr,
                options: _,
                with_fill,
            } = column;
            if with_fill.is_some() {
                return Err(unsupported("WITH FILL", column));
            }
            self.expr(expr)?;
        }
        Ok(())
    }

    /// Expressions in DEFAULT, CHECK, generated columns and indexes pass the
    /// same checks as in a statement.
    fn expr(&self, expr: &Expr) -> Checked {
        let owned = &self.owned;
        let is_owned = |name: &str| owned.contains(name);
        self.walker(&is_owned).expr(expr)
    }

    fn create_index(&mut self, create: &CreateIndex) -> Checked {
        let CreateIndex {
            name,
            table_name,
            using: _,
            columns,
            unique: _,
            concurrently,
            if_not_exists: _,
            include: _,
            nulls_distinct: _,
            with,
            predicate,
            index_options,
            alter_options,
        } = create;
        if *concurrently {
            return Err(Refusal::new(
                "CREATE INDEX CONCURRENTLY is not allowed (migrations run in a transaction)",
            ));
        }
        if !with.is_empty() || !index_options.is_empty() || !alter_options.is_empty() {
            return Err(unsupported("this CREATE INDEX option", create));
        }
        let table = unqualified(table_name, "table")?;
        self.require_owned(&table)?;
        // An unnamed index gets a name the database picks, which the host
        // could neither check nor record.
        let index = name
            .as_ref()
            .map(|name| unqualified(name, "index"))
            .transpose()?
            .ok_or_else(|| Refusal::new("an index must be named (CREATE INDEX <name> ON ...)"))?;
        self.new_name(&index, "index")?;
        self.index_columns(columns)?;
        self.opt_expr(predicate.as_ref())?;
        self.indexes.insert(index.clone());
        self.created_indexes.push(index);
        Ok(())
    }

    fn opt_expr(&self, expr: Option<&Expr>) -> Checked {
        expr.map_or(Ok(()), |expr| self.expr(expr))
    }

    fn alter_table(&mut self, name: &ObjectName, operations: &[AlterTableOperation]) -> Checked {
        let mut table = unqualified(name, "table")?;
        self.require_owned(&table)?;
        for operation in operations {
            match operation {
                AlterTableOperation::AddColumn {
                    column_keyword: _,
                    if_not_exists: _,
                    column_def,
                    column_position: None,
                } => self.column_def(column_def)?,
                AlterTableOperation::DropColumn {
                    has_column_keyword: _,
                    column_names: _,
                    if_exists: _,
                    drop_behavior,
                }
                | AlterTableOperation::DropConstraint {
                    if_exists: _,
                    name: _,
                    drop_behavior,
                } => {
                    if matches!(drop_behavior, Some(sqlparser::ast::DropBehavior::Cascade)) {
                        return Err(Refusal::new("DROP ... CASCADE is not allowed"));
                    }
                }
                AlterTableOperation::RenameConstraint {
                    old_name: _,
                    new_name,
                } => self.constraint_name(Some(new_name))?,
                AlterTableOperation::RenameColumn { .. }
                | AlterTableOperation::ValidateConstraint { .. } => {}
                AlterTableOperation::AddConstraint {
                    constraint,
                    not_valid: _,
                } => self.table_constraint(constraint)?,
                AlterTableOperation::AlterColumn { column_name: _, op } => match op {
                    AlterColumnOperation::SetNotNull
                    | AlterColumnOperation::DropNotNull
                    | AlterColumnOperation::DropDefault => {}
                    AlterColumnOperation::SetDefault { value } => self.expr(value)?,
                    AlterColumnOperation::SetDataType {
                        data_type,
                        using,
                        had_set: _,
                    } => {
                        data_type_allowed(data_type)?;
                        self.opt_expr(using.as_ref())?;
                    }
                    AlterColumnOperation::AddGenerated { .. } => {
                        return Err(unsupported("this ALTER COLUMN form", operation));
                    }
                },
                AlterTableOperation::RenameTable { table_name } => {
                    let (RenameTableNameKind::As(new_name) | RenameTableNameKind::To(new_name)) =
                        table_name;
                    let new_name = unqualified(new_name, "table")?;
                    self.new_name(&new_name, "table")?;
                    self.owned.remove(&table);
                    self.owned.insert(new_name.clone());
                    self.created_tables.push(new_name.clone());
                    table = new_name;
                }
                other => return Err(unsupported("this ALTER TABLE operation", other)),
            }
        }
        Ok(())
    }

    fn drop_table(&mut self, name: &ObjectName) -> Checked {
        let table = unqualified(name, "table")?;
        self.require_owned(&table)?;
        self.owned.remove(&table);
        Ok(())
    }

    /// An index may be dropped only by the component whose migrations
    /// created it: ownership is recorded, not inferred from a name prefix
    /// (`customers_username`'s prefix also matches `customers`'s index
    /// `customers_username_lower`).
    fn drop_index(&mut self, name: &ObjectName) -> Checked {
        let index = unqualified(name, "index")?;
        if !self.indexes.remove(&index) {
            return Err(Refusal::new(format!(
                "index `{index}` is not one of this component's indexes"
            )));
        }
        self.dropped_indexes.push(index);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashSet;

    use super::super::test_support::{BOTH, NOT_OURS, POSTGRES, SQLITE, migrate, others, owned};
    use super::super::{Dialect, MigrationEffects, Refusal, check_migration, check_statement};

    fn owned_indexes() -> HashSet<String> {
        ["sales_code_key"].map(String::from).into()
    }

    fn migrate_owning(dialect: Dialect, sql: &str) -> Result<MigrationEffects, Refusal> {
        check_migration(dialect, sql, "sales", &owned(), &owned_indexes(), &others)
    }

    #[track_caller]
    fn assert_migration_refused(dialects: &[Dialect], cases: &[(&str, &str)]) {
        for &dialect in dialects {
            for &(sql, fragment) in cases {
                match migrate_owning(dialect, sql) {
                    Ok(effects) => panic!("{dialect:?} accepted ({effects:?}): {sql}"),
                    Err(refusal) => assert!(
                        refusal.reason().contains(fragment),
                        "{dialect:?}: {sql}\n  reason `{}` lacks `{fragment}`",
                        refusal.reason()
                    ),
                }
            }
        }
    }

    const FIRST_MIGRATION: &str = "
        -- The sales component's tables.
        CREATE TABLE sales (
            id TEXT PRIMARY KEY,
            customer_id TEXT NOT NULL,
            code TEXT NOT NULL,
            total_cents BIGINT NOT NULL CHECK (total_cents >= 0),
            paid BOOLEAN NOT NULL DEFAULT FALSE,
            created_at TEXT NOT NULL
        );
        CREATE TABLE sales_items (
            sale_id TEXT NOT NULL REFERENCES sales (id),
            position INTEGER NOT NULL,
            qty BIGINT NOT NULL DEFAULT 1,
            PRIMARY KEY (sale_id, position),
            FOREIGN KEY (sale_id) REFERENCES sales (id)
        );
        CREATE UNIQUE INDEX sales_code_key ON sales (lower(code));
        CREATE INDEX ON sales_items (sale_id);
        INSERT INTO sales (id, customer_id, code, total_cents, created_at)
            VALUES ('0', '0', 'seed', 0, '2024-01-01T00:00:00Z');
    ";

    #[test]
    fn accepts_a_migration_that_creates_the_component_tables() {
        for &dialect in BOTH {
            let sql =
                FIRST_MIGRATION.replace("CREATE INDEX ON", "CREATE INDEX sales_items_sale_id ON");
            let effects = migrate(dialect, &sql).unwrap();
            assert_eq!(effects.created_tables, ["sales", "sales_items"]);
            assert!(effects.dropped_tables.is_empty());
            assert_eq!(
                effects.created_indexes,
                ["sales_code_key", "sales_items_sale_id"]
            );
        }
        // An unnamed index would get a name nobody checked or recorded.
        for &dialect in BOTH {
            let refusal = migrate(dialect, FIRST_MIGRATION).unwrap_err();
            assert!(refusal.reason().contains("must be named"), "{refusal}");
        }
    }

    #[test]
    fn indexes_are_dropped_only_by_their_owner_whatever_their_name() {
        // `customers_username` is a prefix of `customers`'s own index name:
        // names prove nothing, recorded ownership does.
        for &dialect in BOTH {
            for sql in [
                "DROP INDEX customers_username_lower",
                "DROP INDEX sales_unrecorded",
                "DROP INDEX customers_pkey",
            ] {
                let refusal = check_migration(
                    dialect,
                    sql,
                    "customers_username",
                    &HashSet::new(),
                    &HashSet::new(),
                    &others,
                )
                .unwrap_err();
                assert!(
                    refusal
                        .reason()
                        .contains("not one of this component's indexes"),
                    "{sql}: {refusal}"
                );
            }
            // An index this migration creates may be dropped by it.
            let effects = migrate_owning(
                dialect,
                "CREATE INDEX sales_tmp_idx ON sales (id); DROP INDEX sales_tmp_idx",
            )
            .unwrap();
            assert_eq!(effects.dropped_indexes, ["sales_tmp_idx"]);
        }
    }

    #[test]
    fn index_names_carry_the_component_prefix() {
        assert_migration_refused(
            BOTH,
            &[
                (
                    "CREATE INDEX customers_future ON sales (id)",
                    "must be named",
                ),
                ("CREATE INDEX idx ON sales (id)", "must be named"),
            ],
        );
    }

    #[test]
    fn constraint_names_carry_the_component_prefix() {
        assert_migration_refused(
            BOTH,
            &[
                (
                    "CREATE TABLE sales_x (id TEXT, CONSTRAINT souk_new_table UNIQUE (id))",
                    "reserved",
                ),
                (
                    "CREATE TABLE sales_x (id TEXT CONSTRAINT customers_loyalty PRIMARY KEY)",
                    "must be named",
                ),
                (
                    "ALTER TABLE sales ADD CONSTRAINT customers_x CHECK (total_cents >= 0)",
                    "must be named",
                ),
            ],
        );
        assert_migration_refused(
            &[Dialect::Postgres],
            &[(
                "ALTER TABLE sales RENAME CONSTRAINT sales_pkey TO customers_pkey",
                "must be named",
            )],
        );
        for &dialect in BOTH {
            assert!(
                migrate_owning(
                    dialect,
                    "CREATE TABLE sales_y (id TEXT, CONSTRAINT sales_y_id UNIQUE (id))"
                )
                .is_ok()
            );
        }
    }

    #[test]
    fn accepts_sqlite_specific_table_options() {
        let effects = migrate(
            Dialect::Sqlite,
            "CREATE TABLE sales (id INTEGER PRIMARY KEY AUTOINCREMENT, name) STRICT;
             CREATE TABLE sales_x (id TEXT PRIMARY KEY) WITHOUT ROWID;",
        )
        .unwrap();
        assert_eq!(effects.created_tables, ["sales", "sales_x"]);
    }

    #[test]
    fn accepts_later_migrations_that_alter_and_drop_own_tables() {
        for &dialect in BOTH {
            let effects = migrate_owning(
                dialect,
                "ALTER TABLE sales ADD COLUMN note TEXT;
                 ALTER TABLE sales RENAME COLUMN note TO remark;
                 ALTER TABLE sales DROP COLUMN remark;
                 ALTER TABLE sales_items RENAME TO sales_lines;
                 CREATE INDEX sales_lines_qty ON sales_lines (qty);
                 DROP INDEX sales_code_key;
                 CREATE TABLE sales_tmp (id TEXT);
                 DROP TABLE sales_tmp;
                 UPDATE sales SET total_cents = 0 WHERE total_cents IS NULL;",
            )
            .unwrap();
            assert_eq!(effects.created_tables, ["sales_lines"], "{dialect:?}");
            assert_eq!(effects.dropped_tables, ["sales_items"], "{dialect:?}");
            assert_eq!(effects.dropped_indexes, ["sales_code_key"], "{dialect:?}");
        }
        let effects = migrate_owning(Dialect::Postgres, "DROP TABLE sales_items, sales").unwrap();
        assert_eq!(effects.dropped_tables, ["sales", "sales_items"]);
        let effects = migrate_owning(
            Dialect::Postgres,
            "ALTER TABLE sales ALTER COLUMN total_cents SET DEFAULT 0,
                 ALTER COLUMN code SET NOT NULL,
                 ALTER COLUMN code TYPE TEXT,
                 ADD CONSTRAINT sales_total_positive CHECK (total_cents >= 0)",
        )
        .unwrap();
        assert_eq!(effects, MigrationEffects::default());
    }

    #[test]
    fn refuses_to_adopt_an_existing_table_nobody_owns() {
        let host = |_: &str| false;
        for &dialect in BOTH {
            for (sql, fragment) in [
                (
                    "CREATE TABLE IF NOT EXISTS souk_tables (table_name TEXT)",
                    "IF NOT EXISTS",
                ),
                ("CREATE TABLE souk_tables (table_name TEXT)", "reserved"),
            ] {
                let refusal = check_migration(
                    dialect,
                    sql,
                    "souk",
                    &HashSet::new(),
                    &HashSet::new(),
                    &host,
                )
                .unwrap_err();
                assert!(refusal.reason().contains(fragment), "{refusal}");
            }
            let refusal =
                migrate(dialect, "CREATE TABLE IF NOT EXISTS sales (id TEXT)").unwrap_err();
            assert!(refusal.reason().contains("IF NOT EXISTS"), "{refusal}");
            // Re-stating a table the component owns is harmless.
            assert_eq!(
                migrate_owning(dialect, "CREATE TABLE IF NOT EXISTS sales (id TEXT)"),
                Ok(MigrationEffects::default())
            );
        }
    }

    /// The customers component's first migration, as it ships.
    const CUSTOMERS_MIGRATION: &str =
        include_str!("../../../../migrations/customers/0001_create_customers.sql");

    #[test]
    fn accepts_the_customers_component_migration_and_statements() {
        const COLUMNS: &str = "id, username, full_name, age, address, gender, \
            marital_status, wallet_cents, role, created_at, updated_at";
        let statements = [
            format!(
                "INSERT INTO customers (id, username, full_name, age, address, gender, \
                 marital_status, wallet_cents, role, password_hash, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $10, $10) RETURNING {COLUMNS}"
            ),
            "SELECT id FROM customers WHERE lower(username) = lower($1)".to_owned(),
            format!("SELECT {COLUMNS} FROM customers WHERE lower(username) = lower($1)"),
            "SELECT count(*) AS total FROM customers WHERE lower(username) LIKE $1 ESCAPE '!' \
             OR lower(full_name) LIKE $1 ESCAPE '!'"
                .to_owned(),
            format!("SELECT {COLUMNS} FROM customers ORDER BY lower(username) LIMIT $1 OFFSET $2"),
            format!(
                "UPDATE customers SET full_name = $1, updated_at = $2 WHERE id = $3 \
                 RETURNING {COLUMNS}"
            ),
            "DELETE FROM customers WHERE id = $1".to_owned(),
            "UPDATE customers SET wallet_cents = wallet_cents - $1, updated_at = $2 \
             WHERE id = $3 AND wallet_cents >= $1 RETURNING wallet_cents"
                .to_owned(),
            "UPDATE customers SET role = $1, password_hash = $2, updated_at = $3 \
             WHERE id = $4 RETURNING id, username, role"
                .to_owned(),
        ];
        for &dialect in BOTH {
            let effects = check_migration(
                dialect,
                CUSTOMERS_MIGRATION,
                "customers",
                &HashSet::new(),
                &HashSet::new(),
                &|_| false,
            )
            .unwrap();
            assert_eq!(effects.created_tables, ["customers"]);
            let owned: HashSet<String> = effects.created_tables.into_iter().collect();
            for sql in &statements {
                assert!(
                    check_statement(dialect, sql, &owned).is_ok(),
                    "{dialect:?}: {sql}: {:?}",
                    check_statement(dialect, sql, &owned)
                );
            }
        }
    }

    #[test]
    fn accepts_an_empty_migration() {
        assert_eq!(
            migrate(Dialect::Sqlite, "-- nothing yet\n"),
            Ok(MigrationEffects::default())
        );
    }

    #[test]
    fn refuses_a_migration_table_without_the_component_prefix() {
        assert_migration_refused(
            BOTH,
            &[
                (
                    "CREATE TABLE orders (id TEXT)",
                    "must be named `sales` or start with `sales_`",
                ),
                ("CREATE TABLE salesx (id TEXT)", "start with `sales_`"),
                ("CREATE TABLE customers_x (id TEXT)", "start with `sales_`"),
                (
                    "ALTER TABLE sales RENAME TO customers_x",
                    "start with `sales_`",
                ),
            ],
        );
    }

    #[test]
    fn refuses_a_migration_table_that_belongs_to_another_component() {
        assert_migration_refused(
            BOTH,
            &[
                (
                    "CREATE TABLE sales_reports (id TEXT)",
                    "belongs to another component",
                ),
                (
                    "CREATE TABLE IF NOT EXISTS sales_reports (id TEXT)",
                    "IF NOT EXISTS",
                ),
                (
                    "ALTER TABLE sales RENAME TO sales_reports",
                    "another component",
                ),
                (
                    "CREATE INDEX sales_reports ON sales (id)",
                    "another component",
                ),
                (
                    "DROP INDEX customers_pkey",
                    "not one of this component's indexes",
                ),
                (
                    "DROP INDEX sales_reports",
                    "not one of this component's indexes",
                ),
            ],
        );
    }

    #[test]
    fn refuses_migration_ddl_on_foreign_tables() {
        assert_migration_refused(
            BOTH,
            &[
                ("ALTER TABLE customers ADD COLUMN x TEXT", NOT_OURS),
                ("DROP TABLE customers", NOT_OURS),
                ("DROP TABLE sales, customers", NOT_OURS),
                ("CREATE INDEX sales_c ON customers (id)", NOT_OURS),
                (
                    "CREATE INDEX sales_c ON main.sales (id)",
                    "schema-qualified",
                ),
                ("CREATE TABLE public.sales_x (id TEXT)", "schema-qualified"),
                ("INSERT INTO customers (id) VALUES ('x')", NOT_OURS),
                ("INSERT INTO sales (id) SELECT id FROM customers", NOT_OURS),
                (
                    "UPDATE sales SET code = (SELECT name FROM customers LIMIT 1)",
                    NOT_OURS,
                ),
                ("DELETE FROM customers", NOT_OURS),
            ],
        );
    }

    #[test]
    fn refuses_foreign_keys_into_another_component() {
        assert_migration_refused(
            BOTH,
            &[
                (
                    "CREATE TABLE sales_x (customer_id TEXT REFERENCES customers (id))",
                    "foreign key to `customers`",
                ),
                (
                    "CREATE TABLE sales_x (c TEXT, FOREIGN KEY (c) REFERENCES customers (id))",
                    "foreign key to `customers`",
                ),
                (
                    "ALTER TABLE sales ADD COLUMN c TEXT REFERENCES customers (id)",
                    "foreign key to `customers`",
                ),
                (
                    "CREATE TABLE sales_x (c TEXT CHECK (c IN (SELECT id FROM customers)))",
                    NOT_OURS,
                ),
            ],
        );
        assert_migration_refused(
            POSTGRES,
            &[(
                "ALTER TABLE sales ADD CONSTRAINT fk FOREIGN KEY (customer_id) REFERENCES customers (id)",
                "foreign key to `customers`",
            )],
        );
        // A self reference is fine.
        for &dialect in BOTH {
            let effects = migrate(
                dialect,
                "CREATE TABLE sales (id TEXT PRIMARY KEY, parent TEXT REFERENCES sales (id))",
            )
            .unwrap();
            assert_eq!(effects.created_tables, ["sales"]);
        }
    }

    #[test]
    fn refuses_migration_statements_other_than_table_and_index_ddl_and_dml() {
        assert_migration_refused(
            BOTH,
            &[
                ("CREATE TABLE sales_x AS SELECT * FROM sales", "AS SELECT"),
                (
                    "CREATE TABLE sales_x AS SELECT * FROM customers",
                    "AS SELECT",
                ),
                ("CREATE TEMPORARY TABLE sales_x (id TEXT)", "temporary"),
                ("CREATE VIEW sales_v AS SELECT * FROM sales", "not allowed"),
                ("DROP VIEW sales_v", ""),
                ("BEGIN", "not allowed"),
                ("COMMIT", ""),
                (
                    "CREATE TABLE sales_x (id TEXT DEFAULT (pg_read_file('x')))",
                    "function `pg_read_file`",
                ),
                (
                    "CREATE TABLE sales_x (id TEXT DEFAULT CURRENT_TIMESTAMP)",
                    "current_timestamp",
                ),
                ("CREATE TABLE sales_x (id customers)", "data type"),
                ("CREATE TABLE pg_x (id TEXT)", "reserved"),
                (
                    "CREATE TABLE IF NOT EXISTS sales_x (id TEXT)",
                    "IF NOT EXISTS may only name",
                ),
                ("CREATE INDEX pg_x ON sales (id)", "reserved"),
                (
                    "CREATE INDEX sales_x ON sales (load_extension(id))",
                    "load_extension",
                ),
                (
                    "CREATE INDEX sales_x ON sales (id) WHERE id IN (SELECT id FROM customers)",
                    NOT_OURS,
                ),
                ("DROP TABLE sales CASCADE", "CASCADE"),
                ("CREATE TABLE \"Sales_X\" (id TEXT)", "upper-case"),
            ],
        );
        assert_migration_refused(
            SQLITE,
            &[
                ("PRAGMA foreign_keys = OFF", ""),
                ("PRAGMA foreign_keys = 0", "not allowed"),
                ("ATTACH DATABASE '/tmp/x.db' AS x", "not allowed"),
                (
                    "CREATE TRIGGER sales_t AFTER INSERT ON sales BEGIN DELETE FROM customers; END",
                    "",
                ),
                (
                    "CREATE VIRTUAL TABLE sales_fts USING fts5(code)",
                    "not allowed",
                ),
            ],
        );
        assert_migration_refused(
            POSTGRES,
            &[
                ("GRANT ALL ON sales TO public", "not allowed"),
                ("CREATE TABLE sales_x () INHERITS (customers)", "inherit"),
                ("CREATE TABLE sales_x (LIKE customers)", ""),
                (
                    "CREATE INDEX CONCURRENTLY sales_x ON sales (id)",
                    "CONCURRENTLY",
                ),
                (
                    "CREATE FUNCTION sales_f() RETURNS int AS 'select 1' LANGUAGE sql",
                    "",
                ),
                (
                    "CREATE TRIGGER sales_t AFTER INSERT ON sales FOR EACH ROW EXECUTE FUNCTION f()",
                    "not allowed",
                ),
                ("ALTER TABLE sales OWNER TO postgres", ""),
                (
                    "ALTER TABLE sales ENABLE ROW LEVEL SECURITY",
                    "ALTER TABLE operation",
                ),
                ("CREATE SEQUENCE sales_seq", "not allowed"),
                ("CREATE SCHEMA sales", "not allowed"),
                ("DROP SCHEMA public", ""),
                ("SET search_path TO other", "not allowed"),
                (
                    "CREATE TABLE sales_x (id BIGINT GENERATED ALWAYS AS IDENTITY)",
                    "column option",
                ),
                ("ALTER TABLE sales DROP COLUMN code CASCADE", "CASCADE"),
            ],
        );
    }

    #[test]
    fn migration_refusals_name_the_statement() {
        let refusal = migrate(
            Dialect::Sqlite,
            "CREATE TABLE sales (id TEXT); CREATE TABLE sales_x (id TEXT); SELECT * FROM customers;",
        )
        .unwrap_err();
        assert!(refusal.reason().starts_with("statement 3: "), "{refusal}");
        assert!(refusal.reason().contains(NOT_OURS), "{refusal}");
    }

    #[test]
    fn migrations_see_the_tables_created_earlier_in_the_same_file() {
        for &dialect in BOTH {
            assert!(migrate(dialect, "CREATE INDEX sales_x ON sales (id)").is_err());
            assert!(
                migrate(
                    dialect,
                    "CREATE TABLE sales (id TEXT); CREATE INDEX sales_x ON sales (id)"
                )
                .is_ok()
            );
            // ... and no longer see the ones dropped earlier.
            assert!(
                migrate_owning(
                    dialect,
                    "DROP TABLE sales; INSERT INTO sales (id) VALUES ('x')"
                )
                .is_err()
            );
        }
    }
}
