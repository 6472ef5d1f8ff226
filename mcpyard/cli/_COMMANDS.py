"""The list of subcommand modules, in the order ``mcpyard --help`` shows them."""

from __future__ import annotations

import importlib
from types import ModuleType

_NAMES = (
    "serve",
    "validate",
    "render",
    "access",
    "audit",
    "token",
    "secret",
    "crds",
    "hub",
    "docs",
    "pin",
    "analytics",
    "operator",
    "gateway",
    "bridge",
)


def modules(only: str | None = None) -> list[ModuleType]:
    """Import every subcommand module that exists (each is ``mcpyard.cli._<name>``), or
    only the one of command ``only`` (what ``mcpyard ONLY ...`` needs: the operator does not
    import the gateway, a second of CPU at each start)."""
    out = []
    for name in (only,) if only in _NAMES else _NAMES:
        try:
            out.append(importlib.import_module(f"mcpyard.cli._{name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"mcpyard.cli._{name}":
                raise
    return out
