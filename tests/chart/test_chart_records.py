"""The chart's call-record store and traces: a PostgreSQL URL from a Secret, the retention, and
an OTLP endpoint reach the gateway's environment; the schema refuses what would not work."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest
from helmrender import Render, Rendered


def _gateway_env(rendered: Rendered) -> dict[str, Any]:
    deployment = next(d for d in rendered.of_kind("Deployment")
                      if d["metadata"]["name"].endswith("gateway"))
    container = next(c for c in deployment["spec"]["template"]["spec"]["containers"]
                     if c["name"] == "gateway")
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_the_records_url_comes_from_a_secret(chart_render: Render) -> None:
    env = _gateway_env(chart_render({"gateway": {"replicas": 3, "records": {"postgres": {
        "existingSecret": "mcpyard-records", "existingSecretKey": "url"},
        "retentionDays": 30}}}))
    assert env["MCPYARD_RECORDS_URL"] == {"secretKeyRef": {"name": "mcpyard-records",
                                                           "key": "url"}}
    assert env["MCPYARD_RETENTION_DAYS"] == "30"


def test_by_default_records_stay_in_sqlite_and_traces_are_off(chart_render: Render) -> None:
    env = _gateway_env(chart_render({}))
    assert "MCPYARD_RECORDS_URL" not in env
    assert env["MCPYARD_RETENTION_DAYS"] == "90"
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env


def test_an_otlp_endpoint_turns_traces_on(chart_render: Render) -> None:
    env = _gateway_env(chart_render({"gateway": {"tracing": {
        "otlpEndpoint": "http://otel-collector.observability:4318"}}}))
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4318"
    assert env["OTEL_SERVICE_NAME"] == "mcpyard-gateway"


@pytest.mark.parametrize(("values", "path", "says"), [
    pytest.param({"records": {"postgres": {"url": "postgresql://u:p@h/db"}}},
                 "/gateway/records/postgres", "additional properties", id="no-plain-url-value"),
    pytest.param({"records": {"retentionDays": -1}}, "/gateway/records/retentionDays",
                 "minimum", id="negative-retention"),
    pytest.param({"tracing": {"otlpEndpoint": "otel:4318"}}, "/gateway/tracing/otlpEndpoint",
                 "does not match pattern", id="endpoint-without-scheme"),
])
def test_the_schema_refuses(chart_render: Render, values: dict[str, Any], path: str,
                            says: str) -> None:
    with pytest.raises(helm.HelmValuesError) as caught:
        chart_render({"gateway": values})
    assert f"at '{path}'" in str(caught.value) and says in str(caught.value), caught.value


def test_notes_say_when_replicas_keep_records_apart(chart_render: Render) -> None:
    apart = chart_render({"gateway": {"replicas": 3}}).notes
    shared = chart_render({"gateway": {"replicas": 3, "records": {"postgres": {
        "existingSecret": "mcpyard-records"}}}}).notes
    assert "gateway.records.postgres.existingSecret" in apart
    assert "records.postgres" not in shared
