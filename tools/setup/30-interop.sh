# The real third-party MCP servers and clients of the interop matrix (tests/interop):
# server-everything, server-filesystem, server-memory, the MCP Inspector and the Node 22 it
# needs, pinned in tools/interop/package-lock.json. The PyPI ones come with the `test` extra.
bash tools/npm-ci.sh tools/interop
