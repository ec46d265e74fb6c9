//! A fixed bearer token (`--bearer env:VAR`): `Authorization: Bearer <token>`. Nothing to renew,
//! so a 401 ends with it.

use super::{Auth, AuthError, SetupError, header_value};
use crate::secret::Secret;
use http::{HeaderMap, HeaderValue, Method, header::AUTHORIZATION};

/// `Authorization: Bearer <token>` on every request.
#[derive(Clone)]
pub struct Bearer {
    value: HeaderValue,
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bearer(…)")
    }
}

impl Bearer {
    pub fn new(token: &Secret) -> Result<Bearer, SetupError> {
        let token = token.expose().trim();
        // Tolerate a variable that already holds "Bearer …".
        let token = token
            .strip_prefix("Bearer ")
            .or_else(|| token.strip_prefix("bearer "))
            .unwrap_or(token);
        if token.is_empty() || token.contains(char::is_whitespace) {
            return Err(SetupError::new("--bearer", "the token is empty or contains spaces"));
        }
        Ok(Bearer {
            value: header_value("--bearer", &format!("Bearer {token}"), true)?,
        })
    }
}

#[async_trait::async_trait]
impl Auth for Bearer {
    async fn headers(&self, _: &Method, _: &str, _: &[u8]) -> Result<HeaderMap, AuthError> {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, self.value.clone());
        Ok(h)
    }

    async fn unauthorized(&self, _: &HeaderMap, _: Option<&str>) -> bool {
        false
    }

    fn describe(&self) -> String {
        "bearer token".into()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[tokio::test]
    async fn bearer_header() {
        for given in ["tok-1", "Bearer tok-1", " tok-1\n"] {
            let b = Bearer::new(&Secret::new(given)).unwrap();
            let h = b.headers(&Method::GET, "http://x/mcp", b"").await.unwrap();
            assert_eq!(h[AUTHORIZATION], "Bearer tok-1");
            assert!(h[AUTHORIZATION].is_sensitive());
            assert!(!b.unauthorized(&h, None).await);
            assert!(!format!("{b:?}").contains("tok-1"));
        }
        for bad in ["", "two words", "  "] {
            assert!(Bearer::new(&Secret::new(bad)).is_err(), "{bad:?}");
        }
    }
}
