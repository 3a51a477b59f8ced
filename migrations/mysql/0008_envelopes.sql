-- Recovery keys: trusted SSH keys an account named to have every new file
-- key sealed to (key recovery). Removing the trusted key ends it.
ALTER TABLE ssh_keys ADD COLUMN recovery BIGINT NOT NULL DEFAULT 0;

-- Envelopes: a file key sealed with age to SSH public keys (FORMAT.md),
-- which the server cannot open. One per file and purpose; an envelope
-- goes with its file (deleted or replaced).
CREATE TABLE envelopes (
    file_id VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    purpose VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    body BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (file_id, purpose),
    CONSTRAINT envelopes_file FOREIGN KEY (file_id) REFERENCES files (id) ON DELETE CASCADE
) ENGINE = InnoDB;
