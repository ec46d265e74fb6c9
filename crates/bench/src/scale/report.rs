//! `report`: the JSON objects `bench/scale` collected in one directory (one file per measurement,
//! named by what it measured) into `scale.json` and `scale.md`. Parts that did not run are left
//! out, so a partial run (`SCALE_PARTS=sse bench/scale`) still gets a report.

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

type Files = BTreeMap<String, Value>;

fn load(dir: &Path) -> Result<Files> {
    let mut files = Files::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
            continue;
        };
        let text = std::fs::read_to_string(&path)?;
        match serde_json::from_str(&text) {
            Ok(v) => {
                files.insert(stem, v);
            }
            Err(e) => eprintln!("report: skipping {} ({e})", path.display()),
        }
    }
    Ok(files)
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

fn r1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn r2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Files named `{prefix}{n}` (n = 1, 2, …) in order.
fn series<'a>(files: &'a Files, prefix: &str) -> Vec<&'a Value> {
    let mut out: Vec<(u32, &Value)> = files
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix)?.parse().ok().map(|n| (n, v)))
        .collect();
    out.sort_by_key(|(n, _)| *n);
    out.into_iter().map(|(_, v)| v).collect()
}

/// The gateway's side of one `mcpgate-bench load` run.
fn load_summary(v: &Value) -> Value {
    json!({
        "gateway_us_per_req": v["cpu"]["gateway"]["us_per_req"],
        "rps": v["rps"],
        "ok": v["ok"],
        "errors": v["errors"],
        "p50_us": v["latency"]["p50_us"],
        "p99_us": v["latency"]["p99_us"],
        "background_cores": v["background_cores"],
    })
}

fn startup(files: &Files, name: &str) -> Value {
    let runs: Vec<f64> = series(files, &format!("startup_{name}_"))
        .iter()
        .filter_map(|v| f(&v["elapsed_ms"]))
        .collect();
    let keys = series(files, &format!("startup_{name}_"))
        .last()
        .map(|v| v["body"]["auth"]["keys"].clone())
        .unwrap_or(Value::Null);
    json!({ "runs_ms": runs, "median_ms": median(runs.clone()), "keys_loaded": keys })
}

fn keys_section(files: &Files) -> Option<Value> {
    let created = files.get("keys_create")?;
    let count = f(&created["count"]).unwrap_or(0.0);
    let mut s = Map::new();
    s.insert("count".into(), created["count"].clone());
    s.insert("bulk_insert".into(), created.clone());
    s.insert(
        "startup".into(),
        json!({ "one_key": startup(files, "one"), "million": startup(files, "1m") }),
    );
    if let (Some(one), Some(big)) = (files.get("mem_one"), files.get("mem_1m")) {
        let delta = f(&big["rss_kib"]).unwrap_or(0.0) - f(&one["rss_kib"]).unwrap_or(0.0);
        s.insert(
            "memory".into(),
            json!({
                "one_key": one,
                "million": big,
                "rss_delta_mib": r1(delta / 1024.0),
                "bytes_per_key": if count > 1.0 { Some(r1(delta * 1024.0 / (count - 1.0))) } else { None },
            }),
        );
    }
    if let (Some(one), Some(big)) = (files.get("load_one"), files.get("load_1m")) {
        let (a, b) = (
            f(&one["cpu"]["gateway"]["us_per_req"]),
            f(&big["cpu"]["gateway"]["us_per_req"]),
        );
        s.insert(
            "request_cpu".into(),
            json!({
                "one_key": load_summary(one),
                "million": load_summary(big),
                "ratio_million_vs_one": a.zip(b).filter(|(a, _)| *a > 0.0).map(|(a, b)| r2(b / a)),
            }),
        );
    }
    for (k, file) in [("lookup", "lookup"), ("reload", "reload"), ("revoke", "revoke")] {
        if let Some(v) = files.get(file) {
            s.insert(k.into(), v.clone());
        }
    }
    Some(Value::Object(s))
}

fn policy_section(files: &Files) -> Option<Value> {
    let meta = files.get("meta")?;
    let variants = meta["policy_variants"].as_array()?;
    let mut out = Vec::new();
    let mut base: Option<f64> = None;
    for v in variants {
        let Some(name) = v["name"].as_str() else { continue };
        let runs: Vec<&Value> = series(files, &format!("policy_{name}_"));
        if runs.is_empty() {
            continue;
        }
        let us: Vec<f64> = runs
            .iter()
            .filter_map(|r| f(&r["cpu"]["gateway"]["us_per_req"]))
            .collect();
        let med = median(us.clone());
        if base.is_none() {
            base = med;
        }
        out.push(json!({
            "name": name,
            "rules": v["rules"],
            "kind": v["kind"],
            "gateway_us_per_req_runs": us,
            "gateway_us_per_req_median": med.map(r1),
            "ratio_vs_first": med.zip(base).filter(|(_, b)| *b > 0.0).map(|(m, b)| r2(m / b)),
            "rps_runs": runs.iter().map(|r| r["rps"].clone()).collect::<Vec<_>>(),
            "errors": runs.iter().filter_map(|r| r["errors"].as_u64()).sum::<u64>(),
            "background_cores_runs": runs.iter().map(|r| r["background_cores"].clone()).collect::<Vec<_>>(),
            "p50_us_runs": runs.iter().map(|r| r["latency"]["p50_us"].clone()).collect::<Vec<_>>(),
            "gateway_rss_kib": files.get(&format!("policy_mem_{name}")).map(|m| m["rss_kib"].clone()),
            "startup_ms": files.get(&format!("policy_start_{name}")).map(|m| m["elapsed_ms"].clone()),
        }));
    }
    if out.is_empty() {
        return None;
    }
    Some(json!({ "rate": meta["settings"]["SCALE_RATE"], "variants": out }))
}

pub fn run(dir: &Path, out_dir: &Path) -> Result<()> {
    let files = load(dir)?;
    let mut doc = Map::new();
    doc.insert("meta".into(), files.get("meta").cloned().unwrap_or(Value::Null));
    if let Some(k) = keys_section(&files) {
        doc.insert("keys".into(), k);
    }
    let sse: Vec<Value> = ["sse_h1", "sse_h2"]
        .iter()
        .filter_map(|n| files.get(*n).cloned())
        .collect();
    if !sse.is_empty() {
        doc.insert(
            "sse".into(),
            json!({ "fd_limit": files.get("meta").map(|m| m["nofile_limit"].clone()), "runs": sse }),
        );
    }
    let limiter: Vec<Value> = ["limiter_own", "limiter_tool"]
        .iter()
        .filter_map(|n| files.get(*n).cloned())
        .collect();
    if !limiter.is_empty() {
        doc.insert("limiter".into(), Value::Array(limiter));
    }
    if let Some(p) = policy_section(&files) {
        doc.insert("policy".into(), p);
    }
    let doc = Value::Object(doc);
    std::fs::create_dir_all(out_dir)?;
    std::fs::write(out_dir.join("scale.json"), serde_json::to_string_pretty(&doc)? + "\n")?;
    std::fs::write(out_dir.join("scale.md"), markdown(&doc))?;
    eprintln!(
        "wrote {} and {}",
        out_dir.join("scale.json").display(),
        out_dir.join("scale.md").display()
    );
    Ok(())
}

/// A number for a table: `—` when absent.
fn n(v: &Value, digits: usize) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.digits$}"),
        None => "—".into(),
    }
}

/// An integer with thousands separators (`1,000,000`).
fn int(v: &Value) -> String {
    let Some(x) = v.as_f64() else {
        return "—".into();
    };
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if x < 0.0 { format!("-{out}") } else { out }
}

fn mib(kib: &Value) -> String {
    kib.as_f64().map_or("—".into(), |k| format!("{:.0} MiB", k / 1024.0))
}

fn ms_as_s(v: &Value) -> String {
    v.as_f64().map_or("—".into(), |m| format!("{:.2} s", m / 1000.0))
}

fn markdown(doc: &Value) -> String {
    let mut m = String::new();
    let meta = &doc["meta"];
    let _ = writeln!(m, "# mcpgate scale figures\n");
    let _ = writeln!(
        m,
        "Date: {} · commit `{}` · {} cores, {} MiB RAM · open-files limit {} · run time {} s\n",
        meta["date"].as_str().unwrap_or("?"),
        meta["commit"].as_str().unwrap_or("?"),
        n(&meta["cores"], 0),
        n(&meta["mem_mib"], 0),
        n(&meta["nofile_limit"], 0),
        n(&meta["run_seconds"], 0),
    );
    let _ = writeln!(m, "Command: `{}`\n", meta["command"].as_str().unwrap_or("bench/scale"));
    let _ = writeln!(
        m,
        "Everything ran on one machine over loopback, shared with other work: memory and startup \
         figures carry over; CPU figures are noisy (the `background` columns show how busy the \
         machine was), so compare them as ratios. How each figure is measured: bench/README.md, \
         \"Scale (bench/scale)\".\n"
    );
    let k = &doc["keys"];
    if k.is_object() {
        let count = int(&k["count"]);
        let _ = writeln!(m, "## {count} API keys in the embedded store\n");
        let b = &k["bulk_insert"];
        let _ = writeln!(
            m,
            "Bulk insert: {count} keys in {} s (one transaction), store file {:.0} MiB.\n",
            n(&b["seconds"], 1),
            b["db_bytes"].as_f64().unwrap_or(0.0) / 1048576.0
        );
        let st = &k["startup"];
        let mem = &k["memory"];
        let _ = writeln!(m, "| | 1 key | {count} keys |\n|---|---|---|");
        let _ = writeln!(
            m,
            "| `mcpgate serve` start → first authenticated answer (median) | {} ms | {} |",
            n(&st["one_key"]["median_ms"], 0),
            ms_as_s(&st["million"]["median_ms"])
        );
        let runs = |v: &Value| {
            v.as_array()
                .map(|a| a.iter().map(|x| n(x, 0)).collect::<Vec<_>>().join(", "))
                .unwrap_or_default()
        };
        let _ = writeln!(
            m,
            "| startup runs (ms) | {} | {} |",
            runs(&st["one_key"]["runs_ms"]),
            runs(&st["million"]["runs_ms"])
        );
        let _ = writeln!(
            m,
            "| keys the gateway reports loaded | {} | {} |",
            int(&st["one_key"]["keys_loaded"]),
            int(&st["million"]["keys_loaded"])
        );
        let _ = writeln!(
            m,
            "| gateway RSS after start (peak during start) | {} ({}) | {} ({}) |",
            mib(&mem["one_key"]["rss_kib"]),
            mib(&mem["one_key"]["hwm_kib"]),
            mib(&mem["million"]["rss_kib"]),
            mib(&mem["million"]["hwm_kib"])
        );
        let rc = &k["request_cpu"];
        let _ = writeln!(
            m,
            "| gateway CPU µs/request, same fixed-rate load (background cores) | {} ({}) | {} ({}) |",
            n(&rc["one_key"]["gateway_us_per_req"], 1),
            n(&rc["one_key"]["background_cores"], 2),
            n(&rc["million"]["gateway_us_per_req"], 1),
            n(&rc["million"]["background_cores"], 2)
        );
        let _ = writeln!(
            m,
            "\nMemory per key in the running gateway: **{} bytes** (RSS delta / keys). CPU per request, \
             {count} keys vs 1: ×{}.\n",
            n(&mem["bytes_per_key"], 0),
            n(&rc["ratio_million_vs_one"], 2)
        );
        if let Some(lookups) = k["lookup"].as_array() {
            let _ = writeln!(
                m,
                "Key lookup, micro (`KeyIndex` in-process, valid keys presented in creation order, \
                 which the hash map scatters):\n\n| keys in the index | `verify` ns (wall) | `verify` ns (CPU) | map lookup `get` ns (wall) | `get` ns (CPU) |\n|---|---|---|---|---|"
            );
            for l in lookups {
                let _ = writeln!(
                    m,
                    "| {} | {} | {} | {} | {} |",
                    int(&l["keys"]),
                    n(&l["verify_ns"], 0),
                    n(&l["verify_cpu_ns"], 0),
                    n(&l["get_ns"], 0),
                    n(&l["get_cpu_ns"], 0)
                );
            }
            let _ = writeln!(m);
        }
        let rl = &k["reload"];
        if rl.is_object() {
            let _ = writeln!(
                m,
                "One reload of the key registry at {} keys (what the watcher runs when the store \
                 changes, and what start-up runs), in a helper process:\n\n| step | wall ms | CPU ms |\n|---|---|---|",
                int(&rl["keys"])
            );
            let _ = writeln!(
                m,
                "| `SqliteStore::all_keys` | {} | {} |",
                n(&rl["list_keys_ms"], 0),
                n(&rl["list_keys_cpu_ms"], 0)
            );
            let _ = writeln!(
                m,
                "| `KeyIndex::new` | {} | {} |",
                n(&rl["index_build_ms"], 0),
                n(&rl["index_build_cpu_ms"], 0)
            );
            let _ = writeln!(
                m,
                "| dropping the previous index | {} | {} |",
                n(&rl["index_drop_ms"], 0),
                n(&rl["index_drop_cpu_ms"], 0)
            );
            let _ = writeln!(
                m,
                "\nThe rows in `keys list` order (`ORDER BY created_at, key_id`) scan in {} ms, \
                 unordered (what a reload reads) in {} ms (plan of the ordered query: {}). A reader \
                 taking a read lock while an index is swapped and freed under the write lock (how \
                 the registry did it before it freed replaced indexes off the request path) waited \
                 up to **{} ms**. \
                 `size_of::<KeyRecord>()` = {} bytes.\n",
                n(&rl["scan_ordered_ms"], 0),
                n(&rl["scan_unordered_ms"], 0),
                rl["query_plan"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join("; "))
                    .unwrap_or_default(),
                n(&rl["swap_reader_max_wait_ms"], 0),
                n(&rl["key_record_size_bytes"], 0)
            );
        }
        let rv = &k["revoke"];
        if rv.is_object() {
            let _ = writeln!(
                m,
                "Revoke on the running gateway with {count} keys (`mcpgate keys revoke`, then the \
                 revoked key polled every 5 ms):\n\n| | |\n|---|---|"
            );
            let _ = writeln!(
                m,
                "| revoke command → first 401 for the revoked key | **{}** |",
                ms_as_s(&rv["revoke_to_refused_ms"])
            );
            let _ = writeln!(
                m,
                "| gateway CPU for the reload (window minus idle rate) | {} |",
                ms_as_s(&rv["reload_cpu_ms"])
            );
            let _ = writeln!(
                m,
                "| gateway RSS before → after the reload (peak) | {} → {} ({}) |",
                mib(&rv["before"]["rss_kib"]),
                mib(&rv["after"]["rss_kib"]),
                mib(&rv["after"]["hwm_kib"])
            );
            let p = |v: &Value| {
                format!(
                    "p50 {} ms, p99 {} ms, max {} ms (sent at {} s) ({} requests, {} errors)",
                    n(&v["p50_ms"], 2),
                    n(&v["p99_ms"], 2),
                    n(&v["max_ms"], 1),
                    v["max_sent_at_ms"]
                        .as_f64()
                        .map_or("—".into(), |t| format!("{:.2}", t / 1000.0)),
                    n(&v["requests"], 0),
                    n(&v["errors"], 0)
                )
            };
            let _ = writeln!(
                m,
                "| another key's requests (every 10 ms), idle window | {} |",
                p(&rv["probe_idle"])
            );
            let _ = writeln!(m, "| the same during the reload | {} |", p(&rv["probe_during_reload"]));
            if rv["plain_probe_idle"].is_object() {
                let _ = writeln!(
                    m,
                    "| `GET /healthz` (no key) every 10 ms, idle window | {} |",
                    p(&rv["plain_probe_idle"])
                );
                let _ = writeln!(
                    m,
                    "| the same during the reload | {} |",
                    p(&rv["plain_probe_during_reload"])
                );
            }
            let _ = writeln!(m);
        }
    }
    if let Some(runs) = doc["sse"]["runs"].as_array() {
        let _ = writeln!(
            m,
            "## Concurrent MCP sessions with an open SSE stream\n\nEach session: `initialize`, \
             `notifications/initialized`, then `GET /mcp` with `Accept: text/event-stream`, through \
             `mcpgate serve --upstream-url` to an upstream that sends one event at once and a \
             heartbeat event on every stream every few seconds. Open-files limit: {}.\n",
            n(&doc["sse"]["fd_limit"], 0)
        );
        let _ = writeln!(
            m,
            "| client → gateway | sessions | connections | open after hold | closed | got a heartbeat during the hold | setup errors | gateway RSS baseline → held | **bytes / session** | gateway fds |\n|---|---|---|---|---|---|---|---|---|---|"
        );
        for r in runs {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} | {} | {} | {} → {} | **{}** | {} |",
                r["protocol"].as_str().unwrap_or("?"),
                int(&r["sessions_wanted"]),
                int(&r["connections"]),
                int(&r["streams_open_after_hold"]),
                int(&r["streams_closed"]),
                int(&r["streams_alive"]),
                n(&r["setup_errors"], 0),
                mib(&r["gateway_baseline"]["rss_kib"]),
                mib(&r["gateway_held"]["rss_kib"]),
                n(&r["gateway_bytes_per_session"], 0),
                n(&r["gateway_held"]["fds"], 0)
            );
        }
        let _ = writeln!(
            m,
            "\nBytes per session = (RSS after the hold − RSS with the warm-up sessions open) / the \
             sessions opened after the warm-up. Hold {} s; setup {} s (HTTP/1.1 run).\n",
            n(&runs[0]["hold_seconds"], 0),
            n(&runs[0]["setup_seconds"], 1)
        );
    }
    if let Some(ls) = doc["limiter"].as_array() {
        let _ = writeln!(
            m,
            "## Rate limiter memory (`LocalLimiter`)\n\n| active principals | limits | RSS growth | **bytes / principal** | `check` ns, new principal | `check` ns, known |\n|---|---|---|---|---|---|"
        );
        for l in ls {
            let growth = f(&l["rss_after_kib"]).unwrap_or(0.0) - f(&l["rss_before_kib"]).unwrap_or(0.0);
            let _ = writeln!(
                m,
                "| {} | {} | {:.0} MiB | **{}** | {} | {} |",
                int(&l["principals"]),
                if l["variant"] == "own" {
                    "per-minute, per-hour, daily"
                } else {
                    "the same + one per-tool limit"
                },
                growth / 1024.0,
                n(&l["bytes_per_principal"], 0),
                n(&l["check_insert_ns"], 0),
                n(&l["check_hit_ns"], 0)
            );
        }
        let _ = writeln!(
            m,
            "\nThese principals are all active within the minute. States at rest (every window \
             recovered, nothing counted against today's quota) are swept once a minute per shard.\n"
        );
    }
    if let Some(vs) = doc["policy"]["variants"].as_array() {
        let _ = writeln!(
            m,
            "## Request cost vs policy size (in the gateway)\n\nThe same open-loop load ({} req/s of \
             `tools/call echo` with an API key) against gateways that differ only in their policy \
             rules; gateway CPU from /proc.\n\n| policy | gateway CPU µs/request (runs) | median | ×first | gateway RSS | background cores |\n|---|---|---|---|---|---|",
            n(&doc["policy"]["rate"], 0)
        );
        for v in vs {
            let runs = v["gateway_us_per_req_runs"]
                .as_array()
                .map(|a| a.iter().map(|x| n(x, 1)).collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            let bg = v["background_cores_runs"]
                .as_array()
                .map(|a| a.iter().map(|x| n(x, 2)).collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            let _ = writeln!(
                m,
                "| {} {} rules | {} | {} | {} | {} | {} |",
                int(&v["rules"]),
                v["kind"].as_str().unwrap_or("?"),
                runs,
                n(&v["gateway_us_per_req_median"], 1),
                n(&v["ratio_vs_first"], 2),
                mib(&v["gateway_rss_kib"]),
                bg
            );
        }
        let _ = writeln!(m);
    }
    m
}
