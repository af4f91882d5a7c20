//! Cluster events the master reports itself, without Prometheus in between: things an
//! operator wants to hear about when they happen (a disk went offline, a repair finished),
//! not only when a rule has fired for a while.

use crate::card::{Card, Severity, clip};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A disk was taken offline (by an operator, or by the health pass); its shards are
    /// being rebuilt elsewhere.
    DiskOffline,
    /// A disk turned suspect (slow or erroring); it gets no new shards.
    DiskSuspect,
    /// A disk is being drained by an operator.
    DiskDraining,
    /// A disk is back online.
    DiskOnline,
    /// A storage node stopped sending heartbeats.
    NodeLost,
    /// A repair pass ended after rebuilding (or failing to rebuild) damaged stripes.
    RepairDone,
    /// A balance started moving shards.
    BalanceStarted,
}

impl EventKind {
    /// Words for the card's title.
    pub fn title(self) -> &'static str {
        match self {
            EventKind::DiskOffline => "disk offline",
            EventKind::DiskSuspect => "disk suspect",
            EventKind::DiskDraining => "disk draining",
            EventKind::DiskOnline => "disk back online",
            EventKind::NodeLost => "storage node lost",
            EventKind::RepairDone => "repair pass done",
            EventKind::BalanceStarted => "balance started",
        }
    }

    /// The colour of the card.
    pub fn severity(self) -> Severity {
        match self {
            EventKind::DiskOffline | EventKind::NodeLost => Severity::Critical,
            EventKind::DiskSuspect | EventKind::DiskDraining => Severity::Warning,
            EventKind::DiskOnline => Severity::Resolved,
            EventKind::RepairDone | EventKind::BalanceStarted => Severity::Info,
        }
    }
}

/// One event: its kind, what it is about (`disk 00ab… on node-2`) and details.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterEvent {
    /// What happened.
    pub kind: EventKind,
    /// What it happened to, shown in bold.
    pub subject: String,
    /// Why, or the figures (`reason: ...`, `42 stripes repaired`).
    pub detail: String,
    /// Which master saw it (`master 1`).
    pub source: String,
}

impl ClusterEvent {
    /// The card for this event in `cluster`, stamped with the time `at` (RFC 3339).
    pub fn card(&self, cluster: &str, at: &str) -> Card {
        let mut body = format!("**{}**", clip(&self.subject));
        if !self.detail.is_empty() {
            body.push_str(&format!("\n{}", clip(&self.detail)));
        }
        body.push_str(&format!(
            "\nseverity: **{}** · cluster: {cluster}",
            self.kind.severity().word()
        ));
        Card {
            title: format!("[EVENT] {} · {cluster}", self.kind.title()),
            severity: self.kind.severity(),
            sections: vec![body],
            note: format!("{at} · {} · via kdss master", self.source),
        }
    }
}

/// The time now in RFC 3339 (UTC, whole seconds), the stamp an event card carries.
pub fn now_utc() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disk_offline_card_names_the_disk_the_reason_and_the_cluster() {
        let e = ClusterEvent {
            kind: EventKind::DiskOffline,
            subject: "disk 00000000deadbeef on node-2".into(),
            detail: "reason: replacing it (set by operator admin)".into(),
            source: "master 1".into(),
        };
        let card = e.card("prod", "2026-12-05T10:00:00Z");
        assert_eq!(card.title, "[EVENT] disk offline · prod");
        assert_eq!(card.to_json()["header"]["template"], "red");
        assert!(card.sections[0].contains("disk 00000000deadbeef on node-2"));
        assert!(card.sections[0].contains("replacing it"));
        assert!(card.note.contains("master 1"));
    }
}
