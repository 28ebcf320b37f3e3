//! Redirect URI rules (SPEC §3.2, §3.4; RFC 8252 §7.3, RFC 9700 §4.1).

use url::Url;

/// A redirect URI that passed registration rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri(String);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidRedirectUri(pub String);

/// Schemes that run code, read local data, or reach a network service other
/// than the client's own callback: never a redirect URI. A private-use
/// scheme (RFC 8252 §7.1, e.g. `cursor://`) is anything else.
const FORBIDDEN_SCHEMES: [&str; 22] = [
    "javascript",
    "data",
    "file",
    "vbscript",
    "blob",
    "filesystem",
    "about",
    "chrome",
    "view-source",
    "ws",
    "wss",
    "ftp",
    "gopher",
    "mailto",
    "tel",
    "sms",
    "news",
    "nntp",
    "telnet",
    "ldap",
    "ssh",
    "sftp",
];

impl RedirectUri {
    pub fn parse(raw: &str) -> Result<RedirectUri, InvalidRedirectUri> {
        let bad = |why: &str| InvalidRedirectUri(format!("redirect_uri {raw:?} {why}"));
        // The URL parser silently drops tabs and newlines, so the registered
        // text would not be the URI that is matched; CR/LF could also split
        // a header if the URI were ever echoed in one.
        if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad("must not contain control characters or whitespace"));
        }
        let url = Url::parse(raw).map_err(|_| bad("is not an absolute URI"))?;
        if raw.contains('#') {
            return Err(bad("must not contain a fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not contain user information"));
        }
        let after_scheme = &raw[url.scheme().len()..];
        match url.scheme() {
            // `https:///cb` parses with host `cb`; what was written has none.
            "https" | "http"
                if !after_scheme.starts_with("://") || after_scheme[3..].starts_with('/') =>
            {
                return Err(bad("has no host"));
            }
            "https" if url.host_str().is_none() => return Err(bad("has no host")),
            "http" if !is_loopback_host(&url) => {
                return Err(bad("uses http on a host other than loopback"));
            }
            "https" | "http" => {}
            s if FORBIDDEN_SCHEMES.contains(&s) => return Err(bad("uses a forbidden scheme")),
            // Private-use schemes (RFC 8252 §7.1): real clients use both
            // reverse-domain names and short ones such as `cursor://`.
            _ => {}
        }
        Ok(RedirectUri(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_loopback(&self) -> bool {
        Url::parse(&self.0).is_ok_and(|u| u.scheme() == "http" && is_loopback_host(&u))
    }

    /// Whether a redirect URI presented at `/authorize` matches this registered
    /// one: exact string match, except that loopback `http` URIs match on any
    /// port (RFC 8252 §7.3; Claude Code registers them without a port).
    pub fn matches(&self, presented: &str) -> bool {
        if self.0 == presented {
            return true;
        }
        let (Ok(registered), Ok(presented)) = (Url::parse(&self.0), Url::parse(presented)) else {
            return false;
        };
        if registered.scheme() != "http"
            || !is_loopback_host(&registered)
            || presented.scheme() != "http"
        {
            return false;
        }
        registered.host() == presented.host()
            && registered.path() == presented.path()
            && registered.query() == presented.query()
            && presented.fragment().is_none()
            && presented.username().is_empty()
            && presented.password().is_none()
    }
}

/// `localhost`, `127.0.0.0/8` or `::1` (RFC 8252 §8.3).
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The host shown on the consent page, so the user sees where the code goes.
pub fn display_host(uri: &str) -> String {
    match Url::parse(uri) {
        Ok(u) => match u.host_str() {
            Some(h) => h.to_owned(),
            None => format!("{}:", u.scheme()),
        },
        Err(_) => uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_real_clients_register() {
        for uri in [
            "https://claude.ai/api/mcp/auth_callback",
            "https://chatgpt.com/connector/oauth/abc123",
            "cursor://anysphere.cursor-mcp/oauth/callback",
            "http://127.0.0.1:33418/",
            "http://localhost/callback",
            "http://[::1]:8080/cb",
        ] {
            assert!(RedirectUri::parse(uri).is_ok(), "{uri}");
        }
    }

    #[test]
    fn refuses_dangerous_uris() {
        for uri in [
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "vbscript:msgbox",
            "http://evil.example/cb",
            "https://ok.example/cb#frag",
            "/relative",
            "ws://evil.example/cb",
            "wss://evil.example/cb",
            "ftp://evil.example/cb",
            "gopher://evil.example/",
            "about:blank",
            "chrome://settings",
            "https:///cb",
            "https://user:pw@a.example/cb",
            "HTTPS:///cb",
            "https://ok.example/cb\r\nSet-Cookie: x=1",
            "https://ok.example/c\tb",
            "http://127.0.0.1/cb\n",
            "https://ok.example/c b",
            "https://ok.example/\u{0}",
        ] {
            assert!(RedirectUri::parse(uri).is_err(), "{uri}");
        }
    }

    #[test]
    fn loopback_matches_any_port_but_nothing_else_does() {
        let r = RedirectUri::parse("http://127.0.0.1/callback").unwrap();
        assert!(r.matches("http://127.0.0.1:54321/callback"));
        assert!(!r.matches("http://127.0.0.1:54321/other"));
        assert!(!r.matches("http://localhost:54321/callback"));
        let https = RedirectUri::parse("https://claude.ai/api/mcp/auth_callback").unwrap();
        assert!(!https.matches("https://claude.ai/api/mcp/auth_callback/"));
        assert!(!https.matches("https://claude.ai:444/api/mcp/auth_callback"));
    }
}
