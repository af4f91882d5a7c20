//! Test harness: a fresh in-memory namespace, a deterministic clock, helpers to apply
//! mutations, resolve paths and dump the whole database.
#![allow(dead_code)]

use kdss_meta::{MutationReply, apply, read};
use kdss_proto::master::mutation::Op;
use kdss_proto::master::mutation_reply::Reply;
use kdss_proto::master::*;
use sqlx::{AssertSqlSafe, SqlitePool};

pub struct Ns {
    pub pool: SqlitePool,
    pub now: i64,
    pub log: Vec<Mutation>,
    pub caller: String,
}

pub const BUCKET: &str = "bkt";

impl Ns {
    /// A fresh namespace with bucket `bkt` (5+2) owned by `alice`.
    pub async fn new() -> Ns {
        let pool = kdss_meta::open_memory().await.expect("open_memory");
        let mut ns = Ns {
            pool,
            now: 1_700_000_000_000_000_000,
            log: Vec::new(),
            caller: "alice".into(),
        };
        ns.ok(Op::CreateBucket(CreateBucketRequest {
            name: BUCKET.into(),
            k: 5,
            m: 2,
            owner: String::new(),
        }))
        .await;
        ns
    }

    pub async fn run(&mut self, op: Op) -> MutationReply {
        self.now += 1_000;
        let m = Mutation {
            ctx: Some(ApplyContext {
                now_ns: self.now,
                caller: self.caller.clone(),
                caller_role: Role::Admin as u32,
            }),
            op: Some(op),
        };
        self.log.push(m.clone());
        let mut c = self.pool.acquire().await.unwrap();
        apply(&mut c, &m)
            .await
            .expect("apply must not fail internally")
    }

    pub async fn ok(&mut self, op: Op) -> Reply {
        let r = self.run(op.clone()).await;
        assert!(r.failure.is_none(), "{op:?} failed: {:?}", r.failure);
        r.reply.expect("a reply")
    }

    pub async fn fail(&mut self, op: Op) -> MetaFailure {
        let r = self.run(op.clone()).await;
        r.failure
            .unwrap_or_else(|| panic!("{op:?} should have failed, got {:?}", r.reply))
    }

    pub async fn root(&self) -> u64 {
        read::get_bucket(
            &self.pool,
            &BucketRequest {
                name: BUCKET.into(),
            },
        )
        .await
        .unwrap()
        .bucket
        .unwrap()
        .root_ino
    }

    /// Resolves an absolute path of the bucket to its attributes.
    pub async fn stat(&self, path: &str) -> Option<Attr> {
        let mut ino = self.root().await;
        let mut attr = read::getattr(
            &self.pool,
            &GetAttrRequest {
                bucket: BUCKET.into(),
                ino,
            },
        )
        .await
        .ok()?
        .attr;
        for seg in path.split('/').filter(|s| !s.is_empty()) {
            attr = read::lookup(
                &self.pool,
                &LookupRequest {
                    bucket: BUCKET.into(),
                    parent: ino,
                    name: seg.into(),
                },
            )
            .await
            .ok()?
            .attr;
            ino = attr.as_ref()?.ino;
        }
        attr
    }

    /// (parent ino, name) of a path whose parent exists.
    pub async fn split(&self, path: &str) -> (u64, String) {
        let (dir, name) = path.rsplit_once('/').unwrap();
        let parent = self.stat(dir).await.map(|a| a.ino).unwrap_or(u64::MAX);
        (parent, name.to_string())
    }

    /// Allocates a stripe of `data_len` bytes on 7 disks of bucket `bkt`.
    pub async fn stripe(&mut self, data_len: u64) -> u64 {
        self.stripe_in(BUCKET, data_len).await
    }

    pub async fn stripe_in(&mut self, bucket: &str, data_len: u64) -> u64 {
        let shards = (0..7)
            .map(|i| ShardLocation {
                shard_index: i,
                node_id: format!("node-{}", i % 4),
                disk_id: 100 + i as u64,
                ..Default::default()
            })
            .collect();
        let r = self
            .ok(Op::CreateStripe(CreateStripeOp {
                bucket: bucket.into(),
                k: 5,
                m: 2,
                shard_len: data_len.div_ceil(5),
                data_len,
                shards,
            }))
            .await;
        match r {
            Reply::Stripe(s) => s.stripe_id,
            other => panic!("{other:?}"),
        }
    }

    /// PutObject with one fresh stripe holding the whole body.
    pub async fn put(&mut self, key: &str, size: u64) -> Result<ObjectInfo, MetaFailure> {
        let extents = if size > 0 && !key.ends_with('/') {
            let s = self.stripe(size).await;
            vec![Extent {
                file_offset: 0,
                len: size,
                stripe_id: s,
                stripe_offset: 0,
            }]
        } else {
            vec![]
        };
        let r = self
            .run(Op::PutObject(PutObjectRequest {
                bucket: BUCKET.into(),
                key: key.into(),
                extents,
                size,
                etag: format!("{:032x}", size),
                ..Default::default()
            }))
            .await;
        match (r.reply, r.failure) {
            (Some(Reply::Object(o)), None) => Ok(o.info.unwrap()),
            (_, Some(f)) => Err(f),
            other => panic!("{other:?}"),
        }
    }

    pub async fn refcount(&self, stripe: u64) -> (u64, bool) {
        let s = read::stripe_state(&self.pool, stripe)
            .await
            .unwrap()
            .unwrap();
        (s.refcount, s.released)
    }

    /// Purges the whole recycle bin: (items, bytes).
    pub async fn purge_all(&mut self) -> (u64, u64) {
        match self
            .ok(Op::PurgeTrash(PurgeTrashRequest {
                all: true,
                ..Default::default()
            }))
            .await
        {
            Reply::PurgeTrash(p) => (p.items, p.bytes),
            other => panic!("{other:?}"),
        }
    }

    /// Every row of every table, as text, in a stable order.
    pub async fn dump(&self) -> Vec<String> {
        dump(&self.pool).await
    }
}

pub async fn dump(pool: &SqlitePool) -> Vec<String> {
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(pool)
            .await
            .unwrap();
    let mut out = Vec::new();
    for t in tables {
        let cols: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT name FROM pragma_table_info('{t}')"
        )))
        .fetch_all(pool)
        .await
        .unwrap();
        let expr = cols
            .iter()
            .map(|c| format!("quote(\"{c}\")"))
            .collect::<Vec<_>>()
            .join("||'|'||");
        let rows: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT {expr} FROM \"{t}\" ORDER BY 1"
        )))
        .fetch_all(pool)
        .await
        .unwrap();
        out.extend(rows.into_iter().map(|r| format!("{t}: {r}")));
    }
    out
}
