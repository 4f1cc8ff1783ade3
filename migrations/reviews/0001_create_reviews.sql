-- Reviews of goods, and the moderation trail behind their status.
-- Portable SQL: runs unchanged on SQLite and PostgreSQL.
--
-- good_id and customer_id name things other components own, so there are no
-- foreign keys: the inventory and customers tables are not ours to reference.
-- good_name and username are copied at submit time, so a review reads the
-- same after the good is renamed or deleted.
CREATE TABLE reviews (
    id TEXT PRIMARY KEY,
    good_id TEXT NOT NULL,
    good_name TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    username TEXT NOT NULL,
    rating BIGINT NOT NULL CHECK (rating >= 1 AND rating <= 5),
    comment TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'flagged')),
    verified_purchase BOOLEAN NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- One review per customer per good; a second one is a 409 (already-reviewed).
CREATE UNIQUE INDEX reviews_good_customer ON reviews (good_id, customer_id);

-- Listing a good's reviews by status, newest first, and its average rating.
CREATE INDEX reviews_good_status ON reviews (good_id, status, created_at);

-- Listing a customer's reviews by username, ignoring case like the customers do.
CREATE INDEX reviews_username_lower ON reviews (lower(username));

-- Approved ratings for other services, and the admins' moderation queue.
CREATE INDEX reviews_status_updated ON reviews (status, updated_at);

-- Every flag and moderation decision: who, when, the resulting status and
-- the reason or note they gave. Never shown in a review; kept for admins.
CREATE TABLE reviews_moderation (
    id TEXT PRIMARY KEY,
    review_id TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('flag', 'moderate')),
    actor_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'flagged')),
    note TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE INDEX reviews_moderation_review ON reviews_moderation (review_id, created_at);
