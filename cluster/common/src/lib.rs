//! The vocabulary every KDSS crate shares: newtype ids, the EC policy, shard
//! capabilities (invariant 6), client authentication to the master, TOML config
//! loading with file/line/key errors, and the errno/code carried by RPC errors.

pub mod auth;
pub mod capability;
pub mod config;
pub mod ec;
pub mod ids;
pub mod limits;
pub mod rpc_error;
pub mod size;
pub mod time;

pub use capability::{CapError, CapabilityKey};
pub use config::{ConfigError, load_toml};
pub use ec::{EcPolicy, EcPolicyError};
pub use ids::DiskId;
