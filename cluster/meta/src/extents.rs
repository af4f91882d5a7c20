//! Extent maps and stripe reference counts. A file's content is `(file_offset, len) →
//! (stripe, stripe_offset)`; writes never change a stripe, they overlay new extents and
//! trim or split the ones they cover. Every extent row (of a file or of a multipart part)
//! holds one reference on its stripe; a committed stripe whose count drops to zero goes
//! to `gc_stripes`, from which the GC deletes its shards.

use crate::error::{Result, einval, fail};
use kdss_common::rpc_error::errno;
use kdss_proto::master::{Extent, ShardLocation, StripeInfo};
use sqlx::{Row, SqliteConnection};

fn extent_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<Extent> {
    Ok(Extent {
        file_offset: r.try_get::<i64, _>("file_offset")? as u64,
        len: r.try_get::<i64, _>("len")? as u64,
        stripe_id: r.try_get::<i64, _>("stripe_id")? as u64,
        stripe_offset: r.try_get::<i64, _>("stripe_offset")? as u64,
    })
}

/// Checks that an extent names a live stripe (of `bucket` when given: a copy may share
/// stripes across buckets) and stays inside the stripe's data.
pub async fn validate(c: &mut SqliteConnection, bucket: Option<&str>, e: &Extent) -> Result<()> {
    if e.len == 0 {
        return Err(einval("extent of length 0"));
    }
    if e.file_offset
        .checked_add(e.len)
        .is_none_or(|end| end > i64::MAX as u64)
    {
        return Err(fail(
            errno::EFBIG,
            "InvalidArgument",
            "extent beyond the largest file size",
        ));
    }
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT bucket, data_len FROM stripes WHERE stripe_id = ? \
         AND stripe_id NOT IN (SELECT stripe_id FROM gc_stripes)",
    )
    .bind(e.stripe_id as i64)
    .fetch_optional(&mut *c)
    .await?;
    let Some((b, data_len)) = row else {
        return Err(fail(
            errno::EINVAL,
            "InvalidStripe",
            format!("stripe {} is not live", e.stripe_id),
        ));
    };
    if bucket.is_some_and(|want| want != b) {
        return Err(fail(
            errno::EINVAL,
            "InvalidStripe",
            format!("stripe {} belongs to another bucket", e.stripe_id),
        ));
    }
    if e.stripe_offset.saturating_add(e.len) > data_len as u64 {
        return Err(fail(
            errno::EINVAL,
            "InvalidStripe",
            format!(
                "extent goes past the {data_len} data bytes of stripe {}",
                e.stripe_id
            ),
        ));
    }
    Ok(())
}

/// Checks a whole extent list for one object or part: each valid, none overlapping,
/// all inside `size`. Returns them sorted by offset.
pub async fn validate_list(
    c: &mut SqliteConnection,
    bucket: Option<&str>,
    list: &[Extent],
    size: u64,
) -> Result<Vec<Extent>> {
    let mut sorted = list.to_vec();
    sorted.sort_by_key(|e| e.file_offset);
    let mut end = 0;
    for e in &sorted {
        validate(c, bucket, e).await?;
        if e.file_offset < end {
            return Err(einval("extents overlap"));
        }
        end = e.file_offset + e.len;
    }
    if end > size {
        return Err(einval(format!(
            "extents reach {end}, beyond the size {size}"
        )));
    }
    Ok(sorted)
}

/// Takes one reference on a stripe (and marks it committed).
pub async fn add_ref(c: &mut SqliteConnection, stripe: u64) -> Result<()> {
    sqlx::query("UPDATE stripes SET refcount = refcount + 1, committed = 1 WHERE stripe_id = ?")
        .bind(stripe as i64)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Drops one reference; at zero the stripe goes to `gc_stripes`.
pub async fn release(c: &mut SqliteConnection, stripe: u64, now: i64) -> Result<()> {
    let left: Option<i64> = sqlx::query_scalar(
        "UPDATE stripes SET refcount = refcount - 1 WHERE stripe_id = ? RETURNING refcount",
    )
    .bind(stripe as i64)
    .fetch_optional(&mut *c)
    .await?;
    if left == Some(0) {
        sqlx::query(
            "INSERT OR IGNORE INTO gc_stripes (stripe_id, bucket, released_ns) \
             SELECT stripe_id, bucket, ? FROM stripes WHERE stripe_id = ?",
        )
        .bind(now)
        .bind(stripe as i64)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

/// Inserts an extent row and takes its stripe reference.
pub async fn insert(c: &mut SqliteConnection, ino: u64, e: &Extent) -> Result<()> {
    sqlx::query(
        "INSERT INTO extents (ino, file_offset, len, stripe_id, stripe_offset) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(ino as i64)
    .bind(e.file_offset as i64)
    .bind(e.len as i64)
    .bind(e.stripe_id as i64)
    .bind(e.stripe_offset as i64)
    .execute(&mut *c)
    .await?;
    add_ref(c, e.stripe_id).await
}

async fn delete_row(c: &mut SqliteConnection, ino: u64, offset: u64) -> Result<()> {
    sqlx::query("DELETE FROM extents WHERE ino = ? AND file_offset = ?")
        .bind(ino as i64)
        .bind(offset as i64)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// The extents of `ino` overlapping `[start, end)`, by offset (two index range scans:
/// the one starting at or before `start`, then those starting inside).
pub async fn overlapping(
    c: &mut SqliteConnection,
    ino: u64,
    start: u64,
    end: u64,
) -> Result<Vec<Extent>> {
    let mut out = Vec::new();
    let first = sqlx::query(
        "SELECT * FROM extents WHERE ino = ? AND file_offset <= ? ORDER BY file_offset DESC LIMIT 1",
    )
    .bind(ino as i64)
    .bind(start as i64)
    .fetch_optional(&mut *c)
    .await?;
    if let Some(r) = first {
        let e = extent_from_row(&r)?;
        if e.file_offset + e.len > start {
            out.push(e);
        }
    }
    let rows = sqlx::query(
        "SELECT * FROM extents WHERE ino = ? AND file_offset > ? AND file_offset < ? \
         ORDER BY file_offset",
    )
    .bind(ino as i64)
    .bind(start as i64)
    .bind(end.min(i64::MAX as u64) as i64)
    .fetch_all(&mut *c)
    .await?;
    for r in &rows {
        out.push(extent_from_row(r)?);
    }
    Ok(out)
}

/// Removes whatever covers `[start, end)` of the file: covered extents are dropped (their
/// reference released), extents crossing an edge are trimmed, one spanning the whole
/// range is split in two (the new piece takes a reference).
pub async fn punch(
    c: &mut SqliteConnection,
    ino: u64,
    start: u64,
    end: u64,
    now: i64,
) -> Result<()> {
    for e in overlapping(c, ino, start, end).await? {
        let (es, ee) = (e.file_offset, e.file_offset + e.len);
        let right = (ee > end).then(|| Extent {
            file_offset: end,
            len: ee - end,
            stripe_id: e.stripe_id,
            stripe_offset: e.stripe_offset + (end - es),
        });
        if es < start {
            sqlx::query("UPDATE extents SET len = ? WHERE ino = ? AND file_offset = ?")
                .bind((start - es) as i64)
                .bind(ino as i64)
                .bind(es as i64)
                .execute(&mut *c)
                .await?;
            if let Some(r) = right {
                insert(c, ino, &r).await?;
            }
        } else {
            delete_row(c, ino, es).await?;
            if let Some(r) = right {
                insert(c, ino, &r).await?;
            }
            release(c, e.stripe_id, now).await?;
        }
    }
    Ok(())
}

/// Overlays one extent onto the file's map.
pub async fn overlay(c: &mut SqliteConnection, ino: u64, e: &Extent, now: i64) -> Result<()> {
    punch(c, ino, e.file_offset, e.file_offset + e.len, now).await?;
    insert(c, ino, e).await
}

/// Drops every extent at or beyond `size` (trimming the one that crosses it).
pub async fn truncate(c: &mut SqliteConnection, ino: u64, size: u64, now: i64) -> Result<()> {
    punch(c, ino, size, i64::MAX as u64, now).await
}

/// Drops all extents of a file (it is being freed or replaced).
pub async fn drop_all(c: &mut SqliteConnection, ino: u64, now: i64) -> Result<()> {
    let stripes: Vec<i64> =
        sqlx::query_scalar("DELETE FROM extents WHERE ino = ? RETURNING stripe_id")
            .bind(ino as i64)
            .fetch_all(&mut *c)
            .await?;
    for s in stripes {
        release(c, s as u64, now).await?;
    }
    Ok(())
}

/// Every extent of a file, by offset.
pub async fn all(c: &mut SqliteConnection, ino: u64) -> Result<Vec<Extent>> {
    let rows = sqlx::query("SELECT * FROM extents WHERE ino = ? ORDER BY file_offset")
        .bind(ino as i64)
        .fetch_all(&mut *c)
        .await?;
    rows.iter().map(extent_from_row).collect()
}

/// A stripe with its shard placement (node_id, disk_id; no caps, no addresses).
pub async fn stripe_info(c: &mut SqliteConnection, id: u64) -> Result<Option<StripeInfo>> {
    let row: Option<(i64, i64, i64, i64)> =
        sqlx::query_as("SELECT k, m, shard_len, data_len FROM stripes WHERE stripe_id = ?")
            .bind(id as i64)
            .fetch_optional(&mut *c)
            .await?;
    let Some((k, m, shard_len, data_len)) = row else {
        return Ok(None);
    };
    let shards: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT shard_index, node_id, disk_id FROM stripe_shards WHERE stripe_id = ? \
         ORDER BY shard_index",
    )
    .bind(id as i64)
    .fetch_all(&mut *c)
    .await?;
    Ok(Some(StripeInfo {
        stripe_id: id,
        k: k as u32,
        m: m as u32,
        shard_len: shard_len as u64,
        data_len: data_len as u64,
        shards: shards
            .into_iter()
            .map(|(i, node_id, disk)| ShardLocation {
                shard_index: i as u32,
                node_id,
                node_addr: String::new(),
                disk_id: disk as u64,
                cap: None,
                ..Default::default()
            })
            .collect(),
    }))
}

/// The distinct stripes a list of extents names, by id.
pub async fn stripes_of(c: &mut SqliteConnection, list: &[Extent]) -> Result<Vec<StripeInfo>> {
    let mut ids: Vec<u64> = list.iter().map(|e| e.stripe_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(s) = stripe_info(c, id).await? {
            out.push(s);
        }
    }
    Ok(out)
}
