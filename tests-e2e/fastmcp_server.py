#!/usr/bin/env python3
"""A FastMCP (4.1.2, PyPI) server for tests-e2e/connect_fastmcp.sh: a protected Streamable HTTP
MCP server that is not mcpgate, for `mcpgate connect` to bridge to.

    fastmcp_server.py static PORT [--close-echo-streams]   # StaticTokenVerifier, token from $FASTMCP_TOKEN
    fastmcp_server.py jwt PORT [--close-echo-streams]      # JWTVerifier HS256, secret from $FASTMCP_JWT_SECRET,
                                                           # audience http://127.0.0.1:PORT/mcp

Served at http://127.0.0.1:PORT/mcp with FastMCP's own bearer check, and an EventStore (with a
short SSE retry interval) so that a response stream the server closes can be resumed with
Last-Event-ID. Tools:
  echo(text)  the text back; with --close-echo-streams it first closes its own SSE response
              stream (ctx.close_sse_stream()), so every answer reaches the client only on a
              resumed stream (GET with Last-Event-ID)
  whoami      what the verifier made of the token: {"user_id": client_id, "client_id", "scopes",
              "claims"} (claims without the token itself)
  ask_name    asks the client for a name (elicitation); answers "hello, NAME"
  summarize   asks the client's model (sampling: ctx.session.create_message; 4.1.2 has no
              ctx.sample) and returns its answer
  resume_me   closes its SSE response stream mid-call, then answers "resumed after close"
Prints "listening on http://127.0.0.1:PORT/mcp" on stderr once it accepts connections, and
"replayed events after <id>" each time a client resumes a stream.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastmcp import Context, FastMCP
from fastmcp.server.auth.providers.jwt import JWTVerifier, StaticTokenVerifier
from fastmcp.server.dependencies import get_access_token
from fastmcp.server.event_store import EventStore
from mcp import types

# A closed SSE stream is reconnected after this many milliseconds (the priming event's retry).
RETRY_MS = 300


class LoggingEventStore(EventStore):
    """FastMCP's in-memory EventStore, saying on stderr when a client resumes a stream."""

    async def replay_events_after(self, last_event_id: Any, send_callback: Any) -> Any:
        print(f"replayed events after {last_event_id}", file=sys.stderr, flush=True)
        return await super().replay_events_after(last_event_id, send_callback)


@dataclass
class Name:
    name: str


def build(mode: str, url: str, close_echo_streams: bool) -> FastMCP:
    if mode == "static":
        token = os.environ.get("FASTMCP_TOKEN", "")
        if not token:
            raise SystemExit("FASTMCP_TOKEN is not set")
        auth: Any = StaticTokenVerifier(tokens={token: {"client_id": "static-client", "scopes": ["read", "write"]}})
    elif mode == "jwt":
        secret = os.environ.get("FASTMCP_JWT_SECRET", "")
        if not secret:
            raise SystemExit("FASTMCP_JWT_SECRET is not set")
        auth = JWTVerifier(public_key=secret, algorithm="HS256", audience=url)
    else:
        raise SystemExit(f"unknown auth mode {mode!r} (static or jwt)")

    mcp = FastMCP("connect-e2e-fastmcp", auth=auth)

    @mcp.tool
    async def echo(text: str, ctx: Context) -> str:
        """Returns the text."""
        if close_echo_streams:
            await ctx.close_sse_stream()
            await asyncio.sleep(RETRY_MS / 1000 * 2)
        return text

    @mcp.tool
    def whoami() -> dict[str, Any]:
        """What the server's token verifier made of the caller's token."""
        tok = get_access_token()
        if tok is None:
            return {"user_id": None}
        return {"user_id": tok.client_id, "client_id": tok.client_id, "scopes": list(tok.scopes), "claims": tok.claims}

    @mcp.tool
    async def ask_name(ctx: Context) -> str:
        """Asks the client for a name (elicitation)."""
        r = await ctx.elicit("What is your name?", response_type=Name)
        if r.action != "accept":
            return f"no name ({r.action})"
        return f"hello, {r.data.name}"

    @mcp.tool
    async def summarize(text: str, ctx: Context) -> str:
        """Asks the client's model for a summary (sampling)."""
        r = await ctx.session.create_message(
            messages=[types.SamplingMessage(role="user", content=types.TextContent(type="text", text=f"Summarize: {text}"))],
            max_tokens=100,
        )
        content = r.content
        return getattr(content, "text", str(content))

    @mcp.tool
    async def resume_me(ctx: Context) -> str:
        """Closes its own SSE response stream mid-call; the answer arrives on the resumed stream."""
        await ctx.close_sse_stream()
        await asyncio.sleep(RETRY_MS / 1000 * 2)
        return "resumed after close"

    return mcp


async def serve(mcp: FastMCP, port: int, url: str) -> None:
    app = mcp.http_app(path="/mcp", event_store=LoggingEventStore(), retry_interval=RETRY_MS)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            raise SystemExit("uvicorn stopped before it was listening")
        await asyncio.sleep(0.05)
    print(f"listening on {url}", file=sys.stderr, flush=True)
    await task


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    flags = {a for a in sys.argv[1:] if a.startswith("--")}
    if len(args) != 2 or flags - {"--close-echo-streams"}:
        print(__doc__, file=sys.stderr)
        return 2
    mode, port = args[0], int(args[1])
    url = f"http://127.0.0.1:{port}/mcp"
    mcp = build(mode, url, "--close-echo-streams" in flags)
    asyncio.run(serve(mcp, port, url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
