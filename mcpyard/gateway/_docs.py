"""Docs and capability manifests of a workspace, for its members.

``GET /ws/<w>/manifest.json``: the manifests (``mcpyard.discovery.manifest``) of the servers the
member may use, each cut down to the tools, prompts and resources its access rules admit.
``GET /ws/<w>/docs``: the HTML index of those servers; ``/ws/<w>/docs/<slug>``: one server's
page (``.md`` for Markdown). Authenticated like ``/mcp`` (``Authorization: Bearer mwt_...``);
a server or tool the member may not use is absent, exactly as from tools/list, and tools that
their pins withhold are absent for everyone.

:func:`manifests` is also what ``mcpyard docs`` and the operator write: one builder, fed from
the live upstreams' own lists.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from mcpyard import hub
from mcpyard.compiler import access
from mcpyard.discovery import docs, manifest
from mcpyard.gateway import _catalog
from mcpyard.gateway._runtime import Live, Runtime
from mcpyard.gateway._upstreams import Handle
from mcpyard.gateway.downstream import _auth
from mcpyard.jsontypes import text


def hub_info(name: str | None) -> manifest.HubInfo | None:
    """What the catalog says of a hub entry, for the manifest (None when unknown)."""
    return manifest.hub_info(hub.get(name) if name is not None else None)


def reported(handle: Handle) -> manifest.Reported:
    """What a live upstream reported: its tools as the workspace serves them (pins applied)."""
    return manifest.Reported(
        tools=_catalog.exposed(handle.server, handle.tools or ()),
        prompts=handle.lists.get("prompts", ()),
        resources=handle.lists.get("resources", ()),
        resource_templates=handle.lists.get("resourceTemplates", ()))


def manifests(live: Live) -> list[manifest.Manifest]:
    """Every server's manifest (servers whose tools are known), linked across the workspace."""
    built = [manifest.build(live.config.name, h.server, reported(h), hub_info(h.server.hub_entry))
             for _, h in sorted(live.handles.items()) if h.tools is not None]
    return manifest.link(built)


class Docs:
    """The three endpoints; the built manifests are kept per snapshot (a Live is immutable)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._cache: dict[str, tuple[Live, list[manifest.Manifest]]] = {}

    def _for(self, request: Request) -> tuple[Live, list[manifest.Manifest]] | Response:
        name = request.path_params["workspace"]
        live = self.runtime.live.get(name)
        if live is None:
            return PlainTextResponse(f"no workspace {name}\n", status_code=404)
        header = request.headers.get("authorization")
        member = _auth.authenticate(live.members, header.encode("latin-1") if header else None)
        if isinstance(member, bytes):
            return PlainTextResponse("a member token is needed: Authorization: Bearer mwt_...\n",
                                     status_code=401,
                                     headers={"WWW-Authenticate": member.decode()})
        cached = self._cache.get(name)
        if cached is None or cached[0] is not live:
            cached = self._cache[name] = (live, manifests(live))

        def may_use(key: str) -> bool:
            return access.member_may_use(member.config, key)

        mine = [v for v in (manifest.visible(m, may_use) for m in cached[1]) if v is not None]
        return live, mine

    async def manifest_json(self, request: Request) -> Response:
        found = self._for(request)
        if isinstance(found, Response):
            return found
        live, mine = found
        return JSONResponse({"workspace": live.config.name,
                             "displayName": live.config.display_name, "servers": mine})

    async def index(self, request: Request) -> Response:
        found = self._for(request)
        if isinstance(found, Response):
            return found
        live, mine = found
        title = f"{live.config.display_name}: MCP servers"
        if request.query_params.get("format") == "md":
            return PlainTextResponse(docs.index_markdown(title, mine, live.config.path,
                                                         link_prefix="docs/"),
                                     media_type="text/markdown")
        return HTMLResponse(docs.index_html(title, mine, link_suffix="", link_prefix="docs/",
                                            mcp_url=live.config.path))

    async def page(self, request: Request) -> Response:
        found = self._for(request)
        if isinstance(found, Response):
            return found
        _live, mine = found
        slug: str = request.path_params["slug"]
        as_markdown = slug.endswith(".md")
        slug = slug.removesuffix(".md")
        for m in mine:
            if text(m, "server", "slug") == slug:
                if as_markdown:
                    return PlainTextResponse(docs.server_markdown(m), media_type="text/markdown")
                return HTMLResponse(docs.server_html(m, index_href="../docs"))
        return PlainTextResponse(f"no server {slug}\n", status_code=404)
