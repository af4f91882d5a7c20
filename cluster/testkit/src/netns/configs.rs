//! The daemons' configs, made from deploy/*.toml: every key the documented deploy sets is
//! kept; addresses, ids, paths, secrets and the admin keys are filled in for this run.

use super::NetCluster;
use super::cluster::{MASTER_PORT, NODE_PORT, S3_PORT};
use anyhow::Context;
use std::path::{Path, PathBuf};

fn deploy(name: &str) -> anyhow::Result<toml::Table> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(name);
    let text = std::fs::read_to_string(&p).with_context(|| format!("read {}", p.display()))?;
    text.parse()
        .with_context(|| format!("parse {} as TOML", p.display()))
}

fn table<'a>(t: &'a mut toml::Table, key: &str) -> &'a mut toml::Table {
    t.entry(key)
        .or_insert_with(|| toml::Value::Table(Default::default()))
        .as_table_mut()
        .unwrap_or_else(|| panic!("[{key}] is not a table"))
}

fn s(v: impl Into<String>) -> toml::Value {
    toml::Value::String(v.into())
}

pub(super) fn random_hex(n: usize) -> String {
    (0..n)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

impl NetCluster {
    pub(super) fn config_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.toml"))
    }

    fn tls_section(&self, t: &mut toml::Table, name: &str) {
        let dir = self.dir.path().join("tls");
        let tls = table(t, "tls");
        tls.insert("ca".into(), s(dir.join("ca.pem").display().to_string()));
        tls.insert(
            "cert".into(),
            s(dir.join(format!("{name}.pem")).display().to_string()),
        );
        tls.insert(
            "key".into(),
            s(dir.join(format!("{name}.key")).display().to_string()),
        );
    }

    fn write(&self, name: &str, t: &toml::Table) -> anyhow::Result<()> {
        let p = self.config_path(name);
        std::fs::write(&p, toml::to_string(t)?).with_context(|| format!("write {}", p.display()))
    }

    pub(super) fn master_addrs(&self) -> Vec<String> {
        (1..=self.opts.masters)
            .map(|i| format!("{}:{MASTER_PORT}", self.net.host(&format!("master-{i}")).ip))
            .collect()
    }

    pub(super) fn write_master(&self, i: usize) -> anyhow::Result<()> {
        let name = format!("master-{i}");
        let ip = &self.net.host(&name).ip;
        let mut t = deploy("master.toml")?;
        let m = table(&mut t, "master");
        m.insert("id".into(), toml::Value::Integer(i as i64));
        m.insert("grpc_addr".into(), s(format!("{ip}:{MASTER_PORT}")));
        m.insert("http_addr".into(), s(format!("{ip}:{}", MASTER_PORT + 1)));
        let data = self.dir.path().join(&name);
        std::fs::create_dir_all(&data)?;
        m.insert("data_dir".into(), s(data.display().to_string()));
        let peers = self
            .master_addrs()
            .into_iter()
            .enumerate()
            .map(|(j, a)| {
                let mut p = toml::Table::new();
                p.insert("id".into(), toml::Value::Integer(j as i64 + 1));
                p.insert("grpc_addr".into(), s(a));
                toml::Value::Table(p)
            })
            .collect();
        let cl = table(&mut t, "cluster");
        cl.insert("id".into(), s(&self.cluster_id));
        cl.insert("secret".into(), s(&self.secret));
        cl.insert("peers".into(), toml::Value::Array(peers));
        let a = table(&mut t, "admin");
        a.insert("access_key".into(), s(&self.access_key));
        a.insert("secret_key".into(), s(&self.secret_key));
        self.tls_section(&mut t, &name);
        let extra: toml::Table = self.opts.master_extra_toml.parse()?;
        for (k, v) in extra {
            match (t.get_mut(&k), v) {
                (Some(toml::Value::Table(have)), toml::Value::Table(add)) => have.extend(add),
                (_, v) => {
                    t.insert(k, v);
                }
            }
        }
        self.write(&name, &t)
    }

    fn masters_value(&self) -> toml::Value {
        toml::Value::Array(self.master_addrs().into_iter().map(s).collect())
    }

    pub(super) async fn write_node(&self, i: usize, kdss: &Path) -> anyhow::Result<()> {
        let name = format!("node-{i}");
        let ip = &self.net.host(&name).ip;
        let mut t = deploy("storage.toml")?;
        let n = table(&mut t, "node");
        n.insert("id".into(), s(&name));
        n.insert("grpc_addr".into(), s(format!("{ip}:{NODE_PORT}")));
        n.insert("http_addr".into(), s(format!("{ip}:{}", NODE_PORT + 1)));
        let cl = table(&mut t, "cluster");
        cl.insert("id".into(), s(&self.cluster_id));
        cl.insert("secret".into(), s(&self.secret));
        cl.insert("masters".into(), self.masters_value());
        self.tls_section(&mut t, &name);
        let mut disks = Vec::new();
        for d in 0..self.opts.disks_per_node {
            let path = self.dir.path().join(&name).join(format!("disk{d}.img"));
            std::fs::create_dir_all(path.parent().expect("has a parent"))?;
            let o = tokio::process::Command::new(kdss)
                .args(["format-disk", "--path"])
                .arg(&path)
                .args(["--size", &self.opts.disk_size.to_string()])
                .args(["--cluster-id", &self.cluster_id])
                .output()
                .await?;
            anyhow::ensure!(
                o.status.success(),
                "format {}: {}",
                path.display(),
                String::from_utf8_lossy(&o.stderr)
            );
            let mut disk = toml::Table::new();
            disk.insert("path".into(), s(path.display().to_string()));
            disks.push(toml::Value::Table(disk));
        }
        t.insert("disk".into(), toml::Value::Array(disks));
        self.write(&name, &t)
    }

    pub(super) fn write_gateway(&self) -> anyhow::Result<()> {
        let ip = &self.net.host("s3gw-1").ip;
        let mut t = deploy("s3gw.toml")?;
        let s3 = table(&mut t, "s3");
        s3.insert("listen".into(), s(format!("{ip}:{S3_PORT}")));
        s3.insert("metrics_listen".into(), s(format!("{ip}:{}", S3_PORT + 10)));
        let cl = table(&mut t, "cluster");
        cl.insert("masters".into(), self.masters_value());
        cl.insert("secret".into(), s(&self.secret));
        self.tls_section(&mut t, "s3gw-1");
        let client = table(&mut t, "client");
        for (k, v) in &self.opts.gateway_client {
            let v = v
                .parse::<i64>()
                .map(toml::Value::Integer)
                .unwrap_or_else(|_| s(v));
            client.insert(k.clone(), v);
        }
        self.write("s3gw-1", &t)
    }
}
