//! TOML config loading. Config structs use `#[serde(deny_unknown_fields)]`; this module
//! turns a parse failure into an error naming the file, the line and the offending key,
//! so a typo in `storage.toml` is reported as such instead of being silently ignored.

use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// A config file that could not be read, parsed or validated.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The io error is in the message and not a `source`, so `{:#}` chains print it once.
    #[error("cannot read config {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: invalid value for `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// Reads and parses `path` as `T`.
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse_toml(path, &text)
}

/// Parses `text` (read from `path`, used only in messages) as `T`.
pub fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
            .unwrap_or(0);
        let line = if e
            .span()
            .is_some_and(|s| text[..s.start.min(text.len())].ends_with('\n'))
        {
            line + 1
        } else {
            line
        };
        ConfigError::Parse {
            path: path.to_path_buf(),
            line,
            message: e.message().to_string(),
        }
    })
}

/// An error for a value that parsed but failed `validate()`.
pub fn invalid(path: &Path, key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_path_buf(),
        key: key.to_string(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Cfg {
        node: Node,
    }
    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Node {
        id: String,
        #[serde(default)]
        port: u16,
    }

    #[test]
    fn typo_names_file_line_and_key() {
        let text = "[node]\nid = \"n1\"\nprot = 5\n";
        let err = parse_toml::<Cfg>(Path::new("storage.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("storage.toml:3:"), "{err}");
        assert!(err.contains("prot"), "{err}");
    }
}
