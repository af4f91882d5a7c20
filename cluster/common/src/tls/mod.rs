//! TLS for every KDSS listener and connection: the `[tls]` section all configs share, the
//! rule that a daemon serves plaintext only on loopback unless told `insecure = true`, and
//! the rustls configs built from PEM files. Daemons present their certificate to each other
//! (mutual TLS, verified against the cluster CA); user clients (ksfs, kdss-cli) only verify
//! the server and prove who they are with their KDSS credential.
//!
//! rustls needs one process-wide crypto provider; in a workspace build reqwest is unified
//! with `rustls-no-provider`, so nothing picks one for us: [`install_provider`] installs
//! ring, and every function here that builds a config calls it first.

pub mod client;
pub mod http;
pub mod role;

use crate::config::{ConfigError, invalid};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use client::{ClientTls, endpoint, endpoint_with, install_client, url};
pub use role::{DaemonRole, has_role};

/// `[tls]` of master.toml, storage.toml, s3gw.toml, mount.toml and cli.toml.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM file of the cluster CA: servers verify client certificates with it, clients
    /// verify servers with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// PEM certificate (chain) this process presents, signed by the cluster CA. Daemons
    /// need one; user clients leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert` (keep it 0600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// Allows a daemon without `cert`/`key` to serve plaintext on a non-loopback address.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
}

/// A PEM file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Unreadable or not the PEM expected.
    #[error("TLS file {path}: {detail}")]
    File { path: PathBuf, detail: String },
    /// The files read but rustls refused the combination (key not matching the cert...).
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// Installs ring as the process's rustls provider (a no-op when one is installed). rustls
/// marks ring's provider deprecated for lacking post-quantum key exchange; the other
/// provider (aws-lc) is the slowest C build in the tree, so we keep ring.
#[allow(deprecated)]
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    install_provider();
    rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// Whether a listen address (`host:port`) is reachable only from this machine.
pub fn is_loopback(addr: &str) -> bool {
    if let Ok(a) = addr.parse::<std::net::SocketAddr>() {
        return a.ip().is_loopback();
    }
    let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
    host.eq_ignore_ascii_case("localhost")
}

impl TlsSection {
    /// Whether this process serves TLS (a daemon with its certificate and key).
    pub fn serves_tls(&self) -> bool {
        self.cert.is_some() && self.key.is_some()
    }

    /// Checks the section of a daemon config at `path`: cert and key go together and come
    /// with the CA that signs the peers.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        if self.cert.is_some() != self.key.is_some() {
            return Err(invalid(
                path,
                "tls.cert",
                "tls.cert and tls.key go together: set both or neither",
            ));
        }
        if self.serves_tls() && self.ca.is_none() {
            return Err(invalid(
                path,
                "tls.ca",
                "a daemon with tls.cert needs tls.ca, the cluster CA that signs its peers",
            ));
        }
        Ok(())
    }

    /// Refuses to serve plaintext on a non-loopback address unless `insecure = true`:
    /// `key` names the listen setting in `path` so the error says which one.
    pub fn check_listen(&self, path: &Path, key: &str, addr: &str) -> Result<(), ConfigError> {
        if self.serves_tls() || self.insecure || is_loopback(addr) {
            return Ok(());
        }
        Err(invalid(
            path,
            key,
            format!(
                "{addr} is not a loopback address and there is no [tls] with ca, cert and \
                 key: refusing to serve plaintext on the network (add a [tls] section, see \
                 `kdss certs`, or set `insecure = true` under [tls] to allow plaintext)"
            ),
        ))
    }

    /// Sets this process up for TLS: installs the provider and the client side every
    /// outgoing connection uses ([`client::install_client`]), and returns the server side
    /// when the section has a certificate. A section without `ca` leaves clients plain.
    pub fn install(&self) -> Result<Option<ServerTls>, TlsError> {
        install_provider();
        install_client(ClientTls::load(self)?.map(Arc::new));
        ServerTls::load(self)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::File {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

/// The certificates of a PEM file (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |detail: String| TlsError::File {
        path: path.to_path_buf(),
        detail,
    };
    let pem = read(path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE block in the file".into()));
    }
    Ok(certs)
}

/// The private key of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(&read(path)?).map_err(|e| TlsError::File {
        path: path.to_path_buf(),
        detail: format!("no PEM private key: {e}"),
    })
}

/// The cluster CA as a root store.
pub fn load_roots(ca: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in load_certs(ca)? {
        roots.add(c).map_err(|e| TlsError::File {
            path: ca.to_path_buf(),
            detail: format!("not a usable CA certificate: {e}"),
        })?;
    }
    Ok(roots)
}

/// A daemon's server side: the same certificate for its gRPC and its HTTP listeners.
/// Clients that present a certificate must present one the cluster CA signed; clients
/// without one (users, browsers, S3 tools) are let through to authenticate otherwise.
#[derive(Clone)]
pub struct ServerTls {
    /// For `tonic::transport::Server::tls_config`.
    pub grpc: tonic::transport::ServerTlsConfig,
    /// For HTTP listeners ([`http::serve`]).
    pub http: Arc<rustls::ServerConfig>,
}

impl ServerTls {
    /// Loads the daemon's certificate, key and CA; `None` when the section has no cert.
    pub fn load(s: &TlsSection) -> Result<Option<ServerTls>, TlsError> {
        let (Some(cert), Some(key), Some(ca)) = (&s.cert, &s.key, &s.ca) else {
            return Ok(None);
        };
        let setup = |e: &dyn std::fmt::Display| TlsError::Setup(e.to_string());
        let provider = provider();
        let certs = load_certs(cert)?;
        let pkey = load_key(key)?;
        let roots = Arc::new(load_roots(ca)?);
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| setup(&e))?;
        let mut http = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| setup(&e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, pkey)
            .map_err(|e| {
                TlsError::Setup(format!(
                    "{} and {} do not make a usable identity: {e}",
                    cert.display(),
                    key.display()
                ))
            })?;
        http.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let identity = tonic::transport::Identity::from_pem(read(cert)?, read(key)?);
        let grpc = tonic::transport::ServerTlsConfig::new()
            .identity(identity)
            .client_ca_root(tonic::transport::Certificate::from_pem(read(ca)?))
            .client_auth_optional(true);
        Ok(Some(ServerTls {
            grpc,
            http: Arc::new(http),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses() {
        assert!(is_loopback("127.0.0.1:6700"));
        assert!(is_loopback("127.3.4.5:1"));
        assert!(is_loopback("[::1]:9000"));
        assert!(is_loopback("localhost:9000"));
        assert!(!is_loopback("0.0.0.0:6700"));
        assert!(!is_loopback("[::]:6700"));
        assert!(!is_loopback("10.0.0.1:6700"));
        assert!(!is_loopback("master1.example:6700"));
    }

    #[test]
    fn plaintext_on_the_network_is_refused_unless_insecure() {
        let p = Path::new("/etc/kdss/master.toml");
        let none = TlsSection::default();
        assert!(
            none.check_listen(p, "master.grpc_addr", "127.0.0.1:1")
                .is_ok()
        );
        let e = none
            .check_listen(p, "master.grpc_addr", "0.0.0.0:6700")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/etc/kdss/master.toml"), "{e}");
        assert!(e.contains("master.grpc_addr"), "{e}");
        assert!(e.contains("0.0.0.0:6700"), "{e}");
        assert!(e.contains("insecure = true"), "{e}");
        let insecure = TlsSection {
            insecure: true,
            ..Default::default()
        };
        assert!(insecure.check_listen(p, "k", "0.0.0.0:6700").is_ok());
    }

    #[test]
    fn cert_without_key_or_ca_is_refused() {
        let p = Path::new("x.toml");
        let s = TlsSection {
            cert: Some("c.pem".into()),
            ..Default::default()
        };
        assert!(s.validate(p).unwrap_err().to_string().contains("tls.key"));
        let s = TlsSection {
            cert: Some("c.pem".into()),
            key: Some("k.pem".into()),
            ..Default::default()
        };
        assert!(s.validate(p).unwrap_err().to_string().contains("tls.ca"));
    }
}
