"""Benchmark: the console's usage charts over a busy month of call records (not a test).

    python bench/console_usage.py [--records 200000] [--repeat 3]

Writes ``--records`` call records spread over 30 days into a real SQLite call log (the
gateway's own schema and sink), then times what the Usage page asks for a 30-day period: the
series per 12-hour bucket and the breakdowns by member, tool, server and outcome. "before"
is the former way (every row of the period streamed into Python and grouped there), kept
here as the reference; "after" is :mod:`mcpyard.gateway.services._calllog` (grouped in SQL, one row
per group back). Both must give the same answers. The two alternate, best of ``--repeat``;
wall and process CPU time (SQLite runs in this process) are printed in one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from mcpyard.gateway.services import _calllog, _records

DAY = 86400.0
OUTCOMES = ["ok"] * 90 + ["tool_error"] * 4 + ["upstream_error", "denied", "denied"] + [
    "rate_limited"] * 3


def records(n: int, now: float) -> list[_records.CallRecord]:
    rng = random.Random(7)
    out = []
    for _ in range(n):
        member = f"member-{rng.randrange(300)}"
        server = f"server-{rng.randrange(12)}"
        out.append(_records.CallRecord(
            time=now - rng.random() * 30 * DAY, workspace="eng", member=member,
            user=f"{member}@example.com", server=server, method="tools/call",
            target=f"{server}__tool_{rng.randrange(15)}", era="handshake",
            outcome=rng.choice(OUTCOMES), latency_ms=rng.lognormvariate(3, 1),
            request_bytes=200, response_bytes=900, config_revision="3f9a1c2e7b4d5a60"))
    return out


async def fill(path: Path, batch: list[_records.CallRecord]) -> None:
    async with _records.Recorder([_records.SQLiteSink(path)],
                                 max_queue=len(batch) + 1) as recorder:
        for r in batch:
            recorder.record(r)


# -- before: the former implementation, every row into Python ---------------------------------

def _usage_py(key: Any, rows: list[tuple[str, float]]) -> _calllog.Usage:
    latencies = sorted(v for o, v in rows if o not in ("rate_limited", "denied", "auth_failure"))
    outcomes = [o for o, _ in rows]
    return _calllog.Usage(key, len(rows), sum(o in _calllog.ERRORS for o in outcomes),
                          outcomes.count("rate_limited"), outcomes.count("denied"),
                          *(_calllog.percentile(latencies, q) for q in (0.5, 0.95, 0.99)))


def usage_by_py(r: _calllog.Reader, w: _calllog.Window, dimension: str,
                limit: int = 50) -> list[_calllog.Usage]:
    where, params = w.where()
    groups: dict[Any, list[tuple[str, float]]] = {}
    for key, outcome, latency in r.stream(
            f"SELECT {_calllog.DIMENSIONS[dimension]}, outcome, latency_ms FROM calls "
            f"WHERE {where}", params):
        groups.setdefault(key, []).append((outcome, latency))
    out = sorted((_usage_py(k, v) for k, v in groups.items()),
                 key=lambda u: (-u.calls, str(u.key)))
    return out[:limit]


def usage_over_time_py(r: _calllog.Reader, w: _calllog.Window,
                       step: float) -> list[_calllog.Usage]:
    where, params = w.where()
    groups: dict[int, list[tuple[str, float]]] = {}
    for bucket, outcome, latency in r.stream(
            f"SELECT {r.bucket()}, outcome, latency_ms FROM calls WHERE {where}",
            [step, *params]):
        groups.setdefault(int(bucket), []).append((outcome, latency))
    return [_usage_py(b * step, groups[b]) for b in sorted(groups)]


def usage_page(r: _calllog.Reader, w: _calllog.Window, by: Any, over: Any) -> Any:
    return (over(r, w, 12 * 3600.0),
            {d: by(r, w, d, 20) for d in ("member", "tool", "server", "outcome")})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    now = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "calls.db"
        asyncio.run(fill(path, records(args.records, now)))
        window = _calllog.Window(since=now - 30 * DAY, workspaces=("eng",))
        wall: dict[str, float] = {"before": float("inf"), "after": float("inf")}
        cpu: dict[str, float] = dict(wall)
        answers = {}
        ways = {"before": (usage_by_py, usage_over_time_py),
                "after": (_calllog.usage_by, _calllog.usage_over_time)}
        for _ in range(args.repeat):  # alternating, so that a load spike hits both
            for name, (by, over) in ways.items():
                with _calllog.open_reader(path) as reader:
                    start, start_cpu = time.perf_counter(), time.process_time()
                    answers[name] = usage_page(reader, window, by, over)
                    wall[name] = min(wall[name], time.perf_counter() - start)
                    cpu[name] = min(cpu[name], time.process_time() - start_cpu)
        assert answers["before"] == answers["after"], "the two ways disagree"
        print(json.dumps({
            "records": args.records, "buckets": len(answers["after"][0]),
            "before_wall_s": round(wall["before"], 3), "after_wall_s": round(wall["after"], 3),
            "before_cpu_s": round(cpu["before"], 3), "after_cpu_s": round(cpu["after"], 3),
            "cpu_ratio": round(cpu["before"] / cpu["after"], 2),
            "python": platform.python_version(), "machine": platform.machine()}))


if __name__ == "__main__":
    main()
