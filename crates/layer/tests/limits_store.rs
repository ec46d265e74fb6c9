//! A rate-limit store that cannot count: a limited caller's call is refused (503, Retry-After),
//! never let through uncounted, and the wrapped service is not reached; a caller without limits
//! is not affected; the store's error text stays in the log, not in the answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use http::{Request, Response, StatusCode};
use mcpgate_layer::{McpGateLayer, Stores};
use mcpgate_store::unavailable::Unavailable;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tower::{Layer, ServiceExt};

const LIMITED: &str = "mcp_limitedk01_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const FREE: &str = "mcp_freekey001_fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

fn call(key: &str) -> Request<Body> {
    Request::post("/mcp")
        .header("host", "127.0.0.1:8080")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("x-api-key", key)
        .body(Body::from(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"count","arguments":{}}}"#,
        ))
        .unwrap()
}

#[tokio::test]
async fn a_store_that_cannot_count_refuses_limited_callers() {
    let keys = serde_json::json!({
        LIMITED: {"userId": "lim", "role": "user", "permissions": ["read"], "rateLimit": {"requestsPerMinute": 100}},
        FREE: {"userId": "free", "role": "user", "permissions": ["read"]},
    });
    let layer = McpGateLayer::builder()
        .api_keys_json(&keys.to_string())
        .tool_needs_permission("count", "read")
        .stores(Stores {
            limits: Arc::new(Unavailable(
                "redis://10.0.0.9 connection refused (secret-detail)".into(),
            )),
            ..Stores::memory()
        })
        .build()
        .await
        .unwrap();
    let reached = Arc::new(AtomicUsize::new(0));
    let counter = reached.clone();
    let svc = layer.layer(tower::service_fn(move |_req: Request<Body>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async {
            let mut r = Response::new(Body::from(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#));
            r.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            Ok::<_, Infallible>(r)
        }
    }));

    let r = svc.clone().oneshot(call(LIMITED)).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers().get("retry-after").unwrap(), "5");
    let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("cannot count requests against limits"), "{text}");
    assert!(!text.contains("secret-detail") && !text.contains("10.0.0.9"), "{text}");
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "an uncounted call reached the service"
    );

    // No limits, nothing to count: the store is not asked.
    let r = svc.oneshot(call(FREE)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(reached.load(Ordering::SeqCst), 1);
    layer.shutdown().await;
}
