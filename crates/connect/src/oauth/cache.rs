//! The token cache: one JSON file per (MCP URL, issuer, client) holding that sign-in's tokens,
//! and one per (issuer, MCP URL) holding the client registered there, under a directory only the
//! user may enter (0700). Files are written 0600 and atomically (a temporary file in the same
//! directory, synced, then renamed over the old one), so a crash never leaves half a file and no
//! moment exists where the tokens are readable by others. A file that other users can read or
//! write, or that belongs to someone else, is not used: its tokens may have been read or planted,
//! so the user signs in again and the new file replaces it.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Write;
use std::path::PathBuf;

/// The file format's version, written in every file; files of another version are ignored.
const VERSION: u32 = 1;

/// A sign-in's tokens as stored. `Debug` shows no token.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct StoredTokens {
    pub version: u32,
    pub mcp_url: String,
    pub issuer: String,
    pub client_id: String,
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the access token was received, milliseconds since the Unix epoch.
    pub obtained_at_ms: u64,
    /// When it expires (`obtained_at + expires_in`); none: kept until refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
    /// The scope granted (or, when the server did not say, asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl StoredTokens {
    pub fn new(mcp_url: &str, issuer: &str, client_id: &str, access_token: String) -> StoredTokens {
        StoredTokens {
            version: VERSION,
            mcp_url: mcp_url.into(),
            issuer: issuer.into(),
            client_id: client_id.into(),
            access_token,
            refresh_token: None,
            obtained_at_ms: 0,
            expires_at_ms: None,
            scope: None,
        }
    }
}

impl fmt::Debug for StoredTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredTokens")
            .field("mcp_url", &self.mcp_url)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("access_token", &"<redacted>")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "<redacted>"))
            .field("expires_at_ms", &self.expires_at_ms)
            .field("scope", &self.scope)
            .finish()
    }
}

/// A client registered dynamically (RFC 7591) for this MCP server at this issuer. Public client:
/// there is no secret to keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Registration {
    pub version: u32,
    pub issuer: String,
    pub mcp_url: String,
    pub client_id: String,
    /// As registered: portless (`http://127.0.0.1/callback`, any port) or with the one port the
    /// server would accept.
    pub redirect_uri: String,
}

impl Registration {
    pub fn new(issuer: &str, mcp_url: &str, client_id: String, redirect_uri: String) -> Registration {
        Registration {
            version: VERSION,
            issuer: issuer.into(),
            mcp_url: mcp_url.into(),
            client_id,
            redirect_uri,
        }
    }
}

fn hashed(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        // Length-prefixed, so ("a", "bc") and ("ab", "c") differ.
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The tokens file of a sign-in.
pub(super) fn tokens_file(mcp_url: &str, issuer: &str, client_id: &str) -> String {
    format!("{}.json", hashed(&[mcp_url, issuer, client_id]))
}

/// The registration file of a (issuer, MCP URL).
pub(super) fn registration_file(issuer: &str, mcp_url: &str) -> String {
    format!("client-{}.json", hashed(&["registration", issuer, mcp_url]))
}

/// What loading a file found.
pub(super) enum Loaded<T> {
    Missing,
    /// Not used, and why (for the user).
    Refused(String),
    Found(T),
}

/// The cache directory.
#[derive(Debug, Clone)]
pub(super) struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: PathBuf) -> Store {
        Store { dir }
    }

    /// Creates the directory 0700 (and makes an existing one private).
    fn ensure_dir(&self) -> Result<(), String> {
        let shown = self.dir.display();
        #[cfg(unix)]
        {
            use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(|e| format!("could not create the token cache {shown}: {e}"))?;
            let meta = std::fs::metadata(&self.dir).map_err(|e| format!("token cache {shown}: {e}"))?;
            let mode = std::os::unix::fs::MetadataExt::mode(&meta) & 0o777;
            if mode & 0o077 != 0 {
                std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
                    format!("the token cache {shown} is open to other users (mode {mode:o}) and could not be made private: {e}")
                })?;
                tracing::warn!("the token cache {shown} was open to other users (mode {mode:o}); it is now 0700");
            }
        }
        #[cfg(not(unix))]
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("could not create the token cache {shown}: {e}"))?;
        Ok(())
    }

    pub fn load<T: DeserializeOwned>(&self, name: &str) -> Loaded<T> {
        let path = self.dir.join(name);
        let shown = path.display();
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::Missing,
            Err(e) => return Loaded::Refused(format!("{shown}: {e}")),
        };
        if !meta.file_type().is_file() {
            return Loaded::Refused(format!("{shown} is not a regular file; it is not used"));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let mode = meta.mode() & 0o777;
            if mode & 0o077 != 0 {
                return Loaded::Refused(format!(
                    "{shown} is open to other users (mode {mode:o}): its tokens may have been read, so it is not used; sign in again (the new file is written 0600)"
                ));
            }
            match self.my_uid() {
                Ok(uid) if uid == meta.uid() => {}
                Ok(_) => {
                    return Loaded::Refused(format!(
                        "{shown} belongs to another user (uid {}); it is not used",
                        meta.uid()
                    ));
                }
                Err(e) => return Loaded::Refused(e),
            }
        }
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => return Loaded::Refused(format!("{shown}: {e}")),
        };
        let json: serde_json::Value = match serde_json::from_slice(&bytes) {
            Ok(j) => j,
            Err(_) => return Loaded::Refused(format!("{shown} is not valid JSON; it is not used")),
        };
        if json.get("version").and_then(|v| v.as_u64()) != Some(u64::from(VERSION)) {
            return Loaded::Refused(format!("{shown} is of another version; it is not used"));
        }
        match serde_json::from_value(json) {
            Ok(v) => Loaded::Found(v),
            Err(_) => Loaded::Refused(format!("{shown} is not a token cache file; it is not used")),
        }
    }

    /// This process's user id, read from a file it creates (no `unsafe` for `geteuid`).
    #[cfg(unix)]
    fn my_uid(&self) -> Result<u32, String> {
        use std::os::unix::fs::MetadataExt;
        tempfile::NamedTempFile::new_in(&self.dir)
            .and_then(|f| f.as_file().metadata())
            .map(|m| m.uid())
            .map_err(|e| format!("token cache {}: {e}", self.dir.display()))
    }

    /// Writes `value` to `name`: 0600, synced, renamed into place.
    pub fn save<T: Serialize>(&self, name: &str, value: &T) -> Result<(), String> {
        self.ensure_dir()?;
        let path = self.dir.join(name);
        let fail = |e: &dyn fmt::Display| format!("could not write {}: {e}", path.display());
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| fail(&e))?;
        // Created 0600 on Unix (tempfile opens with O_EXCL and mode 0600).
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(|e| fail(&e))?;
        tmp.write_all(&bytes).map_err(|e| fail(&e))?;
        tmp.as_file().sync_all().map_err(|e| fail(&e))?;
        tmp.persist(&path).map_err(|e| fail(&e.error))?;
        Ok(())
    }

    pub fn remove(&self, name: &str) {
        let _ = std::fs::remove_file(self.dir.join(name));
    }

    #[cfg(test)]
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    #[cfg(test)]
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::path::Path;

    #[test]
    fn names_separate_their_parts() {
        assert_ne!(tokens_file("a", "bc", "d"), tokens_file("ab", "c", "d"));
        assert_eq!(tokens_file("a", "b", "c").len(), 64 + 5);
        assert!(registration_file("i", "u").starts_with("client-"));
    }

    #[cfg(unix)]
    #[test]
    fn written_private_and_refused_when_open() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let store = Store::new(root.path().join("a/tokens"));
        let t = StoredTokens::new("u", "i", "c", "at-secret".into());
        store.save("t.json", &t).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(store.dir()), 0o700);
        assert_eq!(mode(&store.path("t.json")), 0o600);
        assert!(matches!(store.load::<StoredTokens>("t.json"), Loaded::Found(x) if x.access_token == "at-secret"));
        std::fs::set_permissions(store.path("t.json"), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(store.load::<StoredTokens>("t.json"), Loaded::Refused(why) if why.contains("644")));
        assert!(matches!(store.load::<StoredTokens>("none.json"), Loaded::Missing));
        assert!(!format!("{t:?}").contains("at-secret"));
    }
}
