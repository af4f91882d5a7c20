//! Server-side sessions and the failed-login limiter. A session is a random 256-bit token
//! in an HttpOnly, SameSite=Strict cookie; the server keeps who it is, the role and the
//! CSRF token, and forgets it at expiry or logout. Nothing secret of the user is kept: the
//! console acts for the user through the service identity (`kdss-on-behalf-of`).

use crate::rbac::ConsoleRole;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const COOKIE: &str = "kdss_session";
/// The header a state-changing request carries the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Sessions kept at most; past it the oldest are dropped (bounds memory).
const MAX_SESSIONS: usize = 10_000;

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user's access key.
    pub access_key: String,
    /// Its console role at sign-in.
    pub role: ConsoleRole,
    /// The token state-changing requests must echo in [`CSRF_HEADER`].
    pub csrf: String,
    /// When the session ends unless used again.
    pub expires: Instant,
}

/// The sessions of one master (a session lives on the master that created it).
#[derive(Debug)]
pub struct SessionStore {
    ttl: Duration,
    sessions: Mutex<HashMap<String, Session>>,
}

fn token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Compares without an early exit, so timing reveals nothing of a token.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

impl SessionStore {
    /// Sessions that end `ttl` after their last use.
    pub fn new(ttl: Duration) -> SessionStore {
        SessionStore {
            ttl,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// How long a session lives without use (the cookie's Max-Age).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session; returns its cookie token and the session.
    pub fn create(&self, access_key: &str, role: ConsoleRole) -> (String, Session) {
        let now = Instant::now();
        let s = Session {
            access_key: access_key.to_string(),
            role,
            csrf: token(),
            expires: now + self.ttl,
        };
        let id = token();
        let mut m = self.lock();
        m.retain(|_, s| s.expires > now);
        if m.len() >= MAX_SESSIONS
            && let Some(oldest) = m
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            m.remove(&oldest);
        }
        m.insert(id.clone(), s.clone());
        (id, s)
    }

    /// The live session of `id`, its expiry pushed out; None when unknown or expired.
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut m = self.lock();
        match m.get_mut(id) {
            Some(s) if s.expires > now => {
                s.expires = now + self.ttl;
                Some(s.clone())
            }
            Some(_) => {
                m.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends a session.
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Ends every session of a user (deleted, or its role changed).
    pub fn remove_user(&self, access_key: &str) {
        self.lock().retain(|_, s| s.access_key != access_key);
    }
}

/// Failed logins allowed per window, per client address and per access key.
pub const MAX_FAILURES: u32 = 5;

/// Counts failed logins per client address and per access key over a fixed window; past
/// [`MAX_FAILURES`] further attempts are refused until the window ends.
#[derive(Debug)]
pub struct LoginLimiter {
    window: Duration,
    failures: Mutex<HashMap<String, (Instant, u32)>>,
}

impl LoginLimiter {
    /// A limiter over `window`.
    pub fn new(window: Duration) -> LoginLimiter {
        LoginLimiter {
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds to wait when any of `keys` is over the limit.
    pub fn blocked(&self, keys: &[String]) -> Option<u64> {
        let now = Instant::now();
        let m = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .filter_map(|k| m.get(k))
            .filter(|(start, n)| *n >= MAX_FAILURES && now < *start + self.window)
            .map(|(start, _)| (*start + self.window - now).as_secs().max(1))
            .max()
    }

    /// Counts one failure against each of `keys`.
    pub fn failed(&self, keys: &[String]) {
        let now = Instant::now();
        let mut m = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, (start, _)| now < *start + self.window);
        for k in keys {
            let e = m.entry(k.clone()).or_insert((now, 0));
            e.1 += 1;
        }
    }

    /// A success clears the key's failures (not the address's).
    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods)] // a plain test thread, no reactor to block
    fn sessions_expire_and_logout_ends_them() {
        let st = SessionStore::new(Duration::from_millis(50));
        let (id, s) = st.create("ak", ConsoleRole::Viewer);
        assert_eq!(st.get(&id).map(|s| s.access_key), Some("ak".into()));
        assert_ne!(s.csrf, id);
        std::thread::sleep(Duration::from_millis(80));
        assert!(st.get(&id).is_none(), "expired session still served");
        let (id, _) = st.create("ak", ConsoleRole::Viewer);
        st.remove(&id);
        assert!(st.get(&id).is_none());
    }

    #[test]
    fn the_sixth_failure_in_a_window_is_refused() {
        let l = LoginLimiter::new(Duration::from_secs(60));
        let keys = vec!["ip:1".to_string(), "key:ak".to_string()];
        for _ in 0..MAX_FAILURES {
            assert!(l.blocked(&keys).is_none());
            l.failed(&keys);
        }
        assert!(l.blocked(&keys).is_some());
        assert!(l.blocked(&["key:other".to_string()]).is_none());
    }
}
