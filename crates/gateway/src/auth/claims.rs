//! How a verified token's claims become a [`Principal`]: which dotted claim paths give the
//! subject, tenant, role, scopes, permissions, display name and the user's upstream credential.
//! Shared by the JWT verifier ([`super::jwt`]) and token introspection ([`super::introspect`]),
//! after each has checked the token itself; nothing here decides whether a token is valid, except
//! that one without a subject is refused.

use super::token_error::TokenError;
use mcpgate_core::principal::{AuthMethod, Principal, Role, Verified};
use mcpgate_core::redact::Secret;
use serde_json::Value;

pub const DEFAULT_UPSTREAM_CREDENTIAL_CLAIMS: [&str; 3] = ["kubiya_api_key", "api_key", "metadata.kubiya_api_key"];

/// How claims become a [`Principal`]; shared with token introspection.
#[derive(Debug, Clone)]
pub(crate) struct ClaimMap {
    /// Paths tried in order; the first string or number found is the subject.
    pub subject: Vec<String>,
    pub tenant: String,
    pub roles: String,
    /// `None`: both `scope` and `scp`.
    pub scopes: Option<String>,
    pub permissions: String,
    pub name: Vec<String>,
    pub upstream_credential: Vec<String>,
}

impl Default for ClaimMap {
    fn default() -> Self {
        ClaimMap {
            subject: vec!["sub".into()],
            tenant: "tenant_id".into(),
            roles: "roles".into(),
            scopes: None,
            permissions: "permissions".into(),
            name: vec!["name".into()],
            upstream_credential: DEFAULT_UPSTREAM_CREDENTIAL_CLAIMS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// A configured claim path (`auth.jwt.{field}`), or `default` when none was written.
pub(crate) fn claim_path(field: &str, v: Option<String>, default: &str) -> Result<String, String> {
    match v {
        None => Ok(default.to_string()),
        Some(p) if p.is_empty() || p.split('.').any(str::is_empty) => Err(format!(
            "auth.jwt.{field}: {p:?} is not a claim path (use names joined by dots)"
        )),
        Some(p) => Ok(p),
    }
}

/// The value at a dotted path (`metadata.kubiya_api_key`).
fn at<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(v, |cur, seg| cur.get(seg))
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A space-separated string or a list of strings.
fn words(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::String(s) => Some(s.split_whitespace().map(str::to_string).collect()),
        Value::Array(a) => Some(a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()),
        _ => None,
    }
}

impl ClaimMap {
    pub(crate) fn principal(
        &self,
        claims: &Value,
        method: AuthMethod,
        id_prefix: &str,
        expires_at: Option<i64>,
    ) -> Result<Principal, TokenError> {
        let first = |paths: &[String]| paths.iter().find_map(|p| at(claims, p).and_then(text));
        let sub = first(&self.subject).ok_or(TokenError::Invalid("missing_subject"))?;
        let scopes = match &self.scopes {
            Some(path) => words(at(claims, path)),
            None => match (words(claims.get("scope")), words(claims.get("scp"))) {
                (None, None) => None,
                (a, b) => {
                    let mut all: Vec<String> = Vec::new();
                    for s in a.into_iter().flatten().chain(b.into_iter().flatten()) {
                        if !all.contains(&s) {
                            all.push(s);
                        }
                    }
                    Some(all)
                }
            },
        };
        let permissions = words(at(claims, &self.permissions))
            .or_else(|| scopes.clone())
            .unwrap_or_default();
        // A token is always scope-limited: one with no scope claim holds no scopes (so
        // `required_scopes` and scope rules refuse it); only API keys are not scope-limited.
        let scopes = Some(scopes.unwrap_or_default());
        let role = words(at(claims, &self.roles))
            .unwrap_or_default()
            .iter()
            .filter_map(|r| Role::parse(r))
            .max()
            .unwrap_or(Role::User);
        let upstream_credential = self.upstream_credential.iter().find_map(|p| match at(claims, p) {
            Some(Value::String(s)) if !s.is_empty() => Some(Secret::new(s.clone())),
            _ => None,
        });
        Ok(Principal::verified(Verified {
            name: first(&self.name),
            tenant: at(claims, &self.tenant).and_then(text),
            permissions,
            scopes,
            expires_at,
            upstream_credential,
            ..Verified::new(format!("{id_prefix}:{sub}"), sub, role, method)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_paths_map_a_token() {
        let claims = json!({
            "sub": 42,
            "tenant_id": "t1",
            "roles": ["user", "nonsense", "Developer"],
            "scope": "read write",
            "scp": ["write", "admin"],
            "metadata": {"kubiya_api_key": "kb-secret"},
        });
        let p = ClaimMap::default()
            .principal(&claims, AuthMethod::Jwt, "jwt", Some(7))
            .unwrap();
        assert_eq!((p.id(), p.user_id()), ("jwt:42", "42"));
        assert_eq!(p.tenant(), Some("t1"));
        assert_eq!(p.role(), Role::Developer);
        // `scope` and `scp` merge without repeats; with no `permissions` claim, scopes stand in.
        assert_eq!(
            p.scopes(),
            Some(&["read".to_string(), "write".into(), "admin".into()][..])
        );
        assert_eq!(p.permissions(), vec!["read", "write", "admin"]);
        assert_eq!(p.upstream_credential().map(Secret::expose), Some("kb-secret"));
        assert_eq!(p.expires_at(), Some(7));
    }

    #[test]
    fn no_subject_no_principal_and_no_scope_means_none() {
        let map = ClaimMap::default();
        let missing = map.principal(&json!({"sub": ""}), AuthMethod::Jwt, "jwt", None);
        assert_eq!(missing.unwrap_err(), TokenError::Invalid("missing_subject"));
        let p = map
            .principal(&json!({"sub": "u"}), AuthMethod::Jwt, "jwt", None)
            .unwrap();
        assert_eq!((p.scopes(), p.role()), (Some(&[][..]), Role::User));
    }

    #[test]
    fn claim_paths_are_dotted_names() {
        assert_eq!(claim_path("tenant_claim", None, "tenant_id").unwrap(), "tenant_id");
        assert_eq!(
            claim_path("tenant_claim", Some("org.id".into()), "x").unwrap(),
            "org.id"
        );
        for bad in ["", ".id", "org.", "org..id"] {
            let e = claim_path("tenant_claim", Some(bad.into()), "x").unwrap_err();
            assert!(e.starts_with("auth.jwt.tenant_claim:"), "{e}");
        }
    }
}
