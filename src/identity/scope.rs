//! Scopes and roles. MCP scopes are hierarchical (admin ⊃ write ⊃ read); the
//! OpenID Connect scopes only decide what an ID token and `/userinfo` carry.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    McpRead,
    McpWrite,
    McpAdmin,
    OpenId,
    Email,
    Profile,
    OfflineAccess,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::McpRead,
        Scope::McpWrite,
        Scope::McpAdmin,
        Scope::OpenId,
        Scope::Email,
        Scope::Profile,
        Scope::OfflineAccess,
    ];
    pub const MCP: [Scope; 3] = [Scope::McpRead, Scope::McpWrite, Scope::McpAdmin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::McpRead => "mcp:read",
            Scope::McpWrite => "mcp:write",
            Scope::McpAdmin => "mcp:admin",
            Scope::OpenId => "openid",
            Scope::Email => "email",
            Scope::Profile => "profile",
            Scope::OfflineAccess => "offline_access",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s)
    }

    /// What the consent page says the scope lets the client do.
    pub fn description(self) -> &'static str {
        match self {
            Scope::McpRead => "Read your organization's data (list and get tools)",
            Scope::McpWrite => "Create and change data on your behalf",
            Scope::McpAdmin => "Delete data and administer the organization",
            Scope::OpenId => "Know who you are",
            Scope::Email => "See your email address",
            Scope::Profile => "See your basic profile",
            Scope::OfflineAccess => "Stay connected when you are away",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes; displayed space-separated in canonical order.
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct ScopeSet(u8);

impl ScopeSet {
    pub const EMPTY: ScopeSet = ScopeSet(0);

    pub fn of(scopes: &[Scope]) -> ScopeSet {
        scopes.iter().fold(ScopeSet::EMPTY, |set, s| set.with(*s))
    }

    /// Parses a space-separated scope string, silently dropping unknown scopes
    /// (RFC 6749 §3.3 lets the server ignore what it does not support).
    pub fn parse_lenient(s: &str) -> ScopeSet {
        ScopeSet::of(
            &s.split_ascii_whitespace()
                .filter_map(Scope::parse)
                .collect::<Vec<_>>(),
        )
    }

    pub fn with(self, scope: Scope) -> ScopeSet {
        ScopeSet(self.0 | scope.bit())
    }

    pub fn without(self, scope: Scope) -> ScopeSet {
        ScopeSet(self.0 & !scope.bit())
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn intersect(self, other: ScopeSet) -> ScopeSet {
        ScopeSet(self.0 & other.0)
    }

    pub fn is_subset_of(self, other: ScopeSet) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    pub fn mcp(self) -> ScopeSet {
        self.intersect(ScopeSet::of(&Scope::MCP))
    }

    /// Whether these scopes let the caller use something that needs `required`,
    /// honouring the hierarchy admin ⊃ write ⊃ read.
    pub fn allows(self, required: Scope) -> bool {
        match required {
            Scope::McpRead => {
                self.contains(Scope::McpRead)
                    || self.contains(Scope::McpWrite)
                    || self.contains(Scope::McpAdmin)
            }
            Scope::McpWrite => self.contains(Scope::McpWrite) || self.contains(Scope::McpAdmin),
            other => self.contains(other),
        }
    }

    pub fn to_vec(self) -> Vec<String> {
        self.iter().map(|s| s.as_str().to_owned()).collect()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for scope in self.iter() {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
            first = false;
        }
        Ok(())
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopeSet({self})")
    }
}

/// A user's role in one organization (SPEC §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Member,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// The MCP scopes this role may hold; OIDC scopes are never limited by role.
    pub fn ceiling(self) -> ScopeSet {
        let oidc = ScopeSet::of(&[
            Scope::OpenId,
            Scope::Email,
            Scope::Profile,
            Scope::OfflineAccess,
        ]);
        oidc.with(Scope::McpRead)
            .union_if(self != Role::Viewer, Scope::McpWrite)
            .union_if(self == Role::Admin, Scope::McpAdmin)
    }
}

impl ScopeSet {
    fn union_if(self, condition: bool, scope: Scope) -> ScopeSet {
        if condition { self.with(scope) } else { self }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchy_and_ceilings() {
        let admin = ScopeSet::of(&[Scope::McpAdmin]);
        assert!(admin.allows(Scope::McpRead) && admin.allows(Scope::McpWrite));
        let read = ScopeSet::parse_lenient("mcp:read claudeai");
        assert_eq!(read.to_string(), "mcp:read");
        assert!(!read.allows(Scope::McpWrite));
        assert_eq!(Role::Viewer.ceiling().mcp().to_string(), "mcp:read");
        assert_eq!(
            Role::Member.ceiling().mcp().to_string(),
            "mcp:read mcp:write"
        );
        assert_eq!(
            Role::Admin.ceiling().mcp().to_string(),
            "mcp:read mcp:write mcp:admin"
        );
    }
}
