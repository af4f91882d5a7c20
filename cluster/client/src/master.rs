//! Master access: the generated gRPC client behind auth, leader failover and deadlines.

use kdss_proto::master as pb;

/// Calls the master API. `rpc()` hands out a generated client whose interceptor adds the
/// credential (and `kdss-on-behalf-of` when acting for a user).
#[derive(Clone)]
pub struct MasterClient {
    _private: (),
}

/// The generated client type with the auth interceptor.
pub type Rpc = pb::master_client::MasterClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, AuthInterceptor>,
>;

/// Adds the credential to every call.
#[derive(Clone)]
pub struct AuthInterceptor {
    pub access_key: String,
    pub secret_key: String,
    pub on_behalf_of: Option<String>,
}

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let v = kdss_common::auth::credential(
            &self.access_key,
            &self.secret_key,
            kdss_common::time::now_ms(),
        );
        req.metadata_mut().insert(
            kdss_common::auth::AUTH_HEADER,
            v.parse().map_err(|_| tonic::Status::internal("credential is not ASCII"))?,
        );
        if let Some(u) = &self.on_behalf_of {
            req.metadata_mut().insert(
                kdss_common::auth::ON_BEHALF_OF_HEADER,
                u.parse().map_err(|_| tonic::Status::invalid_argument("user is not ASCII"))?,
            );
        }
        Ok(req)
    }
}

impl MasterClient {
    /// A client on the current master (the leader when known). Calls that fail with
    /// Unavailable should be retried through [`MasterClient::call`].
    pub fn rpc(&self) -> Rpc {
        todo!("kdss-client: MasterClient::rpc")
    }

    /// Runs `f` against a master, retrying on another member when one is unreachable,
    /// within the configured deadline.
    pub async fn call<T, F, Fut>(&self, f: F) -> Result<T, crate::ClientError>
    where
        F: Fn(Rpc) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let _ = f;
        todo!("kdss-client: MasterClient::call")
    }
}
