//! Tests of the DML walker, through
//! [`check_statement`](super::super::check_statement) as a component's
//! statements reach it.

use super::super::StatementKind;
use super::super::test_support::{
    BOTH, NOT_OURS, POSTGRES, SQLITE, assert_accepted, assert_refused,
};
use super::ALLOWED_FUNCTIONS;

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

/// A parameter numbered 0 crashed sqlx-sqlite's worker thread (it looks
/// arguments up by the number minus one): refused in every spelling.
#[test]
fn refuses_a_parameter_numbered_zero() {
    assert_refused(
        SQLITE,
        &[
            ("SELECT $0 AS z", "parameter `$0` does not exist"),
            ("SELECT ?0 AS z", "does not exist"),
            ("SELECT id FROM sales WHERE id = $00", "does not exist"),
            (
                "UPDATE sales SET total = $000 WHERE id = $1",
                "does not exist",
            ),
            (
                "SELECT id FROM sales WHERE id IN (SELECT id FROM sales WHERE total > $0)",
                "does not exist",
            ),
        ],
    );
    assert_accepted(
        SQLITE,
        &[
            ("SELECT $1 AS a, $10 AS b", StatementKind::Read),
            ("SELECT ? AS a, ?2 AS b", StatementKind::Read),
        ],
    );
}
