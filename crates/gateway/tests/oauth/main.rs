//! The authorization server (issue #11), in process, against the demo upstream: discovery, DCR,
//! authorize with header sign-in and with the consent form, the code and refresh grants, the
//! issued token on `/mcp` through the whole pipeline, revocation, and the negative cases with
//! their exact status and error code. No secret in any log line or error body.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod admin_attack;
mod attack;
mod cimd;
mod faults;
mod flows;
mod providers;
mod replicas;
mod rotation;
mod session;

use axum::body::Body;
use base64::Engine;
use http::Request;
use mcpgate_testkit::harness::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub(crate) const TOML: &str = "public_url = \"http://localhost\"\n[oauth]\nrefresh_grace_s = 5\n";
pub(crate) const RESOURCE: &str = "http://localhost/mcp";
pub(crate) const REDIRECT: &str = "http://127.0.0.1/callback";
pub(crate) const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-test-verifier";

pub(crate) fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub(crate) fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub(crate) async fn post_form(gw: &Gw, path: &str, body: &str, extra: &[(&str, &str)]) -> Resp {
    let mut b = Request::post(path)
        .header("host", "localhost")
        .header("content-type", "application/x-www-form-urlencoded");
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    gw.send(b.body(Body::from(body.to_string())).unwrap()).await
}

pub(crate) async fn get(gw: &Gw, path: &str, extra: &[(&str, &str)]) -> Resp {
    let mut b = Request::get(path).header("host", "localhost");
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    gw.send(b.body(Body::empty()).unwrap()).await
}

pub(crate) async fn register(gw: &Gw, metadata: Value) -> Resp {
    let req = Request::post("/register")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Body::from(metadata.to_string()))
        .unwrap();
    gw.send(req).await
}

pub(crate) async fn public_client(gw: &Gw) -> String {
    let r = register(
        gw,
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "client_name": "Test <b>client</b>"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.body.get("client_secret").is_none());
    r.body["client_id"].as_str().unwrap().to_string()
}

pub(crate) fn authorize_query(client_id: &str, redirect: &str, extra: &[(&str, &str)]) -> String {
    let ch = challenge(VERIFIER);
    let mut p = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect),
        ("code_challenge", ch.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "st-123"),
        ("resource", RESOURCE),
    ];
    for (k, v) in extra {
        p.retain(|(pk, _)| pk != k);
        if !v.is_empty() {
            p.push((k, v));
        }
    }
    format!("/authorize?{}", form(&p))
}

/// The query of a redirect's Location, by name.
pub(crate) fn location_params(r: &Resp) -> std::collections::HashMap<String, String> {
    let loc = r
        .header("location")
        .unwrap_or_else(|| panic!("no Location: {} {}", r.status, r.text));
    let q = loc.split_once('?').map(|x| x.1).unwrap_or("");
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

pub(crate) async fn code_for(gw: &Gw, client_id: &str, key: &str) -> String {
    let r = get(
        gw,
        &authorize_query(client_id, "http://127.0.0.1:53682/callback", &[]),
        &[("x-api-key", key)],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let loc = r.header("location").unwrap();
    assert!(loc.starts_with("http://127.0.0.1:53682/callback?"), "{loc}");
    let p = location_params(&r);
    assert_eq!(p["state"], "st-123");
    assert_eq!(p["iss"], "http://localhost", "RFC 9207 iss on every redirect");
    p["code"].clone()
}

pub(crate) async fn exchange(gw: &Gw, client_id: &str, code: &str, verifier: &str) -> Resp {
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", "http://127.0.0.1:53682/callback"),
        ("code_verifier", verifier),
        ("client_id", client_id),
        ("resource", RESOURCE),
    ]);
    post_form(gw, "/token", &body, &[]).await
}

pub(crate) async fn refresh(gw: &Gw, client_id: &str, token: &str) -> Resp {
    let body = form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", client_id),
    ]);
    post_form(gw, "/token", &body, &[]).await
}

pub(crate) fn oauth_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.body["error"], code, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
}
