"""Each package's ``__all__`` is sorted and names exactly its public members (httpx style)."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = ["mcpyard.api.v1alpha1", "mcpyard.compiler", "mcpyard.hub", "mcpyard.crypto.tokens",
            "mcpyard.gateway", "mcpyard.gateway.upstream"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_honest(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    # isort-style, as ruff's RUF022 keeps it: CONSTANTS, then Classes, then functions.
    def order(s: str) -> tuple[int, str]:
        return (0 if s.isupper() else 1 if s[:1].isupper() else 2, s)

    assert exported == sorted(exported, key=order)
    for member in exported:
        assert hasattr(module, member), f"{name}.__all__ names missing {member}"
    public = {n for n, v in vars(module).items()
              if not n.startswith("_") and getattr(v, "__module__", "").startswith(name)}
    assert public <= set(exported), f"{name}: public but not exported: {public - set(exported)}"
