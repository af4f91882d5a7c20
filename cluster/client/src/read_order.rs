//! Which shards a reader tries first, from the master's verdict on each shard's disk
//! (`ShardLocation.disk_status`): online disks first, then suspect, then draining, offline
//! last. A read does not go to a disk that is not online while k other shards can be read;
//! it still does when they cannot, so a state never makes data unreadable.

use kdss_proto::master::{DiskStatus, ShardLocation};

/// Sort key: lower is read first. A master that never judged the disk says UNSPECIFIED,
/// which reads as online.
pub(crate) fn rank(loc: &ShardLocation) -> u8 {
    match DiskStatus::try_from(loc.disk_status).unwrap_or(DiskStatus::Unspecified) {
        DiskStatus::Unspecified | DiskStatus::Online => 0,
        DiskStatus::Suspect => 1,
        DiskStatus::Draining => 2,
        DiskStatus::Offline => 3,
    }
}

/// True when a reader should reconstruct this shard from others rather than read it.
pub(crate) fn read_around(loc: &ShardLocation) -> bool {
    rank(loc) > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(i: u32, s: DiskStatus) -> ShardLocation {
        ShardLocation {
            shard_index: i,
            disk_status: s as i32,
            ..Default::default()
        }
    }

    #[test]
    fn online_disks_are_read_first_and_offline_ones_last() {
        let mut v = [
            loc(0, DiskStatus::Offline),
            loc(1, DiskStatus::Suspect),
            loc(2, DiskStatus::Unspecified),
            loc(3, DiskStatus::Draining),
            loc(4, DiskStatus::Online),
        ];
        v.sort_by_key(|l| (rank(l), l.shard_index));
        let order: Vec<u32> = v.iter().map(|l| l.shard_index).collect();
        assert_eq!(order, vec![2, 4, 1, 3, 0]);
        assert!(!read_around(&v[0]));
        assert!(read_around(&v[2]));
    }
}
