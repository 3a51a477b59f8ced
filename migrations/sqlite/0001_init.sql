-- sfs schema, SQLite flavour. migrations/mysql/0001_init.sql is the same
-- schema for MySQL/MariaDB: keep the two identical in meaning.
--
-- Integers are 64-bit, timestamps are unix seconds. SQLite does not enforce
-- VARCHAR lengths, so CHECK constraints hold text to the same limits MySQL's
-- strict mode enforces, and both engines accept and refuse the same values.

CREATE TABLE accounts (
    -- AUTOINCREMENT: ids are never reused, so old audit rows never point at a
    -- newer account.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email VARCHAR(254) NOT NULL UNIQUE CHECK (length(email) BETWEEN 1 AND 254),
    -- The TOTP secret sealed with the server key; never the secret in clear.
    totp_sealed BLOB NOT NULL,
    -- Last accepted TOTP step: a code is accepted once only.
    totp_last_step BIGINT NULL,
    state VARCHAR(16) NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'disabled')),
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE ssh_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    fingerprint VARCHAR(128) NOT NULL CHECK (length(fingerprint) BETWEEN 1 AND 128),
    algorithm VARCHAR(64) NOT NULL CHECK (length(algorithm) <= 64),
    public_key TEXT NOT NULL,
    comment TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    last_used_at BIGINT NULL,
    UNIQUE (account_id, fingerprint)
);

CREATE TABLE files (
    -- The vault file id names the blob on disk: only 32 lowercase hex digits,
    -- so no stored id can ever form a path outside the uploads folder.
    id VARCHAR(32) NOT NULL PRIMARY KEY
        CHECK (length(id) = 32 AND id NOT GLOB '*[^0-9a-f]*'),
    -- No ON DELETE CASCADE: file rows go through delete_account, which hands
    -- them back so their blobs are removed too.
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    -- Compared byte for byte (SQLite's BINARY collation), as on MySQL.
    name VARCHAR(255) NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    size BIGINT NOT NULL CHECK (size >= 0),
    chunk_size BIGINT NOT NULL CHECK (chunk_size > 0),
    created_at BIGINT NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    -- No foreign key: the log outlives the accounts it mentions.
    account_id BIGINT NULL,
    email VARCHAR(254) NULL CHECK (length(email) <= 254),
    action VARCHAR(32) NOT NULL CHECK (length(action) BETWEEN 1 AND 32),
    detail TEXT NOT NULL,
    remote_addr VARCHAR(128) NULL CHECK (length(remote_addr) <= 128)
);
