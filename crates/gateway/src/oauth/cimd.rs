//! Client ID Metadata Documents (CIMD): a client whose `client_id` is an https URL publishes its
//! metadata there (ChatGPT, Claude). The document is fetched through `guarded_fetch` (no private,
//! loopback, link-local or ULA address unless the operator trusts the network; every redirect
//! re-checked; the resolved address pinned; 64 KiB and 5 s at most), read as strict JSON, checked
//! (its `client_id` is exactly the URL; redirect URIs https or loopback http; no shared secret —
//! a public document cannot hold one), and cached as a client record for as long as its
//! `Cache-Control` allows (between 1 minute and 1 day; 1 hour when it says nothing).

use super::OAuthServer;
use super::register::check_redirect;
use crate::guarded_fetch::{self, FetchPolicy};
use mcpgate_store::oauth::{ClientKind, ClientRecord};
use serde::Deserialize;
use std::time::Duration;

const MIN_CACHE: Duration = Duration::from_secs(60);
const MAX_CACHE: Duration = Duration::from_secs(86_400);
const DEFAULT_CACHE: Duration = Duration::from_secs(3_600);

/// Whether `client_id` names a metadata document: an https URL with a path (or an http one, which
/// the fetch allows only to a trusted network).
pub fn is_document_url(client_id: &str) -> bool {
    (client_id.starts_with("https://") || client_id.starts_with("http://"))
        && reqwest::Url::parse(client_id).is_ok_and(|u| u.path() != "/" && !u.path().is_empty())
}

#[derive(Deserialize)]
struct Document {
    client_id: String,
    redirect_uris: Vec<String>,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    jwks: Option<serde_json::Value>,
    #[serde(default)]
    jwks_uri: Option<String>,
}

/// Where CIMD may be fetched from, as configured.
#[derive(Debug, Clone, Default)]
pub struct CimdPolicy {
    pub enabled: bool,
    /// Hosts whose documents are accepted (empty: any public host).
    pub allowed_hosts: Vec<String>,
    pub denied_hosts: Vec<String>,
    pub fetch: FetchPolicy,
}

impl CimdPolicy {
    fn host_allowed(&self, url: &reqwest::Url) -> bool {
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
            return false;
        };
        // `example.com.` is `example.com` to DNS: a trailing dot would step around both lists.
        if host.ends_with('.') {
            return false;
        }
        let matches = |h: &String| {
            let h = h.to_ascii_lowercase();
            host == h || host.ends_with(&format!(".{h}"))
        };
        !self.denied_hosts.iter().any(matches)
            && (self.allowed_hosts.is_empty() || self.allowed_hosts.iter().any(matches))
    }
}

/// Fetches, checks and caches the document `client_id` names.
pub async fn load(o: &OAuthServer, client_id: &str) -> Result<ClientRecord, String> {
    let policy = &o.settings.cimd;
    let url = reqwest::Url::parse(client_id).map_err(|_| "the client_id is not a URL".to_string())?;
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err("a client_id URL may not carry a fragment or user info".into());
    }
    if url.path().split('/').any(|seg| seg == "." || seg == "..") || url.as_str() != client_id {
        return Err("the client_id URL is not in its normal form".into());
    }
    if !policy.host_allowed(&url) {
        return Err("this server does not accept clients from that host".into());
    }
    let fetched = guarded_fetch::fetch(client_id, &policy.fetch)
        .await
        .map_err(|e| format!("fetching the client's metadata document failed: {e}"))?;
    let json_type = fetched
        .content_type
        .as_deref()
        .is_some_and(|t| t == "application/json" || (t.starts_with("application/") && t.ends_with("+json")));
    if !json_type {
        return Err("the metadata document is not served as application/json".into());
    }
    let strict = mcpgate_core::jsonrpc::canonical::canonicalize(&fetched.body)
        .map_err(|e| format!("the metadata document is not strict JSON: {e}"))?;
    let doc: Document =
        serde_json::from_slice(&strict).map_err(|e| format!("the metadata document is malformed: {e}"))?;
    if doc.client_id != client_id {
        return Err("the metadata document's client_id differs from its URL".into());
    }
    if doc.redirect_uris.is_empty() || doc.redirect_uris.len() > 20 {
        return Err("the metadata document must list 1 to 20 redirect_uris".into());
    }
    for r in &doc.redirect_uris {
        check_redirect(r)?;
    }
    let method = doc.token_endpoint_auth_method.unwrap_or_else(|| "none".into());
    match method.as_str() {
        "none" => {}
        "private_key_jwt" if doc.jwks.is_some() || doc.jwks_uri.is_some() => {}
        "private_key_jwt" => return Err("private_key_jwt needs jwks or jwks_uri in the document".into()),
        other => {
            return Err(format!(
                "token_endpoint_auth_method {other:?} is not accepted for a metadata document (none or private_key_jwt)"
            ));
        }
    }
    if let Some(u) = &doc.jwks_uri
        && !u.starts_with("https://")
        && policy.fetch.trusted_networks.is_empty()
    {
        return Err("jwks_uri must be https".into());
    }
    let grant_types = doc.grant_types.unwrap_or_else(|| vec!["authorization_code".into()]);
    if grant_types
        .iter()
        .any(|g| g != "authorization_code" && g != "refresh_token")
    {
        return Err("grant_types may be authorization_code and refresh_token".into());
    }
    let scope = doc.scope.map(|s| {
        s.split(' ')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    });
    if scope
        .as_ref()
        .is_some_and(|v| v.iter().any(|x| !super::settings::is_scope_token(x)))
    {
        return Err("scope is not a list of scope tokens".into());
    }
    let now = o.clock.unix_s();
    let life = fetched.max_age.unwrap_or(DEFAULT_CACHE).clamp(MIN_CACHE, MAX_CACHE);
    let record = ClientRecord {
        client_id: client_id.to_string(),
        kind: ClientKind::MetadataDocument,
        name: doc
            .client_name
            .map(|n| super::page::display_name(&n))
            .filter(|n| !n.is_empty()),
        secret_hash: None,
        auth_method: method,
        redirect_uris: doc.redirect_uris,
        grant_types,
        scope,
        jwks: doc.jwks.map(|j| j.to_string()),
        jwks_uri: doc.jwks_uri,
        created_at: now,
        expires_at: Some(now + i64::try_from(life.as_secs()).unwrap_or(3_600)),
    };
    if let Err(e) = o.clients.put_client(&record).await {
        // Still usable for this request; fetched again next time.
        tracing::warn!(error = %e, "could not cache a client metadata document");
    }
    tracing::info!(client_id, "client metadata document fetched");
    Ok(record)
}
