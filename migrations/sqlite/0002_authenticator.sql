-- An authenticator app counts only once its owner confirmed it with one of its
-- codes: until then the account's TOTP secret is only the seed of a future
-- enrolment and no login prompt asks for an app code.
ALTER TABLE accounts ADD COLUMN totp_confirmed_at BIGINT NULL;
