# The real third-party MCP servers and clients of the interop matrix (pinned in
# tools/interop/package-lock.json); the PyPI ones come with the `test` extra.
bash tools/interop/setup.sh
