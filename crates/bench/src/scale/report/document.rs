//! `scale.json`: the measurement files of one run, keyed by file name, summarised into one
//! document with a section per part that ran (keys, SSE sessions, limiter, policy size).

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::Path;

pub(super) type Files = BTreeMap<String, Value>;

pub(super) fn load(dir: &Path) -> Result<Files> {
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

/// The document: `meta`, then each section whose files are there.
pub(super) fn build(files: &Files) -> Value {
    let mut doc = Map::new();
    doc.insert("meta".into(), files.get("meta").cloned().unwrap_or(Value::Null));
    if let Some(k) = keys_section(files) {
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
    if let Some(p) = policy_section(files) {
        doc.insert("policy".into(), p);
    }
    Value::Object(doc)
}
