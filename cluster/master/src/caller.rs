//! The authenticated caller a request acts for, and what its role allows. Its own module
//! because both sides use it: [`crate::auth`] produces it and [`crate::meta_api`] hands it
//! to the state machine, while auth also reads users through meta_api.

use kdss_proto::master::Role;

/// The authenticated caller a request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Access key of the user acted for (SERVICE_ACCESS_KEY for the service itself).
    pub access_key: String,
    /// That user's role (the service itself counts as admin).
    pub role: Role,
    /// True when the credential was the service identity with no user named.
    pub service: bool,
}

impl Caller {
    /// Admins (and the bare service identity) reach every bucket and every call.
    pub fn is_admin(&self) -> bool {
        self.service || self.role == Role::Admin
    }

    /// Viewers may read but never change anything.
    pub fn may_write(&self) -> bool {
        self.role != Role::Viewer
    }

    /// Operators and admins run the cluster's housekeeping (recycle bin, GC).
    pub fn may_operate(&self) -> bool {
        self.is_admin() || self.role == Role::Operator
    }

    /// The service identity itself: what the leader's own proposals (bootstrap, session
    /// expiry, background jobs) carry.
    pub fn service() -> Caller {
        Caller {
            access_key: kdss_common::auth::SERVICE_ACCESS_KEY.to_string(),
            role: Role::Admin,
            service: true,
        }
    }
}
