//! The one way a bearer token (JWT or introspected) fails verification.

/// Why a bearer token was not accepted. `Invalid` carries a short stable reason for the audit
/// record; no variant ever holds any part of the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Reasons: `malformed`, `alg_not_allowed`, `alg_key_mismatch`, `bad_signature`,
    /// `unknown_kid`, `no_matching_key`, `missing_exp`, `not_yet_valid`, `iat_in_future`,
    /// `wrong_issuer`, `wrong_audience`, `missing_subject`, `inactive`, `not_access_token`.
    Invalid(&'static str),
    Expired,
    /// The issuer's keys (or the introspection endpoint) could not be reached and nothing cached
    /// can decide: answer 503, never a false 401.
    IssuerUnavailable,
}

impl TokenError {
    pub fn reason(self) -> &'static str {
        match self {
            TokenError::Invalid(r) => r,
            TokenError::Expired => "expired",
            TokenError::IssuerUnavailable => "issuer_unavailable",
        }
    }
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for TokenError {}
