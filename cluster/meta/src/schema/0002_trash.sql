-- Version 2: the recycle bin. A deleted regular file keeps its inode (nlink 0) and its
-- extents, hence every stripe reference, while a `trash` row names it; restoring links
-- the inode back at `path`, purging frees it (its stripes then go to `gc_stripes`).

CREATE TABLE trash (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket     TEXT NOT NULL,
    path       TEXT NOT NULL,
    ino        INTEGER NOT NULL UNIQUE,
    size       INTEGER NOT NULL,
    deleted_ns INTEGER NOT NULL
);
CREATE INDEX trash_deleted ON trash (deleted_ns, id);
CREATE INDEX trash_bucket ON trash (bucket, id);
