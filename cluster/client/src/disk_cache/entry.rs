//! One cached block on disk: a fixed header naming what the bytes are (cluster, block key,
//! length, crc32c of the data) followed by the data. A reader trusts nothing it did not
//! check: a file cut short by a crash, a flipped bit, or a block another cluster wrote into
//! a reused directory all decode as an [`EntryError`], which the cache treats as a miss.

use bytes::Bytes;

use crate::cache::BlockKey;

/// First bytes of every entry.
pub const MAGIC: [u8; 4] = *b"KDDC";
/// Layout of the header below; a different one is a miss (and the entry is replaced).
pub const VERSION: u16 = 1;
/// Header bytes before the cluster name: magic, version, name length, stripe, shard,
/// block, data length, crc32c.
const FIXED: usize = 4 + 2 + 2 + 8 + 4 + 8 + 4 + 4;

/// Why an entry was not returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("entry cut short ({0} bytes)")]
    Truncated(usize),
    #[error("not a block entry (bad magic)")]
    Magic,
    #[error("entry format version {0}, this build reads {VERSION}")]
    Version(u16),
    #[error("entry of another cluster")]
    Cluster,
    #[error("entry names block {0:?}, expected another")]
    Key(BlockKey),
    #[error("entry says {said} data bytes, holds {held}")]
    Length { said: usize, held: usize },
    #[error("data checksum mismatch")]
    Checksum,
}

/// The bytes of an entry holding `data` as block `key` of `cluster`.
pub fn encode(cluster: &str, key: BlockKey, data: &[u8]) -> Vec<u8> {
    let name = cluster.as_bytes();
    let mut b = Vec::with_capacity(FIXED + name.len() + data.len());
    b.extend_from_slice(&MAGIC);
    b.extend_from_slice(&VERSION.to_le_bytes());
    b.extend_from_slice(&(name.len() as u16).to_le_bytes());
    b.extend_from_slice(&key.0.to_le_bytes());
    b.extend_from_slice(&key.1.to_le_bytes());
    b.extend_from_slice(&key.2.to_le_bytes());
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&crc32c::crc32c(data).to_le_bytes());
    b.extend_from_slice(name);
    b.extend_from_slice(data);
    b
}

/// The data of an entry read whole from disk, if it is block `key` of `cluster` and its
/// header and checksum hold.
pub fn decode(buf: Bytes, cluster: &str, key: BlockKey) -> Result<Bytes, EntryError> {
    if buf.len() < FIXED {
        return Err(EntryError::Truncated(buf.len()));
    }
    let u16_at = |o: usize| u16::from_le_bytes(buf[o..o + 2].try_into().expect("2 bytes"));
    let u32_at = |o: usize| u32::from_le_bytes(buf[o..o + 4].try_into().expect("4 bytes"));
    let u64_at = |o: usize| u64::from_le_bytes(buf[o..o + 8].try_into().expect("8 bytes"));
    if buf[..4] != MAGIC {
        return Err(EntryError::Magic);
    }
    let version = u16_at(4);
    if version != VERSION {
        return Err(EntryError::Version(version));
    }
    let name_len = u16_at(6) as usize;
    let start = FIXED + name_len;
    if buf.len() < start {
        return Err(EntryError::Truncated(buf.len()));
    }
    if &buf[FIXED..start] != cluster.as_bytes() {
        return Err(EntryError::Cluster);
    }
    let found = (u64_at(8), u32_at(16), u64_at(20));
    if found != key {
        return Err(EntryError::Key(found));
    }
    let said = u32_at(28) as usize;
    let held = buf.len() - start;
    if said != held {
        return Err(EntryError::Length { said, held });
    }
    let data = buf.slice(start..);
    if crc32c::crc32c(&data) != u32_at(32) {
        return Err(EntryError::Checksum);
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: BlockKey = (7, 2, 3);

    fn entry() -> Vec<u8> {
        encode("test@1", KEY, &[5u8; 1000])
    }

    #[test]
    fn round_trips() {
        let d = decode(Bytes::from(entry()), "test@1", KEY).unwrap();
        assert_eq!(&d[..], &[5u8; 1000][..]);
        let empty = encode("c", KEY, &[]);
        assert!(decode(Bytes::from(empty), "c", KEY).unwrap().is_empty());
    }

    #[test]
    fn a_torn_entry_is_refused_at_any_length() {
        let e = entry();
        for cut in 0..e.len() {
            let r = decode(Bytes::copy_from_slice(&e[..cut]), "test@1", KEY);
            assert!(
                matches!(r, Err(EntryError::Truncated(_) | EntryError::Length { .. })),
                "cut at {cut}: {r:?}"
            );
        }
    }

    #[test]
    fn another_cluster_or_key_is_refused() {
        let e = Bytes::from(entry());
        assert_eq!(
            decode(e.clone(), "test@2", KEY),
            Err(EntryError::Cluster),
            "a recreated cluster reusing the directory"
        );
        assert_eq!(decode(e.clone(), "test", KEY), Err(EntryError::Cluster));
        assert_eq!(decode(e, "test@1", (7, 2, 4)), Err(EntryError::Key(KEY)));
    }

    #[test]
    fn a_wrong_length_or_version_is_refused() {
        let mut e = entry();
        e.extend_from_slice(b"tail");
        assert_eq!(
            decode(Bytes::from(e), "test@1", KEY),
            Err(EntryError::Length {
                said: 1000,
                held: 1004
            })
        );
        let mut e = entry();
        e[28] = 0xe7; // the length field says 999
        assert!(matches!(
            decode(Bytes::from(e), "test@1", KEY),
            Err(EntryError::Length { .. })
        ));
        let mut e = entry();
        e[4] = 2;
        assert_eq!(
            decode(Bytes::from(e), "test@1", KEY),
            Err(EntryError::Version(2))
        );
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        let e = entry();
        for i in 0..e.len() {
            let mut bad = e.clone();
            bad[i] ^= 0x40;
            assert!(
                decode(Bytes::from(bad), "test@1", KEY).is_err(),
                "flip at byte {i} went unnoticed"
            );
        }
    }
}
