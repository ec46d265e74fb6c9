//! Who a request runs as. A [`Principal`] is built only by an authenticator after it verified a
//! credential (or by the anonymous/default-role rule), never from what a client merely claims.

use serde::{Deserialize, Serialize};

/// Roles in increasing order of power (seed 001): a rule that needs `user` admits `developer`
/// and `admin` too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Guest,
    User,
    Developer,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s.to_ascii_lowercase().as_str() {
            "guest" => Some(Role::Guest),
            "user" => Some(Role::User),
            "developer" => Some(Role::Developer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Guest => "guest",
            Role::User => "user",
            Role::Developer => "developer",
            Role::Admin => "admin",
        }
    }
}

/// How the principal proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ApiKey,
    DefaultKey,
    ExternalKey,
    Jwt,
    Introspection,
    Hmac,
    Anonymous,
    Public,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ApiKey => "api_key",
            AuthMethod::DefaultKey => "default_key",
            AuthMethod::ExternalKey => "external_key",
            AuthMethod::Jwt => "jwt",
            AuthMethod::Introspection => "introspection",
            AuthMethod::Hmac => "hmac",
            AuthMethod::Anonymous => "anonymous",
            AuthMethod::Public => "public",
        }
    }
}

/// Request limits attached to a principal (seed 001's `rateLimit` plus a daily quota).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_hour: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_day: Option<u32>,
}

impl Limits {
    /// Each limit from `self`, else from `fallback`.
    pub fn or(self, fallback: Limits) -> Limits {
        Limits {
            per_minute: self.per_minute.or(fallback.per_minute),
            per_hour: self.per_hour.or(fallback.per_hour),
            per_day: self.per_day.or(fallback.per_day),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Principal {
    /// Stable identifier for limits, sessions and audit: `key:<keyId>`, `anonymous`, ….
    pub id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub tenant: Option<String>,
    pub role: Role,
    pub permissions: Vec<String>,
    /// OAuth scopes when the credential carries them; `None` means not scope-limited.
    pub scopes: Option<Vec<String>>,
    pub key_id: Option<String>,
    pub method: AuthMethod,
    pub limits: Limits,
    /// Unix seconds when the credential stops being valid.
    pub expires_at: Option<i64>,
    /// The user's own credential for the upstream (identity delegation, seed 003), when the
    /// verified credential carried one. Never serialized.
    #[serde(skip)]
    pub upstream_credential: Option<crate::redact::Secret>,
}

impl Principal {
    /// The caller with no credential, given `role` by `MCP_DEFAULT_ROLE` (or none: denied later).
    pub fn anonymous(role: Role) -> Principal {
        Principal {
            id: "anonymous".into(),
            user_id: "anonymous".into(),
            name: None,
            tenant: None,
            role,
            permissions: Vec::new(),
            scopes: None,
            key_id: None,
            method: AuthMethod::Anonymous,
            limits: Limits::default(),
            expires_at: None,
            upstream_credential: None,
        }
    }

    /// Whether the principal holds `perm`: `*` holds everything, `admin` holds `read` and `write`.
    pub fn has_permission(&self, perm: &str) -> bool {
        self.permissions
            .iter()
            .any(|p| p == "*" || p == perm || (p == "admin" && matches!(perm, "read" | "write")))
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        match &self.scopes {
            None => true,
            Some(s) => s.iter().any(|x| x == scope),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn roles_order_and_permissions() {
        assert!(Role::Admin > Role::Developer && Role::Developer > Role::User && Role::User > Role::Guest);
        let mut p = Principal::anonymous(Role::User);
        p.permissions = vec!["admin".into()];
        assert!(p.has_permission("read") && p.has_permission("write") && p.has_permission("admin"));
        assert!(!p.has_permission("billing"));
        p.permissions = vec!["*".into()];
        assert!(p.has_permission("billing"));
    }
}
