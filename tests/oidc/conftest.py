"""Fixtures of the OIDC sign-in tests: a real OpenID Connect provider (npm oidc-provider)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "console"))

from oidctools import Provider, provider


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """The provider, client ``mcpyard`` registered (and ``other``, a second client)."""
    with provider(tmp_path_factory.mktemp("oidc"), clients=("mcpyard", "other")) as p:
        yield p
