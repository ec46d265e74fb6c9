#!/usr/bin/env python3
"""The official MCP Python SDK client against examples/embedded-server: an rmcp server in the
same process as mcpgate's layer (mcpgate-layer), not behind a separate gateway.

Checks: connect; tools/list shows `count`, and `admin_reset` only with --admin; tools/call count
answers with the caller the layer verified (the tool reads it from the request's extensions);
admin_reset is answered for an admin and refused (403, JSON-RPC error "insufficient role") for
anyone else. With --expect-auth-failure, connecting must be refused promptly.

    embedded_client.py --url http://127.0.0.1:PORT/mcp --header 'X-API-Key: k' \
        --label NAME (--expect-user USER [--admin] | --expect-auth-failure)
"""

from __future__ import annotations

import argparse
import os
import sys

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from python_client import RESULTS, describe, expect_refused, parse_header, record, texts  # noqa: E402


async def checks(client: Client, p: str, args: argparse.Namespace) -> None:
    tools = {t.name for t in (await client.list_tools()).tools}
    want_admin = args.admin
    if "count" in tools and ("admin_reset" in tools) == want_admin:
        record(f"{p}/tools-list", True)
    else:
        record(f"{p}/tools-list", False, f"admin={want_admin}, listed {sorted(tools)}")

    r = await client.call_tool("count", {})
    got = " ".join(texts(r))
    if not r.is_error and f"by {args.expect_user} " in got:
        record(f"{p}/caller-in-tool", True)
    else:
        record(f"{p}/caller-in-tool", False, f"expected 'by {args.expect_user}', got {got!r}")

    try:
        r = await client.call_tool("admin_reset", {})
        got = " ".join(texts(r))
        if want_admin and not r.is_error and f"reset by {args.expect_user} " in got:
            record(f"{p}/admin-tool", True)
        else:
            record(f"{p}/admin-tool", False, f"admin={want_admin}, answered {got!r} (error={r.is_error})")
    except Exception as e:
        text = describe(e)
        if not want_admin and "insufficient role" in text:
            record(f"{p}/admin-tool", True)
            print(f"  refused: {text[:160]}", flush=True)
        else:
            record(f"{p}/admin-tool", False, f"admin={want_admin}, raised {text}")


async def run(args: argparse.Namespace) -> None:
    p = f"embedded/{args.label}"
    http = httpx2.AsyncClient(headers=dict(args.header), timeout=httpx2.Timeout(args.timeout, read=args.timeout * 2))
    async with http:
        transport = streamable_http_client(args.url, http_client=http)
        kwargs = {"read_timeout_seconds": args.timeout}
        if args.expect_auth_failure:
            await expect_refused(transport, kwargs, args, p)
            return
        try:
            with anyio.fail_after(args.timeout * 3):
                async with Client(transport, **kwargs) as client:
                    record(f"{p}/connect", True)
                    await checks(client, p, args)
        except Exception as e:
            if not any(name == f"{p}/connect" for name, _, _ in RESULTS):
                record(f"{p}/connect", False, describe(e))
            else:
                record(f"{p}/session", False, describe(e))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--header", action="append", default=[], type=parse_header)
    ap.add_argument("--label", default="default")
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--expect-user", default=None)
    ap.add_argument("--admin", action="store_true")
    ap.add_argument("--expect-auth-failure", action="store_true")
    args = ap.parse_args()
    try:
        anyio.run(run, args)
    except Exception as e:
        record(f"embedded/{args.label}/run", False, describe(e))
    return 0 if all(ok for _, ok, _ in RESULTS) and RESULTS else 1


if __name__ == "__main__":
    sys.exit(main())
