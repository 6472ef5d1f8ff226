"""The format of a hub catalog entry (``mcpyard/hub/catalog/*.yaml``).

An entry says how a community MCP server runs and which secrets it needs; the compiler expands
``MCPServer.spec.hub`` through it into a hosted or proxied server.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from mcpyard.api.v1alpha1._base import Model, Slug
from mcpyard.api.v1alpha1.mcpserver import HttpUrl


class HubSecret(Model):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    """The environment variable (as: env) or header (as: header) that carries it."""
    as_: Literal["env", "header", "bearer"] = Field(alias="as")
    """How the server expects it."""
    description: str
    """What the value is and where a user gets one."""
    required: bool = True
    """Whether the server refuses to work without it."""


class HubEntry(Model):
    name: Slug
    """The catalog name used in MCPServer.spec.hub.name."""
    title: str
    """A short human-readable name."""
    description: str
    """What the server does, in one or two sentences."""
    homepage: HttpUrl
    """Where the server's source and docs live."""
    version: str
    """The version this entry pins."""
    package: str | None = Field(default=None, pattern=r"^(pypi|npm):\S+$")
    """The package that provides it, ``pypi:NAME`` or ``npm:NAME``."""
    transport: Literal["stdio", "streamable-http", "sse"]
    """How the gateway talks to it."""
    command: list[str] | None = Field(default=None, min_length=1)
    """How to start a stdio (or local HTTP) server; runs behind `mcpyard bridge` in a cluster."""
    image: str | None = None
    """A container image, when the project publishes one."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """The port of a hosted streamable-http server."""
    url: HttpUrl | None = None
    """A remote endpoint the project runs itself; the entry is then proxied."""
    env: dict[str, str] = Field(default_factory=dict)
    """Plain environment the server needs."""
    secrets: list[HubSecret] = Field(default_factory=list)
    """Credentials the server takes."""
    tags: list[str] = Field(default_factory=list)
    """Words for search."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.url is None and self.command is None and self.image is None:
            raise ValueError("an entry needs url (remote), command or image")
        if self.url is not None and self.transport == "stdio":
            raise ValueError("a remote (url) entry needs transport streamable-http or sse")
        if self.url is not None and any(s.as_ == "env" for s in self.secrets):
            raise ValueError("a remote (url) entry cannot take secrets as env")
        return self
