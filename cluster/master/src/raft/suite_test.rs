//! openraft's own storage conformance suite against the SQLite log store and the kdss-meta
//! state machine, plus the restart properties the suite does not cover.

use super::log_store::LogStore;
use super::{Command, LogId, StateMachine, TypeConfig};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{CommittedLeaderId, Entry, EntryPayload, RaftLogReader, StorageError};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = LogStore::open(&dir.path().join("raft-log.db")).await?;
        let sm = StateMachine::open(dir.path()).await?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite_passes_on_sqlite_stores() {
    Suite::test_all(Builder).expect("openraft storage suite");
}

fn entry(term: u64, index: u64, payload: EntryPayload<TypeConfig>) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
        payload,
    }
}

#[tokio::test]
async fn log_vote_and_applied_state_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raft-log.db");
    {
        let mut log = LogStore::open(&path).await.unwrap();
        log.save_vote(&openraft::Vote::new(3, 1)).await.unwrap();
        let entries: Vec<_> = (1..=50)
            .map(|i| entry(3, i, EntryPayload::Normal(Command(vec![i as u8]))))
            .collect();
        log.blocking_append(entries).await.unwrap();
        log.purge(LogId::new(CommittedLeaderId::new(3, 1), 10))
            .await
            .unwrap();
        log.truncate(LogId::new(CommittedLeaderId::new(3, 1), 41))
            .await
            .unwrap();
        // A vote is durable when save_vote returns; it also flushes the queued ops before it.
        log.save_vote(&openraft::Vote::new(4, 1)).await.unwrap();
    }
    let mut log = LogStore::open(&path).await.unwrap();
    assert_eq!(
        log.read_vote().await.unwrap(),
        Some(openraft::Vote::new(4, 1))
    );
    let st = log.get_log_state().await.unwrap();
    assert_eq!(st.last_purged_log_id.unwrap().index, 10);
    assert_eq!(st.last_log_id.unwrap().index, 40);
    let got = log.try_get_log_entries(0..100).await.unwrap();
    assert_eq!(got.first().unwrap().log_id.index, 11);
    assert_eq!(got.len(), 30);

    let mut sm = StateMachine::open(dir.path()).await.unwrap();
    let replies = sm
        .apply(vec![
            entry(3, 1, EntryPayload::Blank),
            entry(3, 2, EntryPayload::Blank),
        ])
        .await
        .unwrap();
    assert_eq!(replies.len(), 2);
    drop(sm);
    let mut sm = StateMachine::open(dir.path()).await.unwrap();
    assert_eq!(sm.applied_state().await.unwrap().0.unwrap().index, 2);
}

fn bucket_mutation(name: &str) -> kdss_proto::master::Mutation {
    use kdss_proto::master as pb;
    pb::Mutation {
        ctx: Some(pb::ApplyContext {
            now_ns: 1_700_000_000_000_000_000,
            caller: "alice".into(),
            caller_role: pb::Role::Admin as u32,
        }),
        op: Some(pb::mutation::Op::CreateBucket(pb::CreateBucketRequest {
            name: name.into(),
            k: 5,
            m: 2,
            owner: String::new(),
        })),
    }
}

/// The batch's own statements (BEGIN, a savepoint per mutation, the applied row, COMMIT) are
/// sent joined to others: a refused mutation between two good ones must change nothing while
/// both good ones and the applied row (with a membership holding a quote) stay, after reopen.
#[tokio::test]
async fn a_refused_mutation_inside_a_batch_leaves_its_neighbours_and_the_applied_row() {
    let dir = tempfile::tempdir().unwrap();
    let batch = super::proposer::encode_batch(&[
        bucket_mutation("one"),
        bucket_mutation("one"),
        bucket_mutation("two"),
    ]);
    let mut nodes = std::collections::BTreeMap::new();
    nodes.insert(1, super::Node::new("it's-a-host:1"));
    let membership = openraft::Membership::new(vec![[1].into()], nodes);
    {
        let mut sm = StateMachine::open(dir.path()).await.unwrap();
        let replies = sm
            .apply(vec![
                entry(2, 1, EntryPayload::Blank),
                entry(2, 2, EntryPayload::Normal(batch)),
                entry(2, 3, EntryPayload::Membership(membership.clone())),
            ])
            .await
            .unwrap();
        let got = super::proposer::decode_replies(&replies[1].0).unwrap();
        assert!(got[0].failure.is_none(), "{:?}", got[0]);
        assert!(
            got[1].failure.is_some(),
            "a second bucket `one` was accepted"
        );
        assert!(got[2].failure.is_none(), "{:?}", got[2]);
        sm.close().await;
    }
    let mut sm = StateMachine::open(dir.path()).await.unwrap();
    let (last, stored) = sm.applied_state().await.unwrap();
    assert_eq!(last.unwrap().index, 3);
    assert_eq!(stored.membership(), &membership);
    let pool = sm.pool();
    for name in ["one", "two"] {
        let r = kdss_proto::master::BucketRequest { name: name.into() };
        kdss_meta::read::get_bucket(&pool, &r).await.unwrap();
    }
}
