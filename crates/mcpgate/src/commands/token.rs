//! `mcpgate token mint`: an HS256 test token, for operators trying a JWT setup (seed 001/002's
//! `JWT_SECRET`).

use crate::cli::MintArgs;
use anyhow::{Context, Result, bail};
use mcpgate_gateway::auth::jwt::mint_hs256;
use serde_json::{Map, Value, json};

pub fn mint(a: MintArgs) -> Result<()> {
    let secret = std::env::var(&a.secret_env).with_context(|| format!("{} is not set", a.secret_env))?;
    let now = mcpgate_gateway::clock::unix_s();
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(a.sub));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + super::parse_duration(&a.ttl)?));
    if let Some(s) = a.scope {
        claims.insert("scope".into(), json!(s));
    }
    if let Some(t) = a.tenant {
        claims.insert("tenant_id".into(), json!(t));
    }
    if !a.roles.is_empty() {
        claims.insert("roles".into(), json!(a.roles));
    }
    if let Some(aud) = a.aud {
        claims.insert("aud".into(), json!(aud));
    }
    if let Some(iss) = a.iss {
        claims.insert("iss".into(), json!(iss));
    }
    for c in a.claims {
        let Some((k, v)) = c.split_once('=') else {
            bail!("--claim {c:?}: write key=value")
        };
        let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
        claims.insert(k.to_string(), value);
    }
    let token = mint_hs256(secret.as_bytes(), &Value::Object(claims)).map_err(anyhow::Error::msg)?;
    println!("{token}");
    Ok(())
}
