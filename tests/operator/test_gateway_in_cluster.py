"""`mcpyard gateway`, a real process, serving what the operator wrote into the emulator.

The operator applies the example manifests; the gateway lists and watches the config Secrets
through the API; the official MCP client calls a tool that reaches a real upstream (the demo
server, proxied, with the sealed example secret injected as its bearer); a Member set to
`disabled: true` through the API is refused within seconds; a config Secret that cannot be
unsealed keeps the workspace's last good configuration; a deleted workspace stops serving.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from mcpyard import kube
from mcpyard.crypto.vault import Vault
from tests.conftest import ROOT
from tests.operator.conftest import (
    DEMO_TOKEN,
    OPERATOR_NS,
    Cluster,
    example_documents,
    free_port,
    listening,
    wait_for,
    write_kubeconfig,
)
from tests.probes import initialize_body

GATEWAY_AGENT = "mcpyard-gateway/"
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def _demo_tokens() -> dict[str, str]:
    out = {}
    for line in (ROOT / "examples" / "demo-tokens.txt").read_text().splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            out[parts[0]] = parts[2]
    return out


TOKENS = _demo_tokens()


class Gateway:
    def __init__(self, cluster: Cluster, tmp_path: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "gateway.log"
        self.kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", cluster.emulator.url)
        self.state = tmp_path / "state"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mcpyard",
                    "gateway",
                    "--kubeconfig",
                    str(self.kubeconfig),
                    "--namespace",
                    OPERATOR_NS,
                    "--port",
                    str(self.port),
                    "--state-dir",
                    str(self.state),
                    "--no-records",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.state.parent,
            )
        wait_for(lambda: listening(self.port), what="the gateway to listen", timeout=30)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(20)
            assert self.process.returncode == 0, self.log.read_text()[-3000:]
            self.process = None

    def url(self, workspace: str) -> str:
        return f"{self.base}/ws/{workspace}/mcp"

    def readyz(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.base}/readyz", timeout=5).json())

    def initialize(self, workspace: str, token: str) -> int:
        """The HTTP status of an initialize request with ``token``."""
        r = httpx.post(
            self.url(workspace),
            headers={**MCP_HEADERS, "Authorization": f"Bearer {token}"},
            json=initialize_body(),
            timeout=10,
        )
        return r.status_code


@pytest.fixture
def gateway(cluster: Cluster, tmp_path: Path) -> Iterator[Gateway]:
    gw = Gateway(cluster, tmp_path)
    try:
        yield gw
    finally:
        gw.stop()


async def _call_tool(
    url: str, token: str, tool: str, arguments: dict[str, Any]
) -> tuple[list[str], str]:
    """(tool names, the text of one tool call) with the official MCP client."""
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
        )
        streams = await stack.enter_async_context(streamable_http_client(url, http_client=http))
        session = await stack.enter_async_context(ClientSession(streams[0], streams[1]))
        await session.initialize()
        listed = await session.list_tools()
        result = await session.call_tool(tool, arguments)
        assert not result.is_error, result
        text = "".join(getattr(c, "text", "") for c in result.content)
        return [t.name for t in listed.tools], text


def _examples_against(upstream: str) -> list[dict[str, Any]]:
    """The example manifests, with eng's proxied analytics server pointing at ``upstream``."""
    docs = copy.deepcopy(example_documents())
    for doc in docs:
        if (doc["kind"], doc["metadata"]["namespace"], doc["metadata"]["name"]) == (
            "MCPServer",
            "team-eng",
            "analytics",
        ):
            doc["spec"]["proxy"]["url"] = upstream
    return docs


def _analytics_healthy(gw: Gateway) -> dict[str, Any] | None:
    body = gw.readyz()
    eng = body.get("workspaces", {}).get("eng", {})
    healthy = eng.get("servers", {}).get("analytics", {}).get("status") == "healthy"
    return body if healthy else None


def test_gateway_serves_the_cluster_and_revocation_bites(
    cluster: Cluster, gateway: Gateway, demo_server: str
) -> None:
    cluster.seed_age_key()
    cluster.start()
    cluster.create(*_examples_against(demo_server))
    wait_for(lambda: cluster.config("eng"), what="the config of eng")
    wait_for(lambda: cluster.config("data"), what="the config of data")

    gateway.start()
    body = wait_for(lambda: _analytics_healthy(gateway), what="eng's analytics up", timeout=30)
    assert set(body["workspaces"]) == {"eng", "data"}

    # A real MCP client; the call reaches the real upstream with the sealed secret injected.
    tools, text = asyncio.run(
        _call_tool(gateway.url("eng"), TOKENS["alice"], "analytics__whoami", {})
    )
    assert "analytics__echo" in tools and "analytics__whoami" in tools
    assert text.startswith("Bearer demo") and f"({len(DEMO_TOKEN)} characters)" in text
    assert gateway.initialize("eng", TOKENS["carol"]) == 401  # disabled in the examples
    assert gateway.initialize("eng", TOKENS["bob"]) == 200

    # Revocation through the API: refused within seconds.
    started = time.monotonic()
    cluster.patch("Member", "team-eng", "bob", {"spec": {"disabled": True}})
    wait_for(
        lambda: gateway.initialize("eng", TOKENS["bob"]) == 401, what="bob refused", timeout=10
    )
    elapsed = time.monotonic() - started
    print(f"\ndisabled: true -> 401 in {elapsed:.2f}s")
    assert elapsed < 5
    assert gateway.initialize("eng", TOKENS["alice"]) == 200

    # A config Secret that cannot be unsealed (another master key): eng keeps its last good
    # configuration, /readyz says why; a good one again clears it.
    secret = cluster.get("v1", "Secret", OPERATOR_NS, "mcpyard-ws-eng")
    assert secret is not None
    original = secret["data"]["secrets.json"]
    stranger = Vault(b"\x01" * 32)
    stranger.seal("team-eng/analytics-key/token", "not-the-value")
    forged = {
        "team-eng/analytics-key/token": stranger.export_sealed("team-eng/analytics-key/token")
    }
    cluster.patch(
        "Secret",
        OPERATOR_NS,
        "mcpyard-ws-eng",
        {"data": {"secrets.json": base64.b64encode(json.dumps(forged).encode()).decode()}},
        api_version="v1",
    )

    def held() -> list[str] | None:
        errors = gateway.readyz()["workspaces"]["eng"].get("lastReloadError")
        return errors if errors else None

    errors = wait_for(held, what="eng held at its last good config")
    assert any("another master key" in e for e in errors), errors
    metrics = httpx.get(f"{gateway.base}/metrics", timeout=5).text
    (failures,) = re.findall(r'mcpyard_config_reloads_total\{outcome="failure"\} (\S+)', metrics)
    assert float(failures) >= 1
    assert gateway.initialize("eng", TOKENS["alice"]) == 200
    _, text = asyncio.run(_call_tool(gateway.url("eng"), TOKENS["alice"], "analytics__whoami", {}))
    assert f"({len(DEMO_TOKEN)} characters)" in text  # still the good value
    cluster.patch(
        "Secret",
        OPERATOR_NS,
        "mcpyard-ws-eng",
        {"data": {"secrets.json": original}},
        api_version="v1",
    )
    wait_for(lambda: not held(), what="eng's error to clear")

    # A deleted workspace stops serving.
    assert gateway.initialize("data", TOKENS["erin"]) == 200
    cluster.delete("Workspace", "team-data", "data")
    wait_for(lambda: gateway.initialize("data", TOKENS["erin"]) == 404, what="data gone")
    assert "data" not in gateway.readyz()["workspaces"]

    gateway.stop()
    _gateway_log_is_clean(gateway)
    _gateway_requests_are_its_rbac(cluster)


def _gateway_log_is_clean(gateway: Gateway) -> None:
    log = gateway.log.read_text()
    assert f"mcpyard gateway on {gateway.base}" in log and f"namespace {OPERATOR_NS}" in log
    for token in TOKENS.values():
        assert token not in log
    assert DEMO_TOKEN not in log
    assert base64.b64encode(DEMO_TOKEN.encode()).decode() not in log


def _gateway_requests_are_its_rbac(cluster: Cluster) -> None:
    """The gateway made exactly the kinds of request kube.GATEWAY_RBAC_RULES grant."""
    seen = set()
    for request in cluster.emulator.requests():
        if not str(request.headers.get("User-Agent", "")).startswith(GATEWAY_AGENT):
            continue
        if request.resource is None or request.resource.plural is None:
            continue
        verb = (
            "watch"
            if request.params.get("watch") == "true"
            else "get"
            if request.name is not None
            else "list"
        )
        assert str(request.method.value) == "GET", request
        seen.add(
            (
                request.resource.group or "",
                str(request.resource.plural),
                verb,
                request.namespace == OPERATOR_NS,
            )
        )
    granted = {
        (g, r, v, True)
        for rule in kube.GATEWAY_RBAC_RULES
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    assert seen == granted


def test_gateway_lists_again_after_410_and_reconnects_after_a_failure_or_timeout(
    cluster: Cluster, gateway: Gateway
) -> None:
    emulator = cluster.emulator.emulator
    assert emulator is not None
    # The first watch: 410 Gone (list again); the second: refused (back off, reconnect); the
    # third ends as at its timeoutSeconds (resume from the same resourceVersion, no list).
    cluster.emulator.call(lambda: emulator.watch_failures.extend([410, 429, 200]))
    cluster.seed_age_key()
    cluster.start()
    cluster.create(*example_documents())
    wait_for(lambda: cluster.config("eng"), what="the config of eng")
    gateway.start()
    wait_for(lambda: "eng" in gateway.readyz()["workspaces"], what="eng served")
    assert gateway.initialize("eng", TOKENS["bob"]) == 200

    cluster.patch("Member", "team-eng", "bob", {"spec": {"disabled": True}})
    wait_for(lambda: gateway.initialize("eng", TOKENS["bob"]) == 401, what="bob refused")

    assert cluster.emulator.call(lambda: list(emulator.watch_failures)) == []
    mine = [
        r
        for r in cluster.emulator.requests()
        if str(r.headers.get("User-Agent", "")).startswith(GATEWAY_AGENT)
        and r.resource is not None
        and r.resource.plural == "secrets"
        and r.name is None
    ]
    lists = [r for r in mine if r.params.get("watch") != "true"]
    watches = [r for r in mine if r.params.get("watch") == "true"]
    assert len(lists) == 2  # the first, and the one after 410
    # The three watches that ended were answered before kmock records requests; this one
    # followed bob's change.
    assert len(watches) == 1
    log = gateway.log.read_text()
    assert "410 Gone" in log and "reconnecting in" in log


def test_gateway_without_credentials_says_so(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mcpyard", "gateway", "--kubeconfig", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "mcpyard gateway: no Kubernetes credentials" in done.stderr


def test_gateway_started_first_waits_for_the_master_key(cluster: Cluster, gateway: Gateway) -> None:
    gateway.start()

    def waiting() -> list[str] | None:
        body = gateway.readyz()
        return body.get("lastReloadError") if body["status"] == "loading" else None

    (reason,) = wait_for(waiting, what="the gateway to say what it waits for")
    assert "mcpyard-master-key does not exist yet" in reason
    assert gateway.initialize("eng", TOKENS["alice"]) == 404

    cluster.seed_age_key()
    cluster.start()  # creates the master key, then the config Secrets
    cluster.create(*example_documents())
    wait_for(lambda: gateway.initialize("eng", TOKENS["alice"]) == 200, what="eng served")
    assert "lastReloadError" not in gateway.readyz()
