//! Configuration: a TOML file whose every key can be overridden by
//! `PORTCULLIS_<KEY>` environment variables (`__` separates nested keys).

use std::{collections::HashMap, net::SocketAddr, path::PathBuf, time::Duration};

use serde::{Deserialize, Deserializer};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {origin}: {message}")]
    Invalid { origin: String, message: String },
}

/// How a `tools/call` of a tool outside the caller's scopes is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum InsufficientScope {
    /// As if the tool did not exist (SPEC §4.4, the default).
    #[default]
    Hidden,
    /// HTTP 403 with an `insufficient_scope` challenge.
    StepUp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Sustained calls per minute for one bucket.
    pub per_minute: u32,
    /// Calls that may be made at once before the rate applies.
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_minute: 120,
            burst: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub public_url: String,
    pub database_url: String,
    pub keys_dir: PathBuf,
    pub org_header: String,
    pub api_key_prefix: String,
    #[serde(deserialize_with = "duration")]
    pub access_token_ttl: Duration,
    #[serde(deserialize_with = "duration")]
    pub refresh_token_idle_ttl: Duration,
    /// How long a rotated refresh token still works, so two racing refreshes both succeed.
    #[serde(deserialize_with = "duration")]
    pub refresh_grace: Duration,
    #[serde(deserialize_with = "duration")]
    pub code_ttl: Duration,
    #[serde(deserialize_with = "duration")]
    pub session_ttl: Duration,
    /// Allows Client ID Metadata Documents on `http://127.0.0.1`/`localhost`. Tests only.
    pub cimd_allow_loopback: bool,
    /// Dynamic registrations allowed per client IP per hour.
    pub registrations_per_ip_per_hour: u32,
    pub insufficient_scope: InsufficientScope,
    /// Explicit scope per tool name, overriding the verb rule of SPEC §4.3.
    pub tool_scopes: HashMap<String, String>,
    pub rate_limit: RateLimitConfig,
    /// How often each instance reloads revoked grants and keys from the store.
    #[serde(deserialize_with = "duration")]
    pub revocation_poll: Duration,
    /// The gateway catalog file (TOML) of upstream API tools.
    pub catalog: Option<PathBuf>,
    /// Browser origins, besides the public URL's and loopback ones, that may call `/mcp`.
    pub allowed_origins: Vec<String>,
    /// Largest request body accepted by any endpoint.
    pub max_body_bytes: usize,
    /// Concurrent argon2 hashes; bounds the CPU and memory a login flood can take.
    pub max_concurrent_hashes: usize,
    /// Time allowed for a request head, from accept or from its first byte.
    #[serde(deserialize_with = "duration")]
    pub header_read_timeout: Duration,
    /// Time a kept-alive connection may wait for its next request.
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// Time allowed for a request body, from the end of its head.
    #[serde(deserialize_with = "duration")]
    pub body_read_timeout: Duration,
    /// Open connections at once; at the cap the longest-idle one makes room.
    pub max_connections: usize,
    /// Dynamically registered clients that obtained no code within this time
    /// are deleted (at the next registration).
    #[serde(deserialize_with = "duration")]
    pub unused_registration_ttl: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://localhost:8080".into(),
            database_url: "sqlite://portcullis.db".into(),
            keys_dir: "keys".into(),
            org_header: "X-Organization-Id".into(),
            api_key_prefix: "pcl".into(),
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_idle_ttl: Duration::from_secs(30 * 24 * 3600),
            refresh_grace: Duration::from_secs(60),
            code_ttl: Duration::from_secs(60),
            session_ttl: Duration::from_secs(12 * 3600),
            cimd_allow_loopback: false,
            registrations_per_ip_per_hour: 1000,
            insufficient_scope: InsufficientScope::Hidden,
            tool_scopes: HashMap::new(),
            rate_limit: RateLimitConfig::default(),
            revocation_poll: Duration::from_secs(2),
            allowed_origins: Vec::new(),
            catalog: None,
            max_body_bytes: 64 * 1024,
            max_concurrent_hashes: 4,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            unused_registration_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

impl Config {
    /// Reads the file (if any), then applies `PORTCULLIS_*` overrides from `env`.
    pub fn load(
        path: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let (mut table, origin) = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                let table: toml::Table =
                    toml::from_str(&text).map_err(|e| ConfigError::Invalid {
                        origin: path.display().to_string(),
                        message: e.to_string(),
                    })?;
                (table, path.display().to_string())
            }
            None => (toml::Table::new(), "(defaults)".to_owned()),
        };
        for (name, value) in env {
            let Some(key) = name.strip_prefix("PORTCULLIS_") else {
                continue;
            };
            if key == "CONFIG" || key.starts_with("TEST_") {
                continue;
            }
            let parts: Vec<String> = key.split("__").map(str::to_ascii_lowercase).collect();
            insert_path(&mut table, &parts, env_value(&value));
        }
        let mut config: Config =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Invalid {
                    origin: origin.clone(),
                    message: e.to_string(),
                })?;
        config.public_url = config.public_url.trim_end_matches('/').to_owned();
        config
            .validate()
            .map_err(|message| ConfigError::Invalid { origin, message })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let url = url::Url::parse(&self.public_url)
            .map_err(|e| format!("public_url {:?}: {e}", self.public_url))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "public_url {:?} must be an http(s) URL",
                self.public_url
            ));
        }
        if self.api_key_prefix.is_empty()
            || !self
                .api_key_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric())
        {
            return Err("api_key_prefix must be non-empty and alphanumeric".into());
        }
        if http::HeaderName::try_from(self.org_header.as_str()).is_err() {
            return Err(format!(
                "org_header {:?} is not a valid header name",
                self.org_header
            ));
        }
        if self.rate_limit.per_minute == 0 || self.rate_limit.burst == 0 {
            return Err("rate_limit.per_minute and rate_limit.burst must be positive".into());
        }
        Ok(())
    }

    /// The issuer: the public URL without a trailing slash (SPEC §2.1).
    pub fn issuer(&self) -> &str {
        &self.public_url
    }

    /// The MCP resource identifier, `{issuer}/mcp`.
    pub fn resource(&self) -> String {
        format!("{}/mcp", self.public_url)
    }

    pub fn issuer_is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

fn insert_path(table: &mut toml::Table, parts: &[String], value: toml::Value) {
    match parts {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

/// Environment values are strings; numbers and booleans are recognised so that
/// `PORTCULLIS_CIMD_ALLOW_LOOPBACK=true` means what it says.
fn env_value(raw: &str) -> toml::Value {
    if let Ok(n) = raw.parse::<i64>() {
        toml::Value::Integer(n)
    } else if let Ok(b) = raw.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(raw.to_owned())
    }
}

/// Durations are seconds (`3600`) or a number with a unit (`90s`, `15m`, `1h`, `30d`).
fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Text(String),
    }
    match Raw::deserialize(deserializer)? {
        Raw::Seconds(s) => Ok(Duration::from_secs(s)),
        Raw::Text(text) => parse_duration(&text).map_err(serde::de::Error::custom),
    }
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}"))?;
    let factor = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => {
            return Err(format!(
                "invalid duration unit in {text:?} (use s, m, h or d)"
            ));
        }
    };
    Ok(Duration::from_secs(n * factor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_nested_keys_and_durations() {
        let env = [
            ("PORTCULLIS_RATE_LIMIT__BURST".to_owned(), "5".to_owned()),
            ("PORTCULLIS_ACCESS_TOKEN_TTL".to_owned(), "15m".to_owned()),
            (
                "PORTCULLIS_PUBLIC_URL".to_owned(),
                "https://mcp.example.com/".to_owned(),
            ),
        ];
        let config = Config::load(None, env).unwrap();
        assert_eq!(config.rate_limit.burst, 5);
        assert_eq!(config.access_token_ttl, Duration::from_secs(900));
        assert_eq!(config.resource(), "https://mcp.example.com/mcp");
    }

    #[test]
    fn rejects_unknown_keys() {
        let env = [("PORTCULLIS_NOPE".to_owned(), "1".to_owned())];
        assert!(Config::load(None, env).is_err());
    }
}
