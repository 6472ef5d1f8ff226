"""The console at ``/console``: a read-only view of the gateway for Members with ``role: admin``.

Server-rendered HTML (Jinja2 templates in ``templates/``) over the live configuration and the
call log (SQLite or PostgreSQL, through :mod:`mcpyard.gateway.services._calllog`); tables work
without JavaScript, and the charts use uPlot, vendored with its licence under ``static/`` (no
build step, no CDN). Apart from revoking a member's OAuth grants, it must not change anything
(changes are commits to the manifests' git repository), and it must not open a way to the
rest of the gateway: its session cookie is scoped to ``/console`` and the MCP endpoints never
read cookies.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mcpyard.gateway._runtime import Runtime
from mcpyard.gateway.console._session import Signer
from mcpyard.gateway.console._views import STATIC_VERSION, Console

if TYPE_CHECKING:
    from mcpyard.gateway.oauth._service import OAuth

__all__ = ["Console", "Signer", "mount"]


def mount(runtime: Runtime, store: str | Path | None, *, signer: Signer | None = None,
          master_key: Callable[[], bytes | None] | None = None,
          oauth: OAuth | None = None) -> Mount:
    """The console's routes under ``/console``; ``store`` is the call log (None: none kept).

    ``master_key`` returns the gateway's master key once loaded: session cookies are signed
    with a key derived from it, so every replica sharing it accepts them. ``oauth`` (the
    OAuth service) lists a member's OAuth grants and revokes them."""
    if signer is None and master_key is not None:
        signer = Signer(master_key=master_key)
    console = Console(runtime, store, signer=signer, oauth=oauth)
    static = StaticFiles(directory=Path(__file__).parent / "static")
    return Mount("/console", routes=[
        Route("/", console.home, methods=["GET"]),
        Route("/login", console.login_form, methods=["GET"]),
        Route("/login", console.login, methods=["POST"]),
        Route("/logout", console.logout, methods=["POST"]),
        Route("/workspaces", console.workspaces, methods=["GET"]),
        Route("/ws/{ws}", console.workspace, methods=["GET"]),
        Route("/ws/{ws}/servers/{slug}", console.server, methods=["GET"]),
        Route("/ws/{ws}/servers/{slug}/{file}", console.server_file, methods=["GET"]),
        Route("/ws/{ws}/members/{name}", console.member, methods=["GET"]),
        Route("/ws/{ws}/members/{name}/grants/{grant}/revoke", console.revoke_grant,
              methods=["POST"]),
        Route("/usage", console.usage, methods=["GET"]),
        Route("/audit", console.audit, methods=["GET"]),
        Route("/audit.{fmt:str}", console.audit_export, methods=["GET"]),
        Route("/hub", console.hub, methods=["GET"]),
        Mount(f"/static/v{STATIC_VERSION}", app=static),
    ])
