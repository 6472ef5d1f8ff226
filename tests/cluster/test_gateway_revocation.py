"""`mcpyard gateway` on a real API server, revoking while many upstreams are unreachable
(issue 18): config Secrets of 40 workspaces of 5 servers each, every server at a loopback port
where nothing listens (200 upstreams whose discovery fails and is retried), plus one workspace
with members alice and bob. A member revoked (the operator's write, done here by hand) is
refused by the gateway once it is idle, and again while a burst of new workspaces is being
applied; alice keeps her access throughout. Deadlines are generous (a loaded CI machine), the
order is what is checked: the refusal does not wait for the burst."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
    admin_client,
    initialize,
    spawn_gateway,
    wait_for,
)
from tests.gateway.gwtools import member, server, workspace
from tests.proctools import free_port

WS = "revoke"
BUSY, BURST = 40, 40
ALICE, BOB, CAROL = tokens.new(), tokens.new(), tokens.new()


def _target(*, bob: bool = True, carol: bool = True) -> WorkspaceConfig:
    members = [member("alice", ALICE), member("bob", BOB, disabled=not bob),
               member("carol", CAROL, disabled=not carol)]
    return workspace(WS, [server("s0", "http://127.0.0.1:9/revoke/mcp")], members)


def _busy(name: str, dead: str) -> dict[str, object]:
    config = workspace(name, [server(f"s{i}", f"{dead}/{name}/s{i}/mcp") for i in range(5)],
                       [member("m", None)])
    return kube.config_secret(OPERATOR_NS, config, {})


@pytest.fixture
def admin(apiserver: ApiServer, chart: Rendered) -> Iterator[kube.Client]:
    with admin_client(apiserver, "busy", "burst", WS) as client:
        yield client


def _serving(base: str, count: int) -> bool:
    try:
        body = httpx.get(f"{base}/readyz", timeout=10).json()
    except httpx.HTTPError:  # not listening yet
        return False
    return len(body.get("workspaces", {})) >= count


def test_a_revoked_member_is_refused_while_many_upstreams_are_unreachable(
    apiserver: ApiServer, admin: kube.Client, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    for i in range(BUSY):
        admin.apply_sync(_busy(f"busy{i:02d}", dead))
    admin.apply_sync(kube.config_secret(OPERATOR_NS, _target(), {}))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    mcp_url = f"{base}/ws/{WS}/mcp"
    kubeconfig = apiserver.kubeconfig_for(tmp_path / "gateway.kubeconfig", OPERATOR_NS,
                                          GATEWAY_SA)
    gateway = spawn_gateway(tmp_path / "gateway.log", kubeconfig, port)
    try:
        wait_for(lambda: _serving(base, BUSY + 1), what="every workspace served", timeout=120)
        assert initialize(mcp_url, BOB) == 200

        # Idle, 200 upstreams down and retried: bob revoked.
        admin.apply_sync(kube.config_secret(OPERATOR_NS, _target(bob=False), {}))
        wait_for(lambda: initialize(mcp_url, BOB) == 401, what="bob refused", timeout=60)
        assert initialize(mcp_url, ALICE) == 200

        # A burst of new workspaces (a cold start's routine work), and carol revoked after it.
        for i in range(BURST):
            admin.apply_sync(_busy(f"burst{i:02d}", dead))
        admin.apply_sync(kube.config_secret(OPERATOR_NS, _target(bob=False, carol=False), {}))
        wait_for(lambda: initialize(mcp_url, CAROL) == 401, what="carol refused", timeout=60)
        assert initialize(mcp_url, ALICE) == 200
        wait_for(lambda: _serving(base, BUSY + BURST + 1), what="the burst served", timeout=120)
        readyz = httpx.get(f"{base}/readyz", timeout=10).json()
        busy = readyz["workspaces"]["busy00"]["servers"]["s0"]
        assert busy["status"] == "degraded" and "cannot connect" in busy["reason"]
    finally:
        code = gateway.stop()
    log = gateway.output()
    assert code == 0, log[-3000:]
    for token in (ALICE, BOB, CAROL):
        assert token not in log
