//! Applying one replicated mutation: a savepoint around it, dispatch on the op, domain
//! failures turned into `MutationReply.failure` with the savepoint rolled back.

use crate::error::{MetaError, Result, einval};
use crate::sealed::{self, SecretSeal};
use crate::{accounts, data, disks, gc, multipart, objects, opens, posix, rename, repair, trash};
use kdss_proto::master::mutation::Op;
use kdss_proto::master::mutation_reply::Reply;
use kdss_proto::master::{
    AttrReply, BucketReply, CreateMultipartReply, DeleteObjectReply, DeleteObjectsReply, Empty,
    Mutation, MutationReply, ObjectReply, PutPartReply, UnlinkReply,
};
use sqlx::SqliteConnection;

/// Fills on the leader, before proposing, what apply must not invent, and seals what the
/// log must not carry: for CreateUser a random access key and secret key when none is
/// given, and the secret sealed under `seal` (so Raft entries, snapshots and the database
/// hold only ciphertext). Returns the plaintext secret of a CreateUser, for the reply to
/// its caller. Call it on every mutation before proposing.
pub fn prepare(m: &mut Mutation, seal: &SecretSeal) -> Result<Option<String>> {
    let Some(Op::CreateUser(u)) = &mut m.op else {
        return Ok(None);
    };
    if sealed::is_sealed(&u.secret_key) {
        return Ok(None);
    }
    use rand::distr::{Alphanumeric, SampleString};
    if u.access_key.is_empty() {
        // The seal binds the access key, so it is chosen here rather than in apply.
        u.access_key = format!("KD{}", hex::encode_upper(rand::random::<[u8; 9]>()));
    }
    if u.secret_key.is_empty() {
        u.secret_key = Alphanumeric.sample_string(&mut rand::rng(), 40);
    }
    accounts::check_secret(&u.secret_key)?;
    let plain = std::mem::take(&mut u.secret_key);
    u.secret_key = seal.seal(&u.access_key, &plain);
    Ok(Some(plain))
}

/// Applies one mutation. Deterministic: time from `m.ctx.now_ns`, caller from `m.ctx`,
/// ids from SQLite sequences. A domain failure (ENOENT, NoSuchKey, ...) is returned in
/// `MutationReply.failure` with nothing changed; `Err` only for database failures (the
/// caller's transaction should then be abandoned).
pub async fn apply(conn: &mut SqliteConnection, m: &Mutation) -> Result<MutationReply> {
    sqlx::query(OPEN_SAVEPOINT).execute(&mut *conn).await?;
    let reply = apply_in_savepoint(conn, m).await;
    sqlx::query(RELEASE_SAVEPOINT).execute(&mut *conn).await?;
    reply
}

/// Opens the savepoint that [`apply_in_savepoint`] expects.
pub const OPEN_SAVEPOINT: &str = "SAVEPOINT meta_apply";
/// Releases the savepoint after [`apply_in_savepoint`].
pub const RELEASE_SAVEPOINT: &str = "RELEASE meta_apply";

/// [`apply`] for a caller that opens [`OPEN_SAVEPOINT`] before and releases it with
/// [`RELEASE_SAVEPOINT`] after, so that it can send those in one call with its own
/// statements (BEGIN, the next mutation's savepoint, COMMIT): each statement sent on its own
/// is a round trip to the connection's thread. A domain failure rolls the savepoint back
/// (leaving it open, for the caller to release).
pub async fn apply_in_savepoint(
    conn: &mut SqliteConnection,
    m: &Mutation,
) -> Result<MutationReply> {
    match dispatch(conn, m).await {
        Ok(reply) => Ok(MutationReply {
            reply: Some(reply),
            failure: None,
        }),
        Err(e) => {
            sqlx::query("ROLLBACK TO meta_apply")
                .execute(&mut *conn)
                .await?;
            match e {
                MetaError::Failure(f) => Ok(MutationReply {
                    reply: None,
                    failure: Some(f),
                }),
                other => Err(other),
            }
        }
    }
}

/// Whether applying `op` may change a row of the users table (keys, roles, secrets): the
/// master's cache of verified users is dropped after such an entry.
pub fn changes_users(op: &Op) -> bool {
    matches!(
        op,
        Op::CreateUser(_) | Op::DeleteUser(_) | Op::SetUserRole(_) | Op::SealUserSecrets(_)
    )
}

fn attr(a: kdss_proto::master::Attr) -> Reply {
    Reply::Attr(AttrReply {
        attr: Some(a),
        parent: None,
    })
}

/// The attributes of directory `parent` after a change of its entries.
async fn parent_attr(
    c: &mut SqliteConnection,
    bucket: &str,
    parent: u64,
) -> Result<Option<kdss_proto::master::Attr>> {
    Ok(Some(crate::tree::inode_in(c, bucket, parent).await?.attr()))
}

/// The reply of a call that added a name to `parent`: the new node and the directory
/// (read here unless the call returned it).
async fn attr_in(
    c: &mut SqliteConnection,
    bucket: &str,
    parent: u64,
    (a, known): (kdss_proto::master::Attr, Option<kdss_proto::master::Attr>),
) -> Result<Reply> {
    let parent = match known {
        Some(p) => Some(p),
        None => parent_attr(c, bucket, parent).await?,
    };
    Ok(Reply::Attr(AttrReply {
        attr: Some(a),
        parent,
    }))
}

async fn dispatch(c: &mut SqliteConnection, m: &Mutation) -> Result<Reply> {
    let ctx = m.ctx.clone().unwrap_or_default();
    let now = ctx.now_ns;
    let caller = ctx.caller.as_str();
    let empty = Reply::Empty(Empty {});
    let Some(op) = &m.op else {
        return Err(einval("mutation without an op"));
    };
    Ok(match op {
        Op::SetAttr(r) => attr(posix::setattr(c, r, now).await?),
        Op::SetAtimes(r) => {
            posix::set_atimes(c, r).await?;
            empty
        }
        Op::Create(r) => {
            let a = posix::create(c, r, now, caller).await?;
            attr_in(c, &r.bucket, r.parent, a).await?
        }
        Op::Mkdir(r) => {
            let a = posix::mkdir(c, r, now, caller).await?;
            attr_in(c, &r.bucket, r.parent, a).await?
        }
        Op::Symlink(r) => {
            let a = posix::symlink(c, r, now, caller).await?;
            attr_in(c, &r.bucket, r.parent, a).await?
        }
        Op::Unlink(r) => Reply::Unlink(UnlinkReply {
            parent: posix::unlink(c, r, now).await?,
        }),
        Op::Rmdir(r) => Reply::Unlink(UnlinkReply {
            parent: posix::rmdir(c, r, now).await?,
        }),
        Op::Rename(r) => {
            rename::rename(c, r, now, caller).await?;
            empty
        }
        Op::Link(r) => {
            let a = posix::link(c, r, now).await?;
            attr_in(c, &r.bucket, r.new_parent, (a, None)).await?
        }
        Op::SetXattr(r) => {
            posix::set_xattr(c, r, now).await?;
            empty
        }
        Op::RemoveXattr(r) => {
            posix::remove_xattr(c, r, now).await?;
            empty
        }
        Op::Open(r) => Reply::Open(opens::open(c, r, now, caller).await?),
        Op::Release(r) => {
            opens::release(c, r, now, caller).await?;
            empty
        }
        Op::KeepAlive(r) => {
            opens::keep_alive(c, r, now, caller).await?;
            empty
        }
        Op::ExpireSessions(r) => {
            opens::expire(c, r, now).await?;
            empty
        }
        Op::CreateStripe(r) => Reply::Stripe(data::create_stripe(c, r, now, caller).await?),
        Op::ReplaceShard(r) => Reply::Location(data::replace_shard(c, r, caller).await?),
        Op::CommitWrite(r) => attr(data::commit_write(c, r, now).await?),
        Op::PutObject(r) => object(objects::put_object(c, r, now, caller).await?),
        Op::DeleteObject(r) => {
            let existed = objects::delete_object(c, &r.bucket, &r.key, now).await?;
            Reply::DeleteObject(DeleteObjectReply { existed })
        }
        Op::DeleteObjects(r) => {
            let results = objects::delete_objects(c, r, now).await?;
            Reply::DeleteObjects(DeleteObjectsReply { results })
        }
        Op::CopyObject(r) => object(objects::copy_object(c, r, now, caller).await?),
        Op::CreateMultipart(r) => {
            let upload_id = multipart::create(c, r, now, caller).await?;
            Reply::CreateMultipart(CreateMultipartReply { upload_id })
        }
        Op::PutPart(r) => Reply::PutPart(PutPartReply {
            part: Some(multipart::put_part(c, r, now).await?),
        }),
        Op::CompleteMultipart(r) => object(multipart::complete(c, r, now, caller).await?),
        Op::AbortMultipart(r) => {
            multipart::abort(c, r, now).await?;
            empty
        }
        Op::CreateBucket(r) => Reply::Bucket(BucketReply {
            bucket: Some(accounts::create_bucket(c, r, now, caller).await?),
        }),
        Op::DeleteBucket(r) => {
            accounts::delete_bucket(c, &r.name, now).await?;
            empty
        }
        Op::CreateUser(r) => Reply::CreateUser(accounts::create_user(c, r, now).await?),
        Op::DeleteUser(r) => {
            accounts::delete_user(c, r).await?;
            empty
        }
        Op::GrantBucket(r) => {
            accounts::grant(c, r).await?;
            empty
        }
        Op::SetUserRole(r) => {
            accounts::set_role(c, r).await?;
            empty
        }
        Op::RestoreTrash(r) => Reply::RestoreTrash(trash::restore(c, r, now).await?),
        Op::PurgeTrash(r) => Reply::PurgeTrash(trash::purge(c, r, now).await?),
        Op::ForgetShards(r) => {
            gc::forget_shards(c, r).await?;
            empty
        }
        Op::ExpireStaleStripes(r) => {
            gc::expire_stale(c, r, now).await?;
            empty
        }
        Op::SetDiskState(r) => {
            disks::set_state(c, r, now).await?;
            empty
        }
        Op::MoveShard(r) => {
            repair::move_shard(c, r).await?;
            empty
        }
        Op::SetSetting(r) => {
            repair::set_setting(c, r).await?;
            empty
        }
        Op::SealUserSecrets(r) => {
            accounts::seal_secrets(c, r).await?;
            empty
        }
    })
}

fn object(info: kdss_proto::master::ObjectInfo) -> Reply {
    Reply::Object(ObjectReply { info: Some(info) })
}
