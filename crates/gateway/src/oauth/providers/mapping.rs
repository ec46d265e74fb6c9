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
    /// The domains an `email_domain` rule may match, when the provider says so apart from the
    /// addresses (Google: the Workspace domain, `hd`); `None`: the verified addresses' domains.
    pub email_domains: Option<Vec<String>>,
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
        Condition::EmailDomain(d) => {
            let address_in = who
                .emails
                .iter()
                .any(|x| x.rsplit_once('@').is_some_and(|(_, dom)| dom == d));
            address_in && who.email_domains.as_ref().is_none_or(|ds| ds.contains(d))
        }
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

/// The template with `{provider}`, `{sub}`, `{email}` and `{login}` filled in one pass (a value
/// is never read as a template); `None` when it names a value this person lacks.
fn fill(template: &str, who: &Identity) -> Option<String> {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let (value, used) = if let Some(t) = tail.strip_prefix("{provider}") {
            (Some(who.provider.as_str()), tail.len() - t.len())
        } else if let Some(t) = tail.strip_prefix("{sub}") {
            (Some(who.subject.as_str()), tail.len() - t.len())
        } else if let Some(t) = tail.strip_prefix("{email}") {
            (Some(who.emails.first()?.as_str()), tail.len() - t.len())
        } else if let Some(t) = tail.strip_prefix("{login}") {
            // An empty login is no login (else every such person would share one name).
            (
                Some(who.login.as_deref().filter(|l| !l.is_empty())?),
                tail.len() - t.len(),
            )
        } else {
            (None, 1)
        };
        out.push_str(value.unwrap_or("{"));
        rest = &tail[used..];
    }
    out.push_str(rest);
    (!out.is_empty()).then_some(out)
}

/// The subject `who` becomes, or `None` when no rule admits them.
pub fn map(rules: &[IdentityRule], who: &Identity) -> Option<Subject> {
    let rule = rules
        .iter()
        .find(|r| r.provider == who.provider && r.conditions.iter().all(|c| holds(c, who)))?;
    // By default `{provider}:{sub}`: the one name no other account, here or at another
    // provider, can share (an e-mail address can be verified at several providers).
    let user_id = match &rule.user_id {
        Some(t) => fill(t, who)?,
        None => format!("{}:{}", who.provider, who.subject),
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
             [[identities]]\nprovider = \"github\"\nemail_domain = \"example.com\"\npermissions = [\"read\"]\nuser_id = \"{email}\"\n\
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
    fn names_and_domains_cannot_be_borrowed() {
        let r = rules(
            "[[identities]]\nprovider = \"github\"\nemail = \"ana@example.com\"\nuser_id = \"{login}-{email}\"\n\
             [[identities]]\nprovider = \"github\"\ngithub_team = \"Acme/Core\"\nrole = \"admin\"\n\
             [[identities]]\nprovider = \"github\"\ngithub_org = \"acme\"\n",
        );
        // A team rule: the team of that organization only (written in any case).
        let mut core = gh("cy", &[], &["acme"]);
        core.teams = vec!["acme/core".into()];
        assert_eq!(map(&r, &core).unwrap().role, mcpgate_core::principal::Role::Admin);
        core.teams = vec!["other/core".into(), "acme/core-x".into()];
        assert_eq!(map(&r, &core).unwrap().role, mcpgate_core::principal::Role::User);
        // A value is never read as a template: a login that spells `{email}` stays as it is
        // (filled after it, a multi-pass fill would have replaced it)...
        let s = map(&r, &gh("{email}", &["ana@example.com"], &[])).unwrap();
        assert_eq!(s.user_id, "{email}-ana@example.com");
        // ... and a subject that spells `{login}` too (filled before it).
        let t = rules("[[identities]]\nprovider = \"github\"\nanyone = true\nuser_id = \"{sub}/{login}\"\n");
        let tricky = Identity {
            subject: "{login}".into(),
            ..gh("ana", &[], &[])
        };
        assert_eq!(map(&t, &tricky).unwrap().user_id, "{login}/ana");
        // An empty login is no login: no name, no access.
        assert!(map(&t, &gh("", &[], &[])).is_none());
        // The default name is the provider's own subject, not an address another provider may
        // also have verified.
        assert_eq!(
            map(&r, &gh("bob", &["bob@x.example"], &["acme"])).unwrap().user_id,
            "github:42"
        );
        // A rule is for its provider only.
        let elsewhere = Identity {
            provider: "corp".into(),
            ..gh("ana", &["ana@example.com"], &["acme"])
        };
        assert!(map(&r, &elsewhere).is_none());
        // Google: a domain rule holds only for that Workspace domain (`hd`), not for any
        // consumer account with a verified address there.
        let g = rules("[[identities]]\nprovider = \"corp\"\nemail_domain = \"example.com\"\n");
        let consumer = Identity {
            provider: "corp".into(),
            subject: "g1".into(),
            emails: vec!["ana@example.com".into()],
            email_domains: Some(vec![]),
            ..Identity::default()
        };
        assert!(map(&g, &consumer).is_none());
        let workspace = Identity {
            email_domains: Some(vec!["example.com".into()]),
            ..consumer.clone()
        };
        assert!(map(&g, &workspace).is_some());
        let other_workspace = Identity {
            email_domains: Some(vec!["evil.example".into()]),
            ..consumer
        };
        assert!(map(&g, &other_workspace).is_none());
    }

    #[test]
    fn rules_that_could_be_misread_are_refused() {
        #[derive(serde::Deserialize)]
        struct F {
            providers: Vec<RawProvider>,
            identities: Vec<RawIdentity>,
        }
        let base = "[[providers]]\nkind = \"github\"\nclient_id = \"c\"\n[[providers]]\nkind = \"oidc\"\nid = \"corp\"\nissuer = \"https://idp.example\"\nclient_id = \"c\"\n";
        for (rule, why) in [
            ("email_domain = \"example.com\"", "no provider"),
            (
                "provider = \"corp\"\nclaim = \"email\"\nvalue = \"a@example.com\"",
                "claim email skips email_verified",
            ),
            (
                "provider = \"corp\"\nclaim = \"email_verified\"\nvalue = \"true\"",
                "claim email_verified",
            ),
            (
                "provider = \"corp\"\ngithub_org = \"acme\"",
                "github_org on an OIDC provider",
            ),
            ("provider = \"nope\"\nanyone = true", "an unknown provider"),
        ] {
            let text = format!("{base}[[identities]]\n{rule}\n");
            let f: F = toml::from_str(&text).unwrap();
            let p = validate_providers(f.providers, &f.identities).unwrap();
            assert!(validate_identities(f.identities, &p).is_err(), "accepted: {why}");
        }
    }

    #[test]
    fn a_rule_without_a_condition_is_refused_unless_it_says_anyone() {
        #[derive(serde::Deserialize)]
        struct F {
            identities: Vec<RawIdentity>,
        }
        let p = validate_providers(vec![RawProvider::github("c", None)], &[]).unwrap();
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
