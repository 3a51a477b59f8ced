-- Lockouts that never lock the owner out (see README "Security").
--
-- login_failures: one row per wrong code, for every address typed, with or
-- without an account, so a lock outlives a restart the same way for both.
-- The address is kept only as a keyed hash (hex HMAC-SHA256 under the
-- server key): the table lists no address anyone typed.
CREATE TABLE login_failures (
    address_tag CHAR(64) NOT NULL CHECK (length(address_tag) = 64),
    at BIGINT NOT NULL
);
CREATE INDEX login_failures_tag ON login_failures (address_tag, at);
CREATE INDEX login_failures_at ON login_failures (at);

-- known_sources: the ways in that logged in to an account before, a source
-- IP (IPv6 by /64) or an SSH key fingerprint, with the last success. A wrong
-- code lock does not apply to them.
CREATE TABLE known_sources (
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind VARCHAR(8) NOT NULL CHECK (kind IN ('ip', 'key')),
    value VARCHAR(128) NOT NULL CHECK (length(value) BETWEEN 1 AND 128),
    last_success BIGINT NOT NULL,
    PRIMARY KEY (account_id, kind, value)
);

-- The per-account failure count and lock are replaced by the two tables.
ALTER TABLE accounts DROP COLUMN failed_logins;
ALTER TABLE accounts DROP COLUMN locked_until;
