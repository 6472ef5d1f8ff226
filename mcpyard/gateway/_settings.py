"""Settings of one gateway process: where the configuration comes from and how it serves."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mcpyard.compiler.config import WorkspaceConfig

if TYPE_CHECKING:
    from mcpyard.gateway._upstreams import Factory
    from mcpyard.gateway.sources import Source


@dataclass(frozen=True)
class Settings:
    """What :func:`mcpyard.gateway.build_app` needs.

    The configuration comes from a folder of manifests (``manifests``; watched and
    reloaded), from a :class:`~mcpyard.gateway.sources.Source` (``source``: the cluster's
    config Secrets), or, for embedding and tests, from ready :class:`WorkspaceConfig` objects
    (``workspaces``, with plain ``secrets`` values by identity ``namespace/name/key``).
    """

    manifests: Path | None = None
    """The folder of manifests ``mcpyard serve`` runs on; also the workdir of spawned servers."""
    workspaces: Mapping[str, WorkspaceConfig] | None = None
    """A fixed configuration, used when ``manifests`` and ``source`` are None."""
    source: Source | None = None
    """A live source of compiled configurations (``mcpyard gateway``: the cluster)."""
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Secret values by identity for a fixed configuration; sealed into the vault at start."""
    host: str = "127.0.0.1"
    port: int = 8080
    state_dir: Path = Path(".mcpyard")
    """Holds the master key of the vault (unless ``source`` provides it) and the call log
    (``calls.db``)."""
    age_key_file: Path | None = None
    age_key: str | None = field(default=None, repr=False)
    allowed_origins: tuple[str, ...] = ()
    """Origins allowed besides loopback ones (``https://app.example.com``); ``*`` allows any."""
    allowed_hosts: tuple[str, ...] = ()
    """``Host`` names allowed besides loopback ones. Bound to a loopback address the gateway
    checks every request's ``Host`` (DNS rebinding); elsewhere only when some are given."""
    admin_port: int | None = None
    """Serve ``/readyz`` and ``/metrics`` on this port only (same host), not on ``port``:
    they name workspaces, servers and upstream errors. None keeps them on ``port``."""
    max_json_depth: int = 64
    """Deepest nesting of arrays and objects a request may have; deeper is refused at the edge
    with a JSON-RPC error (never forwarded)."""
    drain_seconds: float = 10.0
    """On SIGTERM / SIGINT: how long calls in flight may still finish. The gateway stops
    accepting at once; what is still running after this is answered with a JSON-RPC error
    and recorded."""
    auth_failures_per_minute: int = 30
    """Failed authentications one client address may make per minute; more are answered 429
    with ``Retry-After`` without looking at the token."""
    auth_record_seconds: float = 60.0
    """Failed authentications are recorded aggregated: one call record per client address and
    workspace per this many seconds (``auth_failure`` with a count); metrics count each."""
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    """Monotonic seconds, for the auth-failure limiter and its aggregation (tests inject one)."""
    session_idle_seconds: float = 1800.0
    """A session unused this long (and without an open stream) expires: its id answers 404."""
    page_size: int = 100
    """Tools per tools/list page."""
    watch: bool = True
    """Reload when a file below ``manifests`` changes."""
    reload_debounce_ms: int = 300
    health_interval: float = 5.0
    """How often servers that are down are retried (with backoff up to 60 s)."""
    redis_url: str | None = field(default=None, repr=False)
    """Keep the rate limits in this Redis (``redis://host:6379/0``), shared by every replica
    that uses it; None keeps them in memory, for one replica. (Not in repr: it may hold a
    password.)"""
    records: bool = True
    """Keep a call record of every call in ``state_dir/calls.db`` (SQLite)."""
    records_url: str | None = field(default=None, repr=False)
    """Keep the call records in this PostgreSQL database (``postgresql://user:pw@host/db``),
    shared by every replica, instead of ``state_dir/calls.db``. (Not in repr: a password.)"""
    retention_days: float = 90.0
    """Call records older than this are deleted (hourly); 0 keeps them forever."""
    audit_log: str | None = None
    """Also write every call record as a JSON line here: a file path, or ``-`` for stdout."""
    public_url: str | None = None
    """The gateway's public base URL (``https://mcp.example.com``) behind an ingress: the
    OAuth issuers (``<public_url>/ws/W``), resource URLs and metadata name it. None: each
    request's own scheme and Host. Its origin is allowed like --allow-origin."""
    oauth: bool = True
    """Serve MCP authorization (OAuth 2.1) for workspaces whose spec.signIn allows it (the
    default); False keeps to mwt_ bearer tokens."""
    oauth_private_metadata: bool = False
    """Fetch Client ID Metadata Documents from loopback and private addresses too (tests,
    closed networks); by default only public addresses (SSRF)."""
    oauth_metadata_ca_file: str | None = None
    """A CA bundle to verify Client ID Metadata Document servers with, instead of the
    system's."""
    oidc_ca_file: str | None = None
    """A CA bundle to verify the workspaces' OpenID Connect providers with (spec.signIn.oidc),
    instead of the system's: a provider behind a private CA."""
    oauth_recheck_seconds: float = 5.0
    """How long a replica trusts what it read of an OAuth grant: a revocation made on
    another replica (or by `mcpyard token revoke`) bites within this. Member changes bite at
    once."""
    upstream_factory: Factory | None = None
    """``create(server, *, secrets, on_notification, workdir) -> Upstream``; the default is
    :func:`mcpyard.gateway.upstream.create`."""

    @property
    def records_path(self) -> Path:
        return self.state_dir / "calls.db"

    @property
    def records_store(self) -> str | Path:
        """Where the call records are: the PostgreSQL URL, else the SQLite file."""
        return self.records_url or self.records_path

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def admin_url(self) -> str:
        """Where /readyz and /metrics are served (``base_url`` without an admin port)."""
        if self.admin_port is None:
            return self.base_url
        return self.base_url.rsplit(":", 1)[0] + f":{self.admin_port}"
