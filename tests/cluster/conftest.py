"""Fixtures of the cluster tests: one real kube-apiserver per test session (see apiserver.py),
the mcpyard CRDs installed on it, the chart's ServiceAccounts and RBAC applied from the
rendered chart, and `mcpyard` processes (operator, gateway) run as those ServiceAccounts."""

from __future__ import annotations

import base64
import contextlib
import copy
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import httpx2
import pytest
import yaml
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from mcpyard import kube
from tests.chart.helmrender import Rendered, render
from tests.cluster.apiserver import ROOT, ApiServer, start
from tests.conftest import DEMO_AGE_KEY
from tests.operator import conftest as operator_conftest
from tests.operator.conftest import demo_server  # noqa: F401 (the demo MCP server fixture)
from tests.probes import initialize_body

OPERATOR_NS = "mcpyard"
CRDS = ROOT / "crds"
OPERATOR_SA = "mcpyard-operator"
GATEWAY_SA = "mcpyard-gateway"
# What `helm install` would create besides the workloads, which cannot run here (no kubelet):
# the components run as processes instead, with these ServiceAccounts' tokens.
INSTALLED_KINDS = (
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Secret",
)
T = TypeVar("T")


@contextlib.contextmanager
def admin_client(apiserver: ApiServer, *workspaces: str) -> Iterator[kube.Client]:
    """An admin client that deletes, when done, the config Secrets a test wrote for
    ``workspaces`` (each name a prefix): the journey expects the operator's config Secrets only."""
    client = apiserver.client()
    prefixes = tuple(kube.config_secret_name(ws) for ws in workspaces)
    try:
        yield client
    finally:
        for secret in client.list_sync("v1", "Secret", OPERATOR_NS, {kube.CONFIG_LABEL: "true"}):
            name = str(secret["metadata"]["name"])
            if name.startswith(prefixes):
                client.delete_sync("v1", "Secret", OPERATOR_NS, name)
        client.close()


def wait_for(check: Callable[[], T | None], *, timeout: float = 60.0, what: str = "condition") -> T:
    """Poll ``check`` under a deadline (a real server on a loaded machine: 60 s by default)."""
    return operator_conftest.wait_for(check, timeout=timeout, what=what)


def apply_examples(apiserver: ApiServer) -> str:
    """The examples as docs/kubernetes.md has the user apply them: the team folders without
    the standalone-only resources, then their cluster variants; kubectl's output."""
    for ns in ("team-eng", "team-data"):
        apiserver.kubectl("create", "namespace", ns, check=False)
    first = apiserver.kubectl(
        "apply",
        "-R",
        "-f",
        "examples/workspaces/team-eng",
        "-f",
        "examples/workspaces/team-data",
        "-l",
        "mcpyard.io/example!=standalone-only",
    )
    return first.stdout + apiserver.kubectl("apply", "-R", "-f", "examples/cluster/").stdout


def strip_cel(crd: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The CRD without its CEL rules (``x-kubernetes-validations``, Kubernetes 1.25+), and the
    rules taken out: the 1.20 test server refuses the field."""
    out = copy.deepcopy(crd)
    rules: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            rules.extend(node.pop("x-kubernetes-validations", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(out)
    return out, rules


def crd_documents() -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in sorted(CRDS.glob("*.yaml"))]


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    server = start(tmp_path_factory.mktemp("kube-apiserver"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def crds(apiserver: ApiServer) -> list[dict[str, Any]]:
    """The mcpyard CRDs, installed without their CEL rules; the rules stripped."""
    stripped: list[dict[str, Any]] = []
    docs = []
    for crd in crd_documents():
        doc, rules = strip_cel(crd)
        docs.append(doc)
        stripped.extend(rules)
    apiserver.apply(docs)
    for doc in docs:
        apiserver.kubectl(
            "wait",
            "--for=condition=Established",
            f"crd/{doc['metadata']['name']}",
            "--timeout=60s",
        )
    return stripped


@pytest.fixture(scope="session")
def chart(apiserver: ApiServer, crds: list[dict[str, Any]]) -> Rendered:
    """The chart rendered for release namespace ``mcpyard``; its ServiceAccounts, Roles,
    bindings and master key Secret applied to the server, and the age identity Secret the
    operator reads (`kubectl create secret`, as docs/kubernetes.md has the user do)."""
    rendered = render(namespace=OPERATOR_NS)
    apiserver.kubectl("create", "namespace", OPERATOR_NS, check=False)
    apiserver.apply([d for d in rendered.docs if d["kind"] in INSTALLED_KINDS])
    apiserver.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "mcpyard-age", "namespace": OPERATOR_NS},
                "data": {"demo.agekey": base64.b64encode(DEMO_AGE_KEY.read_bytes()).decode()},
            }
        ]
    )
    return rendered


@dataclass
class Process:
    """A `mcpyard` command running in the background, its output in ``log``."""

    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        return int(self.popen.returncode)


def spawn(log: Path, *args: str) -> Process:
    """``mcpyard ARGS`` in the background, its output in ``log`` (stopped by the caller)."""
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "mcpyard", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=log.parent,
        )
    return Process(popen, log)


def spawn_gateway(log: Path, kubeconfig: Path, port: int) -> Process:
    """``mcpyard gateway`` as the chart runs it (``kubeconfig``: the gateway's ServiceAccount),
    on loopback ``port``, its state beside ``log``, recording no calls."""
    return spawn(
        log,
        "gateway",
        "--kubeconfig",
        str(kubeconfig),
        "--namespace",
        OPERATOR_NS,
        "--port",
        str(port),
        "--state-dir",
        str(log.parent / "state"),
        "--no-records",
    )


async def call_tool(url: str, token: str, tool: str) -> tuple[list[str], str]:
    """A real SDK client at ``url``: the tools it lists, and the text of ``tool``'s result
    (empty when ``tool`` is not listed)."""
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
        )
        streams = await stack.enter_async_context(streamable_http_client(url, http_client=http))
        session = await stack.enter_async_context(ClientSession(streams[0], streams[1]))
        await session.initialize()
        names = [t.name for t in (await session.list_tools()).tools]
        if tool not in names:
            return names, ""
        result = await session.call_tool(tool, {})
        assert not result.is_error, result
        return names, "".join(getattr(c, "text", "") for c in result.content)


def initialize(url: str, token: str) -> int:
    """The HTTP status of a handshake-era initialize at ``url`` with ``token``."""
    r = httpx.post(
        url,
        headers={
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
        },
        json=initialize_body(),
        timeout=10,
    )
    return r.status_code
