#!/usr/bin/env python3
"""The official MCP Python SDK's OAuth client (`mcp` 2.x) against mcpgate's own authorization
server (issue #11), end to end over real HTTP.

The gateway runs with `public_url` = its loopback address and an `[oauth]` section (see
tests-e2e/python_oauth.sh). This script plays both the MCP client and the person's browser:

1. Discovery, unauthenticated: POST /mcp without a credential is 401 with a Bearer challenge
   naming the RFC 9728 metadata; that metadata names the issuer first; RFC 8414 metadata at
   /.well-known/oauth-authorization-server describes it (S256, iss parameter, /register).
2. The SDK's `OAuthClientProvider` (in-memory TokenStorage, a loopback redirect URI, public
   client, authorization_code + refresh_token) under the SDK's Streamable HTTP `Client`: it
   discovers, registers (DCR), and sends the "browser" to /authorize. The redirect handler
   fetches that URL without following redirects, signed in with `X-API-Key: <key>` (the
   gateway's header sign-in), expects a 303 to the redirect URI with code, state and iss (=
   the issuer), and hands them to the callback handler. Then tools/list, echo, and the
   gateway's whoami (user = the key's user, auth_method = oauth).
3. Refresh: the stored access token is made to look expired; the next call makes the SDK
   refresh (rotation: a new access and refresh token) and succeeds, without a new sign-in.
   After the grace window (--grace seconds), presenting the replaced refresh token is 400
   invalid_grant and revokes the family: the current access token is refused (401) and the
   current refresh token too; the SDK then recovers by signing in again.
4. Negatives: /authorize for another audience (resource=https://elsewhere.example/mcp) comes
   back to the client with error=invalid_target (state and iss kept, no code); a wrong key
   comes back with access_denied; an unregistered redirect URI is a 400 page, never a
   redirect; a code exchanged for another resource is invalid_target.

Each check prints `PASS name` or `FAIL name: reason` (and appends the line to $E2E_RESULTS when
set); the exit status is 1 if any check failed. The key comes from $OAUTH_E2E_KEY (not argv).
With --secrets-out FILE, every code and token seen is written there (one a line) so the
caller can search the gateway's log for them.

    OAUTH_E2E_KEY=mcp_… python_oauth.py --url http://127.0.0.1:PORT/mcp --expect-user ana \
        [--grace 1] [--timeout 20] [--secrets-out FILE]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import sys
import time
import traceback
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import anyio
import httpx2
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

P = "oauth"
RESULTS: list[tuple[str, bool, str]] = []
SECRETS: list[str] = []
ELSEWHERE = "https://elsewhere.example/mcp"
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "mcpgate-e2e-oauth", "version": "0"},
    },
}
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


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


def describe(e: BaseException) -> str:
    if isinstance(e, BaseExceptionGroup):
        return "; ".join(describe(x) for x in e.exceptions)
    if isinstance(e, TimeoutError):
        return "timed out"
    return f"{type(e).__name__}: {e}"


def keep(secret: str | None) -> None:
    if secret:
        SECRETS.append(secret)


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (the gateway verifies; this only reads what it says)."""
    try:
        part = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError):
        return {}


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(location).query, keep_blank_values=True).items()}


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def texts(result: Any) -> list[str]:
    return [block.text for block in result.content if getattr(block, "type", None) == "text"]


def whoami_of(result: Any) -> dict[str, Any]:
    who = result.structured_content if isinstance(result.structured_content, dict) else {}
    if not who:
        for t in texts(result):
            try:
                who = json.loads(t)
                break
            except ValueError:
                pass
    return who if isinstance(who, dict) else {}


class MemoryStorage:
    """The SDK's TokenStorage protocol, in memory, keeping every token set it was given."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None
        self.history: list[OAuthToken] = []

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        self.history.append(tokens)
        keep(tokens.access_token)
        keep(tokens.refresh_token)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class Browser:
    """The person's browser: opens the authorization URL signed in by header, and hands the
    redirect's code, state and iss to the SDK's callback handler (no listener is needed)."""

    def __init__(self, key: str, issuer: str, redirect_uri: str, timeout: float) -> None:
        self.key = key
        self.issuer = issuer
        self.redirect_uri = redirect_uri
        self.timeout = timeout
        self.visits: list[str] = []
        self.pending: AuthorizationCodeResult | None = None

    async def redirect_handler(self, authorization_url: str) -> None:
        self.visits.append(authorization_url)
        n = len(self.visits)
        q = query_of(authorization_url)
        if n == 1:
            check(
                "sdk/authorize-request",
                q.get("code_challenge_method") == "S256"
                and bool(q.get("code_challenge"))
                and q.get("redirect_uri") == self.redirect_uri
                and bool(q.get("state")),
                f"the SDK's authorization URL lacks PKCE S256, state or our redirect: {q}",
            )
            print(f"  authorize: resource={q.get('resource')!r} scope={q.get('scope')!r}", flush=True)
        async with httpx2.AsyncClient(follow_redirects=False, timeout=self.timeout) as h:
            r = await h.get(authorization_url, headers={"X-API-Key": self.key})
        loc = r.headers.get("location", "")
        p = query_of(loc)
        ok = check(
            f"sdk/sign-in-{n}/303",
            r.status_code == 303 and loc.startswith(self.redirect_uri + "?") and "code" in p and "error" not in p,
            f"GET /authorize with X-API-Key: {r.status_code}, Location {loc!r}, body {r.text[:300]!r}",
        )
        check(
            f"sdk/sign-in-{n}/iss",
            p.get("iss") == self.issuer,
            f"iss {p.get('iss')!r}, expected the issuer {self.issuer!r}",
        )
        check(
            f"sdk/sign-in-{n}/state",
            p.get("state") == q.get("state"),
            f"state {p.get('state')!r} came back, {q.get('state')!r} was sent",
        )
        if not ok:
            raise RuntimeError(f"the sign-in did not redirect back with a code ({r.status_code})")
        keep(p["code"])
        self.pending = AuthorizationCodeResult(code=p["code"], state=p.get("state"), iss=p.get("iss"))

    async def callback_handler(self) -> AuthorizationCodeResult:
        result, self.pending = self.pending, None
        if result is None:
            raise RuntimeError("callback without a redirect")
        return result


async def run(args: argparse.Namespace) -> None:
    key = os.environ.get("OAUTH_E2E_KEY", "")
    if not key:
        record("setup", False, "OAUTH_E2E_KEY is not set")
        return
    url = args.url.rstrip("/")
    base = url[: -len("/mcp")] if url.endswith("/mcp") else url
    issuer = base  # public_url = the gateway's own address; the issuer defaults to it
    redirect_uri = f"http://127.0.0.1:{args.redirect_port}/callback"
    timeout = httpx2.Timeout(args.timeout, read=args.timeout * 2)

    async with httpx2.AsyncClient(timeout=timeout, follow_redirects=False) as raw:
        await discovery(raw, url, base, issuer)
        client_id, storage, browser = await sdk_flow(args, raw, key, url, base, issuer, redirect_uri, timeout)
        if client_id:
            await negatives(raw, key, url, base, issuer, client_id, redirect_uri)


async def discovery(raw: httpx2.AsyncClient, url: str, base: str, issuer: str) -> None:
    prm_url = f"{base}/.well-known/oauth-protected-resource/mcp"
    try:
        r = await raw.post(url, json=INIT, headers=MCP_HEADERS)
        challenge = r.headers.get("www-authenticate", "")
        check(
            "no-credential/401-challenge",
            r.status_code == 401
            and challenge.lower().startswith("bearer")
            and f'resource_metadata="{prm_url}"' in challenge,
            f"POST /mcp without a credential: {r.status_code}, WWW-Authenticate {challenge!r}",
        )
    except Exception as e:
        record("no-credential/401-challenge", False, describe(e))
    try:
        r = await raw.get(prm_url)
        prm = r.json() if r.status_code == 200 else {}
        check(
            "discovery/protected-resource",
            r.status_code == 200
            and (prm.get("authorization_servers") or [None])[0] == issuer
            and prm.get("resource") == url,
            f"GET {prm_url}: {r.status_code} {r.text[:300]!r} (want authorization_servers[0] = {issuer!r}, resource = {url!r})",
        )
    except Exception as e:
        record("discovery/protected-resource", False, describe(e))
    try:
        r = await raw.get(f"{base}/.well-known/oauth-authorization-server")
        asm = r.json() if r.status_code == 200 else {}
        check(
            "discovery/authorization-server",
            r.status_code == 200
            and asm.get("issuer") == issuer
            and asm.get("code_challenge_methods_supported") == ["S256"]
            and asm.get("authorization_response_iss_parameter_supported") is True
            and asm.get("registration_endpoint") == f"{issuer}/register"
            and asm.get("authorization_endpoint") == f"{issuer}/authorize"
            and asm.get("token_endpoint") == f"{issuer}/token",
            f"RFC 8414 metadata: {r.status_code} {r.text[:500]!r}",
        )
    except Exception as e:
        record("discovery/authorization-server", False, describe(e))


async def sdk_flow(
    args: argparse.Namespace,
    raw: httpx2.AsyncClient,
    key: str,
    url: str,
    base: str,
    issuer: str,
    redirect_uri: str,
    timeout: httpx2.Timeout,
) -> tuple[str | None, MemoryStorage, Browser]:
    storage = MemoryStorage()
    browser = Browser(key, issuer, redirect_uri, args.timeout)
    traffic: list[tuple[str, str, int]] = []  # (method, path, status) of every HTTP exchange

    async def on_response(response: httpx2.Response) -> None:
        traffic.append((response.request.method, response.request.url.path, response.status_code))

    def token_posts() -> list[int]:
        return [s for m, path, s in traffic if m == "POST" and path == "/token"]

    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            redirect_uris=[redirect_uri],
            token_endpoint_auth_method="none",
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            client_name="mcpgate e2e (Python SDK)",
        ),
        storage=storage,
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )
    http = httpx2.AsyncClient(auth=provider, timeout=timeout, event_hooks={"response": [on_response]})
    client_id: str | None = None
    p = "sdk"
    try:
        async with http:
            with anyio.fail_after(args.timeout * 6):
                async with Client(streamable_http_client(url, http_client=http), read_timeout_seconds=args.timeout) as client:
                    record(f"{p}/connect", True)
                    print(f"  negotiated {client.protocol_version}; traffic: {traffic}", flush=True)
                    client_id = storage.client_info.client_id if storage.client_info else None
                    registered = [s for m, path, s in traffic if m == "POST" and path == "/register"]
                    check(
                        f"{p}/registered",
                        bool(client_id) and registered == [201],
                        f"DCR: client_id {client_id!r}, POST /register statuses {registered}",
                    )
                    tokens = storage.tokens
                    claims = jwt_claims(tokens.access_token) if tokens else {}
                    check(
                        f"{p}/tokens",
                        tokens is not None
                        and tokens.token_type.lower() == "bearer"
                        and bool(tokens.refresh_token)
                        and claims.get("iss") == issuer
                        and claims.get("aud") in (url, [url])
                        and len(browser.visits) == 1,
                        f"token_type {getattr(tokens, 'token_type', None)!r}, refresh token"
                        f" {bool(tokens and tokens.refresh_token)}, claims iss={claims.get('iss')!r} aud={claims.get('aud')!r},"
                        f" sign-ins {len(browser.visits)}",
                    )
                    if tokens:
                        print(f"  granted scope {tokens.scope!r}, expires_in {tokens.expires_in}", flush=True)

                    await mcp_checks(client, p, args)

                    # 3. Refresh: the stored token looks expired, so the next request refreshes.
                    old = storage.tokens
                    before = len(token_posts())
                    provider.context.token_expiry_time = time.time() - 1
                    await whoami_check(client, f"{p}/after-refresh/whoami", args)
                    new = storage.tokens
                    refreshes = token_posts()[before:]
                    check(
                        f"{p}/refresh/rotated",
                        old is not None
                        and new is not None
                        and refreshes == [200]
                        and new.access_token != old.access_token
                        and bool(new.refresh_token)
                        and new.refresh_token != old.refresh_token
                        and len(browser.visits) == 1,
                        f"POST /token statuses since the forced expiry {refreshes}, access token changed"
                        f" {bool(old and new and new.access_token != old.access_token)}, refresh token changed"
                        f" {bool(old and new and new.refresh_token != old.refresh_token)}, sign-ins {len(browser.visits)}",
                    )

                    # The replaced refresh token, past the grace window: refused, and the family ends.
                    if old is not None and new is not None and client_id:
                        bearer = {**MCP_HEADERS, "authorization": f"Bearer {new.access_token}"}
                        r = await raw.post(url, json=INIT, headers=bearer)
                        check(
                            f"{p}/refresh/new-access-token",
                            r.status_code == 200,
                            f"initialize with the refreshed access token: {r.status_code} {r.text[:200]!r}",
                        )
                        await anyio.sleep(args.grace + 1.2)
                        r = await refresh(raw, base, old.refresh_token or "", client_id)
                        oauth_error(f"{p}/refresh/replaced-token-after-grace", r, 400, "invalid_grant")
                        # Revocation reaches the /mcp path "within about a second": poll up to 3 s.
                        started = time.monotonic()
                        statuses: list[int] = []
                        while True:
                            r = await raw.post(url, json=INIT, headers=bearer)
                            statuses.append(r.status_code)
                            if r.status_code == 401 or time.monotonic() - started > 3:
                                break
                            await anyio.sleep(0.2)
                        check(
                            f"{p}/refresh/family-revoked-access",
                            r.status_code == 401,
                            f"the current access token of a revoked family, for 3 s: statuses {statuses}",
                        )
                        if len(statuses) > 1:
                            print(f"  revoked access token refused after {time.monotonic() - started:.1f}s: {statuses}", flush=True)
                        r = await refresh(raw, base, new.refresh_token or "", client_id)
                        oauth_error(f"{p}/refresh/family-revoked-refresh", r, 400, "invalid_grant")
                        # The SDK, refused, signs in again (no new registration) and goes on.
                        await whoami_check(client, f"{p}/after-revocation/whoami", args)
                        registered = [s for m, path, s in traffic if m == "POST" and path == "/register"]
                        check(
                            f"{p}/after-revocation/signed-in-again",
                            len(browser.visits) == 2 and registered == [201],
                            f"sign-ins {len(browser.visits)} (want 2), registrations {registered}",
                        )
    except Exception as e:
        if not any(name == f"{P}/{p}/connect" for name, _, _ in RESULTS):
            record(f"{p}/connect", False, describe(e))
        else:
            record(f"{p}/session", False, describe(e))
        print(f"  traffic: {traffic}", flush=True)
    return client_id, storage, browser


async def mcp_checks(client: Client, p: str, args: argparse.Namespace) -> None:
    try:
        listed = await client.list_tools()
        names = {t.name for t in listed.tools}
        check(f"{p}/tools-list", "echo" in names, f"echo not listed; listed {sorted(names)}")
    except Exception as e:
        record(f"{p}/tools-list", False, describe(e))
    text = "hello through mcpgate's OAuth ✓"
    try:
        r = await client.call_tool("echo", {"text": text})
        got = texts(r)
        check(
            f"{p}/echo",
            not r.is_error and (any(text in t for t in got) or text in str(r.structured_content or "")),
            f"isError {r.is_error}, got {got!r}",
        )
    except Exception as e:
        record(f"{p}/echo", False, describe(e))
    await whoami_check(client, f"{p}/whoami", args)


async def whoami_check(client: Client, name: str, args: argparse.Namespace) -> None:
    try:
        r = await client.call_tool("whoami", {})
        who = whoami_of(r)
        check(
            name,
            not r.is_error and who.get("user_id") == args.expect_user and who.get("auth_method") == "oauth",
            f"want user_id {args.expect_user!r} and auth_method 'oauth', got {who or texts(r)!r}",
        )
    except Exception as e:
        record(name, False, describe(e))


async def refresh(raw: httpx2.AsyncClient, base: str, token: str, client_id: str) -> httpx2.Response:
    return await raw.post(
        f"{base}/token",
        data={"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id},
    )


def shown(r: httpx2.Response) -> str:
    """A token endpoint's answer for a failure message, with any issued token redacted."""
    try:
        body = r.json()
    except ValueError:
        return repr(r.text[:300])
    if not isinstance(body, dict):
        return repr(body)
    return repr({k: "<redacted>" if k in ("access_token", "refresh_token", "id_token") else v for k, v in body.items()})


def oauth_error(name: str, r: httpx2.Response, status: int, code: str) -> None:
    try:
        body = r.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    check(
        name,
        r.status_code == status and body.get("error") == code and r.headers.get("cache-control") == "no-store",
        f"want {status} {code} (no-store), got {r.status_code} {shown(r)}, cache-control {r.headers.get('cache-control')!r}",
    )


async def negatives(
    raw: httpx2.AsyncClient, key: str, url: str, base: str, issuer: str, client_id: str, redirect_uri: str
) -> None:
    def authorize_url(**over: str) -> tuple[str, str]:
        verifier, challenge = pkce()
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "st-" + secrets.token_hex(4),
            "resource": url,
        }
        params.update(over)
        return f"{base}/authorize?{urlencode(params)}", verifier

    # A token for another audience: the sign-in goes back to the client with invalid_target.
    try:
        u, _ = authorize_url(resource=ELSEWHERE)
        r = await raw.get(u, headers={"X-API-Key": key})
        loc = r.headers.get("location", "")
        q = query_of(loc)
        check(
            "other-audience/invalid_target",
            r.status_code == 303
            and loc.startswith(redirect_uri + "?")
            and q.get("error") == "invalid_target"
            and "code" not in q
            and q.get("state") == query_of(u)["state"]
            and q.get("iss") == issuer,
            f"authorize with resource={ELSEWHERE}: {r.status_code}, Location {loc!r}",
        )
    except Exception as e:
        record("other-audience/invalid_target", False, describe(e))

    # A code asked for this resource cannot be exchanged for another one.
    try:
        u, verifier = authorize_url()
        r = await raw.get(u, headers={"X-API-Key": key})
        code = query_of(r.headers.get("location", "")).get("code", "")
        keep(code)
        t = await raw.post(
            f"{base}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
                "client_id": client_id,
                "resource": ELSEWHERE,
            },
        )
        if code:
            oauth_error("other-audience/token-invalid_target", t, 400, "invalid_target")
        else:
            record("other-audience/token-invalid_target", False, f"no code to try: {r.status_code} {r.headers.get('location')!r}")
    except Exception as e:
        record("other-audience/token-invalid_target", False, describe(e))

    # A wrong key: access_denied, back to the client.
    try:
        u, _ = authorize_url()
        wrong = key.rsplit("_", 1)[0] + "_not-the-right-secret-0123456789abcdef"
        r = await raw.get(u, headers={"X-API-Key": wrong})
        q = query_of(r.headers.get("location", ""))
        check(
            "wrong-key/access_denied",
            r.status_code == 303 and q.get("error") == "access_denied" and "code" not in q and q.get("iss") == issuer,
            f"authorize with a wrong key: {r.status_code}, Location {r.headers.get('location')!r}",
        )
    except Exception as e:
        record("wrong-key/access_denied", False, describe(e))

    # A redirect URI the client did not register: a page, never a redirect.
    try:
        u, _ = authorize_url(redirect_uri="http://127.0.0.1:1/elsewhere")
        r = await raw.get(u, headers={"X-API-Key": key})
        check(
            "unregistered-redirect/page",
            r.status_code == 400
            and "location" not in r.headers
            and r.headers.get("content-type", "").startswith("text/html"),
            f"authorize with an unregistered redirect: {r.status_code}, Location {r.headers.get('location')!r}",
        )
    except Exception as e:
        record("unregistered-redirect/page", False, describe(e))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="the gateway's MCP endpoint, e.g. http://127.0.0.1:8080/mcp")
    ap.add_argument("--expect-user", required=True, help="the user_id of the key that signs in")
    ap.add_argument("--grace", type=float, default=1.0, help="the gateway's oauth.refresh_grace_s")
    ap.add_argument("--redirect-port", type=int, default=53682, help="port of the loopback redirect URI")
    ap.add_argument("--timeout", type=float, default=20.0, help="per-request timeout in seconds")
    ap.add_argument("--secrets-out", default=None, help="file to write every code and token seen to")
    args = ap.parse_args()
    try:
        anyio.run(run, args)
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
