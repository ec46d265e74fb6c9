//! Secrets named by environment variable (`env:VAR`), never written inline: a secret on a command
//! line is visible to every user of the machine (`ps`), and one in a profile file ends up in
//! backups and repositories.

use std::fmt;

/// A secret value; `Debug` shows only that there is one.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Why a secret or value could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("{what}: give the name of an environment variable as env:NAME (secrets are never written inline)")]
    Inline { what: String },
    #[error("{what}: environment variable {var} is not set or empty")]
    Unset { what: String, var: String },
    #[error("{what}: {var:?} is not a valid environment variable name")]
    BadName { what: String, var: String },
}

impl Secret {
    /// A secret already in hand (from a library caller's own store).
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// Reads `spec`, which must be `env:NAME`, from `env`. `what` names the flag or key in errors.
    pub fn from_env_ref(what: &str, spec: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Secret, SecretError> {
        let Some(var) = spec.strip_prefix("env:") else {
            return Err(SecretError::Inline { what: what.into() });
        };
        read_var(what, var, env).map(Secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A value that may be written inline or named as `env:NAME` (header values: a tenant id is not a
/// secret, an API key is).
pub fn value_or_env(what: &str, spec: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Secret, SecretError> {
    match spec.strip_prefix("env:") {
        Some(var) => read_var(what, var, env).map(Secret),
        None => Ok(Secret(spec.to_string())),
    }
}

fn read_var(what: &str, var: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, SecretError> {
    let valid = !var.is_empty()
        && !var.starts_with(|c: char| c.is_ascii_digit())
        && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(SecretError::BadName {
            what: what.into(),
            var: var.into(),
        });
    }
    env(var).filter(|v| !v.is_empty()).ok_or_else(|| SecretError::Unset {
        what: what.into(),
        var: var.into(),
    })
}

/// The process's environment, for [`Secret::from_env_ref`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("s3cret".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn only_env_references_are_secrets() {
        assert_eq!(
            Secret::from_env_ref("--bearer", "env:KEY", &env).unwrap().expose(),
            "s3cret"
        );
        let inline = Secret::from_env_ref("--bearer", "s3cret", &env).unwrap_err();
        assert!(matches!(inline, SecretError::Inline { .. }));
        assert!(!inline.to_string().contains("s3cret"));
        assert!(matches!(
            Secret::from_env_ref("--bearer", "env:NOPE", &env),
            Err(SecretError::Unset { .. })
        ));
        assert!(matches!(
            Secret::from_env_ref("--bearer", "env:EMPTY", &env),
            Err(SecretError::Unset { .. })
        ));
        for bad in ["env:", "env:1X", "env:A-B", "env:A B", "env:$X"] {
            assert!(matches!(
                Secret::from_env_ref("--bearer", bad, &env),
                Err(SecretError::BadName { .. })
            ));
        }
        assert_eq!(format!("{:?}", Secret::new("s3cret")), "Secret(…)");
        assert_eq!(value_or_env("--tenant", "acme", &env).unwrap().expose(), "acme");
        assert_eq!(value_or_env("--header", "env:KEY", &env).unwrap().expose(), "s3cret");
    }
}
