//! The verified caller, as the wrapped service sees it.

use mcpgate_core::principal::{AuthMethod, Principal, Role};
use std::sync::Arc;

/// Who the layer authenticated for this request, put into the request's extensions before the
/// wrapped service is called. Absent only when a `public` rule let a caller without a credential
/// through; with `MCP_DEFAULT_ROLE` such a caller is present, with method `Anonymous`. With
/// rmcp, a tool reads it from the `http::request::Parts` extension:
/// `parts.extensions.get::<Caller>()`.
///
/// Read-only: the service cannot change who the caller is, and never sees the credential — nor
/// the user's own upstream credential, which identity delegation keeps for outbound calls.
#[derive(Clone, Debug)]
pub struct Caller(Arc<Principal>);

impl Caller {
    pub(crate) fn new(p: Arc<Principal>) -> Caller {
        Caller(p)
    }

    /// The user the credential belongs to (`user_id` of a key, `sub` of a token).
    pub fn user_id(&self) -> &str {
        self.0.user_id()
    }

    /// The stable id limits, sessions and audit use (`key:<keyId>`, `jwt:<sub>`, …).
    pub fn id(&self) -> &str {
        self.0.id()
    }

    pub fn name(&self) -> Option<&str> {
        self.0.name()
    }

    pub fn tenant(&self) -> Option<&str> {
        self.0.tenant()
    }

    pub fn role(&self) -> Role {
        self.0.role()
    }

    pub fn permissions(&self) -> &[String] {
        self.0.permissions()
    }

    pub fn has_permission(&self, permission: &str) -> bool {
        self.0.has_permission(permission)
    }

    /// OAuth scopes, when the credential is a scoped token.
    pub fn scopes(&self) -> Option<&[String]> {
        self.0.scopes()
    }

    /// The key id of an API key (never the key).
    pub fn key_id(&self) -> Option<&str> {
        self.0.key_id()
    }

    /// How the caller was authenticated.
    pub fn method(&self) -> AuthMethod {
        self.0.method()
    }

    /// Unix seconds when the credential stops being valid.
    pub fn expires_at(&self) -> Option<i64> {
        self.0.expires_at()
    }
}
