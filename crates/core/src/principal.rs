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
    /// An access token this gateway's own authorization server issued.
    OAuth,
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
            AuthMethod::OAuth => "oauth",
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

/// What an authenticator found out about a caller, field by field; it becomes a [`Principal`]
/// through [`Principal::verified`], after which nothing can change it.
#[derive(Debug, Clone)]
pub struct Verified {
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
    /// verified credential carried one.
    pub upstream_credential: Option<crate::redact::Secret>,
    /// The OAuth client the credential was issued to (tokens of this gateway's authorization
    /// server), for audit.
    pub client_id: Option<String>,
}

impl Verified {
    /// The facts every principal has; the rest start empty (no name, tenant, permissions, scopes,
    /// key, limits, expiry or upstream credential).
    pub fn new(id: impl Into<String>, user_id: impl Into<String>, role: Role, method: AuthMethod) -> Verified {
        Verified {
            id: id.into(),
            user_id: user_id.into(),
            name: None,
            tenant: None,
            role,
            permissions: Vec::new(),
            scopes: None,
            key_id: None,
            method,
            limits: Limits::default(),
            expires_at: None,
            upstream_credential: None,
            client_id: None,
        }
    }
}

/// The verified caller. Its fields are private: it is made by an authenticator (through
/// [`Principal::verified`]) or by the anonymous rule, and read through accessors by everything
/// after authentication — the policy, limits, sessions, audit, an embedded server's handlers —
/// none of which can change who the caller is:
///
/// ```compile_fail
/// use mcpgate_core::principal::{Principal, Role};
/// let mut p = Principal::anonymous(Role::Guest, Vec::new());
/// p.role = Role::Admin; // private: a principal is not promoted after authentication
/// ```
///
/// ```
/// use mcpgate_core::principal::{Principal, Role};
/// let p = Principal::anonymous(Role::Guest, vec!["read".into()]);
/// assert_eq!((p.id(), p.role(), p.has_permission("read")), ("anonymous", Role::Guest, true));
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Principal {
    id: String,
    user_id: String,
    name: Option<String>,
    tenant: Option<String>,
    role: Role,
    permissions: Vec<String>,
    scopes: Option<Vec<String>>,
    key_id: Option<String>,
    method: AuthMethod,
    limits: Limits,
    expires_at: Option<i64>,
    /// Never serialized.
    #[serde(skip)]
    upstream_credential: Option<crate::redact::Secret>,
    client_id: Option<String>,
}

impl Principal {
    /// For authenticators, once the credential is verified.
    pub fn verified(v: Verified) -> Principal {
        Principal {
            id: v.id,
            user_id: v.user_id,
            name: v.name,
            tenant: v.tenant,
            role: v.role,
            permissions: v.permissions,
            scopes: v.scopes,
            key_id: v.key_id,
            method: v.method,
            limits: v.limits,
            expires_at: v.expires_at,
            upstream_credential: v.upstream_credential,
            client_id: v.client_id,
        }
    }

    /// The caller with no credential, given `role` by `MCP_DEFAULT_ROLE` (or none: denied later)
    /// and the default permissions.
    pub fn anonymous(role: Role, permissions: Vec<String>) -> Principal {
        let mut v = Verified::new("anonymous", "anonymous", role, AuthMethod::Anonymous);
        v.permissions = permissions;
        Principal::verified(v)
    }

    /// Stable identifier for limits, sessions and audit: `key:<keyId>`, `anonymous`, ….
    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn user_id(&self) -> &str {
        &self.user_id
    }
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn permissions(&self) -> &[String] {
        &self.permissions
    }
    /// OAuth scopes when the credential carries them; `None` means not scope-limited.
    pub fn scopes(&self) -> Option<&[String]> {
        self.scopes.as_deref()
    }
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }
    pub fn method(&self) -> AuthMethod {
        self.method
    }
    pub fn limits(&self) -> Limits {
        self.limits
    }
    /// Unix seconds when the credential stops being valid.
    pub fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }
    /// The user's own credential for the upstream (identity delegation), when one was verified.
    pub fn upstream_credential(&self) -> Option<&crate::redact::Secret> {
        self.upstream_credential.as_ref()
    }

    /// The OAuth client the credential was issued to, when this gateway issued it.
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
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
        let p = Principal::anonymous(Role::User, vec!["admin".into()]);
        assert!(p.has_permission("read") && p.has_permission("write") && p.has_permission("admin"));
        assert!(!p.has_permission("billing"));
        let p = Principal::anonymous(Role::User, vec!["*".into()]);
        assert!(p.has_permission("billing"));
    }
}
