-- Sales: one row per purchase, and the Idempotency-Key of each purchase
-- that came with one. Portable SQL: runs unchanged on SQLite and PostgreSQL.
--
-- A sale copies what it needs to stand on its own (the buyer's username,
-- the good's name and unit price), so it outlives changes to the good, the
-- good's deletion and the buyer's deletion. There are no foreign keys: the
-- goods and customers tables belong to other components.
CREATE TABLE sales (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    username TEXT NOT NULL,
    good_id TEXT NOT NULL,
    good_name TEXT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    unit_price_cents BIGINT NOT NULL CHECK (unit_price_cents > 0),
    total_cents BIGINT NOT NULL CHECK (total_cents = unit_price_cents * quantity),
    created_at TEXT NOT NULL
);

-- A customer's history, newest first (history is keyed on the account, not
-- on the username, which a new account may reuse after a deletion).
CREATE INDEX sales_customer_created ON sales (customer_id, created_at, id);
-- "Has this customer bought this good?"
CREATE INDEX sales_good_customer ON sales (good_id, customer_id);
-- All purchases, newest first.
CREATE INDEX sales_created ON sales (created_at, id);

-- One row per (caller, Idempotency-Key) whose purchase succeeded: the row
-- is written in the purchase's own transaction, so a failed purchase leaves
-- no key behind. `fingerprint` identifies the purchase (buyer, good,
-- quantity) so that a key reused for another purchase is told apart;
-- `response` is the first answer's body, replayed byte for byte.
CREATE TABLE sales_idempotency_keys (
    customer_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    sale_id TEXT,
    response TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (customer_id, idempotency_key)
);
