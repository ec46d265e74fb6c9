//! `report`: reads a `bench/run` work directory and writes `latest.json` and `latest.md`.
//!
//! Work directory layout, one folder per target:
//! `TARGET/meta.json` (`name`, `description`, `status`, `rss_hwm_kib`), `TARGET/probe.json`,
//! `TARGET/probe-reuse.json`, `TARGET/sat-N.json` (saturation runs), `TARGET/lat-N.json`
//! (fixed-rate runs); each `*.json` but meta is a `load --json` or `probe --json` output.
//! Every reported number is the median over the repetitions, taken metric by metric.

use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub struct Opts {
    pub work: PathBuf,
    pub targets: Vec<String>,
    pub out_dir: PathBuf,
    pub command: String,
    pub date: String,
    pub settings: Vec<(String, String)>,
}

fn read(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn runs(dir: &Path, prefix: &str) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".json"))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files.iter().filter_map(|p| read(p)).collect()
}

/// The last non-empty line of a probe's stderr, or Null when the file is missing (not run).
/// An empty file means the process was stopped without a word: bench/run's time bound.
fn failure(path: &Path) -> Value {
    match std::fs::read_to_string(path) {
        Err(_) => Value::Null,
        Ok(text) => {
            let last = text.lines().rev().map(str::trim).find(|l| !l.is_empty());
            Value::from(last.unwrap_or("no output (stopped by bench/run's time bound)"))
        }
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn med(runs: &[Value], ptr: &str) -> Value {
    median(
        runs.iter()
            .filter_map(|r| r.pointer(ptr).and_then(Value::as_f64))
            .collect(),
    )
    .map_or(Value::Null, |m| json!((m * 10.0).round() / 10.0))
}

fn sum(vals: &[&Value], ptr: &str) -> u64 {
    vals.iter().filter_map(|r| r.pointer(ptr).and_then(Value::as_u64)).sum()
}

fn summarize(runs: &[Value]) -> Value {
    // Latency percentiles only from runs that had successful requests.
    let lat: Vec<Value> = runs
        .iter()
        .filter(|r| r.pointer("/latency/samples").and_then(Value::as_u64).unwrap_or(0) > 0)
        .cloned()
        .collect();
    let mut cpu = serde_json::Map::new();
    if let Some(first) = runs.first().and_then(|r| r.get("cpu")).and_then(Value::as_object) {
        for name in first.keys() {
            cpu.insert(
                name.clone(),
                json!({
                    "us_per_req": med(runs, &format!("/cpu/{name}/us_per_req")),
                    "cores": med(runs, &format!("/cpu/{name}/cores")),
                }),
            );
        }
    }
    // Redis commands per request (runs given `--redis`): medians per command.
    let mut redis = Value::Null;
    if runs.iter().any(|r| r.get("redis").is_some()) {
        let mut names: Vec<String> = runs
            .iter()
            .filter_map(|r| r.pointer("/redis/per_req").and_then(Value::as_object))
            .flat_map(|m| m.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        // A command missing from a run's window ran 0 times in it.
        let per_cmd: serde_json::Map<String, Value> = names
            .iter()
            .map(|n| {
                let v = median(
                    runs.iter()
                        .filter(|r| r.get("redis").is_some())
                        .map(|r| {
                            r.pointer(&format!("/redis/per_req/{n}"))
                                .and_then(Value::as_f64)
                                .unwrap_or(0.0)
                        })
                        .collect(),
                );
                (
                    n.clone(),
                    v.map_or(Value::Null, |m| json!((m * 1000.0).round() / 1000.0)),
                )
            })
            .collect();
        let med3 = |ptr: &str| {
            median(
                runs.iter()
                    .filter_map(|r| r.pointer(ptr).and_then(Value::as_f64))
                    .collect(),
            )
            .map_or(Value::Null, |m| json!((m * 1000.0).round() / 1000.0))
        };
        redis = json!({
            "calls_per_req": med3("/redis/calls_per_req"),
            "scripts_per_req": med3("/redis/scripts_per_req"),
            "exec_us_per_req": med(runs, "/redis/exec_us_per_req"),
            "per_req": per_cmd,
        });
    }
    json!({
        "reps": runs.len(),
        "redis": redis,
        "rps": med(runs, "/rps"),
        "p50_us": med(&lat, "/latency/p50_us"),
        "p90_us": med(&lat, "/latency/p90_us"),
        "p99_us": med(&lat, "/latency/p99_us"),
        "p999_us": med(&lat, "/latency/p999_us"),
        "cpu": cpu,
        "background_cores": med(runs, "/background_cores"),
        "irq_cores": med(runs, "/irq_cores"),
        "runs": runs,
    })
}

fn machine() -> Value {
    let nproc = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    json!({"nproc": nproc, "mem_total_mib": mem_kib / 1024, "cpu_model": model, "kernel": kernel})
}

pub fn run(o: &Opts) -> Result<()> {
    let mut targets = Vec::new();
    for name in &o.targets {
        let dir = o.work.join(name);
        let meta = read(&dir.join("meta.json")).unwrap_or_else(|| json!({"status": "no results"}));
        let sat = runs(&dir, "sat-");
        let lat = runs(&dir, "lat-");
        let probe = read(&dir.join("probe.json"));
        let probe_reuse = read(&dir.join("probe-reuse.json"));
        // A probe that produced no report (it failed or hit bench/run's time bound): why, from
        // its stderr, so the report says "failed: …" rather than "not run".
        let probe_failed = |json: &Option<Value>, err: &str| match json {
            Some(_) => Value::Null,
            None => failure(&dir.join(err)),
        };
        let probe_failed = json!({
            "probe": probe_failed(&probe, "probe.err"),
            "probe_reuse_ids": probe_failed(&probe_reuse, "probe-reuse.err"),
        });
        let mut all: Vec<&Value> = sat.iter().chain(lat.iter()).collect();
        all.extend(probe.iter().chain(probe_reuse.iter()));
        let errors = sum(&all, "/errors") + sum(&all, "/init_errors");
        let crossed = sum(&all, "/crossed");
        let rss = meta
            .get("rss_hwm_kib")
            .and_then(Value::as_f64)
            .map(|k| (k / 1024.0 * 10.0).round() / 10.0);
        targets.push(json!({
            "name": name,
            "description": meta.get("description").cloned().unwrap_or(Value::Null),
            "status": meta.get("status").cloned().unwrap_or(json!("ok")),
            "saturation": summarize(&sat),
            "latency": summarize(&lat),
            "rss_hwm_mib": rss,
            "errors": errors,
            "crossed": crossed,
            "probe": probe,
            "probe_reuse_ids": probe_reuse,
            "probe_failed": probe_failed,
            "latency_skipped": std::fs::read_to_string(dir.join("lat-skipped.txt"))
                .ok()
                .map(|s| s.trim().to_owned()),
        }));
    }
    // Saturation req/s relative to `direct` (the ceiling) and to `apikey` (mcpgate with API key
    // auth: the row the other gateways are compared with).
    let rps_of = |name: &str| {
        targets
            .iter()
            .find(|t| t["name"] == name)
            .and_then(|t| t.pointer("/saturation/rps").and_then(Value::as_f64))
    };
    let (direct, apikey) = (rps_of("direct"), rps_of("apikey"));
    let ratio = |base: Option<f64>, r: Option<f64>| match (base, r) {
        (Some(b), Some(r)) if b > 0.0 => json!((r / b * 10_000.0).round() / 10_000.0),
        _ => Value::Null,
    };
    for t in &mut targets {
        let r = t.pointer("/saturation/rps").and_then(Value::as_f64);
        t["ratio_to_direct"] = ratio(direct, r);
        t["ratio_to_apikey"] = ratio(apikey, r);
    }
    let settings: serde_json::Map<String, Value> = o
        .settings
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    let doc = json!({
        "date": o.date,
        "command": o.command,
        "machine": machine(),
        "settings": settings,
        "targets": targets,
    });
    std::fs::create_dir_all(&o.out_dir).with_context(|| format!("create {}", o.out_dir.display()))?;
    std::fs::write(
        o.out_dir.join("latest.json"),
        serde_json::to_string_pretty(&doc)? + "\n",
    )?;
    let md = markdown(&doc);
    std::fs::write(o.out_dir.join("latest.md"), &md)?;
    print!("{md}");
    Ok(())
}

fn num(v: Option<&Value>) -> String {
    match v.and_then(Value::as_f64) {
        Some(x) if x.fract() == 0.0 || x >= 1000.0 => format!("{}", x.round()),
        Some(x) => format!("{x:.1}"),
        None => "—".into(),
    }
}

/// Two decimals, or three significant digits below 0.1 (a target at 0.2 % of another's req/s
/// should not read "0.00").
fn ratio_text(r: f64) -> String {
    if r == 0.0 || r >= 0.1 {
        format!("{r:.2}")
    } else if r >= 0.01 {
        format!("{r:.3}")
    } else {
        format!("{r:.4}")
    }
}

fn markdown(doc: &Value) -> String {
    let s = |p: &str| doc.pointer(p).and_then(Value::as_str).unwrap_or("").to_owned();
    let set = |k: &str| {
        doc.pointer(&format!("/settings/{k}"))
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned()
    };
    let m = &doc["machine"];
    let mut out = String::new();
    let _ = writeln!(out, "# mcpgate benchmark\n");
    let _ = writeln!(out, "- date: {}", s("/date"));
    let _ = writeln!(
        out,
        "- machine: {} cores (nproc), {} MiB memory, {}, Linux {}",
        m["nproc"],
        m["mem_total_mib"],
        m["cpu_model"].as_str().unwrap_or("?"),
        m["kernel"].as_str().unwrap_or("?")
    );
    let _ = writeln!(out, "- command: `{}`", s("/command"));
    if let Some(obj) = doc["settings"].as_object() {
        let list: Vec<String> = obj
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        let _ = writeln!(out, "- settings: {}", list.join(", "));
    }
    let _ = writeln!(
        out,
        "\nreq/s: closed loop, {} connections, {} s after {} s warmup. Latency: open loop at {} req/s over {} connections \
         (timed from when each request was due). CPU µs/req: utime+stime of the target process (the gateway; the \
         upstream itself for `direct`) during the saturation window ÷ successful requests. Peak RSS: VmHWM of that \
         process at the end. Every number is the median of {} repetitions. errors/crossed: all load runs + the probes.\n",
        set("connections"),
        set("secs"),
        set("warmup"),
        set("rate"),
        set("rate_connections"),
        set("reps")
    );
    let _ = writeln!(out, "Targets:\n");
    for t in doc["targets"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "- `{}`: {}",
            t["name"].as_str().unwrap_or("?"),
            t["description"]
                .as_str()
                .filter(|d| !d.is_empty())
                .unwrap_or("(no description)")
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| target | req/s | ratio to direct | ratio to mcpgate (apikey) | p50 µs | p90 µs | p99 µs | CPU µs/req | peak RSS MiB | errors | crossed |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let targets = doc["targets"].as_array().cloned().unwrap_or_default();
    for t in &targets {
        let status = t["status"].as_str().unwrap_or("ok");
        let name = if status == "ok" {
            t["name"].as_str().unwrap_or("?").to_owned()
        } else {
            format!("{} ({status})", t["name"].as_str().unwrap_or("?"))
        };
        let ratio = |k: &str| t[k].as_f64().map_or("—".into(), ratio_text);
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            num(t.pointer("/saturation/rps")),
            ratio("ratio_to_direct"),
            ratio("ratio_to_apikey"),
            num(t.pointer("/latency/p50_us")),
            num(t.pointer("/latency/p90_us")),
            num(t.pointer("/latency/p99_us")),
            num(t.pointer("/saturation/cpu/target/us_per_req")),
            num(t.get("rss_hwm_mib")),
            t["errors"],
            t["crossed"],
        );
    }
    for t in &targets {
        let name = t["name"].as_str().unwrap_or("?");
        let runs = t.pointer("/saturation/runs").and_then(Value::as_array);
        let nothing = runs.is_some_and(|r| !r.is_empty() && r.iter().all(|r| r["ok"].as_u64() == Some(0)));
        let failed: Vec<&str> = ["probe", "probe_reuse_ids"]
            .iter()
            .filter_map(|k| t["probe_failed"][*k].as_str())
            .collect();
        if nothing || !failed.is_empty() {
            let mut note = format!("\n**{name}:**");
            if nothing {
                note.push_str(" no call succeeded in any saturation run.");
            }
            if !failed.is_empty() {
                let _ = write!(
                    note,
                    " {} of its 2 probes failed ({}).",
                    failed.len(),
                    failed.join("; ").replace('`', "'")
                );
            }
            let _ = writeln!(out, "{note}");
        }
        if let Some(why) = t["latency_skipped"].as_str() {
            let _ = writeln!(
                out,
                "\nLatency of {name} not measured: {why} (an open loop at that rate only queues)."
            );
        }
    }
    let _ = writeln!(
        out,
        "\nWhere the CPU goes at saturation (µs per request, and cores busy, medians; irq = interrupt \
         context, mostly the loopback TCP traffic, which the kernel charges to no process):\n"
    );
    let _ = writeln!(
        out,
        "| target | target µs/req | upstream µs/req | loadgen µs/req | cores: target / upstream / loadgen / irq | other processes (cores) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---|---:|");
    for t in &targets {
        let c = |who: &str, what: &str| num(t.pointer(&format!("/saturation/cpu/{who}/{what}")));
        let same = t["name"] == "direct";
        let up = |what: &str| {
            if same {
                "(= target)".to_owned()
            } else {
                c("upstream", what)
            }
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} / {} / {} / {} | {} |",
            t["name"].as_str().unwrap_or("?"),
            c("target", "us_per_req"),
            up("us_per_req"),
            c("loadgen", "us_per_req"),
            c("target", "cores"),
            up("cores"),
            c("loadgen", "cores"),
            num(t.pointer("/saturation/irq_cores")),
            num(t.pointer("/saturation/background_cores")),
        );
    }
    // Targets with shared backends: what PostgreSQL and Redis cost per request, and how many
    // Redis commands each request took (from `INFO commandstats` at the window's edges).
    let with_backends = |t: &&Value| {
        ["postgres", "redis"]
            .iter()
            .any(|b| t.pointer(&format!("/saturation/cpu/{b}")).is_some())
            || !t.pointer("/saturation/redis").is_none_or(Value::is_null)
    };
    let backends: Vec<&Value> = if targets.iter().any(|t| with_backends(&t)) {
        // With `apikey` first, the same gateway on the embedded store and in-process limits.
        targets
            .iter()
            .filter(|t| t["name"] == "apikey" || with_backends(t))
            .collect()
    } else {
        Vec::new()
    };
    if !backends.is_empty() {
        let _ = writeln!(
            out,
            "\nShared backends (medians; CPU of the PostgreSQL server = the postmaster and all its processes, \
             and of redis-server, per successful request; they are not in the gateway's µs/req. Redis: \
             `INFO commandstats` at the edges of each measured window ÷ successful requests. Scripts = EVAL/EVALSHA/FCALL \
             calls, one round trip each; Redis also counts every command a script runs as a call of its own, so \
             \"all commands\" counts those, and any command sent on its own; \"by command\" leaves out those below \
             0.01 per request; `exec µs` is Redis's own time executing them):\n"
        );
        let _ = writeln!(
            out,
            "| target | run | gateway µs/req | PostgreSQL µs/req | Redis µs/req | gateway + backends µs/req | Redis scripts/req | Redis commands/req (all) | by command | Redis exec µs/req |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---|---:|");
        for t in &backends {
            for ph in ["saturation", "latency"] {
                let c = |who: &str| {
                    t.pointer(&format!("/{ph}/cpu/{who}/us_per_req"))
                        .and_then(Value::as_f64)
                };
                let sum = [c("target"), c("postgres"), c("redis")];
                let total = (sum[0].is_some()).then(|| sum.iter().flatten().sum::<f64>());
                let by: Vec<String> = t
                    .pointer(&format!("/{ph}/redis/per_req"))
                    .and_then(Value::as_object)
                    // Commands below 0.01 per request (session set-up and close) left out.
                    .map(|m| {
                        m.iter()
                            .filter(|(_, v)| v.as_f64().is_some_and(|v| v >= 0.01))
                            .map(|(k, v)| format!("{} {}", k.to_uppercase(), v))
                            .collect()
                    })
                    .unwrap_or_default();
                let redis_num = |k: &str| match t.pointer(&format!("/{ph}/redis/{k}")).and_then(Value::as_f64) {
                    Some(v) if k.ends_with("_per_req") && k != "exec_us_per_req" => format!("{v:.2}"),
                    v => num(v.map(Value::from).as_ref()),
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    t["name"].as_str().unwrap_or("?"),
                    if ph == "saturation" { "saturation" } else { "open loop" },
                    num(c("target").map(Value::from).as_ref()),
                    num(c("postgres").map(Value::from).as_ref()),
                    num(c("redis").map(Value::from).as_ref()),
                    num(total.map(|x| Value::from((x * 10.0).round() / 10.0)).as_ref()),
                    redis_num("scripts_per_req"),
                    redis_num("calls_per_req"),
                    if by.is_empty() { "—".to_owned() } else { by.join(", ") },
                    redis_num("exec_us_per_req"),
                );
            }
        }
    }
    let busy = targets.iter().any(|t| {
        ["saturation", "latency"].iter().any(|ph| {
            t.pointer(&format!("/{ph}/background_cores"))
                .and_then(Value::as_f64)
                .is_some_and(|b| b > 0.2)
        })
    });
    if busy {
        let _ = writeln!(
            out,
            "\n**Warning:** other processes kept the machine busy during some runs (more than 0.2 cores); \
             throughput and tail latency are disturbed. Rerun on a quiet machine."
        );
    }
    let _ = writeln!(
        out,
        "\nCorrectness probes (concurrent calls, unique texts; ok / errors / crossed; a slowest call \
         near 1000 ms is a SYN retransmit: the target's accept queue overflowed):\n"
    );
    for t in &targets {
        let p = |k: &str| {
            let v = &t[k];
            if v.is_null() {
                match t["probe_failed"][k].as_str() {
                    Some(why) => format!("failed: {}", why.replace('`', "'")),
                    None => "not run".to_owned(),
                }
            } else {
                format!(
                    "{} calls, {} concurrent over {} sessions: {} / {} / {} (slowest call {} ms)",
                    v["calls"], v["concurrency"], v["sessions"], v["ok"], v["errors"], v["crossed"], v["slowest_ms"]
                )
            }
        };
        let _ = writeln!(
            out,
            "- {}: unique ids: {}; ids reused across sessions: {}",
            t["name"].as_str().unwrap_or("?"),
            p("probe"),
            p("probe_reuse_ids")
        );
    }
    for t in &targets {
        let mut samples: Vec<String> = Vec::new();
        for key in ["/probe/samples", "/probe_reuse_ids/samples"] {
            if let Some(a) = t.pointer(key).and_then(Value::as_array) {
                samples.extend(a.iter().filter_map(Value::as_str).map(str::to_owned));
            }
        }
        for ph in ["saturation", "latency"] {
            if let Some(runs) = t.pointer(&format!("/{ph}/runs")).and_then(Value::as_array) {
                for r in runs {
                    if let Some(a) = r["error_samples"].as_array() {
                        samples.extend(a.iter().filter_map(Value::as_str).map(str::to_owned));
                    }
                }
            }
        }
        samples.truncate(3);
        if !samples.is_empty() {
            let _ = writeln!(out, "\nSample errors for {}:", t["name"].as_str().unwrap_or("?"));
            for e in samples {
                let _ = writeln!(out, "- `{}`", e.replace('`', "'"));
            }
        }
    }
    out
}
