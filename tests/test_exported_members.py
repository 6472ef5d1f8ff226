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
    assert exported == sorted(exported, key=lambda s: (not s.isupper(), s.lower(), s))\
        or exported == sorted(exported)
    for member in exported:
        assert hasattr(module, member), f"{name}.__all__ names missing {member}"
    public = {n for n, v in vars(module).items()
              if not n.startswith("_") and getattr(v, "__module__", "").startswith(name)}
    assert public <= set(exported), f"{name}: public but not exported: {public - set(exported)}"
