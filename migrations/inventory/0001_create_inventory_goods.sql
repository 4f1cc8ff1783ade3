-- Goods and their stock (`stock` is the API's `count`).
-- Portable SQL: runs unchanged on SQLite and PostgreSQL.
--
-- name_key and description_key are the component's own lower-casing of name
-- and description (Unicode-aware, done in Rust). SQL's lower() folds only
-- ASCII on SQLite but all of Unicode on PostgreSQL, so uniqueness ignoring
-- case and `?q=` search use these columns to behave the same on both.
CREATE TABLE inventory_goods (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    category TEXT NOT NULL CHECK (category IN ('food', 'clothes', 'accessories', 'electronics')),
    price_cents BIGINT NOT NULL CHECK (price_cents > 0),
    description TEXT NOT NULL,
    description_key TEXT NOT NULL,
    stock BIGINT NOT NULL CHECK (stock >= 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Names are unique ignoring case; lookups by name use the same key.
CREATE UNIQUE INDEX inventory_goods_name_key ON inventory_goods (name_key);

-- Filters of the listing.
CREATE INDEX inventory_goods_category ON inventory_goods (category, name_key);
CREATE INDEX inventory_goods_stock ON inventory_goods (stock);
