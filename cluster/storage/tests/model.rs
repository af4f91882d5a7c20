//! Model-based test: random sequences of put / delete / compact / crash / clean restart on a
//! small real device, checked against a BTreeMap after every step.

mod common;

use common::*;
use kdss_storage::StorageError;
use kdss_storage::engine::{Disk, OpenOptions, ShardKey};
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
enum Op {
    Put { k: u8, len: usize, seed: u8 },
    Delete { k: u8 },
    Compact { force: bool },
    Crash,
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..12, 0usize..70_000, any::<u8>()).prop_map(|(k, len, seed)| Op::Put { k, len, seed }),
        3 => (0u8..12).prop_map(|k| Op::Delete { k }),
        2 => any::<bool>().prop_map(|force| Op::Compact { force }),
        1 => Just(Op::Crash),
        1 => Just(Op::Restart),
    ]
}

fn value(k: u8, seed: u8, len: usize) -> Vec<u8> {
    let mut v = content(key(k as u64, seed as u32), len);
    if let Some(b) = v.first_mut() {
        *b = seed;
    }
    v
}

fn check(d: &Disk, model: &BTreeMap<u8, Vec<u8>>) -> Result<(), TestCaseError> {
    for k in 0u8..12 {
        let r = d.read(
            ShardKey {
                stripe: k as u64,
                shard: 0,
            },
            0,
            0,
        );
        match (model.get(&k), r) {
            (Some(v), Ok(r)) => prop_assert_eq!(r.data(), &v[..], "shard {}", k),
            (None, Err(StorageError::NotFound { .. })) => {}
            (m, r) => prop_assert!(
                false,
                "shard {}: model {:?} engine {:?}",
                k,
                m.map(|v| v.len()),
                r.map(|r| r.shard_len)
            ),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]
    #[test]
    fn engine_matches_a_btreemap(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let p = fresh(dir.path(), 4 << 20, 128 << 10);
        let mut d = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap();
        let mut model: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Put { k, len, seed } => {
                    let v = value(k, seed, len);
                    match d.put_bytes(ShardKey { stripe: k as u64, shard: 0 }, &v) {
                        Ok(_) => { model.insert(k, v); }
                        Err(StorageError::DiskFull { .. }) => {}
                        Err(e) => prop_assert!(false, "put: {}", e),
                    }
                }
                Op::Delete { k } => {
                    match d.delete(ShardKey { stripe: k as u64, shard: 0 }) {
                        Ok(existed) => prop_assert_eq!(existed, model.remove(&k).is_some()),
                        Err(StorageError::DiskFull { .. }) => {}
                        Err(e) => prop_assert!(false, "delete: {}", e),
                    }
                }
                Op::Compact { force } => {
                    while d.compact_once(if force { 0.0 } else { 0.3 }).unwrap().is_some() {}
                }
                Op::Crash => {
                    drop(d);
                    d = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap();
                }
                Op::Restart => {
                    d.close().unwrap();
                    drop(d);
                    d = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap();
                    prop_assert_eq!(&d.recovery().index, &kdss_storage::engine::IndexSource::Checkpoint);
                }
            }
            check(&d, &model)?;
        }
    }
}
