"""Seed 004's browser sign-in in a real, headless Chromium (Debian's, driven by Playwright):
`GET /auth/oauth/github/start` → the GitHub stand-in → `/auth/oauth/callback` → back to
`/auth/me`, answered for the browser's web session; then sign-out from the gateway's own origin.
And the refusals a person sees as pages: an account outside the organization, a person who
declines at the provider. Screenshots of each page are kept in --artifacts.

    signin_browser.py --base URL --chromium /usr/bin/chromium --artifacts DIR [--secrets-out FILE]

Prints one PASS/FAIL line per check; exits non-zero if any failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse

from playwright.sync_api import Browser, Page, sync_playwright

from browser_oauth import CHROMIUM_ARGS

RESULTS: list[tuple[str, bool, str]] = []
SECRETS: list[str] = []


def record(name: str, ok: bool, reason: str = "") -> bool:
    RESULTS.append((name, ok, reason))
    print(f"{'PASS' if ok else 'FAIL'} signin/browser/{name}{'' if ok else ': ' + reason}", flush=True)
    return ok


def start_url(base: str, login: str) -> str:
    q = urllib.parse.urlencode({"return_to": "/auth/me", "login_hint": login})
    return f"{base}/auth/oauth/github/start?{q}"


def session_cookies(page: Page, base: str) -> list[dict]:
    return [c for c in page.context.cookies(base) if c["name"].endswith("mcpgate_session")]


def shot(page: Page, artifacts: str, name: str) -> None:
    path = os.path.join(artifacts, f"signin-{name}.png")
    page.screenshot(path=path, full_page=True)
    record(f"{name}/screenshot", os.path.getsize(path) > 1500, f"{path} is {os.path.getsize(path)} bytes")


def admitted(browser: Browser, base: str, artifacts: str) -> None:
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        resp = page.goto(start_url(base, "ana"))
        final = page.url
        text = page.inner_text("body") if page.locator("body").count() else ""
        try:
            me = json.loads(text)
        except ValueError:
            me = {}
        record(
            "github/back-at-me",
            resp is not None and resp.status == 200 and final == f"{base}/auth/me",
            f"ended at {final!r} with {resp.status if resp else None}: {text[:200]!r}",
        )
        record(
            "github/me-is-the-session",
            me.get("user_id") == "gh:ana" and me.get("auth_method") == "session" and me.get("signed_in_with") == "provider",
            f"/auth/me in the browser: {text[:300]!r}",
        )
        shot(page, artifacts, "github-me")
        sess = session_cookies(page, base)
        for c in page.context.cookies(base):
            SECRETS.append(c["value"])
        record(
            "github/session-cookie",
            len(sess) == 1 and sess[0]["httpOnly"] and sess[0]["sameSite"] == "Lax" and sess[0]["path"] == "/",
            f"session cookies as the browser holds them: {[{k: c[k] for k in ('name', 'httpOnly', 'sameSite', 'path')} for c in sess]}",
        )
        leftover = [c["name"] for c in page.context.cookies(base) if c["name"].endswith("mcpgate_signin")]
        record("github/sign-in-cookie-cleared", not leftover, f"still held: {leftover}")
        # Sign-out, from a page of the gateway's own origin (Origin and Sec-Fetch-Site say so).
        status = page.evaluate(
            """async () => {
                const r = await fetch('/auth/logout', {method: 'POST', redirect: 'manual',
                    body: new URLSearchParams({return_to: '/auth/me'})});
                return r.type === 'opaqueredirect' ? 303 : r.status;
            }"""
        )
        after = page.goto(f"{base}/auth/me")
        record(
            "github/sign-out",
            status == 303 and after is not None and after.status == 401 and not session_cookies(page, base),
            f"POST /auth/logout answered {status}; /auth/me then {after.status if after else None}",
        )
    finally:
        ctx.close()


def refused(browser: Browser, base: str, artifacts: str, name: str, login: str, words: str, status: int) -> None:
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        resp = page.goto(start_url(base, login))
        text = " ".join(page.inner_text("body").split()) if page.locator("body").count() else ""
        record(
            f"{name}/page",
            resp is not None and resp.status == status and words in text and page.url.startswith(f"{base}/auth/oauth/callback"),
            f"ended at {page.url[:120]!r} with {resp.status if resp else None}: {text[:300]!r}",
        )
        record(f"{name}/not-signed-in", not session_cookies(page, base), "a session cookie was set")
        shot(page, artifacts, name)
    finally:
        ctx.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--artifacts", required=True)
    ap.add_argument("--secrets-out")
    ap.add_argument("--timeout", type=float, default=15)
    args = ap.parse_args()
    with sync_playwright() as pw:
        chromium_args = list(CHROMIUM_ARGS)
        if os.geteuid() == 0:
            chromium_args.insert(0, "--no-sandbox")
        browser = pw.chromium.launch(
            executable_path=args.chromium, headless=True, args=chromium_args, timeout=args.timeout * 2000
        )
        try:
            for case in (
                lambda: admitted(browser, args.base, args.artifacts),
                lambda: refused(
                    browser, args.base, args.artifacts, "github-outside-org", "bob", "not allowed to use this gateway", 403
                ),
                lambda: refused(browser, args.base, args.artifacts, "github-declined", "deny", "did not let you sign in", 403),
            ):
                try:
                    case()
                except Exception as e:  # noqa: BLE001 (one failed check, the others still run)
                    record("unexpected", False, f"{type(e).__name__}: {e}")
        finally:
            browser.close()
    if args.secrets_out:
        with open(args.secrets_out, "a", encoding="utf-8") as f:
            for s in SECRETS:
                if s:
                    f.write(s + "\n")
    return 0 if all(ok for _, ok, _ in RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
