#!/usr/bin/env bash
# Install the hub entries that the tests start without outside network:
# the npm ones exactly as tools/hub/package-lock.json pins them (install scripts off: no
# browser or binary downloads), the PyPI ones each into its own venv under ~/.cache/mcpyard/hub
# (tests/hub/servers.py lists both). Idempotent and fast when already installed.
#   bash tools/hub/setup.sh        (from anywhere; needs .venv with the test extra)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root/tools/hub"
stamp=node_modules/.mcpyard-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if ! { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; }; then
  command -v npm >/dev/null || { echo "tools/hub/setup.sh: npm is needed (apt-get install nodejs npm)" >&2; exit 1; }
  npm ci --no-audit --no-fund --loglevel=error --ignore-scripts
  echo "$want" > "$stamp"
fi
cd "$root"
.venv/bin/python -m tests.hub.servers install
