//! Lark (Feishu) notifications for KDSS.
//!
//! Two sources share one sender: Alertmanager, through the webhook receiver [`relay`]
//! (`kdss notify`), and the master's own cluster events ([`event`]: a disk offline, a repair
//! pass done, a balance started). Both become interactive [`card`]s that a
//! [`sender::LarkSender`] posts to a custom bot's webhook, signed ([`sign`]) when the bot
//! verifies signatures, retried with backoff when Lark is down or rate-limits.
//!
//! Main types: [`LarkSender`], [`Card`], [`ClusterEvent`], [`RelayConfig`].
//! Nothing here logs the webhook URL (its path is the bot's token), the secret or a
//! signature.

pub mod alertmanager;
pub mod card;
pub mod config;
pub mod error;
pub mod event;
pub mod relay;
pub mod sender;
pub mod sign;

pub use card::{Card, Severity};
pub use config::RelayConfig;
pub use error::NotifyError;
pub use event::{ClusterEvent, EventKind};
pub use sender::{LarkSender, RetryPolicy, Secret};
