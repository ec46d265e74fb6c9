//! The key store at scale: a bulk insert of N generated keys, what a reload costs (the store's
//! `list_keys` and `KeyIndex::new`, as the gateway's watcher runs them), and key verification at
//! 1k vs 1M keys.

use anyhow::{Context, Result, bail, ensure};
use mcpgate_core::keys::{self, KeyIndex, KeyRecord};
use mcpgate_core::principal::{Limits, Role};
use mcpgate_store::KeyStore;
use mcpgate_store::sqlite::SqliteStore;
use serde::Serialize;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

/// Limits every bulk key gets: far above what the load reaches (like bench/run's apikey target),
/// so the limiter runs on every request as it would for a real key.
const HIGH: u32 = 1_000_000_000;

#[derive(Serialize)]
pub struct Created {
    pub count: usize,
    pub seconds: f64,
    pub db_bytes: u64,
    /// A few of the keys, in the clear (throwaway keys in a temporary store), for the script:
    /// written to their own file, never into the results.
    #[serde(skip)]
    pub keys: Vec<CreatedKey>,
}

pub struct CreatedKey {
    pub key: String,
    pub key_id: String,
}

fn cpu_ms() -> f64 {
    super::proc_stat(None).map_or(0.0, |s| s.cpu_ms)
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The record every bulk key gets (the store writes `source` itself).
fn record(key_id: &str, hash: &str, i: usize, now: i64) -> KeyRecord {
    KeyRecord {
        key_id: key_id.to_owned(),
        hash: hash.to_owned(),
        name: format!("scale-{i}"),
        user_id: format!("user-{i}"),
        tenant: None,
        role: Role::User,
        permissions: vec!["*".into()],
        limits: Limits {
            per_minute: Some(HIGH),
            per_hour: Some(HIGH),
            per_day: Some(HIGH),
        },
        expires_at: None,
        created_at: now,
        revoked: false,
        source: "store".into(),
    }
}

/// Inserts `count` generated keys into the store at `path` in one transaction, then bumps the
/// keys version as every store write does. The schema is the store's own (`SqliteStore::open`
/// creates it); the rows are read back through the store's API and compared, so a schema change
/// the insert does not follow fails here instead of measuring something else.
pub fn create(path: &Path, count: usize, keep: usize) -> Result<Created> {
    ensure!(count >= 1, "--count must be at least 1");
    let started = Instant::now();
    let rt = super::runtime(1)?;
    let store = SqliteStore::open(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let before = rt
        .block_on(store.list_keys())
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .len();
    if before != 0 {
        bail!("{} already holds {before} keys; give a new store", path.display());
    }
    drop(store);
    let now = now_s();
    let mut conn = rusqlite::Connection::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // A bulk load of a fresh file: no sync per page and a cache that holds the whole index (the
    // store's own settings return on its next open). Keys go in sorted by key id, so the primary
    // key's B-tree is appended to rather than split at random places.
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; PRAGMA cache_size=-262144;")?;
    let mut generated: Vec<keys::NewKey> = (0..count).map(|_| keys::generate()).collect();
    generated.sort_unstable_by(|a, b| a.key_id.cmp(&b.key_id));
    // A 48-bit key id repeats about once in 10^8 pairs: keep the first of a repeat, then top up.
    generated.dedup_by(|a, b| a.key_id == b.key_id);
    while generated.len() < count {
        generated.push(keys::generate());
        generated.sort_unstable_by(|a, b| a.key_id.cmp(&b.key_id));
        generated.dedup_by(|a, b| a.key_id == b.key_id);
    }
    let tx = conn.transaction()?;
    let mut kept = Vec::new();
    let mut samples = Vec::new();
    {
        let mut st = tx.prepare(
            "INSERT INTO api_keys (key_id, hash, name, user_id, tenant, role, permissions, per_minute, per_hour, per_day, expires_at, created_at, revoked)
             VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6, ?7, ?7, ?7, NULL, ?8, 0)",
        )?;
        let perms = serde_json::to_string(&vec!["*"])?;
        for (i, k) in generated.iter().enumerate() {
            st.execute(rusqlite::params![
                k.key_id,
                k.hash,
                format!("scale-{i}"),
                format!("user-{i}"),
                Role::User.as_str(),
                perms,
                i64::from(HIGH),
                now
            ])?;
            if i.is_multiple_of((count / 4).max(1)) || i + 1 == count {
                samples.push(record(&k.key_id, &k.hash, i, now));
            }
        }
    }
    // Keys for requests: spread over the id space (not all from one end of the sorted order).
    for i in 0..keep.min(count) {
        let k = &generated[(i * 7919 + count / 2) % count];
        kept.push(CreatedKey {
            key: k.key.expose().to_owned(),
            key_id: k.key_id.clone(),
        });
    }
    tx.execute("UPDATE meta SET value = value + 1 WHERE name = 'keys_version'", [])?;
    tx.commit()?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    drop(conn);
    let store = SqliteStore::open(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    for want in &samples {
        let got = rt
            .block_on(store.get_key(&want.key_id))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .with_context(|| format!("key {} not found through the store's API", want.key_id))?;
        ensure!(
            &got == want,
            "the store reads back {got:?} for {want:?}: the bulk insert no longer matches the store's schema"
        );
    }
    let db_bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    Ok(Created {
        count,
        seconds: started.elapsed().as_secs_f64(),
        db_bytes,
        keys: kept,
    })
}

#[derive(Serialize)]
pub struct ReloadCost {
    pub keys: usize,
    /// `SqliteStore::all_keys` (what `KeyRegistry::reload` calls: every key, unordered), ms.
    pub list_keys_ms: f64,
    /// `KeyIndex::new` over those records, ms.
    pub index_build_ms: f64,
    /// Both: the work one reload does on the watcher's blocking thread.
    pub reload_ms: f64,
    /// The same three as CPU time of this (single-threaded) process: less disturbed than wall
    /// time by other work on the machine. 10 ms resolution.
    pub list_keys_cpu_ms: f64,
    pub index_build_cpu_ms: f64,
    pub reload_cpu_ms: f64,
    /// Dropping the index (what the gateway does to the previous index when it swaps in a new
    /// one, inside the write lock), wall and CPU ms.
    pub index_drop_ms: f64,
    pub index_drop_cpu_ms: f64,
    /// The gateway swaps a new index in with `*lock.write() = Arc::new(new)`, which drops the old
    /// index while the write lock is held. The same here (index loaded on one thread, replaced
    /// from another), with a reader thread taking `lock.read()` every 100 µs as requests do: the
    /// longest a read waited, ms.
    pub swap_reader_max_wait_ms: f64,
    /// The same rows with `ORDER BY created_at, key_id` (what `list_keys` asks for) and without:
    /// SQLite sorts every row in a temporary B-tree for the first.
    pub scan_ordered_ms: f64,
    pub scan_unordered_ms: f64,
    pub query_plan: Vec<String>,
    /// This process's RSS growth holding the records returned by list_keys, then the index built
    /// from them (the records move into it), in bytes per key.
    pub records_bytes_per_key: f64,
    pub index_bytes_per_key: f64,
    /// `size_of::<KeyRecord>()`: what each of the index's map slots holds inline (plus its key).
    pub key_record_size_bytes: usize,
    pub runs: usize,
}

/// Times what one reload of the gateway's key registry does, on the store at `path` (best of
/// `runs`), and the ordered vs unordered scan of the same rows.
pub fn reload_cost(path: &Path, runs: usize) -> Result<ReloadCost> {
    let rt = super::runtime(1)?;
    let store = SqliteStore::open(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut best: Option<(f64, f64, f64, f64)> = None;
    let mut best_drop: Option<(f64, f64)> = None;
    let mut n = 0;
    let mut records_bytes = 0.0;
    let mut index_bytes = 0.0;
    for run in 0..runs.max(1) {
        let rss0 = super::self_rss_kib();
        let c0 = cpu_ms();
        let t0 = Instant::now();
        let _version = rt.block_on(store.keys_version()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let all = rt.block_on(store.all_keys()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let t1 = Instant::now();
        let c1 = cpu_ms();
        let rss1 = super::self_rss_kib();
        n = all.len();
        let c1b = cpu_ms();
        let t1b = Instant::now();
        let index = KeyIndex::new(all);
        let t2 = Instant::now();
        let c2 = cpu_ms();
        let rss2 = super::self_rss_kib();
        black_box(index.len());
        if run == 0 && n > 0 {
            records_bytes = (rss1.saturating_sub(rss0) * 1024) as f64 / n as f64;
            index_bytes = (rss2.saturating_sub(rss0) * 1024) as f64 / n as f64;
        }
        let (t3, c3) = (Instant::now(), cpu_ms());
        drop(index);
        let dropped = (t3.elapsed().as_secs_f64() * 1e3, cpu_ms() - c3);
        if best_drop.is_none_or(|(_, c)| dropped.1 < c) {
            best_drop = Some(dropped);
        }
        let list = (t1 - t0).as_secs_f64() * 1e3;
        let build = (t2 - t1b).as_secs_f64() * 1e3;
        let (list_cpu, build_cpu) = (c1 - c0, c2 - c1b);
        if best.is_none_or(|(_, _, l, b)| list_cpu + build_cpu < l + b) {
            best = Some((list, build, list_cpu, build_cpu));
        }
    }
    let (list_keys_ms, index_build_ms, list_cpu, build_cpu) = best.unwrap_or_default();
    let swap_reader_max_wait_ms = swap_stall(path)?;
    drop(store);
    let conn = rusqlite::Connection::open(path)?;
    let scan = |sql: &str| -> Result<f64> {
        let t = Instant::now();
        let mut st = conn.prepare(sql)?;
        let mut rows = st.query([])?;
        let mut count = 0usize;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            count += id.len();
        }
        black_box(count);
        Ok(t.elapsed().as_secs_f64() * 1e3)
    };
    let ordered_sql = "SELECT * FROM api_keys ORDER BY created_at, key_id";
    let scan_ordered_ms = scan(ordered_sql)?;
    let scan_unordered_ms = scan("SELECT * FROM api_keys")?;
    let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {ordered_sql}"))?;
    let query_plan = st
        .query_map([], |r| r.get::<_, String>(3))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(ReloadCost {
        keys: n,
        list_keys_ms: super::round1(list_keys_ms),
        index_build_ms: super::round1(index_build_ms),
        reload_ms: super::round1(list_keys_ms + index_build_ms),
        list_keys_cpu_ms: list_cpu,
        index_build_cpu_ms: build_cpu,
        reload_cpu_ms: list_cpu + build_cpu,
        swap_reader_max_wait_ms: super::round1(swap_reader_max_wait_ms),
        index_drop_ms: super::round1(best_drop.unwrap_or_default().0),
        index_drop_cpu_ms: best_drop.unwrap_or_default().1,
        scan_ordered_ms: super::round1(scan_ordered_ms),
        scan_unordered_ms: super::round1(scan_unordered_ms),
        query_plan,
        records_bytes_per_key: super::round1(records_bytes),
        index_bytes_per_key: super::round1(index_bytes),
        key_record_size_bytes: std::mem::size_of::<KeyRecord>(),
        runs: runs.max(1),
    })
}

/// The registry's swap, as the gateway does it: the first index is loaded on one thread (the
/// gateway's start-up), the second on another (a reload on the blocking pool), which then replaces
/// the first with `*lock.write() = Arc::new(new)` (so the first is freed under the write lock, by
/// a thread that did not allocate it). A reader thread reads the lock every 100 µs meanwhile, as
/// requests do. Returns the longest wait for the read lock, ms.
fn swap_stall(path: &Path) -> Result<f64> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, RwLock};
    let load = |path: std::path::PathBuf| -> Result<KeyIndex> {
        let store = SqliteStore::open(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
        let all = super::runtime(1)?.block_on(store.all_keys());
        Ok(KeyIndex::new(all.map_err(|e| anyhow::anyhow!("{e}"))?))
    };
    let p = path.to_path_buf();
    let first = std::thread::spawn(move || load(p))
        .join()
        .map_err(|_| anyhow::anyhow!("loader thread failed"))??;
    let lock = Arc::new(RwLock::new(Arc::new(first)));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (lock, stop) = (lock.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut worst = std::time::Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let snapshot = lock.read().unwrap_or_else(|e| e.into_inner()).clone();
                worst = worst.max(t.elapsed());
                black_box(snapshot.len());
                drop(snapshot);
                std::thread::sleep(std::time::Duration::from_micros(100));
            }
            worst
        })
    };
    let (p, writer_lock) = (path.to_path_buf(), lock.clone());
    std::thread::spawn(move || -> Result<()> {
        let second = load(p)?;
        *writer_lock.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(second);
        Ok(())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("reload thread failed"))??;
    std::thread::sleep(std::time::Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let worst = reader.join().map_err(|_| anyhow::anyhow!("reader thread failed"))?;
    Ok(worst.as_secs_f64() * 1e3)
}

#[derive(Serialize)]
pub struct Lookup {
    pub keys: usize,
    pub lookups: usize,
    /// `KeyIndex::verify` of a valid presented key (SHA-256 of the key, the map lookup by key id,
    /// a constant-time hash compare), ns.
    pub verify_ns: f64,
    /// The map lookup alone (`KeyIndex::get` by key id), ns.
    pub get_ns: f64,
    /// The same two from this process's CPU time instead of wall time (10 ms resolution).
    pub verify_cpu_ns: f64,
    pub get_cpu_ns: f64,
    pub index_build_ms: f64,
}

/// Verification cost at each size: keys are presented in creation order, which the index's hash
/// map scatters, so at 1M most lookups miss the CPU caches as a busy gateway's would.
pub fn lookups(sizes: &[usize], lookups: usize) -> Result<Vec<Lookup>> {
    let now = now_s();
    let mut out = Vec::new();
    for &n in sizes {
        ensure!(n >= 1, "sizes must be at least 1");
        let mut records = Vec::with_capacity(n);
        let mut presented = Vec::with_capacity(n);
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let k = keys::generate();
            records.push(record(&k.key_id, &k.hash, i, now));
            presented.push(k.key.expose().to_owned());
            ids.push(k.key_id);
        }
        let t = Instant::now();
        let index = KeyIndex::new(records);
        let index_build_ms = t.elapsed().as_secs_f64() * 1e3;
        // Warm up one pass (bounded), then measure.
        for p in presented.iter().take(lookups.min(n)) {
            black_box(index.verify(black_box(p), now).is_ok());
        }
        let c0 = cpu_ms();
        let t = Instant::now();
        let mut ok = 0usize;
        for i in 0..lookups {
            if index.verify(black_box(&presented[i % n]), now).is_ok() {
                ok += 1;
            }
        }
        let verify_ns = t.elapsed().as_nanos() as f64 / lookups.max(1) as f64;
        let verify_cpu_ns = (cpu_ms() - c0) * 1e6 / lookups.max(1) as f64;
        ensure!(ok == lookups, "{} of {lookups} valid keys were refused", lookups - ok);
        let c0 = cpu_ms();
        let t = Instant::now();
        let mut found = 0usize;
        for i in 0..lookups {
            if index.get(black_box(&ids[i % n])).is_some() {
                found += 1;
            }
        }
        let get_ns = t.elapsed().as_nanos() as f64 / lookups.max(1) as f64;
        let get_cpu_ns = (cpu_ms() - c0) * 1e6 / lookups.max(1) as f64;
        black_box(found);
        out.push(Lookup {
            keys: n,
            lookups,
            verify_ns: super::round1(verify_ns),
            get_ns: super::round1(get_ns),
            verify_cpu_ns: super::round1(verify_cpu_ns),
            get_cpu_ns: super::round1(get_cpu_ns),
            index_build_ms: super::round1(index_build_ms),
        });
    }
    Ok(out)
}
