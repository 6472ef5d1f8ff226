"""The gateway's cost per upstream server, in-process, with every server down (issue 18).

Starts N streamable-HTTP upstream handles (``Upstreams``, the real clients) whose URL is a
loopback port where nothing listens, as ``bench/operator_scale.py`` does through a real API
server, then lets the health loop retry them for SECONDS. Reports the process's RSS per server
once each was tried, the Python heap (tracemalloc, ``--tracemalloc``: now and at the peak), the
CPU spent per failed attempt, and the worst stall of the event loop per 10 s (a 10 ms ticker:
what a request or the config Secrets' watch would wait).

    .venv/bin/python bench/gateway_dead_upstreams.py --servers 2000 --seconds 60
    PYTHONPATH=/tmp/main .venv/bin/python bench/gateway_dead_upstreams.py ...   # before
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import resource
import time
import tracemalloc
from pathlib import Path

from mcpyard.compiler.config import ServerConfig
from mcpyard.gateway._upstreams import Handle, Upstreams


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(servers: int, seconds: float, trace: bool) -> None:
    upstreams = Upstreams(factory=None, secrets=None,  # type: ignore[arg-type]
                          workdir=Path("/tmp"), health_interval=5.0, metrics=None,
                          on_change=lambda h: None, on_notification=None)
    gc.collect()
    before = rss_mib()
    if trace:
        tracemalloc.start()
    handles = []
    for i in range(servers):
        server = ServerConfig(slug=f"s{i}", name=f"s{i}", namespace="ns", mode="proxy",
                              transport="streamable-http", url=f"http://127.0.0.1:9/ws{i}/mcp")
        handle = Handle(f"ws{i // 5}", server, digest="", blocked=None, lifecycle=upstreams)
        upstreams.start(handle)
        handles.append(handle)
    health = asyncio.create_task(upstreams.run_health(lambda: handles))
    t0, c0 = time.monotonic(), cpu()
    tried_at = None
    worst, last, marks = 0.0, time.monotonic(), []
    while time.monotonic() - t0 < seconds:
        await asyncio.sleep(0.01)
        now = time.monotonic()
        worst, last = max(worst, now - last - 0.01), now
        if tried_at is None and all(h.failures for h in handles):
            tried_at = now - t0
            gc.collect()
            print(f"every server tried after {tried_at:.1f}s: RSS {before:.0f} -> "
                  f"{rss_mib():.0f} MiB, {(rss_mib() - before) * 1024 / servers:.1f} KiB per "
                  "server", flush=True)
            if trace:
                current, peak = tracemalloc.get_traced_memory()
                print(f"Python heap {current / 2**20:.1f} MiB, {peak / 2**20:.1f} MiB at the "
                      "peak", flush=True)
        if now - t0 >= 10 * (len(marks) + 1):
            failures = sum(h.failures for h in handles)
            marks.append(f"{now - t0:.0f}s: worst stall {worst:.2f}s, {failures} failures, "
                         f"{cpu() - c0:.1f} CPU s")
            worst = 0.0
    failures = sum(h.failures for h in handles)
    print("\n".join(marks))
    print(f"{(cpu() - c0) * 1000 / max(failures, 1):.2f} ms CPU per failed attempt; "
          f"RSS {rss_mib():.0f} MiB at the end; load {os.getloadavg()[0]:.1f}")
    health.cancel()
    await upstreams.close(handles)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--servers", type=int, default=2000)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--tracemalloc", action="store_true")
    args = p.parse_args()
    logging.disable(logging.CRITICAL)  # 2 lines per dead server otherwise
    asyncio.run(run(args.servers, args.seconds, args.tracemalloc))


if __name__ == "__main__":
    main()
