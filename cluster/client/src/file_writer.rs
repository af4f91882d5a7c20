//! Random-access writer (ksfs): writes land in a map of dirty byte runs; a run that covers a
//! whole chunk of the chunk grid (file offsets multiple of chunk_size) is written as a stripe
//! at once, so sequential writes stream; everything else waits for `flush` or for the write
//! window to fill. `flush` makes every byte durable and commits the extents (CommitWrite)
//! in one call: overwrites and appends are new stripes remapped over the old ranges.
//!
//! Dirty bytes count against the client's write budget (`crate::write_budget`) only while
//! it has room for them; when it has none, the writer sends its runs as stripes at once,
//! which wait for room, so buffered bytes stay within the budget across all open files.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::BytesMut;
use kdss_common::limits::INLINE_NOT_POSSIBLE;
use kdss_proto::master as pb;

use crate::layout::normalize_extents;
use crate::stripe_write::Pipeline;
use crate::write_budget::WriteBudget;
use crate::{Client, ClientError};

/// Durable extents kept uncommitted at most; past this a write commits them early.
const MAX_UNCOMMITTED_EXTENTS: usize = 1024;

/// Random-access writer (ksfs): buffered writes, durable on `flush`.
pub struct FileWriter {
    client: Client,
    bucket: String,
    ino: u64,
    /// Non-overlapping, non-adjacent dirty runs by file offset.
    dirty: BTreeMap<u64, BytesMut>,
    dirty_bytes: u64,
    /// Bytes of the client's write budget this writer holds for its dirty runs
    /// (`dirty_bytes` or fewer while it is sending them).
    held: u64,
    budget: Arc<WriteBudget>,
    pipeline: Pipeline,
    chunk_size: u64,
    window: u64,
    /// The master refused inline bytes for this file once (it has extents); stop asking.
    inline_refused: bool,
}

impl FileWriter {
    pub(crate) fn new(client: &Client, bucket: &str, ino: u64) -> FileWriter {
        let cfg = &client.shared.cfg;
        FileWriter {
            pipeline: Pipeline::new(client.shared.clone(), client.master.clone(), bucket.into()),
            client: client.clone(),
            bucket: bucket.to_string(),
            ino,
            dirty: BTreeMap::new(),
            dirty_bytes: 0,
            held: 0,
            budget: client.shared.write_budget.clone(),
            chunk_size: cfg.chunk_size.max(1) as u64,
            window: cfg.write_window_bytes.max(cfg.chunk_size as u64),
            inline_refused: false,
        }
    }

    /// Buffers `data` at `offset`; may write stripes early when the window fills.
    pub async fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), ClientError> {
        if data.is_empty() {
            return Ok(());
        }
        let key = self.insert(offset, data);
        self.send_full_chunks(key).await?;
        if self.dirty_bytes + self.pipeline.inflight_bytes() > self.window {
            self.send_all().await?;
        }
        if !self.hold_dirty() {
            // No room to keep them buffered: send them as stripes, which wait for room
            // (waiting here instead could wait forever on idle files' buffers).
            self.send_all().await?;
        }
        if self.pipeline.done.len() >= MAX_UNCOMMITTED_EXTENTS {
            self.commit().await?;
        }
        Ok(())
    }

    /// Makes everything written so far durable and commits it; returns the new attributes.
    pub async fn flush(&mut self) -> Result<pb::Attr, ClientError> {
        if let Some(a) = self.commit_inline().await? {
            return Ok(a);
        }
        self.send_all().await?;
        self.pipeline.drain().await?;
        match self.commit().await? {
            Some(a) => Ok(a),
            None => {
                let req = pb::GetAttrRequest {
                    bucket: self.bucket.clone(),
                    ino: self.ino,
                };
                let r = self.client.master.get_attr(req).await?;
                r.attr
                    .ok_or_else(|| ClientError::Internal("GetAttr without attributes".into()))
            }
        }
    }

    /// Bytes buffered and not yet durable.
    pub fn pending_bytes(&self) -> u64 {
        self.dirty_bytes + self.pipeline.inflight_bytes()
    }

    /// The most stripes this writer has had in flight at once: the pipeline keeps it within
    /// the write window in whole chunks, however small the writes (diagnostics and tests).
    pub fn peak_stripes_in_flight(&self) -> usize {
        self.pipeline.peak_stripes
    }

    /// Forgets buffered bytes at or past `size` (call before truncating the file, then
    /// `flush`, then SetAttr size): nothing written past the new end gets committed.
    pub async fn discard_from(&mut self, size: u64) -> Result<(), ClientError> {
        let keys: Vec<u64> = self.dirty.keys().copied().collect();
        for k in keys {
            let run = self.dirty.get_mut(&k).expect("key just listed");
            let end = k + run.len() as u64;
            if k >= size {
                self.dirty_bytes -= run.len() as u64;
                self.dirty.remove(&k);
            } else if end > size {
                self.dirty_bytes -= end - size;
                run.truncate((size - k) as usize);
            }
        }
        self.release_unused();
        self.pipeline.drain().await?;
        self.pipeline.done.retain_mut(|e| {
            e.len = e.len.min(size.saturating_sub(e.file_offset));
            e.len > 0
        });
        Ok(())
    }

    /// Holds budget bytes for every dirty byte; false when more are needed and the budget
    /// has no room for them now. Gives back what is held beyond the dirty bytes.
    fn hold_dirty(&mut self) -> bool {
        if self.dirty_bytes > self.held {
            let more = self.dirty_bytes - self.held;
            if !self.budget.try_hold(more) {
                return false;
            }
            self.held += more;
        }
        self.release_unused();
        true
    }

    /// Gives back budget bytes held for dirty bytes that are gone (sent, discarded).
    fn release_unused(&mut self) {
        if self.held > self.dirty_bytes {
            self.budget.release_held(self.held - self.dirty_bytes);
            self.held = self.dirty_bytes;
        }
    }

    /// Puts `data` into the dirty map; returns the key of the run that now holds it.
    fn insert(&mut self, offset: u64, data: &[u8]) -> u64 {
        let end = offset + data.len() as u64;
        // Runs overlapping or touching [offset, end].
        let touched: Vec<u64> = self
            .dirty
            .range(..=end)
            .rev()
            .take_while(|(s, r)| *s + r.len() as u64 >= offset)
            .map(|(s, _)| *s)
            .collect();
        // Common case: extend the one run that starts at or before `offset` in place.
        if let [s] = touched[..]
            && s <= offset
        {
            let run = self.dirty.get_mut(&s).expect("key just seen");
            let old = run.len() as u64;
            let new_len = (end - s).max(old);
            if new_len > old {
                // Grow to the chunk-grid boundary at once: a sequential writer then fills
                // one allocation per chunk instead of reallocating on every write.
                let grid_end = (s + new_len).div_ceil(self.chunk_size) * self.chunk_size;
                if run.capacity() < new_len as usize {
                    run.reserve((grid_end - s) as usize - run.len());
                }
                run.resize(new_len as usize, 0);
                self.dirty_bytes += new_len - old;
            }
            let at = (offset - s) as usize;
            run[at..at + data.len()].copy_from_slice(data);
            return s;
        }
        let start = touched.iter().copied().min().unwrap_or(offset).min(offset);
        let mut last_end = end;
        for s in &touched {
            last_end = last_end.max(s + self.dirty[s].len() as u64);
        }
        let grid_end = last_end.div_ceil(self.chunk_size) * self.chunk_size;
        let want = (last_end - start).max(64 << 10) * 2;
        let mut buf = BytesMut::with_capacity((grid_end - start).min(want) as usize);
        buf.resize((last_end - start) as usize, 0);
        for s in touched {
            let run = self.dirty.remove(&s).expect("key just seen");
            self.dirty_bytes -= run.len() as u64;
            let at = (s - start) as usize;
            buf[at..at + run.len()].copy_from_slice(&run);
        }
        let at = (offset - start) as usize;
        buf[at..at + data.len()].copy_from_slice(data);
        self.dirty_bytes += buf.len() as u64;
        self.dirty.insert(start, buf);
        start
    }

    /// Sends the grid-aligned whole chunks at the front of run `key`.
    async fn send_full_chunks(&mut self, key: u64) -> Result<(), ClientError> {
        let mut key = key;
        loop {
            let Some(run) = self.dirty.get(&key) else {
                return Ok(());
            };
            let grid = (key / self.chunk_size + 1) * self.chunk_size;
            if key + (run.len() as u64) < grid {
                return Ok(());
            }
            let mut run = self.dirty.remove(&key).expect("key just seen");
            let piece = run.split_to((grid - key) as usize).freeze();
            self.dirty_bytes -= piece.len() as u64;
            if !run.is_empty() {
                self.dirty.insert(grid, run);
            }
            self.release_unused();
            self.pipeline.submit(key, piece).await?;
            key = grid;
        }
    }

    /// Sends every dirty byte, cut at the chunk grid.
    async fn send_all(&mut self) -> Result<(), ClientError> {
        while let Some((start, mut run)) = self.dirty.pop_first() {
            self.dirty_bytes -= run.len() as u64;
            self.release_unused();
            let mut pos = start;
            while !run.is_empty() {
                let grid = (pos / self.chunk_size + 1) * self.chunk_size;
                let n = ((grid - pos) as usize).min(run.len());
                let piece = run.split_to(n).freeze();
                self.pipeline.submit(pos, piece).await?;
                pos += n as u64;
            }
        }
        Ok(())
    }

    /// Small files: when everything pending is one run that ends within the inline
    /// threshold, it goes to the master in the CommitWrite itself (one replicated metadata
    /// write instead of k+m shard writes and two metadata writes). None when this write is
    /// not a candidate or the master cannot keep it inline (then stripes are written).
    async fn commit_inline(&mut self) -> Result<Option<pb::Attr>, ClientError> {
        let limit = self.client.shared.cfg.inline_threshold as u64;
        if limit == 0
            || self.inline_refused
            || self.dirty.len() != 1
            || !self.pipeline.done.is_empty()
            || self.pipeline.inflight_bytes() > 0
        {
            return Ok(None);
        }
        let (&start, run) = self.dirty.first_key_value().expect("one run");
        if start + run.len() as u64 > limit {
            return Ok(None);
        }
        let req = pb::CommitWriteRequest {
            bucket: self.bucket.clone(),
            ino: self.ino,
            mtime_ns: kdss_common::time::now_ns(),
            inline_data: run.to_vec(),
            inline_offset: start,
            ..Default::default()
        };
        let r = self.client.master.commit_write(req).await;
        match r {
            Ok(r) => {
                self.dirty.clear();
                self.dirty_bytes = 0;
                self.release_unused();
                Ok(r.attr)
            }
            Err(e) if e.code() == Some(INLINE_NOT_POSSIBLE) => {
                self.inline_refused = true;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Commits the durable extents not yet committed, in one CommitWrite.
    async fn commit(&mut self) -> Result<Option<pb::Attr>, ClientError> {
        if self.pipeline.done.is_empty() {
            return Ok(None);
        }
        let extents = normalize_extents(&self.pipeline.done);
        let req = pb::CommitWriteRequest {
            bucket: self.bucket.clone(),
            ino: self.ino,
            extents,
            mtime_ns: kdss_common::time::now_ns(),
            ..Default::default()
        };
        let r = self.client.master.commit_write(req).await?;
        self.pipeline.done.clear();
        Ok(r.attr)
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        // Unflushed runs are dropped with the writer (the caller flushes first).
        self.dirty_bytes = 0;
        self.release_unused();
    }
}
