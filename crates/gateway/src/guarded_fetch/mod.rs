//! Fetching a URL that an untrusted party chose — an OAuth Client ID Metadata Document (its
//! `client_id` is an https URL), later a client's `jwks_uri` — without Server-Side Request
//! Forgery: the gateway must not become a way to reach its own network.
//!
//! Each hop is checked before any packet leaves: the scheme (https; plain http only to an
//! operator-trusted network), no user info, no fragment; the host is resolved here and every
//! address it resolves to must be public (or trusted). The connection then goes to exactly the
//! addresses checked: a fresh client per hop whose DNS resolver answers only that host name, with
//! those addresses, and fails any other name — so a second lookup (DNS rebinding) cannot change
//! the destination. TLS still verifies the certificate for the URL's host name: the name in the
//! URL is untouched, only its resolution is pinned. Redirects are followed here, one hop at a
//! time, each checked like the first. The whole fetch — resolve, connect, headers, redirects,
//! body — runs under one deadline, and the body is refused as soon as it crosses the size limit.

mod address;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use reqwest::header::{ACCEPT, CACHE_CONTROL, HeaderMap, LOCATION};
use reqwest::{StatusCode, Url};

pub use address::{Forbidden, Network, check as check_address};

use crate::auth::fetch::{BodyError, read_body};

/// A URL longer than this is refused before parsing (and never echoed into a log whole).
pub const MAX_URL_LEN: usize = 2048;

/// What a fetch may do.
#[derive(Debug, Clone)]
pub struct FetchPolicy {
    /// Networks an operator trusts despite being private (e.g. `127.0.0.0/8`, `10.0.0.0/8`,
    /// `::1/128`); plain http is allowed only to addresses in them. Empty by default.
    pub trusted_networks: Vec<Network>,
    /// Largest body accepted. Default 64 KiB.
    pub max_bytes: usize,
    /// The whole fetch, redirects and body included. Default 5 s.
    pub timeout: Duration,
    /// Redirects followed before giving up. Default 3.
    pub max_redirects: usize,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            trusted_networks: Vec::new(),
            max_bytes: 64 * 1024,
            timeout: Duration::from_secs(5),
            max_redirects: 3,
        }
    }
}

impl FetchPolicy {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted_networks.iter().any(|n| n.contains(ip))
    }
}

/// A fetched document.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub body: Vec<u8>,
    /// The URL the body came from, after redirects.
    pub url: Url,
    /// `Cache-Control: max-age`; `None` when absent or with `no-store`/`no-cache`.
    pub max_age: Option<Duration>,
    /// The media type of `Content-Type`, lower-cased, without parameters.
    pub content_type: Option<String>,
}

/// Why a fetch was refused or failed. Messages name the URL or host and the reason, never a
/// response body, and never the user info of a URL.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: not a usable URL: {reason}")]
    BadUrl { url: String, reason: &'static str },
    #[error("{url}: must be https (plain http is allowed only to a trusted network)")]
    NotHttps { url: String },
    #[error("{url}: a URL carrying a user name or password is refused")]
    UserInfoInUrl { url: String },
    #[error("{host}: address {addr} is {reason}: refused")]
    ForbiddenAddress {
        host: String,
        addr: IpAddr,
        reason: Forbidden,
    },
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("{url}: cannot connect: {reason}")]
    Connect { url: String, reason: String },
    #[error("{url}: request failed: {reason}")]
    Request { url: String, reason: String },
    #[error("{url}: HTTP status {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: answer larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("{url}: reading the answer: {reason}")]
    Body { url: String, reason: String },
    #[error("{url}: not fetched within {limit:?}")]
    Timeout { url: String, limit: Duration },
    #[error("{url}: more than {max} redirects")]
    TooManyRedirects { url: String, max: usize },
    #[error("{url}: bad redirect: {reason}")]
    BadRedirect { url: String, reason: &'static str },
}

/// Fetches `url` under `policy` (see the module's documentation for what is checked).
pub async fn fetch(url: &str, policy: &FetchPolicy) -> Result<Fetched, FetchError> {
    match tokio::time::timeout(policy.timeout, fetch_inner(url, policy)).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::Timeout {
            url: shown(url),
            limit: policy.timeout,
        }),
    }
}

async fn fetch_inner(text: &str, policy: &FetchPolicy) -> Result<Fetched, FetchError> {
    if text.len() > MAX_URL_LEN {
        return Err(FetchError::BadUrl {
            url: shown(text),
            reason: "longer than 2048 bytes",
        });
    }
    let mut url = Url::parse(text).map_err(|_| FetchError::BadUrl {
        url: shown(text),
        reason: "does not parse",
    })?;
    if url.fragment().is_some() {
        return Err(FetchError::BadUrl {
            url: redacted(&url),
            reason: "has a fragment",
        });
    }
    let mut redirects = 0;
    loop {
        let target = check_target(&url, policy).await?;
        let resp = send(&url, &target).await?;
        let status = resp.status();
        if is_redirect(status) {
            if redirects == policy.max_redirects {
                return Err(FetchError::TooManyRedirects {
                    url: redacted(&url),
                    max: policy.max_redirects,
                });
            }
            redirects += 1;
            url = next_hop(&url, resp.headers())?;
            // The redirect's own body is never read: dropping `resp` closes its connection.
            continue;
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                url: redacted(&url),
                status: status.as_u16(),
            });
        }
        let max_age = max_age(resp.headers());
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|t| t.trim().to_ascii_lowercase());
        let body = read_body(resp, policy.max_bytes).await.map_err(|e| match e {
            BodyError::TooLarge(limit) => FetchError::TooLarge {
                url: redacted(&url),
                limit,
            },
            BodyError::Read(e) => FetchError::Body {
                url: redacted(&url),
                reason: chain(&e),
            },
        })?;
        return Ok(Fetched {
            body,
            url,
            max_age,
            content_type,
        });
    }
}

/// Where one hop may connect: the host name as written in the URL (for the resolver pin) and the
/// addresses checked for it.
struct Target {
    host: String,
    addrs: Vec<SocketAddr>,
}

/// The checks of one hop, in order: scheme, user info, host; then every address the host
/// resolves to must be public or trusted, and plain http needs them all trusted.
async fn check_target(url: &Url, policy: &FetchPolicy) -> Result<Target, FetchError> {
    let https = match url.scheme() {
        "https" => true,
        "http" => false,
        _ => return Err(FetchError::NotHttps { url: redacted(url) }),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FetchError::UserInfoInUrl { url: redacted(url) });
    }
    let port = url.port_or_known_default().ok_or_else(|| FetchError::BadUrl {
        url: redacted(url),
        reason: "no port",
    })?;
    let Some(host) = url.host_str() else {
        return Err(FetchError::BadUrl {
            url: redacted(url),
            reason: "no host",
        });
    };
    // The parser has already turned every IPv4 spelling (0x7f.1, 2130706433…) into dotted form.
    let addrs = match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => resolve(host, port).await?,
    };
    let host = host.to_owned();
    for addr in &addrs {
        let ip = addr.ip();
        if policy.trusts(ip) {
            continue;
        }
        if let Err(reason) = check_address(ip) {
            return Err(FetchError::ForbiddenAddress { host, addr: ip, reason });
        }
        if !https {
            return Err(FetchError::NotHttps { url: redacted(url) });
        }
    }
    Ok(Target { host, addrs })
}

async fn resolve(name: &str, port: u16) -> Result<Vec<SocketAddr>, FetchError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
        .await
        .map_err(|e| FetchError::Resolve {
            host: name.to_owned(),
            reason: e.to_string(),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(FetchError::Resolve {
            host: name.to_owned(),
            reason: "no addresses".to_owned(),
        });
    }
    Ok(addrs)
}

/// One GET, to the checked addresses only, never following a redirect by itself.
async fn send(url: &Url, target: &Target) -> Result<reqwest::Response, FetchError> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Pinned {
            host: target.host.clone(),
            addrs: target.addrs.clone(),
        })
        .pool_max_idle_per_host(0)
        .user_agent(concat!("mcpgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| FetchError::Request {
            url: redacted(url),
            reason: format!("cannot build the HTTP client: {}", chain(&e)),
        })?;
    client
        .get(url.clone())
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| {
            let reason = chain(&e);
            if e.is_connect() {
                FetchError::Connect {
                    url: redacted(url),
                    reason,
                }
            } else {
                FetchError::Request {
                    url: redacted(url),
                    reason,
                }
            }
        })
}

/// The DNS of one hop's client: the checked addresses for the checked name, an error for any
/// other name. (An IP-literal URL never reaches a resolver: it is connected to as written.)
struct Pinned {
    host: String,
    addrs: Vec<SocketAddr>,
}

impl reqwest::dns::Resolve for Pinned {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let answer: Result<reqwest::dns::Addrs, Box<dyn std::error::Error + Send + Sync>> =
            if name.as_str().eq_ignore_ascii_case(&self.host) {
                Ok(Box::new(self.addrs.clone().into_iter()))
            } else {
                Err(format!("{} is not the checked host {}", name.as_str(), self.host).into())
            };
        Box::pin(std::future::ready(answer))
    }
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The next URL from `Location`, resolved against the current one. A fragment in it is dropped:
/// it is never sent, and the document fetched is the same without it.
fn next_hop(current: &Url, headers: &HeaderMap) -> Result<Url, FetchError> {
    let bad = |reason| FetchError::BadRedirect {
        url: redacted(current),
        reason,
    };
    let location = headers.get(LOCATION).ok_or_else(|| bad("no Location header"))?;
    let location = location.to_str().map_err(|_| bad("Location is not ASCII"))?;
    if location.len() > MAX_URL_LEN {
        return Err(bad("Location longer than 2048 bytes"));
    }
    let mut next = current.join(location).map_err(|_| bad("Location is not a URL"))?;
    next.set_fragment(None);
    Ok(next)
}

/// `max-age` of every `Cache-Control` header; `None` if absent, unparsable, or with `no-store` or
/// `no-cache`. Two `max-age` values: the smaller.
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut age: Option<u64> = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else {
            return None;
        };
        for directive in value.split(',').map(str::trim) {
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (directive, None),
            };
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                return None;
            }
            if name.eq_ignore_ascii_case("max-age") {
                let secs = arg?.parse::<u64>().ok()?;
                age = Some(age.map_or(secs, |a| a.min(secs)));
            }
        }
    }
    age.map(Duration::from_secs)
}

/// `url` without its user info, for messages.
fn redacted(url: &Url) -> String {
    let mut url = url.clone();
    // Both fail only for URLs that cannot have user info, which then have none to hide.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

/// An unparsed URL for messages: at most 200 characters, user info cut out when it parses.
fn shown(text: &str) -> String {
    let text = match Url::parse(text) {
        Ok(url) => redacted(&url),
        // Unparsed text might still carry a password: keep only what follows the last `@`.
        Err(_) => match text.rsplit_once('@') {
            Some((_, after)) => format!("…@{after}"),
            None => text.to_owned(),
        },
    };
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// An error and its causes on one line (reqwest's own message leaves the cause out).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::dns::Resolve as _;
    use reqwest::header::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(CACHE_CONTROL, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn cache_control() {
        let secs = |v: &[&str]| max_age(&headers(v)).map(|d| d.as_secs());
        assert_eq!(secs(&["public, max-age=300"]), Some(300));
        assert_eq!(secs(&["Max-Age=\"60\""]), Some(60));
        assert_eq!(secs(&["max-age=300", "max-age=30"]), Some(30));
        assert_eq!(secs(&["no-store"]), None);
        assert_eq!(secs(&["max-age=300, no-cache"]), None);
        assert_eq!(secs(&["public"]), None);
        assert_eq!(secs(&["max-age=soon"]), None);
        assert_eq!(secs(&[]), None);
    }

    #[test]
    fn redirect_targets() {
        let here = Url::parse("https://a.example/dir/doc.json").unwrap();
        let mut h = HeaderMap::new();
        assert!(matches!(next_hop(&here, &h), Err(FetchError::BadRedirect { .. })));
        h.insert(LOCATION, HeaderValue::from_static("other.json#frag"));
        assert_eq!(
            next_hop(&here, &h).unwrap().as_str(),
            "https://a.example/dir/other.json"
        );
        h.insert(LOCATION, HeaderValue::from_static("//b.example/x"));
        assert_eq!(next_hop(&here, &h).unwrap().as_str(), "https://b.example/x");
        h.insert(LOCATION, HeaderValue::from_static("http://[::1"));
        assert!(matches!(next_hop(&here, &h), Err(FetchError::BadRedirect { .. })));
    }

    #[test]
    fn messages_hide_user_info() {
        assert_eq!(shown("https://me:secret@a.example/x"), "https://a.example/x");
        assert_eq!(shown("https://me:secret@[bad/x"), "…@[bad/x");
        assert!(shown(&"a".repeat(5000)).chars().count() <= 201);
    }

    #[tokio::test]
    async fn plain_http_only_to_trusted_networks() {
        // IP literals only: these checks do no I/O.
        let check = |u: &str, p: &FetchPolicy| {
            let u = Url::parse(u).unwrap();
            let p = p.clone();
            async move { check_target(&u, &p).await.map(|t| t.addrs) }
        };
        let public = FetchPolicy::default();
        let lan = FetchPolicy {
            trusted_networks: vec![Network::parse("10.0.0.0/8").unwrap()],
            ..FetchPolicy::default()
        };
        let at = |s: &str| vec![s.parse::<SocketAddr>().unwrap()];
        assert_eq!(check("https://8.8.8.8/", &public).await.unwrap(), at("8.8.8.8:443"));
        assert_eq!(
            check("https://[2606:4700::1111]:8443/", &public).await.unwrap(),
            at("[2606:4700::1111]:8443")
        );
        assert!(matches!(
            check("http://8.8.8.8/", &public).await,
            Err(FetchError::NotHttps { .. })
        ));
        assert_eq!(check("http://10.1.2.3/", &lan).await.unwrap(), at("10.1.2.3:80"));
        assert_eq!(check("https://10.1.2.3/", &lan).await.unwrap(), at("10.1.2.3:443"));
        assert!(matches!(
            check("http://8.8.8.8/", &lan).await,
            Err(FetchError::NotHttps { .. })
        ));
        assert!(matches!(
            check("https://192.168.0.1/", &lan).await,
            Err(FetchError::ForbiddenAddress { .. })
        ));
    }

    /// The connection goes to the checked address even for a name DNS has never heard of, and a
    /// name other than the checked one is never looked up elsewhere.
    #[tokio::test]
    async fn the_connection_goes_to_the_pinned_address_only() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 2048];
            let n = s.read(&mut buf).await.unwrap();
            s.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        let url = Url::parse(&format!("http://pinned.invalid:{}/doc", addr.port())).unwrap();
        let target = Target {
            host: "pinned.invalid".to_owned(),
            addrs: vec![addr],
        };
        let resp = send(&url, &target).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        let head = server.await.unwrap().to_ascii_lowercase();
        assert!(
            head.contains(&format!("host: pinned.invalid:{}", addr.port())),
            "{head}"
        );

        let other = Url::parse(&format!("http://localhost:{}/doc", addr.port())).unwrap();
        let err = send(&other, &target).await.unwrap_err();
        assert!(err.to_string().contains("is not the checked host"), "{err}");
    }

    #[tokio::test]
    async fn pinned_resolver_answers_only_the_checked_name() {
        let addr: SocketAddr = "93.184.215.14:443".parse().unwrap();
        let pinned = Pinned {
            host: "a.example".to_owned(),
            addrs: vec![addr],
        };
        let got: Vec<_> = pinned.resolve("A.example".parse().unwrap()).await.unwrap().collect();
        assert_eq!(got, vec![addr]);
        assert!(pinned.resolve("b.example".parse().unwrap()).await.is_err());
    }
}
