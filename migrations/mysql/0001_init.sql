-- sfs schema, MySQL/MariaDB flavour. migrations/sqlite/0001_init.sql is the
-- same schema for SQLite: keep the two identical in meaning.
--
-- Integers are signed BIGINT (the sqlx Any driver decodes no TINYINT or
-- unsigned types on every engine), timestamps are unix seconds. Text compares
-- byte for byte (utf8mb4_bin) as it does on SQLite; emails are trimmed and
-- fingerprints hold no spaces, so that collation's trailing-space padding
-- cannot merge two of them (file names see below). Indexed VARCHARs stay well
-- under InnoDB's 3072-byte key limit at 4 bytes per utf8mb4 character.

CREATE TABLE accounts (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email VARCHAR(254) NOT NULL CHECK (CHAR_LENGTH(email) >= 1),
    -- The TOTP secret sealed with the server key; never the secret in clear.
    totp_sealed BLOB NOT NULL,
    -- Last accepted TOTP step: a code is accepted once only.
    totp_last_step BIGINT NULL,
    state VARCHAR(16) NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'disabled')),
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE KEY accounts_email (email)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE ssh_keys (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    account_id BIGINT NOT NULL,
    fingerprint VARCHAR(128) NOT NULL CHECK (CHAR_LENGTH(fingerprint) >= 1),
    algorithm VARCHAR(64) NOT NULL,
    public_key TEXT NOT NULL,
    comment TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    last_used_at BIGINT NULL,
    UNIQUE KEY ssh_keys_account_fingerprint (account_id, fingerprint),
    CONSTRAINT ssh_keys_account FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE files (
    -- The vault file id names the blob on disk: only 32 lowercase hex digits,
    -- so no stored id can ever form a path outside the uploads folder.
    id VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY
        CHECK (CHAR_LENGTH(id) = 32 AND id NOT REGEXP '[^0-9a-f]'),
    -- No ON DELETE CASCADE: file rows go through delete_account, which hands
    -- them back so their blobs are removed too.
    account_id BIGINT NOT NULL,
    -- UTF-8 bytes, not VARCHAR: every MySQL/MariaDB binary collation available
    -- on both pads with spaces, so "a" and "a " would be one name there but two
    -- on SQLite. VARBINARY compares every byte; 1020 bytes hold 255 characters
    -- of up to 4 bytes, and the CHECK limits the characters as SQLite does.
    name VARBINARY(1020) NOT NULL
        CHECK (CHAR_LENGTH(CONVERT(name USING utf8mb4)) BETWEEN 1 AND 255),
    size BIGINT NOT NULL CHECK (size >= 0),
    chunk_size BIGINT NOT NULL CHECK (chunk_size > 0),
    created_at BIGINT NOT NULL,
    UNIQUE KEY files_account_name (account_id, name),
    CONSTRAINT files_account FOREIGN KEY (account_id) REFERENCES accounts (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE audit_log (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at BIGINT NOT NULL,
    -- No foreign key: the log outlives the accounts it mentions.
    account_id BIGINT NULL,
    email VARCHAR(254) NULL,
    action VARCHAR(32) NOT NULL CHECK (CHAR_LENGTH(action) >= 1),
    detail TEXT NOT NULL,
    remote_addr VARCHAR(128) NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
