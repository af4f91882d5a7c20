//! `notify.toml`, the relay's configuration, and the placeholder rule shared with the
//! master's `[notify]` section: a value still holding [`PLACEHOLDER`] (as the example file
//! ships) is refused, so a copied example cannot run and post nowhere, or sign with a
//! secret everybody has read.

use crate::sender::Secret;
use kdss_common::{ConfigError, config::invalid, load_toml};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;

/// The marker of a value an operator has not filled in yet.
pub const PLACEHOLDER: &str = "REPLACE-ME";

/// The relay's default listen address (Alertmanager itself takes 9093 and 9094).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9095";

/// Refuses a Lark webhook URL that is not http(s) or still a placeholder, and a secret that
/// is empty or a placeholder; `key` prefixes the names in the message (`notify.`).
pub fn check_lark(
    path: &Path,
    key: &str,
    url: &str,
    secret: Option<&str>,
) -> Result<(), ConfigError> {
    if url.contains(PLACEHOLDER) {
        return Err(invalid(
            path,
            &format!("{key}lark_url"),
            "still the example's placeholder: paste the webhook address of your Lark custom bot",
        ));
    }
    let ok = reqwest::Url::parse(url)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
    if !ok {
        return Err(invalid(
            path,
            &format!("{key}lark_url"),
            "must be an http(s) URL like https://open.feishu.cn/open-apis/bot/v2/hook/...",
        ));
    }
    match secret {
        Some(s) if s.contains(PLACEHOLDER) => Err(invalid(
            path,
            &format!("{key}lark_secret"),
            "still the example's placeholder: paste the bot's signing secret, or remove the \
             key if the bot does not verify signatures",
        )),
        Some("") => Err(invalid(
            path,
            &format!("{key}lark_secret"),
            "is empty: remove the key if the bot does not verify signatures",
        )),
        _ => Ok(()),
    }
}

/// `notify.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// Where Alertmanager's webhook reaches the relay (default 127.0.0.1:9095; port 0
    /// picks a free port, printed at start).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The Lark custom bot's webhook address (its path is the bot's token: kept out of
    /// logs).
    pub lark_url: Secret,
    /// The bot's signing secret, when its security settings verify signatures.
    #[serde(default)]
    pub lark_secret: Option<Secret>,
    /// Name shown on every card, so a chat that hears from several clusters tells them
    /// apart.
    pub cluster: String,
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN.parse().expect("valid default address")
}

impl RelayConfig {
    /// Reads, parses and validates `path`.
    pub fn load(path: &Path) -> Result<RelayConfig, ConfigError> {
        let cfg: RelayConfig = load_toml(path)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Parses and validates TOML text (`path` only names the file in errors).
    pub fn parse(path: &Path, text: &str) -> Result<RelayConfig, ConfigError> {
        let cfg: RelayConfig = kdss_common::config::parse_toml(path, text)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Checks what parses but cannot work.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        check_lark(
            path,
            "",
            self.lark_url.expose(),
            self.lark_secret.as_ref().map(Secret::expose),
        )?;
        if self.cluster.trim().is_empty() || self.cluster.contains(PLACEHOLDER) {
            return Err(invalid(
                path,
                "cluster",
                "name the cluster the cards speak for (e.g. its [cluster] id)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
listen = "127.0.0.1:0"
lark_url = "https://open.feishu.cn/open-apis/bot/v2/hook/abc"
lark_secret = "abcdef"
cluster = "prod"
"#;

    #[test]
    fn a_filled_in_config_loads() {
        let c = RelayConfig::parse(Path::new("n.toml"), GOOD).unwrap();
        assert_eq!(c.cluster, "prod");
        assert_eq!(c.listen.port(), 0);
    }

    /// The example operators copy ships placeholders and must be refused until filled in.
    #[test]
    fn the_deploy_example_is_refused_for_its_placeholders() {
        let text = include_str!("../../../deploy/notify.toml");
        let e = RelayConfig::parse(Path::new("deploy/notify.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lark_url") && e.contains("placeholder"), "{e}");
        let filled = text.replace(
            "https://open.feishu.cn/open-apis/bot/v2/hook/REPLACE-ME",
            "https://open.feishu.cn/open-apis/bot/v2/hook/abc",
        );
        let e = RelayConfig::parse(Path::new("deploy/notify.toml"), &filled)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("lark_secret") && e.contains("placeholder"),
            "{e}"
        );
        let filled = filled.replace("REPLACE-ME", "a-real-secret");
        let c = RelayConfig::parse(Path::new("deploy/notify.toml"), &filled).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
    }

    #[test]
    fn typos_and_bad_values_are_named() {
        let e = RelayConfig::parse(Path::new("n.toml"), &format!("{GOOD}lark_secert = \"x\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("n.toml:6:") && e.contains("lark_secert"),
            "{e}"
        );
        let bad = GOOD.replace("https://open.feishu.cn", "open.feishu.cn");
        let e = RelayConfig::parse(Path::new("n.toml"), &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lark_url"), "{e}");
        let empty = GOOD.replace("\"abcdef\"", "\"\"");
        let e = RelayConfig::parse(Path::new("n.toml"), &empty)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lark_secret"), "{e}");
    }
}
