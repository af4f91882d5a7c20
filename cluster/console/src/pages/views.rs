//! One handler per page: read the view's data (the same functions the API serves), render.

use super::{failed, page, signed_in};
use crate::data::{self, bytes};
use crate::{Shared, jobs as jobs_data};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

fn age(ms: i64) -> String {
    match ms {
        ms if ms < 0 => "never".into(),
        ms if ms < 1000 => format!("{ms} ms"),
        ms => format!("{} s", ms / 1000),
    }
}

fn bar(pct: f64) -> Markup {
    let w = pct.clamp(0.0, 100.0);
    let class = if w >= 90.0 { "bar hot" } else { "bar" };
    html! { span class=(class) title=(format!("{w:.1}%")) { span style=(format!("width:{w:.1}%")) {} } " " (format!("{w:.1}%")) }
}

pub(super) async fn dashboard(State(c): State<Shared>, headers: HeaderMap) -> Response {
    let s = match signed_in(&c, &headers) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let body = match data::overview(&c.backend, c.cfg.default_ec).await {
        Err(e) => failed(&e),
        Ok(o) => html! {
            section.cards {
                div.card { h2 { "Health" } p #health class=(format!("health {}", o.health.level.to_lowercase())) { (o.health.level) }
                    ul #health-reasons { @for r in &o.health.reasons { li { (r) } } } }
                div.card { h2 { "Nodes online" } p.big #nodes-count { (o.nodes_online) "/" (o.nodes_total) } }
                div.card { h2 { "Disks active" } p.big #disks-count { (o.disks_active) "/" (o.disks_total) } }
                div.card { h2 { "Capacity" } p.big #capacity { (bytes(o.capacity_used)) " / " (bytes(o.capacity_total)) }
                    p #capacity-pct { (bar(o.capacity_pct)) } }
            }
            section.charts {
                div.card { h2 { "Throughput" } svg #chart-throughput viewBox="0 0 400 120" preserveAspectRatio="none" {} p.axis #chart-throughput-label { "sampling…" } }
                div.card { h2 { "IOPS" } svg #chart-iops viewBox="0 0 400 120" preserveAspectRatio="none" {} p.axis #chart-iops-label { "sampling…" } }
            }
            section {
                h2 { "Masters" }
                table { tr { th { "id" } th { "gRPC" } th { "HTTP" } th { "role" } th { "reachable" } }
                    @for m in &o.masters { tr { td { (m.id) } td { (m.grpc) } td { (m.http) }
                        td { @if m.leader { "leader" } @else { "follower" } } td { (m.reachable) } } } }
            }
            section { h2 { "Recent alerts and events" } (events_table(&(c.cfg.events)(), 10)) }
        },
    };
    page(&s, "/", "Dashboard", body)
}

fn events_table(ev: &[crate::EventRow], limit: usize) -> Markup {
    html! {
        @if ev.is_empty() { p.muted #no-events { "No events since this master started." } }
        @else {
            table #events { tr { th { "time (UTC)" } th { "kind" } th { "subject" } th { "detail" } }
                @for e in ev.iter().rev().take(limit) {
                    tr class=[e.alert.then_some("alert")] { td.time data-ms=(e.at_ms) { (e.at_ms) } td { (e.kind) } td { (e.subject) } td { (e.detail) } } } }
        }
    }
}

pub(super) async fn nodes(State(c): State<Shared>, headers: HeaderMap) -> Response {
    let s = match signed_in(&c, &headers) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let st = c
        .backend
        .read()
        .cluster_status(kdss_proto::master::ClusterStatusRequest {})
        .await;
    let disks = data::disks(&c.backend).await;
    let act = s.role.may("POST", "/api/disks/{disk}/state");
    let body = match (st, disks) {
        (Err(e), _) => failed(&e.into()),
        (_, Err(e)) => failed(&e),
        (Ok(st), Ok(disks)) => html! {
            h2 { "Nodes" }
            table #nodes { tr { th { "node" } th { "address" } th { "location" } th { "state" } th { "heartbeat age" } th { "disks" } th { "usage" } }
                @for n in data::nodes(&st) { tr { td { (n.id) } td { (n.grpc) }
                    td { @if n.location.is_empty() { "-" } @else { (n.location) } }
                    td class=(if n.online { "ok" } else { "bad" }) { @if n.online { "online" } @else { "offline" } }
                    td { (age(n.heartbeat_age_ms)) } td { (n.disks) }
                    td { (bar(if n.capacity == 0 { 0.0 } else { n.used as f64 * 100.0 / n.capacity as f64 })) } } } }
            h2 { "Disks" }
            table #disks { tr { th { "disk" } th { "node" } th { "state" } th { "usage" } th { "errors (io/checksum)" }
                th { "p99 read/write" } th { "S.M.A.R.T." } th { "heartbeat age" } th { "shards" } @if act { th { "actions" } } }
                @for d in &disks { tr { td.mono { (d.disk_id) } td { (d.node_id) }
                    td class=(if d.status == "online" && d.node_online { "ok" } else { "bad" }) title=(d.reason) {
                        (d.status) @if !d.node_online { " (node offline)" } }
                    td { (bar(d.used_pct)) " " (bytes(d.used)) " / " (bytes(d.capacity)) }
                    td { (d.io_errors) " / " (d.checksum_errors) }
                    td { (d.read_p99_us) " µs / " (d.write_p99_us) " µs" }
                    td { (d.smart) } td { (age(d.heartbeat_age_ms)) } td { (d.mapped_shards) }
                    @if act { td.actions {
                        @for (state, label) in [("offline", "Offline"), ("online", "Online"), ("drain", "Drain")] {
                            @if offers(d.status, state) { button type="button" data-api=(format!("/api/disks/{}/state", d.disk_id)) data-method="POST"
                                data-body=(format!("{{\"state\":\"{state}\"}}"))
                                data-confirm=(format!("{label} disk {}?", d.disk_id)) { (label) } } } } } } } }
        },
    };
    page(&s, "/nodes", "Nodes & Disks", body)
}

pub(super) async fn buckets(State(c): State<Shared>, headers: HeaderMap) -> Response {
    let s = match signed_in(&c, &headers) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let create = s.role.may("POST", "/api/buckets");
    let delete = s.role.may("DELETE", "/api/buckets/{name}");
    let body = match data::buckets(&c.backend).await {
        Err(e) => failed(&e),
        Ok(list) => html! {
            @if create {
                form #create-bucket data-api="/api/buckets" data-method="POST" data-reload="1" {
                    h2 { "Create a bucket" }
                    label { "Name " input #bucket-name name="name" required pattern="[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"; }
                    label { "EC policy " select #bucket-ec name="ec" {
                        @for (k, m) in crate::api::EC_PRESETS { option value=(format!("{k}+{m}")) { (k) "+" (m) } } } }
                    button #create-bucket-submit type="submit" { "Create bucket" }
                    p.result {}
                }
            }
            table #buckets { tr { th { "bucket" } th { "EC" } th { "objects" } th { "bytes" } th { "owner" } @if delete { th {} } }
                @for b in &list { tr data-bucket=(b.name) { td { (b.name) } td.ec { (b.ec) }
                    td { (b.objects) @if b.counted_partly { "+" } } td { (bytes(b.bytes)) } td.mono { (b.owner) }
                    @if delete { td { button type="button" data-api=(format!("/api/buckets/{}", b.name)) data-method="DELETE"
                        data-confirm=(format!("Delete bucket {}?", b.name)) { "Delete" } } } } } }
            p.result #page-result {}
        },
    };
    page(&s, "/buckets", "Buckets", body)
}

pub(super) async fn users(State(c): State<Shared>, headers: HeaderMap) -> Response {
    let s = match signed_in(&c, &headers) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let admin = s.role.may("POST", "/api/users");
    let body = match data::users(&c.backend).await {
        Err(e) => failed(&e),
        Ok(list) => html! {
            @if admin {
                form #create-user data-api="/api/users" data-method="POST" data-show-secret="1" {
                    h2 { "Create a user" }
                    label { "Name " input #user-name name="name" required; }
                    label { "Role " select #user-role name="role" {
                        @for r in ["viewer", "operator", "admin", "user"] { option value=(r) { (r) } } } }
                    button #create-user-submit type="submit" { "Create user" }
                    p.result #created-user {}
                }
            }
            table #users { tr { th { "name" } th { "access key" } th { "role" } @if admin { th { "change role" } th {} } }
                @for u in &list { tr data-user=(u.access_key) { td { (u.name) } td.mono { (u.access_key) } td.role { (u.role) }
                    @if admin && u.access_key != s.access_key {
                        td { @for r in ["viewer", "operator", "admin"] { @if r != u.role {
                            button type="button" data-api=(format!("/api/users/{}/role", u.access_key)) data-method="POST"
                                data-body=(format!("{{\"role\":\"{r}\"}}")) data-confirm=(format!("Make {} {r}?", u.name)) { (r) } } } }
                        td { button type="button" data-api=(format!("/api/users/{}", u.access_key)) data-method="DELETE"
                            data-confirm=(format!("Delete user {}?", u.name)) { "Delete" } }
                    } @else if admin { td { "(you)" } td {} } } } }
            p.result #page-result {}
        },
    };
    page(&s, "/users", "Users", body)
}

pub(super) async fn alerts(State(c): State<Shared>, headers: HeaderMap) -> Response {
    let s = match signed_in(&c, &headers) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let body = match data::overview(&c.backend, c.cfg.default_ec).await {
        Err(e) => failed(&e),
        Ok(o) => html! {
            h2 { "Current" }
            @if o.health.reasons.is_empty() { p.ok #current-alerts { "Nothing is wrong now." } }
            @else { ul #current-alerts { @for r in &o.health.reasons { li.alert { (r) } } } }
            h2 { "Recent (the events sent to Lark)" }
            (events_table(&(c.cfg.events)(), 200))
        },
    };
    page(&s, "/alerts", "Alerts", body)
}

pub(super) async fn config(State(c): State<Shared>, headers: HeaderMap) -> Response {
    let s = match signed_in(&c, &headers) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let body = html! {
        p.muted { "The effective settings of this master, read-only. Secrets are never shown." }
        table #config { tr { th { "setting" } th { "value" } }
            @for (k, v) in &c.cfg.settings { tr { td.mono { (k) } td.mono { (v) } } } }
    };
    page(&s, "/config", "Config", body)
}

pub(super) async fn jobs(State(c): State<Shared>, headers: HeaderMap) -> Response {
    let s = match signed_in(&c, &headers) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let act = s.role.may("POST", "/api/jobs/repair/run");
    let body = match jobs_data::jobs(&c.backend).await {
        Err(e) => failed(&e),
        Ok(list) => html! {
            table #jobs { tr { th { "job" } th { "state" } th { "progress" } th { "queued" } th { "done" } th { "rate" } th { "ETA" } th { "passes" } th { "last error" } }
                @for j in &list { tr { td { (j.name) @if j.running { " (running)" } } td { (j.state) }
                    td { @match j.progress_pct { Some(p) => (bar(p)), None => "-" } }
                    td { (j.queued) } td { (j.done) } td { (j.rate) } td { (j.eta) } td { (j.passes) } td { (j.last_error) } } } }
            @if act {
                p.actions {
                    @for (url, label) in [("/api/jobs/repair/run", "Run repair"), ("/api/jobs/gc/run", "Run GC"),
                        ("/api/jobs/balance/start", "Start balance"), ("/api/jobs/balance/stop", "Stop balance")] {
                        button type="button" data-api=(url) data-method="POST" data-confirm=(format!("{label}?")) { (label) } " " } }
            }
            p.result #page-result {}
        },
    };
    page(&s, "/jobs", "Jobs", body)
}

/// Whether a disk in `status` gets the button that moves it to `target` (no button for the
/// state it is already in).
fn offers(status: &str, target: &str) -> bool {
    !matches!(
        (status, target),
        ("offline", "offline") | ("online", "online") | ("draining", "drain")
    )
}
