//! Reading a file: a snapshot of its extents (so a reader finishes on the version it opened),
//! ranges mapped to stripe pieces and holes, sequential detection with prefetch of the next
//! stripes into the cache, and a bounded-memory stream for S3 GET. Read capabilities expire:
//! on a refusal the reader fetches fresh capabilities for the same stripes and retries once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use kdss_proto::master as pb;

use crate::layout::{FilePiece, file_pieces, normalize_extents};
use crate::shard_io::ShardFault;
use crate::state::Shared;
use crate::stripe_read::{ReadOpts, read_stripe_range};
use crate::{ClientError, MasterClient};

/// A snapshot of one file's extents, reading through the cache. Cheap to clone.
#[derive(Clone)]
pub struct FileReader {
    inner: Arc<Inner>,
}

struct Inner {
    sh: Arc<Shared>,
    master: MasterClient,
    bucket: String,
    /// Known when opened by inode: lets the reader renew capabilities.
    ino: Option<u64>,
    size: u64,
    extents: Vec<pb::Extent>,
    stripes: RwLock<HashMap<u64, Arc<pb::StripeInfo>>>,
    inline_data: Bytes,
    opts: ReadOpts,
    seq: Mutex<SeqState>,
}

/// Sequential-read detection.
#[derive(Default)]
struct SeqState {
    /// End of the previous read.
    last_end: u64,
    /// Consecutive reads that started where the previous one ended.
    streak: u32,
    /// File offset up to which prefetch was started.
    prefetched_to: u64,
}

impl FileReader {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        sh: Arc<Shared>,
        master: MasterClient,
        bucket: &str,
        ino: Option<u64>,
        size: u64,
        extents: Vec<pb::Extent>,
        stripes: Vec<pb::StripeInfo>,
        inline_data: Bytes,
    ) -> FileReader {
        let mut extents = normalize_extents(&extents);
        // Bytes past the size read as nothing (a file truncated after the snapshot's extents).
        extents.retain_mut(|e| {
            e.len = e.len.min(size.saturating_sub(e.file_offset));
            e.len > 0
        });
        let stripes = stripes
            .into_iter()
            .map(|s| (s.stripe_id, Arc::new(s)))
            .collect();
        FileReader {
            inner: Arc::new(Inner {
                sh,
                master,
                bucket: bucket.to_string(),
                ino,
                size,
                extents,
                stripes: RwLock::new(stripes),
                inline_data,
                opts: ReadOpts::default(),
                seq: Mutex::new(SeqState::default()),
            }),
        }
    }

    /// File size in the snapshot.
    pub fn size(&self) -> u64 {
        self.inner.size
    }

    /// The extents of the snapshot (sorted, non-overlapping).
    pub fn extents(&self) -> &[pb::Extent] {
        &self.inner.extents
    }

    /// A reader on the same snapshot that treats the given shard indices as lost, for the
    /// degraded-read bench and tests (simulated loss: the shards are not even asked for).
    pub fn with_simulated_loss(&self, shards: &[u32]) -> FileReader {
        let i = &self.inner;
        FileReader {
            inner: Arc::new(Inner {
                sh: i.sh.clone(),
                master: i.master.clone(),
                bucket: i.bucket.clone(),
                ino: i.ino,
                size: i.size,
                extents: i.extents.clone(),
                stripes: RwLock::new(i.stripes.read().expect("stripes lock").clone()),
                inline_data: i.inline_data.clone(),
                opts: ReadOpts {
                    lost: Arc::new(shards.to_vec()),
                },
                seq: Mutex::new(SeqState::default()),
            }),
        }
    }

    /// Reads `len` bytes at `offset` (short only at end of file; holes are zeros). A run of
    /// sequential reads starts read-ahead of the next stripes into the cache.
    pub async fn read_at(&self, offset: u64, len: u64) -> Result<Bytes, ClientError> {
        if offset < self.inner.size && len > 0 && !self.inner.extents.is_empty() {
            self.note_and_prefetch(offset, len.min(self.inner.size - offset));
        }
        self.read_admitted(offset, len).await
    }

    /// One read holding one of the client's read permits while it touches shards
    /// (`max_inflight_reads`): under load reads queue here, not at the storage nodes.
    async fn read_admitted(&self, offset: u64, len: u64) -> Result<Bytes, ClientError> {
        let size = self.inner.size;
        if offset >= size || len == 0 {
            return Ok(Bytes::new());
        }
        let len = len.min(size - offset);
        if self.inner.extents.is_empty() {
            return Ok(self.read_inline(offset, len));
        }
        // The semaphore is never closed; without a permit the read still runs.
        let _permit = self.inner.sh.read_permits.acquire().await.ok();
        match self.read_pieces(offset, len).await {
            Err(ShardFault::Denied(why)) => {
                tracing::debug!(%why, "read capability refused; renewing");
                self.renew_caps().await?;
                self.read_pieces(offset, len)
                    .await
                    .map_err(|f| self.fault_error(f))
            }
            r => r.map_err(|f| self.fault_error(f)),
        }
    }

    /// Streams `[offset, offset+len)` in order, chunk by chunk, `prefetch_stripes` chunks
    /// ahead (its only read-ahead: no cache prefetch on top), each chunk read admitted as
    /// in [`FileReader::read_at`]; memory stays bounded. How S3 GET bodies are read.
    pub fn stream(
        self,
        offset: u64,
        len: u64,
    ) -> impl futures::Stream<Item = Result<Bytes, ClientError>> + Send + 'static {
        let size = self.inner.size;
        let end = offset.saturating_add(len).min(size);
        let step = self.inner.sh.cfg.chunk_size.max(1) as u64;
        let depth = self.inner.sh.cfg.prefetch_stripes.max(1);
        let mut ranges = Vec::new();
        let mut pos = offset.min(end);
        while pos < end {
            let grid = (pos / step + 1) * step;
            let n = grid.min(end) - pos;
            ranges.push((pos, n));
            pos += n;
        }
        futures::stream::iter(ranges)
            .map(move |(o, n)| {
                let r = self.clone();
                async move { r.read_admitted(o, n).await }
            })
            .buffered(depth)
    }

    fn read_inline(&self, offset: u64, len: u64) -> Bytes {
        let d = &self.inner.inline_data;
        let (o, e) = (offset as usize, (offset + len) as usize);
        if e <= d.len() {
            return d.slice(o..e);
        }
        let mut b = BytesMut::zeroed(len as usize);
        if o < d.len() {
            b[..d.len() - o].copy_from_slice(&d[o..]);
        }
        b.freeze()
    }

    async fn read_pieces(&self, offset: u64, len: u64) -> Result<Bytes, ShardFault> {
        let pieces = file_pieces(&self.inner.extents, offset, len);
        // Holes between extents show the inline base layer (zeros past it).
        let mut pos = offset;
        let futs = pieces.iter().map(|p| {
            let at = pos;
            pos += match p {
                FilePiece::Hole { len } | FilePiece::Data { len, .. } => *len,
            };
            self.read_piece(*p, at)
        });
        let parts = futures::future::try_join_all(futs).await?;
        if parts.len() == 1 {
            return Ok(parts.into_iter().next().expect("one part"));
        }
        let mut out = BytesMut::with_capacity(len as usize);
        for p in parts {
            out.extend_from_slice(&p);
        }
        Ok(out.freeze())
    }

    async fn read_piece(&self, p: FilePiece, at: u64) -> Result<Bytes, ShardFault> {
        match p {
            FilePiece::Hole { len } => Ok(self.read_inline(at, len)),
            FilePiece::Data {
                stripe_id,
                stripe_offset,
                len,
            } => {
                let stripe = self.stripe(stripe_id)?;
                read_stripe_range(
                    &self.inner.sh,
                    &stripe,
                    stripe_offset,
                    len,
                    &self.inner.opts,
                )
                .await
            }
        }
    }

    fn stripe(&self, id: u64) -> Result<Arc<pb::StripeInfo>, ShardFault> {
        self.inner
            .stripes
            .read()
            .expect("stripes lock")
            .get(&id)
            .cloned()
            .ok_or_else(|| ShardFault::Missing(format!("stripe {id} not in the extent reply")))
    }

    fn fault_error(&self, f: ShardFault) -> ClientError {
        match f {
            ShardFault::Unrecoverable {
                stripe_id,
                available,
                needed,
            } => ClientError::Unrecoverable {
                stripe_id,
                available,
                needed,
            },
            other => ClientError::Storage {
                node: "?".into(),
                status: tonic::Status::unavailable(other.to_string()),
            },
        }
    }

    /// Fresh read capabilities for the snapshot's stripes (GetExtents of the same inode).
    async fn renew_caps(&self) -> Result<(), ClientError> {
        let Some(ino) = self.inner.ino else {
            return Err(ClientError::Storage {
                node: "?".into(),
                status: tonic::Status::permission_denied("read capability expired"),
            });
        };
        let req = pb::GetExtentsRequest {
            bucket: self.inner.bucket.clone(),
            ino,
            offset: 0,
            len: 0,
        };
        let r = self.inner.master.get_extents(req).await?;
        let mut g = self.inner.stripes.write().expect("stripes lock");
        for s in r.stripes {
            if g.contains_key(&s.stripe_id) {
                g.insert(s.stripe_id, Arc::new(s));
            }
        }
        Ok(())
    }

    /// Tracks sequential access; when sequential, starts fetching the next stripes into the
    /// cache so the reader finds them there.
    fn note_and_prefetch(&self, offset: u64, len: u64) {
        let depth = self.inner.sh.cfg.prefetch_stripes as u64;
        let step = self.inner.sh.cfg.chunk_size as u64;
        let end = offset + len;
        let (from, to) = {
            let mut s = self.inner.seq.lock().expect("seq lock");
            if offset == s.last_end {
                s.streak += 1;
            } else {
                s.streak = 0;
                s.prefetched_to = 0;
            }
            s.last_end = end;
            if s.streak < 2 || depth == 0 || self.inner.sh.cfg.cache_bytes < depth * step * 2 {
                return;
            }
            let from = s.prefetched_to.max(end);
            let to = (end + depth * step).min(self.inner.size);
            if from >= to || to - from < step / 2 {
                return;
            }
            s.prefetched_to = to;
            (from, to)
        };
        for p in file_pieces(&self.inner.extents, from, to - from) {
            if let FilePiece::Data {
                stripe_id,
                stripe_offset,
                len,
            } = p
            {
                let Ok(stripe) = self.stripe(stripe_id) else {
                    continue;
                };
                // Read-ahead only into free read slots: under load it is dropped, never queued
                // in front of the reads someone waits for.
                let Ok(permit) = self.inner.sh.read_permits.clone().try_acquire_owned() else {
                    break;
                };
                let (sh, opts) = (self.inner.sh.clone(), self.inner.opts.clone());
                sh.cache.note_prefetch(len);
                tokio::spawn(async move {
                    let _ = read_stripe_range(&sh, &stripe, stripe_offset, len, &opts).await;
                    drop(permit);
                });
            }
        }
    }
}
