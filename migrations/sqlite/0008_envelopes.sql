-- Recovery keys: trusted SSH keys an account named to have every new file
-- key sealed to (key recovery). Removing the trusted key ends it.
ALTER TABLE ssh_keys ADD COLUMN recovery INTEGER NOT NULL DEFAULT 0;

-- Envelopes: a file key sealed with age to SSH public keys (FORMAT.md),
-- which the server cannot open. One per file and purpose; an envelope
-- goes with its file (deleted or replaced). A later migration that rebuilds
-- `files` (SQLite's way to change a constraint) must set envelopes aside
-- first: dropping `files` deletes them.
CREATE TABLE envelopes (
    file_id VARCHAR(32) NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    purpose VARCHAR(16) NOT NULL,
    body BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (file_id, purpose)
);
