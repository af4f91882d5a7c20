//! What a non-admin key may store (docs/security.md, "Modes and owners from clients"): the
//! master drops setuid (and setgid outside directories) from the modes such a caller sends
//! and refuses its device nodes, while an admin key stores them as sent; and a role change
//! keeps the user's keys and grants. On a real master serving gRPC on loopback.

mod common;

use common::single_master;
use kdss_common::rpc_error::errno_of;
use kdss_master::bench::{Credential, client};
use kdss_proto::master as pb;
use tonic::Code;

fn alice_key() -> Credential {
    Credential {
        access_key: "alice-key".into(),
        secret_key: "alice-secret-123".into(),
        on_behalf_of: None,
    }
}

fn create(
    bucket: &str,
    parent: u64,
    name: &str,
    kind: pb::FileKind,
    mode: u32,
) -> pb::CreateRequest {
    pb::CreateRequest {
        bucket: bucket.into(),
        parent,
        name: name.into(),
        kind: kind as i32,
        mode,
        uid: 0,
        gid: 0,
        ..Default::default()
    }
}

fn mode_of(r: pb::AttrReply) -> u32 {
    r.attr.unwrap().mode & 0o7777
}

#[tokio::test]
async fn a_user_key_cannot_store_setuid_or_devices_and_keeps_its_grants_across_a_role_change() {
    let dir = tempfile::tempdir().unwrap();
    let m = single_master(dir.path(), "").await;
    let addr = m.grpc_addr.to_string();
    let mut admin = client(&addr, common::admin()).unwrap();
    admin
        .create_user(pb::CreateUserRequest {
            name: "alice".into(),
            access_key: "alice-key".into(),
            secret_key: "alice-secret-123".into(),
            role: pb::Role::User as i32,
        })
        .await
        .unwrap();
    let mut alice = client(&addr, alice_key()).unwrap();
    let root = alice
        .create_bucket(pb::CreateBucketRequest {
            name: "bkt".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .bucket
        .unwrap()
        .root_ino;

    // A user's setuid root file comes out without its special bits.
    let f = alice
        .create(create("bkt", root, "su", pb::FileKind::Regular, 0o6755))
        .await
        .unwrap()
        .into_inner();
    let ino = f.attr.as_ref().unwrap().ino;
    assert_eq!(mode_of(f), 0o755);
    let chmod = |ino: u64, mode: u32| pb::SetAttrRequest {
        bucket: "bkt".into(),
        ino,
        mode: Some(mode),
        ..Default::default()
    };
    let after = alice
        .set_attr(chmod(ino, 0o4711))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mode_of(after), 0o711);
    // A directory keeps setgid (it passes the group on), never setuid.
    let d = alice
        .mkdir(pb::MkdirRequest {
            bucket: "bkt".into(),
            parent: root,
            name: "shared".into(),
            mode: 0o775,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let dino = d.attr.unwrap().ino;
    let g = alice
        .set_attr(chmod(dino, 0o6775))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mode_of(g), 0o2775);
    // Device nodes need an admin key, as mknod needs CAP_MKNOD.
    let e = alice
        .create(create("bkt", root, "sda", pb::FileKind::BlockDevice, 0o660))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    assert_eq!(errno_of(&e), kdss_common::rpc_error::errno::EPERM, "{e}");
    assert!(e.message().contains("device"), "{e}");

    // An admin key stores what it sends (restores of backups keep their modes).
    let a = admin
        .create(create(
            "bkt",
            root,
            "su-admin",
            pb::FileKind::Regular,
            0o4755,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mode_of(a), 0o4755);
    admin
        .create(create("bkt", root, "tty", pb::FileKind::CharDevice, 0o620))
        .await
        .unwrap();

    // Promoted to admin, alice keeps her key and bucket, and now stores setuid.
    admin
        .set_user_role(pb::SetUserRoleRequest {
            access_key: "alice-key".into(),
            role: pb::Role::Admin as i32,
        })
        .await
        .unwrap();
    let users = admin
        .list_users(pb::ListUsersRequest {})
        .await
        .unwrap()
        .into_inner()
        .users;
    let role = users
        .iter()
        .find(|u| u.access_key == "alice-key")
        .unwrap()
        .role;
    assert_eq!(role, pb::Role::Admin as i32);
    let mut alice = client(&addr, alice_key()).unwrap();
    let again = alice
        .set_attr(chmod(ino, 0o4711))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mode_of(again), 0o4711);
    // A user cannot change roles, and an unknown role or key is refused by name.
    admin
        .set_user_role(pb::SetUserRoleRequest {
            access_key: "alice-key".into(),
            role: pb::Role::User as i32,
        })
        .await
        .unwrap();
    let mut alice = client(&addr, alice_key()).unwrap();
    let e = alice
        .set_user_role(pb::SetUserRoleRequest {
            access_key: "alice-key".into(),
            role: pb::Role::Admin as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    let e = admin
        .set_user_role(pb::SetUserRoleRequest {
            access_key: "nobody".into(),
            role: pb::Role::User as i32,
        })
        .await
        .unwrap_err();
    assert!(e.message().contains("nobody"), "{e}");
    let e = admin
        .set_user_role(pb::SetUserRoleRequest {
            access_key: "alice-key".into(),
            role: 99,
        })
        .await
        .unwrap_err();
    assert!(e.message().contains("role"), "{e}");

    // The master remembers verified users until a change of users is applied: a deleted
    // key is refused at its next call.
    alice.list_buckets(pb::ListBucketsRequest {}).await.unwrap();
    admin
        .delete_user(pb::DeleteUserRequest {
            access_key: "alice-key".into(),
        })
        .await
        .unwrap();
    let e = alice
        .list_buckets(pb::ListBucketsRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e}");
    assert!(e.message().contains("alice-key"), "{e}");
}
