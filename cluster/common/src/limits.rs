//! Limits that the master enforces and the clients size themselves by, in one place so
//! the two sides cannot disagree.

/// Largest file content the master keeps inline in metadata. Inline bytes travel in the
/// Raft log and live in every master's SQLite, so this stays small; clients choose their
/// inline threshold at or below it.
pub const MAX_INLINE_BYTES: usize = 64 << 10;

/// Error code of a CommitWrite whose inline bytes the master cannot keep inline (the file
/// has extents, or would outgrow [`MAX_INLINE_BYTES`]); the writer falls back to stripes.
pub const INLINE_NOT_POSSIBLE: &str = "InlineNotPossible";
