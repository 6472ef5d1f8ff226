"""One retry rule: the delay doubles after each failure up to its cap; a success resets it."""

from __future__ import annotations

import asyncio

import pytest

from mcpyard.mcp.backoff import Backoff

pytestmark = pytest.mark.anyio


async def test_delays_double_up_to_the_cap_and_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    backoff = Backoff(0.5, 3.0)
    for _ in range(5):
        await backoff.sleep()
    backoff.reset()
    await backoff.sleep()
    assert slept == [0.5, 1.0, 2.0, 3.0, 3.0, 0.5]
