//! What a daemon's certificate says it is. All daemons share the cluster secret, so the
//! service credential alone cannot tell a gateway from a storage node; the certificate the
//! daemon presents over mutual TLS can. `kdss certs --role` writes the role into the
//! certificate as one extra DNS name, `<role>.role.kdss.invalid` (`.invalid` is reserved:
//! no resolver answers for it, so the name never makes the certificate valid for a real
//! host), and a server checks it with the same name check clients use on servers. The
//! chain itself was verified against the cluster CA during the handshake.

use rustls::pki_types::{CertificateDer, DnsName, ServerName};

/// The kind of daemon a certificate was issued to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonRole {
    /// A master (it also serves the console and forwards calls to the leader).
    Master,
    /// A storage node.
    Storage,
    /// An S3 gateway: the only daemon that receives users' secret keys.
    Gateway,
}

impl DaemonRole {
    /// Every role, for help texts and parsing.
    pub const ALL: [DaemonRole; 3] = [DaemonRole::Master, DaemonRole::Storage, DaemonRole::Gateway];

    /// The name used on the command line and in the certificate.
    pub fn name(self) -> &'static str {
        match self {
            DaemonRole::Master => "master",
            DaemonRole::Storage => "storage",
            DaemonRole::Gateway => "gateway",
        }
    }

    /// Parses `master`, `storage` or `gateway`.
    pub fn parse(s: &str) -> Option<DaemonRole> {
        DaemonRole::ALL.into_iter().find(|r| r.name() == s)
    }

    /// The DNS subject alternative name that carries the role.
    pub fn san(self) -> String {
        format!("{}.role.kdss.invalid", self.name())
    }
}

impl std::fmt::Display for DaemonRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether the end-entity certificate of a peer's chain (first in `chain`) carries `role`.
/// An unparsable certificate carries none.
pub fn has_role(chain: &[CertificateDer<'_>], role: DaemonRole) -> bool {
    let Some(leaf) = chain.first() else {
        return false;
    };
    let Ok(cert) = webpki::EndEntityCert::try_from(leaf) else {
        return false;
    };
    let Ok(name) = DnsName::try_from(role.san()) else {
        return false;
    };
    cert.verify_is_valid_for_subject_name(&ServerName::DnsName(name))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in DaemonRole::ALL {
            assert_eq!(DaemonRole::parse(r.name()), Some(r));
            assert!(DnsName::try_from(r.san()).is_ok(), "{}", r.san());
        }
        assert_eq!(DaemonRole::parse("admin"), None);
    }

    #[test]
    fn garbage_or_no_certificate_has_no_role() {
        assert!(!has_role(&[], DaemonRole::Gateway));
        let junk = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
        assert!(!has_role(&[junk], DaemonRole::Gateway));
    }
}
