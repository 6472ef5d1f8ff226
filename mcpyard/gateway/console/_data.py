"""What the console shows, gathered from the live configuration and the call log.

Plain functions from (runtime, reader, scope) to dicts the templates render; nothing here
knows HTTP. The scope of a signed-in admin is every workspace where a member with their token
hash is an active ``role: admin`` member; nothing outside it is ever read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import markupsafe

from mcpyard.compiler.config import MemberConfig, ServerConfig
from mcpyard.discovery import docs
from mcpyard.discovery.manifest import Manifest
from mcpyard.gateway import _docs
from mcpyard.gateway._runtime import Live, Runtime
from mcpyard.gateway.services import _calllog, _pgrecords, _records
from mcpyard.jsontypes import text

PERIODS = {"1h": (3600.0, 60.0), "24h": (86400.0, 900.0), "7d": (7 * 86400.0, 3 * 3600.0),
           "30d": (30 * 86400.0, 12 * 3600.0)}
"""Periods a usage page offers: (length, chart bucket) in seconds."""


@dataclass(frozen=True)
class Admin:
    user: str
    scope: dict[str, MemberConfig]
    """Workspace name -> the admin member it signed in as there."""


Row: TypeAlias = dict[str, object]
"""What a template shows of one server, member or workspace."""


def admin_scope(runtime: Runtime, token_hash: str, now: float | None = None) -> Admin | None:
    """The workspaces a token's holder administers right now; None when none."""
    now = time.time() if now is None else now
    scope: dict[str, MemberConfig] = {}
    for name, live in runtime.live.items():
        member = live.members.get(token_hash)
        if (member is not None and member.config.role == "admin" and member.active(now)
                and member.config.token_hash == token_hash):
            scope[name] = member.config
    if not scope:
        return None
    return Admin(next(iter(scope.values())).user, dict(sorted(scope.items())))


def open_store(store: str | Path | None) -> _calllog.Reader | None:
    """A reader of the call log; None when none is kept or nothing was written yet."""
    if store is None:
        return None
    if isinstance(store, Path) and not store.is_file():
        return None
    return _calllog.open_reader(store)


def safe_url(url: str | None) -> str | None:
    return _pgrecords.safe_url(url) if url else None


def server_row(live: Live, server: ServerConfig) -> Row:
    handle = live.handles.get(server.slug)
    status = handle.status() if handle is not None else {"status": "unknown"}
    reason = status.get("reason")
    return {"slug": server.slug, "name": server.name, "mode": server.mode,
            "transport": server.transport, "url": safe_url(server.url),
            "command": " ".join(server.command) if server.command else None,
            "hub": server.hub_entry, "status": status["status"],
            "reason": _records.redact(reason if isinstance(reason, str) else "") or None,
            "tools": handle.table_tools() if handle is not None and handle.tools is not None
            else None}


def member_row(live: Live, m: MemberConfig, last: dict[str, float]) -> Row:
    if m.disabled:
        status = "disabled"
    elif m.token_hash is None:
        status = "no token"
    elif live.member_active(m.name):
        status = "active"
    else:
        status = "expired"
    return {"name": m.name, "user": m.user, "role": m.role, "status": status,
            "expires": m.expires.isoformat() if m.expires else None,
            "limit": m.requests_per_minute, "last": last.get(m.name)}


def workspace_summary(live: Live, reader: _calllog.Reader | None,
                      now: float) -> Row:
    config = live.config
    window = _calllog.Window(since=now - 60.0, workspaces=(config.name,))
    minute = _calllog.usage_by(reader, window, "workspace") if reader else []
    hour = (_calllog.usage_by(reader, _calllog.Window(since=now - 3600.0,
                                                      workspaces=(config.name,)), "workspace")
            if reader else [])
    servers = [server_row(live, s) for s in config.servers]
    return {"name": config.name, "namespace": config.namespace,
            "display_name": config.display_name, "path": config.path, "plan": config.plan,
            "limit": config.requests_per_minute, "revision": config.revision,
            "commit": live.commit, "servers": servers,
            "healthy": sum(s["status"] == "healthy" for s in servers),
            "members": sum(1 for m in config.members if live.member_active(m.name)),
            "members_total": len(config.members),
            "tools": len([e for e in live.table.entries if e.slug in live.available]),
            "last_minute": minute[0].calls if minute else 0,
            "last_hour": hour[0] if hour else None}


class Manifests:
    """The capability manifests of each workspace, built once per configuration snapshot by
    the gateway's own builder (:func:`mcpyard.gateway._docs.manifests`; a Live is immutable).
    An admin sees a server's whole manifest, not one member's cut of it."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[Live, list[Manifest]]] = {}

    def of(self, live: Live, slug: str) -> Manifest | None:
        """The manifest of server ``slug``; None until its tools are known."""
        cached = self._cache.get(live.config.name)
        if cached is None or cached[0] is not live:
            cached = self._cache[live.config.name] = (live, _docs.manifests(live))
        return next((m for m in cached[1] if text(m, "server", "slug") == slug), None)


def docs_body(manifest: Manifest) -> markupsafe.Markup:
    """The generated docs page of a server, as the gateway serves it at ``/ws/<w>/docs/<slug>``
    (:func:`mcpyard.discovery.docs.server_html`), without its document shell and inline style:
    the console's stylesheet dresses it (its CSP allows no inline style). Every text from the
    server is escaped by that renderer."""
    page = docs.server_html(manifest)
    body = page.split("<body>\n", 1)[1].rsplit("\n</body>", 1)[0]
    if body.startswith("<nav>"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
    return markupsafe.Markup(body)  # escaped by discovery.docs.html
