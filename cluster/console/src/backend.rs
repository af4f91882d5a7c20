//! The console's way to the cluster: the master's own gRPC API through kdss-client (leader
//! following, deadline, retry). Reads go as the service identity after the console's table
//! allowed them (the master keeps some reads, such as the disk list, to operators, while a
//! console viewer reads everything but secrets); every change goes on behalf of the signed-in
//! user (`kdss-on-behalf-of`), so the master's own checks apply to it as well.

use crate::error::ConsoleError;
use crate::rbac::ConsoleRole;
use kdss_client::{Client, ClientConfig, MasterClient};
use kdss_proto::master as pb;
use std::sync::Arc;
use std::time::Duration;

/// One cluster event or alert as the console shows it (the master keeps the recent ones of
/// the stream it sends to Lark).
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventRow {
    /// When it happened, Unix milliseconds.
    pub at_ms: i64,
    /// Short kind, e.g. "disk offline".
    pub kind: String,
    /// What it is about.
    pub subject: String,
    /// Details (reason, counts).
    pub detail: String,
    /// Whether it is a problem (warning) rather than a recovery or information.
    pub alert: bool,
}

/// Hands the console the master's recent events, newest last.
pub type EventFeed = Arc<dyn Fn() -> Vec<EventRow> + Send + Sync>;

/// What the master gives the console when mounting it.
#[derive(Clone)]
pub struct ConsoleConfig {
    /// Master gRPC addresses, this master's first (a follower forwards writes itself).
    pub masters: Vec<String>,
    /// The cluster secret: the console signs in as the service identity with it.
    pub secret: String,
    /// The cluster's default EC policy (k, m).
    pub default_ec: (u32, u32),
    /// Effective settings as (key, value), secrets already left out by the master.
    pub settings: Vec<(String, String)>,
    /// The master's recent events.
    pub events: EventFeed,
    /// How long a session lives without use.
    pub session_ttl: Duration,
}

/// Calls to the masters for the console.
pub struct Backend {
    service: Client,
    masters: Vec<String>,
}

fn client(masters: &[String], ak: &str, sk: &str) -> Result<Client, ConsoleError> {
    let cfg = ClientConfig {
        masters: masters.to_vec(),
        access_key: ak.to_string(),
        secret_key: sk.to_string(),
        cache_bytes: 1 << 20,
        rpc_timeout: Duration::from_secs(10),
        ..ClientConfig::default()
    };
    Client::connect_lazy(cfg).map_err(|e| ConsoleError::Unavailable(e.to_string()))
}

impl Backend {
    /// Lazily connected channels to `cfg.masters` as the service identity.
    pub fn new(cfg: &ConsoleConfig) -> Result<Backend, ConsoleError> {
        Ok(Backend {
            service: client(
                &cfg.masters,
                kdss_common::auth::SERVICE_ACCESS_KEY,
                &cfg.secret,
            )?,
            masters: cfg.masters.clone(),
        })
    }

    /// The service identity, for reads the console's table allowed.
    pub fn read(&self) -> &MasterClient {
        self.service.master()
    }

    /// Acting for `access_key`: the master checks that user's rights.
    pub fn acting(&self, access_key: &str) -> MasterClient {
        self.service.acting_for(access_key).master().clone()
    }

    /// Verifies a key pair with a call signed by it, then reads the user's role. Plain S3
    /// users are refused: the console is for administrators.
    pub async fn verify(&self, ak: &str, sk: &str) -> Result<ConsoleRole, ConsoleError> {
        let refused =
            || ConsoleError::LoginRefused("unknown access key or wrong secret key".into());
        if ak.is_empty() || sk.is_empty() || ak == kdss_common::auth::SERVICE_ACCESS_KEY {
            return Err(refused());
        }
        let user = client(&self.masters, ak, sk)?;
        match user
            .master()
            .cluster_status(pb::ClusterStatusRequest {})
            .await
        {
            Ok(_) => {}
            Err(kdss_client::ClientError::Master(s))
                if matches!(
                    s.code(),
                    tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
                ) =>
            {
                return Err(refused());
            }
            Err(e) => return Err(e.into()),
        }
        let users = self.read().list_users(pb::ListUsersRequest {}).await?;
        let role = users
            .users
            .iter()
            .find(|u| u.access_key == ak)
            .map(|u| u.role())
            .ok_or_else(refused)?;
        ConsoleRole::from_master(role).ok_or_else(|| {
            ConsoleError::NoConsoleRole(format!(
                "{ak} is an S3 user; the console needs the viewer, operator or admin role"
            ))
        })
    }
}
