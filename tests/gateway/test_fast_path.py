"""The short way in for ``/ws/<name>/mcp`` runs the app's own middleware, the same list as
every other route: a middleware added to that list cannot silently miss the hot path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route, Router

from mcpyard.gateway import Settings, build_app
from mcpyard.gateway.downstream import _origin

pytestmark = pytest.mark.anyio

PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _chain(app: Any) -> list[Any]:
    """The layers of a middleware stack, outermost first, down to the endpoint."""
    out = [app]
    while hasattr(out[-1], "app"):
        out.append(out[-1].app)
    return out


def test_the_fast_path_and_the_admin_port_stack_the_apps_middleware(tmp_path: Path) -> None:
    app: Any = build_app(Settings(state_dir=tmp_path, workspaces={}, admin_port=9))
    declared = [m.cls for m in app.user_middleware]
    assert declared == [_origin.OriginMiddleware]
    mcp = next(r.app for r in app.routes if isinstance(r, Route)
               and r.path == "/ws/{workspace}/mcp")
    fast = _chain(app._fast)
    assert [type(layer) for layer in fast[:-1]] == declared
    assert fast[-1] is mcp  # the very endpoint the route table serves
    admin = _chain(app._admin)
    assert [type(layer) for layer in admin[:len(declared)]] == declared
    assert isinstance(admin[len(declared)], Router)


@pytest.mark.parametrize("path", ["/ws/eng/mcp", "/ws/eng/docs", "/readyz"])
async def test_a_foreign_origin_is_refused_on_every_route(tmp_path: Path, path: str) -> None:
    app = build_app(Settings(state_dir=tmp_path, workspaces={}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        foreign = await http.post(path, json=PING, headers={"Origin": "http://evil.example"})
        rebound = await http.post(path, json=PING, headers={"Host": "evil.example"})
        local = await http.post(path, json=PING, headers={"Origin": "http://127.0.0.1"})
    assert foreign.status_code == 403
    assert rebound.status_code == 403
    # A local page passes the check and reaches the route (which may refuse it for its own
    # reasons: no token, wrong method, a workspace not loaded).
    assert local.status_code != 403
