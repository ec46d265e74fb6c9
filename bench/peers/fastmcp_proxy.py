"""FastMCP proxy for bench/run's `fastmcp` target.

FastMCP's documented proxy (`fastmcp.server.create_proxy(URL)`) in front of the fast HTTP
upstream, served over Streamable HTTP at http://127.0.0.1:PORT/mcp, with FastMCP's documented
bearer-token check (`JWTVerifier`, HS256 with a shared secret, audience = that URL).

    python fastmcp_proxy.py UPSTREAM_URL PORT AUDIENCE   # the secret comes from $BENCH_JWT_SECRET

Everything else is FastMCP's default (as a user following its docs would run it).
"""

import os
import sys

from fastmcp.server import create_proxy
from fastmcp.server.auth.providers.jwt import JWTVerifier


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    upstream, port, audience = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    secret = os.environ.get("BENCH_JWT_SECRET", "")
    if not secret:
        print("BENCH_JWT_SECRET is not set", file=sys.stderr)
        return 2
    verifier = JWTVerifier(public_key=secret, algorithm="HS256", audience=audience)
    proxy = create_proxy(upstream, name="mcpgate-bench-fastmcp", auth=verifier)
    proxy.run(
        transport="http",
        host="127.0.0.1",
        port=port,
        path="/mcp",
        show_banner=False,
        log_level="warning",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
