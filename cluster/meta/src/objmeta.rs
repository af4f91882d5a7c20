//! Object metadata (Content-Type and friends, x-amz-meta-*, checksums) stored as rows,
//! sorted by name, so the state is byte-identical on every master (proto maps are hash
//! maps and would encode in random order).

use crate::error::Result;
use kdss_proto::master::ObjectMeta;
use sqlx::SqliteConnection;

const STD: i64 = 0;
const USER: i64 = 1;
const CHECKSUM: i64 = 2;

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

fn std_fields(m: &ObjectMeta) -> [(&'static str, &str); 6] {
    [
        ("cache-control", &m.cache_control),
        ("content-disposition", &m.content_disposition),
        ("content-encoding", &m.content_encoding),
        ("content-language", &m.content_language),
        ("content-type", &m.content_type),
        ("expires", &m.expires),
    ]
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
            (USER, _) => {
                m.user.insert(name, value);
            }
            (CHECKSUM, _) => {
                m.checksums.insert(name, value);
            }
            _ => {}
        }
    }
    Ok(m)
}
