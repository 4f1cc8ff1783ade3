-- Customers: everyone who registered, and the admins the operator created.
-- Portable SQL: runs unchanged on SQLite and PostgreSQL.
--
-- age and address are NULL only for an admin created by the operator
-- (accounts.ensure-admin), who gives only a username and a password.
-- Registration and PATCH always set them.
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
