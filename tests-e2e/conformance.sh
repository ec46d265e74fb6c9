#!/usr/bin/env bash
# The official MCP conformance suite's server scenarios against three targets:
#   direct        mcpgate-example-server --http 127.0.0.1:0 --profile conformance
#   upstream-url  mcpgate serve --no-auth --upstream-url <that same fixture>
#   upstream-cmd  mcpgate serve --no-auth --upstream-cmd "mcpgate-example-server --stdio --profile conformance"
# (--no-auth: the suite cannot send credentials.)
# A scenario that passes directly must pass through the gateway (one check per scenario and
# gateway target); each scenario that passes directly is a check too. A scenario that fails
# directly is reported but not counted, unless MCPGATE_CONFORMANCE_STRICT=1.
# Writes $TARGET_DIR/conformance-summary.md. Raw suite output: $TARGET_DIR/e2e-logs/conformance/.
#
# Environment: see lib.sh; also CONFORMANCE_SUITE (active|all|pending, default active),
# CONFORMANCE_TIMEOUT (seconds for one target's whole run, default 300),
# CONFORMANCE_SCENARIO_TIMEOUT (seconds per scenario when re-running one by one, default 30).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SUITE="${CONFORMANCE_SUITE:-active}"
RUN_TIMEOUT="${CONFORMANCE_TIMEOUT:-300}"
SCENARIO_TIMEOUT="${CONFORMANCE_SCENARIO_TIMEOUT:-30}"
STRICT="${MCPGATE_CONFORMANCE_STRICT:-0}"
SUMMARY_MD="${CONFORMANCE_SUMMARY:-$TARGET_DIR/conformance-summary.md}"
rm -f "$SUMMARY_MD" # never leave a stale table behind

ensure_npm_tools
e2e_init conformance
conformance() { "$NODE22" "$CONFORMANCE_JS" "$@"; }
CONF_VERSION="$(conformance --version 2>/dev/null || echo '?')"

# parse_summary LOG OUT: the suite's "=== SUMMARY ===" lines ("✓ name: 3 passed, 0 failed")
# into OUT as "name pass|fail checks_passed checks_failed". Returns 1 if there is no summary.
parse_summary() {
  python3 - "$1" "$2" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
if "=== SUMMARY ===" not in text:
    sys.exit(1)
summary = text.split("=== SUMMARY ===", 1)[1]
rows = []
for line in summary.splitlines():
    m = re.match(r"^\s*\S+\s+(\S+): (\d+) passed, (\d+) failed\s*$", line)
    if m:
        name, ok, bad = m.group(1), int(m.group(2)), int(m.group(3))
        rows.append(f"{name} {'pass' if bad == 0 else 'fail'} {ok} {bad}")
with open(sys.argv[2], "w") as f:
    f.write("\n".join(rows) + ("\n" if rows else ""))
sys.exit(0 if rows else 1)
PY
}

# The scenario names of a suite, for the one-by-one fallback.
list_scenarios() {
  if [[ -s "$E2E_TMP/direct.res" ]]; then
    cut -d' ' -f1 "$E2E_TMP/direct.res"
  else
    conformance list 2>/dev/null | awk '/^Server scenarios/{on=1; next} /^$/{on=0} on && /^ *- /{print $2}'
  fi
}

# run_target TARGET URL: runs the suite against URL; writes $E2E_TMP/TARGET.res.
run_target() {
  local target="$1" url="$2" log="$E2E_SUITE_LOG_DIR/$1.suite.log" rc=0 s
  local out="$E2E_SUITE_LOG_DIR/$1.results"
  log "conformance ($SUITE suite) against $target: $url"
  limited "$RUN_TIMEOUT" "$NODE22" "$CONFORMANCE_JS" server --url "$url" \
    --suite "$SUITE" -o "$out" >"$log" 2>&1 || rc=$?
  if parse_summary "$log" "$E2E_TMP/$target.res"; then
    return 0
  fi
  echo "$target $rc" >>"$E2E_TMP/whole-run-failed"
  # No summary: the run hung (rc 124) or crashed. Re-run scenario by scenario, each with its
  # own timeout, so that one hang does not hide every other result.
  log "$target: no summary (exit $rc); re-running scenario by scenario"
  : >"$E2E_TMP/$target.res"
  for s in $(list_scenarios); do
    local slog="$E2E_SUITE_LOG_DIR/$target.$s.log" src=0 line
    limited "$SCENARIO_TIMEOUT" "$NODE22" "$CONFORMANCE_JS" server --url "$url" \
      --scenario "$s" -o "$out" >"$slog" 2>&1 || src=$?
    line="$(sed -n 's/^Passed: \([0-9]*\)\/[0-9]*, \([0-9]*\) failed.*/\1 \2/p' "$slog" | tail -n1)"
    if [[ -n "$line" ]]; then
      set -- $line
      if [[ "$2" == 0 ]]; then echo "$s pass $1 $2"; else echo "$s fail $1 $2"; fi
    else
      echo "$s fail 0 1" # timed out (exit $src) or crashed
      log "$target/$s: no result (exit $src; log $slog)"
    fi >>"$E2E_TMP/$target.res"
  done
}

status_of() { # status_of TARGET SCENARIO -> pass|fail|-
  awk -v s="$2" '$1 == s {print $2; found=1} END {if (!found) print "-"}' "$E2E_TMP/$1.res" 2>/dev/null || echo "-"
}

# ---- run the three targets --------------------------------------------------------------
start_fixture fixture-conformance conformance
DIRECT_URL="$FIXTURE_URL"
run_target direct "$DIRECT_URL"

# The suite cannot send credentials: the gateway runs with authentication off.
if start_gateway gateway-upstream-url --no-auth --upstream-url "$DIRECT_URL"; then
  run_target upstream-url "$GATEWAY_URL"
fi

if start_gateway gateway-upstream-cmd --no-auth --upstream-cmd "$(fixture_stdio_cmd conformance)"; then
  run_target upstream-cmd "$GATEWAY_URL"
fi

# ---- compare ----------------------------------------------------------------------------
TARGETS=(direct upstream-url upstream-cmd)
touch "$E2E_TMP/direct.res"
mapfile -t SCENARIOS < <(cat "$E2E_TMP"/{direct,upstream-url,upstream-cmd}.res 2>/dev/null | cut -d' ' -f1 | awk '!seen[$0]++')

direct_passed=0
direct_failed_list=()
for s in "${SCENARIOS[@]}"; do
  d="$(status_of direct "$s")"
  if [[ "$d" == pass ]]; then
    direct_passed=$((direct_passed + 1))
    pass "conformance/direct/$s"
  elif [[ "$STRICT" == 1 ]]; then
    fail "conformance/direct/$s" "fails against the fixture itself (log: $E2E_SUITE_LOG_DIR/direct.suite.log)"
  else
    direct_failed_list+=("$s")
  fi
  for t in upstream-url upstream-cmd; do
    [[ -f "$E2E_TMP/$t.res" ]] || continue # the gateway did not start: one failure, below
    g="$(status_of "$t" "$s")"
    if [[ "$d" == pass ]]; then
      if [[ "$g" == pass ]]; then
        pass "conformance/$t/$s"
      else
        fail "conformance/$t/$s" "passes directly, ${g/-/no result} through the gateway (log: $E2E_SUITE_LOG_DIR/$t.suite.log)"
      fi
    fi
  done
done
for t in upstream-url upstream-cmd; do
  if [[ ! -f "$E2E_TMP/$t.res" ]]; then
    fail "conformance/$t" "mcpgate serve did not start (log: $E2E_SUITE_LOG_DIR/gateway-$t.log)"
  fi
done
# A gateway target whose whole-suite run hung or crashed (when the direct one did not) fails,
# even if every scenario passed when re-run one by one: something degrades over many sessions.
if ! grep -q '^direct ' "$E2E_TMP/whole-run-failed" 2>/dev/null; then
  while read -r t rc; do
    fail "conformance/$t/whole-suite" "the whole-suite run gave no result (exit $rc; 124 = timed out after ${RUN_TIMEOUT}s) though the direct one did (log: $E2E_SUITE_LOG_DIR/$t.suite.log)"
  done < <(cat "$E2E_TMP/whole-run-failed" 2>/dev/null || true)
fi
if [[ "$direct_passed" -eq 0 ]]; then
  fail "conformance/direct" "no scenario passed against the fixture (log: $E2E_SUITE_LOG_DIR/direct.suite.log)"
fi
if [[ "${#direct_failed_list[@]}" -gt 0 ]]; then
  log "not gated (fail against the fixture itself): ${direct_failed_list[*]}"
fi

# ---- summary (stdout + markdown) ---------------------------------------------------------
count() { # count TARGET pass|fail -> scenarios; checks TARGET -> "passed failed"
  awk -v w="$2" '$2 == w {n++} END {print n+0}' "$E2E_TMP/$1.res" 2>/dev/null || echo 0
}
checks() {
  awk '{p += $3; f += $4} END {print p+0, f+0}' "$E2E_TMP/$1.res" 2>/dev/null || echo "0 0"
}
mark() { case "$1" in pass) echo "✅" ;; fail) echo "❌" ;; *) echo "—" ;; esac; }

# Checks whose status differs between the direct run and a gateway run (e.g. SUCCESS directly,
# INFO or WARNING through the gateway), from the suite's per-scenario checks.json files.
diff_checks() {
  python3 - "$E2E_SUITE_LOG_DIR" <<'PY'
import glob, json, os, re, sys
base = sys.argv[1]
def load(target):
    out = {}
    for f in sorted(glob.glob(f"{base}/{target}.results/server-*/checks.json")):
        m = re.match(r"server-(.+)-\d{4}-\d\d-\d\dT[\d-]+Z$", os.path.basename(os.path.dirname(f)))
        if not m:
            continue
        try:
            checks = json.load(open(f, encoding="utf-8"))
        except Exception:
            continue
        out[m.group(1)] = {c.get("name") or c.get("id"): c for c in checks}  # latest run wins
    return out
direct = load("direct")
lines = []
loaded = 0
for target, flag in (("upstream-url", "--upstream-url"), ("upstream-cmd", "--upstream-cmd")):
    gw = load(target)
    loaded += len(gw)
    for scen in sorted(set(direct) & set(gw)):
        for name in sorted(set(direct[scen]) | set(gw[scen]), key=str):
            d, g = direct[scen].get(name), gw[scen].get(name)
            ds, gs = (d or {}).get("status", "absent"), (g or {}).get("status", "absent")
            if ds != gs:
                why = (g or {}).get("errorMessage") or (g or {}).get("description") or ""
                lines.append(f"- `{flag}` · {scen} · {name}: {ds} directly, {gs} through the gateway"
                             + (f" ({why[:160]})" if why else ""))
print("**Checks that differ through the gateway** (scenario verdicts above are unaffected unless a check is FAILURE):")
print()
if lines:
    print("\n".join(lines))
elif loaded:
    print("None: every check has the same status directly and through the gateway.")
else:
    print("No gateway run produced results.")
PY
}

mkdir -p "$(dirname "$SUMMARY_MD")"
{
  echo "## MCP conformance suite (server scenarios)"
  echo
  echo "\`@modelcontextprotocol/conformance\` $CONF_VERSION, \`$SUITE\` suite, $(date -u +%Y-%m-%d)."
  echo
  echo "| target | scenarios passed | scenarios failed | checks passed | checks failed |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  for t in "${TARGETS[@]}"; do
    read -r cp cf <<<"$(checks "$t")"
    case "$t" in
      direct) label="example server, direct" ;;
      upstream-url) label="mcpgate → HTTP upstream (\`--upstream-url\`)" ;;
      upstream-cmd) label="mcpgate → stdio upstream (\`--upstream-cmd\`)" ;;
    esac
    echo "| $label | $(count "$t" pass) | $(count "$t" fail) | $cp | $cf |"
  done
  echo
  echo "<details><summary>Per scenario</summary>"
  echo
  echo "| scenario | direct | --upstream-url | --upstream-cmd |"
  echo "| --- | :---: | :---: | :---: |"
  for s in "${SCENARIOS[@]}"; do
    echo "| $s | $(mark "$(status_of direct "$s")") | $(mark "$(status_of upstream-url "$s")") | $(mark "$(status_of upstream-cmd "$s")") |"
  done
  echo
  echo "</details>"
  echo
  diff_checks
} >"$SUMMARY_MD"

echo
echo "conformance ($SUITE suite, $CONF_VERSION):"
for t in "${TARGETS[@]}"; do
  read -r cp cf <<<"$(checks "$t")"
  printf '  %-13s %2s scenarios passed, %2s failed (checks: %s passed, %s failed)\n' \
    "$t" "$(count "$t" pass)" "$(count "$t" fail)" "$cp" "$cf"
done
diff_checks | sed -n '3,$p' | sed 's/^/  /'
echo "  summary: $SUMMARY_MD"
suite_summary
