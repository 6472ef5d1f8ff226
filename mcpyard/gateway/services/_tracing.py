"""Traces: OpenTelemetry spans for every MCP request, exported over OTLP (optional extra ``otel``).

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set when the
gateway starts; then :func:`enable` installs a tracer provider with a batching OTLP/HTTP
exporter (configured by the standard ``OTEL_*`` variables), and each request becomes a tree:

    mcp.request (SERVER; the client's W3C ``traceparent`` is its parent when sent)
    ├── mcpyard.auth        the member's token against the live configuration
    ├── mcpyard.limit       the plan's and the member's rate limits
    └── mcpyard.upstream    (CLIENT) the hop to the server; ``traceparent`` goes with it

with the attributes ``mcpyard.workspace``, ``mcpyard.server``, ``mcpyard.tool``,
``mcpyard.method``, ``mcpyard.outcome`` (and ``mcpyard.member`` — a name from the manifests,
never a token). Arguments, results, headers and secrets never become attributes.

Off costs nothing measurable: :data:`ON` is False, :func:`span` returns one shared no-op
context manager, :data:`authenticate` *is*
:func:`~mcpyard.gateway.downstream._auth.authenticate`, the ASGI middleware is not
installed and the OpenTelemetry SDK is never imported. Like
OpenTelemetry's own global provider, the switch is per process. Sampling follows the SDK's
own variables (``OTEL_TRACES_SAMPLER=parentbased_traceidratio``, ``..._ARG=0.1``).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, TypeAlias

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcpyard.gateway.downstream import _auth
from mcpyard.gateway.services import _records

log = logging.getLogger("mcpyard.gateway")

ON = False
"""Whether spans are recorded (set once, at start-up, by :func:`enable`)."""
Attribute: TypeAlias = str | int | float | bool | None
"""A span attribute's value (None: left out)."""
authenticate: Callable[[dict[str, _auth.Member], bytes | None], _auth.Member | bytes] = (
    _auth.authenticate)
"""What transports call to authenticate; a traced wrapper when tracing is on."""
upstream_headers: ContextVar[dict[str, str] | None] = ContextVar("mcpyard_trace_headers",
                                                                 default=None)
"""The W3C trace headers of the upstream hop in progress (set by :func:`upstream_span`),
added by the upstream HTTP clients to what they send."""

NOOP = contextlib.nullcontext()
# Untyped: OpenTelemetry is an optional extra, imported only once tracing is on.
_tracer: Any = None
_provider: Any = None


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) and (
        environ.get("OTEL_SDK_DISABLED", "").lower() != "true")


def enable(environ: Mapping[str, str] = os.environ) -> bool:
    """Turn tracing on when the environment asks for it; False when it does not (or the
    ``otel`` extra is missing, which is logged)."""
    global ON, _tracer, _provider, authenticate
    if ON or not wanted(environ):
        return ON
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed: "
                    "pip install 'mcpyard[otel]'; no traces")
        return False
    from mcpyard import __version__

    resource = Resource.create({"service.name": environ.get("OTEL_SERVICE_NAME")
                                or "mcpyard-gateway", "service.version": __version__})
    _provider = TracerProvider(resource=resource)
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(_provider)
    _tracer = trace.get_tracer("mcpyard.gateway", __version__)
    authenticate = _traced_authenticate
    ON = True
    log.info("traces: exported over OTLP/HTTP")
    return True


def shutdown() -> None:
    """Export what is buffered (at the gateway's shutdown)."""
    if _provider is not None:
        _provider.force_flush()
        _provider.shutdown()


def span(name: str, **attributes: Attribute) -> contextlib.AbstractContextManager[object]:
    """A child span of the current one as a context manager; a shared no-op when off."""
    if not ON:
        return NOOP
    cm: contextlib.AbstractContextManager[object] = _tracer.start_as_current_span(
        name, attributes=_clean(attributes))
    return cm


def _clean(attributes: Mapping[str, Attribute]) -> dict[str, str | int | float | bool]:
    return {f"mcpyard.{k}": v for k, v in attributes.items() if v is not None}


def _traced_authenticate(members: dict[str, _auth.Member], authorization: bytes | None
                         ) -> _auth.Member | bytes:
    with _tracer.start_as_current_span("mcpyard.auth") as current:
        member = _auth.authenticate(members, authorization)
        current.set_attribute("mcpyard.auth.ok", not isinstance(member, bytes))
        if not isinstance(member, bytes):
            current.set_attribute("mcpyard.member", member.name)
        return member


@contextlib.contextmanager
def upstream_span(server: str, tool: str | None) -> Iterator[None]:
    """The upstream hop: a CLIENT span whose context the HTTP clients send as traceparent."""
    from opentelemetry import propagate, trace

    with _tracer.start_as_current_span("mcpyard.upstream", kind=trace.SpanKind.CLIENT,
                                       attributes=_clean({"server": server, "tool": tool})):
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        token = upstream_headers.set(carrier)
        try:
            yield
        finally:
            upstream_headers.reset(token)


def annotate(record: _records.CallRecord) -> None:
    """Put a finished request's facts on its request span (never arguments or secrets)."""
    from opentelemetry import trace

    current = trace.get_current_span()
    current.set_attributes(_clean({
        "workspace": record.workspace, "server": record.server, "tool": record.target,
        "method": record.method, "outcome": record.outcome, "member": record.member,
        "era": record.era}))
    if record.outcome not in ("ok", "tool_error"):
        current.set_status(trace.Status(trace.StatusCode.ERROR, record.outcome))


class Middleware:
    """The request span of every MCP HTTP request, parented by the client's traceparent.

    Installed only when tracing is on (a plain ASGI class, like the Origin middleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from opentelemetry import propagate, trace

        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
                   if k in (b"traceparent", b"tracestate")}
        parent = propagate.extract(carrier) if carrier else None
        workspace = scope.get("path_params", {}).get("workspace")
        status: list[int] = []

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        with _tracer.start_as_current_span(
                "mcp.request", context=parent, kind=trace.SpanKind.SERVER,
                attributes={"http.request.method": scope["method"], "url.path": scope["path"],
                            **_clean({"workspace": workspace})}) as current:
            await self.app(scope, receive, send_status)
            if status:
                current.set_attribute("http.response.status_code", status[0])
