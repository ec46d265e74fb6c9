#!/usr/bin/env python3
"""A recording MCP upstream on the official Python SDK (`mcp` 2.x), for tests-e2e/differential.sh.

It serves the differential suite's surface and appends one JSON line per execution to the
file given by --record (or $DIFF_RECORD), flushed at once:

    {"kind": "tool"|"resource"|"subscribe"|"prompt"|"completion", "target": NAME_OR_URI, "args": {...}}

Surface: tools `echo` {text} (returns text), `admin_tool`, `denied_tool`; resources
`test://public`, `test://admin` (read and subscribe); prompts `greet` {name}, `admin_prompt`;
`completion/complete` for either prompt and either resource.

Why this SDK is a good witness: its transports parse with pydantic (`pydantic_core.from_json`
over HTTP, `validate_json` per line over stdio), where a duplicated key keeps its LAST value,
and its stdio reader splits lines with Python's universal newlines (`\\n`, `\\r`, `\\r\\n`). A
gateway that decided on one reading of a body and forwarded the bytes would be caught here.

The low-level `Server` is used rather than `MCPServer` (FastMCP's new name in 2.x): both sit on
the same transports and parser, but only the low-level one takes a `resources/subscribe`
handler and hands the handler the arguments exactly as they arrived, which is what is recorded.

    upstream_python.py --stdio --record FILE
    upstream_python.py --http 127.0.0.1:0 --record FILE   # prints "listening on http://…/mcp"
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

TOOLS = {
    "echo": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    "admin_tool": {"type": "object", "properties": {}},
    "denied_tool": {"type": "object", "properties": {}},
}
RESOURCES = {"test://public": "public content", "test://admin": "admin content"}
PROMPTS = {"greet": ["name"], "admin_prompt": []}


class Recorder:
    """Appends one line per execution; a lock keeps concurrent handlers' lines whole."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
        self._lock = threading.Lock()

    def record(self, kind: str, target: str, args: Any) -> None:
        # ensure_ascii: U+2028 and friends stay escaped, so a line is a line for every reader.
        line = json.dumps({"kind": kind, "target": target, "args": args}, ensure_ascii=True) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()


def invalid(message: str) -> MCPError:
    return MCPError(code=types.INVALID_PARAMS, message=message)


def build(recorder: Recorder) -> Server[Any]:
    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[types.Tool(name=n, description=f"differential {n}", input_schema=s) for n, s in TOOLS.items()]
        )

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        args = dict(params.arguments or {})
        if params.name not in TOOLS:
            raise invalid(f"unknown tool {params.name!r}")
        text = f"{params.name} ran"
        if params.name == "echo":
            text = args.get("text")
            if not isinstance(text, str):
                raise invalid("echo needs a string argument 'text'")
        recorder.record("tool", params.name, args)
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)])

    async def list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
        return types.ListResourcesResult(
            resources=[types.Resource(uri=u, name=u.removeprefix("test://")) for u in RESOURCES]
        )

    async def read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        uri = str(params.uri)
        if uri not in RESOURCES:
            raise MCPError(code=-32002, message=f"no resource {uri!r}")
        recorder.record("resource", uri, {})
        return types.ReadResourceResult(contents=[types.TextResourceContents(uri=uri, text=RESOURCES[uri])])

    async def subscribe(ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
        uri = str(params.uri)
        if uri not in RESOURCES:
            raise MCPError(code=-32002, message=f"no resource {uri!r}")
        recorder.record("subscribe", uri, {})
        return types.EmptyResult()

    async def unsubscribe(ctx: Any, params: Any) -> types.EmptyResult:
        return types.EmptyResult()

    async def list_prompts(ctx: Any, params: Any) -> types.ListPromptsResult:
        return types.ListPromptsResult(
            prompts=[
                types.Prompt(name=n, arguments=[types.PromptArgument(name=a, required=True) for a in args])
                for n, args in PROMPTS.items()
            ]
        )

    async def get_prompt(ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        args = dict(params.arguments or {})
        if params.name not in PROMPTS:
            raise invalid(f"unknown prompt {params.name!r}")
        if params.name == "greet" and not isinstance(args.get("name"), str):
            raise invalid("greet needs a string argument 'name'")
        recorder.record("prompt", params.name, args)
        text = f"{params.name}: {json.dumps(args, sort_keys=True)}"
        return types.GetPromptResult(
            messages=[types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))]
        )

    async def complete(ctx: Any, params: types.CompleteRequestParams) -> types.CompleteResult:
        ref = params.ref
        target = getattr(ref, "name", None) if ref.type == "ref/prompt" else str(getattr(ref, "uri", ""))
        if target not in PROMPTS and target not in RESOURCES:
            return types.CompleteResult(completion=types.Completion(values=[]))
        recorder.record("completion", target, {"argument": params.argument.name, "value": params.argument.value})
        return types.CompleteResult(completion=types.Completion(values=[f"{target}-suggestion"]))

    return Server(
        "differential-python",
        version="1",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
        on_subscribe_resource=subscribe,
        on_unsubscribe_resource=unsubscribe,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
        on_completion=complete,
    )


async def serve_stdio(server: Server[Any]) -> None:
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


async def serve_http(server: Server[Any], address: str) -> None:
    import uvicorn

    host, _, port = address.rpartition(":")
    # Bind here so that port 0 becomes a real port we can print before serving.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    # Listening before the line is printed: a client that connects before uvicorn has started
    # waits in the backlog instead of being refused.
    sock.listen(128)
    app = server.streamable_http_app(host=host)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    print(f"listening on http://{host}:{sock.getsockname()[1]}/mcp", file=sys.stderr, flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--stdio", action="store_true", help="serve on stdin/stdout (default)")
    how.add_argument("--http", metavar="HOST:PORT", help="serve Streamable HTTP at http://HOST:PORT/mcp")
    ap.add_argument("--record", default=os.environ.get("DIFF_RECORD"), help="file to append executions to")
    args = ap.parse_args()
    if not args.record:
        ap.error("--record FILE (or DIFF_RECORD) is required")
    server = build(Recorder(args.record))
    if args.http:
        anyio.run(serve_http, server, args.http)
    else:
        anyio.run(serve_stdio, server)


if __name__ == "__main__":
    main()
