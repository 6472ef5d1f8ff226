"""Settings of one gateway process: where the configuration comes from and how it serves."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mcpyard.compiler.config import WorkspaceConfig

if TYPE_CHECKING:
    from mcpyard.gateway._metrics import Metrics
    from mcpyard.gateway._runtime import Runtime


class Source(Protocol):
    """Where the configuration comes from when it is neither a folder nor fixed: the cluster
    (:class:`mcpyard.gateway._cluster.ClusterSource`). ``run`` owns the vault (it gets the
    master key from the same place as the configuration), applies every configuration it
    reads to ``runtime``, and follows changes until cancelled."""

    async def run(self, runtime: Runtime, metrics: Metrics) -> None: ...


@dataclass(frozen=True)
class Settings:
    """What :func:`mcpyard.gateway.build_app` needs.

    The configuration comes from a folder of manifests (``manifests``; watched and
    reloaded), from a :class:`Source` (``source``: the cluster's config Secrets), or, for
    embedding and tests, from ready :class:`WorkspaceConfig` objects (``workspaces``, with
    plain ``secrets`` values by identity ``namespace/name/key``).
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
    upstream_factory: Callable[..., Any] | None = None
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
