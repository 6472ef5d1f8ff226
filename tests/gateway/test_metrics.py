"""Metrics: fed from call records, rendered in the text format Prometheus parses."""

from __future__ import annotations

from dataclasses import replace

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from mcpyard.compiler.config import MemberConfig, WorkspaceConfig
from mcpyard.errors import Scope
from mcpyard.gateway.services import _limits, _metrics
from mcpyard.gateway.services._records import CallRecord

WS = WorkspaceConfig(
    name="eng",
    namespace="team-eng",
    display_name="Engineering",
    plan="free",
    requests_per_minute=60,
)

BASE = CallRecord(
    time=1_750_000_000.0,
    workspace="eng",
    member="alice",
    user="alice@example.com",
    server="github",
    method="tools/call",
    target="github__create_issue",
    era="handshake",
    outcome="ok",
    latency_ms=3.0,
)


def samples(metrics: _metrics.Metrics) -> dict[str, list[Sample]]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    out: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def value(found: dict[str, list[Sample]], name: str, **labels: str) -> float | None:
    for sample in found.get(name, []):
        if sample.labels == labels:
            return sample.value
    return None


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def refusal_messages() -> dict[str, str]:
    """Real Refusal messages, as the router puts them in a rate_limited record."""
    limiter = _limits.MemoryLimiter()
    small = WS.model_copy(update={"requests_per_minute": 2})
    alice = MemberConfig(
        name="alice", user="a@example.com", role="member", token_hash=None, requests_per_minute=1
    )
    bob = alice.model_copy(update={"name": "bob", "requests_per_minute": None})
    await limiter.hit(small, alice)
    member = await limiter.hit(small, alice)
    await limiter.hit(small, bob)
    workspace = await limiter.hit(small, bob)
    assert member is not None and workspace is not None
    return {"member": member.message, "workspace": workspace.message}


@pytest.mark.anyio
async def test_records_become_counters_and_a_histogram() -> None:
    refusals = await refusal_messages()
    metrics = _metrics.Metrics()
    records = [
        BASE,
        BASE,
        replace(BASE, outcome="tool_error", error="boom", latency_ms=40.0),
        replace(BASE, method="tools/list", server=None, target=None, latency_ms=0.5),
        # A name that resolved to no server never becomes a tool label.
        replace(BASE, outcome="invalid_request", server=None, target="made_up__name"),
        replace(BASE, method="no/such/method", server=None, target=None, outcome="invalid_request"),
        replace(BASE, outcome="rate_limited", server=None, error=refusals["member"]),
        replace(BASE, outcome="rate_limited", server=None, error=refusals["workspace"]),
        replace(BASE, outcome="rate_limited", server=None, error=refusals["workspace"]),
        replace(BASE, workspace="ops", outcome="denied", latency_ms=70_000.0),
    ]
    # The router passes each refusal's own scope beside its record.
    scopes: dict[str, Scope] = {refusals["member"]: "member",
                                refusals["workspace"]: "workspace"}
    for r in records:
        metrics.observe(r, limit_scope=scopes.get(r.error or ""))
    found = samples(metrics)

    requests = "mcpyard_requests_total"
    assert value(found, requests, workspace="eng", method="tools/call", outcome="ok") == 2
    assert value(found, requests, workspace="eng", method="tools/call", outcome="tool_error") == 1
    assert value(found, requests, workspace="eng", method="tools/list", outcome="ok") == 1
    assert value(found, requests, workspace="eng", method="other", outcome="invalid_request") == 1
    assert value(found, requests, workspace="eng", method="tools/call", outcome="rate_limited") == 3
    assert sum(s.value for s in found[requests]) == len(records)

    tools = "mcpyard_tool_calls_total"
    assert (
        value(
            found,
            tools,
            workspace="eng",
            server="github",
            tool="github__create_issue",
            outcome="ok",
        )
        == 2
    )
    assert (
        value(
            found,
            tools,
            workspace="ops",
            server="github",
            tool="github__create_issue",
            outcome="denied",
        )
        == 1
    )
    assert {s.labels["tool"] for s in found[tools]} == {"github__create_issue"}
    assert all("member" not in s.labels for ss in found.values() for s in ss)

    limited = "mcpyard_rate_limited_total"
    assert value(found, limited, workspace="eng", scope="member") == 1
    assert value(found, limited, workspace="eng", scope="workspace") == 2

    hist = "mcpyard_request_duration_seconds"
    call = {"workspace": "eng", "method": "tools/call"}
    assert value(found, f"{hist}_count", **call) == 7
    assert value(found, f"{hist}_bucket", **call, le="0.001") == 0
    assert value(found, f"{hist}_bucket", **call, le="0.005") == 6
    assert value(found, f"{hist}_bucket", **call, le="0.05") == 7
    assert value(found, f"{hist}_sum", **call) == pytest.approx((3 * 6 + 40) / 1000)
    les = [
        s.labels["le"]
        for s in found[f"{hist}_bucket"]
        if s.labels == {**call, "le": s.labels["le"]}
    ]
    assert les[0] == "0.001" and les[-2] == "60.0" and les[-1] == "+Inf"
    # 70 s is beyond the last bucket: only +Inf holds it.
    ops = {"workspace": "ops", "method": "tools/call"}
    assert value(found, f"{hist}_bucket", **ops, le="60.0") == 0
    assert value(found, f"{hist}_bucket", **ops, le="+Inf") == 1


def test_gauges_reloads_and_drops() -> None:
    metrics = _metrics.Metrics()
    metrics.set_upstream("eng", "github", True)
    metrics.set_upstream("eng", "slack", True)
    metrics.set_upstream("eng", "slack", False)
    metrics.set_upstream("eng", "gone", True)
    metrics.forget_upstream("eng", "gone")
    metrics.forget_upstream("eng", "never-seen")
    for _ in range(3):
        metrics.session_opened("eng")
    metrics.session_closed("eng")
    metrics.config_reloaded("success")
    metrics.config_reloaded("success")
    metrics.config_reloaded("failure")
    metrics.record_dropped()
    found = samples(metrics)
    assert value(found, "mcpyard_upstream_up", workspace="eng", server="github") == 1
    assert value(found, "mcpyard_upstream_up", workspace="eng", server="slack") == 0
    assert value(found, "mcpyard_upstream_up", workspace="eng", server="gone") is None
    assert value(found, "mcpyard_sessions_open", workspace="eng") == 2
    assert value(found, "mcpyard_config_reloads_total", outcome="success") == 2
    assert value(found, "mcpyard_config_reloads_total", outcome="failure") == 1
    assert value(found, "mcpyard_records_dropped_total") == 1


def test_each_metrics_has_its_own_registry() -> None:
    one, two = _metrics.Metrics(), _metrics.Metrics()  # no "Duplicated timeseries" error
    one.observe(BASE)
    assert (
        value(
            samples(one),
            "mcpyard_requests_total",
            workspace="eng",
            method="tools/call",
            outcome="ok",
        )
        == 1
    )
    assert (
        value(
            samples(two),
            "mcpyard_requests_total",
            workspace="eng",
            method="tools/call",
            outcome="ok",
        )
        is None
    )
    assert value(samples(two), "mcpyard_records_dropped_total") == 0
