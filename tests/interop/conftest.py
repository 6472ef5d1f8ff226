"""Fixtures of the interop tests: the gateway helpers of ``tests/gateway`` (``gwtools``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "gateway"))

from gwtools import anyio_backend, settings_for, state_dir

__all__ = ["anyio_backend", "settings_for", "state_dir"]
