-- A large raw message lives in the data directory (raw/<2 hex>/<sha256>), not in
-- its row; a message over the size limit keeps only its beginning.
ALTER TABLE raw_messages ADD COLUMN in_file INTEGER NOT NULL DEFAULT 0;
ALTER TABLE raw_messages ADD COLUMN truncated INTEGER NOT NULL DEFAULT 0;
