//! The layer in process, with a recording tower service behind it: what reaches the wrapped
//! service (the caller as an extension; never the credential, the query string or a refused call)
//! and what a client is told.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use http::{Request, Response, StatusCode};
use mcpgate_layer::{Caller, McpGateLayer, Role};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use tower::{Layer, ServiceExt};

const ADMIN: &str = "mcp_layeradm1_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const READER: &str = "mcp_layerrd01_fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

/// What the wrapped service saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    uri: String,
    headers: Vec<String>,
    body: String,
    user: Option<String>,
    role: Option<Role>,
}

type Log = Arc<Mutex<Vec<Seen>>>;

async fn layer() -> McpGateLayer {
    let keys = serde_json::json!({
        ADMIN: {"userId": "ana", "role": "admin", "permissions": ["*"]},
        READER: {"userId": "rob", "role": "user", "permissions": ["read"]},
    });
    McpGateLayer::builder()
        .api_keys_json(&keys.to_string())
        .tool_needs_permission("count", "read")
        .tool_needs_role("admin_*", Role::Admin)
        .config(|raw| raw.auth.allow_query_key = true)
        .build()
        .await
        .unwrap()
}

/// A service that records what it got and answers a JSON-RPC result for id 1.
fn recorder(
    log: Log,
) -> impl tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future = impl Send>
+ Clone
+ Send
+ Sync
+ 'static {
    tower::service_fn(move |req: Request<Body>| {
        let log = log.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
            let caller = parts.extensions.get::<Caller>();
            log.lock().unwrap().push(Seen {
                uri: parts.uri.to_string(),
                headers: parts
                    .headers
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?")))
                    .collect(),
                body: String::from_utf8_lossy(&body).into_owned(),
                user: caller.map(|c| c.user_id().to_string()),
                role: caller.map(|c| c.role()),
            });
            let mut r = Response::new(Body::from(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#));
            r.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            r.headers_mut().insert("set-cookie", "inner=1".parse().unwrap());
            Ok::<_, Infallible>(r)
        }
    })
}

fn post(uri: &str, body: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::post(uri)
        .header("host", "127.0.0.1:8080")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::from(body.to_string())).unwrap()
}

async fn text(r: Response<Body>) -> (StatusCode, http::HeaderMap, String) {
    let (head, body) = r.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    (head.status, head.headers, String::from_utf8_lossy(&bytes).into_owned())
}

const CALL_COUNT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"count","arguments":{}}}"#;
const CALL_RESET: &str =
    r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_reset","arguments":{}}}"#;

#[tokio::test]
async fn the_wrapped_service_gets_the_caller_and_never_the_credential() {
    let log = Log::default();
    let svc = layer().await.layer(recorder(log.clone()));
    // The body as sent is not what is forwarded: the canonical form of what was read.
    let sent = "{ \"jsonrpc\":\"2.0\", \"id\":1, \"method\":\"tools/call\",\n \"params\":{\"name\":\"c\\u006funt\",\"arguments\":{}}}";
    let r = svc
        .clone()
        .oneshot(post(
            "/mcp?api_key=nothing&x=1",
            sent,
            &[("x-api-key", READER), ("cookie", "a=b")],
        ))
        .await
        .unwrap();
    let (status, headers, _) = text(r).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers.get("set-cookie").is_none(),
        "the inner service's cookie leaked out"
    );
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(s.user.as_deref(), Some("rob"));
    assert_eq!(s.role, Some(Role::User));
    assert_eq!(s.uri, "/mcp", "the query string must not reach the service");
    assert_eq!(
        s.body, CALL_COUNT,
        "the service must get the canonical bytes the policy decided on"
    );
    let all = s.headers.join("\n");
    assert!(!all.contains(&READER[14..]), "the key reached the service: {all}");
    assert!(
        !all.to_ascii_lowercase().contains("x-api-key") && !all.contains("cookie"),
        "{all}"
    );
    assert!(all.contains("host: 127.0.0.1:8080"), "{all}");
}

#[tokio::test]
async fn refused_calls_never_reach_the_service() {
    let log = Log::default();
    let svc = layer().await.layer(recorder(log.clone()));
    // A read-only key and the admin tool: 403 with a JSON-RPC error.
    let (status, _, body) = text(
        svc.clone()
            .oneshot(post("/mcp", CALL_RESET, &[("x-api-key", READER)]))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("insufficient role"), "{body}");
    // No credential: 401 pointing at the resource metadata.
    let (status, headers, _) = text(svc.clone().oneshot(post("/mcp", CALL_COUNT, &[])).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let challenge = headers.get("www-authenticate").unwrap().to_str().unwrap();
    assert!(challenge.contains("resource_metadata="), "{challenge}");
    // A wrong key, a duplicate key in the body, a forged Host, a PUT.
    let wrong = format!("{}00", &READER[..READER.len() - 2]);
    let (status, _, body) = text(
        svc.clone()
            .oneshot(post("/mcp", CALL_COUNT, &[("x-api-key", &wrong)]))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!body.contains(&wrong[14..]));
    let dup = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"count","name":"admin_reset"}}"#;
    let (status, _, _) = text(
        svc.clone()
            .oneshot(post("/mcp", dup, &[("x-api-key", ADMIN)]))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let mut forged = post("/mcp", CALL_COUNT, &[("x-api-key", ADMIN)]);
    forged.headers_mut().insert("host", "evil.example".parse().unwrap());
    let (status, _, _) = text(svc.clone().oneshot(forged).await.unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let put = Request::put("/mcp")
        .header("host", "127.0.0.1")
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = text(svc.clone().oneshot(put).await.unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers.get("allow").unwrap(), "GET, POST, DELETE");
    assert!(
        log.lock().unwrap().is_empty(),
        "a refused call reached the service: {:?}",
        log.lock().unwrap()
    );
    // The admin gets through, as themselves.
    let (status, _, _) = text(
        svc.oneshot(post("/mcp", CALL_RESET, &[("x-api-key", ADMIN)]))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(log.lock().unwrap()[0].user.as_deref(), Some("ana"));
}

#[tokio::test]
async fn a_layer_refuses_settings_a_file_would_refuse() {
    let bad = McpGateLayer::builder().public_url("ftp://nope").build().await;
    assert!(bad.is_err());
    let with_url = McpGateLayer::builder()
        .config(|raw| raw.upstream.url = Some("http://127.0.0.1:9/mcp".into()))
        .build()
        .await;
    let err = with_url.err().unwrap_or_default();
    assert!(err.contains("upstream"), "{err}");
}

#[tokio::test]
async fn a_failing_or_silent_service_is_a_gateway_error_not_a_hang() {
    let gate = McpGateLayer::builder()
        .api_keys_json(
            &serde_json::json!({ADMIN: {"userId": "ana", "role": "admin", "permissions": ["*"]}}).to_string(),
        )
        .request_timeout(std::time::Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    let failing = gate.layer(tower::service_fn(|_req: Request<Body>| async {
        Err::<Response<Body>, _>(std::io::Error::other("database at 10.0.0.7 down"))
    }));
    let (status, _, body) = text(
        failing
            .oneshot(post("/mcp", CALL_COUNT, &[("x-api-key", ADMIN)]))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(
        !body.contains("10.0.0.7"),
        "the service's error text reached the client: {body}"
    );
    let silent = gate.layer(tower::service_fn(|_req: Request<Body>| async {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        Ok::<_, Infallible>(Response::new(Body::empty()))
    }));
    let started = std::time::Instant::now();
    let (status, _, _) = text(
        silent
            .oneshot(post("/mcp", CALL_COUNT, &[("x-api-key", ADMIN)]))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
