//! Checks a history a failing run kept:
//! `cargo run -p kdss-history --example check -- FILE [MAX_STEPS_PER_KEY]`.
//! Prints what was checked and the verdict (the anomaly in full); exits 1 when the
//! history is not linearizable or the search gave up.

use kdss_history::{Budget, History, Verdict, check};
use std::path::PathBuf;

fn main() {
    let Some(path) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: check HISTORY.json [MAX_STEPS_PER_KEY]");
        std::process::exit(2);
    };
    let mut budget = Budget::default();
    if let Some(n) = std::env::args().nth(2) {
        match n.parse() {
            Ok(n) => budget.max_steps_per_key = n,
            Err(e) => {
                eprintln!("MAX_STEPS_PER_KEY {n:?}: {e}");
                std::process::exit(2);
            }
        }
    }
    let history = match History::load(&path) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let report = match check(&history, budget) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    println!(
        "{} operations: {} checked on {} keys ({} unknown writes), {} skipped, {} lists",
        history.ops.len(),
        report.checked,
        report.keys,
        report.unknown_writes,
        report.skipped,
        report.lists
    );
    match report.verdict {
        Verdict::Linearizable => println!("linearizable"),
        Verdict::NotLinearizable(a) => {
            println!("not linearizable:\n{a}");
            std::process::exit(1);
        }
        Verdict::BadList(a) => {
            println!("a list contradicts the history:\n{a}");
            std::process::exit(1);
        }
        Verdict::GaveUp { key } => {
            println!("gave up on key {key}");
            std::process::exit(1);
        }
    }
}
