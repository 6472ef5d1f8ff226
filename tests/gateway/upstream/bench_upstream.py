"""CPU per call of the streamable HTTP upstream client vs a bare aiohttp POST loop.

    /work/venv/bin/python tests/gateway/upstream/bench_upstream.py [--calls 2000] [--uvloop]

Starts ``../shared/bench/echo_server.py``'s server (``--stateless --json``) on loopback and
measures this process's CPU time (``time.process_time``) for sequential and 64-concurrent
``tools/call echo``, alternating the two clients; then the cost of a new owner's first call
with one shared initialization (a stateless server) vs one handshake per owner (the same
server, stateful: it issues session ids).
A benchmark, not a test: never run by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).parent))

from uphelpers import ECHO_SERVER, Vault, config, running

from mcpyard.gateway import upstream
from mcpyard.gateway.upstream import Owner

OWNER = Owner("team/alice", "s1")
ARGS = {"name": "echo", "arguments": {"text": "hello"}}


async def nothing(slug: str, message: dict[str, Any]) -> None:
    return None


async def measure(n: int, concurrency: int, one: Callable[[], Awaitable[Any]]) -> float:
    """CPU µs per call for n calls at the given concurrency."""
    for _ in range(50):  # warm the pool
        await one()
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await one()

    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - cpu) / n * 1e6


async def main(calls: int, rounds: int) -> None:
    with running(
        "--transport", "streamable-http", "--stateless", "--json", "--app-from", ECHO_SERVER
    ) as srv:
        url = srv.url
        client = upstream.create(config(url=url), secrets=Vault(), on_notification=nothing)
        await client.start()
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-11-25",
        }
        connector = aiohttp.TCPConnector(limit=100)
        bare_http = aiohttp.ClientSession(connector=connector)
        ids = iter(range(1, 1 << 40))

        async def bare() -> Any:
            body = orjson.dumps(
                {"jsonrpc": "2.0", "id": next(ids), "method": "tools/call", "params": ARGS}
            )
            async with bare_http.post(url, data=body, headers=headers) as resp:
                return orjson.loads(await resp.read())["result"]

        async def ours() -> Any:
            return await client.request("tools/call", ARGS, owner=OWNER)

        assert (await bare())["content"][0]["text"] == "hello"
        assert (await ours())["content"][0]["text"] == "hello"
        results: dict[tuple[str, int], list[float]] = {}
        for _ in range(rounds):
            for concurrency in (1, 64):
                for name, fn in (("bare aiohttp", bare), ("mcpyard client", ours)):
                    results.setdefault((name, concurrency), []).append(
                        await measure(calls, concurrency, fn)
                    )
        print(f"CPU µs per call (median of {rounds} rounds of {calls} calls), loop={loop_name()}")
        for concurrency in (1, 64):
            b = statistics.median(results[("bare aiohttp", concurrency)])
            o = statistics.median(results[("mcpyard client", concurrency)])
            line = f"  c={concurrency:<3} bare aiohttp {b:6.0f}   mcpyard client {o:6.0f}"
            print(f"{line}   ({o - b:+.0f})")
        await bare_http.close()
        await client.close()
        await first_calls(url, "one shared initialization")
    with running("--transport", "streamable-http", "--json", "--app-from", ECHO_SERVER) as srv:
        await first_calls(srv.url, "a handshake per owner   ")


async def first_calls(url: str, label: str) -> None:
    """The first call of 300 new owners: CPU and wall time per owner."""
    client = upstream.create(config(url=url), secrets=Vault(), on_notification=nothing)
    await client.start()
    owners = [Owner("team/m", f"s{i}") for i in range(300)]
    cpu, wall = time.process_time(), time.perf_counter()
    for owner in owners:
        await client.request("tools/call", ARGS, owner=owner)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(
        f"  first call of 300 new owners, {label}: "
        f"{cpu / 300 * 1e6:6.0f} µs CPU, {wall / 300 * 1e3:.2f} ms wall per owner"
    )
    await client.close()


def loop_name() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--uvloop", action="store_true")
    a = ap.parse_args()
    if a.uvloop:
        import uvloop

        uvloop.run(main(a.calls, a.rounds))
    else:
        asyncio.run(main(a.calls, a.rounds))
