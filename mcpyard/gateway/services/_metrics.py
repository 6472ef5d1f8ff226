"""Prometheus metrics of one gateway process, served at ``/metrics``.

:class:`Metrics` owns its own ``CollectorRegistry`` (not the library's global one), so several
apps in one process, and tests, never share or collide on series.

Labels are chosen for bounded cardinality:

- no ``member`` label: a workspace may have thousands of members, and every member would
  multiply every series. Per-member questions (who called what, how often, what failed) are
  answered by the call records (``mcpyard analytics``), which keep every call;
- ``workspace``, ``server`` and ``tool`` come from the configuration: ``tool`` is a
  namespaced tool name and is only set when the call resolved to a configured server, so the
  set of tool series is bounded by the tools the configuration exposes; a name a client
  made up never becomes a label value;
- ``method`` is one of the MCP methods the gateway knows, anything else counts as ``other``.

Everything is fed from one :class:`~mcpyard.gateway.services._records.CallRecord` per request
(:meth:`Metrics.observe`), the same record the call log keeps, so the outcome is computed in
one place (the router) and the metrics and the records always agree.
"""

from __future__ import annotations

import contextlib
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from mcpyard import errors
from mcpyard.gateway.services import _records

DURATION_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
"""Seconds, from 1 ms (a refused or cached answer) to 60 s (a slow tool at its timeout)."""

METHODS = frozenset(
    {
        "initialize",
        "ping",
        "server/discover",
        "tools/list",
        "tools/call",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "prompts/list",
        "prompts/get",
        "completion/complete",
        "logging/setLevel",
    }
)
"""Methods counted under their own name; others are counted as ``other``."""

# The body is the classic text format (0.0.4), which every Prometheus version accepts; the
# library's "latest" content type announces 1.0.0, which older servers do not know.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "mcpyard_requests_total",
            "Requests to the gateway, by outcome.",
            ["workspace", "method", "outcome"],
            registry=r,
        )
        self.tool_calls = Counter(
            "mcpyard_tool_calls_total",
            "tools/call requests routed to a configured server.",
            ["workspace", "server", "tool", "outcome"],
            registry=r,
        )
        self.duration = Histogram(
            "mcpyard_request_duration_seconds",
            "Time from a request to its response.",
            ["workspace", "method"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.tool_duration = Histogram(
            "mcpyard_tool_call_duration_seconds",
            "Time from a tools/call routed to a server to its response, by server.",
            ["workspace", "server"],
            registry=r,
        )
        self.rate_limited = Counter(
            "mcpyard_rate_limited_total",
            "Requests refused by a rate limit.",
            ["workspace", "scope"],
            registry=r,
        )
        self.upstream_up = Gauge(
            "mcpyard_upstream_up",
            "1 when an upstream server answers, 0 when it is down.",
            ["workspace", "server"],
            registry=r,
        )
        self.tools_withheld = Gauge(
            "mcpyard_tools_withheld",
            "Tools of a server withheld because their definitions no longer match their pins "
            "(or have none).",
            ["workspace", "server"],
            registry=r,
        )
        self.sessions_open = Gauge(
            "mcpyard_sessions_open", "Downstream sessions open now.", ["workspace"], registry=r
        )
        self.config_reloads = Counter(
            "mcpyard_config_reloads_total",
            "Configuration reloads, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.rate_limit_backend_up = Gauge(
            "mcpyard_rate_limit_backend_up",
            "1 while the shared rate-limit backend (Redis) answers, 0 while each replica "
            "enforces the limits in its own memory instead.",
            registry=r,
        )
        self.records_sink_up = Gauge(
            "mcpyard_records_sink_up",
            "1 while every call-record sink writes, 0 while one fails (records wait in memory).",
            registry=r,
        )
        self.records_dropped = Counter(
            "mcpyard_records_dropped_total",
            "Call records dropped because the recorder's queue was full.",
            registry=r,
        )
        self.auth_throttled_total = Counter(
            "mcpyard_auth_throttled_total",
            "Failed authentications answered 429: their client address failed too often.",
            ["workspace"],
            registry=r,
        )
        self._children: dict[
            tuple[str, str, str, str | None, str | None],
            tuple[Counter, Histogram, Counter | None, Histogram | None],
        ] = {}

    def observe(self, record: _records.CallRecord, *,
                limit_scope: errors.Scope | None = None) -> None:
        """Count one finished request from its call record; ``limit_scope``: which rate limit
        refused it (``rate_limited`` only; the refusal's own scope, never read from its
        message)."""
        method = record.method if record.method in METHODS else "other"
        tool = record.target if method == "tools/call" and record.server is not None else None
        key = (record.workspace, method, record.outcome, record.server, tool)
        children = self._children.get(key)
        if children is None:
            # labels() costs ~1 µs a call; a dict of the children (bounded like the labels
            # themselves) keeps observe() near 1 µs.
            children = self._children[key] = (
                self.requests.labels(record.workspace, method, record.outcome),
                self.duration.labels(record.workspace, method),
                None
                if tool is None
                else self.tool_calls.labels(record.workspace, record.server, tool, record.outcome),
                None
                if tool is None
                else self.tool_duration.labels(record.workspace, record.server),
            )
        requests, duration, tool_calls, tool_duration = children
        requests.inc()
        duration.observe(record.latency_ms / 1000)
        if tool_calls is not None:
            tool_calls.inc()
            tool_duration.observe(record.latency_ms / 1000)  # type: ignore[union-attr]
        if record.outcome == "rate_limited":
            self.rate_limited.labels(record.workspace, limit_scope or "workspace").inc()

    def auth_throttled(self, workspace: str) -> None:
        self.auth_throttled_total.labels(workspace).inc()

    def set_upstream(self, workspace: str, server: str, up: bool, *, withheld: int = 0) -> None:
        self.upstream_up.labels(workspace, server).set(1 if up else 0)
        self.tools_withheld.labels(workspace, server).set(withheld)

    def forget_upstream(self, workspace: str, server: str) -> None:
        """Drop the series of a server that left the configuration."""
        with contextlib.suppress(KeyError):
            self.upstream_up.remove(workspace, server)
        with contextlib.suppress(KeyError):
            self.tools_withheld.remove(workspace, server)

    def session_opened(self, workspace: str) -> None:
        self.sessions_open.labels(workspace).inc()

    def session_closed(self, workspace: str) -> None:
        self.sessions_open.labels(workspace).dec()

    def config_reloaded(self, outcome: Literal["success", "failure"]) -> None:
        self.config_reloads.labels(outcome).inc()

    def record_dropped(self) -> None:
        """The recorder's ``on_drop``."""
        self.records_dropped.inc()

    def render(self) -> tuple[bytes, str]:
        """The body and content type of a ``/metrics`` response."""
        return generate_latest(self.registry), CONTENT_TYPE

