//! The bad-input table (issue #9, item 7): one row per way a request can be wrong — the HTTP
//! frame, every header the gateway reads, every JSON-RPC field, every target form, every
//! credential place, sessions, tenancy, sizes, encodings and batches — each with the exact HTTP
//! status, JSON-RPC code and a word of the message it must get. For every row the test also
//! proves three things a refusal must never do: reach the upstream (a recording proxy counts its
//! requests before and after the row), carry a secret the row sent back out (response, logs,
//! audit), or quote attacker-chosen text (a marker is in the rows' bodies and odd headers).
//!
//! The whole table runs and is printed before the test fails, so one run shows every row's
//! answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use http::{HeaderValue, Request};
use http_body_util::BodyExt;
use mcpgate_core::jsonrpc::code;
use mcpgate_testkit::apikey::*;
use mcpgate_testkit::harness::*;
use mcpgate_testkit::logs::{LogCapture, find_leaks};
use mcpgate_testkit::recorder::Recorder;
use mcpgate_testkit::time::now_s;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

/// Attacker-chosen text put in every row's body: no refusal may quote it.
const MARKER: &str = "ATTACKER-TEXT-5q8w";
/// Credentials a row sends that the gateway must never repeat (distinctive, so a search is sure).
const HMAC_SECRET: &str = "SECRET-hmac-shared-5d1b9a0c77e2f4";
const GARBAGE: &str = "SECRET-garbage-key-9f2c1e6a";
const BASIC: &str = "U0VDUkVULWJhc2ljLXVzZXI6U0VDUkVULWJhc2ljLXB3";
const DIGEST_RESPONSE: &str = "SECRET-digest-6b1f0e33";
const JWT_SIG: &str = "SECRETjwtsig4e7a";
/// How long one row may take before it counts as a hang.
const ROW_LIMIT: Duration = Duration::from_secs(5);

const PARSE: i64 = code::PARSE_ERROR;
const INVALID: i64 = code::INVALID_REQUEST;
const PARAMS: i64 = code::INVALID_PARAMS;
const UNAUTH: i64 = code::UNAUTHORIZED;
const FORBID: i64 = code::FORBIDDEN;
const NO_SESSION: i64 = code::SESSION_NOT_FOUND;

/// A plain echo call; its `note` carries the marker.
const ECHO: &str =
    r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi","note":"@M"}}}"#;

/// `@M` in a body becomes the marker.
fn m(body: impl AsRef<[u8]>) -> Vec<u8> {
    let (b, at) = (body.as_ref(), b"@M");
    let mut out = Vec::with_capacity(b.len() + 32);
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(at) {
            out.extend_from_slice(MARKER.as_bytes());
            i += at.len();
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

// ---- requests ---------------------------------------------------------------------------------

/// A request under construction; header values are bytes so rows can send what `&str` cannot.
#[derive(Clone)]
struct Req {
    method: &'static str,
    uri: String,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Vec<u8>,
}

impl Req {
    fn new(method: &'static str) -> Req {
        Req {
            method,
            uri: "/mcp".into(),
            headers: vec![("host", b"localhost".to_vec())],
            body: Vec::new(),
        }
    }
    /// A POST with the headers every MCP client sends.
    fn post(body: impl AsRef<[u8]>) -> Req {
        Req::new("POST")
            .with("content-type", "application/json")
            .with("accept", "application/json, text/event-stream")
            .body(m(body))
    }
    fn body(mut self, b: Vec<u8>) -> Req {
        self.body = b;
        self
    }
    fn at(mut self, uri: impl Into<String>) -> Req {
        self.uri = uri.into();
        self
    }
    /// Adds a header (a second one of the same name stays beside the first).
    fn with(mut self, name: &'static str, v: impl AsRef<[u8]>) -> Req {
        self.headers.push((name, v.as_ref().to_vec()));
        self
    }
    fn without(mut self, name: &str) -> Req {
        self.headers.retain(|(k, _)| *k != name);
        self
    }
    /// Replaces every header of that name.
    fn set(self, name: &'static str, v: impl AsRef<[u8]>) -> Req {
        self.without(name).with(name, v)
    }
    fn build(&self) -> Request<Body> {
        let mut b = Request::builder().method(self.method).uri(self.uri.as_str());
        for (k, v) in &self.headers {
            b = b.header(
                *k,
                HeaderValue::from_bytes(v).expect("a header value the http crate takes"),
            );
        }
        b.body(Body::from(self.body.clone())).expect("request")
    }
}

/// What a row sends, and where.
enum How {
    Router(Req),
    /// Raw bytes on a socket of the served gateway: header bytes (CR, NUL, folding) that the
    /// http crate refuses to build, so only the wire can carry them.
    Wire(Vec<u8>),
}

#[derive(Clone, Copy, PartialEq)]
enum On {
    /// Header, query and signed credentials; tool-argument keys off.
    Main,
    /// `auth.allow_tool_arg_key = true`.
    ToolArg,
}

struct Row {
    name: String,
    on: On,
    how: How,
    status: u16,
    code: Option<i64>,
    /// A word or two the JSON-RPC message must contain ("" for answers that are not JSON).
    says: &'static str,
    /// The gateway lets this through on purpose and the upstream refuses it: exactly one request
    /// must reach the upstream (every other row: none).
    forwarded: bool,
}

fn row(name: impl Into<String>, req: Req, status: u16, code: i64, says: &'static str) -> Row {
    Row {
        name: name.into(),
        on: On::Main,
        how: How::Router(req),
        status,
        code: Some(code),
        says,
        forwarded: false,
    }
}

impl Row {
    fn on(mut self, on: On) -> Row {
        self.on = on;
        self
    }
    fn forwarded(mut self) -> Row {
        self.forwarded = true;
        self
    }
}

// ---- the world the rows run in ----------------------------------------------------------------

struct World {
    main: Gw,
    main_rec: Recorder,
    argk: Gw,
    argk_rec: Recorder,
    /// The main gateway on a loopback listener, for the rows sent as raw bytes.
    wire: Listening,
    user: Issued,
    tenant_key: Issued,
    argk_user: Issued,
    session: String,
    tenant_session: String,
    argk_session: String,
    other_session: String,
    deleted_session: String,
    /// A signed initialize the gateway has already accepted: (timestamp, signature, body).
    used_signature: (String, String, Vec<u8>),
    secrets: Vec<(String, String)>,
}

impl World {
    async fn start() -> World {
        let main_rec = Recorder::start(&start_demo().await).await;
        let mut setup = Setup::new(
            "[auth.hmac]\n[[auth.hmac.clients]]\nid = \"signer\"\nsecret_env = \"BAD_INPUT_HMAC\"\npermissions = [\"*\"]\n",
        );
        setup.upstream(&main_rec.url).env("BAD_INPUT_HMAC", HMAC_SECRET);
        let user = setup.key(key("mallory"));
        let other = setup.key(key("trudy"));
        let tenant_key = setup.key(key("tenant-user").tenant("acme"));
        let main = setup.start().await;

        let argk_rec = Recorder::start(&start_demo().await).await;
        let mut setup = Setup::new("[auth]\nallow_tool_arg_key = true\n");
        setup.upstream(&argk_rec.url);
        let argk_user = setup.key(key("seed-zero"));
        let argk = setup.start().await;

        let session = main.initialize(&[user.x_api_key()]).await;
        let other_session = main.initialize(&[other.x_api_key()]).await;
        let tenant_session = main
            .initialize(&[tenant_key.x_api_key(), ("x-tenant-id", "acme")])
            .await;
        // Seed 000: the session opens without a key; each call brings one as an argument.
        let argk_session = argk.initialize(&[]).await;
        let deleted_session = main.initialize(&[user.x_api_key()]).await;
        let gone = main
            .delete(
                "/mcp",
                &[user.x_api_key(), ("mcp-session-id", deleted_session.as_str())],
            )
            .await;
        assert!(
            gone.status.is_success(),
            "fixture DELETE: {} {}",
            gone.status,
            gone.text
        );

        // A signed initialize, accepted once: the replay row sends it again.
        let init = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"{PROTOCOL}","capabilities":{{}},"clientInfo":{{"name":"signer","version":"1"}}}}}}"#
        )
        .into_bytes();
        let ts = now_s().to_string();
        let sig = mcpgate_core::hmac::sign(HMAC_SECRET.as_bytes(), &ts, &init);
        let r = main
            .post_raw(
                "/mcp",
                &[("x-api-key", "signer"), ("x-timestamp", &ts), ("x-signature", &sig)],
                init.clone(),
            )
            .await;
        r.ok("fixture: a signed initialize");

        let wire = main.listen().await;

        let secrets = vec![
            ("the user's key".into(), user.secret_part().to_string()),
            ("the other principal's key".into(), other.secret_part().to_string()),
            ("the tenant key".into(), tenant_key.secret_part().to_string()),
            ("the tool-argument key".into(), argk_user.secret_part().to_string()),
            ("the HMAC secret".into(), HMAC_SECRET.into()),
            ("the used signature".into(), sig.clone()),
            ("a garbage key".into(), GARBAGE.into()),
            ("a Basic credential".into(), BASIC.into()),
            ("a Digest response".into(), DIGEST_RESPONSE.into()),
            ("a JWT's signature".into(), JWT_SIG.into()),
            ("a key with odd bytes".into(), "SECRET-odd-bytes-".into()),
            ("a key sent on the wire".into(), "SECRET-wire-".into()),
            ("a long key".into(), "SECRET-long-".into()),
        ];
        World {
            main,
            main_rec,
            argk,
            argk_rec,
            wire,
            user,
            tenant_key,
            argk_user,
            session,
            tenant_session,
            argk_session,
            other_session,
            deleted_session,
            used_signature: (ts, sig, init),
            secrets,
        }
    }

    /// A POST to the main gateway as the user, in the user's session: only the body is wrong.
    fn authed(&self, body: impl AsRef<[u8]>) -> Req {
        Req::post(body)
            .with("x-api-key", &self.user.key)
            .with("mcp-session-id", &self.session)
            .with("mcp-protocol-version", PROTOCOL)
    }

    fn recorder(&self, on: On) -> &Recorder {
        match on {
            On::Main => &self.main_rec,
            On::ToolArg => &self.argk_rec,
        }
    }

    async fn send(&self, row: &Row) -> Seen {
        match &row.how {
            How::Router(req) => {
                let gw = if row.on == On::Main { &self.main } else { &self.argk };
                through_router(gw, req.build()).await
            }
            How::Wire(bytes) => over_the_wire(self.wire.addr, bytes).await,
        }
    }
}

/// A signed request's headers over `body`, for the HMAC rows.
fn signed(req: Req, ts: &str, sig: &str) -> Req {
    req.set("x-api-key", "signer")
        .with("x-timestamp", ts)
        .with("x-signature", sig)
}

// ---- one answer -------------------------------------------------------------------------------

struct Seen {
    status: u16,
    code: Option<i64>,
    message: String,
    /// Status, headers and body, for the leak and echo searches.
    text: String,
    hung: bool,
}

impl Seen {
    fn new(status: u16, head: String, body: &[u8], sse: bool, hung: bool) -> Seen {
        let body_text = String::from_utf8_lossy(body).into_owned();
        let v = if sse {
            json_in_sse(&body_text)
        } else {
            serde_json::from_slice(body).unwrap_or(Value::Null)
        };
        Seen {
            status,
            code: v["error"]["code"].as_i64(),
            message: v["error"]["message"].as_str().unwrap_or_default().to_string(),
            text: format!("{head}\n{body_text}"),
            hung,
        }
    }
}

/// Through `router().oneshot`, reading the body until it ends or the row's time is up (a
/// forwarded GET may open a stream that never ends: that must fail the row, not hang the test).
async fn through_router(gw: &Gw, req: Request<Body>) -> Seen {
    let deadline = tokio::time::Instant::now() + ROW_LIMIT;
    let Ok(resp) = tokio::time::timeout_at(deadline, gw.gw.router().oneshot(req)).await else {
        return Seen::new(0, "no answer".into(), b"", false, true);
    };
    let resp = resp.unwrap_or_else(|e| match e {});
    let (parts, mut body) = resp.into_parts();
    let mut bytes = Vec::new();
    let mut hung = false;
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Ok(d) = frame.into_data() {
                    bytes.extend_from_slice(&d);
                }
            }
            Ok(_) => break,
            Err(_) => {
                hung = true;
                break;
            }
        }
    }
    let sse = parts
        .headers
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    Seen::new(
        parts.status.as_u16(),
        format!("{} {:?}", parts.status, parts.headers),
        &bytes,
        sse,
        hung,
    )
}

/// Writes `raw` on a new connection and reads until the server closes it.
async fn over_the_wire(addr: SocketAddr, raw: &[u8]) -> Seen {
    let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
    c.write_all(raw).await.expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let mut hung = false;
    loop {
        match tokio::time::timeout(ROW_LIMIT, c.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => {
                hung = true;
                break;
            }
        }
    }
    let split = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(got.len(), |p| p + 4);
    let head = String::from_utf8_lossy(&got[..split]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Seen::new(status, head, &got[split..], false, hung)
}

/// A POST as raw bytes, `header` inserted as is among the usual ones.
fn wire_post(header: &[u8]) -> Vec<u8> {
    let body = m(ECHO);
    let mut out = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(header);
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(&body);
    out
}

// ---- the test ---------------------------------------------------------------------------------

#[tokio::test]
async fn every_bad_input_is_refused_before_the_upstream_without_leaks_or_echoes() {
    // current_thread (tokio::test's default): the gateway, upstreams and their tasks all log here.
    let logs = LogCapture::install();
    let w = World::start().await;
    controls(&w).await;

    let rows: Vec<Row> = [
        http_rows(&w),
        header_rows(&w),
        session_rows(&w),
        credential_place_rows(&w),
        field_rows(&w),
        target_rows(&w),
        size_rows(&w),
        encoding_rows(&w),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(rows.len() >= 70, "the table has {} rows", rows.len());

    let mut failures = Vec::new();
    println!("\n{:<64} {:>6} {:>7}  verdict", "row", "status", "code");
    for row in &rows {
        let rec = w.recorder(row.on);
        let before = rec.requests().len();
        let seen = w.send(row).await;
        let reached = rec.requests().len() - before;
        let problems = judge(row, &seen, reached, &w.secrets);
        let code = seen.code.map_or("-".to_string(), |c| c.to_string());
        let verdict = if problems.is_empty() {
            "ok".to_string()
        } else {
            problems.join("; ")
        };
        println!("{:<64} {:>6} {:>7}  {}", row.name, seen.status, code, verdict);
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n    answer: {}",
                row.name,
                problems.join("; "),
                excerpt(&seen.text, 400)
            ));
        }
    }
    println!("{} rows, {} failing\n", rows.len(), failures.len());

    // Nothing any row (or fixture) sent as a credential went upstream, into the audit, or into
    // the logs.
    let upstream = format!("{}\n{}", w.main_rec.dump(), w.argk_rec.dump());
    let audit = format!("{:?}\n{:?}", w.main.audit().await, w.argk.audit().await);
    let log_text = logs.text();
    // The searches below look at something: the gateways' own lines and the refusals' records.
    assert!(
        log_text.contains("allow_tool_arg_key is on"),
        "the gateway's logs were not captured"
    );
    assert!(audit.contains("mallory"), "no audit records to search");
    let places = [
        ("what reached the upstreams", upstream.as_str()),
        ("the audit records", audit.as_str()),
        ("the captured logs", log_text.as_str()),
    ];
    failures.extend(find_leaks(&w.secrets, &places));
    drop(w.wire);
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Each well-formed request the rows start from succeeds: a row fails for its own flaw only.
async fn controls(w: &World) {
    let ok = |s: &Seen, what: &str| {
        assert!(
            s.status == 200 && s.code.is_none() && !s.hung,
            "control {what}: {}",
            s.text
        );
    };
    let in_session = |r: Req, s: &str| r.with("mcp-session-id", s).with("mcp-protocol-version", PROTOCOL);
    ok(
        &through_router(&w.main, w.authed(ECHO).build()).await,
        "echo as the user",
    );
    let as_tenant = Req::post(ECHO)
        .with("x-api-key", &w.tenant_key.key)
        .with("x-tenant-id", "acme");
    let as_tenant = in_session(as_tenant, &w.tenant_session);
    ok(
        &through_router(&w.main, as_tenant.build()).await,
        "echo as the tenant key",
    );
    let arg = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"x","api_key":"{}"}}}}}}"#,
        w.argk_user.key
    );
    let arg = in_session(Req::post(arg), &w.argk_session);
    ok(
        &through_router(&w.argk, arg.build()).await,
        "echo with a tool-argument key",
    );
    let wire = format!(
        "X-API-Key: {}\r\nMcp-Session-Id: {}\r\nMCP-Protocol-Version: {PROTOCOL}",
        w.user.key, w.session
    );
    ok(
        &over_the_wire(w.wire.addr, &wire_post(wire.as_bytes())).await,
        "echo on the wire",
    );
}

/// What is wrong with one row's answer.
fn judge(row: &Row, seen: &Seen, reached: usize, secrets: &[(String, String)]) -> Vec<String> {
    let mut p = Vec::new();
    if seen.hung {
        p.push("no complete answer in time".to_string());
    }
    if seen.status != row.status {
        p.push(format!("status {} (want {})", seen.status, row.status));
    }
    if seen.code != row.code {
        p.push(format!("code {:?} (want {:?})", seen.code, row.code));
    }
    if !row.says.is_empty() && !seen.message.contains(row.says) {
        p.push(format!(
            "message {:?} should say {:?}",
            excerpt(&seen.message, 100),
            row.says
        ));
    }
    match (row.forwarded, reached) {
        (false, 0) | (true, 1) => {}
        (false, n) => p.push(format!("{n} request(s) reached the upstream")),
        (true, n) => p.push(format!("{n} requests reached the upstream (want 1)")),
    }
    for (what, secret) in secrets {
        if seen.text.contains(secret.as_str()) {
            p.push(format!("{what} is in the answer"));
        }
    }
    if seen.text.contains(MARKER) {
        p.push("the answer quotes attacker text".to_string());
    }
    p
}

fn excerpt(s: &str, max: usize) -> String {
    let mut e: String = s.chars().take(max).collect();
    if e.len() < s.len() {
        e.push('…');
    }
    e
}

// ---- the rows ---------------------------------------------------------------------------------

/// The HTTP frame: method, media types, body size; Host and Origin.
#[rustfmt::skip]
fn http_rows(w: &World) -> Vec<Row> {
    let a = |b| w.authed(b);
    let over = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"@M{}"}}}}"#, "x".repeat(4 << 20));
    vec![
        row("PUT /mcp", Req { method: "PUT", ..a(ECHO) }, 405, INVALID, "use POST"),
        row("PATCH /mcp", Req { method: "PATCH", ..a(ECHO) }, 405, INVALID, "use POST"),
        row("OPTIONS /mcp", Req { method: "OPTIONS", ..a(ECHO) }, 405, INVALID, "use POST"),
        row("POST without Content-Type", a(ECHO).without("content-type"), 415, INVALID, "Content-Type"),
        row("Content-Type: text/plain", a(ECHO).set("content-type", "text/plain"), 415, INVALID, "Content-Type"),
        row("Content-Type: form-urlencoded (a page's simple request)", a(ECHO).set("content-type", "application/x-www-form-urlencoded"), 415, INVALID, "Content-Type"),
        row("Content-Type: application/jsonx", a(ECHO).set("content-type", "application/jsonx"), 415, INVALID, "Content-Type"),
        row("Accept: text/html only", a(ECHO).set("accept", "text/html"), 406, INVALID, "Accept"),
        row("Accept: application/xml, text/plain", a(ECHO).set("accept", "application/xml, text/plain"), 406, INVALID, "Accept"),
        row("empty body", a("").body(Vec::new()), 400, PARSE, "empty body"),
        row("whitespace-only body", a(" \r\n\t "), 400, PARSE, "empty body"),
        row("body over the 4 MiB limit", a(&over), 413, INVALID, "limit"),
        row("Host: evil.example", a(ECHO).set("host", "evil.example"), 403, FORBID, "Host"),
        row("Host: 127.0.0.1.evil.example", a(ECHO).set("host", "127.0.0.1.evil.example:80"), 403, FORBID, "Host"),
        row("no Host at all", a(ECHO).without("host"), 403, FORBID, "Host"),
        row("Origin: http://evil.example", a(ECHO).with("origin", "http://evil.example"), 403, FORBID, "Origin"),
        row("Origin: null", a(ECHO).with("origin", "null"), 403, FORBID, "Origin"),
        row("Origin: http://user@localhost", a(ECHO).with("origin", "http://user@localhost"), 403, FORBID, "Origin"),
        row("Origin with non-ASCII bytes", a(ECHO).with("origin", b"http://localhost\xff"), 403, FORBID, "Origin"),
    ]
}

/// Every credential header the gateway reads, signed requests and tenancy.
#[rustfmt::skip]
fn header_rows(w: &World) -> Vec<Row> {
    let a = |b| w.authed(b).without("x-api-key");
    let jwt = format!("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.{JWT_SIG}");
    let long = format!("SECRET-long-{}", "k".repeat(8 << 10));
    let (ts, sig, used) = &w.used_signature;
    let now = now_s().to_string();
    let skewed = (now_s() - 3600).to_string();
    let body = m(ECHO);
    let sign = |ts: &str| mcpgate_core::hmac::sign(HMAC_SECRET.as_bytes(), ts, &body);
    let other_body_sig = mcpgate_core::hmac::sign(HMAC_SECRET.as_bytes(), &now, b"{}");
    let bearer = format!("Bearer {}", w.user.key);
    let tenant = |t: &[u8]| Req::post(ECHO).with("x-api-key", &w.tenant_key.key).with("x-tenant-id", t);
    vec![
        row("X-API-Key empty", a(ECHO).with("x-api-key", ""), 401, UNAUTH, "X-API-Key"),
        row("X-API-Key garbage", a(ECHO).with("x-api-key", GARBAGE), 401, UNAUTH, "invalid API key"),
        row("X-API-Key 8 KiB long", a(ECHO).with("x-api-key", &long), 401, UNAUTH, "invalid API key"),
        row("X-API-Key with non-ASCII bytes", a(ECHO).with("x-api-key", b"SECRET-odd-bytes-\xff\xfe"), 401, UNAUTH, "X-API-Key"),
        row("X-API-Key holding a JWT", a(ECHO).with("x-api-key", &jwt), 401, UNAUTH, "JWT"),
        row("X-API-Key: Bearer <key>", a(ECHO).with("x-api-key", format!("Bearer {}", w.user.key)), 401, UNAUTH, "invalid API key"),
        row("Authorization: Basic", a(ECHO).with("authorization", format!("Basic {BASIC}")), 401, UNAUTH, "Bearer"),
        row("Authorization: Digest", a(ECHO).with("authorization", format!("Digest username=\"u\", response=\"{DIGEST_RESPONSE}\"")), 401, UNAUTH, "Bearer"),
        row("Authorization: Bearer (no token)", a(ECHO).with("authorization", "Bearer"), 401, UNAUTH, "no token"),
        row("Authorization: Bearer + spaces", a(ECHO).with("authorization", "Bearer    "), 401, UNAUTH, "no token"),
        row("Authorization: Bearer garbage", a(ECHO).with("authorization", format!("Bearer {GARBAGE}")), 401, UNAUTH, "invalid API key"),
        row("Authorization with non-ASCII bytes", a(ECHO).with("authorization", b"Bearer SECRET-odd-bytes-\xe9"), 401, UNAUTH, "Authorization"),
        // Two Authorization headers: a proxy in front that reads the other one would authorize
        // someone else, so neither is used.
        row("two Authorization headers", a(ECHO).with("authorization", &bearer).with("authorization", format!("Bearer {GARBAGE}")), 401, UNAUTH, "Authorization"),
        // The same for two X-API-Key headers.
        row("two X-API-Key headers", a(ECHO).with("x-api-key", &w.user.key).with("x-api-key", GARBAGE), 401, UNAUTH, "X-API-Key"),
        row("X-Signature without X-Timestamp", signed(a(ECHO), &now, &sign(&now)).without("x-timestamp"), 401, UNAUTH, "X-Timestamp"),
        row("X-Signature, skewed X-Timestamp (-1 h)", signed(a(ECHO), &skewed, &sign(&skewed)), 401, UNAUTH, "window"),
        row("X-Signature not hex", signed(a(ECHO), &now, &"zz".repeat(32)), 401, UNAUTH, "hex"),
        row("X-Signature over another body", signed(a(ECHO), &now, &other_body_sig), 401, UNAUTH, "does not match"),
        row("X-Signature replayed", signed(Req::post(used), ts, sig), 401, UNAUTH, "already used"),
        row("X-Signature from an unknown client", signed(a(ECHO), &now, &sign(&now)).set("x-api-key", "mallory-signer"), 401, UNAUTH, "HMAC client"),
        row("X-Signature where HMAC is off", signed(Req::post(ECHO), &now, &sign(&now)), 401, UNAUTH, "HMAC").on(On::ToolArg),
        row("X-Tenant-ID of another tenant", tenant(b"globex"), 403, FORBID, "X-Tenant-ID"),
        row("X-Tenant-ID differing in case", tenant(b"ACME"), 403, FORBID, "X-Tenant-ID"),
        row("X-Tenant-ID empty", tenant(b""), 403, FORBID, "X-Tenant-ID"),
        // The gateway reads X-Request-Id and echoes it when it is a plain token; this one is not.
        row("X-Request-Id with markup, no credential", a(ECHO).with("x-request-id", format!("<b>{MARKER}</b>")), 401, UNAUTH, "missing API key"),
    ]
}

/// Session and protocol-version headers; GET and DELETE.
#[rustfmt::skip]
fn session_rows(w: &World) -> Vec<Row> {
    let key = w.user.key.as_str();
    let a = |b| w.authed(b).without("mcp-session-id");
    let get = || Req::new("GET").with("accept", "text/event-stream").with("x-api-key", key);
    let delete = || Req::new("DELETE").with("x-api-key", key);
    vec![
        row("Mcp-Session-Id unknown", a(ECHO).with("mcp-session-id", "0123456789abcdef0123456789abcdef"), 404, NO_SESSION, "session not found"),
        row("Mcp-Session-Id of another principal", a(ECHO).with("mcp-session-id", &w.other_session), 403, FORBID, "another principal"),
        row("Mcp-Session-Id garbage (path, 2 KiB)", a(ECHO).with("mcp-session-id", format!("../../admin/{}", "%00".repeat(700))), 404, NO_SESSION, "session not found"),
        // An unreadable Mcp-Session-Id is not one this gateway issued; never "no session".
        row("Mcp-Session-Id with non-ASCII bytes", a(ECHO).with("mcp-session-id", format!("{}\u{e9}", w.session)), 404, NO_SESSION, "session not found"),
        // MCP-Protocol-Version must be a revision date, not text copied to the upstream.
        row("MCP-Protocol-Version garbage", w.authed(ECHO).set("mcp-protocol-version", format!("1999-99-99 {MARKER}")), 400, INVALID, "MCP-Protocol-Version"),
        row("MCP-Protocol-Version with non-ASCII bytes", w.authed(ECHO).set("mcp-protocol-version", b"2025-06-18\xff"), 400, INVALID, "MCP-Protocol-Version"),
        // Not refused by the gateway on purpose: without a session the stream is the upstream's to
        // offer or refuse (a sessionless upstream may serve it); this one answers its own 400.
        Row { code: None, ..row("GET without a session (the upstream's to refuse)", get(), 400, 0, "") }.forwarded(),
        // HEAD must not open an upstream GET stream (axum's `get()` would route it there). A HEAD
        // answer has no body by HTTP, so only the status is checked.
        Row { code: None, ..row("HEAD /mcp in the user's session", Req { method: "HEAD", ..get().with("mcp-session-id", &w.session) }, 405, 0, "") },
        row("GET with an unknown session", get().with("mcp-session-id", "feedfacefeedface"), 404, NO_SESSION, "session not found"),
        row("GET with another principal's session", get().with("mcp-session-id", &w.other_session), 403, FORBID, "another principal"),
        row("GET without a credential", Req::new("GET").with("accept", "text/event-stream").with("mcp-session-id", &w.session), 401, UNAUTH, "missing API key"),
        row("DELETE without a session", delete(), 400, INVALID, "Mcp-Session-Id"),
        row("DELETE without a credential", Req::new("DELETE").with("mcp-session-id", &w.session), 401, UNAUTH, "missing API key"),
        row("DELETE of a deleted session", delete().with("mcp-session-id", &w.deleted_session), 404, NO_SESSION, "session not found"),
        row("DELETE of another principal's session", delete().with("mcp-session-id", &w.other_session), 403, FORBID, "another principal"),
    ]
}

/// Keys in the places the MCP specification forbids: the query and a tool argument.
#[rustfmt::skip]
fn credential_place_rows(w: &World) -> Vec<Row> {
    let call = |args: &str| format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"note":"@M",{args}}}}}}}"#);
    let user = w.user.key.as_str();
    let argk = w.argk_user.key.as_str();
    let jwt = format!("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.{JWT_SIG}");
    vec![
        row("?api_key= when the query key is off", Req::post(ECHO).at(format!("/mcp?api_key={user}")), 401, UNAUTH, "missing API key"),
        row("api_key tool argument when that is off", Req::post(call(&format!(r#""api_key":"{user}""#))), 401, UNAUTH, "missing API key"),
        row("api_key argument: a number", Req::post(call(r#""api_key":7"#)), 400, PARAMS, "api_key").on(On::ToolArg),
        row("api_key argument: an object", Req::post(call(&format!(r#""api_key":{{"k":"{argk}"}}"#))), 400, PARAMS, "api_key").on(On::ToolArg),
        row("api_key argument: an array", Req::post(call(&format!(r#""api_key":["{argk}"]"#))), 400, PARAMS, "api_key").on(On::ToolArg),
        row("api_key argument: duplicated", Req::post(call(&format!(r#""api_key":"{argk}","api_key":"{GARBAGE}""#))), 400, PARSE, "duplicate key").on(On::ToolArg),
        row("api_key argument: garbage", Req::post(call(&format!(r#""api_key":"{GARBAGE}""#))), 401, UNAUTH, "invalid API key").on(On::ToolArg),
        row("api_key argument: a JWT", Req::post(call(&format!(r#""api_key":"{jwt}""#))), 401, UNAUTH, "JWT").on(On::ToolArg),
        row("api_key argument, escaped key name, twice", Req::post(call(&format!(r#""api_key":"{argk}","api\u005fkey":"x""#))), 400, PARSE, "duplicate key").on(On::ToolArg),
    ]
}

/// Every member of the JSON-RPC envelope.
#[rustfmt::skip]
fn field_rows(w: &World) -> Vec<Row> {
    let a = |name: &str, body: &str, status, code, says| row(name, w.authed(body), status, code, says);
    let long_id = format!(r#"{{"jsonrpc":"2.0","id":"{}","method":"ping","params":{{"x":"@M"}}}}"#, "i".repeat(1025));
    let long_method = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{}","params":{{"x":"@M"}}}}"#, "m".repeat(200));
    vec![
        a("jsonrpc missing", r#"{"id":1,"method":"ping","params":{"x":"@M"}}"#, 400, INVALID, "jsonrpc"),
        a("jsonrpc \"1.0\"", r#"{"jsonrpc":"1.0","id":1,"method":"ping","params":{"x":"@M"}}"#, 400, INVALID, "jsonrpc"),
        a("jsonrpc 2.0 as a number", r#"{"jsonrpc":2.0,"id":1,"method":"ping","params":{"x":"@M"}}"#, 400, INVALID, "jsonrpc"),
        a("jsonrpc the marker", r#"{"jsonrpc":"@M","id":1,"method":"ping"}"#, 400, INVALID, "jsonrpc"),
        a("id null", r#"{"jsonrpc":"2.0","id":null,"method":"ping","params":{"x":"@M"}}"#, 400, INVALID, "id"),
        a("id an object", r#"{"jsonrpc":"2.0","id":{"x":"@M"},"method":"ping"}"#, 400, INVALID, "id"),
        a("id an array", r#"{"jsonrpc":"2.0","id":["@M"],"method":"ping"}"#, 400, INVALID, "id"),
        a("id a boolean", r#"{"jsonrpc":"2.0","id":true,"method":"ping","params":{"x":"@M"}}"#, 400, INVALID, "id"),
        a("id a fraction", r#"{"jsonrpc":"2.0","id":1.5,"method":"ping","params":{"x":"@M"}}"#, 400, INVALID, "id"),
        a("id 1e3", r#"{"jsonrpc":"2.0","id":1e3,"method":"ping","params":{"x":"@M"}}"#, 400, INVALID, "id"),
        a("id huge", r#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"ping","params":{"x":"@M"}}"#, 400, INVALID, "id"),
        a("id 2^53", r#"{"jsonrpc":"2.0","id":9007199254740992,"method":"ping","params":{"x":"@M"}}"#, 400, INVALID, "id"),
        a("id a 1025-character string", &long_id, 400, INVALID, "id"),
        a("method missing", r#"{"jsonrpc":"2.0","id":1,"params":{"x":"@M"}}"#, 400, INVALID, "method"),
        a("method a number", r#"{"jsonrpc":"2.0","id":1,"method":7,"params":{"x":"@M"}}"#, 400, INVALID, "method"),
        a("method empty", r#"{"jsonrpc":"2.0","id":1,"method":"","params":{"x":"@M"}}"#, 400, INVALID, "method"),
        a("method with a space", r#"{"jsonrpc":"2.0","id":1,"method":"tools/ call","params":{"x":"@M"}}"#, 400, INVALID, "method"),
        a("method with an escaped NUL", r#"{"jsonrpc":"2.0","id":1,"method":"ping\u0000","params":{"x":"@M"}}"#, 400, INVALID, "method"),
        a("method with an escaped newline", r#"{"jsonrpc":"2.0","id":1,"method":"tools/call\n@M","params":{"name":"echo"}}"#, 400, INVALID, "method"),
        a("method 200 characters", &long_method, 400, INVALID, "method"),
        a("params an array", r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":["@M"]}"#, 400, PARAMS, "params"),
        // (`"params": null` alone reads as no params, on purpose: e8e6622.)
        a("params null where a target is needed", r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":null}"#, 400, PARAMS, "params.name"),
        a("params a string", r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":"@M"}"#, 400, PARAMS, "params"),
        a("_meta.progressToken an object", r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":{"progressToken":{"x":"@M"}}}}"#, 400, PARAMS, "progressToken"),
        a("result and error together", r#"{"jsonrpc":"2.0","id":1,"result":{"x":"@M"},"error":{"code":1,"message":"@M"}}"#, 400, INVALID, "not both"),
        a("method and result together", r#"{"jsonrpc":"2.0","id":1,"method":"ping","result":{"x":"@M"}}"#, 400, INVALID, "not both"),
        a("error not an object", r#"{"jsonrpc":"2.0","id":1,"error":"@M"}"#, 400, INVALID, "error"),
        a("error code a string", r#"{"jsonrpc":"2.0","id":1,"error":{"code":"1","message":"@M"}}"#, 400, INVALID, "error"),
        a("response with id null and a result", r#"{"jsonrpc":"2.0","id":null,"result":{"x":"@M"}}"#, 400, INVALID, "id"),
        a("an unknown top-level member", r#"{"jsonrpc":"2.0","id":1,"method":"ping","@M":1}"#, 400, INVALID, "each once"),
        a("a top-level member in another case", r#"{"jsonrpc":"2.0","id":1,"Method":"tools/call","method":"ping","x":"@M"}"#, 400, INVALID, "each once"),
    ]
}

/// The targets policy rules match: tools, prompts, resources, completion refs.
#[rustfmt::skip]
fn target_rows(w: &World) -> Vec<Row> {
    let call = |method: &str, params: &str| w.authed(format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{params}}}"#));
    let r = |name: &str, method: &str, params: &str, code, says| row(name, call(method, params), 400, code, says);
    let tc = "tools/call";
    vec![
        row("tools/call without params", w.authed(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#), 400, PARAMS, "params.name"),
        r("tools/call without name", tc, r#"{"arguments":{"x":"@M"}}"#, PARAMS, "params.name"),
        r("tools/call name a number", tc, r#"{"name":7,"arguments":{"x":"@M"}}"#, PARAMS, "params.name"),
        r("tools/call name null", tc, r#"{"name":null,"arguments":{"x":"@M"}}"#, PARAMS, "params.name"),
        r("tools/call name an array", tc, r#"{"name":["echo","@M"]}"#, PARAMS, "params.name"),
        r("tools/call name an object", tc, r#"{"name":{"echo":"@M"}}"#, PARAMS, "params.name"),
        r("tools/call arguments an array", tc, r#"{"name":"echo","arguments":["@M"]}"#, PARAMS, "arguments"),
        r("tools/call arguments a string", tc, r#"{"name":"echo","arguments":"@M"}"#, PARAMS, "arguments"),
        r("tools/call name twice", tc, r#"{"name":"echo","arguments":{"x":"@M"},"name":"crash"}"#, PARSE, "duplicate key"),
        r("tools/call name twice, one escaped", tc, r#"{"name":"echo","arguments":{"x":"@M"},"n\u0061me":"crash"}"#, PARSE, "duplicate key"),
        r("prompts/get without name", "prompts/get", r#"{"arguments":{"x":"@M"}}"#, PARAMS, "params.name"),
        r("prompts/get name a number", "prompts/get", r#"{"name":1,"arguments":{"x":"@M"}}"#, PARAMS, "params.name"),
        r("prompts/get arguments an array", "prompts/get", r#"{"name":"p","arguments":["@M"]}"#, PARAMS, "arguments"),
        r("resources/read without uri", "resources/read", r#"{"name":"@M"}"#, PARAMS, "params.uri"),
        r("resources/read uri a number", "resources/read", r#"{"uri":1,"x":"@M"}"#, PARAMS, "params.uri"),
        r("resources/read uri twice", "resources/read", r#"{"uri":"test://a","uri":"test://@M"}"#, PARSE, "duplicate key"),
        r("resources/subscribe uri null", "resources/subscribe", r#"{"uri":null,"x":"@M"}"#, PARAMS, "params.uri"),
        r("resources/unsubscribe uri an array", "resources/unsubscribe", r#"{"uri":["test://@M"]}"#, PARAMS, "params.uri"),
        r("completion/complete without ref", "completion/complete", r#"{"argument":{"name":"a","value":"@M"}}"#, PARAMS, "params.ref"),
        r("completion/complete ref a string", "completion/complete", r#"{"ref":"@M"}"#, PARAMS, "params.ref"),
        r("completion/complete ref of unknown type", "completion/complete", r#"{"ref":{"type":"ref/@M","name":"p"}}"#, PARAMS, "params.ref"),
        r("completion/complete ref/prompt without name", "completion/complete", r#"{"ref":{"type":"ref/prompt","uri":"@M"}}"#, PARAMS, "params.ref"),
        r("completion/complete ref/resource uri a number", "completion/complete", r#"{"ref":{"type":"ref/resource","uri":1,"x":"@M"}}"#, PARAMS, "params.ref"),
    ]
}

/// Sizes: nesting, key counts, a huge target.
#[rustfmt::skip]
fn size_rows(w: &World) -> Vec<Row> {
    let nest = |n: usize| format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"x":{}"@M"{}}}}}}}"#, "[".repeat(n), "]".repeat(n));
    let many = |prefix: &str, suffix: &str| {
        let keys: Vec<String> = (0..10_000).map(|i| format!(r#""k{i}":"@M""#)).collect();
        format!("{prefix}{}{suffix}", keys.join(","))
    };
    let top = many(r#"{"jsonrpc":"2.0","id":1,"method":"ping","#, "}");
    let dup = many(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"#, r#","k0":1}}}"#);
    let name = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{}","arguments":{{}}}}}}"#, "@M".repeat((1 << 20) / MARKER.len()));
    vec![
        row("nesting 65 levels in arguments", w.authed(nest(62)), 400, PARSE, "nested too deeply"),
        row("nesting 100,000 levels", w.authed("[".repeat(100_000)), 400, PARSE, "nested too deeply"),
        row("10,000 top-level members", w.authed(top), 400, INVALID, "each once"),
        row("10,000 argument keys, the last a duplicate", w.authed(dup), 400, PARSE, "duplicate key"),
        // Targets are bounded (4096 bytes), like methods (128 bytes).
        row("tool name of 1 MiB", w.authed(name), 400, PARAMS, "name"),
    ]
}

/// Encodings and JSON extensions; batches and non-objects; header bytes only the wire can carry.
#[rustfmt::skip]
fn encoding_rows(w: &World) -> Vec<Row> {
    let b = |name: &str, body: &[u8], code, says| row(name, w.authed(body), 400, code, says);
    let utf16: Vec<u8> = std::iter::once(0xFEFFu16).chain(m(ECHO).iter().map(|&c| u16::from(c))).flat_map(|u| u.to_le_bytes()).collect();
    let utf16be: Vec<u8> = m(ECHO).iter().flat_map(|&c| [0u8, c]).collect();
    let mut rows = vec![
        b("UTF-8 byte-order mark", &[b"\xEF\xBB\xBF".as_slice(), ECHO.as_bytes()].concat(), PARSE, "byte-order mark"),
        b("UTF-16LE body with BOM", &utf16, PARSE, "not strict JSON"),
        b("UTF-16BE body without BOM", &utf16be, PARSE, "not strict JSON"),
        b("invalid UTF-8 in a string", b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"x\":\"@M\xff\"}}", PARSE, "UTF-8"),
        b("overlong UTF-8 (C0 80)", b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"x\":\"@M\xc0\x80\"}}", PARSE, "UTF-8"),
        b("UTF-8-encoded surrogate (ED A0 80)", b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"x\":\"@M\xed\xa0\x80\"}}", PARSE, "UTF-8"),
        b("lone high surrogate escape", br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"@M\ud800"}}"#, PARSE, "surrogate"),
        b("lone low surrogate escape", br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"@M\udc00"}}"#, PARSE, "surrogate"),
        b("high surrogate + non-surrogate", br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"@M\ud800\u0041"}}"#, PARSE, "surrogate"),
        b("raw newline in a string", b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"x\":\"@M\nx\"}}", PARSE, "control character"),
        b("raw NUL in a string", b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"x\":\"@M\0\"}}", PARSE, "control character"),
        b("invalid escape \\x", br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"@M\x41"}}"#, PARSE, "escape"),
        b("line comment", b"// @M\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", PARSE, "not strict JSON"),
        b("block comment", br#"{"jsonrpc":"2.0",/* @M */"id":1,"method":"ping"}"#, PARSE, "not strict JSON"),
        b("trailing garbage", br#"{"jsonrpc":"2.0","id":1,"method":"ping"} @M"#, PARSE, "after the JSON value"),
        b("a second message after a newline", &[br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#.as_slice(), b"\n", ECHO.as_bytes()].concat(), PARSE, "after the JSON value"),
        b("NaN", br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":NaN,"y":"@M"}}"#, PARSE, "not strict JSON"),
        b("-Infinity", br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":-Infinity,"y":"@M"}}"#, PARSE, "not strict JSON"),
        b("leading zero 01", br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":01,"y":"@M"}}"#, PARSE, "not strict JSON"),
        b("single quotes", br#"{'jsonrpc':'2.0','id':1,'method':'ping','params':{'x':'@M'}}"#, PARSE, "not strict JSON"),
        b("trailing comma in an object", br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"@M",}}"#, PARSE, "not strict JSON"),
        b("trailing comma in an array", br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":["@M",]}}"#, PARSE, "not strict JSON"),
        b("unterminated string", br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"@M"#, PARSE, "unterminated"),
        b("a batch", &[b"[".as_slice(), ECHO.as_bytes(), b"]"].concat(), INVALID, "batches"),
        b("a nested batch", &[b"[[".as_slice(), ECHO.as_bytes(), b"]]"].concat(), INVALID, "batches"),
        b("an empty batch", b"[]", INVALID, "batches"),
        b("a number, not an object", b"42", INVALID, "JSON object"),
        b("a string, not an object", br#""@M""#, INVALID, "JSON object"),
        b("null, not an object", b"null", INVALID, "JSON object"),
    ];
    // The http crate will not build these header values; the gateway's own server (hyper) must
    // refuse them before the pipeline sees a request.
    // The last one would pass if read, so a lenient reading shows as a wrong status.
    let good = format!("X-API-Key: {}\r\nMcp-Session-Id: {}\r\nMCP-Protocol-Version: {PROTOCOL}", w.user.key, w.session);
    for (name, header) in [
        ("wire: X-API-Key with a bare CR", b"X-API-Key: SECRET-wire-cr\rX-Tenant-ID: other".to_vec()),
        ("wire: X-API-Key folded over CR-LF", b"X-API-Key: SECRET-wire-fold\r\n SECRET-wire-folded".to_vec()),
        ("wire: X-API-Key with a NUL", b"X-API-Key: SECRET-wire-nul\0x".to_vec()),
        ("wire: a header line without a colon", b"X-API-Key SECRET-wire-nocolon".to_vec()),
        ("wire: two different Content-Lengths", format!("{good}\r\nContent-Length: 3").into_bytes()),
    ] {
        let how = How::Wire(wire_post(&header));
        rows.push(Row { name: name.into(), on: On::Main, how, status: 400, code: None, says: "", forwarded: false });
    }
    rows
}
