//! `mcpgate connect URL`: a stdio MCP client's way to a protected Streamable HTTP server
//! (`mcpgate_connect::bridge`), with the credentials the flags and the profile give. Only
//! JSON-RPC goes to stdout; everything said goes to stderr.

use crate::cli::ConnectArgs;
use mcpgate_connect::bridge::{self, Options};
use mcpgate_connect::profile::{self, Flags};
use mcpgate_connect::secret::process_env;
use mcpgate_connect::{Auth, auth::Chain, oauth};
use std::sync::Arc;

pub async fn run(mut args: ConnectArgs) -> anyhow::Result<()> {
    let (retry_unsafe, max_attempts) = (args.retry_unsafe, args.max_attempts);
    // Under --oauth, --client-id and --scope are the OAuth client's.
    let oauth_client = if args.oauth {
        Some((args.client_id.take(), args.scope.take()))
    } else {
        None
    };
    let mut resolved = profile::resolve(flags(args), &process_env, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some((client_id, scope)) = oauth_client {
        let dir = profile::config_dir(&process_env).ok_or_else(|| {
            anyhow::anyhow!("--oauth keeps tokens in a config directory: set MCPGATE_CONFIG_DIR or HOME")
        })?;
        let mut settings = oauth::OAuthSettings::new(resolved.url.clone(), oauth::cache_dir(&dir));
        settings.client_id = client_id;
        settings.scope = scope;
        let signed_in: Arc<dyn Auth> = Arc::new(oauth::OAuth::new(settings));
        resolved.auth = Arc::new(Chain(vec![resolved.auth, signed_in]));
    }
    tracing::info!(
        url = %resolved.url,
        profile = resolved.profile.as_deref().unwrap_or("-"),
        credentials = %resolved.auth.describe(),
        "connect: bridging stdio to the server"
    );
    let mut opts = Options::new(resolved.url, resolved.auth);
    opts.retry.retry_403 = resolved.retry_403;
    opts.retry.retry_unsafe = retry_unsafe;
    opts.retry.max_attempts = max_attempts;
    bridge::run(opts, tokio::io::stdin(), tokio::io::stdout()).await?;
    Ok(())
}

fn flags(a: ConnectArgs) -> Flags {
    Flags {
        url: a.url,
        profile: a.profile,
        headers: a.headers,
        tenant: a.tenant,
        bearer: a.bearer,
        key: a.key,
        fallback_key: a.fallback_key,
        key_header: a.key_header,
        jwt_secret: a.jwt_secret,
        jwt_claims: a.jwt_claims,
        jwt_ttl: a.jwt_ttl,
        jwt_audience: a.jwt_audience,
        hmac_secret: a.hmac_secret,
        hmac_key_id: a.hmac_key_id,
        hmac_key_header: a.hmac_key_header,
        client_credentials: a.client_credentials,
        token_url: a.token_url,
        client_id: a.client_id,
        client_secret: a.client_secret,
        scope: a.scope,
        token_auth: a.token_auth,
        resource: a.resource,
        retry_403: a.retry_403,
    }
}
