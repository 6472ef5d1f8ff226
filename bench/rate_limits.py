"""Benchmark: the cost of one rate-limit check, ``RateLimiter.hit()`` (not a test).

    python bench/rate_limits.py [--hits 20000] [--redis redis://127.0.0.1:6379/0]

For each backend (memory; Redis when ``--redis`` is given: a real server, it is FLUSHed of
nothing, keys live under ``mcpyard:``) and for a member with and without its own limit (two
checks or one), prints one JSON line: wall µs per hit one at a time, and this process's CPU µs
per hit with 16 hits in flight. Limits are high enough that every hit is admitted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time

from mcpyard.compiler.config import MemberConfig, WorkspaceConfig
from mcpyard.gateway.services import _limits


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def bench(url: str | None, member_limit: int | None, hits: int) -> dict[str, object]:
    ws = WorkspaceConfig(
        name=f"bench-{time.time_ns()}",
        namespace="bench",
        display_name="b",
        plan="business",
        requests_per_minute=10 * hits,
    )
    members = [
        MemberConfig(
            name=f"m{i}",
            user=f"m{i}@example.com",
            role="member",
            token_hash=None,
            requests_per_minute=member_limit,
        )
        for i in range(1000)
    ]
    limiter = _limits.create_limiter(url)
    try:
        for m in members[:10]:
            await limiter.hit(ws, m)  # connect, load the scripts
        t0 = time.perf_counter()
        for i in range(hits):
            assert await limiter.hit(ws, members[i % len(members)]) is None
        sequential = time.perf_counter() - t0

        async def worker(k: int) -> None:
            for i in range(k, hits, 16):
                assert await limiter.hit(ws, members[i % len(members)]) is None

        c0, t0 = cpu(), time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(16)))
        wall, used = time.perf_counter() - t0, cpu() - c0
    finally:
        await limiter.close()
    return {
        "bench": "limits",
        "backend": "redis" if url else "memory",
        "member_limit": member_limit is not None,
        "hits": hits,
        "sequential_us": round(sequential / hits * 1e6, 1),
        "concurrent16_cpu_us": round(used / hits * 1e6, 1),
        "concurrent16_hits_per_s": round(hits / wall),
    }


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hits", type=int, default=20_000)
    ap.add_argument("--redis", metavar="URL", help="also measure the Redis backend")
    args = ap.parse_args()
    for url in (None, args.redis) if args.redis else (None,):
        for member_limit in (None, 10 * args.hits):
            print(json.dumps(await bench(url, member_limit, args.hits)))


if __name__ == "__main__":
    asyncio.run(main())
