//! The `[[identity_provider]]` tables of the configuration: upstream OpenID
//! Providers people may sign in with, and how their claims map to accounts,
//! organizations and roles.

use std::collections::HashMap;

use serde::Deserialize;

use crate::identity::scope::Role;

/// ID token signature algorithms a provider may be configured to use. Only
/// asymmetric ones: `none` carries no proof, and an HMAC "verified" with a
/// key that is public (or with our client secret, shared with the provider's
/// whole admin team) proves nothing about who issued the token.
pub const ASYMMETRIC_ALGS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// One upstream OpenID Provider (OpenID Connect Core 1.0, code flow).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityProviderConfig {
    /// Short name in URLs (`/login/callback/{id}`) and in `external_identities`;
    /// lower-case letters, digits, `-` and `_`.
    pub id: String,
    /// Shown on the button: "Continue with {name}".
    pub name: String,
    /// The provider's issuer; its metadata is read from
    /// `{issuer}/.well-known/openid-configuration` (OIDC Discovery 1.0 §4).
    pub issuer: String,
    /// Our client id at the provider (OpenID Connect providers only).
    #[serde(default)]
    pub client_id: String,
    /// The name of the environment variable holding the client secret (never
    /// the secret itself); absent for a public client.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// Requested besides `openid email profile`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The claim naming the user for good (default `sub`).
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    #[serde(default = "default_email_claim")]
    pub email_claim: String,
    #[serde(default = "default_name_claim")]
    pub name_claim: String,
    /// When not empty, only addresses in these domains may sign in.
    #[serde(default)]
    pub email_domains: Vec<String>,
    /// A claim (string or array of strings) naming the product's
    /// organizations by their external id.
    #[serde(default)]
    pub org_claim: Option<String>,
    /// Every user of this provider joins this org (an external id, or an org id).
    #[serde(default)]
    pub org: Option<String>,
    /// Create an org named by `org_claim` the first time it is seen.
    #[serde(default)]
    pub create_orgs: bool,
    /// A claim (string or array) whose values `roles` maps to a role.
    #[serde(default)]
    pub role_claim: Option<String>,
    /// Claim value → `viewer` | `member` | `admin`; the highest match wins.
    #[serde(default)]
    pub roles: HashMap<String, String>,
    /// The role when no value of `role_claim` is mapped.
    #[serde(default = "default_role")]
    pub default_role: String,
    /// Link a first sign-in to an existing account with the same email, but
    /// only when the provider also says `email_verified: true`.
    #[serde(default)]
    pub link_verified_email: bool,
    /// Accepted ID token algorithms (default `["RS256"]`); asymmetric only.
    #[serde(default = "default_algs")]
    pub allowed_algs: Vec<String>,
    /// A trusted product's login hand-off (`/login/handoff`) instead of
    /// OpenID Connect: the PEM public key its assertions are signed with ...
    #[serde(default)]
    pub handoff_public_key_pem: Option<String>,
    /// ... or the URL of its JWKS. `issuer` is then the assertions' `iss`.
    #[serde(default)]
    pub handoff_jwks_url: Option<String>,
}

fn default_subject_claim() -> String {
    "sub".into()
}
fn default_email_claim() -> String {
    "email".into()
}
fn default_name_claim() -> String {
    "name".into()
}
fn default_role() -> String {
    "member".into()
}
fn default_algs() -> Vec<String> {
    vec!["RS256".into()]
}

impl IdentityProviderConfig {
    /// Whether this is a trusted product signing login hand-offs rather than
    /// an OpenID Provider (no button on the sign-in page).
    pub fn is_handoff(&self) -> bool {
        self.handoff_public_key_pem.is_some() || self.handoff_jwks_url.is_some()
    }

    /// The role granted for these values of `role_claim`.
    pub fn role_for(&self, values: &[String]) -> Role {
        values
            .iter()
            .filter_map(|v| self.roles.get(v))
            .filter_map(|r| Role::parse(r))
            .max_by_key(|r| rank(*r))
            .or_else(|| Role::parse(&self.default_role))
            .unwrap_or(Role::Viewer)
    }
}

fn rank(role: Role) -> u8 {
    match role {
        Role::Viewer => 0,
        Role::Member => 1,
        Role::Admin => 2,
    }
}

/// Refuses at load what could never work or would be unsafe.
pub fn validate(providers: &[IdentityProviderConfig]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for p in providers {
        let what = format!("identity_provider {:?}", p.id);
        if p.id.is_empty()
            || p.id.len() > 64
            || !p
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "{what}: id must be 1-64 lower-case letters, digits, '-' or '_'"
            ));
        }
        if !seen.insert(p.id.as_str()) {
            return Err(format!("{what}: id used twice"));
        }
        let issuer = url::Url::parse(&p.issuer)
            .map_err(|e| format!("{what}: issuer {:?}: {e}", p.issuer))?;
        let loopback = matches!(issuer.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        if issuer.scheme() != "https" && !(issuer.scheme() == "http" && loopback) {
            return Err(format!(
                "{what}: issuer must be https (http only on loopback, for tests)"
            ));
        }
        if p.is_handoff() {
            if p.handoff_public_key_pem.is_some() == p.handoff_jwks_url.is_some() {
                return Err(format!(
                    "{what}: set handoff_public_key_pem or handoff_jwks_url, not both"
                ));
            }
            if let Some(pem) = &p.handoff_public_key_pem
                && super::handoff::decoding_key(pem).is_none()
            {
                return Err(format!(
                    "{what}: handoff_public_key_pem is not an RSA, EC or Ed25519 public key"
                ));
            }
            if let Some(url) = &p.handoff_jwks_url
                && url::Url::parse(url).is_err()
            {
                return Err(format!("{what}: handoff_jwks_url is not a URL"));
            }
        } else if p.client_id.is_empty() {
            return Err(format!("{what}: client_id is required"));
        }
        for r in p.roles.values().chain([&p.default_role]) {
            if Role::parse(r).is_none() {
                return Err(format!("{what}: role {r:?} is not viewer, member or admin"));
            }
        }
        if p.org.is_some() && p.org_claim.is_some() {
            return Err(format!("{what}: set org or org_claim, not both"));
        }
        if p.org.is_none() && p.org_claim.is_none() {
            return Err(format!(
                "{what}: set org (a fixed organization) or org_claim (a claim naming them)"
            ));
        }
        if p.allowed_algs.is_empty() {
            return Err(format!("{what}: allowed_algs is empty"));
        }
        for alg in &p.allowed_algs {
            if !ASYMMETRIC_ALGS.contains(&alg.as_str()) {
                return Err(format!(
                    "{what}: algorithm {alg:?} is not allowed (asymmetric only: {})",
                    ASYMMETRIC_ALGS.join(", ")
                ));
            }
        }
        if let Some(var) = &p.client_secret_env
            && std::env::var(var).map(|v| v.is_empty()).unwrap_or(true)
        {
            return Err(format!(
                "{what}: environment variable {var} (client_secret_env) is not set"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(extra: &str) -> IdentityProviderConfig {
        toml::from_str(&format!(
            "id = \"acme\"\nname = \"Acme\"\nissuer = \"https://id.acme.example\"\nclient_id = \"c\"\norg = \"acme\"\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn unsafe_or_unworkable_providers_are_refused_at_load() {
        assert!(validate(&[provider("")]).is_ok());
        for (extra, complaint) in [
            ("allowed_algs = [\"none\"]", "not allowed"),
            ("allowed_algs = [\"HS256\"]", "not allowed"),
            ("allowed_algs = []", "empty"),
            ("default_role = \"owner\"", "viewer, member or admin"),
            ("org_claim = \"groups\"", "not both"),
            (
                "client_secret_env = \"PORTCULLIS_TEST_UNSET_SECRET_VAR\"",
                "is not set",
            ),
            ("handoff_public_key_pem = \"not a key\"", "not an RSA"),
        ] {
            let e = validate(&[provider(extra)]).unwrap_err();
            assert!(e.contains(complaint), "{extra}: {e}");
        }
        let mut plain_http = provider("");
        plain_http.issuer = "http://id.acme.example".into();
        assert!(validate(&[plain_http]).unwrap_err().contains("https"));
        let mut loopback = provider("");
        loopback.issuer = "http://127.0.0.1:9000".into();
        assert!(validate(&[loopback]).is_ok());
        assert!(
            validate(&[provider(""), provider("")])
                .unwrap_err()
                .contains("twice")
        );
        let mut bad_id = provider("");
        bad_id.id = "Acme/1".into();
        assert!(validate(&[bad_id]).is_err());
    }
}
