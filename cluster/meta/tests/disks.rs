//! Disk states through the replicated op: what an operator and the automatic health pass
//! may each change, and what `list_by_state` (repair's input) returns.

mod common;

use common::Ns;
use kdss_meta::disks::{self, DiskStateRow};
use kdss_proto::master::mutation::Op;
use kdss_proto::master::{DiskStatus, SetDiskStateOp};

fn set(disk_id: u64, status: DiskStatus, reason: &str, by_operator: bool) -> Op {
    Op::SetDiskState(SetDiskStateOp {
        node_id: "node-1".into(),
        disk_id,
        status: status as i32,
        reason: reason.into(),
        by_operator,
    })
}

async fn states(ns: &Ns) -> Vec<(u64, DiskStatus, String, bool)> {
    disks::list(&ns.pool)
        .await
        .unwrap()
        .into_iter()
        .map(|r: DiskStateRow| (r.disk_id, r.status, r.reason, r.by_operator))
        .collect()
}

#[tokio::test]
async fn states_are_stored_listed_by_state_and_cleared_by_online() {
    let mut ns = Ns::new().await;
    ns.ok(set(7, DiskStatus::Suspect, "slow: p99 90 ms", false))
        .await;
    ns.ok(set(9, DiskStatus::Offline, "node silent 700 s", false))
        .await;
    ns.ok(set(8, DiskStatus::Draining, "replacing", true)).await;
    assert_eq!(
        states(&ns).await,
        vec![
            (7, DiskStatus::Suspect, "slow: p99 90 ms".into(), false),
            (8, DiskStatus::Draining, "replacing".into(), true),
            (9, DiskStatus::Offline, "node silent 700 s".into(), false),
        ]
    );
    let offline = disks::list_by_state(&ns.pool, DiskStatus::Offline)
        .await
        .unwrap();
    assert_eq!(offline.len(), 1);
    assert_eq!(offline[0].disk_id, 9);
    assert_eq!(offline[0].node_id, "node-1");

    ns.ok(set(7, DiskStatus::Online, "recovered", false)).await;
    assert!(states(&ns).await.iter().all(|s| s.0 != 7));
}

#[tokio::test]
async fn the_automatic_pass_never_overrides_an_operator_state() {
    let mut ns = Ns::new().await;
    ns.ok(set(5, DiskStatus::Offline, "pulled for test", true))
        .await;
    // Automatic changes (recover to online, or suspect) leave the operator's row alone.
    ns.ok(set(5, DiskStatus::Online, "healthy again", false))
        .await;
    ns.ok(set(5, DiskStatus::Suspect, "slow", false)).await;
    assert_eq!(
        states(&ns).await,
        vec![(5, DiskStatus::Offline, "pulled for test".into(), true)]
    );
    // An operator's online clears it; after that the automatic pass may act again.
    ns.ok(set(5, DiskStatus::Online, "", true)).await;
    assert!(states(&ns).await.is_empty());
    ns.ok(set(5, DiskStatus::Suspect, "slow", false)).await;
    assert_eq!(states(&ns).await[0].1, DiskStatus::Suspect);
    // An operator's online also clears an automatic state.
    ns.ok(set(5, DiskStatus::Online, "", true)).await;
    assert!(states(&ns).await.is_empty());
}

#[tokio::test]
async fn same_state_keeps_its_since_and_bad_input_is_refused() {
    let mut ns = Ns::new().await;
    ns.ok(set(3, DiskStatus::Suspect, "slow", false)).await;
    let since = disks::list(&ns.pool).await.unwrap()[0].since_ns;
    ns.ok(set(3, DiskStatus::Suspect, "still slow", false))
        .await;
    let row = &disks::list(&ns.pool).await.unwrap()[0];
    assert_eq!((row.since_ns, row.reason.as_str()), (since, "still slow"));

    let f = ns.fail(set(3, DiskStatus::Unspecified, "", true)).await;
    assert_eq!(f.code, "InvalidArgument");
    let f = ns.fail(set(0, DiskStatus::Offline, "", true)).await;
    assert_eq!(f.code, "InvalidArgument");
    assert_eq!(disks::list(&ns.pool).await.unwrap().len(), 1);
}
