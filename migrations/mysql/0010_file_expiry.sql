-- A file's expiry (unix seconds): the periodic clean-up deletes it, with
-- its shares and envelopes, once that time has passed. NULL: kept until its
-- owner deletes it.
ALTER TABLE files ADD COLUMN expires_at BIGINT NULL;
CREATE INDEX files_expires ON files (expires_at);
