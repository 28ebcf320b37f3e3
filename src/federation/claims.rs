//! From an ID token's claims to what Portcullis needs: a subject, an email,
//! the organizations (by external id) and the role, per the provider's
//! configured mapping.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::config::IdentityProviderConfig;
use crate::{identity::scope::Role, store::Store};

/// The claims as mapped; `orgs` is empty for a provider with a fixed org.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub subject: String,
    pub email: String,
    pub email_verified: bool,
    pub name: Option<String>,
    pub orgs: Vec<String>,
    pub role: Role,
}

/// A claim as strings: a string is one value, an array of strings several,
/// anything else none.
pub fn strings(claims: &Map<String, Value>, name: &str) -> Vec<String> {
    match claims.get(name) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// Maps the claims, or says in words why the person cannot sign in.
pub fn map(p: &IdentityProviderConfig, claims: &Map<String, Value>) -> Result<Mapped, String> {
    let subject = match claims.get(&p.subject_claim) {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(format!(
                "{} did not say who you are (no {:?} claim).",
                p.name, p.subject_claim
            ));
        }
    };
    let email = claims
        .get(&p.email_claim)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|e| crate::identity::email::display_form(e).is_ok())
        .ok_or_else(|| {
            format!(
                "{} did not share a valid email address; allow it to, then sign in again.",
                p.name
            )
        })?
        .to_owned();
    let email_verified = match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        // Some providers (Cognito, older Azure AD) send it as a string.
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    if !p.email_domains.is_empty() {
        let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        if !p
            .email_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
        {
            return Err(format!(
                "Addresses at {domain} may not sign in with {}.",
                p.name
            ));
        }
    }
    let orgs = match &p.org_claim {
        Some(claim) => strings(claims, claim)
            .into_iter()
            .filter(|o| !o.is_empty() && o.len() <= 255)
            .collect(),
        None => Vec::new(),
    };
    let role = match &p.role_claim {
        Some(claim) => p.role_for(&strings(claims, claim)),
        None => p.role_for(&[]),
    };
    Ok(Mapped {
        subject,
        email,
        email_verified,
        name: claims
            .get(&p.name_claim)
            .and_then(Value::as_str)
            .map(str::to_owned),
        orgs,
        role,
    })
}

/// A provider's fixed `org`: an external id, or else an org id.
pub async fn resolve_fixed_org(store: &Store, org: &str) -> crate::store::Result<Option<Uuid>> {
    if let Some(id) = store.org_id_by_external_id(org).await? {
        return Ok(Some(id));
    }
    match org.parse::<Uuid>() {
        Ok(id) => Ok(store.get_org(id).await?.map(|o| o.id)),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn provider() -> IdentityProviderConfig {
        toml::from_str(
            r#"
            id = "acme"
            name = "Acme"
            issuer = "https://id.acme.example"
            client_id = "c"
            org_claim = "groups"
            role_claim = "roles"
            roles = { "mcp-admins" = "admin", "mcp-viewers" = "viewer" }
            default_role = "member"
            email_domains = ["acme.example"]
            "#,
        )
        .unwrap()
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn orgs_and_the_highest_mapped_role_come_from_claims() {
        let m = map(
            &provider(),
            &claims(
                json!({"sub": "u1", "email": "a@acme.example", "email_verified": true,
                "groups": ["eng", "ops"], "roles": ["mcp-viewers", "mcp-admins", "x"]}),
            ),
        )
        .unwrap();
        assert_eq!(m.orgs, ["eng", "ops"]);
        assert_eq!(m.role, Role::Admin);
        assert!(m.email_verified);
        let m = map(
            &provider(),
            &claims(json!({"sub": "u1", "email": "a@acme.example", "groups": "eng"})),
        )
        .unwrap();
        assert_eq!(
            (m.orgs, m.role, m.email_verified),
            (vec!["eng".to_owned()], Role::Member, false)
        );
    }

    #[test]
    fn missing_subject_bad_email_or_foreign_domain_is_refused() {
        let p = provider();
        assert!(map(&p, &claims(json!({"email": "a@acme.example"}))).is_err());
        assert!(map(&p, &claims(json!({"sub": "u", "email": "not an address"}))).is_err());
        let e = map(&p, &claims(json!({"sub": "u", "email": "a@evil.example"}))).unwrap_err();
        assert!(e.contains("evil.example"), "{e}");
    }
}
