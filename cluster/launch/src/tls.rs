//! Certificates for a cluster: one CA and a certificate per daemon, made by `kdss up
//! --tls` for a local cluster and by `kdss certs` for a deployment. Every daemon's
//! certificate serves and dials (server and client auth), so daemons verify each other
//! with the one CA (mutual TLS). Keys are written 0600 in a 0700 directory.

use crate::error::{LaunchError, io};
use crate::layout::Layout;
use kdss_common::tls::{ClientTls, DaemonRole};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The CA's common name. The issuer of every certificate is rebuilt from it and the CA
/// key, so `kdss certs` can sign more certificates with a CA made earlier.
const CA_NAME: &str = "KDSS cluster CA";

/// How long certificates are valid, days.
const VALID_DAYS: i64 = 3650;

/// A certificate and its key on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A cluster CA kept in a directory (`ca.pem`, `ca.key`), signing daemon certificates
/// into the same directory.
pub struct CertAuthority {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

fn tls_err(what: impl std::fmt::Display) -> impl FnOnce(rcgen::Error) -> LaunchError {
    let what = what.to_string();
    move |e| LaunchError::Spec(format!("{what}: {e}"))
}

fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, CA_NAME);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut p);
    p
}

fn validity(p: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(VALID_DAYS);
}

/// Writes `text` to `path` readable by the owner only (mode 0600, also when it existed).
pub fn write_private(path: &Path, text: &str) -> Result<(), LaunchError> {
    let what = || format!("write {}", path.display());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io(what()))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io(what()))?;
    f.write_all(text.as_bytes()).map_err(io(what()))
}

/// Creates `dir` (and parents) with mode 0700, tightening it when it existed.
pub fn private_dir(dir: &Path) -> Result<(), LaunchError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(format!("create {}", dir.display())))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io(format!("chmod 0700 {}", dir.display())))
}

impl CertAuthority {
    /// The CA in `dir`, made (with a new key) when `dir/ca.pem` does not exist yet.
    pub fn load_or_create(dir: &Path) -> Result<CertAuthority, LaunchError> {
        private_dir(dir)?;
        let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
        let signing_key = if cert.exists() {
            let pem = std::fs::read_to_string(&key).map_err(io(format!(
                "read the CA key {} (ca.pem exists beside it)",
                key.display()
            )))?;
            KeyPair::from_pem(&pem).map_err(tls_err(key.display()))?
        } else {
            let k = KeyPair::generate().map_err(tls_err("generate the CA key"))?;
            let c = ca_params()
                .self_signed(&k)
                .map_err(tls_err("make the CA certificate"))?;
            write_private(&key, &k.serialize_pem())?;
            crate::cluster::write(&cert, &c.pem())?;
            k
        };
        Ok(CertAuthority {
            dir: dir.to_path_buf(),
            issuer: Issuer::new(ca_params(), signing_key),
        })
    }

    /// The CA certificate clients and daemons trust.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The files [`Self::issue`] writes for `name`.
    pub fn files(&self, name: &str) -> CertFiles {
        CertFiles {
            cert: self.dir.join(format!("{name}.pem")),
            key: self.dir.join(format!("{name}.key")),
        }
    }

    /// Signs a certificate for daemon `name` of kind `role` valid for `hosts` (IP addresses
    /// or DNS names; 127.0.0.1 and localhost are always added) and writes `name.pem` /
    /// `name.key`. The role travels as a DNS name (kdss_common::tls::role).
    pub fn issue(
        &self,
        name: &str,
        role: DaemonRole,
        hosts: &[String],
    ) -> Result<CertFiles, LaunchError> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(LaunchError::Spec(format!(
                "certificate name {name:?}: use letters, digits, '-', '_' and '.'"
            )));
        }
        let mut sans: Vec<String> = vec!["127.0.0.1".into(), "localhost".into(), role.san()];
        for h in hosts {
            if !h.is_empty() && !sans.contains(h) {
                sans.push(h.clone());
            }
        }
        let mut p = CertificateParams::new(sans).map_err(tls_err(format!("names of {name}")))?;
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        validity(&mut p);
        let key = KeyPair::generate().map_err(tls_err("generate a key"))?;
        let cert = p
            .signed_by(&key, &self.issuer)
            .map_err(tls_err(format!("sign the certificate of {name}")))?;
        let files = self.files(name);
        write_private(&files.key, &key.serialize_pem())?;
        crate::cluster::write(&files.cert, &cert.pem())?;
        Ok(files)
    }
}

/// The host part of each `host:port` (an unspecified address such as 0.0.0.0 names no
/// host a client dials, so it is left out).
pub fn hosts_of(addrs: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for a in addrs {
        let host = match a.parse::<std::net::SocketAddr>() {
            Ok(s) if s.ip().is_unspecified() => continue,
            Ok(s) => s.ip().to_string(),
            Err(_) => a.rsplit_once(':').map(|(h, _)| h).unwrap_or(a).to_string(),
        };
        if !out.contains(&host) {
            out.push(host);
        }
    }
    out
}

/// The certificate of every daemon of `l` in `l.tls_dir` (made when missing, with the
/// daemon's listen addresses as names), and what the launcher trusts to dial them. None
/// for a plaintext cluster.
pub fn ensure_certs(l: &Layout) -> Result<Option<Arc<ClientTls>>, LaunchError> {
    let Some(dir) = &l.tls_dir else {
        return Ok(None);
    };
    let ca = CertAuthority::load_or_create(dir)?;
    let mut daemons: Vec<(String, DaemonRole, Vec<&str>)> = Vec::new();
    for m in &l.masters {
        daemons.push((
            format!("master-{}", m.id),
            DaemonRole::Master,
            vec![m.grpc.as_str(), m.http.as_str()],
        ));
    }
    for n in &l.nodes {
        daemons.push((
            n.id.clone(),
            DaemonRole::Storage,
            vec![n.grpc.as_str(), n.http.as_str()],
        ));
    }
    for (i, g) in l.gateways.iter().enumerate() {
        let mut addrs = vec![g.as_str()];
        addrs.extend(l.gateway_metrics.get(i).map(String::as_str));
        daemons.push((format!("s3gw-{}", i + 1), DaemonRole::Gateway, addrs));
    }
    for (name, role, addrs) in daemons {
        let f = ca.files(&name);
        // Certificates made before roles existed are made again with theirs.
        let current = f.key.exists()
            && kdss_common::tls::load_certs(&f.cert)
                .is_ok_and(|chain| kdss_common::tls::has_role(&chain, role));
        if !current {
            ca.issue(&name, role, &hosts_of(&addrs))?;
        }
    }
    let section = kdss_common::tls::TlsSection {
        ca: Some(ca.ca_path()),
        ..Default::default()
    };
    let client = ClientTls::load(&section)
        .map_err(|e| LaunchError::Spec(e.to_string()))?
        .map(Arc::new);
    Ok(client)
}

/// The `[tls]` table of daemon `name`'s config (empty for a plaintext cluster).
pub fn section(l: &Layout, name: &str) -> String {
    let Some(dir) = &l.tls_dir else {
        return String::new();
    };
    format!(
        "\n[tls]\nca = {:?}\ncert = {:?}\nkey = {:?}\n",
        dir.join("ca.pem").display().to_string(),
        dir.join(format!("{name}.pem")).display().to_string(),
        dir.join(format!("{name}.key")).display().to_string(),
    )
}

/// The `[tls]` table of a user client's config (mount.toml, cli.toml): the CA only.
pub fn client_section(l: &Layout) -> String {
    match &l.tls_dir {
        Some(dir) => format!(
            "\n[tls]\nca = {:?}\n",
            dir.join("ca.pem").display().to_string()
        ),
        None => String::new(),
    }
}

impl Layout {
    /// `https` for a TLS cluster, `http` for a plaintext one.
    pub fn scheme(&self) -> &'static str {
        if self.tls_dir.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The cluster CA clients must trust (TLS clusters only).
    pub fn ca_path(&self) -> Option<PathBuf> {
        self.tls_dir.as_ref().map(|d| d.join("ca.pem"))
    }
}

/// A byte stream that may be TLS.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// Wraps a connection to `addr` in TLS when `tls` is given (for raw HTTP probes).
pub struct MaybeTls;

impl MaybeTls {
    /// `tcp` as it is, or after a TLS handshake verifying `addr`'s host.
    pub async fn connect(
        tcp: tokio::net::TcpStream,
        addr: &str,
        tls: Option<&Arc<ClientTls>>,
    ) -> Result<Box<dyn Io>, String> {
        let Some(tls) = tls else {
            return Ok(Box::new(tcp));
        };
        let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| format!("{addr}: {e}"))?;
        let s = tokio_rustls::TlsConnector::from(tls.rustls())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
        Ok(Box::new(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_and_daemon_certificates_are_private_and_verify() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("tls");
        let ca = CertAuthority::load_or_create(&dir).unwrap();
        let f = ca
            .issue(
                "master-1",
                DaemonRole::Master,
                &hosts_of(&["10.1.2.3:6700", "0.0.0.0:1"]),
            )
            .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&f.key), 0o600);
        assert_eq!(mode(&dir.join("ca.key")), 0o600);
        // A second CA handle on the same dir signs with the same key: its certificates
        // verify against the first ca.pem.
        let again = CertAuthority::load_or_create(&dir).unwrap();
        let g = again.issue("node-1", DaemonRole::Storage, &[]).unwrap();
        for files in [&f, &g] {
            let section = kdss_common::tls::TlsSection {
                ca: Some(ca.ca_path()),
                cert: Some(files.cert.clone()),
                key: Some(files.key.clone()),
                insecure: false,
            };
            assert!(
                kdss_common::tls::ServerTls::load(&section)
                    .unwrap()
                    .is_some()
            );
            let roots = kdss_common::tls::load_roots(&ca.ca_path()).unwrap();
            let certs = kdss_common::tls::load_certs(&files.cert).unwrap();
            let verifier = rustls::client::WebPkiServerVerifier::builder(roots.into())
                .build()
                .unwrap();
            let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
            use rustls::client::danger::ServerCertVerifier;
            verifier
                .verify_server_cert(
                    &certs[0],
                    &[],
                    &name,
                    &[],
                    rustls::pki_types::UnixTime::now(),
                )
                .unwrap();
        }
        assert!(ca.issue("../x", DaemonRole::Storage, &[]).is_err());
    }

    /// Sends `GET /` over `tls` to `addr` and returns the status line (or the error).
    async fn get(addr: &str, tls: &Arc<ClientTls>) -> Result<String, String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut s = MaybeTls::connect(tcp, addr, Some(tls)).await?;
        s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&buf).to_string();
        Ok(text.lines().next().unwrap_or("").to_string())
    }

    fn client(ca: &CertAuthority, identity: Option<&CertFiles>) -> Arc<ClientTls> {
        let section = kdss_common::tls::TlsSection {
            ca: Some(ca.ca_path()),
            cert: identity.map(|f| f.cert.clone()),
            key: identity.map(|f| f.key.clone()),
            insecure: false,
        };
        Arc::new(ClientTls::load(&section).unwrap().unwrap())
    }

    #[tokio::test]
    async fn https_listener_takes_users_and_cluster_certificates_only() {
        let d = tempfile::tempdir().unwrap();
        let ca = CertAuthority::load_or_create(&d.path().join("ca")).unwrap();
        let other = CertAuthority::load_or_create(&d.path().join("other")).unwrap();
        let server = ca.issue("node-1", DaemonRole::Storage, &[]).unwrap();
        let section = kdss_common::tls::TlsSection {
            ca: Some(ca.ca_path()),
            cert: Some(server.cert),
            key: Some(server.key),
            insecure: false,
        };
        let tls = kdss_common::tls::ServerTls::load(&section)
            .unwrap()
            .unwrap();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let router = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(kdss_common::tls::http::serve(
            l,
            router,
            Some(tls.http),
            async {
                let _ = stopped.await;
            },
        ));
        // A user client trusting the CA, without a certificate: served.
        let user = get(&addr, &client(&ca, None)).await.unwrap();
        assert!(user.contains("200"), "{user}");
        // A daemon with a certificate of the cluster CA: served.
        let peer = ca.issue("master-1", DaemonRole::Master, &[]).unwrap();
        let daemon = get(&addr, &client(&ca, Some(&peer))).await.unwrap();
        assert!(daemon.contains("200"), "{daemon}");
        // A client that does not trust the CA refuses the server.
        let e = get(&addr, &client(&other, None)).await.unwrap_err();
        assert!(e.contains("certificate") || e.contains("Unknown"), "{e}");
        // A certificate of another CA is refused by the server.
        let rogue = other.issue("node-9", DaemonRole::Storage, &[]).unwrap();
        let mixed = ClientTls::load(&kdss_common::tls::TlsSection {
            ca: Some(ca.ca_path()),
            cert: Some(rogue.cert),
            key: Some(rogue.key),
            insecure: false,
        })
        .unwrap()
        .unwrap();
        let refused = get(&addr, &Arc::new(mixed)).await;
        assert!(
            refused.as_ref().map_or(true, |l| !l.contains("200")),
            "a foreign client certificate was served: {refused:?}"
        );
        let _ = stop.send(());
        served.await.unwrap().unwrap();
    }
}
