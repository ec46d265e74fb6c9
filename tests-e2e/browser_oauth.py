#!/usr/bin/env python3
"""mcpgate's sign-in/consent page in a real browser: Debian's Chromium, headless, driven by
Playwright (the Python package, with `executable_path` = the system chromium; no browser of
its own is downloaded). Everything is on loopback.

The gateway runs with `public_url` = its loopback address and an `[oauth]` section (see
tests-e2e/browser_oauth.sh). This script runs a tiny HTTP server of its own on 127.0.0.1 (the
client's redirect URI `/callback`, plus the "other site" pages, reached as `localhost` so that
they are another origin and another site than the gateway's `127.0.0.1`), registers a public
client (DCR), and then:

1. Allow: opens an authorization URL (PKCE S256, state, resource = the MCP URL, scope
   "read write"); the consent page names the client (its markup-laden self-chosen name shown
   as text), the redirect address, the scopes and the "unverified" warning; its headers refuse
   framing; the CSRF cookie is HttpOnly and SameSite=Lax. A screenshot is kept. The key is typed
   into the password field and Allow clicked: the browser lands on the callback with code,
   state and iss. The code is exchanged at /token with the verifier (httpx2); the access token
   works on /mcp (whoami: the key's user, auth_method oauth); the code cannot be used twice.
2. Framing: a page on the other site iframes the consent page: Chromium refuses to render it
   (console "frame-ancestors", the frame's document is not the consent page), while a control
   frame from that site renders.
3. Cross-site form: a page on the other site auto-submits a POST to /authorize with every
   field right, a valid key and decision=allow, but a forged CSRF token (the browser does hold
   a real CSRF cookie from an earlier consent page): the 403 page, no redirect, no code.
   Also: the genuine page, its CSRF cookie deleted before Allow: 403, no code.
4. Deny: the callback gets error=access_denied with state and iss, no code.
5. A wrong key: the callback gets error=access_denied with state and iss, no code.

Each check prints `PASS name` or `FAIL name: reason` (and appends the line to $E2E_RESULTS
when set); the exit status is 1 if any check failed. The key comes from $BROWSER_E2E_KEY (not
argv). With --secrets-out FILE every key secret, code and token used is written there (one a
line) so the caller can search the gateway's log for them.

    BROWSER_E2E_KEY=mcp_… browser_oauth.py --url http://127.0.0.1:PORT/mcp --expect-user ana \
        --chromium /usr/bin/chromium --artifacts DIR [--timeout 15] [--secrets-out FILE]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import os
import secrets
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode, urlparse

import httpx2
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

P = "browser"
RESULTS: list[tuple[str, bool, str]] = []
SECRETS: list[str] = []
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "mcpgate-e2e-browser", "version": "0"},
    },
}
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
# A self-chosen client name with markup in it: the page must show it as text.
CLIENT_NAME = 'Browser E2E <b id="injected">client</b> & "co"'
# Referrer policies that keep the consent page's address from other sites.
REFERRER_POLICIES = ("no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin")
# Chromium as root needs --no-sandbox; the rest keep it off the (closed) network: no
# background fetches, no QUIC, and no name resolution but for localhost.
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
    name = f"{P}/{name}"
    RESULTS.append((name, ok, reason))
    line = f"PASS {name}" if ok else f"FAIL {name}: {reason}"
    print(line, flush=True)
    results_file = os.environ.get("E2E_RESULTS")
    if results_file:
        with open(results_file, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    return ok


def check(name: str, cond: bool, reason: str) -> bool:
    return record(name, True) if cond else record(name, False, reason)


def guarded(name: str, fn: Callable[[], Any]) -> Any:
    """Runs one scenario; an exception in it is one failed check, and the others still run."""
    try:
        return fn()
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        record(name, False, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        return None


def keep(secret: str | None) -> None:
    if secret:
        SECRETS.append(secret)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query, keep_blank_values=True).items()}


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def redacted(q: dict[str, str]) -> dict[str, str]:
    return {k: ("<code>" if k == "code" else v) for k, v in q.items()}


# ---- the local server: redirect URI and the other site's pages --------------------------------
class Hooks(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), HookHandler)
        self.lock = threading.Lock()
        self.hits: list[dict[str, Any]] = []
        self.pages: dict[str, str] = {}
        self.port = self.server_address[1]

    def callbacks(self) -> list[dict[str, str]]:
        with self.lock:
            return [h["query"] for h in self.hits if h["path"] == "/callback"]


class HookHandler(BaseHTTPRequestHandler):
    server: Hooks

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        u = urlparse(self.path)
        with self.server.lock:
            self.server.hits.append({"path": u.path, "query": query_of(self.path), "host": self.headers.get("host", "")})
            page = self.server.pages.get(u.path)
        if u.path == "/callback":
            page = "<!doctype html><title>callback</title><h1 id=done>callback received</h1>"
        if page is None:
            self.send_response(404)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        body = page.encode()
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("cache-control", "no-store")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # the callback's query holds codes
        pass


# ---- the flow ---------------------------------------------------------------------------------
class Flow:
    def __init__(self, args: argparse.Namespace, key: str, hooks: Hooks, browser: Browser) -> None:
        self.args = args
        self.key = key
        self.hooks = hooks
        self.browser = browser
        self.url = args.url.rstrip("/")
        self.base = self.url[: -len("/mcp")] if self.url.endswith("/mcp") else self.url
        self.issuer = self.base  # public_url = the gateway's own address; the issuer defaults to it
        self.redirect_uri = f"http://127.0.0.1:{hooks.port}/callback"
        self.other_site = f"http://localhost:{hooks.port}"  # another origin and another site
        self.http = httpx2.Client(timeout=args.timeout, follow_redirects=False)
        self.client_id = ""
        self.artifacts = args.artifacts
        os.makedirs(self.artifacts, exist_ok=True)

    def new_context(self) -> BrowserContext:
        ctx = self.browser.new_context(viewport={"width": 900, "height": 1000}, locale="en-US")
        ctx.set_default_timeout(self.args.timeout * 1000)
        ctx.set_default_navigation_timeout(self.args.timeout * 1000)
        return ctx

    def authorize_url(self, **over: str) -> tuple[str, str, str]:
        """(url, state, verifier) for a fresh authorization request."""
        verifier, challenge = pkce()
        state = "st-" + secrets.token_urlsafe(12)
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": state,
            "scope": "read write",
            "resource": self.url,
        }
        params.update(over)
        return f"{self.base}/authorize?{urlencode(params)}", state, verifier

    def submit(self, page: Page, button: str) -> tuple[int, str | None, str | None]:
        """Clicks a consent button: (status of the form's POST /authorize, its Location, the
        Origin header the browser sent with it)."""
        with page.expect_response(
            lambda r: r.request.method == "POST" and r.url.startswith(f"{self.base}/authorize")
        ) as info:
            page.click(f"button[value={button}]")
        resp = info.value
        return resp.status, resp.headers.get("location"), resp.request.all_headers().get("origin")

    def on_callback(self, page: Page, name: str, button: str) -> dict[str, str] | None:
        """Clicks `button` and follows the browser to the callback; None (after one failed check
        `name`, with the exchange) if the answer was no redirect to it."""
        status, location, origin = self.submit(page, button)
        if status != 303 or not (location or "").startswith(self.redirect_uri + "?"):
            page.wait_for_load_state("load")
            text = " ".join(page.inner_text("body").split()) if page.locator("body").count() else ""
            record(
                name,
                False,
                f"{button} on the consent page: POST /authorize (Origin {origin!r}) answered {status},"
                f" Location {location!r}, page {text[:240]!r}",
            )
            return None
        page.wait_for_url(lambda u: u.startswith(self.redirect_uri + "?"))
        page.wait_for_load_state("load")
        return query_of(page.url)

    # -- DCR -----------------------------------------------------------------------------------
    def register(self) -> bool:
        r = self.http.post(
            f"{self.base}/register",
            json={
                "redirect_uris": [self.redirect_uri],
                "client_name": CLIENT_NAME,
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
            },
        )
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        self.client_id = body.get("client_id", "") if isinstance(body, dict) else ""
        return check(
            "register",
            r.status_code == 201 and bool(self.client_id) and body.get("client_name") == CLIENT_NAME,
            f"POST /register: {r.status_code} {r.text[:300]!r}",
        )

    # -- 1. consent, Allow, code exchange, whoami ---------------------------------------------
    def allow(self) -> None:
        ctx = self.new_context()
        try:
            page = ctx.new_page()
            url, state, verifier = self.authorize_url()
            resp = page.goto(url)
            status = resp.status if resp else 0
            headers = resp.all_headers() if resp else {}
            check(
                "consent/served",
                status == 200 and page.title().startswith("Allow access"),
                f"GET /authorize in the browser: {status}, title {page.title()!r}",
            )
            csp = headers.get("content-security-policy", "")
            check(
                "consent/headers",
                "frame-ancestors 'none'" in csp
                and headers.get("x-frame-options", "").upper() == "DENY"
                and "no-store" in headers.get("cache-control", "")
                and headers.get("referrer-policy") in REFERRER_POLICIES,
                f"CSP {csp!r}, X-Frame-Options {headers.get('x-frame-options')!r},"
                f" Cache-Control {headers.get('cache-control')!r}, Referrer-Policy {headers.get('referrer-policy')!r}",
            )
            main_text = page.inner_text("main")
            check(
                "consent/client-name",
                CLIENT_NAME in main_text and page.title().startswith("Allow access"),
                f"the client's name {CLIENT_NAME!r} is not shown as text; page text {main_text[:400]!r}",
            )
            check(
                "consent/client-name-escaped",
                page.locator("#injected").count() == 0,
                "the markup in the client's self-chosen name became an element of the page",
            )
            check(
                "consent/client-id",
                self.client_id in main_text,
                f"the client_id {self.client_id!r} is not on the page",
            )
            codes = [t.strip() for t in page.locator(".box code").all_inner_texts()]
            host = f"127.0.0.1:{self.hooks.port}"
            check(
                "consent/redirect-host",
                self.redirect_uri in codes and host in main_text,
                f"redirect {self.redirect_uri!r} (host {host}) not named; <code>s on the page: {codes}",
            )
            scopes = sorted(t.strip() for t in page.locator(".box ul li").all_inner_texts())
            check("consent/scopes", scopes == ["read", "write"], f"listed scopes {scopes}, asked for read write")
            warn = page.locator(".warn").all_inner_texts()
            check(
                "consent/unverified-warning",
                any("unverified" in w.lower() for w in warn),
                f"no 'unverified' warning for a self-registered client; .warn: {warn}",
            )
            pw = page.locator("input#api_key")
            check(
                "consent/password-field",
                pw.count() == 1
                and pw.get_attribute("type") == "password"
                and pw.get_attribute("autocomplete") == "off"
                and page.locator("button[value=allow]").count() == 1
                and page.locator("button[value=deny]").count() == 1,
                f"key field: {pw.count()} found, type {pw.get_attribute('type') if pw.count() else None!r};"
                f" allow/deny buttons {page.locator('button[value=allow]').count()}/{page.locator('button[value=deny]').count()}",
            )
            csrf = [c for c in ctx.cookies(self.base) if c["name"] in ("mcpgate_csrf", "__Host-mcpgate_csrf")]
            check(
                "consent/csrf-cookie",
                len(csrf) == 1 and csrf[0]["httpOnly"] and csrf[0]["sameSite"] == "Lax" and csrf[0]["path"] == "/",
                f"CSRF cookie as the browser holds it: {[{k: c[k] for k in ('name', 'httpOnly', 'sameSite', 'path')} for c in csrf]}",
            )
            shot = os.path.join(self.artifacts, "consent.png")
            page.screenshot(path=shot, full_page=True)
            check("consent/screenshot", os.path.getsize(shot) > 2000, f"screenshot {shot} is {os.path.getsize(shot)} bytes")

            pw.fill(self.key)
            q = self.on_callback(page, "allow/callback", "allow")
            if q is None:
                return
            keep(q.get("code"))
            ok = check(
                "allow/callback",
                bool(q.get("code")) and "error" not in q and q.get("state") == state and q.get("iss") == self.issuer,
                f"callback query {redacted(q)} (want code, state {state!r}, iss {self.issuer!r})",
            )
            check(
                "allow/callback-page",
                page.locator("#done").count() == 1,
                f"the browser is not showing the callback page: {page.url}",
            )
            if not ok:
                return
            self.exchange(q["code"], verifier)
            self.signed_in_again(ctx, page)
        finally:
            ctx.close()

    # -- 1b. the same browser again: its web session signs it in; the consent page is shown
    #        again (a loopback redirect never skips it, RFC 8252 §8.6) without asking for a key --
    def signed_in_again(self, ctx: BrowserContext, page: Page) -> None:
        sess = [c for c in ctx.cookies(self.base) if c["name"] in ("mcpgate_session", "__Host-mcpgate_session")]
        check(
            "session/cookie",
            len(sess) == 1 and sess[0]["httpOnly"] and sess[0]["sameSite"] == "Lax" and sess[0]["path"] == "/",
            f"session cookie as the browser holds it: {[{k: c[k] for k in ('name', 'httpOnly', 'sameSite', 'path')} for c in sess]}",
        )
        url, state, _ = self.authorize_url()
        resp = page.goto(url)
        text = " ".join(page.inner_text("main").split()) if page.locator("main").count() else ""
        key_required = page.locator("input[name=api_key][required]").count()
        check(
            "session/consent-again",
            resp is not None
            and resp.status == 200
            and page.title().startswith("Allow access")
            and "signed in as" in text
            and key_required == 0,
            f"a second authorization in the signed-in browser (loopback redirect): {resp.status if resp else None},"
            f" title {page.title()!r}, required key fields {key_required}, text {text[:240]!r}",
        )
        q = self.on_callback(page, "session/allow-signed-in", "allow")
        if q is None:
            return
        keep(q.get("code"))
        check(
            "session/allow-signed-in",
            bool(q.get("code")) and "error" not in q and q.get("state") == state and q.get("iss") == self.issuer,
            f"Allow without typing a key, signed in by the session: callback query {redacted(q)}",
        )
        resp = page.goto(f"{self.base}/auth/me")
        body = resp.json() if resp and resp.status == 200 else {}
        check(
            "session/me",
            isinstance(body, dict) and body.get("auth_method") == "session" and bool(body.get("user_id")),
            f"GET /auth/me in the signed-in browser: {resp.status if resp else None} {str(body)[:200]}",
        )

    def token(self, code: str, verifier: str) -> httpx2.Response:
        return self.http.post(
            f"{self.base}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": verifier,
                "client_id": self.client_id,
                "resource": self.url,
            },
        )

    def exchange(self, code: str, verifier: str) -> None:
        r = self.token(code, verifier)
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        access = body.get("access_token", "") if isinstance(body, dict) else ""
        keep(access)
        keep(body.get("refresh_token") if isinstance(body, dict) else None)
        ok = check(
            "token/exchange",
            r.status_code == 200
            and bool(access)
            and str(body.get("token_type", "")).lower() == "bearer"
            and sorted(str(body.get("scope", "")).split()) == ["read", "write"]
            and r.headers.get("cache-control") == "no-store",
            f"POST /token: {r.status_code}, token_type {body.get('token_type')!r}, scope {body.get('scope')!r},"
            f" error {body.get('error')!r}, cache-control {r.headers.get('cache-control')!r}",
        )
        if ok:
            guarded("mcp/whoami", lambda: self.whoami(access))
        r2 = self.token(code, verifier)
        err = r2.json().get("error") if r2.headers.get("content-type", "").startswith("application/json") else None
        keep(r2.json().get("access_token") if r2.status_code == 200 else None)
        check(
            "token/code-single-use",
            r2.status_code == 400 and err == "invalid_grant",
            f"the same code a second time: {r2.status_code} error {err!r}",
        )

    def whoami(self, access: str) -> None:
        hdr = {**MCP_HEADERS, "authorization": f"Bearer {access}"}
        r = self.http.post(self.url, json=INIT, headers=hdr)
        if r.status_code != 200:
            record("mcp/whoami", False, f"initialize with the access token: {r.status_code} {r.text[:200]!r}")
            return
        init = rpc_message(r, 1)
        if r.headers.get("mcp-session-id"):
            hdr["mcp-session-id"] = r.headers["mcp-session-id"]
        version = ((init or {}).get("result") or {}).get("protocolVersion")
        if version:
            hdr["mcp-protocol-version"] = version
        self.http.post(self.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=hdr)
        r = self.http.post(
            self.url,
            json={"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}},
            headers=hdr,
        )
        msg = rpc_message(r, 2) or {}
        who = whoami_of(msg.get("result") or {})
        check(
            "mcp/whoami",
            r.status_code == 200 and who.get("user_id") == self.args.expect_user and who.get("auth_method") == "oauth",
            f"tools/call whoami: {r.status_code}, want user_id {self.args.expect_user!r} and auth_method 'oauth',"
            f" got {who or msg or r.text[:200]!r}",
        )

    # -- 2. framing --------------------------------------------------------------------------
    def framing(self) -> None:
        url, state, _ = self.authorize_url()
        self.hooks.pages["/control"] = "<!doctype html><title>control</title><p id=control>a frame that may be shown</p>"
        self.hooks.pages["/frame"] = (
            "<!doctype html><title>framing</title><h1>another site</h1>"
            f'<iframe name="consent" src="{html.escape(url)}" width="800" height="500"></iframe>'
            f'<iframe name="control" src="{self.other_site}/control" width="300" height="100"></iframe>'
        )
        ctx = self.new_context()
        try:
            page = ctx.new_page()
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text))
            served: list[int] = []
            page.on(
                "response",
                lambda r: served.append(r.status) if r.url.startswith(f"{self.base}/authorize") else None,
            )
            page.goto(f"{self.other_site}/frame")
            page.wait_for_load_state("load")
            deadline = time.monotonic() + 5
            while not any("frame-ancestors" in c for c in console) and time.monotonic() < deadline:
                page.wait_for_timeout(100)
            page.screenshot(path=os.path.join(self.artifacts, "framing.png"))
            consent = page.frame(name="consent")
            control = page.frame(name="control")
            consent_url = consent.url if consent else None
            rendered = None
            if consent is not None:
                try:
                    rendered = consent.evaluate(
                        "() => !!document.getElementById('api_key') || (document.body ? document.body.innerText : '').includes('Sign in to allow')"
                    )
                except Exception as e:  # an error document may not take scripts at all
                    rendered = f"not evaluable ({type(e).__name__})"
            control_ok = False
            if control is not None:
                try:
                    control_ok = control.locator("#control").count() == 1
                except Exception:
                    control_ok = False
            blocked = [c for c in console if "frame-ancestors" in c]
            check(
                "framing/refused",
                consent is not None
                and rendered is not True
                and (bool(blocked) or (consent_url or "").startswith("chrome-error:"))
                and served[:1] == [200],
                f"consent frame url {consent_url!r}, consent page rendered in it {rendered!r},"
                f" console {console[:3]}, /authorize responses {served}",
            )
            check(
                "framing/control-frame-renders",
                control_ok,
                "the control frame (a plain page of the other site) did not render either: the framing check proves nothing",
            )
            print(f"  framed consent page: frame url {consent_url!r}; console: {blocked[:1]}", flush=True)
            check(
                "framing/no-callback",
                not any(q.get("state") == state for q in self.hooks.callbacks()),
                "the framed sign-in reached the callback",
            )
        finally:
            ctx.close()

    # -- 3. cross-site form post, and a missing CSRF cookie ------------------------------------
    def cross_site_post(self) -> None:
        ctx = self.new_context()
        try:
            page = ctx.new_page()
            # The browser holds a real CSRF cookie (it opened a consent page); the attacker
            # cannot read its value, so it sends a token of its own.
            warm, _, _ = self.authorize_url()
            page.goto(warm)
            held = [c["name"] for c in ctx.cookies(self.base) if "csrf" in c["name"]]
            url, state, _ = self.authorize_url()
            fields = {k: v for k, v in query_of(url).items()}
            fields.update({"csrf": "forged-" + secrets.token_urlsafe(16), "api_key": self.key, "decision": "allow"})
            inputs = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in fields.items()
            )
            self.hooks.pages["/csrf"] = (
                "<!doctype html><title>a prize for you</title>"
                f'<form method="post" action="{html.escape(self.base)}/authorize">{inputs}</form>'
                "<script>document.forms[0].submit()</script>"
            )
            with page.expect_response(
                lambda r: r.request.method == "POST" and r.url.startswith(f"{self.base}/authorize")
            ) as info:
                page.goto(f"{self.other_site}/csrf")
            resp = info.value
            page.wait_for_load_state("load")
            origin = resp.request.all_headers().get("origin")
            text = page.inner_text("body")
            page.screenshot(path=os.path.join(self.artifacts, "cross-site-post.png"))
            check(
                "cross-site-post/403-page",
                resp.status == 403
                and "location" not in resp.headers
                and "cannot go on" in text
                and page.url.startswith(f"{self.base}/authorize"),
                f"POST /authorize from {origin!r} (CSRF cookie held: {held}): {resp.status},"
                f" Location {resp.headers.get('location')!r}, now at {page.url!r}, page {text[:200]!r}",
            )
            print(f"  cross-site POST (Origin {origin}): {resp.status}, {' '.join(text.split())[:160]!r}", flush=True)
            time.sleep(0.3)
            check(
                "cross-site-post/no-code",
                not any(q.get("state") == state for q in self.hooks.callbacks()),
                "the cross-site POST reached the callback",
            )
        finally:
            ctx.close()

        # The genuine page, same origin, but the browser lost its CSRF cookie before Allow.
        ctx = self.new_context()
        try:
            page = ctx.new_page()
            url, state, _ = self.authorize_url()
            page.goto(url)
            ctx.clear_cookies()
            page.fill("input#api_key", self.key)
            status, location, origin = self.submit(page, "allow")
            page.wait_for_load_state("load")
            text = " ".join(page.inner_text("body").split())
            check(
                "no-csrf-cookie/403-page",
                status == 403 and location is None and "security token" in text,
                f"Allow without the CSRF cookie (Origin {origin!r}): {status}, Location {location!r}, page {text[:240]!r}",
            )
            time.sleep(0.3)
            check(
                "no-csrf-cookie/no-code",
                not any(q.get("state") == state for q in self.hooks.callbacks()),
                "Allow without the CSRF cookie reached the callback",
            )
        finally:
            ctx.close()

    # -- 4./5. Deny, and a wrong key ---------------------------------------------------------
    def refused(self, name: str, key: str | None, button: str) -> None:
        ctx = self.new_context()
        try:
            page = ctx.new_page()
            url, state, _ = self.authorize_url()
            page.goto(url)
            if key is not None:
                page.fill("input#api_key", key)
            q = self.on_callback(page, f"{name}/access_denied", button)
            if q is None:
                return
            keep(q.get("code"))
            check(
                f"{name}/access_denied",
                q.get("error") == "access_denied" and "code" not in q and q.get("state") == state and q.get("iss") == self.issuer,
                f"callback query {redacted(q)} (want error=access_denied, state {state!r}, iss {self.issuer!r}, no code)",
            )
        finally:
            ctx.close()


def rpc_message(r: httpx2.Response, want_id: int) -> dict[str, Any] | None:
    """The JSON-RPC message with id `want_id` from a JSON or an event-stream answer."""
    ctype = r.headers.get("content-type", "")
    candidates: list[Any] = []
    if ctype.startswith("application/json"):
        try:
            body = r.json()
        except ValueError:
            return None
        candidates = body if isinstance(body, list) else [body]
    elif ctype.startswith("text/event-stream"):
        for line in r.text.splitlines():
            if line.startswith("data:"):
                try:
                    candidates.append(json.loads(line[5:].strip()))
                except ValueError:
                    pass
    for m in candidates:
        if isinstance(m, dict) and m.get("id") == want_id:
            return m
    return None


def whoami_of(result: dict[str, Any]) -> dict[str, Any]:
    who = result.get("structuredContent")
    if isinstance(who, dict) and who:
        return who
    for block in result.get("content") or []:
        if isinstance(block, dict) and block.get("type") == "text":
            try:
                v = json.loads(block.get("text", ""))
                if isinstance(v, dict):
                    return v
            except ValueError:
                pass
    return {}


def run(args: argparse.Namespace) -> None:
    key = os.environ.get("BROWSER_E2E_KEY", "")
    if not key:
        record("setup", False, "BROWSER_E2E_KEY is not set")
        return
    keep(key.rsplit("_", 1)[-1])
    wrong = key.rsplit("_", 1)[0] + "_" + secrets.token_urlsafe(32).replace("_", "-")
    keep(wrong.rsplit("_", 1)[-1])

    hooks = Hooks()
    threading.Thread(target=hooks.serve_forever, name="hooks", daemon=True).start()
    started = time.monotonic()
    try:
        with sync_playwright() as pw:
            chromium_args = list(CHROMIUM_ARGS)
            if os.geteuid() == 0:
                chromium_args.insert(0, "--no-sandbox")
            browser = pw.chromium.launch(
                executable_path=args.chromium,
                headless=True,
                args=chromium_args,
                timeout=args.timeout * 2000,
            )
            try:
                print(f"  chromium {browser.version} (launched in {time.monotonic() - started:.1f}s)", flush=True)
                flow = Flow(args, key, hooks, browser)
                if not guarded("register", flow.register):
                    return
                guarded("allow", flow.allow)
                guarded("framing", flow.framing)
                guarded("cross-site-post", flow.cross_site_post)
                guarded("deny", lambda: flow.refused("deny", None, "deny"))
                guarded("wrong-key", lambda: flow.refused("wrong-key", wrong, "allow"))
            finally:
                browser.close()
    finally:
        hooks.shutdown()
        hooks.server_close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="the gateway's MCP endpoint, e.g. http://127.0.0.1:8080/mcp")
    ap.add_argument("--expect-user", required=True, help="the user_id of the key that signs in")
    ap.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium executable")
    ap.add_argument("--artifacts", required=True, help="directory for screenshots")
    ap.add_argument("--timeout", type=float, default=15.0, help="per-step timeout in seconds")
    ap.add_argument("--secrets-out", default=None, help="file to write every key secret, code and token to")
    args = ap.parse_args()
    try:
        run(args)
    except Exception:
        traceback.print_exc()
        record("run", False, "unexpected exception (see traceback)")
    finally:
        if args.secrets_out:
            with open(args.secrets_out, "w", encoding="utf-8") as f:
                f.writelines(s + "\n" for s in SECRETS)
    failed = sum(1 for _, ok, _ in RESULTS if not ok)
    return 1 if failed or not RESULTS else 0


if __name__ == "__main__":
    sys.exit(main())
