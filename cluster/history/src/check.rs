//! The linearizability search: per key, a depth-first search over which operation takes
//! effect next (Wing & Gong), skipping any (set of operations taken, register value) it
//! has explored before (Lowe; Porcupine), so histories of a few hundred concurrent
//! operations per key check in milliseconds.
//!
//! A rename touches two keys, so keys that renames join (a→b, b→c: one group {a, b, c})
//! are searched together, with a state holding every key of the group (at most
//! [`MAX_GROUP`]); a key no rename touches is a group of one, searched as before.

use crate::history::{Call, History, HistoryError, Operation, Outcome};
use crate::lists::{ListAnomaly, check_lists};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

/// How much search one key may take before the checker gives up (a long run with much
/// concurrency can explode; giving up is reported, never taken for a pass).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub max_steps_per_key: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_steps_per_key: 5_000_000,
        }
    }
}

/// The most keys renames may join into one group: the search's state holds one value
/// per key of the group, and the workloads rename within pairs.
pub const MAX_GROUP: usize = 4;

/// A key (or a group of keys joined by renames) whose operations no order explains.
#[derive(Debug, Clone)]
pub struct Anomaly {
    /// The key, or the group's keys joined with `+` (`a+b`).
    pub key: String,
    /// The key's checked operations (failed calls and unknown reads left out), by
    /// invocation time.
    pub ops: Vec<Operation>,
    /// The longest order found that explains a prefix of them (indexes into `ops`).
    pub longest: Vec<usize>,
    /// What could take effect after that prefix, and none of which fits the value then.
    pub stuck_at: Vec<usize>,
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |op: &Operation| {
            format!(
                "p{} {} {:?} -> {:?} [{:.3}s .. {}]",
                op.process,
                op.key,
                op.call,
                op.outcome,
                op.invoked_ns as f64 / 1e9,
                if op.outcome == Outcome::Unknown {
                    "?".to_string()
                } else {
                    format!("{:.3}s", op.completed_ns as f64 / 1e9)
                }
            )
        };
        writeln!(
            f,
            "key {:?}: no order of its {} operations explains the answers",
            self.key,
            self.ops.len()
        )?;
        writeln!(f, "  longest explained order ({} ops):", self.longest.len())?;
        for &i in self.longest.iter().rev().take(8).rev() {
            writeln!(f, "    {}", show(&self.ops[i]))?;
        }
        writeln!(f, "  then none of these fits:")?;
        for &i in &self.stuck_at {
            writeln!(f, "    {}", show(&self.ops[i]))?;
        }
        Ok(())
    }
}

/// The checker's answer for a whole history.
#[derive(Debug, Clone)]
pub enum Verdict {
    Linearizable,
    NotLinearizable(Box<Anomaly>),
    /// The search of `key` ran out of budget: neither a pass nor a failure.
    GaveUp {
        key: String,
    },
    /// Every key's register explains its calls, but a list's answer contradicts them.
    BadList(Box<ListAnomaly>),
}

/// What was checked and the verdict.
#[derive(Debug, Clone)]
pub struct Report {
    pub keys: usize,
    /// Operations that took part in the search.
    pub checked: usize,
    /// Of those, writes whose outcome was unknown.
    pub unknown_writes: usize,
    /// Calls left out: failed calls, reads whose answer never came, and unknown writes
    /// no read saw.
    pub skipped: usize,
    /// Answered lists checked against the writes and deletes (see `crate::lists`).
    pub lists: usize,
    pub verdict: Verdict,
}

impl Report {
    pub fn is_linearizable(&self) -> bool {
        matches!(self.verdict, Verdict::Linearizable)
    }
}

/// Checks that `history` is linearizable for a register per key, and that its lists
/// agree with the writes and deletes around them.
pub fn check(history: &History, budget: Budget) -> Result<Report, HistoryError> {
    history.validate()?;
    let group_of = groups(history)?;
    let group = |k: &str| {
        group_of
            .get(k)
            .cloned()
            .unwrap_or_else(|| vec![k.to_string()])
    };
    let renamed = |k: &str| group_of.contains_key(k);
    let mut by_group: BTreeMap<Vec<String>, Vec<&Operation>> = BTreeMap::new();
    let mut skipped = 0;
    // Values some read returned, per key (None: a read found the key absent).
    let mut read: HashSet<(&str, Option<&str>)> = HashSet::new();
    for op in &history.ops {
        if let Outcome::Read { value } = &op.outcome {
            read.insert((&op.key, value.as_deref()));
        }
    }
    for op in history.ops.iter().filter(|o| o.call != Call::List) {
        // An unknown write whose result nobody read can be left out: had it taken effect,
        // no read fell in the span where its value held, so the same order without it
        // explains every answer. This keeps timeouts from multiplying the search. Not in
        // a group joined by renames: there a value read elsewhere may have moved there,
        // and a rename may have needed the write to find its source present.
        let unseen = op.outcome == Outcome::Unknown
            && match &op.call {
                Call::Get | Call::List => true,
                _ if renamed(&op.key) => false,
                Call::Put { value } => !read.contains(&(op.key.as_str(), Some(value.as_str()))),
                Call::Delete => !read.contains(&(op.key.as_str(), None)),
                Call::Rename { .. } => false,
            };
        let dropped = unseen || op.outcome == Outcome::Failed;
        if dropped {
            skipped += 1;
        } else {
            by_group.entry(group(&op.key)).or_default().push(op);
        }
    }
    let mut report = Report {
        keys: by_group.keys().map(Vec::len).sum(),
        checked: by_group.values().map(Vec::len).sum(),
        unknown_writes: by_group
            .values()
            .flatten()
            .filter(|o| o.outcome == Outcome::Unknown)
            .count(),
        skipped,
        lists: 0,
        verdict: Verdict::Linearizable,
    };
    for (keys, mut ops) in by_group {
        ops.sort_by_key(|o| o.invoked_ns);
        let key = keys.join("+");
        match KeySearch::new(&keys, &ops).run(budget.max_steps_per_key) {
            Search::Found => {}
            Search::GaveUp => {
                report.verdict = Verdict::GaveUp { key };
                return Ok(report);
            }
            Search::Impossible { longest, stuck_at } => {
                report.verdict = Verdict::NotLinearizable(Box::new(Anomaly {
                    key,
                    ops: ops.into_iter().cloned().collect(),
                    longest,
                    stuck_at,
                }));
                return Ok(report);
            }
        }
    }
    let (lists, anomaly) = check_lists(history);
    report.lists = lists;
    if let Some(a) = anomaly {
        report.verdict = Verdict::BadList(Box::new(a));
    }
    Ok(report)
}

/// The group (its keys, in order) of every key a rename touches; keys no rename touches
/// are left out (each its own group). Refuses a group of more than [`MAX_GROUP`] keys.
fn groups<'a>(history: &'a History) -> Result<HashMap<String, Vec<String>>, HistoryError> {
    // Union-find over the keys renames touch, by index.
    let mut index: BTreeMap<&'_ str, usize> = BTreeMap::new();
    let mut parent: Vec<usize> = Vec::new();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for op in &history.ops {
        let Call::Rename { to } = &op.call else {
            continue;
        };
        let mut id = |k: &'a str| {
            let n = parent.len();
            let i = *index.entry(k).or_insert(n);
            if i == n {
                parent.push(n);
            }
            i
        };
        let (a, b) = (id(&op.key), id(to));
        let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
        parent[ra] = rb;
    }
    let mut members: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for (k, &i) in &index {
        members.entry(root(&mut parent, i)).or_default().push(k);
    }
    let mut out = HashMap::new();
    for keys in members.values() {
        if keys.len() > MAX_GROUP {
            return Err(HistoryError::GroupTooLarge {
                keys: keys.iter().map(|k| k.to_string()).collect(),
                max: MAX_GROUP,
            });
        }
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        for k in &keys {
            out.insert(k.clone(), keys.clone());
        }
    }
    Ok(out)
}

/// One key's value: `None` when absent, else an interned value id.
type Value = Option<u32>;

/// The values of a group's keys, by the key's slot (unused slots stay `None`).
type State = [Value; MAX_GROUP];

#[derive(Debug, Clone, Copy)]
enum Effect {
    Put(usize, u32),
    Delete(usize),
    Read(usize, Value),
    /// From one slot to another; only while the source holds a value.
    Rename(usize, usize),
}

#[derive(Debug)]
struct Op {
    invoke: u64,
    /// `u64::MAX` for unknown outcomes: they bound nothing.
    complete: u64,
    required: bool,
    effect: Effect,
}

enum Search {
    Found,
    GaveUp,
    Impossible {
        longest: Vec<usize>,
        stuck_at: Vec<usize>,
    },
}

struct KeySearch {
    ops: Vec<Op>,
}

/// One level of the depth-first search: the state before it and the candidates left.
struct Frame {
    state: State,
    cands: Vec<usize>,
    next: usize,
    /// The operation this level linearized (to undo when backtracking).
    taken: Option<usize>,
}

impl KeySearch {
    /// The search of the operations `ops` on `keys` (one key, or a group of at most
    /// [`MAX_GROUP`] joined by renames).
    fn new<'a>(keys: &[String], ops: &[&'a Operation]) -> KeySearch {
        let mut values: HashMap<&'a str, u32> = HashMap::new();
        let mut intern = |v: &'a str| {
            let n = values.len() as u32;
            *values.entry(v).or_insert(n)
        };
        let slot = |k: &str| {
            keys.iter()
                .position(|g| *g == k)
                .expect("every operation's keys are in its group")
        };
        let ops = ops
            .iter()
            .map(|o| {
                let at = slot(&o.key);
                let effect = match (&o.call, &o.outcome) {
                    (Call::Put { value }, _) => Effect::Put(at, intern(value)),
                    (Call::Delete, _) => Effect::Delete(at),
                    (Call::Rename { to }, _) => Effect::Rename(at, slot(to)),
                    (Call::Get, Outcome::Read { value }) => {
                        Effect::Read(at, value.as_deref().map(&mut intern))
                    }
                    (Call::Get | Call::List, _) => unreachable!("validated and filtered"),
                };
                let unknown = o.outcome == Outcome::Unknown;
                Op {
                    invoke: o.invoked_ns,
                    complete: if unknown { u64::MAX } else { o.completed_ns },
                    required: !unknown,
                    effect,
                }
            })
            .collect();
        KeySearch { ops }
    }

    /// Operations that may take effect next: not yet taken, and invoked no later than
    /// the earliest completion among those not yet taken (nothing left must precede them).
    fn candidates(&self, taken: &Bits) -> Vec<usize> {
        let min_complete = (0..self.ops.len())
            .filter(|&i| !taken.get(i))
            .map(|i| self.ops[i].complete)
            .min()
            .unwrap_or(u64::MAX);
        self.ops
            .iter()
            .enumerate()
            .take_while(|(_, o)| o.invoke <= min_complete)
            .filter(|(i, _)| !taken.get(*i))
            .map(|(i, _)| i)
            .collect()
    }

    fn apply(effect: Effect, mut state: State) -> Option<State> {
        match effect {
            Effect::Put(at, v) => state[at] = Some(v),
            Effect::Delete(at) => state[at] = None,
            Effect::Read(at, r) => return (r == state[at]).then_some(state),
            Effect::Rename(from, to) => {
                state[to] = Some(state[from]?);
                state[from] = None;
            }
        }
        Some(state)
    }

    fn run(&self, max_steps: u64) -> Search {
        let n = self.ops.len();
        let mut required_left = self.ops.iter().filter(|o| o.required).count();
        let mut taken = Bits(vec![0; n.div_ceil(64)]);
        let mut seen: HashSet<(Bits, State)> = HashSet::new();
        let mut stack = vec![Frame {
            state: [None; MAX_GROUP],
            cands: self.candidates(&taken),
            next: 0,
            taken: None,
        }];
        let mut order: Vec<usize> = Vec::new();
        let (mut longest, mut stuck_at) = (Vec::new(), stack[0].cands.clone());
        let mut steps = 0u64;
        while let Some(top) = stack.last_mut() {
            if required_left == 0 {
                return Search::Found;
            }
            steps += 1;
            if steps > max_steps {
                return Search::GaveUp;
            }
            if top.next == top.cands.len() {
                // Every candidate at this level failed: backtrack.
                let done = stack.pop().expect("non-empty");
                if let Some(i) = done.taken {
                    taken.set(i, false);
                    order.pop();
                    if self.ops[i].required {
                        required_left += 1;
                    }
                }
                continue;
            }
            let i = top.cands[top.next];
            top.next += 1;
            let state = top.state;
            let Some(after) = Self::apply(self.ops[i].effect, state) else {
                continue;
            };
            taken.set(i, true);
            if !seen.insert((taken.clone(), after)) {
                taken.set(i, false);
                continue;
            }
            order.push(i);
            if self.ops[i].required {
                required_left -= 1;
            }
            let cands = self.candidates(&taken);
            if order.len() > longest.len() {
                longest = order.clone();
                stuck_at = cands.clone();
            }
            stack.push(Frame {
                state: after,
                cands,
                next: 0,
                taken: Some(i),
            });
        }
        Search::Impossible { longest, stuck_at }
    }
}

/// The set of operations taken so far, one bit each (the memo holds many of these).
#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn set(&mut self, i: usize, on: bool) {
        if on {
            self.0[i / 64] |= 1 << (i % 64);
        } else {
            self.0[i / 64] &= !(1 << (i % 64));
        }
    }
}
