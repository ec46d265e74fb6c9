//! Which store a command works on, and opening it: every store command (`keys`, `clients`,
//! `grants`, `users`, `audit`, `store …`) opens its store here, as the gateway's [`Stores`] — the
//! store traits over SQLite or PostgreSQL — so each works on whichever store the configuration
//! names. `mcpgate store migrate` is here; `store copy` is in `copy.rs`.
//!
//! A PostgreSQL URL may hold a password: it is kept as a [`Secret`] and never printed; messages
//! name where it came from (`store.url`, `--url`, `--from`, `--to`) instead.

pub mod copy;

use crate::cli::{StoreArgs, StoreCommand};
use anyhow::{Result, anyhow, bail};
use mcpgate_core::redact::Secret;
use mcpgate_gateway::server::Stores;
use mcpgate_store::postgres::PostgresStore;
use mcpgate_store::sqlite::SqliteStore;
use std::path::PathBuf;

/// Where a store is.
pub enum Location {
    /// A SQLite file (created on first open).
    Sqlite(PathBuf),
    /// A PostgreSQL database; `named` is where the URL came from, for messages.
    Postgres { url: Secret, named: &'static str },
}

impl Location {
    /// A `postgres://` or `postgresql://` URL from `named` (never echoed: it may hold a password).
    pub fn postgres(url: String, named: &'static str) -> Result<Location> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Location::Postgres {
                url: Secret::new(url),
                named,
            })
        } else {
            bail!("{named}: must be a postgres:// (or postgresql://) URL")
        }
    }

    /// `sqlite://PATH` or `postgres://…`, as `--url`, `--from` and `--to` take them.
    pub fn parse(text: &str, named: &'static str) -> Result<Location> {
        if let Some(path) = text.strip_prefix("sqlite://") {
            if path.is_empty() {
                bail!(
                    "{named}: sqlite:// needs a file, e.g. sqlite://mcpgate.db or sqlite:///var/lib/mcpgate/mcpgate.db"
                );
            }
            return Ok(Location::Sqlite(PathBuf::from(path)));
        }
        Location::postgres(text.to_string(), named)
            .map_err(|_| anyhow!("{named}: expected sqlite://PATH or postgres://user:password@host/database"))
    }

    /// For messages: the file, or where the PostgreSQL URL came from (never the URL).
    pub fn describe(&self) -> String {
        match self {
            Location::Sqlite(path) => format!("SQLite {}", path.display()),
            Location::Postgres { named, .. } => format!("PostgreSQL ({named})"),
        }
    }

    /// Whether both name the same store (as far as can be told: one file, or one URL).
    pub fn same_as(&self, other: &Location) -> bool {
        match (self, other) {
            (Location::Sqlite(a), Location::Sqlite(b)) => {
                a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
            }
            (Location::Postgres { url: a, .. }, Location::Postgres { url: b, .. }) => a == b,
            _ => false,
        }
    }

    /// Opens the store (applying its migrations) as the gateway would.
    pub async fn open(&self) -> Result<Stores> {
        match self {
            Location::Sqlite(path) => {
                Stores::sqlite(path).map_err(|e| anyhow!("cannot open the store at {}: {e}", path.display()))
            }
            // `Stores::postgres` names `store.url` in its errors; say where this URL came from.
            Location::Postgres { url, named } => Stores::postgres(url.expose()).await.map_err(|e| {
                let e = e.strip_prefix("store.url: ").unwrap_or(&e);
                anyhow!("{named}: {e}")
            }),
        }
    }
}

/// The store `args` names: `--store FILE` (or `MCPGATE_STORE`), else the configuration's.
pub fn locate(args: &StoreArgs) -> Result<Location> {
    let Some(path) = &args.store else {
        return super::config::load_store(&args.config);
    };
    // MCPGATE_STORE beside a PostgreSQL store.url: the gateways use the database, so a change
    // written to the file would look done and change nothing. A --store typed on the command
    // line is a deliberate choice of file (and, as before, needs no readable configuration).
    let from_env = std::env::var_os(mcpgate_gateway::config::raw::env::STORE_PATH)
        .is_some_and(|v| std::path::Path::new(&v) == path);
    if from_env && let Ok(Location::Postgres { named, .. }) = super::config::load_store(&args.config) {
        bail!(
            "MCPGATE_STORE names a SQLite file, but the configuration's store is PostgreSQL ({named} / \
             MCPGATE_STORE_URL), which the gateway uses: unset one of them"
        );
    }
    Ok(Location::Sqlite(path.clone()))
}

/// Opens the store `args` names.
pub async fn open(args: &StoreArgs) -> Result<Stores> {
    locate(args)?.open().await
}

pub async fn run(cmd: StoreCommand) -> Result<()> {
    match cmd {
        StoreCommand::Migrate { store, url } => {
            let location = match url {
                Some(url) => Location::parse(&url, "--url")?,
                None => locate(&store)?,
            };
            migrate(&location).await
        }
        StoreCommand::Copy(args) => copy::run(args).await,
    }
}

/// Opens the store — which applies the migrations it has not had — and says where its schema
/// stands.
async fn migrate(location: &Location) -> Result<()> {
    let (version, known) = match location {
        Location::Sqlite(path) => {
            let store =
                SqliteStore::open(path).map_err(|e| anyhow!("cannot open the store at {}: {e}", path.display()))?;
            (store.schema_version().await?, SqliteStore::migrations())
        }
        Location::Postgres { url, named } => {
            let store = PostgresStore::connect(url.expose())
                .await
                .map_err(|e| anyhow!("{named}: {e}"))?;
            (store.schema_version().await?, PostgresStore::migrations())
        }
    };
    if version > known {
        bail!(
            "{}: schema version {version} is newer than this mcpgate knows ({known}): a newer mcpgate migrated it; \
             run that version",
            location.describe()
        );
    }
    println!("{}: schema version {version} — up to date", location.describe());
    Ok(())
}
