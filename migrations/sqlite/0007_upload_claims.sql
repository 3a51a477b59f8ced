-- Names being written. An upload or an in-place change holds its file's
-- name here from its start to its commit or end, so a second writer of the
-- same name is refused at its start instead of both being told "stored"
-- (and one of two keys opening nothing). Its writer renews the claim while
-- it lives; one not renewed by `expires_at` (its node died) is free to take.
CREATE TABLE upload_claims (
    account_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    token VARCHAR(32) NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, name)
);
