"""Benchmark: the hot-path cost of a call record (not a test).

    python bench/records.py [--calls 100000] [--audit]

What the router adds to each request: build a CallRecord, ``Recorder.record()`` it and
``Metrics.observe()`` it. Prints one JSON line of µs per call: each step alone, the three
together, and the process CPU per call including the background writes to a real SQLite file
(and a JSON-lines audit file with ``--audit``), which run off the event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import resource
import tempfile
import time
from pathlib import Path

from mcpyard.gateway.services import _audit, _metrics, _records


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make(i: int) -> _records.CallRecord:
    return _records.CallRecord(
        time=time.time(),
        workspace="eng",
        member=f"member-{i % 1000}",
        user=f"member-{i % 1000}@example.com",
        server="github",
        method="tools/call",
        target=f"github__tool_{i % 20}",
        era="handshake",
        outcome="ok",
        latency_ms=1.5,
        request_bytes=200,
        response_bytes=800,
        config_revision="rev",
        git_commit="0" * 40,
    )


async def run(calls: int, audit: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        sinks: list[_records.RecordSink] = [_records.SQLiteSink(Path(tmp) / "calls.db")]
        if audit:
            sinks.append(_audit.AuditSink(Path(tmp) / "audit.jsonl"))
        metrics = _metrics.Metrics()
        recorder = _records.Recorder(sinks, max_queue=calls * 2, on_drop=metrics.record_dropped)
        records = [make(i) for i in range(calls)]

        t0 = time.perf_counter()
        for i in range(calls):
            make(i)
        build = time.perf_counter() - t0

        t0 = time.perf_counter()
        for r in records:
            metrics.observe(r)
        observe = time.perf_counter() - t0

        t0 = time.perf_counter()
        for r in records:  # the writer is not started: this is record() alone
            recorder.record(r)
        record = time.perf_counter() - t0
        recorder._queue.clear()

        # All together on a running loop, yielding as a server does between requests, with
        # the writer task and its SQLite thread working meanwhile.
        recorder.start()
        c0, t0 = cpu(), time.perf_counter()
        for i in range(calls):
            r = make(i)
            recorder.record(r)
            metrics.observe(r)
            if i % 64 == 63:
                await asyncio.sleep(0)
        together = time.perf_counter() - t0
        await recorder.close()
        with_writes = cpu() - c0
        assert recorder.dropped == 0

    def us(seconds: float) -> float:
        return round(seconds / calls * 1e6, 2)

    return {
        "bench": "records",
        "calls": calls,
        "audit": audit,
        "build_us": us(build),
        "record_us": us(record),
        "observe_us": us(observe),
        "hot_path_us": us(together),
        "cpu_with_writes_us": us(with_writes),
        "python": platform.python_version(),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--audit", action="store_true", help="also write the JSON-lines audit log")
    args = ap.parse_args()
    print(json.dumps(asyncio.run(run(args.calls, args.audit))))


if __name__ == "__main__":
    main()
