-- The modification time a client set (sftp setstat, `put -p`, rclone): shown
-- by stat and listings instead of the upload time, so sync tools see the
-- times they wrote and do not upload unchanged files again. NULL: never set.
ALTER TABLE files ADD COLUMN modified_at BIGINT NULL;
