//! Metadata backup and restore with real master processes: a group whose every data
//! directory is lost comes back from a backup with exactly what the backup held, and the
//! leader's scheduled backups keep the newest `keep` files.

mod common;

use common::{Cluster, admin, list_dir, make_bucket, mkdir};
use kdss_master::backup::file::verify;
use kdss_master::config::MasterConfig;
use kdss_proto::master as pb;
use std::path::Path;
use std::time::{Duration, Instant};

/// Takes a backup through the MetaBackup call of the leader into `out`.
async fn backup_to(c: &Cluster, out: &Path) {
    let l = c.wait_leader(Duration::from_secs(30)).await;
    let mut admin = kdss_master::bench::client(&c.masters[l].grpc, admin()).unwrap();
    let mut stream = admin
        .meta_backup(pb::MetaBackupRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        bytes.extend_from_slice(&chunk.data);
    }
    std::fs::write(out, bytes).unwrap();
}

/// Creates the directories `names` under `root` through the leader.
async fn mkdirs(c: &Cluster, root: u64, names: &[String]) {
    let l = c.wait_leader(Duration::from_secs(30)).await;
    let mut admin = kdss_master::bench::client(&c.masters[l].grpc, admin()).unwrap();
    for n in names {
        admin.mkdir(mkdir(root, n)).await.unwrap();
    }
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:02}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_masters_wiped_and_restored_hold_exactly_the_backup() {
    let mut c = Cluster::start(3, 1000);
    let root = make_bucket(&c).await;
    let before = names("before-", 20);
    mkdirs(&c, root, &before).await;
    let file = c.dir.path().join("meta.kbak");
    backup_to(&c, &file).await;
    let header = verify(&file).expect("the backup verifies");
    assert!(header.applied_index > 20, "{header:?}");
    mkdirs(&c, root, &names("after-", 5)).await;

    for m in &mut c.masters {
        m.stop().await;
    }
    for m in &c.masters {
        let cfg = MasterConfig::load(&m.cfg).unwrap();
        let data = &cfg.master.data_dir;
        // A master that still has its data is refused, and keeps it.
        let e = kdss_master::backup::restore(&cfg, &file, false)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not empty"), "{e}");
        assert!(data.join("meta.db").exists());
        std::fs::remove_dir_all(data).unwrap();
        let r = kdss_master::backup::restore(&cfg, &file, false)
            .await
            .unwrap();
        assert_eq!(r.header, header);
        assert_eq!(r.members.len(), 3);
    }
    for m in &mut c.masters {
        m.start();
    }

    let l = c.wait_leader(Duration::from_secs(30)).await;
    let mut client = c.masters[l].client();
    let deadline = Instant::now() + Duration::from_secs(15);
    let got = loop {
        match list_dir(&mut client, "bkt", root).await {
            Ok(v) => break v,
            Err(e) if Instant::now() < deadline => {
                eprintln!("listing: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("listing after restore: {e}\n{}", c.logs()),
        }
    };
    let mut got = got;
    got.sort();
    assert_eq!(got, before, "the restored namespace is the backup's");

    // The new group takes writes, and hands out inode numbers the lost group never could.
    let l = c.wait_leader(Duration::from_secs(30)).await;
    let mut admin = kdss_master::bench::client(&c.masters[l].grpc, admin()).unwrap();
    let r = admin.mkdir(mkdir(root, "after-restore")).await.unwrap();
    let ino = r.into_inner().attr.unwrap().ino;
    assert!(ino > 1 << 32, "new inode {ino} is past the moved sequence");
    // Every member applies it: stop the leader and read it from the new one.
    c.masters[l].stop().await;
    let l2 = c.wait_leader(Duration::from_secs(30)).await;
    let mut client = c.masters[l2].client();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match list_dir(&mut client, "bkt", root).await {
            Ok(v) if v.contains(&"after-restore".to_string()) => break,
            r => assert!(Instant::now() < deadline, "{r:?}\n{}", c.logs()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_writes_scheduled_backups_and_keeps_the_newest() {
    let mut c = Cluster::configure(1, 1000);
    let dir = c.dir.path().join("backups");
    let m = &mut c.masters[0];
    let mut text = std::fs::read_to_string(&m.cfg).unwrap();
    text.push_str(&format!(
        "[backup]\ndir = {:?}\ninterval = \"1s\"\nkeep = 2\n",
        dir.display().to_string()
    ));
    std::fs::write(&m.cfg, text).unwrap();
    m.start();
    let _ = make_bucket(&c).await;
    let mut admin = kdss_master::bench::client(&c.masters[0].grpc, admin()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let r = loop {
        let r = admin
            .list_meta_backups(pb::ListMetaBackupsRequest {})
            .await
            .unwrap()
            .into_inner();
        let job = r.job.clone().unwrap_or_default();
        assert!(job.last_error.is_empty(), "{}", job.last_error);
        if job.passes >= 4 && !job.running {
            break r;
        }
        assert!(Instant::now() < deadline, "{r:?}\n{}", c.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!((r.keep, r.interval_sec), (2, 1));
    assert_eq!(r.dir, dir.display().to_string());
    assert_eq!(r.backups.len(), 2, "{r:?}");
    assert!(r.backups[0].name > r.backups[1].name, "newest first: {r:?}");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    on_disk.sort();
    on_disk.reverse();
    let listed: Vec<String> = r.backups.iter().map(|b| b.name.clone()).collect();
    assert_eq!(on_disk, listed, "exactly the listed files, no leftovers");
    for b in &r.backups {
        assert!(b.error.is_empty(), "{b:?}");
        let h = verify(&dir.join(&b.name)).unwrap();
        assert_eq!(
            (h.applied_index, h.created_ms),
            (b.applied_index, b.created_ms)
        );
        assert!(b.applied_index > 0);
    }
}
