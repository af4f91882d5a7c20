//! The list check: a list is a read of many keys at once, so the per-key register search
//! cannot judge it. It is held instead to what any linearizable store must show, against
//! the writes and deletes of the same history:
//!
//! - a listed key must have been written by some call invoked before the list completed;
//! - a key whose delete was acknowledged before the list began must not be listed, unless
//!   a write of it (acknowledged or not) may have taken effect after that delete and
//!   before the list completed;
//! - a key whose write was acknowledged before the list began must be listed, unless a
//!   delete of it (acknowledged or not) may have taken effect after that write and before
//!   the list completed.
//!
//! A rename counts as a write of its target and a delete of its source.
//!
//! These are necessary conditions, not the whole of linearizability for lists (which
//! would need every key's order chosen together with the lists'), and they cost one pass
//! over a key's calls per list and key.

use crate::history::{Call, History, Operation, Outcome};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What a list got wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFault {
    /// It named a key no call had begun to write.
    NeverWritten,
    /// It named a key deleted before the list began and not written since.
    Deleted,
    /// It left out a key written before the list began and not deleted since.
    Missing,
}

/// A list whose answer no order of the history's calls explains.
#[derive(Debug, Clone)]
pub struct ListAnomaly {
    pub fault: ListFault,
    pub key: String,
    pub list: Operation,
    /// The acknowledged write or delete that the answer contradicts (none for
    /// [`ListFault::NeverWritten`]).
    pub witness: Option<Operation>,
}

impl fmt::Display for ListAnomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.fault {
            ListFault::NeverWritten => "named a key no call had begun to write",
            ListFault::Deleted => "named a key deleted before it began and not written since",
            ListFault::Missing => "left out a key written before it began and not deleted since",
        };
        let show = |op: &Operation| {
            format!(
                "p{} {:?} {:?} -> {:?} [{:.3}s .. {:.3}s]",
                op.process,
                op.key,
                op.call,
                op.outcome,
                op.invoked_ns as f64 / 1e9,
                op.completed_ns as f64 / 1e9
            )
        };
        writeln!(f, "a list {what}: key {:?}", self.key)?;
        writeln!(f, "  list: {}", show(&self.list))?;
        if let Some(w) = &self.witness {
            writeln!(f, "  after: {}", show(w))?;
        }
        Ok(())
    }
}

/// A call's completion as a bound: unknown outcomes may take effect any time later.
fn completes(op: &Operation) -> u64 {
    if op.outcome == Outcome::Unknown {
        u64::MAX
    } else {
        op.completed_ns
    }
}

/// Checks every answered list of `history`; returns how many were checked and the first
/// anomaly. Failed calls changed nothing and are ignored; unknown ones may have taken
/// effect.
pub(crate) fn check_lists(history: &History) -> (usize, Option<ListAnomaly>) {
    let mut writes: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    let mut deletes: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in &history.ops {
        if op.outcome == Outcome::Failed {
            continue;
        }
        match &op.call {
            Call::Put { .. } => writes.entry(&op.key).or_default().push(op),
            Call::Delete => deletes.entry(&op.key).or_default().push(op),
            // A rename may create its target and removes its source: a write of the one,
            // a delete of the other.
            Call::Rename { to } => {
                writes.entry(to).or_default().push(op);
                deletes.entry(&op.key).or_default().push(op);
            }
            Call::Get | Call::List => {}
        }
    }
    let none: Vec<&Operation> = Vec::new();
    let mut checked = 0;
    for list in &history.ops {
        let Outcome::Listed { keys } = &list.outcome else {
            continue;
        };
        checked += 1;
        let listed: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
        let known: BTreeSet<&str> = writes.keys().chain(deletes.keys()).copied().collect();
        for key in listed.union(&known) {
            let w = writes.get(key).unwrap_or(&none);
            let d = deletes.get(key).unwrap_or(&none);
            let fault = if listed.contains(key) {
                judge_listed(list, w, d)
            } else {
                judge_missing(list, w, d)
            };
            if let Some((fault, witness)) = fault {
                return (
                    checked,
                    Some(ListAnomaly {
                        fault,
                        key: key.to_string(),
                        list: list.clone(),
                        witness: witness.cloned(),
                    }),
                );
            }
        }
    }
    (checked, None)
}

/// The acknowledged call of `ops` that completed before `list` began and began last: of
/// all such calls, the one the fewest others can follow.
fn last_before<'a>(list: &Operation, ops: &[&'a Operation]) -> Option<&'a Operation> {
    ops.iter()
        .filter(|o| o.outcome == Outcome::Ok && o.completed_ns < list.invoked_ns)
        .max_by_key(|o| o.invoked_ns)
        .copied()
}

/// Whether one of `ops` may take effect after `after` began and before `list` ended.
fn may_follow(list: &Operation, after: &Operation, ops: &[&Operation]) -> bool {
    ops.iter()
        .any(|o| o.invoked_ns < completes(list) && completes(o) > after.invoked_ns)
}

fn judge_listed<'a>(
    list: &Operation,
    writes: &[&'a Operation],
    deletes: &[&'a Operation],
) -> Option<(ListFault, Option<&'a Operation>)> {
    if !writes.iter().any(|w| w.invoked_ns < completes(list)) {
        return Some((ListFault::NeverWritten, None));
    }
    let d = last_before(list, deletes)?;
    (!may_follow(list, d, writes)).then_some((ListFault::Deleted, Some(d)))
}

fn judge_missing<'a>(
    list: &Operation,
    writes: &[&'a Operation],
    deletes: &[&'a Operation],
) -> Option<(ListFault, Option<&'a Operation>)> {
    let w = last_before(list, writes)?;
    (!may_follow(list, w, deletes)).then_some((ListFault::Missing, Some(w)))
}
