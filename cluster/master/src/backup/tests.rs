//! Backup files against a real namespace database: a good backup restores with its Raft
//! position and id sequences rewritten; each kind of bad input is refused with an error
//! naming the problem, and the data directory is left as it was; retention keeps the newest.

use super::file::{list, prune, scheduled_name, take, verify};
use super::{BackupError, restore, restore_point};
use crate::config::MasterConfig;
use crate::raft::{Entry, LogId, StateMachine};
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, EntryPayload};
use std::path::{Path, PathBuf};

/// A namespace database with a few applied entries, backed up into `dir/meta.kbak`.
async fn backup_of(cluster: &str, dir: &Path) -> PathBuf {
    let mut sm = StateMachine::open(&dir.join("source")).await.unwrap();
    let entries: Vec<Entry> = (1..=7)
        .map(|i| Entry {
            log_id: LogId::new(CommittedLeaderId::new(3, 2), i),
            payload: EntryPayload::Blank,
        })
        .collect();
    sm.apply(entries).await.unwrap();
    let taken = take(&sm, cluster).await.unwrap();
    assert_eq!(
        (taken.header.applied_index, taken.header.applied_term),
        (7, 3)
    );
    let out = dir.join("meta.kbak");
    taken.write_to(&out).unwrap();
    sm.close().await;
    out
}

fn config(cluster: &str, data: &Path) -> MasterConfig {
    let text = format!(
        "[master]\nid = 1\ngrpc_addr = \"127.0.0.1:6700\"\nhttp_addr = \"127.0.0.1:6701\"\n\
         data_dir = {:?}\n[cluster]\nid = {cluster:?}\nsecret = \"0123456789abcdef0123456789abcdef\"\n",
        data.display().to_string()
    );
    MasterConfig::parse(Path::new("master.toml"), &text).unwrap()
}

async fn refused(file: &Path, cfg: &MasterConfig) -> String {
    let e = restore(cfg, file, false).await.unwrap_err();
    assert!(
        !cfg.master.data_dir.exists(),
        "a refused restore created {} ({e})",
        cfg.master.data_dir.display()
    );
    e.to_string()
}

#[tokio::test]
async fn a_backup_restores_as_a_new_group_past_the_old_ids() {
    let t = tempfile::tempdir().unwrap();
    let file = backup_of("kdss-a", t.path()).await;
    let data = t.path().join("restored");
    let r = restore(&config("kdss-a", &data), &file, false)
        .await
        .unwrap();
    assert_eq!(r.header.applied_index, 7);
    assert_eq!(r.members, vec![(1, "127.0.0.1:6700".to_string())]);
    assert_eq!(r.point.last_stripe_id, 0);
    assert_eq!(r.point.next_stripe_id, 1 << 32);
    assert!(r.point.after_backup(5) && !r.point.after_backup(1 << 32));
    let names: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, vec!["meta.db".to_string()], "only the namespace");

    let mut sm = StateMachine::open(&data).await.unwrap();
    let (applied, membership) = sm.applied_state().await.unwrap();
    let applied = applied.unwrap();
    assert_eq!((applied.index, applied.leader_id.term), (7, 0));
    assert_eq!(membership.log_id(), &Some(applied));
    assert_eq!(membership.voter_ids().collect::<Vec<_>>(), vec![1]);
    assert_eq!(restore_point(&sm.pool()).await.unwrap(), Some(r.point));
    sm.close().await;
}

#[tokio::test]
async fn damaged_cut_or_foreign_backups_are_refused_and_change_nothing() {
    let t = tempfile::tempdir().unwrap();
    let file = backup_of("kdss-a", t.path()).await;
    let good = std::fs::read(&file).unwrap();
    let cfg = config("kdss-a", &t.path().join("data"));
    let bad = t.path().join("bad.kbak");

    // A flipped byte in the body (the SQLite file) fails the body checksum.
    let mut b = good.clone();
    let at = b.len() - 100;
    b[at] ^= 0x40;
    std::fs::write(&bad, &b).unwrap();
    let e = refused(&bad, &cfg).await;
    assert!(e.contains("bad.kbak") && e.contains("checksum"), "{e}");
    assert!(e.contains("nothing was changed"), "{e}");

    // A flipped byte in the header fails the header's own checksum.
    let mut b = good.clone();
    b[20] ^= 1;
    std::fs::write(&bad, &b).unwrap();
    let e = refused(&bad, &cfg).await;
    assert!(e.contains("not a usable metadata backup"), "{e}");

    // A cut-off file (an interrupted copy).
    std::fs::write(&bad, &good[..good.len() - 4096]).unwrap();
    let e = refused(&bad, &cfg).await;
    assert!(e.contains("truncated backup body"), "{e}");

    // Not a backup at all.
    std::fs::write(&bad, b"SQLite format 3\0 something else").unwrap();
    let e = refused(&bad, &cfg).await;
    assert!(e.contains("not a usable metadata backup"), "{e}");

    // A valid header around a body that is not a namespace.
    let h = kdss_format::BackupHeader::decode(&good).unwrap();
    let body = vec![7u8; 8192];
    let other = kdss_format::BackupHeader {
        body_len: body.len() as u64,
        body_crc: crc32c::crc32c(&body),
        ..h
    };
    let mut b = other.encode().unwrap();
    b.extend_from_slice(&body);
    std::fs::write(&bad, &b).unwrap();
    let e = refused(&bad, &cfg).await;
    assert!(
        e.contains("not a SQLite database") || e.contains("not a KDSS"),
        "{e}"
    );

    // Another cluster's backup, unless explicitly allowed.
    let other = config("kdss-b", &t.path().join("data"));
    let e = refused(&file, &other).await;
    assert!(
        e.contains("\"kdss-a\"") && e.contains("\"kdss-b\"") && e.contains("--allow-other-cluster"),
        "{e}"
    );
    assert!(matches!(
        restore(&other, &file, false).await,
        Err(BackupError::ForeignCluster { .. })
    ));
    restore(&other, &file, true).await.unwrap();

    // A data directory that holds anything: refused, and what it holds stays.
    let e = restore(&other, &file, true).await.unwrap_err().to_string();
    assert!(e.contains("not empty") && e.contains("meta.db"), "{e}");
    assert!(t.path().join("data/meta.db").exists());
    assert!(!t.path().join("data/meta-restoring.db").exists());
}

#[tokio::test]
async fn retention_keeps_the_newest_backups_and_lists_them_newest_first() {
    let t = tempfile::tempdir().unwrap();
    let file = backup_of("kdss-a", t.path()).await;
    let mut h = verify(&file).unwrap();
    let dir = t.path().join("scheduled");
    std::fs::create_dir_all(&dir).unwrap();
    let mut names = Vec::new();
    for i in 0..5u64 {
        h.created_ms = 1_780_000_000_000 + i * 3_600_000;
        let name = scheduled_name(&h);
        std::fs::copy(&file, dir.join(&name)).unwrap();
        names.push(name);
    }
    std::fs::write(dir.join("notes.txt"), b"not a backup").unwrap();
    std::fs::write(dir.join("meta-9999999999999-1.kbak"), b"junk").unwrap();
    let listed = list(&dir).unwrap();
    assert_eq!(listed.len(), 6, "backup-named files only");
    assert!(
        listed[0].header.is_err(),
        "the junk file sorts first and says why"
    );
    let gone = prune(&dir, 3).unwrap();
    assert_eq!(gone, vec![names[1].clone(), names[0].clone()]);
    let left: Vec<String> = list(&dir).unwrap().into_iter().map(|b| b.name).collect();
    assert_eq!(
        left.len(),
        4,
        "three kept, the unreadable one left for a person: {left:?}"
    );
    assert_eq!(
        left[1..],
        [names[4].clone(), names[3].clone(), names[2].clone()]
    );
    assert!(
        dir.join("notes.txt").exists(),
        "other files are not touched"
    );
}
