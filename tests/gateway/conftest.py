"""Fixtures of the gateway tests (the helpers they use live in ``gwtools``)."""

from __future__ import annotations

from gwtools import alpha, anyio_backend, beta, settings_for, state_dir

__all__ = ["alpha", "anyio_backend", "beta", "settings_for", "state_dir"]
