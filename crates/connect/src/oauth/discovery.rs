//! Where to sign in (MCP authorization 2025-11-25 "Authorization Server Discovery"): the MCP
//! server's protected-resource metadata (RFC 9728) names its authorization servers; the first
//! one's metadata (RFC 8414, or OpenID Connect discovery) gives the endpoints. The metadata's
//! `issuer` must be exactly the URL it was fetched for (RFC 8414 §3.3: otherwise another server
//! could pose as it), PKCE S256 must be offered (MCP: else do not proceed), and every URL must be
//! https or loopback http.

use super::net;
use reqwest::Url;

/// What a `WWW-Authenticate: Bearer …` challenge says (RFC 6750 §3, RFC 9728 §5.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Challenge {
    pub resource_metadata: Option<String>,
    pub scope: Option<String>,
    pub error: Option<String>,
}

/// Reads the Bearer challenge among those in a `WWW-Authenticate` value; quoted strings may hold
/// commas, spaces and backslash escapes.
pub(super) fn parse_challenge(value: &str) -> Challenge {
    let mut out = Challenge::default();
    let chars: Vec<char> = value.chars().collect();
    let mut i = 0;
    let mut in_bearer = false;
    let skip = |i: &mut usize, also: &[char]| {
        while *i < chars.len() && (chars[*i].is_whitespace() || also.contains(&chars[*i])) {
            *i += 1;
        }
    };
    while i < chars.len() {
        skip(&mut i, &[',']);
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && chars[i] != ',' && chars[i] != '=' {
            i += 1;
        }
        let name: String = chars[start..i].iter().collect();
        if name.is_empty() {
            // A stray '=' (token68 padding): step over it.
            i += 1;
            continue;
        }
        let mut j = i;
        skip(&mut j, &[]);
        if j < chars.len() && chars[j] == '=' {
            j += 1;
            skip(&mut j, &[]);
            let mut v = String::new();
            if j < chars.len() && chars[j] == '"' {
                j += 1;
                while j < chars.len() && chars[j] != '"' {
                    if chars[j] == '\\' && j + 1 < chars.len() {
                        j += 1;
                    }
                    v.push(chars[j]);
                    j += 1;
                }
                j += 1;
            } else {
                while j < chars.len() && chars[j] != ',' && !chars[j].is_whitespace() {
                    v.push(chars[j]);
                    j += 1;
                }
            }
            i = j;
            if in_bearer {
                let slot = match name.to_ascii_lowercase().as_str() {
                    "resource_metadata" => &mut out.resource_metadata,
                    "scope" => &mut out.scope,
                    "error" => &mut out.error,
                    _ => continue,
                };
                if slot.is_none() {
                    *slot = Some(v);
                }
            }
        } else {
            // A name with no '=' starts a new challenge.
            in_bearer = name.eq_ignore_ascii_case("bearer");
        }
    }
    out
}

/// What the sign-in needs to know about the MCP server and its authorization server.
#[derive(Debug, Clone)]
pub(super) struct Discovered {
    pub scopes_supported: Vec<String>,
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub registration_endpoint: Option<String>,
    /// RFC 9207: the authorization response carries `iss`, and it must then be there.
    pub iss_parameter_supported: bool,
}

/// The well-known URL of `kind` for `url` (RFC 8414 §3.1 / RFC 9728 §3.1: inserted between the
/// host and the path), and the root form when `url` has a path.
fn well_known(url: &Url, kind: &str) -> Vec<String> {
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    let mut v = Vec::new();
    if !path.is_empty() {
        v.push(format!("{origin}/.well-known/{kind}{path}"));
    }
    v.push(format!("{origin}/.well-known/{kind}"));
    v
}

/// The first of `urls` that answers 200 with a JSON object, or what each said.
async fn first_json(http: &reqwest::Client, urls: &[String]) -> Result<serde_json::Value, Vec<String>> {
    let mut tried = Vec::new();
    for url in urls {
        match net::get(http, url).await {
            Ok(a) if a.status == 200 => match a.json() {
                Some(j) if j.is_object() => return Ok(j),
                _ => tried.push(format!("{url}: not a JSON object")),
            },
            Ok(a) => tried.push(format!("{url}: {}", a.status)),
            Err(e) => tried.push(e),
        }
    }
    Err(tried)
}

fn str_field(j: &serde_json::Value, key: &str) -> Option<String> {
    j.get(key).and_then(|v| v.as_str()).map(str::to_string)
}

/// Two resource identifiers that name the same thing (scheme and host are case-insensitive; a
/// trailing slash is not a different resource to most servers).
fn same_resource(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        Url::parse(s)
            .map(|u| u.as_str().trim_end_matches('/').to_string())
            .unwrap_or_else(|_| s.trim_end_matches('/').to_string())
    };
    norm(a) == norm(b)
}

/// The metadata's `resource` is the MCP URL, or a prefix of it ending at a `/` (metadata served
/// at the root for the whole origin).
fn covers(resource: &str, mcp_url: &str) -> bool {
    same_resource(resource, mcp_url) || mcp_url.starts_with(&format!("{}/", resource.trim_end_matches('/')))
}

/// Discovery for the MCP server at `mcp_url`. `hint` is the `resource_metadata` of a challenge,
/// asked first; without one the well-known URLs are, then the server itself for its challenge.
pub(super) async fn discover(http: &reqwest::Client, mcp_url: &str, hint: Option<&str>) -> Result<Discovered, String> {
    let mcp = net::checked_url("the MCP URL", mcp_url)?;
    let mut candidates = Vec::new();
    if let Some(h) = hint {
        net::checked_url("the resource_metadata URL of the server's challenge", h)?;
        candidates.push(h.to_string());
    }
    candidates.extend(well_known(&mcp, "oauth-protected-resource"));
    let prm = match first_json(http, &candidates).await {
        Ok(j) => j,
        Err(mut tried) => {
            // The server's own 401 may point elsewhere (RFC 9728 §5.1).
            let probe = net::get(http, mcp.as_str()).await;
            let pointed = probe
                .as_ref()
                .ok()
                .filter(|a| a.status == 401)
                .and_then(|a| a.www_authenticate.as_deref())
                .and_then(|c| parse_challenge(c).resource_metadata)
                .filter(|u| !candidates.contains(u));
            match pointed {
                Some(u) => {
                    net::checked_url("the resource_metadata URL of the server's challenge", &u)?;
                    first_json(http, std::slice::from_ref(&u)).await.map_err(|t| {
                        tried.extend(t);
                        no_metadata(mcp_url, &tried)
                    })?
                }
                None => {
                    tried.push(match probe {
                        Ok(a) => format!("{mcp_url}: {} with no resource_metadata challenge", a.status),
                        Err(e) => e,
                    });
                    return Err(no_metadata(mcp_url, &tried));
                }
            }
        }
    };
    // RFC 9728 §3.3: `resource` is required and must be the resource asked about.
    let Some(resource) = str_field(&prm, "resource") else {
        return Err(format!(
            "the protected-resource metadata for {mcp_url} names no resource: refusing to sign in"
        ));
    };
    if !covers(&resource, mcp_url) {
        return Err(format!(
            "the protected-resource metadata is for {resource}, not {mcp_url}: refusing to sign in for another server"
        ));
    }
    let Some(issuer) = prm
        .get("authorization_servers")
        .and_then(|v| v.as_array())
        .and_then(|a| a.first())
        .and_then(|v| v.as_str())
        .map(str::to_string)
    else {
        return Err(format!(
            "the protected-resource metadata of {mcp_url} names no authorization server (authorization_servers)"
        ));
    };
    let scopes_supported = prm
        .get("scopes_supported")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default();

    let as_url = net::checked_url("the authorization server", &issuer)?;
    let mut meta_urls = well_known(&as_url, "oauth-authorization-server");
    meta_urls.truncate(1);
    let path = as_url.path().trim_end_matches('/');
    let origin = as_url.origin().ascii_serialization();
    if path.is_empty() {
        meta_urls.push(format!("{origin}/.well-known/openid-configuration"));
    } else {
        meta_urls.push(format!("{origin}/.well-known/openid-configuration{path}"));
        meta_urls.push(format!("{origin}{path}/.well-known/openid-configuration"));
    }
    let meta = first_json(http, &meta_urls).await.map_err(|tried| {
        format!(
            "no authorization server metadata for {issuer} (tried {})",
            tried.join("; ")
        )
    })?;
    match str_field(&meta, "issuer") {
        Some(i) if i == issuer => {}
        Some(i) => {
            return Err(format!(
                "the authorization server metadata names issuer {}, not {issuer} as the MCP server says: refusing it (RFC 8414 §3.3)",
                net::clean(&i, &[])
            ));
        }
        None => return Err(format!("the authorization server metadata for {issuer} has no issuer")),
    }
    let s256 = meta
        .get("code_challenge_methods_supported")
        .and_then(|v| v.as_array())
        .is_some_and(|a| a.iter().any(|m| m.as_str() == Some("S256")));
    if !s256 {
        return Err(format!(
            "the authorization server {issuer} does not offer PKCE S256 (code_challenge_methods_supported); MCP clients must not sign in without it"
        ));
    }
    let endpoint = |key: &str| -> Result<Option<String>, String> {
        match str_field(&meta, key) {
            Some(u) => net::checked_url(&format!("the {key}"), &u).map(|_| Some(u)),
            None => Ok(None),
        }
    };
    let authorization_endpoint = endpoint("authorization_endpoint")?
        .ok_or_else(|| format!("the authorization server {issuer} has no authorization_endpoint"))?;
    let token_endpoint = endpoint("token_endpoint")?
        .ok_or_else(|| format!("the authorization server {issuer} has no token_endpoint"))?;
    Ok(Discovered {
        scopes_supported,
        authorization_endpoint,
        token_endpoint,
        registration_endpoint: endpoint("registration_endpoint")?,
        iss_parameter_supported: meta
            .get("authorization_response_iss_parameter_supported")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
        issuer,
    })
}

fn no_metadata(mcp_url: &str, tried: &[String]) -> String {
    format!(
        "{mcp_url} publishes no OAuth protected-resource metadata (tried {}); does it support OAuth sign-in?",
        tried.join("; ")
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn challenges() {
        let c = parse_challenge(
            r#"Bearer error="insufficient_scope", scope="read admin", resource_metadata="https://x/.well-known/oauth-protected-resource/mcp""#,
        );
        assert_eq!(c.error.as_deref(), Some("insufficient_scope"));
        assert_eq!(c.scope.as_deref(), Some("read admin"));
        assert_eq!(
            c.resource_metadata.as_deref(),
            Some("https://x/.well-known/oauth-protected-resource/mcp")
        );
        let c = parse_challenge(r#"Basic realm="a, b", bearer scope=read,resource_metadata="u\"v""#);
        assert_eq!(c.scope.as_deref(), Some("read"));
        assert_eq!(c.resource_metadata.as_deref(), Some("u\"v"));
        let c = parse_challenge(r#"Basic abc==, Bearer"#);
        assert_eq!(c, Challenge::default());
        assert_eq!(parse_challenge(r#"Basic scope="x""#), Challenge::default());
        for junk in [
            "",
            "=",
            "\"",
            "Bearer scope=\"unterminated",
            "Bearer ,,,= =\\",
            "Bearer scope=\"a\\",
        ] {
            let _ = parse_challenge(junk);
        }
    }

    #[test]
    fn well_known_urls() {
        let u = Url::parse("https://h.example:8443/a/mcp/").unwrap();
        assert_eq!(
            well_known(&u, "oauth-protected-resource"),
            [
                "https://h.example:8443/.well-known/oauth-protected-resource/a/mcp",
                "https://h.example:8443/.well-known/oauth-protected-resource"
            ]
        );
        let u = Url::parse("https://h.example").unwrap();
        assert_eq!(
            well_known(&u, "oauth-authorization-server"),
            ["https://h.example/.well-known/oauth-authorization-server"]
        );
    }

    #[test]
    fn resources() {
        assert!(same_resource("HTTPS://H.example/mcp/", "https://h.example/mcp"));
        assert!(!same_resource("https://h.example/other", "https://h.example/mcp"));
        assert!(covers("https://h.example", "https://h.example/mcp"));
        assert!(covers("https://h.example/", "https://h.example/mcp"));
        assert!(!covers("https://h.example/mc", "https://h.example/mcp"));
        assert!(!covers("https://other.example/mcp", "https://h.example/mcp"));
    }
}
