-- Uploads in progress that leave something in a shared object store if
-- their node dies (S3 multipart uploads): any node's collector aborts those
-- untouched for longer than the grace period. The file id names the blob.
CREATE TABLE pending_uploads (
    file_id VARCHAR(32) NOT NULL PRIMARY KEY
        CHECK (length(file_id) = 32 AND file_id NOT GLOB '*[^0-9a-f]*'),
    account_id BIGINT NOT NULL,
    node VARCHAR(255) NOT NULL,
    upload_id VARCHAR(1024) NOT NULL,
    started_at BIGINT NOT NULL,
    touched_at BIGINT NOT NULL
);
CREATE INDEX pending_uploads_touched ON pending_uploads (touched_at);
