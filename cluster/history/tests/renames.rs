//! Renames between keys: the keys renames join are checked together, as one map. Reads
//! that see a rename's effect before it began, or its source and target both holding the
//! value after it completed, are refused; concurrent and uncertain renames that some
//! order explains are accepted; keys no rename touches are still checked one by one;
//! lists count a rename as a write of its target and a delete of its source; and every
//! history made by running puts, deletes, renames and reads against a map in order is
//! accepted (property).

use kdss_history::{Budget, Call, History, HistoryError, Operation, Outcome, Verdict, check};
use proptest::prelude::*;

fn op(p: u64, key: &str, call: Call, outcome: Outcome, t: (u64, u64)) -> Operation {
    Operation {
        process: p,
        key: key.into(),
        call,
        outcome,
        invoked_ns: t.0,
        completed_ns: t.1,
    }
}
fn put(p: u64, k: &str, v: &str, t: (u64, u64)) -> Operation {
    op(p, k, Call::Put { value: v.into() }, Outcome::Ok, t)
}
fn get(p: u64, k: &str, v: Option<&str>, t: (u64, u64)) -> Operation {
    let value = v.map(String::from);
    op(p, k, Call::Get, Outcome::Read { value }, t)
}
fn rename(p: u64, from: &str, to: &str, outcome: Outcome, t: (u64, u64)) -> Operation {
    op(p, from, Call::Rename { to: to.into() }, outcome, t)
}
fn list(p: u64, keys: &[&str], t: (u64, u64)) -> Operation {
    let keys = keys.iter().map(|k| k.to_string()).collect();
    op(p, "", Call::List, Outcome::Listed { keys }, t)
}
fn verdict(ops: Vec<Operation>) -> Verdict {
    check(&History { ops }, Budget::default()).unwrap().verdict
}
fn linearizable(ops: Vec<Operation>) -> bool {
    matches!(verdict(ops), Verdict::Linearizable)
}

#[test]
fn a_rename_moves_the_value_and_leaves_the_source_absent() {
    assert!(linearizable(vec![
        put(1, "a", "v", (0, 1)),
        rename(1, "a", "b", Outcome::Ok, (2, 3)),
        get(2, "b", Some("v"), (4, 5)),
        get(2, "a", None, (6, 7)),
    ]));
}

#[test]
fn a_read_of_the_target_that_sees_the_value_before_the_rename_began_is_refused() {
    let ops = vec![
        put(1, "a", "v", (0, 1)),
        get(2, "b", Some("v"), (2, 3)),
        rename(1, "a", "b", Outcome::Ok, (4, 5)),
    ];
    let Verdict::NotLinearizable(a) = verdict(ops) else {
        panic!("a read saw a rename's value before the rename was invoked");
    };
    assert_eq!(a.key, "a+b");
}

#[test]
fn the_value_at_both_keys_after_a_completed_rename_is_refused() {
    let ops = vec![
        put(1, "a", "v", (0, 1)),
        rename(1, "a", "b", Outcome::Ok, (2, 3)),
        get(2, "b", Some("v"), (4, 5)),
        get(3, "a", Some("v"), (4, 5)),
    ];
    assert!(
        matches!(verdict(ops), Verdict::NotLinearizable(_)),
        "the source still held the value after the rename completed"
    );
}

#[test]
fn an_acknowledged_rename_of_an_absent_key_is_refused() {
    let ops = vec![
        rename(1, "a", "b", Outcome::Ok, (0, 1)),
        get(2, "b", None, (2, 3)),
    ];
    assert!(matches!(verdict(ops), Verdict::NotLinearizable(_)));
}

#[test]
fn reads_overlapping_a_rename_may_see_either_side_of_it() {
    for (seen_b, seen_a) in [(Some("v"), None), (None, Some("v"))] {
        assert!(
            linearizable(vec![
                put(1, "a", "v", (0, 1)),
                rename(1, "a", "b", Outcome::Ok, (2, 10)),
                get(2, "b", seen_b, (3, 4)),
                get(3, "a", seen_a, (3, 4)),
            ]),
            "b {seen_b:?}, a {seen_a:?}"
        );
    }
    // But once one read saw the rename done, a later read cannot see it undone: not
    // the value gone from both keys, nor at both.
    for (first, seen_first, then, seen_then) in
        [("a", None, "b", None), ("b", Some("v"), "a", Some("v"))]
    {
        assert!(
            !linearizable(vec![
                put(1, "a", "v", (0, 1)),
                rename(1, "a", "b", Outcome::Ok, (2, 10)),
                get(2, first, seen_first, (3, 4)),
                get(2, then, seen_then, (5, 6)),
            ]),
            "{first} {seen_first:?} then {then} {seen_then:?}"
        );
    }
}

#[test]
fn an_unknown_rename_may_take_effect_late_but_only_once() {
    // Not yet when b was read, done when a was read.
    assert!(linearizable(vec![
        put(1, "a", "v", (0, 1)),
        rename(1, "a", "b", Outcome::Unknown, (2, 3)),
        get(2, "b", None, (10, 11)),
        get(2, "a", None, (12, 13)),
        get(2, "b", Some("v"), (14, 15)),
    ]));
    // Seen moved to b, then back at a with nobody writing a.
    assert!(!linearizable(vec![
        put(1, "a", "v", (0, 1)),
        rename(1, "a", "b", Outcome::Unknown, (2, 3)),
        get(2, "b", Some("v"), (10, 11)),
        get(2, "a", Some("v"), (12, 13)),
    ]));
}

#[test]
fn an_unknown_put_may_be_what_an_acknowledged_rename_moved() {
    // Nobody read "w", but the rename needed a source: only the unknown put explains it.
    assert!(linearizable(vec![
        op(
            1,
            "a",
            Call::Put { value: "w".into() },
            Outcome::Unknown,
            (0, 1)
        ),
        rename(2, "a", "b", Outcome::Ok, (5, 6)),
        put(2, "b", "x", (7, 8)),
        get(2, "b", Some("x"), (9, 10)),
    ]));
}

#[test]
fn keys_no_rename_touches_are_still_checked_alone() {
    let ops = vec![
        put(1, "a", "v", (0, 1)),
        rename(1, "a", "b", Outcome::Ok, (2, 3)),
        put(1, "k", "1", (0, 1)),
        put(1, "k", "2", (2, 3)),
        get(2, "k", Some("1"), (4, 5)),
    ];
    let Verdict::NotLinearizable(a) = verdict(ops) else {
        panic!("a stale read of a key outside the rename group passed");
    };
    assert_eq!(a.key, "k");
}

#[test]
fn renames_joining_too_many_keys_are_refused_by_name() {
    let keys = ["a", "b", "c", "d", "e"];
    let ops = keys
        .windows(2)
        .map(|w| rename(1, w[0], w[1], Outcome::Failed, (0, 1)))
        .collect();
    match check(&History { ops }, Budget::default()) {
        Err(e @ HistoryError::GroupTooLarge { .. }) => {
            assert!(e.to_string().contains("a, b, c, d, e"), "{e}")
        }
        other => panic!("expected GroupTooLarge, got {other:?}"),
    }
}

#[test]
fn a_rename_onto_its_own_key_is_malformed() {
    let ops = vec![rename(1, "a", "a", Outcome::Ok, (0, 1))];
    assert!(matches!(
        check(&History { ops }, Budget::default()),
        Err(HistoryError::Malformed { .. })
    ));
}

#[test]
fn lists_see_a_rename_as_a_write_of_its_target_and_a_delete_of_its_source() {
    let before = || {
        vec![
            put(1, "a", "v", (0, 1)),
            rename(1, "a", "b", Outcome::Ok, (2, 3)),
        ]
    };
    let with = |l: Operation| {
        let mut ops = before();
        ops.push(l);
        verdict(ops)
    };
    assert!(matches!(
        with(list(2, &["b"], (4, 5))),
        Verdict::Linearizable
    ));
    assert!(matches!(
        with(list(2, &["a", "b"], (4, 5))),
        Verdict::BadList(_)
    ));
    assert!(matches!(with(list(2, &[], (4, 5))), Verdict::BadList(_)));
}

/// One call of the property's workload on keys `a` and `b`.
#[derive(Debug, Clone)]
enum Step {
    Put(usize),
    Delete(usize),
    Rename(usize),
    Get(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..2usize).prop_map(Step::Put),
        (0..2usize).prop_map(Step::Delete),
        (0..2usize).prop_map(Step::Rename),
        (0..2usize).prop_map(Step::Get),
    ]
}

/// Runs `steps` against a map of `a` and `b`, each call inside its own interval
/// overlapping the next one's, as a store would answer them.
fn run(steps: &[Step]) -> Vec<Operation> {
    let keys = ["a", "b"];
    let mut map: [Option<String>; 2] = [None, None];
    let mut ops = Vec::new();
    for (n, s) in steps.iter().enumerate() {
        // Each call takes effect at 10n + 5, inside an interval that overlaps its
        // neighbours' (they may be reordered only where the answers allow).
        let t = (10 * n as u64, 10 * n as u64 + 12);
        let p = n as u64 % 3;
        ops.push(match *s {
            Step::Put(k) => {
                map[k] = Some(format!("v{n}"));
                put(p, keys[k], &format!("v{n}"), t)
            }
            Step::Delete(k) => {
                map[k] = None;
                op(p, keys[k], Call::Delete, Outcome::Ok, t)
            }
            Step::Rename(k) => {
                let outcome = match map[k].take() {
                    Some(v) => {
                        map[1 - k] = Some(v);
                        Outcome::Ok
                    }
                    None => Outcome::Failed,
                };
                rename(p, keys[k], keys[1 - k], outcome, t)
            }
            Step::Get(k) => get(p, keys[k], map[k].as_deref(), t),
        });
    }
    ops
}

proptest! {
    #[test]
    fn histories_run_against_a_map_are_linearizable(steps in prop::collection::vec(step(), 1..40)) {
        let ops = run(&steps);
        let r = check(&History { ops: ops.clone() }, Budget::default()).unwrap();
        prop_assert!(r.is_linearizable(), "{:?}\n{ops:#?}", r.verdict);
    }

    #[test]
    fn a_read_of_a_value_nobody_wrote_is_refused(steps in prop::collection::vec(step(), 1..40)) {
        let mut ops = run(&steps);
        let Some(read) = ops.iter_mut().find(|o| o.call == Call::Get) else {
            return Ok(());
        };
        read.outcome = Outcome::Read { value: Some("never-written".into()) };
        let r = check(&History { ops }, Budget::default()).unwrap();
        prop_assert!(!r.is_linearizable());
    }
}
