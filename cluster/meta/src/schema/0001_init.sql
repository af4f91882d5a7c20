-- KDSS namespace state, version 1. Every table lives in this one database so the master
-- can snapshot the whole state machine with VACUUM INTO. Integers that are u64 on the wire
-- are stored as their i64 bit pattern.

CREATE TABLE users (
    access_key TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    secret_key TEXT NOT NULL,
    role       INTEGER NOT NULL,
    created_ns INTEGER NOT NULL
);

CREATE TABLE buckets (
    name              TEXT PRIMARY KEY,
    owner             TEXT NOT NULL,
    k                 INTEGER NOT NULL,
    m                 INTEGER NOT NULL,
    created_ns        INTEGER NOT NULL,
    root_ino          INTEGER NOT NULL,
    default_uid       INTEGER NOT NULL,
    default_gid       INTEGER NOT NULL,
    default_file_mode INTEGER NOT NULL,
    default_dir_mode  INTEGER NOT NULL
);

CREATE TABLE grants (
    bucket     TEXT NOT NULL,
    access_key TEXT NOT NULL,
    PRIMARY KEY (bucket, access_key)
) WITHOUT ROWID;

-- kind: FileKind numbers. implicit = 1 for directories a PutObject created for a key's
-- parents (they vanish with their last child). etag NULL = derived from (ino, version).
CREATE TABLE inodes (
    ino         INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket      TEXT NOT NULL,
    kind        INTEGER NOT NULL,
    mode        INTEGER NOT NULL,
    uid         INTEGER NOT NULL,
    gid         INTEGER NOT NULL,
    size        INTEGER NOT NULL DEFAULT 0,
    atime_ns    INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    ctime_ns    INTEGER NOT NULL,
    crtime_ns   INTEGER NOT NULL,
    nlink       INTEGER NOT NULL,
    rdev        INTEGER NOT NULL DEFAULT 0,
    version     INTEGER NOT NULL DEFAULT 1,
    symlink     BLOB,
    inline_data BLOB,
    implicit    INTEGER NOT NULL DEFAULT 0,
    etag        TEXT,
    owner       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX inodes_bucket ON inodes (bucket);

-- sort_name = name for non-directories, name || '/' for directories (as a BLOB, so it
-- compares bytewise): walking children in sort_name order yields S3 key order.
CREATE TABLE dentries (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    parent    INTEGER NOT NULL,
    name      TEXT NOT NULL,
    sort_name BLOB NOT NULL,
    ino       INTEGER NOT NULL
);
CREATE UNIQUE INDEX dentries_name ON dentries (parent, name);
CREATE INDEX dentries_sort ON dentries (parent, sort_name);
CREATE INDEX dentries_cookie ON dentries (parent, id);
CREATE INDEX dentries_ino ON dentries (ino);

CREATE TABLE xattrs (
    ino   INTEGER NOT NULL,
    name  TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (ino, name)
) WITHOUT ROWID;

-- Object metadata. kind 0 = standard header (content-type, ...), 1 = x-amz-meta-*,
-- 2 = checksum (algorithm -> base64).
CREATE TABLE object_meta (
    ino   INTEGER NOT NULL,
    kind  INTEGER NOT NULL,
    name  TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (ino, kind, name)
) WITHOUT ROWID;

CREATE TABLE extents (
    ino           INTEGER NOT NULL,
    file_offset   INTEGER NOT NULL,
    len           INTEGER NOT NULL,
    stripe_id     INTEGER NOT NULL,
    stripe_offset INTEGER NOT NULL,
    PRIMARY KEY (ino, file_offset)
) WITHOUT ROWID;

-- refcount = number of extent rows (file or part) naming the stripe.
CREATE TABLE stripes (
    stripe_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket     TEXT NOT NULL,
    k          INTEGER NOT NULL,
    m          INTEGER NOT NULL,
    shard_len  INTEGER NOT NULL,
    data_len   INTEGER NOT NULL,
    refcount   INTEGER NOT NULL DEFAULT 0,
    committed  INTEGER NOT NULL DEFAULT 0,
    created_ns INTEGER NOT NULL
);

CREATE TABLE stripe_shards (
    stripe_id   INTEGER NOT NULL,
    shard_index INTEGER NOT NULL,
    node_id     TEXT NOT NULL,
    disk_id     INTEGER NOT NULL,
    PRIMARY KEY (stripe_id, shard_index)
) WITHOUT ROWID;
CREATE INDEX stripe_shards_disk ON stripe_shards (disk_id, stripe_id);

-- Stripes whose last reference went away: the GC deletes their shards.
CREATE TABLE gc_stripes (
    stripe_id   INTEGER PRIMARY KEY,
    bucket      TEXT NOT NULL,
    released_ns INTEGER NOT NULL
);

CREATE TABLE sessions (
    session TEXT PRIMARY KEY,
    ttl_ms  INTEGER NOT NULL,
    last_ns INTEGER NOT NULL
);

CREATE TABLE opens (
    handle    INTEGER PRIMARY KEY AUTOINCREMENT,
    ino       INTEGER NOT NULL,
    session   TEXT NOT NULL,
    write     INTEGER NOT NULL,
    opened_ns INTEGER NOT NULL
);
CREATE INDEX opens_ino ON opens (ino);
CREATE INDEX opens_session ON opens (session);

CREATE TABLE uploads (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    upload_id    TEXT NOT NULL UNIQUE,
    bucket       TEXT NOT NULL,
    key          TEXT NOT NULL,
    owner        TEXT NOT NULL,
    initiated_ns INTEGER NOT NULL
);
CREATE INDEX uploads_key ON uploads (bucket, key, seq);

-- Metadata given at CreateMultipart, in the object_meta layout.
CREATE TABLE upload_meta (
    seq   INTEGER NOT NULL,
    kind  INTEGER NOT NULL,
    name  TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (seq, kind, name)
) WITHOUT ROWID;

CREATE TABLE parts (
    seq         INTEGER NOT NULL,
    part_number INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    etag        TEXT NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    inline_data BLOB,
    PRIMARY KEY (seq, part_number)
) WITHOUT ROWID;

CREATE TABLE part_extents (
    seq           INTEGER NOT NULL,
    part_number   INTEGER NOT NULL,
    file_offset   INTEGER NOT NULL,
    len           INTEGER NOT NULL,
    stripe_id     INTEGER NOT NULL,
    stripe_offset INTEGER NOT NULL,
    PRIMARY KEY (seq, part_number, file_offset)
) WITHOUT ROWID;
