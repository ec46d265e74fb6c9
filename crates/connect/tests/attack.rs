//! An outside attacker's view of mcpgate-connect: each test tries one attack and shows that it
//! fails (the property holds). Raw TCP servers on 127.0.0.1 stand in for hostile peers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::Method;
use mcpgate_connect::auth::{
    Bearer, ClientCredentials, ClientCredentialsConfig, Hmac, Jwt, JwtConfig, KeyPair, TokenAuth, parse_claim,
};
use mcpgate_connect::bridge::{self, Options};
use mcpgate_connect::profile::{self, Flags};
use mcpgate_connect::retry::Policy;
use mcpgate_connect::{Auth, Secret};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const SECRET: &str = "attack-secret-0123456789abcdefghijklmnop";

fn env(name: &str) -> Option<String> {
    match name {
        "S" => Some(SECRET.to_string()),
        "S2" => Some(format!("{SECRET}-2")),
        "CRLF" => Some("ok\r\nX-Injected: 1".to_string()),
        _ => None,
    }
}

/// A raw HTTP/1.1 server: records each request head+body, answers with `answer(n, request)`.
async fn raw_server(
    answer: impl Fn(usize, &str) -> String + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else { return };
            let log = log.clone();
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            let n = {
                                let mut g = log.lock().unwrap();
                                g.push(text.clone());
                                g.len()
                            };
                            let resp = answer(n, &text);
                            let _ = s.write_all(resp.as_bytes()).await;
                            let _ = s.shutdown().await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), seen)
}

fn http_json(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Runs the bridge on `lines` (stdin), returning what it wrote on stdout.
async fn bridge_run(opts: Options, lines: &[u8]) -> String {
    let (mut host_in, bridge_in) = tokio::io::duplex(1 << 20);
    let (bridge_out, host_out) = tokio::io::duplex(1 << 20);
    let task = tokio::spawn(bridge::run(opts, bridge_in, bridge_out));
    host_in.write_all(lines).await.unwrap();
    drop(host_in);
    let mut out = String::new();
    let mut r = BufReader::new(host_out);
    let mut line = String::new();
    while tokio::time::timeout(Duration::from_secs(20), r.read_line(&mut line))
        .await
        .unwrap()
        .unwrap()
        > 0
    {
        out.push_str(&line);
        line.clear();
    }
    let _ = task.await;
    out
}

fn fast_policy() -> Policy {
    Policy {
        max_attempts: 2,
        base: Duration::from_millis(10),
        cap: Duration::from_millis(20),
        max_retry_after: Duration::from_millis(50),
        ..Policy::default()
    }
}

// ---- secrets in Debug, Display and describe() ----

// Attack: read a secret out of any provider's Debug/describe (logs, panics, `{:?}` in an error).
#[test]
fn no_provider_prints_its_secret() {
    let s = Secret::new(SECRET);
    let s2 = Secret::new(format!("{SECRET}-2"));
    let pair = KeyPair::new(&s, Some(&s2), None).unwrap();
    let bearer = Bearer::new(&s).unwrap();
    let hmac = Hmac::new(s.clone(), "kid", None).unwrap();
    let jwt = Jwt::new(JwtConfig {
        secret: s.clone(),
        claims: Default::default(),
        ttl: Duration::from_secs(60),
        audience: Default::default(),
    })
    .unwrap();
    let cc = ClientCredentials::new(ClientCredentialsConfig {
        token_url: "https://as.example/token".into(),
        client_id: "cid".into(),
        client_secret: s.clone(),
        scope: None,
        resource: None,
        token_auth: TokenAuth::Basic,
    })
    .unwrap();
    let shown = [
        format!("{s:?}"),
        format!("{pair:?} {}", pair.describe()),
        format!("{bearer:?} {}", bearer.describe()),
        format!("{hmac:?} {}", hmac.describe()),
        format!("{jwt:?} {}", jwt.describe()),
        format!("{cc:?} {}", cc.describe()),
    ];
    for text in shown {
        assert!(!text.contains(SECRET), "{text}");
    }
}

// Attack: a resolved connection (flags + env) printed with {:?} leaks a key or the JWT secret.
#[test]
fn resolved_debug_and_errors_hold_no_secret() {
    let flags = Flags {
        url: Some("https://mcp.example/mcp".into()),
        key: Some("env:S".into()),
        fallback_key: Some("env:S2".into()),
        jwt_secret: Some("env:S".into()),
        hmac_secret: Some("env:S".into()),
        hmac_key_id: Some("kid".into()),
        hmac_key_header: Some("X-Key-Id".into()),
        headers: vec!["X-Secret-Token: env:S".into()],
        ..Flags::default()
    };
    let r = profile::resolve(flags, &env, None).unwrap();
    assert!(!format!("{r:?}").contains(SECRET));
    // A secret given inline on the command line is refused, and the error does not echo it.
    for flags in [
        Flags {
            url: Some("https://x/mcp".into()),
            key: Some(SECRET.into()),
            ..Flags::default()
        },
        Flags {
            url: Some("https://x/mcp".into()),
            bearer: Some(SECRET.into()),
            ..Flags::default()
        },
        Flags {
            url: Some("https://x/mcp".into()),
            headers: vec![format!("no colon {SECRET}")],
            ..Flags::default()
        },
    ] {
        let e = profile::resolve(flags, &env, None).unwrap_err();
        assert!(!e.to_string().contains(SECRET), "{e}");
        assert!(!format!("{e:?}").contains(SECRET), "{e:?}");
    }
}

// ---- header injection ----

// Attack: CR/LF (header splitting) through --header, an env value, --tenant or --key-header.
#[test]
fn header_crlf_injection_is_refused() {
    let base = || Flags {
        url: Some("https://x/mcp".into()),
        ..Flags::default()
    };
    let cases = [
        Flags {
            headers: vec!["X-A: ok\r\nX-Injected: 1".into()],
            ..base()
        },
        Flags {
            headers: vec!["X-A: env:CRLF".into()],
            ..base()
        },
        Flags {
            tenant: Some("acme\nX-Injected: 1".into()),
            ..base()
        },
        Flags {
            key: Some("env:CRLF".into()),
            ..base()
        },
        Flags {
            key: Some("env:S".into()),
            key_header: Some("X-Key\r\nX-Injected".into()),
            ..base()
        },
        Flags {
            headers: vec!["X-A\r\nX-B: v".into()],
            ..base()
        },
        // The transport's own headers cannot be overridden (session fixation, content smuggling).
        Flags {
            headers: vec!["Mcp-Session-Id: attacker-session".into()],
            ..base()
        },
        Flags {
            headers: vec!["Content-Length: 0".into()],
            ..base()
        },
    ];
    for flags in cases {
        let shown = format!("{flags:?}");
        assert!(profile::resolve(flags, &env, None).is_err(), "{shown}");
    }
}

// ---- JWT claim injection ----

// Attack: override exp/iat/aud through --jwt-claim (an eternal or backdated token).
#[test]
fn jwt_reserved_claims_cannot_be_injected() {
    for spec in [
        "exp=99999999999",
        "exp:=99999999999",
        " exp =1",
        "exp :=1",
        "iat=0",
        "iat:=0",
        "aud=https://other.example",
        "aud:=[\"a\"]",
        "=x",
    ] {
        assert!(parse_claim(spec).is_err(), "{spec}");
    }
    // A value containing '=' stays one string, not a second claim.
    assert_eq!(parse_claim("sub=a=exp").unwrap().1, serde_json::json!("a=exp"));
}

// Attack: a profile's [jwt_claims] table sets exp.
#[test]
fn profile_jwt_claims_cannot_set_exp() {
    let dir = tempfile::tempdir().unwrap();
    write_profile(
        dir.path(),
        "[profiles.p]\nurl = \"https://x/mcp\"\njwt_secret = \"env:S\"\n[profiles.p.jwt_claims]\nexp = 99999999999\n",
    );
    let flags = Flags {
        profile: Some("p".into()),
        ..Flags::default()
    };
    assert!(profile::resolve(flags, &env, Some(dir.path())).is_err());
}

// ---- profile file ----

fn write_profile(dir: &std::path::Path, text: &str) {
    let path = dir.join(profile::FILE_NAME);
    std::fs::write(&path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

// Attack: a literal secret in connect.toml (committed, backed up) is accepted, or echoed in the error.
#[test]
fn profile_refuses_literal_secrets_without_echoing_them() {
    for body in [
        format!("key = \"{SECRET}\""),
        format!("bearer = \"{SECRET}\""),
        format!("client_secret = \"{SECRET}\""),
        format!("headers = {{ \"Authorization\" = \"Bearer {SECRET}\" }}"),
        format!("headers = {{ \"X-Api-Key\" = \"{SECRET}\" }}"),
        // A typo'd field name holding a secret: refused (deny_unknown_fields), not echoed.
        format!("api_key = \"{SECRET}\""),
        // A secret of the wrong type: refused, not quoted back.
        "key = 123456789012345".to_string(),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_profile(dir.path(), &format!("[profiles.p]\nurl = \"https://x/mcp\"\n{body}\n"));
        let flags = Flags {
            profile: Some("p".into()),
            ..Flags::default()
        };
        let e = profile::resolve(flags, &env, Some(dir.path())).unwrap_err().to_string();
        assert!(!e.contains(SECRET) && !e.contains("123456789012345"), "{e}");
    }
}

// Attack: another user who can write connect.toml redirects your keys to their server.
#[cfg(unix)]
#[test]
fn profile_writable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    write_profile(
        dir.path(),
        "[profiles.p]\nurl = \"https://evil.example/mcp\"\nkey = \"env:S\"\n",
    );
    let path = dir.path().join(profile::FILE_NAME);
    for mode in [0o620, 0o602, 0o666] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let flags = Flags {
            profile: Some("p".into()),
            ..Flags::default()
        };
        assert!(profile::resolve(flags, &env, Some(dir.path())).is_err(), "{mode:o}");
    }
}

// ---- the bridge against a hostile server ----

// Attack: a server answers with pretty-printed JSON (raw newlines) to inject extra stdout lines.
#[tokio::test]
async fn server_newlines_cannot_split_stdout_lines() {
    let (base, _) = raw_server(|_, req| {
        let id = if req.contains("\"id\":1") { 1 } else { 0 };
        http_json(
            "200 OK",
            &format!("{{\n\"jsonrpc\":\"2.0\",\r\n\"id\":{id},\n\"result\":{{\"x\":\"a\\nb\"}}\n}}"),
        )
    })
    .await;
    let opts = Options::new(format!("{base}/mcp"), Arc::new(mcpgate_connect::auth::Chain::default()));
    let out = bridge_run(opts, b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n").await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["result"]["x"], "a\nb");
}

// Attack: a server answers with a non-object (a bare string or number) hoping it reaches stdout.
#[tokio::test]
async fn non_object_answers_never_reach_stdout() {
    let (base, _) = raw_server(|_, _| {
        http_json(
            "200 OK",
            "[\"not an object\", 42, {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}]",
        )
    })
    .await;
    let opts = Options::new(format!("{base}/mcp"), Arc::new(mcpgate_connect::auth::Chain::default()));
    let out = bridge_run(opts, b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n").await;
    for line in out.lines() {
        assert!(line.starts_with('{'), "{out}");
    }
    assert_eq!(out.lines().count(), 1, "{out}");
}

// Attack: hostile stdin: invalid UTF-8, a batch, a non-object, a duplicate id — none is sent.
#[tokio::test]
async fn hostile_stdin_lines_are_answered_not_sent() {
    let (base, seen) = raw_server(|_, _| http_json("200 OK", "{}")).await;
    let mut opts = Options::new(format!("{base}/mcp"), Arc::new(mcpgate_connect::auth::Chain::default()));
    opts.retry = fast_policy();
    let mut input = Vec::new();
    input.extend_from_slice(b"\xff\xfe{\"id\":1}\n");
    input.extend_from_slice(b"[{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}]\n");
    input.extend_from_slice(b"\"just a string\"\n");
    input.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":3,\"id\":4,\"method\":\"ping\"}\n");
    input.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":{\"obj\":1},\"method\":\"ping\"}\n");
    let out = bridge_run(opts, &input).await;
    assert_eq!(out.lines().count(), 5, "{out}");
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["error"]["code"].is_i64(), "{line}");
    }
    assert!(seen.lock().unwrap().is_empty(), "a refused line reached the server");
}

// Attack: a line longer than the limit (16 MiB) to exhaust memory; it is refused, not sent.
#[tokio::test]
async fn an_oversize_stdin_line_is_refused() {
    let (base, seen) = raw_server(|_, _| http_json("200 OK", "{}")).await;
    let opts = Options::new(format!("{base}/mcp"), Arc::new(mcpgate_connect::auth::Chain::default()));
    let mut input = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"pad\":\"".to_vec();
    input.resize(input.len() + 17 * 1024 * 1024, b'a');
    input.extend_from_slice(b"\"}\n");
    let out = bridge_run(opts, &input).await;
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("16 MiB"), "{out}");
    assert!(seen.lock().unwrap().is_empty());
}

// Attack: Retry-After: 999999 on a 429 to park the bridge for days; the wait is capped.
#[tokio::test]
async fn retry_after_is_capped() {
    let (base, seen) = raw_server(|_, _| {
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 999999\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_string()
    })
    .await;
    let mut opts = Options::new(format!("{base}/mcp"), Arc::new(mcpgate_connect::auth::Chain::default()));
    opts.retry = fast_policy();
    let started = std::time::Instant::now();
    let out = bridge_run(opts, b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n").await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert!(out.contains("\"error\""), "{out}");
}

// Attack: a 404 loop (the server "loses" every session) to make the bridge re-initialize forever.
#[tokio::test]
async fn a_404_loop_ends() {
    let (base, seen) = raw_server(|_, req| {
        if req.contains("\"initialize\"") {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: s1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25"}}"#.len(),
                r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25"}}"#
            )
            .replace("\"id\":1", if req.contains("reinit") { "\"id\":\"mcpgate-connect-reinit-1\"" } else { "\"id\":1" })
        } else if req.starts_with("POST") && req.contains("notifications/initialized") {
            "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
        } else if req.starts_with("GET") || req.starts_with("DELETE") {
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
        } else {
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
        }
    })
    .await;
    let mut opts = Options::new(format!("{base}/mcp"), Arc::new(mcpgate_connect::auth::Chain::default()));
    opts.retry = fast_policy();
    let mut input = Vec::new();
    input.extend_from_slice(
        br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}"#,
    );
    input.push(b'\n');
    input.extend_from_slice(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    input.push(b'\n');
    input.extend_from_slice(br#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#);
    input.push(b'\n');
    let started = std::time::Instant::now();
    let out = bridge_run(opts, &input).await;
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        out.lines().any(|l| l.contains("\"id\":2") && l.contains("\"error\"")),
        "{out}"
    );
    let posts = seen.lock().unwrap().iter().filter(|r| r.contains("tools/list")).count();
    assert!(posts <= 3, "{posts} tools/list posts");
}

// ---- client credentials ----

// Attack: the token endpoint redirects (302/307) to another host to collect the client secret.
#[tokio::test]
async fn client_credentials_do_not_follow_redirects() {
    let (evil, evil_seen) =
        raw_server(|_, _| http_json("200 OK", r#"{"access_token":"stolen","token_type":"Bearer"}"#)).await;
    let evil2 = evil.clone();
    let (token, _) = raw_server(move |_, _| {
        format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: {evil2}/token\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    })
    .await;
    for token_auth in [TokenAuth::Basic, TokenAuth::Post] {
        let cc = ClientCredentials::new(ClientCredentialsConfig {
            token_url: format!("{token}/token"),
            client_id: "cid".into(),
            client_secret: Secret::new(SECRET),
            scope: None,
            resource: None,
            token_auth,
        })
        .unwrap();
        let e = cc.headers(&Method::POST, "http://x/mcp", b"{}").await.unwrap_err();
        assert!(!e.to_string().contains(SECRET), "{e}");
    }
    assert!(evil_seen.lock().unwrap().is_empty(), "the redirect was followed");
}

// Attack: a token endpoint echoes the client secret in error_description to get it into the logs.
#[tokio::test]
async fn token_endpoint_echo_of_the_secret_is_redacted() {
    let (token, _) = raw_server(|_, _| {
        http_json(
            "400 Bad Request",
            &format!(r#"{{"error":"invalid_client","error_description":"bad secret {SECRET} given"}}"#),
        )
    })
    .await;
    let cc = ClientCredentials::new(ClientCredentialsConfig {
        token_url: format!("{token}/token"),
        client_id: "cid".into(),
        client_secret: Secret::new(SECRET),
        scope: None,
        resource: None,
        token_auth: TokenAuth::Post,
    })
    .unwrap();
    let e = cc.headers(&Method::POST, "http://x/mcp", b"{}").await.unwrap_err();
    assert!(
        !e.to_string().contains(SECRET) && e.to_string().contains("invalid_client"),
        "{e}"
    );
}

// Attack: HMAC replay — the same body signed twice in one second yields the same signature,
// which a server's replay cache would refuse (or an attacker could reuse). Timestamps differ.
#[tokio::test]
async fn hmac_never_signs_the_same_body_twice_in_a_second() {
    let h = Hmac::new(Secret::new(SECRET), "kid", None).unwrap();
    let a = h.headers(&Method::GET, "u", b"").await.unwrap();
    let b = h.headers(&Method::GET, "u", b"").await.unwrap();
    assert_ne!(a["x-signature"], b["x-signature"]);
    assert_ne!(a["x-timestamp"], b["x-timestamp"]);
    assert!(
        a["x-signature"]
            .to_str()
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_hexdigit())
    );
}

// ---- the OAuth loopback callback ----

// Attack: another local process (or a web page making the browser GET 127.0.0.1) injects its
// own code into the sign-in: without this sign-in's state it is refused; an oversize or
// non-GET request gets nothing; the listener is on 127.0.0.1 only; the forged code is never echoed.
#[tokio::test]
async fn forged_callbacks_are_refused() {
    let (base, _) = raw_server(|_, req| {
        let path = req.split(' ').nth(1).unwrap_or_default().to_string();
        let host = req
            .lines()
            .find_map(|l| l.strip_prefix("host: ").or_else(|| l.strip_prefix("Host: ")))
            .unwrap_or_default()
            .to_string();
        let origin = format!("http://{host}");
        if path.starts_with("/.well-known/oauth-protected-resource") {
            http_json(
                "200 OK",
                &format!(r#"{{"resource":"{origin}/mcp","authorization_servers":["{origin}"]}}"#),
            )
        } else if path.starts_with("/.well-known/oauth-authorization-server") {
            http_json(
                "200 OK",
                &format!(
                    r#"{{"issuer":"{origin}","authorization_endpoint":"{origin}/authorize","token_endpoint":"{origin}/token","registration_endpoint":"{origin}/register","code_challenge_methods_supported":["S256"]}}"#
                ),
            )
        } else if path.starts_with("/register") {
            http_json("201 Created", r#"{"client_id":"c1"}"#)
        } else {
            http_json("404 Not Found", "{}")
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let url_seen: Arc<Mutex<Option<String>>> = Arc::default();
    let hook_seen = url_seen.clone();
    let mut settings = mcpgate_connect::oauth::OAuthSettings::new(format!("{base}/mcp"), dir.path().join("tokens"));
    settings.callback_timeout = Duration::from_secs(3);
    settings.on_authorization_url = Some(Arc::new(move |u| *hook_seen.lock().unwrap() = Some(u)));
    let oauth = Arc::new(mcpgate_connect::oauth::OAuth::new(settings));
    let signin = {
        let oauth = oauth.clone();
        tokio::spawn(async move { oauth.headers(&Method::POST, "u", b"").await })
    };
    let auth_url = loop {
        if let Some(u) = url_seen.lock().unwrap().clone() {
            break reqwest::Url::parse(&u).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let q = |k: &str| {
        auth_url
            .query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    let redirect = reqwest::Url::parse(&q("redirect_uri")).unwrap();
    assert_eq!(redirect.host_str(), Some("127.0.0.1"));
    assert_eq!(q("code_challenge_method"), "S256");
    let state = q("state");
    assert!(state.len() >= 43);
    let port = redirect.port().unwrap();

    async fn ask(port: u16, request: Vec<u8>) -> String {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let _ = s.write_all(&request).await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(12), s.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).to_string()
    }
    let forged = "FORGED-CODE-42";
    let wrong = ask(
        port,
        format!("GET /callback?code={forged}&state=guess HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
    )
    .await;
    assert!(wrong.starts_with("HTTP/1.1 400") && !wrong.contains(forged), "{wrong}");
    let prefix = &state[..state.len() - 1];
    let near = ask(
        port,
        format!("GET /callback?code={forged}&state={prefix} HTTP/1.1\r\n\r\n").into_bytes(),
    )
    .await;
    assert!(near.starts_with("HTTP/1.1 400"), "{near}");
    let twice = ask(
        port,
        format!("GET /callback?code={forged}&state={state}&state=x HTTP/1.1\r\n\r\n").into_bytes(),
    )
    .await;
    assert!(twice.starts_with("HTTP/1.1 400"), "{twice}");
    let post = ask(
        port,
        format!("POST /callback?code={forged}&state={state} HTTP/1.1\r\n\r\n").into_bytes(),
    )
    .await;
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    let mut huge = b"GET /callback?".to_vec();
    huge.resize(40 * 1024, b'a');
    let oversize = ask(port, huge).await;
    assert!(oversize.is_empty(), "{oversize}");

    let e = signin.await.unwrap().unwrap_err().to_string();
    assert!(!e.contains(forged) && !e.contains(&state), "{e}");
    assert_eq!(oauth.authorizations(), 1);
}
