"""Discovery of a server that does not answer backs off, up to 10 minutes and never past the
refresh interval, each wait spread ±20% (thousands of unreachable servers retried every
minute kept the operator's loop busy); the server's health says why after three failures."""

from __future__ import annotations

import pytest

from mcpyard.compiler.config import ServerConfig
from mcpyard.operator import Settings
from mcpyard.operator._discovery import MAX_BACKOFF, Scheduler
from mcpyard.operator._informer import Indexes
from mcpyard.operator._runtime import Runtime, WorkKey

pytestmark = pytest.mark.anyio
KEY = ("team-eng", "dead")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _runtime(interval: float) -> tuple[Runtime, list[WorkKey]]:
    settings = Settings(operator_namespace="mcpyard", discovery_interval=interval,
                        discovery_timeout=5)
    rt = Runtime(settings=settings, client=None, store=None, catalog={},  # type: ignore[arg-type]
                 indexes=Indexes())
    # Nothing listens on the discard port: each attempt is refused at once.
    server = ServerConfig(slug="dead", name="dead", namespace="team-eng", mode="proxy",
                          transport="streamable-http", url="http://127.0.0.1:9/mcp")
    rt.servers[KEY] = ("eng", server)
    requested: list[WorkKey] = []
    rt.request = lambda key, **_: requested.append(key)  # type: ignore[method-assign]
    return rt, requested


async def _delays(interval: float, attempts: int) -> tuple[list[float], Runtime, list[WorkKey]]:
    rt, requested = _runtime(interval)
    scheduler = Scheduler(rt, workers=0)
    try:
        delays = []
        for _ in range(attempts):
            delay = await scheduler.once(KEY)
            assert delay is not None
            delays.append(delay)
        return delays, rt, requested
    finally:
        await scheduler.close()


async def test_a_dead_server_backs_off_to_ten_minutes_spread() -> None:
    delays, rt, requested = await _delays(3600, 14)
    nominal = [min(MAX_BACKOFF, 0.25 * 2.0**n) for n in range(1, 15)]
    for delay, expected in zip(delays, nominal, strict=True):
        assert 0.8 * expected <= delay <= 1.2 * expected, (delays, nominal)
    assert max(delays) > 300  # not the minute it used to stop at
    assert len(set(delays[-3:])) == 3  # spread, not in step
    # Reported not serving after the third failure, with one reconcile of its workspace.
    assert rt.health[KEY][0] is False and "tools/list failed" in rt.health[KEY][1]
    assert requested == [("ws", "eng")]


async def test_the_backoff_never_passes_the_refresh_interval() -> None:
    delays, _, _ = await _delays(5.0, 8)
    assert max(delays) <= 5.0 * 1.2
    assert min(delays[-3:]) >= 5.0 * 0.8
