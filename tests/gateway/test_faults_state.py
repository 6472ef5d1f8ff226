"""Fault injection on the gateway's own state: Redis going away and coming back, a manifest
torn mid-write, the state folder's disk full. Each time the members and servers not at fault
are served, nothing is lost, and /readyz, /metrics and the log say what happened
(docs/reliability.md)."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from accounting import call_rows, samples, total
from gwtools import (
    bearer,
    mcp_client,
    member,
    member_manifest,
    run_gateway,
    server,
    server_manifest,
    text_of,
    wait_port,
    workspace,
    ws_manifest,
)
from mcp.shared.exceptions import MCPError

from mcpyard.crypto import tokens
from mcpyard.gateway import Settings
from mcpyard.gateway.services import _records
from tests.proctools import free_port

pytestmark = pytest.mark.anyio
log = logging.getLogger(__name__)


# -- Redis goes away and comes back ---------------------------------------------------------


class RedisProcess:
    """A real redis-server on a fixed port that the test kills and starts again."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (Debian: apt-get install -y redis-server)")
        self.binary, self.port = binary, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None


@pytest.fixture
def redis_process() -> Iterator[RedisProcess]:
    r = RedisProcess()
    r.start()
    try:
        yield r
    finally:
        if r.proc is not None:
            r.proc.terminate()
            r.proc.wait(10)


async def _calls(client: Any, n: int) -> tuple[int, list[str]]:
    """``n`` tool calls: how many passed, and the messages of the refused ones."""
    ok, refused = 0, []
    for i in range(n):
        try:
            assert text_of(await client.call_tool("beta__echo", {"text": str(i)})) == f"beta:{i}"
            ok += 1
        except MCPError as exc:
            refused.append(exc.error.message)
    return ok, refused


async def test_redis_going_away_keeps_the_limits_per_replica(
        settings_for: Any, beta: Any, redis_process: RedisProcess,
        caplog: pytest.LogCaptureFixture) -> None:
    token = tokens.new()
    config = workspace("eng", [server("beta", beta.url)], [member("alice", token)])
    config = config.model_copy(update={"requests_per_minute": 20})
    async with run_gateway(settings_for([config], redis_url=redis_process.url)) as gw, \
            httpx.AsyncClient() as http, mcp_client(gw.url("eng"), token) as alice:
        await gw.wait_serving("eng", "beta")
        assert (await _calls(alice, 3))[0] == 3
        ready = (await http.get(f"{gw.base_url}/readyz")).json()
        assert ready["rateLimits"] == {"backend": "redis", "status": "ok"}

        redis_process.kill()
        ok, refused = await _calls(alice, 30)
        # still served, and still limited: never unbounded while Redis is away
        assert 1 <= ok <= 20
        assert refused and all("rate limit of workspace eng" in m for m in refused)
        ready = (await http.get(f"{gw.base_url}/readyz")).json()
        metrics = samples((await http.get(f"{gw.base_url}/metrics")).text)
        assert ready["rateLimits"]["status"] == "degraded"
        assert "per replica" in ready["rateLimits"]["reason"]
        assert total(metrics, "mcpyard_rate_limit_backend_up") == 0
        assert any("rate limits: redis failed" in r.getMessage() for r in caplog.records)

        redis_process.start()
        # the limiter tries Redis again after its backoff; a call after that uses it
        with anyio.fail_after(60):
            while True:
                await _calls(alice, 1)
                if gw.app.state.router.limiter.status()["status"] == "ok":
                    break
                await anyio.sleep(0.5)
        ready = (await http.get(f"{gw.base_url}/readyz")).json()
        metrics = samples((await http.get(f"{gw.base_url}/metrics")).text)
    assert ready["rateLimits"] == {"backend": "redis", "status": "ok"}
    assert total(metrics, "mcpyard_rate_limit_backend_up") == 1
    assert any("redis is back" in r.getMessage() for r in caplog.records)


# -- a manifest torn mid-write ---------------------------------------------------------------


async def test_a_torn_manifest_write_holds_only_its_own_resources(
        tmp_path: Path, state_dir: Path, beta: Any) -> None:
    alice, bob = tokens.new(), tokens.new()
    root = tmp_path / "manifests"
    root.mkdir()
    (root / "workspace.yaml").write_text(ws_manifest())
    (root / "beta.yaml").write_text(server_manifest("beta", beta.url))
    (root / "alice.yaml").write_text(member_manifest("alice", alice))
    (root / "bob.yaml").write_text(member_manifest("bob", bob))
    settings = Settings(manifests=root, state_dir=state_dir, reload_debounce_ms=50)
    async with run_gateway(settings) as gw, httpx.AsyncClient() as http:
        await gw.wait_serving("eng", "beta")
        url = gw.url("eng")
        # bob's file is rewritten in two steps, as a slow copy would: half, then the rest
        full = member_manifest("bob", bob, extra="  disabled: true\n")
        cut = full.index("namespace")  # inside `metadata: {name: bob, namespace: ...}`
        before = gw.runtime.generation
        (root / "bob.yaml").write_text(full[:cut])
        await gw.wait_for(lambda: gw.runtime.generation > before)
        ready = (await http.get(f"{gw.base_url}/readyz")).json()["workspaces"]["eng"]
        # half a file: bob keeps his last good version, alice and beta are untouched
        async with mcp_client(url, bob) as client:
            assert text_of(await client.call_tool("beta__echo", {"text": "b"})) == "beta:b"
        async with mcp_client(url, alice) as client:
            assert text_of(await client.call_tool("beta__echo", {"text": "a"})) == "beta:a"
        [held] = ready["held"]
        assert held["resource"] == "team/Member/bob"
        assert held["serving"] == "last good version"
        assert "invalid YAML" in held["message"]
        assert any(str(root / "bob.yaml") in line for line in ready["lastReloadError"])

        before = gw.runtime.generation
        (root / "bob.yaml").write_text(full)  # the rest arrives: the revocation applies
        await gw.wait_for(lambda: gw.runtime.generation > before)
        r = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                            headers={**bearer(bob), "Accept": "application/json, "
                                     "text/event-stream", "Content-Type": "application/json"})
        ready = (await http.get(f"{gw.base_url}/readyz")).json()["workspaces"]["eng"]
    assert r.status_code == 401
    assert "held" not in ready and "lastReloadError" not in ready


# -- the state folder's disk full -------------------------------------------------------------


@contextlib.contextmanager
def small_disk(tmp_path: Path) -> Iterator[tuple[Path, bool]]:
    """A 2 MiB tmpfs as the state folder (True), or a plain folder (False) where mounting is
    not allowed: the test then fails the writes itself at the sink's boundary."""
    where = tmp_path / "state"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)],
                             capture_output=True, check=False).returncode == 0
    try:
        yield where, mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], check=False)


def fill(folder: Path) -> Path:
    """Fill the filesystem of ``folder`` to the last byte."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


async def test_a_full_disk_loses_no_call_record(tmp_path: Path, beta: Any,
                                                monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    token = tokens.new()
    config = workspace("eng", [server("beta", beta.url)], [member("alice", token)])
    with small_disk(tmp_path) as (state, mounted):
        full = True
        if not mounted:  # no mount allowed: ENOSPC at the write boundary instead
            write = _records.SQLiteSink._write

            def failing(self: Any, records: Any) -> None:
                if full:
                    raise OSError(errno.ENOSPC, "No space left on device")
                write(self, records)

            monkeypatch.setattr(_records.SQLiteSink, "_write", failing)
        log.warning("disk full by %s", "a 2 MiB tmpfs" if mounted else "an injected ENOSPC")
        settings = Settings(workspaces={"eng": config}, state_dir=state)
        async with run_gateway(settings) as gw, httpx.AsyncClient() as http, \
                mcp_client(gw.url("eng"), token) as alice:
            await gw.wait_serving("eng", "beta")
            assert (await _calls(alice, 2))[0] == 2
            recorder = gw.app.state.router.recorder
            with anyio.fail_after(30):
                while recorder.queued:
                    await anyio.sleep(0.05)
            filler = fill(state) if mounted else None
            # the disk is full: calls are still answered, records wait in memory
            assert (await _calls(alice, 40))[0] == 40
            with anyio.fail_after(30):
                while recorder.status()["status"] == "ok":
                    await anyio.sleep(0.05)
            ready = (await http.get(f"{gw.base_url}/readyz")).json()
            metrics = samples((await http.get(f"{gw.base_url}/metrics")).text)
            assert ready["callRecords"]["status"] == "degraded"
            assert "full" in ready["callRecords"]["reason"] \
                or "No space" in ready["callRecords"]["reason"]
            assert total(metrics, "mcpyard_records_sink_up") == 0
            assert any("call records:" in r.getMessage() and r.levelno == logging.ERROR
                       for r in caplog.records)

            # space again: everything waiting is written, nothing lost
            if filler is not None:
                filler.unlink()
            full = False
            with anyio.fail_after(60):
                while recorder.status()["status"] != "ok" or recorder.queued:
                    await anyio.sleep(0.1)
            metrics = samples((await http.get(f"{gw.base_url}/metrics")).text)
            assert total(metrics, "mcpyard_records_sink_up") == 1
        try:
            rows = call_rows(state / "calls.db")
        except sqlite3.Error as exc:  # pragma: no cover - says what broke
            pytest.fail(f"the call log is unreadable after a full disk: {exc}")
    calls = [r for r in rows if r["method"] == "tools/call"]
    assert len(calls) == 42
    assert recorder.dropped == 0
