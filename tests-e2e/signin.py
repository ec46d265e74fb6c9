#!/usr/bin/env python3
"""Signing in through identity providers, end to end (issue #12): a real OpenID Provider
(panva's oidc-provider) and a GitHub stand-in, both on loopback, in front of mcpgate's
authorization server.

    signin.py --base http://127.0.0.1:PORT --secrets-out FILE

For each provider, what an MCP client and its user do: register (DCR), open /authorize with
PKCE, see the sign-in page offer the provider, follow it there and back (the provider's own
pages and cookies, as a browser would), land back on /authorize signed in (the web session),
allow on the consent page, exchange the code, and call the gateway's whoami through /mcp with
the token: the user is the one the identity rules made of the provider's account. Then the
refusals: an OIDC account outside the admitted group, one whose e-mail is not verified, a
GitHub user outside the admitted organization — each a 403 page and no session. One PASS/FAIL
line per check; every code, token and cookie seen is written to --secrets-out.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import secrets
import sys
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx2

RESULTS: list[tuple[str, bool, str]] = []
SECRETS: list[str] = []
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def record(name: str, ok: bool, reason: str = "") -> bool:
    RESULTS.append((name, ok, reason))
    print(f"PASS signin/{name}" if ok else f"FAIL signin/{name}: {reason[:400]}", flush=True)
    return ok


def keep(*values: str | None) -> None:
    SECRETS.extend(v for v in values if v and len(v) >= 8)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query, keep_blank_values=True).items()}


class Person:
    """A browser: one cookie jar, redirects followed by hand (so each hop can be seen)."""

    def __init__(self, base: str, redirect_uri: str) -> None:
        self.base = base
        self.redirect_uri = redirect_uri
        self.http = httpx2.Client(follow_redirects=False, timeout=15)

    def cookies(self) -> dict[str, str]:
        return {c.name: c.value or "" for c in self.http.cookies.jar}

    def walk(self, url: str, until: str, limit: int = 15) -> httpx2.Response:
        """GETs url and follows redirects until one goes to a URL starting with `until` (not
        visited) or a response is not a redirect."""
        r = self.http.get(url)
        for _ in range(limit):
            if r.status_code not in (301, 302, 303, 307, 308):
                return r
            loc = str(r.url.join(r.headers["location"]))
            if loc.startswith(until):
                return r
            r = self.http.get(loc)
        return r

    def sign_in(self, client_id: str, provider: str, account: dict[str, str]) -> tuple[httpx2.Response, str, str]:
        """From /authorize to the provider and back: (the callback's answer, verifier, state)."""
        verifier, challenge = pkce()
        state = secrets.token_urlsafe(12)
        q = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": self.redirect_uri,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": state,
            "scope": "read write",
            "resource": f"{self.base}/mcp",
        }
        page = self.http.get(f"{self.base}/authorize?{urlencode(q)}")
        links = dict(
            (name, href.replace("&amp;", "&"))
            for href, name in re.findall(r'class="provider" href="([^"]+)">Sign in with ([^<]+)</a>', page.text)
        )
        if provider not in links:
            raise AssertionError(f"the sign-in page offers {sorted(links)}, not {provider!r} (HTTP {page.status_code})")
        start = self.http.get(links[provider])
        if start.status_code != 303:
            raise AssertionError(f"start answered {start.status_code}: {start.text[:200]}")
        to_provider = start.headers["location"] + "&" + urlencode(account)
        back = self.walk(to_provider, f"{self.base}/auth/oauth/callback")
        loc = back.headers.get("location", "")
        if not loc.startswith(f"{self.base}/auth/oauth/callback"):
            raise AssertionError(f"the provider did not send the browser back: {back.status_code} {loc[:200]} {back.text[:200]}")
        keep(query_of(loc).get("code"))
        return self.http.get(loc), verifier, state

    def allow(self, client_id: str, authorize_path: str) -> httpx2.Response:
        """On /authorize signed in: the consent page, answered with Allow."""
        page = self.http.get(f"{self.base}{authorize_path}")
        if page.status_code != 200:
            return page
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
        fields = {k: v.replace("&amp;", "&") for k, v in fields.items()}
        fields["decision"] = "allow"
        return self.http.post(f"{self.base}/authorize", data=fields, headers={"origin": self.base})


def register(base: str, redirect_uri: str) -> str:
    r = httpx2.post(
        f"{base}/register",
        json={"redirect_uris": [redirect_uri], "token_endpoint_auth_method": "none", "client_name": "signin e2e"},
        timeout=15,
    )
    r.raise_for_status()
    return r.json()["client_id"]


def rpc(base: str, token: str, body: dict[str, Any], session: str | None) -> tuple[httpx2.Response, dict[str, Any]]:
    h = dict(MCP_HEADERS, authorization=f"Bearer {token}")
    if session:
        h["mcp-session-id"] = session
    r = httpx2.post(f"{base}/mcp", json=body, headers=h, timeout=15)
    msg: dict[str, Any] = {}
    if r.headers.get("content-type", "").startswith("text/event-stream"):
        for line in r.text.splitlines():
            if line.startswith("data:"):
                try:
                    m = json.loads(line[5:])
                except ValueError:
                    continue
                if m.get("id") == body.get("id"):
                    msg = m
    elif r.content:
        msg = r.json()
    return r, msg


def call_tool(base: str, token: str, name: str) -> tuple[httpx2.Response, dict[str, Any]]:
    """initialize, then tools/call `name` with no arguments: the HTTP answer and its message."""
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "signin-e2e", "version": "0"}},
    }
    r, _ = rpc(base, token, init, None)
    session = r.headers.get("mcp-session-id")
    rpc(base, token, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session)
    return rpc(base, token, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": name, "arguments": {}}}, session)


def upstream_token_check(base: str, name: str, token: str, issuer: str | None, provider_name: str) -> None:
    """delegation.source = "provider:corp": the demo upstream's `inspect` tool reports the
    arguments it received. A corp user's call carries their token at corp (the provider's
    userinfo endpoint says whose), never ours; anyone else is told where to sign in at corp."""
    r, msg = call_tool(base, token, "inspect")
    if issuer is None:
        err = json.dumps(msg.get("error", {}))
        record(
            f"{name}/provider-token-needed",
            r.status_code == 403 and provider_name in err and "/auth/oauth/corp/start" in err,
            f"inspect without a {provider_name} token: {r.status_code} {err[:300]}",
        )
        return
    text = "".join(b.get("text", "") for b in msg.get("result", {}).get("content", []))
    try:
        got = json.loads(text).get("arguments", {}).get("upstream_token", "")
    except ValueError:
        got = ""
    keep(got)
    disc = httpx2.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
    info = httpx2.get(disc["userinfo_endpoint"], headers={"authorization": f"Bearer {got}"}, timeout=10) if got else None
    sub = info.json().get("sub") if info is not None and info.status_code == 200 else None
    record(
        f"{name}/upstream-gets-provider-token",
        bool(got) and got != token and token not in text and sub == "alice",
        f"inspect: the upstream received a token (present: {bool(got)}, ours: {got == token}); the provider's userinfo"
        f" says {sub!r} ({info.status_code if info is not None else None})",
    )


def whoami(base: str, token: str) -> dict[str, Any]:
    _, msg = call_tool(base, token, "whoami")
    result = msg.get("result", {})
    if isinstance(result.get("structuredContent"), dict):
        return result["structuredContent"]
    for block in result.get("content", []):
        try:
            return json.loads(block.get("text", ""))
        except ValueError:
            pass
    return {"error": msg}


def admitted(
    base: str,
    name: str,
    provider: str,
    account: dict[str, str],
    want_user: str,
    redirect_uri: str,
    issuer: str | None = None,
) -> None:
    client_id = register(base, redirect_uri)
    who = Person(base, redirect_uri)
    try:
        cb, verifier, state = who.sign_in(client_id, provider, account)
    except AssertionError as e:
        record(f"{name}/provider-round-trip", False, str(e))
        return
    session = next((v for k, v in who.cookies().items() if k.endswith("mcpgate_session")), "")
    keep(session, *[v for k, v in who.cookies().items() if k.endswith("mcpgate_signin")])
    record(
        f"{name}/callback-signs-in",
        cb.status_code == 303 and cb.headers.get("location", "").startswith("/authorize?") and bool(session),
        f"callback answered {cb.status_code}, Location {cb.headers.get('location', '')[:120]!r}, session cookie {bool(session)}: {cb.text[:200]}",
    )
    me = who.http.get(f"{base}/auth/me")
    record(
        f"{name}/auth-me",
        me.status_code == 200 and me.json().get("user_id") == want_user,
        f"/auth/me answered {me.status_code} {me.text[:200]}",
    )
    r = who.allow(client_id, cb.headers.get("location", "/"))
    loc = r.headers.get("location", "")
    q = query_of(loc)
    keep(q.get("code"))
    if not record(
        f"{name}/consent-allow",
        r.status_code == 303 and loc.startswith(redirect_uri) and bool(q.get("code")) and q.get("state") == state,
        f"POST /authorize answered {r.status_code}, Location {loc[:160]!r}: {r.text[:200]}",
    ):
        return
    t = httpx2.post(
        f"{base}/token",
        data={
            "grant_type": "authorization_code",
            "code": q["code"],
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            "client_id": client_id,
        },
        timeout=15,
    )
    body = t.json() if t.headers.get("content-type", "").startswith("application/json") else {}
    keep(body.get("access_token"), body.get("refresh_token"))
    if not record(f"{name}/token", t.status_code == 200 and bool(body.get("access_token")), f"{t.status_code} {t.text[:200]}"):
        return
    me = whoami(base, body["access_token"])
    record(
        f"{name}/mcp-whoami",
        me.get("user_id") == want_user and me.get("auth_method") == "oauth",
        f"want user {want_user!r} by oauth, got {json.dumps(me)[:300]}",
    )
    upstream_token_check(base, name, body["access_token"], issuer, "Corp SSO")


def refused(base: str, name: str, provider: str, account: dict[str, str], redirect_uri: str) -> None:
    client_id = register(base, redirect_uri)
    who = Person(base, redirect_uri)
    try:
        cb, _, _ = who.sign_in(client_id, provider, account)
    except AssertionError as e:
        record(f"{name}/provider-round-trip", False, str(e))
        return
    signed_in = any(k.endswith("mcpgate_session") for k in who.cookies())
    record(
        f"{name}/refused",
        cb.status_code == 403 and "not allowed to use this gateway" in cb.text and not signed_in,
        f"callback answered {cb.status_code} (session cookie: {signed_in}): {cb.text[:300]}",
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--redirect-uri", required=True)
    ap.add_argument("--secrets-out", required=True)
    ap.add_argument("--oidc-issuer", required=True)
    args = ap.parse_args()
    cases = [
        lambda: admitted(
            args.base, "oidc", "Corp SSO", {"login_hint": "alice"}, "alice@example.test", args.redirect_uri, args.oidc_issuer
        ),
        lambda: refused(args.base, "oidc-outside-group", "Corp SSO", {"login_hint": "carol"}, args.redirect_uri),
        lambda: refused(args.base, "oidc-unverified-email", "Corp SSO", {"login_hint": "bob"}, args.redirect_uri),
        lambda: admitted(args.base, "github", "GitHub", {"login": "ana"}, "gh:ana", args.redirect_uri),
        lambda: refused(args.base, "github-outside-org", "GitHub", {"login": "bob"}, args.redirect_uri),
    ]
    for case in cases:
        try:
            case()
        except Exception as e:  # noqa: BLE001 (one failed check, the others still run)
            record("unexpected", False, f"{type(e).__name__}: {e}")
    with open(args.secrets_out, "a", encoding="utf-8") as f:
        for s in SECRETS:
            f.write(s + "\n")
    return 0 if all(ok for _, ok, _ in RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
