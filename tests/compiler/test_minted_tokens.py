"""A token the operator minted stands in for a missing tokenHash; the spec's own always wins."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mcpyard import compiler, hub
from mcpyard.api import v1alpha1
from tests.conftest import manifest

NOW = datetime(2026, 11, 25, tzinfo=UTC)
SPEC_HASH, MINTED = "sha256:" + "1" * 64, "sha256:" + "2" * 64
WS = manifest("Workspace", "eng")


def member(**spec: Any) -> dict[str, Any]:
    return manifest("Member", "dev", {"workspace": "eng", "user": "dev@x", **spec})


@pytest.mark.parametrize(
    ("spec", "minted", "expected", "ready"),
    [
        pytest.param({}, {}, None, "Unknown", id="no-token-yet"),
        pytest.param({}, {("team", "dev"): MINTED}, MINTED, "True", id="minted"),
        pytest.param(
            {"tokenHash": SPEC_HASH}, {("team", "dev"): MINTED}, SPEC_HASH, "True", id="spec-wins"
        ),
        pytest.param({}, {("other", "dev"): MINTED}, None, "Unknown", id="other-namespace"),
    ],
)
def test_minted_token_hash(
    spec: dict[str, Any], minted: dict[tuple[str, str], str], expected: str | None, ready: str
) -> None:
    out = compiler.compile(
        [v1alpha1.parse(d) for d in (WS, member(**spec))],
        now=NOW,
        catalog=hub.catalog(),
        target="cluster",
        observed=compiler.Observed(minted_token_hashes=minted),
    )
    assert out.errors == ()
    (cfg,) = out.workspaces["eng"].members
    assert cfg.token_hash == expected
    status = out.statuses[("team", "Member", "dev")]
    assert status["conditions"][-1]["status"] == ready
    assert out.statuses[("team", "Workspace", "eng")]["members"] == (1 if expected else 0)
