//! `impl Master`: one line per rpc, routed through the macros below (forward to the leader,
//! authenticate, check the bucket, then read locally or propose a mutation). The calls with
//! more logic live in `data.rs` (placement, capabilities, statfs) and `cluster.rs` (buckets,
//! users, membership).

use super::{MasterService, forwarded, unexpected};
use crate::meta_api as meta;
use kdss_common::limits::{INLINE_NOT_POSSIBLE, MAX_INLINE_BYTES};
use kdss_common::rpc_error::{self, errno};
use kdss_common::tls::DaemonRole;
use kdss_proto::master as pb;
use kdss_proto::master::master_client::MasterClient;
use kdss_proto::master::master_server::Master;
use kdss_proto::master::mutation::Op;
use kdss_proto::master::mutation_reply::Reply;
use std::time::Instant;
use tonic::{Code, Request, Response, Status};

/// Largest reply a follower accepts when proxying (readdir and listings can be large).
const MAX_PROXY_BYTES: usize = 64 << 20;

/// Proxies the call to the leader when this member is not the leader.
macro_rules! forward {
    ($s:ident, $req:ident, $m:ident) => {
        if let Some(ch) = $s.st.route(&$req).await? {
            let signer = crate::auth::forward_signer(&$s.st.secret)?;
            let mut c = MasterClient::new(signer.wrap(ch))
                .max_decoding_message_size(MAX_PROXY_BYTES)
                .max_encoding_message_size(MAX_PROXY_BYTES);
            return c.$m(forwarded($req)).await;
        }
    };
}

/// A read of one bucket's namespace served from the local database.
macro_rules! bucket_read {
    ($s:ident, $req:ident, $m:ident, $read:path) => {{
        forward!($s, $req, $m);
        let t = Instant::now();
        let caller = $s.st.caller($req.metadata()).await?;
        let r = $req.into_inner();
        $s.st.check_bucket(&caller, &r.bucket, false).await?;
        let out = $read(&$s.st.pool(), &r).await;
        $s.st.metrics.observe(stringify!($m), t);
        out.map(Response::new)
    }};
}

/// A mutation of one bucket's namespace, proposed through Raft; `check` (optional) refuses
/// a request before anything is proposed, `prepare` (optional) may also adjust it by caller.
macro_rules! bucket_write {
    ($s:ident, $req:ident, $m:ident, $op:ident, $pat:pat => $out:expr) => {
        bucket_write!($s, $req, $m, $op, $pat => $out, prepare = |_c, _r| ())
    };
    ($s:ident, $req:ident, $m:ident, $op:ident, $pat:pat => $out:expr, check = $check:expr) => {
        bucket_write!($s, $req, $m, $op, $pat => $out, prepare = |_c, r| $check(&*r)?)
    };
    ($s:ident, $req:ident, $m:ident, $op:ident, $pat:pat => $out:expr,
        prepare = |$c:ident, $r:ident| $prep:expr) => {{
        forward!($s, $req, $m);
        let t = Instant::now();
        let caller = $s.st.caller($req.metadata()).await?;
        let mut r = $req.into_inner();
        $s.st.check_bucket(&caller, &r.bucket, true).await?;
        {
            let $c = &caller;
            let $r = &mut r;
            $prep;
        }
        let out = $s.st.propose(&caller, Op::$op(r)).await;
        $s.st.metrics.observe(stringify!($m), t);
        match out? {
            $pat => Ok(Response::new($out)),
            other => Err(unexpected(other)),
        }
    }};
}

type R<T> = Result<Response<T>, Status>;

/// Refuses inline bytes above [`MAX_INLINE_BYTES`] before they are proposed: inline data
/// travels in a Raft entry to every master and lives in every master's database, so one
/// limit holds on every path that carries it (PutObject, PutPart, CommitWrite). CommitWrite
/// says InlineNotPossible, on which a file writer falls back to stripes.
fn check_inline(call: &str, len: usize) -> Result<(), Status> {
    if len > MAX_INLINE_BYTES {
        let code = match call {
            "CommitWrite" => INLINE_NOT_POSSIBLE,
            _ => "InlineTooLarge",
        };
        return Err(rpc_error::status(
            Code::InvalidArgument,
            errno::EFBIG,
            code,
            format!(
                "{call}: {len} bytes of inline data are above the limit of {MAX_INLINE_BYTES} \
                 bytes; write larger data as stripes"
            ),
        ));
    }
    Ok(())
}

#[tonic::async_trait]
impl Master for MasterService {
    async fn lookup(&self, req: Request<pb::LookupRequest>) -> R<pb::AttrReply> {
        bucket_read!(self, req, lookup, meta::lookup)
    }
    async fn get_attr(&self, req: Request<pb::GetAttrRequest>) -> R<pb::AttrReply> {
        bucket_read!(self, req, get_attr, meta::getattr)
    }
    async fn set_attr(&self, req: Request<pb::SetAttrRequest>) -> R<pb::AttrReply> {
        bucket_write!(self, req, set_attr, SetAttr, Reply::Attr(a) => a,
            prepare = |caller, r| super::modes::set_attr(&self.st.pool(), caller, r).await?)
    }
    async fn create(&self, req: Request<pb::CreateRequest>) -> R<pb::AttrReply> {
        bucket_write!(self, req, create, Create, Reply::Attr(a) => a,
            prepare = |caller, r| super::modes::create(caller, r)?)
    }
    async fn mkdir(&self, req: Request<pb::MkdirRequest>) -> R<pb::AttrReply> {
        bucket_write!(self, req, mkdir, Mkdir, Reply::Attr(a) => a)
    }
    async fn symlink(&self, req: Request<pb::SymlinkRequest>) -> R<pb::AttrReply> {
        bucket_write!(self, req, symlink, Symlink, Reply::Attr(a) => a)
    }
    async fn unlink(&self, req: Request<pb::UnlinkRequest>) -> R<pb::UnlinkReply> {
        bucket_write!(self, req, unlink, Unlink, Reply::Unlink(u) => u)
    }
    async fn rmdir(&self, req: Request<pb::UnlinkRequest>) -> R<pb::UnlinkReply> {
        bucket_write!(self, req, rmdir, Rmdir, Reply::Unlink(u) => u)
    }
    async fn rename(&self, req: Request<pb::RenameRequest>) -> R<pb::RenameReply> {
        bucket_write!(self, req, rename, Rename, Reply::Empty(_) => pb::RenameReply {})
    }
    async fn link(&self, req: Request<pb::LinkRequest>) -> R<pb::AttrReply> {
        bucket_write!(self, req, link, Link, Reply::Attr(a) => a)
    }
    async fn readlink(&self, req: Request<pb::ReadlinkRequest>) -> R<pb::ReadlinkReply> {
        bucket_read!(self, req, readlink, meta::readlink)
    }
    async fn read_dir(&self, req: Request<pb::ReadDirRequest>) -> R<pb::ReadDirReply> {
        bucket_read!(self, req, read_dir, meta::readdir)
    }
    async fn stat_fs(&self, req: Request<pb::StatFsRequest>) -> R<pb::StatFsReply> {
        forward!(self, req, stat_fs);
        self.statfs(req).await
    }
    async fn get_xattr(&self, req: Request<pb::GetXattrRequest>) -> R<pb::GetXattrReply> {
        bucket_read!(self, req, get_xattr, meta::get_xattr)
    }
    async fn set_atimes(&self, req: Request<pb::SetAtimesRequest>) -> R<pb::Empty> {
        bucket_write!(self, req, set_atimes, SetAtimes, Reply::Empty(e) => e)
    }
    async fn set_xattr(&self, req: Request<pb::SetXattrRequest>) -> R<pb::Empty> {
        bucket_write!(self, req, set_xattr, SetXattr, Reply::Empty(e) => e)
    }
    async fn list_xattr(&self, req: Request<pb::ListXattrRequest>) -> R<pb::ListXattrReply> {
        bucket_read!(self, req, list_xattr, meta::list_xattr)
    }
    async fn remove_xattr(&self, req: Request<pb::RemoveXattrRequest>) -> R<pb::Empty> {
        bucket_write!(self, req, remove_xattr, RemoveXattr, Reply::Empty(e) => e)
    }
    async fn open(&self, req: Request<pb::OpenRequest>) -> R<pb::OpenReply> {
        bucket_write!(self, req, open, Open, Reply::Open(o) => o)
    }
    async fn release(&self, req: Request<pb::ReleaseRequest>) -> R<pb::Empty> {
        bucket_write!(self, req, release, Release, Reply::Empty(e) => e)
    }
    async fn keep_alive(&self, req: Request<pb::KeepAliveRequest>) -> R<pb::Empty> {
        forward!(self, req, keep_alive);
        let caller = self.st.caller(req.metadata()).await?;
        let r = req.into_inner();
        kdss_meta::opens::check_ttl(r.ttl_ms)?;
        match self.st.propose(&caller, Op::KeepAlive(r)).await? {
            Reply::Empty(e) => Ok(Response::new(e)),
            other => Err(unexpected(other)),
        }
    }
    async fn allocate_stripe(
        &self,
        req: Request<pb::AllocateStripeRequest>,
    ) -> R<pb::AllocateStripeReply> {
        forward!(self, req, allocate_stripe);
        self.allocate(req).await
    }
    async fn replace_shard(
        &self,
        req: Request<pb::ReplaceShardRequest>,
    ) -> R<pb::ReplaceShardReply> {
        forward!(self, req, replace_shard);
        self.replace(req).await
    }
    async fn commit_write(&self, req: Request<pb::CommitWriteRequest>) -> R<pb::AttrReply> {
        bucket_write!(self, req, commit_write, CommitWrite, Reply::Attr(a) => a,
            check = |r: &pb::CommitWriteRequest| check_inline("CommitWrite", r.inline_data.len()))
    }
    async fn get_extents(&self, req: Request<pb::GetExtentsRequest>) -> R<pb::GetExtentsReply> {
        forward!(self, req, get_extents);
        self.extents(req).await
    }
    async fn put_object(&self, req: Request<pb::PutObjectRequest>) -> R<pb::ObjectReply> {
        bucket_write!(self, req, put_object, PutObject, Reply::Object(o) => o,
            check = |r: &pb::PutObjectRequest| check_inline("PutObject", r.inline_data.len()))
    }
    async fn head_object(&self, req: Request<pb::HeadObjectRequest>) -> R<pb::HeadObjectReply> {
        forward!(self, req, head_object);
        self.head(req).await
    }
    async fn delete_object(
        &self,
        req: Request<pb::DeleteObjectRequest>,
    ) -> R<pb::DeleteObjectReply> {
        bucket_write!(self, req, delete_object, DeleteObject, Reply::DeleteObject(d) => d)
    }
    async fn delete_objects(
        &self,
        req: Request<pb::DeleteObjectsRequest>,
    ) -> R<pb::DeleteObjectsReply> {
        bucket_write!(self, req, delete_objects, DeleteObjects, Reply::DeleteObjects(d) => d)
    }
    async fn list_objects(&self, req: Request<pb::ListObjectsRequest>) -> R<pb::ListObjectsReply> {
        bucket_read!(self, req, list_objects, meta::list_objects)
    }
    async fn copy_object(&self, req: Request<pb::CopyObjectRequest>) -> R<pb::ObjectReply> {
        forward!(self, req, copy_object);
        let t = Instant::now();
        let caller = self.st.caller(req.metadata()).await?;
        let r = req.into_inner();
        self.st.check_bucket(&caller, &r.src_bucket, false).await?;
        self.st.check_bucket(&caller, &r.dst_bucket, true).await?;
        let out = self.st.propose(&caller, Op::CopyObject(r)).await;
        self.st.metrics.observe("copy_object", t);
        match out? {
            Reply::Object(o) => Ok(Response::new(o)),
            other => Err(unexpected(other)),
        }
    }
    async fn create_multipart(
        &self,
        req: Request<pb::CreateMultipartRequest>,
    ) -> R<pb::CreateMultipartReply> {
        bucket_write!(self, req, create_multipart, CreateMultipart, Reply::CreateMultipart(c) => c)
    }
    async fn put_part(&self, req: Request<pb::PutPartRequest>) -> R<pb::PutPartReply> {
        bucket_write!(self, req, put_part, PutPart, Reply::PutPart(p) => p,
            check = |r: &pb::PutPartRequest| check_inline("PutPart", r.inline_data.len()))
    }
    async fn complete_multipart(
        &self,
        req: Request<pb::CompleteMultipartRequest>,
    ) -> R<pb::ObjectReply> {
        bucket_write!(self, req, complete_multipart, CompleteMultipart, Reply::Object(o) => o)
    }
    async fn abort_multipart(&self, req: Request<pb::AbortMultipartRequest>) -> R<pb::Empty> {
        bucket_write!(self, req, abort_multipart, AbortMultipart, Reply::Empty(e) => e)
    }
    async fn list_parts(&self, req: Request<pb::ListPartsRequest>) -> R<pb::ListPartsReply> {
        bucket_read!(self, req, list_parts, meta::list_parts)
    }
    async fn list_multipart_uploads(
        &self,
        req: Request<pb::ListMultipartUploadsRequest>,
    ) -> R<pb::ListMultipartUploadsReply> {
        bucket_read!(
            self,
            req,
            list_multipart_uploads,
            meta::list_multipart_uploads
        )
    }
    async fn create_bucket(&self, req: Request<pb::CreateBucketRequest>) -> R<pb::BucketReply> {
        forward!(self, req, create_bucket);
        self.create_bucket_checked(req).await
    }
    async fn delete_bucket(&self, req: Request<pb::BucketRequest>) -> R<pb::Empty> {
        forward!(self, req, delete_bucket);
        self.delete_bucket_checked(req).await
    }
    async fn get_bucket(&self, req: Request<pb::BucketRequest>) -> R<pb::BucketReply> {
        forward!(self, req, get_bucket);
        let caller = self.st.caller(req.metadata()).await?;
        let name = req.into_inner().name;
        self.st.check_bucket(&caller, &name, false).await?;
        let b = meta::get_bucket(&self.st.pool(), &name).await?;
        Ok(Response::new(pb::BucketReply { bucket: Some(b) }))
    }
    async fn list_buckets(&self, req: Request<pb::ListBucketsRequest>) -> R<pb::ListBucketsReply> {
        forward!(self, req, list_buckets);
        self.list_buckets_visible(req).await
    }
    async fn create_user(&self, req: Request<pb::CreateUserRequest>) -> R<pb::CreateUserReply> {
        forward!(self, req, create_user);
        let caller = self.admin(req.metadata()).await?;
        match self
            .st
            .propose(&caller, Op::CreateUser(req.into_inner()))
            .await?
        {
            Reply::CreateUser(u) => Ok(Response::new(u)),
            other => Err(unexpected(other)),
        }
    }
    async fn delete_user(&self, req: Request<pb::DeleteUserRequest>) -> R<pb::Empty> {
        forward!(self, req, delete_user);
        let caller = self.admin(req.metadata()).await?;
        match self
            .st
            .propose(&caller, Op::DeleteUser(req.into_inner()))
            .await?
        {
            Reply::Empty(e) => Ok(Response::new(e)),
            other => Err(unexpected(other)),
        }
    }
    async fn set_user_role(&self, req: Request<pb::SetUserRoleRequest>) -> R<pb::Empty> {
        forward!(self, req, set_user_role);
        let caller = self.admin(req.metadata()).await?;
        match self
            .st
            .propose(&caller, Op::SetUserRole(req.into_inner()))
            .await?
        {
            Reply::Empty(e) => Ok(Response::new(e)),
            other => Err(unexpected(other)),
        }
    }
    async fn list_users(&self, req: Request<pb::ListUsersRequest>) -> R<pb::ListUsersReply> {
        forward!(self, req, list_users);
        self.admin(req.metadata()).await?;
        Ok(Response::new(meta::list_users(&self.st.pool()).await?))
    }
    async fn get_user_secret(
        &self,
        req: Request<pb::GetUserSecretRequest>,
    ) -> R<pb::GetUserSecretReply> {
        // Users' secrets go to gateways only (and to a master forwarding a gateway's call,
        // which checked it here first): a storage node holds the cluster secret too.
        crate::auth::require_peer_role(
            &req,
            self.st.mtls,
            &[DaemonRole::Gateway, DaemonRole::Master],
        )?;
        forward!(self, req, get_user_secret);
        crate::auth::require_service(req.metadata())?;
        let key = req.into_inner().access_key;
        Ok(Response::new(
            meta::user_with_secret(&self.st.pool(), &self.st.seal, &key).await?,
        ))
    }
    async fn grant_bucket(&self, req: Request<pb::GrantBucketRequest>) -> R<pb::Empty> {
        forward!(self, req, grant_bucket);
        self.grant_checked(req).await
    }
    async fn register_node(
        &self,
        req: Request<pb::RegisterNodeRequest>,
    ) -> R<pb::RegisterNodeReply> {
        self.node_heartbeat(req).await
    }
    async fn heartbeat(&self, req: Request<pb::RegisterNodeRequest>) -> R<pb::RegisterNodeReply> {
        self.node_heartbeat(req).await
    }
    async fn cluster_status(
        &self,
        req: Request<pb::ClusterStatusRequest>,
    ) -> R<pb::ClusterStatusReply> {
        self.status(req).await
    }
    async fn list_trash(&self, req: Request<pb::ListTrashRequest>) -> R<pb::ListTrashReply> {
        forward!(self, req, list_trash);
        self.list_trash_checked(req).await
    }
    async fn restore_trash(
        &self,
        req: Request<pb::RestoreTrashRequest>,
    ) -> R<pb::RestoreTrashReply> {
        forward!(self, req, restore_trash);
        self.restore_trash_checked(req).await
    }
    async fn purge_trash(&self, req: Request<pb::PurgeTrashRequest>) -> R<pb::PurgeTrashReply> {
        forward!(self, req, purge_trash);
        self.purge_trash_checked(req).await
    }
    async fn gc_status(&self, req: Request<pb::GcStatusRequest>) -> R<pb::GcStatusReply> {
        forward!(self, req, gc_status);
        self.gc_status_checked(req).await
    }
    async fn gc_run(&self, req: Request<pb::GcRunRequest>) -> R<pb::GcStatusReply> {
        forward!(self, req, gc_run);
        self.gc_run_checked(req).await
    }
    async fn repair_status(
        &self,
        req: Request<pb::RepairStatusRequest>,
    ) -> R<pb::RepairStatusReply> {
        forward!(self, req, repair_status);
        self.repair_status_checked(req).await
    }
    async fn repair_run(&self, req: Request<pb::GcRunRequest>) -> R<pb::RepairStatusReply> {
        forward!(self, req, repair_run);
        self.repair_run_checked(req).await
    }
    async fn repair_throttle(
        &self,
        req: Request<pb::RepairThrottleRequest>,
    ) -> R<pb::RepairStatusReply> {
        forward!(self, req, repair_throttle);
        self.repair_throttle_checked(req).await
    }
    async fn list_disks(&self, req: Request<pb::ListDisksRequest>) -> R<pb::ListDisksReply> {
        forward!(self, req, list_disks);
        self.list_disks_checked(req).await
    }
    async fn set_disk_state(&self, req: Request<pb::SetDiskStateRequest>) -> R<pb::DiskEntry> {
        forward!(self, req, set_disk_state);
        self.set_disk_state_checked(req).await
    }
    async fn balance_status(
        &self,
        req: Request<pb::BalanceStatusRequest>,
    ) -> R<pb::BalanceStatusReply> {
        forward!(self, req, balance_status);
        self.balance_status_checked(req).await
    }
    async fn balance_start(
        &self,
        req: Request<pb::BalanceStartRequest>,
    ) -> R<pb::BalanceStatusReply> {
        forward!(self, req, balance_start);
        self.balance_start_checked(req).await
    }
    async fn balance_stop(
        &self,
        req: Request<pb::BalanceStopRequest>,
    ) -> R<pb::BalanceStatusReply> {
        forward!(self, req, balance_stop);
        self.balance_stop_checked(req).await
    }
    type MetaBackupStream = super::backup::BackupStream;
    async fn meta_backup(&self, req: Request<pb::MetaBackupRequest>) -> R<Self::MetaBackupStream> {
        self.meta_backup_checked(req).await
    }
    async fn list_meta_backups(
        &self,
        req: Request<pb::ListMetaBackupsRequest>,
    ) -> R<pb::ListMetaBackupsReply> {
        self.list_meta_backups_checked(req).await
    }
}
