//! Size limits of the caller-sized fields of a mutation (names, keys, xattrs, symlink
//! targets, object metadata, lists), checked by the master before it proposes anything:
//! an oversized request is refused with the limit named and never reaches the Raft log,
//! where it would cost every member a write and a replay.
//!
//! The limits that `apply` also enforces (entry names, xattrs, symlink targets) use the
//! same functions here and there. The others are checked only here, before proposing: a
//! new check at apply could refuse, on replay, an entry an older version accepted, and
//! members must agree on every entry ever logged.

use crate::error::{Result, fail};
use crate::names::{KEY_MAX, NAME_MAX};
use crate::posix::check_xattr;
use kdss_common::rpc_error::errno;
use kdss_proto::master::ObjectMeta;
use kdss_proto::master::mutation::Op;
use prost::Message;

/// Longest symlink target (Linux PATH_MAX).
pub const SYMLINK_MAX: usize = 4096;
/// Most user metadata of an object: keys plus values, in bytes, as S3 counts it.
pub const USER_META_MAX: usize = 2048;
/// Most object metadata in all (headers, user metadata, checksums), encoded.
pub const OBJECT_META_MAX: usize = 16 << 10;
/// Longest short identifier a caller chooses: session, upload id, etag, access key, user
/// name, setting.
pub const ID_MAX: usize = 1024;
/// Most keys in one DeleteObjects (as S3).
pub const DELETE_KEYS_MAX: usize = 1000;
/// Most inodes in one SetAtimes.
pub const ATIMES_MAX: usize = 1000;

fn too_long(what: &str, len: usize, max: usize) -> crate::MetaError {
    fail(
        errno::ENAMETOOLONG,
        "TooLarge",
        format!("{what} is {len} bytes, above the limit of {max} bytes"),
    )
}

fn at_most(what: &str, len: usize, max: usize) -> Result<()> {
    if len > max {
        return Err(too_long(what, len, max));
    }
    Ok(())
}

/// An object key's length (the S3 code, as `names::parse_key` says at apply).
fn key(what: &str, k: &str) -> Result<()> {
    if k.len() > KEY_MAX {
        return Err(fail(
            errno::ENAMETOOLONG,
            "KeyTooLongError",
            format!(
                "{what} is {} bytes, above the limit of {KEY_MAX} bytes",
                k.len()
            ),
        ));
    }
    Ok(())
}

/// The entry name length rule of NAME_MAX, without the other name rules (an existing
/// entry being removed or renamed is looked up, not validated).
fn name(what: &str, n: &str) -> Result<()> {
    if n.len() > NAME_MAX {
        return Err(fail(
            errno::ENAMETOOLONG,
            "NameTooLong",
            format!("{what} is {} bytes, longer than {NAME_MAX}", n.len()),
        ));
    }
    Ok(())
}

/// Checks a symlink target: 1 to [`SYMLINK_MAX`] bytes.
pub fn check_symlink_target(target: &str) -> Result<()> {
    if target.is_empty() {
        return Err(crate::error::einval("symlink target must not be empty"));
    }
    if target.len() > SYMLINK_MAX {
        return Err(fail(
            errno::ENAMETOOLONG,
            "NameTooLong",
            format!(
                "symlink target is {} bytes; it must be 1 to {SYMLINK_MAX} bytes",
                target.len()
            ),
        ));
    }
    Ok(())
}

fn object_meta(meta: Option<&ObjectMeta>) -> Result<()> {
    let Some(m) = meta else { return Ok(()) };
    let user: usize = m.user.iter().map(|(k, v)| k.len() + v.len()).sum();
    at_most("user metadata", user, USER_META_MAX)?;
    at_most("object metadata", m.encoded_len(), OBJECT_META_MAX)
}

/// Refuses `op` when one of its caller-sized fields is above its limit.
pub fn check(op: &Op) -> Result<()> {
    match op {
        Op::Create(r) => name("entry name", &r.name),
        Op::Mkdir(r) => name("entry name", &r.name),
        Op::Symlink(r) => {
            name("entry name", &r.name)?;
            check_symlink_target(&r.target)
        }
        Op::Unlink(r) | Op::Rmdir(r) => name("entry name", &r.name),
        Op::Rename(r) => {
            name("entry name", &r.name)?;
            name("new entry name", &r.new_name)
        }
        Op::Link(r) => name("new entry name", &r.new_name),
        Op::SetXattr(r) => check_xattr(&r.name, &r.value),
        Op::RemoveXattr(r) => check_xattr(&r.name, &[]),
        Op::Open(r) => at_most("session", r.session.len(), ID_MAX),
        Op::Release(r) => at_most("session", r.session.len(), ID_MAX),
        Op::KeepAlive(r) => at_most("session", r.session.len(), ID_MAX),
        Op::PutObject(r) => {
            key("key", &r.key)?;
            at_most("etag", r.etag.len(), ID_MAX)?;
            object_meta(r.meta.as_ref())
        }
        Op::DeleteObject(r) => key("key", &r.key),
        Op::SetAtimes(r) => at_most("inodes in one SetAtimes", r.updates.len(), ATIMES_MAX),
        Op::DeleteObjects(r) => {
            if r.keys.len() > DELETE_KEYS_MAX {
                return Err(fail(
                    errno::EINVAL,
                    "TooLarge",
                    format!(
                        "{} keys in one DeleteObjects, above the limit of {DELETE_KEYS_MAX}",
                        r.keys.len()
                    ),
                ));
            }
            r.keys.iter().try_for_each(|k| key("key", k))
        }
        Op::CopyObject(r) => {
            key("source key", &r.src_key)?;
            key("key", &r.dst_key)?;
            object_meta(r.meta.as_ref())
        }
        Op::CreateMultipart(r) => {
            key("key", &r.key)?;
            object_meta(r.meta.as_ref())
        }
        Op::PutPart(r) => {
            key("key", &r.key)?;
            at_most("upload id", r.upload_id.len(), ID_MAX)?;
            at_most("etag", r.etag.len(), ID_MAX)?;
            let sums: usize = r.checksums.iter().map(|(k, v)| k.len() + v.len()).sum();
            at_most("part checksums", sums, ID_MAX)
        }
        Op::CompleteMultipart(r) => {
            key("key", &r.key)?;
            at_most("upload id", r.upload_id.len(), ID_MAX)?;
            let max = crate::multipart::MAX_PART_NUMBER as usize;
            if r.parts.len() > max {
                return Err(fail(
                    errno::EINVAL,
                    "TooLarge",
                    format!(
                        "{} parts in one CompleteMultipartUpload, above the limit of {max}",
                        r.parts.len()
                    ),
                ));
            }
            let sums: usize = r.checksums.iter().map(|(k, v)| k.len() + v.len()).sum();
            at_most("object checksums", sums, ID_MAX)
        }
        Op::AbortMultipart(r) => {
            key("key", &r.key)?;
            at_most("upload id", r.upload_id.len(), ID_MAX)
        }
        Op::CreateBucket(r) => {
            crate::names::check_bucket_name(&r.name)?;
            at_most("bucket owner", r.owner.len(), ID_MAX)
        }
        Op::CreateUser(r) => {
            at_most("user name", r.name.len(), ID_MAX)?;
            at_most("access key", r.access_key.len(), ID_MAX)?;
            at_most("secret key", r.secret_key.len(), ID_MAX)
        }
        Op::GrantBucket(r) => at_most("access key", r.access_key.len(), ID_MAX),
        Op::SetUserRole(r) => at_most("access key", r.access_key.len(), ID_MAX),
        Op::SetSetting(r) => {
            at_most("setting name", r.key.len(), ID_MAX)?;
            at_most("setting value", r.value.len(), ID_MAX)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kdss_proto::master as pb;

    fn code(op: Op) -> String {
        match check(&op) {
            Ok(()) => "ok".into(),
            Err(e) => e.failure().map(|f| f.code.clone()).unwrap_or_default(),
        }
    }

    #[test]
    fn oversized_fields_are_refused_and_limits_pass() {
        let xattr = |n: usize, v: usize| {
            Op::SetXattr(pb::SetXattrRequest {
                name: "n".repeat(n),
                value: vec![0; v],
                ..Default::default()
            })
        };
        assert_eq!(code(xattr(255, 64 << 10)), "ok");
        assert_eq!(code(xattr(256, 1)), "InvalidArgument");
        assert_eq!(code(xattr(1, (64 << 10) + 1)), "InvalidArgument");
        let link = |t: usize| {
            Op::Symlink(pb::SymlinkRequest {
                name: "l".into(),
                target: "t".repeat(t),
                ..Default::default()
            })
        };
        assert_eq!(code(link(SYMLINK_MAX)), "ok");
        assert_eq!(code(link(SYMLINK_MAX + 1)), "NameTooLong");
        let put = |user: usize| {
            let mut meta = pb::ObjectMeta::default();
            meta.user.insert("k".into(), "v".repeat(user));
            Op::PutObject(pb::PutObjectRequest {
                key: "a".into(),
                meta: Some(meta),
                ..Default::default()
            })
        };
        assert_eq!(code(put(USER_META_MAX - 1)), "ok");
        assert_eq!(code(put(USER_META_MAX)), "TooLarge");
        let del = Op::DeleteObjects(pb::DeleteObjectsRequest {
            keys: vec!["k".into(); DELETE_KEYS_MAX + 1],
            ..Default::default()
        });
        assert_eq!(code(del), "TooLarge");
    }
}
