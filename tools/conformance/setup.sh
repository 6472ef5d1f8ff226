#!/usr/bin/env bash
# Install the MCP conformance suite (0.1.16 and 0.2.0-alpha.12) and the Node 22 runtime it
# needs into tools/conformance/node_modules, exactly as package-lock.json pins them.
#   bash tools/conformance/setup.sh
set -euo pipefail
exec bash "$(dirname "$0")/../npm-ci.sh" "$(dirname "$0")"
