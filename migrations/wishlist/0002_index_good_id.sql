-- The wishlist forgets a deleted good's rows (on `good.deleted`): find them
-- by good without reading every customer's list.
CREATE INDEX wishlist_items_good_id ON wishlist_items (good_id);
