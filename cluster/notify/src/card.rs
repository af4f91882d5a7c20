//! Interactive cards (`msg_type: "interactive"`) as a Lark custom bot shows them: a coloured
//! header, one markdown block per alert or event, a footnote. One card per state of a
//! notification, so a group with firing and resolved alerts gives a red (or orange, blue)
//! card and a green one, and a reader never has to look for which half an alert is in.
//!
//! Lark refuses cards over about 30 KB; a card holds at most [`MAX_ALERTS_PER_CARD`]
//! alerts and each text at most [`MAX_TEXT`] characters, the rest counted in the footnote.

use crate::alertmanager::{Alert, WebhookMessage};
use serde_json::{Value, json};

/// Alerts shown on one card; more are counted, not shown.
pub const MAX_ALERTS_PER_CARD: usize = 20;
/// Characters kept of one summary, description or label list.
pub const MAX_TEXT: usize = 600;

/// How urgent a card is, which picks its header colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Informational (blue).
    Info,
    /// Needs a look soon (orange).
    Warning,
    /// Needs someone now (red).
    Critical,
    /// Back to normal (green).
    Resolved,
}

impl Severity {
    /// Reads a `severity` label; anything unknown is a warning, so it is neither hidden as
    /// info nor shouted as critical.
    pub fn from_label(label: &str) -> Severity {
        match label.to_ascii_lowercase().as_str() {
            "critical" | "error" | "page" | "high" => Severity::Critical,
            "info" | "informational" | "low" | "none" => Severity::Info,
            _ => Severity::Warning,
        }
    }

    /// Lark's header template colour.
    pub fn template(self) -> &'static str {
        match self {
            Severity::Info => "blue",
            Severity::Warning => "orange",
            Severity::Critical => "red",
            Severity::Resolved => "green",
        }
    }

    /// The word shown on the card.
    pub fn word(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
            Severity::Resolved => "resolved",
        }
    }
}

/// A card ready to send: title, colour, markdown sections and a footnote.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    /// Header text.
    pub title: String,
    /// Header colour.
    pub severity: Severity,
    /// One `lark_md` block each, separated by rules.
    pub sections: Vec<String>,
    /// Small grey text at the bottom.
    pub note: String,
}

impl Card {
    /// The `card` object of Lark's message body.
    pub fn to_json(&self) -> Value {
        let mut elements = Vec::new();
        for (i, s) in self.sections.iter().enumerate() {
            if i > 0 {
                elements.push(json!({"tag": "hr"}));
            }
            elements.push(json!({"tag": "div", "text": {"tag": "lark_md", "content": s}}));
        }
        if !self.note.is_empty() {
            elements.push(json!({
                "tag": "note",
                "elements": [{"tag": "plain_text", "content": self.note}],
            }));
        }
        json!({
            "config": {"wide_screen_mode": true},
            "header": {
                "title": {"tag": "plain_text", "content": self.title},
                "template": self.severity.template(),
            },
            "elements": elements,
        })
    }
}

/// Cuts `s` to [`MAX_TEXT`] characters, marking the cut.
pub fn clip(s: &str) -> String {
    if s.chars().count() <= MAX_TEXT {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(MAX_TEXT).collect();
        out.push('…');
        out
    }
}

/// The cards for one Alertmanager notification: the firing alerts on one card, the
/// resolved ones on another (either may be absent).
pub fn alert_cards(msg: &WebhookMessage, cluster: &str) -> Vec<Card> {
    let (resolved, firing): (Vec<&Alert>, Vec<&Alert>) =
        msg.alerts.iter().partition(|a| a.resolved());
    let mut cards = Vec::new();
    if !firing.is_empty() {
        cards.push(state_card(msg, cluster, &firing, false));
    }
    if !resolved.is_empty() {
        cards.push(state_card(msg, cluster, &resolved, true));
    }
    cards
}

fn state_card(msg: &WebhookMessage, cluster: &str, alerts: &[&Alert], resolved: bool) -> Card {
    let severity = if resolved {
        Severity::Resolved
    } else {
        alerts
            .iter()
            .map(|a| Severity::from_label(&a.severity()))
            .max()
            .unwrap_or(Severity::Warning)
    };
    let mut names: Vec<&str> = Vec::new();
    for a in alerts {
        if !names.contains(&a.name()) {
            names.push(a.name());
        }
    }
    let shown_names = if names.len() > 3 {
        format!("{} and {} more", names[..3].join(", "), names.len() - 3)
    } else {
        names.join(", ")
    };
    let word = if resolved { "RESOLVED" } else { "FIRING" };
    let title = format!("[{word}:{}] {shown_names} · {cluster}", alerts.len());
    let sections = alerts
        .iter()
        .take(MAX_ALERTS_PER_CARD)
        .map(|a| alert_section(a, cluster))
        .collect();
    let hidden = alerts.len().saturating_sub(MAX_ALERTS_PER_CARD) as u64 + msg.truncated_alerts;
    let mut note = format!("cluster {cluster} · via kdss notify");
    if hidden > 0 {
        note.push_str(&format!(" · {hidden} more alerts not shown"));
    }
    if !msg.external_url.is_empty() {
        note.push_str(&format!(" · {}", msg.external_url));
    }
    Card {
        title,
        severity,
        sections,
        note,
    }
}

fn alert_section(a: &Alert, cluster: &str) -> String {
    let state = if a.resolved() { "resolved" } else { "firing" };
    let mut s = format!(
        "**{}** · severity: **{}** · {state} · cluster: {cluster}",
        a.name(),
        a.severity()
    );
    if let Some(summary) = a.summary() {
        s.push_str(&format!("\n{}", clip(summary)));
    }
    if let Some(d) = a.annotations.get("description")
        && Some(d.as_str()) != a.summary()
    {
        s.push_str(&format!("\n{}", clip(d)));
    }
    let labels: Vec<String> = a
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname" && k.as_str() != "severity")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !labels.is_empty() {
        s.push_str(&format!("\nlabels: {}", clip(&labels.join(", "))));
    }
    if !a.starts_at.is_empty() {
        s.push_str(&format!("\nsince {}", a.starts_at));
    }
    if a.resolved() && !a.ends_at.is_empty() {
        s.push_str(&format!(", resolved {}", a.ends_at));
    }
    if let Some(r) = a.annotations.get("runbook_url") {
        s.push_str(&format!("\nrunbook: {}", clip(r)));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> WebhookMessage {
        serde_json::from_value(json!({
            "version": "4", "status": "firing", "receiver": "lark",
            "externalURL": "http://am:9093", "truncatedAlerts": 0,
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
            "alerts": [
                {"status": "firing",
                 "labels": {"alertname": "DiskSpaceCritical", "severity": "critical", "instance": "node-1"},
                 "annotations": {"summary": "disk-0 of node-1 is 93% full"},
                 "startsAt": "2026-12-05T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z"},
                {"status": "firing",
                 "labels": {"alertname": "ECRepairQueueHigh", "severity": "warning"},
                 "annotations": {"summary": "150 stripes wait for repair"},
                 "startsAt": "2026-12-05T10:01:00Z"},
                {"status": "resolved",
                 "labels": {"alertname": "NodeHeartbeatLost", "severity": "critical"},
                 "annotations": {"summary": "node-3 sent no heartbeat for 30 s"},
                 "startsAt": "2026-12-05T09:00:00Z", "endsAt": "2026-12-05T09:05:00Z"}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn firing_and_resolved_alerts_go_on_separate_cards_coloured_by_severity() {
        let cards = alert_cards(&message(), "prod-east");
        assert_eq!(cards.len(), 2);
        let (firing, resolved) = (&cards[0], &cards[1]);
        assert_eq!(
            firing.title,
            "[FIRING:2] DiskSpaceCritical, ECRepairQueueHigh · prod-east"
        );
        assert_eq!(firing.severity, Severity::Critical);
        assert!(firing.sections[0].contains("severity: **critical**"));
        assert!(firing.sections[0].contains("disk-0 of node-1 is 93% full"));
        assert!(firing.sections[0].contains("instance=node-1"));
        assert_eq!(resolved.title, "[RESOLVED:1] NodeHeartbeatLost · prod-east");
        assert_eq!(resolved.to_json()["header"]["template"], "green");
        assert!(resolved.sections[0].contains("resolved 2026-12-05T09:05:00Z"));
    }

    #[test]
    fn the_card_json_has_the_shape_lark_renders() {
        let card = alert_cards(&message(), "c").remove(0).to_json();
        assert_eq!(card["header"]["title"]["tag"], "plain_text");
        assert_eq!(card["header"]["template"], "red");
        let el = card["elements"].as_array().unwrap();
        assert_eq!(el[0]["tag"], "div");
        assert_eq!(el[0]["text"]["tag"], "lark_md");
        assert_eq!(el[1]["tag"], "hr");
        assert_eq!(el.last().unwrap()["tag"], "note");
    }

    #[test]
    fn a_storm_of_alerts_stays_within_one_card_and_says_how_many_are_hidden() {
        let mut msg = message();
        let one = msg.alerts[0].clone();
        msg.alerts = vec![one; 45];
        msg.truncated_alerts = 5;
        let cards = alert_cards(&msg, "c");
        assert_eq!(cards.len(), 1);
        assert_eq!(cards[0].sections.len(), MAX_ALERTS_PER_CARD);
        assert!(
            cards[0].note.contains("30 more alerts not shown"),
            "{}",
            cards[0].note
        );
        let long = "x".repeat(5000);
        assert_eq!(clip(&long).chars().count(), MAX_TEXT + 1);
    }

    #[test]
    fn unknown_severities_are_warnings() {
        assert_eq!(Severity::from_label("CRITICAL"), Severity::Critical);
        assert_eq!(Severity::from_label("sev2"), Severity::Warning);
        assert_eq!(Severity::from_label("info"), Severity::Info);
    }
}
