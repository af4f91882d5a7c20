//! The erasure-coding policy of a bucket. Only the documented presets are accepted, so
//! that every stripe in the cluster decodes with a codec shape the project tests.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// k data shards + m parity shards.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EcPolicy {
    pub k: u32,
    pub m: u32,
}

/// Why an EC policy was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EcPolicyError {
    #[error("EC policy {k}+{m} is not a supported preset (supported: 5+2, 9+2, 18+3, 29+3)")]
    NotAPreset { k: u32, m: u32 },
    #[error("cannot parse EC policy {0:?}: expected K+M, for example 5+2")]
    Syntax(String),
}

impl EcPolicy {
    /// The presets the product documents.
    pub const PRESETS: [EcPolicy; 4] = [
        EcPolicy { k: 5, m: 2 },
        EcPolicy { k: 9, m: 2 },
        EcPolicy { k: 18, m: 3 },
        EcPolicy { k: 29, m: 3 },
    ];

    /// A preset policy, or the error naming the presets.
    pub fn new(k: u32, m: u32) -> Result<Self, EcPolicyError> {
        let p = EcPolicy { k, m };
        if Self::PRESETS.contains(&p) {
            Ok(p)
        } else {
            Err(EcPolicyError::NotAPreset { k, m })
        }
    }

    /// Total shards per stripe.
    pub fn width(&self) -> u32 {
        self.k + self.m
    }

    /// Usable fraction of raw capacity, k / (k + m).
    pub fn efficiency(&self) -> f64 {
        self.k as f64 / self.width() as f64
    }
}

impl Default for EcPolicy {
    fn default() -> Self {
        EcPolicy { k: 5, m: 2 }
    }
}

impl fmt::Display for EcPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{}", self.k, self.m)
    }
}

impl FromStr for EcPolicy {
    type Err = EcPolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (k, m) = s
            .split_once('+')
            .ok_or_else(|| EcPolicyError::Syntax(s.into()))?;
        let k = k
            .trim()
            .parse()
            .map_err(|_| EcPolicyError::Syntax(s.into()))?;
        let m = m
            .trim()
            .parse()
            .map_err(|_| EcPolicyError::Syntax(s.into()))?;
        EcPolicy::new(k, m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse_and_others_are_refused() {
        assert_eq!("5+2".parse::<EcPolicy>().unwrap(), EcPolicy { k: 5, m: 2 });
        assert_eq!(
            "29+3".parse::<EcPolicy>().unwrap().efficiency(),
            29.0 / 32.0
        );
        assert_eq!(
            "4+2".parse::<EcPolicy>(),
            Err(EcPolicyError::NotAPreset { k: 4, m: 2 })
        );
        assert!(matches!(
            "x".parse::<EcPolicy>(),
            Err(EcPolicyError::Syntax(_))
        ));
    }
}
