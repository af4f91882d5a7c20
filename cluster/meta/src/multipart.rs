//! Multipart uploads. Parts hold stripe references through `part_extents`; Complete
//! stitches the chosen parts into the object by extent (offsets shifted, no data
//! copied) and releases the rest; Abort releases all. An upload in progress lives
//! outside the tree, so neither listing nor readdir sees it.
//!
//! Inline parts: only the first part of a completed upload may carry inline data (it
//! becomes the object's inline base layer); the gateway must write other parts as
//! stripes, or Complete fails with InvalidPart.

use crate::error::{MetaError, Result, einval, fail};
use crate::inode::unquote;
use crate::names::parse_key;
use crate::objects::{self, Body};
use crate::objmeta::{self, Owner};
use crate::{bucket_rows, extents};
use kdss_common::rpc_error::errno;
use kdss_proto::master::{
    AbortMultipartRequest, CompleteMultipartRequest, CreateMultipartRequest, Extent, ObjectInfo,
    ObjectPart, PartInfo, PutPartRequest,
};
use sqlx::{Row, SqliteConnection};

/// Smallest size of a part that is not the last one (S3 rule).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Highest part number.
pub const MAX_PART_NUMBER: u32 = 10_000;

fn no_such_upload(id: &str) -> MetaError {
    fail(
        errno::ENOENT,
        "NoSuchUpload",
        format!("upload {id:?} does not exist"),
    )
}

/// The sequence number of an upload of `bucket`/`key`.
pub async fn upload_seq(
    c: &mut SqliteConnection,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<i64> {
    let seq: Option<i64> = sqlx::query_scalar(
        "SELECT seq FROM uploads WHERE upload_id = ? AND bucket = ? AND key = ?",
    )
    .bind(upload_id)
    .bind(bucket)
    .bind(key)
    .fetch_optional(&mut *c)
    .await?;
    seq.ok_or_else(|| no_such_upload(upload_id))
}

/// Starts an upload. The id is derived from the SQL sequence number and the entry, so it
/// is the same on every master.
pub async fn create(
    c: &mut SqliteConnection,
    r: &CreateMultipartRequest,
    now: i64,
    caller: &str,
) -> Result<String> {
    bucket_rows::need_bucket(c, &r.bucket).await?;
    if parse_key(&r.key)?.dir {
        return Err(einval(
            "a key ending in '/' is a directory and cannot be uploaded in parts",
        ));
    }
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO uploads (upload_id, bucket, key, owner, initiated_ns) VALUES ('', ?, ?, ?, ?) \
         RETURNING seq",
    )
    .bind(&r.bucket)
    .bind(&r.key)
    .bind(caller)
    .bind(now)
    .fetch_one(&mut *c)
    .await?;
    use md5::{Digest, Md5};
    let tag = Md5::digest(format!("{}/{}/{seq}/{now}", r.bucket, r.key).as_bytes());
    let id = format!("{seq:010}-{}", hex::encode(&tag[..12]));
    sqlx::query("UPDATE uploads SET upload_id = ? WHERE seq = ?")
        .bind(&id)
        .bind(seq)
        .execute(&mut *c)
        .await?;
    objmeta::write(c, Owner::Upload(seq), &r.meta.clone().unwrap_or_default()).await?;
    Ok(id)
}

async fn drop_part(c: &mut SqliteConnection, seq: i64, part: Option<u32>, now: i64) -> Result<()> {
    // part None = every part: `part_number = ? OR ?` with the flag set.
    let (n, all) = (part.unwrap_or(0) as i64, part.is_none());
    let stripes: Vec<i64> = sqlx::query_scalar(
        "DELETE FROM part_extents WHERE seq = ? AND (part_number = ? OR ?) RETURNING stripe_id",
    )
    .bind(seq)
    .bind(n)
    .bind(all)
    .fetch_all(&mut *c)
    .await?;
    for s in stripes {
        extents::release(c, s as u64, now).await?;
    }
    sqlx::query("DELETE FROM parts WHERE seq = ? AND (part_number = ? OR ?)")
        .bind(seq)
        .bind(n)
        .bind(all)
        .execute(&mut *c)
        .await?;
    objmeta::drop_part_checksums(c, seq, part).await?;
    Ok(())
}

/// Stores a part (replacing an earlier part with the same number).
pub async fn put_part(c: &mut SqliteConnection, r: &PutPartRequest, now: i64) -> Result<PartInfo> {
    let seq = upload_seq(c, &r.bucket, &r.key, &r.upload_id).await?;
    if r.part_number == 0 || r.part_number > MAX_PART_NUMBER {
        return Err(einval(format!(
            "part number must be 1 to {MAX_PART_NUMBER}"
        )));
    }
    if r.inline_data.len() as u64 > r.size {
        return Err(einval("inline data larger than the part size"));
    }
    let list = extents::validate_list(c, Some(&r.bucket), &r.extents, r.size).await?;
    drop_part(c, seq, Some(r.part_number), now).await?;
    let inline = (!r.inline_data.is_empty()).then_some(&r.inline_data);
    let etag = unquote(&r.etag).to_string();
    sqlx::query(
        "INSERT INTO parts (seq, part_number, size, etag, mtime_ns, inline_data) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(seq)
    .bind(r.part_number as i64)
    .bind(r.size as i64)
    .bind(&etag)
    .bind(now)
    .bind(inline)
    .execute(&mut *c)
    .await?;
    for e in &list {
        sqlx::query(
            "INSERT INTO part_extents (seq, part_number, file_offset, len, stripe_id, stripe_offset) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(seq)
        .bind(r.part_number as i64)
        .bind(e.file_offset as i64)
        .bind(e.len as i64)
        .bind(e.stripe_id as i64)
        .bind(e.stripe_offset as i64)
        .execute(&mut *c)
        .await?;
        extents::add_ref(c, e.stripe_id).await?;
    }
    objmeta::put_part_checksums(c, seq, r.part_number, &r.checksums).await?;
    Ok(PartInfo {
        part_number: r.part_number,
        size: r.size,
        etag: format!("\"{etag}\""),
        mtime_ns: now,
    })
}

struct Part {
    size: u64,
    etag: String,
    inline: Option<Vec<u8>>,
}

async fn part(c: &mut SqliteConnection, seq: i64, n: u32) -> Result<Option<Part>> {
    let row =
        sqlx::query("SELECT size, etag, inline_data FROM parts WHERE seq = ? AND part_number = ?")
            .bind(seq)
            .bind(n as i64)
            .fetch_optional(&mut *c)
            .await?;
    row.map(|r| {
        Ok(Part {
            size: r.try_get::<i64, _>("size")? as u64,
            etag: r.try_get("etag")?,
            inline: r.try_get("inline_data")?,
        })
    })
    .transpose()
}

async fn part_extents(c: &mut SqliteConnection, seq: i64, n: u32) -> Result<Vec<Extent>> {
    let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT file_offset, len, stripe_id, stripe_offset FROM part_extents \
         WHERE seq = ? AND part_number = ? ORDER BY file_offset",
    )
    .bind(seq)
    .bind(n as i64)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(o, l, s, so)| Extent {
            file_offset: o as u64,
            len: l as u64,
            stripe_id: s as u64,
            stripe_offset: so as u64,
        })
        .collect())
}

/// The S3 multipart ETag: md5 of the concatenated binary part md5s, then `-N`.
pub fn multipart_etag(part_etags: &[String]) -> String {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    for e in part_etags {
        match hex::decode(unquote(e)) {
            Ok(bin) => h.update(&bin),
            Err(_) => h.update(unquote(e).as_bytes()),
        }
    }
    format!("{}-{}", hex::encode(h.finalize()), part_etags.len())
}

/// Completes an upload: InvalidPartOrder, InvalidPart (unknown part, ETag mismatch, a
/// named part checksum that differs from the one stored at UploadPart, inline data past
/// the first part), EntityTooSmall (a non-last part under 5 MiB). The object records its
/// parts (size, ETag, checksums) for GET ?partNumber, and the checksum the gateway
/// computed over them.
pub async fn complete(
    c: &mut SqliteConnection,
    r: &CompleteMultipartRequest,
    now: i64,
    caller: &str,
) -> Result<ObjectInfo> {
    let b = bucket_rows::need_bucket(c, &r.bucket).await?;
    let seq = upload_seq(c, &r.bucket, &r.key, &r.upload_id).await?;
    let kp = parse_key(&r.key)?;
    if r.parts.is_empty() {
        return Err(fail(
            errno::EINVAL,
            "MalformedXML",
            "CompleteMultipartUpload names no part",
        ));
    }
    for w in r.parts.windows(2) {
        if w[1].part_number <= w[0].part_number {
            return Err(fail(
                errno::EINVAL,
                "InvalidPartOrder",
                "parts must be in ascending order",
            ));
        }
    }
    // Every named part must exist with its ETag (InvalidPart) before sizes are judged.
    let mut found = Vec::with_capacity(r.parts.len());
    for cp in &r.parts {
        let invalid = |why: &str| {
            fail(
                errno::EINVAL,
                "InvalidPart",
                format!("part {}: {why}", cp.part_number),
            )
        };
        let Some(p) = part(c, seq, cp.part_number).await? else {
            return Err(invalid("not uploaded"));
        };
        if unquote(&cp.etag) != p.etag {
            return Err(invalid("ETag does not match"));
        }
        let sums = objmeta::part_checksums(c, seq, cp.part_number).await?;
        for (algo, want) in &cp.checksums {
            if sums.get(algo) != Some(want) {
                return Err(invalid(&format!(
                    "{algo} checksum does not match the one of the uploaded part"
                )));
            }
        }
        found.push((p, sums));
    }
    let mut list = Vec::new();
    let mut etags = Vec::with_capacity(r.parts.len());
    let mut inline = Vec::new();
    let mut offset = 0u64;
    let mut object_parts = Vec::with_capacity(r.parts.len());
    for (i, (cp, (p, sums))) in r.parts.iter().zip(found).enumerate() {
        if i + 1 < r.parts.len() && p.size < MIN_PART_SIZE {
            return Err(fail(
                errno::EINVAL,
                "EntityTooSmall",
                format!(
                    "part {} is {} bytes; all but the last must be >= 5 MiB",
                    cp.part_number, p.size
                ),
            ));
        }
        if let Some(d) = p.inline.filter(|d| !d.is_empty()) {
            if i > 0 {
                return Err(fail(
                    errno::EINVAL,
                    "InvalidPart",
                    format!(
                        "part {}: stored inline; only the first part may be inline",
                        cp.part_number
                    ),
                ));
            }
            inline = d;
        }
        for mut e in part_extents(c, seq, cp.part_number).await? {
            e.file_offset += offset;
            list.push(e);
        }
        object_parts.push(ObjectPart {
            part_number: cp.part_number,
            size: p.size,
            etag: p.etag.clone(),
            checksums: sums,
        });
        etags.push(p.etag);
        offset += p.size;
    }
    let mut meta = objmeta::read(c, Owner::Upload(seq)).await?;
    meta.checksums
        .extend(r.checksums.iter().map(|(k, v)| (k.clone(), v.clone())));
    if !r.checksum_type.is_empty() {
        meta.checksum_type = r.checksum_type.clone();
    }
    meta.parts = object_parts;
    let body = Body {
        extents: list,
        size: offset,
        etag: multipart_etag(&etags),
        inline: &inline,
        meta,
    };
    let info = objects::write_object(c, &b, &r.key, &kp, body, now, caller).await?;
    remove(c, seq, now).await?;
    Ok(info)
}

async fn remove(c: &mut SqliteConnection, seq: i64, now: i64) -> Result<()> {
    drop_part(c, seq, None, now).await?;
    sqlx::query("DELETE FROM upload_meta WHERE seq = ?")
        .bind(seq)
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM uploads WHERE seq = ?")
        .bind(seq)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Aborts an upload: its parts' stripes are released.
pub async fn abort(c: &mut SqliteConnection, r: &AbortMultipartRequest, now: i64) -> Result<()> {
    let seq = upload_seq(c, &r.bucket, &r.key, &r.upload_id).await?;
    remove(c, seq, now).await
}

/// Aborts every upload of a bucket (the bucket is being deleted).
pub async fn abort_all(c: &mut SqliteConnection, bucket: &str, now: i64) -> Result<()> {
    let seqs: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM uploads WHERE bucket = ? ORDER BY seq")
            .bind(bucket)
            .fetch_all(&mut *c)
            .await?;
    for seq in seqs {
        remove(c, seq, now).await?;
    }
    Ok(())
}
