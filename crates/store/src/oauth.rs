//! The authorization server's records: clients ([`ClientStore`]), grants with their codes,
//! refresh tokens and consents ([`GrantStore`]), the keys that sign access tokens
//! ([`SigningKeyStore`]), and the people who signed in through a provider ([`UserStore`]). Codes
//! and refresh tokens are stored as SHA-256 hashes (a copy of the store is no use to a thief);
//! signing keys are sealed like held credentials. Times are unix seconds given by the caller.
//!
//! A *grant* is what one sign-in gave one client: who signed in (the [`Subject`]), the scopes and
//! the resource. Its refresh tokens form one family: each is used once and replaced; using one
//! that was already replaced revokes the grant (the token was stolen, or the client is confused —
//! either way nobody should hold it now). Revoking a grant ends every token it issued: refresh
//! tokens at once, access tokens as soon as gateways read [`GrantStore::revoked_since`].

use crate::{Result, SealedCredential, async_trait};
use mcpgate_core::principal::Role;

/// How a client came to be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// Written by an operator (configuration or `mcpgate clients add`).
    Configured,
    /// Registered by the client itself (RFC 7591).
    Registered,
    /// Its `client_id` is the URL of its metadata document (CIMD), fetched and cached.
    MetadataDocument,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Configured => "configured",
            ClientKind::Registered => "registered",
            ClientKind::MetadataDocument => "metadata_document",
        }
    }

    pub fn parse(s: &str) -> Option<ClientKind> {
        match s {
            "configured" => Some(ClientKind::Configured),
            "registered" => Some(ClientKind::Registered),
            "metadata_document" => Some(ClientKind::MetadataDocument),
            _ => None,
        }
    }
}

/// An OAuth client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub client_id: String,
    pub kind: ClientKind,
    /// `client_name`, as the client gave it (shown on consent, marked unverified unless the
    /// operator configured the client).
    pub name: Option<String>,
    /// Confidential clients: SHA-256 (hex) of the secret. Public clients: `None`.
    pub secret_hash: Option<String>,
    /// `none`, `client_secret_basic`, `client_secret_post` or `private_key_jwt`.
    pub auth_method: String,
    /// Exact redirect URIs (loopback ones match on any port).
    pub redirect_uris: Vec<String>,
    /// `authorization_code`, `refresh_token`, `client_credentials`.
    pub grant_types: Vec<String>,
    /// The scopes this client may be given at most (`None`: whatever the user holds).
    pub scope: Option<Vec<String>>,
    /// `private_key_jwt`: the client's keys (a JWK set as JSON) or where to fetch them.
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    pub created_at: i64,
    /// Metadata documents: when the cached copy must be fetched again. Others: `None`.
    pub expires_at: Option<i64>,
}

/// Who signed in, as the sign-in established it: what every token of the grant carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub user_id: String,
    pub tenant: Option<String>,
    pub role: Role,
    /// What the user may do (the grant's scopes are at most these).
    pub permissions: Vec<String>,
    /// How they signed in: `key:<keyId>` for an API key (revoking the key ends the grant).
    pub via: String,
}

/// What one sign-in gave one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    pub grant_id: String,
    pub client_id: String,
    pub subject: Subject,
    pub scopes: Vec<String>,
    /// The resource (RFC 8707) the tokens are for: their audience.
    pub resource: String,
    pub created_at: i64,
    /// The family's end: no refresh token of it outlives this.
    pub expires_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// An authorization code, before it is exchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    /// SHA-256 (hex) of the code.
    pub code_hash: String,
    /// The grant the exchange creates (named now, so a reused code can revoke what it issued).
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    pub resource: String,
    pub scopes: Vec<String>,
    pub subject: Subject,
    pub expires_at: i64,
}

/// What taking a code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeTake {
    /// First use: the code is now spent.
    Fresh(CodeRecord),
    /// Already exchanged: its grant must be revoked.
    Reused(CodeRecord),
    /// Never issued, or forgotten after expiry.
    Unknown,
}

/// What presenting a refresh token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was live: it is spent, `new_hash` replaces it; the grant it belongs to.
    Rotated(Box<GrantRecord>),
    /// The token was already replaced (and not within the grace window): the grant is now
    /// revoked.
    Reused { grant_id: String },
    /// The grant was revoked, or has expired, or the token has.
    Ended { grant_id: String },
    /// Never issued, or forgotten.
    Unknown,
}

/// A remembered consent: this user let this client have these scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    pub user_id: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub given_at: i64,
}

/// A refresh token as a store keeps it — its hash, never the token — for copying a store
/// (`mcpgate store copy`, [`GrantStore::refresh_tokens`], [`GrantStore::import_grant`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    /// SHA-256 (hex) of the token.
    pub token_hash: String,
    pub expires_at: i64,
    /// When the next token of its family replaced it.
    pub spent_at: Option<i64>,
    /// Whether its one acceptance after being spent (a racing refresh) was used.
    pub grace_used: bool,
}

/// What a backend without the copying methods answers (a test double need not have them; every
/// backend of this crate does).
fn cannot_copy<T>(what: &str) -> Result<T> {
    Err(crate::StoreError::Backend(format!(
        "this store cannot copy {what} (its backend does not implement it)"
    )))
}

#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Adds a client; [`crate::StoreError::Duplicate`] when its id is taken.
    async fn insert_client(&self, client: &ClientRecord) -> Result<()>;
    /// Adds or replaces (a metadata document fetched again).
    async fn put_client(&self, client: &ClientRecord) -> Result<()>;
    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>>;
    /// Every client, oldest first (ties by id).
    async fn list_clients(&self) -> Result<Vec<ClientRecord>>;
    /// Removes the client and revokes its grants; false when there was none.
    async fn remove_client(&self, client_id: &str, now: i64) -> Result<bool>;
}

#[async_trait]
pub trait GrantStore: Send + Sync {
    /// Records a code until it is taken or expires.
    async fn put_code(&self, code: &CodeRecord) -> Result<()>;
    /// Takes a code. Of many racing takes of one code, exactly one is [`CodeTake::Fresh`].
    /// An expired code is [`CodeTake::Unknown`] (even if never taken).
    async fn take_code(&self, code_hash: &str, now: i64) -> Result<CodeTake>;

    /// Records a new grant and its first refresh token (`refresh_hash`, live until
    /// `refresh_expires_at`; `None`: the grant has no refresh token).
    async fn create_grant(
        &self,
        grant: &GrantRecord,
        refresh_hash: Option<&str>,
        refresh_expires_at: i64,
    ) -> Result<()>;
    async fn get_grant(&self, grant_id: &str) -> Result<Option<GrantRecord>>;
    /// Grants, newest first, optionally only one user's or one client's (revoked ones too).
    async fn list_grants(&self, user_id: Option<&str>, client_id: Option<&str>) -> Result<Vec<GrantRecord>>;
    /// Revokes a grant and every token of it; false when there is none or it already was.
    async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<bool>;
    /// Revokes every live grant given through `via` (a revoked API key); returns how many.
    async fn revoke_grants_via(&self, via: &str, now: i64) -> Result<usize>;
    /// Ids of grants revoked at or after `since` (gateways drop their access tokens).
    async fn revoked_since(&self, since: i64) -> Result<Vec<String>>;

    /// Spends refresh token `old_hash` and records `new_hash` (live until `new_expires_at`, at
    /// most the grant's end) in its place. A token already spent is accepted once more within
    /// `grace_s` seconds of being spent (two requests of one client racing to refresh); past that,
    /// or the second time, it is [`Rotation::Reused`] and the grant is revoked. Of many racing
    /// rotations of one live token, one is `Rotated` plus at most one in grace.
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: i64,
        now: i64,
        grace_s: i64,
    ) -> Result<Rotation>;
    /// The grant a refresh token belongs to, without spending it (revocation, introspection).
    async fn grant_of_refresh(&self, token_hash: &str) -> Result<Option<GrantRecord>>;

    async fn set_consent(&self, consent: &ConsentRecord) -> Result<()>;
    async fn get_consent(&self, user_id: &str, client_id: &str) -> Result<Option<ConsentRecord>>;
    /// False when there was none.
    async fn remove_consent(&self, user_id: &str, client_id: &str) -> Result<bool>;

    /// Forgets codes expired before `now`, and refresh tokens and grants that ended (expired, or
    /// revoked more than `keep_revoked_s` ago). Returns how many records went.
    async fn prune_grants(&self, now: i64, keep_revoked_s: i64) -> Result<usize>;

    // Copying a store (`mcpgate store copy`): read each record out, write it back as it was.
    // Codes are not copied: they live for seconds.

    /// The refresh tokens of grant `grant_id`, spent ones too (presenting a spent one revokes the
    /// grant, so the copy must know them), by hash.
    async fn refresh_tokens(&self, _grant_id: &str) -> Result<Vec<RefreshTokenRecord>> {
        cannot_copy("refresh tokens")
    }
    /// Adds a grant and its refresh tokens exactly as given (revocation, ends, spent and grace
    /// state), all or none; [`crate::StoreError::Duplicate`] naming the grant id when it is taken.
    async fn import_grant(&self, _grant: &GrantRecord, _tokens: &[RefreshTokenRecord]) -> Result<()> {
        cannot_copy("grants")
    }
    /// Every remembered consent, by user then client.
    async fn list_consents(&self) -> Result<Vec<ConsentRecord>> {
        cannot_copy("consents")
    }
}

/// A key mcpgate signs access tokens with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    /// `ES256` or `EdDSA`.
    pub alg: String,
    /// The private key (PKCS#8 DER), sealed.
    pub sealed: SealedCredential,
    /// The public key as a JWK (JSON), as `/jwks` publishes it.
    pub public_jwk: String,
    pub created_at: i64,
    /// When a newer key took over signing; still published until tokens it signed expire.
    pub retired_at: Option<i64>,
}

#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    /// Adds a key; [`crate::StoreError::Duplicate`] when its kid is taken.
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<()>;
    /// Every key, newest first.
    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>>;
    /// Marks a key retired at `at` (no-op if it already was); false when there is none.
    async fn retire_signing_key(&self, kid: &str, at: i64) -> Result<bool>;
    /// False when there was none.
    async fn remove_signing_key(&self, kid: &str) -> Result<bool>;
}

/// A person who signed in through a provider: recorded so grants and audit can name them and an
/// operator can list them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub user_id: String,
    pub tenant: Option<String>,
    pub role: Role,
    /// How they last signed in: `provider:<id>:<subject>`.
    pub via: String,
    /// Verified primary e-mail, if the provider gave one.
    pub email: Option<String>,
    /// A display name or login, if any.
    pub name: Option<String>,
    /// When they first signed in (unix seconds).
    pub first_sign_in: i64,
    /// When they last signed in (unix seconds): never moves backwards.
    pub last_sign_in: i64,
    /// How many times they signed in.
    pub sign_ins: u64,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Records a sign-in of `user.user_id` at `now`: a new user gets first = last = now and 1
    /// sign-in; a known one keeps its first sign-in, gets last = max(last, now), sign_ins + 1, and
    /// the record's tenant, role, via, email and name replaced by these. Atomic: N concurrent
    /// calls for one user leave sign_ins increased by exactly N. Returns the record as stored
    /// afterwards. (The `first_sign_in`, `last_sign_in` and `sign_ins` fields of the argument are
    /// ignored.)
    async fn record_sign_in(&self, user: &UserRecord, now: i64) -> Result<UserRecord>;
    async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>>;
    /// Every user, by first sign-in (ties by user_id).
    async fn list_users(&self) -> Result<Vec<UserRecord>>;
    /// False when there was no such user.
    async fn remove_user(&self, user_id: &str) -> Result<bool>;
    /// Adds a user exactly as given, first and last sign-in and count included (copying a store);
    /// [`crate::StoreError::Duplicate`] when the id is taken.
    async fn import_user(&self, _user: &UserRecord) -> Result<()> {
        cannot_copy("users")
    }
}
