//! `kdss-cli meta backup --out FILE | backups`: metadata backups. `backup` streams a
//! consistent copy of the namespace from the leader into FILE (checked against its own
//! header before it gets its final name); `backups` lists the leader's scheduled ones.

use crate::commands::connect;
use crate::settings::Settings;
use crate::trash::utc;
use crate::view::{self, View};
use anyhow::Context;
use clap::Subcommand;
use kdss_format::BackupHeader;
use kdss_format::backup::MAX_HEADER;
use kdss_proto::master as pb;
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `meta` subcommands.
#[derive(Subcommand)]
pub enum MetaCmd {
    /// Take an online backup of the namespace (admin only) into FILE; restore it with
    /// `kdss master restore -c master.toml --from FILE`.
    Backup {
        /// Where to write the backup (replaced if it exists, only once complete).
        #[arg(long)]
        out: PathBuf,
    },
    /// The scheduled backups ([backup] in master.toml) on the leader's disk.
    Backups,
}

/// Runs a `meta` subcommand.
pub async fn meta(s: &Settings, cmd: MetaCmd) -> anyhow::Result<View> {
    match cmd {
        MetaCmd::Backup { out } => backup(s, &out).await,
        MetaCmd::Backups => backups(s).await,
    }
}

/// The bytes of a backup as they arrive: header first, then the body's length and crc.
struct Receiver {
    file: std::fs::File,
    head: Vec<u8>,
    header: Option<BackupHeader>,
    body_len: u64,
    body_crc: u32,
}

impl Receiver {
    fn push(&mut self, data: &[u8]) -> anyhow::Result<()> {
        self.file.write_all(data)?;
        if self.header.is_some() {
            self.count(data);
            return Ok(());
        }
        self.head.extend_from_slice(data);
        if self.head.len() >= MAX_HEADER {
            self.parse_head()?;
        }
        Ok(())
    }

    fn count(&mut self, body: &[u8]) {
        self.body_crc = crc32c::crc32c_append(self.body_crc, body);
        self.body_len += body.len() as u64;
    }

    /// Decodes the header from the bytes so far and counts the body bytes after it.
    fn parse_head(&mut self) -> anyhow::Result<()> {
        let h = BackupHeader::decode(&self.head).context("the master sent a bad backup header")?;
        let rest = std::mem::take(&mut self.head).split_off(h.len());
        self.header = Some(h);
        self.count(&rest);
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<BackupHeader> {
        if self.header.is_none() {
            self.parse_head()?;
        }
        let h = self.header.take().expect("parsed above");
        h.check_body(self.body_len, self.body_crc)
            .context("the backup arrived damaged or cut off")?;
        self.file.sync_all()?;
        Ok(h)
    }
}

async fn backup(s: &Settings, out: &Path) -> anyhow::Result<View> {
    let c = connect(s).await?;
    let mut stream = c.master().meta_backup().await?;
    let part = out.with_extension("part");
    // 0600 from the first byte: a backup holds every user's secret key.
    let file = kdss_common::private_file::create(&part)?;
    let mut rx = Receiver {
        file,
        head: Vec::new(),
        header: None,
        body_len: 0,
        body_crc: 0,
    };
    let received = async {
        while let Some(chunk) = stream.message().await.context("receiving the backup")? {
            rx.push(&chunk.data)
                .with_context(|| format!("write {}", part.display()))?;
        }
        rx.finish()
    }
    .await;
    let h = match received {
        Ok(h) => h,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    std::fs::rename(&part, out)
        .with_context(|| format!("rename {} to {}", part.display(), out.display()))?;
    let size = h.len() as u64 + h.body_len;
    Ok(View {
        json: json!({
            "file": out.display().to_string(), "cluster_id": h.cluster_id,
            "applied_index": h.applied_index, "applied_term": h.applied_term,
            "created_ms": h.created_ms, "size_bytes": size,
            "body_crc32c": format!("{:08x}", h.body_crc),
        }),
        text: format!(
            "backup of cluster {} up to Raft index {} (term {}) taken {} written to {}: {} \
             (crc32c {:08x})\nrestore with: kdss master restore -c master.toml --from {}\n",
            h.cluster_id,
            h.applied_index,
            h.applied_term,
            utc(h.created_ms as i64 * 1_000_000),
            out.display(),
            view::bytes(size),
            h.body_crc,
            out.display(),
        ),
    })
}

async fn backups(s: &Settings) -> anyhow::Result<View> {
    let c = connect(s).await?;
    let r = c
        .master()
        .list_meta_backups(pb::ListMetaBackupsRequest {})
        .await?;
    if r.dir.is_empty() {
        return Ok(View {
            json: json!({"leader_id": r.leader_id, "dir": null, "backups": []}),
            text: format!(
                "scheduled backups are off on the leader (master {}): add [backup] dir, \
                 interval, keep to master.toml\n",
                r.leader_id
            ),
        });
    }
    let rows: Vec<Vec<String>> = r
        .backups
        .iter()
        .map(|b| {
            if b.error.is_empty() {
                vec![
                    b.name.clone(),
                    utc(b.created_ms as i64 * 1_000_000),
                    b.applied_index.to_string(),
                    view::bytes(b.size_bytes),
                ]
            } else {
                vec![
                    b.name.clone(),
                    "-".into(),
                    format!("unreadable: {}", b.error),
                    view::bytes(b.size_bytes),
                ]
            }
        })
        .collect();
    let job = r.job.clone().unwrap_or_default();
    let last = if job.passes == 0 && !job.running {
        "none yet since this master leads".to_string()
    } else {
        crate::gc::last_pass(&job)
    };
    let text = format!(
        "scheduled backups on master {} in {} (every {}s, keeping {}); last run: {last}\n{}",
        r.leader_id,
        r.dir,
        r.interval_sec,
        r.keep,
        view::table(&["NAME", "CREATED", "INDEX", "SIZE"], &rows)
    );
    Ok(View {
        json: json!({
            "leader_id": r.leader_id, "dir": r.dir, "interval_sec": r.interval_sec,
            "keep": r.keep, "passes": job.passes, "last_error": job.last_error,
            "backups": r.backups.iter().map(|b| json!({
                "name": b.name, "created_ms": b.created_ms, "applied_index": b.applied_index,
                "applied_term": b.applied_term, "size_bytes": b.size_bytes, "error": b.error,
            })).collect::<Vec<_>>(),
        }),
        text,
    })
}
