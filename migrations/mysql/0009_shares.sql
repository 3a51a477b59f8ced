-- Shares: a file's key sealed with age to the SSH keys another account
-- trusts (FORMAT.md, Envelopes), which the server cannot open. One per
-- file and recipient (sharing again replaces it). A share goes with its
-- file (deleted or replaced) and with either account; an expired or used-up
-- one is no longer shown and is removed by the periodic clean-up.
CREATE TABLE shares (
    file_id VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    recipient_id BIGINT NOT NULL,
    envelope BLOB NOT NULL,
    -- Unix seconds; NULL: until revoked.
    expires_at BIGINT NULL,
    -- Opens for reading left; NULL: no limit.
    downloads_left BIGINT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (file_id, recipient_id),
    KEY shares_recipient (recipient_id),
    CONSTRAINT shares_file FOREIGN KEY (file_id) REFERENCES files (id) ON DELETE CASCADE,
    CONSTRAINT shares_recipient FOREIGN KEY (recipient_id) REFERENCES accounts (id) ON DELETE CASCADE
) ENGINE = InnoDB;
