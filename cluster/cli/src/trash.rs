//! `kdss-cli trash list|restore|purge`: the recycle bin of deleted files and objects.

use crate::commands::connect;
use crate::settings::Settings;
use crate::view::{self, View};
use anyhow::{Context, bail};
use clap::Subcommand;
use kdss_proto::master as pb;
use serde_json::{Value, json};

/// `trash` subcommands.
#[derive(Subcommand)]
pub enum TrashCmd {
    /// Deleted files and objects: id, bucket, path, size, deleted at, purge due.
    List {
        /// Only this bucket's items.
        #[arg(long)]
        bucket: Option<String>,
    },
    /// Put an item back at the path it had (fails if the path is taken now).
    Restore {
        /// Item id (from `trash list`).
        id: u64,
    },
    /// Purge items now (their space comes back after the next GC pass, started at once).
    Purge {
        /// Only items deleted longer ago than this (e.g. 90s, 30m, 48h, 7d).
        #[arg(long, conflicts_with = "all")]
        older_than: Option<String>,
        /// Every item.
        #[arg(long)]
        all: bool,
        /// Only this bucket's items.
        #[arg(long)]
        bucket: Option<String>,
        /// Only these item ids.
        #[arg(long = "id", conflicts_with_all = ["all", "older_than"])]
        ids: Vec<u64>,
    },
}

/// Parses a duration like `90s`, `30m`, `48h`, `7d` (a bare number is seconds).
pub fn parse_duration(s: &str) -> anyhow::Result<std::time::Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .with_context(|| format!("{s:?} is not a duration (e.g. 90s, 30m, 48h, 7d)"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        other => bail!("unknown duration unit {other:?} in {s:?} (use s, m, h or d)"),
    };
    Ok(std::time::Duration::from_secs(secs))
}

/// A Unix time in ns as `YYYY-MM-DD HH:MM:SS` UTC ("-" for 0).
pub fn utc(ns: i64) -> String {
    if ns <= 0 {
        return "-".to_string();
    }
    let secs = ns / 1_000_000_000;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn item_json(i: &pb::TrashItem) -> Value {
    json!({
        "id": i.id, "bucket": i.bucket, "path": i.path, "size": i.size,
        "deleted_ns": i.deleted_ns, "purge_due_ns": i.purge_due_ns,
    })
}

/// Runs a `trash` subcommand.
pub async fn trash(s: &Settings, cmd: TrashCmd) -> anyhow::Result<View> {
    let c = connect(s).await?;
    match cmd {
        TrashCmd::List { bucket } => {
            let mut items = Vec::new();
            let mut after_id = 0;
            let mut retention;
            loop {
                let req = pb::ListTrashRequest {
                    bucket: bucket.clone().unwrap_or_default(),
                    after_id,
                    limit: 1000,
                };
                let r = c.master().list_trash(req).await?;
                retention = r.retention_hours;
                let Some(last) = r.items.last() else { break };
                after_id = last.id;
                items.extend(r.items);
            }
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|i| {
                    vec![
                        i.id.to_string(),
                        i.bucket.clone(),
                        i.path.clone(),
                        view::bytes(i.size),
                        utc(i.deleted_ns),
                        if i.purge_due_ns == 0 {
                            "when purged by hand".to_string()
                        } else {
                            utc(i.purge_due_ns)
                        },
                    ]
                })
                .collect();
            let mut text = view::table(
                &["ID", "BUCKET", "PATH", "SIZE", "DELETED (UTC)", "PURGE DUE"],
                &rows,
            );
            text.push_str(&format!(
                "{} item(s), {}; retention {}\n",
                items.len(),
                view::bytes(items.iter().map(|i| i.size).sum()),
                if retention == 0 {
                    "none (kept until purged)".to_string()
                } else {
                    format!("{retention} h")
                }
            ));
            Ok(View {
                json: json!({
                    "retention_hours": retention,
                    "items": items.iter().map(item_json).collect::<Vec<_>>(),
                }),
                text,
            })
        }
        TrashCmd::Restore { id } => {
            let r = c
                .master()
                .restore_trash(pb::RestoreTrashRequest { id })
                .await
                .with_context(|| format!("restoring bin item {id}"))?;
            Ok(View {
                text: format!("restored item {id} to {}/{}\n", r.bucket, r.path),
                json: json!({ "id": id, "bucket": r.bucket, "path": r.path }),
            })
        }
        TrashCmd::Purge {
            older_than,
            all,
            bucket,
            ids,
        } => {
            let deleted_before_ns = match &older_than {
                Some(d) => {
                    let d = parse_duration(d)?;
                    kdss_common::time::now_ns().saturating_sub(d.as_nanos() as i64)
                }
                None => 0,
            };
            if !all && ids.is_empty() && older_than.is_none() {
                bail!("say what to purge: --all, --older-than DURATION, or --id ID");
            }
            let req = pb::PurgeTrashRequest {
                bucket: bucket.unwrap_or_default(),
                deleted_before_ns,
                all,
                ids,
            };
            let r = c.master().purge_trash(req).await?;
            Ok(View {
                text: format!(
                    "purged {} item(s), {}; a GC pass has started (see `kdss-cli gc status`)\n",
                    r.items,
                    view::bytes(r.bytes)
                ),
                json: json!({ "items": r.items, "bytes": r.bytes }),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_dates() {
        assert_eq!(parse_duration("90").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("30m").unwrap().as_secs(), 1800);
        assert_eq!(parse_duration("2d").unwrap().as_secs(), 172_800);
        assert!(parse_duration("3w").is_err());
        assert!(parse_duration("h").is_err());
        assert_eq!(utc(0), "-");
        assert_eq!(utc(1_700_000_000 * 1_000_000_000), "2023-11-14 22:13:20");
    }
}
