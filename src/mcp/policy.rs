//! Which scope each tool needs (SPEC §4.3): an explicit entry in
//! `tool_scopes` wins, otherwise the verb its name starts with decides, and a
//! tool that matches nothing needs `mcp:admin` so that a new, unclassified
//! tool is never exposed more widely than intended.

use std::collections::HashMap;

use crate::identity::scope::Scope;

const READ_VERBS: &[&str] = &["list_", "get_", "check_", "search_", "render_", "fetch_"];
const ADMIN_VERBS: &[&str] = &["delete_"];
const WRITE_VERBS: &[&str] = &[
    "create_",
    "update_",
    "deploy_",
    "promote_",
    "publish_",
    "save_",
    "move_",
    "reorder_",
    "toggle_",
    "set_",
    "test_",
    "validate_",
    "compile_",
    "execute_",
    "chat_",
    "clear_",
    "export_",
    "trigger_",
    "invoke_",
    "cancel_",
    "approve_",
    "upsert_",
    "run_",
];

/// How a tool's required scope was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    Explicit,
    Verb,
    /// No override and no known verb: defaults to `mcp:admin`.
    Unclassified,
}

pub struct ScopePolicy {
    overrides: HashMap<String, Scope>,
}

impl ScopePolicy {
    /// Overrides naming something other than an MCP scope are dropped with a
    /// warning rather than failing start-up; the tool then falls back to its
    /// verb rule, which is never wider than admin.
    pub fn new(overrides: &HashMap<String, String>) -> ScopePolicy {
        let overrides = overrides
            .iter()
            .filter_map(|(tool, scope)| match Scope::parse(scope.trim()) {
                Some(s) if Scope::MCP.contains(&s) => Some((tool.clone(), s)),
                _ => {
                    tracing::warn!(
                        tool,
                        scope,
                        "tool_scopes entry is not an MCP scope; ignored"
                    );
                    None
                }
            })
            .collect();
        ScopePolicy { overrides }
    }

    /// The `tool_scopes` entry for `tool`, if any.
    pub fn explicit(&self, tool: &str) -> Option<Scope> {
        self.overrides.get(tool).copied()
    }

    /// The scope `tool`'s verb asks for, if it starts with a known verb.
    pub fn verb_scope(&self, tool: &str) -> Option<Scope> {
        let starts = |verbs: &[&str]| verbs.iter().any(|v| tool.starts_with(v));
        if tool == "whoami" || starts(READ_VERBS) {
            Some(Scope::McpRead)
        } else if starts(ADMIN_VERBS) {
            Some(Scope::McpAdmin)
        } else if starts(WRITE_VERBS) {
            Some(Scope::McpWrite)
        } else {
            None
        }
    }

    pub fn required_scope(&self, tool: &str) -> Scope {
        self.classify(tool).0
    }

    pub fn classify(&self, tool: &str) -> (Scope, Basis) {
        if let Some(scope) = self.explicit(tool) {
            return (scope, Basis::Explicit);
        }
        match self.verb_scope(tool) {
            Some(scope) => (scope, Basis::Verb),
            None => (Scope::McpAdmin, Basis::Unclassified),
        }
    }

    /// Logs, once at start-up, the tools that fell through to `mcp:admin`.
    pub fn warn_unclassified<'a>(&self, tools: impl IntoIterator<Item = &'a str>) {
        let unclassified: Vec<&str> = tools
            .into_iter()
            .filter(|t| self.classify(t).1 == Basis::Unclassified)
            .collect();
        if !unclassified.is_empty() {
            tracing::warn!(
                tools = ?unclassified,
                "tools match no verb rule and have no tool_scopes entry; they require mcp:admin"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_overrides_and_fallback() {
        let mut overrides = HashMap::new();
        overrides.insert("list_secrets".to_owned(), "mcp:admin".to_owned());
        overrides.insert("frobnicate".to_owned(), "mcp:write".to_owned());
        overrides.insert("bogus".to_owned(), "openid".to_owned());
        let policy = ScopePolicy::new(&overrides);
        assert_eq!(policy.required_scope("whoami"), Scope::McpRead);
        assert_eq!(policy.required_scope("get_report"), Scope::McpRead);
        assert_eq!(policy.required_scope("run_job"), Scope::McpWrite);
        assert_eq!(policy.required_scope("delete_api_key"), Scope::McpAdmin);
        assert_eq!(policy.required_scope("list_secrets"), Scope::McpAdmin);
        assert_eq!(
            policy.classify("frobnicate"),
            (Scope::McpWrite, Basis::Explicit)
        );
        assert_eq!(
            policy.classify("bogus"),
            (Scope::McpAdmin, Basis::Unclassified)
        );
        assert_eq!(
            policy.classify("whoamI"),
            (Scope::McpAdmin, Basis::Unclassified)
        );
    }
}
