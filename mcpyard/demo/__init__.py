"""A small demo MCP server for the quick start, built with the official MCP SDK.

``python -m mcpyard.demo`` serves it over stdio; ``--transport streamable-http --port P``
serves it at ``http://HOST:P/mcp``, optionally behind a bearer token (``--token-env NAME``).
Its tools are deterministic and need no network: ``echo``, ``add``, ``word_count``, ``fail``
(a tool that fails on purpose, so a client sees ``isError``) and ``whoami`` (which
Authorization header reached the server, shown without its secret part, to prove that a
gateway injects credentials). It is a fixture for trying a gateway, not part of one.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.types import ASGIApp, Receive, Scope, Send

NAME = "mcpyard-demo"
README = """\
mcpyard demo server

Tools: echo(text), add(a, b), word_count(text), fail(message), whoami().
Resource: demo://readme (this text). Prompt: summarize(text).
"""


def describe_authorization(value: str | None) -> str:
    """What an Authorization header looks like, without giving away the credential.

    ``none`` when absent; otherwise the scheme, the first characters of the credential and
    its length. At most 4 characters and never more than half of the credential are shown,
    so even a short one is never printed whole.
    """
    if not value or not value.strip():
        return "none"
    scheme, _, credential = value.strip().partition(" ")
    credential = credential.strip()
    if not credential:
        # A bare value without a scheme: treat the whole value as the credential.
        scheme, credential = "(no scheme)", scheme
    shown = credential[: min(4, len(credential) // 2)]
    plural = "" if len(credential) == 1 else "s"
    return f"{scheme} {shown}… ({len(credential)} character{plural})"


def build_server() -> MCPServer:
    """The demo server with its tools, resource and prompt."""
    server = MCPServer(
        NAME,
        title="mcpyard demo",
        instructions="A demo server for trying mcpyard; every tool is deterministic.",
        version="1.0.0",
    )

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool()
    def add(a: int | float, b: int | float) -> int | float:
        """Add two numbers."""
        return a + b

    @server.tool()
    def word_count(text: str) -> int:
        """Count the words (runs of non-space characters) in the text."""
        return len(text.split())

    @server.tool()
    def fail(message: str) -> str:
        """Fail on purpose with the given message; the client gets a result with isError."""
        raise ToolError(message)

    @server.tool()
    def whoami(ctx: Context) -> str:
        """Which Authorization header reached this server: "none", or its scheme, the first
        characters of the credential and its length (never the whole credential)."""
        headers: Mapping[str, str] | None = ctx.headers
        return describe_authorization(headers.get("authorization") if headers else None)

    @server.resource("demo://readme", name="readme", mime_type="text/plain")
    def readme() -> str:
        """What this demo server offers."""
        return README

    @server.prompt()
    def summarize(text: str) -> str:
        """Ask the model to summarize a text in one sentence."""
        return f"Summarize the following text in one sentence:\n\n{text}"

    return server


class BearerAuth:
    """Pure ASGI: let HTTP requests through only with ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan must reach the app (it starts the sessions)
            await self.app(scope, receive, send)
            return
        header = b""
        for key, value in scope["headers"]:
            if key == b"authorization":
                header = value
                break
        scheme, _, credential = header.partition(b" ")
        if not header:
            await _unauthorized(send, b'Bearer realm="mcpyard-demo"')
        elif scheme.lower() != b"bearer" or not hmac.compare_digest(
            credential.strip(), self._token
        ):
            await _unauthorized(send, b'Bearer realm="mcpyard-demo", error="invalid_token"')
        else:
            await self.app(scope, receive, send)


async def _unauthorized(send: Send, challenge: bytes) -> None:
    body = b'{"error":"unauthorized"}'
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", challenge),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


__all__ = ["NAME", "README", "BearerAuth", "build_server", "describe_authorization"]
