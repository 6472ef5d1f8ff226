"""The console's pages: one Starlette endpoint per page, each rendering one template.

Every page needs a signed-in admin (:func:`Console.admin`), and reads only what that admin's
scope holds. Pages only read: the configuration changes through git, never here.
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import jinja2
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)

from mcpyard import hub
from mcpyard.crypto import tokens
from mcpyard.discovery import docs
from mcpyard.gateway._runtime import Live, Runtime
from mcpyard.gateway.console import _data, _session
from mcpyard.gateway.services import _calllog, _records

if TYPE_CHECKING:
    from mcpyard.gateway.oauth._service import OAuth

log = logging.getLogger("mcpyard.gateway")
T = TypeVar("T")
HERE = Path(__file__).parent
STATIC_VERSION = "2"
"""Part of every static URL, so that a new release is never served a stale cached file."""
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'none'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make form posts Origin: null
    "Cache-Control": "no-store",
}
DOCS_CSP = ("default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; "
            "frame-ancestors 'none'; base-uri 'none'")
"""A generated docs page: its inline stylesheet, no script, no request anywhere."""
AUDIT_PAGE = 200
"""Rows of the audit trail a page shows (the export has them all)."""


def _ago(epoch: float | None) -> str:
    if epoch is None:
        return "never"
    seconds = max(0.0, time.time() - epoch)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["iso"] = lambda t: _records.iso(t) if t is not None else "—"
    env.filters["ago"] = _ago
    env.filters["ms"] = lambda v: "—" if v is None else f"{v:.1f} ms"
    return env


Page = Callable[["Console", Request, _data.Admin, _session.Session], Awaitable[Response]]


def _admin_only(page: Page) -> Callable[[Console, Request], Awaitable[Response]]:
    """A page for a signed-in admin; anyone else is sent to the sign-in form."""

    @functools.wraps(page)
    async def endpoint(self: Console, request: Request) -> Response:
        found = self.admin(request)
        if found is None:
            return RedirectResponse("/console/login", status_code=303, headers=HEADERS)
        return await page(self, request, *found)

    return endpoint


class Console:
    """The console of one gateway: its runtime, its call log, its session signer."""

    def __init__(self, runtime: Runtime, store: str | Path | None, *,
                 signer: _session.Signer | None = None, oauth: OAuth | None = None) -> None:
        self.runtime = runtime
        self.oauth = oauth
        self.store = store
        self.signer = signer or _session.Signer()
        self.env = _environment()
        self.manifests = _data.Manifests()

    # -- plumbing ------------------------------------------------------------------------

    def page(self, request: Request, template: str, status: int = 200,
             **context: object) -> HTMLResponse:
        context.setdefault("admin", None)
        context.setdefault("session", None)
        body = self.env.get_template(template).render(
            static=f"/console/static/v{STATIC_VERSION}", **context)
        return HTMLResponse(body, status_code=status, headers=HEADERS)

    def admin(self, request: Request) -> tuple[_data.Admin, _session.Session] | None:
        session = self.signer.check(request.cookies.get(_session.COOKIE))
        if session is None:
            return None
        admin = _data.admin_scope(self.runtime, session.token_hash)
        return None if admin is None else (admin, session)

    async def read(self, work: Callable[[_calllog.Reader | None], T]) -> T:
        def run() -> T:
            try:
                reader = _data.open_store(self.store)
            except Exception as exc:  # the pages still show the configuration
                log.warning("console: call records unavailable: %s", _records.redact(str(exc)))
                return work(None)
            try:
                return work(reader)
            except Exception as exc:
                log.warning("console: reading call records failed: %s",
                            _records.redact(str(exc)))
                return work(None)
            finally:
                if reader is not None:
                    reader.conn.close()
        return await asyncio.to_thread(run)

    def _live(self, admin: _data.Admin, name: str) -> Live | None:
        if name not in admin.scope:
            return None
        return self.runtime.live.get(name)

    def _not_found(self, request: Request, admin: _data.Admin, session: _session.Session,
                   what: str) -> HTMLResponse:
        return self.page(request, "error.html", 404, admin=admin, session=session,
                         message=f"{what} is not one this console shows you.")

    # -- sign in / out -------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        if self.admin(request) is not None:
            return RedirectResponse("/console/", status_code=303, headers=HEADERS)
        return self.page(request, "login.html", error=None)

    async def login(self, request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        if not _session.same_origin(headers, request.url.scheme, request.url.netloc):
            return self.page(request, "login.html", 403,
                             error="This sign-in did not come from the console's own page.")
        form = await request.form()
        token = str(form.get("token") or "").strip()
        refused = self.page(request, "login.html", 401,
                            error="That token does not belong to an active admin member.")
        if not tokens.is_well_formed(token):
            return refused
        digest = tokens.hash(token)
        if _data.admin_scope(self.runtime, digest) is None:
            return refused
        if not self.signer.ready:
            return self.page(request, "login.html", 503,
                             error="The gateway is still starting; try again in a moment.")
        cookie, _ = self.signer.issue(digest)
        response = RedirectResponse("/console/", status_code=303, headers=HEADERS)
        response.set_cookie(_session.COOKIE, cookie, max_age=int(self.signer.lifetime),
                            path="/console", httponly=True, samesite="strict",
                            # Behind a TLS-terminating ingress the gateway sees http; the
                            # header can only add Secure, never take it away.
                            secure=request.url.scheme == "https" or request.headers.get(
                                "x-forwarded-proto") == "https")
        return response

    async def logout(self, request: Request) -> Response:
        found = self.admin(request)
        headers = {k.lower(): v for k, v in request.headers.items()}
        form = await request.form()
        if (found is None or not _session.same_origin(headers, request.url.scheme,
                                                      request.url.netloc)
                or form.get("csrf") != found[1].csrf):
            return self.page(request, "error.html", 403, message="Sign-out refused.")
        response = RedirectResponse("/console/login", status_code=303, headers=HEADERS)
        response.delete_cookie(_session.COOKIE, path="/console", httponly=True,
                               samesite="strict")
        return response

    # -- pages ---------------------------------------------------------------------------

    @_admin_only
    async def home(self, request: Request, admin: _data.Admin,
                     session: _session.Session) -> Response:
        return RedirectResponse("/console/workspaces", status_code=303, headers=HEADERS)

    @_admin_only
    async def workspaces(self, request: Request, admin: _data.Admin,
                     session: _session.Session) -> Response:
        now = time.time()
        lives = [live for name in admin.scope
                 if (live := self.runtime.live.get(name)) is not None]
        rows = await self.read(lambda r: [_data.workspace_summary(live, r, now)
                                          for live in lives])
        return self.page(request, "workspaces.html", admin=admin, session=session,
                         workspaces=rows)

    @_admin_only
    async def workspace(self, request: Request, admin: _data.Admin,
                     session: _session.Session) -> Response:
        live = self._live(admin, request.path_params["ws"])
        if live is None:
            return self._not_found(request, admin, session, "This workspace")
        now = time.time()
        window = _calllog.Window(since=now - 30 * 86400.0, workspaces=(live.config.name,))

        def gather(r: _calllog.Reader | None) -> tuple[_data.Row, list[_data.Row]]:
            last = _calllog.last_activity(r, window) if r else {}
            return (_data.workspace_summary(live, r, now),
                    [_data.member_row(live, m, last) for m in live.config.members])
        summary, members = await self.read(gather)
        return self.page(request, "workspace.html", admin=admin, session=session, ws=summary,
                         members=members)

    @_admin_only
    async def server(self, request: Request, admin: _data.Admin,
                     session: _session.Session) -> Response:
        live = self._live(admin, request.path_params["ws"])
        config = next((s for s in live.config.servers
                       if s.slug == request.path_params["slug"]), None) if live else None
        if live is None or config is None:
            return self._not_found(request, admin, session, "This server")
        window = _calllog.Window(since=time.time() - 7 * 86400.0,
                                 workspaces=(live.config.name,), server=config.slug)
        errors, usage = await self.read(lambda r: (
            _calllog.errors(r, window, 20) if r else [],
            _calllog.usage_by(r, window, "tool") if r else []))
        manifest = self.manifests.of(live, config.slug)
        return self.page(request, "server.html", admin=admin, session=session,
                         ws=live.config, server=_data.server_row(live, config),
                         errors=errors, usage=usage,
                         injections=[i.as_ for i in config.injections], manifest=manifest,
                         docs=_data.docs_body(manifest) if manifest is not None else None)

    @_admin_only
    async def server_file(self, request: Request, admin: _data.Admin,
                          session: _session.Session) -> Response:
        """The server's capability manifest (``manifest.json``: what ``/ws/<w>/manifest.json``
        holds for it) or its generated docs (``docs``, ``docs.md``), exactly as the gateway
        serves them to members, but whole."""
        live = self._live(admin, request.path_params["ws"])
        slug, file = request.path_params["slug"], request.path_params["file"]
        manifest = self.manifests.of(live, slug) if live else None
        if manifest is None or file not in ("manifest.json", "docs", "docs.md"):
            return self._not_found(request, admin, session, "This server's file")
        if file == "manifest.json":
            return JSONResponse(manifest, headers=HEADERS)
        if file == "docs.md":
            return PlainTextResponse(docs.server_markdown(manifest), headers=HEADERS,
                                     media_type="text/markdown")
        # The generated page carries its own inline stylesheet, and nothing else.
        assert live is not None  # else no manifest
        back = f"/console/ws/{live.config.name}/servers/{slug}"
        return HTMLResponse(docs.server_html(manifest, index_href=back), headers={
            **HEADERS, "Content-Security-Policy": DOCS_CSP})

    @_admin_only
    async def member(self, request: Request, admin: _data.Admin,
                     session: _session.Session) -> Response:
        live = self._live(admin, request.path_params["ws"])
        config = live.by_name.get(request.path_params["name"]) if live else None
        if live is None or config is None:
            return self._not_found(request, admin, session, "This member")
        window = _calllog.Window(since=time.time() - 30 * 86400.0,
                                 workspaces=(live.config.name,), member=config.name)

        def gather(r: _calllog.Reader | None) -> tuple[
                dict[str, float], list[_calllog.Usage], list[dict[str, _calllog.Value]]]:
            if r is None:
                return {}, [], []
            return (_calllog.last_activity(r, window), _calllog.usage_by(r, window, "tool"),
                    _calllog.calls(r, window, 20, newest_first=True))
        last, usage, recent = await self.read(gather)
        view = live.view(config)
        grants = await self.oauth.grants(live.config.name, config.name) if self.oauth else []
        return self.page(request, "member.html", admin=admin, session=session,
                         ws=live.config, member=_data.member_row(live, config, last),
                         config=config, tools=sorted(view.allowed), usage=usage,
                         recent=recent, grants=grants)

    @_admin_only
    async def revoke_grant(self, request: Request, admin: _data.Admin,
                           session: _session.Session) -> Response:
        """Revoke one OAuth grant of a member (the one change the console makes: a grant
        is not configuration, and its holder's access must be cut now)."""
        live = self._live(admin, request.path_params["ws"])
        name = request.path_params["name"]
        headers = {k.lower(): v for k, v in request.headers.items()}
        form = await request.form()
        if (live is None or self.oauth is None
                or not _session.same_origin(headers, request.url.scheme, request.url.netloc)
                or form.get("csrf") != session.csrf):
            return self.page(request, "error.html", 403, admin=admin, session=session,
                             message="Revocation refused.")
        await self.oauth.revoke(live.config.name, name, request.path_params["grant"])
        return RedirectResponse(f"/console/ws/{live.config.name}/members/{name}#grants",
                                status_code=303, headers=HEADERS)

    def _window(self, request: Request, admin: _data.Admin) -> tuple[_calllog.Window,
                                                                     dict[str, str]]:
        q = request.query_params
        period = q.get("period") if q.get("period") in _data.PERIODS else "24h"
        ws = q.get("ws") or ""
        scope = (ws,) if ws in admin.scope else tuple(admin.scope)
        filters = {"period": period or "24h", "ws": ws if ws in admin.scope else ""}
        values: dict[str, str] = {}
        for key, column in (("member", "member"), ("tool", "target"), ("server", "server"),
                            ("outcome", "outcome"), ("revision", "revision")):
            value = (q.get(key) or "").strip()
            filters[key] = value
            if value:
                values[column] = value
        length = _data.PERIODS[filters["period"]][0]
        return _calllog.Window(since=time.time() - length, workspaces=scope,
                               member=values.get("member"), server=values.get("server"),
                               target=values.get("target"), outcome=values.get("outcome"),
                               revision=values.get("revision")), filters

    @_admin_only
    async def usage(self, request: Request, admin: _data.Admin,
                     session: _session.Session) -> Response:
        window, filters = self._window(request, admin)
        step = _data.PERIODS[filters["period"]][1]

        def gather(r: _calllog.Reader | None) -> tuple[list[_calllog.Usage],
                                                       dict[str, list[_calllog.Usage]]]:
            if r is None:
                return [], {d: [] for d in ("member", "tool", "server", "outcome")}
            return (_calllog.usage_over_time(r, window, step),
                    {d: _calllog.usage_by(r, window, d, 20)
                     for d in ("member", "tool", "server", "outcome")})
        series, breakdown = await self.read(gather)
        chart: dict[str, object] = {
                 "t": [u.key for u in series], "calls": [u.calls for u in series],
                 "errors": [u.errors for u in series],
                 "rate_limited": [u.rate_limited for u in series],
                 "p50": [u.p50 for u in series], "p95": [u.p95 for u in series],
                 "p99": [u.p99 for u in series], "step": step,
                 "since": window.since, "until": time.time()}
        totals = {"calls": sum(u.calls for u in series),
                  "errors": sum(u.errors for u in series),
                  "rate_limited": sum(u.rate_limited for u in series)}
        return self.page(request, "usage.html", admin=admin, session=session,
                         filters=filters, periods=list(_data.PERIODS), series=series,
                         chart=chart, breakdown=breakdown, totals=totals)

    @_admin_only
    async def audit(self, request: Request, admin: _data.Admin,
                     session: _session.Session) -> Response:
        window, filters = self._window(request, admin)
        rows = await self.read(lambda r: _calllog.calls(r, window, AUDIT_PAGE,
                                                        newest_first=True) if r else [])
        query = urllib.parse.urlencode({k: v for k, v in filters.items() if v})
        others = urllib.parse.urlencode({k: v for k, v in filters.items()
                                         if v and k != "revision"})
        return self.page(request, "audit.html", admin=admin, session=session,
                         filters=filters, periods=list(_data.PERIODS), rows=rows,
                         limit=AUDIT_PAGE, query=query, query_without_revision=others,
                         outcomes=_records.OUTCOMES)

    @_admin_only
    async def audit_export(self, request: Request, admin: _data.Admin,
                     session: _session.Session) -> Response:
        fmt = request.path_params["fmt"]
        if fmt not in ("csv", "jsonl"):
            return self._not_found(request, admin, session, "This export format")
        window, _ = self._window(request, admin)
        def export(r: _calllog.Reader | None) -> str:
            out = io.StringIO()
            if r is not None:
                sql, params = _calllog.calls_sql(window)
                _calllog.write_records(out, fmt, r.stream(sql, params))
            elif fmt == "csv":
                _calllog.write_records(out, fmt, [])
            return out.getvalue()
        body = await self.read(export)
        media = "text/csv" if fmt == "csv" else "application/x-ndjson"
        return Response(body, media_type=media, headers={
            **HEADERS, "Content-Disposition": f'attachment; filename="mcpyard-calls.{fmt}"'})

    @_admin_only
    async def hub(self, request: Request, admin: _data.Admin,
                     session: _session.Session) -> Response:
        used: dict[str, list[str]] = {}
        for name in admin.scope:
            live = self.runtime.live.get(name)
            for s in live.config.servers if live else ():
                if s.hub_entry:
                    used.setdefault(s.hub_entry, []).append(f"{name}/{s.slug}")
        entries = sorted(hub.catalog().values(), key=lambda e: e.name)
        return self.page(request, "hub.html", admin=admin, session=session, entries=entries,
                         used=used)
