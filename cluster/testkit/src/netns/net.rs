//! The wire of a test run: a bridge, one namespace per host, and the faults cut into it.

use super::ip;
use super::wire::{Impairment, ShapedLink};
use anyhow::{Context, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// One host of the test network: a namespace with one interface on the bridge.
#[derive(Debug, Clone)]
pub struct Host {
    /// What runs there: `master-1`, `node-3`, `s3gw-1`.
    pub name: String,
    pub ns: String,
    /// The host's address on the bridge.
    pub ip: String,
    /// Its port on the bridge: the root-namespace end of its veth pair, or the outer TAP
    /// device of a shaped link.
    veth: String,
}

/// The bridge and the namespaces of one test run; deleted on drop.
pub struct Net {
    pub id: String,
    bridge: String,
    /// `10.X.Y` of the /24 this run uses; the bridge is `.1`.
    pub(super) prefix: String,
    pub hosts: Vec<Host>,
    /// Routes added to cut links: (in namespace of host, toward host).
    cuts: BTreeSet<(usize, usize)>,
    /// Links the test process carries (by host index), so they can be impaired.
    links: BTreeMap<usize, ShapedLink>,
}

impl Net {
    /// Makes the bridge and one namespace per name, each with address `.N` (N from 11).
    pub fn new(names: &[String]) -> anyhow::Result<Net> {
        Net::with_shaped(names, &[])
    }

    /// As [`Net::new`], with the hosts named in `shaped` joined to the bridge by a link
    /// the test process carries ([`Net::impair`]) instead of a veth pair.
    pub fn with_shaped(names: &[String], shaped: &[String]) -> anyhow::Result<Net> {
        let id = format!("{:05x}", rand_u32() & 0xfffff);
        let prefix = free_prefix()?;
        let mut net = Net {
            bridge: format!("kdb{id}"),
            id,
            prefix,
            hosts: Vec::new(),
            cuts: BTreeSet::new(),
            links: BTreeMap::new(),
        };
        ip(&["link", "add", &net.bridge, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}.1/24", net.prefix),
            "dev",
            &net.bridge,
        ])?;
        ip(&["link", "set", &net.bridge, "up"])?;
        for (i, name) in names.iter().enumerate() {
            let host = Host {
                name: name.clone(),
                ns: format!("kdss-{}-{name}", net.id),
                ip: format!("{}.{}", net.prefix, 11 + i),
                veth: format!("kd{}h{i}", net.id),
            };
            // Pushed first so drop removes whatever part of it was made.
            net.hosts.push(host.clone());
            let peer = format!("kd{}p{i}", net.id);
            ip(&["netns", "add", &host.ns])?;
            if shaped.contains(name) {
                net.links.insert(i, ShapedLink::new(&peer, &host.veth)?);
            } else {
                ip(&[
                    "link", "add", &host.veth, "type", "veth", "peer", "name", &peer,
                ])?;
            }
            ip(&["link", "set", &host.veth, "master", &net.bridge, "up"])?;
            ip(&["link", "set", &peer, "netns", &host.ns])?;
            let n = &host.ns;
            ip(&["-n", n, "link", "set", &peer, "name", "eth0"])?;
            ip(&[
                "-n",
                n,
                "addr",
                "add",
                &format!("{}/24", host.ip),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", n, "link", "set", "eth0", "up"])?;
            ip(&["-n", n, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no host {name}"))
    }

    fn index(&self, name: &str) -> usize {
        self.hosts
            .iter()
            .position(|h| h.name == name)
            .unwrap_or_else(|| panic!("no host {name}"))
    }

    /// Drops every packet `from` sends to `to` (a blackhole route in `from`'s namespace):
    /// one direction of a link, silently, as a dead switch port would.
    pub fn cut_one_way(&mut self, from: &str, to: &str) -> anyhow::Result<()> {
        let (f, t) = (self.index(from), self.index(to));
        if self.cuts.insert((f, t)) {
            let dst = format!("{}/32", self.hosts[t].ip);
            ip(&["-n", &self.hosts[f].ns, "route", "add", "blackhole", &dst])?;
        }
        Ok(())
    }

    /// Cuts every link between a host of `a` and a host of `b`, both ways. The test
    /// process (on the bridge) still reaches everyone.
    pub fn partition(&mut self, a: &[&str], b: &[&str]) -> anyhow::Result<()> {
        for x in a {
            for y in b {
                self.cut_one_way(x, y)?;
                self.cut_one_way(y, x)?;
            }
        }
        Ok(())
    }

    /// Cuts `name` from every other host (not from the test process).
    pub fn isolate(&mut self, name: &str) -> anyhow::Result<()> {
        let others: Vec<String> = self
            .hosts
            .iter()
            .filter(|h| h.name != name)
            .map(|h| h.name.clone())
            .collect();
        let others: Vec<&str> = others.iter().map(String::as_str).collect();
        self.partition(&[name], &others)
    }

    /// Removes every cut and every impairment.
    pub fn heal(&mut self) -> anyhow::Result<()> {
        for link in self.links.values() {
            link.set(Impairment::default());
        }
        for (f, t) in std::mem::take(&mut self.cuts) {
            let dst = format!("{}/32", self.hosts[t].ip);
            ip(&["-n", &self.hosts[f].ns, "route", "del", "blackhole", &dst])?;
        }
        Ok(())
    }

    /// Takes `name`'s link down or up: the host drops off the network entirely, the test
    /// process included.
    pub fn set_link(&self, name: &str, up: bool) -> anyhow::Result<()> {
        let h = self.host(name);
        ip(&["link", "set", &h.veth, if up { "up" } else { "down" }])
    }

    /// Delays, jitters and drops what `name` sends and receives, as `tc netem` would on
    /// both ends of its link; [`Net::heal`] or a default [`Impairment`] removes it. Only
    /// for hosts made shaped ([`Net::with_shaped`]).
    pub fn impair(&self, name: &str, imp: Impairment) -> anyhow::Result<()> {
        match self.links.get(&self.index(name)) {
            Some(link) => {
                link.set(imp);
                Ok(())
            }
            None => bail!("{name}'s link is a veth pair, not shaped: list it in `shaped`"),
        }
    }

    /// Frames `name`'s shaped link dropped by loss so far (0 for a veth host).
    pub fn dropped(&self, name: &str) -> u64 {
        self.links
            .get(&self.index(name))
            .map_or(0, ShapedLink::dropped)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Closing a shaped link's TAP devices removes them.
        self.links.clear();
        // Deleting a namespace deletes its end of the veth pair, and with it our end.
        for h in &self.hosts {
            let _ = ip(&["netns", "del", &h.ns]);
            let _ = ip(&["link", "del", &h.veth]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

fn rand_u32() -> u32 {
    rand::random()
}

/// A `10.X.Y` /24 no interface of the root namespace uses (parallel runs pick apart).
fn free_prefix() -> anyhow::Result<String> {
    let o = Command::new("ip")
        .args(["-4", "-o", "addr"])
        .output()
        .context("run ip -4 addr")?;
    let used = String::from_utf8_lossy(&o.stdout).to_string();
    for n in 0..64u32 {
        let r = rand_u32().wrapping_add(n.wrapping_mul(7919));
        let prefix = format!("10.{}.{}", 200 + (r % 50), 1 + (r >> 8) % 250);
        if !used.contains(&format!(" {prefix}.")) {
            return Ok(prefix);
        }
    }
    bail!("no free 10.x.y.0/24 for the test bridge")
}
