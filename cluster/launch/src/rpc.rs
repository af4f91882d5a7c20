//! The few master calls the launcher needs (readiness, bucket creation), made with the
//! admin credentials. Kept minimal: the client data path lives in kdss-client.

use kdss_common::auth::signer::{Signed, Signer};
use kdss_common::rpc_error;
use kdss_proto::master as pb;
use pb::master_client::MasterClient;
use std::time::Duration;
use tonic::transport::Channel;

/// An authenticated admin connection to one master.
#[derive(Clone)]
pub struct AdminRpc {
    client: MasterClient<Signed<Channel>>,
}

impl AdminRpc {
    /// Connects to `addr` (host:port) within `timeout`.
    pub async fn connect(
        addr: &str,
        access_key: &str,
        secret_key: &str,
        tls: Option<&std::sync::Arc<kdss_common::tls::ClientTls>>,
        timeout: Duration,
    ) -> Result<AdminRpc, tonic::Status> {
        let ch = kdss_common::tls::endpoint_with(addr, tls.map(|t| &**t))
            .map_err(tonic::Status::invalid_argument)?
            .connect_timeout(timeout)
            .timeout(timeout)
            .connect()
            .await
            .map_err(|e| tonic::Status::unavailable(format!("connect {addr}: {e}")))?;
        Ok(AdminRpc {
            client: MasterClient::new(Signer::new(access_key, secret_key).wrap(ch)),
        })
    }

    /// A request; the channel signs it.
    fn req<T>(&self, msg: T) -> tonic::Request<T> {
        tonic::Request::new(msg)
    }

    /// Cluster status as the master sees it.
    pub async fn status(&self) -> Result<pb::ClusterStatusReply, tonic::Status> {
        let mut c = self.client.clone();
        Ok(c.cluster_status(self.req(pb::ClusterStatusRequest {}))
            .await?
            .into_inner())
    }

    /// Creates a bucket; an existing one of that name is fine.
    pub async fn ensure_bucket(&self, name: &str, k: u32, m: u32) -> Result<(), tonic::Status> {
        let mut c = self.client.clone();
        let r = c
            .create_bucket(self.req(pb::CreateBucketRequest {
                name: name.into(),
                k,
                m,
                owner: String::new(),
            }))
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(s)
                if s.code() == tonic::Code::AlreadyExists
                    || rpc_error::errno_of(&s) == rpc_error::errno::EEXIST =>
            {
                Ok(())
            }
            Err(s) => Err(s),
        }
    }

    /// Creates a user with given keys (test suites bring their own); existing is fine.
    pub async fn ensure_user(
        &self,
        name: &str,
        access_key: &str,
        secret_key: &str,
        role: pb::Role,
    ) -> Result<(), tonic::Status> {
        let mut c = self.client.clone();
        let r = c
            .create_user(self.req(pb::CreateUserRequest {
                name: name.into(),
                access_key: access_key.into(),
                secret_key: secret_key.into(),
                role: role as i32,
            }))
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(s)
                if s.code() == tonic::Code::AlreadyExists
                    || rpc_error::errno_of(&s) == rpc_error::errno::EEXIST =>
            {
                Ok(())
            }
            Err(s) => Err(s),
        }
    }
}
