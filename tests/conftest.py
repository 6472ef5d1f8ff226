"""Fixtures shared by every layer's tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "workspaces"
DEMO_AGE_KEY = ROOT / "examples" / "demo.agekey"

Manifest = Callable[..., dict[str, Any]]


def manifest(kind: str, name: str, spec: dict[str, Any] | None = None, *,
             namespace: str = "team", **extra: Any) -> dict[str, Any]:
    """A manifest as a user writes it."""
    doc: dict[str, Any] = {"apiVersion": "mcpyard.io/v1alpha1", "kind": kind,
                           "metadata": {"name": name, "namespace": namespace}}
    if spec is not None:
        doc["spec"] = spec
    doc.update(extra)
    return doc


@pytest.fixture
def make() -> Manifest:
    return manifest
