"""spec.hub.env is checked against the hub entry's config schema: a missing required setting,
a value outside the entry's choices or a setting the entry does not read is an invalid spec
that names the variable, in `mcpyard validate` and in the MCPServer's Accepted condition."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcpyard import cli, compiler, hub
from mcpyard.api import v1alpha1
from mcpyard.api.hub import HubConfig, HubEntry
from tests.conftest import manifest

NOW = datetime(2026, 11, 25, tzinfo=UTC)
WS = manifest("Workspace", "eng", {"plan": "starter"})


def server(entry: str, env: dict[str, str]) -> dict[str, Any]:
    return manifest("MCPServer", entry, {"workspace": "eng", "hub": {"name": entry, "env": env}})


def build(*docs: dict[str, Any], catalog: dict[str, HubEntry] | None = None
          ) -> compiler.Compilation:
    return compiler.compile([v1alpha1.parse(d) for d in docs], now=NOW,
                            catalog=catalog if catalog is not None else hub.catalog())


@pytest.mark.parametrize(("entry", "env", "field", "message"), [
    pytest.param("prometheus", {}, "spec.hub.env.PROMETHEUS_URL",
                 "is required (hub entry prometheus)", id="required-missing"),
    pytest.param("redis", {"REDIS_SSL": "yes"}, "spec.hub.env.REDIS_SSL",
                 "must be one of true, false, not 'yes' (hub entry redis)", id="not-in-enum"),
])
def test_a_setting_that_breaks_the_entry_schema_is_invalid_and_named(
    entry: str, env: dict[str, str], field: str, message: str
) -> None:
    out = build(WS, server(entry, env))
    assert [(e.field, e.message) for e in out.errors] == [(field, message)]
    accepted = out.statuses[("team", "MCPServer", entry)]["conditions"][0]
    assert (accepted["type"], accepted["status"], accepted["reason"]) == \
        ("Accepted", "False", "Invalid")
    assert f"{field}: {message}" in accepted["message"]
    assert out.workspaces["eng"].servers == ()


def test_valid_settings_and_settings_the_entry_does_not_list_are_accepted() -> None:
    # entries read more variables than they list, so an open schema takes any other name
    out = build(WS, server("prometheus", {"PROMETHEUS_URL": "http://prom:9090", "TZ": "UTC"}),
                server("redis", {"REDIS_SSL": "true"}))
    assert out.errors == ()
    assert sorted(s.slug for s in out.workspaces["eng"].servers) == ["prometheus", "redis"]


def test_a_closed_schema_refuses_a_setting_it_does_not_list() -> None:
    time = hub.catalog()["time"]
    closed = time.model_copy(update={"config": HubConfig.model_validate(
        {"properties": {"LOCAL_TIMEZONE": {"description": "The zone."}},
         "additionalProperties": False})})
    out = build(WS, server("time", {"LOCAL_TZ": "UTC"}), catalog={"time": closed})
    assert [(e.field, e.message) for e in out.errors] == [(
        "spec.hub.env.LOCAL_TZ",
        "is not a setting of this entry (settings: LOCAL_TIMEZONE) (hub entry time)")]


def test_validate_prints_the_variable_at_fault(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "repo.yaml").write_text(yaml.safe_dump_all(
        [WS, server("prometheus", {}), server("redis", {"REDIS_SSL": "on"})]))
    code = cli.main(["validate", str(tmp_path)])
    out, _ = capsys.readouterr()
    assert code == 1
    where = f"{tmp_path / 'repo.yaml'}:"
    lines = out.splitlines()
    assert all(line.startswith(where) for line in lines), lines  # file:line of the resource
    assert [line.split(": ", 1)[1] for line in lines] == [
        "team/MCPServer/prometheus: spec.hub.env.PROMETHEUS_URL: is required "
        "(hub entry prometheus)",
        "team/MCPServer/redis: spec.hub.env.REDIS_SSL: must be one of true, false, not 'on' "
        "(hub entry redis)",
    ]
