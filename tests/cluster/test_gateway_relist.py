"""`mcpyard gateway` on a real API server after its watch's resourceVersion expired: the
gateway follows the config Secrets with a watch; the network between it and the API server is
cut (tests/cluster/tcpproxy.py), a config Secret changes meanwhile (a member revoked, a server
added), and etcd is compacted past the gateway's resourceVersion. When the network comes back,
the gateway's watch resumes from that version, gets 410 Gone, lists again, and a real SDK
client sees the change. (Secrets are watched from etcd here, without the API server's watch
cache: tools/kube-apiserver/start.sh.)"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from mcpyard import kube
from mcpyard.compiler.config import WorkspaceConfig
from mcpyard.crypto import tokens
from tests.chart.helmrender import Rendered
from tests.cluster.apiserver import ApiServer
from tests.cluster.conftest import (
    GATEWAY_SA,
    OPERATOR_NS,
    Process,
    admin_client,
    call_tool,
    initialize,
    spawn_gateway,
    wait_for,
)
from tests.cluster.tcpproxy import TcpProxy
from tests.gateway.gwtools import UpstreamProcess, member, server, upstream_process, workspace
from tests.proctools import free_port

WS = "relist"
LISTED = f"config Secrets in {OPERATOR_NS}"
"""What the gateway logs at each list of the config Secrets."""
ALICE, BOB = tokens.new(), tokens.new()


def _config(*servers: str, bob: bool = True) -> WorkspaceConfig:
    members = [member("alice", ALICE), *([member("bob", BOB)] if bob else [])]
    return workspace(WS, [server("beta", url) for url in servers], members)


@pytest.fixture
def admin(apiserver: ApiServer, chart: Rendered) -> Iterator[kube.Client]:
    with admin_client(apiserver, WS) as client:
        yield client


@pytest.fixture
def beta() -> Iterator[UpstreamProcess]:
    with upstream_process("beta") as up:
        yield up


def _serving(base: str) -> bool:
    try:
        body = httpx.get(f"{base}/readyz", timeout=5).json()
    except httpx.HTTPError:  # not listening yet
        return False
    return WS in body.get("workspaces", {})


def test_the_gateway_relists_after_410_gone(
    apiserver: ApiServer,
    admin: kube.Client,
    beta: UpstreamProcess,
    tmp_path: Path,
) -> None:
    secret = kube.config_secret(OPERATOR_NS, _config(), {})
    _, first = admin.apply_sync(secret)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    target = urlparse(apiserver.url).port
    assert target is not None
    with TcpProxy(target) as proxy:
        kubeconfig = apiserver.kubeconfig_for(
            tmp_path / "gateway.kubeconfig", OPERATOR_NS, GATEWAY_SA, server=proxy.url
        )
        gateway = spawn_gateway(tmp_path / "gateway.log", kubeconfig, port)
        try:
            _relist(apiserver, admin, proxy, gateway, base, secret, first, beta)
        finally:
            code = gateway.stop()
    log = gateway.output()
    assert code == 0, log[-3000:]
    for token in (ALICE, BOB):
        assert token not in log


def _relist(
    apiserver: ApiServer,
    admin: kube.Client,
    proxy: TcpProxy,
    gateway: Process,
    base: str,
    secret: dict[str, object],
    first: dict[str, object],
    beta: UpstreamProcess,
) -> None:
    mcp_url = f"{base}/ws/{WS}/mcp"
    wait_for(lambda: _serving(base), what=f"the gateway serving {WS}", timeout=90)
    assert initialize(mcp_url, BOB) == 200
    assert asyncio.run(call_tool(mcp_url, ALICE, ""))[0] == []
    listed = gateway.output().count(LISTED)
    assert listed == 1, gateway.output()[-3000:]

    # The network to the API server goes: the watch breaks, reconnects are refused.
    proxy.cut()
    wait_for(
        lambda: "config Secrets: " in gateway.output() and "reconnecting" in gateway.output(),
        what="the gateway to notice its watch broke",
    )
    # Meanwhile bob is revoked and a server added (the operator's write, done here by hand).
    _, changed = admin.apply_sync(kube.config_secret(OPERATOR_NS, _config(beta.url, bob=False), {}))
    assert changed["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]  # type: ignore[index]
    assert initialize(mcp_url, BOB) == 200  # the gateway has not seen it: it is cut off
    # ... and etcd forgets the history the gateway would resume from.
    apiserver.compact_etcd()
    probe = admin.watch(
        "v1",
        "Secret",
        OPERATOR_NS,
        labels={kube.CONFIG_LABEL: "true"},
        resource_version=str(first["metadata"]["resourceVersion"]),  # type: ignore[index]
        timeout_seconds=30,
    )
    with pytest.raises(kube.ApiError) as gone:
        for _ in probe:
            break
    probe.stop()
    assert gone.value.status == 410

    # The network comes back: 410 Gone, a fresh list, the change served.
    proxy.restore()
    wait_for(
        lambda: "410 Gone" in gateway.output() and gateway.output().count(LISTED) > listed,
        what="the gateway to list again after 410 Gone",
        timeout=90,
    )
    wait_for(lambda: initialize(mcp_url, BOB) == 401, what="bob refused", timeout=30)
    tools = wait_for(
        lambda: (found := asyncio.run(call_tool(mcp_url, ALICE, ""))[0]) and found,
        what="alice's new tools",
        timeout=60,
    )
    assert tools == ["beta__echo", "beta__hello"]
