//! The authorization server's storage decisions, written once so the backends cannot drift: when a
//! code, token or grant has ended, and what presenting a refresh token does. Each backend keeps
//! the state its own way (a map under a lock, rows in a transaction) and asks these functions
//! what to change; a backend that decides in its query language (SQLite's prune) says which
//! function its predicate mirrors.

use crate::oauth::GrantRecord;

/// Live until `expires_at`: ended at that second and after (as [`crate::ReplayStore`] entries).
pub(crate) fn expired(expires_at: i64, now: i64) -> bool {
    expires_at <= now
}

/// The end of a refresh token recorded for `grant`: as asked, never past the family's end.
pub(crate) fn capped(expires_at: i64, grant: &GrantRecord) -> i64 {
    expires_at.min(grant.expires_at)
}

/// A grant that [`crate::oauth::GrantStore::prune_grants`] forgets: revoked more than
/// `keep_revoked_s` ago, or expired and never revoked. A revoked grant is kept its full
/// `keep_revoked_s` even once expired, so gateways polling `revoked_since` still see it.
pub(crate) fn grant_forgotten(grant: &GrantRecord, now: i64, keep_revoked_s: i64) -> bool {
    match grant.revoked_at {
        Some(at) => at < now.saturating_sub(keep_revoked_s),
        None => expired(grant.expires_at, now),
    }
}

/// A refresh token as a backend keeps it (its hash is the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refresh {
    pub grant_id: String,
    pub expires_at: i64,
    /// When it was replaced by the next token of its family.
    pub spent_at: Option<i64>,
    /// Whether its one acceptance after being spent (a racing refresh) was used.
    pub grace_used: bool,
}

/// What presenting a refresh token does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Refuse, change nothing: the grant was revoked or has expired, or the token has expired.
    Ended,
    /// A live token: spend it, record the new one.
    Spend,
    /// A token spent less than `grace_s` ago, not yet accepted again: mark its grace used,
    /// record the new one (the family now has two live tokens, one per racing request).
    Grace,
    /// A spent token past its grace: revoke the grant.
    Reuse,
}

/// Decides [`Step`] for `token` of `grant` presented at `now`. Ended comes first: a revoked or
/// expired family is not revoked again, and a token past its own end (which a prune forgets
/// anyway) refuses the same way whether or not it was spent.
pub(crate) fn step(grant: &GrantRecord, token: &Refresh, now: i64, grace_s: i64) -> Step {
    if grant.revoked_at.is_some() || expired(grant.expires_at, now) || expired(token.expires_at, now) {
        return Step::Ended;
    }
    match token.spent_at {
        None => Step::Spend,
        Some(at) if !token.grace_used && now.saturating_sub(at) < grace_s => Step::Grace,
        Some(_) => Step::Reuse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::Subject;
    use mcpgate_core::principal::Role;

    fn grant(expires_at: i64, revoked_at: Option<i64>) -> GrantRecord {
        GrantRecord {
            grant_id: "g".into(),
            client_id: "c".into(),
            subject: Subject {
                user_id: "u".into(),
                tenant: None,
                role: Role::User,
                permissions: vec![],
                via: "key:k".into(),
            },
            scopes: vec![],
            resource: "https://mcp.example".into(),
            created_at: 0,
            expires_at,
            revoked_at,
        }
    }

    fn token(expires_at: i64, spent_at: Option<i64>, grace_used: bool) -> Refresh {
        Refresh {
            grant_id: "g".into(),
            expires_at,
            spent_at,
            grace_used,
        }
    }

    #[test]
    fn steps() {
        let live = grant(1_000, None);
        assert_eq!(step(&live, &token(500, None, false), 10, 0), Step::Spend);
        assert_eq!(step(&live, &token(500, None, false), 500, 0), Step::Ended);
        assert_eq!(step(&grant(100, None), &token(500, None, false), 100, 0), Step::Ended);
        assert_eq!(
            step(&grant(1_000, Some(5)), &token(500, None, false), 10, 0),
            Step::Ended
        );
        // Grace: strictly less than grace_s after the spend, once; grace 0 is none.
        assert_eq!(step(&live, &token(500, Some(10), false), 14, 5), Step::Grace);
        assert_eq!(step(&live, &token(500, Some(10), false), 15, 5), Step::Reuse);
        assert_eq!(step(&live, &token(500, Some(10), true), 11, 5), Step::Reuse);
        assert_eq!(step(&live, &token(500, Some(10), false), 10, 0), Step::Reuse);
    }

    #[test]
    fn forgetting() {
        assert!(!grant_forgotten(&grant(1_000, None), 999, 0));
        assert!(grant_forgotten(&grant(1_000, None), 1_000, 0));
        // Revoked: kept keep_revoked_s, even past the grant's end.
        assert!(!grant_forgotten(&grant(100, Some(150)), 200, 50));
        assert!(grant_forgotten(&grant(100, Some(149)), 200, 50));
        assert!(!grant_forgotten(&grant(100, Some(0)), i64::MIN, i64::MAX));
        assert_eq!(capped(5_000, &grant(1_000, None)), 1_000);
        assert_eq!(capped(500, &grant(1_000, None)), 500);
    }
}
