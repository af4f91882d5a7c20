//! `kdss certs`: the certificates of a deployment. The first run in a directory makes the
//! cluster CA (`ca.pem`, `ca.key`); each run signs one daemon's certificate with it
//! (`NAME.pem`, `NAME.key`), valid for the names and addresses clients dial. The same code
//! makes the certificates of `kdss up --tls`.

use anyhow::Context;
use kdss_common::tls::DaemonRole;
use kdss_launch::tls::CertAuthority;
use std::path::PathBuf;

/// Flags of `kdss certs`.
#[derive(Debug, clap::Args)]
pub struct CertsArgs {
    /// Directory of the cluster CA (made 0700 with the CA on first use). Keep `ca.key`
    /// on the machine where certificates are made; daemons need only `ca.pem` and their
    /// own pair.
    #[arg(long)]
    pub ca_dir: PathBuf,
    /// Name of the daemon (the file names and the certificate's common name), e.g.
    /// master-1, node-1, s3gw-1.
    #[arg(long)]
    pub name: String,
    /// What the daemon is: master, storage or gateway. Written into the certificate;
    /// masters hand users' secret keys only to a peer whose certificate says gateway.
    #[arg(long, value_parser = parse_role)]
    pub role: DaemonRole,
    /// A DNS name or IP address clients use to reach the daemon; repeat for several.
    /// 127.0.0.1 and localhost are always included.
    #[arg(long = "host")]
    pub hosts: Vec<String>,
}

/// Makes the CA if needed and one daemon's certificate; prints the `[tls]` section.
pub fn run(a: CertsArgs) -> anyhow::Result<()> {
    let ca = CertAuthority::load_or_create(&a.ca_dir)
        .with_context(|| format!("the cluster CA in {}", a.ca_dir.display()))?;
    let f = ca.issue(&a.name, a.role, &a.hosts)?;
    println!("# [tls] section for {}'s config:", a.name);
    println!("[tls]");
    println!("ca = {:?}", ca.ca_path().display().to_string());
    println!("cert = {:?}", f.cert.display().to_string());
    println!("key = {:?}", f.key.display().to_string());
    Ok(())
}

fn parse_role(s: &str) -> Result<DaemonRole, String> {
    DaemonRole::parse(s).ok_or_else(|| {
        let names: Vec<&str> = DaemonRole::ALL.iter().map(|r| r.name()).collect();
        format!("unknown role {s:?}: one of {}", names.join(", "))
    })
}
