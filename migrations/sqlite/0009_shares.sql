-- Shares: a file's key sealed with age to the SSH keys another account
-- trusts (FORMAT.md, Envelopes), which the server cannot open. One per
-- file and recipient (sharing again replaces it). A share goes with its
-- file (deleted or replaced) and with either account; an expired or used-up
-- one is no longer shown and is removed by the periodic clean-up. A later
-- migration that rebuilds `files` must set shares aside first: dropping
-- `files` deletes them.
CREATE TABLE shares (
    file_id VARCHAR(32) NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    recipient_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    envelope BLOB NOT NULL,
    -- Unix seconds; NULL: until revoked.
    expires_at BIGINT NULL,
    -- Opens for reading left; NULL: no limit.
    downloads_left BIGINT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (file_id, recipient_id)
);
CREATE INDEX shares_recipient ON shares (recipient_id);
