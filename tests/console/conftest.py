"""Fixtures of the console tests: the gateway tests' real upstreams and gateway runner, and a
headless Chromium (Debian's, driven by Playwright; tools/setup/41-chromium.sh installs it)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "gateway"))

from gwtools import anyio_backend, beta, settings_for, state_dir

__all__ = ["anyio_backend", "artifacts", "beta", "settings_for", "state_dir"]


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go: $MCPYARD_ARTIFACTS/console, else /tmp/mcpyard-artifacts/console."""
    root = Path(os.environ.get("MCPYARD_ARTIFACTS") or "/tmp/mcpyard-artifacts") / "console"
    root.mkdir(parents=True, exist_ok=True)
    return root
