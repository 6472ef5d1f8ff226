"""MCPServer: an MCP server of a workspace, hosted, proxied or installed from the hub."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, ClassVar, Literal, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, model_validator

from mcpyard.api.v1alpha1._base import Condition, Glob, Model, Name, Resource, Slug

_HEADER = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")
# Headers the gateway owns on the upstream hop; a secret may not replace them.
RESERVED_HEADERS = frozenset(
    {"host", "content-type", "content-length", "accept", "mcp-session-id",
     "mcp-protocol-version", "connection", "transfer-encoding"}
)


def check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise ValueError("credentials do not belong in the URL; use secrets")
    return value


HttpUrl = Annotated[str, AfterValidator(check_http_url)]


class ProxySource(Model):
    url: HttpUrl
    """The upstream MCP endpoint, e.g. https://mcp.example.com/mcp."""
    transport: Literal["streamable-http", "sse"] = "streamable-http"
    """streamable-http, or sse for the legacy HTTP+SSE transport (the URL of the SSE stream)."""
    timeout_seconds: float = Field(default=30, gt=0, le=3600)
    """How long one upstream request may take."""


class HostedSource(Model):
    image: str | None = Field(default=None, min_length=1)
    """The container image run in a cluster; default the runner image. A stdio server's image
    must contain `mcpyard bridge` (build it FROM the runner image)."""
    command: list[str] | None = Field(default=None, min_length=1)
    """The command that starts a stdio server: spawned by `mcpyard serve`, run behind
    `mcpyard bridge` in a cluster."""
    transport: Literal["stdio", "streamable-http"] = "stdio"
    """stdio, or streamable-http (then `port`)."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """The port a streamable-http server listens on."""
    path: str = Field(default="/mcp", pattern=r"^/")
    """The MCP endpoint path of a streamable-http server."""
    replicas: int = Field(default=1, ge=0, le=100)
    """Pods of the server in a cluster."""
    env: dict[str, str] = Field(default_factory=dict)
    """Plain (non-secret) environment variables."""
    timeout_seconds: float = Field(default=30, gt=0, le=3600)
    """How long one upstream request may take."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.image is None and self.command is None:
            raise ValueError("set image (in a cluster), command (stdio), or both")
        if self.transport == "streamable-http" and self.port is None:
            raise ValueError("transport streamable-http needs port")
        if self.transport == "stdio" and self.port is not None:
            raise ValueError("port is only used with transport streamable-http")
        for name in self.env:
            if not _ENV.fullmatch(name):
                raise ValueError(f"env: {name!r} is not a valid environment variable name")
        return self


class HubSource(Model):
    name: Slug
    """An entry of the built-in catalog (`mcpyard hub list`)."""
    version: str | None = None
    """The entry version to install; default the catalog's current one."""
    env: dict[str, str] = Field(default_factory=dict)
    """Plain environment variables added to the entry's own."""


class SecretKeyRef(Model):
    name: Name
    """An EncryptedSecret in the server's namespace."""
    key: str = Field(pattern=_SECRET_KEY.pattern, max_length=253)
    """A key of its stringData."""


class SecretInjection(Model):
    secret_ref: SecretKeyRef
    """Which value to inject."""
    as_: Literal["bearer", "header", "env"] = Field(alias="as")
    """bearer (Authorization: Bearer VALUE), header (with `header`) or env (hosted, with `env`)."""
    header: str | None = None
    """The HTTP header carrying the value when `as: header`, e.g. X-Api-Key."""
    env: str | None = None
    """The environment variable carrying the value when `as: env`."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.as_ == "header":
            if not self.header:
                raise ValueError("as: header needs header (the header name)")
            if not _HEADER.fullmatch(self.header):
                raise ValueError(f"header: {self.header!r} is not a valid HTTP header name")
            if self.header.lower() in RESERVED_HEADERS | {"authorization"}:
                raise ValueError(f"header: {self.header} is set by the gateway itself")
        elif self.header is not None:
            raise ValueError("header is only used with as: header")
        if self.as_ == "env":
            if not self.env:
                raise ValueError("as: env needs env (the variable name)")
            if not _ENV.fullmatch(self.env):
                raise ValueError(f"env: {self.env!r} is not a valid environment variable name")
        elif self.env is not None:
            raise ValueError("env is only used with as: env")
        return self


ToolHash = Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]


class ToolFilter(Model):
    include: list[Glob] = Field(default_factory=lambda: ["*"])
    """Globs over the server's own tool names to expose; default all."""
    exclude: list[Glob] = Field(default_factory=list)
    """Globs over the server's own tool names to hide; wins over include."""
    pin: dict[str, ToolHash] | None = None
    """Pinned tool definitions: the server's own tool name -> the hash of its reviewed
    definition (`mcpyard pin DIR` writes them). When set, a tool whose definition no longer
    matches its hash, or that has none, is withheld from members and reported until the pin
    is updated."""


class MCPServerSpec(Model):
    workspace: Name
    """A Workspace in the same namespace."""
    slug: Slug | None = None
    """The tool prefix (slug__tool), unique in the workspace; default metadata.name."""
    proxy: ProxySource | None = None
    """Proxy to a server that already runs elsewhere."""
    hosted: HostedSource | None = None
    """Run the server: a Deployment in a cluster, a child process under `mcpyard serve`."""
    hub: HubSource | None = None
    """Install an entry of the built-in catalog."""
    secrets: list[SecretInjection] = Field(default_factory=list)
    """Credentials injected at request time; their values never leave the gateway."""
    tools: ToolFilter | None = None
    """Optional filters on the server's own tool names."""
    protocol_era: Literal["auto", "handshake", "modern"] = "auto"
    """The MCP protocol era the gateway speaks to this server. auto: the handshake era
    (initialize, 2025-11-25) whenever the server serves it, since only there can a tool ask
    its client on the back-channel, and 2026-07-28 only to a server that refuses initialize;
    a 2026-07-28 client's tools/call, prompts/get and resources/read to a server of both eras
    go in 2026-07-28 (its input-required results reach the client unchanged), and again in the
    handshake era when the server has no back-channel there (-32600); handshake: always
    initialize; modern: always 2026-07-28 (streamable-http only), for a server that misbehaves
    in the handshake era. The era in use shows in the gateway's /readyz. Clients of either era
    are served either way."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.protocol_era == "modern" and (
                (self.proxy is not None and self.proxy.transport != "streamable-http")
                or (self.hosted is not None and self.hosted.transport != "streamable-http")):
            raise ValueError("protocolEra: modern (2026-07-28) is spoken over streamable-http "
                             "only; use auto or handshake for this transport")
        modes = [m for m in ("proxy", "hosted", "hub") if getattr(self, m) is not None]
        if len(modes) != 1:
            found = ", ".join(modes) if modes else "none"
            raise ValueError(f"set exactly one of proxy, hosted, hub (found: {found})")
        seen: dict[tuple[str, str], int] = {}
        for i, s in enumerate(self.secrets):
            target = (s.as_, (s.header or "").lower() if s.as_ == "header" else s.env or "")
            if target in seen:
                where = {"bearer": "Authorization", "header": s.header, "env": s.env}[s.as_]
                raise ValueError(f"secrets[{i}]: {where} is already set by secrets[{seen[target]}]")
            seen[target] = i
        if self.proxy is not None:
            for i, s in enumerate(self.secrets):
                if s.as_ == "env":
                    raise ValueError(
                        f"secrets[{i}]: as: env only works for hosted servers; "
                        "a proxied server takes bearer or header"
                    )
        return self


class DiscoveredTool(Model):
    name: str
    """The server's own tool name."""
    description: str | None = None
    """The tool's description, as the server gives it."""


class ManifestRef(Model):
    """Where the operator stored the server's capability manifest (docs/discovery.md)."""

    config_map: str
    """The ConfigMap next to the MCPServer, ``mcp-NAME-manifest`` (owned by it), whose key
    ``manifest.json`` holds the manifest (docs/schemas/manifest.schema.json)."""
    digest: str
    """``sha256:HEX`` of that JSON text: it changes exactly when the manifest does."""


class NegotiatedProtocol(Model):
    """The MCP protocol spoken to the server, as the last tool discovery negotiated it
    (docs/compatibility.md)."""

    era: Literal["handshake", "modern"]
    """handshake: ``initialize`` (2025-03-26 .. 2025-11-25); modern: ``server/discover``
    (2026-07-28). Chosen by ``spec.protocolEra`` as the gateway chooses it: auto speaks the
    handshake era to a server that serves it."""
    version: str
    """The protocol version agreed on, e.g. ``2025-11-25``."""


class MCPServerStatus(Model):
    observed_generation: int | None = None
    """The metadata.generation the status was computed from."""
    slug: str | None = None
    """The effective slug, the prefix of this server's tools."""
    mode: Literal["proxy", "hosted", "hub"] | None = None
    """How the server runs."""
    endpoint: str | None = None
    """Where the gateway reaches the server (a URL, or stdio)."""
    transport: str | None = None
    """streamable-http, sse or stdio."""
    tools: list[DiscoveredTool] | None = None
    """The tools last discovered on the server."""
    tool_count: int | None = None
    """How many of its tools the workspace exposes."""
    last_refresh: datetime | None = None
    """When the tools were last discovered."""
    protocol: NegotiatedProtocol | None = None
    """The era and protocol version the last tool discovery spoke to the server."""
    manifest: ManifestRef | None = None
    """The capability manifest built from the last discovery, refreshed with it."""
    conditions: list[Condition] = Field(default_factory=list)
    """Accepted, ResolvedRefs, Programmed and Ready; after a tool discovery also
    ToolsChanged (True when a tool was added, removed or its definition changed since the
    refresh before) and, when ``spec.tools.pin`` is set, ToolsPinned (False, reason
    PinMismatch, naming the tools withheld because they no longer match their pins)."""


class MCPServer(Resource):
    """An MCP server of a workspace: hosted in the cluster, proxied, or from the hub."""

    KIND: ClassVar[str] = "MCPServer"
    PLURAL: ClassVar[str] = "mcpservers"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("mcps",)

    kind: Literal["MCPServer"] = "MCPServer"
    spec: MCPServerSpec

    @property
    def slug(self) -> str:
        """spec.slug, or metadata.name (checked as a slug by the compiler)."""
        return self.spec.slug or self.metadata.name
