//! The vocabulary every KDSS crate shares: newtype ids, the EC policy, shard
//! capabilities (invariant 6), client authentication to the master, TOML config
//! loading with file/line/key errors, the rules for secrets in configs and 0600 files for
//! them, the errno/code carried by RPC errors, and the SigV4
//! primitives both the gateway (verifying) and kdss-cli (presigning URLs) use.

pub mod auth;
pub mod capability;
pub mod cluster_secret;
pub mod config;
pub mod ec;
pub mod ids;
pub mod limits;
pub mod presign;
pub mod private_file;
pub mod rpc_error;
pub mod sigv4;
pub mod size;
pub mod time;
pub mod tls;
pub mod topology;

pub use capability::{CapError, CapabilityKey, ShardTarget};
pub use config::{ConfigError, load_toml};
pub use ec::{EcPolicy, EcPolicyError};
pub use ids::DiskId;
pub use topology::{Level, Location};
