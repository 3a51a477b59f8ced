-- Folders: each account's files form a tree. A folder is a row naming its
-- parent (0: the account's top), so renaming or moving a folder of any size
-- is one UPDATE of one row on every storage backend: blobs stay named by
-- file id. Files name their folder the same way; today's files land at
-- the top. Within a folder a name is one file or one folder, never both
-- (checked by every write, under the account row's lock).
CREATE TABLE folders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    parent_id BIGINT NOT NULL DEFAULT 0,
    name VARCHAR(255) NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    created_at BIGINT NOT NULL,
    UNIQUE (account_id, parent_id, name)
);

-- SQLite cannot change a table's UNIQUE constraint in place: the files
-- table is rebuilt with its folder and the name unique per folder.
CREATE TABLE files_in_folders (
    id VARCHAR(32) NOT NULL PRIMARY KEY
        CHECK (length(id) = 32 AND id NOT GLOB '*[^0-9a-f]*'),
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    folder_id BIGINT NOT NULL DEFAULT 0,
    name VARCHAR(255) NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    size BIGINT NOT NULL CHECK (size >= 0),
    chunk_size BIGINT NOT NULL CHECK (chunk_size > 0),
    created_at BIGINT NOT NULL,
    modified_at BIGINT NULL,
    UNIQUE (account_id, folder_id, name)
);
INSERT INTO files_in_folders (id, account_id, folder_id, name, size, chunk_size, created_at, modified_at)
    SELECT id, account_id, 0, name, size, chunk_size, created_at, modified_at FROM files;
DROP TABLE files;
ALTER TABLE files_in_folders RENAME TO files;
