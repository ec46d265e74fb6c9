//! The command line, in one place. Settings resolve as: flag > `MCPGATE_*` env > config file >
//! default.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// What `mcpgate --version` prints after the name: the package version and the git commit the
/// binary was built from (`build.rs`: 12 hex digits, `-dirty`, or `unknown` outside git).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("MCPGATE_GIT_COMMIT"), ")");

#[derive(Parser, Debug)]
#[command(
    name = "mcpgate",
    version = VERSION,
    about = "Authentication, authorization, quotas and audit in front of any MCP server"
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text", env = "MCPGATE_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway.
    Serve(ServeArgs),
    /// Inspect configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Create, list, show, revoke and rotate API keys in the store.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The authorization server's clients: add (a secret is printed once), list, show, remove.
    Clients {
        #[command(subcommand)]
        command: ClientsCommand,
    },
    /// The authorization server's grants (what a sign-in gave a client): list, revoke.
    Grants {
        #[command(subcommand)]
        command: GrantsCommand,
    },
    /// People who signed in through a provider (GitHub, Google, OIDC): list, show.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Query the audit log.
    Audit(AuditArgs),
    /// The store itself: bring its schema up to date, or copy one store into another
    /// (SQLite to PostgreSQL, or back).
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Test tokens for trying a setup.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Bridge a stdio MCP client (Claude Desktop, an IDE, an agent) to a protected Streamable HTTP
    /// MCP server — mcpgate or any other — with API keys, a bearer token, minted HS256 JWTs,
    /// HMAC signatures, OAuth client credentials or an OAuth sign-in. Secrets are named as
    /// env:VAR, never inline.
    Connect(Box<ConnectArgs>),
    /// Print a shell completion script to stdout (bash, zsh, fish, elvish, powershell); see the
    /// README's Install section for where each shell reads it from.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Serve the built-in demo MCP server over stdio (what `serve --demo` runs behind the gateway).
    #[command(hide = true)]
    DemoUpstream,
}

/// `mcpgate connect`: every credential flag, and a profile for all of them.
#[derive(Args, Debug, Default)]
pub struct ConnectArgs {
    /// The server's MCP endpoint, e.g. https://mcp.example.com/mcp (or the profile's `url`).
    pub url: Option<String>,
    /// A named environment in connect.toml ($MCPGATE_CONFIG_DIR, else ~/.config/mcpgate).
    #[arg(long, env = "MCPGATE_PROFILE")]
    pub profile: Option<String>,
    /// A header on every request, "Name: value"; the value may be env:VAR. Repeatable.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// X-Tenant-ID on every request.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Authorization: Bearer from an environment variable (env:VAR).
    #[arg(long, value_name = "env:VAR")]
    pub bearer: Option<String>,
    /// The API key (env:VAR), sent in --key-header.
    #[arg(long, value_name = "env:VAR")]
    pub key: Option<String>,
    /// A second key (env:VAR), used once the server refuses the first (401): key rotation.
    #[arg(long, value_name = "env:VAR")]
    pub fallback_key: Option<String>,
    /// Where the key goes (default X-API-Key).
    #[arg(long, value_name = "HEADER")]
    pub key_header: Option<String>,
    /// Mint HS256 JWTs with this secret (env:VAR), renewed before they expire.
    #[arg(long, value_name = "env:VAR")]
    pub jwt_secret: Option<String>,
    /// A claim of the minted JWTs, name=value (e.g. user_id=u1, tenant_id=acme). Repeatable.
    #[arg(long = "jwt-claim", value_name = "NAME=VALUE")]
    pub jwt_claims: Vec<String>,
    /// Lifetime of each minted JWT (90s, 15m, 1h; default 1h).
    #[arg(long)]
    pub jwt_ttl: Option<String>,
    /// `aud` of the minted JWTs (default: the URL; `none` for none).
    #[arg(long)]
    pub jwt_audience: Option<String>,
    /// Sign every request: X-Timestamp and X-Signature (HMAC-SHA256 of "{timestamp}.{body}")
    /// with this secret (env:VAR).
    #[arg(long, value_name = "env:VAR")]
    pub hmac_secret: Option<String>,
    /// The signing client's id, sent in --hmac-key-header.
    #[arg(long)]
    pub hmac_key_id: Option<String>,
    /// Where the HMAC client id goes (default X-API-Key).
    #[arg(long, value_name = "HEADER")]
    pub hmac_key_header: Option<String>,
    /// Sign in with the server's OAuth authorization server (the MCP authorization flow:
    /// discovery, registration, PKCE, a browser and a loopback redirect); tokens are kept in
    /// <config dir>/tokens (0600) and refreshed before they expire. --client-id names a client
    /// registered beforehand; --scope the scopes asked for.
    #[arg(long, conflicts_with_all = ["client_credentials", "bearer", "jwt_secret"])]
    pub oauth: bool,
    /// Get OAuth access tokens with the client-credentials grant (--token-url, --client-id,
    /// --client-secret), cached and refreshed before they expire.
    #[arg(long)]
    pub client_credentials: bool,
    #[arg(long)]
    pub token_url: Option<String>,
    #[arg(long)]
    pub client_id: Option<String>,
    #[arg(long, value_name = "env:VAR")]
    pub client_secret: Option<String>,
    /// Scopes asked for with the client-credentials grant.
    #[arg(long)]
    pub scope: Option<String>,
    /// How the client authenticates at the token endpoint: basic (default) or post.
    #[arg(long, value_name = "basic|post")]
    pub token_auth: Option<String>,
    /// The RFC 8707 `resource` asked for with client credentials (default: the URL; `none` to
    /// leave it out, for authorization servers that refuse it).
    #[arg(long)]
    pub resource: Option<String>,
    /// Retry requests refused with 403 (seed 002 does; off by default: a 403 is a decision,
    /// and retrying it only repeats the denial).
    #[arg(long)]
    pub retry_403: bool,
    /// Retry a tools/call (or any request that may change something) after a 502/504 or a
    /// connection lost mid-request, which may run it twice. Off by default.
    #[arg(long)]
    pub retry_unsafe: bool,
    /// Most attempts per message (429, 503, lost connections), 1 to 20.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_attempts: u32,
}

/// Which store a command works on: the one the configuration names — the SQLite file
/// `store.path` (default mcpgate.db), or the PostgreSQL database `store.url` /
/// `MCPGATE_STORE_URL` — unless `--store` names a SQLite file.
#[derive(Args, Debug, Clone, Default)]
pub struct StoreArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// A SQLite store file, instead of the store the configuration names (store.path, or
    /// PostgreSQL's store.url / MCPGATE_STORE_URL).
    #[arg(long, env = "MCPGATE_STORE")]
    pub store: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Open the store, bringing its schema up to date, and print its schema version.
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
        /// The store to migrate instead of the configured one: sqlite://PATH or postgres://…
        /// (a URL here is visible to other local users; MCPGATE_STORE_URL is not).
        #[arg(long)]
        url: Option<String>,
    },
    /// Copy every record of one store into another (SQLite to PostgreSQL, or back).
    ///
    /// Keys (revoked, expiry and last use kept), held credentials, OAuth clients, grants with
    /// their refresh tokens, consents, signing keys, users and the audit log, as they are: sealed
    /// records stay sealed. Authorization codes and replay entries are not copied: they live for
    /// minutes.
    Copy(CopyArgs),
}

#[derive(Args, Debug)]
pub struct CopyArgs {
    /// The store to copy from: sqlite://PATH or postgres://user:password@host/database.
    #[arg(long)]
    pub from: String,
    /// The store to copy into: sqlite://PATH or postgres://… (default: the configured store —
    /// store.path, or store.url / MCPGATE_STORE_URL, which keeps a password off the command line).
    #[arg(long)]
    pub to: Option<String>,
    /// Add to a destination that already holds keys, clients, grants or users: records whose id
    /// it already has are skipped (and counted). Audit records are appended, so a second run
    /// appends them again.
    #[arg(long)]
    pub merge: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Subcommand, Debug)]
pub enum ClientsCommand {
    /// Register a client an operator vouches for (shown as verified on the consent page).
    Add {
        /// The name people see on the consent page.
        #[arg(long)]
        name: String,
        /// An exact redirect URI (repeatable): https, or http to a loopback address.
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// A public client (no secret; PKCE only), as native apps and CLIs are.
        #[arg(long)]
        public: bool,
        /// Grant types (repeatable; default authorization_code and refresh_token).
        #[arg(long = "grant-type")]
        grant_types: Vec<String>,
        /// The most this client may be given, space-separated (default: what the user holds).
        #[arg(long)]
        scope: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
    },
    /// List clients (never their secrets).
    List {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
    },
    /// Show one client.
    Show {
        client_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove a client and revoke its grants.
    Remove {
        client_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Every user, by first sign-in.
    List {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
    },
    /// One user: the record and their grants.
    Show {
        user_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum GrantsCommand {
    /// List grants, newest first.
    List {
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        client: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
    },
    /// Revoke one grant, or every live grant of a user (optionally of one client).
    Revoke {
        /// The grant id (from `grants list`).
        grant_id: Option<String>,
        #[arg(long, conflicts_with = "grant_id")]
        user: Option<String>,
        #[arg(long, requires = "user")]
        client: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a key; it is printed once and only its hash is kept.
    Create(CreateKey),
    /// List keys (never their secrets).
    List {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
    },
    /// Show one key's record and last use.
    Show {
        key_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a key at once (a running gateway sees it within a second).
    Revoke {
        key_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Hold a user's upstream credential for this key, sealed with MCPGATE_ENCRYPTION_KEY
    /// (identity delegation). Reads it from standard input unless --from-env is given.
    SetUpstreamCredential {
        key_id: String,
        /// Read the credential from this environment variable instead of standard input.
        #[arg(long)]
        from_env: Option<String>,
        /// Environment variable holding the sealing key.
        #[arg(long, default_value = "MCPGATE_ENCRYPTION_KEY")]
        encryption_key_env: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Forget the upstream credential held for this key.
    ClearUpstreamCredential {
        key_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print a new random sealing key for MCPGATE_ENCRYPTION_KEY.
    GenEncryptionKey,
    /// Issue a new key with the same grants; the old one stays valid for the overlap window.
    Rotate {
        key_id: String,
        /// How long the old key keeps working (e.g. 24h, 7d, 0s).
        #[arg(long, default_value = "24h")]
        overlap: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Args, Debug)]
pub struct CreateKey {
    #[command(flatten)]
    pub store: StoreArgs,
    /// A label for people (e.g. "ChatGPT Connector").
    #[arg(long)]
    pub name: String,
    /// The user the key acts for.
    #[arg(long)]
    pub user: String,
    #[arg(long)]
    pub tenant: Option<String>,
    /// guest, user, developer or admin.
    #[arg(long, default_value = "user")]
    pub role: String,
    /// Comma-separated permissions: read, write, admin, * or your own.
    #[arg(long, value_delimiter = ',', default_value = "read")]
    pub permissions: Vec<String>,
    #[arg(long)]
    pub per_minute: Option<u32>,
    #[arg(long)]
    pub per_hour: Option<u32>,
    /// Daily quota.
    #[arg(long)]
    pub per_day: Option<u32>,
    /// Lifetime, e.g. 90d; or use --expires-at.
    #[arg(long, conflicts_with = "expires_at")]
    pub expires_in: Option<String>,
    /// RFC 3339 time, e.g. 2026-12-31T23:59:59Z.
    #[arg(long)]
    pub expires_at: Option<String>,
    /// Print JSON (the key and its id) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Mint an HS256 JWT signed with the secret in an environment variable (JWT_SECRET).
    Mint(MintArgs),
}

#[derive(Args, Debug)]
pub struct MintArgs {
    /// Environment variable holding the HS256 secret (at least 32 bytes).
    #[arg(long, default_value = "JWT_SECRET")]
    pub secret_env: String,
    /// Subject (`sub`).
    #[arg(long)]
    pub sub: String,
    /// Space-separated scopes (`scope`).
    #[arg(long)]
    pub scope: Option<String>,
    /// Tenant (`tenant_id`).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Roles (`roles`), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub roles: Vec<String>,
    /// Audience (`aud`): the gateway's MCP URL, e.g. http://127.0.0.1:3210/mcp.
    #[arg(long)]
    pub aud: Option<String>,
    /// Issuer (`iss`).
    #[arg(long)]
    pub iss: Option<String>,
    /// Lifetime, e.g. 1h.
    #[arg(long, default_value = "1h")]
    pub ttl: String,
    /// Extra claims as key=value (value parsed as JSON when it is JSON, else a string).
    #[arg(long = "claim")]
    pub claims: Vec<String>,
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only records since this long ago (e.g. 1h, 2d) or this RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub user: Option<String>,
    #[arg(long)]
    pub tool: Option<String>,
    /// allow, deny, limited or error.
    #[arg(long)]
    pub outcome: Option<String>,
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, short, env = "MCPGATE_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Address to listen on (default 127.0.0.1:3210).
    #[arg(long)]
    pub listen: Option<String>,
    /// The URL clients use to reach the gateway.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Streamable HTTP URL of the upstream MCP server.
    #[arg(long, conflicts_with_all = ["upstream_cmd", "demo"])]
    pub upstream_url: Option<String>,
    /// Command line of a stdio MCP server for the gateway to run.
    #[arg(long, conflicts_with = "demo")]
    pub upstream_cmd: Option<String>,
    /// Host header values to accept (repeatable; default: loopback names).
    #[arg(long = "allowed-host")]
    pub allowed_hosts: Vec<String>,
    /// Put the built-in demo MCP server behind the gateway (and create demo keys on first run).
    #[arg(long)]
    pub demo: bool,
    /// SQLite store file for keys and audit.
    #[arg(long, env = "MCPGATE_STORE")]
    pub store: Option<PathBuf>,
    /// Turn authentication off: every caller is an anonymous admin. For local trials and
    /// benchmarks only.
    #[arg(long)]
    pub no_auth: bool,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate the configuration (file + env) and print what the gateway would run with.
    Check(CheckArgs),
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Also reach what the configuration names: the JWT issuer's keys (discovery / JWKS URL).
    #[arg(long)]
    pub online: bool,
}
