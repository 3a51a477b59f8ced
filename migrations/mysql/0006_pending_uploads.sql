-- Uploads in progress that leave something in a shared object store if
-- their node dies (S3 multipart uploads): any node's collector aborts those
-- untouched for longer than the grace period. The file id names the blob.
CREATE TABLE pending_uploads (
    file_id VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY
        CHECK (CHAR_LENGTH(file_id) = 32 AND file_id NOT REGEXP '[^0-9a-f]'),
    account_id BIGINT NOT NULL,
    node VARCHAR(255) NOT NULL,
    upload_id VARCHAR(1024) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    started_at BIGINT NOT NULL,
    touched_at BIGINT NOT NULL,
    INDEX pending_uploads_touched (touched_at)
);
