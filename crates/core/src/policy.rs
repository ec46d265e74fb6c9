//! Authorization: which role, permissions and scopes each MCP method and target (tool name,
//! resource URI, prompt name) requires. Rules are tried in order; the first that matches decides.
//! Without a matching rule, defaults by method family apply. `scopes_supported` for the OAuth
//! metadata is derived from the same rules.

use crate::principal::{Principal, Role};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Method globs (`tools/call`, `resources/*`); empty means `tools/call` when `tools` is set,
    /// else any method.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Target globs: tool names for `tools/call`, URIs for `resources/read`, names for `prompts/get`.
    #[serde(default, alias = "targets")]
    pub tools: Vec<String>,
    /// No credential needed (seed 000's `kp_health`).
    #[serde(default)]
    pub public: bool,
    /// Refuse outright.
    #[serde(default)]
    pub deny: bool,
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl Rule {
    fn matches(&self, method: &str, target: Option<&str>) -> bool {
        let method_ok = if self.methods.is_empty() {
            self.tools.is_empty() || method == "tools/call"
        } else {
            self.methods.iter().any(|g| glob(g, method))
        };
        let target_ok = self.tools.is_empty() || target.is_some_and(|t| self.tools.iter().any(|g| glob(g, t)));
        method_ok && target_ok
    }
}

/// What a caller lacks; the gateway turns each into the right status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// No credential, and the target is not public: 401.
    Unauthenticated,
    Role {
        needed: Role,
    },
    Permission {
        missing: Vec<String>,
    },
    Scope {
        missing: Vec<String>,
    },
    Denied,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Allowed without a credential.
    Public,
    Deny(Denial),
}

#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub rules: Vec<Rule>,
    /// Rules whose target patterns are all literal names, by name → their positions: with
    /// thousands of per-tool rules a decision stays a lookup, not a scan.
    literal: std::collections::HashMap<String, Vec<usize>>,
    /// Positions of every other rule (wildcards, or no target), in order.
    general: Vec<usize>,
    /// Whether callers without a credential may open a session and list (something is public,
    /// or keys come per tool call).
    open_sessions: bool,
}

/// Methods every authenticated caller may use: the protocol itself, not the server's features.
fn is_lifecycle(method: &str) -> bool {
    matches!(
        method,
        "initialize" | "ping" | "server/discover" | "logging/setLevel" | "completion/complete" | ""
    ) || method.starts_with("notifications/")
}

fn is_listing(method: &str) -> bool {
    matches!(
        method,
        "tools/list" | "resources/list" | "resources/templates/list" | "prompts/list"
    )
}

impl Policy {
    pub fn new(rules: Vec<Rule>) -> Policy {
        let mut literal: std::collections::HashMap<String, Vec<usize>> = std::collections::HashMap::new();
        let mut general = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            let is_literal = !r.tools.is_empty() && r.tools.iter().all(|t| !t.contains(['*', '?']));
            if is_literal {
                for t in &r.tools {
                    literal.entry(t.clone()).or_default().push(i);
                }
            } else {
                general.push(i);
            }
        }
        let open_sessions = rules.iter().any(|r| r.public);
        Policy {
            rules,
            literal,
            general,
            open_sessions,
        }
    }

    /// Whether any rule makes something public; then anonymous callers may open a session and
    /// list what is public.
    pub fn has_public(&self) -> bool {
        self.open_sessions
    }

    /// Lets callers without a credential open sessions and list, for hosts that send a key with
    /// each tool call instead (seed 000's per-tool `api_key`).
    pub fn allow_anonymous_sessions(&mut self) {
        self.open_sessions = true;
    }

    /// The default requirement for a method with no matching rule.
    fn default_rule(method: &str) -> &'static Rule {
        static DEFAULTS: std::sync::OnceLock<[Rule; 3]> = std::sync::OnceLock::new();
        let [lifecycle, read, write] = DEFAULTS.get_or_init(|| {
            let rule = |perms: &[&str]| Rule {
                role: Some(Role::Guest),
                permissions: perms.iter().map(|p| p.to_string()).collect(),
                ..Rule::default()
            };
            [rule(&[]), rule(&["read"]), rule(&["write"])]
        });
        if is_lifecycle(method) {
            lifecycle
        } else if is_listing(method)
            || matches!(
                method,
                "resources/read" | "resources/subscribe" | "resources/unsubscribe" | "prompts/get"
            )
        {
            read
        } else {
            write
        }
    }

    /// The first rule, in configuration order, that matches.
    fn rule_for(&self, method: &str, target: Option<&str>) -> &Rule {
        let literal = target.and_then(|t| self.literal.get(t)).and_then(|positions| {
            positions
                .iter()
                .copied()
                .find(|&i| self.rules[i].matches(method, target))
        });
        let general = self
            .general
            .iter()
            .copied()
            .take_while(|&i| literal.is_none_or(|l| i < l))
            .find(|&i| self.rules[i].matches(method, target));
        match general.or(literal) {
            Some(i) => &self.rules[i],
            None => Self::default_rule(method),
        }
    }

    /// Decides for `principal` (`None`: no credential presented) calling `method` on `target`.
    pub fn decide(&self, principal: Option<&Principal>, method: &str, target: Option<&str>) -> Decision {
        let rule = self.rule_for(method, target);
        if rule.deny {
            return Decision::Deny(Denial::Denied);
        }
        if rule.public {
            return Decision::Public;
        }
        let Some(p) = principal else {
            // Anonymous callers may open a session and list, when something is public to them.
            if self.has_public() && (is_lifecycle(method) || is_listing(method)) {
                return Decision::Public;
            }
            return Decision::Deny(Denial::Unauthenticated);
        };
        if let Some(needed) = rule.role
            && p.role() < needed
        {
            return Decision::Deny(Denial::Role { needed });
        }
        let missing: Vec<String> = rule
            .permissions
            .iter()
            .filter(|perm| !p.has_permission(perm))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Decision::Deny(Denial::Permission { missing });
        }
        let missing: Vec<String> = rule.scopes.iter().filter(|s| !p.has_scope(s)).cloned().collect();
        if !missing.is_empty() {
            return Decision::Deny(Denial::Scope { missing });
        }
        Decision::Allow
    }

    /// Whether a listed item (tool, resource, prompt) would be callable: drives filtered lists.
    pub fn visible(&self, principal: Option<&Principal>, list_method: &str, name: &str) -> bool {
        let call = match list_method {
            "tools/list" => "tools/call",
            "resources/list" | "resources/templates/list" => "resources/read",
            "prompts/list" => "prompts/get",
            _ => return true,
        };
        matches!(
            self.decide(principal, call, Some(name)),
            Decision::Allow | Decision::Public
        )
    }

    /// Every scope any rule names: `scopes_supported` in the OAuth metadata.
    pub fn scopes_supported(&self) -> Vec<String> {
        let mut s: Vec<String> = self.rules.iter().flat_map(|r| r.scopes.iter().cloned()).collect();
        s.sort();
        s.dedup();
        s
    }
}

/// Glob match with `*` (any run) and `?` (one character), without allocating.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    // Width of the UTF-8 character starting at byte `i` (so `?` eats one character).
    let width = |i: usize| match t[i] {
        b if b < 0x80 => 1,
        b if b >= 0xF0 => 4,
        b if b >= 0xE0 => 3,
        _ => 2,
    };
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'?' {
            pi += 1;
            ti += width(ti);
        } else if pi < p.len() && p[pi] != b'*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += width(mark);
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::{AuthMethod, Principal, Verified};

    fn verified(role: Role, perms: &[&str], scopes: Option<Vec<String>>) -> Principal {
        Principal::verified(Verified {
            permissions: perms.iter().map(|s| s.to_string()).collect(),
            scopes,
            ..Verified::new("key:t", "t", role, AuthMethod::ApiKey)
        })
    }

    fn who(role: Role, perms: &[&str]) -> Principal {
        verified(role, perms, None)
    }

    #[test]
    fn globs() {
        for (p, t, want) in [
            ("*", "x", true),
            ("kp_*", "kp_me", true),
            ("kp_*", "kx_me", false),
            ("a?c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*c", "ab", false),
            ("", "", true),
        ] {
            assert_eq!(glob(p, t), want, "{p} {t}");
        }
    }

    #[test]
    fn decisions() {
        let policy = Policy::new(vec![
            Rule {
                tools: vec!["kp_health".into()],
                public: true,
                ..Rule::default()
            },
            Rule {
                tools: vec!["echo".into(), "add".into()],
                permissions: vec!["read".into()],
                ..Rule::default()
            },
            Rule {
                tools: vec!["admin_*".into()],
                role: Some(Role::Admin),
                ..Rule::default()
            },
            Rule {
                tools: vec!["deploy".into()],
                scopes: vec!["execute".into()],
                permissions: vec!["write".into()],
                ..Rule::default()
            },
            Rule {
                tools: vec!["rm_rf".into()],
                deny: true,
                ..Rule::default()
            },
        ]);
        let reader = who(Role::User, &["read"]);
        let writer = who(Role::User, &["read", "write"]);
        let admin = who(Role::Admin, &["*"]);
        let guest = who(Role::Guest, &[]);
        let scoped = verified(Role::User, &["read", "write"], Some(vec!["read".into()]));
        let cases: Vec<(Option<&Principal>, &str, Option<&str>, Decision)> = vec![
            (None, "tools/call", Some("kp_health"), Decision::Public),
            (None, "initialize", None, Decision::Public),
            (None, "tools/list", None, Decision::Public),
            (
                None,
                "tools/call",
                Some("echo"),
                Decision::Deny(Denial::Unauthenticated),
            ),
            (Some(&reader), "tools/call", Some("echo"), Decision::Allow),
            (
                Some(&reader),
                "tools/call",
                Some("other"),
                Decision::Deny(Denial::Permission {
                    missing: vec!["write".into()],
                }),
            ),
            (Some(&writer), "tools/call", Some("other"), Decision::Allow),
            (
                Some(&writer),
                "tools/call",
                Some("admin_reset"),
                Decision::Deny(Denial::Role { needed: Role::Admin }),
            ),
            (Some(&admin), "tools/call", Some("admin_reset"), Decision::Allow),
            (
                Some(&scoped),
                "tools/call",
                Some("deploy"),
                Decision::Deny(Denial::Scope {
                    missing: vec!["execute".into()],
                }),
            ),
            (Some(&writer), "tools/call", Some("deploy"), Decision::Allow),
            (
                Some(&admin),
                "tools/call",
                Some("rm_rf"),
                Decision::Deny(Denial::Denied),
            ),
            (Some(&reader), "resources/read", Some("demo://x"), Decision::Allow),
            (
                Some(&guest),
                "tools/list",
                None,
                Decision::Deny(Denial::Permission {
                    missing: vec!["read".into()],
                }),
            ),
        ];
        for (p, m, t, want) in cases {
            assert_eq!(
                policy.decide(p, m, t),
                want,
                "{m} {t:?} as {:?}",
                p.map(|p| p.permissions())
            );
        }
        assert!(policy.visible(Some(&reader), "tools/list", "echo"));
        assert!(!policy.visible(Some(&reader), "tools/list", "other"));
        assert!(policy.visible(None, "tools/list", "kp_health"));
        assert!(!policy.visible(None, "tools/list", "echo"));
        assert_eq!(policy.scopes_supported(), vec!["execute".to_string()]);
        // First match wins across literal and wildcard rules.
        let ordered = Policy::new(vec![
            Rule {
                tools: vec!["ad*".into()],
                deny: true,
                ..Rule::default()
            },
            Rule {
                tools: vec!["add".into()],
                public: true,
                ..Rule::default()
            },
        ]);
        assert_eq!(
            ordered.decide(None, "tools/call", Some("add")),
            Decision::Deny(Denial::Denied)
        );
        let ordered = Policy::new(vec![
            Rule {
                tools: vec!["add".into()],
                public: true,
                ..Rule::default()
            },
            Rule {
                tools: vec!["ad*".into()],
                deny: true,
                ..Rule::default()
            },
        ]);
        assert_eq!(ordered.decide(None, "tools/call", Some("add")), Decision::Public);
        assert_eq!(
            ordered.decide(Some(&admin), "tools/call", Some("adx")),
            Decision::Deny(Denial::Denied)
        );
        let closed = Policy::default();
        assert_eq!(
            closed.decide(None, "initialize", None),
            Decision::Deny(Denial::Unauthenticated)
        );
    }
}
