//! Fetching an issuer's documents safely: only `https` (or `http` to loopback), bodies read up to
//! a limit, discovery that insists the document names the issuer it was fetched for.

use serde::Deserialize;

/// A JWKS or discovery document larger than this is refused (a real one is a few KiB).
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// `https`, or `http` to a loopback host only (tests, a local issuer).
pub fn check_url(field: &str, text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("{field}: not a URL ({e})"))?;
    let loopback = match url.host_str() {
        Some("localhost") => true,
        Some(h) => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(format!(
            "{field}: must be an https URL (http is accepted only for localhost), got {text}"
        )),
    }
}

/// Why a body was not read in full.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Announced by `Content-Length` or found while streaming; nothing past the limit is kept.
    #[error("answer larger than {0} bytes")]
    TooLarge(usize),
    #[error("reading the answer: {0}")]
    Read(#[source] reqwest::Error),
}

/// Reads a response body, refusing more than `limit` bytes: at once when `Content-Length`
/// announces more, else as soon as the streamed chunks cross the limit.
pub async fn read_body(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    let announced = resp.content_length();
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    // The announced size is at most `limit` here, so it cannot make us reserve more.
    let mut body = Vec::with_capacity(announced.map_or(0, |n| n as usize));
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Read)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// [`read_body`] with its error as text, for callers that only log it.
pub async fn read_limited(resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    read_body(resp, limit).await.map_err(|e| e.to_string())
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    jwks_uri: String,
}

/// The `jwks_uri` of `issuer`, from its OIDC discovery document or else its RFC 8414 metadata;
/// the document must name exactly that issuer.
pub async fn discover(client: &reqwest::Client, issuer: &str) -> Result<reqwest::Url, String> {
    let base = issuer.trim_end_matches('/');
    let oidc = format!("{base}/.well-known/openid-configuration");
    let doc = match get_json::<Metadata>(client, &oidc).await {
        Ok(Some(doc)) => doc,
        // RFC 8414 puts the well-known segment between the host and the issuer's path.
        Ok(None) => {
            let url = check_url("issuer", issuer)?;
            let path = url.path().trim_end_matches('/');
            let mut meta = url.clone();
            meta.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
            get_json::<Metadata>(client, meta.as_str())
                .await?
                .ok_or_else(|| format!("{oidc}: not found (nor RFC 8414 metadata)"))?
        }
        Err(e) => return Err(e),
    };
    // OIDC Discovery 1.0 §4.3: the document must name exactly the issuer it was fetched for.
    if doc.issuer != issuer {
        return Err(format!(
            "{oidc}: names issuer {:?}, expected {issuer:?} exactly",
            doc.issuer
        ));
    }
    check_url("jwks_uri", &doc.jwks_uri)
}

/// `Ok(None)` on 404.
async fn get_json<T: serde::de::DeserializeOwned>(client: &reqwest::Client, url: &str) -> Result<Option<T>, String> {
    let resp = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !resp.status().is_success() {
        return Err(format!("{url}: HTTP {}", resp.status()));
    }
    let body = read_limited(resp, MAX_DOCUMENT_BYTES).await?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| format!("{url}: not the expected JSON ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_unless_loopback() {
        assert!(check_url("f", "https://idp.example.com").is_ok());
        assert!(check_url("f", "http://127.0.0.1:9/jwks").is_ok());
        assert!(check_url("f", "http://localhost/jwks").is_ok());
        assert!(check_url("f", "http://[::1]:8080/").is_ok());
        let e = check_url("auth.jwt.jwks_url", "http://idp.example.com/jwks").unwrap_err();
        assert!(e.starts_with("auth.jwt.jwks_url: must be an https URL"), "{e}");
        assert!(check_url("f", "not a url").is_err());
    }
}
