//! Configuration (`config::raw::RawConfig::from_toml` → `config::Config::validate`, then the
//! sections validated when the gateway starts: `auth.jwt` and `auth.hmac`), and the policy's
//! glob matcher that the configured rules use on callers' tool names.
//!
//! Input: TOML text; or `#glob\n`, a pattern line, and the text to match (the rest).
//!
//! Invariants: nothing panics; every validation error names its field (`ConfigError::field` is
//! set and starts the message; `auth.jwt…` / `auth.hmac…` for the start-up validations); a
//! validated policy decides on any target without panicking; `glob` agrees with a reference
//! matcher (`*`: any run of characters, `?`: one character, anything else: itself).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpgate_core::policy::glob;
use mcpgate_gateway::auth::hmac::HmacAuth;
use mcpgate_gateway::auth::jwt::JwtConfig;
use mcpgate_gateway::config::Config;
use mcpgate_gateway::config::raw::RawConfig;

/// Secrets for whatever variable a config names: long enough, except `SHORT*`; `UNSET*` unset.
fn env(name: &str) -> Option<String> {
    if name.starts_with("UNSET") {
        None
    } else if name.starts_with("SHORT") {
        Some("short".into())
    } else {
        Some("fuzz-only-secret-0123456789abcdef-0123456789".into())
    }
}

/// Dynamic programming over characters, independent of the matcher under test.
fn reference_glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // m[i][j]: p[..i] matches t[..j]
    let mut m = vec![vec![false; t.len() + 1]; p.len() + 1];
    m[0][0] = true;
    for i in 1..=p.len() {
        m[i][0] = m[i - 1][0] && p[i - 1] == '*';
        for j in 1..=t.len() {
            m[i][j] = match p[i - 1] {
                '*' => m[i - 1][j] || m[i][j - 1],
                '?' => m[i - 1][j - 1],
                c => m[i - 1][j - 1] && c == t[j - 1],
            };
        }
    }
    m[p.len()][t.len()]
}

fn check_glob(rest: &str) {
    let (pattern, text) = rest.split_once('\n').unwrap_or((rest, ""));
    // Keep the reference's table small; the matcher itself is linear-ish.
    if pattern.len() > 256 || text.len() > 256 {
        let _ = glob(pattern, text);
        return;
    }
    assert_eq!(
        glob(pattern, text),
        reference_glob(pattern, text),
        "glob({pattern:?}, {text:?})"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(rest) = text.strip_prefix("#glob\n") {
        check_glob(rest);
        return;
    }
    let Ok(raw) = RawConfig::from_toml(text) else {
        return;
    };
    let jwt = raw.auth.jwt.clone();
    let hmac = raw.auth.hmac.clone();
    let cfg = match Config::validate(raw) {
        Ok(cfg) => cfg,
        Err(e) => {
            assert!(!e.field.is_empty(), "an error without a field: {e}");
            assert!(e.to_string().starts_with(e.field), "the message names its field");
            return;
        }
    };
    let resource = format!("{}/mcp", cfg.public_url);
    if let Some(jwt) = jwt
        && let Err(e) = JwtConfig::validate(jwt, &resource, &env)
    {
        assert!(e.starts_with("auth.jwt"), "a JWT config error that names no field: {e}");
    }
    if let Some(h) = hmac
        && let Err(e) = HmacAuth::new(h, &env)
    {
        assert!(
            e.starts_with("auth.hmac"),
            "an HMAC config error that names no field: {e}"
        );
    }
    for (method, target) in [
        ("tools/call", Some("echo")),
        ("tools/call", Some("")),
        ("resources/read", Some("file:///etc/passwd")),
        ("prompts/get", Some("ünï*?")),
        ("tools/list", None),
        ("initialize", None),
    ] {
        let _ = cfg.policy.decide(None, method, target);
        if let Some(t) = target {
            let _ = cfg.limits.for_tool(t);
        }
    }
});
