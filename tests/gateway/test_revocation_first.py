"""Revocations first at the gateway (issue 18): a config Secret change that takes access away
is applied before the routine work of a cold start (workspaces not served yet), and servers
that are down are retried with capped, jittered backoff.

The cluster source is driven here without an API server (its Secrets set as the watch would
set them), with the real runtime and real upstream clients, every server at a loopback port
where nothing listens; ``tests/cluster/test_gateway_revocation.py`` runs the same through a
real API server and ``mcpyard gateway``.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcpyard import kube
from mcpyard.compiler.config import WorkspaceConfig
from mcpyard.crypto import tokens
from mcpyard.crypto.vault import KEY_BYTES, Vault
from mcpyard.gateway import _upstreams
from mcpyard.gateway._runtime import Runtime
from mcpyard.gateway.services._metrics import Metrics
from mcpyard.gateway.sources import _cluster
from mcpyard.gateway.sources._cluster import ClusterSource
from tests.gateway.gwtools import member, server, workspace
from tests.proctools import free_port

pytestmark = pytest.mark.anyio

NS = "mcpyard"
ALICE, BOB = tokens.new(), tokens.new()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _workspace(name: str, dead: str, *, bob: bool = True, servers: int = 5) -> WorkspaceConfig:
    members = [member("alice", ALICE), member("bob", BOB, disabled=not bob)]
    return workspace(name, [server(f"s{i}", f"{dead}/{name}/s{i}/mcp") for i in range(servers)],
                     members)


def _no_api_server() -> kube.Client:
    raise AssertionError("the source is driven by hand here")


def _secret(config: WorkspaceConfig, version: int) -> dict[str, Any]:
    secret = kube.config_secret(NS, config, {})
    secret["metadata"]["resourceVersion"] = str(version)
    return secret


async def test_a_revocation_goes_before_the_workspaces_not_served_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_cluster, "CHUNK", 2)
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: every discovery fails
    source = ClusterSource(_no_api_server, NS)
    source._key = secrets.token_bytes(KEY_BYTES)
    source.vault = Vault(source._key)
    runtime = Runtime(factory=None, secrets=source, workdir=tmp_path, session_idle_seconds=60,
                      health_interval=0.2)
    metrics = Metrics()
    health = asyncio.create_task(runtime.run_health())
    try:
        with anyio.fail_after(60):
            served = _workspace("served", dead)
            source._secrets = {"served": _secret(served, 1)}
            await source._publish(runtime, metrics)
            assert runtime.live["served"].member_active("bob")

            # A cold start's burst: ten workspaces of five unreachable servers each.
            for i in range(10):
                source._secrets[f"new{i}"] = _secret(_workspace(f"new{i}", dead), 10 + i)
            publishing = asyncio.create_task(source._publish(runtime, metrics))
            while len(runtime.live) == 1:
                await asyncio.sleep(0)
            # Meanwhile bob is revoked (the watch hands the Secret over and says so).
            source._secrets["served"] = _secret(_workspace("served", dead, bob=False), 2)
            source._changed.set()
            await publishing
            assert len(runtime.live) < 11  # cut short: the revocation does not wait for them
            assert runtime.live["served"].member_active("bob")

            source._changed.clear()
            publishing = asyncio.create_task(source._publish(runtime, metrics))
            while runtime.live["served"].member_active("bob"):
                await asyncio.sleep(0)
            # Bob is refused before a single further new workspace was applied.
            waiting = 11 - len(runtime.live)
            assert waiting > 0
            await publishing
            assert len(runtime.live) == 11
            assert runtime.live["served"].member_active("alice")
            # Every server is down, and says why.
            assert not any(h.up for live in runtime.live.values()
                           for h in live.handles.values())
    finally:
        health.cancel()
        await runtime.close()


def test_retries_back_off_exponentially_capped_and_jittered() -> None:
    for failures in range(1, 30):
        ceiling = min(_upstreams.RETRY_MAX, 5.0 * 2 ** (failures - 1))
        delays = {_upstreams.retry_delay(5.0, failures) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (failures, delays)
        assert len(delays) > 1  # jittered: servers that failed together retry apart
    assert max(_upstreams.retry_delay(5.0, 1000) for _ in range(50)) <= _upstreams.RETRY_MAX


async def test_a_server_failing_again_for_the_same_reason_rebuilds_nothing(
    tmp_path: Path,
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    runtime = Runtime(factory=None, secrets=Vault(secrets.token_bytes(KEY_BYTES)),
                      workdir=tmp_path, session_idle_seconds=60, health_interval=0.05)
    health = asyncio.create_task(runtime.run_health())
    try:
        runtime.apply({"ws": _workspace("ws", dead, servers=1)})
        handle = runtime.live["ws"].handles["s0"]
        with anyio.fail_after(60):
            while handle.failures < 1:
                await asyncio.sleep(0.01)
            snapshot = runtime.live["ws"]
            while handle.failures < 3:  # retried (backoff from 0.05 s), down each time
                await asyncio.sleep(0.01)
        assert runtime.live["ws"] is snapshot
        assert not handle.up and handle.reason and "cannot connect" in handle.reason
    finally:
        health.cancel()
        await runtime.close()
