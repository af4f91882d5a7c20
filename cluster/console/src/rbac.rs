//! Who may call what: the one endpoint × role table of the console's JSON API. The API
//! middleware looks every request up here (an endpoint missing from the table is refused),
//! the pages ask it whether to show a button, docs/console.md prints it, and the RBAC test
//! walks all of it against a live cluster. Roles are ordered: viewer < operator < admin.

use kdss_proto::master::Role;

/// A console role; each includes the rights of the roles before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsoleRole {
    /// Reads everything but secrets.
    Viewer,
    /// Also acts on disks, nodes and jobs.
    Operator,
    /// Also manages users, buckets and settings.
    Admin,
}

impl ConsoleRole {
    /// The console role of a master role; plain S3 users have no console access.
    pub fn from_master(r: Role) -> Option<ConsoleRole> {
        match r {
            Role::Admin => Some(ConsoleRole::Admin),
            Role::Operator => Some(ConsoleRole::Operator),
            Role::Viewer => Some(ConsoleRole::Viewer),
            Role::User | Role::Unspecified => None,
        }
    }

    /// Lower-case name, as shown and as the API takes it.
    pub fn name(self) -> &'static str {
        match self {
            ConsoleRole::Viewer => "viewer",
            ConsoleRole::Operator => "operator",
            ConsoleRole::Admin => "admin",
        }
    }

    /// Every role, lowest first.
    pub const ALL: [ConsoleRole; 3] = [
        ConsoleRole::Viewer,
        ConsoleRole::Operator,
        ConsoleRole::Admin,
    ];

    /// Whether this role may call `method path` (a route pattern of [`ENDPOINTS`]).
    pub fn may(self, method: &str, path: &str) -> bool {
        endpoint(method, path).is_some_and(|e| self >= e.min)
    }
}

/// One API endpoint and the lowest role that may call it.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    /// HTTP method.
    pub method: &'static str,
    /// The axum route pattern (`{name}` for a path parameter).
    pub path: &'static str,
    /// The lowest role allowed.
    pub min: ConsoleRole,
    /// What it does, for the docs and for 403 messages.
    pub what: &'static str,
}

const fn ep(
    method: &'static str,
    path: &'static str,
    min: ConsoleRole,
    what: &'static str,
) -> Endpoint {
    Endpoint {
        method,
        path,
        min,
        what,
    }
}

use ConsoleRole::{Admin, Operator, Viewer};

/// The table. `POST /api/login` is the one endpoint outside it (it creates the session).
pub const ENDPOINTS: &[Endpoint] = &[
    ep("GET", "/api/session", Viewer, "read the session"),
    ep("POST", "/api/logout", Viewer, "sign out"),
    ep("GET", "/api/overview", Viewer, "read the cluster's health"),
    ep("GET", "/api/rates", Viewer, "read throughput and IOPS"),
    ep("GET", "/api/events", Viewer, "read alerts and events"),
    ep("GET", "/api/nodes", Viewer, "list nodes"),
    ep("GET", "/api/disks", Viewer, "list disks"),
    ep(
        "POST",
        "/api/disks/{disk}/state",
        Operator,
        "set a disk offline, online or draining",
    ),
    ep("GET", "/api/buckets", Viewer, "list buckets"),
    ep("POST", "/api/buckets", Admin, "create buckets"),
    ep("DELETE", "/api/buckets/{name}", Admin, "delete buckets"),
    ep("GET", "/api/users", Viewer, "list users"),
    ep("POST", "/api/users", Admin, "create users"),
    ep("DELETE", "/api/users/{access_key}", Admin, "delete users"),
    ep(
        "POST",
        "/api/users/{access_key}/role",
        Admin,
        "change a user's role",
    ),
    ep("GET", "/api/jobs", Viewer, "read job status"),
    ep(
        "POST",
        "/api/jobs/repair/run",
        Operator,
        "start a repair pass",
    ),
    ep("POST", "/api/jobs/gc/run", Operator, "start a GC pass"),
    ep(
        "POST",
        "/api/jobs/balance/start",
        Operator,
        "start a balance",
    ),
    ep("POST", "/api/jobs/balance/stop", Operator, "stop a balance"),
    ep("GET", "/api/config", Viewer, "read the effective settings"),
];

/// The table entry of `method path` (a route pattern), if any.
pub fn endpoint(method: &str, path: &str) -> Option<&'static Endpoint> {
    ENDPOINTS
        .iter()
        .find(|e| e.method.eq_ignore_ascii_case(method) && e.path == path)
}

/// The table as Markdown (docs/console.md embeds it; a test keeps the two equal).
pub fn markdown_table() -> String {
    let mut s = String::from("| method | endpoint | viewer | operator | admin | what |\n");
    s.push_str("|---|---|---|---|---|---|\n");
    for e in ENDPOINTS {
        let cell = |r: ConsoleRole| if r >= e.min { "yes" } else { "403" };
        s.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} |\n",
            e.method,
            e.path,
            cell(Viewer),
            cell(Operator),
            cell(Admin),
            e.what
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_unknown_endpoints_are_refused() {
        assert!(Viewer < Operator && Operator < Admin);
        assert!(!Admin.may("GET", "/api/nope"));
        assert!(Viewer.may("GET", "/api/buckets"));
        assert!(!Viewer.may("POST", "/api/buckets"));
        assert!(!Operator.may("POST", "/api/users"));
        assert!(Operator.may("POST", "/api/disks/{disk}/state"));
    }

    #[test]
    fn docs_carry_the_table_the_server_enforces() {
        let doc = include_str!("../../../docs/console.md");
        assert!(
            doc.contains(&markdown_table()),
            "docs/console.md is out of date; paste this table:\n{}",
            markdown_table()
        );
    }
}
