-- A customer's token epoch: bumped whenever their role or password changes
-- (and when the operator promotes them). Tokens carry the epoch they were
-- issued at, and the host refuses one from an earlier epoch, so privilege
-- never outlives its grant.
ALTER TABLE customers ADD COLUMN token_epoch BIGINT NOT NULL DEFAULT 0;
