#!/usr/bin/env python3
"""A headless "browser" for mcpgate's authorization server, for OAuth clients that open one.

    OAUTH_BROWSER_KEY=mcp_… OAUTH_BROWSER_LOG=FILE oauth_browser.py AUTHORIZATION_URL

does what a person would: opens the authorization URL signed in (the gateway's header sign-in,
`X-API-Key: <key>`), without following the redirect, and then opens the redirect's Location, the
client's own loopback callback, so the client receives code, state and iss as it would from a
real browser. One JSON line per visit is appended to $OAUTH_BROWSER_LOG (it holds the code: keep
it in a temp dir). Exits 0 when the gateway redirected back with a code and the callback answered.
Used through $BROWSER (xdg-open's generic mode runs `$BROWSER URL`; the `open` package that
mcp-remote and the MCP Inspector use runs xdg-open) and directly.

    oauth_browser.py --check FILE --issuer ISS --prefix NAME [--visits N] [--first I]
        [--redirect-prefix P] [--resource R] [--secrets-out FILE]

prints one `PASS`/`FAIL` line per check over the recorded visits (and appends them to
$E2E_RESULTS when set): the number of visits, and for each (from the --first on): PKCE S256 and state in the request,
the resource (when --resource), a 303 to the registered redirect with one code, the same state
and iss = the issuer, no error, and a 2xx/3xx from the client's callback. With --secrets-out,
every code seen is appended to that file (for the no-secret-in-log check).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlparse


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def get(url: str, headers: dict[str, str], timeout: float) -> tuple[int, dict[str, str], str]:
    req = urllib.request.Request(url, headers=headers, method="GET")
    try:
        with OPENER.open(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read(2000).decode("utf-8", "replace")
    except urllib.error.HTTPError as e:  # 3xx (not followed), 4xx, 5xx
        body = e.read(2000).decode("utf-8", "replace") if e.fp else ""
        return e.code, {k.lower(): v for k, v in (e.headers or {}).items()}, body


def params(url: str) -> dict[str, list[str]]:
    return parse_qs(urlparse(url).query, keep_blank_values=True)


def browse(url: str) -> int:
    key = os.environ.get("OAUTH_BROWSER_KEY", "")
    log_file = os.environ.get("OAUTH_BROWSER_LOG", "")
    timeout = float(os.environ.get("OAUTH_BROWSER_TIMEOUT", "30"))
    visit: dict = {"time": time.time(), "request": params(url), "authorize_url": url}
    rc = 1
    try:
        status, headers, body = get(url, {"X-API-Key": key}, timeout)
        loc = headers.get("location", "")
        visit.update(status=status, location=loc, response=params(loc) if loc else {})
        if not (300 <= status < 400 and loc):
            visit["body"] = body[:500]
        else:
            host = urlparse(loc).hostname or ""
            if host in ("127.0.0.1", "localhost", "::1"):
                # The client's callback: it may wait for its token exchange before answering.
                try:
                    cstatus, _, cbody = get(loc, {}, timeout)
                    visit.update(callback_status=cstatus, callback_body=cbody[:300])
                    rc = 0 if cstatus < 400 and "code" in visit["response"] else 1
                except Exception as e:  # the client may close its listener at once
                    visit["callback_error"] = f"{type(e).__name__}: {e}"
            else:
                visit["callback_error"] = f"not a loopback redirect: {loc[:200]}"
    except Exception as e:
        visit["error"] = f"{type(e).__name__}: {e}"
    if log_file:
        with open(log_file, "a", encoding="utf-8") as f:
            f.write(json.dumps(visit) + "\n")
    return rc


def check(args: argparse.Namespace) -> int:
    lines: list[str] = []

    def record(name: str, ok: bool, reason: str = "") -> None:
        lines.append(f"PASS {args.prefix}/{name}" if ok else f"FAIL {args.prefix}/{name}: {reason}")

    visits = []
    try:
        with open(args.check, encoding="utf-8") as f:
            visits = [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        pass
    if args.visits is not None:
        record("browser/visits", len(visits) == args.visits,
               f"the client sent the browser {len(visits)} time(s), expected {args.visits}")
    codes: list[str] = []
    for i, v in enumerate(visits, 1):
        if i < args.first:
            continue
        one = lambda k, d: (d.get(k) or [None])[0]  # noqa: E731
        q, p = v.get("request", {}), v.get("response", {})
        n = f"browser/sign-in-{i}"
        record(f"{n}/request",
               one("code_challenge_method", q) == "S256" and bool(one("code_challenge", q)) and bool(one("state", q))
               and one("response_type", q) == "code"
               and (args.resource is None or one("resource", q) == args.resource),
               f"authorization request lacks PKCE S256, state or resource={args.resource!r}: "
               f"{ {k: q[k] for k in q if k != 'code_challenge'} }")
        shown = {k: ("<code>" if k == "code" else val) for k, val in p.items()}
        record(f"{n}/303-with-code",
               v.get("status") == 303 and len(p.get("code", [])) == 1 and bool(p["code"][0]) and "error" not in p
               and (args.redirect_prefix is None or v.get("location", "").startswith(args.redirect_prefix)),
               f"GET /authorize with X-API-Key: {v.get('status')} {v.get('error', '')}, Location params {shown},"
               f" body {v.get('body', '')[:200]!r}")
        record(f"{n}/iss", p.get("iss") == [args.issuer], f"iss {p.get('iss')}, expected [{args.issuer!r}]")
        record(f"{n}/state", p.get("state") == q.get("state") and bool(q.get("state")),
               f"state {p.get('state')} came back, {q.get('state')} was sent")
        record(f"{n}/callback",
               isinstance(v.get("callback_status"), int) and v["callback_status"] < 400,
               f"the client's callback: status {v.get('callback_status')}, {v.get('callback_error', '')}"
               f" {v.get('callback_body', '')[:200]!r}")
        codes += [c for c in p.get("code", []) if c]
    if args.secrets_out:
        with open(args.secrets_out, "a", encoding="utf-8") as f:
            f.writelines(c + "\n" for c in codes)
    results = os.environ.get("E2E_RESULTS")
    for line in lines:
        print(line, flush=True)
    if results:
        with open(results, "a", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in lines)
    return 1 if any(line.startswith("FAIL") for line in lines) else 0


def main() -> int:
    if len(sys.argv) == 2 and not sys.argv[1].startswith("--"):
        return browse(sys.argv[1])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", required=True, help="the visit log to judge")
    ap.add_argument("--issuer", required=True)
    ap.add_argument("--prefix", required=True, help="check name prefix, e.g. mcp_remote")
    ap.add_argument("--visits", type=int, default=None, help="expected number of visits")
    ap.add_argument("--first", type=int, default=1, help="judge visits from this one (1-based) on")
    ap.add_argument("--redirect-prefix", default=None, help="the Location must start with this")
    ap.add_argument("--resource", default=None, help="the resource parameter the request must carry")
    ap.add_argument("--secrets-out", default=None, help="append every code seen to this file")
    return check(ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
