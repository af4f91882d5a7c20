//! The checker on histories whose answer is known: hand-made anomalies a partition can
//! cause (a stale read, a lost write, a read of a value nobody wrote) are refused;
//! concurrent and uncertain histories that some order explains are accepted; and every
//! history made by actually running the calls in some order inside their intervals is
//! accepted (property).

use kdss_history::{Budget, Call, History, Operation, Outcome, Verdict, check};
use proptest::prelude::*;

fn op(process: u64, key: &str, call: Call, outcome: Outcome, t: (u64, u64)) -> Operation {
    Operation {
        process,
        key: key.into(),
        call,
        outcome,
        invoked_ns: t.0,
        completed_ns: t.1,
    }
}
fn put(p: u64, v: &str, t: (u64, u64)) -> Operation {
    op(p, "k", Call::Put { value: v.into() }, Outcome::Ok, t)
}
fn get(p: u64, v: Option<&str>, t: (u64, u64)) -> Operation {
    let value = v.map(String::from);
    op(p, "k", Call::Get, Outcome::Read { value }, t)
}
fn del(p: u64, t: (u64, u64)) -> Operation {
    op(p, "k", Call::Delete, Outcome::Ok, t)
}
fn verdict(ops: Vec<Operation>) -> Verdict {
    check(&History { ops }, Budget::default()).unwrap().verdict
}
fn linearizable(ops: Vec<Operation>) -> bool {
    matches!(verdict(ops), Verdict::Linearizable)
}

#[test]
fn sequential_put_get_delete_is_linearizable() {
    assert!(linearizable(vec![
        get(1, None, (0, 1)),
        put(1, "a", (2, 3)),
        get(2, Some("a"), (4, 5)),
        del(2, (6, 7)),
        get(1, None, (8, 9)),
    ]));
}

#[test]
fn stale_read_after_an_acknowledged_overwrite_is_refused() {
    let ops = vec![
        put(1, "a", (0, 1)),
        put(1, "b", (2, 3)),
        get(2, Some("a"), (4, 5)),
    ];
    let Verdict::NotLinearizable(a) = verdict(ops) else {
        panic!("a stale read passed");
    };
    assert_eq!(a.key, "k");
    let text = a.to_string();
    assert!(text.contains("Get"), "{text}");
}

#[test]
fn lost_acknowledged_write_is_refused() {
    // The put was acknowledged, then a read long after sees the key absent.
    assert!(!linearizable(vec![
        put(1, "a", (0, 1)),
        get(2, None, (5, 6))
    ]));
    // Also after a delete and a later put: the read must not see the deleted state.
    assert!(!linearizable(vec![
        put(1, "a", (0, 1)),
        del(1, (2, 3)),
        put(1, "b", (4, 5)),
        get(2, None, (6, 7)),
    ]));
}

#[test]
fn read_of_a_never_written_value_is_refused() {
    assert!(!linearizable(vec![
        put(1, "a", (0, 10)),
        get(2, Some("zzz"), (1, 9)),
    ]));
}

#[test]
fn reads_going_back_in_time_are_refused() {
    // Two reads during one slow put: once the new value was seen, a later read must
    // not see the old one.
    assert!(!linearizable(vec![
        put(1, "a", (0, 1)),
        put(2, "b", (2, 20)),
        get(3, Some("b"), (3, 4)),
        get(3, Some("a"), (5, 6)),
    ]));
}

#[test]
fn concurrent_calls_may_take_effect_in_either_order() {
    // Two overlapping puts; readers after both may see either, but all the same one.
    assert!(linearizable(vec![
        put(1, "a", (0, 10)),
        put(2, "b", (1, 9)),
        get(3, Some("a"), (11, 12)),
        get(4, Some("a"), (13, 14)),
    ]));
    assert!(!linearizable(vec![
        put(1, "a", (0, 10)),
        put(2, "b", (1, 9)),
        get(3, Some("a"), (11, 12)),
        get(4, Some("b"), (13, 14)),
    ]));
    // A read overlapping a put may see the old or the new value.
    assert!(linearizable(vec![
        put(1, "a", (0, 1)),
        put(2, "b", (2, 10)),
        get(3, Some("a"), (3, 4)),
        get(3, Some("b"), (5, 6)),
    ]));
}

#[test]
fn unknown_writes_may_take_effect_or_not() {
    let unknown = |v: &str, t| op(1, "k", Call::Put { value: v.into() }, Outcome::Unknown, t);
    // Took effect, long after the client gave up.
    assert!(linearizable(vec![
        unknown("a", (0, 1)),
        get(2, None, (5, 6)),
        get(2, Some("a"), (100, 101)),
    ]));
    // Never took effect.
    assert!(linearizable(vec![
        put(2, "x", (0, 1)),
        unknown("a", (2, 3)),
        get(2, Some("x"), (100, 101)),
    ]));
    // But it takes effect at most once, and not before it was sent.
    assert!(!linearizable(vec![
        put(2, "x", (0, 1)),
        get(2, Some("a"), (2, 3)),
        unknown("a", (4, 5)),
    ]));
    assert!(!linearizable(vec![
        unknown("a", (0, 1)),
        get(2, Some("a"), (2, 3)),
        put(2, "x", (4, 5)),
        get(2, Some("a"), (6, 7)),
    ]));
}

#[test]
fn failed_calls_change_nothing() {
    let failed = op(
        1,
        "k",
        Call::Put { value: "a".into() },
        Outcome::Failed,
        (0, 1),
    );
    assert!(!linearizable(vec![
        failed.clone(),
        get(2, Some("a"), (2, 3))
    ]));
    assert!(linearizable(vec![failed, get(2, None, (2, 3))]));
}

#[test]
fn keys_are_checked_independently() {
    let mut other = put(1, "a", (0, 1));
    other.key = "other".into();
    assert!(linearizable(vec![other.clone(), get(2, None, (2, 3))]));
    let mut stale = get(2, None, (2, 3));
    stale.key = "other".into();
    let Verdict::NotLinearizable(a) = verdict(vec![other, stale]) else {
        panic!("a lost write on a second key passed");
    };
    assert_eq!(a.key, "other");
}

#[test]
fn malformed_histories_are_refused_with_the_operation_named() {
    let bad = op(1, "k", Call::Get, Outcome::Ok, (0, 1));
    let err = check(&History { ops: vec![bad] }, Budget::default()).unwrap_err();
    assert!(err.to_string().contains("operation 0"), "{err}");
    let backwards = put(1, "a", (5, 1));
    let err = check(
        &History {
            ops: vec![backwards],
        },
        Budget::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("completed before"), "{err}");
}

#[test]
fn a_history_survives_save_and_load() {
    let dir = std::env::temp_dir().join(format!("kdss-history-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("h.json");
    let h = History {
        ops: vec![put(1, "a", (0, 1)), get(2, Some("a"), (2, 3))],
    };
    h.save(&path).unwrap();
    assert_eq!(History::load(&path).unwrap(), h);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_budget_gives_up_rather_than_passing() {
    // Many fully concurrent puts and a read of a value none wrote: refuted only by
    // exhausting every order; a tiny budget must give up, not pass.
    let mut ops: Vec<Operation> = (0..12)
        .map(|i| put(i, &format!("v{i}"), (0, 100)))
        .collect();
    ops.push(get(99, Some("nobody"), (0, 100)));
    let r = check(
        &History { ops },
        kdss_history::Budget {
            max_steps_per_key: 50,
        },
    )
    .unwrap();
    assert!(
        matches!(r.verdict, Verdict::GaveUp { .. }),
        "{:?}",
        r.verdict
    );
}

#[test]
fn many_timed_out_writes_nobody_read_do_not_blow_up_the_search() {
    // 40 writes that timed out during a partition, all concurrent with everything after
    // them, then a stale read: refuted within a small budget.
    let mut ops = vec![put(1, "a", (0, 1)), put(1, "b", (2, 3))];
    for i in 0..40 {
        ops.push(op(
            10 + i,
            "k",
            Call::Put {
                value: format!("lost{i}"),
            },
            Outcome::Unknown,
            (4 + i, 5 + i),
        ));
    }
    ops.push(get(2, Some("a"), (100, 101)));
    let r = check(
        &History { ops },
        Budget {
            max_steps_per_key: 10_000,
        },
    )
    .unwrap();
    assert!(
        matches!(r.verdict, Verdict::NotLinearizable(_)),
        "{:?}",
        r.verdict
    );
}

/// A random client call: 0 = put, 1 = get, 2 = delete; key index; outcome kind.
#[derive(Debug, Clone)]
struct Planned {
    kind: u8,
    key: u8,
    /// 0 = answered, 1 = failed, 2 = unknown (took effect), 3 = unknown (did not)
    fate: u8,
    start: u64,
    len: u64,
    /// Where in [start, start+len] the call took effect, per mille.
    at: u64,
}

fn planned() -> impl Strategy<Value = Vec<Planned>> {
    prop::collection::vec(
        (0u8..3, 0u8..3, 0u8..8, 0u64..1000, 0u64..200, 0u64..=1000).prop_map(
            |(kind, key, fate, start, len, at)| Planned {
                kind,
                key,
                fate: fate.saturating_sub(4),
                start,
                len,
                at,
            },
        ),
        0..40,
    )
}

/// Runs the planned calls against a model, each taking effect at one point inside its
/// interval, and records what each client would have seen: a linearizable history.
fn run(plan: &[Planned], sequential: bool) -> History {
    let mut calls: Vec<(u64, usize)> = plan
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (start, len) = if sequential {
                (i as u64 * 10_000, p.len)
            } else {
                (p.start, p.len)
            };
            (start + len * p.at / 1000, i)
        })
        .collect();
    calls.sort();
    let mut model: std::collections::HashMap<u8, String> = Default::default();
    let mut ops = Vec::new();
    for (_, i) in calls {
        let p = &plan[i];
        let start = if sequential {
            i as u64 * 10_000
        } else {
            p.start
        };
        let key = format!("key{}", p.key);
        let value = format!("v{i}");
        let takes_effect = matches!(p.fate, 0 | 2);
        let (call, answer) = match p.kind {
            0 => {
                if takes_effect {
                    model.insert(p.key, value.clone());
                }
                (Call::Put { value }, Outcome::Ok)
            }
            1 => {
                let value = model.get(&p.key).cloned();
                (Call::Get, Outcome::Read { value })
            }
            _ => {
                if takes_effect {
                    model.remove(&p.key);
                }
                (Call::Delete, Outcome::Ok)
            }
        };
        let outcome = match p.fate {
            0 => answer,
            1 => Outcome::Failed,
            _ => Outcome::Unknown,
        };
        ops.push(Operation {
            process: i as u64,
            key,
            call,
            outcome,
            invoked_ns: start,
            completed_ns: start + p.len,
        });
    }
    History { ops }
}

proptest! {
    #[test]
    fn sequential_histories_are_always_accepted(plan in planned()) {
        let r = check(&run(&plan, true), Budget::default()).unwrap();
        prop_assert!(r.is_linearizable(), "{:?}", r.verdict);
    }

    #[test]
    fn histories_made_by_a_linearizable_store_are_accepted(plan in planned()) {
        let r = check(&run(&plan, false), Budget::default()).unwrap();
        prop_assert!(r.is_linearizable(), "{:?}", r.verdict);
    }

    #[test]
    fn a_read_of_a_value_nobody_wrote_is_always_refused(plan in planned()) {
        let mut h = run(&plan, false);
        let Some(read) = h.ops.iter_mut().find(|o| matches!(o.outcome, Outcome::Read { .. })) else {
            return Ok(());
        };
        read.outcome = Outcome::Read { value: Some("never-written".into()) };
        let r = check(&h, Budget::default()).unwrap();
        prop_assert!(matches!(r.verdict, Verdict::NotLinearizable(_)), "{:?}", r.verdict);
    }
}
