//! Setuid, setgid and device nodes from API callers. The master cannot see a caller's POSIX
//! identity, only its KDSS key, so it maps "privileged" to the key's role: an admin key (or
//! the bare service identity) is root-equivalent and stores any mode and any kind; every
//! other key is treated as an unprivileged process would be. For those, setuid is dropped
//! from every mode, setgid from every mode but a directory's (where it only passes the
//! group on to new entries), and device nodes are refused. A bucket writer therefore cannot
//! plant a setuid program or a device for a mount that honours them (`suid`/`dev`).

use crate::caller::Caller;
use crate::meta_api as meta;
use kdss_common::rpc_error::{self, errno};
use kdss_proto::master as pb;
use sqlx::SqlitePool;
use tonic::{Code, Status};

const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;

/// The mode an unprivileged caller may store for an inode of `kind`.
fn unprivileged(mode: u32, kind: pb::FileKind) -> u32 {
    match kind {
        pb::FileKind::Directory => mode & !S_ISUID,
        _ => mode & !(S_ISUID | S_ISGID),
    }
}

/// Adjusts a Create from `caller`: special bits dropped, device nodes refused.
pub fn create(caller: &Caller, r: &mut pb::CreateRequest) -> Result<(), Status> {
    if caller.is_admin() {
        return Ok(());
    }
    let kind = pb::FileKind::try_from(r.kind).unwrap_or(pb::FileKind::Regular);
    if matches!(kind, pb::FileKind::CharDevice | pb::FileKind::BlockDevice) {
        return Err(rpc_error::status(
            Code::PermissionDenied,
            errno::EPERM,
            "AccessDenied",
            format!(
                "creating device node {:?} needs an admin key (as mknod needs CAP_MKNOD)",
                r.name
            ),
        ));
    }
    r.mode = unprivileged(r.mode, kind);
    Ok(())
}

/// Adjusts a SetAttr from `caller` that sets a mode: special bits dropped by the kind of
/// the inode (read from this master's database; a missing inode is left to the mutation
/// to refuse).
pub async fn set_attr(
    pool: &SqlitePool,
    caller: &Caller,
    r: &mut pb::SetAttrRequest,
) -> Result<(), Status> {
    let Some(mode) = r.mode else { return Ok(()) };
    if caller.is_admin() || mode & (S_ISUID | S_ISGID) == 0 {
        return Ok(());
    }
    let req = pb::GetAttrRequest {
        bucket: r.bucket.clone(),
        ino: r.ino,
    };
    let kind = match meta::getattr(pool, &req).await {
        Ok(a) => a
            .attr
            .map(|a| pb::FileKind::try_from(a.kind).unwrap_or(pb::FileKind::Regular))
            .unwrap_or(pb::FileKind::Regular),
        Err(_) => pb::FileKind::Regular,
    };
    r.mode = Some(unprivileged(mode, kind));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_bits_by_kind() {
        assert_eq!(unprivileged(0o4755, pb::FileKind::Regular), 0o755);
        assert_eq!(unprivileged(0o2755, pb::FileKind::Regular), 0o755);
        assert_eq!(unprivileged(0o6755, pb::FileKind::Fifo), 0o755);
        assert_eq!(
            unprivileged(0o3775, pb::FileKind::Directory),
            0o3775 & !0o4000
        );
        assert_eq!(unprivileged(0o6775, pb::FileKind::Directory), 0o2775);
        assert_eq!(unprivileged(0o1777, pb::FileKind::Directory), 0o1777);
    }
}
