//! `kdss bench s3` (in progress).
