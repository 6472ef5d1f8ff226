"""Fixtures of the chart tests; the helpers live in helmrender.py (a unique module name, since
every test folder has its own conftest)."""

from __future__ import annotations

import pytest
from helmrender import VALUE_SETS, Render, Rendered, render


@pytest.fixture(scope="session")
def default_render() -> Rendered:
    return render()


@pytest.fixture
def chart_render() -> Render:
    """``chart_render(values, namespace=..., name=...)``: a fresh render."""
    return render


@pytest.fixture(params=list(VALUE_SETS), scope="session")
def option_render(request: pytest.FixtureRequest) -> tuple[str, Rendered]:
    """(name, render) for every value set in VALUE_SETS."""
    return request.param, render(VALUE_SETS[request.param])
