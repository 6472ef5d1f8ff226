#!/usr/bin/env python3
"""Benchmark: the gateway against its upstream called directly, same run, alternating.

    python bench/gateway.py [--seconds 8] [--rounds 1] [--concurrency 1,16,64] [--out FILE]
                            [--profile cprofile|py-spy]
    python bench/gateway.py --compare records|tracing [--rounds 5] [--concurrency 16,64]
    python bench/gateway.py --compare rev --rev REV [--rounds 5] [--concurrency 16,64]

Starts the echo upstream (``../shared/bench/echo_server.py --stateless --json``), writes a
temporary folder of manifests (a workspace proxying it, one member with a fresh token), runs
``mcpyard serve`` on it, then runs ``../shared/bench/loadgen.py`` at each concurrency, direct
and through the gateway, alternating. Prints a table with the ratio gateway/direct
(``../shared/bench/fmt.py``) and the p50 latency the gateway adds at c=1; writes the JSON lines
to ``--out`` (default ``bench/results/gateway-<time>.jsonl``). With ``--profile`` the gateway
runs under cProfile (stats written next to the results) or py-spy (a flame graph SVG).

``--compare records`` measures what the call records cost instead: two gateways on the same
manifests and upstream, one keeping records (SQLite call log; metrics and rate limits as
always) and one with ``--no-records``, alternating at each concurrency for ``--rounds``
rounds. It prints, per concurrency, the median throughput of each and the median of the
per-round ratios with their range, and the gateway's CPU per call (from loadgen's
``--watch-pids``), which a busy machine disturbs less than throughput.

``--compare tracing`` does the same for traces: one gateway exporting a span tree per request
over OTLP/HTTP (``OTEL_EXPORTER_OTLP_ENDPOINT``, to a sink in this process) against one
without the variable (tracing off: no middleware, no OpenTelemetry import).

``--compare rev --rev REV`` compares code: the gateway of git revision REV (its ``mcpyard``
package exported with ``git archive``, first on PYTHONPATH) against the working tree's, on the
same manifests, upstream and interpreter (a refactoring shows what it costs per call).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# ../shared/bench beside the checkout; a worktree under /work/wt/ finds it one level up.
SHARED = next((p.resolve() for p in (ROOT / ".." / "shared" / "bench",
                                     ROOT / ".." / ".." / "shared" / "bench") if p.is_dir()),
              (ROOT / ".." / "shared" / "bench").resolve())
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import urllib.error
    import urllib.request

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"process for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                body = r.read()
                if b'"healthy"' in body or url.endswith("/mcp"):
                    return
        except urllib.error.HTTPError as exc:
            if url.endswith("/mcp") and exc.code in (400, 405, 406):
                return  # the upstream answers: it is up
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} not ready after {timeout} s")


@contextlib.contextmanager
def process(cmd: list[str], **kw: object) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, **kw)  # type: ignore[call-overload]
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def manifests(folder: Path, upstream: str, token_hash: str) -> None:
    (folder / "bench.yaml").write_text(f"""\
apiVersion: mcpyard.io/v1alpha1
kind: Workspace
metadata: {{name: bench, namespace: bench}}
spec:
  displayName: Benchmark
  plan: business
  rateLimit: {{requestsPerMinute: 100000000}}  # measure the gateway, not its plan
---
apiVersion: mcpyard.io/v1alpha1
kind: MCPServer
metadata: {{name: echo, namespace: bench}}
spec:
  workspace: bench
  proxy: {{url: "{upstream}", transport: streamable-http, timeoutSeconds: 30}}
---
apiVersion: mcpyard.io/v1alpha1
kind: Member
metadata: {{name: bench, namespace: bench}}
spec:
  workspace: bench
  user: bench@example.com
  tokenHash: {token_hash}
""")


def loadgen(url: str, tool: str, c: int, seconds: float, label: str, out: Path,
            token: str | None, pids: list[int]) -> dict[str, object]:
    cmd = [PY, str(SHARED / "loadgen.py"), "--url", url, "--tool", tool,
           "--args", '{"text":"hello"}', "--concurrency", str(c), "--seconds", str(seconds),
           "--label", label, "--out", str(out), "--watch-pids", ",".join(map(str, pids))]
    if token:
        cmd += ["--token", token]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    line = [x for x in done.stdout.splitlines() if x.startswith("{")][-1]
    result: dict[str, object] = json.loads(line)
    return result


def run(args: argparse.Namespace, levels: list[int], direct: str, via: str, token: str,
        out: Path, upstream: subprocess.Popen[bytes],
        gateway: subprocess.Popen[bytes]) -> list[dict[str, object]]:
    rows = []
    for _ in range(args.rounds):
        for c in levels:
            rows.append(loadgen(direct, "echo", c, args.seconds, "direct", out, None,
                                [upstream.pid]))
            rows.append(loadgen(via, "echo__echo", c, args.seconds, "gateway", out, token,
                                [gateway.pid, upstream.pid]))
    return rows


def cpu_us_per_call(row: dict[str, object], pid: int) -> float:
    """The watched process's CPU per call in microseconds (cpu % of one core / calls/s)."""
    pct = float(row["watched_cpu_pct"][str(pid)])  # type: ignore[index]
    return pct / 100 / max(1e-9, float(row["calls_per_s"])) * 1e6  # type: ignore[arg-type]


@contextlib.contextmanager
def otlp_sink() -> Iterator[str]:
    """An OTLP/HTTP endpoint that accepts and discards every export (the tracing-on gateway's
    collector: what is measured is the gateway's side)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def export(rev: str, dest: Path) -> Path:
    """The ``mcpyard`` package of git revision ``rev``, written below ``dest``."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "mcpyard"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


COMPARISONS = {
    # name: (baseline label, measured label)
    "records": ("no-records", "records"),
    "tracing": ("tracing-off", "tracing-on"),
    "rev": ("rev", "tree"),
}


def compare(args: argparse.Namespace, levels: list[int], folder: Path, tmp: Path,
            token: str, out: Path, env: dict[str, str]) -> None:
    import statistics

    base_label, other_label = COMPARISONS[args.compare]
    ports = {other_label: free_port(), base_label: free_port()}
    with contextlib.ExitStack() as stack:
        procs = {}
        otlp = stack.enter_context(otlp_sink()) if args.compare == "tracing" else ""
        for label, port in ports.items():
            cmd = [PY, "-m", "mcpyard", "serve", str(folder), "--port", str(port),
                   "--state-dir", str(tmp / label), "--log-level", "warning", "--no-watch"]
            penv = dict(env)
            penv.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
            if label == "no-records":
                cmd.append("--no-records")
            if label == "tracing-on":
                penv["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp
            if label == "rev":
                penv["PYTHONPATH"] = str(export(args.rev, tmp / "rev-src"))
            procs[label] = stack.enter_context(process(cmd, env=penv, stdout=subprocess.DEVNULL))
        for label, port in ports.items():
            wait_ready(f"http://127.0.0.1:{port}/readyz", procs[label])
        rows: list[dict[str, object]] = []
        for i in range(args.rounds):
            for c in levels:
                # Alternate which goes first, so neither always follows the other's load.
                order = list(ports) if i % 2 == 0 else list(reversed(ports))
                for label in order:
                    url = f"http://127.0.0.1:{ports[label]}/ws/bench/mcp"
                    row = loadgen(url, "echo__echo", c, args.seconds, label, out, token,
                                  [procs[label].pid])
                    row["cpu_us_per_call"] = cpu_us_per_call(row, procs[label].pid)
                    row["round"] = i
                    rows.append(row)
    subprocess.run([PY, str(SHARED / "fmt.py"), "--ratio-to", base_label, str(out)],
                   check=True)
    print()
    print(f"| c | {base_label} calls/s | {other_label} calls/s | ratio (median, range) "
          f"| CPU/call {base_label} | CPU/call {other_label} | CPU cost |")
    print("|---|---|---|---|---|---|---|")
    def of(label: str, key: str, c: int) -> list[float]:
        return [float(r[key]) for r in rows  # type: ignore[arg-type]
                if r["label"] == label and r["concurrency"] == c]

    for c in levels:
        on, off = of(other_label, "calls_per_s", c), of(base_label, "calls_per_s", c)
        ratios = [a / b for a, b in zip(on, off, strict=True)]
        cpu_on = of(other_label, "cpu_us_per_call", c)
        cpu_off = of(base_label, "cpu_us_per_call", c)
        med_on, med_off = statistics.median(cpu_on), statistics.median(cpu_off)
        print(f"| {c} | {statistics.median(off):,.0f} ({min(off):,.0f}-{max(off):,.0f}) "
              f"| {statistics.median(on):,.0f} ({min(on):,.0f}-{max(on):,.0f}) "
              f"| {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f}) "
              f"| {med_off:.0f} µs ({min(cpu_off):.0f}-{max(cpu_off):.0f}) "
              f"| {med_on:.0f} µs ({min(cpu_on):.0f}-{max(cpu_on):.0f}) "
              f"| {(med_on / med_off - 1) * 100:+.1f}% |")
    print(f"results: {out}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--rounds", type=int, default=1, help="repeat the whole alternation")
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--profile", choices=["cprofile", "py-spy"])
    ap.add_argument("--compare", choices=sorted(COMPARISONS),
                    help="records: gateway with call records vs --no-records; tracing: "
                         "OTLP export on (to a local sink) vs off; rev: the gateway of --rev "
                         "vs the working tree's; alternating")
    ap.add_argument("--rev", help="with --compare rev: the git revision to compare against")
    args = ap.parse_args()
    if (args.compare == "rev") != bool(args.rev):
        ap.error("--rev goes with --compare rev, and --compare rev needs --rev")
    sys.path.insert(0, str(ROOT))
    from mcpyard.crypto import tokens

    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or ROOT / "bench" / "results" / f"gateway-{stamp}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    levels = [int(c) for c in args.concurrency.split(",")]
    token = tokens.new()
    up_port, gw_port = free_port(), free_port()
    direct = f"http://127.0.0.1:{up_port}/mcp"
    via = f"http://127.0.0.1:{gw_port}/ws/bench/mcp"
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "manifests"
        folder.mkdir()
        manifests(folder, direct, tokens.hash(token))
        if args.compare:
            with process([PY, str(SHARED / "echo_server.py"), "--port", str(up_port),
                          "--stateless", "--json"]) as upstream:
                wait_ready(direct, upstream)
                compare(args, levels, folder, Path(tmp), token, out, env)
            return 0
        gw_cmd = [PY, "-m", "mcpyard", "serve", str(folder), "--port", str(gw_port),
                  "--state-dir", str(Path(tmp) / "state"), "--log-level", "warning",
                  "--no-watch"]
        prof_out = out.with_suffix(".prof" if args.profile == "cprofile" else ".svg")
        if args.profile == "cprofile":
            gw_cmd = [PY, "-m", "cProfile", "-o", str(prof_out), *gw_cmd[1:]]
        elif args.profile == "py-spy":
            gw_cmd = ["py-spy", "record", "-o", str(prof_out), "--", *gw_cmd]
        with process([PY, str(SHARED / "echo_server.py"), "--port", str(up_port),
                      "--stateless", "--json"]) as upstream:
            wait_ready(direct, upstream)
            with process(gw_cmd, env=env, stdout=subprocess.DEVNULL) as gateway:
                wait_ready(f"http://127.0.0.1:{gw_port}/readyz", gateway)
                rows = run(args, levels, direct, via, token, out, upstream, gateway)
                if args.profile == "cprofile":
                    gateway.send_signal(signal.SIGINT)  # cProfile writes stats on a clean exit
                    gateway.wait(30)
    subprocess.run([PY, str(SHARED / "fmt.py"), "--ratio-to", "direct", str(out)], check=True)
    for c in levels:
        d = [r for r in rows if r["label"] == "direct" and r["concurrency"] == c]
        g = [r for r in rows if r["label"] == "gateway" and r["concurrency"] == c]
        ratio = sum(float(x["calls_per_s"]) for x in g) / max(
            1e-9, sum(float(x["calls_per_s"]) for x in d))
        added = (sum(float(x["p50_ms"]) for x in g) - sum(float(x["p50_ms"]) for x in d)) / len(g)
        print(f"c={c:<3d} gateway/direct = {ratio:.2f}x   p50 added = {added:.2f} ms")
    print(f"results: {out}")
    if args.profile:
        print(f"profile: {prof_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
