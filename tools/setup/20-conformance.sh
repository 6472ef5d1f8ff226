# The MCP conformance suite (pinned in tools/conformance/package-lock.json).
bash tools/conformance/setup.sh
