//! User secrets for SigV4, fetched from the master with GetUserSecret (service identity
//! only) and kept briefly so a burst of requests costs one master call, while a deleted
//! user or a rotated key stops working within the TTL.

use crate::error::{Code, S3Error, S3Result};
use kdss_client::Client;
use kdss_proto::master as pb;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The cache. Cheap to clone.
#[derive(Clone)]
pub struct SecretCache {
    client: Client,
    ttl: Duration,
    map: Arc<Mutex<HashMap<String, (String, Instant)>>>,
}

impl SecretCache {
    /// A cache over `client` (signed in as the service identity).
    pub fn new(client: Client, ttl: Duration) -> Self {
        SecretCache {
            client,
            ttl,
            map: Arc::default(),
        }
    }

    /// The secret of `access_key`, or InvalidAccessKeyId.
    pub async fn secret(&self, access_key: &str) -> S3Result<String> {
        if let Some((s, at)) = self.map.lock().expect("poisoned").get(access_key)
            && at.elapsed() < self.ttl
        {
            return Ok(s.clone());
        }
        let req = pb::GetUserSecretRequest {
            access_key: access_key.to_string(),
        };
        let reply = self.client.master().get_user_secret(req).await;
        match reply {
            Ok(r) => {
                let mut map = self.map.lock().expect("poisoned");
                if map.len() > 10_000 {
                    map.clear();
                }
                map.insert(
                    access_key.to_string(),
                    (r.secret_key.clone(), Instant::now()),
                );
                Ok(r.secret_key)
            }
            Err(e) => {
                let not_found = matches!(&e, kdss_client::ClientError::Master(s)
                    if s.code() == tonic::Code::NotFound);
                if not_found {
                    Err(S3Error::new(
                        Code::InvalidAccessKeyId,
                        "The AWS Access Key Id you provided does not exist in our records.",
                    ))
                } else {
                    Err(e.into())
                }
            }
        }
    }
}
