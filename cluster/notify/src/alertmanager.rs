//! The body Alertmanager POSTs to a webhook receiver (`webhook_configs`, payload
//! `"version": "4"`). Only the fields a card shows are kept; unknown fields are ignored,
//! because Alertmanager adds fields within version 4 and a relay that refused them would
//! drop pages.

use serde::Deserialize;
use std::collections::BTreeMap;

/// One webhook notification: a group of alerts with the same group labels.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookMessage {
    /// Payload version; this relay reads version "4".
    #[serde(default)]
    pub version: String,
    /// `firing` if any alert of the group fires, else `resolved`.
    #[serde(default)]
    pub status: String,
    /// Name of the Alertmanager receiver that sent it.
    #[serde(default)]
    pub receiver: String,
    /// Labels the group is keyed by.
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    /// Labels every alert of the group shares.
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    /// Alertmanager's own address, for a link back to it.
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    /// Alerts Alertmanager left out because of `max_alerts`.
    #[serde(default)]
    pub truncated_alerts: u64,
    /// The alerts, firing and resolved mixed.
    pub alerts: Vec<Alert>,
}

/// One alert of a notification.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// `firing` or `resolved`.
    pub status: String,
    /// Identifying labels (`alertname`, `severity`, `instance`, ...).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Text for people (`summary`, `description`, `runbook_url`, ...).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339 time the alert started firing.
    #[serde(default)]
    pub starts_at: String,
    /// RFC 3339 time it resolved (a zero time while it fires).
    #[serde(default)]
    pub ends_at: String,
    /// Link to the expression in Prometheus.
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
}

impl Alert {
    /// Whether the alert has resolved (anything but `resolved` counts as firing, so an
    /// unexpected status pages rather than hides).
    pub fn resolved(&self) -> bool {
        self.status == "resolved"
    }

    /// `alertname`, or a stand-in so a card never has an empty title.
    pub fn name(&self) -> &str {
        self.labels
            .get("alertname")
            .map_or("unnamed alert", String::as_str)
    }

    /// `severity` label, lower-cased; `none` when the rule set none.
    pub fn severity(&self) -> String {
        self.labels
            .get("severity")
            .map_or_else(|| "none".to_string(), |s| s.to_lowercase())
    }

    /// `summary` annotation, else `description`, else nothing.
    pub fn summary(&self) -> Option<&str> {
        self.annotations
            .get("summary")
            .or_else(|| self.annotations.get("description"))
            .map(String::as_str)
    }
}
