"""The conditions adapters add from what they observe are decided by the compiler: the operator
only writes them (reasons are constants of ``api.v1alpha1.conditions``)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from mcpyard import compiler
from mcpyard.api._problem import Problem
from mcpyard.api.v1alpha1 import conditions as c

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
STAMP = "2026-12-01T12:00:00Z"


def _by_type(status: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {d["type"]: (d["status"], d["reason"], d["message"]) for d in status["conditions"]}


@pytest.mark.parametrize(("changed", "first", "expected"), [
    pytest.param("added b", False, ("True", c.TOOLS_CHANGED, f"added b (at {STAMP})"),
                 id="changed"),
    pytest.param(None, True, ("False", c.FIRST_DISCOVERY, f"2 tools discovered at {STAMP}"),
                 id="first"),
    pytest.param(None, False, ("False", c.TOOLS_UNCHANGED, f"2 tools, unchanged at {STAMP}"),
                 id="unchanged"),
])
def test_tools_changed(changed: str | None, first: bool, expected: tuple[str, str, str]) -> None:
    cond = compiler.tools_changed_condition(NOW, 2, changed, first, 7)
    assert (cond["type"], (cond["status"], cond["reason"], cond["message"])) == (
        c.TOOLS_CHANGED, expected)
    assert (cond["lastTransitionTime"], cond["observedGeneration"]) == (STAMP, 7)


@pytest.mark.parametrize(("held", "expected"), [
    pytest.param({}, ("True", c.PINS_MATCH, "every exposed tool matches its pin (3 pinned)"),
                 id="match"),
    pytest.param({"b": "changed", "a": "not pinned"},
                 ("False", c.PIN_MISMATCH, "withheld from members until spec.tools.pin is "
                  "updated: a (not pinned), b (changed) (`mcpyard pin` writes the current "
                  "hashes)"), id="mismatch"),
])
def test_tools_pinned(held: dict[str, str], expected: tuple[str, str, str]) -> None:
    cond = compiler.tools_pinned_condition(3, held, NOW, 2)
    assert cond["type"] == c.TOOLS_PINNED
    assert (cond["status"], cond["reason"], cond["message"]) == expected


def test_not_programmed_takes_ready_down_with_it() -> None:
    problem = Problem("team", "Member", "alice", "spec.user", "required")
    broken = compiler.invalid_status("team", "Member", "alice", 4, [problem], NOW)
    assert _by_type(broken)[c.ACCEPTED] == ("False", c.INVALID, "spec.user: required")
    assert broken["observedGeneration"] == 4

    ready = {"url": "/ws/eng/mcp", "conditions": [
        compiler.tools_changed_condition(NOW, 1, None, True, 1),  # another type: untouched
        {"type": c.PROGRAMMED, "status": "True", "reason": c.CONFIG_GENERATED, "message": "ok",
         "lastTransitionTime": STAMP, "observedGeneration": 1},
        {"type": c.READY, "status": "True", "reason": c.SERVING, "message": "ok",
         "lastTransitionTime": STAMP, "observedGeneration": 1},
    ]}
    before = copy.deepcopy(ready)
    out = compiler.not_programmed(ready, c.CONFIG_TOO_LARGE, "too big")
    assert ready == before  # the input is not changed
    assert out["url"] == "/ws/eng/mcp"
    assert _by_type(out)[c.PROGRAMMED] == ("False", c.CONFIG_TOO_LARGE, "too big")
    assert _by_type(out)[c.READY] == ("False", c.NOT_PROGRAMMED, "not programmed: too big")
    assert out["conditions"][0] == ready["conditions"][0]
