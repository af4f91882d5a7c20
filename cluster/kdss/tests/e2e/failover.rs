//! Three masters: killing the leader does not stop either door.

use crate::common::*;
use kdss_testkit::{ClusterOpts, Mount};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_ksfs_and_s3_keep_working() {
    let Some(mut c) = start(
        true,
        ClusterOpts {
            masters: 3,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let b = c.bucket();
    let scratch = c.scratch("failover");
    let before = data(1, 2 << 20);
    let m = Mount::new(&c, "a", &b, "").await.unwrap();
    std::fs::write(m.join("before.bin"), &before).unwrap();

    let leader = c.leader_index().await.unwrap();
    c.kill_master(leader);

    // Both doors work again after the election, on the surviving masters.
    let after = data(2, (1 << 20) + 3);
    std::fs::write(m.join("after.bin"), &after).unwrap();
    std::fs::write(scratch.join("s3.in"), &after).unwrap();
    aws_cp(
        &c,
        scratch.join("s3.in").to_str().unwrap(),
        &format!("s3://{b}/after-s3.bin"),
    );
    assert_file(&m.join("before.bin"), &before);
    assert_file(&m.join("after-s3.bin"), &after);
    aws_cp(
        &c,
        &format!("s3://{b}/after.bin"),
        scratch.join("after.out").to_str().unwrap(),
    );
    assert_file(&scratch.join("after.out"), &after);
    let new_leader = c.leader_index().await.unwrap();
    assert_ne!(
        new_leader, leader,
        "the killed master cannot still be the leader"
    );
}
