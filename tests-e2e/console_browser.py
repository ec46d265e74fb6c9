#!/usr/bin/env python3
"""mcpgate's operator console (/admin) in a real browser: Debian's Chromium, headless, driven by
Playwright (executable_path = the system chromium). Everything is on loopback.

The gateway runs with public_url = its loopback address, [oauth] (the console's browser session)
and [admin] enabled = true (see tests-e2e/console.sh). The admin key comes from
$CONSOLE_ADMIN_KEY (not argv). This script:

1. opens /admin: redirected to the sign-in page, whose answer carries the strict
   Content-Security-Policy (no script; styles by hash) and refuses framing;
2. signs in with the admin key: the overview, with its counts read;
3. creates a key on the keys page: the new key is shown once (the screenshot masks it), listed;
4. uses that key on /mcp (initialize + tools/list): it works;
5. revokes it with the row's Revoke button: "Revoked.", its state revoked; /mcp now 401;
6. finds the refusal on the audit page (outcome deny, event auth, reason revoked);
7. the overview's counts and chart changed (more requests, more refused);
8. the sessions, clients and users pages render;
9. a form POST without the CSRF token, with the browser's cookies, is refused (403);
10. signs out: /admin sends the browser to the sign-in page again;
and throughout: no console error in the browser (a CSP violation would be one). Screenshots
of each page go to --artifacts. Every key secret used is written to --secrets-out.

Each check prints `PASS name` or `FAIL name: reason` (and appends it to $E2E_RESULTS).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import traceback
import urllib.error
import urllib.request
from typing import Any, Callable

from playwright.sync_api import Page, sync_playwright

P = "console"
SECRETS: list[str] = []
FAILED = False
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]


def record(name: str, ok: bool, reason: str = "") -> bool:
    global FAILED
    name = f"{P}/{name}"
    line = f"PASS {name}" if ok else f"FAIL {name}: {reason}"
    FAILED |= not ok
    print(line, flush=True)
    results = os.environ.get("E2E_RESULTS")
    if results:
        with open(results, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    return ok


def check(name: str, cond: bool, reason: str) -> bool:
    return record(name, True) if cond else record(name, False, reason)


def guarded(name: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as e:  # one failed check; the rest still run
        traceback.print_exc(file=sys.stderr)
        record(name, False, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        return None


def keep(key: str) -> None:
    # The secret part of mcp_<id>_<secret>: the id is no secret and is logged on purpose.
    SECRETS.append(key.rsplit("_", 1)[-1])


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in (e.headers or {}).items()}, e.read().decode("utf-8", "replace")


def mcp_status(base: str, key: str) -> int:
    """initialize + tools/list with `key`: the status of the last step that answered."""
    h = {"content-type": "application/json", "accept": "application/json, text/event-stream", "x-api-key": key}
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "console-e2e", "version": "0"}},
    }
    status, headers, _ = http("POST", f"{base}/mcp", json.dumps(init).encode(), h)
    if status != 200:
        return status
    h2 = dict(h, **{"mcp-session-id": headers.get("mcp-session-id", ""), "mcp-protocol-version": "2025-06-18"})
    http("POST", f"{base}/mcp", json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode(), h2)
    status, _, _ = http("POST", f"{base}/mcp", json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).encode(), h2)
    return status


def until(cond: Callable[[], bool], seconds: float = 3.0) -> bool:
    end = time.monotonic() + seconds
    while True:
        if cond():
            return True
        if time.monotonic() > end:
            return False
        time.sleep(0.05)


def number(page: Page, selector: str) -> int:
    return int(re.sub(r"\D", "", page.locator(selector).inner_text()) or "0")


class Console:
    def __init__(self, args: argparse.Namespace, page: Page, key: str) -> None:
        self.args = args
        self.base = args.base.rstrip("/")
        self.page = page
        self.key = key
        self.errors: list[str] = []
        self.new_key = ""
        self.new_id = ""
        self.before = (0, 0)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def shot(self, name: str, mask: list[str] | None = None) -> None:
        path = os.path.join(self.args.artifacts, f"{name}.png")
        self.page.screenshot(path=path, full_page=True, mask=[self.page.locator(m) for m in (mask or [])])

    def sign_in(self) -> None:
        r = self.page.goto(f"{self.base}/admin")
        check("redirected-to-sign-in", self.page.url.endswith("/admin/login"), f"landed on {self.page.url}")
        h = r.all_headers() if r else {}
        csp = h.get("content-security-policy", "")
        check(
            "strict-csp",
            "default-src 'none'" in csp and "script-src" not in csp and "style-src 'sha256-" in csp and "frame-ancestors 'none'" in csp,
            f"CSP {csp!r}",
        )
        check("no-framing", h.get("x-frame-options") == "DENY", f"x-frame-options {h.get('x-frame-options')!r}")
        self.shot("login")
        self.page.fill("#api_key", self.key)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(f"{self.base}/admin")
        check("signed-in", self.page.locator("h1").inner_text() == "Overview", self.page.content()[:300])
        self.before = (number(self.page, "#requests"), number(self.page, "#refused"))
        self.shot("overview-before")

    def create_key(self) -> None:
        self.page.goto(f"{self.base}/admin/keys")
        self.page.fill("#name", "console e2e <b>")
        self.page.fill("#user_id", "carol")
        self.page.select_option("#role", "user")
        self.page.fill("#permissions", "read")
        self.page.click("form[action='/admin/keys'] button[type=submit]")
        self.page.wait_for_selector("#new-key")
        self.new_key = self.page.locator("#new-key").inner_text().strip()
        self.new_id = self.page.locator("#new-key-id").inner_text().strip()
        keep(self.new_key)
        check("key-created", self.new_key.startswith("mcp_") and self.new_id in self.new_key, f"key {self.new_id!r}")
        self.shot("key-created", mask=["#new-key"])
        self.page.goto(f"{self.base}/admin/keys")
        row = self.page.locator(f"tr[data-key='{self.new_id}']")
        check("key-listed", row.count() == 1 and "active" in row.inner_text(), f"rows {row.count()}")
        check("name-escaped", self.page.locator("td b").count() == 0, "markup in a key's name was rendered")
        check("secret-not-listed", self.new_key not in self.page.content(), "the new key's secret is on the keys page")
        self.shot("keys")

    def use_and_revoke(self) -> None:
        ok = until(lambda: mcp_status(self.base, self.new_key) == 200)
        check("key-works", ok, "the new key did not work on /mcp within 3 s")
        self.page.goto(f"{self.base}/admin/keys")
        self.page.click(f"tr[data-key='{self.new_id}'] button")
        self.page.wait_for_selector(".done")
        row = self.page.locator(f"tr[data-key='{self.new_id}']")
        check("revoked", "revoked" in row.inner_text(), row.inner_text())
        refused = until(lambda: mcp_status(self.base, self.new_key) == 401)
        check("revoked-key-refused", refused, "the revoked key still works on /mcp")

    def table_text(self, path: str) -> str:
        self.page.goto(f"{self.base}{path}")
        return self.page.locator("table").inner_text() if self.page.locator("table").count() else ""

    def audit(self) -> None:
        # Refusals reach the audit store through the writer's queue, so the
        # record can land a moment after the 401: reload until it is there.
        path = "/admin/audit?outcome=deny&event=auth"
        seen = until(lambda: "revoked" in self.table_text(path), seconds=10.0)
        check("refusal-in-audit", seen, self.table_text(path)[:400])
        self.shot("audit")
        text = self.table_text("/admin/audit?event=admin")
        check("admin-actions-audited", "admin/keys.create" in text and "admin/keys.revoke" in text, text[:400])

    def overview_changed(self) -> None:
        self.page.goto(f"{self.base}/admin")
        after = (number(self.page, "#requests"), number(self.page, "#refused"))
        check("counts-changed", after[0] > self.before[0] and after[1] > self.before[1], f"before {self.before}, after {after}")
        check("chart-drawn", self.page.locator("svg.chart rect").count() >= 1, "no bars in the chart")
        self.shot("overview")

    def other_pages(self) -> None:
        for path, name in [("/admin/sessions", "sessions"), ("/admin/clients", "clients"), ("/admin/users", "users")]:
            r = self.page.goto(f"{self.base}{path}")
            check(f"page-{name}", r is not None and r.status == 200 and self.page.locator("h1").count() == 1, f"status {r.status if r else None}")
            self.shot(name)

    def csrf(self) -> None:
        cookies = "; ".join(f"{c['name']}={c['value']}" for c in self.page.context.cookies())
        body = b"name=forged&user_id=mallory&role=admin"
        status, _, _ = http(
            "POST",
            f"{self.base}/admin/keys",
            body,
            {"content-type": "application/x-www-form-urlencoded", "cookie": cookies, "origin": self.base},
        )
        check("no-csrf-refused", status == 403, f"status {status}")
        status, _, _ = http(
            "POST",
            f"{self.base}/admin/keys",
            body + b"&csrf=" + next((c["value"] for c in self.page.context.cookies() if c["name"] == "mcpgate_admin_csrf"), "").encode(),
            {"content-type": "application/x-www-form-urlencoded", "cookie": cookies, "origin": "http://localhost:1"},
        )
        check("cross-site-refused", status == 403, f"status {status}")

    def sign_out(self) -> None:
        self.page.goto(f"{self.base}/admin")
        self.page.click("header button")
        self.page.wait_for_url(f"{self.base}/admin/login")
        self.page.goto(f"{self.base}/admin")
        check("signed-out", self.page.url.endswith("/admin/login"), self.page.url)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--chromium", required=True)
    ap.add_argument("--artifacts", required=True)
    ap.add_argument("--secrets-out")
    ap.add_argument("--timeout", type=float, default=15)
    args = ap.parse_args()
    key = os.environ.get("CONSOLE_ADMIN_KEY", "")
    if not key:
        record("setup", False, "CONSOLE_ADMIN_KEY is not set")
        return 1
    keep(key)
    os.makedirs(args.artifacts, exist_ok=True)
    try:
        with sync_playwright() as pw:
            chromium_args = list(CHROMIUM_ARGS)
            if os.geteuid() == 0:
                chromium_args.insert(0, "--no-sandbox")
            browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=chromium_args, timeout=args.timeout * 2000)
            try:
                ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
                ctx.set_default_timeout(args.timeout * 1000)
                c = Console(args, ctx.new_page(), key)
                if guarded("sign-in", c.sign_in) is None and FAILED:
                    return 1
                if guarded("create-key", c.create_key) is None and not c.new_key:
                    return 1
                guarded("use-and-revoke", c.use_and_revoke)
                guarded("audit", c.audit)
                guarded("overview", c.overview_changed)
                guarded("pages", c.other_pages)
                guarded("csrf", c.csrf)
                guarded("sign-out", c.sign_out)
                check("no-console-errors", not c.errors, "; ".join(c.errors)[:500])
            finally:
                browser.close()
    finally:
        if args.secrets_out:
            with open(args.secrets_out, "a", encoding="utf-8") as f:
                f.write("\n".join(SECRETS) + "\n")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
