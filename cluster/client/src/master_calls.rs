//! One typed method per master RPC, generated from one list: `master.lookup(req).await?`.
//! Each goes through [`MasterClient::call`] (leader failover, retry and the deadline), so no
//! caller spells out the retry closure. A new RPC is one line in the `master_rpcs!` list below.

use kdss_proto::master as pb;

use crate::{ClientError, MasterClient};

/// Generates `MasterClient::<rpc>(&self, req) -> Result<Reply, ClientError>` per line.
macro_rules! master_rpcs {
    ($($(#[$doc:meta])* $name:ident($req:ident) -> $reply:ident;)*) => {
        impl MasterClient {
            $(
                $(#[$doc])*
                pub async fn $name(&self, req: pb::$req) -> Result<pb::$reply, ClientError> {
                    self.call(move |mut c| {
                        let req = req.clone();
                        async move { c.$name(req).await }
                    })
                    .await
                }
            )*
        }
    };
}

master_rpcs! {
    /// Looks up a name in a directory.
    lookup(LookupRequest) -> AttrReply;
    /// Attributes of an inode.
    get_attr(GetAttrRequest) -> AttrReply;
    /// Changes attributes (mode, owner, size, times).
    set_attr(SetAttrRequest) -> AttrReply;
    /// Creates a file.
    create(CreateRequest) -> AttrReply;
    /// Creates a directory.
    mkdir(MkdirRequest) -> AttrReply;
    /// Creates a symbolic link.
    symlink(SymlinkRequest) -> AttrReply;
    /// Removes a name (file or link).
    unlink(UnlinkRequest) -> UnlinkReply;
    /// Removes an empty directory.
    rmdir(UnlinkRequest) -> UnlinkReply;
    /// Renames (POSIX semantics and flags).
    rename(RenameRequest) -> RenameReply;
    /// Adds a hard link.
    link(LinkRequest) -> AttrReply;
    /// A symlink's target.
    readlink(ReadlinkRequest) -> ReadlinkReply;
    /// A page of directory entries.
    read_dir(ReadDirRequest) -> ReadDirReply;
    /// Space and inode counts.
    stat_fs(StatFsRequest) -> StatFsReply;
    /// One extended attribute.
    get_xattr(GetXattrRequest) -> GetXattrReply;
    /// Sets an extended attribute.
    set_xattr(SetXattrRequest) -> Empty;
    /// Sets the access times of many inodes in one Raft entry (a mount's batched reads).
    set_atimes(SetAtimesRequest) -> Empty;
    /// Names of the extended attributes.
    list_xattr(ListXattrRequest) -> ListXattrReply;
    /// Removes an extended attribute.
    remove_xattr(RemoveXattrRequest) -> Empty;
    /// Registers an open file of a session.
    open(OpenRequest) -> OpenReply;
    /// Ends an open of a session.
    release(ReleaseRequest) -> Empty;
    /// Keeps a session's opens alive.
    keep_alive(KeepAliveRequest) -> Empty;
    /// Places a new stripe and hands out write capabilities.
    allocate_stripe(AllocateStripeRequest) -> AllocateStripeReply;
    /// Replaces a failed shard target of an uncommitted stripe.
    replace_shard(ReplaceShardRequest) -> ReplaceShardReply;
    /// Commits written extents (and inline bytes) of a file.
    commit_write(CommitWriteRequest) -> AttrReply;
    /// A file's extents and read capabilities.
    get_extents(GetExtentsRequest) -> GetExtentsReply;
    /// Commits an object at a key.
    put_object(PutObjectRequest) -> ObjectReply;
    /// An object's info (and extents when asked).
    head_object(HeadObjectRequest) -> HeadObjectReply;
    /// Deletes an object.
    delete_object(DeleteObjectRequest) -> DeleteObjectReply;
    /// Deletes many objects.
    delete_objects(DeleteObjectsRequest) -> DeleteObjectsReply;
    /// A page of keys.
    list_objects(ListObjectsRequest) -> ListObjectsReply;
    /// Server-side copy.
    copy_object(CopyObjectRequest) -> ObjectReply;
    /// Starts a multipart upload.
    create_multipart(CreateMultipartRequest) -> CreateMultipartReply;
    /// Records one uploaded part.
    put_part(PutPartRequest) -> PutPartReply;
    /// Stitches the parts into the object.
    complete_multipart(CompleteMultipartRequest) -> ObjectReply;
    /// Abandons an upload.
    abort_multipart(AbortMultipartRequest) -> Empty;
    /// The parts of an upload.
    list_parts(ListPartsRequest) -> ListPartsReply;
    /// Uploads in progress.
    list_multipart_uploads(ListMultipartUploadsRequest) -> ListMultipartUploadsReply;
    /// Creates a bucket.
    create_bucket(CreateBucketRequest) -> BucketReply;
    /// Deletes an empty bucket.
    delete_bucket(BucketRequest) -> Empty;
    /// A bucket's info and policy.
    get_bucket(BucketRequest) -> BucketReply;
    /// The buckets the caller may use.
    list_buckets(ListBucketsRequest) -> ListBucketsReply;
    /// Creates a user.
    create_user(CreateUserRequest) -> CreateUserReply;
    /// Deletes a user.
    delete_user(DeleteUserRequest) -> Empty;
    /// Changes a user's role (keys and grants stay).
    set_user_role(SetUserRoleRequest) -> Empty;
    /// All users.
    list_users(ListUsersRequest) -> ListUsersReply;
    /// A user's secret (the gateway verifies SigV4 with it).
    get_user_secret(GetUserSecretRequest) -> GetUserSecretReply;
    /// Grants a user access to a bucket.
    grant_bucket(GrantBucketRequest) -> Empty;
    /// Registers a storage node.
    register_node(RegisterNodeRequest) -> RegisterNodeReply;
    /// A storage node's periodic report.
    heartbeat(RegisterNodeRequest) -> RegisterNodeReply;
    /// Cluster health: masters, nodes, disks.
    cluster_status(ClusterStatusRequest) -> ClusterStatusReply;
    /// A page of the recycle bin.
    list_trash(ListTrashRequest) -> ListTrashReply;
    /// Links a bin item back at its path.
    restore_trash(RestoreTrashRequest) -> RestoreTrashReply;
    /// Purges bin items and starts a GC pass.
    purge_trash(PurgeTrashRequest) -> PurgeTrashReply;
    /// What the collector has pending and did last.
    gc_status(GcStatusRequest) -> GcStatusReply;
    /// Starts a GC pass (and waits for it when asked).
    gc_run(GcRunRequest) -> GcStatusReply;
    /// Every disk with the master's state and the node's last report.
    list_disks(ListDisksRequest) -> ListDisksReply;
    /// An operator sets a disk's state (offline, online, draining).
    set_disk_state(SetDiskStateRequest) -> DiskEntry;
    /// What repair has queued, running and done, with rate and ETA.
    repair_status(RepairStatusRequest) -> RepairStatusReply;
    /// Starts a repair pass (and waits for it when asked).
    repair_run(GcRunRequest) -> RepairStatusReply;
    /// Sets or resets the cluster-wide rebuild bandwidth.
    repair_throttle(RepairThrottleRequest) -> RepairStatusReply;
    /// Disk fullness and the imbalance against `[balance] threshold_pct`.
    balance_status(BalanceStatusRequest) -> BalanceStatusReply;
    /// Starts a balance (operators and admins).
    balance_start(BalanceStartRequest) -> BalanceStatusReply;
    /// Stops a balance.
    balance_stop(BalanceStopRequest) -> BalanceStatusReply;
    /// The scheduled metadata backups on the leader's disk.
    list_meta_backups(ListMetaBackupsRequest) -> ListMetaBackupsReply;
}

impl MasterClient {
    /// Starts a metadata backup on the leader (admins only) and returns the stream of the
    /// backup file's bytes; the failover and deadline cover starting it, not reading it.
    pub async fn meta_backup(&self) -> Result<tonic::Streaming<pb::MetaBackupChunk>, ClientError> {
        self.call(|mut c| async move { c.meta_backup(pb::MetaBackupRequest {}).await })
            .await
    }
}
