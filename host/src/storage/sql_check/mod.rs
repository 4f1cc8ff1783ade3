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

use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::sync::{PoisonError, RwLock};

use sqlparser::ast::{
    AlterColumnOperation, AlterTableOperation, Assignment, AssignmentTarget, BinaryOperator,
    ColumnDef, ColumnOption, ColumnOptionDef, ConflictTarget, CreateIndex, CreateTable,
    CreateTableOptions, Cte, DataType, Delete, DoUpdate, Expr, Fetch, FromTable, Function,
    FunctionArg, FunctionArgExpr, FunctionArgumentClause, FunctionArguments, GeneratedAs,
    GroupByExpr, HiveDistributionStyle, HiveFormat, Ident, IndexColumn, Insert, Join,
    JoinConstraint, JoinOperator, LimitClause, NamedWindowDefinition, NamedWindowExpr, ObjectName,
    ObjectNamePart, ObjectType, Offset, OnConflict, OnConflictAction, OnInsert, OrderBy,
    OrderByExpr, OrderByKind, Query, RenameTableNameKind, Select, SelectFlavor, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, Statement, TableConstraint, TableFactor, TableObject,
    TableWithJoins, UnaryOperator, UpdateTableFromKind, Values, WildcardAdditionalOptions,
    WindowFrame, WindowFrameBound, WindowSpec, WindowType, With,
};
use sqlparser::dialect::{PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

/// Longest component statement the checker looks at, in bytes. Component
/// statements are short; the bound keeps parsing and the verdict cache cheap.
pub const MAX_STATEMENT_BYTES: usize = 64 * 1024;

/// Longest migration file the checker looks at, in bytes.
pub const MAX_MIGRATION_BYTES: usize = 1024 * 1024;

/// Most non-whitespace tokens one statement may have. `sqlparser` builds long
/// operator chains (`1+1+1...`) iteratively but drops and walks them
/// recursively, so without this bound a hostile statement could overflow the
/// stack and abort the host. Every level of nesting needs at least one token.
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

/// Functions a component statement may call. Each one only computes on its
/// arguments: none reads a table, a file or the session, or changes state.
/// Some exist on only one backend; there the database reports an unknown
/// function, which is harmless. Kept sorted (a test checks it).
const ALLOWED_FUNCTIONS: &[&str] = &[
    "abs",
    "avg",
    "char_length",
    "coalesce",
    "count",
    "dense_rank",
    "greatest",
    "group_concat",
    "ifnull",
    "iif",
    "instr",
    "least",
    "length",
    "lower",
    "ltrim",
    "max",
    "min",
    "nullif",
    "rank",
    "replace",
    "round",
    "row_number",
    "rtrim",
    "sign",
    "string_agg",
    "strpos",
    "substr",
    "substring",
    "sum",
    "total",
    "trim",
    "upper",
];

/// Unquoted identifiers that PostgreSQL evaluates as session information
/// (`SELECT current_role`) rather than as column references.
const POSTGRES_SESSION_IDENTIFIERS: &[&str] = &[
    "current_catalog",
    "current_role",
    "current_schema",
    "current_user",
    "session_user",
    "system_user",
    "user",
];

/// Name prefixes reserved for the backends' catalogs (on PostgreSQL
/// `pg_catalog` is searched before `public`), SQLite's `pragma_*`
/// table-valued functions (readable like tables) and the host's own tables
/// (`souk_*`). No component may own, create or name such a table.
const RESERVED_PREFIXES: &[&str] = &["pg_", "pragma_", "souk_", "sqlite_"];

/// The database backend whose SQL dialect a statement is parsed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// SQLite, the embedded default backend.
    Sqlite,
    /// PostgreSQL, the production backend.
    Postgres,
}

impl Dialect {
    fn parser_dialect(self) -> &'static dyn sqlparser::dialect::Dialect {
        match self {
            Dialect::Sqlite => &SQLiteDialect {},
            Dialect::Postgres => &PostgreSqlDialect {},
        }
    }
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
    on_checker_stack(|| check_statement_here(dialect, sql, owned)).and_then(|verdict| verdict)
}

fn check_statement_here(
    dialect: Dialect,
    sql: &str,
    owned: &HashSet<String>,
) -> Result<StatementKind, Refusal> {
    refuse_nul(sql, "statement")?;
    if sql.len() > MAX_STATEMENT_BYTES {
        return Err(Refusal::new(format!(
            "the statement is longer than {MAX_STATEMENT_BYTES} bytes"
        )));
    }
    let statements = parse(dialect, sql)?;
    let statement = match statements.as_slice() {
        [statement] => statement,
        [] => return Err(Refusal::new("the statement is empty")),
        _ => {
            return Err(Refusal::new(format!(
                "exactly one statement is allowed, found {}",
                statements.len()
            )));
        }
    };
    let is_owned = |name: &str| owned.contains(name);
    let mut walker = Walker::new(dialect, &is_owned);
    walker.dml_statement(statement)?;
    Ok(if walker.writes {
        StatementKind::Write
    } else {
        StatementKind::Read
    })
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
        check_migration_here(
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

fn check_migration_here(
    dialect: Dialect,
    sql: &str,
    component: &str,
    owned_before: &HashSet<String>,
    indexes_before: &HashSet<String>,
    owned_by_others: &dyn Fn(&str) -> bool,
) -> Result<MigrationEffects, Refusal> {
    refuse_nul(sql, "migration")?;
    if sql.len() > MAX_MIGRATION_BYTES {
        return Err(Refusal::new(format!(
            "the migration is longer than {MAX_MIGRATION_BYTES} bytes"
        )));
    }
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
    /// The verdict of [`check_statement`] on `sql`, from the cache when the
    /// same text was checked before with the same dialect and tables.
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
        if sql.len() <= MAX_STATEMENT_BYTES {
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

/// Tokenizes and parses `sql`, refusing statements with too many tokens
/// before the parser builds (and later drops) a dangerously deep tree.
fn parse(dialect: Dialect, sql: &str) -> Checked<Vec<Statement>> {
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

/// The canonical form of an identifier: quotes stripped, unquoted names
/// folded to ASCII lower case (as both backends do).
fn canonical(ident: &Ident) -> Checked<String> {
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
fn unqualified(name: &ObjectName, what: &str) -> Checked<String> {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(ident)] => canonical(ident),
        _ => Err(Refusal::new(format!(
            "{what} `{name}` is qualified; schema-qualified names are not allowed, use the bare name"
        ))),
    }
}

fn is_reserved(name: &str) -> bool {
    RESERVED_PREFIXES
        .iter()
        .any(|prefix| name.starts_with(prefix))
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

/// Why a statement is not DML, naming its leading keywords.
fn not_dml(statement: &Statement) -> Refusal {
    let text = statement.to_string();
    let lead: Vec<&str> = text.split_whitespace().take(2).collect();
    Refusal::new(format!(
        "only a single SELECT, INSERT, UPDATE or DELETE statement is allowed, not `{} ...`",
        lead.join(" ")
    ))
}

/// Walks a DML statement's AST, refusing anything not known to be harmless.
struct Walker<'a> {
    dialect: Dialect,
    /// Whether a canonical table name belongs to the calling component.
    owned: &'a dyn Fn(&str) -> bool,
    /// Names of the CTEs in scope at the current point of the walk.
    ctes: Vec<String>,
    /// Whether the statement writes anywhere.
    writes: bool,
    /// Current nesting depth, bounded by [`MAX_NESTING`].
    depth: usize,
}

impl<'a> Walker<'a> {
    fn new(dialect: Dialect, owned: &'a dyn Fn(&str) -> bool) -> Self {
        Self {
            dialect,
            owned,
            ctes: Vec::new(),
            writes: false,
            depth: 0,
        }
    }

    fn nested(&mut self, walk: impl FnOnce(&mut Self) -> Checked) -> Checked {
        if self.depth >= MAX_NESTING {
            return Err(Refusal::new("the statement is nested too deeply"));
        }
        self.depth += 1;
        let result = walk(self);
        self.depth -= 1;
        result
    }

    fn require_owned(&self, name: &str) -> Checked {
        if is_reserved(name) {
            return Err(Refusal::new(format!(
                "table `{name}` belongs to the database or the host"
            )));
        }
        if !(self.owned)(name) {
            return Err(Refusal::new(format!(
                "table `{name}` is not one of this component's tables"
            )));
        }
        Ok(())
    }

    /// A table read in FROM, JOIN, USING or UPDATE ... FROM: either a CTE in
    /// scope or an owned table.
    fn read_table(&mut self, name: &ObjectName) -> Checked {
        let name = unqualified(name, "table")?;
        if self.ctes.contains(&name) {
            return Ok(());
        }
        self.require_owned(&name)
    }

    /// The target of INSERT, UPDATE or DELETE. Both backends resolve it to a
    /// real table even when a CTE of the same name is in scope, so it must be
    /// owned.
    fn target_table(&mut self, name: &ObjectName) -> Checked {
        let name = unqualified(name, "table")?;
        self.require_owned(&name)
    }

    fn dml_statement(&mut self, statement: &Statement) -> Checked {
        match statement {
            Statement::Query(query) => self.query(query),
            Statement::Insert(insert) => self.insert(insert),
            Statement::Update {
                table,
                assignments,
                from,
                selection,
                returning,
                or: _,
                limit,
            } => self.update(
                table,
                assignments,
                from.as_ref(),
                selection,
                returning,
                limit,
            ),
            Statement::Delete(delete) => self.delete(delete),
            other => Err(not_dml(other)),
        }
    }

    fn query(&mut self, query: &Query) -> Checked {
        self.nested(|walker| walker.query_inner(query))
    }

    fn query_inner(&mut self, query: &Query) -> Checked {
        let Query {
            with,
            body,
            order_by,
            limit_clause,
            fetch,
            locks: _,
            for_clause,
            settings,
            format_clause,
            pipe_operators,
        } = query;
        if for_clause.is_some()
            || settings.is_some()
            || format_clause.is_some()
            || !pipe_operators.is_empty()
        {
            return Err(unsupported("this query clause", query));
        }
        let scope = self.ctes.len();
        let result = self.query_scoped(with.as_ref(), body, order_by, limit_clause, fetch);
        self.ctes.truncate(scope);
        result
    }

    fn query_scoped(
        &mut self,
        with: Option<&With>,
        body: &SetExpr,
        order_by: &Option<OrderBy>,
        limit_clause: &Option<LimitClause>,
        fetch: &Option<Fetch>,
    ) -> Checked {
        if let Some(With {
            with_token: _,
            recursive,
            cte_tables,
        }) = with
        {
            for cte in cte_tables {
                self.cte(cte, *recursive)?;
            }
        }
        self.set_expr(body)?;
        if let Some(order_by) = order_by {
            self.order_by(order_by)?;
        }
        if let Some(limit_clause) = limit_clause {
            match limit_clause {
                LimitClause::LimitOffset {
                    limit,
                    offset,
                    limit_by,
                } => {
                    if !limit_by.is_empty() {
                        return Err(unsupported("LIMIT BY", limit_clause));
                    }
                    self.opt_expr(limit.as_ref())?;
                    if let Some(Offset { value, rows: _ }) = offset {
                        self.expr(value)?;
                    }
                }
                LimitClause::OffsetCommaLimit { offset, limit } => {
                    self.expr(offset)?;
                    self.expr(limit)?;
                }
            }
        }
        if let Some(Fetch {
            with_ties: _,
            percent: _,
            quantity,
        }) = fetch
        {
            self.opt_expr(quantity.as_ref())?;
        }
        Ok(())
    }

    /// A CTE is visible to the CTEs after it and to the query body. Under
    /// RECURSIVE it is also visible in its own body. Any other reference
    /// (a non-recursive self reference, a forward reference) is treated as a
    /// table and must be owned, whatever the backend resolves it to.
    fn cte(&mut self, cte: &Cte, recursive: bool) -> Checked {
        let Cte {
            alias,
            query,
            from,
            materialized: _,
            closing_paren_token: _,
        } = cte;
        if from.is_some() {
            return Err(unsupported("CTE FROM", &alias.name));
        }
        let name = canonical(&alias.name)?;
        if recursive {
            self.ctes.push(name);
            self.query(query)
        } else {
            self.query(query)?;
            self.ctes.push(name);
            Ok(())
        }
    }

    fn set_expr(&mut self, body: &SetExpr) -> Checked {
        self.nested(|walker| match body {
            SetExpr::Select(select) => walker.select(select),
            SetExpr::Query(query) => walker.query(query),
            SetExpr::SetOperation {
                op: _,
                set_quantifier: _,
                left,
                right,
            } => {
                walker.set_expr(left)?;
                walker.set_expr(right)
            }
            SetExpr::Values(values) => walker.values(values),
            SetExpr::Insert(statement)
            | SetExpr::Update(statement)
            | SetExpr::Delete(statement) => walker.dml_statement(statement),
            SetExpr::Merge(_) | SetExpr::Table(_) => Err(unsupported("this query form", body)),
        })
    }

    fn values(&mut self, values: &Values) -> Checked {
        let Values {
            explicit_row: _,
            rows,
        } = values;
        rows.iter().flatten().try_for_each(|expr| self.expr(expr))
    }

    fn select(&mut self, select: &Select) -> Checked {
        let Select {
            select_token: _,
            distinct,
            top,
            top_before_distinct: _,
            projection,
            exclude,
            into,
            from,
            lateral_views,
            prewhere,
            selection,
            group_by,
            cluster_by,
            distribute_by,
            sort_by,
            having,
            named_window,
            qualify,
            window_before_qualify: _,
            value_table_mode,
            connect_by,
            flavor,
        } = select;
        if into.is_some() {
            return Err(Refusal::new(
                "SELECT ... INTO is not allowed (it creates a table)",
            ));
        }
        if top.is_some()
            || exclude.is_some()
            || !lateral_views.is_empty()
            || prewhere.is_some()
            || !cluster_by.is_empty()
            || !distribute_by.is_empty()
            || !sort_by.is_empty()
            || qualify.is_some()
            || value_table_mode.is_some()
            || connect_by.is_some()
            || *flavor != SelectFlavor::Standard
        {
            return Err(unsupported("this SELECT clause", select));
        }
        // FROM first: it is where the tables are, and a refusal about a
        // foreign table is the most useful one to report.
        for table in from {
            self.table_with_joins(table)?;
        }
        if let Some(sqlparser::ast::Distinct::On(exprs)) = distinct {
            self.exprs(exprs)?;
        }
        for item in projection {
            self.select_item(item)?;
        }
        self.opt_expr(selection.as_ref())?;
        match group_by {
            GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => {
                self.exprs(exprs)?;
            }
            GroupByExpr::Expressions(..) | GroupByExpr::All(_) => {
                return Err(unsupported("this GROUP BY form", select));
            }
        }
        self.opt_expr(having.as_ref())?;
        for NamedWindowDefinition(_, window) in named_window {
            match window {
                NamedWindowExpr::NamedWindow(_) => {}
                NamedWindowExpr::WindowSpec(spec) => self.window_spec(spec)?,
            }
        }
        Ok(())
    }

    fn select_item(&mut self, item: &SelectItem) -> Checked {
        match item {
            SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, alias: _ } => {
                self.expr(expr)
            }
            SelectItem::Wildcard(options) => wildcard_options(options, item),
            SelectItem::QualifiedWildcard(kind, options) => {
                wildcard_options(options, item)?;
                match kind {
                    // `t.*` names a FROM item, which is checked where it is
                    // introduced.
                    SelectItemQualifiedWildcardKind::ObjectName(_) => Ok(()),
                    SelectItemQualifiedWildcardKind::Expr(expr) => self.expr(expr),
                }
            }
        }
    }

    fn table_with_joins(&mut self, table: &TableWithJoins) -> Checked {
        let TableWithJoins { relation, joins } = table;
        self.table_factor(relation)?;
        for join in joins {
            let Join {
                relation,
                global,
                join_operator,
            } = join;
            if *global {
                return Err(unsupported("GLOBAL JOIN", relation));
            }
            self.table_factor(relation)?;
            match join_operator {
                JoinOperator::Join(constraint)
                | JoinOperator::Inner(constraint)
                | JoinOperator::Left(constraint)
                | JoinOperator::LeftOuter(constraint)
                | JoinOperator::Right(constraint)
                | JoinOperator::RightOuter(constraint)
                | JoinOperator::FullOuter(constraint)
                | JoinOperator::CrossJoin(constraint) => self.join_constraint(constraint)?,
                JoinOperator::Semi(_)
                | JoinOperator::LeftSemi(_)
                | JoinOperator::RightSemi(_)
                | JoinOperator::Anti(_)
                | JoinOperator::LeftAnti(_)
                | JoinOperator::RightAnti(_)
                | JoinOperator::CrossApply
                | JoinOperator::OuterApply
                | JoinOperator::AsOf { .. }
                | JoinOperator::StraightJoin(_) => {
                    return Err(unsupported("this kind of join", relation));
                }
            }
        }
        Ok(())
    }

    fn join_constraint(&mut self, constraint: &JoinConstraint) -> Checked {
        match constraint {
            JoinConstraint::On(expr) => self.expr(expr),
            // USING names columns, not tables.
            JoinConstraint::Using(_) | JoinConstraint::Natural | JoinConstraint::None => Ok(()),
        }
    }

    fn table_factor(&mut self, factor: &TableFactor) -> Checked {
        self.nested(|walker| match factor {
            TableFactor::Table {
                name,
                alias: _,
                args,
                with_hints,
                version,
                with_ordinality,
                partitions,
                json_path,
                sample,
                index_hints,
            } => {
                if args.is_some() {
                    return Err(Refusal::new(format!(
                        "table-valued function `{name}` is not allowed in FROM"
                    )));
                }
                if !with_hints.is_empty()
                    || version.is_some()
                    || *with_ordinality
                    || !partitions.is_empty()
                    || json_path.is_some()
                    || sample.is_some()
                    || !index_hints.is_empty()
                {
                    return Err(unsupported("this table clause", factor));
                }
                walker.read_table(name)
            }
            TableFactor::Derived {
                lateral: _,
                subquery,
                alias: _,
            } => walker.query(subquery),
            TableFactor::NestedJoin {
                table_with_joins,
                alias: _,
            } => walker.table_with_joins(table_with_joins),
            TableFactor::TableFunction { .. }
            | TableFactor::Function { .. }
            | TableFactor::UNNEST { .. }
            | TableFactor::JsonTable { .. }
            | TableFactor::OpenJsonTable { .. }
            | TableFactor::XmlTable { .. } => {
                Err(unsupported("a table-valued function in FROM", factor))
            }
            TableFactor::Pivot { .. }
            | TableFactor::Unpivot { .. }
            | TableFactor::MatchRecognize { .. }
            | TableFactor::SemanticView { .. } => Err(unsupported("this FROM item", factor)),
        })
    }

    /// The single plain table an UPDATE or DELETE writes.
    fn target_relation(&mut self, table: &TableWithJoins) -> Checked {
        let TableWithJoins { relation, joins } = table;
        if !joins.is_empty() {
            return Err(unsupported("a join in the target of a write", table));
        }
        match relation {
            TableFactor::Table {
                name,
                alias: _,
                args: None,
                with_hints,
                version: None,
                with_ordinality: false,
                partitions,
                json_path: None,
                sample: None,
                index_hints,
            } if with_hints.is_empty() && partitions.is_empty() && index_hints.is_empty() => {
                self.target_table(name)
            }
            other => Err(unsupported("this target of a write", other)),
        }
    }

    fn insert(&mut self, insert: &Insert) -> Checked {
        let Insert {
            or: _,
            ignore,
            into: _,
            table,
            table_alias: _,
            columns: _,
            overwrite,
            source,
            assignments,
            partitioned,
            after_columns,
            has_table_keyword: _,
            on,
            returning,
            replace_into: _,
            priority,
            insert_alias,
            settings,
            format_clause,
        } = insert;
        self.writes = true;
        if *ignore
            || *overwrite
            || !assignments.is_empty()
            || partitioned.is_some()
            || !after_columns.is_empty()
            || priority.is_some()
            || insert_alias.is_some()
            || settings.is_some()
            || format_clause.is_some()
        {
            return Err(unsupported("this INSERT form", insert));
        }
        match table {
            TableObject::TableName(name) => self.target_table(name)?,
            TableObject::TableFunction(function) => {
                return Err(unsupported("INSERT into a function", function));
            }
        }
        if let Some(source) = source {
            self.query(source)?;
        }
        match on {
            None => {}
            Some(OnInsert::OnConflict(OnConflict {
                conflict_target,
                action,
            })) => {
                match conflict_target {
                    None | Some(ConflictTarget::Columns(_)) => {}
                    // A constraint name is looked up among the target
                    // table's constraints only.
                    Some(ConflictTarget::OnConstraint(_)) => {}
                }
                match action {
                    OnConflictAction::DoNothing => {}
                    OnConflictAction::DoUpdate(DoUpdate {
                        assignments,
                        selection,
                    }) => {
                        self.assignments(assignments)?;
                        self.opt_expr(selection.as_ref())?;
                    }
                }
            }
            Some(_) => return Err(unsupported("this ON clause", insert)),
        }
        self.returning(returning.as_deref())
    }

    fn update(
        &mut self,
        table: &TableWithJoins,
        assignments: &[Assignment],
        from: Option<&UpdateTableFromKind>,
        selection: &Option<Expr>,
        returning: &Option<Vec<SelectItem>>,
        limit: &Option<Expr>,
    ) -> Checked {
        self.writes = true;
        self.target_relation(table)?;
        if let Some(
            UpdateTableFromKind::BeforeSet(tables) | UpdateTableFromKind::AfterSet(tables),
        ) = from
        {
            for table in tables {
                self.table_with_joins(table)?;
            }
        }
        self.assignments(assignments)?;
        self.opt_expr(selection.as_ref())?;
        self.opt_expr(limit.as_ref())?;
        self.returning(returning.as_deref())
    }

    fn delete(&mut self, delete: &Delete) -> Checked {
        let Delete {
            tables,
            from,
            using,
            selection,
            returning,
            order_by,
            limit,
        } = delete;
        self.writes = true;
        if !tables.is_empty() {
            return Err(unsupported("multi-table DELETE", delete));
        }
        let (FromTable::WithFromKeyword(targets) | FromTable::WithoutKeyword(targets)) = from;
        match targets.as_slice() {
            [target] => self.target_relation(target)?,
            _ => return Err(unsupported("this DELETE form", delete)),
        }
        for table in using.iter().flatten() {
            self.table_with_joins(table)?;
        }
        self.opt_expr(selection.as_ref())?;
        self.order_by_exprs(order_by)?;
        self.opt_expr(limit.as_ref())?;
        self.returning(returning.as_deref())
    }

    fn assignments(&mut self, assignments: &[Assignment]) -> Checked {
        for Assignment { target, value } in assignments {
            match target {
                AssignmentTarget::ColumnName(_) | AssignmentTarget::Tuple(_) => {}
            }
            self.expr(value)?;
        }
        Ok(())
    }

    fn returning(&mut self, returning: Option<&[SelectItem]>) -> Checked {
        returning
            .into_iter()
            .flatten()
            .try_for_each(|item| self.select_item(item))
    }

    fn order_by(&mut self, order_by: &OrderBy) -> Checked {
        let OrderBy { kind, interpolate } = order_by;
        if interpolate.is_some() {
            return Err(unsupported("INTERPOLATE", order_by));
        }
        match kind {
            OrderByKind::Expressions(exprs) => self.order_by_exprs(exprs),
            OrderByKind::All(_) => Err(unsupported("ORDER BY ALL", order_by)),
        }
    }

    fn order_by_exprs(&mut self, exprs: &[OrderByExpr]) -> Checked {
        for order_by in exprs {
            let OrderByExpr {
                expr,
                options: _,
                with_fill,
            } = order_by;
            if with_fill.is_some() {
                return Err(unsupported("WITH FILL", order_by));
            }
            self.expr(expr)?;
        }
        Ok(())
    }

    fn window_spec(&mut self, spec: &WindowSpec) -> Checked {
        let WindowSpec {
            window_name: _,
            partition_by,
            order_by,
            window_frame,
        } = spec;
        self.exprs(partition_by)?;
        self.order_by_exprs(order_by)?;
        if let Some(WindowFrame {
            units: _,
            start_bound,
            end_bound,
        }) = window_frame
        {
            for bound in std::iter::once(start_bound).chain(end_bound) {
                match bound {
                    WindowFrameBound::CurrentRow => {}
                    WindowFrameBound::Preceding(expr) | WindowFrameBound::Following(expr) => {
                        self.opt_expr(expr.as_deref())?;
                    }
                }
            }
        }
        Ok(())
    }

    fn opt_expr(&mut self, expr: Option<&Expr>) -> Checked {
        expr.map_or(Ok(()), |expr| self.expr(expr))
    }

    fn exprs(&mut self, exprs: &[Expr]) -> Checked {
        exprs.iter().try_for_each(|expr| self.expr(expr))
    }

    fn expr(&mut self, expr: &Expr) -> Checked {
        self.nested(|walker| walker.expr_inner(expr))
    }

    fn expr_inner(&mut self, expr: &Expr) -> Checked {
        match expr {
            Expr::Identifier(ident) => {
                if self.dialect == Dialect::Postgres
                    && ident.quote_style.is_none()
                    && POSTGRES_SESSION_IDENTIFIERS
                        .contains(&ident.value.to_ascii_lowercase().as_str())
                {
                    return Err(Refusal::new(format!(
                        "`{ident}` reads session information and is not allowed"
                    )));
                }
                Ok(())
            }
            // Column references: a qualifier can only name a FROM item.
            Expr::CompoundIdentifier(_) => Ok(()),
            Expr::Value(_) => Ok(()),
            Expr::IsFalse(inner)
            | Expr::IsNotFalse(inner)
            | Expr::IsTrue(inner)
            | Expr::IsNotTrue(inner)
            | Expr::IsNull(inner)
            | Expr::IsNotNull(inner)
            | Expr::IsUnknown(inner)
            | Expr::IsNotUnknown(inner)
            | Expr::Nested(inner) => self.expr(inner),
            Expr::IsDistinctFrom(left, right) | Expr::IsNotDistinctFrom(left, right) => {
                self.expr(left)?;
                self.expr(right)
            }
            Expr::InList {
                expr,
                list,
                negated: _,
            } => {
                self.expr(expr)?;
                self.exprs(list)
            }
            Expr::InSubquery {
                expr,
                subquery,
                negated: _,
            } => {
                self.expr(expr)?;
                self.query(subquery)
            }
            Expr::Between {
                expr,
                negated: _,
                low,
                high,
            } => {
                self.expr(expr)?;
                self.expr(low)?;
                self.expr(high)
            }
            Expr::BinaryOp { left, op, right } => {
                binary_operator(op, expr)?;
                self.expr(left)?;
                self.expr(right)
            }
            Expr::AnyOp {
                left,
                compare_op,
                right,
                is_some: _,
            }
            | Expr::AllOp {
                left,
                compare_op,
                right,
            } => {
                binary_operator(compare_op, expr)?;
                self.expr(left)?;
                self.expr(right)
            }
            Expr::Like {
                negated: _,
                any,
                expr: inner,
                pattern,
                escape_char: _,
            }
            | Expr::ILike {
                negated: _,
                any,
                expr: inner,
                pattern,
                escape_char: _,
            } => {
                if *any {
                    return Err(unsupported("LIKE ANY", expr));
                }
                self.expr(inner)?;
                self.expr(pattern)
            }
            Expr::UnaryOp { op, expr: inner } => match op {
                UnaryOperator::Plus | UnaryOperator::Minus | UnaryOperator::Not => self.expr(inner),
                _ => Err(unsupported("this operator", expr)),
            },
            Expr::Cast {
                kind: _,
                expr: inner,
                data_type,
                format,
            } => {
                if format.is_some() {
                    return Err(unsupported("CAST ... FORMAT", expr));
                }
                data_type_allowed(data_type)?;
                self.expr(inner)
            }
            Expr::Ceil { expr: inner, field } | Expr::Floor { expr: inner, field } => {
                match field {
                    sqlparser::ast::CeilFloorKind::DateTimeField(
                        sqlparser::ast::DateTimeField::NoDateTime,
                    ) => {}
                    _ => return Err(unsupported("this form of CEIL/FLOOR", expr)),
                }
                self.expr(inner)
            }
            Expr::Position { expr, r#in } => {
                self.expr(expr)?;
                self.expr(r#in)
            }
            Expr::Substring {
                expr,
                substring_from,
                substring_for,
                special: _,
                shorthand: _,
            } => {
                self.expr(expr)?;
                self.opt_expr(substring_from.as_deref())?;
                self.opt_expr(substring_for.as_deref())
            }
            Expr::Trim {
                expr,
                trim_where: _,
                trim_what,
                trim_characters,
            } => {
                self.expr(expr)?;
                self.opt_expr(trim_what.as_deref())?;
                self.exprs(trim_characters.as_deref().unwrap_or_default())
            }
            Expr::Collate { expr, collation: _ } => self.expr(expr),
            Expr::TypedString(typed) => {
                let sqlparser::ast::TypedString {
                    data_type,
                    value: _,
                    uses_odbc_syntax,
                } = typed;
                if *uses_odbc_syntax {
                    return Err(unsupported("ODBC syntax", expr));
                }
                data_type_allowed(data_type)
            }
            Expr::Function(function) => self.function(function),
            Expr::Case {
                case_token: _,
                end_token: _,
                operand,
                conditions,
                else_result,
            } => {
                self.opt_expr(operand.as_deref())?;
                for sqlparser::ast::CaseWhen { condition, result } in conditions {
                    self.expr(condition)?;
                    self.expr(result)?;
                }
                self.opt_expr(else_result.as_deref())
            }
            Expr::Exists {
                subquery,
                negated: _,
            } => self.query(subquery),
            Expr::Subquery(subquery) => self.query(subquery),
            Expr::Tuple(exprs) => self.exprs(exprs),
            Expr::CompoundFieldAccess { .. }
            | Expr::JsonAccess { .. }
            | Expr::IsNormalized { .. }
            | Expr::InUnnest { .. }
            | Expr::SimilarTo { .. }
            | Expr::RLike { .. }
            | Expr::Convert { .. }
            | Expr::AtTimeZone { .. }
            | Expr::Extract { .. }
            | Expr::Overlay { .. }
            | Expr::Prefixed { .. }
            | Expr::GroupingSets(_)
            | Expr::Cube(_)
            | Expr::Rollup(_)
            | Expr::Struct { .. }
            | Expr::Named { .. }
            | Expr::Dictionary(_)
            | Expr::Map(_)
            | Expr::Array(_)
            | Expr::Interval(_)
            | Expr::MatchAgainst { .. }
            | Expr::Wildcard(_)
            | Expr::QualifiedWildcard(..)
            | Expr::OuterJoin(_)
            | Expr::Prior(_)
            | Expr::Lambda(_)
            | Expr::MemberOf(_) => Err(unsupported("this expression", expr)),
        }
    }

    fn function(&mut self, function: &Function) -> Checked {
        let Function {
            name,
            uses_odbc_syntax,
            parameters,
            args,
            filter,
            null_treatment: _,
            over,
            within_group,
        } = function;
        let function_name = unqualified(name, "function")?;
        if ALLOWED_FUNCTIONS
            .binary_search(&function_name.as_str())
            .is_err()
        {
            return Err(Refusal::new(format!(
                "function `{function_name}` is not allowed; allowed functions are {}",
                ALLOWED_FUNCTIONS.join(", ")
            )));
        }
        if *uses_odbc_syntax || !matches!(parameters, FunctionArguments::None) {
            return Err(unsupported("this function call syntax", function));
        }
        match args {
            FunctionArguments::None => {}
            FunctionArguments::Subquery(query) => self.query(query)?,
            FunctionArguments::List(list) => {
                let sqlparser::ast::FunctionArgumentList {
                    duplicate_treatment: _,
                    args,
                    clauses,
                } = list;
                for arg in args {
                    match arg {
                        FunctionArg::Named {
                            name: _,
                            arg,
                            operator: _,
                        }
                        | FunctionArg::Unnamed(arg) => self.function_arg(arg)?,
                        FunctionArg::ExprNamed {
                            name,
                            arg,
                            operator: _,
                        } => {
                            self.expr(name)?;
                            self.function_arg(arg)?;
                        }
                    }
                }
                for clause in clauses {
                    match clause {
                        FunctionArgumentClause::OrderBy(exprs) => self.order_by_exprs(exprs)?,
                        FunctionArgumentClause::Limit(expr) => self.expr(expr)?,
                        FunctionArgumentClause::IgnoreOrRespectNulls(_)
                        | FunctionArgumentClause::Separator(_) => {}
                        FunctionArgumentClause::OnOverflow(_)
                        | FunctionArgumentClause::Having(_)
                        | FunctionArgumentClause::JsonNullClause(_)
                        | FunctionArgumentClause::JsonReturningClause(_) => {
                            return Err(unsupported("this function argument clause", function));
                        }
                    }
                }
            }
        }
        self.opt_expr(filter.as_deref())?;
        match over {
            None | Some(WindowType::NamedWindow(_)) => {}
            Some(WindowType::WindowSpec(spec)) => self.window_spec(spec)?,
        }
        self.order_by_exprs(within_group)
    }

    fn function_arg(&mut self, arg: &FunctionArgExpr) -> Checked {
        match arg {
            FunctionArgExpr::Expr(expr) => self.expr(expr),
            // `count(*)` and `count(t.*)`: `t` can only name a FROM item.
            FunctionArgExpr::QualifiedWildcard(_) | FunctionArgExpr::Wildcard => Ok(()),
        }
    }
}

fn wildcard_options(options: &WildcardAdditionalOptions, item: &SelectItem) -> Checked {
    let WildcardAdditionalOptions {
        wildcard_token: _,
        opt_ilike,
        opt_exclude,
        opt_except,
        opt_replace,
        opt_rename,
    } = options;
    if opt_ilike.is_some()
        || opt_exclude.is_some()
        || opt_except.is_some()
        || opt_replace.is_some()
        || opt_rename.is_some()
    {
        return Err(unsupported("this wildcard option", item));
    }
    Ok(())
}

/// Built-in operators that only compute on their operands. Everything else
/// (custom operators, JSON and regular-expression operators, assignment) is
/// refused.
fn binary_operator(op: &BinaryOperator, expr: &Expr) -> Checked {
    match op {
        BinaryOperator::Plus
        | BinaryOperator::Minus
        | BinaryOperator::Multiply
        | BinaryOperator::Divide
        | BinaryOperator::Modulo
        | BinaryOperator::StringConcat
        | BinaryOperator::Gt
        | BinaryOperator::Lt
        | BinaryOperator::GtEq
        | BinaryOperator::LtEq
        | BinaryOperator::Eq
        | BinaryOperator::NotEq
        | BinaryOperator::And
        | BinaryOperator::Or
        | BinaryOperator::BitwiseOr
        | BinaryOperator::BitwiseAnd
        | BinaryOperator::PGBitwiseShiftLeft
        | BinaryOperator::PGBitwiseShiftRight => Ok(()),
        _ => Err(Refusal::new(format!(
            "operator `{op}` is not allowed in `{}`",
            excerpt(expr)
        ))),
    }
}

/// Plain scalar types. Anything else (custom types such as `regclass` or a
/// table's row type, arrays, JSON) is refused.
fn data_type_allowed(data_type: &DataType) -> Checked {
    match data_type {
        DataType::Character(_)
        | DataType::Char(_)
        | DataType::CharacterVarying(_)
        | DataType::CharVarying(_)
        | DataType::Varchar(_)
        | DataType::Text
        | DataType::Uuid
        | DataType::Blob(_)
        | DataType::Bytea
        | DataType::Numeric(_)
        | DataType::Decimal(_)
        | DataType::Dec(_)
        | DataType::Float(_)
        | DataType::Real
        | DataType::Float4
        | DataType::Float8
        | DataType::Double(_)
        | DataType::DoublePrecision
        | DataType::SmallInt(_)
        | DataType::Int(_)
        | DataType::Int2(_)
        | DataType::Int4(_)
        | DataType::Int8(_)
        | DataType::Integer(_)
        | DataType::BigInt(_)
        | DataType::Bool
        | DataType::Boolean
        | DataType::Date
        | DataType::Time(..)
        | DataType::Timestamp(..)
        // SQLite columns may omit the type.
        | DataType::Unspecified => Ok(()),
        other => Err(Refusal::new(format!("data type `{other}` is not allowed"))),
    }
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
    use super::*;

    const BOTH: &[Dialect] = &[Dialect::Sqlite, Dialect::Postgres];
    const SQLITE: &[Dialect] = &[Dialect::Sqlite];
    const POSTGRES: &[Dialect] = &[Dialect::Postgres];

    /// The component under test is `sales`; `customers` and `inventory`
    /// belong to other components.
    fn owned() -> HashSet<String> {
        ["sales", "sales_items"].map(String::from).into()
    }

    fn owned_indexes() -> HashSet<String> {
        ["sales_code_key"].map(String::from).into()
    }

    fn others(name: &str) -> bool {
        name == "customers" || name.starts_with("customers_") || name == "sales_reports"
    }

    #[track_caller]
    fn assert_accepted(dialects: &[Dialect], cases: &[(&str, StatementKind)]) {
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
    fn assert_refused(dialects: &[Dialect], cases: &[(&str, &str)]) {
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

    const NOT_OURS: &str = "`customers` is not one of this component's tables";

    #[test]
    fn accepts_reads_of_own_tables() {
        use StatementKind::Read;
        assert_accepted(
            BOTH,
            &[
                ("SELECT id, total FROM sales WHERE id = $1", Read),
                ("SELECT id FROM sales;", Read),
                ("SELECT 1", Read),
                ("VALUES (1, 2)", Read),
                (
                    "SELECT s.id, i.qty FROM sales s JOIN sales_items AS i ON i.sale_id = s.id",
                    Read,
                ),
                (
                    "SELECT s.* FROM sales s LEFT JOIN sales_items i USING (id)",
                    Read,
                ),
                ("SELECT count(*), sum(total), max(total) FROM sales", Read),
                (
                    "SELECT * FROM sales WHERE id IN (SELECT sale_id FROM sales_items)",
                    Read,
                ),
                (
                    "SELECT (SELECT count(*) FROM sales_items i WHERE i.sale_id = s.id) FROM sales s",
                    Read,
                ),
                (
                    "SELECT * FROM sales s WHERE EXISTS (SELECT 1 FROM sales_items i WHERE i.sale_id = s.id)",
                    Read,
                ),
                ("SELECT * FROM (SELECT id FROM sales) AS x", Read),
                (
                    "SELECT id FROM sales UNION SELECT sale_id FROM sales_items",
                    Read,
                ),
                (
                    "SELECT lower(name), upper(name), length(name), coalesce(total, 0), \
                     nullif(total, 0), abs(total), round(total), substr(name, 1, 2), \
                     replace(name, 'a', 'b'), trim(name) FROM sales",
                    Read,
                ),
                (
                    "SELECT CAST(total AS BIGINT), CAST(id AS TEXT) FROM sales",
                    Read,
                ),
                (
                    "SELECT CASE WHEN total > 0 THEN 'paid' ELSE 'free' END FROM sales",
                    Read,
                ),
                (
                    "SELECT customer_id, sum(total) FROM sales GROUP BY customer_id \
                     HAVING sum(total) > $1 ORDER BY 2 DESC LIMIT 10 OFFSET $2",
                    Read,
                ),
                (
                    "SELECT id, row_number() OVER (PARTITION BY customer_id ORDER BY id) FROM sales",
                    Read,
                ),
                (
                    "SELECT * FROM sales WHERE name LIKE $1 AND total BETWEEN 1 AND 2 \
                     AND id IS NOT NULL AND NOT (total <> 3) AND id IN ($2, $3)",
                    Read,
                ),
                ("SELECT name || ' ' || id FROM sales", Read),
                ("SELECT ceil(total), floor(total) FROM sales", Read),
            ],
        );
        assert_accepted(
            POSTGRES,
            &[
                ("SELECT * FROM sales WHERE id = $1 FOR UPDATE", Read),
                ("SELECT total::BIGINT FROM sales", Read),
                ("SELECT * FROM sales WHERE name ILIKE $1", Read),
                ("SELECT * FROM sales WHERE id = ANY($1)", Read),
            ],
        );
        assert_accepted(
            SQLITE,
            &[(
                "SELECT ifnull(total, 0), iif(total > 0, 1, 0) FROM sales",
                Read,
            )],
        );
    }

    #[test]
    fn accepts_ctes_over_own_tables() {
        use StatementKind::Read;
        assert_accepted(
            BOTH,
            &[
                (
                    "WITH recent AS (SELECT * FROM sales) SELECT * FROM recent",
                    Read,
                ),
                (
                    "WITH a AS (SELECT id FROM sales), b AS (SELECT id FROM a) SELECT * FROM b",
                    Read,
                ),
                (
                    "WITH recent AS (SELECT id FROM sales) \
                     SELECT * FROM sales WHERE id IN (SELECT id FROM recent)",
                    Read,
                ),
                (
                    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 10) \
                     SELECT x FROM n",
                    Read,
                ),
                (
                    "SELECT * FROM (WITH inner_cte AS (SELECT id FROM sales) \
                     SELECT * FROM inner_cte) AS x",
                    Read,
                ),
            ],
        );
    }

    #[test]
    fn accepts_writes_to_own_tables() {
        use StatementKind::Write;
        assert_accepted(
            BOTH,
            &[
                ("INSERT INTO sales (id, total) VALUES ($1, $2)", Write),
                (
                    "INSERT INTO sales (id, total) VALUES ($1, $2) RETURNING id, total",
                    Write,
                ),
                (
                    "INSERT INTO sales_items (sale_id, qty) SELECT id, 1 FROM sales WHERE id = $1",
                    Write,
                ),
                ("INSERT INTO sales DEFAULT VALUES", Write),
                (
                    "UPDATE sales SET total = total - $1 WHERE id = $2 AND total >= $1",
                    Write,
                ),
                ("UPDATE sales SET total = 0 RETURNING id", Write),
                (
                    "UPDATE sales SET total = (SELECT sum(qty) FROM sales_items i \
                     WHERE i.sale_id = sales.id)",
                    Write,
                ),
                (
                    "UPDATE sales SET total = i.qty FROM sales_items AS i WHERE i.sale_id = sales.id",
                    Write,
                ),
                ("DELETE FROM sales WHERE id = $1", Write),
                ("DELETE FROM sales WHERE id = $1 RETURNING id", Write),
                (
                    "INSERT INTO sales (id, total) VALUES ($1, $2) \
                     ON CONFLICT (id) DO UPDATE SET total = excluded.total",
                    Write,
                ),
                (
                    "INSERT INTO sales (id, total) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    Write,
                ),
                (
                    "WITH src AS (SELECT id FROM sales) INSERT INTO sales_items (sale_id) \
                     SELECT id FROM src",
                    Write,
                ),
            ],
        );
        assert_accepted(
            POSTGRES,
            &[
                (
                    "DELETE FROM sales USING sales_items WHERE sales_items.sale_id = sales.id",
                    Write,
                ),
                (
                    "WITH gone AS (DELETE FROM sales WHERE id = $1 RETURNING id) \
                     SELECT count(*) FROM gone",
                    Write,
                ),
            ],
        );
        assert_accepted(
            SQLITE,
            &[
                ("INSERT OR IGNORE INTO sales (id) VALUES ($1)", Write),
                ("REPLACE INTO sales (id) VALUES ($1)", Write),
            ],
        );
    }

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
    fn refuses_a_plain_foreign_table() {
        assert_refused(
            BOTH,
            &[
                ("SELECT * FROM customers", NOT_OURS),
                ("SELECT * FROM CUSTOMERS", NOT_OURS),
                ("SELECT * FROM \"customers\"", NOT_OURS),
                (
                    "SELECT * FROM sales JOIN customers ON customers.id = sales.customer_id",
                    NOT_OURS,
                ),
                ("SELECT * FROM sales, customers", NOT_OURS),
                ("SELECT * FROM (sales JOIN customers ON 1 = 1)", NOT_OURS),
                (
                    "SELECT * FROM sales UNION SELECT * FROM customers",
                    NOT_OURS,
                ),
                ("SELECT * FROM nonexistent", "`nonexistent` is not one of"),
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

    #[test]
    fn refuses_a_foreign_table_inside_a_subquery() {
        assert_refused(
            BOTH,
            &[
                (
                    "SELECT * FROM sales WHERE customer_id IN (SELECT id FROM customers)",
                    NOT_OURS,
                ),
                (
                    "SELECT * FROM sales WHERE EXISTS (SELECT 1 FROM customers)",
                    NOT_OURS,
                ),
                (
                    "SELECT * FROM sales WHERE NOT EXISTS (SELECT 1 FROM customers)",
                    NOT_OURS,
                ),
                (
                    "SELECT (SELECT name FROM customers LIMIT 1) AS n FROM sales",
                    NOT_OURS,
                ),
                ("SELECT * FROM (SELECT * FROM customers) AS c", NOT_OURS),
                (
                    "SELECT * FROM sales WHERE total > (SELECT max(balance) FROM customers)",
                    NOT_OURS,
                ),
                ("SELECT coalesce((SELECT 1 FROM customers), 0)", NOT_OURS),
                (
                    "SELECT CASE WHEN 1 = 1 THEN (SELECT 1 FROM customers) END",
                    NOT_OURS,
                ),
                (
                    "SELECT * FROM sales ORDER BY (SELECT 1 FROM customers)",
                    NOT_OURS,
                ),
                (
                    "SELECT * FROM sales GROUP BY id HAVING count(*) > (SELECT 1 FROM customers)",
                    NOT_OURS,
                ),
                (
                    "SELECT * FROM sales LIMIT (SELECT 1 FROM customers)",
                    NOT_OURS,
                ),
                (
                    "SELECT * FROM sales JOIN sales_items ON sales.id IN (SELECT id FROM customers)",
                    NOT_OURS,
                ),
                (
                    "SELECT count(*) FILTER (WHERE id IN (SELECT id FROM customers)) FROM sales",
                    NOT_OURS,
                ),
                (
                    "SELECT CAST((SELECT 1 FROM customers) AS INTEGER)",
                    NOT_OURS,
                ),
                (
                    "SELECT * FROM sales WHERE (id, 1) IN (SELECT id, 1 FROM customers)",
                    NOT_OURS,
                ),
                ("VALUES ((SELECT 1 FROM customers))", NOT_OURS),
            ],
        );
    }

    #[test]
    fn refuses_a_foreign_table_inside_a_cte() {
        assert_refused(
            BOTH,
            &[
                (
                    "WITH c AS (SELECT * FROM customers) SELECT * FROM c",
                    NOT_OURS,
                ),
                (
                    "WITH a AS (SELECT id FROM sales), c AS (SELECT * FROM customers) SELECT * FROM a",
                    NOT_OURS,
                ),
                (
                    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT id FROM customers) SELECT * FROM c",
                    NOT_OURS,
                ),
                (
                    "WITH c AS (SELECT id FROM sales) INSERT INTO sales_items (sale_id) \
                     SELECT id FROM customers",
                    NOT_OURS,
                ),
            ],
        );
    }

    #[test]
    fn refuses_a_cte_name_outside_its_scope() {
        assert_refused(
            BOTH,
            &[
                // The inner CTE named `customers` does not hide the outer,
                // real table.
                (
                    "SELECT * FROM customers, (WITH customers AS (SELECT 1 AS id) \
                     SELECT * FROM customers) AS x",
                    NOT_OURS,
                ),
                (
                    "SELECT (WITH customers AS (SELECT 1) SELECT 1), (SELECT 1 FROM customers)",
                    NOT_OURS,
                ),
                // Without RECURSIVE, a CTE's body does not see its own name.
                (
                    "WITH customers AS (SELECT * FROM customers) SELECT * FROM customers",
                    NOT_OURS,
                ),
                // A CTE cannot see the CTEs after it.
                (
                    "WITH a AS (SELECT * FROM customers), customers AS (SELECT 1) SELECT * FROM a",
                    NOT_OURS,
                ),
                // The target of a write is always a real table.
                (
                    "WITH customers AS (SELECT 1 AS id) INSERT INTO customers (id) \
                     SELECT id FROM customers",
                    NOT_OURS,
                ),
                (
                    "WITH customers AS (SELECT 1 AS id) DELETE FROM customers",
                    NOT_OURS,
                ),
                (
                    "WITH customers AS (SELECT 1 AS id) UPDATE customers SET id = 2",
                    NOT_OURS,
                ),
            ],
        );
    }

    #[test]
    fn refuses_writes_that_reach_a_foreign_table() {
        assert_refused(
            BOTH,
            &[
                ("INSERT INTO customers (id) VALUES ($1)", NOT_OURS),
                ("INSERT INTO sales (id) SELECT id FROM customers", NOT_OURS),
                (
                    "INSERT INTO sales (id) VALUES ((SELECT max(id) FROM customers))",
                    NOT_OURS,
                ),
                ("UPDATE customers SET balance = 0", NOT_OURS),
                (
                    "UPDATE sales SET total = (SELECT balance FROM customers WHERE id = $1)",
                    NOT_OURS,
                ),
                (
                    "UPDATE sales SET total = 0 WHERE id IN (SELECT id FROM customers)",
                    NOT_OURS,
                ),
                (
                    "UPDATE sales SET total = c.balance FROM customers c WHERE c.id = sales.id",
                    NOT_OURS,
                ),
                ("DELETE FROM customers WHERE id = $1", NOT_OURS),
                (
                    "DELETE FROM sales WHERE id IN (SELECT id FROM customers)",
                    NOT_OURS,
                ),
                (
                    "INSERT INTO sales (id) VALUES ($1) RETURNING (SELECT count(*) FROM customers)",
                    NOT_OURS,
                ),
                (
                    "UPDATE sales SET total = 0 RETURNING (SELECT name FROM customers LIMIT 1)",
                    NOT_OURS,
                ),
                (
                    "DELETE FROM sales RETURNING (SELECT name FROM customers LIMIT 1)",
                    NOT_OURS,
                ),
                (
                    "INSERT INTO sales (id) VALUES ($1) ON CONFLICT (id) DO UPDATE \
                     SET total = (SELECT balance FROM customers LIMIT 1)",
                    NOT_OURS,
                ),
                (
                    "INSERT INTO sales (id) VALUES ($1) ON CONFLICT (id) DO UPDATE \
                     SET total = 0 WHERE EXISTS (SELECT 1 FROM customers)",
                    NOT_OURS,
                ),
            ],
        );
        assert_refused(
            POSTGRES,
            &[
                (
                    "DELETE FROM sales USING customers WHERE customers.id = sales.id",
                    NOT_OURS,
                ),
                (
                    "WITH gone AS (DELETE FROM customers RETURNING id) SELECT * FROM gone",
                    NOT_OURS,
                ),
            ],
        );
    }

    #[test]
    fn refuses_anything_but_exactly_one_statement() {
        assert_refused(
            BOTH,
            &[
                ("", "empty"),
                ("   ", "empty"),
                (";", "empty"),
                ("-- just a comment", "empty"),
                ("/* a comment */", "empty"),
                (
                    "SELECT 1; DELETE FROM sales",
                    "exactly one statement is allowed, found 2",
                ),
                ("SELECT 1; SELECT 2;", "exactly one statement"),
                ("SELECT 1;SELECT 1", "exactly one statement"),
            ],
        );
    }

    #[test]
    fn refuses_statements_that_are_not_dml() {
        let not_dml = "only a single SELECT, INSERT, UPDATE or DELETE";
        assert_refused(
            BOTH,
            &[
                ("CREATE TABLE sales_x (id TEXT)", not_dml),
                ("DROP TABLE sales", not_dml),
                ("ALTER TABLE sales ADD COLUMN x TEXT", not_dml),
                ("CREATE INDEX sales_x ON sales (id)", not_dml),
                ("CREATE VIEW sales_v AS SELECT * FROM sales", not_dml),
                ("BEGIN", not_dml),
                ("COMMIT", not_dml),
                ("ROLLBACK", not_dml),
                ("SAVEPOINT a", not_dml),
                ("RELEASE SAVEPOINT a", not_dml),
                ("EXPLAIN SELECT * FROM sales", not_dml),
                ("EXPLAIN QUERY PLAN SELECT * FROM sales", ""),
            ],
        );
        assert_refused(
            SQLITE,
            &[
                ("PRAGMA table_info(sales)", ""),
                ("PRAGMA table_info = 1", not_dml),
                ("PRAGMA writable_schema = 1", not_dml),
                ("ATTACH DATABASE '/tmp/x.db' AS x", not_dml),
                ("ATTACH '/tmp/x.db' AS x", ""),
                ("DETACH DATABASE x", ""),
                ("VACUUM", ""),
                ("VACUUM INTO '/tmp/copy.db'", ""),
                ("REINDEX", ""),
                ("ANALYZE", ""),
            ],
        );
        assert_refused(
            POSTGRES,
            &[
                ("SET ROLE postgres", not_dml),
                ("RESET ROLE", ""),
                ("SET LOCAL ROLE postgres", not_dml),
                ("SET SESSION AUTHORIZATION postgres", ""),
                ("SET search_path TO other", not_dml),
                ("RESET ALL", ""),
                ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", ""),
                ("START TRANSACTION", not_dml),
                ("COPY sales TO '/tmp/x'", not_dml),
                ("COPY sales FROM PROGRAM 'id'", ""),
                ("LISTEN deploys", not_dml),
                ("NOTIFY deploys", not_dml),
                ("UNLISTEN *", ""),
                ("CALL do_things()", not_dml),
                ("DO $$ BEGIN END $$", ""),
                ("GRANT ALL ON sales TO public", not_dml),
                ("REVOKE ALL ON sales FROM public", not_dml),
                ("TRUNCATE sales", not_dml),
                ("VACUUM sales", ""),
                ("LOCK TABLE sales", ""),
                ("PREPARE p AS SELECT 1", ""),
                ("EXECUTE p", ""),
                ("DEALLOCATE p", ""),
                ("DISCARD ALL", ""),
                ("SHOW search_path", ""),
                (
                    "CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql",
                    "",
                ),
                ("CREATE EXTENSION dblink", ""),
                ("ALTER SYSTEM SET work_mem = '1GB'", ""),
                ("COMMENT ON TABLE sales IS 'x'", ""),
            ],
        );
    }

    #[test]
    fn refuses_functions_outside_the_allowlist() {
        assert_refused(
            BOTH,
            &[
                (
                    "SELECT query_to_xml('select * from customers', true, true, '')",
                    "function `query_to_xml` is not allowed",
                ),
                (
                    "SELECT load_extension('/tmp/evil.so')",
                    "function `load_extension`",
                ),
                ("SELECT readfile('/etc/passwd')", "function `readfile`"),
                ("SELECT writefile('/tmp/x', 'y')", "function `writefile`"),
                (
                    "SELECT pg_read_file('/etc/passwd')",
                    "function `pg_read_file`",
                ),
                (
                    "SELECT * FROM sales WHERE id = pg_ls_dir('.')",
                    "function `pg_ls_dir`",
                ),
                ("SELECT lo_import('/etc/passwd')", "function `lo_import`"),
                ("SELECT dblink('host=x', 'select 1')", "function `dblink`"),
                (
                    "SELECT set_config('role', 'postgres', false)",
                    "function `set_config`",
                ),
                (
                    "SELECT current_setting('is_superuser')",
                    "function `current_setting`",
                ),
                ("SELECT pg_sleep(10)", "function `pg_sleep`"),
                ("SELECT txid_current()", "function `txid_current`"),
                ("SELECT nextval('customers_seq')", "function `nextval`"),
                ("SELECT setval('customers_seq', 1)", "function `setval`"),
                ("SELECT sqlite_version()", "function `sqlite_version`"),
                ("SELECT random()", "function `random`"),
                ("SELECT current_timestamp", "function `current_timestamp`"),
                ("SELECT FOO(1)", "function `foo`"),
                (
                    "UPDATE sales SET total = pg_sleep(1)",
                    "function `pg_sleep`",
                ),
                (
                    "SELECT * FROM sales ORDER BY pg_sleep(1)",
                    "function `pg_sleep`",
                ),
                (
                    "SELECT pg_catalog.lower(name) FROM sales",
                    "function `pg_catalog.lower` is qualified",
                ),
                ("SELECT main.lower(name) FROM sales", "qualified"),
                // An allowed function does not make a foreign argument allowed.
                (
                    "SELECT lower((SELECT name FROM customers LIMIT 1))",
                    NOT_OURS,
                ),
            ],
        );
    }

    #[test]
    fn refuses_table_valued_functions() {
        assert_refused(
            BOTH,
            &[
                (
                    "SELECT * FROM generate_series(1, 10)",
                    "table-valued function",
                ),
                ("SELECT * FROM json_each('[1]')", "table-valued function"),
                (
                    "SELECT * FROM pragma_table_info('customers')",
                    "table-valued function",
                ),
                ("SELECT * FROM sales, lower('x')", "table-valued function"),
            ],
        );
    }

    #[test]
    fn refuses_session_information_and_catalog_casts_on_postgres() {
        assert_refused(
            POSTGRES,
            &[
                ("SELECT current_role", "session information"),
                ("SELECT system_user", "session information"),
                ("SELECT session_user", ""),
                ("SELECT current_user", "function `current_user`"),
                ("SELECT user", ""),
                ("SELECT 'customers'::regclass", "data type"),
                ("SELECT 'pg_read_file'::regproc", "data type"),
                ("SELECT CAST(ROW(1) AS customers)", ""),
                ("SELECT data -> 'x' FROM sales", "operator"),
                ("SELECT data #>> '{a}' FROM sales", "operator"),
                ("SELECT 1 OPERATOR(pg_catalog.+) 1", ""),
                ("SELECT id INTO sales_copy FROM sales", "INTO"),
                ("SELECT ARRAY(SELECT id FROM customers)", ""),
            ],
        );
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

    #[test]
    fn the_function_allowlist_is_sorted_and_lower_case() {
        let mut sorted = ALLOWED_FUNCTIONS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, ALLOWED_FUNCTIONS);
        assert!(
            ALLOWED_FUNCTIONS
                .iter()
                .all(|f| *f == f.to_ascii_lowercase())
        );
    }

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

    fn migrate(dialect: Dialect, sql: &str) -> Result<MigrationEffects, Refusal> {
        check_migration(
            dialect,
            sql,
            "sales",
            &HashSet::new(),
            &HashSet::new(),
            &others,
        )
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

    /// `migrations/customers/0001_create_customers.sql` as written.
    const CUSTOMERS_MIGRATION: &str = "
        -- Customers: everyone who registered, and the admins the operator created.
        CREATE TABLE customers (
            id TEXT PRIMARY KEY,
            username TEXT NOT NULL,
            full_name TEXT NOT NULL,
            age BIGINT,
            address TEXT,
            gender TEXT NOT NULL,
            marital_status TEXT NOT NULL,
            wallet_cents BIGINT NOT NULL DEFAULT 0 CHECK (wallet_cents >= 0),
            role TEXT NOT NULL CHECK (role IN ('customer', 'admin')),
            password_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );

        -- Usernames are unique ignoring case; lookups use the same expression.
        CREATE UNIQUE INDEX customers_username_lower ON customers (lower(username));
    ";

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
