"""The one factory of the gateway application: :func:`build_app`.

Every part is built here and passed to the constructors of the parts that use it; routes are
one list. The lifespan opens and closes what is long-lived (the configuration source and its
vault, the upstreams, the session sweeper, the health loop, the rate limiter, the call
recorder): the recorder is flushed before the upstreams close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.routing import Router as StarletteRouter
from starlette.types import ASGIApp, Receive, Scope, Send

from mcpyard.gateway import _redact, _relay, console
from mcpyard.gateway._docs import Docs
from mcpyard.gateway._router import Router
from mcpyard.gateway._runtime import Runtime
from mcpyard.gateway._settings import Settings
from mcpyard.gateway.downstream import _auth
from mcpyard.gateway.downstream._origin import OriginMiddleware, is_loopback_host
from mcpyard.gateway.downstream._sse import SSEMessages, SSEStream
from mcpyard.gateway.downstream._streamable import StreamableHTTP
from mcpyard.gateway.oauth import _pages
from mcpyard.gateway.oauth import _service as _oauth
from mcpyard.gateway.services import _limits, _pgrecords, _records, _tracing
from mcpyard.gateway.services._audit import AuditSink
from mcpyard.gateway.services._metrics import Metrics
from mcpyard.gateway.sources import Source
from mcpyard.gateway.sources._folder import FolderSource
from mcpyard.gateway.sources._static import StaticSource

log = logging.getLogger("mcpyard.gateway")


class _Gateway(Starlette):
    """Starlette, with a short way in for ``/ws/<name>/mcp``, the hot path.

    Every MCP call would otherwise walk Starlette's error and exception layers and the route
    table before reaching a raw ASGI endpoint (which answers its own errors). The short way
    runs the app's own middleware, the very list given to Starlette (:func:`wrap`), around
    the same endpoint: a middleware added to that list applies to ``/mcp`` too. So does the
    admin port's way in. Everything else (and any path it does not recognise) takes the full
    way.
    """

    def __init__(self, *, routes: Sequence[BaseRoute], middleware: Sequence[Middleware],
                 mcp: ASGIApp, admin_routes: Sequence[BaseRoute], admin_port: int | None,
                 **kwargs: Any) -> None:  # Starlette's own keyword arguments
        super().__init__(routes=routes, middleware=middleware, **kwargs)
        self._fast = wrap(mcp, middleware)
        self._admin = wrap(StarletteRouter(admin_routes), middleware)
        self._admin_port = admin_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self._admin_port is not None:
                # One server listens on both ports; the connection's local port tells them
                # apart. The admin port serves the operator's routes only, the public one
                # everything else.
                server = scope.get("server") or (None, None)
                if server[1] == self._admin_port:
                    await self._admin(scope, receive, send)
                    return
                if scope["path"] in ADMIN_PATHS:
                    await PlainTextResponse("Not Found", 404)(scope, receive, send)
                    return
            path: str = scope["path"]
            if path.startswith("/ws/") and path.endswith("/mcp"):
                name = path[4:-4]
                if name and "/" not in name:
                    scope["path_params"] = {"workspace": name}
                    await self._fast(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)


def wrap(app: ASGIApp, middleware: Sequence[Middleware]) -> ASGIApp:
    """``app`` inside ``middleware``, stacked as Starlette stacks it (the first outermost)."""
    for cls, args, kwargs in reversed(middleware):
        app = cls(app, *args, **kwargs)
    return app


ADMIN_PATHS = frozenset({"/readyz", "/metrics"})
"""Served on the admin port alone when there is one: they name workspaces, servers and
upstream errors. (``/healthz`` says only "ok" and stays on both, for liveness probes.)"""


def build_app(settings: Settings) -> Starlette:
    """The gateway as an ASGI application; ``app.state.runtime`` is its live configuration.

    Every part is made here and handed to the parts that use it; the lifespan only opens and
    closes them (the source's vault and first load, the call-record sinks, the loops)."""
    workdir = (settings.manifests or Path.cwd()).absolute()
    metrics = Metrics()
    source = settings.source or _source(settings)
    relays = _relay.Relays()
    runtime = Runtime(factory=settings.upstream_factory, secrets=source, workdir=workdir,
                      session_idle_seconds=settings.session_idle_seconds,
                      health_interval=settings.health_interval, metrics=metrics,
                      on_notification=relays.on_notification)
    recorder = _recorder(settings, metrics)
    if settings.redis_url is not None:
        metrics.rate_limit_backend_up.set(1)
    limiter = _limits.create_limiter(settings.redis_url,
                                     on_state=metrics.rate_limit_backend_up.set)
    oauth = _oauth.OAuth(
        runtime, settings.records_store, redis_url=settings.redis_url,
        public_url=settings.public_url,
        allow_private_metadata=settings.oauth_private_metadata,
        metadata_ca_file=settings.oauth_metadata_ca_file,
        oidc_ca_file=settings.oidc_ca_file,
        recheck_seconds=settings.oauth_recheck_seconds,
        master_key=lambda: source.master_key) if settings.oauth else None
    router = Router(runtime, relays=relays, oauth=oauth, page_size=settings.page_size,
                    metrics=metrics,
                    limiter=limiter, recorder=recorder,
                    failures=_auth.Failures(settings.auth_failures_per_minute,
                                            settings.auth_record_seconds, settings.clock))

    async def healthz(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> JSONResponse:
        serving, ready = runtime.readiness()
        body: dict[str, object] = dict(ready)
        body["rateLimits"] = limiter.status()
        if recorder is not None:
            body["callRecords"] = recorder.status()
        return JSONResponse(body, status_code=200 if serving else 503)

    async def metrics_text(request: Request) -> Response:
        # No auth, like /healthz: it names workspaces, servers and tools, never a member or
        # a secret; keep it off the public listener all the same (docs/accounting.md).
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loops: list[asyncio.Task[object]] = []
        # Log lines may quote what an upstream said: the live redactor blanks injected values.
        redaction = _redact.LogFilter(lambda: runtime.redactor)
        for name in _redact.LOGGERS:
            logging.getLogger(name).addFilter(redaction)
        if recorder is not None:
            await recorder.open()
            recorder.start()
            if settings.retention_days > 0:
                loops.append(asyncio.create_task(recorder.keep_for(settings.retention_days),
                                                 name="mcpyard-retention"))
        if oauth is not None:  # after the recorder: the same database, migrated by then
            await asyncio.to_thread(oauth.open)
        try:
            await source.open(runtime, metrics)
            loops.append(asyncio.create_task(source.run(runtime, metrics), name="mcpyard-source"))
            # One pass of the loop lets a folder's watcher register before startup completes
            # (watchfiles sets up inotify before its first await).
            await asyncio.sleep(0)
            loops.append(asyncio.create_task(runtime.sessions.run_sweeper(),
                                             name="mcpyard-sweeper"))
            loops.append(asyncio.create_task(runtime.run_health(), name="mcpyard-health"))
            yield
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            # uvicorn has waited for open responses: every finished call is queued by now.
            # Write them all before the upstreams (and the stdio servers) go.
            if recorder is not None:
                router.flush_failures()
                await recorder.close()
            if oauth is not None:
                await asyncio.to_thread(oauth.close)
            try:
                await runtime.close()
            finally:
                await limiter.close()
                for name in _redact.LOGGERS:
                    logging.getLogger(name).removeFilter(redaction)

                if _tracing.ON:
                    await asyncio.to_thread(_tracing.shutdown)

    mcp: ASGIApp = StreamableHTTP(runtime, router, max_depth=settings.max_json_depth)
    sse: ASGIApp = SSEStream(runtime, router)
    messages: ASGIApp = SSEMessages(runtime, router, max_depth=settings.max_json_depth)
    if _tracing.enable():  # OTEL_EXPORTER_OTLP_ENDPOINT: a span per MCP request
        mcp, sse, messages = (_tracing.Middleware(a) for a in (mcp, sse, messages))
    docs = Docs(runtime)
    operator_routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_text, methods=["GET"]),
    ]
    routes = [
        *operator_routes,
        Route("/ws/{workspace}/mcp", mcp),
        Route("/ws/{workspace}/sse", sse),
        Route("/ws/{workspace}/messages", messages),
        Route("/ws/{workspace}/manifest.json", docs.manifest_json, methods=["GET"]),
        Route("/ws/{workspace}/docs", docs.index, methods=["GET"]),
        Route("/ws/{workspace}/docs/{slug}", docs.page, methods=["GET"]),
        *(_pages.Pages(oauth).routes() if oauth is not None else ()),
        console.mount(runtime, settings.records_store if settings.records else None,
                      master_key=lambda: source.master_key, oauth=oauth),
    ]
    check_host = is_loopback_host(settings.host)
    allowed_origins = tuple(settings.allowed_origins)
    if settings.public_url:  # the sign-in and consent pages post back to it
        allowed_origins += (settings.public_url.rstrip("/"),)
    middleware = [Middleware(OriginMiddleware, allowed=allowed_origins,
                             allowed_hosts=settings.allowed_hosts, check_host=check_host)]
    app = _Gateway(routes=routes, lifespan=lifespan, middleware=middleware, mcp=mcp,
                   admin_routes=operator_routes, admin_port=settings.admin_port)
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.router = router
    return app


def _source(settings: Settings) -> Source:
    """The source of a gateway without a ``settings.source``: its folder, or its fixed
    configurations."""
    if settings.manifests is not None:
        return FolderSource(settings.manifests, state_dir=settings.state_dir,
                            age_key_file=settings.age_key_file, age_key=settings.age_key,
                            debounce_ms=settings.reload_debounce_ms, watch=settings.watch)
    return StaticSource(settings.workspaces or {}, settings.secrets, state_dir=settings.state_dir)


def _recorder(settings: Settings, metrics: Metrics) -> _records.Recorder | None:
    """The recorder over the configured sinks, or None when no sink is. The sinks open in the
    lifespan (:meth:`_records.Recorder.open`: it opens the database, so that a bad path fails
    at start-up)."""
    if not (settings.records or settings.audit_log):
        return None

    def sinks() -> list[_records.RecordSink]:
        out: list[_records.RecordSink] = []
        if settings.records and settings.records_url:
            out.append(_pgrecords.PostgresSink(settings.records_url))
        elif settings.records:
            out.append(_records.SQLiteSink(settings.records_path))
        if settings.audit_log:
            out.append(AuditSink(settings.audit_log))
        return out

    metrics.records_sink_up.set(1)
    return _records.Recorder(sinks, on_drop=metrics.record_dropped,
                             on_state=metrics.records_sink_up.set)
