"""Fixtures of the bridge tests (the helpers they use live in ``bridgetools``)."""

from __future__ import annotations

from bridgetools import anyio_backend, bridge_for

__all__ = ["anyio_backend", "bridge_for"]
