//! Failure domains, in the spirit of Ceph's CRUSH hierarchy: a storage node declares the
//! zone and the rack it sits in (`[node] zone`, `rack` in storage.toml), the host is the
//! node itself, and a host holds disks. Placement spreads a stripe from the top of this
//! hierarchy down, so that no domain at the highest level with enough members holds more
//! than m shards of a stripe: losing that whole domain still leaves k shards.
//!
//! This module holds what the master (placement) and `kdss-cli` (the topology summary and
//! its warnings) must agree on: the levels, the label syntax, and the counting rule.

use std::fmt;

/// The label a node gets for a zone or rack it does not declare: one domain for all, so an
/// unlabelled cluster spreads across hosts, then disks, as before labels existed.
pub const DEFAULT_DOMAIN: &str = "default";

/// Longest zone or rack label.
pub const MAX_LABEL_LEN: usize = 64;

/// Where a storage node sits. Racks are named within their zone: rack `r1` of zone `a`
/// and rack `r1` of zone `b` are two racks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// The zone (a site, a room, a power feed).
    pub zone: String,
    /// The rack within the zone (a switch, a PDU).
    pub rack: String,
}

impl Default for Location {
    fn default() -> Self {
        Location {
            zone: DEFAULT_DOMAIN.into(),
            rack: DEFAULT_DOMAIN.into(),
        }
    }
}

impl Location {
    /// A location from labels as a node reports them; an empty label (a node that predates
    /// labels, or left them out) is the default domain.
    pub fn from_labels(zone: &str, rack: &str) -> Self {
        let or_default = |s: &str| {
            if s.is_empty() {
                DEFAULT_DOMAIN.to_string()
            } else {
                s.to_string()
            }
        };
        Location {
            zone: or_default(zone),
            rack: or_default(rack),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.zone, self.rack)
    }
}

/// A level of the hierarchy, highest first (the derived order: `Zone < Rack < Host < Disk`,
/// so "a higher level" is the smaller value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Zones.
    Zone,
    /// Racks (within zones).
    Rack,
    /// Hosts: the storage nodes.
    Host,
    /// Disks: only distinct disks, the floor every placement keeps.
    Disk,
}

impl Level {
    /// The levels at which a domain may hold at most m shards, highest first.
    pub const DOMAINS: [Level; 3] = [Level::Zone, Level::Rack, Level::Host];

    /// The plural noun an operator reads ("11 racks").
    pub fn plural(self) -> &'static str {
        match self {
            Level::Zone => "zones",
            Level::Rack => "racks",
            Level::Host => "hosts",
            Level::Disk => "disks",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Zone => "zone",
            Level::Rack => "rack",
            Level::Host => "host",
            Level::Disk => "disk",
        })
    }
}

/// Checks a zone or rack label: 1 to [`MAX_LABEL_LEN`] bytes of ASCII letters, digits,
/// `.`, `_` and `-`, so it prints in a table column and a metric label unchanged.
pub fn check_label(label: &str) -> Result<(), String> {
    if label.is_empty() || label.len() > MAX_LABEL_LEN {
        return Err(format!("{label:?} must be 1 to {MAX_LABEL_LEN} characters"));
    }
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "{label:?} has {c:?}; use letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Domains a stripe of `width` shards needs at one level so that none holds more than `m`
/// of them: ceil(width / m) (11 racks for 29+3).
pub fn domains_needed(width: usize, m: usize) -> usize {
    width.div_ceil(m.max(1))
}

/// Whether domains with `members` places each (free disks a shard may go to, minus what
/// the stripe already holds there) can take `width` shards with at most `m` per domain
/// (after `held` shards the stripe already has in it): the sum over domains of
/// min(m - held, members) reaches `width`. The one counting rule placement and the CLI use.
pub fn can_honour(
    domains: impl IntoIterator<Item = (usize, usize)>,
    width: usize,
    m: usize,
) -> bool {
    let room: usize = domains
        .into_iter()
        .map(|(members, held)| m.saturating_sub(held).min(members))
        .sum();
    room >= width
}

/// The highest level at which a cluster can keep a stripe of `width` shards to at most `m`
/// per domain, given the disks of each node and where the node sits, or
/// [`Level::Disk`] when not even hosts suffice.
pub fn honoured_level<'a>(
    nodes: impl IntoIterator<Item = (&'a Location, &'a str, usize)> + Clone,
    width: usize,
    m: usize,
) -> Level {
    use std::collections::BTreeMap;
    for level in Level::DOMAINS {
        let mut per: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for (loc, node, disks) in nodes.clone() {
            let key = match level {
                Level::Zone => (loc.zone.as_str(), ""),
                Level::Rack => (loc.zone.as_str(), loc.rack.as_str()),
                _ => (node, ""),
            };
            *per.entry(key).or_default() += disks;
        }
        if can_honour(per.values().map(|&n| (n, 0)), width, m) {
            return level;
        }
    }
    Level::Disk
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_checked_and_empty_means_default() {
        assert!(check_label("rack-1").is_ok());
        assert!(check_label("eu_west.1a").is_ok());
        let e = check_label("rack 1").unwrap_err();
        assert!(e.contains("' '"), "{e}");
        assert!(check_label("").is_err());
        assert!(check_label(&"x".repeat(65)).is_err());
        assert_eq!(Location::from_labels("", ""), Location::default());
        assert_eq!(Location::from_labels("a", "").rack, DEFAULT_DOMAIN);
    }

    #[test]
    fn twenty_nine_plus_three_needs_eleven_racks() {
        assert_eq!(domains_needed(32, 3), 11);
        assert_eq!(domains_needed(7, 2), 4);
        let locs: Vec<Location> = (0..11)
            .map(|r| Location::from_labels("z", &format!("r{r}")))
            .collect();
        let nodes: Vec<(&Location, String, usize)> = locs
            .iter()
            .enumerate()
            .map(|(i, l)| (l, format!("n{i}"), 3))
            .collect();
        let view = |n: usize| {
            nodes[..n]
                .iter()
                .map(|(l, id, d)| (*l, id.as_str(), *d))
                .collect::<Vec<_>>()
        };
        assert_eq!(honoured_level(view(11), 32, 3), Level::Rack);
        // Ten racks of one host: neither racks nor hosts, only distinct disks.
        assert_eq!(honoured_level(view(10), 32, 3), Level::Disk);
        // A rack of a single one-disk node takes one shard, not m.
        assert!(!can_honour([(1, 0), (3, 0), (2, 0)], 7, 3));
        assert!(can_honour([(1, 0), (3, 0), (3, 0)], 7, 3));
        // Shards the stripe already holds in a domain use up its m.
        assert!(!can_honour([(3, 3), (3, 0), (3, 0)], 7, 3));
        assert!(can_honour([(3, 3), (3, 0), (3, 0)], 6, 3));
    }
}
