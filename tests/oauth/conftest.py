"""Fixtures of the OAuth tests: the gateway tests' helpers, the console tests' Chromium, and a
real upstream that echoes the headers it receives."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "gateway"))
sys.path.insert(0, str(Path(__file__).parents[1] / "console"))

from gwtools import UpstreamProcess, anyio_backend, settings_for, state_dir, upstream_process

__all__ = ["anyio_backend", "mirror", "settings_for", "state_dir"]


@pytest.fixture(scope="session")
def mirror() -> Iterator[UpstreamProcess]:
    """An upstream whose one tool, headers, returns every HTTP header it received."""
    with upstream_process("mirror") as up:
        yield up
