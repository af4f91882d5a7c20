//! Model-based test of the space lifecycle: a live shard is never deleted.
//!
//! Random interleavings of writes, overwrites, copies, truncates, deletes, restores,
//! purges, crashed writers (stripes allocated and never committed), stale expiry and GC
//! passes run against the real state machine. The storage nodes are a set of shards; the
//! collector does what the master's does (delete each shard of every garbage candidate on
//! its node, then `ForgetShards` for those confirmed), but may crash at any shard (the
//! pass stops; nothing is forgotten) and one node may be down for a while (its shards
//! wait). After every step, every live object and every bin item must still read
//! byte-exact from the shards left (k = 5 of 7 per stripe); at the end, after the nodes
//! are back and the bin is purged, the collector must have emptied its backlog.

mod common;

use common::{BUCKET, Ns};
use kdss_meta::{gc, read, trash};
use kdss_proto::master::mutation::Op;
use kdss_proto::master::*;
use kdss_proto::storage::ShardKey;
use std::collections::{BTreeMap, BTreeSet};

/// Deterministic PRNG (xorshift64*), so a failing seed reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The byte at `offset` of stripe `s`'s data: content is a function of where it lives.
fn byte(s: u64, offset: u64) -> u8 {
    (s.wrapping_mul(131).wrapping_add(offset.wrapping_mul(7)) % 251) as u8
}

struct World {
    ns: Ns,
    /// Shards the storage nodes hold: (stripe, shard index) -> node.
    disks: BTreeMap<(u64, u32), String>,
    /// What every live key must read.
    live: BTreeMap<String, Vec<u8>>,
    /// What every bin item must hold: ino -> content.
    binned: BTreeMap<u64, Vec<u8>>,
    down: Option<String>,
}

impl World {
    async fn stripe(&mut self, len: u64) -> u64 {
        let s = self.ns.stripe(len).await;
        for i in 0..7u32 {
            self.disks.insert((s, i), format!("node-{}", i % 4));
        }
        s
    }

    async fn ino_of(&self, key: &str) -> Option<u64> {
        self.ns.stat(&format!("/{key}")).await.map(|a| a.ino)
    }

    /// Reads an inode's content from the shards left; None if a stripe lost too many.
    async fn read_ino(&self, ino: u64, size: u64) -> Option<Vec<u8>> {
        let mut c = self.ns.pool.acquire().await.unwrap();
        let ext = kdss_meta::extents::all(&mut c, ino).await.unwrap();
        let mut out = vec![0u8; size as usize];
        for e in ext {
            let have = (0..7u32)
                .filter(|i| self.disks.contains_key(&(e.stripe_id, *i)))
                .count();
            if have < 5 {
                return None;
            }
            for j in 0..e.len {
                out[(e.file_offset + j) as usize] = byte(e.stripe_id, e.stripe_offset + j);
            }
        }
        Some(out)
    }

    async fn check(&self, seed: u64, step: usize) {
        for (key, want) in &self.live {
            let a = self
                .ns
                .stat(&format!("/{key}"))
                .await
                .unwrap_or_else(|| panic!("seed {seed} step {step}: live key {key} vanished"));
            let got = self.read_ino(a.ino, a.size).await;
            assert_eq!(
                got.as_ref(),
                Some(want),
                "seed {seed} step {step}: key {key} does not read back"
            );
        }
        let items = trash::list(&self.ns.pool, &ListTrashRequest::default(), 0)
            .await
            .unwrap()
            .items;
        assert_eq!(items.len(), self.binned.len(), "seed {seed} step {step}");
        for it in items {
            let want = &self.binned[&it.ino];
            let got = self.read_ino(it.ino, it.size).await;
            assert_eq!(
                got.as_ref(),
                Some(want),
                "seed {seed} step {step}: bin item {} lost data",
                it.path
            );
        }
    }

    /// One collector pass; `crash_at` stops it after that many shard deletes.
    async fn gc_pass(&mut self, crash_at: Option<usize>) {
        let mut deletes = 0;
        let mut after = 0;
        loop {
            let batch = gc::candidates(&self.ns.pool, after, i64::MAX, 3)
                .await
                .unwrap();
            let Some(last) = batch.last() else { return };
            after = last.stripe_id;
            let mut done = Vec::new();
            for s in &batch {
                if s.shards.is_empty() {
                    done.push(ShardKey {
                        stripe_id: s.stripe_id,
                        shard_index: u32::MAX,
                    });
                }
                for sh in &s.shards {
                    if self.down.as_deref() == Some(sh.node_id.as_str()) {
                        continue;
                    }
                    if crash_at == Some(deletes) {
                        return; // the leader died: nothing of this batch is forgotten
                    }
                    self.disks.remove(&(s.stripe_id, sh.shard_index));
                    deletes += 1;
                    done.push(ShardKey {
                        stripe_id: s.stripe_id,
                        shard_index: sh.shard_index,
                    });
                }
            }
            if !done.is_empty() {
                self.ns
                    .ok(Op::ForgetShards(ForgetShardsOp { shards: done }))
                    .await;
            }
        }
    }

    async fn put(&mut self, key: &str, len: u64) {
        let s = self.stripe(len).await;
        let old = self.ino_of(key).await;
        self.ns
            .ok(Op::PutObject(PutObjectRequest {
                bucket: BUCKET.into(),
                key: key.into(),
                size: len,
                etag: "e".into(),
                extents: vec![Extent {
                    file_offset: 0,
                    len,
                    stripe_id: s,
                    stripe_offset: 0,
                }],
                ..Default::default()
            }))
            .await;
        if let (Some(ino), Some(prev)) = (old, self.live.get(key)) {
            self.binned.insert(ino, prev.clone());
        }
        self.live
            .insert(key.into(), (0..len).map(|j| byte(s, j)).collect());
    }
}

const KEYS: [&str; 4] = ["a", "b", "c", "d"];

async fn run(seed: u64, steps: usize) {
    let mut w = World {
        ns: Ns::new().await,
        disks: BTreeMap::new(),
        live: BTreeMap::new(),
        binned: BTreeMap::new(),
        down: None,
    };
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    for step in 0..steps {
        let key = KEYS[rng.below(4) as usize];
        match rng.below(12) {
            0..=2 => w.put(key, 1 + rng.below(40)).await,
            3 => {
                let dst = KEYS[rng.below(4) as usize];
                if w.live.contains_key(key) && dst != key {
                    let old = w.ino_of(dst).await;
                    w.ns.ok(Op::CopyObject(CopyObjectRequest {
                        src_bucket: BUCKET.into(),
                        src_key: key.into(),
                        dst_bucket: BUCKET.into(),
                        dst_key: dst.into(),
                        ..Default::default()
                    }))
                    .await;
                    if let (Some(ino), Some(prev)) = (old, w.live.get(dst)) {
                        w.binned.insert(ino, prev.clone());
                    }
                    let v = w.live[key].clone();
                    w.live.insert(dst.into(), v);
                }
            }
            4 => {
                if let Some(v) = w.live.get(key).cloned() {
                    let cut = rng.below(v.len() as u64 + 1);
                    let ino = w.ino_of(key).await.unwrap();
                    w.ns.ok(Op::SetAttr(SetAttrRequest {
                        bucket: BUCKET.into(),
                        ino,
                        size: Some(cut),
                        ..Default::default()
                    }))
                    .await;
                    w.live.insert(key.into(), v[..cut as usize].to_vec());
                }
            }
            5 | 6 => {
                if let Some(v) = w.live.remove(key) {
                    let ino = w.ino_of(key).await.unwrap();
                    w.ns.ok(Op::DeleteObject(DeleteObjectRequest {
                        bucket: BUCKET.into(),
                        key: key.into(),
                    }))
                    .await;
                    w.binned.insert(ino, v);
                }
            }
            7 => {
                let items = trash::list(&w.ns.pool, &ListTrashRequest::default(), 0)
                    .await
                    .unwrap()
                    .items;
                if !items.is_empty() {
                    let it = &items[rng.below(items.len() as u64) as usize];
                    let r =
                        w.ns.run(Op::RestoreTrash(RestoreTrashRequest { id: it.id }))
                            .await;
                    if w.live.contains_key(&it.path) {
                        assert_eq!(r.failure.unwrap().code, "RestoreConflict");
                    } else {
                        assert!(r.failure.is_none(), "seed {seed}: {:?}", r.failure);
                        let v = w.binned.remove(&it.ino).unwrap();
                        w.live.insert(it.path.clone(), v);
                    }
                }
            }
            8 => {
                let items = trash::list(&w.ns.pool, &ListTrashRequest::default(), 0)
                    .await
                    .unwrap()
                    .items;
                if let Some(it) = items.first() {
                    w.ns.ok(Op::PurgeTrash(PurgeTrashRequest {
                        ids: vec![it.id],
                        ..Default::default()
                    }))
                    .await;
                    w.binned.remove(&it.ino);
                }
            }
            9 => {
                // A writer allocates and crashes before committing; later, stale expiry.
                w.stripe(1 + rng.below(30)).await;
                if rng.below(2) == 0 {
                    let before = w.ns.now;
                    w.ns.ok(Op::ExpireStaleStripes(ExpireStaleStripesOp {
                        created_before_ns: before,
                    }))
                    .await;
                }
            }
            10 => {
                let crash = (rng.below(3) == 0).then(|| rng.below(10) as usize);
                w.gc_pass(crash).await;
            }
            _ => {
                w.down = match rng.below(3) {
                    0 => Some(format!("node-{}", rng.below(4))),
                    _ => None,
                };
            }
        }
        w.check(seed, step).await;
    }
    // Everything comes back: nodes up, bin purged, stale stripes expired, two passes.
    w.down = None;
    w.ns.ok(Op::PurgeTrash(PurgeTrashRequest {
        all: true,
        ..Default::default()
    }))
    .await;
    w.binned.clear();
    let now = w.ns.now + 1;
    w.ns.ok(Op::ExpireStaleStripes(ExpireStaleStripesOp {
        created_before_ns: now,
    }))
    .await;
    w.gc_pass(None).await;
    w.check(seed, steps).await;
    assert_eq!(
        gc::pending(&w.ns.pool).await.unwrap(),
        gc::Pending::default(),
        "seed {seed}: backlog left"
    );
    // Exactly the shards of live stripes remain on the disks.
    let mut inos = Vec::new();
    for key in w.live.keys() {
        inos.push(w.ns.stat(&format!("/{key}")).await.unwrap().ino);
    }
    let mut c = w.ns.pool.acquire().await.unwrap();
    let mut want = BTreeSet::new();
    for ino in inos {
        for e in kdss_meta::extents::all(&mut c, ino).await.unwrap() {
            want.insert(e.stripe_id);
        }
    }
    let have: BTreeSet<u64> = w.disks.keys().map(|(s, _)| *s).collect();
    assert_eq!(
        have, want,
        "seed {seed}: disks hold exactly the live stripes"
    );
    drop(c);
    for s in &want {
        assert!(read::stripe_state(&w.ns.pool, *s).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn no_live_shard_is_ever_deleted() {
    for seed in 1..=30 {
        run(seed, 120).await;
    }
}
