//! The fail-closed walk over one SELECT, INSERT, UPDATE or DELETE: every
//! table it reaches must be the component's own, every function must be on
//! the allowlist, and any AST node not known to be harmless is refused.
//! Migrations reuse the walk for their seed data and for the expressions in
//! DEFAULT, CHECK, generated columns and indexes, so there is one notion of
//! a harmless expression.

use std::collections::HashSet;

use sqlparser::ast::{
    Assignment, AssignmentTarget, BinaryOperator, ConflictTarget, Cte, DataType, Delete, DoUpdate,
    Expr, Fetch, FromTable, Function, FunctionArg, FunctionArgExpr, FunctionArgumentClause,
    FunctionArguments, GroupByExpr, Insert, Join, JoinConstraint, JoinOperator, LimitClause,
    NamedWindowDefinition, NamedWindowExpr, ObjectName, Offset, OnConflict, OnConflictAction,
    OnInsert, OrderBy, OrderByExpr, OrderByKind, Query, Select, SelectFlavor, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, Statement, TableFactor, TableObject, TableWithJoins,
    UnaryOperator, UpdateTableFromKind, Values, WildcardAdditionalOptions, WindowFrame,
    WindowFrameBound, WindowSpec, WindowType, With,
};

use super::names::{canonical, is_reserved, unqualified};
use super::parse::{Input, admit, parse};
use super::{Checked, Dialect, MAX_NESTING, Refusal, StatementKind, excerpt, unsupported};

/// Refuses a parameter numbered 0 (`$0`, `?0`, `$00`): no argument has
/// that number, and sqlx's SQLite driver, which looks an argument up by
/// the number minus one, panics on its connection's worker thread (the
/// statement "succeeds" with no rows and the connection is lost).
fn parameter(value: &sqlparser::ast::Value) -> Checked {
    let sqlparser::ast::Value::Placeholder(name) = value else {
        return Ok(());
    };
    let digits = name
        .get(1..)
        .unwrap_or_default()
        .bytes()
        .take_while(u8::is_ascii_digit)
        .collect::<Vec<u8>>();
    if !digits.is_empty() && digits.iter().all(|digit| *digit == b'0') {
        return Err(Refusal::new(format!(
            "parameter `{name}` does not exist: parameters are numbered from $1"
        )));
    }
    Ok(())
}

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

/// [`check_statement`](super::check_statement) on the calling thread, which
/// must have a stack as large as the checker's.
pub(super) fn check_statement_here(
    dialect: Dialect,
    sql: &str,
    owned: &HashSet<String>,
) -> Result<StatementKind, Refusal> {
    admit(Input::Statement, sql)?;
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
pub(super) struct Walker<'a> {
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
    pub(super) fn new(dialect: Dialect, owned: &'a dyn Fn(&str) -> bool) -> Self {
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

    pub(super) fn dml_statement(&mut self, statement: &Statement) -> Checked {
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

    pub(super) fn expr(&mut self, expr: &Expr) -> Checked {
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
            Expr::Value(value) => parameter(&value.value),
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
pub(super) fn data_type_allowed(data_type: &DataType) -> Checked {
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

#[cfg(test)]
mod tests;
