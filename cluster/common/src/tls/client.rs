//! The client side of TLS, one per process: a process is one daemon or one user tool, with
//! one trust root (the cluster CA) and at most one identity, so the setting is installed
//! once at start ([`install_client`]) and every gRPC channel ([`endpoint`]) and HTTPS
//! probe ([`ClientTls::rustls`]) uses it, without threading it through every constructor.

use super::{TlsError, TlsSection, load_roots, read};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// What this process trusts and presents when it dials.
pub struct ClientTls {
    ca_pem: Vec<u8>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    rustls: Arc<rustls::ClientConfig>,
}

static CLIENT: RwLock<Option<Arc<ClientTls>>> = RwLock::new(None);

/// Sets the process's client TLS (`None`: dial plaintext `http://`).
pub fn install_client(tls: Option<Arc<ClientTls>>) {
    *CLIENT.write().unwrap_or_else(|e| e.into_inner()) = tls;
}

/// The process's client TLS, if any.
pub fn installed() -> Option<Arc<ClientTls>> {
    CLIENT.read().unwrap_or_else(|e| e.into_inner()).clone()
}

impl ClientTls {
    /// Trusts `ca` and presents `cert`/`key` when both are set; `None` without `ca`.
    pub fn load(s: &TlsSection) -> Result<Option<ClientTls>, TlsError> {
        let Some(ca) = &s.ca else { return Ok(None) };
        let provider = super::provider();
        let roots = load_roots(ca)?;
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_root_certificates(roots);
        let (rustls, identity) = match (&s.cert, &s.key) {
            (Some(c), Some(k)) => {
                let cfg = builder
                    .with_client_auth_cert(super::load_certs(c)?, super::load_key(k)?)
                    .map_err(|e| TlsError::Setup(format!("{}: {e}", c.display())))?;
                (cfg, Some((read(c)?, read(k)?)))
            }
            _ => (builder.with_no_client_auth(), None),
        };
        Ok(Some(ClientTls {
            ca_pem: read(ca)?,
            identity,
            rustls: Arc::new(rustls),
        }))
    }

    /// A rustls config for HTTPS (HTTP/1.1) clients of this process.
    pub fn rustls(&self) -> Arc<rustls::ClientConfig> {
        self.rustls.clone()
    }

    fn tonic(&self) -> ClientTlsConfig {
        let mut c = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .timeout(Duration::from_secs(10));
        if let Some((cert, key)) = &self.identity {
            c = c.identity(Identity::from_pem(cert, key));
        }
        c
    }
}

/// `addr` (`host:port`) as a URL: `https://` when this process dials TLS, `http://` else.
/// A URL with a scheme is returned as it is.
pub fn url(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else if installed().is_some() {
        format!("https://{addr}")
    } else {
        format!("http://{addr}")
    }
}

/// A gRPC endpoint for `addr` (`host:port` or a URL) with this process's TLS applied to
/// `https://` URLs: the one place KDSS turns an address into an [`Endpoint`].
pub fn endpoint(addr: &str) -> Result<Endpoint, String> {
    endpoint_with(addr, installed().as_deref())
}

/// [`endpoint`] with an explicit client TLS instead of the process's (a launcher driving
/// clusters of both kinds from one process).
pub fn endpoint_with(addr: &str, tls: Option<&ClientTls>) -> Result<Endpoint, String> {
    let u = if addr.contains("://") {
        addr.to_string()
    } else if tls.is_some() {
        format!("https://{addr}")
    } else {
        format!("http://{addr}")
    };
    let ep = Endpoint::from_shared(u.clone()).map_err(|e| format!("bad address {addr:?}: {e}"))?;
    if !u.starts_with("https://") {
        return Ok(ep);
    }
    let Some(tls) = tls else {
        return Err(format!(
            "{addr}: an https:// address needs [tls] ca naming the cluster CA"
        ));
    };
    ep.tls_config(tls.tonic())
        .map_err(|e| format!("TLS for {addr}: {e}"))
}
