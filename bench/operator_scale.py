"""The operator at scale, on a real kube-apiserver (issue 18).

Starts etcd + kube-apiserver 1.20 on loopback (tests/cluster/apiserver.py; built by
tools/kube-apiserver/install.sh), installs the CRDs, then creates WORKSPACES workspaces spread
over 10 namespaces, each with 5 proxied MCPServers and 10 Members with an access rule, and runs
``mcpyard operator --standalone`` as a process with the admin kubeconfig. It measures:

- the time from the operator's start to every config Secret written;
- the operator's peak RSS (VmHWM from /proc) and its RSS once idle;
- a revocation during the cold start: a Member of the last workspace patched ``disabled: true``
  as soon as the operator has written its first config Secret, until that workspace's config
  Secret shows the member disabled;
- the same revocation when the operator is idle.

With ``--gateway`` it also runs ``mcpyard gateway`` on the config Secrets (from the operator's
start) and measures its RSS serving every workspace, and the time from a Member patched
``disabled: true`` to the gateway refusing that member's token: during the cold start (a member
of the first workspace served, patched while the others are still being written) and when
idle. Members m1..m3 of every workspace have real tokens for that.

    .venv/bin/python bench/operator_scale.py --workspaces 1 30 100
    .venv/bin/python bench/operator_scale.py --workspaces 1000 --gateway

``--py-spy PATH`` records the operator with py-spy (collapsed stacks; ``pip install py-spy``).
``--tracemalloc PATH`` runs the operator under tracemalloc (this file's ``--traced``): once idle
the bench sends it SIGUSR1 and it writes the top allocations, by file and by line, to PATH;
``--gateway-tracemalloc PATH`` does the same for the gateway. With ``--gateway`` the idle
measurements wait until the gateway has tried every server once (``gw_all_tried_s`` from the
start); ``gw_cpu_idle`` is the share of a core it used in the 5 s after (retrying the dead
upstreams); the revocation times also go to stderr with the wall-clock time of each patch.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from mcpyard import kube  # noqa: E402
from mcpyard.crypto import tokens  # noqa: E402
from tests.cluster.apiserver import ApiServer, start  # noqa: E402
from tests.cluster.conftest import crd_documents, strip_cel  # noqa: E402
from tests.proctools import free_port  # noqa: E402

GROUP_VERSION = "mcpyard.io/v1alpha1"
OPERATOR_NS = "mcpyard"
NAMESPACES = 10
SERVERS = 5
MEMBERS = 10
T = TypeVar("T")


TOKENS = {m: tokens.new() for m in (1, 2, 3)}
"""Members m1..m3 of every workspace have a real token (the gateway is asked with it)."""


def resources(workspaces: int) -> list[dict[str, Any]]:
    """The scenario: WORKSPACES x (1 Workspace + 5 proxied servers + 10 members)."""
    out: list[dict[str, Any]] = []
    for i in range(workspaces):
        ws, ns = f"ws{i:04d}", f"team{i % NAMESPACES:02d}"

        def meta(name: str, ns: str = ns) -> dict[str, Any]:
            return {"name": name, "namespace": ns}

        out.append(
            {
                "apiVersion": GROUP_VERSION,
                "kind": "Workspace",
                "metadata": meta(ws),
                "spec": {"displayName": f"Workspace {i}", "plan": "pro"},
            }
        )
        for s in range(SERVERS):
            out.append(
                {
                    "apiVersion": GROUP_VERSION,
                    "kind": "MCPServer",
                    "metadata": meta(f"{ws}-s{s}"),
                    "spec": {
                        "workspace": ws,
                        # Nothing listens there: discovery fails fast and retries hourly.
                        "proxy": {"url": f"http://127.0.0.1:9/{ws}/s{s}/mcp"},
                    },
                }
            )
        for m in range(MEMBERS):
            digest = f"{i:06d}{m:04d}".ljust(64, "0")
            token_hash = tokens.hash(TOKENS[m]) if m in TOKENS else f"sha256:{digest}"
            out.append(
                {
                    "apiVersion": GROUP_VERSION,
                    "kind": "Member",
                    "metadata": meta(f"{ws}-m{m}"),
                    "spec": {
                        "workspace": ws,
                        "user": f"user{m}@ws{i}.example.com",
                        "tokenHash": token_hash,
                        "access": {"allow": [f"{ws}-s0__*", f"{ws}-s{m % SERVERS}__*"]},
                    },
                }
            )
    return out


def create_all(server: ApiServer, objs: Iterable[dict[str, Any]], threads: int = 8) -> None:
    local = threading.local()

    def one(obj: dict[str, Any]) -> None:
        if not hasattr(local, "client"):
            local.client = server.client()
        local.client.create_sync(obj)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, objs))


def wait(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")


def rss_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (what the load of the machine does not move)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def member_disabled(client: kube.Client, ws: str, member: str) -> bool:
    secret = client.get_sync("v1", "Secret", OPERATOR_NS, kube.config_secret_name(ws))
    if not secret:
        return False
    config = json.loads(base64.b64decode(secret["data"]["config.json"]))
    return any(m["name"] == member and m["disabled"] for m in config["members"])


def gateway_status(port: int, ws: str, token: str) -> int:
    """The HTTP status of an MCP initialize at the gateway with ``token`` (0: no answer)."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "opscale-bench", "version": "1"},
        },
    }
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json, text/event-stream",
    }
    try:
        with httpx.Client(timeout=10) as http:
            return http.post(f"http://127.0.0.1:{port}/ws/{ws}/mcp", json=body, headers=headers)\
                .status_code
    except httpx.HTTPError:
        return 0


def starting(port: int) -> int | None:
    """How many servers the gateway has not tried yet (None: no answer)."""
    try:
        body = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=30).json()
    except (httpx.HTTPError, ValueError):
        return None
    return sum(1 for ws in body.get("workspaces", {}).values()
               for status in ws.get("servers", {}).values() if status.get("status") == "starting")


def revoke(
    client: kube.Client, ws: str, ns: str, m: int, timeout: float, gateway: int | None = None
) -> tuple[float, float | None]:
    """Seconds from patching member ``m`` of ``ws`` disabled to its workspace's config Secret
    saying so, and (with a gateway) to the gateway refusing its token."""
    member = f"{ws}-m{m}"
    if gateway is not None:  # the gateway must serve it first
        wait(lambda: gateway_status(gateway, ws, TOKENS[m]) == 200, timeout, f"{ws} served")
    t0 = time.monotonic()
    client.patch_sync(GROUP_VERSION, "Member", ns, member, {"spec": {"disabled": True}})
    at_gateway: list[float] = []

    def refused() -> None:
        assert gateway is not None
        wait(lambda: gateway_status(gateway, ws, TOKENS[m]) in (401, 403), timeout, "refusal")
        at_gateway.append(time.monotonic() - t0)

    follower = threading.Thread(target=refused) if gateway is not None else None
    if follower is not None:
        follower.start()
    wait(lambda: member_disabled(client, ws, member), timeout, f"{member} disabled in {ws}")
    secret = time.monotonic() - t0
    if follower is not None:
        follower.join()
    patched = time.strftime("%H:%M:%S", time.gmtime(time.time() - (time.monotonic() - t0)))
    print(f"# {member} patched at {patched} UTC: config Secret +{secret:.2f}s, gateway "
          f"+{at_gateway[0] if at_gateway else -1:.2f}s", file=sys.stderr, flush=True)
    return secret, (at_gateway[0] if at_gateway else None)


def config_count(client: kube.Client) -> int:
    return len(client.list_sync("v1", "Secret", OPERATOR_NS, {kube.CONFIG_LABEL: "true"}))


def child_pid(pid: int) -> int:
    """The process py-spy started (its only child), once it exists."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return int(wait(lambda: path.read_text().split(), 60, "py-spy's child")[0])


def scenario(
    workspaces: int,
    work: Path,
    tracemalloc: str | None,
    profile: str | None = None,
    with_gateway: bool = False,
    gateway_path: str | None = None,
    gateway_log_level: str = "warning",
    gateway_traced: str | None = None,
) -> dict[str, Any]:
    server = start(work / "apiserver")
    operator: subprocess.Popen[bytes] | None = None
    gateway: subprocess.Popen[bytes] | None = None
    try:
        docs = [strip_cel(crd)[0] for crd in crd_documents()]
        server.apply(docs)
        for doc in docs:
            server.kubectl("wait", "--for=condition=Established", f"crd/{doc['metadata']['name']}")
        for ns in [OPERATOR_NS, *(f"team{i:02d}" for i in range(NAMESPACES))]:
            server.kubectl("create", "namespace", ns)
        objs = resources(workspaces)
        t0 = time.monotonic()
        create_all(server, objs)
        created = time.monotonic() - t0
        client = server.client()
        traced = [__file__, "--traced", tracemalloc, "--"] if tracemalloc else ["-m", "mcpyard"]
        log = (work / "operator.log").open("wb")
        args = ["--kubeconfig", str(server.kubeconfig), "--gateway-url", "https://gw.example.com"]
        spy = []
        if profile:
            spy = [str(Path(sys.executable).with_name("py-spy")), "record", "-r", "20", "-f"]
            spy += ["raw", "-o", profile, "--"]
        started = time.monotonic()
        operator = subprocess.Popen(
            [*spy, sys.executable, *traced, "operator", "--standalone", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=work,
        )
        pid = child_pid(operator.pid) if profile else operator.pid
        peak = [0.0]

        def sample() -> None:
            while operator.poll() is None:
                try:
                    peak[0] = max(peak[0], rss_mib(pid)[1])
                except (OSError, KeyError):
                    return
                time.sleep(0.2)

        threading.Thread(target=sample, daemon=True).start()
        port: int | None = None
        if with_gateway:
            port = free_port()
            gw_traced = [__file__, "--traced", gateway_traced, "--"] if gateway_traced else [
                "-m", "mcpyard"]
            gateway = subprocess.Popen(
                [sys.executable, *gw_traced, "gateway", "--kubeconfig",
                 str(server.kubeconfig), "--port", str(port), "--state-dir", str(work / "gw"),
                 "--no-records", "--log-level", gateway_log_level],
                stdout=(work / "gateway.log").open("wb"),
                env={**os.environ, **({"PYTHONPATH": gateway_path} if gateway_path else {})},
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=work,
            )
        last = workspaces - 1
        last_ws, last_ns = f"ws{last:04d}", f"team{last % NAMESPACES:02d}"
        # During the cold start: as soon as the first config Secret is written.
        wait(lambda: config_count(client) > 0, 600, "the first config Secret", every=0.02)
        first = time.monotonic() - started
        cold_revoke, _ = revoke(client, last_ws, last_ns, 1, 600)
        cold_gateway: tuple[float, float | None] = (0.0, None)
        if port is not None:  # the first workspace served, revoked while the others load
            ws0 = kube.config_workspace(
                client.list_sync("v1", "Secret", OPERATOR_NS, {kube.CONFIG_LABEL: "true"})[0]
            )
            ns0 = f"team{int(ws0[2:]) % NAMESPACES:02d}"
            cold_gateway = revoke(client, ws0, ns0, 3, 600, gateway=port)
            during_start = config_count(client) < workspaces
        wait(
            lambda: config_count(client) >= workspaces,
            1200,
            f"{workspaces} config Secrets",
            every=0.1,
        )
        all_written = time.monotonic() - started
        cpu_all_written = cpu_seconds(pid)
        gw_tried = 0.0
        if port is not None:  # every server started and tried once (all of them down here)
            wait(lambda: starting(port) == 0, 1200, "the gateway to try every server", every=2)
            gw_tried = time.monotonic() - started
        gw_cpu = cpu_seconds(gateway.pid) if gateway is not None else 0.0
        time.sleep(5)  # let status patches and discovery settle before the idle measurement
        if gateway is not None:  # the share of a core the gateway took, idle (retries)
            gw_cpu = (cpu_seconds(gateway.pid) - gw_cpu) / 5
        idle_revoke, idle_gateway = revoke(client, last_ws, last_ns, 2, 120, gateway=port)
        if tracemalloc:
            operator.send_signal(signal.SIGUSR1)
            wait(lambda: Path(tracemalloc).exists(), 600, "the tracemalloc report")
        if gateway is not None and gateway_traced:
            gateway.send_signal(signal.SIGUSR1)
            wait(lambda: Path(gateway_traced).exists(), 600, "the gateway's tracemalloc report")
        rss, hwm = rss_mib(pid)
        if profile:
            operator.send_signal(signal.SIGINT)  # py-spy writes its profile and ends
            operator.wait(120)
        return {
            "workspaces": workspaces,
            "resources": len(objs),
            "create_s": round(created, 1),
            "first_secret_s": round(first, 2),
            "all_secrets_s": round(all_written, 1),
            "cpu_s_at_all_secrets": round(cpu_all_written, 1),
            "revoke_cold_s": round(cold_revoke, 2),
            "revoke_idle_s": round(idle_revoke, 2),
            "rss_idle_mib": round(rss),
            "rss_peak_mib": round(max(hwm, peak[0])),
            **(
                {
                    "gw_revoke_cold_secret_s": round(cold_gateway[0], 2),
                    "gw_revoke_cold_s": round(cold_gateway[1] or -1, 2),
                    "gw_revoke_cold_during_start": during_start,
                    "gw_revoke_idle_s": round(idle_gateway or -1, 2),
                    "gw_cpu_idle": round(gw_cpu, 2),
                    "gw_all_tried_s": round(gw_tried, 1),
                    "gw_rss_mib": round(rss_mib(gateway.pid)[0]),
                    "gw_rss_peak_mib": round(rss_mib(gateway.pid)[1]),
                }
                if gateway is not None
                else {}
            ),
        }
    finally:
        for process in (gateway, operator):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
        server.stop()


def traced(out: str, argv: list[str]) -> None:
    """Run ``mcpyard ARGV`` under tracemalloc; SIGUSR1 writes the top allocations to OUT."""
    import tracemalloc

    from mcpyard.cli import main as mcpyard_main

    tracemalloc.start(4)

    def report(*_: Any) -> None:
        snap = tracemalloc.take_snapshot()
        now, peak = tracemalloc.get_traced_memory()
        lines = [f"traced {now / 2**20:.1f} MiB now, {peak / 2**20:.1f} MiB at the peak"]
        for group in ("filename", "lineno", "traceback"):
            lines.append(f"## by {group}")
            for stat in snap.statistics(group)[: 8 if group == "traceback" else 30]:
                lines.append(f"{stat.size / 2**20:8.2f} MiB {stat.count:8d} {stat.traceback}")
                if group == "traceback":
                    lines.extend(f"      {frame}" for frame in stat.traceback.format()[-12:])
        Path(out).write_text("\n".join(lines) + "\n")

    signal.signal(signal.SIGUSR1, report)
    sys.argv = ["mcpyard", *argv]
    sys.exit(mcpyard_main())


def main() -> None:
    if len(sys.argv) > 3 and sys.argv[1] == "--traced":
        traced(sys.argv[2], sys.argv[4:])
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workspaces", type=int, nargs="+", default=[1, 30, 100])
    p.add_argument("--tracemalloc", default=None, metavar="PATH")
    p.add_argument(
        "--py-spy",
        default=None,
        metavar="PATH",
        help="record the operator with py-spy (collapsed stacks, in PATH)",
    )
    p.add_argument(
        "--gateway", action="store_true", help="also run `mcpyard gateway` and measure it"
    )
    p.add_argument(
        "--gateway-pythonpath",
        default=None,
        metavar="DIR",
        help="run the gateway from another checkout (e.g. a `git archive` of main)",
    )
    p.add_argument("--gateway-log-level", default="warning",
                   help="the gateway's --log-level (its log: WORK/gateway.log, with --keep)")
    p.add_argument("--gateway-tracemalloc", default=None, metavar="PATH",
                   help="run the gateway under tracemalloc; its report (once idle) in PATH")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    args = p.parse_args()
    print(f"# {platform.node()}: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    for n in args.workspaces:
        work = Path(tempfile.mkdtemp(prefix=f"opscale-{n}-"))
        result = scenario(
            n, work, args.tracemalloc, args.py_spy, args.gateway, args.gateway_pythonpath,
            args.gateway_log_level, args.gateway_tracemalloc,
        )
        print(json.dumps(result), flush=True)
        if not args.keep:
            subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
