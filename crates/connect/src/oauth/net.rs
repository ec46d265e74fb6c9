//! The sign-in's HTTP exchanges (metadata, registration, token endpoint): one client without
//! redirects, bounded answers, and the rules for what may be contacted (https, or plain http to
//! this machine only). Text an endpoint wrote reaches an error message only cleaned.

use http::header;
use reqwest::Url;
use std::time::Duration;

/// A metadata, registration or token endpoint's time to answer.
pub(super) const TIMEOUT: Duration = Duration::from_secs(10);
/// Most of an answer that is read.
const MAX_BODY: usize = 256 * 1024;

/// An endpoint's answer.
pub(super) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub www_authenticate: Option<String>,
}

impl Answer {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// The client every exchange uses. No redirects: a redirected POST would carry a code, a
/// verifier or a refresh token somewhere else, and metadata must come from where it was asked.
pub(super) fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("could not build an HTTP client ({})", chain(&e)))
}

pub(super) async fn get(http: &reqwest::Client, url: &str) -> Result<Answer, String> {
    let resp = http
        .get(url)
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("{url} did not answer: {}", chain(&e.without_url())))?;
    read(url, resp).await
}

/// POSTs `body` (form-urlencoded or JSON, as `content_type` says).
pub(super) async fn post(
    http: &reqwest::Client,
    url: &str,
    content_type: &str,
    body: String,
) -> Result<Answer, String> {
    let resp = http
        .post(url)
        .header(header::ACCEPT, "application/json")
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("{url} did not answer: {}", chain(&e.without_url())))?;
    read(url, resp).await
}

async fn read(url: &str, mut resp: reqwest::Response) -> Result<Answer, String> {
    let status = resp.status().as_u16();
    let www_authenticate = resp
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("{url}: reading its answer: {}", chain(&e.without_url())))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("{url} answered {status} with more than {MAX_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        body,
        www_authenticate,
    })
}

/// A form body (`application/x-www-form-urlencoded`).
pub(super) fn form(pairs: &[(&str, &str)]) -> String {
    let mut f = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        f.append_pair(k, v);
    }
    f.finish()
}

/// An error with its causes ("connection refused" is in the source, not the top error).
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = c.source();
    }
    s
}

/// Text from an endpoint or a browser, fit for a log line: no control characters, bounded, and
/// none of `secrets` (an endpoint that echoes its input would put a code or token there).
pub(super) fn clean(s: &str, secrets: &[&str]) -> String {
    // Redacted before it is cut: a secret straddling the cut would leave its start behind.
    let mut s: String = s.chars().filter(|c| !c.is_control()).collect();
    for secret in secrets {
        if !secret.is_empty() {
            s = s.replace(secret, "<redacted>");
        }
    }
    s.chars().take(300).collect()
}

pub(super) fn is_loopback(url: &Url) -> bool {
    url.host_str().is_some_and(|h| {
        h.eq_ignore_ascii_case("localhost")
            || h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    })
}

/// `url` if it may be contacted: https, or plain http to a loopback host (a token, code or
/// refresh token sent in clear to another machine can be read on the way). `what` names it.
pub(super) fn checked_url(what: &str, url: &str) -> Result<Url, String> {
    let u = Url::parse(url).map_err(|e| format!("{what} {url:?} is not a URL ({e})"))?;
    match u.scheme() {
        "https" => Ok(u),
        "http" if is_loopback(&u) => Ok(u),
        "http" => Err(format!(
            "{what} {url} is plain http to another machine; OAuth needs https there (plain http only to 127.0.0.1, ::1 or localhost)"
        )),
        other => Err(format!("{what} {url}: {other}: is not http or https")),
    }
}

/// The RFC 6749 error code and description of a refusal, cleaned; and a one-line account.
pub(super) fn refusal(endpoint: &str, a: &Answer, secrets: &[&str]) -> (Option<String>, String) {
    let json = a.json();
    let text = |key: &str| {
        json.as_ref()
            .and_then(|j| j.get(key))
            .and_then(|v| v.as_str())
            .map(|s| clean(s, secrets))
    };
    let code = text("error");
    let mut msg = format!("{endpoint} answered {}", a.status);
    match (&code, text("error_description")) {
        (Some(c), Some(d)) => msg.push_str(&format!(" {c}: {d}")),
        (Some(c), None) => msg.push_str(&format!(" {c}")),
        _ if json.is_none() => msg.push_str(" (not JSON)"),
        _ => {}
    }
    (code, msg)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_https_or_loopback_http() {
        for ok in [
            "https://as.example/x",
            "http://127.0.0.1:8080/",
            "http://[::1]:9/",
            "http://localhost/",
        ] {
            assert!(checked_url("u", ok).is_ok(), "{ok}");
        }
        let e = checked_url("the issuer", "http://as.example/").unwrap_err();
        assert!(e.contains("plain http"), "{e}");
        assert!(checked_url("u", "ftp://x/").is_err());
        assert!(checked_url("u", "not a url").is_err());
    }

    #[test]
    fn cleaning_drops_control_characters_and_secrets() {
        assert_eq!(clean("bad code abc123\r\n", &["abc123"]), "bad code <redacted>");
        assert_eq!(clean(&"x".repeat(1000), &[]).len(), 300);
    }
}
