//! The entry format alone: what decodes, and every way a header or block is refused.

use super::*;

const KEY: BlockKey = (7, 2, 3);
const BS: usize = BLOCK_SIZE as usize;

/// A file of `n` blocks of `last` bytes in the last one, and its data.
fn file(cluster: &str, n: usize, last: usize) -> (Vec<u8>, Vec<u8>) {
    let data: Vec<u8> = (0..(n - 1) * BS + last)
        .map(|i| (i * 7 + i / 3) as u8)
        .collect();
    let crcs = data.chunks(BS).map(crc32c::crc32c).collect();
    let mut h = Header::new(crcs, data.len());
    let mut f = h.encode(cluster, KEY);
    assert_eq!(f.len(), h.data_start);
    f.extend_from_slice(&data);
    (f, data)
}

fn blocks(f: &[u8], cluster: &str, n: usize) -> Result<Vec<Result<Bytes, EntryError>>, EntryError> {
    let h = Header::decode(f, cluster, KEY, n)?;
    let all = Bytes::copy_from_slice(f);
    Ok((0..n).map(|i| h.block(i, &all, 0)).collect())
}

#[test]
fn round_trips_and_data_starts_on_a_page() {
    let (f, data) = file("test@1", 3, 1000);
    assert_eq!(Header::read_len("test@1", 3), PAGE);
    let got: Vec<u8> = blocks(&f, "test@1", 3)
        .unwrap()
        .into_iter()
        .flat_map(|b| b.unwrap().to_vec())
        .collect();
    assert_eq!(got, data);
    // A block read alone: the header page and that block.
    let h = Header::decode(&f[..PAGE], "test@1", KEY, 3).unwrap();
    let r = h.block_range(1);
    assert_eq!(r, PAGE + BS..PAGE + 2 * BS);
    let b = h
        .block(1, &Bytes::copy_from_slice(&f[r.clone()]), r.start)
        .unwrap();
    assert_eq!(&b[..], &data[BS..2 * BS]);
}

#[test]
fn a_torn_header_is_refused_at_any_length() {
    let (f, _) = file("test@1", 2, BS);
    let len = FIXED + 8 + "test@1".len();
    for cut in 0..len {
        let r = Header::decode(&f[..cut], "test@1", KEY, 2);
        assert!(
            matches!(r, Err(EntryError::Truncated(_))),
            "cut at {cut}: {r:?}"
        );
    }
}

#[test]
fn a_file_torn_mid_block_serves_the_whole_blocks_before_the_tear() {
    let (f, _) = file("c", 4, BS);
    let cut = PAGE + 2 * BS + 100;
    let got = blocks(&f[..cut], "c", 4).unwrap();
    assert!(got[0].is_ok() && got[1].is_ok());
    assert_eq!(got[2], Err(EntryError::BlockTruncated(2)));
    assert_eq!(got[3], Err(EntryError::BlockTruncated(3)));
}

#[test]
fn every_flipped_header_byte_fails_the_whole_file_and_a_data_byte_only_its_block() {
    let (f, _) = file("test@1", 3, 500);
    for i in 0..FIXED + 12 + "test@1".len() {
        let mut bad = f.clone();
        bad[i] ^= 0x40;
        assert!(
            Header::decode(&bad, "test@1", KEY, 3).is_err(),
            "flip at header byte {i} went unnoticed"
        );
    }
    for (at, block) in [(PAGE, 0), (PAGE + BS + 9, 1), (f.len() - 1, 2)] {
        let mut bad = f.clone();
        bad[at] ^= 1;
        let got = blocks(&bad, "test@1", 3).unwrap();
        for (i, b) in got.iter().enumerate() {
            assert_eq!(
                b.is_ok(),
                i != block,
                "flip in block {block}, block {i}: {b:?}"
            );
        }
        assert_eq!(got[block], Err(EntryError::Checksum(block)));
    }
}

#[test]
fn another_cluster_run_or_version_is_refused() {
    let (f, _) = file("test@1", 2, 10);
    assert_eq!(
        Header::decode(&f, "test@2", KEY, 2),
        Err(EntryError::Cluster),
        "a recreated cluster reusing the directory"
    );
    assert_eq!(Header::decode(&f, "test", KEY, 2), Err(EntryError::Cluster));
    assert_eq!(
        Header::decode(&f, "test@1", (7, 2, 4), 2),
        Err(EntryError::Key(KEY, 2))
    );
    assert_eq!(
        Header::decode(&f, "test@1", KEY, 3),
        Err(EntryError::Key(KEY, 2))
    );
    let mut v1 = f.clone();
    v1[4] = 1;
    assert_eq!(
        Header::decode(&v1, "test@1", KEY, 2),
        Err(EntryError::Version(1)),
        "a one-block entry of format 1"
    );
}
