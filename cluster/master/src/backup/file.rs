//! Backup files: taking a consistent copy of the applied namespace, writing it behind its
//! header, reading a header back, and the scheduled backups' directory (names, listing,
//! retention).

use super::BackupError;
use crate::raft::StateMachine;
use kdss_format::BackupHeader;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Bytes per read when checksumming or streaming a body.
pub const CHUNK: usize = 1 << 20;
/// Scheduled backups are `meta-<created ms>-<index>.kbak`: sorting names sorts by time.
const PREFIX: &str = "meta-";
/// File name suffix of backup files.
pub const SUFFIX: &str = ".kbak";

/// A copy of the namespace taken for a backup, with its header; the staged copy (in the
/// master's data directory) is deleted when this is dropped.
#[derive(Debug)]
pub struct Taken {
    /// The header to write before the body.
    pub header: BackupHeader,
    /// The staged database copy: the body.
    pub body: PathBuf,
}

impl Drop for Taken {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.body);
    }
}

/// Copies the applied namespace of `sm` (the snapshot mechanism: `VACUUM INTO`, writers go
/// on) and checksums the copy. The header names `cluster_id` and the Raft log id the copy
/// contains, read from the copy itself.
pub async fn take(sm: &StateMachine, cluster_id: &str) -> Result<Taken, BackupError> {
    let body = sm
        .dir()
        .join(format!("backup-staging-{:016x}.db", rand::random::<u64>()));
    let meta = match sm.copy_to(&body).await {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_file(&body);
            return Err(BackupError::Database {
                what: "copy the namespace (VACUUM INTO)".into(),
                message: e.to_string(),
            });
        }
    };
    // From here on the copy is removed on every path.
    let mut taken = Taken {
        header: BackupHeader {
            cluster_id: cluster_id.to_string(),
            applied_index: 0,
            applied_term: 0,
            applied_leader: 0,
            created_ms: kdss_common::time::now_ms(),
            body_len: 0,
            body_crc: 0,
        },
        body,
    };
    if let Some(l) = meta.last_log_id {
        taken.header.applied_index = l.index;
        taken.header.applied_term = l.leader_id.term;
        taken.header.applied_leader = l.leader_id.node_id;
    }
    let path = taken.body.clone();
    let (len, crc) = tokio::task::spawn_blocking(move || checksum(&path))
        .await
        .map_err(|e| BackupError::Database {
            what: "checksum the copy".into(),
            message: e.to_string(),
        })??;
    taken.header.body_len = len;
    taken.header.body_crc = crc;
    Ok(taken)
}

/// Length and crc32c of a whole file.
fn checksum(path: &Path) -> Result<(u64, u32), BackupError> {
    let mut f =
        std::fs::File::open(path).map_err(BackupError::io(format!("open {}", path.display())))?;
    crc_stream(&mut f, path, |_| Ok(()))
}

/// Reads `src` (the file at `path`, named in errors) to its end, handing each piece to
/// `sink`; returns the length and crc32c of all it read. The one loop behind taking,
/// verifying and restoring a backup body.
pub(super) fn crc_stream(
    src: &mut impl Read,
    path: &Path,
    mut sink: impl FnMut(&[u8]) -> Result<(), BackupError>,
) -> Result<(u64, u32), BackupError> {
    let mut buf = vec![0u8; CHUNK];
    let (mut len, mut crc) = (0u64, 0u32);
    loop {
        let n = src
            .read(&mut buf)
            .map_err(BackupError::io(format!("read {}", path.display())))?;
        if n == 0 {
            return Ok((len, crc));
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        len += n as u64;
        sink(&buf[..n])?;
    }
}

impl Taken {
    /// Writes the backup file at `dest` (through `dest.part`, fsynced, then renamed, so a
    /// crash never leaves a half file under the final name).
    pub fn write_to(&self, dest: &Path) -> Result<u64, BackupError> {
        let header = self
            .header
            .encode()
            .map_err(|source| BackupError::Corrupt {
                path: dest.to_path_buf(),
                source,
            })?;
        let part = dest.with_extension("part");
        let out = (|| -> std::io::Result<u64> {
            // 0600: a backup holds every user's secret key.
            let mut f = kdss_common::private_file::create(&part).map_err(|e| e.source)?;
            f.write_all(&header)?;
            let copied = std::io::copy(&mut std::fs::File::open(&self.body)?, &mut f)?;
            f.sync_all()?;
            Ok(header.len() as u64 + copied)
        })();
        let size = match out {
            Ok(n) => n,
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                return Err(BackupError::io(format!("write {}", part.display()))(e));
            }
        };
        std::fs::rename(&part, dest).map_err(BackupError::io(format!(
            "rename {} to {}",
            part.display(),
            dest.display()
        )))?;
        if let Some(dir) = dest.parent().and_then(|d| std::fs::File::open(d).ok()) {
            let _ = dir.sync_all();
        }
        Ok(size)
    }
}

/// Reads and checks a backup file's header and body (length and crc32c), without writing
/// anything. The error names the file and what is wrong.
pub fn verify(path: &Path) -> Result<BackupHeader, BackupError> {
    let mut f =
        std::fs::File::open(path).map_err(BackupError::io(format!("open {}", path.display())))?;
    let header = read_header(path, &mut f)?;
    let (len, crc) = crc_stream(&mut f, path, |_| Ok(()))?;
    header
        .check_body(len, crc)
        .map_err(|source| BackupError::Corrupt {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(header)
}

/// Decodes the header at the start of `f` and leaves `f` at the body's first byte.
pub fn read_header(path: &Path, f: &mut std::fs::File) -> Result<BackupHeader, BackupError> {
    use std::io::Seek;
    let mut head = Vec::with_capacity(kdss_format::backup::MAX_HEADER);
    Read::by_ref(f)
        .take(kdss_format::backup::MAX_HEADER as u64)
        .read_to_end(&mut head)
        .map_err(BackupError::io(format!("read {}", path.display())))?;
    let header = BackupHeader::decode(&head).map_err(|source| BackupError::Corrupt {
        path: path.to_path_buf(),
        source,
    })?;
    f.seek(std::io::SeekFrom::Start(header.len() as u64))
        .map_err(BackupError::io(format!("seek {}", path.display())))?;
    Ok(header)
}

/// The file name of a scheduled backup.
pub fn scheduled_name(h: &BackupHeader) -> String {
    format!("{PREFIX}{:013}-{}{SUFFIX}", h.created_ms, h.applied_index)
}

/// One backup file in a directory, as `kdss-cli meta backups` lists it.
#[derive(Debug, Clone)]
pub struct BackupInfo {
    /// File name.
    pub name: String,
    /// File size in bytes.
    pub size: u64,
    /// Its header, or why it could not be read.
    pub header: Result<BackupHeader, String>,
}

/// The scheduled backups in `dir`, newest first (headers read, bodies not checked).
pub fn list(dir: &Path) -> Result<Vec<BackupInfo>, BackupError> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(BackupError::io(format!("list {}", dir.display()))(e)),
    };
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !(name.starts_with(PREFIX) && name.ends_with(SUFFIX)) {
            continue;
        }
        let path = entry.path();
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        let header = std::fs::File::open(&path)
            .map_err(|e| e.to_string())
            .and_then(|mut f| read_header(&path, &mut f).map_err(|e| e.to_string()));
        out.push(BackupInfo { name, size, header });
    }
    out.sort_by(|a, b| b.name.cmp(&a.name));
    Ok(out)
}

/// Deletes the oldest scheduled backups in `dir` beyond the newest `keep` readable ones;
/// returns the names deleted. A file whose header cannot be read neither counts as kept
/// nor is deleted: `kdss-cli meta backups` shows it with the reason, for a person to judge.
pub fn prune(dir: &Path, keep: usize) -> Result<Vec<String>, BackupError> {
    let mut gone = Vec::new();
    let readable = list(dir)?.into_iter().filter(|b| b.header.is_ok());
    for old in readable.skip(keep) {
        let p = dir.join(&old.name);
        std::fs::remove_file(&p).map_err(BackupError::io(format!("delete {}", p.display())))?;
        gone.push(old.name);
    }
    Ok(gone)
}
