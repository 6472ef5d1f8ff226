"""Golden cases: tests/data/compiler/<case>/input.yaml compiles to expected-<target>.yaml.

Regenerate after an intended change with ``MCPYARD_UPDATE_GOLDEN=1 pytest tests/compiler``
and review the diff like code.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcpyard import compiler, hub, manifests
from tests.conftest import ROOT

DATA = ROOT / "tests" / "data" / "compiler"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CASES = sorted(p.name for p in DATA.iterdir() if p.is_dir())


def compiled(case: str, target: str) -> dict[str, Any]:
    loaded = manifests.load([DATA / case / "input.yaml"])
    assert not loaded.errors and not loaded.problems
    result = compiler.compile(loaded.resources, now=NOW, catalog=hub.catalog(),
                              target=target)  # type: ignore[arg-type]
    return {
        "workspaces": [w.model_dump(mode="json") for w in result.workspaces.values()],
        "problems": [str(p) if p.severity == "error" else f"warning: {p}"
                     for p in result.problems],
        "failedWorkspaces": sorted(result.failed_workspaces),
        "statuses": {"/".join(k): v for k, v in result.statuses.items()},
        "children": [{"owner": "/".join(c.owner), "object": c.object} for c in result.children],
    }


@pytest.mark.parametrize("target", ["cluster", "local"])
@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, target: str) -> None:
    expected_file: Path = DATA / case / f"expected-{target}.yaml"
    got = compiled(case, target)
    if os.environ.get("MCPYARD_UPDATE_GOLDEN"):
        expected_file.write_text(yaml.safe_dump(got, sort_keys=False, width=100))
    assert got == yaml.safe_load(expected_file.read_text())


@pytest.mark.parametrize("case", CASES)
def test_deterministic_whatever_the_order(case: str) -> None:
    loaded = manifests.load([DATA / case / "input.yaml"])
    a = compiler.compile(loaded.resources, now=NOW, catalog=hub.catalog())
    b = compiler.compile(tuple(reversed(loaded.resources)), now=NOW, catalog=hub.catalog())
    assert a == b
