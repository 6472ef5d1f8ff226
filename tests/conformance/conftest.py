"""The `gateway_conformance` marker: the suite through the gateway, off until the lead enables it.

Selected by `-m gateway_conformance` or `MCPYARD_GATEWAY_CONFORMANCE=1`; otherwise deselected
(not skipped), so that once it is on, a gateway that cannot serve fails it loudly.
"""

from __future__ import annotations

import os

import pytest

MARKER = "gateway_conformance"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: the MCP conformance suite through `mcpyard serve` (opt-in)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("MCPYARD_GATEWAY_CONFORMANCE") == "1" or MARKER in (
        config.option.markexpr or ""
    ):
        return
    off = [item for item in items if item.get_closest_marker(MARKER)]
    if off:
        config.hook.pytest_deselected(items=off)
        items[:] = [item for item in items if not item.get_closest_marker(MARKER)]
