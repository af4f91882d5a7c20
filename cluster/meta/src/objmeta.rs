//! Object metadata (Content-Type and friends, x-amz-meta-*, checksums, the parts of a
//! multipart object) stored as rows, sorted by name, so the state is byte-identical on
//! every master (proto maps are hash maps and would encode in random order).
//!
//! Row kinds: 0 standard headers (and `x-amz-checksum-type`), 1 user metadata, 2 object
//! checksums, 3 parts of a completed multipart object (name = 5-digit position, value =
//! `"<part number> <size> <etag>[ <ALGO>=<base64>]..."`), 4 checksums of an upload's
//! parts (upload owner only; name = `"<5-digit part number>:<ALGO>"`).

use crate::error::Result;
use kdss_proto::master::{ObjectMeta, ObjectPart};
use sqlx::SqliteConnection;
use std::collections::HashMap;

const STD: i64 = 0;
const USER: i64 = 1;
const CHECKSUM: i64 = 2;
const PART: i64 = 3;
/// Checksums of an upload's parts as verified at UploadPart (see [`put_part_checksums`]).
const PART_CHECKSUM: i64 = 4;
/// The STD row holding `ObjectMeta::checksum_type`.
const CHECKSUM_TYPE: &str = "x-amz-checksum-type";

/// Where a metadata set lives: an inode's (`object_meta`) or an upload's (`upload_meta`).
#[derive(Copy, Clone, Debug)]
pub enum Owner {
    /// Metadata of an inode.
    Inode(u64),
    /// Metadata given at CreateMultipart, by upload sequence number.
    Upload(i64),
}

/// The statements for one owner kind: (delete, insert, select) and the id.
struct Sql {
    delete: &'static str,
    insert: &'static str,
    select: &'static str,
    id: i64,
}

impl Owner {
    fn sql(self) -> Sql {
        match self {
            Owner::Inode(i) => Sql {
                delete: "DELETE FROM object_meta WHERE ino = ?",
                insert: "INSERT OR REPLACE INTO object_meta (ino, kind, name, value) VALUES (?, ?, ?, ?)",
                select: "SELECT kind, name, value FROM object_meta WHERE ino = ? ORDER BY kind, name",
                id: i as i64,
            },
            Owner::Upload(s) => Sql {
                delete: "DELETE FROM upload_meta WHERE seq = ?",
                insert: "INSERT OR REPLACE INTO upload_meta (seq, kind, name, value) VALUES (?, ?, ?, ?)",
                select: "SELECT kind, name, value FROM upload_meta WHERE seq = ? ORDER BY kind, name",
                id: s,
            },
        }
    }
}

fn std_fields(m: &ObjectMeta) -> [(&'static str, &str); 7] {
    [
        ("cache-control", &m.cache_control),
        ("content-disposition", &m.content_disposition),
        ("content-encoding", &m.content_encoding),
        ("content-language", &m.content_language),
        ("content-type", &m.content_type),
        ("expires", &m.expires),
        (CHECKSUM_TYPE, &m.checksum_type),
    ]
}

/// Checksums as `ALGO=value` words in name order (deterministic).
fn checksum_words(c: &HashMap<String, String>) -> String {
    let mut v: Vec<_> = c.iter().collect();
    v.sort();
    v.into_iter()
        .map(|(k, v)| format!(" {k}={v}"))
        .collect::<String>()
}

fn part_value(p: &ObjectPart) -> String {
    format!(
        "{} {} {}{}",
        p.part_number,
        p.size,
        p.etag,
        checksum_words(&p.checksums)
    )
}

fn parse_part(value: &str) -> Option<ObjectPart> {
    let mut w = value.split(' ');
    let mut p = ObjectPart {
        part_number: w.next()?.parse().ok()?,
        size: w.next()?.parse().ok()?,
        etag: w.next()?.to_string(),
        ..Default::default()
    };
    for word in w {
        let (k, v) = word.split_once('=')?;
        p.checksums.insert(k.to_string(), v.to_string());
    }
    Some(p)
}

/// Replaces the metadata of `owner` with `m`.
pub async fn write(c: &mut SqliteConnection, owner: Owner, m: &ObjectMeta) -> Result<()> {
    let sql = owner.sql();
    let id = sql.id;
    sqlx::query(sql.delete).bind(id).execute(&mut *c).await?;
    let mut rows: Vec<(i64, &str, &str)> = Vec::new();
    rows.extend(
        std_fields(m)
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (STD, k, v)),
    );
    rows.extend(m.user.iter().map(|(k, v)| (USER, k.as_str(), v.as_str())));
    rows.extend(
        m.checksums
            .iter()
            .map(|(k, v)| (CHECKSUM, k.as_str(), v.as_str())),
    );
    let parts: Vec<(String, String)> = m
        .parts
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("{:05}", i + 1), part_value(p)))
        .collect();
    rows.extend(parts.iter().map(|(n, v)| (PART, n.as_str(), v.as_str())));
    rows.sort();
    for (kind, name, value) in rows {
        sqlx::query(sql.insert)
            .bind(id)
            .bind(kind)
            .bind(name)
            .bind(value)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

fn part_checksum_name(part: u32, algo: &str) -> String {
    format!("{part:05}:{algo}")
}

/// Records the checksums of upload part `part` (replacing earlier ones of that number).
pub async fn put_part_checksums(
    c: &mut SqliteConnection,
    seq: i64,
    part: u32,
    checksums: &HashMap<String, String>,
) -> Result<()> {
    drop_part_checksums(c, seq, Some(part)).await?;
    let mut v: Vec<_> = checksums.iter().collect();
    v.sort();
    for (algo, value) in v {
        sqlx::query(
            "INSERT OR REPLACE INTO upload_meta (seq, kind, name, value) VALUES (?, ?, ?, ?)",
        )
        .bind(seq)
        .bind(PART_CHECKSUM)
        .bind(part_checksum_name(part, algo))
        .bind(value)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

/// Forgets the checksums of one part of an upload, or of all its parts (`None`).
pub async fn drop_part_checksums(
    c: &mut SqliteConnection,
    seq: i64,
    part: Option<u32>,
) -> Result<()> {
    let pattern = match part {
        Some(n) => format!("{n:05}:%"),
        None => "%".to_string(),
    };
    sqlx::query("DELETE FROM upload_meta WHERE seq = ? AND kind = ? AND name LIKE ?")
        .bind(seq)
        .bind(PART_CHECKSUM)
        .bind(pattern)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// The checksums recorded for upload part `part`.
pub async fn part_checksums(
    c: &mut SqliteConnection,
    seq: i64,
    part: u32,
) -> Result<HashMap<String, String>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, value FROM upload_meta WHERE seq = ? AND kind = ? AND name LIKE ? \
         ORDER BY name",
    )
    .bind(seq)
    .bind(PART_CHECKSUM)
    .bind(format!("{part:05}:%"))
    .fetch_all(&mut *c)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(n, v)| Some((n.split_once(':')?.1.to_string(), v)))
        .collect())
}

/// Reads the metadata of `owner` (empty when none was stored).
pub async fn read(c: &mut SqliteConnection, owner: Owner) -> Result<ObjectMeta> {
    let sql = owner.sql();
    let rows: Vec<(i64, String, String)> = sqlx::query_as(sql.select)
        .bind(sql.id)
        .fetch_all(&mut *c)
        .await?;
    let mut m = ObjectMeta::default();
    for (kind, name, value) in rows {
        match (kind, name.as_str()) {
            (STD, "cache-control") => m.cache_control = value,
            (STD, "content-disposition") => m.content_disposition = value,
            (STD, "content-encoding") => m.content_encoding = value,
            (STD, "content-language") => m.content_language = value,
            (STD, "content-type") => m.content_type = value,
            (STD, "expires") => m.expires = value,
            (STD, CHECKSUM_TYPE) => m.checksum_type = value,
            (USER, _) => {
                m.user.insert(name, value);
            }
            (CHECKSUM, _) => {
                m.checksums.insert(name, value);
            }
            (PART, _) => m.parts.extend(parse_part(&value)),
            _ => {}
        }
    }
    Ok(m)
}
