"""The gateway's resource URI mapping, as the conformance adapter's pluggable `UriMapping`.

The suite knows the fixture's URIs (`test://static-text`); the gateway serves them as
`mcpyard://fixture/test://static-text`. The rule is the gateway's own
(`mcpyard.compiler.naming`), called, not copied.

    python tests/conformance/adapter.py ... --uri-mapping uris:FixtureUris
"""

from __future__ import annotations

from mcpyard.compiler import naming

SLUG = "fixture"


class FixtureUris:
    def to_gateway(self, uri: str) -> str:
        return naming.resource_uri(SLUG, uri)

    def to_client(self, uri: str) -> str:
        parts = naming.split_uri(uri)
        return parts[1] if parts is not None and parts[0] == SLUG else uri
