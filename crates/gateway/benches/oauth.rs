//! Micro-benchmarks of the authorization server, in process on a real SQLite store: a whole code
//! flow (authorize with header sign-in → code → `/token` → an access and a refresh token), and one
//! refresh (the refresh token rotated, a new access token signed). Each iteration is one HTTP
//! exchange (or two) through the gateway's router, store writes included.
//! Run: `cargo bench -p mcpgate-gateway --bench oauth`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use base64::Engine;
use divan::Bencher;
use http::Request;
use mcpgate_testkit::apikey::key;
use mcpgate_testkit::harness::{Gw, Setup};
use sha2::{Digest, Sha256};
use std::sync::{Mutex, OnceLock};

fn main() {
    divan::main();
}

const VERIFIER: &str = "bench-verifier-0123456789abcdef0123456789abcdef";
const REDIRECT: &str = "http://127.0.0.1/cb";

struct Fixture {
    rt: tokio::runtime::Runtime,
    gw: Gw,
    key: String,
    client: String,
    refresh: Mutex<String>,
}

fn form_post(path: &str, body: String) -> Request<Body> {
    Request::post(path)
        .header("host", "localhost")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap()
}

async fn code_and_tokens(f_gw: &Gw, key: &str, client: &str) -> serde_json::Value {
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
    let q = format!(
        "/authorize?response_type=code&client_id={client}&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_challenge={challenge}&code_challenge_method=S256&state=s&resource=http%3A%2F%2Flocalhost%2Fmcp"
    );
    let r = f_gw
        .send(
            Request::get(q)
                .header("host", "localhost")
                .header("x-api-key", key)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let loc = r.header("location").unwrap().to_string();
    let code = loc
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let t = f_gw
        .send(form_post(
            "/token",
            format!("grant_type=authorization_code&code={code}&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_verifier={VERIFIER}&client_id={client}"),
        ))
        .await;
    assert_eq!(t.status, 200, "{}", t.text);
    t.body
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (gw, key, client, refresh) = rt.block_on(async {
            let setup = Setup::new("public_url = \"http://localhost\"\n[oauth]\nrefresh_grace_s = 0\n");
            let k = setup.key(key("bench").perms(&["*"]));
            let gw = setup.start().await;
            let r = gw
                .send(
                    Request::post("/register")
                        .header("host", "localhost")
                        .header("content-type", "application/json")
                        .body(Body::from(format!(
                            r#"{{"redirect_uris":["{REDIRECT}"],"token_endpoint_auth_method":"none"}}"#
                        )))
                        .unwrap(),
                )
                .await;
            let client = r.body["client_id"].as_str().unwrap().to_string();
            let tokens = code_and_tokens(&gw, &k.key, &client).await;
            let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
            (gw, k.key, client, refresh)
        });
        Fixture {
            rt,
            gw,
            key,
            client,
            refresh: Mutex::new(refresh),
        }
    })
}

/// Authorize (header sign-in, a code stored) then `/token` (the code taken, a grant and its
/// first refresh token stored, an access token signed).
#[divan::bench(sample_count = 200)]
fn code_flow_issues_a_token_pair(b: Bencher) {
    let f = fixture();
    b.bench(|| f.rt.block_on(code_and_tokens(&f.gw, &f.key, &f.client)));
}

/// `/token` with grant_type=refresh_token: the token rotated in the store, a new pair issued.
#[divan::bench(sample_count = 200)]
fn refresh(b: Bencher) {
    let f = fixture();
    b.bench(|| {
        let old = f.refresh.lock().unwrap().clone();
        let t = f.rt.block_on(f.gw.send(form_post(
            "/token",
            format!("grant_type=refresh_token&refresh_token={old}&client_id={}", f.client),
        )));
        assert_eq!(t.status, 200, "{}", t.text);
        *f.refresh.lock().unwrap() = t.body["refresh_token"].as_str().unwrap().to_string();
    });
}
