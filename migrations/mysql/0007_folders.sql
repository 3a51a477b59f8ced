-- Folders: each account's files form a tree. A folder is a row naming its
-- parent (0: the account's top; not NULL, since a UNIQUE key lets NULLs
-- repeat), so renaming or moving a folder of any size is one UPDATE of one
-- row on every storage backend: blobs stay named by file id. Files name
-- their folder the same way; today's files land at the top. Within a
-- folder a name is one file or one folder, never both (checked by every
-- write, under the account row's lock). Names are bytes, as files' are.
CREATE TABLE folders (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    account_id BIGINT NOT NULL,
    parent_id BIGINT NOT NULL DEFAULT 0,
    name VARBINARY(1020) NOT NULL
        CHECK (CHAR_LENGTH(CONVERT(name USING utf8mb4)) BETWEEN 1 AND 255),
    created_at BIGINT NOT NULL,
    UNIQUE KEY folders_account_parent_name (account_id, parent_id, name),
    CONSTRAINT folders_account FOREIGN KEY (account_id) REFERENCES accounts (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

ALTER TABLE files
    ADD COLUMN folder_id BIGINT NOT NULL DEFAULT 0 AFTER account_id,
    ADD UNIQUE KEY files_account_folder_name (account_id, folder_id, name),
    DROP INDEX files_account_name;
