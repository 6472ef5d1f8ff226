"""The discovery tests reuse the gateway tests' helpers (real servers, `serve` processes, the
official SDK as client)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "gateway"))

from gwtools import anyio_backend

__all__ = ["anyio_backend"]
