//! The list check on hand-made histories: lists that name a deleted key, miss a written
//! one, or name a key nobody wrote are refused; lists that overlap the write or delete
//! that changed a key may show it either way; failed calls change nothing.

use kdss_history::{Budget, Call, History, ListFault, Operation, Outcome, Verdict, check};

fn op(key: &str, call: Call, outcome: Outcome, t: (u64, u64)) -> Operation {
    Operation {
        process: 1,
        key: key.into(),
        call,
        outcome,
        invoked_ns: t.0,
        completed_ns: t.1,
    }
}
fn put(key: &str, v: &str, t: (u64, u64)) -> Operation {
    op(key, Call::Put { value: v.into() }, Outcome::Ok, t)
}
fn del(key: &str, t: (u64, u64)) -> Operation {
    op(key, Call::Delete, Outcome::Ok, t)
}
fn list(keys: &[&str], t: (u64, u64)) -> Operation {
    let keys = keys.iter().map(|k| k.to_string()).collect();
    op("", Call::List, Outcome::Listed { keys }, t)
}
fn verdict(ops: Vec<Operation>) -> Verdict {
    let r = check(&History { ops }, Budget::default()).unwrap();
    r.verdict
}
fn fault(ops: Vec<Operation>) -> Option<(ListFault, String)> {
    match verdict(ops) {
        Verdict::Linearizable => None,
        Verdict::BadList(a) => {
            let text = a.to_string();
            assert!(text.contains(&a.key), "{text}");
            Some((a.fault, a.key))
        }
        v => panic!("not a list verdict: {v:?}"),
    }
}

#[test]
fn a_list_that_agrees_with_the_writes_passes() {
    let ops = vec![
        put("a", "1", (0, 1)),
        put("b", "1", (2, 3)),
        del("a", (4, 5)),
        list(&["b"], (6, 7)),
        put("a", "2", (8, 9)),
        list(&["a", "b"], (10, 11)),
    ];
    assert_eq!(fault(ops), None);
}

#[test]
fn a_list_missing_a_key_written_before_it_is_refused() {
    let ops = vec![put("a", "1", (0, 1)), list(&[], (2, 3))];
    assert_eq!(fault(ops), Some((ListFault::Missing, "a".into())));
}

#[test]
fn a_list_naming_a_key_deleted_before_it_is_refused() {
    let ops = vec![
        put("a", "1", (0, 1)),
        del("a", (2, 3)),
        list(&["a"], (4, 5)),
    ];
    assert_eq!(fault(ops), Some((ListFault::Deleted, "a".into())));
}

#[test]
fn a_list_naming_a_key_nobody_wrote_is_refused() {
    let ops = vec![put("a", "1", (0, 1)), list(&["a", "zz"], (2, 3))];
    assert_eq!(fault(ops), Some((ListFault::NeverWritten, "zz".into())));
    // A write that begins only after the list ended cannot explain it either.
    let ops = vec![list(&["a"], (0, 1)), put("a", "1", (2, 3))];
    assert_eq!(fault(ops), Some((ListFault::NeverWritten, "a".into())));
}

#[test]
fn a_list_overlapping_the_change_may_show_either_side() {
    // The delete overlaps the list: listed or not, some order explains it.
    for keys in [&["a"][..], &[][..]] {
        let ops = vec![put("a", "1", (0, 1)), del("a", (2, 6)), list(keys, (3, 5))];
        assert_eq!(fault(ops), None, "{keys:?}");
    }
    // The write overlaps the list.
    for keys in [&["a"][..], &[][..]] {
        let ops = vec![put("a", "1", (2, 6)), list(keys, (3, 5))];
        assert_eq!(fault(ops), None, "{keys:?}");
    }
    // A write concurrent with an earlier delete may have come after it.
    let ops = vec![
        put("a", "1", (0, 4)),
        del("a", (1, 2)),
        list(&["a"], (5, 6)),
    ];
    assert_eq!(fault(ops), None);
}

#[test]
fn unknown_calls_may_take_effect_and_failed_ones_do_not() {
    // An unknown delete, invoked before the list ended, may explain a missing key.
    let unknown_del = op("a", Call::Delete, Outcome::Unknown, (2, 0));
    let ops = vec![put("a", "1", (0, 1)), unknown_del, list(&[], (3, 4))];
    assert_eq!(fault(ops), None);
    // A failed one cannot.
    let failed_del = op("a", Call::Delete, Outcome::Failed, (2, 3));
    let ops = vec![put("a", "1", (0, 1)), failed_del, list(&[], (4, 5))];
    assert_eq!(fault(ops), Some((ListFault::Missing, "a".into())));
    // An unknown write may explain a listed key; a failed one may not.
    let unknown_put = op(
        "b",
        Call::Put { value: "1".into() },
        Outcome::Unknown,
        (0, 0),
    );
    assert_eq!(fault(vec![unknown_put, list(&["b"], (5, 6))]), None);
    let failed_put = op(
        "b",
        Call::Put { value: "1".into() },
        Outcome::Failed,
        (0, 1),
    );
    assert_eq!(
        fault(vec![failed_put, list(&["b"], (5, 6))]),
        Some((ListFault::NeverWritten, "b".into()))
    );
}

#[test]
fn lists_are_counted_and_unanswered_ones_judge_nothing() {
    let unanswered = op("", Call::List, Outcome::Unknown, (2, 0));
    let ops = vec![put("a", "1", (0, 1)), unanswered, list(&["a"], (3, 4))];
    let r = check(&History { ops }, Budget::default()).unwrap();
    assert!(r.is_linearizable(), "{:?}", r.verdict);
    assert_eq!(r.lists, 1);
}

#[test]
fn a_list_answered_with_a_value_is_malformed() {
    let bad = op("", Call::List, Outcome::Read { value: None }, (0, 1));
    assert!(check(&History { ops: vec![bad] }, Budget::default()).is_err());
    let bad = op("k", Call::Get, Outcome::Listed { keys: vec![] }, (0, 1));
    assert!(check(&History { ops: vec![bad] }, Budget::default()).is_err());
}
