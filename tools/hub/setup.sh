#!/usr/bin/env bash
# Install the hub entries that the tests start without outside network:
# the npm ones exactly as tools/hub/package-lock.json pins them (install scripts off: no
# browser or binary downloads; optional dependencies off: mongodb-mcp-server's MCP-UI package
# would add ~200 MB of bun binaries that nothing here runs), the PyPI ones each into its own
# venv under ~/.cache/mcpyard/hub (tests/hub/servers.py lists both). They run on the Node 22
# that tools/interop pins (tools/setup/30-interop.sh). Idempotent and fast when installed.
#   bash tools/hub/setup.sh        (from anywhere; needs .venv with the test extra)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root/tools/hub"
stamp=node_modules/.mcpyard-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if ! { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; }; then
  command -v npm >/dev/null || { echo "tools/hub/setup.sh: npm is needed (apt-get install nodejs npm)" >&2; exit 1; }
  npm ci --no-audit --no-fund --loglevel=error --ignore-scripts --omit=optional --engine-strict=false
  echo "$want" > "$stamp"
fi
cd "$root"
.venv/bin/python -m tests.hub.servers install
