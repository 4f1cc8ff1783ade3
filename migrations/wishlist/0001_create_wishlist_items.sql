-- Wishlist entries: which goods each customer saved, and when.
-- Portable SQL: runs unchanged on SQLite and PostgreSQL.
--
-- Goods and customers belong to other components, so there are no foreign
-- keys: the good's current name, price and stock come from inventory-api on
-- every read. good_name is the name when the good was added, shown only once
-- the good itself is gone.
CREATE TABLE wishlist_items (
    customer_id TEXT NOT NULL,
    good_id TEXT NOT NULL,
    good_name TEXT NOT NULL,
    added_at TEXT NOT NULL,
    PRIMARY KEY (customer_id, good_id)
);
