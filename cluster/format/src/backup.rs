//! The metadata backup file (`kdss-cli meta backup`, the masters' scheduled backups,
//! `kdss master restore`): a header that says whose namespace this is and how far it goes,
//! then the namespace database itself (a SQLite file made by `VACUUM INTO`, the same copy a
//! Raft snapshot is). Restore trusts nothing it has not checked: the header has its own
//! crc32c, the body's length and crc32c are in the header, so a cut-off download, a flipped
//! bit or a file of another cluster is refused before anything is written.
//!
//! Byte layout (little-endian):
//!
//! ```text
//!    0..8     magic b"KDSSMETA"
//!    8..12    format version (1)
//!   12..16    header length H in bytes (= 62 + n): the body starts at H
//!   16..24    Raft index of the last entry the namespace contains
//!   24..32    Raft term of that entry
//!   32..40    node id of the leader that wrote that entry
//!   40..48    creation time, ms since the Unix epoch
//!   48..56    body length in bytes
//!   56..60    crc32c of the body
//!   60..62    n = cluster id length (1..=255)
//!   62..62+n  cluster id (UTF-8), as in the masters' `[cluster] id`
//!   H-4..H    crc32c of bytes 0..H-4
//!   H..       body: the SQLite database
//! ```

use crate::{FormatError, get_u32, get_u64};

const MAGIC: &[u8; 8] = b"KDSSMETA";
/// Backup format version this build writes and reads.
pub const BACKUP_VERSION: u32 = 1;
/// Longest cluster id a header holds.
pub const MAX_CLUSTER_ID: usize = 255;
/// Bytes before the cluster id.
const FIXED: usize = 62;
/// The longest possible header: read this many bytes (or the whole file, if shorter) and
/// hand them to [`BackupHeader::decode`].
pub const MAX_HEADER: usize = FIXED + MAX_CLUSTER_ID + 4;

/// What a backup holds, as its header says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupHeader {
    /// The `[cluster] id` of the masters that wrote it: restore refuses another cluster's.
    pub cluster_id: String,
    /// Raft index of the last applied entry in the body.
    pub applied_index: u64,
    /// Raft term of that entry.
    pub applied_term: u64,
    /// Node id of the leader that wrote that entry.
    pub applied_leader: u64,
    /// When the copy was taken, ms since the Unix epoch.
    pub created_ms: u64,
    /// Length of the body.
    pub body_len: u64,
    /// crc32c of the body.
    pub body_crc: u32,
}

impl BackupHeader {
    /// Length of this header once encoded (where the body starts).
    pub fn len(&self) -> usize {
        FIXED + self.cluster_id.len() + 4
    }

    /// Never empty: kept for the `len` convention.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The header bytes. Fails on a cluster id that does not fit.
    pub fn encode(&self) -> Result<Vec<u8>, FormatError> {
        let id = self.cluster_id.as_bytes();
        if id.is_empty() || id.len() > MAX_CLUSTER_ID {
            return Err(FormatError::Invalid {
                what: "backup cluster id",
                detail: format!("length {} (must be 1..={MAX_CLUSTER_ID})", id.len()),
            });
        }
        let h = self.len();
        let mut b = Vec::with_capacity(h);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&BACKUP_VERSION.to_le_bytes());
        b.extend_from_slice(&(h as u32).to_le_bytes());
        b.extend_from_slice(&self.applied_index.to_le_bytes());
        b.extend_from_slice(&self.applied_term.to_le_bytes());
        b.extend_from_slice(&self.applied_leader.to_le_bytes());
        b.extend_from_slice(&self.created_ms.to_le_bytes());
        b.extend_from_slice(&self.body_len.to_le_bytes());
        b.extend_from_slice(&self.body_crc.to_le_bytes());
        b.extend_from_slice(&(id.len() as u16).to_le_bytes());
        b.extend_from_slice(id);
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        debug_assert_eq!(b.len(), h);
        Ok(b)
    }

    /// Decodes the header at the start of `b` (the first [`MAX_HEADER`] bytes of the file,
    /// or all of a shorter one). Every failure means "not a usable backup".
    pub fn decode(b: &[u8]) -> Result<BackupHeader, FormatError> {
        let what = "backup header";
        if b.len() < 8 || &b[..8] != MAGIC {
            return Err(FormatError::BadMagic { what });
        }
        if b.len() < FIXED + 1 + 4 {
            return Err(FormatError::Truncated {
                what,
                need: (FIXED + 5) as u64,
                have: b.len() as u64,
            });
        }
        let version = get_u32(b, 8);
        if version != BACKUP_VERSION {
            return Err(FormatError::Version(version));
        }
        let h = get_u32(b, 12) as usize;
        if !(FIXED + 1 + 4..=MAX_HEADER).contains(&h) {
            return Err(FormatError::Invalid {
                what,
                detail: format!("header length {h}"),
            });
        }
        if b.len() < h {
            return Err(FormatError::Truncated {
                what,
                need: h as u64,
                have: b.len() as u64,
            });
        }
        if crc32c::crc32c(&b[..h - 4]) != get_u32(b, h - 4) {
            return Err(FormatError::BadChecksum { what });
        }
        let n = u16::from_le_bytes([b[60], b[61]]) as usize;
        if FIXED + n + 4 != h {
            return Err(FormatError::Invalid {
                what,
                detail: format!("cluster id length {n} does not fit header length {h}"),
            });
        }
        let cluster_id =
            String::from_utf8(b[FIXED..FIXED + n].to_vec()).map_err(|_| FormatError::Invalid {
                what,
                detail: "cluster id is not UTF-8".to_string(),
            })?;
        Ok(BackupHeader {
            cluster_id,
            applied_index: get_u64(b, 16),
            applied_term: get_u64(b, 24),
            applied_leader: get_u64(b, 32),
            created_ms: get_u64(b, 40),
            body_len: get_u64(b, 48),
            body_crc: get_u32(b, 56),
        })
    }

    /// Checks a body read to its end: `len` bytes whose crc32c is `crc`.
    pub fn check_body(&self, len: u64, crc: u32) -> Result<(), FormatError> {
        if len < self.body_len {
            return Err(FormatError::Truncated {
                what: "backup body",
                need: self.body_len,
                have: len,
            });
        }
        if len > self.body_len {
            return Err(FormatError::Invalid {
                what: "backup body",
                detail: format!(
                    "{} bytes after the {} the header announces",
                    len - self.body_len,
                    self.body_len
                ),
            });
        }
        if crc != self.body_crc {
            return Err(FormatError::BadChecksum {
                what: "backup body",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(body: &[u8]) -> BackupHeader {
        BackupHeader {
            cluster_id: "kdss-0a1b2c3d".into(),
            applied_index: 4242,
            applied_term: 7,
            applied_leader: 2,
            created_ms: 1_780_000_000_000,
            body_len: body.len() as u64,
            body_crc: crc32c::crc32c(body),
        }
    }

    #[test]
    fn a_header_round_trips_and_checks_its_body() {
        let body = b"SQLite format 3\0 and the rest".to_vec();
        let h = sample(&body);
        let b = h.encode().unwrap();
        assert_eq!(b.len(), h.len());
        assert_eq!(BackupHeader::decode(&b).unwrap(), h);
        h.check_body(body.len() as u64, crc32c::crc32c(&body))
            .unwrap();
        assert!(matches!(
            h.check_body(body.len() as u64 - 1, 0),
            Err(FormatError::Truncated { .. })
        ));
        assert!(matches!(
            h.check_body(body.len() as u64, 1),
            Err(FormatError::BadChecksum { .. })
        ));
    }

    #[test]
    fn not_a_backup_is_bad_magic() {
        assert!(matches!(
            BackupHeader::decode(b"SQLite format 3\0"),
            Err(FormatError::BadMagic { .. })
        ));
        assert!(matches!(
            BackupHeader::decode(b""),
            Err(FormatError::BadMagic { .. })
        ));
    }

    proptest! {
        /// Any flipped byte or cut of the header is refused, never decoded into other values.
        #[test]
        fn any_damage_to_the_header_is_refused(at in 0usize..80, flip in 1u8..=255, cut in 0usize..80) {
            let h = sample(b"body");
            let b = h.encode().unwrap();
            let at = at % b.len();
            let mut bad = b.clone();
            bad[at] ^= flip;
            prop_assert!(BackupHeader::decode(&bad).is_err());
            let cut = cut % b.len();
            prop_assert!(BackupHeader::decode(&b[..cut]).is_err());
        }
    }
}
