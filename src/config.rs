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

#[derive(Clone, Deserialize)]
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
    /// Client ids of resource servers that may introspect any token (RFC 7662
    /// §4); any other client learns only about tokens issued to itself.
    pub introspection_clients: Vec<String>,
    /// Explicit scope per tool name, overriding the verb rule of SPEC §4.3.
    pub tool_scopes: HashMap<String, String>,
    /// Which built-in tools are offered (README "Configuration"): all when
    /// absent; a TOML list, or in the environment a comma- or
    /// space-separated string (`PORTCULLIS_BUILTIN_TOOLS=whoami`). Unknown
    /// names are refused at start.
    #[serde(deserialize_with = "tool_names")]
    pub builtin_tools: Option<Vec<String>>,
    /// Branding (README "Branding"): the name people and MCP clients see.
    pub product_name: String,
    /// A logo shown on every page: a path on this host (`/…`) or a `data:`
    /// image, since the pages' CSP allows images only from there.
    pub logo_url: Option<String>,
    /// The accent colour of buttons and links, `#rgb` or `#rrggbb`.
    pub accent_color: Option<String>,
    /// Where people get help: an `https://` or `mailto:` URL, linked on
    /// every page and the consent screen.
    pub support_url: Option<String>,
    /// Extra text for the MCP `instructions`, before the generated list of
    /// what the tools cover.
    pub instructions: Option<String>,
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
    /// Where `/metrics` is served, never on the public listener; `"off"`
    /// turns it off.
    #[serde(deserialize_with = "optional_address")]
    pub metrics_listen: Option<SocketAddr>,
    /// Log lines as plain text (`text`, the default) or one JSON object per
    /// line (`json`).
    pub log_format: LogFormat,
    /// Start even though `public_url` is `http://` on a host that is not
    /// loopback (the MCP authorization spec requires HTTPS there).
    pub allow_insecure_public_url: bool,
    /// `PORTCULLIS_*` variables that named no key and were ignored; the
    /// server logs them once at start.
    #[serde(skip)]
    pub ignored_env_vars: Vec<String>,
    /// Settings that load but probably point clients elsewhere (a
    /// `public_url` port other than the loopback `listen` port); the server
    /// logs them once at start.
    #[serde(skip)]
    pub warnings: Vec<String>,
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
    /// After SIGTERM, how long requests in progress may take to finish.
    #[serde(deserialize_with = "duration")]
    pub shutdown_grace: Duration,
    /// Reverse proxies (addresses or CIDR networks) whose `X-Forwarded-For`
    /// names the client for the DCR and sign-in limits; empty: none.
    #[serde(deserialize_with = "networks")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Redis shared by every instance (`redis://host:6379`): the per-tool
    /// rate limits, DCR per-address limits and sign-in throttles are then
    /// enforced across instances; unset, each process counts on its own.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key, so several deployments (or tests) can
    /// share one Redis.
    pub redis_key_prefix: String,
    /// The longest a request waits for a Redis decision, in milliseconds;
    /// past it, rate limits let the request through and sign-in is refused.
    pub redis_timeout_ms: u64,
    /// Upstream OpenID Providers people may sign in with (`[[identity_provider]]`).
    #[serde(rename = "identity_provider")]
    pub identity_providers: Vec<crate::federation::config::IdentityProviderConfig>,
    /// Whether `/login` offers the email-and-password form.
    pub password_login: bool,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Never prints a secret: the database URL's password is replaced, so a
/// `{config:?}` in a log or an error is safe.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("database_url", &redact_password(&self.database_url))
            .field("keys_dir", &self.keys_dir)
            .field("org_header", &self.org_header)
            .field("api_key_prefix", &self.api_key_prefix)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("refresh_token_idle_ttl", &self.refresh_token_idle_ttl)
            .field("refresh_grace", &self.refresh_grace)
            .field("code_ttl", &self.code_ttl)
            .field("session_ttl", &self.session_ttl)
            .field("cimd_allow_loopback", &self.cimd_allow_loopback)
            .field(
                "registrations_per_ip_per_hour",
                &self.registrations_per_ip_per_hour,
            )
            .field("insufficient_scope", &self.insufficient_scope)
            .field("introspection_clients", &self.introspection_clients)
            .field("tool_scopes", &self.tool_scopes)
            .field("rate_limit", &self.rate_limit)
            .field("revocation_poll", &self.revocation_poll)
            .field("catalog", &self.catalog)
            .field("allowed_origins", &self.allowed_origins)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_concurrent_hashes", &self.max_concurrent_hashes)
            .field("metrics_listen", &self.metrics_listen)
            .field("log_format", &self.log_format)
            .field("allow_insecure_public_url", &self.allow_insecure_public_url)
            .field("ignored_env_vars", &self.ignored_env_vars)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("max_connections", &self.max_connections)
            .field("unused_registration_ttl", &self.unused_registration_ttl)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("redis_url", &self.redis_url.as_deref().map(redact_password))
            .field("redis_key_prefix", &self.redis_key_prefix)
            .field("redis_timeout_ms", &self.redis_timeout_ms)
            .field("identity_providers", &self.identity_providers)
            .field("password_login", &self.password_login)
            .finish()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:redacted@host/db`.
pub fn redact_password(database_url: &str) -> String {
    match url::Url::parse(database_url) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("redacted"));
            url.to_string()
        }
        _ => database_url.to_owned(),
    }
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
            introspection_clients: Vec::new(),
            tool_scopes: HashMap::new(),
            builtin_tools: None,
            product_name: "Portcullis".into(),
            logo_url: None,
            accent_color: None,
            support_url: None,
            instructions: None,
            rate_limit: RateLimitConfig::default(),
            revocation_poll: Duration::from_secs(2),
            allowed_origins: Vec::new(),
            catalog: None,
            max_body_bytes: 64 * 1024,
            max_concurrent_hashes: 4,
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9090))),
            log_format: LogFormat::Text,
            allow_insecure_public_url: false,
            ignored_env_vars: Vec::new(),
            warnings: Vec::new(),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            unused_registration_ttl: Duration::from_secs(24 * 3600),
            shutdown_grace: Duration::from_secs(10),
            trusted_proxies: Vec::new(),
            redis_url: None,
            redis_key_prefix: "portcullis".into(),
            redis_timeout_ms: 100,
            identity_providers: Vec::new(),
            password_login: true,
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
        // The file is the operator's own: an unknown key there is an error.
        Self::from_table(&table).map_err(|message| ConfigError::Invalid {
            origin: origin.clone(),
            message,
        })?;
        // The environment is shared with the platform: Kubernetes, for one,
        // injects `PORTCULLIS_PORT`, `PORTCULLIS_SERVICE_HOST`, … for a
        // Service named `portcullis`. A variable that names no key is
        // ignored with one warning; one that names a key but whose value
        // does not fit it is an error naming the variable.
        let mut ignored = Vec::new();
        let mut env: Vec<(String, String)> = env.into_iter().collect();
        env.sort();
        for (name, value) in env {
            let Some(key) = name.strip_prefix("PORTCULLIS_") else {
                continue;
            };
            // BOOTSTRAP_*: read once by `serve` for the first admin (web::setup).
            if key == "CONFIG" || key.starts_with("TEST_") || key.starts_with("BOOTSTRAP_") {
                continue;
            }
            let parts: Vec<String> = key.split("__").map(str::to_ascii_lowercase).collect();
            let mut candidate = table.clone();
            insert_path(&mut candidate, &parts, env_value(&value));
            match Self::from_table(&candidate) {
                Ok(_) => table = candidate,
                Err(message) if message.contains("unknown field") => ignored.push(name),
                Err(message) => {
                    return Err(ConfigError::Invalid {
                        origin: format!("environment variable {name}"),
                        message,
                    });
                }
            }
        }
        let mut config = Self::from_table(&table).map_err(|message| ConfigError::Invalid {
            origin: origin.clone(),
            message,
        })?;
        config.ignored_env_vars = ignored;
        config.public_url = config.public_url.trim_end_matches('/').to_owned();
        config.warnings = config.follow_listen(
            table.contains_key("listen"),
            table.contains_key("public_url"),
        );
        config
            .validate()
            .map_err(|message| ConfigError::Invalid { origin, message })?;
        Ok(config)
    }

    /// With `listen` set on loopback and `public_url` left out, the default
    /// `public_url` follows the listen port (`listen = "127.0.0.1:9000"`
    /// means `http://localhost:9000`), so a newcomer who changes the port
    /// does not advertise one nothing answers on. When both are set and
    /// `public_url` is loopback on another port, returns a warning (a
    /// port-forward may be intended).
    fn follow_listen(&mut self, listen_set: bool, public_url_set: bool) -> Vec<String> {
        let loopback_listen = self.listen.ip().is_loopback();
        if listen_set && !public_url_set && loopback_listen {
            self.public_url = format!("http://localhost:{}", self.listen.port());
            return Vec::new();
        }
        let Ok(url) = url::Url::parse(&self.public_url) else {
            return Vec::new();
        };
        let loopback_url = match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        match url.port_or_known_default() {
            Some(port) if loopback_listen && loopback_url && port != self.listen.port() => {
                vec![format!(
                    "public_url {} names port {port} but the server listens on {}; clients will                      connect to port {port}. Leave public_url out to follow listen, or fix one of them",
                    self.public_url, self.listen
                )]
            }
            _ => Vec::new(),
        }
    }

    fn from_table(table: &toml::Table) -> Result<Config, String> {
        toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| e.to_string())
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
        // One issuer string is used everywhere, and every endpoint is at the
        // root of the host; a prefix would silently break metadata paths,
        // cookies and redirects, so it is refused rather than half-supported.
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "public_url {:?} has a path, query or fragment; Portcullis must be served at the                  root of its host (give it its own host name, e.g. https://mcp.example.com)",
                self.public_url
            ));
        }
        // MCP authorization (2025-06-18 §Communication Security): every
        // authorization-server URL is HTTPS, except on loopback.
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        if url.scheme() == "http" && !loopback && !self.allow_insecure_public_url {
            return Err(format!(
                "public_url {:?} is http:// on a host that is not loopback; clients require \
                 https for an authorization server. Use https (behind a TLS-terminating proxy, \
                 public_url is the https URL clients see), or set allow_insecure_public_url = true",
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
        if self.product_name.trim().is_empty() || self.product_name.chars().count() > 60 {
            return Err("product_name must be 1 to 60 characters".into());
        }
        if let Some(logo) = &self.logo_url
            && !((logo.starts_with('/') && !logo.starts_with("//"))
                || logo.starts_with("data:image/"))
        {
            return Err(format!(
                "logo_url {logo:?} must be a path on this host (/…) or a data:image/ URL (the pages allow images only from there)"
            ));
        }
        if let Some(color) = &self.accent_color {
            let hex = color.strip_prefix('#').unwrap_or("");
            if !matches!(hex.len(), 3 | 6) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!("accent_color {color:?} must be #rgb or #rrggbb"));
            }
        }
        if let Some(support) = &self.support_url
            && !(support.starts_with("https://") || support.starts_with("mailto:"))
        {
            return Err(format!(
                "support_url {support:?} must be an https:// or mailto: URL"
            ));
        }
        if let Some(names) = &self.builtin_tools {
            let known: Vec<&str> = crate::mcp::tools::BUILTIN.iter().map(|b| b.name).collect();
            if let Some(unknown) = names.iter().find(|n| !known.contains(&n.as_str())) {
                return Err(format!(
                    "builtin_tools names {unknown:?}, which is not a built-in tool; they are {}",
                    known.join(", ")
                ));
            }
        }
        if self.rate_limit.per_minute == 0 || self.rate_limit.burst == 0 {
            return Err("rate_limit.per_minute and rate_limit.burst must be positive".into());
        }
        crate::federation::config::validate(&self.identity_providers)?;
        if !self.password_login && self.identity_providers.is_empty() {
            return Err("password_login = false needs at least one identity_provider".into());
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

/// A list of tool names, or one string of names separated by commas or spaces.
fn tool_names<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Names {
        List(Vec<String>),
        Text(String),
    }
    Ok(Some(match Names::deserialize(deserializer)? {
        Names::List(list) => list,
        Names::Text(text) => text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    }))
}

/// Addresses (`10.0.0.5`) or CIDR networks (`10.0.0.0/8`).
fn networks<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|text| {
            text.parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!("{text:?} is not an address or network"))
                })
        })
        .collect()
}

/// `"off"` (or an empty string) for none, else a socket address.
fn optional_address<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(deserializer)?;
    match text.trim() {
        "" | "off" => Ok(None),
        address => address.parse().map(Some).map_err(serde::de::Error::custom),
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
    fn ignores_environment_variables_that_name_no_key() {
        // What Kubernetes injects for a Service named `portcullis`.
        let env = [
            ("PORTCULLIS_PORT", "tcp://10.0.0.7:8080"),
            ("PORTCULLIS_PORT_8080_TCP", "tcp://10.0.0.7:8080"),
            ("PORTCULLIS_SERVICE_HOST", "10.0.0.7"),
            ("PORTCULLIS_SERVICE_PORT", "8080"),
            ("PORTCULLIS_RATE_LIMIT__NOPE", "1"),
            ("PORTCULLIS_ORG_HEADER", "X-Tenant"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config = Config::load(None, env).unwrap();
        assert_eq!(config.org_header, "X-Tenant");
        assert_eq!(
            config.ignored_env_vars,
            [
                "PORTCULLIS_PORT",
                "PORTCULLIS_PORT_8080_TCP",
                "PORTCULLIS_RATE_LIMIT__NOPE",
                "PORTCULLIS_SERVICE_HOST",
                "PORTCULLIS_SERVICE_PORT"
            ]
        );
    }

    #[test]
    fn a_known_key_with_a_bad_value_is_an_error_naming_the_variable() {
        let env = [("PORTCULLIS_ACCESS_TOKEN_TTL".to_owned(), "soon".to_owned())];
        let e = Config::load(None, env).unwrap_err().to_string();
        assert!(e.contains("PORTCULLIS_ACCESS_TOKEN_TTL"), "{e}");
        let env = [("PORTCULLIS_RATE_LIMIT".to_owned(), "5".to_owned())];
        let e = Config::load(None, env).unwrap_err().to_string();
        assert!(e.contains("PORTCULLIS_RATE_LIMIT"), "{e}");
    }

    #[test]
    fn http_public_urls_must_be_loopback_unless_allowed() {
        let load = |url: &str, allow: bool| {
            let env = [
                ("PORTCULLIS_PUBLIC_URL".to_owned(), url.to_owned()),
                (
                    "PORTCULLIS_ALLOW_INSECURE_PUBLIC_URL".to_owned(),
                    allow.to_string(),
                ),
            ];
            Config::load(None, env)
        };
        for ok in [
            "http://localhost:8080",
            "http://127.0.0.1:9",
            "http://[::1]:1",
            "https://mcp.example.com",
        ] {
            assert!(load(ok, false).is_ok(), "{ok}");
        }
        let e = load("http://mcp.example.com", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("allow_insecure_public_url"), "{e}");
        assert!(load("http://mcp.example.com", true).is_ok());
    }

    #[test]
    fn metrics_listen_can_be_turned_off() {
        let env = [("PORTCULLIS_METRICS_LISTEN".to_owned(), "off".to_owned())];
        assert_eq!(Config::load(None, env).unwrap().metrics_listen, None);
        let env = [(
            "PORTCULLIS_METRICS_LISTEN".to_owned(),
            "0.0.0.0:9100".to_owned(),
        )];
        assert_eq!(
            Config::load(None, env).unwrap().metrics_listen,
            Some("0.0.0.0:9100".parse().unwrap())
        );
        assert_eq!(
            Config::default().metrics_listen,
            Some("127.0.0.1:9090".parse().unwrap())
        );
    }

    #[test]
    fn debug_output_never_shows_the_database_password() {
        let config = Config {
            database_url: "postgres://app:hunter2@db.internal:5432/portcullis".into(),
            ..Config::default()
        };
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("postgres://app:redacted@db.internal:5432/portcullis"));
    }

    #[test]
    fn unknown_keys_in_the_file_stay_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portcullis.toml");
        std::fs::write(&path, "nope = 1\n").unwrap();
        let e = Config::load(Some(&path), []).unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
    }
}
