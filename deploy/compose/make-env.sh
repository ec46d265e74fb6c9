#!/bin/sh
# Writes deploy/compose/.env with fresh random secrets: a PostgreSQL password, the sealing key
# and two API keys (an admin key and a read-only key), and prints the API keys once.
# Refuses to overwrite an existing .env.
set -eu
cd "$(dirname "$0")"
if [ -e .env ]; then
    echo "make-env.sh: .env exists; remove it first to make new secrets" >&2
    exit 1
fi
hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
admin="mcp_admin_$(hex 32)"
reader="mcp_reader_$(hex 32)"
umask 077
cat > .env <<ENV
POSTGRES_PASSWORD=$(hex 24)
MCPGATE_ENCRYPTION_KEY=$(hex 32)
MCP_API_KEYS='{"$admin": {"name": "compose admin", "userId": "admin", "role": "admin", "permissions": ["*"]}, "$reader": {"name": "compose reader", "userId": "reader", "role": "user", "permissions": ["read"], "rateLimit": {"requestsPerMinute": 60}}}'
ENV
echo "wrote $(pwd)/.env (mode 0600)"
echo "admin key (every tool):            $admin"
echo "read-only key (echo, add; 60/min): $reader"
