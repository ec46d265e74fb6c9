//! `scale.md`: the `scale.json` document as tables and sentences for a reader.

use serde_json::Value;
use std::fmt::Write as _;

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

pub(super) fn markdown(doc: &Value) -> String {
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
            let growth = l["rss_after_kib"].as_f64().unwrap_or(0.0) - l["rss_before_kib"].as_f64().unwrap_or(0.0);
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
