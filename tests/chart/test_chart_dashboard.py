"""The Grafana dashboard is valid JSON and queries only metrics the gateway exports."""

from __future__ import annotations

import json
import re
from typing import Any

from helmrender import CHART

from mcpyard.gateway.services import _metrics as metrics

DASHBOARD = json.loads((CHART / "files" / "dashboard.json").read_text())

# name -> labels, as the gateway exports them (mcpyard/gateway/_metrics.py).
METRICS = {
    "mcpyard_requests_total": {"workspace", "method", "outcome"},
    "mcpyard_tool_calls_total": {"workspace", "server", "tool", "outcome"},
    "mcpyard_request_duration_seconds_bucket": {"workspace", "method", "le"},
    "mcpyard_tool_call_duration_seconds_bucket": {"workspace", "server", "le"},
    "mcpyard_rate_limited_total": {"workspace", "scope"},
    "mcpyard_upstream_up": {"workspace", "server"},
    "mcpyard_sessions_open": {"workspace"},
}


def _exprs() -> list[str]:
    out = []
    for panel in DASHBOARD["panels"]:
        out += [t["expr"] for t in panel.get("targets", [])]
    return out


def test_dashboard_shape() -> None:
    assert DASHBOARD["uid"] and DASHBOARD["title"]
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    for p in DASHBOARD["panels"]:
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert set(p["gridPos"]) == {"x", "y", "w", "h"}
    names = {v["name"] for v in DASHBOARD["templating"]["list"]}
    assert names == {"datasource", "workspace"}


def test_every_metric_is_queried_and_known() -> None:
    used = {m for e in _exprs() for m in re.findall(r"\bmcpyard_[a-z_]+", e)}
    assert used == set(METRICS), used ^ set(METRICS)


def test_queries_use_only_exported_labels() -> None:
    for expr in _exprs():
        for metric, labels in METRICS.items():
            for selector in re.findall(rf"{metric}\{{([^}}]*)\}}", expr):
                used = {
                    m.split("=")[0].rstrip("!~").strip()
                    for m in re.split(r",(?![^\"]*\")", selector)
                    if m.strip()
                }
                assert used <= labels, (metric, used)
        for by in re.findall(r"by \(([^)]*)\)", expr):
            grouped = {x.strip() for x in by.split(",")}
            assert grouped <= set().union(*METRICS.values()), expr


def test_metric_names_match_the_gateway() -> None:
    families: dict[str, Any] = {}
    for family in metrics.Metrics().registry.collect():
        families[family.name] = family
    exported = {f"{n}_total" if f.type == "counter" else n for n, f in families.items()}
    for name in METRICS:
        base = name.removesuffix("_bucket")
        assert (
            base in exported
            or f"{base}_total" in exported
            or base.removesuffix("_total") in families
        ), f"{name} is not exported by the gateway"


def test_per_server_latency_and_error_panels() -> None:
    """Which upstream is slow, which is failing: one series per server in each panel."""
    by_title = {p["title"]: p for p in DASHBOARD["panels"]}
    latency = by_title["Tool-call latency by server (p50 / p95)"]
    errors = by_title["Tool-call error ratio by server"]
    for panel in (latency, errors):
        for target in panel["targets"]:
            assert "by (server" in target["expr"], target["expr"]
            assert "{{server}}" in target["legendFormat"]
    assert [t["expr"].split(",")[0] for t in latency["targets"]] == [
        "histogram_quantile(0.5", "histogram_quantile(0.95"]
    assert 'outcome=~"tool_error|upstream_error"' in errors["targets"][0]["expr"]
    assert errors["fieldConfig"]["defaults"]["unit"] == "percentunit"
