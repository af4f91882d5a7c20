//! Users' secret keys at rest (kdss_meta::sealed): the start check that this master's
//! cluster secret opens them, and the leader's sealing of rows written before secrets were
//! sealed. The leader seals those through Raft (`SealUserSecrets`) rather than each master
//! at start: sealing uses a random nonce, so masters sealing on their own would hold
//! different bytes (and snapshots and backups would differ by member), and a plaintext
//! CreateUser entry still in a log would be applied after such a start and leave plaintext
//! again. One entry gives every member the same ciphertext at the same log index, and the
//! leader repeats it whenever it finds plaintext rows (every `leader_duties` tick).

use super::State;
use crate::error::MasterError;
use kdss_proto::master as pb;

/// Refuses to start when the database's sealed secrets were sealed under another cluster
/// secret, naming the problem (calls would otherwise fail one by one).
pub async fn check_cluster_secret(st: &State) -> Result<(), MasterError> {
    crate::meta_api::check_seal(&st.pool(), &st.seal)
        .await
        .map_err(|e| MasterError::Storage(e.to_string()))
}

/// On the leader: seals the plaintext secrets of rows written before sealing, in one Raft
/// entry. Does nothing when there are none; failures are retried on the next tick.
pub async fn seal_plaintext_secrets(st: &State) {
    let rows = match crate::meta_api::unsealed_secrets(&st.pool()).await {
        Ok(rows) if rows.is_empty() => return,
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "reading users' unsealed secrets");
            return;
        }
    };
    let secrets = rows
        .iter()
        .map(|(key, plain)| pb::SealedUserSecret {
            access_key: key.clone(),
            sealed: st.seal.seal(key, plain),
        })
        .collect();
    let n = rows.len();
    let op = pb::mutation::Op::SealUserSecrets(pb::SealUserSecretsOp { secrets });
    match st.propose(&crate::auth::Caller::service(), op).await {
        Ok(_) => tracing::info!(users = n, "sealed users' plaintext secret keys"),
        Err(e) => tracing::warn!(error = %e, "sealing users' plaintext secret keys"),
    }
}
