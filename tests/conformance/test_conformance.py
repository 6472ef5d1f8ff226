"""The official MCP conformance suite, both eras: the fixture passes it, the adapter is
transparent, and the gateway keeps every scenario the fixture passes (``-m
gateway_conformance`` selects that test alone).

Needs `bash tools/conformance/setup.sh` (npm); nothing is installed at test time. The suite runs
once per module against the three targets (about half a minute on two cores).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent


def _load(name: str) -> ModuleType:
    # By path: tests/ is no package, and `run`/`adapter` are names other folders may use.
    spec = importlib.util.spec_from_file_location(
        f"mcpyard_conformance_{name}", HERE / f"{name}.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


run = _load("run")
adapter = _load("adapter")

# Not scored by the suite and failing against the fixture: the tasks extension (SEP-2663),
# which the SDK's MCPServer does not serve. Anything else that fails is a regression.
EXPECTED_FAILURES = {
    "modern-2026-07-28": {
        "tasks-capability-negotiation",
        "tasks-dispatch-and-envelope",
        "tasks-lifecycle",
        "tasks-mrtr-composition",
        "tasks-mrtr-input",
        "tasks-request-headers",
        "tasks-request-state-removal",
        "tasks-required-task-error",
        "tasks-wire-fields",
    },
}
EXPECTED_SCORED = {"handshake": 30, "modern-2025-11-25": 30, "modern-2026-07-28": 37}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Any:
    if not run.NODE.exists():
        pytest.fail(f"conformance suite not installed: {run.SETUP_HINT}", pytrace=False)
    results, _ = run.run_matrix(
        ["direct", "adapter", "gateway"], work=tmp_path_factory.mktemp("conformance")
    )
    return results


def test_fixture_passes_every_scored_scenario(matrix: Any) -> None:
    for suite_run, expected in EXPECTED_SCORED.items():
        scenarios = matrix[suite_run]["direct"]
        scored = {name for name, s in scenarios.items() if s.scored}
        assert len(scored) == expected, (suite_run, sorted(scored))
        failing = {name for name, s in scenarios.items() if not s.passed}
        assert failing == EXPECTED_FAILURES.get(suite_run, set()), suite_run


def test_adapter_changes_no_result(matrix: Any) -> None:
    assert run.adapter_differences(matrix) == []


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "test_simple_text", "arguments": {}},
            },
            {"name": "fixture__test_simple_text", "arguments": {}},
            id="tools-call",
        ),
        pytest.param(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "prompts/get",
                "params": {"name": "test_simple_prompt"},
            },
            {"name": "fixture__test_simple_prompt"},
            id="prompts-get",
        ),
        pytest.param(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "completion/complete",
                "params": {"ref": {"type": "ref/prompt", "name": "p"}, "argument": {}},
            },
            {"ref": {"type": "ref/prompt", "name": "fixture__p"}, "argument": {}},
            id="completion-prompt-ref",
        ),
        pytest.param(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "resources/read",
                "params": {"uri": "test://static-text"},
            },
            {"uri": "gw+test://static-text"},
            id="resources-read",
        ),
    ],
)
def test_names_reach_the_gateway_prefixed(
    message: dict[str, Any], expected: dict[str, Any]
) -> None:
    names = adapter.Names("fixture__", _SchemeUris())
    names.request_to_gateway(message)
    assert message["params"] == expected


def test_names_reach_the_client_unprefixed() -> None:
    names = adapter.Names("fixture__", _SchemeUris())
    methods = {"1": "tools/list", "2": "resources/list", "3": "tools/call"}
    listed: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {"tools": [{"name": "fixture__a"}]},
    }
    resources: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": 2,
        "result": {"resources": [{"uri": "gw+test://x"}]},
    }
    called: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": 3,
        "result": {
            "content": [{"type": "resource", "resource": {"uri": "gw+test://e", "text": ""}}]
        },
    }
    missing: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": 4,
        "error": {"code": -32602, "message": "Unknown resource", "data": {"uri": "gw+test://m"}},
    }
    for message in (listed, resources, called, missing):
        names.message_to_client(message, methods)
    assert missing["error"]["data"] == {"uri": "test://m"}
    assert listed["result"]["tools"] == [{"name": "a"}]
    assert resources["result"]["resources"] == [{"uri": "test://x"}]
    assert called["result"]["content"][0]["resource"]["uri"] == "test://e"
    assert (
        names.mcp_name_to_gateway("tools/call", " test_simple_text ")
        == " fixture__test_simple_text "
    )


def test_sse_events_are_rewritten_one_by_one() -> None:
    names = adapter.Names("fixture__")
    methods = {"7": "tools/list"}
    event = [
        b"id: 4\n",
        b'data: {"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"fixture__a"}]}}\n',
        b"\n",
    ]
    out = adapter._rewrite_event(event, lambda p: names.payload_to_client(p, methods))
    assert out == b'id: 4\ndata: {"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"a"}]}}\n\n'
    priming = [b"id: 1\n", b"retry: 100\n", b"data: \n", b"\n"]
    assert adapter._rewrite_event(priming, lambda p: None) == b"".join(priming)


class _SchemeUris:
    def to_gateway(self, uri: str) -> str:
        return "gw+" + uri

    def to_client(self, uri: str) -> str:
        return uri.removeprefix("gw+")


def test_the_gateway_serves_the_fixture_with_the_default_era(tmp_path: Path) -> None:
    """The gateway's results are those of `protocolEra: auto`, what users get (no pin)."""
    run.gateway_manifests(tmp_path, "http://127.0.0.1:1/mcp")
    docs = [json.loads(d) for d in (tmp_path / "conformance.yaml").read_text().split("---\n")]
    (server,) = [d for d in docs if d["kind"] == "MCPServer"]
    assert "protocolEra" not in server["spec"]


@pytest.mark.gateway_conformance
def test_gateway_keeps_every_scenario_the_fixture_passes(matrix: Any) -> None:
    regressions = run.gateway_regressions(matrix)
    assert not regressions, (
        "pass directly, fail through the gateway:\n"
        + "\n".join(regressions)
        + "\n"
        + run.table(matrix)
    )
    for suite_run, expected in EXPECTED_SCORED.items():
        scenarios = matrix[suite_run]["gateway"]
        assert sum(1 for s in scenarios.values() if s.scored and s.passed) == expected, suite_run
