"""Fixtures of the upstream-client tests (the helpers live in ``uphelpers``)."""

from __future__ import annotations

from uphelpers import anyio_backend, stateful, stateless_json

__all__ = ["anyio_backend", "stateful", "stateless_json"]
