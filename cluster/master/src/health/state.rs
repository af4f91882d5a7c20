//! The disk state machine, as a pure function over one window's signals: online → suspect
//! → offline, and back. What makes a window bad and how many windows count come from
//! `[health]`; the health pass proposes whatever [`judge`] returns.
//!
//! - A silent node, a disk its node failed after an I/O error, or S.M.A.R.T. reporting
//!   failure: offline at once.
//! - A bad window (slow against its peers, or new I/O or checksum errors): after
//!   `suspect_after_windows` in a row an online disk is suspect; after a further
//!   `offline_after_windows` bad windows in a row a suspect disk goes offline.
//! - `recover_after_windows` healthy windows in a row bring a suspect or automatically
//!   offlined disk back online (once whatever took it offline is gone).
//! - A state an operator set is never changed here.

use super::config::HealthSection;
use kdss_proto::master::DiskStatus;

/// What the pass observed about one disk in this window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signals {
    /// The node has been silent this many seconds, past the grace.
    pub silent_for_sec: Option<u64>,
    /// The node itself failed the disk (an I/O error; it never writes to it again).
    pub device_failed: bool,
    /// S.M.A.R.T. says the device is failing (the status text).
    pub smart_failing: Option<String>,
    /// Why the disk is slow in this window, if it is.
    pub slow: Option<String>,
    /// I/O plus checksum errors reported since the previous window.
    pub new_errors: u64,
}

/// The state the disk has now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    /// Its status (online when it has no row).
    pub status: DiskStatus,
    /// Set by an operator.
    pub by_operator: bool,
}

/// Counts of consecutive windows, kept per disk by the pass across windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tracker {
    bad: u32,
    good: u32,
}

/// A state change to propose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The new status.
    pub status: DiskStatus,
    /// Why, for `disk list`.
    pub reason: String,
}

fn verdict(status: DiskStatus, reason: impl Into<String>) -> Option<Verdict> {
    Some(Verdict {
        status,
        reason: reason.into(),
    })
}

/// The change this window calls for, if any (updating the disk's tracker).
pub fn judge(
    cur: &Current,
    sig: &Signals,
    t: &mut Tracker,
    cfg: &HealthSection,
) -> Option<Verdict> {
    if cur.by_operator || cur.status == DiskStatus::Draining {
        *t = Tracker::default();
        return None;
    }
    let hard = if let Some(s) = sig.silent_for_sec {
        Some(format!(
            "node silent for {s} s (grace {} s)",
            cfg.silent_grace_sec
        ))
    } else if sig.device_failed {
        Some("the node failed the disk after an I/O error".to_string())
    } else {
        sig.smart_failing
            .as_ref()
            .map(|s| format!("S.M.A.R.T. reports failure: {s}"))
    };
    if let Some(reason) = hard {
        *t = Tracker::default();
        if cur.status == DiskStatus::Offline {
            return None;
        }
        return verdict(DiskStatus::Offline, reason);
    }
    let bad = match (&sig.slow, sig.new_errors >= cfg.error_threshold) {
        (Some(r), _) => Some(r.clone()),
        (None, true) => Some(format!("{} new I/O or checksum error(s)", sig.new_errors)),
        (None, false) => None,
    };
    match &bad {
        Some(_) => {
            t.bad = t.bad.saturating_add(1);
            t.good = 0;
        }
        None => {
            t.good = t.good.saturating_add(1);
            t.bad = 0;
        }
    }
    match (cur.status, bad) {
        (DiskStatus::Online | DiskStatus::Unspecified, Some(r))
            if t.bad >= cfg.suspect_after_windows =>
        {
            verdict(DiskStatus::Suspect, r)
        }
        (DiskStatus::Suspect, Some(r))
            if t.bad >= cfg.suspect_after_windows + cfg.offline_after_windows =>
        {
            verdict(
                DiskStatus::Offline,
                format!("{r}; bad for {} windows in a row", t.bad),
            )
        }
        (DiskStatus::Suspect | DiskStatus::Offline, None)
            if t.good >= cfg.recover_after_windows =>
        {
            verdict(
                DiskStatus::Online,
                format!("healthy for {} windows", t.good),
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> HealthSection {
        HealthSection {
            suspect_after_windows: 2,
            recover_after_windows: 3,
            offline_after_windows: 2,
            ..Default::default()
        }
    }

    fn cur(status: DiskStatus) -> Current {
        Current {
            status,
            by_operator: false,
        }
    }

    fn slow() -> Signals {
        Signals {
            slow: Some("slow: read p99 90.0 ms vs peers' median 5.0 ms".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_slow_disk_goes_suspect_then_offline_then_recovers() {
        let c = cfg();
        let mut t = Tracker::default();
        assert_eq!(judge(&cur(DiskStatus::Online), &slow(), &mut t, &c), None);
        let v = judge(&cur(DiskStatus::Online), &slow(), &mut t, &c).unwrap();
        assert_eq!(v.status, DiskStatus::Suspect);
        assert!(
            v.reason.starts_with("slow: read p99 90.0 ms"),
            "{}",
            v.reason
        );
        assert_eq!(judge(&cur(DiskStatus::Suspect), &slow(), &mut t, &c), None);
        let v = judge(&cur(DiskStatus::Suspect), &slow(), &mut t, &c).unwrap();
        assert_eq!(v.status, DiskStatus::Offline);
        let fine = Signals::default();
        assert_eq!(judge(&cur(DiskStatus::Offline), &fine, &mut t, &c), None);
        assert_eq!(judge(&cur(DiskStatus::Offline), &fine, &mut t, &c), None);
        let v = judge(&cur(DiskStatus::Offline), &fine, &mut t, &c).unwrap();
        assert_eq!(v.status, DiskStatus::Online);
    }

    #[test]
    fn one_good_window_resets_the_count_of_bad_ones() {
        let c = cfg();
        let mut t = Tracker::default();
        assert_eq!(judge(&cur(DiskStatus::Online), &slow(), &mut t, &c), None);
        assert_eq!(
            judge(&cur(DiskStatus::Online), &Signals::default(), &mut t, &c),
            None
        );
        assert_eq!(judge(&cur(DiskStatus::Online), &slow(), &mut t, &c), None);
    }

    #[test]
    fn errors_make_a_window_bad() {
        let c = cfg();
        let mut t = Tracker::default();
        let errs = Signals {
            new_errors: 3,
            ..Default::default()
        };
        judge(&cur(DiskStatus::Online), &errs, &mut t, &c);
        let v = judge(&cur(DiskStatus::Online), &errs, &mut t, &c).unwrap();
        assert_eq!(v.status, DiskStatus::Suspect);
        assert_eq!(v.reason, "3 new I/O or checksum error(s)");
    }

    #[test]
    fn a_silent_node_or_failing_device_is_offline_at_once() {
        let c = cfg();
        let mut t = Tracker::default();
        let silent = Signals {
            silent_for_sec: Some(700),
            ..Default::default()
        };
        let v = judge(&cur(DiskStatus::Online), &silent, &mut t, &c).unwrap();
        assert_eq!(v.status, DiskStatus::Offline);
        assert_eq!(v.reason, "node silent for 700 s (grace 600 s)");
        // Already offline: nothing more to propose.
        assert_eq!(judge(&cur(DiskStatus::Offline), &silent, &mut t, &c), None);
        let smart = Signals {
            smart_failing: Some("FAILED".into()),
            ..Default::default()
        };
        let v = judge(&cur(DiskStatus::Suspect), &smart, &mut t, &c).unwrap();
        assert_eq!(v.status, DiskStatus::Offline);
        assert!(v.reason.contains("S.M.A.R.T."));
    }

    #[test]
    fn operator_states_are_left_alone() {
        let c = cfg();
        let mut t = Tracker::default();
        let op = Current {
            status: DiskStatus::Offline,
            by_operator: true,
        };
        for _ in 0..10 {
            assert_eq!(judge(&op, &Signals::default(), &mut t, &c), None);
        }
        let silent = Signals {
            silent_for_sec: Some(1000),
            ..Default::default()
        };
        assert_eq!(judge(&cur(DiskStatus::Draining), &silent, &mut t, &c), None);
    }
}
