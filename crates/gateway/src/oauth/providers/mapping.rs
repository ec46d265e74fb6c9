//! Who a person signed in at a provider becomes here: the first identity rule whose every
//! condition holds decides their user id, tenant, role and permissions; no rule, no access.
//! E-mail conditions see verified addresses only.

use super::settings::{Condition, IdentityRule};
use mcpgate_store::oauth::Subject;

/// What a provider said about the person (verified e-mails only).
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub provider: String,
    pub subject: String,
    /// Verified addresses, lower case; the primary (or the ID token's) first.
    pub emails: Vec<String>,
    /// GitHub's login.
    pub login: Option<String>,
    /// GitHub organizations (lower case).
    pub orgs: Vec<String>,
    /// GitHub teams as `org/team-slug` (lower case).
    pub teams: Vec<String>,
    /// The ID token's claims (OIDC).
    pub claims: serde_json::Value,
}

impl Identity {
    /// `via` of a grant or session signed in this way.
    pub fn via(&self) -> String {
        format!("provider:{}:{}", self.provider, self.subject)
    }
}

fn holds(c: &Condition, who: &Identity) -> bool {
    match c {
        Condition::Subject(s) => &who.subject == s,
        Condition::Email(e) => who.emails.iter().any(|x| x == e),
        Condition::EmailDomain(d) => who
            .emails
            .iter()
            .any(|x| x.rsplit_once('@').is_some_and(|(_, dom)| dom == d)),
        Condition::GithubOrg(o) => who.orgs.iter().any(|x| x == o),
        Condition::GithubTeam(t) => who.teams.iter().any(|x| x == t),
        Condition::Claim(name, value) => match who.claims.get(name) {
            Some(serde_json::Value::String(s)) => s == value,
            Some(serde_json::Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(value)),
            Some(serde_json::Value::Bool(b)) => b.to_string() == *value,
            _ => false,
        },
    }
}

fn fill(template: &str, who: &Identity) -> Option<String> {
    let email = who.emails.first().map(String::as_str);
    let mut out = template
        .replace("{provider}", &who.provider)
        .replace("{sub}", &who.subject);
    if out.contains("{email}") {
        out = out.replace("{email}", email?);
    }
    if out.contains("{login}") {
        out = out.replace("{login}", who.login.as_deref()?);
    }
    (!out.is_empty()).then_some(out)
}

/// The subject `who` becomes, or `None` when no rule admits them.
pub fn map(rules: &[IdentityRule], who: &Identity) -> Option<Subject> {
    let rule = rules.iter().find(|r| {
        r.provider.as_deref().is_none_or(|p| p == who.provider) && r.conditions.iter().all(|c| holds(c, who))
    })?;
    let user_id = match &rule.user_id {
        Some(t) => fill(t, who)?,
        None => who
            .emails
            .first()
            .cloned()
            .unwrap_or_else(|| format!("{}:{}", who.provider, who.subject)),
    };
    let tenant = match &rule.tenant {
        Some(t) => Some(fill(t, who)?),
        None => None,
    };
    Some(Subject {
        user_id,
        tenant,
        role: rule.role,
        permissions: rule.permissions.clone(),
        via: who.via(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::oauth::providers::settings::{RawIdentity, RawProvider, validate_identities, validate_providers};

    fn rules(toml_rules: &str) -> Vec<IdentityRule> {
        #[derive(serde::Deserialize)]
        struct F {
            providers: Vec<RawProvider>,
            identities: Vec<RawIdentity>,
        }
        let text = format!(
            "[[providers]]\nkind = \"github\"\nclient_id = \"c\"\n[[providers]]\nkind = \"oidc\"\nid = \"corp\"\nissuer = \"https://idp.example\"\nclient_id = \"c\"\n{toml_rules}"
        );
        let f: F = toml::from_str(&text).unwrap();
        let p = validate_providers(f.providers, &f.identities).unwrap();
        validate_identities(f.identities, &p).unwrap()
    }

    fn gh(login: &str, emails: &[&str], orgs: &[&str]) -> Identity {
        Identity {
            provider: "github".into(),
            subject: "42".into(),
            emails: emails.iter().map(|e| e.to_string()).collect(),
            login: Some(login.into()),
            orgs: orgs.iter().map(|e| e.to_string()).collect(),
            ..Identity::default()
        }
    }

    #[test]
    fn the_first_matching_rule_decides_and_no_rule_means_no_access() {
        let r = rules(
            "[[identities]]\nprovider = \"github\"\ngithub_org = \"acme\"\nrole = \"developer\"\npermissions = [\"read\", \"write\"]\nuser_id = \"gh:{login}\"\n\
             [[identities]]\nemail_domain = \"example.com\"\npermissions = [\"read\"]\n\
             [[identities]]\nprovider = \"corp\"\nclaim = \"groups\"\nvalue = \"mcp-admins\"\nrole = \"admin\"\ntenant = \"corp\"\n",
        );
        let s = map(&r, &gh("ana", &[], &["acme"])).unwrap();
        assert_eq!(
            (s.user_id.as_str(), s.role),
            ("gh:ana", mcpgate_core::principal::Role::Developer)
        );
        assert_eq!(s.via, "provider:github:42");
        let s = map(&r, &gh("bob", &["bob@example.com"], &["other"])).unwrap();
        assert_eq!(s.user_id, "bob@example.com");
        assert_eq!(s.permissions, vec!["read".to_string()]);
        assert!(map(&r, &gh("eve", &["eve@evil.example"], &["other"])).is_none());
        // A domain is matched whole, not as a suffix.
        assert!(map(&r, &gh("eve", &["eve@notexample.com"], &[])).is_none());
        let corp = Identity {
            provider: "corp".into(),
            subject: "u1".into(),
            claims: serde_json::json!({"groups": ["staff", "mcp-admins"]}),
            ..Identity::default()
        };
        let s = map(&r, &corp).unwrap();
        assert_eq!((s.user_id.as_str(), s.tenant.as_deref()), ("corp:u1", Some("corp")));
        let not_admin = Identity {
            claims: serde_json::json!({"groups": "mcp-admins-not"}),
            ..corp
        };
        assert!(map(&r, &not_admin).is_none());
    }

    #[test]
    fn a_rule_without_a_condition_is_refused_unless_it_says_anyone() {
        #[derive(serde::Deserialize)]
        struct F {
            identities: Vec<RawIdentity>,
        }
        let p = validate_providers(
            vec![RawProvider {
                kind: crate::oauth::providers::settings::ProviderKind::Github,
                id: None,
                name: None,
                client_id: "c".into(),
                client_secret_env: None,
                issuer: None,
                scopes: vec![],
                authorization_endpoint: None,
                token_endpoint: None,
                jwks_uri: None,
                api_base: None,
            }],
            &[],
        )
        .unwrap();
        let f: F = toml::from_str("[[identities]]\nprovider = \"github\"\n").unwrap();
        assert!(validate_identities(f.identities, &p).is_err());
        let f: F = toml::from_str("[[identities]]\nanyone = true\n").unwrap();
        assert!(
            validate_identities(f.identities, &p).is_err(),
            "anyone without a provider"
        );
        let f: F = toml::from_str("[[identities]]\nprovider = \"github\"\nanyone = true\n").unwrap();
        let r = validate_identities(f.identities, &p).unwrap();
        assert!(map(&r, &gh("x", &[], &[])).is_some());
    }
}
