//! Validation: defaults, layering, and errors that name the field and the fix.

use super::*;
use raw::Overrides;

fn check(toml: &str) -> Result<Config, String> {
    let raw = RawConfig::from_toml(toml)?;
    Config::validate(raw).map_err(|e| e.to_string())
}

/// Seeds 001/002: `JWT_SECRET` alone turns on HS256 verification; an `[auth.jwt]` section
/// (its own secret variable or issuer) is left as written; an empty variable turns on nothing.
#[test]
fn jwt_secret_alone_turns_on_hs256() {
    let env = |v: &'static str| move |k: &str| (k == raw::env::JWT_SECRET).then(|| v.to_string());
    let mut raw = RawConfig::default();
    raw.apply_env(env("a-secret-long-enough-for-hs256-0123456789")).unwrap();
    let jwt = raw.auth.jwt.clone().unwrap();
    assert_eq!(jwt.secret_env.as_deref(), Some("JWT_SECRET"));
    assert!(
        jwt.issuer.is_none() && jwt.audience.is_none(),
        "audience defaults to the resource"
    );
    let mut raw = RawConfig::from_toml("[auth.jwt]\nissuer = \"https://id.example\"").unwrap();
    raw.apply_env(env("a-secret-long-enough-for-hs256-0123456789")).unwrap();
    let jwt = raw.auth.jwt.unwrap();
    assert!(jwt.secret_env.is_none(), "a configured section wins");
    let mut raw = RawConfig::default();
    raw.apply_env(env("")).unwrap();
    assert!(raw.auth.jwt.is_none());
}

#[test]
fn defaults_and_layers() {
    let mut raw = RawConfig::from_toml("[upstream]\nurl = \"http://127.0.0.1:9/mcp\"").unwrap();
    raw.apply_env(|k| (k == raw::env::LISTEN).then(|| "127.0.0.1:4000".to_string()))
        .unwrap();
    raw.apply_overrides(&Overrides {
        upstream_cmd: Some("server --stdio 'a b'".into()),
        ..Default::default()
    });
    let c = Config::validate(raw).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:4000");
    match c.upstream {
        UpstreamConfig::Stdio(s) => {
            assert_eq!(s.program, "server");
            assert_eq!(s.args, vec!["--stdio", "a b"]);
        }
        other => panic!("CLI flag must win over the file: {other:?}"),
    }
    assert_eq!(c.http.allowed_hosts, loopback_hosts());
    assert_eq!(c.public_url, "http://127.0.0.1:4000");
}

#[test]
fn errors_name_the_field() {
    let cases = [
        ("lisen = \"x\"", "unknown field"),
        ("listen = \"nope\"\n[upstream]\nurl=\"http://a/\"", "listen:"),
        ("[upstream]\nurl = \"ftp://a\"", "upstream.url:"),
        ("[upstream]\nurl = \"http://a\"\ncommand = \"x\"", "upstream:"),
        ("", "no upstream"),
        ("[upstream]\ncommand = \"'unbalanced\"", "upstream.command:"),
        (
            "[upstream]\nurl = \"http://a\"\n[http]\nmax_body_bytes = 1",
            "http.max_body_bytes:",
        ),
        (
            "[upstream]\nurl = \"http://a\"\n[http]\nallowed_origins = [\"example.com\"]",
            "http.allowed_origins:",
        ),
    ];
    for (toml, want) in cases {
        let e = check(toml).unwrap_err();
        assert!(e.contains(want), "{toml:?}: {e}");
    }
}

#[test]
fn connection_limits_default_and_are_checked() {
    let c = check("[upstream]\nurl = \"http://a\"").unwrap();
    assert_eq!(c.http.header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.http.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.http.body_timeout, Duration::from_secs(30));
    assert_eq!(c.http.shutdown_grace, Duration::from_secs(10));
    assert_eq!(c.http.max_header_bytes, 16384);
    assert_eq!(c.http.max_connections, 10_000);
    assert_eq!(c.http.max_streams_per_principal, 10);
    assert_eq!(c.http.max_streams, 10_000);
    assert_eq!(c.max_sessions_per_principal, 100);
    assert_eq!(c.session_idle_timeout, Duration::from_secs(600));
    assert!(!c.metrics.require_auth);

    let set = "[upstream]\nurl = \"http://a\"\nmax_sessions_per_principal = 3\n[http]\n\
               header_read_timeout_s = 2\nidle_timeout_s = 5\nbody_timeout_s = 7\nshutdown_grace_s = 0\n\
               max_header_bytes = 8192\nmax_connections = 9\nmax_streams_per_principal = 1\nmax_streams = 4\n\
               [metrics]\nrequire_auth = true";
    let c = check(set).unwrap();
    assert_eq!(c.http.header_read_timeout, Duration::from_secs(2));
    assert_eq!(c.http.idle_timeout, Duration::from_secs(5));
    assert_eq!(c.http.body_timeout, Duration::from_secs(7));
    assert_eq!(c.http.shutdown_grace, Duration::ZERO);
    assert_eq!(
        (
            c.http.max_header_bytes,
            c.http.max_connections,
            c.http.max_streams_per_principal,
            c.http.max_streams
        ),
        (8192, 9, 1, 4)
    );
    assert_eq!(c.max_sessions_per_principal, 3);
    assert!(c.metrics.require_auth);

    let cases = [
        (
            "[http]\nheader_read_timeout_s = 0",
            "http.header_read_timeout_s: must be at least 1",
        ),
        ("[http]\nidle_timeout_s = 0", "http.idle_timeout_s: must be at least 1"),
        ("[http]\nbody_timeout_s = 0", "http.body_timeout_s: must be at least 1"),
        (
            "[http]\nmax_header_bytes = 4096",
            "http.max_header_bytes: must be between 8192",
        ),
        (
            "[http]\nmax_header_bytes = 2000000",
            "http.max_header_bytes: must be between 8192",
        ),
        (
            "[http]\nmax_connections = 0",
            "http.max_connections: must be at least 1",
        ),
        (
            "[http]\nmax_streams_per_principal = 0",
            "http.max_streams_per_principal:",
        ),
        ("[http]\nmax_streams = 0", "http.max_streams: must be at least 1"),
        ("[http]\nidle_timeout = 5", "unknown field"),
        ("[metrics]\nrequire_auth = \"yes\"", "invalid type"),
    ];
    for (section, want) in cases {
        let e = check(&format!("[upstream]\nurl = \"http://a\"\n{section}")).unwrap_err();
        assert!(e.contains(want), "{section:?}: {e}");
    }
    let e = check("[upstream]\nurl = \"http://a\"\nmax_sessions_per_principal = 0").unwrap_err();
    assert!(
        e.contains("upstream.max_sessions_per_principal: must be at least 1"),
        "{e}"
    );
}

#[test]
fn bad_env_values_are_named() {
    let mut raw = RawConfig::default();
    let e = raw
        .apply_env(|k| (k == raw::env::MAX_BODY_BYTES).then(|| "lots".to_string()))
        .unwrap_err();
    assert!(e.contains("MCPGATE_MAX_BODY_BYTES"));
}

#[test]
fn seed_004_oauth_variables_turn_on_github_sign_in() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    };
    let mut raw = RawConfig::default();
    raw.apply_env(vars(&[
        ("MCP_OAUTH_ENABLED", "true"),
        ("MCP_OAUTH_GITHUB_CLIENT_ID", "Iv1.abc"),
        ("MCP_OAUTH_REDIRECT_URI", "http://localhost:3210/auth/oauth/callback"),
    ]))
    .unwrap();
    let o = raw.oauth.as_ref().unwrap();
    assert_eq!(o.enabled, Some(true));
    assert_eq!(o.providers.len(), 1);
    assert_eq!(o.providers[0].client_id, "Iv1.abc");
    assert_eq!(
        o.providers[0].client_secret_env.as_deref(),
        Some("MCP_OAUTH_GITHUB_CLIENT_SECRET"),
        "the secret is read from its variable, never copied into the config"
    );
    assert_eq!(
        o.provider_redirect_uri.as_deref(),
        Some("http://localhost:3210/auth/oauth/callback")
    );

    // A GitHub provider in the file gets the variable's client id (no second provider).
    let mut raw =
        RawConfig::from_toml("[oauth]\n[[oauth.providers]]\nkind = \"github\"\nclient_id = \"old\"\n").unwrap();
    raw.apply_env(vars(&[("MCP_OAUTH_GITHUB_CLIENT_ID", "new")])).unwrap();
    let o = raw.oauth.as_ref().unwrap();
    assert_eq!((o.providers.len(), o.providers[0].client_id.as_str()), (1, "new"));

    // Off wins over the file; the provider variables without the server are an error, named.
    let mut raw = RawConfig::from_toml("[oauth]\n").unwrap();
    raw.apply_env(vars(&[("MCP_OAUTH_ENABLED", "false")])).unwrap();
    assert_eq!(raw.oauth.as_ref().unwrap().enabled, Some(false));
    let e = RawConfig::default()
        .apply_env(vars(&[("MCP_OAUTH_GITHUB_CLIENT_ID", "x")]))
        .unwrap_err();
    assert!(e.contains("MCP_OAUTH_ENABLED"), "{e}");
    let e = RawConfig::default()
        .apply_env(vars(&[("MCP_OAUTH_ENABLED", "maybe")]))
        .unwrap_err();
    assert!(e.contains("MCP_OAUTH_ENABLED"), "{e}");
}
