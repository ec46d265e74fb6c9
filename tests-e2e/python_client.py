#!/usr/bin/env python3
"""The official MCP Python SDK client (`mcp` 2.x) against an MCP endpoint (normally mcpgate).

By default the client runs in the SDK's default mode ("auto"): it sends `server/discover`
(protocol 2026-07-28) first and falls back to `initialize` on a JSON-RPC error or HTTP 4xx, as
a real user's client does. Checks: connect, tools/list (echo and add listed), tools/call echo,
tools/call add, and a call to a tool that does not exist (must come back as an error, not a
hang); with --expect-user, the gateway's `whoami` tool must name that user. With
--expect-auth-failure the one check is that connecting is refused promptly (HTTP 401 surfaced
as an error), as it must be without a valid key. Each check prints `PASS name` or `FAIL name: reason` (and appends the same line to
$E2E_RESULTS when set); the exit status is 1 if any check failed.

    python_client.py --url http://127.0.0.1:PORT/mcp [--header 'X-API-Key: k']... \
        [--mode auto|legacy|2026-07-28] [--label NAME] [--timeout SECONDS]
        [--expect-user USER_ID | --expect-auth-failure]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import traceback
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

RESULTS: list[tuple[str, bool, str]] = []


def record(name: str, ok: bool, reason: str = "") -> None:
    RESULTS.append((name, ok, reason))
    line = f"PASS {name}" if ok else f"FAIL {name}: {reason}"
    print(line, flush=True)
    results_file = os.environ.get("E2E_RESULTS")
    if results_file:
        with open(results_file, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def parse_header(value: str) -> tuple[str, str]:
    name, sep, val = value.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {value!r}")
    return name.strip(), val.strip()


def texts(result: Any) -> list[str]:
    return [block.text for block in result.content if getattr(block, "type", None) == "text"]


def numbers_in(value: Any) -> list[float]:
    """Every number in a JSON-ish value or in the text of it."""
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, str):
        return [float(m) for m in re.findall(r"-?\d+(?:\.\d+)?", value)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers_in(v)]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in numbers_in(v)]
    return []


async def run(args: argparse.Namespace) -> None:
    p = f"python/{args.label}"
    headers = dict(args.header)
    kwargs: dict[str, Any] = {"read_timeout_seconds": args.timeout}
    if args.mode:
        kwargs["mode"] = args.mode  # default: leave the SDK's own default ("auto") in force

    # Headers go on the httpx2 client that the Streamable HTTP transport uses; a client passed
    # in is not closed by the transport, so it is managed here.
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(args.timeout, read=args.timeout * 2))
    async with http:
        transport = streamable_http_client(args.url, http_client=http)
        if args.expect_auth_failure:
            await expect_refused(transport, kwargs, args, p)
            return
        try:
            with anyio.fail_after(args.timeout * 3):
                async with Client(transport, **kwargs) as client:
                    session = client.session
                    how = "discover" if getattr(session, "discover_result", None) is not None else "initialize"
                    info = client.server_info
                    record(f"{p}/connect", True)
                    print(
                        f"  negotiated {client.protocol_version} via {how}"
                        f" with {getattr(info, 'name', '?')} {getattr(info, 'version', '')}".rstrip(),
                        flush=True,
                    )
                    await checks(client, p, args)
        except Exception as e:  # connect failed (or a check raised past its own handling)
            if not any(name == f"{p}/connect" for name, _, _ in RESULTS):
                record(f"{p}/connect", False, describe(e))
                for name in ("tools-list", "echo", "add", "unknown-tool"):
                    record(f"{p}/{name}", False, "not run: no connection")
            else:
                record(f"{p}/session", False, describe(e))


async def expect_refused(transport: Any, kwargs: dict[str, Any], args: argparse.Namespace, p: str) -> None:
    """Connecting must fail with an error (not hang, not succeed)."""
    try:
        with anyio.fail_after(args.timeout):
            async with Client(transport, **kwargs) as client:
                await client.list_tools()
        record(f"{p}/refused", False, "connected and listed tools without a valid credential")
    except TimeoutError:
        record(f"{p}/refused", False, f"no answer within {args.timeout}s (a hang, not a refusal)")
    except Exception as e:
        text = describe(e)
        if isinstance(e, MCPError) or "401" in text or "API key" in text or "unauthor" in text.lower() or "invalid token" in text:
            record(f"{p}/refused", True)
            print(f"  refused: {text[:200]}", flush=True)
        else:
            record(f"{p}/refused", False, f"failed, but not as an auth refusal: {text}")


def describe(e: BaseException) -> str:
    if isinstance(e, BaseExceptionGroup):
        return "; ".join(describe(x) for x in e.exceptions)
    if isinstance(e, TimeoutError):
        return "timed out"
    return f"{type(e).__name__}: {e}"


async def checks(client: Client, p: str, args: argparse.Namespace) -> None:
    # tools/list
    try:
        listed = await client.list_tools()
        names = {t.name for t in listed.tools}
        missing = {"echo", "add"} - names
        if missing:
            record(f"{p}/tools-list", False, f"missing {sorted(missing)}; listed {sorted(names)}")
        else:
            record(f"{p}/tools-list", True)
            print(f"  {len(names)} tools: {', '.join(sorted(names))}", flush=True)
    except Exception as e:
        record(f"{p}/tools-list", False, describe(e))

    # tools/call echo
    text = "hello from the Python SDK ✓ <&>"
    try:
        r = await client.call_tool("echo", {"text": text})
        got = texts(r)
        if r.is_error:
            record(f"{p}/echo", False, f"isError: {got}")
        elif any(text in t for t in got) or text in str(r.structured_content or ""):
            record(f"{p}/echo", True)
        else:
            record(f"{p}/echo", False, f"expected {text!r} back, got {got!r}")
    except Exception as e:
        record(f"{p}/echo", False, describe(e))

    # tools/call add
    try:
        r = await client.call_tool("add", {"a": 20, "b": 22})
        got = texts(r)
        if r.is_error:
            record(f"{p}/add", False, f"isError: {got}")
        elif 42.0 in numbers_in(got) + numbers_in(r.structured_content):
            record(f"{p}/add", True)
        else:
            record(f"{p}/add", False, f"expected 42, got text {got!r}, structured {r.structured_content!r}")
    except Exception as e:
        record(f"{p}/add", False, describe(e))

    # the gateway's whoami tool: who the gateway authenticated us as
    if args.expect_user is not None:
        try:
            r = await client.call_tool("whoami", {})
            who = r.structured_content if isinstance(r.structured_content, dict) else {}
            if not who:
                for t in texts(r):
                    try:
                        who = json.loads(t)
                        break
                    except ValueError:
                        pass
            if r.is_error:
                record(f"{p}/whoami", False, f"isError: {texts(r)}")
            elif isinstance(who, dict) and who.get("user_id") == args.expect_user:
                record(f"{p}/whoami", True)
            else:
                record(f"{p}/whoami", False, f"expected user_id {args.expect_user!r}, got {who or texts(r)!r}")
        except Exception as e:
            record(f"{p}/whoami", False, describe(e))

    # an unknown tool: a JSON-RPC error or an isError result, promptly
    try:
        r = await client.call_tool("no_such_tool_e2e", {})
        if r.is_error:
            record(f"{p}/unknown-tool", True)
        else:
            record(f"{p}/unknown-tool", False, f"succeeded: {texts(r)!r}")
    except MCPError:
        record(f"{p}/unknown-tool", True)
    except Exception as e:
        record(f"{p}/unknown-tool", False, describe(e))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="MCP endpoint, e.g. http://127.0.0.1:8080/mcp")
    ap.add_argument(
        "--header", action="append", type=parse_header, default=[], metavar="'Name: value'",
        help="extra HTTP header on every request (repeatable), e.g. 'X-API-Key: mcp_x_y'",
    )
    ap.add_argument("--mode", default=None, help="Client mode; default: the SDK's default (auto)")
    ap.add_argument("--label", default="default", help="name prefix for the checks")
    ap.add_argument("--timeout", type=float, default=20.0, help="per-request timeout in seconds")
    ap.add_argument("--expect-user", default=None, help="check that the gateway's whoami tool names this user_id")
    ap.add_argument(
        "--expect-auth-failure", action="store_true",
        help="the only check: connecting must be refused (no or a bad credential)",
    )
    args = ap.parse_args()
    try:
        anyio.run(run, args)
    except Exception:
        traceback.print_exc()
        record(f"python/{args.label}/run", False, "unexpected exception (see traceback)")
    failed = sum(1 for _, ok, _ in RESULTS if not ok)
    return 1 if failed or not RESULTS else 0


if __name__ == "__main__":
    sys.exit(main())
