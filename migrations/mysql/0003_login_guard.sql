-- Lockouts that never lock the owner out (see README "Security").
--
-- login_failures: one row per wrong code, for every address typed, with or
-- without an account, so a lock outlives a restart the same way for both.
-- The address is kept only as a keyed hash (hex HMAC-SHA256 under the
-- server key): the table lists no address anyone typed.
CREATE TABLE login_failures (
    address_tag CHAR(64) NOT NULL CHECK (CHAR_LENGTH(address_tag) = 64),
    at BIGINT NOT NULL,
    KEY login_failures_tag (address_tag, at),
    KEY login_failures_at (at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- known_sources: the ways in that logged in to an account before, a source
-- IP (IPv6 by /64) or an SSH key fingerprint, with the last success. A wrong
-- code lock does not apply to them.
CREATE TABLE known_sources (
    account_id BIGINT NOT NULL,
    kind VARCHAR(8) NOT NULL CHECK (kind IN ('ip', 'key')),
    value VARCHAR(128) NOT NULL CHECK (CHAR_LENGTH(value) >= 1),
    last_success BIGINT NOT NULL,
    PRIMARY KEY (account_id, kind, value),
    CONSTRAINT known_sources_account FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The per-account failure count and lock are replaced by the two tables.
ALTER TABLE accounts DROP COLUMN failed_logins, DROP COLUMN locked_until;
