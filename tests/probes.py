"""Raw MCP request bodies for tests that probe an endpoint below the SDK (a status code, a
refusal), so each is written once."""

from __future__ import annotations

from typing import Any


def initialize_body(client: str = "probe", version: str = "2025-06-18") -> dict[str, Any]:
    """A handshake-era ``initialize`` request (id 1) from a client that declares nothing."""
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": client, "version": "0"},
        },
    }
