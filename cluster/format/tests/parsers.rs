//! Every decoder of bytes read from a device or a backup file, fed arbitrary bytes: none
//! panics (a damaged or hostile disk must be an error, not a crashed node), and a single
//! flipped bit in a valid header is refused, never decoded into other values.
//!
//! Random bytes almost never pass a magic and a crc32c, so each decoder is also fed
//! arbitrary bytes *with* its magic and a correct checksum fixed up: that reaches the
//! field checks behind them (lengths, geometry, kinds) with hostile values.

use kdss_format::{
    BackupHeader, Checkpoint, RecordHeader, SegmentHeader, SuperBlock, blocks, decode_record,
};
use proptest::prelude::*;

/// Overwrites `b[at..at + 4]` with the crc32c of `b[..at]`, as an encoder would.
fn fix_crc(b: &mut [u8], at: usize) {
    let crc = crc32c::crc32c(&b[..at]);
    b[at..at + 4].copy_from_slice(&crc.to_le_bytes());
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

/// A block of arbitrary bytes of exactly `len`.
fn block(len: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), len)
}

/// A u64 of the kind that breaks arithmetic: 0, small block multiples, huge, or any.
fn edge_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(u64::MAX),
        Just(u64::MAX - 4095),
        (0u64..64).prop_map(|n| n * 4096),
        (0u64..64).prop_map(|n| n << 20),
        any::<u64>(),
    ]
}

fn superblock() -> SuperBlock {
    SuperBlock {
        generation: 9,
        clean: true,
        disk_id: 0x1234_5678,
        cluster_hash: kdss_format::cluster_hash("kdss-prop"),
        cluster_id: "kdss-prop".into(),
        device_size: 1 << 30,
        segment_size: 16 << 20,
        data_start: 1 << 20,
        segment_count: 63,
        checkpoint_offset: 8192,
        checkpoint_capacity: (1 << 20) - 8192,
        checkpoint_len: 77,
        checkpoint_crc: 3,
        next_seq: 1000,
    }
}

fn record_header() -> RecordHeader {
    RecordHeader {
        kind: kdss_format::RecordKind::Shard,
        stripe_id: 42,
        shard_index: 3,
        data_len: 5000,
        data_crc: 0xabcd,
        seq: 17,
        version: 17,
        layout: kdss_format::Layout::V2,
    }
}

fn backup_header() -> BackupHeader {
    BackupHeader {
        cluster_id: "kdss-prop".into(),
        applied_index: 10,
        applied_term: 2,
        applied_leader: 1,
        created_ms: 1_780_000_000_000,
        body_len: 4096,
        body_crc: 5,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_a_decoder(b in bytes(9000)) {
        let _ = RecordHeader::decode(&b);
        let _ = decode_record(&b);
        let _ = SuperBlock::decode(&b);
        let _ = SegmentHeader::decode(&b);
        let _ = Checkpoint::decode(&b);
        let _ = BackupHeader::decode(&b);
        let half = b.len() / 2;
        let _ = blocks::verify(&b[..half], &b[half..], 0);
    }

    #[test]
    fn a_record_header_with_a_good_checksum_and_hostile_fields_never_panics(
        mut b in block(64), v2 in any::<bool>(), tail in bytes(9000)) {
        b[0..4].copy_from_slice(if v2 { b"KDR2" } else { b"KDR1" });
        fix_crc(&mut b, 60);
        if let Ok(h) = RecordHeader::decode(&b) {
            let _ = h.footprint();
            let _ = h.data_offset();
        }
        b.extend_from_slice(&tail);
        let _ = decode_record(&b);
    }

    #[test]
    fn a_superblock_with_a_good_checksum_and_hostile_fields_never_panics(
        mut b in block(4096), version in 0u32..4) {
        b[0..8].copy_from_slice(b"KDSSSB\0\x01");
        b[8..12].copy_from_slice(&version.to_le_bytes());
        fix_crc(&mut b, 4092);
        if let Ok(sb) = SuperBlock::decode(&b) {
            // What decodes is self-consistent: its segments fit the device.
            prop_assert!(sb.segment_size > 0);
            prop_assert!(sb.checkpoint_len <= sb.checkpoint_capacity);
        }
    }

    /// Geometry fields of edge values (0, block multiples, u64::MAX), checksummed: what
    /// decodes fits the device, and nothing overflows on the way.
    #[test]
    fn a_superblock_with_hostile_geometry_never_panics(
        f in proptest::collection::vec(edge_u64(), 7), clean in any::<bool>()) {
        let mut sb = superblock();
        sb.clean = clean;
        sb.device_size = f[0];
        sb.segment_size = f[1];
        sb.data_start = f[2];
        sb.segment_count = f[3];
        sb.checkpoint_offset = f[4];
        sb.checkpoint_capacity = f[5];
        sb.checkpoint_len = f[6];
        if let Ok(got) = SuperBlock::decode(&sb.encode()) {
            prop_assert!(got.checkpoint_offset.checked_add(got.checkpoint_capacity)
                .is_some_and(|end| end <= got.data_start));
            prop_assert!(got.segment_count.checked_mul(got.segment_size)
                .and_then(|s| s.checked_add(got.data_start))
                .is_some_and(|end| end <= got.device_size));
        }
    }

    #[test]
    fn a_segment_header_with_a_good_checksum_never_panics(mut b in block(28)) {
        b[0..8].copy_from_slice(b"KDSSSEG1");
        fix_crc(&mut b, 24);
        prop_assert!(SegmentHeader::decode(&b).is_ok());
    }

    #[test]
    fn a_checkpoint_with_its_magic_and_hostile_counts_never_panics(
        mut b in bytes(4000), nseg in any::<u32>(), nent in any::<u64>(), small in any::<bool>()) {
        b.resize(b.len().max(28), 0);
        b[0..8].copy_from_slice(b"KDSSCKP1");
        // Hostile counts, and small ones that make the decoder walk into the entries.
        let (nseg, nent) = if small { (nseg % 4, nent % 64) } else { (nseg, nent) };
        b[16..20].copy_from_slice(&nseg.to_le_bytes());
        b[20..28].copy_from_slice(&nent.to_le_bytes());
        let _ = Checkpoint::decode(&b);
    }

    #[test]
    fn a_backup_header_with_a_good_checksum_and_hostile_fields_never_panics(
        mut b in block(kdss_format::backup::MAX_HEADER), h in 0u32..400, n in 0u16..300) {
        b[0..8].copy_from_slice(b"KDSSMETA");
        b[8..12].copy_from_slice(&1u32.to_le_bytes());
        b[12..16].copy_from_slice(&h.to_le_bytes());
        b[60..62].copy_from_slice(&n.to_le_bytes());
        let h = h as usize;
        if (8..=b.len()).contains(&h) {
            fix_crc(&mut b, h - 4);
        }
        let _ = BackupHeader::decode(&b);
    }

    #[test]
    fn one_flipped_bit_in_a_record_header_is_refused(bit in 0usize..64 * 8) {
        let mut b = record_header().encode();
        b[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(RecordHeader::decode(&b).is_err());
    }

    #[test]
    fn one_flipped_bit_in_a_superblock_is_refused(bit in 0usize..4096 * 8) {
        let mut b = superblock().encode();
        b[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(SuperBlock::decode(&b).is_err());
    }

    /// The checksum covers bytes 0..28; the rest of the block is padding no field reads.
    #[test]
    fn one_flipped_bit_in_a_segment_header_is_refused(bit in 0usize..4096 * 8) {
        let h = SegmentHeader { open_seq: 99, index: 7 };
        let mut b = h.encode();
        b[bit / 8] ^= 1 << (bit % 8);
        match SegmentHeader::decode(&b) {
            Err(_) => {}
            Ok(got) => {
                prop_assert!(bit / 8 >= 28, "bit {bit} of the covered bytes went unnoticed");
                prop_assert_eq!(got, h);
            }
        }
    }

    #[test]
    fn one_flipped_bit_in_a_backup_header_is_refused(bit in 0usize..(62 + 9 + 4) * 8) {
        let mut b = backup_header().encode().unwrap();
        let bit = bit % (b.len() * 8);
        b[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(BackupHeader::decode(&b).is_err());
    }
}
