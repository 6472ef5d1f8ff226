"""Fixtures of the OIDC sign-in tests: a real OpenID Connect provider (npm oidc-provider)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# consoletools (Chromium), gwtools (manifests, ports), oauthtools (mcpyard serve, token storage)
for _folder in ("console", "gateway", "oauth"):
    sys.path.insert(0, str(Path(__file__).parents[1] / _folder))

from oidctools import Provider, provider  # noqa: E402 - after the sys.path entries


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """The provider, client ``mcpyard`` registered (and ``other``, a second client)."""
    with provider(tmp_path_factory.mktemp("oidc"), clients=("mcpyard", "other")) as p:
        yield p
