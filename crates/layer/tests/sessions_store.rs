//! Session ownership lives in the session store: two layers (replicas) on one store know the
//! same sessions and owners and count one cap between them; a layer on a store of its own does
//! not know the other's sessions; a store that cannot answer refuses (503, Retry-After) instead
//! of letting a session through unchecked, and its error text stays out of the answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use http::{Request, Response, StatusCode};
use mcpgate_layer::{Broadcast, McpGateLayer, Stores};
use mcpgate_store::SessionStore;
use mcpgate_store::memory::MemoryStore;
use mcpgate_store::unavailable::Unavailable;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tower::{Layer, Service, ServiceExt};

const ALICE: &str = "mcp_alicekey01_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const BOB: &str = "mcp_bobkey0001_fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

fn post(key: &str, session: Option<&str>, body: &str) -> Request<Body> {
    let mut r = Request::post("/mcp")
        .header("host", "127.0.0.1:8080")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("x-api-key", key);
    if let Some(s) = session {
        r = r.header("mcp-session-id", s);
    }
    r.body(Body::from(body.to_string())).unwrap()
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
const CALL: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"count","arguments":{}}}"#;

async fn layer(sessions: Arc<dyn SessionStore>, broadcast: Arc<Broadcast>, cap: usize) -> McpGateLayer {
    let keys = serde_json::json!({
        ALICE: {"userId": "alice", "role": "user", "permissions": ["read"]},
        BOB: {"userId": "bob", "role": "user", "permissions": ["read"]},
    });
    McpGateLayer::builder()
        .api_keys_json(&keys.to_string())
        .tool_needs_permission("count", "read")
        .config(|raw| raw.upstream.max_sessions_per_principal = Some(cap))
        .stores(Stores {
            sessions,
            broadcast,
            ..Stores::memory()
        })
        .build()
        .await
        .unwrap()
}

/// The wrapped service: issues a fresh session id on every initialize; counts what reaches it.
fn service(
    reached: Arc<AtomicUsize>,
) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send> + Clone + Send {
    tower::service_fn(move |req: Request<Body>| {
        let n = reached.fetch_add(1, Ordering::SeqCst);
        async move {
            let body = axum::body::to_bytes(req.into_body(), 1 << 16).await.unwrap_or_default();
            let mut r = Response::new(Body::from(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#));
            r.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            if String::from_utf8_lossy(&body).contains("\"initialize\"") {
                r.headers_mut()
                    .insert("mcp-session-id", format!("sess-{n}").parse().unwrap());
            }
            Ok::<_, Infallible>(r)
        }
    })
}

#[tokio::test]
async fn replicas_on_one_store_share_sessions_and_the_cap() {
    let shared: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    // Replicas share the store and the broadcast (Redis pub/sub in a real deployment), over
    // which a session ended at one is told to the others, who remember owners.
    let told = Broadcast::local();
    let (a, b) = (
        layer(shared.clone(), told.clone(), 2).await,
        layer(shared, told, 2).await,
    );
    let lone = layer(Arc::new(MemoryStore::new()), Broadcast::local(), 2).await;
    let reached = Arc::new(AtomicUsize::new(0));
    let (sa, sb, sl) = (
        a.layer(service(reached.clone())),
        b.layer(service(reached.clone())),
        lone.layer(service(reached.clone())),
    );

    let r = sa.clone().oneshot(post(ALICE, None, INIT)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let id = r.headers()["mcp-session-id"].to_str().unwrap().to_string();

    // Opened through A, used through B by its owner; another principal is refused at B.
    let r = sb.clone().oneshot(post(ALICE, Some(&id), CALL)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "B did not know A's session");
    let r = sb.clone().oneshot(post(BOB, Some(&id), CALL)).await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "B let another principal use Alice's session"
    );
    // A gateway on a store of its own has never seen the session.
    let r = sl.clone().oneshot(post(ALICE, Some(&id), CALL)).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // One cap for both: Alice's second session through B fills it; a third through A is refused.
    let r = sb.clone().oneshot(post(ALICE, None, INIT)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let before = reached.load(Ordering::SeqCst);
    let r = sa.clone().oneshot(post(ALICE, None, INIT)).await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the cap was counted per replica"
    );
    assert_eq!(
        reached.load(Ordering::SeqCst),
        before,
        "a refused initialize reached the service"
    );

    // Ended through B: unknown at A.
    let del = Request::delete("/mcp")
        .header("host", "127.0.0.1:8080")
        .header("x-api-key", ALICE)
        .header("mcp-session-id", &id)
        .body(Body::empty())
        .unwrap();
    let r = sb.oneshot(del).await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let r = sa.oneshot(post(ALICE, Some(&id), CALL)).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "a session ended at B lived on at A");
    for l in [a, b, lone] {
        l.shutdown().await;
    }
}

#[tokio::test]
async fn a_store_that_cannot_answer_refuses_sessions() {
    let l = layer(
        Arc::new(Unavailable("redis://10.0.0.9 refused (secret-detail)".into())),
        Broadcast::local(),
        10,
    )
    .await;
    let reached = Arc::new(AtomicUsize::new(0));
    let svc = l.layer(service(reached.clone()));
    for req in [post(ALICE, Some("sess-x"), CALL), post(ALICE, None, INIT)] {
        let r = svc.clone().oneshot(req).await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()["retry-after"], "5");
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("cannot check sessions"), "{text}");
        assert!(!text.contains("secret-detail") && !text.contains("10.0.0.9"), "{text}");
    }
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "an unchecked request reached the service"
    );
    // A call without a session needs no session store.
    let r = svc.oneshot(post(ALICE, None, CALL)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    l.shutdown().await;
}
